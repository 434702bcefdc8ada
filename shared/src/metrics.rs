//! Metrics as CloudWatch Embedded Metric Format (EMF) records: one JSON object per line on stdout, which Lambda
//! sends to CloudWatch Logs, where the `_aws` metadata makes CloudWatch extract the metrics. No API call: a metric
//! never adds latency, a permission or a failure mode to a step, and works the same when CloudWatch's API is
//! throttled on the worst day.
//!
//! What is emitted (docs/contract.md "Metrics"), all in one namespace (`PILOTLIGHT_METRICS_NAMESPACE`, default
//! `pilotlight`), with low-cardinality dimensions only (step names, outcomes, check names; never an execution
//! name or a resource id, which go in as plain members for log searches):
//! * every invocation of every function ([`step_invocation`], from `runtime::serve`): `StepDuration` (ms) and
//!   `StepInvocations`, by `Step` and by `Step` + `Outcome`;
//! * every execution's final notice ([`execution`], from notify): `Executions` by `Direction` + `Run` + `Outcome`,
//!   and for real runs `RtoSeconds` when the shift completed and `RpoSeconds` when the lag is known; an unknown RPO
//!   is never a number: `RpoUnknown` counts it;
//! * every readiness evaluation ([`readiness_check`] per check, [`readiness_total`] for all): `ReadinessFailures`
//!   by `Check` (`Check=all` is the total the alarm watches).
//!
//! The record is built purely ([`Record::to_json`]) and written by [`Record::emit`].

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::Error;

/// The variable naming the namespace (the template's `MetricsNamespace` parameter).
pub const NAMESPACE_VARIABLE: &str = "PILOTLIGHT_METRICS_NAMESPACE";
pub const DEFAULT_NAMESPACE: &str = "pilotlight";

/// The CloudWatch units pilotlight uses (EMF's `Unit` takes the PutMetricData unit names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
    Count,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Count => "Count",
        }
    }
}

/// One EMF document: one namespace, its dimension sets, its metrics, and plain members for log searches.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    namespace: String,
    timestamp: DateTime<Utc>,
    dimensions: Vec<(&'static str, String)>,
    dimension_sets: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Unit, f64)>,
    properties: Vec<(&'static str, Value)>,
}

impl Record {
    pub fn new(namespace: &str, timestamp: DateTime<Utc>) -> Self {
        Record {
            namespace: namespace.to_string(),
            timestamp,
            dimensions: Vec::new(),
            dimension_sets: Vec::new(),
            metrics: Vec::new(),
            properties: Vec::new(),
        }
    }

    /// A dimension's value; [`Record::dimension_set`] says which sets the metrics are aggregated by. The value is
    /// made valid for CloudWatch (ASCII, no control characters, 1..=1024 characters): a metric is never lost to
    /// a stray character.
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.dimensions.push((name, dimension_value(value)));
        self
    }

    pub fn dimension_set(mut self, names: &[&'static str]) -> Self {
        self.dimension_sets.push(names.to_vec());
        self
    }

    /// A metric value. A non-finite value is left out (EMF values are JSON numbers; "unknown" is never one).
    pub fn metric(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        if value.is_finite() {
            self.metrics.push((name, unit, value));
        }
        self
    }

    /// A plain member: searchable in CloudWatch Logs Insights, not a metric, not a dimension.
    pub fn property(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.properties.push((name, value.into()));
        self
    }

    /// Metric names in this record (for tests and callers that check what they emit).
    pub fn metric_names(&self) -> Vec<&'static str> {
        self.metrics.iter().map(|(n, _, _)| *n).collect()
    }

    /// The EMF document: `_aws` (Timestamp in ms since the epoch, one MetricDirective), then the dimension values
    /// and metric values as top-level members the directive refers to (the spec requires every referenced member).
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.properties {
            root.insert((*name).to_string(), value.clone());
        }
        for (name, value) in &self.dimensions {
            root.insert((*name).to_string(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).to_string(), json!(value));
        }
        // Only dimensions that have a value (a set naming a missing member would make the record invalid).
        let sets: Vec<Vec<&str>> = self
            .dimension_sets
            .iter()
            .map(|set| {
                set.iter()
                    .copied()
                    .filter(|d| self.dimensions.iter().any(|(n, _)| n == d))
                    .collect::<Vec<_>>()
            })
            .filter(|set| !set.is_empty())
            .collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": sets,
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Writes the record as one line on stdout (Lambda makes each line a log event). A record without metrics is
    /// not written. Never fails the caller: a closed stdout loses a metric, not an invocation.
    pub fn emit(&self) {
        if self.metrics.is_empty() {
            return;
        }
        let line = self.to_json().to_string();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}

fn dimension_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(1024)
        .collect();
    if clean.trim().is_empty() {
        "none".into()
    } else {
        clean
    }
}

/// Whether `namespace` is one CloudWatch accepts: 1..=255 ASCII characters without control characters, not
/// starting with ':' or the reserved "AWS/".
pub fn valid_namespace(namespace: &str) -> bool {
    (1..=255).contains(&namespace.len())
        && namespace
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control())
        && !namespace.trim().is_empty()
        && !namespace.starts_with(':')
        && !namespace.starts_with("AWS/")
}

/// The namespace from `PILOTLIGHT_METRICS_NAMESPACE`. Unset or empty: the default. Invalid: the default too, with a
/// warning naming the variable: metrics never stop a failover (the template's parameter pattern refuses such a
/// value at deploy time).
pub fn namespace() -> String {
    match std::env::var(NAMESPACE_VARIABLE) {
        Ok(v) if v.is_empty() => DEFAULT_NAMESPACE.into(),
        Ok(v) if valid_namespace(&v) => v,
        Ok(v) => {
            tracing::warn!(
                value = %v,
                "{NAMESPACE_VARIABLE} is not a CloudWatch namespace (1-255 ASCII characters, not starting with \
                 ':' or 'AWS/'): metrics go to {DEFAULT_NAMESPACE:?}; fix the MetricsNamespace parameter"
            );
            DEFAULT_NAMESPACE.into()
        }
        Err(_) => DEFAULT_NAMESPACE.into(),
    }
}

/// How an invocation ended, in a few fixed words: a step report's `done` ("done", or "waiting": the state machine
/// polls again), a short lowercase `outcome` word the output carries (detect's "started", "skipped", ...), "ok"
/// otherwise; an error is its contract error type (`pilotlight.Transient`, ...).
pub fn outcome(result: &std::result::Result<Value, Error>) -> String {
    match result {
        Err(e) => e.kind.error_type().to_string(),
        Ok(out) => match (out.get("done"), out.get("outcome")) {
            (Some(Value::Bool(true)), _) => "done".into(),
            (Some(Value::Bool(false)), _) => "waiting".into(),
            (_, Some(Value::String(o)))
                if (1..=32).contains(&o.len())
                    && o.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_') =>
            {
                o.clone()
            }
            _ => "ok".into(),
        },
    }
}

/// One invocation of a function: its duration and outcome, by step and by step and outcome. The action and
/// dry-run flag (when the output has them) are plain members.
pub fn step_invocation(
    namespace: &str,
    step: &str,
    elapsed: Duration,
    result: &std::result::Result<Value, Error>,
    at: DateTime<Utc>,
) -> Record {
    let mut record = Record::new(namespace, at)
        .dimension("Step", step)
        .dimension("Outcome", &outcome(result))
        .dimension_set(&["Step"])
        .dimension_set(&["Step", "Outcome"])
        .metric(
            "StepDuration",
            Unit::Milliseconds,
            elapsed.as_secs_f64() * 1000.0,
        )
        .metric("StepInvocations", Unit::Count, 1.0);
    if let Ok(out) = result {
        for key in ["action", "dry_run", "execution"] {
            if let Some(v) = out.get(key).filter(|v| v.is_string() || v.is_boolean()) {
                record = record.property(key, v.clone());
            }
        }
    }
    record
}

/// An execution's final report (notify's `report`, or the report a failure notice carries), as JSON: `Executions`
/// by direction, run (real / dry-run) and outcome; for a real run `RtoSeconds` when known and `RpoSeconds` when
/// known, or `RpoUnknown` = 1 when the run reached the promotion but no lag was recorded. A dry-run changes nothing,
/// so it has no RTO or RPO to report (its numbers would only dilute the real ones).
pub fn execution(namespace: &str, report: &Value, at: DateTime<Utc>) -> Record {
    let text = |k: &str| report.get(k).and_then(Value::as_str).unwrap_or("unknown");
    let dry_run = report.get("dry_run").and_then(Value::as_bool) == Some(true);
    let mut record = Record::new(namespace, at)
        .dimension("Direction", text("direction"))
        .dimension("Run", if dry_run { "dry-run" } else { "real" })
        .dimension("Outcome", text("outcome"))
        .dimension_set(&["Direction", "Run"])
        .dimension_set(&["Direction", "Run", "Outcome"])
        .metric("Executions", Unit::Count, 1.0)
        .property("execution", text("execution"));
    if dry_run {
        return record;
    }
    if let Some(rto) = report.get("rto_seconds").and_then(Value::as_f64) {
        record = record.metric("RtoSeconds", Unit::Seconds, rto);
    }
    let promoted = report
        .get("timeline")
        .and_then(Value::as_array)
        .is_some_and(|t| {
            t.iter()
                .any(|s| s.get("step") == Some(&json!("promote-db")))
        });
    match report.get("rpo_seconds").and_then(Value::as_f64) {
        Some(rpo) => record = record.metric("RpoSeconds", Unit::Seconds, rpo),
        None if promoted => record = record.metric("RpoUnknown", Unit::Count, 1.0),
        None => {}
    }
    record
}

/// One readiness check's result: `ReadinessFailures` 1 (fail) or 0 (pass or warn), `ReadinessWarnings` likewise,
/// by `Check`.
pub fn readiness_check(
    namespace: &str,
    check: &str,
    failed: bool,
    warned: bool,
    at: DateTime<Utc>,
) -> Record {
    Record::new(namespace, at)
        .dimension("Check", check)
        .dimension_set(&["Check"])
        .metric(
            "ReadinessFailures",
            Unit::Count,
            f64::from(u8::from(failed)),
        )
        .metric(
            "ReadinessWarnings",
            Unit::Count,
            f64::from(u8::from(warned)),
        )
}

/// The evaluation's totals under `Check=all`: the alarm's metric.
pub fn readiness_total(
    namespace: &str,
    failures: usize,
    warnings: usize,
    at: DateTime<Utc>,
) -> Record {
    Record::new(namespace, at)
        .dimension("Check", READINESS_ALL)
        .dimension_set(&["Check"])
        .metric("ReadinessFailures", Unit::Count, failures as f64)
        .metric("ReadinessWarnings", Unit::Count, warnings as f64)
}

/// The `Check` value of the readiness totals (like the probe's `Target=all`).
pub const READINESS_ALL: &str = "all";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn at() -> DateTime<Utc> {
        "2026-12-01T10:00:00.250Z".parse().unwrap()
    }

    /// The EMF specification's rules, checked on a document: `_aws` with a millisecond Timestamp and a
    /// CloudWatchMetrics array of directives, each with a Namespace, Dimensions (an array of arrays of strings,
    /// each naming a top-level string member, at most 30 per set) and Metrics (at most 100, each a Name whose
    /// top-level member is a number, a Unit from CloudWatch's list).
    fn assert_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_i64(), "Timestamp in ms: {doc}");
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace");
            assert!(valid_namespace(ns), "{ns}");
            for set in d["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a DimensionSet is an array");
                assert!(!set.is_empty() && set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension names are strings");
                    let value = doc[name]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: {doc}"));
                    assert!(!value.is_empty() && value.len() <= 1024 && value.is_ascii());
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("Name");
                assert!(doc[name].is_number(), "{name} is a number: {doc}");
                let unit = m["Unit"].as_str().expect("Unit");
                assert!(
                    ["Milliseconds", "Seconds", "Count"].contains(&unit),
                    "{unit}"
                );
            }
        }
    }

    #[test]
    fn a_step_invocation_is_an_emf_document_with_duration_and_outcome() {
        let out =
            json!({"step": "promote-db", "action": "status", "dry_run": false, "done": false});
        let r = step_invocation(
            "pilotlight",
            "promote-db",
            Duration::from_millis(1234),
            &Ok(out),
            at(),
        );
        let doc = r.to_json();
        assert_emf(&doc);
        assert_eq!(doc["_aws"]["Timestamp"], 1_796_119_200_250_i64);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "pilotlight"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Step"], ["Step", "Outcome"]])
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "StepDuration", "Unit": "Milliseconds"}, {"Name": "StepInvocations", "Unit": "Count"}])
        );
        assert_eq!(
            (
                &doc["Step"],
                &doc["Outcome"],
                &doc["StepDuration"],
                &doc["StepInvocations"]
            ),
            (
                &json!("promote-db"),
                &json!("waiting"),
                &json!(1234.0),
                &json!(1.0)
            )
        );
        assert_eq!(
            (&doc["action"], &doc["dry_run"]),
            (&json!("status"), &json!(false))
        );
        // One line: a log event.
        assert!(!doc.to_string().contains('\n'));
    }

    #[test]
    fn outcomes_are_a_few_fixed_words() {
        assert_eq!(outcome(&Ok(json!({"done": true}))), "done");
        assert_eq!(outcome(&Ok(json!({"done": false}))), "waiting");
        assert_eq!(
            outcome(&Ok(json!({"outcome": "skipped", "reason": "cooldown"}))),
            "skipped"
        );
        // Not a word (could be anything): never a dimension value.
        assert_eq!(
            outcome(&Ok(json!({"outcome": "Started at 10:00 by ops"}))),
            "ok"
        );
        assert_eq!(outcome(&Ok(json!({"healthy": true}))), "ok");
        let e = Error::new(ErrorKind::Transient, "slow");
        assert_eq!(outcome(&Err(e)), "pilotlight.Transient");
    }

    #[test]
    fn a_real_execution_reports_rto_and_rpo_and_an_unknown_rpo_is_counted_not_a_number() {
        let report = json!({"execution": "arn:aws:states:ap-northeast-1:1:execution:sm:failover-1",
            "direction": "failover", "dry_run": false, "outcome": "succeeded",
            "rto_seconds": 182.5, "rpo_seconds": 4.0,
            "timeline": [{"step": "promote-db"}, {"step": "shift-traffic"}]});
        let doc = execution("pilotlight", &report, at()).to_json();
        assert_emf(&doc);
        assert_eq!(
            (&doc["RtoSeconds"], &doc["RpoSeconds"]),
            (&json!(182.5), &json!(4.0))
        );
        assert!(doc.get("RpoUnknown").is_none());
        assert_eq!(
            (&doc["Direction"], &doc["Run"], &doc["Outcome"]),
            (&json!("failover"), &json!("real"), &json!("succeeded"))
        );

        let mut unknown = report.clone();
        unknown["rpo_seconds"] = Value::Null;
        let doc = execution("pilotlight", &unknown, at()).to_json();
        assert_emf(&doc);
        assert_eq!(doc["RpoUnknown"], json!(1.0));
        assert!(doc.get("RpoSeconds").is_none());
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Executions", "RtoSeconds", "RpoUnknown"]);

        // Failed before the promotion: there is no RPO to know, so nothing is counted as unknown.
        let early = json!({"direction": "failover", "dry_run": false, "outcome": "failed",
            "rto_seconds": null, "rpo_seconds": null, "timeline": [{"step": "preflight"}]});
        let doc = execution("pilotlight", &early, at()).to_json();
        assert_emf(&doc);
        assert_eq!(names_of(&doc), ["Executions"]);
    }

    fn names_of(doc: &Value) -> Vec<String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_dry_run_counts_as_an_execution_without_rto_or_rpo() {
        let report = json!({"direction": "failover", "dry_run": true, "outcome": "succeeded",
            "rto_seconds": null, "rpo_seconds": 0.0, "timeline": [{"step": "promote-db"}]});
        let doc = execution("ops/dr", &report, at()).to_json();
        assert_emf(&doc);
        assert_eq!(doc["Run"], "dry-run");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ops/dr");
        assert_eq!(names_of(&doc), ["Executions"]);
    }

    #[test]
    fn readiness_failures_per_check_and_in_total() {
        let doc = readiness_check("pilotlight", "dr-replica", true, false, at()).to_json();
        assert_emf(&doc);
        assert_eq!(
            (
                &doc["Check"],
                &doc["ReadinessFailures"],
                &doc["ReadinessWarnings"]
            ),
            (&json!("dr-replica"), &json!(1.0), &json!(0.0))
        );
        let doc = readiness_total("pilotlight", 2, 1, at()).to_json();
        assert_emf(&doc);
        assert_eq!(
            (&doc["Check"], &doc["ReadinessFailures"]),
            (&json!("all"), &json!(2.0))
        );
    }

    #[test]
    fn values_are_kept_valid_and_a_nan_is_never_written() {
        let r = Record::new("pilotlight", at())
            .dimension("Step", "dé\u{7}tect")
            .dimension("Empty", " ")
            .dimension_set(&["Step", "Empty", "Missing"])
            .metric("Lag", Unit::Seconds, f64::NAN)
            .metric("Calls", Unit::Count, 2.0);
        let doc = r.to_json();
        assert_emf(&doc);
        assert_eq!(doc["Step"], "d??tect");
        assert_eq!(doc["Empty"], "none");
        assert!(doc.get("Lag").is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Step", "Empty"]])
        );
    }

    #[test]
    fn namespaces_cloudwatch_refuses_are_recognised() {
        assert!(valid_namespace("pilotlight"));
        assert!(valid_namespace("shop/pilotlight-prod"));
        for bad in ["", " ", "AWS/Lambda", ":x", "päd", &"x".repeat(256)] {
            assert!(!valid_namespace(bad), "{bad:?}");
        }
    }
}
