//! notify's message composition (pure): the subject line, the JSON body per kind, and the fit within SNS's size.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::approval::{approval_body, approval_request};
use super::report::{self, StepHistory};
use super::{NotifyInput, NotifyKind};
use crate::plan::FailoverPlan;

/// SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less than 100
/// characters long" (API reference); kept ASCII so every email client shows it as is.
pub const SUBJECT_MAX_CHARS: usize = 99;

/// SNS Publish: at most 256 KB (262,144 bytes) per message.
pub const MESSAGE_MAX_BYTES: usize = 262_144;

const DRY_RUN_PREFIX: &str = "[DRY RUN] ";

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

pub(super) fn text(v: Option<&Value>) -> Option<&str> {
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
    // [`report`].
    let report = (input.kind == NotifyKind::Report)
        .then(|| report::build(&input.execution, &detail, history));
    // A failure carries the report too (below); its rollback decides part of the subject.
    let failure_report = (input.kind == NotifyKind::Failure)
        .then(|| report::build(&input.execution, &detail, history));
    let rollback = failure_report.as_ref().and_then(|r| r.rollback.clone());
    let base = format!("pilotlight: {} {from} -> {to}", direction.as_str());
    let what = match input.kind {
        NotifyKind::Milestone => milestone.unwrap_or("milestone").to_string(),
        NotifyKind::Failure => {
            let mut s = "FAILED".to_string();
            // The state machine records which phase failed (`$.failed_at`); the milestone otherwise.
            let failed_at = text(detail.get("failed_at"));
            if let Some(m) = failed_at.or(milestone.filter(|m| !m.eq_ignore_ascii_case("failed"))) {
                s.push_str(&format!(": {m}"));
            }
            // What happened to the traffic of a graceful flow that failed after its drain (`$.rollback`): before
            // the error type, which the body keeps whole when the subject is cut.
            match rollback.as_ref().map(|r| r.outcome.as_str()) {
                Some("restored") => s.push_str(", rolled back"),
                Some("failed") => s.push_str(", rollback FAILED"),
                Some(_) => s.push_str(", forward only"),
                None => {}
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
                "report: {}, RTO {}{}",
                match &r.degraded {
                    // Never a clean success: say which part is degraded.
                    Some(Value::Object(d)) => format!(
                        "succeeded DEGRADED ({})",
                        d.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    _ => r.outcome.clone(),
                },
                r.rto_seconds
                    .map(|s| format!("{s:.1}s"))
                    .unwrap_or_else(|| "n/a".into()),
                // The success notice warns when the side left is not fenced (the body says what and how to retry).
                if r.fence.as_ref().is_some_and(|f| f.warning.is_some()) {
                    ", NOT FENCED"
                } else {
                    ""
                }
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
            // The phase the state machine recorded on its way to NotifyFailure.
            "failed_at": text(detail.get("failed_at")),
            "result": if input.kind == NotifyKind::Failure { "failed" } else { "succeeded" },
            "message": text(detail.get("message")),
            "error": error,
            // A graceful failure after the drain: the source dial restored, the restore failed, or forward only.
            "rollback": rollback,
            "timestamps": {
                "requested_at": text(detail.get("requested_at")),
                "step_started_at": text(detail.get("started_at")),
                "step_finished_at": text(detail.get("finished_at")),
                "sent_at": now,
            },
            "detail": detail,
            // An aborted or failed run (approval timeout or rejection included) is described like a finished one.
            "report": failure_report,
        }),
    };
    Notice {
        subject,
        body: fit_message(body, input, now),
    }
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
            json!({ "omitted": note, "outcome": part.get("outcome"), "summary": part.get("summary"),
                    "warnings": part.get("warnings"), "rollback": part.get("rollback") })
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
    for key in ["summary", "error", "rollback", "warnings", "how_to_answer"] {
        if let Some(v) = o.remove(key) {
            minimal[key] = v;
        }
    }
    minimal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::plan::tests::reference_vars;
    use crate::steps::notify::approval::TASK_TOKEN_MAX_BYTES;
    use crate::steps::notify::parse_input;

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
        // The generated machine records the phase that failed: the subject names it.
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "failure", "milestone": "failed", "execution": EXEC,
                          "detail": {"failed_at": "shift-traffic",
                                     "error": {"Error": "pilotlight.Transient", "Cause": cause}}}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert!(
            n.subject.ends_with("FAILED: shift-traffic (Transient)"),
            "{}",
            n.subject
        );
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
            serde_json::to_value(report::build(EXEC, &detail, &StepHistory::NotRead)).unwrap()
        );
        assert_eq!(n.body["execution"], EXEC);
    }

    fn approval_event(token: &str, direction: &str, mode: &str) -> Value {
        json!({"kind": "approval", "milestone": "approval requested", "execution": EXEC, "direction": direction,
               "dry_run": false, "detail": {"task_token": token, "input": {
                   "direction": direction, "mode": mode, "dry_run": false, "overrides": {},
                   "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "drill"},
                   "timing": {"poll_seconds": 15, "dial_bake_seconds": 30, "max_polls": 240},
                   "approval": {"required": true, "pause_on_findings": true}}}})
    }

    /// Issue #10: a paused run's approval request shows the preflight findings and the approve command names the
    /// overrides that accept them.
    #[test]
    fn approval_with_preflight_findings_shows_them_and_suggests_their_overrides() {
        use crate::preflight::{Check, PreflightSaw};
        use crate::step::Overrides;
        let mut event = approval_event("tok", "failover", "ungraceful");
        let stale = Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &Overrides::default(),
            "newest AMI of the source is 100 h old",
        );
        event["detail"]["input"]["steps"] = json!({"preflight": [
            {"preflight_scale_compute": {"saw": PreflightSaw::of(vec![stale])}},
            {"preflight_promote_db": {"saw": PreflightSaw::of(vec![])}},
        ]});
        let n = compose(&plan(), &input(event), &StepHistory::NotRead, Utc::now());
        let b = &n.body;
        assert_eq!(b["preflight"]["findings"][0]["check"], "ami.age", "{b}");
        assert_eq!(b["preflight"]["findings"][0]["seen"], 100.0);
        assert_eq!(b["preflight"]["findings"][0]["limit"], 72);
        assert_eq!(
            b["preflight"]["overrides_needed"],
            json!(["allow_stale_ami"])
        );
        assert_eq!(
            b["how_to_answer"]["approve"]["overrides"],
            json!({"allow_stale_ami": true})
        );
        assert!(
            b["summary"]
                .as_str()
                .unwrap()
                .contains("PREFLIGHT FINDINGS (1): ami.age"),
            "{b}"
        );
    }

    #[test]
    fn approval_says_what_will_happen_and_how_to_answer_without_the_token() {
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
            json!({"command": "approve", "execution": EXEC, "reason": "<who approves, and why>"})
        );
        assert_eq!(
            b["how_to_answer"]["reject"],
            json!({"command": "reject", "execution": EXEC, "reason": "<who rejects, and why>"})
        );
        assert_eq!(
            b["how_to_answer"]["token_fingerprint"],
            super::super::approval::token_fingerprint(&token)
        );
        // Not the token, nor any long piece of it, anywhere in the mail.
        for text in [n.body.to_string(), n.subject.clone()] {
            assert!(!text.contains(&token[..24]), "{text}");
            assert!(!text.contains(&token[token.len() - 24..]));
        }
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
            (huge, "more than the"),
        ] {
            let e = parse_input(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
            assert!(e.message.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn an_oversized_approval_keeps_the_commands_and_no_token() {
        let token = "T".repeat(TASK_TOKEN_MAX_BYTES);
        let mut event = approval_event(&token, "failover", "graceful");
        event["detail"]["input"]["trigger"]["reason"] = json!("r".repeat(MESSAGE_MAX_BYTES));
        let n = compose(&plan(), &input(event), &StepHistory::NotRead, Utc::now());
        assert!(n.body.to_string().len() < MESSAGE_MAX_BYTES);
        assert_eq!(n.body["how_to_answer"]["approve"]["execution"], EXEC);
        assert!(!n.body.to_string().contains(&token[..64]));
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
            serde_json::to_value(report::build(EXEC, &state, &StepHistory::NotRead)).unwrap()
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

    /// Issue #10: the success notification of a run whose DNS failed after the shift says DEGRADED, with the
    /// warning (the error and how to re-run update-dns).
    #[test]
    fn a_degraded_run_is_reported_as_such() {
        let cause = r#"{"errorType":"pilotlight.AwsError","errorMessage":"UpdateHealthCheck on hc failed: AccessDenied: denied (HTTP 403)"}"#;
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false,
                           "trigger": {"state_change_time": "2026-11-29T10:00:00Z"}, "steps": {},
                           "degraded": {"dns": {"phase": "update-dns", "error": {"Error": "pilotlight.AwsError", "Cause": cause}}}});
        let n = compose(
            &plan(),
            &input(
                json!({"kind": "report", "milestone": "report", "execution": EXEC, "detail": state}),
            ),
            &StepHistory::NotRead,
            Utc::now(),
        );
        assert_eq!(
            n.subject,
            "pilotlight: failover ap-northeast-2 -> ap-northeast-1: report: succeeded DEGRADED (dns), RTO n/a"
        );
        assert_eq!(n.body["outcome"], "degraded");
        let w = n.body["warnings"][0].as_str().unwrap();
        assert!(
            w.starts_with(
                "DNS degraded: pilotlight.AwsError: UpdateHealthCheck on hc failed: AccessDenied"
            ),
            "{w}"
        );
        assert!(w.contains("re-run update-dns"), "{w}");
        assert!(
            n.body["summary"].as_str().unwrap().contains("DNS degraded"),
            "{}",
            n.body["summary"]
        );
    }

    /// Issue #10: a graceful failure after the drain says in the subject and the body what happened to the traffic.
    #[test]
    fn a_failure_says_whether_it_rolled_back() {
        let failure = |rollback: Value, steps: Value| {
            let detail = json!({"direction": "failover", "mode": "graceful", "dry_run": false, "failed_at": "catchup",
                                "steps": steps, "rollback": rollback,
                                "error": {"Error": "pilotlight.PollLimitExceeded", "Cause": "promote-db catchup: not done after $.timing.max_polls polls"}});
            compose(
                &plan(),
                &input(
                    json!({"kind": "failure", "milestone": "failed", "execution": EXEC, "detail": detail}),
                ),
                &StepHistory::NotRead,
                Utc::now(),
            )
        };
        let restore = json!({"step": "shift-traffic", "action": "restore", "direction": "failover", "dry_run": false,
            "started_at": "2026-11-29T10:02:00Z", "finished_at": "2026-11-29T10:02:01Z", "done": true,
            "message": "restored ap-northeast-2", "changes": [],
            "saw": {"source": "primary", "restored_to": 100}});
        let n = failure(json!({"outcome": "restored"}), json!({"restore": restore}));
        assert!(
            n.subject
                .starts_with("pilotlight: failover ap-northeast-2 -> ap-northeast-1: FAILED: catchup, rolled back ("),
            "{}",
            n.subject
        );
        assert_eq!(n.body["rollback"]["outcome"], "restored");
        assert!(
            n.body["rollback"]["message"]
                .as_str()
                .unwrap()
                .starts_with("rolled back: source dial restored to 100"),
            "{}",
            n.body["rollback"]
        );
        assert_eq!(n.body["report"]["rollback"], n.body["rollback"]);
        let n = failure(
            json!({"outcome": "failed", "error": {"Error": "pilotlight.Transient", "Cause": "throttled"}}),
            json!({}),
        );
        assert!(
            n.subject.contains("FAILED: catchup, rollback FAILED ("),
            "{}",
            n.subject
        );
        assert!(n.subject.len() <= SUBJECT_MAX_CHARS);
        assert!(
            n.body["rollback"]["message"]
                .as_str()
                .unwrap()
                .contains("both dials may be at 0 and no traffic is served"),
            "{}",
            n.body["rollback"]
        );
        let n = failure(
            json!({"outcome": "forward-only", "why": crate::flow::FORWARD_ONLY}),
            json!({}),
        );
        assert!(
            n.subject.contains("FAILED: catchup, forward only ("),
            "{}",
            n.subject
        );
        assert!(
            n.body["rollback"]["message"]
                .as_str()
                .unwrap()
                .contains("could split the data"),
            "{}",
            n.body["rollback"]
        );
        // No rollback decision (a failure before the drain): nothing said about one.
        let n = failure(Value::Null, json!({}));
        assert!(
            n.subject.ends_with("FAILED: catchup (PollLimitExceeded)"),
            "{}",
            n.subject
        );
        assert_eq!(n.body["rollback"], Value::Null);
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
