"""--dns-down and --graceful-rollback: the two failure paths issue #10 made non-fatal or undoing (docs/drill.md).

--dns-down: the functions reach moto through tests/support/faultproxy.py, which answers Route 53's writes
(UpdateHealthCheck, ChangeResourceRecordSets) with AccessDenied (HTTP 403, not retried): the failover moves the
traffic, update-dns fails, and the execution must SUCCEED degraded (report outcome `degraded`, the warning in the
report and its notification). Then the faults go off and the drill re-runs update-dns as the warning says (direct
invoke, start then status): DNS must answer DR.

--graceful-rollback: a graceful failover whose catch-up never sees a lag of 0 (the drill does not play the
replica catching up) and PILOTLIGHT_MAX_POLLS=3: the catch-up gives up (PollLimitExceeded), the state machine
restores the source dial (shift-traffic restore) and notifies; the execution FAILED with dials 100/0, nothing
promoted, and the notice says "rolled back: source dial restored to 100"."""

import json

from .console import kv, phase, say
from .operators import notifications
from .report import find_report
from .snapshot import snapshot
from .trigger import invoke
from .verify import Checks, flow_lock_released

DNS_WRITES = [("route53", "UpdateHealthCheck"), ("route53", "ChangeResourceRecordSets")]


def arm_dns_down(d):
    phase("dns-down: Route 53 writes answer AccessDenied (fault proxy in front of moto)")
    rules = [{"service": s, "operation": op, "fault": "deny",
              "message": "pilotlight drill: Route 53 control plane unavailable to this role"} for s, op in DNS_WRITES]
    d.faults.admin("POST", "rules", {"rules": rules})
    for r in rules:
        kv("rule", f"{r['service']} {r['operation']}: AccessDenied (HTTP 403) on every call")


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
    check(any(w.startswith("DNS degraded: ") and "AccessDenied" in w and "re-run update-dns" in w for w in warnings),
          f"the report warns: {warnings[0][:200] if warnings else 'no warning'}")
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
