//! CloudWatch: the live state of the plan's alarms (detect's quorum re-read) and metrics read before acting
//! (replica lag for the RPO estimate).

use aws_sdk_cloudwatch::types::AlarmType;
use chrono::{DateTime, Utc};

use crate::decision::LiveAlarm;
use crate::error::{Error, Result};

/// Reads metric and composite alarms by name (DescribeAlarms takes at most 100 names per call).
pub async fn describe_alarms(
    cw: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Vec<LiveAlarm>> {
    let mut out = Vec::new();
    for chunk in names.chunks(100) {
        let mut next: Option<String> = None;
        loop {
            let resp = cw
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| Error::aws("DescribeAlarms", &chunk.join(","), e))?;
            for a in resp.metric_alarms() {
                out.push(LiveAlarm {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: a
                        .state_value()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    transitioned_at: to_chrono(
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                    ),
                });
            }
            for a in resp.composite_alarms() {
                out.push(LiveAlarm {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    state: a
                        .state_value()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    transitioned_at: to_chrono(
                        a.state_transitioned_timestamp()
                            .or(a.state_updated_timestamp()),
                    ),
                });
            }
            match resp.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(out)
}

pub fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

pub fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}
