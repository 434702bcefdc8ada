//! probe: checks the primary region **from outside it**. A CloudWatch alarm can only watch metrics of its own
//! region, so the alarms on the primary's ALB live in the primary and go down with it; this function runs on an
//! EventBridge schedule in the DR region, GETs the plan's health URLs (`PILOTLIGHT_PROBE_URLS`: a check passes on a
//! 2xx/3xx status within `PILOTLIGHT_PROBE_TIMEOUT_MS`) and opens a TCP connection to the endpoints in
//! `PILOTLIGHT_PROBE_TCP`, all side by side, then publishes in the DR region's CloudWatch one `Healthy` metric
//! (1/0) per target (dimension `Target`), `Latency` (ms) for each answer, and the aggregate `Healthy`
//! `Target=all` (1 only when every target is healthy), which the template's alarm watches. See docs/probe.md.
//!
//! **A down target is data, not an error**: the invocation succeeds and reports what it saw. Only a failure to
//! publish is an error (`pilotlight.Transient` where the SDK says so) — and then no datapoint arrives, which the
//! alarm treats as breaching.
//!
//! HTTP client: no new stack. The AWS SDK's `default-https-client` already compiles hyper 1.12, hyper-util 0.1
//! (legacy client), hyper-rustls 0.27 and rustls 0.23 on aws-lc-rs with the native roots; the probe depends on
//! those same crates and versions with feature lists that are subsets of what the SDK build enables, so Cargo's
//! feature unification leaves every one of them (and every SDK crate) as it was: measured, adding the probe
//! recompiled only pilotlight-shared and linked one more binary (see the figures at the end of docs/probe.md).
//! reqwest would have added reqwest and serde_urlencoded and changed tower's/hyper-util's feature sets (rebuilding
//! the SDK crates above them) for a GET whose body is never read — not measured here, since it was not
//! needed.

mod check;
pub mod verdict;

use chrono::Utc;
use serde_json::Value;

use crate::aws::cloudwatch;
use crate::aws::cloudwatch::put_metric_data;
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::Use;
use crate::plan::ProbePlan;
use crate::runtime::{Context, StepEvent};

pub use check::run_one;
pub use verdict::{ProbeReport, Target};

/// IAM: the adapter calls the probe makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[Use::always(
    &cloudwatch::PUT_METRIC_DATA,
    "one metric per target, and Target=all",
)];

pub const STEP: &str = "probe";

/// Bound on publishing, so the function finishes well inside its 30 s even when CloudWatch hangs.
pub const PUBLISH_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

// The payload is a Scheduled Event or `{}` (verdict::parse_event); anything else is refused before any check.
impl StepEvent for verdict::Invocation {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        verdict::parse_event(&payload)
    }
}

/// Checks every target, publishes the round's datapoints in the DR region, returns what it saw.
pub async fn handle(ctx: &Context, invocation: verdict::Invocation) -> Result<ProbeReport> {
    let report = probe_with(
        &ctx.plan.probe,
        &ctx.plan.dr.region,
        ctx.aws.dr.cloudwatch(),
        invocation,
    )
    .await?;
    tracing::info!(healthy = report.healthy, message = %report.message, "probe");
    Ok(report)
}

/// [`handle`] with its parts given: the targets, the region and CloudWatch client the metrics go to.
pub async fn probe_with(
    plan: &ProbePlan,
    region: &str,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    invocation: verdict::Invocation,
) -> Result<ProbeReport> {
    let targets = verdict::targets(plan)?;
    if targets.iter().any(|t| matches!(t, Target::Http { .. })) {
        // Without TLS roots the probe cannot tell anything about the primary: its own failure, not a down target.
        check::ready().map_err(|e| Error::new(ErrorKind::Aws, format!("{STEP}: {e}")))?;
    }
    let started_at = Utc::now();
    let outcomes = check::run_all(&targets, plan.timeout).await;
    let checks: Vec<verdict::Check> = targets
        .iter()
        .zip(&outcomes)
        .map(|(t, (outcome, elapsed))| verdict::check(t, outcome, *elapsed, plan.timeout))
        .collect();
    let points = verdict::metric_points(&checks, started_at);
    match tokio::time::timeout(
        PUBLISH_BUDGET,
        put_metric_data(cloudwatch, &plan.namespace, &points),
    )
    .await
    {
        Ok(result) => result?,
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Transient,
                format!(
                    "PutMetricData on {} did not finish within {} s",
                    plan.namespace,
                    PUBLISH_BUDGET.as_secs()
                ),
            ));
        }
    }
    let scheduled_at = match invocation {
        verdict::Invocation::Scheduled { time, .. } => time,
        verdict::Invocation::Manual => None,
    };
    Ok(ProbeReport {
        step: STEP,
        region: region.to_string(),
        namespace: plan.namespace.clone(),
        scheduled_at,
        started_at,
        finished_at: Utc::now(),
        healthy: checks.iter().all(|c| c.healthy),
        message: verdict::summary(&checks),
        published: points.len(),
        checks,
    })
}
