//! AWS clients, built once per Lambda cold start from one place. Endpoints come from the SDK's own
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (how tests and the drill reach emulators); regions and
//! timeouts come from the plan. Global Accelerator's control plane exists only in us-west-2; Route 53 is global.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::plan::{FailoverPlan, RegionPlan, Side, arn_region};

pub use crate::plan::GLOBAL_ACCELERATOR_API_REGION;

/// Builds one service client for `region` with the given timeouts, on top of the shared loader config.
macro_rules! regional {
    ($sdk:ident, $base:expr, $region:expr, $timeouts:expr, $retries:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($base)
                .region(Region::new($region.to_string()))
                .timeout_config($timeouts.clone())
                .retry_config($retries.clone())
                .build(),
        )
    };
}

/// Clients for one region of the plan.
#[derive(Clone, Debug)]
pub struct RegionClients {
    pub region: String,
    pub rds: aws_sdk_rds::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub backup: aws_sdk_backup::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl RegionClients {
    fn new(base: &SdkConfig, plan: &RegionPlan, retries: &RetryConfig) -> Self {
        let t = timeouts(plan);
        let r = &plan.region;
        RegionClients {
            region: r.clone(),
            rds: regional!(aws_sdk_rds, base, r, t, retries),
            autoscaling: regional!(aws_sdk_autoscaling, base, r, t, retries),
            elbv2: regional!(aws_sdk_elasticloadbalancingv2, base, r, t, retries),
            ssm: regional!(aws_sdk_ssm, base, r, t, retries),
            backup: regional!(aws_sdk_backup, base, r, t, retries),
            cloudwatch: regional!(aws_sdk_cloudwatch, base, r, t, retries),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub primary: RegionClients,
    pub dr: RegionClients,
    /// CloudWatch in each region the plan's alarms live in (detect's quorum re-read), in plan order.
    pub alarms: Vec<(String, aws_sdk_cloudwatch::Client)>,
    pub global_accelerator: aws_sdk_globalaccelerator::Client,
    pub route53: aws_sdk_route53::Client,
    /// SNS in the operators' topic region.
    pub sns: aws_sdk_sns::Client,
    /// Step Functions in the state machine's region (the DR region in the reference setup).
    pub sfn: aws_sdk_sfn::Client,
    /// DynamoDB beside the state machine (the stack's flow lock table, detect's lock).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Lambda beside the state machine (the stack's functions: readiness reads their configuration).
    pub lambda: aws_sdk_lambda::Client,
}

impl AwsClients {
    /// Loads the shared SDK config (credentials, endpoint overrides) once and derives every client from it.
    pub async fn new(plan: &FailoverPlan) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_sdk_config(&base, plan)
    }

    pub fn from_sdk_config(base: &SdkConfig, plan: &FailoverPlan) -> Self {
        // The region being left may be the failed one: two short attempts at most, so a dead endpoint costs seconds.
        let primary_retries = RetryConfig::standard().with_max_attempts(2);
        let dr_retries = RetryConfig::standard().with_max_attempts(3);
        let dr_t = timeouts(&plan.dr);
        let primary_t = timeouts(&plan.primary);
        let sns_region = arn_region(&plan.sns_topic_arn)
            .unwrap_or(&plan.dr.region)
            .to_string();
        let sfn_region = plan
            .state_machine_arn
            .as_deref()
            .and_then(arn_region)
            .unwrap_or(&plan.dr.region)
            .to_string();
        AwsClients {
            primary: RegionClients::new(base, &plan.primary, &primary_retries),
            dr: RegionClients::new(base, &plan.dr, &dr_retries),
            // An alarm region other than DR may be the failing one: the primary's short timeouts and retries.
            alarms: plan
                .alarms
                .regions()
                .into_iter()
                .map(|region| {
                    let client = if region == plan.dr.region {
                        regional!(aws_sdk_cloudwatch, base, region, dr_t, dr_retries)
                    } else {
                        regional!(aws_sdk_cloudwatch, base, region, primary_t, primary_retries)
                    };
                    (region.to_string(), client)
                })
                .collect(),
            global_accelerator: regional!(
                aws_sdk_globalaccelerator,
                base,
                GLOBAL_ACCELERATOR_API_REGION,
                dr_t,
                dr_retries
            ),
            // Route 53's API is global (us-east-1 signing); the SDK resolves its endpoint from any region.
            route53: regional!(aws_sdk_route53, base, "us-east-1", dr_t, dr_retries),
            sns: regional!(aws_sdk_sns, base, sns_region, dr_t, dr_retries),
            sfn: regional!(aws_sdk_sfn, base, sfn_region, dr_t, dr_retries),
            dynamodb: regional!(aws_sdk_dynamodb, base, sfn_region, dr_t, dr_retries),
            lambda: regional!(aws_sdk_lambda, base, sfn_region, dr_t, dr_retries),
        }
    }

    pub fn region(&self, side: Side) -> &RegionClients {
        match side {
            Side::Primary => &self.primary,
            Side::Dr => &self.dr,
        }
    }
}

/// Connect and read timeouts per attempt, and the whole call (every attempt and backoff) bounded by the plan's
/// operation timeout: a black-holed endpoint costs at most that, never attempts x (connect + read).
fn timeouts(plan: &RegionPlan) -> TimeoutConfig {
    let attempt = (plan.connect_timeout + plan.read_timeout).min(plan.operation_timeout);
    TimeoutConfig::builder()
        .connect_timeout(plan.connect_timeout.min(attempt))
        .read_timeout(plan.read_timeout.min(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(plan.operation_timeout)
        .build()
}
