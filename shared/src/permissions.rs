//! IAM permissions derived from the code. Every adapter function that sends a request declares, next to it, a
//! [`Call`]: the SDK operations it sends and the IAM actions (with the resource shape) they need. Every step
//! declares the adapter calls it makes ([`Use`]), and [`FUNCTIONS`] maps each Lambda function of `template.yaml` to
//! its step. The tests here read the adapter and step sources and fail when a `.send()` is not declared, when a
//! declared operation is not sent, when an action is not the operation's own name, or when a step calls an adapter
//! it does not declare (or declares one it does not call); `tests/iam.rs` then holds every role of the template to
//! exactly these permissions, and `docs/security.md` "Permissions" is [`markdown`] (`cargo run -- permissions`).

use std::collections::BTreeMap;

/// Where an action applies: the ARN shape the template's `Resource` must have for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The action is granted on `"*"` only: see [`STAR_ONLY`] for why, action by action.
    Any,
    /// `arn:…:rds:<region>:<account>:db:<id>` (the plan's instances; `db:*` of the plan's regions for listings).
    DbInstance,
    DbSubnetGroup,
    DbOptionGroup,
    /// `arn:…:rds:<region>:<account>:pg:*`: the DB parameter group a new replica is created with.
    DbParameterGroup,
    GlobalCluster,
    /// An Aurora member cluster (the plan's cluster ARNs).
    DbCluster,
    /// `arn:…:kms:<region>:<account>:key/*` of the plan's regions, used only through RDS.
    KmsKey,
    StateMachine,
    /// `arn:…:states:<region>:<account>:execution:<state machine name>:*`.
    Execution,
    LockTable,
    EndpointGroup,
    HealthCheck,
    HostedZone,
    Change,
    Topic,
    Parameter,
    AutoScalingGroup,
    BackupVault,
    /// The stack's Lambda functions (`GetAtt:<Name>Function.Arn`): readiness reads their plans, the operator's CLI
    /// reads detect's plan and invokes it.
    Function,
}

impl Resource {
    /// What the template's resource (flattened by `tests/iam.rs`: `Ref:Name`, `GetAtt:Name.Attr`, or the `Fn::Sub`
    /// text) contains for this shape.
    pub fn marker(self) -> &'static str {
        match self {
            Resource::Any => "*",
            Resource::DbInstance => ":db:",
            Resource::DbSubnetGroup => ":subgrp:",
            Resource::DbOptionGroup => ":og:",
            Resource::DbParameterGroup => ":pg:",
            Resource::GlobalCluster => ":global-cluster:",
            Resource::DbCluster => "DbClusterArn",
            Resource::KmsKey => ":key/",
            Resource::StateMachine => "Ref:FailoverStateMachine",
            Resource::Execution => ":execution:",
            Resource::LockTable => "GetAtt:FailoverLockTable.Arn",
            Resource::EndpointGroup => "EndpointGroupArn",
            Resource::HealthCheck => ":healthcheck/",
            Resource::HostedZone => ":hostedzone/",
            Resource::Change => ":change/",
            Resource::Topic => "Ref:OperatorsTopic",
            Resource::Parameter => ":parameter/",
            Resource::AutoScalingGroup => ":autoScalingGroup:",
            Resource::BackupVault => ":backup-vault:",
            Resource::Function => "Function.Arn",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Resource::Any => "`*` (see below)",
            Resource::DbInstance => "DB instance",
            Resource::DbSubnetGroup => "DB subnet group",
            Resource::DbOptionGroup => "option group",
            Resource::DbParameterGroup => "DB parameter group",
            Resource::GlobalCluster => "global cluster",
            Resource::DbCluster => "member cluster",
            Resource::KmsKey => "KMS key (via RDS)",
            Resource::StateMachine => "the state machine",
            Resource::Execution => "its executions",
            Resource::LockTable => "the lock table",
            Resource::EndpointGroup => "endpoint groups",
            Resource::HealthCheck => "health checks",
            Resource::HostedZone => "hosted zone",
            Resource::Change => "changes",
            Resource::Topic => "operators' topic",
            Resource::Parameter => "AMI parameters",
            Resource::AutoScalingGroup => "Auto Scaling groups",
            Resource::BackupVault => "backup vaults",
            Resource::Function => "the stack's functions",
        }
    }
}

/// One IAM action on one resource shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub action: &'static str,
    pub resource: Resource,
}

impl Permission {
    pub const fn new(action: &'static str, resource: Resource) -> Self {
        Permission { action, resource }
    }
}

/// An adapter function that sends requests: the SDK operations (builder method names, e.g. `promote_read_replica`)
/// and what they need. An operation's own action comes first under its name (`rds:PromoteReadReplica`); actions the
/// service checks besides (KMS for an encrypted replica, the subnet group it is placed in) follow.
#[derive(Debug)]
pub struct Call {
    /// `module::function` in `crate::aws`.
    pub adapter: &'static str,
    pub operations: &'static [&'static str],
    pub needs: &'static [Permission],
}

/// When a step makes a call: always, or only where a template condition holds (`IsRdsReplica`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The template condition (`Conditions:`) under which the call happens.
    If(&'static str),
}

/// A call a step makes.
#[derive(Debug, Clone, Copy)]
pub struct Use {
    pub call: &'static Call,
    pub when: When,
    /// Why the step makes it (the docs' table shows it).
    pub why: &'static str,
}

impl Use {
    pub const fn always(call: &'static Call, why: &'static str) -> Self {
        Use {
            call,
            when: When::Always,
            why,
        }
    }
    pub const fn when(condition: &'static str, call: &'static Call, why: &'static str) -> Self {
        Use {
            call,
            when: When::If(condition),
            why,
        }
    }
}

/// A Lambda function of the template and the step it runs.
#[derive(Debug)]
pub struct Function {
    /// Its logical id in `template.yaml`.
    pub logical_id: &'static str,
    /// The binary (`functions/<binary>`).
    pub binary: &'static str,
    /// The step module (`shared/src/steps/<step>.rs` and `shared/src/steps/<step>/`).
    pub step: &'static str,
    pub uses: &'static [Use],
}

pub const FUNCTIONS: &[Function] = &[
    Function {
        logical_id: "DetectFunction",
        binary: "detect",
        step: "detect",
        uses: crate::steps::detect::PERMISSIONS,
    },
    Function {
        logical_id: "PromoteDbFunction",
        binary: "promote-db",
        step: "promote_db",
        uses: crate::steps::promote_db::PERMISSIONS,
    },
    Function {
        logical_id: "ScaleComputeFunction",
        binary: "scale-compute",
        step: "scale_compute",
        uses: crate::steps::scale_compute::PERMISSIONS,
    },
    Function {
        logical_id: "ShiftTrafficFunction",
        binary: "shift-traffic",
        step: "shift_traffic",
        uses: crate::steps::shift_traffic::PERMISSIONS,
    },
    Function {
        logical_id: "UpdateDnsFunction",
        binary: "update-dns",
        step: "update_dns",
        uses: crate::steps::update_dns::PERMISSIONS,
    },
    Function {
        logical_id: "NotifyFunction",
        binary: "notify",
        step: "notify",
        uses: crate::steps::notify::PERMISSIONS,
    },
    Function {
        logical_id: "ProbeFunction",
        binary: "probe",
        step: "probe",
        uses: crate::steps::probe::PERMISSIONS,
    },
    Function {
        logical_id: "ReadinessFunction",
        binary: "readiness",
        step: "readiness",
        uses: crate::steps::readiness::PERMISSIONS,
    },
];

/// Actions granted on `"*"`, each with the reason (Service Authorization Reference, "Actions defined by …": an
/// action without a resource type is authorised on `*` only).
pub const STAR_ONLY: &[(&str, &str)] = &[
    (
        "cloudwatch:DescribeAlarms",
        "resource-level on alarm ARNs, but DescribeAlarms returns composite alarms only when scoped to `*` (CloudWatch \
         API reference); AlarmNames may name composite alarms",
    ),
    (
        "cloudwatch:GetMetricData",
        "no resource types (Service Authorization Reference)",
    ),
    (
        "cloudwatch:PutMetricData",
        "no resource types; narrowed by the `cloudwatch:namespace` condition to the probe's namespace",
    ),
    (
        "autoscaling:DescribeAutoScalingGroups",
        "no resource types (Auto Scaling Describe* actions)",
    ),
    (
        "elasticloadbalancing:DescribeTargetHealth",
        "no resource types (Elastic Load Balancing Describe* actions)",
    ),
    (
        "states:SendTaskSuccess",
        "a callback task is named by its token, not an ARN: no resource type applies to a waitForTaskToken task",
    ),
    ("states:SendTaskFailure", "as SendTaskSuccess"),
];

/// The actions a function needs under the template conditions that hold (`holds(name)`), with their resources.
pub fn needs(
    function: &Function,
    holds: impl Fn(&str) -> bool,
) -> BTreeMap<&'static str, Vec<Resource>> {
    let mut out: BTreeMap<&'static str, Vec<Resource>> = BTreeMap::new();
    for u in function.uses {
        if let When::If(c) = u.when
            && !holds(c)
        {
            continue;
        }
        for p in u.call.needs {
            let r = out.entry(p.action).or_default();
            if !r.contains(&p.resource) {
                r.push(p.resource);
            }
        }
    }
    out
}

/// The "Permissions" table of `docs/security.md`: one row per function, action and resource, with the adapter
/// calls and the steps' reasons that need it.
pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- generated by `cargo run -- permissions`; tests/iam.rs fails when this differs -->\n",
    );
    for f in FUNCTIONS {
        out.push_str(&format!(
            "\n#### {} (`{}`)\n\n| action | resource | when | adapter call | why |\n| --- | --- | --- | --- | --- |\n",
            f.logical_id, f.binary
        ));
        let mut rows: Vec<(Permission, String, &str, &str)> = Vec::new();
        for u in f.uses {
            let when = match u.when {
                When::Always => "always".to_string(),
                When::If(c) => c.to_string(),
            };
            for p in u.call.needs {
                rows.push((*p, when.clone(), u.call.adapter, u.why));
            }
        }
        rows.sort();
        rows.dedup();
        for (p, when, adapter, why) in rows {
            out.push_str(&format!(
                "| `{}` | {} | {when} | `aws::{adapter}` | {why} |\n",
                p.action,
                p.resource.describe()
            ));
        }
    }
    out.push_str("\n#### Actions on `*`\n\n| action | why |\n| --- | --- |\n");
    for (a, why) in STAR_ONLY {
        out.push_str(&format!("| `{a}` | {why} |\n"));
    }
    out
}

/// The adapter modules, their IAM service prefix, source and declared calls.
pub const ADAPTERS: &[(&str, &str, &str, &[&Call])] = {
    use crate::aws::*;
    &[
        (
            "autoscaling",
            "autoscaling",
            include_str!("aws/autoscaling.rs"),
            autoscaling::CALLS,
        ),
        (
            "backup",
            "backup",
            include_str!("aws/backup.rs"),
            backup::CALLS,
        ),
        (
            "cloudwatch",
            "cloudwatch",
            include_str!("aws/cloudwatch.rs"),
            cloudwatch::CALLS,
        ),
        (
            "dynamodb",
            "dynamodb",
            include_str!("aws/dynamodb.rs"),
            dynamodb::CALLS,
        ),
        (
            "elbv2",
            "elasticloadbalancing",
            include_str!("aws/elbv2.rs"),
            elbv2::CALLS,
        ),
        (
            "globalaccelerator",
            "globalaccelerator",
            include_str!("aws/globalaccelerator.rs"),
            globalaccelerator::CALLS,
        ),
        (
            "lambda",
            "lambda",
            include_str!("aws/lambda.rs"),
            lambda::CALLS,
        ),
        ("rds", "rds", include_str!("aws/rds.rs"), rds::CALLS),
        (
            "route53",
            "route53",
            include_str!("aws/route53.rs"),
            route53::CALLS,
        ),
        ("sns", "sns", include_str!("aws/sns.rs"), sns::CALLS),
        ("ssm", "ssm", include_str!("aws/ssm.rs"), ssm::CALLS),
        (
            "stepfunctions",
            "states",
            include_str!("aws/stepfunctions.rs"),
            stepfunctions::CALLS,
        ),
    ]
};

/// Source reading for the checks (also used by `tests/iam.rs`).
pub mod source {
    /// The source without its `#[cfg(test)]` module.
    pub fn without_tests(src: &str) -> &str {
        src.find("\n#[cfg(test)]").map_or(src, |i| &src[..i])
    }

    /// The top-level functions of a source: (name, text from the `fn` line to the next top-level item).
    pub fn functions(src: &str) -> Vec<(String, String)> {
        let src = without_tests(src);
        let mut out: Vec<(String, String)> = Vec::new();
        for line in src.lines() {
            let item = [
                "pub async fn ",
                "async fn ",
                "pub fn ",
                "fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
            ]
            .iter()
            .find_map(|p| line.strip_prefix(p));
            if let Some(rest) = item {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((name, format!("{line}\n")));
            } else if let Some((_, body)) = out.last_mut() {
                let top_level = !line.starts_with(' ')
                    && !line.is_empty()
                    && !line.starts_with('}')
                    && !line.starts_with(')');
                if top_level {
                    // A new item that is not a function: the function before it has ended.
                    out.push((String::new(), String::new()));
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
        out.retain(|(n, _)| !n.is_empty());
        out
    }

    fn ident_char(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }

    /// The identifiers called as `receiver.<ident>(` (whitespace ignored).
    pub fn method_calls(body: &str, receiver: &str) -> Vec<String> {
        // Whitespace runs as one space, none around `.` (rustfmt breaks chains before the dot).
        let flat = body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" .", ".")
            .replace(". ", ".");
        let pat = format!("{receiver}.");
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = flat[at..].find(&pat) {
            let start = at + i;
            at = start + pat.len();
            if flat[..start].chars().next_back().is_some_and(ident_char) {
                continue;
            }
            let ident: String = flat[at..].chars().take_while(|c| ident_char(*c)).collect();
            if flat[at + ident.len()..].starts_with('(') && !ident.is_empty() {
                out.push(ident);
            }
        }
        out
    }

    /// The names of the SDK client parameters of a function (`rds: &aws_sdk_rds::Client`).
    pub fn client_params(body: &str) -> Vec<String> {
        let flat: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let sig = flat.split('{').next().unwrap_or_default();
        sig.split([',', '('])
            .filter_map(|p| p.split_once(':'))
            .filter(|(_, ty)| ty.starts_with("&aws_sdk_") && ty.ends_with("::Client"))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Whether `body` calls the function `name` (`name(` not preceded by an identifier character nor `fn `).
    pub fn calls(body: &str, name: &str) -> bool {
        let pat = format!("{name}(");
        body.match_indices(&pat).any(|(i, _)| {
            let before = &body[..i];
            !before.chars().next_back().is_some_and(ident_char) && !before.ends_with("fn ")
        })
    }
}

/// The `.send()`ing functions of an adapter source, with the SDK operations each sends.
pub fn sending_functions(src: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, body) in source::functions(src) {
        if !body.contains(".send()") {
            continue;
        }
        let mut ops: Vec<String> = source::client_params(&body)
            .iter()
            .flat_map(|p| source::method_calls(&body, p))
            .collect();
        ops.sort();
        ops.dedup();
        out.insert(name, ops);
    }
    out
}

/// The adapter calls a step's source makes: direct calls to a declared function, or through an adapter function
/// that calls one (e.g. `read_dials` → `describe_endpoint_group`).
pub fn calls_in(step_source: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (module, _, src, calls) in ADAPTERS {
        let fns = source::functions(src);
        for call in *calls {
            let name = call.adapter.rsplit("::").next().unwrap_or_default();
            // The adapter functions that reach `name` (itself, and public wrappers in the module that call it).
            let mut reach: Vec<&str> = vec![name];
            loop {
                let more: Vec<&str> = fns
                    .iter()
                    .filter(|(f, body)| {
                        !reach.contains(&f.as_str()) && reach.iter().any(|r| source::calls(body, r))
                    })
                    .map(|(f, _)| f.as_str())
                    .collect();
                if more.is_empty() {
                    break;
                }
                reach.extend(more);
            }
            reach.retain(|f| {
                fns.iter()
                    .any(|(n, body)| n == f && body.starts_with("pub "))
            });
            if reach.iter().any(|f| source::calls(step_source, f)) {
                out.push(call.adapter);
            }
        }
        let _ = module;
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// `describe_db_instances` ~ `DescribeDBInstances`: the SDK's builder names are the API operation's words.
    fn same_name(op: &str, action_name: &str) -> bool {
        // Lambda's Invoke is authorised as lambda:InvokeFunction (Service Authorization Reference).
        op.replace('_', "") == action_name.to_lowercase()
            || (op, action_name) == ("invoke", "InvokeFunction")
    }

    #[test]
    fn every_request_an_adapter_sends_is_declared_with_its_own_action() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws");
        let listed: BTreeSet<&str> = ADAPTERS.iter().map(|a| a.0).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_str().unwrap().to_string();
            let src = std::fs::read_to_string(&path).unwrap();
            if !listed.contains(module.as_str()) {
                assert!(
                    !src.contains(".send()"),
                    "aws/{module}.rs sends requests but is not in permissions::ADAPTERS"
                );
            }
        }
        for (module, prefix, src, calls) in ADAPTERS {
            let sending = sending_functions(src);
            let declared: BTreeMap<String, &Call> = calls
                .iter()
                .map(|c| {
                    (
                        c.adapter
                            .strip_prefix(&format!("{module}::"))
                            .expect(c.adapter)
                            .to_string(),
                        *c,
                    )
                })
                .collect();
            assert_eq!(
                sending.keys().collect::<Vec<_>>(),
                declared.keys().collect::<Vec<_>>(),
                "aws/{module}.rs: the functions that .send() and the ones in its CALLS differ"
            );
            for (name, ops) in &sending {
                let call = declared[name];
                let mut want: Vec<String> = call.operations.iter().map(|s| s.to_string()).collect();
                want.sort();
                assert_eq!(
                    ops, &want,
                    "aws::{module}::{name}: the SDK operations it sends"
                );
                for op in ops {
                    assert!(
                        call.needs.iter().any(|p| p
                            .action
                            .strip_prefix(&format!("{prefix}:"))
                            .is_some_and(|a| same_name(op, a))),
                        "aws::{module}::{name} sends {op} but declares no {prefix}:<{op}> action"
                    );
                }
            }
        }
    }

    #[test]
    fn actions_are_exact_and_star_only_ones_are_listed() {
        let star: BTreeSet<&str> = STAR_ONLY.iter().map(|s| s.0).collect();
        for (_, _, _, calls) in ADAPTERS {
            for c in *calls {
                for p in c.needs {
                    assert!(
                        !p.action.contains('*'),
                        "{}: wildcard action {}",
                        c.adapter,
                        p.action
                    );
                    assert_eq!(
                        p.resource == Resource::Any,
                        star.contains(p.action),
                        "{}: {} is on \"*\" exactly when STAR_ONLY lists it",
                        c.adapter,
                        p.action
                    );
                }
            }
        }
    }

    fn step_source(step: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/steps");
        let main = std::fs::read_to_string(root.join(format!("{step}.rs"))).unwrap();
        let mut src = source::without_tests(&main).to_string();
        // The step's submodules, nested ones included (e.g. notify/report/html.rs).
        fn add_dir(dir: &Path, src: &mut String) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for p in paths {
                if p.is_dir() {
                    add_dir(&p, src);
                } else {
                    let text = std::fs::read_to_string(&p).unwrap();
                    src.push_str(source::without_tests(&text));
                }
            }
        }
        // The readiness function runs the evaluation (`crate::readiness`): its calls are the function's too.
        if src.contains("crate::readiness::evaluate(") {
            let readiness = std::fs::read_to_string(root.join("../readiness.rs")).unwrap();
            let readiness = source::without_tests(&readiness);
            // Its PERMISSIONS list names the calls: only the code before it counts (as in its own test).
            let end = readiness
                .find("pub const PERMISSIONS")
                .unwrap_or(readiness.len());
            src.push_str(&readiness[..end]);
            add_dir(&root.join("../readiness"), &mut src);
        }
        add_dir(&root.join(step), &mut src);
        src
    }

    #[test]
    fn steps_declare_exactly_the_adapter_calls_their_code_makes() {
        for f in FUNCTIONS {
            let src = step_source(f.step);
            let mut declared: Vec<&str> = f.uses.iter().map(|u| u.call.adapter).collect();
            declared.sort();
            declared.dedup();
            assert_eq!(
                calls_in(&src),
                declared,
                "steps::{}: PERMISSIONS vs the calls in its code",
                f.step
            );
            let main = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../functions/{}/src/main.rs", f.binary)),
            )
            .unwrap();
            assert!(
                main.contains(&format!("steps::{}::handle", f.step)),
                "{} runs steps::{}",
                f.binary,
                f.step
            );
        }
    }

    #[test]
    fn only_adapters_send_requests() {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        for f in files {
            if f.starts_with(src.join("aws")) || f.ends_with("permissions.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                !source::without_tests(&text).contains(".send()"),
                "{}: requests are sent by crate::aws adapters only (their permissions are declared there)",
                f.display()
            );
        }
    }
}
