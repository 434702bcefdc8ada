//! The execution report: per-step timeline, what each step saw and changed, RTO and RPO. Built from the state the
//! failover state machine accumulates (`$.steps`, `$.recovery` from the Parallel branches, `$.trigger`), so it
//! needs no AWS call and is the same in AWS and in the drill.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::step::{Change, StepReport};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTimeline {
    pub step: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub seconds: f64,
    pub done: bool,
    pub message: String,
    pub saw: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub execution: String,
    pub direction: String,
    pub mode: String,
    pub dry_run: bool,
    /// "succeeded", or "failed" with `error` set.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    pub trigger: Value,
    pub timeline: Vec<StepTimeline>,
    /// Seconds the database and compute branches ran at the same time.
    pub parallel_overlap_seconds: Option<f64>,
    /// From the trigger (alarm state change, or the manual request) to traffic shifted.
    pub rto_seconds: Option<f64>,
    /// Replica lag seen before promotion; 0 for a graceful switchover.
    pub rpo_seconds: Option<f64>,
    pub changes: Vec<Change>,
    /// The operator's answer when the execution waited for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    pub summary: String,
}

/// (first report, last report) of a step: the `start` call and the final `status` poll.
fn step_reports(
    state: &Value,
    start_key: &str,
    status_key: &str,
) -> Option<(StepReport, StepReport)> {
    let find = |key: &str| -> Option<StepReport> {
        let in_steps = |v: &Value| v.get("steps").and_then(|s| s.get(key)).cloned();
        let candidates = std::iter::once(state).chain(
            state
                .get("recovery")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        candidates
            .filter_map(in_steps)
            .find_map(|v| serde_json::from_value(v).ok())
    };
    let first = find(start_key).or_else(|| find(status_key))?;
    let last = find(status_key).unwrap_or_else(|| first.clone());
    Some((first, last))
}

pub fn build(execution: &str, state: &Value) -> Report {
    // (timeline name, key of the first call's result, key of the last call's result). Loops that repeat one
    // action keep only the latest result under one key (prepare, drain, catchup, dial steps).
    let steps = [
        ("prepare-db", "prepare_db", "prepare_db"),
        ("promote-db", "promote_db_start", "promote_db"),
        ("scale-compute", "scale_compute_start", "scale_compute"),
        ("drain", "drain", "drain"),
        ("catchup", "catchup", "catchup"),
        ("shift-traffic", "shift_traffic", "shift_traffic"),
        ("update-dns", "update_dns_start", "update_dns"),
    ];
    let mut timeline = Vec::new();
    let mut changes = Vec::new();
    let mut rpo = None;
    for (name, start_key, status_key) in steps {
        let Some((first, last)) = step_reports(state, start_key, status_key) else {
            continue;
        };
        // The start call records what was changed; status polls only observe.
        changes.extend(first.changes.iter().cloned());
        if name == "shift-traffic" {
            changes.extend(
                last.changes
                    .iter()
                    .filter(|c| !first.changes.contains(c))
                    .cloned(),
            );
        }
        rpo = rpo.or(first.rpo_seconds).or(last.rpo_seconds);
        timeline.push(StepTimeline {
            step: name.to_string(),
            started_at: first.started_at,
            finished_at: last.finished_at,
            seconds: secs(last.finished_at - first.started_at),
            done: last.done,
            message: last.message.clone(),
            saw: last.saw.clone(),
        });
    }
    // Failback's re-protection runs as a Parallel whose output is [promote-db report, scale-compute report].
    let reprotect = state
        .get("reprotect")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for r in reprotect.filter_map(|v| serde_json::from_value::<StepReport>(v.clone()).ok()) {
        changes.extend(r.changes.iter().cloned());
        timeline.push(StepTimeline {
            step: format!("reprotect-{}", r.step),
            started_at: r.started_at,
            finished_at: r.finished_at,
            seconds: secs(r.finished_at - r.started_at),
            done: r.done,
            message: r.message.clone(),
            saw: r.saw.clone(),
        });
    }
    timeline.sort_by_key(|t| t.started_at);
    let span = |n: &str| {
        timeline
            .iter()
            .find(|t| t.step == n)
            .map(|t| (t.started_at, t.finished_at))
    };
    let parallel_overlap_seconds = match (span("promote-db"), span("scale-compute")) {
        (Some((a0, a1)), Some((b0, b1))) => Some(secs(a1.min(b1) - a0.max(b0)).max(0.0)),
        _ => None,
    };
    let trigger = state.get("trigger").cloned().unwrap_or(Value::Null);
    let triggered_at = trigger
        .get("state_change_time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let shifted = timeline
        .iter()
        .find(|t| t.step == "shift-traffic" && t.done)
        .map(|t| t.finished_at);
    let rto_seconds = match (triggered_at, shifted) {
        (Some(a), Some(b)) => Some(secs(b - a)),
        _ => None,
    };
    let text = |k: &str| {
        state
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let dry_run = state
        .get("dry_run")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if text("mode") == "graceful" && rpo.is_none() {
        rpo = Some(0.0);
    }
    let error = state.get("error").cloned();
    let outcome = if error.is_some() {
        "failed"
    } else {
        "succeeded"
    }
    .to_string();
    let summary = format!(
        "{}{} {}: {} steps, {} changes{}, RTO {}, RPO {}",
        if dry_run { "[DRY RUN] " } else { "" },
        text("direction"),
        outcome,
        timeline.len(),
        changes.len(),
        if dry_run { " (none applied)" } else { "" },
        rto_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "n/a".into()),
        rpo.map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "unknown".into()),
    );
    Report {
        execution: execution.to_string(),
        direction: text("direction"),
        mode: text("mode"),
        dry_run,
        outcome,
        error,
        trigger,
        timeline,
        parallel_overlap_seconds,
        rto_seconds,
        rpo_seconds: rpo,
        changes,
        approval: state
            .get("approval")
            .and_then(|a| a.get("decision"))
            .cloned(),
        summary,
    }
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(
        name: &str,
        start: &str,
        end: &str,
        done: bool,
        changes: Value,
        rpo: Option<f64>,
    ) -> Value {
        json!({"step": name, "action": "start", "direction": "failover", "dry_run": false,
               "started_at": start, "finished_at": end, "saw": {"seen": name}, "changes": changes,
               "done": done, "message": format!("{name} ok"), "rpo_seconds": rpo})
    }

    #[test]
    fn timeline_rto_rpo_and_overlap() {
        let change = json!([{"resource": "db", "field": "role", "from": "replica", "to": "writer", "applied": true}]);
        let state = json!({
            "direction": "failover", "mode": "ungraceful", "dry_run": false,
            "trigger": {"source": "alarm", "alarms": ["a"], "state_change_time": "2026-11-29T10:00:00Z", "reason": "r"},
            "recovery": [
                {"steps": {"promote_db_start": step("promote-db", "2026-11-29T10:00:10Z", "2026-11-29T10:00:11Z", false, change.clone(), Some(4.0)),
                           "promote_db": step("promote-db", "2026-11-29T10:00:40Z", "2026-11-29T10:00:41Z", true, json!([]), None)}},
                {"steps": {"scale_compute_start": step("scale-compute", "2026-11-29T10:00:12Z", "2026-11-29T10:00:13Z", false, json!([]), None),
                           "scale_compute": step("scale-compute", "2026-11-29T10:01:00Z", "2026-11-29T10:01:01Z", true, json!([]), None)}}
            ],
            "steps": {"shift_traffic": step("shift-traffic", "2026-11-29T10:01:05Z", "2026-11-29T10:01:30Z", true, json!([]), None)}
        });
        let r = build("exec-1", &state);
        assert_eq!(
            r.timeline
                .iter()
                .map(|t| t.step.as_str())
                .collect::<Vec<_>>(),
            ["promote-db", "scale-compute", "shift-traffic"]
        );
        assert_eq!(r.timeline[0].seconds, 31.0);
        assert_eq!(r.parallel_overlap_seconds, Some(29.0)); // 10:00:12 .. 10:00:41
        assert_eq!(r.rto_seconds, Some(90.0));
        assert_eq!(r.rpo_seconds, Some(4.0));
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.outcome, "succeeded");
        assert!(r.summary.contains("RTO 90.0s"), "{}", r.summary);
    }

    #[test]
    fn graceful_failback_with_reprotection_and_approval() {
        let change = json!([{"resource": "asg", "field": "DesiredCapacity", "from": 2, "to": 0, "applied": true}]);
        let state = json!({
            "direction": "failback", "mode": "graceful", "dry_run": false,
            "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "home"},
            "approval": {"required": true, "decision": {"approved": true, "reason": "ok"}},
            "steps": {
                "prepare_db": step("promote-db", "2026-11-29T10:00:05Z", "2026-11-29T10:00:06Z", true, json!([]), None),
                "drain": step("shift-traffic", "2026-11-29T10:01:00Z", "2026-11-29T10:01:01Z", true, json!([]), None),
                "catchup": step("promote-db", "2026-11-29T10:01:05Z", "2026-11-29T10:01:06Z", true, json!([]), None),
                "shift_traffic": step("shift-traffic", "2026-11-29T10:02:00Z", "2026-11-29T10:02:30Z", true, json!([]), None)
            },
            "reprotect": [
                step("promote-db", "2026-11-29T10:03:00Z", "2026-11-29T10:03:10Z", true, json!([]), None),
                step("scale-compute", "2026-11-29T10:03:00Z", "2026-11-29T10:03:01Z", true, change, None)
            ]
        });
        let r = build("exec-3", &state);
        let names: Vec<&str> = r.timeline.iter().map(|t| t.step.as_str()).collect();
        assert_eq!(
            names,
            [
                "prepare-db",
                "drain",
                "catchup",
                "shift-traffic",
                "reprotect-promote-db",
                "reprotect-scale-compute"
            ]
        );
        assert_eq!(r.rto_seconds, Some(150.0));
        assert_eq!(r.rpo_seconds, Some(0.0));
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.approval.as_ref().unwrap()["approved"], true);
    }

    #[test]
    fn failure_and_graceful_rpo() {
        let state = json!({"direction": "failback", "mode": "graceful", "dry_run": true,
                           "error": {"Error": "pilotlight.Refused", "Cause": "replica lag"}});
        let r = build("exec-2", &state);
        assert_eq!(r.outcome, "failed");
        assert_eq!(r.rpo_seconds, Some(0.0));
        assert!(r.timeline.is_empty() && r.rto_seconds.is_none());
        assert!(r.summary.starts_with("[DRY RUN] failback failed"));
    }
}
