//! Production-ready after promotion: the plan may name the class and Multi-AZ the promoted instance should have
//! (`PILOTLIGHT_<SIDE>_DB_PROMOTED_INSTANCE_CLASS`, `PILOTLIGHT_<SIDE>_DB_PROMOTED_MULTI_AZ`; the side is the
//! target of the run, so a failback sizes the primary). A pilot-light replica is usually small and Single-AZ; once it
//! is the writer it carries production.
//!
//! When: in the call that first sees the target writable (`status`, or `start` on a re-run that finds it already
//! the writer). How: observe, then act once — [`decide`] compares the wanted values with the instance's current
//! ones and its `PendingModifiedValues`; only what is neither applied nor pending is asked for, in one
//! ModifyDBInstance with ApplyImmediately. A second call sees the change pending (or applied) and asks nothing.
//! pilotlight does **not wait** for the modification: the database already takes writes, and the failover's RTO
//! must not include a resize that can take many minutes. The report says what was asked and what AWS shows pending.
//! A failed ModifyDBInstance is a warning in the report (`saw.promoted.warning` and the message), never a failed
//! failover: the database is the writer either way, and the operator can modify it by hand.
//!
//! The trade-off, said plainly: changing the class of a **Single-AZ** instance restarts it — minutes in which the
//! freshly promoted writer is unavailable, right after the failover. On a Multi-AZ instance AWS changes the standby
//! first and fails over to it (an interruption of about a minute or two). Going Single-AZ -> Multi-AZ has no
//! downtime (a standby is built in the background; I/O may be slower meanwhile). Both are asked together when both
//! are set, so a class change on a Single-AZ instance restarts it once. If the pilot-light class can carry the load
//! for a while, set only Multi-AZ and resize later in a maintenance window.

use serde::Serialize;
use serde_json::json;

use super::instance_status::is_not_yet;
use crate::aws::rds::{InstanceView, Modification, PendingView, modify_db_instance};
use crate::plan::DbSidePlan;
use crate::step::StepReport;

/// One setting: what the plan wants, what the instance has, what AWS has pending, and what that means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting<T> {
    pub wanted: T,
    pub current: Option<T>,
    pub pending: Option<T>,
    /// `applied` (current = wanted), `pending` (AWS has it pending) or `ask` (ModifyDBInstance asks for it).
    pub state: &'static str,
}

impl<T: PartialEq + Clone> Setting<T> {
    fn of(wanted: &T, current: Option<&T>, pending: Option<&T>) -> Self {
        let state = if current == Some(wanted) {
            "applied"
        } else if pending == Some(wanted) {
            "pending"
        } else {
            "ask"
        };
        Setting {
            wanted: wanted.clone(),
            current: current.cloned(),
            pending: pending.cloned(),
            state,
        }
    }
}

/// What [`decide`] found: each setting the plan names, and the modification still to ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PromotedDecision {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<Setting<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_az: Option<Setting<bool>>,
    /// Empty when everything is applied or pending.
    pub ask: Modification,
}

/// Pure: what is left to ask for on `view` so it has what `want` names. Nothing set in the plan: None.
pub fn decide(view: &InstanceView, want: &DbSidePlan) -> Option<PromotedDecision> {
    if want.promoted_instance_class.is_none() && want.promoted_multi_az.is_none() {
        return None;
    }
    let pending = &view.settings.pending;
    let instance_class = want.promoted_instance_class.as_ref().map(|w| {
        Setting::of(
            w,
            view.instance_class.as_ref(),
            pending.instance_class.as_ref(),
        )
    });
    let multi_az = want.promoted_multi_az.as_ref().map(|w| {
        Setting::of(
            w,
            view.settings.multi_az.as_ref(),
            pending.multi_az.as_ref(),
        )
    });
    let ask = Modification {
        instance_class: instance_class
            .as_ref()
            .filter(|s| s.state == "ask")
            .map(|s| s.wanted.clone()),
        multi_az: multi_az
            .as_ref()
            .filter(|s| s.state == "ask")
            .map(|s| s.wanted),
    };
    Some(PromotedDecision {
        instance_class,
        multi_az,
        ask,
    })
}

/// What the report shows of the production-ready modification (`saw.promoted`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotedSaw {
    #[serde(flatten)]
    pub decision: PromotedDecision,
    /// The ModifyDBInstance sent (ApplyImmediately), if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<Modification>,
    /// PendingModifiedValues in AWS's answer to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_after: Option<PendingView>,
    /// The modification could not be asked for: the failover is not failed for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Not waited for (see the module documentation).
    pub waited: bool,
}

impl PromotedSaw {
    /// One clause for the report's message.
    pub fn summary(&self, dry_run: bool) -> String {
        let described = |m: &Modification| {
            let mut parts = Vec::new();
            if let Some(c) = &m.instance_class {
                parts.push(format!("class {c}"));
            }
            if let Some(z) = m.multi_az {
                parts.push(format!("Multi-AZ {z}"));
            }
            parts.join(", ")
        };
        if let Some(w) = &self.warning {
            return format!("; WARNING: {w}");
        }
        match &self.asked {
            Some(m) => format!(
                "; asked AWS for {} (ModifyDBInstance, ApplyImmediately; not waited for: the database already takes \
                 writes)",
                described(m)
            ),
            None if dry_run && !self.decision.ask.is_empty() => format!(
                "; dry-run: would modify it to {} (ModifyDBInstance, ApplyImmediately) once promoted",
                described(&self.decision.ask)
            ),
            None => "; the plan's promoted class / Multi-AZ are applied or pending".to_string(),
        }
    }
}

/// Asks for what [`decide`] left (once: a later call sees it pending), never failing: an error becomes the
/// warning. `dry_run` only reports. The changes are recorded on `report`.
pub(super) async fn make_production_ready(
    rds: &aws_sdk_rds::Client,
    view: &InstanceView,
    want: &DbSidePlan,
    variable_prefix: &str,
    dry_run: bool,
    report: &mut StepReport,
) -> Option<PromotedSaw> {
    let decision = decide(view, want)?;
    let mut saw = PromotedSaw {
        decision,
        asked: None,
        pending_after: None,
        warning: None,
        waited: false,
    };
    let ask = saw.decision.ask.clone();
    if ask.is_empty() {
        return Some(saw);
    }
    let first = report.changes.len();
    if let Some(c) = &ask.instance_class {
        report.change(
            &view.arn,
            "ModifyDBInstance: DBInstanceClass (ApplyImmediately)",
            json!(view.instance_class),
            json!(c),
        );
    }
    if let Some(z) = ask.multi_az {
        report.change(
            &view.arn,
            "ModifyDBInstance: MultiAZ (ApplyImmediately)",
            json!(view.settings.multi_az),
            json!(z),
        );
    }
    if dry_run {
        return Some(saw);
    }
    match modify_db_instance(rds, &view.region, &view.instance, &ask).await {
        Ok(answer) => {
            saw.asked = Some(ask);
            saw.pending_after = answer.map(|a| a.settings.pending);
        }
        Err(e) => {
            for c in &mut report.changes[first..] {
                c.applied = false;
            }
            let what_next = if is_not_yet(&e) {
                "the instance changed state since it was read; a later promote-db status asks again, or modify it \
                 yourself"
            } else {
                "modify it yourself (RDS console or aws rds modify-db-instance --apply-immediately), and check the \
                 promote-db role's rds:ModifyDBInstance permission"
            };
            saw.warning = Some(format!(
                "the promoted instance {} is the writer, but making it production-ready ({}_DB_PROMOTED_*) failed: {}; \
                 {what_next}",
                view.instance, variable_prefix, e.message
            ));
        }
    }
    Some(saw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::promote_db::replica::tests::replica;

    fn want(class: Option<&str>, multi_az: Option<bool>) -> DbSidePlan {
        DbSidePlan {
            promoted_instance_class: class.map(str::to_string),
            promoted_multi_az: multi_az,
            kms_key_id: None,
        }
    }

    fn promoted(class: &str, multi_az: bool, pending: PendingView) -> InstanceView {
        let mut v = InstanceView {
            instance_class: Some(class.into()),
            replica_source: None,
            replication_status: None,
            ..replica()
        };
        v.settings.multi_az = Some(multi_az);
        v.settings.pending = pending;
        v
    }

    #[test]
    fn nothing_in_the_plan_asks_nothing() {
        assert_eq!(
            decide(
                &promoted("db.t3.micro", false, PendingView::default()),
                &want(None, None)
            ),
            None
        );
    }

    #[test]
    fn only_what_is_neither_applied_nor_pending_is_asked() {
        let plan = want(Some("db.r6g.xlarge"), Some(true));
        let d = decide(
            &promoted("db.t3.micro", false, PendingView::default()),
            &plan,
        )
        .unwrap();
        assert_eq!(d.ask.instance_class.as_deref(), Some("db.r6g.xlarge"));
        assert_eq!(d.ask.multi_az, Some(true));
        assert_eq!(d.instance_class.as_ref().unwrap().state, "ask");
        // Asked before: AWS shows both pending, so nothing is asked again.
        let pending = PendingView {
            instance_class: Some("db.r6g.xlarge".into()),
            multi_az: Some(true),
            backup_retention: None,
        };
        let d = decide(&promoted("db.t3.micro", false, pending), &plan).unwrap();
        assert!(d.ask.is_empty(), "{d:?}");
        assert_eq!(d.multi_az.as_ref().unwrap().state, "pending");
        // Applied: nothing either.
        let d = decide(
            &promoted("db.r6g.xlarge", true, PendingView::default()),
            &plan,
        )
        .unwrap();
        assert!(d.ask.is_empty());
        assert_eq!(d.instance_class.unwrap().state, "applied");
        // Partly: only the class is left.
        let d = decide(
            &promoted("db.t3.micro", true, PendingView::default()),
            &plan,
        )
        .unwrap();
        assert_eq!(
            d.ask,
            Modification {
                instance_class: Some("db.r6g.xlarge".into()),
                multi_az: None
            }
        );
        // A pending value other than the wanted one is asked over.
        let other = PendingView {
            instance_class: Some("db.r6g.large".into()),
            ..PendingView::default()
        };
        let d = decide(
            &promoted("db.t3.micro", true, other),
            &want(Some("db.r6g.xlarge"), None),
        )
        .unwrap();
        assert_eq!(d.ask.instance_class.as_deref(), Some("db.r6g.xlarge"));
    }

    #[test]
    fn the_summary_says_what_was_asked_and_warns_on_failure() {
        let d = decide(
            &promoted("db.t3.micro", false, PendingView::default()),
            &want(Some("db.r6g.xlarge"), Some(true)),
        )
        .unwrap();
        let mut saw = PromotedSaw {
            decision: d,
            asked: None,
            pending_after: None,
            warning: None,
            waited: false,
        };
        assert!(
            saw.summary(true)
                .contains("dry-run: would modify it to class db.r6g.xlarge, Multi-AZ true")
        );
        saw.asked = Some(saw.decision.ask.clone());
        assert!(saw.summary(false).contains("not waited for"));
        saw.warning = Some("boom".into());
        assert_eq!(saw.summary(false), "; WARNING: boom");
    }
}
