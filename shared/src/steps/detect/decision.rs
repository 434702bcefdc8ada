//! detect's decision policy: pure functions over what detect observed, unit-tested without AWS.
//! Order of checks: origin (account, region, alarm name) -> state -> live alarm state -> quorum -> running
//! execution -> target already active -> cooldown. Only then one execution, with a deterministic name.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::aws::cloudwatch::LiveAlarm;
use crate::aws::stepfunctions::RecentExecution;
use crate::error::{Error, Result};
use crate::plan::{Direction, FailoverPlan, Mode, Side};
use crate::step::{ApprovalGate, ExecutionInput, Overrides, TriggerInfo};
use crate::timestamp::rfc3339;
use crate::trigger::{AlarmState, AlarmTransition, ManualCommand};

/// Executions whose name starts with this are rehearsals: they never block or cool down a real failover.
pub const DRY_RUN_PREFIX: &str = "dryrun-";

/// Which region serves traffic, judged from the Global Accelerator dials.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "side", rename_all = "lowercase")]
pub enum ActiveSide {
    Primary,
    Dr,
    /// Dials between the two end states: a shift is in progress or was interrupted.
    Shifting {
        primary_dial: i32,
        dr_dial: i32,
    },
    /// The dials could not be read; detect does not block on that.
    Unknown {
        reason: String,
    },
}

impl ActiveSide {
    pub fn from_dials(primary_dial: i32, dr_dial: i32) -> Self {
        match (primary_dial, dr_dial) {
            (100, 0) => ActiveSide::Primary,
            (0, 100) => ActiveSide::Dr,
            _ => ActiveSide::Shifting {
                primary_dial,
                dr_dial,
            },
        }
    }
    fn is(&self, side: Side) -> bool {
        matches!(
            (self, side),
            (ActiveSide::Primary, Side::Primary) | (ActiveSide::Dr, Side::Dr)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Situation {
    pub alarms: Vec<LiveAlarm>,
    /// Alarm regions that did not answer in time: their alarms are unknown, counted neither for nor against the
    /// quorum (the event's own alarm still counts: the event is evidence of its state).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_alarm_regions: Vec<Unknown>,
    pub executions: Vec<RecentExecution>,
    /// Why the recent executions are unknown (ListExecutions did not answer in time); then neither a running
    /// execution nor the cooldown can be seen, and only the flow lock keeps runs apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions_unknown: Option<String>,
    pub active: ActiveSide,
    pub now: DateTime<Utc>,
}

/// A read that did not answer, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    pub region: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Start {
        name: String,
        input: ExecutionInput,
        reason: String,
    },
    Skip {
        reason: String,
    },
    Ignore {
        reason: String,
    },
}

/// Refuses alarms from another account, another region, or not named in the plan.
pub fn check_origin(plan: &FailoverPlan, t: &AlarmTransition) -> Result<()> {
    if t.account_id != plan.account_id {
        return Err(Error::invalid_input(format!(
            "alarm {} comes from account {}, the plan's account is {}; nothing was changed",
            t.alarm_name, t.account_id, plan.account_id
        )));
    }
    if !plan.alarms.contains(&t.alarm_name, &t.region) {
        let listed: Vec<String> = plan.alarms.alarms.iter().map(ToString::to_string).collect();
        return Err(Error::invalid_input(format!(
            "alarm {} in region {} is not one of the plan's alarms ({}, PILOTLIGHT_ALARM_NAMES); nothing was changed",
            t.alarm_name,
            t.region,
            listed.join(", ")
        )));
    }
    Ok(())
}

pub fn decide_alarm(plan: &FailoverPlan, t: &AlarmTransition, s: &Situation) -> Verdict {
    if t.state != AlarmState::Alarm {
        return Verdict::Ignore {
            reason: format!(
                "alarm {} moved to {}: only ALARM can start a failover",
                t.alarm_name,
                t.state.as_str()
            ),
        };
    }
    let live = s
        .alarms
        .iter()
        .find(|a| a.name == t.alarm_name && a.region == t.region);
    let region_unknown = s
        .unknown_alarm_regions
        .iter()
        .find(|u| u.region == t.region);
    match live {
        Some(a) if a.state == "ALARM" => {}
        Some(a) => {
            return Verdict::Skip {
                reason: format!(
                    "alarm {} is {} now (it recovered since the event was sent)",
                    a.name, a.state
                ),
            };
        }
        // Its region did not answer: the event itself says ALARM, and an outage is when that happens.
        None if region_unknown.is_some() => {}
        None => {
            return Verdict::Skip {
                reason: format!(
                    "alarm {} was not found by DescribeAlarms in {}",
                    t.alarm_name, t.region
                ),
            };
        }
    }
    let from_event = LiveAlarm {
        name: t.alarm_name.clone(),
        region: t.region.clone(),
        state: "ALARM".into(),
        transitioned_at: Some(t.state_change_time),
    };
    // The quorum set: the plan's alarms in ALARM, earliest transition first; the K-th one completes the quorum.
    let mut firing: Vec<&LiveAlarm> = s
        .alarms
        .iter()
        .filter(|a| a.state == "ALARM" && plan.alarms.contains(&a.name, &a.region))
        .chain(live.is_none().then_some(&from_event))
        .collect();
    firing.sort_by(|a, b| (a.transitioned_at, &a.name).cmp(&(b.transitioned_at, &b.name)));
    if firing.len() < plan.alarms.quorum {
        let unknown: Vec<&str> = s
            .unknown_alarm_regions
            .iter()
            .map(|u| u.region.as_str())
            .collect();
        return Verdict::Skip {
            reason: format!(
                "quorum not met: {} of {} required alarms in ALARM ({}){}",
                firing.len(),
                plan.alarms.quorum,
                firing
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!("; alarms in {} unknown (no answer)", unknown.join(", "))
                }
            ),
        };
    }
    let quorum: Vec<&LiveAlarm> = firing[..plan.alarms.quorum].to_vec();
    let dry_run = plan.dry_run;
    if let Some(reason) = blocked_by_executions(s, dry_run, Some(plan.alarms.cooldown)) {
        return Verdict::Skip { reason };
    }
    if s.active.is(Side::Dr) {
        return Verdict::Skip {
            reason: format!(
                "DR region {} is already active (dials 0/100): nothing to fail over",
                plan.dr.region
            ),
        };
    }
    let quorum_time = quorum
        .iter()
        .filter_map(|a| a.transitioned_at)
        .max()
        .unwrap_or(t.state_change_time);
    let identity: Vec<String> = quorum
        .iter()
        .map(|a| {
            format!(
                "{}@{}@{}",
                a.name,
                a.region,
                a.transitioned_at
                    .unwrap_or(t.state_change_time)
                    .timestamp_millis()
            )
        })
        .collect();
    let names: Vec<String> = quorum.iter().map(|a| a.name.clone()).collect();
    let name = execution_name(dry_run, "failover", quorum_time, &identity.join("|"));
    let input = ExecutionInput {
        direction: Direction::Failover,
        mode: Mode::Ungraceful,
        dry_run,
        overrides: Overrides::default(),
        trigger: TriggerInfo {
            source: "alarm".into(),
            alarms: names.clone(),
            state_change_time: quorum_time,
            reason: format!(
                "{} of {} alarms in ALARM: {}",
                quorum.len(),
                plan.alarms.alarms.len(),
                names.join(", ")
            ),
        },
        timing: plan.timing,
        approval: ApprovalGate {
            required: plan.approval_required && !dry_run,
            pause_on_findings: plan.pause_on_findings,
        },
        fence_only: false,
    };
    Verdict::Start {
        name,
        input,
        reason: format!(
            "quorum reached ({}) and {}",
            names.join(", "),
            match &s.executions_unknown {
                None => "no execution running".to_string(),
                Some(why) => format!("executions unknown ({why})"),
            }
        ),
    }
}

pub fn decide_manual(
    plan: &FailoverPlan,
    cmd: &ManualCommand,
    direction: Direction,
    s: &Situation,
) -> Verdict {
    if let Some(reason) = blocked_by_executions(s, cmd.dry_run, None) {
        return Verdict::Skip { reason };
    }
    let target = direction.target();
    if s.active.is(target) && !cmd.overrides.allow_active_target {
        return Verdict::Skip {
            reason: format!(
                "{} region {} is already active: nothing to {}; add \"overrides\": {{\"allow_active_target\": true}} to run the steps anyway",
                if target == Side::Dr { "DR" } else { "primary" },
                plan.region(target).region,
                direction.as_str()
            ),
        };
    }
    let reason = cmd
        .reason
        .clone()
        .unwrap_or_else(|| "manual command".into());
    // Failback is always graceful unless explicitly forced ungraceful: the team is going home, not fleeing.
    let mode = cmd.mode.unwrap_or(match direction {
        Direction::Failover => Mode::Ungraceful,
        Direction::Failback => Mode::Graceful,
    });
    let identity = serde_json::to_string(cmd).unwrap_or_default();
    // Same command within the same minute = the same request delivered twice: same name, one execution.
    let minute = DateTime::from_timestamp(s.now.timestamp() / 60 * 60, 0).unwrap_or(s.now);
    let base = execution_name(cmd.dry_run, direction.as_str(), minute, &identity);
    let input = ExecutionInput {
        direction,
        mode,
        dry_run: cmd.dry_run,
        overrides: cmd.overrides,
        trigger: TriggerInfo {
            source: "manual".into(),
            alarms: vec![],
            state_change_time: s.now,
            reason: reason.clone(),
        },
        timing: plan.timing,
        // A command may ask for approval; it never takes away the plan's (`"approval": false` on a plan whose
        // approval is required still pauses).
        approval: ApprovalGate {
            required: (plan.approval_required || cmd.approval == Some(true)) && !cmd.dry_run,
            pause_on_findings: plan.pause_on_findings || cmd.approval == Some(true),
        },
        fence_only: false,
    };
    Verdict::Start {
        name: base,
        input,
        reason: format!("manual {}: {reason}", direction.as_str()),
    }
}

/// The `fence` command (docs/guarantees.md "Fencing"): retry fencing the primary, the side a failover left. Only
/// while the DR region is active: fencing the primary while it serves would take it down. The run holds the flow
/// lock like any other (never beside a failover or failback).
pub fn decide_fence(plan: &FailoverPlan, cmd: &ManualCommand, s: &Situation) -> Verdict {
    if let Some(reason) = blocked_by_executions(s, cmd.dry_run, None) {
        return Verdict::Skip { reason };
    }
    if !s.active.is(Side::Dr) {
        return Verdict::Skip {
            reason: format!(
                "fence refused: the DR region {} is not the active side ({}); fencing the primary {} now would cut                  the side that serves. Fence only after a failover.",
                plan.dr.region,
                serde_json::to_string(&s.active).unwrap_or_default(),
                plan.primary.region
            ),
        };
    }
    let reason = cmd.reason.clone().unwrap_or_else(|| "manual fence".into());
    let identity = serde_json::to_string(cmd).unwrap_or_default();
    let minute = DateTime::from_timestamp(s.now.timestamp() / 60 * 60, 0).unwrap_or(s.now);
    let input = ExecutionInput {
        direction: Direction::Failover,
        mode: Mode::Ungraceful,
        dry_run: cmd.dry_run,
        overrides: Overrides::default(),
        trigger: TriggerInfo {
            source: "manual".into(),
            alarms: vec![],
            state_change_time: s.now,
            reason: reason.clone(),
        },
        timing: plan.timing,
        // Fencing the side already left needs no approval: it never touches the side that serves.
        approval: ApprovalGate {
            required: false,
            pause_on_findings: false,
        },
        fence_only: true,
    };
    Verdict::Start {
        name: execution_name(cmd.dry_run, "fence", minute, &identity),
        input,
        reason: format!("manual fence: {reason}"),
    }
}

/// A running execution always blocks (never two at once); a recent one blocks automatic starts (cooldown).
/// Rehearsals and real runs do not block each other. Executions that could not be read block nothing: waiting for
/// Step Functions' list to answer must not delay a failover (the flow lock still keeps runs apart).
fn blocked_by_executions(
    s: &Situation,
    dry_run: bool,
    cooldown: Option<Duration>,
) -> Option<String> {
    let relevant = s
        .executions
        .iter()
        .filter(|e| e.name.starts_with(DRY_RUN_PREFIX) == dry_run);
    let mut latest: Option<&RecentExecution> = None;
    for e in relevant {
        if e.status == "RUNNING" {
            return Some(format!(
                "flow already running: {} (started {}, ListExecutions)",
                e.name,
                rfc3339(e.started_at, SecondsFormat::Millis)
            ));
        }
        if latest.is_none_or(|l| e.started_at > l.started_at) {
            latest = Some(e);
        }
    }
    let (cooldown, last) = (cooldown?, latest?);
    let since = s
        .now
        .signed_duration_since(last.started_at)
        .to_std()
        .unwrap_or_default();
    (since < cooldown).then(|| {
        format!(
            "cooldown: execution {} started {}s ago ({}), cooldown is {}s",
            last.name,
            since.as_secs(),
            last.status,
            cooldown.as_secs()
        )
    })
}

/// `failover-20261129T101500Z-<16 hex>`: readable, at most 80 characters, only [A-Za-z0-9-].
pub fn execution_name(dry_run: bool, kind: &str, at: DateTime<Utc>, identity: &str) -> String {
    let prefix = if dry_run { DRY_RUN_PREFIX } else { "" };
    format!(
        "{prefix}{kind}-{}-{:016x}",
        at.format("%Y%m%dT%H%M%SZ"),
        fnv1a(identity.as_bytes())
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::reference_vars;
    use crate::trigger::AlarmShape;
    use chrono::TimeZone;

    fn plan_with(overrides: &[(&str, &str)]) -> FailoverPlan {
        let mut v = reference_vars();
        for (k, val) in overrides {
            v.insert(k.to_string(), val.to_string());
        }
        FailoverPlan::from_map(&v).unwrap()
    }

    fn at(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, min, 0).unwrap()
    }

    fn transition(name: &str, state: AlarmState) -> AlarmTransition {
        AlarmTransition {
            shape: AlarmShape::LambdaAction,
            alarm_name: name.into(),
            alarm_arn: None,
            account_id: "123456789012".into(),
            region: "ap-northeast-1".into(),
            state,
            state_change_time: at(15),
        }
    }

    fn live(name: &str, state: &str, min: u32) -> LiveAlarm {
        LiveAlarm {
            name: name.into(),
            region: "ap-northeast-1".into(),
            state: state.into(),
            transitioned_at: Some(at(min)),
        }
    }

    fn situation(alarms: Vec<LiveAlarm>) -> Situation {
        Situation {
            alarms,
            unknown_alarm_regions: vec![],
            executions_unknown: None,
            executions: vec![],
            active: ActiveSide::Primary,
            now: at(20),
        }
    }

    fn skip_reason(v: Verdict) -> String {
        match v {
            Verdict::Skip { reason } => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn the_quorum_counts_across_regions_and_an_unanswered_region_is_unknown() {
        let plan = plan_with(&[
            (
                "PILOTLIGHT_ALARM_NAMES",
                "probe-down,alb-5xx@ap-northeast-2",
            ),
            ("PILOTLIGHT_QUORUM", "2"),
        ]);
        let mut primary_alarm = live("alb-5xx", "ALARM", 14);
        primary_alarm.region = "ap-northeast-2".into();
        let both = situation(vec![live("probe-down", "ALARM", 15), primary_alarm]);
        let Verdict::Start { input, .. } =
            decide_alarm(&plan, &transition("probe-down", AlarmState::Alarm), &both)
        else {
            panic!("two alarms in two regions make the quorum")
        };
        assert_eq!(input.trigger.alarms, ["alb-5xx", "probe-down"]);

        // The primary region does not answer: its alarm is unknown, counted neither way.
        let mut dark = situation(vec![live("probe-down", "ALARM", 15)]);
        dark.unknown_alarm_regions = vec![Unknown {
            region: "ap-northeast-2".into(),
            reason: "no answer within 5000 ms".into(),
        }];
        let reason = skip_reason(decide_alarm(
            &plan,
            &transition("probe-down", AlarmState::Alarm),
            &dark,
        ));
        assert!(
            reason.contains("1 of 2") && reason.contains("ap-northeast-2 unknown"),
            "{reason}"
        );
        // With a quorum of one, the DR-side alarm alone starts the failover.
        let one = plan_with(&[(
            "PILOTLIGHT_ALARM_NAMES",
            "probe-down,alb-5xx@ap-northeast-2",
        )]);
        assert!(matches!(
            decide_alarm(&one, &transition("probe-down", AlarmState::Alarm), &dark),
            Verdict::Start { .. }
        ));
    }

    #[test]
    fn the_events_own_alarm_counts_when_its_region_does_not_answer() {
        let plan = plan_with(&[]);
        let mut s = situation(vec![]);
        s.unknown_alarm_regions = vec![Unknown {
            region: "ap-northeast-1".into(),
            reason: "no answer within 5000 ms".into(),
        }];
        let Verdict::Start { input, .. } =
            decide_alarm(&plan, &transition("web-primary-5xx", AlarmState::Alarm), &s)
        else {
            panic!("the event is evidence of its alarm's state")
        };
        assert_eq!(input.trigger.state_change_time, at(15));
        // Answered but missing is different: the alarm does not exist (or was renamed).
        s.unknown_alarm_regions.clear();
        let reason = skip_reason(decide_alarm(
            &plan,
            &transition("web-primary-5xx", AlarmState::Alarm),
            &s,
        ));
        assert!(reason.contains("not found"), "{reason}");
    }

    #[test]
    fn fence_runs_only_while_dr_is_active_and_never_beside_another_flow() {
        let plan = plan_with(&[("PILOTLIGHT_APPROVAL", "required")]);
        let cmd: ManualCommand = serde_json::from_value(
            serde_json::json!({"command": "fence", "reason": "Seoul is back"}),
        )
        .unwrap();
        let mut s = situation(vec![]);
        let reason = skip_reason(decide_fence(&plan, &cmd, &s));
        assert!(reason.contains("would cut"), "{reason}");
        s.active = ActiveSide::Dr;
        let Verdict::Start { name, input, .. } = decide_fence(&plan, &cmd, &s) else {
            panic!()
        };
        assert!(name.starts_with("fence-"), "{name}");
        assert!(input.fence_only);
        assert_eq!(input.direction, Direction::Failover);
        assert!(!input.approval.required && !input.approval.pause_on_findings);
        let wire = serde_json::to_value(&input).unwrap();
        assert_eq!(wire["fence_only"], true);
        s.executions.push(RecentExecution {
            name: "failover-20261129T101000Z-0".into(),
            status: "RUNNING".into(),
            started_at: at(10),
        });
        let reason = skip_reason(decide_fence(&plan, &cmd, &s));
        assert!(reason.contains("already running"), "{reason}");
        // Every other run's input carries no fence_only at all (byte-identical to before).
        let failover = serde_json::json!({"command": "failover"});
        let cmd: ManualCommand = serde_json::from_value(failover).unwrap();
        let Verdict::Start { input, .. } =
            decide_manual(&plan, &cmd, Direction::Failover, &situation(vec![]))
        else {
            panic!()
        };
        assert!(
            serde_json::to_value(&input)
                .unwrap()
                .get("fence_only")
                .is_none()
        );
    }

    #[test]
    fn executions_that_cannot_be_read_do_not_delay_a_failover() {
        let plan = plan_with(&[]);
        let mut s = situation(vec![live("web-primary-5xx", "ALARM", 15)]);
        s.executions_unknown = Some("no answer within 5000 ms".into());
        let Verdict::Start { reason, .. } =
            decide_alarm(&plan, &transition("web-primary-5xx", AlarmState::Alarm), &s)
        else {
            panic!()
        };
        assert!(
            reason.contains("executions unknown (no answer within 5000 ms)"),
            "{reason}"
        );
    }

    #[test]
    fn one_alarm_in_alarm_starts_a_failover() {
        let plan = plan_with(&[]);
        let s = situation(vec![
            live("web-primary-5xx", "ALARM", 15),
            live("web-primary-unhealthy-hosts", "OK", 1),
        ]);
        let Verdict::Start { name, input, .. } =
            decide_alarm(&plan, &transition("web-primary-5xx", AlarmState::Alarm), &s)
        else {
            panic!()
        };
        assert!(name.starts_with("failover-20261129T101500Z-"), "{name}");
        assert!(name.len() <= 80 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        assert_eq!(input.direction, Direction::Failover);
        assert_eq!(input.mode, Mode::Ungraceful);
        assert_eq!(input.trigger.alarms, vec!["web-primary-5xx".to_string()]);
        assert_eq!(input.trigger.state_change_time, at(15));
        assert_eq!(input.timing, plan.timing);
        assert!(!input.approval.required);
        let gated = plan_with(&[("PILOTLIGHT_APPROVAL", "required")]);
        let Verdict::Start { input, .. } = decide_alarm(
            &gated,
            &transition("web-primary-5xx", AlarmState::Alarm),
            &s,
        ) else {
            panic!()
        };
        assert!(input.approval.required);
    }

    #[test]
    fn approval_per_command_overrides_the_plan_and_rehearsals_never_wait() {
        let gated = plan_with(&[("PILOTLIGHT_APPROVAL", "required")]);
        let s = situation(vec![]);
        let cmd = |v: serde_json::Value| -> ManualCommand { serde_json::from_value(v).unwrap() };
        let required = |plan: &FailoverPlan, c: ManualCommand| match decide_manual(
            plan,
            &c,
            Direction::Failover,
            &s,
        ) {
            Verdict::Start { input, .. } => input.approval.required,
            other => panic!("{other:?}"),
        };
        assert!(required(
            &gated,
            cmd(serde_json::json!({"command": "failover"}))
        ));
        // A command never weakens the plan's approval.
        assert!(required(
            &gated,
            cmd(serde_json::json!({"command": "failover", "approval": false}))
        ));
        assert!(!required(
            &gated,
            cmd(serde_json::json!({"command": "failover", "dry_run": true}))
        ));
        assert!(required(
            &plan_with(&[]),
            cmd(serde_json::json!({"command": "failover", "approval": true}))
        ));
    }

    #[test]
    fn the_name_and_input_do_not_depend_on_the_delivery() {
        let plan = plan_with(&[]);
        let s = situation(vec![live("web-primary-5xx", "ALARM", 15)]);
        let mut late = transition("web-primary-5xx", AlarmState::Alarm);
        late.shape = AlarmShape::Sns;
        late.state_change_time = at(16);
        assert_eq!(
            decide_alarm(&plan, &transition("web-primary-5xx", AlarmState::Alarm), &s),
            decide_alarm(&plan, &late, &s)
        );
    }

    #[test]
    fn quorum_of_two() {
        let plan = plan_with(&[("PILOTLIGHT_QUORUM", "2")]);
        let t = transition("web-primary-5xx", AlarmState::Alarm);
        let one = situation(vec![
            live("web-primary-5xx", "ALARM", 15),
            live("web-primary-unhealthy-hosts", "OK", 1),
        ]);
        assert!(skip_reason(decide_alarm(&plan, &t, &one)).contains("quorum not met: 1 of 2"));
        let two = situation(vec![
            live("web-primary-5xx", "ALARM", 15),
            live("web-primary-unhealthy-hosts", "ALARM", 12),
        ]);
        let Verdict::Start { name, input, .. } = decide_alarm(&plan, &t, &two) else {
            panic!()
        };
        // The quorum completes at the later of the two transitions; both alarms name the execution.
        assert_eq!(input.trigger.state_change_time, at(15));
        assert_eq!(
            input.trigger.alarms,
            vec![
                "web-primary-unhealthy-hosts".to_string(),
                "web-primary-5xx".to_string()
            ]
        );
        // The other alarm's delivery converges on the same execution.
        let Verdict::Start { name: other, .. } = decide_alarm(
            &plan,
            &transition("web-primary-unhealthy-hosts", AlarmState::Alarm),
            &two,
        ) else {
            panic!()
        };
        assert_eq!(name, other);
    }

    #[test]
    fn ok_and_insufficient_data_are_ignored() {
        let plan = plan_with(&[]);
        let s = situation(vec![live("web-primary-5xx", "ALARM", 15)]);
        for state in [AlarmState::Ok, AlarmState::InsufficientData] {
            assert!(matches!(
                decide_alarm(&plan, &transition("web-primary-5xx", state), &s),
                Verdict::Ignore { .. }
            ));
        }
    }

    #[test]
    fn an_alarm_that_recovered_since_is_skipped() {
        let plan = plan_with(&[]);
        let s = situation(vec![live("web-primary-5xx", "OK", 16)]);
        assert!(
            skip_reason(decide_alarm(
                &plan,
                &transition("web-primary-5xx", AlarmState::Alarm),
                &s
            ))
            .contains("recovered")
        );
    }

    #[test]
    fn running_execution_cooldown_and_active_dr_block() {
        let plan = plan_with(&[("PILOTLIGHT_COOLDOWN_SECONDS", "1800")]);
        let t = transition("web-primary-5xx", AlarmState::Alarm);
        let mut s = situation(vec![live("web-primary-5xx", "ALARM", 15)]);
        s.executions = vec![RecentExecution {
            name: "failover-x".into(),
            status: "RUNNING".into(),
            started_at: at(1),
        }];
        assert!(skip_reason(decide_alarm(&plan, &t, &s)).contains("already running"));
        s.executions[0].status = "FAILED".into();
        assert!(skip_reason(decide_alarm(&plan, &t, &s)).contains("cooldown"));
        s.now = at(59); // 58 minutes after: past the 30-minute cooldown
        assert!(matches!(decide_alarm(&plan, &t, &s), Verdict::Start { .. }));
        s.active = ActiveSide::Dr;
        assert!(skip_reason(decide_alarm(&plan, &t, &s)).contains("already active"));
        // An interrupted shift (dials in between) is resumed, not refused.
        s.active = ActiveSide::from_dials(50, 50);
        assert!(matches!(decide_alarm(&plan, &t, &s), Verdict::Start { .. }));
        // Unreadable dials do not block.
        s.active = ActiveSide::Unknown {
            reason: "timeout".into(),
        };
        assert!(matches!(decide_alarm(&plan, &t, &s), Verdict::Start { .. }));
    }

    #[test]
    fn rehearsals_and_real_runs_do_not_block_each_other() {
        let plan = plan_with(&[]);
        let t = transition("web-primary-5xx", AlarmState::Alarm);
        let mut s = situation(vec![live("web-primary-5xx", "ALARM", 15)]);
        s.executions = vec![RecentExecution {
            name: "dryrun-failover-x".into(),
            status: "RUNNING".into(),
            started_at: at(14),
        }];
        assert!(matches!(decide_alarm(&plan, &t, &s), Verdict::Start { .. }));
        let dry = plan_with(&[("PILOTLIGHT_DRY_RUN", "true")]);
        assert!(skip_reason(decide_alarm(&dry, &t, &s)).contains("already running"));
        s.executions.clear();
        let Verdict::Start { name, input, .. } = decide_alarm(&dry, &t, &s) else {
            panic!()
        };
        assert!(name.starts_with(DRY_RUN_PREFIX) && input.dry_run);
    }

    #[test]
    fn origin_checks() {
        let plan = plan_with(&[]);
        let mut t = transition("web-primary-5xx", AlarmState::Alarm);
        assert!(check_origin(&plan, &t).is_ok());
        t.account_id = "999999999999".into();
        assert!(
            check_origin(&plan, &t)
                .unwrap_err()
                .message
                .contains("account 999999999999")
        );
        let mut t = transition("web-primary-5xx", AlarmState::Alarm);
        t.region = "us-east-1".into();
        assert!(
            check_origin(&plan, &t)
                .unwrap_err()
                .message
                .contains("region us-east-1")
        );
        let t = transition("someone-elses-alarm", AlarmState::Alarm);
        assert!(
            check_origin(&plan, &t)
                .unwrap_err()
                .message
                .contains("not one of the plan's alarms")
        );
    }

    #[test]
    fn a_command_never_weakens_the_plans_approval() {
        let mut plan = plan_with(&[]);
        let s = situation(vec![]);
        let cmd = |approval: Option<bool>| -> ManualCommand {
            serde_json::from_value(serde_json::json!({"command": "failover", "approval": approval}))
                .unwrap()
        };
        let gate = |plan: &FailoverPlan, c: &ManualCommand| match decide_manual(
            plan,
            c,
            Direction::Failover,
            &s,
        ) {
            Verdict::Start { input, .. } => input.approval,
            other => panic!("{other:?}"),
        };
        plan.approval_required = true;
        plan.pause_on_findings = true;
        let g = gate(&plan, &cmd(Some(false)));
        assert!(g.required && g.pause_on_findings, "{g:?}");
        plan.approval_required = false;
        plan.pause_on_findings = false;
        let g = gate(&plan, &cmd(Some(true)));
        assert!(g.required && g.pause_on_findings, "{g:?}");
        let g = gate(&plan, &cmd(None));
        assert!(!g.required && !g.pause_on_findings, "{g:?}");
        let forced = crate::trigger::parse_trigger(
            &serde_json::json!({"command": "failover", "force": true}),
        )
        .unwrap_err();
        assert!(
            forced.message.contains("allow_stale_ami")
                && forced.message.contains("allow_replica_lag"),
            "{forced}"
        );
    }

    #[test]
    fn manual_commands() {
        let plan = plan_with(&[]);
        let cmd = |command: &str, force: bool| -> ManualCommand {
            serde_json::from_value(
                serde_json::json!({"command": command, "reason": "drill", "overrides": {"allow_active_target": force}}),
            )
            .unwrap()
        };
        let mut s = situation(vec![]);
        // Manual failover ignores quorum and cooldown...
        s.executions = vec![RecentExecution {
            name: "failover-x".into(),
            status: "SUCCEEDED".into(),
            started_at: at(19),
        }];
        let Verdict::Start { name, input, .. } =
            decide_manual(&plan, &cmd("failover", false), Direction::Failover, &s)
        else {
            panic!()
        };
        assert!(name.starts_with("failover-20261129T102000Z-"));
        assert_eq!(
            (input.trigger.source.as_str(), input.mode),
            ("manual", Mode::Ungraceful)
        );
        // ...failback defaults to graceful and is refused when the primary already serves...
        assert!(
            skip_reason(decide_manual(
                &plan,
                &cmd("failback", false),
                Direction::Failback,
                &s
            ))
            .contains("already active")
        );
        let Verdict::Start { input, .. } =
            decide_manual(&plan, &cmd("failback", true), Direction::Failback, &s)
        else {
            panic!()
        };
        assert_eq!(input.mode, Mode::Graceful);
        assert!(input.overrides.allow_active_target);
        // ...and nothing starts while an execution runs, overrides or not.
        s.executions[0].status = "RUNNING".into();
        assert!(
            skip_reason(decide_manual(
                &plan,
                &cmd("failover", true),
                Direction::Failover,
                &s
            ))
            .contains("already running")
        );
    }

    #[test]
    fn same_command_same_minute_same_name() {
        let plan = plan_with(&[]);
        let cmd: ManualCommand =
            serde_json::from_value(serde_json::json!({"command": "failover"})).unwrap();
        let mut s = situation(vec![]);
        let a = decide_manual(&plan, &cmd, Direction::Failover, &s);
        s.now += chrono::Duration::seconds(30);
        let b = decide_manual(&plan, &cmd, Direction::Failover, &s);
        let (Verdict::Start { name: a, .. }, Verdict::Start { name: b, .. }) = (a, b) else {
            panic!()
        };
        assert_eq!(a, b);
    }
}

#[cfg(test)]
mod execution_input_events {
    use super::ExecutionInput;

    #[test]
    fn state_machine_sample_inputs_match_the_contract() {
        for name in [
            "statemachine-failover.json",
            "statemachine-failover-dry-run.json",
        ] {
            let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
            let input: ExecutionInput =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(input.timing.max_polls, 240, "{name}");
        }
    }
}

#[cfg(test)]
mod approval_tests {
    use super::*;
    use crate::plan::tests::reference_vars;
    use crate::trigger::AlarmShape;

    fn plan_with(overrides: &[(&str, &str)]) -> FailoverPlan {
        let mut v = reference_vars();
        for (k, val) in overrides {
            v.insert(k.to_string(), val.to_string());
        }
        FailoverPlan::from_map(&v).unwrap()
    }

    fn situation() -> Situation {
        let now = Utc::now();
        Situation {
            alarms: vec![LiveAlarm {
                name: "web-primary-5xx".into(),
                region: "ap-northeast-1".into(),
                state: "ALARM".into(),
                transitioned_at: Some(now),
            }],
            unknown_alarm_regions: vec![],
            executions_unknown: None,
            executions: vec![],
            active: ActiveSide::Primary,
            now,
        }
    }

    fn input_of(v: Verdict) -> ExecutionInput {
        match v {
            Verdict::Start { input, .. } => input,
            other => panic!("expected a start, got {other:?}"),
        }
    }

    #[test]
    fn alarm_executions_follow_the_plans_approval_setting() {
        let t = AlarmTransition {
            shape: AlarmShape::Sns,
            alarm_name: "web-primary-5xx".into(),
            alarm_arn: None,
            account_id: "123456789012".into(),
            region: "ap-northeast-1".into(),
            state: AlarmState::Alarm,
            state_change_time: Utc::now(),
        };
        assert!(
            !input_of(decide_alarm(&plan_with(&[]), &t, &situation()))
                .approval
                .required
        );
        let gated = plan_with(&[("PILOTLIGHT_APPROVAL", "required")]);
        assert!(
            input_of(decide_alarm(&gated, &t, &situation()))
                .approval
                .required
        );
        let rehearsal = plan_with(&[
            ("PILOTLIGHT_APPROVAL", "required"),
            ("PILOTLIGHT_DRY_RUN", "true"),
        ]);
        assert!(
            !input_of(decide_alarm(&rehearsal, &t, &situation()))
                .approval
                .required
        );
    }

    #[test]
    fn approval_per_command_overrides_the_plan_and_rehearsals_never_wait() {
        let gated = plan_with(&[("PILOTLIGHT_APPROVAL", "required")]);
        let s = situation();
        let required = |plan: &FailoverPlan, v: serde_json::Value| {
            let cmd: ManualCommand = serde_json::from_value(v).unwrap();
            input_of(decide_manual(plan, &cmd, Direction::Failover, &s))
                .approval
                .required
        };
        assert!(required(&gated, serde_json::json!({"command": "failover"})));
        // A command never weakens the plan's approval.
        assert!(required(
            &gated,
            serde_json::json!({"command": "failover", "approval": false})
        ));
        assert!(!required(
            &gated,
            serde_json::json!({"command": "failover", "dry_run": true})
        ));
        assert!(required(
            &plan_with(&[]),
            serde_json::json!({"command": "failover", "approval": true})
        ));
    }
}
