//! Minimal SQS client for tests that need to see what SNS delivered. aws-sdk-sqs is not a workspace dependency (the
//! product never reads queues), so this speaks moto's SQS JSON protocol (`X-Amz-Target: AmazonSQS.<Op>`) over a
//! plain HTTP request on 127.0.0.1 (tests/support/emulator_http.rs). The region comes from the credential scope of
//! the Authorization header, as moto reads it; signatures are not checked by moto.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::emulator_http::{request, unsigned_authorization};

pub struct Queue {
    pub url: String,
    pub arn: String,
    region: String,
}

fn call(region: &str, op: &str, body: &Value) -> Value {
    let auth = unsigned_authorization(region, "sqs");
    let target = format!("AmazonSQS.{op}");
    let (status, text) = request(
        &crate::common::moto_url(),
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", &target),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "SQS {op} failed: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("SQS {op}: {e}: {text}"))
}

/// Creates a queue in `region` (SNS in that region can deliver to it).
pub fn create_queue(region: &str, name: &str) -> Queue {
    let url = call(region, "CreateQueue", &json!({ "QueueName": name }))["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let attrs = call(
        region,
        "GetQueueAttributes",
        &json!({ "QueueUrl": url, "AttributeNames": ["QueueArn"] }),
    );
    let arn = attrs["Attributes"]["QueueArn"]
        .as_str()
        .unwrap()
        .to_string();
    Queue {
        url,
        arn,
        region: region.to_string(),
    }
}

impl Queue {
    /// Receives and deletes what is there now, waiting up to `wait` for at least `at_least` messages.
    /// Returns the message bodies parsed as JSON (an SNS envelope: Type, MessageId, Subject, Message, ...).
    pub fn drain(&self, at_least: usize, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let resp = call(
                &self.region,
                "ReceiveMessage",
                &json!({ "QueueUrl": self.url, "MaxNumberOfMessages": 10 }),
            );
            let messages = resp["Messages"].as_array().cloned().unwrap_or_default();
            for m in &messages {
                let body = m["Body"].as_str().unwrap();
                out.push(
                    serde_json::from_str(body)
                        .unwrap_or_else(|e| panic!("not an SNS envelope ({e}): {body}")),
                );
                call(
                    &self.region,
                    "DeleteMessage",
                    &json!({ "QueueUrl": self.url, "ReceiptHandle": m["ReceiptHandle"] }),
                );
            }
            if messages.is_empty() && (out.len() >= at_least || Instant::now() >= deadline) {
                return out;
            }
            if messages.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
