#!/usr/bin/env python3
"""faultproxy: a fault-injecting HTTP proxy for pilotlight's tests, in front of any AWS-API emulator.

Test support only -- not a product component, never deployed. Loopback only: it binds 127.0.0.1 and forwards only
to loopback upstreams. Point an SDK client's endpoint at it; every request is forwarded unchanged (method, path,
query, headers including Host, body -- SigV4 signatures stay valid) to the upstream emulator, and its answer is
returned unchanged, unless a rule injects a fault for that request's service / region / operation:

* ``throttle``            HTTP 400 with the protocol's throttling error (code Throttling / ThrottlingException /
                          RequestLimitExceeded), so the SDK classifies it as throttling
* ``error500``/``error503`` that status with the protocol's InternalFailure / ServiceUnavailable error
* ``deny``                HTTP 403 with the protocol's AccessDenied error (AccessDeniedException / AccessDenied /
                          UnauthorizedOperation): a non-retryable refusal, e.g. an IAM or SCP deny
* ``slow``/``delay``      wait ``delay_ms``, then forward (``delay`` is the timing-model name; same behaviour)
* ``blackhole``           read the request, never answer; the socket stays open until the client gives up, the
                          proxy stops, or 10 minutes pass
* ``close``               read the request, close the connection without an answer (EOF mid-call)
* ``reset``               read the request, reset the connection (TCP RST: a server that died mid-call)
* ``rewrite``             forward, then replace ``find`` by ``replace`` in the answer body (e.g. an RDS status)
* ``db-status``           an RDS DB instance in a transient status for a while, as AWS shows it (no emulator moves
                          an instance through statuses): the first ``times`` DescribeDBInstances answers that list
                          ``db_instance`` show its ``DBInstanceStatus`` as ``status`` (e.g. ``backing-up``), and
                          meanwhile every mutating RDS call naming it (``DBInstanceIdentifier`` or
                          ``SourceDBInstanceIdentifier``, id or ARN; tags excepted, AWS tags in any status) is
                          answered HTTP 400 ``InvalidDBInstanceState``, as AWS answers PromoteReadReplica /
                          ModifyDBInstance / CreateDBInstanceReadReplica on a busy instance. Once ``times`` answers
                          were rewritten the window is closed and everything passes unchanged. With
                          ``global_cluster`` instead of ``db_instance``, an Aurora global cluster: its ``Status`` in
                          DescribeGlobalClusters, and mutating calls naming its ``GlobalClusterIdentifier``
                          (SwitchoverGlobalCluster, FailoverGlobalCluster, ...) answered ``InvalidGlobalClusterStateFault``
* ``timing``              the AWS timing model (no emulator makes a change take time): with ``db_seconds``,
                          ``compute_seconds``, ``ga_seconds``, ``dns_seconds`` (any of them; also the command-line flag
                          ``--timing db=20,compute=30,ga=2,dns=2``), a change the upstream accepted is shown in
                          progress for that long, as AWS shows it:
                          - PromoteReadReplica of an instance: DescribeDBInstances shows it ``modifying`` for the first
                            half of T_db, then ``rebooting``, with its "read replication" status info (still a replica)
                            until T_db passed; mutating calls naming it are refused ``InvalidDBInstanceState`` meanwhile
                          - UpdateAutoScalingGroup / SetDesiredCapacity to a capacity above 0: the group's instances
                            are ``Pending`` for the first half of T_compute, then ``InService``; DescribeTargetHealth in
                            that region answers ``initial`` (Elb.RegistrationInProgress) instead of ``healthy`` until
                            T_compute passed
                          - UpdateEndpointGroup: the accelerator reads ``IN_PROGRESS`` (DescribeAccelerator,
                            ListAccelerators) for T_ga
                          - ChangeResourceRecordSets: the change reads ``PENDING`` (its answer, GetChange) for T_dns
                          ``GET /_faultproxy/timing`` lists every modelled change with when it began and became
                          effective (writable, healthy, deployed, INSYNC), for the bench. Other rules take precedence
                          over it on the requests they match.

The operation is identified the way the AWS protocols carry it: ``X-Amz-Target`` (awsJson), ``Action=`` in the
form body or query (awsQuery, ec2), ``/service/<S>/operation/<Op>`` (smithy-rpc-v2-cbor), REST routes (Route 53,
Backup); service and region come from the SigV4 credential scope of the ``Authorization`` header.

Admin API (never forwarded), JSON: ``POST|GET|DELETE /_faultproxy/rules``, ``GET|DELETE /_faultproxy/requests``,
``GET /_faultproxy/health``. See tests/support/README.md.

    python3 tests/support/faultproxy.py --port 0 --upstream http://127.0.0.1:5000 \
        [--upstream-for globalaccelerator=http://127.0.0.1:5100]
    # prints: faultproxy listening on http://127.0.0.1:PORT
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ADMIN_PREFIX = "/_faultproxy/"
MAX_HOLD_S = 600.0            # blackhole: give up after 10 minutes
MAX_DELAY_MS = 600_000        # slow/delay: at most 10 minutes
MAX_BODY = 64 * 1024 * 1024   # request bodies larger than this are refused
MAX_LOG = 10_000              # request log entries kept (oldest dropped)
UPSTREAM_TIMEOUT_S = 120.0
FAULTS = {"throttle", "error500", "error503", "deny", "slow", "delay", "blackhole", "close", "reset", "rewrite",
          "db-status", "timing"}
TIMING_FIELDS = {"db_seconds", "compute_seconds", "ga_seconds", "dns_seconds"}
TIMING_NAMES = {"db": "db_seconds", "compute": "compute_seconds", "ga": "ga_seconds", "dns": "dns_seconds"}
RULE_FIELDS = {"service", "region", "operation", "mutating", "fault", "delay_ms", "times", "after", "code",
               "message", "find", "replace", "db_instance", "global_cluster", "status"} | TIMING_FIELDS
# db-status: calls that work in any instance status (AWS tags a busy instance), never refused
ANY_STATUS_OPERATIONS = {"AddTagsToResource", "RemoveTagsFromResource"}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
CRED_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
CBOR_PATH_RE = re.compile(r"^/service/([^/]+)/operation/([^/?]+)$")
READ_ONLY_PREFIXES = ("Describe", "List", "Get")
STOP = threading.Event()      # set on SIGTERM/SIGINT: wakes every wait

# REST protocols: (service, method, path regex, operation). Route 53 (rest-xml) and Backup (rest-json), the
# operations pilotlight and its tests use (botocore route53 2013-04-01 / backup 2018-11-15 HTTP bindings).
_R53 = "/2013-04-01"
REST_ROUTES = [
    ("route53", "POST", rf"{_R53}/hostedzone/[^/]+/rrset/?", "ChangeResourceRecordSets"),
    ("route53", "GET", rf"{_R53}/hostedzone/[^/]+/rrset/?", "ListResourceRecordSets"),
    ("route53", "GET", rf"{_R53}/change/[^/]+", "GetChange"),
    ("route53", "POST", rf"{_R53}/healthcheck/?", "CreateHealthCheck"),
    ("route53", "GET", rf"{_R53}/healthcheck/?", "ListHealthChecks"),
    ("route53", "GET", rf"{_R53}/healthcheck/[^/]+/status", "GetHealthCheckStatus"),
    ("route53", "POST", rf"{_R53}/healthcheck/[^/]+", "UpdateHealthCheck"),
    ("route53", "GET", rf"{_R53}/healthcheck/[^/]+", "GetHealthCheck"),
    ("route53", "DELETE", rf"{_R53}/healthcheck/[^/]+", "DeleteHealthCheck"),
    ("route53", "POST", rf"{_R53}/hostedzone/?", "CreateHostedZone"),
    ("route53", "GET", rf"{_R53}/hostedzone/?", "ListHostedZones"),
    ("route53", "GET", rf"{_R53}/hostedzonesbyname/?", "ListHostedZonesByName"),
    ("route53", "GET", rf"{_R53}/hostedzone/[^/]+", "GetHostedZone"),
    ("route53", "DELETE", rf"{_R53}/hostedzone/[^/]+", "DeleteHostedZone"),
    ("backup", "GET", r"/backup-vaults/[^/]+/recovery-points/?", "ListRecoveryPointsByBackupVault"),
    ("backup", "GET", r"/backup-vaults/[^/]+/recovery-points/.+", "DescribeRecoveryPoint"),
    ("backup", "GET", r"/backup-vaults/?", "ListBackupVaults"),
    ("backup", "PUT", r"/backup-vaults/[^/]+", "CreateBackupVault"),
    ("backup", "GET", r"/backup-vaults/[^/]+", "DescribeBackupVault"),
    ("backup", "DELETE", r"/backup-vaults/[^/]+", "DeleteBackupVault"),
    ("backup", "PUT", r"/backup-jobs/?", "StartBackupJob"),
    ("backup", "GET", r"/backup-jobs/[^/]+", "DescribeBackupJob"),
    ("backup", "PUT", r"/copy-jobs/?", "StartCopyJob"),
    ("backup", "GET", r"/copy-jobs/[^/]+", "DescribeCopyJob"),
    ("backup", "PUT", r"/restore-jobs/?", "StartRestoreJob"),
    ("backup", "GET", r"/restore-jobs/[^/]+", "DescribeRestoreJob"),
]
REST_ROUTES = [(s, m, re.compile(p), op) for s, m, p, op in REST_ROUTES]
# X-Amz-Target prefixes -> SigV4 service names (used only when the request carries no credential scope)
# awsQueryCompatible services: their JSON/CBOR errors also carry the Query error code in x-amzn-query-error,
# which the SDKs prefer over __type (CloudWatch answers Query-style "Throttling" there).
QUERY_COMPATIBLE = {"monitoring", "sqs"}
TARGET_SERVICES = {"GlobalAccelerator_V20180706": "globalaccelerator", "AWSStepFunctions": "states",
                   "AmazonSSM": "ssm", "GraniteServiceVersion20100801": "monitoring"}


class BadRule(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- identification
def identify(method: str, path: str, query: str, headers, body: bytes) -> dict:
    """{service, region, operation, protocol} of one request, from what the AWS protocols put on the wire."""
    service = region = operation = None
    m = CRED_SCOPE_RE.search(headers.get("Authorization", ""))
    if m:
        region, service = m.group(1), m.group(2)
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    target = headers.get("X-Amz-Target")
    cbor = CBOR_PATH_RE.match(path)
    if target:
        prefix, _, operation = target.rpartition(".")
        service = service or TARGET_SERVICES.get(prefix)
        protocol = "json"
    elif cbor or headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
        operation = cbor.group(2) if cbor else None
        service = service or TARGET_SERVICES.get(cbor.group(1) if cbor else "")
        protocol = "cbor"
    else:
        form = parse_qs(query)
        if method == "POST" and ctype == "application/x-www-form-urlencoded":
            form.update(parse_qs(body.decode("utf-8", "replace")))
        if "Action" in form:
            operation = form["Action"][-1]
            protocol = "ec2" if service == "ec2" else "query"
        else:
            for svc, verb, rx, op in REST_ROUTES:
                if verb == method and rx.fullmatch(path) and (service is None or service == svc):
                    operation, service = op, svc
                    break
            protocol = "rest-xml" if service == "route53" else "rest-json"
    return {"service": service, "region": region, "operation": operation, "protocol": protocol}


def is_mutating(operation: str | None) -> bool | None:
    """Best effort: an operation not named Describe*/List*/Get* changes something."""
    return None if operation is None else not operation.startswith(READ_ONLY_PREFIXES)


# ---------------------------------------------------------------------------------------------- rules
def _check_rule(rule) -> dict:
    if not isinstance(rule, dict):
        raise BadRule(f"a rule is a JSON object, not {rule!r}")
    unknown = set(rule) - RULE_FIELDS
    if unknown:
        raise BadRule(f"unknown rule field(s) {sorted(unknown)}; known: {sorted(RULE_FIELDS)}")
    if rule.get("fault") not in FAULTS:
        raise BadRule(f"fault must be one of {sorted(FAULTS)}, not {rule.get('fault')!r}")
    for key in ("service", "region", "operation"):
        v = rule.get(key)
        if v is not None and not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
            raise BadRule(f"{key} is a string or a list of strings, not {v!r}")
    if "mutating" in rule and not isinstance(rule["mutating"], bool):
        raise BadRule("mutating is true or false")
    for key, hi in (("delay_ms", MAX_DELAY_MS), ("times", None), ("after", None)):
        v = rule.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0 or (hi and v > hi)):
            raise BadRule(f"{key} is an integer in 0..{hi or 'inf'}, not {v!r}")
    if rule["fault"] in ("slow", "delay") and "delay_ms" not in rule:
        raise BadRule(f"fault {rule['fault']} needs delay_ms")
    if rule["fault"] == "rewrite" and not (isinstance(rule.get("find"), str) and isinstance(rule.get("replace"), str)):
        raise BadRule("fault rewrite needs find and replace (strings)")
    if rule["fault"] == "db-status":
        names = [k for k in ("db_instance", "global_cluster") if k in rule]
        if not (len(names) == 1 and isinstance(rule[names[0]], str) and rule[names[0]]
                and isinstance(rule.get("status"), str) and re.fullmatch(r"[a-z][a-z-]*", rule["status"])):
            raise BadRule("fault db-status needs db_instance or global_cluster (an identifier, one of them) and "
                          "status (e.g. backing-up)")
        if not isinstance(rule.get("times"), int) or rule["times"] < 1:
            raise BadRule("fault db-status needs times >= 1 (how many DescribeDBInstances answers show the status)")
        if set(rule) & {"service", "operation", "mutating", "after", "find", "replace", "delay_ms"}:
            raise BadRule("fault db-status takes db_instance or global_cluster, status, times and optionally region, "
                          "code, message")
    if rule["fault"] == "timing":
        if set(rule) - TIMING_FIELDS - {"fault"} or not set(rule) & TIMING_FIELDS:
            raise BadRule(f"fault timing takes only {sorted(TIMING_FIELDS)} (at least one)")
        for key in TIMING_FIELDS & set(rule):
            v = rule[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 3600:
                raise BadRule(f"{key} is a number of seconds in 0..3600, not {v!r}")
    elif set(rule) & TIMING_FIELDS:
        raise BadRule(f"{sorted(TIMING_FIELDS)} belong to fault timing")
    return {**rule, "matched": 0, "applied": 0}


def parse_timing(text: str) -> dict:
    """`db=20,compute=30,ga=2,dns=2` -> a timing rule."""
    rule = {"fault": "timing"}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in TIMING_NAMES:
            raise BadRule(f"--timing takes NAME=SECONDS with NAME one of {sorted(TIMING_NAMES)}, not {item!r}")
        try:
            rule[TIMING_NAMES[name]] = float(value)
        except ValueError:
            raise BadRule(f"--timing {name}: seconds, not {value!r}") from None
    return _check_rule(rule)


def _field_matches(want, got) -> bool:
    if want is None:
        return True
    return got in want if isinstance(want, list) else got == want


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.requests: list[dict] = []

    def set_rules(self, rules):
        if not isinstance(rules, list):
            raise BadRule('body is {"rules": [...]}')
        checked = [_check_rule(r) for r in rules]
        with self.lock:
            self.rules = checked

    def pick(self, ident: dict, mutating) -> dict | None:
        """The first rule that matches and whose after/times window holds this match; counts matches."""
        with self.lock:
            for rule in self.rules:
                if rule["fault"] in ("db-status", "timing"):  # see db_status(), timing()
                    continue
                if not (_field_matches(rule.get("service"), ident["service"])
                        and _field_matches(rule.get("region"), ident["region"])
                        and _field_matches(rule.get("operation"), ident["operation"])
                        and ("mutating" not in rule or rule["mutating"] == mutating)):
                    continue
                rule["matched"] += 1
                n, after, times = rule["matched"], rule.get("after", 0), rule.get("times")
                if n > after and (times is None or n <= after + times):
                    rule["applied"] += 1
                    return dict(rule)
            return None

    def db_status(self, ident: dict) -> dict | None:
        """The open db-status rule for an RDS request (its window not yet used up), or None."""
        if ident["service"] != "rds":
            return None
        with self.lock:
            for rule in self.rules:
                if (rule["fault"] == "db-status" and _field_matches(rule.get("region"), ident["region"])
                        and rule["applied"] < rule["times"]):
                    rule["matched"] += 1
                    return rule
            return None

    def timing(self) -> dict | None:
        """The timing rule, if one is set (the last one wins)."""
        with self.lock:
            found = [r for r in self.rules if r["fault"] == "timing"]
            return found[-1] if found else None

    def count_applied(self, rule: dict):
        with self.lock:
            rule["applied"] += 1

    def log(self, entry: dict):
        with self.lock:
            self.requests.append(entry)
            del self.requests[:-MAX_LOG]

    def update(self, entry: dict, **fields):
        with self.lock:
            entry.update(fields)


STATE = State()


# ---------------------------------------------------------------------------------------------- timing model
class Timing:
    """The changes the timing rule is modelling: each began when the upstream accepted it and is effective
    `seconds` later (AWS's own time for it: promotion, launch + health checks, deployment, propagation)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changes: list[dict] = []

    def begin(self, kind: str, region, resource: str, seconds: float, **extra):
        if seconds <= 0:
            return
        now = time.time()
        with self.lock:
            # a repeated change (a retried call) while one is open does not restart the clock, as on AWS
            if any(c["kind"] == kind and c["resource"] == resource and c["effective_at"] > now for c in self.changes):
                return
            self.changes.append({"kind": kind, "region": region, "resource": resource, "began_at": round(now, 3),
                                 "seconds": seconds, "effective_at": round(now + seconds, 3), **extra})

    def open(self, kind: str, region=None) -> list[tuple[dict, float]]:
        """(change, fraction of its time passed) of the changes of this kind still in progress."""
        now = time.time()
        with self.lock:
            return [(c, (now - c["began_at"]) / c["seconds"]) for c in self.changes
                    if c["kind"] == kind and c["effective_at"] > now and (region is None or c["region"] == region)]

    def clear(self):
        with self.lock:
            self.changes.clear()


TIMING = Timing()
REPLICATION_INFO = ("<StatusInfos><DBInstanceStatusInfo><StatusType>read replication</StatusType>"
                    "<Normal>true</Normal><Status>replicating</Status></DBInstanceStatusInfo></StatusInfos>")


def rewrite_promoting(body: bytes, instance: str, status: str) -> bytes:
    """DescribeDBInstances' answer with `instance` still promoting: `status`, and its read-replication status
    info (AWS keeps it until the promotion finished: the instance still reads as a replica)."""
    text = body.decode("utf-8", "replace")

    def one(m):
        block = m.group(0)
        if f"<DBInstanceIdentifier>{_xml_escape(instance)}</DBInstanceIdentifier>" not in block:
            return block
        block = re.sub(r"<DBInstanceStatus>[^<]*</DBInstanceStatus>",
                       f"<DBInstanceStatus>{status}</DBInstanceStatus>", block, count=1)
        block = re.sub(r"<StatusInfos\s*/>|<StatusInfos>.*?</StatusInfos>", "", block, flags=re.S)
        return block.replace("</DBInstance>", REPLICATION_INFO + "</DBInstance>")

    return re.sub(r"<DBInstance>.*?</DBInstance>", one, text, flags=re.S).encode()


def _instance_id(value: str) -> str:
    return value.rsplit(":db:", 1)[-1]


# ---------------------------------------------------------------------------------------------- fault shapes
def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _cbor_text(s: str) -> bytes:
    """A CBOR text string (major type 3)."""
    b = s.encode()
    n = len(b)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 0x100:
        head = bytes([0x78, n])
    elif n < 0x10000:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x7A]) + n.to_bytes(4, "big")
    return head + b


def cbor_error_body(code: str, message: str) -> bytes:
    """{"__type": code, "message": message} as CBOR: a 2-entry map (0xA2) of text strings."""
    return b"\xa2" + _cbor_text("__type") + _cbor_text(code) + _cbor_text("message") + _cbor_text(message)


# (status, json/rest code, query/xml code, ec2 code)
ERROR_CODES = {
    "throttle": (400, "ThrottlingException", "Throttling", "RequestLimitExceeded"),
    "error500": (500, "InternalFailure", "InternalFailure", "InternalError"),
    "error503": (503, "ServiceUnavailable", "ServiceUnavailable", "Unavailable"),
    "deny": (403, "AccessDeniedException", "AccessDenied", "UnauthorizedOperation"),
}


def names_instance(form: dict, instance: str) -> bool:
    """Whether an awsQuery RDS request names the DB instance (identifier, or an ARN ending in :db:<id>)."""
    for key in ("DBInstanceIdentifier", "SourceDBInstanceIdentifier"):
        for value in form.get(key, []):
            if value == instance or value.endswith(f":db:{instance}"):
                return True
    return False


def names_global_cluster(form: dict, global_cluster: str) -> bool:
    """Whether an awsQuery RDS request names the global cluster (identifier, or an ARN ending in :global-cluster:<id>)."""
    return any(v == global_cluster or v.endswith(f":global-cluster:{global_cluster}")
               for v in form.get("GlobalClusterIdentifier", []))


def rewrite_global_status(body: bytes, global_cluster: str, status: str) -> tuple[bytes, bool]:
    """DescribeGlobalClusters' answer with `global_cluster`'s own Status replaced (not its FailoverState's); whether
    it was listed. Parsed, not matched: the list's items and the members' items share the tag GlobalClusterMember."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return body, False
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""

    def q(tag):
        return f"{{{ns}}}{tag}" if ns else tag

    found = False
    for clusters in root.iter(q("GlobalClusters")):
        for cluster in clusters:
            own = cluster.find(q("Status"))
            if cluster.findtext(q("GlobalClusterIdentifier")) == global_cluster and own is not None:
                own.text = status
                found = True
    if not found:
        return body, False
    ET.register_namespace("", ns)
    return ET.tostring(root, encoding="utf-8"), True


def rewrite_db_status(body: bytes, instance: str, status: str) -> tuple[bytes, bool]:
    """DescribeDBInstances' answer with `instance`'s DBInstanceStatus replaced; whether it was listed."""
    text = body.decode("utf-8", "replace")
    found = False

    def one(m):
        nonlocal found
        block = m.group(0)
        if f"<DBInstanceIdentifier>{_xml_escape(instance)}</DBInstanceIdentifier>" not in block:
            return block
        found = True
        return re.sub(r"<DBInstanceStatus>[^<]*</DBInstanceStatus>",
                      f"<DBInstanceStatus>{status}</DBInstanceStatus>", block, count=1)

    out = re.sub(r"<DBInstance>.*?</DBInstance>", one, text, flags=re.S)
    return out.encode(), found


def error_response(fault: str, ident: dict, rule: dict, req_ctype: str) -> tuple[int, dict, bytes]:
    """(status, headers, body) of an injected AWS error in the wire format of the request's protocol."""
    status, json_code, query_code, ec2_code = ERROR_CODES[fault]
    message = rule.get("message") or f"faultproxy: injected {fault}"
    request_id = str(uuid.uuid4())
    sender = "Sender" if status < 500 else "Receiver"
    headers = {"x-amzn-RequestId": request_id}
    protocol = ident["protocol"]
    if protocol == "json":
        code = rule.get("code") or json_code
        ctype = req_ctype if req_ctype.startswith("application/x-amz-json") else "application/x-amz-json-1.1"
        headers.update({"Content-Type": ctype, "x-amzn-ErrorType": code})
        if ident["service"] in QUERY_COMPATIBLE:
            headers["x-amzn-query-error"] = f"{rule.get('code') or query_code};{sender}"
        return status, headers, json.dumps({"__type": code, "message": message}).encode()
    if protocol == "cbor":
        code = rule.get("code") or json_code
        headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                        "x-amzn-query-error": f"{rule.get('code') or query_code};{sender}"})
        return status, headers, cbor_error_body(code, message)
    if protocol == "ec2":
        code = rule.get("code") or ec2_code
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{_xml_escape(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>")
        headers["Content-Type"] = "text/xml;charset=UTF-8"
        return status, headers, body.encode()
    if protocol in ("query", "rest-xml"):
        code = rule.get("code") or query_code
        ns = ' xmlns="https://route53.amazonaws.com/doc/2013-04-01/"' if ident["service"] == "route53" else ""
        body = (f"<ErrorResponse{ns}><Error><Type>{sender}</Type><Code>{code}</Code>"
                f"<Message>{_xml_escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        headers["Content-Type"] = "text/xml"
        return status, headers, body.encode()
    code = rule.get("code") or json_code  # rest-json (Backup)
    headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
    return status, headers, json.dumps({"__type": code, "Code": code, "message": message,
                                        "Message": message}).encode()


# ---------------------------------------------------------------------------------------------- upstreams
def loopback_url(url: str) -> tuple[str, int]:
    """(host, port) of a loopback http:// URL; refuses anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise SystemExit(f"faultproxy: upstream must be http://127.0.0.1:PORT (loopback only), not {url!r}")
    return ("::1" if parts.hostname == "::1" else HOST), parts.port


class Upstreams:
    def __init__(self, default: str, per_service: dict[str, str]):
        self.default = loopback_url(default)
        self.per_service = {svc: loopback_url(u) for svc, u in per_service.items()}

    def for_service(self, service):
        return self.per_service.get(service, self.default)


# ---------------------------------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"    # keep-alive, as the SDKs expect; every answer carries Content-Length
    server_version = "faultproxy"
    timeout = MAX_HOLD_S             # an idle keep-alive connection (or a stalled request) is dropped after this
    upstreams: Upstreams            # set in main()

    def log_message(self, fmt, *args):  # one line per request is written by _finish
        pass

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return None if length > MAX_BODY else self.rfile.read(length)

    def _send(self, status: int, headers: dict, body: bytes):
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("content-length", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self):
        split = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            return self._send(413, {"Content-Type": "text/plain"}, b"faultproxy: request body too large")
        if split.path.startswith(ADMIN_PREFIX):
            return self._admin(split.path, body)
        ident = identify(self.command, split.path, split.query, self.headers, body)
        mutating = is_mutating(ident["operation"])
        rule = STATE.db_status(ident) or STATE.pick(ident, mutating) or STATE.timing()
        fault = rule["fault"] if rule else None
        entry = {"time": round(time.time(), 3), "method": self.command, "path": split.path,
                 "service": ident["service"], "region": ident["region"], "operation": ident["operation"],
                 "protocol": ident["protocol"], "mutating": mutating, "fault": fault, "status": None,
                 # the SDKs' retry headers: the same invocation id on every attempt of one operation call
                 "sdk_invocation": self.headers.get("amz-sdk-invocation-id"),
                 "sdk_request": self.headers.get("amz-sdk-request")}
        STATE.log(entry)
        started = time.monotonic()
        status = self._apply(fault, rule, ident, body)
        STATE.update(entry, status=status, duration_ms=round((time.monotonic() - started) * 1000))
        sys.stderr.write(f"{self.command} {split.path} {ident['service']}.{ident['operation']} "
                         f"[{ident['region']}] fault={fault} -> {status}\n")

    def _apply(self, fault, rule, ident, body) -> int | str:
        """Answers the request (or not) as the fault says; returns the status logged."""
        if fault == "db-status":
            return self._db_status(rule, ident, body)
        if fault == "timing":
            return self._timing(rule, ident, body)
        if fault in ERROR_CODES:
            status, headers, payload = error_response(fault, ident, rule, self.headers.get("Content-Type", ""))
            self._send(status, headers, payload)
            return status
        if fault in ("close", "reset"):
            self.close_connection = True
            try:
                if fault == "reset":  # linger 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "closed" if fault == "close" else "reset"
        if fault == "blackhole":
            self.close_connection = True
            return self._hold()
        if fault in ("slow", "delay"):
            if STOP.wait(min(rule["delay_ms"], MAX_DELAY_MS) / 1000):
                self.close_connection = True
                return "stopped"
        status, headers, payload = self._forward(ident, body)
        if fault == "rewrite":
            payload = payload.replace(rule["find"].encode(), rule["replace"].encode())
        self._send(status, headers, payload)
        return status

    def _db_status(self, rule, ident, body) -> int:
        """fault db-status: rewrite the instance's (global cluster's) status in DescribeDBInstances
        (DescribeGlobalClusters), refuse mutating calls on it."""
        form = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form.update(parse_qs(body.decode("utf-8", "replace")))
        op = ident["operation"]
        if "global_cluster" in rule:
            name, code, describe = rule["global_cluster"], "InvalidGlobalClusterStateFault", "DescribeGlobalClusters"
            named, rewrite, what = names_global_cluster(form, name), rewrite_global_status, "Global cluster"
        else:
            name, code, describe = rule["db_instance"], "InvalidDBInstanceState", "DescribeDBInstances"
            named, rewrite, what = names_instance(form, name), rewrite_db_status, "Instance"
        if is_mutating(op) and op not in ANY_STATUS_OPERATIONS and named:
            message = rule.get("message") or f"{what} {name} is not in available state (it is {rule['status']})."
            refusal = {"code": rule.get("code") or code, "message": message}
            status, headers, payload = error_response("throttle", ident, refusal, self.headers.get("Content-Type", ""))
            self._send(status, headers, payload)
            return status
        status, headers, payload = self._forward(ident, body)
        if op == describe and status == 200:
            payload, listed = rewrite(payload, name, rule["status"])
            if listed:
                STATE.count_applied(rule)
        self._send(status, headers, payload)
        return status

    def _form(self, body) -> dict:
        form = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form.update(parse_qs(body.decode("utf-8", "replace")))
        return form

    def _timing(self, rule, ident, body) -> int:
        """fault timing: forward, start the clock of a change the upstream accepted, and show the changes in
        progress as AWS shows them (see the module docstring)."""
        svc, op, region = ident["service"], ident["operation"], ident["region"]
        form = self._form(body) if ident["protocol"] in ("query", "ec2") else {}
        if svc == "rds" and is_mutating(op) and op not in ANY_STATUS_OPERATIONS:
            for change, _ in TIMING.open("db", region):
                if names_instance(form, change["resource"]):
                    message = f"Instance {change['resource']} is not in available state (it is being promoted)."
                    status, headers, payload = error_response(
                        "throttle", ident, {"code": "InvalidDBInstanceState", "message": message},
                        self.headers.get("Content-Type", ""))
                    self._send(status, headers, payload)
                    return status
        status, headers, payload = self._forward(ident, body)
        if status == 200:
            payload = self._timing_answer(rule, svc, op, region, form, body, payload)
        self._send(status, headers, payload)
        return status

    def _timing_answer(self, rule, svc, op, region, form, body, payload) -> bytes:
        if svc == "rds":
            if op == "PromoteReadReplica" and form.get("DBInstanceIdentifier"):
                TIMING.begin("db", region, _instance_id(form["DBInstanceIdentifier"][-1]),
                             rule.get("db_seconds", 0), shows="modifying, rebooting", effective="writable")
            if op == "DescribeDBInstances":
                for change, passed in TIMING.open("db", region):
                    payload = rewrite_promoting(payload, change["resource"],
                                                "modifying" if passed < 0.5 else "rebooting")
        elif svc == "autoscaling":
            if op in ("UpdateAutoScalingGroup", "SetDesiredCapacity") and form.get("AutoScalingGroupName"):
                wanted = [int(v) for k in ("DesiredCapacity", "MinSize") for v in form.get(k, []) if v.isdigit()]
                if wanted and max(wanted) > 0:
                    TIMING.begin("compute", region, form["AutoScalingGroupName"][-1], rule.get("compute_seconds", 0),
                                 shows="Pending, InService + targets initial", effective="healthy")
            if op in ("DescribeAutoScalingGroups", "DescribeAutoScalingInstances"):
                for change, passed in TIMING.open("compute", region):
                    named = f"<AutoScalingGroupName>{_xml_escape(change['resource'])}</AutoScalingGroupName>"
                    if passed < 0.5 and named.encode() in payload:
                        payload = payload.replace(b"<LifecycleState>InService</LifecycleState>",
                                                  b"<LifecycleState>Pending</LifecycleState>")
        elif svc == "elasticloadbalancing" and op == "DescribeTargetHealth":
            if TIMING.open("compute", region):
                payload = payload.replace(b"<State>healthy</State>",
                                          b"<State>initial</State><Reason>Elb.RegistrationInProgress</Reason>")
        elif svc == "globalaccelerator":
            if op == "UpdateEndpointGroup":
                try:
                    group = json.loads(body or b"{}").get("EndpointGroupArn", "")
                except ValueError:
                    group = ""
                if "/listener/" in group:
                    TIMING.begin("ga", None, group.split("/listener/")[0], rule.get("ga_seconds", 0),
                                 shows="IN_PROGRESS", effective="DEPLOYED", endpoint_group=group)
            if op in ("DescribeAccelerator", "ListAccelerators"):
                deploying = {c["resource"] for c, _ in TIMING.open("ga")}
                if deploying:
                    try:
                        answer = json.loads(payload)
                    except ValueError:
                        return payload
                    for acc in ([answer.get("Accelerator")] if "Accelerator" in answer else answer.get("Accelerators", [])):
                        if acc and acc.get("AcceleratorArn") in deploying:
                            acc["Status"] = "IN_PROGRESS"
                    payload = json.dumps(answer).encode()
        elif svc == "route53":
            if op == "ChangeResourceRecordSets":
                m = re.search(rb"<Id>(?:/change/)?([^<]+)</Id>", payload)
                if m:
                    TIMING.begin("dns", None, m.group(1).decode(), rule.get("dns_seconds", 0),
                                 shows="PENDING", effective="INSYNC")
            if op in ("ChangeResourceRecordSets", "GetChange"):
                for change, _ in TIMING.open("dns"):
                    if f"/change/{change['resource']}".encode() in payload or change["resource"].encode() in payload:
                        payload = payload.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
        return payload

    def _hold(self) -> str:
        """Never answers: waits until the client closes its end, the proxy stops, or MAX_HOLD_S passes."""
        deadline = time.monotonic() + MAX_HOLD_S
        sock = self.connection
        while not STOP.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return "held-timeout"
            readable, _, _ = select.select([sock], [], [], min(0.5, left))
            if readable:
                try:
                    if not sock.recv(4096, socket.MSG_PEEK):
                        return "client-gave-up"
                    sock.recv(4096)   # anything the client sends more is read and dropped
                except OSError:
                    return "client-gave-up"
        return "stopped"

    def _forward(self, ident, body) -> tuple[int, dict, bytes]:
        host, port = self.upstreams.for_service(ident["service"])
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for k, v in self.headers.items():
                if k.lower() in HOP_BY_HOP or k.lower() == "expect" or (chunked and k.lower() == "content-length"):
                    continue
                conn.putheader(k, v)
            if chunked or (body and "Content-Length" not in self.headers):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        except OSError as e:
            msg = f"faultproxy: upstream {host}:{port} failed: {e}"
            return 502, {"Content-Type": "text/plain"}, msg.encode()
        finally:
            conn.close()

    def _admin(self, path: str, raw: bytes):
        route = (self.command, path.rstrip("/"))
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            return self._json(400, {"error": f"body is not JSON: {e}"})
        try:
            if route == ("GET", "/_faultproxy/health"):
                return self._json(200, {"status": "ok", "service": "faultproxy"})
            if route == ("POST", "/_faultproxy/rules"):
                STATE.set_rules(payload.get("rules") if isinstance(payload, dict) else None)
                return self._json(200, {"rules": len(STATE.rules)})
            if route == ("GET", "/_faultproxy/rules"):
                with STATE.lock:
                    return self._json(200, {"rules": [dict(r) for r in STATE.rules]})
            if route == ("DELETE", "/_faultproxy/rules"):
                STATE.set_rules([])
                return self._json(200, {"rules": 0})
            if route == ("GET", "/_faultproxy/requests"):
                with STATE.lock:
                    return self._json(200, {"requests": [dict(r) for r in STATE.requests]})
            if route == ("GET", "/_faultproxy/timing"):
                with TIMING.lock:
                    return self._json(200, {"rule": STATE.timing(), "changes": [dict(c) for c in TIMING.changes]})
            if route == ("DELETE", "/_faultproxy/timing"):
                TIMING.clear()
                return self._json(200, {"changes": 0})
            if route == ("DELETE", "/_faultproxy/requests"):
                with STATE.lock:
                    STATE.requests.clear()
                return self._json(200, {"requests": 0})
        except BadRule as e:
            return self._json(400, {"error": str(e)})
        self._json(404, {"error": f"no admin route {self.command} {path}"})

    def _json(self, status: int, obj):
        self._send(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True        # a held (blackholed) connection never delays the exit
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = a free port (printed on stdout)")
    ap.add_argument("--host", default=HOST, help="bind address: 127.0.0.1 only")
    ap.add_argument("--upstream", required=True, help="where requests go (http://127.0.0.1:PORT)")
    ap.add_argument("--upstream-for", action="append", default=[], metavar="SERVICE=URL",
                    help="route one SigV4 service elsewhere, e.g. globalaccelerator=http://127.0.0.1:5100")
    ap.add_argument("--timing", default=None, metavar="db=S,compute=S,ga=S,dns=S",
                    help="start with the AWS timing model (fault timing) set to these times, in seconds")
    args = ap.parse_args(argv)
    if args.host != HOST:
        ap.error(f"--host must be {HOST} (loopback only), not {args.host!r}")
    per_service = {}
    for item in args.upstream_for:
        svc, sep, url = item.partition("=")
        if not sep or not svc:
            ap.error(f"--upstream-for takes SERVICE=URL, not {item!r}")
        per_service[svc] = url
    Handler.upstreams = Upstreams(args.upstream, per_service)
    if args.timing:
        try:
            STATE.rules = [parse_timing(args.timing)]
        except BadRule as e:
            ap.error(str(e))

    server = Server((HOST, args.port), Handler)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"faultproxy listening on http://{HOST}:{server.server_address[1]}", flush=True)
    while not stop.wait(1.0):
        pass
    STOP.set()             # wakes delays and held connections
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
