//! The probe's pure part: which event it accepts, what it checks, what counts as healthy, the report, and the
//! datapoints it publishes. No I/O here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::cloudwatch::MetricPoint;
use crate::error::{Error, Result};
use crate::plan::{ProbePlan, TcpEndpoint};

use super::STEP;

/// The metric of each target (1 healthy, 0 not) and of the aggregate.
pub const HEALTHY_METRIC: &str = "Healthy";
/// Time to the answer (HTTP status line, or TCP connection), only when there was one.
pub const LATENCY_METRIC: &str = "Latency";
/// The dimension naming the target.
pub const TARGET_DIMENSION: &str = "Target";
/// The aggregate's dimension value: 1 only when every target is healthy. The alarm watches this one.
pub const ALL_TARGETS: &str = "all";

/// What invoked the probe: the EventBridge schedule, or a person/test with `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Scheduled {
        rule: Option<String>,
        time: Option<DateTime<Utc>>,
    },
    Manual,
}

/// Accepts an EventBridge "Scheduled Event" or an empty object; anything else (an alarm sent to the wrong
/// function, a step input) is refused before any check.
pub fn parse_event(event: &Value) -> Result<Invocation> {
    let Some(obj) = event.as_object() else {
        return Err(Error::invalid_input(format!(
            "{STEP}: expected an EventBridge Scheduled Event or {{}}, got {event}"
        )));
    };
    if obj.is_empty() {
        return Ok(Invocation::Manual);
    }
    match (
        obj.get("detail-type").and_then(Value::as_str),
        obj.get("source").and_then(Value::as_str),
    ) {
        (Some("Scheduled Event"), Some("aws.events" | "aws.scheduler")) => {
            Ok(Invocation::Scheduled {
                rule: obj
                    .get("resources")
                    .and_then(Value::as_array)
                    .and_then(|r| r.first())
                    .and_then(Value::as_str)
                    .map(str::to_string),
                time: obj
                    .get("time")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
            })
        }
        _ => Err(Error::invalid_input(format!(
            "{STEP}: expected an EventBridge Scheduled Event (source aws.events, detail-type \"Scheduled Event\") \
             or {{}}; this looks like something else (keys: {})",
            obj.keys().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// One thing the probe checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Http { url: String },
    Tcp(TcpEndpoint),
}

impl Target {
    /// The metric dimension value: the URL as written, `tcp://host:port` for an endpoint.
    pub fn name(&self) -> String {
        match self {
            Target::Http { url } => url.clone(),
            Target::Tcp(endpoint) => format!("tcp://{endpoint}"),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Http { .. } => "http",
            Target::Tcp(_) => "tcp",
        }
    }
}

/// The plan's targets in order (URLs, then TCP endpoints). A probe with nothing to check is a plan error: its
/// silence would read as a dead primary (the alarm treats missing data as breaching).
pub fn targets(plan: &ProbePlan) -> Result<Vec<Target>> {
    let targets: Vec<Target> = plan
        .urls
        .iter()
        .map(|url| Target::Http { url: url.clone() })
        .chain(plan.tcp.iter().cloned().map(Target::Tcp))
        .collect();
    if targets.is_empty() {
        return Err(Error::config(
            "PILOTLIGHT_PROBE_URLS",
            "the probe has nothing to check: set PILOTLIGHT_PROBE_URLS and/or PILOTLIGHT_PROBE_TCP",
        ));
    }
    Ok(targets)
}

/// What one check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Answered(u16),
    /// A TCP connection opened.
    Connected,
    /// Refused, reset, DNS failure, TLS failure...: the error as text.
    Failed(String),
    /// Nothing within the timeout.
    TimedOut,
}

/// Healthy: an HTTP 2xx/3xx answer (redirects are not followed: a redirect is the primary answering), or a TCP
/// connection. Everything else is down.
pub fn healthy(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Answered(status) => (200..400).contains(status),
        Outcome::Connected => true,
        Outcome::Failed(_) | Outcome::TimedOut => false,
    }
}

/// One target's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub target: String,
    pub kind: &'static str,
    pub healthy: bool,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Milliseconds to the answer (null when none came).
    pub latency_ms: Option<u64>,
    /// Why it is down, when it is.
    pub error: Option<String>,
}

pub fn check(target: &Target, outcome: &Outcome, elapsed: Duration, timeout: Duration) -> Check {
    let answered = matches!(outcome, Outcome::Answered(_) | Outcome::Connected);
    Check {
        target: target.name(),
        kind: target.kind(),
        healthy: healthy(outcome),
        status: match outcome {
            Outcome::Answered(s) => Some(*s),
            _ => None,
        },
        latency_ms: answered.then_some(elapsed.as_millis() as u64),
        error: match outcome {
            Outcome::Answered(s) if !(200..400).contains(s) => Some(format!("HTTP {s}")),
            Outcome::Failed(e) => Some(e.clone()),
            Outcome::TimedOut => Some(format!("no answer within {} ms", timeout.as_millis())),
            _ => None,
        },
    }
}

/// What the probe returns: what it saw of each target and where it published it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    pub step: &'static str,
    /// The region whose CloudWatch holds the metrics (the DR region).
    pub region: String,
    pub namespace: String,
    /// The schedule's time (null for a manual run).
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Every target healthy (the aggregate metric, Target=all).
    pub healthy: bool,
    pub checks: Vec<Check>,
    /// How many datapoints were published.
    pub published: usize,
    pub message: String,
}

/// A one-line summary: "2 of 3 targets healthy; down: tcp://db:5432 (connection refused)".
pub fn summary(checks: &[Check]) -> String {
    let up = checks.iter().filter(|c| c.healthy).count();
    let down: Vec<String> = checks
        .iter()
        .filter(|c| !c.healthy)
        .map(|c| format!("{} ({})", c.target, c.error.as_deref().unwrap_or("down")))
        .collect();
    if down.is_empty() {
        format!("all {} targets healthy", checks.len())
    } else {
        format!(
            "{up} of {} targets healthy; down: {}",
            checks.len(),
            down.join(", ")
        )
    }
}

/// The datapoints of one round: per target `Healthy` (and `Latency` when it answered), then the aggregate
/// `Healthy` with Target=all, all stamped `at`.
pub fn metric_points(checks: &[Check], at: DateTime<Utc>) -> Vec<MetricPoint> {
    let point = |metric: &str, target: &str, value: f64, unit: &'static str| MetricPoint {
        metric: metric.to_string(),
        dimensions: vec![(TARGET_DIMENSION.to_string(), target.to_string())],
        value,
        unit,
        at,
    };
    let mut points = Vec::with_capacity(checks.len() * 2 + 1);
    for c in checks {
        points.push(point(HEALTHY_METRIC, &c.target, flag(c.healthy), "None"));
        if let Some(ms) = c.latency_ms {
            points.push(point(LATENCY_METRIC, &c.target, ms as f64, "Milliseconds"));
        }
    }
    let all = checks.iter().all(|c| c.healthy);
    points.push(point(HEALTHY_METRIC, ALL_TARGETS, flag(all), "None"));
    points
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Duration = Duration::from_millis(3000);

    fn url(u: &str) -> Target {
        Target::Http { url: u.into() }
    }

    #[test]
    fn scheduled_events_and_empty_objects_are_accepted() {
        let text = include_str!("../../../../events/probe-scheduled.json");
        let event: Value = serde_json::from_str(text).unwrap();
        match parse_event(&event).unwrap() {
            Invocation::Scheduled { rule, time } => {
                assert!(rule.unwrap().contains(":rule/"));
                assert!(time.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_event(&json!({})).unwrap(), Invocation::Manual);
    }

    #[test]
    fn other_events_are_refused() {
        let alarm: Value =
            serde_json::from_str(include_str!("../../../../events/detect-alarm-probe.json"))
                .unwrap();
        for event in [alarm, json!([]), json!("go"), json!({"action": "start"})] {
            let err = parse_event(&event).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::InvalidInput, "{event}");
        }
    }

    #[test]
    fn two_and_three_hundreds_pass_everything_else_is_down() {
        for s in [200, 204, 301, 302, 399] {
            assert!(healthy(&Outcome::Answered(s)), "{s}");
        }
        for s in [100, 400, 404, 500, 503] {
            assert!(!healthy(&Outcome::Answered(s)), "{s}");
        }
        assert!(healthy(&Outcome::Connected));
        assert!(!healthy(&Outcome::TimedOut));
        assert!(!healthy(&Outcome::Failed("connection refused".into())));
    }

    #[test]
    fn a_check_says_why_it_is_down_and_times_only_answers() {
        let ms = Duration::from_millis(42);
        let ok = check(&url("https://a/"), &Outcome::Answered(200), ms, T);
        assert_eq!(
            (ok.healthy, ok.status, ok.latency_ms, ok.error),
            (true, Some(200), Some(42), None)
        );
        let err = check(&url("https://a/"), &Outcome::Answered(500), ms, T);
        assert_eq!(
            (err.healthy, err.latency_ms, err.error.as_deref()),
            (false, Some(42), Some("HTTP 500"))
        );
        let hang = check(&url("https://a/"), &Outcome::TimedOut, T, T);
        assert_eq!(hang.latency_ms, None);
        assert_eq!(hang.error.as_deref(), Some("no answer within 3000 ms"));
        let tcp = Target::Tcp(TcpEndpoint {
            host: "db".into(),
            port: 5432,
        });
        let c = check(&tcp, &Outcome::Connected, ms, T);
        assert_eq!(
            (c.target.as_str(), c.kind, c.healthy),
            ("tcp://db:5432", "tcp", true)
        );
    }

    #[test]
    fn one_metric_per_target_plus_the_aggregate() {
        let at = Utc::now();
        let ms = Duration::from_millis(7);
        let checks = vec![
            check(&url("https://a/"), &Outcome::Answered(200), ms, T),
            check(&url("https://b/"), &Outcome::TimedOut, T, T),
        ];
        let points = metric_points(&checks, at);
        let seen: Vec<(&str, &str, f64)> = points
            .iter()
            .map(|p| (p.metric.as_str(), p.dimensions[0].1.as_str(), p.value))
            .collect();
        assert_eq!(
            seen,
            [
                ("Healthy", "https://a/", 1.0),
                ("Latency", "https://a/", 7.0),
                ("Healthy", "https://b/", 0.0),
                ("Healthy", "all", 0.0),
            ]
        );
        assert!(
            points
                .iter()
                .all(|p| p.at == at && p.dimensions[0].0 == "Target")
        );
        assert_eq!(
            summary(&checks),
            "1 of 2 targets healthy; down: https://b/ (no answer within 3000 ms)"
        );
        let all_up = metric_points(&checks[..1], at);
        assert_eq!(all_up.last().unwrap().value, 1.0);
        assert_eq!(summary(&checks[..1]), "all 1 targets healthy");
    }

    #[test]
    fn a_probe_without_targets_is_a_plan_error() {
        let plan = ProbePlan {
            urls: vec![],
            tcp: vec![],
            timeout: T,
            namespace: "pilotlight/probe".into(),
        };
        let err = targets(&plan).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Config);
        assert!(err.message.contains("PILOTLIGHT_PROBE_URLS"));
        let plan = ProbePlan {
            urls: vec!["http://x/".into()],
            tcp: vec![TcpEndpoint {
                host: "db".into(),
                port: 1,
            }],
            ..plan
        };
        assert_eq!(targets(&plan).unwrap().len(), 2);
    }
}
