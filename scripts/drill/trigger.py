"""What starts the execution: an alarm really goes to ALARM and its Lambda-action event is delivered to detect
(ministack's alarm actions only notify SNS topics), or an operator's manual command to detect."""

import json
import os
from datetime import timedelta, timezone

from .console import DrillError, clock, kv, phase, say


def iso_ms(t):
    """CloudWatch's Lambda-action timestamp format: 2026-11-29T10:15:00.490+0000."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def lambda_action_event(d, alarm):
    """The payload a CloudWatch alarm's Lambda action sends (events/detect-alarm-lambda-action.json), built from
    the alarm as DescribeAlarms shows it after the state change."""
    with open(os.path.join(d.contract.root, "events", "detect-alarm-lambda-action.json")) as f:
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
    if d.direction == "failover":
        # The replica keeps publishing its lag: a datapoint from now (the preflight counts only one at most 120 s
        # old; the one seeded before the deploy may be older by now).
        from .console import now_utc
        from .topology import put_replica_lag
        put_replica_lag(d, 2.0, now_utc())
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
    elif d.args.probe:
        from .probe import trigger_probe
        return trigger_probe(d)
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
