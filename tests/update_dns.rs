//! update-dns against moto's Route 53 (ministack ignores Inverted/Disabled, see docs/emulators.md), seeded through the
//! real SDK: hosted zone, health checks, failover records (health-check mode) or one CNAME (records mode).
//!
//! moto quirks worth knowing when reading these tests: every change is INSYNC at once (so `start` in records mode
//! is done immediately and PENDING is covered by the unit tests of `record_progress`), and HealthCheckVersion is
//! neither incremented nor checked (the product still sends it, as the API reference recommends).

mod common;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use pilotlight::ErrorKind;
use pilotlight::aws::route53::get_health_check;
use pilotlight::routing::CheckFlags;
use pilotlight::runtime::{Context, invoke};
use pilotlight::steps::update_dns::{handle, read_cname};
use serde_json::{Value, json};

const PRIMARY_VALUE: &str = "web-primary.ap-northeast-2.elb.example.com";
const DR_VALUE: &str = "web-dr.ap-northeast-1.elb.example.com";

async fn route53() -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&common::sdk_config().await)
}

async fn hosted_zone(r53: &aws_sdk_route53::Client) -> (String, String) {
    let name = format!("{}.example.com", common::unique("zone"));
    let zone = r53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(common::unique("ref"))
        .send()
        .await
        .unwrap();
    let id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    (id, name)
}

async fn change(r53: &aws_sdk_route53::Client, zone: &str, set: ResourceRecordSet) {
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .unwrap();
}

fn cname(
    name: &str,
    value: &str,
    ttl: i64,
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(ttl)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
}

async fn health_check(r53: &aws_sdk_route53::Client, fqdn: &str) -> String {
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::Https)
        .fully_qualified_domain_name(fqdn)
        .port(443)
        .resource_path("/health")
        .build()
        .unwrap();
    let hc = r53
        .create_health_check()
        .caller_reference(common::unique("hc"))
        .health_check_config(config)
        .send()
        .await
        .unwrap();
    hc.health_check().unwrap().id().to_string()
}

struct HealthChecks {
    ctx: Context,
    primary: String,
    dr: String,
}

impl HealthChecks {
    /// Two health checks guarding PRIMARY/SECONDARY failover records, both on automatic checking.
    async fn seed() -> Self {
        let r53 = route53().await;
        let primary = health_check(&r53, PRIMARY_VALUE).await;
        let dr = health_check(&r53, DR_VALUE).await;
        let (zone, zone_name) = hosted_zone(&r53).await;
        let www = format!("www.{zone_name}");
        for (role, value, hc) in [
            (ResourceRecordSetFailover::Primary, PRIMARY_VALUE, &primary),
            (ResourceRecordSetFailover::Secondary, DR_VALUE, &dr),
        ] {
            let set = cname(&www, value, 60)
                .set_identifier(role.as_str())
                .failover(role)
                .health_check_id(hc)
                .build()
                .unwrap();
            change(&r53, &zone, set).await;
        }
        let vars = common::plan_vars(&[
            ("PILOTLIGHT_DNS_MODE", "health-check".into()),
            ("PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID", primary.clone()),
            ("PILOTLIGHT_DR_HEALTH_CHECK_ID", dr.clone()),
        ]);
        HealthChecks {
            ctx: common::context(&vars).await,
            primary,
            dr,
        }
    }

    async fn flags(&self) -> (CheckFlags, CheckFlags) {
        let r53 = self.ctx.aws.route53();
        (
            get_health_check(r53, &self.primary).await.unwrap().flags,
            get_health_check(r53, &self.dr).await.unwrap().flags,
        )
    }

    async fn run(&self, event: Value) -> Value {
        invoke(handle, &self.ctx, event).await.unwrap()
    }
}

fn input(action: &str, direction: &str) -> Value {
    json!({"action": action, "direction": direction, "mode": "ungraceful", "dry_run": false, "force": false})
}

fn changes(report: &Value) -> Vec<(String, String, Value, Value, bool)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["resource"].as_str().unwrap().to_string(),
                c["field"].as_str().unwrap().to_string(),
                c["from"].clone(),
                c["to"].clone(),
                c["applied"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn ch(
    resource: &str,
    field: &str,
    from: impl Into<Value>,
    to: impl Into<Value>,
    applied: bool,
) -> (String, String, Value, Value, bool) {
    (
        resource.to_string(),
        field.to_string(),
        from.into(),
        to.into(),
        applied,
    )
}

// --- health-check mode -------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_check_failover_forces_dr_healthy_then_primary_unhealthy() {
    let s = HealthChecks::seed().await;
    let status = s.run(common::event("update-dns-status.json")).await;
    assert_eq!(status["done"], false, "nothing flipped yet: {status}");

    let r = s.run(common::event("update-dns-start.json")).await;
    assert_eq!(r["step"], "update-dns");
    assert_eq!(r["saw"]["mode"], "health-check");
    assert_eq!(
        r["saw"]["health_checks"]["primary"]["flags"],
        json!({"disabled": false, "inverted": false})
    );
    assert_eq!(
        r["saw"]["change_id"],
        Value::Null,
        "always present for the state machine's status call"
    );
    // The DR (target) is forced healthy before the primary is forced unhealthy.
    assert_eq!(
        changes(&r),
        vec![
            ch(&s.dr, "Disabled", false, true, true),
            ch(&s.primary, "Disabled", false, true, true),
            ch(&s.primary, "Inverted", false, true, true),
        ]
    );
    assert_eq!(r["done"], true);
    assert_eq!(
        s.flags().await,
        (CheckFlags::FORCED_UNHEALTHY, CheckFlags::FORCED_HEALTHY)
    );

    let mut status_event = common::event("update-dns-status.json");
    status_event["change_id"] = r["saw"]["change_id"].clone(); // what the state machine passes on
    let status = s.run(status_event).await;
    assert_eq!(status["done"], true, "{status}");

    for _ in 0..3 {
        let again = s.run(common::event("update-dns-start.json")).await;
        assert!(changes(&again).is_empty(), "{again}");
        assert_eq!(again["done"], true);
        assert_eq!(
            s.flags().await,
            (CheckFlags::FORCED_UNHEALTHY, CheckFlags::FORCED_HEALTHY)
        );
    }
}

#[tokio::test]
async fn health_check_failback_restores_automatic_checking() {
    let s = HealthChecks::seed().await;
    s.run(input("start", "failover")).await;
    let r = s.run(input("start", "failback")).await;
    assert_eq!(
        changes(&r),
        vec![
            ch(&s.primary, "Disabled", true, false, true),
            ch(&s.primary, "Inverted", true, false, true),
            ch(&s.dr, "Disabled", true, false, true),
        ]
    );
    assert_eq!(
        s.flags().await,
        (CheckFlags::AUTOMATIC, CheckFlags::AUTOMATIC)
    );
    assert_eq!(s.run(input("status", "failback")).await["done"], true);
    for _ in 0..3 {
        assert!(changes(&s.run(input("start", "failback")).await).is_empty());
    }
    assert_eq!(
        s.flags().await,
        (CheckFlags::AUTOMATIC, CheckFlags::AUTOMATIC)
    );
}

#[tokio::test]
async fn health_check_dry_run_lists_the_flips_and_changes_nothing() {
    let s = HealthChecks::seed().await;
    let r53 = s.ctx.aws.route53();
    let before = (
        get_health_check(r53, &s.primary).await.unwrap(),
        get_health_check(r53, &s.dr).await.unwrap(),
    );
    let r = s.run(common::event("update-dns-dry-run.json")).await;
    assert_eq!(r["done"], true);
    assert_eq!(
        changes(&r),
        vec![
            ch(&s.dr, "Disabled", false, true, false),
            ch(&s.primary, "Disabled", false, true, false),
            ch(&s.primary, "Inverted", false, true, false),
        ]
    );
    let after = (
        get_health_check(r53, &s.primary).await.unwrap(),
        get_health_check(r53, &s.dr).await.unwrap(),
    );
    assert_eq!(before, after, "dry-run must not update the health checks");
}

#[tokio::test]
async fn a_missing_health_check_is_named_and_nothing_changes() {
    let s = HealthChecks::seed().await;
    let missing = "00000000-dead-beef-0000-000000000000";
    let vars = common::plan_vars(&[
        ("PILOTLIGHT_DNS_MODE", "health-check".into()),
        ("PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID", s.primary.clone()),
        ("PILOTLIGHT_DR_HEALTH_CHECK_ID", missing.into()),
    ]);
    let ctx = common::context(&vars).await;
    let err = invoke(handle, &ctx, input("start", "failover"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(missing) && err.message.contains("PILOTLIGHT_DR_HEALTH_CHECK_ID"),
        "{err}"
    );
    assert_eq!(
        s.flags().await,
        (CheckFlags::AUTOMATIC, CheckFlags::AUTOMATIC),
        "the primary must not be forced unhealthy"
    );
}

#[tokio::test]
async fn a_change_id_in_health_check_mode_is_bad_input() {
    let s = HealthChecks::seed().await;
    let mut event = input("status", "failover");
    event["change_id"] = json!("/change/C2682N5HXP0BZ4");
    let err = invoke(handle, &s.ctx, event).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("records mode"), "{err}");
}

// --- records mode ------------------------------------------------------------------------------------------------

struct Records {
    ctx: Context,
    zone: String,
    www: String,
}

impl Records {
    /// A zone with `www` CNAME -> the primary, and a plan in records mode for it.
    async fn seed() -> Self {
        let r53 = route53().await;
        let (zone, zone_name) = hosted_zone(&r53).await;
        let www = format!("www.{zone_name}");
        change(&r53, &zone, cname(&www, PRIMARY_VALUE, 60).build().unwrap()).await;
        let ctx = common::context(&Self::vars(&zone, &www)).await;
        Records { ctx, zone, www }
    }

    fn vars(zone: &str, www: &str) -> std::collections::HashMap<String, String> {
        common::plan_vars(&[
            ("PILOTLIGHT_DNS_MODE", "records".into()),
            ("PILOTLIGHT_HOSTED_ZONE_ID", zone.into()),
            ("PILOTLIGHT_RECORD_NAME", www.into()),
            ("PILOTLIGHT_PRIMARY_RECORD_VALUE", PRIMARY_VALUE.into()),
            ("PILOTLIGHT_DR_RECORD_VALUE", DR_VALUE.into()),
            ("PILOTLIGHT_RECORD_TTL", "60".into()),
        ])
    }

    async fn value(&self) -> String {
        read_cname(self.ctx.aws.route53(), &self.zone, &self.www)
            .await
            .unwrap()
            .value
    }

    async fn run(&self, event: Value) -> Value {
        invoke(handle, &self.ctx, event).await.unwrap()
    }
}

#[tokio::test]
async fn records_failover_upserts_the_cname_and_status_waits_for_insync() {
    let s = Records::seed().await;
    let r = s.run(common::event("update-dns-start.json")).await;
    assert_eq!(r["saw"]["mode"], "records");
    assert_eq!(r["saw"]["record"]["value"], PRIMARY_VALUE, "{r}");
    assert_eq!(
        changes(&r),
        vec![ch(&s.www, "CNAME", PRIMARY_VALUE, DR_VALUE, true)]
    );
    let change_id = r["saw"]["change_id"]
        .as_str()
        .expect("start returns the change id")
        .to_string();
    assert!(change_id.contains('C'), "{change_id}");
    assert_eq!(s.value().await, DR_VALUE);

    // The state machine passes start's saw.change_id to status, which asks GetChange.
    let mut status_event = common::event("update-dns-status-records.json");
    assert!(status_event["change_id"].is_string());
    status_event["change_id"] = json!(change_id);
    let status = s.run(status_event).await;
    assert_eq!(status["saw"]["change_status"], "INSYNC", "{status}");
    assert_eq!(status["done"], true);

    for _ in 0..3 {
        let again = s.run(common::event("update-dns-start.json")).await;
        assert!(changes(&again).is_empty(), "{again}");
        assert_eq!(
            again["saw"]["change_id"],
            Value::Null,
            "nothing submitted, nothing to wait for"
        );
        assert_eq!(again["done"], true);
        assert_eq!(s.value().await, DR_VALUE);
    }
    // Status without a change id (start found the record already at the target) is done on the record alone.
    assert_eq!(
        s.run(common::event("update-dns-status.json")).await["done"],
        true
    );
}

#[tokio::test]
async fn records_status_is_not_done_while_the_record_is_elsewhere() {
    let s = Records::seed().await;
    let mut event = input("status", "failover");
    event["change_id"] = json!("/change/C2682N5HXP0BZ4");
    let status = s.run(event).await;
    assert_eq!(status["done"], false, "{status}");
    assert!(
        status["message"].as_str().unwrap().contains(PRIMARY_VALUE),
        "{status}"
    );
    assert_eq!(s.value().await, PRIMARY_VALUE, "status changes nothing");
}

#[tokio::test]
async fn records_failback_points_back_at_the_primary() {
    let s = Records::seed().await;
    s.run(input("start", "failover")).await;
    let r = s.run(input("start", "failback")).await;
    assert_eq!(
        changes(&r),
        vec![ch(&s.www, "CNAME", DR_VALUE, PRIMARY_VALUE, true)]
    );
    assert_eq!(s.value().await, PRIMARY_VALUE);
}

#[tokio::test]
async fn records_dry_run_changes_nothing() {
    let s = Records::seed().await;
    let r53 = s.ctx.aws.route53();
    let before = read_cname(r53, &s.zone, &s.www).await.unwrap();
    let r = s.run(common::event("update-dns-dry-run.json")).await;
    assert_eq!(r["done"], true);
    assert_eq!(
        changes(&r),
        vec![ch(&s.www, "CNAME", PRIMARY_VALUE, DR_VALUE, false)]
    );
    assert_eq!(r["saw"]["change_id"], Value::Null);
    assert_eq!(read_cname(r53, &s.zone, &s.www).await.unwrap(), before);
}

#[tokio::test]
async fn records_ttl_drift_is_corrected_too() {
    let s = Records::seed().await;
    change(
        s.ctx.aws.route53(),
        &s.zone,
        cname(&s.www, DR_VALUE, 300).build().unwrap(),
    )
    .await;
    let r = s.run(input("start", "failover")).await;
    assert_eq!(changes(&r), vec![ch(&s.www, "TTL", 300, 60, true)]);
    assert_eq!(
        read_cname(s.ctx.aws.route53(), &s.zone, &s.www)
            .await
            .unwrap()
            .ttl,
        Some(60)
    );
}

#[tokio::test]
async fn records_missing_record_or_zone_is_named() {
    let s = Records::seed().await;
    let absent = format!("absent.{}", s.www);
    let ctx = common::context(&Records::vars(&s.zone, &absent)).await;
    let err = invoke(handle, &ctx, input("start", "failover"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(&absent) && err.message.contains(&s.zone),
        "{err}"
    );
    assert!(err.message.contains("PILOTLIGHT_RECORD_NAME"), "{err}");

    let ctx = common::context(&Records::vars("ZNOSUCHZONE0000", &s.www)).await;
    let err = invoke(handle, &ctx, input("start", "failover"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains("ZNOSUCHZONE0000")
            && err.message.contains("PILOTLIGHT_HOSTED_ZONE_ID"),
        "{err}"
    );
    assert_eq!(s.value().await, PRIMARY_VALUE);
}

#[tokio::test]
async fn records_mode_refuses_a_record_with_a_routing_policy() {
    let r53 = route53().await;
    let (zone, zone_name) = hosted_zone(&r53).await;
    let www = format!("www.{zone_name}");
    for (id, value) in [("a", PRIMARY_VALUE), ("b", DR_VALUE)] {
        change(
            &r53,
            &zone,
            cname(&www, value, 60)
                .set_identifier(id)
                .weight(50)
                .build()
                .unwrap(),
        )
        .await;
    }
    let ctx = common::context(&Records::vars(&zone, &www)).await;
    let err = invoke(handle, &ctx, input("start", "failover"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.contains("health-check"), "{err}");
}

#[tokio::test]
async fn bad_input_is_rejected() {
    let s = Records::seed().await;
    let mut event = common::event("update-dns-start.json");
    event["change_id"] = json!("/change/C1");
    let err = invoke(handle, &s.ctx, event).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    let err = invoke(handle, &s.ctx, json!({"action": "status", "record": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert_eq!(s.value().await, PRIMARY_VALUE);
}
