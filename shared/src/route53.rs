//! Route 53: the `update-dns` step. Two modes, chosen by the plan:
//!
//! * **health-check** (preferred): the zone holds PRIMARY/SECONDARY failover records guarded by pre-created health
//!   checks, and the step only flips those checks. No record and no change batch is touched, so there is nothing to
//!   propagate: resolvers follow as soon as Route 53's health checkers see the new status, and the records keep
//!   working unchanged if the control plane is impaired afterwards.
//! * **records**: one CNAME is UPSERTed to the target region's value, and `status` waits until the change is INSYNC.
//!
//! Route 53's API is global (no dependency on either region). Both modes read first and write only what differs.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Direction, DnsPlan, Side};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

pub const STEP: &str = "update-dns";

// ---------------------------------------------------------------------------------------------------------------
// Input: the common step input plus, for `status` in records mode, the change id `start` returned.

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateDnsInput {
    pub step: StepInput,
    /// `saw.change_id` of the start report (null when start submitted nothing); `status` only.
    pub change_id: Option<String>,
}

/// Parses the step input; `change_id` is the one field update-dns adds to the contract's step input (the state
/// machine passes `$.steps.update_dns_start.saw.change_id` to `status`), everything else is `StepInput::parse`.
pub fn parse_input(event: Value) -> Result<UpdateDnsInput> {
    let mut event = event;
    let change_id = match event.as_object_mut().and_then(|o| o.remove("change_id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(check_change_id(&id)?),
        Some(other) => {
            return Err(Error::invalid_input(format!(
                "{STEP}: change_id must be a string or null, got {other}"
            )));
        }
    };
    let step = StepInput::parse(STEP, event)?;
    if change_id.is_some() && step.action == Action::Start {
        return Err(Error::invalid_input(format!(
            "{STEP}: change_id is only for action \"status\" (it is the id start returned in saw.change_id)"
        )));
    }
    Ok(UpdateDnsInput { step, change_id })
}

/// A Route 53 change id as ChangeResourceRecordSets returns it (`/change/C123...`) or bare (`C123...`).
fn check_change_id(id: &str) -> Result<String> {
    let bare = id.strip_prefix("/change/").unwrap_or(id);
    if !bare.is_empty() && bare.len() <= 32 && bare.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id.to_string())
    } else {
        Err(Error::invalid_input(format!(
            "{STEP}: change_id {id:?} is not a Route 53 change id (like /change/C2682N5HXP0BZ4)"
        )))
    }
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let input = parse_input(event)?;
    update_dns(ctx, &input).await?.into_json()
}

pub async fn update_dns(ctx: &Context, input: &UpdateDnsInput) -> Result<StepReport> {
    match &ctx.plan.dns {
        DnsPlan::HealthCheck {
            primary_health_check_id,
            dr_health_check_id,
        } => {
            if input.change_id.is_some() {
                return Err(Error::invalid_input(format!(
                    "{STEP}: change_id applies to records mode only; this plan uses health-check mode (PILOTLIGHT_DNS_MODE)"
                )));
            }
            let ids = HealthCheckIds {
                primary: primary_health_check_id,
                dr: dr_health_check_id,
            };
            flip_health_checks(ctx, &input.step, ids).await
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            primary_value,
            dr_value,
            ttl,
        } => {
            let record = RecordPlan {
                zone: hosted_zone_id,
                name: record_name,
                primary: primary_value,
                dr: dr_value,
                ttl: *ttl,
            };
            upsert_record(ctx, input, record).await
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Health-check mode.

/// The two UpdateHealthCheck flags the step drives.
///
/// Per the Route 53 API reference (UpdateHealthCheck): a *disabled* check is considered healthy whatever the
/// endpoint does ("Route 53 considers the status of the health check to always be healthy"), and "If you want to
/// stop routing traffic to a resource, change the value of Inverted" — a disabled *and* inverted check is therefore
/// always unhealthy. Forcing both sides makes the failover records answer the target no matter what the checkers
/// currently see of a half-dead source region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckFlags {
    pub disabled: bool,
    pub inverted: bool,
}

impl CheckFlags {
    /// Normal automatic checking: the status is what Route 53's checkers measure.
    pub const AUTOMATIC: CheckFlags = CheckFlags {
        disabled: false,
        inverted: false,
    };
    /// Disabled: always healthy, so the failover record for this side keeps answering.
    pub const FORCED_HEALTHY: CheckFlags = CheckFlags {
        disabled: true,
        inverted: false,
    };
    /// Disabled and inverted: always unhealthy, so Route 53 stops answering with this side.
    pub const FORCED_UNHEALTHY: CheckFlags = CheckFlags {
        disabled: true,
        inverted: true,
    };
}

/// The flags the health check of `side` must have once `direction` is complete.
///
/// Failover forces the DR healthy and the primary unhealthy. Failback returns *both* to automatic checking (the
/// pre-failover steady state): traffic then goes back to the PRIMARY record only while the primary's real check
/// passes, and falls back to DR by itself otherwise, which is what the failover records are for.
pub fn wanted_flags(direction: Direction, side: Side) -> CheckFlags {
    match direction {
        Direction::Failover if side == direction.target() => CheckFlags::FORCED_HEALTHY,
        Direction::Failover => CheckFlags::FORCED_UNHEALTHY,
        Direction::Failback => CheckFlags::AUTOMATIC,
    }
}

#[derive(Debug, Clone, Copy)]
struct HealthCheckIds<'a> {
    primary: &'a str,
    dr: &'a str,
}

impl HealthCheckIds<'_> {
    fn get(&self, side: Side) -> &str {
        match side {
            Side::Primary => self.primary,
            Side::Dr => self.dr,
        }
    }
}

fn health_check_variable(side: Side) -> &'static str {
    match side {
        Side::Primary => "PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID",
        Side::Dr => "PILOTLIGHT_DR_HEALTH_CHECK_ID",
    }
}

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

async fn flip_health_checks(
    ctx: &Context,
    input: &StepInput,
    ids: HealthCheckIds<'_>,
) -> Result<StepReport> {
    let mut report = StepReport::begin(STEP, input);
    let r53 = &ctx.aws.route53;
    let (primary, dr) = tokio::join!(
        get_health_check(r53, ids.primary),
        get_health_check(r53, ids.dr)
    );
    let primary = primary.map_err(|e| e.check_if_missing(health_check_variable(Side::Primary)))?;
    let dr = dr.map_err(|e| e.check_if_missing(health_check_variable(Side::Dr)))?;
    let direction = input.direction;
    let wanted = |side| wanted_flags(direction, side);
    report.saw = json!({
        "mode": "health-check",
        "health_checks": { "primary": primary, "dr": dr },
        "wanted": { "primary": wanted(Side::Primary), "dr": wanted(Side::Dr) },
        // Always present (null in this mode) so the state machine's reference to it never misses.
        "change_id": null,
    });
    let state = |side| if side == Side::Primary { &primary } else { &dr };
    let all_set = [Side::Primary, Side::Dr]
        .iter()
        .all(|&s| state(s).flags == wanted(s));

    if input.action == Action::Status {
        let message = if all_set {
            format!(
                "health checks are set for {}: {}",
                direction.as_str(),
                describe_checks(&primary, &dr)
            )
        } else if input.dry_run {
            format!(
                "dry-run: nothing was changed; health checks are {}",
                describe_checks(&primary, &dr)
            )
        } else {
            format!(
                "health checks not yet set for {}: {}",
                direction.as_str(),
                describe_checks(&primary, &dr)
            )
        };
        return Ok(report.finish(all_set || input.dry_run, message));
    }

    // Target first: make the side traffic moves to healthy before the side it leaves goes unhealthy, so the
    // records never see both unhealthy (Route 53 would then answer with both).
    for side in [direction.target(), direction.source()] {
        let (check, want) = (state(side), wanted(side));
        if check.flags == want {
            continue;
        }
        if !input.dry_run {
            set_health_check_flags(r53, check, want).await?;
        }
        if check.flags.disabled != want.disabled {
            report.change(
                ids.get(side),
                "Disabled",
                check.flags.disabled,
                want.disabled,
            );
        }
        if check.flags.inverted != want.inverted {
            report.change(
                ids.get(side),
                "Inverted",
                check.flags.inverted,
                want.inverted,
            );
        }
    }
    let message = match (all_set, input.dry_run) {
        (true, _) => format!(
            "no-op: health checks already set for {}: {}",
            direction.as_str(),
            describe_checks(&primary, &dr)
        ),
        (false, true) => format!(
            "dry-run: would set {} health checks; nothing changed",
            direction.as_str()
        ),
        (false, false) => format!(
            "health checks set for {}: {}",
            direction.as_str(),
            wanted_summary(direction)
        ),
    };
    // No change batch to wait for: the updated flags are the whole change.
    Ok(report.finish(true, message))
}

fn describe_flags(f: CheckFlags) -> &'static str {
    match (f.disabled, f.inverted) {
        (false, false) => "automatic",
        (false, true) => "automatic, inverted",
        (true, false) => "forced healthy",
        (true, true) => "forced unhealthy",
    }
}

fn describe_checks(primary: &HealthCheckState, dr: &HealthCheckState) -> String {
    format!(
        "primary {} ({}), dr {} ({})",
        primary.id,
        describe_flags(primary.flags),
        dr.id,
        describe_flags(dr.flags)
    )
}

fn wanted_summary(direction: Direction) -> String {
    format!(
        "primary {}, dr {}",
        describe_flags(wanted_flags(direction, Side::Primary)),
        describe_flags(wanted_flags(direction, Side::Dr))
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Records mode.

#[derive(Debug, Clone, Copy)]
struct RecordPlan<'a> {
    zone: &'a str,
    name: &'a str,
    primary: &'a str,
    dr: &'a str,
    ttl: i64,
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

pub async fn read_cname(
    r53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Result<RecordState> {
    let resp = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::Cname)
        // Enough to see whether several record sets (routing policies) share the name.
        .max_items(10)
        .send()
        .await
        .map_err(|e| {
            Error::aws("ListResourceRecordSets", zone, e)
                .check_if_missing("PILOTLIGHT_HOSTED_ZONE_ID")
        })?;
    let sets: Vec<&ResourceRecordSet> = resp
        .resource_record_sets()
        .iter()
        .filter(|r| r.r#type() == &RrType::Cname && same_dns_name(r.name(), name))
        .collect();
    let set = match sets.as_slice() {
        [] => {
            return Err(Error::not_found(format!(
                "CNAME record {name} not found in hosted zone {zone}; check PILOTLIGHT_RECORD_NAME and \
                 PILOTLIGHT_HOSTED_ZONE_ID (records mode updates an existing record, normally pointing at the primary)"
            )));
        }
        [one] if one.set_identifier().is_none() && one.alias_target().is_none() => *one,
        _ => {
            return Err(Error::config(
                "PILOTLIGHT_RECORD_NAME",
                format!(
                    "{name} in hosted zone {zone} is not one simple CNAME (routing policy or alias): records mode \
                     UPSERTs one plain CNAME; use PILOTLIGHT_DNS_MODE=health-check for failover records"
                ),
            ));
        }
    };
    Ok(RecordState {
        name: set.name().to_string(),
        value: set
            .resource_records()
            .first()
            .map(|r| r.value().to_string())
            .unwrap_or_default(),
        ttl: set.ttl(),
    })
}

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

async fn upsert_record(
    ctx: &Context,
    input: &UpdateDnsInput,
    plan: RecordPlan<'_>,
) -> Result<StepReport> {
    let step = &input.step;
    let mut report = StepReport::begin(STEP, step);
    let r53 = &ctx.aws.route53;
    let direction = step.direction;
    let target_value = if direction.target() == Side::Primary {
        plan.primary
    } else {
        plan.dr
    };
    let record = read_cname(r53, plan.zone, plan.name).await?;
    let value_ok = same_dns_name(&record.value, target_value);
    let ttl_ok = record.ttl == Some(plan.ttl);
    let mut saw = json!({
        "mode": "records",
        "hosted_zone_id": plan.zone,
        "record": record,
        "target": { "value": target_value, "ttl": plan.ttl },
        "change_id": input.change_id,
    });

    if step.action == Action::Status {
        let status = match (&input.change_id, value_ok) {
            (Some(id), true) => Some(change_status(r53, id).await?),
            _ => None,
        };
        saw["change_status"] = json!(status);
        report.saw = saw;
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
        report.saw = saw;
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
        saw["change_id"] = json!(id);
        saw["change_status"] = json!(status);
    }
    if !value_ok {
        report.change(plan.name, "CNAME", record.value.as_str(), target_value);
    }
    if !ttl_ok {
        report.change(plan.name, "TTL", json!(record.ttl), plan.ttl);
    }
    report.saw = saw;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Direction::{Failback, Failover};

    #[test]
    fn failover_forces_dr_healthy_and_primary_unhealthy() {
        assert_eq!(
            wanted_flags(Failover, Side::Dr),
            CheckFlags {
                disabled: true,
                inverted: false
            }
        );
        assert_eq!(
            wanted_flags(Failover, Side::Primary),
            CheckFlags {
                disabled: true,
                inverted: true
            }
        );
    }

    #[test]
    fn failback_restores_automatic_checking_on_both() {
        assert_eq!(wanted_flags(Failback, Side::Primary), CheckFlags::AUTOMATIC);
        assert_eq!(wanted_flags(Failback, Side::Dr), CheckFlags::AUTOMATIC);
    }

    #[test]
    fn the_target_is_never_forced_unhealthy() {
        for d in [Failover, Failback] {
            assert_ne!(wanted_flags(d, d.target()), CheckFlags::FORCED_UNHEALTHY);
        }
    }

    #[test]
    fn dns_names_compare_without_case_or_root_dot() {
        assert!(same_dns_name("www.Example.com.", "www.example.com"));
        assert!(same_dns_name("dr.example.com", "dr.example.com."));
        assert!(!same_dns_name("dr.example.com", "primary.example.com"));
    }

    #[test]
    fn record_progress_waits_for_insync() {
        assert_eq!(record_progress(false, None), RecordProgress::NotAtTarget);
        assert_eq!(
            record_progress(false, Some("INSYNC")),
            RecordProgress::NotAtTarget
        );
        assert_eq!(
            record_progress(true, Some("PENDING")),
            RecordProgress::Propagating
        );
        assert_eq!(
            record_progress(true, Some("INSYNC")),
            RecordProgress::InSync
        );
        assert_eq!(record_progress(true, None), RecordProgress::InSync);
    }

    #[test]
    fn change_id_is_status_only_and_well_formed() {
        let i = parse_input(json!({"action": "status", "change_id": "/change/C2682N5HXP0BZ4"}))
            .unwrap();
        assert_eq!(i.change_id.as_deref(), Some("/change/C2682N5HXP0BZ4"));
        let i =
            parse_input(json!({"action": "status", "direction": "failback", "change_id": null}))
                .unwrap();
        assert_eq!((i.change_id, i.step.direction), (None, Failback));
        let i = parse_input(json!({"action": "status", "change_id": "C2682N5HXP0BZ4"})).unwrap();
        assert!(i.change_id.is_some());
        for bad in [
            json!({"action": "start", "change_id": "C1"}),
            json!({"action": "status", "change_id": 7}),
            json!({"action": "status", "change_id": "../hostedzone/Z1"}),
            json!({"action": "status", "change_id": ""}),
            json!({"action": "status", "changeid": "C1"}),
        ] {
            let e = parse_input(bad.clone()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad}");
        }
    }
}
