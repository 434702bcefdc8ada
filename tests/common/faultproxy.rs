//! Test support: a tests/support/faultproxy.py process in front of an emulator, for tests that need AWS faults
//! (throttling, 500/503, slow answers, black-holed calls, dropped connections) on chosen operations. Point an SDK
//! client's endpoint at `url()`, set rules, and read back what the proxy saw. The process is killed on drop.
//! Admin calls go through `emulator_http` (std only, loopback only).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::emulator_http;

pub struct FaultProxy {
    child: Child,
    url: String,
}

impl FaultProxy {
    /// A proxy on a free port forwarding everything to `upstream_url` (e.g. `common::moto_url()`).
    pub fn start(upstream_url: &str) -> FaultProxy {
        Self::start_routed(upstream_url, &[])
    }

    /// Like `start`, with some SigV4 services routed elsewhere, e.g. `[("globalaccelerator", gapfill_url)]`.
    pub fn start_routed(upstream_url: &str, routes: &[(&str, &str)]) -> FaultProxy {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/faultproxy.py");
        let mut cmd = Command::new("python3");
        cmd.args([script, "--port", "0", "--upstream", upstream_url]);
        for (service, url) in routes {
            cmd.args(["--upstream-for", &format!("{service}={url}")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 {script}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line.trim().strip_prefix("faultproxy listening on ") else {
            let _ = child.kill();
            panic!("faultproxy did not start (upstream {upstream_url}): {line:?}");
        };
        FaultProxy {
            url: url.to_string(),
            child,
        }
    }

    /// The endpoint URL to give SDK clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the rule set: `rules` is the JSON array of rules (see tests/support/README.md).
    pub fn set_rules(&self, rules: serde_json::Value) {
        let body = serde_json::json!({ "rules": rules });
        self.admin("POST", "/_faultproxy/rules", &body.to_string());
    }

    /// No rules, empty request log.
    pub fn clear(&self) {
        self.admin("DELETE", "/_faultproxy/rules", "");
        self.admin("DELETE", "/_faultproxy/requests", "");
    }

    /// Every request seen since the last `clear()`: `service`, `region`, `operation`, `mutating`, `fault`,
    /// `status` (the HTTP status, or "closed" / "client-gave-up" / ... for faults that send none), ...
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let text = self.admin("GET", "/_faultproxy/requests", "");
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        match v["requests"].take() {
            serde_json::Value::Array(items) => items,
            other => panic!("faultproxy requests: {other}"),
        }
    }

    /// The operation names of the requests seen, in order.
    pub fn operations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["operation"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn admin(&self, method: &str, path: &str, body: &str) -> String {
        let (status, text) = emulator_http::request(
            &self.url,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(status, 200, "faultproxy {method} {path} {body}: {text}");
        text
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
