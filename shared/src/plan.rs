//! The failover plan: which two regions, which resources in each, and the policy knobs. Read from the Lambda
//! environment (what SAM parameters become) or, for local tools, from a `KEY=VALUE` file with the same keys.
//! Nothing here is a constant: Seoul/Tokyo is only the reference setup (plans/reference.env).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which way traffic moves. Failover: primary -> DR. Failback: DR -> primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Failover,
    Failback,
}

impl Direction {
    /// The side that becomes active.
    pub fn target(self) -> Side {
        match self {
            Direction::Failover => Side::Dr,
            Direction::Failback => Side::Primary,
        }
    }
    /// The side being left (possibly failed): calls to it are best-effort.
    pub fn source(self) -> Side {
        self.target().other()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Failover => "failover",
            Direction::Failback => "failback",
        }
    }
}

/// Graceful needs the source region to answer and loses no data; ungraceful acts without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Graceful,
    #[default]
    Ungraceful,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Primary,
    Dr,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Primary => Side::Dr,
            Side::Dr => Side::Primary,
        }
    }

    /// The side's name as JSON spells it ("primary", "dr").
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Dr => "dr",
        }
    }

    /// The plan variable naming this side's `what`, e.g. `PILOTLIGHT_DR_ASG` for `"ASG"`.
    pub fn variable(self, what: &str) -> String {
        format!("PILOTLIGHT_{}_{what}", self.as_str().to_ascii_uppercase())
    }
}

/// In prose the DR side is written as the acronym it is: "the DR vault", "the primary stack".
impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Dr => f.write_str("DR"),
            Side::Primary => f.write_str(self.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub min: i32,
    pub desired: i32,
    pub max: i32,
}

/// Everything the plan knows about one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionPlan {
    pub region: String,
    pub asg: String,
    pub capacity: Capacity,
    pub target_group_arn: Option<String>,
    pub backup_vault: String,
    pub ami_parameter: String,
    pub endpoint_group_arn: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum DatabasePlan {
    /// RDS instance in the primary with a cross-region read replica in the DR region.
    RdsReplica {
        primary_instance: String,
        dr_instance: String,
    },
    /// Aurora global database with one cluster per region.
    AuroraGlobal {
        global_cluster: String,
        primary_cluster_arn: String,
        dr_cluster_arn: String,
    },
}

impl DatabasePlan {
    /// The instance id (RDS) or cluster ARN (Aurora) on `side`.
    pub fn resource(&self, side: Side) -> &str {
        match (self, side) {
            (
                DatabasePlan::RdsReplica {
                    primary_instance, ..
                },
                Side::Primary,
            ) => primary_instance,
            (DatabasePlan::RdsReplica { dr_instance, .. }, Side::Dr) => dr_instance,
            (
                DatabasePlan::AuroraGlobal {
                    primary_cluster_arn,
                    ..
                },
                Side::Primary,
            ) => primary_cluster_arn,
            (DatabasePlan::AuroraGlobal { dr_cluster_arn, .. }, Side::Dr) => dr_cluster_arn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum DnsPlan {
    /// Failover records guarded by pre-created health checks; failover flips the checks (no record change).
    HealthCheck {
        primary_health_check_id: String,
        dr_health_check_id: String,
    },
    /// One CNAME record UPSERTed to the active region's target.
    Records {
        hosted_zone_id: String,
        record_name: String,
        primary_value: String,
        dr_value: String,
        ttl: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmPolicy {
    pub region: String,
    pub names: Vec<String>,
    pub quorum: usize,
    pub cooldown: Duration,
}

/// State-machine timing, handed to each execution so the drill can run in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub poll_seconds: u32,
    pub dial_bake_seconds: u32,
    pub max_polls: u32,
    /// How long the approval gate waits for an answer (`TimeoutSecondsPath` of the approval task). Inputs written
    /// before it existed read as the default.
    #[serde(default = "default_approval_timeout_seconds")]
    pub approval_timeout_seconds: u32,
}

/// Step Functions waits on a task token for at most a year; pilotlight keeps the approval wait well inside the
/// execution's 24 h net.
pub const MAX_APPROVAL_TIMEOUT_SECONDS: u64 = 43_200;
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u32 = 3600;

fn default_approval_timeout_seconds() -> u32 {
    DEFAULT_APPROVAL_TIMEOUT_SECONDS
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverPlan {
    pub account_id: String,
    pub primary: RegionPlan,
    pub dr: RegionPlan,
    pub alarms: AlarmPolicy,
    pub database: DatabasePlan,
    pub max_replica_lag_seconds: f64,
    pub max_ami_age_hours: u64,
    pub dial_steps: Vec<i32>,
    pub dns: DnsPlan,
    pub sns_topic_arn: String,
    pub state_machine_arn: Option<String>,
    /// The flow lock's DynamoDB table (detect only): one non-dry-run flow at a time.
    pub lock_table: Option<String>,
    /// Alarm-triggered executions run in dry-run (rehearsal with real alarms).
    pub dry_run: bool,
    /// Executions pause for an operator's approval before the first mutating step (PILOTLIGHT_APPROVAL=required).
    pub approval_required: bool,
    pub timing: Timing,
}

impl FailoverPlan {
    pub fn region(&self, side: Side) -> &RegionPlan {
        match side {
            Side::Primary => &self.primary,
            Side::Dr => &self.dr,
        }
    }

    /// Reads the plan from the process environment.
    pub fn from_env() -> Result<Self> {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PILOTLIGHT_"))
            .collect();
        Self::from_map(&vars)
    }

    /// Reads a `KEY=VALUE` plan file (blank lines and `#` comments allowed). Variables already set in the
    /// environment win, so one value can be overridden for a run.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config("plan file", format!("cannot read {}: {e}", path.display()))
        })?;
        let mut vars = parse_env_file(&text)
            .map_err(|e| Error::config("plan file", format!("{}: {e}", path.display())))?;
        vars.extend(std::env::vars().filter(|(k, _)| k.starts_with("PILOTLIGHT_")));
        Self::from_map(&vars)
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self> {
        let v = Vars(vars);
        let primary_region = v.region("PILOTLIGHT_PRIMARY_REGION")?;
        let dr_region = v.region("PILOTLIGHT_DR_REGION")?;
        if primary_region == dr_region {
            return Err(Error::config(
                "PILOTLIGHT_DR_REGION",
                format!("must differ from PILOTLIGHT_PRIMARY_REGION ({primary_region})"),
            ));
        }
        let account_id = v.required("PILOTLIGHT_ACCOUNT_ID")?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::config(
                "PILOTLIGHT_ACCOUNT_ID",
                format!("expected 12 digits, got {account_id:?}"),
            ));
        }
        let region_plan =
            |prefix: &str, region: String, timeouts: (u64, u64)| -> Result<RegionPlan> {
                Ok(RegionPlan {
                    region,
                    asg: v.required(&format!("PILOTLIGHT_{prefix}_ASG"))?,
                    capacity: v.capacity(&format!("PILOTLIGHT_{prefix}_CAPACITY"))?,
                    target_group_arn: v.optional(&format!("PILOTLIGHT_{prefix}_TARGET_GROUP_ARN")),
                    backup_vault: v.required(&format!("PILOTLIGHT_{prefix}_BACKUP_VAULT"))?,
                    ami_parameter: v.required(&format!("PILOTLIGHT_{prefix}_AMI_PARAMETER"))?,
                    endpoint_group_arn: v.arn(
                        &format!("PILOTLIGHT_{prefix}_ENDPOINT_GROUP_ARN"),
                        "globalaccelerator",
                    )?,
                    connect_timeout: Duration::from_millis(v.number(
                        &format!("PILOTLIGHT_{prefix}_CONNECT_TIMEOUT_MS"),
                        timeouts.0,
                    )?),
                    read_timeout: Duration::from_millis(
                        v.number(&format!("PILOTLIGHT_{prefix}_READ_TIMEOUT_MS"), timeouts.1)?,
                    ),
                })
            };
        // The primary is the region most likely to be failing: short timeouts so a dead endpoint never blocks.
        let primary = region_plan("PRIMARY", primary_region, (1000, 3000))?;
        let dr = region_plan("DR", dr_region, (3000, 20000))?;

        let names: Vec<String> = v.list("PILOTLIGHT_ALARM_NAMES")?;
        let quorum = v.number("PILOTLIGHT_QUORUM", 1)? as usize;
        if quorum == 0 || quorum > names.len() {
            return Err(Error::config(
                "PILOTLIGHT_QUORUM",
                format!(
                    "must be between 1 and the number of alarms ({}), got {quorum}",
                    names.len()
                ),
            ));
        }
        let alarms = AlarmPolicy {
            region: match v.optional("PILOTLIGHT_ALARM_REGION") {
                Some(_) => v.region("PILOTLIGHT_ALARM_REGION")?,
                None => dr.region.clone(),
            },
            names,
            quorum,
            cooldown: Duration::from_secs(v.number("PILOTLIGHT_COOLDOWN_SECONDS", 1800)?),
        };

        let database = match v.required("PILOTLIGHT_DB_MODE")?.as_str() {
            "rds-replica" => DatabasePlan::RdsReplica {
                primary_instance: v.required("PILOTLIGHT_PRIMARY_DB_INSTANCE")?,
                dr_instance: v.required("PILOTLIGHT_DR_DB_INSTANCE")?,
            },
            "aurora-global" => DatabasePlan::AuroraGlobal {
                global_cluster: v.required("PILOTLIGHT_GLOBAL_CLUSTER")?,
                primary_cluster_arn: v.arn("PILOTLIGHT_PRIMARY_DB_CLUSTER_ARN", "rds")?,
                dr_cluster_arn: v.arn("PILOTLIGHT_DR_DB_CLUSTER_ARN", "rds")?,
            },
            other => {
                return Err(Error::config(
                    "PILOTLIGHT_DB_MODE",
                    format!("expected rds-replica or aurora-global, got {other:?}"),
                ));
            }
        };

        let dns = match v.required("PILOTLIGHT_DNS_MODE")?.as_str() {
            "health-check" => DnsPlan::HealthCheck {
                primary_health_check_id: v.required("PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID")?,
                dr_health_check_id: v.required("PILOTLIGHT_DR_HEALTH_CHECK_ID")?,
            },
            "records" => DnsPlan::Records {
                hosted_zone_id: v.required("PILOTLIGHT_HOSTED_ZONE_ID")?,
                record_name: v.required("PILOTLIGHT_RECORD_NAME")?,
                primary_value: v.required("PILOTLIGHT_PRIMARY_RECORD_VALUE")?,
                dr_value: v.required("PILOTLIGHT_DR_RECORD_VALUE")?,
                ttl: v.number("PILOTLIGHT_RECORD_TTL", 60)? as i64,
            },
            other => {
                return Err(Error::config(
                    "PILOTLIGHT_DNS_MODE",
                    format!("expected health-check or records, got {other:?}"),
                ));
            }
        };

        let dial_steps = v.dial_steps("PILOTLIGHT_DIAL_STEPS")?;
        let max_replica_lag_seconds = v.number("PILOTLIGHT_MAX_REPLICA_LAG_SECONDS", 300)? as f64;
        Ok(FailoverPlan {
            account_id,
            primary,
            dr,
            alarms,
            database,
            max_replica_lag_seconds,
            max_ami_age_hours: v.number("PILOTLIGHT_MAX_AMI_AGE_HOURS", 72)?,
            dial_steps,
            dns,
            sns_topic_arn: v.arn("PILOTLIGHT_SNS_TOPIC_ARN", "sns")?,
            state_machine_arn: match v.optional("PILOTLIGHT_STATE_MACHINE_ARN") {
                Some(_) => Some(v.arn("PILOTLIGHT_STATE_MACHINE_ARN", "states")?),
                None => None,
            },
            lock_table: v.table_name("PILOTLIGHT_LOCK_TABLE")?,
            dry_run: v.boolean("PILOTLIGHT_DRY_RUN", false)?,
            approval_required: match v.optional("PILOTLIGHT_APPROVAL").as_deref() {
                None | Some("none") => false,
                Some("required") => true,
                Some(other) => {
                    return Err(Error::config(
                        "PILOTLIGHT_APPROVAL",
                        format!("expected required or none, got {other:?}"),
                    ));
                }
            },
            timing: Timing {
                poll_seconds: v.number("PILOTLIGHT_POLL_SECONDS", 15)? as u32,
                dial_bake_seconds: v.number("PILOTLIGHT_DIAL_BAKE_SECONDS", 30)? as u32,
                max_polls: v.number("PILOTLIGHT_MAX_POLLS", 240)? as u32,
                approval_timeout_seconds: v
                    .approval_timeout("PILOTLIGHT_APPROVAL_TIMEOUT_SECONDS")?,
            },
        })
    }

    /// The state machine ARN, required by detect only.
    pub fn state_machine_arn(&self) -> Result<&str> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            Error::config(
                "PILOTLIGHT_STATE_MACHINE_ARN",
                "required for detect: the failover state machine's ARN",
            )
        })
    }
}

impl FailoverPlan {
    /// The flow lock's table, required by detect to start a non-dry-run execution.
    pub fn lock_table(&self) -> Result<&str> {
        self.lock_table.as_deref().ok_or_else(|| {
            Error::config(
                "PILOTLIGHT_LOCK_TABLE",
                "required for detect: the DynamoDB table of the flow lock (one flow at a time)",
            )
        })
    }
}

/// The region field of an ARN (`arn:partition:service:region:account:resource`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The account field of an ARN.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|r| !r.is_empty())
}

pub fn parse_env_file(text: &str) -> std::result::Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, val) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", n + 1))?;
        let val = val.trim().trim_matches('"');
        out.insert(k.trim().to_string(), val.to_string());
    }
    Ok(out)
}

fn int_list(name: &str, raw: &str, expected: &str) -> Result<Vec<i32>> {
    raw.split(',')
        .map(|s| s.trim().parse::<i32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::config(name, format!("expected {expected}, got {raw:?}")))
}

struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
    fn required(&self, name: &str) -> Result<String> {
        self.optional(name)
            .ok_or_else(|| Error::config(name, "is missing or empty"))
    }
    fn region(&self, name: &str) -> Result<String> {
        let r = self.required(name)?;
        let parts: Vec<&str> = r.split('-').collect();
        let ok = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts
                .last()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(r)
        } else {
            Err(Error::config(
                name,
                format!("expected an AWS region name like ap-northeast-1, got {r:?}"),
            ))
        }
    }
    /// An optional DynamoDB table name: 3 to 255 of `[A-Za-z0-9_.-]`.
    fn table_name(&self, name: &str) -> Result<Option<String>> {
        let Some(t) = self.optional(name) else {
            return Ok(None);
        };
        let ok = (3..=255).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Some(t))
        } else {
            Err(Error::config(
                name,
                format!("expected a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got {t:?}"),
            ))
        }
    }
    fn arn(&self, name: &str, service: &str) -> Result<String> {
        let a = self.required(name)?;
        let parts: Vec<&str> = a.splitn(6, ':').collect();
        if parts.len() == 6 && parts[0] == "arn" && parts[2] == service {
            Ok(a)
        } else {
            Err(Error::config(
                name,
                format!("expected an ARN of service {service} (arn:aws:{service}:...), got {a:?}"),
            ))
        }
    }
    fn number(&self, name: &str, default: u64) -> Result<u64> {
        match self.optional(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| Error::config(name, format!("expected a whole number, got {s:?}"))),
        }
    }
    fn approval_timeout(&self, name: &str) -> Result<u32> {
        match self.number(name, DEFAULT_APPROVAL_TIMEOUT_SECONDS.into())? {
            n @ 1..=MAX_APPROVAL_TIMEOUT_SECONDS => Ok(n as u32),
            n => Err(Error::config(
                name,
                format!("expected 1 to {MAX_APPROVAL_TIMEOUT_SECONDS} seconds, got {n}"),
            )),
        }
    }
    fn boolean(&self, name: &str, default: bool) -> Result<bool> {
        match self.optional(name).as_deref() {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(s) => Err(Error::config(
                name,
                format!("expected true or false, got {s:?}"),
            )),
        }
    }
    fn list(&self, name: &str) -> Result<Vec<String>> {
        let items: Vec<String> = self
            .required(name)?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            Err(Error::config(
                name,
                "expected a comma-separated list with at least one name",
            ))
        } else {
            Ok(items)
        }
    }
    fn capacity(&self, name: &str) -> Result<Capacity> {
        let raw = self.required(name)?;
        let nums = int_list(name, &raw, "min,desired,max (e.g. 2,4,8)")?;
        match nums[..] {
            [min, desired, max] if 0 <= min && min <= desired && desired <= max && max > 0 => {
                Ok(Capacity { min, desired, max })
            }
            _ => Err(Error::config(
                name,
                format!(
                    "expected min,desired,max with 0 <= min <= desired <= max and max > 0, got {raw:?}"
                ),
            )),
        }
    }
    fn dial_steps(&self, name: &str) -> Result<Vec<i32>> {
        let raw = self
            .optional(name)
            .unwrap_or_else(|| "25,50,100".to_string());
        let steps = int_list(name, &raw, "increasing percentages ending in 100")?;
        let increasing = steps.windows(2).all(|w| w[0] < w[1]);
        if !steps.is_empty() && increasing && steps[0] > 0 && steps.last() == Some(&100) {
            Ok(steps)
        } else {
            Err(Error::config(
                name,
                format!(
                    "expected strictly increasing percentages in 1..=100 ending in 100 (e.g. 25,50,100), got {raw:?}"
                ),
            ))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn reference_vars() -> HashMap<String, String> {
        let text = include_str!("../../plans/reference.env");
        parse_env_file(text).unwrap()
    }

    #[test]
    fn reference_plan_loads() {
        let plan = FailoverPlan::from_map(&reference_vars()).unwrap();
        assert_eq!(plan.primary.region, "ap-northeast-2");
        assert_eq!(plan.dr.region, "ap-northeast-1");
        assert_eq!(plan.alarms.region, "ap-northeast-1");
        assert_eq!(plan.dial_steps, vec![25, 50, 100]);
        assert_eq!(
            plan.dr.capacity,
            Capacity {
                min: 2,
                desired: 2,
                max: 4
            }
        );
        assert_eq!(
            plan.region(Direction::Failover.target()).region,
            "ap-northeast-1"
        );
        assert_eq!(
            plan.region(Direction::Failback.target()).region,
            "ap-northeast-2"
        );
    }

    #[test]
    fn another_region_pair_is_just_configuration() {
        let mut vars = reference_vars();
        vars.insert("PILOTLIGHT_PRIMARY_REGION".into(), "eu-west-1".into());
        vars.insert("PILOTLIGHT_DR_REGION".into(), "eu-central-1".into());
        let plan = FailoverPlan::from_map(&vars).unwrap();
        assert_eq!(plan.dr.region, "eu-central-1");
    }

    fn error_for(var: &str, value: Option<&str>) -> String {
        let mut vars = reference_vars();
        match value {
            Some(v) => vars.insert(var.into(), v.into()),
            None => vars.remove(var),
        };
        let err = FailoverPlan::from_map(&vars).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Config);
        err.message
    }

    #[test]
    fn missing_or_malformed_values_name_the_variable() {
        assert!(error_for("PILOTLIGHT_DR_REGION", None).contains("PILOTLIGHT_DR_REGION"));
        assert!(error_for("PILOTLIGHT_DR_REGION", Some("tokyo")).contains("region name"));
        assert!(error_for("PILOTLIGHT_DR_REGION", Some("ap-northeast-2")).contains("must differ"));
        assert!(error_for("PILOTLIGHT_ACCOUNT_ID", Some("12")).contains("12 digits"));
        assert!(
            error_for("PILOTLIGHT_DR_CAPACITY", Some("4,2,8")).contains("PILOTLIGHT_DR_CAPACITY")
        );
        assert!(error_for("PILOTLIGHT_DIAL_STEPS", Some("50,25,100")).contains("increasing"));
        assert!(error_for("PILOTLIGHT_DIAL_STEPS", Some("25,50")).contains("ending in 100"));
        assert!(error_for("PILOTLIGHT_QUORUM", Some("5")).contains("PILOTLIGHT_QUORUM"));
        assert!(error_for("PILOTLIGHT_DB_MODE", Some("mongo")).contains("rds-replica"));
        assert!(error_for("PILOTLIGHT_SNS_TOPIC_ARN", Some("topic")).contains("arn:aws:sns"));
        assert!(error_for("PILOTLIGHT_COOLDOWN_SECONDS", Some("soon")).contains("whole number"));
        assert!(error_for("PILOTLIGHT_DRY_RUN", Some("maybe")).contains("true or false"));
        assert!(error_for("PILOTLIGHT_APPROVAL", Some("yes")).contains("required or none"));
    }

    #[test]
    fn arn_fields() {
        let arn = "arn:aws:states:ap-northeast-1:123456789012:stateMachine:pilotlight";
        assert_eq!(arn_region(arn), Some("ap-northeast-1"));
        assert_eq!(arn_account(arn), Some("123456789012"));
        assert_eq!(
            arn_region("arn:aws:globalaccelerator::123456789012:accelerator/x"),
            None
        );
    }
}
