//! Lambda: a deployed function's configuration (GetFunctionConfiguration), to see the plan each function carries.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

/// A function as GetFunctionConfiguration shows it: its ARN and its environment variables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionConfig {
    pub name: String,
    pub arn: String,
    pub environment: BTreeMap<String, String>,
}

/// IAM: what [`function_config`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const FUNCTION_CONFIG: Call = Call {
    adapter: "lambda::function_config",
    operations: &["get_function_configuration"],
    needs: &[Permission::new(
        "lambda:GetFunctionConfiguration",
        Resource::Function,
    )],
};

/// The function's configuration; None when Lambda does not know it (`ResourceNotFoundException`).
pub async fn function_config(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
) -> Result<Option<FunctionConfig>> {
    match lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
    {
        Ok(resp) => Ok(Some(FunctionConfig {
            name: resp.function_name().unwrap_or(function).to_string(),
            arn: resp.function_arn().unwrap_or_default().to_string(),
            environment: resp
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws(
            "GetFunctionConfiguration",
            &format!("function {function}"),
            e,
        )),
    }
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&FUNCTION_CONFIG];
