//! The execution report from the execution history, against ministack's Step Functions running a real state
//! machine whose Lambda tasks return step reports. (moto's execution history has no Lambda results, so ministack.)
//!
//! The functions are one stand-in `provided.al2023` function (a Python Runtime API loop, deployed into ministack's
//! Lambda like the drill deploys the real binaries): it answers each call with the step report its input asks
//! for, and a dial step moves the DR dial 0 -> 25 -> 50 -> 100, so a loop shaped like the state machine's
//! G_ShiftTraffic overwrites `$.steps.shift_traffic` three times, as in a real graceful failover.
//! ministack records a direct function-ARN Task's result as `TaskSucceeded` (AWS: `LambdaFunctionSucceeded`);
//! `step_reports` reads both, and the `lambda:invoke` integration's `Payload` (the UpdateDns task here).

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use pilotlight::ErrorKind;
use pilotlight::aws::stepfunctions::{step_reports, step_reports_paged};
use pilotlight::runtime::invoke;
use pilotlight::step::{Action, StepReport};
use pilotlight::steps::notify::handle;
use pilotlight::steps::notify::report::{self, StepHistory};
use serde_json::{Value, json};

/// Where the function and the state machine live (any region: notify reads the history in the execution's own).
const REGION: &str = "us-east-1";

const FAKE_STEP: &str = include_str!("common/step_stand_in.py");

async fn sfn() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&common::sdk_config_at(&common::ministack_url()).await)
}

struct Run {
    sfn: aws_sdk_sfn::Client,
    execution_arn: String,
    /// The execution output: the state as the Report state would receive it.
    state: Value,
}

/// Deploys the stand-in function and a state machine with the graceful dial loop (notify, shift-traffic `start`
/// until done with ResultPath `$.steps.shift_traffic`, then update-dns through `lambda:invoke`), runs it to the
/// end and returns the execution.
async fn run_dial_loop() -> Run {
    let name = common::unique("report-steps");
    let function = lambda::create_function(REGION, &name, FAKE_STEP);
    let definition = json!({
        "StartAt": "NotifyStarted",
        "States": {
            "NotifyStarted": {"Type": "Task", "Resource": function, "Parameters": {"kind": "milestone"},
                              "ResultPath": null, "Next": "InitDial"},
            "InitDial": {"Type": "Pass", "Result": 0, "ResultPath": "$.dial", "Next": "ShiftTraffic"},
            "ShiftTraffic": {"Type": "Task", "Resource": function,
                             "Parameters": {"step": "shift-traffic", "action": "start", "dial.$": "$.dial"},
                             "ResultPath": "$.steps.shift_traffic", "Next": "NextDial"},
            "NextDial": {"Type": "Pass", "InputPath": "$.steps.shift_traffic.saw.dial", "ResultPath": "$.dial",
                         "Next": "TrafficShifted"},
            "TrafficShifted": {"Type": "Choice", "Default": "ShiftTraffic", "Choices": [
                {"Variable": "$.steps.shift_traffic.done", "BooleanEquals": true, "Next": "UpdateDns"}]},
            "UpdateDns": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                          "Parameters": {"FunctionName": function, "Payload": {"step": "update-dns", "action": "start"}},
                          "ResultPath": "$.dns_invoke", "End": true}
        }
    });
    let sfn = sfn().await;
    let machine = sfn
        .create_state_machine()
        .name(&name)
        .definition(definition.to_string())
        .role_arn(format!("arn:aws:iam::{}:role/{name}", common::ACCOUNT))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let triggered =
        (Utc::now() - chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let input = json!({"direction": "failover", "mode": "graceful", "dry_run": false, "overrides": {},
                       "trigger": {"source": "manual", "alarms": [], "state_change_time": triggered, "reason": "test"}});
    let execution_arn = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .input(input.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .unwrap();
        match d.status().as_str() {
            "RUNNING" => {
                assert!(
                    Instant::now() < deadline,
                    "{execution_arn} still running after 90 s"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            "SUCCEEDED" => {
                let state = serde_json::from_str(d.output().unwrap()).unwrap();
                return Run {
                    sfn,
                    execution_arn,
                    state,
                };
            }
            other => panic!("{execution_arn} {other}: {:?} {:?}", d.error(), d.cause()),
        }
    }
}

fn dial_changes(r: &report::Report) -> Vec<(i64, i64)> {
    r.changes
        .iter()
        .filter(|c| c.resource == "eg-dr")
        .map(|c| (c.from.as_i64().unwrap(), c.to.as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_history_gives_the_report_every_dial_step_of_the_loop() {
    let run = run_dial_loop().await;

    // What the state alone holds: the loop's last call.
    let alone = report::build(&run.execution_arn, &run.state, &StepHistory::NotRead);
    assert_eq!(dial_changes(&alone), [(50, 100)]);

    let reports = step_reports(&run.sfn, &run.execution_arn).await.unwrap();
    let calls: Vec<(&str, Action)> = reports
        .iter()
        .map(|r| (r.step.as_str(), r.action))
        .collect();
    assert_eq!(
        calls,
        [
            ("shift-traffic", Action::Start),
            ("shift-traffic", Action::Start),
            ("shift-traffic", Action::Start),
            ("update-dns", Action::Start), // lambda:invoke: the report is under Payload
        ],
        "notify's result and the Pass/Choice states are not step reports"
    );
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].started_at <= w[1].started_at),
        "oldest first"
    );

    let r = report::build(
        &run.execution_arn,
        &run.state,
        &StepHistory::Read(reports.clone()),
    );
    assert_eq!(dial_changes(&r), [(0, 25), (25, 50), (50, 100)]);
    let shift = r
        .timeline
        .iter()
        .find(|t| t.step == "shift-traffic")
        .unwrap();
    assert_eq!(
        shift.started_at, reports[0].started_at,
        "the loop's first call"
    );
    assert_eq!(shift.finished_at, reports[2].finished_at);
    assert_eq!((shift.calls, shift.done), (3, true));
    let names: Vec<&str> = r.timeline.iter().map(|t| t.step.as_str()).collect();
    assert_eq!(names, ["shift-traffic", "update-dns"]);
    let trigger = chrono::DateTime::parse_from_rfc3339(
        run.state["trigger"]["state_change_time"].as_str().unwrap(),
    )
    .unwrap();
    let rto =
        (reports[2].finished_at - trigger.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0;
    assert_eq!(r.rto_seconds, Some(rto));
    assert_eq!(r.rpo_seconds, Some(0.0), "graceful");
    assert_eq!(r.history, "execution history: 4 step results");

    // Small pages give the same reports; the page bound stops early with what was read.
    let paged = step_reports_paged(&run.sfn, &run.execution_arn, 3, 1000)
        .await
        .unwrap();
    assert_eq!(paged, reports);
    let bounded = step_reports_paged(&run.sfn, &run.execution_arn, 3, 2)
        .await
        .unwrap();
    assert!(bounded.len() < reports.len(), "{}", bounded.len());
    assert_eq!(bounded[..], reports[..bounded.len()]);
}

#[tokio::test]
async fn an_unknown_execution_is_an_error_naming_it() {
    let sfn = sfn().await;
    let arn = format!(
        "arn:aws:states:{REGION}:{}:execution:nothing-here:{}",
        common::ACCOUNT,
        common::unique("x")
    );
    let e = step_reports(&sfn, &arn).await.unwrap_err();
    assert!(e.message.contains(&arn), "{e}");
    assert!(e.message.contains("ExecutionDoesNotExist"), "{e}");
    assert_ne!(e.kind, ErrorKind::Transient, "not retried: {e}");
    assert!(e.message.contains("GetExecutionHistory"), "{e}");
}

/// A Context whose SNS is moto (a fresh topic) and whose Step Functions client is ministack's, in the plan's DR
/// region: notify must read the history in the execution's own region.
async fn notify_context() -> pilotlight::runtime::Context {
    let cfg = common::sdk_config().await;
    let (_, topic) = common::seed_topic(&cfg, "ap-northeast-1", &common::unique("operators")).await;
    let mut ctx = common::context(&common::plan_vars(&[("PILOTLIGHT_SNS_TOPIC_ARN", topic)])).await;
    let ministack = common::sdk_config_at(&common::ministack_url()).await;
    ctx.aws.sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&ministack)
            .region(aws_config::Region::new(ctx.plan.dr.region.clone()))
            .build(),
    )
    .into();
    ctx
}

#[tokio::test]
async fn notify_builds_reports_from_the_history_and_without_it_still_publishes() {
    let run = run_dial_loop().await;
    let ctx = notify_context().await;
    assert_ne!(
        ctx.plan.dr.region, REGION,
        "the client starts in another region"
    );

    // kind: report, as the Report state sends it.
    let event = json!({"kind": "report", "milestone": "report", "execution": run.execution_arn,
                       "direction": "failover", "dry_run": false, "detail": run.state});
    let out = invoke(handle, &ctx, event).await.unwrap();
    let report = &out["report"];
    assert_eq!(report["history"], "execution history: 4 step results");
    let dials: Vec<(i64, i64)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].as_i64().unwrap(), c["to"].as_i64().unwrap()))
        .collect();
    assert_eq!(dials, [(0, 25), (25, 50), (50, 100)]);
    assert_eq!(out["body"], *report, "what was published");

    // kind: failure carries the same report.
    let mut state = run.state.clone();
    state["error"] = json!({"Error": "pilotlight.PollLimitExceeded", "Cause": "dns not in sync"});
    let event = json!({"kind": "failure", "milestone": "failed", "execution": run.execution_arn,
                       "direction": "failover", "dry_run": false, "detail": state});
    let out = invoke(handle, &ctx, event).await.unwrap();
    assert_eq!(
        out["body"]["report"]["changes"].as_array().unwrap().len(),
        3
    );
    assert_eq!(out["body"]["report"]["outcome"], "failed");

    // An execution the history API does not know: the notice still goes out, built from the state alone.
    let event = common::event("notify-report.json");
    let out = invoke(handle, &ctx, event.clone()).await.unwrap();
    assert!(!out["message_id"].as_str().unwrap().is_empty());
    let report = &out["report"];
    let history = report["history"].as_str().unwrap();
    assert!(
        history.starts_with("execution history unavailable (")
            && history.contains("GetExecutionHistory"),
        "{history}"
    );
    assert_eq!(
        report["changes"].as_array().unwrap().len(),
        1,
        "the state's last dial step"
    );
    assert_eq!(report["rto_seconds"], 243.0);
    // A steps' result carried in the state must parse as it is sent.
    let last: StepReport =
        serde_json::from_value(event["detail"]["steps"]["shift_traffic"].clone()).unwrap();
    assert!(last.done);
}
