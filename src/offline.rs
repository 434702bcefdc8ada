//! The offline commands: plan checks, event parsing, the generated state machine. No AWS call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pilotlight::FailoverPlan;
use pilotlight::plan::parse_env_file;
use pilotlight::steps::detect::decision::check_origin;
use pilotlight::trigger::{Trigger, parse_trigger};

#[derive(clap::Args)]
pub struct CheckPlanArgs {
    /// One JSON object {"plan", "variables", "warnings"}: the validated plan and the PILOTLIGHT_* values it was read
    /// from (the file, then the environment), so tools such as the drill read a plan without a parser of their own.
    #[arg(long)]
    json: bool,
    /// The plan file (KEY=VALUE lines, e.g. plans/reference.env).
    file: PathBuf,
}

#[derive(clap::Args)]
pub struct ParseEventArgs {
    /// The event (JSON), e.g. events/detect-alarm-sns.json.
    event: PathBuf,
    /// Also apply this plan's origin checks (account, alarm names and regions).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct StatemachineArgs {
    /// Only say whether the committed file is what the flow definition generates.
    #[arg(long)]
    check: bool,
}

pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn pretty(v: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(v).map_err(|e| e.to_string())
}

/// The committed definition, relative to the workspace root (the command runs there, as `cargo run` does).
const STATE_MACHINE_FILE: &str = "statemachine/failover.asl.json";

pub fn statemachine(a: &StatemachineArgs) -> Result<ExitCode, String> {
    let generated = pilotlight::flow::asl::render();
    let committed = std::fs::read_to_string(STATE_MACHINE_FILE).unwrap_or_default();
    if a.check {
        return if committed == generated {
            eprintln!("{STATE_MACHINE_FILE} is what shared/src/flow.rs generates");
            Ok(ExitCode::SUCCESS)
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
    Ok(ExitCode::SUCCESS)
}

pub fn check_plan(a: &CheckPlanArgs) -> Result<ExitCode, String> {
    let path = a.file.as_path();
    let plan = FailoverPlan::from_file(path).map_err(|e| e.to_string())?;
    if a.json {
        // The variables merged as `FailoverPlan::from_file` merges them (the environment wins), so a caller can
        // pass exactly these values on (e.g. as template parameters).
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut variables: BTreeMap<String, String> = parse_env_file(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .into_iter()
            .collect();
        variables.extend(std::env::vars().filter(|(k, _)| k.starts_with("PILOTLIGHT_")));
        let out = serde_json::json!({ "plan": plan, "variables": variables, "warnings": plan.warnings() });
        println!("{}", pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", pretty(&plan)?);
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
    Ok(ExitCode::SUCCESS)
}

pub fn parse_event(a: &ParseEventArgs) -> Result<ExitCode, String> {
    let event = read_json(&a.event)?;
    let trigger = parse_trigger(&event).map_err(|e| e.to_string())?;
    match &trigger {
        Trigger::Alarm(t) => {
            println!("{}", pretty(t)?);
            if let Some(p) = &a.plan {
                let plan = FailoverPlan::from_file(p).map_err(|e| e.to_string())?;
                check_origin(&plan, t).map_err(|e| e.to_string())?;
                eprintln!("origin OK for plan {}", p.display());
            }
        }
        Trigger::Manual(c) => println!("{}", pretty(c)?),
    }
    Ok(ExitCode::SUCCESS)
}
