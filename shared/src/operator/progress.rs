//! Following an execution live (`pilotlight failover`, `follow`): its history events turned into one line per step
//! as it starts and finishes, with the time since the execution started, and the current poll state. Pure: the CLI
//! reads the history (`aws::stepfunctions::execution_events`) and feeds the new events in.
//!
//! Step Functions emulators may record no state events inside Parallel branches (ministack records only the
//! branches' task results), so a task result seen while a Parallel state runs gets a line of its own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::stepfunctions::{ExecutionEvent, step_report_in_output};

/// One line of the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressLine {
    pub at: DateTime<Utc>,
    /// Seconds since the execution started.
    pub elapsed: f64,
    pub text: String,
}

/// What has been seen of the execution so far.
#[derive(Debug, Default)]
pub struct Progress {
    started: Option<DateTime<Utc>>,
    /// Top-level states running now, with when they were entered.
    entered: HashMap<String, DateTime<Utc>>,
    /// The Parallel states running now.
    parallel: Vec<String>,
    /// How often each Wait state was entered (the poll count of its loop).
    polls: HashMap<String, usize>,
    /// The latest task result, for the line of the state it belongs to.
    result: Option<String>,
    current: Option<String>,
    /// The execution's name, for the approval hint.
    execution: String,
    finished: Option<String>,
}

impl Progress {
    pub fn new(execution: &str) -> Self {
        Progress {
            execution: execution.to_string(),
            ..Progress::default()
        }
    }

    /// The lines for `events` (the ones not fed before, oldest first).
    pub fn feed(&mut self, events: &[ExecutionEvent]) -> Vec<ProgressLine> {
        let mut out = Vec::new();
        for e in events {
            let start = *self.started.get_or_insert(e.at);
            let mut line = |text: String| {
                out.push(ProgressLine {
                    at: e.at,
                    elapsed: (e.at - start).num_milliseconds() as f64 / 1000.0,
                    text,
                })
            };
            let state = e.state.clone().unwrap_or_default();
            match e.kind.as_str() {
                "ExecutionStarted" => line("execution started".to_string()),
                "TaskStateEntered" | "ParallelStateEntered" => {
                    self.entered.insert(state.clone(), e.at);
                    if e.kind == "ParallelStateEntered" {
                        self.parallel.push(state.clone());
                    }
                    self.result = None;
                    self.current = Some(format!("running {state}"));
                    line(format!("start  {state}"));
                }
                "TaskStateExited" | "ParallelStateExited" => {
                    let took = self
                        .entered
                        .remove(&state)
                        .map(|t| {
                            format!(" ({:.1}s)", (e.at - t).num_milliseconds() as f64 / 1000.0)
                        })
                        .unwrap_or_default();
                    self.parallel.retain(|p| p != &state);
                    let result = self
                        .result
                        .take()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    self.current = None;
                    line(format!("done   {state}{took}{result}"));
                }
                "WaitStateEntered" => {
                    let n = self.polls.entry(state.clone()).or_default();
                    *n += 1;
                    self.current = Some(format!("waiting: {state} (poll {n})"));
                    line(format!("wait   {state} (poll {n})"));
                }
                "TaskScheduled"
                    if e.resource
                        .as_deref()
                        .is_some_and(|r| r.ends_with(".waitForTaskToken")) =>
                {
                    self.current = Some("waiting for an operator's approval".to_string());
                    line(format!(
                        "approval requested: answer with `pilotlight approve {0}` or `pilotlight reject {0}`",
                        self.execution
                    ));
                }
                "TaskSucceeded" | "LambdaFunctionSucceeded" => {
                    let summary = e.data.as_deref().and_then(summarize);
                    if !self.parallel.is_empty() {
                        // A branch's task: no state events of its own on every engine.
                        if let Some(s) = &summary {
                            line(format!("  branch {s}"));
                        }
                    } else {
                        self.result = summary;
                    }
                }
                "TaskFailed"
                | "TaskTimedOut"
                | "LambdaFunctionFailed"
                | "LambdaFunctionTimedOut" => {
                    line(format!(
                        "FAILED {}: {}",
                        self.current.as_deref().unwrap_or("a task"),
                        error_text(e)
                    ));
                }
                "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted"
                | "ExecutionTimedOut" => {
                    let status = e.kind.trim_start_matches("Execution").to_uppercase();
                    let error = if e.error.is_some() || e.cause.is_some() {
                        format!(": {}", error_text(e))
                    } else {
                        String::new()
                    };
                    self.current = None;
                    self.finished = Some(status.clone());
                    line(format!(
                        "execution {status} after {:.1}s{error}",
                        (e.at - start).num_milliseconds() as f64 / 1000.0
                    ));
                }
                _ => {}
            }
        }
        out
    }

    /// What the execution is doing now (the spinner's message): the state running, or the wait and its poll.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// SUCCEEDED, FAILED, ABORTED or TIMEDOUT once the history holds the execution's end.
    pub fn finished(&self) -> Option<&str> {
        self.finished.as_deref()
    }
}

/// A task result in a few words: a step report's `step action: done=… message`, notify's subject.
fn summarize(output: &str) -> Option<String> {
    if let Some(r) = step_report_in_output(output) {
        let mut message = r.message.clone();
        if message.len() > 160 {
            let cut = (0..=160)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        return Some(format!(
            "{} {}: done={} {message}",
            r.step,
            r.action.as_str(),
            r.done
        ));
    }
    let v: Value = serde_json::from_str(output).ok()?;
    let v = v.get("Payload").cloned().unwrap_or(v);
    v.get("subject")
        .and_then(Value::as_str)
        .map(|s| format!("notify: published \"{s}\""))
}

fn error_text(e: &ExecutionEvent) -> String {
    let cause = e.cause.clone().unwrap_or_default();
    // A Lambda error's cause is the function's JSON answer (errorType, errorMessage).
    let cause = serde_json::from_str::<Value>(&cause)
        .ok()
        .and_then(|c| c["errorMessage"].as_str().map(str::to_string))
        .unwrap_or(cause);
    format!("{} {cause}", e.error.as_deref().unwrap_or_default())
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(
        id: i64,
        secs: i64,
        kind: &str,
        state: Option<&str>,
        data: Option<Value>,
    ) -> ExecutionEvent {
        ExecutionEvent {
            id,
            at: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            kind: kind.to_string(),
            state: state.map(str::to_string),
            resource: None,
            data: data.map(|d| d.to_string()),
            error: None,
            cause: None,
        }
    }

    fn report(step: &str, action: &str, done: bool, message: &str) -> Value {
        json!({"step": step, "action": action, "direction": "failover", "dry_run": false,
               "started_at": "2026-11-29T10:00:00Z", "finished_at": "2026-11-29T10:00:01Z", "saw": {},
               "changes": [], "done": done, "message": message})
    }

    #[test]
    fn one_line_per_step_start_and_finish_with_elapsed_time_and_the_poll_state() {
        let mut p = Progress::new("failover-1");
        let lines = p.feed(&[
            ev(1, 0, "ExecutionStarted", None, None),
            ev(
                2,
                1,
                "TaskStateEntered",
                Some("Failover shift-traffic start"),
                None,
            ),
        ]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].text, "start  Failover shift-traffic start");
        assert_eq!(lines[1].elapsed, 1.0);
        assert_eq!(p.current(), Some("running Failover shift-traffic start"));

        let lines = p.feed(&[
            ev(
                3,
                3,
                "TaskSucceeded",
                None,
                Some(report("shift-traffic", "start", false, "dial 0 -> 50")),
            ),
            ev(
                4,
                3,
                "TaskStateExited",
                Some("Failover shift-traffic start"),
                None,
            ),
            ev(
                5,
                3,
                "WaitStateEntered",
                Some("Failover shift-traffic wait"),
                None,
            ),
            ev(
                6,
                8,
                "WaitStateEntered",
                Some("Failover shift-traffic wait"),
                None,
            ),
        ]);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "done   Failover shift-traffic start (2.0s): shift-traffic start: done=false dial 0 -> 50",
                "wait   Failover shift-traffic wait (poll 1)",
                "wait   Failover shift-traffic wait (poll 2)",
            ]
        );
        assert_eq!(
            p.current(),
            Some("waiting: Failover shift-traffic wait (poll 2)")
        );
        assert_eq!(p.finished(), None);

        let mut failed = ev(7, 10, "ExecutionFailed", None, None);
        failed.error = Some("pilotlight.Refused".into());
        failed.cause = Some(
            json!({"errorType": "pilotlight.Refused", "errorMessage": "replica lag 40 s"})
                .to_string(),
        );
        let lines = p.feed(&[failed]);
        assert_eq!(
            lines[0].text,
            "execution FAILED after 10.0s: pilotlight.Refused replica lag 40 s"
        );
        assert_eq!(p.finished(), Some("FAILED"));
        assert_eq!(p.current(), None);
    }

    #[test]
    fn branch_results_get_their_own_lines_and_an_approval_names_the_commands() {
        let mut p = Progress::new("failover-2");
        p.feed(&[
            ev(1, 0, "ExecutionStarted", None, None),
            ev(2, 0, "ParallelStateEntered", Some("Failover recover"), None),
        ]);
        let lines = p.feed(&[ev(
            3,
            2,
            "TaskSucceeded",
            None,
            Some(json!({"Payload": report("promote-db", "start", true, "promoted")})),
        )]);
        assert_eq!(
            lines[0].text,
            "  branch promote-db start: done=true promoted"
        );
        let lines = p.feed(&[ev(
            4,
            3,
            "ParallelStateExited",
            Some("Failover recover"),
            None,
        )]);
        assert_eq!(lines[0].text, "done   Failover recover (3.0s)");
        let mut asked = ev(5, 4, "TaskScheduled", None, None);
        asked.resource = Some("arn:aws:states:::lambda:invoke.waitForTaskToken".into());
        let lines = p.feed(&[asked]);
        assert!(
            lines[0].text.contains("pilotlight approve failover-2"),
            "{}",
            lines[0].text
        );
        assert_eq!(p.current(), Some("waiting for an operator's approval"));
    }
}
