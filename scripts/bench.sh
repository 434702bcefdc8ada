#!/usr/bin/env bash
# Figures, not pass/fail (README "Performance").
#   scripts/bench.sh                 the release build (nice'd; ~15 min clean on 2 idle cores, 2-3x under load):
#                                    (BENCH_PROFILE=<name>: the same for another profile of Cargo.toml)
#                                    per function its stripped size, the SDK crates it links, cold init, peak RSS,
#                                    warm latency against the emulators; detect's parse + decide percentiles; one
#                                    timed drill end to end (debug binaries, the drill's own build)
#   BENCH_SHORT=1 scripts/bench.sh   the same on the debug binaries the test command built, few iterations, no
#                                    drill (< 1 min): the test command's check that the bench runs (its lanes run
#                                    the timing drill with --bench, the command of the RTO part)
# Needs the emulators for the warm invocations: uses those the environment points at (scripts/emulators.sh env),
# else starts its own and stops them at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
short="${BENCH_SHORT:-0}"
functions=(detect promote-db scale-compute shift-traffic update-dns notify probe readiness)
cargo build --workspace --bins --locked -q

# ---- release binaries: size, SDK crates, cold init, RSS, warm latency, detect's pure path (issue #12) ----------
if [[ "$short" == 1 ]]; then
  profile=debug
  # No drills: the test command's lanes run the timing drill with --bench (the command the RTO part runs).
  export BENCH_DRILL="${BENCH_DRILL:-0}" BENCH_RTO="${BENCH_RTO:-0}"
  iterations="${BENCH_ITERATIONS:-2000}" starts=3 invocations=5 alarm_starts=3 alarm_invocations=5
else
  # BENCH_PROFILE: another profile of Cargo.toml to measure the same way (the candidates the release profile was
  # chosen against, README "Performance"); its binaries are in target/<profile>.
  profile="${BENCH_PROFILE:-release}"
  # Symbols kept so the SDK crates each binary links can be counted; the sizes below are of stripped copies, which
  # is what `strip = "symbols"` in [profile.release] makes for `sam build`.
  strip_var="CARGO_PROFILE_$(tr 'a-z-' 'A-Z_' <<<"$profile")_STRIP"
  echo "== $profile build (nice -n 10, [profile.$profile] of Cargo.toml, symbols kept for the count below)"
  start=$(date +%s)
  env "$strip_var=none" nice -n 10 cargo build --profile "$profile" --workspace --bins --locked -q
  echo "built in $(($(date +%s) - start)) s (0 when nothing changed)"
  iterations="${BENCH_ITERATIONS:-20000}" starts="${BENCH_STARTS:-20}" invocations="${BENCH_INVOCATIONS:-100}"
  alarm_starts="${BENCH_STARTS:-20}" alarm_invocations="${BENCH_ALARM_INVOCATIONS:-30}"
fi
bin="target/$profile"
stripped="$(mktemp -d)"
own_emulators=0
cleanup() {
  rm -rf "$stripped"
  if [[ "$own_emulators" == 1 ]]; then scripts/emulators.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1fM", b / 1048576 }'; }

echo
echo "== Lambda binaries ($profile, x86_64): size stripped (what \`strip = \"symbols\"\` deploys), and the code of each"
echo "   aws-sdk-* crate the binary still holds (KiB, summed sizes of its defined symbols; release only)"
sdks="rds autoscaling elasticloadbalancingv2 ssm backup cloudwatch globalaccelerator route53 sns sfn dynamodb lambda"
printf '%-14s %9s %9s' function unstripped stripped
if [[ "$short" != 1 ]]; then printf ' %6s' rds asg elbv2 ssm backup cw ga r53 sns sfn ddb lambda; fi
echo
for f in "${functions[@]}"; do
  strip -o "$stripped/$f" "$bin/$f"
  printf '%-14s %9s %9s' "$f" "$(mib "$bin/$f")" "$(mib "$stripped/$f")"
  if [[ "$short" != 1 ]]; then
    # Each symbol counted once, for the first SDK crate its demangled name mentions (a generic instantiated for an
    # SDK type counts for that SDK).
    nm -C -S --defined-only "$bin/$f" | python3 -c '
import re, sys
sdks = sys.argv[1].split()
kib = dict.fromkeys(sdks, 0)
for line in sys.stdin:
    parts = line.split(None, 3)
    m = re.search(r"aws_sdk_([a-z0-9]+)", parts[3]) if len(parts) == 4 else None
    if m and m.group(1) in kib:
        kib[m.group(1)] += int(parts[1], 16)
print("".join(f" {kib[s] / 1024:6.0f}" for s in sdks), end="")' "$sdks"
  fi
  echo
done

echo
echo "== cold init, peak RSS, warm latency ($profile, through a local Lambda Runtime API: scripts/bench_lambda.py)"
if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  own_emulators=1
  scripts/emulators.sh start moto gapfill ministack >/dev/null
  eval "$(scripts/emulators.sh env)"
fi
# The drill's interpreter (boto3 pinned there) for the alarm path's topology, as drill.sh picks it.
py=python3; [[ -x .tools/moto/bin/python ]] && py=.tools/moto/bin/python
"$py" scripts/bench_lambda.py --bin-dir "$stripped" --starts "$starts" --invocations "$invocations" \
  --alarm-starts "$alarm_starts" --alarm-invocations "$alarm_invocations" "${functions[@]}"

echo
echo "== detect's pure path in process ($bin/pilotlight bench): bytes -> JSON -> trigger -> origin check + decision"
"$bin/pilotlight" bench --iterations "$iterations"
# ---- end of the release-binary section ---------------------------------------------------------------------------

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
