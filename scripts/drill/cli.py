"""--cli: the operator's day through the built `pilotlight` binary against the deployed stack (detect, the state
machine and the functions in ministack, the topology in moto and gapfill): status -> plan -> failover --dry-run
(followed, on a terminal: captured under `script`) -> follow -> failover --approval -> approve (followed) ->
report --json -> status. The CLI reads the plan back from detect's configuration (--detect) and reaches the
emulators through the same AWS_ENDPOINT_URL* variables the functions get."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from .console import DrillError, clock, kv, now_utc, phase, say
from .context import ACCOUNT
from .deploy import endpoint_environment
from .topology import put_replica_lag

COMMAND_TIMEOUT_SECONDS = 180


def cli_env(d):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PILOTLIGHT_"))}
    env.update(endpoint_environment(d))
    env.update({
        "AWS_ENDPOINT_URL_LAMBDA": d.args.ministack_url,  # detect lives in the stack
        "AWS_ACCESS_KEY_ID": ACCOUNT, "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": d.dr,
        "PILOTLIGHT_DETECT_FUNCTION": d.seeded["functions"]["detect"],
    })
    return env


def pilotlight(d, *args, expect=0, tty=False):
    """Runs `pilotlight <args>`, echoes its output, checks its exit status; returns stdout."""
    cmd = [d.contract.cli, *args]
    say(f"\n  $ pilotlight {' '.join(args)}" + ("   (on a terminal: script -qfc)" if tty else ""))
    if tty:
        # A pseudo-terminal, as an operator's: the spinner and the live lines, captured as the terminal got them.
        log = tempfile.NamedTemporaryFile(prefix="pilotlight-tty-", suffix=".log", delete=False).name
        shell = " ".join(json.dumps(a) for a in cmd)
        r = subprocess.run(["script", "-qfec", shell, log], env=cli_env(d), capture_output=True, text=True,
                           timeout=COMMAND_TIMEOUT_SECONDS)
        with open(log, "rb") as f:
            out = f.read().decode(errors="replace")
        os.unlink(log)
    else:
        r = subprocess.run(cmd, env=cli_env(d), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
        out = r.stdout
    shown = terminal_lines(out) if tty else out.splitlines()
    for line in shown:
        say(f"    {line}")
    if tty:
        say(f"    ({spinner_frames(out)} spinner redraws with the poll state in the capture, left out above)")
    if r.stderr.strip():
        say(f"    (stderr) {r.stderr.strip()[:2000]}")
    if r.returncode != expect:
        raise DrillError(f"`pilotlight {' '.join(args)}` exited {r.returncode} (expected {expect})")
    return out


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SPINNER = "⠁⠂⠄⡀⢀⠠⠐⠈⠉⠙⠚⠒⠲⠴⠤⠦⠖⠓⠋"


def segments(capture):
    """The capture cut where the terminal was told to clear a line or return, escape sequences removed."""
    for part in re.split(r"\x1b\[2K|\r|\n", capture):
        part = ANSI.sub("", part).strip()
        if part:
            yield part


def terminal_lines(capture):
    """What stayed on the terminal: the printed lines, without the spinner's redraws (each segment that starts
    with a spinner frame), and a line's trailing spinner frame cut off."""
    out = []
    for part in segments(capture):
        if part[0] in SPINNER or part.startswith("Script "):
            continue
        out.append(re.sub(r"\s*[" + SPINNER + r"].*$", "", part))
    return out


def spinner_frames(capture):
    return sum(1 for part in segments(capture) if part[0] in SPINNER)


def require(ok, what):
    kv("ok" if ok else "FAILED", what)
    if not ok:
        raise DrillError(what)


def published_report(d, name):
    """The report notify built at the end of the execution (its output)."""
    from .report import find_report
    arn = d.seeded["state_machine"].replace(":stateMachine:", ":execution:") + ":" + name
    out = d.sfn().describe_execution(executionArn=arn).get("output") or "null"
    return find_report(json.loads(out)) or {}


def same_report(a, b):
    key = lambda r: (r.get("outcome"), r.get("rto_seconds"), r.get("rpo_seconds"),
                     [(t["step"], t["calls"], t["done"]) for t in r.get("timeline", [])], r.get("changes"))
    return key(a) == key(b)


def interrupt_follow(d, arn):
    """Ctrl-C while following the paused run: following stops (exit 130, the re-attach hint), the execution goes on."""
    name = arn.rsplit(":", 1)[-1]
    say(f"\n  $ pilotlight follow {name}   (then Ctrl-C: SIGINT after the approval request is seen)")
    p = subprocess.Popen([d.contract.cli, "follow", name], env=cli_env(d), stdout=subprocess.PIPE, text=True)
    lines, deadline = [], time.monotonic() + 60
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        say(f"    {lines[-1]}")
        if "approval requested" in line or time.monotonic() > deadline:
            break
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=30)
    for line in rest.splitlines():
        say(f"    {line}")
    status = d.sfn().describe_execution(executionArn=arn)["status"]
    require(p.returncode == 130 and f"re-attach: pilotlight follow {name}" in rest and status == "RUNNING",
            f"Ctrl-C stopped following (exit {p.returncode}), the execution goes on ({status})")


def chromium_render(page):
    """The page as headless Chromium (Debian's package, scripts/install-tools.sh chromium) builds it: its DOM dump,
    and a screenshot beside the page. The flags keep it off the network this machine does not have."""
    browser = shutil.which("chromium")
    if browser is None:
        raise DrillError("chromium is needed to open the HTML report: scripts/install-tools.sh chromium")
    png = os.path.splitext(page)[0] + ".png"
    with tempfile.TemporaryDirectory(prefix="pilotlight-chromium-") as profile:
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"]
        dom = subprocess.run(flags + ["--dump-dom", "file://" + page], capture_output=True, text=True,
                             timeout=COMMAND_TIMEOUT_SECONDS, check=True).stdout
        subprocess.run(flags + [f"--screenshot={png}", "--window-size=1400,1000", "file://" + page],
                       capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS, check=True)
    if not os.path.exists(png) or os.path.getsize(png) < 10_000:
        raise DrillError(f"headless Chromium made no screenshot of {page}")
    return dom, png


def run(d):
    """Returns the approval-gated run's execution (DescribeExecution), for the drill's usual verification."""
    if not os.access(d.contract.cli, os.X_OK):
        raise DrillError(f"{d.contract.cli} missing: build it with `cargo build --workspace --bins`")
    if shutil.which("script") is None:
        raise DrillError("`script` (util-linux) is needed for the terminal capture")
    phase("the operator's commands: pilotlight status / plan (the plan read back from detect)")
    put_replica_lag(d, 2.0, now_utc())  # the replica keeps publishing its lag (trigger.py does the same)
    out = pilotlight(d, "status")
    require(f"primary {d.primary} (dials 100/0)" in out, "status: the primary is active")
    require(re.search(r"^lock +free$", out, re.M), "status: the flow lock is free")
    require(re.search(rf"^db dr +{d.dr} {d.seeded['db']['dr']}: replica of \S+:db:{d.seeded['db']['primary']}, available; "
                      r"lag [0-9.]+s \([0-9]+s old\)$", out, re.M),
            "status: the DR database is a replica of the primary, its lag shown with its age")
    st = json.loads(pilotlight(d, "status", "--json"))
    require(st["active"]["side"] == "primary" and st["lock"] == {"seen": None} and st["running"] == [], "status --json: primary active, lock free, nothing running")

    out = pilotlight(d, "readiness", "--readiness-function", d.seeded["functions"]["readiness"])
    ready = json.loads(pilotlight(d, "readiness", "--readiness-function", d.seeded["functions"]["readiness"], "--json"))
    not_passing = [f"{c['id']}={c['verdict']} ({c['seen']})" for c in ready["checks"] if c["verdict"] != "pass"]
    require(len(ready["checks"]) >= 15 and not not_passing,
            f"readiness (exit 0): all {len(ready['checks'])} checks pass on the drill topology"
            + (f"; not passing: {not_passing}" if not_passing else ""))

    out = pilotlight(d, "plan")
    require("preflight: every check passes" in out, "plan: the preflight passes")
    plan = json.loads(pilotlight(d, "plan", "--json"))
    dials = [c for c in plan["changes"] if c["field"] == "TrafficDialPercentage"]
    require(any(c["resource"] == d.plan["dr"]["endpoint_group_arn"] and c["to"] == 100 for c in dials)
            and all(not c["applied"] for c in plan["changes"]),
            f"plan: would dial DR to 100, nothing applied ({len(plan['changes'])} planned changes)")

    phase("pilotlight failover --dry-run, followed live on a terminal")
    out = pilotlight(d, "failover", "--dry-run", "--reason", "cli drill rehearsal", tty=True)
    lines = terminal_lines(out)
    require(any(" start  Failover recover" in l for l in lines) and any(" done   Report" in l for l in lines)
            and any("execution SUCCEEDED" in l for l in lines),
            "the terminal capture shows one line per step as it starts and finishes, then SUCCEEDED")
    states = [p for p in segments(out) if re.match("[" + SPINNER + r"] +\d+s (running|waiting) ", p)]
    require(states, "the terminal capture shows the spinner with the current state (on a terminal only), e.g. "
            + (repr(states[0]) if states else "none seen"))
    dry_name = next(l.split()[1].rsplit(":", 1)[-1] for l in lines if l.startswith("execution arn:"))

    phase("pilotlight follow <the dry run> (re-attach, plain lines) and report --json")
    out = pilotlight(d, "follow", dry_name)
    require(out.count("start  ") >= 4 and "RTO        n/a (dry-run" in out,
            "follow re-attaches: every step line again, and the dry-run's report headline")
    report = json.loads(pilotlight(d, "report", dry_name, "--json"))
    published = published_report(d, dry_name)
    require(report["dry_run"] and not any(c["applied"] for c in report["changes"])
            and same_report(report, published),
            f"report --json of the dry run: {report['outcome']}, {len(report['timeline'])} phases, nothing applied, "
            "the timeline, changes and outcome notify published as the execution output")

    phase("pilotlight failover --approval (real), then pilotlight approve (finds the pending request itself)")
    put_replica_lag(d, 2.0, now_utc())
    out = pilotlight(d, "failover", "--approval", "--no-follow", "--reason", "cli drill")
    arn = next(l.split()[1] for l in out.splitlines() if l.startswith("execution arn:"))
    name = arn.rsplit(":", 1)[-1]
    interrupt_follow(d, arn)
    out = pilotlight(d, "approve", "--reason", "cli drill: approved")
    require(f"detect: approved {name}" in out and "execution SUCCEEDED" in out,
            "approve answered the paused run (no token given) and followed it to SUCCEEDED")
    d.args.approval, d.approval_requested, d.approval_answered = "approve", True, True

    phase("pilotlight report --json and status after the failover")
    report = json.loads(pilotlight(d, "report", name, "--json"))
    require(same_report(report, published_report(d, name)), "report --json is the report notify published")
    require(report["outcome"] == "succeeded" and report["rto_seconds"] is not None
            and report["approval"] and any(c["applied"] for c in report["changes"]),
            f"report --json: succeeded, RTO {report['rto_seconds']} s, approved, "
            f"{len(report['changes'])} changes applied")
    page = os.path.join(os.environ.get("PILOTLIGHT_DRILL_RUN") or tempfile.gettempdir(), f"report-{name}.html")
    pilotlight(d, "report", name, "--html", page)
    with open(page) as f:
        html = f.read()
    require("<script" not in html and not re.search(r'(src|href)="(https?:)?//', html),
            f"report --html {os.path.basename(page)}: one self-contained page (no script, nothing fetched)")
    dom, png = chromium_render(page)
    rows = re.findall(r'<g class="row"[^>]*data-phase="([^"]+)"[^>]*>', dom)
    branches = re.findall(r'<g class="row"[^>]*data-phase="([^"]+)"[^>]*data-branch="recover"', dom)
    require({"promote-db", "scale-compute"} <= set(branches) and {"shift-traffic", "update-dns"} <= set(rows)
            and 'id="rto-marker"' in dom and f"RTO {report['rto_seconds']:.1f} s" in dom,
            f"headless Chromium renders it: {len(rows)} chart rows, the recover branches {sorted(set(branches))} side by "
            f"side, the RTO marker at {report['rto_seconds']:.1f} s (screenshot {png}, {os.path.getsize(png)} bytes)")
    out = pilotlight(d, "status")
    require(f"dr {d.dr} (dials 0/100)" in out and re.search(r"^lock +free$", out, re.M),
            "status: DR active, the lock released")
    pilotlight(d, "approve", expect=1)  # nothing waits for an answer any more: a clear error, nothing sent

    phase("pilotlight failback --approval, then pilotlight reject: the run ends, nothing changed")
    out = pilotlight(d, "failback", "--approval", "--no-follow", "--reason", "cli drill: a failback to reject")
    failback = next(l.split()[1] for l in out.splitlines() if l.startswith("execution arn:")).rsplit(":", 1)[-1]
    out = pilotlight(d, "reject", "--reason", "cli drill: rejected", expect=1)  # followed to FAILED: exit 1
    require(f"detect: rejected {failback}" in out and "execution FAILED" in out,
            "reject answered the paused failback (no token given), followed to FAILED (exit 1)")
    out = pilotlight(d, "status")
    require(f"dr {d.dr} (dials 0/100)" in out and re.search(r"^lock +free$", out, re.M),
            "status: DR still active after the rejected failback, the lock released")
    say(f"  {clock()}  cli drill: done")
    return d.sfn().describe_execution(executionArn=arn)
