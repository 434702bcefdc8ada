//! A minimal Lambda Runtime API (the protocol Lambda itself speaks to a `provided.al2023` bootstrap), so tests run
//! the real function binaries: each event is served on /invocation/next, every response or error posted back is
//! forwarded to the test. Loopback only.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What the function posted back for one invocation (or at init).
#[derive(Debug)]
pub struct Posted {
    pub path: String,
    pub body: String,
}

/// Serves `events` one by one on /invocation/next and forwards every POST to the returned channel.
pub fn runtime_api(events: Vec<Vec<u8>>) -> (String, mpsc::Receiver<Posted>) {
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

pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Starts a function binary against the Runtime API at `addr` with only `vars` (the plan) in its environment, and
/// every AWS endpoint pointing at a closed port: the payloads these tests send must be refused before any call.
pub fn start(name: &str, addr: &str, vars: &HashMap<String, String>) -> Child {
    start_with_endpoints(
        name,
        addr,
        vars,
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into())],
    )
}

/// Like [`start`], with the endpoint variables given (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`).
pub fn start_with_endpoints(
    name: &str,
    addr: &str,
    vars: &HashMap<String, String>,
    endpoints: &[(&str, String)],
) -> Child {
    spawn(name, addr, vars, endpoints, Stdio::null())
}

/// Like [`start`], with the function's stdout (its log lines, EMF metric records among them) piped to the test.
pub fn start_capturing_stdout(name: &str, addr: &str, vars: &HashMap<String, String>) -> Child {
    spawn(
        name,
        addr,
        vars,
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1".into())],
        Stdio::piped(),
    )
}

fn spawn(
    name: &str,
    addr: &str,
    vars: &HashMap<String, String>,
    endpoints: &[(&str, String)],
    stdout: Stdio,
) -> Child {
    Command::new(binary(name))
        .env_clear()
        .envs(vars)
        .envs(endpoints.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "ap-northeast-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn recv(rx: &mpsc::Receiver<Posted>) -> Posted {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the function posted nothing back within 20 s")
}
