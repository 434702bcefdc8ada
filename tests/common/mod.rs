//! Test support shared by the integration tests: they talk over HTTP, through the real SDK, to the AWS-API
//! emulators that `scripts/test.sh` starts (moto for most services, tests/support/gapfill.py for Global
//! Accelerator and Backup recovery points). Every test names its resources uniquely, so tests run in parallel
//! against one emulator without seeing each other.
#![allow(dead_code)] // each test binary uses a different part of this module

#[path = "../support/emulator_http.rs"]
pub mod emulator_http;
pub mod faultproxy;
pub mod rds;
pub mod runtime_api;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use pilotlight::aws::clients::AwsClients;
use pilotlight::plan::{FailoverPlan, parse_env_file};
use pilotlight::runtime::Context;

pub const ACCOUNT: &str = "123456789012"; // moto's account

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the integration tests need the emulators. Run scripts/test.sh, or \
             `scripts/emulators.sh start && eval \"$(scripts/emulators.sh env)\"` before cargo test"
        )
    })
}

pub fn moto_url() -> String {
    required_env("PILOTLIGHT_MOTO_URL")
}

pub fn gapfill_url() -> String {
    required_env("PILOTLIGHT_GAPFILL_URL")
}

/// The SDK config the product itself would load: endpoints from AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>.
pub async fn sdk_config() -> SdkConfig {
    moto_url(); // fail early with the how-to message when the emulators were not started
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .load()
        .await
}

/// A config whose every service goes to one endpoint (e.g. ministack for Aurora global clusters).
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{:x}{:x}{}",
        std::process::id() & 0xffff,
        nanos & 0xfffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The reference plan (plans/reference.env) with `overrides` applied.
pub fn plan_vars(overrides: &[(&str, String)]) -> HashMap<String, String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/reference.env"))
        .unwrap();
    let mut vars = parse_env_file(&text).unwrap();
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.clone());
    }
    vars
}

pub async fn context(vars: &HashMap<String, String>) -> Context {
    let plan = FailoverPlan::from_map(vars).expect("test plan must be valid");
    let aws = AwsClients::from_sdk_config(&sdk_config().await, &plan);
    Context { plan, aws }
}

/// Reads an events/ file, the same files `sam local invoke -e` takes.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Global Accelerator accelerator with one endpoint group per region, dials as given, in gapfill.
/// Returns (primary endpoint group ARN, DR endpoint group ARN).
pub async fn seed_endpoint_groups(
    cfg: &SdkConfig,
    primary: &str,
    dr: &str,
    dials: (i32, i32),
) -> (String, String) {
    use aws_sdk_globalaccelerator::types::{EndpointConfiguration, PortRange, Protocol};
    let ga = aws_sdk_globalaccelerator::Client::from_conf(
        aws_sdk_globalaccelerator::config::Builder::from(cfg)
            .region(Region::new("us-west-2"))
            .build(),
    );
    let acc = ga
        .create_accelerator()
        .name(unique("web"))
        .idempotency_token(unique("tok"))
        .send()
        .await
        .unwrap();
    let acc_arn = acc
        .accelerator()
        .unwrap()
        .accelerator_arn()
        .unwrap()
        .to_string();
    let listener = ga
        .create_listener()
        .accelerator_arn(&acc_arn)
        .protocol(Protocol::Tcp)
        .port_ranges(PortRange::builder().from_port(443).to_port(443).build())
        .idempotency_token(unique("tok"))
        .send()
        .await
        .unwrap();
    let listener_arn = listener
        .listener()
        .unwrap()
        .listener_arn()
        .unwrap()
        .to_string();
    let mut arns = Vec::new();
    for (region, dial) in [(primary, dials.0), (dr, dials.1)] {
        let eg = ga
            .create_endpoint_group()
            .listener_arn(&listener_arn)
            .endpoint_group_region(region)
            .traffic_dial_percentage(dial as f32)
            .endpoint_configurations(
                EndpointConfiguration::builder()
                    .endpoint_id(format!(
                        "arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/app/web/{}",
                        unique("lb")
                    ))
                    .weight(128)
                    .build(),
            )
            .idempotency_token(unique("tok"))
            .send()
            .await
            .unwrap();
        arns.push(
            eg.endpoint_group()
                .unwrap()
                .endpoint_group_arn()
                .unwrap()
                .to_string(),
        );
    }
    (arns[0].clone(), arns[1].clone())
}

/// A fresh SNS topic named `name` in `region` (moto). Returns the SNS client there and the topic ARN.
pub async fn seed_topic(
    cfg: &SdkConfig,
    region: &str,
    name: &str,
) -> (aws_sdk_sns::Client, String) {
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(cfg)
            .region(Region::new(region.to_string()))
            .build(),
    );
    let arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    (sns, arn)
}

pub fn ministack_url() -> String {
    required_env("PILOTLIGHT_MINISTACK_URL")
}

/// The flow lock's DynamoDB table (template.yaml's FailoverLockTable: key `lock`, on demand), uniquely named.
pub async fn create_lock_table(cfg: &SdkConfig, region: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(cfg)
            .region(Region::new(region.to_string()))
            .build(),
    );
    let name = unique("pilotlight-lock");
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("lock")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("lock")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    name
}
