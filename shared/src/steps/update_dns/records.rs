//! update-dns in records mode: one CNAME UPSERTed to the target region's value; `status` waits until the change
//! is INSYNC.

use aws_sdk_route53::types::ChangeStatus;
use serde::Serialize;
use serde_json::json;

use super::{STEP, UpdateDnsInput};
use crate::aws::route53::{
    CnameRecordSet, RecordState, change_status, cname_record_sets, same_dns_name, upsert_cname,
};
use crate::error::{Error, Result};
use crate::plan::Side;
use crate::runtime::Context;
use crate::step::{Action, StepReport};

#[derive(Debug, Clone, Copy)]
pub(super) struct RecordPlan<'a> {
    pub(super) zone: &'a str,
    pub(super) name: &'a str,
    pub(super) primary: &'a str,
    pub(super) dr: &'a str,
    pub(super) ttl: i64,
}

/// Where a records-mode change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordProgress {
    /// The record does not hold the target value (start has not run, or something overwrote it).
    NotAtTarget,
    /// The record holds the target value, but the change that set it is not on every Route 53 name server yet.
    Propagating,
    /// The record holds the target value and no change is pending.
    InSync,
}

/// Records-mode status decision. `change_status` is GetChange's answer for the change start submitted, or None
/// when start submitted nothing (the record already held the target). A change submitted by an earlier attempt whose
/// report was lost is not known here; Route 53 documents INSYNC within about 60 seconds, a window the state machine
/// accepts rather than keep state outside the execution.
pub fn record_progress(record_matches: bool, change_status: Option<&str>) -> RecordProgress {
    match (record_matches, change_status) {
        (false, _) => RecordProgress::NotAtTarget,
        (true, Some(s)) if s != "INSYNC" => RecordProgress::Propagating,
        (true, _) => RecordProgress::InSync,
    }
}

/// The one plain CNAME records mode updates; anything else under that name is a plan error.
pub async fn read_cname(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Result<RecordState> {
    let sets = cname_record_sets(r53, zone, name)
        .await
        .map_err(|e| e.check_if_missing("PILOTLIGHT_HOSTED_ZONE_ID"))?;
    one_plain_cname(&sets, zone, name)
}

/// Of the record sets under `name`, the one plain CNAME records mode updates (pure): none is NotFound, a routing
/// policy or an alias is a plan error. update-dns and readiness's `dns.record` judge with this.
pub fn one_plain_cname(sets: &[CnameRecordSet], zone: &str, name: &str) -> Result<RecordState> {
    match sets {
        [] => Err(Error::not_found(format!(
            "CNAME record {name} not found in hosted zone {zone}; check PILOTLIGHT_RECORD_NAME and \
             PILOTLIGHT_HOSTED_ZONE_ID (records mode updates an existing record, normally pointing at the primary)"
        ))),
        [one] if !one.routing_policy_or_alias => Ok(one.record.clone()),
        _ => Err(Error::config(
            "PILOTLIGHT_RECORD_NAME",
            format!(
                "{name} in hosted zone {zone} is not one simple CNAME (routing policy or alias): records mode \
                 UPSERTs one plain CNAME; use PILOTLIGHT_DNS_MODE=health-check for failover records"
            ),
        )),
    }
}

/// What records mode saw: the record, the value the direction wants, and the change that sets it.
#[derive(Serialize)]
struct RecordSaw<'a> {
    mode: &'static str,
    hosted_zone_id: &'a str,
    record: &'a RecordState,
    target: RecordTarget<'a>,
    /// The change start submitted (given to status); null when none was.
    change_id: Option<String>,
    /// Route 53's status of that change: absent when start submitted nothing, null when status had none to ask
    /// about.
    #[serde(skip_serializing_if = "Option::is_none")]
    change_status: Option<Option<String>>,
}

#[derive(Serialize)]
struct RecordTarget<'a> {
    value: &'a str,
    ttl: i64,
}

pub(super) async fn upsert_record(
    ctx: &Context,
    input: &UpdateDnsInput,
    plan: RecordPlan<'_>,
) -> Result<StepReport> {
    let step = &input.step;
    let mut report = StepReport::begin(STEP, step);
    let r53 = ctx.aws.route53();
    let direction = step.direction;
    let target_value = if direction.target() == Side::Primary {
        plan.primary
    } else {
        plan.dr
    };
    let record = read_cname(r53, plan.zone, plan.name).await?;
    let value_ok = same_dns_name(&record.value, target_value);
    let ttl_ok = record.ttl == Some(plan.ttl);
    let mut saw = RecordSaw {
        mode: "records",
        hosted_zone_id: plan.zone,
        record: &record,
        target: RecordTarget {
            value: target_value,
            ttl: plan.ttl,
        },
        change_id: input.change_id.clone(),
        change_status: None,
    };

    if step.action == Action::Status {
        let status = match (&input.change_id, value_ok) {
            (Some(id), true) => Some(change_status(r53, id).await?),
            _ => None,
        };
        saw.change_status = Some(status.clone());
        report.record_saw(&saw);
        let progress = record_progress(value_ok, status.as_deref());
        let message = match progress {
            RecordProgress::InSync => format!("{} is {} and in sync", plan.name, record.value),
            RecordProgress::Propagating => {
                format!(
                    "{} is {}; change {} is still propagating",
                    plan.name,
                    record.value,
                    input.change_id.as_deref().unwrap_or_default()
                )
            }
            RecordProgress::NotAtTarget if step.dry_run => {
                format!(
                    "dry-run: nothing was changed; {} is {}",
                    plan.name, record.value
                )
            }
            RecordProgress::NotAtTarget => format!(
                "{} is {}, not the target {target_value}: start has not changed it, or something else overwrote it",
                plan.name, record.value
            ),
        };
        return Ok(report.finish(step.dry_run || progress == RecordProgress::InSync, message));
    }

    if value_ok && ttl_ok {
        report.record_saw(&saw);
        let message = format!(
            "no-op: {} already points at {target_value} (TTL {})",
            plan.name, plan.ttl
        );
        return Ok(report.finish(true, message));
    }
    let mut done = step.dry_run;
    if !step.dry_run {
        let comment = format!(
            "pilotlight {}: {} -> {target_value}",
            direction.as_str(),
            plan.name
        );
        let (id, status) =
            upsert_cname(r53, plan.zone, plan.name, target_value, plan.ttl, &comment).await?;
        done = status == ChangeStatus::Insync.as_str();
        saw.change_id = Some(id);
        saw.change_status = Some(Some(status));
    }
    if !value_ok {
        report.change(plan.name, "CNAME", record.value.as_str(), target_value);
    }
    if !ttl_ok {
        report.change(plan.name, "TTL", json!(record.ttl), plan.ttl);
    }
    report.record_saw(&saw);
    let message = if step.dry_run {
        format!(
            "dry-run: would UPSERT {} -> {target_value} (TTL {}); nothing changed",
            plan.name, plan.ttl
        )
    } else if done {
        format!("UPSERTed {} -> {target_value}; in sync", plan.name)
    } else {
        format!(
            "UPSERTed {} -> {target_value}; waiting for the change to be INSYNC",
            plan.name
        )
    };
    Ok(report.finish(done, message))
}
