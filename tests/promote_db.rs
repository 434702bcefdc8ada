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
use common::faultproxy::FaultProxy;
use common::rds::{
    DR_REGION, Global, PRIMARY_REGION, Pair, aurora_context, event, global_state, instance,
    missing_global, put_global_lag_at, put_replica_lag_at, rds_context, seed_global, tag, writer,
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
    )
    .into();
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
    // The secondary publishes its RPO lag (milliseconds): 1.5 s, 30 s old.
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        1500.0,
        SystemTime::now() - std::time::Duration::from_secs(30),
    )
    .await;

    // A dry-run status (start's continuation) says what it would do and changes nothing.
    let before = invoke(
        handle,
        &ctx,
        event("promote-db-status.json", &[("dry_run", json!(true))]),
    )
    .await
    .unwrap();
    assert_eq!(
        before["saw"]["target_is_writer"],
        json!(false),
        "{before:#}"
    );
    assert!(
        before["message"]
            .as_str()
            .unwrap()
            .starts_with("dry-run: would call FailoverGlobalCluster"),
        "{before:#}"
    );
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.primary_arn.as_str())
    );

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
        started["rpo_seconds"],
        json!(1.5),
        "the RPO is the secondary's lag, in seconds: {started:#}"
    );
    let lag = &started["saw"]["replica_lag"];
    assert_eq!(lag["metric"], json!("AuroraGlobalDBRPOLag"), "{started:#}");
    assert!(
        (30..120).contains(&lag["age_seconds"].as_i64().unwrap()),
        "{lag:#}"
    );
    assert!(
        started["saw"]["rpo_rule"]
            .as_str()
            .unwrap()
            .contains("within the plan's maximum of 300 s"),
        "{started:#}"
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
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        200.0,
        SystemTime::now(),
    )
    .await;
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

/// Issue #10: Aurora's ungraceful FailoverGlobalCluster (data loss allowed) is gated on the secondary's global
/// database lag as an RDS replica is on ReplicaLag. A pre-outage AuroraGlobalDBRPOLag of 0 ten minutes old is
/// unknown lag: the preflight finding names `allow_unknown_lag`, `start` refuses and changes nothing. A fresh lag
/// above the plan's maximum is a finding for `allow_replica_lag`; with it the failover goes ahead and the report
/// names the rule and the lag with its age.
#[tokio::test]
async fn aurora_stale_or_over_limit_global_lag_pauses_the_preflight_and_start_refuses() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg-lag").await;
    let ctx = aurora_context(&config, &g);
    let preflight = || async {
        let report = invoke(
            handle,
            &ctx,
            event("promote-db-start.json", &[("action", json!("preflight"))]),
        )
        .await
        .unwrap();
        assert_eq!(report["changes"], json!([]));
        let checks = report["saw"]["checks"].as_array().unwrap().clone();
        let lag = checks
            .iter()
            .find(|c| c["check"] == "db.lag")
            .unwrap()
            .clone();
        let member = checks
            .iter()
            .find(|c| c["check"] == "db.global-member")
            .unwrap();
        assert_eq!(member["passed"], json!(true), "{member:#}");
        (report["saw"]["passed"].clone(), lag)
    };

    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        0.0,
        SystemTime::now() - std::time::Duration::from_secs(600),
    )
    .await;
    let (passed, lag) = preflight().await;
    assert_eq!(passed, json!(false), "{lag:#}");
    assert_eq!(lag["override_name"], json!("allow_unknown_lag"), "{lag:#}");
    assert_eq!(lag["seen"]["metric"], json!("AuroraGlobalDBRPOLag"));
    assert_eq!(lag["seen"]["seconds"], Value::Null);
    assert!(
        lag["seen"]["age_seconds"].as_i64().unwrap() >= 600,
        "{lag:#}"
    );
    assert_eq!(lag["limit"]["max_age_seconds"], json!(120));

    let before = global_state(&config, &g.id).await;
    let err = start_with(&ctx, json!({})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains("allow_unknown_lag")
            && err.message.contains("AuroraGlobalDBRPOLag")
            && err.message.contains(&g.id),
        "{err}"
    );
    assert_eq!(
        global_state(&config, &g.id).await,
        before,
        "nothing changed"
    );

    // Fresh, but above the plan's 300 s: 900 s (900 000 ms).
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        900_000.0,
        SystemTime::now(),
    )
    .await;
    let (passed, lag) = preflight().await;
    assert_eq!(passed, json!(false), "{lag:#}");
    assert_eq!(lag["override_name"], json!("allow_replica_lag"), "{lag:#}");
    assert_eq!(lag["seen"]["seconds"], json!(900.0));
    let err = start_with(&ctx, json!({})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains("900 s") && err.message.contains("allow_replica_lag"),
        "{err}"
    );
    // allow_unknown_lag does not accept a known lag above the maximum.
    let err = start_with(&ctx, json!({"allow_unknown_lag": true}))
        .await
        .unwrap_err();
    assert!(err.message.contains("allow_replica_lag"), "{err}");
    assert_eq!(
        global_state(&config, &g.id).await,
        before,
        "nothing changed"
    );

    let accepted = start_with(&ctx, json!({"allow_replica_lag": true}))
        .await
        .unwrap();
    assert_eq!(
        accepted["saw"]["decision"],
        json!("promote"),
        "{accepted:#}"
    );
    assert_eq!(accepted["rpo_seconds"], json!(900.0));
    assert!(
        accepted["saw"]["rpo_rule"]
            .as_str()
            .unwrap()
            .contains("accepted by allow_replica_lag"),
        "{accepted:#}"
    );
    assert_eq!(
        accepted["saw"]["overrides"],
        json!(["allow_replica_lag"]),
        "{accepted:#}"
    );
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.dr_arn.as_str())
    );
}

/// promote-db `start` (the events/ file) with these overrides.
async fn start_with(
    ctx: &pilotlight::runtime::Context,
    overrides: Value,
) -> pilotlight::Result<Value> {
    invoke(
        handle,
        ctx,
        event("promote-db-start.json", &[("overrides", overrides)]),
    )
    .await
}

/// The DR region's RDS client of `ctx` pointed at `proxy` (the rest of the context unchanged).
fn dr_rds_through(ctx: &mut pilotlight::runtime::Context, proxy: &FaultProxy) {
    let conf = ctx
        .aws
        .dr
        .rds()
        .config()
        .to_builder()
        .endpoint_url(proxy.url())
        .build();
    ctx.aws.dr.rds = aws_sdk_rds::Client::from_conf(conf).into();
}

fn count(proxy: &FaultProxy, operation: &str) -> usize {
    proxy
        .operations()
        .iter()
        .filter(|o| o.as_str() == operation)
        .count()
}

// Wait, don't fail: the replica is backing-up for its first three reads (the faultproxy's db-status mode, which also
// answers InvalidDBInstanceState to mutating calls meanwhile, as AWS does). preflight says "will wait" (passed, a
// warning); start and the first status report "not yet" (done false, no error, nothing sent); the next status finds
// it available and promotes it itself; the one after sees it writable.
#[tokio::test]
async fn a_replica_backing_up_is_waited_for_and_status_promotes_it_once_available() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 2.0).await;
    let proxy = FaultProxy::start(&common::moto_url());
    proxy.set_rules(json!([{"fault": "db-status", "db_instance": pair.replica, "status": "backing-up", "times": 3}]));
    let mut ctx = rds_context(&pair.primary, &pair.replica).await;
    dr_rds_through(&mut ctx, &proxy);

    // Preflight: a replica backing up is "will wait", a passed check with a warning, not a finding.
    let preflight = invoke(
        handle,
        &ctx,
        event("promote-db-start.json", &[("action", json!("preflight"))]),
    )
    .await
    .unwrap();
    assert_eq!(preflight["saw"]["passed"], json!(true), "{preflight:#}");
    let checks = preflight["saw"]["checks"].as_array().unwrap();
    let replica = checks.iter().find(|c| c["check"] == "db.replica").unwrap();
    assert_eq!(replica["passed"], json!(true), "{replica:#}");
    assert_eq!(replica["warning"], json!(true), "{replica:#}");
    let will_wait = format!(
        "will wait: waiting: {} in {DR_REGION} is backing-up",
        pair.replica
    );
    assert!(
        replica["message"].as_str().unwrap().starts_with(&will_wait),
        "{replica:#}"
    );
    assert_eq!(
        count(&proxy, "DescribeDBInstances"),
        1,
        "{:?}",
        proxy.operations()
    );

    let started = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    assert_eq!(started["done"], json!(false), "{started:#}");
    assert_eq!(started["saw"]["decision"], json!("wait"));
    assert_eq!(started["saw"]["target"]["status"], json!("backing-up"));
    let waiting = format!("waiting: {} in {DR_REGION} is backing-up", pair.replica);
    assert!(
        started["message"].as_str().unwrap().starts_with(&waiting),
        "{started:#}"
    );
    assert_eq!(started["changes"], json!([]));
    // The lag (the RPO basis) is reported even while waiting.
    assert_eq!(started["saw"]["replica_lag"]["seconds"], json!(2.0));

    let still = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(still["done"], json!(false), "{still:#}");
    assert!(
        still["message"].as_str().unwrap().starts_with(&waiting),
        "{still:#}"
    );
    assert_eq!(count(&proxy, "PromoteReadReplica"), 0);
    assert_eq!(count(&proxy, "AddTagsToResource"), 0);
    let db = instance(&config, DR_REGION, &pair.replica).await;
    assert_eq!(
        tag(&db, PROMOTE_REQUESTED_TAG),
        None,
        "nothing recorded while waiting"
    );

    // The backup is over: status observes it available and asks for the promotion itself.
    let promoting = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(
        promoting["saw"]["decision"],
        json!("promote"),
        "{promoting:#}"
    );
    assert_eq!(promoting["done"], json!(false));
    assert!(
        promoting["message"]
            .as_str()
            .unwrap()
            .contains("requested by status"),
        "{promoting:#}"
    );
    assert_eq!(promoting["rpo_seconds"], json!(2.0));
    assert_eq!(count(&proxy, "PromoteReadReplica"), 1);

    let done = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(done["done"], json!(true), "{done:#}");
    assert_eq!(done["saw"]["writable"], json!(true));
    assert_eq!(done["rpo_seconds"], json!(2.0));
    // Asked once, and nothing was ever refused by the (emulated) busy instance.
    assert_eq!(count(&proxy, "PromoteReadReplica"), 1);
    assert!(
        proxy.requests().iter().all(|r| r["status"] == json!(200)),
        "{:#?}",
        proxy.requests()
    );
}

// AWS answers InvalidDBInstanceState when the replica changed state between the read and PromoteReadReplica (a backup
// started): start reports "not yet" instead of failing, with the promotion marked not applied. (What the next status
// sees is AWS's replica status info, which moto never reports: docs/emulators.md; the first test shows the retry.)
#[tokio::test]
async fn invalid_db_instance_state_from_promote_read_replica_is_not_yet() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 1.0).await;
    let proxy = FaultProxy::start(&common::moto_url());
    proxy.set_rules(json!([{"service": "rds", "operation": "PromoteReadReplica", "fault": "throttle",
        "code": "InvalidDBInstanceState", "message": "Instance is not in available state.", "times": 1}]));
    let mut ctx = rds_context(&pair.primary, &pair.replica).await;
    dr_rds_through(&mut ctx, &proxy);
    let started = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    assert_eq!(started["done"], json!(false), "{started:#}");
    assert!(
        started["message"]
            .as_str()
            .unwrap()
            .starts_with("waiting: AWS did not take the promotion"),
        "{started:#}"
    );
    let promote = started["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"].as_str().unwrap().contains("PromoteReadReplica"))
        .unwrap();
    assert_eq!(promote["applied"], json!(false));
    assert_eq!(
        count(&proxy, "PromoteReadReplica"),
        1,
        "not retried by the SDK: a state, not throttling"
    );
}

/// The plan asks for production size once the DR replica is promoted.
async fn production_context(pair: &Pair, proxy: &FaultProxy) -> pilotlight::runtime::Context {
    let mut ctx = common::context(&common::plan_vars(&[
        ("PILOTLIGHT_PRIMARY_DB_INSTANCE", pair.primary.clone()),
        ("PILOTLIGHT_DR_DB_INSTANCE", pair.replica.clone()),
        (
            "PILOTLIGHT_DR_DB_PROMOTED_INSTANCE_CLASS",
            "db.r6g.large".into(),
        ),
        ("PILOTLIGHT_DR_DB_PROMOTED_MULTI_AZ", "true".into()),
    ]))
    .await;
    dr_rds_through(&mut ctx, proxy);
    ctx
}

// Production-ready after promotion: the status that first sees the promoted instance writable asks for the plan's
// class and Multi-AZ once (ApplyImmediately, not waited for: done at once) and reports it; a second status observes it
// applied (or pending) and asks nothing. A dry-run says what it would modify.
#[tokio::test]
async fn the_promoted_instance_is_modified_to_the_plans_size_once() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 3.0).await;
    let proxy = FaultProxy::start(&common::moto_url());
    let ctx = production_context(&pair, &proxy).await;

    let dry = invoke(handle, &ctx, common::event("promote-db-start-dry-run.json"))
        .await
        .unwrap();
    assert!(
        dry["message"]
            .as_str()
            .unwrap()
            .contains("would modify it to class db.r6g.large, Multi-AZ true"),
        "{dry:#}"
    );
    assert!(dry["changes"].as_array().unwrap().iter().any(|c| c["field"]
        == json!("ModifyDBInstance: DBInstanceClass (ApplyImmediately)")
        && c["applied"] == json!(false)));

    let started = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    assert_eq!(started["saw"]["decision"], json!("promote"), "{started:#}");
    assert_eq!(
        count(&proxy, "ModifyDBInstance"),
        0,
        "nothing is resized before the promotion finished"
    );

    let ready = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(ready["done"], json!(true), "{ready:#}");
    let promoted = &ready["saw"]["promoted"];
    assert_eq!(
        promoted["asked"],
        json!({"DBInstanceClass": "db.r6g.large", "MultiAZ": true}),
        "{ready:#}"
    );
    assert_eq!(promoted["instance_class"]["current"], json!("db.t3.micro"));
    assert_eq!(promoted["instance_class"]["state"], json!("ask"));
    assert_eq!(promoted["waited"], json!(false));
    assert!(promoted.get("pending_after").is_some(), "{ready:#}");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("not waited for"),
        "{ready:#}"
    );
    let fields: Vec<&str> = ready["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["applied"] == json!(true))
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "ModifyDBInstance: DBInstanceClass (ApplyImmediately)",
            "ModifyDBInstance: MultiAZ (ApplyImmediately)"
        ]
    );
    assert_eq!(count(&proxy, "ModifyDBInstance"), 1);

    // Once asked, never again: AWS shows it applied or pending.
    let again = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(again["done"], json!(true));
    assert_eq!(again["changes"], json!([]), "{again:#}");
    assert!(again["saw"]["promoted"].get("asked").is_none(), "{again:#}");
    let state = again["saw"]["promoted"]["instance_class"]["state"]
        .as_str()
        .unwrap();
    assert!(state == "applied" || state == "pending", "{again:#}");
    assert_eq!(count(&proxy, "ModifyDBInstance"), 1);
    // And a re-run of start (the writer already) asks nothing either.
    let rerun = invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    assert_eq!(rerun["saw"]["decision"], json!("already-writer"));
    assert_eq!(count(&proxy, "ModifyDBInstance"), 1);
}

// A failed modification is a warning in the report, never a failed failover: the database already is the writer.
#[tokio::test]
async fn a_failed_production_modify_is_a_warning_and_the_promotion_is_done() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config).await;
    put_replica_lag(&config, &pair.replica, 3.0).await;
    let proxy = FaultProxy::start(&common::moto_url());
    let ctx = production_context(&pair, &proxy).await;
    invoke(handle, &ctx, common::event("promote-db-start.json"))
        .await
        .unwrap();
    proxy.set_rules(
        json!([{"service": "rds", "operation": "ModifyDBInstance", "fault": "error500"}]),
    );
    let ready = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap();
    assert_eq!(ready["done"], json!(true), "{ready:#}");
    let warning = ready["saw"]["promoted"]["warning"].as_str().unwrap();
    assert!(
        warning.contains(&pair.replica)
            && warning.contains("PILOTLIGHT_DR_DB_PROMOTED_")
            && warning.contains("modify it yourself"),
        "{warning}"
    );
    assert!(
        ready["message"].as_str().unwrap().contains("WARNING"),
        "{ready:#}"
    );
    assert!(
        ready["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["applied"] == json!(false)),
        "{ready:#}"
    );
    let db = instance(&config, DR_REGION, &pair.replica).await;
    assert_eq!(
        db.db_instance_class(),
        Some("db.t3.micro"),
        "nothing was changed"
    );
}

// Wait, don't fail, for Aurora: AWS answers InvalidDBClusterStateFault to the first FailoverGlobalCluster (a member
// cluster changed state since it was read), as it does while a cluster is backing up or being modified. start reports
// "not yet" (done false, no error, the change not applied); status is start's continuation and applies the same lag
// gate: without the override the lag above the maximum is refused (nothing sent), with it status asks for the
// failover itself; the next status sees the target writing.
#[tokio::test]
async fn aurora_invalid_cluster_state_is_not_yet_and_status_fails_over_under_the_lag_gate() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg-wait").await;
    let proxy = FaultProxy::start(&common::ministack_url());
    proxy.set_rules(json!([{"service": "rds", "operation": "FailoverGlobalCluster", "fault": "throttle",
        "code": "InvalidDBClusterStateFault", "message": "DB cluster is not in available state.", "times": 1}]));
    let mut ctx = aurora_context(&config, &g);
    dr_rds_through(&mut ctx, &proxy);
    // Fresh, above the plan's 300 s: 900 s (900 000 ms), accepted by allow_replica_lag.
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        900_000.0,
        SystemTime::now(),
    )
    .await;
    let allow = json!({"allow_replica_lag": true});

    let started = start_with(&ctx, allow.clone()).await.unwrap();
    assert_eq!(started["done"], json!(false), "{started:#}");
    assert!(
        started["message"]
            .as_str()
            .unwrap()
            .starts_with("waiting: AWS did not take the FailoverGlobalCluster"),
        "{started:#}"
    );
    assert_eq!(
        started["changes"][0]["applied"],
        json!(false),
        "{started:#}"
    );
    assert_eq!(count(&proxy, "FailoverGlobalCluster"), 1);
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.primary_arn.as_str())
    );

    // status without the override: the lag gate applies, nothing is sent.
    let err = invoke(handle, &ctx, common::event("promote-db-status.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("allow_replica_lag"), "{err}");
    assert_eq!(count(&proxy, "FailoverGlobalCluster"), 1);

    let status = |overrides: Value| {
        invoke(
            handle,
            &ctx,
            event("promote-db-status.json", &[("overrides", overrides)]),
        )
    };
    let promoting = status(allow.clone()).await.unwrap();
    assert_eq!(
        promoting["saw"]["decision"],
        json!("promote"),
        "{promoting:#}"
    );
    assert_eq!(promoting["done"], json!(false));
    assert!(
        promoting["message"]
            .as_str()
            .unwrap()
            .contains("requested by status"),
        "{promoting:#}"
    );
    assert_eq!(promoting["changes"][0]["applied"], json!(true));
    assert_eq!(promoting["rpo_seconds"], json!(900.0));
    assert!(
        promoting["saw"]["rpo_rule"]
            .as_str()
            .unwrap()
            .contains("accepted by allow_replica_lag"),
        "{promoting:#}"
    );
    assert_eq!(count(&proxy, "FailoverGlobalCluster"), 2);
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.dr_arn.as_str())
    );

    let done = status(allow).await.unwrap();
    assert_eq!(done["done"], json!(true), "{done:#}");
    assert_eq!(done["saw"]["target_is_writer"], json!(true));
    assert_eq!(
        count(&proxy, "FailoverGlobalCluster"),
        2,
        "asked once more, not again"
    );
}

// Wait, don't fail, for a graceful switchover: the global cluster is modifying for its first three reads (the
// faultproxy's db-status mode with global_cluster, which also answers InvalidGlobalClusterStateFault to a switch of it
// meanwhile, as AWS does). preflight says "will wait" (passed, a warning); start and the first status report "not
// yet" (done false, no error, nothing sent); the next status finds it available and asks for the switchover itself;
// the one after sees the target writing.
#[tokio::test]
async fn aurora_global_cluster_modifying_is_waited_for_and_status_switches_over_once_available() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plg-busy").await;
    let proxy = FaultProxy::start(&common::ministack_url());
    proxy.set_rules(
        json!([{"fault": "db-status", "global_cluster": g.id, "status": "modifying", "times": 3}]),
    );
    let mut ctx = aurora_context(&config, &g);
    dr_rds_through(&mut ctx, &proxy);
    let graceful = |action: &str| {
        event(
            "promote-db-start.json",
            &[("mode", json!("graceful")), ("action", json!(action))],
        )
    };
    let waiting = format!("waiting: global cluster {} is modifying", g.id);

    let preflight = invoke(handle, &ctx, graceful("preflight")).await.unwrap();
    let checks = preflight["saw"]["checks"].as_array().unwrap();
    let member = checks
        .iter()
        .find(|c| c["check"] == "db.global-member")
        .unwrap();
    assert_eq!(member["passed"], json!(true), "{member:#}");
    assert_eq!(member["warning"], json!(true), "{member:#}");
    assert!(
        member["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("will wait: {waiting}")),
        "{member:#}"
    );

    for action in ["start", "status"] {
        let report = invoke(handle, &ctx, graceful(action)).await.unwrap();
        assert_eq!(report["done"], json!(false), "{action}: {report:#}");
        assert_eq!(report["saw"]["decision"], json!("wait"), "{action}");
        assert!(
            report["message"].as_str().unwrap().starts_with(&waiting),
            "{action}: {report:#}"
        );
        assert_eq!(report["changes"], json!([]), "{action}");
    }
    assert_eq!(count(&proxy, "SwitchoverGlobalCluster"), 0);
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.primary_arn.as_str())
    );

    // The modification is over: status observes it available and asks for the switchover itself.
    let switching = invoke(handle, &ctx, graceful("status")).await.unwrap();
    assert_eq!(
        switching["saw"]["decision"],
        json!("promote"),
        "{switching:#}"
    );
    assert!(
        switching["message"]
            .as_str()
            .unwrap()
            .starts_with("SwitchoverGlobalCluster to ")
            && switching["message"]
                .as_str()
                .unwrap()
                .contains("requested by status"),
        "{switching:#}"
    );
    assert_eq!(switching["rpo_seconds"], json!(0.0));
    assert_eq!(count(&proxy, "SwitchoverGlobalCluster"), 1);

    let done = invoke(handle, &ctx, graceful("status")).await.unwrap();
    assert_eq!(done["done"], json!(true), "{done:#}");
    assert_eq!(
        writer(&config, &g.id).await.as_deref(),
        Some(g.dr_arn.as_str())
    );
    // Asked once, and nothing was ever refused by the (emulated) busy global cluster.
    assert_eq!(count(&proxy, "SwitchoverGlobalCluster"), 1);
    assert!(
        proxy.requests().iter().all(|r| r["status"] == json!(200)),
        "{:#?}",
        proxy.requests()
    );
}
