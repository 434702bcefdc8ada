//! The approval request notify publishes for the approval gate: what the execution will do, why it was started,
//! and the two commands that answer it.

use chrono::{DateTime, SecondsFormat, Utc};

use serde_json::{Value, json};

use super::{NotifyInput, STEP};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::plan::{DatabasePlan, DnsPlan, FailoverPlan, Mode, Side};
use crate::routing::wanted_flags;
use crate::step::{Action, ExecutionInput};
use crate::timestamp::rfc3339;

/// Task tokens are opaque and AWS keeps them to a few kilobytes; a request with a larger one is refused as not
/// Step Functions'. The notice never carries the token (only [`token_fingerprint`]): whoever holds it can answer.
pub const TASK_TOKEN_MAX_BYTES: usize = 64 * 1024;

/// What an approval request carries in `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    pub task_token: String,
    /// The execution input as the state machine passed it (`$`), kept whole for the body.
    pub input: Value,
    pub execution: ExecutionInput,
}

/// Reads and checks `detail.task_token` and `detail.input` of an approval request.
pub fn approval_request(input: &NotifyInput) -> Result<ApprovalRequest> {
    let detail = &input.detail;
    let task_token = match detail.get("task_token") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        other => {
            return Err(Error::invalid_input(format!(
                "{STEP}: an approval request needs detail.task_token (the state machine passes $$.Task.Token), got {}",
                other.map_or("nothing".to_string(), |v| v.to_string())
            )));
        }
    };
    if task_token.len() > TASK_TOKEN_MAX_BYTES {
        return Err(Error::invalid_input(format!(
            "{STEP}: detail.task_token is {} bytes, more than the {TASK_TOKEN_MAX_BYTES} a Step Functions task token \
             has; nothing was published",
            task_token.len()
        )));
    }
    let raw = detail.get("input").cloned().unwrap_or(Value::Null);
    if !raw.is_object() {
        return Err(Error::invalid_input(format!(
            "{STEP}: an approval request needs detail.input, the execution input ($), got {raw}"
        )));
    }
    // `$` also carries what earlier states added (notify errors): those fields are not the input's and are left.
    let execution: ExecutionInput = serde_json::from_value(raw.clone()).map_err(|e| {
        Error::invalid_input(format!(
            "{STEP}: detail.input is not a pilotlight execution input: {e}"
        ))
    })?;
    let d = execution.direction;
    if d != input.direction {
        return Err(Error::invalid_input(format!(
            "{STEP}: direction {:?} differs from detail.input.direction {:?}",
            input.direction.as_str(),
            d.as_str()
        )));
    }
    Ok(ApprovalRequest {
        task_token,
        input: raw,
        execution,
    })
}

/// A short fingerprint of a task token (FNV-1a, 8 hex digits): enough to tell two requests apart in mail and logs,
/// useless as the token. The token itself is never mailed or logged.
pub fn token_fingerprint(token: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

/// The approval notice (pure): what the execution will do with the plan's resources, why it was started, and the
/// two commands that answer it. The commands name the execution, not the task token: detect reads the pending
/// token from the execution's history, so the token never travels by mail.
pub fn approval_body(
    plan: &FailoverPlan,
    input: &NotifyInput,
    request: &ApprovalRequest,
    now: DateTime<Utc>,
) -> Value {
    let direction = input.direction;
    let mode = request.execution.mode;
    let (source, target) = (direction.source(), direction.target());
    let (sp, tp) = (plan.region(source), plan.region(target));
    // What runs comes from the flow definition, the same one the state machine is generated from.
    let flow = Flow::for_run(direction, mode);
    let runs = |action: Action| {
        flow.calls()
            .any(|c| c.action == action && c.skip_in_mode != Some(mode))
    };
    let graceful_path = flow.kind.path() == "graceful";
    let catch_up = runs(Action::CatchUp);
    let prepare = runs(Action::Prepare);
    let failback = runs(Action::Reprotect);

    let database = match &plan.database {
        DatabasePlan::RdsReplica { .. } => {
            let (writer, replica) = (
                plan.database.resource(source),
                plan.database.resource(target),
            );
            let mut actions = Vec::new();
            if prepare {
                actions.push(format!(
                    "prepare: make sure {replica} in {} replicates {writer} (created if missing; a stale standalone \
                     instance holding that id is renamed {replica}-retired-<timestamp> first)",
                    tp.region
                ));
            }
            if catch_up {
                actions.push(format!("catch up: wait until {replica}'s replica lag is 0 (writes stopped by the drain)"));
            }
            actions.push(format!(
                "promote {replica} in {} (PromoteReadReplica): it becomes the writer",
                tp.region
            ));
            if failback {
                actions.push(format!(
                    "reprotect: rename {writer} in {} to {writer}-retired-<timestamp> and create a fresh replica {writer} \
                     of {replica}",
                    sp.region
                ));
            }
            json!({
                "mode": "rds-replica",
                "writer_now": {"region": sp.region, "db_instance": writer},
                "new_writer": {"region": tp.region, "db_instance": replica},
                "actions": actions,
                "data_loss": if catch_up {
                    "none: writes stop (drain) and the replica catches up to lag 0 before it is promoted".to_string()
                } else if request.execution.overrides.allow_replica_lag {
                    "up to the replica lag at promotion, accepted whatever it is (allow_replica_lag)".to_string()
                } else {
                    format!(
                        "up to the replica lag at promotion; refused above {} s (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS)",
                        plan.max_replica_lag_seconds
                    )
                },
            })
        }
        DatabasePlan::AuroraGlobal { global_cluster, .. } => {
            let (writer, secondary) = (
                plan.database.resource(source),
                plan.database.resource(target),
            );
            let call = if mode == Mode::Graceful {
                "SwitchoverGlobalCluster (no data loss; needs the source region)"
            } else {
                "FailoverGlobalCluster with AllowDataLoss"
            };
            json!({
                "mode": "aurora-global",
                "global_cluster": global_cluster,
                "writer_now": {"region": sp.region, "db_cluster_arn": writer},
                "new_writer": {"region": tp.region, "db_cluster_arn": secondary},
                "actions": [format!("{call}: {secondary} becomes the writer of {global_cluster}")],
                "data_loss": if mode == Mode::Graceful {
                    "none: a switchover waits until the secondary is fully synchronised".to_string()
                } else if request.execution.overrides.allow_replica_lag {
                    "up to the secondary's global database lag at failover (AllowDataLoss), accepted whatever it is \
                     (allow_replica_lag)"
                        .to_string()
                } else {
                    format!(
                        "up to the secondary's global database lag at failover (AllowDataLoss; AuroraGlobalDBRPOLag); \
                         refused above {} s (PILOTLIGHT_MAX_REPLICA_LAG_SECONDS)",
                        plan.max_replica_lag_seconds
                    )
                },
            })
        }
    };

    let compute = json!({
        "scale_up": {
            "region": tp.region,
            "asg": tp.asg,
            "capacity": tp.capacity,
            "capacity_rule": "at least this min/desired/max; the source region's larger desired capacity when it can be \
                              read, up to this max; never scaled down",
            "ami": format!(
                "newest COMPLETED AWS Backup recovery point in vault {} written to SSM parameter {} (the launch \
                 template's ImageId)",
                tp.backup_vault, tp.ami_parameter
            ),
        },
        "scale_down": failback.then(|| json!({
            "region": sp.region,
            "asg": sp.asg,
            "capacity": {"min": 0, "desired": 0, "max": 0},
            "when": "reprotect, after traffic and DNS are home",
        })),
    });

    let dial_steps: Vec<i32> = if mode == Mode::Graceful {
        plan.dial_steps.clone()
    } else {
        vec![100]
    };
    let traffic = json!({
        "endpoint_groups": [
            {"side": source.as_str(), "region": sp.region, "arn": sp.endpoint_group_arn, "final_dial": 0},
            {"side": target.as_str(), "region": tp.region, "arn": tp.endpoint_group_arn, "final_dial": 100},
        ],
        "drain_first": graceful_path,
        "drain": graceful_path.then(|| format!(
            "the {} dial goes to 0 before the database is promoted, so writes stop and none is lost; expect a short \
             outage until the {} dial is raised",
            sp.region, tp.region
        )),
        "target_dial_steps": dial_steps,
        "bake_seconds_between_steps": request.execution.timing.dial_bake_seconds,
    });

    let dns = match &plan.dns {
        DnsPlan::HealthCheck {
            primary_health_check_id,
            dr_health_check_id,
        } => {
            let flags = |side| {
                let f = wanted_flags(direction, side);
                match (f.disabled, f.inverted) {
                    (false, _) => "automatic (Route 53's checkers decide)",
                    (true, false) => "forced healthy (disabled)",
                    (true, true) => "forced unhealthy (disabled and inverted)",
                }
            };
            json!({
                "mode": "health-check",
                "health_checks": [
                    {"side": "primary", "id": primary_health_check_id, "final": flags(Side::Primary)},
                    {"side": "dr", "id": dr_health_check_id, "final": flags(Side::Dr)},
                ],
                "records_changed": false,
            })
        }
        DnsPlan::Records {
            hosted_zone_id,
            record_name,
            primary_value,
            dr_value,
            ttl,
        } => {
            let value = |side| match side {
                Side::Primary => primary_value,
                Side::Dr => dr_value,
            };
            json!({
                "mode": "records",
                "hosted_zone_id": hosted_zone_id,
                "record_name": record_name,
                "type": "CNAME",
                "from": value(source),
                "to": value(target),
                "ttl": ttl,
            })
        }
    };

    let steps = flow.what_will_happen(mode);

    let trigger = &request.execution.trigger;
    let at = format!(
        " at {}",
        rfc3339(trigger.state_change_time, SecondsFormat::AutoSi)
    );
    let why = match (trigger.source.as_str(), trigger.reason.trim()) {
        ("alarm", "") => {
            format!("alarm{at}: in ALARM: {}", trigger.alarms.join(", "))
        }
        (source, "") => format!("{source}{at}: no reason given"),
        (source, reason) => format!("{source}{at}: {reason}"),
    };

    let fingerprint = token_fingerprint(&request.task_token);
    let summary = format!(
        "{}{} {} -> {} ({} path{}), waiting for approval; nothing has been changed yet",
        if input.dry_run { "[DRY RUN] " } else { "" },
        direction.as_str(),
        sp.region,
        tp.region,
        if graceful_path {
            "graceful"
        } else {
            "ungraceful"
        },
        match request.execution.overrides.granted() {
            g if g.is_empty() => String::new(),
            g => format!(", overrides {}", g.join(", ")),
        }
    );
    let (findings, needed) = crate::preflight::findings_in(&request.input);
    let summary = if findings.is_empty() {
        summary
    } else {
        format!(
            "{summary}. PREFLIGHT FINDINGS ({}): {}",
            findings.len(),
            findings
                .iter()
                .map(|c| format!("{}: {}", c.check, c.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let mut approve = json!({"command": "approve", "execution": input.execution, "reason": "<who approves, and why>"});
    if !needed.is_empty() {
        approve["overrides"] = Value::Object(
            needed
                .iter()
                .map(|n| (n.clone(), Value::Bool(true)))
                .collect(),
        );
    }
    json!({
        "source": "pilotlight",
        "kind": "approval",
        "milestone": input.milestone.as_deref().unwrap_or("approval requested"),
        "execution": input.execution,
        "summary": summary,
        "direction": direction.as_str(),
        "mode": mode,
        "overrides": request.execution.overrides.granted(),
        "preflight": {
            "findings": findings,
            "overrides_needed": needed,
            "note": if findings.is_empty() {
                "every preflight check passed"
            } else {
                "the run stopped before changing anything: approving accepts only the findings whose override the \
                 answer names (the approve command below names them all); the preflight runs again after the answer \
                 and the run stops, unchanged, if a finding is still not accepted"
            },
        },
        "dry_run": input.dry_run,
        "from_region": sp.region,
        "to_region": tp.region,
        "why": {"summary": why, "trigger": trigger},
        "what_will_happen": {
            "steps": steps,
            "database": database,
            "compute": compute,
            "traffic": traffic,
            "dns": dns,
        },
        "how_to_answer": {
            "send_to": "the detect function of this pilotlight stack (invoke it with one of these JSON payloads)",
            "approve": approve,
            "reject": {"command": "reject", "execution": input.execution, "reason": "<who rejects, and why>"},
            "token_fingerprint": fingerprint,
            "note": "Send exactly one. detect finds this execution's pending approval itself (from its history); the \
                     task token is not in this message. Until an answer arrives the execution waits; when the \
                     approval timeout passes first, it stops (States.Timeout) without changing anything.",
        },
        "execution_input": request.input,
        "timestamps": {"sent_at": now},
    })
}
