//! Fencing the side a failover leaves (docs/guarantees.md "Fencing"): what each fence call reports, in one shape
//! that the steps write and notify's report reads back.
//!
//! Fencing is best effort and never blocks the failover: the side being left may be the failed region, so every
//! call to it is bounded by that region's operation timeout, and whatever it could not do is reported as
//! `not_fenced` with the reason and retried later by the `fence` command. Fencing also never cuts the side that
//! serves: each call first checks that the side it fences is no longer the writer / no longer takes traffic.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The tag pilotlight writes on what it fenced: when (RFC 3339) and by which step.
pub const FENCED_AT_TAG: &str = "pilotlight:fenced-at";
pub const FENCED_BY_TAG: &str = "pilotlight:fenced-by";
/// The Auto Scaling group's min/desired/max before the fence took it to 0/0/0 (`2/4/8`): failback restores it.
pub const FENCED_CAPACITY_TAG: &str = "pilotlight:fenced-capacity";

/// What to do when something is not fenced.
pub const RETRY_HINT: &str =
    "retry with the detect command {\"command\": \"fence\"} once the region answers";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceStatus {
    /// This call fenced it.
    Fenced,
    /// It was fenced already (by an earlier fence, or by AWS itself): nothing to do.
    AlreadyFenced,
    /// It could not be fenced now (the region did not answer, a status that forbids it, the side still serves).
    NotFenced,
    /// Dry-run: it would be fenced.
    WouldFence,
}

impl FenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceStatus::Fenced => "fenced",
            FenceStatus::AlreadyFenced => "already fenced",
            FenceStatus::NotFenced => "not fenced",
            FenceStatus::WouldFence => "would fence",
        }
    }
}

/// One fence call's outcome (the report's `saw.fence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceOutcome {
    /// What is fenced, in the domain's words: `old writer`, `primary Auto Scaling group`, `primary traffic dial`.
    pub what: String,
    pub resource: String,
    pub region: String,
    pub status: FenceStatus,
    pub detail: String,
}

impl FenceOutcome {
    pub fn new(
        what: &str,
        resource: &str,
        region: &str,
        status: FenceStatus,
        detail: impl Into<String>,
    ) -> Self {
        FenceOutcome {
            what: what.to_string(),
            resource: resource.to_string(),
            region: region.to_string(),
            status,
            detail: detail.into(),
        }
    }

    /// The one line the report and the step's message show.
    pub fn line(&self) -> String {
        let retry = if self.status == FenceStatus::NotFenced {
            format!("; {RETRY_HINT}")
        } else {
            String::new()
        };
        format!(
            "{} {} ({}): {}: {}{retry}",
            self.what,
            self.resource,
            self.region,
            self.status.as_str(),
            self.detail
        )
    }

    /// Done fencing: fenced now or before (a dry-run's "would fence" is not).
    pub fn is_fenced(&self) -> bool {
        matches!(
            self.status,
            FenceStatus::Fenced | FenceStatus::AlreadyFenced
        )
    }
}

/// Runs calls to the side being left within `budget` (its operation timeout): the answer, or why there is none.
pub async fn within<T>(
    budget: Duration,
    calls: impl Future<Output = crate::Result<T>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(budget, calls).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.message),
        Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_fenced_line_says_how_to_retry() {
        let o = FenceOutcome::new(
            "old writer",
            "web-db",
            "ap-northeast-2",
            FenceStatus::NotFenced,
            "no answer within 800 ms",
        );
        assert!(!o.is_fenced());
        assert!(o.line().contains("not fenced: no answer within 800 ms"));
        assert!(o.line().contains("\"command\": \"fence\""), "{}", o.line());
        let done = FenceOutcome {
            status: FenceStatus::AlreadyFenced,
            ..o
        };
        assert!(done.is_fenced() && !done.line().contains("retry"));
    }

    #[tokio::test]
    async fn within_bounds_a_call_that_never_answers() {
        let never = std::future::pending::<crate::Result<()>>();
        let e = within(Duration::from_millis(20), never).await.unwrap_err();
        assert_eq!(e, "no answer within 20 ms");
    }
}
