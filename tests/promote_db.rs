//! promote-db against the emulators: RDS instances and cross-region replicas in moto, the ReplicaLag metric in
//! whatever CloudWatch endpoint the product uses (AWS_ENDPOINT_URL_CLOUDWATCH), Aurora global clusters in ministack
//! (moto answers HTTP 500 to SwitchoverGlobalCluster / FailoverGlobalCluster, see docs/emulators.md).
//!
//! moto's PromoteReadReplica leaves `ReadReplicaSourceDBInstanceIdentifier` set and never reports `StatusInfos`
//! (docs/emulators.md). The product does not take that field alone as the truth: it records the promotion in a tag
//! before calling PromoteReadReplica and, as AWS documents, a replica that is still replicating carries a
//! "read replication" status info (see shared/src/steps/promote_db.rs). So these tests check writability through the product's
//! `status`, never through the lingering field.

mod common;

use std::time::SystemTime;

use aws_config::{Region, SdkConfig};
use common::rds::{
    DR_REGION, Global, PRIMARY_REGION, Pair, aurora_context, event, global_state, instance,
    missing_global, put_replica_lag_at, rds_context, seed_global, tag, writer,
};
use pilotlight::ErrorKind;
use pilotlight::runtime::invoke;
use pilotlight::step::StepInput;
use pilotlight::steps::promote_db::{PROMOTE_REQUESTED_TAG, RPO_TAG, handle};
use serde_json::{Value, json};

/// A MySQL primary in the primary region and its cross-region read replica in the DR region.
async fn seed_pair(config: &SdkConfig) -> Pair {
    common::rds::seed_pair(config, "pldb", "db.t3.micro").await
}

/// A ReplicaLag datapoint for the DR replica, stamped now.
async fn put_replica_lag(config: &SdkConfig, instance: &str, seconds: f64) {
    put_replica_lag_at(config, DR_REGION, instance, seconds, SystemTime::now()).await;
}

#[tokio::test]
async fn events_are_accepted_by_the_step_input() {
    for (name, action, dry_run) in [
        ("promote-db-start.json", "start", false),
        ("promote-db-status.json", "status", false),
        ("promote-db-start-dry-run.json", "start", true),
    ] {
        let input = StepInput::parse("promote-db", common::event(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(input.action).unwrap(),
            json!(action),
            "{name}"
        );
        assert_eq!(input.dry_run, dry_run, "{name}");
        assert_eq!(
            serde_json::to_value(input.direction).unwrap(),
            json!("failover"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn start_promotes_the_replica_and_status_says_writable() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 4.0).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;

    // A dry-run status only reads (a real one would promote: status is start's continuation).
    let mut dry_status = common::event("promote-db-status.json");
    dry_status["dry_run"] = json!(true);
    let before = invoke(handle, &ctx, dry_status).await.unwrap();
    assert_eq!(before["saw"]["writable"], json!(false), "{before:#}");
    assert!(
        before["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["applied"] == json!(false))
    );
    assert_eq!(
        before["saw"]["target"]["replica_source"],
        json!(pair.primary_arn)
    );

    let started = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    assert_eq!(started["saw"]["decision"], json!("promote"), "{started:#}");
    assert_eq!(started["saw"]["replica_lag"]["seconds"], json!(4.0));
    assert_eq!(started["rpo_seconds"], json!(4.0));
    let promote = started["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"].as_str().unwrap().contains("PromoteReadReplica"))
        .unwrap();
    assert_eq!(promote["from"], json!(pair.primary_arn));
    assert_eq!(promote["to"], Value::Null);
    assert_eq!(promote["applied"], json!(true));
    // Ungraceful: the source region is never called, so nothing about it is reported.
    assert!(started["saw"].get("source").is_none());

    // The promotion is recorded on the instance itself.
    let db = instance(&config, DR_REGION, &pair.replica).await;
    assert!(tag(&db, PROMOTE_REQUESTED_TAG).is_some());
    assert_eq!(tag(&db, RPO_TAG), Some("4"));

    let after = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(after["done"], json!(true), "{after:#}");
    assert_eq!(after["saw"]["writable"], json!(true));
    assert!(after["message"].as_str().unwrap().contains("writable"));
    // status reports the RPO estimate recorded at promotion, so the execution's final report carries it.
    assert_eq!(after["rpo_seconds"], json!(4.0));
}

#[tokio::test]
async fn start_three_times_converges_without_error() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;

    // No ReplicaLag datapoint: the lag is unknown, refused without its override...
    let err = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap_err();
    assert!(err.message.contains("allow_unknown_lag"), "{err}");
    let mut start = common::event("promote-db-start.json");
    start["overrides"] = json!({"allow_unknown_lag": true});
    let first = invoke(handle, &ctx, start.clone()).await.unwrap();
    assert_eq!(first["changes"].as_array().unwrap().len(), 2, "{first:#}");
    assert!(
        first["saw"]["rpo_rule"]
            .as_str()
            .unwrap()
            .contains("accepted by allow_unknown_lag"),
        "{first:#}"
    );
    // ...and with it recorded as unknown.
    assert!(
        first["saw"]["replica_lag"]["unknown"].is_string(),
        "{first:#}"
    );
    assert_eq!(first.get("rpo_seconds"), None);
    let state = instance(&config, DR_REGION, &pair.replica).await;
    assert_eq!(tag(&state, RPO_TAG), Some("unknown"));

    for run in 2..=3 {
        let again = invoke(handle, &ctx, common::event("promote-db-start.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            again["saw"]["decision"],
            json!("already-writer"),
            "run {run}: {again:#}"
        );
        assert_eq!(again["changes"], json!([]), "run {run}");
        assert_eq!(again["done"], json!(true), "run {run}");
        assert_eq!(
            instance(&config, DR_REGION, &pair.replica).await,
            state,
            "run {run} changed the instance"
        );
    }
    let status = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(status["done"], json!(true));
}

#[tokio::test]
async fn dry_run_reads_only_and_lists_the_exact_changes() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 7.0).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let replica_before = instance(&config, DR_REGION, &pair.replica).await;
    let primary_before = instance(&config, PRIMARY_REGION, &pair.primary).await;

    let report = invoke(handle, &ctx, common::event("promote-db-start-dry-run.json"))
        .await
        .unwrap();
    assert_eq!(report["dry_run"], json!(true));
    assert_eq!(report["done"], json!(true), "{report:#}");
    assert_eq!(report["rpo_seconds"], json!(7.0));
    let changes = report["changes"].as_array().unwrap();
    assert!(
        changes.iter().all(|c| c["applied"] == json!(false)),
        "{report:#}"
    );
    let promote = changes
        .iter()
        .find(|c| c["field"].as_str().unwrap().contains("PromoteReadReplica"))
        .expect("PromoteReadReplica change");
    assert_eq!(
        promote["resource"].as_str().unwrap(),
        replica_before.db_instance_arn().unwrap()
    );
    assert_eq!(promote["from"], json!(pair.primary_arn));
    assert_eq!(promote["to"], Value::Null);
    let tags = changes
        .iter()
        .find(|c| c["field"].as_str().unwrap().contains("AddTagsToResource"))
        .expect("tag change");
    assert_eq!(tags["from"][PROMOTE_REQUESTED_TAG], Value::Null);
    assert_eq!(tags["to"][RPO_TAG], json!("7"));

    assert_eq!(
        instance(&config, DR_REGION, &pair.replica).await,
        replica_before
    );
    assert_eq!(
        instance(&config, PRIMARY_REGION, &pair.primary).await,
        primary_before
    );
    // Still a replica: a dry-run status says what it would do and changes nothing either.
    let mut dry_status = common::event("promote-db-status.json");
    dry_status["dry_run"] = json!(true);
    let status = invoke(handle, &ctx, dry_status).await.unwrap();
    assert_eq!(status["saw"]["writable"], json!(false));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("dry-run: would promote"),
        "{status:#}"
    );
    assert_eq!(
        instance(&config, DR_REGION, &pair.replica).await,
        replica_before
    );
}

#[tokio::test]
async fn missing_instance_is_not_found_and_names_it() {
    let missing = common::unique("pldb-missing");
    let ctx = rds_context("web-db", &missing).await;
    for name in [
        "promote-db-start.json",
        "promote-db-status.json",
        "promote-db-start-dry-run.json",
    ] {
        let err = invoke(handle, &ctx, common::event(name)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{name}: {err}");
        assert!(err.message.contains(&missing), "{err}");
        assert!(err.message.contains(DR_REGION), "{err}");
        assert!(err.message.contains("PILOTLIGHT_DR_DB_INSTANCE"), "{err}");
    }
}

#[tokio::test]
async fn lag_above_the_maximum_is_refused_and_force_promotes() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 900.0).await; // the reference plan allows 300 s
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let before = instance(&config, DR_REGION, &pair.replica).await;

    let err = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.replica) && err.message.contains("900"),
        "{err}"
    );
    assert!(err.message.contains("allow_replica_lag"), "{err}");
    assert_eq!(
        instance(&config, DR_REGION, &pair.replica).await,
        before,
        "a refused start must change nothing"
    );

    let forced = invoke(
        handle,
        &ctx,
        event(
            "promote-db-start.json",
            &[("overrides", json!({"allow_replica_lag": true}))],
        ),
    )
    .await
    .unwrap();
    assert_eq!(forced["saw"]["decision"], json!("promote"), "{forced:#}");
    assert_eq!(forced["rpo_seconds"], json!(900.0));
    assert!(
        forced["message"]
            .as_str()
            .unwrap()
            .contains("allow_replica_lag")
    );
    let status = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(status["done"], json!(true));
    assert_eq!(status["rpo_seconds"], json!(900.0));
}

#[tokio::test]
async fn failback_onto_a_standalone_former_primary_is_refused() {
    // Failback targets the primary instance. Here it was never re-created as a replica of the DR side: it is not a
    // replica and pilotlight never promoted it, so it may hold stale data. The step must refuse, not call it the
    // writer.
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let before = instance(&config, PRIMARY_REGION, &pair.primary).await;

    let err = invoke(
        handle,
        &ctx,
        event("promote-db-start.json", &[("direction", json!("failback"))]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.primary) && err.message.contains("not a read replica"),
        "{err}"
    );
    assert!(err.message.contains(PRIMARY_REGION), "{err}");
    assert_eq!(
        instance(&config, PRIMARY_REGION, &pair.primary).await,
        before
    );

    // An operator who knows it is the writer says so explicitly.
    let forced = invoke(
        handle,
        &ctx,
        event(
            "promote-db-start.json",
            &[
                ("direction", json!("failback")),
                ("overrides", json!({"allow_stale_writer": true})),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        forced["saw"]["decision"],
        json!("already-writer"),
        "{forced:#}"
    );
    assert_eq!(forced["changes"], json!([]));
}

#[tokio::test]
async fn graceful_reads_the_source_best_effort_and_never_blocks_on_it() {
    let config = common::sdk_config().await;

    // Source answers: what it saw is reported.
    let pair = seed_pair(&config).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let report = invoke(
        handle,
        &ctx,
        event("promote-db-start.json", &[("mode", json!("graceful"))]),
    )
    .await
    .unwrap();
    assert_eq!(
        report["saw"]["source"]["instance"],
        json!(pair.primary),
        "{report:#}"
    );
    assert_eq!(report["saw"]["source"]["status"], json!("available"));

    // Source region dead (nothing listens on the discard port): reported, and the promotion still happens.
    let pair = seed_pair(&config).await;
    let mut ctx = rds_context(&pair.primary, &pair.replica).await;
    ctx.aws.primary.rds = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&config)
            .region(Region::new(PRIMARY_REGION))
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let report = invoke(
        handle,
        &ctx,
        event("promote-db-start.json", &[("mode", json!("graceful"))]),
    )
    .await
    .unwrap();
    assert!(report["saw"]["source"]["error"].is_string(), "{report:#}");
    assert_eq!(report["saw"]["decision"], json!("promote"));
    let status = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(status["done"], json!(true));
}

// ------------------------------------------------------------------------------------------------------------
// Aurora global database (ministack)
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn aurora_ungraceful_fails_over_with_data_loss_allowed_and_status_follows_the_writer() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg").await;
    let ctx = aurora_context(&config, &g);

    let before = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(before["done"], json!(false), "{before:#}");
    assert_eq!(before["saw"]["target_is_writer"], json!(false));

    let started = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    let change = &started["changes"][0];
    assert!(
        change["field"]
            .as_str()
            .unwrap()
            .contains("FailoverGlobalCluster (AllowDataLoss)"),
        "{started:#}"
    );
    assert_eq!(change["from"], json!(g.primary_arn));
    assert_eq!(change["to"], json!(g.dr_arn));
    assert_eq!(change["applied"], json!(true));
    assert_eq!(
        started.get("rpo_seconds"),
        None,
        "a failover with data loss has no measured RPO here"
    );
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.dr_arn.as_str())
    );

    let status = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(status["done"], json!(true), "{status:#}");
    assert_eq!(status["saw"]["target_is_writer"], json!(true));
}

#[tokio::test]
async fn aurora_graceful_switches_over_and_reruns_converge() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg").await;
    let ctx = aurora_context(&config, &g);
    let graceful = event("promote-db-start.json", &[("mode", json!("graceful"))]);

    let first = invoke(handle, &ctx, graceful.clone()).await.unwrap();
    assert!(
        first["changes"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("SwitchoverGlobalCluster"),
        "{first:#}"
    );
    assert_eq!(
        first["rpo_seconds"],
        json!(0.0),
        "a switchover loses no data"
    );
    for run in 2..=3 {
        let again = invoke(handle, &ctx, graceful.clone())
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            again["saw"]["decision"],
            json!("already-writer"),
            "run {run}: {again:#}"
        );
        assert_eq!(again["changes"], json!([]));
        assert_eq!(again["done"], json!(true));
        assert_eq!(
            writer(&config, &g.id).await.as_deref(),
            Some(g.dr_arn.as_str())
        );
    }
}

#[tokio::test]
async fn aurora_dry_run_changes_nothing() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg").await;
    let ctx = aurora_context(&config, &g);
    let before = global_state(&config, &g.id).await;

    let report = invoke(handle, &ctx, common::event("promote-db-start-dry-run.json"))
        .await
        .unwrap();
    assert_eq!(report["done"], json!(true), "{report:#}");
    let change = &report["changes"][0];
    assert!(
        change["field"]
            .as_str()
            .unwrap()
            .contains("FailoverGlobalCluster"),
        "{report:#}"
    );
    assert_eq!(
        (&change["from"], &change["to"], &change["applied"]),
        (&json!(g.primary_arn), &json!(g.dr_arn), &json!(false))
    );
    assert_eq!(global_state(&config, &g.id).await, before);
}

#[tokio::test]
async fn aurora_missing_global_cluster_is_not_found_and_names_it() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = missing_global("plg-missing");
    let ctx = aurora_context(&config, &g);
    let err = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(&g.id) && err.message.contains("PILOTLIGHT_GLOBAL_CLUSTER"),
        "{err}"
    );
}

#[tokio::test]
async fn aurora_target_outside_the_global_cluster_is_refused() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg").await;
    let stray = Global {
        dr_arn: format!(
            "arn:aws:rds:{DR_REGION}:000000000000:cluster:{}-stray",
            g.id
        ),
        ..g
    };
    let ctx = aurora_context(&config, &stray);
    let err = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains("not a member") && err.message.contains(&stray.dr_arn),
        "{err}"
    );
}

/// Issue #10: a ReplicaLag of 0 from ten minutes ago (before the outage) is not an RPO of 0. The preflight reports
/// the lag as unknown with the datapoint's age, `start` refuses without `allow_unknown_lag`, and with it the
/// report says which rule let the promotion through.
#[tokio::test]
async fn a_stale_lag_datapoint_is_unknown_lag_in_preflight_and_start() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    put_replica_lag_at(
        &config,
        DR_REGION,
        &pair.replica,
        0.0,
        SystemTime::now() - std::time::Duration::from_secs(600),
    )
    .await;
    let before = instance(&config, DR_REGION, &pair.replica).await;

    let preflight = invoke(
        handle,
        &ctx,
        event("promote-db-start.json", &[("action", json!("preflight"))]),
    )
    .await
    .unwrap();
    assert_eq!(preflight["done"], json!(true));
    assert_eq!(preflight["changes"], json!([]));
    assert_eq!(preflight["saw"]["passed"], json!(false), "{preflight:#}");
    let checks = preflight["saw"]["checks"].as_array().unwrap();
    let replica = checks.iter().find(|c| c["check"] == "db.replica").unwrap();
    assert_eq!(replica["passed"], json!(true), "{replica:#}");
    let lag = checks.iter().find(|c| c["check"] == "db.lag").unwrap();
    assert_eq!(lag["passed"], json!(false), "{lag:#}");
    assert_eq!(lag["override_name"], json!("allow_unknown_lag"));
    assert_eq!(lag["seen"]["seconds"], Value::Null);
    assert!(
        lag["seen"]["age_seconds"].as_i64().unwrap() >= 600,
        "{lag:#}"
    );
    assert_eq!(lag["limit"]["max_age_seconds"], json!(120));

    let err = invoke(handle, &ctx, event("promote-db-start.json", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("allow_unknown_lag"), "{err}");
    assert_eq!(
        instance(&config, DR_REGION, &pair.replica).await,
        before,
        "nothing changed"
    );

    let accepted = invoke(
        handle,
        &ctx,
        event(
            "promote-db-start.json",
            &[("overrides", json!({"allow_unknown_lag": true}))],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        accepted["saw"]["decision"],
        json!("promote"),
        "{accepted:#}"
    );
    assert_eq!(
        accepted.get("rpo_seconds"),
        None,
        "the RPO is unknown, not 0"
    );
    assert!(
        accepted["saw"]["rpo_rule"]
            .as_str()
            .unwrap()
            .contains("allow_unknown_lag")
    );
    assert!(
        accepted["saw"]["replica_lag"]["age_seconds"]
            .as_i64()
            .unwrap()
            >= 600
    );
}
