#!/usr/bin/env bash
# Figures, not pass/fail: the pure decision path of detect (parse each alarm shape, decide) with peak memory, the
# size of each Lambda binary, and one timed drill end to end (alarm -> failed-over topology, emulated AWS).
# Debug profile, the one the tests build (a release build of the SDK set takes ~45 min on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --workspace --bins --locked -q
echo "== detect's pure path (target/debug/pilotlight bench)"
target/debug/pilotlight bench --iterations "${BENCH_ITERATIONS:-20000}"
echo
echo "== Lambda binaries (debug, unstripped)"
for f in detect promote-db scale-compute shift-traffic update-dns notify; do
  printf '%-16s %8s\n' "$f" "$(du -h "target/debug/$f" | cut -f1)"
done
if [[ "${BENCH_DRILL:-1}" == 1 ]]; then
  echo
  echo "== drill end to end (scripts/drill.sh --no-build)"
  scripts/drill.sh --no-build | grep -E "RTO|RPO|DRILL|end to end" || true
fi
if [[ "${BENCH_RTO:-1}" == 1 ]]; then
  # The RTO figures under the AWS timing model (tests/support/faultproxy.py `timing`): production poll settings
  # (15 s, dial bake 30 s) scaled down by 5; the service times are real seconds. See README "Performance".
  timing="${BENCH_TIMING:-db=20,compute=30,ga=2,dns=2}"
  echo
  echo "== drill with the AWS timing model (scripts/drill.sh --no-build --timing $timing --bench)"
  PILOTLIGHT_POLL_SECONDS="${BENCH_POLL_SECONDS:-3}" PILOTLIGHT_DIAL_BAKE_SECONDS="${BENCH_DIAL_BAKE_SECONDS:-6}" \
    scripts/drill.sh --no-build --timing "$timing" --bench \
    | awk '/^== bench/{on=1} /^DRILL /{print; on=0} on' || true
fi
