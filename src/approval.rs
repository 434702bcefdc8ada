//! `pilotlight approve | reject [EXECUTION]`: the answer to a paused execution's approval request, sent to detect
//! with the execution named; detect reads the pending task token from the execution's history
//! (`aws::stepfunctions::pending_task_token`), so the operator never handles a token. Without a name, the running
//! execution whose history holds an approval request is the one answered.

use std::process::ExitCode;

use pilotlight::aws::lambda::invoke;
use pilotlight::aws::stepfunctions::{execution_arn, pending_task_token, recent_executions};
use pilotlight::trigger::{CommandName, ManualCommand};

use crate::connect::{AwsArgs, Session, execution_name};
use crate::start::OverrideArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// The execution (name or ARN) that asked; default: the running one with an approval request.
    execution: Option<String>,
    /// Why (recorded with the answer).
    #[arg(long)]
    reason: Option<String>,
    /// approve: the overrides the answer adds (e.g. --allow-stale-ami for a preflight finding).
    #[command(flatten)]
    overrides: OverrideArgs,
    /// Return once answered: do not follow the execution.
    #[arg(long)]
    no_follow: bool,
}

pub async fn run(a: Args, approve: bool) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let detect = s.detect()?;
    let arn = match &a.execution {
        Some(_) => s.execution(a.execution.as_deref(), true).await?,
        None => waiting_for_approval(&s).await?,
    };
    let command = ManualCommand {
        command: if approve {
            CommandName::Approve
        } else {
            CommandName::Reject
        },
        dry_run: false,
        mode: None,
        reason: a.reason.clone(),
        force: None,
        overrides: a.overrides.overrides(),
        approval: None,
        execution: Some(arn.clone()),
        token: None,
    };
    let payload = serde_json::to_value(&command).map_err(|e| e.to_string())?;
    let answer = invoke(&s.lambda, detect, &payload)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "detect: {} {}: {}",
        answer["outcome"].as_str().unwrap_or_default(),
        execution_name(&arn),
        answer["reason"].as_str().unwrap_or_default()
    );
    if a.no_follow {
        return Ok(ExitCode::SUCCESS);
    }
    crate::follow::follow(&s, &arn).await
}

/// How long `approve` without a name waits for a running execution to ask (its preflight runs first).
const ASK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The newest running execution whose history holds an approval request; while executions run and none has
/// asked yet (the preflight comes first), it waits up to [`ASK_WAIT`].
async fn waiting_for_approval(s: &Session) -> Result<String, String> {
    let sm = s.state_machine()?;
    let sfn = s.ctx.aws.sfn();
    let deadline = std::time::Instant::now() + ASK_WAIT;
    loop {
        let recent = recent_executions(sfn, sm)
            .await
            .map_err(|e| e.to_string())?;
        let running: Vec<_> = recent.iter().filter(|e| e.status == "RUNNING").collect();
        for e in &running {
            let arn = execution_arn(sm, &e.name);
            if pending_task_token(sfn, &arn, "approval")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Ok(arn);
            }
        }
        if running.is_empty() || std::time::Instant::now() > deadline {
            return Err(format!(
                "no running execution of {sm} has asked for approval{}: name the execution the approval \
                 request names (`pilotlight status` lists the running ones)",
                if running.is_empty() {
                    String::new()
                } else {
                    format!(" within {} s", ASK_WAIT.as_secs())
                }
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
