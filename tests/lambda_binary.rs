//! The real `detect` binary under a minimal Lambda Runtime API (the protocol Lambda itself speaks to a
//! `provided.al2023` bootstrap): raw payloads that never reach the handler as JSON, and a bad plan at cold start.
//! Needs the binaries built (`cargo build --workspace --bins`, which scripts/test.sh does first).

mod common;

use common::runtime_api::{Posted, recv, runtime_api, start};

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
