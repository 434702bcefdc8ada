//! The one RFC 3339 rendering of a time in pilotlight's messages, tags and execution inputs.

use chrono::{DateTime, SecondsFormat, Utc};

/// `t` in UTC with a `Z`: `Millis` where the value is stored and compared (tags, execution inputs, answers),
/// `Secs` where a person reads it.
pub fn rfc3339(t: DateTime<Utc>, precision: SecondsFormat) -> String {
    t.to_rfc3339_opts(precision, true)
}
