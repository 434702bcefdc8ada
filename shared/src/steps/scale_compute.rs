//! scale-compute: make the target region's Auto Scaling group launch the newest AMI that AWS Backup copied into
//! that region's vault, at the capacity the plan (or the region being left) calls for. `status` counts the
//! instances that can take traffic.
//!
//! Launch path: the target region's launch template says `ImageId: resolve:ssm:<ami_parameter>` and this step writes
//! the AMI id into that SSM parameter (Type String, DataType `aws:ec2:image`, which is what launch templates require
//! of a parameter used as ImageId). Chosen over a new launch template version because:
//! - no aws-sdk-ec2: that crate alone was 38% of the release compile time; the SSM client is small;
//! - the launch template stays owned by IaC: no versions created behind CloudFormation's back, no drift;
//! - the parameter is a plain data value: comparing and setting it is trivially idempotent and easy to report;
//! - the ASG resolves the parameter at each launch, so instances launched after the write get the new AMI without
//!   touching the group's launch template version.
//!
//! Order matters: the parameter is written before the group is scaled, so no instance launches the old AMI.
//! Capacity only ever goes up: a re-run, or an operator who scaled further by hand, is never undone.
//! `mode` does not change this step: nothing here needs the source region, whose capacity is only a hint read with
//! its short timeouts.
//!
//! `reprotect` (failback only, at the very end) is the one scale-down: the DR group back to 0/0/0, the pilot light.
//! It first reads the DR endpoint group's traffic dial and refuses (unless `force`) while the DR still takes
//! traffic, so it can never switch off the region that serves.
//!
//! AWS validates the AMI asynchronously after PutParameter, which is why `status` reports the parameter's live value
//! next to the instance counts.
//!
//! Parts: [`capacity`] (the pure capacity and readiness decisions) and [`ami`] (which recovery point to launch).

pub mod ami;
pub mod capacity;
pub mod fence;
pub mod preflight;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::autoscaling::{GroupState, describe_group, update_group};
use crate::aws::backup::list_ec2_recovery_points;
use crate::aws::elbv2::count_healthy_targets;
use crate::aws::globalaccelerator::read_dial;
use crate::aws::ssm::{AmiParameter, put_parameter, read_parameter};
use crate::aws::{autoscaling, backup, elbv2, globalaccelerator, ssm};
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::Use;
use crate::plan::{Capacity, Direction, RegionPlan, Side};
use crate::runtime::{Context, StepEvent};
use crate::step::{Action, StepInput, StepReport};
use ami::{ChosenAmi, choose_ami};
use capacity::{
    PILOT_LIGHT, Readiness, capacity_changes, parameter_changes, readiness, reprotect_blocker,
    scale_up_only, wanted_capacity,
};

/// IAM: the adapter calls scale-compute makes (`crate::permissions`; tests/iam.rs holds its role to exactly these).
pub const PERMISSIONS: &[Use] = &[
    Use::always(
        &backup::LIST_EC2_RECOVERY_POINTS,
        "the newest AMI recovery point of the region's vault",
    ),
    Use::always(
        &ssm::READ_PARAMETER,
        "the launch template's AMI parameter as it is",
    ),
    Use::always(
        &ssm::PUT_PARAMETER,
        "points the AMI parameter at the recovery point",
    ),
    Use::always(
        &autoscaling::DESCRIBE_GROUP,
        "the groups' capacity and instances",
    ),
    Use::always(
        &autoscaling::UPDATE_GROUP,
        "restores capacity (reprotect: the old region to 0/0/0)",
    ),
    Use::always(
        &elbv2::COUNT_HEALTHY_TARGETS,
        "healthy targets of the plan's target group",
    ),
    Use::always(
        &globalaccelerator::DESCRIBE_ENDPOINT_GROUP,
        "reprotect and fence never scale down a region that takes traffic",
    ),
    Use::always(
        &autoscaling::TAG_GROUP,
        "fence: records the capacity it took away, for failback",
    ),
];

pub const STEP: &str = "scale-compute";

/// What the region being left said about its group: best-effort, it may be the failed region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SourceCapacity {
    Read {
        region: String,
        asg: String,
        capacity: Capacity,
    },
    Unavailable {
        region: String,
        asg: String,
        reason: String,
    },
}

impl SourceCapacity {
    pub fn capacity(&self) -> Option<Capacity> {
        match self {
            SourceCapacity::Read { capacity, .. } => Some(*capacity),
            SourceCapacity::Unavailable { .. } => None,
        }
    }
}

/// scale-compute's input: the contract's step input, with `reprotect` besides start and status.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleComputeInput(pub StepInput);

impl StepEvent for ScaleComputeInput {
    const STEP: &'static str = STEP;
    fn from_payload(payload: Value) -> Result<Self> {
        StepInput::parse_with(
            STEP,
            payload,
            &[Action::Reprotect, Action::Preflight, Action::Fence],
        )
        .map(ScaleComputeInput)
    }
}

pub async fn handle(
    ctx: &Context,
    ScaleComputeInput(input): ScaleComputeInput,
) -> Result<StepReport> {
    let report = StepReport::begin(STEP, &input);
    let report = match input.action {
        Action::Start => start(ctx, &input, report).await?,
        Action::Status => status(ctx, &input, report).await?,
        Action::Reprotect => reprotect(ctx, &input, report).await?,
        Action::Preflight => preflight::preflight(ctx, &input, report).await?,
        Action::Fence => fence::fence(ctx, &input, report).await,
        // parse_with already refuses these; an error (not a panic) keeps it that way if that ever changes.
        other @ (Action::Prepare | Action::CatchUp | Action::Drain | Action::Restore) => {
            return Err(Error::invalid_input(format!(
                "{STEP}: action {:?} is not one of this step's actions",
                other.as_str()
            )));
        }
    };
    tracing::info!(action = ?report.action, done = report.done, changes = report.changes.len(), message = %report.message, "scale-compute");
    Ok(report)
}

async fn start(ctx: &Context, input: &StepInput, mut report: StepReport) -> Result<StepReport> {
    let (target, source) = (input.direction.target(), input.direction.source());
    let tp = ctx.plan.region(target);
    let clients = ctx.aws.region(target);
    // Observe everything at once; the source read is bounded and never fails the step.
    let (group, parameter, points, source_capacity) = tokio::join!(
        describe_group(clients.autoscaling(), &tp.asg, &tp.region),
        read_parameter(clients.ssm(), &tp.ami_parameter, &tp.region),
        source_recovery_points(clients.backup(), tp),
        read_source_capacity(
            ctx.aws.region(source).autoscaling(),
            ctx.plan.region(source)
        ),
    );
    let group = require_group(group?, tp, target)?;
    let parameter = parameter?;
    let points = points?;
    let ami = choose_ami(
        &points,
        target,
        &tp.backup_vault,
        &tp.region,
        Utc::now(),
        ctx.plan.max_ami_age_hours,
        input.overrides.allow_stale_ami,
    )?;
    // A group a fence took to 0/0/0 recorded what it ran at: that, not the plan's pilot figure, is what to restore.
    let (base, recorded) = fence::restore_base(tp.capacity, group.fenced_capacity);
    let (wanted, basis) = wanted_capacity(base, source_capacity.capacity());
    let basis = match recorded {
        Some(r) => format!("{r}; {basis}"),
        None => basis,
    };
    let target_capacity = scale_up_only(group.capacity, wanted);

    report.record_saw(&CapacitySaw {
        region: &tp.region,
        asg: GroupView::of(&group),
        ami_parameter: &parameter,
        recovery_point: RecoveryPointView::of(&ami, &tp.backup_vault, points.len()),
        source_capacity: &source_capacity,
        plan_capacity: tp.capacity,
        wanted_capacity: wanted,
        capacity_basis: &basis,
    });

    // The parameter first: instances the scale-up launches must resolve the new AMI.
    let parameter_changes = parameter_changes(&parameter, &ami.image_id);
    for (field, from, to) in &parameter_changes {
        report.change(&tp.ami_parameter, field, from.clone(), to.clone());
    }
    if !parameter_changes.is_empty() && !input.dry_run {
        put_parameter(clients.ssm(), &tp.ami_parameter, &ami.image_id, &tp.region).await?;
    }
    let capacity_changes = capacity_changes(group.capacity, target_capacity);
    for (field, from, to) in &capacity_changes {
        report.change(&group.name, field, *from, *to);
    }
    if !capacity_changes.is_empty() && !input.dry_run {
        update_group(
            clients.autoscaling(),
            &group.name,
            &tp.region,
            &capacity_changes,
        )
        .await
        .map_err(|e| {
            if parameter_changes.is_empty() {
                e
            } else {
                Error::new(
                    e.kind,
                    format!(
                        "{e} (the AMI parameter {} already holds {}; re-run start to finish)",
                        tp.ami_parameter, ami.image_id
                    ),
                )
            }
        })?;
    }

    let capacity_text = format!(
        "{}/{}/{}",
        target_capacity.min, target_capacity.desired, target_capacity.max
    );
    let forced = if ami.too_old_but_forced {
        " (AMI older than the plan's limit, accepted by allow_stale_ami)"
    } else {
        ""
    };
    if input.dry_run {
        let n = report.changes.len();
        return Ok(report.finish(
            true,
            format!(
                "dry-run: would make {n} change(s): {} -> {}{forced}, {} -> min/desired/max {capacity_text}; nothing was changed",
                tp.ami_parameter, ami.image_id, group.name
            ),
        ));
    }
    if report.changes.is_empty() {
        // Nothing to change (a re-run, or already scaled): the step may already be complete.
        let ready = observe_readiness(ctx, target, &group).await?;
        let message = format!(
            "{} already holds {}{forced} and {} already runs at min/desired/max {capacity_text}; {}",
            tp.ami_parameter,
            ami.image_id,
            group.name,
            readiness_text(&ready)
        );
        return Ok(report.finish(ready.done, message));
    }
    Ok(report.finish(
        false,
        format!(
            "{} set to {}{forced} and {} scaled to min/desired/max {capacity_text}; poll status until {} instance(s) are healthy",
            tp.ami_parameter, ami.image_id, group.name, target_capacity.desired
        ),
    ))
}

/// `reprotect` (failback only, once traffic is home): the DR group back to 0/0/0. Scale-down is Auto Scaling's job
/// from there; instances still terminating are reported but do not hold the step back.
async fn reprotect(ctx: &Context, input: &StepInput, mut report: StepReport) -> Result<StepReport> {
    if input.direction != Direction::Failback {
        return Err(Error::invalid_input(format!(
            "{STEP}: reprotect is for failback only (it returns the DR Auto Scaling group to 0/0/0 once traffic is \
             back in the primary region); got direction {:?}; nothing was changed",
            input.direction.as_str()
        )));
    }
    // The side being left by a failback is the DR side.
    let side = input.direction.source();
    let sp = ctx.plan.region(side);
    let clients = ctx.aws.region(side);
    let (group, dial) = tokio::join!(
        describe_group(clients.autoscaling(), &sp.asg, &sp.region),
        read_dial(ctx.aws.global_accelerator(), &sp.endpoint_group_arn),
    );
    let group = require_group(group?, sp, side)?;
    let dial = dial.map_err(|e| e.check_if_missing("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN"))?;
    let in_service = group
        .instances
        .iter()
        .filter(|i| i.lifecycle_state == "InService")
        .count();
    let blocker = reprotect_blocker(dial, &sp.endpoint_group_arn);
    report.record_saw(&PilotLightSaw {
        region: &sp.region,
        asg: GroupView::of(&group),
        in_service,
        endpoint_group: EndpointGroupDial {
            arn: &sp.endpoint_group_arn,
            dial,
        },
        pilot_light_capacity: PILOT_LIGHT,
    });
    let changes = capacity_changes(group.capacity, PILOT_LIGHT);
    for (field, from, to) in &changes {
        report.change(&group.name, field, *from, *to);
    }
    let from_text = format!(
        "{}/{}/{}",
        group.capacity.min, group.capacity.desired, group.capacity.max
    );
    let draining = if in_service > 0 {
        format!("; {in_service} instance(s) still InService, Auto Scaling terminates them")
    } else {
        String::new()
    };

    if input.dry_run {
        let warning = blocker
            .as_ref()
            .map(|b| format!("; a real run would be refused now: {b}"))
            .unwrap_or_default();
        let what = if changes.is_empty() {
            format!("nothing to do: {} is already at 0/0/0", group.name)
        } else {
            format!(
                "would set {} min/desired/max {from_text} -> 0/0/0",
                group.name
            )
        };
        return Ok(report.finish(
            true,
            format!("dry-run: {what}{warning}; nothing was changed"),
        ));
    }
    if changes.is_empty() {
        return Ok(report.finish(
            true,
            format!(
                "no-op: {} ({}) is already at 0/0/0, the pilot light{draining}",
                group.name, sp.region
            ),
        ));
    }
    if let Some(b) = &blocker
        && !input.overrides.allow_serving_scale_down
    {
        return Err(Error::refused(format!(
            "{STEP}: reprotect refused: {b}; {} ({}) left at {from_text}",
            group.name, sp.region
        )));
    }
    update_group(clients.autoscaling(), &group.name, &sp.region, &changes).await?;
    let forced = if blocker.is_some() {
        format!(" (allow_serving_scale_down although the DR dial is {dial}%)")
    } else {
        String::new()
    };
    Ok(report.finish(
        true,
        format!(
            "{} ({}) scaled {from_text} -> 0/0/0: pilot light restored{forced}{draining}",
            group.name, sp.region
        ),
    ))
}

async fn status(ctx: &Context, input: &StepInput, mut report: StepReport) -> Result<StepReport> {
    let target = input.direction.target();
    let tp = ctx.plan.region(target);
    let clients = ctx.aws.region(target);
    let (group, parameter) = tokio::join!(
        describe_group(clients.autoscaling(), &tp.asg, &tp.region),
        read_parameter(clients.ssm(), &tp.ami_parameter, &tp.region),
    );
    let group = require_group(group?, tp, target)?;
    let parameter = parameter?;
    let ready = observe_readiness(ctx, target, &group).await?;
    let attached = tp
        .target_group_arn
        .as_ref()
        .map(|tg| group.target_group_arns.contains(tg));
    report.record_saw(&ReadinessSaw {
        region: &tp.region,
        asg: GroupView::of(&group),
        ami_parameter: &parameter,
        target_group_arn: tp.target_group_arn.as_deref(),
        target_group_attached: attached,
        readiness: &ready,
    });
    let mut message = readiness_text(&ready);
    if attached == Some(false) && !ready.done {
        message.push_str(&format!(
            "; the plan's target group is not attached to {}: check {} and the group's TargetGroupARNs",
            group.name,
            target.variable("TARGET_GROUP_ARN")
        ));
    }
    // In dry-run nothing was scaled, so there is nothing to wait for.
    let report = report.finish(ready.done || input.dry_run, message);
    Ok(if ready.near_completion() {
        report.poll_soon(ctx.plan.timing.poll_seconds)
    } else {
        report
    })
}

async fn observe_readiness(ctx: &Context, target: Side, group: &GroupState) -> Result<Readiness> {
    let tp = ctx.plan.region(target);
    let ready = group.ready_instances();
    let healthy_targets = match &tp.target_group_arn {
        Some(tg) => {
            let ids: HashSet<&str> = group.instances.iter().map(|i| i.id.as_str()).collect();
            let healthy = count_healthy_targets(ctx.aws.region(target).elbv2(), tg, &ids).await;
            Some(healthy.map_err(|e| {
                if e.kind == ErrorKind::NotFound {
                    Error::not_found(format!(
                        "{e}: check {}",
                        target.variable("TARGET_GROUP_ARN")
                    ))
                } else {
                    e
                }
            })?)
        }
        None => None,
    };
    Ok(readiness(
        group.capacity.desired,
        tp.capacity.desired,
        ready.len(),
        healthy_targets,
    ))
}

fn readiness_text(r: &Readiness) -> String {
    let targets = r
        .healthy_targets
        .map(|n| format!(", {n} healthy in the target group"))
        .unwrap_or_default();
    let verdict = if r.done { "ready" } else { "not ready yet" };
    format!(
        "{} of {} instance(s) InService and Healthy{targets}: {verdict}",
        r.in_service_healthy, r.wanted
    )
}

/// What `start` saw: the group, the AMI parameter and the recovery point it launches, and how the capacity was
/// chosen.
#[derive(Serialize)]
struct CapacitySaw<'a> {
    region: &'a str,
    asg: GroupView<'a>,
    ami_parameter: &'a AmiParameter,
    recovery_point: RecoveryPointView<'a>,
    source_capacity: &'a SourceCapacity,
    plan_capacity: Capacity,
    wanted_capacity: Capacity,
    capacity_basis: &'a str,
}

/// What `status` saw: the group, the AMI parameter and how many instances can take traffic.
#[derive(Serialize)]
struct ReadinessSaw<'a> {
    region: &'a str,
    asg: GroupView<'a>,
    ami_parameter: &'a AmiParameter,
    target_group_arn: Option<&'a str>,
    target_group_attached: Option<bool>,
    readiness: &'a Readiness,
}

/// What `reprotect` saw: the DR group and the DR dial that must be 0 before the group goes back to the pilot light.
#[derive(Serialize)]
struct PilotLightSaw<'a> {
    region: &'a str,
    asg: GroupView<'a>,
    in_service: usize,
    endpoint_group: EndpointGroupDial<'a>,
    pilot_light_capacity: Capacity,
}

#[derive(Serialize)]
struct EndpointGroupDial<'a> {
    arn: &'a str,
    dial: i32,
}

/// An Auto Scaling group as the reports show it: capacity and instance counts, not every instance.
#[derive(Serialize)]
struct GroupView<'a> {
    name: &'a str,
    min: i32,
    desired: i32,
    max: i32,
    instances: usize,
    in_service_healthy: usize,
    lifecycle_states: BTreeMap<&'a str, usize>,
    target_group_arns: &'a [String],
}

impl<'a> GroupView<'a> {
    fn of(g: &'a GroupState) -> Self {
        GroupView {
            name: &g.name,
            min: g.capacity.min,
            desired: g.capacity.desired,
            max: g.capacity.max,
            instances: g.instances.len(),
            in_service_healthy: g.ready_instances().len(),
            lifecycle_states: g.lifecycle_counts(),
            target_group_arns: &g.target_group_arns,
        }
    }
}

/// The recovery point whose AMI `start` launches, and how many the vault listed.
#[derive(Serialize)]
struct RecoveryPointView<'a> {
    vault: &'a str,
    listed: usize,
    arn: &'a str,
    image_id: &'a str,
    created_at: DateTime<Utc>,
    age_hours: f64,
    too_old_but_forced: bool,
}

impl<'a> RecoveryPointView<'a> {
    fn of(ami: &'a ChosenAmi, vault: &'a str, listed: usize) -> Self {
        RecoveryPointView {
            vault,
            listed,
            arn: &ami.recovery_point_arn,
            image_id: &ami.image_id,
            created_at: ami.created_at,
            age_hours: ami.age_hours,
            too_old_but_forced: ami.too_old_but_forced,
        }
    }
}

/// The recovery points of the plan's source resource in the region's vault: asked for (ByResourceArn) and kept
/// ([`ami::of_source`]), all of them when the plan names no source.
pub(crate) async fn source_recovery_points(
    backup: &aws_sdk_backup::Client,
    tp: &RegionPlan,
) -> Result<Vec<crate::aws::backup::RecoveryPoint>> {
    let source = tp.ami_source.as_deref();
    let points = list_ec2_recovery_points(backup, &tp.backup_vault, &tp.region, source).await?;
    Ok(ami::of_source(points, source))
}

fn require_group(group: Option<GroupState>, tp: &RegionPlan, side: Side) -> Result<GroupState> {
    group.ok_or_else(|| {
        Error::not_found(format!(
            "Auto Scaling group {} not found in {}: check {} and that the {side} stack (launch template + \
             Auto Scaling group) is deployed there; nothing was changed",
            tp.asg,
            tp.region,
            side.variable("ASG"),
        ))
    })
}

/// Best-effort read of the source region's group, bounded by one attempt's worth of that region's timeouts so a
/// dead region costs at most that, whatever the client's retry policy.
pub(crate) async fn read_source_capacity(
    asg: &aws_sdk_autoscaling::Client,
    sp: &RegionPlan,
) -> SourceCapacity {
    let limit = sp.connect_timeout + sp.read_timeout;
    let unavailable = |reason: String| SourceCapacity::Unavailable {
        region: sp.region.clone(),
        asg: sp.asg.clone(),
        reason,
    };
    match tokio::time::timeout(limit, describe_group(asg, &sp.asg, &sp.region)).await {
        Ok(Ok(Some(g))) => SourceCapacity::Read {
            region: sp.region.clone(),
            asg: sp.asg.clone(),
            capacity: g.capacity,
        },
        Ok(Ok(None)) => unavailable("group not found".to_string()),
        Ok(Err(e)) => unavailable(e.message),
        Err(_) => unavailable(format!("no answer within {} ms", limit.as_millis())),
    }
}
