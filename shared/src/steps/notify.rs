//! notify: one SNS message per milestone to the operators' topic: a short human subject (what email
//! subscribers see) and a JSON body for tooling (execution, step, result, timestamps, the detail as given).
//!
//! Dry-run still publishes: a rehearsal is reported to the operators exactly like a real run, marked "[DRY RUN] " in
//! the subject and `dry_run: true` in the body. Publishing is the only write and SNS standard topics deliver at least
//! once anyway, so a retried notify sends the same notice again (a duplicate, never a different story).

//!
//! Parts: [`message`] composes subject and body (pure), [`approval`] the approval request's text, [`report`] the
//! execution report; this module reads the input, the topic and the execution history, and publishes.

pub mod approval;
pub mod message;
pub mod report;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sns::{TopicState, describe_topic, publish};
use crate::aws::stepfunctions::step_reports;
use crate::aws::{sns, stepfunctions};
use crate::error::{Error, Result};
use crate::metrics;
use crate::permissions::Use;
use crate::plan::{Direction, arn_region};
use crate::runtime::{Context, StepEvent};
use approval::approval_request;
use message::compose;
use report::StepHistory;

pub use message::{MESSAGE_MAX_BYTES, SUBJECT_MAX_CHARS};

/// IAM: the adapter calls notify makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &sns::DESCRIBE_TOPIC,
        "does anyone subscribe? (read before publishing)",
    ),
    Use::always(&sns::PUBLISH, "the notice"),
    Use::always(
        &stepfunctions::STEP_REPORTS_PAGED,
        "the report reads every step result of its execution",
    ),
];

pub const STEP: &str = "notify";

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

impl StepEvent for NotifyInput {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        parse_input(payload)
    }
}

pub async fn handle(ctx: &Context, input: NotifyInput) -> Result<Notified> {
    notify(ctx, &input).await
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
    let why = match tokio::time::timeout(HISTORY_BUDGET, step_reports(&sfn, execution)).await {
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
    let topic = describe_topic(ctx.aws.sns(), topic_arn)
        .await
        .map_err(|e| e.check_if_missing("PILOTLIGHT_SNS_TOPIC_ARN"))?;
    // Reports (and failures, which carry one) are built from the state and the execution history.
    let history = match input.kind {
        NotifyKind::Report | NotifyKind::Failure => {
            read_history(ctx.aws.sfn(), &input.execution).await
        }
        NotifyKind::Milestone | NotifyKind::Approval => StepHistory::NotRead,
    };
    let now = Utc::now();
    let notice = compose(&ctx.plan, input, &history, now);
    let message_id = publish(
        ctx.aws.sns(),
        topic_arn,
        &notice.subject,
        notice.body.to_string(),
    )
    .await
    .map_err(|e| e.check_if_missing("PILOTLIGHT_SNS_TOPIC_ARN"))?;
    let message = match topic.subscriptions_confirmed {
        Some(0) => format!(
            "published {message_id} to {topic_arn}; warning: the topic has no confirmed subscription"
        ),
        _ => format!("published {message_id} to {topic_arn}"),
    };
    tracing::info!(%message_id, subject = %notice.subject, "notified");
    // The execution's final notice (a report, or a failure's, which carries one): RTO, RPO and outcome as metrics.
    let final_report = match input.kind {
        NotifyKind::Report => Some(&notice.body),
        NotifyKind::Failure => notice.body.get("report").filter(|r| r.is_object()),
        NotifyKind::Milestone | NotifyKind::Approval => None,
    };
    if let Some(report) = final_report {
        metrics::execution(&metrics::namespace(), report, now).emit();
    }
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
