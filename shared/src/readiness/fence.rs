//! Fencing, while DR serves (docs/guarantees.md "Fencing"): the old primary takes no writes
//! (`fence.old-writer`: promote-db's own `db.old-writer` verdict, which also catches the instance AWS starts again
//! by itself 7 days after it was stopped) and runs no instances (`fence.asg`: the primary group at 0/0/0). While
//! the primary serves there is nothing fenced to watch, and these checks are not listed. Reads of the primary are
//! the best-effort ones of [`super::db`] and [`super::compute`] (the standby is the primary while DR serves).

use crate::fence::FenceStatus;
use crate::plan::{FailoverPlan, Side};
use crate::step::Overrides;
use crate::steps::detect::decision::ActiveSide;
use crate::steps::promote_db::fence::{check_old_writer, decide_aurora_fence};
use crate::steps::scale_compute::capacity::PILOT_LIGHT;

use super::compute::ComputeSeen;
use super::db::DbSeen;
use super::{Check, Verdict};

const WRITER_LIMIT: &str = "not writable: stopped, or a read replica";

/// Pure.
pub fn checks(
    plan: &FailoverPlan,
    active: &ActiveSide,
    db: &DbSeen,
    compute: &ComputeSeen,
) -> Vec<Check> {
    if *active != ActiveSide::Dr {
        return Vec::new();
    }
    vec![old_writer(plan, db), asg(plan, compute)]
}

/// The old primary's database takes no writes. Pure.
pub fn old_writer(plan: &FailoverPlan, db: &DbSeen) -> Check {
    const ID: &str = "fence.old-writer";
    let (pid, did) = (
        plan.database.resource(Side::Primary),
        plan.database.resource(Side::Dr),
    );
    match db {
        DbSeen::Rds(rds) => {
            let writer = match &rds.dr {
                Ok(Some(w)) => w,
                Ok(None) => {
                    return Check::fail(
                        ID,
                        format!("writer {did} not found"),
                        WRITER_LIMIT,
                        "the DR writer was not found",
                    );
                }
                Err(e) => {
                    return Check::not_judged(
                        ID,
                        format!("the DR writer {did} could not be read (see db.replica): {e}"),
                        WRITER_LIMIT,
                    );
                }
            };
            match &rds.primary {
                Ok(old) => {
                    let c = Check::from_preflight(
                        "fence",
                        check_old_writer(old.as_ref(), writer, &Overrides::default()),
                    );
                    Check {
                        id: ID.to_string(),
                        ..c
                    }
                }
                Err(e) => Check::not_judged(
                    ID,
                    format!(
                        "the old writer {pid} ({}) could not be read (see db.replica): {e}",
                        plan.primary.region
                    ),
                    WRITER_LIMIT,
                ),
            }
        }
        DbSeen::Aurora { global, .. } => match global {
            Ok(Some(g)) => {
                let (status, detail) = decide_aurora_fence(g, pid, did);
                let verdict = if status == FenceStatus::AlreadyFenced {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                Check::new(
                    ID,
                    verdict,
                    status.as_str(),
                    Some(WRITER_LIMIT.to_string()),
                    detail,
                )
            }
            Ok(None) => Check::fail(
                ID,
                "global cluster not found",
                WRITER_LIMIT,
                "check PILOTLIGHT_GLOBAL_CLUSTER",
            ),
            Err(e) => Check::not_judged(
                ID,
                format!("the global cluster could not be read (see db.global-member): {e}"),
                WRITER_LIMIT,
            ),
        },
    }
}

/// The old primary's Auto Scaling group runs nothing: 0/0/0 (what the fence sets). Pure.
pub fn asg(plan: &FailoverPlan, compute: &ComputeSeen) -> Check {
    const ID: &str = "fence.asg";
    const LIMIT: &str = "0/0/0";
    let name = &plan.primary.asg;
    match &compute.group {
        Ok(Some(g)) if g.capacity == PILOT_LIGHT => {
            Check::pass(ID, "0/0/0", LIMIT, format!("{name} runs no instances"))
        }
        Ok(Some(g)) => Check::fail(
            ID,
            format!(
                "{}/{}/{}",
                g.capacity.min, g.capacity.desired, g.capacity.max
            ),
            LIMIT,
            format!(
                "the old primary group {name} still runs instances while DR serves: fence it (detect {{\"command\": \
                 \"fence\"}})"
            ),
        ),
        Ok(None) => Check::pass(
            ID,
            "not found",
            LIMIT,
            format!("{name} does not exist: nothing runs"),
        ),
        Err(e) => Check::not_judged(
            ID,
            format!(
                "{name} ({}) could not be read (see compute.asg.exists): {e}",
                plan.primary.region
            ),
            LIMIT,
        ),
    }
}
