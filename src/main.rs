//! `pilotlight`: the local companion of the Lambda functions.
//!
//! - `pilotlight check-plan [--json] <file>`: validate a plan file (the `PILOTLIGHT_*` keys the SAM parameters
//!   become) before deploying it; prints the plan or the error naming the variable. With `--json`, one JSON object
//!   `{"plan": ..., "variables": {...}}`: the validated plan and the `PILOTLIGHT_*` values it was read from (the
//!   file, then the environment), so tools such as the drill read a plan without a parser of their own.
//! - `pilotlight parse-event <event.json> [--plan <file>]`: what `detect` would make of an event, offline: the
//!   trigger it parses and, with a plan, whether the origin checks accept it. No AWS call.
//! - `pilotlight statemachine [--check]`: write the state machine generated from the flow definition
//!   (`shared/src/flow.rs`) to `statemachine/failover.asl.json`; `--check` only says whether the file is current.
//! - `pilotlight bench [--iterations N]`: figures for the hot, pure part of `detect` (parsing each alarm shape,
//!   deciding) and the process's peak memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use pilotlight::FailoverPlan;
use pilotlight::aws::cloudwatch::LiveAlarm;
use pilotlight::plan::parse_env_file;
use pilotlight::steps::detect::decision::{ActiveSide, Situation, check_origin, decide_alarm};
use pilotlight::trigger::{Trigger, parse_trigger};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-plan") => match args.get(1).map(String::as_str) {
            Some("--json") => args
                .get(2)
                .ok_or_else(usage)
                .and_then(|f| check_plan_json(Path::new(f))),
            Some(f) => check_plan(Path::new(f)),
            None => Err(usage()),
        },
        Some("parse-event") => args
            .get(1)
            .ok_or_else(usage)
            .and_then(|f| parse_event(Path::new(f), flag(&args, "--plan"))),
        Some("statemachine") => statemachine(args.iter().any(|a| a == "--check")),
        // The "Permissions" table of docs/security.md, from the permissions declared in the code.
        Some("permissions") => {
            print!("{}", pilotlight::permissions::markdown());
            Ok(())
        }
        Some("bench") => bench(
            flag(&args, "--iterations")
                .map(|n| n.to_string_lossy().parse().unwrap_or(20_000))
                .unwrap_or(20_000),
        ),
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pilotlight: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: pilotlight check-plan [--json] <file> | parse-event <event.json> [--plan <file>] | statemachine [--check] \
     | permissions | bench [--iterations N]"
        .into()
}

fn flag(args: &[String], name: &str) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// The committed definition, relative to the workspace root (the command runs there, as `cargo run` does).
const STATE_MACHINE_FILE: &str = "statemachine/failover.asl.json";

fn statemachine(check: bool) -> Result<(), String> {
    let generated = pilotlight::flow::asl::render();
    let committed = std::fs::read_to_string(STATE_MACHINE_FILE).unwrap_or_default();
    if check {
        return if committed == generated {
            eprintln!("{STATE_MACHINE_FILE} is what shared/src/flow.rs generates");
            Ok(())
        } else {
            Err(format!(
                "{STATE_MACHINE_FILE} differs from what shared/src/flow.rs generates: run `cargo run -- statemachine` \
                 and commit the result"
            ))
        };
    }
    std::fs::write(STATE_MACHINE_FILE, &generated)
        .map_err(|e| format!("{STATE_MACHINE_FILE}: {e}"))?;
    eprintln!(
        "wrote {STATE_MACHINE_FILE} ({} lines)",
        generated.lines().count()
    );
    Ok(())
}

fn check_plan(path: &Path) -> Result<(), String> {
    let plan = FailoverPlan::from_file(path).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?
    );
    for w in plan.warnings() {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "plan OK: {} -> {} ({} alarms, quorum {})",
        plan.primary.region,
        plan.dr.region,
        plan.alarms.alarms.len(),
        plan.alarms.quorum
    );
    Ok(())
}

/// The validated plan and the variables it was read from, merged as `FailoverPlan::from_file` merges them (the
/// environment wins), so a caller can pass exactly these values on (e.g. as template parameters).
fn check_plan_json(path: &Path) -> Result<(), String> {
    let plan = FailoverPlan::from_file(path).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut variables: BTreeMap<String, String> = parse_env_file(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into_iter()
        .collect();
    variables.extend(std::env::vars().filter(|(k, _)| k.starts_with("PILOTLIGHT_")));
    let out =
        serde_json::json!({ "plan": plan, "variables": variables, "warnings": plan.warnings() });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn parse_event(path: &Path, plan: Option<PathBuf>) -> Result<(), String> {
    let event = read_json(path)?;
    let trigger = parse_trigger(&event).map_err(|e| e.to_string())?;
    match &trigger {
        Trigger::Alarm(t) => {
            println!(
                "{}",
                serde_json::to_string_pretty(t).map_err(|e| e.to_string())?
            );
            if let Some(p) = plan {
                let plan = FailoverPlan::from_file(&p).map_err(|e| e.to_string())?;
                check_origin(&plan, t).map_err(|e| e.to_string())?;
                eprintln!("origin OK for plan {}", p.display());
            }
        }
        Trigger::Manual(c) => println!(
            "{}",
            serde_json::to_string_pretty(c).map_err(|e| e.to_string())?
        ),
    }
    Ok(())
}

/// Pure-path figures: no emulator, no network. The events are the repository's own samples. Each event is timed
/// on its own, from the payload's bytes (what the runtime hands over) to the verdict, so the figures are
/// percentiles of what one invocation spends, not a mean hiding the tail.
fn bench(iterations: u32) -> Result<(), String> {
    /// Nearest-rank percentile of sorted nanoseconds, in microseconds.
    fn pct(sorted: &[u64], p: f64) -> f64 {
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e3
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan =
        FailoverPlan::from_file(&root.join("plans/reference.env")).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    // Every alarm of the plan in ALARM, no execution running, primary active: the verdict is a failover, the
    // longest path through the policy (quorum counted over every alarm, cooldown and name derived).
    let situation = Situation {
        alarms: plan
            .alarms
            .alarms
            .iter()
            .map(|a| LiveAlarm {
                name: a.name.clone(),
                region: a.region.clone(),
                state: "ALARM".into(),
                transitioned_at: Some(now),
            })
            .collect(),
        unknown_alarm_regions: vec![],
        executions: vec![],
        executions_unknown: None,
        active: ActiveSide::Primary,
        now,
    };
    let iterations = iterations.max(1) as usize;
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}   (µs, {iterations} events each)",
        "event shape", "json p50", "parse", "decide", "total p50", "total p99", "max"
    );
    let shapes = [
        "detect-alarm-lambda-action.json",
        "detect-alarm-sns.json",
        "detect-alarm-eventbridge.json",
        "detect-manual-failover.json",
    ];
    for shape in shapes {
        let path = root.join("events").join(shape);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (mut json, mut parse, mut decide, mut total) = (
            Vec::with_capacity(iterations),
            Vec::with_capacity(iterations),
            Vec::with_capacity(iterations),
            Vec::with_capacity(iterations),
        );
        let all = Instant::now();
        for _ in 0..iterations {
            let t0 = Instant::now();
            let value: serde_json::Value = serde_json::from_slice(std::hint::black_box(&bytes))
                .map_err(|e| format!("{shape}: {e}"))?;
            let t1 = Instant::now();
            let trigger = parse_trigger(&value).map_err(|e| format!("{shape}: {e}"))?;
            let t2 = Instant::now();
            if let Trigger::Alarm(t) = &trigger {
                // What detect does with an alarm before any AWS call: the origin check, then the policy.
                std::hint::black_box(check_origin(&plan, t).is_ok());
                std::hint::black_box(decide_alarm(&plan, t, &situation));
            }
            let t3 = Instant::now();
            std::hint::black_box(trigger);
            for (v, d) in [
                (&mut json, t1 - t0),
                (&mut parse, t2 - t1),
                (&mut decide, t3 - t2),
                (&mut total, t3 - t0),
            ] {
                v.push(d.as_nanos() as u64);
            }
        }
        let elapsed = all.elapsed();
        for v in [&mut json, &mut parse, &mut decide, &mut total] {
            v.sort_unstable();
        }
        println!(
            "{:<34} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>9.2} {:>9.2}",
            shape,
            pct(&json, 50.0),
            pct(&parse, 50.0),
            pct(&decide, 50.0),
            pct(&total, 50.0),
            pct(&total, 99.0),
            pct(&total, 100.0)
        );
        print_rate(&format!("  throughput {shape}"), elapsed, iterations as u32);
    }
    println!(
        "(a manual command has no policy of its own to time here: its decide column is the match on the trigger)"
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string());
    println!(
        "{:<34} {:>12}",
        "peak resident memory (VmHWM)",
        peak.unwrap_or_else(|| "n/a".into())
    );
    Ok(())
}

fn print_rate(what: &str, elapsed: std::time::Duration, n: u32) {
    let per = elapsed / n.max(1);
    println!(
        "{:<40} {:>10.1}µs {:>12.0}",
        what,
        per.as_secs_f64() * 1e6,
        f64::from(n) / elapsed.as_secs_f64()
    );
}
