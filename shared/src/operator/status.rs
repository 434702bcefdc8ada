//! `pilotlight status`: which region is active and how each part of the topology stands, from live reads. It
//! starts from detect's own observation (`steps::detect::observe`: alarms, executions, dials, each region on its
//! own and best-effort) and adds what an operator needs beside it: the database roles and lag (with the age of the
//! datapoint), the Auto Scaling groups, the endpoint groups' health, DNS, the flow lock. Every read is bounded by
//! the plan's observe deadline and reported as unknown (with why) rather than failing the command: on the worst
//! day the failed region does not answer, and the rest must still show.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::autoscaling::describe_group;
use crate::aws::cloudwatch::{Datapoint, LiveAlarm, global_db_lag, replica_lag};
use crate::aws::globalaccelerator::describe_endpoint_group;
use crate::aws::rds::{describe_db_instance, describe_global_cluster};
use crate::aws::route53::{cname_record_sets, get_health_check};
use crate::aws::stepfunctions::RecentExecution;
use crate::error::Result;
use crate::plan::{Capacity, DatabasePlan, DnsPlan, Side};
use crate::routing::CheckFlags;
use crate::runtime::Context;
use crate::steps::detect::decision::{ActiveSide, Unknown};
use crate::steps::detect::lock::{self, LockRecord};
use crate::steps::detect::{observe, within};

/// A read: what was seen, or why it is unknown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Read<T> {
    Seen(T),
    Unknown(String),
}

impl<T> Read<T> {
    fn of(r: std::result::Result<T, String>) -> Self {
        match r {
            Ok(v) => Read::Seen(v),
            Err(why) => Read::Unknown(why),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub observed_at: DateTime<Utc>,
    pub primary_region: String,
    pub dr_region: String,
    /// From the traffic dials: primary (100/0), DR (0/100), shifting, or unknown.
    pub active: ActiveSide,
    pub database: Vec<DatabaseStatus>,
    pub compute: Vec<ComputeStatus>,
    pub traffic: Vec<TrafficStatus>,
    pub dns: Vec<DnsStatus>,
    /// The flow lock's holder (None: free); unknown when the plan names no lock table.
    pub lock: Read<Option<LockRecord>>,
    pub running: Vec<RecentExecution>,
    pub latest: Option<RecentExecution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executions_unknown: Option<String>,
    pub alarms: Vec<LiveAlarm>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_alarm_regions: Vec<Unknown>,
}

/// One side's database as read in its own region.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    pub side: Side,
    pub region: String,
    /// The instance id (RDS) or cluster ARN (Aurora).
    pub resource: String,
    pub seen: Read<Option<DbSeen>>,
    /// The replication lag (ReplicaLag, or AuroraGlobalDBRPOLag) of a replica / secondary, read in its region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<Read<Option<Lag>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbSeen {
    pub status: String,
    /// `standalone` (RDS: a writer when available), `replica of <source>`; Aurora: `writer` or `secondary`.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
}

/// A lag datapoint and how old it is.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    pub seconds: f64,
    pub at: DateTime<Utc>,
    pub age_seconds: i64,
}

impl Lag {
    fn of(d: Datapoint, now: DateTime<Utc>) -> Lag {
        Lag {
            seconds: d.value,
            at: d.at,
            age_seconds: (now - d.at).num_seconds(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ComputeStatus {
    pub side: Side,
    pub region: String,
    pub asg: String,
    pub seen: Read<Option<GroupSeen>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupSeen {
    pub capacity: Capacity,
    pub instances: usize,
    /// InService and Healthy.
    pub healthy: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fenced_capacity: Option<Capacity>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrafficStatus {
    pub side: Side,
    pub endpoint_group_arn: String,
    pub seen: Read<EndpointsSeen>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointsSeen {
    pub dial: i32,
    pub endpoints: usize,
    pub healthy: usize,
}

/// DNS as update-dns drives it: a health check's flags per side, or the one record's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DnsStatus {
    HealthCheck {
        side: Side,
        id: String,
        flags: Read<CheckFlags>,
    },
    Record {
        name: String,
        /// The record's value, and which side's target it is (primary / dr / neither).
        answer: Read<Option<(String, String)>>,
    },
}

/// How far back a lag datapoint is looked for: RDS publishes every minute; older than this is no answer.
const LAG_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn status(ctx: &Context) -> Result<Status> {
    let plan = &ctx.plan;
    let deadline = plan.alarms.observe_deadline;
    let now = Utc::now();
    let sides = [Side::Primary, Side::Dr];
    let situation = Box::pin(observe(ctx));
    let database = async {
        let mut out = Vec::new();
        for side in sides {
            out.push(database(ctx, side, now).await);
        }
        out
    };
    let compute = async {
        let mut out = Vec::new();
        for side in sides {
            let rp = plan.region(side);
            let c = ctx.aws.region(side).autoscaling();
            let read = within(deadline, describe_group(c, &rp.asg, &rp.region)).await;
            out.push(ComputeStatus {
                side,
                region: rp.region.clone(),
                asg: rp.asg.clone(),
                seen: Read::of(read.map(|g| {
                    g.map(|g| GroupSeen {
                        capacity: g.capacity,
                        instances: g.instances.len(),
                        healthy: g.ready_instances().len(),
                        fenced_capacity: g.fenced_capacity,
                    })
                })),
            });
        }
        out
    };
    let traffic = async {
        let mut out = Vec::new();
        for side in sides {
            let arn = &plan.region(side).endpoint_group_arn;
            let read = within(
                deadline,
                describe_endpoint_group(ctx.aws.global_accelerator(), arn),
            )
            .await;
            out.push(TrafficStatus {
                side,
                endpoint_group_arn: arn.clone(),
                seen: Read::of(read.map(|g| EndpointsSeen {
                    dial: g.dial,
                    endpoints: g.endpoints.len(),
                    healthy: g.healthy_endpoints(),
                })),
            });
        }
        out
    };
    let dns = dns(ctx);
    let lock = async {
        match plan.lock_table.as_deref() {
            Some(table) => Read::of(within(deadline, lock::holder(ctx, table)).await),
            None => Read::Unknown(
                "the plan names no lock table (PILOTLIGHT_LOCK_TABLE, detect's): read the plan from the \
                 deployed detect function (--detect)"
                    .to_string(),
            ),
        }
    };
    let (situation, database, compute, traffic, dns, lock) =
        tokio::join!(situation, database, compute, traffic, dns, lock);
    let situation = situation?;
    let running = situation
        .executions
        .iter()
        .filter(|e| e.status == "RUNNING")
        .cloned()
        .collect();
    Ok(Status {
        observed_at: situation.now,
        primary_region: plan.primary.region.clone(),
        dr_region: plan.dr.region.clone(),
        active: situation.active,
        database,
        compute,
        traffic,
        dns,
        lock,
        running,
        latest: situation.executions.first().cloned(),
        executions_unknown: situation.executions_unknown,
        alarms: situation.alarms,
        unknown_alarm_regions: situation.unknown_alarm_regions,
    })
}

async fn database(ctx: &Context, side: Side, now: DateTime<Utc>) -> DatabaseStatus {
    let plan = &ctx.plan;
    let deadline = plan.alarms.observe_deadline;
    let clients = ctx.aws.region(side);
    let region = plan.region(side).region.clone();
    let resource = plan.database.resource(side).to_string();
    match &plan.database {
        DatabasePlan::RdsReplica { .. } => {
            let seen = within(
                deadline,
                describe_db_instance(clients.rds(), &region, &resource),
            )
            .await;
            // promote-db's own reading: a lingering source field after a promotion is no replica.
            let replica = matches!(&seen, Ok(Some(i)) if i.is_replica());
            let lag = if replica {
                let read = within(
                    deadline,
                    replica_lag(clients.cloudwatch(), &resource, now, LAG_WINDOW),
                )
                .await;
                Some(Read::of(read.map(|d| d.map(|d| Lag::of(d, now)))))
            } else {
                None
            };
            DatabaseStatus {
                side,
                region,
                resource,
                seen: Read::of(seen.map(|i| {
                    i.map(|i| DbSeen {
                        status: i.status.clone(),
                        role: match (&i.replica_source, i.is_replica(), i.promotion_record()) {
                            (Some(source), true, _) => format!("replica of {source}"),
                            (_, _, Some(at)) => {
                                format!("standalone, promoted by pilotlight at {}", at.to_rfc3339())
                            }
                            _ => "standalone".to_string(),
                        },
                        replication: i.replication_status.clone(),
                    })
                })),
                lag,
            }
        }
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let seen = within(
                deadline,
                describe_global_cluster(clients.rds(), global_cluster),
            )
            .await;
            let secondary = matches!(&seen, Ok(Some(g)) if g.writer() != Some(resource.as_str()));
            let lag = if secondary {
                let id = crate::steps::promote_db::aurora::cluster_identifier(&resource);
                let read = within(
                    deadline,
                    global_db_lag(clients.cloudwatch(), id, now, LAG_WINDOW),
                )
                .await;
                Some(Read::of(read.map(|l| l.rpo_lag.map(|d| Lag::of(d, now)))))
            } else {
                None
            };
            DatabaseStatus {
                side,
                region,
                resource: resource.clone(),
                seen: Read::of(seen.map(|g| {
                    g.map(|g| {
                        let member = g.members.iter().find(|m| m.cluster_arn == resource);
                        DbSeen {
                            status: g.status.clone(),
                            role: match member {
                                Some(m) if m.is_writer => "writer".to_string(),
                                Some(_) => "secondary".to_string(),
                                None => "not a member of the global cluster".to_string(),
                            },
                            replication: member.and_then(|m| m.synchronization.clone()),
                        }
                    })
                })),
                lag,
            }
        }
    }
}

async fn dns(ctx: &Context) -> Vec<DnsStatus> {
    let deadline = ctx.plan.alarms.observe_deadline;
    let r53 = ctx.aws.route53();
    match &ctx.plan.dns {
        DnsPlan::HealthCheck {
            primary_health_check_id,
            dr_health_check_id,
        } => {
            let (p, d) = tokio::join!(
                within(deadline, get_health_check(r53, primary_health_check_id)),
                within(deadline, get_health_check(r53, dr_health_check_id)),
            );
            vec![
                DnsStatus::HealthCheck {
                    side: Side::Primary,
                    id: primary_health_check_id.clone(),
                    flags: Read::of(p.map(|h| h.flags)),
                },
                DnsStatus::HealthCheck {
                    side: Side::Dr,
                    id: dr_health_check_id.clone(),
                    flags: Read::of(d.map(|h| h.flags)),
                },
            ]
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            primary_value,
            dr_value,
            ..
        } => {
            let read = within(
                deadline,
                cname_record_sets(r53, hosted_zone_id, record_name),
            )
            .await;
            vec![DnsStatus::Record {
                name: record_name.clone(),
                answer: Read::of(read.map(|sets| {
                    sets.first().map(|s| {
                        let v = &s.record.value;
                        let side = if crate::aws::route53::same_dns_name(v, primary_value) {
                            "primary"
                        } else if crate::aws::route53::same_dns_name(v, dr_value) {
                            "dr"
                        } else {
                            "neither side's target"
                        };
                        (v.clone(), side.to_string())
                    })
                })),
            }]
        }
    }
}

/// The status as lines for a terminal.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<16} {v}\n"));
    let side_name = |side: Side| match side {
        Side::Primary => s.primary_region.clone(),
        Side::Dr => s.dr_region.clone(),
    };
    line(
        "active",
        match &s.active {
            ActiveSide::Primary => format!("primary {} (dials 100/0)", s.primary_region),
            ActiveSide::Dr => format!("dr {} (dials 0/100)", s.dr_region),
            ActiveSide::Shifting {
                primary_dial,
                dr_dial,
            } => format!("shifting: primary dial {primary_dial}, dr dial {dr_dial}"),
            ActiveSide::Unknown { reason } => format!("unknown ({reason})"),
        },
    );
    for d in &s.database {
        let seen = match &d.seen {
            Read::Seen(Some(db)) => format!(
                "{}, {}{}",
                db.role,
                db.status,
                db.replication
                    .as_deref()
                    .map(|r| format!(", replication {r}"))
                    .unwrap_or_default()
            ),
            Read::Seen(None) => "missing".to_string(),
            Read::Unknown(why) => format!("unknown ({why})"),
        };
        let lag = match &d.lag {
            Some(Read::Seen(Some(l))) => {
                format!("; lag {}s ({}s old)", l.seconds, l.age_seconds)
            }
            Some(Read::Seen(None)) => "; lag unknown (no datapoint in 10 min)".to_string(),
            Some(Read::Unknown(why)) => format!("; lag unknown ({why})"),
            None => String::new(),
        };
        line(
            &format!("db {}", side_tag(d.side)),
            format!("{} {}: {seen}{lag}", side_name(d.side), d.resource),
        );
    }
    for c in &s.compute {
        let seen = match &c.seen {
            Read::Seen(Some(g)) => format!(
                "{}/{}/{} (min/desired/max), {} instances, {} healthy{}",
                g.capacity.min,
                g.capacity.desired,
                g.capacity.max,
                g.instances,
                g.healthy,
                g.fenced_capacity
                    .map(|f| format!(", fenced from {}/{}/{}", f.min, f.desired, f.max))
                    .unwrap_or_default()
            ),
            Read::Seen(None) => "missing".to_string(),
            Read::Unknown(why) => format!("unknown ({why})"),
        };
        line(
            &format!("asg {}", side_tag(c.side)),
            format!("{} {}: {seen}", side_name(c.side), c.asg),
        );
    }
    for t in &s.traffic {
        let seen = match &t.seen {
            Read::Seen(e) => format!(
                "dial {}, {}/{} endpoints healthy",
                e.dial, e.healthy, e.endpoints
            ),
            Read::Unknown(why) => format!("unknown ({why})"),
        };
        line(&format!("traffic {}", side_tag(t.side)), seen);
    }
    for d in &s.dns {
        match d {
            DnsStatus::HealthCheck { side, id, flags } => line(
                &format!("dns {}", side_tag(*side)),
                match flags {
                    Read::Seen(f) => format!(
                        "health check {id}: disabled={} inverted={}",
                        f.disabled, f.inverted
                    ),
                    Read::Unknown(why) => format!("health check {id}: unknown ({why})"),
                },
            ),
            DnsStatus::Record { name, answer } => line(
                "dns",
                match answer {
                    Read::Seen(Some((v, side))) => format!("{name} -> {v} ({side})"),
                    Read::Seen(None) => format!("{name}: no CNAME record"),
                    Read::Unknown(why) => format!("{name}: unknown ({why})"),
                },
            ),
        }
    }
    line(
        "lock",
        match &s.lock {
            Read::Seen(None) => "free".to_string(),
            Read::Seen(Some(l)) => format!(
                "held by {} ({}) since {}",
                l.holder,
                l.direction,
                l.started_at.to_rfc3339()
            ),
            Read::Unknown(why) => format!("unknown ({why})"),
        },
    );
    let running = match (&s.executions_unknown, s.running.as_slice()) {
        (Some(why), _) => format!("unknown ({why})"),
        (None, []) => "none".to_string(),
        (None, r) => r
            .iter()
            .map(|e| format!("{} since {}", e.name, e.started_at.to_rfc3339()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    line("running", running);
    if let Some(l) = &s.latest {
        line(
            "latest",
            format!(
                "{} {} (started {})",
                l.name,
                l.status,
                l.started_at.to_rfc3339()
            ),
        );
    }
    let firing: Vec<String> = s
        .alarms
        .iter()
        .map(|a| format!("{}@{} {}", a.name, a.region, a.state))
        .collect();
    line("alarms", firing.join(", "));
    for u in &s.unknown_alarm_regions {
        line("alarms", format!("{}: unknown ({})", u.region, u.reason));
    }
    out
}

fn side_tag(side: Side) -> &'static str {
    match side {
        Side::Primary => "primary",
        Side::Dr => "dr",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Status {
            observed_at: at,
            primary_region: "ap-northeast-2".into(),
            dr_region: "ap-northeast-1".into(),
            active: ActiveSide::Unknown {
                reason: "no answer within 1500 ms".into(),
            },
            database: vec![DatabaseStatus {
                side: Side::Dr,
                region: "ap-northeast-1".into(),
                resource: "web-db-replica".into(),
                seen: Read::Seen(Some(DbSeen {
                    status: "available".into(),
                    role: "replica of web-db".into(),
                    replication: Some("replicating".into()),
                })),
                lag: Some(Read::Seen(Some(Lag {
                    seconds: 3.0,
                    at,
                    age_seconds: 95,
                }))),
            }],
            compute: vec![ComputeStatus {
                side: Side::Primary,
                region: "ap-northeast-2".into(),
                asg: "web-asg".into(),
                seen: Read::Unknown("DescribeAutoScalingGroups timed out".into()),
            }],
            traffic: vec![],
            dns: vec![DnsStatus::Record {
                name: "app.example.com".into(),
                answer: Read::Seen(Some(("dr.example.com".into(), "dr".into()))),
            }],
            lock: Read::Seen(None),
            running: vec![],
            latest: None,
            executions_unknown: Some("ListExecutions: no answer".into()),
            alarms: vec![],
            unknown_alarm_regions: vec![],
        }
    }

    #[test]
    fn what_could_not_be_read_is_shown_as_unknown_with_why_and_the_lag_with_its_age() {
        let text = render(&status());
        for line in [
            "active           unknown (no answer within 1500 ms)",
            "db dr            ap-northeast-1 web-db-replica: replica of web-db, available, replication replicating; lag 3s (95s old)",
            "asg primary      ap-northeast-2 web-asg: unknown (DescribeAutoScalingGroups timed out)",
            "dns              app.example.com -> dr.example.com (dr)",
            "lock             free",
            "running          unknown (ListExecutions: no answer)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
        let json = serde_json::to_value(status()).unwrap();
        assert_eq!(
            json["compute"][0]["seen"]["unknown"],
            "DescribeAutoScalingGroups timed out"
        );
        assert_eq!(json["lock"], serde_json::json!({"seen": null}));
    }
}
