//! The trigger survives the outage: the real detect binary (under the local Runtime API harness) decides within its
//! deadline and starts exactly one execution while the alarm region's CloudWatch, Global Accelerator's API and Step
//! Functions' ListExecutions accept connections and never answer (tests/support/faultproxy.py in front of each
//! emulator). StartExecution itself still answers: starting the flow is the one call detect cannot do without.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use common::faultproxy::FaultProxy;
use common::runtime_api::{recv, runtime_api, start_with_endpoints};
use serde_json::{Value, json};

const PRIMARY: &str = "ap-northeast-2";
const DR: &str = "ap-northeast-1";
/// The plan's observe deadline in this test: short, so the test is quick; production defaults to 5 s.
const OBSERVE_DEADLINE_MS: u64 = 1500;

fn alarm_event(alarm: &str) -> Value {
    let mut e = common::event("detect-alarm-lambda-action.json");
    e["alarmData"]["alarmName"] = json!(alarm);
    e["alarmArn"] = json!(format!(
        "arn:aws:cloudwatch:{DR}:{}:alarm:{alarm}",
        common::ACCOUNT
    ));
    e["accountId"] = json!(common::ACCOUNT);
    e["region"] = json!(DR);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_starts_one_execution_while_alarms_dials_and_the_execution_list_hang() {
    let cfg = common::sdk_config().await;
    let alarm = common::unique("probe-down");
    let cw = aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&cfg)
            .region(aws_config::Region::new(DR))
            .build(),
    );
    cw.put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("pilotlight/probe")
        .metric_name("Healthy")
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .unwrap();
    let sfn = aws_sdk_sfn::Client::from_conf(
        aws_sdk_sfn::config::Builder::from(&cfg)
            .region(aws_config::Region::new(DR))
            .build(),
    );
    let sm = sfn
        .create_state_machine()
        .name(common::unique("pilotlight-failover"))
        .definition(r#"{"StartAt": "Hold", "States": {"Hold": {"Type": "Pass", "End": true}}}"#)
        .role_arn(format!(
            "arn:aws:iam::{}:role/pilotlight-sfn",
            common::ACCOUNT
        ))
        .send()
        .await
        .unwrap();
    let sm_arn = sm.state_machine_arn().to_string();
    let (primary_eg, dr_eg) = common::seed_endpoint_groups(&cfg, PRIMARY, DR, (100, 0)).await;
    let lock_table = common::create_lock_table(&cfg, DR).await;

    // Every read detect makes before deciding hangs; only StartExecution answers.
    let cloudwatch = FaultProxy::start(&common::ministack_url());
    cloudwatch.set_rules(json!([{"operation": "DescribeAlarms", "fault": "blackhole"}]));
    let accelerator = FaultProxy::start(&common::gapfill_url());
    accelerator.set_rules(json!([{"service": "globalaccelerator", "fault": "blackhole"}]));
    let states = FaultProxy::start(&common::moto_url());
    states.set_rules(json!([{"operation": "ListExecutions", "fault": "blackhole"}]));

    let vars = common::plan_vars(&[
        ("PILOTLIGHT_ALARM_NAMES", alarm.clone()),
        ("PILOTLIGHT_STATE_MACHINE_ARN", sm_arn.clone()),
        ("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN", primary_eg),
        ("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", dr_eg),
        (
            "PILOTLIGHT_OBSERVE_DEADLINE_MS",
            OBSERVE_DEADLINE_MS.to_string(),
        ),
        ("PILOTLIGHT_LOCK_TABLE", lock_table),
    ]);
    let event = serde_json::to_vec(&alarm_event(&alarm)).unwrap();
    // The same alarm delivered twice (Lambda's async retries do that): still one execution.
    let (addr, rx) = runtime_api(vec![event.clone(), event]);
    let began = Instant::now();
    let mut child = start_with_endpoints(
        "detect",
        &addr,
        &vars,
        &[
            ("AWS_ENDPOINT_URL", common::moto_url()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch.url().to_string()),
            (
                "AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR",
                accelerator.url().to_string(),
            ),
            ("AWS_ENDPOINT_URL_SFN", states.url().to_string()),
            // The lock table lives in moto beside the state machine (tests/common::create_lock_table).
            ("AWS_ENDPOINT_URL_DYNAMODB", common::moto_url()),
        ],
    );
    let first = recv(&rx);
    let first_took = began.elapsed();
    let second = recv(&rx);
    child.kill().unwrap();
    child.wait().unwrap();

    for posted in [&first, &second] {
        assert!(
            posted.path.ends_with("/response"),
            "detect must answer, not fail: {posted:?}"
        );
    }
    let d: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(d["outcome"], "started", "{d:#}");
    // Cold start + the observe deadline + StartExecution: well inside the 30 s function timeout.
    assert!(
        first_took < Duration::from_millis(OBSERVE_DEADLINE_MS) + Duration::from_secs(6),
        "detect took {first_took:?}"
    );
    let observed = &d["observed"];
    assert_eq!(
        observed["unknown_alarm_regions"][0]["region"], DR,
        "{observed:#}"
    );
    assert!(
        observed["unknown_alarm_regions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no answer within 1500 ms"),
        "{observed:#}"
    );
    assert!(
        observed["executions_unknown"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{observed:#}"
    );
    assert!(
        observed["active"].to_string().contains("no answer"),
        "{observed:#}"
    );
    assert!(
        d["reason"].as_str().unwrap().contains("executions unknown"),
        "{d:#}"
    );

    // Exactly one execution, read from the emulator directly (not through the hanging proxy).
    let executions = sfn
        .list_executions()
        .state_machine_arn(&sm_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.executions().len(),
        1,
        "{:?}",
        executions.executions()
    );
    let d2: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(d2["execution_name"], d["execution_name"], "{d2:#}");

    // The proxies saw the reads detect gave up on, so the test really ran against hanging endpoints.
    let held = |p: &FaultProxy, op: &str| {
        p.requests()
            .iter()
            .any(|r| r["operation"] == op && r["fault"] == "blackhole")
    };
    assert!(held(&cloudwatch, "DescribeAlarms"));
    assert!(held(&states, "ListExecutions"));
    assert!(
        accelerator
            .requests()
            .iter()
            .any(|r| r["fault"] == "blackhole")
    );
    assert!(
        states
            .requests()
            .iter()
            .any(|r| r["operation"] == "StartExecution")
    );
}
