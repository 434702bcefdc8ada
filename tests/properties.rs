//! Property tests (proptest) for every parser `detect` and the functions run on input they do not control:
//! `parse_trigger` (alarm events in three shapes and manual commands), `Payload::parse` (duplicate keys) and the plan
//! loader (`FailoverPlan::from_map`, `parse_env_file`). Pure: no emulator, no AWS call.
//!
//! 256 cases per property unless `PROPTEST_CASES` says otherwise (e.g. `PROPTEST_CASES=20000 cargo test --test
//! properties` for a longer search). `cargo fuzz` targets for the same parsers live in `fuzz/`.

use std::collections::HashMap;

use pilotlight::ErrorKind;
use pilotlight::plan::{
    FailoverPlan, Mode, arn_account, arn_region, check_alarm_name, parse_env_file,
};
use pilotlight::runtime::Payload;
use pilotlight::trigger::{
    AlarmShape, AlarmTransition, CommandName, EVENTBRIDGE_ALARM_DETAIL_TYPE, ManualCommand,
    REASON_MAX_CHARS, Trigger, parse_trigger,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

/// 256 cases per property in the normal run; `PROPTEST_CASES` wins when set.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    // A failure prints its minimal input; nothing is written into the source tree.
    c.failure_persistence = None;
    c
}

fn event(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

const SAMPLES: &[&str] = &[
    "detect-alarm-lambda-action.json",
    "detect-alarm-sns.json",
    "detect-alarm-eventbridge.json",
    "detect-alarm-ok.json",
    "detect-manual-failover.json",
    "detect-manual-failover-dry-run.json",
    "detect-manual-failback.json",
    "detect-manual-status.json",
    "detect-manual-approve.json",
    "detect-manual-reject.json",
];

// ---- generators ----------------------------------------------------------------------------------------------

/// Keys the parsers dispatch on or read, so arbitrary objects often reach past the first check.
const KEYS: &[&str] = &[
    "command",
    "dry_run",
    "mode",
    "reason",
    "force",
    "approval",
    "token",
    "detail-type",
    "detail",
    "source",
    "account",
    "region",
    "resources",
    "time",
    "Records",
    "EventSource",
    "Sns",
    "Message",
    "TopicArn",
    "alarmData",
    "alarmName",
    "alarmArn",
    "accountId",
    "state",
    "value",
    "timestamp",
    "configuration",
];

/// Text that tends to break parsers: control characters, escapes, bidi overrides, astral-plane characters, the
/// values the parsers compare against, and arbitrary unicode.
fn weird_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,24}",
        prop::sample::select(vec![
            "",
            " ",
            "\u{0}",
            "\n",
            "\r\n",
            "\t",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "\u{202e}",
            "\u{feff}",
            "\u{10ffff}",
            "\u{1f4a5}",
            "\\u0000",
            "\"",
            "ALARM",
            "OK",
            "INSUFFICIENT_DATA",
            "alarm",
            "aws.cloudwatch",
            "aws:sns",
            "failover",
            "failback",
            "approve",
            "graceful",
            "123456789012",
            "999999999999",
            "ap-northeast-1",
            "us-east-1",
            "web-primary-5xx",
            EVENTBRIDGE_ALARM_DETAIL_TYPE,
            "arn:aws:cloudwatch:ap-northeast-1:123456789012:alarm:web-primary-5xx",
            "2026-11-29T10:15:00.490+0000",
            "+275760-09-13T00:00:00Z",
        ])
        .prop_map(str::to_string),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => weird_text(),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        weird_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---- structured mutations of the sample events ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Remove,
    Replace(Value),
    /// string -> number, number -> string, object -> array, ...
    Retype,
    /// Append (or, for a non-string, replace by) odd text.
    Text(String),
    /// Rename the member: upper-cased, or with odd text added.
    RenameKey(String),
    Huge(u8),
    /// Wrap in this many arrays (true) or objects (false).
    Nest(usize, bool),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Remove),
        2 => arb_json().prop_map(Op::Replace),
        2 => Just(Op::Retype),
        3 => weird_text().prop_map(Op::Text),
        1 => weird_text().prop_map(Op::RenameKey),
        1 => (0u8..6).prop_map(Op::Huge),
        1 => (1usize..100, any::<bool>()).prop_map(|(d, a)| Op::Nest(d, a)),
    ]
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Seg::Idx(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Idx(i) => v.get_mut(*i),
    })
}

fn huge(k: u8) -> Value {
    match k {
        0 => json!(u64::MAX),
        1 => json!(i64::MIN),
        2 => json!(1.0e308),
        3 => json!(-1.0e308),
        4 => json!("x".repeat(300 * 1024)), // over MAX_EVENT_BYTES
        _ => json!("\u{1f4a5}".repeat(4096)),
    }
}

fn retype(v: &Value) -> Value {
    match v {
        Value::Null => json!(false),
        Value::Bool(b) => json!(b.to_string()),
        Value::Number(n) => json!(n.to_string()),
        Value::String(s) => json!(s.chars().count()),
        Value::Array(items) => Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
        ),
        Value::Object(m) => Value::Array(m.values().cloned().collect()),
    }
}

fn apply(root: &mut Value, path: &[Seg], op: &Op) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let Some(parent) = get_mut(root, parent_path) else {
        return;
    };
    match (op, last, parent) {
        (Op::Remove, Seg::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (Op::Remove, Seg::Idx(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
        }
        (Op::RenameKey(extra), Seg::Key(k), Value::Object(m)) => {
            if let Some(v) = m.remove(k) {
                let renamed = if extra.is_empty() {
                    k.to_uppercase()
                } else {
                    format!("{k}{extra}")
                };
                m.insert(renamed, v);
            }
        }
        (_, seg, parent) => {
            let target = match seg {
                Seg::Key(k) => parent.get_mut(k.as_str()),
                Seg::Idx(i) => parent.get_mut(*i),
            };
            let Some(target) = target else { return };
            *target = match op {
                Op::Replace(v) => v.clone(),
                Op::Retype => retype(target),
                Op::Text(t) => match target {
                    Value::String(s) => json!(format!("{s}{t}")),
                    _ => json!(t),
                },
                Op::Huge(k) => huge(*k),
                Op::Nest(depth, array) => (0..*depth).fold(target.take(), |v, _| {
                    if *array {
                        json!([v])
                    } else {
                        json!({ "n": v })
                    }
                }),
                Op::Remove | Op::RenameKey(_) => return,
            };
        }
    }
}

/// A sample event with `ops` applied, each at the path `selector % paths`. The SNS message (a JSON string inside
/// the event) is mutated as JSON too: decoded first, encoded again afterwards when it is still an object.
fn mutate(sample: &Value, ops: &[(usize, Op)]) -> Value {
    let mut v = sample.clone();
    let message = ["Records", "0", "Sns", "Message"];
    let decoded = v
        .pointer(&format!("/{}", message.join("/")))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    if let Some(d) = decoded {
        v["Records"][0]["Sns"]["Message"] = d;
    }
    for (selector, op) in ops {
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        apply(&mut v, &all[selector % all.len()], op);
    }
    if let Some(m) = v.pointer_mut("/Records/0/Sns/Message")
        && m.is_object()
    {
        *m = json!(m.to_string());
    }
    v
}

fn arb_mutated_sample() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(SAMPLES),
        prop::collection::vec((any::<usize>(), arb_op()), 1..4),
    )
        .prop_map(|(name, ops)| mutate(&event(name), &ops))
}

// ---- what an accepted trigger must satisfy ---------------------------------------------------------------------

/// The event of `t.shape` carrying exactly `t`'s fields, built on the sample of that shape.
fn rebuild(t: &AlarmTransition) -> Value {
    let time = serde_json::to_value(t.state_change_time).unwrap();
    let state = json!({"value": t.state.as_str(), "reason": "rebuilt", "timestamp": time});
    match t.shape {
        AlarmShape::LambdaAction => {
            let mut e = event("detect-alarm-lambda-action.json");
            let o = e.as_object_mut().unwrap();
            o.insert("accountId".into(), json!(t.account_id));
            o.insert("region".into(), json!(t.region));
            o.insert("time".into(), time);
            match &t.alarm_arn {
                Some(arn) => o.insert("alarmArn".into(), json!(arn)),
                None => o.remove("alarmArn"),
            };
            e["alarmData"]["alarmName"] = json!(t.alarm_name);
            e["alarmData"]["state"] = state;
            e
        }
        AlarmShape::EventBridge => {
            let mut e = event("detect-alarm-eventbridge.json");
            e["account"] = json!(t.account_id);
            e["region"] = json!(t.region);
            e["resources"] = json!(t.alarm_arn.iter().collect::<Vec<_>>());
            e["detail"]["alarmName"] = json!(t.alarm_name);
            e["detail"]["state"] = state;
            e
        }
        AlarmShape::Sns => {
            let mut e = event("detect-alarm-sns.json");
            let mut msg: Value =
                serde_json::from_str(e["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
            msg["AlarmName"] = json!(t.alarm_name);
            msg["AWSAccountId"] = json!(t.account_id);
            msg["AlarmArn"] = json!(
                t.alarm_arn
                    .as_deref()
                    .expect("an SNS alarm always has an ARN")
            );
            msg["NewStateValue"] = json!(t.state.as_str());
            msg["StateChangeTime"] = json!(
                t.state_change_time
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            );
            e["Records"][0]["Sns"]["Message"] = json!(msg.to_string());
            e
        }
    }
}

/// Sets the alarm ARN wherever `t.shape` carries it.
fn with_arn(t: &AlarmTransition, arn: &str) -> Value {
    let mut e = rebuild(t);
    match t.shape {
        AlarmShape::LambdaAction => e["alarmArn"] = json!(arn),
        AlarmShape::EventBridge => e["resources"] = json!([arn]),
        AlarmShape::Sns => {
            let mut msg: Value =
                serde_json::from_str(e["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
            msg["AlarmArn"] = json!(arn);
            e["Records"][0]["Sns"]["Message"] = json!(msg.to_string());
        }
    }
    e
}

fn refused(e: &Value) -> Result<String, TestCaseError> {
    match parse_trigger(e) {
        Ok(t) => Err(TestCaseError::fail(format!("accepted {t:?} from {e}"))),
        Err(err) => {
            prop_assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err);
            Ok(err.message)
        }
    }
}

/// Whatever `parse_trigger` makes of `e`: no panic, a refusal is InvalidInput, and what it accepts obeys the
/// strict rules and round-trips.
fn check_trigger(e: &Value) -> Result<(), TestCaseError> {
    let t = match parse_trigger(e) {
        Err(err) => {
            prop_assert_eq!(err.kind, ErrorKind::InvalidInput, "{}", err);
            prop_assert!(!err.message.is_empty());
            return Ok(());
        }
        Ok(t) => t,
    };
    match t {
        Trigger::Alarm(t) => {
            prop_assert!(check_alarm_name(&t.alarm_name).is_ok(), "{:?}", t);
            prop_assert!(!t.alarm_name.trim().is_empty(), "{:?}", t);
            if let Some(arn) = &t.alarm_arn {
                prop_assert!(
                    arn.ends_with(&format!(":alarm:{}", t.alarm_name)),
                    "{:?}",
                    t
                );
                prop_assert_eq!(arn_account(arn), Some(t.account_id.as_str()));
                prop_assert_eq!(arn_region(arn), Some(t.region.as_str()));
            }
            // Round trip: the same fields, re-serialized into the same shape, parse to the same transition.
            let again = rebuild(&t);
            match parse_trigger(&again) {
                Ok(Trigger::Alarm(t2)) => prop_assert_eq!(&t2, &t, "rebuilt as {}", again),
                other => prop_assert!(false, "{:?} rebuilt as {} parsed as {:?}", t, again, other),
            }
            // An ARN that disagrees with the name, account or region beside it is refused.
            let (region, account) = (t.region.clone(), t.account_id.clone());
            let other_region = if region == "eu-west-1" {
                "eu-west-2"
            } else {
                "eu-west-1"
            };
            let other_account = if account == "999999999999" {
                "888888888888"
            } else {
                "999999999999"
            };
            let mut forged = vec![
                format!(
                    "arn:aws:cloudwatch:{region}:{account}:alarm:{}-other",
                    t.alarm_name
                ),
                format!(
                    "arn:aws:cloudwatch:{region}:{other_account}:alarm:{}",
                    t.alarm_name
                ),
            ];
            // An SNS notification has no region field of its own (the ARN's is the region), the others do.
            if t.shape != AlarmShape::Sns {
                forged.push(format!(
                    "arn:aws:cloudwatch:{other_region}:{account}:alarm:{}",
                    t.alarm_name
                ));
            }
            for arn in forged {
                refused(&with_arn(&t, &arn))?;
            }
        }
        Trigger::Manual(c) => {
            check_command_rules(&c)?;
            let value = serde_json::to_value(&c).unwrap();
            match parse_trigger(&value) {
                Ok(Trigger::Manual(c2)) => prop_assert_eq!(&c2, &c),
                other => prop_assert!(
                    false,
                    "{:?} serialized as {} parsed as {:?}",
                    c,
                    value,
                    other
                ),
            }
            // One unknown field makes the same command a refusal.
            let mut typo = value.clone();
            typo["dryrun"] = json!(true);
            prop_assert!(refused(&typo)?.contains("unknown field"));
        }
    }
    Ok(())
}

fn check_command_rules(c: &ManualCommand) -> Result<(), TestCaseError> {
    let answering = matches!(c.command, CommandName::Approve | CommandName::Reject);
    prop_assert_eq!(
        c.token.is_some() || c.execution.is_some(),
        answering,
        "{:?}",
        c
    );
    prop_assert!(!(c.token.is_some() && c.execution.is_some()), "{:?}", c);
    if answering {
        prop_assert!(
            !c.dry_run && c.force.is_none() && c.mode.is_none() && c.approval.is_none(),
            "{:?}",
            c
        );
    }
    if let Some(r) = &c.reason {
        prop_assert!(r.chars().count() <= REASON_MAX_CHARS);
        prop_assert!(
            !r.chars().any(|ch| ch.is_control() && ch != '\n'),
            "{:?}",
            c
        );
    }
    Ok(())
}

// ---- manual commands against an independent model --------------------------------------------------------------

/// A field of a generated command: absent, or one value from a pool of valid and invalid ones.
fn field(pool: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.6, prop::sample::select(pool))
}

fn arb_command_object() -> impl Strategy<Value = Map<String, Value>> {
    let token_pool = vec![
        json!("AQCEAAAAKgAAAAMAAAAAAAAAAfcGlsb3Rs"),
        json!(""),
        json!("   "),
        json!("x".repeat(2048)),
        json!("x".repeat(2049)),
        json!("\u{e9}".repeat(1025)), // 1025 characters, 2050 bytes
        json!("tok en"),
        json!("tok\nen"),
        json!("tok\u{0}en"),
        json!(42),
        json!(["tok"]),
        json!({"token": "tok"}),
        Value::Null,
    ];
    (
        field(
            [
                "failover",
                "failback",
                "status",
                "approve",
                "reject",
                "approve",
                "reject",
                "approve",
                "reject",
                "Failover",
                "FAILOVER",
                " failover",
                "explode",
                "",
            ]
            .map(Value::from)
            .into_iter()
            .chain([json!(1), Value::Null, json!(["failover"])])
            .collect(),
        ),
        field(vec![
            json!(true),
            json!(false),
            json!("true"),
            json!(1),
            Value::Null,
        ]),
        field(vec![
            json!("graceful"),
            json!("ungraceful"),
            json!("Graceful"),
            json!("fast"),
            Value::Null,
            json!(0),
        ]),
        field(vec![
            json!("drill"),
            json!("line one\nline two"),
            json!("bell\u{7}"),
            json!("tab\there"),
            json!("x".repeat(REASON_MAX_CHARS)),
            json!("x".repeat(REASON_MAX_CHARS + 1)),
            json!("\u{1f4a5}".repeat(REASON_MAX_CHARS)),
            Value::Null,
            json!(7),
        ]),
        field(vec![json!(true), json!(false), json!("yes"), Value::Null]),
        field(vec![json!(true), json!(false), Value::Null, json!("false")]),
        prop::option::weighted(0.8, prop::sample::select(token_pool)),
        prop::option::weighted(0.1, (arb_key(), arb_json())),
    )
        .prop_map(
            |(command, dry_run, mode, reason, force, approval, token, extra)| {
                let mut m = Map::new();
                for (k, v) in [
                    ("command", command),
                    ("dry_run", dry_run),
                    ("mode", mode),
                    ("reason", reason),
                    ("force", force),
                    ("approval", approval),
                    ("token", token),
                ] {
                    if let Some(v) = v {
                        m.insert(k.to_string(), v);
                    }
                }
                if let Some((k, v)) = extra {
                    m.insert(k, v);
                }
                m
            },
        )
}

const COMMAND_FIELDS: &[&str] = &[
    "command",
    "dry_run",
    "mode",
    "reason",
    "force",
    "approval",
    "token",
    "execution",
];

/// What a manual command must be, written down independently of trigger.rs: Some(command) when it is acceptable.
fn model(m: &Map<String, Value>) -> Option<ManualCommand> {
    if m.keys().any(|k| !COMMAND_FIELDS.contains(&k.as_str())) {
        return None;
    }
    let command = match m.get("command")?.as_str()? {
        "failover" => CommandName::Failover,
        "failback" => CommandName::Failback,
        "status" => CommandName::Status,
        "approve" => CommandName::Approve,
        "reject" => CommandName::Reject,
        _ => return None,
    };
    // A present bool field must be a bool; an Option field may be null.
    let boolean = |k: &str| match m.get(k) {
        None => Some(false),
        Some(v) => v.as_bool(),
    };
    let optional = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(v) => Some(Some(v)),
    };
    let dry_run = boolean("dry_run")?;
    // `force: true` is refused (named overrides replace it); `false` is accepted and means nothing.
    let force = match optional("force")? {
        None => None,
        Some(v) => match v.as_bool()? {
            true => return None,
            false => Some(false),
        },
    };
    let mode = match optional("mode")? {
        None => None,
        Some(v) => Some(match v.as_str()? {
            "graceful" => Mode::Graceful,
            "ungraceful" => Mode::Ungraceful,
            _ => return None,
        }),
    };
    let reason = match optional("reason")? {
        None => None,
        Some(v) => Some(v.as_str()?.to_string()),
    };
    let approval = match optional("approval")? {
        None => None,
        Some(v) => Some(v.as_bool()?),
    };
    let token = match optional("token")? {
        None => None,
        Some(v) => Some(v.as_str()?.to_string()),
    };
    let execution = match optional("execution")? {
        None => None,
        Some(v) => Some(v.as_str()?.to_string()),
    };
    if let Some(r) = &reason
        && (r.chars().count() > REASON_MAX_CHARS || r.chars().any(|c| c.is_control() && c != '\n'))
    {
        return None;
    }
    let answering = matches!(command, CommandName::Approve | CommandName::Reject);
    let bad = |t: &str| {
        t.is_empty() || t.len() > 2048 || t.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    match (&execution, &token) {
        (None, None) if answering => return None,
        (Some(_), Some(_)) => return None,
        (Some(_), _) | (_, Some(_)) if !answering => return None,
        (Some(t), None) | (None, Some(t)) if bad(t) => return None,
        _ => {}
    }
    if answering && (dry_run || force.is_some() || mode.is_some() || approval.is_some()) {
        return None;
    }
    Some(ManualCommand {
        command,
        dry_run,
        mode,
        reason,
        force,
        approval,
        token,
        execution,
        // The generated commands carry no overrides (their own parser is strict: `deny_unknown_fields`).
        overrides: Default::default(),
    })
}

// ---- Payload::parse against a reference ---------------------------------------------------------------------------

/// A JSON document whose objects may repeat a key (a serde_json::Value cannot hold that).
#[derive(Debug, Clone)]
enum Doc {
    Leaf(Value),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

fn arb_doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        weird_text().prop_map(Value::String),
    ]
    .prop_map(Doc::Leaf);
    // Few distinct keys, so repeats are common; some differ only in ways a sloppy comparison would miss.
    let key = prop::sample::select(vec![
        "a", "b", "dry_run", "dry_run ", "Dry_run", "\u{e9}", "e\u{301}", "\"", "",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Doc::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(Doc::Object),
        ]
    })
}

fn render(d: &Doc, out: &mut String, pad: bool) {
    let sp = if pad { " \n\t" } else { "" };
    match d {
        Doc::Leaf(v) => out.push_str(&v.to_string()),
        Doc::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(sp);
                render(item, out, pad);
            }
            out.push(']');
        }
        Doc::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(sp);
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                render(v, out, pad);
            }
            out.push('}');
        }
    }
}

/// The first key found twice, in the order a streaming parser finishes reading them: a member's value before the
/// member's own key is compared with the keys before it.
fn first_duplicate(d: &Doc) -> Option<String> {
    match d {
        Doc::Leaf(_) => None,
        Doc::Array(items) => items.iter().find_map(first_duplicate),
        Doc::Object(members) => {
            let mut seen: Vec<&str> = Vec::new();
            for (k, v) in members {
                if let Some(inner) = first_duplicate(v) {
                    return Some(inner);
                }
                if seen.contains(&k.as_str()) {
                    return Some(k.clone());
                }
                seen.push(k);
            }
            None
        }
    }
}

// ---- plans -------------------------------------------------------------------------------------------------------

fn reference_plan() -> HashMap<String, String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/reference.env"))
        .unwrap();
    parse_env_file(&text).unwrap()
}

/// Every variable the plan loader reads (plans/reference.env sets most; the rest are optional or mode-specific).
const PLAN_VARIABLES: &[&str] = &[
    "PILOTLIGHT_PRIMARY_REGION",
    "PILOTLIGHT_DR_REGION",
    "PILOTLIGHT_ACCOUNT_ID",
    "PILOTLIGHT_ALARM_NAMES",
    "PILOTLIGHT_ALARM_REGION",
    "PILOTLIGHT_QUORUM",
    "PILOTLIGHT_COOLDOWN_SECONDS",
    "PILOTLIGHT_OBSERVE_DEADLINE_MS",
    "PILOTLIGHT_DB_MODE",
    "PILOTLIGHT_PRIMARY_DB_INSTANCE",
    "PILOTLIGHT_DR_DB_INSTANCE",
    "PILOTLIGHT_GLOBAL_CLUSTER",
    "PILOTLIGHT_PRIMARY_DB_CLUSTER_ARN",
    "PILOTLIGHT_DR_DB_CLUSTER_ARN",
    "PILOTLIGHT_MAX_REPLICA_LAG_SECONDS",
    "PILOTLIGHT_PRIMARY_ASG",
    "PILOTLIGHT_DR_ASG",
    "PILOTLIGHT_PRIMARY_CAPACITY",
    "PILOTLIGHT_DR_CAPACITY",
    "PILOTLIGHT_PRIMARY_TARGET_GROUP_ARN",
    "PILOTLIGHT_DR_TARGET_GROUP_ARN",
    "PILOTLIGHT_PRIMARY_BACKUP_VAULT",
    "PILOTLIGHT_DR_BACKUP_VAULT",
    "PILOTLIGHT_PRIMARY_AMI_PARAMETER",
    "PILOTLIGHT_DR_AMI_PARAMETER",
    "PILOTLIGHT_MAX_AMI_AGE_HOURS",
    "PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN",
    "PILOTLIGHT_DR_ENDPOINT_GROUP_ARN",
    "PILOTLIGHT_PRIMARY_CONNECT_TIMEOUT_MS",
    "PILOTLIGHT_DR_CONNECT_TIMEOUT_MS",
    "PILOTLIGHT_PRIMARY_READ_TIMEOUT_MS",
    "PILOTLIGHT_DR_READ_TIMEOUT_MS",
    "PILOTLIGHT_PRIMARY_OPERATION_TIMEOUT_MS",
    "PILOTLIGHT_DR_OPERATION_TIMEOUT_MS",
    "PILOTLIGHT_DIAL_STEPS",
    "PILOTLIGHT_DNS_MODE",
    "PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID",
    "PILOTLIGHT_DR_HEALTH_CHECK_ID",
    "PILOTLIGHT_HOSTED_ZONE_ID",
    "PILOTLIGHT_RECORD_NAME",
    "PILOTLIGHT_PRIMARY_RECORD_VALUE",
    "PILOTLIGHT_DR_RECORD_VALUE",
    "PILOTLIGHT_RECORD_TTL",
    "PILOTLIGHT_SNS_TOPIC_ARN",
    "PILOTLIGHT_STATE_MACHINE_ARN",
    "PILOTLIGHT_DRY_RUN",
    "PILOTLIGHT_APPROVAL",
    "PILOTLIGHT_POLL_SECONDS",
    "PILOTLIGHT_DIAL_BAKE_SECONDS",
    "PILOTLIGHT_MAX_POLLS",
    "PILOTLIGHT_APPROVAL_TIMEOUT_SECONDS",
];

fn plan_value() -> impl Strategy<Value = String> {
    prop_oneof![
        weird_text(),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..30_000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "4294967296",
            "18446744073709551616",
            "1e3",
            "0x10",
            " 42 ",
            "true",
            "false",
            "maybe",
            "ap-northeast-1",
            "ap-northeast-2",
            "us-west-2",
            "eu-west-1",
            "tokyo",
            "AP-NORTHEAST-1",
            "ap-northeast-",
            "2,2,4",
            "4,2,8",
            "0,0,0",
            "1,2",
            "25,50,100",
            "50,25,100",
            "100",
            "0,100",
            "a,a",
            "a,b",
            "x@us-east-1",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:edge",
            "arn:aws:cloudwatch:us-east-1:999999999999:alarm:x",
            "arn:aws:sns:ap-northeast-1:123456789012:t",
            "arn:aws:states:ap-northeast-1:123456789012:stateMachine:s",
            "arn:aws:rds:ap-northeast-1:123456789012:cluster:c",
            "rds-replica",
            "aurora-global",
            "records",
            "health-check",
            "required",
            "none",
        ])
        .prop_map(str::to_string),
    ]
}

#[derive(Debug, Clone)]
enum PlanOp {
    Remove(&'static str),
    Set(&'static str, String),
    /// A key the loader does not read (ignored) or a mangled one.
    Add(String, String),
}

fn arb_plan_op() -> impl Strategy<Value = PlanOp> {
    let var = prop::sample::select(PLAN_VARIABLES);
    prop_oneof![
        2 => var.clone().prop_map(PlanOp::Remove),
        5 => (var, plan_value()).prop_map(|(k, v)| PlanOp::Set(k, v)),
        1 => (weird_text(), plan_value()).prop_map(|(k, v)| PlanOp::Add(k, v)),
    ]
}

fn named_variable(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("plan variable ")?;
    rest.split(':').next()
}

// ---- the properties ----------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any JSON value: no panic, a refusal is InvalidInput, anything accepted obeys the rules and round-trips.
    #[test]
    fn parse_trigger_on_arbitrary_json(v in arb_json()) {
        check_trigger(&v)?;
    }

    /// Objects that look like each shape (their dispatch key present) with arbitrary content.
    #[test]
    fn parse_trigger_on_arbitrary_objects_of_each_shape(
        key in prop::sample::select(vec!["command", "detail-type", "Records", "alarmData"]),
        dispatch in arb_json(),
        rest in prop::collection::vec((arb_key(), arb_json()), 0..6),
    ) {
        let mut m: Map<String, Value> = rest.into_iter().collect();
        m.insert(key.to_string(), dispatch);
        check_trigger(&Value::Object(m))?;
    }

    /// The real sample events with fields dropped, replaced, retyped, renamed, stuffed with odd text, huge or
    /// deeply nested (the SNS message's inner JSON too).
    #[test]
    fn parse_trigger_on_mutated_samples(e in arb_mutated_sample()) {
        check_trigger(&e)?;
    }

    /// Manual commands: accepted exactly when an independent model of the rules accepts them, with equal fields.
    #[test]
    fn manual_commands_agree_with_the_model(m in arb_command_object()) {
        let expected = model(&m);
        let got = parse_trigger(&Value::Object(m.clone()));
        match (&expected, &got) {
            (Some(c), Ok(Trigger::Manual(g))) => prop_assert_eq!(c, g),
            (None, Err(e)) => prop_assert_eq!(e.kind, ErrorKind::InvalidInput),
            _ => prop_assert!(false, "{:?}: model says {:?}, parse_trigger {:?}", m, expected, got),
        }
        check_trigger(&Value::Object(m))?;
    }

    /// Payload::parse flags exactly the documents with a key repeated in one object (the first one found), and
    /// otherwise reads the value serde_json reads.
    #[test]
    fn payload_duplicate_keys_agree_with_the_reference(d in arb_doc(), pad in any::<bool>()) {
        let mut text = String::new();
        render(&d, &mut text, pad);
        let p = Payload::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(p.duplicate_key, first_duplicate(&d), "{}", text);
        // With or without repeats, the value is serde_json's (which keeps the last of repeated keys).
        let plain: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(p.value, plain);
    }

    /// Any text, including truncated and deeply nested documents: Payload::parse accepts exactly what serde_json
    /// accepts, never panics or overflows the stack.
    #[test]
    fn payload_accepts_what_serde_json_accepts(
        d in arb_doc(),
        cut in any::<prop::sample::Index>(),
        depth in 0usize..400,
        noise in weird_text(),
        choice in 0u8..3,
    ) {
        let mut text = String::new();
        render(&d, &mut text, false);
        let text = match choice {
            0 => text.char_indices().map(|(i, _)| i).nth(cut.index(text.chars().count().max(1))).map_or(text.clone(), |i| text[..i].to_string()),
            1 => format!("{}{}{}", "[".repeat(depth), text, "]".repeat(depth)),
            _ => noise,
        };
        let ours = Payload::parse(&text);
        let theirs = serde_json::from_str::<Value>(&text);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}", text);
        if let (Ok(p), Ok(v)) = (ours, theirs) {
            prop_assert_eq!(p.value, v);
        }
    }

    /// Mutated reference plans: no panic; a refusal is a Config error naming a PILOTLIGHT_ variable the loader
    /// reads; an accepted plan loads the same twice and keeps the invariants the steps rely on.
    #[test]
    fn plan_loader_on_mutated_reference_plans(ops in prop::collection::vec(arb_plan_op(), 1..5)) {
        let mut vars = reference_plan();
        for op in &ops {
            match op {
                PlanOp::Remove(k) => { vars.remove(*k); }
                PlanOp::Set(k, v) => { vars.insert(k.to_string(), v.clone()); }
                PlanOp::Add(k, v) => { vars.insert(k.clone(), v.clone()); }
            }
        }
        match FailoverPlan::from_map(&vars) {
            Err(e) => {
                prop_assert_eq!(e.kind, ErrorKind::Config, "{}", e);
                let var = named_variable(&e.message);
                prop_assert!(var.is_some_and(|v| PLAN_VARIABLES.contains(&v)), "{:?}: {}", ops, e);
            }
            Ok(plan) => {
                prop_assert_eq!(&FailoverPlan::from_map(&vars).unwrap(), &plan);
                prop_assert_ne!(&plan.primary.region, &plan.dr.region);
                prop_assert!(plan.alarms.quorum >= 1 && plan.alarms.quorum <= plan.alarms.alarms.len());
                for c in [plan.primary.capacity, plan.dr.capacity] {
                    prop_assert!(0 <= c.min && c.min <= c.desired && c.desired <= c.max && c.max > 0);
                }
                prop_assert!(plan.dial_steps.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(plan.dial_steps.last(), Some(&100));
                prop_assert!(plan.dial_steps[0] > 0);
                prop_assert_eq!(plan.account_id.len(), 12);
            }
        }
    }

    /// parse_env_file: any text, no panic; a file written from simple KEY=VALUE pairs reads back as those pairs.
    #[test]
    fn env_file_parser(
        text in any::<String>(),
        pairs in prop::collection::hash_map("PILOTLIGHT_[A-Z_]{1,12}", "[!-~&&[^\"#]]([ -~&&[^\"]]{0,20}[!-~&&[^\"]])?", 0..8),
        export in any::<bool>(),
    ) {
        let _ = parse_env_file(&text);
        let file: String = pairs
            .iter()
            .map(|(k, v)| format!("{}{k}={v}\n# comment\n\n", if export { "export " } else { "" }))
            .collect();
        prop_assert_eq!(parse_env_file(&file).unwrap(), pairs);
    }
}

/// The stack does not overflow on deep nesting: serde_json stops at 128 levels, the runtime's parser too.
#[test]
fn deeply_nested_payloads_are_refused_not_overflowed() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let text = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        assert!(Payload::parse(&text).is_err());
    }
    // Within the limit a nested value reaches parse_trigger, which refuses it as no event shape.
    let text = format!("{}1{}", "{\"command\":".repeat(100), "}".repeat(100));
    let p = Payload::parse(&text).unwrap();
    assert!(parse_trigger(&p.value).is_err());
}

/// The mutation generator is not vacuous: a fair share of mutated samples is still accepted (so the round-trip and
/// forged-ARN checks run), of every alarm shape and of commands, and a fair share is refused.
#[test]
fn mutated_samples_are_accepted_often_enough_to_test_the_round_trip() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arb_mutated_sample();
    let (mut shapes, mut commands, mut refusals) = (Vec::new(), 0, 0);
    let n = 1000;
    for _ in 0..n {
        let e = strategy.new_tree(&mut runner).unwrap().current();
        match parse_trigger(&e) {
            Ok(Trigger::Alarm(t)) => shapes.push(t.shape),
            Ok(Trigger::Manual(_)) => commands += 1,
            Err(_) => refusals += 1,
        }
    }
    for shape in [
        AlarmShape::LambdaAction,
        AlarmShape::Sns,
        AlarmShape::EventBridge,
    ] {
        let k = shapes.iter().filter(|s| **s == shape).count();
        eprintln!("{shape:?} accepted {k} times in {n}");
        assert!(k >= n / 50, "{shape:?} accepted {k} times in {n}");
    }
    eprintln!("commands accepted {commands} times, refused {refusals} times in {n}");
    assert!(
        commands >= n / 20,
        "commands accepted {commands} times in {n}"
    );
    assert!(refusals >= n / 5, "refused {refusals} times in {n}");
}
