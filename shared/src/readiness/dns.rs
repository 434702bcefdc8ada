//! DNS: what Route 53 answers follows the active side. Health-check mode: both pre-created health checks exist
//! (`dns.health-check.<side>`) with the flags update-dns leaves for the active side (`routing::wanted_flags`:
//! automatic checking on both while the primary serves, DR forced healthy and the primary forced unhealthy while
//! DR serves). Records mode: the one plain CNAME exists and holds the active side's value (`dns.record`). Route 53's
//! API is global: read like the failover reads it.

use crate::aws::clients::AwsClients;
use crate::aws::route53::{
    CnameRecordSet, HealthCheckState, cname_record_sets, get_health_check, same_dns_name,
};
use crate::plan::{Direction, DnsPlan, FailoverPlan, Side};
use crate::routing::{CheckFlags, wanted_flags};
use crate::steps::detect::decision::ActiveSide;
use crate::steps::update_dns::one_plain_cname;

use super::{Check, bounded, dr_budget};

#[derive(Debug, Clone)]
pub enum DnsSeen {
    HealthChecks {
        primary: Result<HealthCheckState, String>,
        dr: Result<HealthCheckState, String>,
    },
    Record(Result<Vec<CnameRecordSet>, String>),
}

pub async fn observe(aws: &AwsClients, plan: &FailoverPlan) -> DnsSeen {
    let (r53, t) = (aws.route53(), dr_budget(plan));
    match &plan.dns {
        DnsPlan::HealthCheck {
            primary_health_check_id,
            dr_health_check_id,
        } => {
            let (primary, dr) = tokio::join!(
                bounded(t, get_health_check(r53, primary_health_check_id)),
                bounded(t, get_health_check(r53, dr_health_check_id)),
            );
            DnsSeen::HealthChecks { primary, dr }
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            ..
        } => DnsSeen::Record(bounded(t, cname_record_sets(r53, hosted_zone_id, record_name)).await),
    }
}

fn flags_text(f: CheckFlags) -> String {
    match f {
        CheckFlags::AUTOMATIC => "automatic".to_string(),
        CheckFlags::FORCED_HEALTHY => "forced healthy (disabled)".to_string(),
        CheckFlags::FORCED_UNHEALTHY => "forced unhealthy (disabled, inverted)".to_string(),
        CheckFlags { inverted, .. } => format!("inverted={inverted}, automatic"),
    }
}

/// The flags each side's check should have while `active` serves: failover's end state while DR serves, the
/// automatic steady state (also failback's end state) while the primary serves. None: no side is known to serve.
pub fn expected_flags(active: &ActiveSide, side: Side) -> Option<CheckFlags> {
    match active {
        ActiveSide::Primary => Some(wanted_flags(Direction::Failback, side)),
        ActiveSide::Dr => Some(wanted_flags(Direction::Failover, side)),
        _ => None,
    }
}

/// Pure.
pub fn checks(plan: &FailoverPlan, active: &ActiveSide, seen: &DnsSeen) -> Vec<Check> {
    match seen {
        DnsSeen::HealthChecks { primary, dr } => vec![
            health_check(Side::Primary, active, primary),
            health_check(Side::Dr, active, dr),
        ],
        DnsSeen::Record(read) => vec![record(plan, active, read)],
    }
}

/// One side's health check: exists, flags as the active side wants them. Pure.
pub fn health_check(
    side: Side,
    active: &ActiveSide,
    read: &Result<HealthCheckState, String>,
) -> Check {
    let id = format!("dns.health-check.{}", side.as_str());
    let want = expected_flags(active, side);
    let limit = want.map_or("exists".to_string(), |w| {
        format!("exists, {}", flags_text(w))
    });
    let hc = match read {
        Ok(hc) => hc,
        Err(e) => {
            return Check::unread(
                &id,
                &format!(
                    "the {} health check ({})",
                    side.as_str(),
                    side.variable("HEALTH_CHECK_ID")
                ),
                e,
                &limit,
            );
        }
    };
    let seen = format!("{} {}", hc.check_type, flags_text(hc.flags));
    match want {
        None => Check::warn(
            &id,
            seen,
            &limit,
            "no side is known to serve (see traffic.dials): the flags are not judged",
        ),
        Some(w) if w == hc.flags => Check::pass(
            &id,
            seen,
            &limit,
            format!(
                "{} as update-dns leaves it while the {} serves",
                hc.id,
                side_serving(active)
            ),
        ),
        Some(_) => {
            // The active side's record not answering is an outage of DNS; the other side's flags only matter at
            // the next flip, which sets them anyway.
            let active_side = matches!(
                (active, side),
                (ActiveSide::Primary, Side::Primary) | (ActiveSide::Dr, Side::Dr)
            );
            let detail = format!(
                "{} is {} while the {} serves: re-run update-dns (detect {{\"command\": \"{}\"}} or the \
                 step) to set it",
                hc.id,
                flags_text(hc.flags),
                side_serving(active),
                if matches!(active, ActiveSide::Dr) {
                    "failover"
                } else {
                    "failback"
                }
            );
            if active_side || matches!(active, ActiveSide::Dr) {
                Check::fail(&id, seen, &limit, detail)
            } else {
                Check::warn(&id, seen, &limit, detail)
            }
        }
    }
}

fn side_serving(active: &ActiveSide) -> &'static str {
    match active {
        ActiveSide::Dr => "DR",
        _ => "primary",
    }
}

/// Records mode: the CNAME answers the active side. Pure.
pub fn record(
    plan: &FailoverPlan,
    active: &ActiveSide,
    read: &Result<Vec<CnameRecordSet>, String>,
) -> Check {
    const ID: &str = "dns.record";
    let DnsPlan::Records {
        hosted_zone_id,
        record_name,
        primary_value,
        dr_value,
        ..
    } = &plan.dns
    else {
        return Check::fail(
            ID,
            "health-check mode",
            "records mode",
            "the plan is not in records mode",
        );
    };
    let want = match active {
        ActiveSide::Primary => Some(primary_value),
        ActiveSide::Dr => Some(dr_value),
        _ => None,
    };
    let limit = want.map_or("exists".to_string(), |w| format!("CNAME {w}"));
    let sets = match read {
        Ok(s) => s,
        Err(e) => return Check::unread(ID, &format!("record {record_name}"), e, &limit),
    };
    let rec = match one_plain_cname(sets, hosted_zone_id, record_name) {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                ID,
                format!("{} record set(s)", sets.len()),
                &limit,
                e.message,
            );
        }
    };
    let seen = format!("CNAME {}", rec.value);
    match want {
        None => Check::warn(
            ID,
            seen,
            &limit,
            "no side is known to serve (see traffic.dials): the record is not judged",
        ),
        Some(w) if same_dns_name(&rec.value, w) => Check::pass(
            ID,
            seen,
            &limit,
            format!("{record_name} answers the {} side", side_serving(active)),
        ),
        Some(_) => Check::fail(
            ID,
            seen,
            &limit,
            format!(
                "{record_name} does not answer the {} side that serves: re-run update-dns",
                side_serving(active)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::route53::RecordState;
    use crate::readiness::Verdict;

    fn hc(flags: CheckFlags) -> Result<HealthCheckState, String> {
        Ok(HealthCheckState {
            id: "hc".into(),
            version: 1,
            check_type: "HTTPS".into(),
            flags,
        })
    }

    #[test]
    fn health_check_flags_follow_the_active_side() {
        let auto = hc(CheckFlags::AUTOMATIC);
        assert_eq!(
            health_check(Side::Primary, &ActiveSide::Primary, &auto).verdict,
            Verdict::Pass
        );
        // DR serves but the primary's check still answers: update-dns did not finish.
        let c = health_check(Side::Primary, &ActiveSide::Dr, &auto);
        assert!(
            c.verdict == Verdict::Fail && c.seen == "HTTPS automatic",
            "{c:?}"
        );
        let c = health_check(
            Side::Primary,
            &ActiveSide::Dr,
            &hc(CheckFlags::FORCED_UNHEALTHY),
        );
        assert_eq!(c.verdict, Verdict::Pass);
        // The primary serves but its own check is forced unhealthy: DNS answers DR.
        let c = health_check(
            Side::Primary,
            &ActiveSide::Primary,
            &hc(CheckFlags::FORCED_UNHEALTHY),
        );
        assert_eq!(c.verdict, Verdict::Fail);
        let c = health_check(
            Side::Dr,
            &ActiveSide::Primary,
            &hc(CheckFlags::FORCED_HEALTHY),
        );
        assert_eq!(c.verdict, Verdict::Warn);
        let c = health_check(
            Side::Dr,
            &ActiveSide::Primary,
            &Err("NoSuchHealthCheck".into()),
        );
        assert!(c.verdict == Verdict::Fail && c.seen == "error: NoSuchHealthCheck");
    }

    #[test]
    fn the_record_answers_the_active_side() {
        let mut vars = crate::plan::tests::reference_vars();
        for (k, v) in [
            ("PILOTLIGHT_DNS_MODE", "records"),
            ("PILOTLIGHT_HOSTED_ZONE_ID", "Z1"),
            ("PILOTLIGHT_RECORD_NAME", "app.example.com"),
            ("PILOTLIGHT_PRIMARY_RECORD_VALUE", "primary.example.com"),
            ("PILOTLIGHT_DR_RECORD_VALUE", "dr.example.com"),
        ] {
            vars.insert(k.into(), v.into());
        }
        let p = FailoverPlan::from_map(&vars).unwrap();
        let set = |v: &str| -> Result<Vec<CnameRecordSet>, String> {
            Ok(vec![CnameRecordSet {
                record: RecordState {
                    name: "app.example.com.".into(),
                    value: v.into(),
                    ttl: Some(60),
                },
                routing_policy_or_alias: false,
            }])
        };
        assert_eq!(
            record(&p, &ActiveSide::Primary, &set("primary.example.com")).verdict,
            Verdict::Pass
        );
        let c = record(&p, &ActiveSide::Dr, &set("primary.example.com"));
        assert!(
            c.verdict == Verdict::Fail && c.seen == "CNAME primary.example.com",
            "{c:?}"
        );
        let c = record(&p, &ActiveSide::Primary, &Ok(vec![]));
        assert!(
            c.verdict == Verdict::Fail && c.detail.contains("not found"),
            "{c:?}"
        );
    }
}
