//! promote-db for an Aurora global database: SwitchoverGlobalCluster (graceful) or FailoverGlobalCluster with
//! AllowDataLoss (ungraceful), decided by [`decide_global_switch`] (pure) from the global cluster's state.
//!
//! An ungraceful failover loses what the secondary had not received yet, so it is gated on the secondary's lag as
//! an RDS replica's promotion is on ReplicaLag: the newest `AuroraGlobalDBRPOLag` datapoint of the target cluster,
//! read in the target region ([`global_lag_seen`], falling back to `AuroraGlobalDBReplicationLag`), counts only
//! when at most LAG_MAX_AGE_SECONDS old, and [`lag_rule`] (the replica path's rule) lets it through within the
//! plan's maximum or with `allow_replica_lag` / `allow_unknown_lag`. The preflight checks it first; `start` checks
//! it again, since the lag may have changed during an approval wait.
//!
//! Wait, don't fail (docs/guarantees.md section 8): a global cluster in a status that passes on its own (modifying,
//! upgrading, ..., [`classify_cluster`]) before a graceful switchover, and AWS's `InvalidDBClusterStateFault` /
//! `InvalidGlobalClusterStateFault` answer to the switch call, are a "not yet": `done: false` ("waiting: ..."),
//! nothing changed, and the state machine's poll loop calls `status`. `status` is start's continuation: until the
//! target is the writer it decides exactly as `start` does (lag gate included), so it asks for the switch itself
//! once the state clears. Asking twice is prevented by the global cluster's own record of a requested switch, its
//! `FailoverState` (pending / switching-over / failing-over to the target: in progress, nothing sent).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::instance_status::{
    StatusClass, classify_cluster, is_not_yet, refusal_hint, waiting_for,
};
use super::{
    AVAILABLE, LAG_WINDOW, ReplicaLagSeen, RpoBasis, STEP, Verdict, describe_global_cluster, hint,
    lag_rule,
};
use crate::aws::cloudwatch::{AURORA_REPLICATION_LAG, AURORA_RPO_LAG, GlobalDbLag, global_db_lag};
use crate::aws::rds::{GlobalClusterView, failover_global_cluster, switchover_global_cluster};
use crate::error::{Error, Result};
use crate::plan::{Mode, Side};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

/// The cluster identifier of a cluster ARN (`arn:aws:rds:<region>:<account>:cluster:<id>`): the metrics'
/// `DBClusterIdentifier`. Pure.
pub fn cluster_identifier(arn: &str) -> &str {
    arn.rsplit_once(":cluster:").map_or(arn, |(_, id)| id)
}

/// The secondary's lag as the reports show it. `AuroraGlobalDBRPOLag` is the RPO itself (how long a commit on the
/// primary takes to be stored on this secondary) and is preferred; when it has no fresh datapoint,
/// `AuroraGlobalDBReplicationLag` (the storage replication's lag) stands in. Neither fresh: unknown, saying why for
/// both. Pure.
pub fn global_lag_seen(lag: GlobalDbLag, now: DateTime<Utc>) -> ReplicaLagSeen {
    let rpo = ReplicaLagSeen::of_metric(AURORA_RPO_LAG, lag.rpo_lag, now);
    if rpo.seconds.is_some() {
        return rpo;
    }
    let replication = ReplicaLagSeen::of_metric(AURORA_REPLICATION_LAG, lag.replication_lag, now);
    if replication.seconds.is_some() {
        return replication;
    }
    ReplicaLagSeen {
        unknown: Some(format!(
            "{}; {}",
            rpo.unknown.as_deref().unwrap_or_default(),
            replication.unknown.as_deref().unwrap_or_default()
        )),
        ..rpo
    }
}

/// Reads the global database lag of `side`'s member cluster, in that side's region.
pub(super) async fn read_global_lag(
    ctx: &Context,
    side: Side,
    now: DateTime<Utc>,
) -> Result<ReplicaLagSeen> {
    let arn = ctx.plan.database.resource(side);
    let cluster = cluster_identifier(arn);
    let lag = global_db_lag(ctx.aws.region(side).cloudwatch(), cluster, now, LAG_WINDOW)
        .await
        .map_err(|e| {
            hint(e, format!(
                "check CloudWatch in {} (AWS/RDS {AURORA_RPO_LAG} of {cluster}) and the promote-db role's \
                 cloudwatch:GetMetricData permission",
                ctx.plan.region(side).region
            ))
        })?;
    Ok(global_lag_seen(lag, now))
}

impl GlobalClusterView {
    /// The target is the writer and nothing is switching any more.
    pub fn target_is_writer(&self, target_arn: &str) -> bool {
        self.writer() == Some(target_arn) && self.status == AVAILABLE && self.failover.is_none()
    }
}

/// Decides what `start` (and `status`, until the target writes) does with an Aurora global database. Graceful waits
/// for the global cluster to be available (a switchover needs both regions), through a status that passes on its own;
/// ungraceful goes ahead whatever the failed region reports (AWS may still answer the call with a "not yet").
pub fn decide_global_switch(g: &GlobalClusterView, target_arn: &str, mode: Mode) -> Verdict {
    let id = &g.global_cluster;
    let Some(member) = g.members.iter().find(|m| m.cluster_arn == target_arn) else {
        let members: Vec<&str> = g.members.iter().map(|m| m.cluster_arn.as_str()).collect();
        return Verdict::Refuse(format!(
            "cluster {target_arn} is not a member of global cluster {id} (members: {}): check the plan's cluster ARN",
            if members.is_empty() {
                "none".to_string()
            } else {
                members.join(", ")
            }
        ));
    };
    if let Some(f) = &g.failover {
        let to = f.to_cluster_arn.as_deref().unwrap_or("unknown");
        return if to == target_arn && f.status != "cancelling" {
            Verdict::InProgress(format!(
                "{} to {target_arn} is {}",
                if f.data_loss_allowed == Some(true) {
                    "failover"
                } else {
                    "switchover"
                },
                f.status
            ))
        } else if f.status == "cancelling" {
            Verdict::Wait(format!(
                "waiting: a switchover/failover of global cluster {id} to {to} is being cancelled; promote-db switches \
                 the writer once it is gone (polled by the state machine, bounded by max_polls)"
            ))
        } else {
            Verdict::Refuse(format!(
                "global cluster {id} is already switching its writer to {to} ({}): wait for it to finish or cancel it, then re-run",
                f.status
            ))
        };
    }
    if member.is_writer {
        return if g.status == AVAILABLE {
            Verdict::AlreadyWriter
        } else {
            Verdict::InProgress(format!(
                "{target_arn} is the writer; global cluster {id} is {}",
                g.status
            ))
        };
    }
    if mode == Mode::Graceful && g.status != AVAILABLE {
        let status = g.status.as_str();
        return match classify_cluster(status) {
            StatusClass::Transient => Verdict::Wait(waiting_for(
                &format!("global cluster {id}"),
                status,
                "promote-db asks for the switchover",
            )),
            _ => Verdict::Refuse(format!(
                "global cluster {id} is {status}, a status from which a graceful switchover cannot start ({}): check \
                 it and its member clusters in the RDS console, or run ungraceful",
                refusal_hint(status)
            )),
        };
    }
    Verdict::Promote
}

/// What promote-db saw of an Aurora global database; `start` adds its decision.
#[derive(Serialize)]
struct GlobalSwitchSaw<'a> {
    database: &'static str,
    global_cluster: &'a GlobalClusterView,
    target_cluster_arn: &'a str,
    target_is_writer: bool,
    /// The lag (ungraceful only: the target cluster's global database lag before the failover) and its rule.
    #[serde(flatten)]
    rpo: RpoBasis,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
}

pub(super) async fn switch_global_cluster(
    ctx: &Context,
    input: &StepInput,
    global_cluster: &str,
) -> Result<StepReport> {
    let target = input.direction.target();
    let region = &ctx.plan.region(target).region;
    let target_arn = ctx.plan.database.resource(target);
    let rds = ctx.aws.region(target).rds();
    let mut report = StepReport::begin(STEP, input);

    let g = describe_global_cluster(rds, region, global_cluster).await?;
    let ready = g.target_is_writer(target_arn);
    let action = input.action.as_str();
    let mut saw = GlobalSwitchSaw {
        database: "aurora-global",
        global_cluster: &g,
        target_cluster_arn: target_arn,
        target_is_writer: ready,
        rpo: RpoBasis {
            overrides: input.overrides.granted(),
            ..RpoBasis::default()
        },
        decision: None,
    };

    // Status is start's continuation: done once the target writes; until then it decides as start does.
    if input.action == Action::Status && ready {
        report.record_saw(&saw);
        return Ok(report.finish(
            true,
            format!("{target_arn} is the writer of global cluster {global_cluster} (available)"),
        ));
    }

    let mut verdict = decide_global_switch(&g, target_arn, input.mode);
    if verdict == Verdict::Promote {
        let rule = match input.mode {
            Mode::Graceful => Ok(
                "graceful: SwitchoverGlobalCluster waits for the secondary to catch up (RPO 0)"
                    .to_string(),
            ),
            Mode::Ungraceful => {
                // Checked again although the preflight passed: an approval wait may have let the lag change.
                let lag = read_global_lag(ctx, target, Utc::now()).await?;
                let rule = lag_rule(&lag, ctx.plan.max_replica_lag_seconds, &input.overrides);
                report.rpo_seconds = lag.seconds;
                saw.rpo.replica_lag = Some(lag);
                saw.rpo.max_replica_lag_seconds = Some(ctx.plan.max_replica_lag_seconds);
                rule
            }
        };
        saw.rpo.rpo_rule = Some(match rule {
            Ok(rule) => rule,
            Err(why) => {
                verdict = Verdict::Refuse(format!(
                    "FailoverGlobalCluster of {global_cluster} to {target_arn} not requested: {why}"
                ));
                format!("refused: {why}")
            }
        });
    }
    saw.decision = Some(verdict.name());
    report.record_saw(&saw);
    let rpo_note = saw.rpo.rpo_rule.clone().unwrap_or_default();
    match verdict {
        Verdict::Refuse(reason) => Err(Error::refused(format!("{STEP}: {action}: {reason}"))),
        // Not yet: polled by the state machine (dry-run never waits, docs/contract.md).
        Verdict::Wait(reason) => Ok(if input.dry_run {
            report.finish(true, format!("dry-run: would wait: {reason}"))
        } else {
            report.finish(false, reason)
        }),
        Verdict::AlreadyWriter => Ok(report.finish(
            true,
            format!("{target_arn} is already the writer of global cluster {global_cluster}"),
        )),
        Verdict::InProgress(reason) => Ok(report.finish(input.dry_run, reason)),
        Verdict::Promote => {
            let (operation, field) = match input.mode {
                Mode::Graceful => (
                    "SwitchoverGlobalCluster",
                    "SwitchoverGlobalCluster: writer cluster",
                ),
                Mode::Ungraceful => (
                    "FailoverGlobalCluster",
                    "FailoverGlobalCluster (AllowDataLoss): writer cluster",
                ),
            };
            report.change(global_cluster, field, json!(g.writer()), json!(target_arn));
            // A switchover waits for the secondary to catch up (RPO 0); a failover with data loss allowed loses
            // what had not replicated yet: the lag read above (rpo_seconds set there, null when unknown).
            if input.mode == Mode::Graceful {
                report.rpo_seconds = Some(0.0);
            }
            if input.dry_run {
                return Ok(report.finish(true, format!("dry-run: would call {operation} to make {target_arn} the writer of {global_cluster} ({rpo_note})")));
            }
            let sent = match input.mode {
                Mode::Graceful => switchover_global_cluster(rds, global_cluster, target_arn).await,
                Mode::Ungraceful => failover_global_cluster(rds, global_cluster, target_arn).await,
            };
            if let Err(e) = sent {
                if !is_not_yet(&e) {
                    return Err(hint(
                        e,
                        format!(
                            "check global cluster {global_cluster} and member {target_arn} ({}) in the RDS console and the promote-db role's rds:{operation} permission",
                            target.variable("DB_CLUSTER_ARN")
                        ),
                    ));
                }
                // A member cluster or the global cluster changed state since it was read (a backup, a
                // modification): not yet. The next status re-reads it and asks again, under the same rules.
                if let Some(c) = report.changes.last_mut() {
                    c.applied = false;
                }
                return Ok(report.finish(
                    false,
                    format!(
                        "waiting: AWS did not take the {operation} of {global_cluster} to {target_arn} yet ({}): a \
                         cluster changed state since it was read; status asks again once it is available",
                        e.message
                    ),
                ));
            }
            Ok(report.finish(
                false,
                format!(
                    "{operation} to {target_arn} requested by {action} ({rpo_note}); poll status until it is the writer"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::rds::{FailoverView, MemberView};

    const PRIMARY: &str = "arn:aws:rds:ap-northeast-2:123456789012:cluster:web-primary";
    const DR: &str = "arn:aws:rds:ap-northeast-1:123456789012:cluster:web-dr";

    fn global(writer: &str) -> GlobalClusterView {
        GlobalClusterView {
            global_cluster: "web-global".into(),
            status: "available".into(),
            members: vec![
                MemberView {
                    cluster_arn: PRIMARY.into(),
                    is_writer: writer == PRIMARY,
                    synchronization: Some("connected".into()),
                },
                MemberView {
                    cluster_arn: DR.into(),
                    is_writer: writer == DR,
                    synchronization: Some("connected".into()),
                },
            ],
            failover: None,
        }
    }

    #[test]
    fn aurora_promotes_a_secondary_and_is_done_when_it_writes() {
        assert_eq!(
            decide_global_switch(&global(PRIMARY), DR, Mode::Graceful),
            Verdict::Promote
        );
        assert_eq!(
            decide_global_switch(&global(PRIMARY), DR, Mode::Ungraceful),
            Verdict::Promote
        );
        assert_eq!(
            decide_global_switch(&global(DR), DR, Mode::Graceful),
            Verdict::AlreadyWriter
        );
        assert!(global(DR).target_is_writer(DR));
        assert!(!global(PRIMARY).target_is_writer(DR));
    }

    #[test]
    fn aurora_follows_a_running_switch_and_refuses_a_foreign_one() {
        let mut g = global(PRIMARY);
        g.status = "switching-over".into();
        g.failover = Some(FailoverView {
            status: "failing-over".into(),
            from_cluster_arn: Some(PRIMARY.into()),
            to_cluster_arn: Some(DR.into()),
            data_loss_allowed: Some(false),
        });
        assert!(matches!(
            decide_global_switch(&g, DR, Mode::Graceful),
            Verdict::InProgress(_)
        ));
        assert!(!g.target_is_writer(DR));
        assert!(
            matches!(decide_global_switch(&g, PRIMARY, Mode::Graceful), Verdict::Refuse(r) if r.contains("already switching"))
        );
        // Writer flipped but the global cluster still settling: not done yet.
        let mut settling = global(DR);
        settling.status = "modifying".into();
        assert!(matches!(
            decide_global_switch(&settling, DR, Mode::Ungraceful),
            Verdict::InProgress(_)
        ));
        assert!(!settling.target_is_writer(DR));
    }

    #[test]
    fn aurora_graceful_waits_for_an_available_global_cluster_but_ungraceful_does_not() {
        let mut g = global(PRIMARY);
        g.status = "modifying".into();
        assert!(matches!(
            decide_global_switch(&g, DR, Mode::Graceful),
            Verdict::Wait(_)
        ));
        assert_eq!(
            decide_global_switch(&g, DR, Mode::Ungraceful),
            Verdict::Promote
        );
    }

    #[test]
    fn aurora_graceful_waits_through_every_transient_global_status_and_refuses_the_rest() {
        for status in [
            "modifying",
            "upgrading",
            "backing-up",
            "maintenance",
            "renaming",
            "resetting-master-credentials",
            "storage-optimization",
            "switching-over",
            "failing-over",
            "creating",
        ] {
            let mut g = global(PRIMARY);
            g.status = status.into();
            match decide_global_switch(&g, DR, Mode::Graceful) {
                Verdict::Wait(m) => assert!(
                    m.starts_with(&format!("waiting: global cluster web-global is {status}")),
                    "{m}"
                ),
                other => panic!("{status}: {other:?}"),
            }
            // Ungraceful does not wait for the failed region's global cluster (AWS may still answer "not yet").
            assert_eq!(
                decide_global_switch(&g, DR, Mode::Ungraceful),
                Verdict::Promote,
                "{status}"
            );
        }
        for status in [
            "deleting",
            "stopped",
            "failed",
            "migration-failed",
            "brand-new-status",
        ] {
            let mut g = global(PRIMARY);
            g.status = status.into();
            assert!(
                matches!(decide_global_switch(&g, DR, Mode::Graceful), Verdict::Refuse(r) if r.contains(status) && r.contains("run ungraceful")),
                "{status}"
            );
        }
        // A switch to the target being cancelled: not yet, not a refusal.
        let mut g = global(PRIMARY);
        g.failover = Some(FailoverView {
            status: "cancelling".into(),
            from_cluster_arn: Some(PRIMARY.into()),
            to_cluster_arn: Some(DR.into()),
            data_loss_allowed: Some(false),
        });
        assert!(
            matches!(decide_global_switch(&g, DR, Mode::Graceful), Verdict::Wait(m) if m.starts_with("waiting: "))
        );
    }

    #[test]
    fn aurora_target_outside_the_global_cluster_is_refused() {
        let other = "arn:aws:rds:ap-northeast-1:123456789012:cluster:elsewhere";
        assert!(
            matches!(decide_global_switch(&global(PRIMARY), other, Mode::Ungraceful), Verdict::Refuse(r) if r.contains("not a member") && r.contains(DR))
        );
    }

    fn at(secs_ago: i64) -> Option<crate::aws::cloudwatch::Datapoint> {
        let now = crate::steps::promote_db::replica::tests::now();
        Some(crate::aws::cloudwatch::Datapoint {
            value: 0.5,
            at: now - chrono::TimeDelta::seconds(secs_ago),
        })
    }

    #[test]
    fn the_metrics_dimension_is_the_cluster_identifier_of_the_plans_arn() {
        assert_eq!(cluster_identifier(DR), "web-dr");
        assert_eq!(cluster_identifier("web-dr"), "web-dr");
    }

    #[test]
    fn the_rpo_lag_is_preferred_and_a_stale_one_is_unknown_like_replica_lag() {
        let now = crate::steps::promote_db::replica::tests::now();
        let both = GlobalDbLag {
            rpo_lag: at(30),
            replication_lag: at(10),
        };
        let seen = global_lag_seen(both, now);
        assert_eq!(
            (seen.metric, seen.seconds, seen.age_seconds),
            (AURORA_RPO_LAG, Some(0.5), Some(30))
        );
        // No fresh RPO lag: the replication lag stands in, and says so.
        let stale_rpo = GlobalDbLag {
            rpo_lag: at(600),
            replication_lag: at(20),
        };
        let seen = global_lag_seen(stale_rpo, now);
        assert_eq!(
            (seen.metric, seen.seconds),
            (AURORA_REPLICATION_LAG, Some(0.5))
        );
        // Neither fresh: unknown (a pre-outage datapoint is not an RPO), both reasons given, same age limit.
        let stale = GlobalDbLag {
            rpo_lag: at(600),
            replication_lag: None,
        };
        let seen = global_lag_seen(stale, now);
        assert_eq!((seen.seconds, seen.age_seconds), (None, Some(600)));
        assert_eq!(
            seen.max_age_seconds,
            crate::steps::promote_db::LAG_MAX_AGE_SECONDS
        );
        let why = seen.unknown.clone().unwrap();
        assert!(
            why.contains("AuroraGlobalDBRPOLag") && why.contains("600 s old"),
            "{why}"
        );
        assert!(
            why.contains("no AuroraGlobalDBReplicationLag datapoint"),
            "{why}"
        );
        // The replica path's rule, naming the metric and the override.
        let none = crate::step::Overrides::default();
        let refused = lag_rule(&seen, 300.0, &none).unwrap_err();
        assert!(
            refused.contains("global database lag (AuroraGlobalDBRPOLag) unknown")
                && refused.contains("allow_unknown_lag"),
            "{refused}"
        );
        let allow = crate::step::Overrides {
            allow_unknown_lag: true,
            ..none
        };
        assert!(
            lag_rule(&seen, 300.0, &allow)
                .unwrap()
                .contains("accepted by allow_unknown_lag")
        );
        let high = ReplicaLagSeen::of_metric(
            AURORA_RPO_LAG,
            Some(crate::aws::cloudwatch::Datapoint {
                value: 900.0,
                at: now,
            }),
            now,
        );
        assert!(
            lag_rule(&high, 300.0, &none)
                .unwrap_err()
                .contains("allow_replica_lag")
        );
    }
}
