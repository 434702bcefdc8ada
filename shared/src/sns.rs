//! SNS: the `notify` step. One message per milestone to the operators' topic: a short human subject (what email
//! subscribers see) and a JSON body for tooling (execution, step, result, timestamps, the detail as given).
//!
//! Dry-run still publishes: a rehearsal is reported to the operators exactly like a real run, marked "[DRY RUN] " in
//! the subject and `dry_run: true` in the body. Publishing is the only write and SNS standard topics deliver at least
//! once anyway, so a retried notify sends the same notice again (a duplicate, never a different story).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Direction, FailoverPlan};
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
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Milestone => "milestone",
            NotifyKind::Failure => "failure",
            NotifyKind::Report => "report",
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
            "{STEP}: input rejected ({e}); expected {{\"kind\": \"milestone\"|\"failure\"|\"report\", \"milestone\": str, \
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
    Ok(input)
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
pub fn compose(plan: &FailoverPlan, input: &NotifyInput, now: DateTime<Utc>) -> Notice {
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
    // The report is built from the execution's accumulated state (timeline, RTO, RPO); see report.rs.
    let report =
        (input.kind == NotifyKind::Report).then(|| crate::report::build(&input.execution, &detail));
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
        }),
    };
    Notice {
        subject,
        body: fit_message(body, input, now),
    }
}

/// Keeps the body within SNS's message size: an oversized detail is left out (the execution history has it).
fn fit_message(body: Value, input: &NotifyInput, now: DateTime<Utc>) -> Value {
    let size = body.to_string().len();
    if size <= MESSAGE_MAX_BYTES - 1024 {
        return body;
    }
    let note = format!(
        "detail omitted: {size} bytes exceed the SNS message limit; see the execution history"
    );
    match body {
        Value::Object(mut o) if o.contains_key("detail") => {
            o.insert("detail".into(), json!({ "omitted": note }));
            Value::Object(o)
        }
        _ => json!({
            "source": "pilotlight", "kind": input.kind.as_str(), "execution": input.execution,
            "direction": input.direction.as_str(), "dry_run": input.dry_run, "omitted": note, "sent_at": now,
        }),
    }
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

pub async fn notify(ctx: &Context, input: &NotifyInput) -> Result<Notified> {
    let topic_arn = &ctx.plan.sns_topic_arn;
    let topic = describe_topic(&ctx.aws.sns, topic_arn).await?;
    let now = Utc::now();
    let notice = compose(&ctx.plan, input, now);
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
            Utc::now(),
        );
        assert!(
            n.subject.ends_with(": report: succeeded, RTO n/a"),
            "{}",
            n.subject
        );
        assert_eq!(
            n.body,
            serde_json::to_value(crate::report::build(EXEC, &detail)).unwrap()
        );
        assert_eq!(n.body["execution"], EXEC);
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
