//! pilotlight: failover orchestration for a pilot-light DR setup on AWS.
//!
//! Pure decision logic (`plan`, `trigger`, `decision`, `step`) is separate from I/O: one module per AWS service the
//! orchestrator drives. The Lambda crates in `functions/` are thin wrappers over [`runtime::serve`].

pub mod autoscaling;
pub mod backup;
pub mod clients;
pub mod cloudwatch;
pub mod decision;
pub mod detect;
pub mod error;
pub mod flow;
pub mod globalaccelerator;
pub mod plan;
pub mod rds;
pub mod report;
pub mod route53;
pub mod runtime;
pub mod sns;
pub mod step;
pub mod stepfunctions;
pub mod trigger;

pub use error::{Error, ErrorKind, Result};
pub use plan::FailoverPlan;
pub use runtime::Context;
