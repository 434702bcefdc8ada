//! pilotlight: failover orchestration for a pilot-light DR setup on AWS.
//!
//! * [`steps`]: one module per Lambda step, named for what it does (`detect`, `promote_db`, `scale_compute`,
//!   `shift_traffic`, `update_dns`, `notify`; and `probe`, which watches the primary from the DR region). Each
//!   keeps its pure decisions apart from the I/O around them, and no step reaches into another step.
//! * [`aws`]: thin adapters, one per AWS service: SDK calls and their conversion to plain views, no step logic.
//! * [`flow`]: the flows defined once; the state machine, notify's approval text and the report's phases come from
//!   it.
//! * [`readiness`]: is the standby ready to take over now? Pure verdicts over what is read (docs/readiness.md).
//! * Shared domain: [`plan`] (the failover plan), [`trigger`] (alarm event shapes, manual commands), [`step`] (the
//!   step input/report contract), [`routing`] (Global Accelerator dials and Route 53 health-check flags, which
//!   several steps read), [`timestamp`], [`error`], [`metrics`] (CloudWatch Embedded Metric Format lines), and
//!   [`runtime`] (the Lambda glue).
//! * [`operator`]: the operator's side (the `pilotlight` CLI): status, dry-run plan, live progress, reports.
//!
//! The Lambda crates in `functions/` are one call each: `runtime::serve(steps::<step>::handle)`.

pub mod aws;
pub mod error;
pub mod fence;
pub mod flow;
pub mod metrics;
pub mod operator;
pub mod permissions;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod routing;
pub mod runtime;
pub mod step;
pub mod steps;
pub mod timestamp;
pub mod trigger;

pub use error::{Error, ErrorKind, Result};
pub use plan::FailoverPlan;
pub use runtime::Context;
