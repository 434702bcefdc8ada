//! CloudWatch: the live state of alarms (DescribeAlarms), the newest datapoint of a replica's ReplicaLag and of an
//! Aurora secondary cluster's global database lag.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, ScanBy,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{to_chrono, to_smithy};
use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

/// IAM: what [`describe_alarms`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_ALARMS: Call = Call {
    adapter: "cloudwatch::describe_alarms",
    operations: &["describe_alarms"],
    needs: &[Permission::new("cloudwatch:DescribeAlarms", Resource::Any)],
};

/// Reads metric and composite alarms by name in the client's region (DescribeAlarms takes at most 100 names per
/// call).
pub async fn describe_alarms(
    cw: &aws_sdk_cloudwatch::Client,
    region: &str,
    names: &[String],
) -> Result<Vec<LiveAlarm>> {
    let mut out = Vec::new();
    for chunk in names.chunks(100) {
        let mut next: Option<String> = None;
        loop {
            let resp = cw
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| Error::aws("DescribeAlarms", &chunk.join(","), e))?;
            // Metric and composite alarms are distinct SDK types with the same accessors.
            macro_rules! live {
                ($a:expr) => {
                    LiveAlarm {
                        name: $a.alarm_name().unwrap_or_default().to_string(),
                        region: region.to_string(),
                        state: $a
                            .state_value()
                            .map(|v| v.as_str().to_string())
                            .unwrap_or_default(),
                        transitioned_at: to_chrono(
                            $a.state_transitioned_timestamp()
                                .or($a.state_updated_timestamp()),
                        ),
                    }
                };
            }
            out.extend(resp.metric_alarms().iter().map(|a| live!(a)));
            out.extend(resp.composite_alarms().iter().map(|a| live!(a)));
            match resp.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// An alarm as DescribeAlarms shows it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveAlarm {
    pub name: String,
    pub region: String,
    pub state: String,
    /// When the state value last changed (StateTransitionedTimestamp, else StateUpdatedTimestamp).
    pub transitioned_at: Option<DateTime<Utc>>,
}

/// One metric datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Datapoint {
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// IAM: what [`replica_lag`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const REPLICA_LAG: Call = Call {
    adapter: "cloudwatch::replica_lag",
    operations: &["get_metric_data"],
    needs: &[Permission::new("cloudwatch:GetMetricData", Resource::Any)],
};

/// The newest `AWS/RDS ReplicaLag` datapoint (seconds; the per-minute Maximum) of a read replica within `window`
/// before `now`. Read from CloudWatch in the replica's own region, so it works while the source region is down.
/// `None` when there is no datapoint in the window (RDS stops publishing it when replication stops).
pub async fn replica_lag(
    cw: &aws_sdk_cloudwatch::Client,
    instance: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Option<Datapoint>> {
    let query = newest_maximum("lag", "ReplicaLag", "DBInstanceIdentifier", instance);
    let resp = in_window(cw.get_metric_data(), now, window)
        .metric_data_queries(query)
        .send()
        .await
        .map_err(|e| Error::aws("GetMetricData AWS/RDS ReplicaLag", instance, e))?;
    Ok(newest(&resp, "lag", 1.0))
}

/// The Aurora global database metrics [`global_db_lag`] reads, in milliseconds, published by the *secondary*
/// cluster (in its own region) with the dimension `DBClusterIdentifier` (Amazon CloudWatch metrics for Amazon
/// Aurora, cluster-level): the RPO lag (how long a commit on the primary takes to be stored on this secondary) and
/// the replication lag of the global database's storage replication.
pub const AURORA_RPO_LAG: &str = "AuroraGlobalDBRPOLag";
pub const AURORA_REPLICATION_LAG: &str = "AuroraGlobalDBReplicationLag";

/// An Aurora secondary cluster's lag metrics as read: the newest datapoint of each, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct GlobalDbLag {
    pub rpo_lag: Option<Datapoint>,
    pub replication_lag: Option<Datapoint>,
}

/// IAM: what [`global_db_lag`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const GLOBAL_DB_LAG: Call = Call {
    adapter: "cloudwatch::global_db_lag",
    operations: &["get_metric_data"],
    needs: &[Permission::new("cloudwatch:GetMetricData", Resource::Any)],
};

/// The newest `AWS/RDS` [`AURORA_RPO_LAG`] and [`AURORA_REPLICATION_LAG`] datapoints (per-minute Maximum,
/// converted from milliseconds to seconds) of the secondary cluster `cluster` (its identifier, not its ARN) within
/// `window` before `now`, in one GetMetricData call to the client's region: the secondary's own, so it works
/// while the primary region is down.
pub async fn global_db_lag(
    cw: &aws_sdk_cloudwatch::Client,
    cluster: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<GlobalDbLag> {
    let resp = in_window(cw.get_metric_data(), now, window)
        .metric_data_queries(newest_maximum(
            "rpo",
            AURORA_RPO_LAG,
            "DBClusterIdentifier",
            cluster,
        ))
        .metric_data_queries(newest_maximum(
            "replication",
            AURORA_REPLICATION_LAG,
            "DBClusterIdentifier",
            cluster,
        ))
        .send()
        .await
        .map_err(|e| Error::aws("GetMetricData AWS/RDS AuroraGlobalDB*Lag", cluster, e))?;
    Ok(GlobalDbLag {
        rpo_lag: newest(&resp, "rpo", 1000.0),
        replication_lag: newest(&resp, "replication", 1000.0),
    })
}

/// A query for the 1-minute Maximum of an `AWS/RDS` metric of one resource.
fn newest_maximum(id: &str, metric: &str, dimension: &str, value: &str) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/RDS")
        .metric_name(metric)
        .dimensions(Dimension::builder().name(dimension).value(value).build())
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .return_data(true)
        .build()
}

/// A GetMetricData request over `window` before `now`, newest first.
fn in_window(
    request: aws_sdk_cloudwatch::operation::get_metric_data::builders::GetMetricDataFluentBuilder,
    now: DateTime<Utc>,
    window: Duration,
) -> aws_sdk_cloudwatch::operation::get_metric_data::builders::GetMetricDataFluentBuilder {
    let start = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(15));
    request
        .start_time(to_smithy(start))
        // The end is exclusive and datapoints are stamped at the start of their minute: look one minute ahead.
        .end_time(to_smithy(now + chrono::Duration::minutes(1)))
        .scan_by(ScanBy::TimestampDescending)
}

/// The newest datapoint of query `id`, its value divided by `per_second` (1000 for milliseconds).
fn newest(
    resp: &aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput,
    id: &str,
    per_second: f64,
) -> Option<Datapoint> {
    resp.metric_data_results()
        .iter()
        .filter(|r| r.id() == Some(id))
        .flat_map(|r| r.timestamps().iter().zip(r.values()))
        .filter_map(|(t, v)| {
            to_chrono(Some(t)).map(|at| Datapoint {
                value: *v / per_second,
                at,
            })
        })
        .max_by_key(|d| d.at)
}

/// One datapoint to publish: a metric of the namespace, its dimensions, the value and its unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    /// A CloudWatch unit name (`None`, `Count`, `Milliseconds`, ...).
    pub unit: &'static str,
    pub at: DateTime<Utc>,
}

/// IAM: what [`put_metric_data`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PUT_METRIC_DATA: Call = Call {
    adapter: "cloudwatch::put_metric_data",
    operations: &["put_metric_data"],
    needs: &[Permission::new("cloudwatch:PutMetricData", Resource::Any)],
};

/// PutMetricData of `points` into `namespace` (at most 1000 per call, as the API takes).
pub async fn put_metric_data(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    points: &[MetricPoint],
) -> Result<()> {
    use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
    for chunk in points.chunks(1000) {
        let data = chunk
            .iter()
            .map(|p| {
                MetricDatum::builder()
                    .metric_name(&p.metric)
                    .set_dimensions(Some(
                        p.dimensions
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                            .collect(),
                    ))
                    .value(p.value)
                    .unit(StandardUnit::from(p.unit))
                    .timestamp(to_smithy(p.at))
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|e| Error::aws("PutMetricData", namespace, e))?;
    }
    Ok(())
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[
    &DESCRIBE_ALARMS,
    &REPLICA_LAG,
    &GLOBAL_DB_LAG,
    &PUT_METRIC_DATA,
];
