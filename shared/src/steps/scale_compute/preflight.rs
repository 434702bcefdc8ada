//! scale-compute `preflight` (docs/guarantees.md): read only, everything `start` could refuse. Pure verdicts:
//! [`check_ami_source`], [`check_ami`] (found, age, available), [`check_group`] (exists, max covers the capacity
//! to restore).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ami::{ami_id, newest_completed};
use super::capacity::{scale_up_only, wanted_capacity};
use super::fence::restore_base;
use super::{STEP, read_source_capacity, source_recovery_points};
use crate::aws::autoscaling::{GroupState, describe_group};
use crate::aws::backup::RecoveryPoint;
use crate::error::Result;
use crate::plan::{Capacity, Side};
use crate::preflight::{Check, PreflightSaw};
use crate::runtime::Context;
use crate::step::{Overrides, StepInput, StepReport};

/// The plan names the resource whose recovery points this region launches. Pure.
pub fn check_ami_source(source: Option<&str>, side: Side, overrides: &Overrides) -> Check {
    let variable = side.variable("AMI_SOURCE");
    match source {
        Some(arn) => Check::pass(
            "ami.source",
            json!(arn),
            json!(variable),
            format!("recovery points of {arn} only"),
        ),
        None => Check::fail(
            "ami.source",
            json!(null),
            json!(variable),
            Some("allow_any_ami_source"),
            overrides,
            format!(
                "{variable} is not set: the newest recovery point of any backed-up instance in the vault would be \
                 launched"
            ),
        ),
    }
}

/// The AMI the step would launch: a COMPLETED recovery point of the source naming an AMI (found, available),
/// no older than the plan's limit (age). Pure.
pub fn check_ami(
    points: &[RecoveryPoint],
    vault: &str,
    now: DateTime<Utc>,
    max_age_hours: u64,
    overrides: &Overrides,
) -> Vec<Check> {
    let Some((rp, image, created)) = newest_completed(points) else {
        let newest_any = points.iter().max_by_key(|p| p.created_at);
        return vec![Check::fail(
            "ami.found",
            json!({"listed": points.len(), "newest_status": newest_any.map(|p| &p.status)}),
            json!("a COMPLETED EC2 recovery point naming an AMI"),
            None,
            overrides,
            format!(
                "no COMPLETED AMI recovery point of the source in vault {vault} ({} listed)",
                points.len()
            ),
        )];
    };
    let age_hours = (now - created).num_seconds().max(0) as f64 / 3600.0;
    let age_hours = (age_hours * 10.0).round() / 10.0;
    let found = Check::pass(
        "ami.found",
        json!({"recovery_point": rp.arn, "image_id": image, "resource_arn": rp.resource_arn}),
        json!("a COMPLETED EC2 recovery point naming an AMI"),
        format!("{image} from {}", rp.arn),
    );
    // A newer point of the source that is not COMPLETED yet (a copy running) is reported, not launched.
    let newer_pending = points
        .iter()
        .filter(|p| p.created_at.is_some_and(|c| c > created) && ami_id(&p.arn).is_some())
        .map(|p| p.status.clone())
        .collect::<Vec<_>>();
    let available = Check::pass(
        "ami.available",
        json!({"status": rp.status, "newer_not_completed": newer_pending}),
        json!("COMPLETED"),
        "the recovery point is COMPLETED (the EC2 image state itself is not read: no EC2 client)",
    );
    let age = if age_hours <= max_age_hours as f64 {
        Check::pass(
            "ami.age",
            json!(age_hours),
            json!(max_age_hours),
            format!("{image} is {age_hours} h old, within {max_age_hours} h"),
        )
    } else {
        Check::fail(
            "ami.age",
            json!(age_hours),
            json!(max_age_hours),
            Some("allow_stale_ami"),
            overrides,
            format!(
                "newest AMI of the source {image} is {age_hours} h old, older than the plan's limit of {max_age_hours} h \
                 (PILOTLIGHT_MAX_AMI_AGE_HOURS)"
            ),
        )
    };
    vec![found, available, age]
}

/// The target group exists and its max after the scale-up covers the capacity to restore. Pure.
pub fn check_group(
    group: Option<&GroupState>,
    name: &str,
    wanted: Capacity,
    overrides: &Overrides,
) -> Vec<Check> {
    let Some(g) = group else {
        return vec![Check::fail(
            "asg.exists",
            json!(null),
            json!(name),
            None,
            overrides,
            format!("Auto Scaling group {name} not found in the target region"),
        )];
    };
    let after = scale_up_only(g.capacity, wanted);
    let capacity = if after.max >= wanted.desired {
        Check::pass(
            "asg.capacity",
            json!({"max_after": after.max, "now": g.capacity}),
            json!({"desired": wanted.desired}),
            format!(
                "max {} covers the {} instance(s) to restore",
                after.max, wanted.desired
            ),
        )
    } else {
        Check::fail(
            "asg.capacity",
            json!({"max_after": after.max}),
            json!({"desired": wanted.desired}),
            None,
            overrides,
            format!(
                "max {} is below the {} instance(s) to restore",
                after.max, wanted.desired
            ),
        )
    };
    vec![
        Check::pass(
            "asg.exists",
            json!(g.name),
            json!(name),
            format!("{} exists", g.name),
        ),
        capacity,
    ]
}

/// The capacity `start` would restore in the target region (pure): the plan's, or what the fence recorded on the
/// group, raised to the source's desired capacity when that was read. The preflight and readiness judge
/// `asg.capacity` against it.
pub fn capacity_to_restore(
    planned: Capacity,
    group: Option<&GroupState>,
    source_capacity: Option<Capacity>,
) -> Capacity {
    let base = restore_base(planned, group.and_then(|g| g.fenced_capacity));
    wanted_capacity(base.0, source_capacity).0
}

pub(super) async fn preflight(
    ctx: &Context,
    input: &StepInput,
    report: StepReport,
) -> Result<StepReport> {
    let (target, source) = (input.direction.target(), input.direction.source());
    let tp = ctx.plan.region(target);
    let clients = ctx.aws.region(target);
    let (group, points, source_capacity) = tokio::join!(
        describe_group(clients.autoscaling(), &tp.asg, &tp.region),
        source_recovery_points(clients.backup(), tp),
        read_source_capacity(
            ctx.aws.region(source).autoscaling(),
            ctx.plan.region(source)
        ),
    );
    let group = group?;
    let points = points?;
    let wanted = capacity_to_restore(tp.capacity, group.as_ref(), source_capacity.capacity());
    let o = &input.overrides;
    let mut checks = vec![check_ami_source(tp.ami_source.as_deref(), target, o)];
    checks.extend(check_ami(
        &points,
        &tp.backup_vault,
        Utc::now(),
        ctx.plan.max_ami_age_hours,
        o,
    ));
    checks.extend(check_group(group.as_ref(), &tp.asg, wanted, o));
    Ok(PreflightSaw::of(checks).into_report(report, STEP))
}

#[cfg(test)]
mod tests {
    use super::super::ami::of_source;
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
    }
    fn rp(ami: &str, status: &str, hours: i64, from: &str) -> RecoveryPoint {
        RecoveryPoint {
            arn: format!("arn:aws:ec2:ap-northeast-1::image/{ami}"),
            status: status.into(),
            created_at: Some(now() - Duration::hours(hours)),
            resource_arn: Some(from.into()),
        }
    }
    const WEB: &str = "arn:aws:ec2:ap-northeast-2:123456789012:instance/i-web";
    const BATCH: &str = "arn:aws:ec2:ap-northeast-2:123456789012:instance/i-batch";

    #[test]
    fn only_the_sources_recovery_points_count_and_their_age_is_checked() {
        let none = Overrides::default();
        let points = vec![
            rp("ami-0000000000000000a", "COMPLETED", 100, WEB),
            rp("ami-0000000000000000b", "COMPLETED", 1, BATCH),
        ];
        let web = of_source(points.clone(), Some(WEB));
        assert_eq!(web.len(), 1);
        let checks = check_ami(&web, "v", now(), 72, &none);
        let age = checks.iter().find(|c| c.check == "ami.age").unwrap();
        assert!(
            !age.passed
                && age.seen == 100.0
                && age.limit == 72
                && age.override_name.as_deref() == Some("allow_stale_ami"),
            "{age:?}"
        );
        let allowed = check_ami(
            &web,
            "v",
            now(),
            72,
            &Overrides {
                allow_stale_ami: true,
                ..none
            },
        );
        assert!(allowed.iter().all(|c| c.passed));
        assert!(
            check_ami(&of_source(points, None), "v", now(), 72, &none)
                .iter()
                .all(|c| c.passed)
        );
        let empty = check_ami(&[], "v", now(), 72, &none);
        assert!(
            !empty[0].passed && empty[0].check == "ami.found" && empty[0].override_name.is_none()
        );
        let creating = check_ami(
            &[rp("ami-0000000000000000c", "CREATING", 1, WEB)],
            "v",
            now(),
            72,
            &none,
        );
        assert!(!creating[0].passed);
    }

    #[test]
    fn the_source_must_be_named_and_the_group_must_exist() {
        let none = Overrides::default();
        assert!(check_ami_source(Some(WEB), Side::Dr, &none).passed);
        let c = check_ami_source(None, Side::Dr, &none);
        assert!(!c.passed && c.limit == "PILOTLIGHT_DR_AMI_SOURCE", "{c:?}");
        assert!(
            check_ami_source(
                None,
                Side::Dr,
                &Overrides {
                    allow_any_ami_source: true,
                    ..none
                }
            )
            .passed
        );
        let wanted = Capacity {
            min: 2,
            desired: 2,
            max: 4,
        };
        let missing = check_group(None, "web-dr", wanted, &none);
        assert!(!missing[0].passed && missing[0].check == "asg.exists");
        let g = GroupState {
            name: "web-dr".into(),
            capacity: Capacity {
                min: 0,
                desired: 0,
                max: 0,
            },
            instances: vec![],
            target_group_arns: vec![],
            fenced_capacity: None,
        };
        assert!(
            check_group(Some(&g), "web-dr", wanted, &none)
                .iter()
                .all(|c| c.passed)
        );
    }
}
