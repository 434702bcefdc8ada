//! Traffic: both Global Accelerator endpoint groups exist where the plan says (shift-traffic's preflight verdict
//! plus the region), the dials are at one of the two end states (which side is active), and the endpoints that
//! serve are healthy. Read in us-west-2 only (Global Accelerator's API region), like the failover itself.

use crate::aws::clients::AwsClients;
use crate::aws::globalaccelerator::{EndpointGroupState, describe_endpoint_group};
use crate::error::{Error, ErrorKind};
use crate::plan::{FailoverPlan, Side};
use crate::step::Overrides;
use crate::steps::detect::decision::ActiveSide;
use crate::steps::shift_traffic::check_endpoint_group;

use super::{Check, bounded, dr_budget};

/// What was read: each endpoint group, or why not.
#[derive(Debug, Clone)]
pub struct TrafficSeen {
    pub primary: Result<EndpointGroupState, String>,
    pub dr: Result<EndpointGroupState, String>,
}

impl TrafficSeen {
    pub fn get(&self, side: Side) -> &Result<EndpointGroupState, String> {
        match side {
            Side::Primary => &self.primary,
            Side::Dr => &self.dr,
        }
    }

    /// The active side as detect judges it from the dials; unknown when a dial could not be read.
    pub fn active(&self) -> ActiveSide {
        match (&self.primary, &self.dr) {
            (Ok(p), Ok(d)) => ActiveSide::from_dials(p.dial, d.dial),
            (Err(e), _) | (_, Err(e)) => ActiveSide::Unknown { reason: e.clone() },
        }
    }
}

pub async fn observe(aws: &AwsClients, plan: &FailoverPlan) -> TrafficSeen {
    let ga = aws.global_accelerator();
    let t = dr_budget(plan);
    let (primary, dr) = tokio::join!(
        bounded(
            t,
            describe_endpoint_group(ga, &plan.primary.endpoint_group_arn)
        ),
        bounded(t, describe_endpoint_group(ga, &plan.dr.endpoint_group_arn)),
    );
    TrafficSeen { primary, dr }
}

/// `traffic.endpoint-group.<side>` (exists: shift-traffic's preflight verdict; in the plan's region),
/// `traffic.dials` (an end state), `traffic.endpoints.<side>` (the active side's endpoints healthy; the standby's
/// configured). Pure.
pub fn checks(plan: &FailoverPlan, seen: &TrafficSeen) -> Vec<Check> {
    let mut out = Vec::new();
    for side in [Side::Primary, Side::Dr] {
        out.push(endpoint_group(plan, side, seen.get(side)));
    }
    let active = seen.active();
    out.push(dials(&active));
    for side in [Side::Primary, Side::Dr] {
        out.push(endpoints(side, &active, seen.get(side)));
    }
    out
}

/// The group exists (the preflight's verdict) and serves the plan's region. Pure.
pub fn endpoint_group(
    plan: &FailoverPlan,
    side: Side,
    read: &Result<EndpointGroupState, String>,
) -> Check {
    let arn = &plan.region(side).endpoint_group_arn;
    let as_dial = read
        .as_ref()
        .map(|g| g.dial)
        .map_err(|e| Error::new(ErrorKind::NotFound, e.clone()));
    let exists = Check::from_preflight(
        "traffic",
        check_endpoint_group(side, arn, &as_dial, &Overrides::default()),
    );
    let g = match read {
        Ok(g) => g,
        // The preflight's verdict and detail, with the error as the value seen.
        Err(e) => {
            return Check {
                seen: format!("error: {e}"),
                ..exists
            };
        }
    };
    let want = &plan.region(side).region;
    if &g.region != want {
        return Check::fail(
            &exists.id,
            format!("region {}", g.region),
            &format!("region {want}"),
            format!(
                "endpoint group {arn} serves {}, not the plan's {} region {want}: check {}",
                g.region,
                side.as_str(),
                side.variable("ENDPOINT_GROUP_ARN")
            ),
        );
    }
    Check::pass(
        &exists.id,
        format!("region {}, dial {}", g.region, g.dial),
        &format!("exists, region {want}"),
        format!("{arn} exists in {want}, dial {}", g.dial),
    )
}

/// The dials are at an end state: one side takes all the traffic. Pure.
pub fn dials(active: &ActiveSide) -> Check {
    const ID: &str = "traffic.dials";
    const LIMIT: &str = "100/0 (primary active) or 0/100 (DR active)";
    match active {
        ActiveSide::Primary => Check::pass(ID, "100/0", LIMIT, "the primary takes all the traffic"),
        ActiveSide::Dr => Check::pass(ID, "0/100", LIMIT, "DR takes all the traffic"),
        ActiveSide::Shifting {
            primary_dial,
            dr_dial,
        } => Check::warn(
            ID,
            format!("{primary_dial}/{dr_dial}"),
            LIMIT,
            "the dials are between the end states: a shift is running or was interrupted; check the running \
             execution (or finish the shift with a re-run of shift-traffic)",
        ),
        // The read that failed is its endpoint group's failed check.
        ActiveSide::Unknown { reason } => Check::not_judged(
            ID,
            format!("a dial could not be read (see traffic.endpoint-group.*): {reason}"),
            LIMIT,
        ),
    }
}

/// The endpoints: the active side's must include a healthy one; the standby's must exist (a pilot light runs no
/// instances, so its endpoints are expected to be unhealthy until scale-compute starts them). Pure.
pub fn endpoints(
    side: Side,
    active: &ActiveSide,
    read: &Result<EndpointGroupState, String>,
) -> Check {
    let id = format!("traffic.endpoints.{}", side.as_str());
    let serving = matches!(
        (active, side),
        (ActiveSide::Primary, Side::Primary) | (ActiveSide::Dr, Side::Dr)
    );
    let limit = if serving {
        ">= 1 HEALTHY endpoint (the active side)"
    } else {
        ">= 1 endpoint (the standby side)"
    };
    let g = match read {
        Ok(g) => g,
        Err(e) => {
            return Check::not_judged(
                &id,
                format!(
                    "the group could not be read (see traffic.endpoint-group.{}): {e}",
                    side.as_str()
                ),
                limit,
            );
        }
    };
    let seen = if g.endpoints.is_empty() {
        "no endpoints".to_string()
    } else {
        g.endpoints
            .iter()
            .map(|e| {
                let name = e.id.rsplit('/').nth(1).unwrap_or(&e.id);
                format!(
                    "{name} {}",
                    if e.health.is_empty() { "?" } else { &e.health }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if g.endpoints.is_empty() {
        return Check::fail(
            &id,
            seen,
            limit,
            format!(
                "endpoint group {} has no endpoints: traffic turned to it goes nowhere; add the {} load balancer",
                g.arn,
                side.as_str()
            ),
        );
    }
    if !serving {
        return Check::pass(
            &id,
            seen,
            limit,
            format!(
                "{} endpoint(s) configured ({} healthy); the standby's health follows its instances",
                g.endpoints.len(),
                g.healthy_endpoints()
            ),
        );
    }
    if g.healthy_endpoints() == 0 {
        return Check::fail(
            &id,
            seen,
            limit,
            format!(
                "no healthy endpoint in the active {} side's group {}: users get errors now",
                side.as_str(),
                g.arn
            ),
        );
    }
    Check::pass(
        &id,
        seen,
        limit,
        format!(
            "{} of {} endpoint(s) healthy",
            g.healthy_endpoints(),
            g.endpoints.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::globalaccelerator::EndpointState;
    use crate::readiness::Verdict;

    pub(crate) fn group(region: &str, dial: i32, health: &[&str]) -> EndpointGroupState {
        EndpointGroupState {
            arn: format!("arn:eg-{region}"),
            region: region.into(),
            dial,
            endpoints: health
                .iter()
                .enumerate()
                .map(|(i, h)| EndpointState {
                    id: format!(
                        "arn:aws:elasticloadbalancing:{region}:1:loadbalancer/app/web{i}/x"
                    ),
                    health: h.to_string(),
                })
                .collect(),
        }
    }

    use crate::readiness::tests::plan;

    #[test]
    fn endpoint_groups_must_exist_in_the_plans_regions() {
        let p = plan();
        let ok = endpoint_group(&p, Side::Dr, &Ok(group("ap-northeast-1", 0, &["HEALTHY"])));
        assert_eq!(
            (ok.id.as_str(), ok.verdict),
            ("traffic.endpoint-group.dr", Verdict::Pass)
        );
        let wrong = endpoint_group(&p, Side::Dr, &Ok(group("us-east-1", 0, &[])));
        assert_eq!(wrong.verdict, Verdict::Fail);
        assert!(
            wrong.seen == "region us-east-1"
                && wrong.detail.contains("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN")
        );
        let gone = endpoint_group(
            &p,
            Side::Primary,
            &Err("EndpointGroupNotFoundException".into()),
        );
        assert_eq!(gone.verdict, Verdict::Fail);
        assert!(
            gone.seen.contains("EndpointGroupNotFoundException"),
            "{gone:?}"
        );
    }

    #[test]
    fn the_dials_say_the_active_side_and_a_half_shift_warns() {
        let seen = TrafficSeen {
            primary: Ok(group("ap-northeast-2", 100, &["HEALTHY"])),
            dr: Ok(group("ap-northeast-1", 0, &["UNHEALTHY"])),
        };
        assert_eq!(seen.active(), ActiveSide::Primary);
        let all = checks(&plan(), &seen);
        assert!(all.iter().all(|c| c.verdict == Verdict::Pass), "{all:#?}");
        assert_eq!(
            dials(&ActiveSide::from_dials(50, 50)).verdict,
            Verdict::Warn
        );
        let unknown = TrafficSeen {
            primary: Err("no answer within 5000 ms".into()),
            ..seen.clone()
        };
        // The unread group fails its own check only; what depends on it is not judged.
        let all = checks(&plan(), &unknown);
        let failed: Vec<&str> = all
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(failed, ["traffic.endpoint-group.primary"]);
        let d = dials(&unknown.active());
        assert!(
            d.verdict == Verdict::Warn && d.detail.contains("no answer"),
            "{d:?}"
        );
    }

    #[test]
    fn the_active_sides_endpoints_must_be_healthy() {
        let unhealthy = Ok(group("ap-northeast-2", 100, &["UNHEALTHY"]));
        let c = endpoints(Side::Primary, &ActiveSide::Primary, &unhealthy);
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.seen, "web0 UNHEALTHY");
        // The pilot light's endpoints are unhealthy by design: no instances.
        let c = endpoints(Side::Primary, &ActiveSide::Dr, &unhealthy);
        assert_eq!(c.verdict, Verdict::Pass);
        let none = Ok(group("ap-northeast-1", 0, &[]));
        assert_eq!(
            endpoints(Side::Dr, &ActiveSide::Primary, &none).verdict,
            Verdict::Fail
        );
    }
}
