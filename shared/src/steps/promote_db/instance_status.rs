//! What a DB instance status means for promote-db: fine, wait ("not yet"), or refuse. Pure ([`classify`]).
//!
//! The statuses are AWS's documented list ("Viewing Amazon RDS DB instance status", RDS User Guide,
//! `DescribeDBInstances` `DBInstanceStatus`). A status that passes on its own — a backup window, a modification,
//! a minor-version upgrade, storage optimisation — is a "not yet": the step reports `done: false` with
//! "waiting: <instance> is <status>" and the state machine's poll loop asks again (bounded by `max_polls`, then
//! `pilotlight.PollLimitExceeded`). Before, these were errors retried for about 4 minutes by the retry policy, and a
//! routine backup window could fail a failover. A status that needs an operator (failed, incompatible-*, lost KMS
//! access, storage full, stopped, being deleted) is a refusal: waiting cannot help, the report says what to check.
//! A status not on the list is refused too, naming it: pilotlight does not guess what a new status means.
//!
//! AWS's `InvalidDBInstanceState` answer (PromoteReadReplica, CreateDBInstanceReadReplica, ModifyDBInstance on an
//! instance that changed state since it was read) is the same "not yet" ([`is_not_yet`]).
//!
//! An Aurora global database is judged the same way ([`classify_cluster`]): AWS's DB cluster statuses ("Viewing DB
//! cluster status", Aurora User Guide) are the instance ones plus a few of their own ([`CLUSTER_TRANSIENT`],
//! [`CLUSTER_REFUSALS`]), and a global cluster shows `switching-over` / `failing-over` while its writer moves.
//! `InvalidDBClusterStateFault` / `InvalidGlobalClusterStateFault` from SwitchoverGlobalCluster or
//! FailoverGlobalCluster (a member cluster or the global cluster busy) are a "not yet" too.

use crate::error::Error;

/// The verdict on one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// `available`: the instance accepts the call.
    Available,
    /// Passes on its own within minutes (or hours, for storage optimisation): wait, polled by the state machine.
    Transient,
    /// Needs an operator (or is unknown): waiting cannot help.
    Refusal,
}

/// Statuses that pass on their own. `creating` is here: a replica being created becomes available (the graceful path
/// creates one and polls it). `starting` ends in `available`; `stopping` ends in `stopped`, a refusal, so it is one.
pub const TRANSIENT: &[&str] = &[
    "backing-up",
    "backtracking",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "creating",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "storage-config-upgrade",
    "storage-optimization",
    "upgrading",
];

/// Documented statuses from which the instance does not become available without an operator.
pub const REFUSALS: &[&str] = &[
    "delete-precheck",
    "deleting",
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "stopped",
    "stopping",
    "storage-full",
];

pub const AVAILABLE: &str = "available";

/// DB cluster (and global cluster) statuses that pass on their own, besides [`TRANSIENT`]: a writer moving between
/// clusters or instances, a promotion, a migration, an IAM authentication change.
pub const CLUSTER_TRANSIENT: &[&str] = &[
    "failing-over",
    "migrating",
    "preparing-data-migration",
    "promoting",
    "switching-over",
    "update-iam-db-auth",
];

/// DB cluster statuses that need an operator, besides [`REFUSALS`].
pub const CLUSTER_REFUSALS: &[&str] = &["cloning-failed", "migration-failed"];

/// Pure: what `status` means for a call that needs the instance available.
pub fn classify(status: &str) -> StatusClass {
    if status == AVAILABLE {
        StatusClass::Available
    } else if TRANSIENT.contains(&status) {
        StatusClass::Transient
    } else {
        StatusClass::Refusal
    }
}

/// Pure: what a DB cluster's or a global cluster's `status` means for a call that needs it available.
pub fn classify_cluster(status: &str) -> StatusClass {
    if CLUSTER_TRANSIENT.contains(&status) {
        StatusClass::Transient
    } else {
        classify(status)
    }
}

/// Whether `status` passes on its own (a "not yet").
pub fn is_transient(status: &str) -> bool {
    classify(status) == StatusClass::Transient
}

/// The report's message for a wait: "waiting: <instance> is <status> ...".
pub fn waiting(instance: &str, region: &str, status: &str, then: &str) -> String {
    waiting_for(&format!("{instance} in {region}"), status, then)
}

/// The report's message for a wait on `what` (an instance in its region, a global cluster): "waiting: <what> is ...".
pub fn waiting_for(what: &str, status: &str, then: &str) -> String {
    format!(
        "waiting: {what} is {status}, which passes on its own; {then} once it is available (polled by the state \
         machine, bounded by max_polls). If it stays {status}, check its events and pending modifications in the RDS \
         console"
    )
}

/// Why an instance in a refusal status cannot be used, for the error message.
pub fn refusal_hint(status: &str) -> &'static str {
    if !REFUSALS.contains(&status) && !CLUSTER_REFUSALS.contains(&status) {
        return "a status pilotlight does not know (not in AWS's documented DB instance status list), so it does not \
                guess whether it passes";
    }
    match status {
        "storage-full" => "its storage is full: increase the allocated storage",
        "stopped" | "stopping" => "it is stopped (or stopping): start it",
        "deleting" | "delete-precheck" => "it is being deleted",
        "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable" => {
            "RDS cannot use its KMS key: re-enable the key (and its grants), then start the instance"
        }
        s if s.starts_with("incompatible-") => {
            "RDS cannot start it with its current configuration: fix the named setting"
        }
        "cloning-failed" | "migration-failed" => {
            "its clone or migration failed: it holds no usable copy of the data"
        }
        _ => "it needs an operator",
    }
}

/// AWS answered that the instance (Aurora: a member cluster, or the global cluster) is not in a state for this call
/// (it changed since it was read): a "not yet".
pub fn is_not_yet(e: &Error) -> bool {
    matches!(
        e.aws_code.as_deref(),
        Some(
            "InvalidDBInstanceState"
                | "InvalidDBInstanceStateFault"
                | "InvalidDBClusterStateFault"
                | "InvalidGlobalClusterStateFault"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented DB instance statuses, every one of them (RDS User Guide, "Viewing Amazon RDS DB instance
    /// status"), with the verdict promote-db gives.
    const DOCUMENTED: &[(&str, StatusClass)] = &[
        ("available", StatusClass::Available),
        ("backing-up", StatusClass::Transient),
        ("backtracking", StatusClass::Transient),
        ("configuring-enhanced-monitoring", StatusClass::Transient),
        ("configuring-iam-database-auth", StatusClass::Transient),
        ("configuring-log-exports", StatusClass::Transient),
        ("converting-to-vpc", StatusClass::Transient),
        ("creating", StatusClass::Transient),
        ("delete-precheck", StatusClass::Refusal),
        ("deleting", StatusClass::Refusal),
        ("failed", StatusClass::Refusal),
        ("inaccessible-encryption-credentials", StatusClass::Refusal),
        (
            "inaccessible-encryption-credentials-recoverable",
            StatusClass::Refusal,
        ),
        ("incompatible-network", StatusClass::Refusal),
        ("incompatible-option-group", StatusClass::Refusal),
        ("incompatible-parameters", StatusClass::Refusal),
        ("incompatible-restore", StatusClass::Refusal),
        ("insufficient-capacity", StatusClass::Refusal),
        ("maintenance", StatusClass::Transient),
        ("modifying", StatusClass::Transient),
        ("moving-to-vpc", StatusClass::Transient),
        ("rebooting", StatusClass::Transient),
        ("renaming", StatusClass::Transient),
        ("resetting-master-credentials", StatusClass::Transient),
        ("restore-error", StatusClass::Refusal),
        ("starting", StatusClass::Transient),
        ("stopped", StatusClass::Refusal),
        ("stopping", StatusClass::Refusal),
        ("storage-config-upgrade", StatusClass::Transient),
        ("storage-full", StatusClass::Refusal),
        ("storage-optimization", StatusClass::Transient),
        ("upgrading", StatusClass::Transient),
    ];

    #[test]
    fn every_documented_status_has_its_verdict() {
        for (status, want) in DOCUMENTED {
            assert_eq!(classify(status), *want, "{status}");
        }
        // The lists hold exactly the documented statuses, each once.
        let listed = 1 + TRANSIENT.len() + REFUSALS.len();
        assert_eq!(listed, DOCUMENTED.len());
        for s in TRANSIENT.iter().chain(REFUSALS) {
            assert!(DOCUMENTED.iter().any(|(d, _)| d == s), "{s}");
            assert!(!(TRANSIENT.contains(s) && REFUSALS.contains(s)), "{s}");
        }
    }

    #[test]
    fn an_unknown_status_is_refused_and_says_so() {
        assert_eq!(classify("brand-new-status"), StatusClass::Refusal);
        assert_eq!(classify(""), StatusClass::Refusal);
        assert_eq!(classify("Available"), StatusClass::Refusal);
        assert!(refusal_hint("brand-new-status").contains("does not know"));
        assert!(refusal_hint("storage-full").contains("storage"));
        assert!(refusal_hint("incompatible-parameters").contains("configuration"));
        assert!(refusal_hint("inaccessible-encryption-credentials").contains("KMS"));
    }

    /// AWS's documented DB cluster statuses that are not instance statuses (Aurora User Guide, "Viewing DB cluster
    /// status"), and the global cluster's switch statuses, with their verdicts. The shared ones (backing-up,
    /// maintenance, modifying, renaming, resetting-master-credentials, storage-optimization, upgrading, stopped,
    /// deleting, ...) mean for a cluster what they mean for an instance.
    const CLUSTER_ONLY: &[(&str, StatusClass)] = &[
        ("cloning-failed", StatusClass::Refusal),
        ("failing-over", StatusClass::Transient),
        ("migrating", StatusClass::Transient),
        ("migration-failed", StatusClass::Refusal),
        ("preparing-data-migration", StatusClass::Transient),
        ("promoting", StatusClass::Transient),
        ("switching-over", StatusClass::Transient),
        ("update-iam-db-auth", StatusClass::Transient),
    ];

    #[test]
    fn every_documented_cluster_status_has_its_verdict() {
        for (status, want) in CLUSTER_ONLY {
            assert_eq!(classify_cluster(status), *want, "{status}");
        }
        assert_eq!(
            CLUSTER_TRANSIENT.len() + CLUSTER_REFUSALS.len(),
            CLUSTER_ONLY.len()
        );
        for s in CLUSTER_TRANSIENT.iter().chain(CLUSTER_REFUSALS) {
            assert!(CLUSTER_ONLY.iter().any(|(d, _)| d == s), "{s}");
            assert!(
                !DOCUMENTED.iter().any(|(d, _)| d == s),
                "{s} is an instance status too"
            );
        }
        // The shared statuses keep the instance verdict.
        for (status, want) in DOCUMENTED {
            assert_eq!(classify_cluster(status), *want, "{status}");
        }
        for s in [
            "backing-up",
            "maintenance",
            "modifying",
            "renaming",
            "resetting-master-credentials",
            "storage-optimization",
            "upgrading",
        ] {
            assert_eq!(classify_cluster(s), StatusClass::Transient, "{s}");
        }
        assert_eq!(classify_cluster("brand-new-status"), StatusClass::Refusal);
        assert!(refusal_hint("migration-failed").contains("migration failed"));
        assert!(refusal_hint("brand-new-status").contains("does not know"));
    }

    #[test]
    fn invalid_cluster_states_are_not_yet() {
        let mut e = Error::new(crate::error::ErrorKind::Aws, "x");
        for code in [
            "InvalidDBClusterStateFault",
            "InvalidGlobalClusterStateFault",
        ] {
            e.aws_code = Some(code.into());
            assert!(is_not_yet(&e), "{code}");
        }
        e.aws_code = Some("GlobalClusterNotFoundFault".into());
        assert!(!is_not_yet(&e));
    }

    #[test]
    fn invalid_db_instance_state_is_not_yet() {
        let mut e = Error::new(crate::error::ErrorKind::Aws, "x");
        assert!(!is_not_yet(&e));
        e.aws_code = Some("InvalidDBInstanceState".into());
        assert!(is_not_yet(&e));
        e.aws_code = Some("DBInstanceNotFound".into());
        assert!(!is_not_yet(&e));
        let m = waiting(
            "web-db-replica",
            "ap-northeast-1",
            "backing-up",
            "promote-db promotes it",
        );
        assert!(
            m.starts_with("waiting: web-db-replica in ap-northeast-1 is backing-up"),
            "{m}"
        );
    }
}
