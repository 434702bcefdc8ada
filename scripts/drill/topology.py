"""Seeds the two-region pilot-light topology in the emulators, and names it in plan variables.

Seeding is in two steps around the plan: `seed` creates what the plan names (DB, AMI parameters, launch templates,
ALBs and target groups, the hosted zone and health checks, Global Accelerator, Backup, alarms); `seed_per_plan`
then sizes the ASGs and writes the DNS records the validated plan asks for (capacity, DNS mode, TTL)."""

from datetime import timedelta

from .console import DrillError, kv, now_utc, phase
from .context import ACCOUNT, GLOBAL_ACCELERATOR_REGION

SIDES = (("primary", "PRIMARY"), ("dr", "DR"))


def seed(d):
    seed_moto(d)
    seed_gapfill(d)
    seed_ministack(d)


# -- moto: RDS, EC2/ELBv2, SSM, Route 53 ------------------------------------------------------------------------

def two_amis(ec2, region):
    """Two real AMI ids from moto's catalogue of the region: (current, older)."""
    images = sorted(ec2.describe_images(Owners=["amazon"])["Images"], key=lambda i: i["ImageId"])
    linux = [i for i in images if "Windows" not in (i.get("Name") or "")] or images
    if len(linux) < 2:
        raise DrillError(f"moto has fewer than two AMIs in {region}: cannot seed the launch path")
    return linux[0]["ImageId"], linux[1]["ImageId"]


def seed_region_compute(d, side, region):
    """AMI parameter, launch template, ALB + listener + target group for one region (the ASG: seed_asg)."""
    ec2 = d.client("ec2", region)
    ssm = d.client("ssm", region)
    elb = d.client("elbv2", region)
    tag = "" if side == "primary" else "-dr"

    current_ami, older_ami = two_amis(ec2, region)
    # The DR parameter starts at an older AMI: scale-compute must move it to the newest copy in the DR vault.
    ami = current_ami if side == "primary" else older_ami
    param = f"/{d.p}/web/ami"
    ssm.put_parameter(Name=param, Value=ami, Type="String", DataType="aws:ec2:image", Overwrite=True,
                      Description="AMI the web launch template resolves (pilotlight drill)")

    lt_name = d.name(f"web{tag}")
    ec2.create_launch_template(LaunchTemplateName=lt_name, LaunchTemplateData={
        "ImageId": f"resolve:ssm:{param}", "InstanceType": "t3.micro"})

    vpc = next(v for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault"))
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:2]
    tg = elb.create_target_group(Name=d.name(f"tg{tag}")[:32], Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                 TargetType="instance", HealthCheckPath="/health")["TargetGroups"][0]
    lb = elb.create_load_balancer(Name=d.name(f"alb{tag}")[:32], Subnets=[s["SubnetId"] for s in subnets],
                                  Type="application", Scheme="internet-facing")["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    return {
        "region": region, "ami_parameter": param, "ami": ami, "newer_ami": current_ami,
        "launch_template": lt_name, "target_group_arn": tg["TargetGroupArn"], "subnets": [s["SubnetId"] for s in subnets],
        "load_balancer_arn": lb["LoadBalancerArn"], "load_balancer_dns": lb["DNSName"],
        "asg": d.name(f"web-asg{'' if side == 'primary' else '-dr'}"),
    }


def seed_moto(d):
    phase(f"seed moto ({d.args.moto_url}): {d.primary} primary, {d.dr} DR, names {d.p}-*")
    s = d.seeded

    if d.args.aurora:  # the database is an Aurora global database in ministack (scripts/drill/aurora.py)
        from . import aurora
        aurora.seed(d)
    else:
        seed_rds_replica(d)

    for side, _ in SIDES:
        c = s[side] = seed_region_compute(d, side, d.region_of(side))
        kv(f"{side} launch path", f"launch template {c['launch_template']} (ImageId resolve:ssm:{c['ami_parameter']} "
                                  f"= {c['ami']}), ALB + target group")

    # -- DNS: the zone and both modes' ingredients; the records themselves follow the plan's mode (seed_per_plan)
    r53 = d.client("route53", "us-east-1")
    zone_name = f"{d.p}.drill.example."
    zone = r53.create_hosted_zone(Name=zone_name, CallerReference=d.name("zone"))["HostedZone"]
    hcs = {side: r53.create_health_check(CallerReference=d.name(f"hc-{side}"), HealthCheckConfig={
        "Type": "HTTPS", "FullyQualifiedDomainName": s[side]["load_balancer_dns"], "Port": 443,
        "ResourcePath": "/health", "RequestInterval": 10, "FailureThreshold": 3,
    })["HealthCheck"]["Id"] for side, _ in SIDES}
    s["dns"] = {"zone_id": zone["Id"].split("/")[-1], "record": f"app.{zone_name}", "health_checks": hcs,
                "primary_value": s["primary"]["load_balancer_dns"], "dr_value": s["dr"]["load_balancer_dns"]}
    kv("Route 53", f"zone {s['dns']['zone_id']} {zone_name}, health checks {hcs['primary']} (primary) / "
                   f"{hcs['dr']} (DR)")


def seed_rds_replica(d):
    s = d.seeded
    # -- database: MySQL primary + cross-region read replica (source given as ARN, as across regions on AWS)
    db = d.client("rds", d.primary).create_db_instance(
        DBInstanceIdentifier=d.name("db"), Engine="mysql", DBInstanceClass="db.t3.micro",
        MasterUsername="admin", MasterUserPassword="drill-password-1", AllocatedStorage=20,
        BackupRetentionPeriod=1)["DBInstance"]
    replica = d.client("rds", d.dr).create_db_instance_read_replica(
        DBInstanceIdentifier=d.name("db-replica"), SourceDBInstanceIdentifier=db["DBInstanceArn"],
        DBInstanceClass="db.t3.micro")["DBInstance"]
    s["db"] = {"primary": db["DBInstanceIdentifier"], "dr": replica["DBInstanceIdentifier"]}
    kv("RDS primary", f"{db['DBInstanceIdentifier']} ({d.primary}, {db['Engine']})")
    kv("RDS read replica", f"{replica['DBInstanceIdentifier']} ({d.dr}) <- {replica.get('ReadReplicaSourceDBInstanceIdentifier')}")


def seed_per_plan(d, plan):
    """What the plan decides: the ASGs (primary at the plan's capacity, DR at zero: the pilot light) and the DNS
    records of the plan's mode (failover records guarded by the health checks, or one CNAME)."""
    phase(f"seed what the plan decides: ASGs, DNS records ({plan['dns']['mode']})")
    cap = plan["primary"]["capacity"]
    for side, capacity in (("primary", (cap["min"], cap["desired"], cap["max"])), ("dr", (0, 0, 0))):
        seed_asg(d, side, capacity)
    s, r53 = d.seeded, d.client("route53", "us-east-1")
    dns = s["dns"]
    dns["mode"] = plan["dns"]["mode"]
    if dns["mode"] == "health-check":
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": dns["record"], "Type": "CNAME", "SetIdentifier": side, "Failover": role, "TTL": 60,
            "ResourceRecords": [{"Value": dns[f"{side}_value"]}], "HealthCheckId": dns["health_checks"][side]}}
            for side, role in (("primary", "PRIMARY"), ("dr", "SECONDARY"))]
        kv("Route 53", f"failover CNAME {dns['record']} (PRIMARY/SECONDARY, guarded by the health checks)")
    else:
        # records mode: the health checks exist but guard nothing (the snapshot ignores them)
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": dns["record"], "Type": "CNAME", "TTL": plan["dns"]["ttl"],
            "ResourceRecords": [{"Value": dns["primary_value"]}]}}]
        kv("Route 53", f"CNAME {dns['record']} -> {dns['primary_value']}")
    r53.change_resource_record_sets(HostedZoneId=dns["zone_id"], ChangeBatch={"Changes": changes})


def seed_asg(d, side, capacity):
    c = d.seeded[side]
    mn, desired, mx = capacity
    d.client("autoscaling", c["region"]).create_auto_scaling_group(
        AutoScalingGroupName=c["asg"],
        LaunchTemplate={"LaunchTemplateName": c["launch_template"], "Version": "$Latest"},
        MinSize=mn, DesiredCapacity=desired, MaxSize=mx,
        VPCZoneIdentifier=",".join(c["subnets"]), TargetGroupARNs=[c["target_group_arn"]],
        HealthCheckType="ELB", HealthCheckGracePeriod=60,
    )
    kv(f"{side} ASG", f"{c['asg']} at {mn}/{desired}/{mx}")


# -- gapfill: Global Accelerator, Backup recovery points --------------------------------------------------------

def seed_gapfill(d):
    phase(f"seed gapfill ({d.args.gapfill_url}): Global Accelerator + Backup")
    s = d.seeded
    ga = d.client("globalaccelerator", GLOBAL_ACCELERATOR_REGION, "gapfill")
    acc = ga.create_accelerator(Name=d.name("web"), IdempotencyToken=d.name("acc"))["Accelerator"]
    listener = ga.create_listener(AcceleratorArn=acc["AcceleratorArn"], Protocol="TCP",
                                  PortRanges=[{"FromPort": 443, "ToPort": 443}],
                                  IdempotencyToken=d.name("listener"))["Listener"]
    s["endpoint_groups"] = {side: ga.create_endpoint_group(
        ListenerArn=listener["ListenerArn"], EndpointGroupRegion=d.region_of(side), TrafficDialPercentage=dial,
        EndpointConfigurations=[{"EndpointId": s[side]["load_balancer_arn"], "Weight": 128}],
        IdempotencyToken=d.name(f"eg-{side}"))["EndpointGroup"]["EndpointGroupArn"]
        for side, dial in (("primary", 100.0), ("dr", 0.0))}
    kv("accelerator", acc["AcceleratorArn"])
    kv("endpoint groups", f"{d.primary} dial 100, {d.dr} dial 0")

    # Backup: the DR vault holds the AMI AWS Backup copied from the primary. Seeded through gapfill's admin
    # endpoint rather than StartBackupJob + StartCopyJob so that the recovery point's AMI is an image that exists
    # in moto's EC2 catalogue of the DR region (gapfill's own jobs invent AMI ids).
    two_hours_ago = (now_utc() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The instance AWS Backup backs up: the plan's PILOTLIGHT_<SIDE>_AMI_SOURCE (only its recovery points launch).
    s["ami_source"] = f"arn:aws:ec2:{d.primary}:{ACCOUNT}:instance/i-0drill{d.run_id}"
    for side, _ in SIDES:
        vault = d.name("vault" if side == "primary" else "vault-dr")
        rp = d.gapfill_admin("/_gapfill/backup/recovery-points", {
            "region": d.region_of(side), "vault": vault, "image_id": s[side]["newer_ami"],
            "creation_date": two_hours_ago, "resource_arn": s["ami_source"],
            "resource_type": "EC2", "status": "COMPLETED"})
        s[side]["backup_vault"] = vault
        s[side]["recovery_point"] = rp.get("RecoveryPointArn")
    kv("DR vault", f"{s['dr']['backup_vault']}: COMPLETED AMI recovery point {s['dr']['recovery_point']} (2 h old)")


# -- ministack: CloudWatch alarms, ReplicaLag -------------------------------------------------------------------

def seed_ministack(d):
    phase(f"seed ministack ({d.args.ministack_url}): CloudWatch alarms in {d.args.alarm_region}")
    cw = d.client("cloudwatch", d.args.alarm_region, "ministack")
    alb_dim = d.seeded["primary"]["load_balancer_arn"].split(":loadbalancer/")[-1]
    alarms = [
        (d.name("web-5xx"), "HTTPCode_ELB_5XX_Count", "Sum", 50.0,
         f"ALB 5xx count in the primary region ({d.primary})"),
        (d.name("web-unhealthy-hosts"), "UnHealthyHostCount", "Maximum", 1.0,
         f"unhealthy targets behind the primary ALB ({d.primary})"),
    ]
    for name, metric, stat, threshold, desc in alarms:
        cw.put_metric_alarm(AlarmName=name, AlarmDescription=desc, Namespace="AWS/ApplicationELB",
                            MetricName=metric, Dimensions=[{"Name": "LoadBalancer", "Value": alb_dim}],
                            Statistic=stat, Period=60, EvaluationPeriods=3, DatapointsToAlarm=3,
                            Threshold=threshold, ComparisonOperator="GreaterThanThreshold",
                            TreatMissingData="notBreaching")
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="drill: healthy at start")
        kv("alarm", f"{name} ({metric} {stat} > {threshold:g}) OK")
    d.seeded["alarms"] = [a[0] for a in alarms]

    # promote-db reads ReplicaLag (newest 1-minute Maximum) from CloudWatch in the DR region as its RPO estimate
    # (--aurora: the secondary cluster's AuroraGlobalDBRPOLag). 90 s old: a later datapoint (put_replica_lag when
    # the graceful flow has drained writes) lands in a newer minute.
    put_replica_lag(d, 2.0, now_utc() - timedelta(seconds=90))
    if d.args.aurora:
        kv("AuroraGlobalDBRPOLag", f"2000 ms for {d.seeded['aurora']['ids']['dr']} ({d.dr})")
    else:
        kv("ReplicaLag", f"2 s for {d.seeded['db']['dr']} ({d.dr})")


def put_replica_lag(d, seconds, at, side="dr"):
    """The DR database's lag datapoint, as its engine publishes it (--aurora: aurora.put_lag)."""
    if d.args.aurora:
        from . import aurora
        return aurora.put_lag(d, seconds, at, side)
    d.client("cloudwatch", d.region_of(side), "ministack").put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "ReplicaLag", "Value": seconds, "Unit": "Seconds", "Timestamp": at,
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": d.seeded["db"][side]}]}])


# -- the plan's names for what was seeded -----------------------------------------------------------------------

def run_values(d):
    """The plan variables this run sets from its options: regions, account, the approval gate."""
    values = {
        "PILOTLIGHT_PRIMARY_REGION": d.primary,
        "PILOTLIGHT_DR_REGION": d.dr,
        "PILOTLIGHT_ACCOUNT_ID": ACCOUNT,
        "PILOTLIGHT_ALARM_REGION": d.args.alarm_region,
        # The approval gate's wait: answered within seconds, or (--approval timeout) left to expire after 3 s.
        "PILOTLIGHT_APPROVAL_TIMEOUT_SECONDS": str(d.approval_timeout()),
    }
    if d.args.approval:
        values["PILOTLIGHT_APPROVAL"] = "required"
    return values


def seeded_values(d):
    """The plan variables naming what the seeding created (emulator-made names and ids). Both DNS modes' values
    are given: the plan's PILOTLIGHT_DNS_MODE picks (dns_values)."""
    s = d.seeded
    values = {
        "PILOTLIGHT_ALARM_NAMES": ",".join(s["alarms"]),
        # The stack creates the operators' topic and gives the functions its ARN itself (not a parameter); this
        # stand-in only completes the requested plan for check-plan and is never deployed.
        "PILOTLIGHT_SNS_TOPIC_ARN": f"arn:aws:sns:{d.dr}:{ACCOUNT}:{d.name('operators-set-by-the-stack')}",
    }
    if d.args.aurora:
        from . import aurora
        values.update(aurora.plan_values(d))
    else:
        values.update({"PILOTLIGHT_PRIMARY_DB_INSTANCE": s["db"]["primary"],
                       "PILOTLIGHT_DR_DB_INSTANCE": s["db"]["dr"]})
    for side, prefix in SIDES:
        c = s[side]
        values.update({
            f"PILOTLIGHT_{prefix}_ASG": c["asg"],
            f"PILOTLIGHT_{prefix}_TARGET_GROUP_ARN": c["target_group_arn"],
            f"PILOTLIGHT_{prefix}_BACKUP_VAULT": c["backup_vault"],
            f"PILOTLIGHT_{prefix}_AMI_SOURCE": s["ami_source"],
            f"PILOTLIGHT_{prefix}_AMI_PARAMETER": c["ami_parameter"],
            f"PILOTLIGHT_{prefix}_ENDPOINT_GROUP_ARN": s["endpoint_groups"][side],
        })
    values.update(dns_values(d)["health-check"])
    values.update(dns_values(d)["records"])
    return values


def dns_values(d):
    """Per DNS mode, the plan variables naming its seeded resources (the other mode's are dropped at deploy)."""
    dns = d.seeded["dns"]
    return {
        "health-check": {"PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID": dns["health_checks"]["primary"],
                         "PILOTLIGHT_DR_HEALTH_CHECK_ID": dns["health_checks"]["dr"]},
        "records": {"PILOTLIGHT_HOSTED_ZONE_ID": dns["zone_id"], "PILOTLIGHT_RECORD_NAME": dns["record"],
                    "PILOTLIGHT_PRIMARY_RECORD_VALUE": dns["primary_value"],
                    "PILOTLIGHT_DR_RECORD_VALUE": dns["dr_value"]},
    }
