//! notify against moto's SNS, with an SQS queue subscribed to the topic: the assertions read what a subscriber
//! really receives (the SNS envelope's Subject and Message), not what the function says it sent.

mod common;
#[path = "common/sqs.rs"]
mod sqs;

use std::time::Duration;

use pilotlight::ErrorKind;
use pilotlight::runtime::{Context, invoke};
use pilotlight::steps::notify::{SUBJECT_MAX_CHARS, handle};
use serde_json::{Value, json};

const TOPIC_REGION: &str = "ap-northeast-1";

struct Topic {
    ctx: Context,
    queue: sqs::Queue,
}

/// A fresh topic in the plan's SNS region with a queue subscribed (raw delivery off: the queue gets the envelope).
async fn topic() -> Topic {
    let cfg = common::sdk_config().await;
    let name = common::unique("operators");
    let (sns, arn) = common::seed_topic(&cfg, TOPIC_REGION, &name).await;
    let queue = sqs::create_queue(TOPIC_REGION, &name);
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(&queue.arn)
        .send()
        .await
        .unwrap();
    let ctx = common::context(&common::plan_vars(&[("PILOTLIGHT_SNS_TOPIC_ARN", arn)])).await;
    Topic { ctx, queue }
}

impl Topic {
    fn received(&self, n: usize) -> Vec<Value> {
        let got = self.queue.drain(n, Duration::from_secs(5));
        assert_eq!(got.len(), n, "deliveries: {got:#?}");
        got
    }
}

fn body(envelope: &Value) -> Value {
    serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn milestone_is_delivered_with_a_short_subject_and_a_json_body() {
    let t = topic().await;
    let event = common::event("notify-milestone.json");
    let out = invoke(handle, &t.ctx, event.clone()).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();

    assert_eq!(
        envelope["Subject"],
        "pilotlight: failover ap-northeast-2 -> ap-northeast-1: database promoted"
    );
    assert_eq!(
        envelope["MessageId"], out["message_id"],
        "the returned MessageId is the delivered message"
    );
    assert_eq!(envelope["TopicArn"], t.ctx.plan.sns_topic_arn.as_str());
    let b = body(&envelope);
    assert_eq!(b["execution"], event["execution"]);
    assert_eq!(b["kind"], "milestone");
    assert_eq!(b["milestone"], "database promoted");
    assert_eq!(b["step"], "promote-db");
    assert_eq!(b["result"], "succeeded");
    assert_eq!(b["message"], "web-db-replica is a standalone writer");
    assert_eq!(b["timestamps"]["step_started_at"], "2026-11-29T10:03:10Z");
    assert_eq!(b["timestamps"]["step_finished_at"], "2026-11-29T10:03:11Z");
    assert!(b["timestamps"]["sent_at"].is_string());
    assert_eq!(b["detail"], event["detail"]);
    assert_eq!(b["dry_run"], false);
    // The output is what was sent.
    assert_eq!(out["subject"], envelope["Subject"]);
    assert_eq!(out["body"], b);
    assert_eq!(out["saw"]["topic_arn"], t.ctx.plan.sns_topic_arn.as_str());
}

#[tokio::test]
async fn failure_says_failed_and_includes_the_caught_error() {
    let t = topic().await;
    let event = common::event("notify-failure.json");
    invoke(handle, &t.ctx, event.clone()).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();
    let subject = envelope["Subject"].as_str().unwrap();
    assert_eq!(
        subject,
        "pilotlight: failover ap-northeast-2 -> ap-northeast-1: FAILED (Refused)"
    );
    let b = body(&envelope);
    assert_eq!(b["result"], "failed");
    assert_eq!(b["error"]["Error"], "pilotlight.Refused");
    assert_eq!(b["error"]["Cause"], event["detail"]["error"]["Cause"]);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lags 900 s"),
        "{b}"
    );
    assert_eq!(b["timestamps"]["requested_at"], "2026-11-29T10:00:00Z");
}

#[tokio::test]
async fn dry_run_still_publishes_marked_as_a_rehearsal() {
    let t = topic().await;
    let mut event = common::event("notify-milestone.json");
    event["dry_run"] = json!(true);
    invoke(handle, &t.ctx, event).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();
    assert_eq!(
        envelope["Subject"],
        "[DRY RUN] pilotlight: failover ap-northeast-2 -> ap-northeast-1: database promoted"
    );
    assert_eq!(body(&envelope)["dry_run"], true);
}

#[tokio::test]
async fn rerun_three_times_sends_the_same_notice_without_error() {
    let t = topic().await;
    let event = common::event("notify-milestone.json");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            invoke(handle, &t.ctx, event.clone()).await.unwrap()["message_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // At-least-once: each retry is a duplicate of the same notice (only sent_at differs), never a different story.
    let got = t.received(3);
    let strip = |e: &Value| {
        let mut b = body(e);
        b["timestamps"]["sent_at"] = Value::Null;
        (e["Subject"].clone(), b)
    };
    assert!(got.iter().all(|e| strip(e) == strip(&got[0])), "{got:#?}");
    let mut delivered: Vec<String> = got
        .iter()
        .map(|e| e["MessageId"].as_str().unwrap().to_string())
        .collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids);
}

#[tokio::test]
async fn report_publishes_the_report_and_returns_it() {
    let t = topic().await;
    let step = |name: &str, start: &str, end: &str| {
        json!({"step": name, "action": "start", "direction": "failback", "dry_run": false, "started_at": start,
               "finished_at": end, "saw": {}, "changes": [], "done": true, "message": "shifted"})
    };
    let detail = json!({"direction": "failback", "mode": "graceful", "dry_run": false,
                        "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "home"},
                        "steps": {"shift_traffic": step("shift-traffic", "2026-11-29T10:00:30Z", "2026-11-29T10:01:00Z")}});
    let event = json!({"kind": "report", "milestone": "report", "execution": "arn:aws:states:ap-northeast-1:123456789012:execution:pilotlight-failover:x",
                       "direction": "failback", "dry_run": false, "detail": detail});
    let out = invoke(handle, &t.ctx, event).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();
    assert_eq!(
        envelope["Subject"],
        "pilotlight: failback ap-northeast-1 -> ap-northeast-2: report: succeeded, RTO 60.0s"
    );
    let report = body(&envelope);
    assert_eq!(report["rto_seconds"], 60.0);
    assert_eq!(report["rpo_seconds"], 0.0, "graceful: no data loss");
    assert_eq!(report["timeline"][0]["step"], "shift-traffic");
    // moto knows no such execution: the report is built from the state alone and says so (tests/report.rs reads a
    // real history in ministack).
    assert!(
        report["history"]
            .as_str()
            .unwrap()
            .starts_with("execution history unavailable ("),
        "{report}"
    );
    assert_eq!(
        out["report"], report,
        "the state machine emits this as its output"
    );
}

#[tokio::test]
async fn long_or_multiline_milestones_make_a_valid_subject() {
    let t = topic().await;
    let mut event = common::event("notify-milestone.json");
    event["dry_run"] = json!(true);
    event["milestone"] = json!(format!("compute ready\nin Tōkyō: {}", "x".repeat(200)));
    invoke(handle, &t.ctx, event).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(
        subject.len() <= SUBJECT_MAX_CHARS && subject.is_ascii() && !subject.contains('\n'),
        "{subject}"
    );
    assert!(
        subject.starts_with("[DRY RUN] pilotlight: failover") && subject.ends_with("..."),
        "{subject}"
    );
}

#[tokio::test]
async fn unknown_field_is_bad_input_and_nothing_is_published() {
    let t = topic().await;
    let mut event = common::event("notify-milestone.json");
    event["severity"] = json!("high");
    let err = invoke(handle, &t.ctx, event).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("severity"), "{err}");
    assert!(t.queue.drain(0, Duration::from_millis(300)).is_empty());
}

#[tokio::test]
async fn a_missing_topic_is_named() {
    let missing = format!(
        "arn:aws:sns:{TOPIC_REGION}:{}:{}",
        common::ACCOUNT,
        common::unique("gone")
    );
    let ctx = common::context(&common::plan_vars(&[(
        "PILOTLIGHT_SNS_TOPIC_ARN",
        missing.clone(),
    )]))
    .await;
    let err = invoke(handle, &ctx, common::event("notify-milestone.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(&missing) && err.message.contains("PILOTLIGHT_SNS_TOPIC_ARN"),
        "{err}"
    );
}

// ---- approval gate and failure reports --------------------------------------------------------------------------

#[tokio::test]
async fn approval_request_publishes_what_will_happen_and_both_answers_without_the_token() {
    let t = topic().await;
    let event = common::event("notify-approval.json");
    let token = event["detail"]["task_token"].as_str().unwrap().to_string();
    assert!(token.len() > 500, "the sample token is realistically long");
    let out = invoke(handle, &t.ctx, event.clone()).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();

    assert_eq!(
        envelope["Subject"],
        "pilotlight: failover ap-northeast-2 -> ap-northeast-1: APPROVAL NEEDED"
    );
    assert_eq!(envelope["MessageId"], out["message_id"]);
    let b = body(&envelope);
    assert_eq!(b["kind"], "approval");
    assert_eq!(b["execution"], event["execution"]);
    assert_eq!(
        (b["from_region"].as_str(), b["to_region"].as_str()),
        (Some("ap-northeast-2"), Some("ap-northeast-1"))
    );
    assert_eq!(b["mode"], "ungraceful");
    // Exactly the two commands detect takes, each naming the execution; the token stays out of the mail.
    assert_eq!(
        b["how_to_answer"]["approve"],
        json!({"command": "approve", "execution": event["execution"], "reason": "<who approves, and why>"})
    );
    assert_eq!(
        b["how_to_answer"]["reject"],
        json!({"command": "reject", "execution": event["execution"], "reason": "<who rejects, and why>"})
    );
    let message = envelope["Message"].as_str().unwrap();
    assert!(!message.contains(&token[..24]) && !message.contains(&token[token.len() - 24..]));
    // Why: the trigger as detect recorded it.
    assert_eq!(b["why"]["trigger"], event["detail"]["input"]["trigger"]);
    assert!(
        b["why"]["summary"]
            .as_str()
            .unwrap()
            .contains("web-primary-5xx"),
        "{b}"
    );
    // What: the plan's resources that will change.
    let w = &b["what_will_happen"];
    assert_eq!(w["database"]["new_writer"]["db_instance"], "web-db-replica");
    assert_eq!(w["compute"]["scale_up"]["asg"], "web-asg-dr");
    assert_eq!(
        w["compute"]["scale_up"]["capacity"],
        json!({"min": 2, "desired": 2, "max": 4})
    );
    assert_eq!(
        w["traffic"]["endpoint_groups"][1]["arn"],
        t.ctx.plan.dr.endpoint_group_arn.as_str()
    );
    assert_eq!(w["traffic"]["endpoint_groups"][1]["final_dial"], 100);
    assert_eq!(w["traffic"]["endpoint_groups"][0]["final_dial"], 0);
    assert_eq!(w["dns"]["mode"], "health-check");
    assert_eq!(b["execution_input"], event["detail"]["input"]);
    // notify returns at once: the state machine waits for the answer through detect, not for this output.
    assert_eq!(out["kind"], "approval");
    assert_eq!(out["body"], b);
}

#[tokio::test]
async fn approval_without_a_task_token_is_bad_input_and_nothing_is_published() {
    let t = topic().await;
    for token in [Value::Null, json!(""), json!(42)] {
        let mut event = common::event("notify-approval.json");
        if token.is_null() {
            event["detail"]
                .as_object_mut()
                .unwrap()
                .remove("task_token");
        } else {
            event["detail"]["task_token"] = token.clone();
        }
        let err = invoke(handle, &t.ctx, event).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{token}: {err}");
        assert!(err.message.contains("detail.task_token"), "{err}");
    }
    assert!(t.queue.drain(0, Duration::from_millis(300)).is_empty());
}

#[tokio::test]
async fn approval_timeout_failure_carries_the_report() {
    let t = topic().await;
    let mut event = common::event("notify-failure.json");
    event["milestone"] = json!("approval");
    event["detail"]["error"] =
        json!({"Error": "States.Timeout", "Cause": "approval not answered within 3600 s"});
    invoke(handle, &t.ctx, event.clone()).await.unwrap();
    let [envelope] = t.received(1).try_into().unwrap();
    assert_eq!(
        envelope["Subject"],
        "pilotlight: failover ap-northeast-2 -> ap-northeast-1: FAILED: approval (States.Timeout)"
    );
    let b = body(&envelope);
    assert_eq!(b["result"], "failed");
    assert_eq!(b["error"]["Error"], "States.Timeout");
    assert_eq!(b["report"]["outcome"], "failed");
    assert_eq!(b["report"]["execution"], event["execution"]);
    assert_eq!(b["report"]["trigger"], event["detail"]["trigger"]);
    assert_eq!(b["report"]["error"], event["detail"]["error"]);
    assert!(
        b["report"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("failover failed"),
        "{b}"
    );
}
