//! The dial sequence shift-traffic walks (pure): one plan step per `start`, straight to the end when ungraceful, and
//! the drain that stops writes before a graceful promotion.

use crate::plan::{Direction, Mode};
use crate::routing::Dials;

/// The dials after one shift step (pure; see the module tests for the sequences).
///
/// Progress is the share the target is sure to get: `min(target, 100 - source)`. The next plan step above it
/// becomes the new share: the target dial is raised to it (never lowered) and the source dial lowered to
/// `100 - step` (never raised). With the usual complementary dials (e.g. 30/70) this is exactly "target := next
/// step above its dial, source := 100 - that"; with odd states (both 100, both 0) it still ramps one step at a
/// time and never sends more traffic to the side being left. The new target dial is at least the first plan
/// step (> 0), so the step never leaves both dials at 0; from the 0/0 that `drain` may leave it goes to
/// first step / 0.
///
/// Ungraceful (the source region is down) goes straight to the final dials: stepping would only delay recovery,
/// since Global Accelerator's own health checks already send no traffic to a region whose endpoints fail, so a
/// partial dial on the dead side protects nobody, and there is nothing healthy left to compare the DR against.
pub fn next_dials(current: Dials, direction: Direction, mode: Mode, steps: &[i32]) -> Dials {
    let (t, s) = (direction.target(), direction.source());
    let (target_now, source_now) = (current.get(t).clamp(0, 100), current.get(s).clamp(0, 100));
    let step = match mode {
        Mode::Ungraceful => 100,
        Mode::Graceful => {
            let progress = target_now.min(100 - source_now);
            steps
                .iter()
                .copied()
                .find(|&p| p > progress && p <= 100)
                .unwrap_or(100)
        }
    };
    current
        .with(t, target_now.max(step))
        .with(s, source_now.min(100 - step))
}

/// Every dial setting from `current` (excluded) to the final one, one step per `start`: what a dry-run shows.
pub fn dial_path(current: Dials, direction: Direction, mode: Mode, steps: &[i32]) -> Vec<Dials> {
    let mut path = Vec::new();
    let mut at = current;
    // Progress strictly increases through the plan's steps, so this ends within steps.len() + 1 moves.
    while !at.is_final(direction) && path.len() <= steps.len() {
        at = next_dials(at, direction, mode, steps);
        path.push(at);
    }
    path
}

/// The dials after draining (pure): the source dial at 0, the target dial as it is.
///
/// This is the one place both dials may end at 0, on purpose: the graceful flows (graceful failover, every
/// failback) stop client writes to the source database before promoting the target, so the catch-up can reach
/// lag 0 and nothing written to the old writer is lost. A short full outage is the price of zero data loss; the
/// following `start` ramps the target up from there (see [`next_dials`], which never raises the source).
pub fn drained_dials(current: Dials, direction: Direction) -> Dials {
    current.with(direction.source(), 0)
}

/// The dial the source region gets back when a graceful flow rolls back: 100, the active side's dial.
///
/// Not "the value the drain saw before": the state keeps only the drain's latest call, and a retried drain saw
/// its own 0; a drain that failed half-way left no report at all. 100 is what the source served with before every
/// graceful flow of a pilot-light setup, and restoring more than it had is harmless (it still holds the writer).
pub const RESTORED_SOURCE_DIAL: i32 = 100;

/// The dials after a rollback (pure): the source dial back to [`RESTORED_SOURCE_DIAL`], the target's as it is
/// (the drain never touched it, and raising the source never needs lowering the target). Idempotent.
pub fn restored_dials(current: Dials, direction: Direction) -> Dials {
    current.with(direction.source(), RESTORED_SOURCE_DIAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[i32] = &[25, 50, 100];

    fn d(primary: i32, dr: i32) -> Dials {
        Dials { primary, dr }
    }

    fn never_both_zero(path: &[Dials]) {
        assert!(path.iter().all(|x| x.primary > 0 || x.dr > 0), "{path:?}");
    }

    #[test]
    fn graceful_failover_walks_the_plan_steps() {
        let path = dial_path(d(100, 0), Direction::Failover, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(75, 25), d(50, 50), d(0, 100)]);
        never_both_zero(&path);
    }

    #[test]
    fn graceful_failback_swaps_the_roles() {
        let path = dial_path(d(0, 100), Direction::Failback, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(25, 75), d(50, 50), d(100, 0)]);
        never_both_zero(&path);
    }

    #[test]
    fn other_step_plans() {
        assert_eq!(
            dial_path(d(100, 0), Direction::Failover, Mode::Graceful, &[100]),
            vec![d(0, 100)]
        );
        assert_eq!(
            dial_path(
                d(100, 0),
                Direction::Failover,
                Mode::Graceful,
                &[10, 20, 50, 100]
            ),
            vec![d(90, 10), d(80, 20), d(50, 50), d(0, 100)]
        );
        assert_eq!(
            dial_path(
                d(100, 0),
                Direction::Failover,
                Mode::Graceful,
                &[1, 99, 100]
            ),
            vec![d(99, 1), d(1, 99), d(0, 100)]
        );
    }

    #[test]
    fn odd_starting_points_join_the_next_step() {
        // DR at 30, primary at 70: the next step above 30 is 50.
        assert_eq!(
            next_dials(d(70, 30), Direction::Failover, Mode::Graceful, STEPS),
            d(50, 50)
        );
        assert_eq!(
            next_dials(d(30, 70), Direction::Failover, Mode::Graceful, STEPS),
            d(0, 100)
        );
        assert_eq!(
            next_dials(d(75, 25), Direction::Failover, Mode::Graceful, STEPS),
            d(50, 50)
        );
        // Both at 100 (DR dial left up): ramp the primary down a step at a time, never lowering the DR.
        assert_eq!(
            dial_path(d(100, 100), Direction::Failover, Mode::Graceful, STEPS),
            vec![d(75, 100), d(50, 100), d(0, 100)]
        );
        // Both at 0 (nothing serves): the first step gives the target traffic, the source is never raised.
        let path = dial_path(d(0, 0), Direction::Failover, Mode::Graceful, STEPS);
        assert_eq!(path, vec![d(0, 25), d(0, 50), d(0, 100)]);
        // The source dial is never raised, even when it is below 100 - step.
        assert_eq!(
            next_dials(d(10, 0), Direction::Failover, Mode::Graceful, STEPS),
            d(10, 25)
        );
    }

    #[test]
    fn drain_zeroes_the_source_only() {
        assert_eq!(drained_dials(d(100, 0), Direction::Failover), d(0, 0));
        assert_eq!(drained_dials(d(100, 30), Direction::Failover), d(0, 30));
        assert_eq!(drained_dials(d(0, 100), Direction::Failback), d(0, 0));
        assert_eq!(drained_dials(d(20, 100), Direction::Failback), d(20, 0));
        // Idempotent: a drained state drains to itself.
        for x in [d(0, 0), d(0, 100), d(40, 0)] {
            for dir in [Direction::Failover, Direction::Failback] {
                let once = drained_dials(x, dir);
                assert_eq!(drained_dials(once, dir), once);
            }
        }
    }

    #[test]
    fn restore_undoes_the_drain_and_only_raises_the_source() {
        for direction in [Direction::Failover, Direction::Failback] {
            let (t, s) = (direction.target(), direction.source());
            for before in [d(100, 0), d(0, 100), d(60, 40), d(100, 100)] {
                let drained = drained_dials(before, direction);
                let restored = restored_dials(drained, direction);
                assert_eq!(restored.get(s), 100, "{direction:?} {before:?}");
                assert_eq!(
                    restored.get(t),
                    before.get(t),
                    "the target dial is left alone"
                );
                assert_eq!(restored_dials(restored, direction), restored, "idempotent");
            }
        }
        // The usual graceful failover: 100/0 drained to 0/0, restored to 100/0.
        assert_eq!(restored_dials(d(0, 0), Direction::Failover), d(100, 0));
        assert_eq!(restored_dials(d(0, 0), Direction::Failback), d(0, 100));
    }

    #[test]
    fn start_after_drain_ramps_the_target_from_zero_and_never_raises_the_source() {
        for direction in [Direction::Failover, Direction::Failback] {
            let (t, s) = (direction.target(), direction.source());
            let drained = drained_dials(
                Dials {
                    primary: 100,
                    dr: 100,
                }
                .with(t, 0),
                direction,
            );
            assert_eq!(drained, d(0, 0));
            let first = next_dials(drained, direction, Mode::Graceful, STEPS);
            assert_eq!((first.get(t), first.get(s)), (25, 0), "{direction:?}");
            let path = dial_path(drained, direction, Mode::Graceful, STEPS);
            assert_eq!(
                path.iter()
                    .map(|x| (x.get(t), x.get(s)))
                    .collect::<Vec<_>>(),
                vec![(25, 0), (50, 0), (100, 0)],
                "{direction:?}"
            );
            // A forced (ungraceful) failback after the drain goes straight to the final dials.
            assert_eq!(
                dial_path(drained, direction, Mode::Ungraceful, STEPS),
                vec![d(0, 0).with(t, 100)]
            );
            // Drained with the target already partly up: it keeps rising, the source stays at 0.
            let partly = drained_dials(d(60, 60), direction);
            let path = dial_path(partly, direction, Mode::Graceful, STEPS);
            assert!(
                path.iter().all(|x| x.get(s) == 0 && x.get(t) >= 60),
                "{path:?}"
            );
            assert!(path.last().unwrap().is_final(direction));
        }
    }

    #[test]
    fn already_final_is_a_no_op() {
        assert_eq!(
            next_dials(d(0, 100), Direction::Failover, Mode::Graceful, STEPS),
            d(0, 100)
        );
        assert_eq!(
            next_dials(d(0, 100), Direction::Failover, Mode::Ungraceful, STEPS),
            d(0, 100)
        );
        assert!(dial_path(d(0, 100), Direction::Failover, Mode::Graceful, STEPS).is_empty());
        assert!(dial_path(d(100, 0), Direction::Failback, Mode::Ungraceful, STEPS).is_empty());
        assert!(d(0, 100).is_final(Direction::Failover));
        assert!(!d(0, 100).is_final(Direction::Failback));
        assert!(!d(10, 100).is_final(Direction::Failover));
    }

    #[test]
    fn ungraceful_goes_straight_to_final() {
        assert_eq!(
            dial_path(d(100, 0), Direction::Failover, Mode::Ungraceful, STEPS),
            vec![d(0, 100)]
        );
        assert_eq!(
            dial_path(d(50, 50), Direction::Failback, Mode::Ungraceful, STEPS),
            vec![d(100, 0)]
        );
        assert_eq!(
            next_dials(d(0, 0), Direction::Failover, Mode::Ungraceful, STEPS),
            d(0, 100)
        );
    }

    #[test]
    fn never_both_zero_and_always_progress_from_any_start() {
        for direction in [Direction::Failover, Direction::Failback] {
            for mode in [Mode::Graceful, Mode::Ungraceful] {
                for steps in [STEPS, &[100][..], &[5, 10, 100][..], &[33, 66, 100][..]] {
                    for p in (0..=100).step_by(5) {
                        for r in (0..=100).step_by(5) {
                            let start = d(p, r);
                            let path = dial_path(start, direction, mode, steps);
                            assert!(
                                path.len() <= steps.len(),
                                "{start:?} {direction:?} {mode:?} {steps:?}: {path:?}"
                            );
                            assert!(
                                path.last().is_none_or(|x| x.is_final(direction)),
                                "{start:?} {path:?}"
                            );
                            never_both_zero(&path);
                            let mut prev = start;
                            for x in &path {
                                let (t, s) = (direction.target(), direction.source());
                                // Each start raises the target (or keeps it) and lowers the source (or keeps it).
                                assert!(
                                    x.get(t) >= prev.get(t) && x.get(s) <= prev.get(s),
                                    "{prev:?} -> {x:?}"
                                );
                                assert_ne!(*x, prev);
                                prev = *x;
                            }
                        }
                    }
                }
            }
        }
    }
}
