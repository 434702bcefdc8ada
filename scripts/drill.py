#!/usr/bin/env python3
"""pilotlight failover drill: the real Lambda binaries and the real state machine, end to end, on emulators.

Run through scripts/drill.sh (it builds the functions and starts the emulators); by hand:

    .tools/moto/bin/python scripts/drill.py [--dry-run] [--graceful] [--primary-region R] [--dr-region R]
                                            [--name-prefix P] [--deploy template|api] ...

Phases (one function each, in this order):
  seed_moto        RDS primary + cross-region read replica, AMIs in SSM parameters, launch templates
                   (ImageId resolve:ssm:), ALBs + target groups + ASGs (primary 2/2/4, DR 0/0/0), Route 53 zone
                   with two health checks and PRIMARY/SECONDARY failover records, SNS topic -> SQS queue
  seed_gapfill     Global Accelerator accelerator/listener/endpoint groups (dials 100/0), Backup vaults with a
                   COMPLETED AMI recovery point in the DR vault (gapfill = tests/support/gapfill.py)
  seed_ministack   CloudWatch alarms (the Rust SDK speaks CBOR to CloudWatch: only ministack serves it), a
                   ReplicaLag datapoint for the RPO estimate
  deploy           template.yaml through ministack's CloudFormation (SAM transform), the six functions being the
                   debug binaries zipped as `bootstrap` in S3 like `sam package` leaves them; or (--deploy api)
                   CreateFunction/CreateStateMachine calls mirroring the template
  trigger          an alarm really goes to ALARM; its Lambda-action event is delivered to detect (--dry-run /
                   --graceful: a manual command to detect instead)
  follow           the execution history, one line per state transition
  show             execution output (the report) and the final topology
  verify           exit status: 0 only if the topology is the failed-over one (or unchanged, with --dry-run)

Endpoints: --moto-url / --gapfill-url / --ministack-url (defaults from PILOTLIGHT_MOTO_URL etc., else the
scripts/emulators.sh default ports). Every resource is named <prefix>-<run id>-..., so drills can share emulators.
"""

import argparse
import io
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:  # pragma: no cover - --help still works without boto3
    boto3 = None
    ClientError = Exception

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# moto's and gapfill's account. ministack takes the account from a 12-digit access key id, so using this as the
# access key puts the alarms, functions and state machine in the same account as everything else; ministack also
# gives each function process its own account id as AWS_ACCESS_KEY_ID, so the functions land there too.
ACCOUNT = "123456789012"
GLOBAL_ACCELERATOR_REGION = "us-west-2"  # the only region Global Accelerator's API answers in

# binary name -> function logical id in template.yaml -> state machine substitution
FUNCTIONS = {
    "detect": ("DetectFunction", None),
    "promote-db": ("PromoteDbFunction", "PromoteDbFunctionArn"),
    "scale-compute": ("ScaleComputeFunction", "ScaleComputeFunctionArn"),
    "shift-traffic": ("ShiftTrafficFunction", "ShiftTrafficFunctionArn"),
    "update-dns": ("UpdateDnsFunction", "UpdateDnsFunctionArn"),
    "notify": ("NotifyFunction", "NotifyFunctionArn"),
}

# Tag promote-db writes before PromoteReadReplica (shared/src/rds.rs), read back because moto never clears
# ReadReplicaSourceDBInstanceIdentifier on promotion (an emulator bug documented in /work/shared/EMULATORS.md).
PROMOTE_REQUESTED_TAG = "pilotlight:promote-requested-at"
PROMOTED_INSTANCE_TAG = "pilotlight:promoted-instance"


# ---------------------------------------------------------------------------------------------------------------
# output helpers
# ---------------------------------------------------------------------------------------------------------------

T0 = time.monotonic()


def now_utc():
    return datetime.now(timezone.utc)


def clock(t=None):
    t = t or now_utc()
    return t.astimezone(timezone.utc).strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def phase(title):
    print(f"\n== {title}  (drill +{time.monotonic() - T0:.1f}s)", flush=True)


def say(msg=""):
    print(msg, flush=True)


def kv(label, value):
    say(f"  {label:<28} {value}")


class DrillError(Exception):
    """A drill step could not be done; the message says what and where to look."""


class RegionOutage:
    """A pass-through HTTP proxy in front of one emulator that, once `down` is set, lets every request signed for
    `region` hang without an answer (until the caller gives up), as calls into a failed region do. The region
    comes from the SigV4 credential scope, as the emulators themselves read it. Runs in this process (threads),
    on an ephemeral 127.0.0.1 port; the functions are pointed at it instead of the emulator."""

    def __init__(self, upstream, region):
        self.upstream, self.region, self.down, self.blocked = upstream.rstrip("/"), region, False, 0
        outage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scope = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
                if outage.down and scope and scope.group(1) == outage.region:
                    outage.blocked += 1
                    time.sleep(60)  # never answers in time; the caller's timeout ends it
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(outage.upstream + self.path, data=body or None, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, rheaders, data = r.status, r.headers.items(), r.read()
                except urllib.error.HTTPError as e:
                    status, rheaders, data = e.code, e.headers.items(), e.read()
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# ---------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------


def parse_env_file(path):
    values = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                raise DrillError(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
            k, v = line.split("=", 1)
            values[k.strip()] = v.strip()
    return values


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="pilotlight failover drill on emulators (see docs/drill.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--primary-region", default="ap-northeast-2")
    p.add_argument("--dr-region", default="ap-northeast-1")
    p.add_argument("--alarm-region", default=None, help="region of the CloudWatch alarms (default: the DR region)")
    p.add_argument("--name-prefix", default="drill", help="prefix of every resource name (a run id is appended)")
    p.add_argument("--plan", default=os.path.join(ROOT, "plans", "drill.env"),
                   help="static plan values (capacities, dial steps, timing, DNS mode)")
    p.add_argument("--dry-run", action="store_true",
                   help='run the chain with {"command":"failover","dry_run":true} and assert nothing changed')
    p.add_argument("--graceful", action="store_true",
                   help='trigger with the manual command {"command":"failover","mode":"graceful"} instead of the alarm '
                        "(an alarm starts an ungraceful failover): the dials move step by step (PILOTLIGHT_DIAL_STEPS)")
    p.add_argument("--primary-outage", action="store_true",
                   help="from the moment the alarm fires, every call the functions make to the primary region (moto, "
                        "gapfill) hangs, as in a regional outage: the failover must not depend on it")
    p.add_argument("--failback", action="store_true",
                   help="after the failover passed, fail back ({\"command\":\"failback\",\"mode\":\"graceful\"}) and check "
                        "the topology is the original one again, re-protected (DR replica of the primary, DR ASG at 0)")
    p.add_argument("--approval", choices=("approve", "reject", "timeout"), default=None,
                   help="deploy with PILOTLIGHT_APPROVAL=required and answer the approval request the execution "
                        "publishes (its task token, read from the operators' queue) through detect")
    p.add_argument("--deploy", choices=("template", "api"), default="template",
                   help="template: template.yaml through ministack's CloudFormation (SAM transform); "
                        "api: CreateFunction/CreateStateMachine calls mirroring it")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to follow the execution before giving up")
    p.add_argument("--binaries", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug"),
                   help="folder holding the built function binaries")
    p.add_argument("--moto-url", default=os.environ.get("PILOTLIGHT_MOTO_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_MOTO_PORT', '5000')}")
    p.add_argument("--gapfill-url", default=os.environ.get("PILOTLIGHT_GAPFILL_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_GAPFILL_PORT', '5100')}")
    p.add_argument("--ministack-url", default=os.environ.get("PILOTLIGHT_MINISTACK_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_MINISTACK_PORT', '4566')}")
    p.add_argument("--write-plan", default=None, help="also write the deployed plan (KEY=VALUE) to this file")
    p.add_argument("--write-output", default=None, help="also write the execution output (JSON) to this file")
    a = p.parse_args(argv)
    if a.primary_region == a.dr_region:
        p.error("--primary-region and --dr-region must differ")
    a.alarm_region = a.alarm_region or a.dr_region
    if a.failback and a.primary_outage:
        p.error("--failback needs the primary region back: not with --primary-outage")
    if a.failback and (a.dry_run or a.approval in ("reject", "timeout")):
        p.error("--failback needs a failover that really happens (not --dry-run, not --approval reject/timeout)")
    return a


class Drill:
    """Everything one drill run knows: endpoints, names, the seeded resources, the plan."""

    def __init__(self, args):
        self.args = args
        self.primary = args.primary_region
        self.dr = args.dr_region
        self.run_id = uuid.uuid4().hex[:6]
        self.p = f"{args.name_prefix}-{self.run_id}"
        self.static_plan = parse_env_file(args.plan)
        # the environment wins over the plan file (like FailoverPlan::from_file)
        self.static_plan.update({k: v for k, v in os.environ.items() if k.startswith("PILOTLIGHT_")
                                 and k not in ("PILOTLIGHT_MOTO_URL", "PILOTLIGHT_GAPFILL_URL", "PILOTLIGHT_MINISTACK_URL")
                                 and not k.endswith("_PORT")})
        self.plan = {}  # the full plan the functions get
        self.inbox = []  # (subject, message) read from the operators' queue
        self.approval_answered = False
        self.approval_requested = False
        self.used_tokens = set()
        self.outages = {}
        if args.primary_outage:
            self.outages = {"moto": RegionOutage(args.moto_url, args.primary_region),
                            "gapfill": RegionOutage(args.gapfill_url, args.primary_region)}
        self.direction = "failover"
        self.drained = False
        self.seeded = {}  # what the seeding created, by role
        self.boto_cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)

    # -- clients ---------------------------------------------------------------------------------------------
    def client(self, service, region, where="moto"):
        url = {"moto": self.args.moto_url, "gapfill": self.args.gapfill_url, "ministack": self.args.ministack_url}[where]
        return boto3.client(service, region_name=region, endpoint_url=url, aws_access_key_id=ACCOUNT,
                            aws_secret_access_key="testing", config=self.boto_cfg)

    def lambda_client(self):
        # Invokes wait for the function; a debug binary's cold start plus a step's AWS calls fit well within this.
        cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=120)
        return boto3.client("lambda", region_name=self.dr, endpoint_url=self.args.ministack_url,
                            aws_access_key_id=ACCOUNT, aws_secret_access_key="testing", config=cfg)

    def sfn(self):
        return self.client("stepfunctions", self.dr, "ministack")

    def plan_dns_mode(self):
        return self.static_plan["PILOTLIGHT_DNS_MODE"]

    def name(self, suffix):
        return f"{self.p}-{suffix}"

    def gapfill_admin(self, path, body):
        req = urllib.request.Request(self.args.gapfill_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")


# ---------------------------------------------------------------------------------------------------------------
# phase: seed moto (RDS, EC2/ASG/ELBv2, SSM, Route 53, SNS/SQS)
# ---------------------------------------------------------------------------------------------------------------


def capacity(text):
    mn, desired, mx = (int(x) for x in text.split(","))
    return mn, desired, mx


def two_amis(ec2, region):
    """Two real AMI ids from moto's catalogue of the region: (current, older)."""
    images = sorted(ec2.describe_images(Owners=["amazon"])["Images"], key=lambda i: i["ImageId"])
    linux = [i for i in images if "Windows" not in (i.get("Name") or "")] or images
    if len(linux) < 2:
        raise DrillError(f"moto has fewer than two AMIs in {region}: cannot seed the launch path")
    return linux[0]["ImageId"], linux[1]["ImageId"]


def seed_region_compute(d, side, region, cap):
    """AMI parameter, launch template, ALB + target group, ASG for one region."""
    ec2 = d.client("ec2", region)
    ssm = d.client("ssm", region)
    elb = d.client("elbv2", region)
    asg = d.client("autoscaling", region)
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
    subnets = [s for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]]
    subnets.sort(key=lambda s: s["AvailabilityZone"])
    subnets = subnets[:2]
    tg = elb.create_target_group(Name=d.name(f"tg{tag}")[:32], Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                 TargetType="instance", HealthCheckPath="/health")["TargetGroups"][0]
    lb = elb.create_load_balancer(Name=d.name(f"alb{tag}")[:32], Subnets=[s["SubnetId"] for s in subnets],
                                  Type="application", Scheme="internet-facing")["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])

    mn, desired, mx = cap
    asg_name = d.name(f"web-asg{tag}")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateName": lt_name, "Version": "$Latest"},
        MinSize=mn, DesiredCapacity=desired, MaxSize=mx,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
        TargetGroupARNs=[tg["TargetGroupArn"]],
        HealthCheckType="ELB", HealthCheckGracePeriod=60,
    )
    return {
        "region": region, "ami_parameter": param, "ami": ami, "newer_ami": current_ami,
        "launch_template": lt_name, "target_group_arn": tg["TargetGroupArn"],
        "load_balancer_arn": lb["LoadBalancerArn"], "load_balancer_dns": lb["DNSName"], "asg": asg_name,
    }


def seed_moto(d):
    phase(f"seed moto ({d.args.moto_url}): {d.primary} primary, {d.dr} DR, names {d.p}-*")
    s = d.seeded

    # -- database: MySQL primary + cross-region read replica (source given as ARN, as across regions on AWS)
    rds_p = d.client("rds", d.primary)
    rds_dr = d.client("rds", d.dr)
    db = rds_p.create_db_instance(
        DBInstanceIdentifier=d.name("db"), Engine="mysql", DBInstanceClass="db.t3.micro",
        MasterUsername="admin", MasterUserPassword="drill-password-1", AllocatedStorage=20,
        BackupRetentionPeriod=1)["DBInstance"]
    replica = rds_dr.create_db_instance_read_replica(
        DBInstanceIdentifier=d.name("db-replica"), SourceDBInstanceIdentifier=db["DBInstanceArn"],
        DBInstanceClass="db.t3.micro")["DBInstance"]
    s["db"] = {"primary": db["DBInstanceIdentifier"], "dr": replica["DBInstanceIdentifier"]}
    kv("RDS primary", f"{db['DBInstanceIdentifier']} ({d.primary}, {db['Engine']})")
    kv("RDS read replica", f"{replica['DBInstanceIdentifier']} ({d.dr}) <- {replica.get('ReadReplicaSourceDBInstanceIdentifier')}")

    # -- compute: primary serving at its capacity, DR at zero (pilot light)
    s["primary"] = seed_region_compute(d, "primary", d.primary, capacity(d.static_plan["PILOTLIGHT_PRIMARY_CAPACITY"]))
    s["dr"] = seed_region_compute(d, "dr", d.dr, (0, 0, 0))
    for side in ("primary", "dr"):
        c = s[side]
        kv(f"{side} compute", f"ASG {c['asg']}, launch template {c['launch_template']} "
                              f"(ImageId resolve:ssm:{c['ami_parameter']} = {c['ami']})")

    # -- DNS: failover records guarded by two health checks (health-check mode) or one CNAME (records mode)
    r53 = d.client("route53", "us-east-1")
    zone_name = f"{d.p}.drill.example."
    zone = r53.create_hosted_zone(Name=zone_name, CallerReference=d.name("zone"))["HostedZone"]
    zone_id = zone["Id"].split("/")[-1]
    record = f"app.{zone_name}"
    s["dns"] = {"zone_id": zone_id, "record": record,
                "primary_value": s["primary"]["load_balancer_dns"], "dr_value": s["dr"]["load_balancer_dns"]}
    if d.static_plan["PILOTLIGHT_DNS_MODE"] == "health-check":
        hcs = {}
        for side in ("primary", "dr"):
            hcs[side] = r53.create_health_check(CallerReference=d.name(f"hc-{side}"), HealthCheckConfig={
                "Type": "HTTPS", "FullyQualifiedDomainName": s[side]["load_balancer_dns"], "Port": 443,
                "ResourcePath": "/health", "RequestInterval": 10, "FailureThreshold": 3,
            })["HealthCheck"]["Id"]
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": record, "Type": "CNAME", "SetIdentifier": f"{side}", "Failover": role, "TTL": 60,
            "ResourceRecords": [{"Value": s[side]["load_balancer_dns"]}], "HealthCheckId": hcs[side]}}
            for side, role in (("primary", "PRIMARY"), ("dr", "SECONDARY"))]
        s["dns"]["health_checks"] = hcs
        kv("Route 53", f"zone {zone_id} {zone_name}, failover CNAME {record}, health checks "
                       f"{hcs['primary']} (primary) / {hcs['dr']} (DR)")
    else:
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": record, "Type": "CNAME", "TTL": int(d.static_plan.get("PILOTLIGHT_RECORD_TTL", "60")),
            "ResourceRecords": [{"Value": s["primary"]["load_balancer_dns"]}]}}]
        kv("Route 53", f"zone {zone_id} {zone_name}, CNAME {record} -> {s['primary']['load_balancer_dns']}")
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    # -- operators' topic (DR region: it must work while the primary is down) with a queue to read it back;
    #    with --deploy template the stack creates its own topic (in ministack)
    sns = d.client("sns", d.dr)
    sqs = d.client("sqs", d.dr)
    topic = sns.create_topic(Name=d.name("operators"))["TopicArn"]
    queue_url = sqs.create_queue(QueueName=d.name("operators-inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    s["sns"] = {"topic": topic, "queue_url": queue_url, "where": "moto"}
    kv("SNS topic", f"{topic} -> SQS {queue_arn}" + (
        "  (for --deploy api; the template creates its own)" if d.args.deploy == "template" else ""))


# ---------------------------------------------------------------------------------------------------------------
# phase: seed gapfill (Global Accelerator, Backup recovery points)
# ---------------------------------------------------------------------------------------------------------------


def seed_gapfill(d):
    phase(f"seed gapfill ({d.args.gapfill_url}): Global Accelerator + Backup")
    s = d.seeded
    ga = d.client("globalaccelerator", GLOBAL_ACCELERATOR_REGION, "gapfill")
    acc = ga.create_accelerator(Name=d.name("web"), IdempotencyToken=d.name("acc"))["Accelerator"]
    listener = ga.create_listener(AcceleratorArn=acc["AcceleratorArn"], Protocol="TCP",
                                  PortRanges=[{"FromPort": 443, "ToPort": 443}],
                                  IdempotencyToken=d.name("listener"))["Listener"]
    groups = {}
    for side, region, dial in (("primary", d.primary, 100.0), ("dr", d.dr, 0.0)):
        groups[side] = ga.create_endpoint_group(
            ListenerArn=listener["ListenerArn"], EndpointGroupRegion=region, TrafficDialPercentage=dial,
            EndpointConfigurations=[{"EndpointId": s[side]["load_balancer_arn"], "Weight": 128}],
            IdempotencyToken=d.name(f"eg-{side}"))["EndpointGroup"]["EndpointGroupArn"]
    s["endpoint_groups"] = groups
    kv("accelerator", acc["AcceleratorArn"])
    kv("endpoint groups", f"{d.primary} dial 100, {d.dr} dial 0")

    # Backup: the DR vault holds the AMI AWS Backup copied from the primary. Seeded through gapfill's admin
    # endpoint rather than StartBackupJob + StartCopyJob so that the recovery point's AMI is an image that exists
    # in moto's EC2 catalogue of the DR region (gapfill's own jobs invent AMI ids).
    two_hours_ago = (now_utc() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    vaults = {"primary": d.name("vault"), "dr": d.name("vault-dr")}
    for side, region in (("primary", d.primary), ("dr", d.dr)):
        rp = d.gapfill_admin("/_gapfill/backup/recovery-points", {
            "region": region, "vault": vaults[side], "image_id": s[side]["newer_ami"], "creation_date": two_hours_ago,
            "resource_arn": f"arn:aws:ec2:{d.primary}:{ACCOUNT}:instance/i-0drill{d.run_id}",
            "resource_type": "EC2", "status": "COMPLETED"})
        s[side]["backup_vault"] = vaults[side]
        s[side]["recovery_point"] = rp.get("RecoveryPointArn")
    kv("DR vault", f"{vaults['dr']}: COMPLETED AMI recovery point {s['dr']['recovery_point']} (2 h old)")


# ---------------------------------------------------------------------------------------------------------------
# phase: seed ministack (CloudWatch alarms, ReplicaLag)
# ---------------------------------------------------------------------------------------------------------------


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

    # promote-db reads ReplicaLag (newest 1-minute Maximum) from CloudWatch in the DR region as its RPO estimate.
    # 90 s old: a later datapoint (put_replica_lag when the graceful flow has drained writes) lands in a newer minute.
    put_replica_lag(d, 2.0, now_utc() - timedelta(seconds=90))
    kv("ReplicaLag", f"2 s for {d.seeded['db']['dr']} ({d.dr})")


def put_replica_lag(d, seconds, at, side="dr"):
    region = d.dr if side == "dr" else d.primary
    d.client("cloudwatch", region, "ministack").put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "ReplicaLag", "Value": seconds, "Unit": "Seconds", "Timestamp": at,
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": d.seeded["db"][side]}]}])


# ---------------------------------------------------------------------------------------------------------------
# phase: deploy the functions and the state machine into ministack
# ---------------------------------------------------------------------------------------------------------------


def build_plan(d, state_machine_arn=None):
    s = d.seeded
    plan = dict(d.static_plan)
    plan.update({
        "PILOTLIGHT_PRIMARY_REGION": d.primary,
        "PILOTLIGHT_DR_REGION": d.dr,
        "PILOTLIGHT_ACCOUNT_ID": ACCOUNT,
        "PILOTLIGHT_ALARM_REGION": d.args.alarm_region,
        "PILOTLIGHT_ALARM_NAMES": ",".join(s["alarms"]),
        "PILOTLIGHT_PRIMARY_DB_INSTANCE": s["db"]["primary"],
        "PILOTLIGHT_DR_DB_INSTANCE": s["db"]["dr"],
        "PILOTLIGHT_SNS_TOPIC_ARN": s["sns"]["topic"],
    })
    if d.args.approval:
        plan["PILOTLIGHT_APPROVAL"] = "required"
    for side, prefix in (("primary", "PRIMARY"), ("dr", "DR")):
        c = s[side]
        plan.update({
            f"PILOTLIGHT_{prefix}_ASG": c["asg"],
            f"PILOTLIGHT_{prefix}_TARGET_GROUP_ARN": c["target_group_arn"],
            f"PILOTLIGHT_{prefix}_BACKUP_VAULT": c["backup_vault"],
            f"PILOTLIGHT_{prefix}_AMI_PARAMETER": c["ami_parameter"],
            f"PILOTLIGHT_{prefix}_ENDPOINT_GROUP_ARN": s["endpoint_groups"][side],
        })
    if plan["PILOTLIGHT_DNS_MODE"] == "health-check":
        plan["PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID"] = s["dns"]["health_checks"]["primary"]
        plan["PILOTLIGHT_DR_HEALTH_CHECK_ID"] = s["dns"]["health_checks"]["dr"]
    else:
        plan.update({
            "PILOTLIGHT_HOSTED_ZONE_ID": s["dns"]["zone_id"], "PILOTLIGHT_RECORD_NAME": s["dns"]["record"],
            "PILOTLIGHT_PRIMARY_RECORD_VALUE": s["dns"]["primary_value"],
            "PILOTLIGHT_DR_RECORD_VALUE": s["dns"]["dr_value"],
        })
    if state_machine_arn:
        plan["PILOTLIGHT_STATE_MACHINE_ARN"] = state_machine_arn
    return plan


def endpoint_environment(d, sns="moto"):
    """The SDK's own endpoint variables (docs/contract.md): moto by default, gapfill and ministack where needed."""
    moto, gapfill = d.args.moto_url, d.args.gapfill_url
    if d.outages:  # --primary-outage: the functions reach moto and gapfill through the outage proxies
        moto, gapfill = d.outages["moto"].url, d.outages["gapfill"].url
    env = {
        "AWS_ENDPOINT_URL": moto,
        "AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR": gapfill,
        "AWS_ENDPOINT_URL_BACKUP": gapfill,
        "AWS_ENDPOINT_URL_CLOUDWATCH": d.args.ministack_url,
        "AWS_ENDPOINT_URL_SFN": d.args.ministack_url,
        # the flow lock: the table the state machine (ministack) releases is ministack's
        "AWS_ENDPOINT_URL_DYNAMODB": d.args.ministack_url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if sns == "ministack":
        env["AWS_ENDPOINT_URL_SNS"] = d.args.ministack_url
    return env


def function_environment(d, plan):
    env = dict(plan)
    env.update(endpoint_environment(d))
    return env


def write_plan(d):
    if d.args.write_plan:
        with open(d.args.write_plan, "w") as f:
            f.write(f"# pilotlight drill {d.run_id}: the plan deployed into ministack\n")
            for k in sorted(d.plan):
                f.write(f"{k}={d.plan[k]}\n")
        kv("plan written to", d.args.write_plan)


def zip_bootstrap(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, executable
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compresslevel=1)
    return buf.getvalue()


def template_substitutions(d, arns, plan):
    """template.yaml's DefinitionSubstitutions, resolved the way CloudFormation would for this drill:
    `!GetAtt <Function>.Arn` -> the function's ARN, `!Ref <Parameter>` -> the plan's value or the parameter's
    Default."""
    with open(os.path.join(ROOT, "template.yaml")) as f:
        text = f.read()
    block = re.search(r"\n(\s+)DefinitionSubstitutions:\n((?:\1\s+.*\n|\s*#.*\n)+)", text)
    if not block:
        raise DrillError("template.yaml: no DefinitionSubstitutions block found")
    by_logical = {logical: arns.get(binary) for binary, (logical, _) in FUNCTIONS.items()}
    subs = {}
    for line in block.group(2).splitlines():
        m = re.match(r"\s+(\w+):\s*!(GetAtt|Ref)\s+([\w.]+)", line)
        if not m:
            continue
        key, fn, target = m.groups()
        if fn == "GetAtt" and target.endswith(".Arn") and by_logical.get(target[:-4]):
            subs[key] = by_logical[target[:-4]]
        elif fn == "Ref" and target in TEMPLATE_PARAMETERS and plan.get(TEMPLATE_PARAMETERS[target]):
            subs[key] = plan[TEMPLATE_PARAMETERS[target]]
        elif fn == "Ref":
            default = re.search(rf"\n  {target}:\n(?:    .*\n)*?    Default:\s*\"?([^\"\n]*)\"?\n", text)
            if default:
                subs[key] = default.group(1)
    if "ApprovalTimeoutSeconds" in subs:  # as the template path passes it as a parameter
        subs["ApprovalTimeoutSeconds"] = str(approval_timeout(d))
    return subs


def deploy(d):
    phase(f"deploy into ministack ({d.args.ministack_url}, {d.dr}): 6 functions + state machine")
    lam = d.lambda_client()
    iam = d.client("iam", "us-east-1", "ministack")
    role = iam.create_role(RoleName=d.name("lambda"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    sfn_role = iam.create_role(RoleName=d.name("states"), AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "states.amazonaws.com"}}]}))["Role"]["Arn"]

    plan = build_plan(d)
    arns = {}
    # the flow lock table, as template.yaml's FailoverLockTable
    lock = d.client("dynamodb", d.dr, "ministack").create_table(
        TableName=d.name("lock"), BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock", "KeyType": "HASH"}])["TableDescription"]
    d.static_plan["PILOTLIGHT_LOCK_TABLE"] = lock["TableName"]
    kv("flow lock table", lock["TableArn"])

    def create(binary, env):
        path = os.path.join(d.args.binaries, binary)
        if not os.access(path, os.X_OK):
            raise DrillError(f"{path} missing: build it with `cargo build --workspace --bins` (scripts/drill.sh does)")
        logical, _ = FUNCTIONS[binary]
        fn = lam.create_function(
            FunctionName=d.name(logical), Runtime="provided.al2023", Handler="bootstrap", Role=role,
            Code={"ZipFile": zip_bootstrap(path)}, Timeout=30, MemorySize=128, Architectures=["x86_64"],
            Description=f"pilotlight {binary} (drill {d.run_id}, debug build)",
            Environment={"Variables": env})
        arns[binary] = fn["FunctionArn"]
        kv(binary, f"{fn['FunctionArn']}  ({os.path.getsize(path) / 1e6:.0f} MB debug binary)")

    for binary in FUNCTIONS:
        if binary != "detect":
            create(binary, function_environment(d, plan))

    # the real definition, with the template's DefinitionSubstitutions
    with open(os.path.join(ROOT, "statemachine", "failover.asl.json")) as f:
        definition = f.read()
    for key, value in {**template_substitutions(d, arns, plan), "LockTableArn": lock["TableArn"]}.items():
        definition = definition.replace("${" + key + "}", value)
    if "${" in definition:
        left = definition[definition.index("${"):][:60]
        raise DrillError(f"statemachine/failover.asl.json has a substitution the template does not define: {left}")
    sm = d.sfn().create_state_machine(name=d.name("failover"), definition=definition, roleArn=sfn_role,
                                      type="STANDARD")["stateMachineArn"]
    d.seeded["state_machine"] = sm
    kv("state machine", f"{sm} (STANDARD, statemachine/failover.asl.json)")

    # detect last: it needs the state machine's ARN (the template passes it the same way)
    d.plan = build_plan(d, sm)
    create("detect", function_environment(d, d.plan))
    d.seeded["functions"] = arns
    write_plan(d)


TEMPLATE_PARAMETERS = {  # template.yaml parameter -> plan variable (docs/contract.md)
    "PrimaryRegion": "PILOTLIGHT_PRIMARY_REGION", "DrRegion": "PILOTLIGHT_DR_REGION",
    "AlarmRegion": "PILOTLIGHT_ALARM_REGION", "AlarmNames": "PILOTLIGHT_ALARM_NAMES", "Quorum": "PILOTLIGHT_QUORUM",
    "CooldownSeconds": "PILOTLIGHT_COOLDOWN_SECONDS", "DbMode": "PILOTLIGHT_DB_MODE",
    "PrimaryDbInstance": "PILOTLIGHT_PRIMARY_DB_INSTANCE", "DrDbInstance": "PILOTLIGHT_DR_DB_INSTANCE",
    "MaxReplicaLagSeconds": "PILOTLIGHT_MAX_REPLICA_LAG_SECONDS", "PrimaryAsg": "PILOTLIGHT_PRIMARY_ASG",
    "DrAsg": "PILOTLIGHT_DR_ASG", "PrimaryCapacity": "PILOTLIGHT_PRIMARY_CAPACITY", "DrCapacity": "PILOTLIGHT_DR_CAPACITY",
    "PrimaryTargetGroupArn": "PILOTLIGHT_PRIMARY_TARGET_GROUP_ARN", "DrTargetGroupArn": "PILOTLIGHT_DR_TARGET_GROUP_ARN",
    "PrimaryBackupVault": "PILOTLIGHT_PRIMARY_BACKUP_VAULT", "DrBackupVault": "PILOTLIGHT_DR_BACKUP_VAULT",
    "PrimaryAmiParameter": "PILOTLIGHT_PRIMARY_AMI_PARAMETER", "DrAmiParameter": "PILOTLIGHT_DR_AMI_PARAMETER",
    "MaxAmiAgeHours": "PILOTLIGHT_MAX_AMI_AGE_HOURS", "PrimaryEndpointGroupArn": "PILOTLIGHT_PRIMARY_ENDPOINT_GROUP_ARN",
    "DrEndpointGroupArn": "PILOTLIGHT_DR_ENDPOINT_GROUP_ARN", "DialSteps": "PILOTLIGHT_DIAL_STEPS",
    "DnsMode": "PILOTLIGHT_DNS_MODE", "PrimaryHealthCheckId": "PILOTLIGHT_PRIMARY_HEALTH_CHECK_ID",
    "DrHealthCheckId": "PILOTLIGHT_DR_HEALTH_CHECK_ID", "HostedZoneId": "PILOTLIGHT_HOSTED_ZONE_ID",
    "RecordName": "PILOTLIGHT_RECORD_NAME", "PrimaryRecordValue": "PILOTLIGHT_PRIMARY_RECORD_VALUE",
    "DrRecordValue": "PILOTLIGHT_DR_RECORD_VALUE", "RecordTtl": "PILOTLIGHT_RECORD_TTL",
    "PollSeconds": "PILOTLIGHT_POLL_SECONDS", "DialBakeSeconds": "PILOTLIGHT_DIAL_BAKE_SECONDS",
    "MaxPolls": "PILOTLIGHT_MAX_POLLS", "Approval": "PILOTLIGHT_APPROVAL", "DryRun": "PILOTLIGHT_DRY_RUN",
}


def packaged_template(d, bucket):
    """template.yaml as `sam package` would leave it (code and definition in S3), plus the emulator endpoints in
    Globals.Function.Environment -- the only lines added to the project's template."""
    with open(os.path.join(ROOT, "template.yaml")) as f:
        text = f.read()
    for binary in FUNCTIONS:
        at = text.index(f"Binary: {binary}\n")
        code = text.index("CodeUri: .\n", at)
        text = text[:code] + f"CodeUri: s3://{bucket}/{binary}.zip\n" + text[code + len("CodeUri: .\n"):]
    text = text.replace("DefinitionUri: statemachine/failover.asl.json",
                        f"DefinitionUri: s3://{bucket}/failover.asl.json")
    globals_at = text.index("\nGlobals:\n")
    variables = text.index("      Variables:\n", globals_at) + len("      Variables:\n")
    endpoints = "".join(f"        {k}: {json.dumps(v)}\n" for k, v in endpoint_environment(d, sns="ministack").items())
    return text[:variables] + endpoints + text[variables:]


def deploy_template(d):
    """The project's template.yaml through ministack's CloudFormation (SAM transform: aws-sam-translator)."""
    region = d.dr
    phase(f"deploy template.yaml into ministack CloudFormation ({d.args.ministack_url}, {region})")
    s3 = d.client("s3", region, "ministack")
    bucket = d.name("artifacts").lower()
    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else
                                        {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    for binary in FUNCTIONS:
        path = os.path.join(d.args.binaries, binary)
        if not os.access(path, os.X_OK):
            raise DrillError(f"{path} missing: build it with `cargo build --workspace --bins` (scripts/drill.sh does)")
        s3.put_object(Bucket=bucket, Key=f"{binary}.zip", Body=zip_bootstrap(path))
    s3.upload_file(os.path.join(ROOT, "statemachine", "failover.asl.json"), bucket, "failover.asl.json")
    kv("artifacts", f"s3://{bucket}/ (6 bootstrap zips, failover.asl.json) - what `sam package` uploads")

    plan = build_plan(d)
    with open(os.path.join(ROOT, "template.yaml")) as f:
        declared = set(re.findall(r"^  (\w+):\n    Type:", f.read().split("\nResources:")[0], re.M))
    params = [{"ParameterKey": k, "ParameterValue": plan[v]} for k, v in TEMPLATE_PARAMETERS.items()
              if plan.get(v) and k in declared]
    if d.args.approval and "Approval" not in declared:
        raise DrillError("--approval: template.yaml has no Approval parameter (approval gate not deployed yet)")
    if "ApprovalTimeoutSeconds" in declared:
        params.append({"ParameterKey": "ApprovalTimeoutSeconds", "ParameterValue": str(approval_timeout(d))})
    cfn = d.client("cloudformation", region, "ministack")
    stack = d.name("pilotlight")
    cfn.create_stack(StackName=stack, TemplateBody=packaged_template(d, bucket), Parameters=params,
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + 120
    while True:
        st = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not st["StackStatus"].endswith("IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise DrillError(f"stack {stack} still {st['StackStatus']} after 120 s")
        time.sleep(0.5)
    if st["StackStatus"] != "CREATE_COMPLETE":
        reasons = [f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason')}"
                   for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]
                   if "FAILED" in e["ResourceStatus"]]
        raise DrillError(f"stack {stack} {st['StackStatus']}: {st.get('StackStatusReason')}; "
                         + "; ".join(reasons[:8]))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}
    kv("stack", f"{stack} CREATE_COMPLETE ({len(cfn.list_stack_resources(StackName=stack)['StackResourceSummaries'])} resources)")

    d.seeded["functions"] = {b: outputs[f"{logical}Arn"] for b, (logical, _) in FUNCTIONS.items()}
    d.seeded["state_machine"] = outputs["FailoverStateMachineArn"]
    for binary, arn in d.seeded["functions"].items():
        kv(binary, arn)
    kv("state machine", d.seeded["state_machine"])

    # the operators' topic is the stack's own (OperatorsTopic, in ministack): read it back through a queue there
    topic = outputs["OperatorsTopicArn"]
    sqs = d.client("sqs", region, "ministack")
    queue_url = sqs.create_queue(QueueName=d.name("operators-inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    d.client("sns", region, "ministack").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    d.seeded["sns"] = {"topic": topic, "queue_url": queue_url, "where": "ministack"}
    kv("operators' topic", f"{topic} (stack output) -> SQS {queue_arn}")

    env = d.lambda_client().get_function_configuration(FunctionName=d.seeded["functions"]["detect"])
    d.plan = {k: v for k, v in env["Environment"]["Variables"].items() if k.startswith("PILOTLIGHT_")}
    write_plan(d)


# ---------------------------------------------------------------------------------------------------------------
# phase: trigger (alarm -> detect)
# ---------------------------------------------------------------------------------------------------------------


def iso_ms(t):
    """CloudWatch's Lambda-action timestamp format: 2026-11-29T10:15:00.490+0000."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def lambda_action_event(d, alarm):
    """The payload a CloudWatch alarm's Lambda action sends (events/detect-alarm-lambda-action.json), built from
    the alarm as DescribeAlarms shows it after the state change."""
    with open(os.path.join(ROOT, "events", "detect-alarm-lambda-action.json")) as f:
        event = json.load(f)
    changed = alarm["StateUpdatedTimestamp"]
    event.update({"alarmArn": alarm["AlarmArn"], "accountId": alarm["AlarmArn"].split(":")[4],
                  "time": iso_ms(changed), "region": d.args.alarm_region})
    data = event["alarmData"]
    data["alarmName"] = alarm["AlarmName"]
    data["state"] = {"value": alarm["StateValue"], "reason": alarm["StateReason"],
                     "reasonData": alarm.get("StateReasonData", "{}"), "timestamp": iso_ms(changed)}
    data["previousState"]["timestamp"] = iso_ms(changed - timedelta(minutes=5))
    data["configuration"]["description"] = alarm.get("AlarmDescription", "")
    metric = data["configuration"]["metrics"][0]["metricStat"]
    metric["metric"] = {"namespace": alarm["Namespace"], "name": alarm["MetricName"],
                        "dimensions": {x["Name"]: x["Value"] for x in alarm.get("Dimensions", [])}}
    metric["period"] = alarm.get("Period", 60)
    metric["stat"] = alarm.get("Statistic", "Sum")
    return event


def invoke(d, function_arn, payload):
    r = d.lambda_client().invoke(FunctionName=function_arn, Payload=json.dumps(payload).encode())
    body = r["Payload"].read()
    try:
        out = json.loads(body or b"null")
    except ValueError:
        out = body.decode(errors="replace")
    if r.get("FunctionError"):
        raise DrillError(f"{function_arn.split(':')[-1]} failed ({r['FunctionError']}): {json.dumps(out)[:2000]}")
    return out


def trigger(d):
    detect = d.seeded["functions"]["detect"]
    if d.outages and d.direction == "failover":
        for o in d.outages.values():
            o.down = True
        say(f"\n  {clock()}  drill: {d.primary} is DOWN for the functions from now on: their calls signed for "
            f"{d.primary} (moto, gapfill) hang without an answer")
    if d.direction == "failback":
        command = {"command": "failback", "mode": "graceful", "reason": f"pilotlight drill {d.run_id}: back home"}
        phase("failback: manual command to detect")
        say(f"  invoke detect {json.dumps(command)}")
        decision = invoke(d, detect, command)
    elif d.args.dry_run or d.args.graceful:
        command = {"command": "failover", "dry_run": d.args.dry_run,
                   "reason": f"pilotlight drill {d.run_id}" + (" (dry run)" if d.args.dry_run else "")}
        if d.args.graceful:
            command["mode"] = "graceful"
        phase("trigger: manual command to detect")
        say(f"  invoke detect {json.dumps(command)}")
        decision = invoke(d, detect, command)
    else:
        alarm_name = d.seeded["alarms"][0]
        phase(f"trigger: alarm {alarm_name} -> ALARM, its Lambda-action event -> detect")
        cw = d.client("cloudwatch", d.args.alarm_region, "ministack")
        cw.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason=(
            "Threshold Crossed: 3 out of the last 3 datapoints [412.0, 388.0, 405.0] were greater than the "
            "threshold (50.0) (pilotlight drill)"))
        alarm = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
        kv("alarm state", f"{alarm['StateValue']} since {alarm['StateUpdatedTimestamp'].isoformat()} ({alarm['AlarmArn']})")
        event = lambda_action_event(d, alarm)
        decision = invoke(d, detect, event)
    d.decision = decision
    say("  detect decided:")
    for k in ("outcome", "reason", "direction", "dry_run", "execution_name", "execution_arn"):
        if k in decision:
            kv(f"  {k}", decision[k])
    if decision.get("outcome") != "started" or not decision.get("execution_arn"):
        raise DrillError(f"detect did not start an execution: {json.dumps(decision)[:1500]}")
    return decision["execution_arn"]


# ---------------------------------------------------------------------------------------------------------------
# phase: follow the execution
# ---------------------------------------------------------------------------------------------------------------


def history(sfn, arn):
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        r = sfn.get_execution_history(**kw)
        events += r["events"]
        token = r.get("nextToken")
        if not token:
            return events


def summarize_step_output(text):
    """`done=... message` of a step report (docs/contract.md), or the report's headline for notify."""
    try:
        out = json.loads(text)
    except (TypeError, ValueError):
        return ""
    if isinstance(out, dict) and "done" in out:
        return f"{out.get('action', '')}: done={str(out['done']).lower()}  {out.get('message', '')[:160]}"
    if isinstance(out, dict) and "subject" in out:  # notify
        return f"published \"{out['subject']}\""
    if isinstance(out, dict):
        return ", ".join(f"{k}={json.dumps(out[k])[:60]}" for k in list(out)[:4])
    return ""


def error_text(details):
    cause = details.get("cause") or ""
    try:  # Lambda errors: the cause is the function's JSON error (errorType, errorMessage)
        c = json.loads(cause)
        cause = f"{c.get('errorType', '')}: {c.get('errorMessage', cause)}"
    except (TypeError, ValueError, AttributeError):
        pass
    return f"error={details.get('error')}  cause={cause[:800]}"


class HistoryPrinter:
    """One line per state entered, per Lambda result (step reports summarised) and per failure.

    ministack records no state events inside Parallel branches (only their TaskScheduled/Succeeded/Failed), and
    no previousEventId, so a task result is labelled with the top-level Task state running that function, or
    else as `Recover > <function>` (a branch of the Parallel state)."""

    def __init__(self, d):
        # the definition as deployed (substitutions applied), not the file: it need not be JSON before substitution
        asl = json.loads(d.sfn().describe_state_machine(stateMachineArn=d.seeded["state_machine"])["definition"])
        self.binary_of = {arn: b for b, arn in d.seeded["functions"].items()}
        self.parallel = {name for name, st in asl["States"].items() if st["Type"] == "Parallel"}
        self.current = None  # the top-level state last entered
        self.start = None

    def label(self, resource):
        # top-level states run one at a time: a task result belongs to the state last entered, unless that is the
        # Parallel state, whose branches run side by side
        if self.current in self.parallel:
            return f"{self.current} > {self.binary_of.get(resource, resource.split(':')[-1])}"
        return self.current or self.binary_of.get(resource, resource.split(":")[-1])

    def line(self, ev):
        t = ev["type"]
        ts = ev["timestamp"]
        self.start = self.start or ts
        text = None
        if t.endswith("StateEntered"):
            name = ev["stateEnteredEventDetails"]["name"]
            self.current = name
            text = (name, "entered")
        elif t == "TaskSucceeded":
            det = ev["taskSucceededEventDetails"]
            text = (self.label(det.get("resource", "")), "-> " + summarize_step_output(det.get("output")))
        elif t in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut"):
            det = next(v for k, v in ev.items() if k.endswith("EventDetails"))
            text = (self.label(det.get("resource", "")), f"FAILED {error_text(det)}")
        elif t in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            det = next((v for k, v in ev.items() if k.endswith("EventDetails")), {})
            text = ("", f"{t}  {error_text(det)}")
        elif t in ("ExecutionStarted", "ExecutionSucceeded"):
            text = ("", t)
        if text:
            say(f"  {clock(ts)}  +{(ts - self.start).total_seconds():5.1f}s  {text[0]:<30} {text[1]}".rstrip())


def react(d, events):
    """What the world does while the execution runs: once a graceful flow has drained the source region's traffic
    (shift-traffic `drain` done), writes stop and the replica catches up, so ReplicaLag drops to 0."""
    for ev in events:
        if ev["type"] != "TaskSucceeded" or d.drained:
            continue
        try:
            out = json.loads(ev["taskSucceededEventDetails"].get("output") or "null")
        except ValueError:
            continue
        if isinstance(out, dict) and out.get("step") == "shift-traffic" and out.get("action") == "drain" \
                and out.get("done") and not out.get("dry_run"):
            d.drained = True
            side = "dr" if d.direction == "failover" else "primary"
            put_replica_lag(d, 0.0, now_utc(), side)
            say(f"  {clock()}  drill: writes drained -> the replica catches up: ReplicaLag 0 put for "
                f"{d.seeded['db'][side]}")


def follow(d, execution_arn):
    phase(f"follow the execution (GetExecutionHistory every 0.5 s, at most {d.args.timeout:.0f} s)")
    sfn = d.sfn()
    printer = HistoryPrinter(d)
    seen, deadline = 0, time.monotonic() + d.args.timeout
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)
        events = history(sfn, execution_arn)  # after DescribeExecution: a finished execution's events are all in
        for ev in events[seen:]:
            printer.line(ev)
        react(d, events[seen:])
        answer_approval(d)
        seen = len(events)
        if desc["status"] != "RUNNING":
            took = (desc["stopDate"] - desc["startDate"]).total_seconds() if desc.get("stopDate") else None
            kv("execution", f"{desc['status']}" + (f" in {took:.1f}s" if took is not None else ""))
            if desc["status"] != "SUCCEEDED":
                kv("error", f"{desc.get('error')}: {desc.get('cause')}")
            return desc
        if time.monotonic() > deadline:
            raise DrillError(f"execution {execution_arn} still RUNNING after {d.args.timeout:.0f}s "
                             f"(see the history above; raise --timeout or look at the ministack log)")
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------------------
# phase: topology snapshot, report, verification
# ---------------------------------------------------------------------------------------------------------------


def parse_time(text):
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def db_view(d, side):
    """One side's DB instance as the product judges it, or None when there is none with the plan's id."""
    rds = d.client("rds", d.dr if side == "dr" else d.primary)
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
    }
    # the product's rule (shared/src/rds.rs InstanceView::is_replica): a replica until promoted; moto keeps the
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
    if "health_checks" in dns:
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


def read_queue(d, wait=1):
    """Takes the messages waiting on the operators' queue into d.inbox: (subject, parsed message or text)."""
    sqs = d.client("sqs", d.dr, d.seeded["sns"]["where"])
    r = sqs.receive_message(QueueUrl=d.seeded["sns"]["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    msgs = r.get("Messages", [])
    for m in msgs:
        env = json.loads(m["Body"])
        try:
            body = json.loads(env.get("Message", ""))
        except ValueError:
            body = env.get("Message", "")
        d.inbox.append((env.get("Subject") or "", body))
        sqs.delete_message(QueueUrl=d.seeded["sns"]["queue_url"], ReceiptHandle=m["ReceiptHandle"])
    return len(msgs)


def notifications(d, since=0, wait_seconds=5.0):
    """The messages on the operators' queue from d.inbox[since] on. Reads until the queue is empty after a report
    arrived, or for wait_seconds (SNS -> SQS delivery is asynchronous)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        if not read_queue(d) and (time.monotonic() > deadline
                                  or any("report" in subj.lower() for subj, _ in d.inbox[since:])):
            return d.inbox[since:]


def find_key(value, names):
    """The first string under one of `names` anywhere in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in names and isinstance(v, str) and v:
                return v
            found = find_key(v, names)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = find_key(v, names)
            if found:
                return found
    return None


def approval_timeout(d):
    """Seconds the gate waits: the drill answers within seconds, so 120 s only catches a lost answer; the timeout
    drill leaves the request unanswered and must see the execution abort after 3 s."""
    return 3 if d.args.approval == "timeout" else 120


def answer_approval(d):
    """The operator's part of the approval gate: take the task token from the approval request on the operators'
    queue and answer it through detect, as the notification tells operators to."""
    if not d.args.approval or d.approval_answered:
        return
    read_queue(d, wait=0)
    for subject, body in d.inbox:
        token = find_key(body, ("task_token", "token", "taskToken")) if isinstance(body, (dict, list)) else None
        if token is None and isinstance(body, str):
            m = re.search(r'"?(?:task_token|token)"?\s*[:=]\s*"([^"]+)"', body)
            token = m.group(1) if m else None
        if token and token not in d.used_tokens:
            d.used_tokens.add(token)
            d.approval_requested = True
            if d.args.approval == "timeout":
                say(f"  {clock()}  drill: approval request received ({subject}); nobody answers "
                    f"(the gate times out after {approval_timeout(d)} s)")
                return
            d.approval_answered = True
            command = {"command": d.args.approval, "token": token, "reason": f"pilotlight drill {d.run_id}"}
            say(f"  {clock()}  drill: approval request received ({subject}); operator answers detect "
                f"{json.dumps({**command, 'token': token[:12] + '...'})}")
            decision = invoke(d, d.seeded["functions"]["detect"], command)
            say(f"  {clock()}  drill: detect -> {decision.get('outcome')}: {decision.get('reason')}")
            return


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


def find_report(out):
    """The report (shared/src/report.rs: timeline, RTO, RPO, changes) inside the execution output, if any."""
    if isinstance(out, dict):
        if "timeline" in out:
            return out
        for key in ("report", "body"):
            if isinstance(out.get(key), dict) and "timeline" in out[key]:
                return out[key]
    return None


def show(d, execution):
    phase("execution output (the report)")
    text = execution.get("output")
    if not text:
        say("  (no output)")
        return
    if d.args.write_output:
        with open(d.args.write_output, "w") as f:
            f.write(text)
    try:
        out = json.loads(text)
    except ValueError:
        say(text[:4000])
        return
    report = find_report(out)
    if report is None:
        say("  (no report shape recognised: timeline/rto_seconds missing; the output as is, cut at 4000 characters)")
        say(json.dumps(out, indent=2)[:4000])
        return
    kv("summary", report.get("summary", ""))
    kv("outcome", f"{report.get('outcome')}" + (f"  error {json.dumps(report['error'])}" if report.get("error") else ""))
    rto = report.get("rto_seconds")
    kv("RTO (trigger -> traffic)", f"{rto} s" if rto is not None
       else "n/a" + (" (dry run: nothing moved)" if report.get("dry_run") else ""))
    kv("RPO (replica lag)", f"{report.get('rpo_seconds')} s")
    kv("db/compute overlap", f"{report.get('parallel_overlap_seconds')} s")
    kv("built from", report.get("history", "the execution state"))
    say("  timeline:")
    for t in report.get("timeline", []):
        calls = t.get("calls", 1)
        say(f"    {t.get('step', ''):<24} {t.get('seconds', 0):6.2f}s  {calls:>2} call{'s' if calls != 1 else ' '}  "
            f"done={str(t.get('done')).lower():<5}  {t.get('message', '')[:150]}")
    say(f"  changes ({len(report.get('changes', []))}):")
    for c in report.get("changes", []):
        say(f"    {'applied' if c.get('applied') else 'planned'}  {c.get('resource')}  {c.get('field')}: "
            f"{json.dumps(c.get('from'))} -> {json.dumps(c.get('to'))}")
    if d.args.write_output:
        say(f"  (full execution output: {d.args.write_output})")


def report_dial_steps(d, execution, side):
    """The dials the report (execution output) says `side`'s endpoint group was set to, in order, and where the
    report's step results came from (its `history`)."""
    try:
        report = find_report(json.loads(execution.get("output") or "null"))
    except ValueError:
        report = None
    if report is None:
        return None, "no report in the execution output"
    arn = d.plan[f"PILOTLIGHT_{side.upper()}_ENDPOINT_GROUP_ARN"]
    dials = [c.get("to") for c in report.get("changes", [])
             if c.get("resource") == arn and c.get("field") == "TrafficDialPercentage"]
    return dials, report.get("history", "")


def check_report_dials(d, execution, check, side, graceful):
    """Every dial step is in the report, not only the loop's last one (the state keeps only that)."""
    steps = [int(x) for x in d.plan.get("PILOTLIGHT_DIAL_STEPS", "25,50,100").split(",")] if graceful else [100]
    dials, history = report_dial_steps(d, execution, side)
    check(dials == steps, f"the report lists every {side} dial step: {dials} (expected {steps}; {history})")


def flow_lock_released(d):
    """(ok, what): the run released the flow lock detect took (docs/contract.md "One flow at a time")."""
    table = d.plan.get("PILOTLIGHT_LOCK_TABLE")
    item = d.client("dynamodb", d.dr, "ministack").get_item(TableName=table, Key={"lock": {"S": "flow"}},
                                                           ConsistentRead=True).get("Item")
    return item is None, f"flow lock {table} released ({'held by ' + item['holder']['S'] if item else 'no item'})"


def verify(d, before, after, execution, inbox):
    phase("verify")
    checks = []

    def check(ok, what):
        checks.append(ok)
        say(f"  [{'PASS' if ok else 'FAIL'}] {what}")

    if d.outages:
        kv("calls into the failed region", f"{sum(o.blocked for o in d.outages.values())} "
           f"(hung until the caller's timeout: moto {d.outages['moto'].blocked}, gapfill {d.outages['gapfill'].blocked})")
    check(*flow_lock_released(d))
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
    subjects = [s for s, _ in inbox]
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
        mn, desired, mx = capacity(d.plan["PILOTLIGHT_DR_CAPACITY"])
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
    if rejected:
        check(any("fail" in s.lower() or "reject" in s.lower() for s, _ in inbox),
              "a failure/rejection notification reached the operators' topic")
    else:
        check(any(is_report(s, b) for s, b in inbox), "a report notification reached the operators' topic")
    return all(checks)


def verify_failback(d, original, after, execution, inbox):
    phase("verify the failback")
    checks = []

    def check(ok, what):
        checks.append(ok)
        say(f"  [{'PASS' if ok else 'FAIL'}] {what}")

    check(execution["status"] == "SUCCEEDED", f"failback execution {execution['status']}")
    check(*flow_lock_released(d))
    kv("notifications", f"{len(inbox)} on the operators' queue since the failback started")
    for s, _ in inbox:
        say(f"      - {s or '(no subject)'}")
    p, dr = after["db_primary"], after["db"]
    check(p is not None and p["writer"], f"primary DB {d.seeded['db']['primary']} is the writer again "
          f"({'missing' if p is None else p['status']})")
    check(dr is not None and dr["is_replica"] and d.seeded["db"]["primary"] in (dr["replica_source"] or ""),
          f"re-protected: DR DB {d.seeded['db']['dr']} is a read replica of the primary "
          f"(source {None if dr is None else dr['replica_source']})")
    mn, desired, mx = capacity(d.plan["PILOTLIGHT_PRIMARY_CAPACITY"])
    a = after["primary"]
    check(a["min"] >= mn and a["desired"] >= desired and a["max"] >= mx and a["in_service_healthy"] >= desired,
          f"primary ASG at {a['min']}/{a['desired']}/{a['max']} with {a['in_service_healthy']} healthy instances "
          f"(plan {mn}/{desired}/{mx})")
    b = after["dr"]
    check((b["min"], b["desired"], b["max"]) == (0, 0, 0),
          f"re-protected: DR ASG back to the pilot light 0/0/0 (is {b['min']}/{b['desired']}/{b['max']})")
    check(after["dials"] == {"primary": 100, "dr": 0},
          f"GA dials 100/0 (are {after['dials']['primary']:g}/{after['dials']['dr']:g})")
    check(after["dns"]["answer"] == d.seeded["dns"]["primary_value"],
          f"DNS {d.seeded['dns']['record']} answers the primary endpoint ({after['dns']['answer']})")
    check_report_dials(d, execution, check, "primary", graceful=True)
    check(any("report" in s.lower() for s, _ in inbox), "a failback report notification reached the operators' topic")
    kv("DB instances", "; ".join(f"{side}: {', '.join(ids)}" for side, ids in after["db_instances"].items())
       + f" (before the drill: {'; '.join(f'{k}: {chr(44).join(v)}' for k, v in original['db_instances'].items())})")
    return all(checks)


# ---------------------------------------------------------------------------------------------------------------


def main(argv):
    args = parse_args(argv)
    if boto3 is None:
        sys.exit("drill.py needs boto3: run it with .tools/moto/bin/python (scripts/drill.sh does)")
    d = Drill(args)
    say(f"pilotlight drill {d.run_id}: {'DRY RUN, ' if args.dry_run else ''}primary {d.primary}, DR {d.dr}, "
        f"alarms in {args.alarm_region}; moto {args.moto_url}, gapfill {args.gapfill_url}, ministack {args.ministack_url}")
    try:
        seed_moto(d)
        seed_gapfill(d)
        seed_ministack(d)
        before = snapshot(d)
        print_topology(d, before, "topology before")
        if args.deploy == "template" and d.plan_dns_mode() == "records" \
                and not re.match(r"^Z[A-Z0-9]{1,31}$", d.seeded["dns"]["zone_id"]):
            say(f"\n  note: moto's hosted zone id {d.seeded['dns']['zone_id']} does not match template.yaml's HostedZoneId "
                f"pattern ^Z[A-Z0-9]{{1,31}}$ (AWS zone ids start with Z): deploying with direct API calls instead")
            args.deploy = "api"
        if args.deploy == "template":
            deploy_template(d)
        else:
            deploy(d)
        execution_arn = trigger(d)
        execution = follow(d, execution_arn)
        show(d, execution)
        after = snapshot(d)
        print_topology(d, after, "topology after")
        inbox = notifications(d)
        ok = verify(d, before, after, execution, inbox)
        if ok and args.failback:
            d.direction, d.drained, d.approval_answered = "failback", False, False
            since = len(d.inbox)
            execution = follow(d, trigger(d))
            show(d, execution)
            back = snapshot(d)
            print_topology(d, back, "topology after the failback")
            ok = verify_failback(d, before, back, execution, notifications(d, since))
    except DrillError as e:
        say(f"\nDRILL FAILED: {e}")
        return 1
    except ClientError as e:
        say(f"\nDRILL FAILED (emulator call): {e}")
        traceback.print_exc()
        return 1
    total = time.monotonic() - T0
    say(f"\n{'DRILL PASSED' if ok else 'DRILL FAILED'} ({'dry run, ' if args.dry_run else ''}drill.py {total:.1f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
