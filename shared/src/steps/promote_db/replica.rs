//! promote-db for an RDS cross-region read replica: decide from the replica's state and lag
//! ([`decide_promotion`], pure), then record the promotion on the instance and call PromoteReadReplica.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::instance_status::{
    StatusClass, classify, is_not_yet, is_transient, refusal_hint, waiting,
};
use super::promoted::{PromotedSaw, make_production_ready};
use super::{
    AVAILABLE, LAG_MAX_AGE_SECONDS, LAG_WINDOW, PROMOTE_REQUESTED_TAG, PROMOTED_INSTANCE_TAG,
    RPO_TAG, ReplicaLagSeen, STEP, SourcePeek, Verdict, describe_instance, hint, lag_rule,
    peek_source_instance,
};
use crate::aws::cloudwatch::{Datapoint, replica_lag};
use crate::aws::rds::{InstanceView, add_tags, promote_read_replica};
use crate::error::{Error, Result};
use crate::plan::{DbSidePlan, Mode};
use crate::runtime::Context;
use crate::step::{Action, Overrides, StepInput, StepReport};
use crate::timestamp::rfc3339;

/// A ReplicaLag datapoint as an RPO estimate at `now`: None when the lag cannot be known (no datapoint, one older
/// than LAG_MAX_AGE_SECONDS, or RDS's -1 while replication is not running).
pub fn lag_estimate(lag: Option<Datapoint>, now: DateTime<Utc>) -> Option<f64> {
    ReplicaLagSeen::of(lag, now).seconds
}

/// Whether a promotion pilotlight asked for is in its last documented state before the instance is writable:
/// AWS ends a promotion with a reboot (`modifying` -> `rebooting` -> `available`), so `rebooting` means the next
/// poll should come soon (adaptive polling, [`crate::step::poll_soon_seconds`]).
pub fn promotion_near_completion(v: &InstanceView) -> bool {
    v.promotion_record().is_some() && v.status == "rebooting"
}

/// Decides what `start` does with an RDS instance. `lag` is the fresh ReplicaLag (None = unknown).
///
/// Ungraceful: a lag above the plan's maximum needs `allow_replica_lag`, an unknown lag `allow_unknown_lag` (the
/// preflight found it first and the run paused for them: [`lag_rule`]). Graceful promises no data loss: a known
/// lag above 0 needs `allow_replica_lag` (the catch-up loop waited for a post-drain 0 first, so this is a safety
/// net); an unknown lag right after that catch-up is left to it.
pub fn decide_promotion(
    v: &InstanceView,
    lag: Option<f64>,
    max_lag: f64,
    mode: Mode,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> Verdict {
    let id = &v.instance;
    let status = v.status.as_str();
    if v.is_replica() {
        let source = v.replica_source.as_deref().unwrap_or_default();
        return match status {
            AVAILABLE => match lag {
                Some(l) if l > 0.0 && mode == Mode::Graceful && !overrides.allow_replica_lag => {
                    Verdict::Refuse(format!(
                        "read replica {id} lags {l}s behind {source}; a graceful promotion loses no writes, so it waits \
                     for a lag of 0: stop the writes (shift-traffic drain) and run promote-db catchup until it \
                     reports 0, or re-run with the override allow_replica_lag to accept the loss"
                    ))
                }
                Some(l) if l > max_lag && !overrides.allow_replica_lag => Verdict::Refuse(format!(
                    "read replica {id} lags {l}s behind {source}, above the plan's maximum of {max_lag}s \
                     (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS): promoting now would lose about {l}s of writes. Wait for \
                     the ReplicaLag metric to fall, or re-run with the override allow_replica_lag to accept the loss"
                )),
                None if mode == Mode::Ungraceful && !overrides.allow_unknown_lag => {
                    Verdict::Refuse(format!(
                        "the replica lag of {id} is unknown (no ReplicaLag datapoint younger than \
                     {LAG_MAX_AGE_SECONDS} s, or replication not running): the data loss of promoting now cannot be \
                     stated. Re-run with the override allow_unknown_lag to accept it"
                    ))
                }
                _ => Verdict::Promote,
            },
            s if is_transient(s) && v.promotion_record().is_some() => Verdict::InProgress(format!(
                "promotion of {id} requested; status {s}, still a replica of {source}: waiting for it to finish \
                     (or, if AWS did not take the request, for available to ask again)"
            )),
            s if is_transient(s) => {
                Verdict::Wait(waiting(id, &v.region, s, "promote-db promotes it"))
            }
            s => Verdict::Refuse(format!(
                "read replica {id} is {s}, a status from which it cannot be promoted ({}): check the instance and \
                 its events in the RDS console ({})",
                refusal_hint(s),
                v.region
            )),
        };
    }
    // Standalone (or promoted, with a lingering source field).
    if !v.promotion_recorded_since(now) && !overrides.allow_stale_writer {
        let record = match (v.promotion_record(), v.promote_requested_at) {
            (Some(t), _) => format!(
                "its promotion record ({PROMOTE_REQUESTED_TAG}={}) is from an earlier failover",
                rfc3339(t, SecondsFormat::Secs)
            ),
            (None, Some(t)) => format!(
                "its promotion record ({PROMOTE_REQUESTED_TAG}={}) was copied from another instance ({})",
                rfc3339(t, SecondsFormat::Secs),
                v.promoted_instance
                    .as_deref()
                    .unwrap_or("older than this one")
            ),
            (None, None) => "pilotlight has not promoted it".to_string(),
        };
        return Verdict::Refuse(format!(
            "DB instance {id} in {} is not a read replica and is not known to be the writer: {record}. It may be a \
             former primary with stale data; re-create it as a read replica of the current writer before moving \
             traffic to it. If an operator promoted it for this failover, re-run with the override allow_stale_writer",
            v.region
        ));
    }
    match classify(status) {
        StatusClass::Available => Verdict::AlreadyWriter,
        // A promotion ends with a reboot and an automated backup.
        StatusClass::Transient => Verdict::InProgress(format!(
            "{id} is no longer a replica; status {status}, waiting for available"
        )),
        StatusClass::Refusal => Verdict::Refuse(format!(
            "DB instance {id} is {status}: it cannot take writes ({}). Check the instance and its events in the RDS \
             console ({})",
            refusal_hint(status),
            v.region
        )),
    }
}

/// What promote-db saw of an RDS replica before promoting it; `start` adds the lag, the source side (graceful) and
/// its decision.
#[derive(Serialize)]
struct PromotionSaw<'a> {
    database: &'static str,
    target: &'a InstanceView,
    writable: bool,
    is_replica: bool,
    /// Why a promotion record on the instance is ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    note_record: Option<String>,
    /// Why a lingering replication source does not make it a replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_lag: Option<ReplicaLagSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_replica_lag_seconds: Option<f64>,
    /// Which rule let the lag through (the RPO basis), or why none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    rpo_rule: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    overrides: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourcePeek>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
    /// Production-ready after promotion (the plan's class / Multi-AZ): see [`super::promoted`].
    #[serde(skip_serializing_if = "Option::is_none")]
    promoted: Option<PromotedSaw>,
}

/// The target is the writer: its RPO is the one recorded at the promotion, and it is made production-ready (the
/// plan's class / Multi-AZ, asked once, not waited for: [`super::promoted`]); done.
async fn finish_as_writer(
    rds: &aws_sdk_rds::Client,
    input: &StepInput,
    want: &DbSidePlan,
    variable_prefix: &str,
    saw: &mut PromotionSaw<'_>,
    mut report: StepReport,
    what: String,
) -> StepReport {
    report.rpo_seconds = saw.target.recorded_rpo_seconds();
    saw.promoted = make_production_ready(
        rds,
        saw.target,
        want,
        variable_prefix,
        input.dry_run,
        &mut report,
    )
    .await;
    let note = saw
        .promoted
        .as_ref()
        .map(|p| p.summary(input.dry_run))
        .unwrap_or_default();
    report.record_saw(&*saw);
    report.finish(true, format!("{what}{note}"))
}

/// `start` and `status` of an RDS promotion. `status` is start's continuation (the flow's StartThenStatus loop):
/// while the target is not writable it observes and decides exactly as `start` does — so a promotion that `start`
/// could not ask for yet (the replica was backing-up, or AWS answered InvalidDBInstanceState) is asked for by the
/// first `status` that finds the replica available, under the same lag rule and overrides. Asking twice is
/// prevented by the promotion record: a replica whose promotion runs shows a transient status with the record
/// (in progress, nothing sent). Once the target is writable, the call makes it production-ready (the plan's class
/// and Multi-AZ, [`super::promoted`]) and is done.
pub(super) async fn promote_replica(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let target = input.direction.target();
    let region = &ctx.plan.region(target).region;
    let instance = ctx.plan.database.resource(target);
    let clients = ctx.aws.region(target);
    let mut report = StepReport::begin(STEP, input);
    let now = Utc::now();
    let action = input.action.as_str();
    let want = &ctx.plan.region(target).db;
    let variable_prefix = format!("PILOTLIGHT_{}", target.as_str().to_ascii_uppercase());

    let view = describe_instance(
        clients.rds(),
        region,
        instance,
        &target.variable("DB_INSTANCE"),
    )
    .await?;
    let mut saw = PromotionSaw {
        database: "rds-replica",
        target: &view,
        writable: view.writable(),
        is_replica: view.is_replica(),
        note_record: None,
        note: None,
        replica_lag: None,
        max_replica_lag_seconds: None,
        rpo_rule: None,
        overrides: input.overrides.granted(),
        source: None,
        decision: None,
        promoted: None,
    };
    if view.promote_requested_at.is_some() && view.promotion_record().is_none() {
        saw.note_record = Some(format!(
            "{PROMOTE_REQUESTED_TAG} was copied from another instance ({PROMOTED_INSTANCE_TAG}={}, instance created {}): ignored",
            view.promoted_instance.as_deref().unwrap_or("absent"),
            view.created_at
                .map(|t| rfc3339(t, SecondsFormat::Secs))
                .unwrap_or_default()
        ));
    }
    if !view.is_replica() && view.replica_source.is_some() {
        saw.note = Some(
            "ReadReplicaSourceDBInstanceIdentifier is still set, but the promotion was recorded and AWS reports no \
             read-replication status: treated as promoted (AWS clears the field when a promotion finishes; moto never does)",
        );
    }

    if input.action == Action::Status && view.writable() {
        let what =
            format!("{instance} in {region} is writable (status available, not a read replica)");
        return Ok(finish_as_writer(
            clients.rds(),
            input,
            want,
            &variable_prefix,
            &mut saw,
            report,
            what,
        )
        .await);
    }

    // The lag only matters (and is only reported) while the instance is still a replica that could be promoted now
    // (start always reads it: its report states the RPO basis even when it waits).
    let lag = if view.is_replica() && (input.action == Action::Start || view.status == AVAILABLE) {
        replica_lag(clients.cloudwatch(), instance, now, LAG_WINDOW).await?
    } else {
        None
    };
    let seen = ReplicaLagSeen::of(lag, now);
    let estimate = seen.seconds;
    if view.is_replica() && (input.action == Action::Start || view.status == AVAILABLE) {
        saw.rpo_rule = Some(
            match (
                input.mode,
                lag_rule(&seen, ctx.plan.max_replica_lag_seconds, &input.overrides),
            ) {
                (Mode::Graceful, _) if estimate == Some(0.0) => {
                    "graceful: lag 0 after the drain (catch-up)".to_string()
                }
                (Mode::Graceful, _) => {
                    "graceful: the catch-up waited for a post-drain lag of 0".to_string()
                }
                (Mode::Ungraceful, Ok(rule)) => rule,
                (Mode::Ungraceful, Err(why)) => format!("refused: {why}"),
            },
        );
        saw.replica_lag = Some(seen);
        saw.max_replica_lag_seconds = Some(ctx.plan.max_replica_lag_seconds);
    }
    if input.mode == Mode::Graceful && input.action == Action::Start {
        saw.source = Some(peek_source_instance(ctx, input.direction.source()).await);
    }

    let verdict = decide_promotion(
        &view,
        estimate,
        ctx.plan.max_replica_lag_seconds,
        input.mode,
        &input.overrides,
        now,
    );
    saw.decision = Some(verdict.name());
    match verdict {
        Verdict::Refuse(reason) => {
            report.record_saw(&saw);
            Err(Error::refused(format!("{STEP}: {action}: {reason}")))
        }
        Verdict::Wait(reason) => {
            // Not yet: polled by the state machine (dry-run never waits, docs/contract.md).
            report.record_saw(&saw);
            Ok(if input.dry_run {
                report.finish(true, format!("dry-run: would wait: {reason}"))
            } else {
                report.finish(false, reason)
            })
        }
        Verdict::AlreadyWriter => {
            // start on a re-run: the flow moves on without a status call, so production-ready is made here too.
            let what = format!(
                "{instance} in {region} is already the writer (available, not a read replica)"
            );
            Ok(finish_as_writer(
                clients.rds(),
                input,
                want,
                &variable_prefix,
                &mut saw,
                report,
                what,
            )
            .await)
        }
        Verdict::InProgress(reason) => {
            report.rpo_seconds = view.recorded_rpo_seconds();
            report.record_saw(&saw);
            let report = report.finish(input.dry_run, reason);
            Ok(if promotion_near_completion(&view) {
                report.poll_soon(ctx.plan.timing.poll_seconds)
            } else {
                report
            })
        }
        Verdict::Promote => {
            // Milliseconds: the record is compared with InstanceCreateTime (see InstanceView::promotion_record), and a
            // promotion may follow a replica's creation within a second.
            let requested_at = rfc3339(now, SecondsFormat::Millis);
            let rpo = estimate
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unknown".to_string());
            report.rpo_seconds = estimate;
            report.change(
                &view.arn,
                "tags (AddTagsToResource)",
                json!({ PROMOTE_REQUESTED_TAG: view.promote_requested_at.map(|t| rfc3339(t, SecondsFormat::Millis)), RPO_TAG: view.recorded_rpo, PROMOTED_INSTANCE_TAG: view.arn }),
                json!({ PROMOTE_REQUESTED_TAG: requested_at, RPO_TAG: rpo, PROMOTED_INSTANCE_TAG: view.arn }),
            );
            report.change(
                &view.arn,
                "PromoteReadReplica: ReadReplicaSourceDBInstanceIdentifier",
                json!(view.replica_source),
                Value::Null,
            );
            let lag_note = match estimate {
                Some(l) if l > ctx.plan.max_replica_lag_seconds => {
                    format!("replica lag {l}s above the maximum, accepted by allow_replica_lag")
                }
                Some(l) => format!("replica lag {l}s"),
                None if input.mode == Mode::Ungraceful => {
                    "replica lag unknown, accepted by allow_unknown_lag".to_string()
                }
                None => "replica lag unknown".to_string(),
            };
            if input.dry_run {
                // What would follow the promotion, judged on the replica as it is now.
                saw.promoted = make_production_ready(
                    clients.rds(),
                    &view,
                    want,
                    &variable_prefix,
                    true,
                    &mut report,
                )
                .await;
                let note = saw
                    .promoted
                    .as_ref()
                    .map(|p| p.summary(true))
                    .unwrap_or_default();
                report.record_saw(&saw);
                return Ok(report.finish(
                    true,
                    format!(
                        "dry-run: would promote read replica {instance} in {region} ({lag_note}){note}"
                    ),
                ));
            }
            report.record_saw(&saw);
            // Record first (see the module documentation), then promote.
            add_tags(
                clients.rds(),
                &view.arn,
                &[
                    (PROMOTE_REQUESTED_TAG, &requested_at),
                    (RPO_TAG, &rpo),
                    (PROMOTED_INSTANCE_TAG, &view.arn),
                ],
            )
            .await
            .map_err(|e| {
                hint(
                    e,
                    "check the promote-db role's rds:AddTagsToResource permission",
                )
            })?;
            if let Err(e) = promote_read_replica(clients.rds(), instance).await {
                if !is_not_yet(&e) {
                    return Err(hint(
                        e,
                        format!(
                            "check read replica {instance} in {region} in the RDS console and the promote-db role's rds:PromoteReadReplica permission"
                        ),
                    ));
                }
                // The state changed since it was read (a backup started): not yet. The next status re-reads it and
                // asks again once it is available (on AWS the replica keeps its read-replication status info, so
                // the record alone does not make it look promoted).
                if let Some(c) = report.changes.last_mut() {
                    c.applied = false;
                }
                return Ok(report.finish(
                    false,
                    format!(
                        "waiting: AWS did not take the promotion of {instance} in {region} yet ({}): the instance \
                         changed state since it was read; status asks again once it is available",
                        e.message
                    ),
                ));
            }
            Ok(report.finish(false, format!("promotion of read replica {instance} in {region} requested by {action} ({lag_note}); poll status until writable")))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::steps::promote_db) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A healthy cross-region replica as AWS shows it.
    pub(in crate::steps::promote_db) fn replica() -> InstanceView {
        InstanceView {
            instance: "web-db-replica".into(),
            arn: "arn:aws:rds:ap-northeast-1:123456789012:db:web-db-replica".into(),
            region: "ap-northeast-1".into(),
            status: "available".into(),
            replica_source: Some("arn:aws:rds:ap-northeast-2:123456789012:db:web-db".into()),
            replicas: vec![],
            replication_status: Some("replicating".into()),
            promote_requested_at: None,
            recorded_rpo: None,
            promoted_instance: None,
            created_at: Some(now() - chrono::TimeDelta::days(30)),
            instance_class: Some("db.r6g.large".into()),
            subnet_group: Some("web-db-dr".into()),
            security_groups: vec!["sg-0123".into()],
            storage_encrypted: false,
            kms_key_id: None,
            settings: Default::default(),
        }
    }

    /// `force`: every override that promote-db knows (the old `force`).
    fn all(force: bool) -> Overrides {
        Overrides {
            allow_replica_lag: force,
            allow_unknown_lag: force,
            allow_stale_writer: force,
            ..Overrides::default()
        }
    }

    fn decide(v: &InstanceView, lag: Option<f64>, force: bool) -> Verdict {
        decide_promotion(v, lag, 300.0, Mode::Ungraceful, &all(force), now())
    }

    /// Adaptive polling: only the promotion's reboot (its last documented state) asks for a sooner poll; a replica
    /// rebooting without our promotion record, or one still modifying, does not.
    #[test]
    fn only_a_promotion_rebooting_is_near_completion() {
        let promoting = |status: &str| InstanceView {
            status: status.into(),
            promote_requested_at: Some(now()),
            ..replica()
        };
        assert!(promotion_near_completion(&promoting("rebooting")));
        assert!(!promotion_near_completion(&promoting("modifying")));
        assert!(!promotion_near_completion(&promoting("available")));
        let unrecorded = InstanceView {
            status: "rebooting".into(),
            ..replica()
        };
        assert!(!promotion_near_completion(&unrecorded));
    }

    #[test]
    fn available_replica_within_lag_is_promoted() {
        assert_eq!(decide(&replica(), Some(12.0), false), Verdict::Promote);
    }

    #[test]
    fn unknown_lag_needs_allow_unknown_lag_and_a_stale_datapoint_is_unknown() {
        assert!(
            matches!(decide(&replica(), None, false), Verdict::Refuse(r) if r.contains("allow_unknown_lag"))
        );
        let unknown_only = Overrides {
            allow_unknown_lag: true,
            ..Overrides::default()
        };
        assert_eq!(
            decide_promotion(
                &replica(),
                None,
                300.0,
                Mode::Ungraceful,
                &unknown_only,
                now()
            ),
            Verdict::Promote
        );
        // ...but that override does not accept a known lag above the maximum.
        assert!(matches!(
            decide_promotion(&replica(), Some(900.0), 300.0, Mode::Ungraceful, &unknown_only, now()),
            Verdict::Refuse(r) if r.contains("allow_replica_lag")
        ));
        // RDS reports -1 when replication is not running: unknown, not "no lag".
        let at = |secs_ago: i64| now() - chrono::TimeDelta::seconds(secs_ago);
        assert_eq!(
            lag_estimate(
                Some(Datapoint {
                    value: -1.0,
                    at: now()
                }),
                now()
            ),
            None
        );
        assert_eq!(
            lag_estimate(
                Some(Datapoint {
                    value: 3.5,
                    at: at(60)
                }),
                now()
            ),
            Some(3.5)
        );
        assert_eq!(
            lag_estimate(
                Some(Datapoint {
                    value: 0.0,
                    at: at(120)
                }),
                now()
            ),
            Some(0.0)
        );
        // A pre-outage 0 older than two periods is not an RPO of 0.
        let stale = ReplicaLagSeen::of(
            Some(Datapoint {
                value: 0.0,
                at: at(121),
            }),
            now(),
        );
        assert_eq!((stale.seconds, stale.age_seconds), (None, Some(121)));
        assert!(
            stale.unknown.as_deref().unwrap().contains("121 s old"),
            "{stale:?}"
        );
        assert!(
            lag_rule(&stale, 300.0, &Overrides::default())
                .unwrap_err()
                .contains("allow_unknown_lag")
        );
        assert!(
            lag_rule(&stale, 300.0, &unknown_only)
                .unwrap()
                .contains("accepted by allow_unknown_lag")
        );
        let fresh = ReplicaLagSeen::of(
            Some(Datapoint {
                value: 2.0,
                at: at(30),
            }),
            now(),
        );
        assert!(
            lag_rule(&fresh, 300.0, &Overrides::default())
                .unwrap()
                .contains("within the plan's maximum")
        );
        let high = ReplicaLagSeen::of(
            Some(Datapoint {
                value: 900.0,
                at: at(30),
            }),
            now(),
        );
        assert!(
            lag_rule(&high, 300.0, &Overrides::default())
                .unwrap_err()
                .contains("allow_replica_lag")
        );
        assert_eq!(lag_estimate(None, now()), None);
    }

    #[test]
    fn lag_above_the_maximum_is_refused_unless_forced() {
        match decide(&replica(), Some(900.0), false) {
            Verdict::Refuse(r) => assert!(
                r.contains("900s") && r.contains("300s") && r.contains("allow_replica_lag"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(decide(&replica(), Some(900.0), true), Verdict::Promote);
    }

    // Every documented status through the promotion decision (the faultproxy's db-status mode shows backing-up
    // end to end: tests/promote_db.rs).
    #[test]
    fn a_replica_in_a_transient_status_waits_and_one_in_a_refusal_status_is_refused() {
        use crate::steps::promote_db::instance_status::{REFUSALS, TRANSIENT};
        for s in TRANSIENT {
            let v = InstanceView {
                status: (*s).into(),
                ..replica()
            };
            // Even a forced run waits: an override accepts a risk, it does not make AWS promote a busy replica.
            for force in [false, true] {
                match decide(&v, Some(1.0), force) {
                    Verdict::Wait(r) => assert!(
                        r.starts_with(&format!("waiting: web-db-replica in ap-northeast-1 is {s}")),
                        "{r}"
                    ),
                    other => panic!("{s}: {other:?}"),
                }
            }
            // With a promotion record it is the promotion running (AWS: modifying -> rebooting -> available).
            let requested = InstanceView {
                promote_requested_at: Some(now()),
                ..v
            };
            assert!(
                matches!(decide(&requested, None, false), Verdict::InProgress(_)),
                "{s}"
            );
        }
        for s in REFUSALS.iter().chain(&["something-new"]) {
            let v = InstanceView {
                status: (*s).into(),
                ..replica()
            };
            assert!(
                matches!(decide(&v, Some(1.0), true), Verdict::Refuse(r) if r.contains(s) && r.contains("cannot be promoted")),
                "{s}"
            );
        }
    }

    #[test]
    fn requested_promotion_on_aws_is_in_progress_until_available_and_standalone() {
        // AWS: modifying -> rebooting -> available, source cleared at the end.
        let requested = InstanceView {
            promote_requested_at: Some(now()),
            ..replica()
        };
        for s in ["modifying", "rebooting"] {
            let v = InstanceView {
                status: s.into(),
                ..requested.clone()
            };
            assert!(
                matches!(decide(&v, None, false), Verdict::InProgress(_)),
                "{s}"
            );
            assert!(!v.writable());
        }
        let finishing = InstanceView {
            status: "backing-up".into(),
            replica_source: None,
            replication_status: None,
            ..requested.clone()
        };
        assert!(matches!(
            decide(&finishing, None, false),
            Verdict::InProgress(_)
        ));
        assert!(!finishing.writable());
        let done = InstanceView {
            replica_source: None,
            replication_status: None,
            ..requested
        };
        assert!(done.writable());
        assert_eq!(decide(&done, None, false), Verdict::AlreadyWriter);
    }

    #[test]
    fn a_record_without_a_finished_promotion_promotes_again_on_aws() {
        // Tagged, but PromoteReadReplica failed: AWS still reports the replication status, so it is a replica.
        let v = InstanceView {
            promote_requested_at: Some(now()),
            ..replica()
        };
        assert!(v.is_replica());
        assert!(!v.writable());
        assert_eq!(decide(&v, Some(1.0), false), Verdict::Promote);
    }

    #[test]
    fn emulator_lingering_source_with_a_record_and_no_replication_status_is_writable() {
        // moto: the source field stays after PromoteReadReplica and StatusInfos is never reported.
        let v = InstanceView {
            promote_requested_at: Some(now()),
            replication_status: None,
            ..replica()
        };
        assert!(!v.is_replica());
        assert!(v.writable());
        assert_eq!(decide(&v, None, false), Verdict::AlreadyWriter);
        // Without the record the same fields are a replica (moto never reports StatusInfos for replicas either).
        let unpromoted = InstanceView {
            replication_status: None,
            ..replica()
        };
        assert!(unpromoted.is_replica());
        assert_eq!(decide(&unpromoted, Some(1.0), false), Verdict::Promote);
    }

    #[test]
    fn standalone_without_a_recent_record_is_refused_unless_forced() {
        let standalone = InstanceView {
            replica_source: None,
            replication_status: None,
            ..replica()
        };
        match decide(&standalone, None, false) {
            Verdict::Refuse(r) => assert!(
                r.contains("not a read replica") && r.contains("stale"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
        // Even when it lists replicas: that list may be stale on a former primary.
        let listed = InstanceView {
            replicas: vec!["arn:aws:rds:ap-northeast-1:123456789012:db:x".into()],
            ..standalone.clone()
        };
        assert!(matches!(decide(&listed, None, false), Verdict::Refuse(_)));
        let old = InstanceView {
            promote_requested_at: Some(now() - chrono::TimeDelta::days(3)),
            ..standalone.clone()
        };
        assert!(
            matches!(decide(&old, None, false), Verdict::Refuse(r) if r.contains("earlier failover"))
        );
        assert_eq!(decide(&standalone, None, true), Verdict::AlreadyWriter);
        let stopped = InstanceView {
            status: "stopped".into(),
            promote_requested_at: Some(now()),
            ..standalone
        };
        assert!(
            matches!(decide(&stopped, None, false), Verdict::Refuse(r) if r.contains("stopped"))
        );
    }

    #[test]
    fn graceful_refuses_any_known_lag_unless_forced_and_unknown_lag_is_left_to_catchup() {
        let graceful = |lag, force| {
            decide_promotion(&replica(), lag, 300.0, Mode::Graceful, &all(force), now())
        };
        assert!(
            matches!(graceful(Some(1.0), false), Verdict::Refuse(r) if r.contains("lags 1s") && r.contains("catchup") && r.contains("allow_replica_lag"))
        );
        assert_eq!(graceful(Some(0.0), false), Verdict::Promote);
        assert_eq!(graceful(Some(1.0), true), Verdict::Promote);
        assert_eq!(graceful(None, false), Verdict::Promote);
        // Ungraceful keeps the plan's maximum.
        assert_eq!(decide(&replica(), Some(1.0), false), Verdict::Promote);
    }

    #[test]
    fn a_promotion_record_older_than_the_instance_was_copied_from_its_source() {
        // A replica created an hour ago from a writer promoted yesterday (moto copies the writer's tags onto it).
        let copied = InstanceView {
            promote_requested_at: Some(now() - chrono::TimeDelta::days(1)),
            recorded_rpo: Some("3".into()),
            replication_status: None,
            created_at: Some(now() - chrono::TimeDelta::hours(1)),
            ..replica()
        };
        assert_eq!(copied.promotion_record(), None);
        assert!(copied.is_replica());
        assert_eq!(copied.recorded_rpo_seconds(), None);
        assert_eq!(decide(&copied, Some(1.0), false), Verdict::Promote);
        let standalone = InstanceView {
            replica_source: None,
            ..copied
        };
        assert!(
            matches!(decide(&standalone, None, false), Verdict::Refuse(r) if r.contains("copied from another instance"))
        );
        // moto also copies InstanceCreateTime: the record names the instance it was written on.
        let moto_copy = InstanceView {
            promote_requested_at: Some(now() - chrono::TimeDelta::hours(1)),
            promoted_instance: Some("arn:aws:rds:ap-northeast-2:123456789012:db:web-db".into()),
            created_at: Some(now() - chrono::TimeDelta::days(30)),
            ..standalone.clone()
        };
        assert_eq!(moto_copy.promotion_record(), None);
        let own_arn = InstanceView {
            promoted_instance: Some(moto_copy.arn.clone()),
            ..moto_copy
        };
        assert!(own_arn.promotion_record().is_some());
        // Its own promotion, milliseconds after it was created, counts (the record has millisecond precision).
        let created = now() - chrono::TimeDelta::milliseconds(1500);
        let own = InstanceView {
            created_at: Some(created + chrono::TimeDelta::microseconds(700)),
            promote_requested_at: DateTime::parse_from_rfc3339(&rfc3339(
                created + chrono::TimeDelta::milliseconds(3),
                SecondsFormat::Millis,
            ))
            .ok()
            .map(|t| t.with_timezone(&Utc)),
            replication_status: None,
            ..replica()
        };
        assert!(own.promotion_record().is_some());
        assert!(own.writable());
    }

    #[test]
    fn recorded_rpo_reads_back() {
        let v = InstanceView {
            recorded_rpo: Some("12.5".into()),
            ..replica()
        };
        assert_eq!(v.recorded_rpo_seconds(), Some(12.5));
        let v = InstanceView {
            recorded_rpo: Some("unknown".into()),
            ..replica()
        };
        assert_eq!(v.recorded_rpo_seconds(), None);
    }
}
