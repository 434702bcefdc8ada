//! The preflight (docs/guarantees.md): before anything irreversible, every check a later step could refuse, read
//! only. Each step that can refuse has a `preflight` action (promote-db, scale-compute, shift-traffic); the flow
//! runs them side by side first (`flow::Flow::preflight`). Each check is a pure verdict over what was read — pass
//! or fail, with the value seen and the limit — and names the override that accepts it, if one may.
//!
//! A failed check whose override is on passes, marked `overridden`: the run records that the operator accepted
//! that risk. A preflight report's `saw` is a [`PreflightSaw`]; the state machine reads `saw.passed`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::step::Overrides;

/// One check: what was seen against what is allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name, e.g. `ami.age`, `db.replica`, `db.lag`.
    pub check: String,
    pub passed: bool,
    pub seen: Value,
    pub limit: Value,
    /// The override that would let a failed check through (none: only fixing the resource helps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_name: Option<String>,
    /// The check failed and its override is on: passed because the operator accepted the risk.
    #[serde(default)]
    pub overridden: bool,
    /// Passed, but the step will wait (a "not yet" state such as a replica backing up): reported, never a refusal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub message: String,
}

impl Check {
    pub fn pass(check: &str, seen: Value, limit: Value, message: impl Into<String>) -> Check {
        Check {
            check: check.to_string(),
            passed: true,
            seen,
            limit,
            override_name: None,
            overridden: false,
            warning: false,
            message: message.into(),
        }
    }

    /// Passed with a warning: nothing to refuse, but the step will wait ("will wait: ..." in the message).
    pub fn warn(check: &str, seen: Value, limit: Value, message: impl Into<String>) -> Check {
        Check {
            warning: true,
            message: format!("will wait: {}", message.into()),
            ..Check::pass(check, seen, limit, "")
        }
    }

    /// A failed check; with `override_name` on in `overrides` it passes, marked overridden.
    pub fn fail(
        check: &str,
        seen: Value,
        limit: Value,
        override_name: Option<&str>,
        overrides: &Overrides,
        message: impl Into<String>,
    ) -> Check {
        let on = override_name.is_some_and(|name| {
            overrides
                .named()
                .iter()
                .any(|(n, value)| *n == name && *value)
        });
        let message = message.into();
        Check {
            check: check.to_string(),
            passed: on,
            seen,
            limit,
            override_name: override_name.map(str::to_string),
            overridden: on,
            warning: false,
            message: match (on, override_name) {
                (true, Some(name)) => format!("{message}; accepted by {name}"),
                (false, Some(name)) => format!("{message}; to accept it, approve with {name}"),
                _ => message,
            },
        }
    }
}

/// What a preflight call saw: its checks and whether all passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightSaw {
    pub checks: Vec<Check>,
    pub passed: bool,
    pub findings: usize,
}

impl PreflightSaw {
    pub fn of(checks: Vec<Check>) -> Self {
        let findings = checks.iter().filter(|c| !c.passed).count();
        PreflightSaw {
            passed: findings == 0,
            findings,
            checks,
        }
    }

    /// The preflight call's report: done (the checks never wait), nothing changed, this as what it saw.
    pub fn into_report(
        self,
        mut report: crate::step::StepReport,
        step: &str,
    ) -> crate::step::StepReport {
        let message = self.summary(step);
        report.record_saw(&self);
        report.finish(true, message)
    }

    /// One line for the report's message.
    pub fn summary(&self, step: &str) -> String {
        if self.passed {
            let overridden: Vec<&str> = self
                .checks
                .iter()
                .filter(|c| c.overridden)
                .map(|c| c.check.as_str())
                .collect();
            let note = if overridden.is_empty() {
                String::new()
            } else {
                format!(" ({} accepted by override)", overridden.join(", "))
            };
            let warnings: Vec<String> = self
                .checks
                .iter()
                .filter(|c| c.warning)
                .map(|c| format!("{}: {}", c.check, c.message))
                .collect();
            let warned = if warnings.is_empty() {
                String::new()
            } else {
                format!("; warning: {}", warnings.join("; "))
            };
            format!(
                "{step} preflight: {} check(s) passed{note}{warned}; nothing was changed",
                self.checks.len()
            )
        } else {
            let failed: Vec<String> = self
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.check, c.message))
                .collect();
            format!(
                "{step} preflight: {} finding(s): {}; nothing was changed",
                self.findings,
                failed.join("; ")
            )
        }
    }
}

/// The failed checks of the latest preflight in an execution state (`$.steps.recheck` after an approval, else
/// `$.steps.preflight`: arrays of branch objects of step reports), and the overrides that would accept them.
pub fn findings_in(state: &Value) -> (Vec<Check>, Vec<String>) {
    let mut failed = Vec::new();
    let latest = ["recheck", "preflight"]
        .into_iter()
        .find(|p| state.pointer(&format!("/steps/{p}")).is_some());
    if let Some(phase) = latest {
        let branches = state
            .pointer(&format!("/steps/{phase}"))
            .and_then(Value::as_array);
        for branch in branches.into_iter().flatten() {
            for report in branch.as_object().into_iter().flat_map(|o| o.values()) {
                let Some(saw) = report.get("saw") else {
                    continue;
                };
                if let Ok(saw) = serde_json::from_value::<PreflightSaw>(saw.clone()) {
                    failed.extend(saw.checks.into_iter().filter(|c| !c.passed));
                }
            }
        }
    }
    let mut names: Vec<String> = failed
        .iter()
        .filter_map(|c| c.override_name.clone())
        .collect();
    names.sort();
    names.dedup();
    (failed, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_check_passes_only_with_its_own_override() {
        let none = Overrides::default();
        let c = Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &none,
            "old",
        );
        assert!(!c.passed && !c.overridden && c.message.contains("approve with allow_stale_ami"));
        let other = Overrides {
            allow_replica_lag: true,
            ..none
        };
        let c = Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &other,
            "old",
        );
        assert!(!c.passed);
        let stale = Overrides {
            allow_stale_ami: true,
            ..none
        };
        let c = Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &stale,
            "old",
        );
        assert!(c.passed && c.overridden && c.message.contains("accepted by allow_stale_ami"));
        let c = Check::fail(
            "asg.exists",
            json!(null),
            json!("exists"),
            None,
            &stale,
            "missing",
        );
        assert!(!c.passed, "no override accepts a missing group");
        let saw = PreflightSaw::of(vec![c.clone(), Check::pass("x", json!(1), json!(2), "ok")]);
        // A warning passes and is said.
        let w = Check::warn(
            "db.replica",
            json!("backing-up"),
            json!("available"),
            "x is backing-up",
        );
        assert!(w.passed && w.warning && w.message == "will wait: x is backing-up");
        let warned = PreflightSaw::of(vec![w]);
        assert!(
            warned.passed
                && warned
                    .summary("promote-db")
                    .contains("warning: db.replica: will wait")
        );
        assert_eq!((saw.passed, saw.findings), (false, 1));
        assert!(saw.summary("scale-compute").contains("asg.exists: missing"));
    }

    #[test]
    fn findings_are_read_back_from_the_state() {
        let failed = Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &Overrides::default(),
            "old",
        );
        let saw = PreflightSaw::of(vec![
            failed,
            Check::pass("asg.exists", json!("web"), json!("exists"), "ok"),
        ]);
        let state = json!({"steps": {"preflight": [
            {"preflight_scale_compute": {"saw": saw}},
            {"preflight_promote_db": {"saw": PreflightSaw::of(vec![])}},
        ]}});
        let (checks, names) = findings_in(&state);
        assert_eq!(checks.len(), 1);
        assert_eq!(names, vec!["allow_stale_ami".to_string()]);
        assert!(findings_in(&json!({})).0.is_empty());
    }
}
