"""`--aurora` (issue #10): the ungraceful failover on an Aurora global database instead of an RDS read replica.

The plan's database mode is `aurora-global`: a global cluster with its writer cluster in the primary region and a
secondary cluster in the DR region, seeded in ministack, the only emulator here whose FailoverGlobalCluster works
(moto answers HTTP 500; docs/emulators.md). The functions' RDS calls go there (`AWS_ENDPOINT_URL_RDS`), everything
else stays as in the default drill. The secondary publishes its lag as Aurora does: `AuroraGlobalDBRPOLag` in
milliseconds, dimension `DBClusterIdentifier`, in the DR region's CloudWatch (2 s, fresh, within the plan's 300 s),
so promote-db's lag gate lets the failover through by the rule "within the plan's maximum".

ministack's FailoverGlobalCluster moves the writer at once (AWS takes a minute or two and passes through
`failing-over`): promote-db's status poll finds the DR cluster the writer on its first read."""

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


def verify(d, report, check):
    """The RPO basis of the report: the secondary's fresh lag, let through by the plan's maximum."""
    phase("verify --aurora")
    a = d.seeded["aurora"]
    dr = db_view(d, "dr")
    check(dr["writer"] and dr["member"], f"the DR cluster {a['dr']} is the writer of {a['global']} ({dr['status']})")
    lag = report.get("replica_lag") or {}
    check(lag.get("metric") == RPO_LAG and lag.get("seconds") == LAG_MS / 1000 and lag.get("age_seconds") is not None
          and lag["age_seconds"] <= lag.get("max_age_seconds", 0),
          f"the report shows the secondary's {RPO_LAG}: {lag}")
    check(report.get("rpo_seconds") == LAG_MS / 1000, f"the report's RPO is that lag: {report.get('rpo_seconds')} s")
    rule = report.get("rpo_rule") or ""
    check("within the plan's maximum" in rule, f"the report names the rule that let it through: {rule!r}")
