//! Thin adapters over the AWS SDK, one module per service: the calls pilotlight makes and the conversion of their
//! answers to plain views. What a step concludes from those views lives in the step, not here.

pub mod autoscaling;
pub mod backup;
pub mod clients;
pub mod cloudwatch;
pub mod dynamodb;
pub mod elbv2;
pub mod globalaccelerator;
pub mod lambda;
pub mod rds;
pub mod route53;
pub mod sns;
pub mod ssm;
pub mod stepfunctions;

use chrono::{DateTime, Utc};

/// An SDK timestamp as chrono's.
pub fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// A chrono timestamp as the SDK's.
pub fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}
