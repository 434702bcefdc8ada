//! Elastic Load Balancing v2: the health of a target group's targets.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

/// IAM: what [`count_healthy_targets`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const COUNT_HEALTHY_TARGETS: Call = Call {
    adapter: "elbv2::count_healthy_targets",
    operations: &["describe_target_health"],
    needs: &[Permission::new(
        "elasticloadbalancing:DescribeTargetHealth",
        Resource::Any,
    )],
};

/// Healthy targets in `target_group_arn` that are instances of the group (other registrations do not count).
pub async fn count_healthy_targets(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    group_instances: &HashSet<&str>,
) -> Result<usize> {
    let resp = elbv2
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "DescribeTargetHealth",
                &format!("target group {target_group_arn}"),
                e,
            )
        })?;
    Ok(resp
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target()
                .and_then(|t| t.id())
                .is_some_and(|id| group_instances.contains(id))
        })
        .filter(|d| {
            d.target_health()
                .and_then(|h| h.state())
                .is_some_and(|s| s.as_str() == "healthy")
        })
        .count())
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&COUNT_HEALTHY_TARGETS];
