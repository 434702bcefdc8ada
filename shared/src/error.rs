//! The one error type. Its `kind` becomes the Lambda `errorType`, which the state machine's Retry/Catch match on
//! (see docs/contract.md), so transient failures are retried and everything else is caught and reported.

use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts, connection failures: retry with backoff.
    Transient,
    /// The live state forbids the step (e.g. replica still backing up): an operator must look.
    Refused,
    /// A resource named by the plan does not exist.
    NotFound,
    /// The event or command is malformed, foreign or unknown; nothing was changed.
    InvalidInput,
    /// The plan (environment / plan file) is missing or malformed.
    Config,
    /// Any other AWS error (access denied, validation): not retried.
    Aws,
    /// An operator rejected the approval request (detect's `reject`, SendTaskFailure); nothing was changed.
    Rejected,
    /// A state machine loop gave up: the step never reported done within `$.timing.max_polls` calls.
    PollLimitExceeded,
    /// Nobody answered the approval request within the approval timeout; nothing was changed.
    ApprovalTimeout,
    /// The preflight found something a later step would refuse, and the run stopped before changing anything.
    PreflightFindings,
}

impl ErrorKind {
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorKind::Transient => "pilotlight.Transient",
            ErrorKind::Refused => "pilotlight.Refused",
            ErrorKind::NotFound => "pilotlight.NotFound",
            ErrorKind::InvalidInput => "pilotlight.InvalidInput",
            ErrorKind::Config => "pilotlight.Config",
            ErrorKind::Aws => "pilotlight.AwsError",
            ErrorKind::Rejected => "pilotlight.Rejected",
            ErrorKind::PollLimitExceeded => "pilotlight.PollLimitExceeded",
            ErrorKind::ApprovalTimeout => "pilotlight.ApprovalTimeout",
            ErrorKind::PreflightFindings => "pilotlight.PreflightFindings",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Transient,
        ErrorKind::Refused,
        ErrorKind::NotFound,
        ErrorKind::InvalidInput,
        ErrorKind::Config,
        ErrorKind::Aws,
        ErrorKind::Rejected,
        ErrorKind::PollLimitExceeded,
        ErrorKind::ApprovalTimeout,
        ErrorKind::PreflightFindings,
    ];

    /// The kind a Lambda error answer's `errorType` names (the CLI reads detect's errors back).
    pub fn from_error_type(error_type: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.error_type() == error_type)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The AWS error code (e.g. `InvalidDBInstanceState`) when a service answered with an error: a step that knows
    /// what a code means for it (a state that changed since it was read) reclassifies the error.
    pub aws_code: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            aws_code: None,
        }
    }
    pub fn config(variable: &str, expected: impl fmt::Display) -> Self {
        Error::new(
            ErrorKind::Config,
            format!("plan variable {variable}: {expected}"),
        )
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Refused, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// For a `NotFound` error, says what the operator should check (e.g. the plan variable naming the resource).
    pub fn check_if_missing(mut self, what: &str) -> Self {
        if self.kind == ErrorKind::NotFound {
            self.message = format!("{}; check {what}", self.message);
        }
        self
    }

    /// Classifies an SDK error for `operation` on `resource`, keeping the service's code and message.
    pub fn aws<E>(operation: &str, resource: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let aws_code = err
            .as_service_error()
            .and_then(|e| e.code())
            .map(str::to_string);
        let (kind, detail) = match &err {
            SdkError::TimeoutError(_) => (ErrorKind::Transient, "timed out".to_string()),
            SdkError::DispatchFailure(f) => (
                ErrorKind::Transient,
                format!("could not reach the endpoint: {f:?}"),
            ),
            SdkError::ResponseError(_) => (ErrorKind::Transient, "unreadable response".to_string()),
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().unwrap_or("Unknown").to_string();
                let msg = ctx.err().message().unwrap_or("").to_string();
                (
                    classify(status, &code),
                    format!("{code}: {msg} (HTTP {status})"),
                )
            }
            other => (ErrorKind::Aws, format!("{other:?}")),
        };
        Error {
            aws_code,
            ..Error::new(kind, format!("{operation} on {resource} failed: {detail}"))
        }
    }
}

/// Maps an HTTP status and AWS error code to the retry class.
pub fn classify(status: u16, code: &str) -> ErrorKind {
    const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "PriorRequestNotComplete",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    ];
    if status >= 500 || status == 429 || THROTTLING.contains(&code) {
        ErrorKind::Transient
    } else if code.contains("NotFound") || code.starts_with("NoSuch") {
        ErrorKind::NotFound
    } else {
        ErrorKind::Aws
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind.error_type().to_string(),
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_transient() {
        assert_eq!(classify(400, "Throttling"), ErrorKind::Transient);
        assert_eq!(classify(503, "Anything"), ErrorKind::Transient);
        assert_eq!(classify(429, ""), ErrorKind::Transient);
    }

    #[test]
    fn not_found_codes_are_not_found() {
        assert_eq!(classify(404, "DBInstanceNotFound"), ErrorKind::NotFound);
        assert_eq!(
            classify(400, "EndpointGroupNotFoundException"),
            ErrorKind::NotFound
        );
        assert_eq!(classify(404, "NoSuchHealthCheck"), ErrorKind::NotFound);
        assert_eq!(classify(400, "AccessDenied"), ErrorKind::Aws);
    }

    #[test]
    fn diagnostic_carries_the_contract_error_type() {
        let d: lambda_runtime::Diagnostic = Error::refused("replica r1 is backing-up").into();
        assert_eq!(d.error_type, "pilotlight.Refused");
        assert!(d.error_message.contains("r1"));
    }
}
