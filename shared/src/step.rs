//! The common shape of every failover step: input from the state machine, and the report it returns
//! (what it saw, what it changed or would change, whether the state machine may move on).
//!
//! What a step saw is a typed struct per step and action (`PromotionSaw`, `DialsSaw`, ...), but the report holds it
//! as JSON ([`StepReport::record_saw`]) rather than being generic over it: one step answers with several shapes
//! (promote-db's actions each see different things), and notify reads reports of every step back from the
//! execution history without knowing which, so one concrete `StepReport` serves writer and reader alike.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::plan::{Direction, Mode, Timing};

/// What started a run, as detect recorded it in the execution input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerInfo {
    /// "alarm" or "manual".
    pub source: String,
    pub alarms: Vec<String>,
    pub state_change_time: DateTime<Utc>,
    pub reason: String,
}

/// The state machine's input (docs/contract.md), the one type detect writes and the steps read. Deterministic for a given trigger, so duplicate deliveries send
/// byte-identical input under the same name and Step Functions treats them as one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionInput {
    pub direction: Direction,
    pub mode: Mode,
    pub dry_run: bool,
    /// The named risks the operator accepted (docs/guarantees.md); an approval answer may add to them.
    pub overrides: Overrides,
    pub trigger: TriggerInfo,
    pub timing: Timing,
    pub approval: ApprovalGate,
    /// A `fence` command's run: only the fence phase (docs/guarantees.md "Fencing"), no preflight, no approval.
    /// Absent (every other run): the flow the direction and mode choose.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fence_only: bool,
}

/// Whether the execution pauses for an operator before its first mutating step. Rehearsals never wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalGate {
    /// Pause before the first mutating step, whatever the preflight found (PILOTLIGHT_APPROVAL=required).
    pub required: bool,
    /// When the preflight has findings: pause for approval with them (true: `required` and `on-findings`) or stop
    /// with a report, nothing changed (false: `none`). Absent (inputs written before it existed): pause.
    #[serde(default = "pause_by_default")]
    pub pause_on_findings: bool,
}

fn pause_by_default() -> bool {
    true
}

/// The named risks an operator may accept, each for one kind of refusal (docs/guarantees.md). They replace the
/// old all-or-nothing `force`. All false by default; unknown names are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    /// Promote although the replica lag is above PILOTLIGHT_MAX_REPLICA_LAG_SECONDS (ungraceful), or above 0
    /// (graceful promotion after catch-up): accept losing that many seconds of writes.
    pub allow_replica_lag: bool,
    /// Promote although the lag is unknown (no datapoint younger than 120 s, or replication not running).
    pub allow_unknown_lag: bool,
    /// Launch the newest recovery point of the plan's source although it is older than PILOTLIGHT_MAX_AMI_AGE_HOURS.
    pub allow_stale_ami: bool,
    /// Start a manual flow although the target region is already active (dials on the target).
    pub allow_active_target: bool,
    /// Treat a standalone target DB instance without a recent pilotlight promotion record as the writer, and let
    /// prepare/reprotect retire an instance when which one holds the newer data cannot be told.
    pub allow_stale_writer: bool,
    /// Let scale-compute reprotect take the DR group to 0/0/0 while the DR dial is still above 0.
    pub allow_serving_scale_down: bool,
    /// Launch the newest recovery point of any backed-up instance when the plan names no source
    /// (PILOTLIGHT_<SIDE>_AMI_SOURCE unset).
    pub allow_any_ami_source: bool,
    /// Fail back although the old writer (the standalone DB instance in the failback's target region, which is not
    /// the failback's source) is still writable: it was never fenced, so writes may have reached it.
    pub allow_writable_old_writer: bool,
}

impl Overrides {
    /// Every override with its name, in documentation order.
    pub fn named(&self) -> [(&'static str, bool); 8] {
        [
            ("allow_replica_lag", self.allow_replica_lag),
            ("allow_unknown_lag", self.allow_unknown_lag),
            ("allow_stale_ami", self.allow_stale_ami),
            ("allow_active_target", self.allow_active_target),
            ("allow_stale_writer", self.allow_stale_writer),
            ("allow_serving_scale_down", self.allow_serving_scale_down),
            ("allow_any_ami_source", self.allow_any_ami_source),
            ("allow_writable_old_writer", self.allow_writable_old_writer),
        ]
    }

    /// The names of the overrides that are on (for reports and messages).
    pub fn granted(&self) -> Vec<&'static str> {
        self.named()
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect()
    }

    /// Only the overrides that are on, as an object (an approval answer: merged into the execution's overrides,
    /// so it can add to them and never take one away).
    pub fn granted_object(&self) -> Value {
        Value::Object(
            self.granted()
                .into_iter()
                .map(|n| (n.to_string(), Value::Bool(true)))
                .collect(),
        )
    }

    /// Either set's overrides.
    pub fn union(self, other: Overrides) -> Overrides {
        Overrides {
            allow_replica_lag: self.allow_replica_lag || other.allow_replica_lag,
            allow_unknown_lag: self.allow_unknown_lag || other.allow_unknown_lag,
            allow_stale_ami: self.allow_stale_ami || other.allow_stale_ami,
            allow_active_target: self.allow_active_target || other.allow_active_target,
            allow_stale_writer: self.allow_stale_writer || other.allow_stale_writer,
            allow_serving_scale_down: self.allow_serving_scale_down
                || other.allow_serving_scale_down,
            allow_any_ami_source: self.allow_any_ami_source || other.allow_any_ami_source,
            allow_writable_old_writer: self.allow_writable_old_writer
                || other.allow_writable_old_writer,
        }
    }
}

/// What `force` used to mean, for the message that refuses it.
pub const FORCE_REFUSED: &str = "\"force\" is no longer accepted: it switched off the lag limit, the AMI age limit and \
     the stale-writer checks at once. Name the risk you accept instead, in \"overrides\": {\"allow_replica_lag\", \
     \"allow_unknown_lag\", \"allow_stale_ami\", \"allow_active_target\", \"allow_stale_writer\", \
     \"allow_serving_scale_down\", \"allow_any_ami_source\", \"allow_writable_old_writer\"}: true (docs/guarantees.md)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Observe, then make the change (idempotent: a re-run converges on the same end state).
    Start,
    /// Observe only: is the change complete? The state machine polls this with Wait + Choice.
    Status,
    /// Graceful flows, before anything moves (promote-db): make sure the target side holds a replica of the
    /// current writer (create it if missing); done when it replicates.
    Prepare,
    /// Graceful flows, after draining (promote-db): done when the target replica has caught up (lag 0).
    #[serde(rename = "catchup")]
    CatchUp,
    /// Graceful flows (shift-traffic): dial the source region to 0 so writes stop before promotion.
    Drain,
    /// Failback only, at the end: restore the pilot light (a fresh replica and a zero-capacity ASG in DR).
    Reprotect,
    /// Every flow, first: read-only checks of everything a later call of this step could refuse (docs/guarantees.md).
    Preflight,
    /// After a failover (and on the `fence` command): best effort, stop the side being left from taking writes and
    /// traffic; never fails the run, reports fenced / already fenced / not fenced (docs/guarantees.md "Fencing").
    Fence,
    /// Graceful flows, on a failure after the drain and before the promotion (shift-traffic): the source dial back
    /// up, so the side that still holds the writer serves again (docs/statemachine.md "Rollback").
    Restore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Status => "status",
            Action::Prepare => "prepare",
            Action::CatchUp => "catchup",
            Action::Drain => "drain",
            Action::Reprotect => "reprotect",
            Action::Preflight => "preflight",
            Action::Fence => "fence",
            Action::Restore => "restore",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    pub action: Action,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub dry_run: bool,
    /// The named risks the operator accepted (the execution's, merged with an approval answer's).
    #[serde(default)]
    pub overrides: Overrides,
    /// catchup only: when the drain finished (`$.steps.drain.finished_at`); only a lag-0 datapoint taken after it
    /// counts as caught up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained_at: Option<DateTime<Utc>>,
}

impl StepInput {
    /// Parses a step input whose action is `start` or `status`.
    pub fn parse(step: &str, input: Value) -> Result<Self> {
        Self::parse_with(step, input, &[])
    }

    /// Parses a step input whose action is `start`, `status` or one of `extra`; any other action is refused, so a
    /// step never mistakes an action it does not implement for `start`.
    pub fn parse_with(step: &str, input: Value, extra: &[Action]) -> Result<Self> {
        // `force: false` (inputs written before the overrides) means no override and is accepted; `true` is refused.
        let mut input = input;
        if let Some(obj) = input.as_object_mut()
            && let Some(force) = obj.remove("force")
            && force != Value::Bool(false)
        {
            return Err(Error::invalid_input(format!("{step}: {FORCE_REFUSED}")));
        }
        let parsed: StepInput = serde_json::from_value(input).map_err(|e| {
            Error::invalid_input(format!(
                "{step}: input rejected ({e}); expected {{\"action\": \"start\"|\"status\", \"direction\": \"failover\"|\"failback\", \"mode\": \"graceful\"|\"ungraceful\", \"dry_run\": bool, \"overrides\": {{\"allow_...\": bool}}}}"
            ))
        })?;
        let allowed = matches!(parsed.action, Action::Start | Action::Status)
            || extra.contains(&parsed.action);
        if parsed.drained_at.is_some() && parsed.action != Action::CatchUp {
            return Err(Error::invalid_input(format!(
                "{step}: \"drained_at\" belongs to catchup only"
            )));
        }
        if !allowed {
            return Err(Error::invalid_input(format!(
                "{step}: action {:?} is not one of this step's actions",
                parsed.action.as_str()
            )));
        }
        Ok(parsed)
    }
}

/// One change to live state, with the value seen and the value wanted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub resource: String,
    pub field: String,
    pub from: Value,
    pub to: Value,
    /// False in dry-run, and for changes a step plans but has not made yet.
    pub applied: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub action: Action,
    pub direction: Direction,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Live state read before acting.
    pub saw: Value,
    pub changes: Vec<Change>,
    /// The state machine moves on when true.
    pub done: bool,
    pub message: String,
    /// Replica lag seen before promotion (promote-db only): the RPO estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<f64>,
    /// Adaptive polling: when the step saw its change near completion, how soon to look again (seconds); the
    /// state machine's Wait uses it only when it is shorter than the plan's poll interval ([`poll_soon_seconds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_seconds: Option<u32>,
}

/// How soon a step asks to be polled again when it saw the last documented state before done (an RDS promotion
/// `rebooting`, instances InService waiting for their target health checks): a fifth of the plan's poll
/// interval, at least 1 s. The detection delay near completion is then at most that instead of a whole interval
/// (3 s instead of 15 s at the default), at the price of a few more status calls, which count against
/// `max_polls` (docs/statemachine.md "Adaptive polling").
pub fn poll_soon_seconds(poll_seconds: u32) -> u32 {
    (poll_seconds / 5).max(1)
}

impl StepReport {
    /// Asks for the next poll sooner ([`poll_soon_seconds`]); a finished report keeps none.
    pub fn poll_soon(mut self, poll_seconds: u32) -> Self {
        self.next_poll_seconds = (!self.done).then(|| poll_soon_seconds(poll_seconds));
        self
    }

    pub fn begin(step: &str, input: &StepInput) -> Self {
        let now = Utc::now();
        StepReport {
            step: step.to_string(),
            action: input.action,
            direction: input.direction,
            dry_run: input.dry_run,
            started_at: now,
            finished_at: now,
            saw: Value::Null,
            changes: Vec::new(),
            done: false,
            message: String::new(),
            rpo_seconds: None,
            next_poll_seconds: None,
        }
    }

    /// Records a change; applied only when not in dry-run (the caller makes the call only when not in dry-run).
    pub fn change(
        &mut self,
        resource: &str,
        field: &str,
        from: impl Into<Value>,
        to: impl Into<Value>,
    ) {
        self.changes.push(Change {
            resource: resource.to_string(),
            field: field.to_string(),
            from: from.into(),
            to: to.into(),
            applied: !self.dry_run,
        });
    }

    /// Records what the step read before acting (a step's `...Saw` struct).
    pub fn record_saw(&mut self, saw: &impl Serialize) {
        // The saw structs hold strings, numbers, timestamps and string-keyed maps, which always encode; should one
        // ever fail, the report (whose changes may already be made) still goes out, saying so.
        self.saw = serde_json::to_value(saw)
            .unwrap_or_else(|e| Value::String(format!("cannot encode what the step saw: {e}")));
    }

    pub fn finish(mut self, done: bool, message: impl Into<String>) -> Self {
        self.finished_at = Utc::now();
        self.done = done;
        self.message = message.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn poll_soon_is_a_fifth_of_the_interval_at_least_one_second_and_only_while_not_done() {
        assert_eq!(
            [1, 3, 15, 60].map(poll_soon_seconds),
            [1, 1, 3, 12],
            "seconds"
        );
        let input = StepInput::parse("promote-db", json!({"action": "status"})).unwrap();
        let waiting = StepReport::begin("promote-db", &input)
            .finish(false, "rebooting")
            .poll_soon(15);
        assert_eq!(waiting.next_poll_seconds, Some(3));
        assert_eq!(
            serde_json::to_value(&waiting).unwrap()["next_poll_seconds"],
            3
        );
        let done = StepReport::begin("promote-db", &input)
            .finish(true, "writable")
            .poll_soon(15);
        assert_eq!(done.next_poll_seconds, None);
        assert!(
            serde_json::to_value(&done)
                .unwrap()
                .get("next_poll_seconds")
                .is_none()
        );
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let i = StepInput::parse("promote-db", json!({"action": "start"})).unwrap();
        assert_eq!(
            (i.direction, i.mode, i.dry_run, i.overrides),
            (
                Direction::Failover,
                Mode::Ungraceful,
                false,
                Overrides::default()
            )
        );
        let e =
            StepInput::parse("promote-db", json!({"action": "start", "dryrun": true})).unwrap_err();
        assert!(e.message.contains("dryrun"), "{e}");
        assert!(StepInput::parse("x", json!({"action": "explode"})).is_err());
        let e = StepInput::parse("shift-traffic", json!({"action": "reprotect"})).unwrap_err();
        assert!(e.message.contains("not one of this step's actions"), "{e}");
        let i = StepInput::parse("promote-db", json!({"action": "start", "force": false})).unwrap();
        assert_eq!(i.overrides, Overrides::default());
        let e =
            StepInput::parse("promote-db", json!({"action": "start", "force": true})).unwrap_err();
        assert!(e.message.contains("allow_stale_ami"), "{e}");
        let e = StepInput::parse(
            "promote-db",
            json!({"action": "start", "drained_at": "2026-11-29T10:00:00Z"}),
        )
        .unwrap_err();
        assert!(e.message.contains("catchup only"), "{e}");
        let i = StepInput::parse_with(
            "promote-db",
            json!({"action": "catchup"}),
            &[Action::CatchUp],
        )
        .unwrap();
        assert_eq!(i.action, Action::CatchUp);
    }

    #[test]
    fn dry_run_changes_are_not_applied() {
        let input = StepInput::parse("s", json!({"action": "start", "dry_run": true})).unwrap();
        let mut r = StepReport::begin("s", &input);
        r.change("asg", "DesiredCapacity", 0, 2);
        let r = r.finish(true, "would scale");
        assert!(!r.changes[0].applied);
        assert!(r.finished_at >= r.started_at);
    }
}
