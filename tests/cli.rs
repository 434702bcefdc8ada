//! The local `pilotlight` CLI: plan checks and offline event parsing, as an operator runs them before deploying.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pilotlight"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_plan_accepts_the_reference_plan_and_names_the_bad_variable() {
    let (ok, stdout, _) = run(&["check-plan", "plans/reference.env"]);
    assert!(ok);
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["dr"]["region"], "ap-northeast-1");

    let bad = std::env::temp_dir().join(format!("pilotlight-bad-plan-{}.env", std::process::id()));
    let text = std::fs::read_to_string("plans/reference.env")
        .unwrap()
        .replace("PILOTLIGHT_QUORUM=1", "PILOTLIGHT_QUORUM=many");
    std::fs::write(&bad, text).unwrap();
    let (ok, _, stderr) = run(&["check-plan", bad.to_str().unwrap()]);
    std::fs::remove_file(&bad).unwrap();
    assert!(!ok);
    assert!(
        stderr.contains("PILOTLIGHT_QUORUM") && stderr.contains("whole number"),
        "{stderr}"
    );
}

#[test]
fn check_plan_json_prints_the_plan_and_the_variables_it_was_read_from() {
    let (ok, stdout, stderr) = run(&["check-plan", "--json", "plans/reference.env"]);
    assert!(ok, "{stderr}");
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["plan"]["dr"]["region"], "ap-northeast-1");
    assert_eq!(out["variables"]["PILOTLIGHT_DR_REGION"], "ap-northeast-1");
    assert_eq!(out["variables"]["PILOTLIGHT_QUORUM"], "1");

    // The environment wins over the file, in the plan and in the variables alike.
    let (ok, stdout, _) = run_with_env(
        &["check-plan", "--json", "plans/reference.env"],
        &[("PILOTLIGHT_MAX_AMI_AGE_HOURS", "5")],
    );
    assert!(ok);
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["plan"]["max_ami_age_hours"], 5);
    assert_eq!(out["variables"]["PILOTLIGHT_MAX_AMI_AGE_HOURS"], "5");

    let (ok, stdout, stderr) = run(&["check-plan", "--json", "plans/drill.env"]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("PILOTLIGHT_PRIMARY_REGION"), "{stderr}");
}

#[test]
fn parse_event_applies_the_plans_origin_checks() {
    let (ok, stdout, _) = run(&[
        "parse-event",
        "events/detect-alarm-eventbridge.json",
        "--plan",
        "plans/reference.env",
    ]);
    assert!(ok);
    assert!(stdout.contains("\"shape\": \"event-bridge\""), "{stdout}");
    // A plan watching other alarms refuses the reference event, naming why.
    let other =
        std::env::temp_dir().join(format!("pilotlight-other-plan-{}.env", std::process::id()));
    let text = std::fs::read_to_string("plans/reference.env")
        .unwrap()
        .replace("web-primary-5xx,", "checkout-5xx,");
    std::fs::write(&other, text).unwrap();
    let (ok, _, stderr) = run(&[
        "parse-event",
        "events/detect-alarm-sns.json",
        "--plan",
        other.to_str().unwrap(),
    ]);
    std::fs::remove_file(&other).unwrap();
    assert!(
        !ok && stderr.contains("not one of the plan's alarms"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&["parse-event", "Cargo.toml"]);
    assert!(!ok && stderr.contains("not JSON"), "{stderr}");
}

/// events/detect-alarm-primary-region.json: the primary ALB's alarm, in the primary region, SNS-wrapped (a topic
/// detect subscribes to: a direct alarm -> Lambda action cannot cross regions). A plan lists it as
/// `name@<primary region>`; with the bare name (AlarmRegion = DR) the same event is refused.
#[test]
fn parse_event_takes_a_primary_region_alarm_listed_as_name_at_region() {
    let plan = std::env::temp_dir().join(format!(
        "pilotlight-primary-region-plan-{}.env",
        std::process::id()
    ));
    let text = std::fs::read_to_string("plans/reference.env")
        .unwrap()
        .replace(
            "PILOTLIGHT_ALARM_NAMES=web-primary-5xx,",
            "PILOTLIGHT_ALARM_NAMES=web-primary-5xx@ap-northeast-2,",
        );
    assert!(text.contains("web-primary-5xx@ap-northeast-2"));
    std::fs::write(&plan, text).unwrap();
    let event = "events/detect-alarm-primary-region.json";
    let (ok, stdout, stderr) = run(&["parse-event", event, "--plan", plan.to_str().unwrap()]);
    std::fs::remove_file(&plan).unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"shape\": \"sns\""), "{stdout}");
    assert!(
        stdout.contains("\"region\": \"ap-northeast-2\""),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&["parse-event", event, "--plan", "plans/reference.env"]);
    assert!(
        !ok && stderr.contains("not one of the plan's alarms"),
        "{stderr}"
    );
}

#[test]
fn bench_prints_figures() {
    let (ok, stdout, _) = run(&["bench", "--iterations", "50"]);
    assert!(ok);
    assert!(stdout.contains("total p50"), "no header in:\n{stdout}");
    assert!(stdout.contains("peak resident memory"), "{stdout}");
    // One row of percentiles per event shape: json, parse, decide, then total p50 <= p99 <= max.
    for shape in [
        "detect-alarm-lambda-action.json",
        "detect-alarm-sns.json",
        "detect-alarm-eventbridge.json",
        "detect-manual-failover.json",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(shape))
            .unwrap_or_else(|| panic!("no row for {shape} in:\n{stdout}"));
        let v: Vec<f64> = row
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or_else(|_| panic!("{row}")))
            .collect();
        assert_eq!(v.len(), 6, "{row}");
        assert!(v[3] > 0.0 && v[3] <= v[4] && v[4] <= v[5], "{row}");
    }
}

#[test]
fn every_subcommand_has_help_naming_its_options() {
    let (ok, stdout, _) = run(&["--help"]);
    assert!(ok);
    let subcommands = [
        ("check-plan", &["--json", "<FILE>"][..]),
        ("parse-event", &["--plan", "<EVENT>"]),
        ("statemachine", &["--check"]),
        ("permissions", &[]),
        ("bench", &["--iterations"]),
        (
            "status",
            &["--json", "--detect", "--plan", "--profile", "--region"],
        ),
        (
            "plan",
            &["--mode", "--allow-stale-ami", "--json", "[DIRECTION]"],
        ),
        (
            "failover",
            &[
                "--dry-run",
                "--mode",
                "--approval",
                "--allow-replica-lag",
                "--no-follow",
            ],
        ),
        (
            "failback",
            &[
                "--dry-run",
                "--mode",
                "--approval",
                "--allow-writable-old-writer",
            ],
        ),
        ("follow", &["[EXECUTION]", "--detect"]),
        ("approve", &["[EXECUTION]", "--reason", "--allow-stale-ami"]),
        ("reject", &["[EXECUTION]", "--reason"]),
        ("report", &["[EXECUTION]", "--json"]),
    ];
    for (name, _) in subcommands {
        assert!(
            stdout.contains(name),
            "{name} missing from --help:\n{stdout}"
        );
    }
    for (name, options) in subcommands {
        let (ok, help, stderr) = run(&[name, "--help"]);
        assert!(ok, "{name} --help: {stderr}");
        assert!(
            help.contains(&format!("Usage: pilotlight {name}")),
            "{help}"
        );
        for o in options {
            assert!(help.contains(o), "{name} --help does not name {o}:\n{help}");
        }
    }
}

#[test]
fn aws_commands_without_a_plan_say_what_to_give() {
    for args in [&["status"][..], &["plan"], &["report"], &["follow"]] {
        let (ok, stdout, stderr) = run_with_env(args, &[("PILOTLIGHT_DETECT_FUNCTION", "")]);
        assert!(!ok && stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("--plan FILE") && stderr.contains("--detect"),
            "{args:?}: {stderr}"
        );
    }
    // A plan without a detect function: the commands sent to detect name what is missing.
    let (ok, _, stderr) = run_with_env(
        &["failover", "--dry-run", "--plan", "plans/reference.env"],
        &[
            ("PILOTLIGHT_DETECT_FUNCTION", ""),
            ("AWS_REGION", "ap-northeast-1"),
        ],
    );
    assert!(!ok && stderr.contains("--detect NAME|ARN"), "{stderr}");
    // Bad input is refused by the parser, before any AWS call.
    let (ok, _, stderr) = run(&[
        "failover",
        "--mode",
        "sideways",
        "--plan",
        "plans/reference.env",
    ]);
    assert!(!ok && stderr.contains("sideways"), "{stderr}");
}
