//! Where traffic is meant to go, as the two AWS controls pilotlight turns express it: the Global Accelerator
//! traffic dials of the two endpoint groups and the Route 53 health-check flags of each side. Several steps read
//! these (detect judges the active side from the dials, scale-compute's reprotect checks the DR dial, notify's
//! approval text says what the health checks will be), so they live here rather than in one step.

use serde::Serialize;

use crate::plan::{Direction, Side};

/// Traffic dial percentages (0-100) of the two endpoint groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dials {
    pub primary: i32,
    pub dr: i32,
}

impl Dials {
    pub fn get(self, side: Side) -> i32 {
        match side {
            Side::Primary => self.primary,
            Side::Dr => self.dr,
        }
    }

    pub fn with(self, side: Side, percent: i32) -> Dials {
        match side {
            Side::Primary => Dials {
                primary: percent,
                ..self
            },
            Side::Dr => Dials {
                dr: percent,
                ..self
            },
        }
    }

    /// All traffic on the side `direction` moves to.
    pub fn is_final(self, direction: Direction) -> bool {
        self.get(direction.target()) == 100 && self.get(direction.source()) == 0
    }
}

/// The two UpdateHealthCheck flags update-dns drives.
///
/// Per the Route 53 API reference (UpdateHealthCheck): a *disabled* check is considered healthy whatever the
/// endpoint does ("Route 53 considers the status of the health check to always be healthy"), and "If you want to
/// stop routing traffic to a resource, change the value of Inverted" — a disabled *and* inverted check is therefore
/// always unhealthy. Forcing both sides makes the failover records answer the target no matter what the checkers
/// currently see of a half-dead source region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckFlags {
    pub disabled: bool,
    pub inverted: bool,
}

impl CheckFlags {
    /// Normal automatic checking: the status is what Route 53's checkers measure.
    pub const AUTOMATIC: CheckFlags = CheckFlags {
        disabled: false,
        inverted: false,
    };
    /// Disabled: always healthy, so the failover record for this side keeps answering.
    pub const FORCED_HEALTHY: CheckFlags = CheckFlags {
        disabled: true,
        inverted: false,
    };
    /// Disabled and inverted: always unhealthy, so Route 53 stops answering with this side.
    pub const FORCED_UNHEALTHY: CheckFlags = CheckFlags {
        disabled: true,
        inverted: true,
    };
}

/// The flags the health check of `side` must have once `direction` is complete.
///
/// Failover forces the DR healthy and the primary unhealthy. Failback returns *both* to automatic checking (the
/// pre-failover steady state): traffic then goes back to the PRIMARY record only while the primary's real check
/// passes, and falls back to DR by itself otherwise, which is what the failover records are for.
pub fn wanted_flags(direction: Direction, side: Side) -> CheckFlags {
    match direction {
        Direction::Failover if side == direction.target() => CheckFlags::FORCED_HEALTHY,
        Direction::Failover => CheckFlags::FORCED_UNHEALTHY,
        Direction::Failback => CheckFlags::AUTOMATIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Direction::{Failback, Failover};

    #[test]
    fn failover_forces_dr_healthy_and_primary_unhealthy() {
        assert_eq!(
            wanted_flags(Failover, Side::Dr),
            CheckFlags {
                disabled: true,
                inverted: false
            }
        );
        assert_eq!(
            wanted_flags(Failover, Side::Primary),
            CheckFlags {
                disabled: true,
                inverted: true
            }
        );
    }

    #[test]
    fn failback_restores_automatic_checking_on_both() {
        assert_eq!(wanted_flags(Failback, Side::Primary), CheckFlags::AUTOMATIC);
        assert_eq!(wanted_flags(Failback, Side::Dr), CheckFlags::AUTOMATIC);
    }

    #[test]
    fn the_target_is_never_forced_unhealthy() {
        for d in [Failover, Failback] {
            assert_ne!(wanted_flags(d, d.target()), CheckFlags::FORCED_UNHEALTHY);
        }
    }
}
