//! promote-db on the graceful path (docs/contract.md, "Graceful flows, failback, re-protection, approval"):
//!
//! * `prepare`: before anything moves, the target side must hold a replica of the current writer (the plan's DB on
//!   the source side). RDS: an available replica of the writer is ready; a free identifier gets a new cross-region
//!   replica; an identifier held by a stale standalone instance (the old primary after an outage) is freed first by
//!   renaming that instance `<id>-retired-<yyyymmddhhmm>` (kept, never deleted: it holds whatever was written to it
//!   after the last replication). Aurora: the target cluster must be a secondary member of the global cluster
//!   again (re-attaching the old primary is AWS's job after a managed failover or switchover); nothing is changed.
//! * `catchup`: RDS: done when the target replica's `ReplicaLag` (CloudWatch in the target region, newest datapoint)
//!   is 0; no datapoint is unknown, and unknown is not caught up. Aurora: SwitchoverGlobalCluster, the graceful
//!   promotion, itself waits until the secondary has caught up, so once the target is a connected secondary there is
//!   nothing left to wait for.
//! * `reprotect` (failback only, at the end): the DR side becomes a replica of the primary again: the old DR writer
//!   is retired like a stale primary and a fresh replica with the plan's DR identifier is created from the primary.
//!   Aurora: the DR cluster must be a secondary again.
//!
//! These actions read (and `prepare`/`reprotect` change) the source side: they are the graceful path, which needs
//! both regions (a failback's source is the DR region that runs the application). The clients carry the plan's
//! per-region timeouts and retries, so an unreachable region surfaces as a `pilotlight.Transient` error within
//! seconds. An ungraceful failover never runs them: `prepare` refuses that combination.
//!
//! # Which standalone instance is stale
//!
//! Both instances may be standalone (no `ReadReplicaSourceDBInstanceIdentifier`, or a lingering one with a recorded
//! promotion, see the parent module). The one promoted *later* holds the newer data. pilotlight's promotion record
//! (the `pilotlight:promote-requested-at` tag, ignored when copied from another instance) says when: the slot's instance
//! is retired only when the writer was promoted after it (or it never was). A slot promoted after the writer is the
//! newer writer (the direction looks wrong); with no record on either side nobody can tell. Both are refused unless
//! the override `allow_stale_writer`: renaming the instance the application writes to would cut it off.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::instance_status::{is_not_yet, is_transient, refusal_hint};
use super::{
    AVAILABLE, LAG_WINDOW, PROMOTE_REQUESTED_TAG, ReplicaLagSeen, STEP, describe_global_cluster,
    describe_instance, hint,
};
use crate::aws::cloudwatch::{Datapoint, replica_lag};
use crate::aws::rds::{
    GlobalClusterView, InstanceView, ReplicaSpec, create_read_replica, list_db_instances,
    rename_db_instance, start_db_instance,
};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{DatabasePlan, Direction, Mode, Side, arn_account};
use crate::runtime::Context;
use crate::step::{Change, StepInput, StepReport};
use crate::timestamp::rfc3339;

/// RDS DB instance identifiers have at most 63 characters.
pub const MAX_INSTANCE_ID: usize = 63;
/// `<id>-retired-<yyyymmddhhmm>` names a replaced instance.
pub const RETIRED_INFIX: &str = "-retired-";

/// What `prepare` / `reprotect` decided for the identifier that must hold a replica of the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaVerdict {
    /// An available replica of the writer holds the identifier.
    Ready,
    /// Something is under way (the replica being created, a rename, the writer settling): poll again.
    Pending(String),
    /// The identifier is free: create the replica.
    Create,
    /// A stale standalone instance holds the identifier: rename it to `retired_id`, then create the replica.
    RetireAndCreate { retired_id: String, reason: String },
    /// A stale instance holds the identifier but is stopped (fenced after a failover): start it (StartDBInstance)
    /// so it can be renamed; the polls then retire it like any stale instance.
    StartToRetire { reason: String },
    /// The state forbids the step; an operator must look.
    Refuse(String),
}

impl ReplicaVerdict {
    fn name(&self) -> &'static str {
        match self {
            ReplicaVerdict::Ready => "ready",
            ReplicaVerdict::Pending(_) => "pending",
            ReplicaVerdict::Create => "create",
            ReplicaVerdict::RetireAndCreate { .. } => "retire-and-create",
            ReplicaVerdict::StartToRetire { .. } => "start-to-retire",
            ReplicaVerdict::Refuse(_) => "refuse",
        }
    }
}

/// Whether a `ReadReplicaSourceDBInstanceIdentifier` names the instance `id` in `region`: AWS reports the source's
/// ARN for a cross-region replica and its plain identifier within one region.
pub fn names_instance(source: &str, id: &str, region: &str) -> bool {
    if source == id {
        return true;
    }
    let parts: Vec<&str> = source.split(':').collect();
    matches!(parts.as_slice(), ["arn", _, "rds", r, _, "db", name] if *r == region && *name == id)
}

/// `<id>-retired-<yyyymmddhhmm>` (UTC).
pub fn retired_name(id: &str, now: DateTime<Utc>) -> String {
    format!("{id}{RETIRED_INFIX}{}", now.format("%Y%m%d%H%M"))
}

/// Decides what `prepare` (slot = the target side) or `reprotect` (slot = the DR side) does. `slot` is the instance
/// holding `slot_id`, if any. Pure: see the module documentation for the rules.
pub fn decide_replica_slot(
    writer: &InstanceView,
    slot: Option<&InstanceView>,
    slot_id: &str,
    force: bool,
    now: DateTime<Utc>,
) -> ReplicaVerdict {
    use ReplicaVerdict::*;
    let w = &writer.instance;
    let wr = &writer.region;
    if writer.is_replica() {
        return Refuse(format!(
            "{w} in {wr} is itself a read replica (of {}), not the writer a new replica must follow: the graceful \
             path needs the current writer. Check the direction (a failback needs a failover first) or finish \
             promoting {w}",
            writer.replica_source.as_deref().unwrap_or("unknown")
        ));
    }
    match writer.status.as_str() {
        AVAILABLE => {}
        s if is_transient(s) => {
            return Pending(format!(
                "waiting: writer {w} in {wr} is {s}, which passes on its own; the replica is created from it once \
                 it is available"
            ));
        }
        s => {
            return Refuse(format!(
                "writer {w} in {wr} is {s} ({}): a replica can only be created from an available writer, and the \
                 graceful path needs the current writer. Check {w} and its events in the RDS console",
                refusal_hint(s)
            ));
        }
    }
    let Some(slot) = slot else {
        return Create;
    };
    let id = &slot.instance;
    let r = &slot.region;
    let follows_writer = slot
        .replica_source
        .as_deref()
        .is_some_and(|s| names_instance(s, w, wr));
    if slot.is_replica() {
        if !follows_writer {
            return Refuse(format!(
                "{id} in {r} is a read replica of {}, not of the writer {w} in {wr}: check the plan's DB instance \
                 identifiers; pilotlight does not re-point a replica",
                slot.replica_source.as_deref().unwrap_or("unknown")
            ));
        }
        return match slot.status.as_str() {
            AVAILABLE => match slot.replication_status.as_deref() {
                // AWS reports "replicating" for a healthy replica; no StatusInfos at all reports no problem either.
                None | Some("replicating") => Ready,
                Some(s) => Pending(format!(
                    "replica {id} of {w} is available but its replication is {s}: waiting; if it stays so, check \
                     the replica's events and replication errors in the RDS console ({r})"
                )),
            },
            s if is_transient(s) => Pending(format!(
                "waiting: replica {id} of {w} in {r} is {s}, which passes on its own"
            )),
            s => Refuse(format!(
                "replica {id} of {w} in {r} is {s} ({}): check it in the RDS console; if it cannot recover, delete \
                 it and re-run, which creates a new replica",
                refusal_hint(s)
            )),
        };
    }
    // Standalone (or promoted, with a lingering source field).
    if follows_writer && slot.status == "creating" {
        // A replica of the writer being created, whose record was copied from the writer before AWS reports its
        // InstanceCreateTime: nothing to do but wait.
        return Pending(format!("replica {id} of {w} in {r} is creating"));
    }
    if slot.status == "renaming" {
        return Pending(format!(
            "{id} in {r} is being renamed; the replica is created once the identifier is free"
        ));
    }
    let stale = match (writer.promotion_record(), slot.promotion_record()) {
        (Some(wt), None) => Ok(format!(
            "{w} was promoted at {} and {id} has not been promoted since it was created: {id} holds data from \
             before that promotion",
            rfc3339(wt, SecondsFormat::Secs)
        )),
        (Some(wt), Some(st)) if wt >= st => Ok(format!(
            "{w} was promoted at {}, after {id} (promoted at {}): {id} holds data from before that promotion",
            rfc3339(wt, SecondsFormat::Secs),
            rfc3339(st, SecondsFormat::Secs)
        )),
        (wt, Some(st)) => Err(format!(
            "{id} in {r} is a standalone instance promoted at {}, {}: it is the newer writer, and replacing it \
             would cut off its writes. Check the direction (this looks like the other way round); if {w} really is \
             the writer, re-run with the override allow_stale_writer to retire {id} (renamed, not deleted)",
            rfc3339(st, SecondsFormat::Secs),
            match wt {
                Some(wt) => format!(
                    "after the writer {w} (promoted at {})",
                    rfc3339(wt, SecondsFormat::Secs)
                ),
                None => format!("and the writer {w} carries no promotion record"),
            }
        )),
        (None, None) => Err(format!(
            "{id} in {r} is a standalone instance, and neither it nor the writer {w} carries a pilotlight promotion \
             record ({PROMOTE_REQUESTED_TAG}), so which one holds the newer data cannot be told. If {w} is the \
             writer (the application writes to it), re-run with the override allow_stale_writer to retire {id} (renamed, not deleted)"
        )),
    };
    let reason = match stale {
        Ok(reason) => reason,
        Err(reason) if force => format!("allow_stale_writer overrides: {reason}"),
        Err(reason) => return Refuse(reason),
    };
    match slot.status.as_str() {
        AVAILABLE => {}
        // Fenced (see `super::fence`): a stopped instance cannot be renamed, so it runs again first.
        "stopped" => {
            return StartToRetire {
                reason: format!(
                    "stale {id} in {r} is stopped (fenced); it is started so it can be renamed and retired: {reason}"
                ),
            };
        }
        // `stopping`: a fence is stopping it; it is started once stopped (above).
        s if is_transient(s) || s == "stopping" => {
            return Pending(format!(
                "waiting: stale instance {id} in {r} is {s}, which passes on its own; it is renamed once available"
            ));
        }
        s => {
            return Refuse(format!(
                "stale instance {id} in {r} is {s}, a status in which it cannot be renamed: rename it (or delete \
                 it, if its data is not needed) yourself, then re-run"
            ));
        }
    }
    let retired_id = retired_name(slot_id, now);
    if retired_id.len() > MAX_INSTANCE_ID {
        return Refuse(format!(
            "{id} in {r} must be retired, but {retired_id} is longer than the {MAX_INSTANCE_ID} characters RDS allows: \
             rename {id} yourself, then re-run"
        ));
    }
    RetireAndCreate { retired_id, reason }
}

/// The replica to create, or why it cannot be (a refusal, nothing changed). Copied onto it: the writer's class;
/// from the instance it replaces (`placement`, same region): the subnet group, security groups, DB parameter group
/// and option group (they live in one region: the writer's are not valid here); Multi-AZ and storage type from
/// the instance replaced, else the writer's. An encrypted writer needs a KMS key of the replica's region: the
/// plan's `kms_key` (`PILOTLIGHT_<SIDE>_DB_KMS_KEY_ID`) first, else the replaced instance's; with neither, AWS would
/// refuse the replica, so this refuses first, naming the variable to set. What CreateDBInstanceReadReplica does
/// not accept (backup retention) or pilotlight does not copy is listed in `not_copied`, for the report.
pub fn replica_spec(
    writer: &InstanceView,
    slot_id: &str,
    slot_region: &str,
    placement: Option<&InstanceView>,
    kms_key: Option<&str>,
    kms_variable: &str,
) -> std::result::Result<ReplicaSpec, String> {
    let like = placement.unwrap_or(writer);
    let (kms_key_id, kms_key_from) = match (writer.storage_encrypted, kms_key, placement) {
        (false, _, _) => (None, None),
        (true, Some(k), _) => (Some(k.to_string()), Some(kms_variable.to_string())),
        (true, None, Some(p)) if p.kms_key_id.is_some() => {
            (p.kms_key_id.clone(), Some(p.instance.clone()))
        }
        (true, None, _) => {
            return Err(format!(
                "the writer {} is encrypted, and a cross-region replica in {slot_region} must be encrypted with a KMS \
                 key of {slot_region}: none is known (no replaced instance there to take it from, and {kms_variable} \
                 is not set). Set {kms_variable} to the ARN of a KMS key in {slot_region}, then re-run; nothing was \
                 changed",
                writer.instance
            ));
        }
    };
    let storage_type = like.settings.storage_type.clone();
    let provisioned = matches!(storage_type.as_deref(), Some("io1" | "io2"));
    let mut not_copied = Vec::new();
    if placement.is_none() {
        not_copied.push(format!(
            "DBSubnetGroupName, VpcSecurityGroupIds, DBParameterGroupName, OptionGroupName: no instance in \
             {slot_region} to copy them from (they live in one region; the writer's are in {}): RDS's defaults apply",
            writer.region
        ));
    }
    if let Some(days) = like.settings.backup_retention.filter(|d| *d > 0) {
        not_copied.push(format!(
            "BackupRetentionPeriod ({days} days on {}): CreateDBInstanceReadReplica does not accept it; set it on \
             {slot_id} (ModifyDBInstance) once it is available if the replica needs its own automated backups",
            like.instance
        ));
    }
    if !provisioned && like.settings.iops.is_some() {
        not_copied.push(format!(
            "Iops / StorageThroughput of {}: left to the storage type's defaults",
            like.instance
        ));
    }
    not_copied.push(
        "monitoring, Performance Insights, log exports, IAM database authentication, deletion protection, \
         maintenance and backup windows: RDS's defaults"
            .to_string(),
    );
    Ok(ReplicaSpec {
        instance: slot_id.to_string(),
        source_arn: writer.arn.clone(),
        instance_class: writer.instance_class.clone(),
        subnet_group: placement.and_then(|p| p.subnet_group.clone()),
        security_groups: placement
            .map(|p| p.security_groups.clone())
            .unwrap_or_default(),
        kms_key_id,
        parameter_group: placement.and_then(|p| p.settings.parameter_group.clone()),
        option_group: placement.and_then(|p| p.settings.option_group.clone()),
        multi_az: like.settings.multi_az,
        storage_type,
        iops: like.settings.iops.filter(|_| provisioned),
        placement_from: placement.map(|p| p.instance.clone()),
        kms_key_from,
        not_copied,
    })
}

/// The ARN an instance `id` in `region` will have, in the writer's partition and account.
fn instance_arn(writer_arn: &str, region: &str, id: &str) -> String {
    let partition = writer_arn.split(':').nth(1).unwrap_or("aws");
    match arn_account(writer_arn) {
        Some(account) => format!("arn:{partition}:rds:{region}:{account}:db:{id}"),
        None => id.to_string(),
    }
}

/// What `catchup` decided from the newest ReplicaLag datapoint: (caught up, message). Only a 0 taken after the
/// drain finished (`drained_at`, the drain's report `finished_at`) counts: a 0 from before the drain says nothing
/// about the writes that arrived until it. A datapoint is stamped with the start of its minute, so the first one
/// that counts is the minute after the drain. Without `drained_at` (a catch-up called by hand) any 0 counts.
pub fn decide_catchup(
    instance: &str,
    lag: Option<Datapoint>,
    drained_at: Option<DateTime<Utc>>,
) -> (bool, String) {
    match lag {
        Some(d) if d.value == 0.0 && drained_at.is_some_and(|t| d.at < t) => (
            false,
            format!(
                "ReplicaLag of {instance} is 0 at {}, before the drain finished at {}: waiting for a lag-0 datapoint \
                 taken after the drain",
                rfc3339(d.at, SecondsFormat::Secs),
                rfc3339(drained_at.unwrap_or(d.at), SecondsFormat::Secs)
            ),
        ),
        None => (
            false,
            format!(
                "unknown lag: no ReplicaLag datapoint for {instance} in the last {} minutes; waiting, because \
                 graceful means zero data loss",
                LAG_WINDOW.as_secs() / 60
            ),
        ),
        Some(d) if d.value < 0.0 => (
            false,
            format!(
                "unknown lag: ReplicaLag of {instance} is {} at {} (replication not running); waiting, because \
                 graceful means zero data loss. If it stays so, check the replica's replication errors",
                d.value,
                rfc3339(d.at, SecondsFormat::Secs)
            ),
        ),
        Some(d) if d.value == 0.0 => (
            true,
            format!(
                "{instance} has caught up: ReplicaLag 0 at {}",
                rfc3339(d.at, SecondsFormat::Secs)
            ),
        ),
        Some(d) => (
            false,
            format!(
                "{instance} lags {}s behind its source (ReplicaLag at {}): waiting for 0",
                d.value,
                rfc3339(d.at, SecondsFormat::Secs)
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------

pub(super) async fn prepare(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    if input.direction == Direction::Failover && input.mode == Mode::Ungraceful {
        return Err(Error::invalid_input(format!(
            "{STEP}: prepare is part of the graceful path and needs the primary region (the current writer); an \
             ungraceful failover does not run it and never waits for the failed region. Send mode \"graceful\", or \
             run start for an ungraceful failover; nothing was changed"
        )));
    }
    let report = StepReport::begin(STEP, input);
    let (writer, slot) = (input.direction.source(), input.direction.target());
    match &ctx.plan.database {
        DatabasePlan::RdsReplica { .. } => ensure_replica(ctx, input, writer, slot, report).await,
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            check_member(
                ctx,
                input,
                global_cluster,
                writer,
                slot,
                Purpose::Prepare,
                report,
            )
            .await
        }
    }
}

pub(super) async fn reprotect(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    if input.direction != Direction::Failback {
        return Err(Error::invalid_input(format!(
            "{STEP}: reprotect is for failback only (once traffic is back in the primary region, the DR side becomes \
             a replica of the primary again); got direction {:?}; nothing was changed",
            input.direction.as_str()
        )));
    }
    let report = StepReport::begin(STEP, input);
    // After a failback the primary (its target) is the writer and the DR side (its source) must follow it.
    let (writer, slot) = (input.direction.target(), input.direction.source());
    match &ctx.plan.database {
        DatabasePlan::RdsReplica { .. } => ensure_replica(ctx, input, writer, slot, report).await,
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            check_member(
                ctx,
                input,
                global_cluster,
                writer,
                slot,
                Purpose::Reprotect,
                report,
            )
            .await
        }
    }
}

pub(super) async fn catchup(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let report = StepReport::begin(STEP, input);
    match &ctx.plan.database {
        DatabasePlan::RdsReplica { .. } => catch_up_replica(ctx, input, report).await,
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let (writer, slot) = (input.direction.source(), input.direction.target());
            check_member(
                ctx,
                input,
                global_cluster,
                writer,
                slot,
                Purpose::CatchUp,
                report,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// RDS: a replica of the writer under the plan's identifier
// ---------------------------------------------------------------------------------------------------------------

/// The instance holding `id`, or None when the identifier is free.
async fn find_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    variable: &str,
) -> Result<Option<InstanceView>> {
    match describe_instance(rds, region, id, variable).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The newest `<id>-retired-<yyyymmddhhmm>` instance in the region: where a replica that replaces it is placed when
/// the rename finished in an earlier invocation (on AWS a rename takes a while, so the create may come later).
async fn find_retired(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
) -> Result<Option<InstanceView>> {
    let prefix = format!("{id}{RETIRED_INFIX}");
    let instances = list_db_instances(rds, region, &format!("{prefix}* in {region}"))
        .await
        .map_err(|e| {
            hint(
                e,
                format!(
                    "looking for the retired instance whose subnet group and security groups the new replica {id} \
                     takes; check the promote-db role's rds:DescribeDBInstances permission in {region}"
                ),
            )
        })?;
    let mut newest: Option<InstanceView> = None;
    for instance in instances {
        let Some(stamp) = instance.instance.strip_prefix(&prefix) else {
            continue;
        };
        if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if newest
            .as_ref()
            .is_none_or(|n| n.instance < instance.instance)
        {
            newest = Some(instance);
        }
    }
    Ok(newest)
}

/// Renames `id` to `retired_id`: Ok(Some(why)) when AWS answered InvalidDBInstanceState (not yet: a later poll
/// asks again).
async fn rename_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    id: &str,
    retired_id: &str,
) -> Result<Option<String>> {
    match rename_db_instance(rds, id, retired_id).await {
        Ok(()) => Ok(None),
        Err(e) if is_not_yet(&e) => Ok(Some(e.message)),
        Err(e) => Err(match e.aws_code.as_deref() {
            Some("DBInstanceAlreadyExists") => Error::refused(format!(
                "{STEP}: {}; an instance named {retired_id} already exists in {region}: rename or delete one of \
                 them, then re-run",
                e.message
            )),
            _ => hint(
                e,
                format!(
                    "renaming {id} to {retired_id} in {region}; check the instance and the promote-db role's \
                 rds:ModifyDBInstance permission on both names"
                ),
            ),
        }),
    }
}

/// Creates the replica: Ok(Err(why)) when AWS answered InvalidDBInstanceState (the writer changed state: not yet).
async fn create_replica(
    rds: &aws_sdk_rds::Client,
    region: &str,
    spec: &ReplicaSpec,
) -> Result<std::result::Result<InstanceView, String>> {
    match create_read_replica(rds, region, spec).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if is_not_yet(&e) => Ok(Err(e.message)),
        Err(e) => Err(match e.aws_code.as_deref() {
            // Taken since it was read (another invocation?): a re-run observes what holds it and decides.
            Some("DBInstanceAlreadyExists") => Error::new(
                ErrorKind::Transient,
                format!("{STEP}: {}; retrying re-reads the identifier", e.message),
            ),
            _ => hint(
                e,
                format!(
                    "creating read replica {} of {} in {region}; check the promote-db role's \
                 rds:CreateDBInstanceReadReplica permission (on both instances), that the source has automated \
                 backups, and, for an encrypted source, the KMS key ({})",
                    spec.instance,
                    spec.source_arn,
                    spec.kms_key_from.as_deref().unwrap_or("none")
                ),
            ),
        }),
    }
}

/// Records a change the step plans but has not made (yet).
fn planned(report: &mut StepReport, resource: &str, field: &str, from: Value, to: Value) {
    report.changes.push(Change {
        resource: resource.to_string(),
        field: field.to_string(),
        from,
        to,
        applied: false,
    });
}

const RENAME_FIELD: &str = "ModifyDBInstance: NewDBInstanceIdentifier (ApplyImmediately)";
const CREATE_FIELD: &str = "CreateDBInstanceReadReplica";

/// What `prepare` / `reprotect` saw: the writer and whatever holds the identifier its replica must have.
#[derive(Serialize)]
struct ReplicaSlotSaw<'a> {
    database: &'static str,
    writer: &'a InstanceView,
    writer_writable: bool,
    replica_id: &'a str,
    replica_region: &'a str,
    holder: Option<&'a InstanceView>,
    holder_is_replica_of_writer: bool,
    decision: &'static str,
    /// When the replica was created: how long preparation took, in the report.
    replica_created_at: Option<DateTime<Utc>>,
    /// Why a writer with a lingering replication source counts as promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_because: Option<String>,
    /// The replica this call created.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<InstanceView>,
}

/// `prepare` (writer = source side, slot = target side) and `reprotect` (writer = primary, slot = DR).
async fn ensure_replica(
    ctx: &Context,
    input: &StepInput,
    writer_side: Side,
    slot_side: Side,
    mut report: StepReport,
) -> Result<StepReport> {
    let writer_region = &ctx.plan.region(writer_side).region;
    let slot_region = &ctx.plan.region(slot_side).region;
    let writer_id = ctx.plan.database.resource(writer_side);
    let slot_id = ctx.plan.database.resource(slot_side);
    let writer_rds = ctx.aws.region(writer_side).rds();
    let slot_rds = ctx.aws.region(slot_side).rds();
    let now = Utc::now();
    let action = input.action.as_str();

    let (writer_variable, slot_variable) = (
        writer_side.variable("DB_INSTANCE"),
        slot_side.variable("DB_INSTANCE"),
    );
    // Observe both sides first (concurrently: one of them is the source region, bounded by its own timeouts).
    let (writer, slot) = tokio::join!(
        describe_instance(writer_rds, writer_region, writer_id, &writer_variable),
        find_instance(slot_rds, slot_region, slot_id, &slot_variable),
    );
    let writer = writer.map_err(|e| match e.kind {
        ErrorKind::NotFound | ErrorKind::Aws => e,
        _ => Error::new(
            e.kind,
            format!(
                "{}; {action} needs the current writer {writer_id} in {writer_region}: if that region is down, a \
                 graceful {} cannot run",
                e.message,
                input.direction.as_str()
            ),
        ),
    })?;
    let slot = slot?;
    let verdict = decide_replica_slot(
        &writer,
        slot.as_ref(),
        slot_id,
        input.overrides.allow_stale_writer,
        now,
    );
    let follows = slot.as_ref().filter(|s| {
        s.is_replica()
            && s.replica_source
                .as_deref()
                .is_some_and(|src| names_instance(src, writer_id, writer_region))
    });
    let mut saw = ReplicaSlotSaw {
        database: "rds-replica",
        writer: &writer,
        writer_writable: writer.writable(),
        replica_id: slot_id,
        replica_region: slot_region,
        holder: slot.as_ref(),
        holder_is_replica_of_writer: follows.is_some(),
        decision: verdict.name(),
        replica_created_at: follows.and_then(|s| s.created_at),
        note: None,
        stale_because: None,
        created: None,
    };
    if writer.replica_source.is_some() && !writer.is_replica() {
        saw.note = Some(format!(
            "{writer_id} still names a replication source, but its promotion is recorded and AWS reports no \
             read-replication status: treated as promoted (AWS clears the field when a promotion finishes; moto \
             never does)"
        ));
    }

    let replica_arn = instance_arn(&writer.arn, slot_region, slot_id);
    let kms_variable = slot_side.variable("DB_KMS_KEY_ID");
    let kms_key = ctx.plan.region(slot_side).db.kms_key_id.as_deref();
    let spec_for = |placement: Option<&InstanceView>| {
        replica_spec(
            &writer,
            slot_id,
            slot_region,
            placement,
            kms_key,
            &kms_variable,
        )
        .map_err(|why| Error::refused(format!("{STEP}: {action}: {why}")))
    };
    match verdict {
        ReplicaVerdict::Refuse(reason) => {
            report.record_saw(&saw);
            Err(Error::refused(format!("{STEP}: {action}: {reason}")))
        }
        ReplicaVerdict::Ready => {
            report.record_saw(&saw);
            Ok(report.finish(
                true,
                format!(
                    "{slot_id} in {slot_region} is an available read replica of the writer {writer_id} ({writer_region})"
                ),
            ))
        }
        ReplicaVerdict::Pending(reason) => {
            report.record_saw(&saw);
            // Dry-run never waits (docs/contract.md).
            Ok(report.finish(input.dry_run, reason))
        }
        ReplicaVerdict::Create => {
            let placement = find_retired(slot_rds, slot_region, slot_id).await?;
            let spec = match spec_for(placement.as_ref()) {
                Ok(spec) => spec,
                Err(e) => {
                    report.record_saw(&saw);
                    return Err(e);
                }
            };
            report.change(&replica_arn, CREATE_FIELD, Value::Null, json!(spec));
            if input.dry_run {
                report.record_saw(&saw);
                return Ok(report.finish(
                    true,
                    format!(
                        "dry-run: would create read replica {slot_id} of {writer_id} in {slot_region}{}",
                        placement_note(&spec)
                    ),
                ));
            }
            let created = match create_replica(slot_rds, slot_region, &spec).await? {
                Ok(created) => created,
                Err(why) => return Ok(not_yet_created(report, &saw, slot_id, slot_region, &why)),
            };
            saw.replica_created_at = created.created_at;
            saw.created = Some(created);
            report.record_saw(&saw);
            Ok(report.finish(
                false,
                format!(
                    "creating read replica {slot_id} of {writer_id} in {slot_region}{}; poll {action} until it is \
                     available",
                    placement_note(&spec)
                ),
            ))
        }
        ReplicaVerdict::StartToRetire { reason } => {
            saw.stale_because = Some(reason.clone());
            report.change(
                &instance_arn(&writer.arn, slot_region, slot_id),
                "status",
                json!("stopped"),
                json!(AVAILABLE),
            );
            report.record_saw(&saw);
            if input.dry_run {
                return Ok(report.finish(
                    true,
                    format!(
                        "dry-run: would start {slot_id} in {slot_region} to retire it ({reason})"
                    ),
                ));
            }
            start_db_instance(slot_rds, slot_id).await.map_err(|e| {
                hint(
                    e,
                    format!(
                        "starting the fenced {slot_id} in {slot_region} so it can be retired; check the instance and                          the promote-db role's rds:StartDBInstance permission"
                    ),
                )
            })?;
            Ok(report.finish(
                false,
                format!("starting {slot_id} in {slot_region} ({reason}); poll {action}: it is renamed once available"),
            ))
        }
        ReplicaVerdict::RetireAndCreate { retired_id, reason } => {
            // decide_replica_slot retires only an instance it was given.
            let Some(holder) = slot.as_ref() else {
                return Err(Error::new(
                    ErrorKind::Aws,
                    format!("{STEP}: {action}: no instance holds {slot_id} to retire; re-run"),
                ));
            };
            // Judged before the rename: a replica that could not be created must not cost the slot its instance.
            let spec = match spec_for(Some(holder)) {
                Ok(spec) => spec,
                Err(e) => {
                    report.record_saw(&saw);
                    return Err(e);
                }
            };
            saw.stale_because = Some(reason.clone());
            report.change(&holder.arn, RENAME_FIELD, json!(slot_id), json!(retired_id));
            if input.dry_run {
                report.change(&replica_arn, CREATE_FIELD, Value::Null, json!(spec));
                report.record_saw(&saw);
                return Ok(report.finish(
                    true,
                    format!(
                        "dry-run: would rename stale {slot_id} to {retired_id} ({reason}) and create read replica \
                         {slot_id} of {writer_id} in {slot_region}"
                    ),
                ));
            }
            if let Some(why) = rename_instance(slot_rds, slot_region, slot_id, &retired_id).await? {
                if let Some(c) = report.changes.last_mut() {
                    c.applied = false;
                }
                report.record_saw(&saw);
                return Ok(report.finish(
                    false,
                    format!(
                        "waiting: AWS did not take the rename of stale {slot_id} in {slot_region} yet ({why}): it \
                         changed state since it was read; {action} asks again once it is available"
                    ),
                ));
            }
            // AWS frees the identifier when the rename takes effect, at once or a little later. Create now if it is free,
            // otherwise the next poll does (placing the replica like the retired instance, found by its name).
            let freed = find_instance(
                slot_rds,
                slot_region,
                slot_id,
                &slot_side.variable("DB_INSTANCE"),
            )
            .await?
            .is_none();
            if !freed {
                planned(
                    &mut report,
                    &replica_arn,
                    CREATE_FIELD,
                    Value::Null,
                    json!(spec),
                );
                report.record_saw(&saw);
                return Ok(report.finish(
                    false,
                    format!(
                        "renaming stale {slot_id} to {retired_id} in {slot_region} ({reason}); read replica \
                         {slot_id} of {writer_id} is created once the identifier is free: poll {action}"
                    ),
                ));
            }
            report.change(&replica_arn, CREATE_FIELD, Value::Null, json!(spec));
            let created = match create_replica(slot_rds, slot_region, &spec).await? {
                Ok(created) => created,
                Err(why) => return Ok(not_yet_created(report, &saw, slot_id, slot_region, &why)),
            };
            saw.replica_created_at = created.created_at;
            saw.created = Some(created);
            report.record_saw(&saw);
            Ok(report.finish(
                false,
                format!(
                    "renamed stale {slot_id} to {retired_id} in {slot_region} ({reason}; kept, delete it once its \
                     data is not needed) and creating read replica {slot_id} of {writer_id}; poll {action} until it \
                     is available"
                ),
            ))
        }
    }
}

/// AWS answered InvalidDBInstanceState to CreateDBInstanceReadReplica: not yet (the next poll re-reads and asks again).
fn not_yet_created(
    mut report: StepReport,
    saw: &ReplicaSlotSaw,
    slot_id: &str,
    slot_region: &str,
    why: &str,
) -> StepReport {
    if let Some(c) = report.changes.last_mut() {
        c.applied = false;
    }
    report.record_saw(saw);
    let action = report.action.as_str();
    report.finish(
        false,
        format!(
            "waiting: AWS did not take the creation of read replica {slot_id} in {slot_region} yet ({why}): the \
             writer changed state since it was read; {action} asks again once it is available"
        ),
    )
}

fn placement_note(spec: &ReplicaSpec) -> String {
    match &spec.placement_from {
        Some(from) => format!(
            " (subnet group, security groups, parameter and option groups, Multi-AZ and storage type of {from}{}; not \
             copied: {})",
            spec.kms_key_from
                .as_deref()
                .map(|k| format!(", KMS key from {k}"))
                .unwrap_or_default(),
            spec.not_copied.join("; ")
        ),
        None => format!(" (not copied: {})", spec.not_copied.join("; ")),
    }
}

/// What `catchup` saw (RDS): the target replica and its lag behind the writer.
#[derive(Serialize)]
struct CatchUpSaw<'a> {
    database: &'static str,
    target: &'a InstanceView,
    writer: InstanceAt<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_lag: Option<ReplicaLagSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caught_up: Option<bool>,
}

/// An instance named by identifier and region.
#[derive(Serialize)]
struct InstanceAt<'a> {
    instance: &'a str,
    region: &'a str,
}

async fn catch_up_replica(
    ctx: &Context,
    input: &StepInput,
    mut report: StepReport,
) -> Result<StepReport> {
    let (target, source) = (input.direction.target(), input.direction.source());
    let region = &ctx.plan.region(target).region;
    let instance = ctx.plan.database.resource(target);
    let source_region = &ctx.plan.region(source).region;
    let source_id = ctx.plan.database.resource(source);
    let clients = ctx.aws.region(target);
    let now = Utc::now();

    // Only the target region is read: the replica itself, and its lag in the target region's CloudWatch.
    let view = describe_instance(
        clients.rds(),
        region,
        instance,
        &target.variable("DB_INSTANCE"),
    )
    .await?;
    let mut saw = CatchUpSaw {
        database: "rds-replica",
        target: &view,
        writer: InstanceAt {
            instance: source_id,
            region: source_region,
        },
        replica_lag: None,
        caught_up: None,
    };
    if !view.is_replica() {
        report.record_saw(&saw);
        if view.promotion_recorded_since(now) {
            return Ok(report.finish(
                true,
                format!("{instance} in {region} was already promoted: nothing to catch up"),
            ));
        }
        return Err(Error::refused(format!(
            "{STEP}: catchup: {instance} in {region} is not a read replica, so there is nothing that could catch up \
             with {source_id}: run prepare first (it makes {instance} a replica of the writer)"
        )));
    }
    let source = view.replica_source.as_deref().unwrap_or_default();
    if !names_instance(source, source_id, source_region) {
        report.record_saw(&saw);
        return Err(Error::refused(format!(
            "{STEP}: catchup: {instance} in {region} is a read replica of {source}, not of the writer {source_id} in \
             {source_region}: run prepare, or check the plan's DB instance identifiers"
        )));
    }
    let lag = replica_lag(clients.cloudwatch(), instance, now, LAG_WINDOW)
        .await
        .map_err(|e| {
            hint(
                e,
                format!(
                    "check the promote-db role's cloudwatch:GetMetricData permission ({region})"
                ),
            )
        })?;
    saw.replica_lag = Some(ReplicaLagSeen::of(lag, now));
    let (caught_up, message) = decide_catchup(instance, lag, input.drained_at);
    saw.caught_up = Some(caught_up);
    report.record_saw(&saw);
    Ok(report.finish(caught_up || input.dry_run, message))
}

// ---------------------------------------------------------------------------------------------------------------
// Aurora global database: observe only
// ---------------------------------------------------------------------------------------------------------------

/// Which action asks about the secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Prepare,
    CatchUp,
    Reprotect,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuroraVerdict {
    Ready(String),
    Pending(String),
    Refuse(String),
}

impl AuroraVerdict {
    fn name(&self) -> &'static str {
        match self {
            AuroraVerdict::Ready(_) => "ready",
            AuroraVerdict::Pending(_) => "pending",
            AuroraVerdict::Refuse(_) => "refuse",
        }
    }
}

/// Decides whether `secondary` is a secondary of the global cluster following `writer`. Nothing here changes
/// anything: after a managed failover or switchover AWS re-attaches the old writer as a secondary itself.
pub fn decide_aurora_member(
    g: &GlobalClusterView,
    writer: &str,
    secondary: &str,
    purpose: Purpose,
) -> AuroraVerdict {
    use AuroraVerdict::*;
    let id = &g.global_cluster;
    let Some(member) = g.members.iter().find(|m| m.cluster_arn == secondary) else {
        let members: Vec<&str> = g.members.iter().map(|m| m.cluster_arn.as_str()).collect();
        return Pending(format!(
            "{secondary} is not a member of global cluster {id} (members: {}): after a managed failover Aurora adds \
             the old writer back as a secondary once its region is available. If it stays out (it was removed, or \
             its region's cluster was replaced), add it back to {id}; pilotlight does not rebuild Aurora clusters",
            if members.is_empty() {
                "none".to_string()
            } else {
                members.join(", ")
            }
        ));
    };
    if let Some(f) = &g.failover {
        return Pending(format!(
            "global cluster {id} is switching its writer to {} ({}); waiting for it to finish",
            f.to_cluster_arn.as_deref().unwrap_or("unknown"),
            f.status
        ));
    }
    if member.is_writer {
        return match purpose {
            Purpose::Prepare | Purpose::CatchUp => Ready(format!(
                "{secondary} is already the writer of global cluster {id}: nothing to {}",
                if purpose == Purpose::Prepare {
                    "prepare"
                } else {
                    "catch up"
                }
            )),
            Purpose::Reprotect => Refuse(format!(
                "{secondary} (DR) is still the writer of global cluster {id}: the failback has not moved the writer \
                 back to {writer}; finish promote-db start/status first"
            )),
        };
    }
    match g.writer() {
        Some(w) if w == writer => {}
        Some(w) => {
            return Refuse(format!(
                "the writer of global cluster {id} is {w}, not the plan's {writer}: check the plan's cluster ARNs \
                 and the direction"
            ));
        }
        None => {
            return Refuse(format!(
                "global cluster {id} has no writer: a secondary can only follow a writer; check {id} in the RDS \
                 console"
            ));
        }
    }
    if member.synchronization.as_deref() == Some("pending-resync") {
        return Pending(format!(
            "{secondary} is a secondary of {id} being resynchronised (pending-resync); waiting"
        ));
    }
    if g.status != AVAILABLE {
        return Pending(format!(
            "global cluster {id} is {}; waiting for available",
            g.status
        ));
    }
    let sync = member.synchronization.as_deref().unwrap_or("not reported");
    Ready(match purpose {
        Purpose::Prepare => format!(
            "{secondary} is a secondary of global cluster {id} following the writer {writer} (synchronization {sync})"
        ),
        Purpose::CatchUp => format!(
            "nothing to wait for: SwitchoverGlobalCluster, the graceful promotion, itself waits until {secondary} \
             has caught up with {writer} before it switches (no data loss), and {secondary} is a secondary of {id} \
             (synchronization {sync})"
        ),
        Purpose::Reprotect => format!(
            "{secondary} (DR) is a secondary of global cluster {id} again, following {writer} (synchronization {sync})"
        ),
    })
}

/// What the graceful actions saw of an Aurora global database: is the secondary following the writer.
#[derive(Serialize)]
struct MembershipSaw<'a> {
    database: &'static str,
    global_cluster: &'a GlobalClusterView,
    writer_cluster_arn: &'a str,
    secondary_cluster_arn: &'a str,
    decision: &'static str,
}

async fn check_member(
    ctx: &Context,
    input: &StepInput,
    global_cluster: &str,
    writer_side: Side,
    secondary_side: Side,
    purpose: Purpose,
    mut report: StepReport,
) -> Result<StepReport> {
    // DescribeGlobalClusters answers from any region: ask the side that becomes (or stays) active.
    let side = input.direction.target();
    let region = &ctx.plan.region(side).region;
    let writer = ctx.plan.database.resource(writer_side);
    let secondary = ctx.plan.database.resource(secondary_side);
    let g = describe_global_cluster(ctx.aws.region(side).rds(), region, global_cluster).await?;
    let verdict = decide_aurora_member(&g, writer, secondary, purpose);
    report.record_saw(&MembershipSaw {
        database: "aurora-global",
        global_cluster: &g,
        writer_cluster_arn: writer,
        secondary_cluster_arn: secondary,
        decision: verdict.name(),
    });
    match verdict {
        AuroraVerdict::Ready(message) => Ok(report.finish(true, message)),
        AuroraVerdict::Pending(message) => Ok(report.finish(input.dry_run, message)),
        AuroraVerdict::Refuse(reason) => Err(Error::refused(format!(
            "{STEP}: {}: {reason} ({} / {})",
            input.action.as_str(),
            writer_side.variable("DB_CLUSTER_ARN"),
            secondary_side.variable("DB_CLUSTER_ARN")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::rds::{FailoverView, MemberView};
    use chrono::TimeDelta;

    const PRIMARY_ARN: &str = "arn:aws:rds:ap-northeast-2:123456789012:db:web-db";
    const DR_ARN: &str = "arn:aws:rds:ap-northeast-1:123456789012:db:web-db-replica";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn instance(id: &str, arn: &str, region: &str) -> InstanceView {
        InstanceView {
            instance: id.into(),
            arn: arn.into(),
            region: region.into(),
            status: "available".into(),
            replica_source: None,
            replicas: vec![],
            replication_status: None,
            promote_requested_at: None,
            recorded_rpo: None,
            promoted_instance: None,
            created_at: Some(now() - TimeDelta::days(90)),
            instance_class: Some("db.r6g.large".into()),
            subnet_group: None,
            security_groups: vec![],
            storage_encrypted: false,
            kms_key_id: None,
            settings: Default::default(),
        }
    }

    /// After a failover: the DR instance, promoted (recorded) a day ago; AWS cleared its source.
    fn dr_writer() -> InstanceView {
        InstanceView {
            promote_requested_at: Some(now() - TimeDelta::days(1)),
            promoted_instance: Some(DR_ARN.into()),
            ..instance("web-db-replica", DR_ARN, "ap-northeast-1")
        }
    }

    /// The old primary after the outage: standalone, never promoted; a production instance.
    fn old_primary() -> InstanceView {
        InstanceView {
            settings: crate::aws::rds::InstanceSettings {
                parameter_group: Some("web-mysql80".into()),
                option_group: Some("web-mysql-8-0".into()),
                multi_az: Some(true),
                storage_type: Some("io1".into()),
                iops: Some(3000),
                backup_retention: Some(7),
                pending: Default::default(),
            },
            subnet_group: Some("web-db-subnets".into()),
            security_groups: vec!["sg-0aa".into()],
            storage_encrypted: true,
            kms_key_id: Some("arn:aws:kms:ap-northeast-2:123456789012:key/k1".into()),
            ..instance("web-db", PRIMARY_ARN, "ap-northeast-2")
        }
    }

    /// A fresh cross-region replica of the DR writer under the primary's identifier.
    fn primary_replica(status: &str) -> InstanceView {
        InstanceView {
            status: status.into(),
            replica_source: Some(DR_ARN.into()),
            replication_status: Some("replicating".into()),
            created_at: Some(now() - TimeDelta::minutes(20)),
            ..instance("web-db", PRIMARY_ARN, "ap-northeast-2")
        }
    }

    fn decide(writer: &InstanceView, slot: Option<&InstanceView>, force: bool) -> ReplicaVerdict {
        decide_replica_slot(writer, slot, "web-db", force, now())
    }

    #[test]
    fn source_names_match_arns_across_regions_and_ids_within_one() {
        assert!(names_instance(DR_ARN, "web-db-replica", "ap-northeast-1"));
        assert!(names_instance("web-db", "web-db", "ap-northeast-2"));
        assert!(!names_instance(DR_ARN, "web-db-replica", "ap-northeast-2"));
        assert!(!names_instance(DR_ARN, "web-db", "ap-northeast-1"));
        assert!(!names_instance(
            "arn:aws:rds:ap-northeast-1:123456789012:cluster:web-db-replica",
            "web-db-replica",
            "ap-northeast-1"
        ));
    }

    #[test]
    fn a_free_identifier_gets_a_replica_and_an_available_one_is_ready() {
        assert_eq!(decide(&dr_writer(), None, false), ReplicaVerdict::Create);
        assert_eq!(
            decide(&dr_writer(), Some(&primary_replica("available")), false),
            ReplicaVerdict::Ready
        );
        // moto never reports StatusInfos: an available replica without them is ready too.
        let moto = InstanceView {
            replication_status: None,
            ..primary_replica("available")
        };
        assert_eq!(
            decide(&dr_writer(), Some(&moto), false),
            ReplicaVerdict::Ready
        );
    }

    #[test]
    fn a_replica_being_created_is_pending_and_nothing_is_created_twice() {
        for s in ["creating", "modifying", "backing-up", "rebooting"] {
            let v = decide(&dr_writer(), Some(&primary_replica(s)), false);
            assert!(
                matches!(&v, ReplicaVerdict::Pending(r) if r.contains(s)),
                "{s}: {v:?}"
            );
        }
        // AWS may report no InstanceCreateTime while creating; a record copied from the writer then looks like a
        // promotion. The source naming the writer and the status still say what it is.
        let copied = InstanceView {
            status: "creating".into(),
            created_at: None,
            replication_status: None,
            promote_requested_at: dr_writer().promote_requested_at,
            ..primary_replica("creating")
        };
        assert!(!copied.is_replica());
        assert!(matches!(
            decide(&dr_writer(), Some(&copied), false),
            ReplicaVerdict::Pending(_)
        ));
        let stopped = InstanceView {
            replication_status: Some("error".into()),
            ..primary_replica("available")
        };
        assert!(
            matches!(decide(&dr_writer(), Some(&stopped), false), ReplicaVerdict::Pending(r) if r.contains("error"))
        );
        assert!(matches!(
            decide(&dr_writer(), Some(&primary_replica("incompatible-parameters")), false),
            ReplicaVerdict::Refuse(r) if r.contains("incompatible-parameters") && r.contains("delete it")
        ));
    }

    #[test]
    fn the_stale_old_primary_is_retired_with_a_dated_name() {
        match decide(&dr_writer(), Some(&old_primary()), false) {
            ReplicaVerdict::RetireAndCreate { retired_id, reason } => {
                assert_eq!(retired_id, "web-db-retired-202611291000");
                assert!(reason.contains("web-db-replica was promoted"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // An older promotion of the old primary (an earlier failback) does not make it newer.
        let earlier = InstanceView {
            promote_requested_at: Some(now() - TimeDelta::days(30)),
            ..old_primary()
        };
        assert!(matches!(
            decide(&dr_writer(), Some(&earlier), false),
            ReplicaVerdict::RetireAndCreate { .. }
        ));
    }

    #[test]
    fn a_slot_promoted_after_the_writer_is_the_newer_writer_and_is_refused_unless_forced() {
        // A graceful failover asked for after a failover: the DR side was promoted, the primary is stale.
        let primary_as_writer = InstanceView {
            promote_requested_at: None,
            ..old_primary()
        };
        let promoted_dr = dr_writer();
        let v = decide_replica_slot(
            &primary_as_writer,
            Some(&promoted_dr),
            "web-db-replica",
            false,
            now(),
        );
        assert!(
            matches!(&v, ReplicaVerdict::Refuse(r) if r.contains("newer writer") && r.contains("allow_stale_writer")),
            "{v:?}"
        );
        // moto's view of the same: the promoted DR instance still names the primary as its source.
        let moto_dr = InstanceView {
            replica_source: Some(PRIMARY_ARN.into()),
            ..dr_writer()
        };
        assert!(!moto_dr.is_replica());
        assert!(matches!(
            decide_replica_slot(&primary_as_writer, Some(&moto_dr), "web-db-replica", false, now()),
            ReplicaVerdict::Refuse(r) if r.contains("newer writer")
        ));
        assert!(matches!(
            decide_replica_slot(&primary_as_writer, Some(&moto_dr), "web-db-replica", true, now()),
            ReplicaVerdict::RetireAndCreate { reason, .. } if reason.starts_with("allow_stale_writer")
        ));
    }

    #[test]
    fn without_records_on_either_side_the_slot_is_refused_unless_forced() {
        let writer = InstanceView {
            promote_requested_at: None,
            ..dr_writer()
        };
        assert!(matches!(
            decide(&writer, Some(&old_primary()), false),
            ReplicaVerdict::Refuse(r) if r.contains("cannot be told") && r.contains("allow_stale_writer")
        ));
        assert!(matches!(
            decide(&writer, Some(&old_primary()), true),
            ReplicaVerdict::RetireAndCreate { .. }
        ));
    }

    #[test]
    fn a_record_copied_from_the_source_is_not_a_promotion() {
        // The primary re-created as a replica of the DR writer carries the writer's record (moto copies tags).
        let copied = InstanceView {
            promote_requested_at: dr_writer().promote_requested_at,
            promoted_instance: dr_writer().promoted_instance,
            replication_status: None,
            ..primary_replica("available")
        };
        assert_eq!(copied.promotion_record(), None);
        assert!(copied.is_replica());
        assert_eq!(
            decide(&dr_writer(), Some(&copied), false),
            ReplicaVerdict::Ready
        );
        // moto copies InstanceCreateTime as well: the ARN the record names is what tells.
        let moto = InstanceView {
            created_at: dr_writer().created_at,
            ..copied
        };
        assert_eq!(moto.promotion_record(), None);
        assert_eq!(
            decide(&dr_writer(), Some(&moto), false),
            ReplicaVerdict::Ready
        );
    }

    #[test]
    fn the_writer_must_be_an_available_standalone_instance() {
        let still_replica = InstanceView {
            replica_source: Some(PRIMARY_ARN.into()),
            replication_status: Some("replicating".into()),
            promote_requested_at: None,
            ..dr_writer()
        };
        assert!(matches!(
            decide(&still_replica, None, false),
            ReplicaVerdict::Refuse(r) if r.contains("itself a read replica") && r.contains("current writer")
        ));
        for (s, pending) in [
            ("backing-up", true),
            ("modifying", true),
            ("stopped", false),
            ("storage-full", false),
        ] {
            let w = InstanceView {
                status: s.into(),
                ..dr_writer()
            };
            let v = decide(&w, Some(&old_primary()), false);
            match v {
                ReplicaVerdict::Pending(r) if pending => assert!(r.contains(s)),
                ReplicaVerdict::Refuse(r) if !pending => {
                    assert!(r.contains(s) && r.contains("available writer"))
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_slot_that_replicates_something_else_is_refused() {
        let elsewhere = InstanceView {
            replica_source: Some("arn:aws:rds:ap-northeast-1:123456789012:db:other".into()),
            ..primary_replica("available")
        };
        assert!(matches!(
            decide(&dr_writer(), Some(&elsewhere), false),
            ReplicaVerdict::Refuse(r) if r.contains("not of the writer")
        ));
    }

    #[test]
    fn a_stale_instance_is_renamed_only_when_it_can_be() {
        let renaming = InstanceView {
            status: "renaming".into(),
            ..old_primary()
        };
        assert!(
            matches!(decide(&dr_writer(), Some(&renaming), false), ReplicaVerdict::Pending(r) if r.contains("renamed"))
        );
        let stopped = InstanceView {
            status: "stopped".into(),
            ..old_primary()
        };
        // A fenced (stopped) old primary is started first, then retired; one still stopping is waited for.
        assert!(
            matches!(decide(&dr_writer(), Some(&stopped), false), ReplicaVerdict::StartToRetire { reason } if reason.contains("fenced"))
        );
        let stopping = InstanceView {
            status: "stopping".into(),
            ..old_primary()
        };
        assert!(matches!(
            decide(&dr_writer(), Some(&stopping), false),
            ReplicaVerdict::Pending(_)
        ));
        let failed = InstanceView {
            status: "failed".into(),
            ..old_primary()
        };
        assert!(
            matches!(decide(&dr_writer(), Some(&failed), false), ReplicaVerdict::Refuse(r) if r.contains("failed"))
        );
        let long_id = "d".repeat(43);
        let long = InstanceView {
            instance: long_id.clone(),
            ..old_primary()
        };
        assert!(matches!(
            decide_replica_slot(&dr_writer(), Some(&long), &long_id, false, now()),
            ReplicaVerdict::Refuse(r) if r.contains("63 characters")
        ));
        let fits = "d".repeat(42);
        assert_eq!(retired_name(&fits, now()).len(), 63);
    }

    #[test]
    fn the_replica_takes_the_writers_class_and_the_retired_instances_placement() {
        const VAR: &str = "PILOTLIGHT_PRIMARY_DB_KMS_KEY_ID";
        let spec_of = |w: &InstanceView, p: Option<&InstanceView>, k: Option<&str>| {
            replica_spec(w, "web-db", "ap-northeast-2", p, k, VAR)
        };
        let writer = InstanceView {
            instance_class: Some("db.r6g.xlarge".into()),
            ..dr_writer()
        };
        let spec = spec_of(&writer, Some(&old_primary()), None).unwrap();
        assert_eq!(spec.source_arn, DR_ARN);
        assert_eq!(spec.instance_class.as_deref(), Some("db.r6g.xlarge"));
        assert_eq!(spec.subnet_group.as_deref(), Some("web-db-subnets"));
        assert_eq!(spec.security_groups, vec!["sg-0aa".to_string()]);
        // The regional settings come from the instance replaced (the writer's groups live in its own region).
        assert_eq!(spec.parameter_group.as_deref(), Some("web-mysql80"));
        assert_eq!(spec.option_group.as_deref(), Some("web-mysql-8-0"));
        assert_eq!(spec.multi_az, Some(true));
        assert_eq!(
            (spec.storage_type.as_deref(), spec.iops),
            (Some("io1"), Some(3000))
        );
        // Backup retention cannot be given to CreateDBInstanceReadReplica: the report says so.
        assert!(
            spec.not_copied
                .iter()
                .any(|n| n.contains("BackupRetentionPeriod (7 days on web-db)")),
            "{:?}",
            spec.not_copied
        );
        // The writer is unencrypted: a KMS key would be rejected.
        assert_eq!(spec.kms_key_id, None);
        let encrypted = InstanceView {
            storage_encrypted: true,
            ..writer
        };
        let spec = spec_of(&encrypted, Some(&old_primary()), None).unwrap();
        assert_eq!(
            (spec.kms_key_id.as_deref(), spec.kms_key_from.as_deref()),
            (
                Some("arn:aws:kms:ap-northeast-2:123456789012:key/k1"),
                Some("web-db")
            )
        );
        // The plan's key wins over the replaced instance's.
        let planned = "arn:aws:kms:ap-northeast-2:123456789012:key/plan";
        let spec = spec_of(&encrypted, Some(&old_primary()), Some(planned)).unwrap();
        assert_eq!(
            (spec.kms_key_id.as_deref(), spec.kms_key_from.as_deref()),
            (Some(planned), Some(VAR))
        );
        // Encrypted, no replaced instance, no key in the plan: refused, naming what to set.
        let why = spec_of(&encrypted, None, None).unwrap_err();
        assert!(
            why.contains(VAR)
                && why.contains("ap-northeast-2")
                && why.contains("nothing was changed"),
            "{why}"
        );
        let bare = spec_of(&encrypted, None, Some(planned)).unwrap();
        assert_eq!(
            (bare.subnet_group, bare.parameter_group, bare.placement_from),
            (None, None, None)
        );
        assert!(
            bare.not_copied[0].contains("RDS's defaults apply"),
            "{:?}",
            bare.not_copied
        );
        // Multi-AZ and storage type fall back to the writer's.
        assert_eq!(bare.multi_az, None);
        let shown =
            serde_json::to_value(spec_of(&encrypted, Some(&old_primary()), None).unwrap()).unwrap();
        assert_eq!(shown["SourceDBInstanceIdentifier"], json!(DR_ARN));
        assert_eq!(shown["DBInstanceIdentifier"], json!("web-db"));
        assert_eq!(shown["DBParameterGroupName"], json!("web-mysql80"));
        assert_eq!(shown["MultiAZ"], json!(true));
        assert_eq!(
            instance_arn(DR_ARN, "ap-northeast-2", "web-db"),
            PRIMARY_ARN
        );
    }

    #[test]
    fn catchup_is_done_only_at_a_known_lag_of_zero() {
        let at = now();
        let (done, m) = decide_catchup("web-db", None, None);
        assert!(
            !done && m.contains("unknown lag") && m.contains("zero data loss"),
            "{m}"
        );
        let (done, m) = decide_catchup("web-db", Some(Datapoint { value: -1.0, at }), None);
        assert!(!done && m.contains("replication not running"), "{m}");
        let (done, m) = decide_catchup("web-db", Some(Datapoint { value: 2.0, at }), None);
        assert!(!done && m.contains("2s"), "{m}");
        let (done, m) = decide_catchup("web-db", Some(Datapoint { value: 0.0, at }), None);
        assert!(done && m.contains("caught up"), "{m}");
        // A 0 from before the drain does not count; one from the minute after it does.
        let drained = at + chrono::TimeDelta::seconds(30);
        let (done, m) = decide_catchup("web-db", Some(Datapoint { value: 0.0, at }), Some(drained));
        assert!(!done && m.contains("before the drain finished"), "{m}");
        let after = Datapoint {
            value: 0.0,
            at: at + chrono::TimeDelta::seconds(60),
        };
        let (done, m) = decide_catchup("web-db", Some(after), Some(drained));
        assert!(done && m.contains("caught up"), "{m}");
    }

    const P: &str = "arn:aws:rds:ap-northeast-2:123456789012:cluster:web-primary";
    const D: &str = "arn:aws:rds:ap-northeast-1:123456789012:cluster:web-dr";

    fn global(writer: &str, dr_sync: &str) -> GlobalClusterView {
        GlobalClusterView {
            global_cluster: "web-global".into(),
            status: "available".into(),
            members: vec![
                MemberView {
                    cluster_arn: P.into(),
                    is_writer: writer == P,
                    synchronization: Some(if writer == P { "connected" } else { dr_sync }.into()),
                },
                MemberView {
                    cluster_arn: D.into(),
                    is_writer: writer == D,
                    synchronization: Some(if writer == D { "connected" } else { dr_sync }.into()),
                },
            ],
            failover: None,
        }
    }

    #[test]
    fn aurora_secondary_following_the_writer_is_ready() {
        // Failback prepare after a failover: DR writes, the primary is a secondary again.
        assert!(matches!(
            decide_aurora_member(&global(D, "connected"), D, P, Purpose::Prepare),
            AuroraVerdict::Ready(m) if m.contains("secondary")
        ));
        assert!(matches!(
            decide_aurora_member(&global(D, "connected"), D, P, Purpose::CatchUp),
            AuroraVerdict::Ready(m) if m.contains("SwitchoverGlobalCluster")
        ));
        assert!(matches!(
            decide_aurora_member(&global(P, "connected"), P, D, Purpose::Reprotect),
            AuroraVerdict::Ready(m) if m.contains("again")
        ));
    }

    #[test]
    fn aurora_waits_for_resync_a_running_switch_and_a_missing_member() {
        assert!(matches!(
            decide_aurora_member(&global(D, "pending-resync"), D, P, Purpose::Prepare),
            AuroraVerdict::Pending(m) if m.contains("pending-resync")
        ));
        let mut switching = global(D, "connected");
        switching.failover = Some(FailoverView {
            status: "switching-over".into(),
            from_cluster_arn: Some(D.into()),
            to_cluster_arn: Some(P.into()),
            data_loss_allowed: Some(false),
        });
        assert!(matches!(
            decide_aurora_member(&switching, D, P, Purpose::Reprotect),
            AuroraVerdict::Pending(m) if m.contains("switching")
        ));
        let mut detached = global(D, "connected");
        detached.members.retain(|m| m.cluster_arn != P);
        assert!(matches!(
            decide_aurora_member(&detached, D, P, Purpose::Prepare),
            AuroraVerdict::Pending(m) if m.contains("not a member") && m.contains("add it back")
        ));
        let mut modifying = global(D, "connected");
        modifying.status = "modifying".into();
        assert!(matches!(
            decide_aurora_member(&modifying, D, P, Purpose::Prepare),
            AuroraVerdict::Pending(m) if m.contains("modifying")
        ));
    }

    #[test]
    fn aurora_target_already_writing_is_ready_for_prepare_but_refused_for_reprotect() {
        assert!(matches!(
            decide_aurora_member(&global(P, "connected"), D, P, Purpose::Prepare),
            AuroraVerdict::Ready(m) if m.contains("already the writer")
        ));
        assert!(matches!(
            decide_aurora_member(&global(D, "connected"), P, D, Purpose::Reprotect),
            AuroraVerdict::Refuse(m) if m.contains("still the writer")
        ));
        let other = "arn:aws:rds:us-east-1:123456789012:cluster:elsewhere";
        let mut g = global(P, "connected");
        g.members[0].cluster_arn = other.into();
        assert!(matches!(
            decide_aurora_member(&g, P, D, Purpose::Reprotect),
            AuroraVerdict::Refuse(m) if m.contains(other)
        ));
    }
}
