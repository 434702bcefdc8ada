"""The live topology, read back from the emulators: what the verification compares, before and after."""

from datetime import datetime

from botocore.exceptions import ClientError

from .console import kv, phase
from .context import GLOBAL_ACCELERATOR_REGION

# Tag promote-db writes before PromoteReadReplica (shared/src/aws/rds.rs), read back because moto never clears
# ReadReplicaSourceDBInstanceIdentifier on promotion (an emulator bug documented in docs/emulators.md).
PROMOTE_REQUESTED_TAG = "pilotlight:promote-requested-at"
PROMOTED_INSTANCE_TAG = "pilotlight:promoted-instance"


def parse_time(text):
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def db_view(d, side):
    """One side's DB instance as the product judges it, or None when there is none with the plan's id (--aurora:
    its cluster as a member of the global cluster, aurora.db_view)."""
    if d.args.aurora:
        from .aurora import db_view as cluster_view
        return cluster_view(d, side)
    rds = d.client("rds", d.region_of(side))
    try:
        inst = rds.describe_db_instances(DBInstanceIdentifier=d.seeded["db"][side])["DBInstances"][0]
    except ClientError as e:
        if "NotFound" in str(e):
            return None
        raise
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=inst["DBInstanceArn"])["TagList"]}
    replication = [i for i in inst.get("StatusInfos", []) if i.get("StatusType") == "read replication"]
    db = {
        "instance": inst["DBInstanceIdentifier"], "status": inst["DBInstanceStatus"],
        "replica_source": inst.get("ReadReplicaSourceDBInstanceIdentifier"),
        "replication_status": replication[0]["Status"] if replication else None,
        "promote_requested_at": tags.get(PROMOTE_REQUESTED_TAG),
        "rpo_tag": tags.get("pilotlight:rpo-seconds"),
        "created": inst.get("InstanceCreateTime"),
        "instance_class": inst.get("DBInstanceClass"), "multi_az": inst.get("MultiAZ"),
    }
    # the product's rule (shared/src/steps/promote_db.rs InstanceView::is_replica): a replica until promoted; moto keeps the
    # source field after PromoteReadReplica, so a promotion recorded on this very instance without replication
    # status counts as promoted. A record copied from the source onto a new replica (moto copies every tag) names
    # another instance or predates this one: it does not count.
    requested = parse_time(db["promote_requested_at"])
    created = db["created"].replace(microsecond=db["created"].microsecond // 1000 * 1000) if db["created"] else None
    own_record = requested is not None \
        and tags.get(PROMOTED_INSTANCE_TAG, inst["DBInstanceArn"]) == inst["DBInstanceArn"] \
        and (created is None or requested >= created)
    db["is_replica"] = bool(db["replica_source"]) and (not own_record or db["replication_status"] is not None)
    db["writer"] = db["status"] == "available" and not db["is_replica"]
    return db


def snapshot(d):
    """The live topology, read back from the emulators (what the verification compares)."""
    s = d.seeded
    snap = {"db": db_view(d, "dr"), "db_primary": db_view(d, "primary"), "db_instances": {}}
    for side, region in (("primary", d.primary), ("dr", d.dr)):
        snap["db_instances"][side] = sorted(
            i["DBInstanceIdentifier"] for i in d.client("rds", region).describe_db_instances()["DBInstances"]
            if i["DBInstanceIdentifier"].startswith(d.p))

    for side, region in (("primary", d.primary), ("dr", d.dr)):
        c = s[side]
        asg = d.client("autoscaling", region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[c["asg"]])["AutoScalingGroups"][0]
        health = d.client("elbv2", region).describe_target_health(TargetGroupArn=c["target_group_arn"])
        healthy_targets = [t["Target"]["Id"] for t in health["TargetHealthDescriptions"]
                           if t["TargetHealth"]["State"] == "healthy"]
        param = d.client("ssm", region).get_parameter(Name=c["ami_parameter"])["Parameter"]
        snap[side] = {
            "asg": c["asg"], "min": asg["MinSize"], "desired": asg["DesiredCapacity"], "max": asg["MaxSize"],
            "in_service_healthy": sum(1 for i in asg["Instances"]
                                      if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"),
            "healthy_targets": len(healthy_targets), "ami_parameter": param["Value"],
        }

    ga = d.client("globalaccelerator", GLOBAL_ACCELERATOR_REGION, "gapfill")
    snap["dials"] = {side: ga.describe_endpoint_group(EndpointGroupArn=arn)["EndpointGroup"]["TrafficDialPercentage"]
                     for side, arn in s["endpoint_groups"].items()}

    r53 = d.client("route53", "us-east-1")
    dns = s["dns"]
    records = r53.list_resource_record_sets(HostedZoneId=dns["zone_id"], StartRecordName=dns["record"],
                                            StartRecordType="CNAME")["ResourceRecordSets"]
    records = [r for r in records if r["Name"] == dns["record"] and r["Type"] == "CNAME"]
    snap["dns"] = {"records": {r.get("Failover", "SIMPLE"): r["ResourceRecords"][0]["Value"] for r in records}}
    if dns["mode"] == "health-check":
        flags = {}
        for side, hc in dns["health_checks"].items():
            cfg = r53.get_health_check(HealthCheckId=hc)["HealthCheck"]["HealthCheckConfig"]
            flags[side] = {"inverted": bool(cfg.get("Inverted")), "disabled": bool(cfg.get("Disabled"))}
        snap["dns"]["health_checks"] = flags
        snap["dns"]["answer"] = failover_answer(snap["dns"]["records"], flags)
    else:
        snap["dns"]["answer"] = snap["dns"]["records"].get("SIMPLE")
    return snap


def failover_answer(records, flags):
    """What Route 53 answers for a PRIMARY/SECONDARY failover pair, from the health checks' flags (UpdateHealthCheck
    API reference): a disabled health check's status is always healthy; Inverted turns healthy into unhealthy and
    back. For a health check that is not disabled the endpoint's own status counts; nothing probes the emulated
    endpoints (moto's GetHealthCheckStatus always says Success), so they are taken as up. Route 53 answers the
    secondary when the primary is unhealthy and the secondary is not; when both are unhealthy it answers the
    primary."""
    def unhealthy(f):
        status_healthy = True  # disabled: always healthy; enabled: the endpoint, taken as up
        return status_healthy == f["inverted"]

    if unhealthy(flags["primary"]) and not unhealthy(flags["dr"]):
        return records.get("SECONDARY")
    return records.get("PRIMARY")


def print_topology(d, snap, title):
    phase(title)
    for side, key in (("primary", "db_primary"), ("DR", "db")):
        db = snap[key]
        if db is None:
            kv(f"{side} DB", "none with the plan's id")
            continue
        kv(f"{side} DB {db['instance']}", f"status {db['status']}, "
           + ("read replica" if db["is_replica"] else "writer" if db["writer"] else "not a writer (yet)")
           + f"; ReadReplicaSource={db['replica_source']}, promote-requested tag={db['promote_requested_at']}"
           + f", rpo tag={db['rpo_tag']}")
    kv("DB instances", "; ".join(f"{side}: {', '.join(ids) or '-'}" for side, ids in snap["db_instances"].items()))
    for side, region in (("primary", d.primary), ("dr", d.dr)):
        a = snap[side]
        kv(f"{side} ASG ({region})", f"{a['asg']} min/desired/max {a['min']}/{a['desired']}/{a['max']}, "
           f"{a['in_service_healthy']} InService+Healthy, {a['healthy_targets']} healthy targets, "
           f"AMI parameter {a['ami_parameter']}")
    kv("GA dials", f"{d.primary} {snap['dials']['primary']:g} / {d.dr} {snap['dials']['dr']:g}")
    dns = snap["dns"]
    if "health_checks" in dns:
        hc = dns["health_checks"]
        kv("Route 53 health checks", ", ".join(
            f"{side}: inverted={f['inverted']} disabled={f['disabled']}" for side, f in hc.items()))
    kv("Route 53 records", ", ".join(f"{k} -> {v}" for k, v in dns["records"].items()))
    kv("DNS answer", f"{d.seeded['dns']['record']} -> {dns['answer']}")
