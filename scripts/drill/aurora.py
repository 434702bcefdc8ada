"""`--aurora` (issue #10): the failover on an Aurora global database instead of an RDS read replica: the alarm's
ungraceful one (FailoverGlobalCluster, lag-gated), with `--graceful` the switchover (SwitchoverGlobalCluster), with
`--failback` the ungraceful failover and then the graceful failback (verify.verify_failback reads the clusters
through db_view: the primary cluster the writer again, the DR cluster its secondary).

The plan's database mode is `aurora-global`: a global cluster with its writer cluster in the primary region and a
secondary cluster in the DR region, seeded in ministack, the only emulator here whose FailoverGlobalCluster works
(moto answers HTTP 500; docs/emulators.md). The functions' RDS calls go there (`AWS_ENDPOINT_URL_RDS`), everything
else stays as in the default drill. The secondary publishes its lag as Aurora does: `AuroraGlobalDBRPOLag` in
milliseconds, dimension `DBClusterIdentifier`, in the DR region's CloudWatch (2 s, fresh, within the plan's 300 s),
so promote-db's lag gate lets the failover through by the rule "within the plan's maximum".

ministack's FailoverGlobalCluster and SwitchoverGlobalCluster move the writer at once and keep the old writer as a
secondary (AWS takes a minute or two, passes through `failing-over` / `switching-over`, and after a failover with
data loss re-attaches the old primary only once its region recovers): promote-db's status poll finds the new writer
on its first read, and the fence finds the old one a read-only secondary, which it reports (AWS fences Aurora;
pilotlight only observes)."""

import json

from .console import kv, phase

ENGINE = "aurora-postgresql"  # ministack runs a real MySQL replication switchover for aurora-mysql (a container)
RPO_LAG = "AuroraGlobalDBRPOLag"
LAG_MS = 2000.0


def seed(d):
    """The global cluster, its primary cluster (writer) in the primary region and its secondary in DR."""
    phase(f"seed ministack ({d.args.ministack_url}): Aurora global database {d.name('global')}")
    gid = d.name("global")
    primary = d.client("rds", d.primary, "ministack")
    primary.create_global_cluster(GlobalClusterIdentifier=gid, Engine=ENGINE)
    p = primary.create_db_cluster(DBClusterIdentifier=d.name("aurora-primary"), Engine=ENGINE,
                                  MasterUsername="pilot", MasterUserPassword="drill-password-1",
                                  GlobalClusterIdentifier=gid)["DBCluster"]
    s = d.client("rds", d.dr, "ministack").create_db_cluster(
        DBClusterIdentifier=d.name("aurora-dr"), Engine=ENGINE, GlobalClusterIdentifier=gid)["DBCluster"]
    d.seeded["aurora"] = {"global": gid, "primary": p["DBClusterArn"], "dr": s["DBClusterArn"],
                          "ids": {"primary": p["DBClusterIdentifier"], "dr": s["DBClusterIdentifier"]}}
    kv("global cluster", f"{gid} ({ENGINE}): writer {p['DBClusterArn']}, secondary {s['DBClusterArn']}")


def plan_values(d):
    """The plan variables of the aurora-global database mode (docs/contract.md)."""
    a = d.seeded["aurora"]
    return {"PILOTLIGHT_DB_MODE": "aurora-global", "PILOTLIGHT_GLOBAL_CLUSTER": a["global"],
            "PILOTLIGHT_PRIMARY_DB_CLUSTER_ARN": a["primary"], "PILOTLIGHT_DR_DB_CLUSTER_ARN": a["dr"]}


def put_lag(d, seconds, at, side="dr"):
    """The secondary's RPO lag as Aurora publishes it: milliseconds, by cluster identifier, in its own region."""
    d.client("cloudwatch", d.region_of(side), "ministack").put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": RPO_LAG, "Value": seconds * 1000.0, "Unit": "Milliseconds", "Timestamp": at,
        "Dimensions": [{"Name": "DBClusterIdentifier", "Value": d.seeded["aurora"]["ids"][side]}]}])


def db_view(d, side):
    """One side's cluster as a member of the global cluster, in the shape snapshot.db_view gives an instance."""
    a = d.seeded["aurora"]
    g = d.client("rds", d.dr, "ministack").describe_global_clusters(
        GlobalClusterIdentifier=a["global"])["GlobalClusters"][0]
    member = next((m for m in g.get("GlobalClusterMembers", []) if m["DBClusterArn"] == a[side]), None)
    writer = next((m["DBClusterArn"] for m in g.get("GlobalClusterMembers", []) if m.get("IsWriter")), None)
    is_writer = bool(member and member.get("IsWriter"))
    return {
        "instance": a["ids"][side], "status": g.get("Status"), "global_cluster": a["global"],
        "member": member is not None, "is_replica": member is not None and not is_writer,
        "writer": is_writer and g.get("Status") == "available", "replica_source": None if is_writer else writer,
        "promote_requested_at": None, "rpo_tag": None,
    }


def fence_outcome(report, what="old writer"):
    """(status, reason) the report's fence section gives the old writer."""
    o = next((o for o in (report.get("fence") or {}).get("outcomes", []) if o.get("what") == what), {})
    return o.get("status"), o.get("reason") or o.get("message") or o.get("detail") or ""


def verify(d, report, check):
    """The DR cluster the writer; the RPO basis of the report: ungraceful, the secondary's fresh lag let through
    by the plan's maximum; graceful, SwitchoverGlobalCluster's own catch-up (RPO 0). The old writer's fence is
    AWS's: observed and reported, never acted on."""
    graceful = d.args.graceful
    phase(f"verify --aurora{' --graceful' if graceful else ''}")
    a = d.seeded["aurora"]
    dr, old = db_view(d, "dr"), db_view(d, "primary")
    check(dr["writer"] and dr["member"], f"the DR cluster {a['dr']} is the writer of {a['global']} ({dr['status']})")
    check(old["is_replica"] and old["replica_source"] == a["dr"],
          f"the primary cluster {a['primary']} is a secondary of {a['global']} following the DR cluster")
    check(report.get("mode") == ("graceful" if graceful else "ungraceful"), f"report mode {report.get('mode')!r}")
    lag = report.get("replica_lag") or {}
    rule = report.get("rpo_rule") or ""
    if graceful:
        check(rule.startswith("graceful: SwitchoverGlobalCluster waits for the secondary to catch up"),
              f"the report names the rule: {rule!r}")
        check(report.get("rpo_seconds") == 0, f"the report's RPO is 0 (the switchover's own catch-up): "
              f"{report.get('rpo_seconds')} s")
        changes = [c for c in report.get("changes") or [] if "SwitchoverGlobalCluster" in json.dumps(c)]
        check(changes and not any("FailoverGlobalCluster" in json.dumps(c) for c in report.get("changes") or []),
              f"the promotion was the switchover, not a failover: {json.dumps(changes)[:200]}")
    else:
        check(lag.get("metric") == RPO_LAG and lag.get("seconds") == LAG_MS / 1000
              and lag.get("age_seconds") is not None and lag["age_seconds"] <= lag.get("max_age_seconds", 0),
              f"the report shows the secondary's {RPO_LAG}: {lag}")
        check(report.get("rpo_seconds") == LAG_MS / 1000,
              f"the report's RPO is that lag: {report.get('rpo_seconds')} s")
        check("within the plan's maximum" in rule, f"the report names the rule that let it through: {rule!r}")
    status, reason = fence_outcome(report)
    check(status == "already_fenced" and "read-only secondary" in reason,
          f"the old writer's fence is observed and reported, not acted on: {status} ({reason[:120]})")
