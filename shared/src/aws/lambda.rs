//! Lambda: a deployed function's configuration (GetFunctionConfiguration: the plan each function carries, which
//! readiness compares and the operator's CLI reads back from detect), and detect invoked with a manual command (so
//! the lock, the preflight and the approval rules stay in detect alone).

use std::collections::BTreeMap;

use aws_smithy_types::Blob;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
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

/// IAM: what [`invoke`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const INVOKE: Call = Call {
    adapter: "lambda::invoke",
    operations: &["invoke"],
    needs: &[Permission::new("lambda:InvokeFunction", Resource::Function)],
};

/// Invokes `function` synchronously with `payload` and returns its JSON answer. A function error (the handler
/// answered `errorType`/`errorMessage`) is returned as an error of the kind it names, with its message.
pub async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &Value,
) -> Result<Value> {
    let resp = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|e| Error::aws("Invoke", function, e))?;
    let body = resp.payload().map(|b| b.as_ref()).unwrap_or_default();
    let answer: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    if resp.function_error().is_some() {
        return Err(function_error(function, &answer));
    }
    Ok(answer)
}

/// A function's error answer as the error its `errorType` names (`pilotlight.InvalidInput`, ...).
pub fn function_error(function: &str, answer: &Value) -> Error {
    let kind = answer["errorType"]
        .as_str()
        .and_then(ErrorKind::from_error_type)
        .unwrap_or(ErrorKind::Aws);
    let message = answer["errorMessage"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| answer.to_string());
    Error::new(kind, format!("{function} answered an error: {message}"))
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&FUNCTION_CONFIG, &INVOKE];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_function_error_keeps_its_kind_and_message() {
        let e = function_error(
            "detect",
            &json!({"errorType": "pilotlight.InvalidInput", "errorMessage": "no such override"}),
        );
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("no such override"), "{e}");
        let e = function_error("detect", &json!("Task timed out"));
        assert_eq!(e.kind, ErrorKind::Aws);
        assert!(e.message.contains("Task timed out"), "{e}");
    }
}
