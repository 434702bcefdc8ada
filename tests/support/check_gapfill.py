#!/usr/bin/env python3
"""End-to-end check of tests/support/gapfill.py with boto3 (same wire protocols as the Rust AWS SDK).

    tests/support/check_gapfill.py --url http://127.0.0.1:5100

Resets the server's state first (POST /_gapfill/reset), so do not point it at a server a test run is using.
Needs boto3: when the running interpreter lacks it, re-executes itself with <repo>/.tools/moto/bin/python
(scripts/install-tools.sh moto). Prints "N passed, M failed" and exits non-zero on any failure.
"""
import os
import sys

from boto3_venv import ensure_boto3

ensure_boto3(__file__)

import boto3  # noqa: E402

import argparse
import json
import re
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
PASSED, FAILED = [], []


def check(name, cond, detail=""):
    (PASSED if cond else FAILED).append(name)
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  -- {detail}"))


def expect_error(name, code, fn, status=400):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        check(name, got == code and got_status == status and e.response["Error"].get("Message"),
              f"got {got} HTTP {got_status} message={e.response['Error'].get('Message')!r}")
        return
    except Exception as e:  # noqa: BLE001
        check(name, False, f"raised {e!r} instead of {code}")
        return
    check(name, False, f"no error, expected {code}")


def http(url, method="GET", body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def run(url):
    status, _, _ = http(f"{url}/_gapfill/health")
    check("admin health answers 200", status == 200, status)
    status, _, _ = http(f"{url}/_gapfill/reset", "POST", {})
    check("admin reset answers 200", status == 200, status)

    cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)
    kw = dict(endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing", config=cfg)
    ga = boto3.client("globalaccelerator", region_name="us-west-2", **kw)

    # ---------------------------------------------------------------- Global Accelerator
    acc = ga.create_accelerator(Name="pilotlight-test", IdempotencyToken="tok-acc-1")["Accelerator"]
    acc_arn = acc["AcceleratorArn"]
    check("GA CreateAccelerator ARN format",
          re.fullmatch(rf"arn:aws:globalaccelerator::{ACCOUNT}:accelerator/[0-9a-f-]{{36}}", acc_arn), acc_arn)
    check("GA CreateAccelerator fields", acc["Status"] == "DEPLOYED" and acc["Enabled"] is True
          and acc["IpAddressType"] == "IPV4" and isinstance(acc["CreatedTime"], datetime)
          and acc["DnsName"].endswith(".awsglobalaccelerator.com"), acc)
    again = ga.create_accelerator(Name="pilotlight-test", IdempotencyToken="tok-acc-1")["Accelerator"]
    check("GA CreateAccelerator idempotency token", again["AcceleratorArn"] == acc_arn, again["AcceleratorArn"])
    d = ga.describe_accelerator(AcceleratorArn=acc_arn)["Accelerator"]
    check("GA DescribeAccelerator", d["AcceleratorArn"] == acc_arn and d["Name"] == "pilotlight-test", d)
    check("GA ListAccelerators", [a["AcceleratorArn"] for a in ga.list_accelerators()["Accelerators"]] == [acc_arn])
    expect_error("GA DescribeAccelerator unknown -> AcceleratorNotFoundException", "AcceleratorNotFoundException",
                 lambda: ga.describe_accelerator(AcceleratorArn=acc_arn[:-4] + "ffff"))

    lst = ga.create_listener(AcceleratorArn=acc_arn, PortRanges=[{"FromPort": 443, "ToPort": 443}], Protocol="TCP",
                             IdempotencyToken="tok-l-1")["Listener"]
    l_arn = lst["ListenerArn"]
    check("GA CreateListener ARN format", re.fullmatch(re.escape(acc_arn) + r"/listener/[0-9a-f]{8}", l_arn), l_arn)
    check("GA CreateListener fields", lst["Protocol"] == "TCP" and lst["ClientAffinity"] == "NONE"
          and lst["PortRanges"] == [{"FromPort": 443, "ToPort": 443}], lst)
    check("GA ListListeners", [x["ListenerArn"] for x in ga.list_listeners(AcceleratorArn=acc_arn)["Listeners"]]
          == [l_arn])
    expect_error("GA CreateListener unknown accelerator -> AcceleratorNotFoundException",
                 "AcceleratorNotFoundException",
                 lambda: ga.create_listener(AcceleratorArn=acc_arn[:-4] + "ffff", Protocol="TCP",
                                            PortRanges=[{"FromPort": 80, "ToPort": 80}], IdempotencyToken="x"))
    expect_error("GA CreateListener bad port range -> InvalidPortRangeException", "InvalidPortRangeException",
                 lambda: ga.create_listener(AcceleratorArn=acc_arn, Protocol="TCP",
                                            PortRanges=[{"FromPort": 90, "ToPort": 80}], IdempotencyToken="y"))

    alb1 = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/primary/0123456789abcdef"
    alb2 = f"arn:aws:elasticloadbalancing:us-west-2:{ACCOUNT}:loadbalancer/app/dr/fedcba9876543210"
    g1 = ga.create_endpoint_group(ListenerArn=l_arn, EndpointGroupRegion="us-east-1", IdempotencyToken="tok-g1",
                                  EndpointConfigurations=[{"EndpointId": alb1, "Weight": 128}])["EndpointGroup"]
    g2 = ga.create_endpoint_group(ListenerArn=l_arn, EndpointGroupRegion="us-west-2", IdempotencyToken="tok-g2",
                                  TrafficDialPercentage=0.0,
                                  EndpointConfigurations=[{"EndpointId": alb2}])["EndpointGroup"]
    g1_arn, g2_arn = g1["EndpointGroupArn"], g2["EndpointGroupArn"]
    check("GA CreateEndpointGroup ARN format",
          re.fullmatch(re.escape(l_arn) + r"/endpoint-group/[0-9a-f]{12}", g1_arn) and g1_arn != g2_arn, g1_arn)
    e1 = g1["EndpointDescriptions"]
    check("GA CreateEndpointGroup defaults",
          g1["TrafficDialPercentage"] == 100.0 and g1["EndpointGroupRegion"] == "us-east-1"
          and g1["HealthCheckIntervalSeconds"] == 30 and g1["ThresholdCount"] == 3
          and g1["HealthCheckProtocol"] == "TCP" and g1["HealthCheckPort"] == 443
          and len(e1) == 1 and e1[0]["EndpointId"] == alb1 and e1[0]["Weight"] == 128
          and e1[0]["HealthState"] == "HEALTHY" and e1[0]["ClientIPPreservationEnabled"] is True, g1)
    check("GA CreateEndpointGroup dial 0 + default weight",
          g2["TrafficDialPercentage"] == 0.0 and g2["EndpointDescriptions"][0]["Weight"] == 128, g2)
    expect_error("GA CreateEndpointGroup same region -> EndpointGroupAlreadyExistsException",
                 "EndpointGroupAlreadyExistsException",
                 lambda: ga.create_endpoint_group(ListenerArn=l_arn, EndpointGroupRegion="us-east-1",
                                                  IdempotencyToken="tok-g3"))
    expect_error("GA CreateEndpointGroup unknown listener -> ListenerNotFoundException", "ListenerNotFoundException",
                 lambda: ga.create_endpoint_group(ListenerArn=acc_arn + "/listener/00000000",
                                                  EndpointGroupRegion="eu-west-1", IdempotencyToken="tok-g4"))

    groups = ga.list_endpoint_groups(ListenerArn=l_arn)["EndpointGroups"]
    check("GA ListEndpointGroups", sorted(g["EndpointGroupArn"] for g in groups) == sorted([g1_arn, g2_arn]), groups)
    p1 = ga.list_endpoint_groups(ListenerArn=l_arn, MaxResults=1)
    p2 = ga.list_endpoint_groups(ListenerArn=l_arn, MaxResults=1, NextToken=p1.get("NextToken", ""))
    check("GA ListEndpointGroups pagination",
          len(p1["EndpointGroups"]) == 1 and p1.get("NextToken") and len(p2["EndpointGroups"]) == 1
          and "NextToken" not in p2 and p1["EndpointGroups"][0] != p2["EndpointGroups"][0], (p1, p2))
    pages = list(ga.get_paginator("list_endpoint_groups").paginate(ListenerArn=l_arn,
                                                                   PaginationConfig={"PageSize": 1}))
    check("GA ListEndpointGroups boto3 paginator", sum(len(p["EndpointGroups"]) for p in pages) == 2, pages)
    expect_error("GA ListEndpointGroups unknown listener -> ListenerNotFoundException", "ListenerNotFoundException",
                 lambda: ga.list_endpoint_groups(ListenerArn=acc_arn + "/listener/00000000"))

    u = ga.update_endpoint_group(EndpointGroupArn=g2_arn, TrafficDialPercentage=25.0)["EndpointGroup"]
    check("GA UpdateEndpointGroup dial 25 keeps other fields",
          u["TrafficDialPercentage"] == 25.0 and u["EndpointDescriptions"] == g2["EndpointDescriptions"]
          and u["HealthCheckPort"] == g2["HealthCheckPort"], u)
    check("GA DescribeEndpointGroup sees update",
          ga.describe_endpoint_group(EndpointGroupArn=g2_arn)["EndpointGroup"]["TrafficDialPercentage"] == 25.0)
    ga.update_endpoint_group(EndpointGroupArn=g1_arn, TrafficDialPercentage=0.0)
    ga.update_endpoint_group(EndpointGroupArn=g2_arn, TrafficDialPercentage=100.0)
    dials = {g["EndpointGroupArn"]: g["TrafficDialPercentage"]
             for g in ga.list_endpoint_groups(ListenerArn=l_arn)["EndpointGroups"]}
    check("GA dials shifted (primary 0, DR 100)", dials == {g1_arn: 0.0, g2_arn: 100.0}, dials)
    expect_error("GA UpdateEndpointGroup dial 101 -> InvalidArgumentException", "InvalidArgumentException",
                 lambda: ga.update_endpoint_group(EndpointGroupArn=g2_arn, TrafficDialPercentage=101.0))
    expect_error("GA UpdateEndpointGroup weight 256 -> InvalidArgumentException", "InvalidArgumentException",
                 lambda: ga.update_endpoint_group(EndpointGroupArn=g2_arn,
                                                  EndpointConfigurations=[{"EndpointId": alb2, "Weight": 256}]))
    check("GA failed update changed nothing",
          ga.describe_endpoint_group(EndpointGroupArn=g2_arn)["EndpointGroup"]["TrafficDialPercentage"] == 100.0)
    expect_error("GA UpdateEndpointGroup unknown ARN -> EndpointGroupNotFoundException",
                 "EndpointGroupNotFoundException",
                 lambda: ga.update_endpoint_group(EndpointGroupArn=l_arn + "/endpoint-group/000000000000",
                                                  TrafficDialPercentage=50.0))
    expect_error("GA DescribeEndpointGroup unknown ARN -> EndpointGroupNotFoundException",
                 "EndpointGroupNotFoundException",
                 lambda: ga.describe_endpoint_group(EndpointGroupArn=l_arn + "/endpoint-group/000000000000"))

    st, _, _ = http(f"{url}/_gapfill/globalaccelerator/health", "POST",
                    {"endpoint_group_arn": g1_arn, "endpoint_id": alb1, "health_state": "UNHEALTHY"})
    e = ga.describe_endpoint_group(EndpointGroupArn=g1_arn)["EndpointGroup"]["EndpointDescriptions"][0]
    check("admin sets endpoint HealthState", st == 200 and e["HealthState"] == "UNHEALTHY", (st, e))
    alb3 = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/other/1111111111111111"
    u = ga.update_endpoint_group(EndpointGroupArn=g1_arn, EndpointConfigurations=[
        {"EndpointId": alb1, "Weight": 10}, {"EndpointId": alb3, "Weight": 200}])["EndpointGroup"]
    eps = {x["EndpointId"]: x for x in u["EndpointDescriptions"]}
    check("GA UpdateEndpointGroup replaces endpoints (health kept, dial kept)",
          set(eps) == {alb1, alb3} and eps[alb1]["Weight"] == 10 and eps[alb1]["HealthState"] == "UNHEALTHY"
          and eps[alb3]["HealthState"] == "HEALTHY" and u["TrafficDialPercentage"] == 0.0, u)

    # wire format of an awsJson1_1 error and of an unknown operation
    hdr = {"Content-Type": "application/x-amz-json-1.1",
           "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-west-2/globalaccelerator/aws4_request, "
                            "SignedHeaders=host, Signature=00"}
    st, h, b = http(url + "/", "POST", {"EndpointGroupArn": "arn:nope"},
                    dict(hdr, **{"X-Amz-Target": "GlobalAccelerator_V20180706.DescribeEndpointGroup"}))
    body = json.loads(b)
    check("GA wire: error is HTTP 400 with __type and message",
          st == 400 and body.get("__type") == "EndpointGroupNotFoundException" and body.get("message")
          and h.get("Content-Type") == "application/x-amz-json-1.1", (st, h, body))
    st, _, b = http(url + "/", "POST", {}, dict(hdr, **{"X-Amz-Target": "GlobalAccelerator_V20180706.Bogus"}))
    check("GA wire: unknown operation -> 400 UnknownOperationException",
          st == 400 and json.loads(b).get("__type") == "UnknownOperationException", (st, b))

    expect_error("GA DeleteAccelerator while enabled -> AcceleratorNotDisabledException",
                 "AcceleratorNotDisabledException", lambda: ga.delete_accelerator(AcceleratorArn=acc_arn))
    ga.delete_endpoint_group(EndpointGroupArn=g1_arn)
    expect_error("GA DeleteEndpointGroup twice -> EndpointGroupNotFoundException", "EndpointGroupNotFoundException",
                 lambda: ga.delete_endpoint_group(EndpointGroupArn=g1_arn))
    ga.delete_endpoint_group(EndpointGroupArn=g2_arn)
    ga.delete_listener(ListenerArn=l_arn)
    ga.update_accelerator(AcceleratorArn=acc_arn, Enabled=False)
    ga.delete_accelerator(AcceleratorArn=acc_arn)
    check("GA delete chain (groups, listener, disable, accelerator)", ga.list_accelerators()["Accelerators"] == [])

    # ---------------------------------------------------------------- Backup
    east = boto3.client("backup", region_name="us-east-1", **kw)
    west = boto3.client("backup", region_name="us-west-2", **kw)
    v = east.create_backup_vault(BackupVaultName="pl-primary")
    check("Backup CreateBackupVault",
          v["BackupVaultArn"] == f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:pl-primary"
          and isinstance(v["CreationDate"], datetime), v)
    west.create_backup_vault(BackupVaultName="pl-dr")
    expect_error("Backup CreateBackupVault duplicate -> AlreadyExistsException", "AlreadyExistsException",
                 lambda: east.create_backup_vault(BackupVaultName="pl-primary"))
    expect_error("Backup CreateBackupVault bad name -> InvalidParameterValueException",
                 "InvalidParameterValueException", lambda: east.create_backup_vault(BackupVaultName="bad.name!"))
    dv = east.describe_backup_vault(BackupVaultName="pl-primary")
    check("Backup DescribeBackupVault", dv["BackupVaultName"] == "pl-primary" and dv["NumberOfRecoveryPoints"] == 0
          and dv["VaultState"] == "AVAILABLE", dv)
    check("Backup ListBackupVaults is per region",
          [x["BackupVaultName"] for x in east.list_backup_vaults()["BackupVaultList"]] == ["pl-primary"]
          and [x["BackupVaultName"] for x in west.list_backup_vaults()["BackupVaultList"]] == ["pl-dr"])
    expect_error("Backup DescribeBackupVault unknown -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: east.describe_backup_vault(BackupVaultName="nope"))
    expect_error("Backup DescribeBackupVault other region -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: west.describe_backup_vault(BackupVaultName="pl-primary"))

    role = f"arn:aws:iam::{ACCOUNT}:role/backup"
    inst = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"
    j1 = east.start_backup_job(BackupVaultName="pl-primary", ResourceArn=inst, IamRoleArn=role)
    time.sleep(0.01)
    j2 = east.start_backup_job(BackupVaultName="pl-primary", ResourceArn=inst, IamRoleArn=role)
    ami_re = r"arn:aws:ec2:us-east-1::image/ami-[0-9a-f]{17}"
    check("Backup StartBackupJob -> AMI recovery point",
          re.fullmatch(ami_re, j1["RecoveryPointArn"]) and j1["RecoveryPointArn"] != j2["RecoveryPointArn"]
          and j1.get("BackupJobId"), j1)
    bj = east.describe_backup_job(BackupJobId=j1["BackupJobId"])
    check("Backup DescribeBackupJob", bj["State"] == "COMPLETED" and bj["RecoveryPointArn"] == j1["RecoveryPointArn"]
          and bj["ResourceType"] == "EC2", bj)
    expect_error("Backup StartBackupJob unknown vault -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: east.start_backup_job(BackupVaultName="nope", ResourceArn=inst, IamRoleArn=role))
    expect_error("Backup StartBackupJob bad ARN -> InvalidParameterValueException", "InvalidParameterValueException",
                 lambda: east.start_backup_job(BackupVaultName="pl-primary", ResourceArn="i-123", IamRoleArn=role))

    rps = east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary")["RecoveryPoints"]
    check("Backup ListRecoveryPointsByBackupVault",
          sorted(r["RecoveryPointArn"] for r in rps) == sorted([j1["RecoveryPointArn"], j2["RecoveryPointArn"]])
          and all(r["Status"] == "COMPLETED" and r["ResourceType"] == "EC2" and r["ResourceArn"] == inst
                  and isinstance(r["CreationDate"], datetime) for r in rps), rps)
    check("Backup List byResourceType",
          len(east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", ByResourceType="EC2")
              ["RecoveryPoints"]) == 2
          and east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", ByResourceType="RDS")
          ["RecoveryPoints"] == [])
    p1 = east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", MaxResults=1)
    p2 = east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", MaxResults=1,
                                                   NextToken=p1.get("NextToken", ""))
    check("Backup List pagination maxResults=1",
          len(p1["RecoveryPoints"]) == 1 and p1.get("NextToken") and len(p2["RecoveryPoints"]) == 1
          and "NextToken" not in p2
          and {p1["RecoveryPoints"][0]["RecoveryPointArn"], p2["RecoveryPoints"][0]["RecoveryPointArn"]}
          == {j1["RecoveryPointArn"], j2["RecoveryPointArn"]}, (p1, p2))
    expect_error("Backup List unknown vault -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: east.list_recovery_points_by_backup_vault(BackupVaultName="nope"))

    rp = east.describe_recovery_point(BackupVaultName="pl-primary", RecoveryPointArn=j1["RecoveryPointArn"])
    age = abs((datetime.now(timezone.utc) - rp["CreationDate"]).total_seconds())
    check("Backup DescribeRecoveryPoint (URL-encoded AMI ARN)",
          rp["RecoveryPointArn"] == j1["RecoveryPointArn"] and rp["Status"] == "COMPLETED"
          and rp["ResourceType"] == "EC2" and rp["BackupVaultName"] == "pl-primary" and age < 60
          and isinstance(rp["CompletionDate"], datetime), rp)
    expect_error("Backup DescribeRecoveryPoint unknown -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: east.describe_recovery_point(BackupVaultName="pl-primary",
                                                      RecoveryPointArn="arn:aws:ec2:us-east-1::image/ami-0000000000000000"))

    old = (datetime.now(timezone.utc) - timedelta(days=5)).isoformat()
    st, _, b = http(f"{url}/_gapfill/backup/recovery-points", "POST",
                    {"region": "us-east-1", "vault": "pl-primary", "resource_arn": inst,
                     "image_id": "ami-0123456789abcdef0", "creation_date": old})
    seeded = json.loads(b)
    check("admin seeds an old recovery point",
          st == 200 and seeded.get("RecoveryPointArn") == "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0", (st, b))
    cutoff = datetime.now(timezone.utc) - timedelta(days=1)
    before = east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", ByCreatedBefore=cutoff)
    after = east.list_recovery_points_by_backup_vault(BackupVaultName="pl-primary", ByCreatedAfter=cutoff)
    check("Backup List byCreatedBefore/After",
          [r["RecoveryPointArn"] for r in before["RecoveryPoints"]] == [seeded["RecoveryPointArn"]]
          and len(after["RecoveryPoints"]) == 2, (before, after))

    dest_arn = f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:pl-dr"
    cj = east.start_copy_job(RecoveryPointArn=j2["RecoveryPointArn"], SourceBackupVaultName="pl-primary",
                             DestinationBackupVaultArn=dest_arn, IamRoleArn=role)
    c = east.describe_copy_job(CopyJobId=cj["CopyJobId"])["CopyJob"]
    dest_rp = c.get("DestinationRecoveryPointArn", "")
    check("Backup StartCopyJob + DescribeCopyJob COMPLETED",
          c["State"] == "COMPLETED" and c["SourceRecoveryPointArn"] == j2["RecoveryPointArn"]
          and c["DestinationBackupVaultArn"] == dest_arn
          and re.fullmatch(r"arn:aws:ec2:us-west-2::image/ami-[0-9a-f]{17}", dest_rp), c)
    wrps = west.list_recovery_points_by_backup_vault(BackupVaultName="pl-dr")["RecoveryPoints"]
    check("Backup copy lands in the destination region's vault",
          len(wrps) == 1 and wrps[0]["RecoveryPointArn"] == dest_rp and wrps[0]["Status"] == "COMPLETED"
          and wrps[0]["ResourceArn"] == inst
          and wrps[0].get("SourceBackupVaultArn") == f"arn:aws:backup:us-east-1:{ACCOUNT}:backup-vault:pl-primary",
          wrps)
    expect_error("Backup StartCopyJob unknown destination vault -> ResourceNotFoundException",
                 "ResourceNotFoundException",
                 lambda: east.start_copy_job(RecoveryPointArn=j2["RecoveryPointArn"], SourceBackupVaultName="pl-primary",
                                             DestinationBackupVaultArn=dest_arn + "x", IamRoleArn=role))
    expect_error("Backup StartCopyJob unknown recovery point -> ResourceNotFoundException",
                 "ResourceNotFoundException",
                 lambda: east.start_copy_job(RecoveryPointArn="arn:aws:ec2:us-east-1::image/ami-00000000000000000",
                                             SourceBackupVaultName="pl-primary",
                                             DestinationBackupVaultArn=dest_arn, IamRoleArn=role))
    expect_error("Backup DescribeCopyJob unknown -> ResourceNotFoundException", "ResourceNotFoundException",
                 lambda: east.describe_copy_job(CopyJobId="00000000-0000-0000-0000-000000000000"))

    # copy jobs that stay RUNNING until the test finishes them
    http(f"{url}/_gapfill/config", "POST", {"copy_jobs_complete_immediately": False})
    cj2 = east.start_copy_job(RecoveryPointArn=j1["RecoveryPointArn"], SourceBackupVaultName="pl-primary",
                              DestinationBackupVaultArn=dest_arn, IamRoleArn=role)
    c2 = east.describe_copy_job(CopyJobId=cj2["CopyJobId"])["CopyJob"]
    pending = west.describe_recovery_point(BackupVaultName="pl-dr",
                                           RecoveryPointArn=c2["DestinationRecoveryPointArn"])
    st, _, _ = http(f"{url}/_gapfill/backup/copy-job-state", "POST",
                    {"region": "us-east-1", "copy_job_id": cj2["CopyJobId"], "state": "COMPLETED"})
    c2b = east.describe_copy_job(CopyJobId=cj2["CopyJobId"])["CopyJob"]
    check("admin-steered copy job RUNNING -> COMPLETED",
          c2["State"] == "RUNNING" and pending["Status"] == "CREATING" and st == 200
          and c2b["State"] == "COMPLETED" and isinstance(c2b.get("CompletionDate"), datetime), (c2, pending, c2b))
    http(f"{url}/_gapfill/config", "POST", {"copy_jobs_complete_immediately": True})

    # wire format of a restJson1 error
    st, h, b = http(f"{url}/backup-vaults/nope", "GET", None, {
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/backup/aws4_request, "
                         "SignedHeaders=host, Signature=00"})
    body = json.loads(b)
    check("Backup wire: 400 + x-amzn-ErrorType + {Code, Message}",
          st == 400 and h.get("x-amzn-ErrorType") == "ResourceNotFoundException"
          and body.get("Code") == "ResourceNotFoundException" and body.get("Message"), (st, h, body))

    st, _, _ = http(f"{url}/_gapfill/reset", "POST", {})
    check("admin reset clears state",
          st == 200 and east.list_backup_vaults()["BackupVaultList"] == [] and ga.list_accelerators()["Accelerators"]
          == [])


def main():
    ap = argparse.ArgumentParser(description="boto3 end-to-end check of gapfill.py")
    ap.add_argument("--url", default=os.environ.get("PILOTLIGHT_GAPFILL_URL", "http://127.0.0.1:5100"))
    args = ap.parse_args()
    try:
        run(args.url.rstrip("/"))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        FAILED.append("unexpected exception")
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
