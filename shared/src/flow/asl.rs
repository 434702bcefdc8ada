//! Generates the state machine (Amazon States Language) from the flow definition. The poll loop, the retry policy
//! and the catch/notify wiring are each written once here; `pilotlight statemachine` writes the result to
//! `statemachine/failover.asl.json`, and a test fails when the committed file differs.
//!
//! The output is valid JSON as committed (asl-validator and Workflow Studio open it): Lambda ARNs are
//! `${...FunctionArn}` placeholders inside strings (SAM DefinitionSubstitutions), and the approval timeout is read
//! from the execution input (`TimeoutSecondsPath`), not substituted as a bare number.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use super::{Call, FORWARD_ONLY, Flow, FlowKind, Function, OnFailure, Phase, Poll, Wait};
use crate::error::ErrorKind;
use crate::plan::{Direction, Mode};

/// The last-resort net only: every loop and the approval wait have their own, smaller bounds.
pub const EXECUTION_TIMEOUT_SECONDS: u64 = 86_400;

/// Lambda service errors where the function never ran (or its answer was lost before it was sent): a retry is
/// safe for every task, the approval request too.
const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// Lambda errors after which the function may have run (timed out, crashed, the invoke timed out on the client
/// side): retried for the idempotent step tasks only, never for the approval request (a second token).
const LAMBDA_MAY_HAVE_RUN_ERRORS: [&str; 3] = [
    "Lambda.Unknown",
    "Lambda.ClientExecutionTimeoutException",
    "Sandbox.Timedout",
];

/// DynamoDB errors of the lock release (optimized integration: `DynamoDB.<exception>`) worth another try.
const DYNAMODB_TRANSIENT_ERRORS: [&str; 4] = [
    "DynamoDB.InternalServerError",
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.ThrottlingException",
];

/// The retry budget of every task: 2 s, doubling, at most 60 s apart, full jitter (concurrent retries of one
/// throttled API spread out), 8 attempts: about 4 minutes of retries before the Catch (2+4+8+16+32+60+60+60 s at
/// most). Step tasks have no TimeoutSeconds: the function's own timeout bounds each attempt (`Sandbox.Timedout`).
const RETRY_INTERVAL_SECONDS: u32 = 2;
const RETRY_BACKOFF_RATE: u32 = 2;
const RETRY_MAX_ATTEMPTS: u32 = 8;
const RETRY_MAX_DELAY_SECONDS: u32 = 60;

/// The DefinitionSubstitutions name of the flow lock table's ARN (DynamoDB accepts a table ARN as TableName).
pub const LOCK_TABLE_PLACEHOLDER: &str = "LockTableArn";

/// A JSON value whose objects keep the order they are built in, so the generated file reads top to bottom.
enum J {
    V(Value),
    O(Vec<(String, J)>),
    A(Vec<J>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::V(v) => v.serialize(s),
            J::A(items) => items.serialize(s),
            J::O(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

fn o<const N: usize>(fields: [(&str, J); N]) -> J {
    J::O(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
fn v(value: Value) -> J {
    J::V(value)
}
fn s(text: impl Into<String>) -> J {
    J::V(Value::String(text.into()))
}

impl J {
    /// Adds a field (objects only).
    fn with(mut self, key: &str, value: J) -> J {
        if let J::O(fields) = &mut self {
            fields.push((key.to_string(), value));
        }
        self
    }
}

/// What a task may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retried {
    /// Step and notify tasks (idempotent): `pilotlight.Transient` and every Lambda error that is not the
    /// function's answer.
    Step,
    /// The approval request: only Lambda errors where notify never ran (once it ran, a retry would send a second
    /// approval request).
    Callback,
    /// The lock release (DynamoDB): throttling and internal errors.
    Lock,
}

/// The retry policy of every task, in one place: one backoff, the errors by kind of task.
fn retry(kind: Retried) -> J {
    let errors: Vec<&str> = match kind {
        Retried::Step => std::iter::once(ErrorKind::Transient.error_type())
            .chain(LAMBDA_SERVICE_ERRORS)
            .chain(LAMBDA_MAY_HAVE_RUN_ERRORS)
            .collect(),
        Retried::Callback => LAMBDA_SERVICE_ERRORS.to_vec(),
        Retried::Lock => DYNAMODB_TRANSIENT_ERRORS.to_vec(),
    };
    J::A(vec![o([
        ("ErrorEquals", v(json!(errors))),
        ("IntervalSeconds", v(json!(RETRY_INTERVAL_SECONDS))),
        ("BackoffRate", v(json!(RETRY_BACKOFF_RATE))),
        ("MaxAttempts", v(json!(RETRY_MAX_ATTEMPTS))),
        ("MaxDelaySeconds", v(json!(RETRY_MAX_DELAY_SECONDS))),
        ("JitterStrategy", s("FULL")),
    ])])
}

/// Releases the flow lock on the way to `end` (Succeeded or Failed): a Choice that skips it for dry-runs (they
/// never take it), then the conditional DeleteItem. `holder = $$.Execution.Name`: a lock taken over meanwhile is
/// not ours and stays. A failed release never changes the outcome (its Catch goes on to `end`); the lock is
/// then stale and a later detect takes it over.
fn release_states(name: &str, end: &str, out: &mut States) {
    out.add(
        format!("{name}?"),
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("Dry-runs never take the flow lock: nothing to release."),
            ),
            (
                "Choices",
                J::A(vec![o([
                    ("Variable", s("$.dry_run")),
                    ("BooleanEquals", v(json!(true))),
                    ("Next", s(end)),
                ])]),
            ),
            ("Default", s(name)),
        ]),
    );
    out.add(
        name,
        o([
            ("Type", s("Task")),
            (
                "Comment",
                s("Release the flow lock detect took for this execution (only if this execution still holds it). A failed release does not change the outcome: a later detect takes the stale lock over."),
            ),
            ("Resource", s("arn:aws:states:::dynamodb:deleteItem")),
            (
                "Parameters",
                o([
                    ("TableName", s(format!("${{{LOCK_TABLE_PLACEHOLDER}}}"))),
                    (
                        "Key",
                        o([(
                            crate::steps::detect::lock::KEY_ATTRIBUTE,
                            o([("S", s(crate::steps::detect::lock::KEY))]),
                        )]),
                    ),
                    ("ConditionExpression", s("#holder = :me")),
                    ("ExpressionAttributeNames", o([("#holder", s("holder"))])),
                    (
                        "ExpressionAttributeValues",
                        o([(":me", o([("S.$", s("$$.Execution.Name"))]))]),
                    ),
                ]),
            ),
            ("ResultPath", v(Value::Null)),
            ("Retry", retry(Retried::Lock)),
            ("Catch", catch_all("$.lock_error", end)),
            ("Next", s(end)),
        ]),
    );
}

fn catch_all(result_path: &str, next: &str) -> J {
    J::A(vec![catch("States.ALL", result_path, next)])
}

fn catch(error: &str, result_path: &str, next: &str) -> J {
    o([
        ("ErrorEquals", v(json!([error]))),
        ("ResultPath", s(result_path)),
        ("Next", s(next)),
    ])
}

fn arn(function: Function) -> J {
    s(format!("${{{}}}", function.arn_placeholder()))
}

fn boolean_choice(variable: &str, next: &str, default: &str) -> J {
    o([
        ("Type", s("Choice")),
        (
            "Choices",
            J::A(vec![o([
                ("Variable", s(variable)),
                ("BooleanEquals", v(json!(true))),
                ("Next", s(next)),
            ])]),
        ),
        ("Default", s(default)),
    ])
}

/// A notify call (milestone, failure, report) with the fields every notification carries.
fn notify_task(comment: &str, kind: &str, milestone: &str, detail: (&str, J)) -> J {
    o([
        ("Type", s("Task")),
        ("Comment", s(comment)),
        ("Resource", arn(Function::Notify)),
        (
            "Parameters",
            o([
                ("kind", s(kind)),
                ("milestone", s(milestone)),
                ("execution.$", s("$$.Execution.Id")),
                ("direction.$", s("$.direction")),
                ("dry_run.$", s("$.dry_run")),
                detail,
            ]),
        ),
    ])
}

/// A milestone notification: retried like every task, and a failure to notify never stops the flow.
fn milestone_task(comment: &str, milestone: &str, detail: (&str, J), next: &str) -> J {
    notify_task(comment, "milestone", milestone, detail)
        .with("ResultPath", v(Value::Null))
        .with("Retry", retry(Retried::Step))
        .with("Catch", catch_all("$.notify_error", next))
        .with("Next", s(next))
}

/// A milestone held back until the traffic moved ([`Flow::outage_window`]): its name and where its detail is.
struct Deferred {
    milestone: &'static str,
    /// `detail.$` of a call's report, or (for a side-by-side phase's own milestone) the branches array.
    detail: String,
    branches: bool,
}

/// How a call sends its milestone.
#[derive(Clone, Copy)]
enum Milestones<'a> {
    /// Right after the call (outside the outage window).
    Inline,
    /// Not here: the traffic phase sends it ([`Flow::outage_window`]).
    Deferred,
    /// The traffic phase: its own milestone and every deferred one, side by side, after the traffic moved.
    WithDeferred(&'a [Deferred]),
}

/// Milestone notifications side by side (the traffic phase's and the ones held back for it), each in its own
/// branch whose failure is caught there: none can fail, and none waits for another. After the traffic moved,
/// so off the critical path.
fn milestones_parallel(prefix: &str, all: &[Deferred], next: &str) -> J {
    let branches = all
        .iter()
        .map(|d| {
            let task = format!("{prefix} notify {}", d.milestone);
            let sent = format!("{task} sent");
            let detail = if d.branches {
                ("detail", o([("branches.$", s(&d.detail))]))
            } else {
                ("detail.$", s(&d.detail))
            };
            o([
                ("StartAt", s(task.clone())),
                (
                    "States",
                    o([
                        (
                            task.as_str(),
                            milestone_task(
                                &format!("Tell the operators: {}.", d.milestone),
                                d.milestone,
                                detail,
                                &sent,
                            ),
                        ),
                        (
                            sent.as_str(),
                            o([
                                ("Type", s("Pass")),
                                ("Result", o([])),
                                ("End", v(json!(true))),
                            ]),
                        ),
                    ]),
                ),
            ])
        })
        .collect();
    o([
        ("Type", s("Parallel")),
        (
            "Comment",
            s(
                "The milestones of the outage window, sent once the traffic moved (off the critical path), side by side; a failed notification never stops the flow.",
            ),
        ),
        ("Branches", J::A(branches)),
        ("ResultPath", v(Value::Null)),
        ("Catch", catch_all("$.notify_error", next)),
        ("Next", s(next)),
    ])
}

/// Where a state inside a flow goes on error: at the top level, a Catch into NotifyFailure; inside a Parallel
/// branch, nowhere (the Parallel's own Catch notifies).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Top,
    Branch,
}

struct States(Vec<(String, J)>);

impl States {
    fn add(&mut self, name: impl Into<String>, state: J) {
        self.0.push((name.into(), state));
    }
}

fn wait_path(wait: Wait) -> &'static str {
    match wait {
        Wait::Poll => "$.timing.poll_seconds",
        Wait::DialBake => "$.timing.dial_bake_seconds",
    }
}

/// A step task: the call's action with the fields every step input carries, retried by the step policy. The
/// caller adds the Catch (if any) and Next.
fn step_task(call: &Call, action: &str, result_path: &str, extra: Option<(&str, String)>) -> J {
    let mut params = o([
        ("action", s(action)),
        ("direction.$", s("$.direction")),
        ("mode.$", s("$.mode")),
        ("dry_run.$", s("$.dry_run")),
        ("overrides.$", s("$.overrides")),
    ]);
    if let Some((k, path)) = extra {
        params = params.with(&format!("{k}.$"), s(path));
    }
    o([
        ("Type", s("Task")),
        (
            "Comment",
            s(format!(
                "{} {action}: {}.",
                call.function.step_name(),
                call.what
            )),
        ),
        ("Resource", arn(call.function)),
        ("Parameters", params),
        ("ResultPath", s(result_path)),
        ("Retry", retry(Retried::Step)),
    ])
}

/// Where the errors of a top-level state go, by its phase's [`OnFailure`]; adds the states of that path and
/// returns (the Catch's ResultPath, the state it goes to). Fail, RollBack and ForwardOnly record the error in
/// `$.error` and the phase in `$.failed_at` (`<state> failed`), then go to NotifyFailure, the flow's rollback
/// (`<Flow> roll back`) or `<state> forward only` (which says why there is no rollback); Degrade records the
/// error in `$.degraded.<key>` (`<state> degraded`) and goes on to `next`: the run goes on, warned.
fn failure_path(
    prefix: &str,
    state: &str,
    phase: &str,
    on_failure: OnFailure,
    next: &str,
    out: &mut States,
) -> (String, String) {
    let then = match on_failure {
        OnFailure::Degrade(key) => {
            let path = format!("$.degraded.{key}");
            let name = format!("{state} degraded");
            out.add(
                name.clone(),
                o([
                    ("Type", s("Pass")),
                    (
                        "Comment",
                        s(format!(
                            "{phase} could not complete after the traffic moved: record it ($.degraded.{key}, read by the report and its notification) and go on; the run succeeds, warned."
                        )),
                    ),
                    (
                        "Parameters",
                        o([("phase", s(phase)), ("error.$", s(path.clone()))]),
                    ),
                    ("ResultPath", s(path.clone())),
                    ("Next", s(next)),
                ]),
            );
            return (path, name);
        }
        OnFailure::Fail => "NotifyFailure".to_string(),
        OnFailure::RollBack => rollback_entry(prefix),
        OnFailure::ForwardOnly => {
            let name = format!("{state} forward only");
            out.add(
                name.clone(),
                o([
                    ("Type", s("Pass")),
                    (
                        "Comment",
                        s("After the promotion: no rollback; the failure notice says why ($.rollback)."),
                    ),
                    (
                        "Result",
                        o([("outcome", s("forward-only")), ("why", s(FORWARD_ONLY))]),
                    ),
                    ("ResultPath", s("$.rollback")),
                    ("Next", s("NotifyFailure")),
                ]),
            );
            name
        }
    };
    failed_at(out, state, phase, &then);
    ("$.error".to_string(), format!("{state} failed"))
}

fn rollback_entry(prefix: &str) -> String {
    format!("{prefix} roll back")
}

/// A rolling-back flow's rollback ([`OnFailure::RollBack`]): shift-traffic `restore` puts the source dial back
/// (`$.steps.restore`), `$.rollback.outcome` says `restored` or `failed` (with the error), then NotifyFailure.
/// A failed restore never hides the original error (`$.error` stays).
fn rollback_states(prefix: &str, out: &mut States) {
    let call = Flow::rollback();
    let name = rollback_entry(prefix);
    let done = format!("{prefix} rolled back");
    let failed = format!("{prefix} roll back failed");
    out.add(
        name,
        step_task(&call, call.action.as_str(), "$.steps.restore", None)
            .with("Catch", catch_all("$.rollback.error", &failed))
            .with("Next", s(done.clone())),
    );
    out.add(
        done,
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s("The source dial is back: the old writer serves again; notify the failure, saying so."),
            ),
            ("Result", o([("outcome", s("restored"))])),
            ("ResultPath", s("$.rollback")),
            ("Next", s("NotifyFailure")),
        ]),
    );
    out.add(
        failed,
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s("The restore failed too: the notice says the dials may be at 0 and what to do."),
            ),
            (
                "Parameters",
                o([("outcome", s("failed")), ("error.$", s("$.rollback.error"))]),
            ),
            ("ResultPath", s("$.rollback")),
            ("Next", s("NotifyFailure")),
        ]),
    );
}

/// The states of one call, entered at the first one returned by [`call_entry`]; they go to `next` when done. At
/// the top level, errors and the poll limit take the phase's `on_failure` path; inside a branch they end the
/// branch (the Parallel's Catch takes it).
#[allow(clippy::too_many_arguments)]
fn call_states(
    prefix: &str,
    call: &Call,
    scope: Scope,
    on_failure: OnFailure,
    milestones: Milestones,
    next: &str,
    out: &mut States,
) {
    let step = call.function.step_name();
    let key = call.result_key();
    let base = format!("{prefix} {}", call.phase());
    let polls = format!("$.polls.{key}");
    let result = format!("$.steps.{key}");
    let milestone = match milestones {
        Milestones::Deferred => None,
        _ => call.milestone,
    };
    let after = match milestone {
        Some(_) => format!("{base} notify"),
        None => next.to_string(),
    };
    let milestone_state = |out: &mut States, after: String| {
        let Some(milestone) = milestone else {
            return;
        };
        match milestones {
            Milestones::WithDeferred(deferred) if !deferred.is_empty() => {
                let mut all: Vec<Deferred> = deferred
                    .iter()
                    .map(|d| Deferred {
                        milestone: d.milestone,
                        detail: d.detail.clone(),
                        branches: d.branches,
                    })
                    .collect();
                all.push(Deferred {
                    milestone,
                    detail: result.clone(),
                    branches: false,
                });
                out.add(after, milestones_parallel(prefix, &all, next));
            }
            _ => out.add(
                after,
                milestone_task(
                    &format!("Tell the operators: {milestone}."),
                    milestone,
                    ("detail.$", s(&result)),
                    next,
                ),
            ),
        }
    };
    let failure = match scope {
        Scope::Top => Some(failure_path(
            prefix,
            &base,
            &call.phase(),
            on_failure,
            next,
            out,
        )),
        Scope::Branch => None,
    };
    let task = |action: &str, result_path: &str, next: &str, extra: Option<(&str, String)>| {
        let state = step_task(call, action, result_path, extra);
        let state = match &failure {
            Some((path, target)) => state.with("Catch", catch_all(path, target)),
            None => state,
        };
        state.with("Next", s(next))
    };

    if call.poll == Poll::Once {
        out.add(
            base.clone(),
            task(call.action.as_str(), &result, &after, None),
        );
        milestone_state(out, after);
        return;
    }
    if let Some(mode) = call.skip_in_mode {
        let mode = serde_json::to_value(mode).unwrap_or(Value::Null);
        out.add(
            format!("{base} needed?"),
            o([
                ("Type", s("Choice")),
                (
                    "Comment",
                    s(format!("Skipped when the run's mode is {mode}.")),
                ),
                (
                    "Choices",
                    J::A(vec![o([
                        ("Variable", s("$.mode")),
                        ("StringEquals", v(mode)),
                        ("Next", s(next)),
                    ])]),
                ),
                ("Default", s(format!("{base} init"))),
            ]),
        );
    }
    out.add(
        format!("{base} init"),
        o([
            ("Type", s("Pass")),
            ("Comment", s(format!("Start the {key} poll counter at 0."))),
            ("Result", o([("count", v(json!(0)))])),
            ("ResultPath", s(polls.clone())),
        ])
        .with("Next", s(format!("{base} {}", first_action(call)))),
    );

    let (action_name, wait) = match call.poll {
        Poll::StartThenStatus | Poll::Once => ("status".to_string(), Wait::Poll),
        Poll::Repeat(wait) => (call.action.as_str().to_string(), wait),
    };
    // The looping call: `status` (after `start`) or the action itself.
    let looping = format!("{base} {action_name}");
    if call.poll == Poll::StartThenStatus {
        let start_key = format!("{key}_start");
        let start_result = format!("$.steps.{start_key}");
        out.add(
            format!("{base} start"),
            task("start", &start_result, &format!("{base} started?"), None),
        );
        out.add(
            format!("{base} started?"),
            boolean_choice(
                &format!("{start_result}.done"),
                &format!("{base} done at start"),
                &format!("{base} wait"),
            ),
        );
        out.add(
            format!("{base} done at start"),
            o([
                ("Type", s("Pass")),
                (
                    "Comment",
                    s(format!(
                        "start finished {step}: its report is the final one."
                    )),
                ),
                ("InputPath", s(start_result.clone())),
                ("ResultPath", s(result.clone())),
                ("Next", s(after.clone())),
            ]),
        );
        out.add(
            format!("{base} wait"),
            o([
                ("Type", s("Wait")),
                ("SecondsPath", s(wait_path(wait))),
                ("Next", s(looping.clone())),
            ]),
        );
        let extra = call
            .status_reads_start
            .map(|(k, path)| (k, format!("{start_result}.{path}")));
        out.add(
            looping.clone(),
            task("status", &result, &format!("{base} done?"), extra),
        );
    } else {
        let extra = call.reads_state.map(|(k, path)| (k, path.to_string()));
        out.add(
            looping.clone(),
            task(
                call.action.as_str(),
                &result,
                &format!("{base} done?"),
                extra,
            ),
        );
    }
    out.add(
        format!("{base} done?"),
        boolean_choice(&format!("{result}.done"), &after, &format!("{base} count")),
    );
    out.add(
        format!("{base} count"),
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s("Count the calls so the loop is bounded by $.timing.max_polls."),
            ),
            (
                "Parameters",
                o([("count.$", s(format!("States.MathAdd({polls}.count, 1)")))]),
            ),
            ("ResultPath", s(polls.clone())),
            ("Next", s(format!("{base} budget"))),
        ]),
    );
    let limit = format!("{base} poll limit");
    out.add(
        format!("{base} budget"),
        o([
            ("Type", s("Choice")),
            (
                "Choices",
                J::A(vec![o([
                    ("Variable", s(format!("{polls}.count"))),
                    ("NumericGreaterThanPath", s("$.timing.max_polls")),
                    ("Next", s(limit.clone())),
                ])]),
            ),
            ("Default", s(format!("{base} soon?"))),
        ]),
    );
    // Adaptive polling: a step that saw its change near completion (an instance rebooting at the end of a
    // promotion, instances InService waiting for their health checks) says when to look again
    // (`next_poll_seconds`); used only when it is at least 1 s and shorter than the plan's interval, which stays the
    // bound (docs/statemachine.md "Adaptive polling").
    let hint = format!("{result}.next_poll_seconds");
    out.add(
        format!("{base} soon?"),
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("The step's hint (next_poll_seconds) when it is shorter than the plan's interval, else the interval."),
            ),
            (
                "Choices",
                J::A(vec![o([
                    (
                        "And",
                        J::A(vec![
                            o([("Variable", s(&hint)), ("IsPresent", v(json!(true)))]),
                            o([("Variable", s(&hint)), ("IsNumeric", v(json!(true)))]),
                            o([
                                ("Variable", s(&hint)),
                                ("NumericGreaterThanEquals", v(json!(1))),
                            ]),
                            o([
                                ("Variable", s(&hint)),
                                ("NumericLessThanPath", s(wait_path(wait))),
                            ]),
                        ]),
                    ),
                    ("Next", s(format!("{base} wait soon"))),
                ])]),
            ),
            ("Default", s(format!("{base} wait"))),
        ]),
    );
    out.add(
        format!("{base} wait soon"),
        o([
            ("Type", s("Wait")),
            ("SecondsPath", s(&hint)),
            ("Next", s(looping.clone())),
        ]),
    );
    if let Poll::Repeat(wait) = call.poll {
        out.add(
            format!("{base} wait"),
            o([
                ("Type", s("Wait")),
                ("SecondsPath", s(wait_path(wait))),
                ("Next", s(looping.clone())),
            ]),
        );
    }
    let cause = format!("{step} {action_name}: not done after $.timing.max_polls polls");
    let error = ErrorKind::PollLimitExceeded.error_type();
    out.add(
        limit,
        match &failure {
            Some((path, target)) => o([
                ("Type", s("Pass")),
                (
                    "Comment",
                    s("Record the error like a Catch would, then take the phase's failure path."),
                ),
                ("Result", o([("Error", s(error)), ("Cause", s(cause))])),
                ("ResultPath", s(path)),
                ("Next", s(target)),
            ]),
            None => o([
                ("Type", s("Fail")),
                (
                    "Comment",
                    s("Stop this branch; the Parallel's Catch notifies."),
                ),
                ("Error", s(error)),
                ("Cause", s(cause)),
            ]),
        },
    );
    milestone_state(out, after);
}

/// `<state> failed`: records which phase failed (`$.failed_at`) on the way to NotifyFailure (through a rollback
/// or the forward-only note, `then`), so the operators' failure notice names it.
fn failed_at(out: &mut States, state: &str, phase: &str, then: &str) {
    out.add(
        format!("{state} failed"),
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s(format!("{phase} failed: say so in the failure notice.")),
            ),
            ("Result", s(phase)),
            ("ResultPath", s("$.failed_at")),
            ("Next", s(then)),
        ]),
    );
}

fn first_action(call: &Call) -> String {
    match call.poll {
        Poll::StartThenStatus | Poll::Once => "start".to_string(),
        Poll::Repeat(_) => call.action.as_str().to_string(),
    }
}

/// The first state of a call.
fn call_entry(prefix: &str, call: &Call) -> String {
    let base = format!("{prefix} {}", call.phase());
    match (call.poll, call.skip_in_mode) {
        (Poll::Once, _) => base,
        (_, Some(_)) => format!("{base} needed?"),
        (_, None) => format!("{base} init"),
    }
}

fn phase_entry(prefix: &str, phase: &Phase) -> String {
    if phase.is_parallel() {
        format!("{prefix} {}", phase.name)
    } else {
        call_entry(prefix, &phase.calls[0])
    }
}

fn phase_states(prefix: &str, phase: &Phase, milestones: Milestones, next: &str, out: &mut States) {
    phase_states_at(
        prefix,
        phase,
        &format!("$.steps.{}", phase.name),
        milestones,
        next,
        out,
    )
}

/// The milestones of a phase in the outage window, for the traffic phase to send ([`Flow::outage_window`]).
fn deferred_of(phase: &Phase) -> Vec<Deferred> {
    let mut out = Vec::new();
    for (i, call) in phase.calls.iter().enumerate() {
        if let Some(milestone) = call.milestone {
            let detail = if phase.is_parallel() {
                format!("$.steps.{}[{i}].{}", phase.name, call.result_key())
            } else {
                format!("$.steps.{}", call.result_key())
            };
            out.push(Deferred {
                milestone,
                detail,
                branches: false,
            });
        }
    }
    if let (Some(milestone), true) = (phase.milestone, phase.is_parallel()) {
        out.push(Deferred {
            milestone,
            detail: format!("$.steps.{}", phase.name),
            branches: true,
        });
    }
    out
}

fn phase_states_at(
    prefix: &str,
    phase: &Phase,
    result: &str,
    milestones: Milestones,
    next: &str,
    out: &mut States,
) {
    if !phase.is_parallel() {
        call_states(
            prefix,
            &phase.calls[0],
            Scope::Top,
            phase.on_failure,
            milestones,
            next,
            out,
        );
        return;
    }
    let name = phase_entry(prefix, phase);
    let result = result.to_string();
    // A side-by-side phase in the outage window defers its own milestone and its calls' too.
    let inner = match milestones {
        Milestones::Deferred => Milestones::Deferred,
        _ => Milestones::Inline,
    };
    let phase_milestone = match milestones {
        Milestones::Deferred => None,
        _ => phase.milestone,
    };
    let after = match phase_milestone {
        Some(_) => format!("{name} notify"),
        None => next.to_string(),
    };
    let branches = phase
        .calls
        .iter()
        .map(|call| {
            let key = call.result_key();
            let done = format!("{prefix} {} branch done", call.phase());
            let mut states = States(Vec::new());
            call_states(
                prefix,
                call,
                Scope::Branch,
                phase.on_failure,
                inner,
                &done,
                &mut states,
            );
            // The branch's output is its own reports only (its input is the whole execution state).
            let mut keep = vec![(format!("{key}.$"), s(format!("$.steps.{key}")))];
            if call.poll == Poll::StartThenStatus {
                keep.insert(
                    0,
                    (format!("{key}_start.$"), s(format!("$.steps.{key}_start"))),
                );
            }
            states.add(
                done,
                o([
                    ("Type", s("Pass")),
                    ("Comment", s("Branch output: this branch's step reports.")),
                    ("Parameters", J::O(keep)),
                    ("End", v(json!(true))),
                ]),
            );
            o([
                ("StartAt", s(call_entry(prefix, call))),
                ("States", J::O(states.0)),
            ])
        })
        .collect();
    let steps: Vec<String> = phase.calls.iter().map(|c| c.phase()).collect();
    let (error_path, on_error) = failure_path(
        prefix,
        &name,
        &format!("{} ({})", phase.name, steps.join(" | ")),
        phase.on_failure,
        next,
        out,
    );
    out.add(
        name.clone(),
        o([
            ("Type", s("Parallel")),
            (
                "Comment",
                s(format!(
                    "{}: independent, so side by side.",
                    phase.what.unwrap_or(phase.name)
                )),
            ),
            ("Branches", J::A(branches)),
            ("ResultPath", s(result.clone())),
            ("Catch", catch_all(&error_path, &on_error)),
            ("Next", s(after.clone())),
        ]),
    );
    if let Some(milestone) = phase_milestone {
        out.add(
            after,
            // A Parallel's result is an array (one report per branch); notify's detail is an object.
            milestone_task(
                &format!("Tell the operators: {milestone}."),
                milestone,
                ("detail", o([("branches.$", s(result))])),
                next,
            ),
        );
    }
}

fn flow_states(flow: &Flow, out: &mut States) {
    let prefix = flow.kind.name();
    let window = flow.outage_window();
    let deferred: Vec<Deferred> = flow.phases[window.clone()]
        .iter()
        .flat_map(deferred_of)
        .collect();
    for (i, phase) in flow.phases.iter().enumerate() {
        let next = match flow.phases.get(i + 1) {
            Some(p) => phase_entry(prefix, p),
            None => "Report".to_string(),
        };
        let milestones = if window.contains(&i) {
            Milestones::Deferred
        } else if i == window.end && !window.is_empty() {
            Milestones::WithDeferred(&deferred)
        } else {
            Milestones::Inline
        };
        phase_states(prefix, phase, milestones, &next, out);
    }
    if flow.rolls_back() {
        rollback_states(prefix, out);
    }
}

/// The preflight (as `Check`, before the approval gate) or its recheck after an approval (`Recheck`, with the
/// overrides the answer added): the side-by-side read-only calls, then a Choice on every report's `saw.passed`.
/// Returns the name of the Parallel state.
fn preflight_states(
    prefix: &str,
    key: &str,
    passed: &str,
    findings: &str,
    out: &mut States,
) -> String {
    let phase = Flow::preflight();
    let verdict = format!("{prefix} passed?");
    phase_states_at(
        prefix,
        &phase,
        &format!("$.steps.{key}"),
        Milestones::Inline,
        &verdict,
        out,
    );
    let failed: Vec<J> = phase
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            o([
                (
                    "Variable",
                    s(format!(
                        "$.steps.{key}[{i}].{}.saw.passed",
                        call.result_key()
                    )),
                ),
                ("BooleanEquals", v(json!(false))),
            ])
        })
        .collect();
    out.add(
        verdict,
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("Any failed check (saw.passed false) is a finding: nothing has been changed yet."),
            ),
            (
                "Choices",
                J::A(vec![o([("Or", J::A(failed)), ("Next", s(findings))])]),
            ),
            ("Default", s(passed)),
        ]),
    );
    phase_entry(prefix, &phase)
}

/// The `Check preflight` branch that tells the operators the run started (detail: the execution input). Its
/// output is `{}` (the preflight's verdict reads the other branches by index, and `$.steps.preflight` stays the
/// step reports).
fn started_branch() -> J {
    o([
        ("StartAt", s("NotifyStarted")),
        (
            "States",
            o([
                (
                    "NotifyStarted",
                    milestone_task(
                        "Tell the operators a run started (detail: the execution input, with its trigger); beside the preflight, so off the critical path.",
                        "started",
                        ("detail.$", s("$")),
                        "NotifyStarted sent",
                    ),
                ),
                (
                    "NotifyStarted sent",
                    o([
                        ("Type", s("Pass")),
                        ("Result", o([])),
                        ("End", v(json!(true))),
                    ]),
                ),
            ]),
        ),
    ])
}

/// Appends a branch to the Parallel state `name` (after the generated ones: their indexes stay).
fn add_branch(states: &mut States, name: &str, branch: J) {
    for (n, state) in states.0.iter_mut() {
        if n != name {
            continue;
        }
        if let J::O(fields) = state {
            for (k, value) in fields.iter_mut() {
                if let (true, J::A(branches)) = (k == "Branches", value) {
                    branches.push(branch);
                    return;
                }
            }
        }
    }
    debug_assert!(false, "no Parallel state {name}");
}

/// Records an error like a Catch would, then NotifyFailure.
fn error_pass(comment: &str, error: &str, cause: &str) -> J {
    o([
        ("Type", s("Pass")),
        ("Comment", s(comment)),
        ("Result", o([("Error", s(error)), ("Cause", s(cause))])),
        ("ResultPath", s("$.error")),
        ("Next", s("NotifyFailure")),
    ])
}

fn stop_state(comment: &str, cause: &str) -> J {
    error_pass(comment, ErrorKind::PreflightFindings.error_type(), cause)
}

/// The choice between the flows, generated from [`FlowKind::of`]: every (direction, mode) pair maps to the flow
/// the rule names, most specific first.
fn choose_flow() -> J {
    let default = FlowKind::of(Direction::default(), Mode::default());
    let entry = |kind: FlowKind| phase_entry(kind.name(), &Flow::of(kind).phases[0]);
    let is =
        |variable: &str, value: Value| o([("Variable", s(variable)), ("StringEquals", v(value))]);
    let mut choices = Vec::new();
    for direction in [Direction::Failback, Direction::Failover] {
        let direction_value = serde_json::to_value(direction).unwrap_or(Value::Null);
        let by_mode = [Mode::Graceful, Mode::Ungraceful].map(|m| (m, FlowKind::of(direction, m)));
        if by_mode[0].1 == by_mode[1].1 {
            if by_mode[0].1 != default {
                choices
                    .push(is("$.direction", direction_value).with("Next", s(entry(by_mode[0].1))));
            }
            continue;
        }
        for (mode, kind) in by_mode.into_iter().filter(|(_, k)| *k != default) {
            let mode_value = serde_json::to_value(mode).unwrap_or(Value::Null);
            choices.push(o([
                (
                    "And",
                    J::A(vec![
                        is("$.direction", direction_value.clone()),
                        is("$.mode", mode_value),
                    ]),
                ),
                ("Next", s(entry(kind))),
            ]));
        }
    }
    o([
        ("Type", s("Choice")),
        (
            "Comment",
            s(
                "The flow rule (flow::FlowKind::of): every failback takes the failback flow, a graceful failover the graceful flow, anything else the ungraceful failover.",
            ),
        ),
        ("Choices", J::A(choices)),
        ("Default", s(entry(default))),
    ])
}

/// RequestApproval when `flag` is true and the run is not a dry-run (rehearsals never wait), else `otherwise`.
fn pause_choice(comment: &str, flag: &str, otherwise: &str) -> J {
    o([
        ("Type", s("Choice")),
        ("Comment", s(comment)),
        (
            "Choices",
            J::A(vec![o([
                (
                    "And",
                    J::A(vec![
                        o([("Variable", s(flag)), ("BooleanEquals", v(json!(true)))]),
                        o([
                            ("Variable", s("$.dry_run")),
                            ("BooleanEquals", v(json!(false))),
                        ]),
                    ]),
                ),
                ("Next", s("RequestApproval")),
            ])]),
        ),
        ("Default", s(otherwise)),
    ])
}

fn approval_states(out: &mut States) {
    out.add(
        "ApprovalRequired",
        pause_choice(
            "Approval gate, before the first mutating step: only when the input asks for it; rehearsals never wait.",
            "$.approval.required",
            "ChooseFlow",
        ),
    );
    let rejected = ErrorKind::Rejected.error_type();
    out.add(
        "RequestApproval",
        o([
            ("Type", s("Task")),
            (
                "Comment",
                s("notify publishes what will happen and how to answer, then the execution waits for detect's approve (SendTaskSuccess) or reject (SendTaskFailure), at most $.timing.approval_timeout_seconds. A timeout or a rejection is an answer, not a fault: neither is retried."),
            ),
            ("Resource", s("arn:aws:states:::lambda:invoke.waitForTaskToken")),
            (
                "Parameters",
                o([
                    ("FunctionName", arn(Function::Notify)),
                    (
                        "Payload",
                        o([
                            ("kind", s("approval")),
                            ("milestone", s("approval requested")),
                            ("execution.$", s("$$.Execution.Id")),
                            ("direction.$", s("$.direction")),
                            ("dry_run.$", s("$.dry_run")),
                            ("detail", o([("task_token.$", s("$$.Task.Token")), ("input.$", s("$"))])),
                        ]),
                    ),
                ]),
            ),
            ("TimeoutSecondsPath", s("$.timing.approval_timeout_seconds")),
            ("ResultPath", s("$.approval.decision")),
            ("Retry", retry(Retried::Callback)),
            (
                "Catch",
                J::A(vec![
                    catch("States.Timeout", "$.error", "ApprovalTimedOut"),
                    catch(rejected, "$.error", "ApprovalRejected"),
                    catch("States.ALL", "$.error", "NotifyFailure"),
                ]),
            ),
            ("Next", s("ApprovalGranted")),
        ]),
    );
    out.add(
        "ApprovalGranted",
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("Fail closed: only an answer that says \"approved\": true goes on (presence first: comparing a missing field is a runtime error)."),
            ),
            (
                "Choices",
                J::A(vec![
                    o([
                        ("Not", o([("Variable", s("$.approval.decision.approved")), ("IsPresent", v(json!(true)))])),
                        ("Next", s("ApprovalNotGranted")),
                    ]),
                    o([
                        ("Variable", s("$.approval.decision.approved")),
                        ("BooleanEquals", v(json!(true))),
                        ("Next", s("ApprovedOverrides?")),
                    ]),
                ]),
            ),
            ("Default", s("ApprovalNotGranted")),
        ]),
    );
    out.add(
        "ApprovedOverrides?",
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("An approve answer may name overrides (detect sends only those turned on): add them to the execution's."),
            ),
            (
                "Choices",
                J::A(vec![o([
                    ("Variable", s("$.approval.decision.overrides")),
                    ("IsPresent", v(json!(true))),
                    ("Next", s("MergeApprovedOverrides")),
                ])]),
            ),
            ("Default", s("Recheck preflight")),
        ]),
    );
    out.add(
        "MergeApprovedOverrides",
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s("The execution's overrides plus the answer's (a shallow merge: the answer only adds true ones)."),
            ),
            (
                "Parameters",
                o([(
                    "overrides.$",
                    s("States.JsonMerge($.overrides, $.approval.decision.overrides, false)"),
                )]),
            ),
            ("ResultPath", s("$.approval.merged")),
            ("Next", s("ApplyApprovedOverrides")),
        ]),
    );
    out.add(
        "ApplyApprovedOverrides",
        o([
            ("Type", s("Pass")),
            ("Comment", s("Every later step reads $.overrides.")),
            ("InputPath", s("$.approval.merged.overrides")),
            ("ResultPath", s("$.overrides")),
            ("Next", s("Recheck preflight")),
        ]),
    );
    let recheck = preflight_states("Recheck", "recheck", "ChooseFlow", "RecheckStopped", out);
    debug_assert_eq!(recheck, "Recheck preflight");
    out.add(
        "RecheckStopped",
        stop_state(
            "After the answer the preflight still has findings (the answer did not name their overrides, or the world changed): stop, nothing was changed.",
            "preflight findings remain after the approval: approve again with the overrides the findings name (a new run), or fix what they report; nothing was changed",
        ),
    );
    out.add(
        "ApprovalTimedOut",
        error_pass(
            "Nobody answered in time: nothing was changed; notify and fail.",
            ErrorKind::ApprovalTimeout.error_type(),
            "no answer within the approval timeout",
        ),
    );
    out.add(
        "ApprovalRejected",
        o([
            ("Type", s("Pass")),
            (
                "Comment",
                s("An operator rejected: the Catch put {Error, Cause} in $.error; nothing was changed; notify and fail."),
            ),
            ("Next", s("NotifyFailure")),
        ]),
    );
    out.add(
        "ApprovalNotGranted",
        error_pass(
            "The answer did not say \"approved\": true: treat it as a rejection.",
            rejected,
            "the approval answer did not say \"approved\": true",
        ),
    );
}

/// The whole state machine definition.
fn definition() -> J {
    let mut states = States(Vec::new());
    let fence_entry = phase_entry(FlowKind::Fence.name(), &Flow::of(FlowKind::Fence).phases[0]);
    states.add(
        "FenceOnly?",
        o([
            ("Type", s("Choice")),
            (
                "Comment",
                s("A fence command's run ($.fence_only, absent on every other run) only fences the side a failover left: no preflight, no approval (it never touches the side that serves)."),
            ),
            (
                "Choices",
                J::A(vec![o([
                    (
                        "And",
                        J::A(vec![
                            o([("Variable", s("$.fence_only")), ("IsPresent", v(json!(true)))]),
                            o([("Variable", s("$.fence_only")), ("BooleanEquals", v(json!(true)))]),
                        ]),
                    ),
                    ("Next", s("Fence notify started")),
                ])]),
            ),
            ("Default", s("Check preflight")),
        ]),
    );
    // The fence run moves no traffic: its started notice goes first.
    states.add(
        "Fence notify started",
        milestone_task(
            "Tell the operators a fence run started (detail: the execution input).",
            "started",
            ("detail.$", s("$")),
            &fence_entry,
        ),
    );
    let entry = preflight_states(
        "Check",
        "preflight",
        "ApprovalRequired",
        "PreflightFindings",
        &mut states,
    );
    // Every other run tells the operators it started beside its preflight, not before it: the notice is off the
    // critical path, and its failure is caught inside its branch (docs/statemachine.md "Critical path").
    add_branch(&mut states, &entry, started_branch());
    debug_assert_eq!(entry, "Check preflight");
    states.add(
        "PreflightFindings",
        pause_choice(
            "Findings: pause for approval with them ($.approval.pause_on_findings: PILOTLIGHT_APPROVAL required or on-findings), or stop with a report (none, and every dry-run). Nothing has been changed.",
            "$.approval.pause_on_findings",
            "PreflightStopped",
        ),
    );
    states.add(
        "PreflightStopped",
        stop_state(
            "Findings and no pause (PILOTLIGHT_APPROVAL=none, or a dry-run): stop before changing anything; the failure notice carries the findings.",
            "preflight findings and no approval to pause for (PILOTLIGHT_APPROVAL=none, or a dry-run): nothing was changed; see the preflight reports",
        ),
    );
    approval_states(&mut states);
    states.add("ChooseFlow", choose_flow());
    for kind in FlowKind::ALL {
        flow_states(&Flow::of(kind), &mut states);
    }
    states.add(
        "Report",
        notify_task(
            "Build and publish the final report (timeline, RTO, RPO); its output is the execution output.",
            "report",
            "report",
            ("detail.$", s("$")),
        )
        .with("ResultPath", s("$"))
        .with("Retry", retry(Retried::Step))
        .with("Catch", catch_all("$.report_error", "ReleaseLock?"))
        .with("Next", s("ReleaseLock?")),
    );
    release_states("ReleaseLock", "Succeeded", &mut states);
    states.add("Succeeded", o([("Type", s("Succeed"))]));
    states.add(
        "NotifyFailure",
        notify_task(
            "Tell the operators what failed ($.error) and how far the run got (detail: the whole state).",
            "failure",
            "failed",
            ("detail.$", s("$")),
        )
        .with("ResultPath", v(Value::Null))
        .with("Retry", retry(Retried::Step))
        .with("Catch", catch_all("$.notify_error", "ReleaseLockOnFailure?"))
        .with("Next", s("ReleaseLockOnFailure?")),
    );
    release_states("ReleaseLockOnFailure", "Failed", &mut states);
    states.add(
        "Failed",
        o([
            ("Type", s("Fail")),
            (
                "Comment",
                s("The run failed; NotifyFailure told the operators why."),
            ),
        ]),
    );
    o([
        (
            "Comment",
            s(
                "pilotlight failover/failback, generated by `pilotlight statemachine` from shared/src/flow.rs: edit the flow there, not this file. Input: docs/contract.md 'State machine input'. Every loop is bounded by $.timing.max_polls, the approval wait by $.timing.approval_timeout_seconds; each ends in NotifyFailure. TimeoutSeconds is a last-resort net above both.",
            ),
        ),
        ("StartAt", s("FenceOnly?")),
        ("TimeoutSeconds", v(json!(EXECUTION_TIMEOUT_SECONDS))),
        ("States", J::O(states.0)),
    ])
}

/// The generated definition as committed: pretty JSON with a final newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&definition()).unwrap_or_default();
    text.push('\n');
    text
}

/// The generated definition as a JSON value (for checks).
pub fn definition_value() -> Value {
    serde_json::from_str(&render()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    fn all_states(v: &Value, out: &mut Vec<(String, Value)>) {
        if let Some(states) = v.get("States").and_then(Value::as_object) {
            for (name, state) in states {
                out.push((name.clone(), state.clone()));
                for b in state
                    .get("Branches")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    all_states(b, out);
                }
            }
        }
    }

    /// Issue #10 fencing: both failovers end with the fence Parallel, whose failure goes on to the report (never
    /// NotifyFailure); a fence command's run ($.fence_only) goes straight to it, skipping preflight and approval.
    #[test]
    fn the_fence_is_best_effort_and_the_fence_run_skips_the_preflight() {
        let def = definition_value();
        let st = &def["States"];
        for prefix in ["Failover", "Graceful", "Fence"] {
            let fence = &st[format!("{prefix} fence")];
            assert_eq!(fence["Type"], "Parallel", "{prefix}");
            assert_eq!(fence["ResultPath"], "$.steps.fence");
            assert_eq!(fence["Next"], "Report");
            let catch = &fence["Catch"][0];
            assert_eq!(catch["ResultPath"], "$.degraded.fence");
            let degraded = format!("{prefix} fence degraded");
            assert_eq!(catch["Next"], degraded);
            assert_eq!(
                st[&degraded]["Next"], "Report",
                "{prefix}: a fence failure never fails the run"
            );
            assert!(st.get(format!("{prefix} fence failed")).is_none());
            let actions: Vec<&str> = fence["Branches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    b["States"][b["StartAt"].as_str().unwrap()]["Parameters"]["action"]
                        .as_str()
                        .unwrap()
                })
                .collect();
            assert_eq!(actions, ["fence", "fence", "fence"]);
        }
        assert_eq!(st["Failover update-dns notify"]["Next"], "Failover fence");
        let choice = &st["FenceOnly?"]["Choices"][0];
        assert_eq!(choice["Next"], "Fence notify started");
        assert_eq!(st["Fence notify started"]["Next"], "Fence fence");
        assert_eq!(choice["And"][0]["IsPresent"], true);
        assert!(
            !serde_json::to_string(&st["Failback reprotect"])
                .unwrap()
                .contains("\"fence\"")
        );
    }

    /// The critical path holds only what moves traffic: no notification between the trigger and the shift in an
    /// ungraceful failover, nor between the drain and the shift in a graceful one; the held-back milestones go out
    /// side by side once the traffic moved, each caught in its own branch.
    #[test]
    fn notifications_stay_off_the_critical_path() {
        let def = definition_value();
        let st = &def["States"];
        let notifies = |v: &Value| {
            serde_json::to_string(v)
                .unwrap()
                .contains("${NotifyFunctionArn}")
        };
        // recover's branches send nothing; the shift's milestone sends theirs with its own
        assert!(!notifies(&st["Failover recover"]), "recover notifies");
        assert_eq!(
            st["Failover recover"]["Next"],
            "Failover shift-traffic init"
        );
        let sent = &st["Failover shift-traffic notify"];
        assert_eq!(sent["Type"], "Parallel");
        assert_eq!(sent["ResultPath"], Value::Null);
        assert_eq!(sent["Next"], "Failover update-dns init");
        let milestones: Vec<&str> = sent["Branches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let task = &b["States"][b["StartAt"].as_str().unwrap()];
                assert_eq!(
                    task["Catch"][0]["Next"],
                    b["States"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .nth(1)
                        .unwrap()
                        .as_str(),
                    "each branch catches its own failure"
                );
                task["Parameters"]["milestone"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            milestones,
            ["database promoted", "compute ready", "traffic shifted"]
        );
        let details: Vec<&str> = sent["Branches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                b["States"][b["StartAt"].as_str().unwrap()]["Parameters"]["detail.$"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            details,
            [
                "$.steps.recover[0].promote_db",
                "$.steps.recover[1].scale_compute",
                "$.steps.shift_traffic"
            ]
        );
        // graceful: the drain and the promotion are in the window, prepare and scale (traffic still served) not
        for prefix in ["Graceful", "Failback"] {
            assert!(!notifies(&st[format!("{prefix} drain done?")]));
            assert_eq!(
                st[format!("{prefix} drain done?")]["Choices"][0]["Next"],
                format!("{prefix} catchup needed?")
            );
            assert_eq!(
                st[format!("{prefix} promote-db done?")]["Choices"][0]["Next"],
                format!("{prefix} shift-traffic init")
            );
            assert_eq!(
                st[format!("{prefix} prepare-db done?")]["Choices"][0]["Next"],
                format!("{prefix} prepare-db notify")
            );
            let branches = st[format!("{prefix} shift-traffic notify")]["Branches"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(
                branches, 3,
                "{prefix}: traffic drained, database promoted, traffic shifted"
            );
        }
        let window: Vec<_> = FlowKind::ALL
            .iter()
            .map(|k| Flow::of(*k).outage_window())
            .collect();
        assert_eq!(window, [0..1, 2..5, 2..5, 0..0]);
    }

    /// Adaptive polling: every loop waits the step's `next_poll_seconds` when it is present, at least 1 s and
    /// shorter than the plan's interval of that wait; otherwise the interval.
    #[test]
    fn loops_wait_the_steps_hint_bounded_by_the_plan() {
        let def = definition_value();
        let st = &def["States"];
        // a start that reports done goes on at once: the Choice comes before the Wait
        let started = &st["Failover update-dns started?"];
        assert_eq!(
            started["Choices"][0]["Next"],
            "Failover update-dns done at start"
        );
        assert_eq!(started["Default"], "Failover update-dns wait");
        assert_eq!(
            st["Failover update-dns done at start"]["Next"],
            "Failover update-dns notify"
        );
        for (base, interval) in [
            ("Failover recover", ""),
            ("Failover shift-traffic", "$.timing.dial_bake_seconds"),
            ("Failover update-dns", "$.timing.poll_seconds"),
        ] {
            if interval.is_empty() {
                let b = &st[base]["Branches"][0]["States"];
                assert_eq!(
                    b["Failover promote-db soon?"]["Choices"][0]["And"][3]["NumericLessThanPath"],
                    "$.timing.poll_seconds"
                );
                continue;
            }
            let soon = &st[format!("{base} soon?")];
            assert_eq!(
                st[format!("{base} budget")]["Default"],
                format!("{base} soon?")
            );
            let and = &soon["Choices"][0]["And"];
            assert_eq!(and[0]["IsPresent"], true, "{base}");
            assert_eq!(and[2]["NumericGreaterThanEquals"], 1, "{base}");
            assert_eq!(and[3]["NumericLessThanPath"], interval, "{base}");
            assert_eq!(soon["Default"], format!("{base} wait"));
            assert_eq!(soon["Choices"][0]["Next"], format!("{base} wait soon"));
            let key = if base.ends_with("shift-traffic") {
                "shift_traffic"
            } else {
                "update_dns"
            };
            assert_eq!(
                st[format!("{base} wait soon")]["SecondsPath"],
                format!("$.steps.{key}.next_poll_seconds")
            );
        }
    }

    /// A Parallel's result is an array, and notify takes an object as `detail`: the milestone after a side-by-side
    /// phase wraps the branches' reports (a bare array was refused as InvalidInput and the milestone lost).
    #[test]
    fn milestones_after_a_parallel_send_an_object_detail() {
        let def = definition_value();
        let mut states = Vec::new();
        all_states(&def, &mut states);
        let by_name: std::collections::HashMap<&str, &Value> =
            states.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let mut seen = 0;
        for (name, state) in &states {
            if state["Type"] != "Parallel" {
                continue;
            }
            let result = state["ResultPath"].as_str().unwrap_or_default();
            let Some(next) = state["Next"].as_str().and_then(|n| by_name.get(n)) else {
                continue;
            };
            if next["Parameters"]["kind"] != "milestone" {
                continue;
            }
            seen += 1;
            assert_eq!(next["Parameters"].get("detail.$"), None, "{name}");
            assert_eq!(next["Parameters"]["detail"]["branches.$"], result, "{name}");
        }
        assert!(
            seen >= 1,
            "the reprotect milestone (pilot light restored) expected"
        );
    }

    /// Issue #10: the preflight runs before the approval gate and before every flow; findings pause (on the same
    /// approval task) or stop; an approval merges its overrides and rechecks before ChooseFlow.
    #[test]
    fn the_preflight_comes_first_and_findings_pause_or_stop() {
        let def = definition_value();
        let st = &def["States"];
        assert_eq!(def["StartAt"], "FenceOnly?");
        assert_eq!(st["FenceOnly?"]["Default"], "Check preflight");
        let check = &st["Check preflight"];
        assert_eq!(check["Type"], "Parallel");
        assert_eq!(check["ResultPath"], "$.steps.preflight");
        // three checks, then the started notice beside them (off the critical path)
        assert_eq!(check["Branches"].as_array().unwrap().len(), 4);
        let started = &check["Branches"][3];
        assert_eq!(started["StartAt"], "NotifyStarted");
        let notify = &started["States"]["NotifyStarted"];
        assert_eq!(notify["Parameters"]["milestone"], "started");
        assert_eq!(notify["Catch"][0]["Next"], "NotifyStarted sent");
        assert_eq!(started["States"]["NotifyStarted sent"]["Result"], json!({}));
        let first = &check["Branches"][0];
        let task = &first["States"][first["StartAt"].as_str().unwrap()];
        assert_eq!(task["Parameters"]["action"], "preflight");
        assert_eq!(task["Parameters"]["overrides.$"], "$.overrides");
        let passed = &st["Check passed?"];
        assert_eq!(passed["Default"], "ApprovalRequired");
        assert_eq!(passed["Choices"][0]["Next"], "PreflightFindings");
        assert_eq!(
            passed["Choices"][0]["Or"][0]["Variable"],
            "$.steps.preflight[0].preflight_promote_db.saw.passed"
        );
        let findings = &st["PreflightFindings"];
        assert_eq!(findings["Choices"][0]["Next"], "RequestApproval");
        assert_eq!(findings["Default"], "PreflightStopped");
        assert_eq!(
            st["PreflightStopped"]["Result"]["Error"],
            "pilotlight.PreflightFindings"
        );
        assert_eq!(st["PreflightStopped"]["Next"], "NotifyFailure");
        assert_eq!(
            st["ApprovalGranted"]["Choices"][1]["Next"],
            "ApprovedOverrides?"
        );
        assert_eq!(
            st["MergeApprovedOverrides"]["Parameters"]["overrides.$"],
            "States.JsonMerge($.overrides, $.approval.decision.overrides, false)"
        );
        assert_eq!(st["ApplyApprovedOverrides"]["Next"], "Recheck preflight");
        assert_eq!(st["Recheck passed?"]["Default"], "ChooseFlow");
        assert_eq!(
            st["Recheck passed?"]["Choices"][0]["Next"],
            "RecheckStopped"
        );
        // Nothing else leads into a flow: ChooseFlow is reached only through a passed preflight.
        for (name, state) in st.as_object().unwrap() {
            let mut next: Vec<&str> = vec![];
            next.extend(state["Next"].as_str());
            next.extend(state["Default"].as_str());
            for c in state["Choices"].as_array().into_iter().flatten() {
                next.extend(c["Next"].as_str());
            }
            if next.contains(&"ChooseFlow") {
                assert!(
                    ["ApprovalRequired", "Recheck passed?"].contains(&name.as_str()),
                    "{name} skips the preflight"
                );
            }
        }
        let catchup = &st["Graceful catchup catchup"];
        assert_eq!(
            catchup["Parameters"]["drained_at.$"],
            "$.steps.drain.finished_at"
        );
    }

    fn flow_state(name: &str) -> bool {
        FlowKind::ALL
            .iter()
            .any(|k| name.starts_with(&format!("{} ", k.name())))
    }

    /// Every Catch of a flow state that records `$.error` ends in Failed through NotifyFailure, past a state that
    /// recorded the failed phase; the only other catches are a degraded phase's and the rollback's own.
    #[test]
    fn every_failure_path_says_which_phase_failed() {
        let def = definition_value();
        let states = def["States"].as_object().unwrap();
        let mut failing = 0;
        for (name, state) in states.iter().filter(|(n, _)| flow_state(n)) {
            for c in state["Catch"].as_array().into_iter().flatten() {
                let result_path = c["ResultPath"].as_str().unwrap();
                if result_path == "$.notify_error" {
                    continue; // a milestone notification: the flow goes on
                }
                let path = path_from(&def["States"], c["Next"].as_str().unwrap(), false);
                if result_path == "$.error" {
                    failing += 1;
                    assert_eq!(
                        path.last().map(String::as_str),
                        Some("Failed"),
                        "{name}: {path:?}"
                    );
                    assert!(
                        path.iter().any(|n| n == "NotifyFailure"),
                        "{name}: {path:?}"
                    );
                    let recorded = path
                        .iter()
                        .find(|n| states[n.as_str()]["ResultPath"] == "$.failed_at")
                        .unwrap_or_else(|| {
                            panic!("{name} fails without recording the phase: {path:?}")
                        });
                    assert!(recorded.ends_with(" failed"), "{recorded}");
                    assert!(
                        states[recorded.as_str()]["Result"].is_string(),
                        "{recorded}"
                    );
                } else {
                    assert!(
                        result_path.starts_with("$.degraded.") || result_path == "$.rollback.error",
                        "{name}: {result_path}"
                    );
                }
            }
        }
        assert!(failing > 15, "{failing}");
        assert_eq!(
            states["Failover shift-traffic failed"]["Result"],
            "shift-traffic"
        );
        assert_eq!(
            states["Failover recover failed"]["Result"],
            "recover (promote-db | scale-compute)"
        );
    }

    /// Issue #10, graceful rollback: in the graceful flows a failure of the drain or the catch-up (an error or the
    /// poll limit) restores the source dial before notifying; from the promotion on, forward only, saying why;
    /// before the drain and in the ungraceful flow, a plain failure.
    #[test]
    fn graceful_failures_roll_back_until_the_promotion_and_go_forward_only_after() {
        let def = definition_value();
        let st = &def["States"];
        let on_error = |state: &str| {
            let catch = st[state]["Catch"].as_array().unwrap();
            assert_eq!(catch.len(), 1, "{state}");
            path_from(st, catch[0]["Next"].as_str().unwrap(), false)
        };
        let has = |path: &[String], n: &str| path.iter().any(|p| p == n);
        for prefix in ["Graceful", "Failback"] {
            let rollback = format!("{prefix} roll back");
            for state in [
                format!("{prefix} drain drain"),
                format!("{prefix} catchup catchup"),
            ] {
                let path = on_error(&state);
                assert!(has(&path, &rollback), "{state}: {path:?}");
                assert!(has(&path, &format!("{prefix} rolled back")), "{path:?}");
                assert_eq!(path.last().map(String::as_str), Some("Failed"));
            }
            // The catch-up's poll limit (lag never 0 within max_polls) rolls back too.
            let limit = path_from(st, &format!("{prefix} catchup poll limit"), false);
            assert_eq!(
                st[&format!("{prefix} catchup poll limit")]["ResultPath"],
                "$.error"
            );
            assert!(
                has(&limit, &format!("{prefix} catchup failed")),
                "{limit:?}"
            );
            assert!(has(&limit, &rollback), "{limit:?}");
            for state in [
                format!("{prefix} promote-db start"),
                format!("{prefix} promote-db status"),
                format!("{prefix} shift-traffic start"),
            ] {
                let path = on_error(&state);
                assert!(
                    !has(&path, &rollback),
                    "{state} rolls back after the promotion: {path:?}"
                );
                let note = path.iter().find(|n| n.ends_with(" forward only")).unwrap();
                assert_eq!(st[note]["ResultPath"], "$.rollback");
                assert_eq!(st[note]["Result"]["outcome"], "forward-only");
                assert_eq!(st[note]["Result"]["why"], FORWARD_ONLY);
            }
            for state in [
                format!("{prefix} prepare-db prepare"),
                format!("{prefix} scale-compute start"),
            ] {
                let path = on_error(&state);
                assert!(
                    !path
                        .iter()
                        .any(|n| n.contains("roll") || n.ends_with("forward only")),
                    "{state}: {path:?}"
                );
            }
            // The rollback: shift-traffic restore; its own failure still notifies (and fails), saying so.
            let task = &st[&rollback];
            assert_eq!(task["Parameters"]["action"], "restore");
            assert_eq!(task["Resource"], "${ShiftTrafficFunctionArn}");
            assert_eq!(task["ResultPath"], "$.steps.restore");
            assert_eq!(task["Catch"][0]["ResultPath"], "$.rollback.error");
            let failed = path_from(st, task["Catch"][0]["Next"].as_str().unwrap(), false);
            assert_eq!(failed[0], format!("{prefix} roll back failed"));
            assert_eq!(st[&failed[0]]["Parameters"]["outcome"], "failed");
            assert_eq!(failed[1], "NotifyFailure");
            assert_eq!(
                st[&format!("{prefix} rolled back")]["Result"]["outcome"],
                "restored"
            );
        }
        assert!(st.get("Failover roll back").is_none());
        for state in ["Failover recover", "Failover shift-traffic start"] {
            let path = on_error(state);
            assert!(
                !path
                    .iter()
                    .any(|n| n.contains("roll") || n.ends_with("forward only")),
                "{state}: {path:?}"
            );
        }
    }

    /// Issue #10, DNS degraded: once the traffic moved, update-dns failing (an error, or its poll limit) leads to
    /// the normal success path with `$.degraded.dns` recorded, never to NotifyFailure, in every flow.
    #[test]
    fn a_dns_failure_after_the_shift_succeeds_degraded() {
        let def = definition_value();
        let st = &def["States"];
        // The fence run changes no DNS.
        for kind in FlowKind::ALL.into_iter().filter(|k| *k != FlowKind::Fence) {
            let prefix = kind.name();
            for state in [
                format!("{prefix} update-dns start"),
                format!("{prefix} update-dns status"),
            ] {
                let catch = &st[&state]["Catch"][0];
                assert_eq!(catch["ErrorEquals"], json!(["States.ALL"]));
                assert_eq!(catch["ResultPath"], "$.degraded.dns", "{state}");
                let path = path_from(st, catch["Next"].as_str().unwrap(), false);
                let degraded = &st[&path[0]];
                assert_eq!(path[0], format!("{prefix} update-dns degraded"));
                assert_eq!(degraded["ResultPath"], "$.degraded.dns");
                assert_eq!(degraded["Parameters"]["phase"], "update-dns");
                assert_eq!(degraded["Parameters"]["error.$"], "$.degraded.dns");
                assert!(has_report_then_success(&path), "{state}: {path:?}");
                assert!(!path.iter().any(|n| n == "NotifyFailure"), "{path:?}");
            }
            let limit = format!("{prefix} update-dns poll limit");
            assert_eq!(st[&limit]["ResultPath"], "$.degraded.dns");
            assert!(has_report_then_success(&path_from(st, &limit, false)));
            // The milestone "dns updated" is for a DNS that was updated: a degraded run skips it.
            assert!(
                !path_from(st, &format!("{prefix} update-dns degraded"), false)
                    .contains(&format!("{prefix} update-dns notify"))
            );
        }
        // Failback: the re-protection still runs after a degraded DNS.
        let path = path_from(st, "Failback update-dns degraded", false);
        assert_eq!(path[1], "Failback reprotect");
    }

    fn has_report_then_success(path: &[String]) -> bool {
        path.iter().any(|n| n == "Report") && path.last().map(String::as_str) == Some("Succeeded")
    }

    #[test]
    fn state_names_are_unique_and_short() {
        let def = definition_value();
        let mut states = Vec::new();
        all_states(&def, &mut states);
        let names: BTreeSet<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), states.len(), "a state name is used twice");
        assert!(
            names.iter().all(|n| n.len() <= 80),
            "Step Functions allows 80 characters"
        );
    }

    /// Follows ChooseFlow like Step Functions would and checks it lands on the flow `FlowKind::of` names.
    #[test]
    fn choose_flow_is_the_flow_rule() {
        let def = definition_value();
        let choose = &def["States"]["ChooseFlow"];
        let matches = |rule: &Value, input: &HashMap<&str, &str>| -> bool {
            let one = |r: &Value| {
                let var = r["Variable"].as_str().unwrap().trim_start_matches("$.");
                input.get(var).copied() == r["StringEquals"].as_str()
            };
            match rule.get("And").and_then(Value::as_array) {
                Some(all) => all.iter().all(one),
                None => one(rule),
            }
        };
        for direction in [Direction::Failover, Direction::Failback] {
            for mode in [Mode::Graceful, Mode::Ungraceful] {
                let (d, m) = (
                    serde_json::to_value(direction).unwrap(),
                    serde_json::to_value(mode).unwrap(),
                );
                let input = HashMap::from([
                    ("direction", d.as_str().unwrap()),
                    ("mode", m.as_str().unwrap()),
                ]);
                let next = choose["Choices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| matches(r, &input))
                    .map(|r| r["Next"].as_str().unwrap())
                    .unwrap_or_else(|| choose["Default"].as_str().unwrap());
                let kind = FlowKind::of(direction, mode);
                assert!(
                    next.starts_with(kind.name()),
                    "{direction:?} {mode:?} -> {next}"
                );
            }
        }
    }

    #[test]
    fn every_task_retries_from_one_policy_and_loops_are_bounded() {
        let def = definition_value();
        let mut states = Vec::new();
        all_states(&def, &mut states);
        let policy = |kind| serde_json::to_value(retry(kind)).unwrap();
        let mut tasks = 0;
        for (name, state) in &states {
            if state["Type"] == "Task" {
                tasks += 1;
                let kind = match name.as_str() {
                    "RequestApproval" => Retried::Callback,
                    "ReleaseLock" | "ReleaseLockOnFailure" => Retried::Lock,
                    _ => Retried::Step,
                };
                assert_eq!(state["Retry"], policy(kind), "{name}");
                let r = &state["Retry"][0];
                assert_eq!(r["JitterStrategy"], "FULL", "{name}");
                assert_eq!(r["MaxDelaySeconds"], 60, "{name}");
                assert_eq!(r["MaxAttempts"], 8, "{name}");
            }
            if state["Type"] == "Wait" {
                let path = state["SecondsPath"].as_str().unwrap();
                assert!(
                    path.starts_with("$.timing.")
                        || (name.ends_with(" wait soon") && path.ends_with(".next_poll_seconds")),
                    "{name}: {path}"
                );
            }
        }
        assert!(tasks > 30, "{tasks}");
        let loops = states
            .iter()
            .filter(|(n, _)| n.ends_with(" budget"))
            .count();
        let waits = states
            .iter()
            .filter(|(n, s)| s["Type"] == "Wait" && !n.ends_with(" soon"))
            .count();
        let soon = states
            .iter()
            .filter(|(n, s)| s["Type"] == "Wait" && n.ends_with(" wait soon"))
            .count();
        assert_eq!(loops, waits, "every wait belongs to a bounded loop");
        assert_eq!(loops, soon, "every loop has its adaptive wait");
    }

    #[test]
    fn the_definition_is_json_without_bare_placeholders() {
        let text = render();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        let placeholders: BTreeSet<&str> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        let expected: BTreeSet<&str> = [
            Function::PromoteDb,
            Function::ScaleCompute,
            Function::ShiftTraffic,
            Function::UpdateDns,
            Function::Notify,
        ]
        .iter()
        .map(|f| f.arn_placeholder())
        .chain([LOCK_TABLE_PLACEHOLDER])
        .collect();
        assert_eq!(placeholders, expected);
    }

    #[test]
    fn step_tasks_retry_lambda_errors_the_approval_request_only_those_before_it_ran() {
        let step = serde_json::to_value(retry(Retried::Step)).unwrap();
        let errors = step[0]["ErrorEquals"].as_array().unwrap();
        for e in [
            "pilotlight.Transient",
            "Lambda.ServiceException",
            "Lambda.Unknown",
            "Lambda.ClientExecutionTimeoutException",
            "Sandbox.Timedout",
        ] {
            assert!(errors.contains(&json!(e)), "{e}");
        }
        let callback = serde_json::to_value(retry(Retried::Callback)).unwrap();
        let errors = callback[0]["ErrorEquals"].as_array().unwrap();
        for e in LAMBDA_MAY_HAVE_RUN_ERRORS {
            assert!(!errors.contains(&json!(e)), "{e}");
        }
    }

    /// Follows the generated graph from a state, taking `Next` / a Choice's Default / the first Catch, and returns
    /// the states passed until a terminal one.
    fn path_from(states: &Value, start: &str, via_catch: bool) -> Vec<String> {
        let mut path = vec![start.to_string()];
        let mut at = start.to_string();
        while let Some(state) = states.get(&at) {
            assert!(path.len() < 200, "a loop from {start}: {path:?}");
            let next = if via_catch && state.get("Catch").is_some() && path.len() == 1 {
                state["Catch"][0]["Next"].as_str()
            } else if state["Type"] == "Choice" {
                state["Default"].as_str()
            } else {
                state["Next"].as_str()
            };
            match next {
                Some(n) => {
                    path.push(n.to_string());
                    at = n.to_string();
                }
                None => break,
            }
        }
        path
    }

    #[test]
    fn the_lock_is_released_on_the_way_to_succeeded_and_to_failed() {
        let def = definition_value();
        let states = &def["States"];
        let releases = |path: &[String]| {
            path.iter()
                .any(|n| n.starts_with("ReleaseLock") && !n.ends_with('?'))
        };
        for (from, via_catch, end) in [
            ("Report", false, "Succeeded"),
            ("Report", true, "Succeeded"),
            ("NotifyFailure", false, "Failed"),
            ("NotifyFailure", true, "Failed"),
        ] {
            let path = path_from(states, from, via_catch);
            assert_eq!(path.last().map(String::as_str), Some(end), "{path:?}");
            assert!(
                releases(&path),
                "{from} (catch: {via_catch}) skips the release: {path:?}"
            );
        }
        // Every way into Succeeded / Failed at the top level passes a release first.
        for (name, state) in states.as_object().unwrap() {
            let mut targets: Vec<&str> = vec![];
            targets.extend(state["Next"].as_str());
            targets.extend(state["Default"].as_str());
            for c in state["Catch"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(state["Choices"].as_array().into_iter().flatten())
            {
                targets.extend(c["Next"].as_str());
            }
            if targets.iter().any(|t| *t == "Succeeded" || *t == "Failed") {
                assert!(
                    name.starts_with("ReleaseLock"),
                    "{name} ends the run without releasing the lock"
                );
            }
        }
        for (name, end) in [
            ("ReleaseLock", "Succeeded"),
            ("ReleaseLockOnFailure", "Failed"),
        ] {
            let task = &states[name];
            assert_eq!(task["Resource"], "arn:aws:states:::dynamodb:deleteItem");
            let p = &task["Parameters"];
            assert_eq!(p["TableName"], format!("${{{LOCK_TABLE_PLACEHOLDER}}}"));
            assert_eq!(p["Key"], json!({"lock": {"S": "flow"}}));
            assert_eq!(p["ConditionExpression"], "#holder = :me");
            assert_eq!(p["ExpressionAttributeNames"], json!({"#holder": "holder"}));
            assert_eq!(
                p["ExpressionAttributeValues"],
                json!({":me": {"S.$": "$$.Execution.Name"}})
            );
            assert_eq!(
                task["ResultPath"],
                Value::Null,
                "the release never changes the state"
            );
            assert_eq!(task["Catch"][0]["ErrorEquals"], json!(["States.ALL"]));
            assert_eq!(
                task["Catch"][0]["Next"], end,
                "a failed release keeps the outcome"
            );
            // Dry-runs skip it.
            let choice = &states[format!("{name}?")];
            assert_eq!(choice["Choices"][0]["Variable"], "$.dry_run");
            assert_eq!(choice["Choices"][0]["Next"], end);
            assert_eq!(choice["Default"], name);
        }
    }
}
