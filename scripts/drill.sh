#!/usr/bin/env bash
# The failover drill, on this machine, with nothing but the registries: builds the functions, starts the
# emulators, seeds a two-region pilot-light topology, deploys the real Lambda binaries and the real state machine
# into ministack, puts an alarm into ALARM, follows the failover and checks the end state. See docs/drill.md.
#
#   scripts/drill.sh [--keep-running] [--no-build] [--dry-run | --graceful | --primary-outage | --failback |
#                    --probe | --throttle within|STEP | --stale-ami | --dns-down | --graceful-rollback |
#                    --replica-busy | --aurora [--graceful] [--failback]] [--approval approve|reject|timeout]
#                    [--primary-region R] [--dr-region R] [--alarm-region R]
#                    [--name-prefix P] [--timeout S]   (all but the next two: the drill's --help)
#   --keep-running  leave the emulators (and the deployed drill) up for poking around
#   --no-build      use the binaries already in target/debug (a re-run right after a build)
#
# Exit status: 0 only when the final topology is the failed-over one (with --dry-run: unchanged).
# Emulators: the ones scripts/emulators.sh already runs are reused and left running; otherwise this starts all
# three (ports: PILOTLIGHT_MOTO_PORT / PILOTLIGHT_GAPFILL_PORT / PILOTLIGHT_MINISTACK_PORT) and stops them at exit,
# with every Lambda process ministack spawned, unless --keep-running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

keep_running=0
build=1
drill_args=()
for a in "$@"; do
  case "$a" in
    --keep-running) keep_running=1 ;;
    --no-build) build=0 ;;
    -h|--help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      echo
      py=python3; [[ -x .tools/moto/bin/python ]] && py=.tools/moto/bin/python
      PYTHONPATH="$ROOT/scripts" exec "$py" -m drill --help
      ;;
    *) drill_args+=("$a") ;;
  esac
done

t_start=$(date +%s)
step() { printf '\n== %s  (drill.sh +%ss)\n' "$*" "$(( $(date +%s) - t_start ))"; }

started_emulators=0
t_build=0 t_tools=0 t_drill=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if (( started_emulators )); then
    if (( keep_running )); then
      echo
      echo "emulators left running (--keep-running): moto ${PILOTLIGHT_MOTO_URL:-}, gapfill ${PILOTLIGHT_GAPFILL_URL:-}, ministack ${PILOTLIGHT_MINISTACK_URL:-}"
      echo "  deployed plan: .tools/run/drill-plan.env   stop them with: scripts/emulators.sh stop"
    else
      step "stop the emulators this drill started"
      scripts/emulators.sh stop || true
    fi
  fi
  if [[ -n "$t_drill" ]]; then
    echo
    echo "drill.sh: $(( $(date +%s) - t_start ))s end to end (build ${t_build}s, tools + emulators ${t_tools}s," \
      "drill ${t_drill}s); exit status $rc"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t=$(date +%s)
if (( build )); then
  step "build the functions (cargo build --workspace --bins --locked, debug profile, as the tests)"
  cargo build --workspace --bins --locked
fi
t_build=$(( $(date +%s) - t ))

step "tools (pinned)"
t=$(date +%s)
scripts/install-tools.sh moto ministack

step "emulators"
status="$(scripts/emulators.sh status)"
echo "$status"
answering=$(grep -c ': running, answers' <<<"$status" || true)
running=$(grep -c ': running' <<<"$status" || true)
if (( answering == 3 )); then
  echo "reusing the running emulators (left running at exit)"
elif (( running == 0 )); then
  started_emulators=1
  scripts/emulators.sh start moto gapfill ministack
else
  # Never start over them: emulators.sh would restart (stop) a server it finds not answering on the ports
  # asked for, e.g. someone else's run on other PILOTLIGHT_*_PORT values.
  echo "scripts/emulators.sh already runs some emulators, not all three answering on the ports asked for" >&2
  echo "(PILOTLIGHT_MOTO_PORT / PILOTLIGHT_GAPFILL_PORT / PILOTLIGHT_MINISTACK_PORT): start all three" >&2
  echo "(scripts/emulators.sh start) or stop them (scripts/emulators.sh stop), then run the drill again" >&2
  exit 2
fi
eval "$(scripts/emulators.sh env)"
t_tools=$(( $(date +%s) - t ))

step "drill (scripts/drill/ ${drill_args[*]:-})"
t=$(date +%s)
# PILOTLIGHT_DRILL_RUN: where this drill writes its plan, output and proxy log (scripts/test.sh gives each of its
# parallel drill lanes its own).
export PILOTLIGHT_DRILL_RUN="${PILOTLIGHT_DRILL_RUN:-$ROOT/.tools/run}"
mkdir -p "$PILOTLIGHT_DRILL_RUN"
set +e
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" PYTHONPATH="$ROOT/scripts" .tools/moto/bin/python -m drill \
  --write-plan "$PILOTLIGHT_DRILL_RUN/drill-plan.env" --write-output "$PILOTLIGHT_DRILL_RUN/drill-output.json" \
  "${drill_args[@]}"
rc=$?
set -e
t_drill=$(( $(date +%s) - t ))
exit "$rc"
