//! `pilotlight readiness`: is the standby ready to take over now? The readiness check set (`pilotlight::readiness`,
//! docs/readiness.md) evaluated from live reads, read-only (the scheduled readiness function is the one that stores
//! verdicts and tells the operators). Exit status 0 all pass, 1 a warning, 2 a failure.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

use pilotlight::aws::lambda::function_config;
use pilotlight::readiness::{ReadinessTargets, evaluate};

use crate::connect::{AwsArgs, Session};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// The deployed readiness function (name or ARN): the stack's resources (state machine, topic, lock table, every
    /// function) are read from its configuration. Without it, from the plan, with detect as the only function.
    #[arg(long, value_name = "FUNCTION", env = "PILOTLIGHT_READINESS_FUNCTION")]
    readiness_function: Option<String>,
    /// The verdicts as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let targets = match a
        .readiness_function
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        Some(f) => {
            let env: HashMap<String, String> = function_config(&s.lambda, f)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                        "no Lambda function {f} in this region: name the deployed readiness function (stack output \
                         ReadinessFunctionArn) with --readiness-function, or leave it out"
                    )
                })?
                .environment
                .into_iter()
                .collect();
            ReadinessTargets::from_map(&env)
        }
        None => {
            let functions: BTreeMap<String, String> = s
                .detect
                .iter()
                .map(|d| ("detect".to_string(), d.clone()))
                .collect();
            ReadinessTargets::from_plan(&s.ctx.plan, functions)
        }
    };
    let readiness = evaluate(&s.ctx.aws, &s.ctx.plan, &targets).await;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&readiness).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", readiness.table());
    }
    Ok(ExitCode::from(readiness.exit_code()))
}
