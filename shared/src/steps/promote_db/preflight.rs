//! promote-db `preflight` (docs/guarantees.md): read only, before anything irreversible, everything `prepare`,
//! `catchup` and `start` could refuse. The verdicts are pure ([`check_target_replica`], [`check_lag`],
//! [`check_replica_slot`], [`check_global_member`]); [`preflight`] reads and reports them.
//!
//! * ungraceful failover, RDS: the target instance exists and is an available read replica of the plan's source
//!   instance (or already the writer by pilotlight's recent promotion); its ReplicaLag is fresh (at most
//!   LAG_MAX_AGE_SECONDS old) and within PILOTLIGHT_MAX_REPLICA_LAG_SECONDS.
//! * graceful paths (graceful failover, failback), RDS: what `prepare` would decide for the target slot from the
//!   current writer (the source side) is not a refusal. The lag is the catch-up's business (a post-drain 0).
//! * Aurora: the target cluster is a member of the global cluster and no foreign switch is running; ungraceful
//!   (FailoverGlobalCluster with AllowDataLoss), the target cluster's global database lag (`AuroraGlobalDBRPOLag`,
//!   in the target region) is fresh and within PILOTLIGHT_MAX_REPLICA_LAG_SECONDS, by the same [`check_lag`].

use chrono::{DateTime, Utc};
use serde_json::json;

use super::graceful::{ReplicaVerdict, decide_replica_slot, names_instance};
use super::{
    LAG_WINDOW, ReplicaLagSeen, STEP, Verdict,
    aurora::{decide_global_switch, read_global_lag},
    describe_global_cluster, describe_instance, lag_rule,
    replica::decide_promotion,
};
use crate::aws::cloudwatch::replica_lag;
use crate::aws::rds::InstanceView;
use crate::error::{ErrorKind, Result};
use crate::plan::{DatabasePlan, Direction, Mode};
use crate::preflight::{Check, PreflightSaw};
use crate::runtime::Context;
use crate::step::{Overrides, StepInput, StepReport};

/// The target of an ungraceful failover: an available replica of the plan's source instance, or the writer
/// pilotlight promoted recently (a re-run). Pure.
pub fn check_target_replica(
    target: Option<&InstanceView>,
    target_id: &str,
    source_id: &str,
    source_region: &str,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> Check {
    let limit = json!(format!(
        "an available read replica of {source_id} ({source_region})"
    ));
    let Some(v) = target else {
        return Check::fail(
            "db.replica",
            json!(null),
            limit,
            None,
            overrides,
            format!("DB instance {target_id} not found in the target region"),
        );
    };
    let seen = json!({"instance": v.instance, "status": v.status, "replica_of": v.replica_source, "is_replica": v.is_replica()});
    if v.is_replica()
        && !v
            .replica_source
            .as_deref()
            .is_some_and(|s| names_instance(s, source_id, source_region))
    {
        return Check::fail(
            "db.replica",
            seen,
            limit,
            None,
            overrides,
            format!(
                "{target_id} replicates {}, not the plan's writer {source_id}",
                v.replica_source.as_deref().unwrap_or("unknown")
            ),
        );
    }
    // The lag is its own check: decide as if it were 0.
    let judge = |o: &Overrides| decide_promotion(v, Some(0.0), f64::MAX, Mode::Ungraceful, o, now);
    match judge(&Overrides::default()) {
        Verdict::Refuse(why) => {
            let with = Overrides {
                allow_stale_writer: true,
                ..*overrides
            };
            let name =
                (!matches!(judge(&with), Verdict::Refuse(_))).then_some("allow_stale_writer");
            Check::fail("db.replica", seen, limit, name, overrides, why)
        }
        Verdict::AlreadyWriter => Check::pass(
            "db.replica",
            seen,
            limit,
            format!("{target_id} is already the writer (promoted by this failover)"),
        ),
        // A status that passes on its own (backing-up, modifying, ...): promote-db start/status wait through it.
        Verdict::Wait(why) => Check::warn("db.replica", seen, limit, why),
        Verdict::Promote | Verdict::InProgress(_) => Check::pass(
            "db.replica",
            seen,
            limit,
            format!("{target_id} is a {} read replica of {source_id}", v.status),
        ),
    }
}

/// The lag of an ungraceful promotion: fresh and within the plan's maximum, or accepted by its override. Pure.
pub fn check_lag(lag: &ReplicaLagSeen, max_lag: f64, overrides: &Overrides) -> Check {
    let seen = json!({"metric": lag.metric, "seconds": lag.seconds, "at": lag.at, "age_seconds": lag.age_seconds, "unknown": lag.unknown});
    let limit = json!({"max_seconds": max_lag, "max_age_seconds": lag.max_age_seconds});
    match lag_rule(lag, max_lag, &Overrides::default()) {
        Ok(rule) => Check::pass("db.lag", seen, limit, rule),
        Err(why) => {
            let name = if lag.seconds.is_some() {
                "allow_replica_lag"
            } else {
                "allow_unknown_lag"
            };
            Check::fail("db.lag", seen, limit, Some(name), overrides, why)
        }
    }
}

/// The graceful paths: what `prepare` would decide for the target slot is not a refusal. Pure.
pub fn check_replica_slot(
    writer: &InstanceView,
    slot: Option<&InstanceView>,
    slot_id: &str,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> Check {
    let seen = json!({
        "writer": {"instance": writer.instance, "status": writer.status, "is_replica": writer.is_replica()},
        "slot": slot.map(|s| json!({"instance": s.instance, "status": s.status, "replica_of": s.replica_source})),
    });
    let limit = json!(format!(
        "a replica of {} under {slot_id}, or a slot prepare can fill",
        writer.instance
    ));
    let verdict = |allow| decide_replica_slot(writer, slot, slot_id, allow, now);
    match verdict(false) {
        ReplicaVerdict::Refuse(why) => {
            let name = (!matches!(verdict(true), ReplicaVerdict::Refuse(_)))
                .then_some("allow_stale_writer");
            Check::fail("db.replica", seen, limit, name, overrides, why)
        }
        // Something under way (a status that passes on its own, a replica being created): prepare waits.
        ReplicaVerdict::Pending(why) => Check::warn("db.replica", seen, limit, why),
        v => Check::pass(
            "db.replica",
            seen,
            limit,
            match v {
                ReplicaVerdict::Ready => {
                    format!("{slot_id} is an available replica of {}", writer.instance)
                }
                ReplicaVerdict::Create => format!("{slot_id} is free: prepare creates the replica"),
                ReplicaVerdict::RetireAndCreate { reason, .. } => {
                    format!("prepare retires the stale {slot_id} and creates the replica: {reason}")
                }
                ReplicaVerdict::StartToRetire { reason } => {
                    format!("prepare starts, then retires the fenced {slot_id}: {reason}")
                }
                ReplicaVerdict::Pending(p) => p,
                ReplicaVerdict::Refuse(r) => r,
            },
        ),
    }
}

/// Aurora: the target cluster can take the writer role (member of the global cluster, no foreign switch). Pure.
pub fn check_global_member(
    g: &crate::aws::rds::GlobalClusterView,
    target_arn: &str,
    mode: Mode,
    overrides: &Overrides,
) -> Check {
    let seen = json!({"global_cluster": g.global_cluster, "status": g.status, "members": g.members.iter().map(|m| &m.cluster_arn).collect::<Vec<_>>()});
    let limit = json!(format!("{target_arn} a member of {}", g.global_cluster));
    match decide_global_switch(g, target_arn, mode) {
        Verdict::Refuse(why) => Check::fail("db.global-member", seen, limit, None, overrides, why),
        // A status that passes on its own: promote-db start/status wait through it.
        Verdict::Wait(why) => Check::warn("db.global-member", seen, limit, why),
        _ => Check::pass(
            "db.global-member",
            seen,
            limit,
            format!("{target_arn} is a member of {}", g.global_cluster),
        ),
    }
}

pub(super) async fn preflight(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let report = StepReport::begin(STEP, input);
    let (target, source) = (input.direction.target(), input.direction.source());
    let now = Utc::now();
    let tregion = &ctx.plan.region(target).region;
    let graceful_path = input.direction == Direction::Failback || input.mode == Mode::Graceful;
    let mut checks = Vec::new();
    match &ctx.plan.database {
        DatabasePlan::RdsReplica { .. } => {
            let (tid, sid) = (
                ctx.plan.database.resource(target),
                ctx.plan.database.resource(source),
            );
            let sregion = &ctx.plan.region(source).region;
            let clients = ctx.aws.region(target);
            let found = match describe_instance(
                clients.rds(),
                tregion,
                tid,
                &target.variable("DB_INSTANCE"),
            )
            .await
            {
                Ok(v) => Some(v),
                Err(e) if e.kind == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if graceful_path {
                // The graceful path needs the writer anyway (prepare reads it): an unreachable source is an error
                // (retried), not a finding.
                let writer = describe_instance(
                    ctx.aws.region(source).rds(),
                    sregion,
                    sid,
                    &source.variable("DB_INSTANCE"),
                )
                .await?;
                checks.push(check_replica_slot(
                    &writer,
                    found.as_ref(),
                    tid,
                    &input.overrides,
                    now,
                ));
                if input.direction == Direction::Failback {
                    checks.push(super::fence::check_old_writer(
                        found.as_ref(),
                        &writer,
                        &input.overrides,
                    ));
                }
                checks.push(Check::pass(
                    "db.lag",
                    json!(null),
                    json!("lag 0 after the drain"),
                    if input.mode == Mode::Ungraceful {
                        "forced failback: the replica may not exist yet; its lag is judged at promotion (allow_replica_lag / allow_unknown_lag)"
                    } else {
                        "graceful: the catch-up waits for a lag-0 datapoint taken after the drain"
                    },
                ));
            } else {
                checks.push(check_target_replica(
                    found.as_ref(),
                    tid,
                    sid,
                    sregion,
                    &input.overrides,
                    now,
                ));
                if found.as_ref().is_some_and(|v| v.is_replica()) {
                    let lag = replica_lag(clients.cloudwatch(), tid, now, LAG_WINDOW).await?;
                    checks.push(check_lag(
                        &ReplicaLagSeen::of(lag, now),
                        ctx.plan.max_replica_lag_seconds,
                        &input.overrides,
                    ));
                }
            }
        }
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let target_arn = ctx.plan.database.resource(target);
            let g = describe_global_cluster(ctx.aws.region(target).rds(), tregion, global_cluster)
                .await?;
            checks.push(check_global_member(
                &g,
                target_arn,
                input.mode,
                &input.overrides,
            ));
            if input.mode == Mode::Ungraceful {
                // FailoverGlobalCluster with AllowDataLoss loses what the secondary had not received: the same
                // gate as an RDS replica's ReplicaLag (a forced failback too: the target cluster already exists).
                let lag = read_global_lag(ctx, target, now).await?;
                checks.push(check_lag(
                    &lag,
                    ctx.plan.max_replica_lag_seconds,
                    &input.overrides,
                ));
            } else {
                checks.push(Check::pass(
                    "db.lag",
                    json!(null),
                    json!("RPO 0"),
                    "graceful: SwitchoverGlobalCluster waits for the secondary to catch up (RPO 0)",
                ));
            }
        }
    }
    Ok(PreflightSaw::of(checks).into_report(report, STEP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::cloudwatch::Datapoint;

    use crate::steps::promote_db::replica::tests::{now, replica};

    #[test]
    fn the_target_must_be_an_available_replica_of_the_plans_writer() {
        let none = Overrides::default();
        let ok = check_target_replica(
            Some(&replica()),
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        assert!(ok.passed, "{ok:?}");
        let missing = check_target_replica(
            None,
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        assert!(
            !missing.passed
                && missing.override_name.is_none()
                && missing.message.contains("not found")
        );
        let other = check_target_replica(
            Some(&replica()),
            "web-db-replica",
            "shop-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        assert!(
            !other.passed && other.message.contains("not the plan's writer"),
            "{other:?}"
        );
        let backing_up = InstanceView {
            status: "backing-up".into(),
            ..replica()
        };
        let c = check_target_replica(
            Some(&backing_up),
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        // A backup window is not a refusal: the promotion waits through it.
        assert!(
            c.passed && c.warning && c.message.starts_with("will wait: waiting: web-db-replica"),
            "{c:?}"
        );
        let full = InstanceView {
            status: "storage-full".into(),
            ..replica()
        };
        let c = check_target_replica(
            Some(&full),
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        assert!(
            !c.passed && !c.warning && c.message.contains("storage"),
            "{c:?}"
        );
        // A standalone instance without a promotion record: a stale writer, accepted only by allow_stale_writer.
        let standalone = InstanceView {
            replica_source: None,
            replication_status: None,
            ..replica()
        };
        let c = check_target_replica(
            Some(&standalone),
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &none,
            now(),
        );
        assert!(
            !c.passed && c.override_name.as_deref() == Some("allow_stale_writer"),
            "{c:?}"
        );
        let allow = Overrides {
            allow_stale_writer: true,
            ..none
        };
        let c = check_target_replica(
            Some(&standalone),
            "web-db-replica",
            "web-db",
            "ap-northeast-2",
            &allow,
            now(),
        );
        assert!(c.passed && c.overridden, "{c:?}");
    }

    #[test]
    fn the_lag_must_be_fresh_and_within_the_limit() {
        let none = Overrides::default();
        let at = |s: i64| now() - chrono::TimeDelta::seconds(s);
        let lag = |v: f64, s: i64| {
            ReplicaLagSeen::of(
                Some(Datapoint {
                    value: v,
                    at: at(s),
                }),
                now(),
            )
        };
        let c = check_lag(&lag(2.0, 60), 300.0, &none);
        assert!(c.passed && c.seen["age_seconds"] == 60, "{c:?}");
        let c = check_lag(&lag(0.0, 600), 300.0, &none);
        assert!(
            !c.passed && c.override_name.as_deref() == Some("allow_unknown_lag"),
            "{c:?}"
        );
        assert_eq!(c.limit["max_age_seconds"], 120);
        let c = check_lag(&lag(900.0, 30), 300.0, &none);
        assert!(
            !c.passed && c.override_name.as_deref() == Some("allow_replica_lag"),
            "{c:?}"
        );
        let c = check_lag(
            &lag(900.0, 30),
            300.0,
            &Overrides {
                allow_replica_lag: true,
                ..none
            },
        );
        assert!(c.passed && c.overridden);
        let c = check_lag(
            &ReplicaLagSeen::of(None, now()),
            300.0,
            &Overrides {
                allow_unknown_lag: true,
                ..none
            },
        );
        assert!(c.passed && c.overridden);
    }

    #[test]
    fn a_slot_prepare_can_fill_passes_and_an_unclear_writer_needs_allow_stale_writer() {
        let writer = InstanceView {
            instance: "web-db".into(),
            region: "ap-northeast-2".into(),
            replica_source: None,
            replication_status: None,
            promote_requested_at: None,
            ..replica()
        };
        let none = Overrides::default();
        assert!(check_replica_slot(&writer, None, "web-db-replica", &none, now()).passed);
        assert!(
            check_replica_slot(&writer, Some(&replica()), "web-db-replica", &none, now()).passed
        );
        let stale = InstanceView {
            replica_source: None,
            replication_status: None,
            ..replica()
        };
        let c = check_replica_slot(&writer, Some(&stale), "web-db-replica", &none, now());
        assert!(
            !c.passed && c.override_name.as_deref() == Some("allow_stale_writer"),
            "{c:?}"
        );
        // The writer in its backup window: prepare waits, a warning.
        let backing_up = InstanceView {
            status: "backing-up".into(),
            ..writer
        };
        let c = check_replica_slot(&backing_up, None, "web-db-replica", &none, now());
        assert!(
            c.passed && c.warning && c.message.contains("backing-up"),
            "{c:?}"
        );
    }
}
