//! shift-traffic against gapfill (the project's Global Accelerator test server), seeded through the real SDK
//! (CreateAccelerator, CreateListener, CreateEndpointGroup with EndpointGroupRegion) as an operator would.

mod common;

use pilotlight::ErrorKind;
use pilotlight::aws::globalaccelerator::{EndpointGroupState, describe_endpoint_group};
use pilotlight::runtime::{Context, invoke};
use pilotlight::steps::shift_traffic::handle;
use serde_json::{Value, json};

const PRIMARY_REGION: &str = "ap-northeast-2";
const DR_REGION: &str = "ap-northeast-1";

struct Setup {
    ctx: Context,
    primary_arn: String,
    dr_arn: String,
}

/// One accelerator with a listener and one endpoint group per plan region (common::seed_endpoint_groups), dials as given.
async fn setup(primary_dial: i32, dr_dial: i32) -> Setup {
    common::gapfill_url(); // AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR points at gapfill
    let cfg = common::sdk_config().await;
    let (primary_arn, dr_arn) =
        common::seed_endpoint_groups(&cfg, PRIMARY_REGION, DR_REGION, (primary_dial, dr_dial))
            .await;
    let ctx = context_with(&primary_arn, &dr_arn).await;
    Setup {
        ctx,
        primary_arn,
        dr_arn,
    }
}

async fn context_with(primary_arn: &str, dr_arn: &str) -> Context {
    let vars = common::plan_vars(&[
        (
            "PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN",
            primary_arn.to_string(),
        ),
        ("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", dr_arn.to_string()),
        ("PILOTLIGHT_DIAL_STEPS", "25,50,100".to_string()),
    ]);
    common::context(&vars).await
}

impl Setup {
    async fn groups(&self) -> (EndpointGroupState, EndpointGroupState) {
        let ga = self.ctx.aws.global_accelerator();
        (
            describe_endpoint_group(ga, &self.primary_arn)
                .await
                .unwrap(),
            describe_endpoint_group(ga, &self.dr_arn).await.unwrap(),
        )
    }
    async fn dials(&self) -> (i32, i32) {
        let (p, d) = self.groups().await;
        (p.dial, d.dial)
    }
    async fn run(&self, event: Value) -> Value {
        invoke(handle, &self.ctx, event).await.unwrap()
    }
}

fn input(action: &str, direction: &str, mode: &str) -> Value {
    json!({"action": action, "direction": direction, "mode": mode, "dry_run": false, "force": false})
}

fn changes(report: &Value) -> Vec<(String, i64, i64, bool)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["field"], "TrafficDialPercentage");
            (
                c["resource"].as_str().unwrap().to_string(),
                c["from"].as_i64().unwrap(),
                c["to"].as_i64().unwrap(),
                c["applied"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn graceful_failover_moves_one_step_per_start_then_is_a_no_op() {
    let s = setup(100, 0).await;
    let start = common::event("shift-traffic-start.json");
    assert_eq!(start["mode"], "graceful");

    let expected = [((75, 25), false), ((50, 50), false), ((0, 100), true)];
    let mut before = (100, 0);
    for ((primary, dr), done) in expected {
        let r = s.run(start.clone()).await;
        assert_eq!(r["step"], "shift-traffic");
        assert_eq!(
            r["saw"]["dials"],
            json!({"primary": before.0, "dr": before.1}),
            "{r}"
        );
        assert_eq!(
            r["saw"]["dials_after"],
            json!({"primary": primary, "dr": dr}),
            "{r}"
        );
        assert_eq!(r["done"], done, "{r}");
        // The DR dial is raised before the primary dial is lowered, so both are never 0 at once.
        assert_eq!(
            changes(&r),
            vec![
                (s.dr_arn.clone(), before.1 as i64, dr as i64, true),
                (s.primary_arn.clone(), before.0 as i64, primary as i64, true)
            ]
        );
        assert_eq!(s.dials().await, (primary, dr), "live dials after the step");
        before = (primary, dr);
    }

    let status = s.run(input("status", "failover", "graceful")).await;
    assert_eq!(status["done"], true, "{status}");
    assert_eq!(status["saw"]["dials"], json!({"primary": 0, "dr": 100}));

    // Resumed or re-delivered three more times: same end state, nothing changed, no error.
    for _ in 0..3 {
        let r = s.run(start.clone()).await;
        assert_eq!(r["done"], true);
        assert!(changes(&r).is_empty(), "{r}");
        assert!(r["message"].as_str().unwrap().contains("no-op"), "{r}");
        assert_eq!(s.dials().await, (0, 100));
    }
}

#[tokio::test]
async fn status_is_not_done_until_the_dials_are_final() {
    let s = setup(50, 50).await;
    let r = s.run(input("status", "failover", "graceful")).await;
    assert_eq!(r["done"], false, "{r}");
    assert!(changes(&r).is_empty());
    assert_eq!(r["saw"]["endpoint_groups"]["dr"]["region"], DR_REGION);
    assert_eq!(
        r["saw"]["endpoint_groups"]["dr"]["endpoints"][0]["health"],
        "HEALTHY"
    );
    assert_eq!(s.dials().await, (50, 50), "status changes nothing");
}

#[tokio::test]
async fn odd_starting_point_joins_the_next_plan_step() {
    let s = setup(70, 30).await;
    let r = s.run(input("start", "failover", "graceful")).await;
    assert_eq!(s.dials().await, (50, 50), "{r}");
    assert_eq!(r["done"], false);
}

#[tokio::test]
async fn graceful_failback_raises_the_primary_first() {
    let s = setup(0, 100).await;
    let r = s.run(input("start", "failback", "graceful")).await;
    assert_eq!(
        changes(&r),
        vec![
            (s.primary_arn.clone(), 0, 25, true),
            (s.dr_arn.clone(), 100, 75, true)
        ]
    );
    assert_eq!(s.dials().await, (25, 75));
    s.run(input("start", "failback", "graceful")).await;
    let r = s.run(input("start", "failback", "graceful")).await;
    assert_eq!(r["done"], true);
    assert_eq!(s.dials().await, (100, 0));
}

#[tokio::test]
async fn ungraceful_jumps_to_the_final_dials_in_one_start() {
    let s = setup(100, 0).await;
    for run in 0..3 {
        let r = s.run(input("start", "failover", "ungraceful")).await;
        assert_eq!(r["done"], true, "{r}");
        assert_eq!(changes(&r).len(), if run == 0 { 2 } else { 0 }, "{r}");
        assert_eq!(s.dials().await, (0, 100));
    }
}

#[tokio::test]
async fn dry_run_lists_every_dial_change_and_changes_nothing() {
    let s = setup(100, 0).await;
    let before = s.groups().await;
    let event = common::event("shift-traffic-dry-run.json");
    assert_eq!(event["dry_run"], true);
    let r = s.run(event).await;
    assert_eq!(
        r["done"], true,
        "dry-run never loops the state machine: {r}"
    );
    assert_eq!(r["dry_run"], true);
    let (p, d) = (s.primary_arn.clone(), s.dr_arn.clone());
    assert_eq!(
        changes(&r),
        vec![
            (d.clone(), 0, 25, false),
            (p.clone(), 100, 75, false),
            (d.clone(), 25, 50, false),
            (p.clone(), 75, 50, false),
            (d.clone(), 50, 100, false),
            (p.clone(), 50, 0, false),
        ]
    );
    assert_eq!(
        s.groups().await,
        before,
        "dry-run must not touch the endpoint groups"
    );
    // Dry-run status also lets the state machine move on without having changed anything.
    let st = s.run(json!({"action": "status", "direction": "failover", "mode": "graceful", "dry_run": true})).await;
    assert_eq!(st["done"], true);
    assert_eq!(s.groups().await, before);
}

#[tokio::test]
async fn a_missing_endpoint_group_is_named_and_nothing_changes() {
    let s = setup(100, 0).await;
    let missing = format!(
        "arn:aws:globalaccelerator::{}:accelerator/{}/listener/abcd1234/endpoint-group/000000000000",
        common::ACCOUNT,
        common::unique("gone")
    );
    let ctx = context_with(&s.primary_arn, &missing).await;
    let err = invoke(handle, &ctx, input("start", "failover", "ungraceful"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains(&missing), "{err}");
    assert!(
        err.message.contains("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN"),
        "{err}"
    );
    assert_eq!(
        s.dials().await,
        (100, 0),
        "the primary dial must not move when the DR group is missing"
    );
}

#[tokio::test]
async fn swapped_endpoint_groups_are_a_plan_error_and_nothing_changes() {
    let s = setup(100, 0).await;
    let ctx = context_with(&s.dr_arn, &s.primary_arn).await;
    let err = invoke(handle, &ctx, input("start", "failover", "ungraceful"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(
        err.message
            .contains("PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN")
            && err.message.contains(DR_REGION),
        "{err}"
    );
    assert_eq!(s.dials().await, (100, 0));
}

#[tokio::test]
async fn bad_input_is_rejected_before_any_call() {
    let s = setup(100, 0).await;
    let err = invoke(
        handle,
        &s.ctx,
        json!({"action": "start", "direction": "sideways"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    let err = invoke(handle, &s.ctx, json!({"action": "start", "dial": 50}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("dial"), "{err}");
    assert_eq!(s.dials().await, (100, 0));
}

// ---- drain (graceful flows) ----------------------------------------------------------------------------------

#[tokio::test]
async fn drain_zeroes_the_source_then_start_ramps_the_target_up_from_zero() {
    let s = setup(100, 0).await;
    let drain = common::event("shift-traffic-drain.json");
    assert_eq!(drain["action"], "drain");

    let r = s.run(drain.clone()).await;
    assert_eq!(r["action"], "drain");
    assert_eq!(r["done"], true, "{r}");
    assert_eq!(r["saw"]["dials"], json!({"primary": 100, "dr": 0}));
    assert_eq!(r["saw"]["dials_after"], json!({"primary": 0, "dr": 0}));
    // Only the source dial moves; the target's is left as it is.
    assert_eq!(changes(&r), vec![(s.primary_arn.clone(), 100, 0, true)]);
    assert!(
        r["message"].as_str().unwrap().contains("both dials are 0"),
        "{r}"
    );
    assert_eq!(
        s.dials().await,
        (0, 0),
        "both at 0 is deliberate after a drain"
    );

    // Re-delivered three times: same end state, nothing changed, no error.
    for _ in 0..3 {
        let again = s.run(drain.clone()).await;
        assert_eq!(again["done"], true);
        assert!(changes(&again).is_empty(), "{again}");
        assert!(
            again["message"].as_str().unwrap().starts_with("no-op"),
            "{again}"
        );
        assert_eq!(s.dials().await, (0, 0));
    }

    // The following start loop ramps the target from 0 and never raises the source.
    let start = common::event("shift-traffic-start.json");
    for (dr, done) in [(25, false), (50, false), (100, true)] {
        let before = s.dials().await;
        let r = s.run(start.clone()).await;
        assert_eq!(r["done"], done, "{r}");
        assert_eq!(
            changes(&r),
            vec![(s.dr_arn.clone(), before.1 as i64, dr as i64, true)],
            "only the target dial moves"
        );
        assert_eq!(s.dials().await, (0, dr));
    }
}

#[tokio::test]
async fn drain_on_failback_leaves_the_primary_dial_alone() {
    // The primary dial was already raised by hand: drain does not touch it, only the DR (source) goes to 0.
    let s = setup(30, 100).await;
    let mut event = common::event("shift-traffic-drain.json");
    event["direction"] = json!("failback");
    let r = s.run(event).await;
    assert_eq!(changes(&r), vec![(s.dr_arn.clone(), 100, 0, true)]);
    assert_eq!(r["done"], true);
    assert!(
        r["message"].as_str().unwrap().contains("still takes 30%"),
        "the target serving before promotion is pointed out: {r}"
    );
    assert_eq!(s.dials().await, (30, 0));
    // Then start goes on from 30 (next plan step 50), the DR stays at 0.
    let r = s.run(input("start", "failback", "graceful")).await;
    assert_eq!(changes(&r), vec![(s.primary_arn.clone(), 30, 50, true)]);
    assert_eq!(s.dials().await, (50, 0));
}

#[tokio::test]
async fn drain_dry_run_lists_the_change_and_changes_nothing() {
    let s = setup(100, 0).await;
    let before = s.groups().await;
    let mut event = common::event("shift-traffic-drain.json");
    event["dry_run"] = json!(true);
    let r = s.run(event).await;
    assert_eq!(r["done"], true);
    assert_eq!(changes(&r), vec![(s.primary_arn.clone(), 100, 0, false)]);
    assert_eq!(r["saw"]["dials_after"], json!({"primary": 100, "dr": 0}));
    assert!(r["message"].as_str().unwrap().starts_with("dry-run"), "{r}");
    assert_eq!(
        s.groups().await,
        before,
        "dry-run must not touch the endpoint groups"
    );
}

#[tokio::test]
async fn drain_with_a_missing_endpoint_group_is_named_and_nothing_changes() {
    let s = setup(100, 0).await;
    let missing = format!(
        "arn:aws:globalaccelerator::{}:accelerator/{}/listener/abcd1234/endpoint-group/000000000000",
        common::ACCOUNT,
        common::unique("gone")
    );
    let ctx = context_with(&s.primary_arn, &missing).await;
    let err = invoke(handle, &ctx, common::event("shift-traffic-drain.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(
        err.message.contains(&missing) && err.message.contains("PILOTLIGHT_DR_ENDPOINT_GROUP_ARN"),
        "{err}"
    );
    assert_eq!(
        s.dials().await,
        (100, 0),
        "the primary is not drained when the plan's DR group is missing"
    );
}

#[tokio::test]
async fn actions_of_other_steps_are_refused() {
    let s = setup(100, 0).await;
    for action in ["reprotect", "prepare", "catchup"] {
        let err = invoke(handle, &s.ctx, input(action, "failback", "graceful"))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{action}: {err}");
        assert!(
            err.message.contains("not one of this step's actions"),
            "{err}"
        );
    }
    assert_eq!(s.dials().await, (100, 0));
}

// ---- restore (the rollback of a graceful flow that failed after the drain) -----------------------------------

#[tokio::test]
async fn restore_puts_the_source_dial_back_after_a_drain_and_is_idempotent() {
    let s = setup(100, 0).await;
    s.run(common::event("shift-traffic-drain.json")).await;
    assert_eq!(s.dials().await, (0, 0));
    let restore = common::event("shift-traffic-restore.json");
    assert_eq!(restore["action"], "restore");

    // Dry-run: says what it would do, changes nothing.
    let mut dry = restore.clone();
    dry["dry_run"] = json!(true);
    let r = s.run(dry).await;
    assert_eq!(r["done"], true);
    assert_eq!(changes(&r), vec![(s.primary_arn.clone(), 0, 100, false)]);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("dry-run: would restore"),
        "{r}"
    );
    assert_eq!(s.dials().await, (0, 0));

    let r = s.run(restore.clone()).await;
    assert_eq!(
        (r["action"].as_str(), r["done"].as_bool()),
        (Some("restore"), Some(true)),
        "{r}"
    );
    assert_eq!(r["saw"]["dials"], json!({"primary": 0, "dr": 0}));
    assert_eq!(r["saw"]["dials_after"], json!({"primary": 100, "dr": 0}));
    assert_eq!(
        (
            r["saw"]["source"].as_str(),
            r["saw"]["restored_to"].as_i64()
        ),
        (Some("primary"), Some(100))
    );
    // Only the source dial moves.
    assert_eq!(changes(&r), vec![(s.primary_arn.clone(), 0, 100, true)]);
    assert_eq!(s.dials().await, (100, 0));

    // Re-delivered: no-op, same end state.
    let again = s.run(restore).await;
    assert!(changes(&again).is_empty(), "{again}");
    assert!(
        again["message"].as_str().unwrap().starts_with("no-op"),
        "{again}"
    );
    assert_eq!(s.dials().await, (100, 0));
}

#[tokio::test]
async fn a_failback_restore_raises_the_dr_dial_and_leaves_the_primary_alone() {
    let s = setup(0, 100).await;
    let mut drain = common::event("shift-traffic-drain.json");
    drain["direction"] = json!("failback");
    s.run(drain).await;
    assert_eq!(s.dials().await, (0, 0));
    let mut restore = common::event("shift-traffic-restore.json");
    restore["direction"] = json!("failback");
    let r = s.run(restore).await;
    assert_eq!(r["saw"]["source"], "dr");
    assert_eq!(s.dials().await, (0, 100));
}
