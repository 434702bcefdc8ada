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
//! moto (the test emulator) accepts DataType `aws:ec2:image` but neither validates the AMI nor resolves
//! `resolve:ssm:` at launch; AWS validates the AMI asynchronously after PutParameter, which is why `status` reports
//! the parameter's live value next to the instance counts.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_ssm::types::ParameterType;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use crate::backup::{ChosenAmi, choose_ami, list_ec2_recovery_points};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Capacity, Direction, RegionPlan, Side};
use crate::runtime::Context;
use crate::step::{Action, StepInput, StepReport};

pub const STEP: &str = "scale-compute";

/// The SSM data type EC2 validates as an AMI id; required for `resolve:ssm:` in a launch template's ImageId.
pub const AMI_DATA_TYPE: &str = "aws:ec2:image";

/// An Auto Scaling group as DescribeAutoScalingGroups shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    pub name: String,
    pub capacity: Capacity,
    pub instances: Vec<GroupInstance>,
    pub target_group_arns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupInstance {
    pub id: String,
    pub lifecycle_state: String,
    pub health_status: String,
}

impl GroupState {
    /// Instances that can serve: InService and Healthy.
    pub fn ready_instances(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|i| i.lifecycle_state == "InService" && i.health_status == "Healthy")
            .map(|i| i.id.as_str())
            .collect()
    }

    fn lifecycle_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for i in &self.instances {
            *counts.entry(i.lifecycle_state.as_str()).or_default() += 1;
        }
        counts
    }
}

/// The launch template's AMI parameter; `value` is None when the parameter does not exist yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmiParameter {
    pub name: String,
    pub value: Option<String>,
    pub data_type: Option<String>,
}

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
    fn capacity(&self) -> Option<Capacity> {
        match self {
            SourceCapacity::Read { capacity, .. } => Some(*capacity),
            SourceCapacity::Unavailable { .. } => None,
        }
    }
}

/// The capacity to restore: the plan's, or the source's larger desired capacity (it reflects the load just before
/// the failure), never above the plan's max (the plan's cost bound for this region).
pub fn wanted_capacity(plan: Capacity, source: Option<Capacity>) -> (Capacity, String) {
    match source {
        Some(s) if s.desired > plan.desired => {
            let desired = s.desired.min(plan.max);
            let capped = if desired < s.desired {
                format!(", capped at the plan's max {}", plan.max)
            } else {
                String::new()
            };
            (
                Capacity { desired, ..plan },
                format!(
                    "source region's desired capacity {} is above the plan's {}{capped}",
                    s.desired, plan.desired
                ),
            )
        }
        Some(s) => (
            plan,
            format!(
                "plan capacity (source region's desired capacity {} is not above it)",
                s.desired
            ),
        ),
        None => (
            plan,
            "plan capacity (source region's capacity could not be read)".to_string(),
        ),
    }
}

/// Scale-up only: each bound is the larger of what the group has and what is wanted. Both inputs satisfy
/// min <= desired <= max, so the result does too.
pub fn scale_up_only(current: Capacity, wanted: Capacity) -> Capacity {
    Capacity {
        min: current.min.max(wanted.min),
        desired: current.desired.max(wanted.desired),
        max: current.max.max(wanted.max),
    }
}

/// The UpdateAutoScalingGroup fields that differ, as (field, from, to).
pub fn capacity_changes(current: Capacity, target: Capacity) -> Vec<(&'static str, i32, i32)> {
    [
        ("MinSize", current.min, target.min),
        ("DesiredCapacity", current.desired, target.desired),
        ("MaxSize", current.max, target.max),
    ]
    .into_iter()
    .filter(|(_, from, to)| from != to)
    .collect()
}

/// The parameter fields that differ from what the launch template needs, as (field, from, to).
pub fn parameter_changes(
    current: &AmiParameter,
    image_id: &str,
) -> Vec<(&'static str, Value, Value)> {
    let mut out = Vec::new();
    if current.value.as_deref() != Some(image_id) {
        out.push(("Value", json!(current.value), json!(image_id)));
    }
    if current.data_type.as_deref() != Some(AMI_DATA_TYPE) {
        out.push(("DataType", json!(current.data_type), json!(AMI_DATA_TYPE)));
    }
    out
}

/// How close the group is to serving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    /// The group's desired capacity, but at least the plan's (a group still at zero is not "done").
    pub wanted: i32,
    pub in_service_healthy: usize,
    /// Healthy targets of the group's instances in the plan's target group (None: the plan names no target group).
    pub healthy_targets: Option<usize>,
    pub done: bool,
}

pub fn readiness(
    group_desired: i32,
    plan_desired: i32,
    in_service_healthy: usize,
    healthy_targets: Option<usize>,
) -> Readiness {
    let wanted = group_desired.max(plan_desired);
    let enough = |n: usize| n as i64 >= i64::from(wanted);
    let done = enough(in_service_healthy) && healthy_targets.is_none_or(enough);
    Readiness {
        wanted,
        in_service_healthy,
        healthy_targets,
        done,
    }
}

pub async fn handle(ctx: &Context, event: Value) -> Result<Value> {
    let input = StepInput::parse_with(STEP, event, &[Action::Reprotect])?;
    let report = StepReport::begin(STEP, &input);
    let report = match input.action {
        Action::Start => start(ctx, &input, report).await?,
        Action::Status => status(ctx, &input, report).await?,
        Action::Reprotect => reprotect(ctx, &input, report).await?,
        // parse_with already refuses these; an error (not a panic) keeps it that way if that ever changes.
        other @ (Action::Prepare | Action::CatchUp | Action::Drain) => {
            return Err(Error::invalid_input(format!(
                "{STEP}: action {:?} is not one of this step's actions",
                other.as_str()
            )));
        }
    };
    tracing::info!(action = ?report.action, done = report.done, changes = report.changes.len(), message = %report.message, "scale-compute");
    report.into_json()
}

async fn start(ctx: &Context, input: &StepInput, mut report: StepReport) -> Result<StepReport> {
    let (target, source) = (input.direction.target(), input.direction.source());
    let tp = ctx.plan.region(target);
    let clients = ctx.aws.region(target);
    // Observe everything at once; the source read is bounded and never fails the step.
    let (group, parameter, points, source_capacity) = tokio::join!(
        describe_group(&clients.autoscaling, &tp.asg, &tp.region),
        read_parameter(&clients.ssm, &tp.ami_parameter, &tp.region),
        list_ec2_recovery_points(&clients.backup, &tp.backup_vault, &tp.region),
        read_source_capacity(&ctx.aws.region(source).autoscaling, ctx.plan.region(source)),
    );
    let group = require_group(group?, tp, target)?;
    let parameter = parameter?;
    let points = points?;
    let ami = choose_ami(
        &points,
        side_label(target),
        &tp.backup_vault,
        &tp.region,
        Utc::now(),
        ctx.plan.max_ami_age_hours,
        input.force,
    )?;
    let (wanted, basis) = wanted_capacity(tp.capacity, source_capacity.capacity());
    let target_capacity = scale_up_only(group.capacity, wanted);

    report.saw = json!({
        "region": tp.region,
        "asg": group_view(&group),
        "ami_parameter": parameter,
        "recovery_point": recovery_point_view(&ami, &tp.backup_vault, points.len()),
        "source_capacity": source_capacity,
        "plan_capacity": tp.capacity,
        "wanted_capacity": wanted,
        "capacity_basis": basis,
    });

    // The parameter first: instances the scale-up launches must resolve the new AMI.
    let parameter_changes = parameter_changes(&parameter, &ami.image_id);
    for (field, from, to) in &parameter_changes {
        report.change(&tp.ami_parameter, field, from.clone(), to.clone());
    }
    if !parameter_changes.is_empty() && !input.dry_run {
        put_parameter(&clients.ssm, &tp.ami_parameter, &ami.image_id, &tp.region).await?;
    }
    let capacity_changes = capacity_changes(group.capacity, target_capacity);
    for (field, from, to) in &capacity_changes {
        report.change(&group.name, field, *from, *to);
    }
    if !capacity_changes.is_empty() && !input.dry_run {
        update_group(
            &clients.autoscaling,
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
        " (AMI older than the plan's limit, accepted by force)"
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

/// The pilot light: a region that does not serve runs no instances.
pub const PILOT_LIGHT: Capacity = Capacity {
    min: 0,
    desired: 0,
    max: 0,
};

/// Why reprotect may not scale the DR group down now (pure): it must not take capacity from a region that still
/// receives traffic. `dr_dial` is the DR endpoint group's traffic dial.
pub fn reprotect_blocker(dr_dial: i32, dr_endpoint_group: &str) -> Option<String> {
    (dr_dial > 0).then(|| {
        format!(
            "the DR endpoint group {dr_endpoint_group} still takes {dr_dial}% of the traffic: finish the failback \
             (shift-traffic until the primary dial is 100 and the DR dial 0) before reprotect, or rerun with force"
        )
    })
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
        describe_group(&clients.autoscaling, &sp.asg, &sp.region),
        crate::globalaccelerator::read_dial(&ctx.aws.global_accelerator, &sp.endpoint_group_arn),
    );
    let group = require_group(group?, sp, side)?;
    let dial = dial.map_err(|e| e.check_if_missing("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN"))?;
    let in_service = group
        .instances
        .iter()
        .filter(|i| i.lifecycle_state == "InService")
        .count();
    let blocker = reprotect_blocker(dial, &sp.endpoint_group_arn);
    report.saw = json!({
        "region": sp.region,
        "asg": group_view(&group),
        "in_service": in_service,
        "endpoint_group": { "arn": sp.endpoint_group_arn, "dial": dial },
        "pilot_light_capacity": PILOT_LIGHT,
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
        && !input.force
    {
        return Err(Error::refused(format!(
            "{STEP}: reprotect refused: {b}; {} ({}) left at {from_text}",
            group.name, sp.region
        )));
    }
    update_group(&clients.autoscaling, &group.name, &sp.region, &changes).await?;
    let forced = if blocker.is_some() {
        format!(" (forced although the DR dial is {dial}%)")
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
        describe_group(&clients.autoscaling, &tp.asg, &tp.region),
        read_parameter(&clients.ssm, &tp.ami_parameter, &tp.region),
    );
    let group = require_group(group?, tp, target)?;
    let parameter = parameter?;
    let ready = observe_readiness(ctx, target, &group).await?;
    let attached = tp
        .target_group_arn
        .as_ref()
        .map(|tg| group.target_group_arns.contains(tg));
    report.saw = json!({
        "region": tp.region,
        "asg": group_view(&group),
        "ami_parameter": parameter,
        "target_group_arn": tp.target_group_arn,
        "target_group_attached": attached,
        "readiness": ready,
    });
    let mut message = readiness_text(&ready);
    if attached == Some(false) && !ready.done {
        message.push_str(&format!(
            "; the plan's target group is not attached to {}: check PILOTLIGHT_{}_TARGET_GROUP_ARN and the group's TargetGroupARNs",
            group.name,
            var_prefix(target)
        ));
    }
    // In dry-run nothing was scaled, so there is nothing to wait for.
    Ok(report.finish(ready.done || input.dry_run, message))
}

async fn observe_readiness(ctx: &Context, target: Side, group: &GroupState) -> Result<Readiness> {
    let tp = ctx.plan.region(target);
    let ready = group.ready_instances();
    let healthy_targets = match &tp.target_group_arn {
        Some(tg) => {
            let ids: HashSet<&str> = group.instances.iter().map(|i| i.id.as_str()).collect();
            Some(count_healthy_targets(&ctx.aws.region(target).elbv2, tg, &ids, target).await?)
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

fn side_label(side: Side) -> &'static str {
    match side {
        Side::Primary => "primary",
        Side::Dr => "DR",
    }
}

fn var_prefix(side: Side) -> &'static str {
    match side {
        Side::Primary => "PRIMARY",
        Side::Dr => "DR",
    }
}

fn group_view(g: &GroupState) -> Value {
    json!({
        "name": g.name,
        "min": g.capacity.min,
        "desired": g.capacity.desired,
        "max": g.capacity.max,
        "instances": g.instances.len(),
        "in_service_healthy": g.ready_instances().len(),
        "lifecycle_states": g.lifecycle_counts(),
        "target_group_arns": g.target_group_arns,
    })
}

fn recovery_point_view(ami: &ChosenAmi, vault: &str, listed: usize) -> Value {
    json!({
        "vault": vault,
        "listed": listed,
        "arn": ami.recovery_point_arn,
        "image_id": ami.image_id,
        "created_at": ami.created_at,
        "age_hours": ami.age_hours,
        "too_old_but_forced": ami.too_old_but_forced,
    })
}

fn require_group(group: Option<GroupState>, tp: &RegionPlan, side: Side) -> Result<GroupState> {
    group.ok_or_else(|| {
        Error::not_found(format!(
            "Auto Scaling group {} not found in {}: check PILOTLIGHT_{}_ASG and that the {} stack (launch template + \
             Auto Scaling group) is deployed there; nothing was changed",
            tp.asg,
            tp.region,
            var_prefix(side),
            side_label(side)
        ))
    })
}

/// Reads one group; None when it does not exist.
pub async fn describe_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    region: &str,
) -> Result<Option<GroupState>> {
    let resp = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "DescribeAutoScalingGroups",
                &format!("Auto Scaling group {name} ({region})"),
                e,
            )
        })?;
    Ok(resp
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(|g| GroupState {
            name: name.to_string(),
            capacity: Capacity {
                min: g.min_size().unwrap_or(0),
                desired: g.desired_capacity().unwrap_or(0),
                max: g.max_size().unwrap_or(0),
            },
            instances: g
                .instances()
                .iter()
                .map(|i| GroupInstance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    lifecycle_state: i
                        .lifecycle_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    health_status: i.health_status().unwrap_or_default().to_string(),
                })
                .collect(),
            target_group_arns: g.target_group_arns().to_vec(),
        }))
}

/// Best-effort read of the source region's group, bounded by one attempt's worth of that region's timeouts so a
/// dead region costs at most that, whatever the client's retry policy.
async fn read_source_capacity(
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

pub async fn read_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    region: &str,
) -> Result<AmiParameter> {
    match ssm.get_parameter().name(name).send().await {
        Ok(resp) => {
            let p = resp.parameter();
            Ok(AmiParameter {
                name: name.to_string(),
                value: p.and_then(|p| p.value()).map(str::to_string),
                data_type: p.and_then(|p| p.data_type()).map(str::to_string),
            })
        }
        // Absent is a normal state before the first failover: the step creates it.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(AmiParameter {
                name: name.to_string(),
                value: None,
                data_type: None,
            })
        }
        Err(e) => Err(Error::aws(
            "GetParameter",
            &format!("SSM parameter {name} ({region})"),
            e,
        )),
    }
}

async fn put_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    image_id: &str,
    region: &str,
) -> Result<()> {
    ssm.put_parameter()
        .name(name)
        .value(image_id)
        .r#type(ParameterType::String)
        .data_type(AMI_DATA_TYPE)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| {
            let err = Error::aws("PutParameter", &format!("SSM parameter {name} ({region})"), e);
            Error::new(err.kind, format!("{err}: check the function's ssm:PutParameter permission and the parameter's type"))
        })?;
    Ok(())
}

async fn update_group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    region: &str,
    changes: &[(&'static str, i32, i32)],
) -> Result<()> {
    let mut call = asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name);
    for (field, _, to) in changes {
        call = match *field {
            "MinSize" => call.min_size(*to),
            "DesiredCapacity" => call.desired_capacity(*to),
            _ => call.max_size(*to),
        };
    }
    call.send().await.map_err(|e| {
        // A scaling activity or another update in flight clears by itself: let the state machine retry.
        let busy = e
            .as_service_error()
            .and_then(|s| s.code())
            .is_some_and(|c| c == "ScalingActivityInProgress" || c == "ResourceContention");
        let err = Error::aws(
            "UpdateAutoScalingGroup",
            &format!("Auto Scaling group {name} ({region})"),
            e,
        );
        if busy {
            Error::new(ErrorKind::Transient, err.message)
        } else {
            Error::new(
                err.kind,
                format!("{err}: check the group's launch template and the function's autoscaling:UpdateAutoScalingGroup permission"),
            )
        }
    })?;
    Ok(())
}

/// Healthy targets in `target_group_arn` that are instances of the group (other registrations do not count).
async fn count_healthy_targets(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    group_instances: &HashSet<&str>,
    side: Side,
) -> Result<usize> {
    let resp = elbv2
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| {
            let err = Error::aws(
                "DescribeTargetHealth",
                &format!("target group {target_group_arn}"),
                e,
            );
            if err.kind == ErrorKind::NotFound {
                Error::not_found(format!(
                    "{err}: check PILOTLIGHT_{}_TARGET_GROUP_ARN",
                    var_prefix(side)
                ))
            } else {
                err
            }
        })?;
    Ok(resp
        .target_health_descriptions()
        .iter()
        .filter(|d| {
            d.target()
                .and_then(|t| t.id())
                .is_some_and(|id| group_instances.contains(id))
        })
        .filter(|d| {
            d.target_health()
                .and_then(|h| h.state())
                .is_some_and(|s| s.as_str() == "healthy")
        })
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn cap(min: i32, desired: i32, max: i32) -> Capacity {
        Capacity { min, desired, max }
    }

    #[test]
    fn source_capacity_above_the_plan_wins_up_to_the_plans_max() {
        let plan = cap(2, 2, 4);
        assert_eq!(wanted_capacity(plan, Some(cap(1, 3, 8))).0, cap(2, 3, 4));
        let (c, why) = wanted_capacity(plan, Some(cap(2, 6, 8)));
        assert_eq!(c, cap(2, 4, 4));
        assert!(why.contains("capped at the plan's max 4"), "{why}");
        assert_eq!(wanted_capacity(plan, Some(cap(0, 1, 1))).0, plan);
        let (c, why) = wanted_capacity(plan, None);
        assert_eq!(c, plan);
        assert!(why.contains("could not be read"), "{why}");
    }

    #[test]
    fn capacity_never_goes_down() {
        assert_eq!(scale_up_only(cap(0, 0, 0), cap(2, 2, 4)), cap(2, 2, 4));
        assert_eq!(scale_up_only(cap(3, 5, 10), cap(2, 2, 4)), cap(3, 5, 10));
        assert_eq!(scale_up_only(cap(0, 1, 2), cap(2, 2, 4)), cap(2, 2, 4));
        assert_eq!(scale_up_only(cap(0, 6, 8), cap(2, 2, 4)), cap(2, 6, 8));
    }

    #[test]
    fn only_differing_fields_change() {
        assert_eq!(
            capacity_changes(cap(0, 0, 0), cap(2, 2, 4)),
            vec![
                ("MinSize", 0, 2),
                ("DesiredCapacity", 0, 2),
                ("MaxSize", 0, 4)
            ]
        );
        assert_eq!(
            capacity_changes(cap(2, 2, 8), cap(2, 3, 8)),
            vec![("DesiredCapacity", 2, 3)]
        );
        assert!(capacity_changes(cap(2, 2, 4), cap(2, 2, 4)).is_empty());
    }

    #[test]
    fn reprotect_goes_to_zero_and_waits_for_the_dr_dial() {
        assert_eq!(
            capacity_changes(cap(2, 4, 8), PILOT_LIGHT),
            vec![
                ("MinSize", 2, 0),
                ("DesiredCapacity", 4, 0),
                ("MaxSize", 8, 0)
            ]
        );
        assert_eq!(
            capacity_changes(cap(0, 0, 4), PILOT_LIGHT),
            vec![("MaxSize", 4, 0)]
        );
        assert!(capacity_changes(PILOT_LIGHT, PILOT_LIGHT).is_empty());
        assert_eq!(reprotect_blocker(0, "eg-dr"), None);
        let why = reprotect_blocker(25, "eg-dr").unwrap();
        assert!(
            why.contains("eg-dr") && why.contains("25%") && why.contains("force"),
            "{why}"
        );
    }

    #[test]
    fn parameter_changes_cover_value_and_data_type() {
        let absent = AmiParameter {
            name: "/p".into(),
            value: None,
            data_type: None,
        };
        assert_eq!(
            parameter_changes(&absent, "ami-1"),
            vec![
                ("Value", Value::Null, json!("ami-1")),
                ("DataType", Value::Null, json!(AMI_DATA_TYPE))
            ]
        );
        let text = AmiParameter {
            name: "/p".into(),
            value: Some("ami-1".into()),
            data_type: Some("text".into()),
        };
        assert_eq!(
            parameter_changes(&text, "ami-1"),
            vec![("DataType", json!("text"), json!(AMI_DATA_TYPE))]
        );
        let same = AmiParameter {
            name: "/p".into(),
            value: Some("ami-1".into()),
            data_type: Some(AMI_DATA_TYPE.into()),
        };
        assert!(parameter_changes(&same, "ami-1").is_empty());
        assert_eq!(
            parameter_changes(&same, "ami-2"),
            vec![("Value", json!("ami-1"), json!("ami-2"))]
        );
    }

    #[test]
    fn readiness_wants_at_least_the_plans_desired_and_healthy_targets() {
        assert!(
            !readiness(0, 2, 0, None).done,
            "a group still at zero is not done"
        );
        assert!(readiness(2, 2, 2, None).done);
        assert!(!readiness(2, 2, 2, Some(1)).done);
        assert!(readiness(2, 2, 2, Some(2)).done);
        let r = readiness(4, 2, 3, Some(3));
        assert_eq!((r.wanted, r.done), (4, false));
    }

    #[test]
    fn ready_instances_are_in_service_and_healthy() {
        let i = |id: &str, l: &str, h: &str| GroupInstance {
            id: id.into(),
            lifecycle_state: l.into(),
            health_status: h.into(),
        };
        let g = GroupState {
            name: "g".into(),
            capacity: cap(0, 3, 3),
            instances: vec![
                i("a", "InService", "Healthy"),
                i("b", "Pending", "Healthy"),
                i("c", "InService", "Unhealthy"),
            ],
            target_group_arns: vec![],
        };
        assert_eq!(g.ready_instances(), vec!["a"]);
        assert_eq!(g.lifecycle_counts().get("InService"), Some(&2));
    }
}
