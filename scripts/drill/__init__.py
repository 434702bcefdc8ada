"""pilotlight failover drill: the real Lambda binaries and the real state machine, end to end, on emulators.

Run through scripts/drill.sh (it builds the functions and starts the emulators); by hand:

    PYTHONPATH=scripts .tools/moto/bin/python -m drill [--dry-run] [--graceful] [--failback] ...

One module per job, in the order a run uses them:
  contract   template.yaml (parameters, which variable each function gets from which parameter, the functions,
             the outputs) and the plan, read through `pilotlight check-plan --json`
  topology   seeds the two-region pilot-light topology in moto, gapfill and ministack
  deploy     template.yaml through ministack's CloudFormation, the debug binaries as `sam package` leaves them
  trigger    an alarm really goes to ALARM and its Lambda-action event reaches detect (or a manual command)
  follow     the execution history, one line per state; plays the world's part (replica catch-up, approvals)
  report     the execution output (the report)
  snapshot   the live topology read back from the emulators
  verify     the end-state checks: the exit status
  probe      --probe: the primary's health path (a loopback server), the probe rounds, the probe checks
  throttle   --throttle: the fault proxy in front of moto and gapfill, its rules, the stop, the checks
  replica_busy  --replica-busy: the fault proxy's db-status in front of the functions' RDS, the wait checks
Support: console (output, DrillError), context (one run's endpoints, names, clients), outage (the failed region's
proxy), operators (the operators' queue and the approval answer), alarm_model (CloudWatch's alarm evaluation and
Lambda action, which ministack lacks: test support).
"""
