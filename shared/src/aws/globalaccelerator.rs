//! Global Accelerator: the endpoint groups and their traffic dials. Its API lives in us-west-2 only (see
//! [`super::clients`]), so reading and turning the dials never needs either of the plan's regions.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};
use crate::plan::FailoverPlan;
use crate::routing::Dials;

/// One endpoint group as read from the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointGroupState {
    pub arn: String,
    pub region: String,
    pub dial: i32,
    pub endpoints: Vec<EndpointState>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointState {
    pub id: String,
    pub health: String,
}

impl EndpointGroupState {
    pub fn healthy_endpoints(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.health == "HEALTHY")
            .count()
    }
}

/// IAM: what [`describe_endpoint_group`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_ENDPOINT_GROUP: Call = Call {
    adapter: "globalaccelerator::describe_endpoint_group",
    operations: &["describe_endpoint_group"],
    needs: &[Permission::new(
        "globalaccelerator:DescribeEndpointGroup",
        Resource::EndpointGroup,
    )],
};

pub async fn describe_endpoint_group(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
) -> Result<EndpointGroupState> {
    let resp = ga
        .describe_endpoint_group()
        .endpoint_group_arn(endpoint_group_arn)
        .send()
        .await
        .map_err(|e| Error::aws("DescribeEndpointGroup", endpoint_group_arn, e))?;
    let group = resp.endpoint_group().ok_or_else(|| {
        Error::not_found(format!("endpoint group {endpoint_group_arn}: DescribeEndpointGroup returned no group; check the plan's ARN"))
    })?;
    Ok(EndpointGroupState {
        arn: endpoint_group_arn.to_string(),
        region: group
            .endpoint_group_region()
            .unwrap_or_default()
            .to_string(),
        // An unset dial means the default, 100.
        dial: group
            .traffic_dial_percentage()
            .map(|d| d.round() as i32)
            .unwrap_or(100),
        endpoints: group
            .endpoint_descriptions()
            .iter()
            .map(|e| EndpointState {
                id: e.endpoint_id().unwrap_or_default().to_string(),
                health: e
                    .health_state()
                    .map(|h| h.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    })
}

pub async fn read_dial(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
) -> Result<i32> {
    Ok(describe_endpoint_group(ga, endpoint_group_arn).await?.dial)
}

pub async fn read_dials(
    ga: &aws_sdk_globalaccelerator::Client,
    plan: &FailoverPlan,
) -> Result<Dials> {
    let (primary, dr) = tokio::join!(
        read_dial(ga, &plan.primary.endpoint_group_arn),
        read_dial(ga, &plan.dr.endpoint_group_arn)
    );
    Ok(Dials {
        primary: primary?,
        dr: dr?,
    })
}

/// IAM: what [`set_dial`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const SET_DIAL: Call = Call {
    adapter: "globalaccelerator::set_dial",
    operations: &["update_endpoint_group"],
    needs: &[Permission::new(
        "globalaccelerator:UpdateEndpointGroup",
        Resource::EndpointGroup,
    )],
};

pub async fn set_dial(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
    percent: i32,
) -> Result<()> {
    // Only TrafficDialPercentage is sent: UpdateEndpointGroup leaves the endpoints and health-check settings as they are.
    ga.update_endpoint_group()
        .endpoint_group_arn(endpoint_group_arn)
        .traffic_dial_percentage(percent as f32)
        .send()
        .await
        .map_err(|e| Error::aws("UpdateEndpointGroup", endpoint_group_arn, e))?;
    Ok(())
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&DESCRIBE_ENDPOINT_GROUP, &SET_DIAL];
