"""Test support, not product code: CloudWatch's metric-alarm evaluation and its Lambda alarm action, modelled for
the `--probe` drill because ministack 1.5.33 does neither as AWS does.

What ministack does (docs/probe.md "Emulators"): it re-evaluates a metric alarm on each PutMetricData, but over
every datapoint of the namespace + metric name (dimensions ignored), as one statistic over the last
Period x EvaluationPeriods seconds (DatapointsToAlarm ignored), never on a timer and never for missing data
(TreatMissingData ignored), and it dispatches only SNS actions: a Lambda ARN in AlarmActions is stored, never
invoked. So on ministack alone the probe alarm could never start a failover.

What this module models, and nothing more (CloudWatch User Guide, "Evaluating an alarm" and "Configuring how
CloudWatch alarms treat missing data"):

- the alarm as DescribeAlarms returns it is the only input: Namespace, MetricName, Dimensions, Statistic, Period,
  EvaluationPeriods (N), DatapointsToAlarm (M, default N), Threshold, ComparisonOperator, TreatMissingData,
  AlarmActions;
- its datapoints are read back with GetMetricData for exactly that metric (namespace, name, dimensions), period and
  statistic, one value per period, periods aligned to multiples of Period (as CloudWatch aggregates);
- the evaluation range is the last 2 x N periods up to now (CloudWatch retrieves "a higher number of data points
  than the number specified as Evaluation Periods"; the exact number is not published, 2 x N is this model's);
- if none of the newest N periods is missing, those N are evaluated; if some are missing but the range holds at
  least N real datapoints, the newest N real ones are evaluated; otherwise all real ones plus, for the missing
  rest, the TreatMissingData value: `breaching` counts them as breaching, `notBreaching` as not, `ignore` keeps the
  current state, `missing` evaluates only the real ones (INSUFFICIENT_DATA when there are none);
- ALARM when at least M of the evaluated datapoints breach the threshold, else OK;
- on a change of state the alarm is moved with SetAlarmState (so detect, which re-reads the alarm with
  DescribeAlarms, sees it), and on a change to ALARM every Lambda ARN in AlarmActions is invoked asynchronously
  (InvocationType Event, as CloudWatch invokes alarm actions) with the payload CloudWatch's Lambda action sends
  (events/detect-alarm-probe.json, filled in from the alarm and this evaluation).

Not modelled: CloudWatch's own schedule (the drill calls `evaluate` after each probe round), OK/INSUFFICIENT_DATA
actions, alarms on metric math or percentiles, the ALARM -> OK transition's own datapoint rules. ministack's own
evaluation still runs on each PutMetricData and may move the stored state first; the model keeps its own state
and delivers the action only on its own transition to ALARM.
"""

import json
import os
from datetime import datetime, timedelta, timezone

from .console import kv, say
from .trigger import iso_ms

COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


class AlarmModel:
    """One metric alarm, evaluated as CloudWatch would (see the module docstring)."""

    def __init__(self, d, alarm_name, region):
        self.d, self.name, self.region = d, alarm_name, region
        self.cw = d.client("cloudwatch", region, "ministack")
        self.alarm = self.describe()
        self.state = self.alarm["StateValue"]  # the model's own state; starts from the stored one
        self.deliveries = []  # (function ARN, payload) of every Lambda action delivered

    def describe(self):
        return self.cw.describe_alarms(AlarmNames=[self.name])["MetricAlarms"][0]

    def datapoints(self, now):
        """{period start (epoch s): value} over the evaluation range, for the alarm's metric exactly."""
        a = self.alarm
        period, n = a["Period"], a["EvaluationPeriods"]
        end = (int(now.timestamp()) // period + 1) * period  # the end of the period `now` is in
        start = end - 2 * n * period
        r = self.cw.get_metric_data(
            MetricDataQueries=[{"Id": "m", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": a["Namespace"], "MetricName": a["MetricName"],
                           "Dimensions": a.get("Dimensions", [])},
                "Period": period, "Stat": a["Statistic"]}}],
            StartTime=datetime.fromtimestamp(start, timezone.utc), EndTime=datetime.fromtimestamp(end, timezone.utc))
        res = r["MetricDataResults"][0]
        points = {int(t.timestamp()) // period * period: v for t, v in zip(res["Timestamps"], res["Values"])}
        return points, [end - (i + 1) * period for i in range(2 * n)]  # newest period first

    def evaluate(self, now=None):
        """(state, reason, evaluated) as CloudWatch would decide now; evaluated = [(period start, value or None)]."""
        a = self.alarm
        now = now or datetime.now(timezone.utc)
        n = a["EvaluationPeriods"]
        m = a.get("DatapointsToAlarm") or n
        threshold, breaches = a["Threshold"], COMPARE[a["ComparisonOperator"]]
        treat = a.get("TreatMissingData", "missing")
        points, periods = self.datapoints(now)
        newest = periods[:n]
        real = [(p, points[p]) for p in periods if p in points]
        if all(p in points for p in newest):
            evaluated = [(p, points[p]) for p in newest]
        elif len(real) >= n:
            evaluated = real[:n]
        else:
            evaluated = real + [(p, None) for p in newest if p not in points][:n - len(real)]
        if treat == "ignore" and any(v is None for _, v in evaluated):
            return self.state, "missing data ignored: state kept", evaluated
        if treat == "missing":
            evaluated = [(p, v) for p, v in evaluated if v is not None]
            if not evaluated:
                return "INSUFFICIENT_DATA", "no datapoints in the evaluation range", evaluated
        missing_breach = treat == "breaching"
        bad = sum(1 for _, v in evaluated if (missing_breach if v is None else breaches(v, threshold)))
        state = "ALARM" if bad >= m else "OK"
        values = ", ".join("missing" if v is None else f"{v:g}" for _, v in evaluated)
        reason = (f"{bad} out of the last {len(evaluated)} datapoints [{values}] "
                  f"{'were' if state == 'ALARM' else 'were not (at least ' + str(m) + ')'} "
                  f"{a['ComparisonOperator']} {threshold:g}; missing data treated as {treat} "
                  f"(minimum {m} datapoints for ALARM)")
        return state, reason, evaluated

    def step(self):
        """Evaluates once; on a change of state sets it (SetAlarmState) and, on ALARM, delivers the Lambda actions.
        Returns the model's state."""
        now = datetime.now(timezone.utc)
        state, reason, evaluated = self.evaluate(now)
        kv("alarm model", f"{self.name}: {state} ({reason})")
        if state == self.state:
            return state
        previous, self.state = self.state, state
        data = {"version": "1.0", "queryDate": iso_ms(now), "statistic": self.alarm["Statistic"],
                "period": self.alarm["Period"], "threshold": self.alarm["Threshold"],
                "recentDatapoints": [v for _, v in evaluated if v is not None],
                "evaluatedDatapoints": [{"timestamp": iso_ms(datetime.fromtimestamp(p, timezone.utc)),
                                         **({} if v is None else {"value": v})} for p, v in evaluated]}
        self.cw.set_alarm_state(AlarmName=self.name, StateValue=state, StateReason=f"Threshold Crossed: {reason}",
                                StateReasonData=json.dumps(data))
        if state == "ALARM":
            alarm = self.describe()
            for action in alarm.get("AlarmActions", []):
                if action.split(":")[2:3] == ["lambda"]:
                    self.deliver(action, self.lambda_action_payload(alarm, previous, now))
        return state

    def lambda_action_payload(self, alarm, previous, changed):
        """The event CloudWatch's Lambda action sends: events/detect-alarm-probe.json's shape, this alarm's values."""
        with open(os.path.join(self.d.contract.root, "events", "detect-alarm-probe.json")) as f:
            event = json.load(f)
        event.update({"alarmArn": alarm["AlarmArn"], "accountId": alarm["AlarmArn"].split(":")[4],
                      "time": iso_ms(changed), "region": self.region})
        data = event["alarmData"]
        data["alarmName"] = alarm["AlarmName"]
        data["state"] = {"value": "ALARM", "reason": alarm["StateReason"],
                         "reasonData": alarm.get("StateReasonData", "{}"), "timestamp": iso_ms(changed)}
        data["previousState"] = {"value": previous, "reason": "(pilotlight alarm model: previous state)",
                                 "timestamp": iso_ms(changed - timedelta(seconds=1))}
        data["configuration"]["description"] = alarm.get("AlarmDescription", "")
        metric = data["configuration"]["metrics"][0]["metricStat"]
        metric["metric"] = {"namespace": alarm["Namespace"], "name": alarm["MetricName"],
                            "dimensions": {x["Name"]: x["Value"] for x in alarm.get("Dimensions", [])}}
        metric["period"], metric["stat"] = alarm["Period"], alarm["Statistic"]
        return event

    def deliver(self, function_arn, payload):
        r = self.d.lambda_client().invoke(FunctionName=function_arn, InvocationType="Event",
                                          Payload=json.dumps(payload).encode())
        self.deliveries.append((function_arn, payload))
        say(f"  alarm model: {self.name} -> ALARM: Lambda action delivered to {function_arn.split(':')[-1]} "
            f"(asynchronous invoke, HTTP {r['StatusCode']})")
