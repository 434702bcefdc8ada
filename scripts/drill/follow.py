"""Follows the execution: GetExecutionHistory every 0.5 s, one line per state entered, per Lambda result and per
failure; meanwhile plays the world's part (the replica catches up once writes drained, the operator answers)."""

import json
import time
from datetime import timedelta

from .console import DrillError, clock, kv, now_utc, phase, say
from .operators import answer_approval
from .topology import put_replica_lag


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
            # Stamped with the minute after the drain (datapoints carry their minute's start): only a 0 taken
            # after the drain finished counts for the catch-up.
            after = now_utc().replace(second=0, microsecond=0) + timedelta(minutes=1)
            put_replica_lag(d, 0.0, after, side)
            if d.args.aurora:
                say(f"  {clock()}  drill: writes drained -> the secondary catches up: AuroraGlobalDBRPOLag 0 put "
                    f"for {d.seeded['aurora']['ids'][side]}")
            else:
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
        for hook in d.hooks:
            hook(d, execution_arn, events[seen:])
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
