//! scale-compute `fence`: the Auto Scaling group of the side a failover leaves goes to 0/0/0, so no instance there
//! keeps running jobs or workers against the old writer. Before scaling down it tags the group with the capacity it
//! had (`pilotlight:fenced-capacity=min/desired/max`), and the failback's `start` restores that capacity (never
//! less than the plan's): the figure survives on the group itself, whatever happens to the execution.
//!
//! Best effort (docs/guarantees.md "Fencing"): every call to the failed region is bounded by its operation timeout;
//! what does not answer is reported `not_fenced` and the `fence` command retries it. It never scales down a group
//! whose endpoint group still takes traffic (dial above 0, or a dial it cannot read).

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::aws::autoscaling::{describe_group, tag_group, update_group};
use crate::aws::globalaccelerator::read_dial;
use crate::fence::{
    FENCED_AT_TAG, FENCED_BY_TAG, FENCED_CAPACITY_TAG, FenceOutcome, FenceStatus, within,
};
use crate::plan::{Capacity, Direction};
use crate::runtime::Context;
use crate::step::{StepInput, StepReport};

use super::STEP;
use super::capacity::{PILOT_LIGHT, capacity_changes, scale_up_only};

const WHAT: &str = "primary Auto Scaling group";

fn text(c: Capacity) -> String {
    format!("{}/{}/{}", c.min, c.desired, c.max)
}

/// The capacity a failback restores (pure): the one a fence recorded on the group, never below the plan's (the
/// plan's is what readiness waits for); the plan's when nothing was recorded. The second value says why.
pub fn restore_base(plan: Capacity, fenced: Option<Capacity>) -> (Capacity, Option<String>) {
    match fenced {
        Some(recorded) if recorded != PILOT_LIGHT => (
            scale_up_only(plan, recorded),
            Some(format!(
                "capacity recorded by the fence {} (plan {})",
                text(recorded),
                text(plan)
            )),
        ),
        _ => (plan, None),
    }
}

/// What the fence does with the group (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFence {
    /// Record `record` on the group, then 0/0/0.
    ScaleToZero {
        record: Capacity,
    },
    AlreadyFenced(String),
    /// Not now: the reason.
    NotNow(String),
}

/// `dial`: the side's traffic dial, or why it could not be read.
pub fn decide_group_fence(
    capacity: Capacity,
    recorded: Option<Capacity>,
    dial: &Result<i32, String>,
) -> GroupFence {
    match dial {
        Err(why) => {
            return GroupFence::NotNow(format!(
                "its traffic dial could not be read ({why}): never scaled down blind"
            ));
        }
        Ok(d) if *d > 0 => {
            return GroupFence::NotNow(format!(
                "its traffic dial is {d}%: the group still takes traffic; shift traffic first"
            ));
        }
        Ok(_) => {}
    }
    if capacity == PILOT_LIGHT {
        return GroupFence::AlreadyFenced(match recorded {
            Some(r) => format!("at 0/0/0, capacity {} recorded for failback", text(r)),
            None => "at 0/0/0 (no capacity recorded: failback restores the plan's)".to_string(),
        });
    }
    GroupFence::ScaleToZero { record: capacity }
}

#[derive(Serialize)]
struct FenceSaw<'a> {
    fence: &'a FenceOutcome,
    capacity: Option<Capacity>,
    recorded_capacity: Option<Capacity>,
    dial: Option<i32>,
}

pub(super) async fn fence(ctx: &Context, input: &StepInput, mut report: StepReport) -> StepReport {
    let side = input.direction.source();
    let sp = ctx.plan.region(side);
    let outcome =
        |status, detail: String| FenceOutcome::new(WHAT, &sp.asg, &sp.region, status, detail);
    if input.direction != Direction::Failover {
        let o = outcome(
            FenceStatus::NotFenced,
            "fence follows a failover (failback's reprotect takes the DR group to 0/0/0)".into(),
        );
        report.record_saw(&FenceSaw {
            fence: &o,
            capacity: None,
            recorded_capacity: None,
            dial: None,
        });
        return report.finish(true, o.line());
    }
    let clients = ctx.aws.region(side);
    let budget = sp.operation_timeout;
    let (group, dial) = tokio::join!(
        within(
            budget,
            describe_group(clients.autoscaling(), &sp.asg, &sp.region)
        ),
        within(
            budget,
            read_dial(ctx.aws.global_accelerator(), &sp.endpoint_group_arn)
        ),
    );
    let group = match group {
        Ok(Some(g)) => g,
        Ok(None) => {
            let o = outcome(
                FenceStatus::NotFenced,
                format!("group not found: check {}", side.variable("ASG")),
            );
            report.record_saw(&FenceSaw {
                fence: &o,
                capacity: None,
                recorded_capacity: None,
                dial: dial.ok(),
            });
            return report.finish(true, o.line());
        }
        Err(why) => {
            let o = outcome(
                FenceStatus::NotFenced,
                format!("the region did not answer: {why}"),
            );
            report.record_saw(&FenceSaw {
                fence: &o,
                capacity: None,
                recorded_capacity: None,
                dial: dial.ok(),
            });
            return report.finish(true, o.line());
        }
    };
    let verdict = decide_group_fence(group.capacity, group.fenced_capacity, &dial);
    let o = match verdict {
        GroupFence::AlreadyFenced(why) => outcome(FenceStatus::AlreadyFenced, why),
        GroupFence::NotNow(why) => outcome(FenceStatus::NotFenced, why),
        GroupFence::ScaleToZero { record } => {
            let changes = capacity_changes(group.capacity, PILOT_LIGHT);
            report.change(
                &group.name,
                &format!("tag {FENCED_CAPACITY_TAG}"),
                group.fenced_capacity.map(text),
                text(record),
            );
            for (field, from, to) in &changes {
                report.change(&group.name, field, *from, *to);
            }
            if input.dry_run {
                outcome(
                    FenceStatus::WouldFence,
                    format!(
                        "dry-run: would record {} and scale to 0/0/0; nothing was changed",
                        text(record)
                    ),
                )
            } else {
                let now = crate::timestamp::rfc3339(Utc::now(), SecondsFormat::Secs);
                let recorded = text(record);
                let by = format!("pilotlight {STEP} fence");
                // The record first: a scale-down whose capacity was not recorded could not be restored as it was.
                let calls = async {
                    tag_group(
                        clients.autoscaling(),
                        &group.name,
                        &sp.region,
                        &[
                            (FENCED_CAPACITY_TAG, &recorded),
                            (FENCED_AT_TAG, &now),
                            (FENCED_BY_TAG, &by),
                        ],
                    )
                    .await?;
                    update_group(clients.autoscaling(), &group.name, &sp.region, &changes).await
                };
                match within(budget, calls).await {
                    Ok(()) => outcome(
                        FenceStatus::Fenced,
                        format!("scaled {recorded} -> 0/0/0, {recorded} recorded for failback"),
                    ),
                    Err(why) => {
                        for c in &mut report.changes {
                            c.applied = false;
                        }
                        outcome(
                            FenceStatus::NotFenced,
                            format!("recording {recorded} and scaling to 0/0/0 failed: {why}"),
                        )
                    }
                }
            }
        }
    };
    report.record_saw(&FenceSaw {
        fence: &o,
        capacity: Some(group.capacity),
        recorded_capacity: group.fenced_capacity,
        dial: dial.ok(),
    });
    report.finish(true, o.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn cap(min: i32, desired: i32, max: i32) -> Capacity {
        Capacity { min, desired, max }
    }

    #[test]
    fn the_group_is_fenced_only_once_it_takes_no_traffic() {
        let serving = decide_group_fence(cap(2, 4, 8), None, &Ok(100));
        assert!(matches!(serving, GroupFence::NotNow(r) if r.contains("100%")));
        let blind = decide_group_fence(cap(2, 4, 8), None, &Err("timeout".into()));
        assert!(matches!(blind, GroupFence::NotNow(r) if r.contains("blind")));
        assert_eq!(
            decide_group_fence(cap(2, 4, 8), None, &Ok(0)),
            GroupFence::ScaleToZero {
                record: cap(2, 4, 8)
            }
        );
        // A second fence finds 0/0/0 and keeps the first one's record.
        assert!(matches!(
            decide_group_fence(PILOT_LIGHT, Some(cap(2, 4, 8)), &Ok(0)),
            GroupFence::AlreadyFenced(r) if r.contains("2/4/8 recorded")
        ));
    }

    #[test]
    fn failback_restores_the_recorded_capacity_never_below_the_plan() {
        let plan = cap(2, 2, 4);
        assert_eq!(restore_base(plan, None), (plan, None));
        assert_eq!(restore_base(plan, Some(PILOT_LIGHT)).0, plan);
        let (c, why) = restore_base(plan, Some(cap(3, 6, 10)));
        assert_eq!(c, cap(3, 6, 10));
        assert!(why.unwrap().contains("recorded by the fence 3/6/10"));
        assert_eq!(restore_base(plan, Some(cap(1, 1, 2))).0, plan);
    }
}
