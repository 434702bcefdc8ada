#!/usr/bin/env python3
"""Per-function figures of the real Lambda binaries through a local Lambda Runtime API (loopback only).

For each function: cold init (process start -> its first GET /invocation/next, which lambda_runtime sends once the
plan is parsed, the SDK config loaded and every client built), median and max over --starts processes; then one
process serves --invocations events of a cheap read-only action against the emulators the environment points at
(AWS_ENDPOINT_URL*, as `scripts/emulators.sh env` exports them): warm latency (event handed out -> response or error
posted back) and the peak resident set (VmHWM from /proc/<pid>/status) after the last one.

The environment of each function is the one `sam local invoke` gets (sam-local/env.json: the reference plan and the
function's own variables), with the endpoints taken from this process's environment instead of host.docker.internal.
Python 3 stdlib only; prints one line per function.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# function binary -> (sam-local/env.json key, read-only event for the warm invocations)
FUNCTIONS = {
    "detect": ("DetectFunction", "detect-manual-status.json"),
    "promote-db": ("PromoteDbFunction", "promote-db-start-dry-run.json"),
    "scale-compute": ("ScaleComputeFunction", "scale-compute-start-dry-run.json"),
    "shift-traffic": ("ShiftTrafficFunction", "shift-traffic-dry-run.json"),
    "update-dns": ("UpdateDnsFunction", "update-dns-dry-run.json"),
    "notify": ("NotifyFunction", "notify-milestone.json"),
    "probe": ("ProbeFunction", "probe-scheduled.json"),
    "readiness": ("ReadinessFunction", "readiness-scheduled.json"),
}


class Api:
    """One Runtime API for one process at a time: hands out `events`, records when each was taken and answered."""

    def __init__(self):
        self.lock = threading.Condition()
        self.reset([])

    def reset(self, events):
        with self.lock:
            self.events = list(events)
            self.next_calls = []  # perf_counter of each GET /invocation/next
            self.handed = {}  # request id -> perf_counter when the event was written
            self.answered = {}  # request id -> (perf_counter, "response" | "error <type>")
            self.lock.notify_all()

    def wait(self, predicate, timeout):
        end = time.perf_counter() + timeout
        with self.lock:
            while not predicate():
                left = end - time.perf_counter()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True


def handler_for(api):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if not self.path.endswith("/invocation/next"):
                self.send_error(404)
                return
            with api.lock:
                api.next_calls.append(time.perf_counter())
                i = len(api.next_calls) - 1
                api.lock.notify_all()
                event = api.events[i] if i < len(api.events) else None
            if event is None:
                # No more work: hold the long poll, as Lambda does between invocations; the bench ends the process.
                time.sleep(3600)
                return
            rid = f"req-{i}"
            deadline = int(time.time() * 1000) + 30_000
            self.send_response(200)
            for k, v in (
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", rid),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:ap-northeast-1:123456789012:function:bench"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ("Content-Length", str(len(event))),
            ):
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(event)
            self.wfile.flush()
            with api.lock:
                api.handed[rid] = time.perf_counter()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.perf_counter()
            parts = self.path.split("/")
            outcome = "response"
            if parts[-1] == "error":
                try:
                    outcome = "error " + json.loads(body).get("errorType", "?")
                except ValueError:
                    outcome = "error ?"
            rid = parts[-2] if len(parts) >= 2 else "init"
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with api.lock:
                api.answered[rid] = (at, outcome)
                api.lock.notify_all()

    return Handler


def function_env(name, api_addr):
    env_json = json.loads((ROOT / "sam-local/env.json").read_text())
    key, _ = FUNCTIONS[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTLIGHT_")}
    for k, v in {**env_json["Parameters"], **env_json.get(key, {})}.items():
        if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":
            continue  # the emulators of this run, from the environment
        env[k] = str(v)
    env.update(
        AWS_LAMBDA_RUNTIME_API=api_addr,
        AWS_LAMBDA_FUNCTION_NAME=name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench",
        AWS_REGION="ap-northeast-1",
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        RUST_LOG="error",
    )
    return env


def stop(proc):
    proc.kill()
    proc.wait()


def cold_starts(api, binary, env, starts):
    times = []
    for _ in range(starts):
        api.reset([])
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = api.wait(lambda: api.next_calls, 10)
        t1 = api.next_calls[0] if ok else None
        stop(proc)
        if t1 is None:
            raise SystemExit(f"{binary}: no /invocation/next within 10 s of start; run it by hand to see why")
        times.append((t1 - t0) * 1000)
    return times


def warm(api, binary, env, event, invocations):
    api.reset([event] * invocations)
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = api.wait(lambda: len(api.answered) >= invocations, 60 + invocations)
        status = Path(f"/proc/{proc.pid}/status").read_text()
    finally:
        stop(proc)
    if not done:
        raise SystemExit(f"{binary}: answered {len(api.answered)} of {invocations} invocations in time")
    hwm = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:")), 0)
    # In request order, without the first invocation (it also opens the connections): warm is the rest.
    order = sorted((int(r.split("-")[1]), r) for r in api.answered if r in api.handed)
    lat = sorted((api.answered[r][0] - api.handed[r]) * 1000 for i, r in order if i > 0 or len(order) == 1)
    outcomes = {}
    for _, outcome in api.answered.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return lat, hwm, outcomes


def pct(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--invocations", type=int, default=100)
    ap.add_argument("functions", nargs="*", default=list(FUNCTIONS))
    args = ap.parse_args()

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a killed function's held long poll resets its connection: expected, not news

    api = Api()
    server = Server(("127.0.0.1", 0), handler_for(api))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{server.server_address[1]}"
    emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))
    if not emulated:
        raise SystemExit("no AWS_ENDPOINT_URL: start the emulators (scripts/emulators.sh) and eval their env first")

    print(
        f"{'function':<14} {'init p50':>9} {'init max':>9} {'VmHWM':>9} {'warm p50':>9} {'warm p99':>9}  "
        f"(ms, MiB; {args.starts} starts, {args.invocations} invocations)  outcome of the warm invocations"
    )
    for name in args.functions:
        binary = str(Path(args.bin_dir) / name)
        env = function_env(name, addr)
        init = sorted(cold_starts(api, binary, env, args.starts))
        event = (ROOT / "events" / FUNCTIONS[name][1]).read_bytes()
        lat, hwm, outcomes = warm(api, binary, env, event, args.invocations)
        steady = lat or [0.0]
        what = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        where = FUNCTIONS[name][1]
        print(
            f"{name:<14} {statistics.median(init):>9.1f} {init[-1]:>9.1f} {hwm / 1024:>9.1f} "
            f"{pct(steady, 50):>9.1f} {pct(steady, 99):>9.1f}  {where}: {what}"
        )
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
