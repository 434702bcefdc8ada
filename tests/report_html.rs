//! The HTML report (`pilotlight::steps::notify::report::html::render`) of a real execution, opened in headless
//! Chromium (Debian's `chromium` package, `scripts/install-tools.sh chromium`): the DOM Chromium builds has every
//! phase, both side-by-side branches as their own rows overlapping in time, and the RTO marker; the screenshot is
//! a real picture of it.
//!
//! The execution runs in ministack's Step Functions, shaped like the generated failover (the `recover` Parallel:
//! promote-db and scale-compute, each `start` then `status` polls after a Wait, its branch output the step
//! reports; the shift-traffic dial loop; update-dns; the `fence` Parallel), its tasks one stand-in
//! `provided.al2023` function (a Python Runtime API loop, as in tests/report.rs) answering each call with a step
//! report. The report is built from the execution's history as notify builds it.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use pilotlight::aws::stepfunctions::step_reports;
use pilotlight::steps::notify::report::{self, StepHistory, html};
use serde_json::{Map, Value, json};

const REGION: &str = "us-east-1";

/// Answers each call with a step report: `start`/`status` are done once `call` reaches `polls`, a dial step moves
/// the DR dial 0 -> 25 -> 50 -> 100, a fence call reports its side fenced.
const STAND_IN: &str = include_str!("common/step_stand_in.py");

/// The states of one step's `start`, then `status` after a 1 s Wait until done (`polls` status calls), with the
/// generated machine's result paths (`$.steps.<key>_start`, `$.steps.<key>`); `then` is the next state, or the
/// branch's end (its output: the step reports) when None.
fn polled(function: &str, step: &str, polls: u32, then: Option<&str>) -> Map<String, Value> {
    let key = step.replace('-', "_");
    let call = |action: &str| {
        json!({"Type": "Task", "Resource": function,
               "Parameters": {"step": step, "action": action, "polls": polls, "call.$": format!("$.polls.{key}.count")}})
    };
    let mut start = call("start");
    start["ResultPath"] = json!(format!("$.steps.{key}_start"));
    start["Next"] = json!(format!("{step} count"));
    let mut status = call("status");
    status["ResultPath"] = json!(format!("$.steps.{key}"));
    status["Next"] = json!(format!("{step} done?"));
    let end = match then {
        Some(next) => json!({"Type": "Pass", "Next": next}),
        None => json!({"Type": "Pass", "End": true, "Parameters": {
            format!("{key}_start.$"): format!("$.steps.{key}_start"), format!("{key}.$"): format!("$.steps.{key}")}}),
    };
    let states = json!({
        format!("{step} init"): {"Type": "Pass", "Result": {"count": 0}, "ResultPath": format!("$.polls.{key}"),
                                 "Next": format!("{step} start")},
        format!("{step} start"): start,
        format!("{step} count"): {"Type": "Pass", "Parameters": {"count.$": format!("States.MathAdd($.polls.{key}.count, 1)")},
                                  "ResultPath": format!("$.polls.{key}"), "Next": format!("{step} wait")},
        format!("{step} wait"): {"Type": "Wait", "Seconds": 1, "Next": format!("{step} status")},
        format!("{step} status"): status,
        format!("{step} done?"): {"Type": "Choice", "Default": format!("{step} count"), "Choices": [
            {"Variable": format!("$.steps.{key}.done"), "BooleanEquals": true, "Next": format!("{step} end")}]},
        format!("{step} end"): end,
    });
    states.as_object().unwrap().clone()
}

fn branch(start: &str, states: Map<String, Value>) -> Value {
    json!({"StartAt": start, "States": states})
}

fn fence_branch(function: &str, step: &str) -> Value {
    json!({"StartAt": "fence", "States": {"fence": {"Type": "Task", "Resource": function,
        "Parameters": {"step": step, "action": "fence"}, "End": true}}})
}

/// Runs the failover-shaped execution to its end: (execution ARN, its output, the history's step reports).
async fn run_failover() -> (String, Value, Vec<pilotlight::step::StepReport>) {
    let name = common::unique("report-html");
    let f = lambda::create_function(REGION, &name, STAND_IN);
    let mut after_recover = polled(&f, "update-dns", 1, Some("Fence"));
    after_recover.extend(
        json!({
            "Recover": {"Type": "Parallel", "ResultPath": "$.steps.recover", "Next": "InitDial", "Branches": [
                branch("promote-db init", polled(&f, "promote-db", 2, None)),
                branch("scale-compute init", polled(&f, "scale-compute", 3, None))]},
            "InitDial": {"Type": "Pass", "Result": 0, "ResultPath": "$.dial", "Next": "ShiftTraffic"},
            "ShiftTraffic": {"Type": "Task", "Resource": f,
                             "Parameters": {"step": "shift-traffic", "action": "start", "dial.$": "$.dial"},
                             "ResultPath": "$.steps.shift_traffic", "Next": "Shifted?"},
            "Shifted?": {"Type": "Choice", "Default": "Bake", "Choices": [
                {"Variable": "$.steps.shift_traffic.done", "BooleanEquals": true, "Next": "update-dns init"}]},
            "Bake": {"Type": "Wait", "Seconds": 1, "Next": "NextDial"},
            "NextDial": {"Type": "Pass", "InputPath": "$.steps.shift_traffic.saw.dial", "ResultPath": "$.dial",
                         "Next": "ShiftTraffic"},
            "Fence": {"Type": "Parallel", "ResultPath": "$.steps.fence", "End": true, "Branches": [
                fence_branch(&f, "promote-db"), fence_branch(&f, "scale-compute"),
                fence_branch(&f, "shift-traffic")]}
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    let definition = json!({"StartAt": "Recover", "States": after_recover});
    let sfn = aws_sdk_sfn::Client::new(&common::sdk_config_at(&common::ministack_url()).await);
    let machine = sfn
        .create_state_machine()
        .name(&name)
        .definition(definition.to_string())
        .role_arn(format!("arn:aws:iam::{}:role/{name}", common::ACCOUNT))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    // The alarm fired 2 s before the execution started (detect's decision and StartExecution take that long).
    let triggered =
        (Utc::now() - chrono::Duration::seconds(2)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let input = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false, "overrides": {},
                       "trigger": {"source": "alarm", "alarms": ["web-primary-5xx"], "state_change_time": triggered,
                                   "reason": "report_html test"}});
    let arn = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .input(input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        match d.status().as_str() {
            "RUNNING" => {
                assert!(Instant::now() < deadline, "{arn} still running after 120 s");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            "SUCCEEDED" => {
                let state = serde_json::from_str(d.output().unwrap()).unwrap();
                let history = step_reports(&sfn, &arn).await.unwrap();
                return (arn, state, history);
            }
            other => panic!("{arn} {other}: {:?} {:?}", d.error(), d.cause()),
        }
    }
}

/// Debian's chromium, or a failure saying how to install it (never a skip: the report's rendering is part of the
/// proof).
fn chromium() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: the HTML report is checked in headless Chromium. Install Debian's package \
             at the pinned version with `scripts/install-tools.sh chromium` (apt-get, as root), then re-run"
        )
    })
}

/// Runs headless Chromium on `page` with `args` (a fresh profile, nothing fetched in the background), bounded to
/// 120 s; its stdout.
fn run_chromium(page: &Path, profile: &Path, args: &[&str]) -> String {
    let url = format!("file://{}", page.display());
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The chart rows in a DOM dump: (phase, start s, end s, y, branch).
fn rows(dom: &str) -> Vec<(String, f64, f64, f64, Option<String>)> {
    let attr = |tag: &str, name: &str| {
        let key = format!(" {name}=\"");
        tag.find(&key).map(|i| {
            let rest = &tag[i + key.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
    };
    dom.split("<g class=\"row\"")
        .skip(1)
        .map(|s| {
            let tag = &s[..s.find('>').unwrap()];
            let num = |n| attr(tag, n).unwrap().parse::<f64>().unwrap();
            (
                attr(tag, "data-phase").unwrap(),
                num("data-start"),
                num("data-end"),
                num("data-y"),
                attr(tag, "data-branch"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_html_report_of_a_failover_renders_in_chromium_with_both_branches_and_the_rto() {
    let chromium = chromium(); // before the execution: a missing browser fails at once
    let (arn, state, history) = run_failover().await;
    let r = report::build(&arn, &state, &StepHistory::Read(history));
    let phases: Vec<&str> = r.timeline.iter().map(|t| t.step.as_str()).collect();
    assert_eq!(r.outcome, "succeeded", "{}", r.summary);
    let rto = r.rto_seconds.expect("the shift completed: an RTO");
    assert!(
        rto > 2.0,
        "counted from the trigger 2 s before the start: {rto}"
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("failover-report.html");
    let png = dir.join("failover-report.png");
    let _ = std::fs::remove_file(&png);
    std::fs::write(&page, html::render(&r)).unwrap();
    let profile = tempdir(&dir);

    // The DOM Chromium built from the file.
    let dom = run_chromium(&page, &profile, &["--dump-dom"]);
    assert!(dom.contains("<svg class=\"gantt\""), "{dom}");
    let drawn = rows(&dom);
    let drawn_phases: Vec<&str> = drawn.iter().map(|r| r.0.as_str()).collect();
    for p in [
        "promote-db",
        "scale-compute",
        "shift-traffic",
        "update-dns",
        "promote-db-fence",
        "scale-compute-fence",
        "shift-traffic-fence",
    ] {
        assert!(phases.contains(&p), "{p} not in the report: {phases:?}");
        assert!(drawn_phases.contains(&p), "{p} not drawn: {drawn_phases:?}");
        assert!(
            dom.contains(&format!("<tr data-phase=\"{p}\">")),
            "{p} not in the steps table"
        );
    }
    assert_eq!(drawn.len(), r.timeline.len(), "one row per phase");
    let recover: Vec<_> = drawn
        .iter()
        .filter(|r| r.4.as_deref() == Some("recover"))
        .collect();
    let branch = |p: &str| {
        recover
            .iter()
            .find(|r| r.0 == p)
            .unwrap_or_else(|| panic!("{p} is not a recover branch: {drawn:?}"))
    };
    assert_eq!(recover.len(), 2, "{drawn:?}");
    let (db, compute) = (branch("promote-db"), branch("scale-compute"));
    assert_ne!(db.3, compute.3, "a row each");
    assert!(
        db.1 < compute.2 && compute.1 < db.2,
        "the branches overlap in time: {db:?} {compute:?}"
    );
    let shift = drawn.iter().find(|r| r.0 == "shift-traffic").unwrap();
    assert!(
        shift.1 >= db.2.max(compute.2),
        "{shift:?} after both branches"
    );
    // Every poll drawn: 1 + 2 promote-db calls, 1 + 3 scale-compute, 3 dial steps, 1 + 1 DNS, 3 fences.
    assert_eq!(dom.matches("<rect class=\"call").count(), 15);
    let marker = format!("data-seconds=\"{rto:.3}\"");
    assert!(
        dom.contains("id=\"rto-marker\"") && dom.contains(&marker),
        "RTO marker"
    );
    assert!(dom.contains(&format!(">RTO {rto:.1} s</text>")));
    assert!(dom.contains(&format!("<p class=\"figure\">{rto:.1} s</p>")));
    assert!(dom.contains("<p class=\"figure\">3.0 s</p>"), "RPO");
    assert!(dom.contains("<td>eg-dr</td><td>TrafficDialPercentage</td><td>50</td><td>100</td>"));

    // The screenshot: a PNG of the window's size with something drawn in it.
    run_chromium(
        &page,
        &profile,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,900",
        ],
    );
    let bytes =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (w, h) = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1400, 900));
    // A blank 1400x900 page compresses to a few KiB; text, bars and tables do not.
    assert!(
        bytes.len() > 40_000,
        "the screenshot is nearly empty: {} bytes",
        bytes.len()
    );
    let _ = std::fs::remove_dir_all(&profile);
    eprintln!(
        "HTML report: {}\nscreenshot: {}\n(chromium {})",
        page.display(),
        png.display(),
        chromium.display()
    );
}

/// A fresh Chromium profile directory under `dir`.
fn tempdir(dir: &Path) -> PathBuf {
    let p = dir.join(common::unique("chromium-profile"));
    std::fs::create_dir_all(&p).unwrap();
    p
}
