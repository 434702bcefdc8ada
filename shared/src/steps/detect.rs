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
    Started, answer_task, execution_arn, pending_task_token, recent_executions, start_execution,
};
use crate::aws::{cloudwatch, dynamodb, globalaccelerator, stepfunctions};
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::Use;
use crate::plan::Direction;
use crate::routing::Dials;
use crate::runtime::{Context, StepEvent};
use crate::timestamp::rfc3339;
use crate::trigger::{AlarmState, CommandName, ManualCommand, Trigger, parse_trigger};
use decision::{
    ActiveSide, Situation, Unknown, Verdict, check_origin, decide_alarm, decide_fence,
    decide_manual,
};
use lock::{Acquired, LockRecord};

/// IAM: the adapter calls detect makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &cloudwatch::DESCRIBE_ALARMS,
        "the alarm quorum (each alarm region)",
    ),
    Use::always(
        &globalaccelerator::DESCRIBE_ENDPOINT_GROUP,
        "which region takes traffic (the dials)",
    ),
    Use::always(
        &stepfunctions::RECENT_EXECUTIONS,
        "cooldown and running executions",
    ),
    Use::always(
        &stepfunctions::START_EXECUTION,
        "starts the failover/failback execution",
    ),
    Use::always(
        &stepfunctions::EXECUTION_STATUS,
        "flow lock takeover: is the holder still RUNNING?",
    ),
    Use::always(
        &stepfunctions::ANSWER_TASK,
        "approve / reject a paused execution",
    ),
    Use::always(
        &stepfunctions::PENDING_TASK_TOKEN,
        "approve / reject by execution: the pending approval's token from its history",
    ),
    Use::always(
        &dynamodb::PUT_ITEM_IF,
        "takes the flow lock (conditional put)",
    ),
    Use::always(&dynamodb::GET_ITEM, "reads the flow lock's holder"),
    Use::always(
        &dynamodb::DELETE_ITEM_IF,
        "releases the lock after a failed start",
    ),
];

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

// The payload's shapes are told apart in crate::trigger (on their keys); the edge only hands the payload over.
impl StepEvent for Trigger {
    const STEP: &'static str = "detect";
    fn from_payload(payload: Value) -> Result<Self> {
        parse_trigger(&payload)
    }
}

pub async fn handle(ctx: &Context, trigger: Trigger) -> Result<Decision> {
    let decision = decide(ctx, trigger).await?;
    tracing::info!(outcome = ?decision.outcome, reason = %decision.reason, execution = ?decision.execution_name, "decision");
    Ok(decision)
}

pub async fn decide(ctx: &Context, trigger: Trigger) -> Result<Decision> {
    match trigger {
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
            let situation = Box::pin(observe(ctx)).await?;
            let verdict = decide_alarm(&ctx.plan, &t, &situation);
            act(ctx, verdict, Direction::Failover, dry_run, situation).await
        }
        Trigger::Manual(cmd)
            if matches!(cmd.command, CommandName::Approve | CommandName::Reject) =>
        {
            answer_approval(ctx, &cmd).await
        }
        Trigger::Manual(cmd) => {
            let situation = Box::pin(observe(ctx)).await?;
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
                    let verdict = if cmd.command == CommandName::Fence {
                        decide_fence(&ctx.plan, &cmd, &situation)
                    } else {
                        decide_manual(&ctx.plan, &cmd, direction, &situation)
                    };
                    act(ctx, verdict, direction, cmd.dry_run, situation).await
                }
            }
        }
    }
}

/// Sends the operator's answer to the paused execution. The command names the execution (its ARN, or its name in
/// this state machine): the pending approval's task token is read from its history (the `TaskScheduled` event of
/// the approval task carries it), so operators never handle tokens. A `token` is still taken as it is.
async fn answer_approval(ctx: &Context, cmd: &ManualCommand) -> Result<Decision> {
    let approved = cmd.command == CommandName::Approve;
    let reason = cmd
        .reason
        .clone()
        .unwrap_or_else(|| if approved { "approved" } else { "rejected" }.to_string());
    // `overrides`: only those the operator turned on; the state machine merges them into the execution's
    // (ApplyApprovedOverrides), so an answer adds overrides and never removes one.
    let output = json!({"approved": approved, "reason": reason, "at": rfc3339(chrono::Utc::now(), SecondsFormat::Millis), "overrides": cmd.overrides.granted_object()});
    let (token, execution) = match (&cmd.token, &cmd.execution) {
        (Some(token), _) => (token.clone(), None),
        (None, Some(named)) => {
            let arn = if named.starts_with("arn:") {
                named.clone()
            } else {
                execution_arn(ctx.plan.state_machine_arn()?, named)
            };
            let token = pending_task_token(ctx.aws.sfn(), &arn, "approval")
                .await?
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "execution {arn} has not asked for approval (no approval request in its history): check \
                         the execution named in the approval request"
                    ))
                })?;
            (token, Some(arn))
        }
        (None, None) => return Err(Error::invalid_input("approve/reject need \"execution\"")),
    };
    answer_task(
        ctx.aws.sfn(),
        &token,
        approved,
        &output.to_string(),
        &reason,
    )
    .await?;
    Ok(Decision {
        outcome: if approved {
            Outcome::Approved
        } else {
            Outcome::Rejected
        },
        reason,
        execution_name: None,
        execution_arn: execution,
        direction: None,
        dry_run: false,
        observed: None,
    })
}

/// Reads alarms (each region on its own), executions and dials concurrently, every read best-effort within the
/// plan's observe deadline: the region that failed, Global Accelerator's API or Step Functions' list not answering
/// must not stop a failover from starting. What did not answer is reported as unknown in `observed`. The
/// operator's `status` (`crate::operator::status`) starts from this very observation.
pub async fn observe(ctx: &Context) -> Result<Situation> {
    let sm = ctx.plan.state_machine_arn()?;
    let deadline = ctx.plan.alarms.observe_deadline;
    let mut alarm_reads = tokio::task::JoinSet::new();
    for (region, cw) in ctx.aws.alarms() {
        let (region, cw, names) = (region.clone(), cw.clone(), ctx.plan.alarms.names_in(region));
        alarm_reads.spawn(async move {
            let read = within(deadline, describe_alarms(&cw, &region, &names)).await;
            (region, read)
        });
    }
    let alarms = async {
        let mut results = Vec::new();
        while let Some(joined) = alarm_reads.join_next().await {
            results.extend(joined.ok());
        }
        results
    };
    let (alarm_results, executions, dials) = tokio::join!(
        alarms,
        within(deadline, recent_executions(ctx.aws.sfn(), sm)),
        within(
            deadline,
            read_dials(ctx.aws.global_accelerator(), &ctx.plan)
        ),
    );
    let mut situation = Situation {
        alarms: Vec::new(),
        unknown_alarm_regions: Vec::new(),
        executions: Vec::new(),
        executions_unknown: None,
        active: match dials {
            Ok(Dials { primary, dr }) => ActiveSide::from_dials(primary, dr),
            Err(reason) => ActiveSide::Unknown { reason },
        },
        now: chrono::Utc::now(),
    };
    for (region, read) in alarm_results {
        match read {
            Ok(alarms) => situation.alarms.extend(alarms),
            Err(reason) => situation
                .unknown_alarm_regions
                .push(Unknown { region, reason }),
        }
    }
    situation
        .alarms
        .sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
    situation
        .unknown_alarm_regions
        .sort_by(|a, b| a.region.cmp(&b.region));
    match executions {
        Ok(list) => situation.executions = list,
        Err(reason) => situation.executions_unknown = Some(reason),
    }
    Ok(situation)
}

/// A best-effort read: its error, or "no answer within" the deadline, as the reason it is unknown.
pub async fn within<T>(
    deadline: std::time::Duration,
    read: impl Future<Output = Result<T>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
    }
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
            let started = match start_execution(ctx.aws.sfn(), sm, &name, &body).await {
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
