//! RDS: DB instances (describe, list, tag, promote, rename, create a cross-region read replica) and Aurora global
//! clusters (describe, switchover, failover), with their answers as plain views.

use aws_sdk_rds::types::{DbInstance, Tag};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::to_chrono;
use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

// The promotion record pilotlight keeps on a DB instance as tags (why: see steps::promote_db).

/// When pilotlight asked for the promotion (RFC 3339), written just before PromoteReadReplica.
pub const PROMOTE_REQUESTED_TAG: &str = "pilotlight:promote-requested-at";
/// The replica lag seen before promoting (seconds, or `unknown`): the RPO estimate.
pub const RPO_TAG: &str = "pilotlight:rpo-seconds";
/// The ARN of the instance the promotion record was written on: a copy of the record on another instance (a
/// replica created from a promoted writer) is not a promotion of that instance.
pub const PROMOTED_INSTANCE_TAG: &str = "pilotlight:promoted-instance";

/// A DB instance as DescribeDBInstances shows it.
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
    /// Where the instance lives in its region (copied onto a replica that replaces it; see `steps::promote_db::graceful`).
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub storage_encrypted: bool,
    pub kms_key_id: Option<String>,
    /// The settings a replica that replaces this instance copies, and what is pending on it.
    pub settings: InstanceSettings,
}

/// Settings of a DB instance beyond its placement (DescribeDBInstances), as `steps::promote_db` copies and sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceSettings {
    /// `DBParameterGroups[0]` (a DB parameter group lives in one region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// `OptionGroupMemberships[0]` (regional too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    /// `BackupRetentionPeriod` (days; 0 = no automated backups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention: Option<i32>,
    /// `PendingModifiedValues`: what a ModifyDBInstance asked for and AWS has not applied yet.
    pub pending: PendingView,
}

/// The part of `PendingModifiedValues` pilotlight asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PendingView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_retention: Option<i32>,
}

impl InstanceSettings {
    fn from_db(db: &DbInstance) -> Self {
        let pending = db.pending_modified_values();
        InstanceSettings {
            parameter_group: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .map(str::to_string),
            option_group: db
                .option_group_memberships()
                .first()
                .and_then(|g| g.option_group_name())
                .map(str::to_string),
            multi_az: db.multi_az(),
            storage_type: db.storage_type().map(str::to_string),
            iops: db.iops(),
            backup_retention: db.backup_retention_period(),
            pending: PendingView {
                instance_class: pending
                    .and_then(|p| p.db_instance_class())
                    .map(str::to_string),
                multi_az: pending.and_then(|p| p.multi_az()),
                backup_retention: pending.and_then(|p| p.backup_retention_period()),
            },
        }
    }
}

impl InstanceView {
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
            settings: InstanceSettings::from_db(db),
        }
    }
}

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
}

/// The CreateDBInstanceReadReplica request, in the API's own names (as the report shows it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaSpec {
    #[serde(rename = "DBInstanceIdentifier")]
    pub instance: String,
    #[serde(rename = "SourceDBInstanceIdentifier")]
    pub source_arn: String,
    #[serde(rename = "DBInstanceClass")]
    pub instance_class: Option<String>,
    #[serde(rename = "DBSubnetGroupName", skip_serializing_if = "Option::is_none")]
    pub subnet_group: Option<String>,
    #[serde(rename = "VpcSecurityGroupIds", skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(rename = "KmsKeyId", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(
        rename = "DBParameterGroupName",
        skip_serializing_if = "Option::is_none"
    )]
    pub parameter_group: Option<String>,
    #[serde(rename = "OptionGroupName", skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    #[serde(rename = "MultiAZ", skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
    #[serde(rename = "StorageType", skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(rename = "Iops", skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    /// The instance the placement was copied from (not sent).
    #[serde(rename = "placement_from", skip_serializing_if = "Option::is_none")]
    pub placement_from: Option<String>,
    /// Where the KMS key came from (not sent): the plan's variable or the instance it replaces.
    #[serde(rename = "kms_key_from", skip_serializing_if = "Option::is_none")]
    pub kms_key_from: Option<String>,
    /// What could not be copied onto the replica, and why (not sent; the report says it).
    #[serde(rename = "not_copied", skip_serializing_if = "Vec::is_empty")]
    pub not_copied: Vec<String>,
}

/// IAM: what [`describe_db_instance`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_DB_INSTANCE: Call = Call {
    adapter: "rds::describe_db_instance",
    operations: &["describe_db_instances"],
    needs: &[Permission::new(
        "rds:DescribeDBInstances",
        Resource::DbInstance,
    )],
};

/// One DB instance (DescribeDBInstances returns its tags too); None when the answer lists none.
pub async fn describe_db_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    instance: &str,
) -> Result<Option<InstanceView>> {
    let resp = rds
        .describe_db_instances()
        .db_instance_identifier(instance)
        .send()
        .await
        .map_err(|e| Error::aws("DescribeDBInstances", instance, e))?;
    Ok(resp
        .db_instances()
        .first()
        .map(|db| InstanceView::from_db(db, region, instance)))
}

/// IAM: what [`list_db_instances`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const LIST_DB_INSTANCES: Call = Call {
    adapter: "rds::list_db_instances",
    operations: &["describe_db_instances"],
    needs: &[Permission::new(
        "rds:DescribeDBInstances",
        Resource::DbInstance,
    )],
};

/// Every DB instance of the region (all pages). `listing` names what is looked for in an error.
pub async fn list_db_instances(
    rds: &aws_sdk_rds::Client,
    region: &str,
    listing: &str,
) -> Result<Vec<InstanceView>> {
    let mut out = Vec::new();
    let mut pages = rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::aws("DescribeDBInstances", listing, e))?;
        for db in page.db_instances() {
            let name = db.db_instance_identifier().unwrap_or_default();
            out.push(InstanceView::from_db(db, region, name));
        }
    }
    Ok(out)
}

/// IAM: what [`add_tags`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const ADD_TAGS: Call = Call {
    adapter: "rds::add_tags",
    operations: &["add_tags_to_resource"],
    needs: &[Permission::new(
        "rds:AddTagsToResource",
        Resource::DbInstance,
    )],
};

/// AddTagsToResource with `tags` (key, value) on the resource `arn`.
pub async fn add_tags(rds: &aws_sdk_rds::Client, arn: &str, tags: &[(&str, &str)]) -> Result<()> {
    let mut call = rds.add_tags_to_resource().resource_name(arn);
    for (key, value) in tags {
        call = call.tags(Tag::builder().key(*key).value(*value).build());
    }
    call.send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("AddTagsToResource", arn, e))
}

/// IAM: what [`promote_read_replica`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PROMOTE_READ_REPLICA: Call = Call {
    adapter: "rds::promote_read_replica",
    operations: &["promote_read_replica"],
    needs: &[Permission::new(
        "rds:PromoteReadReplica",
        Resource::DbInstance,
    )],
};

pub async fn promote_read_replica(rds: &aws_sdk_rds::Client, instance: &str) -> Result<()> {
    rds.promote_read_replica()
        .db_instance_identifier(instance)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("PromoteReadReplica", instance, e))
}

/// IAM: what [`rename_db_instance`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const RENAME_DB_INSTANCE: Call = Call {
    adapter: "rds::rename_db_instance",
    operations: &["modify_db_instance"],
    needs: &[Permission::new(
        "rds:ModifyDBInstance",
        Resource::DbInstance,
    )],
};

/// ModifyDBInstance with NewDBInstanceIdentifier, applied immediately.
pub async fn rename_db_instance(
    rds: &aws_sdk_rds::Client,
    instance: &str,
    new_id: &str,
) -> Result<()> {
    rds.modify_db_instance()
        .db_instance_identifier(instance)
        .new_db_instance_identifier(new_id)
        .apply_immediately(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("ModifyDBInstance (NewDBInstanceIdentifier)", instance, e))
}

/// IAM: what [`create_read_replica`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const CREATE_READ_REPLICA: Call = Call {
    adapter: "rds::create_read_replica",
    operations: &["create_db_instance_read_replica"],
    needs: &[
        Permission::new("rds:CreateDBInstanceReadReplica", Resource::DbInstance),
        Permission::new("rds:CreateDBInstanceReadReplica", Resource::DbSubnetGroup),
        Permission::new("rds:CreateDBInstanceReadReplica", Resource::DbOptionGroup),
        Permission::new(
            "rds:CreateDBInstanceReadReplica",
            Resource::DbParameterGroup,
        ),
        Permission::new("kms:CreateGrant", Resource::KmsKey),
        Permission::new("kms:DescribeKey", Resource::KmsKey),
    ],
};

/// CreateDBInstanceReadReplica as `spec` says; the new instance as the answer shows it.
pub async fn create_read_replica(
    rds: &aws_sdk_rds::Client,
    region: &str,
    spec: &ReplicaSpec,
) -> Result<InstanceView> {
    let resp = rds
        .create_db_instance_read_replica()
        .db_instance_identifier(&spec.instance)
        .source_db_instance_identifier(&spec.source_arn)
        .set_db_instance_class(spec.instance_class.clone())
        .set_db_subnet_group_name(spec.subnet_group.clone())
        .set_vpc_security_group_ids(
            (!spec.security_groups.is_empty()).then(|| spec.security_groups.clone()),
        )
        .set_kms_key_id(spec.kms_key_id.clone())
        .set_db_parameter_group_name(spec.parameter_group.clone())
        .set_option_group_name(spec.option_group.clone())
        .set_multi_az(spec.multi_az)
        .set_storage_type(spec.storage_type.clone())
        .set_iops(spec.iops)
        .send()
        .await
        .map_err(|e| Error::aws("CreateDBInstanceReadReplica", &spec.instance, e))?;
    Ok(resp
        .db_instance()
        .map(|db| InstanceView::from_db(db, region, &spec.instance))
        .unwrap_or_else(|| InstanceView {
            instance: spec.instance.clone(),
            arn: String::new(),
            region: region.to_string(),
            status: "creating".into(),
            replica_source: Some(spec.source_arn.clone()),
            replicas: vec![],
            replication_status: None,
            promote_requested_at: None,
            recorded_rpo: None,
            promoted_instance: None,
            created_at: None,
            instance_class: spec.instance_class.clone(),
            subnet_group: spec.subnet_group.clone(),
            security_groups: spec.security_groups.clone(),
            storage_encrypted: false,
            kms_key_id: spec.kms_key_id.clone(),
            settings: InstanceSettings::default(),
        }))
}

/// The ModifyDBInstance pilotlight sends to make a promoted instance production-ready (the plan's class and
/// Multi-AZ), in the API's own names (as the report shows it). Always ApplyImmediately.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Modification {
    #[serde(rename = "DBInstanceClass", skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    #[serde(rename = "MultiAZ", skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<bool>,
}

impl Modification {
    pub fn is_empty(&self) -> bool {
        self.instance_class.is_none() && self.multi_az.is_none()
    }
}

/// IAM: what [`modify_db_instance`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const MODIFY_DB_INSTANCE: Call = Call {
    adapter: "rds::modify_db_instance",
    operations: &["modify_db_instance"],
    needs: &[Permission::new(
        "rds:ModifyDBInstance",
        Resource::DbInstance,
    )],
};

/// ModifyDBInstance with `change`, applied immediately (not in the maintenance window); the instance as the answer
/// shows it (its PendingModifiedValues say what AWS took).
pub async fn modify_db_instance(
    rds: &aws_sdk_rds::Client,
    region: &str,
    instance: &str,
    change: &Modification,
) -> Result<Option<InstanceView>> {
    let resp = rds
        .modify_db_instance()
        .db_instance_identifier(instance)
        .set_db_instance_class(change.instance_class.clone())
        .set_multi_az(change.multi_az)
        .apply_immediately(true)
        .send()
        .await
        .map_err(|e| Error::aws("ModifyDBInstance", instance, e))?;
    Ok(resp
        .db_instance()
        .map(|db| InstanceView::from_db(db, region, instance)))
}

/// IAM: what [`describe_global_cluster`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_GLOBAL_CLUSTER: Call = Call {
    adapter: "rds::describe_global_cluster",
    operations: &["describe_global_clusters"],
    needs: &[Permission::new(
        "rds:DescribeGlobalClusters",
        Resource::GlobalCluster,
    )],
};

/// One global cluster; None when the answer lists none.
pub async fn describe_global_cluster(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<Option<GlobalClusterView>> {
    let resp = rds
        .describe_global_clusters()
        .global_cluster_identifier(id)
        .send()
        .await
        .map_err(|e| Error::aws("DescribeGlobalClusters", id, e))?;
    Ok(resp.global_clusters().first().map(|g| GlobalClusterView {
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
    }))
}

/// IAM: what [`switchover_global_cluster`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const SWITCHOVER_GLOBAL_CLUSTER: Call = Call {
    adapter: "rds::switchover_global_cluster",
    operations: &["switchover_global_cluster"],
    needs: &[
        Permission::new("rds:SwitchoverGlobalCluster", Resource::GlobalCluster),
        Permission::new("rds:SwitchoverGlobalCluster", Resource::DbCluster),
    ],
};

/// SwitchoverGlobalCluster (graceful: no data loss) to `target_arn`.
pub async fn switchover_global_cluster(
    rds: &aws_sdk_rds::Client,
    global_cluster: &str,
    target_arn: &str,
) -> Result<()> {
    rds.switchover_global_cluster()
        .global_cluster_identifier(global_cluster)
        .target_db_cluster_identifier(target_arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("SwitchoverGlobalCluster", global_cluster, e))
}

/// IAM: what [`failover_global_cluster`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const FAILOVER_GLOBAL_CLUSTER: Call = Call {
    adapter: "rds::failover_global_cluster",
    operations: &["failover_global_cluster"],
    needs: &[
        Permission::new("rds:FailoverGlobalCluster", Resource::GlobalCluster),
        Permission::new("rds:FailoverGlobalCluster", Resource::DbCluster),
    ],
};

/// FailoverGlobalCluster with AllowDataLoss to `target_arn`.
pub async fn failover_global_cluster(
    rds: &aws_sdk_rds::Client,
    global_cluster: &str,
    target_arn: &str,
) -> Result<()> {
    rds.failover_global_cluster()
        .global_cluster_identifier(global_cluster)
        .target_db_cluster_identifier(target_arn)
        .allow_data_loss(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("FailoverGlobalCluster", global_cluster, e))
}

/// IAM: what [`stop_db_instance`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const STOP_DB_INSTANCE: Call = Call {
    adapter: "rds::stop_db_instance",
    operations: &["stop_db_instance"],
    needs: &[Permission::new("rds:StopDBInstance", Resource::DbInstance)],
};

/// StopDBInstance (the fence of an old writer; AWS starts it again by itself after 7 days).
pub async fn stop_db_instance(rds: &aws_sdk_rds::Client, instance: &str) -> Result<()> {
    rds.stop_db_instance()
        .db_instance_identifier(instance)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("StopDBInstance", instance, e))
}

/// IAM: what [`start_db_instance`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const START_DB_INSTANCE: Call = Call {
    adapter: "rds::start_db_instance",
    operations: &["start_db_instance"],
    needs: &[Permission::new("rds:StartDBInstance", Resource::DbInstance)],
};

/// StartDBInstance (a fenced, stopped old writer must run again before it can be renamed and retired).
pub async fn start_db_instance(rds: &aws_sdk_rds::Client, instance: &str) -> Result<()> {
    rds.start_db_instance()
        .db_instance_identifier(instance)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("StartDBInstance", instance, e))
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[
    &DESCRIBE_DB_INSTANCE,
    &LIST_DB_INSTANCES,
    &ADD_TAGS,
    &PROMOTE_READ_REPLICA,
    &RENAME_DB_INSTANCE,
    &MODIFY_DB_INSTANCE,
    &CREATE_READ_REPLICA,
    &DESCRIBE_GLOBAL_CLUSTER,
    &SWITCHOVER_GLOBAL_CLUSTER,
    &FAILOVER_GLOBAL_CLUSTER,
    &STOP_DB_INSTANCE,
    &START_DB_INSTANCE,
];
