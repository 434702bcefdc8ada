#!/usr/bin/env python3
"""gapfill: pilotlight's API-compatible *test* server for the AWS APIs no emulator on the test machine offers.

Test support only -- not a product component. It speaks the real wire protocols, so the AWS SDKs (the Rust SDK,
boto3) talk to it unchanged when pointed at it with AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR / AWS_ENDPOINT_URL_BACKUP:

* AWS Global Accelerator (awsJson1_1, ``POST /`` + ``X-Amz-Target: GlobalAccelerator_V20180706.<Op>``):
  Create/Describe/List/Update/DeleteAccelerator, Create/Describe/List/DeleteListener,
  Create/Describe/List/Update/DeleteEndpointGroup.
* AWS Backup (restJson1), vaults and recovery points only: Create/Describe/ListBackupVaults,
  ListRecoveryPointsByBackupVault, DescribeRecoveryPoint, StartBackupJob, DescribeBackupJob, StartCopyJob,
  DescribeCopyJob.
* Test-support admin API under ``/_gapfill/`` (clearly not AWS): health, reset, state dump, seeding recovery points,
  setting endpoint health, steering copy jobs.

Shapes, field names, HTTP status codes and error codes follow the AWS API references and botocore's service
models (globalaccelerator 2018-08-08, backup 2018-11-15). State is in memory; Backup state is per region, the
region being taken from the SigV4 credential scope of the ``Authorization`` header (signatures are not checked).

    python3 tests/support/gapfill.py --port 5100         # binds 127.0.0.1 only
"""
from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import secrets
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
GA_TARGET_PREFIX = "GlobalAccelerator_V20180706."
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
VAULT_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
CRED_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


class ApiError(Exception):
    """An AWS-style client/server error: rendered in the wire format of the protocol that raised it."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra or {}


def now() -> float:
    return round(time.time(), 3)


def parse_time(value, field: str) -> float:
    """ISO-8601 (with or without zone; naive = UTC) or epoch seconds -> epoch seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError("InvalidParameterValueException", f"{field}: not an ISO-8601 timestamp or epoch: {value!r}")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise ApiError("InvalidParameterValueException", f"{field}: expected a timestamp, got {value!r}")


def paginate(items: list, max_results, next_token, lo: int, hi: int, err: str, token_err: str):
    """Return (page, next_token). Tokens are opaque (base64 of the offset)."""
    if max_results is None:
        max_results = hi
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not lo <= max_results <= hi:
        raise ApiError(err, f"MaxResults must be an integer between {lo} and {hi}")
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode().removeprefix("gapfill:"))
            if start < 0 or start > len(items):
                raise ValueError
        except Exception:
            raise ApiError(token_err, "The NextToken is invalid")
    page = items[start:start + max_results]
    end = start + len(page)
    token = base64.urlsafe_b64encode(f"gapfill:{end}".encode()).decode() if end < len(items) else None
    return page, token


def drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


# ---------------------------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------------------------
class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            # Global Accelerator (a global service: one namespace)
            self.accelerators: dict[str, dict] = {}   # arn -> accelerator (listeners kept separately)
            self.listeners: dict[str, dict] = {}      # arn -> listener (+ "_accelerator")
            self.endpoint_groups: dict[str, dict] = {}  # arn -> endpoint group (+ "_listener")
            self.ga_tokens: dict[tuple, str] = {}     # (op, token) -> arn, for IdempotencyToken
            # Backup (regional)
            self.vaults: dict[tuple, dict] = {}       # (region, name) -> vault
            self.recovery_points: dict[tuple, dict] = {}  # (region, vault, rp_arn) -> recovery point
            self.backup_jobs: dict[tuple, dict] = {}  # (region, id) -> job
            self.copy_jobs: dict[tuple, dict] = {}    # (region, id) -> job
            self.config = {"copy_jobs_complete_immediately": True}


STATE = State()


# ---------------------------------------------------------------------------------------------------------------
# Global Accelerator
# ---------------------------------------------------------------------------------------------------------------
def _req(body: dict, name: str, typ=str):
    if name not in body or body[name] is None:
        raise ApiError("InvalidArgumentException", f"{name} is required")
    return _typed(body, name, typ)


def _typed(body: dict, name: str, typ, lo=None, hi=None):
    v = body.get(name)
    if v is None:
        return None
    ok = isinstance(v, typ) and not (isinstance(v, bool) and typ in (int, float, (int, float)))
    if not ok:
        raise ApiError("InvalidArgumentException", f"{name} has an invalid type: {v!r}")
    if lo is not None and not lo <= v <= hi:
        raise ApiError("InvalidArgumentException", f"{name} must be between {lo} and {hi}, got {v}")
    return v


def _accelerator_view(a: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in a.items() if not k.startswith("_")}


def _eg_view(g: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in g.items() if not k.startswith("_")}


def _find_accelerator(arn) -> dict:
    a = STATE.accelerators.get(arn)
    if a is None:
        raise ApiError("AcceleratorNotFoundException", f"Accelerator {arn} not found")
    return a


def _find_listener(arn) -> dict:
    ln = STATE.listeners.get(arn)
    if ln is None:
        raise ApiError("ListenerNotFoundException", f"Listener {arn} not found")
    return ln


def _find_eg(arn) -> dict:
    g = STATE.endpoint_groups.get(arn)
    if g is None:
        raise ApiError("EndpointGroupNotFoundException", f"Endpoint group {arn} not found")
    return g


def _idempotent(op: str, body: dict):
    token = body.get("IdempotencyToken")
    if not token:
        raise ApiError("InvalidArgumentException", "IdempotencyToken is required")
    return STATE.ga_tokens.get((op, token))


def _endpoint_descriptions(configs, previous: list | None = None) -> list:
    if not isinstance(configs, list):
        raise ApiError("InvalidArgumentException", "EndpointConfigurations must be a list")
    if len(configs) > 10:
        raise ApiError("InvalidArgumentException", "EndpointConfigurations: at most 10 endpoints")
    prev = {e["EndpointId"]: e for e in (previous or [])}
    out, seen = [], set()
    for c in configs:
        if not isinstance(c, dict):
            raise ApiError("InvalidArgumentException", "EndpointConfiguration must be an object")
        eid = _typed(c, "EndpointId", str)
        if not eid:
            raise ApiError("InvalidArgumentException", "EndpointId is required")
        if eid in seen:
            raise ApiError("InvalidArgumentException", f"Duplicate endpoint {eid}")
        seen.add(eid)
        weight = _typed(c, "Weight", int, 0, 255)
        cipe = _typed(c, "ClientIPPreservationEnabled", bool)
        old = prev.get(eid)
        if cipe is None:
            cipe = old["ClientIPPreservationEnabled"] if old else (":loadbalancer/app/" in eid)
        out.append({
            "EndpointId": eid,
            "Weight": weight if weight is not None else 128,
            "HealthState": old["HealthState"] if old else "HEALTHY",
            **({"HealthReason": old["HealthReason"]} if old and old.get("HealthReason") else {}),
            "ClientIPPreservationEnabled": cipe,
        })
    return out


def _eg_settings(body: dict, g: dict):
    """Validate and apply the optional EndpointGroup settings present in body onto g."""
    v = _typed(body, "TrafficDialPercentage", (int, float), 0, 100)
    if v is not None:
        g["TrafficDialPercentage"] = float(v)
    v = _typed(body, "HealthCheckPort", int, 1, 65535)
    if v is not None:
        g["HealthCheckPort"] = v
    v = _typed(body, "HealthCheckProtocol", str)
    if v is not None:
        if v not in ("TCP", "HTTP", "HTTPS"):
            raise ApiError("InvalidArgumentException", f"HealthCheckProtocol must be TCP, HTTP or HTTPS, got {v}")
        g["HealthCheckProtocol"] = v
    v = _typed(body, "HealthCheckPath", str)
    if v is not None:
        if not v.startswith("/") or len(v) > 255:
            raise ApiError("InvalidArgumentException", "HealthCheckPath must start with / (max 255 chars)")
        g["HealthCheckPath"] = v
    v = _typed(body, "HealthCheckIntervalSeconds", int)
    if v is not None:
        if v not in (10, 30):
            raise ApiError("InvalidArgumentException", "HealthCheckIntervalSeconds must be 10 or 30")
        g["HealthCheckIntervalSeconds"] = v
    v = _typed(body, "ThresholdCount", int, 1, 10)
    if v is not None:
        g["ThresholdCount"] = v
    v = body.get("PortOverrides")
    if v is not None:
        if not isinstance(v, list) or len(v) > 10:
            raise ApiError("InvalidArgumentException", "PortOverrides must be a list of at most 10")
        po = []
        for o in v:
            if not isinstance(o, dict):
                raise ApiError("InvalidArgumentException", "PortOverride must be an object")
            lp = _typed(o, "ListenerPort", int, 1, 65535)
            ep = _typed(o, "EndpointPort", int, 1, 65535)
            if lp is None or ep is None:
                raise ApiError("InvalidArgumentException", "PortOverride needs ListenerPort and EndpointPort")
            po.append({"ListenerPort": lp, "EndpointPort": ep})
        g["PortOverrides"] = po


def ga_create_accelerator(body, region):
    name = _req(body, "Name")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?", name):
        raise ApiError("InvalidArgumentException",
                       "Name must be 1-64 alphanumerics or hyphens and must not begin or end with a hyphen")
    known = _idempotent("CreateAccelerator", body)
    if known and known in STATE.accelerators:
        return {"Accelerator": _accelerator_view(STATE.accelerators[known])}
    ip_type = _typed(body, "IpAddressType", str) or "IPV4"
    if ip_type not in ("IPV4", "DUAL_STACK"):
        raise ApiError("InvalidArgumentException", f"IpAddressType must be IPV4 or DUAL_STACK, got {ip_type}")
    enabled = _typed(body, "Enabled", bool)
    arn = f"arn:aws:globalaccelerator::{ACCOUNT}:accelerator/{uuid.uuid4()}"
    n = len(STATE.accelerators) % 250
    t = now()
    ip_sets = [{"IpFamily": "IPv4", "IpAddresses": [f"192.0.2.{n + 1}", f"198.51.100.{n + 1}"],
                "IpAddressFamily": "IPv4"}]
    if ip_type == "DUAL_STACK":
        ip_sets.append({"IpFamily": "IPv6", "IpAddresses": [f"2001:db8:1::{n + 1:x}", f"2001:db8:2::{n + 1:x}"],
                        "IpAddressFamily": "IPv6"})
    a = {
        "AcceleratorArn": arn, "Name": name, "IpAddressType": ip_type,
        "Enabled": True if enabled is None else enabled,
        "IpSets": ip_sets,
        "DnsName": f"a{secrets.token_hex(8)}.awsglobalaccelerator.com",
        "Status": "DEPLOYED", "CreatedTime": t, "LastModifiedTime": t,
    }
    if ip_type == "DUAL_STACK":
        a["DualStackDnsName"] = f"a{secrets.token_hex(8)}.dualstack.awsglobalaccelerator.com"
    STATE.accelerators[arn] = a
    STATE.ga_tokens[("CreateAccelerator", body["IdempotencyToken"])] = arn
    return {"Accelerator": _accelerator_view(a)}


def ga_describe_accelerator(body, region):
    return {"Accelerator": _accelerator_view(_find_accelerator(_req(body, "AcceleratorArn")))}


def ga_list_accelerators(body, region):
    items = sorted(STATE.accelerators.values(), key=lambda a: (a["CreatedTime"], a["AcceleratorArn"]))
    page, token = paginate(items, _typed(body, "MaxResults", int), body.get("NextToken"), 1, 100,
                           "InvalidArgumentException", "InvalidNextTokenException")
    return drop_none({"Accelerators": [_accelerator_view(a) for a in page], "NextToken": token})


def ga_update_accelerator(body, region):
    a = _find_accelerator(_req(body, "AcceleratorArn"))
    name = _typed(body, "Name", str)
    ip_type = _typed(body, "IpAddressType", str)
    enabled = _typed(body, "Enabled", bool)
    if ip_type is not None and ip_type not in ("IPV4", "DUAL_STACK"):
        raise ApiError("InvalidArgumentException", f"IpAddressType must be IPV4 or DUAL_STACK, got {ip_type}")
    if name is not None:
        a["Name"] = name
    if ip_type is not None:
        a["IpAddressType"] = ip_type
    if enabled is not None:
        a["Enabled"] = enabled
    a["LastModifiedTime"] = now()
    return {"Accelerator": _accelerator_view(a)}


def ga_delete_accelerator(body, region):
    arn = _req(body, "AcceleratorArn")
    a = _find_accelerator(arn)
    if a["Enabled"]:
        raise ApiError("AcceleratorNotDisabledException",
                       "The accelerator must be disabled (UpdateAccelerator Enabled=false) before it can be deleted")
    if any(ln["_accelerator"] == arn for ln in STATE.listeners.values()):
        raise ApiError("AssociatedListenerFoundException", "The accelerator still has listeners; delete them first")
    del STATE.accelerators[arn]
    return {}


def _listener_view(ln: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in ln.items() if not k.startswith("_")}


def ga_create_listener(body, region):
    acc_arn = _req(body, "AcceleratorArn")
    _find_accelerator(acc_arn)
    known = _idempotent("CreateListener", body)
    if known and known in STATE.listeners:
        return {"Listener": _listener_view(STATE.listeners[known])}
    ranges = body.get("PortRanges")
    if not isinstance(ranges, list) or not 1 <= len(ranges) <= 10:
        raise ApiError("InvalidArgumentException", "PortRanges must hold 1 to 10 port ranges")
    prs = []
    for r in ranges:
        if not isinstance(r, dict):
            raise ApiError("InvalidArgumentException", "PortRange must be an object")
        fp = _typed(r, "FromPort", int, 1, 65535)
        tp = _typed(r, "ToPort", int, 1, 65535)
        if fp is None or tp is None or fp > tp:
            raise ApiError("InvalidPortRangeException", f"Invalid port range {r}")
        prs.append({"FromPort": fp, "ToPort": tp})
    proto = _req(body, "Protocol")
    if proto not in ("TCP", "UDP"):
        raise ApiError("InvalidArgumentException", f"Protocol must be TCP or UDP, got {proto}")
    aff = _typed(body, "ClientAffinity", str) or "NONE"
    if aff not in ("NONE", "SOURCE_IP"):
        raise ApiError("InvalidArgumentException", f"ClientAffinity must be NONE or SOURCE_IP, got {aff}")
    arn = f"{acc_arn}/listener/{secrets.token_hex(4)}"
    ln = {"ListenerArn": arn, "PortRanges": prs, "Protocol": proto, "ClientAffinity": aff, "_accelerator": acc_arn}
    STATE.listeners[arn] = ln
    STATE.ga_tokens[("CreateListener", body["IdempotencyToken"])] = arn
    return {"Listener": _listener_view(ln)}


def ga_describe_listener(body, region):
    return {"Listener": _listener_view(_find_listener(_req(body, "ListenerArn")))}


def ga_list_listeners(body, region):
    acc_arn = _req(body, "AcceleratorArn")
    _find_accelerator(acc_arn)
    items = [ln for ln in STATE.listeners.values() if ln["_accelerator"] == acc_arn]
    page, token = paginate(items, _typed(body, "MaxResults", int), body.get("NextToken"), 1, 100,
                           "InvalidArgumentException", "InvalidNextTokenException")
    return drop_none({"Listeners": [_listener_view(ln) for ln in page], "NextToken": token})


def ga_delete_listener(body, region):
    arn = _req(body, "ListenerArn")
    _find_listener(arn)
    if any(g["_listener"] == arn for g in STATE.endpoint_groups.values()):
        raise ApiError("AssociatedEndpointGroupFoundException",
                       "The listener still has endpoint groups; delete them first")
    del STATE.listeners[arn]
    return {}


def ga_create_endpoint_group(body, region):
    l_arn = _req(body, "ListenerArn")
    acc_arn = l_arn.split("/listener/")[0]
    if acc_arn not in STATE.accelerators:
        raise ApiError("AcceleratorNotFoundException", f"Accelerator {acc_arn} not found")
    ln = _find_listener(l_arn)
    known = _idempotent("CreateEndpointGroup", body)
    if known and known in STATE.endpoint_groups:
        return {"EndpointGroup": _eg_view(STATE.endpoint_groups[known])}
    eg_region = _req(body, "EndpointGroupRegion")
    if not REGION_RE.match(eg_region):
        raise ApiError("InvalidArgumentException", f"EndpointGroupRegion {eg_region!r} is not a valid region")
    if any(g["_listener"] == l_arn and g["EndpointGroupRegion"] == eg_region for g in STATE.endpoint_groups.values()):
        raise ApiError("EndpointGroupAlreadyExistsException",
                       f"An endpoint group for region {eg_region} already exists on listener {l_arn}")
    arn = f"{l_arn}/endpoint-group/{secrets.token_hex(6)}"
    g = {
        "EndpointGroupArn": arn, "EndpointGroupRegion": eg_region,
        "EndpointDescriptions": _endpoint_descriptions(body.get("EndpointConfigurations") or []),
        "TrafficDialPercentage": 100.0,
        "HealthCheckPort": ln["PortRanges"][0]["FromPort"], "HealthCheckProtocol": "TCP", "HealthCheckPath": "/",
        "HealthCheckIntervalSeconds": 30, "ThresholdCount": 3, "PortOverrides": [],
        "_listener": l_arn,
    }
    _eg_settings(body, g)
    STATE.endpoint_groups[arn] = g
    STATE.ga_tokens[("CreateEndpointGroup", body["IdempotencyToken"])] = arn
    return {"EndpointGroup": _eg_view(g)}


def ga_describe_endpoint_group(body, region):
    return {"EndpointGroup": _eg_view(_find_eg(_req(body, "EndpointGroupArn")))}


def ga_list_endpoint_groups(body, region):
    l_arn = _req(body, "ListenerArn")
    _find_listener(l_arn)
    items = [g for g in STATE.endpoint_groups.values() if g["_listener"] == l_arn]
    page, token = paginate(items, _typed(body, "MaxResults", int), body.get("NextToken"), 1, 100,
                           "InvalidArgumentException", "InvalidNextTokenException")
    return drop_none({"EndpointGroups": [_eg_view(g) for g in page], "NextToken": token})


def ga_update_endpoint_group(body, region):
    g = _find_eg(_req(body, "EndpointGroupArn"))
    new = copy.deepcopy(g)          # validate everything before changing anything
    _eg_settings(body, new)
    if body.get("EndpointConfigurations") is not None:
        new["EndpointDescriptions"] = _endpoint_descriptions(body["EndpointConfigurations"], g["EndpointDescriptions"])
    g.clear()
    g.update(new)
    return {"EndpointGroup": _eg_view(g)}


def ga_delete_endpoint_group(body, region):
    arn = _req(body, "EndpointGroupArn")
    _find_eg(arn)
    del STATE.endpoint_groups[arn]
    return {}


GA_OPS = {
    "CreateAccelerator": ga_create_accelerator,
    "DescribeAccelerator": ga_describe_accelerator,
    "ListAccelerators": ga_list_accelerators,
    "UpdateAccelerator": ga_update_accelerator,
    "DeleteAccelerator": ga_delete_accelerator,
    "CreateListener": ga_create_listener,
    "DescribeListener": ga_describe_listener,
    "ListListeners": ga_list_listeners,
    "DeleteListener": ga_delete_listener,
    "CreateEndpointGroup": ga_create_endpoint_group,
    "DescribeEndpointGroup": ga_describe_endpoint_group,
    "ListEndpointGroups": ga_list_endpoint_groups,
    "UpdateEndpointGroup": ga_update_endpoint_group,
    "DeleteEndpointGroup": ga_delete_endpoint_group,
}


# ---------------------------------------------------------------------------------------------------------------
# Backup
# ---------------------------------------------------------------------------------------------------------------
def vault_arn(region: str, name: str) -> str:
    return f"arn:aws:backup:{region}:{ACCOUNT}:backup-vault:{name}"


def new_ami_id() -> str:
    return "ami-" + secrets.token_hex(9)[:17]


def parse_arn(arn, field: str) -> dict:
    if not isinstance(arn, str):
        raise ApiError("InvalidParameterValueException", f"{field} must be a string")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        raise ApiError("InvalidParameterValueException", f"Invalid ARN in {field}: {arn}")
    return {"partition": parts[1], "service": parts[2], "region": parts[3], "account": parts[4],
            "resource": parts[5]}


def resource_type_of(arn: dict) -> str | None:
    svc, res = arn["service"], arn["resource"]
    if svc == "ec2" and res.startswith("instance/"):
        return "EC2"
    if svc == "ec2" and res.startswith("volume/"):
        return "EBS"
    if svc == "rds" and res.startswith("db:"):
        return "RDS"
    if svc == "rds" and res.startswith("cluster:"):
        return "Aurora"
    if svc == "dynamodb" and res.startswith("table/"):
        return "DynamoDB"
    if svc == "elasticfilesystem":
        return "EFS"
    if svc == "s3":
        return "S3"
    return None


def get_vault(region: str, name) -> dict:
    if not isinstance(name, str) or not name:
        raise ApiError("MissingParameterValueException", "BackupVaultName is required")
    v = STATE.vaults.get((region, name))
    if v is None:
        raise ApiError("ResourceNotFoundException",
                       f"Backup vault {name} does not exist in region {region} for account {ACCOUNT}")
    return v


def make_vault(region: str, name: str, body: dict | None = None) -> dict:
    body = body or {}
    v = {
        "BackupVaultName": name, "BackupVaultArn": vault_arn(region, name),
        "VaultType": "BACKUP_VAULT", "VaultState": "AVAILABLE",
        "EncryptionKeyArn": body.get("EncryptionKeyArn") or f"arn:aws:kms:{region}:{ACCOUNT}:key/{uuid.uuid4()}",
        "CreationDate": now(), "Locked": False,
        "_tags": body.get("BackupVaultTags") or {},
    }
    if body.get("CreatorRequestId"):
        v["CreatorRequestId"] = body["CreatorRequestId"]
    STATE.vaults[(region, name)] = v
    return v


def vault_view(region: str, v: dict) -> dict:
    out = {k: val for k, val in v.items() if not k.startswith("_")}
    out["NumberOfRecoveryPoints"] = sum(1 for (r, n, _) in STATE.recovery_points if r == region
                                        and n == v["BackupVaultName"])
    return out


def make_recovery_point(region: str, vault: dict, resource_arn: str, resource_type: str, *, image_id=None,
                        created=None, status="COMPLETED", iam_role=None, source_vault_arn=None,
                        lifecycle=None) -> dict:
    if resource_type == "EC2":
        rp_arn = f"arn:aws:ec2:{region}::image/{image_id or new_ami_id()}"
    else:
        rp_arn = f"arn:aws:backup:{region}:{ACCOUNT}:recovery-point:{str(uuid.uuid4()).upper()}"
    created = now() if created is None else created
    rp = {
        "RecoveryPointArn": rp_arn,
        "BackupVaultName": vault["BackupVaultName"], "BackupVaultArn": vault["BackupVaultArn"],
        "ResourceArn": resource_arn, "ResourceType": resource_type,
        "IamRoleArn": iam_role or f"arn:aws:iam::{ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole",
        "Status": status, "CreationDate": created, "InitiationDate": created,
        "BackupSizeInBytes": 8 * 1024 ** 3 if resource_type == "EC2" else 1024 ** 3,
        "EncryptionKeyArn": vault["EncryptionKeyArn"], "IsEncrypted": False, "IsParent": False,
        "ResourceName": resource_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1],
        "VaultType": "BACKUP_VAULT", "StorageClass": "WARM",
    }
    if status == "COMPLETED":
        rp["CompletionDate"] = created
    if source_vault_arn:
        rp["SourceBackupVaultArn"] = source_vault_arn
    if lifecycle:
        rp["Lifecycle"] = lifecycle
    key = (region, vault["BackupVaultName"], rp_arn)
    if key in STATE.recovery_points:
        raise ApiError("AlreadyExistsException", f"Recovery point {rp_arn} already exists in {vault['BackupVaultName']}")
    STATE.recovery_points[key] = rp
    return rp


def rp_view(rp: dict, describe: bool) -> dict:
    out = copy.deepcopy(rp)
    if not describe:
        out.pop("StorageClass", None)   # not a member of RecoveryPointByBackupVault
    return out


def bk_create_vault(region, params, query, body):
    name = params["vault"]
    if not VAULT_NAME_RE.match(name):
        raise ApiError("InvalidParameterValueException",
                       f"Invalid backup vault name {name!r}: must match ^[a-zA-Z0-9\\-\\_]{{2,50}}$")
    if (region, name) in STATE.vaults:
        v = STATE.vaults[(region, name)]
        raise ApiError("AlreadyExistsException", f"Backup vault with the same name already exists",
                       extra=drop_none({"Arn": v["BackupVaultArn"], "CreatorRequestId": v.get("CreatorRequestId")}))
    v = make_vault(region, name, body)
    return 200, {"BackupVaultName": name, "BackupVaultArn": v["BackupVaultArn"], "CreationDate": v["CreationDate"]}


def bk_describe_vault(region, params, query, body):
    return 200, vault_view(region, get_vault(region, params["vault"]))


def bk_list_vaults(region, params, query, body):
    items = sorted((v for (r, _), v in STATE.vaults.items() if r == region), key=lambda v: v["BackupVaultName"])
    vt = query.get("vaultType")
    if vt:
        items = [v for v in items if v["VaultType"] == vt]
    page, token = paginate(items, _q_int(query, "maxResults"), query.get("nextToken"), 1, 1000,
                           "InvalidParameterValueException", "InvalidParameterValueException")
    return 200, drop_none({"BackupVaultList": [vault_view(region, v) for v in page], "NextToken": token})


def _q_int(query: dict, name: str):
    v = query.get(name)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise ApiError("InvalidParameterValueException", f"{name} must be an integer")


def bk_list_recovery_points(region, params, query, body):
    vault = get_vault(region, params["vault"])
    items = [rp for (r, n, _), rp in STATE.recovery_points.items() if r == region and n == vault["BackupVaultName"]]
    if query.get("resourceType"):
        items = [rp for rp in items if rp["ResourceType"] == query["resourceType"]]
    if query.get("resourceArn"):
        items = [rp for rp in items if rp["ResourceArn"] == query["resourceArn"]]
    if query.get("createdBefore"):
        before = parse_time(query["createdBefore"], "createdBefore")
        items = [rp for rp in items if rp["CreationDate"] < before]
    if query.get("createdAfter"):
        after = parse_time(query["createdAfter"], "createdAfter")
        items = [rp for rp in items if rp["CreationDate"] > after]
    if query.get("parentRecoveryPointArn"):
        items = []          # composite recovery points are not modelled
    # AWS documents no order: serve oldest first so that callers must pick the newest themselves.
    items.sort(key=lambda rp: (rp["CreationDate"], rp["RecoveryPointArn"]))
    page, token = paginate(items, _q_int(query, "maxResults"), query.get("nextToken"), 1, 1000,
                           "InvalidParameterValueException", "InvalidParameterValueException")
    return 200, drop_none({"RecoveryPoints": [rp_view(rp, False) for rp in page], "NextToken": token})


def bk_describe_recovery_point(region, params, query, body):
    vault = get_vault(region, params["vault"])
    rp = STATE.recovery_points.get((region, vault["BackupVaultName"], params["rp"]))
    if rp is None:
        raise ApiError("ResourceNotFoundException",
                       f"Recovery point {params['rp']} not found in backup vault {vault['BackupVaultName']}")
    return 200, rp_view(rp, True)


def _body_str(body: dict, name: str, required: bool = True):
    v = body.get(name)
    if v is None or v == "":
        if required:
            raise ApiError("MissingParameterValueException", f"{name} is required")
        return None
    if not isinstance(v, str):
        raise ApiError("InvalidParameterValueException", f"{name} must be a string")
    return v


def bk_start_backup_job(region, params, query, body):
    vault_name = _body_str(body, "BackupVaultName")
    resource_arn = _body_str(body, "ResourceArn")
    iam_role = _body_str(body, "IamRoleArn")
    parse_arn(iam_role, "IamRoleArn")
    arn = parse_arn(resource_arn, "ResourceArn")
    rtype = resource_type_of(arn)
    if rtype is None:
        raise ApiError("InvalidParameterValueException", f"Resource type of {resource_arn} is not supported")
    if arn["region"] and arn["region"] != region:
        raise ApiError("InvalidParameterValueException",
                       f"Resource {resource_arn} is not in the region of the request ({region})")
    vault = get_vault(region, vault_name)
    rp = make_recovery_point(region, vault, resource_arn, rtype, iam_role=iam_role, lifecycle=body.get("Lifecycle"))
    job_id = str(uuid.uuid4()).upper()
    STATE.backup_jobs[(region, job_id)] = {
        "AccountId": ACCOUNT, "BackupJobId": job_id, "BackupVaultName": vault["BackupVaultName"],
        "BackupVaultArn": vault["BackupVaultArn"], "VaultType": "BACKUP_VAULT",
        "RecoveryPointArn": rp["RecoveryPointArn"], "ResourceArn": resource_arn,
        "CreationDate": rp["CreationDate"], "CompletionDate": rp["CompletionDate"], "InitiationDate": rp["CreationDate"],
        "State": "COMPLETED", "PercentDone": "100.0", "BackupSizeInBytes": rp["BackupSizeInBytes"],
        "IamRoleArn": iam_role, "ResourceType": rtype, "IsParent": False, "ResourceName": rp["ResourceName"],
        "EncryptionKeyArn": rp["EncryptionKeyArn"], "IsEncrypted": False,
    }
    return 200, {"BackupJobId": job_id, "RecoveryPointArn": rp["RecoveryPointArn"],
                 "CreationDate": rp["CreationDate"], "IsParent": False}


def bk_describe_backup_job(region, params, query, body):
    job = STATE.backup_jobs.get((region, params["id"]))
    if job is None:
        raise ApiError("ResourceNotFoundException", f"Backup job {params['id']} not found")
    return 200, copy.deepcopy(job)


def _finish_copy(job: dict, state: str, message: str | None = None):
    """Move a copy job to a final state, creating/updating its destination recovery point."""
    dest_region, dest_name = job["_dest"]
    job["State"] = state
    job["CompletionDate"] = now()
    if message:
        job["StatusMessage"] = message
    rp = STATE.recovery_points.get((dest_region, dest_name, job.get("DestinationRecoveryPointArn")))
    if state == "COMPLETED":
        if rp is not None:
            rp["Status"] = "COMPLETED"
            rp["CompletionDate"] = job["CompletionDate"]
    elif rp is not None:
        del STATE.recovery_points[(dest_region, dest_name, rp["RecoveryPointArn"])]


def bk_start_copy_job(region, params, query, body):
    rp_arn = _body_str(body, "RecoveryPointArn")
    src_name = _body_str(body, "SourceBackupVaultName")
    dest_vault_arn = _body_str(body, "DestinationBackupVaultArn")
    iam_role = _body_str(body, "IamRoleArn")
    parse_arn(iam_role, "IamRoleArn")
    parse_arn(rp_arn, "RecoveryPointArn")
    d = parse_arn(dest_vault_arn, "DestinationBackupVaultArn")
    if d["service"] != "backup" or not d["resource"].startswith("backup-vault:") or not d["region"]:
        raise ApiError("InvalidParameterValueException", f"Invalid DestinationBackupVaultArn: {dest_vault_arn}")
    src_vault = get_vault(region, src_name)
    src = STATE.recovery_points.get((region, src_name, rp_arn))
    if src is None:
        raise ApiError("ResourceNotFoundException", f"Recovery point {rp_arn} not found in backup vault {src_name}")
    if src["Status"] != "COMPLETED":
        raise ApiError("InvalidRequestException", f"Recovery point {rp_arn} is {src['Status']}, not COMPLETED")
    dest_region, dest_name = d["region"], d["resource"].split(":", 1)[1]
    if dest_region == region and dest_name == src_name:
        raise ApiError("InvalidParameterValueException", "Source and destination backup vaults are the same")
    dest_vault = get_vault(dest_region, dest_name)
    immediate = STATE.config["copy_jobs_complete_immediately"]
    dest_rp = make_recovery_point(dest_region, dest_vault, src["ResourceArn"], src["ResourceType"],
                                  status="COMPLETED" if immediate else "CREATING", iam_role=iam_role,
                                  source_vault_arn=src_vault["BackupVaultArn"], lifecycle=body.get("Lifecycle"))
    job_id = str(uuid.uuid4()).upper()
    t = now()
    job = {
        "AccountId": ACCOUNT, "CopyJobId": job_id,
        "SourceBackupVaultArn": src_vault["BackupVaultArn"], "SourceRecoveryPointArn": rp_arn,
        "DestinationBackupVaultArn": dest_vault["BackupVaultArn"], "DestinationVaultType": "BACKUP_VAULT",
        "DestinationRecoveryPointArn": dest_rp["RecoveryPointArn"],
        "ResourceArn": src["ResourceArn"], "ResourceType": src["ResourceType"], "ResourceName": src["ResourceName"],
        "CreationDate": t, "State": "RUNNING", "BackupSizeInBytes": src["BackupSizeInBytes"],
        "IamRoleArn": iam_role, "IsParent": False,
        "_dest": (dest_region, dest_name),
    }
    STATE.copy_jobs[(region, job_id)] = job
    if immediate:
        _finish_copy(job, "COMPLETED")
    return 200, {"CopyJobId": job_id, "CreationDate": t, "IsParent": False}


def bk_describe_copy_job(region, params, query, body):
    job = STATE.copy_jobs.get((region, params["id"]))
    if job is None:
        raise ApiError("ResourceNotFoundException", f"Copy job {params['id']} not found")
    return 200, {"CopyJob": {k: copy.deepcopy(v) for k, v in job.items() if not k.startswith("_")}}


# (method, path regex, handler); path segments are matched raw, then percent-decoded.
BACKUP_ROUTES = [
    ("PUT", r"/backup-vaults/(?P<vault>[^/]+)/?", bk_create_vault),
    ("GET", r"/backup-vaults/?", bk_list_vaults),
    ("GET", r"/backup-vaults/(?P<vault>[^/]+)/recovery-points/?", bk_list_recovery_points),
    ("GET", r"/backup-vaults/(?P<vault>[^/]+)/recovery-points/(?P<rp>[^/]+)/?", bk_describe_recovery_point),
    ("GET", r"/backup-vaults/(?P<vault>[^/]+)/?", bk_describe_vault),
    ("PUT", r"/backup-jobs/?", bk_start_backup_job),
    ("GET", r"/backup-jobs/(?P<id>[^/]+)/?", bk_describe_backup_job),
    ("PUT", r"/copy-jobs/?", bk_start_copy_job),
    ("GET", r"/copy-jobs/(?P<id>[^/]+)/?", bk_describe_copy_job),
]


# ---------------------------------------------------------------------------------------------------------------
# admin (test support, not AWS)
# ---------------------------------------------------------------------------------------------------------------
def admin_seed_recovery_point(body):
    region = body.get("region") or DEFAULT_REGION
    vault_name = body.get("vault")
    resource_arn = body.get("resource_arn")
    if not vault_name or not resource_arn:
        raise ApiError("InvalidParameterValueException", "vault and resource_arn are required")
    if not VAULT_NAME_RE.match(vault_name):
        raise ApiError("InvalidParameterValueException", f"Invalid backup vault name {vault_name!r}")
    image_id = body.get("image_id")
    if image_id is not None and not AMI_RE.match(image_id):
        raise ApiError("InvalidParameterValueException", f"image_id must look like ami-<hex>, got {image_id!r}")
    status = body.get("status") or "COMPLETED"
    if status not in ("COMPLETED", "PARTIAL", "DELETING", "EXPIRED", "AVAILABLE", "STOPPED", "CREATING"):
        raise ApiError("InvalidParameterValueException", f"Invalid status {status!r}")
    created = parse_time(body["creation_date"], "creation_date") if body.get("creation_date") is not None else None
    vault = STATE.vaults.get((region, vault_name)) or make_vault(region, vault_name)
    rp = make_recovery_point(region, vault, resource_arn, body.get("resource_type") or "EC2", image_id=image_id,
                             created=created, status=status)
    return rp_view(rp, True)


def admin_set_health(body):
    g = _find_eg(body.get("endpoint_group_arn"))
    state = body.get("health_state")
    if state not in ("INITIAL", "HEALTHY", "UNHEALTHY"):
        raise ApiError("InvalidArgumentException", "health_state must be INITIAL, HEALTHY or UNHEALTHY")
    for e in g["EndpointDescriptions"]:
        if e["EndpointId"] == body.get("endpoint_id"):
            e["HealthState"] = state
            if body.get("health_reason"):
                e["HealthReason"] = body["health_reason"]
            else:
                e.pop("HealthReason", None)
            return _eg_view(g)
    raise ApiError("EndpointNotFoundException", f"Endpoint {body.get('endpoint_id')} is not in {g['EndpointGroupArn']}")


def admin_copy_job_state(body):
    region = body.get("region") or DEFAULT_REGION
    job = STATE.copy_jobs.get((region, body.get("copy_job_id")))
    if job is None:
        raise ApiError("ResourceNotFoundException", f"Copy job {body.get('copy_job_id')} not found in {region}")
    state = body.get("state")
    if state not in ("COMPLETED", "FAILED", "PARTIAL"):
        raise ApiError("InvalidParameterValueException", "state must be COMPLETED, FAILED or PARTIAL")
    _finish_copy(job, state, body.get("status_message"))
    return {k: v for k, v in job.items() if not k.startswith("_")}


def admin_config(body):
    for k, v in body.items():
        if k not in STATE.config or not isinstance(v, type(STATE.config[k])):
            raise ApiError("InvalidParameterValueException", f"unknown or mistyped config key {k!r}")
        STATE.config[k] = v
    return dict(STATE.config)


def admin_dump():
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_")}
    return {
        "globalaccelerator": {
            "accelerators": [strip(a) for a in STATE.accelerators.values()],
            "listeners": [strip(ln) for ln in STATE.listeners.values()],
            "endpoint_groups": [strip(g) for g in STATE.endpoint_groups.values()],
        },
        "backup": {
            "vaults": [dict(strip(v), Region=r) for (r, _), v in STATE.vaults.items()],
            "recovery_points": [dict(rp, Region=r) for (r, _, _), rp in STATE.recovery_points.items()],
            "backup_jobs": [strip(j) for j in STATE.backup_jobs.values()],
            "copy_jobs": [strip(j) for j in STATE.copy_jobs.values()],
        },
        "config": dict(STATE.config),
    }


# ---------------------------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gapfill"
    sys_version = ""

    def log_message(self, fmt, *args):  # the one-line-per-request log is written by _send
        pass

    # --- plumbing --------------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _region(self) -> str:
        m = CRED_SCOPE_RE.search(self.headers.get("Authorization") or "")
        return m.group(1) if m else DEFAULT_REGION

    def _send(self, status: int, payload, content_type: str, headers: dict | None = None, note: str = ""):
        data = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.command} {self.path[:160]} {note} -> {status}\n")
        sys.stderr.flush()

    def do_GET(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        raw = self._read_body()
        split = urlsplit(self.path)
        path = split.path
        try:
            if path.startswith("/_gapfill/"):
                return self._admin(path, raw)
            target = self.headers.get("X-Amz-Target")
            if target is not None:
                return self._json_rpc(target, raw)
            return self._rest(path, split.query, raw)
        except Exception as e:  # never drop the connection on a bug: answer 500 the protocol's way
            import traceback
            traceback.print_exc()
            self._send(500, {"__type": "InternalServiceErrorException", "message": f"gapfill bug: {e!r}"},
                       "application/json", note="BUG")

    # --- awsJson1_1: Global Accelerator ----------------------------------------------------------------------
    def _json_rpc(self, target: str, raw: bytes):
        ctype = "application/x-amz-json-1.1"
        op = target[len(GA_TARGET_PREFIX):] if target.startswith(GA_TARGET_PREFIX) else None
        handler = GA_OPS.get(op) if self.command == "POST" and self.path.split("?")[0] == "/" else None
        region = self._region()
        try:
            if handler is None:
                raise ApiError("UnknownOperationException", f"Unknown operation {target}")
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise ApiError("SerializationException", f"Request body is not a JSON object: {e}")
            with STATE.lock:
                result = handler(body, region)
            self._send(200, result, ctype, note=f"ga.{op}")
        except ApiError as e:
            self._send(e.status, {"__type": e.code, "message": e.message, "Message": e.message}, ctype,
                       note=f"ga.{op or target} {e.code}")

    # --- restJson1: Backup -----------------------------------------------------------------------------------
    def _rest(self, path: str, qs: str, raw: bytes):
        region = self._region()
        op = "?"
        try:
            for method, pattern, fn in BACKUP_ROUTES:
                m = re.fullmatch(pattern, path)
                if m and method == self.command:
                    op = fn.__name__
                    params = {k: unquote(v) for k, v in m.groupdict().items()}
                    query = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
                    try:
                        body = json.loads(raw) if raw.strip() else {}
                        if not isinstance(body, dict):
                            raise ValueError("not an object")
                    except ValueError as e:
                        raise ApiError("SerializationException", f"Request body is not a JSON object: {e}")
                    with STATE.lock:
                        status, result = fn(region, params, query, body)
                    return self._send(status, result, "application/json", note=f"backup.{op} [{region}]")
            raise ApiError("UnknownOperationException", f"No operation for {self.command} {path}", status=404)
        except ApiError as e:
            body = {"Code": e.code, "Message": e.message, **e.extra}
            self._send(e.status, body, "application/json", headers={"x-amzn-ErrorType": e.code},
                       note=f"backup.{op} [{region}] {e.code}")

    # --- admin -----------------------------------------------------------------------------------------------
    def _admin(self, path: str, raw: bytes):
        routes = {
            ("GET", "/_gapfill/health"): lambda b: {"status": "ok", "service": "gapfill"},
            ("GET", "/_gapfill/state"): lambda b: admin_dump(),
            ("POST", "/_gapfill/reset"): lambda b: (STATE.reset(), {"reset": True})[1],
            ("POST", "/_gapfill/config"): admin_config,
            ("POST", "/_gapfill/backup/recovery-points"): admin_seed_recovery_point,
            ("POST", "/_gapfill/backup/copy-job-state"): admin_copy_job_state,
            ("POST", "/_gapfill/globalaccelerator/health"): admin_set_health,
        }
        fn = routes.get((self.command, path.rstrip("/")))
        try:
            if fn is None:
                raise ApiError("NotFound", f"no admin route {self.command} {path}", status=404)
            try:
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise ApiError("BadRequest", f"body is not a JSON object: {e}")
            with STATE.lock:
                result = fn(body)
            self._send(200, result, "application/json", note="admin")
        except ApiError as e:
            self._send(e.status, {"error": e.code, "message": e.message}, "application/json", note=f"admin {e.code}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128     # tests fire requests concurrently; the default backlog is 5


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=5100)
    ap.add_argument("--host", default="127.0.0.1", help="bind address (keep it loopback)")
    args = ap.parse_args(argv)
    server = Server((args.host, args.port), Handler)
    sys.stderr.write(f"gapfill listening on http://{args.host}:{server.server_address[1]}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
