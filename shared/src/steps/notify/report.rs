//! The execution report: a timeline per phase, what each step saw and changed, RTO and RPO. Built from every step
//! report of the run: the ones in the state the failover state machine accumulated (`$.steps`, `$.recovery` from
//! the Parallel branches, `$.reprotect`) plus the ones read from the execution history. The history matters: a
//! loop that repeats one action (`$.steps.shift_traffic`, `prepare_db`, `drain`, `catchup`) keeps only its latest
//! result in the state, so without it a graceful failover would show only its last dial step. Pure: notify reads
//! the history (stepfunctions::step_reports) and passes it in.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fence::{FenceOutcome, FenceStatus, RETRY_HINT};
use crate::step::{Action, Change, StepReport};

pub mod html;

/// The step reports the execution history gave, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum StepHistory {
    /// Nobody asked for it (a report built from the state alone, e.g. in a unit test).
    NotRead,
    /// Every step report of the execution's successful Lambda results, oldest first.
    Read(Vec<StepReport>),
    /// Reading it failed; the reason.
    Unavailable(String),
}

impl StepHistory {
    fn reports(&self) -> &[StepReport] {
        match self {
            StepHistory::Read(r) => r,
            StepHistory::NotRead | StepHistory::Unavailable(_) => &[],
        }
    }

    /// What the report says about its sources.
    pub fn describe(&self) -> String {
        match self {
            StepHistory::Read(r) => format!("execution history: {} step results", r.len()),
            StepHistory::NotRead => {
                "execution history not read: built from the execution state alone (repeated calls of a loop show \
                 only their latest result)"
                    .to_string()
            }
            StepHistory::Unavailable(why) => format!(
                "execution history unavailable ({why}): built from the execution state alone (repeated calls of \
                 a loop show only their latest result)"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTimeline {
    /// The phase (see [`phase`]): e.g. "prepare-db", "shift-traffic", "reprotect-promote-db".
    pub step: String,
    /// The earliest call's start.
    pub started_at: DateTime<Utc>,
    /// The latest call's finish.
    pub finished_at: DateTime<Utc>,
    pub seconds: f64,
    /// How many step reports (start and status calls, loop iterations) the phase is made of.
    pub calls: usize,
    /// Each of those calls, oldest first (the HTML report's chart draws every poll).
    pub call_spans: Vec<CallSpan>,
    /// The side-by-side phase (the state machine's Parallel, e.g. "recover") this phase ran in as one branch,
    /// from the flow definition of the run's direction and mode; None when it ran alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side_by_side: Option<String>,
    /// `done`, `message` and `saw` of the latest call.
    pub done: bool,
    pub message: String,
    pub saw: Value,
}

/// One call of a phase: its action and when it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSpan {
    pub action: &'static str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub execution: String,
    pub direction: String,
    pub mode: String,
    pub dry_run: bool,
    /// "succeeded"; "degraded" when the run succeeded but a best-effort phase could not complete (`warnings`
    /// says what and how to finish it); or "failed" with `error` set.
    pub outcome: String,
    /// What a degraded run left undone and how to finish it, e.g. "DNS degraded: ...; re-run update-dns: ...".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `$.degraded` as the state machine recorded it: per key, the phase and the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<Value>,
    /// A graceful flow that failed after the drain: the source dial restored, the restore failed, or forward
    /// only (after the promotion) and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    pub trigger: Value,
    pub timeline: Vec<StepTimeline>,
    /// Seconds the database and compute phases ran at the same time.
    pub parallel_overlap_seconds: Option<f64>,
    /// From the trigger (alarm state change, or the manual request) to the dial step that completed the traffic
    /// shift. None in a dry-run (nothing moved) or when the shift did not complete.
    pub rto_seconds: Option<f64>,
    /// Replica lag seen before promotion; 0 for a graceful switchover.
    pub rpo_seconds: Option<f64>,
    /// Which rule let the promotion's lag through (promote-db's `saw.rpo_rule`: within the limit, a post-drain 0,
    /// or the override that accepted it), and the lag and its age as seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_lag: Option<Value>,
    /// The overrides in effect at the end (the execution's plus those an approval answer added).
    pub overrides: Vec<&'static str>,
    /// The preflight: findings still failing, and the checks that failed but were accepted by an override.
    pub preflight: Value,
    /// Every change, in the order the steps made (or, in a dry-run, would make) them.
    pub changes: Vec<Change>,
    /// The operator's answer when the execution waited for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// The fence of the side left (failover flows and the `fence` command's run): each call's outcome, and a
    /// warning naming what is not fenced. None when the run had no fence phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceReport>,
    /// The `fence` command's run (only the fence phase), not a failover or failback.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fence_only: bool,
    /// Where the step reports came from: "execution history: N step results", or why the history was not used.
    pub history: String,
    pub summary: String,
}

/// What the fence phase did (docs/guarantees.md "Fencing").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FenceReport {
    pub outcomes: Vec<FenceOutcome>,
    /// Set when something is not fenced (or the phase failed before reporting): what, and how to retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The fence outcomes of the run, the latest per step; `phase_error` is the error the phase's Catch recorded
/// (`$.degraded.fence.error`). In a dry run of a failover (`rehearsal`) nothing moved, so every fence call finds its
/// side still serving and answers "not fenced: not now": that is what a rehearsal must show, not a warning that
/// makes the game day read "degraded, NOT FENCED". A real run, or the `fence` command's own dry run, warns.
pub fn fence_report(
    reports: &[StepReport],
    phase_error: Option<&Value>,
    rehearsal: bool,
) -> Option<FenceReport> {
    let mut outcomes: Vec<FenceOutcome> = Vec::new();
    let mut steps: Vec<&str> = Vec::new();
    for r in reports.iter().rev().filter(|r| r.action == Action::Fence) {
        if steps.contains(&r.step.as_str()) {
            continue;
        }
        steps.push(&r.step);
        if let Some(o) = r
            .saw
            .get("fence")
            .and_then(|v| serde_json::from_value::<FenceOutcome>(v.clone()).ok())
        {
            outcomes.push(o);
        }
    }
    if outcomes.is_empty() && phase_error.is_none() {
        return None;
    }
    outcomes.reverse();
    let mut problems: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == FenceStatus::NotFenced && !rehearsal)
        .map(FenceOutcome::line)
        .collect();
    if let Some(e) = phase_error {
        problems.push(format!(
            "the fence phase failed ({}); {RETRY_HINT}",
            e.get("Cause")
                .or_else(|| e.get("Error"))
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
        ));
    }
    let warning = (!problems.is_empty()).then(|| format!("NOT FENCED: {}", problems.join(" | ")));
    Some(FenceReport { outcomes, warning })
}

/// What a graceful flow's failure after the drain did about the traffic (`$.rollback`, `$.steps.restore`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollback {
    /// "restored", "failed" (the restore itself failed) or "forward-only".
    pub outcome: String,
    /// The source dial after the restore, when restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_to: Option<i64>,
    /// For the operators: what happened to the traffic and, when it is not served, what to do.
    pub message: String,
}

/// The error the state machine caught ({Error, Cause}), readable: a Lambda's Cause is JSON whose errorMessage
/// is lifted out.
pub fn error_text(error: &Value) -> String {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let cause = error.get("Cause").and_then(Value::as_str).unwrap_or("");
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    if message.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {message}")
    }
}

/// How to finish a phase the run left degraded: re-run its step, whose start reads the live state first and
/// changes only what differs (docs/statemachine.md "DNS degraded").
fn rerun_hint(phase: &str, direction: &str) -> String {
    use crate::flow::Function::*;
    match [PromoteDb, ScaleCompute, ShiftTraffic, UpdateDns]
        .into_iter()
        .find(|f| f.step_name() == phase)
    {
        Some(f) => format!(
            "re-run {phase}: invoke the {phase} function (stack output {}) with {{\"action\": \"start\", \
             \"direction\": \"{direction}\"}}, then {{\"action\": \"status\", \"direction\": \"{direction}\"}} until it \
             answers done: true (it reads the live state first and changes only what differs)",
            f.arn_placeholder()
        ),
        None => format!("re-run {phase}"),
    }
}

/// The warnings of `$.degraded` ({key: {phase, error}}), one per key.
fn degraded_warnings(degraded: &Value, direction: &str) -> Vec<String> {
    let Some(entries) = degraded.as_object() else {
        return Vec::new();
    };
    entries
        .iter()
        // A failed fence phase is warned about by the fence report, with the fence command to retry it.
        .filter(|(key, _)| key.as_str() != "fence")
        .map(|(key, d)| {
            let phase = d.get("phase").and_then(Value::as_str).unwrap_or(key);
            let what = if key == "dns" {
                "DNS".to_string()
            } else {
                key.clone()
            };
            format!(
                "{what} degraded: {}; {}",
                error_text(d.get("error").unwrap_or(&Value::Null)),
                rerun_hint(phase, direction)
            )
        })
        .collect()
}

/// `$.rollback` read for the operators (see [`Rollback`]).
fn rollback_of(state: &Value, direction: &str) -> Option<Rollback> {
    let r = state.get("rollback")?;
    let outcome = r.get("outcome").and_then(Value::as_str)?.to_string();
    let restore = state.get("steps").and_then(|s| s.get("restore"));
    let source = match direction {
        "failback" => "dr",
        _ => "primary",
    };
    let dry_run = restore
        .and_then(|x| x.get("dry_run"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let restored_to = restore
        .and_then(|x| x.pointer("/saw/restored_to"))
        .and_then(Value::as_i64);
    let message = match outcome.as_str() {
        "restored" if dry_run => format!(
            "dry-run rollback: {}",
            restore
                .and_then(|x| x.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("nothing changed")
        ),
        "restored" => format!(
            "rolled back: source dial restored to {} ({source}: it still holds the writer, nothing was promoted)",
            restored_to
                .map(|n| n.to_string())
                .unwrap_or_else(|| "100".into())
        ),
        "failed" => format!(
            "rollback FAILED ({}): both dials may be at 0 and no traffic is served. Restore the {source} dial: \
             invoke the shift-traffic function (stack output ShiftTrafficFunctionArn) with {{\"action\": \"restore\", \
             \"direction\": \"{direction}\"}}, or set the {source} endpoint group's TrafficDialPercentage to 100",
            error_text(r.get("error").unwrap_or(&Value::Null))
        ),
        _ => format!(
            "forward only: {}",
            r.get("why")
                .and_then(Value::as_str)
                .unwrap_or(crate::flow::FORWARD_ONLY)
        ),
    };
    Some(Rollback {
        outcome,
        restored_to: restored_to
            .filter(|_| r.get("outcome").and_then(Value::as_str) == Some("restored")),
        message,
    })
}

/// The timeline phase a step report belongs to: the flow definition names them (start and status calls of a step
/// are one phase; the other actions get their own names).
pub use crate::flow::phase;

/// Every step report in the state: `$.steps.*`, including a side-by-side phase's branch outputs
/// (`$.steps.<phase>[*].*`), and `$.recovery[*]` / `$.reprotect[*]` of executions started before the flows were
/// generated.
pub fn state_reports(state: &Value) -> Vec<StepReport> {
    fn collect(v: &Value, depth: usize, out: &mut Vec<StepReport>) {
        if v.get("step").is_some()
            && let Ok(r) = StepReport::deserialize(v)
        {
            out.push(r);
            return;
        }
        if depth == 0 {
            return;
        }
        match v {
            Value::Object(o) => o.values().for_each(|x| collect(x, depth - 1, out)),
            Value::Array(a) => a.iter().for_each(|x| collect(x, depth - 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for key in ["steps", "recovery", "reprotect"] {
        if let Some(v) = state.get(key) {
            collect(v, 3, &mut out);
        }
    }
    out
}

/// History and state reports, each call once (same step, action and start), in start order (calls that start
/// together keep the history's order, then the state's).
fn all_reports(state: &Value, history: &StepHistory) -> Vec<StepReport> {
    let mut seen = HashSet::new();
    let mut reports: Vec<StepReport> = history
        .reports()
        .iter()
        .cloned()
        .chain(state_reports(state))
        .filter(|r| seen.insert((r.step.clone(), r.action.as_str(), r.started_at)))
        .collect();
    reports.sort_by_key(|r| r.started_at);
    reports
}

/// Which side-by-side phase each timeline phase is a branch of, in the flow this run followed (the preflight runs
/// in every flow). Empty when the state names no known direction: a phase such as promote-db runs side by side
/// in a failover but alone in a failback, so it is not guessed.
fn side_by_side_phases(state: &Value) -> Vec<(String, &'static str)> {
    use crate::flow::{Flow, FlowKind};
    let direction = state
        .get("direction")
        .map(|v| serde_json::from_value::<crate::plan::Direction>(v.clone()));
    let mode = state
        .get("mode")
        .map(|v| serde_json::from_value::<crate::plan::Mode>(v.clone()));
    let kind = if state.get("fence_only").and_then(Value::as_bool) == Some(true) {
        FlowKind::Fence
    } else {
        match (direction, mode) {
            (Some(Ok(direction)), Some(Ok(mode))) => FlowKind::of(direction, mode),
            (Some(Ok(direction)), None) => FlowKind::of(direction, crate::plan::Mode::default()),
            _ => return Vec::new(),
        }
    };
    let flow = Flow::of(kind);
    std::iter::once(Flow::preflight())
        .chain(flow.phases)
        .filter(|p| p.is_parallel())
        .flat_map(|p| {
            p.calls
                .iter()
                .map(move |c| (c.phase(), p.name))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn timeline(reports: &[StepReport], side_by_side: &[(String, &'static str)]) -> Vec<StepTimeline> {
    let mut phases: Vec<(String, Vec<&StepReport>)> = Vec::new();
    for r in reports {
        let name = phase(&r.step, r.action);
        match phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, calls)) => calls.push(r),
            None => phases.push((name, vec![r])),
        }
    }
    let mut timeline: Vec<StepTimeline> = phases
        .into_iter()
        .filter_map(|(step, calls)| {
            let latest = *calls.last()?;
            let started_at = calls.iter().map(|r| r.started_at).min()?;
            let finished_at = calls.iter().map(|r| r.finished_at).max()?;
            Some(StepTimeline {
                started_at,
                finished_at,
                seconds: secs(finished_at - started_at),
                calls: calls.len(),
                call_spans: calls
                    .iter()
                    .map(|r| CallSpan {
                        action: r.action.as_str(),
                        started_at: r.started_at,
                        finished_at: r.finished_at,
                        done: r.done,
                    })
                    .collect(),
                side_by_side: side_by_side
                    .iter()
                    .find(|(phase, _)| *phase == step)
                    .map(|(_, name)| name.to_string()),
                step,
                done: latest.done,
                message: latest.message.clone(),
                saw: latest.saw.clone(),
            })
        })
        .collect();
    timeline.sort_by_key(|t| t.started_at);
    timeline
}

pub fn build(execution: &str, state: &Value, history: &StepHistory) -> Report {
    let reports = all_reports(state, history);
    let timeline = timeline(&reports, &side_by_side_phases(state));
    let mut changes: Vec<Change> = Vec::new();
    for c in reports.iter().flat_map(|r| &r.changes) {
        if !changes.contains(c) {
            changes.push(c.clone());
        }
    }
    let in_phase = |name: &'static str| {
        reports
            .iter()
            .filter(move |r| phase(&r.step, r.action) == name)
    };
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
    let trigger = state.get("trigger").cloned().unwrap_or(Value::Null);
    let triggered_at = trigger
        .get("state_change_time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    // The dial step that completed the shift; a dry-run moved nothing, so it has no recovery time.
    let shifted = in_phase("shift-traffic")
        .filter(|r| r.done)
        .map(|r| r.finished_at)
        .max();
    let rto_seconds = match (dry_run, triggered_at, shifted) {
        (false, Some(a), Some(b)) => Some(secs(b - a)),
        _ => None,
    };
    // The lag promote-db saw before promoting: its first report that carries one.
    let mut rpo = in_phase("promote-db").find_map(|r| r.rpo_seconds);
    if text("mode") == "graceful" && rpo.is_none() {
        rpo = Some(0.0);
    }
    let promote_saw = |key: &str| {
        in_phase("promote-db")
            .filter_map(|r| r.saw.get(key).cloned())
            .find(|v| !v.is_null())
    };
    let rpo_rule = promote_saw("rpo_rule").and_then(|v| v.as_str().map(str::to_string));
    let replica_lag = promote_saw("replica_lag");
    let overrides = state
        .get("overrides")
        .and_then(|o| serde_json::from_value::<crate::step::Overrides>(o.clone()).ok())
        .unwrap_or_default()
        .granted();
    let (findings, needed) = crate::preflight::findings_in(state);
    let accepted: Vec<Value> = reports
        .iter()
        .filter(|r| r.action == crate::step::Action::Preflight)
        .filter_map(|r| {
            serde_json::from_value::<crate::preflight::PreflightSaw>(r.saw.clone()).ok()
        })
        .flat_map(|saw| saw.checks.into_iter().filter(|c| c.overridden))
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    let preflight = serde_json::json!({"findings": findings, "overrides_needed": needed, "accepted_by_override": accepted});
    let fence_only = state.get("fence_only").and_then(Value::as_bool) == Some(true);
    let fence = fence_report(
        &reports,
        state.pointer("/degraded/fence/error"),
        dry_run && !fence_only,
    );
    let error = state.get("error").cloned();
    let degraded = state
        .get("degraded")
        .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
        .cloned();
    let warnings = degraded
        .as_ref()
        .map(|d| degraded_warnings(d, &text("direction")))
        .unwrap_or_default();
    let rollback = rollback_of(state, &text("direction"));
    // Not fenced is a success with a warning, like a degraded phase: the failover is done, its aftermath is not.
    let not_fenced = fence.as_ref().is_some_and(|f| f.warning.is_some());
    let outcome = match (&error, degraded.is_some() || not_fenced) {
        (Some(_), _) => "failed",
        (None, true) => "degraded",
        (None, false) => "succeeded",
    }
    .to_string();
    let mut notes: Vec<&str> = warnings.iter().map(String::as_str).collect();
    notes.extend(rollback.as_ref().map(|r| r.message.as_str()));
    let mut summary = format!(
        "{}{} {}: {} steps, {} changes{}, RTO {}, RPO {}{}",
        if dry_run { "[DRY RUN] " } else { "" },
        if fence_only {
            "fence".to_string()
        } else {
            text("direction")
        },
        outcome,
        timeline.len(),
        changes.len(),
        if dry_run { " (none applied)" } else { "" },
        rto_seconds
            .map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "n/a".into()),
        rpo.map(|s| format!("{s:.1}s"))
            .unwrap_or_else(|| "unknown".into()),
        notes.iter().map(|n| format!("; {n}")).collect::<String>(),
    );
    match &fence {
        Some(FenceReport {
            warning: Some(w), ..
        }) => summary.push_str(&format!("; WARNING {w}")),
        Some(f) if f.outcomes.iter().all(FenceOutcome::is_fenced) => {
            summary.push_str("; side left fenced")
        }
        Some(_) if dry_run && !fence_only => summary.push_str(
            "; the side left is fenced after a real failover (nothing moved in a dry run)",
        ),
        _ => {}
    }
    Report {
        execution: execution.to_string(),
        direction: text("direction"),
        mode: text("mode"),
        dry_run,
        outcome,
        warnings,
        degraded,
        rollback,
        error,
        trigger,
        timeline,
        parallel_overlap_seconds,
        rto_seconds,
        rpo_seconds: rpo,
        rpo_rule,
        replica_lag,
        overrides,
        preflight,
        changes,
        approval: state
            .get("approval")
            .and_then(|a| a.get("decision"))
            .cloned(),
        fence,
        fence_only,
        history: history.describe(),
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
        action: &str,
        start: &str,
        end: &str,
        done: bool,
        changes: Value,
        rpo: Option<f64>,
    ) -> Value {
        json!({"step": name, "action": action, "direction": "failover", "dry_run": false,
               "started_at": start, "finished_at": end, "saw": {"seen": name}, "changes": changes,
               "done": done, "message": format!("{name} {action} ok"), "rpo_seconds": rpo})
    }

    fn dial(from: i32, to: i32) -> Value {
        json!([{"resource": "eg-dr", "field": "TrafficDialPercentage", "from": from, "to": to, "applied": true}])
    }

    fn parsed(v: &Value) -> StepReport {
        serde_json::from_value(v.clone()).unwrap()
    }

    fn names(r: &Report) -> Vec<&str> {
        r.timeline.iter().map(|t| t.step.as_str()).collect()
    }

    fn fenced(step_name: &str, status: &str) -> Value {
        let mut r = step(
            step_name,
            "fence",
            "2026-11-29T10:20:00Z",
            "2026-11-29T10:20:01Z",
            true,
            json!([]),
            None,
        );
        r["saw"] = json!({"fence": {"what": "w", "resource": step_name, "region": "ap-northeast-2",
                          "status": status, "detail": "d"}});
        r
    }

    #[test]
    fn the_report_warns_when_the_side_left_is_not_fenced() {
        let base = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false});
        let mut state = base.clone();
        state["steps"] = json!({"fence": [
            {"promote_db_fence": fenced("promote-db", "fenced")},
            {"scale_compute_fence": fenced("scale-compute", "not_fenced")},
            {"shift_traffic_fence": fenced("shift-traffic", "already_fenced")}]});
        let r = build("e", &state, &StepHistory::NotRead);
        let f = r.fence.as_ref().unwrap();
        assert_eq!(f.outcomes.len(), 3);
        let w = f.warning.as_deref().unwrap();
        assert!(
            w.contains("scale-compute") && !w.contains("promote-db"),
            "{w}"
        );
        assert!(w.contains("\"command\": \"fence\""), "{w}");
        assert_eq!(r.outcome, "degraded");
        assert!(r.summary.contains("WARNING NOT FENCED"), "{}", r.summary);

        state["steps"]["fence"][1] =
            json!({"scale_compute_fence": fenced("scale-compute", "fenced")});
        let r = build("e", &state, &StepHistory::NotRead);
        assert!(r.summary.ends_with("side left fenced"), "{}", r.summary);

        // The phase failed before any report (its Catch): said so, the run still succeeded (degraded).
        let mut failed = base.clone();
        failed["degraded"] = json!({"fence": {"phase": "fence", "error": {"Error": "Lambda.Unknown", "Cause": "crashed"}}});
        let r = build("e", &failed, &StepHistory::NotRead);
        assert!(
            r.fence
                .unwrap()
                .warning
                .unwrap()
                .contains("fence phase failed (crashed)")
        );
        assert_eq!(r.outcome, "degraded");
        assert!(
            r.warnings.is_empty(),
            "said once, by the fence report: {:?}",
            r.warnings
        );
        // A dry run of the failover: nothing moved, so the fence finds each side still serving; a rehearsal says
        // so without a NOT FENCED warning. The fence command's own dry run still warns.
        let mut rehearsal = state.clone();
        rehearsal["dry_run"] = json!(true);
        rehearsal["steps"]["fence"][1] =
            json!({"scale_compute_fence": fenced("scale-compute", "not_fenced")});
        let r = build("e", &rehearsal, &StepHistory::NotRead);
        assert_eq!(r.outcome, "succeeded", "{}", r.summary);
        assert!(r.fence.as_ref().unwrap().warning.is_none());
        assert!(
            r.summary.contains("fenced after a real failover"),
            "{}",
            r.summary
        );
        rehearsal["fence_only"] = json!(true);
        let r = build("e", &rehearsal, &StepHistory::NotRead);
        assert_eq!(r.outcome, "degraded", "{}", r.summary);
        // No fence phase (failback): nothing about fencing.
        assert!(build("e", &base, &StepHistory::NotRead).fence.is_none());
    }

    #[test]
    fn timeline_rto_rpo_and_overlap() {
        let change = json!([{"resource": "db", "field": "role", "from": "replica", "to": "writer", "applied": true}]);
        let state = json!({
            "direction": "failover", "mode": "ungraceful", "dry_run": false,
            "trigger": {"source": "alarm", "alarms": ["a"], "state_change_time": "2026-11-29T10:00:00Z", "reason": "r"},
            "recovery": [
                {"steps": {"promote_db_start": step("promote-db", "start", "2026-11-29T10:00:10Z", "2026-11-29T10:00:11Z", false, change.clone(), Some(4.0)),
                           "promote_db": step("promote-db", "status", "2026-11-29T10:00:40Z", "2026-11-29T10:00:41Z", true, json!([]), None)}},
                {"steps": {"scale_compute_start": step("scale-compute", "start", "2026-11-29T10:00:12Z", "2026-11-29T10:00:13Z", false, json!([]), None),
                           "scale_compute": step("scale-compute", "status", "2026-11-29T10:01:00Z", "2026-11-29T10:01:01Z", true, json!([]), None)}}
            ],
            "steps": {"shift_traffic": step("shift-traffic", "start", "2026-11-29T10:01:05Z", "2026-11-29T10:01:30Z", true, json!([]), None)}
        });
        let r = build("exec-1", &state, &StepHistory::NotRead);
        assert_eq!(names(&r), ["promote-db", "scale-compute", "shift-traffic"]);
        assert_eq!(r.timeline[0].seconds, 31.0);
        assert_eq!(r.timeline[0].calls, 2);
        assert_eq!(r.parallel_overlap_seconds, Some(29.0)); // 10:00:12 .. 10:00:41
        assert_eq!(r.rto_seconds, Some(90.0));
        assert_eq!(r.rpo_seconds, Some(4.0));
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.outcome, "succeeded");
        assert!(r.summary.contains("RTO 90.0s"), "{}", r.summary);
        assert!(
            r.history.starts_with("execution history not read"),
            "{}",
            r.history
        );
    }

    #[test]
    fn the_state_machine_layout_is_read_once_despite_copies() {
        // As the ungraceful path leaves it: branch outputs are the `steps` objects themselves (OutputPath $.steps),
        // and CollectRecovery copies them into $.steps as well.
        let start = step(
            "promote-db",
            "start",
            "2026-11-29T10:00:10Z",
            "2026-11-29T10:00:11Z",
            false,
            json!([]),
            Some(2.0),
        );
        let status = step(
            "promote-db",
            "status",
            "2026-11-29T10:00:40Z",
            "2026-11-29T10:00:41Z",
            true,
            json!([]),
            None,
        );
        let state = json!({
            "direction": "failover", "mode": "ungraceful", "dry_run": false,
            "recovery": [{"promote_db_start": start.clone(), "promote_db": status.clone()}, {}],
            "steps": {"promote_db_start": start.clone(), "promote_db": status},
        });
        let r = build("exec", &state, &StepHistory::Read(vec![parsed(&start)]));
        assert_eq!(names(&r), ["promote-db"]);
        assert_eq!(r.timeline[0].calls, 2, "each call once");
        assert_eq!(r.rpo_seconds, Some(2.0));
        assert_eq!(r.history, "execution history: 1 step results");
    }

    #[test]
    fn graceful_failback_with_reprotection_and_approval() {
        let change = json!([{"resource": "asg", "field": "DesiredCapacity", "from": 2, "to": 0, "applied": true}]);
        let state = json!({
            "direction": "failback", "mode": "graceful", "dry_run": false,
            "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "home"},
            "approval": {"required": true, "decision": {"approved": true, "reason": "ok"}},
            "steps": {
                "prepare_db": step("promote-db", "prepare", "2026-11-29T10:00:05Z", "2026-11-29T10:00:06Z", true, json!([]), None),
                "drain": step("shift-traffic", "drain", "2026-11-29T10:01:00Z", "2026-11-29T10:01:01Z", true, json!([]), None),
                "catchup": step("promote-db", "catchup", "2026-11-29T10:01:05Z", "2026-11-29T10:01:06Z", true, json!([]), None),
                "shift_traffic": step("shift-traffic", "start", "2026-11-29T10:02:00Z", "2026-11-29T10:02:30Z", true, json!([]), None)
            },
            "reprotect": [
                step("promote-db", "reprotect", "2026-11-29T10:03:00Z", "2026-11-29T10:03:10Z", true, json!([]), None),
                step("scale-compute", "reprotect", "2026-11-29T10:03:00Z", "2026-11-29T10:03:01Z", true, change, None)
            ]
        });
        let r = build("exec-3", &state, &StepHistory::NotRead);
        assert_eq!(
            names(&r),
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

    /// A graceful failover whose dial loop called shift-traffic `start` three times: the state keeps the last
    /// call only, the history has all three.
    fn graceful_dial_loop() -> (Value, Vec<StepReport>) {
        let calls = [
            step(
                "promote-db",
                "prepare",
                "2026-11-29T10:00:05Z",
                "2026-11-29T10:00:06Z",
                false,
                json!([]),
                None,
            ),
            step(
                "promote-db",
                "prepare",
                "2026-11-29T10:00:20Z",
                "2026-11-29T10:00:21Z",
                true,
                json!([]),
                None,
            ),
            step(
                "shift-traffic",
                "drain",
                "2026-11-29T10:01:00Z",
                "2026-11-29T10:01:01Z",
                true,
                json!([{"resource": "eg-primary", "field": "TrafficDialPercentage", "from": 100, "to": 0, "applied": true}]),
                None,
            ),
            step(
                "promote-db",
                "start",
                "2026-11-29T10:01:30Z",
                "2026-11-29T10:01:31Z",
                false,
                json!([]),
                Some(0.0),
            ),
            step(
                "promote-db",
                "status",
                "2026-11-29T10:01:50Z",
                "2026-11-29T10:01:51Z",
                true,
                json!([]),
                None,
            ),
            step(
                "shift-traffic",
                "start",
                "2026-11-29T10:02:00Z",
                "2026-11-29T10:02:01Z",
                false,
                dial(0, 25),
                None,
            ),
            step(
                "shift-traffic",
                "start",
                "2026-11-29T10:02:31Z",
                "2026-11-29T10:02:32Z",
                false,
                dial(25, 50),
                None,
            ),
            step(
                "shift-traffic",
                "start",
                "2026-11-29T10:03:02Z",
                "2026-11-29T10:03:03Z",
                true,
                dial(50, 100),
                None,
            ),
        ];
        let state = json!({
            "direction": "failover", "mode": "graceful", "dry_run": false,
            "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "drill"},
            "steps": {"prepare_db": calls[1], "drain": calls[2], "promote_db_start": calls[3], "promote_db": calls[4],
                      "shift_traffic": calls[7]}
        });
        (state, calls.iter().map(parsed).collect())
    }

    #[test]
    fn a_graceful_history_keeps_every_dial_step_and_the_loop_start() {
        let (state, history) = graceful_dial_loop();
        let r = build("exec-4", &state, &StepHistory::Read(history));
        let dials: Vec<(Value, Value)> = r
            .changes
            .iter()
            .filter(|c| c.resource == "eg-dr")
            .map(|c| (c.from.clone(), c.to.clone()))
            .collect();
        assert_eq!(
            dials,
            [
                (json!(0), json!(25)),
                (json!(25), json!(50)),
                (json!(50), json!(100))
            ]
        );
        assert_eq!(r.changes[0].resource, "eg-primary", "the drain came first");
        let shift = r
            .timeline
            .iter()
            .find(|t| t.step == "shift-traffic")
            .unwrap();
        assert_eq!(shift.started_at.to_rfc3339(), "2026-11-29T10:02:00+00:00");
        assert_eq!(shift.finished_at.to_rfc3339(), "2026-11-29T10:03:03+00:00");
        assert_eq!((shift.calls, shift.seconds, shift.done), (3, 63.0, true));
        let prepare = &r.timeline[0];
        assert_eq!(
            (prepare.step.as_str(), prepare.calls, prepare.seconds),
            ("prepare-db", 2, 16.0)
        );
        assert_eq!(
            names(&r),
            ["prepare-db", "drain", "promote-db", "shift-traffic"]
        );
        assert_eq!(r.rto_seconds, Some(183.0));
        assert_eq!(r.rpo_seconds, Some(0.0));
        assert_eq!(r.history, "execution history: 8 step results");
        assert!(r.summary.contains("4 changes"), "{}", r.summary);

        // The state alone has lost the first two dial steps and the loop's real start.
        let alone = build("exec-4", &state, &StepHistory::NotRead);
        assert_eq!(alone.changes.len(), 2);
        let shift = alone
            .timeline
            .iter()
            .find(|t| t.step == "shift-traffic")
            .unwrap();
        assert_eq!(shift.started_at.to_rfc3339(), "2026-11-29T10:03:02+00:00");
        let failed = build(
            "exec-4",
            &state,
            &StepHistory::Unavailable("AccessDenied".into()),
        );
        assert!(
            failed.history.contains("unavailable (AccessDenied)"),
            "{}",
            failed.history
        );
        assert_eq!(failed.changes, alone.changes);
    }

    #[test]
    fn reprotect_polls_are_one_phase_each() {
        let history: Vec<StepReport> = [
            step("promote-db", "reprotect", "2026-11-29T10:03:00Z", "2026-11-29T10:03:02Z", false,
                 json!([{"resource": "web-db", "field": "ReadReplicaOf", "from": null, "to": "web-db-replica", "applied": true}]), None),
            step("scale-compute", "reprotect", "2026-11-29T10:03:00Z", "2026-11-29T10:03:01Z", true,
                 json!([{"resource": "asg-dr", "field": "DesiredCapacity", "from": 2, "to": 0, "applied": true}]), None),
            step("promote-db", "reprotect", "2026-11-29T10:03:30Z", "2026-11-29T10:03:31Z", false, json!([]), None),
            step("promote-db", "reprotect", "2026-11-29T10:04:00Z", "2026-11-29T10:04:01Z", true, json!([]), None),
        ]
        .iter()
        .map(parsed)
        .collect();
        let state = json!({"direction": "failback", "mode": "graceful", "dry_run": false,
                           "reprotect": [serde_json::to_value(&history[3]).unwrap(), serde_json::to_value(&history[1]).unwrap()]});
        let r = build("exec-5", &state, &StepHistory::Read(history));
        assert_eq!(
            names(&r),
            ["reprotect-promote-db", "reprotect-scale-compute"]
        );
        let db = &r.timeline[0];
        assert_eq!((db.calls, db.seconds, db.done), (3, 61.0, true));
        assert_eq!(r.changes.len(), 2);
        assert_eq!(r.rto_seconds, None, "no traffic shift in this state");
    }

    #[test]
    fn a_dry_run_has_no_rto() {
        let mut shift = step(
            "shift-traffic",
            "start",
            "2026-11-29T10:01:05Z",
            "2026-11-29T10:01:06Z",
            true,
            dial(0, 100),
            None,
        );
        shift["dry_run"] = json!(true);
        shift["changes"][0]["applied"] = json!(false);
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": true,
                           "trigger": {"source": "manual", "alarms": [], "state_change_time": "2026-11-29T10:00:00Z", "reason": "rehearsal"},
                           "steps": {"shift_traffic": shift}});
        let r = build("exec-6", &state, &StepHistory::NotRead);
        assert_eq!(r.rto_seconds, None);
        assert_eq!(
            serde_json::to_value(&r).unwrap()["rto_seconds"],
            Value::Null
        );
        assert_eq!(r.changes.len(), 1);
        assert!(!r.changes[0].applied);
        assert!(
            r.summary.starts_with("[DRY RUN] failover succeeded"),
            "{}",
            r.summary
        );
        assert!(
            r.summary.contains("(none applied), RTO n/a"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn phases_are_named_by_step_and_action() {
        for (step, action, want) in [
            ("promote-db", Action::Prepare, "prepare-db"),
            ("promote-db", Action::Start, "promote-db"),
            ("promote-db", Action::Status, "promote-db"),
            ("promote-db", Action::CatchUp, "catchup"),
            ("shift-traffic", Action::Drain, "drain"),
            ("shift-traffic", Action::Start, "shift-traffic"),
            ("shift-traffic", Action::Status, "shift-traffic"),
            ("scale-compute", Action::Start, "scale-compute"),
            ("scale-compute", Action::Status, "scale-compute"),
            ("update-dns", Action::Start, "update-dns"),
            ("update-dns", Action::Status, "update-dns"),
            ("promote-db", Action::Reprotect, "reprotect-promote-db"),
            (
                "scale-compute",
                Action::Reprotect,
                "reprotect-scale-compute",
            ),
        ] {
            assert_eq!(phase(step, action), want, "{step} {action:?}");
        }
    }

    /// Issue #10: DNS failed after the shift: the run succeeded, but the report says degraded (never a clean
    /// success) with the error and how to finish it.
    #[test]
    fn a_degraded_dns_is_a_warned_success() {
        let cause = r#"{"errorType":"pilotlight.AwsError","errorMessage":"UpdateHealthCheck on hc-dr failed: AccessDenied: denied (HTTP 403)"}"#;
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false,
            "trigger": {"state_change_time": "2026-11-29T10:00:00Z"},
            "steps": {"shift_traffic": step("shift-traffic", "start", "2026-11-29T10:00:05Z", "2026-11-29T10:00:06Z", true, dial(0, 100), None)},
            "degraded": {"dns": {"phase": "update-dns", "error": {"Error": "pilotlight.AwsError", "Cause": cause}}}});
        let r = build("exec-7", &state, &StepHistory::NotRead);
        assert_eq!(r.outcome, "degraded");
        assert!(r.error.is_none());
        assert_eq!(r.rto_seconds, Some(6.0), "the traffic moved: RTO stands");
        assert_eq!(r.warnings.len(), 1);
        let w = &r.warnings[0];
        assert!(
            w.starts_with(
                "DNS degraded: pilotlight.AwsError: UpdateHealthCheck on hc-dr failed: AccessDenied"
            ),
            "{w}"
        );
        assert!(w.contains("re-run update-dns: invoke the update-dns function (stack output UpdateDnsFunctionArn)"), "{w}");
        assert!(
            w.contains(r#"{"action": "start", "direction": "failover"}"#),
            "{w}"
        );
        assert!(r.summary.starts_with("failover degraded:"), "{}", r.summary);
        assert!(r.summary.contains("; DNS degraded: "), "{}", r.summary);
        assert_eq!(r.degraded.as_ref().unwrap()["dns"]["phase"], "update-dns");
        // The poll limit's plain-text cause, on a failback.
        let state = json!({"direction": "failback", "degraded": {"dns": {"phase": "update-dns",
            "error": {"Error": "pilotlight.PollLimitExceeded", "Cause": "update-dns status: not done after $.timing.max_polls polls"}}}});
        let r = build("exec-8", &state, &StepHistory::NotRead);
        assert_eq!(r.outcome, "degraded");
        assert!(
            r.warnings[0].contains("PollLimitExceeded: update-dns status: not done"),
            "{}",
            r.warnings[0]
        );
        assert!(r.warnings[0].contains(r#""direction": "failback""#));
        // No $.degraded (or an empty one): a clean success, no warning.
        for state in [
            json!({"direction": "failover"}),
            json!({"direction": "failover", "degraded": {}}),
        ] {
            let r = build("exec-9", &state, &StepHistory::NotRead);
            assert_eq!((r.outcome.as_str(), r.warnings.len()), ("succeeded", 0));
            assert!(serde_json::to_value(&r).unwrap().get("warnings").is_none());
        }
    }

    /// Issue #10: a graceful failure after the drain says what happened to the traffic.
    #[test]
    fn the_rollback_is_reported() {
        let mut restore = step(
            "shift-traffic",
            "restore",
            "2026-11-29T10:02:00Z",
            "2026-11-29T10:02:01Z",
            true,
            json!([{"resource": "eg-primary", "field": "TrafficDialPercentage", "from": 0, "to": 100, "applied": true}]),
            None,
        );
        restore["saw"] = json!({"source": "primary", "restored_to": 100, "dials": {"primary": 0, "dr": 0}, "dials_after": {"primary": 100, "dr": 0}});
        let error = json!({"Error": "pilotlight.PollLimitExceeded", "Cause": "promote-db catchup: not done after $.timing.max_polls polls"});
        let state = json!({"direction": "failover", "mode": "graceful", "failed_at": "catchup", "error": error,
                           "steps": {"restore": restore}, "rollback": {"outcome": "restored"}});
        let r = build("exec-10", &state, &StepHistory::NotRead);
        assert_eq!(r.outcome, "failed");
        let rb = r.rollback.as_ref().unwrap();
        assert_eq!(
            (rb.outcome.as_str(), rb.restored_to),
            ("restored", Some(100))
        );
        assert!(
            rb.message
                .starts_with("rolled back: source dial restored to 100 (primary"),
            "{}",
            rb.message
        );
        assert!(
            r.summary
                .contains("; rolled back: source dial restored to 100"),
            "{}",
            r.summary
        );
        assert!(names(&r).contains(&"restore"), "{:?}", names(&r));
        assert_eq!(r.changes.len(), 1);

        let state = json!({"direction": "failback", "mode": "graceful", "error": error,
            "rollback": {"outcome": "failed", "error": {"Error": "pilotlight.Transient", "Cause": "UpdateEndpointGroup throttled"}}});
        let rb = build("exec-11", &state, &StepHistory::NotRead)
            .rollback
            .unwrap();
        assert_eq!((rb.outcome.as_str(), rb.restored_to), ("failed", None));
        assert!(
            rb.message.contains("both dials may be at 0"),
            "{}",
            rb.message
        );
        assert!(
            rb.message
                .contains(r#"{"action": "restore", "direction": "failback"}"#),
            "{}",
            rb.message
        );
        assert!(rb.message.contains("Restore the dr dial"), "{}", rb.message);
        assert!(
            rb.message.contains("UpdateEndpointGroup throttled"),
            "{}",
            rb.message
        );

        let state = json!({"direction": "failover", "mode": "graceful", "error": error,
                           "rollback": {"outcome": "forward-only", "why": crate::flow::FORWARD_ONLY}});
        let rb = build("exec-12", &state, &StepHistory::NotRead)
            .rollback
            .unwrap();
        assert_eq!(rb.outcome, "forward-only");
        assert!(
            rb.message
                .starts_with("forward only: no rollback: the promotion was issued"),
            "{}",
            rb.message
        );
        assert!(rb.message.contains("split the data"));
        // Failures with no rollback decision (before the drain, ungraceful) say nothing about one.
        let r = build(
            "exec-13",
            &json!({"direction": "failover", "error": error}),
            &StepHistory::NotRead,
        );
        assert!(r.rollback.is_none());
    }

    #[test]
    fn failure_and_graceful_rpo() {
        let state = json!({"direction": "failback", "mode": "graceful", "dry_run": true,
                           "error": {"Error": "pilotlight.Refused", "Cause": "replica lag"}});
        let r = build("exec-2", &state, &StepHistory::NotRead);
        assert_eq!(r.outcome, "failed");
        assert_eq!(r.rpo_seconds, Some(0.0));
        assert!(r.timeline.is_empty() && r.rto_seconds.is_none());
        assert!(r.summary.starts_with("[DRY RUN] failback failed"));
    }
}
