//! `pilotlight bench`: pure-path figures, no emulator, no network. The events are the repository's own samples.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use pilotlight::FailoverPlan;
use pilotlight::aws::cloudwatch::LiveAlarm;
use pilotlight::runtime::Payload;
use pilotlight::steps::detect::decision::{ActiveSide, Situation, check_origin, decide_alarm};
use pilotlight::trigger::{Trigger, parse_trigger};

#[derive(clap::Args)]
pub struct Args {
    /// How many times each operation runs.
    #[arg(long, default_value_t = 20_000)]
    iterations: u32,
}

pub fn run(a: &Args) -> Result<ExitCode, String> {
    let iterations = a.iterations;
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
            // As the runtime parses an invocation: JSON with the duplicate-key watch (runtime::Payload).
            let payload: Payload = serde_json::from_slice(std::hint::black_box(&bytes))
                .map_err(|e| format!("{shape}: {e}"))?;
            let t1 = Instant::now();
            let trigger = parse_trigger(&payload.value).map_err(|e| format!("{shape}: {e}"))?;
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
