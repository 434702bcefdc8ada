//! SSM Parameter Store: the parameter a launch template resolves its AMI from (`resolve:ssm:<name>`).

use aws_sdk_ssm::types::ParameterType;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

/// The SSM data type EC2 validates as an AMI id; required for `resolve:ssm:` in a launch template's ImageId.
pub const AMI_DATA_TYPE: &str = "aws:ec2:image";

/// The launch template's AMI parameter; `value` is None when the parameter does not exist yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmiParameter {
    pub name: String,
    pub value: Option<String>,
    pub data_type: Option<String>,
}

/// IAM: what [`read_parameter`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const READ_PARAMETER: Call = Call {
    adapter: "ssm::read_parameter",
    operations: &["get_parameter"],
    needs: &[Permission::new("ssm:GetParameter", Resource::Parameter)],
};

pub async fn read_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    region: &str,
) -> Result<AmiParameter> {
    match ssm.get_parameter().name(name).send().await {
        Ok(resp) => {
            let p = resp.parameter();
            Ok(AmiParameter {
                name: name.to_string(),
                value: p.and_then(|p| p.value()).map(str::to_string),
                data_type: p.and_then(|p| p.data_type()).map(str::to_string),
            })
        }
        // Absent is a normal state before the first failover: the step creates it.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(AmiParameter {
                name: name.to_string(),
                value: None,
                data_type: None,
            })
        }
        Err(e) => Err(Error::aws(
            "GetParameter",
            &format!("SSM parameter {name} ({region})"),
            e,
        )),
    }
}

/// IAM: what [`put_parameter`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PUT_PARAMETER: Call = Call {
    adapter: "ssm::put_parameter",
    operations: &["put_parameter"],
    needs: &[Permission::new("ssm:PutParameter", Resource::Parameter)],
};

pub async fn put_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    image_id: &str,
    region: &str,
) -> Result<()> {
    ssm.put_parameter()
        .name(name)
        .value(image_id)
        .r#type(ParameterType::String)
        .data_type(AMI_DATA_TYPE)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| {
            let err = Error::aws("PutParameter", &format!("SSM parameter {name} ({region})"), e);
            Error::new(err.kind, format!("{err}: check the function's ssm:PutParameter permission and the parameter's type"))
        })?;
    Ok(())
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&READ_PARAMETER, &PUT_PARAMETER];
