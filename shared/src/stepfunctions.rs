//! Step Functions: what detect needs to start exactly one execution and to see the ones already there.

use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_smithy_runtime_api::client::result::SdkError;

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
    out.sort_by_key(|b| std::cmp::Reverse(b.started_at));
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
