//! The real `detect` binary under a minimal Lambda Runtime API (the protocol Lambda itself speaks to a
//! `provided.al2023` bootstrap): raw payloads that never reach the handler as JSON, and a bad plan at cold start.
//! Needs the binaries built (`cargo build --workspace --bins`, which scripts/test.sh does first).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What the function posted back for one invocation (or at init).
#[derive(Debug)]
struct Posted {
    path: String,
    body: String,
}

/// Serves `events` one by one on /invocation/next and forwards every POST to the returned channel.
fn runtime_api(events: Vec<Vec<u8>>) -> (String, mpsc::Receiver<Posted>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let queue = std::sync::Arc::new(std::sync::Mutex::new(events.into_iter().enumerate()));
        for conn in listener.incoming().flatten() {
            let (tx, queue) = (tx.clone(), queue.clone());
            std::thread::spawn(move || serve_connection(conn, tx, queue));
        }
    });
    (addr, rx)
}

type Queue = std::sync::Arc<std::sync::Mutex<std::iter::Enumerate<std::vec::IntoIter<Vec<u8>>>>>;

fn serve_connection(conn: TcpStream, tx: mpsc::Sender<Posted>, queue: Queue) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_string(),
        );
        if method == "GET" && path.ends_with("/invocation/next") {
            let next = queue.lock().unwrap().next();
            let Some((i, event)) = next else {
                std::thread::sleep(Duration::from_secs(3600)); // no more work: the test ends the process
                return;
            };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{i}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:ap-northeast-1:123456789012:function:detect\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n",
                event.len()
            );
            out.write_all(head.as_bytes()).unwrap();
            out.write_all(&event).unwrap();
        } else {
            out.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            let _ = tx.send(Posted {
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    }
}

fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

fn start(name: &str, addr: &str, vars: &std::collections::HashMap<String, String>) -> Child {
    Command::new(binary(name))
        .env_clear()
        .envs(vars)
        .env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "ap-northeast-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // Any AWS call would fail fast here: these payloads must be refused before the first one.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn recv(rx: &mpsc::Receiver<Posted>) -> Posted {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the function posted nothing back within 20 s")
}

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
