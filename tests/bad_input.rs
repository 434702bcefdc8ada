//! The bad-input corpus (tests/bad-input/, see its README) through the real `detect` binary under the local Lambda
//! Runtime API, with every AWS endpoint behind a fault proxy (tests/support/faultproxy.py, no fault rules) in front
//! of the emulators: each file is refused with its expected reason (or, for OK / INSUFFICIENT_DATA, ignored), and the
//! proxies' request logs show no AWS call at all across the whole corpus, so certainly no mutating one. A second
//! detect process then answers a `status` command through the same proxies, so the logs are known to see detect's
//! calls. Needs the emulators and the binaries built (scripts/test.sh does both).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::faultproxy::FaultProxy;
use common::runtime_api::{Posted, recv, runtime_api, start_with_endpoints};
use serde::Deserialize;
use serde_json::Value;

/// One file's expected outcome (tests/bad-input/expected.json).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// true: the invocation fails with `error_type`; absent: it answers with `outcome`.
    #[serde(default)]
    refused: bool,
    /// `pilotlight.InvalidInput`, or `runtime` for the Lambda runtime's own error on a payload that is not JSON.
    error_type: Option<String>,
    outcome: Option<String>,
    reason_contains: String,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad-input"))
}

/// Every corpus file with its expectation; a file without one, or an expectation without a file, fails the test.
fn corpus() -> Vec<(String, Vec<u8>, Expected)> {
    let dir = corpus_dir();
    let expected: BTreeMap<String, Expected> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
            .expect("tests/bad-input/expected.json");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n != "expected.json" && n != "README.md")
        .collect();
    files.sort();
    let listed: Vec<&String> = expected.keys().collect();
    assert_eq!(
        files.iter().collect::<Vec<_>>(),
        listed,
        "every corpus file needs an entry in expected.json, and every entry a file"
    );
    let mut expected = expected;
    files
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let exp = expected.remove(&name).unwrap();
            (name, bytes, exp)
        })
        .collect()
}

struct Proxies {
    moto: FaultProxy,
    cloudwatch: FaultProxy,
    gapfill: FaultProxy,
}

impl Proxies {
    fn start() -> Self {
        Proxies {
            moto: FaultProxy::start(&common::moto_url()),
            cloudwatch: FaultProxy::start(&common::ministack_url()),
            gapfill: FaultProxy::start(&common::gapfill_url()),
        }
    }
    /// Every AWS endpoint detect could call, behind a proxy (the per-service variables of the test environment
    /// are not inherited: the binary starts with only these).
    fn endpoints(&self) -> Vec<(&'static str, String)> {
        let moto = self.moto.url().to_string();
        let mut e: Vec<(&str, String)> = [
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_SFN",
            "AWS_ENDPOINT_URL_RDS",
            "AWS_ENDPOINT_URL_AUTO_SCALING",
            "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
            "AWS_ENDPOINT_URL_SSM",
            "AWS_ENDPOINT_URL_ROUTE_53",
            "AWS_ENDPOINT_URL_SNS",
        ]
        .into_iter()
        .map(|k| (k, moto.clone()))
        .collect();
        e.push(("AWS_ENDPOINT_URL_CLOUDWATCH", self.cloudwatch.url().into()));
        e.push((
            "AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR",
            self.gapfill.url().into(),
        ));
        e.push(("AWS_ENDPOINT_URL_BACKUP", self.gapfill.url().into()));
        e
    }
    /// What the proxies saw, as (proxy, request) pairs.
    fn requests(&self) -> Vec<(&'static str, Value)> {
        [
            ("moto", &self.moto),
            ("cloudwatch", &self.cloudwatch),
            ("gapfill", &self.gapfill),
        ]
        .into_iter()
        .flat_map(|(name, p)| p.requests().into_iter().map(move |r| (name, r)))
        .collect()
    }
}

/// Runs `events` through one detect process; returns what it posted back for each, in order.
fn run_detect(proxies: &Proxies, events: Vec<Vec<u8>>) -> Vec<Posted> {
    let n = events.len();
    let (addr, rx) = runtime_api(events);
    let mut child = start_with_endpoints(
        "detect",
        &addr,
        &common::plan_vars(&[]),
        &proxies.endpoints(),
    );
    let posted: Vec<Posted> = (0..n).map(|_| recv(&rx)).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    posted
}

/// Why `posted` does not meet `exp`, if it does not.
fn mismatch(i: usize, posted: &Posted, exp: &Expected) -> Option<String> {
    let body: Value = serde_json::from_str(&posted.body).unwrap_or(Value::Null);
    if exp.refused {
        if !posted.path.ends_with(&format!("/invocation/req-{i}/error")) {
            return Some(format!(
                "expected a refusal, got {} {}",
                posted.path, posted.body
            ));
        }
        let error_type = body["errorType"].as_str().unwrap_or("");
        let type_ok = match exp.error_type.as_deref() {
            Some("runtime") => error_type.contains("DeserializeError"),
            Some(t) => error_type == t,
            None => false,
        };
        let message = body["errorMessage"].as_str().unwrap_or("");
        if !type_ok || !message.contains(&exp.reason_contains) {
            return Some(format!(
                "expected {:?} containing {:?}, got {error_type:?}: {message}",
                exp.error_type, exp.reason_contains
            ));
        }
    } else {
        if !posted
            .path
            .ends_with(&format!("/invocation/req-{i}/response"))
        {
            return Some(format!(
                "expected an answer, got {} {}",
                posted.path, posted.body
            ));
        }
        let reason = body["reason"].as_str().unwrap_or("");
        if body["outcome"].as_str() != exp.outcome.as_deref()
            || !reason.contains(&exp.reason_contains)
        {
            return Some(format!(
                "expected outcome {:?} with reason containing {:?}, got {}",
                exp.outcome, exp.reason_contains, posted.body
            ));
        }
    }
    None
}

#[test]
fn every_bad_input_is_refused_with_its_reason_and_calls_nothing() {
    let corpus = corpus();
    assert!(corpus.len() >= 40, "the corpus has {} files", corpus.len());
    let proxies = Proxies::start();
    let posted = run_detect(
        &proxies,
        corpus.iter().map(|(_, bytes, _)| bytes.clone()).collect(),
    );
    let failures: Vec<String> = corpus
        .iter()
        .zip(&posted)
        .enumerate()
        .filter_map(|(i, ((name, _, exp), p))| {
            mismatch(i, p, exp).map(|why| format!("{name}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus files did not meet their expectation:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    // Not one AWS call for the whole corpus, refusals and ignored alarms alike: so no mutating one either.
    let seen = proxies.requests();
    let mutating: Vec<_> = seen.iter().filter(|(_, r)| r["mutating"] == true).collect();
    assert!(mutating.is_empty(), "mutating AWS calls: {mutating:?}");
    assert!(seen.is_empty(), "AWS calls made for the corpus: {seen:?}");

    // The control: a valid status command through the same proxies is seen by them (reads only).
    let posted = run_detect(&proxies, vec![br#"{"command": "status"}"#.to_vec()]);
    assert!(posted[0].path.ends_with("/response"), "{posted:?}");
    let seen = proxies.requests();
    let services: Vec<&str> = seen.iter().map(|(name, _)| *name).collect();
    for proxy in ["moto", "cloudwatch", "gapfill"] {
        assert!(
            services.contains(&proxy),
            "status made no call through the {proxy} proxy: {seen:?}"
        );
    }
    assert!(
        seen.iter().all(|(_, r)| r["mutating"] == false),
        "status must only read: {seen:?}"
    );
}
