//! SNS: the `notify` step. One message per milestone to the operators' topic: a short human subject (what email
//! subscribers see) and a JSON body for tooling (execution, step, result, timestamps, the detail as given).
//!
//! Dry-run still publishes: a rehearsal is reported to the operators exactly like a real run, marked "[DRY RUN] " in
//! the subject and `dry_run: true` in the body. Publishing is the only write and SNS standard topics deliver at least
//! once anyway, so a retried notify sends the same notice again (a duplicate, never a different story).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::plan::{DatabasePlan, Direction, DnsPlan, FailoverPlan, Mode, Side, arn_region};
use crate::report::StepHistory;
use crate::runtime::Context;

pub const STEP: &str = "notify";

/// SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less than 100
/// characters long" (API reference); kept ASCII so every email client shows it as is.
pub const SUBJECT_MAX_CHARS: usize = 99;

/// SNS Publish: at most 256 KB (262,144 bytes) per message.
pub const MESSAGE_MAX_BYTES: usize = 262_144;

const DRY_RUN_PREFIX: &str = "[DRY RUN] ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A step finished (e.g. "database promoted").
    Milestone,
    /// The state machine caught an error; `detail.error` holds its `Error` and `Cause`.
    Failure,
    /// The end of an execution; `detail` is the whole execution state.
    Report,
    /// The approval gate (a `waitForTaskToken` task): `detail` holds `task_token` and the execution `input`; the
    /// notice says what will happen and how to answer, and notify returns at once (the answer comes through detect).
    Approval,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Milestone => "milestone",
            NotifyKind::Failure => "failure",
            NotifyKind::Report => "report",
            NotifyKind::Approval => "approval",
        }
    }
}

/// notify's input (docs/contract.md), unknown fields rejected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    pub kind: NotifyKind,
    #[serde(default)]
    pub milestone: Option<String>,
    /// The execution id (`$$.Execution.Id`).
    pub execution: String,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub detail: Value,
}

pub fn parse_input(event: Value) -> Result<NotifyInput> {
    let input: NotifyInput = serde_json::from_value(event).map_err(|e| {
        Error::invalid_input(format!(
            "{STEP}: input rejected ({e}); expected {{\"kind\": \"milestone\"|\"failure\"|\"report\"|\"approval\", \"milestone\": str, \
             \"execution\": str, \"direction\": \"failover\"|\"failback\", \"dry_run\": bool, \"detail\": object}}"
        ))
    })?;
    if input.execution.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "{STEP}: execution must name the execution ($$.Execution.Id)"
        )));
    }
    if input.kind == NotifyKind::Milestone
        && input
            .milestone
            .as_deref()
            .is_none_or(|m| m.trim().is_empty())
    {
        return Err(Error::invalid_input(format!(
            "{STEP}: a milestone notice needs \"milestone\" (e.g. \"database promoted\")"
        )));
    }
    if !(input.detail.is_object() || input.detail.is_null()) {
        return Err(Error::invalid_input(format!(
            "{STEP}: detail must be an object, got {}",
            input.detail
        )));
    }
    if let Some(error) = input.detail.get("error")
        && !error.is_object()
    {
        return Err(Error::invalid_input(format!(
            "{STEP}: detail.error must be the Catch object {{Error, Cause}}, got {error}"
        )));
    }
    if input.kind == NotifyKind::Approval {
        approval_request(&input)?;
    }
    Ok(input)
}

/// Task tokens are opaque and AWS keeps them to a few kilobytes; this bound only guarantees that the two answer
/// commands, each carrying the whole token, fit in one SNS message with the rest of the notice. A token is never
/// shortened: one that does not fit is refused.
pub const TASK_TOKEN_MAX_BYTES: usize = 64 * 1024;

/// What an approval request carries in `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    pub task_token: String,
    /// The execution input as the state machine passed it (`$`), kept whole for the body.
    pub input: Value,
    pub execution: ExecutionInput,
}

/// The fields of the execution input the notice explains. Not strict: `$` also carries what earlier states added.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionInput {
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub trigger: Value,
    #[serde(default)]
    pub timing: Value,
    #[serde(default)]
    pub approval: Value,
}

/// Reads and checks `detail.task_token` and `detail.input` of an approval request.
pub fn approval_request(input: &NotifyInput) -> Result<ApprovalRequest> {
    let detail = &input.detail;
    let task_token = match detail.get("task_token") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        other => {
            return Err(Error::invalid_input(format!(
                "{STEP}: an approval request needs detail.task_token (the state machine passes $$.Task.Token), got {}",
                other.map_or("nothing".to_string(), |v| v.to_string())
            )));
        }
    };
    if task_token.len() > TASK_TOKEN_MAX_BYTES {
        return Err(Error::invalid_input(format!(
            "{STEP}: detail.task_token is {} bytes, more than the {TASK_TOKEN_MAX_BYTES} that fit twice in one SNS \
             message; it is never shortened, so nothing was published",
            task_token.len()
        )));
    }
    let raw = detail.get("input").cloned().unwrap_or(Value::Null);
    if !raw.is_object() {
        return Err(Error::invalid_input(format!(
            "{STEP}: an approval request needs detail.input, the execution input ($), got {raw}"
        )));
    }
    let execution: ExecutionInput = serde_json::from_value(raw.clone()).map_err(|e| {
        Error::invalid_input(format!(
            "{STEP}: detail.input is not a pilotlight execution input: {e}"
        ))
    })?;
    if let Some(d) = execution.direction
        && d != input.direction
    {
        return Err(Error::invalid_input(format!(
            "{STEP}: direction {:?} differs from detail.input.direction {:?}",
            input.direction.as_str(),
            d.as_str()
        )));
    }
    Ok(ApprovalRequest {
        task_token,
        input: raw,
        execution,
    })
}

/// What gets published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub subject: String,
    pub body: Value,
}

/// Makes `text` a valid SNS subject: ASCII only (others become '?'), control characters and line breaks become
/// spaces, runs of spaces collapse, at most SUBJECT_MAX_CHARS (cut with "..." when longer).
pub fn subject_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_control() || c.is_whitespace() {
            ' '
        } else if c.is_ascii() {
            c
        } else {
            '?'
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_end().to_string();
    if out.len() <= SUBJECT_MAX_CHARS {
        out
    } else {
        // ASCII only by now, so byte offsets are character offsets.
        format!("{}...", out[..SUBJECT_MAX_CHARS - 3].trim_end())
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The error the state machine caught (`detail.error` = {Error, Cause}); a Lambda's Cause is itself JSON
/// (`{"errorType", "errorMessage"}`), whose message is lifted out for readers.
fn caught_error(detail: &Value) -> Value {
    let Some(error) = detail.get("error") else {
        return Value::Null;
    };
    let mut out = json!({ "Error": error.get("Error"), "Cause": error.get("Cause") });
    if let Some(cause) = text(error.get("Cause"))
        && let Ok(Value::Object(parsed)) = serde_json::from_str::<Value>(cause)
        && let Some(message) = parsed.get("errorMessage")
    {
        out["message"] = message.clone();
    }
    out
}

/// Builds subject and body (pure).
/// `history` is what notify read from the execution history for the report (`kind: report` and `failure`; other
/// kinds ignore it).
pub fn compose(
    plan: &FailoverPlan,
    input: &NotifyInput,
    history: &StepHistory,
    now: DateTime<Utc>,
) -> Notice {
    let direction = input.direction;
    let (from, to) = (
        &plan.region(direction.source()).region,
        &plan.region(direction.target()).region,
    );
    let milestone = input
        .milestone
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let detail = if input.detail.is_null() {
        Value::Object(Map::new())
    } else {
        input.detail.clone()
    };
    let error = caught_error(&detail);
    // The report is built from the execution's accumulated state and its history (timeline, RTO, RPO); see
    // report.rs.
    let report = (input.kind == NotifyKind::Report)
        .then(|| crate::report::build(&input.execution, &detail, history));
    let base = format!("pilotlight: {} {from} -> {to}", direction.as_str());
    let what = match input.kind {
        NotifyKind::Milestone => milestone.unwrap_or("milestone").to_string(),
        NotifyKind::Failure => {
            let mut s = "FAILED".to_string();
            if let Some(m) = milestone.filter(|m| !m.eq_ignore_ascii_case("failed")) {
                s.push_str(&format!(": {m}"));
            }
            if let Some(name) = text(error.get("Error")) {
                // The body keeps the full error type; the subject has little room for the namespace.
                s.push_str(&format!(
                    " ({})",
                    name.strip_prefix("pilotlight.").unwrap_or(name)
                ));
            }
            s
        }
        NotifyKind::Approval => "APPROVAL NEEDED".to_string(),
        NotifyKind::Report => match &report {
            Some(r) => format!(
                "report: {}, RTO {}",
                r.outcome,
                r.rto_seconds
                    .map(|s| format!("{s:.1}s"))
                    .unwrap_or_else(|| "n/a".into())
            ),
            None => "report".to_string(),
        },
    };
    let prefix = if input.dry_run { DRY_RUN_PREFIX } else { "" };
    let subject = subject_line(&format!("{prefix}{base}: {what}"));

    let body = match input.kind {
        NotifyKind::Report => serde_json::to_value(&report).unwrap_or(Value::Null),
        // parse_input has checked the request; a hand-built input that fails the check still says why.
        NotifyKind::Approval => match approval_request(input) {
            Ok(request) => approval_body(plan, input, &request, now),
            Err(e) => {
                json!({"source": "pilotlight", "kind": "approval", "execution": input.execution, "error": e.message})
            }
        },
        NotifyKind::Milestone | NotifyKind::Failure => json!({
            "source": "pilotlight",
            "kind": input.kind.as_str(),
            "execution": input.execution,
            "direction": direction.as_str(),
            "from_region": from,
            "to_region": to,
            "dry_run": input.dry_run,
            "milestone": milestone,
            "step": text(detail.get("step")),
            "result": if input.kind == NotifyKind::Failure { "failed" } else { "succeeded" },
            "message": text(detail.get("message")),
            "error": error,
            "timestamps": {
                "requested_at": text(detail.get("requested_at")),
                "step_started_at": text(detail.get("started_at")),
                "step_finished_at": text(detail.get("finished_at")),
                "sent_at": now,
            },
            "detail": detail,
            // An aborted or failed run (approval timeout or rejection included) is described like a finished one.
            "report": (input.kind == NotifyKind::Failure)
                .then(|| crate::report::build(&input.execution, &detail, history)),
        }),
    };
    Notice {
        subject,
        body: fit_message(body, input, now),
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Primary => "primary",
        Side::Dr => "dr",
    }
}

/// The approval notice (pure): what the execution will do with the plan's resources, why it was started, and the
/// two commands that answer it, each with the whole task token.
pub fn approval_body(
    plan: &FailoverPlan,
    input: &NotifyInput,
    request: &ApprovalRequest,
    now: DateTime<Utc>,
) -> Value {
    let direction = input.direction;
    let mode = request.execution.mode;
    let (source, target) = (direction.source(), direction.target());
    let (sp, tp) = (plan.region(source), plan.region(target));
    // docs/contract.md: graceful failover and every failback take the graceful path; catch-up only when graceful.
    let graceful_path = direction == Direction::Failback || mode == Mode::Graceful;
    let catch_up = graceful_path && mode == Mode::Graceful;
    let failback = direction == Direction::Failback;

    let database = match &plan.database {
        DatabasePlan::RdsReplica { .. } => {
            let (writer, replica) = (
                plan.database.resource(source),
                plan.database.resource(target),
            );
            let mut actions = Vec::new();
            if graceful_path {
                actions.push(format!(
                    "prepare: make sure {replica} in {} replicates {writer} (created if missing; a stale standalone \
                     instance holding that id is renamed {replica}-retired-<timestamp> first)",
                    tp.region
                ));
            }
            if catch_up {
                actions.push(format!("catch up: wait until {replica}'s replica lag is 0 (writes stopped by the drain)"));
            }
            actions.push(format!(
                "promote {replica} in {} (PromoteReadReplica): it becomes the writer",
                tp.region
            ));
            if failback {
                actions.push(format!(
                    "reprotect: rename {writer} in {} to {writer}-retired-<timestamp> and create a fresh replica {writer} \
                     of {replica}",
                    sp.region
                ));
            }
            json!({
                "mode": "rds-replica",
                "writer_now": {"region": sp.region, "db_instance": writer},
                "new_writer": {"region": tp.region, "db_instance": replica},
                "actions": actions,
                "data_loss": if catch_up {
                    "none: writes stop (drain) and the replica catches up to lag 0 before it is promoted".to_string()
                } else if request.execution.force {
                    "up to the replica lag at promotion, accepted whatever it is (force)".to_string()
                } else {
                    format!(
                        "up to the replica lag at promotion; refused above {} s (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS)",
                        plan.max_replica_lag_seconds
                    )
                },
            })
        }
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let (writer, secondary) = (
                plan.database.resource(source),
                plan.database.resource(target),
            );
            let call = if mode == Mode::Graceful {
                "SwitchoverGlobalCluster (no data loss; needs the source region)"
            } else {
                "FailoverGlobalCluster with AllowDataLoss"
            };
            json!({
                "mode": "aurora-global",
                "global_cluster": global_cluster,
                "writer_now": {"region": sp.region, "db_cluster_arn": writer},
                "new_writer": {"region": tp.region, "db_cluster_arn": secondary},
                "actions": [format!("{call}: {secondary} becomes the writer of {global_cluster}")],
                "data_loss": if mode == Mode::Graceful {
                    "none: a switchover waits until the secondary is fully synchronised"
                } else {
                    "up to Aurora's replication lag at failover (AllowDataLoss)"
                },
            })
        }
    };

    let compute = json!({
        "scale_up": {
            "region": tp.region,
            "asg": tp.asg,
            "capacity": tp.capacity,
            "capacity_rule": "at least this min/desired/max; the source region's larger desired capacity when it can be \
                              read, up to this max; never scaled down",
            "ami": format!(
                "newest COMPLETED AWS Backup recovery point in vault {} written to SSM parameter {} (the launch \
                 template's ImageId)",
                tp.backup_vault, tp.ami_parameter
            ),
        },
        "scale_down": failback.then(|| json!({
            "region": sp.region,
            "asg": sp.asg,
            "capacity": {"min": 0, "desired": 0, "max": 0},
            "when": "reprotect, after traffic and DNS are home",
        })),
    });

    let dial_steps: Vec<i32> = if mode == Mode::Graceful {
        plan.dial_steps.clone()
    } else {
        vec![100]
    };
    let traffic = json!({
        "endpoint_groups": [
            {"side": side_name(source), "region": sp.region, "arn": sp.endpoint_group_arn, "final_dial": 0},
            {"side": side_name(target), "region": tp.region, "arn": tp.endpoint_group_arn, "final_dial": 100},
        ],
        "drain_first": graceful_path,
        "drain": graceful_path.then(|| format!(
            "the {} dial goes to 0 before the database is promoted, so writes stop and none is lost; expect a short \
             outage until the {} dial is raised",
            sp.region, tp.region
        )),
        "target_dial_steps": dial_steps,
        "bake_seconds_between_steps": request.execution.timing.get("dial_bake_seconds"),
    });

    let dns = match &plan.dns {
        DnsPlan::HealthCheck {
            primary_health_check_id,
            dr_health_check_id,
        } => {
            let flags = |side| {
                let f = crate::route53::wanted_flags(direction, side);
                match (f.disabled, f.inverted) {
                    (false, _) => "automatic (Route 53's checkers decide)",
                    (true, false) => "forced healthy (disabled)",
                    (true, true) => "forced unhealthy (disabled and inverted)",
                }
            };
            json!({
                "mode": "health-check",
                "health_checks": [
                    {"side": "primary", "id": primary_health_check_id, "final": flags(Side::Primary)},
                    {"side": "dr", "id": dr_health_check_id, "final": flags(Side::Dr)},
                ],
                "records_changed": false,
            })
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            primary_value,
            dr_value,
            ttl,
        } => {
            let value = |side| match side {
                Side::Primary => primary_value,
                Side::Dr => dr_value,
            };
            json!({
                "mode": "records",
                "hosted_zone_id": hosted_zone_id,
                "record_name": record_name,
                "type": "CNAME",
                "from": value(source),
                "to": value(target),
                "ttl": ttl,
            })
        }
    };

    let steps: Vec<&str> = if graceful_path {
        let mut v = vec![
            "prepare the target database replica",
            "scale the target Auto Scaling group",
            "drain the source traffic dial to 0",
        ];
        if catch_up {
            v.push("wait for replica lag 0");
        }
        v.extend([
            "promote the target database",
            "shift traffic to the target",
            "update DNS",
        ]);
        if failback {
            v.push("reprotect: fresh DR replica and DR Auto Scaling group at 0/0/0");
        }
        v
    } else {
        vec![
            "promote the target database and scale the target Auto Scaling group (in parallel)",
            "shift traffic to the target",
            "update DNS",
        ]
    };

    let trigger = &request.execution.trigger;
    let alarms: Vec<&str> = trigger
        .get("alarms")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let at = text(trigger.get("state_change_time"))
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    let why = match (text(trigger.get("source")), text(trigger.get("reason"))) {
        (Some(source), Some(reason)) => format!("{source}{at}: {reason}"),
        (Some("alarm"), None) => format!("alarm{at}: in ALARM: {}", alarms.join(", ")),
        (Some(source), None) => format!("{source}{at}: no reason given"),
        (None, _) => "no trigger in the execution input".to_string(),
    };

    let token = &request.task_token;
    let summary = format!(
        "{}{} {} -> {} ({} path{}), waiting for approval; nothing has been changed yet",
        if input.dry_run { "[DRY RUN] " } else { "" },
        direction.as_str(),
        sp.region,
        tp.region,
        if graceful_path {
            "graceful"
        } else {
            "ungraceful"
        },
        if request.execution.force {
            ", force"
        } else {
            ""
        }
    );
    json!({
        "source": "pilotlight",
        "kind": "approval",
        "milestone": input.milestone.as_deref().unwrap_or("approval requested"),
        "execution": input.execution,
        "summary": summary,
        "direction": direction.as_str(),
        "mode": mode,
        "force": request.execution.force,
        "dry_run": input.dry_run,
        "from_region": sp.region,
        "to_region": tp.region,
        "why": {"summary": why, "trigger": trigger},
        "what_will_happen": {
            "steps": steps,
            "database": database,
            "compute": compute,
            "traffic": traffic,
            "dns": dns,
        },
        "how_to_answer": {
            "send_to": "the detect function of this pilotlight stack (invoke it with one of these JSON payloads)",
            "approve": {"command": "approve", "token": token, "reason": "<who approves, and why>"},
            "reject": {"command": "reject", "token": token, "reason": "<who rejects, and why>"},
            "note": "Send exactly one, with the token unchanged. Until an answer arrives the execution waits; when the \
                     approval timeout passes first, it stops (States.Timeout) without changing anything.",
        },
        "execution_input": request.input,
        "timestamps": {"sent_at": now},
    })
}

/// Keeps the body within SNS's message size. What the execution history also holds goes first (the detail, the
/// execution input, then the report, whose outcome and summary stay); what a reader acts on is never cut: the caught
/// error, and an approval's two answer commands with the whole task token (parse_input bounds the token so that
/// they always fit).
fn fit_message(body: Value, input: &NotifyInput, now: DateTime<Utc>) -> Value {
    const LIMIT: usize = MESSAGE_MAX_BYTES - 1024;
    let size = body.to_string().len();
    if size <= LIMIT {
        return body;
    }
    let note = format!(
        "omitted: the message would be {size} bytes, above the SNS limit; see the execution history"
    );
    let mut o = match body {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    for key in ["detail", "execution_input", "report"] {
        let Some(part) = o.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let replacement = if key == "report" {
            json!({ "omitted": note, "outcome": part.get("outcome"), "summary": part.get("summary") })
        } else {
            json!({ "omitted": note })
        };
        o.insert(key.into(), replacement);
        if Value::Object(o.clone()).to_string().len() <= LIMIT {
            return Value::Object(o);
        }
    }
    let mut minimal = json!({
        "source": "pilotlight", "kind": input.kind.as_str(), "execution": input.execution,
        "direction": input.direction.as_str(), "dry_run": input.dry_run, "omitted": note, "sent_at": now,
    });
    for key in ["summary", "error", "how_to_answer"] {
        if let Some(v) = o.remove(key) {
            minimal[key] = v;
        }
    }
    minimal
}

/// The topic as GetTopicAttributes shows it: whether anyone will read the notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicState {
    pub topic_arn: String,
    pub subscriptions_confirmed: Option<u64>,
    pub subscriptions_pending: Option<u64>,
}

pub async fn describe_topic(sns: &aws_sdk_sns::Client, topic_arn: &str) -> Result<TopicState> {
    let resp = sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| {
            Error::aws("GetTopicAttributes", topic_arn, e)
                .check_if_missing("PILOTLIGHT_SNS_TOPIC_ARN")
        })?;
    let count = |k: &str| {
        resp.attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.parse().ok())
    };
    Ok(TopicState {
        topic_arn: topic_arn.to_string(),
        subscriptions_confirmed: count("SubscriptionsConfirmed"),
        subscriptions_pending: count("SubscriptionsPending"),
    })
}

pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    notice: &Notice,
) -> Result<String> {
    let resp = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(&notice.subject)
        .message(notice.body.to_string())
        .send()
        .await
        .map_err(|e| {
            Error::aws("Publish", topic_arn, e).check_if_missing("PILOTLIGHT_SNS_TOPIC_ARN")
        })?;
    resp.message_id().map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::Transient,
            format!("Publish on {topic_arn} returned no MessageId"),
        )
    })
}

/// notify's output: what was sent and where.
#[derive(Debug, Clone, Serialize)]
pub struct Notified {
    pub step: &'static str,
    pub kind: NotifyKind,
    pub execution: String,
    pub dry_run: bool,
    pub topic_arn: String,
    pub message_id: String,
    pub subject: String,
    pub body: Value,
    pub saw: TopicState,
    pub sent_at: DateTime<Utc>,
    pub message: String,
    /// `kind: report` only: the report, which the state machine emits as its output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let input = parse_input(event)?;
    let notified = notify(ctx, &input).await?;
    serde_json::to_value(notified)
        .map_err(|e| Error::new(ErrorKind::Aws, format!("cannot encode notify output: {e}")))
}

/// How long notify may spend reading the execution history for a report: the function's 30 s must leave room to
/// publish, and a report from the state alone beats none.
pub const HISTORY_BUDGET: Duration = Duration::from_secs(10);

/// The execution's step reports, best-effort: whatever goes wrong (no permission, throttling, a slow API, an id
/// that is not an execution ARN) is logged and the report is built from the state alone, saying why.
pub async fn read_history(sfn: &aws_sdk_sfn::Client, execution: &str) -> StepHistory {
    let Some(region) = arn_region(execution).filter(|_| execution.contains(":execution:")) else {
        let why = format!("{execution:?} is not an execution ARN");
        tracing::warn!(%why, "execution history not read");
        return StepHistory::Unavailable(why);
    };
    // The history lives in the execution's region.
    let sfn = if sfn.config().region().map(|r| r.as_ref()) == Some(region) {
        sfn.clone()
    } else {
        aws_sdk_sfn::Client::from_conf(
            sfn.config()
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build(),
        )
    };
    let why = match tokio::time::timeout(
        HISTORY_BUDGET,
        crate::stepfunctions::step_reports(&sfn, execution),
    )
    .await
    {
        Ok(Ok(reports)) => return StepHistory::Read(reports),
        Ok(Err(e)) => e.message,
        Err(_) => format!(
            "GetExecutionHistory on {execution} did not finish within {} s",
            HISTORY_BUDGET.as_secs()
        ),
    };
    tracing::warn!(%why, "execution history not read; the report uses the execution state alone");
    StepHistory::Unavailable(why)
}

pub async fn notify(ctx: &Context, input: &NotifyInput) -> Result<Notified> {
    let topic_arn = &ctx.plan.sns_topic_arn;
    let topic = describe_topic(&ctx.aws.sns, topic_arn).await?;
    // Reports (and failures, which carry one) are built from the state and the execution history.
    let history = match input.kind {
        NotifyKind::Report | NotifyKind::Failure => {
            read_history(&ctx.aws.sfn, &input.execution).await
        }
        NotifyKind::Milestone | NotifyKind::Approval => StepHistory::NotRead,
    };
    let now = Utc::now();
    let notice = compose(&ctx.plan, input, &history, now);
    let message_id = publish(&ctx.aws.sns, topic_arn, &notice).await?;
    let message = match topic.subscriptions_confirmed {
        Some(0) => format!(
            "published {message_id} to {topic_arn}; warning: the topic has no confirmed subscription"
        ),
        _ => format!("published {message_id} to {topic_arn}"),
    };
    tracing::info!(%message_id, subject = %notice.subject, "notified");
    Ok(Notified {
        step: STEP,
        kind: input.kind,
        execution: input.execution.clone(),
        dry_run: input.dry_run,
        topic_arn: topic_arn.clone(),
        message_id,
        report: (input.kind == NotifyKind::Report).then(|| notice.body.clone()),
        subject: notice.subject,
        body: notice.body,
        saw: topic,
        sent_at: now,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::reference_vars;

    fn plan() -> FailoverPlan {
        FailoverPlan::from_map(&reference_vars()).unwrap()
    }

    fn input(v: Value) -> NotifyInput {
        parse_input(v).unwrap()
    }

    const EXEC: &str =
        "arn:aws:states:ap-northeast-1:123456789012:execution:pilotlight-failover:alarm-1";

    #[test]
    fn milestone_subject_names_direction_regions_and_milestone() {
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "milestone", "milestone": "database promoted", "execution": EXEC, "direction": "failover",
                          "dry_run": false, "detail": {"step": "promote-db", "started_at": "2026-11-29T10:00:00Z",
                          "finished_at": "2026-11-29T10:00:01Z", "message": "promoted"}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "pilotlight: failover ap-northeast-2 -> ap-northeast-1: database promoted"
        );
        assert_eq!(n.body["step"], "promote-db");
        assert_eq!(n.body["result"], "succeeded");
        assert_eq!(n.body["execution"], EXEC);
        assert_eq!(
            n.body["timestamps"]["step_started_at"],
            "2026-11-29T10:00:00Z"
        );
        assert_eq!(n.body["error"], Value::Null);
    }

    #[test]
    fn failback_swaps_the_regions_and_dry_run_is_prefixed() {
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "milestone", "milestone": "traffic shifted", "execution": EXEC, "direction": "failback", "dry_run": true}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "[DRY RUN] pilotlight: failback ap-northeast-1 -> ap-northeast-2: traffic shifted"
        );
        assert_eq!(n.body["dry_run"], true);
    }

    #[test]
    fn failure_says_failed_and_carries_the_caught_error() {
        let cause = r#"{"errorType":"pilotlight.Refused","errorMessage":"replica web-db-replica lag 900s > 300s"}"#;
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "failure", "milestone": "failed", "execution": EXEC,
                          "detail": {"error": {"Error": "pilotlight.Refused", "Cause": cause}}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "pilotlight: failover ap-northeast-2 -> ap-northeast-1: FAILED (Refused)"
        );
        assert_eq!(n.body["result"], "failed");
        assert_eq!(n.body["error"]["Error"], "pilotlight.Refused");
        assert_eq!(n.body["error"]["Cause"], cause);
        assert_eq!(
            n.body["error"]["message"],
            "replica web-db-replica lag 900s > 300s"
        );
        // A plain-text Cause (e.g. the poll-limit Pass state) is kept as is.
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "failure", "milestone": "update-dns", "execution": EXEC,
                          "detail": {"error": {"Error": "pilotlight.PollLimitExceeded", "Cause": "not in sync"}}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(
            n.subject
                .ends_with("FAILED: update-dns (PollLimitExceeded)"),
            "{}",
            n.subject
        );
        assert_eq!(n.body["error"]["Cause"], "not in sync");
        assert!(n.body["error"].get("message").is_none());
    }

    #[test]
    fn report_body_is_the_report_built_from_the_detail() {
        let detail = json!({"direction": "failover", "mode": "ungraceful", "steps": {}});
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "report", "milestone": "report", "execution": EXEC, "detail": detail.clone()}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(
            n.subject.ends_with(": report: succeeded, RTO n/a"),
            "{}",
            n.subject
        );
        assert_eq!(
            n.body,
            serde_json::to_value(crate::report::build(EXEC, &detail, &StepHistory::NotRead))
                .unwrap()
        );
        assert_eq!(n.body["execution"], EXEC);
    }

    fn approval_event(token: &str, direction: &str, mode: &str) -> Value {
        json!({"kind": "approval", "milestone": "approval requested", "execution": EXEC, "direction": direction,
               "dry_run": false, "detail": {"task_token": token, "input": {
                   "direction": direction, "mode": mode, "dry_run": false, "force": false,
                   "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "drill"},
                   "timing": {"poll_seconds": 15, "dial_bake_seconds": 30, "max_polls": 240},
                   "approval": {"required": true}}}})
    }

    #[test]
    fn approval_says_what_will_happen_and_how_to_answer_with_the_whole_token() {
        let token = format!("AQCEAAAAKgAAAAMAAAAAAAAAA{}+/=", "x9Z".repeat(400));
        let n = compose(
            &plan(),
            &input(approval_event(&token, "failover", "ungraceful")),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "pilotlight: failover ap-northeast-2 -> ap-northeast-1: APPROVAL NEEDED"
        );
        let b = &n.body;
        assert_eq!(b["kind"], "approval");
        assert_eq!(b["from_region"], "ap-northeast-2");
        assert_eq!(b["to_region"], "ap-northeast-1");
        assert_eq!(b["mode"], "ungraceful");
        assert_eq!(
            b["how_to_answer"]["approve"],
            json!({"command": "approve", "token": token, "reason": "<who approves, and why>"})
        );
        assert_eq!(b["how_to_answer"]["reject"]["command"], "reject");
        assert_eq!(b["how_to_answer"]["reject"]["token"], token.as_str());
        assert!(
            b["why"]["summary"].as_str().unwrap().contains("drill"),
            "{b}"
        );
        let w = &b["what_will_happen"];
        assert_eq!(w["database"]["new_writer"]["db_instance"], "web-db-replica");
        assert_eq!(w["database"]["writer_now"]["db_instance"], "web-db");
        assert_eq!(w["compute"]["scale_up"]["asg"], "web-asg-dr");
        assert_eq!(
            w["compute"]["scale_up"]["capacity"],
            json!({"min": 2, "desired": 2, "max": 4})
        );
        assert_eq!(
            w["compute"]["scale_down"],
            Value::Null,
            "failover scales nothing down"
        );
        assert_eq!(w["traffic"]["endpoint_groups"][0]["final_dial"], 0);
        assert_eq!(
            w["traffic"]["endpoint_groups"][0]["region"],
            "ap-northeast-2"
        );
        assert_eq!(w["traffic"]["endpoint_groups"][1]["final_dial"], 100);
        assert_eq!(
            w["traffic"]["drain_first"], false,
            "ungraceful failover keeps the original path"
        );
        assert_eq!(w["traffic"]["target_dial_steps"], json!([100]));
        assert_eq!(w["dns"]["mode"], "health-check");
        assert_eq!(
            w["dns"]["health_checks"][1]["id"],
            "66666666-7777-8888-9999-000000000000"
        );
        assert!(
            w["steps"][0].as_str().unwrap().contains("in parallel"),
            "{w}"
        );
    }

    #[test]
    fn approval_of_a_failback_describes_the_graceful_path_and_reprotection() {
        let n = compose(
            &plan(),
            &input(approval_event("tok", "failback", "graceful")),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "pilotlight: failback ap-northeast-1 -> ap-northeast-2: APPROVAL NEEDED"
        );
        let w = &n.body["what_will_happen"];
        assert_eq!(w["traffic"]["drain_first"], true);
        assert_eq!(w["traffic"]["target_dial_steps"], json!([25, 50, 100]));
        assert_eq!(w["traffic"]["endpoint_groups"][1]["side"], "primary");
        assert_eq!(w["compute"]["scale_up"]["asg"], "web-asg");
        assert_eq!(w["compute"]["scale_down"]["asg"], "web-asg-dr");
        assert_eq!(
            w["compute"]["scale_down"]["capacity"],
            json!({"min": 0, "desired": 0, "max": 0})
        );
        assert_eq!(w["database"]["new_writer"]["db_instance"], "web-db");
        assert!(
            w["database"]["data_loss"]
                .as_str()
                .unwrap()
                .starts_with("none"),
            "{w}"
        );
        let steps: Vec<&str> = w["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(steps.len(), 8, "{steps:?}");
        assert!(steps[7].starts_with("reprotect"), "{steps:?}");
        // A forced failback (ungraceful) still drains but skips the catch-up.
        let n = compose(
            &plan(),
            &input(approval_event("tok", "failback", "ungraceful")),
            &StepHistory::NotRead,
            Utc::now(),
        );
        let w = &n.body["what_will_happen"];
        assert_eq!(w["traffic"]["drain_first"], true);
        assert_eq!(w["steps"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn approval_records_mode_names_the_record_and_both_values() {
        let mut vars = reference_vars();
        for (k, v) in [
            ("PILOTLIGHT_DNS_MODE", "records"),
            ("PILOTLIGHT_HOSTED_ZONE_ID", "Z123"),
            ("PILOTLIGHT_RECORD_NAME", "app.example.com"),
            ("PILOTLIGHT_PRIMARY_RECORD_VALUE", "alb-primary.example.com"),
            ("PILOTLIGHT_DR_RECORD_VALUE", "alb-dr.example.com"),
        ] {
            vars.insert(k.into(), v.into());
        }
        let plan = FailoverPlan::from_map(&vars).unwrap();
        let n = compose(
            &plan,
            &input(approval_event("tok", "failover", "graceful")),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.body["what_will_happen"]["dns"],
            json!({"mode": "records", "hosted_zone_id": "Z123", "record_name": "app.example.com", "type": "CNAME",
                   "from": "alb-primary.example.com", "to": "alb-dr.example.com", "ttl": 60})
        );
    }

    #[test]
    fn approval_needs_a_token_and_the_execution_input() {
        let mut no_token = approval_event("tok", "failover", "graceful");
        no_token["detail"]
            .as_object_mut()
            .unwrap()
            .remove("task_token");
        let mut empty_token = approval_event("tok", "failover", "graceful");
        empty_token["detail"]["task_token"] = json!("  ");
        let mut no_input = approval_event("tok", "failover", "graceful");
        no_input["detail"].as_object_mut().unwrap().remove("input");
        let mut other_direction = approval_event("tok", "failover", "graceful");
        other_direction["detail"]["input"]["direction"] = json!("failback");
        let huge = approval_event(
            &"t".repeat(TASK_TOKEN_MAX_BYTES + 1),
            "failover",
            "graceful",
        );
        for (bad, says) in [
            (no_token, "task_token"),
            (empty_token, "task_token"),
            (no_input, "detail.input"),
            (other_direction, "differs"),
            (huge, "never shortened"),
        ] {
            let e = parse_input(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
            assert!(e.message.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn an_oversized_approval_keeps_the_commands_and_the_whole_token() {
        let token = "T".repeat(TASK_TOKEN_MAX_BYTES);
        let mut event = approval_event(&token, "failover", "graceful");
        event["detail"]["input"]["trigger"]["reason"] = json!("r".repeat(MESSAGE_MAX_BYTES));
        let n = compose(&plan(), &input(event), &StepHistory::NotRead, Utc::now());
        assert!(n.body.to_string().len() < MESSAGE_MAX_BYTES);
        assert_eq!(n.body["how_to_answer"]["approve"]["token"], token.as_str());
        assert_eq!(n.body["how_to_answer"]["reject"]["token"], token.as_str());
    }

    #[test]
    fn failure_body_carries_the_report_of_the_run() {
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false,
                           "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "drill"},
                           "steps": {},
                           "error": {"Error": "States.Timeout", "Cause": "approval not answered in time"}});
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "failure", "milestone": "approval", "execution": EXEC, "detail": state.clone()}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(
            n.subject.ends_with("FAILED: approval (States.Timeout)"),
            "{}",
            n.subject
        );
        assert_eq!(
            n.body["report"],
            serde_json::to_value(crate::report::build(EXEC, &state, &StepHistory::NotRead))
                .unwrap()
        );
        assert_eq!(n.body["report"]["outcome"], "failed");
        assert_eq!(
            n.body["error"]["Error"], "States.Timeout",
            "the existing fields stay"
        );
        assert_eq!(n.body["result"], "failed");
        // Milestones carry no report.
        let n = compose(
            &plan(),
            &input(json!({"kind": "milestone", "milestone": "started", "execution": EXEC})),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(n.body["report"], Value::Null);
    }

    #[test]
    fn reports_use_the_history_given_and_say_so() {
        let call = |start: &str, from: i32, to: i32| -> crate::step::StepReport {
            serde_json::from_value(json!({"step": "shift-traffic", "action": "start", "direction": "failover",
                "dry_run": false, "started_at": start, "finished_at": start, "saw": {}, "done": to == 100,
                "message": "dial", "changes": [{"resource": "eg", "field": "TrafficDialPercentage", "from": from,
                "to": to, "applied": true}]}))
            .unwrap()
        };
        let history = StepHistory::Read(vec![
            call("2026-11-29T10:01:00Z", 0, 50),
            call("2026-11-29T10:01:30Z", 50, 100),
        ]);
        let state = json!({"direction": "failover", "mode": "graceful", "dry_run": false,
                           "trigger": {"state_change_time": "2026-11-29T10:00:00Z"},
                           "steps": {"shift_traffic": serde_json::to_value(call("2026-11-29T10:01:30Z", 50, 100)).unwrap()}});
        let report = input(
            json!({"kind": "report", "milestone": "report", "execution": EXEC, "detail": state.clone()}),
        );
        let n = compose(&plan(), &report, &history, Utc::now());
        assert_eq!(n.body["changes"].as_array().unwrap().len(), 2);
        assert_eq!(n.body["history"], "execution history: 2 step results");
        assert!(
            n.subject.ends_with("report: succeeded, RTO 90.0s"),
            "{}",
            n.subject
        );
        let failure = input(
            json!({"kind": "failure", "milestone": "failed", "execution": EXEC,
                                   "detail": {"direction": "failover", "mode": "graceful", "steps": state["steps"],
                                              "error": {"Error": "E", "Cause": "c"}}}),
        );
        let unavailable = StepHistory::Unavailable("AccessDenied".into());
        let n = compose(&plan(), &failure, &unavailable, Utc::now());
        assert_eq!(n.body["report"]["changes"].as_array().unwrap().len(), 1);
        assert!(
            n.body["report"]["history"]
                .as_str()
                .unwrap()
                .contains("unavailable (AccessDenied)"),
            "{}",
            n.body["report"]
        );
        let n = compose(&plan(), &failure, &history, Utc::now());
        assert_eq!(n.body["report"]["changes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn subjects_are_ascii_one_line_and_short() {
        assert_eq!(subject_line("a\nb\r\n\tc  d"), "a b c d");
        assert_eq!(subject_line("Tōkyō ✓"), "T?ky? ?");
        let long = subject_line(&format!(
            "[DRY RUN] pilotlight: failover x -> y: {}",
            "z".repeat(300)
        ));
        assert_eq!(long.len(), SUBJECT_MAX_CHARS);
        assert!(long.starts_with("[DRY RUN] ") && long.ends_with("..."));
        assert_eq!(
            subject_line(&"y".repeat(SUBJECT_MAX_CHARS)).len(),
            SUBJECT_MAX_CHARS
        );
        let multibyte = subject_line(&"é".repeat(200));
        assert!(multibyte.len() <= SUBJECT_MAX_CHARS && multibyte.is_ascii());
    }

    #[test]
    fn oversized_detail_is_left_out() {
        let big = "x".repeat(MESSAGE_MAX_BYTES);
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "failure", "execution": EXEC, "detail": {"blob": big, "error": {"Error": "E"}}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(n.body.to_string().len() < MESSAGE_MAX_BYTES);
        assert!(
            n.body["detail"]["omitted"]
                .as_str()
                .unwrap()
                .contains("execution history")
        );
        assert_eq!(n.body["error"]["Error"], "E", "the error survives");
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "report", "execution": EXEC, "detail": {"blob": "y".repeat(MESSAGE_MAX_BYTES)}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(n.body.to_string().len() < MESSAGE_MAX_BYTES);
    }

    #[test]
    fn bad_input_is_rejected() {
        for bad in [
            json!({"kind": "milestone", "milestone": "x", "execution": EXEC, "severity": "high"}),
            json!({"kind": "celebration", "milestone": "x", "execution": EXEC}),
            json!({"kind": "milestone", "execution": EXEC}),
            json!({"kind": "milestone", "milestone": "x", "execution": ""}),
            json!({"kind": "milestone", "milestone": "x"}),
            json!({"kind": "failure", "execution": EXEC, "detail": "oops"}),
            json!({"kind": "failure", "execution": EXEC, "detail": {"error": "oops"}}),
        ] {
            let e = parse_input(bad.clone()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad}");
        }
        let e = parse_input(
            json!({"kind": "milestone", "milestone": "x", "execution": EXEC, "severity": "high"}),
        )
        .unwrap_err();
        assert!(e.message.contains("severity"), "{e}");
    }
}
