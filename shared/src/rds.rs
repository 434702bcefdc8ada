//! promote-db: make the target side's database the writer, acting only in the target region.
//!
//! * `rds-replica`: PromoteReadReplica on the target instance (a cross-region read replica), after reading its
//!   `ReplicaLag` from CloudWatch in the same region as the RPO estimate.
//! * `aurora-global`: SwitchoverGlobalCluster (graceful: no data loss, needs the source region) or
//!   FailoverGlobalCluster with AllowDataLoss (ungraceful), then `status` follows the global cluster until the
//!   target cluster is the writer.
//!
//! The decisions are pure functions over what was observed ([`decide_promotion`], [`decide_global_switch`]); the
//! I/O around them reads first, then acts, and reports what it saw.
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
//! The tag is also what copes with moto (EMULATORS.md): its PromoteReadReplica never clears the source field and
//! reports no `StatusInfos` at all. A source field is therefore taken as "still a replica" unless a promotion was
//! recorded *and* AWS's own replication status is absent. On AWS this changes nothing: a replica that is still
//! replicating carries its "read replication" status info, and a finished promotion clears the source anyway.
//!
//! A standalone instance counts as "already the writer" only with a recent promotion record (or `force`): an
//! instance that is merely not a replica may be a stale former primary, and making it the writer again would
//! split the data. An old record ([`PROMOTION_RECORD_TTL`]) belongs to an earlier failover and proves nothing.
//! Nor does a record copied from another instance ([`InstanceView::promotion_record`]): a replica created from a
//! promoted writer may carry the writer's tags (moto copies them all, and its InstanceCreateTime too), so the record
//! names the instance it was written on (`pilotlight:promoted-instance=<ARN>`), and one older than the instance's own
//! InstanceCreateTime is ignored as well.
//!
//! The graceful path's actions (`prepare`, `catchup`, `reprotect`: make sure a replica of the current writer
//! exists, wait for it to catch up, restore the pilot light after a failback) live in [`graceful`].

use std::time::Duration;

use aws_sdk_rds::types::{DbInstance, Tag};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cloudwatch::{Datapoint, replica_lag, to_chrono};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{DatabasePlan, Mode, Side};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

pub mod graceful;

pub const STEP: &str = "promote-db";
/// When pilotlight asked for the promotion (RFC 3339), written just before PromoteReadReplica.
pub const PROMOTE_REQUESTED_TAG: &str = "pilotlight:promote-requested-at";
/// The replica lag seen before promoting (seconds, or `unknown`): the RPO estimate.
pub const RPO_TAG: &str = "pilotlight:rpo-seconds";
/// The ARN of the instance the promotion record was written on: a copy of the record on another instance (a
/// replica created from a promoted writer) is not a promotion of that instance.
pub const PROMOTED_INSTANCE_TAG: &str = "pilotlight:promoted-instance";
/// A promotion record older than this is from an earlier failover (an execution lasts minutes; a day leaves room
/// for an operator to resume a failed one).
pub const PROMOTION_RECORD_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// How far back to look for a ReplicaLag datapoint.
pub const LAG_WINDOW: Duration = Duration::from_secs(15 * 60);

const AVAILABLE: &str = "available";
/// Statuses that pass on their own within minutes (the promotion itself runs through `modifying` and `rebooting`).
const TRANSITIONAL: &[&str] = &[
    "modifying",
    "rebooting",
    "starting",
    "upgrading",
    "maintenance",
    "renaming",
    "resetting-master-credentials",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "storage-config-upgrade",
    "moving-to-vpc",
    "converting-to-vpc",
];

/// What the step decided from the live state.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Make the change (PromoteReadReplica / SwitchoverGlobalCluster / FailoverGlobalCluster).
    Promote,
    /// Nothing to do: the target is the writer.
    AlreadyWriter,
    /// The change was made earlier and is still running: poll `status`.
    InProgress(String),
    /// The state is changing for another reason; retry shortly (a Transient error, retried by the state machine).
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

// ---------------------------------------------------------------------------------------------------------------
// RDS cross-region read replica
// ---------------------------------------------------------------------------------------------------------------

/// The target DB instance as DescribeDBInstances shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    pub instance: String,
    pub arn: String,
    pub region: String,
    pub status: String,
    /// `ReadReplicaSourceDBInstanceIdentifier`.
    pub replica_source: Option<String>,
    /// `ReadReplicaDBInstanceIdentifiers` (reported only: a stale list must not make an instance the writer).
    pub replicas: Vec<String>,
    /// `StatusInfos` of type "read replication" (AWS: present only on read replicas).
    pub replication_status: Option<String>,
    /// From the [`PROMOTE_REQUESTED_TAG`] tag.
    pub promote_requested_at: Option<DateTime<Utc>>,
    /// The [`RPO_TAG`] tag as written.
    pub recorded_rpo: Option<String>,
    /// The [`PROMOTED_INSTANCE_TAG`] tag: the ARN the promotion record was written on.
    pub promoted_instance: Option<String>,
    /// `InstanceCreateTime` (AWS reports it once the instance exists; absent while it is created).
    pub created_at: Option<DateTime<Utc>>,
    /// `DBInstanceClass`.
    pub instance_class: Option<String>,
    /// Where the instance lives in its region (copied onto a replica that replaces it; see `rds::graceful`).
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub storage_encrypted: bool,
    pub kms_key_id: Option<String>,
}

impl InstanceView {
    /// The promotion record, when it is about this instance. A record written on another instance (its ARN in
    /// [`PROMOTED_INSTANCE_TAG`]), or older than the instance itself, was copied from the source when this replica
    /// was created (moto copies every tag of the source onto a new read replica, and tags may be copied on AWS):
    /// it says when the *source* was promoted, nothing about this instance.
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

    /// Reads the fields pilotlight uses from a DescribeDBInstances entry.
    pub fn from_db(db: &DbInstance, region: &str, fallback_id: &str) -> Self {
        let tag = |key: &str| {
            db.tag_list()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        InstanceView {
            instance: db
                .db_instance_identifier()
                .unwrap_or(fallback_id)
                .to_string(),
            arn: db.db_instance_arn().unwrap_or_default().to_string(),
            region: region.to_string(),
            status: db.db_instance_status().unwrap_or("unknown").to_string(),
            replica_source: db
                .read_replica_source_db_instance_identifier()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            replicas: db.read_replica_db_instance_identifiers().to_vec(),
            replication_status: db
                .status_infos()
                .iter()
                .find(|i| i.status_type() == Some("read replication"))
                .map(|i| i.status().unwrap_or("unknown").to_string()),
            promote_requested_at: tag(PROMOTE_REQUESTED_TAG)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
            recorded_rpo: tag(RPO_TAG),
            promoted_instance: tag(PROMOTED_INSTANCE_TAG),
            created_at: to_chrono(db.instance_create_time()),
            instance_class: db.db_instance_class().map(str::to_string),
            subnet_group: db
                .db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            security_groups: db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .map(str::to_string)
                .collect(),
            storage_encrypted: db.storage_encrypted().unwrap_or(false),
            kms_key_id: db
                .kms_key_id()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

/// A ReplicaLag datapoint as an RPO estimate. Negative values (RDS reports -1 when replication is not running)
/// mean the lag cannot be known, like a missing datapoint.
pub fn lag_estimate(lag: Option<Datapoint>) -> Option<f64> {
    lag.map(|d| d.value).filter(|v| *v >= 0.0)
}

/// Decides what `start` does with an RDS instance. `lag` is the ReplicaLag estimate (None = unknown: in a
/// regional outage the metric may stop, which must not block a failover).
///
/// Graceful mode promises no data loss: a known lag above 0 is refused unless `force` (the state machine's catch-up
/// loop waits for 0 first, so this is a safety net). An unknown lag does not block either mode: the catch-up loop
/// is what insists on a datapoint of 0.
pub fn decide_promotion(
    v: &InstanceView,
    lag: Option<f64>,
    max_lag: f64,
    mode: Mode,
    force: bool,
    now: DateTime<Utc>,
) -> Verdict {
    let id = &v.instance;
    let status = v.status.as_str();
    if v.is_replica() {
        let source = v.replica_source.as_deref().unwrap_or_default();
        return match status {
            AVAILABLE => match lag {
                Some(l) if l > 0.0 && mode == Mode::Graceful && !force => Verdict::Refuse(format!(
                    "read replica {id} lags {l}s behind {source}; a graceful promotion loses no writes, so it waits \
                     for a lag of 0: stop the writes (shift-traffic drain) and run promote-db catchup until it \
                     reports 0, or re-run with force=true to accept the loss"
                )),
                Some(l) if l > max_lag && !force => Verdict::Refuse(format!(
                    "read replica {id} lags {l}s behind {source}, above the plan's maximum of {max_lag}s \
                     (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS): promoting now would lose about {l}s of writes. Wait for \
                     the ReplicaLag metric to fall, or re-run with force=true to accept the loss"
                )),
                _ => Verdict::Promote,
            },
            "backing-up" => Verdict::Refuse(format!(
                "read replica {id} is backing-up and AWS cannot promote a replica while it backs up: wait for the \
                 backup to finish (move the replica's backup window away from failover hours) and re-run"
            )),
            s if TRANSITIONAL.contains(&s) && v.promotion_record().is_some() => {
                Verdict::InProgress(format!(
                    "promotion of {id} requested; status {s}, still a replica of {source}"
                ))
            }
            s if TRANSITIONAL.contains(&s) => Verdict::Wait(format!(
                "read replica {id} is {s}; PromoteReadReplica needs it available. If it stays {s}, check its \
                 pending modifications and events in the RDS console"
            )),
            s => Verdict::Refuse(format!(
                "read replica {id} is {s}, a status from which it cannot be promoted: check the instance and its \
                 events in the RDS console ({})",
                v.region
            )),
        };
    }
    // Standalone (or promoted, with the emulator's lingering source field).
    if !v.promotion_recorded_since(now) && !force {
        let record = match (v.promotion_record(), v.promote_requested_at) {
            (Some(t), _) => format!(
                "its promotion record ({PROMOTE_REQUESTED_TAG}={}) is from an earlier failover",
                rfc3339(t)
            ),
            (None, Some(t)) => format!(
                "its promotion record ({PROMOTE_REQUESTED_TAG}={}) was copied from another instance ({})",
                rfc3339(t),
                v.promoted_instance
                    .as_deref()
                    .unwrap_or("older than this one")
            ),
            (None, None) => "pilotlight has not promoted it".to_string(),
        };
        return Verdict::Refuse(format!(
            "DB instance {id} in {} is not a read replica and is not known to be the writer: {record}. It may be a \
             former primary with stale data; re-create it as a read replica of the current writer before moving \
             traffic to it. If an operator promoted it for this failover, re-run with force=true",
            v.region
        ));
    }
    match status {
        AVAILABLE => Verdict::AlreadyWriter,
        s if TRANSITIONAL.contains(&s) || s == "backing-up" => {
            // A promotion ends with a reboot and an automated backup.
            Verdict::InProgress(format!(
                "{id} is no longer a replica; status {s}, waiting for available"
            ))
        }
        s => Verdict::Refuse(format!(
            "DB instance {id} is {s}: it cannot take writes. Check the instance and its events in the RDS console ({})",
            v.region
        )),
    }
}

fn instance_variable(side: Side) -> &'static str {
    match side {
        Side::Primary => "PILOTLIGHT_PRIMARY_DB_INSTANCE",
        Side::Dr => "PILOTLIGHT_DR_DB_INSTANCE",
    }
}

fn cluster_variable(side: Side) -> &'static str {
    match side {
        Side::Primary => "PILOTLIGHT_PRIMARY_DB_CLUSTER_ARN",
        Side::Dr => "PILOTLIGHT_DR_DB_CLUSTER_ARN",
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A promotion record's time: milliseconds, because it is compared with `InstanceCreateTime` (see
/// [`InstanceView::promotion_record`]) and a promotion may follow a replica's creation within a second in a test.
fn record_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Adds what the operator should check to an AWS error, keeping its kind.
fn hint(mut e: Error, what_to_check: impl std::fmt::Display) -> Error {
    e.message = format!("{STEP}: {}; {what_to_check}", e.message);
    e
}

/// Reads one DB instance (DescribeDBInstances returns its tags too).
pub async fn describe_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    instance: &str,
    variable: &str,
) -> Result<InstanceView> {
    let resp = rds.describe_db_instances().db_instance_identifier(instance).send().await.map_err(|e| {
        let e = Error::aws("DescribeDBInstances", instance, e);
        match e.kind {
            ErrorKind::NotFound => Error::not_found(format!(
                "{STEP}: DB instance {instance} not found in {region} ({}); check {variable} and that the instance exists there",
                e.message
            )),
            _ => hint(e, format!("check the DB instance {instance} in {region} and the promote-db role's rds:DescribeDBInstances permission")),
        }
    })?;
    let db = resp.db_instances().first().ok_or_else(|| {
        Error::not_found(format!("{STEP}: DescribeDBInstances returned no DB instance {instance} in {region}; check {variable}"))
    })?;
    Ok(InstanceView::from_db(db, region, instance))
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let input = StepInput::parse_with(
        STEP,
        event,
        &[Action::Prepare, Action::CatchUp, Action::Reprotect],
    )?;
    let report = match (input.action, &ctx.plan.database) {
        (Action::Prepare, _) => graceful::prepare(ctx, &input).await?,
        (Action::CatchUp, _) => graceful::catchup(ctx, &input).await?,
        (Action::Reprotect, _) => graceful::reprotect(ctx, &input).await?,
        (_, DatabasePlan::RdsReplica { .. }) => promote_replica(ctx, &input).await?,
        (_, DatabasePlan::AuroraGlobal { global_cluster, .. }) => {
            switch_global_cluster(ctx, &input, global_cluster).await?
        }
    };
    tracing::info!(action = ?report.action, done = report.done, changes = report.changes.len(), message = %report.message, "promote-db");
    report.into_json()
}

/// Best-effort look at the source side (graceful mode only): reported, never blocking.
async fn peek_source_instance(ctx: &Context, side: Side) -> Value {
    let region = ctx.plan.region(side);
    let instance = ctx.plan.database.resource(side);
    let budget = region.connect_timeout + region.read_timeout;
    let read = describe_instance(
        &ctx.aws.region(side).rds,
        &region.region,
        instance,
        instance_variable(side),
    );
    match tokio::time::timeout(budget, read).await {
        Ok(Ok(v)) => {
            json!({ "instance": v.instance, "region": v.region, "status": v.status, "replicas": v.replicas })
        }
        Ok(Err(e)) => {
            json!({ "instance": instance, "region": region.region, "error": e.message })
        }
        Err(_) => {
            json!({ "instance": instance, "region": region.region, "error": format!("no answer within {budget:?}") })
        }
    }
}

async fn promote_replica(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let target = input.direction.target();
    let region = &ctx.plan.region(target).region;
    let instance = ctx.plan.database.resource(target);
    let clients = ctx.aws.region(target);
    let mut report = StepReport::begin(STEP, input);
    let now = Utc::now();

    let view = describe_instance(&clients.rds, region, instance, instance_variable(target)).await?;
    let mut saw = json!({
        "database": "rds-replica",
        "target": view,
        "writable": view.writable(),
        "is_replica": view.is_replica(),
    });
    if view.promote_requested_at.is_some() && view.promotion_record().is_none() {
        saw["note_record"] = json!(format!(
            "{PROMOTE_REQUESTED_TAG} was copied from another instance ({PROMOTED_INSTANCE_TAG}={}, instance created {}): ignored",
            view.promoted_instance.as_deref().unwrap_or("absent"),
            view.created_at.map(rfc3339).unwrap_or_default()
        ));
    }
    if !view.is_replica() && view.replica_source.is_some() {
        saw["note"] = json!(
            "ReadReplicaSourceDBInstanceIdentifier is still set, but the promotion was recorded and AWS reports no \
             read-replication status: treated as promoted (AWS clears the field when a promotion finishes; moto never does)"
        );
    }

    if input.action == Action::Status {
        report.rpo_seconds = view.recorded_rpo_seconds();
        report.saw = saw;
        let message = if view.writable() {
            format!("{instance} in {region} is writable (status available, not a read replica)")
        } else if view.is_replica() {
            format!(
                "{instance} in {region} is not writable yet: status {}, still a read replica of {}{}",
                view.status,
                view.replica_source.as_deref().unwrap_or_default(),
                if view.promotion_record().is_none() {
                    "; no promotion was requested (run start)"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "{instance} in {region} is not writable yet: status {}",
                view.status
            )
        };
        // Dry-run never waits (docs/contract.md): the report still says whether it is writable.
        let done = input.dry_run || view.writable();
        return Ok(report.finish(done, message));
    }

    // The lag only matters (and is only reported) while the instance is still a replica.
    let lag = if view.is_replica() {
        replica_lag(&clients.cloudwatch, instance, now, LAG_WINDOW).await?
    } else {
        None
    };
    let estimate = lag_estimate(lag);
    if view.is_replica() {
        saw["replica_lag"] = match (lag, estimate) {
            (Some(d), Some(_)) => json!({ "seconds": d.value, "at": d.at }),
            (Some(d), None) => {
                json!({ "seconds": null, "at": d.at, "unknown": format!("ReplicaLag is {} (replication not running)", d.value) })
            }
            (None, _) => {
                json!({ "seconds": null, "unknown": format!("no ReplicaLag datapoint in the last {} minutes", LAG_WINDOW.as_secs() / 60) })
            }
        };
        saw["max_replica_lag_seconds"] = json!(ctx.plan.max_replica_lag_seconds);
    }
    if input.mode == Mode::Graceful {
        saw["source"] = peek_source_instance(ctx, input.direction.source()).await;
    }

    let verdict = decide_promotion(
        &view,
        estimate,
        ctx.plan.max_replica_lag_seconds,
        input.mode,
        input.force,
        now,
    );
    saw["decision"] = json!(verdict.name());
    report.saw = saw;
    match verdict {
        Verdict::Refuse(reason) => Err(Error::refused(format!("{STEP}: {reason}"))),
        Verdict::Wait(reason) => Err(Error::new(
            ErrorKind::Transient,
            format!("{STEP}: {reason}"),
        )),
        Verdict::AlreadyWriter => {
            report.rpo_seconds = view.recorded_rpo_seconds();
            Ok(report.finish(
                true,
                format!(
                    "{instance} in {region} is already the writer (available, not a read replica)"
                ),
            ))
        }
        Verdict::InProgress(reason) => {
            report.rpo_seconds = view.recorded_rpo_seconds();
            Ok(report.finish(input.dry_run, reason))
        }
        Verdict::Promote => {
            let requested_at = record_time(now);
            let rpo = estimate
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unknown".to_string());
            report.rpo_seconds = estimate;
            report.change(
                &view.arn,
                "tags (AddTagsToResource)",
                json!({ PROMOTE_REQUESTED_TAG: view.promote_requested_at.map(record_time), RPO_TAG: view.recorded_rpo, PROMOTED_INSTANCE_TAG: view.promoted_instance }),
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
                    format!("replica lag {l}s above the maximum, forced")
                }
                Some(l) => format!("replica lag {l}s"),
                None => "replica lag unknown".to_string(),
            };
            if input.dry_run {
                return Ok(report.finish(
                    true,
                    format!(
                        "dry-run: would promote read replica {instance} in {region} ({lag_note})"
                    ),
                ));
            }
            // Record first (see the module documentation), then promote.
            clients
                .rds
                .add_tags_to_resource()
                .resource_name(&view.arn)
                .tags(
                    Tag::builder()
                        .key(PROMOTE_REQUESTED_TAG)
                        .value(&requested_at)
                        .build(),
                )
                .tags(Tag::builder().key(RPO_TAG).value(&rpo).build())
                .tags(
                    Tag::builder()
                        .key(PROMOTED_INSTANCE_TAG)
                        .value(&view.arn)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    hint(
                        Error::aws("AddTagsToResource", &view.arn, e),
                        "check the promote-db role's rds:AddTagsToResource permission",
                    )
                })?;
            clients.rds.promote_read_replica().db_instance_identifier(instance).send().await.map_err(|e| {
                let invalid_state = e.as_service_error().and_then(|s| s.code()) == Some("InvalidDBInstanceState");
                let e = Error::aws("PromoteReadReplica", instance, e);
                if invalid_state {
                    // The state changed since it was read: a re-run observes it again and decides.
                    Error::new(ErrorKind::Transient, format!("{STEP}: {}; the instance changed state, retrying re-reads it", e.message))
                } else {
                    hint(e, format!("check read replica {instance} in {region} in the RDS console and the promote-db role's rds:PromoteReadReplica permission"))
                }
            })?;
            Ok(report.finish(false, format!("promotion of read replica {instance} in {region} requested ({lag_note}); poll status until writable")))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Aurora global database
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    pub cluster_arn: String,
    pub is_writer: bool,
    /// `SynchronizationStatus`: `connected`, or `pending-resync` while a secondary is rebuilt after a failover.
    pub synchronization: Option<String>,
}

/// A switchover or failover scheduled or running (`FailoverState`; empty otherwise, per the AWS API reference).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverView {
    pub status: String,
    pub from_cluster_arn: Option<String>,
    pub to_cluster_arn: Option<String>,
    pub data_loss_allowed: Option<bool>,
}

/// The global cluster as DescribeGlobalClusters shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalClusterView {
    pub global_cluster: String,
    pub status: String,
    pub members: Vec<MemberView>,
    pub failover: Option<FailoverView>,
}

impl GlobalClusterView {
    pub fn writer(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.is_writer)
            .map(|m| m.cluster_arn.as_str())
    }

    /// The target is the writer and nothing is switching any more.
    pub fn target_is_writer(&self, target_arn: &str) -> bool {
        self.writer() == Some(target_arn) && self.status == AVAILABLE && self.failover.is_none()
    }
}

/// Decides what `start` does with an Aurora global database. Graceful waits for the global cluster to be
/// available (a switchover needs both regions); ungraceful goes ahead whatever the failed region reports.
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
                "a switchover/failover of {id} to {to} is being cancelled; retry when it is gone"
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
        return Verdict::Wait(format!(
            "global cluster {id} is {}; a graceful switchover needs it available. If it stays so, check it in the RDS \
             console or run ungraceful",
            g.status
        ));
    }
    Verdict::Promote
}

pub async fn describe_global_cluster(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<GlobalClusterView> {
    let resp = rds.describe_global_clusters().global_cluster_identifier(id).send().await.map_err(|e| {
        let e = Error::aws("DescribeGlobalClusters", id, e);
        match e.kind {
            ErrorKind::NotFound => Error::not_found(format!(
                "{STEP}: global cluster {id} not found (asked in {region}; {}); check PILOTLIGHT_GLOBAL_CLUSTER",
                e.message
            )),
            _ => hint(e, format!("check global cluster {id} and the promote-db role's rds:DescribeGlobalClusters permission")),
        }
    })?;
    let g = resp.global_clusters().first().ok_or_else(|| {
        Error::not_found(format!("{STEP}: DescribeGlobalClusters returned no global cluster {id} (asked in {region}); check PILOTLIGHT_GLOBAL_CLUSTER"))
    })?;
    Ok(GlobalClusterView {
        global_cluster: g.global_cluster_identifier().unwrap_or(id).to_string(),
        status: g.status().unwrap_or("unknown").to_string(),
        members: g
            .global_cluster_members()
            .iter()
            .map(|m| MemberView {
                cluster_arn: m.db_cluster_arn().unwrap_or_default().to_string(),
                is_writer: m.is_writer().unwrap_or(false),
                synchronization: m.synchronization_status().map(|s| s.as_str().to_string()),
            })
            .collect(),
        failover: g.failover_state().and_then(|f| {
            f.status().map(|s| FailoverView {
                status: s.as_str().to_string(),
                from_cluster_arn: f.from_db_cluster_arn().map(str::to_string),
                to_cluster_arn: f.to_db_cluster_arn().map(str::to_string),
                data_loss_allowed: f.is_data_loss_allowed(),
            })
        }),
    })
}

async fn switch_global_cluster(
    ctx: &Context,
    input: &StepInput,
    global_cluster: &str,
) -> Result<StepReport> {
    let target = input.direction.target();
    let region = &ctx.plan.region(target).region;
    let target_arn = ctx.plan.database.resource(target);
    let rds = &ctx.aws.region(target).rds;
    let mut report = StepReport::begin(STEP, input);

    let g = describe_global_cluster(rds, region, global_cluster).await?;
    let ready = g.target_is_writer(target_arn);
    let mut saw = json!({ "database": "aurora-global", "global_cluster": g, "target_cluster_arn": target_arn, "target_is_writer": ready });

    if input.action == Action::Status {
        report.saw = saw;
        let message = if ready {
            format!("{target_arn} is the writer of global cluster {global_cluster} (available)")
        } else {
            format!(
                "{target_arn} is not the writer yet: writer {}, global cluster {}{}",
                g.writer().unwrap_or("none"),
                g.status,
                g.failover
                    .as_ref()
                    .map(|f| format!(", switch {}", f.status))
                    .unwrap_or_default()
            )
        };
        return Ok(report.finish(input.dry_run || ready, message));
    }

    let verdict = decide_global_switch(&g, target_arn, input.mode);
    saw["decision"] = json!(verdict.name());
    report.saw = saw;
    match verdict {
        Verdict::Refuse(reason) => Err(Error::refused(format!("{STEP}: {reason}"))),
        Verdict::Wait(reason) => Err(Error::new(
            ErrorKind::Transient,
            format!("{STEP}: {reason}"),
        )),
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
            // whatever had not replicated yet, which this step does not measure.
            report.rpo_seconds = (input.mode == Mode::Graceful).then_some(0.0);
            if input.dry_run {
                return Ok(report.finish(true, format!("dry-run: would call {operation} to make {target_arn} the writer of {global_cluster}")));
            }
            let sent = match input.mode {
                Mode::Graceful => rds
                    .switchover_global_cluster()
                    .global_cluster_identifier(global_cluster)
                    .target_db_cluster_identifier(target_arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::aws(operation, global_cluster, e)),
                Mode::Ungraceful => rds
                    .failover_global_cluster()
                    .global_cluster_identifier(global_cluster)
                    .target_db_cluster_identifier(target_arn)
                    .allow_data_loss(true)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| Error::aws(operation, global_cluster, e)),
            };
            sent.map_err(|e| {
                hint(e, format!(
                    "check global cluster {global_cluster} and member {target_arn} ({}) in the RDS console and the promote-db role's rds:{operation} permission",
                    cluster_variable(target)
                ))
            })?;
            Ok(report.finish(
                false,
                format!(
                    "{operation} to {target_arn} requested; poll status until it is the writer"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A healthy cross-region replica as AWS shows it.
    fn replica() -> InstanceView {
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
        }
    }

    fn decide(v: &InstanceView, lag: Option<f64>, force: bool) -> Verdict {
        decide_promotion(v, lag, 300.0, Mode::Ungraceful, force, now())
    }

    #[test]
    fn available_replica_within_lag_is_promoted() {
        assert_eq!(decide(&replica(), Some(12.0), false), Verdict::Promote);
    }

    #[test]
    fn unknown_lag_does_not_block() {
        assert_eq!(decide(&replica(), None, false), Verdict::Promote);
        // RDS reports -1 when replication is not running: unknown, not "no lag".
        assert_eq!(
            lag_estimate(Some(Datapoint {
                value: -1.0,
                at: now()
            })),
            None
        );
        assert_eq!(
            lag_estimate(Some(Datapoint {
                value: 3.5,
                at: now()
            })),
            Some(3.5)
        );
        assert_eq!(lag_estimate(None), None);
    }

    #[test]
    fn lag_above_the_maximum_is_refused_unless_forced() {
        match decide(&replica(), Some(900.0), false) {
            Verdict::Refuse(r) => assert!(
                r.contains("900s") && r.contains("300s") && r.contains("force=true"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(decide(&replica(), Some(900.0), true), Verdict::Promote);
    }

    // moto cannot put an instance in backing-up (or any status but available), so these statuses are tested here.
    #[test]
    fn backing_up_replica_is_refused_with_the_reason() {
        let v = InstanceView {
            status: "backing-up".into(),
            ..replica()
        };
        match decide(&v, Some(1.0), true) {
            Verdict::Refuse(r) => assert!(
                r.contains("web-db-replica is backing-up") && r.contains("cannot promote"),
                "{r}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn transitional_replica_waits_and_broken_one_is_refused() {
        let v = InstanceView {
            status: "modifying".into(),
            ..replica()
        };
        assert!(matches!(decide(&v, None, false), Verdict::Wait(r) if r.contains("modifying")));
        for s in [
            "storage-full",
            "creating",
            "failed",
            "incompatible-parameters",
        ] {
            let v = InstanceView {
                status: s.into(),
                ..replica()
            };
            assert!(
                matches!(decide(&v, None, false), Verdict::Refuse(r) if r.contains(s)),
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
        assert_eq!(decide(&unpromoted, None, false), Verdict::Promote);
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
        let graceful =
            |lag, force| decide_promotion(&replica(), lag, 300.0, Mode::Graceful, force, now());
        assert!(
            matches!(graceful(Some(1.0), false), Verdict::Refuse(r) if r.contains("lags 1s") && r.contains("catchup") && r.contains("force=true"))
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
        assert_eq!(decide(&copied, None, false), Verdict::Promote);
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
            promote_requested_at: DateTime::parse_from_rfc3339(&record_time(
                created + chrono::TimeDelta::milliseconds(3),
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
    fn aurora_target_outside_the_global_cluster_is_refused() {
        let other = "arn:aws:rds:ap-northeast-1:123456789012:cluster:elsewhere";
        assert!(
            matches!(decide_global_switch(&global(PRIMARY), other, Mode::Ungraceful), Verdict::Refuse(r) if r.contains("not a member") && r.contains(DR))
        );
    }
}
