//! When the scheduled readiness run tells the operators (pure): only when something changed since the last
//! evaluation it told them about.
//!
//! The rule, for the on-call engineer (docs/contract.md "Readiness"):
//! - **First run** (nothing stored): one notice, the baseline, whatever it says: the operators learn the watch is
//!   running and what it sees.
//! - **A verdict changed**, in either direction (pass → warn → fail and back, a check that appeared or is gone):
//!   one notice naming exactly the changed checks, with the value seen. A recovery is news too: it tells the
//!   on-call that the page the alarm opened can be closed.
//! - **Nothing changed**: silence, failing or not. A failure that stays failing is not re-sent every 30 minutes:
//!   `ReadinessAlarm` (ReadinessFailures, Check=all) holds the page open for as long as it lasts, and a mail per
//!   run would teach people to filter the topic, the channel the failover's own notices come through.
//! - **The stored verdicts could not be read**: a notice (with the whole state, saying why): a duplicate is
//!   better than a change nobody hears of.
//!
//! Only verdicts count: a lag going from 3 s to 5 s under its limit changes the value seen, not the verdict, and is
//! not news.

use std::collections::BTreeMap;

use serde::Serialize;

/// The verdict per check id (`db.lag` → `pass`), as stored between runs.
pub type Verdicts = BTreeMap<String, String>;

/// What the last run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// No stored state: the first run.
    None,
    Known(Verdicts),
    /// The state store did not answer, or held something unreadable; why.
    Unreadable(String),
}

/// One check whose verdict differs from the stored one. `from`/`to` None: the check is new / gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Whether to publish, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "announce", rename_all = "snake_case")]
pub enum Announcement {
    /// The first run: the baseline.
    First,
    /// These verdicts changed.
    Changed { changes: Vec<Change> },
    /// The previous verdicts are unknown: tell, saying why.
    PreviousUnknown { reason: String },
    /// Nothing changed: no notice.
    Unchanged,
}

impl Announcement {
    pub fn publishes(&self) -> bool {
        !matches!(self, Announcement::Unchanged)
    }
}

/// The decision over the stored verdicts and the current ones.
pub fn decide(previous: &Previous, current: &Verdicts) -> Announcement {
    let before = match previous {
        Previous::None => return Announcement::First,
        Previous::Unreadable(reason) => {
            return Announcement::PreviousUnknown {
                reason: reason.clone(),
            };
        }
        Previous::Known(v) => v,
    };
    let mut changes: Vec<Change> = current
        .iter()
        .filter(|(id, now)| before.get(*id) != Some(now))
        .map(|(id, now)| Change {
            id: id.clone(),
            from: before.get(id).cloned(),
            to: Some(now.clone()),
        })
        .collect();
    changes.extend(
        before
            .iter()
            .filter(|(id, _)| !current.contains_key(*id))
            .map(|(id, was)| Change {
                id: id.clone(),
                from: Some(was.clone()),
                to: None,
            }),
    );
    if changes.is_empty() {
        Announcement::Unchanged
    } else {
        Announcement::Changed { changes }
    }
}

/// The stored form of the verdicts: one JSON object, id → verdict.
pub fn encode(verdicts: &Verdicts) -> String {
    serde_json::to_string(verdicts).unwrap_or_else(|_| "{}".into())
}

/// The stored form read back; an unreadable one is [`Previous::Unreadable`].
pub fn decode(stored: Option<&str>) -> Previous {
    match stored {
        None => Previous::None,
        Some(text) => match serde_json::from_str::<Verdicts>(text) {
            Ok(v) => Previous::Known(v),
            Err(e) => Previous::Unreadable(format!("the stored verdicts are not readable ({e})")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(pairs: &[(&str, &str)]) -> Verdicts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_first_run_announces_the_baseline_even_when_all_pass() {
        let all_pass = verdicts(&[("db.lag", "pass"), ("compute.asg.max", "pass")]);
        assert_eq!(decide(&Previous::None, &all_pass), Announcement::First);
        assert!(decide(&Previous::None, &all_pass).publishes());
    }

    #[test]
    fn an_unchanged_state_is_silent_failing_or_not() {
        let ok = verdicts(&[("db.lag", "pass"), ("compute.asg.max", "pass")]);
        assert_eq!(
            decide(&Previous::Known(ok.clone()), &ok),
            Announcement::Unchanged
        );
        // A failure that stays failing: the alarm holds the page; no mail every 30 minutes.
        let failing = verdicts(&[("db.lag", "pass"), ("compute.asg.max", "fail")]);
        let d = decide(&Previous::Known(failing.clone()), &failing);
        assert_eq!(d, Announcement::Unchanged);
        assert!(!d.publishes());
    }

    #[test]
    fn a_change_names_exactly_the_checks_that_changed_in_either_direction() {
        let before = verdicts(&[
            ("db.lag", "pass"),
            ("compute.asg.max", "fail"),
            ("dns.record", "warn"),
        ]);
        let now = verdicts(&[
            ("db.lag", "fail"),
            ("compute.asg.max", "pass"),
            ("dns.record", "warn"),
        ]);
        let d = decide(&Previous::Known(before), &now);
        assert!(d.publishes());
        assert_eq!(
            d,
            Announcement::Changed {
                changes: vec![
                    Change {
                        id: "compute.asg.max".into(),
                        from: Some("fail".into()),
                        to: Some("pass".into())
                    },
                    Change {
                        id: "db.lag".into(),
                        from: Some("pass".into()),
                        to: Some("fail".into())
                    },
                ]
            }
        );
    }

    #[test]
    fn a_check_that_appears_or_disappears_is_a_change() {
        let before = verdicts(&[("db.lag", "pass"), ("fence.old-writer", "pass")]);
        let now = verdicts(&[("db.lag", "pass"), ("db.global-member", "pass")]);
        let Announcement::Changed { changes } = decide(&Previous::Known(before), &now) else {
            panic!("a change")
        };
        assert_eq!(
            changes,
            [
                Change {
                    id: "db.global-member".into(),
                    from: None,
                    to: Some("pass".into())
                },
                Change {
                    id: "fence.old-writer".into(),
                    from: Some("pass".into()),
                    to: None
                },
            ]
        );
    }

    #[test]
    fn an_unreadable_previous_state_announces_rather_than_stays_silent() {
        let now = verdicts(&[("db.lag", "pass")]);
        let Previous::Unreadable(why) = decode(Some("not json")) else {
            panic!("unreadable")
        };
        let d = decide(&Previous::Unreadable(why.clone()), &now);
        assert_eq!(d, Announcement::PreviousUnknown { reason: why });
        assert!(d.publishes());
    }

    #[test]
    fn verdicts_round_trip_through_their_stored_form() {
        let v = verdicts(&[("db.lag", "warn"), ("operators.topic", "fail")]);
        assert_eq!(decode(Some(&encode(&v))), Previous::Known(v));
        assert_eq!(decode(None), Previous::None);
    }
}
