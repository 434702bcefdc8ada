//! scale-compute against the emulators, through the real SDK: moto for Auto Scaling, SSM, ELBv2 and EC2 launch
//! templates; gapfill for Backup recovery points (no other emulator here lists them).
//!
//! moto quirks that matter here: instances are InService/Healthy and healthy in the target group at once (so
//! `status` is done right after `start`), and moto does not resolve `resolve:ssm:` (its instances report the literal
//! `resolve:ssm:<name>` as ImageId), so tests check the parameter itself, which is what AWS resolves at launch.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::Region;
use pilotlight::aws::clients::AwsClients;
use pilotlight::aws::ssm::AMI_DATA_TYPE;
use pilotlight::runtime::invoke;
use pilotlight::step::StepReport;
use pilotlight::steps::scale_compute::handle;
use pilotlight::{Context, Error, ErrorKind};
use serde_json::{Value, json};

const DR: &str = "ap-northeast-1";
const PRIMARY: &str = "ap-northeast-2";

/// One test's scale-compute resources in one region.
struct Site {
    region: &'static str,
    asg: String,
    vault: String,
    parameter: String,
    target_group_arn: Option<String>,
}

impl Site {
    /// Names only: nothing exists until `deploy`.
    fn named(region: &'static str) -> Self {
        let id = common::unique("sc");
        Site {
            region,
            asg: format!("{id}-asg"),
            vault: format!("{id}-vault"),
            parameter: format!("/pilotlight/test/{id}/ami"),
            target_group_arn: None,
        }
    }
}

/// Seeding clients for one region, independent of the product's (whose plan needs the seeded names first).
struct Seeder {
    asg: aws_sdk_autoscaling::Client,
    ssm: aws_sdk_ssm::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

async fn seeder(region: &str) -> Seeder {
    let base = common::sdk_config().await;
    let r = Region::new(region.to_string());
    Seeder {
        asg: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&base)
                .region(r.clone())
                .build(),
        ),
        ssm: aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&base)
                .region(r.clone())
                .build(),
        ),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&base)
                .region(r)
                .build(),
        ),
    }
}

/// What the region's IaC would have deployed: a launch template resolving the AMI parameter, a target group, the
/// Auto Scaling group at `capacity` attached to it, and (optionally) the parameter holding a stale AMI.
async fn deploy(site: &mut Site, capacity: (i32, i32, i32), stale_ami: Option<&str>) -> Seeder {
    let s = seeder(site.region).await;
    let moto = common::moto_url();
    let template = format!("{}-lt", site.asg);
    common::emulator_http::create_launch_template(&moto, site.region, &template, &site.parameter);
    let vpc = common::emulator_http::default_vpc(&moto, site.region);
    let tg = s
        .elbv2
        .create_target_group()
        .name(common::unique("tg"))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    s.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(&site.asg)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .version("$Latest")
                .build(),
        )
        .min_size(capacity.0)
        .desired_capacity(capacity.1)
        .max_size(capacity.2)
        .availability_zones(format!("{}a", site.region))
        .target_group_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    if let Some(ami) = stale_ami {
        s.ssm
            .put_parameter()
            .name(&site.parameter)
            .value(ami)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type(AMI_DATA_TYPE)
            .send()
            .await
            .unwrap();
    }
    site.target_group_arn = Some(tg_arn);
    s
}

/// An AMI id nobody else uses (gapfill requires ami-<8..17 hex>).
fn unique_ami() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let pid = u64::from(std::process::id());
    format!(
        "ami-{:017x}",
        (nanos ^ (pid << 44)).wrapping_add(N.fetch_add(1, Ordering::Relaxed) << 20)
    )
}

/// The instance the tests' recovery points back up (the plan's PILOTLIGHT_DR_AMI_SOURCE in the filter test).
fn web_instance() -> String {
    format!(
        "arn:aws:ec2:{PRIMARY}:{}:instance/i-0123456789abcdef0",
        common::ACCOUNT
    )
}

/// Seeds a recovery point (an AMI copied into `site`'s vault `hours_ago` hours ago) through gapfill's admin API.
fn seed_recovery_point(site: &Site, ami: &str, hours_ago: i64, status: &str) {
    seed_recovery_point_of(site, ami, hours_ago, status, &web_instance());
}

fn seed_recovery_point_of(
    site: &Site,
    ami: &str,
    hours_ago: i64,
    status: &str,
    resource_arn: &str,
) {
    let created = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
    common::emulator_http::gapfill_admin(
        &common::gapfill_url(),
        "/_gapfill/backup/recovery-points",
        &json!({
            "region": site.region,
            "vault": site.vault,
            "resource_arn": resource_arn,
            "image_id": ami,
            "creation_date": created.to_rfc3339(),
            "status": status,
        }),
    );
}

/// The plan with the DR side (and optionally the primary side) pointing at the test's resources.
fn vars(dr: &Site, primary: &Site, dr_capacity: &str) -> HashMap<String, String> {
    let mut vars = common::plan_vars(&[
        ("PILOTLIGHT_DR_CAPACITY", dr_capacity.to_string()),
        ("PILOTLIGHT_PRIMARY_CAPACITY", "2,2,4".to_string()),
    ]);
    for (prefix, site) in [("DR", dr), ("PRIMARY", primary)] {
        vars.insert(format!("PILOTLIGHT_{prefix}_ASG"), site.asg.clone());
        vars.insert(
            format!("PILOTLIGHT_{prefix}_BACKUP_VAULT"),
            site.vault.clone(),
        );
        vars.insert(
            format!("PILOTLIGHT_{prefix}_AMI_PARAMETER"),
            site.parameter.clone(),
        );
        if let Some(tg) = &site.target_group_arn {
            vars.insert(format!("PILOTLIGHT_{prefix}_TARGET_GROUP_ARN"), tg.clone());
        }
    }
    vars
}

/// The live state the step may change: the group's min/desired/max and the parameter (value, data type, version).
#[derive(Debug, PartialEq)]
struct Live {
    capacity: Option<(i32, i32, i32)>,
    parameter: Option<(String, String, i64)>,
}

async fn live(s: &Seeder, site: &Site) -> Live {
    let groups = s
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&site.asg)
        .send()
        .await
        .unwrap();
    let capacity = groups.auto_scaling_groups().first().map(|g| {
        (
            g.min_size().unwrap(),
            g.desired_capacity().unwrap(),
            g.max_size().unwrap(),
        )
    });
    let parameter = match s.ssm.get_parameter().name(&site.parameter).send().await {
        Ok(r) => {
            let p = r.parameter().unwrap();
            Some((
                p.value().unwrap().to_string(),
                p.data_type().unwrap_or("").to_string(),
                p.version(),
            ))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            None
        }
        Err(e) => panic!("GetParameter {}: {e:?}", site.parameter),
    };
    Live {
        capacity,
        parameter,
    }
}

async fn run(ctx: &Context, event: Value) -> Result<StepReport, Error> {
    invoke(handle, ctx, event)
        .await
        .map(|v| serde_json::from_value(v).expect("a StepReport"))
}

fn event(name: &str, overrides: Value) -> Value {
    let mut e = common::event(name);
    for (k, v) in overrides.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn changes(r: &StepReport) -> Vec<(String, String, Value, Value, bool)> {
    r.changes
        .iter()
        .map(|c| {
            (
                c.resource.clone(),
                c.field.clone(),
                c.from.clone(),
                c.to.clone(),
                c.applied,
            )
        })
        .collect()
}

#[tokio::test]
async fn start_sets_the_newest_ami_and_scales_up_then_status_is_done() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), Some("ami-00000000000000001")).await;
    let (older, newest, creating) = (unique_ami(), unique_ami(), unique_ami());
    seed_recovery_point(&dr, &older, 30, "COMPLETED");
    seed_recovery_point(&dr, &newest, 2, "COMPLETED");
    seed_recovery_point(&dr, &creating, 0, "CREATING"); // newer, but not usable yet
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;

    let before_status = run(&ctx, common::event("scale-compute-status.json"))
        .await
        .unwrap();
    assert!(
        !before_status.done,
        "a group at zero is not ready: {}",
        before_status.message
    );

    let r = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap();
    assert_eq!(
        changes(&r),
        vec![
            (
                dr.parameter.clone(),
                "Value".into(),
                json!("ami-00000000000000001"),
                json!(newest),
                true
            ),
            (dr.asg.clone(), "MinSize".into(), json!(0), json!(2), true),
            (
                dr.asg.clone(),
                "DesiredCapacity".into(),
                json!(0),
                json!(2),
                true
            ),
            (dr.asg.clone(), "MaxSize".into(), json!(0), json!(4), true),
        ]
    );
    assert!(!r.done);
    assert_eq!(r.saw["recovery_point"]["image_id"], json!(newest));
    assert_eq!(r.saw["recovery_point"]["listed"], json!(3));
    assert_eq!(r.saw["asg"]["desired"], json!(0));
    // The reference plan's primary group does not exist in the primary region here: plan capacity, and why.
    assert_eq!(r.saw["source_capacity"]["outcome"], json!("unavailable"));
    assert_eq!(
        r.saw["wanted_capacity"],
        json!({"min": 2, "desired": 2, "max": 4})
    );

    let after = live(&s, &dr).await;
    assert_eq!(after.capacity, Some((2, 2, 4)));
    let (value, data_type, _) = after.parameter.unwrap();
    assert_eq!(
        (value.as_str(), data_type.as_str()),
        (newest.as_str(), AMI_DATA_TYPE)
    );

    let st = run(&ctx, common::event("scale-compute-status.json"))
        .await
        .unwrap();
    assert!(st.done, "{}", st.message);
    assert!(st.changes.is_empty());
    assert_eq!(
        st.saw["readiness"],
        json!({"wanted": 2, "in_service_healthy": 2, "healthy_targets": 2, "done": true})
    );
    assert_eq!(st.saw["target_group_attached"], json!(true));
    assert_eq!(st.saw["ami_parameter"]["value"], json!(newest));
}

#[tokio::test]
async fn start_three_times_converges_on_one_state() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), None).await; // parameter absent: the step creates it
    let ami = unique_ami();
    seed_recovery_point(&dr, &ami, 1, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "1,2,3")).await;

    let first = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap();
    assert_eq!(
        first.changes[0].from,
        Value::Null,
        "an absent parameter is reported as null"
    );
    assert_eq!(
        first.changes.len(),
        5,
        "Value, DataType, MinSize, DesiredCapacity, MaxSize: {:?}",
        changes(&first)
    );
    let state = live(&s, &dr).await;
    assert_eq!(state.capacity, Some((1, 2, 3)));
    assert_eq!(
        state.parameter,
        Some((ami.clone(), AMI_DATA_TYPE.to_string(), 1))
    );
    for n in 2..=3 {
        let again = run(&ctx, common::event("scale-compute-start.json"))
            .await
            .unwrap();
        assert!(again.changes.is_empty(), "run {n}: {:?}", changes(&again));
        assert!(
            again.done,
            "run {n}: nothing to change and instances ready: {}",
            again.message
        );
        // Same capacity and no new parameter version: the re-run made no write at all.
        assert_eq!(live(&s, &dr).await, state, "run {n}");
    }
}

#[tokio::test]
async fn dry_run_reports_exact_changes_and_changes_nothing() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), Some("ami-00000000000000002")).await;
    let ami = unique_ami();
    seed_recovery_point(&dr, &ami, 5, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "2,3,6")).await;

    let before = live(&s, &dr).await;
    let r = run(&ctx, common::event("scale-compute-start-dry-run.json"))
        .await
        .unwrap();
    assert_eq!(
        live(&s, &dr).await,
        before,
        "dry-run must not change the group or the parameter"
    );
    assert!(r.dry_run && r.done);
    assert_eq!(
        changes(&r),
        vec![
            (
                dr.parameter.clone(),
                "Value".into(),
                json!("ami-00000000000000002"),
                json!(ami),
                false
            ),
            (dr.asg.clone(), "MinSize".into(), json!(0), json!(2), false),
            (
                dr.asg.clone(),
                "DesiredCapacity".into(),
                json!(0),
                json!(3),
                false
            ),
            (dr.asg.clone(), "MaxSize".into(), json!(0), json!(6), false),
        ]
    );
    assert!(r.message.starts_with("dry-run"), "{}", r.message);

    let st = run(
        &ctx,
        event("scale-compute-status.json", json!({"dry_run": true})),
    )
    .await
    .unwrap();
    assert!(st.done, "dry-run status has nothing to wait for");
    assert_eq!(st.saw["readiness"]["in_service_healthy"], json!(0));
    assert_eq!(live(&s, &dr).await, before);
}

#[tokio::test]
async fn no_completed_recovery_point_is_not_found_and_changes_nothing() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), Some("ami-00000000000000003")).await;
    seed_recovery_point(&dr, &unique_ami(), 0, "CREATING"); // the copy job is still running
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;
    let before = live(&s, &dr).await;

    let e = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let expected = format!(
        "no COMPLETED EC2 recovery point in vault {} (region {DR}): check the AWS Backup copy job into the DR vault",
        dr.vault
    );
    assert!(e.message.starts_with(&expected), "{e}");
    assert_eq!(live(&s, &dr).await, before);

    // No vault at all: also NotFound, naming the vault and what to check.
    let mut no_vault = vars(&dr, &primary, "2,2,4");
    no_vault.insert(
        "PILOTLIGHT_DR_BACKUP_VAULT".into(),
        common::unique("missing-vault"),
    );
    let ctx = common::context(&no_vault).await;
    let e = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains(&no_vault["PILOTLIGHT_DR_BACKUP_VAULT"])
            && e.message.contains("check the plan's backup vault"),
        "{e}"
    );
    assert_eq!(live(&s, &dr).await, before);
}

#[tokio::test]
async fn too_old_recovery_point_is_refused_unless_forced() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), Some("ami-00000000000000004")).await;
    let old = unique_ami();
    seed_recovery_point(&dr, &old, 100, "COMPLETED");
    let mut v = vars(&dr, &primary, "2,2,4");
    v.insert("PILOTLIGHT_MAX_AMI_AGE_HOURS".into(), "72".into());
    let ctx = common::context(&v).await;
    let before = live(&s, &dr).await;

    let e = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    for part in [
        dr.vault.as_str(),
        old.as_str(),
        "h ago",
        "72 h",
        "allow_stale_ami",
    ] {
        assert!(e.message.contains(part), "{part:?} missing in: {e}");
    }
    assert_eq!(live(&s, &dr).await, before);

    // The operator accepts the risk: an old image beats no image in a real disaster.
    let r = run(
        &ctx,
        event(
            "scale-compute-start.json",
            json!({"overrides": {"allow_stale_ami": true}}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.saw["recovery_point"]["too_old_but_forced"], json!(true));
    assert_eq!(live(&s, &dr).await.parameter.unwrap().0, old);
}

/// Issue #10: the recovery point must come from the plan's source instance. A second backed-up instance with a
/// newer AMI in the same vault is ignored (ByResourceArn), by preflight and start alike; the preflight flags a stale
/// AMI of the source with the value seen and the limit, and nothing changes.
#[tokio::test]
async fn only_the_plans_source_instance_is_launched_and_preflight_checks_its_age() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), Some("ami-00000000000000004")).await;
    let web = unique_ami();
    let batch = unique_ami();
    seed_recovery_point(&dr, &web, 5, "COMPLETED");
    let batch_arn = format!(
        "arn:aws:ec2:{PRIMARY}:{}:instance/i-0batch000000000000",
        common::ACCOUNT
    );
    seed_recovery_point_of(&dr, &batch, 1, "COMPLETED", &batch_arn);
    let mut v = vars(&dr, &primary, "2,2,4");
    v.insert("PILOTLIGHT_DR_AMI_SOURCE".into(), web_instance());
    v.insert("PILOTLIGHT_MAX_AMI_AGE_HOURS".into(), "72".into());
    let ctx = common::context(&v).await;
    let before = live(&s, &dr).await;

    let pre = run(
        &ctx,
        event("scale-compute-start.json", json!({"action": "preflight"})),
    )
    .await
    .unwrap();
    assert!(pre.done && pre.changes.is_empty(), "{pre:?}");
    assert_eq!(pre.saw["passed"], json!(true), "{:#}", pre.saw);
    let found = pre.saw["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ami.found")
        .unwrap()
        .clone();
    assert_eq!(found["seen"]["image_id"], json!(web), "{found:#}");
    assert_eq!(live(&s, &dr).await, before, "preflight changes nothing");

    let r = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap();
    assert_eq!(
        r.saw["recovery_point"]["image_id"],
        json!(web),
        "{:#}",
        r.saw
    );
    assert_eq!(
        live(&s, &dr).await.parameter.unwrap().0,
        web,
        "the newer AMI of another instance is ignored"
    );

    // Without a source the vault's newest (the batch instance's) would be taken: the preflight says so.
    v.remove("PILOTLIGHT_DR_AMI_SOURCE");
    let ctx = common::context(&v).await;
    let pre = run(
        &ctx,
        event("scale-compute-start.json", json!({"action": "preflight"})),
    )
    .await
    .unwrap();
    let source = pre.saw["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ami.source")
        .unwrap()
        .clone();
    assert_eq!(source["passed"], json!(false), "{source:#}");
    assert_eq!(source["override_name"], json!("allow_any_ami_source"));

    // Only a stale recovery point of the source: a finding naming allow_stale_ami, with the value and the limit.
    let (mut dr2, primary2) = (Site::named(DR), Site::named(PRIMARY));
    let s2 = deploy(&mut dr2, (0, 0, 0), Some("ami-00000000000000004")).await;
    seed_recovery_point(&dr2, &unique_ami(), 100, "COMPLETED");
    let mut v2 = vars(&dr2, &primary2, "2,2,4");
    v2.insert("PILOTLIGHT_DR_AMI_SOURCE".into(), web_instance());
    let ctx2 = common::context(&v2).await;
    let before2 = live(&s2, &dr2).await;
    let pre = run(
        &ctx2,
        event("scale-compute-start.json", json!({"action": "preflight"})),
    )
    .await
    .unwrap();
    assert_eq!(pre.saw["passed"], json!(false));
    let age = pre.saw["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "ami.age")
        .unwrap()
        .clone();
    assert_eq!(
        (age["passed"].clone(), age["limit"].clone()),
        (json!(false), json!(72)),
        "{age:#}"
    );
    assert!(age["seen"].as_f64().unwrap() >= 99.9, "{age:#}");
    assert_eq!(age["override_name"], json!("allow_stale_ami"));
    let accepted = run(
        &ctx2,
        event(
            "scale-compute-start.json",
            json!({"action": "preflight", "overrides": {"allow_stale_ami": true}}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(accepted.saw["passed"], json!(true), "{:#}", accepted.saw);
    assert_eq!(live(&s2, &dr2).await, before2);
}

#[tokio::test]
async fn missing_group_is_not_found_and_changes_nothing() {
    let (dr, primary) = (Site::named(DR), Site::named(PRIMARY)); // nothing deployed
    seed_recovery_point(&dr, &unique_ami(), 1, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;
    let s = seeder(DR).await;

    for name in [
        "scale-compute-start.json",
        "scale-compute-status.json",
        "scale-compute-start-dry-run.json",
    ] {
        let e = run(&ctx, common::event(name)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{name}: {e}");
        assert!(
            e.message
                .contains(&format!("Auto Scaling group {} not found in {DR}", dr.asg)),
            "{name}: {e}"
        );
        assert!(e.message.contains("PILOTLIGHT_DR_ASG"), "{name}: {e}");
    }
    assert_eq!(
        live(&s, &dr).await,
        Live {
            capacity: None,
            parameter: None
        },
        "the parameter was not created"
    );
}

#[tokio::test]
async fn the_primarys_larger_capacity_is_used_when_readable() {
    let (mut dr, mut primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (0, 0, 0), None).await;
    deploy(&mut primary, (1, 3, 6), None).await; // the primary ran 3 instances before the failure
    seed_recovery_point(&dr, &unique_ami(), 1, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "1,2,4")).await;

    let r = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap();
    assert_eq!(
        r.saw["source_capacity"],
        json!({"outcome": "read", "region": PRIMARY, "asg": primary.asg, "capacity": {"min": 1, "desired": 3, "max": 6}})
    );
    assert_eq!(
        live(&s, &dr).await.capacity,
        Some((1, 3, 4)),
        "desired from the primary, bounded by the plan's max"
    );
    let st = run(&ctx, common::event("scale-compute-status.json"))
        .await
        .unwrap();
    assert!(
        st.done && st.saw["readiness"]["wanted"] == json!(3),
        "{}",
        st.saw
    );
}

#[tokio::test]
async fn a_group_scaled_further_by_hand_is_never_scaled_down() {
    let (mut dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let s = deploy(&mut dr, (3, 5, 10), Some("ami-00000000000000005")).await;
    let ami = unique_ami();
    seed_recovery_point(&dr, &ami, 1, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;

    let r = run(&ctx, common::event("scale-compute-start.json"))
        .await
        .unwrap();
    assert_eq!(
        changes(&r),
        vec![(
            dr.parameter.clone(),
            "Value".into(),
            json!("ami-00000000000000005"),
            json!(ami),
            true
        )]
    );
    assert_eq!(live(&s, &dr).await.capacity, Some((3, 5, 10)));
}

/// The failed region must never block the step: a refused connection and a silent endpoint both fall back to the
/// plan's capacity, within the primary's short timeouts.
#[tokio::test]
async fn an_unreachable_primary_falls_back_to_the_plan_quickly() {
    // Accepts connections (the kernel completes the handshake) but never answers: a black-holed region.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    for (label, dead_endpoint) in [
        ("refused", "http://127.0.0.1:1".to_string()),
        ("silent", silent_url),
    ] {
        let (mut dr, mut primary) = (Site::named(DR), Site::named(PRIMARY));
        let s = deploy(&mut dr, (0, 0, 0), None).await;
        deploy(&mut primary, (1, 3, 6), None).await; // would win if it could be read
        seed_recovery_point(&dr, &unique_ami(), 1, "COMPLETED");
        let mut v = vars(&dr, &primary, "2,2,4");
        v.insert("PILOTLIGHT_PRIMARY_CONNECT_TIMEOUT_MS".into(), "300".into());
        v.insert("PILOTLIGHT_PRIMARY_READ_TIMEOUT_MS".into(), "700".into());
        let mut ctx = common::context(&v).await;
        // Only the primary region's clients point at the dead endpoint.
        ctx.aws.primary =
            AwsClients::from_sdk_config(&common::sdk_config_at(&dead_endpoint).await, &ctx.plan)
                .primary;

        let t = Instant::now();
        let r = run(&ctx, common::event("scale-compute-start.json"))
            .await
            .unwrap();
        let took = t.elapsed();
        assert!(took < Duration::from_secs(3), "{label}: took {took:?}");
        assert_eq!(
            r.saw["source_capacity"]["outcome"],
            json!("unavailable"),
            "{label}: {}",
            r.saw
        );
        if label == "silent" {
            // Bounded by one attempt (connect + read timeout), not by the client's retries.
            assert_eq!(
                r.saw["source_capacity"]["reason"],
                json!("no answer within 1000 ms"),
                "{}",
                r.saw
            );
        }
        assert!(
            r.saw["capacity_basis"]
                .as_str()
                .unwrap()
                .contains("could not be read"),
            "{label}"
        );
        assert_eq!(live(&s, &dr).await.capacity, Some((2, 2, 4)), "{label}");
        let st = run(&ctx, common::event("scale-compute-status.json"))
            .await
            .unwrap();
        assert!(st.done, "{label}: {}", st.message);
    }
}

#[tokio::test]
async fn failback_acts_on_the_primary_side() {
    let (mut dr, mut primary) = (Site::named(DR), Site::named(PRIMARY));
    let dr_seed = deploy(&mut dr, (2, 4, 4), Some("ami-00000000000000006")).await; // DR served traffic at 4
    let p_seed = deploy(&mut primary, (0, 0, 0), None).await;
    let ami = unique_ami();
    seed_recovery_point(&primary, &ami, 1, "COMPLETED");
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await; // primary capacity 2,2,4
    let dr_before = live(&dr_seed, &dr).await;

    let r = run(
        &ctx,
        event(
            "scale-compute-start.json",
            json!({"direction": "failback", "mode": "graceful"}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.saw["region"], json!(PRIMARY));
    assert_eq!(
        r.saw["source_capacity"]["outcome"],
        json!("read"),
        "the DR side is healthy and readable"
    );
    assert_eq!(
        live(&p_seed, &primary).await,
        Live {
            capacity: Some((2, 4, 4)),
            parameter: Some((ami, AMI_DATA_TYPE.into(), 1))
        }
    );
    assert_eq!(
        live(&dr_seed, &dr).await,
        dr_before,
        "failback leaves the DR side alone"
    );
    let st = run(
        &ctx,
        event(
            "scale-compute-status.json",
            json!({"direction": "failback"}),
        ),
    )
    .await
    .unwrap();
    assert!(st.done, "{}", st.message);
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_call() {
    let (dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;
    let e = run(
        &ctx,
        event("scale-compute-start.json", json!({"dryrun": true})),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
    assert!(
        e.message.contains("scale-compute") && e.message.contains("dryrun"),
        "{e}"
    );
}

// ---- reprotect (failback only): the DR group back to 0/0/0 ----------------------------------------------------

/// A failback's end state to reprotect from: the DR group still at `dr_capacity` (it served during the outage), the
/// primary serving again at 2/2/4, and Global Accelerator endpoint groups in gapfill with the dials given.
struct Reprotect {
    ctx: Context,
    dr: Site,
    dr_seed: Seeder,
    primary: Site,
    primary_seed: Seeder,
    dr_endpoint_group: String,
}

async fn reprotect_setup(dr_capacity: (i32, i32, i32), dials: (i32, i32)) -> Reprotect {
    let (mut dr, mut primary) = (Site::named(DR), Site::named(PRIMARY));
    let dr_seed = deploy(&mut dr, dr_capacity, Some("ami-00000000000000007")).await;
    let primary_seed = deploy(&mut primary, (2, 2, 4), Some("ami-00000000000000008")).await;
    let (primary_eg, dr_eg) =
        common::seed_endpoint_groups(&common::sdk_config().await, PRIMARY, DR, dials).await;
    let mut v = vars(&dr, &primary, "2,2,4");
    v.insert("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN".into(), primary_eg);
    v.insert("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN".into(), dr_eg.clone());
    Reprotect {
        ctx: common::context(&v).await,
        dr,
        dr_seed,
        primary,
        primary_seed,
        dr_endpoint_group: dr_eg,
    }
}

impl Reprotect {
    async fn dr_live(&self) -> Live {
        live(&self.dr_seed, &self.dr).await
    }
    async fn primary_live(&self) -> Live {
        live(&self.primary_seed, &self.primary).await
    }
}

#[tokio::test]
async fn reprotect_returns_the_dr_group_to_zero_and_reruns_change_nothing() {
    let t = reprotect_setup((2, 4, 4), (100, 0)).await;
    let primary_before = t.primary_live().await;
    let event = common::event("scale-compute-reprotect.json");
    assert_eq!(
        (event["action"].as_str(), event["direction"].as_str()),
        (Some("reprotect"), Some("failback"))
    );

    let r = run(&t.ctx, event.clone()).await.unwrap();
    assert_eq!(
        changes(&r),
        vec![
            (t.dr.asg.clone(), "MinSize".into(), json!(2), json!(0), true),
            (
                t.dr.asg.clone(),
                "DesiredCapacity".into(),
                json!(4),
                json!(0),
                true
            ),
            (t.dr.asg.clone(), "MaxSize".into(), json!(4), json!(0), true),
        ]
    );
    assert!(r.done, "{}", r.message);
    assert_eq!(r.saw["region"], json!(DR));
    assert_eq!(
        r.saw["asg"]["desired"],
        json!(4),
        "what it saw before acting"
    );
    assert_eq!(
        r.saw["in_service"],
        json!(4),
        "moto's instances are InService at once"
    );
    assert_eq!(
        r.saw["endpoint_group"],
        json!({"arn": t.dr_endpoint_group, "dial": 0})
    );
    assert!(r.message.contains("pilot light restored"), "{}", r.message);
    let after = t.dr_live().await;
    assert_eq!(after.capacity, Some((0, 0, 0)));
    assert_eq!(
        after.parameter.as_ref().map(|p| p.0.as_str()),
        Some("ami-00000000000000007"),
        "reprotect leaves the AMI parameter to the next failover"
    );
    assert_eq!(
        t.primary_live().await,
        primary_before,
        "the primary, now serving, is not touched"
    );

    for n in 2..=4 {
        let again = run(&t.ctx, event.clone()).await.unwrap();
        assert!(again.changes.is_empty(), "run {n}: {:?}", changes(&again));
        assert!(again.done, "run {n}");
        assert!(
            again.message.starts_with("no-op"),
            "run {n}: {}",
            again.message
        );
        assert_eq!(t.dr_live().await, after, "run {n}");
    }
}

#[tokio::test]
async fn reprotect_dry_run_lists_min_desired_max_and_changes_nothing() {
    let t = reprotect_setup((1, 3, 6), (100, 0)).await;
    let before = (t.dr_live().await, t.primary_live().await);
    let r = run(
        &t.ctx,
        event("scale-compute-reprotect.json", json!({"dry_run": true})),
    )
    .await
    .unwrap();
    assert!(r.dry_run && r.done);
    assert_eq!(
        changes(&r),
        vec![
            (
                t.dr.asg.clone(),
                "MinSize".into(),
                json!(1),
                json!(0),
                false
            ),
            (
                t.dr.asg.clone(),
                "DesiredCapacity".into(),
                json!(3),
                json!(0),
                false
            ),
            (
                t.dr.asg.clone(),
                "MaxSize".into(),
                json!(6),
                json!(0),
                false
            ),
        ]
    );
    assert!(
        r.message.starts_with("dry-run: would set") && r.message.contains("1/3/6 -> 0/0/0"),
        "{}",
        r.message
    );
    assert_eq!((t.dr_live().await, t.primary_live().await), before);
}

#[tokio::test]
async fn reprotect_is_refused_on_failover_and_changes_nothing() {
    let t = reprotect_setup((2, 2, 4), (0, 100)).await;
    let before = (t.dr_live().await, t.primary_live().await);
    for dry_run in [false, true] {
        let e = run(
            &t.ctx,
            event(
                "scale-compute-reprotect.json",
                json!({"direction": "failover", "dry_run": dry_run}),
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
        assert!(
            e.message.contains("reprotect is for failback only")
                && e.message.contains("nothing was changed"),
            "{e}"
        );
    }
    assert_eq!((t.dr_live().await, t.primary_live().await), before);
}

#[tokio::test]
async fn reprotect_refuses_while_the_dr_still_takes_traffic_unless_forced() {
    // Traffic has not come home yet: the DR dial is still up.
    let t = reprotect_setup((2, 2, 4), (50, 50)).await;
    let before = t.dr_live().await;
    let e = run(&t.ctx, common::event("scale-compute-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    for part in [
        t.dr_endpoint_group.as_str(),
        "50%",
        "allow_serving_scale_down",
        t.dr.asg.as_str(),
        "2/2/4",
    ] {
        assert!(e.message.contains(part), "{part:?} missing in: {e}");
    }
    assert_eq!(t.dr_live().await, before);

    // A dry-run (whose shift-traffic moved nothing) is not refused, but says a real run would be.
    let r = run(
        &t.ctx,
        event("scale-compute-reprotect.json", json!({"dry_run": true})),
    )
    .await
    .unwrap();
    assert!(
        r.done && r.message.contains("a real run would be refused"),
        "{}",
        r.message
    );
    assert_eq!(t.dr_live().await, before);

    // The operator accepts it.
    let r = run(
        &t.ctx,
        event(
            "scale-compute-reprotect.json",
            json!({"overrides": {"allow_serving_scale_down": true}}),
        ),
    )
    .await
    .unwrap();
    assert!(
        r.done && r.message.contains("allow_serving_scale_down"),
        "{}",
        r.message
    );
    assert_eq!(t.dr_live().await.capacity, Some((0, 0, 0)));
}

#[tokio::test]
async fn reprotect_with_a_missing_dr_group_is_not_found() {
    let (dr, mut primary) = (Site::named(DR), Site::named(PRIMARY)); // the DR group was never deployed
    let primary_seed = deploy(&mut primary, (2, 2, 4), None).await;
    let (primary_eg, dr_eg) =
        common::seed_endpoint_groups(&common::sdk_config().await, PRIMARY, DR, (100, 0)).await;
    let mut v = vars(&dr, &primary, "2,2,4");
    v.insert("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN".into(), primary_eg);
    v.insert("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN".into(), dr_eg);
    let ctx = common::context(&v).await;
    let before = live(&primary_seed, &primary).await;
    let e = run(&ctx, common::event("scale-compute-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message
            .contains(&format!("Auto Scaling group {} not found in {DR}", dr.asg))
            && e.message.contains("PILOTLIGHT_DR_ASG"),
        "{e}"
    );
    assert_eq!(live(&primary_seed, &primary).await, before);
}

#[tokio::test]
async fn reprotect_with_a_missing_dr_endpoint_group_is_not_found() {
    let t = reprotect_setup((2, 2, 4), (100, 0)).await;
    let mut ctx_vars = vars(&t.dr, &t.primary, "2,2,4");
    let missing = format!(
        "arn:aws:globalaccelerator::{}:accelerator/{}/listener/abcd1234/endpoint-group/000000000000",
        common::ACCOUNT,
        common::unique("gone")
    );
    ctx_vars.insert("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN".into(), missing.clone());
    let ctx = common::context(&ctx_vars).await;
    let before = t.dr_live().await;
    let e = run(&ctx, common::event("scale-compute-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains(&missing) && e.message.contains("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN"),
        "{e}"
    );
    assert_eq!(
        t.dr_live().await,
        before,
        "nothing is scaled down without knowing the dial"
    );
}

#[tokio::test]
async fn actions_of_other_steps_are_refused_before_any_call() {
    let (dr, primary) = (Site::named(DR), Site::named(PRIMARY));
    let ctx = common::context(&vars(&dr, &primary, "2,2,4")).await;
    for action in ["drain", "prepare", "catchup"] {
        let e = run(
            &ctx,
            event("scale-compute-reprotect.json", json!({"action": action})),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{action}: {e}");
        assert!(e.message.contains("not one of this step's actions"), "{e}");
    }
}
