//! The probe's I/O towards the primary: one HTTP(S) GET or one TCP connect per target, each bounded by the plan's
//! timeout, all side by side. Nothing here decides what is healthy ([`super::verdict`] does).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::verdict::{Outcome, Target};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The client, built once per cold start: rustls on aws-lc-rs with the system's roots (the Lambda image's CA
/// bundle), http and https, HTTP/1.1, **no idle connections kept**: every check opens a fresh connection (DNS, TCP,
/// TLS), as a new visitor of the primary would. Redirects are not followed.
fn client() -> Result<&'static HttpsClient, String> {
    static CLIENT: OnceLock<Result<HttpsClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(provider)
                .map_err(|e| format!("cannot load the system's TLS root certificates: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(https))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes the client ready (loads the TLS roots); an error here is the probe's own, not the primary's.
pub fn ready() -> Result<(), String> {
    client().map(|_| ())
}

/// Checks every target concurrently; results in the targets' order, each with the time it took.
pub async fn run_all(targets: &[Target], timeout: Duration) -> Vec<(Outcome, Duration)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        set.spawn(async move { (i, run_one(&target, timeout).await) });
    }
    let mut out = vec![(Outcome::TimedOut, timeout); targets.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, result)) => out[i] = result,
            // A check cannot panic by design; if one did, its slot stays "no answer".
            Err(e) => tracing::error!(error = %e, "probe check task failed"),
        }
    }
    out
}

/// One check, bounded by `timeout` as a whole (DNS + connect + TLS + the response head).
pub async fn run_one(target: &Target, timeout: Duration) -> (Outcome, Duration) {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, attempt(target)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::TimedOut,
    };
    (outcome, start.elapsed())
}

async fn attempt(target: &Target) -> Outcome {
    match target {
        Target::Tcp(endpoint) => {
            match tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await {
                Ok(_) => Outcome::Connected,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Target::Http { url } => {
            let client = match client() {
                Ok(c) => c,
                Err(e) => return Outcome::Failed(e),
            };
            let request = hyper::Request::get(url.as_str())
                .header(hyper::header::USER_AGENT, "pilotlight-probe")
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new());
            let request = match request {
                Ok(r) => r,
                Err(e) => return Outcome::Failed(format!("bad request: {e}")),
            };
            match client.request(request).await {
                // Only the status line and headers are awaited; the body is dropped unread.
                Ok(response) => Outcome::Answered(response.status().as_u16()),
                Err(e) => Outcome::Failed(error_chain(&e)),
            }
        }
    }
}

/// "client error (Connect): tcp connect error: Connection refused (os error 111)".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
