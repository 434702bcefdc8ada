//! The database: the standby can take the writer role, by promote-db's own preflight verdicts.
//!
//! * RDS, primary active: the DR instance is an available read replica of the plan's writer
//!   ([`check_target_replica`], `db.replica`) and its ReplicaLag is fresh and within the plan's maximum
//!   ([`check_lag`], `db.lag`), read in the DR region.
//! * RDS, DR active: failback is graceful, so `db.replica` is what its `prepare` would decide for the primary's slot
//!   from the DR writer ([`check_replica_slot`]); `db.lag` is the primary replica's lag when there is one.
//! * Aurora: the standby cluster is a member of the global cluster with no foreign switch running
//!   ([`check_global_member`], `db.global-member`), and the secondary's `AuroraGlobalDBRPOLag` is fresh and within
//!   the maximum (`db.lag`).

use chrono::{DateTime, Utc};

use crate::aws::clients::AwsClients;
use crate::aws::cloudwatch::{Datapoint, GlobalDbLag, global_db_lag, replica_lag};
use crate::aws::rds::{
    GlobalClusterView, InstanceView, describe_db_instance, describe_global_cluster,
};
use crate::error::{ErrorKind, Result};
use crate::plan::{DatabasePlan, FailoverPlan, Mode, Side};
use crate::step::Overrides;
use crate::steps::promote_db::aurora::{cluster_identifier, global_lag_seen};
use crate::steps::promote_db::preflight::{
    check_global_member, check_lag, check_replica_slot, check_target_replica,
};
use crate::steps::promote_db::{LAG_WINDOW, ReplicaLagSeen};

use super::{Check, bounded, budget, dr_budget};

/// What was read, by database mode.
#[derive(Debug, Clone)]
pub enum DbSeen {
    Rds(Box<RdsSeen>),
    Aurora {
        global: std::result::Result<Option<GlobalClusterView>, String>,
        /// The standby (secondary) cluster's global database lag, in its own region.
        standby_lag: std::result::Result<GlobalDbLag, String>,
    },
}

/// RDS: each side's instance (None: it does not exist) and the standby's newest ReplicaLag, in its own region.
#[derive(Debug, Clone)]
pub struct RdsSeen {
    pub primary: std::result::Result<Option<InstanceView>, String>,
    pub dr: std::result::Result<Option<InstanceView>, String>,
    pub standby_lag: std::result::Result<Option<Datapoint>, String>,
}

impl DbSeen {
    /// The RDS instance of `side`, as read.
    pub fn instance(
        &self,
        side: Side,
    ) -> Option<&std::result::Result<Option<InstanceView>, String>> {
        match self {
            DbSeen::Rds(rds) => Some(match side {
                Side::Primary => &rds.primary,
                Side::Dr => &rds.dr,
            }),
            DbSeen::Aurora { .. } => None,
        }
    }
}

/// An instance, or None when RDS says it does not exist.
async fn instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<InstanceView>> {
    match describe_db_instance(rds, region, id).await {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        other => other,
    }
}

pub async fn observe(
    aws: &AwsClients,
    plan: &FailoverPlan,
    standby: Side,
    now: DateTime<Utc>,
) -> DbSeen {
    match &plan.database {
        DatabasePlan::RdsReplica { .. } => {
            let read = |side: Side| {
                let region = &plan.region(side).region;
                bounded(
                    budget(plan, side),
                    instance(aws.region(side).rds(), region, plan.database.resource(side)),
                )
            };
            let (primary, dr, standby_lag) = tokio::join!(
                read(Side::Primary),
                read(Side::Dr),
                bounded(
                    budget(plan, standby),
                    replica_lag(
                        aws.region(standby).cloudwatch(),
                        plan.database.resource(standby),
                        now,
                        LAG_WINDOW,
                    )
                ),
            );
            DbSeen::Rds(Box::new(RdsSeen {
                primary,
                dr,
                standby_lag,
            }))
        }
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            // The global cluster is read from the DR region, like promote-db reads it.
            let (global, standby_lag) = tokio::join!(
                bounded(
                    dr_budget(plan),
                    describe_global_cluster(aws.dr.rds(), global_cluster)
                ),
                bounded(
                    budget(plan, standby),
                    global_db_lag(
                        aws.region(standby).cloudwatch(),
                        cluster_identifier(plan.database.resource(standby)),
                        now,
                        LAG_WINDOW,
                    )
                ),
            );
            DbSeen::Aurora {
                global,
                standby_lag,
            }
        }
    }
}

const REPLICA_LIMIT: &str = "an available read replica of the active writer";

/// `db.replica` / `db.global-member` and `db.lag` for the standby side. Pure.
pub fn checks(plan: &FailoverPlan, standby: Side, seen: &DbSeen, now: DateTime<Utc>) -> Vec<Check> {
    let none = Overrides::default();
    let active = standby.other();
    let max_lag = plan.max_replica_lag_seconds;
    let lag_limit = format!("fresh, at most {max_lag} s");
    match seen {
        DbSeen::Rds(rds) => {
            let standby_lag = &rds.standby_lag;
            let (sid, aid) = (
                plan.database.resource(standby),
                plan.database.resource(active),
            );
            let target = seen.instance(standby).expect("rds");
            let writer = seen.instance(active).expect("rds");
            let target = match target {
                Ok(t) => t.as_ref(),
                Err(e) => {
                    return vec![
                        Check::unread(
                            "db.replica",
                            &format!("DB instance {sid}"),
                            e,
                            REPLICA_LIMIT,
                        ),
                        Check::not_judged(
                            "db.lag",
                            "the replica could not be read (see db.replica)",
                            &lag_limit,
                        ),
                    ];
                }
            };
            let replica = if standby == Side::Dr {
                Check::from_preflight(
                    "db",
                    check_target_replica(target, sid, aid, &plan.region(active).region, &none, now),
                )
            } else {
                // Failback: what the graceful prepare would decide from the DR writer.
                match writer {
                    Ok(Some(w)) => {
                        Check::from_preflight("db", check_replica_slot(w, target, sid, &none, now))
                    }
                    Ok(None) => Check::fail(
                        "db.replica",
                        format!("writer {aid} not found"),
                        REPLICA_LIMIT,
                        format!(
                            "the active writer {aid} was not found in {}",
                            plan.region(active).region
                        ),
                    ),
                    Err(e) => {
                        Check::unread("db.replica", &format!("the writer {aid}"), e, REPLICA_LIMIT)
                    }
                }
            };
            let lag = match (target, standby_lag) {
                (Some(t), _) if !t.is_replica() && standby == Side::Primary => Check::pass(
                    "db.lag",
                    "no replica in the primary yet",
                    "lag 0 after the drain (graceful failback)",
                    format!(
                        "{sid} is not a replica: failback's prepare creates it and its catch-up waits for lag 0"
                    ),
                ),
                (None, _) => Check::not_judged(
                    "db.lag",
                    format!("no instance {sid} (see db.replica)"),
                    &lag_limit,
                ),
                (Some(t), _) if !t.is_replica() => Check::not_judged(
                    "db.lag",
                    format!("{sid} is not a read replica (see db.replica): it has no replica lag"),
                    &lag_limit,
                ),
                (Some(_), Err(e)) => {
                    Check::unread("db.lag", &format!("ReplicaLag of {sid}"), e, &lag_limit)
                }
                (Some(_), Ok(point)) => Check::from_preflight(
                    "db",
                    check_lag(&ReplicaLagSeen::of(*point, now), max_lag, &none),
                ),
            };
            vec![replica, lag]
        }
        DbSeen::Aurora {
            global,
            standby_lag,
        } => {
            let arn = plan.database.resource(standby);
            let member = match global {
                Ok(Some(g)) => Check::from_preflight(
                    "db",
                    check_global_member(g, arn, Mode::Ungraceful, &none),
                ),
                Ok(None) => Check::fail(
                    "db.global-member",
                    "global cluster not found",
                    &format!("{arn} a member"),
                    "DescribeGlobalClusters returned no global cluster: check PILOTLIGHT_GLOBAL_CLUSTER",
                ),
                Err(e) => Check::unread(
                    "db.global-member",
                    "the global cluster",
                    e,
                    &format!("{arn} a member"),
                ),
            };
            let lag = match standby_lag {
                Ok(l) => Check::from_preflight(
                    "db",
                    check_lag(&global_lag_seen(*l, now), max_lag, &none),
                ),
                Err(e) => Check::unread(
                    "db.lag",
                    &format!("the global database lag of {}", cluster_identifier(arn)),
                    e,
                    &format!("fresh, at most {max_lag} s"),
                ),
            };
            vec![member, lag]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::Verdict;
    use crate::readiness::tests::plan;

    fn instance(id: &str, region: &str, source: Option<&str>) -> InstanceView {
        InstanceView {
            instance: id.into(),
            arn: format!("arn:aws:rds:{region}:123456789012:db:{id}"),
            region: region.into(),
            status: "available".into(),
            replica_source: source.map(str::to_string),
            replicas: vec![],
            replication_status: source.map(|_| "replicating".to_string()),
            promote_requested_at: None,
            recorded_rpo: None,
            promoted_instance: None,
            created_at: Some(Utc::now() - chrono::TimeDelta::days(30)),
            instance_class: Some("db.r6g.large".into()),
            subnet_group: None,
            security_groups: vec![],
            storage_encrypted: false,
            kms_key_id: None,
            settings: Default::default(),
        }
    }

    fn rds(dr: Result<Option<InstanceView>, String>, lag: Option<(f64, i64)>) -> DbSeen {
        let now = Utc::now();
        DbSeen::Rds(Box::new(RdsSeen {
            primary: Err("no answer within 1500 ms".into()),
            dr,
            standby_lag: Ok(lag.map(|(value, age)| Datapoint {
                value,
                at: now - chrono::TimeDelta::seconds(age),
            })),
        }))
    }

    fn replica() -> InstanceView {
        instance(
            "web-db-replica",
            "ap-northeast-1",
            Some("arn:aws:rds:ap-northeast-2:123456789012:db:web-db"),
        )
    }

    fn verdicts(c: &[Check]) -> Vec<(&str, Verdict)> {
        c.iter().map(|c| (c.id.as_str(), c.verdict)).collect()
    }

    #[test]
    fn a_fresh_replica_of_the_writer_passes_without_reading_the_primary() {
        let c = checks(
            &plan(),
            Side::Dr,
            &rds(Ok(Some(replica())), Some((2.0, 30))),
            Utc::now(),
        );
        assert_eq!(
            verdicts(&c),
            [("db.replica", Verdict::Pass), ("db.lag", Verdict::Pass)],
            "{c:#?}"
        );
    }

    #[test]
    fn each_replica_finding_fails_its_own_check() {
        let now = Utc::now();
        let p = plan();
        // Gone: db.replica fails, the lag is not judged.
        let c = checks(&p, Side::Dr, &rds(Ok(None), Some((2.0, 30))), now);
        assert_eq!(
            verdicts(&c),
            [("db.replica", Verdict::Fail), ("db.lag", Verdict::Warn)]
        );
        assert_eq!(c[0].seen, "none");
        // Unread: the error is the value seen.
        let c = checks(&p, Side::Dr, &rds(Err("Throttling".into()), None), now);
        assert_eq!(
            (c[0].verdict, c[0].seen.as_str()),
            (Verdict::Fail, "error: Throttling")
        );
        // A replica of another writer.
        let other = instance(
            "web-db-replica",
            "ap-northeast-1",
            Some("arn:aws:rds:ap-northeast-2:1:db:shop"),
        );
        let c = checks(&p, Side::Dr, &rds(Ok(Some(other)), Some((2.0, 30))), now);
        assert_eq!(c[0].verdict, Verdict::Fail);
        assert!(c[0].detail.contains("not the plan's writer"), "{c:#?}");
        // Lag over the limit, and a stale datapoint.
        let c = checks(
            &p,
            Side::Dr,
            &rds(Ok(Some(replica())), Some((900.0, 30))),
            now,
        );
        assert_eq!(
            verdicts(&c),
            [("db.replica", Verdict::Pass), ("db.lag", Verdict::Fail)]
        );
        let c = checks(
            &p,
            Side::Dr,
            &rds(Ok(Some(replica())), Some((0.0, 600))),
            now,
        );
        assert_eq!(c[1].verdict, Verdict::Fail, "{c:#?}");
        let c = checks(&p, Side::Dr, &rds(Ok(Some(replica())), None), now);
        assert_eq!(
            c[1].verdict,
            Verdict::Fail,
            "no datapoint: the lag is unknown"
        );
        // A backup window passes on its own: a warning.
        let busy = InstanceView {
            status: "backing-up".into(),
            ..replica()
        };
        let c = checks(&p, Side::Dr, &rds(Ok(Some(busy)), Some((2.0, 30))), now);
        assert_eq!(c[0].verdict, Verdict::Warn);
    }

    #[test]
    fn while_dr_serves_failback_readiness_is_what_prepare_would_do() {
        let now = Utc::now();
        // The DR writer pilotlight promoted (its promotion record says so).
        let writer = InstanceView {
            promote_requested_at: Some(now - chrono::TimeDelta::hours(1)),
            ..instance("web-db-replica", "ap-northeast-1", None)
        };
        // The old primary, fenced (stopped) and not a replica: prepare retires it and creates the replica.
        let old = InstanceView {
            status: "stopped".into(),
            ..instance("web-db", "ap-northeast-2", None)
        };
        let seen = DbSeen::Rds(Box::new(RdsSeen {
            primary: Ok(Some(old)),
            dr: Ok(Some(writer)),
            standby_lag: Ok(None),
        }));
        let c = checks(&plan(), Side::Primary, &seen, now);
        assert_eq!(
            verdicts(&c),
            [("db.replica", Verdict::Pass), ("db.lag", Verdict::Pass)],
            "{c:#?}"
        );
    }
}
