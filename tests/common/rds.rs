//! RDS and Aurora seeding and inspection shared by the promote-db tests (tests/promote_db.rs and
//! tests/promote_db_graceful.rs): MySQL primaries and cross-region replicas in moto, the ReplicaLag metric in the
//! CloudWatch the product uses, Aurora global clusters in ministack.

use std::time::SystemTime;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_rds::types::{DbInstance, GlobalCluster};
use pilotlight::runtime::Context;
use serde_json::Value;

pub const PRIMARY_REGION: &str = "ap-northeast-2";
pub const DR_REGION: &str = "ap-northeast-1";

pub fn rds_in(config: &SdkConfig, region: &str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(config)
            .region(Region::new(region.to_string()))
            .build(),
    )
}

pub fn cloudwatch_in(config: &SdkConfig, region: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(config)
            .region(Region::new(region.to_string()))
            .build(),
    )
}

/// The events/ file with some fields replaced (the same shape the state machine sends).
pub fn event(name: &str, overrides: &[(&str, Value)]) -> Value {
    let mut e = super::event(name);
    for (k, v) in overrides {
        e[*k] = v.clone();
    }
    e
}

pub struct Pair {
    pub primary: String,
    pub primary_arn: String,
    pub replica: String,
    pub replica_arn: String,
}

/// A MySQL instance (not a replica) of `class`; returns its ARN.
pub async fn create_primary(config: &SdkConfig, region: &str, id: &str, class: &str) -> String {
    rds_in(config, region)
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class(class)
        .engine("mysql")
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .allocated_storage(20)
        .backup_retention_period(1)
        .send()
        .await
        .expect("seed DB instance")
        .db_instance()
        .and_then(|d| d.db_instance_arn())
        .unwrap()
        .to_string()
}

/// A MySQL primary (db.t3.micro, named `<prefix>-…`) in the primary region and its cross-region read replica
/// `<primary>-dr` of `replica_class` in the DR region (source given as ARN, as AWS requires across regions).
pub async fn seed_pair(config: &SdkConfig, prefix: &str, replica_class: &str) -> Pair {
    let primary = super::unique(prefix);
    let replica = format!("{primary}-dr");
    let primary_arn = create_primary(config, PRIMARY_REGION, &primary, "db.t3.micro").await;
    let replica_arn = rds_in(config, DR_REGION)
        .create_db_instance_read_replica()
        .db_instance_identifier(&replica)
        .source_db_instance_identifier(&primary_arn)
        .db_instance_class(replica_class)
        .send()
        .await
        .expect("seed cross-region replica")
        .db_instance()
        .and_then(|d| d.db_instance_arn())
        .unwrap()
        .to_string();
    Pair {
        primary,
        primary_arn,
        replica,
        replica_arn,
    }
}

/// The reference plan with the primary and DR instances replaced.
pub async fn rds_context(primary: &str, dr: &str) -> Context {
    super::context(&super::plan_vars(&[
        ("PILOTLIGHT_PRIMARY_DB_INSTANCE", primary.to_string()),
        ("PILOTLIGHT_DR_DB_INSTANCE", dr.to_string()),
    ]))
    .await
}

/// DescribeDBInstances as the test sees it (None when the identifier is free), minus LatestRestorableTime (moto
/// moves it to "now" on every read).
pub async fn describe(config: &SdkConfig, region: &str, id: &str) -> Option<DbInstance> {
    match rds_in(config, region)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(resp) => {
            let mut db = resp.db_instances()[0].clone();
            db.latest_restorable_time = None;
            Some(db)
        }
        Err(e) if format!("{e:?}").contains("DBInstanceNotFound") => None,
        Err(e) => panic!("describe {id}: {e:?}"),
    }
}

/// `describe` of an instance that must exist.
pub async fn instance(config: &SdkConfig, region: &str, id: &str) -> DbInstance {
    describe(config, region, id)
        .await
        .unwrap_or_else(|| panic!("{id} missing in {region}"))
}

pub fn tag<'a>(db: &'a DbInstance, key: &str) -> Option<&'a str> {
    db.tag_list()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Publishes one `AWS/RDS ReplicaLag` datapoint for `instance`, as RDS does. Written here, independently of the
/// product's reader (shared/src/aws/cloudwatch.rs), so a mismatch in namespace, name or dimension fails the tests.
pub async fn put_replica_lag_at(
    config: &SdkConfig,
    region: &str,
    instance: &str,
    seconds: f64,
    at: SystemTime,
) {
    cloudwatch_in(config, region)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            MetricDatum::builder()
                .metric_name("ReplicaLag")
                .dimensions(
                    Dimension::builder()
                        .name("DBInstanceIdentifier")
                        .value(instance)
                        .build(),
                )
                .value(seconds)
                .unit(StandardUnit::Seconds)
                .timestamp(at.into())
                .build(),
        )
        .send()
        .await
        .expect("put ReplicaLag");
}

// ------------------------------------------------------------------------------------------------------------
// Aurora global database (ministack)
// ------------------------------------------------------------------------------------------------------------

pub struct Global {
    pub id: String,
    pub primary_arn: String,
    pub dr_arn: String,
}

/// A global cluster named `<prefix>-…` with a writer cluster in the primary region and a secondary in the DR
/// region. The engine is aurora-postgresql because ministack runs a real MySQL replication switchover for
/// aurora-mysql 8.0 (it needs a database container); for other engines it moves the writer as the AWS API
/// documents.
pub async fn seed_global(config: &SdkConfig, prefix: &str) -> Global {
    let id = super::unique(prefix);
    let primary = rds_in(config, PRIMARY_REGION);
    primary
        .create_global_cluster()
        .global_cluster_identifier(&id)
        .engine("aurora-postgresql")
        .send()
        .await
        .expect("seed global cluster");
    let p = primary
        .create_db_cluster()
        .db_cluster_identifier(format!("{id}-primary"))
        .engine("aurora-postgresql")
        .master_username("pilot")
        .master_user_password("not-a-secret-1")
        .global_cluster_identifier(&id)
        .send()
        .await
        .expect("seed primary cluster");
    let d = rds_in(config, DR_REGION)
        .create_db_cluster()
        .db_cluster_identifier(format!("{id}-dr"))
        .engine("aurora-postgresql")
        .global_cluster_identifier(&id)
        .send()
        .await
        .expect("seed DR cluster");
    Global {
        primary_arn: p
            .db_cluster()
            .and_then(|c| c.db_cluster_arn())
            .unwrap()
            .to_string(),
        dr_arn: d
            .db_cluster()
            .and_then(|c| c.db_cluster_arn())
            .unwrap()
            .to_string(),
        id,
    }
}

/// A global cluster that does not exist, with made-up member ARNs.
pub fn missing_global(prefix: &str) -> Global {
    Global {
        id: super::unique(prefix),
        primary_arn: format!("arn:aws:rds:{PRIMARY_REGION}:000000000000:cluster:nope-primary"),
        dr_arn: format!("arn:aws:rds:{DR_REGION}:000000000000:cluster:nope-dr"),
    }
}

/// The reference plan in aurora-global mode over `g`, with every client at `config`'s endpoint.
pub fn aurora_context(config: &SdkConfig, g: &Global) -> Context {
    let vars = super::plan_vars(&[
        ("PILOTLIGHT_DB_MODE", "aurora-global".to_string()),
        ("PILOTLIGHT_GLOBAL_CLUSTER", g.id.clone()),
        ("PILOTLIGHT_PRIMARY_DB_CLUSTER_ARN", g.primary_arn.clone()),
        ("PILOTLIGHT_DR_DB_CLUSTER_ARN", g.dr_arn.clone()),
    ]);
    let plan = pilotlight::FailoverPlan::from_map(&vars).expect("aurora test plan");
    let aws = pilotlight::aws::clients::AwsClients::from_sdk_config(config, &plan);
    Context { plan, aws }
}

/// Publishes one `AWS/RDS` Aurora global database lag datapoint (`AuroraGlobalDBRPOLag` or
/// `AuroraGlobalDBReplicationLag`, in milliseconds as Aurora reports them) for the secondary cluster `cluster_arn`,
/// dimension `DBClusterIdentifier` = the cluster's identifier, in its region. Written here, independently of the
/// product's reader, so a mismatch in name, unit or dimension fails the tests.
pub async fn put_global_lag_at(
    config: &SdkConfig,
    cluster_arn: &str,
    metric: &str,
    milliseconds: f64,
    at: SystemTime,
) {
    let region = cluster_arn
        .split(':')
        .nth(3)
        .expect("region in the cluster ARN");
    let cluster = cluster_arn.rsplit(':').next().unwrap();
    cloudwatch_in(config, region)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(
                    Dimension::builder()
                        .name("DBClusterIdentifier")
                        .value(cluster)
                        .build(),
                )
                .value(milliseconds)
                .unit(StandardUnit::Milliseconds)
                .timestamp(at.into())
                .build(),
        )
        .send()
        .await
        .expect("put Aurora global database lag");
}

/// DescribeGlobalClusters for `id`, read in the DR region.
pub async fn global_state(config: &SdkConfig, id: &str) -> Vec<GlobalCluster> {
    rds_in(config, DR_REGION)
        .describe_global_clusters()
        .global_cluster_identifier(id)
        .send()
        .await
        .unwrap()
        .global_clusters()
        .to_vec()
}

/// The ARN of the global cluster's writer member.
pub async fn writer(config: &SdkConfig, id: &str) -> Option<String> {
    global_state(config, id).await[0]
        .global_cluster_members()
        .iter()
        .find(|m| m.is_writer() == Some(true))
        .and_then(|m| m.db_cluster_arn())
        .map(str::to_string)
}
