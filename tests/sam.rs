//! The deploy path as README's "Deploying for real" runs it, checked without building or Docker:
//! - `sam build`: every function's `Metadata.BuildProperties.Binary` resolves the way cargo-lambda resolves it
//!   (`cargo lambda build --bin <Binary>` run in the function's CodeUri: a bin of exactly one package cargo
//!   selects there, read from `cargo metadata`).
//! - `sam local invoke <Function> --env-vars sam-local/env.json`: the file covers every function and every variable
//!   the template declares (and nothing else), checked through SAM CLI's own env-var merge
//!   (scripts/sam_local_env.py), and it is a valid plan pointing at the emulators.
//!
//! Both read template.yaml, so a function or variable added there is covered without editing this file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use pilotlight::FailoverPlan;
use pilotlight::plan::parse_env_file;
use serde_json::Value;

const ENV_FILE: &str = "sam-local/env.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a helper with a venv's Python from .tools; its stdout as JSON.
fn python_json(venv: &str, args: &[&Path]) -> Value {
    let python = root().join(".tools").join(venv).join("bin/python");
    let out = Command::new(&python)
        .args(args)
        .current_dir(root())
        // SAM local reads credentials and region like the CLI; keep the developer's profile out of it.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "ap-northeast-1")
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/install-tools.sh {venv} installs it)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// template.yaml as JSON (short-form tags in their long form).
fn template() -> Value {
    python_json(
        "moto",
        &[
            &root().join("scripts/template_json.py"),
            &root().join("template.yaml"),
        ],
    )
}

fn functions(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

// ---- sam build -------------------------------------------------------------------------------------------

/// `cargo metadata --no-deps` run where cargo-lambda runs cargo: the function's CodeUri.
fn cargo_metadata(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What `cargo build --bin <binary>` resolves to in the directory `metadata` was read from: the one package among
/// those cargo selects without `-p` (`workspace_default_members`: default-members at the workspace root, the
/// member itself in a member's directory) that has a bin target of that name. Errors say what cargo would.
fn package_building(metadata: &Value, binary: &str) -> Result<String, String> {
    let selected: BTreeSet<&str> = metadata["workspace_default_members"]
        .as_array()
        .ok_or("cargo metadata has no workspace_default_members (cargo >= 1.71 reports them)")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let owners: Vec<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| selected.contains(p["id"].as_str().unwrap_or_default()))
        .filter(|p| {
            p["targets"].as_array().unwrap().iter().any(|t| {
                t["name"] == binary && t["kind"].as_array().unwrap().iter().any(|k| k == "bin")
            })
        })
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    match owners.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no bin target named `{binary}` in default-run packages {selected:?}"
        )),
        many => Err(format!("bin `{binary}` is in several packages: {many:?}")),
    }
}

#[test]
fn every_function_binary_resolves_the_way_cargo_lambda_resolves_it() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    let fns = functions(&t);
    assert!(fns.len() >= 7, "{:?}", fns.keys());
    let mut binaries = BTreeMap::new();
    let mut metadata: BTreeMap<PathBuf, Value> = BTreeMap::new();
    for (name, f) in &fns {
        let meta = &f["Metadata"];
        assert_eq!(
            meta["BuildMethod"], "rust-cargolambda",
            "{name}: Metadata.BuildMethod (sam build builds it with cargo-lambda)"
        );
        let binary = meta["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no Metadata.BuildProperties.Binary"));
        let code_uri = f["Properties"]["CodeUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: CodeUri must be a local directory for sam build"));
        let dir: PathBuf = root().join(code_uri);
        assert!(
            dir.join("Cargo.toml").is_file(),
            "{name}: CodeUri {code_uri} has no Cargo.toml (SAM's manifest for rust-cargolambda)"
        );
        // The bootstrap that Lambda's provided runtime starts, for the architecture cargo-lambda builds.
        let prop = |k: &str| f["Properties"].get(k).unwrap_or(&globals[k]).clone();
        assert!(
            prop("Runtime")
                .as_str()
                .is_some_and(|r| r.starts_with("provided.")),
            "{name}: Runtime {} (cargo-lambda builds for the provided runtimes)",
            prop("Runtime")
        );
        assert_eq!(prop("Handler"), "bootstrap", "{name}: Handler");
        assert_eq!(
            prop("Architectures"),
            serde_json::json!(["arm64"]),
            "{name}: scripts/sam-build.sh reports arm64 binaries"
        );
        let metadata = metadata
            .entry(dir.clone())
            .or_insert_with(|| cargo_metadata(&dir));
        let package = package_building(metadata, binary).unwrap_or_else(|e| {
            panic!("{name}: `cargo lambda build --bin {binary}` in {code_uri}: {e}")
        });
        // sam build copies target/lambda/<Binary>/bootstrap: two functions must not share a name of two crates.
        if let Some((other, other_package)) =
            binaries.insert(binary.to_string(), (name, package.clone()))
        {
            assert_eq!(
                other_package, package,
                "{name} and {other}: Binary {binary} names two packages"
            );
        }
    }
}

/// The check itself: main's layout before default-members (at the root cargo selects the root package alone)
/// fails with cargo's own words, and a bin defined twice is refused.
#[test]
fn binary_resolution_refuses_what_cargo_refuses() {
    let mut metadata = cargo_metadata(root());
    let root_package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pilotlight")
        .unwrap()["id"]
        .clone();
    assert_eq!(package_building(&metadata, "detect").unwrap(), "detect");
    assert!(package_building(&metadata, "no-such-bin").is_err());
    let all = metadata["workspace_default_members"].clone();
    metadata["workspace_default_members"] = serde_json::json!([root_package]);
    let err = package_building(&metadata, "detect").unwrap_err();
    assert!(
        err.contains("no bin target named `detect` in default-run packages"),
        "{err}"
    );
    metadata["workspace_default_members"] = all;
    let detect = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "detect")
        .unwrap()
        .clone();
    let mut twin = detect.clone();
    twin["name"] = "detect-twin".into();
    metadata["packages"].as_array_mut().unwrap().push(twin);
    metadata["workspace_default_members"]
        .as_array_mut()
        .unwrap()
        .push(detect["id"].clone());
    assert!(
        package_building(&metadata, "detect")
            .unwrap_err()
            .contains("several packages")
    );
}

// ---- sam local ------------------------------------------------------------------------------------------

/// The variables the template declares for each function: Globals' merged with its own (SAM's rule).
fn declared(t: &Value) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let globals = keys(&t["Globals"]["Function"]["Environment"]["Variables"]);
    functions(t)
        .into_iter()
        .map(|(name, f)| {
            let own = keys(&f["Properties"]["Environment"]["Variables"]);
            (name, (globals.clone(), own))
        })
        .collect()
}

fn diff(what: &str, want: &BTreeSet<String>, have: &BTreeSet<String>) -> Vec<String> {
    let missing: Vec<_> = want.difference(have).collect();
    let stale: Vec<_> = have.difference(want).collect();
    let mut out = vec![];
    if !missing.is_empty() {
        out.push(format!("{what}: missing {missing:?}"));
    }
    if !stale.is_empty() {
        out.push(format!("{what}: not in template.yaml (stale) {stale:?}"));
    }
    out
}

#[test]
fn sam_local_env_file_covers_every_function_and_variable_of_the_template() {
    let t = template();
    let text = std::fs::read_to_string(root().join(ENV_FILE)).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{ENV_FILE}: {e}"));
    let decl = declared(&t);
    let globals = decl.values().next().unwrap().0.clone();

    // Shape: "Parameters" = the Globals variables (SAM local applies it to every function), one block per function
    // with exactly its own variables; every value a string (what Lambda's environment holds).
    let mut problems = vec![];
    let blocks: BTreeSet<String> = keys(&file);
    let mut want_blocks: BTreeSet<String> = decl.keys().cloned().collect();
    want_blocks.insert("Parameters".into());
    problems.extend(diff(
        &format!("{ENV_FILE} blocks (functions)"),
        &want_blocks,
        &blocks,
    ));
    problems.extend(diff(
        &format!("{ENV_FILE} \"Parameters\" vs Globals.Function.Environment"),
        &globals,
        &keys(&file["Parameters"]),
    ));
    for (name, (_, own)) in &decl {
        problems.extend(diff(
            &format!("{ENV_FILE} \"{name}\" vs its own Environment"),
            own,
            &keys(&file[name]),
        ));
    }
    for (block, vars) in file.as_object().unwrap() {
        for (k, v) in vars.as_object().unwrap() {
            if !v.is_string() {
                problems.push(format!("{ENV_FILE} {block}.{k}: {v} is not a string"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // What the containers get, by SAM CLI's own merge; and what SAM local leaves without the file.
    let with_file = python_json(
        "sam",
        &[
            &root().join("scripts/sam_local_env.py"),
            &root().join("template.yaml"),
            &root().join(ENV_FILE),
        ],
    );
    let without = python_json(
        "sam",
        &[
            &root().join("scripts/sam_local_env.py"),
            &root().join("template.yaml"),
        ],
    );
    assert_eq!(
        keys(&with_file),
        decl.keys().cloned().collect(),
        "the functions SAM local sees"
    );
    let resources = keys(&t["Resources"]);
    let reference =
        parse_env_file(&std::fs::read_to_string(root().join("plans/reference.env")).unwrap())
            .unwrap();
    let mut logical_ids_supplied = BTreeSet::new();
    for (name, (globals, own)) in &decl {
        let all: BTreeSet<String> = globals.union(own).cloned().collect();
        let sam_declared: BTreeSet<String> = with_file[name]["declared"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            sam_declared, all,
            "{name}: the variables SAM local keeps are the template's (SAM sets only declared ones)"
        );
        let env = &with_file[name]["environment"];
        let mut vars = HashMap::new();
        for var in &all {
            let want = file[name]
                .get(var)
                .or_else(|| file["Parameters"].get(var))
                .unwrap();
            assert_eq!(
                &env[var], want,
                "{name}: {var} in the container is not {ENV_FILE}'s value"
            );
            let value = want.as_str().unwrap();
            let left = without[name]["environment"][var].as_str().unwrap_or("");
            if resources.contains(left) {
                // SAM local's value for a !Ref/!GetAtt of a resource is its logical id: the file supplies it.
                assert!(
                    !resources.contains(value) && !value.is_empty(),
                    "{name}: {var} = {value:?}: supply the deployed value, not a logical id"
                );
                logical_ids_supplied.insert(var.clone());
            }
            if var.starts_with("AWS_ENDPOINT_URL") {
                assert!(
                    value.starts_with("http://host.docker.internal:"),
                    "{name}: {var} = {value:?} (the emulators on the Docker host)"
                );
            }
            if let Some(r) = reference.get(var) {
                assert_eq!(
                    value, r,
                    "{name}: {var}: {ENV_FILE} is the reference plan (plans/reference.env)"
                );
            }
            vars.insert(var.clone(), value.to_string());
        }
        // The function's plan at cold start: valid, and ARNs in the plan's DR region and account.
        let plan = FailoverPlan::from_map(&vars)
            .unwrap_or_else(|e| panic!("{name}: {ENV_FILE} is not a valid plan: {e}"));
        for (var, value) in &vars {
            if value.starts_with("arn:aws:") && !value.contains(":globalaccelerator::") {
                assert!(
                    value.contains(&format!(
                        ":{}:{}:",
                        plan.dr.region, vars["PILOTLIGHT_ACCOUNT_ID"]
                    )),
                    "{name}: {var} = {value}: not in the DR region / plan account"
                );
            }
        }
    }
    // The topic (Globals), the state machine and the lock table (detect) at least: what SAM cannot resolve.
    for var in [
        "PILOTLIGHT_SNS_TOPIC_ARN",
        "PILOTLIGHT_STATE_MACHINE_ARN",
        "PILOTLIGHT_LOCK_TABLE",
    ] {
        assert!(
            logical_ids_supplied.contains(var),
            "{var}: SAM local no longer leaves a logical id? {logical_ids_supplied:?}"
        );
    }
}

// ---- sam deploy -----------------------------------------------------------------------------------------

/// The parameter a function's environment value comes from (`!Ref P`, `!Join [",", !Ref P]`, the set branch of
/// `!If`), as scripts/drill/contract.py reads it.
fn parameter_in(value: &Value, params: &BTreeSet<String>) -> Option<String> {
    match value {
        Value::Object(o) if o.contains_key("Ref") => o["Ref"]
            .as_str()
            .filter(|p| params.contains(*p))
            .map(str::to_string),
        Value::Object(o) if o.contains_key("Fn::If") => parameter_in(&o["Fn::If"][1], params),
        Value::Object(o) => o.values().find_map(|v| parameter_in(v, params)),
        Value::Array(a) => a.iter().find_map(|v| parameter_in(v, params)),
        _ => None,
    }
}

/// samconfig.toml's `reference` environment, read by SAM CLI's own code: every parameter without a default is
/// given, every value passes its parameter's AllowedValues/AllowedPattern, and the values are the reference plan's.
#[test]
fn samconfig_reference_deploys_the_reference_plan() {
    let t = template();
    let path =
        std::env::temp_dir().join(format!("pilotlight-template-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let cfg = python_json(
        "sam",
        &[
            &root().join("scripts/samconfig_overrides.py"),
            &path,
            Path::new("reference"),
        ],
    );
    std::fs::remove_file(&path).ok();
    assert_eq!(cfg["problems"], serde_json::json!([]), "{cfg:#}");
    let reference =
        parse_env_file(&std::fs::read_to_string(root().join("plans/reference.env")).unwrap())
            .unwrap();
    assert_eq!(
        cfg["deploy"]["region"], reference["PILOTLIGHT_DR_REGION"],
        "deploy in the DR region"
    );
    let params = keys(&t["Parameters"]);
    let variable_of: HashMap<String, String> = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(var, v)| parameter_in(v, &params).map(|p| (p, var.clone())))
        .collect();
    let overrides = cfg["overrides"].as_object().unwrap();
    assert!(overrides.len() >= 10, "{overrides:?}");
    for (param, value) in overrides {
        if let Some(r) = variable_of.get(param).and_then(|var| reference.get(var)) {
            assert_eq!(
                value, r,
                "{param} vs plans/reference.env {}",
                variable_of[param]
            );
        }
    }
}
