"""The end-state checks: the drill's exit status. Compared against the plan the functions got (d.plan, validated
by check-plan) and the topology read back before and after (snapshot)."""

import json

from .console import kv, phase, say
from .report import find_report, report_dial_steps


class Checks:
    """One PASS/FAIL line per check; passed only if every one did."""

    def __init__(self):
        self.results = []

    def check(self, ok, what):
        self.results.append(bool(ok))
        say(f"  [{'PASS' if ok else 'FAIL'}] {what}")

    def passed(self):
        return all(self.results)


def capacity(plan_side):
    c = plan_side["capacity"]
    return c["min"], c["desired"], c["max"]


def check_report_dials(d, execution, check, side, graceful):
    """Every dial step is in the report, not only the loop's last one (the state keeps only that)."""
    steps = d.plan["dial_steps"] if graceful else [100]
    dials, history = report_dial_steps(d, execution, side)
    check(dials == steps, f"the report lists every {side} dial step: {dials} (expected {steps}; {history})")


def flow_lock_released(d):
    """(ok, what): the run released the flow lock detect took (docs/contract.md "One flow at a time")."""
    table = d.plan.get("lock_table")
    item = d.client("dynamodb", d.dr, "ministack").get_item(
        TableName=table, Key={"lock": {"S": "flow"}}, ConsistentRead=True).get("Item")
    return item is None, f"flow lock {table} released ({'held by ' + item['holder']['S'] if item else 'no item'})"


def verify(d, before, after, execution, inbox):
    phase("verify")
    checks = Checks()
    check = checks.check
    check(*flow_lock_released(d))

    if d.outages:
        kv("calls into the failed region", f"{sum(o.blocked for o in d.outages.values())} "
           f"(hung until the caller's timeout: moto {d.outages['moto'].blocked}, gapfill {d.outages['gapfill'].blocked})")
    rejected = d.args.approval in ("reject", "timeout") and not d.args.dry_run
    if d.args.approval and d.args.dry_run:
        check(not d.approval_requested, "dry-run: no approval was requested (rehearsals never wait)")
    elif d.args.approval == "timeout":
        check(d.approval_requested and not d.approval_answered, "an approval request was received and left unanswered")
    elif d.args.approval:
        check(d.approval_answered, f"an approval request was received and answered ({d.args.approval})")
    if rejected:
        expected = "pilotlight.ApprovalTimeout" if d.args.approval == "timeout" else "pilotlight.Rejected"
        check(any(expected in json.dumps(body, default=str) for _, body in inbox),
              f"the failure notification names {expected}")
    if rejected:
        check(execution["status"] == "FAILED", f"aborted execution ended {execution['status']} (expected FAILED)")
    else:
        check(execution["status"] == "SUCCEEDED", f"execution {execution['status']}")
    kv("notifications", f"{len(inbox)} on the operators' queue")
    for s, body in inbox:
        kind = body.get("kind") if isinstance(body, dict) else None
        say(f"      - {s or '(no subject)'}" + (f"  [kind={kind}]" if kind else ""))

    def is_report(subject, body):
        if isinstance(body, dict) and body.get("kind") == "report":
            return True
        return "report" in subject.lower()

    if d.args.dry_run or rejected:
        for key in ("db", "db_primary", "db_instances", "primary", "dr", "dials", "dns"):
            check(before[key] == after[key], f"{'dry-run' if d.args.dry_run else 'aborted'}: {key} unchanged")
            if before[key] != after[key]:
                say(f"      before: {json.dumps(before[key], default=str)}")
                say(f"      after:  {json.dumps(after[key], default=str)}")
    else:
        db = after["db"]
        check(db["writer"], f"DR DB {db['instance']} promoted: available and no longer a read replica")
        # The plan's production size, asked for once the promotion finished (moto applies it at once; AWS has it
        # pending for a while, and promote-db does not wait for it). RDS only (guarantees section 9): an Aurora
        # cluster's state has no instance class.
        want = d.plan["dr"]["db"]
        if not d.args.aurora and (want["promoted_instance_class"] is not None
                                  or want["promoted_multi_az"] is not None):
            got = (db["instance_class"], db["multi_az"])
            asked = (want["promoted_instance_class"] or got[0],
                     got[1] if want["promoted_multi_az"] is None else want["promoted_multi_az"])
            check(got == asked, f"DR DB {db['instance']} made production-ready: class {asked[0]}, Multi-AZ {asked[1]} "
                  f"(is {got[0]}, Multi-AZ {got[1]})")
        mn, desired, mx = capacity(d.plan["dr"])
        a = after["dr"]
        check(a["min"] >= mn and a["desired"] >= desired and a["max"] >= mx,
              f"DR ASG at the plan's capacity {mn}/{desired}/{mx} (is {a['min']}/{a['desired']}/{a['max']})")
        check(a["in_service_healthy"] >= desired and a["healthy_targets"] >= desired,
              f"DR ASG has {desired} healthy instances ({a['in_service_healthy']} InService+Healthy, "
              f"{a['healthy_targets']} healthy targets)")
        check(a["ami_parameter"] == d.seeded["dr"]["newer_ami"],
              f"DR AMI parameter points at the DR vault's newest recovery point ({d.seeded['dr']['newer_ami']})")
        check(after["dials"] == {"primary": 0, "dr": 100},
              f"GA dials 0/100 (are {after['dials']['primary']:g}/{after['dials']['dr']:g})")
        check(after["dns"]["answer"] == d.seeded["dns"]["dr_value"],
              f"DNS {d.seeded['dns']['record']} answers the DR endpoint ({after['dns']['answer']})")
        if not d.args.graceful:
            # The ungraceful path promotes the database and scales compute in parallel: the report must show it.
            try:
                report = find_report(json.loads(execution.get("output") or "{}")) or {}
            except ValueError:
                report = {}
            overlap = report.get("parallel_overlap_seconds")
            check(isinstance(overlap, (int, float)) and overlap > 0,
                  f"the report shows promote-db and scale-compute overlapping in time ({overlap} s)")
        check_report_dials(d, execution, check, "dr", graceful=d.args.graceful)
        from .fence import verify_fence
        verify_fence(d, execution, check)
    if d.args.probe:
        from .probe import verify_probe
        verify_probe(d, execution, check)
    if d.args.throttle:
        from .throttle import verify_within
        verify_within(d, execution, check)
    if rejected:
        check(any("fail" in s.lower() or "reject" in s.lower() for s, _ in inbox),
              "a failure/rejection notification reached the operators' topic")
    else:
        check(any(is_report(s, b) for s, b in inbox), "a report notification reached the operators' topic")
    if d.args.aurora:
        from .aurora import verify as verify_aurora
        try:
            report = find_report(json.loads(execution.get("output") or "{}")) or {}
        except ValueError:
            report = {}
        verify_aurora(d, report, check)
    if d.args.stale_ami:
        from .stale_ami import verify as verify_stale_ami
        verify_stale_ami(d, execution, check)
    if d.args.replica_busy:
        from .replica_busy import verify as verify_replica_busy
        verify_replica_busy(d, execution, check)
    return checks.passed()


def verify_failback(d, original, after, execution, inbox):
    phase("verify the failback")
    checks = Checks()
    check = checks.check

    check(execution["status"] == "SUCCEEDED", f"failback execution {execution['status']}")
    check(*flow_lock_released(d))
    kv("notifications", f"{len(inbox)} on the operators' queue since the failback started")
    for s, _ in inbox:
        say(f"      - {s or '(no subject)'}")
    p, dr = after["db_primary"], after["db"]
    # --aurora: the clusters as members of the global cluster (aurora.db_view); the DR one a secondary again
    db = d.seeded["aurora"]["ids"] if d.args.aurora else d.seeded["db"]
    source = d.seeded["aurora"]["primary"] if d.args.aurora else db["primary"]
    check(p is not None and p["writer"], f"primary DB {db['primary']} is the writer again "
          f"({'missing' if p is None else p['status']})")
    check(dr is not None and dr["is_replica"] and source in (dr["replica_source"] or ""),
          f"re-protected: DR DB {db['dr']} is a {'secondary' if d.args.aurora else 'read replica'} of the "
          f"primary (source {None if dr is None else dr['replica_source']})")
    mn, desired, mx = capacity(d.plan["primary"])
    a = after["primary"]
    check(a["min"] >= mn and a["desired"] >= desired and a["max"] >= mx and a["in_service_healthy"] >= desired,
          f"primary ASG at {a['min']}/{a['desired']}/{a['max']} with {a['in_service_healthy']} healthy instances "
          f"(plan {mn}/{desired}/{mx})")
    # The failover's fence took the primary group to 0/0/0 and recorded its capacity; failback restored it.
    from .fence import FENCED_CAPACITY_TAG, primary_asg_state
    _, recorded = primary_asg_state(d)
    check(recorded is not None and all(have >= int(want) for have, want in
                                       zip((a["min"], a["desired"], a["max"]), recorded.split("/"))),
          f"primary ASG restored to the capacity the fence recorded ({FENCED_CAPACITY_TAG}={recorded})")
    b = after["dr"]
    check((b["min"], b["desired"], b["max"]) == (0, 0, 0),
          f"re-protected: DR ASG back to the pilot light 0/0/0 (is {b['min']}/{b['desired']}/{b['max']})")
    check(after["dials"] == {"primary": 100, "dr": 0},
          f"GA dials 100/0 (are {after['dials']['primary']:g}/{after['dials']['dr']:g})")
    check(after["dns"]["answer"] == d.seeded["dns"]["primary_value"],
          f"DNS {d.seeded['dns']['record']} answers the primary endpoint ({after['dns']['answer']})")
    check_report_dials(d, execution, check, "primary", graceful=True)
    check(any("report" in s.lower() for s, _ in inbox), "a failback report notification reached the operators' topic")
    try:
        report = find_report(json.loads(execution.get("output") or "{}")) or {}
    except ValueError:
        report = {}
    check(report.get("direction") == "failback" and report.get("mode") == "graceful"
          and report.get("outcome") == "succeeded",
          f"the failback report: direction {report.get('direction')!r}, mode {report.get('mode')!r}, "
          f"outcome {report.get('outcome')!r}")
    check(any("pilot light restored" in s for s, _ in inbox), "the \"pilot light restored\" milestone reached the "
          "operators' topic")
    if d.args.aurora:
        rule = report.get("rpo_rule") or ""
        check(rule.startswith("graceful: SwitchoverGlobalCluster") and report.get("rpo_seconds") == 0,
              f"the failback was Aurora's switchover, RPO 0: {rule!r}")
    kv("DB instances", "; ".join(f"{side}: {', '.join(ids)}" for side, ids in after["db_instances"].items())
       + f" (before the drill: {'; '.join(f'{k}: {chr(44).join(v)}' for k, v in original['db_instances'].items())})")
    return checks.passed()
