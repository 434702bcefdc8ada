//! Rehearsals (template `RehearsalSchedule`, docs/contract.md "Rehearsals"): the rule is absent unless a schedule is
//! set; it sends detect exactly the manual dry-run failover of events/detect-scheduled-rehearsal.json; detect
//! starts a `dryrun-` execution that never waits for approval, even where the plan requires it; and the report it
//! ends with is mailed with a subject saying it is a dry run.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use pilotlight::plan::{Direction, FailoverPlan};
use pilotlight::steps::detect::decision::{ActiveSide, Situation, Verdict, decide_manual};
use pilotlight::steps::notify::message::compose;
use pilotlight::steps::notify::report::StepHistory;
use pilotlight::steps::notify::{NotifyInput, NotifyKind};
use pilotlight::trigger::{Trigger, parse_trigger};
use serde_json::{Value, json};

fn template() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".tools/moto/bin/python");
    let out = Command::new(&python)
        .arg(root.join("scripts/template_json.py"))
        .arg(root.join("template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-tools.sh moto)", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_rehearsal_rule_is_off_by_default_and_sends_the_sample_command() {
    let t = template();
    let param = &t["Parameters"]["RehearsalSchedule"];
    assert_eq!(param["Default"], "", "off by default");
    assert_eq!(
        t["Conditions"]["HasRehearsalSchedule"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "RehearsalSchedule"}, ""]}]})
    );
    for name in ["RehearsalRule", "RehearsalInvokePermission"] {
        assert_eq!(
            t["Resources"][name]["Condition"], "HasRehearsalSchedule",
            "{name} exists only with a schedule"
        );
    }
    let rule = &t["Resources"]["RehearsalRule"]["Properties"];
    assert_eq!(
        rule["ScheduleExpression"],
        json!({"Ref": "RehearsalSchedule"})
    );
    let target = &rule["Targets"][0];
    assert_eq!(
        target["Arn"],
        json!({"Fn::GetAtt": ["DetectFunction", "Arn"]})
    );
    // The Input with the default mode substituted is the sample event.
    let mode = t["Parameters"]["RehearsalMode"]["Default"]
        .as_str()
        .unwrap();
    let input = target["Input"]["Fn::Sub"]
        .as_str()
        .expect("Input is a !Sub of RehearsalMode")
        .replace("${RehearsalMode}", mode);
    let input: Value = serde_json::from_str(&input).expect("the rule's Input is JSON");
    assert_eq!(input, common::event("detect-scheduled-rehearsal.json"));
}

#[test]
fn a_rehearsal_is_a_dry_run_that_never_waits_and_its_report_says_so() {
    let event = common::event("detect-scheduled-rehearsal.json");
    let Trigger::Manual(cmd) = parse_trigger(&event).unwrap() else {
        panic!("a manual command")
    };
    assert!(cmd.dry_run);
    // A plan that requires approval: the rehearsal still runs through (nobody is there to answer).
    let plan = FailoverPlan::from_map(&common::plan_vars(&[(
        "PILOTLIGHT_APPROVAL",
        "required".into(),
    )]))
    .unwrap();
    let s = Situation {
        alarms: vec![],
        unknown_alarm_regions: vec![],
        executions: vec![],
        executions_unknown: None,
        active: ActiveSide::Primary,
        now: Utc::now(),
    };
    let Verdict::Start { name, input, .. } = decide_manual(&plan, &cmd, Direction::Failover, &s)
    else {
        panic!("a rehearsal starts an execution")
    };
    assert!(name.starts_with("dryrun-failover-"), "{name}");
    assert!(input.dry_run && !input.approval.required, "{input:?}");

    // The execution's final report, as the state machine hands it to notify (`dry_run.$: $.dry_run`).
    let state = serde_json::to_value(&input).unwrap();
    let notify = NotifyInput {
        kind: NotifyKind::Report,
        milestone: Some("report".into()),
        execution: format!(
            "arn:aws:states:ap-northeast-1:123456789012:execution:pilotlight-failover:{name}"
        ),
        direction: Direction::Failover,
        dry_run: input.dry_run,
        detail: state,
    };
    let notice = compose(&plan, &notify, &StepHistory::NotRead, Utc::now());
    assert!(
        notice.subject.starts_with("[DRY RUN] pilotlight: failover"),
        "{}",
        notice.subject
    );
    assert!(notice.subject.contains("report"), "{}", notice.subject);
    assert_eq!(notice.body["dry_run"], true);
    assert_eq!(
        notice.body["trigger"]["reason"], event["reason"],
        "the report says why it ran"
    );
}
