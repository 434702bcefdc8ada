//! The committed state machine is what the flow definition generates: nobody edits the ASL by hand.

use std::process::Command;

#[test]
fn the_committed_state_machine_is_the_generated_one() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/statemachine/failover.asl.json"
    ))
    .unwrap();
    assert!(
        committed == pilotlight::flow::asl::render(),
        "statemachine/failover.asl.json differs from what shared/src/flow.rs generates: run `cargo run -- \
         statemachine` and commit the result"
    );
    let check = Command::new(env!("CARGO_BIN_EXE_pilotlight"))
        .args(["statemachine", "--check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
