"""--throttle: AWS throttling on the steps' APIs, injected by tests/support/faultproxy.py in front of moto and gapfill.

The functions reach moto and gapfill through one fault proxy (deploy.endpoint_environment; the proxy routes
globalaccelerator and backup to gapfill); the drill's own calls go straight to the emulators. `within` throttles the
first 2 calls of every step's key operation: the execution must succeed, and the proxy's log says who retried (the
SDK: the same amz-sdk-invocation-id, attempt=2, 3; or the state machine's Retry: a new Lambda invocation after a
TaskFailed). A step name throttles that step's operation on every call: the execution cannot get past it. The
state machine's Retry (MaxAttempts 8, 2 s doubling, at most 60 s: ~3 min on ministack, which sleeps the full
interval) would fail it eventually; the drill stops it instead once the state machine has retried twice, as an
operator would, and checks the ABORTED notice FailoverExecutionEndedRule sends to the operators' topic."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

from .console import DrillError, clock, kv, phase, say
from .follow import history
from .operators import read_queue
from .verify import Checks

# Each step's key operations (SigV4 service, operation), the ones that change or confirm the topology.
KEY_OPERATIONS = {
    "promote-db": [("rds", "PromoteReadReplica"), ("rds", "DescribeDBInstances")],
    "scale-compute": [("autoscaling", "UpdateAutoScalingGroup")],
    "shift-traffic": [("globalaccelerator", "UpdateEndpointGroup")],
    "update-dns": [("route53", "UpdateHealthCheck"), ("route53", "ChangeResourceRecordSets")],
}
# Throttled calls per operation in `within`: 2, which the SDK's 3 attempts (DR profile) absorb; and 3 for one
# operation, which exhausts them: its step fails with pilotlight.Transient and the state machine's Retry runs it
# again (2 s later), so both retry layers are exercised.
WITHIN_TIMES = 2
WITHIN_BEYOND_SDK = ("globalaccelerator", "UpdateEndpointGroup", "shift-traffic")
STOP_AFTER_FAILURES = 3  # `<step>`: stop once the step failed this often (the state machine retried twice)
# `<step>` excludes promote-db: it tags the replica (its promotion record) before PromoteReadReplica, and on AWS a
# retry still sees a replica (its "read replication" status info) and promotes again; moto reports no status info,
# so the retry takes the record for a finished promotion ("already the writer") and the execution succeeds with
# PromoteReadReplica never answered (docs/emulators.md). Nothing to drill there on moto.
BEYOND_STEPS = ("scale-compute", "shift-traffic", "update-dns")
# What the throttled step leaves unchanged (snapshot keys), for `<step>`.
UNCHANGED = {"scale-compute": "dr", "shift-traffic": "dials", "update-dns": "dns"}


class FaultProxy:
    """tests/support/faultproxy.py as a child process on a free 127.0.0.1 port, stopped with the drill."""

    def __init__(self, d):
        script = os.path.join(d.contract.root, "tests", "support", "faultproxy.py")
        run = os.environ.get("PILOTLIGHT_DRILL_RUN") or os.path.join(d.contract.root, ".tools", "run")
        self.log_path = os.path.join(run, "drill-faultproxy.log") if os.path.isdir(run) else os.devnull
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, script, "--port", "0", "--upstream", d.args.moto_url,
             "--upstream-for", f"globalaccelerator={d.args.gapfill_url}", "--upstream-for", f"backup={d.args.gapfill_url}"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("faultproxy listening on "):
            self.stop()
            raise DrillError(f"faultproxy did not start ({line!r}; see {self.log_path})")
        self.url = line.rsplit(" ", 1)[-1]
        kv("fault proxy", f"{self.url} -> moto {d.args.moto_url}, globalaccelerator/backup -> gapfill "
           f"(pid {self.proc.pid}, log {os.path.relpath(self.log_path, d.contract.root)})")

    def admin(self, method, path, body=None):
        req = urllib.request.Request(self.url + "/_faultproxy/" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def requests(self):
        return self.admin("GET", "requests")["requests"]

    def rules(self):
        return self.admin("GET", "rules")["rules"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def arm(d):
    """Sets the rules for this run (after the deployment: nothing before the trigger is throttled)."""
    mode = d.args.throttle
    phase(f"throttle ({mode}): rules on the fault proxy in front of moto and gapfill")
    if mode == "within":
        rules = [{"service": s, "operation": op, "fault": "throttle",
                  "times": WITHIN_TIMES + ((s, op) == WITHIN_BEYOND_SDK[:2])}
                 for ops in KEY_OPERATIONS.values() for s, op in ops]
    else:
        ops = KEY_OPERATIONS[mode]
        rules = [{"service": s, "operation": op, "fault": "throttle"} for s, op in ops]
        d.stopped = None
        if not d.args.until_failed:
            d.hooks.append(stop_when_retried)
    d.faults.admin("POST", "rules", {"rules": rules})
    for r in rules:
        kv("rule", f"{r['service']} {r['operation']}: throttle "
           + (f"the first {r['times']} calls" if "times" in r else "every call"))


def step_failures(d, events, step):
    arn = d.seeded["functions"][step]
    return [e for e in events if e["type"] == "TaskFailed" and e["taskFailedEventDetails"].get("resource") == arn]


def stop_when_retried(d, execution_arn, _new_events):
    """follow() hook for `<step>`: once the step failed STOP_AFTER_FAILURES times, StopExecution (as an operator
    would rather than wait ~3 min for the retries to run out)."""
    if d.stopped:
        return
    sfn = d.sfn()
    failures = step_failures(d, history(sfn, execution_arn), d.args.throttle)
    if len(failures) < STOP_AFTER_FAILURES:
        return
    cause = (f"pilotlight drill {d.run_id}: {d.args.throttle} throttled on every call; stopped after "
             f"{len(failures)} attempts (the state machine would retry up to 8 times)")
    sfn.stop_execution(executionArn=execution_arn, error="pilotlight.DrillStopped", cause=cause)
    d.stopped = {"failures": failures, "at": time.time()}
    say(f"  {clock()}  drill: StopExecution after {len(failures)} failed {d.args.throttle} attempts")


def calls_by_operation(requests):
    """{(service, operation): [request, ...]} in order."""
    out = defaultdict(list)
    for r in requests:
        out[(r["service"], r["operation"])].append(r)
    return out


def describe_calls(calls):
    """One word per request: `T` throttled, `ok`, with the SDK attempt, grouped by SDK invocation (one operation
    call of the function, its attempts inside)."""
    groups, order = defaultdict(list), []
    for r in calls:
        key = r.get("sdk_invocation") or id(r)
        if key not in groups:
            order.append(key)
        m = re.search(r"attempt=(\d+); *max=(\d+)", r.get("sdk_request") or "")
        groups[key].append(f"{'T' if r['fault'] == 'throttle' else r['status']}@{m.group(1) + '/' + m.group(2) if m else '?'}")
    return [groups[k] for k in order]


def verify_within(d, execution, check):
    """`within`: every throttled call was retried, and who retried it."""
    rules = d.faults.rules()
    by_op = calls_by_operation(d.faults.requests())
    events = history(d.sfn(), execution["executionArn"])
    kv("throttled calls", "per operation: each [...] is one SDK operation call, T = throttled, @attempt/max")
    sdk, machine = 0, 0
    for rule in rules:
        calls = by_op.get((rule["service"], rule["operation"]), [])
        if not calls:
            kv(f"  {rule['operation']}", "not called in this run (e.g. the other DNS mode's operation)")
            continue
        groups = describe_calls(calls)
        throttled_groups = [g for g in groups if any(w.startswith("T") for w in g)]
        retried_by_sdk = [g for g in throttled_groups if not g[-1].startswith("T")]
        sdk += sum(len(g) - 1 for g in retried_by_sdk)
        machine += len(throttled_groups) - len(retried_by_sdk)
        kv(f"  {rule['operation']}", " ".join(f"[{' '.join(g)}]" for g in groups))
        check(rule["applied"] == rule["times"] and calls[-1]["status"] == 200,
              f"{rule['operation']}: {rule['applied']} throttled, then answered (last call HTTP {calls[-1]['status']})")
    retries = {step: len(step_failures(d, events, step)) for step in KEY_OPERATIONS}
    kv("state machine Retry", ", ".join(f"{s} {n} TaskFailed" for s, n in retries.items()))
    kv("who retried", f"the SDK: {sdk} retried attempts inside one operation call; the state machine: "
       f"{sum(retries.values())} step re-invocations after a TaskFailed ({machine} operation calls gave up "
       "inside the SDK)")
    s, op, step = WITHIN_BEYOND_SDK
    check(sdk > 0 and retries[step] == 1 and sum(retries.values()) == 1,
          f"retried by the SDK within each call, and {step} ({op} throttled {WITHIN_TIMES + 1} times: the SDK gave "
          f"up) once more by the state machine's Retry ({retries[step]} TaskFailed); no other step failed")


def abort_notice(d, execution_arn, wait_seconds=10.0):
    """The FailoverExecutionEndedRule notice for this execution on the operators' queue, if it arrives."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for subject, body in d.inbox:
            text = body if isinstance(body, str) else json.dumps(body)
            if execution_arn in text and "ABORTED" in text:
                return subject, text
        if time.monotonic() > deadline:
            return None
        read_queue(d)


def status_notice(d, execution_arn, status, wait_seconds=10.0):
    """The FailoverExecutionEndedRule notice for this execution and status on the operators' queue, if it arrives."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for subject, body in d.inbox:
            text = body if isinstance(body, str) else json.dumps(body)
            if execution_arn in text and status in text and "ended" in text:
                return subject, text
        if time.monotonic() > deadline:
            return None
        read_queue(d)


def verify_exhausted(d, execution, check):
    """`<step> --until-failed`: the state machine's retries ran out; the execution FAILED through NotifyFailure, whose
    notice names the step, released the flow lock, and the status rule told the operators too."""
    step, arn = d.args.throttle, execution["executionArn"]
    check(execution["status"] == "FAILED", f"execution {execution['status']} (expected FAILED: the retry budget ran out)")
    failures = step_failures(d, history(d.sfn(), arn), step)
    check(len(failures) >= 8, f"{step} failed {len(failures)} times: the generated Retry's 8 attempts, then the Catch")
    # The status rule's notice comes last (after NotifyFailure published): read the queue until it is there.
    notice = status_notice(d, arn, "FAILED", wait_seconds=20.0)
    named = [(s, b) for s, b in d.inbox if s and "FAILED" in s and step in s]
    check(bool(named), f"the failure notification names the step: "
          f"{named[0][0] if named else [s for s, _ in d.inbox]}")
    body = next((b for _, b in named if isinstance(b, dict)), {})
    check(body.get("failed_at") == step and (body.get("report") or {}).get("outcome") == "failed",
          f"its body carries the failed phase and the report (failed_at={body.get('failed_at')!r}, "
          f"report outcome {(body.get('report') or {}).get('outcome')!r})")
    check(notice is not None, "FailoverExecutionEndedRule: the FAILED notice reached the operators' queue")
    table = d.plan.get("lock_table")
    item = d.client("dynamodb", d.dr, "ministack").get_item(
        TableName=table, Key={"lock": {"S": "flow"}}, ConsistentRead=True).get("Item")
    check(item is None, f"flow lock {table} released on the failure path ({'held by ' + item['holder']['S'] if item else 'no item'})")


def verify_beyond(d, before, after, execution):
    step = d.args.throttle
    phase(f"verify (throttle {step}: beyond the retry budget)")
    checks = Checks()
    check = checks.check
    arn = execution["executionArn"]
    if d.args.until_failed:
        verify_exhausted(d, execution, check)
        key = UNCHANGED[step]
        check(before[key] == after[key] if key != "dr" else True, f"{step} changed nothing ({key})")
        return checks.passed()
    check(d.stopped is not None, f"the drill stopped the execution after {STOP_AFTER_FAILURES} failed {step} attempts")
    check(execution["status"] == "ABORTED", f"execution {execution['status']} (expected ABORTED)")
    failures = step_failures(d, history(d.sfn(), arn), step)
    for f in failures:
        det = f["taskFailedEventDetails"]
        say(f"      {f['timestamp'].strftime('%H:%M:%S.%f')[:-3]}  {step} failed: {det.get('error')}  "
            f"{(det.get('cause') or '')[:200]}")
    ops = [op for _, op in KEY_OPERATIONS[step]]
    check(failures and all(f["taskFailedEventDetails"].get("error") == "pilotlight.Transient" for f in failures)
          and any(any(op in (f["taskFailedEventDetails"].get("cause") or "") for op in ops) for f in failures),
          f"every {step} failure is pilotlight.Transient naming {'/'.join(ops)} (the state machine retries it)")
    by_op = calls_by_operation(d.faults.requests())
    for s, op in KEY_OPERATIONS[step]:
        calls = by_op.get((s, op), [])
        if not calls:
            continue
        groups = describe_calls(calls)
        kv(f"  {op}", " ".join(f"[{' '.join(g)}]" for g in groups))
        check(all(w.startswith("T") for g in groups for w in g) and len(groups) >= STOP_AFTER_FAILURES
              and all(len(g) > 1 for g in groups),
              f"{op}: all {len(calls)} calls throttled, in {len(groups)} operation calls (one per step attempt), "
              "each retried by the SDK before it gave up")
    key = UNCHANGED[step]
    b, a = before[key], after[key]
    if key == "dr":  # scale-compute sets the AMI parameter before it resizes: compare the capacity
        b, a = {k: b[k] for k in ("min", "desired", "max")}, {k: a[k] for k in ("min", "desired", "max")}
    check(b == a, f"{step} changed nothing: {key} {json.dumps(a, default=str)[:160]}")
    notice = abort_notice(d, arn)
    check(notice is not None, "FailoverExecutionEndedRule: the ABORTED notice for this execution reached the operators' "
          f"queue ({'subject ' + repr(notice[0]) + ': ' + notice[1][:200] if notice else 'none within 10 s'})")
    for s, body in d.inbox:
        say(f"      - {s or '(no subject)'}")
    table = d.plan.get("lock_table")
    item = d.client("dynamodb", d.dr, "ministack").get_item(
        TableName=table, Key={"lock": {"S": "flow"}}, ConsistentRead=True).get("Item")
    holder = item["holder"]["S"] if item else None
    check(holder == execution["name"], f"flow lock left held by the aborted execution ({holder}): ABORTED skips "
          "ReleaseLock; the next detect takes a lock of an execution that is no longer RUNNING over")
    return checks.passed()
