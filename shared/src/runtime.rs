//! Lambda glue shared by every function: logging, the plan and clients built once per cold start, and error
//! mapping to the contract's error types. `functions/*/src/main.rs` is one call to [`serve`].

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::clients::AwsClients;
use crate::error::Result;
use crate::plan::FailoverPlan;

/// What every handler gets: the plan and the clients, built once.
pub struct Context {
    pub plan: FailoverPlan,
    pub aws: AwsClients,
}

impl Context {
    pub async fn from_env() -> Result<Self> {
        let plan = FailoverPlan::from_env()?;
        let aws = AwsClients::new(&plan).await;
        Ok(Context { plan, aws })
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time() // CloudWatch Logs timestamps every line
        .try_init();
}

/// Runs `handler` as the Lambda function. A bad plan does not crash-loop the cold start: every invocation is
/// answered with the `pilotlight.Config` error naming the variable, so the operator sees it where the alarm's
/// invocation failed, and nothing is called.
pub async fn serve<F, Fut>(handler: F) -> std::result::Result<(), lambda_runtime::Error>
where
    F: Fn(&'static Context, Value) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    init_tracing();
    let ctx: std::result::Result<&'static Context, crate::Error> = match Context::from_env().await {
        Ok(ctx) => Ok(Box::leak(Box::new(ctx))),
        Err(e) => {
            tracing::error!(error = %e, "plan rejected at start-up");
            Err(e)
        }
    };
    let (handler, ctx) = (&handler, &ctx);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result = match ctx {
            Ok(ctx) => handler(ctx, event.payload).await,
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = &result {
            tracing::error!(error_type = e.kind.error_type(), error = %e, "invocation failed");
        }
        result.map_err(Diagnostic::from)
    }))
    .await
}
