//! The failover steps, one module per Lambda function, named for what each does. A step reads the plan and the
//! live state through [`crate::aws`], decides with pure functions, acts, and reports what it saw and changed
//! ([`crate::step`]). Steps share domain types ([`crate::plan`], [`crate::routing`]), never each other's modules.

pub mod detect;
pub mod notify;
pub mod probe;
pub mod promote_db;
pub mod readiness;
pub mod scale_compute;
pub mod shift_traffic;
pub mod update_dns;
