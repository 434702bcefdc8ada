//! Step Functions: what detect needs to start exactly one execution and to see the ones already there.

use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloudwatch::to_chrono;
use crate::decision::RecentExecution;
use crate::error::{Error, Result};

/// The most recent executions (running and finished) of the state machine, newest first.
pub async fn recent_executions(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
) -> Result<Vec<RecentExecution>> {
    let resp = sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .max_results(50)
        .send()
        .await
        .map_err(|e| Error::aws("ListExecutions", state_machine_arn, e))?;
    let mut out: Vec<RecentExecution> = resp
        .executions()
        .iter()
        .map(|e| RecentExecution {
            name: e.name().to_string(),
            status: e.status().as_str().to_string(),
            started_at: to_chrono(Some(e.start_date())).unwrap_or_default(),
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.started_at));
    Ok(out)
}

pub enum Started {
    New {
        arn: String,
    },
    /// Same name already used: a duplicate delivery of the same trigger (or a finished run of it).
    AlreadyExists,
}

pub async fn start_execution(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<Started> {
    match sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input)
        .send()
        .await
    {
        Ok(resp) => Ok(Started::New {
            arn: resp.execution_arn().to_string(),
        }),
        Err(SdkError::ServiceError(ctx))
            if matches!(ctx.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
        {
            Ok(Started::AlreadyExists)
        }
        Err(e) => Err(Error::aws("StartExecution", state_machine_arn, e)),
    }
}

/// Answers an approval request. An unknown, expired or already-answered token is the operator's input problem:
/// InvalidInput with what to check, and nothing else happens.
pub async fn answer_task(
    sfn: &aws_sdk_sfn::Client,
    token: &str,
    approved: bool,
    output: &str,
    reason: &str,
) -> Result<()> {
    if approved {
        let sent = sfn
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await;
        sent.map(|_| ())
            .map_err(|e| token_error("SendTaskSuccess", e))
    } else {
        let sent = sfn
            .send_task_failure()
            .task_token(token)
            .error("pilotlight.Rejected")
            .cause(reason)
            .send()
            .await;
        sent.map(|_| ())
            .map_err(|e| token_error("SendTaskFailure", e))
    }
}

fn token_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err
        .as_service_error()
        .and_then(|s| s.code())
        .unwrap_or_default()
        .to_string();
    let e = Error::aws(operation, "approval token", err);
    if matches!(
        code.as_str(),
        "InvalidToken" | "TaskDoesNotExist" | "TaskTimedOut"
    ) {
        Error::invalid_input(format!(
            "approval token not accepted ({code}): the execution may have timed out, been answered already or \
             stopped; check it in the Step Functions console. Detail: {e}"
        ))
    } else {
        e
    }
}
