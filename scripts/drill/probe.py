"""--probe: the primary's ALB stops answering and the only signal is the probe's alarm in the DR region.

A loopback HTTP server stands in for the primary ALB's health path; the stack is deployed with ProbeUrls pointing at
it (so the template creates the probe, its alarm and the quorum entry). The drill invokes the probe with the
Scheduled Event (events/probe-scheduled.json) while the server answers (Healthy 1: the alarm must stay OK), stops the
server, invokes it again (Healthy 0), and after each round lets the alarm model (alarm_model.py) evaluate the probe
alarm as CloudWatch would and deliver its Lambda action to detect. The execution detect starts is then followed as in
the default drill."""

import json
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .alarm_model import AlarmModel
from .console import DrillError, clock, kv, now_utc, phase, say
from .context import ACCOUNT
from .trigger import invoke

# M of N for the drill's probe alarm (template parameters ProbeAlarmDatapoints / ProbeAlarmEvaluationPeriods).
# The alarm is minutes old and its period is 60 s, so the evaluation range holds one or two real datapoints and
# the rest is missing = breaching: with M = N the healthy rounds leave it OK (at most N - 1 missing) and the first
# unhealthy period takes it to ALARM (docs/drill.md "--probe").
PROBE_ALARM_DATAPOINTS = 2
HEALTHY_ROUNDS = 2
ROUNDS_SECONDS = 10  # the healthy rounds and the first unhealthy one take ~3 s; start them early in a period
# Should a period boundary still fall between them (a slow machine), the newest two periods are [0, 1] (OK) and the
# alarm needs the next period's 0: the probe keeps going for up to this long.
MAX_OUTAGE_SECONDS = 75


class HealthServer:
    """The primary ALB's /health, on an ephemeral 127.0.0.1 port, in this process; `stop` closes the port (the
    probe then gets connection refused, as from a load balancer that is gone)."""

    def __init__(self):
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits += 1
                body = b"ok\n"
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def template_parameters(d):
    """The probe's template parameters for this drill (beside the plan's)."""
    d.health = HealthServer()
    n = str(PROBE_ALARM_DATAPOINTS)
    return {"ProbeUrls": d.health.url, "ProbeTimeoutMs": "1000", "ProbeAlarmPeriodSeconds": "60",
            "ProbeAlarmEvaluationPeriods": n, "ProbeAlarmDatapoints": n}


def scheduled_event(d):
    with open(os.path.join(d.contract.root, "events", "probe-scheduled.json")) as f:
        event = json.load(f)
    t = now_utc()
    event.update({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": d.dr, "account": ACCOUNT})
    return event


def probe_round(d, label):
    # Rounds at least a second apart: ministack keeps whole-second timestamps, and the check reads 1 s buckets.
    time.sleep(max(0.0, getattr(d, "last_probe", 0.0) + 1.1 - time.monotonic()))
    d.last_probe = time.monotonic()
    report = invoke(d, d.seeded["functions"]["probe"], scheduled_event(d))
    say(f"  {clock()}  probe ({label}): {json.dumps(report, default=str)[:300]}")
    return report


def same_period(period, seconds_needed):
    """Waits, if needed, so that the next `seconds_needed` seconds fall in one alarm period: the healthy and the
    unhealthy rounds then share the period, and the outcome does not depend on where the minute boundary falls."""
    left = period - time.time() % period
    if left < seconds_needed:
        say(f"  {clock()}  drill: {left:.0f} s left in this {period} s period; waiting for the next one")
        time.sleep(left + 0.2)


def trigger_probe(d):
    """Returns the ARN of the execution the probe alarm's Lambda action made detect start."""
    alarm_name = d.seeded["probe_alarm"]
    phase(f"trigger: the probe ({d.health.url}) -> alarm {alarm_name} (modelled: alarm_model.py) -> detect")
    model = AlarmModel(d, alarm_name, d.dr)
    a = model.alarm
    kv("probe alarm", f"{a['Statistic']} of {a['MetricName']} {a.get('Dimensions')} < {a['Threshold']:g}, "
       f"{a.get('DatapointsToAlarm')} of {a['EvaluationPeriods']} x {a['Period']} s, missing = "
       f"{a.get('TreatMissingData')}, actions {[x.split(':')[-1] for x in a.get('AlarmActions', [])]}")
    same_period(a["Period"], ROUNDS_SECONDS)
    d.probe_started = now_utc()
    for i in range(HEALTHY_ROUNDS):
        probe_round(d, f"healthy round {i + 1}")
        if model.step() == "ALARM":
            raise DrillError(f"the probe alarm went to ALARM while the primary answered ({d.health.hits} GETs)")
    kv("primary health path", f"{d.health.hits} GETs answered; alarm {model.state}")
    d.health.stop()
    d.probe_outage_at = now_utc()
    d.last_probe = time.monotonic()
    say(f"\n  {clock()}  drill: the primary's ALB stops answering ({d.health.url} closed)")
    deadline, rounds = time.monotonic() + MAX_OUTAGE_SECONDS, 0
    while True:
        rounds += 1
        probe_round(d, f"outage round {rounds}")
        if model.step() == "ALARM":
            break
        if time.monotonic() > deadline:
            raise DrillError(f"the probe alarm did not reach ALARM within {MAX_OUTAGE_SECONDS} s ({rounds} rounds)")
    d.probe_model = model
    return wait_for_execution(d)


def wait_for_execution(d, timeout=30.0):
    """detect was invoked asynchronously (as CloudWatch does): the execution it started, from ListExecutions."""
    sfn, deadline = d.sfn(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = sfn.list_executions(stateMachineArn=d.seeded["state_machine"])["executions"]
        if runs:
            run = max(runs, key=lambda r: r["startDate"])
            kv("execution started", f"{run['name']} ({run['status']})")
            return run["executionArn"]
        time.sleep(0.5)
    raise DrillError(f"no execution started within {timeout:.0f} s of the Lambda action (detect's log: ministack log)")


def verify_probe(d, execution, check):
    """The probe checks: the execution was started by the probe alarm, the metrics show the outage."""
    try:
        trigger = json.loads(execution.get("input") or "{}").get("trigger", {})
    except ValueError:
        trigger = {}
    alarms = json.dumps(trigger.get("alarms", trigger), default=str)
    check(d.seeded["probe_alarm"] in alarms and not any(a in alarms for a in d.seeded["alarms"]),
          f"the execution was started by the probe alarm only (trigger: {alarms[:300]})")
    check(len(d.probe_model.deliveries) == 1, f"one Lambda action delivered ({len(d.probe_model.deliveries)})")
    cw = d.client("cloudwatch", d.dr, "ministack")
    a = d.probe_model.alarm
    r = cw.get_metric_data(
        MetricDataQueries=[{"Id": "h", "ReturnData": True, "MetricStat": {"Metric": {
            "Namespace": a["Namespace"], "MetricName": a["MetricName"], "Dimensions": a.get("Dimensions", [])},
            "Period": 1, "Stat": "Minimum"}}],
        StartTime=d.probe_started - timedelta(seconds=5), EndTime=datetime.now(timezone.utc) + timedelta(seconds=5),
        ScanBy="TimestampAscending")["MetricDataResults"][0]
    series = list(zip(r["Timestamps"], r["Values"]))
    before = [v for t, v in series if t < d.probe_outage_at]
    after = [v for t, v in series if t >= d.probe_outage_at]
    kv("probe metric", f"{a['MetricName']}{a.get('Dimensions')}: before the outage {before}, after {after}")
    check(before and all(v == 1 for v in before) and after and all(v == 0 for v in after),
          "the probe's metric shows the outage: 1s while the primary answered, then 0s")
    state = cw.describe_alarms(AlarmNames=[d.seeded["probe_alarm"]])["MetricAlarms"][0]["StateValue"]
    check(state == "ALARM", f"the probe alarm is in ALARM ({state}); the ALB alarms stayed OK: "
          + ", ".join(f"{x['AlarmName']}={x['StateValue']}" for x in
                      cw.describe_alarms(AlarmNames=d.seeded["alarms"])["MetricAlarms"]))
