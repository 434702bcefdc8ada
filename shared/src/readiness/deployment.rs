//! The deployment: what runs the failover is what this code generates and carries one plan.
//!
//! * `deployment.state-machine`: the deployed definition equals the generated one (`flow::asl::render`) after the
//!   template's DefinitionSubstitutions (each `${<Logical id>Arn}` of a function is that function's ARN, as
//!   GetFunctionConfiguration reports it; `${LockTableArn}` is the lock table's ARN beside the state machine),
//!   compared as JSON.
//! * `deployment.functions`: every function of the template carries the same plan: the plan variables (all
//!   `PILOTLIGHT_*` but the ones a function sets for itself, [`own_variable`]) are equal across functions.
//! * `deployment.lock`: the flow lock is free (a held one warns: a flow runs; a stale one warns: detect takes it
//!   over, `steps::detect::lock::takeover`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::aws::clients::AwsClients;
use crate::aws::dynamodb::{Item, get_item};
use crate::aws::lambda::{FunctionConfig, function_config};
use crate::aws::stepfunctions::{DeployedStateMachine, describe_state_machine, execution_status};
use crate::flow::asl::{LOCK_TABLE_PLACEHOLDER, render};
use crate::permissions::FUNCTIONS;
use crate::plan::FailoverPlan;
use crate::steps::detect::lock::{
    HolderStatus, KEY, KEY_ATTRIBUTE, LockRecord, Takeover, takeover,
};

use super::{Check, ReadinessTargets, bounded, dr_budget};

/// The flow lock as read: None when free, else the item and its holder's execution status (None: no such
/// execution).
pub type LockRead = Result<Option<(Item, Option<String>)>, String>;

#[derive(Debug, Clone)]
pub struct DeploymentSeen {
    /// None: no state machine configured.
    pub state_machine: Option<Result<Option<DeployedStateMachine>, String>>,
    /// Each configured function's configuration (None: Lambda does not know it), by binary.
    pub functions: BTreeMap<String, Result<Option<FunctionConfig>, String>>,
    /// None: no lock table configured.
    pub lock: Option<LockRead>,
}

pub async fn observe(
    aws: &AwsClients,
    plan: &FailoverPlan,
    targets: &ReadinessTargets,
) -> DeploymentSeen {
    let t = dr_budget(plan);
    let state_machine = async {
        match targets.state_machine_arn.as_deref() {
            Some(arn) => Some(bounded(t, describe_state_machine(aws.sfn(), arn)).await),
            None => None,
        }
    };
    let functions = futures_join_all(targets.functions.iter().map(|(binary, name)| async move {
        (
            binary.clone(),
            bounded(t, function_config(aws.lambda(), name)).await,
        )
    }));
    let lock = async {
        let table = targets.lock_table.as_deref()?;
        Some(
            bounded(t, async {
                let Some(item) = get_item(aws.dynamodb(), table, (KEY_ATTRIBUTE, KEY)).await?
                else {
                    return Ok(None);
                };
                let holder = item.get("holder_arn").filter(|a| !a.is_empty());
                let status = match holder {
                    Some(arn) => execution_status(aws.sfn(), arn).await?,
                    None => None,
                };
                Ok(Some((item, status)))
            })
            .await,
        )
    };
    let (state_machine, functions, lock) = tokio::join!(state_machine, functions, lock);
    DeploymentSeen {
        state_machine,
        functions: functions.into_iter().collect(),
        lock,
    }
}

/// Runs the futures concurrently (the workspace has no `futures` crate: one task set, joined in order).
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => out[i] = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Pure.
pub fn checks(targets: &ReadinessTargets, seen: &DeploymentSeen, now: DateTime<Utc>) -> Vec<Check> {
    vec![
        state_machine(targets, seen),
        functions(seen),
        lock(targets, &seen.lock, now),
    ]
}

const SM_ID: &str = "deployment.state-machine";
const SM_LIMIT: &str = "the generated definition (flow::asl), substituted";

/// The deployed definition against the generated one. Pure.
pub fn state_machine(targets: &ReadinessTargets, seen: &DeploymentSeen) -> Check {
    let deployed = match &seen.state_machine {
        None => {
            return Check::fail(
                SM_ID,
                "none",
                SM_LIMIT,
                "not configured: set PILOTLIGHT_STATE_MACHINE_ARN",
            );
        }
        Some(Err(e)) => return Check::unread(SM_ID, "the state machine", e, SM_LIMIT),
        Some(Ok(None)) => {
            return Check::fail(
                SM_ID,
                "not found",
                SM_LIMIT,
                format!(
                    "state machine {} does not exist: deploy the stack (sam deploy)",
                    targets.state_machine_arn.as_deref().unwrap_or("-")
                ),
            );
        }
        Some(Ok(Some(d))) => d,
    };
    let values = match substitutions(targets, seen) {
        Ok(v) => v,
        Err(missing) => {
            return Check::fail(
                SM_ID,
                format!("cannot substitute {}", missing.join(", ")),
                SM_LIMIT,
                "the expected definition needs these values (the functions' ARNs, the lock table): configure \
                 and deploy them (PILOTLIGHT_FUNCTION_<BINARY>, PILOTLIGHT_LOCK_TABLE)",
            );
        }
    };
    compare_definitions(
        &deployed.definition,
        &substitute(&render(), &values),
        &deployed.arn,
    )
}

/// The deployed definition (JSON text) against the expected one, as JSON values. Pure.
pub fn compare_definitions(deployed: &str, expected: &str, arn: &str) -> Check {
    let expected: Value = match serde_json::from_str(expected) {
        Ok(v) => v,
        Err(e) => return Check::fail(SM_ID, format!("generated definition: {e}"), SM_LIMIT, "bug"),
    };
    let deployed: Value = match serde_json::from_str(deployed) {
        Ok(v) => v,
        Err(e) => {
            return Check::fail(
                SM_ID,
                format!("not JSON: {e}"),
                SM_LIMIT,
                format!("the definition of {arn} is not JSON: redeploy the stack"),
            );
        }
    };
    match first_difference(&expected, &deployed, String::new()) {
        None => Check::pass(
            SM_ID,
            "equal",
            SM_LIMIT,
            format!("{arn} runs the generated definition"),
        ),
        Some(diff) => Check::fail(
            SM_ID,
            diff,
            SM_LIMIT,
            format!(
                "{arn} differs from the definition this version generates (edited in the console, or an older \
                 deploy): redeploy the stack (sam deploy) with statemachine/failover.asl.json"
            ),
        ),
    }
}

/// The first place two JSON values differ, as `<pointer>: <deployed> (expected <expected>)`. Pure.
pub fn first_difference(expected: &Value, deployed: &Value, at: String) -> Option<String> {
    let short = |v: &Value| {
        let s = v.to_string();
        if s.chars().count() > 40 {
            format!("{}…", s.chars().take(39).collect::<String>())
        } else {
            s
        }
    };
    match (expected, deployed) {
        (Value::Object(e), Value::Object(d)) => {
            let keys: BTreeSet<&String> = e.keys().chain(d.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = format!("{at}/{k}");
                match (e.get(k), d.get(k)) {
                    (Some(ev), Some(dv)) => first_difference(ev, dv, path),
                    (Some(_), None) => Some(format!("{path}: missing")),
                    (None, Some(dv)) => Some(format!("{path}: {} (not generated)", short(dv))),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(e), Value::Array(d)) if e.len() == d.len() => e
            .iter()
            .zip(d)
            .enumerate()
            .find_map(|(i, (ev, dv))| first_difference(ev, dv, format!("{at}/{i}"))),
        (e, d) if e == d => None,
        (e, d) => Some(format!(
            "{}: {} (expected {})",
            if at.is_empty() { "/" } else { &at },
            short(d),
            short(e)
        )),
    }
}

/// The values of the template's DefinitionSubstitutions, or the names that have none. Pure.
pub fn substitutions(
    targets: &ReadinessTargets,
    seen: &DeploymentSeen,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for name in placeholders(&render()) {
        let value = if name == LOCK_TABLE_PLACEHOLDER {
            lock_table_arn(targets)
        } else {
            FUNCTIONS
                .iter()
                .find(|f| format!("{}Arn", f.logical_id) == name)
                .and_then(|f| seen.functions.get(f.binary))
                .and_then(|r| r.as_ref().ok())
                .and_then(|c| c.as_ref())
                .map(|c| c.arn.clone())
                .filter(|a| !a.is_empty())
        };
        match value {
            Some(v) => {
                values.insert(name, v);
            }
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(missing)
    }
}

/// The lock table's ARN: beside the state machine (same partition, region, account), as the template creates it.
fn lock_table_arn(targets: &ReadinessTargets) -> Option<String> {
    let table = targets.lock_table.as_deref()?;
    if table.starts_with("arn:") {
        return Some(table.to_string());
    }
    let sm: Vec<&str> = targets.state_machine_arn.as_deref()?.split(':').collect();
    (sm.len() > 4).then(|| format!("arn:{}:dynamodb:{}:{}:table/{table}", sm[1], sm[3], sm[4]))
}

/// The `${Name}` placeholders of a definition, in order, once each. Pure.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        let name = rest[..end].to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &rest[end..];
    }
    out
}

/// Replaces each `${Name}` with its value, as CloudFormation's DefinitionSubstitutions do. Pure.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    values.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("${{{k}}}"), v)
    })
}

/// Variables a function sets for itself (template.yaml, the function's own `Environment`), not part of the plan
/// every function carries: detect's state machine and lock table, promote-db's promoted-instance settings, the
/// probe's targets, readiness's function names.
pub fn own_variable(name: &str) -> bool {
    const OWN: &[&str] = &["PILOTLIGHT_STATE_MACHINE_ARN", "PILOTLIGHT_LOCK_TABLE"];
    const OWN_PREFIXES: &[&str] = &[
        "PILOTLIGHT_PROBE_",
        super::FUNCTION_VARIABLE_PREFIX,
        "PILOTLIGHT_READINESS_",
    ];
    const OWN_SUFFIXES: &[&str] = &[
        "_DB_PROMOTED_INSTANCE_CLASS",
        "_DB_PROMOTED_MULTI_AZ",
        "_DB_KMS_KEY_ID",
    ];
    OWN.contains(&name)
        || OWN_PREFIXES.iter().any(|p| name.starts_with(p))
        || OWN_SUFFIXES.iter().any(|s| name.ends_with(s))
}

const FN_ID: &str = "deployment.functions";
const FN_LIMIT: &str = "one plan: the same plan variables in every function";

/// Every function carries the same plan. Pure.
pub fn functions(seen: &DeploymentSeen) -> Check {
    if seen.functions.is_empty() {
        return Check::fail(
            FN_ID,
            "none",
            FN_LIMIT,
            "not configured: set PILOTLIGHT_FUNCTION_<BINARY> for each function",
        );
    }
    let mut problems = Vec::new();
    let mut plans: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (binary, read) in &seen.functions {
        match read {
            Err(e) => problems.push(format!("{binary}: error: {e}")),
            Ok(None) => problems.push(format!("{binary}: not found")),
            Ok(Some(c)) => {
                plans.insert(
                    binary,
                    c.environment
                        .iter()
                        .filter(|(k, _)| k.starts_with("PILOTLIGHT_") && !own_variable(k))
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                );
            }
        }
    }
    let variables: BTreeSet<&str> = plans.values().flat_map(|p| p.keys().copied()).collect();
    let mut differing = Vec::new();
    for var in &variables {
        let values: BTreeSet<Option<&str>> = plans.values().map(|p| p.get(var).copied()).collect();
        if values.len() > 1 {
            let by: Vec<String> = plans
                .iter()
                .map(|(b, p)| format!("{b}={}", p.get(var).copied().unwrap_or("(unset)")))
                .collect();
            differing.push(format!("{var}: {}", by.join(", ")));
        }
    }
    if !problems.is_empty() {
        return Check::fail(
            FN_ID,
            problems.join("; "),
            FN_LIMIT,
            "a function's configuration could not be read: check the function names and lambda:GetFunctionConfiguration",
        );
    }
    if !differing.is_empty() {
        return Check::fail(
            FN_ID,
            differing.join("; "),
            FN_LIMIT,
            format!(
                "{} plan variable(s) differ between functions: the steps of one failover would act on different \
                 plans; redeploy the stack so every function has the template's values",
                differing.len()
            ),
        );
    }
    Check::pass(
        FN_ID,
        format!(
            "{} functions, {} plan variables, equal",
            plans.len(),
            variables.len()
        ),
        FN_LIMIT,
        format!(
            "{} carry one plan",
            plans.keys().copied().collect::<Vec<_>>().join(", ")
        ),
    )
}

const LOCK_ID: &str = "deployment.lock";
const LOCK_LIMIT: &str = "free";

/// The flow lock is free. Pure.
pub fn lock(targets: &ReadinessTargets, read: &Option<LockRead>, now: DateTime<Utc>) -> Check {
    let table = targets.lock_table.as_deref().unwrap_or("-");
    let (item, status) = match read {
        None => {
            return Check::fail(
                LOCK_ID,
                "none",
                LOCK_LIMIT,
                "not configured: set PILOTLIGHT_LOCK_TABLE",
            );
        }
        Some(Err(e)) => {
            return Check::unread(LOCK_ID, &format!("the flow lock in {table}"), e, LOCK_LIMIT);
        }
        Some(Ok(None)) => {
            return Check::pass(
                LOCK_ID,
                "free",
                LOCK_LIMIT,
                format!("no flow holds the lock ({table})"),
            );
        }
        Some(Ok(Some(held))) => held,
    };
    let Some(record) = LockRecord::from_item(item) else {
        return Check::fail(
            LOCK_ID,
            "an item without a holder",
            LOCK_LIMIT,
            format!(
                "the lock item in {table} was not written by pilotlight: delete it ({KEY_ATTRIBUTE} = {KEY}) to unblock detect"
            ),
        );
    };
    let seen = format!(
        "held by {} since {}",
        record.holder,
        crate::timestamp::rfc3339(record.started_at, chrono::SecondsFormat::Secs)
    );
    match takeover(&record, &HolderStatus::from_status(status.clone()), now) {
        Takeover::Keep { reason } => Check::warn(
            LOCK_ID,
            seen,
            LOCK_LIMIT,
            format!("a flow runs: {reason}; a new failover waits for it (follow it, or stop it)"),
        ),
        Takeover::TakeOver { reason } => Check::warn(
            LOCK_ID,
            seen,
            LOCK_LIMIT,
            format!("stale: {reason}; the next detect takes it over"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::Verdict;
    use serde_json::json;

    fn targets() -> ReadinessTargets {
        ReadinessTargets {
            state_machine_arn: Some(
                "arn:aws:states:ap-northeast-1:123456789012:stateMachine:sm".into(),
            ),
            topic_arn: None,
            lock_table: Some("lock".into()),
            functions: FUNCTIONS
                .iter()
                .map(|f| (f.binary.to_string(), format!("stack-{}", f.logical_id)))
                .collect(),
        }
    }

    fn config(binary: &str, env: &[(&str, &str)]) -> Result<Option<FunctionConfig>, String> {
        Ok(Some(FunctionConfig {
            name: binary.into(),
            arn: format!("arn:aws:lambda:ap-northeast-1:123456789012:function:{binary}"),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }))
    }

    fn seen(definition: Option<String>) -> DeploymentSeen {
        DeploymentSeen {
            state_machine: Some(Ok(definition.map(|d| DeployedStateMachine {
                arn: "arn:sm".into(),
                status: Some("ACTIVE".into()),
                definition: d,
            }))),
            functions: FUNCTIONS
                .iter()
                .map(|f| {
                    (
                        f.binary.to_string(),
                        config(f.binary, &[("PILOTLIGHT_DR_REGION", "ap-northeast-1")]),
                    )
                })
                .collect(),
            lock: Some(Ok(None)),
        }
    }

    fn deployed_definition(s: &DeploymentSeen) -> String {
        substitute(&render(), &substitutions(&targets(), s).unwrap())
    }

    #[test]
    fn the_deployed_definition_must_equal_the_generated_one_substituted() {
        let s = seen(None);
        let text = deployed_definition(&s);
        assert!(!text.contains("${"), "every placeholder substituted");
        assert!(text.contains("arn:aws:dynamodb:ap-northeast-1:123456789012:table/lock"));
        // As JSON: a deploy that reformats (no indentation) is the same definition.
        let compact =
            serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        let c = state_machine(&targets(), &seen(Some(compact)));
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        let edited = text.replacen("\"TimeoutSeconds\": 86400", "\"TimeoutSeconds\": 60", 1);
        let c = state_machine(&targets(), &seen(Some(edited)));
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.seen, "/TimeoutSeconds: 60 (expected 86400)");
        let c = state_machine(&targets(), &seen(None));
        assert!(c.verdict == Verdict::Fail && c.seen == "not found");
        let mut missing = seen(Some(text));
        missing.functions.remove("notify");
        let c = state_machine(&targets(), &missing);
        assert!(
            c.verdict == Verdict::Fail && c.seen == "cannot substitute NotifyFunctionArn",
            "{c:?}"
        );
    }

    #[test]
    fn differences_are_located() {
        let e = json!({"States": {"A": {"Next": "B"}}, "X": [1, 2]});
        assert_eq!(first_difference(&e, &e, String::new()), None);
        let d = json!({"States": {"A": {"Next": "C"}}, "X": [1, 2]});
        assert_eq!(
            first_difference(&e, &d, String::new()).unwrap(),
            "/States/A/Next: \"C\" (expected \"B\")"
        );
        let d = json!({"States": {"A": {}}, "X": [1, 2]});
        assert_eq!(
            first_difference(&e, &d, String::new()).unwrap(),
            "/States/A/Next: missing"
        );
        let d = json!({"States": {"A": {"Next": "B"}}, "X": [1]});
        assert!(
            first_difference(&e, &d, String::new())
                .unwrap()
                .starts_with("/X: [1]")
        );
    }

    #[test]
    fn every_function_must_carry_the_same_plan() {
        let mut s = seen(None);
        assert_eq!(functions(&s).verdict, Verdict::Pass, "{:?}", functions(&s));
        // A variable a function sets for itself is not the plan.
        s.functions.insert(
            "detect".into(),
            config(
                "detect",
                &[
                    ("PILOTLIGHT_DR_REGION", "ap-northeast-1"),
                    ("PILOTLIGHT_LOCK_TABLE", "t"),
                ],
            ),
        );
        assert_eq!(functions(&s).verdict, Verdict::Pass);
        s.functions.insert(
            "notify".into(),
            config("notify", &[("PILOTLIGHT_DR_REGION", "eu-central-1")]),
        );
        let c = functions(&s);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.seen
                .starts_with("PILOTLIGHT_DR_REGION: detect=ap-northeast-1"),
            "{c:?}"
        );
        assert!(c.seen.contains("notify=eu-central-1"), "{c:?}");
        s.functions.insert("probe".into(), Ok(None));
        assert!(functions(&s).seen.contains("probe: not found"));
    }

    /// Every variable template.yaml sets on one function only (indented under a function's own Environment) is an
    /// own variable; every Globals one is plan.
    #[test]
    fn own_variables_are_the_templates_per_function_ones() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .unwrap();
        let resources = template.split("\nResources:").nth(1).unwrap();
        let globals = template.split("\nResources:").next().unwrap();
        let var = |line: &str, indent: usize| {
            let t = line.strip_prefix(&" ".repeat(indent))?;
            let name = t.split(':').next()?;
            (name.starts_with("PILOTLIGHT_") && !t.starts_with(' ')).then(|| name.to_string())
        };
        let own: Vec<String> = resources.lines().filter_map(|l| var(l, 10)).collect();
        assert!(
            own.contains(&"PILOTLIGHT_PROBE_URLS".to_string()),
            "{own:?}"
        );
        for v in &own {
            assert!(own_variable(v), "{v} is set per function in template.yaml");
        }
        let plan: Vec<String> = globals.lines().filter_map(|l| var(l, 8)).collect();
        assert!(plan.len() > 20, "{plan:?}");
        for v in &plan {
            assert!(!own_variable(v), "{v} is a Globals (plan) variable");
        }
    }

    #[test]
    fn the_lock_is_free_or_its_holder_is_said() {
        let t = targets();
        let now = Utc::now();
        assert_eq!(lock(&t, &Some(Ok(None)), now).verdict, Verdict::Pass);
        let item: Item = [
            ("lock", "flow"),
            ("holder", "failover-1"),
            ("holder_arn", "arn:exec"),
            ("direction", "failover"),
            ("started_at", "2026-11-29T10:00:00Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = lock(
            &t,
            &Some(Ok(Some((item.clone(), Some("RUNNING".into()))))),
            now,
        );
        assert!(
            c.verdict == Verdict::Warn && c.detail.contains("a flow runs"),
            "{c:?}"
        );
        assert_eq!(c.seen, "held by failover-1 since 2026-11-29T10:00:00Z");
        let c = lock(&t, &Some(Ok(Some((item, Some("FAILED".into()))))), now);
        assert!(
            c.verdict == Verdict::Warn && c.detail.contains("stale"),
            "{c:?}"
        );
        let c = lock(&t, &Some(Err("ResourceNotFoundException".into())), now);
        assert_eq!(c.verdict, Verdict::Fail);
        let c = lock(
            &ReadinessTargets {
                lock_table: None,
                ..t
            },
            &None,
            now,
        );
        assert_eq!(c.verdict, Verdict::Fail);
    }
}
