//! Readiness against the emulators, through the real SDK: a whole pilot-light topology (an RDS replica and its
//! ReplicaLag, both Auto Scaling groups with launch templates, a DR recovery point, both endpoint groups, both
//! health checks, the operators' topic with a subscription, the lock table, every function with the plan, the state
//! machine deployed as the template substitutes it) evaluates to all pass; then one thing at a time is broken and
//! exactly that check fails, with the value seen.
//!
//! Emulators: moto (RDS, Auto Scaling, EC2 launch templates, Route 53, SNS, Lambda, Step Functions, DynamoDB),
//! ministack (CloudWatch), gapfill (Global Accelerator, Backup recovery points). moto lists an email subscription as
//! confirmed at once; AWS lists it with the SubscriptionArn `PendingConfirmation` until the address confirms it
//! (SNS API reference, ListSubscriptionsByTopic): the pending case is modelled with the fault proxy's rewrite.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use aws_config::{Region, SdkConfig};
use pilotlight::aws::clients::AwsClients;
use pilotlight::permissions::FUNCTIONS;
use pilotlight::plan::FailoverPlan;
use pilotlight::readiness::{Readiness, ReadinessTargets, Verdict, evaluate, function_variable};
use serde_json::json;

use common::faultproxy::FaultProxy;

const PRIMARY: &str = "ap-northeast-2";
const DR: &str = "ap-northeast-1";

fn client<C>(cfg: &SdkConfig, region: &str, build: impl Fn(&SdkConfig, Region) -> C) -> C {
    build(cfg, Region::new(region.to_string()))
}

macro_rules! sdk {
    ($sdk:ident, $cfg:expr, $region:expr) => {
        client($cfg, $region, |c, r| {
            $sdk::Client::from_conf($sdk::config::Builder::from(c).region(r).build())
        })
    };
}

/// The instance the recovery points back up (the plan's PILOTLIGHT_DR_AMI_SOURCE).
fn web_instance() -> String {
    format!(
        "arn:aws:ec2:{PRIMARY}:{}:instance/i-0123456789abcdef0",
        common::ACCOUNT
    )
}

/// The DR side's instance that the primary vault's recovery points back up (for a failback).
fn dr_web_instance() -> String {
    format!(
        "arn:aws:ec2:{DR}:{}:instance/i-0fedcba9876543210",
        common::ACCOUNT
    )
}

/// An AMI id nobody else uses (gapfill wants ami-<8..17 hex>).
fn unique_ami() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("ami-{:017x}", nanos ^ (u64::from(std::process::id()) << 40))
}

/// A Lambda execution role in moto's IAM (moto's CreateFunction refuses a role it does not know). IAM's Query API
/// over plain HTTP: the workspace has no IAM SDK crate.
fn lambda_role() -> String {
    let name = common::unique("readiness-role");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
        common::emulator_http::encode(policy)
    );
    let auth = common::emulator_http::unsigned_authorization("us-east-1", "iam");
    let (status, text) = common::emulator_http::request(
        &common::moto_url(),
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &auth),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "CreateRole: {text}");
    common::emulator_http::xml_field(&text, "Arn").expect("role ARN")
}

/// An empty zip archive (the end-of-central-directory record alone): code moto stores and never runs here.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// What one test seeded, and the plan and targets readiness runs with.
struct Topology {
    cfg: SdkConfig,
    vars: HashMap<String, String>,
    targets: ReadinessTargets,
    primary_db: String,
    replica: String,
    replica_arn: String,
    primary_endpoint_group: String,
    dr_endpoint_group: String,
    health_checks: Vec<String>,
    asgs: Vec<String>,
    topic_arn: String,
    state_machine_arn: String,
    /// Deployed function name by binary, and the environment each was given.
    functions: BTreeMap<String, (String, HashMap<String, String>)>,
}

struct Options {
    ami_age_hours: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options { ami_age_hours: 2 }
    }
}

impl Topology {
    async fn seed(o: Options) -> Topology {
        let cfg = common::sdk_config().await;
        let moto = common::moto_url();
        let id = common::unique("rd");

        // Database: the writer in the primary region, its cross-region replica in DR, a fresh ReplicaLag.
        let pair = common::rds::seed_pair(&cfg, &id, "db.t3.micro").await;
        common::rds::put_replica_lag_at(&cfg, DR, &pair.replica, 1.0, SystemTime::now()).await;

        // Compute: a launch template resolving the AMI parameter in each region, the primary group serving at
        // 2/2/4, the DR group the pilot light at 0/0/0; one COMPLETED recovery point of the source in the DR vault.
        let parameter = format!("/pilotlight/test/{id}/ami");
        let mut asg_names = Vec::new();
        for (region, cap) in [(PRIMARY, (2, 2, 4)), (DR, (0, 0, 0))] {
            let name = format!("{id}-asg-{region}");
            let template = format!("{name}-lt");
            common::emulator_http::create_launch_template(&moto, region, &template, &parameter);
            sdk!(aws_sdk_autoscaling, &cfg, region)
                .create_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .launch_template(
                    aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                        .launch_template_name(&template)
                        .version("$Latest")
                        .build(),
                )
                .min_size(cap.0)
                .desired_capacity(cap.1)
                .max_size(cap.2)
                .availability_zones(format!("{region}a"))
                .send()
                .await
                .unwrap();
            asg_names.push(name);
        }
        // Each vault holds a copy of the other side's instance (the primary's for a failback, after a failover).
        let vault = format!("{id}-vault-dr");
        let primary_vault = format!("{id}-vault-primary");
        for (region, v, source) in [
            (DR, &vault, web_instance()),
            (PRIMARY, &primary_vault, dr_web_instance()),
        ] {
            common::emulator_http::gapfill_admin(
                &common::gapfill_url(),
                "/_gapfill/backup/recovery-points",
                &json!({
                    "region": region,
                    "vault": v,
                    "resource_arn": source,
                    "image_id": unique_ami(),
                    "creation_date": (chrono::Utc::now() - chrono::Duration::hours(o.ami_age_hours)).to_rfc3339(),
                    "status": "COMPLETED",
                }),
            );
        }

        // Traffic and DNS: the primary serves (dials 100/0), a health check per side.
        let (primary_eg, dr_eg) = common::seed_endpoint_groups(&cfg, PRIMARY, DR, (100, 0)).await;
        let r53 = sdk!(aws_sdk_route53, &cfg, "us-east-1");
        let mut health_checks = Vec::new();
        for side in ["primary", "dr"] {
            let hc = r53
                .create_health_check()
                .caller_reference(common::unique(side))
                .health_check_config(
                    aws_sdk_route53::types::HealthCheckConfig::builder()
                        .r#type(aws_sdk_route53::types::HealthCheckType::Https)
                        .fully_qualified_domain_name(format!("{side}.example.com"))
                        .resource_path("/health")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            health_checks.push(hc.health_check().unwrap().id().to_string());
        }

        // Operators: the topic in DR with the on-call address subscribed.
        let (sns, topic_arn) = common::seed_topic(&cfg, DR, &format!("{id}-operators")).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("email")
            .endpoint("oncall@example.com")
            .send()
            .await
            .unwrap();
        let lock_table = common::create_lock_table(&cfg, DR).await;

        let mut vars = common::plan_vars(&[
            ("PILOTLIGHT_PRIMARY_DB_INSTANCE", pair.primary.clone()),
            ("PILOTLIGHT_DR_DB_INSTANCE", pair.replica.clone()),
            ("PILOTLIGHT_PRIMARY_ASG", asg_names[0].clone()),
            ("PILOTLIGHT_DR_ASG", asg_names[1].clone()),
            ("PILOTLIGHT_DR_BACKUP_VAULT", vault),
            ("PILOTLIGHT_DR_AMI_SOURCE", web_instance()),
            ("PILOTLIGHT_PRIMARY_BACKUP_VAULT", primary_vault),
            ("PILOTLIGHT_PRIMARY_AMI_SOURCE", dr_web_instance()),
            ("PILOTLIGHT_PRIMARY_AMI_PARAMETER", parameter.clone()),
            ("PILOTLIGHT_DR_AMI_PARAMETER", parameter),
            ("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN", primary_eg.clone()),
            ("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", dr_eg.clone()),
            (
                "PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID",
                health_checks[0].clone(),
            ),
            ("PILOTLIGHT_DR_HEALTH_CHECK_ID", health_checks[1].clone()),
            ("PILOTLIGHT_SNS_TOPIC_ARN", topic_arn.clone()),
            ("PILOTLIGHT_LOCK_TABLE", lock_table.clone()),
        ]);
        vars.remove("PILOTLIGHT_STATE_MACHINE_ARN");
        let t_primary_eg = primary_eg;

        // The functions: each with the plan (template.yaml's Globals), detect with its own two variables besides.
        let role = lambda_role();
        let lambda = sdk!(aws_sdk_lambda, &cfg, DR);
        let mut functions = BTreeMap::new();
        let mut arns = BTreeMap::new();
        let sm_name = format!("{id}-failover");
        let state_machine_arn = format!(
            "arn:aws:states:{DR}:{}:stateMachine:{sm_name}",
            common::ACCOUNT
        );
        for f in FUNCTIONS {
            let name = format!("{id}-{}", f.logical_id);
            let mut env = vars.clone();
            if f.binary == "detect" {
                env.insert(
                    "PILOTLIGHT_STATE_MACHINE_ARN".into(),
                    state_machine_arn.clone(),
                );
                env.insert("PILOTLIGHT_LOCK_TABLE".into(), lock_table.clone());
            }
            let created = lambda
                .create_function()
                .function_name(&name)
                .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                .role(&role)
                .handler("bootstrap")
                .code(
                    aws_sdk_lambda::types::FunctionCode::builder()
                        .zip_file(aws_sdk_lambda::primitives::Blob::new(EMPTY_ZIP.to_vec()))
                        .build(),
                )
                .environment(
                    aws_sdk_lambda::types::Environment::builder()
                        .set_variables(Some(env.clone()))
                        .build(),
                )
                .send()
                .await
                .unwrap();
            arns.insert(f.logical_id, created.function_arn().unwrap().to_string());
            functions.insert(f.binary.to_string(), (name, env));
        }

        // The state machine as the template deploys it: the committed definition with DefinitionSubstitutions
        // applied (each function's ARN, the lock table's ARN), substituted here independently of the product.
        let mut definition = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/statemachine/failover.asl.json"
        ))
        .unwrap();
        for (logical_id, arn) in &arns {
            definition = definition.replace(&format!("${{{logical_id}Arn}}"), arn);
        }
        definition = definition.replace(
            "${LockTableArn}",
            &format!(
                "arn:aws:dynamodb:{DR}:{}:table/{lock_table}",
                common::ACCOUNT
            ),
        );
        assert!(!definition.contains("${"), "every substitution applied");
        let created = sdk!(aws_sdk_sfn, &cfg, DR)
            .create_state_machine()
            .name(&sm_name)
            .definition(definition)
            .role_arn(&role)
            .send()
            .await
            .unwrap();
        assert_eq!(created.state_machine_arn(), state_machine_arn);

        vars.insert(
            "PILOTLIGHT_STATE_MACHINE_ARN".into(),
            state_machine_arn.clone(),
        );
        let mut target_vars = vars.clone();
        for (binary, (name, _)) in &functions {
            target_vars.insert(function_variable(binary), name.clone());
        }
        Topology {
            cfg,
            targets: ReadinessTargets::from_map(&target_vars),
            vars,
            primary_db: pair.primary,
            replica: pair.replica,
            replica_arn: pair.replica_arn,
            primary_endpoint_group: t_primary_eg,
            dr_endpoint_group: dr_eg,
            health_checks,
            asgs: asg_names,
            topic_arn,
            state_machine_arn,
            functions,
        }
    }

    fn plan(&self) -> FailoverPlan {
        FailoverPlan::from_map(&self.vars).expect("test plan must be valid")
    }

    async fn evaluate_with(&self, plan: &FailoverPlan, aws: &AwsClients) -> Readiness {
        evaluate(aws, plan, &self.targets).await
    }

    async fn evaluate(&self) -> Readiness {
        let plan = self.plan();
        let aws = AwsClients::from_sdk_config(&self.cfg, &plan);
        self.evaluate_with(&plan, &aws).await
    }
}

/// The checks that failed, by id.
fn failed(r: &Readiness) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect()
}

/// Exactly `id` failed; returns it.
fn only_failure<'a>(r: &'a Readiness, id: &str) -> &'a pilotlight::readiness::Check {
    assert_eq!(failed(r), [id], "{}", r.table());
    assert_eq!(r.exit_code(), 2);
    r.check(id).unwrap()
}

async fn healthy(o: Options) -> Topology {
    let t = Topology::seed(o).await;
    let r = t.evaluate().await;
    assert!(
        r.checks.iter().all(|c| c.verdict == Verdict::Pass),
        "the healthy topology passes every check:\n{}",
        r.table()
    );
    t
}

#[tokio::test]
async fn the_healthy_pilot_light_passes_every_check() {
    let t = Topology::seed(Options::default()).await;
    let r = t.evaluate().await;
    assert_eq!(r.exit_code(), 0, "{}", r.table());
    let ids: Vec<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "db.replica",
        "db.lag",
        "compute.ami.source",
        "compute.ami.found",
        "compute.ami.available",
        "compute.ami.age",
        "compute.asg.exists",
        "compute.asg.capacity",
        "compute.ami-parameter",
        "traffic.endpoint-group.primary",
        "traffic.endpoint-group.dr",
        "traffic.dials",
        "traffic.endpoints.primary",
        "traffic.endpoints.dr",
        "dns.health-check.primary",
        "dns.health-check.dr",
        "operators.topic",
        "operators.subscriptions",
        "deployment.state-machine",
        "deployment.functions",
        "deployment.lock",
    ] {
        assert!(ids.contains(&id), "{id} is evaluated: {ids:?}");
    }
    assert_eq!(r.standby, pilotlight::plan::Side::Dr);
    let table = r.table();
    println!("{table}"); // what `pilotlight readiness` prints (cargo test -- --nocapture)
    assert!(
        table.starts_with("readiness ") && table.contains("PASS (active: primary"),
        "{table}"
    );
    assert_eq!(
        r.check("operators.subscriptions").unwrap().seen,
        "1 confirmed, 0 pending"
    );
    assert_eq!(r.check("deployment.state-machine").unwrap().seen, "equal");
    // The JSON the readiness function and `pilotlight readiness --json` print.
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["active"]["side"], "primary");
    assert_eq!(v["checks"][0]["verdict"], "pass");
}

#[tokio::test]
async fn a_deleted_replica_fails_db_replica() {
    let t = healthy(Options::default()).await;
    // moto 5.2.5 deletes a cross-region replica, then answers HTTP 500 (it fails to unlink it from its source:
    // docs/emulators.md); the SDK's retry then sees DBInstanceNotFound. What counts is that it is gone.
    let deleted = sdk!(aws_sdk_rds, &t.cfg, DR)
        .delete_db_instance()
        .db_instance_identifier(&t.replica)
        .skip_final_snapshot(true)
        .send()
        .await;
    assert!(
        common::rds::describe(&t.cfg, DR, &t.replica)
            .await
            .is_none(),
        "the replica is deleted ({deleted:?})"
    );
    let r = t.evaluate().await;
    let c = only_failure(&r, "db.replica");
    assert_eq!(c.seen, "none", "{c:?}");
    assert!(c.detail.contains("not found"), "{c:?}");
    assert_eq!(
        r.check("db.lag").unwrap().verdict,
        Verdict::Warn,
        "not judged without a replica"
    );
}

#[tokio::test]
async fn a_recovery_point_too_old_fails_compute_ami_age() {
    // The copy jobs into the DR vault stopped 100 hours ago.
    let t = Topology::seed(Options { ami_age_hours: 100 }).await;
    let r = t.evaluate().await;
    let c = only_failure(&r, "compute.ami.age");
    assert_eq!((c.seen.as_str(), c.limit.as_deref()), ("100.0", Some("72")));
}

#[tokio::test]
async fn a_lowered_max_fails_compute_asg_capacity() {
    let t = healthy(Options::default()).await;
    // The DR side's max lowered to 1 while the primary group runs 2: the failover would come up short.
    let mut vars = t.vars.clone();
    vars.insert("PILOTLIGHT_DR_CAPACITY".into(), "1,1,1".into());
    let plan = FailoverPlan::from_map(&vars).unwrap();
    let aws = AwsClients::from_sdk_config(&t.cfg, &plan);
    let r = t.evaluate_with(&plan, &aws).await;
    let c = only_failure(&r, "compute.asg.capacity");
    assert_eq!(c.seen, "restores 1 (max 1), the primary runs 2");
}

#[tokio::test]
async fn a_deleted_endpoint_group_fails_its_check() {
    let t = healthy(Options::default()).await;
    sdk!(aws_sdk_globalaccelerator, &t.cfg, "us-west-2")
        .delete_endpoint_group()
        .endpoint_group_arn(&t.dr_endpoint_group)
        .send()
        .await
        .unwrap();
    let r = t.evaluate().await;
    let c = only_failure(&r, "traffic.endpoint-group.dr");
    assert!(
        c.seen.starts_with("error: ") && c.seen.contains("EndpointGroupNotFound"),
        "{c:?}"
    );
    assert_eq!(r.check("traffic.dials").unwrap().seen, "not judged");
}

#[tokio::test]
async fn a_topic_without_a_confirmed_subscription_fails_operators_subscriptions() {
    let t = healthy(Options::default()).await;
    // As AWS lists an email subscription whose address has not confirmed it.
    let proxy = FaultProxy::start(&common::moto_url());
    let subs = sdk!(aws_sdk_sns, &t.cfg, DR)
        .list_subscriptions_by_topic()
        .topic_arn(&t.topic_arn)
        .send()
        .await
        .unwrap();
    let arn = subs.subscriptions()[0]
        .subscription_arn()
        .unwrap()
        .to_string();
    proxy.set_rules(json!([{
        "service": "sns",
        "operation": "ListSubscriptionsByTopic",
        "fault": "rewrite",
        "find": format!("<SubscriptionArn>{arn}</SubscriptionArn>"),
        "replace": "<SubscriptionArn>PendingConfirmation</SubscriptionArn>",
    }]));
    let plan = t.plan();
    let mut aws = AwsClients::from_sdk_config(&t.cfg, &plan);
    aws.sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&t.cfg)
            .region(Region::new(DR))
            .endpoint_url(proxy.url())
            .build(),
    )
    .into();
    let r = t.evaluate_with(&plan, &aws).await;
    let c = only_failure(&r, "operators.subscriptions");
    assert_eq!(c.seen, "0 confirmed, 1 pending");
    assert!(c.detail.contains("PendingConfirmation"), "{c:?}");
}

#[tokio::test]
async fn a_topic_without_subscriptions_fails_operators_subscriptions() {
    let t = healthy(Options::default()).await;
    let sns = sdk!(aws_sdk_sns, &t.cfg, DR);
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(&t.topic_arn)
        .send()
        .await
        .unwrap();
    for s in subs.subscriptions() {
        sns.unsubscribe()
            .subscription_arn(s.subscription_arn().unwrap())
            .send()
            .await
            .unwrap();
    }
    let r = t.evaluate().await;
    let c = only_failure(&r, "operators.subscriptions");
    assert_eq!(c.seen, "0 confirmed, 0 pending");
}

#[tokio::test]
async fn an_edited_state_machine_fails_deployment_state_machine() {
    let t = healthy(Options::default()).await;
    let sfn = sdk!(aws_sdk_sfn, &t.cfg, DR);
    let deployed = sfn
        .describe_state_machine()
        .state_machine_arn(&t.state_machine_arn)
        .send()
        .await
        .unwrap();
    // Someone shortened the execution timeout in the console.
    let edited =
        deployed
            .definition()
            .replacen("\"TimeoutSeconds\": 86400", "\"TimeoutSeconds\": 3600", 1);
    assert_ne!(edited, deployed.definition());
    sfn.update_state_machine()
        .state_machine_arn(&t.state_machine_arn)
        .definition(edited)
        .send()
        .await
        .unwrap();
    let r = t.evaluate().await;
    let c = only_failure(&r, "deployment.state-machine");
    assert_eq!(c.seen, "/TimeoutSeconds: 3600 (expected 86400)");
}

#[tokio::test]
async fn functions_with_different_plans_fail_deployment_functions() {
    let t = healthy(Options::default()).await;
    // notify redeployed by hand with another AMI age limit.
    let (name, env) = &t.functions["notify"];
    let mut env = env.clone();
    env.insert("PILOTLIGHT_MAX_AMI_AGE_HOURS".into(), "24".into());
    sdk!(aws_sdk_lambda, &t.cfg, DR)
        .update_function_configuration()
        .function_name(name)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(env))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = t.evaluate().await;
    let c = only_failure(&r, "deployment.functions");
    assert!(
        c.seen.starts_with("PILOTLIGHT_MAX_AMI_AGE_HOURS: ") && c.seen.contains("notify=24"),
        "{c:?}"
    );
    assert!(c.seen.contains("detect=72"), "{c:?}");
}

/// After a failover: DR promoted and serving (dials 0/100, DNS forced to DR, DR compute up). Until the old primary
/// is fenced, the fence checks fail; once it is stopped and its group at 0/0/0, everything passes. An instance AWS
/// started again by itself (7 days after it was stopped) is writable again: `fence.old-writer` fails once more.
#[tokio::test]
async fn while_dr_serves_the_old_primary_must_stay_fenced() {
    let t = Topology::seed(Options::default()).await;
    let rds_dr = sdk!(aws_sdk_rds, &t.cfg, DR);
    rds_dr
        .promote_read_replica()
        .db_instance_identifier(&t.replica)
        .send()
        .await
        .unwrap();
    // promote-db's promotion record, which tells the new writer from a stale one.
    rds_dr
        .add_tags_to_resource()
        .resource_name(&t.replica_arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("pilotlight:promote-requested-at")
                .value(chrono::Utc::now().to_rfc3339())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ga = sdk!(aws_sdk_globalaccelerator, &t.cfg, "us-west-2");
    for (arn, dial) in [
        (&t.primary_endpoint_group, 0.0),
        (&t.dr_endpoint_group, 100.0),
    ] {
        ga.update_endpoint_group()
            .endpoint_group_arn(arn)
            .traffic_dial_percentage(dial)
            .send()
            .await
            .unwrap();
    }
    let r53 = sdk!(aws_sdk_route53, &t.cfg, "us-east-1");
    for (id, inverted) in [(&t.health_checks[0], true), (&t.health_checks[1], false)] {
        r53.update_health_check()
            .health_check_id(id)
            .disabled(true)
            .inverted(inverted)
            .send()
            .await
            .unwrap();
    }
    let dr_asg = sdk!(aws_sdk_autoscaling, &t.cfg, DR);
    dr_asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(&t.asgs[1])
        .min_size(2)
        .desired_capacity(2)
        .max_size(4)
        .send()
        .await
        .unwrap();

    let r = t.evaluate().await;
    assert_eq!(r.standby, pilotlight::plan::Side::Primary, "{}", r.table());
    let mut f = failed(&r);
    f.sort();
    assert!(
        f.contains(&"fence.old-writer") && f.contains(&"fence.asg"),
        "{}",
        r.table()
    );
    assert_eq!(r.check("fence.asg").unwrap().seen, "2/2/4");

    // Fenced, as promote-db's and scale-compute's fences leave it.
    sdk!(aws_sdk_rds, &t.cfg, PRIMARY)
        .stop_db_instance()
        .db_instance_identifier(&t.primary_db)
        .send()
        .await
        .unwrap();
    sdk!(aws_sdk_autoscaling, &t.cfg, PRIMARY)
        .update_auto_scaling_group()
        .auto_scaling_group_name(&t.asgs[0])
        .min_size(0)
        .desired_capacity(0)
        .max_size(0)
        .send()
        .await
        .unwrap();
    let r = t.evaluate().await;
    assert_eq!(failed(&r), Vec::<&str>::new(), "{}", r.table());
    assert_eq!(r.check("fence.old-writer").unwrap().verdict, Verdict::Pass);
    assert_eq!(
        r.check("dns.health-check.primary").unwrap().verdict,
        Verdict::Pass
    );

    // Seven days later AWS starts the stopped instance again by itself.
    sdk!(aws_sdk_rds, &t.cfg, PRIMARY)
        .start_db_instance()
        .db_instance_identifier(&t.primary_db)
        .send()
        .await
        .unwrap();
    let r = t.evaluate().await;
    let c = only_failure(&r, "fence.old-writer");
    assert!(c.seen.contains("writable=true"), "{c:?}");
}

/// Aurora (ministack): the DR cluster is a member of the global cluster and its AuroraGlobalDBRPOLag is fresh;
/// detached from the global cluster, `db.global-member` fails.
#[tokio::test]
async fn aurora_the_secondary_must_be_a_member_with_a_fresh_lag() {
    use pilotlight::readiness::db;
    let cfg = common::sdk_config_at(&common::ministack_url()).await;
    let g = common::rds::seed_global(&cfg, "rd-aurora").await;
    let ctx = common::rds::aurora_context(&cfg, &g);
    common::rds::put_global_lag_at(
        &cfg,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        800.0,
        SystemTime::now(),
    )
    .await;
    let judge = || async {
        let now = chrono::Utc::now();
        let seen = db::observe(&ctx.aws, &ctx.plan, pilotlight::plan::Side::Dr, now).await;
        db::checks(&ctx.plan, pilotlight::plan::Side::Dr, &seen, now)
    };
    let checks = judge().await;
    let verdicts: Vec<(&str, Verdict)> =
        checks.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("db.global-member", Verdict::Pass),
            ("db.lag", Verdict::Pass)
        ],
        "{checks:#?}"
    );
    common::rds::rds_in(&cfg, DR)
        .remove_from_global_cluster()
        .global_cluster_identifier(&g.id)
        .db_cluster_identifier(&g.dr_arn)
        .send()
        .await
        .expect("detach the DR cluster");
    let checks = judge().await;
    assert_eq!(checks[0].verdict, Verdict::Fail, "{checks:#?}");
    assert!(
        checks[0].seen.contains(&g.primary_arn) && !checks[0].seen.contains(&g.dr_arn),
        "{checks:#?}"
    );
}

/// The primary region down: every call to it hangs. Readiness of the DR side does not need it: the evaluation ends
/// within the primary's operation timeout and every check passes (what the primary would only have added is said
/// in the detail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_primary_region_neither_blocks_nor_fails_the_dr_side() {
    let t = healthy(Options::default()).await;
    let proxy = FaultProxy::start(&common::moto_url());
    proxy.set_rules(json!([{"region": PRIMARY, "fault": "blackhole"}]));
    let mut vars = t.vars.clone();
    vars.insert(
        "PILOTLIGHT_PRIMARY_OPERATION_TIMEOUT_MS".into(),
        "1500".into(),
    );
    let plan = FailoverPlan::from_map(&vars).unwrap();
    let mut aws = AwsClients::from_sdk_config(&t.cfg, &plan);
    // The primary region's moto services behind the black hole (CloudWatch is ministack, not read there).
    aws.primary.autoscaling = aws_sdk_autoscaling::Client::from_conf(
        aws.primary
            .autoscaling()
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    )
    .into();
    aws.primary.rds = aws_sdk_rds::Client::from_conf(
        aws.primary
            .rds()
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    )
    .into();
    let started = std::time::Instant::now();
    let r = t.evaluate_with(&plan, &aws).await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(6), "took {took:?}");
    assert_eq!(failed(&r), Vec::<&str>::new(), "{}", r.table());
    let capacity = r.check("compute.asg.capacity").unwrap();
    assert!(capacity.detail.contains("was not read"), "{capacity:?}");
    assert!(
        proxy.requests().iter().any(|q| q["region"] == PRIMARY),
        "the primary was asked"
    );
}
