//! readiness (the scheduled function): on `ReadinessSchedule` (default every 30 minutes) evaluates readiness
//! (`crate::readiness::evaluate`: is the side that does not serve ready to take over?), writes the failures per
//! check as metrics (`ReadinessFailures`, which `ReadinessAlarm` pages on), and tells the operators' topic when
//! a verdict changed since the last run ([`announce`]: the rule and why).
//!
//! The previous verdicts are one item of the stack's DynamoDB lock table (`lock = "readiness"`, beside the flow
//! lock's `lock = "flow"`): durable across cold starts and deploys, strongly consistent, already in the stack (no
//! new resource, no cost while idle), and written with a condition on what this run read, so two overlapping runs
//! (a schedule delivers at least once) never store an older state over a newer one.
//!
//! Order: evaluate, metrics, read the stored verdicts, publish, store. A publish that fails stores nothing and
//! fails the invocation, so the next run (or Lambda's retry) tells again: a duplicate rather than a silence.

pub mod announce;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::dynamodb::{self, Condition, Item, Written};
use crate::aws::sns;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics;
use crate::permissions::Use;
use crate::readiness::{Readiness, ReadinessTargets, Verdict};
use crate::runtime::{Context, StepEvent};
use announce::{Announcement, Previous, Verdicts, decide};

pub const STEP: &str = "readiness";

/// The lock table's key attribute (template `FailoverLockTable`) and this function's item in it.
pub const KEY_ATTRIBUTE: &str = "lock";
pub const STATE_KEY: &str = "readiness";

/// The calls this function makes itself, besides the evaluation's ([`PERMISSIONS`] has both).
const OWN: &[Use] = &[
    Use::always(
        &dynamodb::GET_ITEM,
        "the verdicts the last run stored (lock table item lock=readiness)",
    ),
    Use::always(
        &dynamodb::PUT_ITEM_IF,
        "this run's verdicts, on top of the ones it read",
    ),
    Use::always(&sns::PUBLISH, "the notice when a verdict changed"),
];

/// IAM: the evaluation's calls (`crate::readiness::PERMISSIONS`) and this function's own.
pub const PERMISSIONS: &[Use] = &concat::<{ crate::readiness::PERMISSIONS.len() + OWN.len() }>(
    crate::readiness::PERMISSIONS,
    OWN,
);

const fn concat<const N: usize>(a: &[Use], b: &[Use]) -> [Use; N] {
    let mut out = [b[0]; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

/// The invocation: the EventBridge Scheduled Event, or `{}` (by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation;

impl StepEvent for Invocation {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        let Some(obj) = payload.as_object() else {
            return Err(Error::invalid_input(format!(
                "{STEP}: expected an EventBridge Scheduled Event or {{}}, got {payload}"
            )));
        };
        let scheduled = obj.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
            && matches!(
                obj.get("source").and_then(Value::as_str),
                Some("aws.events" | "aws.scheduler")
            );
        if obj.is_empty() || scheduled {
            Ok(Invocation)
        } else {
            Err(Error::invalid_input(format!(
                "{STEP}: expected an EventBridge Scheduled Event (source aws.events, detail-type \"Scheduled \
                 Event\") or {{}}; nothing was evaluated (keys: {})",
                obj.keys().cloned().collect::<Vec<_>>().join(", ")
            )))
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessRun {
    pub step: &'static str,
    pub checked_at: DateTime<Utc>,
    /// The worst verdict (`pass` / `warn` / `fail`).
    pub outcome: &'static str,
    pub failures: usize,
    pub warnings: usize,
    pub announcement: Announcement,
    /// The notice's subject and SNS message id when one was published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// "stored", or why the verdicts were not (the next run then compares with the older state).
    pub state: String,
    pub readiness: Readiness,
}

pub async fn handle(ctx: &Context, _: Invocation) -> Result<ReadinessRun> {
    let targets = ReadinessTargets::from_env();
    let readiness = crate::readiness::evaluate(&ctx.aws, &ctx.plan, &targets).await;
    let namespace = metrics::namespace();
    for record in readiness_metrics(&namespace, &readiness) {
        record.emit();
    }
    let Some(table) = targets.lock_table.as_deref() else {
        return Err(Error::new(
            ErrorKind::Config,
            "PILOTLIGHT_LOCK_TABLE is not set: the readiness function keeps the previous verdicts in the lock \
             table (template FailoverLockTable); without it every run would notify",
        ));
    };
    let current = verdicts(&readiness);
    let stored = dynamodb::get_item(ctx.aws.dynamodb(), table, (KEY_ATTRIBUTE, STATE_KEY)).await;
    let (previous, read_at) = match &stored {
        Ok(None) => (Previous::None, None),
        Ok(Some(item)) => (
            announce::decode(item.get("verdicts").map(String::as_str)),
            item.get("checked_at").cloned(),
        ),
        Err(e) => (
            Previous::Unreadable(format!(
                "the stored verdicts could not be read: {}",
                e.message
            )),
            None,
        ),
    };
    let announcement = decide(&previous, &current);
    let (subject, message_id) = if announcement.publishes() {
        let (subject, body) = notice(&ctx.plan, &readiness, &announcement);
        let id = sns::publish(
            ctx.aws.sns(),
            &ctx.plan.sns_topic_arn,
            &subject,
            body.to_string(),
        )
        .await
        .map_err(|e| e.check_if_missing("PILOTLIGHT_SNS_TOPIC_ARN"))?;
        tracing::info!(message_id = %id, %subject, "readiness change published");
        (Some(subject), Some(id))
    } else {
        (None, None)
    };
    let state = store(ctx, table, &readiness, &current, &stored, read_at).await;
    let failures = count(&readiness, Verdict::Fail);
    let warnings = count(&readiness, Verdict::Warn);
    Ok(ReadinessRun {
        step: STEP,
        checked_at: readiness.checked_at,
        outcome: readiness.worst().as_str(),
        failures,
        warnings,
        announcement,
        subject,
        message_id,
        state,
        readiness,
    })
}

/// Stores this run's verdicts on top of the item it read (none: only if there still is none; unreadable:
/// unconditionally, the next run must have something to compare with).
async fn store(
    ctx: &Context,
    table: &str,
    readiness: &Readiness,
    current: &Verdicts,
    stored: &Result<Option<Item>>,
    read_at: Option<String>,
) -> String {
    let item: Item = [
        (KEY_ATTRIBUTE.to_string(), STATE_KEY.to_string()),
        ("verdicts".to_string(), announce::encode(current)),
        ("checked_at".to_string(), rfc3339(readiness.checked_at)),
    ]
    .into_iter()
    .collect();
    let names = vec![("#lock".to_string(), KEY_ATTRIBUTE.to_string())];
    let condition = match (stored, read_at) {
        (Ok(Some(_)), Some(at)) => Condition {
            expression: "#checked_at = :read_at".into(),
            names: vec![("#checked_at".into(), "checked_at".into())],
            values: vec![(":read_at".into(), at)],
        },
        (Ok(_), _) => Condition {
            expression: "attribute_not_exists(#lock)".into(),
            names,
            values: vec![],
        },
        (Err(_), _) => Condition {
            expression: "attribute_not_exists(#lock) OR #lock = :key".into(),
            names,
            values: vec![(":key".into(), STATE_KEY.into())],
        },
    };
    match dynamodb::put_item_if(ctx.aws.dynamodb(), table, &item, &condition).await {
        Ok(Written::Yes { .. }) => "stored".into(),
        Ok(Written::ConditionFailed) => {
            "not stored: another run stored its verdicts meanwhile (theirs are kept)".into()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness verdicts not stored");
            format!(
                "not stored: {} (the next run compares with the older state and may notify again)",
                e.message
            )
        }
    }
}

fn count(r: &Readiness, v: Verdict) -> usize {
    r.checks.iter().filter(|c| c.verdict == v).count()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    crate::timestamp::rfc3339(t, SecondsFormat::Millis)
}

/// Check id → verdict.
pub fn verdicts(r: &Readiness) -> Verdicts {
    r.checks
        .iter()
        .map(|c| (c.id.clone(), c.verdict.as_str().to_string()))
        .collect()
}

/// One record per check (0/1 failures and warnings by `Check`) and the totals under `Check=all`.
pub fn readiness_metrics(namespace: &str, r: &Readiness) -> Vec<metrics::Record> {
    let mut records: Vec<metrics::Record> = r
        .checks
        .iter()
        .map(|c| {
            metrics::readiness_check(
                namespace,
                &c.id,
                c.verdict == Verdict::Fail,
                c.verdict == Verdict::Warn,
                r.checked_at,
            )
        })
        .collect();
    records.push(metrics::readiness_total(
        namespace,
        count(r, Verdict::Fail),
        count(r, Verdict::Warn),
        r.checked_at,
    ));
    records
}

/// The notice (pure): a subject naming the changed checks by what they became, and a JSON body with the changes
/// (each with the value seen and the limit), every finding, and every check.
pub fn notice(
    plan: &crate::plan::FailoverPlan,
    r: &Readiness,
    announcement: &Announcement,
) -> (String, Value) {
    let standby_region = &plan.region(r.standby).region;
    let findings: Vec<&crate::readiness::Check> = r.findings();
    let ids = |v: Verdict| -> Vec<&str> {
        r.checks
            .iter()
            .filter(|c| c.verdict == v)
            .map(|c| c.id.as_str())
            .collect()
    };
    let summary = || {
        let (fail, warn) = (ids(Verdict::Fail), ids(Verdict::Warn));
        match (fail.is_empty(), warn.is_empty()) {
            (true, true) => format!("all {} checks pass", r.checks.len()),
            (false, _) => format!("FAIL {}", fail.join(", ")),
            (true, false) => format!("WARN {}", warn.join(", ")),
        }
    };
    let what = match announcement {
        Announcement::First => format!("watching; {}", summary()),
        Announcement::PreviousUnknown { .. } => format!("{} (previous state unknown)", summary()),
        Announcement::Unchanged => summary(),
        Announcement::Changed { changes } => {
            let became = |to: Option<&str>| -> Vec<&str> {
                changes
                    .iter()
                    .filter(|c| c.to.as_deref() == to)
                    .map(|c| c.id.as_str())
                    .collect()
            };
            let mut parts = Vec::new();
            for (to, word) in [
                (Some("fail"), "FAIL"),
                (Some("warn"), "WARN"),
                (Some("pass"), "ok again"),
                (None, "no longer checked"),
            ] {
                let list = became(to);
                if !list.is_empty() {
                    parts.push(format!("{word} {}", list.join(", ")));
                }
            }
            parts.join("; ")
        }
    };
    let subject = subject_line(&format!(
        "pilotlight readiness ({standby_region} standby): {what}"
    ));
    let changed: Vec<Value> = match announcement {
        Announcement::Changed { changes } => changes
            .iter()
            .map(|c| {
                let now = r.check(&c.id);
                json!({"id": c.id, "from": c.from, "to": c.to,
                       "seen": now.map(|x| &x.seen), "limit": now.and_then(|x| x.limit.as_ref()),
                       "detail": now.map(|x| &x.detail)})
            })
            .collect(),
        _ => vec![],
    };
    let body = json!({
        "source": "pilotlight",
        "kind": "readiness",
        "checked_at": r.checked_at,
        "active": r.active,
        "standby": standby_region,
        "outcome": r.worst().as_str(),
        "announcement": announcement,
        "changed": changed,
        "findings": findings,
        "checks": r.checks,
        "table": r.table(),
    });
    (subject, body)
}

/// SNS subjects: ASCII without control characters, under 100 characters (cut with "...").
fn subject_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.len() <= 99 {
        clean
    } else {
        format!("{}...", &clean[..96])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FailoverPlan, Side};
    use crate::readiness::Check;
    use crate::steps::detect::decision::ActiveSide;

    fn plan() -> FailoverPlan {
        FailoverPlan::from_map(&crate::plan::tests::reference_vars()).unwrap()
    }

    fn readiness(checks: &[(&str, Verdict, &str)]) -> Readiness {
        Readiness {
            checked_at: "2026-12-01T10:30:00Z".parse().unwrap(),
            active: ActiveSide::Primary,
            standby: Side::Dr,
            checks: checks
                .iter()
                .map(|(id, v, seen)| Check::new(id, *v, *seen, Some("limit".into()), "detail"))
                .collect(),
        }
    }

    #[test]
    fn a_changed_check_is_named_in_the_subject_with_its_value_in_the_body() {
        let before = readiness(&[
            ("db.lag", Verdict::Pass, "2 s"),
            ("deployment.functions", Verdict::Pass, "same"),
        ]);
        let now = readiness(&[
            ("db.lag", Verdict::Pass, "3 s"),
            (
                "deployment.functions",
                Verdict::Fail,
                "PILOTLIGHT_MAX_AMI_AGE_HOURS: notify=1",
            ),
        ]);
        let d = decide(&Previous::Known(verdicts(&before)), &verdicts(&now));
        let (subject, body) = notice(&plan(), &now, &d);
        assert_eq!(
            subject,
            "pilotlight readiness (ap-northeast-1 standby): FAIL deployment.functions"
        );
        assert_eq!(body["kind"], "readiness");
        assert_eq!(body["changed"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["changed"][0]["id"], "deployment.functions");
        assert_eq!(
            (&body["changed"][0]["from"], &body["changed"][0]["to"]),
            (&json!("pass"), &json!("fail"))
        );
        assert_eq!(
            body["changed"][0]["seen"],
            "PILOTLIGHT_MAX_AMI_AGE_HOURS: notify=1"
        );
        assert_eq!(body["findings"].as_array().unwrap().len(), 1);

        // Put back: "ok again", naming it.
        let d = decide(&Previous::Known(verdicts(&now)), &verdicts(&before));
        let (subject, _) = notice(&plan(), &before, &d);
        assert!(
            subject.ends_with("ok again deployment.functions"),
            "{subject}"
        );
    }

    #[test]
    fn the_baseline_says_the_watch_runs_and_what_it_sees() {
        let r = readiness(&[
            ("db.lag", Verdict::Pass, "2 s"),
            ("operators.subscriptions", Verdict::Warn, "0"),
        ]);
        let (subject, body) = notice(&plan(), &r, &Announcement::First);
        assert!(
            subject.ends_with("watching; WARN operators.subscriptions"),
            "{subject}"
        );
        assert_eq!(body["announcement"]["announce"], "first");
        let ok = readiness(&[("db.lag", Verdict::Pass, "2 s")]);
        assert!(
            notice(&plan(), &ok, &Announcement::First)
                .0
                .ends_with("all 1 checks pass")
        );
    }

    #[test]
    fn subjects_stay_within_what_sns_accepts() {
        let many: Vec<(String, Verdict, &str)> = (0..40)
            .map(|i| (format!("compute.check-{i}"), Verdict::Fail, "x"))
            .collect();
        let checks: Vec<(&str, Verdict, &str)> = many
            .iter()
            .map(|(id, v, s)| (id.as_str(), *v, *s))
            .collect();
        let r = readiness(&checks);
        let (subject, _) = notice(&plan(), &r, &Announcement::First);
        assert!(subject.len() <= 99 && subject.ends_with("..."), "{subject}");
        assert!(subject.is_ascii());
    }

    #[test]
    fn metrics_are_one_record_per_check_and_the_total_under_check_all() {
        let r = readiness(&[
            ("db.lag", Verdict::Fail, "unknown"),
            ("dns.record", Verdict::Warn, "x"),
            ("operators.topic", Verdict::Pass, "ok"),
        ]);
        let docs: Vec<Value> = readiness_metrics("pilotlight", &r)
            .iter()
            .map(metrics::Record::to_json)
            .collect();
        assert_eq!(docs.len(), 4);
        assert_eq!(
            (&docs[0]["Check"], &docs[0]["ReadinessFailures"]),
            (&json!("db.lag"), &json!(1.0))
        );
        assert_eq!(
            (&docs[1]["Check"], &docs[1]["ReadinessWarnings"]),
            (&json!("dns.record"), &json!(1.0))
        );
        assert_eq!(
            (&docs[2]["ReadinessFailures"], &docs[2]["ReadinessWarnings"]),
            (&json!(0.0), &json!(0.0))
        );
        assert_eq!(
            (
                &docs[3]["Check"],
                &docs[3]["ReadinessFailures"],
                &docs[3]["ReadinessWarnings"]
            ),
            (&json!("all"), &json!(1.0), &json!(1.0))
        );
        assert_eq!(
            docs[3]["_aws"]["Timestamp"],
            r.checked_at.timestamp_millis()
        );
    }

    #[test]
    fn only_a_scheduled_event_or_an_empty_object_runs_it() {
        let scheduled: Value =
            serde_json::from_str(include_str!("../../../events/readiness-scheduled.json")).unwrap();
        assert!(Invocation::from_payload(scheduled).is_ok());
        assert!(Invocation::from_payload(json!({})).is_ok());
        let e = Invocation::from_payload(json!({"command": "failover"})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("nothing was evaluated"), "{}", e.message);
        assert!(Invocation::from_payload(json!([1])).is_err());
    }

    #[test]
    fn its_permissions_are_the_evaluations_and_its_own() {
        assert_eq!(
            PERMISSIONS.len(),
            crate::readiness::PERMISSIONS.len() + OWN.len()
        );
        for u in crate::readiness::PERMISSIONS.iter().chain(OWN) {
            assert!(
                PERMISSIONS
                    .iter()
                    .any(|p| std::ptr::eq(p.call, u.call) && p.why == u.why)
            );
        }
    }
}
