//! shift-traffic: moves the Global Accelerator traffic dials of the two endpoint groups towards the target region.
//! Global Accelerator's API lives in us-west-2 only, so moving traffic never needs the failed region.
//!
//! shift-traffic advances ONE dial step per `start` (the state machine bakes with a Wait between calls and loops
//! until `done`), so a bad DR deployment shows up while it carries a quarter of the traffic, not all of it.
//!
//! `drain` (graceful flows) dials the source region to 0 before the database is promoted; the following `start`
//! loop then ramps the target up from wherever it is (0 included), never raising the source again. `restore` is
//! the drain undone: when a graceful flow fails after the drain and before the promotion, the state machine calls
//! it to put the source dial back (the old writer still is the writer). The dial sequence itself is [`ramp`] (pure).

pub mod fence;
pub mod ramp;

use serde::Serialize;
use serde_json::Value;

use crate::aws::globalaccelerator;
use crate::aws::globalaccelerator::{
    EndpointGroupState, describe_endpoint_group, read_dial, set_dial,
};
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::Use;
use crate::plan::{BySide, Mode, Side};
use crate::routing::Dials;
use crate::runtime::{Context, StepEvent};
use crate::step::{Action, StepInput, StepReport};
use ramp::{dial_path, drained_dials, next_dials, restored_dials};

/// IAM: the adapter calls shift-traffic makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &globalaccelerator::DESCRIBE_ENDPOINT_GROUP,
        "reads both dials",
    ),
    Use::always(
        &globalaccelerator::SET_DIAL,
        "turns a dial one step (fence: the left side's back to 0)",
    ),
];

pub const STEP: &str = "shift-traffic";

/// Reads both endpoint groups and checks each is in the region the plan says: swapped ARNs would move traffic the
/// wrong way, so that is a plan error and nothing is changed.
async fn observe(ctx: &Context) -> Result<(EndpointGroupState, EndpointGroupState)> {
    let ga = ctx.aws.global_accelerator();
    let plan = &ctx.plan;
    let (primary, dr) = tokio::join!(
        describe_endpoint_group(ga, &plan.primary.endpoint_group_arn),
        describe_endpoint_group(ga, &plan.dr.endpoint_group_arn)
    );
    let primary =
        primary.map_err(|e| e.check_if_missing(&Side::Primary.variable("ENDPOINT_GROUP_ARN")))?;
    let dr = dr.map_err(|e| e.check_if_missing(&Side::Dr.variable("ENDPOINT_GROUP_ARN")))?;
    for (side, group) in [(Side::Primary, &primary), (Side::Dr, &dr)] {
        let want = &plan.region(side).region;
        if &group.region != want {
            return Err(Error::config(
                &side.variable("ENDPOINT_GROUP_ARN"),
                format!(
                    "endpoint group {} serves region {:?}, but the plan's region for that side is {want}",
                    group.arn, group.region
                ),
            ));
        }
    }
    Ok((primary, dr))
}

/// shift-traffic's input: the contract's step input, with `drain` besides start and status.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftTrafficInput(pub StepInput);

impl StepEvent for ShiftTrafficInput {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        StepInput::parse_with(
            STEP,
            payload,
            &[
                Action::Drain,
                Action::Preflight,
                Action::Fence,
                Action::Restore,
            ],
        )
        .map(ShiftTrafficInput)
    }
}

pub async fn handle(
    ctx: &Context,
    ShiftTrafficInput(input): ShiftTrafficInput,
) -> Result<StepReport> {
    let report = match input.action {
        Action::Drain => drain(ctx, &input).await?,
        Action::Restore => restore(ctx, &input).await?,
        Action::Preflight => preflight(ctx, &input).await?,
        Action::Fence => fence::fence(ctx, &input).await,
        Action::Start | Action::Status => shift_traffic(ctx, &input).await?,
        other => {
            return Err(Error::invalid_input(format!(
                "{STEP}: action {:?} is not one of this step's actions",
                other.as_str()
            )));
        }
    };
    Ok(report)
}

/// The endpoint group the flow will turn, as read (a dial) or not (why). Pure.
pub fn check_endpoint_group(
    side: Side,
    arn: &str,
    read: &Result<i32>,
    overrides: &crate::step::Overrides,
) -> crate::preflight::Check {
    use crate::preflight::Check;
    use serde_json::json;
    let name = format!("endpoint-group.{}", side.as_str());
    match read {
        Ok(dial) => Check::pass(
            &name,
            json!({"arn": arn, "dial": dial}),
            json!("exists"),
            format!("{arn} exists, dial {dial}"),
        ),
        Err(e) => Check::fail(
            &name,
            json!({"arn": arn, "error": e.message}),
            json!("exists"),
            None,
            overrides,
            format!(
                "endpoint group {arn} could not be read ({}): check {}",
                e.message,
                side.variable("ENDPOINT_GROUP_ARN")
            ),
        ),
    }
}

/// `preflight`: both endpoint groups the flow turns exist (read only). A throttled or unanswered read is an error
/// the state machine retries, not a finding.
pub async fn preflight(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let report = StepReport::begin(STEP, input);
    let ga = ctx.aws.global_accelerator();
    let (p, d) = tokio::join!(
        read_dial(ga, &ctx.plan.primary.endpoint_group_arn),
        read_dial(ga, &ctx.plan.dr.endpoint_group_arn),
    );
    for r in [&p, &d] {
        if let Err(e) = r
            && e.kind == ErrorKind::Transient
        {
            return Err(e.clone());
        }
    }
    let o = &input.overrides;
    let saw = crate::preflight::PreflightSaw::of(vec![
        check_endpoint_group(Side::Primary, &ctx.plan.primary.endpoint_group_arn, &p, o),
        check_endpoint_group(Side::Dr, &ctx.plan.dr.endpoint_group_arn, &d, o),
    ]);
    Ok(saw.into_report(report, STEP))
}

/// `drain`: the source region's dial to 0, the target's left alone. One call, no loop: the dial is read back after
/// UpdateEndpointGroup, and `done` means it reads 0. A read-back that disagrees is a Transient error, so the state
/// machine's Retry runs the (idempotent) drain again rather than moving on to promotion while writes still arrive.
pub async fn drain(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let mut report = StepReport::begin(STEP, input);
    let (primary, dr) = observe(ctx).await?;
    let before = Dials {
        primary: primary.dial,
        dr: dr.dial,
    };
    let direction = input.direction;
    let source = direction.source();
    let source_arn = &ctx.plan.region(source).endpoint_group_arn;
    let wanted = drained_dials(before, direction);
    let endpoint_groups = BySide {
        primary: &primary,
        dr: &dr,
    };

    let (from, to) = (before.get(source), wanted.get(source));
    let after = set_source_dial(ctx, input, &mut report, before, to).await?;
    report.record_saw(&DrainSaw {
        dials: before,
        endpoint_groups,
        mode: input.mode,
        dials_after: if input.dry_run { before } else { after },
    });

    let target_dial = before.get(direction.target());
    let note = if target_dial > 0 {
        format!(
            "; note: the target endpoint group ({}) still takes {target_dial}% of the traffic, before its database is promoted",
            ctx.plan.region(direction.target()).region
        )
    } else {
        "; both dials are 0: no traffic is served until shift-traffic start ramps the target up (writes are stopped \
         for the catch-up)"
            .to_string()
    };
    let source_region = &ctx.plan.region(source).region;
    let (done, message) = if input.dry_run {
        let what = if from == to {
            format!("nothing to do: the {source_region} dial is already 0")
        } else {
            format!("would set the {source_region} dial {from}% -> 0%; nothing changed")
        };
        (
            true,
            format!("dry-run: {what}; dials are {}", describe(before)),
        )
    } else if from == to {
        (
            true,
            format!(
                "no-op: the {source_region} dial is already 0; dials are {}{note}",
                describe(before)
            ),
        )
    } else if after.get(source) == 0 {
        (
            true,
            format!(
                "drained {source_region}: {} -> {}{note}",
                describe(before),
                describe(after)
            ),
        )
    } else {
        return Err(read_back_disagrees(
            source_arn,
            source_region,
            to,
            after.get(source),
            "drain",
        ));
    };
    Ok(report.finish(done, message))
}

/// Drain and restore: the source dial to `to` unless it is already there (in a dry-run only the change is listed).
/// Read back rather than assume: the dials returned are the live ones, so `done` reports what AWS shows.
async fn set_source_dial(
    ctx: &Context,
    input: &StepInput,
    report: &mut StepReport,
    before: Dials,
    to: i32,
) -> Result<Dials> {
    let source = input.direction.source();
    let source_arn = &ctx.plan.region(source).endpoint_group_arn;
    let from = before.get(source);
    if from == to {
        return Ok(before);
    }
    let mut after = before;
    if !input.dry_run {
        set_dial(ctx.aws.global_accelerator(), source_arn, to).await?;
        after = after.with(
            source,
            read_dial(ctx.aws.global_accelerator(), source_arn).await?,
        );
    }
    report.change(source_arn, "TrafficDialPercentage", from, to);
    Ok(after)
}

/// A read-back that disagrees with the dial just set: Transient, so the state machine's Retry runs the (idempotent)
/// action again rather than moving on.
fn read_back_disagrees(arn: &str, region: &str, set: i32, reads: i32, action: &str) -> Error {
    Error::new(
        ErrorKind::Transient,
        format!(
            "{STEP}: UpdateEndpointGroup set {arn} ({region}) to {set}% but it reads {reads}%; {action} again"
        ),
    )
}

/// `restore` (the rollback of a graceful flow that failed after the drain, before the promotion): the source
/// dial back to 100, the target's left alone. Observe, then act: a source already at 100 is a no-op; the dial is
/// read back, and a read-back that disagrees is a Transient error the state machine's Retry absorbs. Only the
/// state machine decides when this is safe (never after the promotion was issued: docs/statemachine.md).
pub async fn restore(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let mut report = StepReport::begin(STEP, input);
    let (primary, dr) = observe(ctx).await?;
    let before = Dials {
        primary: primary.dial,
        dr: dr.dial,
    };
    let direction = input.direction;
    let source = direction.source();
    let source_arn = &ctx.plan.region(source).endpoint_group_arn;
    let source_region = &ctx.plan.region(source).region;
    let wanted = restored_dials(before, direction);
    let (from, to) = (before.get(source), wanted.get(source));
    let after = set_source_dial(ctx, input, &mut report, before, to).await?;
    report.record_saw(&RestoreSaw {
        dials: before,
        endpoint_groups: BySide {
            primary: &primary,
            dr: &dr,
        },
        source,
        restored_to: to,
        dials_after: after,
    });
    let message = if input.dry_run {
        if from == to {
            format!("dry-run: nothing to restore: the {source_region} dial is {to}%")
        } else {
            format!(
                "dry-run: would restore the {source_region} dial {from}% -> {to}%; nothing changed"
            )
        }
    } else if from == to {
        format!(
            "no-op: the {source_region} dial is already {to}%; dials are {}",
            describe(before)
        )
    } else if after.get(source) == to {
        format!(
            "restored {source_region}: {} -> {}",
            describe(before),
            describe(after)
        )
    } else {
        return Err(read_back_disagrees(
            source_arn,
            source_region,
            to,
            after.get(source),
            "restore",
        ));
    };
    Ok(report.finish(true, message))
}

pub async fn shift_traffic(ctx: &Context, input: &StepInput) -> Result<StepReport> {
    let mut report = StepReport::begin(STEP, input);
    let (primary, dr) = observe(ctx).await?;
    let before = Dials {
        primary: primary.dial,
        dr: dr.dial,
    };
    let direction = input.direction;
    let target = direction.target();
    let target_group = if target == Side::Primary {
        &primary
    } else {
        &dr
    };
    let warning = if target_group.healthy_endpoints() == 0 {
        format!(
            "; warning: endpoint group {} ({}) reports no HEALTHY endpoint: check the target region's load balancer before the next step",
            target_group.arn, target_group.region
        )
    } else {
        String::new()
    };
    let steps = &ctx.plan.dial_steps;
    let mut saw = DialsSaw {
        dials: before,
        endpoint_groups: BySide {
            primary: &primary,
            dr: &dr,
        },
        dial_steps: steps,
        mode: input.mode,
        dials_after: None,
        remaining_steps: None,
    };

    if input.action == Action::Status {
        report.record_saw(&saw);
        let done = input.dry_run || before.is_final(direction);
        let message = if before.is_final(direction) {
            format!(
                "dials are final for {}: {}{warning}",
                direction.as_str(),
                describe(before)
            )
        } else if input.dry_run {
            format!(
                "dry-run: nothing was shifted; dials are {}",
                describe(before)
            )
        } else {
            format!(
                "dials are {}, not yet final for {}{warning}",
                describe(before),
                direction.as_str()
            )
        };
        return Ok(report.finish(done, message));
    }

    // Dry-run shows the whole remaining path (the state machine will not loop in dry-run); a real start moves one step.
    let path = if input.dry_run {
        dial_path(before, direction, input.mode, steps)
    } else {
        let next = next_dials(before, direction, input.mode, steps);
        if next == before {
            Vec::new()
        } else {
            vec![next]
        }
    };
    let mut at = before;
    for next in &path {
        // Raise the side traffic moves to before lowering the side it leaves: between the two calls both dials are
        // never 0 (the new target dial is > 0), and if the second call fails the first one did no harm.
        for side in [direction.target(), direction.source()] {
            let (from, to) = (at.get(side), next.get(side));
            if from != to {
                let arn = &ctx.plan.region(side).endpoint_group_arn;
                if !input.dry_run {
                    set_dial(ctx.aws.global_accelerator(), arn, to).await?;
                }
                report.change(arn, "TrafficDialPercentage", from, to);
            }
        }
        at = *next;
    }
    saw.dials_after = Some(at);
    saw.remaining_steps = Some(dial_path(at, direction, input.mode, steps));
    report.record_saw(&saw);
    let message = match (input.dry_run, path.is_empty()) {
        (_, true) => format!(
            "no-op: dials already final for {}: {}{warning}",
            direction.as_str(),
            describe(before)
        ),
        (true, false) => format!(
            "dry-run: would shift {} -> {} in {} step(s); nothing changed{warning}",
            describe(before),
            path.iter()
                .map(|d| describe(*d))
                .collect::<Vec<_>>()
                .join(" -> "),
            path.len()
        ),
        (false, false) => format!("shifted {} -> {}{warning}", describe(before), describe(at)),
    };
    Ok(report.finish(input.dry_run || at.is_final(direction), message))
}

/// What `drain` saw: the dials before and after, and the endpoint groups they belong to.
#[derive(Serialize)]
struct DrainSaw<'a> {
    dials: Dials,
    endpoint_groups: BySide<&'a EndpointGroupState>,
    mode: Mode,
    dials_after: Dials,
}

/// What `restore` saw: the dials before and after, and which side it restored to what.
#[derive(Serialize)]
struct RestoreSaw<'a> {
    dials: Dials,
    endpoint_groups: BySide<&'a EndpointGroupState>,
    source: Side,
    restored_to: i32,
    dials_after: Dials,
}

/// What `start` / `status` saw: the dials and the plan's steps; `start` adds where it left the dials and the steps
/// still to go.
#[derive(Serialize)]
struct DialsSaw<'a> {
    dials: Dials,
    endpoint_groups: BySide<&'a EndpointGroupState>,
    dial_steps: &'a [i32],
    mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    dials_after: Option<Dials>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_steps: Option<Vec<Dials>>,
}

fn describe(d: Dials) -> String {
    format!("primary {}% / dr {}%", d.primary, d.dr)
}
