//! `pilotlight bench`: pure-path figures, no emulator, no network. The events are the repository's own samples.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use pilotlight::FailoverPlan;
use pilotlight::aws::cloudwatch::LiveAlarm;
use pilotlight::steps::detect::decision::{ActiveSide, Situation, decide_alarm};
use pilotlight::trigger::{Trigger, parse_trigger};

use crate::offline::read_json;

#[derive(clap::Args)]
pub struct Args {
    /// How many times each operation runs.
    #[arg(long, default_value_t = 20_000)]
    iterations: u32,
}

pub fn run(a: &Args) -> Result<ExitCode, String> {
    let iterations = a.iterations;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan =
        FailoverPlan::from_file(&root.join("plans/reference.env")).map_err(|e| e.to_string())?;
    let shapes = [
        "detect-alarm-lambda-action.json",
        "detect-alarm-sns.json",
        "detect-alarm-eventbridge.json",
        "detect-manual-failover.json",
    ];
    println!("{:<40} {:>12} {:>12}", "operation", "per op", "ops/s");
    for shape in shapes {
        let event = read_json(&root.join("events").join(shape))?;
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(
                parse_trigger(std::hint::black_box(&event)).map_err(|e| e.to_string())?,
            );
        }
        print_rate(&format!("parse {shape}"), start.elapsed(), iterations);
    }
    let Trigger::Alarm(t) = parse_trigger(&read_json(&root.join("events/detect-alarm-sns.json"))?)
        .map_err(|e| e.to_string())?
    else {
        return Err("detect-alarm-sns.json is not an alarm".into());
    };
    let now = chrono::Utc::now();
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
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(decide_alarm(&plan, std::hint::black_box(&t), &situation));
    }
    print_rate(
        "decide (quorum, cooldown, name)",
        start.elapsed(),
        iterations,
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string());
    println!(
        "{:<40} {:>12}",
        "peak resident memory (VmHWM)",
        peak.unwrap_or_else(|| "n/a".into())
    );
    Ok(ExitCode::SUCCESS)
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
