//! Compute: the standby can launch, by scale-compute's own preflight verdicts. The plan names the AMI's source
//! (`compute.ami.source`); the standby vault holds a COMPLETED recovery point of it naming an AMI
//! (`compute.ami.found`, `compute.ami.available`) within the age limit (`compute.ami.age`); the standby group exists
//! (`compute.asg.exists`) and its max covers the capacity to restore (`compute.asg.capacity`); the parameter the
//! launch template resolves is usable (`compute.ami-parameter`).

use chrono::{DateTime, Utc};

use crate::aws::autoscaling::{GroupState, describe_group};
use crate::aws::backup::{RecoveryPoint, list_ec2_recovery_points};
use crate::aws::clients::AwsClients;
use crate::aws::ssm::{AMI_DATA_TYPE, AmiParameter, read_parameter};
use crate::plan::{FailoverPlan, Side};
use crate::step::Overrides;
use crate::steps::scale_compute::ami::of_source;
use crate::steps::scale_compute::preflight::{
    capacity_to_restore, check_ami, check_ami_source, check_group,
};

use super::{Check, bounded, budget};

/// What was read in the standby region (and the active group's capacity, best-effort).
#[derive(Debug, Clone)]
pub struct ComputeSeen {
    pub group: Result<Option<GroupState>, String>,
    /// The active side's group: its desired capacity raises the capacity to restore (as in scale-compute).
    pub active_group: Result<Option<GroupState>, String>,
    /// The standby vault's recovery points of the plan's source.
    pub points: Result<Vec<RecoveryPoint>, String>,
    pub ami_parameter: Result<AmiParameter, String>,
}

pub async fn observe(aws: &AwsClients, plan: &FailoverPlan, standby: Side) -> ComputeSeen {
    let (tp, ap) = (plan.region(standby), plan.region(standby.other()));
    let (t, clients) = (budget(plan, standby), aws.region(standby));
    let source = tp.ami_source.as_deref();
    let (group, active_group, points, ami_parameter) = tokio::join!(
        bounded(
            t,
            describe_group(clients.autoscaling(), &tp.asg, &tp.region)
        ),
        bounded(
            budget(plan, standby.other()),
            describe_group(
                aws.region(standby.other()).autoscaling(),
                &ap.asg,
                &ap.region
            )
        ),
        bounded(
            t,
            list_ec2_recovery_points(clients.backup(), &tp.backup_vault, &tp.region, source)
        ),
        bounded(
            t,
            read_parameter(clients.ssm(), &tp.ami_parameter, &tp.region)
        ),
    );
    ComputeSeen {
        group,
        active_group,
        points: points.map(|p| of_source(p, source)),
        ami_parameter,
    }
}

/// The compute checks of the standby side. Pure.
pub fn checks(
    plan: &FailoverPlan,
    standby: Side,
    seen: &ComputeSeen,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let none = Overrides::default();
    let tp = plan.region(standby);
    let c = |p| Check::from_preflight("compute", p);
    let mut out = vec![c(check_ami_source(
        tp.ami_source.as_deref(),
        standby,
        &none,
    ))];
    match &seen.points {
        Ok(points) => out.extend(
            check_ami(points, &tp.backup_vault, now, plan.max_ami_age_hours, &none)
                .into_iter()
                .map(c),
        ),
        Err(e) => out.push(Check::unread(
            "compute.ami.found",
            &format!(
                "the recovery points in vault {} ({})",
                tp.backup_vault, tp.region
            ),
            e,
            "a COMPLETED EC2 recovery point naming an AMI",
        )),
    }
    match &seen.group {
        Ok(group) => {
            // The active group unread (its region may be the failed one): the plan's capacity, as scale-compute.
            let active = seen
                .active_group
                .as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map(|g| g.capacity);
            let wanted = capacity_to_restore(tp.capacity, group.as_ref(), active);
            out.extend(
                check_group(group.as_ref(), &tp.asg, wanted, &none)
                    .into_iter()
                    .map(c)
                    .map(|check| shortfall(check, standby, wanted, &seen.active_group)),
            );
        }
        Err(e) => out.push(Check::unread(
            "compute.asg.exists",
            &format!("Auto Scaling group {} ({})", tp.asg, tp.region),
            e,
            &tp.asg,
        )),
    }
    out.push(ami_parameter(&seen.ami_parameter, standby));
    out
}

/// Readiness's rule beside the preflight's `asg.capacity` (whose max after the scale-up always covers the plan):
/// the standby restores fewer instances than the active side runs now — the plan's max caps it — so the failover
/// would come up short. Pure.
pub fn shortfall(
    check: Check,
    standby: Side,
    wanted: crate::plan::Capacity,
    active_group: &Result<Option<GroupState>, String>,
) -> Check {
    if check.id != "compute.asg.capacity" || check.verdict == super::Verdict::Fail {
        return check;
    }
    let active = standby.other();
    match active_group {
        Ok(Some(g)) if g.capacity.desired > wanted.desired => Check::fail(
            &check.id,
            format!(
                "restores {} (max {}), the {} runs {}",
                wanted.desired,
                wanted.max,
                active.as_str(),
                g.capacity.desired
            ),
            &format!(
                ">= the {} group's desired {}",
                active.as_str(),
                g.capacity.desired
            ),
            format!(
                "a failover would start {} instance(s) where {} serve now: the plan's max {} caps it; raise {}",
                wanted.desired,
                g.capacity.desired,
                wanted.max,
                standby.variable("CAPACITY")
            ),
        ),
        Ok(Some(g)) => Check {
            detail: format!(
                "{}; the {} group runs {} now",
                check.detail,
                active.as_str(),
                g.capacity.desired
            ),
            ..check
        },
        Ok(None) => Check {
            detail: format!(
                "{}; the {} group was not found",
                check.detail,
                active.as_str()
            ),
            ..check
        },
        Err(e) => Check {
            detail: format!(
                "{}; the {} group's capacity was not read ({e}): judged against the plan's",
                check.detail,
                active.as_str()
            ),
            ..check
        },
    }
}

/// The parameter the standby's launch template resolves its AMI from (`resolve:ssm:<name>`): absent (scale-compute
/// creates it) or an `aws:ec2:image` parameter. The launch template itself is not read (no EC2 client in the lean
/// SDK set): its `ImageId` naming this parameter is the stack's contract (docs/readiness.md). Pure.
pub fn ami_parameter(read: &Result<AmiParameter, String>, side: Side) -> Check {
    const ID: &str = "compute.ami-parameter";
    let limit = format!("absent, or DataType {AMI_DATA_TYPE}");
    let p = match read {
        Ok(p) => p,
        Err(e) => return Check::unread(ID, "the AMI parameter", e, &limit),
    };
    match (&p.value, p.data_type.as_deref()) {
        (None, _) => Check::pass(
            ID,
            format!("{} absent", p.name),
            &limit,
            format!(
                "{} does not exist yet: scale-compute creates it ({AMI_DATA_TYPE}) with the chosen AMI",
                p.name
            ),
        ),
        (Some(v), Some(AMI_DATA_TYPE)) => Check::pass(
            ID,
            format!("{} = {v} ({AMI_DATA_TYPE})", p.name),
            &limit,
            format!(
                "the {} launch template resolves {}; scale-compute points it at the newest recovery point's AMI",
                side.as_str(),
                p.name
            ),
        ),
        (Some(v), dt) => Check::warn(
            ID,
            format!("{} = {v} (DataType {})", p.name, dt.unwrap_or("none")),
            &limit,
            format!(
                "{} is not an {AMI_DATA_TYPE} parameter: EC2 refuses `resolve:ssm:` of it as an ImageId until \
                 scale-compute rewrites it; check {}",
                p.name,
                side.variable("AMI_PARAMETER")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Capacity;
    use crate::readiness::Verdict;
    use crate::readiness::tests::plan;
    use chrono::Duration;

    const SOURCE: &str = "arn:aws:ec2:ap-northeast-2:123456789012:instance/i-web";

    fn seen(hours: i64, max: i32) -> ComputeSeen {
        let now = Utc::now();
        ComputeSeen {
            group: Ok(Some(GroupState {
                name: "web-asg-dr".into(),
                capacity: Capacity {
                    min: 0,
                    desired: 0,
                    max,
                },
                instances: vec![],
                target_group_arns: vec![],
                fenced_capacity: None,
            })),
            active_group: Err("no answer within 1500 ms".into()),
            points: Ok(vec![RecoveryPoint {
                arn: "arn:aws:ec2:ap-northeast-1::image/ami-0123456789abcdef0".into(),
                status: "COMPLETED".into(),
                created_at: Some(now - Duration::hours(hours)),
                resource_arn: Some(SOURCE.into()),
            }]),
            ami_parameter: Ok(AmiParameter {
                name: "/pilotlight/web/ami".into(),
                value: None,
                data_type: None,
            }),
        }
    }

    fn with_source() -> FailoverPlan {
        let mut p = plan();
        p.dr.ami_source = Some(SOURCE.into());
        p
    }

    fn verdict(checks: &[Check], id: &str) -> Verdict {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id}: {checks:#?}"))
            .verdict
    }

    #[test]
    fn a_fresh_ami_and_a_group_that_fits_pass_and_each_finding_fails_its_own_check() {
        let p = with_source();
        let now = Utc::now();
        let ok = checks(&p, Side::Dr, &seen(1, 0), now);
        assert!(ok.iter().all(|c| c.verdict == Verdict::Pass), "{ok:#?}");
        let ids: Vec<&str> = ok.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "compute.ami.source",
                "compute.ami.found",
                "compute.ami.available",
                "compute.ami.age",
                "compute.asg.exists",
                "compute.asg.capacity",
                "compute.ami-parameter"
            ]
        );
        let old = checks(&p, Side::Dr, &seen(100, 0), now);
        let age = old.iter().find(|c| c.id == "compute.ami.age").unwrap();
        assert_eq!(
            (age.verdict, age.seen.as_str(), age.limit.as_deref()),
            (Verdict::Fail, "100.0", Some("72"))
        );
        // The group's max after the scale-up is max(4 planned, its own): a lowered max is raised, so readiness
        // judges what scale-compute would do. A plan whose max is below desired is the finding.
        let mut small = with_source();
        small.dr.capacity = Capacity {
            min: 2,
            desired: 4,
            max: 3,
        };
        let c = checks(&small, Side::Dr, &seen(1, 0), now);
        assert_eq!(verdict(&c, "compute.asg.capacity"), Verdict::Fail);
        // The primary runs 6; the plan restores at most 4 in DR.
        let busy = ComputeSeen {
            active_group: Ok(Some(GroupState {
                name: "web-asg".into(),
                capacity: Capacity {
                    min: 2,
                    desired: 6,
                    max: 8,
                },
                instances: vec![],
                target_group_arns: vec![],
                fenced_capacity: None,
            })),
            ..seen(1, 0)
        };
        let c = checks(&p, Side::Dr, &busy, now);
        let cap = c.iter().find(|c| c.id == "compute.asg.capacity").unwrap();
        assert_eq!(cap.verdict, Verdict::Fail, "{cap:?}");
        assert_eq!(cap.seen, "restores 4 (max 4), the primary runs 6");
        let unread = ComputeSeen {
            group: Err("AccessDenied".into()),
            ..seen(1, 0)
        };
        let c = checks(&p, Side::Dr, &unread, now);
        assert_eq!(verdict(&c, "compute.asg.exists"), Verdict::Fail);
        assert!(c.iter().any(|c| c.seen == "error: AccessDenied"));
        let missing = ComputeSeen {
            group: Ok(None),
            ..seen(1, 0)
        };
        assert_eq!(
            verdict(&checks(&p, Side::Dr, &missing, now), "compute.asg.exists"),
            Verdict::Fail
        );
        // No source named: any instance's AMI would be launched.
        assert_eq!(
            verdict(
                &checks(&plan(), Side::Dr, &seen(1, 0), now),
                "compute.ami.source"
            ),
            Verdict::Fail
        );
    }

    #[test]
    fn the_ami_parameter_must_be_absent_or_an_image_parameter() {
        let p = |v: Option<&str>, dt: Option<&str>| {
            Ok(AmiParameter {
                name: "/p".into(),
                value: v.map(str::to_string),
                data_type: dt.map(str::to_string),
            })
        };
        assert_eq!(
            ami_parameter(&p(None, None), Side::Dr).verdict,
            Verdict::Pass
        );
        assert_eq!(
            ami_parameter(&p(Some("ami-1"), Some(AMI_DATA_TYPE)), Side::Dr).verdict,
            Verdict::Pass
        );
        let text = ami_parameter(&p(Some("ami-1"), Some("text")), Side::Dr);
        assert!(
            text.verdict == Verdict::Warn && text.seen.contains("DataType text"),
            "{text:?}"
        );
        assert_eq!(
            ami_parameter(&Err("x".into()), Side::Dr).verdict,
            Verdict::Fail
        );
    }
}
