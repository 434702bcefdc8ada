"""--dns-down and --graceful-rollback: the two failure paths issue #10 made non-fatal or undoing (docs/drill.md).

--dns-down: the functions reach moto through tests/support/faultproxy.py, which answers Route 53's writes
(UpdateHealthCheck, ChangeResourceRecordSets) with AccessDenied (HTTP 403, not retried): the failover moves the
traffic, update-dns fails, and the execution must SUCCEED degraded (report outcome `degraded`, the warning in the
report and its notification). Then the faults go off and the drill re-runs update-dns as the warning says (direct
invoke, start then status): DNS must answer DR.

--dns-down blackhole: the same writes are read and never answered. Each update-dns attempt then ends at the DR
operation timeout (the SDK's bound on the whole call) as pilotlight.Transient, which the state machine retries
(MaxAttempts 8, 2 s doubling up to 60 s): 9 attempts and 242 s of sleeps before the Catch degrades DNS, 333 s on
ministack with the default 10 s timeout (measured; ministack sleeps every interval in full). Nothing in the product changes
for the drill: the plan sets a 2 s DR operation timeout (a plan value, 500 ms at the least), and once update-dns
runs the drill scales ministack's Step Functions sleeps by RETRY_SLEEP_SCALE (its admin endpoint,
`stepfunctions._SFN_WAIT_SCALE`), which models the short end of AWS's FULL jitter: AWS sleeps a random time
between 0 and each interval. The scale is set back to 1 when the drill ends, pass or fail.

--graceful-rollback: a graceful failover whose catch-up never sees a lag of 0 (the drill does not play the
replica catching up) and PILOTLIGHT_MAX_POLLS=3: the catch-up gives up (PollLimitExceeded), the state machine
restores the source dial (shift-traffic restore) and notifies; the execution FAILED with dials 100/0, nothing
promoted, and the notice says "rolled back: source dial restored to 100"."""

import json
import urllib.request

from .console import clock, kv, phase, say
from .follow import history
from .operators import notifications
from .report import find_report
from .snapshot import snapshot
from .trigger import invoke
from .verify import Checks, flow_lock_released

DNS_WRITES = [("route53", "UpdateHealthCheck"), ("route53", "ChangeResourceRecordSets")]
DNS_BLACKHOLE_TIMEOUT_MS = 2000  # --dns-down blackhole: the plan's DR operation timeout (default 10000)
RETRY_SLEEP_SCALE = 0.01  # --dns-down blackhole: ministack's Retry (and Wait) sleeps, once update-dns runs
# update-dns start's attempts: the first, then the generated Retry's MaxAttempts 8 (statemachine/failover.asl.json)
RETRY_ATTEMPTS = 1 + 8


def arm_dns_down(d):
    if d.args.dns_down == "blackhole":
        phase("dns-down blackhole: Route 53 writes never answered (fault proxy in front of moto)")
        rules = [{"service": s, "operation": op, "fault": "blackhole"} for s, op in DNS_WRITES]
        d.hooks.append(shorten_retry_sleeps)
        d.retry_sleeps_scaled = False
    else:
        phase("dns-down: Route 53 writes answer AccessDenied (fault proxy in front of moto)")
        rules = [{"service": s, "operation": op, "fault": "deny",
                  "message": "pilotlight drill: Route 53 control plane unavailable to this role"}
                 for s, op in DNS_WRITES]
    d.faults.admin("POST", "rules", {"rules": rules})
    for r in rules:
        kv("rule", f"{r['service']} {r['operation']}: " + ("read, never answered" if r["fault"] == "blackhole"
                                                           else "AccessDenied (HTTP 403)") + " on every call")


def ministack_sleep_scale(d, scale):
    req = urllib.request.Request(d.args.ministack_url + "/_ministack/config", method="POST",
                                 data=json.dumps({"stepfunctions._SFN_WAIT_SCALE": scale}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def shorten_retry_sleeps(d, _execution_arn, new_events):
    """follow() hook: once the update-dns phase starts, ministack's sleeps are scaled down (see the module doc)."""
    if d.retry_sleeps_scaled:
        return
    if any(e["type"].endswith("StateEntered") and "update-dns" in e["stateEnteredEventDetails"]["name"]
           for e in new_events):
        ministack_sleep_scale(d, RETRY_SLEEP_SCALE)
        d.retry_sleeps_scaled = True
        say(f"  {clock()}  drill: update-dns runs -> ministack's Step Functions sleeps scaled by {RETRY_SLEEP_SCALE} "
            "(AWS's FULL jitter may sleep as little)")


def restore_retry_sleeps(d):
    if getattr(d, "retry_sleeps_scaled", False):
        ministack_sleep_scale(d, 1.0)
        d.retry_sleeps_scaled = False
        kv("ministack", "Step Functions sleeps back to scale 1")


def report_of(execution):
    try:
        return find_report(json.loads(execution.get("output") or "{}")) or {}
    except ValueError:
        return {}


def verify_dns_down(d, before, after, execution, inbox):
    phase("verify (dns-down: DNS degraded, not failed)")
    checks = Checks()
    check = checks.check
    check(execution["status"] == "SUCCEEDED", f"execution {execution['status']} (expected SUCCEEDED, degraded)")
    check(after["dials"] == {"primary": 0, "dr": 100},
          f"traffic in DR: GA dials 0/100 (are {after['dials']['primary']:g}/{after['dials']['dr']:g})")
    check(after["db"]["writer"], f"DR DB {after['db']['instance']} promoted")
    check(after["dns"] == before["dns"], f"DNS unchanged by the failover (answers {after['dns']['answer']})")
    report = report_of(execution)
    warnings = report.get("warnings") or []
    check(report.get("outcome") == "degraded", f"report outcome {report.get('outcome')!r} (expected 'degraded')")
    cause = "timed out" if d.args.dns_down == "blackhole" else "AccessDenied"
    check(any(w.startswith("DNS degraded: ") and cause in w and "re-run update-dns" in w for w in warnings),
          f"the report warns: {warnings[0][:200] if warnings else 'no warning'}")
    if d.args.dns_down == "blackhole":
        verify_blackhole(d, execution, check)
    subjects = [s for s, _ in inbox]
    reports = [(s, b) for s, b in inbox if "report" in s.lower()]
    check(any("DEGRADED (dns)" in s for s, _ in reports), f"the report notification says DEGRADED: {subjects}")
    body = next((b for _, b in reports if isinstance(b, dict)), {})
    check(any("DNS degraded" in w for w in body.get("warnings") or []), "its body carries the DNS warning")
    check(not any(s.startswith("FAILED") or ": FAILED" in s for s in subjects), "no failure notification")
    check(*flow_lock_released(d))

    phase("re-run update-dns with the faults off (as the warning says: direct invoke, start then status)")
    d.faults.admin("DELETE", "rules")
    fn = d.seeded["functions"]["update-dns"]
    out = invoke(d, fn, {"action": "start", "direction": "failover"})
    kv("update-dns start", f"done={out.get('done')}  {out.get('message', '')[:200]}")
    status = out
    for _ in range(10):
        if status.get("done"):
            break
        status = invoke(d, fn, {"action": "status", "direction": "failover",
                                "change_id": (out.get("saw") or {}).get("change_id")})
        kv("update-dns status", f"done={status.get('done')}  {status.get('message', '')[:200]}")
    check(status.get("done") is True, "update-dns re-run reports done")
    again = snapshot(d)
    check(again["dns"]["answer"] == d.seeded["dns"]["dr_value"],
          f"DNS {d.seeded['dns']['record']} answers the DR endpoint after the re-run ({again['dns']['answer']})")
    return checks.passed()


def verify_blackhole(d, execution, check):
    """Every update-dns attempt timed out within the plan's DR operation timeout, and the Retry ran out."""
    arn = d.seeded["functions"]["update-dns"]
    events = history(d.sfn(), execution["executionArn"])
    failed = [e for e in events if e["type"] == "TaskFailed"
              and e["taskFailedEventDetails"].get("resource") == arn]
    timed_out = [e for e in failed if e["taskFailedEventDetails"].get("error") == "pilotlight.Transient"
                 and "timed out" in (e["taskFailedEventDetails"].get("cause") or "")]
    check(len(failed) == RETRY_ATTEMPTS and len(timed_out) == len(failed),
          f"update-dns start failed {len(failed)} times, {len(timed_out)} of them pilotlight.Transient 'timed out' "
          f"(the first attempt and the Retry's {RETRY_ATTEMPTS - 1}), then the Catch degraded DNS")
    if failed:
        entered = next(e["timestamp"] for e in events if e["type"].endswith("StateEntered")
                       and "update-dns" in e["stateEnteredEventDetails"]["name"])
        kv("update-dns phase", f"{(failed[-1]['timestamp'] - entered).total_seconds():.1f} s from its start to the "
           f"last timed-out attempt")
    held = [r for r in d.faults.requests() if (r["service"], r["operation"]) in DNS_WRITES]
    limit = DNS_BLACKHOLE_TIMEOUT_MS + 1000
    durations = [r.get("duration_ms") for r in held]
    check(len(held) == RETRY_ATTEMPTS and all(r["status"] == "client-gave-up" and r.get("duration_ms") is not None
                                               and r["duration_ms"] <= limit for r in held),
          f"{len(held)} Route 53 writes held unanswered, each given up by the SDK within the plan's "
          f"{DNS_BLACKHOLE_TIMEOUT_MS} ms operation timeout (+1 s): {durations} ms")


def verify_rollback(d, before, after, execution, inbox):
    phase("verify (graceful-rollback: the catch-up never reaches 0, the source dial is restored)")
    checks = Checks()
    check = checks.check
    check(execution["status"] == "FAILED", f"execution {execution['status']} (expected FAILED)")
    check(after["dials"] == before["dials"] == {"primary": 100, "dr": 0},
          f"source dial restored: GA dials 100/0 (are {after['dials']['primary']:g}/{after['dials']['dr']:g})")
    check(before["db"] == after["db"] and not after["db"]["writer"],
          f"nothing promoted: DR DB {after['db']['instance']} still a read replica")
    check(after["dns"] == before["dns"], "DNS unchanged")
    failures = [(s, b) for s, b in inbox if "FAILED" in s]
    subject, body = next(((s, b) for s, b in failures if isinstance(b, dict)), (None, {}))
    check(subject is not None and "catchup, rolled back" in subject, f"the failure notice says so: {subject!r}")
    rollback = body.get("rollback") or {}
    check((rollback.get("message") or "").startswith("rolled back: source dial restored to 100"),
          f"its body: {rollback.get('message')!r}")
    check(body.get("failed_at") == "catchup" and "PollLimitExceeded" in json.dumps(body.get("error")),
          f"failed_at {body.get('failed_at')!r}, error {(body.get('error') or {}).get('Error')!r}")
    dials = [(c.get("from"), c.get("to")) for c in (body.get("report") or {}).get("changes") or []
             if c.get("field") == "TrafficDialPercentage"]
    check(dials == [(100, 0), (0, 100)], f"the report shows the drain, then the restore of the source dial: {dials}")
    check(*flow_lock_released(d))
    return checks.passed()


def run_check(d, before, after, execution):
    inbox = notifications(d)
    for s, _ in inbox:
        say(f"      - {s or '(no subject)'}")
    if d.args.dns_down:
        return verify_dns_down(d, before, after, execution, inbox)
    return verify_rollback(d, before, after, execution, inbox)
