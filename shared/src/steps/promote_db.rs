//! promote-db: make the target side's database the writer, acting only in the target region.
//!
//! * `rds-replica`: PromoteReadReplica on the target instance (a cross-region read replica), after reading its
//!   `ReplicaLag` from CloudWatch in the same region as the RPO estimate.
//! * `aurora-global`: SwitchoverGlobalCluster (graceful: no data loss, needs the source region) or
//!   FailoverGlobalCluster with AllowDataLoss (ungraceful, after reading the target cluster's global database lag
//!   in its own region and gating it like ReplicaLag), then `status` follows the global cluster until the target
//!   cluster is the writer.
//!
//! Parts, one database mode or path each: [`replica`] (RDS read replica promotion), [`aurora`] (Aurora global
//! switchover/failover) and [`graceful`] (the graceful path's actions). In each the decisions are pure functions over
//! what was observed ([`replica::decide_promotion`], [`aurora::decide_global_switch`], ...); the I/O around them
//! reads first, then acts, and reports what it saw.
//!
//! # How "writable" is decided for an RDS instance
//!
//! AWS documents a read replica by two fields of DescribeDBInstances: `ReadReplicaSourceDBInstanceIdentifier` (set
//! on a replica) and `StatusInfos` with `StatusType = "read replication"` ("If the DB instance isn't a read
//! replica, the value is blank"). A promotion runs `modifying` -> `rebooting` -> `available`, and the promoted
//! instance no longer has a source. So on AWS: writable = status `available` and not a replica.
//!
//! Before calling PromoteReadReplica the step tags the instance `pilotlight:promote-requested-at=<time>` (and
//! `pilotlight:rpo-seconds=<lag seen>`). The tag is a recorded fact that survives Lambda retries, re-runs and the
//! status polls: a re-run knows the promotion was asked for and does not call it again, and `status` can report
//! the RPO estimate. It is written *before* the call so a crash between the two cannot leave an unrecorded
//! promotion; if the call then fails, AWS still shows the instance as a replica (source set, "read replication"
//! status info) and a re-run promotes again.
//!
//! A source field is taken as "still a replica" unless a promotion was recorded *and* AWS's own replication status
//! is absent: a replica that is still replicating carries its "read replication" status info, and a finished
//! promotion clears the source anyway, so a recorded promotion whose source field lingers without replication is
//! treated as done (docs/emulators.md says which emulator needs this).
//!
//! A standalone instance counts as "already the writer" only with a recent promotion record (or `force`): an
//! instance that is merely not a replica may be a stale former primary, and making it the writer again would
//! split the data. An old record ([`PROMOTION_RECORD_TTL`]) belongs to an earlier failover and proves nothing.
//! Nor does a record copied from another instance ([`InstanceView::promotion_record`]): a replica created from a
//! promoted writer may carry the writer's tags (tags can be copied when a replica is created), so the record
//! names the instance it was written on (`pilotlight:promoted-instance=<ARN>`), and one older than the instance's own
//! InstanceCreateTime is ignored as well.
//!
//! The graceful path's actions (`prepare`, `catchup`, `reprotect`: make sure a replica of the current writer
//! exists, wait for it to catch up, restore the pilot light after a failback) live in [`graceful`].

pub mod aurora;
pub mod fence;
pub mod graceful;
pub mod instance_status;
pub mod preflight;
pub mod promoted;
pub mod replica;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::cloudwatch::Datapoint;
use crate::aws::rds::{GlobalClusterView, InstanceView, describe_db_instance};
use crate::aws::{cloudwatch, rds};
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::Use;
use crate::plan::{DatabasePlan, Side};
use crate::runtime::{Context, StepEvent};
use crate::step::{Action, StepInput, StepReport};

pub use crate::aws::rds::{PROMOTE_REQUESTED_TAG, PROMOTED_INSTANCE_TAG, RPO_TAG};

/// IAM: the adapter calls promote-db makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &cloudwatch::REPLICA_LAG,
        "replica lag before promoting / catching up",
    ),
    Use::always(
        &rds::DESCRIBE_DB_INSTANCE,
        "reads the replica and the writer (aurora-global: the member instances)",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::LIST_DB_INSTANCES,
        "finds the retired instance whose placement a new replica takes",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::ADD_TAGS,
        "records the promotion on the instance before promoting",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::PROMOTE_READ_REPLICA,
        "promotes the target region's replica",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::RENAME_DB_INSTANCE,
        "renames a stale old primary <id>-retired-<timestamp>",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::MODIFY_DB_INSTANCE,
        "makes the promoted instance production-ready (the plan's class / Multi-AZ), not waited for",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::CREATE_READ_REPLICA,
        "creates the cross-region replica of the writer",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::STOP_DB_INSTANCE,
        "fence: stops the old writer of the side a failover left",
    ),
    Use::when(
        "IsRdsReplica",
        &rds::START_DB_INSTANCE,
        "failback prepare: starts a fenced (stopped) old writer so it can be renamed and retired",
    ),
    Use::when(
        "IsAuroraGlobal",
        &rds::DESCRIBE_GLOBAL_CLUSTER,
        "reads the global cluster's members",
    ),
    Use::when(
        "IsAuroraGlobal",
        &rds::SWITCHOVER_GLOBAL_CLUSTER,
        "graceful: switchover without data loss",
    ),
    Use::when(
        "IsAuroraGlobal",
        &rds::FAILOVER_GLOBAL_CLUSTER,
        "ungraceful: failover with AllowDataLoss",
    ),
    Use::when(
        "IsAuroraGlobal",
        &cloudwatch::GLOBAL_DB_LAG,
        "the secondary's global database lag before an ungraceful failover",
    ),
];

pub const STEP: &str = "promote-db";
/// A promotion record older than this is from an earlier failover (an execution lasts minutes; a day leaves room
/// for an operator to resume a failed one).
pub const PROMOTION_RECORD_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// How far back to look for a lag datapoint.
pub const LAG_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A lag datapoint (ReplicaLag, or an Aurora secondary's AuroraGlobalDBRPOLag) counts only when it is at most this
/// old (two 1-minute periods: the newest complete minute and the one being written). Older, the lag is unknown: a
/// pre-outage 0 is not an RPO of 0.
pub const LAG_MAX_AGE_SECONDS: i64 = 120;

const AVAILABLE: &str = instance_status::AVAILABLE;

/// What the step decided from the live state.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Make the change (PromoteReadReplica / SwitchoverGlobalCluster / FailoverGlobalCluster).
    Promote,
    /// Nothing to do: the target is the writer.
    AlreadyWriter,
    /// The change was made earlier and is still running: poll `status`.
    InProgress(String),
    /// The state is changing for another reason and passes on its own ([`instance_status`]): not yet. RDS reports
    /// `done: false` ("waiting: ...") and the state machine polls again (RDS replica and Aurora global database).
    Wait(String),
    /// The state forbids the step; an operator must look.
    Refuse(String),
}

impl Verdict {
    fn name(&self) -> &'static str {
        match self {
            Verdict::Promote => "promote",
            Verdict::AlreadyWriter => "already-writer",
            Verdict::InProgress(_) => "in-progress",
            Verdict::Wait(_) => "wait",
            Verdict::Refuse(_) => "refuse",
        }
    }
}

// promote-db's reading of an instance view: replica or writer, and whether pilotlight promoted it.
impl InstanceView {
    /// The promotion record, when it is about this instance. A record written on another instance (its ARN in
    /// [`PROMOTED_INSTANCE_TAG`]), or older than the instance itself, was copied from the source when this replica
    /// was created (tags may be copied onto a new read replica): it says when the *source* was promoted, nothing
    /// about this instance.
    pub fn promotion_record(&self) -> Option<DateTime<Utc>> {
        self.promote_requested_at.filter(|t| {
            self.promoted_instance
                .as_deref()
                .is_none_or(|arn| arn == self.arn)
                && self.created_at.is_none_or(|c| *t >= c.trunc_subsecs(3))
        })
    }

    /// Still a read replica (see the module documentation for why a lingering source field alone is not enough).
    pub fn is_replica(&self) -> bool {
        self.replica_source.is_some()
            && (self.promotion_record().is_none() || self.replication_status.is_some())
    }

    /// Accepts writes: a standalone instance in status `available`.
    pub fn writable(&self) -> bool {
        self.status == AVAILABLE && !self.is_replica()
    }

    /// The recorded RPO estimate, when pilotlight promoted this instance and saw a lag.
    pub fn recorded_rpo_seconds(&self) -> Option<f64> {
        // Written together with the promotion record: copied along with it, it is the source's RPO.
        if self.promote_requested_at.is_some() && self.promotion_record().is_none() {
            return None;
        }
        self.recorded_rpo
            .as_deref()
            .and_then(|s| s.parse::<f64>().ok())
    }

    fn promotion_recorded_since(&self, now: DateTime<Utc>) -> bool {
        self.promotion_record()
            .is_some_and(|t| now - t <= PROMOTION_RECORD_TTL)
    }
}

/// Adds what the operator should check to an AWS error, keeping its kind.
fn hint(mut e: Error, what_to_check: impl std::fmt::Display) -> Error {
    e.message = format!("{STEP}: {}; {what_to_check}", e.message);
    e
}

/// Reads one DB instance; errors say what to check (`variable` names it in the plan).
pub async fn describe_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    instance: &str,
    variable: &str,
) -> Result<InstanceView> {
    let view = describe_db_instance(rds, region, instance).await.map_err(|e| {
        match e.kind {
            ErrorKind::NotFound => Error::not_found(format!(
                "{STEP}: DB instance {instance} not found in {region} ({}); check {variable} and that the instance exists there",
                e.message
            )),
            _ => hint(e, format!("check the DB instance {instance} in {region} and the promote-db role's rds:DescribeDBInstances permission")),
        }
    })?;
    view.ok_or_else(|| {
        Error::not_found(format!("{STEP}: DescribeDBInstances returned no DB instance {instance} in {region}; check {variable}"))
    })
}

/// Reads the global cluster; errors say what to check. `region` is where it was asked.
pub async fn describe_global_cluster(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<GlobalClusterView> {
    let view = crate::aws::rds::describe_global_cluster(rds, id).await.map_err(|e| {
        match e.kind {
            ErrorKind::NotFound => Error::not_found(format!(
                "{STEP}: global cluster {id} not found (asked in {region}; {}); check PILOTLIGHT_GLOBAL_CLUSTER",
                e.message
            )),
            _ => hint(e, format!("check global cluster {id} and the promote-db role's rds:DescribeGlobalClusters permission")),
        }
    })?;
    view.ok_or_else(|| {
        Error::not_found(format!("{STEP}: DescribeGlobalClusters returned no global cluster {id} (asked in {region}); check PILOTLIGHT_GLOBAL_CLUSTER"))
    })
}

/// promote-db's input: the contract's step input, with the graceful path's actions besides start and status.
#[derive(Debug, Clone, PartialEq)]
pub struct PromoteDbInput(pub StepInput);

impl StepEvent for PromoteDbInput {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        let graceful = [
            Action::Prepare,
            Action::CatchUp,
            Action::Reprotect,
            Action::Preflight,
            Action::Fence,
        ];
        StepInput::parse_with(STEP, payload, &graceful).map(PromoteDbInput)
    }
}

pub async fn handle(ctx: &Context, PromoteDbInput(input): PromoteDbInput) -> Result<StepReport> {
    // The graceful actions are boxed: their futures (both regions read at once, each read an adapter call over an
    // SDK call) nest deeper than the compiler's layout limit allows inline in the Lambda binary's future.
    let report = match (input.action, &ctx.plan.database) {
        (Action::Prepare, _) => Box::pin(graceful::prepare(ctx, &input)).await?,
        (Action::CatchUp, _) => Box::pin(graceful::catchup(ctx, &input)).await?,
        (Action::Reprotect, _) => Box::pin(graceful::reprotect(ctx, &input)).await?,
        (Action::Preflight, _) => Box::pin(preflight::preflight(ctx, &input)).await?,
        (Action::Fence, _) => Box::pin(fence::fence(ctx, &input)).await,
        (_, DatabasePlan::RdsReplica { .. }) => replica::promote_replica(ctx, &input).await?,
        (_, DatabasePlan::AuroraGlobal { global_cluster, .. }) => {
            aurora::switch_global_cluster(ctx, &input, global_cluster).await?
        }
    };
    tracing::info!(action = ?report.action, done = report.done, changes = report.changes.len(), message = %report.message, "promote-db");
    Ok(report)
}

/// The newest lag datapoint as the reports show it: `seconds` null when the lag cannot be known (no datapoint, one
/// older than [`LAG_MAX_AGE_SECONDS`], or RDS's -1 while replication is not running), and why. `metric` names what
/// was read: `ReplicaLag` (an RDS read replica) or an Aurora global database metric ([`aurora::global_lag_seen`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaLagSeen {
    pub metric: &'static str,
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// How old the datapoint was when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl ReplicaLagSeen {
    /// Pure: what the newest ReplicaLag datapoint says at `now`.
    pub fn of(lag: Option<Datapoint>, now: DateTime<Utc>) -> Self {
        Self::of_metric("ReplicaLag", lag, now)
    }

    /// Pure: what the newest datapoint of `metric` (in seconds) says at `now`; the same freshness rule for every
    /// lag metric.
    pub fn of_metric(metric: &'static str, lag: Option<Datapoint>, now: DateTime<Utc>) -> Self {
        let age = lag.map(|d| (now - d.at).num_seconds().max(0));
        let seen = |seconds, unknown| ReplicaLagSeen {
            metric,
            seconds,
            at: lag.map(|d| d.at),
            age_seconds: age,
            max_age_seconds: LAG_MAX_AGE_SECONDS,
            unknown,
        };
        match lag {
            Some(d) if age.unwrap_or(0) > LAG_MAX_AGE_SECONDS => seen(
                None,
                Some(format!(
                    "the newest {metric} datapoint ({} at {}) is {} s old, older than {LAG_MAX_AGE_SECONDS} s: the \
                     lag now is unknown",
                    d.value,
                    crate::timestamp::rfc3339(d.at, chrono::SecondsFormat::Secs),
                    age.unwrap_or(0)
                )),
            ),
            Some(d) if d.value >= 0.0 => seen(Some(d.value), None),
            Some(d) => seen(
                None,
                Some(format!("{metric} is {} (replication not running)", d.value)),
            ),
            None => seen(
                None,
                Some(format!(
                    "no {metric} datapoint in the last {} minutes",
                    LAG_WINDOW.as_secs() / 60
                )),
            ),
        }
    }

    /// The lag's name in messages: "replica lag", or "global database lag (<metric>)".
    fn what(&self) -> String {
        if self.metric == "ReplicaLag" {
            "replica lag".to_string()
        } else {
            format!("global database lag ({})", self.metric)
        }
    }
}

/// The RPO basis a promotion's report carries (flattened into its `saw`): the lag read before promoting, the plan's
/// maximum and the rule that let it through (notify's report takes `replica_lag` and `rpo_rule` from here).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RpoBasis {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_lag: Option<ReplicaLagSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replica_lag_seconds: Option<f64>,
    /// Which rule let the lag through, or why none did (`refused: ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_rule: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<&'static str>,
}

/// Which rule let an ungraceful promotion's lag through (or why none did): the report's `rpo_rule`. Pure; the same
/// rule for an RDS replica's ReplicaLag and an Aurora secondary's global database lag.
pub fn lag_rule(
    lag: &ReplicaLagSeen,
    max_lag: f64,
    overrides: &crate::step::Overrides,
) -> std::result::Result<String, String> {
    let what = lag.what();
    match lag.seconds {
        Some(l) if l <= max_lag => Ok(format!(
            "lag {l} s, {} s old, within the plan's maximum of {max_lag} s",
            lag.age_seconds.unwrap_or(0)
        )),
        Some(l) if overrides.allow_replica_lag => Ok(format!(
            "lag {l} s above the plan's maximum of {max_lag} s, accepted by allow_replica_lag"
        )),
        Some(l) => Err(format!(
            "{what} {l} s is above the plan's maximum of {max_lag} s (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS): \
             promoting now would lose about {l} s of writes; accept it with the override allow_replica_lag"
        )),
        None if overrides.allow_unknown_lag => Ok(format!(
            "lag unknown ({}), accepted by allow_unknown_lag",
            lag.unknown.as_deref().unwrap_or("no datapoint")
        )),
        None => Err(format!(
            "{what} unknown ({}): the RPO cannot be stated; accept it with the override allow_unknown_lag",
            lag.unknown.as_deref().unwrap_or("no datapoint")
        )),
    }
}

/// The source side's instance as a graceful promotion glimpsed it, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SourcePeek {
    Read {
        instance: String,
        region: String,
        status: String,
        replicas: Vec<String>,
    },
    Unanswered {
        instance: String,
        region: String,
        error: String,
    },
}

/// Best-effort look at the source side (graceful mode only): reported, never blocking.
async fn peek_source_instance(ctx: &Context, side: Side) -> SourcePeek {
    let region = ctx.plan.region(side);
    let instance = ctx.plan.database.resource(side);
    let budget = region.connect_timeout + region.read_timeout;
    let variable = side.variable("DB_INSTANCE");
    let read = describe_instance(
        ctx.aws.region(side).rds(),
        &region.region,
        instance,
        &variable,
    );
    let unanswered = |error: String| SourcePeek::Unanswered {
        instance: instance.to_string(),
        region: region.region.clone(),
        error,
    };
    match tokio::time::timeout(budget, read).await {
        Ok(Ok(v)) => SourcePeek::Read {
            instance: v.instance,
            region: v.region,
            status: v.status,
            replicas: v.replicas,
        },
        Ok(Err(e)) => unanswered(e.message),
        Err(_) => unanswered(format!("no answer within {budget:?}")),
    }
}
