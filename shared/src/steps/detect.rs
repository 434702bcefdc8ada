//! detect: parse the trigger (alarm event shapes and manual commands: [`crate::trigger`]), observe (alarms,
//! executions, dials), decide ([`decision`], pure), start at most one execution. Anything unparseable or foreign
//! fails before the first AWS call, so it cannot change anything.

pub mod decision;
pub mod lock;

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::cloudwatch::describe_alarms;
use crate::aws::globalaccelerator::read_dials;
use crate::aws::stepfunctions::{
    Started, answer_task, execution_arn, recent_executions, start_execution,
};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Direction;
use crate::routing::Dials;
use crate::runtime::Context;
use crate::timestamp::rfc3339;
use crate::trigger::{AlarmState, CommandName, ManualCommand, Trigger, parse_trigger};
use decision::{ActiveSide, Situation, Verdict, check_origin, decide_alarm, decide_manual};
use lock::{Acquired, LockRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Started,
    Skipped,
    Ignored,
    Status,
    /// An approval request was answered yes / no.
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    pub dry_run: bool,
    /// What detect saw before deciding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Situation>,
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let decision = decide(ctx, &event).await?;
    tracing::info!(outcome = ?decision.outcome, reason = %decision.reason, execution = ?decision.execution_name, "decision");
    serde_json::to_value(decision)
        .map_err(|e| Error::new(ErrorKind::Aws, format!("cannot encode decision: {e}")))
}

pub async fn decide(ctx: &Context, event: &Value) -> Result<Decision> {
    match parse_trigger(event)? {
        Trigger::Alarm(t) => {
            check_origin(&ctx.plan, &t)?;
            let dry_run = ctx.plan.dry_run;
            if t.state != AlarmState::Alarm {
                // No AWS call at all for OK / INSUFFICIENT_DATA.
                return Ok(Decision {
                    outcome: Outcome::Ignored,
                    reason: format!(
                        "alarm {} moved to {}: only ALARM can start a failover",
                        t.alarm_name,
                        t.state.as_str()
                    ),
                    execution_name: None,
                    execution_arn: None,
                    direction: None,
                    dry_run,
                    observed: None,
                });
            }
            let situation = observe(ctx).await?;
            let verdict = decide_alarm(&ctx.plan, &t, &situation);
            act(ctx, verdict, Direction::Failover, dry_run, situation).await
        }
        Trigger::Manual(cmd)
            if matches!(cmd.command, CommandName::Approve | CommandName::Reject) =>
        {
            answer_approval(ctx, &cmd).await
        }
        Trigger::Manual(cmd) => {
            let situation = observe(ctx).await?;
            match cmd.direction() {
                None => Ok(Decision {
                    outcome: Outcome::Status,
                    reason: status_line(&situation),
                    execution_name: None,
                    execution_arn: None,
                    direction: None,
                    dry_run: cmd.dry_run,
                    observed: Some(situation),
                }),
                Some(direction) => {
                    debug_assert!(cmd.command != CommandName::Status);
                    let verdict = decide_manual(&ctx.plan, &cmd, direction, &situation);
                    act(ctx, verdict, direction, cmd.dry_run, situation).await
                }
            }
        }
    }
}

/// Sends the operator's answer to the paused execution. Needs no other AWS call: the token names the execution.
async fn answer_approval(ctx: &Context, cmd: &ManualCommand) -> Result<Decision> {
    let approved = cmd.command == CommandName::Approve;
    let reason = cmd
        .reason
        .clone()
        .unwrap_or_else(|| if approved { "approved" } else { "rejected" }.to_string());
    let output = json!({"approved": approved, "reason": reason, "at": rfc3339(chrono::Utc::now(), SecondsFormat::Millis)});
    let token = cmd.token.as_deref().unwrap_or_default();
    answer_task(&ctx.aws.sfn, token, approved, &output.to_string(), &reason).await?;
    Ok(Decision {
        outcome: if approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        },
        reason,
        execution_name: None,
        execution_arn: None,
        direction: None,
        dry_run: false,
        observed: None,
    })
}

/// Reads alarms, executions and dials concurrently. The dials are best-effort: Global Accelerator being
/// unreachable must not stop a failover from starting (the shift step will retry it).
async fn observe(ctx: &Context) -> Result<Situation> {
    let sm = ctx.plan.state_machine_arn()?;
    let (alarms, executions, dials) = tokio::join!(
        describe_alarms(&ctx.aws.alarms, &ctx.plan.alarms.names),
        recent_executions(&ctx.aws.sfn, sm),
        read_dials(&ctx.aws.global_accelerator, &ctx.plan),
    );
    let active = match dials {
        Ok(Dials { primary, dr }) => ActiveSide::from_dials(primary, dr),
        Err(e) => ActiveSide::Unknown {
            reason: e.to_string(),
        },
    };
    Ok(Situation {
        alarms: alarms?,
        executions: executions?,
        active,
        now: chrono::Utc::now(),
    })
}

async fn act(
    ctx: &Context,
    verdict: Verdict,
    direction: Direction,
    dry_run: bool,
    situation: Situation,
) -> Result<Decision> {
    let mut d = Decision {
        outcome: Outcome::Skipped,
        reason: String::new(),
        execution_name: None,
        execution_arn: None,
        direction: Some(direction),
        dry_run,
        observed: Some(situation),
    };
    match verdict {
        Verdict::Ignore { reason } => {
            d.outcome = Outcome::Ignored;
            d.reason = reason;
        }
        Verdict::Skip { reason } => d.reason = reason,
        Verdict::Start {
            name,
            input,
            reason,
        } => {
            let sm = ctx.plan.state_machine_arn()?;
            let body = serde_json::to_string(&input).map_err(|e| {
                Error::new(
                    ErrorKind::Aws,
                    format!("cannot encode execution input: {e}"),
                )
            })?;
            // One flow at a time: the lock first (dry-runs never take it), naming the execution about to start.
            let mut took_over = None;
            let mut locked = None;
            if !dry_run {
                let table = ctx.plan.lock_table()?;
                let me = LockRecord {
                    holder: name.clone(),
                    holder_arn: execution_arn(sm, &name),
                    direction: direction.as_str().to_string(),
                    started_at: chrono::Utc::now(),
                };
                match lock::acquire(ctx, table, &me).await? {
                    Acquired::Held { by, reason } => {
                        d.reason = lock::held_reason(table, &by, &reason);
                        return Ok(d);
                    }
                    Acquired::AlreadyOurs => {}
                    Acquired::Taken { took_over: stale } => {
                        took_over = stale;
                        locked = Some((table, me));
                    }
                }
            }
            let started = match start_execution(&ctx.aws.sfn, sm, &name, &body).await {
                Ok(started) => started,
                Err(e) => {
                    if let Some((table, me)) = &locked {
                        lock::release_unless_started(ctx, table, me).await;
                    }
                    return Err(e);
                }
            };
            match started {
                Started::New { arn } => {
                    d.outcome = Outcome::Started;
                    d.reason = match took_over {
                        Some((stale, why)) => format!(
                            "{reason}; took over the stale flow lock of {}: {why}",
                            stale.holder
                        ),
                        None => reason,
                    };
                    d.execution_arn = Some(arn);
                }
                Started::AlreadyExists => {
                    d.reason = format!(
                        "duplicate delivery: execution {name} already exists for this trigger"
                    );
                }
            }
            d.execution_name = Some(name);
        }
    }
    Ok(d)
}

fn status_line(s: &Situation) -> String {
    let running: Vec<&str> = s
        .executions
        .iter()
        .filter(|e| e.status == "RUNNING")
        .map(|e| e.name.as_str())
        .collect();
    let firing: Vec<&str> = s
        .alarms
        .iter()
        .filter(|a| a.state == "ALARM")
        .map(|a| a.name.as_str())
        .collect();
    let active = serde_json::to_value(&s.active).unwrap_or(json!(null));
    format!(
        "active: {active}; alarms in ALARM: [{}]; running executions: [{}]",
        firing.join(", "),
        running.join(", ")
    )
}
