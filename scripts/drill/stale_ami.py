"""`--stale-ami` (issue #10, "nothing irreversible before everything refusable is checked"): the DR vault holds
only a recovery point older than the plan's PILOTLIGHT_MAX_AMI_AGE_HOURS. The run's preflight finds it; the plan's
approval is the default `on-findings`, so the execution pauses for approval with the finding, nothing promoted,
nothing scaled. The operator approves with the override allow_stale_ami; the run completes and its report records
the override and the accepted finding."""

import json
from datetime import timedelta

from .console import kv, now_utc, phase, say
from .report import find_report

STALE_HOURS = 100


def seed(d):
    """Replaces the DR vault by one holding only a stale recovery point of the plan's source instance."""
    s = d.seeded
    vault = d.name("vault-dr-stale")
    created = (now_utc() - timedelta(hours=STALE_HOURS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rp = d.gapfill_admin("/_gapfill/backup/recovery-points", {
        "region": d.dr, "vault": vault, "image_id": s["dr"]["newer_ami"], "creation_date": created,
        "resource_arn": s["ami_source"], "resource_type": "EC2", "status": "COMPLETED"})
    s["dr"]["backup_vault"] = vault
    s["dr"]["recovery_point"] = rp.get("RecoveryPointArn")
    kv("DR vault (stale)", f"{vault}: only a {STALE_HOURS} h old recovery point {s['dr']['recovery_point']}")


def _replica_untouched(d):
    rds = d.client("rds", d.dr, "moto")
    db = rds.describe_db_instances(DBInstanceIdentifier=d.seeded["db"]["dr"])["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"])["TagList"]}
    asg = d.client("autoscaling", d.dr, "moto").describe_auto_scaling_groups(
        AutoScalingGroupNames=[d.seeded["dr"]["asg"]])["AutoScalingGroups"][0]
    promoted = "pilotlight:promote-requested-at" in tags
    return (not promoted and bool(db.get("ReadReplicaSourceDBInstanceIdentifier")) and asg["DesiredCapacity"] == 0,
            f"replica {db['DBInstanceIdentifier']} promotion tag {'set' if promoted else 'absent'}, "
            f"DR ASG desired {asg['DesiredCapacity']}")


def before_answer(d, body, command):
    """The approval request must carry the finding, and nothing may have changed yet; then approve with the
    override the request names."""
    findings = (body.get("preflight") or {}).get("findings") if isinstance(body, dict) else None
    checks = [f.get("check") for f in findings or []]
    d.stale_ami_seen = {"findings": checks, "untouched": _replica_untouched(d)}
    say(f"  drill: the approval request carries the preflight findings {checks}; {d.stale_ami_seen['untouched'][1]}")
    suggested = ((body.get("how_to_answer") or {}).get("approve") or {}).get("overrides") if isinstance(body, dict) else None
    return {**command, "command": "approve", "overrides": suggested or {"allow_stale_ami": True}}


def verify(d, execution, check):
    phase("verify --stale-ami")
    seen = getattr(d, "stale_ami_seen", None)
    check(seen is not None, "the execution paused for approval (a stale AMI is a preflight finding)")
    if seen is None:
        return
    check("ami.age" in seen["findings"], f"the approval request names the finding ami.age: {seen['findings']}")
    check(seen["untouched"][0], f"nothing was promoted or scaled before the answer: {seen['untouched'][1]}")
    try:
        report = find_report(json.loads(execution.get("output") or "{}")) or {}
    except ValueError:
        report = {}
    overrides = report.get("overrides") or []
    check("allow_stale_ami" in overrides, f"the report records the override: {overrides}")
    accepted = [c.get("check") for c in (report.get("preflight") or {}).get("accepted_by_override") or []]
    check("ami.age" in accepted, f"the report shows the finding accepted by the override: {accepted}")


def check_args(p, a):
    if a.stale_ami and (a.approval or a.dry_run or a.failback or a.graceful):
        p.error("--stale-ami answers its own approval request: not with --approval, --dry-run, --failback, --graceful")
