//! `pilotlight failover | failback`: detect's manual command sent through Lambda Invoke, then the execution
//! followed live. Sending the command to detect (rather than starting the execution from here) keeps the flow lock,
//! the checks detect makes before starting (already active, running execution, cooldown), the approval gate and
//! the execution's deterministic name and input in one place: an operator's run is the same as any other.

use std::process::ExitCode;

use pilotlight::aws::lambda::invoke;
use pilotlight::step::Overrides;
use pilotlight::trigger::{CommandName, ManualCommand};

use crate::connect::{AwsArgs, Session};

pub enum Direction {
    Failover,
    Failback,
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum ModeArg {
    /// The primary answers: drain, catch up to lag 0, promote, dial up in steps.
    Graceful,
    /// The primary is down: promote and scale side by side, dials straight to the target.
    Ungraceful,
}

impl From<ModeArg> for pilotlight::plan::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Graceful => pilotlight::plan::Mode::Graceful,
            ModeArg::Ungraceful => pilotlight::plan::Mode::Ungraceful,
        }
    }
}

/// The named risks an operator may accept (docs/guarantees.md "Overrides"), one flag each.
#[derive(clap::Args, Clone, Default)]
pub struct OverrideArgs {
    /// Promote although the replica lag is above the plan's limit (accept losing that much data).
    #[arg(long)]
    allow_replica_lag: bool,
    /// Promote although the lag is unknown (no fresh datapoint, or replication not running).
    #[arg(long)]
    allow_unknown_lag: bool,
    /// Launch the newest recovery point although it is older than the plan allows.
    #[arg(long)]
    allow_stale_ami: bool,
    /// Start although the target region is already active.
    #[arg(long)]
    allow_active_target: bool,
    /// Treat a standalone target DB instance without a pilotlight promotion record as the writer.
    #[arg(long)]
    allow_stale_writer: bool,
    /// Let re-protection take the DR group to 0/0/0 while its dial is above 0.
    #[arg(long)]
    allow_serving_scale_down: bool,
    /// Launch any instance's newest recovery point when the plan names no AMI source.
    #[arg(long)]
    allow_any_ami_source: bool,
    /// Fail back although the old writer is still writable (never fenced).
    #[arg(long)]
    allow_writable_old_writer: bool,
}

impl OverrideArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            allow_replica_lag: self.allow_replica_lag,
            allow_unknown_lag: self.allow_unknown_lag,
            allow_stale_ami: self.allow_stale_ami,
            allow_active_target: self.allow_active_target,
            allow_stale_writer: self.allow_stale_writer,
            allow_serving_scale_down: self.allow_serving_scale_down,
            allow_any_ami_source: self.allow_any_ami_source,
            allow_writable_old_writer: self.allow_writable_old_writer,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// A rehearsal: the execution runs every step in dry-run (reads only), changes nothing, takes no lock.
    #[arg(long)]
    dry_run: bool,
    /// The flow's mode (default: the plan's rule, ungraceful for a failover; a failback is always graceful).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Pause for an operator's approval before the first change, even if the plan does not ask for it.
    #[arg(long)]
    approval: bool,
    /// Why (recorded in the execution input and the report).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
    /// Print detect's decision and return: do not follow the execution.
    #[arg(long)]
    no_follow: bool,
}

pub async fn run(a: Args, direction: Direction) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let detect = s.detect()?;
    let command = ManualCommand {
        command: match direction {
            Direction::Failover => CommandName::Failover,
            Direction::Failback => CommandName::Failback,
        },
        dry_run: a.dry_run,
        mode: a.mode.map(Into::into),
        reason: Some(
            a.reason
                .clone()
                .unwrap_or_else(|| format!("pilotlight CLI ({})", whoami())),
        ),
        force: None,
        overrides: a.overrides.overrides(),
        approval: a.approval.then_some(true),
        execution: None,
        token: None,
    };
    let payload = serde_json::to_value(&command).map_err(|e| e.to_string())?;
    let decision = invoke(&s.lambda, detect, &payload)
        .await
        .map_err(|e| e.to_string())?;
    let outcome = decision["outcome"].as_str().unwrap_or_default();
    println!(
        "detect: {outcome}: {}",
        decision["reason"].as_str().unwrap_or_default()
    );
    let Some(arn) = decision["execution_arn"]
        .as_str()
        .filter(|_| outcome == "started")
    else {
        // Skipped (already active, running, cooldown, lock held) or ignored: nothing was started.
        return Ok(ExitCode::FAILURE);
    };
    println!("execution {arn}");
    if a.no_follow {
        return Ok(ExitCode::SUCCESS);
    }
    crate::follow::follow(&s, arn).await
}

/// Who runs the command, for the recorded reason.
fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "operator".to_string())
}
