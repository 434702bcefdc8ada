//! Deadlines fit inside the function timeouts: computed from the plan (operation timeouts, detect's observe
//! deadline) and template.yaml (each function's Timeout), with a margin for the runtime to report the error.
//! A black-holed endpoint must cost a step a classified, retried error, never a Lambda timeout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pilotlight::FailoverPlan;

/// What the runtime needs after the last AWS call gave up: log, post the error, exit.
const MARGIN: Duration = Duration::from_secs(2);

fn template() -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".tools/moto/bin/python");
    let out = Command::new(&python)
        .arg(root.join("scripts/template_json.py"))
        .arg(root.join("template.yaml"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/install-tools.sh moto installs it)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_deadline_fits_inside_its_function_timeout() {
    let t = template();
    let default = t["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("Globals.Function.Timeout");
    let functions: Vec<(String, u64)> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| {
            (
                name.clone(),
                r["Properties"]["Timeout"].as_u64().unwrap_or(default),
            )
        })
        .collect();
    assert!(functions.len() >= 6, "{functions:?}");
    for plan_file in ["plans/reference.env", "plans/drill.env"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(plan_file);
        let plan = match FailoverPlan::from_file(&path) {
            Ok(p) => p,
            // The drill's plan is completed at run time; its timing keys are what matter here.
            Err(_) if plan_file.ends_with("drill.env") => continue,
            Err(e) => panic!("{plan_file}: {e}"),
        };
        let worst = plan.worst_case();
        for (name, timeout) in &functions {
            let limit = Duration::from_secs(*timeout) - MARGIN;
            let need = if name == "DetectFunction" {
                worst.detect
            } else {
                worst.longest_call
            };
            assert!(
                need <= limit,
                "{plan_file}: {name} may wait {need:?} on AWS but has {timeout} s (minus {MARGIN:?} to report): \
                 lower the plan's *_OPERATION_TIMEOUT_MS / PILOTLIGHT_OBSERVE_DEADLINE_MS or raise Timeout"
            );
        }
    }
}

/// The check itself fails when a plan asks for more than a function has.
#[test]
fn a_plan_that_would_outlast_detect_is_caught() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/reference.env"))
            .unwrap();
    let mut vars = pilotlight::plan::parse_env_file(&text).unwrap();
    vars.insert("PILOTLIGHT_OBSERVE_DEADLINE_MS".into(), "15000".into());
    vars.insert("PILOTLIGHT_DR_OPERATION_TIMEOUT_MS".into(), "20000".into());
    let plan = FailoverPlan::from_map(&vars).unwrap();
    assert!(
        plan.worst_case().detect > Duration::from_secs(28),
        "{:?}",
        plan.worst_case()
    );
}
