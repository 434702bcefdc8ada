//! The operator's side (the `pilotlight` CLI, `src/cli/`): what an operator asks on the worst day, over the same
//! code the functions run. [`status`] (which region is active, how each part stands), [`dry_run`] (what a
//! failover or failback would change right now), [`progress`] (an execution followed live) and [`report_of`] (the
//! report of any execution, built by notify's own `report::build`). Starting, approving and rejecting go through
//! detect (`aws::lambda::invoke`), so the flow lock, the preflight and the approval rules stay in one place.

pub mod dry_run;
pub mod progress;
pub mod status;

use serde_json::Value;

use crate::aws::stepfunctions::{
    ExecutionEvent, ExecutionView, execution_events, execution_view, step_report_in_output,
};
use crate::aws::{autoscaling, cloudwatch, globalaccelerator, lambda, rds, route53, stepfunctions};
use crate::error::Result;
use crate::permissions::Use;
use crate::step::StepReport;
use crate::steps::notify::report::{self, Report, StepHistory};

/// IAM: the calls the operator's side makes itself, here and in the CLI (`src/`); `plan` also makes the steps'
/// read-only calls (their preflight and dry-run reads, `crate::permissions::FUNCTIONS`), and `status` detect's
/// observation and its lock read (`steps::detect::PERMISSIONS`). The test below holds the list to exactly the
/// adapter calls the code here and in `src/` makes.
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &lambda::FUNCTION_CONFIG,
        "the plan, read back from the deployed detect function",
    ),
    Use::always(
        &lambda::INVOKE,
        "failover / failback / approve / reject: detect's manual commands",
    ),
    Use::always(
        &stepfunctions::EXECUTION_VIEW,
        "follow and report: the execution's status",
    ),
    Use::always(
        &stepfunctions::EXECUTION_EVENTS,
        "follow and report: the execution's history",
    ),
    Use::always(
        &stepfunctions::RECENT_EXECUTIONS,
        "the running or latest execution to follow, report or answer",
    ),
    Use::always(
        &stepfunctions::PENDING_TASK_TOKEN,
        "approve / reject without a name: which running execution asked",
    ),
    Use::always(&rds::DESCRIBE_DB_INSTANCE, "status: each side's DB role"),
    Use::always(
        &rds::DESCRIBE_GLOBAL_CLUSTER,
        "status (Aurora): the global cluster's writer",
    ),
    Use::always(
        &cloudwatch::REPLICA_LAG,
        "status: the replica's lag and its age",
    ),
    Use::always(
        &cloudwatch::GLOBAL_DB_LAG,
        "status (Aurora): the secondary's lag",
    ),
    Use::always(
        &autoscaling::DESCRIBE_GROUP,
        "status: capacities and healthy counts",
    ),
    Use::always(
        &globalaccelerator::DESCRIBE_ENDPOINT_GROUP,
        "status: dials and endpoint health",
    ),
    Use::always(
        &route53::GET_HEALTH_CHECK,
        "status: the health checks' flags",
    ),
    Use::always(&route53::CNAME_RECORD_SETS, "status: the record's answer"),
];

/// The execution state a report is built from: the newest state input or output in the history that is the flow's
/// state (it carries the trigger), else the execution input. After the final report task the state is notify's
/// answer, so the report task's input is the one taken for a finished run.
pub fn state_in_history(events: &[ExecutionEvent], input: Option<&str>) -> Value {
    let flow_state = |text: &str| {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| v.get("trigger").is_some() && v.get("direction").is_some())
    };
    events
        .iter()
        .rev()
        .filter(|e| e.state.is_some())
        .find_map(|e| e.data.as_deref().and_then(flow_state))
        .or_else(|| input.and_then(flow_state))
        .unwrap_or(Value::Null)
}

/// Every step report among the history's task results, oldest first (what `stepfunctions::step_reports` reads).
pub fn reports_in_history(events: &[ExecutionEvent]) -> Vec<StepReport> {
    events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "TaskSucceeded" | "LambdaFunctionSucceeded"))
        .filter_map(|e| e.data.as_deref().and_then(step_report_in_output))
        .collect()
}

/// The report of an execution (running or finished), as notify builds it: timeline, RTO, RPO and its basis, every
/// change, warnings.
pub async fn report_of(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<(ExecutionView, Report)> {
    let execution = execution_view(sfn, execution_arn).await?;
    let events = execution_events(sfn, execution_arn).await?;
    let state = state_in_history(&events, execution.input.as_deref());
    let history = StepHistory::Read(reports_in_history(&events));
    let report = report::build(execution_arn, &state, &history);
    Ok((execution, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions;
    use serde_json::json;

    fn ev(kind: &str, state: Option<&str>, data: Value) -> ExecutionEvent {
        ExecutionEvent {
            id: 1,
            at: chrono::Utc::now(),
            kind: kind.to_string(),
            state: state.map(str::to_string),
            resource: None,
            data: Some(data.to_string()),
            error: None,
            cause: None,
        }
    }

    #[test]
    fn the_operators_permissions_are_the_calls_its_code_makes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut src = String::new();
        for dir in [root.join("src/operator"), root.join("../src")] {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect();
            files.sort();
            for f in files {
                src.push_str(permissions::source::without_tests(
                    &std::fs::read_to_string(f).unwrap(),
                ));
            }
        }
        src.push_str(permissions::source::without_tests(include_str!(
            "operator.rs"
        )));
        let mut declared: Vec<&str> = PERMISSIONS.iter().map(|u| u.call.adapter).collect();
        declared.sort();
        declared.dedup();
        let mut made = permissions::calls_in(&src);
        made.sort();
        assert_eq!(
            made, declared,
            "operator::PERMISSIONS vs the calls in its code and the CLI's"
        );
    }

    #[test]
    fn the_report_state_is_the_newest_flow_state_not_notifys_answer() {
        let flow =
            json!({"direction": "failover", "trigger": {"source": "manual"}, "steps": {"a": 1}});
        let later =
            json!({"direction": "failover", "trigger": {"source": "manual"}, "steps": {"a": 2}});
        let notified = json!({"step": "notify", "kind": "report", "direction": "failover"});
        let events = [
            ev("TaskStateEntered", Some("Failover promote-db start"), flow),
            ev("TaskStateEntered", Some("Report"), later.clone()),
            ev("TaskSucceeded", None, notified.clone()),
            ev("TaskStateExited", Some("Report"), notified),
        ];
        assert_eq!(state_in_history(&events, None), later);
        let input = json!({"direction": "failback", "trigger": {}}).to_string();
        assert_eq!(state_in_history(&[], Some(&input))["direction"], "failback");
        assert_eq!(state_in_history(&[], Some("{}")), Value::Null);
    }
}
