//! scale-compute's pure decisions: how much capacity to restore, what to change, when the group is ready, and when
//! the DR group may go back to the pilot light.

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::ssm::{AMI_DATA_TYPE, AmiParameter};
use crate::plan::Capacity;

/// The capacity to restore: the plan's, or the source's larger desired capacity (it reflects the load just before
/// the failure), never above the plan's max (the plan's cost bound for this region).
pub fn wanted_capacity(plan: Capacity, source: Option<Capacity>) -> (Capacity, String) {
    match source {
        Some(s) if s.desired > plan.desired => {
            let desired = s.desired.min(plan.max);
            let capped = if desired < s.desired {
                format!(", capped at the plan's max {}", plan.max)
            } else {
                String::new()
            };
            (
                Capacity { desired, ..plan },
                format!(
                    "source region's desired capacity {} is above the plan's {}{capped}",
                    s.desired, plan.desired
                ),
            )
        }
        Some(s) => (
            plan,
            format!(
                "plan capacity (source region's desired capacity {} is not above it)",
                s.desired
            ),
        ),
        None => (
            plan,
            "plan capacity (source region's capacity could not be read)".to_string(),
        ),
    }
}

/// Scale-up only: each bound is the larger of what the group has and what is wanted. Both inputs satisfy
/// min <= desired <= max, so the result does too.
pub fn scale_up_only(current: Capacity, wanted: Capacity) -> Capacity {
    Capacity {
        min: current.min.max(wanted.min),
        desired: current.desired.max(wanted.desired),
        max: current.max.max(wanted.max),
    }
}

/// The UpdateAutoScalingGroup fields that differ, as (field, from, to).
pub fn capacity_changes(current: Capacity, target: Capacity) -> Vec<(&'static str, i32, i32)> {
    [
        ("MinSize", current.min, target.min),
        ("DesiredCapacity", current.desired, target.desired),
        ("MaxSize", current.max, target.max),
    ]
    .into_iter()
    .filter(|(_, from, to)| from != to)
    .collect()
}

/// The parameter fields that differ from what the launch template needs, as (field, from, to).
pub fn parameter_changes(
    current: &AmiParameter,
    image_id: &str,
) -> Vec<(&'static str, Value, Value)> {
    let mut out = Vec::new();
    if current.value.as_deref() != Some(image_id) {
        out.push(("Value", json!(current.value), json!(image_id)));
    }
    if current.data_type.as_deref() != Some(AMI_DATA_TYPE) {
        out.push(("DataType", json!(current.data_type), json!(AMI_DATA_TYPE)));
    }
    out
}

/// How close the group is to serving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    /// The group's desired capacity, but at least the plan's (a group still at zero is not "done").
    pub wanted: i32,
    pub in_service_healthy: usize,
    /// Healthy targets of the group's instances in the plan's target group (None: the plan names no target group).
    pub healthy_targets: Option<usize>,
    pub done: bool,
}

impl Readiness {
    /// Not done, but every wanted instance is InService and Healthy: only the target group's health checks are
    /// left (targets `initial`, healthy after HealthyThresholdCount checks), so the next poll should come soon
    /// (adaptive polling, [`crate::step::poll_soon_seconds`]).
    pub fn near_completion(&self) -> bool {
        !self.done && self.in_service_healthy as i64 >= i64::from(self.wanted)
    }
}

pub fn readiness(
    group_desired: i32,
    plan_desired: i32,
    in_service_healthy: usize,
    healthy_targets: Option<usize>,
) -> Readiness {
    let wanted = group_desired.max(plan_desired);
    let enough = |n: usize| n as i64 >= i64::from(wanted);
    let done = enough(in_service_healthy) && healthy_targets.is_none_or(enough);
    Readiness {
        wanted,
        in_service_healthy,
        healthy_targets,
        done,
    }
}

/// The pilot light: a region that does not serve runs no instances.
pub const PILOT_LIGHT: Capacity = Capacity {
    min: 0,
    desired: 0,
    max: 0,
};

/// Why reprotect may not scale the DR group down now (pure): it must not take capacity from a region that still
/// receives traffic. `dr_dial` is the DR endpoint group's traffic dial.
pub fn reprotect_blocker(dr_dial: i32, dr_endpoint_group: &str) -> Option<String> {
    (dr_dial > 0).then(|| {
        format!(
            "the DR endpoint group {dr_endpoint_group} still takes {dr_dial}% of the traffic: finish the failback \
             (shift-traffic until the primary dial is 100 and the DR dial 0) before reprotect, or rerun with the override allow_serving_scale_down"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn cap(min: i32, desired: i32, max: i32) -> Capacity {
        Capacity { min, desired, max }
    }

    /// Adaptive polling: near completion once every wanted instance is InService and only target health is left.
    #[test]
    fn readiness_is_near_completion_when_only_target_health_is_left() {
        assert!(readiness(2, 2, 2, Some(0)).near_completion());
        assert!(readiness(2, 2, 2, Some(1)).near_completion());
        assert!(
            !readiness(2, 2, 1, Some(0)).near_completion(),
            "an instance still Pending"
        );
        assert!(!readiness(2, 2, 2, Some(2)).near_completion(), "done");
        assert!(
            !readiness(2, 2, 2, None).near_completion(),
            "done without a target group"
        );
    }

    #[test]
    fn source_capacity_above_the_plan_wins_up_to_the_plans_max() {
        let plan = cap(2, 2, 4);
        assert_eq!(wanted_capacity(plan, Some(cap(1, 3, 8))).0, cap(2, 3, 4));
        let (c, why) = wanted_capacity(plan, Some(cap(2, 6, 8)));
        assert_eq!(c, cap(2, 4, 4));
        assert!(why.contains("capped at the plan's max 4"), "{why}");
        assert_eq!(wanted_capacity(plan, Some(cap(0, 1, 1))).0, plan);
        let (c, why) = wanted_capacity(plan, None);
        assert_eq!(c, plan);
        assert!(why.contains("could not be read"), "{why}");
    }

    #[test]
    fn capacity_never_goes_down() {
        assert_eq!(scale_up_only(cap(0, 0, 0), cap(2, 2, 4)), cap(2, 2, 4));
        assert_eq!(scale_up_only(cap(3, 5, 10), cap(2, 2, 4)), cap(3, 5, 10));
        assert_eq!(scale_up_only(cap(0, 1, 2), cap(2, 2, 4)), cap(2, 2, 4));
        assert_eq!(scale_up_only(cap(0, 6, 8), cap(2, 2, 4)), cap(2, 6, 8));
    }

    #[test]
    fn only_differing_fields_change() {
        assert_eq!(
            capacity_changes(cap(0, 0, 0), cap(2, 2, 4)),
            vec![
                ("MinSize", 0, 2),
                ("DesiredCapacity", 0, 2),
                ("MaxSize", 0, 4)
            ]
        );
        assert_eq!(
            capacity_changes(cap(2, 2, 8), cap(2, 3, 8)),
            vec![("DesiredCapacity", 2, 3)]
        );
        assert!(capacity_changes(cap(2, 2, 4), cap(2, 2, 4)).is_empty());
    }

    #[test]
    fn reprotect_goes_to_zero_and_waits_for_the_dr_dial() {
        assert_eq!(
            capacity_changes(cap(2, 4, 8), PILOT_LIGHT),
            vec![
                ("MinSize", 2, 0),
                ("DesiredCapacity", 4, 0),
                ("MaxSize", 8, 0)
            ]
        );
        assert_eq!(
            capacity_changes(cap(0, 0, 4), PILOT_LIGHT),
            vec![("MaxSize", 4, 0)]
        );
        assert!(capacity_changes(PILOT_LIGHT, PILOT_LIGHT).is_empty());
        assert_eq!(reprotect_blocker(0, "eg-dr"), None);
        let why = reprotect_blocker(25, "eg-dr").unwrap();
        assert!(
            why.contains("eg-dr")
                && why.contains("25%")
                && why.contains("allow_serving_scale_down"),
            "{why}"
        );
    }

    #[test]
    fn parameter_changes_cover_value_and_data_type() {
        let absent = AmiParameter {
            name: "/p".into(),
            value: None,
            data_type: None,
        };
        assert_eq!(
            parameter_changes(&absent, "ami-1"),
            vec![
                ("Value", Value::Null, json!("ami-1")),
                ("DataType", Value::Null, json!(AMI_DATA_TYPE))
            ]
        );
        let text = AmiParameter {
            name: "/p".into(),
            value: Some("ami-1".into()),
            data_type: Some("text".into()),
        };
        assert_eq!(
            parameter_changes(&text, "ami-1"),
            vec![("DataType", json!("text"), json!(AMI_DATA_TYPE))]
        );
        let same = AmiParameter {
            name: "/p".into(),
            value: Some("ami-1".into()),
            data_type: Some(AMI_DATA_TYPE.into()),
        };
        assert!(parameter_changes(&same, "ami-1").is_empty());
        assert_eq!(
            parameter_changes(&same, "ami-2"),
            vec![("Value", json!("ami-1"), json!("ami-2"))]
        );
    }

    #[test]
    fn readiness_wants_at_least_the_plans_desired_and_healthy_targets() {
        assert!(
            !readiness(0, 2, 0, None).done,
            "a group still at zero is not done"
        );
        assert!(readiness(2, 2, 2, None).done);
        assert!(!readiness(2, 2, 2, Some(1)).done);
        assert!(readiness(2, 2, 2, Some(2)).done);
        let r = readiness(4, 2, 3, Some(3));
        assert_eq!((r.wanted, r.done), (4, false));
    }
}
