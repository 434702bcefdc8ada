//! The real `detect` binary under a minimal Lambda Runtime API (the protocol Lambda itself speaks to a
//! `provided.al2023` bootstrap): raw payloads that never reach the handler as JSON, and a bad plan at cold start.
//! Needs the binaries built (`cargo build --workspace --bins`, which scripts/test.sh does first).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::runtime_api::{Posted, recv, runtime_api, start, start_capturing_stdout};

#[test]
fn detect_binary_refuses_payloads_it_cannot_parse() {
    let mut huge = common::event("detect-manual-failover.json");
    huge["reason"] = serde_json::json!("x".repeat(1024 * 1024));
    let events = vec![
        b"this is not JSON".to_vec(),
        b"{\"command\": \"failover\"".to_vec(),
        serde_json::to_vec(&huge).unwrap(),
        // A real failover with a rehearsal flag that a JSON parser would drop: refused before the handler runs.
        br#"{"command": "failover", "dry_run": true, "reason": "drill", "dry_run": false}"#
            .to_vec(),
    ];
    let (addr, rx) = runtime_api(events);
    let mut child = start("detect", &addr, &common::plan_vars(&[]));
    let results: Vec<Posted> = (0..4).map(|_| recv(&rx)).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    for (i, p) in results.iter().enumerate() {
        assert!(
            p.path.ends_with(&format!("/invocation/req-{i}/error")),
            "invocation {i} must fail: {p:?}"
        );
    }
    // Not JSON: the runtime refuses it before the handler runs, so nothing can be called.
    assert!(results[0].body.contains("errorType"), "{}", results[0].body);
    assert!(results[1].body.contains("errorType"), "{}", results[1].body);
    // Valid JSON but 1 MiB: the handler refuses it with the contract's error type.
    assert!(
        results[2].body.contains("pilotlight.InvalidInput"),
        "{}",
        results[2].body
    );
    assert!(
        results[2].body.contains("larger than"),
        "{}",
        results[2].body
    );
    assert!(
        results[3].body.contains("pilotlight.InvalidInput")
            && results[3].body.contains("\\\"dry_run\\\" more than once"),
        "{}",
        results[3].body
    );
}

#[test]
fn a_bad_plan_is_reported_on_every_invocation_naming_the_variable() {
    let vars = common::plan_vars(&[("PILOTLIGHT_DR_CAPACITY", "4,2".into())]);
    let event = serde_json::to_vec(&common::event("detect-alarm-lambda-action.json")).unwrap();
    let (addr, rx) = runtime_api(vec![event]);
    let mut child = start("detect", &addr, &vars);
    let posted = recv(&rx);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        posted.path.ends_with("/invocation/req-0/error"),
        "{posted:?}"
    );
    assert!(
        posted.body.contains("PILOTLIGHT_DR_CAPACITY"),
        "{}",
        posted.body
    );
    assert!(posted.body.contains("pilotlight.Config"), "{}", posted.body);
}

/// Runs binary `name` with `vars` for one invocation of `event`; what it posted back.
fn invoke_once(
    name: &str,
    vars: &std::collections::HashMap<String, String>,
    event: Vec<u8>,
) -> Posted {
    let (addr, rx) = runtime_api(vec![event]);
    let mut child = start(name, &addr, vars);
    let posted = recv(&rx);
    child.kill().unwrap();
    child.wait().unwrap();
    posted
}

/// The real `probe` binary on its scheduled event: one target answering 200 and one closed port; the invocation
/// succeeds (a down target is data) and its metrics reach the CloudWatch the product uses. A bad probe value is
/// the Config error naming the variable.
#[test]
fn probe_binary_reports_a_down_target_as_data_and_refuses_a_bad_plan() {
    let ok = TcpListener::bind("127.0.0.1:0").unwrap();
    let ok_url = format!("http://{}/health", ok.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in ok.incoming().flatten() {
            let mut head = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            while reader.read_line(&mut head).unwrap_or(0) > 2 {
                head.clear();
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cloudwatch = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH")
        .expect("AWS_ENDPOINT_URL_CLOUDWATCH: start the emulators (scripts/emulators.sh env)");
    let event = serde_json::to_vec(&common::event("probe-scheduled.json")).unwrap();

    let mut vars = common::plan_vars(&[
        ("PILOTLIGHT_PROBE_URLS", ok_url.clone()),
        ("PILOTLIGHT_PROBE_TCP", closed.to_string()),
        (
            "PILOTLIGHT_PROBE_NAMESPACE",
            common::unique("pilotlight/probe/bin"),
        ),
    ]);
    vars.insert("AWS_ENDPOINT_URL_CLOUDWATCH".into(), cloudwatch);
    let posted = invoke_once("probe", &vars, event.clone());
    assert!(
        posted.path.ends_with("/invocation/req-0/response"),
        "{posted:?}"
    );
    let report: serde_json::Value = serde_json::from_str(&posted.body).unwrap();
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["checks"][0]["target"], ok_url.as_str());
    assert_eq!(report["checks"][0]["healthy"], true);
    assert_eq!(report["checks"][1]["healthy"], false);
    assert_eq!(report["published"], 4, "{report}");

    let vars = common::plan_vars(&[("PILOTLIGHT_PROBE_TCP", "db.example.internal".into())]);
    let posted = invoke_once("probe", &vars, event);
    assert!(
        posted.path.ends_with("/invocation/req-0/error"),
        "{posted:?}"
    );
    assert!(
        posted.body.contains("PILOTLIGHT_PROBE_TCP") && posted.body.contains("pilotlight.Config"),
        "{}",
        posted.body
    );
}

/// The real `detect` binary writes one CloudWatch Embedded Metric Format line on stdout per invocation, in the
/// configured namespace, with its duration and outcome: an OK alarm (ignored, no AWS call) and a refused payload.
#[test]
fn detect_binary_writes_an_emf_line_per_invocation() {
    let events = vec![
        serde_json::to_vec(&common::event("detect-alarm-ok.json")).unwrap(),
        br#"{"command": "status", "command": "failover"}"#.to_vec(),
    ];
    let (addr, rx) = runtime_api(events);
    let vars = common::plan_vars(&[("PILOTLIGHT_METRICS_NAMESPACE", "ops/pilotlight-test".into())]);
    let mut child = start_capturing_stdout("detect", &addr, &vars);
    let posted: Vec<Posted> = (0..2).map(|_| recv(&rx)).collect();
    assert!(posted[0].path.ends_with("/req-0/response"), "{posted:?}");
    assert!(posted[1].path.ends_with("/req-1/error"), "{posted:?}");
    // The record is written before the result is posted; give the pipe a moment, then stop the process.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    child.wait().unwrap();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(records.len(), 2, "one EMF line per invocation: {stdout}");
    for (record, outcome) in records.iter().zip(["ignored", "pilotlight.InvalidInput"]) {
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ops/pilotlight-test", "{record}");
        assert!(record["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Step"], ["Step", "Outcome"]])
        );
        assert_eq!(
            (&record["Step"], &record["Outcome"]),
            (&serde_json::json!("detect"), &serde_json::json!(outcome))
        );
        assert!(record["StepDuration"].as_f64().unwrap() >= 0.0, "{record}");
        assert_eq!(record["StepInvocations"], 1.0);
    }
}
