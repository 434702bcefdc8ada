"""--readiness: the scheduled readiness function in the deployed stack (the real binary in ministack's Lambda), and
when it tells the operators (docs/contract.md "Readiness").

With the drill topology deployed, the function is invoked with its Scheduled Event (events/readiness-scheduled.json)
as EventBridge would: the first run announces the baseline (one notice), a second run with nothing changed sends
none; then the DR replica's lag goes over the plan's limit (its ReplicaLag datapoint 1000 s, the limit 300 s): the
next run sends exactly one notice, naming db.lag as failing with the lag seen; a further unchanged run sends none.
(No recovery round: CloudWatch in ministack aggregates a minute's datapoints, so a lag put back within the same
minute still reads 1000 s; the recovery notice is unit-tested in steps/readiness.rs.) Every run's verdicts are also checked
against the state item in the lock table (lock = readiness)."""

import json
import os
import time

from .console import DrillError, clock, kv, now_utc, phase, say
from .operators import read_queue
from .trigger import invoke
from .topology import put_replica_lag

BROKEN_CHECK = "db.lag"
BROKEN_LAG_SECONDS = 1000.0  # over plans/drill.env's PILOTLIGHT_MAX_REPLICA_LAG_SECONDS
# SNS -> SQS delivery is asynchronous: how long to wait for a notice that should come, or for one that should not.
DELIVERY_SECONDS = 3.0


def scheduled_event(d):
    with open(os.path.join(d.contract.root, "events", "readiness-scheduled.json")) as f:
        event = json.load(f)
    event.update({"time": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": d.dr})
    return event


def readiness_notices(d, since):
    """Waits DELIVERY_SECONDS, then the readiness notices on the operators' queue from d.inbox[since] on (anything
    else there is printed and counted against the run)."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while time.monotonic() < deadline:
        read_queue(d, wait=1)
    new = d.inbox[since:]
    others = [s for s, body in new if not (isinstance(body, dict) and body.get("kind") == "readiness")]
    for subject in others:
        say(f"  {clock()}  operators' topic (not readiness): {subject}")
    return [(s, body) for s, body in new if isinstance(body, dict) and body.get("kind") == "readiness"], others


def run_once(d, label, lag=2.0):
    since = len(d.inbox)
    # The replica keeps publishing its lag (db.lag wants a datapoint at most 120 s old).
    put_replica_lag(d, lag, now_utc())
    out = invoke(d, d.seeded["functions"]["readiness"], scheduled_event(d))
    failing = [c["id"] for c in out["readiness"]["checks"] if c["verdict"] == "fail"]
    say(f"  {clock()}  readiness ({label}): {out['outcome']}, {out['failures']} failing"
        f"{' (' + ', '.join(failing) + ')' if failing else ''}, {out['warnings']} warning; "
        f"announce: {out['announcement']['announce']}; state {out['state']}")
    notices, others = readiness_notices(d, since)
    for subject, _ in notices:
        say(f"  {clock()}  operators' topic: {subject}")
    return out, notices, others


def stored_verdicts(d):
    table = d.plan_lock_table
    item = d.client("dynamodb", d.dr, "ministack").get_item(
        TableName=table, Key={"lock": {"S": "readiness"}}, ConsistentRead=True).get("Item")
    return json.loads(item["verdicts"]["S"]) if item else None


def run(d):
    phase("readiness: the scheduled function in the deployed stack, and when it tells the operators")
    d.plan_lock_table = d.lambda_client().get_function_configuration(
        FunctionName=d.seeded["functions"]["readiness"])["Environment"]["Variables"]["PILOTLIGHT_LOCK_TABLE"]
    read_queue(d, wait=0)  # whatever the deploy left (none expected)
    failures = []

    def expect(cond, what):
        say(f"  {'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            failures.append(what)

    def verdicts_of(out):
        return {c["id"]: c["verdict"] for c in out["readiness"]["checks"]}

    first, notices, others = run_once(d, "first run")
    expect(len(notices) == 1 and notices[0][1]["announcement"]["announce"] == "first",
           f"the first run announces its baseline: one notice ({len(notices)})")
    expect(stored_verdicts(d) == verdicts_of(first), "its verdicts are stored (lock table item lock=readiness)")
    baseline = verdicts_of(first)
    not_passing = sorted(k for k, v in baseline.items() if v != "pass")
    expect(len(baseline) >= 15 and not not_passing,
           f"on the drill topology all {len(baseline)} checks pass" + (f" (not: {not_passing})" if not_passing else ""))
    if baseline.get(BROKEN_CHECK) == "fail":
        raise DrillError(f"{BROKEN_CHECK} already fails on the drill topology: {first['readiness']}")

    second, notices, _ = run_once(d, "nothing changed")
    expect(verdicts_of(second) == baseline, "the same verdicts")
    expect(not notices, f"nothing changed: no notice ({len(notices)})")

    say(f"  {clock()}  drill: the DR replica's lag goes to {BROKEN_LAG_SECONDS:.0f} s (over the plan's limit)")
    broken, notices, _ = run_once(d, "replica lag over the limit", lag=BROKEN_LAG_SECONDS)
    changed = verdicts_of(broken)
    expect(changed.get(BROKEN_CHECK) == "fail", f"{BROKEN_CHECK} fails")
    diff = sorted(k for k in set(baseline) | set(changed) if baseline.get(k) != changed.get(k))
    expect(diff == [BROKEN_CHECK], f"only that check changed ({', '.join(diff)})")
    expect(len(notices) == 1, f"exactly one notice ({len(notices)})")
    if notices:
        subject, body = notices[0]
        named = [c["id"] for c in body.get("changed", [])]
        seen = next((c.get("seen") for c in body.get("changed", []) if c["id"] == BROKEN_CHECK), None)
        expect(BROKEN_CHECK in subject and named == [BROKEN_CHECK],
               f"it names {BROKEN_CHECK} (subject {subject!r}; changed {named})")
        expect(bool(seen) and "1000" in str(seen), f"with the value seen ({seen})")

    _, notices, _ = run_once(d, "still over the limit, unchanged", lag=BROKEN_LAG_SECONDS)
    expect(not notices, f"an unchanged failure is not re-sent (the alarm holds the page): no notice ({len(notices)})")

    expect(not others, f"nothing else on the operators' topic ({len(others)})")

    kv("readiness drill", "passed" if not failures else f"FAILED: {'; '.join(failures)}")
    return not failures
