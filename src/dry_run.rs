//! `pilotlight plan`: what a failover or failback would change right now, computed here from live reads by the
//! steps' own dry-run paths (`operator::dry_run`); no execution is started and nothing is changed.

use std::process::ExitCode;

use pilotlight::operator::dry_run::{dry_run, render};
use pilotlight::plan::{Direction, Mode};

use crate::connect::{AwsArgs, Session};
use crate::start::{ModeArg, OverrideArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// failover (to DR) or failback (to the primary).
    #[arg(value_enum, default_value = "failover")]
    direction: DirectionArg,
    /// The flow's mode (a failback is always graceful).
    #[arg(long, value_enum, default_value = "ungraceful")]
    mode: ModeArg,
    #[command(flatten)]
    overrides: OverrideArgs,
    /// The plan as one JSON object (every call's dry-run report, the findings, the changes).
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum DirectionArg {
    Failover,
    Failback,
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let direction = match a.direction {
        DirectionArg::Failover => Direction::Failover,
        DirectionArg::Failback => Direction::Failback,
    };
    let mode = match (direction, a.mode) {
        (Direction::Failback, _) => Mode::Graceful,
        (_, m) => m.into(),
    };
    let plan = dry_run(&s.ctx, direction, mode, a.overrides.overrides()).await;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&plan));
    }
    // Findings or a call that errored: the real run would not go through as it stands.
    let blocked = !plan.findings.is_empty() || plan.calls.iter().any(|c| c.error.is_some());
    Ok(if blocked {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
