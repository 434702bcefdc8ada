//! Global Accelerator: the traffic dials of the two endpoint groups. Its API lives in us-west-2 only, so moving
//! traffic never needs the failed region.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::FailoverPlan;

/// Traffic dial percentages (0-100) of the two endpoint groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dials {
    pub primary: i32,
    pub dr: i32,
}

pub async fn read_dial(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
) -> Result<i32> {
    let resp = ga
        .describe_endpoint_group()
        .endpoint_group_arn(endpoint_group_arn)
        .send()
        .await
        .map_err(|e| Error::aws("DescribeEndpointGroup", endpoint_group_arn, e))?;
    let group = resp.endpoint_group().ok_or_else(|| {
        Error::not_found(format!("endpoint group {endpoint_group_arn}: DescribeEndpointGroup returned no group; check the plan's ARN"))
    })?;
    // An unset dial means the default, 100.
    Ok(group
        .traffic_dial_percentage()
        .map(|d| d.round() as i32)
        .unwrap_or(100))
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
