"""The drill's command line and the order of its phases; exit status 0 only when the end topology is the expected
one (see docs/drill.md)."""

import argparse
import os
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# --throttle <step>: throttle.KEY_OPERATIONS but promote-db, which moto cannot show stuck (throttle.BEYOND_STEPS)
THROTTLE_STEPS = ("scale-compute", "shift-traffic", "update-dns")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/drill.sh",
        description="pilotlight failover drill on emulators (see docs/drill.md)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--primary-region", default="ap-northeast-2")
    p.add_argument("--dr-region", default="ap-northeast-1")
    p.add_argument("--alarm-region", default=None, help="region of the CloudWatch alarms (default: the DR region)")
    p.add_argument("--name-prefix", default="drill", help="prefix of every resource name (a run id is appended)")
    p.add_argument("--plan", default=os.path.join(ROOT, "plans", "drill.env"),
                   help="static plan values (capacities, dial steps, timing, DNS mode)")
    p.add_argument("--dry-run", action="store_true",
                   help='run the chain with {"command":"failover","dry_run":true} and assert nothing changed')
    p.add_argument("--graceful", action="store_true",
                   help='trigger with the manual command {"command":"failover","mode":"graceful"} instead of the alarm '
                        "(an alarm starts an ungraceful failover): the dials move step by step (PILOTLIGHT_DIAL_STEPS)")
    p.add_argument("--primary-outage", action="store_true",
                   help="from the moment the alarm fires, every call the functions make to the primary region (moto, "
                        "gapfill) hangs, as in a regional outage: the failover must not depend on it")
    p.add_argument("--probe", action="store_true",
                   help="the primary's health path (a loopback server) stops answering and the only signal is the "
                        "probe's alarm in the DR region: probe -> alarm (modelled, scripts/drill/alarm_model.py) -> "
                        "detect -> failover")
    p.add_argument("--throttle", choices=("within",) + THROTTLE_STEPS, default=None,
                   help="the functions reach moto and gapfill through tests/support/faultproxy.py: `within` throttles "
                        "the first 2 calls of every step's key operation (the execution must succeed); a step name "
                        "throttles that step's operation every time (the drill stops the execution once the state "
                        "machine has retried it; the operators must get the ABORTED notice)")
    p.add_argument("--until-failed", action="store_true",
                   help="with --throttle <step>: do not stop the execution; let the state machine's retries run out "
                        "(about 3 minutes) and check the failure notice names the step, the lock is released and the "
                        "status rule's FAILED notice arrives")
    p.add_argument("--dns-down", nargs="?", const="deny", choices=("deny", "blackhole"), default=None,
                   help="Route 53's writes answer AccessDenied (`deny`, the default) or never answer (`blackhole`: "
                        "every update-dns attempt times out and the state machine's Retry runs out; the drill plans "
                        "a 2 s DR operation timeout and shortens ministack's Retry sleeps, see docs/drill.md) (fault "
                        "proxy): the failover must SUCCEED degraded, the report and its notification warn, and a "
                        "re-run of update-dns (faults off) completes DNS (scripts/drill/failure_paths.py)")
    p.add_argument("--graceful-rollback", action="store_true",
                   help="graceful failover whose catch-up never sees lag 0 (PILOTLIGHT_MAX_POLLS=3): the source dial "
                        "is restored, the execution FAILED, the notice says rolled back")
    p.add_argument("--timing", default=None, metavar="db=S,compute=S,ga=S,dns=S",
                   help="the functions reach moto and gapfill through tests/support/faultproxy.py with its AWS timing "
                        "model: a promotion shows modifying/rebooting for db seconds, new instances Pending and targets "
                        "initial for compute, the accelerator IN_PROGRESS for ga, a Route 53 change PENDING for dns "
                        "(docs/emulators.md); the steps must wait through them")
    p.add_argument("--bench", action="store_true",
                   help="with --timing: print the RTO figures of the run (scripts/drill/bench.py): RTO, critical path, "
                        "overhead, sequential time, cost, writable -> reported (figures, not pass/fail)")
    p.add_argument("--failback", action="store_true",
                   help="after the failover passed, fail back ({\"command\":\"failback\",\"mode\":\"graceful\"}) and check "
                        "the topology is the original one again, re-protected (DR replica of the primary, DR ASG at 0)")
    p.add_argument("--approval", choices=("approve", "reject", "timeout"), default=None,
                   help="deploy with PILOTLIGHT_APPROVAL=required and answer the approval request the execution "
                        "publishes (the execution it names, read from the operators' queue) through detect")
    p.add_argument("--stale-ami", action="store_true",
                   help="the DR vault holds only a recovery point older than the plan allows: the preflight pauses "
                        "the run for approval with the finding (nothing changed), the drill approves with "
                        "allow_stale_ami, the run completes (scripts/drill/stale_ami.py)")
    p.add_argument("--aurora", action="store_true",
                   help="the database is an Aurora global database (plan PILOTLIGHT_DB_MODE=aurora-global) in "
                        "ministack, its secondary's AuroraGlobalDBRPOLag fresh and within the limit: the alarm's "
                        "ungraceful failover ends with the DR cluster the writer (scripts/drill/aurora.py); with "
                        "--graceful the switchover (SwitchoverGlobalCluster), with --failback the failover and then "
                        "the failback, ending with the primary cluster the writer and the DR cluster a secondary")
    p.add_argument("--replica-busy", action="store_true",
                   help="the DR replica is backing-up for its first reads (faultproxy db-status in front of the "
                        "functions' RDS endpoint): the failover waits (promote-db status polls 'waiting: ... "
                        "backing-up'), then promotes exactly once and completes (scripts/drill/replica_busy.py)")
    p.add_argument("--cli", action="store_true",
                   help="the operator's commands through the built `pilotlight` binary: status, plan, failover "
                        "--dry-run (followed on a terminal, captured), follow, failover --approval + approve, report "
                        "--json, against the deployed stack (scripts/drill/cli.py)")
    p.add_argument("--readiness", action="store_true",
                   help="no failover: the scheduled readiness function in the deployed stack; an unchanged state "
                        "sends no notice, one function's plan made to differ sends exactly one naming the check "
                        "(scripts/drill/readiness.py)")
    p.add_argument("--deploy", choices=("template",), default="template",
                   help="template.yaml through ministack's CloudFormation (SAM transform), the only deployment path "
                        "(the `api` mirror of the template was removed: docs/drill.md)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to follow the execution before giving up")
    p.add_argument("--binaries", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug"),
                   help="folder holding the built function binaries")
    p.add_argument("--moto-url", default=os.environ.get("PILOTLIGHT_MOTO_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_MOTO_PORT', '5000')}")
    p.add_argument("--gapfill-url", default=os.environ.get("PILOTLIGHT_GAPFILL_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_GAPFILL_PORT', '5100')}")
    p.add_argument("--ministack-url", default=os.environ.get("PILOTLIGHT_MINISTACK_URL")
                   or f"http://127.0.0.1:{os.environ.get('PILOTLIGHT_MINISTACK_PORT', '4566')}")
    p.add_argument("--write-plan", default=None, help="also write the deployed plan (KEY=VALUE) to this file")
    p.add_argument("--write-output", default=None, help="also write the execution output (JSON) to this file")
    a = p.parse_args(argv)
    if a.primary_region == a.dr_region:
        p.error("--primary-region and --dr-region must differ")
    a.alarm_region = a.alarm_region or a.dr_region
    special = [o for o in ("dry_run", "graceful", "primary_outage", "failback", "approval", "probe", "throttle",
                           "dns_down", "graceful_rollback", "stale_ami", "replica_busy", "readiness") if getattr(a, o)]
    if a.cli and (special or a.aurora):
        p.error("--cli drives its own runs (a dry run, then an approval-gated failover): not with "
                f"{', '.join('--' + o.replace('_', '-') for o in special + (['aurora'] if a.aurora else []))}")
    if (a.probe or a.throttle or a.dns_down or a.graceful_rollback or a.replica_busy or a.readiness) and len(special) > 1:
        p.error(f"--probe, --throttle, --dns-down, --graceful-rollback, --replica-busy and --readiness run on their own (not with "
                f"{', '.join('--' + o.replace('_', '-') for o in special)})")
    if a.dns_down == "blackhole":
        # every update-dns attempt ends at the DR operation timeout (the whole SDK call): 2 s instead of 10 s, as
        # a plan may set it (the environment overrides plans/drill.env); failure_paths.DNS_BLACKHOLE_TIMEOUT_MS
        from .failure_paths import DNS_BLACKHOLE_TIMEOUT_MS
        os.environ["PILOTLIGHT_DR_OPERATION_TIMEOUT_MS"] = str(DNS_BLACKHOLE_TIMEOUT_MS)
    if a.timing:
        try:
            a.timing_rule = timing_rule(a.timing)
        except ValueError as e:
            p.error(str(e))
        clash = [o for o in ("probe", "throttle", "dns_down", "graceful_rollback", "primary_outage", "aurora", "replica_busy",
                             "dry_run", "stale_ami") if getattr(a, o)]
        if clash:
            p.error(f"--timing runs the alarm's failover, --graceful, --failback or --approval (not with "
                    f"{', '.join('--' + o.replace('_', '-') for o in clash)})")
    if a.bench and not a.timing:
        p.error("--bench needs --timing (the figures are of a run with the AWS timing model)")
    if a.graceful_rollback:
        a.graceful = True  # triggered like --graceful; the drill does not play the catch-up
        # every loop gives up after 4 calls: the catch-up (lag never 0) within ~5 s (the environment overrides
        # plans/drill.env)
        os.environ["PILOTLIGHT_MAX_POLLS"] = "3"
    if a.failback and a.primary_outage:
        p.error("--failback needs the primary region back: not with --primary-outage")
    if a.failback and (a.dry_run or a.approval in ("reject", "timeout")):
        p.error("--failback needs a failover that really happens (not --dry-run, not --approval reject/timeout)")
    if a.stale_ami and (a.approval or a.dry_run or a.failback or a.graceful):
        p.error("--stale-ami answers its own approval request: not with --approval, --dry-run, --failback, --graceful")
    others = [o for o in special if o not in ("graceful", "failback")]
    if a.aurora and others:
        p.error("--aurora drills the failover, alone or with --graceful and/or --failback (not with "
                f"{', '.join('--' + o.replace('_', '-') for o in others)})")
    return a


TIMING_NAMES = {"db": "db_seconds", "compute": "compute_seconds", "ga": "ga_seconds", "dns": "dns_seconds"}


def timing_rule(text):
    """`db=20,compute=30,ga=2,dns=2` -> faultproxy's timing rule (its own --timing flag takes the same text)."""
    rule = {"fault": "timing"}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in TIMING_NAMES:
            raise ValueError(f"--timing takes NAME=SECONDS with NAME one of {sorted(TIMING_NAMES)}, not {item!r}")
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"--timing {name}: a number of seconds, not {value!r}") from None
        if not 0 <= seconds <= 3600:
            raise ValueError(f"--timing {name}: 0..3600 seconds, not {value!r}")
        rule[TIMING_NAMES[name]] = seconds
    if len(rule) == 1:
        raise ValueError("--timing needs at least one of db=, compute=, ga=, dns=")
    return rule


def main(argv):
    args = parse_args(argv)
    try:  # boto3 and PyYAML: the pinned moto venv has both (scripts/install-tools.sh moto)
        from botocore.exceptions import ClientError
        from . import probe, throttle, topology
        from .console import DrillError, elapsed, kv, phase, say
        from .contract import Contract
        from .context import Drill
        from .deploy import deploy
        from .follow import follow
        from .operators import notifications
        from .report import show
        from .snapshot import print_topology, snapshot
        from .trigger import trigger
        from .verify import verify, verify_failback
    except ImportError as e:
        sys.exit(f"the drill needs boto3 and PyYAML ({e}): run it with .tools/moto/bin/python (scripts/drill.sh does)")

    d = None
    try:
        d = Drill(args, Contract(ROOT, args.binaries))
        say(f"pilotlight drill {d.run_id}: {'DRY RUN, ' if args.dry_run else ''}primary {d.primary}, DR {d.dr}, "
            f"alarms in {args.alarm_region}; moto {args.moto_url}, gapfill {args.gapfill_url}, "
            f"ministack {args.ministack_url}")
        topology.seed(d)
        if args.stale_ami:
            from . import stale_ami
            stale_ami.seed(d)

        phase(f"the plan: {os.path.relpath(args.plan, ROOT)} + this run's values, read by `pilotlight check-plan --json`")
        seeded = topology.seeded_values(d)
        plan, variables = d.contract.request_plan(args.plan, {**topology.run_values(d), **seeded})
        mode = plan["dns"]["mode"]
        other_modes = {k for m, values in topology.dns_values(d).items() if m != mode for k in values}
        variables = {k: v for k, v in variables.items() if k not in other_modes}
        kv("plan", f"valid: {plan['primary']['region']} -> {plan['dr']['region']}, DNS {mode}, "
                   f"{len(variables)} PILOTLIGHT_* variables")
        topology.seed_per_plan(d, plan)

        before = snapshot(d)
        print_topology(d, before, "topology before")
        if args.probe:
            d.template_parameters.update(probe.template_parameters(d))
        if args.throttle or args.dns_down or args.replica_busy or args.timing:
            d.faults = throttle.FaultProxy(d)
        deploy(d, variables, emulator_made=set(seeded) - other_modes)
        if args.readiness:
            from . import readiness
            ok = readiness.run(d)
            say(f"\n{'DRILL PASSED' if ok else 'DRILL FAILED'} (readiness, drill {elapsed():.1f}s)")
            return 0 if ok else 1
        if args.throttle:
            throttle.arm(d)
        if args.dns_down:
            from . import failure_paths
            failure_paths.arm_dns_down(d)
        if args.replica_busy:
            from . import replica_busy
            replica_busy.arm(d)
        if args.timing:
            d.faults.admin("POST", "rules", {"rules": [args.timing_rule]})
            kv("timing model", ", ".join(f"{k.split('_')[0]} {v:g} s" for k, v in args.timing_rule.items() if k != "fault")
               + " (faultproxy in front of moto and gapfill)")
        if args.graceful_rollback:
            d.drained = True  # the world never catches up: no ReplicaLag 0 after the drain
        if args.cli:
            from . import cli
            execution = cli.run(d)
        else:
            execution = follow(d, trigger(d))
        show(d, execution)
        after = snapshot(d)
        print_topology(d, after, "topology after")
        if args.dns_down or args.graceful_rollback:
            from . import failure_paths
            ok = failure_paths.run_check(d, before, after, execution)
        elif args.throttle and args.throttle != "within":
            ok = throttle.verify_beyond(d, before, after, execution)
        else:
            ok = verify(d, before, after, execution, notifications(d))
        if args.bench:
            from . import bench
            if not bench.show(d, execution):
                say("bench: the run left no figures to compute (see above)")
                ok = False
        if ok and args.failback:
            d.direction, d.drained, d.approval_answered = "failback", False, False
            since = len(d.inbox)
            execution = follow(d, trigger(d))
            show(d, execution)
            back = snapshot(d)
            print_topology(d, back, "topology after the failback")
            ok = verify_failback(d, before, back, execution, notifications(d, since))
    except DrillError as e:
        say(f"\nDRILL FAILED: {e}")
        return 1
    except ClientError as e:
        say(f"\nDRILL FAILED (emulator call): {e}")
        traceback.print_exc()
        return 1
    finally:
        if d is not None and d.faults:
            d.faults.stop()
        if d is not None and args.dns_down == "blackhole":
            from .failure_paths import restore_retry_sleeps
            restore_retry_sleeps(d)
    say(f"\n{'DRILL PASSED' if ok else 'DRILL FAILED'} ({'dry run, ' if args.dry_run else ''}drill {elapsed():.1f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
