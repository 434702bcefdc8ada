//! The template's roles hold exactly what the code needs (`pilotlight::permissions`): per function and per mode
//! (the template's DbMode / DnsMode conditions), no action missing, none granted that no call needs, no wildcard
//! action, `"*"` only for the actions `STAR_ONLY` lists (and nothing narrower for them), every resource of the
//! shape its action needs. The state machine role: the Lambda functions and the lock table the generated ASL
//! calls, and nothing else besides the log-delivery actions. docs/security.md "Permissions" is the generated table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use pilotlight::permissions::{FUNCTIONS, Resource, STAR_ONLY, markdown, needs};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let python = root().join(".tools/moto/bin/python");
    let out = Command::new(&python)
        .arg(root().join("scripts/template_json.py"))
        .arg(root().join("template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A resource as text: `*`, the `Fn::Sub` text, `Ref:Name`, `GetAtt:Name.Attr`, or the JSON of anything else.
fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("Ref") => format!("Ref:{}", o["Ref"].as_str().unwrap()),
        Value::Object(o) if o.contains_key("Fn::GetAtt") => {
            let a = &o["Fn::GetAtt"];
            match a {
                Value::Array(parts) => format!(
                    "GetAtt:{}.{}",
                    parts[0].as_str().unwrap(),
                    parts[1].as_str().unwrap()
                ),
                other => format!("GetAtt:{}", other.as_str().unwrap()),
            }
        }
        Value::Object(o) if o.contains_key("Fn::Sub") => match &o["Fn::Sub"] {
            Value::Array(parts) => parts[0].as_str().unwrap().to_string(),
            s => s.as_str().unwrap().to_string(),
        },
        // !Join ["/", !Split ["//", !Sub "..."]]: the Sub inside.
        Value::Object(o) if o.contains_key("Fn::Join") => flat(&o["Fn::Join"][1]["Fn::Split"][1]),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// The statements of a policy list, `Fn::If` resolved with `holds`.
fn statements(policies: &Value, holds: &dyn Fn(&str) -> bool) -> Vec<Value> {
    fn resolve(v: &Value, holds: &dyn Fn(&str) -> bool) -> Option<Value> {
        match v.get("Fn::If") {
            Some(Value::Array(b)) => {
                let branch = if holds(b[0].as_str().unwrap()) {
                    &b[1]
                } else {
                    &b[2]
                };
                if branch.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
                    None
                } else {
                    resolve(branch, holds)
                }
            }
            _ => Some(v.clone()),
        }
    }
    let mut out = Vec::new();
    for p in list(policies) {
        if let Some(doc) = p.get("Statement") {
            out.extend(list(doc).iter().filter_map(|s| resolve(s, holds)));
        }
    }
    out
}

/// (action, resource text) of every Allow statement.
fn grants(stmts: &[Value]) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for s in stmts {
        assert_eq!(s["Effect"], "Allow", "{s}");
        for a in list(&s["Action"]) {
            for r in list(&s["Resource"]) {
                out.push((a.as_str().unwrap().to_string(), flat(&r), s.clone()));
            }
        }
    }
    out
}

/// The four ways the template's mode conditions can hold.
fn modes() -> Vec<BTreeMap<&'static str, bool>> {
    let mut out = Vec::new();
    for rds in [true, false] {
        for hc in [true, false] {
            out.push(BTreeMap::from([
                ("IsRdsReplica", rds),
                ("IsAuroraGlobal", !rds),
                ("IsHealthCheckDns", hc),
                ("IsRecordsDns", !hc),
                // The readiness role reads the probe's plan only where the probe exists (both cases covered).
                ("UseProbe", rds == hc),
            ]));
        }
    }
    out
}

#[test]
fn every_function_role_grants_exactly_what_its_code_needs() {
    let t = template();
    let resources = t["Resources"].as_object().unwrap();
    let star: BTreeSet<&str> = STAR_ONLY.iter().map(|s| s.0).collect();
    let functions: BTreeSet<&str> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, _)| k.as_str())
        .collect();
    let declared: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.logical_id).collect();
    assert_eq!(
        functions, declared,
        "the template's functions vs permissions::FUNCTIONS"
    );

    let mut problems = Vec::new();
    for mode in modes() {
        let holds = |c: &str| {
            *mode
                .get(c)
                .unwrap_or_else(|| panic!("condition {c}: add it to modes()"))
        };
        for f in FUNCTIONS {
            let id = f.logical_id;
            let props = &resources[id]["Properties"];
            let stmts = statements(&props["Policies"], &holds);
            let granted = grants(&stmts);
            let needed = needs(f, holds);
            for (action, shapes) in &needed {
                for shape in shapes {
                    let ok = granted.iter().any(|(a, r, _)| {
                        a == action
                            && match shape {
                                Resource::Any => r == "*",
                                s => r.contains(s.marker()),
                            }
                    });
                    if !ok {
                        problems.push(format!(
                            "{mode:?} {id}: needs {action} on {shape:?}, not granted"
                        ));
                    }
                }
            }
            for (action, r, stmt) in &granted {
                if action.contains('*') {
                    problems.push(format!("{id}: wildcard action {action}"));
                    continue;
                }
                let Some(shapes) = needed.get(action.as_str()) else {
                    problems.push(format!(
                        "{mode:?} {id}: grants {action}, which its code never calls"
                    ));
                    continue;
                };
                if r == "*" && !star.contains(action.as_str()) {
                    problems.push(format!(
                        "{id}: {action} on \"*\": it supports resource-level permissions (or add it to STAR_ONLY, \
                         with the reason)"
                    ));
                } else if r != "*"
                    && !shapes
                        .iter()
                        .any(|s| *s != Resource::Any && r.contains(s.marker()))
                {
                    problems.push(format!(
                        "{id}: {action} on {r}, not a resource shape it needs ({shapes:?})"
                    ));
                }
                if action == "cloudwatch:PutMetricData" && stmt.get("Condition").is_none() {
                    problems.push(format!(
                        "{id}: PutMetricData without its namespace condition"
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The KMS grant for an encrypted cross-region replica only through RDS in the plan's regions, only for AWS
/// resources, only on keys of those regions; ModifyDBInstance only on the plan's two instances.
#[test]
fn what_can_be_narrowed_is_narrowed() {
    let t = template();
    let holds = |c: &str| c == "IsRdsReplica" || c == "IsHealthCheckDns";
    let stmts = statements(
        &t["Resources"]["PromoteDbFunction"]["Properties"]["Policies"],
        &holds,
    );
    let with = |action: &str| -> Vec<&Value> {
        stmts
            .iter()
            .filter(|s| list(&s["Action"]).iter().any(|a| a == action))
            .collect()
    };
    for action in ["kms:CreateGrant", "kms:DescribeKey"] {
        for s in with(action) {
            let via = s["Condition"]["StringEquals"]["kms:ViaService"].to_string();
            assert!(
                via.contains("rds.${PrimaryRegion}") && via.contains("rds.${DrRegion}"),
                "{action}: {s}"
            );
            for r in list(&s["Resource"]) {
                let r = flat(&r);
                assert!(
                    r.contains(":kms:${") && r.contains(":${AWS::AccountId}:key/"),
                    "{action}: {r}"
                );
            }
            if action == "kms:CreateGrant" {
                assert_eq!(
                    s["Condition"]["Bool"]["kms:GrantIsForAWSResource"], "true",
                    "{s}"
                );
            }
        }
        assert!(!with(action).is_empty(), "{action} granted");
    }
    for s in with("rds:ModifyDBInstance") {
        let rs: Vec<String> = list(&s["Resource"]).iter().map(flat).collect();
        assert_eq!(
            rs,
            [
                "arn:${AWS::Partition}:rds:${PrimaryRegion}:${AWS::AccountId}:db:${PrimaryDbInstance}",
                "arn:${AWS::Partition}:rds:${DrRegion}:${AWS::AccountId}:db:${DrDbInstance}",
            ],
            "ModifyDBInstance (the rename) on the plan's instances only"
        );
    }
    for s in with("rds:AddTagsToResource") {
        assert_eq!(
            s["Condition"]["ForAllValues:StringLike"]["aws:TagKeys"],
            serde_json::json!(["pilotlight:*"]),
            "tags: pilotlight's own keys only: {s}"
        );
    }
}

/// The state machine role: lambda:InvokeFunction on exactly the functions the generated ASL calls (also through
/// lambda:invoke.waitForTaskToken), dynamodb:DeleteItem on the lock table its final states use, the log-delivery
/// actions, nothing else.
#[test]
fn the_state_machine_role_grants_what_the_asl_calls() {
    let t = template();
    let sm = &t["Resources"]["FailoverStateMachine"]["Properties"];
    let asl: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(sm["DefinitionUri"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let subs = sm["DefinitionSubstitutions"].as_object().unwrap();
    let mut invoked = BTreeSet::new();
    let mut services = BTreeSet::new();
    fn walk(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
        match v {
            Value::Object(o) => {
                if o.get("Type").and_then(Value::as_str) == Some("Task") {
                    f(o);
                }
                o.values().for_each(|x| walk(x, f));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
            _ => {}
        }
    }
    let sub_name = |s: &str| s.trim_start_matches("${").trim_end_matches('}').to_string();
    walk(&asl, &mut |task| {
        let resource = task["Resource"].as_str().unwrap();
        if resource.starts_with("${") {
            invoked.insert(sub_name(resource));
        } else if resource.starts_with("arn:aws:states:::lambda:invoke") {
            invoked.insert(sub_name(
                task["Parameters"]["FunctionName"].as_str().unwrap(),
            ));
        } else if resource == "arn:aws:states:::dynamodb:deleteItem" {
            let table = task["Parameters"]["TableName"].as_str().unwrap();
            services.insert(("dynamodb:DeleteItem".to_string(), sub_name(table)));
        } else {
            panic!("ASL task resource {resource}: add what it needs to this test and the role");
        }
    });
    // ${XFunctionArn} -> GetAtt X.Arn -> the function X.
    let function_of = |sub: &str| -> String {
        let v = &subs[sub];
        flat(v)
            .trim_start_matches("GetAtt:")
            .trim_end_matches(".Arn")
            .to_string()
    };
    let want_invoke: BTreeSet<String> = invoked.iter().map(|s| function_of(s)).collect();
    let mut got_invoke = BTreeSet::new();
    let mut got_other = BTreeSet::new();
    for p in list(&sm["Policies"]) {
        if let Some(l) = p.get("LambdaInvokePolicy") {
            got_invoke.insert(
                flat(&l["FunctionName"])
                    .trim_start_matches("Ref:")
                    .to_string(),
            );
        } else if p.get("Statement").is_some() {
            for (a, r, _) in grants(&statements(&Value::Array(vec![p.clone()]), &|_| true)) {
                got_other.insert((a, r));
            }
        } else {
            panic!("state machine policy {p}: not checked here");
        }
    }
    assert_eq!(
        got_invoke, want_invoke,
        "lambda:InvokeFunction vs the functions the ASL calls"
    );
    let logs = [
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ];
    let mut want_other: BTreeSet<(String, String)> = logs
        .iter()
        .map(|a| (a.to_string(), "*".to_string()))
        .collect();
    for (action, table_sub) in services {
        want_other.insert((action, flat(&subs[&table_sub])));
    }
    assert_eq!(
        got_other, want_other,
        "the state machine's other permissions"
    );
}

#[test]
fn the_docs_permissions_section_is_the_generated_table() {
    let doc = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let table = markdown();
    assert!(
        doc.contains(&table),
        "docs/security.md \"Permissions\" differs from the declared permissions: replace its table with the output \
         of `cargo run -- permissions`"
    );
}
