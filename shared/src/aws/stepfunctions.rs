//! Step Functions: list and start executions, answer a task token, and read the step reports in an execution's
//! history.

use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::HistoryEvent;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::to_chrono;
use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};
use crate::step::StepReport;

/// An execution as ListExecutions shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentExecution {
    pub name: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
}

/// IAM: what [`recent_executions`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const RECENT_EXECUTIONS: Call = Call {
    adapter: "stepfunctions::recent_executions",
    operations: &["list_executions"],
    needs: &[Permission::new(
        "states:ListExecutions",
        Resource::StateMachine,
    )],
};

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

/// IAM: what [`start_execution`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const START_EXECUTION: Call = Call {
    adapter: "stepfunctions::start_execution",
    operations: &["start_execution"],
    needs: &[Permission::new(
        "states:StartExecution",
        Resource::StateMachine,
    )],
};

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

/// IAM: what [`execution_status`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const EXECUTION_STATUS: Call = Call {
    adapter: "stepfunctions::execution_status",
    operations: &["describe_execution"],
    needs: &[Permission::new(
        "states:DescribeExecution",
        Resource::Execution,
    )],
};

/// The status of one execution (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...); None when Step Functions
/// does not know it (`ExecutionDoesNotExist`).
pub async fn execution_status(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Option<String>> {
    match sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
    {
        Ok(resp) => Ok(Some(resp.status().as_str().to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws("DescribeExecution", execution_arn, e)),
    }
}

/// The ARN an execution of `state_machine_arn` named `name` has (known before it is started):
/// `arn:<partition>:states:<region>:<account>:execution:<state machine name>:<name>`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// IAM: what [`answer_task`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const ANSWER_TASK: Call = Call {
    adapter: "stepfunctions::answer_task",
    operations: &["send_task_success", "send_task_failure"],
    needs: &[
        Permission::new("states:SendTaskSuccess", Resource::Any),
        Permission::new("states:SendTaskFailure", Resource::Any),
    ],
};

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
            .error(crate::error::ErrorKind::Rejected.error_type())
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

/// IAM: what [`pending_task_token`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PENDING_TASK_TOKEN: Call = Call {
    adapter: "stepfunctions::pending_task_token",
    operations: &["get_execution_history"],
    needs: &[Permission::new(
        "states:GetExecutionHistory",
        Resource::Execution,
    )],
};

/// The task token of the newest callback task of `execution_arn` whose Lambda payload has `kind` (`approval`), read
/// from its `TaskScheduled` event (the task's resolved parameters: `Payload.detail.task_token`). None when the
/// history holds no such task; an unknown execution is the operator's input problem (InvalidInput).
pub async fn pending_task_token(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    kind: &str,
) -> Result<Option<String>> {
    let mut next_token = None;
    for _ in 0..HISTORY_MAX_PAGES {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .include_execution_data(true)
            .reverse_order(true)
            .max_results(HISTORY_PAGE_SIZE)
            .set_next_token(next_token.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist() || s.is_invalid_arn()) =>
            {
                return Err(Error::invalid_input(format!(
                    "no execution {execution_arn}: name the execution as the approval request does ({})",
                    Error::aws("GetExecutionHistory", execution_arn, e)
                )));
            }
            Err(e) => return Err(Error::aws("GetExecutionHistory", execution_arn, e)),
        };
        if let Some(token) = page
            .events()
            .iter()
            .find_map(|e| scheduled_task_token(e, kind))
        {
            return Ok(Some(token));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The task token in a `TaskScheduled` event of a `lambda:invoke.waitForTaskToken` task whose payload has `kind`.
pub fn scheduled_task_token(event: &HistoryEvent, kind: &str) -> Option<String> {
    let d = event.task_scheduled_event_details()?;
    if !d.resource().ends_with(".waitForTaskToken") {
        return None;
    }
    let params: Value = serde_json::from_str(d.parameters()).ok()?;
    let payload = &params["Payload"];
    (payload["kind"] == kind)
        .then(|| payload["detail"]["task_token"].as_str().map(str::to_string))
        .flatten()
}

/// GetExecutionHistory returns at most 1000 events a page; an execution holds at most 25,000 events (Step Functions
/// quota), so this many pages read any history whole and a runaway one stays bounded.
pub const HISTORY_MAX_PAGES: usize = 25;
/// GetExecutionHistory's largest page.
pub const HISTORY_PAGE_SIZE: i32 = 1000;

/// Every step report the execution's Lambda tasks returned, oldest first, including the ones a loop's `ResultPath`
/// overwrote in the state (each dial step, each prepare/drain/catch-up poll). Results that are not step reports
/// (notify's, an approval answer) are left out.
pub async fn step_reports(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<Vec<StepReport>> {
    step_reports_paged(sfn, execution_arn, HISTORY_PAGE_SIZE, HISTORY_MAX_PAGES).await
}

/// IAM: what [`step_reports_paged`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const STEP_REPORTS_PAGED: Call = Call {
    adapter: "stepfunctions::step_reports_paged",
    operations: &["get_execution_history"],
    needs: &[Permission::new(
        "states:GetExecutionHistory",
        Resource::Execution,
    )],
};

/// [`step_reports`] with the page size and the page bound given; past `max_pages` the reports read so far are
/// returned (and a warning logged).
pub async fn step_reports_paged(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    page_size: i32,
    max_pages: usize,
) -> Result<Vec<StepReport>> {
    let mut reports = Vec::new();
    let mut next_token = None;
    for _ in 0..max_pages {
        let page = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .include_execution_data(true)
            .reverse_order(false)
            .max_results(page_size)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| Error::aws("GetExecutionHistory", execution_arn, e))?;
        reports.extend(page.events().iter().filter_map(step_report_of));
        match page.next_token() {
            Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
            _ => return Ok(reports),
        }
    }
    tracing::warn!(
        execution_arn,
        max_pages,
        "execution history longer than the pages read; the report uses the step results read so far"
    );
    Ok(reports)
}

/// The step report in one history event, if it is a successful Lambda result holding one: `LambdaFunctionSucceeded`
/// (a Task whose Resource is the function's ARN) or `TaskSucceeded` (service integrations; with
/// `arn:aws:states:::lambda:invoke` the function's result is under `Payload`).
pub fn step_report_of(event: &HistoryEvent) -> Option<StepReport> {
    let output = event
        .lambda_function_succeeded_event_details()
        .and_then(|d| d.output())
        .or_else(|| {
            event
                .task_succeeded_event_details()
                .and_then(|d| d.output())
        })?;
    step_report_in_output(output)
}

/// Parses a task output as a step report, directly or under `Payload` (an object, or JSON text when the invoke
/// response was not decoded).
pub fn step_report_in_output(output: &str) -> Option<StepReport> {
    let value: Value = serde_json::from_str(output).ok()?;
    let payload = match value.get("Payload") {
        Some(Value::String(text)) => serde_json::from_str(text).ok()?,
        Some(p) => p.clone(),
        None => value,
    };
    serde_json::from_value(payload).ok()
}

/// A deployed state machine: its definition as Step Functions stores it (DefinitionSubstitutions applied).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployedStateMachine {
    pub arn: String,
    pub status: Option<String>,
    pub definition: String,
}

/// IAM: what [`describe_state_machine`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_STATE_MACHINE: Call = Call {
    adapter: "stepfunctions::describe_state_machine",
    operations: &["describe_state_machine"],
    needs: &[Permission::new(
        "states:DescribeStateMachine",
        Resource::StateMachine,
    )],
};

/// The state machine as deployed; None when Step Functions does not know it (`StateMachineDoesNotExist`).
pub async fn describe_state_machine(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
) -> Result<Option<DeployedStateMachine>> {
    match sfn
        .describe_state_machine()
        .state_machine_arn(state_machine_arn)
        .send()
        .await
    {
        Ok(resp) => Ok(Some(DeployedStateMachine {
            arn: state_machine_arn.to_string(),
            status: resp.status().map(|s| s.as_str().to_string()),
            definition: resp.definition().to_string(),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws("DescribeStateMachine", state_machine_arn, e)),
    }
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[
    &DESCRIBE_STATE_MACHINE,
    &RECENT_EXECUTIONS,
    &START_EXECUTION,
    &EXECUTION_STATUS,
    &ANSWER_TASK,
    &PENDING_TASK_TOKEN,
    &STEP_REPORTS_PAGED,
];

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::{
        HistoryEventType, LambdaFunctionSucceededEventDetails, TaskSucceededEventDetails,
    };
    use aws_smithy_types::DateTime;
    use serde_json::json;

    fn report(step: &str, action: &str) -> Value {
        json!({"step": step, "action": action, "direction": "failover", "dry_run": false,
               "started_at": "2026-11-29T10:00:00Z", "finished_at": "2026-11-29T10:00:01Z", "saw": {},
               "changes": [], "done": true, "message": "ok"})
    }

    fn event(kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(1)
            .timestamp(DateTime::from_secs(0))
            .r#type(kind)
    }

    #[test]
    fn lambda_and_task_results_holding_step_reports_are_read() {
        let direct = event(HistoryEventType::LambdaFunctionSucceeded)
            .lambda_function_succeeded_event_details(
                LambdaFunctionSucceededEventDetails::builder()
                    .output(report("shift-traffic", "start").to_string())
                    .build(),
            )
            .build()
            .unwrap();
        let r = step_report_of(&direct).unwrap();
        assert_eq!(
            (r.step.as_str(), r.action.as_str()),
            ("shift-traffic", "start")
        );

        let invoke = json!({"ExecutedVersion": "$LATEST", "StatusCode": 200,
                            "Payload": report("promote-db", "catchup")});
        let via_invoke = event(HistoryEventType::TaskSucceeded)
            .task_succeeded_event_details(
                TaskSucceededEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .output(invoke.to_string())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(step_report_of(&via_invoke).unwrap().step, "promote-db");

        let text_payload = json!({"Payload": report("update-dns", "status").to_string()});
        assert_eq!(
            step_report_in_output(&text_payload.to_string())
                .unwrap()
                .step,
            "update-dns"
        );
    }

    #[test]
    fn the_approval_token_is_read_from_its_scheduled_task() {
        use aws_sdk_sfn::types::TaskScheduledEventDetails;
        let scheduled = |resource: &str, payload: Value| {
            event(HistoryEventType::TaskScheduled)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("lambda")
                        .resource(resource)
                        .region("ap-northeast-1")
                        .parameters(
                            json!({"FunctionName": "notify", "Payload": payload}).to_string(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let approval = json!({"kind": "approval", "detail": {"task_token": "AQCE-token"}});
        assert_eq!(
            scheduled_task_token(
                &scheduled("invoke.waitForTaskToken", approval.clone()),
                "approval"
            )
            .as_deref(),
            Some("AQCE-token")
        );
        assert_eq!(
            scheduled_task_token(&scheduled("invoke", approval), "approval"),
            None
        );
        let milestone = json!({"kind": "milestone", "detail": {"task_token": "x"}});
        assert_eq!(
            scheduled_task_token(&scheduled("invoke.waitForTaskToken", milestone), "approval"),
            None
        );
    }

    #[test]
    fn other_results_are_left_out() {
        for output in [
            json!({"step": "notify", "kind": "milestone", "message": "published"}).to_string(),
            json!({"approved": true, "reason": "ok"}).to_string(),
            json!({"Payload": {"approved": true}}).to_string(),
            "not json".to_string(),
        ] {
            assert!(step_report_in_output(&output).is_none(), "{output}");
        }
        let entered = event(HistoryEventType::TaskStateEntered).build().unwrap();
        assert!(step_report_of(&entered).is_none());
    }
}
