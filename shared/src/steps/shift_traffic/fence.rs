//! shift-traffic `fence`: the side a failover left keeps its traffic dial at 0. The shift already put it there;
//! the fence confirms it and, should the dial have been raised again while the DR side takes all the traffic,
//! turns it back to 0. Global Accelerator's API is in us-west-2, never in the failed region. It never lowers the
//! dial of a side that is still needed (the DR dial below 100): that is a shift to finish, not a fence.

use serde::Serialize;

use super::{STEP, observe};
use crate::aws::globalaccelerator::set_dial;
use crate::fence::{FenceOutcome, FenceStatus};
use crate::plan::Direction;
use crate::routing::Dials;
use crate::runtime::Context;
use crate::step::{StepInput, StepReport};

const WHAT: &str = "primary traffic dial";

/// What the fence does with the dial of the side left (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialFence {
    Hold,
    ToZero,
    NotNow(String),
}

pub fn decide_dial_fence(dials: Dials) -> DialFence {
    match (dials.primary, dials.dr) {
        (0, _) => DialFence::Hold,
        (_, 100) => DialFence::ToZero,
        (p, d) => DialFence::NotNow(format!(
            "the primary dial is {p}% and the DR dial {d}%: the shift is not finished; run the failover (or \
             shift-traffic start) first"
        )),
    }
}

#[derive(Serialize)]
struct FenceSaw<'a> {
    fence: &'a FenceOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    dials: Option<Dials>,
}

pub async fn fence(ctx: &Context, input: &StepInput) -> StepReport {
    let mut report = StepReport::begin(STEP, input);
    let side = input.direction.source();
    let sp = ctx.plan.region(side);
    let outcome = |status, detail: String| {
        FenceOutcome::new(WHAT, &sp.endpoint_group_arn, &sp.region, status, detail)
    };
    if input.direction != Direction::Failover {
        let o = outcome(
            FenceStatus::NotFenced,
            "fence follows a failover".to_string(),
        );
        report.record_saw(&FenceSaw {
            fence: &o,
            dials: None,
        });
        return report.finish(true, o.line());
    }
    let (o, dials) = match observe(ctx).await {
        Err(e) => (outcome(FenceStatus::NotFenced, e.message), None),
        Ok((primary, dr)) => {
            let dials = Dials {
                primary: primary.dial,
                dr: dr.dial,
            };
            let o = match decide_dial_fence(dials) {
                DialFence::Hold => outcome(
                    FenceStatus::AlreadyFenced,
                    "at 0%: no traffic through Global Accelerator".into(),
                ),
                DialFence::NotNow(why) => outcome(FenceStatus::NotFenced, why),
                DialFence::ToZero => {
                    report.change(
                        &sp.endpoint_group_arn,
                        "TrafficDialPercentage",
                        dials.primary,
                        0,
                    );
                    if input.dry_run {
                        outcome(
                            FenceStatus::WouldFence,
                            format!("dry-run: would turn it from {}% to 0%", dials.primary),
                        )
                    } else {
                        match set_dial(ctx.aws.global_accelerator(), &sp.endpoint_group_arn, 0)
                            .await
                        {
                            Ok(()) => outcome(
                                FenceStatus::Fenced,
                                format!(
                                    "turned from {}% back to 0% (the DR dial is 100%)",
                                    dials.primary
                                ),
                            ),
                            Err(e) => {
                                report.changes[0].applied = false;
                                outcome(FenceStatus::NotFenced, e.message)
                            }
                        }
                    }
                }
            };
            (o, Some(dials))
        }
    };
    report.record_saw(&FenceSaw { fence: &o, dials });
    report.finish(true, o.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_left_dial_is_held_at_zero_but_never_lowered_mid_shift() {
        let d = |primary, dr| Dials { primary, dr };
        assert_eq!(decide_dial_fence(d(0, 100)), DialFence::Hold);
        assert_eq!(decide_dial_fence(d(0, 0)), DialFence::Hold);
        assert_eq!(decide_dial_fence(d(25, 100)), DialFence::ToZero);
        assert!(
            matches!(decide_dial_fence(d(50, 50)), DialFence::NotNow(r) if r.contains("not finished"))
        );
    }
}
