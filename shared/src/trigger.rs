//! What can invoke `detect`, parsed strictly. Dispatch is on the event's keys, not on trial deserialisation: an
//! EventBridge event also deserialises as a Lambda-action alarm payload with an empty name (all fields default).

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::plan::{Direction, Mode, arn_account, arn_region, check_alarm_name};
use crate::step::{FORCE_REFUSED, Overrides};

/// Larger events are refused before parsing (SNS caps messages at 256 KiB; alarm events are a few KiB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

pub const EVENTBRIDGE_ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmShape {
    /// CloudWatch alarm invoking the function directly (alarm Lambda action).
    LambdaAction,
    /// The alarm's SNS notification, delivered by an SNS subscription.
    Sns,
    /// EventBridge "CloudWatch Alarm State Change".
    EventBridge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "OK" => Ok(AlarmState::Ok),
            "ALARM" => Ok(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
            other => Err(Error::invalid_input(format!(
                "unknown alarm state {other:?}; expected OK, ALARM or INSUFFICIENT_DATA"
            ))),
        }
    }
    fn from_event(v: &CloudWatchAlarmStateValue) -> Result<Self> {
        match v {
            CloudWatchAlarmStateValue::Ok => Ok(AlarmState::Ok),
            CloudWatchAlarmStateValue::Alarm => Ok(AlarmState::Alarm),
            CloudWatchAlarmStateValue::InsufficientData => Ok(AlarmState::InsufficientData),
            other => Err(Error::invalid_input(format!(
                "unknown alarm state {other:?}"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One alarm state change, whatever shape delivered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmTransition {
    pub shape: AlarmShape,
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub account_id: String,
    pub region: String,
    pub state: AlarmState,
    pub state_change_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandName {
    Failover,
    Failback,
    Status,
    /// Retry fencing the primary after a failover (docs/guarantees.md "Fencing").
    Fence,
    /// Answer a paused execution's approval request (the task token from the SNS notification).
    Approve,
    Reject,
}

/// A manual command to `detect`. Unknown fields are refused so a typo (`dryrun`) never runs a real failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualCommand {
    pub command: CommandName,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Refused when true (see [`FORCE_REFUSED`]); `false` is accepted and means nothing, for old scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// The named risks the operator accepts (failover/failback: carried in the execution input; approve: added to
    /// the paused execution's).
    #[serde(default, skip_serializing_if = "is_default")]
    pub overrides: Overrides,
    /// `true`: pause for approval before the first mutating step even if the plan does not ask for it. `false`
    /// never weakens the plan: a plan whose PILOTLIGHT_APPROVAL is `required` still pauses.
    #[serde(default)]
    pub approval: Option<bool>,
    /// approve / reject only: the execution waiting for the answer (its ARN, or its name), as the approval request
    /// names it. detect reads the pending task token from the execution's history.
    #[serde(default)]
    pub execution: Option<String>,
    /// approve / reject only, instead of `execution` (kept for compatibility): the task token itself.
    #[serde(default)]
    pub token: Option<String>,
}

impl ManualCommand {
    pub fn direction(&self) -> Option<Direction> {
        match self.command {
            CommandName::Failover => Some(Direction::Failover),
            CommandName::Failback => Some(Direction::Failback),
            CommandName::Fence => Some(Direction::Failover),
            CommandName::Status | CommandName::Approve | CommandName::Reject => None,
        }
    }

    /// Fields that only make sense for some commands are refused elsewhere, so nothing is silently ignored.
    fn check(&self) -> Result<()> {
        if let Some(reason) = &self.reason {
            let chars = reason.chars().count();
            if chars > REASON_MAX_CHARS {
                return Err(Error::invalid_input(format!(
                    "\"reason\" is {chars} characters, at most {REASON_MAX_CHARS}: it goes into the execution input, \
                     logs and mail; say why in a sentence"
                )));
            }
            if reason.chars().any(|c| c.is_control() && c != '\n') {
                return Err(Error::invalid_input(
                    "\"reason\" contains a control character (only line breaks are allowed)",
                ));
            }
        }
        let answering = matches!(self.command, CommandName::Approve | CommandName::Reject);
        match (&self.execution, &self.token, answering) {
            (None, None, true) => Err(Error::invalid_input(
                "approve/reject need the \"execution\" the approval request names",
            )),
            (Some(_), Some(_), true) => Err(Error::invalid_input(
                "approve/reject take \"execution\" or \"token\", not both",
            )),
            (Some(e), None, true) if e.trim().is_empty() || e.len() > 2048 || !printable(e) => {
                Err(Error::invalid_input(
                    "\"execution\" must be the execution's ARN or name, as in the approval request",
                ))
            }
            // A task token is opaque but printable: a space or control character means it was mangled in transit
            // (refused here, before SendTaskSuccess/Failure would be called with it).
            (None, Some(t), true) if t.trim().is_empty() || t.len() > 2048 || !printable(t) => {
                Err(Error::invalid_input(
                    "the approval token must be 1 to 2048 characters without spaces or control characters, as in \
                     the approval request",
                ))
            }
            (Some(_), _, false) | (_, Some(_), false) => Err(Error::invalid_input(
                "\"execution\" and \"token\" belong to approve/reject commands only",
            )),
            _ if self.force == Some(true) => Err(Error::invalid_input(FORCE_REFUSED)),
            _ if answering
                && (self.dry_run
                    || self.mode.is_some()
                    || self.force.is_some()
                    || self.approval.is_some()) =>
            {
                Err(Error::invalid_input(
                    "approve/reject take only \"execution\" (or \"token\"), \"reason\" and (approve) \"overrides\"",
                ))
            }
            _ if self.command == CommandName::Reject && self.overrides != Overrides::default() => {
                Err(Error::invalid_input(
                    "\"overrides\" go with approve (accept a preflight finding), not with reject",
                ))
            }
            _ if self.command == CommandName::Status && self.overrides != Overrides::default() => {
                Err(Error::invalid_input("\"overrides\" do not apply to status"))
            }
            _ if self.command == CommandName::Fence
                && (self.overrides != Overrides::default()
                    || self.mode.is_some()
                    || self.approval.is_some()) =>
            {
                Err(Error::invalid_input(
                    "fence takes only \"dry_run\" and \"reason\": it fences the primary after a failover, never the side that serves",
                ))
            }
            _ => Ok(()),
        }
    }
}

fn is_default(o: &Overrides) -> bool {
    *o == Overrides::default()
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Alarm(AlarmTransition),
    Manual(ManualCommand),
}

/// The alarm notification inside an SNS message (metric or composite alarm). Own minimal type: the crate's
/// `CloudWatchAlarmPayload` requires a metric `Trigger`, which composite-alarm notifications do not have.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAlarmMessage {
    alarm_name: String,
    #[serde(rename = "AWSAccountId")]
    aws_account_id: String,
    new_state_value: String,
    state_change_time: String,
    alarm_arn: String,
}

/// No white space or control character: execution names, ARNs and task tokens never have one.
fn printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The longest `reason` a manual command may give (it travels in the execution input, logs and mail).
pub const REASON_MAX_CHARS: usize = 1024;

/// Counts the bytes of the event's compact JSON without keeping them (no copy of the event is built).
#[derive(Default)]
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A part of an alarm event detect never reads (the alarm's configuration, its reason data, the previous state's
/// details): skipped by the parser, not built.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Unread)
    }
}

impl Serialize for Unread {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// Deserialises `T` from the event in place (`&Value` is a deserializer: no clone of the event tree).
fn typed<'a, T: Deserialize<'a>>(event: &'a Value) -> serde_json::Result<T> {
    T::deserialize(event)
}

pub fn parse_trigger(event: &Value) -> Result<Trigger> {
    let mut count = ByteCount::default();
    let size = serde_json::to_writer(&mut count, event)
        .map(|()| count.0)
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(Error::invalid_input(format!(
            "event of {size} bytes refused: larger than {MAX_EVENT_BYTES} bytes, no alarm event is that big"
        )));
    }
    let obj = event.as_object().ok_or_else(|| {
        Error::invalid_input(format!(
            "event must be a JSON object, got {}",
            kind_of(event)
        ))
    })?;
    if obj.contains_key("command") {
        let cmd: ManualCommand = typed(event).map_err(|e| {
            Error::invalid_input(format!(
                "manual command rejected: {e}; expected {{\"command\": \"failover\"|\"failback\"|\"fence\"|\"status\", \"dry_run\": bool, \"mode\": \"graceful\"|\"ungraceful\", \"reason\": \"...\", \"overrides\": {{\"allow_...\": true}}, \"approval\": bool}} or {{\"command\": \"approve\"|\"reject\", \"execution\": \"<execution ARN>\", \"reason\": \"...\", \"overrides\": {{...}} (approve)}}"
            ))
        })?;
        cmd.check()?;
        return Ok(Trigger::Manual(cmd));
    }
    if obj.contains_key("detail-type") {
        return parse_eventbridge(event).map(Trigger::Alarm);
    }
    if obj.contains_key("Records") {
        return parse_sns(event).map(Trigger::Alarm);
    }
    if obj.contains_key("alarmData") {
        return parse_lambda_action(event).map(Trigger::Alarm);
    }
    Err(Error::invalid_input(
        "unrecognised event: expected a CloudWatch alarm Lambda-action payload (alarmData), an SNS notification (Records), \
         an EventBridge \"CloudWatch Alarm State Change\" event (detail-type) or a manual command (command)",
    ))
}

fn parse_lambda_action(event: &Value) -> Result<AlarmTransition> {
    let alarm: CloudWatchAlarm<Unread, Unread> = typed(event).map_err(|e| {
        Error::invalid_input(format!(
            "CloudWatch alarm Lambda-action payload rejected: {e}"
        ))
    })?;
    if alarm.source.as_deref() != Some("aws.cloudwatch") {
        return Err(Error::invalid_input(format!(
            "alarm payload with source {:?} refused; expected aws.cloudwatch",
            alarm.source
        )));
    }
    let state = alarm
        .alarm_data
        .state
        .as_ref()
        .ok_or_else(|| Error::invalid_input("alarm payload has no alarmData.state"))?;
    // The payload's own field, else read from the alarm's ARN.
    let given_or_from_arn = |given: &Option<String>, from_arn: fn(&str) -> Option<&str>| {
        given.clone().or_else(|| {
            alarm
                .alarm_arn
                .as_deref()
                .and_then(from_arn)
                .map(str::to_string)
        })
    };
    let account_id = given_or_from_arn(&alarm.account_id, arn_account)
        .ok_or_else(|| Error::invalid_input("alarm payload names no account (accountId)"))?;
    let region = given_or_from_arn(&alarm.region, arn_region)
        .ok_or_else(|| Error::invalid_input("alarm payload names no region"))?;
    let t = transition(
        AlarmShape::LambdaAction,
        &alarm.alarm_data.alarm_name,
        alarm.alarm_arn.clone(),
        account_id,
        region,
    )?;
    Ok(AlarmTransition {
        state: AlarmState::from_event(&state.value)?,
        state_change_time: state.timestamp,
        ..t
    })
}

fn parse_eventbridge(event: &Value) -> Result<AlarmTransition> {
    let ev: EventBridgeEvent<CloudWatchAlarmData<Unread, Unread>> = typed(event)
        .map_err(|e| Error::invalid_input(format!("EventBridge alarm event rejected: {e}")))?;
    if ev.detail_type != EVENTBRIDGE_ALARM_DETAIL_TYPE || ev.source != "aws.cloudwatch" {
        return Err(Error::invalid_input(format!(
            "EventBridge event {:?} from {:?} refused; expected \"{EVENTBRIDGE_ALARM_DETAIL_TYPE}\" from aws.cloudwatch",
            ev.detail_type, ev.source
        )));
    }
    let state = ev
        .detail
        .state
        .as_ref()
        .ok_or_else(|| Error::invalid_input("EventBridge alarm event has no detail.state"))?;
    let arn = ev.resources.as_ref().and_then(|r| r.first().cloned());
    let account_id = ev
        .account
        .clone()
        .ok_or_else(|| Error::invalid_input("EventBridge alarm event names no account"))?;
    let region = ev
        .region
        .clone()
        .ok_or_else(|| Error::invalid_input("EventBridge alarm event names no region"))?;
    let t = transition(
        AlarmShape::EventBridge,
        &ev.detail.alarm_name,
        arn,
        account_id,
        region,
    )?;
    Ok(AlarmTransition {
        state: AlarmState::from_event(&state.value)?,
        state_change_time: state.timestamp,
        ..t
    })
}

fn parse_sns(event: &Value) -> Result<AlarmTransition> {
    let ev: SnsEvent =
        typed(event).map_err(|e| Error::invalid_input(format!("SNS event rejected: {e}")))?;
    let [record] = ev.records.as_slice() else {
        return Err(Error::invalid_input(format!(
            "SNS event must carry exactly one record, got {}",
            ev.records.len()
        )));
    };
    if record.event_source != "aws:sns" {
        return Err(Error::invalid_input(format!(
            "record from {:?} refused; expected aws:sns",
            record.event_source
        )));
    }
    let msg: SnsAlarmMessage = serde_json::from_str(&record.sns.message).map_err(|e| {
        Error::invalid_input(format!(
            "SNS message from {} is not a CloudWatch alarm notification: {e}",
            record.sns.topic_arn
        ))
    })?;
    let region = arn_region(&msg.alarm_arn)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "alarm ARN {:?} in the SNS message has no region",
                msg.alarm_arn
            ))
        })?
        .to_string();
    let state = AlarmState::parse(&msg.new_state_value)?;
    let time = parse_alarm_time(&msg.state_change_time)?;
    transition(
        AlarmShape::Sns,
        &msg.alarm_name,
        Some(msg.alarm_arn.clone()),
        msg.aws_account_id.clone(),
        region,
    )
    .map(|t| AlarmTransition {
        state,
        state_change_time: time,
        ..t
    })
}

fn transition(
    shape: AlarmShape,
    name: &str,
    arn: Option<String>,
    account_id: String,
    region: String,
) -> Result<AlarmTransition> {
    if name.trim().is_empty() {
        return Err(Error::invalid_input("alarm event has an empty alarm name"));
    }
    check_alarm_name(name)
        .map_err(|why| Error::invalid_input(format!("alarm event: alarmName: {why}")))?;
    if let Some(arn) = &arn {
        // `arn:...:alarm:<name>`: an ARN naming another alarm than alarmName is forged or mangled.
        let arn_name = arn.split_once(":alarm:").map(|(_, n)| n);
        if arn_name != Some(name) {
            return Err(Error::invalid_input(format!(
                "alarm event: alarmArn {arn} names alarm {:?}, alarmName says {name:?}",
                arn_name.unwrap_or("")
            )));
        }
    }
    if let Some(arn) = &arn {
        // The ARN must agree with the fields beside it, or the event was forged or mangled.
        if arn_account(arn) != Some(account_id.as_str()) || arn_region(arn) != Some(region.as_str())
        {
            return Err(Error::invalid_input(format!(
                "alarm ARN {arn} disagrees with account {account_id} / region {region} in the event"
            )));
        }
    }
    Ok(AlarmTransition {
        shape,
        alarm_name: name.to_string(),
        alarm_arn: arn,
        account_id,
        region,
        state: AlarmState::Ok,
        state_change_time: DateTime::<Utc>::UNIX_EPOCH,
    })
}

/// CloudWatch writes `2023-08-04T12:36:15.490+0000` (no colon in the offset); accept RFC 3339 too.
pub fn parse_alarm_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::invalid_input(format!("alarm state-change time {s:?} unreadable: {e}")))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn alarm(name: &str) -> AlarmTransition {
        match parse_trigger(&load(name)).unwrap() {
            Trigger::Alarm(t) => t,
            other => panic!("{name}: expected an alarm, got {other:?}"),
        }
    }

    #[test]
    fn the_three_alarm_shapes_agree() {
        let direct = alarm("detect-alarm-lambda-action.json");
        let sns = alarm("detect-alarm-sns.json");
        let eb = alarm("detect-alarm-eventbridge.json");
        assert_eq!(direct.shape, AlarmShape::LambdaAction);
        assert_eq!(sns.shape, AlarmShape::Sns);
        assert_eq!(eb.shape, AlarmShape::EventBridge);
        for t in [&direct, &sns, &eb] {
            assert_eq!(t.alarm_name, "web-primary-5xx");
            assert_eq!(t.account_id, "123456789012");
            assert_eq!(t.region, "ap-northeast-1");
            assert_eq!(t.state, AlarmState::Alarm);
            assert_eq!(
                t.state_change_time,
                parse_alarm_time("2026-11-29T10:15:00.490+0000").unwrap()
            );
        }
        assert_eq!(alarm("detect-alarm-ok.json").state, AlarmState::Ok);
    }

    #[test]
    fn manual_commands() {
        let Trigger::Manual(c) =
            parse_trigger(&load("detect-manual-failover-dry-run.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (c.command, c.dry_run, c.mode),
            (CommandName::Failover, true, Some(Mode::Graceful))
        );
        let Trigger::Manual(c) = parse_trigger(&load("detect-manual-failback.json")).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.direction(), Some(Direction::Failback));
        let Trigger::Manual(c) = parse_trigger(&load("detect-manual-status.json")).unwrap() else {
            panic!()
        };
        assert_eq!(c.direction(), None);
        let Trigger::Manual(c) = parse_trigger(&load("detect-manual-failover.json")).unwrap()
        else {
            panic!()
        };
        assert!(!c.dry_run);
    }

    fn rejected(event: Value) -> String {
        let e = parse_trigger(&event).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::InvalidInput, "{e}");
        e.message
    }

    #[test]
    fn the_size_limit_counts_the_compact_json_bytes() {
        // Sized so its compact JSON is exactly the limit, then one byte more.
        let filler = |n: usize| json!({"command": "status", "reason": "x".repeat(n)});
        let base = serde_json::to_vec(&filler(0)).unwrap().len();
        let at_limit = filler(MAX_EVENT_BYTES - base);
        assert_eq!(
            serde_json::to_vec(&at_limit).unwrap().len(),
            MAX_EVENT_BYTES
        );
        // At the limit the size check passes and the command's own checks answer (the reason is too long).
        assert!(!rejected(at_limit).contains("bytes refused"));
        let over = rejected(filler(MAX_EVENT_BYTES - base + 1));
        assert!(
            over.contains(&format!("event of {} bytes refused", MAX_EVENT_BYTES + 1)),
            "{over}"
        );
    }

    #[test]
    fn malformed_events_are_rejected_with_a_reason() {
        assert!(rejected(json!("failover")).contains("JSON object"));
        assert!(rejected(json!({"hello": 1})).contains("unrecognised event"));
        assert!(rejected(json!({"command": "failover", "dryrun": true})).contains("dryrun"));
        assert!(rejected(json!({"command": "explode"})).contains("manual command rejected"));
        let fence = parse_trigger(&json!({"command": "fence", "dry_run": true})).unwrap();
        let Trigger::Manual(fence) = fence else {
            panic!()
        };
        assert_eq!(fence.direction(), Some(Direction::Failover));
        for extra in [
            json!({"command": "fence", "mode": "graceful"}),
            json!({"command": "fence", "approval": true}),
            json!({"command": "fence", "overrides": {"allow_stale_ami": true}}),
        ] {
            assert!(rejected(extra).contains("fence takes only"));
        }
        assert!(
            rejected(json!({"command": "failover", "mode": "fast"}))
                .contains("manual command rejected")
        );
        let mut eb = load("detect-alarm-eventbridge.json");
        eb["detail-type"] = json!("EC2 Instance State-change Notification");
        assert!(rejected(eb).contains("refused"));
        let mut direct = load("detect-alarm-lambda-action.json");
        direct["source"] = json!("aws.events");
        assert!(rejected(direct).contains("source"));
        let mut direct = load("detect-alarm-lambda-action.json");
        direct["alarmData"]
            .as_object_mut()
            .unwrap()
            .remove("alarmName");
        assert!(rejected(direct).contains("rejected"));
        let mut forged = load("detect-alarm-lambda-action.json");
        forged["accountId"] = json!("999999999999");
        assert!(rejected(forged).contains("disagrees"));
        let mut sns = load("detect-alarm-sns.json");
        sns["Records"][0]["Sns"]["Message"] = json!("not json");
        assert!(rejected(sns).contains("not a CloudWatch alarm notification"));
        let mut two = load("detect-alarm-sns.json");
        let rec = two["Records"][0].clone();
        two["Records"].as_array_mut().unwrap().push(rec);
        assert!(rejected(two).contains("exactly one record"));
        let mut big = load("detect-manual-failover.json");
        big["reason"] = json!("x".repeat(1024 * 1024));
        assert!(rejected(big).contains("larger than"));
    }

    #[test]
    fn stricter_input_names_the_field() {
        // An ARN naming another alarm than alarmName: forged or mangled, in every shape that carries both.
        let mut direct = load("detect-alarm-lambda-action.json");
        let arn = direct["alarmArn"]
            .as_str()
            .unwrap()
            .replace("web-primary-5xx", "other-alarm");
        direct["alarmArn"] = json!(arn);
        assert!(rejected(direct).contains("alarmArn"));
        let mut sns = load("detect-alarm-sns.json");
        let mut msg: Value =
            serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        msg["AlarmName"] = json!("other-alarm");
        sns["Records"][0]["Sns"]["Message"] = json!(msg.to_string());
        assert!(rejected(sns).contains("alarmName says \"other-alarm\""));
        // Control characters in a name end up in logs and mail subjects.
        let mut direct = load("detect-alarm-lambda-action.json");
        direct["alarmData"]["alarmName"] = json!("web\u{1b}[31m");
        assert!(rejected(direct).contains("control character"));
        // A reason is a sentence, not a payload.
        let mut long = load("detect-manual-failover.json");
        long["reason"] = json!("x".repeat(REASON_MAX_CHARS + 1));
        assert!(rejected(long).contains("\"reason\" is 1025 characters"));
        let mut ctl = load("detect-manual-failover.json");
        ctl["reason"] = json!("drill\u{0}");
        assert!(rejected(ctl).contains("control character"));
        let mut ok = load("detect-manual-failover.json");
        ok["reason"] = json!("line one\nline two");
        assert!(parse_trigger(&ok).is_ok());
    }

    #[test]
    fn alarm_times_in_cloudwatch_and_rfc3339_formats() {
        let a = parse_alarm_time("2026-11-29T10:15:00.490+0000").unwrap();
        let b = parse_alarm_time("2026-11-29T10:15:00.490Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_alarm_time("yesterday").is_err());
    }
}

#[cfg(test)]
mod approval_command_tests {
    use super::*;
    use serde_json::json;

    fn load(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn rejected(event: Value) -> String {
        parse_trigger(&event).unwrap_err().message
    }

    #[test]
    fn approve_and_reject_name_the_execution() {
        let Trigger::Manual(c) = parse_trigger(&load("detect-manual-approve.json")).unwrap() else {
            panic!()
        };
        assert_eq!(c.command, CommandName::Approve);
        assert!(
            c.execution
                .as_deref()
                .is_some_and(|e| e.contains(":execution:"))
        );
        assert_eq!(c.token, None);
        assert_eq!(c.direction(), None);
        let Trigger::Manual(c) = parse_trigger(&load("detect-manual-reject.json")).unwrap() else {
            panic!()
        };
        assert_eq!(c.command, CommandName::Reject);
        // The token form is still taken (compatibility).
        let Trigger::Manual(c) =
            parse_trigger(&json!({"command": "approve", "token": "AQCE"})).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.token.as_deref(), Some("AQCE"));
    }

    #[test]
    fn tokens_only_where_they_belong() {
        assert!(rejected(json!({"command": "approve"})).contains("need the \"execution\""));
        assert!(
            rejected(json!({"command": "approve", "execution": "e", "token": "t"}))
                .contains("not both")
        );
        assert!(rejected(json!({"command": "reject", "execution": " "})).contains("ARN or name"));
        assert!(
            rejected(json!({"command": "status", "execution": "e"}))
                .contains("approve/reject commands only")
        );
        assert!(rejected(json!({"command": "approve", "token": " "})).contains("1 to 2048"));
        assert!(
            rejected(json!({"command": "approve", "token": "tok en"})).contains("without spaces")
        );
        assert!(rejected(json!({"command": "reject", "token": "tok\u{1b}"})).contains("control"));
        assert!(
            rejected(json!({"command": "approve", "token": "x".repeat(2049)}))
                .contains("1 to 2048")
        );
        assert!(
            rejected(json!({"command": "failover", "token": "abc"}))
                .contains("approve/reject commands only")
        );
        assert!(
            rejected(json!({"command": "reject", "token": "abc", "dry_run": true}))
                .contains("only")
        );
        assert!(
            rejected(json!({"command": "approve", "token": "abc", "approval": true}))
                .contains("only")
        );
    }
}
