//! What every AWS command shares: the credential chain (`--profile`, `--region`), the plan (`--plan FILE`, or read
//! back from the deployed detect function), and the clients built from them as the functions build theirs
//! (`aws::clients::AwsClients`: the plan's regions and timeouts, the SDK's `AWS_ENDPOINT_URL*` overrides).

use std::path::PathBuf;
use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use pilotlight::FailoverPlan;
use pilotlight::aws::clients::AwsClients;
use pilotlight::aws::lambda::function_config;
use pilotlight::aws::stepfunctions::{execution_arn, recent_executions};
use pilotlight::plan::arn_region;
use pilotlight::runtime::Context;

#[derive(clap::Args, Clone)]
pub struct AwsArgs {
    /// The named profile of the shared AWS config/credentials files (default: the usual credential chain).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The region of the deployed stack (detect, the state machine); default: the profile's or AWS_REGION.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The plan file (KEY=VALUE, as `check-plan` reads it). Default: the plan in the deployed detect function's
    /// configuration (--detect).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// The deployed detect function (name or ARN; the stack output DetectFunctionArn): where the plan is read from
    /// and where failover / failback / approve / reject are sent.
    #[arg(long, value_name = "FUNCTION", env = "PILOTLIGHT_DETECT_FUNCTION")]
    pub detect: Option<String>,
}

/// The command's runtime: the plan, the clients, and detect's name for the commands sent to it.
pub struct Session {
    pub ctx: Context,
    pub lambda: aws_sdk_lambda::Client,
    pub detect: Option<String>,
}

impl Session {
    pub async fn open(a: &AwsArgs) -> Result<Session, String> {
        let mut a = a.clone();
        a.detect = a.detect.filter(|d| !d.trim().is_empty());
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &a.profile {
            loader = loader.profile_name(p);
        }
        // detect's ARN names its region; else --region, else the chain's.
        let region = a
            .region
            .clone()
            .or_else(|| a.detect.as_deref().and_then(arn_region).map(str::to_string));
        if let Some(r) = &region {
            loader = loader.region(Region::new(r.clone()));
        }
        let base: SdkConfig = loader.load().await;
        let plan = match (&a.plan, &a.detect) {
            (Some(file), _) => FailoverPlan::from_file(file).map_err(|e| e.to_string())?,
            (None, Some(detect)) => {
                if base.region().is_none() {
                    return Err(format!(
                        "no region to find {detect} in: give --region (the stack's region, the plan's DR region), \
                         set AWS_REGION, or name detect by its ARN"
                    ));
                }
                let lambda = aws_sdk_lambda::Client::new(&base);
                let env: std::collections::HashMap<String, String> = function_config(&lambda, detect)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!(
                            "no Lambda function {detect} in this region: name the deployed detect function (stack \
                             output DetectFunctionArn) with --detect, or give the plan with --plan FILE"
                        )
                    })?
                    .environment
                    .into_iter()
                    .collect();
                FailoverPlan::from_map(&env).map_err(|e| {
                    format!("the plan in {detect}'s configuration is not valid ({e}): is it pilotlight's detect?")
                })?
            }
            (None, None) => {
                return Err(
                    "no plan: give --plan FILE, or name the deployed detect function with --detect NAME|ARN (or \
                     PILOTLIGHT_DETECT_FUNCTION; the stack output DetectFunctionArn)"
                        .to_string(),
                );
            }
        };
        // Lambda beside the stack: the region asked for, else the one the state machine lives in (the DR region).
        let lambda_region = region
            .or_else(|| base.region().map(|r| r.to_string()))
            .or_else(|| {
                plan.state_machine_arn
                    .as_deref()
                    .and_then(arn_region)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| plan.dr.region.clone());
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&base)
                .region(Region::new(lambda_region))
                .build(),
        );
        let aws = AwsClients::from_sdk_config(&base, &plan);
        Ok(Session {
            ctx: Context { plan, aws },
            lambda,
            detect: a.detect.clone(),
        })
    }

    pub fn detect(&self) -> Result<&str, String> {
        self.detect.as_deref().ok_or_else(|| {
            "this command is sent to the deployed detect function: name it with --detect NAME|ARN (or \
             PILOTLIGHT_DETECT_FUNCTION; the stack output DetectFunctionArn)"
                .to_string()
        })
    }

    pub fn state_machine(&self) -> Result<&str, String> {
        self.ctx.plan.state_machine_arn().map_err(|e| e.to_string())
    }

    /// An execution named by the operator (its ARN, or its name in this state machine), or by default the newest
    /// running one, else (unless `running_only`) the newest.
    pub async fn execution(
        &self,
        named: Option<&str>,
        running_only: bool,
    ) -> Result<String, String> {
        let sm = self.state_machine()?;
        if let Some(n) = named {
            return Ok(if n.starts_with("arn:") {
                n.to_string()
            } else {
                execution_arn(sm, n)
            });
        }
        let recent = recent_executions(self.ctx.aws.sfn(), sm)
            .await
            .map_err(|e| e.to_string())?;
        let pick = recent
            .iter()
            .find(|e| e.status == "RUNNING")
            .or(if running_only { None } else { recent.first() });
        pick.map(|e| execution_arn(sm, &e.name)).ok_or_else(|| {
            format!(
                "no {}execution of {sm}: name one, or start one with `pilotlight failover`",
                if running_only { "running " } else { "" }
            )
        })
    }
}

/// Runs an AWS command on a runtime of its own (the offline commands need none).
pub fn block_on(
    command: impl Future<Output = Result<ExitCode, String>>,
) -> Result<ExitCode, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(command)
}

/// The name at the end of an execution ARN.
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}
