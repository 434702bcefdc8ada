//! The flows pilotlight runs, defined once. Each flow is an ordered list of phases; a phase is one step call, or
//! step calls run side by side. The state machine (`statemachine/failover.asl.json`) is generated from this
//! definition (`flow::asl`, `pilotlight statemachine`), and so are notify's "what will happen" text and the
//! report's phase names: changing a flow here changes all three.
//!
//! Every call follows one of two poll shapes, written once in the generator: `start` then `status` every poll
//! interval until done, or the same action repeated after each wait until done (each call observes and moves one
//! step). Every loop is bounded by `$.timing.max_polls`.

pub mod asl;

use crate::plan::{Direction, Mode};
use crate::step::Action;

/// The Lambda functions a flow calls (detect starts the flow; it is never called by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    PromoteDb,
    ScaleCompute,
    ShiftTraffic,
    UpdateDns,
    Notify,
}

impl Function {
    /// The step name steps put in their reports (`StepReport::step`).
    pub fn step_name(self) -> &'static str {
        match self {
            Function::PromoteDb => "promote-db",
            Function::ScaleCompute => "scale-compute",
            Function::ShiftTraffic => "shift-traffic",
            Function::UpdateDns => "update-dns",
            Function::Notify => "notify",
        }
    }

    /// The DefinitionSubstitutions name template.yaml gives this function's ARN.
    pub fn arn_placeholder(self) -> &'static str {
        match self {
            Function::PromoteDb => "PromoteDbFunctionArn",
            Function::ScaleCompute => "ScaleComputeFunctionArn",
            Function::ShiftTraffic => "ShiftTrafficFunctionArn",
            Function::UpdateDns => "UpdateDnsFunctionArn",
            Function::Notify => "NotifyFunctionArn",
        }
    }
}

/// Which flow an execution runs: the one rule, used by the state machine's choice and by notify's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// The primary is down: promote and scale side by side, dials straight to the target.
    Failover,
    /// Planned evacuation: the primary answers; drain, catch up to lag 0, promote, dial up in steps.
    GracefulFailover,
    /// Back home, always along the graceful path, then re-protect DR.
    Failback,
    /// The `fence` command's run: only the fence phase, retrying what a failover's fence could not do.
    Fence,
}

impl FlowKind {
    pub const ALL: [FlowKind; 4] = [
        FlowKind::Failover,
        FlowKind::GracefulFailover,
        FlowKind::Failback,
        FlowKind::Fence,
    ];

    pub fn of(direction: Direction, mode: Mode) -> FlowKind {
        match (direction, mode) {
            (Direction::Failback, _) => FlowKind::Failback,
            (Direction::Failover, Mode::Graceful) => FlowKind::GracefulFailover,
            (Direction::Failover, Mode::Ungraceful) => FlowKind::Failover,
        }
    }

    /// The prefix of this flow's state names.
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Failover => "Failover",
            FlowKind::GracefulFailover => "Graceful",
            FlowKind::Failback => "Failback",
            FlowKind::Fence => "Fence",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            FlowKind::Failover => "ungraceful",
            FlowKind::GracefulFailover | FlowKind::Failback => "graceful",
            FlowKind::Fence => "fence",
        }
    }
}

/// How the state machine waits between two calls of a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `$.timing.poll_seconds`: give an AWS change time to progress.
    Poll,
    /// `$.timing.dial_bake_seconds`: let a dial step bake (errors and latency show up) before the next one.
    DialBake,
}

/// How a call loops until its step reports `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// `start` once, then `status` after every wait until done (skipped when `start` already finished it).
    StartThenStatus,
    /// The action again after every wait until done.
    Repeat(Wait),
    /// One call, no loop (read-only checks that always answer done: the preflight).
    Once,
}

/// One step call of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub function: Function,
    pub action: Action,
    pub poll: Poll,
    /// The operators' milestone notification sent when the call is done (never blocks the flow).
    pub milestone: Option<&'static str>,
    /// The call is skipped in this mode (a forced failback does not wait for lag 0).
    pub skip_in_mode: Option<Mode>,
    /// What the call does, for the approval request ("what will happen").
    pub what: &'static str,
    /// A field of the start call's report that the status calls need: (input key, path under the report), e.g.
    /// update-dns waits for the Route 53 change that start submitted.
    pub status_reads_start: Option<(&'static str, &'static str)>,
    /// A field of the execution state the action needs: (input key, state path), e.g. catch-up gets the drain's
    /// finish time.
    pub reads_state: Option<(&'static str, &'static str)>,
}

impl Call {
    fn new(function: Function, action: Action, poll: Poll, what: &'static str) -> Self {
        Call {
            function,
            action,
            poll,
            milestone: None,
            skip_in_mode: None,
            what,
            status_reads_start: None,
            reads_state: None,
        }
    }
    fn milestone(mut self, milestone: &'static str) -> Self {
        self.milestone = Some(milestone);
        self
    }
    fn skipped_in(mut self, mode: Mode) -> Self {
        self.skip_in_mode = Some(mode);
        self
    }

    /// The timeline phase of the report: start and status calls of a step are one phase named after the step; the
    /// other actions get their own names.
    pub fn phase(&self) -> String {
        phase(self.function.step_name(), self.action)
    }

    /// Where the call's final report lives in the execution state (`$.steps.<key>`); a start/status loop keeps the
    /// start call's report at `<key>_start`.
    pub fn result_key(&self) -> String {
        self.phase().replace('-', "_")
    }
}

/// The report phase a step call belongs to (see [`Call::phase`]); also used for reports read back from history.
pub fn phase(step: &str, action: Action) -> String {
    match (step, action) {
        (_, Action::Start | Action::Status) => step.to_string(),
        (_, Action::Reprotect) => format!("reprotect-{step}"),
        ("promote-db", Action::Prepare) => "prepare-db".to_string(),
        ("promote-db", Action::CatchUp) => "catchup".to_string(),
        ("shift-traffic", Action::Drain) => "drain".to_string(),
        ("shift-traffic", Action::Restore) => "restore".to_string(),
        (_, Action::Preflight) => format!("preflight-{step}"),
        (_, other) => format!("{step}-{}", other.as_str()),
    }
}

/// What a failure of a phase (an error its retries did not absorb, or its poll limit) leads to. The generator
/// turns each into its states (`flow::asl`); the phases say which applies, so the rule is written once here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Notify the failure and fail (recording the phase in `$.failed_at`): nothing to undo.
    Fail,
    /// Graceful flows between the drain and the promotion: nothing irreversible happened yet, but no side serves
    /// traffic. Restore the source dial (shift-traffic `restore`, [`Flow::rollback`]), then notify and fail.
    RollBack,
    /// Graceful flows once the promotion was (or may have been) issued: notify and fail without restoring, and
    /// say why ([`FORWARD_ONLY`]).
    ForwardOnly,
    /// Best effort once traffic has moved: record the error in `$.degraded.<key>` and go on to the next phase, so
    /// the run succeeds with a warning the report and its notification carry (e.g. DNS after the shift).
    Degrade(&'static str),
}

/// Why a graceful flow does not restore the source dial after the promotion was issued.
pub const FORWARD_ONLY: &str = "no rollback: the promotion was issued (or may have been), and sending traffic back \
     to the old writer could split the data between two writers; finish forward (the target's database is the \
     writer): re-run the failed step, each step resumes from live state";

/// One or more calls; the calls of a phase run side by side and the next phase starts when all are done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Names the side-by-side state (`Parallel`) and its result (`$.steps.<name>`); unused for a single call.
    pub name: &'static str,
    pub calls: Vec<Call>,
    /// Sent when every call of the phase is done.
    pub milestone: Option<&'static str>,
    pub what: Option<&'static str>,
    pub on_failure: OnFailure,
}

impl Phase {
    fn one(call: Call) -> Self {
        Phase {
            name: "",
            calls: vec![call],
            milestone: None,
            what: None,
            on_failure: OnFailure::Fail,
        }
    }
    fn side_by_side(name: &'static str, what: &'static str, calls: Vec<Call>) -> Self {
        Phase {
            name,
            calls,
            milestone: None,
            what: Some(what),
            on_failure: OnFailure::Fail,
        }
    }
    fn milestone(mut self, milestone: &'static str) -> Self {
        self.milestone = Some(milestone);
        self
    }
    fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }
    pub fn is_parallel(&self) -> bool {
        self.calls.len() > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub kind: FlowKind,
    pub phases: Vec<Phase>,
}

impl Flow {
    pub fn of(kind: FlowKind) -> Flow {
        use Action::*;
        use Function::*;
        use Poll::*;
        let promote = || {
            Call::new(
                PromoteDb,
                Start,
                StartThenStatus,
                "promote the target database",
            )
            .milestone("database promoted")
        };
        let scale = || {
            Call::new(
                ScaleCompute,
                Start,
                StartThenStatus,
                "scale the target Auto Scaling group",
            )
            .milestone("compute ready")
        };
        let dns = || {
            let mut call =
                Call::new(UpdateDns, Start, StartThenStatus, "update DNS").milestone("dns updated");
            call.status_reads_start = Some(("change_id", "saw.change_id"));
            call
        };
        let shift = |what| {
            Call::new(ShiftTraffic, Start, Repeat(Wait::DialBake), what)
                .milestone("traffic shifted")
        };
        let graceful = |shift_what| {
            vec![
                Phase::one(
                    Call::new(
                        PromoteDb,
                        Prepare,
                        Repeat(Wait::Poll),
                        "prepare the target database replica",
                    )
                    .milestone("database ready"),
                ),
                Phase::one(scale()),
                // From the drain to the promotion no side serves traffic, and nothing irreversible has happened:
                // a failure there restores the source dial.
                Phase::one(
                    Call::new(
                        ShiftTraffic,
                        Drain,
                        Repeat(Wait::Poll),
                        "drain the source traffic dial to 0",
                    )
                    .milestone("traffic drained"),
                )
                .on_failure(OnFailure::RollBack),
                Phase::one({
                    let mut call = Call::new(
                        PromoteDb,
                        CatchUp,
                        Repeat(Wait::Poll),
                        "wait for replica lag 0",
                    )
                    .skipped_in(Mode::Ungraceful);
                    // Only a lag-0 datapoint taken after the drain finished counts.
                    call.reads_state = Some(("drained_at", "$.steps.drain.finished_at"));
                    call
                })
                .on_failure(OnFailure::RollBack),
                // A refused start issued nothing in that call, but a retried start refuses the same way after an
                // earlier attempt's PromoteReadReplica was sent (its answer lost): the error cannot tell, so
                // forward only (docs/guarantees.md).
                Phase::one(promote()).on_failure(OnFailure::ForwardOnly),
                Phase::one(shift(shift_what)).on_failure(OnFailure::ForwardOnly),
                Phase::one(dns()).on_failure(OnFailure::Degrade("dns")),
            ]
        };
        let phases = match kind {
            FlowKind::Failover => vec![
                Phase::side_by_side(
                    "recover",
                    "promote the target database and scale the target Auto Scaling group (in parallel)",
                    vec![promote(), scale()],
                ),
                Phase::one(shift("shift traffic to the target")),
                Phase::one(dns()).on_failure(OnFailure::Degrade("dns")),
                Flow::fence(),
            ],
            // After a graceful RDS promotion the old writer is still writable too: fence it the same way (an
            // Aurora switchover already made it a read-only secondary, which the fence only reports).
            FlowKind::GracefulFailover => {
                let mut phases = graceful("shift traffic to the target in the plan's dial steps");
                phases.push(Flow::fence());
                phases
            }
            FlowKind::Fence => vec![Flow::fence()],
            FlowKind::Failback => {
                let mut phases = graceful("shift traffic home in the plan's dial steps");
                phases.push(
                    Phase::side_by_side(
                        "reprotect",
                        "reprotect: fresh DR replica and DR Auto Scaling group at 0/0/0",
                        vec![
                            Call::new(
                                PromoteDb,
                                Reprotect,
                                Repeat(Wait::Poll),
                                "create a fresh DR replica",
                            ),
                            Call::new(
                                ScaleCompute,
                                Reprotect,
                                Repeat(Wait::Poll),
                                "DR Auto Scaling group to 0/0/0",
                            ),
                        ],
                    )
                    .milestone("pilot light restored"),
                );
                phases
            }
        };
        Flow { kind, phases }
    }

    /// The preflight every run starts with, before the approval gate and before anything is changed: each step
    /// that could refuse later checks, read only, what it would refuse (docs/guarantees.md). The same phase runs
    /// again after an approval (the recheck), with the overrides the answer added.
    pub fn preflight() -> Phase {
        use Function::*;
        let check = |function, what| Call::new(function, Action::Preflight, Poll::Once, what);
        Phase::side_by_side(
            "preflight",
            "preflight: check, read only, everything a later step could refuse",
            vec![
                check(
                    PromoteDb,
                    "check the target database can be promoted (replica, lag)",
                ),
                check(
                    ScaleCompute,
                    "check the AMI to launch (source, age) and the target Auto Scaling group",
                ),
                check(ShiftTraffic, "check both endpoint groups exist"),
            ],
        )
    }

    /// The fence phase, last in both failover flows and alone in the `fence` command's run: the side left stops
    /// taking writes (old writer), work (its Auto Scaling group to 0/0/0, capacity recorded) and traffic (its dial
    /// held at 0). Best effort: each call reports fenced / already fenced / not fenced, and nothing here fails the
    /// run (docs/guarantees.md "Fencing").
    pub fn fence() -> Phase {
        use Function::*;
        let fence = |function, what| Call::new(function, Action::Fence, Poll::Once, what);
        Phase {
            on_failure: OnFailure::Degrade("fence"),
            ..Phase::side_by_side(
                "fence",
                "fence the side left (best effort): stop the old writer, its Auto Scaling group to 0/0/0 (capacity recorded), its traffic dial held at 0",
                vec![
                    fence(PromoteDb, "stop the old writer"),
                    fence(
                        ScaleCompute,
                        "the primary Auto Scaling group to 0/0/0, its capacity recorded",
                    ),
                    fence(ShiftTraffic, "hold the primary traffic dial at 0"),
                ],
            )
        }
    }

    /// The call a [`OnFailure::RollBack`] failure makes before notifying: the source dial back to 100 (one call:
    /// it reads the dial back, and a disagreeing read is a Transient error the Retry absorbs).
    pub fn rollback() -> Call {
        Call::new(
            Function::ShiftTraffic,
            Action::Restore,
            Poll::Once,
            "restore the source traffic dial to 100",
        )
    }

    /// Whether any phase of the flow rolls back on failure (the flow then has its rollback states).
    pub fn rolls_back(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.on_failure == OnFailure::RollBack)
    }

    /// The phases whose milestone notifications wait until the traffic moved: from the moment no side serves
    /// (the start of an ungraceful run: the primary is down; the drain of a graceful one) up to the phase that
    /// moves traffic (shift-traffic `start`), whose milestone sends them all side by side. Nothing but what
    /// moves traffic sits in that window (docs/statemachine.md "Critical path"). Empty when the flow moves no
    /// traffic (the fence run).
    pub fn outage_window(&self) -> std::ops::Range<usize> {
        let has = |p: &Phase, f: Function, a: Action| {
            p.calls.iter().any(|c| c.function == f && c.action == a)
        };
        let Some(traffic) = self
            .phases
            .iter()
            .position(|p| has(p, Function::ShiftTraffic, Action::Start))
        else {
            return 0..0;
        };
        let from = self.phases[..traffic]
            .iter()
            .position(|p| has(p, Function::ShiftTraffic, Action::Drain))
            .unwrap_or(0);
        from..traffic
    }

    /// The flow an execution with this direction and mode runs.
    pub fn for_run(direction: Direction, mode: Mode) -> Flow {
        Flow::of(FlowKind::of(direction, mode))
    }

    /// What the flow will do, one line per phase, in order, for a run in `mode` (skipped calls left out).
    pub fn what_will_happen(&self, mode: Mode) -> Vec<&'static str> {
        self.phases
            .iter()
            .filter_map(|p| match p.what {
                Some(what) => Some(what),
                None => p
                    .calls
                    .iter()
                    .find(|c| c.skip_in_mode != Some(mode))
                    .map(|c| c.what),
            })
            .collect()
    }

    /// Every call of the flow, in order.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.phases.iter().flat_map(|p| &p.calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_rule() {
        use Direction::*;
        use Mode::*;
        assert_eq!(FlowKind::of(Failover, Ungraceful), FlowKind::Failover);
        assert_eq!(FlowKind::of(Failover, Graceful), FlowKind::GracefulFailover);
        assert_eq!(FlowKind::of(Failback, Graceful), FlowKind::Failback);
        assert_eq!(FlowKind::of(Failback, Ungraceful), FlowKind::Failback);
    }

    #[test]
    fn what_will_happen_follows_the_phases() {
        let failover = Flow::of(FlowKind::Failover).what_will_happen(Mode::Ungraceful);
        assert_eq!(
            failover,
            [
                "promote the target database and scale the target Auto Scaling group (in parallel)",
                "shift traffic to the target",
                "update DNS",
                "fence the side left (best effort): stop the old writer, its Auto Scaling group to 0/0/0 (capacity recorded), its traffic dial held at 0"
            ]
        );
        let failback = Flow::of(FlowKind::Failback);
        let graceful = failback.what_will_happen(Mode::Graceful);
        assert!(graceful.contains(&"wait for replica lag 0"), "{graceful:?}");
        assert_eq!(
            graceful.last(),
            Some(&"reprotect: fresh DR replica and DR Auto Scaling group at 0/0/0")
        );
        let forced = failback.what_will_happen(Mode::Ungraceful);
        assert!(!forced.contains(&"wait for replica lag 0"), "{forced:?}");
        assert_eq!(forced.len() + 1, graceful.len());
    }

    #[test]
    fn the_preflight_checks_every_step_that_can_refuse_and_catchup_reads_the_drain() {
        let p = Flow::preflight();
        let steps: Vec<Function> = p.calls.iter().map(|c| c.function).collect();
        assert_eq!(
            steps,
            [
                Function::PromoteDb,
                Function::ScaleCompute,
                Function::ShiftTraffic
            ]
        );
        assert!(
            p.calls
                .iter()
                .all(|c| c.action == Action::Preflight && c.poll == Poll::Once)
        );
        assert_eq!(p.calls[0].result_key(), "preflight_promote_db");
        let graceful = Flow::of(FlowKind::GracefulFailover);
        let catchup = graceful
            .calls()
            .find(|c| c.action == Action::CatchUp)
            .unwrap();
        assert_eq!(
            catchup.reads_state,
            Some(("drained_at", "$.steps.drain.finished_at"))
        );
    }

    /// Issue #10: graceful flows roll back only between the drain and the promotion, go forward only after it;
    /// DNS is degraded, not failed, and only once the traffic has moved.
    #[test]
    fn failures_roll_back_before_the_promotion_and_degrade_dns_after_the_shift() {
        let on_failure = |kind| -> Vec<(String, OnFailure)> {
            Flow::of(kind)
                .phases
                .iter()
                .map(|p| {
                    let name = if p.is_parallel() {
                        p.name.to_string()
                    } else {
                        p.calls[0].phase()
                    };
                    (name, p.on_failure)
                })
                .collect()
        };
        use OnFailure::*;
        let graceful = [
            ("prepare-db", Fail),
            ("scale-compute", Fail),
            ("drain", RollBack),
            ("catchup", RollBack),
            ("promote-db", ForwardOnly),
            ("shift-traffic", ForwardOnly),
            ("update-dns", Degrade("dns")),
        ]
        .map(|(n, f)| (n.to_string(), f));
        let fence = ("fence".to_string(), Degrade("fence"));
        let mut graceful_failover = graceful.to_vec();
        graceful_failover.push(fence.clone());
        assert_eq!(on_failure(FlowKind::GracefulFailover), graceful_failover);
        let mut failback = graceful.to_vec();
        failback.push(("reprotect".to_string(), Fail));
        assert_eq!(on_failure(FlowKind::Failback), failback);
        assert_eq!(
            on_failure(FlowKind::Failover),
            [
                ("recover".to_string(), Fail),
                ("shift-traffic".to_string(), Fail),
                ("update-dns".to_string(), Degrade("dns")),
                fence.clone(),
            ]
        );
        assert_eq!(on_failure(FlowKind::Fence), [fence]);
        assert!(!Flow::of(FlowKind::Failover).rolls_back());
        // Nothing before the drain and nothing after the promotion rolls back; nothing degrades before the
        // traffic shift completed.
        // The fence run has no shift of its own: it only ever follows a failover that moved the traffic.
        for kind in FlowKind::ALL.into_iter().filter(|k| *k != FlowKind::Fence) {
            let flow = Flow::of(kind);
            let at =
                |f: &dyn Fn(&Call) -> bool| flow.phases.iter().position(|p| p.calls.iter().any(f));
            let drain = at(&|c| c.action == Action::Drain);
            let promote =
                at(&|c| c.function == Function::PromoteDb && c.action == Action::Start).unwrap();
            let shifted =
                at(&|c| c.function == Function::ShiftTraffic && c.action == Action::Start).unwrap();
            for (i, p) in flow.phases.iter().enumerate() {
                match p.on_failure {
                    RollBack => {
                        assert!(drain.is_some_and(|d| d <= i) && i < promote, "{kind:?} {i}")
                    }
                    Degrade(_) => assert!(i > shifted, "{kind:?} {i}"),
                    ForwardOnly => assert!(drain.is_some() && i >= promote, "{kind:?} {i}"),
                    Fail => {}
                }
            }
        }
        let restore = Flow::rollback();
        assert_eq!(
            (restore.function, restore.action, restore.poll),
            (Function::ShiftTraffic, Action::Restore, Poll::Once)
        );
        assert_eq!(restore.phase(), "restore");
    }

    #[test]
    fn both_failovers_end_with_the_best_effort_fence_and_the_fence_run_is_only_that() {
        for kind in [FlowKind::Failover, FlowKind::GracefulFailover] {
            let last = Flow::of(kind).phases.pop().unwrap();
            assert_eq!(last, Flow::fence(), "{kind:?}");
        }
        assert!(
            Flow::of(FlowKind::Failback)
                .calls()
                .all(|c| c.action != Action::Fence)
        );
        let fence = Flow::of(FlowKind::Fence);
        assert_eq!(fence.phases, vec![Flow::fence()]);
        let p = &fence.phases[0];
        assert!(p.on_failure == OnFailure::Degrade("fence") && p.is_parallel());
        assert!(
            p.calls
                .iter()
                .all(|c| c.action == Action::Fence && c.poll == Poll::Once)
        );
        assert_eq!(
            p.calls.iter().map(Call::result_key).collect::<Vec<_>>(),
            [
                "promote_db_fence",
                "scale_compute_fence",
                "shift_traffic_fence"
            ]
        );
    }

    #[test]
    fn result_keys_are_unique_within_a_flow() {
        for kind in FlowKind::ALL {
            let flow = Flow::of(kind);
            let mut keys: Vec<String> = flow.calls().map(Call::result_key).collect();
            keys.extend(
                flow.phases
                    .iter()
                    .filter(|p| p.is_parallel())
                    .map(|p| p.name.to_string()),
            );
            let n = keys.len();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), n, "{kind:?}");
        }
    }
}
