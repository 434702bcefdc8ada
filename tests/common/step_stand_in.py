#!/usr/bin/env python3
# Stand-in for the pilotlight step functions (tests/report.rs, tests/report_html.rs), deployed into ministack's
# Lambda as a provided.al2023 function: answers each call through the Lambda Runtime API with a step report
# (docs/contract.md) computed from its input. `start`/`status` are done once `call` reaches `polls`, a dial step
# moves the DR dial 0 -> 25 -> 50 -> 100, a fence call reports its side fenced, a notify call answers "published".
import json, os, urllib.request
from datetime import datetime, timedelta, timezone

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
NEXT_DIAL = {0: 25, 25: 50, 50: 100}
FENCED = {"promote-db": "old writer", "scale-compute": "primary Auto Scaling group",
          "shift-traffic": "primary traffic dial"}


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answer(event):
    if "kind" in event:  # what notify returns: not a step report
        return {"step": "notify", "kind": event["kind"], "message": "published"}
    started = datetime.now(timezone.utc)
    step, action = event["step"], event["action"]
    report = {"step": step, "action": action, "direction": "failover", "dry_run": False,
              "started_at": rfc3339(started), "finished_at": rfc3339(started + timedelta(milliseconds=40)),
              "saw": {}, "changes": [], "done": True, "message": f"{step} {action} done"}
    if "dial" in event:
        dial = event["dial"]
        to = NEXT_DIAL.get(dial, 100)
        report["saw"] = {"dial": to}
        report["changes"] = [{"resource": "eg-dr", "field": "TrafficDialPercentage", "from": dial, "to": to,
                              "applied": True}]
        report["done"] = to == 100
        report["message"] = f"dr dial {dial} -> {to}"
    elif "polls" in event:
        report["done"] = event["call"] >= event["polls"]
        report["saw"] = {"call": event["call"]}
        report["message"] = f"{step} {action}: " + ("done" if report["done"] else "in progress")
        if step == "scale-compute" and action == "start":
            report["changes"] = [{"resource": "asg-dr", "field": "DesiredCapacity", "from": 0, "to": 2,
                                  "applied": True}]
        if step == "promote-db" and action == "start":
            report["rpo_seconds"] = 3.0
            report["saw"]["rpo_rule"] = "lag 3 s, 20 s old, within the plan's maximum of 60 s"
    elif action == "fence":
        report["saw"] = {"fence": {"what": FENCED[step], "resource": step + "-primary", "region": "ap-northeast-2",
                                   "status": "fenced", "detail": "stand-in"}}
    return report


while True:
    with urllib.request.urlopen(API + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps(answer(event)).encode()
    urllib.request.urlopen(urllib.request.Request(API + request_id + "/response", data=body, method="POST")).read()
