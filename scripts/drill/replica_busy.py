"""--replica-busy (issue #10, "wait, don't fail"): the DR replica is `backing-up` when the alarm's failover starts.

No emulator moves an instance through statuses, so the functions reach RDS through tests/support/faultproxy.py
(AWS_ENDPOINT_URL_RDS only; everything else as in the default drill) with one `db-status` rule: the first
BUSY_READS DescribeDBInstances answers that list the replica show it `backing-up`, and meanwhile every mutating RDS
call naming it is refused InvalidDBInstanceState, as AWS does. promote-db must take that for "not yet": the
preflight passes with a "will wait" warning, `start` and the state machine's status polls report "waiting: ...
backing-up" and change nothing, and once the status clears one `status` call promotes, exactly once. The end
state is the default drill's (verify.verify), plus the checks here, read from the execution history and the
proxy's request log."""

import json

from .console import kv, phase, say
from .follow import history

BUSY_STATUS = "backing-up"
# DescribeDBInstances answers shown busy: the preflight's read, start's, then status polls (1 s apart in the
# drill's plan) until the window is used up; the others read nothing of the DR replica before the promotion.
BUSY_READS = 5


def arm(d):
    replica = d.seeded["db"]["dr"]
    phase(f"replica-busy: {replica} is {BUSY_STATUS} for its first {BUSY_READS} reads (fault proxy db-status, "
          "the functions' RDS endpoint)")
    rule = {"fault": "db-status", "db_instance": replica, "region": d.dr, "status": BUSY_STATUS,
            "times": BUSY_READS}
    d.faults.admin("POST", "rules", {"rules": [rule]})
    kv("rule", f"DescribeDBInstances shows {replica} {BUSY_STATUS} {BUSY_READS} times; mutating calls naming it "
       "answer InvalidDBInstanceState meanwhile")


def promote_db_reports(d, execution_arn):
    """promote-db's step reports in the order the execution got them."""
    arn = d.seeded["functions"]["promote-db"]
    out = []
    for e in history(d.sfn(), execution_arn):
        det = e.get("taskSucceededEventDetails") or {}
        if e["type"] != "TaskSucceeded" or det.get("resource") != arn:
            continue
        try:
            report = json.loads(det.get("output") or "null")
        except ValueError:
            continue
        if isinstance(report, dict):
            out.append(report)
    return out


def verify(d, execution, check):
    phase("verify --replica-busy (the failover waited for the backup, then promoted once)")
    replica = d.seeded["db"]["dr"]
    rule = d.faults.rules()[0]
    check(rule["applied"] == BUSY_READS,
          f"the replica was shown {BUSY_STATUS} in {rule['applied']} DescribeDBInstances answers (window of "
          f"{BUSY_READS} used up)")
    reports = promote_db_reports(d, execution["executionArn"])
    for r in reports:
        say(f"      promote-db {r.get('action')}: done={str(r.get('done')).lower()}  {(r.get('message') or '')[:140]}")
    preflight = next((r for r in reports if r.get("action") == "preflight"), {})
    replica_check = next((c for c in (preflight.get("saw") or {}).get("checks") or [] if c.get("check") == "db.replica"),
                         {})
    check(replica_check.get("passed") is True and replica_check.get("warning") is True
          and (replica_check.get("message") or "").startswith("will wait: waiting: "),
          f"the preflight passed the busy replica with a warning: {replica_check.get('message', '')[:120]!r}")
    waiting = f"waiting: {replica} in {d.dr} is {BUSY_STATUS}"
    waits = [r for r in reports if r.get("done") is False and (r.get("message") or "").startswith(waiting)]
    polls = [r for r in waits if r.get("action") == "status"]
    check(len(polls) >= 1 and all(r.get("changes") == [] for r in waits),
          f"the state machine's poll waited: {len(polls)} status poll(s) (and {len(waits) - len(polls)} start) "
          f"reported {waiting!r}, each changing nothing")
    finished = [r for r in reports if r.get("action") in ("start", "status") and r.get("done") is True]
    check(len(finished) == 1 and finished[0].get("action") == "status",
          f"then one status call finished the promotion ({[r.get('action') for r in finished]})")
    calls = [r for r in d.faults.requests() if r["service"] == "rds"]
    promotes = [r for r in calls if r["operation"] == "PromoteReadReplica"]
    refused = [r for r in calls if r["fault"] == "db-status" and r["mutating"] and r["status"] != 200]
    kv("RDS calls through the proxy", ", ".join(f"{op} {n}" for op, n in sorted(
        {c["operation"]: sum(1 for x in calls if x["operation"] == c["operation"]) for c in calls}.items())))
    check(len(promotes) == 1 and promotes[0]["status"] == 200 and promotes[0]["fault"] is None,
          f"exactly one PromoteReadReplica, sent once the status cleared ({[(p['status'], p['fault']) for p in promotes]})")
    check(not refused, f"nothing was tried on the busy replica ({len(refused)} mutating calls refused "
          f"InvalidDBInstanceState: {[r['operation'] for r in refused]})")
