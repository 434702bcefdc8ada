//! update-dns: points DNS at the target region through Route 53. Two modes, chosen by the plan:
//!
//! * **health-check** (preferred): the zone holds PRIMARY/SECONDARY failover records guarded by pre-created health
//!   checks, and the step only flips those checks. No record and no change batch is touched, so there is nothing to
//!   propagate: resolvers follow as soon as Route 53's health checkers see the new status, and the records keep
//!   working unchanged if the control plane is impaired afterwards.
//! * **records**: one CNAME is UPSERTed to the target region's value, and `status` waits until the change is INSYNC.
//!
//! Route 53's API is global (no dependency on either region). Both modes read first and write only what differs.

mod health_checks;
mod records;

use serde_json::Value;

use crate::aws::route53;
use crate::error::{Error, Result};
use crate::permissions::Use;
use crate::plan::DnsPlan;
use crate::runtime::{Context, StepEvent};
use crate::step::{Action, StepInput, StepReport};

pub use records::{RecordProgress, one_plain_cname, read_cname, record_progress};

/// IAM: the adapter calls update-dns makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::when(
        "IsHealthCheckDns",
        &route53::GET_HEALTH_CHECK,
        "reads the health checks' flags",
    ),
    Use::when(
        "IsHealthCheckDns",
        &route53::SET_HEALTH_CHECK_FLAGS,
        "flips Disabled/Inverted",
    ),
    Use::when(
        "IsRecordsDns",
        &route53::CNAME_RECORD_SETS,
        "reads the CNAME record",
    ),
    Use::when(
        "IsRecordsDns",
        &route53::UPSERT_CNAME,
        "UPSERTs the CNAME to the target region",
    ),
    Use::when(
        "IsRecordsDns",
        &route53::CHANGE_STATUS,
        "waits for the change to be INSYNC",
    ),
];

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

impl StepEvent for UpdateDnsInput {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        parse_input(payload)
    }
}

pub async fn handle(ctx: &Context, input: UpdateDnsInput) -> Result<StepReport> {
    update_dns(ctx, &input).await
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
            let ids = health_checks::HealthCheckIds {
                primary: primary_health_check_id,
                dr: dr_health_check_id,
            };
            health_checks::flip_health_checks(ctx, &input.step, ids).await
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            primary_value,
            dr_value,
            ttl,
        } => {
            let record = records::RecordPlan {
                zone: hosted_zone_id,
                name: record_name,
                primary: primary_value,
                dr: dr_value,
                ttl: *ttl,
            };
            records::upsert_record(ctx, input, record).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::route53::same_dns_name;
    use crate::error::ErrorKind;
    use crate::plan::Direction::Failback;
    use serde_json::json;

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
