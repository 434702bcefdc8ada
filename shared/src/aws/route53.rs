//! Route 53: health checks (read, and their Disabled/Inverted flags set) and CNAME records (read, UPSERT, change
//! status). Route 53's API is global: it depends on neither of the plan's regions.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::permissions::{Call, Permission, Resource};
use crate::routing::CheckFlags;

/// A health check as GetHealthCheck returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheckState {
    pub id: String,
    /// HealthCheckVersion: sent back with the update so an intervening change is not overwritten.
    pub version: i64,
    #[serde(rename = "type")]
    pub check_type: String,
    pub flags: CheckFlags,
}

/// IAM: what [`get_health_check`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const GET_HEALTH_CHECK: Call = Call {
    adapter: "route53::get_health_check",
    operations: &["get_health_check"],
    needs: &[Permission::new(
        "route53:GetHealthCheck",
        Resource::HealthCheck,
    )],
};

pub async fn get_health_check(r53: &aws_sdk_route53::Client, id: &str) -> Result<HealthCheckState> {
    let resp = r53
        .get_health_check()
        .health_check_id(id)
        .send()
        .await
        .map_err(|e| Error::aws("GetHealthCheck", id, e))?;
    let hc = resp.health_check().ok_or_else(|| {
        Error::not_found(format!("health check {id}: GetHealthCheck returned none"))
    })?;
    let config = hc.health_check_config();
    Ok(HealthCheckState {
        id: hc.id().to_string(),
        version: hc.health_check_version(),
        check_type: config
            .map(|c| c.r#type().as_str().to_string())
            .unwrap_or_default(),
        flags: CheckFlags {
            disabled: config.and_then(|c| c.disabled()).unwrap_or(false),
            inverted: config.and_then(|c| c.inverted()).unwrap_or(false),
        },
    })
}

/// IAM: what [`set_health_check_flags`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const SET_HEALTH_CHECK_FLAGS: Call = Call {
    adapter: "route53::set_health_check_flags",
    operations: &["update_health_check"],
    needs: &[Permission::new(
        "route53:UpdateHealthCheck",
        Resource::HealthCheck,
    )],
};

/// UpdateHealthCheck of the two flags only, conditional on `version` (optimistic concurrency).
pub async fn set_health_check_flags(
    r53: &aws_sdk_route53::Client,
    check: &HealthCheckState,
    flags: CheckFlags,
) -> Result<()> {
    let result = r53
        .update_health_check()
        .health_check_id(&check.id)
        .health_check_version(check.version)
        .disabled(flags.disabled)
        .inverted(flags.inverted)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let mismatch = e
                .as_service_error()
                .is_some_and(|se| se.is_health_check_version_mismatch());
            let mut err = Error::aws("UpdateHealthCheck", &check.id, e);
            if mismatch {
                // Someone changed the check since we read it: retrying re-reads it and decides again.
                err.kind = ErrorKind::Transient;
                err.message.push_str(
                    "; the health check changed since it was read, the retry re-reads it",
                );
            }
            Err(err)
        }
    }
}

/// The CNAME as ListResourceRecordSets returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordState {
    pub name: String,
    pub value: String,
    pub ttl: Option<i64>,
}

/// DNS names compare case-insensitively, with or without the trailing root dot.
pub fn same_dns_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A CNAME record set of the name asked for, with what says whether it is a plain one.
#[derive(Debug, Clone, PartialEq)]
pub struct CnameRecordSet {
    pub record: RecordState,
    /// `SetIdentifier` or `AliasTarget` is present: the set belongs to a routing policy or is an alias.
    pub routing_policy_or_alias: bool,
}

/// IAM: what [`cname_record_sets`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const CNAME_RECORD_SETS: Call = Call {
    adapter: "route53::cname_record_sets",
    operations: &["list_resource_record_sets"],
    needs: &[Permission::new(
        "route53:ListResourceRecordSets",
        Resource::HostedZone,
    )],
};

/// The CNAME record sets named `name` in `zone` (ListResourceRecordSets from that name on).
pub async fn cname_record_sets(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Result<Vec<CnameRecordSet>> {
    let resp = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::Cname)
        // Enough to see whether several record sets (routing policies) share the name.
        .max_items(10)
        .send()
        .await
        .map_err(|e| Error::aws("ListResourceRecordSets", zone, e))?;
    Ok(resp
        .resource_record_sets()
        .iter()
        .filter(|r| r.r#type() == &RrType::Cname && same_dns_name(r.name(), name))
        .map(|set: &ResourceRecordSet| CnameRecordSet {
            record: RecordState {
                name: set.name().to_string(),
                value: set
                    .resource_records()
                    .first()
                    .map(|r| r.value().to_string())
                    .unwrap_or_default(),
                ttl: set.ttl(),
            },
            routing_policy_or_alias: set.set_identifier().is_some() || set.alias_target().is_some(),
        })
        .collect())
}

/// IAM: what [`upsert_cname`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const UPSERT_CNAME: Call = Call {
    adapter: "route53::upsert_cname",
    operations: &["change_resource_record_sets"],
    needs: &[Permission::new(
        "route53:ChangeResourceRecordSets",
        Resource::HostedZone,
    )],
};

/// UPSERTs the CNAME; returns ChangeInfo's id and status.
pub async fn upsert_cname(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
    value: &str,
    ttl: i64,
    comment: &str,
) -> Result<(String, String)> {
    let build = |e: aws_smithy_types::error::operation::BuildError| {
        Error::invalid_input(format!("cannot build the change for {name} in {zone}: {e}"))
    };
    let record = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(build)?,
        )
        .build()
        .map_err(build)?;
    let batch = ChangeBatch::builder()
        .comment(comment)
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record)
                .build()
                .map_err(build)?,
        )
        .build()
        .map_err(build)?;
    let resp = r53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| Error::aws("ChangeResourceRecordSets", &format!("{name} in {zone}"), e))?;
    let info = resp.change_info().ok_or_else(|| {
        Error::new(
            ErrorKind::Transient,
            format!("ChangeResourceRecordSets on {name} in {zone} returned no ChangeInfo"),
        )
    })?;
    Ok((info.id().to_string(), info.status().as_str().to_string()))
}

/// IAM: what [`change_status`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const CHANGE_STATUS: Call = Call {
    adapter: "route53::change_status",
    operations: &["get_change"],
    needs: &[Permission::new("route53:GetChange", Resource::Change)],
};

pub async fn change_status(r53: &aws_sdk_route53::Client, change_id: &str) -> Result<String> {
    let resp = r53
        .get_change()
        .id(change_id)
        .send()
        .await
        .map_err(|e| Error::aws("GetChange", change_id, e))?;
    let info = resp
        .change_info()
        .ok_or_else(|| Error::not_found(format!("change {change_id}: GetChange returned none")))?;
    Ok(info.status().as_str().to_string())
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[
    &GET_HEALTH_CHECK,
    &SET_HEALTH_CHECK_FLAGS,
    &CNAME_RECORD_SETS,
    &UPSERT_CNAME,
    &CHANGE_STATUS,
];
