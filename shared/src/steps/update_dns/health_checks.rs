//! update-dns in health-check mode: the zone holds PRIMARY/SECONDARY failover records guarded by pre-created
//! health checks, and only those checks' flags change (see [`crate::routing::wanted_flags`]).

use serde::Serialize;

use super::STEP;
use crate::aws::route53::{HealthCheckState, get_health_check, set_health_check_flags};
use crate::error::Result;
use crate::plan::{BySide, Direction, Side};
use crate::routing::{CheckFlags, wanted_flags};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

#[derive(Debug, Clone, Copy)]
pub(super) struct HealthCheckIds<'a> {
    pub(super) primary: &'a str,
    pub(super) dr: &'a str,
}

impl HealthCheckIds<'_> {
    fn get(&self, side: Side) -> &str {
        match side {
            Side::Primary => self.primary,
            Side::Dr => self.dr,
        }
    }
}

/// What health-check mode saw: both checks' flags, and the flags the direction wants.
#[derive(Serialize)]
struct HealthChecksSaw<'a> {
    mode: &'static str,
    health_checks: BySide<&'a HealthCheckState>,
    wanted: BySide<CheckFlags>,
    /// Always present (null in this mode) so the state machine's reference to it never misses.
    change_id: Option<&'a str>,
}

pub(super) async fn flip_health_checks(
    ctx: &Context,
    input: &StepInput,
    ids: HealthCheckIds<'_>,
) -> Result<StepReport> {
    let mut report = StepReport::begin(STEP, input);
    let r53 = ctx.aws.route53();
    let (primary, dr) = tokio::join!(
        get_health_check(r53, ids.primary),
        get_health_check(r53, ids.dr)
    );
    let primary =
        primary.map_err(|e| e.check_if_missing(&Side::Primary.variable("HEALTH_CHECK_ID")))?;
    let dr = dr.map_err(|e| e.check_if_missing(&Side::Dr.variable("HEALTH_CHECK_ID")))?;
    let direction = input.direction;
    let wanted = |side| wanted_flags(direction, side);
    report.record_saw(&HealthChecksSaw {
        mode: "health-check",
        health_checks: BySide {
            primary: &primary,
            dr: &dr,
        },
        wanted: BySide {
            primary: wanted(Side::Primary),
            dr: wanted(Side::Dr),
        },
        change_id: None,
    });
    let state = |side| if side == Side::Primary { &primary } else { &dr };
    let all_set = [Side::Primary, Side::Dr]
        .iter()
        .all(|&s| state(s).flags == wanted(s));

    if input.action == Action::Status {
        let message = if all_set {
            format!(
                "health checks are set for {}: {}",
                direction.as_str(),
                describe_checks(&primary, &dr)
            )
        } else if input.dry_run {
            format!(
                "dry-run: nothing was changed; health checks are {}",
                describe_checks(&primary, &dr)
            )
        } else {
            format!(
                "health checks not yet set for {}: {}",
                direction.as_str(),
                describe_checks(&primary, &dr)
            )
        };
        return Ok(report.finish(all_set || input.dry_run, message));
    }

    // Target first: make the side traffic moves to healthy before the side it leaves goes unhealthy, so the
    // records never see both unhealthy (Route 53 would then answer with both).
    for side in [direction.target(), direction.source()] {
        let (check, want) = (state(side), wanted(side));
        if check.flags == want {
            continue;
        }
        if !input.dry_run {
            set_health_check_flags(r53, check, want).await?;
        }
        if check.flags.disabled != want.disabled {
            report.change(
                ids.get(side),
                "Disabled",
                check.flags.disabled,
                want.disabled,
            );
        }
        if check.flags.inverted != want.inverted {
            report.change(
                ids.get(side),
                "Inverted",
                check.flags.inverted,
                want.inverted,
            );
        }
    }
    let message = match (all_set, input.dry_run) {
        (true, _) => format!(
            "no-op: health checks already set for {}: {}",
            direction.as_str(),
            describe_checks(&primary, &dr)
        ),
        (false, true) => format!(
            "dry-run: would set {} health checks; nothing changed",
            direction.as_str()
        ),
        (false, false) => format!(
            "health checks set for {}: {}",
            direction.as_str(),
            wanted_summary(direction)
        ),
    };
    // No change batch to wait for: the updated flags are the whole change.
    Ok(report.finish(true, message))
}

fn describe_flags(f: CheckFlags) -> &'static str {
    match (f.disabled, f.inverted) {
        (false, false) => "automatic",
        (false, true) => "automatic, inverted",
        (true, false) => "forced healthy",
        (true, true) => "forced unhealthy",
    }
}

fn describe_checks(primary: &HealthCheckState, dr: &HealthCheckState) -> String {
    format!(
        "primary {} ({}), dr {} ({})",
        primary.id,
        describe_flags(primary.flags),
        dr.id,
        describe_flags(dr.flags)
    )
}

fn wanted_summary(direction: Direction) -> String {
    format!(
        "primary {}, dr {}",
        describe_flags(wanted_flags(direction, Side::Primary)),
        describe_flags(wanted_flags(direction, Side::Dr))
    )
}
