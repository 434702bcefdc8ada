"""Fencing the side left (docs/guarantees.md "Fencing"): after a real failover the old writer is stopped and the
primary ASG is at 0/0/0 with its capacity recorded on the group; with --primary-outage the report says "not fenced"
and, once the region answers again, the fence command (`{"command": "fence"}` to detect) completes it."""

import json

from .aurora import db_view as aurora_db_view
from .console import kv, phase, say
from .follow import follow
from .report import find_report, show
from .snapshot import snapshot
from .trigger import invoke

FENCED_CAPACITY_TAG = "pilotlight:fenced-capacity"
FENCED_AT_TAG = "pilotlight:fenced-at"


def fence_outcomes(execution):
    """{step: status} of the report's fence section, and its warning (None when everything is fenced)."""
    try:
        report = find_report(json.loads(execution.get("output") or "null")) or {}
    except ValueError:
        report = {}
    fence = report.get("fence") or {}
    by_what = {o.get("what"): o.get("status") for o in fence.get("outcomes", [])}
    return by_what, fence.get("warning"), report.get("summary", "")


def primary_fenced_state(d):
    """(DB status, fenced-at tag, ASG min/desired/max, recorded capacity tag) of the primary, read back."""
    region = d.primary
    rds = d.client("rds", region)
    inst = rds.describe_db_instances(DBInstanceIdentifier=d.seeded["db"]["primary"])["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=inst["DBInstanceArn"])["TagList"]}
    return (inst["DBInstanceStatus"], tags.get(FENCED_AT_TAG), *primary_asg_state(d))


def primary_asg_state(d):
    """(ASG min/desired/max, recorded capacity tag) of the primary, read back."""
    asg = d.client("autoscaling", d.primary).describe_auto_scaling_groups(
        AutoScalingGroupNames=[d.seeded["primary"]["asg"]])["AutoScalingGroups"][0]
    recorded = next((t["Value"] for t in asg.get("Tags", []) if t["Key"] == FENCED_CAPACITY_TAG), None)
    return (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]), recorded


def check_fenced(d, check, where):
    c = d.plan["primary"]["capacity"]
    seeded = f"{c['min']}/{c['desired']}/{c['max']}"
    if d.args.aurora:
        # Aurora: AWS fences the old writer (FailoverGlobalCluster makes it a read-only secondary); the ASG as below.
        old = aurora_db_view(d, "primary")
        check(old["member"] and not old["writer"],
              f"{where}: the old writer cluster {old['instance']} is no longer the writer of {old['global_cluster']}")
        capacity, recorded = primary_asg_state(d)
    else:
        status, fenced_at, capacity, recorded = primary_fenced_state(d)
        check(status in ("stopped", "stopping") and fenced_at,
              f"{where}: the old writer {d.seeded['db']['primary']} is stopped (status {status}, fenced-at {fenced_at})")
    check(capacity == (0, 0, 0) and recorded == seeded,
          f"{where}: primary ASG at 0/0/0 (is {'/'.join(map(str, capacity))}) with its capacity {seeded} recorded "
          f"({FENCED_CAPACITY_TAG}={recorded})")


def verify_fence(d, execution, check):
    """Called by verify() after a real failover."""
    outcomes, warning, summary = fence_outcomes(execution)
    kv("fence (report)", json.dumps(outcomes) + (f"; {warning}" if warning else ""))
    if not d.outages:
        check(outcomes and all(s in ("fenced", "already_fenced") for s in outcomes.values()),
              f"the report says the side left is fenced ({outcomes})")
        check_fenced(d, check, "after the failover")
        return
    # --primary-outage: the calls to the primary hung; the failover succeeded anyway and says what is not fenced.
    check(outcomes.get("old writer") == "not_fenced" and outcomes.get("primary Auto Scaling group") == "not_fenced",
          f"the report says the old writer and the primary ASG are not fenced ({outcomes})")
    check(warning and "command" in warning and "NOT FENCED" in summary,
          "the report's summary warns NOT FENCED and says how to retry (the fence command)")
    status, _, capacity, _ = primary_fenced_state(d)
    check(status == "available" and capacity != (0, 0, 0),
          f"nothing in the failed region was changed (old writer {status}, ASG {'/'.join(map(str, capacity))})")
    fence_later(d, check)


def fence_later(d, check):
    """The region answers again: the operators send the fence command, which fences what the failover could not."""
    for o in d.outages.values():
        o.down = False
    command = {"command": "fence", "reason": f"pilotlight drill {d.run_id}: {d.primary} answers again"}
    phase("the primary region is back: the fence command to detect")
    say(f"  invoke detect {json.dumps(command)}")
    decision = invoke(d, d.seeded["functions"]["detect"], command)
    kv("detect decided", f"{decision.get('outcome')}: {decision.get('reason')}")
    check(decision.get("outcome") == "started" and decision.get("execution_name", "").startswith("fence-"),
          f"detect started a fence run ({decision.get('execution_name')})")
    if decision.get("outcome") != "started":
        return
    execution = follow(d, decision["execution_arn"])
    show(d, execution)
    check(execution["status"] == "SUCCEEDED", f"fence execution {execution['status']}")
    outcomes, warning, _ = fence_outcomes(execution)
    check(outcomes.get("old writer") == "fenced" and outcomes.get("primary Auto Scaling group") == "fenced"
          and not warning, f"the fence run fenced what the failover could not ({outcomes})")
    check_fenced(d, check, "after the fence command")
    after = snapshot(d)
    check(after["dials"] == {"primary": 0, "dr": 100}, f"the DR side still serves (dials {after['dials']})")
