#!/usr/bin/env python3
"""Per-function figures of the real Lambda binaries through a local Lambda Runtime API (loopback only).

For each function: cold init (process start -> its first GET /invocation/next, which lambda_runtime sends once the
plan is parsed and the SDK config loaded; the clients are built on first use), median and max over --starts processes; then one
process serves --invocations events of a cheap read-only action against the emulators the environment points at
(AWS_ENDPOINT_URL*, as `scripts/emulators.sh env` exports them): warm latency (event handed out -> response or error
posted back) and the peak resident set (VmHWM from /proc/<pid>/status) after the last one.

The environment of each function is the one `sam local invoke` gets (sam-local/env.json: the reference plan and the
function's own variables), with the endpoints taken from this process's environment instead of host.docker.internal.
Then detect's alarm path (class AlarmPath): alarm event in -> StartExecution accepted -> response, cold and warm.
Python 3 stdlib, and boto3 for the alarm path's topology; prints one line per function.
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
            self.last_error = None  # the body of the last error posted
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
            if callable(event):
                try:
                    event = event()  # made now, before it is handed out: not counted in the latency
                except Exception as e:  # noqa: BLE001 - reported by the waiting side
                    api.last_error = f"making the event failed: {e!r}"
                    raise
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
                api.last_error = body.decode(errors="replace")[:600]
                try:
                    outcome = "error " + json.loads(body).get("errorType", "?")
                except ValueError:
                    outcome = "error ?"
            rid = parts[-2] if len(parts) >= 2 else "init"
            if outcome == "response":
                try:
                    said = json.loads(body).get("outcome")
                    outcome = f"response {said}" if said else outcome
                    if said and said != "started":
                        api.last_error = body.decode(errors="replace")[:600]
                except (ValueError, AttributeError):
                    pass
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
    # Not this machine's SSL_CERT_FILE / SSL_CERT_DIR either: Lambda sets neither, so the SDK reads the system's one
    # CA bundle; with SSL_CERT_DIR it would also parse every certificate file in the folder at each cold start.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PILOTLIGHT_") and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
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


def cpu_ms(pid):
    """CPU time the process's threads have run so far (schedstat, ns): unlike the wall clock, not inflated by other
    processes or by the hypervisor taking the core away (steal), which this shared machine has."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e6


def cold_starts(api, binary, env, starts):
    times, cpu = [], []
    for _ in range(starts):
        api.reset([])
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = api.wait(lambda: api.next_calls, 10)
        t1 = api.next_calls[0] if ok else None
        if t1 is not None:
            cpu.append(cpu_ms(proc.pid))  # blocked in its long poll: its init's CPU time, and nothing more
        stop(proc)
        if t1 is None:
            raise SystemExit(f"{binary}: no /invocation/next within 10 s of start; run it by hand to see why")
        times.append((t1 - t0) * 1000)
    return times, sorted(cpu)


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


class AlarmPath:
    """detect's disaster-day path against the emulators: an alarm event in, StartExecution accepted, response out.

    Seeds what that path reads (boto3, the endpoints of this environment): one alarm in ALARM in the DR region,
    Global Accelerator dials primary 100 / DR 0, a lock table, and a state machine whose executions end at once
    (a Pass state), so every event can start one. Before each event is handed out (not counted) the alarm is set
    OK then ALARM again (a new transition: a new execution name) and the lock item is deleted, as a finished
    execution's release does; the cooldown is 0. Every timed invocation therefore reads the alarm, the recent
    executions and the dials concurrently, writes the lock and starts an execution: the path an alarm takes.
    """

    PRIMARY, DR, ACCOUNT = "ap-northeast-2", "ap-northeast-1", "123456789012"

    def __init__(self):
        import boto3  # the drill's client library; only this part of the bench needs it

        run = f"{int(time.time() * 1000):x}"
        self.cw = boto3.client("cloudwatch", region_name=self.DR)
        self.ddb = boto3.client("dynamodb", region_name=self.DR)
        self.sfn = sfn = boto3.client("stepfunctions", region_name=self.DR)
        ga = boto3.client("globalaccelerator", region_name="us-west-2")
        self.alarm = f"bench-web-5xx-{run}"
        self.cw.put_metric_alarm(
            AlarmName=self.alarm, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_ELB_5XX_Count",
            Statistic="Sum", Period=60, EvaluationPeriods=3, Threshold=50.0,
            ComparisonOperator="GreaterThanThreshold")
        self.state_machine = sfn.create_state_machine(
            name=f"bench-failover-{run}", roleArn=f"arn:aws:iam::{self.ACCOUNT}:role/pilotlight-sfn",
            definition=json.dumps({"StartAt": "Hold", "States": {"Hold": {"Type": "Pass", "End": True}}}),
        )["stateMachineArn"]
        accelerator = ga.create_accelerator(Name=f"bench-{run}", IdempotencyToken=f"a-{run}")["Accelerator"]
        listener = ga.create_listener(
            AcceleratorArn=accelerator["AcceleratorArn"], Protocol="TCP",
            PortRanges=[{"FromPort": 443, "ToPort": 443}], IdempotencyToken=f"l-{run}")["Listener"]
        self.groups = [
            ga.create_endpoint_group(
                ListenerArn=listener["ListenerArn"], EndpointGroupRegion=region, TrafficDialPercentage=dial,
                EndpointConfigurations=[{"EndpointId": f"arn:aws:elasticloadbalancing:{region}:{self.ACCOUNT}:"
                                                       f"loadbalancer/app/web/{run}", "Weight": 128}],
                IdempotencyToken=f"g-{region}-{run}")["EndpointGroup"]["EndpointGroupArn"]
            for region, dial in ((self.PRIMARY, 100.0), (self.DR, 0.0))
        ]
        self.table = f"bench-lock-{run}"
        self.ddb.create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "lock", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "lock", "KeyType": "HASH"}])
        self.template = json.loads((ROOT / "events" / "detect-alarm-lambda-action.json").read_text())

    def env(self, base):
        return {**base,
                "PILOTLIGHT_ALARM_REGION": self.DR, "PILOTLIGHT_ALARM_NAMES": self.alarm, "PILOTLIGHT_QUORUM": "1",
                "PILOTLIGHT_COOLDOWN_SECONDS": "0", "PILOTLIGHT_STATE_MACHINE_ARN": self.state_machine,
                "PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN": self.groups[0],
                "PILOTLIGHT_DR_ENDPOINT_GROUP_ARN": self.groups[1], "PILOTLIGHT_LOCK_TABLE": self.table}

    def event(self):
        """Re-arms the topology and returns the alarm's Lambda-action event for its new transition."""
        # The previous execution ends (the emulator keeps even a Pass execution RUNNING for a while) and releases
        # the lock, as a finished flow does.
        for ex in self.sfn.list_executions(stateMachineArn=self.state_machine, statusFilter="RUNNING")["executions"]:
            self.sfn.stop_execution(executionArn=ex["executionArn"])
        self.ddb.delete_item(TableName=self.table, Key={"lock": {"S": "flow"}})
        # The emulator keeps alarm transition times in whole seconds, and the execution name is derived from the
        # transition: a new second for a new name.
        time.sleep(1 - time.time() % 1 + 0.01)
        for state in ("OK", "ALARM"):
            self.cw.set_alarm_state(AlarmName=self.alarm, StateValue=state, StateReason="pilotlight bench")
        alarm = self.cw.describe_alarms(AlarmNames=[self.alarm])["MetricAlarms"][0]
        at = alarm["StateUpdatedTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        e = json.loads(json.dumps(self.template))
        # The plan's account (the emulator's own ARNs carry 000000000000; CloudWatch's would carry this one).
        arn = f"arn:aws:cloudwatch:{self.DR}:{self.ACCOUNT}:alarm:{self.alarm}"
        e.update(alarmArn=arn, accountId=self.ACCOUNT, region=self.DR, time=at)
        e["alarmData"]["alarmName"] = self.alarm
        e["alarmData"]["state"]["timestamp"] = at
        return json.dumps(e).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed function's held long poll resets its connection: expected, not news


def serve(api):
    """A Runtime API for `api` on a free loopback port: the server and its host:port."""
    server = Server(("127.0.0.1", 0), handler_for(api))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def alarm_path(api, binary, env, starts, invocations):
    """Cold: `starts` processes, each handed one alarm at its first /invocation/next (init + event handed ->
    response, and event handed -> response alone); warm: one process, `invocations` alarms (the first left out)."""
    path = AlarmPath()
    env = path.env(env)
    cold, first, outcomes = [], [], {}
    for _ in range(starts):
        # A Runtime API of its own per start: the previous process's next long poll, in flight when it was
        # killed, must not take this start's event.
        own = Api()
        own.reset([path.event])
        server, addr = serve(own)
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], env={**env, "AWS_LAMBDA_RUNTIME_API": addr}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            ok = own.wait(lambda: "req-0" in own.answered, 30)
        finally:
            stop(proc)
            server.shutdown()
            server.server_close()
        api.last_error = own.last_error
        if not ok:
            raise SystemExit(f"{binary}: the alarm was not answered within 30 s ({api.last_error or 'no error seen'});"
                             " run it by hand to see why")
        at, outcome = own.answered["req-0"]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        # Init plus the first invocation: the time the event spent being made (re-arming, above) left out.
        first.append((at - own.handed["req-0"]) * 1000)
        cold.append((own.next_calls[0] - t0) * 1000 + first[-1])
    lat, _, warm_outcomes = warm(api, binary, env, path.event, invocations)
    for o, n in warm_outcomes.items():
        outcomes[o] = outcomes.get(o, 0) + n
    return sorted(cold), sorted(first), lat, outcomes


def pct(sorted_values, p):
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--invocations", type=int, default=100)
    ap.add_argument("--alarm-starts", type=int, default=20, help="cold starts of detect on the alarm path")
    ap.add_argument("--alarm-invocations", type=int, default=30, help="warm alarms through one detect process")
    ap.add_argument("functions", nargs="*", default=list(FUNCTIONS))
    args = ap.parse_args()

    api = Api()
    server, addr = serve(api)
    emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))
    if not emulated:
        raise SystemExit("no AWS_ENDPOINT_URL: start the emulators (scripts/emulators.sh) and eval their env first")

    print(
        f"{'function':<14} {'init p50':>9} {'init max':>9} {'init cpu':>9} {'VmHWM':>9} {'warm p50':>9} "
        f"{'warm p99':>9}  (ms, MiB; {args.starts} starts, {args.invocations} invocations; init cpu: p50 of the "
        "CPU time of init)  outcome of the warm invocations"
    )
    for name in args.functions:
        binary = str(Path(args.bin_dir) / name)
        env = function_env(name, addr)
        init, init_cpu = cold_starts(api, binary, env, args.starts)
        init = sorted(init)
        event = (ROOT / "events" / FUNCTIONS[name][1]).read_bytes()
        lat, hwm, outcomes = warm(api, binary, env, event, args.invocations)
        steady = lat or [0.0]
        what = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        where = FUNCTIONS[name][1]
        print(
            f"{name:<14} {statistics.median(init):>9.1f} {init[-1]:>9.1f} {statistics.median(init_cpu):>9.1f} "
            f"{hwm / 1024:>9.1f} "
            f"{pct(steady, 50):>9.1f} {pct(steady, 99):>9.1f}  {where}: {what}"
        )
    if "detect" in args.functions:
        cold, first, lat, outcomes = alarm_path(
            api, str(Path(args.bin_dir) / "detect"), function_env("detect", addr), args.alarm_starts,
            args.alarm_invocations)
        what = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        print()
        print(f"detect, alarm -> StartExecution accepted -> response (ms): cold (init + first invocation) p50 "
              f"{statistics.median(cold):.1f} max {cold[-1]:.1f}; first invocation (event handed -> response) p50 "
              f"{statistics.median(first):.1f} max {first[-1]:.1f}  ({args.alarm_starts} starts); warm p50 "
              f"{pct(lat, 50):.1f} p99 {pct(lat, 99):.1f} ({args.alarm_invocations} alarms, the first left out)")
        print(f"  outcomes: {what}")
        if any(not o.endswith(" started") for o in outcomes):
            raise SystemExit("detect: an alarm did not start an execution (outcomes above): the figures are not "
                             f"of the alarm path; the last answer that was not a start: {api.last_error}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
