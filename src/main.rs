//! `pilotlight`: the operator's command line, over the same `shared` crate the Lambda functions run.
//!
//! Offline (no AWS call): `check-plan`, `parse-event`, `statemachine`, `permissions`, `bench`. Against the
//! deployed stack (real AWS through the usual credential chain, or emulators through `AWS_ENDPOINT_URL*`):
//! `status`, `readiness`, `plan`, `failover`, `failback`, `follow`, `approve`, `reject`, `report`. A subcommand is one module
//! here and one variant of [`Command`]; `pilotlight <command> --help` documents each.

mod approval;
mod bench;
mod connect;
mod dry_run;
mod follow;
mod offline;
mod readiness;
mod report;
mod start;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pilotlight",
    version,
    about = "pilotlight: failover orchestration for an AWS pilot-light DR setup: the operator's commands",
    after_help = "AWS commands read the plan from --plan FILE or from the deployed detect function (--detect or \
                  PILOTLIGHT_DETECT_FUNCTION), use the usual credential chain (--profile, --region), and reach \
                  emulators through AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plan file (the PILOTLIGHT_* keys the SAM parameters become) before deploying it.
    CheckPlan(offline::CheckPlanArgs),
    /// What detect would make of an event, offline: the trigger it parses and, with a plan, the origin checks.
    ParseEvent(offline::ParseEventArgs),
    /// Write the state machine generated from the flow definition to statemachine/failover.asl.json.
    Statemachine(offline::StatemachineArgs),
    /// The "Permissions" table of docs/security.md, from the permissions declared in the code.
    Permissions,
    /// Figures for the hot, pure part of detect (parsing each alarm shape, deciding) and the peak memory.
    Bench(bench::Args),
    /// Which region is active, the database roles and lag, the Auto Scaling groups, dials, DNS, lock, executions.
    Status(status::Args),
    /// Is the standby ready to take over now? Every readiness check (docs/readiness.md) with the value seen and the
    /// limit; exit status 0 all pass, 1 a warning, 2 a failure.
    Readiness(readiness::Args),
    /// What a failover or failback would change right now: a dry-run computed locally from live reads.
    Plan(dry_run::Args),
    /// Fail over to the DR region (detect's manual command), then follow the execution live.
    Failover(start::Args),
    /// Fail back to the primary region (detect's manual command), then follow the execution live.
    Failback(start::Args),
    /// Follow an execution live (default: the running one, else the latest); Ctrl-C stops following only.
    Follow(follow::Args),
    /// Approve the pending approval request of an execution (default: the running one that asked).
    Approve(approval::Args),
    /// Reject the pending approval request of an execution (default: the running one that asked).
    Reject(approval::Args),
    /// The report of an execution (default: the latest): timeline, RTO, RPO and its basis, changes, warnings.
    Report(report::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckPlan(a) => offline::check_plan(&a),
        Command::ParseEvent(a) => offline::parse_event(&a),
        Command::Statemachine(a) => offline::statemachine(&a),
        Command::Permissions => {
            print!("{}", pilotlight::permissions::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => bench::run(&a),
        Command::Status(a) => connect::block_on(status::run(a)),
        Command::Readiness(a) => connect::block_on(readiness::run(a)),
        Command::Plan(a) => connect::block_on(dry_run::run(a)),
        Command::Failover(a) => connect::block_on(start::run(a, start::Direction::Failover)),
        Command::Failback(a) => connect::block_on(start::run(a, start::Direction::Failback)),
        Command::Follow(a) => connect::block_on(follow::run(a)),
        Command::Approve(a) => connect::block_on(approval::run(a, true)),
        Command::Reject(a) => connect::block_on(approval::run(a, false)),
        Command::Report(a) => connect::block_on(report::run(a)),
    };
    result.unwrap_or_else(|e| {
        eprintln!("pilotlight: {e}");
        ExitCode::FAILURE
    })
}
