#!/usr/bin/env python3
"""Self-check of tests/support/faultproxy.py with boto3 (same wire protocols as the Rust AWS SDK).

    tests/support/check_faultproxy.py --moto http://127.0.0.1:5000 --gapfill http://127.0.0.1:5100

Starts its own proxies on free ports (in front of the running moto, with Global Accelerator and Backup routed to
gapfill) and stops them; it creates a few uniquely named resources in moto and gapfill and resets neither.
Needs boto3: when the running interpreter lacks it, re-executes itself with <repo>/.tools/moto/bin/python.
Prints one "ok ..." line per check, "N passed, M failed", and exits non-zero on any failure.
"""
import sys
from pathlib import Path

from boto3_venv import ensure_boto3

ensure_boto3(__file__)

import boto3  # noqa: E402

import argparse
import json
import socket
import subprocess
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

PROXY = Path(__file__).resolve().parent / "faultproxy.py"
PASSED, FAILED = [], []
RUN = uuid.uuid4().hex[:8]


def check(name, cond, detail=""):
    (PASSED if cond else FAILED).append(name)
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  -- {detail}"), flush=True)


def http(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Proxy:
    """One faultproxy process on a free port."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, str(PROXY), "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("faultproxy listening on http://127.0.0.1:"):
            self.proc.kill()
            raise SystemExit(f"FAIL faultproxy did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]

    def rules(self, *rules):
        status, body = http(f"{self.url}/_faultproxy/rules", "POST", {"rules": list(rules)})
        assert status == 200, (status, body)

    def requests(self):
        return http(f"{self.url}/_faultproxy/requests")[1]["requests"]

    def reset(self):
        http(f"{self.url}/_faultproxy/rules", "DELETE")
        http(f"{self.url}/_faultproxy/requests", "DELETE")

    def stop(self, timeout=5):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def client(proxy, service, region="us-east-1", attempts=1, read_timeout=10):
    cfg = Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=3, read_timeout=read_timeout)
    return boto3.client(service, region_name=region, endpoint_url=proxy.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=cfg)


def error_of(fn):
    """(code, HTTP status, message) of the ClientError fn raises, or the exception / None."""
    try:
        fn()
    except ClientError as e:
        return e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"], \
            e.response["Error"].get("Message")
    except Exception as e:  # noqa: BLE001
        return e
    return None


def expect_error(name, code, status, fn):
    got = error_of(fn)
    check(name, isinstance(got, tuple) and got[:2] == (code, status) and got[2], f"got {got!r}")


def last(proxy, operation):
    entries = [r for r in proxy.requests() if r["operation"] == operation]
    return entries[-1] if entries else None


def run(moto, gapfill):
    p = Proxy("--upstream", moto, "--upstream-for", f"globalaccelerator={gapfill}",
              "--upstream-for", f"backup={gapfill}")
    try:
        checks(p)
    finally:
        code = p.stop()
    check("SIGTERM stops the proxy cleanly (exit 0)", code == 0, code)
    timing_model(moto, gapfill)
    stop_while_holding(moto)
    refuses_non_loopback(moto)


def checks(p):
    status, body = http(f"{p.url}/_faultproxy/health")
    check("admin health answers 200", status == 200 and body.get("status") == "ok", (status, body))
    status, body = http(f"{p.url}/_faultproxy/rules", "POST", {"rules": [{"fault": "explode"}]})
    check("admin refuses an unknown fault with 400", status == 400 and "fault" in body.get("error", ""), body)
    status, body = http(f"{p.url}/_faultproxy/rules", "POST", {"rules": [{"fault": "slow"}]})
    check("admin refuses slow without delay_ms", status == 400, body)

    # ------------------------------------------------------------ RDS (awsQuery)
    rds = client(p, "rds")
    rds.describe_db_instances()
    e = last(p, "DescribeDBInstances")
    check("RDS DescribeDBInstances forwarded and identified (service, region, Query, read-only)",
          e and (e["service"], e["region"], e["protocol"], e["mutating"], e["fault"], e["status"])
          == ("rds", "us-east-1", "query", False, None, 200), e)
    p.rules({"service": "rds", "operation": "DescribeDBInstances", "fault": "throttle"})
    expect_error("RDS throttle -> 400 Throttling (Query XML)", "Throttling", 400, rds.describe_db_instances)
    e = last(p, "DescribeDBInstances")
    check("request log records the fault and status", e["fault"] == "throttle" and e["status"] == 400, e)
    p.rules({"service": "rds", "fault": "throttle", "times": 2})
    r = client(p, "rds", attempts=3).describe_db_instances()
    check("RDS throttle times:2 is retried by botocore as throttling and then succeeds",
          r["ResponseMetadata"]["RetryAttempts"] == 2, r["ResponseMetadata"])
    p.rules({"service": "rds", "fault": "error500", "times": 1})
    r = client(p, "rds", attempts=3).describe_db_instances()
    check("RDS error500 times:1 is retried and succeeds", r["ResponseMetadata"]["RetryAttempts"] == 1,
          r["ResponseMetadata"])
    p.rules({"service": "rds", "fault": "error500"})
    expect_error("RDS error500 -> 500 InternalFailure", "InternalFailure", 500, rds.describe_db_instances)
    p.rules({"service": "rds", "fault": "error503"})
    expect_error("RDS error503 -> 503 ServiceUnavailable", "ServiceUnavailable", 503, rds.describe_db_instances)
    p.rules({"service": "rds", "fault": "throttle", "after": 1, "times": 1})
    seen = [error_of(rds.describe_db_instances) for _ in range(3)]
    check("after:1 times:1 faults only the second match", seen[0] is None and seen[1] and seen[1][0] == "Throttling"
          and seen[2] is None, seen)
    p.rules({"service": "rds", "region": "us-west-2", "fault": "throttle"})
    west = error_of(client(p, "rds", region="us-west-2").describe_db_instances)
    east = error_of(rds.describe_db_instances)
    check("region rule (from the SigV4 scope) faults us-west-2 only", west and west[0] == "Throttling"
          and east is None, (west, east))

    db = f"fp-{RUN}"
    p.reset()
    rds.create_db_instance(DBInstanceIdentifier=db, Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, MasterUsername="admin1", MasterUserPassword="password123")
    e = last(p, "CreateDBInstance")
    check("RDS CreateDBInstance identified as mutating", e and e["mutating"] is True and e["status"] == 200, e)
    p.rules({"operation": "DescribeDBInstances", "fault": "rewrite", "times": 2,
             "find": "<DBInstanceStatus>available</DBInstanceStatus>",
             "replace": "<DBInstanceStatus>backing-up</DBInstanceStatus>"})
    states = [rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["DBInstanceStatus"]
              for _ in range(3)]
    check("rewrite times:2: the instance reports backing-up twice, then available",
          states == ["backing-up", "backing-up", "available"], states)

    # db-status: one instance shows a transient status for 2 reads; meanwhile AWS refuses mutating calls on it.
    other = f"fp-other-{RUN}"
    rds.create_db_instance(DBInstanceIdentifier=other, Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, MasterUsername="admin1", MasterUserPassword="password123")
    status, body = http(f"{p.url}/_faultproxy/rules", "POST", {"rules": [{"fault": "db-status", "status": "x"}]})
    check("admin refuses db-status without db_instance and times", status == 400 and "db-status" in
          body.get("error", ""), body)
    p.rules({"fault": "db-status", "db_instance": db, "status": "backing-up", "times": 2})
    listed = {d["DBInstanceIdentifier"]: d["DBInstanceStatus"] for d in rds.describe_db_instances()["DBInstances"]}
    check("db-status: a listing shows only that instance in the status (read 1 of 2)",
          listed.get(db) == "backing-up" and listed.get(other) == "available", listed)
    expect_error("db-status: ModifyDBInstance on it meanwhile -> 400 InvalidDBInstanceState",
                 "InvalidDBInstanceState", 400,
                 lambda: rds.modify_db_instance(DBInstanceIdentifier=db, BackupRetentionPeriod=2,
                                                ApplyImmediately=True))
    expect_error("db-status: a call naming it by ARN is refused too", "InvalidDBInstanceState", 400,
                 lambda: rds.promote_read_replica(DBInstanceIdentifier=f"arn:aws:rds:us-east-1:123456789012:db:{db}"))
    rds.add_tags_to_resource(ResourceName=f"arn:aws:rds:us-east-1:123456789012:db:{db}",
                             Tags=[{"Key": "k", "Value": "v"}])
    check("db-status: tags pass (AWS tags a busy instance), other instances are not refused",
          error_of(lambda: rds.modify_db_instance(DBInstanceIdentifier=other, BackupRetentionPeriod=2,
                                                  ApplyImmediately=True)) is None)
    seen = [rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["DBInstanceStatus"]
            for _ in range(2)]
    check("db-status times:2: backing-up once more, then available (the window closed)",
          seen == ["backing-up", "available"], seen)
    check("db-status: once the window closed, ModifyDBInstance passes",
          error_of(lambda: rds.modify_db_instance(DBInstanceIdentifier=db, BackupRetentionPeriod=2,
                                                  ApplyImmediately=True)) is None)
    e = [r for r in p.requests() if r["fault"] == "db-status"]
    check("db-status requests are logged with the fault", len(e) >= 5, e)
    p.reset()
    rds.delete_db_instance(DBInstanceIdentifier=other, SkipFinalSnapshot=True)
    rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)

    # db-status with global_cluster: an Aurora global cluster shows a transient status for 2 reads; meanwhile AWS
    # refuses a switchover / failover of it with InvalidGlobalClusterStateFault.
    gc, gc_other = f"fp-global-{RUN}", f"fp-global-other-{RUN}"
    for g in (gc, gc_other):
        rds.create_global_cluster(GlobalClusterIdentifier=g, Engine="aurora-postgresql")
    status, body = http(f"{p.url}/_faultproxy/rules", "POST", {"rules": [
        {"fault": "db-status", "db_instance": db, "global_cluster": gc, "status": "modifying", "times": 1}]})
    check("admin refuses db-status naming both db_instance and global_cluster", status == 400, body)
    p.rules({"fault": "db-status", "global_cluster": gc, "status": "modifying", "times": 2})
    listed = {g["GlobalClusterIdentifier"]: g["Status"] for g in rds.describe_global_clusters()["GlobalClusters"]}
    check("db-status global_cluster: a listing shows only that global cluster modifying (read 1 of 2)",
          listed.get(gc) == "modifying" and listed.get(gc_other) == "available", listed)
    arn = f"arn:aws:rds:us-east-1:123456789012:cluster:fp-{RUN}"
    expect_error("db-status global_cluster: SwitchoverGlobalCluster meanwhile -> 400 InvalidGlobalClusterStateFault",
                 "InvalidGlobalClusterStateFault", 400,
                 lambda: rds.switchover_global_cluster(GlobalClusterIdentifier=gc, TargetDbClusterIdentifier=arn))
    expect_error("db-status global_cluster: FailoverGlobalCluster by ARN is refused too",
                 "InvalidGlobalClusterStateFault", 400,
                 lambda: rds.failover_global_cluster(
                     GlobalClusterIdentifier=f"arn:aws:rds::123456789012:global-cluster:{gc}",
                     TargetDbClusterIdentifier=arn, AllowDataLoss=True))
    seen = [rds.describe_global_clusters(GlobalClusterIdentifier=gc)["GlobalClusters"][0]["Status"]
            for _ in range(2)]
    check("db-status global_cluster times:2: modifying once more, then available (the window closed)",
          seen == ["modifying", "available"], seen)
    p.reset()
    for g in (gc, gc_other):
        rds.delete_global_cluster(GlobalClusterIdentifier=g)

    # ------------------------------------------------------------ Auto Scaling (awsQuery)
    asg = client(p, "autoscaling", region="eu-west-1")
    asg.describe_auto_scaling_groups()
    e = last(p, "DescribeAutoScalingGroups")
    check("Auto Scaling DescribeAutoScalingGroups identified", e and (e["service"], e["region"], e["status"])
          == ("autoscaling", "eu-west-1", 200), e)
    p.rules({"service": "autoscaling", "operation": "UpdateAutoScalingGroup", "fault": "throttle"})
    expect_error("Auto Scaling UpdateAutoScalingGroup throttle -> 400 Throttling", "Throttling", 400,
                 lambda: asg.update_auto_scaling_group(AutoScalingGroupName="nope", DesiredCapacity=1))
    e = last(p, "UpdateAutoScalingGroup")
    check("UpdateAutoScalingGroup logged as mutating", e and e["mutating"] is True, e)
    check("rule on one operation leaves the others alone", error_of(asg.describe_auto_scaling_groups) is None)

    # ------------------------------------------------------------ Step Functions (awsJson1_0)
    sfn = client(p, "stepfunctions", region="us-west-2")
    sfn.list_state_machines()
    e = last(p, "ListStateMachines")
    check("Step Functions ListStateMachines identified (X-Amz-Target)", e and (e["service"], e["protocol"],
          e["status"]) == ("states", "json", 200), e)
    p.rules({"service": "states", "operation": "ListExecutions", "fault": "throttle"})
    arn = "arn:aws:states:us-west-2:123456789012:stateMachine:nope"
    expect_error("Step Functions ListExecutions throttle -> 400 ThrottlingException (JSON)", "ThrottlingException",
                 400, lambda: sfn.list_executions(stateMachineArn=arn))

    # ------------------------------------------------------------ SSM (awsJson1_1)
    ssm = client(p, "ssm", region="us-west-2")
    p.rules({"operation": "PutParameter", "fault": "throttle", "times": 1})
    name = f"/fp/{RUN}/ami"
    expect_error("SSM PutParameter throttle -> 400 ThrottlingException", "ThrottlingException", 400,
                 lambda: ssm.put_parameter(Name=name, Value="ami-1", Type="String", Overwrite=True))
    ssm.put_parameter(Name=name, Value="ami-1", Type="String", Overwrite=True)
    got = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    e = last(p, "GetParameter")
    check("SSM forwarded after times:1 (PutParameter then GetParameter identified)", got == "ami-1" and e
          and (e["service"], e["mutating"]) == ("ssm", False), (got, e))

    # ------------------------------------------------------------ Route 53 (restXml)
    r53 = client(p, "route53")
    p.reset()
    zone = r53.create_hosted_zone(Name=f"fp-{RUN}.example.com", CallerReference=RUN)["HostedZone"]["Id"]
    batch = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": f"app.fp-{RUN}.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}}]}
    change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)["ChangeInfo"]["Id"]
    r53.get_change(Id=change)
    hc = r53.create_health_check(CallerReference=RUN, HealthCheckConfig={
        "Type": "HTTP", "FullyQualifiedDomainName": "primary.example.com", "Port": 80})["HealthCheck"]["Id"]
    r53.update_health_check(HealthCheckId=hc, Disabled=False)
    r53.list_resource_record_sets(HostedZoneId=zone)
    ops = [(r["operation"], r["mutating"]) for r in p.requests() if r["service"] == "route53"]
    want = [("CreateHostedZone", True), ("ChangeResourceRecordSets", True), ("GetChange", False),
            ("CreateHealthCheck", True), ("UpdateHealthCheck", True), ("ListResourceRecordSets", False)]
    check("Route 53 REST operations identified from method + path", ops == want, ops)
    p.rules({"service": "route53", "operation": "ChangeResourceRecordSets", "fault": "throttle"})
    expect_error("Route 53 ChangeResourceRecordSets throttle -> 400 Throttling (REST-XML)", "Throttling", 400,
                 lambda: r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch))
    p.rules({"service": "route53", "mutating": True, "fault": "error503"})
    expect_error("Route 53 mutating:true error503 -> 503 ServiceUnavailable", "ServiceUnavailable", 503,
                 lambda: r53.update_health_check(HealthCheckId=hc, Disabled=True))
    check("mutating:true leaves reads alone", error_of(lambda: r53.get_change(Id=change)) is None)
    p.rules({"service": "route53", "operation": "UpdateHealthCheck", "fault": "deny"})
    expect_error("Route 53 UpdateHealthCheck deny -> 403 AccessDenied (REST-XML)", "AccessDenied", 403,
                 lambda: r53.update_health_check(HealthCheckId=hc, Disabled=True))

    # ------------------------------------------------------------ Global Accelerator via gapfill (awsJson1_1)
    ga = client(p, "globalaccelerator", region="us-west-2")
    p.reset()
    ga.list_accelerators()
    e = last(p, "ListAccelerators")
    check("Global Accelerator routed to gapfill (--upstream-for) and identified",
          e and (e["service"], e["status"]) == ("globalaccelerator", 200), e)
    p.rules({"service": "globalaccelerator", "operation": "UpdateEndpointGroup", "fault": "throttle"})
    expect_error("Global Accelerator UpdateEndpointGroup throttle -> 400 ThrottlingException",
                 "ThrottlingException", 400,
                 lambda: ga.update_endpoint_group(EndpointGroupArn="arn:aws:globalaccelerator::1:x",
                                                  TrafficDialPercentage=0.0))

    # ------------------------------------------------------------ Backup via gapfill (restJson1)
    bk = client(p, "backup", region="us-west-2")
    vault = f"fp-{RUN}"
    bk.create_backup_vault(BackupVaultName=vault)
    bk.list_recovery_points_by_backup_vault(BackupVaultName=vault)
    e = last(p, "ListRecoveryPointsByBackupVault")
    check("Backup ListRecoveryPointsByBackupVault identified from the REST path", e and e["status"] == 200, e)
    p.rules({"service": "backup", "fault": "throttle"})
    expect_error("Backup throttle -> 400 ThrottlingException (REST-JSON)", "ThrottlingException", 400,
                 lambda: bk.list_recovery_points_by_backup_vault(BackupVaultName=vault))

    # ------------------------------------------------------------ CloudWatch (awsQueryCompatible; proxy-made answer)
    # boto3 speaks CloudWatch's JSON protocol here (the Rust SDK speaks rpc-v2-cbor: tests/faultproxy.rs checks it)
    cw = client(p, "cloudwatch", region="us-west-2")
    p.rules({"service": "monitoring", "operation": "DescribeAlarms", "fault": "throttle"})
    expect_error("CloudWatch DescribeAlarms throttle -> 400 Throttling (x-amzn-query-error)", "Throttling",
                 400, cw.describe_alarms)
    e = last(p, "DescribeAlarms")
    check("CloudWatch DescribeAlarms identified", e and e["service"] == "monitoring" and e["status"] == 400, e)

    # ------------------------------------------------------------ timing faults
    p.rules({"service": "rds", "fault": "delay", "delay_ms": 700})
    t0 = time.monotonic()
    rds.describe_db_instances()
    took = time.monotonic() - t0
    check("delay 700 ms: answer arrives after >= 0.7 s, unchanged", 0.7 <= took < 5, took)
    p.rules({"service": "rds", "fault": "blackhole"})
    held = {}

    def blackholed():
        t = time.monotonic()
        held["err"] = error_of(client(p, "rds", read_timeout=2).describe_db_instances)
        held["took"] = time.monotonic() - t

    thread = threading.Thread(target=blackholed)
    thread.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    free = error_of(lambda: ssm.get_parameter(Name=name))
    quick = time.monotonic() - t0
    check("a held (blackholed) request does not block others", free is None and quick < 1.5, (free, quick))
    thread.join(10)
    check("blackhole: the client times out reading (ReadTimeoutError)", isinstance(held.get("err"), ReadTimeoutError)
          and held["took"] >= 2, held)
    time.sleep(1.0)
    e = last(p, "DescribeDBInstances")
    check("blackhole log: the proxy saw the client give up", e and e["fault"] == "blackhole"
          and e["status"] == "client-gave-up", e)
    p.rules({"service": "rds", "fault": "close"})
    err = error_of(rds.describe_db_instances)
    check("close: the client sees the connection closed mid-call",
          isinstance(err, (ConnectionClosedError, EndpointConnectionError)), repr(err))
    p.rules({"service": "rds", "fault": "reset"})
    err = error_of(rds.describe_db_instances)
    e = last(p, "DescribeDBInstances")
    check("reset: the client sees the connection reset", isinstance(err, (ConnectionClosedError,
          EndpointConnectionError)) and e["status"] == "reset", (repr(err), e))
    p.reset()
    check("DELETE rules and requests: no fault, empty log", error_of(rds.describe_db_instances) is None
          and [r["operation"] for r in p.requests()] == ["DescribeDBInstances"], p.requests())


def timing_model(moto, gapfill):
    """fault timing (--timing): each accepted change is shown in progress for its time, as AWS shows it."""
    p = Proxy("--upstream", moto, "--upstream-for", f"globalaccelerator={gapfill}",
              "--timing", "db=2,compute=2,ga=1.5,dns=1.5")
    try:
        status, body = http(f"{p.url}/_faultproxy/rules", "POST", {"rules": [{"fault": "timing", "db_seconds": -1}]})
        check("admin refuses a timing rule with a negative time", status == 400 and "db_seconds" in
              body.get("error", ""), body)
        status, body = http(f"{p.url}/_faultproxy/rules")
        check("--timing set the timing rule", [r.get("db_seconds") for r in body["rules"]] == [2.0], body)
        rds, asg = client(p, "rds"), client(p, "autoscaling")
        ga, r53 = client(p, "globalaccelerator", "us-west-2"), client(p, "route53")
        db, replica = f"fp-tm-{RUN}", f"fp-tm-{RUN}-replica"
        rds.create_db_instance(DBInstanceIdentifier=db, Engine="mysql", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="admin1", MasterUserPassword="password123")
        rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=db)
        ec2 = client(p, "ec2")
        ec2.create_launch_template(LaunchTemplateName=f"fp-tm-{RUN}",
                                   LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
        group = f"fp-tm-{RUN}-asg"
        asg.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=2, DesiredCapacity=0,
                                      AvailabilityZones=["us-east-1a"],
                                      LaunchTemplate={"LaunchTemplateName": f"fp-tm-{RUN}"})
        acc = ga.create_accelerator(Name=f"fp-tm-{RUN}", IdempotencyToken=RUN)["Accelerator"]
        listener = ga.create_listener(AcceleratorArn=acc["AcceleratorArn"], Protocol="TCP",
                                      PortRanges=[{"FromPort": 443, "ToPort": 443}])["Listener"]
        eg = ga.create_endpoint_group(ListenerArn=listener["ListenerArn"], EndpointGroupRegion="us-east-1",
                                      TrafficDialPercentage=0)["EndpointGroup"]
        zone = r53.create_hosted_zone(Name=f"fp-tm-{RUN}.example.", CallerReference=RUN)["HostedZone"]["Id"]

        t0 = time.time()
        rds.promote_read_replica(DBInstanceIdentifier=replica)
        asg.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=1, DesiredCapacity=1)
        ga.update_endpoint_group(EndpointGroupArn=eg["EndpointGroupArn"], TrafficDialPercentage=100)
        change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": f"app.fp-tm-{RUN}.example.", "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "192.0.2.1"}]}}]})["ChangeInfo"]

        def instance():
            return rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]

        first = instance()
        check("timing db: right after PromoteReadReplica the replica is modifying, still a replica (status info)",
              first["DBInstanceStatus"] == "modifying"
              and [i["StatusType"] for i in first.get("StatusInfos", [])] == ["read replication"], first)
        expect_error("timing db: a mutating call on it meanwhile -> 400 InvalidDBInstanceState",
                     "InvalidDBInstanceState", 400,
                     lambda: rds.modify_db_instance(DBInstanceIdentifier=replica, BackupRetentionPeriod=2,
                                                    ApplyImmediately=True))
        states = [i["LifecycleState"] for i in
                  asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]
        check("timing compute: the new instance is Pending at first", states == ["Pending"], states)
        check("timing ga: the accelerator is IN_PROGRESS after the dial change",
              ga.describe_accelerator(AcceleratorArn=acc["AcceleratorArn"])["Accelerator"]["Status"] == "IN_PROGRESS")
        check("timing dns: the change is PENDING, in its answer and GetChange",
              change["Status"] == "PENDING" and r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "PENDING",
              change)
        time.sleep(max(0.0, t0 + 1.1 - time.time()))
        second = instance()
        check("timing db: in the second half it is rebooting", second["DBInstanceStatus"] == "rebooting", second)
        states = [i["LifecycleState"] for i in
                  asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]
        check("timing compute: then InService", states == ["InService"], states)
        time.sleep(max(0.0, t0 + 2.2 - time.time()))
        done = instance()
        check("timing db: after T_db available and no replication status info (writable)",
              done["DBInstanceStatus"] == "available" and not done.get("StatusInfos"), done)
        check("timing ga/dns: DEPLOYED and INSYNC after their times",
              ga.describe_accelerator(AcceleratorArn=acc["AcceleratorArn"])["Accelerator"]["Status"] == "DEPLOYED"
              and r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "INSYNC")
        changes = http(f"{p.url}/_faultproxy/timing")[1]["changes"]
        check("GET /_faultproxy/timing lists the four modelled changes with their effective times",
              sorted(c["kind"] for c in changes) == ["compute", "db", "dns", "ga"]
              and all(c["effective_at"] > c["began_at"] for c in changes), changes)
        asg.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
        for i in (replica, db):
            rds.delete_db_instance(DBInstanceIdentifier=i, SkipFinalSnapshot=True)
    finally:
        p.stop()


def stop_while_holding(moto):
    p = Proxy("--upstream", moto)
    p.rules({"fault": "blackhole"})
    s = socket.create_connection(("127.0.0.1", int(p.url.rsplit(":", 1)[1])))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    time.sleep(0.3)
    t0 = time.monotonic()
    code = p.stop()
    took = time.monotonic() - t0
    s.settimeout(2)
    try:
        eof = s.recv(1) == b""
    except OSError:
        eof = True
    s.close()
    check("SIGTERM with a held connection: exits 0 within 3 s and releases the socket",
          code == 0 and took < 3 and eof, (code, took, eof))


def refuses_non_loopback(moto):
    for args, what in ((["--upstream", "http://10.0.0.1:80"], "a non-loopback upstream"),
                       (["--upstream", moto, "--upstream-for", "rds=http://example.com:80"], "a non-loopback route"),
                       (["--upstream", moto, "--host", "0.0.0.0"], "a non-loopback bind address")):
        r = subprocess.run([sys.executable, str(PROXY), "--port", "0", *args], capture_output=True, text=True,
                           timeout=10)
        check(f"refuses {what}", r.returncode != 0 and "loopback" in r.stderr, (r.returncode, r.stderr))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moto", required=True, help="moto URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--gapfill", required=True, help="gapfill URL, e.g. http://127.0.0.1:5100")
    args = ap.parse_args()
    try:
        run(args.moto.rstrip("/"), args.gapfill.rstrip("/"))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        check("self-check ran to the end", False, "unexpected exception (above)")
    print(f"faultproxy self-check: {len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
