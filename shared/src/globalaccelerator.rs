//! Global Accelerator: the traffic dials of the two endpoint groups, and the `shift-traffic` step that moves them.
//! Its API lives in us-west-2 only, so moving traffic never needs the failed region.
//!
//! shift-traffic advances ONE dial step per `start` (the state machine bakes with a Wait between calls and loops
//! until `done`), so a bad DR deployment shows up while it carries a quarter of the traffic, not all of it.
//!
//! `drain` (graceful flows) dials the source region to 0 before the database is promoted; the following `start`
//! loop then ramps the target up from wherever it is (0 included), never raising the source again.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Direction, FailoverPlan, Mode, Side};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

pub const STEP: &str = "shift-traffic";

/// Traffic dial percentages (0-100) of the two endpoint groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dials {
    pub primary: i32,
    pub dr: i32,
}

impl Dials {
    pub fn get(self, side: Side) -> i32 {
        match side {
            Side::Primary => self.primary,
            Side::Dr => self.dr,
        }
    }

    pub fn with(self, side: Side, percent: i32) -> Dials {
        match side {
            Side::Primary => Dials {
                primary: percent,
                ..self
            },
            Side::Dr => Dials {
                dr: percent,
                ..self
            },
        }
    }

    /// All traffic on the side `direction` moves to.
    pub fn is_final(self, direction: Direction) -> bool {
        self.get(direction.target()) == 100 && self.get(direction.source()) == 0
    }
}

/// The dials after one shift step (pure; see the module tests for the sequences).
///
/// Progress is the share the target is sure to get: `min(target, 100 - source)`. The next plan step above it
/// becomes the new share: the target dial is raised to it (never lowered) and the source dial lowered to
/// `100 - step` (never raised). With the usual complementary dials (e.g. 30/70) this is exactly "target := next
/// step above its dial, source := 100 - that"; with odd states (both 100, both 0) it still ramps one step at a
/// time and never sends more traffic to the side being left. The new target dial is at least the first plan
/// step (> 0), so the step never leaves both dials at 0; from the 0/0 that `drain` may leave it goes to
/// first step / 0.
///
/// Ungraceful (the source region is down) goes straight to the final dials: stepping would only delay recovery,
/// since Global Accelerator's own health checks already send no traffic to a region whose endpoints fail, so a
/// partial dial on the dead side protects nobody, and there is nothing healthy left to compare the DR against.
pub fn next_dials(current: Dials, direction: Direction, mode: Mode, steps: &[i32]) -> Dials {
    let (t, s) = (direction.target(), direction.source());
    let (target_now, source_now) = (current.get(t).clamp(0, 100), current.get(s).clamp(0, 100));
    let step = match mode {
        Mode::Ungraceful => 100,
        Mode::Graceful => {
            let progress = target_now.min(100 - source_now);
            steps
                .iter()
                .copied()
                .find(|&p| p > progress && p <= 100)
                .unwrap_or(100)
        }
    };
    current
        .with(t, target_now.max(step))
        .with(s, source_now.min(100 - step))
}

/// Every dial setting from `current` (excluded) to the final one, one step per `start`: what a dry-run shows.
pub fn dial_path(current: Dials, direction: Direction, mode: Mode, steps: &[i32]) -> Vec<Dials> {
    let mut path = Vec::new();
    let mut at = current;
    // Progress strictly increases through the plan's steps, so this ends within steps.len() + 1 moves.
    while !at.is_final(direction) && path.len() <= steps.len() {
        at = next_dials(at, direction, mode, steps);
        path.push(at);
    }
    path
}

/// One endpoint group as read from the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointGroupState {
    pub arn: String,
    pub region: String,
    pub dial: i32,
    pub endpoints: Vec<EndpointState>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointState {
    pub id: String,
    pub health: String,
}

impl EndpointGroupState {
    pub fn healthy_endpoints(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.health == "HEALTHY")
            .count()
    }
}

pub async fn describe_endpoint_group(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
) -> Result<EndpointGroupState> {
    let resp = ga
        .describe_endpoint_group()
        .endpoint_group_arn(endpoint_group_arn)
        .send()
        .await
        .map_err(|e| Error::aws("DescribeEndpointGroup", endpoint_group_arn, e))?;
    let group = resp.endpoint_group().ok_or_else(|| {
        Error::not_found(format!("endpoint group {endpoint_group_arn}: DescribeEndpointGroup returned no group; check the plan's ARN"))
    })?;
    Ok(EndpointGroupState {
        arn: endpoint_group_arn.to_string(),
        region: group
            .endpoint_group_region()
            .unwrap_or_default()
            .to_string(),
        // An unset dial means the default, 100.
        dial: group
            .traffic_dial_percentage()
            .map(|d| d.round() as i32)
            .unwrap_or(100),
        endpoints: group
            .endpoint_descriptions()
            .iter()
            .map(|e| EndpointState {
                id: e.endpoint_id().unwrap_or_default().to_string(),
                health: e
                    .health_state()
                    .map(|h| h.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    })
}

pub async fn read_dial(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
) -> Result<i32> {
    Ok(describe_endpoint_group(ga, endpoint_group_arn).await?.dial)
}

pub async fn read_dials(
    ga: &aws_sdk_globalaccelerator::Client,
    plan: &FailoverPlan,
) -> Result<Dials> {
    let (primary, dr) = tokio::join!(
        read_dial(ga, &plan.primary.endpoint_group_arn),
        read_dial(ga, &plan.dr.endpoint_group_arn)
    );
    Ok(Dials {
        primary: primary?,
        dr: dr?,
    })
}

pub async fn set_dial(
    ga: &aws_sdk_globalaccelerator::Client,
    endpoint_group_arn: &str,
    percent: i32,
) -> Result<()> {
    // Only TrafficDialPercentage is sent: UpdateEndpointGroup leaves the endpoints and health-check settings as they are.
    ga.update_endpoint_group()
        .endpoint_group_arn(endpoint_group_arn)
        .traffic_dial_percentage(percent as f32)
        .send()
        .await
        .map_err(|e| Error::aws("UpdateEndpointGroup", endpoint_group_arn, e))?;
    Ok(())
}

fn endpoint_group_variable(side: Side) -> &'static str {
    match side {
        Side::Primary => "PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN",
        Side::Dr => "PILOTLIGHT_DR_ENDPOINT_GROUP_ARN",
    }
}

/// Reads both endpoint groups and checks each is in the region the plan says: swapped ARNs would move traffic the
/// wrong way, so that is a plan error and nothing is changed.
async fn observe(ctx: &Context) -> Result<(EndpointGroupState, EndpointGroupState)> {
    let ga = &ctx.aws.global_accelerator;
    let plan = &ctx.plan;
    let (primary, dr) = tokio::join!(
        describe_endpoint_group(ga, &plan.primary.endpoint_group_arn),
        describe_endpoint_group(ga, &plan.dr.endpoint_group_arn)
    );
    let primary =
        primary.map_err(|e| e.check_if_missing(endpoint_group_variable(Side::Primary)))?;
    let dr = dr.map_err(|e| e.check_if_missing(endpoint_group_variable(Side::Dr)))?;
    for (side, group) in [(Side::Primary, &primary), (Side::Dr, &dr)] {
        let want = &plan.region(side).region;
        if &group.region != want {
            return Err(Error::config(
                endpoint_group_variable(side),
                format!(
                    "endpoint group {} serves region {:?}, but the plan's region for that side is {want}",
                    group.arn, group.region
                ),
            ));
        }
    }
    Ok((primary, dr))
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let input = StepInput::parse_with(STEP, event, &[Action::Drain])?;
    let report = match input.action {
        Action::Drain => drain(ctx, &input).await?,
        Action::Start | Action::Status => shift_traffic(ctx, &input).await?,
        other => {
            return Err(Error::invalid_input(format!(
                "{STEP}: action {:?} is not one of this step's actions",
                other.as_str()
            )));
        }
    };
    report.into_json()
}

/// The dials after draining (pure): the source dial at 0, the target dial as it is.
///
/// This is the one place both dials may end at 0, on purpose: the graceful flows (graceful failover, every
/// failback) stop client writes to the source database before promoting the target, so the catch-up can reach
/// lag 0 and nothing written to the old writer is lost. A short full outage is the price of zero data loss; the
/// following `start` ramps the target up from there (see [`next_dials`], which never raises the source).
pub fn drained_dials(current: Dials, direction: Direction) -> Dials {
    current.with(direction.source(), 0)
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
    let mut saw = json!({
        "dials": before,
        "endpoint_groups": { "primary": primary, "dr": dr },
        "mode": input.mode,
    });

    let (from, to) = (before.get(source), wanted.get(source));
    let mut after = before;
    if from != to {
        if !input.dry_run {
            set_dial(&ctx.aws.global_accelerator, source_arn, to).await?;
            // Read back rather than assume: `done` reports the live dial.
            after = after.with(
                source,
                read_dial(&ctx.aws.global_accelerator, source_arn).await?,
            );
        }
        report.change(source_arn, "TrafficDialPercentage", from, to);
    }
    saw["dials_after"] = json!(if input.dry_run { before } else { after });
    report.saw = saw;

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
        return Err(Error::new(
            ErrorKind::Transient,
            format!(
                "{STEP}: UpdateEndpointGroup set {source_arn} ({source_region}) to 0% but it reads {}%; drain again",
                after.get(source)
            ),
        ));
    };
    Ok(report.finish(done, message))
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
    let mut saw = json!({
        "dials": before,
        "endpoint_groups": { "primary": primary, "dr": dr },
        "dial_steps": steps,
        "mode": input.mode,
    });

    if input.action == Action::Status {
        report.saw = saw;
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
                    set_dial(&ctx.aws.global_accelerator, arn, to).await?;
                }
                report.change(arn, "TrafficDialPercentage", from, to);
            }
        }
        at = *next;
    }
    saw["dials_after"] = json!(at);
    saw["remaining_steps"] = json!(dial_path(at, direction, input.mode, steps));
    report.saw = saw;
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

fn describe(d: Dials) -> String {
    format!("primary {}% / dr {}%", d.primary, d.dr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[i32] = &[25, 50, 100];

    fn d(primary: i32, dr: i32) -> Dials {
        Dials { primary, dr }
    }

    fn never_both_zero(path: &[Dials]) {
        assert!(path.iter().all(|x| x.primary > 0 || x.dr > 0), "{path:?}");
    }

    #[test]
    fn graceful_failover_walks_the_plan_steps() {
        let path = dial_path(d(100, 0), Direction::Failover, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(75, 25), d(50, 50), d(0, 100)]);
        never_both_zero(&path);
    }

    #[test]
    fn graceful_failback_swaps_the_roles() {
        let path = dial_path(d(0, 100), Direction::Failback, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(25, 75), d(50, 50), d(100, 0)]);
        never_both_zero(&path);
    }

    #[test]
    fn other_step_plans() {
        assert_eq!(
            dial_path(d(100, 0), Direction::Failover, Mode::Graceful, &[100]),
            vec![d(0, 100)]
        );
        assert_eq!(
            dial_path(
                d(100, 0),
                Direction::Failover,
                Mode::Graceful,
                &[10, 20, 50, 100]
            ),
            vec![d(90, 10), d(80, 20), d(50, 50), d(0, 100)]
        );
        assert_eq!(
            dial_path(
                d(100, 0),
                Direction::Failover,
                Mode::Graceful,
                &[1, 99, 100]
            ),
            vec![d(99, 1), d(1, 99), d(0, 100)]
        );
    }

    #[test]
    fn odd_starting_points_join_the_next_step() {
        // DR at 30, primary at 70: the next step above 30 is 50.
        assert_eq!(
            next_dials(d(70, 30), Direction::Failover, Mode::Graceful, STEPS),
            d(50, 50)
        );
        assert_eq!(
            next_dials(d(30, 70), Direction::Failover, Mode::Graceful, STEPS),
            d(0, 100)
        );
        assert_eq!(
            next_dials(d(75, 25), Direction::Failover, Mode::Graceful, STEPS),
            d(50, 50)
        );
        // Both at 100 (DR dial left up): ramp the primary down a step at a time, never lowering the DR.
        assert_eq!(
            dial_path(d(100, 100), Direction::Failover, Mode::Graceful, STEPS),
            vec![d(75, 100), d(50, 100), d(0, 100)]
        );
        // Both at 0 (nothing serves): the first step gives the target traffic, the source is never raised.
        let path = dial_path(d(0, 0), Direction::Failover, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(0, 25), d(0, 50), d(0, 100)]);
        // The source dial is never raised, even when it is below 100 - step.
        assert_eq!(
            next_dials(d(10, 0), Direction::Failover, Mode::Graceful, STEPS),
            d(10, 25)
        );
    }

    #[test]
    fn drain_zeroes_the_source_only() {
        assert_eq!(drained_dials(d(100, 0), Direction::Failover), d(0, 0));
        assert_eq!(drained_dials(d(100, 30), Direction::Failover), d(0, 30));
        assert_eq!(drained_dials(d(0, 100), Direction::Failback), d(0, 0));
        assert_eq!(drained_dials(d(20, 100), Direction::Failback), d(20, 0));
        // Idempotent: a drained state drains to itself.
        for x in [d(0, 0), d(0, 100), d(40, 0)] {
            for dir in [Direction::Failover, Direction::Failback] {
                let once = drained_dials(x, dir);
                assert_eq!(drained_dials(once, dir), once);
            }
        }
    }

    #[test]
    fn start_after_drain_ramps_the_target_from_zero_and_never_raises_the_source() {
        for direction in [Direction::Failover, Direction::Failback] {
            let (t, s) = (direction.target(), direction.source());
            let drained = drained_dials(
                Dials {
                    primary: 100,
                    dr: 100,
                }
                .with(t, 0),
                direction,
            );
            assert_eq!(drained, d(0, 0));
            let first = next_dials(drained, direction, Mode::Graceful, STEPS);
            assert_eq!((first.get(t), first.get(s)), (25, 0), "{direction:?}");
            let path = dial_path(drained, direction, Mode::Graceful, STEPS);
            assert_eq!(
                path.iter()
                    .map(|x| (x.get(t), x.get(s)))
                    .collect::<Vec<_>>(),
                vec![(25, 0), (50, 0), (100, 0)],
                "{direction:?}"
            );
            // A forced (ungraceful) failback after the drain goes straight to the final dials.
            assert_eq!(
                dial_path(drained, direction, Mode::Ungraceful, STEPS),
                vec![d(0, 0).with(t, 100)]
            );
            // Drained with the target already partly up: it keeps rising, the source stays at 0.
            let partly = drained_dials(d(60, 60), direction);
            let path = dial_path(partly, direction, Mode::Graceful, STEPS);
            assert!(
                path.iter().all(|x| x.get(s) == 0 && x.get(t) >= 60),
                "{path:?}"
            );
            assert!(path.last().unwrap().is_final(direction));
        }
    }

    #[test]
    fn already_final_is_a_no_op() {
        assert_eq!(
            next_dials(d(0, 100), Direction::Failover, Mode::Graceful, STEPS),
            d(0, 100)
        );
        assert_eq!(
            next_dials(d(0, 100), Direction::Failover, Mode::Ungraceful, STEPS),
            d(0, 100)
        );
        assert!(dial_path(d(0, 100), Direction::Failover, Mode::Graceful, STEPS).is_empty());
        assert!(dial_path(d(100, 0), Direction::Failback, Mode::Ungraceful, STEPS).is_empty());
        assert!(d(0, 100).is_final(Direction::Failover));
        assert!(!d(0, 100).is_final(Direction::Failback));
        assert!(!d(10, 100).is_final(Direction::Failover));
    }

    #[test]
    fn ungraceful_goes_straight_to_final() {
        assert_eq!(
            dial_path(d(100, 0), Direction::Failover, Mode::Ungraceful, STEPS),
            vec![d(0, 100)]
        );
        assert_eq!(
            dial_path(d(50, 50), Direction::Failback, Mode::Ungraceful, STEPS),
            vec![d(100, 0)]
        );
        assert_eq!(
            next_dials(d(0, 0), Direction::Failover, Mode::Ungraceful, STEPS),
            d(0, 100)
        );
    }

    #[test]
    fn never_both_zero_and_always_progress_from_any_start() {
        for direction in [Direction::Failover, Direction::Failback] {
            for mode in [Mode::Graceful, Mode::Ungraceful] {
                for steps in [STEPS, &[100][..], &[5, 10, 100][..], &[33, 66, 100][..]] {
                    for p in (0..=100).step_by(5) {
                        for r in (0..=100).step_by(5) {
                            let start = d(p, r);
                            let path = dial_path(start, direction, mode, steps);
                            assert!(
                                path.len() <= steps.len(),
                                "{start:?} {direction:?} {mode:?} {steps:?}: {path:?}"
                            );
                            assert!(
                                path.last().is_none_or(|x| x.is_final(direction)),
                                "{start:?} {path:?}"
                            );
                            never_both_zero(&path);
                            let mut prev = start;
                            for x in &path {
                                let (t, s) = (direction.target(), direction.source());
                                // Each start raises the target (or keeps it) and lowers the source (or keeps it).
                                assert!(
                                    x.get(t) >= prev.get(t) && x.get(s) <= prev.get(s),
                                    "{prev:?} -> {x:?}"
                                );
                                assert_ne!(*x, prev);
                                prev = *x;
                            }
                        }
                    }
                }
            }
        }
    }
}
