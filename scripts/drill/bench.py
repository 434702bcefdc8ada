"""--bench (with --timing): the RTO figures of one drill run under the AWS timing model (figures, not pass/fail).

Printed from what the run left: the execution's history (ministack), the report (its trigger time and timeline) and
the fault proxy's record of every modelled change (when AWS would have made it effective):

* RTO = alarm (the trigger's state change time) -> traffic shifted: shift-traffic's last report, or the accelerator
  DEPLOYED after that dial change (T_ga later), whichever is later
* critical path = max(T_db, T_compute) + T_ga, the physical limit; overhead = RTO - critical path
* sequential = the same run with the recover branches one after the other (the recover phase's wall time replaced by
  the sum of its branches' times)
* cost of the execution: state transitions (StateEntered events) x the Standard workflow price; Lambda GB-s from the
  invocation times the history shows (an upper bound of the billed durations: they include the emulator's own
  overhead) x the memory size x the arm64 price, plus requests; SNS publishes (one per notify call); idle cost/month
* "replica became writable -> the step reports it": the modelled writable time against the promote-db report that
  said done, and the same for a fixed-sleep-60 s + 15 s-poll design (computed from its definition, at the same
  scale as this run's poll settings and at production settings)
"""

import json
import math
import os
from datetime import datetime, timezone

from .console import kv, phase, say
from .follow import history

# us-east-1 list prices (2026): Step Functions Standard per state transition, Lambda arm64 per GB-s and per request,
# SNS standard topic per publish (the first million a month are free; not counted here).
PRICE_TRANSITION = 0.025 / 1000
PRICE_ARM64_GB_S = 0.0000133334
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_SNS_PUBLISH = 0.50 / 1_000_000
MEMORY_MB = 128                          # template.yaml Globals.Function.MemorySize
PRODUCTION_POLL_SECONDS = 15             # plans/reference.env defaults (plan.rs)
PRODUCTION_DIAL_BAKE_SECONDS = 30
PEER_SLEEP_SECONDS, PEER_POLL_SECONDS = 60, 15  # the peer design: sleep 60 s in the promote Lambda, then 15 s polls
PROBE_RUNS_PER_MONTH = 60 * 24 * 30      # ProbeSchedule rate(1 minute)
READINESS_RUNS_PER_MONTH = 2 * 24 * 30   # ReadinessSchedule rate(30 minutes), the template's default
READINESS_CHECKS = 21                    # checks on the reference topology (docs/readiness.md)
PRICE_METRIC_MONTH = 0.30                # CloudWatch custom metric, first 10,000
PRICE_ALARM_MONTH = 0.10                 # CloudWatch standard-resolution alarm
BRANCH_STATES_PER_TASK = 6               # a loop turn in a Parallel branch: task, done?, count, budget, soon?, wait


def ts(text):
    """An RFC 3339 time (nanoseconds allowed) as epoch seconds."""
    text = text.rstrip("Z")
    main, _, frac = text.partition(".")
    t = datetime.fromisoformat(main).replace(tzinfo=timezone.utc).timestamp()
    return t + (float("0." + frac[:6]) if frac else 0.0)


def epoch(dt):
    return dt.timestamp() if hasattr(dt, "timestamp") else float(dt)


def soon(poll):
    """poll_soon_seconds in shared/src/step.rs: a fifth of the interval, at least 1 s."""
    return max(1, poll // 5)


def pilotlight_reports_after(t_db, poll):
    """When pilotlight's promote-db reports writable, from its definition: start requests the promotion (t=0), the
    state machine waits `poll`, then status; `rebooting` (the second half of T_db in the model) asks for the next
    poll after soon(poll); Lambda times left out."""
    t = poll
    while t < t_db:
        t += soon(poll) if t >= t_db / 2 else poll
    return t


def peer_reports_after(t_db, sleep, poll):
    """The fixed-sleep design: the promote Lambda sleeps `sleep` after the request, then polls every `poll`."""
    t = sleep
    while t < t_db:
        t += poll
    return t


def show(d, execution):
    phase("bench (figures, not pass/fail): RTO under the AWS timing model")
    rule = d.args.timing_rule
    t_db, t_compute = rule.get("db_seconds", 0.0), rule.get("compute_seconds", 0.0)
    t_ga, t_dns = rule.get("ga_seconds", 0.0), rule.get("dns_seconds", 0.0)
    poll = int(d.plan.get("timing", {}).get("poll_seconds") or 0)
    bake = int(d.plan.get("timing", {}).get("dial_bake_seconds") or 0)
    factor = PRODUCTION_POLL_SECONDS / poll if poll else float("nan")
    kv("timing model", f"T_db {t_db:g} s, T_compute {t_compute:g} s, T_ga {t_ga:g} s, T_dns {t_dns:g} s (real seconds)")
    kv("poll settings", f"poll {poll} s, dial bake {bake} s, near-completion poll {soon(poll)} s: production "
       f"{PRODUCTION_POLL_SECONDS} s / {PRODUCTION_DIAL_BAKE_SECONDS} s scaled down by {factor:g}")

    output = json.loads(execution.get("output") or "{}")
    report = output.get("report") or {}
    trigger = (report.get("trigger") or {}).get("state_change_time")
    timeline = {t["step"]: t for t in report.get("timeline") or []}
    changes = d.faults.admin("GET", "timing")["changes"]
    if not trigger or "shift-traffic" not in timeline:
        say(f"  bench: no trigger time or shift-traffic in the report ({sorted(timeline)}): no figures")
        return False
    alarm = ts(trigger)
    shifted = ts(timeline["shift-traffic"]["finished_at"])
    ga = [c for c in changes if c["kind"] == "ga" and c["began_at"] <= shifted + 1]
    deployed = max([shifted] + [c["effective_at"] for c in ga])
    rto = deployed - alarm
    critical = max(t_db, t_compute) + t_ga
    kv("RTO", f"{rto:.1f} s  (alarm {trigger} -> traffic shifted {shifted - alarm:.1f} s, accelerator DEPLOYED "
       f"{deployed - alarm:.1f} s)")
    kv("critical path", f"{critical:.1f} s  = max(T_db {t_db:g}, T_compute {t_compute:g}) + T_ga {t_ga:g}")
    kv("overhead", f"{rto - critical:.1f} s  = RTO - critical path")

    events = history(d.sfn(), execution["executionArn"])
    entered = {}
    for e in events:
        det = e.get("stateEnteredEventDetails")
        if det:
            entered.setdefault(det["name"], epoch(e["timestamp"]))
    prefix = next((p for p in ("Failover", "Graceful", "Failback") if f"{p} shift-traffic init" in entered), None)
    kv("where the time went", ", ".join(
        f"{a} -> {b} {entered[b] - entered[a]:.1f} s" for a, b in (
            ("FenceOnly?", "ChooseFlow"), ("ChooseFlow", f"{prefix} shift-traffic init"))
        if a in entered and b in entered)
        + f"; execution start {entered.get('FenceOnly?', alarm) - alarm:.1f} s after the alarm (detect)")
    promote, scale = timeline.get("promote-db"), timeline.get("scale-compute")
    if promote and scale and report.get("mode") == "ungraceful":
        p = ts(promote["finished_at"]) - ts(promote["started_at"])
        c = ts(scale["finished_at"]) - ts(scale["started_at"])
        kv("sequential", f"{rto + min(p, c):.1f} s  (branches one after the other: recover {max(p, c):.1f} s -> "
           f"{p + c:.1f} s; promote-db {p:.1f} s, scale-compute {c:.1f} s)")

    # cost of this execution. ministack records no state events inside Parallel branches and no previousEventId:
    # a branch's states are counted from its task results (each loop turn is the task, done?, count, budget, soon?
    # and a wait: BRANCH_STATES_PER_TASK), and each task result is paired with the oldest open scheduling of the
    # same function.
    with open(os.path.join(os.environ.get("PILOTLIGHT_DRILL_RUN") or os.path.join(d.contract.root, ".tools", "run"), "bench-history.json"), "w") as f:
        json.dump(events, f, default=str)
    top = sum(1 for e in events if e["type"].endswith("StateEntered"))
    open_calls, durations, notifies, in_parallel = {}, [], 0, 0
    current = None
    parallel = {n for n, st in json.loads(d.sfn().describe_state_machine(
        stateMachineArn=d.seeded["state_machine"])["definition"])["States"].items() if st["Type"] == "Parallel"}
    notify_arn = d.seeded["functions"].get("notify")
    for e in events:
        det = next((v for k, v in e.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        if e["type"].endswith("StateEntered"):
            current = det.get("name")
        elif e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"):
            open_calls.setdefault(det.get("resource"), []).append(epoch(e["timestamp"]))
            in_parallel += current in parallel
        elif e["type"] in ("TaskSucceeded", "TaskFailed", "LambdaFunctionSucceeded", "LambdaFunctionFailed"):
            started = open_calls.get(det.get("resource")) or []
            if started:
                durations.append(math.ceil((epoch(e["timestamp"]) - started.pop(0)) * 1000) / 1000)
                notifies += det.get("resource") == notify_arn and e["type"].endswith("Succeeded")
    transitions = top + in_parallel * BRANCH_STATES_PER_TASK
    invocations, seconds = len(durations), sum(durations)
    gb_s = seconds * MEMORY_MB / 1024
    cost = transitions * PRICE_TRANSITION + gb_s * PRICE_ARM64_GB_S + invocations * PRICE_LAMBDA_REQUEST \
        + notifies * PRICE_SNS_PUBLISH
    kv("cost of this execution", f"${cost:.6f}: {transitions} state transitions x $0.025/1000 = "
       f"${transitions * PRICE_TRANSITION:.6f} ({top} top-level + {in_parallel} branch tasks x "
       f"{BRANCH_STATES_PER_TASK}, an estimate: ministack records no branch states); {invocations} Lambda invocations, {seconds:.1f} s x {MEMORY_MB} MB = "
       f"{gb_s:.2f} GB-s x ${PRICE_ARM64_GB_S} (arm64) = ${gb_s * PRICE_ARM64_GB_S:.6f} + requests "
       f"${invocations * PRICE_LAMBDA_REQUEST:.6f} (invocation times as the history shows them: an upper bound of "
       f"the billed durations); {notifies} SNS publishes = ${notifies * PRICE_SNS_PUBLISH:.6f}")
    probe = PROBE_RUNS_PER_MONTH * (PRICE_LAMBDA_REQUEST + 0.2 * MEMORY_MB / 1024 * PRICE_ARM64_GB_S)
    readiness = READINESS_RUNS_PER_MONTH * (PRICE_LAMBDA_REQUEST + 1.0 * MEMORY_MB / 1024 * PRICE_ARM64_GB_S)
    # ReadinessFailures and ReadinessWarnings per check and for Check=all, published every run: full-month metrics.
    readiness_metrics = 2 * (READINESS_CHECKS + 1) * PRICE_METRIC_MONTH
    kv("idle cost per month", f"$0 at rest for the failover path (Step Functions, Lambda, SNS bill per use); the "
       f"readiness schedule (on by default: rate(30 minutes), {READINESS_RUNS_PER_MONTH} runs, 1 s assumed) "
       f"${readiness:.3f} of Lambda + {2 * (READINESS_CHECKS + 1)} custom metrics (failures and warnings per check "
       f"and for all, {READINESS_CHECKS} checks) ${readiness_metrics:.2f} + its alarm ${PRICE_ALARM_MONTH:.2f} = "
       f"${readiness + readiness_metrics + PRICE_ALARM_MONTH:.2f}; the optional probe (rate(1 minute), "
       f"{PROBE_RUNS_PER_MONTH} runs, 200 ms assumed) ${probe:.2f} of Lambda plus one metric per target + "
       f"Target=all (${PRICE_METRIC_MONTH:.2f} each) and its alarm")

    # replica writable -> the step reports it
    db = [c for c in changes if c["kind"] == "db"]
    if db and promote:
        writable = db[0]["effective_at"]
        reported = ts(promote["finished_at"])
        prod = pilotlight_reports_after(t_db, PRODUCTION_POLL_SECONDS) - t_db
        peer_scaled = peer_reports_after(t_db, PEER_SLEEP_SECONDS / factor, PEER_POLL_SECONDS / factor) - t_db
        peer_prod = peer_reports_after(t_db, PEER_SLEEP_SECONDS, PEER_POLL_SECONDS) - t_db
        kv("writable -> reported", f"pilotlight {reported - writable:.1f} s measured (poll {poll} s; "
           f"{pilotlight_reports_after(t_db, poll) - t_db:g} s from its definition), {prod:g} s at production "
           f"(poll {PRODUCTION_POLL_SECONDS} s, near completion {soon(PRODUCTION_POLL_SECONDS)} s)")
        kv("", f"fixed-sleep-60 s + 15 s-poll {peer_scaled:g} s at this scale ({PEER_SLEEP_SECONDS / factor:g} s + "
           f"{PEER_POLL_SECONDS / factor:g} s), {peer_prod:g} s at production (from its definition, T_db {t_db:g} s)")
    for c in changes:
        kv(f"  modelled {c['kind']}", f"{c['resource'][-60:]}: {c['shows']} for {c['seconds']:g} s, "
           f"{c['effective']} at +{c['effective_at'] - alarm:.1f} s")
    return True
