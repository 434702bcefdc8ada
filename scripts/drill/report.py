"""The execution output: the report (summary, RTO, RPO, timeline, every change) printed, and read for checks."""

import json

from .console import kv, phase, say


def find_report(out):
    """The report (shared/src/steps/notify/report.rs: timeline, RTO, RPO, changes) inside the execution output, if any."""
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
    arn = d.plan[side]["endpoint_group_arn"]
    dials = [c.get("to") for c in report.get("changes", [])
             if c.get("resource") == arn and c.get("field") == "TrafficDialPercentage"]
    return dials, report.get("history", "")
