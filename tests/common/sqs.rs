//! Minimal SQS client for tests that need to see what SNS delivered. aws-sdk-sqs is not a workspace dependency (the
//! product never reads queues), so this speaks moto's SQS JSON protocol (`X-Amz-Target: AmazonSQS.<Op>`) over a
//! plain HTTP/1.0 request on 127.0.0.1. The region comes from the credential scope of the Authorization header,
//! as moto reads it; signatures are not checked by moto.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Queue {
    pub url: String,
    pub arn: String,
    region: String,
}

fn call(region: &str, op: &str, body: &Value) -> Value {
    let base = crate::common::moto_url();
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    assert!(
        host.starts_with("127.0.0.1:") || host.starts_with("localhost:"),
        "tests only talk to local emulators: {base}"
    );
    let payload = body.to_string();
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.{op}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/sqs/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let mut stream = TcpStream::connect(&host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("SQS {op}: malformed response {response:?}"));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "SQS {op} failed: {head}\n{body}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("SQS {op}: {e}: {body}"))
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
