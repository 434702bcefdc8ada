//! EC2 Auto Scaling: a group's capacity and instances, and the capacity update.

use std::collections::BTreeMap;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::permissions::{Call, Permission, Resource};
use crate::plan::Capacity;

/// An Auto Scaling group as DescribeAutoScalingGroups shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    pub name: String,
    pub capacity: Capacity,
    pub instances: Vec<GroupInstance>,
    pub target_group_arns: Vec<String>,
    /// The capacity a fence recorded before taking the group to 0/0/0 (tag `pilotlight:fenced-capacity`), when
    /// the tag is there and reads as `min/desired/max`.
    pub fenced_capacity: Option<Capacity>,
}

/// `min/desired/max` as the fence writes it; None for anything else (a hand-edited tag is not trusted).
pub fn parse_capacity(text: &str) -> Option<Capacity> {
    let mut parts = text.trim().split('/').map(|p| p.trim().parse::<i32>().ok());
    let (min, desired, max) = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && 0 <= min && min <= desired && desired <= max).then_some(Capacity {
        min,
        desired,
        max,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInstance {
    pub id: String,
    pub lifecycle_state: String,
    pub health_status: String,
}

impl GroupState {
    /// Instances that can serve: InService and Healthy.
    pub fn ready_instances(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|i| i.lifecycle_state == "InService" && i.health_status == "Healthy")
            .map(|i| i.id.as_str())
            .collect()
    }

    /// How many instances are in each lifecycle state.
    pub fn lifecycle_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for i in &self.instances {
            *counts.entry(i.lifecycle_state.as_str()).or_default() += 1;
        }
        counts
    }
}

/// IAM: what [`describe_group`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_GROUP: Call = Call {
    adapter: "autoscaling::describe_group",
    operations: &["describe_auto_scaling_groups"],
    needs: &[Permission::new(
        "autoscaling:DescribeAutoScalingGroups",
        Resource::Any,
    )],
};

/// Reads one group; None when it does not exist.
pub async fn describe_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    region: &str,
) -> Result<Option<GroupState>> {
    let resp = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "DescribeAutoScalingGroups",
                &format!("Auto Scaling group {name} ({region})"),
                e,
            )
        })?;
    Ok(resp
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(|g| GroupState {
            name: name.to_string(),
            capacity: Capacity {
                min: g.min_size().unwrap_or(0),
                desired: g.desired_capacity().unwrap_or(0),
                max: g.max_size().unwrap_or(0),
            },
            instances: g
                .instances()
                .iter()
                .map(|i| GroupInstance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    lifecycle_state: i
                        .lifecycle_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    health_status: i.health_status().unwrap_or_default().to_string(),
                })
                .collect(),
            target_group_arns: g.target_group_arns().to_vec(),
            fenced_capacity: g
                .tags()
                .iter()
                .find(|t| t.key() == Some(crate::fence::FENCED_CAPACITY_TAG))
                .and_then(|t| t.value())
                .and_then(parse_capacity),
        }))
}

/// IAM: what [`update_group`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const UPDATE_GROUP: Call = Call {
    adapter: "autoscaling::update_group",
    operations: &["update_auto_scaling_group"],
    needs: &[Permission::new(
        "autoscaling:UpdateAutoScalingGroup",
        Resource::AutoScalingGroup,
    )],
};

pub async fn update_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    region: &str,
    changes: &[(&'static str, i32, i32)],
) -> Result<()> {
    let mut call = asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name);
    for (field, _, to) in changes {
        call = match *field {
            "MinSize" => call.min_size(*to),
            "DesiredCapacity" => call.desired_capacity(*to),
            _ => call.max_size(*to),
        };
    }
    call.send().await.map_err(|e| {
        // A scaling activity or another update in flight clears by itself: let the state machine retry.
        let busy = e
            .as_service_error()
            .and_then(|s| s.code())
            .is_some_and(|c| c == "ScalingActivityInProgress" || c == "ResourceContention");
        let err = Error::aws(
            "UpdateAutoScalingGroup",
            &format!("Auto Scaling group {name} ({region})"),
            e,
        );
        if busy {
            Error::new(ErrorKind::Transient, err.message)
        } else {
            Error::new(
                err.kind,
                format!("{err}: check the group's launch template and the function's autoscaling:UpdateAutoScalingGroup permission"),
            )
        }
    })?;
    Ok(())
}

/// IAM: what [`tag_group`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const TAG_GROUP: Call = Call {
    adapter: "autoscaling::tag_group",
    operations: &["create_or_update_tags"],
    needs: &[Permission::new(
        "autoscaling:CreateOrUpdateTags",
        Resource::AutoScalingGroup,
    )],
};

/// CreateOrUpdateTags on the group (not propagated to instances: the tags describe the group).
pub async fn tag_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    region: &str,
    tags: &[(&str, &str)],
) -> Result<()> {
    let mut call = asg.create_or_update_tags();
    for (key, value) in tags {
        call = call.tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(*key)
                .value(*value)
                .propagate_at_launch(false)
                .build(),
        );
    }
    call.send().await.map(|_| ()).map_err(|e| {
        Error::aws(
            "CreateOrUpdateTags",
            &format!("Auto Scaling group {name} ({region})"),
            e,
        )
    })
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&DESCRIBE_GROUP, &UPDATE_GROUP, &TAG_GROUP];

#[cfg(test)]
mod tests {
    use super::*;

    const fn cap(min: i32, desired: i32, max: i32) -> Capacity {
        Capacity { min, desired, max }
    }

    #[test]
    fn ready_instances_are_in_service_and_healthy() {
        let i = |id: &str, l: &str, h: &str| GroupInstance {
            id: id.into(),
            lifecycle_state: l.into(),
            health_status: h.into(),
        };
        let g = GroupState {
            name: "g".into(),
            capacity: cap(0, 3, 3),
            instances: vec![
                i("a", "InService", "Healthy"),
                i("b", "Pending", "Healthy"),
                i("c", "InService", "Unhealthy"),
            ],
            target_group_arns: vec![],
            fenced_capacity: None,
        };
        assert_eq!(g.ready_instances(), vec!["a"]);
        assert_eq!(g.lifecycle_counts().get("InService"), Some(&2));
    }

    #[test]
    fn the_fenced_capacity_tag_reads_only_as_written() {
        assert_eq!(parse_capacity("2/4/8"), Some(cap(2, 4, 8)));
        assert_eq!(parse_capacity(" 0/0/0 "), Some(cap(0, 0, 0)));
        for bad in ["", "2/4", "2/4/8/9", "4/2/8", "-1/0/0", "a/b/c"] {
            assert_eq!(parse_capacity(bad), None, "{bad}");
        }
    }
}
