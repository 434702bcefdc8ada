//! promote-db `fence`: the old writer (the database of the side a failover leaves) stops taking writes, so writers
//! that do not come through Global Accelerator (jobs, workers, direct DNS) cannot split the data.
//!
//! RDS: **StopDBInstance**, chosen over making it read-only because it blocks every writer whatever its way in, is
//! reversible (StartDBInstance), and needs no parameter group change (`read_only` lives in a DB parameter group,
//! often shared with other instances, and a custom one would have to be swapped in with a reboot). The instance
//! is tagged `pilotlight:fenced-at` / `pilotlight:fenced-by` first. AWS starts a stopped instance again by itself
//! after 7 days: the `fence` command stops it again (failback refuses while it is writable, see
//! [`super::preflight`]). AWS also refuses to stop an instance that still lists read replicas; the report says so.
//!
//! Aurora global: nothing to do, AWS fences. A switchover demotes the old primary to a read-only secondary; a
//! failover with AllowDataLoss (ungraceful) rejoins the old primary cluster as a read-only secondary once its
//! region recovers. The step only observes the global cluster (from the DR region) and reports what it sees.
//!
//! Best effort (docs/guarantees.md "Fencing"): the calls to the failed region are bounded by its operation
//! timeout and every failure is an outcome (`not_fenced`, retried by the `fence` command), never an error. It never
//! stops the old writer before the DR side is the writer.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use super::{AVAILABLE, STEP, describe_global_cluster, describe_instance};
use crate::aws::rds::{GlobalClusterView, InstanceView, add_tags, stop_db_instance};
use crate::fence::{FENCED_AT_TAG, FENCED_BY_TAG, FenceOutcome, FenceStatus, within};
use crate::plan::{DatabasePlan, Direction, Side};
use crate::preflight::Check;
use crate::runtime::Context;
use crate::step::Overrides;
use crate::step::{StepInput, StepReport};

const WHAT: &str = "old writer";
const STOPPED: &str = "stopped";
const STOPPING: &str = "stopping";

/// What the fence does with the old writer (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldWriterFence {
    Stop,
    AlreadyFenced(String),
    NotNow(String),
}

/// Decides from the new writer (DR) and the old one (the side left).
pub fn decide_old_writer(new_writer: &InstanceView, old: &InstanceView) -> OldWriterFence {
    if !new_writer.writable() {
        return OldWriterFence::NotNow(format!(
            "{} in {} is not the writer yet (status {}{}): stopping the old writer now would leave no writer",
            new_writer.instance,
            new_writer.region,
            new_writer.status,
            if new_writer.is_replica() {
                ", still a read replica"
            } else {
                ""
            }
        ));
    }
    match old.status.as_str() {
        STOPPED => OldWriterFence::AlreadyFenced(format!("{STOPPED} (takes no writes)")),
        STOPPING => OldWriterFence::AlreadyFenced(format!("{STOPPING} (takes no writes)")),
        _ if old.is_replica() => OldWriterFence::AlreadyFenced(format!(
            "a read replica of {} (read only)",
            old.replica_source.as_deref().unwrap_or("another instance")
        )),
        AVAILABLE => OldWriterFence::Stop,
        s => OldWriterFence::NotNow(format!("status {s}: StopDBInstance needs it available")),
    }
}

/// Aurora (pure): what AWS did with the old primary cluster, seen in the global cluster.
pub fn decide_aurora_fence(
    g: &GlobalClusterView,
    old_arn: &str,
    new_arn: &str,
) -> (FenceStatus, String) {
    let id = &g.global_cluster;
    if g.writer() != Some(new_arn) {
        return (
            FenceStatus::NotFenced,
            format!("{new_arn} is not the writer of global cluster {id} yet"),
        );
    }
    match g.members.iter().find(|m| m.cluster_arn == old_arn) {
        Some(m) if !m.is_writer => (
            FenceStatus::AlreadyFenced,
            format!(
                "AWS made it a read-only secondary of global cluster {id} (synchronization {})",
                m.synchronization.as_deref().unwrap_or("unknown")
            ),
        ),
        Some(_) => (
            FenceStatus::NotFenced,
            format!("still the writer of global cluster {id}"),
        ),
        None => (
            FenceStatus::NotFenced,
            format!(
                "not a member of global cluster {id} now: after a failover with data loss AWS rejoins the old \
                 primary cluster as a read-only secondary once its region recovers; until then it is not seen \
                 from the DR region: check it"
            ),
        ),
    }
}

/// Failback's preflight (`db.old-writer`, pure): the instance in the failback's target region that is not the
/// failback's source must not be writable. A writable one was never fenced (or AWS started it again after 7
/// days): writes may have reached it that the source does not have, and the failback would retire it.
pub fn check_old_writer(
    slot: Option<&InstanceView>,
    source: &InstanceView,
    overrides: &Overrides,
) -> Check {
    let limit = json!("not writable: stopped, or a read replica of the failback's source");
    let Some(old) = slot else {
        return Check::pass(
            "db.old-writer",
            json!(null),
            limit,
            "no old writer in the target region",
        );
    };
    let seen = json!({"instance": old.instance, "status": old.status, "is_replica": old.is_replica(), "writable": old.writable()});
    if !old.writable() {
        return Check::pass(
            "db.old-writer",
            seen,
            limit,
            format!(
                "{} in {} takes no writes (status {}{})",
                old.instance,
                old.region,
                old.status,
                if old.is_replica() {
                    ", a read replica"
                } else {
                    ""
                }
            ),
        );
    }
    Check::fail(
        "db.old-writer",
        seen,
        limit,
        Some("allow_writable_old_writer"),
        overrides,
        format!(
            "the old writer {} in {} is still writable and is not the failback's source {} ({}): it was not fenced              (or AWS started it again after 7 days of being stopped) and may hold writes the source lacks. Fence it              with {{\"command\": \"fence\"}} and check it; failing back retires it (renamed, kept)",
            old.instance, old.region, source.instance, source.region
        ),
    )
}

#[derive(Serialize)]
struct FenceSaw<'a> {
    fence: &'a FenceOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_writer_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_writer_status: Option<&'a str>,
}

pub async fn fence(ctx: &Context, input: &StepInput) -> StepReport {
    let mut report = StepReport::begin(STEP, input);
    let (old_side, new_side) = (input.direction.source(), input.direction.target());
    let old_region = ctx.plan.region(old_side);
    let old_resource = ctx.plan.database.resource(old_side);
    let outcome = |status, detail: String| {
        FenceOutcome::new(WHAT, old_resource, &old_region.region, status, detail)
    };
    if input.direction != Direction::Failover {
        let o = outcome(
            FenceStatus::NotFenced,
            "fence follows a failover (failback's reprotect turns the DR writer into a replica)"
                .into(),
        );
        report.record_saw(&FenceSaw {
            fence: &o,
            new_writer_status: None,
            old_writer_status: None,
        });
        return report.finish(true, o.line());
    }
    let (o, new_status, old_status) = match &ctx.plan.database {
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let new_region = ctx.plan.region(new_side);
            let read = describe_global_cluster(
                ctx.aws.region(new_side).rds(),
                &new_region.region,
                global_cluster,
            )
            .await;
            let o = match read {
                Ok(g) => {
                    let (status, detail) =
                        decide_aurora_fence(&g, old_resource, ctx.plan.database.resource(new_side));
                    outcome(status, detail)
                }
                Err(e) => outcome(FenceStatus::NotFenced, e.message),
            };
            (o, None, None)
        }
        DatabasePlan::RdsReplica { .. } => {
            let (o, new, old) = fence_instance(ctx, input, &mut report, old_side, new_side).await;
            (o, new, old)
        }
    };
    report.record_saw(&FenceSaw {
        fence: &o,
        new_writer_status: new_status.as_deref(),
        old_writer_status: old_status.as_deref(),
    });
    report.finish(true, o.line())
}

async fn fence_instance(
    ctx: &Context,
    input: &StepInput,
    report: &mut StepReport,
    old_side: Side,
    new_side: Side,
) -> (FenceOutcome, Option<String>, Option<String>) {
    let (old_region, new_region) = (ctx.plan.region(old_side), ctx.plan.region(new_side));
    let (old_id, new_id) = (
        ctx.plan.database.resource(old_side),
        ctx.plan.database.resource(new_side),
    );
    let outcome = |status, detail: String| {
        FenceOutcome::new(WHAT, old_id, &old_region.region, status, detail)
    };
    let old_rds = ctx.aws.region(old_side).rds();
    let budget = old_region.operation_timeout;
    let (new_variable, old_variable) = (
        new_side.variable("DB_INSTANCE"),
        old_side.variable("DB_INSTANCE"),
    );
    let (new, old) = tokio::join!(
        describe_instance(
            ctx.aws.region(new_side).rds(),
            &new_region.region,
            new_id,
            &new_variable,
        ),
        within(
            budget,
            describe_instance(old_rds, &old_region.region, old_id, &old_variable)
        ),
    );
    let new = match new {
        Ok(v) => v,
        Err(e) => {
            return (
                outcome(
                    FenceStatus::NotFenced,
                    format!("the new writer could not be read: {}", e.message),
                ),
                None,
                None,
            );
        }
    };
    let old = match old {
        Ok(v) => v,
        Err(why) => {
            return (
                outcome(
                    FenceStatus::NotFenced,
                    format!("the region did not answer: {why}"),
                ),
                Some(new.status),
                None,
            );
        }
    };
    let o = match decide_old_writer(&new, &old) {
        OldWriterFence::AlreadyFenced(why) => outcome(FenceStatus::AlreadyFenced, why),
        OldWriterFence::NotNow(why) => outcome(FenceStatus::NotFenced, why),
        OldWriterFence::Stop => {
            report.change(&old.arn, "status", old.status.clone(), STOPPED);
            if input.dry_run {
                outcome(
                    FenceStatus::WouldFence,
                    "dry-run: would tag and stop it (StopDBInstance); nothing was changed".into(),
                )
            } else {
                let now = crate::timestamp::rfc3339(Utc::now(), SecondsFormat::Secs);
                let by = format!("pilotlight {STEP} fence");
                let calls = async {
                    add_tags(
                        old_rds,
                        &old.arn,
                        &[(FENCED_AT_TAG, &now), (FENCED_BY_TAG, &by)],
                    )
                    .await?;
                    stop_db_instance(old_rds, old_id).await
                };
                match within(budget, calls).await {
                    Ok(()) => outcome(
                        FenceStatus::Fenced,
                        format!(
                            "stopped (StopDBInstance, tagged {FENCED_AT_TAG}={now}); AWS starts a stopped instance \
                             again after 7 days: run the fence command again before then"
                        ),
                    ),
                    Err(why) => {
                        for c in &mut report.changes {
                            c.applied = false;
                        }
                        let replicas = if old.replicas.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (AWS does not stop an instance that lists read replicas: {})",
                                old.replicas.join(", ")
                            )
                        };
                        outcome(
                            FenceStatus::NotFenced,
                            format!("StopDBInstance failed: {why}{replicas}"),
                        )
                    }
                }
            }
        }
    };
    (o, Some(new.status), Some(old.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::rds::MemberView;

    fn instance(id: &str, status: &str, source: Option<&str>) -> InstanceView {
        InstanceView {
            instance: id.into(),
            arn: format!("arn:aws:rds:r:1:db:{id}"),
            status: status.into(),
            replica_source: source.map(str::to_string),
            replication_status: source.map(|_| "replicating".to_string()),
            ..crate::steps::promote_db::replica::tests::replica()
        }
    }

    #[test]
    fn the_old_writer_is_stopped_only_once_the_new_one_writes() {
        let new = instance("web-db-dr", "available", None);
        let old = instance("web-db", "available", None);
        assert_eq!(decide_old_writer(&new, &old), OldWriterFence::Stop);
        let replica = instance("web-db-dr", "available", Some("web-db"));
        assert!(matches!(
            decide_old_writer(&replica, &old),
            OldWriterFence::NotNow(r) if r.contains("no writer")
        ));
        let promoting = instance("web-db-dr", "modifying", None);
        assert!(matches!(
            decide_old_writer(&promoting, &old),
            OldWriterFence::NotNow(_)
        ));
    }

    #[test]
    fn a_stopped_or_read_only_old_writer_is_already_fenced_and_busy_ones_wait() {
        let new = instance("web-db-dr", "available", None);
        for status in ["stopped", "stopping"] {
            assert!(matches!(
                decide_old_writer(&new, &instance("web-db", status, None)),
                OldWriterFence::AlreadyFenced(r) if r.contains(status)
            ));
        }
        assert!(matches!(
            decide_old_writer(&new, &instance("web-db", "available", Some("web-db-dr"))),
            OldWriterFence::AlreadyFenced(r) if r.contains("read only")
        ));
        assert!(matches!(
            decide_old_writer(&new, &instance("web-db", "backing-up", None)),
            OldWriterFence::NotNow(r) if r.contains("backing-up")
        ));
    }

    #[test]
    fn failback_refuses_a_writable_old_writer_unless_overridden() {
        let source = instance("web-db-dr", "available", None);
        let none = Overrides::default();
        assert!(check_old_writer(None, &source, &none).passed);
        for fenced in [
            instance("web-db", "stopped", None),
            instance("web-db", "available", Some("web-db-dr")),
        ] {
            assert!(check_old_writer(Some(&fenced), &source, &none).passed);
        }
        let writable = instance("web-db", "available", None);
        let c = check_old_writer(Some(&writable), &source, &none);
        assert!(!c.passed && c.check == "db.old-writer", "{c:?}");
        assert_eq!(
            c.override_name.as_deref(),
            Some("allow_writable_old_writer")
        );
        assert!(
            c.message.contains("\"command\": \"fence\""),
            "{}",
            c.message
        );
        let allow = Overrides {
            allow_writable_old_writer: true,
            ..none
        };
        let c = check_old_writer(Some(&writable), &source, &allow);
        assert!(c.passed && c.overridden);
    }

    #[test]
    fn aurora_reports_what_aws_did_with_the_old_primary() {
        let member = |arn: &str, w: bool| MemberView {
            cluster_arn: arn.into(),
            is_writer: w,
            synchronization: Some("connected".into()),
        };
        let g = |members| GlobalClusterView {
            global_cluster: "g".into(),
            status: "available".into(),
            members,
            failover: None,
        };
        let switched = g(vec![member("old", false), member("new", true)]);
        assert_eq!(
            decide_aurora_fence(&switched, "old", "new").0,
            FenceStatus::AlreadyFenced
        );
        let (s, why) = decide_aurora_fence(&g(vec![member("new", true)]), "old", "new");
        assert!(
            s == FenceStatus::NotFenced && why.contains("rejoins"),
            "{why}"
        );
        let (s, _) = decide_aurora_fence(
            &g(vec![member("old", true), member("new", false)]),
            "old",
            "new",
        );
        assert_eq!(s, FenceStatus::NotFenced);
    }
}
