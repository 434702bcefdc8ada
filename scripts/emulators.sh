#!/usr/bin/env bash
# Start/stop the local AWS-API emulators the tests and the drill talk to.
#
#   scripts/emulators.sh start [moto] [gapfill] [ministack]   (no names = all three)
#   scripts/emulators.sh stop                                  (everything this script started; never fails)
#   scripts/emulators.sh env                                   (export lines for a test run: eval "$(... env)")
#   scripts/emulators.sh status
#
# Ports (all bound to 127.0.0.1 only):
#   PILOTLIGHT_MOTO_PORT=5000  PILOTLIGHT_GAPFILL_PORT=5100  PILOTLIGHT_MINISTACK_PORT=4566
# Optional: PILOTLIGHT_MOTO_CALLBACK_PORT=<port> makes moto's Step Functions send Task calls (Lambda invokes) to
# http://localhost:<port> instead of moto itself, e.g. the ministack port (see docs/emulators.md).
#
# Logs and pid files live in .tools/run/. Each server runs in its own session (setsid), so `stop` ends the
# server, whatever it spawned (ministack's Lambda `bootstrap` processes) and ministack's temp folders
# (ministack runs with TMPDIR=.tools/run/ministack-<port>-tmp, which holds its ministack-provided-code-* folders).
# `stop` stops the servers on the configured ports only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
RUN="$TOOLS/run"
MOTO_PORT="${PILOTLIGHT_MOTO_PORT:-5000}"
GAPFILL_PORT="${PILOTLIGHT_GAPFILL_PORT:-5100}"
MINISTACK_PORT="${PILOTLIGHT_MINISTACK_PORT:-4566}"
HOST=127.0.0.1
ALL=(moto gapfill ministack)

port_of() { case "$1" in moto) echo "$MOTO_PORT" ;; gapfill) echo "$GAPFILL_PORT" ;; ministack) echo "$MINISTACK_PORT" ;; esac; }
health_path() { case "$1" in moto) echo /moto-api/ ;; gapfill) echo /_gapfill/health ;; ministack) echo /_ministack/health ;; esac; }
# a string the server's command line must contain (guards against a recycled pid)
marker() { case "$1" in moto) echo moto_server ;; gapfill) echo gapfill.py ;; ministack) echo ministack ;; esac; }
timeout_of() { case "$1" in moto) echo 60 ;; gapfill) echo 15 ;; ministack) echo 90 ;; esac; }
# Files are per name AND port, so runs on other ports (a CI clone, a drill beside a test run) never see, reuse or
# stop each other's servers.
pidfile() { echo "$RUN/$1-$(port_of "$1").pid"; }
logfile() { echo "$RUN/$1-$(port_of "$1").log"; }
MINISTACK_TMP="$RUN/ministack-$MINISTACK_PORT-tmp"

# pid of a running server started by this script, or nothing
live_pid() {
  local f; f="$(pidfile "$1")"
  [[ -f "$f" ]] || return 0
  local pid; pid="$(cat "$f" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 0
  local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  if [[ "$cmd" == *"$(marker "$1")"* ]]; then
    echo "$pid"
  fi
}

# HTTP status of the health URL ("000" when nothing answers)
http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$HOST:$(port_of "$1")$(health_path "$1")" 2>/dev/null || true
}

answers() { # moto: any HTTP answer; others: 200
  local code; code="$(http_code "$1")"
  if [[ "$1" == moto ]]; then [[ -n "$code" && "$code" != 000 ]]; else [[ "$code" == 200 ]]; fi
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# every process belonging to a server: its session/process group, its descendants, and (ministack) anything
# running from its temp folder (Lambda bootstrap processes)
members() {
  local name="$1" pid="$2" p
  {
    [[ -n "$pid" ]] && {
      echo "$pid"
      pgrep -s "$pid" 2>/dev/null || true
      pgrep -g "$pid" 2>/dev/null || true
      local queue=("$pid")
      while ((${#queue[@]})); do
        p="${queue[0]}"; queue=("${queue[@]:1}")
        for c in $(pgrep -P "$p" 2>/dev/null || true); do echo "$c"; queue+=("$c"); done
      done
    }
    if [[ "$name" == ministack && -d "$MINISTACK_TMP" ]]; then
      local tmp; tmp="$(cd "$MINISTACK_TMP" && pwd -P)"
      for d in /proc/[0-9]*; do
        p="${d#/proc/}"
        { [[ "$(readlink "$d/cwd" 2>/dev/null)" == "$tmp"/* ]] || [[ "$(readlink "$d/exe" 2>/dev/null)" == "$tmp"/* ]]; } \
          && echo "$p"
      done
    fi
  } | awk -v self="$$" '/^[0-9]+$/ && $0 != self' | sort -un
}

stop_one() {
  local name="$1" pid pids alive
  pid="$(live_pid "$name")"
  pids="$(members "$name" "$pid" | tr '\n' ' ')"
  if [[ -n "${pids// /}" ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 50); do
      alive=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive+="$p "; done
      [[ -z "$alive" ]] && break
      sleep 0.2
    done
    # shellcheck disable=SC2086
    [[ -n "$alive" ]] && kill -KILL $alive 2>/dev/null || true
    echo "$name: stopped (pids ${pids% })"
  else
    echo "$name: not running"
  fi
  rm -f "$(pidfile "$name")"
  if [[ "$name" == ministack ]]; then
    rm -rf "$MINISTACK_TMP"
  fi
}

start_one() {
  local name="$1" port pid log
  port="$(port_of "$name")"
  log="$(logfile "$name")"
  pid="$(live_pid "$name")"
  if [[ -n "$pid" ]]; then
    if answers "$name"; then
      echo "$name: already running (pid $pid, http://$HOST:$port)"
      return 0
    fi
    echo "$name: pid $pid exists but does not answer; restarting" >&2
    stop_one "$name" >/dev/null
  fi
  rm -f "$(pidfile "$name")"
  if port_busy "$port"; then
    echo "$name: port $HOST:$port is already in use by a process this script did not start" >&2
    echo "  (set PILOTLIGHT_${name^^}_PORT to another port, or stop that process)" >&2
    return 1
  fi

  case "$name" in
    moto)
      "$ROOT/scripts/install-tools.sh" moto
      if [[ -n "${PILOTLIGHT_MOTO_CALLBACK_PORT:-}" ]]; then
        MOTO_PORT="$PILOTLIGHT_MOTO_CALLBACK_PORT" setsid "$TOOLS/moto/bin/moto_server" -H "$HOST" -p "$port" \
          </dev/null >"$log" 2>&1 &
      else
        env -u MOTO_PORT setsid "$TOOLS/moto/bin/moto_server" -H "$HOST" -p "$port" </dev/null >"$log" 2>&1 &
      fi
      ;;
    gapfill)
      setsid python3 "$ROOT/tests/support/gapfill.py" --host "$HOST" --port "$port" </dev/null >"$log" 2>&1 &
      ;;
    ministack)
      "$ROOT/scripts/install-tools.sh" ministack
      mkdir -p "$MINISTACK_TMP"
      # ministack runs the deployed functions with its own environment beneath theirs: an AWS_ENDPOINT_URL* this
      # shell inherited (another emulator set's, e.g. the test command's beside a drill lane) would send a
      # function's calls to the wrong moto. Start it without them.
      local inherited=() v
      for v in $(compgen -e | grep -E '^AWS_ENDPOINT_URL' || true); do inherited+=(-u "$v"); done
      env "${inherited[@]}" GATEWAY_PORT="$port" BIND_HOST="$HOST" TMPDIR="$MINISTACK_TMP" \
        setsid "$TOOLS/ministack/bin/python" "$ROOT/tests/support/ministack_server.py" </dev/null >"$log" 2>&1 &
      ;;
  esac
  pid=$!
  echo "$pid" >"$(pidfile "$name")"

  local t0 limit; t0=$(date +%s); limit="$(timeout_of "$name")"
  until answers "$name"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name: exited during start-up; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      stop_one "$name" >/dev/null
      return 1
    fi
    if (( $(date +%s) - t0 >= limit )); then
      echo "$name: did not answer http://$HOST:$port$(health_path "$name") within ${limit}s; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      stop_one "$name" >/dev/null
      return 1
    fi
    sleep 0.2
  done
  echo "$name: started (pid $pid, http://$HOST:$port, ready in $(( $(date +%s) - t0 ))s, log $log)"
}

cmd_env() {
  cat <<EOF
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL=http://$HOST:$MOTO_PORT
export AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR=http://$HOST:$GAPFILL_PORT
export AWS_ENDPOINT_URL_BACKUP=http://$HOST:$GAPFILL_PORT
# The Rust SDK speaks smithy-rpc-v2-cbor to CloudWatch; moto 5.2.5 only serves its Query/JSON API (404 on
# /service/GraniteServiceVersion20100801/...), ministack 1.5.33 serves CBOR.
export AWS_ENDPOINT_URL_CLOUDWATCH=http://$HOST:$MINISTACK_PORT
export PILOTLIGHT_MOTO_URL=http://$HOST:$MOTO_PORT
export PILOTLIGHT_GAPFILL_URL=http://$HOST:$GAPFILL_PORT
export PILOTLIGHT_MINISTACK_URL=http://$HOST:$MINISTACK_PORT
EOF
}

cmd_status() {
  local name pid state
  for name in "${ALL[@]}"; do
    pid="$(live_pid "$name")"
    if [[ -n "$pid" ]]; then
      answers "$name" && state="running, answers" || state="running, NOT answering"
      echo "$name: $state (pid $pid, http://$HOST:$(port_of "$name"), log $(logfile "$name"))"
    else
      echo "$name: stopped"
    fi
  done
}

usage() {
  echo "usage: $0 start [moto] [gapfill] [ministack] | stop | env | status" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
action="$1"; shift
case "$action" in
  start)
    names=("$@")
    [[ ${#names[@]} -eq 0 ]] && names=(moto gapfill ministack)
    for n in "${names[@]}"; do
      case "$n" in moto|gapfill|ministack) ;; *) echo "unknown emulator: $n" >&2; usage ;; esac
    done
    mkdir -p "$RUN"
    for n in "${names[@]}"; do start_one "$n"; done
    ;;
  stop)
    [[ $# -eq 0 ]] || usage
    for n in "${ALL[@]}"; do stop_one "$n" || true; done
    ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) usage ;;
esac
