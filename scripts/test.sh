#!/usr/bin/env bash
# Every test pilotlight has, on a fresh machine: installs the pinned tools, checks the supply chain of Cargo.lock
# (cargo-deny, offline advisory db), starts the emulators, checks format, lints, builds the Lambda binaries, runs
# unit + integration tests against the emulators, validates the SAM template and the state machine (checkov IaC scan
# included), and stops what it started. One cargo profile (dev) for build and test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log="$(mktemp)"
trap 'scripts/emulators.sh stop >/dev/null 2>&1 || true; rm -f "$log"' EXIT  # until the drill lanes start (stop_all)

step() { printf '\n== %s\n' "$*"; }

step "tools (pinned)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
scripts/install-tools.sh moto ministack sam asl checkov chromium

step "supply chain (Cargo.lock: advisories, licenses, duplicates, sources; offline)"
scripts/supply-chain.sh

step "emulators"
scripts/emulators.sh start moto gapfill ministack
eval "$(scripts/emulators.sh env)"

step "gapfill test server and faultproxy self-checks"
python3 tests/support/check_gapfill.py --url "$PILOTLIGHT_GAPFILL_URL"
python3 tests/support/check_faultproxy.py --moto "$PILOTLIGHT_MOTO_URL" --gapfill "$PILOTLIGHT_GAPFILL_URL"

step "template and state machine"
scripts/validate-template.sh

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the Lambda binaries"
cargo build --workspace --bins --locked

step "the fuzz targets still build (fuzz/, its own workspace; run with cargo-fuzz, see fuzz/README.md)"
CARGO_TARGET_DIR="$ROOT/target" cargo check --manifest-path fuzz/Cargo.toml --locked --quiet

# End to end: the real binaries and the real state machine in the emulators. Each drill exits non-zero unless the
# topology it ends in is the expected one.
drills=(
  ""                      # alarm -> ungraceful failover
  "--dry-run"             # the whole flow, nothing changes
  "--graceful"            # planned failover: drain, lag 0, switch, dials in steps
  "--failback"            # failover, then failback with re-protection: the original topology, pilot light restored
  "--approval approve"
  "--approval reject"
  "--approval timeout"
  "--primary-outage"      # every call to the failed region hangs: the failover must not need it; then the fence command
  "--probe"               # the primary's health path stops answering: probe -> its alarm (modelled) -> failover
  "--throttle within"     # the first calls of every step's API throttled: the SDK and the state machine retry
  "--throttle shift-traffic"  # throttled on every call: stopped, ABORTED notice to the operators (status rule)
  "--dns-down"            # Route 53 AccessDenied after the shift: SUCCEEDED degraded; an update-dns re-run completes DNS
  "--dns-down blackhole"  # Route 53 never answers: 9 timed-out update-dns attempts, then SUCCEEDED degraded; re-run completes
  "--graceful-rollback"   # catch-up never reaches lag 0: source dial restored, FAILED, the notice says rolled back
  "--stale-ami"           # only a stale AMI: the preflight pauses (nothing changed), approved with allow_stale_ami
  "--aurora"              # Aurora global database: lag-gated FailoverGlobalCluster, the DR cluster the writer (~1 min)
  "--aurora --graceful"   # Aurora: SwitchoverGlobalCluster (RPO 0), dials in steps, the old primary a secondary
  "--aurora --failback"   # Aurora: failover, then failback: the primary cluster the writer, the DR cluster its secondary
  "--replica-busy"        # the DR replica backing-up: promote-db waits (status polls), then promotes once; completes
  "--timing db=3,compute=4,ga=1,dns=1 --bench"  # the AWS timing model (faultproxy): the steps wait through
                          # modifying/rebooting, Pending/initial; the bench's figures are printed (short mode, ~50 s)
  "--cli"                 # the operator's CLI: status, plan, failover --dry-run on a terminal, follow, approve, report
  "--readiness"           # the scheduled readiness function: unchanged -> no notice; a check broken -> exactly one naming it
)
# The drills mostly wait (state machine polls, Lambda cold starts in ministack), so they run in two lanes beside the
# cargo tests, each lane on its own emulators and run folder (--dns-down blackhole scales its lane's ministack
# sleeps; the cargo tests reset theirs). Results are printed in the list's order once all are done.
lanes_dir="$(mktemp -d)"
lane_pids=()
lane_ports() { echo "PILOTLIGHT_MOTO_PORT=50${1}0 PILOTLIGHT_GAPFILL_PORT=51${1}0 PILOTLIGHT_MINISTACK_PORT=45${1}6"; }
stop_all() {
  for p in "${lane_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for l in 1 2; do env $(lane_ports "$l") scripts/emulators.sh stop >/dev/null 2>&1 || true; done
  scripts/emulators.sh stop >/dev/null 2>&1 || true
  rm -rf "$log" "$lanes_dir"
}
trap stop_all EXIT
run_lane() { # lane (1 or 2): the drills whose index i has i % 2 == lane - 1
  local lane=$1 i
  export $(lane_ports "$lane")
  export PILOTLIGHT_DRILL_RUN="$ROOT/.tools/run/lane$lane"
  if ! scripts/emulators.sh start moto gapfill ministack > "$lanes_dir/lane$lane.emulators" 2>&1; then
    cp "$lanes_dir/lane$lane.emulators" "$lanes_dir/lane$lane.failed"; return 1
  fi
  eval "$(scripts/emulators.sh env)"
  for i in "${!drills[@]}"; do
    (( i % 2 == lane - 1 )) || continue
    local rc=0
    # shellcheck disable=SC2086
    scripts/drill.sh --no-build ${drills[$i]} > "$lanes_dir/drill-$i.log" 2>&1 || rc=$?
    echo "$rc" > "$lanes_dir/drill-$i.rc"
  done
  scripts/emulators.sh stop >/dev/null 2>&1 || true
}
step "drills: ${#drills[@]} in two lanes beside the cargo tests (results after the tests)"
run_lane 1 & lane_pids+=($!)
run_lane 2 & lane_pids+=($!)

step "tests"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "cargo: ${passed} passed, ${failed} failed"

wait "${lane_pids[@]}" || true
for i in "${!drills[@]}"; do
  args="${drills[$i]}"
  step "drill ${args:-(default)}"
  if [[ "$(cat "$lanes_dir/drill-$i.rc" 2>/dev/null)" == 0 ]]; then
    passed=$((passed + 1)); tail -n 3 "$lanes_dir/drill-$i.log"
  else
    failed=$((failed + 1)); status=1
    tail -n 60 "$lanes_dir/drill-$i.log" 2>/dev/null || cat "$lanes_dir"/lane*.failed 2>/dev/null || true
    echo "drill ${args:-(default)}: FAILED"
  fi
done

# The bench runs (figures, not pass/fail): its short mode on the debug binaries, against the emulators above (~30 s).
step "bench (BENCH_SHORT=1 scripts/bench.sh)"
if BENCH_SHORT=1 scripts/bench.sh > "$log.bench" 2>&1; then
  passed=$((passed + 1)); cat "$log.bench"
else
  failed=$((failed + 1)); status=1; tail -n 60 "$log.bench"; echo "bench (short): FAILED"
fi
rm -f "$log.bench"

echo
echo "${passed} passed, ${failed} failed"
exit "$status"
