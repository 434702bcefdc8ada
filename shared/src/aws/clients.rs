//! AWS clients, each built once, on first use, from one place. Endpoints come from the SDK's own
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (how tests and the drill reach emulators); regions and
//! timeouts come from the plan. Global Accelerator's control plane exists only in us-west-2; Route 53 is global.

use std::sync::OnceLock;

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

/// How the clients of one region (or one global API) are made: the loader config, the timeouts and the retries.
#[derive(Clone, Debug)]
struct Recipe {
    base: SdkConfig,
    timeouts: TimeoutConfig,
    retries: RetryConfig,
}

/// Accessors that build each client on first use and keep it: a cold start builds no client, and a function links
/// only the SDK crates whose accessor its step calls (the linker drops the others' construction code, which is most
/// of what an unused SDK crate costs). `self.<client>` is public so a test can put a client of its own in place.
macro_rules! lazy_clients {
    ($($(#[$doc:meta])* $name:ident: $sdk:ident in $region:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> &$sdk::Client {
                self.$name.get_or_init(|| {
                    let r = &self.$region.1;
                    regional!($sdk, &r.base, &self.$region.0, r.timeouts, r.retries)
                })
            }
        )*
    };
}

/// Clients for one region of the plan, each built on first use.
#[derive(Clone, Debug)]
pub struct RegionClients {
    pub region: String,
    recipe: (String, Recipe),
    pub rds: OnceLock<aws_sdk_rds::Client>,
    pub autoscaling: OnceLock<aws_sdk_autoscaling::Client>,
    pub elbv2: OnceLock<aws_sdk_elasticloadbalancingv2::Client>,
    pub ssm: OnceLock<aws_sdk_ssm::Client>,
    pub backup: OnceLock<aws_sdk_backup::Client>,
    pub cloudwatch: OnceLock<aws_sdk_cloudwatch::Client>,
}

impl RegionClients {
    fn new(base: &SdkConfig, plan: &RegionPlan, retries: &RetryConfig) -> Self {
        let recipe = Recipe {
            base: base.clone(),
            timeouts: timeouts(plan),
            retries: retries.clone(),
        };
        RegionClients {
            region: plan.region.clone(),
            recipe: (plan.region.clone(), recipe),
            rds: OnceLock::new(),
            autoscaling: OnceLock::new(),
            elbv2: OnceLock::new(),
            ssm: OnceLock::new(),
            backup: OnceLock::new(),
            cloudwatch: OnceLock::new(),
        }
    }

    lazy_clients! {
        rds: aws_sdk_rds in recipe;
        autoscaling: aws_sdk_autoscaling in recipe;
        elbv2: aws_sdk_elasticloadbalancingv2 in recipe;
        ssm: aws_sdk_ssm in recipe;
        backup: aws_sdk_backup in recipe;
        cloudwatch: aws_sdk_cloudwatch in recipe;
    }
}

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub primary: RegionClients,
    pub dr: RegionClients,
    /// CloudWatch in each region the plan's alarms live in (detect's quorum re-read), in plan order.
    pub alarms: OnceLock<Vec<(String, aws_sdk_cloudwatch::Client)>>,
    alarm_recipes: Vec<(String, Recipe)>,
    /// Global Accelerator's control plane (us-west-2 only), with the DR side's timeouts.
    global_accelerator_at: (String, Recipe),
    /// Route 53's API is global (us-east-1 signing); the SDK resolves its endpoint from any region.
    route53_at: (String, Recipe),
    /// The operators' topic region.
    sns_at: (String, Recipe),
    /// The state machine's region (the DR region in the reference setup): Step Functions, the stack's flow lock
    /// table (DynamoDB) and the stack's functions (Lambda).
    stack_at: (String, Recipe),
    pub global_accelerator: OnceLock<aws_sdk_globalaccelerator::Client>,
    pub route53: OnceLock<aws_sdk_route53::Client>,
    pub sns: OnceLock<aws_sdk_sns::Client>,
    pub sfn: OnceLock<aws_sdk_sfn::Client>,
    pub dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    pub lambda: OnceLock<aws_sdk_lambda::Client>,
}

/// The certificate authorities a function's AWS calls trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// Amazon Trust Services' roots, built in (`amazon-trust-services.pem`): they sign every AWS service endpoint.
    /// Nothing is read from disk at a cold start (the system's bundle is ~140 certificates parsed in ~7 ms, most of
    /// a cold start's CPU time, README "Performance"), and no other CA can vouch for an AWS endpoint.
    AmazonTrustServices,
    /// The system's roots, when the function's environment names a bundle (`SSL_CERT_FILE`): for egress through a
    /// TLS-inspecting proxy, whose CA the operator adds that way.
    System { cert_file: String },
}

/// Amazon Root CA 1-4 and Starfield Services Root CA G2, PEM.
pub const AMAZON_TRUST_SERVICES_PEM: &[u8] = include_bytes!("amazon-trust-services.pem");

impl TrustRoots {
    pub fn from_env(ssl_cert_file: Option<&str>) -> Self {
        match ssl_cert_file.map(str::trim) {
            Some(file) if !file.is_empty() => TrustRoots::System {
                cert_file: file.to_string(),
            },
            _ => TrustRoots::AmazonTrustServices,
        }
    }

    /// What is wrong with a named bundle that cannot be read, naming it and what to do; `None` when it can be.
    pub fn unreadable_bundle(&self) -> Option<String> {
        let TrustRoots::System { cert_file } = self else {
            return None;
        };
        std::fs::metadata(cert_file).err().map(|e| {
            format!(
                "SSL_CERT_FILE={cert_file} cannot be read ({e}): every AWS call will fail its TLS handshake; fix the \
                 path, or unset SSL_CERT_FILE to trust Amazon Trust Services' built-in roots"
            )
        })
    }

    /// The SDK's own hyper 1 + rustls (aws-lc) client, as its default one is built (proxy settings from the
    /// environment), with these roots.
    pub fn https_client(&self) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
        let store = match self {
            TrustRoots::AmazonTrustServices => {
                tls::TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_PEM)
            }
            TrustRoots::System { .. } => tls::TrustStore::default(),
        };
        let context = tls::TlsContext::builder()
            .with_trust_store(store)
            .build()
            .expect("a TLS context with a trust store and no server names always builds");
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        })
    }
}

impl AwsClients {
    /// A function's clients: loads the shared SDK config (credentials, endpoint overrides) once, with the trust
    /// roots of [`TrustRoots::from_env`]; every client derives from it.
    pub async fn new(plan: &FailoverPlan) -> Self {
        let roots = TrustRoots::from_env(std::env::var("SSL_CERT_FILE").ok().as_deref());
        if let Some(problem) = roots.unreadable_bundle() {
            // Every AWS call would then fail its TLS handshake: say which file, at start, once.
            tracing::error!("{problem}");
        }
        let base = aws_config::defaults(BehaviorVersion::latest())
            .http_client(roots.https_client())
            .load()
            .await;
        Self::from_sdk_config(&base, plan)
    }

    pub fn from_sdk_config(base: &SdkConfig, plan: &FailoverPlan) -> Self {
        // The region being left may be the failed one: two short attempts at most, so a dead endpoint costs seconds.
        let primary_retries = RetryConfig::standard().with_max_attempts(2);
        let dr_retries = RetryConfig::standard().with_max_attempts(3);
        let recipe = |region: &str, timeouts: TimeoutConfig, retries: &RetryConfig| {
            (
                region.to_string(),
                Recipe {
                    base: base.clone(),
                    timeouts,
                    retries: retries.clone(),
                },
            )
        };
        let dr = |region: &str| recipe(region, timeouts(&plan.dr), &dr_retries);
        let sns_region = arn_region(&plan.sns_topic_arn).unwrap_or(&plan.dr.region);
        let stack_region = plan
            .state_machine_arn
            .as_deref()
            .and_then(arn_region)
            .unwrap_or(&plan.dr.region);
        AwsClients {
            primary: RegionClients::new(base, &plan.primary, &primary_retries),
            dr: RegionClients::new(base, &plan.dr, &dr_retries),
            alarms: OnceLock::new(),
            // An alarm region other than DR may be the failing one: the primary's short timeouts and retries.
            alarm_recipes: plan
                .alarms
                .regions()
                .into_iter()
                .map(|region| {
                    if region == plan.dr.region {
                        dr(region)
                    } else {
                        recipe(region, timeouts(&plan.primary), &primary_retries)
                    }
                })
                .collect(),
            global_accelerator_at: dr(GLOBAL_ACCELERATOR_API_REGION),
            route53_at: dr("us-east-1"),
            sns_at: dr(sns_region),
            stack_at: dr(stack_region),
            global_accelerator: OnceLock::new(),
            route53: OnceLock::new(),
            sns: OnceLock::new(),
            sfn: OnceLock::new(),
            dynamodb: OnceLock::new(),
            lambda: OnceLock::new(),
        }
    }

    lazy_clients! {
        global_accelerator: aws_sdk_globalaccelerator in global_accelerator_at;
        route53: aws_sdk_route53 in route53_at;
        /// SNS in the operators' topic region.
        sns: aws_sdk_sns in sns_at;
        /// Step Functions in the state machine's region.
        sfn: aws_sdk_sfn in stack_at;
        /// DynamoDB beside the state machine (the stack's flow lock table, detect's lock).
        dynamodb: aws_sdk_dynamodb in stack_at;
        /// Lambda beside the state machine (the stack's functions: readiness reads their configuration).
        lambda: aws_sdk_lambda in stack_at;
    }

    /// CloudWatch in each region the plan's alarms live in, in plan order.
    pub fn alarms(&self) -> &[(String, aws_sdk_cloudwatch::Client)] {
        self.alarms.get_or_init(|| {
            self.alarm_recipes
                .iter()
                .map(|(region, r)| {
                    let client =
                        regional!(aws_sdk_cloudwatch, &r.base, region, r.timeouts, r.retries);
                    (region.clone(), client)
                })
                .collect()
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_built_in_roots_are_the_five_amazon_trust_services_cas() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM)
            .collect::<std::result::Result<_, _>>()
            .expect("PEM");
        assert_eq!(certs.len(), 5);
        let mut store = rustls::RootCertStore::empty();
        assert_eq!(store.add_parsable_certificates(certs), (5, 0));
        let text = String::from_utf8_lossy(AMAZON_TRUST_SERVICES_PEM);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(text.contains(&format!("CN = {name}")), "{name}");
        }
    }

    #[test]
    fn an_unreadable_named_bundle_is_reported_with_its_path() {
        let missing = TrustRoots::from_env(Some("/nonexistent/proxy-ca.pem"));
        let problem = missing
            .unreadable_bundle()
            .expect("a missing file is a problem");
        assert!(
            problem.contains("SSL_CERT_FILE=/nonexistent/proxy-ca.pem cannot be read"),
            "{problem}"
        );
        assert_eq!(TrustRoots::AmazonTrustServices.unreadable_bundle(), None);
        let here = TrustRoots::from_env(Some(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/aws/amazon-trust-services.pem"
        )));
        assert_eq!(here.unreadable_bundle(), None, "an existing file is fine");
    }

    #[test]
    fn a_named_bundle_selects_the_system_roots() {
        assert_eq!(TrustRoots::from_env(None), TrustRoots::AmazonTrustServices);
        assert_eq!(
            TrustRoots::from_env(Some(" ")),
            TrustRoots::AmazonTrustServices
        );
        assert_eq!(
            TrustRoots::from_env(Some("/opt/proxy-ca.pem")),
            TrustRoots::System {
                cert_file: "/opt/proxy-ca.pem".into()
            }
        );
    }
}
