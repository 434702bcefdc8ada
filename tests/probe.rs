//! The probe over real sockets: local HTTP servers on loopback (one answering 200, one 500, one that accepts and
//! never answers, a closed port), a TCP listener and a closed TCP port; the metrics go to the CloudWatch the
//! product uses (AWS_ENDPOINT_URL_CLOUDWATCH: ministack, which speaks the SDK's smithy-rpc-v2-cbor) and are read
//! back with GetMetricData. No SDK mocks.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use pilotlight::ErrorKind;
use pilotlight::aws::to_smithy;
use pilotlight::plan::FailoverPlan;
use pilotlight::runtime::invoke;
use pilotlight::steps::probe;
use serde_json::Value;

/// An HTTP server on loopback answering every request with `status` (`None`: accept, read, never answer).
/// Returns its base URL; the server lives as long as the test process.
fn http_server(status: Option<u16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn, status));
        }
    });
    url
}

fn answer(conn: TcpStream, status: Option<u16>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    match status {
        Some(s) => {
            let _ = (&conn).write_all(
                format!("HTTP/1.1 {s} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .as_bytes(),
            );
        }
        // Hold the connection open, say nothing.
        None => std::thread::sleep(Duration::from_secs(120)),
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP listener that is never accepted from: the kernel completes the handshake (the backlog), as a database
/// port would. Leaked so it lives as long as the test.
fn tcp_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::mem::forget(listener);
    addr
}

/// The newest value of `metric` with Target=`target` in `namespace` (Maximum per minute), from CloudWatch.
async fn newest(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    metric: &str,
    target: &str,
) -> Option<f64> {
    let now = chrono::Utc::now();
    let query = MetricDataQuery::builder()
        .id("m")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(namespace)
                        .metric_name(metric)
                        .dimensions(Dimension::builder().name("Target").value(target).build())
                        .build(),
                )
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .build();
    let resp = cw
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(to_smithy(now - chrono::Duration::minutes(5)))
        .end_time(to_smithy(now + chrono::Duration::minutes(1)))
        .send()
        .await
        .unwrap();
    resp.metric_data_results()
        .first()
        .and_then(|r| r.values().last().copied())
}

fn check<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"] == target)
        .unwrap_or_else(|| panic!("no check of {target} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_targets_are_data_published_per_target_and_the_invocation_succeeds() {
    let ok = format!("{}/health", http_server(Some(200)));
    let redirect = format!("{}/", http_server(Some(302)));
    let error = format!("{}/health", http_server(Some(500)));
    let hang = http_server(None);
    let (hang_a, hang_b) = (format!("{hang}/a"), format!("{hang}/b"));
    let refused = format!("http://127.0.0.1:{}/health", closed_port());
    let db = tcp_listener();
    let db_closed = format!("127.0.0.1:{}", closed_port());
    let namespace = format!("pilotlight/probe/{}", common::unique("t"));
    let vars = common::plan_vars(&[
        (
            "PILOTLIGHT_PROBE_URLS",
            [&ok, &redirect, &error, &hang_a, &hang_b, &refused]
                .map(|s| s.as_str())
                .join(","),
        ),
        ("PILOTLIGHT_PROBE_TCP", format!("{db},{db_closed}")),
        ("PILOTLIGHT_PROBE_TIMEOUT_MS", "1000".into()),
        ("PILOTLIGHT_PROBE_NAMESPACE", namespace.clone()),
    ]);
    let ctx = common::context(&vars).await;

    let started = Instant::now();
    let report = invoke(probe::handle, &ctx, common::event("probe-scheduled.json"))
        .await
        .expect("targets down are data: the invocation succeeds");
    let took = started.elapsed();

    // Two hanging targets of 1 s each, checked side by side: the round takes one timeout, not two.
    assert!(
        took < Duration::from_millis(1900),
        "the probe took {took:?}"
    );
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["region"], ctx.plan.dr.region);
    assert_eq!(report["scheduled_at"], "2026-11-29T10:15:00Z");
    let healthy: Vec<(String, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["target"].as_str().unwrap().to_string(),
                c["healthy"].as_bool().unwrap(),
            )
        })
        .collect();
    let db_target = format!("tcp://{db}");
    let db_closed_target = format!("tcp://{db_closed}");
    let expected = [
        (&ok, true),
        (&redirect, true),
        (&error, false),
        (&hang_a, false),
        (&hang_b, false),
        (&refused, false),
        (&db_target, true),
        (&db_closed_target, false),
    ];
    assert_eq!(
        healthy,
        expected.map(|(t, h)| (t.clone(), h)).to_vec(),
        "{report}"
    );
    assert_eq!(check(&report, &ok)["status"], 200);
    assert_eq!(check(&report, &error)["error"], "HTTP 500");
    assert_eq!(check(&report, &hang_a)["error"], "no answer within 1000 ms");
    assert!(check(&report, &hang_a)["latency_ms"].is_null());
    let refused_error = check(&report, &refused)["error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(refused_error.contains("refused"), "{refused_error}");
    assert!(check(&report, &db_target)["latency_ms"].as_u64().unwrap() < 1000);

    // What CloudWatch holds, per target, in the DR region.
    let cw = ctx.aws.dr.cloudwatch();
    for (target, up) in expected {
        let want = if up { 1.0 } else { 0.0 };
        assert_eq!(
            newest(cw, &namespace, "Healthy", target).await,
            Some(want),
            "{target}"
        );
    }
    assert_eq!(newest(cw, &namespace, "Healthy", "all").await, Some(0.0));
    assert!(newest(cw, &namespace, "Latency", &ok).await.is_some());
    assert_eq!(newest(cw, &namespace, "Latency", &hang_a).await, None);
    assert_eq!(
        report["published"],
        8 + 4 + 1,
        "8 Healthy, 4 Latency (answers), 1 aggregate"
    );
}

#[tokio::test]
async fn every_target_up_publishes_an_aggregate_of_one() {
    let ok = format!("{}/", http_server(Some(204)));
    let namespace = format!("pilotlight/probe/{}", common::unique("t"));
    let vars = common::plan_vars(&[
        ("PILOTLIGHT_PROBE_URLS", ok.clone()),
        ("PILOTLIGHT_PROBE_TCP", tcp_listener()),
        ("PILOTLIGHT_PROBE_NAMESPACE", namespace.clone()),
    ]);
    let ctx = common::context(&vars).await;
    let report = invoke(probe::handle, &ctx, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["message"], "all 2 targets healthy");
    assert!(report["scheduled_at"].is_null());
    let cw = ctx.aws.dr.cloudwatch();
    assert_eq!(newest(cw, &namespace, "Healthy", "all").await, Some(1.0));
    assert_eq!(newest(cw, &namespace, "Healthy", &ok).await, Some(1.0));
}

#[tokio::test]
async fn only_a_failure_to_publish_is_an_error() {
    let vars = common::plan_vars(&[(
        "PILOTLIGHT_PROBE_URLS",
        format!("{}/", http_server(Some(200))),
    )]);
    let plan = FailoverPlan::from_map(&vars).unwrap();
    // CloudWatch on a port nobody listens on.
    let cfg = common::sdk_config_at(&format!("http://127.0.0.1:{}", closed_port())).await;
    let aws = pilotlight::aws::clients::AwsClients::from_sdk_config(&cfg, &plan);
    let ctx = pilotlight::Context { plan, aws };
    let err = invoke(probe::handle, &ctx, common::event("probe-scheduled.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.message.contains("PutMetricData"), "{err}");
}

#[tokio::test]
async fn a_probe_with_nothing_to_check_or_a_foreign_event_is_refused() {
    let ctx = common::context(&common::plan_vars(&[])).await;
    let err = invoke(probe::handle, &ctx, serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.message.contains("PILOTLIGHT_PROBE_URLS"), "{err}");
    let vars = common::plan_vars(&[("PILOTLIGHT_PROBE_URLS", "http://127.0.0.1:1/".into())]);
    let ctx = common::context(&vars).await;
    let err = invoke(
        probe::handle,
        &ctx,
        common::event("detect-alarm-probe.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
}

#[test]
fn bad_probe_values_are_refused_naming_the_variable() {
    for (var, value) in [
        (
            "PILOTLIGHT_PROBE_URLS",
            "https://ok.example.com/health,gopher://old.example.com/",
        ),
        ("PILOTLIGHT_PROBE_URLS", "not a url"),
        ("PILOTLIGHT_PROBE_TCP", "db.example.internal"),
        ("PILOTLIGHT_PROBE_TCP", "db.example.internal:http"),
        ("PILOTLIGHT_PROBE_TIMEOUT_MS", "60000"),
    ] {
        let err = FailoverPlan::from_map(&common::plan_vars(&[(var, value.into())])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config, "{var}={value}");
        assert!(err.message.contains(var), "{var}={value}: {err}");
    }
}
