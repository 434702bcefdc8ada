//! Fencing the side a failover leaves (docs/guarantees.md "Fencing"), against the emulators through the real SDK:
//! moto for RDS and Auto Scaling, gapfill for the Global Accelerator dials and the recovery points, and the
//! fault-injecting proxy (tests/support/faultproxy.py) in front of moto for a black-holed primary region.
//!
//! moto stops and starts a DB instance at once (AWS passes through `stopping` / `starting`), which the steps
//! handle either way (`stopping` counts as fenced; `starting` is waited through by prepare's polls).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_config::Region;
use common::faultproxy::FaultProxy;
use common::rds::{DR_REGION, PRIMARY_REGION, instance, seed_pair, tag};
use pilotlight::Context;
use pilotlight::aws::clients::AwsClients;
use pilotlight::fence::{FENCED_AT_TAG, FENCED_CAPACITY_TAG};
use pilotlight::runtime::invoke;
use pilotlight::steps::{promote_db, scale_compute, shift_traffic};
use serde_json::{Value, json};

/// The instance the primary vault's recovery points back up (the plan's PILOTLIGHT_PRIMARY_AMI_SOURCE).
const WEB_INSTANCE: &str = "arn:aws:ec2:ap-northeast-2:123456789012:instance/i-0123456789abcdef0";

struct Topology {
    vars: HashMap<String, String>,
    primary_db: String,
    dr_db: String,
    primary_asg: String,
    asg: aws_sdk_autoscaling::Client,
}

async fn asg_in(region: &str) -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(&common::sdk_config().await)
            .region(Region::new(region.to_string()))
            .build(),
    )
}

/// A group (with its launch template resolving `parameter`) at `capacity` in `region`.
async fn deploy_group(region: &str, name: &str, parameter: &str, capacity: (i32, i32, i32)) {
    let template = format!("{name}-lt");
    common::emulator_http::create_launch_template(
        &common::moto_url(),
        region,
        &template,
        parameter,
    );
    asg_in(region)
        .await
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .version("$Latest")
                .build(),
        )
        .min_size(capacity.0)
        .desired_capacity(capacity.1)
        .max_size(capacity.2)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .unwrap();
}

/// After a failover: the DR replica promoted by promote-db (its promotion recorded), the primary's writer and its
/// group at 2/3/6 untouched, the dials at 0/100.
async fn after_failover() -> Topology {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "fence", "db.t3.micro").await;
    let id = common::unique("fence");
    let (primary_asg, dr_asg) = (format!("{id}-p-asg"), format!("{id}-dr-asg"));
    let (primary_param, dr_param) = (
        format!("/pilotlight/test/{id}/p-ami"),
        format!("/pilotlight/test/{id}/dr-ami"),
    );
    deploy_group(PRIMARY_REGION, &primary_asg, &primary_param, (2, 3, 6)).await;
    deploy_group(DR_REGION, &dr_asg, &dr_param, (2, 2, 4)).await;
    let (primary_eg, dr_eg) =
        common::seed_endpoint_groups(&config, PRIMARY_REGION, DR_REGION, (0, 100)).await;
    let vars = common::plan_vars(&[
        ("PILOTLIGHT_PRIMARY_DB_INSTANCE", pair.primary.clone()),
        ("PILOTLIGHT_DR_DB_INSTANCE", pair.replica.clone()),
        ("PILOTLIGHT_PRIMARY_ASG", primary_asg.clone()),
        ("PILOTLIGHT_DR_ASG", dr_asg),
        ("PILOTLIGHT_PRIMARY_AMI_PARAMETER", primary_param),
        ("PILOTLIGHT_DR_AMI_PARAMETER", dr_param),
        ("PILOTLIGHT_PRIMARY_BACKUP_VAULT", format!("{id}-vault")),
        ("PILOTLIGHT_PRIMARY_AMI_SOURCE", WEB_INSTANCE.into()),
        ("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN", primary_eg),
        ("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", dr_eg),
        ("PILOTLIGHT_PRIMARY_CAPACITY", "2,2,4".into()),
        ("PILOTLIGHT_PRIMARY_CONNECT_TIMEOUT_MS", "300".into()),
        ("PILOTLIGHT_PRIMARY_READ_TIMEOUT_MS", "700".into()),
        ("PILOTLIGHT_PRIMARY_OPERATION_TIMEOUT_MS", "1000".into()),
    ]);
    let ctx = common::context(&vars).await;
    let mut start = common::event("promote-db-start.json");
    start["overrides"] = json!({"allow_unknown_lag": true});
    invoke(promote_db::handle, &ctx, start).await.unwrap();
    let status = invoke(
        promote_db::handle,
        &ctx,
        common::event("promote-db-status.json"),
    )
    .await
    .unwrap();
    assert_eq!(status["done"], json!(true), "{status:#}");
    Topology {
        vars,
        primary_db: pair.primary,
        dr_db: pair.replica,
        primary_asg,
        asg: asg_in(PRIMARY_REGION).await,
    }
}

impl Topology {
    async fn group(&self) -> ((i32, i32, i32), Option<String>) {
        let g = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.primary_asg)
            .send()
            .await
            .unwrap();
        let g = &g.auto_scaling_groups()[0];
        let recorded = g
            .tags()
            .iter()
            .find(|t| t.key() == Some(FENCED_CAPACITY_TAG))
            .and_then(|t| t.value())
            .map(str::to_string);
        (
            (
                g.min_size().unwrap(),
                g.desired_capacity().unwrap(),
                g.max_size().unwrap(),
            ),
            recorded,
        )
    }

    async fn primary_db_status(&self) -> String {
        let config = common::sdk_config().await;
        instance(&config, PRIMARY_REGION, &self.primary_db)
            .await
            .db_instance_status()
            .unwrap()
            .to_string()
    }
}

/// The three calls of the fence phase, side by side as the state machine runs them; each must answer (never an
/// error: a fence failure must not fail the run).
async fn fence(ctx: &Context) -> [Value; 3] {
    let (db, group, dial) = tokio::join!(
        invoke(
            promote_db::handle,
            ctx,
            common::event("promote-db-fence.json")
        ),
        invoke(
            scale_compute::handle,
            ctx,
            common::event("scale-compute-fence.json")
        ),
        invoke(
            shift_traffic::handle,
            ctx,
            common::event("shift-traffic-fence.json")
        ),
    );
    let reports = [db.unwrap(), group.unwrap(), dial.unwrap()];
    for r in &reports {
        assert_eq!(r["done"], json!(true), "{r:#}");
    }
    reports
}

fn status(r: &Value) -> &str {
    r["saw"]["fence"]["status"].as_str().unwrap()
}

#[tokio::test]
async fn fence_stops_the_old_writer_and_zeroes_the_primary_group_and_a_second_fence_is_a_no_op() {
    let t = after_failover().await;
    let ctx = common::context(&t.vars).await;
    assert_eq!(t.primary_db_status().await, "available");

    // Dry-run first: says what it would do, changes nothing.
    let mut dry = common::event("promote-db-fence.json");
    dry["dry_run"] = json!(true);
    let r = invoke(promote_db::handle, &ctx, dry).await.unwrap();
    assert_eq!(status(&r), "would_fence", "{r:#}");
    assert_eq!(r["changes"][0]["applied"], json!(false));
    assert_eq!(t.primary_db_status().await, "available");

    let [db, group, dial] = fence(&ctx).await;
    assert_eq!(status(&db), "fenced", "{db:#}");
    assert!(db["message"].as_str().unwrap().contains("7 days"), "{db:#}");
    assert_eq!(t.primary_db_status().await, "stopped");
    let config = common::sdk_config().await;
    let old = instance(&config, PRIMARY_REGION, &t.primary_db).await;
    assert!(tag(&old, FENCED_AT_TAG).is_some(), "who fenced it and when");
    // The new writer is untouched.
    let new = instance(&config, DR_REGION, &t.dr_db).await;
    assert_eq!(new.db_instance_status(), Some("available"));

    assert_eq!(status(&group), "fenced", "{group:#}");
    assert_eq!(t.group().await, ((0, 0, 0), Some("2/3/6".to_string())));
    assert_eq!(status(&dial), "already_fenced", "{dial:#}");
    assert_eq!(dial["saw"]["dials"], json!({"primary": 0, "dr": 100}));

    // A second fence observes and changes nothing; the record of the first stays.
    let again = fence(&ctx).await;
    for r in &again {
        assert_eq!(status(r), "already_fenced", "{r:#}");
        assert_eq!(r["changes"], json!([]), "{r:#}");
    }
    assert_eq!(t.group().await, ((0, 0, 0), Some("2/3/6".to_string())));
    assert!(
        again[1]["message"]
            .as_str()
            .unwrap()
            .contains("2/3/6 recorded"),
        "{:#}",
        again[1]
    );
}

#[tokio::test]
async fn nothing_is_fenced_while_the_dr_side_is_not_the_writer_or_the_primary_still_serves() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "fence-early", "db.t3.micro").await;
    let id = common::unique("fence-early");
    let asg = format!("{id}-p-asg");
    deploy_group(
        PRIMARY_REGION,
        &asg,
        &format!("/pilotlight/test/{id}/ami"),
        (2, 3, 6),
    )
    .await;
    let (primary_eg, dr_eg) =
        common::seed_endpoint_groups(&config, PRIMARY_REGION, DR_REGION, (100, 0)).await;
    let ctx = common::context(&common::plan_vars(&[
        ("PILOTLIGHT_PRIMARY_DB_INSTANCE", pair.primary.clone()),
        ("PILOTLIGHT_DR_DB_INSTANCE", pair.replica.clone()),
        ("PILOTLIGHT_PRIMARY_ASG", asg.clone()),
        ("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN", primary_eg),
        ("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", dr_eg),
    ]))
    .await;
    let [db, group, dial] = fence(&ctx).await;
    assert_eq!(status(&db), "not_fenced");
    assert!(
        db["message"].as_str().unwrap().contains("no writer"),
        "{db:#}"
    );
    assert_eq!(status(&group), "not_fenced");
    assert!(
        group["message"].as_str().unwrap().contains("100%"),
        "{group:#}"
    );
    assert_eq!(status(&dial), "not_fenced");
    assert!(
        dial["message"]
            .as_str()
            .unwrap()
            .contains("\"command\": \"fence\"")
    );
    let old = instance(&config, PRIMARY_REGION, &pair.primary).await;
    assert_eq!(old.db_instance_status(), Some("available"));
    let g = asg_in(PRIMARY_REGION)
        .await
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&asg)
        .send()
        .await
        .unwrap();
    assert_eq!(g.auto_scaling_groups()[0].desired_capacity(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_primary_is_not_fenced_within_the_deadline_and_a_later_fence_completes() {
    let t = after_failover().await;
    let mut ctx = common::context(&t.vars).await;
    // Every call to the primary region hangs (accepted, never answered).
    let proxy = FaultProxy::start(&common::moto_url());
    proxy.set_rules(json!([{"fault": "blackhole"}]));
    ctx.aws.primary =
        AwsClients::from_sdk_config(&common::sdk_config_at(proxy.url()).await, &ctx.plan).primary;

    let began = Instant::now();
    let [db, group, dial] = fence(&ctx).await;
    let took = began.elapsed();
    // Bounded by the primary's operation timeout (1 s here), well inside the functions' 30 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    for r in [&db, &group] {
        assert_eq!(status(r), "not_fenced", "{r:#}");
        let m = r["message"].as_str().unwrap();
        assert!(m.contains("did not answer"), "{m}");
        assert!(m.contains("\"command\": \"fence\""), "{m}");
    }
    assert_eq!(
        status(&dial),
        "already_fenced",
        "Global Accelerator answers: {dial:#}"
    );
    assert_eq!(t.primary_db_status().await, "available");
    assert_eq!(t.group().await.0, (2, 3, 6));

    // The region is back: the fence command's run fences what the failover could not.
    proxy.clear();
    let [db, group, _] = fence(&ctx).await;
    assert_eq!(status(&db), "fenced", "{db:#}");
    assert_eq!(status(&group), "fenced", "{group:#}");
    assert_eq!(t.primary_db_status().await, "stopped");
    assert_eq!(t.group().await, ((0, 0, 0), Some("2/3/6".to_string())));
}

#[tokio::test]
async fn failback_refuses_a_writable_old_writer_and_retires_a_fenced_one() {
    let t = after_failover().await;
    let ctx = common::context(&t.vars).await;
    let preflight = |overrides: Value| {
        let mut e = common::event("promote-db-prepare.json");
        e["action"] = json!("preflight");
        e["direction"] = json!("failback");
        e["mode"] = json!("graceful");
        e["overrides"] = overrides;
        e
    };
    let check = |r: &Value| -> Value {
        r["saw"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "db.old-writer")
            .cloned()
            .unwrap_or_else(|| panic!("no db.old-writer check: {r:#}"))
    };
    let r = invoke(promote_db::handle, &ctx, preflight(json!({})))
        .await
        .unwrap();
    let c = check(&r);
    assert_eq!(c["passed"], json!(false), "{r:#}");
    assert_eq!(c["override_name"], json!("allow_writable_old_writer"));
    assert_eq!(r["saw"]["passed"], json!(false));
    let r = invoke(
        promote_db::handle,
        &ctx,
        preflight(json!({"allow_writable_old_writer": true})),
    )
    .await
    .unwrap();
    assert_eq!(check(&r)["overridden"], json!(true), "{r:#}");

    // Fenced: the check passes, and prepare starts the stopped instance, then retires it.
    fence(&ctx).await;
    let r = invoke(promote_db::handle, &ctx, preflight(json!({})))
        .await
        .unwrap();
    assert_eq!(check(&r)["passed"], json!(true), "{r:#}");
    assert_eq!(r["saw"]["passed"], json!(true), "{r:#}");
    let mut prepare = common::event("promote-db-prepare.json");
    prepare["direction"] = json!("failback");
    let first = invoke(promote_db::handle, &ctx, prepare.clone())
        .await
        .unwrap();
    assert_eq!(
        first["saw"]["decision"],
        json!("start-to-retire"),
        "{first:#}"
    );
    assert_eq!(first["done"], json!(false));
    let second = invoke(promote_db::handle, &ctx, prepare).await.unwrap();
    assert_eq!(
        second["saw"]["decision"],
        json!("retire-and-create"),
        "{second:#}"
    );
    let config = common::sdk_config().await;
    let replica = instance(&config, PRIMARY_REGION, &t.primary_db).await;
    assert!(
        replica
            .read_replica_source_db_instance_identifier()
            .is_some(),
        "the plan's primary id now holds a replica of the DR writer"
    );
}

#[tokio::test]
async fn failback_restores_the_capacity_the_fence_recorded() {
    let t = after_failover().await;
    let ctx = common::context(&t.vars).await;
    fence(&ctx).await;
    assert_eq!(t.group().await, ((0, 0, 0), Some("2/3/6".to_string())));
    // The primary vault holds a recovery point of the plan's source to launch.
    let vault = ctx.plan.primary.backup_vault.clone();
    common::emulator_http::gapfill_admin(
        &common::gapfill_url(),
        "/_gapfill/backup/recovery-points",
        &json!({
            "region": PRIMARY_REGION,
            "vault": vault,
            "resource_arn": WEB_INSTANCE,
            "image_id": "ami-0f0e0d0c0b0a09080",
            "creation_date": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
            "status": "COMPLETED",
        }),
    );
    let mut start = common::event("scale-compute-start.json");
    start["direction"] = json!("failback");
    start["mode"] = json!("graceful");
    let r = invoke(scale_compute::handle, &ctx, start).await.unwrap();
    assert!(
        r["saw"]["capacity_basis"]
            .as_str()
            .unwrap()
            .contains("recorded by the fence 2/3/6"),
        "{r:#}"
    );
    // The plan says 2/2/4; the fence recorded 2/3/6, which failback restores.
    assert_eq!(t.group().await.0, (2, 3, 6));
}
