//! `pilotlight plan`: what a failover or failback would change right now, computed locally from live reads. The
//! flow's own calls (`flow::Flow::for_run`, preceded by `Flow::preflight`) are made in process with `dry_run` set,
//! through the very step handlers the Lambda functions run, so every step observes live state and reports the
//! changes it would make, and none is made (docs/guarantees.md "Dry-run everywhere"). No execution is started and
//! the flow lock is not taken. Unlike a dry-run execution, the calls do not wait for each other's (absent)
//! effects: each one sees the topology as it is now (the fence, which acts on what the shift left, is left out).

use serde::Serialize;

use crate::flow::{Call, Flow, Function};
use crate::plan::{Direction, Mode};
use crate::preflight::{Check, PreflightSaw};
use crate::runtime::Context;
use crate::step::{Action, Change, Overrides, StepInput, StepReport};
use crate::steps::{promote_db, scale_compute, shift_traffic, update_dns};

/// One call of the flow as a dry-run made it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCall {
    /// The report's phase name (`preflight-promote-db`, `prepare-db`, `shift-traffic`, ...).
    pub phase: String,
    pub what: &'static str,
    /// The step's dry-run report, or the error it answered (the same error would stop the real run there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DryRunPlan {
    pub direction: Direction,
    pub mode: Mode,
    pub overrides: Vec<&'static str>,
    /// What the flow does, phase by phase (the approval request's "what will happen").
    pub flow: Vec<&'static str>,
    pub calls: Vec<PlannedCall>,
    /// The preflight checks that fail (the run would pause for approval or stop there, nothing changed).
    pub findings: Vec<Check>,
    /// Every change the steps would make, in flow order.
    pub changes: Vec<Change>,
}

/// The calls a dry-run makes: the preflight, then each call of the flow once (a status call only re-reads what
/// its start reported; notify publishes and changes nothing in the topology).
pub fn planned_calls(direction: Direction, mode: Mode) -> Vec<Call> {
    let flow = Flow::for_run(direction, mode);
    let mut out: Vec<Call> = Flow::preflight().calls;
    for c in flow.calls() {
        // The fence acts on what the shift left (it refuses while the dials are on the source), so a dry-run of
        // it now would only report "not fenced: shift first": left out, the flow's listing names it.
        let skip = c.function == Function::Notify
            || c.action == Action::Status
            || c.action == Action::Fence
            || c.skip_in_mode == Some(mode)
            || out
                .iter()
                .any(|o| o.function == c.function && o.action == c.action);
        if !skip {
            out.push(c.clone());
        }
    }
    out
}

pub async fn dry_run(
    ctx: &Context,
    direction: Direction,
    mode: Mode,
    overrides: Overrides,
) -> DryRunPlan {
    let mut calls = Vec::new();
    for call in planned_calls(direction, mode) {
        let input = StepInput {
            action: call.action,
            direction,
            mode,
            dry_run: true,
            overrides,
            drained_at: None,
        };
        let result = Box::pin(run(ctx, call.function, input)).await;
        let (report, error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (
                None,
                Some(format!("{}: {}", e.kind.error_type(), e.message)),
            ),
        };
        calls.push(PlannedCall {
            phase: call.phase(),
            what: call.what,
            report,
            error,
        });
    }
    let findings = calls
        .iter()
        .filter_map(|c| c.report.as_ref())
        .filter(|r| r.action == Action::Preflight)
        .filter_map(|r| serde_json::from_value::<PreflightSaw>(r.saw.clone()).ok())
        .flat_map(|saw| saw.checks.into_iter().filter(|c| !c.passed))
        .collect();
    let mut changes: Vec<Change> = Vec::new();
    for c in calls
        .iter()
        .filter_map(|c| c.report.as_ref())
        .flat_map(|r| &r.changes)
    {
        if !changes.contains(c) {
            changes.push(c.clone());
        }
    }
    DryRunPlan {
        direction,
        mode,
        overrides: overrides.granted(),
        flow: Flow::for_run(direction, mode).what_will_happen(mode),
        calls,
        findings,
        changes,
    }
}

async fn run(ctx: &Context, function: Function, input: StepInput) -> crate::Result<StepReport> {
    match function {
        Function::PromoteDb => promote_db::handle(ctx, promote_db::PromoteDbInput(input)).await,
        Function::ScaleCompute => {
            scale_compute::handle(ctx, scale_compute::ScaleComputeInput(input)).await
        }
        Function::ShiftTraffic => {
            shift_traffic::handle(ctx, shift_traffic::ShiftTrafficInput(input)).await
        }
        Function::UpdateDns => {
            update_dns::handle(
                ctx,
                update_dns::UpdateDnsInput {
                    step: input,
                    change_id: None,
                },
            )
            .await
        }
        Function::Notify => unreachable!("planned_calls leaves notify out"),
    }
}

/// The plan as lines for a terminal.
pub fn render(p: &DryRunPlan) -> String {
    let mut out = format!(
        "{} ({}) dry-run from live reads, nothing started, nothing changed{}\n",
        p.direction.as_str(),
        match p.mode {
            Mode::Graceful => "graceful",
            Mode::Ungraceful => "ungraceful",
        },
        if p.overrides.is_empty() {
            String::new()
        } else {
            format!("; overrides: {}", p.overrides.join(", "))
        }
    );
    out.push_str("flow:\n");
    for (i, w) in p.flow.iter().enumerate() {
        out.push_str(&format!("  {}. {w}\n", i + 1));
    }
    out.push_str(
        "calls (dry-run; the fence acts on what the shift leaves, so it is not computed here):\n",
    );
    for c in &p.calls {
        match (&c.report, &c.error) {
            (Some(r), _) => out.push_str(&format!(
                "  {:<24} done={:<5} {}\n",
                c.phase, r.done, r.message
            )),
            (None, Some(e)) => out.push_str(&format!("  {:<24} ERROR {e}\n", c.phase)),
            (None, None) => {}
        }
    }
    if p.findings.is_empty() {
        out.push_str("preflight: every check passes\n");
    } else {
        out.push_str(&format!(
            "preflight findings ({}): the run would pause for approval or stop, nothing changed\n",
            p.findings.len()
        ));
        for f in &p.findings {
            out.push_str(&format!(
                "  {:<20} {}{}\n",
                f.check,
                f.message,
                f.override_name
                    .as_deref()
                    .map(|o| format!(
                        " (accept with --allow-{})",
                        o.trim_start_matches("allow_").replace('_', "-")
                    ))
                    .unwrap_or_default()
            ));
        }
    }
    out.push_str(&format!("would change ({}):\n", p.changes.len()));
    for c in &p.changes {
        out.push_str(&format!(
            "  {}  {}: {} -> {}\n",
            c.resource, c.field, c.from, c.to
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dry_run_makes_the_preflight_then_each_mutating_call_once() {
        let calls = planned_calls(Direction::Failover, Mode::Ungraceful);
        let phases: Vec<String> = calls.iter().map(Call::phase).collect();
        assert_eq!(
            &phases[..3],
            [
                "preflight-promote-db",
                "preflight-scale-compute",
                "preflight-shift-traffic"
            ]
        );
        for p in ["promote-db", "scale-compute", "shift-traffic", "update-dns"] {
            assert_eq!(phases.iter().filter(|x| *x == p).count(), 1, "{phases:?}");
        }
        assert!(calls.iter().all(|c| {
            c.function != Function::Notify && !matches!(c.action, Action::Status | Action::Fence)
        }));
        let graceful = planned_calls(Direction::Failover, Mode::Graceful);
        let phases: Vec<String> = graceful.iter().map(Call::phase).collect();
        for p in [
            "prepare-db",
            "drain",
            "catchup",
            "promote-db",
            "shift-traffic",
        ] {
            assert!(phases.iter().any(|x| x == p), "{p} missing from {phases:?}");
        }
    }
}
