//! The flow lock: one non-dry-run flow at a time, atomically (docs/contract.md "One flow at a time").
//!
//! One DynamoDB item (`lock = "flow"`) names the execution that holds it. detect writes it with a conditional
//! PutItem *before* StartExecution, with the execution name it is about to start as holder; the execution deletes
//! it in its final states (`holder = $$.Execution.Name`, generated in `flow/asl.rs`). A lock whose holder is no
//! longer RUNNING (stopped, timed out, or its release failed) is stale: detect takes it over with a compare-and-swap
//! on the holder it saw, so of many detects that see the same stale lock exactly one wins. Dry-runs never take it.
//!
//! [`takeover`] is the pure rule (unit-tested here); [`acquire`], [`release`] and [`release_unless_started`] are
//! the I/O around it.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::aws::dynamodb::{Condition, Item, Written, delete_item_if, get_item, put_item_if};
use crate::aws::stepfunctions::execution_status;
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::Context;
use crate::timestamp::rfc3339;

/// The table's partition key (a string attribute) and the one item's key value.
pub const KEY_ATTRIBUTE: &str = "lock";
pub const KEY: &str = "flow";

/// How long a lock whose holder execution does not exist yet counts as "being started": longer than detect can
/// take between its PutItem and its StartExecution (the function's 30 s timeout bounds both calls). After that the
/// detect that wrote it is gone without starting anything, and the lock is stale.
pub const START_GRACE: Duration = Duration::from_secs(120);

/// The lock item: who holds it, for which flow, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockRecord {
    /// The holder's execution name (what the state machine's release compares with `$$.Execution.Name`).
    pub holder: String,
    pub holder_arn: String,
    pub direction: String,
    pub started_at: DateTime<Utc>,
}

impl LockRecord {
    fn to_item(&self) -> Item {
        Item::from([
            (KEY_ATTRIBUTE.to_string(), KEY.to_string()),
            ("holder".to_string(), self.holder.clone()),
            ("holder_arn".to_string(), self.holder_arn.clone()),
            ("direction".to_string(), self.direction.clone()),
            (
                "started_at".to_string(),
                rfc3339(self.started_at, SecondsFormat::Millis),
            ),
        ])
    }

    pub fn from_item(item: &Item) -> Option<Self> {
        Some(LockRecord {
            holder: item.get("holder")?.clone(),
            holder_arn: item.get("holder_arn").cloned().unwrap_or_default(),
            direction: item.get("direction").cloned().unwrap_or_default(),
            started_at: item
                .get("started_at")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        })
    }
}

/// What Step Functions says about the lock holder's execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderStatus {
    Running,
    /// SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...
    Closed(String),
    /// No such execution (yet): DescribeExecution said ExecutionDoesNotExist.
    Missing,
}

impl HolderStatus {
    pub fn from_status(status: Option<String>) -> Self {
        match status.as_deref() {
            None => HolderStatus::Missing,
            Some("RUNNING") | Some("PENDING_REDRIVE") => HolderStatus::Running,
            Some(other) => HolderStatus::Closed(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// The holder is (or may still become) a running flow: the lock stands.
    Keep { reason: String },
    /// The holder will never release it: take it over (compare-and-swap on the holder).
    TakeOver { reason: String },
}

/// The takeover rule. A RUNNING holder keeps the lock (redriven executions too: they run again). A closed one
/// (its release failed, or it was stopped or timed out, which skips the release states) is stale. A holder that does
/// not exist is being started, until [`START_GRACE`] after the lock was written: then the detect that wrote it
/// died before StartExecution, and the lock is stale.
pub fn takeover(lock: &LockRecord, holder: &HolderStatus, now: DateTime<Utc>) -> Takeover {
    let age = now
        .signed_duration_since(lock.started_at)
        .to_std()
        .unwrap_or_default();
    match holder {
        HolderStatus::Running => Takeover::Keep {
            reason: format!("{} is RUNNING", lock.holder),
        },
        HolderStatus::Closed(status) => Takeover::TakeOver {
            reason: format!(
                "{} is {status}: it ended without releasing the lock",
                lock.holder
            ),
        },
        HolderStatus::Missing if age < START_GRACE => Takeover::Keep {
            reason: format!(
                "{} is being started (locked {}s ago)",
                lock.holder,
                age.as_secs()
            ),
        },
        HolderStatus::Missing => Takeover::TakeOver {
            reason: format!(
                "{} was never started (locked {}s ago, more than {}s): the detect that locked it stopped first",
                lock.holder,
                age.as_secs(),
                START_GRACE.as_secs()
            ),
        },
    }
}

/// What [`acquire`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// This call wrote the lock: free, or taken over from a stale holder (with the rule's reason). Released again
    /// when the start fails.
    Taken {
        took_over: Option<(LockRecord, String)>,
    },
    /// The lock already named this execution: a duplicate delivery of the same trigger. Never released here (the
    /// first delivery, or the execution itself, owns the release).
    AlreadyOurs,
    /// Another flow holds it.
    Held { by: LockRecord, reason: String },
}

fn names() -> Vec<(String, String)> {
    vec![
        ("#lock".to_string(), KEY_ATTRIBUTE.to_string()),
        ("#holder".to_string(), "holder".to_string()),
    ]
}

/// Free, or already ours (a duplicate delivery converges on the same holder).
fn free_or_mine(me: &str) -> Condition {
    Condition {
        expression: "attribute_not_exists(#lock) OR #holder = :me".into(),
        names: names(),
        values: vec![(":me".into(), me.into())],
    }
}

/// Still held by the stale holder we saw: the compare-and-swap of a takeover.
fn held_by(holder: &str) -> Condition {
    Condition {
        expression: "#holder = :stale_holder".into(),
        names: vec![("#holder".to_string(), "holder".to_string())],
        values: vec![(":stale_holder".into(), holder.into())],
    }
}

/// Conditional writes and reads before giving up on a lock that changes under us (a transient error: the async
/// invocation is retried).
const ATTEMPTS: usize = 4;

/// Takes the lock for `me` (free, ours already, or stale), or reports who holds it.
pub async fn acquire(ctx: &Context, table: &str, me: &LockRecord) -> Result<Acquired> {
    let ddb = ctx.aws.dynamodb();
    let item = me.to_item();
    for _ in 0..ATTEMPTS {
        if let Written::Yes { old } =
            put_item_if(ddb, table, &item, &free_or_mine(&me.holder)).await?
        {
            return Ok(match old {
                Some(_) => Acquired::AlreadyOurs,
                None => Acquired::Taken { took_over: None },
            });
        }
        let Some(current) = get_item(ddb, table, (KEY_ATTRIBUTE, KEY)).await? else {
            continue; // released since: try again
        };
        let current = LockRecord::from_item(&current).ok_or_else(|| {
            Error::refused(format!(
                "flow lock item in {table} has no holder: not written by pilotlight; delete it ({KEY_ATTRIBUTE} = {KEY}) to unblock"
            ))
        })?;
        if current.holder == me.holder {
            continue; // ours since (a duplicate delivery wrote it): the next write re-enters
        }
        let status = execution_status(ctx.aws.sfn(), &current.holder_arn).await?;
        match takeover(
            &current,
            &HolderStatus::from_status(status),
            chrono::Utc::now(),
        ) {
            Takeover::Keep { reason } => {
                return Ok(Acquired::Held {
                    by: current,
                    reason,
                });
            }
            Takeover::TakeOver { reason } => {
                if let Written::Yes { .. } =
                    put_item_if(ddb, table, &item, &held_by(&current.holder)).await?
                {
                    tracing::warn!(stale = %current.holder, by = %me.holder, %reason, "took over a stale flow lock");
                    return Ok(Acquired::Taken {
                        took_over: Some((current, reason)),
                    });
                }
                // Another detect took it over (or it was released) first: look again.
            }
        }
    }
    Err(Error::new(
        ErrorKind::Transient,
        format!("flow lock {table}: changed under every one of {ATTEMPTS} attempts; try again"),
    ))
}

/// Who holds the lock now (None: free). Read only: `pilotlight status` shows it.
pub async fn holder(ctx: &Context, table: &str) -> Result<Option<LockRecord>> {
    Ok(get_item(ctx.aws.dynamodb(), table, (KEY_ATTRIBUTE, KEY))
        .await?
        .as_ref()
        .and_then(LockRecord::from_item))
}

/// Deletes the lock if `holder` still holds it; false when it did not (nothing deleted).
pub async fn release(ctx: &Context, table: &str, holder: &str) -> Result<bool> {
    let condition = Condition {
        expression: "#holder = :me".into(),
        names: vec![("#holder".to_string(), "holder".to_string())],
        values: vec![(":me".into(), holder.into())],
    };
    delete_item_if(ctx.aws.dynamodb(), table, (KEY_ATTRIBUTE, KEY), &condition).await
}

/// After a failed StartExecution: release the lock, unless the execution exists after all (the answer was lost,
/// not the request) — then it holds the lock rightly and releases it itself. Best-effort: when this fails too, the
/// lock becomes stale and a later detect takes it over ([`takeover`]).
pub async fn release_unless_started(ctx: &Context, table: &str, me: &LockRecord) {
    let outcome = match execution_status(ctx.aws.sfn(), &me.holder_arn).await {
        Ok(None) => release(ctx, table, &me.holder).await.map(|released| {
            if released {
                "released"
            } else {
                "no longer ours"
            }
        }),
        Ok(Some(_)) => Ok("kept: the execution exists"),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(what) => tracing::info!(holder = %me.holder, what, "flow lock after a failed start"),
        Err(e) => {
            tracing::warn!(holder = %me.holder, error = %e, "flow lock not released; a later detect takes it over")
        }
    }
}

/// The loser's reason.
pub fn held_reason(table: &str, by: &LockRecord, reason: &str) -> String {
    format!(
        "flow already running: {} (lock {table}): {} since {}, {reason}",
        by.holder,
        by.direction,
        rfc3339(by.started_at, SecondsFormat::Secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn lock() -> LockRecord {
        LockRecord {
            holder: "failover-20270115T080000Z-00ff00ff00ff00ff".into(),
            holder_arn: "arn:aws:states:ap-northeast-1:123456789012:execution:pl-failover:failover-20270115T080000Z-00ff00ff00ff00ff".into(),
            direction: "failover".into(),
            started_at: at(0),
        }
    }

    fn kept(t: Takeover) -> bool {
        matches!(t, Takeover::Keep { .. })
    }

    #[test]
    fn a_running_holder_keeps_the_lock_however_old() {
        for age in [0, 60, 86_400 * 3] {
            assert!(kept(takeover(&lock(), &HolderStatus::Running, at(age))));
        }
        let redriven = HolderStatus::from_status(Some("PENDING_REDRIVE".into()));
        assert!(kept(takeover(&lock(), &redriven, at(5))));
    }

    #[test]
    fn a_closed_holder_is_stale_at_once() {
        for status in ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] {
            let t = takeover(
                &lock(),
                &HolderStatus::from_status(Some(status.into())),
                at(1),
            );
            match t {
                Takeover::TakeOver { reason } => assert!(reason.contains(status), "{reason}"),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_holder_is_being_started_until_the_grace_ends() {
        let grace = START_GRACE.as_secs() as i64;
        assert!(kept(takeover(&lock(), &HolderStatus::Missing, at(0))));
        assert!(kept(takeover(
            &lock(),
            &HolderStatus::Missing,
            at(grace - 1)
        )));
        // A clock behind the writer's is "just locked", never stale.
        assert!(kept(takeover(&lock(), &HolderStatus::Missing, at(-30))));
        match takeover(&lock(), &HolderStatus::Missing, at(grace)) {
            Takeover::TakeOver { reason } => assert!(reason.contains("never started"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_item_round_trips_and_foreign_items_have_no_holder() {
        let l = lock();
        let item = l.to_item();
        assert_eq!(item[KEY_ATTRIBUTE], KEY);
        assert_eq!(item["started_at"], "2027-01-15T08:00:00.000Z");
        assert_eq!(LockRecord::from_item(&item), Some(l));
        let foreign = Item::from([(KEY_ATTRIBUTE.to_string(), KEY.to_string())]);
        assert_eq!(LockRecord::from_item(&foreign), None);
    }

    #[test]
    fn conditions_compare_the_holder() {
        let c = free_or_mine("me");
        assert_eq!(c.expression, "attribute_not_exists(#lock) OR #holder = :me");
        assert_eq!(c.values, vec![(":me".to_string(), "me".to_string())]);
        let c = held_by("stale");
        assert_eq!(c.expression, "#holder = :stale_holder");
        assert_eq!(
            c.values,
            vec![(":stale_holder".to_string(), "stale".to_string())]
        );
    }

    #[test]
    fn the_losers_reason_names_holder_and_table() {
        let r = held_reason("pl-lock", &lock(), "x is RUNNING");
        assert!(
            r.starts_with(
                "flow already running: failover-20270115T080000Z-00ff00ff00ff00ff (lock pl-lock)"
            ),
            "{r}"
        );
    }
}
