//! The fault-injecting proxy (tests/support/faultproxy.py) seen through the real Rust SDK: its injected faults must
//! be the AWS faults the SDK knows — a throttle is a throttling error (its code, and the standard retry strategy
//! retries it), 500/503 are transient server errors, a black-holed call ends in the SDK's operation timeout, a
//! dropped (closed or reset) connection in a dispatch failure. Every protocol the product speaks is covered: awsQuery (RDS, Auto
//! Scaling, ELBv2, SNS), awsJson (Step Functions, SSM, Global Accelerator), restXml (Route 53), restJson (Backup)
//! and rpc-v2-cbor (CloudWatch).

mod common;

use std::time::{Duration, Instant};

use aws_config::retry::{ErrorKind, RetryConfig};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use common::faultproxy::FaultProxy;
use serde_json::{Value, json};

/// A client of `$krate` whose every call goes to `$url` (set on the service config: it must win over the
/// AWS_ENDPOINT_URL_<SERVICE> variables of the test environment).
macro_rules! client {
    ($krate:ident, $cfg:expr, $url:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($cfg)
                .endpoint_url($url)
                .build(),
        )
    };
}

async fn config(retry: RetryConfig, timeout: TimeoutConfig) -> SdkConfig {
    common::moto_url(); // the how-to message when the emulators were not started
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .retry_config(retry)
        .timeout_config(timeout)
        .load()
        .await
}

fn no_retries() -> RetryConfig {
    RetryConfig::disabled()
}

fn operation_timeout(secs: u64) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(secs))
        .build()
}

fn proxy() -> FaultProxy {
    let gapfill = common::gapfill_url();
    FaultProxy::start_routed(
        &common::moto_url(),
        &[("globalaccelerator", &gapfill), ("backup", &gapfill)],
    )
}

/// The error code of a failed call (None when it succeeded or the error carries none).
fn code<T, E: ProvideErrorMetadata, R>(r: Result<T, SdkError<E, R>>) -> Option<String> {
    r.err().and_then(|e| e.code().map(str::to_string))
}

/// One call per service the product uses, through the proxy: (operation, error code of the answer).
async fn call_each_service(cfg: &SdkConfig, url: &str) -> Vec<(&'static str, Option<String>)> {
    let fake =
        |svc: &str, rest: &str| format!("arn:aws:{svc}:us-east-1:{}:{rest}", common::ACCOUNT);
    vec![
        (
            "DescribeDBInstances",
            code(client!(aws_sdk_rds, cfg, url).describe_db_instances().send().await),
        ),
        (
            "DescribeAutoScalingGroups",
            code(
                client!(aws_sdk_autoscaling, cfg, url)
                    .describe_auto_scaling_groups()
                    .send()
                    .await,
            ),
        ),
        (
            "DescribeTargetHealth",
            code(
                client!(aws_sdk_elasticloadbalancingv2, cfg, url)
                    .describe_target_health()
                    .target_group_arn(fake("elasticloadbalancing", "targetgroup/fp/0123456789abcdef"))
                    .send()
                    .await,
            ),
        ),
        (
            "GetTopicAttributes",
            code(
                client!(aws_sdk_sns, cfg, url)
                    .get_topic_attributes()
                    .topic_arn(fake("sns", "fp-none"))
                    .send()
                    .await,
            ),
        ),
        (
            "ListExecutions",
            code(
                client!(aws_sdk_sfn, cfg, url)
                    .list_executions()
                    .state_machine_arn(fake("states", "stateMachine:fp-none"))
                    .send()
                    .await,
            ),
        ),
        (
            "GetParameter",
            code(
                client!(aws_sdk_ssm, cfg, url)
                    .get_parameter()
                    .name("/fp/none")
                    .send()
                    .await,
            ),
        ),
        (
            "DescribeEndpointGroup",
            code(
                client!(aws_sdk_globalaccelerator, cfg, url)
                    .describe_endpoint_group()
                    .endpoint_group_arn(
                        "arn:aws:globalaccelerator::123456789012:accelerator/x/listener/y/endpoint-group/z",
                    )
                    .send()
                    .await,
            ),
        ),
        (
            "GetChange",
            code(
                client!(aws_sdk_route53, cfg, url)
                    .get_change()
                    .id("C0000000000FP")
                    .send()
                    .await,
            ),
        ),
        (
            "ListRecoveryPointsByBackupVault",
            code(
                client!(aws_sdk_backup, cfg, url)
                    .list_recovery_points_by_backup_vault()
                    .backup_vault_name("fp-none")
                    .send()
                    .await,
            ),
        ),
        (
            "DescribeAlarms",
            code(client!(aws_sdk_cloudwatch, cfg, url).describe_alarms().send().await),
        ),
    ]
}

#[tokio::test]
async fn throttle_is_the_protocols_throttling_error_for_every_service() {
    let proxy = proxy();
    proxy.set_rules(json!([{ "fault": "throttle" }]));
    let cfg = config(no_retries(), operation_timeout(10)).await;
    let got = call_each_service(&cfg, proxy.url()).await;
    let query = "Throttling"; // awsQuery, restXml, and the query-compatible CloudWatch (x-amzn-query-error)
    let json = "ThrottlingException";
    let want = [
        ("DescribeDBInstances", query),
        ("DescribeAutoScalingGroups", query),
        ("DescribeTargetHealth", query),
        ("GetTopicAttributes", query),
        ("ListExecutions", json),
        ("GetParameter", json),
        ("DescribeEndpointGroup", json),
        ("GetChange", query),
        ("ListRecoveryPointsByBackupVault", json),
        ("DescribeAlarms", query),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(op, c)| (*op, Some(c.to_string())))
        .collect();
    assert_eq!(got, want);

    // the proxy identified each operation, its service and region, and logged the fault
    let log = proxy.requests();
    let ops: Vec<_> = want.iter().map(|(op, _)| op.to_string()).collect();
    assert_eq!(proxy.operations(), ops);
    let services: Vec<_> = log.iter().map(|r| r["service"].as_str().unwrap()).collect();
    assert_eq!(
        services,
        [
            "rds",
            "autoscaling",
            "elasticloadbalancing",
            "sns",
            "states",
            "ssm",
            "globalaccelerator",
            "route53",
            "backup",
            "monitoring"
        ]
    );
    assert!(log.iter().all(|r| r["fault"] == "throttle"
        && r["status"] == 400
        && r["mutating"] == false
        && (r["region"] == "us-east-1" || r["service"] == "route53")));
    assert_eq!(
        log[9]["protocol"], "cbor",
        "the Rust SDK speaks rpc-v2-cbor to CloudWatch"
    );
}

#[tokio::test]
async fn the_standard_retry_strategy_retries_an_injected_throttle_everywhere() {
    let proxy = proxy();
    // one throttle per operation, then forwarded (whatever the emulator then answers)
    let cfg = config(no_retries(), operation_timeout(10)).await;
    let ops: Vec<&str> = call_each_service(&cfg, proxy.url())
        .await
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    let rules: Vec<Value> = ops
        .iter()
        .map(|op| json!({ "operation": op, "fault": "throttle", "times": 1 }))
        .collect();
    proxy.clear();
    proxy.set_rules(Value::Array(rules));
    let retry = RetryConfig::standard()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(10));
    let cfg = config(retry, operation_timeout(10)).await;
    call_each_service(&cfg, proxy.url()).await;
    let log = proxy.requests();
    for op in ops {
        let faults: Vec<_> = log
            .iter()
            .filter(|r| r["operation"] == op)
            .map(|r| r["fault"].clone())
            .collect();
        assert_eq!(faults, [json!("throttle"), Value::Null], "{op}: {log:#?}");
    }

    // a 400 with a non-throttling code is not retried: the retry above was the throttling classification
    proxy.clear();
    proxy.set_rules(json!([{ "fault": "throttle", "code": "InvalidParameterValue", "times": 1 }]));
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    let got = code(rds.describe_db_instances().send().await);
    assert_eq!(got.as_deref(), Some("InvalidParameterValue"));
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_transient_and_retried_by_the_default_config() {
    let proxy = proxy();
    let cfg = config(no_retries(), operation_timeout(10)).await;
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    for (fault, status, want) in [
        ("error500", 500, "InternalFailure"),
        ("error503", 503, "ServiceUnavailable"),
    ] {
        proxy.set_rules(json!([{ "service": "rds", "fault": fault }]));
        let err = rds.describe_db_instances().send().await.unwrap_err();
        assert_eq!(err.code(), Some(want), "{fault}: {err:?}");
        assert_eq!(
            err.raw_response().map(|r| r.status().as_u16()),
            Some(status)
        );
    }

    // the default retry config (standard, 3 attempts) rides out one 503
    proxy.clear();
    proxy.set_rules(
        json!([{ "operation": "DescribeDBInstances", "fault": "error503", "times": 1 }]),
    );
    let cfg = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .load()
        .await;
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    rds.describe_db_instances().send().await.unwrap();
    let faults: Vec<_> = proxy
        .requests()
        .iter()
        .map(|r| r["fault"].clone())
        .collect();
    assert_eq!(faults, [json!("error503"), Value::Null]);
}

#[tokio::test]
async fn a_blackholed_call_ends_in_the_operation_timeout() {
    let proxy = proxy();
    proxy.set_rules(json!([{ "service": "rds", "region": "us-east-1", "fault": "blackhole" }]));
    let cfg = config(no_retries(), operation_timeout(1)).await;
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    let started = Instant::now();
    let err = rds.describe_db_instances().send().await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // other calls go through meanwhile; the proxy notices the client gave up
    let ssm = client!(aws_sdk_ssm, &cfg, proxy.url());
    let _ = ssm.get_parameter().name("/fp/none").send().await;
    let mut status = Value::Null;
    for _ in 0..30 {
        status = proxy.requests()[0]["status"].clone();
        if status != Value::Null {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "client-gave-up");
    assert_eq!(proxy.operations(), ["DescribeDBInstances", "GetParameter"]);
}

#[tokio::test]
async fn a_dropped_connection_is_a_dispatch_failure() {
    let proxy = proxy();
    let cfg = config(no_retries(), operation_timeout(10)).await;
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    for fault in ["close", "reset"] {
        proxy.set_rules(json!([{ "operation": "DescribeDBInstances", "fault": fault }]));
        let err = rds.describe_db_instances().send().await.unwrap_err();
        let SdkError::DispatchFailure(failure) = &err else {
            panic!("{fault}: expected a dispatch failure, got {err:?}");
        };
        // EOF before an answer: hyper's IncompleteMessage, a transient error; RST: an I/O error (connection reset)
        match fault {
            "close" => assert_eq!(
                failure.as_other(),
                Some(ErrorKind::TransientError),
                "{failure:?}"
            ),
            _ => assert!(failure.is_io(), "{failure:?}"),
        }
    }
    let statuses: Vec<_> = proxy
        .requests()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, ["closed", "reset"]);
}

#[tokio::test]
async fn a_delay_slows_the_answer_and_keeps_it() {
    let proxy = proxy();
    proxy.set_rules(
        json!([{ "operation": "DescribeDBInstances", "fault": "delay", "delay_ms": 600 }]),
    );
    let cfg = config(no_retries(), operation_timeout(10)).await;
    let rds = client!(aws_sdk_rds, &cfg, proxy.url());
    let started = Instant::now();
    rds.describe_db_instances().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(proxy.requests()[0]["status"], 200);
}
