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

/// One value for each side, as reports show them: `{"primary": .., "dr": ..}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BySide<T> {
    pub primary: T,
    pub dr: T,
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
    /// The resource (EC2 instance ARN) whose recovery points in `backup_vault` this region launches
    /// (PILOTLIGHT_<SIDE>_AMI_SOURCE): the vault listing is filtered by it (ByResourceArn). Unset: any instance's,
    /// which the preflight reports as a finding.
    pub ami_source: Option<String>,
    pub ami_parameter: String,
    pub endpoint_group_arn: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// The whole of one AWS call, retries included: no call waits longer, so a step always answers inside its
    /// function timeout (a black-holed endpoint costs this, not the read timeout times the attempts).
    pub operation_timeout: Duration,
    /// The side's DB instance beyond its identifier (rds-replica; every field optional).
    pub db: DbSidePlan,
}

/// What promote-db sets on this side's DB instance (rds-replica): production size once it is promoted, and the KMS
/// key of a replica pilotlight creates in this region. Unset: left as it is (`steps::promote_db::promoted`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DbSidePlan {
    /// PILOTLIGHT_<SIDE>_DB_PROMOTED_INSTANCE_CLASS: the class the instance is modified to once promoted.
    pub promoted_instance_class: Option<String>,
    /// PILOTLIGHT_<SIDE>_DB_PROMOTED_MULTI_AZ: Multi-AZ (true) or Single-AZ (false) once promoted.
    pub promoted_multi_az: Option<bool>,
    /// PILOTLIGHT_<SIDE>_DB_KMS_KEY_ID: the KMS key ARN (of this side's region) a replica pilotlight creates here is
    /// encrypted with when its source is encrypted (a cross-region replica needs a key of its own region).
    pub kms_key_id: Option<String>,
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

/// One alarm of the quorum, in the region it lives in (an alarm watches metrics of its own region only, so the
/// quorum may span regions: the primary's ALB alarms there, the DR-side probe's alarm in DR).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AlarmRef {
    pub name: String,
    pub region: String,
}

impl std::fmt::Display for AlarmRef {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.region)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmPolicy {
    /// Where alarms given by bare name live (PILOTLIGHT_ALARM_REGION, default the DR region).
    pub region: String,
    pub alarms: Vec<AlarmRef>,
    pub quorum: usize,
    pub cooldown: Duration,
    /// The longest detect waits for its reads (alarms, executions, dials) before it decides with what it has.
    pub observe_deadline: Duration,
}

impl AlarmPolicy {
    /// The regions detect re-reads alarms in, each once, in plan order.
    pub fn regions(&self) -> Vec<&str> {
        let mut regions: Vec<&str> = Vec::new();
        for a in &self.alarms {
            if !regions.contains(&a.region.as_str()) {
                regions.push(&a.region);
            }
        }
        regions
    }

    /// The names of the plan's alarms in `region`.
    pub fn names_in(&self, region: &str) -> Vec<String> {
        self.alarms
            .iter()
            .filter(|a| a.region == region)
            .map(|a| a.name.clone())
            .collect()
    }

    pub fn contains(&self, name: &str, region: &str) -> bool {
        self.alarms
            .iter()
            .any(|a| a.name == name && a.region == region)
    }
}

/// See [`FailoverPlan::worst_case`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WorstCase {
    /// detect: from the event to its answer.
    pub detect: Duration,
    /// Any one AWS call of any step, retries included.
    pub longest_call: Duration,
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
/// No single AWS call may take longer than this, whatever the plan says: the functions' timeout is 30 s.
pub const MAX_OPERATION_TIMEOUT_MS: u64 = 25_000;
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
    /// A preflight with findings pauses for approval (`required`, `on-findings`, the default) or stops the run with
    /// a report, nothing changed (`none`).
    pub pause_on_findings: bool,
    pub timing: Timing,
    /// What the probe checks of the primary from outside it (empty unless the probe function's variables are set).
    pub probe: ProbePlan,
}

/// The probe's targets (PILOTLIGHT_PROBE_*): HTTP(S) URLs and TCP endpoints of the primary, checked from the DR
/// region. Only the probe function is given these variables, so a bad value there cannot stop the failover steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbePlan {
    /// `http://` or `https://` URLs (as written); a check passes on a 2xx/3xx answer within `timeout`.
    pub urls: Vec<String>,
    /// `host:port` endpoints (`[v6]:port` for IPv6 literals); a check passes when a TCP connection opens in time.
    pub tcp: Vec<TcpEndpoint>,
    /// Per check; all checks run concurrently.
    pub timeout: Duration,
    /// CloudWatch namespace of the probe's metrics (the alarm and the IAM condition name the same one).
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpEndpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for TcpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub const DEFAULT_PROBE_NAMESPACE: &str = "pilotlight/probe";
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 3000;
/// Per-check timeout bounds: the checks run side by side, and publishing must still fit the function's 30 s.
pub const PROBE_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=10_000;
/// At most this many targets (URLs + TCP endpoints): two datapoints each plus the aggregate fit one PutMetricData.
pub const MAX_PROBE_TARGETS: usize = 50;

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
            |prefix: &str, region: String, timeouts: (u64, u64, u64)| -> Result<RegionPlan> {
                let region_name = region.clone();
                Ok(RegionPlan {
                    region,
                    asg: v.required(&format!("PILOTLIGHT_{prefix}_ASG"))?,
                    capacity: v.capacity(&format!("PILOTLIGHT_{prefix}_CAPACITY"))?,
                    target_group_arn: v.optional(&format!("PILOTLIGHT_{prefix}_TARGET_GROUP_ARN")),
                    backup_vault: v.required(&format!("PILOTLIGHT_{prefix}_BACKUP_VAULT"))?,
                    ami_source: v.optional(&format!("PILOTLIGHT_{prefix}_AMI_SOURCE")),
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
                    operation_timeout: Duration::from_millis(v.bounded(
                        &format!("PILOTLIGHT_{prefix}_OPERATION_TIMEOUT_MS"),
                        timeouts.2,
                        500..=MAX_OPERATION_TIMEOUT_MS,
                    )?),
                    db: v.db_side(prefix, &region_name, &account_id)?,
                })
            };
        // The primary is the region most likely to be failing: short timeouts so a dead endpoint never blocks.
        let primary = region_plan("PRIMARY", primary_region, (1000, 3000, 8000))?;
        let dr = region_plan("DR", dr_region, (3000, 20000, 10000))?;

        let alarm_region = match v.optional("PILOTLIGHT_ALARM_REGION") {
            Some(_) => v.region("PILOTLIGHT_ALARM_REGION")?,
            None => dr.region.clone(),
        };
        let alarm_list = v.alarm_refs("PILOTLIGHT_ALARM_NAMES", &alarm_region, &account_id)?;
        let quorum = v.number("PILOTLIGHT_QUORUM", 1)? as usize;
        if quorum == 0 || quorum > alarm_list.len() {
            return Err(Error::config(
                "PILOTLIGHT_QUORUM",
                format!(
                    "must be between 1 and the number of alarms ({}), got {quorum}",
                    alarm_list.len()
                ),
            ));
        }
        let alarms = AlarmPolicy {
            region: alarm_region,
            alarms: alarm_list,
            quorum,
            cooldown: Duration::from_secs(v.number("PILOTLIGHT_COOLDOWN_SECONDS", 1800)?),
            observe_deadline: Duration::from_millis(v.bounded(
                "PILOTLIGHT_OBSERVE_DEADLINE_MS",
                5000,
                100..=20_000,
            )?),
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
        // (approval required, pause on findings)
        let approval = match v.optional("PILOTLIGHT_APPROVAL").as_deref() {
            None | Some("on-findings") => (false, true),
            Some("none") => (false, false),
            Some("required") => (true, true),
            Some(other) => {
                return Err(Error::config(
                    "PILOTLIGHT_APPROVAL",
                    format!("expected required, on-findings or none, got {other:?}"),
                ));
            }
        };
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
            approval_required: approval.0,
            pause_on_findings: approval.1,
            timing: Timing {
                poll_seconds: v.bounded("PILOTLIGHT_POLL_SECONDS", 15, 1..=3600)? as u32,
                dial_bake_seconds: v.bounded("PILOTLIGHT_DIAL_BAKE_SECONDS", 30, 0..=3600)? as u32,
                max_polls: v.bounded("PILOTLIGHT_MAX_POLLS", 240, 1..=10_000)? as u32,
                approval_timeout_seconds: v
                    .approval_timeout("PILOTLIGHT_APPROVAL_TIMEOUT_SECONDS")?,
            },
            probe: v.probe()?,
        })
    }

    /// What a careful operator should know about this plan before relying on it on the worst day (advice, not
    /// errors: the plan still loads). Pure; `pilotlight check-plan` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self
            .alarms
            .alarms
            .iter()
            .all(|a| a.region == self.primary.region)
        {
            out.push(format!(
                "every alarm of the quorum lives in the primary region {}: when that region fails, its alarms and \
                 their delivery may fail with it; add an alarm in {} (the probe's, PILOTLIGHT_PROBE_URLS)",
                self.primary.region, self.dr.region
            ));
        }
        if self.primary.region == GLOBAL_ACCELERATOR_API_REGION {
            out.push(format!(
                "the primary region is {}, the only region Global Accelerator's API answers in: an outage there can \
                 also take the traffic dials' control plane down",
                self.primary.region
            ));
        }
        if self.primary.region == ROUTE53_CONTROL_PLANE_REGION {
            out.push(format!(
                "the primary region is {ROUTE53_CONTROL_PLANE_REGION}, where Route 53's control plane lives: an outage \
                 there can also block the DNS change (the traffic dials still move)"
            ));
        }
        out
    }

    /// The longest pilotlight waits on AWS in one invocation, by construction: every call is bounded by its
    /// region's operation timeout, and detect's reads by the observe deadline. `tests/budget.rs` checks these
    /// against the functions' timeouts in template.yaml.
    pub fn worst_case(&self) -> WorstCase {
        let longest_call = self
            .primary
            .operation_timeout
            .max(self.dr.operation_timeout);
        WorstCase {
            // Reads side by side within the deadline, then the calls one after another on the longest path, a
            // stale lock's takeover: PutItem, GetItem, DescribeExecution, PutItem, StartExecution (DR region).
            detect: self.alarms.observe_deadline + 5 * self.dr.operation_timeout,
            longest_call,
        }
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

/// The only region Global Accelerator's API answers in.
pub const GLOBAL_ACCELERATOR_API_REGION: &str = "us-west-2";

/// Route 53's control plane (changes to records and health checks) is served from here.
pub const ROUTE53_CONTROL_PLANE_REGION: &str = "us-east-1";

/// Longest alarm name CloudWatch accepts.
pub const ALARM_NAME_MAX_CHARS: usize = 255;

/// One entry of PILOTLIGHT_ALARM_NAMES: `name`, `name@region` or `arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`.
pub fn parse_alarm_ref(
    item: &str,
    default_region: &str,
    account: &str,
) -> std::result::Result<AlarmRef, String> {
    let (name, region) = if let Some(rest) = item.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        match parts.as_slice() {
            [_, "cloudwatch", region, acct, resource, name] if *resource == "alarm" => {
                if *acct != account {
                    return Err(format!(
                        "the alarm is in account {acct}, the plan's account is {account} (PILOTLIGHT_ACCOUNT_ID)"
                    ));
                }
                (name.to_string(), region.to_string())
            }
            _ => return Err("expected arn:aws:cloudwatch:<region>:<account>:alarm:<name>".into()),
        }
    } else {
        match item.rsplit_once('@') {
            Some((name, region)) if is_region(region) => (name.to_string(), region.to_string()),
            _ => (item.to_string(), default_region.to_string()),
        }
    };
    if !is_region(&region) {
        return Err(format!(
            "{region:?} is not a region name like ap-northeast-1"
        ));
    }
    check_alarm_name(&name)?;
    Ok(AlarmRef { name, region })
}

/// Alarm names: 1 to 255 characters, none of them a control character (they end up in logs, mail subjects and
/// execution names).
pub fn check_alarm_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.chars().count() > ALARM_NAME_MAX_CHARS {
        return Err(format!(
            "an alarm name has 1 to {ALARM_NAME_MAX_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("alarm name {name:?} contains a control character"));
    }
    Ok(())
}

/// `db.r6g.large`, `db.m5d.24xlarge`: `db.` then two dot-separated lowercase words and digits.
pub fn is_instance_class(c: &str) -> bool {
    let parts: Vec<&str> = c.split('.').collect();
    parts.len() == 3
        && parts[0] == "db"
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `ap-northeast-1`, `us-gov-west-1`: lowercase words and digits, ending in a number.
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
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
        if is_region(&r) {
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
        let n = self.bounded(
            name,
            DEFAULT_APPROVAL_TIMEOUT_SECONDS.into(),
            1..=MAX_APPROVAL_TIMEOUT_SECONDS,
        )?;
        Ok(n as u32)
    }
    /// A whole number within `range`: a value that would be truncated or make no sense is refused, never cut.
    fn bounded(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64> {
        let n = self.number(name, default)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(Error::config(
                name,
                format!("expected {} to {}, got {n}", range.start(), range.end()),
            ))
        }
    }
    /// `name`, `name@region` or an alarm ARN, comma-separated; bare names live in `default_region`.
    fn alarm_refs(&self, name: &str, default_region: &str, account: &str) -> Result<Vec<AlarmRef>> {
        let mut refs: Vec<AlarmRef> = Vec::new();
        for item in self.list(name)? {
            let alarm = parse_alarm_ref(&item, default_region, account)
                .map_err(|why| Error::config(name, format!("{item:?}: {why}")))?;
            if refs.contains(&alarm) {
                return Err(Error::config(name, format!("{alarm} is listed twice")));
            }
            refs.push(alarm);
        }
        Ok(refs)
    }
    /// PILOTLIGHT_<SIDE>_DB_PROMOTED_INSTANCE_CLASS / _DB_PROMOTED_MULTI_AZ / _DB_KMS_KEY_ID.
    fn db_side(&self, prefix: &str, region: &str, account: &str) -> Result<DbSidePlan> {
        let class_var = format!("PILOTLIGHT_{prefix}_DB_PROMOTED_INSTANCE_CLASS");
        let promoted_instance_class = match self.optional(&class_var) {
            Some(c) if is_instance_class(&c) => Some(c),
            Some(c) => {
                return Err(Error::config(
                    &class_var,
                    format!("expected a DB instance class like db.r6g.large, got {c:?}"),
                ));
            }
            None => None,
        };
        let multi_az_var = format!("PILOTLIGHT_{prefix}_DB_PROMOTED_MULTI_AZ");
        let promoted_multi_az = match self.optional(&multi_az_var) {
            Some(_) => Some(self.boolean(&multi_az_var, false)?),
            None => None,
        };
        let kms_var = format!("PILOTLIGHT_{prefix}_DB_KMS_KEY_ID");
        let kms_key_id = match self.optional(&kms_var) {
            Some(k) => {
                let parts: Vec<&str> = k.splitn(6, ':').collect();
                let ok = matches!(parts.as_slice(), ["arn", _, "kms", r, a, key]
                    if *r == region && *a == account && key.starts_with("key/") && key.len() > 4);
                if !ok {
                    return Err(Error::config(
                        &kms_var,
                        format!(
                            "expected the ARN of a KMS key in {region} of account {account}                              (arn:aws:kms:{region}:{account}:key/<id>): a cross-region replica is encrypted with a                              key of its own region; got {k:?}"
                        ),
                    ));
                }
                Some(k)
            }
            None => None,
        };
        Ok(DbSidePlan {
            promoted_instance_class,
            promoted_multi_az,
            kms_key_id,
        })
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

/// The probe's variables (PILOTLIGHT_PROBE_URLS, _TCP, _TIMEOUT_MS, _NAMESPACE).
impl Vars<'_> {
    fn probe(&self) -> Result<ProbePlan> {
        let items = |name: &str| -> Vec<String> {
            self.optional(name)
                .map(|raw| {
                    raw.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let urls = items("PILOTLIGHT_PROBE_URLS")
            .into_iter()
            .map(|u| probe_url(&u).map_err(|why| Error::config("PILOTLIGHT_PROBE_URLS", why)))
            .collect::<Result<Vec<_>>>()?;
        let tcp = items("PILOTLIGHT_PROBE_TCP")
            .iter()
            .map(|t| tcp_endpoint(t).map_err(|why| Error::config("PILOTLIGHT_PROBE_TCP", why)))
            .collect::<Result<Vec<_>>>()?;
        if urls.len() + tcp.len() > MAX_PROBE_TARGETS {
            return Err(Error::config(
                "PILOTLIGHT_PROBE_URLS",
                format!(
                    "at most {MAX_PROBE_TARGETS} targets with PILOTLIGHT_PROBE_TCP, got {}",
                    urls.len() + tcp.len()
                ),
            ));
        }
        let name = "PILOTLIGHT_PROBE_TIMEOUT_MS";
        let timeout = self.number(name, DEFAULT_PROBE_TIMEOUT_MS)?;
        if !PROBE_TIMEOUT_MS_RANGE.contains(&timeout) {
            return Err(Error::config(
                name,
                format!(
                    "expected {} to {} milliseconds, got {timeout}",
                    PROBE_TIMEOUT_MS_RANGE.start(),
                    PROBE_TIMEOUT_MS_RANGE.end()
                ),
            ));
        }
        let namespace = self
            .optional("PILOTLIGHT_PROBE_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_PROBE_NAMESPACE.to_string());
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
        if namespace.len() > 255 || namespace.starts_with("AWS/") || !namespace.chars().all(allowed)
        {
            return Err(Error::config(
                "PILOTLIGHT_PROBE_NAMESPACE",
                format!(
                    "expected a CloudWatch namespace (at most 255 of A-Za-z0-9 . - _ / # : and space, not AWS/...), \
                     got {namespace:?}"
                ),
            ));
        }
        Ok(ProbePlan {
            urls,
            tcp,
            timeout: Duration::from_millis(timeout),
            namespace,
        })
    }
}

/// An http(s) URL with a host and no credentials (the URL becomes a metric dimension, at most 1024 characters).
fn probe_url(raw: &str) -> std::result::Result<String, String> {
    let expected = "expected http(s)://host[:port]/path URLs, comma-separated";
    let uri: hyper::Uri = raw
        .parse()
        .map_err(|e| format!("{expected}; {raw:?} is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{expected}; {raw:?} is not http or https")),
    }
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| format!("{expected}; {raw:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "{expected}; {raw:?} carries credentials (it would be published as a metric dimension)"
        ));
    }
    if raw.len() > 1024 {
        return Err(format!(
            "{expected}; a URL is at most 1024 characters (a metric dimension value)"
        ));
    }
    Ok(raw.to_string())
}

/// `host:port` or `[v6]:port`, port 1..=65535.
fn tcp_endpoint(raw: &str) -> std::result::Result<TcpEndpoint, String> {
    let bad = || {
        format!("expected host:port (e.g. db.example.internal:5432), comma-separated; got {raw:?}")
    };
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .filter(|h| h.contains(':'))
            .ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
    if host.is_empty() || host.len() > 253 || !host.chars().all(host_ok) {
        return Err(bad());
    }
    Ok(TcpEndpoint {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn reference_vars() -> HashMap<String, String> {
        let text = include_str!("../../plans/reference.env");
        parse_env_file(text).unwrap()
    }

    fn with(overrides: &[(&str, &str)]) -> Result<FailoverPlan> {
        let mut v = reference_vars();
        for (k, val) in overrides {
            v.insert(k.to_string(), val.to_string());
        }
        FailoverPlan::from_map(&v)
    }

    #[test]
    fn alarms_are_named_by_name_name_at_region_or_arn() {
        let p = with(&[(
            "PILOTLIGHT_ALARM_NAMES",
            "web-5xx, alb-down@ap-northeast-2, arn:aws:cloudwatch:us-east-1:123456789012:alarm:edge:errors",
        ), ("PILOTLIGHT_QUORUM", "2")])
        .unwrap();
        let got: Vec<String> = p.alarms.alarms.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "web-5xx@ap-northeast-1",
                "alb-down@ap-northeast-2",
                "edge:errors@us-east-1"
            ]
        );
        assert_eq!(
            p.alarms.regions(),
            ["ap-northeast-1", "ap-northeast-2", "us-east-1"]
        );
        assert_eq!(p.alarms.names_in("ap-northeast-2"), ["alb-down"]);
        // An '@' that is not followed by a region is part of the name.
        let p = with(&[("PILOTLIGHT_ALARM_NAMES", "ops@example")]).unwrap();
        assert_eq!(p.alarms.alarms[0].to_string(), "ops@example@ap-northeast-1");
    }

    #[test]
    fn promoted_db_settings_are_per_side_optional_and_checked() {
        let p = with(&[]).unwrap();
        assert_eq!(p.dr.db, DbSidePlan::default());
        let p = with(&[
            ("PILOTLIGHT_DR_DB_PROMOTED_INSTANCE_CLASS", "db.r6g.xlarge"),
            ("PILOTLIGHT_DR_DB_PROMOTED_MULTI_AZ", "true"),
            ("PILOTLIGHT_PRIMARY_DB_PROMOTED_MULTI_AZ", "false"),
            (
                "PILOTLIGHT_PRIMARY_DB_KMS_KEY_ID",
                "arn:aws:kms:ap-northeast-2:123456789012:key/1234abcd",
            ),
        ])
        .unwrap();
        assert_eq!(
            p.dr.db.promoted_instance_class.as_deref(),
            Some("db.r6g.xlarge")
        );
        assert_eq!(p.dr.db.promoted_multi_az, Some(true));
        assert_eq!(p.primary.db.promoted_multi_az, Some(false));
        assert_eq!(p.primary.db.promoted_instance_class, None);
        assert!(p.primary.db.kms_key_id.is_some() && p.dr.db.kms_key_id.is_none());
        for (var, value, expect) in [
            (
                "PILOTLIGHT_DR_DB_PROMOTED_INSTANCE_CLASS",
                "r6g.large",
                "db.r6g.large",
            ),
            ("PILOTLIGHT_DR_DB_PROMOTED_MULTI_AZ", "yes", "true or false"),
            // A key of the other region: a cross-region replica needs one of its own region.
            (
                "PILOTLIGHT_DR_DB_KMS_KEY_ID",
                "arn:aws:kms:ap-northeast-2:123456789012:key/1234abcd",
                "in ap-northeast-1",
            ),
            (
                "PILOTLIGHT_DR_DB_KMS_KEY_ID",
                "alias/rds",
                "ARN of a KMS key",
            ),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert!(
                e.message.contains(var) && e.message.contains(expect),
                "{var}={value}: {e}"
            );
        }
        assert!(is_instance_class("db.m5d.24xlarge") && !is_instance_class("db.large"));
    }

    #[test]
    fn bad_alarm_entries_are_refused_naming_the_variable() {
        for (value, expect) in [
            (
                "arn:aws:cloudwatch:ap-northeast-1:999999999999:alarm:x",
                "account 999999999999",
            ),
            (
                "arn:aws:sns:ap-northeast-1:123456789012:alarm:x",
                "expected arn:aws:cloudwatch",
            ),
            ("web\u{7}bell", "control character"),
            ("a,a", "listed twice"),
            (&"x".repeat(256), "1 to 255 characters"),
        ] {
            let e = with(&[("PILOTLIGHT_ALARM_NAMES", value)]).unwrap_err();
            assert!(
                e.message.contains("PILOTLIGHT_ALARM_NAMES") && e.message.contains(expect),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn numbers_that_would_be_truncated_are_refused() {
        for (var, value) in [
            ("PILOTLIGHT_MAX_POLLS", "4294967296"),
            ("PILOTLIGHT_MAX_POLLS", "0"),
            ("PILOTLIGHT_POLL_SECONDS", "99999999999"),
            ("PILOTLIGHT_DR_OPERATION_TIMEOUT_MS", "60000"),
            ("PILOTLIGHT_OBSERVE_DEADLINE_MS", "30000"),
            ("PILOTLIGHT_APPROVAL_TIMEOUT_SECONDS", "86400"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert!(
                e.message.contains(var) && e.message.contains("expected"),
                "{var}={value}: {e}"
            );
        }
        let p = with(&[("PILOTLIGHT_MAX_POLLS", "10000")]).unwrap();
        assert_eq!(p.timing.max_polls, 10_000);
    }

    #[test]
    fn warnings_name_the_dependencies_a_failed_region_takes_with_it() {
        let p = with(&[("PILOTLIGHT_ALARM_NAMES", "web-5xx@ap-northeast-2")]).unwrap();
        let w = p.warnings();
        assert!(
            w.len() == 1 && w[0].contains("every alarm of the quorum lives in the primary region"),
            "{w:?}"
        );
        assert!(with(&[]).unwrap().warnings().is_empty());
        for (region, expect) in [
            ("us-west-2", "Global Accelerator"),
            ("us-east-1", "Route 53"),
        ] {
            let p = with(&[("PILOTLIGHT_PRIMARY_REGION", region)]).unwrap();
            assert!(
                p.warnings().iter().any(|w| w.contains(expect)),
                "{region}: {:?}",
                p.warnings()
            );
        }
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
        assert!(
            error_for("PILOTLIGHT_APPROVAL", Some("yes")).contains("required, on-findings or none")
        );
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

    #[test]
    fn probe_targets_are_optional_and_checked() {
        let plan = FailoverPlan::from_map(&reference_vars()).unwrap();
        assert!(plan.probe.urls.is_empty() && plan.probe.tcp.is_empty());
        assert_eq!(plan.probe.timeout, Duration::from_millis(3000));
        assert_eq!(plan.probe.namespace, "pilotlight/probe");

        let mut vars = reference_vars();
        vars.insert(
            "PILOTLIGHT_PROBE_URLS".into(),
            " https://web.example.com/health , http://127.0.0.1:8080/ ".into(),
        );
        vars.insert(
            "PILOTLIGHT_PROBE_TCP".into(),
            "db.example.internal:3306,[::1]:5432".into(),
        );
        vars.insert("PILOTLIGHT_PROBE_TIMEOUT_MS".into(), "500".into());
        let probe = FailoverPlan::from_map(&vars).unwrap().probe;
        assert_eq!(
            probe.urls,
            ["https://web.example.com/health", "http://127.0.0.1:8080/"]
        );
        assert_eq!(
            probe.tcp[0],
            TcpEndpoint {
                host: "db.example.internal".into(),
                port: 3306
            }
        );
        assert_eq!(probe.tcp[1].to_string(), "[::1]:5432");
        assert_eq!(probe.timeout, Duration::from_millis(500));
    }

    #[test]
    fn bad_probe_values_name_the_variable() {
        for (var, value) in [
            ("PILOTLIGHT_PROBE_URLS", "ftp://example.com/"),
            ("PILOTLIGHT_PROBE_URLS", "example.com/health"),
            ("PILOTLIGHT_PROBE_URLS", "https://user:pw@example.com/"),
            ("PILOTLIGHT_PROBE_URLS", "https:///nohost"),
            ("PILOTLIGHT_PROBE_TCP", "db.example.internal"),
            ("PILOTLIGHT_PROBE_TCP", "db:0"),
            ("PILOTLIGHT_PROBE_TCP", "db:99999"),
            ("PILOTLIGHT_PROBE_TCP", "::1:5432"),
            ("PILOTLIGHT_PROBE_TCP", ":5432"),
            ("PILOTLIGHT_PROBE_TIMEOUT_MS", "50"),
            ("PILOTLIGHT_PROBE_TIMEOUT_MS", "soon"),
            ("PILOTLIGHT_PROBE_NAMESPACE", "AWS/EC2"),
        ] {
            let message = error_for(var, Some(value));
            assert!(message.contains(var), "{var}={value}: {message}");
        }
    }
}
