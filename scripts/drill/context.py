"""One drill run: its endpoints, the names it gives resources, what it seeded and deployed, the AWS clients."""

import json
import urllib.request
import uuid

import boto3
from botocore.config import Config

from .outage import RegionOutage

# moto's and gapfill's account. ministack takes the account from a 12-digit access key id, so using this as the
# access key puts the alarms, functions and state machine in the same account as everything else; ministack also
# gives each function process its own account id as AWS_ACCESS_KEY_ID, so the functions land there too.
ACCOUNT = "123456789012"
GLOBAL_ACCELERATOR_REGION = "us-west-2"  # the only region Global Accelerator's API answers in


class Drill:
    """Everything one drill run knows: endpoints, names, the seeded resources, the deployed plan."""

    def __init__(self, args, contract):
        self.args = args
        self.contract = contract  # template.yaml and the pilotlight CLI (contract.Contract)
        self.primary = args.primary_region
        self.dr = args.dr_region
        self.run_id = uuid.uuid4().hex[:6]
        self.p = f"{args.name_prefix}-{self.run_id}"
        self.plan = {}  # the validated plan the functions got (check-plan --json "plan")
        self.inbox = []  # (subject, message) read from the operators' queue
        self.approval_answered = False
        self.approval_requested = False
        self.used_tokens = set()
        self.outages = {}
        if args.primary_outage:
            self.outages = {"moto": RegionOutage(args.moto_url, args.primary_region),
                            "gapfill": RegionOutage(args.gapfill_url, args.primary_region)}
        self.health = None  # --probe: the primary ALB's health path (probe.HealthServer)
        self.faults = None  # --throttle: the fault proxy in front of moto and gapfill (throttle.FaultProxy)
        self.template_parameters = {}  # template parameters beside the plan's (--probe: ProbeUrls, M of N)
        self.hooks = []  # called by follow() with each batch of new history events: hook(d, execution_arn, events)
        self.direction = "failover"
        self.drained = False
        self.decision = None
        self.seeded = {}  # what the seeding created, by role
        self.boto_cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)

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

    def name(self, suffix):
        return f"{self.p}-{suffix}"

    def region_of(self, side):
        return self.dr if side == "dr" else self.primary

    def gapfill_admin(self, path, body):
        req = urllib.request.Request(self.args.gapfill_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def approval_timeout(self):
        """Seconds the approval gate waits: the drill answers within seconds, so 120 s only catches a lost answer;
        the timeout drill leaves the request unanswered and must see the execution abort after 3 s."""
        return 3 if self.args.approval == "timeout" else 120
