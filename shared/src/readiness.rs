//! Readiness (docs/readiness.md): is the side that does not serve ready to take over, right now? A set of checks,
//! each a pure verdict (pass / warn / fail, with the value seen and the limit) over what was read; [`evaluate`]
//! does the reads concurrently, each bounded by a deadline. A read that fails makes its check `fail` with the
//! error as the value seen: never a panic, never a silent pass. Reads in the primary region are best-effort (it may
//! be the failed one), bounded by its operation timeout.
//!
//! Where a readiness check is what a preflight check decides (the replica, the lag, the AMI, the Auto Scaling
//! group, the endpoint groups), it is that very verdict function, called with no overrides, and its id is the
//! preflight's id under its area (`compute.ami.age` is the preflight's `ami.age`): readiness says today what the
//! preflight would say on the day.
//!
//! Areas, one submodule each: [`db`], [`compute`], [`traffic`], [`dns`], [`operators`], [`deployment`] (state
//! machine, functions' plans, the flow lock), [`fence`] (the old primary while DR serves).

pub mod compute;
pub mod db;
pub mod deployment;
pub mod dns;
pub mod fence;
pub mod operators;
pub mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::clients::AwsClients;
use crate::permissions::Use;
use crate::plan::{FailoverPlan, Side};
use crate::steps::detect::decision::ActiveSide;

/// A check's outcome; ordered, so the worst of a set is its max.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One check: what was seen against what is allowed.
#[derive(Serialize, Clone, Debug)]
pub struct Check {
    /// Dotted and stable, e.g. `db.lag`, `compute.ami.age` (docs/readiness.md lists them all).
    pub id: String,
    pub verdict: Verdict,
    pub seen: String,
    pub limit: Option<String>,
    pub detail: String,
}

impl Check {
    pub fn new(
        id: &str,
        verdict: Verdict,
        seen: impl Into<String>,
        limit: Option<String>,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            id: id.to_string(),
            verdict,
            seen: seen.into(),
            limit,
            detail: detail.into(),
        }
    }

    pub fn pass(
        id: &str,
        seen: impl Into<String>,
        limit: &str,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(id, Verdict::Pass, seen, Some(limit.to_string()), detail)
    }

    pub fn warn(
        id: &str,
        seen: impl Into<String>,
        limit: &str,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(id, Verdict::Warn, seen, Some(limit.to_string()), detail)
    }

    pub fn fail(
        id: &str,
        seen: impl Into<String>,
        limit: &str,
        detail: impl Into<String>,
    ) -> Check {
        Check::new(id, Verdict::Fail, seen, Some(limit.to_string()), detail)
    }

    /// A read that did not answer (or answered an error): the check fails with the error as the value seen.
    pub fn unread(id: &str, what: &str, error: &str, limit: &str) -> Check {
        Check::fail(
            id,
            format!("error: {error}"),
            limit,
            format!("{what} could not be read: {error}"),
        )
    }

    /// A check whose input is another check's failed read (or missing resource): a warning that says so, so a cause
    /// fails exactly one check, the one that read it.
    pub fn not_judged(id: &str, because: impl Into<String>, limit: &str) -> Check {
        Check::warn(id, "not judged", limit, because)
    }

    /// A preflight verdict as a readiness check, under `area` (`compute` + `ami.age`; ids already in the area,
    /// such as `db.lag`, are kept). No override is applied: a finding the operator could accept on the day is a
    /// finding today.
    pub fn from_preflight(area: &str, c: crate::preflight::Check) -> Check {
        let id = if c.check.starts_with(&format!("{area}.")) {
            c.check.clone()
        } else {
            format!("{area}.{}", c.check)
        };
        let verdict = match (c.passed, c.warning) {
            (false, _) => Verdict::Fail,
            (true, true) => Verdict::Warn,
            (true, false) => Verdict::Pass,
        };
        Check {
            id,
            verdict,
            seen: plain(&c.seen),
            limit: (!c.limit.is_null()).then(|| plain(&c.limit)),
            detail: c.message,
        }
    }
}

/// A JSON value as one line for a person: strings bare, objects as `key=value, ...`, nulls as `none`.
pub fn plain(v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(plain).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{k}={{{}}}", plain(v)),
                _ => format!("{k}={}", plain(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The whole evaluation: when, which side was serving, every check.
#[derive(Serialize, Clone, Debug)]
pub struct Readiness {
    pub checked_at: DateTime<Utc>,
    /// The side serving traffic, judged from the Global Accelerator dials (as detect judges it).
    pub active: ActiveSide,
    /// The side the checks judge ready to take over (the other one; the DR side while the active one is unknown).
    pub standby: Side,
    pub checks: Vec<Check>,
}

impl Readiness {
    pub fn worst(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// The process exit status of `pilotlight readiness`: 0 pass, 1 warn, 2 fail.
    pub fn exit_code(&self) -> u8 {
        match self.worst() {
            Verdict::Pass => 0,
            Verdict::Warn => 1,
            Verdict::Fail => 2,
        }
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The checks that did not pass.
    pub fn findings(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .collect()
    }

    /// An aligned plain-text table for a terminal: a heading line, then one row per check (verdict, id, seen,
    /// limit, detail). Seen and limit are cut at [`TABLE_CELL_MAX`] characters (the JSON has them whole).
    pub fn table(&self) -> String {
        let active = match &self.active {
            ActiveSide::Primary => "primary".to_string(),
            ActiveSide::Dr => "dr".to_string(),
            ActiveSide::Shifting {
                primary_dial,
                dr_dial,
            } => format!("shifting (dials {primary_dial}/{dr_dial})"),
            ActiveSide::Unknown { reason } => format!("unknown ({reason})"),
        };
        let counts = [Verdict::Pass, Verdict::Warn, Verdict::Fail]
            .map(|v| {
                format!(
                    "{} {}",
                    self.checks.iter().filter(|c| c.verdict == v).count(),
                    v.as_str()
                )
            })
            .join(", ");
        let mut rows: Vec<[String; 5]> = vec![[
            "VERDICT".into(),
            "CHECK".into(),
            "SEEN".into(),
            "LIMIT".into(),
            "DETAIL".into(),
        ]];
        for c in &self.checks {
            rows.push([
                c.verdict.as_str().to_uppercase(),
                c.id.clone(),
                cut(&c.seen),
                cut(c.limit.as_deref().unwrap_or("-")),
                one_line(&c.detail),
            ]);
        }
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let widths = [width(0), width(1), width(2), width(3)];
        let mut out = format!(
            "readiness {}: {} (active: {active}, standby: {}; {counts})\n",
            rfc(self.checked_at),
            self.worst().as_str().to_uppercase(),
            self.standby.as_str(),
        );
        for r in rows {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                line.push_str(&r[i]);
                line.push_str(&" ".repeat(w - r[i].chars().count() + 2));
            }
            line.push_str(&r[4]);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The widest seen / limit cell of [`Readiness::table`].
pub const TABLE_CELL_MAX: usize = 60;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(s: &str) -> String {
    let s = one_line(s);
    if s.chars().count() <= TABLE_CELL_MAX {
        s
    } else {
        let head: String = s.chars().take(TABLE_CELL_MAX - 1).collect();
        format!("{head}…")
    }
}

fn rfc(t: DateTime<Utc>) -> String {
    crate::timestamp::rfc3339(t, SecondsFormat::Secs)
}

/// What readiness reads besides the plan: the deployed stack's resources. From the readiness function's
/// environment ([`ReadinessTargets::from_env`], variables docs/contract.md "Readiness" lists), or built by the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadinessTargets {
    /// `PILOTLIGHT_STATE_MACHINE_ARN`: the failover state machine.
    pub state_machine_arn: Option<String>,
    /// `PILOTLIGHT_SNS_TOPIC_ARN`: the operators' topic.
    pub topic_arn: Option<String>,
    /// `PILOTLIGHT_LOCK_TABLE`: the flow lock's DynamoDB table.
    pub lock_table: Option<String>,
    /// The deployed functions by binary (`detect`, `promote-db`, ...) → name or ARN, from
    /// `PILOTLIGHT_FUNCTION_<BINARY>` (`PILOTLIGHT_FUNCTION_PROMOTE_DB`).
    pub functions: BTreeMap<String, String>,
}

/// The prefix of the variables naming the deployed functions: `PILOTLIGHT_FUNCTION_PROMOTE_DB` = promote-db's.
pub const FUNCTION_VARIABLE_PREFIX: &str = "PILOTLIGHT_FUNCTION_";

/// The variable naming the deployed function of `binary` (`promote-db` → `PILOTLIGHT_FUNCTION_PROMOTE_DB`).
pub fn function_variable(binary: &str) -> String {
    format!(
        "{FUNCTION_VARIABLE_PREFIX}{}",
        binary.to_uppercase().replace('-', "_")
    )
}

impl ReadinessTargets {
    pub fn from_env() -> Self {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PILOTLIGHT_"))
            .collect();
        Self::from_map(&vars)
    }

    /// From plan-style variables. Absent ones stay None (their checks fail with "not configured"); the functions
    /// are the template's ([`crate::permissions::FUNCTIONS`]) whose variable is set.
    pub fn from_map(vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ReadinessTargets {
            state_machine_arn: get("PILOTLIGHT_STATE_MACHINE_ARN"),
            topic_arn: get("PILOTLIGHT_SNS_TOPIC_ARN"),
            lock_table: get("PILOTLIGHT_LOCK_TABLE"),
            functions: crate::permissions::FUNCTIONS
                .iter()
                .filter_map(|f| Some((f.binary.to_string(), get(&function_variable(f.binary))?)))
                .collect(),
        }
    }

    /// What the plan itself names (state machine, topic, lock table), with the given functions.
    pub fn from_plan(plan: &FailoverPlan, functions: BTreeMap<String, String>) -> Self {
        ReadinessTargets {
            state_machine_arn: plan.state_machine_arn.clone(),
            topic_arn: Some(plan.sns_topic_arn.clone()),
            lock_table: plan.lock_table.clone(),
            functions,
        }
    }
}

/// Runs one read within `budget`: its answer, or the error / "no answer within" as text. The read is boxed: an SDK
/// call's future is large, and the evaluation joins a few dozen of them (on the stack they overflow a 2 MiB thread).
pub(crate) async fn bounded<T>(
    budget: Duration,
    read: impl Future<Output = crate::Result<T>>,
) -> Result<T, String> {
    crate::fence::within(budget, Box::pin(read)).await
}

/// The deadline of a read on `side`: that region's operation timeout (the primary's is the short one).
pub(crate) fn budget(plan: &FailoverPlan, side: Side) -> Duration {
    plan.region(side).operation_timeout
}

/// The deadline of a read of a global or DR-side service (Global Accelerator, Route 53, SNS, Step Functions,
/// DynamoDB, Lambda): the DR region's operation timeout.
pub(crate) fn dr_budget(plan: &FailoverPlan) -> Duration {
    plan.dr.operation_timeout
}

/// The longest [`evaluate`] can take: the dials' read, then the slowest of the concurrent reads (each bounded by
/// its region's operation timeout). The readiness function's timeout must exceed it.
pub fn worst_case(plan: &FailoverPlan) -> Duration {
    dr_budget(plan) + budget(plan, Side::Primary).max(budget(plan, Side::Dr))
}

/// The standby side for an active side: the other one; DR while the active one is unknown or shifting (the
/// steady state is the primary serving).
pub fn standby_of(active: &ActiveSide) -> Side {
    match active {
        ActiveSide::Dr => Side::Primary,
        _ => Side::Dr,
    }
}

/// Evaluates every check. The dials are read first (they say which side is the standby, whose replica, vault and
/// group are judged); everything else is read concurrently, each read bounded. Never fails: what could not be read
/// is a failed check.
pub async fn evaluate(
    aws: &AwsClients,
    plan: &FailoverPlan,
    targets: &ReadinessTargets,
) -> Readiness {
    let checked_at = Utc::now();
    let side_bound = async {
        let seen = traffic::observe(aws, plan).await;
        let active = seen.active();
        let standby = standby_of(&active);
        let (db, compute, dns) = tokio::join!(
            Box::pin(db::observe(aws, plan, standby, checked_at)),
            Box::pin(compute::observe(aws, plan, standby)),
            Box::pin(dns::observe(aws, plan)),
        );
        (seen, active, standby, db, compute, dns)
    };
    let (
        (traffic_seen, active, standby, db_seen, compute_seen, dns_seen),
        operators_seen,
        deployment_seen,
    ) = tokio::join!(
        Box::pin(side_bound),
        Box::pin(operators::observe(aws, plan, targets)),
        Box::pin(deployment::observe(aws, plan, targets)),
    );
    let mut checks = Vec::new();
    checks.extend(db::checks(plan, standby, &db_seen, checked_at));
    checks.extend(compute::checks(plan, standby, &compute_seen, checked_at));
    checks.extend(traffic::checks(plan, &traffic_seen));
    checks.extend(dns::checks(plan, &active, &dns_seen));
    checks.extend(operators::checks(targets, &operators_seen));
    checks.extend(deployment::checks(targets, &deployment_seen, checked_at));
    checks.extend(fence::checks(plan, &active, &db_seen, &compute_seen));
    Readiness {
        checked_at,
        active,
        standby,
        checks,
    }
}

/// Every adapter call [`evaluate`] makes (the readiness function's IAM policy: `crate::permissions`).
pub const PERMISSIONS: &[Use] = {
    use crate::aws::*;
    use crate::permissions::Use as U;
    &[
        U::when(
            "IsRdsReplica",
            &rds::DESCRIBE_DB_INSTANCE,
            "db.replica: the standby's replica (and the primary's instance: db.replica / fence.old-writer)",
        ),
        U::when(
            "IsRdsReplica",
            &cloudwatch::REPLICA_LAG,
            "db.lag: the replica's ReplicaLag, in its own region",
        ),
        U::when(
            "IsAuroraGlobal",
            &rds::DESCRIBE_GLOBAL_CLUSTER,
            "db.global-member: the global cluster's members (and fence.old-writer)",
        ),
        U::when(
            "IsAuroraGlobal",
            &cloudwatch::GLOBAL_DB_LAG,
            "db.lag: the secondary's AuroraGlobalDBRPOLag",
        ),
        U::always(
            &backup::LIST_EC2_RECOVERY_POINTS,
            "compute.ami.*: the standby vault's recovery points of the plan's source",
        ),
        U::always(
            &autoscaling::DESCRIBE_GROUP,
            "compute.asg.*: the standby group, the active group's capacity (and fence.asg)",
        ),
        U::always(
            &ssm::READ_PARAMETER,
            "compute.ami-parameter: the parameter the launch template resolves",
        ),
        U::always(
            &globalaccelerator::DESCRIBE_ENDPOINT_GROUP,
            "traffic.*: both endpoint groups, their regions, dials and endpoint health",
        ),
        U::when(
            "IsHealthCheckDns",
            &route53::GET_HEALTH_CHECK,
            "dns.health-check.*: both health checks and their flags",
        ),
        U::when(
            "IsRecordsDns",
            &route53::CNAME_RECORD_SETS,
            "dns.record: the record and the side it answers",
        ),
        U::always(&sns::DESCRIBE_TOPIC, "operators.topic: the topic exists"),
        U::always(
            &sns::LIST_SUBSCRIPTIONS,
            "operators.subscriptions: at least one confirmed subscription",
        ),
        U::always(
            &stepfunctions::DESCRIBE_STATE_MACHINE,
            "deployment.state-machine: the deployed definition",
        ),
        U::always(
            &lambda::FUNCTION_CONFIG,
            "deployment.functions: each function's plan, and the ARNs the definition substitutes",
        ),
        U::always(&dynamodb::GET_ITEM, "deployment.lock: the flow lock item"),
        U::always(
            &stepfunctions::EXECUTION_STATUS,
            "deployment.lock: whether the lock's holder still runs",
        ),
    ]
};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The reference plan (plans/reference.env).
    pub(crate) fn plan() -> FailoverPlan {
        FailoverPlan::from_map(&crate::plan::tests::reference_vars()).unwrap()
    }

    fn readiness(verdicts: &[Verdict]) -> Readiness {
        Readiness {
            checked_at: Utc::now(),
            active: ActiveSide::Primary,
            standby: Side::Dr,
            checks: verdicts
                .iter()
                .enumerate()
                .map(|(i, v)| Check::new(&format!("c.{i}"), *v, "seen", None, "detail"))
                .collect(),
        }
    }

    #[test]
    fn the_worst_case_is_the_dials_then_the_slowest_read() {
        let mut p = plan();
        p.dr.operation_timeout = Duration::from_secs(5);
        p.primary.operation_timeout = Duration::from_secs(2);
        assert_eq!(worst_case(&p), Duration::from_secs(10));
    }

    #[test]
    fn the_worst_verdict_makes_the_exit_code() {
        assert_eq!(readiness(&[]).exit_code(), 0);
        assert_eq!(readiness(&[Verdict::Pass, Verdict::Pass]).exit_code(), 0);
        assert_eq!(readiness(&[Verdict::Pass, Verdict::Warn]).exit_code(), 1);
        let r = readiness(&[Verdict::Fail, Verdict::Warn, Verdict::Pass]);
        assert_eq!((r.worst(), r.exit_code()), (Verdict::Fail, 2));
        assert_eq!(r.findings().len(), 2);
        assert_eq!(
            serde_json::to_value(&r).unwrap()["checks"][0]["verdict"],
            "fail"
        );
    }

    #[test]
    fn the_table_is_aligned_and_says_the_worst() {
        let mut r = readiness(&[Verdict::Pass, Verdict::Fail]);
        r.checks[1].seen = "x".repeat(200);
        r.checks[1].limit = Some("max 4".into());
        let t = r.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("FAIL") && lines[0].contains("active: primary"),
            "{t}"
        );
        assert!(lines[0].contains("1 pass, 0 warn, 1 fail"), "{t}");
        // Every row's CHECK column starts where the header's does.
        let col = lines[1].find("CHECK").unwrap();
        assert_eq!(lines[2].find("c.0"), Some(col), "{t}");
        assert_eq!(lines[3].find("c.1"), Some(col), "{t}");
        assert!(lines[3].contains('…') && lines[3].contains("max 4"), "{t}");
        assert!(lines[2].starts_with("PASS") && lines[3].starts_with("FAIL"));
    }

    #[test]
    fn a_preflight_verdict_keeps_its_meaning() {
        let none = crate::step::Overrides::default();
        let f = crate::preflight::Check::fail(
            "ami.age",
            json!(100.0),
            json!(72),
            Some("allow_stale_ami"),
            &none,
            "old",
        );
        let c = Check::from_preflight("compute", f);
        assert_eq!(
            (c.id.as_str(), c.verdict, c.seen.as_str()),
            ("compute.ami.age", Verdict::Fail, "100.0")
        );
        assert_eq!(c.limit.as_deref(), Some("72"));
        let w = crate::preflight::Check::warn(
            "db.replica",
            json!({"status": "backing-up"}),
            json!(null),
            "x",
        );
        let c = Check::from_preflight("db", w);
        assert_eq!((c.id.as_str(), c.verdict), ("db.replica", Verdict::Warn));
        assert_eq!((c.seen.as_str(), c.limit), ("status=backing-up", None));
    }

    #[test]
    fn targets_come_from_the_plan_variables_and_one_variable_per_function() {
        let vars: HashMap<String, String> = [
            ("PILOTLIGHT_STATE_MACHINE_ARN", "arn:sm"),
            ("PILOTLIGHT_SNS_TOPIC_ARN", "arn:topic"),
            ("PILOTLIGHT_LOCK_TABLE", " "),
            ("PILOTLIGHT_FUNCTION_PROMOTE_DB", "stack-PromoteDb"),
            ("PILOTLIGHT_FUNCTION_NOT_A_FUNCTION", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let t = ReadinessTargets::from_map(&vars);
        assert_eq!(t.state_machine_arn.as_deref(), Some("arn:sm"));
        assert_eq!(t.lock_table, None, "blank is unset");
        assert_eq!(
            t.functions.into_iter().collect::<Vec<_>>(),
            vec![("promote-db".to_string(), "stack-PromoteDb".to_string())]
        );
        assert_eq!(
            function_variable("update-dns"),
            "PILOTLIGHT_FUNCTION_UPDATE_DNS"
        );
    }

    /// The readiness sources call exactly the adapters [`PERMISSIONS`] declares (the steps' own check is in
    /// `crate::permissions`).
    #[test]
    fn readiness_declares_exactly_the_adapter_calls_its_code_makes() {
        use crate::permissions::source::without_tests;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let main = std::fs::read_to_string(root.join("readiness.rs")).unwrap();
        let mut src = without_tests(&main).to_string();
        // The PERMISSIONS list itself names the calls: only the code before it counts.
        src.truncate(src.find("pub const PERMISSIONS").unwrap());
        let mut files: Vec<_> = std::fs::read_dir(root.join("readiness"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            src.push_str(without_tests(&std::fs::read_to_string(&f).unwrap()));
        }
        let mut declared: Vec<&str> = PERMISSIONS.iter().map(|u| u.call.adapter).collect();
        declared.sort();
        declared.dedup();
        assert_eq!(crate::permissions::calls_in(&src), declared);
    }
}
