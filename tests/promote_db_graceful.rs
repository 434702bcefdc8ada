//! promote-db's graceful-path actions (`prepare`, `catchup`, `reprotect`) against the emulators: RDS instances and
//! cross-region replicas in moto, ReplicaLag in the CloudWatch the product uses (AWS_ENDPOINT_URL_CLOUDWATCH,
//! ministack), Aurora global clusters in ministack.
//!
//! moto's quirks that matter here (docs/emulators.md, and measured for this step):
//! * PromoteReadReplica leaves `ReadReplicaSourceDBInstanceIdentifier` set and never reports `StatusInfos`, so after
//!   a failover the promoted DR instance still claims to be a replica of the old primary. AWS clears that field when
//!   a promotion finishes; the product decides from that and from its own promotion record (the
//!   `pilotlight:promote-requested-at` tag), never from the lingering field alone.
//! * CreateDBInstanceReadReplica makes the replica a copy of the source object: every tag (the promotion record
//!   included), InstanceCreateTime and DbiResourceId are the source's. The product's promotion record therefore
//!   names the ARN it was written on (`pilotlight:promoted-instance`), and a copy on another instance is ignored.
//!   The tests tell instances apart by a marker tag of their own, not by DbiResourceId.
//! * Renaming (ModifyDBInstance NewDBInstanceIdentifier, ApplyImmediately) takes effect at once, keeps tags and
//!   InstanceCreateTime, and the renamed instance keeps listing its old replicas; replicas keep naming the source's
//!   old ARN. After the old primary `P` is renamed and a new `P` is created as a replica of the DR writer, the DR
//!   writer's lingering source field names the new `P`, so in moto each names the other as its source.
//! * A cross-region CreateDBInstanceReadReplica from an instance moto still thinks is a replica works.
//! * CreateDBInstanceReadReplica with an identifier that exists does not fail (AWS: DBInstanceAlreadyExists), and
//!   new instances are `available` at once (AWS: `creating` for minutes). So the "second call while creating creates
//!   nothing" case is a unit test of the decision (shared/src/steps/promote_db/graceful.rs); here the re-runs observe an
//!   available replica and must change nothing.

mod common;

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_rds::types::DbInstance;
use common::rds::{
    DR_REGION, PRIMARY_REGION, Pair, aurora_context, create_primary, describe, event, global_state,
    instance, missing_global, put_global_lag_at, put_replica_lag_at, rds_context, rds_in,
    seed_global, tag,
};
use pilotlight::ErrorKind;
use pilotlight::runtime::{Context, invoke};
use pilotlight::step::{Action, StepInput};
use pilotlight::steps::promote_db::handle;
use serde_json::{Value, json};

const GRACEFUL_ACTIONS: &[Action] = &[Action::Prepare, Action::CatchUp, Action::Reprotect];

fn failover(name: &str) -> Value {
    event(name, &[("direction", json!("failover"))])
}

fn dry_run(name: &str, direction: &str) -> Value {
    event(
        name,
        &[("direction", json!(direction)), ("dry_run", json!(true))],
    )
}

/// A MySQL primary (db.t3.micro) and its cross-region read replica `<primary>-dr` of `replica_class`.
async fn seed_pair(config: &SdkConfig, replica_class: &str) -> Pair {
    common::rds::seed_pair(config, "plgd", replica_class).await
}

/// The identifiers in a region that start with `prefix` (this test's names: other tests run in parallel), to show
/// that nothing was renamed or created.
async fn identifiers(config: &SdkConfig, region: &str, prefix: &str) -> Vec<String> {
    let mut ids: Vec<String> = rds_in(config, region)
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .filter_map(|d| d.db_instance_identifier())
        .filter(|id| *id == prefix || id.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Both instances of the pair, as a step finds them (compared before and after to show nothing changed).
async fn instances(config: &SdkConfig, pair: &Pair) -> (DbInstance, DbInstance) {
    (
        instance(config, PRIMARY_REGION, &pair.primary).await,
        instance(config, DR_REGION, &pair.replica).await,
    )
}

/// `instances` and this test's identifiers in `region`, so that a rename or a new instance shows too.
async fn pair_state(
    config: &SdkConfig,
    pair: &Pair,
    region: &str,
) -> (DbInstance, DbInstance, Vec<String>) {
    let (primary, replica) = instances(config, pair).await;
    (
        primary,
        replica,
        identifiers(config, region, &pair.primary).await,
    )
}

const MARKER: &str = "test:instance";

/// Tags an instance so the test can tell it apart after renames (moto copies DbiResourceId onto replicas).
async fn mark(config: &SdkConfig, region: &str, arn: &str, value: &str) {
    rds_in(config, region)
        .add_tags_to_resource()
        .resource_name(arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key(MARKER)
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("mark instance");
}

fn marker(db: &DbInstance) -> Option<&str> {
    tag(db, MARKER)
}

/// The change whose field starts with `field`.
fn change<'a>(report: &'a Value, field: &str) -> &'a Value {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"].as_str().unwrap().starts_with(field))
        .unwrap_or_else(|| panic!("no {field} change in {report:#}"))
}

/// An ungraceful failover by the product itself: start, then status until writable.
async fn fail_over(ctx: &Context) {
    // The emulators publish no ReplicaLag: the unknown lag is accepted by name.
    let mut start = failover("promote-db-prepare.json").tap_action("start");
    start["overrides"] = json!({"allow_unknown_lag": true});
    let started = invoke(handle, ctx, start).await.unwrap();
    assert_eq!(started["saw"]["decision"], json!("promote"), "{started:#}");
    let status = invoke(
        handle,
        ctx,
        failover("promote-db-prepare.json").tap_action("status"),
    )
    .await
    .unwrap();
    assert_eq!(status["done"], json!(true), "{status:#}");
}

trait WithAction {
    fn tap_action(self, action: &str) -> Value;
}

impl WithAction for Value {
    fn tap_action(mut self, action: &str) -> Value {
        self["action"] = json!(action);
        if action == "start" || action == "status" {
            self["mode"] = json!("ungraceful");
        }
        self
    }
}

#[tokio::test]
async fn events_are_accepted_by_the_step_input() {
    for (name, action) in [
        ("promote-db-prepare.json", "prepare"),
        ("promote-db-catchup.json", "catchup"),
        ("promote-db-reprotect.json", "reprotect"),
    ] {
        let input = StepInput::parse_with("promote-db", common::event(name), GRACEFUL_ACTIONS)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(input.action).unwrap(),
            json!(action),
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(input.direction).unwrap(),
            json!("failback"),
            "{name}"
        );
        assert_eq!(serde_json::to_value(input.mode).unwrap(), json!("graceful"));
        assert!(
            !input.dry_run && input.overrides == Default::default(),
            "{name}"
        );
    }
    // The handler admits them; another step's action is refused before anything is read.
    let ctx = rds_context("web-db", "web-db-replica").await;
    let err = invoke(
        handle,
        &ctx,
        event("promote-db-prepare.json", &[("action", json!("drain"))]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("drain"), "{err}");
}

#[tokio::test]
async fn prepare_is_done_when_the_target_already_replicates_the_writer() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let before = instances(&config, &pair).await;
    for run in 1..=3 {
        let report = invoke(handle, &ctx, failover("promote-db-prepare.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            report["saw"]["decision"],
            json!("ready"),
            "run {run}: {report:#}"
        );
        assert_eq!(report["done"], json!(true));
        assert_eq!(report["changes"], json!([]));
        assert_eq!(report["saw"]["writer"]["instance"], json!(pair.primary));
        assert_eq!(report["saw"]["holder_is_replica_of_writer"], json!(true));
        assert!(
            report["saw"]["replica_created_at"].is_string(),
            "the report needs the replica's creation time: {report:#}"
        );
        assert_eq!(
            instances(&config, &pair).await,
            before,
            "run {run} changed an instance"
        );
    }
}

#[tokio::test]
async fn failback_prepare_retires_the_stale_primary_and_creates_a_replica_of_the_dr_writer() {
    let config = common::sdk_config().await;
    // The DR replica runs a larger class than the primary: the new replica must take the writer's.
    let pair = seed_pair(&config, "db.t3.small").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    mark(&config, PRIMARY_REGION, &pair.primary_arn, "old-primary").await;
    let old_groups: Vec<String> = instance(&config, PRIMARY_REGION, &pair.primary)
        .await
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
        .collect();

    // moto: the promoted DR instance still names the primary as its source. The product treats it as the writer
    // because its promotion is recorded and no read-replication status is reported (see the module comment).
    let first = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(
        first["saw"]["decision"],
        json!("retire-and-create"),
        "{first:#}"
    );
    assert_eq!(first["saw"]["writer_writable"], json!(true));
    assert!(
        first["saw"]["stale_because"]
            .as_str()
            .unwrap()
            .contains("was promoted"),
        "{first:#}"
    );
    let rename = change(&first, "ModifyDBInstance");
    assert_eq!(rename["resource"], json!(pair.primary_arn));
    assert_eq!(rename["from"], json!(pair.primary));
    let retired = rename["to"].as_str().unwrap().to_string();
    let stamp = retired
        .strip_prefix(&format!("{}-retired-", pair.primary))
        .unwrap_or_else(|| panic!("retired name {retired}"));
    assert!(
        stamp.len() == 12 && stamp.bytes().all(|b| b.is_ascii_digit()),
        "{retired}"
    );
    assert_eq!(rename["applied"], json!(true));
    let create = change(&first, "CreateDBInstanceReadReplica");
    assert_eq!(create["resource"], json!(pair.primary_arn));
    assert_eq!(create["from"], Value::Null);
    assert_eq!(create["to"]["DBInstanceIdentifier"], json!(pair.primary));
    assert_eq!(
        create["to"]["SourceDBInstanceIdentifier"],
        json!(pair.replica_arn)
    );
    assert_eq!(create["to"]["DBInstanceClass"], json!("db.t3.small"));
    // Placed like the instance it replaces (moto gives every instance a security group, no subnet group).
    assert_eq!(create["to"]["placement_from"], json!(pair.primary));
    assert_eq!(create["to"]["VpcSecurityGroupIds"], json!(old_groups));
    assert_eq!(create["applied"], json!(true));
    assert_eq!(
        first["done"],
        json!(false),
        "done only once the replica is seen available"
    );

    // The old primary lives on under its retired name (kept, not deleted); the identifier holds a new instance.
    let kept = instance(&config, PRIMARY_REGION, &retired).await;
    assert_eq!(marker(&kept), Some("old-primary"));
    let fresh = instance(&config, PRIMARY_REGION, &pair.primary).await;
    assert_eq!(marker(&fresh), None);
    assert_eq!(
        fresh.read_replica_source_db_instance_identifier(),
        Some(pair.replica_arn.as_str())
    );
    assert_eq!(fresh.db_instance_class(), Some("db.t3.small"));

    // moto copied the DR writer's promotion tag onto the new replica; the record predates the replica, so the
    // product still sees a replica of the writer, ready.
    let mut state = None;
    for run in 2..=3 {
        let again = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            again["saw"]["decision"],
            json!("ready"),
            "run {run}: {again:#}"
        );
        assert_eq!(again["done"], json!(true));
        assert_eq!(again["changes"], json!([]));
        assert!(again["saw"]["replica_created_at"].is_string(), "{again:#}");
        let now = (
            instance(&config, PRIMARY_REGION, &pair.primary).await,
            instance(&config, PRIMARY_REGION, &retired).await,
            instance(&config, DR_REGION, &pair.replica).await,
            identifiers(&config, PRIMARY_REGION, &pair.primary).await,
        );
        if let Some(before) = state.replace(now.clone()) {
            assert_eq!(now, before, "run {run} changed something");
        }
    }
}

#[tokio::test]
async fn failback_prepare_dry_run_lists_rename_and_create_and_changes_nothing() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    let before = pair_state(&config, &pair, PRIMARY_REGION).await;

    let report = invoke(handle, &ctx, dry_run("promote-db-prepare.json", "failback"))
        .await
        .unwrap();
    assert_eq!(report["dry_run"], json!(true));
    assert_eq!(report["done"], json!(true), "{report:#}");
    assert_eq!(report["changes"].as_array().unwrap().len(), 2, "{report:#}");
    let rename = change(&report, "ModifyDBInstance");
    assert_eq!(
        (&rename["from"], &rename["applied"]),
        (&json!(pair.primary), &json!(false))
    );
    assert!(
        rename["to"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-retired-", pair.primary))
    );
    let create = change(&report, "CreateDBInstanceReadReplica");
    assert_eq!(
        create["to"]["SourceDBInstanceIdentifier"],
        json!(pair.replica_arn)
    );
    assert_eq!(create["applied"], json!(false));
    assert!(report["message"].as_str().unwrap().starts_with("dry-run"));

    let after = pair_state(&config, &pair, PRIMARY_REGION).await;
    assert_eq!(after, before);
    assert!(
        describe(&config, PRIMARY_REGION, rename["to"].as_str().unwrap())
            .await
            .is_none()
    );
}

#[tokio::test]
async fn prepare_creates_a_missing_replica_and_reruns_converge() {
    let config = common::sdk_config().await;
    let primary = common::unique("plgd");
    let dr = format!("{primary}-dr");
    let primary_arn = create_primary(&config, PRIMARY_REGION, &primary, "db.t3.micro").await;
    let ctx = rds_context(&primary, &dr).await;

    let dry = invoke(handle, &ctx, dry_run("promote-db-prepare.json", "failover"))
        .await
        .unwrap();
    assert_eq!(dry["saw"]["decision"], json!("create"), "{dry:#}");
    assert_eq!(
        change(&dry, "CreateDBInstanceReadReplica")["applied"],
        json!(false)
    );
    assert!(
        describe(&config, DR_REGION, &dr).await.is_none(),
        "dry-run created it"
    );

    let first = invoke(handle, &ctx, failover("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(first["saw"]["decision"], json!("create"), "{first:#}");
    assert_eq!(first["saw"]["holder"], Value::Null);
    let create = change(&first, "CreateDBInstanceReadReplica");
    assert_eq!(
        create["resource"],
        json!(format!(
            "arn:aws:rds:{DR_REGION}:{}:db:{dr}",
            common::ACCOUNT
        ))
    );
    assert_eq!(
        create["to"]["SourceDBInstanceIdentifier"],
        json!(primary_arn)
    );
    assert_eq!(create["to"]["DBInstanceClass"], json!("db.t3.micro"));
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("defaults apply"),
        "no instance to copy a placement from is said: {first:#}"
    );
    let created = instance(&config, DR_REGION, &dr).await;
    assert_eq!(
        created.read_replica_source_db_instance_identifier(),
        Some(primary_arn.as_str())
    );
    for run in 2..=3 {
        let again = invoke(handle, &ctx, failover("promote-db-prepare.json"))
            .await
            .unwrap();
        assert_eq!(
            again["saw"]["decision"],
            json!("ready"),
            "run {run}: {again:#}"
        );
        assert_eq!(again["changes"], json!([]));
        assert_eq!(instance(&config, DR_REGION, &dr).await, created);
    }
}

#[tokio::test]
async fn a_replica_created_after_an_earlier_rename_is_placed_like_the_retired_instance() {
    // On AWS a rename takes effect minutes after ModifyDBInstance returns, so prepare may find the identifier free
    // only on a later poll. Here the test renames the stale primary itself, as that earlier poll would have.
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    let retired = format!("{}-retired-202601010000", pair.primary);
    rds_in(&config, PRIMARY_REGION)
        .modify_db_instance()
        .db_instance_identifier(&pair.primary)
        .new_db_instance_identifier(&retired)
        .apply_immediately(true)
        .send()
        .await
        .expect("rename");
    let groups: Vec<String> = instance(&config, PRIMARY_REGION, &retired)
        .await
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
        .collect();
    assert!(
        !groups.is_empty(),
        "moto gives every instance a security group"
    );

    let report = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(report["saw"]["decision"], json!("create"), "{report:#}");
    let create = change(&report, "CreateDBInstanceReadReplica");
    assert_eq!(create["to"]["placement_from"], json!(retired));
    assert_eq!(create["to"]["VpcSecurityGroupIds"], json!(groups));
    assert_eq!(
        create["to"]["SourceDBInstanceIdentifier"],
        json!(pair.replica_arn)
    );
    let created = instance(&config, PRIMARY_REGION, &pair.primary).await;
    let created_groups: Vec<&str> = created
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(created_groups, groups);
    assert!(
        describe(&config, PRIMARY_REGION, &retired).await.is_some(),
        "the retired instance is kept"
    );
}

// Issue #10, production-ready replicas: the replica prepare creates in place of a retired instance gets its DB
// parameter group, option group, Multi-AZ and storage type (through CreateDBInstanceReadReplica, the real SDK), and
// the report says what it could not copy: the backup retention, which CreateDBInstanceReadReplica does not take.
#[tokio::test]
async fn a_new_replica_copies_the_retired_instances_groups_multi_az_and_storage_and_says_what_it_cannot()
 {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    let rds = rds_in(&config, PRIMARY_REGION);
    let parameter_group = format!("{}-pg", pair.primary);
    let option_group = format!("{}-og", pair.primary);
    rds.create_db_parameter_group()
        .db_parameter_group_name(&parameter_group)
        .db_parameter_group_family("mysql8.0")
        .description("production settings")
        .send()
        .await
        .expect("parameter group");
    rds.create_option_group()
        .option_group_name(&option_group)
        .engine_name("mysql")
        .major_engine_version("8.0")
        .option_group_description("production options")
        .send()
        .await
        .expect("option group");
    let retired = format!("{}-retired-202601010000", pair.primary);
    rds.modify_db_instance()
        .db_instance_identifier(&pair.primary)
        .db_parameter_group_name(&parameter_group)
        .option_group_name(&option_group)
        .multi_az(true)
        .storage_type("gp3")
        .backup_retention_period(7)
        .apply_immediately(true)
        .send()
        .await
        .expect("production settings on the old primary");
    rds.modify_db_instance()
        .db_instance_identifier(&pair.primary)
        .new_db_instance_identifier(&retired)
        .apply_immediately(true)
        .send()
        .await
        .expect("rename");

    let report = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(report["saw"]["decision"], json!("create"), "{report:#}");
    let create = &change(&report, "CreateDBInstanceReadReplica")["to"];
    assert_eq!(create["placement_from"], json!(retired), "{create:#}");
    assert_eq!(create["DBParameterGroupName"], json!(parameter_group));
    assert_eq!(create["OptionGroupName"], json!(option_group));
    assert_eq!(create["MultiAZ"], json!(true));
    assert_eq!(create["StorageType"], json!("gp3"));
    let not_copied = create["not_copied"].as_array().unwrap();
    assert!(
        not_copied.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with(&format!("BackupRetentionPeriod (7 days on {retired})"))),
        "{create:#}"
    );

    let created = instance(&config, PRIMARY_REGION, &pair.primary).await;
    let groups: Vec<&str> = created
        .db_parameter_groups()
        .iter()
        .filter_map(|g| g.db_parameter_group_name())
        .collect();
    assert_eq!(groups, [parameter_group.as_str()]);
    let options: Vec<&str> = created
        .option_group_memberships()
        .iter()
        .filter_map(|g| g.option_group_name())
        .collect();
    assert_eq!(options, [option_group.as_str()]);
    assert_eq!(created.multi_az(), Some(true));
    assert_eq!(created.storage_type(), Some("gp3"));
}

#[tokio::test]
async fn prepare_refuses_when_the_source_side_is_not_the_writer() {
    // Failback without a failover: the DR instance is still a replica, so there is no writer to follow there.
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let before = instances(&config, &pair).await;
    let err = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.replica)
            && err.message.contains("itself a read replica")
            && err.message.contains("current writer"),
        "{err}"
    );
    assert_eq!(instances(&config, &pair).await, before);
}

#[tokio::test]
async fn graceful_failover_prepare_after_a_failover_refuses_to_retire_the_newer_dr_writer() {
    // After a failover the DR instance is the newer writer. A graceful *failover* would treat the stale primary as
    // the writer and retire the DR instance: refused. In moto the DR instance even still names the primary as its
    // source; its promotion record (newer than anything on the primary) is what tells the truth.
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    let before = pair_state(&config, &pair, DR_REGION).await;
    let err = invoke(handle, &ctx, failover("promote-db-prepare.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.replica) && err.message.contains("newer writer"),
        "{err}"
    );
    assert_eq!(pair_state(&config, &pair, DR_REGION).await, before);
}

#[tokio::test]
async fn standalone_instances_without_promotion_records_need_force() {
    let config = common::sdk_config().await;
    let primary = common::unique("plgd");
    let dr = format!("{primary}-dr");
    let primary_arn = create_primary(&config, PRIMARY_REGION, &primary, "db.t3.micro").await;
    create_primary(&config, DR_REGION, &dr, "db.t3.micro").await;
    let ctx = rds_context(&primary, &dr).await;
    let before = identifiers(&config, DR_REGION, &primary).await;

    let err = invoke(
        handle,
        &ctx,
        failover("promote-db-prepare.json").tap_mode("graceful"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&dr)
            && err.message.contains("cannot be told")
            && err.message.contains("allow_stale_writer"),
        "{err}"
    );
    assert_eq!(identifiers(&config, DR_REGION, &primary).await, before);

    // An ungraceful failover never runs prepare (it would need the failed region).
    let err = invoke(
        handle,
        &ctx,
        failover("promote-db-prepare.json").tap_mode("ungraceful"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("graceful"), "{err}");

    let forced = invoke(
        handle,
        &ctx,
        event(
            "promote-db-prepare.json",
            &[
                ("direction", json!("failover")),
                ("overrides", json!({"allow_stale_writer": true})),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        forced["saw"]["decision"],
        json!("retire-and-create"),
        "{forced:#}"
    );
    assert!(
        forced["saw"]["stale_because"]
            .as_str()
            .unwrap()
            .starts_with("allow_stale_writer")
    );
    let retired = change(&forced, "ModifyDBInstance")["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(describe(&config, DR_REGION, &retired).await.is_some());
    assert_eq!(
        instance(&config, DR_REGION, &dr)
            .await
            .read_replica_source_db_instance_identifier(),
        Some(primary_arn.as_str())
    );
}

trait WithMode {
    fn tap_mode(self, mode: &str) -> Value;
}

impl WithMode for Value {
    fn tap_mode(mut self, mode: &str) -> Value {
        self["mode"] = json!(mode);
        self
    }
}

#[tokio::test]
async fn missing_instances_are_not_found_and_named() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    // Failback prepare reads the DR writer; reprotect reads the primary writer.
    let missing = common::unique("plgd-missing");
    let ctx = rds_context(&pair.primary, &missing).await;
    for name in ["promote-db-prepare.json", "promote-db-reprotect.json"] {
        let ctx = if name.contains("reprotect") {
            rds_context(&missing, &pair.replica).await
        } else {
            rds_context(&pair.primary, &missing).await
        };
        let err = invoke(handle, &ctx, common::event(name)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{name}: {err}");
        assert!(err.message.contains(&missing), "{err}");
    }
    let err = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap_err();
    assert!(
        err.message.contains(DR_REGION) && err.message.contains("PILOTLIGHT_DR_DB_INSTANCE"),
        "{err}"
    );
    // catchup reads the target (the primary on failback).
    let ctx = rds_context(&missing, &pair.replica).await;
    let err = invoke(handle, &ctx, common::event("promote-db-catchup.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(&missing)
            && err.message.contains(PRIMARY_REGION)
            && err.message.contains("PILOTLIGHT_PRIMARY_DB_INSTANCE"),
        "{err}"
    );
}

#[tokio::test]
async fn catchup_waits_for_a_known_lag_of_zero() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let replica_before = instance(&config, DR_REGION, &pair.replica).await;

    // No datapoint: unknown, which is not caught up.
    let unknown = invoke(handle, &ctx, failover("promote-db-catchup.json"))
        .await
        .unwrap();
    assert_eq!(unknown["done"], json!(false), "{unknown:#}");
    assert!(unknown["message"].as_str().unwrap().contains("unknown lag"));
    assert!(unknown["saw"]["replica_lag"]["unknown"].is_string());
    // Dry-run never waits, and says the same.
    let dry = invoke(handle, &ctx, dry_run("promote-db-catchup.json", "failover"))
        .await
        .unwrap();
    assert_eq!((&dry["done"], &dry["changes"]), (&json!(true), &json!([])));
    assert!(dry["message"].as_str().unwrap().contains("unknown lag"));

    // Datapoints are per-minute maxima: 5 now, then 0 in the next minute (a newer datapoint).
    let now = SystemTime::now();
    put_replica_lag_at(&config, DR_REGION, &pair.replica, 5.0, now).await;
    let lagging = invoke(handle, &ctx, failover("promote-db-catchup.json"))
        .await
        .unwrap();
    assert_eq!(lagging["done"], json!(false), "{lagging:#}");
    assert_eq!(lagging["saw"]["replica_lag"]["seconds"], json!(5.0));
    assert!(lagging["message"].as_str().unwrap().contains("lags 5s"));

    put_replica_lag_at(
        &config,
        DR_REGION,
        &pair.replica,
        0.0,
        now + Duration::from_secs(60),
    )
    .await;
    for run in 1..=3 {
        let caught_up = invoke(handle, &ctx, failover("promote-db-catchup.json"))
            .await
            .unwrap();
        assert_eq!(caught_up["done"], json!(true), "run {run}: {caught_up:#}");
        assert_eq!(caught_up["saw"]["replica_lag"]["seconds"], json!(0.0));
        assert_eq!(caught_up["changes"], json!([]));
    }
    assert_eq!(
        instance(&config, DR_REGION, &pair.replica).await,
        replica_before
    );
}

/// Issue #10: a lag-0 datapoint from before the drain finished does not count; the catch-up waits until a 0 taken
/// after it (the state machine passes the drain's `finished_at` as `drained_at`).
#[tokio::test]
async fn a_pre_drain_lag_of_zero_keeps_catchup_waiting_until_a_post_drain_zero() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let now = SystemTime::now();
    put_replica_lag_at(&config, DR_REGION, &pair.replica, 0.0, now).await;
    // The drain finishes after that datapoint's minute began.
    let drained_at = chrono::DateTime::<chrono::Utc>::from(now) + chrono::TimeDelta::seconds(1);
    let mut catchup = failover("promote-db-catchup.json");
    catchup["drained_at"] = json!(drained_at.to_rfc3339());
    let waiting = invoke(handle, &ctx, catchup.clone()).await.unwrap();
    assert_eq!(waiting["done"], json!(false), "{waiting:#}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("before the drain finished"),
        "{waiting:#}"
    );
    // Without drained_at (a hand-made call) the same datapoint would have counted.
    let by_hand = invoke(handle, &ctx, failover("promote-db-catchup.json"))
        .await
        .unwrap();
    assert_eq!(by_hand["done"], json!(true), "{by_hand:#}");
    // The minute after the drain: a post-drain 0.
    put_replica_lag_at(
        &config,
        DR_REGION,
        &pair.replica,
        0.0,
        now + Duration::from_secs(60),
    )
    .await;
    let caught_up = invoke(handle, &ctx, catchup).await.unwrap();
    assert_eq!(caught_up["done"], json!(true), "{caught_up:#}");
    assert!(caught_up["message"].as_str().unwrap().contains("caught up"));
}

#[tokio::test]
async fn catchup_refuses_a_target_that_is_not_a_replica() {
    // Failback without prepare: the old primary is standalone, nothing could catch up.
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;
    let err = invoke(handle, &ctx, common::event("promote-db-catchup.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.primary) && err.message.contains("run prepare"),
        "{err}"
    );
}

#[tokio::test]
async fn graceful_start_refuses_a_known_lag_until_it_is_zero() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let graceful_start = || {
        failover("promote-db-prepare.json")
            .tap_action("start")
            .tap_mode("graceful")
    };
    let now = SystemTime::now();
    put_replica_lag_at(&config, DR_REGION, &pair.replica, 2.0, now).await;
    let before = instance(&config, DR_REGION, &pair.replica).await;

    let err = invoke(handle, &ctx, graceful_start()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(
        err.message.contains(&pair.replica)
            && err.message.contains("catchup")
            && err.message.contains("allow_replica_lag"),
        "{err}"
    );
    assert_eq!(instance(&config, DR_REGION, &pair.replica).await, before);

    put_replica_lag_at(
        &config,
        DR_REGION,
        &pair.replica,
        0.0,
        now + Duration::from_secs(60),
    )
    .await;
    let started = invoke(handle, &ctx, graceful_start()).await.unwrap();
    assert_eq!(started["saw"]["decision"], json!("promote"), "{started:#}");
    assert_eq!(started["rpo_seconds"], json!(0.0));
}

#[tokio::test]
async fn failback_cycle_then_reprotect_restores_the_pilot_light() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    fail_over(&ctx).await;

    // Reprotect before the failback promotion: the primary is not the writer yet.
    let err = invoke(handle, &ctx, common::event("promote-db-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");

    // Failback: prepare until done, catch up, promote the primary (graceful).
    let mut polls = 0;
    loop {
        polls += 1;
        let r = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
            .await
            .unwrap();
        if r["done"] == json!(true) {
            break;
        }
        assert!(polls < 3, "prepare did not converge: {r:#}");
    }
    put_replica_lag_at(
        &config,
        PRIMARY_REGION,
        &pair.primary,
        0.0,
        SystemTime::now(),
    )
    .await;
    let caught_up = invoke(handle, &ctx, common::event("promote-db-catchup.json"))
        .await
        .unwrap();
    assert_eq!(caught_up["done"], json!(true), "{caught_up:#}");
    let promoted = invoke(
        handle,
        &ctx,
        common::event("promote-db-prepare.json")
            .tap_action("start")
            .tap_mode("graceful"),
    )
    .await
    .unwrap();
    assert_eq!(
        promoted["saw"]["decision"],
        json!("promote"),
        "{promoted:#}"
    );
    let status = invoke(
        handle,
        &ctx,
        common::event("promote-db-prepare.json").tap_action("status"),
    )
    .await
    .unwrap();
    assert_eq!(status["done"], json!(true), "{status:#}");

    // Reprotect dry-run: the exact rename and create, nothing changed.
    let before = pair_state(&config, &pair, DR_REGION).await;
    let dry = invoke(
        handle,
        &ctx,
        dry_run("promote-db-reprotect.json", "failback"),
    )
    .await
    .unwrap();
    assert_eq!(dry["done"], json!(true), "{dry:#}");
    assert_eq!(
        change(&dry, "ModifyDBInstance")["from"],
        json!(pair.replica)
    );
    assert_eq!(change(&dry, "ModifyDBInstance")["applied"], json!(false));
    let fresh_primary_arn = before.0.db_instance_arn().unwrap().to_string();
    assert_eq!(
        change(&dry, "CreateDBInstanceReadReplica")["to"]["SourceDBInstanceIdentifier"],
        json!(fresh_primary_arn)
    );
    assert_eq!(pair_state(&config, &pair, DR_REGION).await, before);

    // Reprotect: the old DR writer is retired, a fresh DR replica follows the primary.
    mark(&config, DR_REGION, &pair.replica_arn, "old-dr").await;
    let first = invoke(handle, &ctx, common::event("promote-db-reprotect.json"))
        .await
        .unwrap();
    assert_eq!(
        first["saw"]["decision"],
        json!("retire-and-create"),
        "{first:#}"
    );
    assert_eq!(first["saw"]["writer"]["instance"], json!(pair.primary));
    let retired = change(&first, "ModifyDBInstance")["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        retired.starts_with(&format!("{}-retired-", pair.replica)),
        "{retired}"
    );
    assert_eq!(
        marker(&instance(&config, DR_REGION, &retired).await),
        Some("old-dr")
    );
    let fresh_dr = instance(&config, DR_REGION, &pair.replica).await;
    assert_eq!(marker(&fresh_dr), None);
    assert_eq!(
        fresh_dr.read_replica_source_db_instance_identifier(),
        Some(fresh_primary_arn.as_str())
    );

    let mut state = None;
    for run in 2..=3 {
        let again = invoke(handle, &ctx, common::event("promote-db-reprotect.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            again["saw"]["decision"],
            json!("ready"),
            "run {run}: {again:#}"
        );
        assert_eq!(
            (&again["done"], &again["changes"]),
            (&json!(true), &json!([]))
        );
        let now = pair_state(&config, &pair, DR_REGION).await;
        if let Some(before) = state.replace(now.clone()) {
            assert_eq!(now, before, "run {run} changed something");
        }
    }

    // The pilot light is back: a graceful failover would find its replica ready, and the next failover promotes it
    // (its copied promotion tag from the primary predates it and does not count).
    let ready = invoke(handle, &ctx, failover("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(ready["saw"]["decision"], json!("ready"), "{ready:#}");
    let mut next_start = failover("promote-db-prepare.json").tap_action("start");
    next_start["overrides"] = json!({"allow_unknown_lag": true});
    let next = invoke(handle, &ctx, next_start).await.unwrap();
    assert_eq!(next["saw"]["decision"], json!("promote"), "{next:#}");
}

#[tokio::test]
async fn reprotect_is_for_failback_only() {
    let config = common::sdk_config().await;
    let pair = seed_pair(&config, "db.t3.micro").await;
    let ctx = rds_context(&pair.primary, &pair.replica).await;
    let before = identifiers(&config, DR_REGION, &pair.primary).await;
    let err = invoke(handle, &ctx, failover("promote-db-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(
        err.message.contains("failback only") && err.message.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(identifiers(&config, DR_REGION, &pair.primary).await, before);
}

// ------------------------------------------------------------------------------------------------------------
// Aurora global database (ministack)
// ------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn aurora_failback_prepare_catchup_and_reprotect_follow_the_global_cluster() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plgg").await;
    let ctx = aurora_context(&config, &g);
    // The ungraceful failover that sets the scene is gated on the secondary's lag: a fresh one, within the limit.
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        0.0,
        SystemTime::now(),
    )
    .await;
    let failed_over = invoke(
        handle,
        &ctx,
        failover("promote-db-prepare.json").tap_action("start"),
    )
    .await
    .unwrap();
    assert_eq!(
        failed_over["saw"]["decision"],
        json!("promote"),
        "{failed_over:#}"
    );
    let state = global_state(&config, &g.id).await;

    // The old primary is a secondary again (AWS re-attaches it after a managed failover; ministack keeps it).
    for run in 1..=3 {
        let prepared = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            prepared["saw"]["decision"],
            json!("ready"),
            "run {run}: {prepared:#}"
        );
        assert_eq!(
            (&prepared["done"], &prepared["changes"]),
            (&json!(true), &json!([]))
        );
        assert_eq!(
            prepared["saw"]["secondary_cluster_arn"],
            json!(g.primary_arn)
        );
        assert_eq!(prepared["saw"]["writer_cluster_arn"], json!(g.dr_arn));
        assert_eq!(global_state(&config, &g.id).await, state, "run {run}");
    }
    let caught_up = invoke(handle, &ctx, common::event("promote-db-catchup.json"))
        .await
        .unwrap();
    assert_eq!(caught_up["done"], json!(true), "{caught_up:#}");
    assert!(
        caught_up["message"]
            .as_str()
            .unwrap()
            .contains("SwitchoverGlobalCluster"),
        "{caught_up:#}"
    );

    // Reprotect before the writer is back home is refused.
    let err = invoke(handle, &ctx, common::event("promote-db-reprotect.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("still the writer"), "{err}");

    // Graceful failback (switchover), then reprotect sees the DR cluster as a secondary again.
    let switched = invoke(
        handle,
        &ctx,
        common::event("promote-db-prepare.json")
            .tap_action("start")
            .tap_mode("graceful"),
    )
    .await
    .unwrap();
    assert!(
        change(&switched, "SwitchoverGlobalCluster")["to"] == json!(g.primary_arn),
        "{switched:#}"
    );
    let state = global_state(&config, &g.id).await;
    for run in 1..=3 {
        let reprotected = invoke(handle, &ctx, common::event("promote-db-reprotect.json"))
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(
            reprotected["done"],
            json!(true),
            "run {run}: {reprotected:#}"
        );
        assert_eq!(reprotected["changes"], json!([]));
        assert!(reprotected["message"].as_str().unwrap().contains("again"));
        assert_eq!(global_state(&config, &g.id).await, state, "run {run}");
    }
}

#[tokio::test]
async fn aurora_prepare_waits_while_the_target_is_not_a_member() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = seed_global(&config, "plgg").await;
    let ctx = aurora_context(&config, &g);
    // The ungraceful failover that sets the scene is gated on the secondary's lag: a fresh one, within the limit.
    put_global_lag_at(
        &config,
        &g.dr_arn,
        "AuroraGlobalDBRPOLag",
        0.0,
        SystemTime::now(),
    )
    .await;
    invoke(
        handle,
        &ctx,
        failover("promote-db-prepare.json").tap_action("start"),
    )
    .await
    .unwrap();
    // The old primary was taken out of the global cluster (e.g. detached during the outage).
    rds_in(&config, DR_REGION)
        .remove_from_global_cluster()
        .global_cluster_identifier(&g.id)
        .db_cluster_identifier(&g.primary_arn)
        .send()
        .await
        .expect("detach the old primary");
    let state = global_state(&config, &g.id).await;

    let waiting = invoke(handle, &ctx, common::event("promote-db-prepare.json"))
        .await
        .unwrap();
    assert_eq!(waiting["done"], json!(false), "{waiting:#}");
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.contains(&g.primary_arn)
            && message.contains("not a member")
            && message.contains("add it back"),
        "{message}"
    );
    let dry = invoke(handle, &ctx, dry_run("promote-db-prepare.json", "failback"))
        .await
        .unwrap();
    assert_eq!((&dry["done"], &dry["changes"]), (&json!(true), &json!([])));
    assert_eq!(global_state(&config, &g.id).await, state);
}

#[tokio::test]
async fn aurora_missing_global_cluster_is_not_found_and_named() {
    let config = common::sdk_config_at(&common::ministack_url()).await;
    let g = missing_global("plgg-missing");
    let ctx = aurora_context(&config, &g);
    for name in [
        "promote-db-prepare.json",
        "promote-db-catchup.json",
        "promote-db-reprotect.json",
    ] {
        let err = invoke(handle, &ctx, common::event(name)).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{name}: {err}");
        assert!(
            err.message.contains(&g.id) && err.message.contains("PILOTLIGHT_GLOBAL_CLUSTER"),
            "{err}"
        );
    }
}
