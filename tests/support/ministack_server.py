#!/usr/bin/env python3
"""Starts ministack (pinned in .tools/ministack) with the AWS behaviour the product relies on that ministack 1.5.33
lacks, modelled here as test support (scripts/emulators.sh runs this instead of the bare `ministack` command):

- Task `TimeoutSecondsPath` (Amazon States Language: the task's timeout read from the state input by a reference
  path). ministack honours only a literal `TimeoutSeconds`; pilotlight's approval task reads its timeout from
  `$.timing.approval_timeout_seconds`, so without this an approval that nobody answers would wait forever here while
  AWS times it out. As in AWS, a path that does not resolve to a positive integer fails the state
  (`States.Runtime`).
- `TaskScheduled` events carry `parameters` (the task's resolved Parameters as JSON text), as AWS's history does.
  ministack records only the resource; detect answers an approval by execution by reading the pending task token
  from there.

Run with ministack's own interpreter: `.tools/ministack/bin/python tests/support/ministack_server.py` (same
environment variables as `ministack`: GATEWAY_PORT, BIND_HOST).
"""
import json
import sys
import threading

from ministack.app import main
from ministack.services import stepfunctions as sfn


def _with_timeout_path(execute_task):
    def execute(state_def, raw_input, execution, ctx):
        path = state_def.get("TimeoutSecondsPath")
        if path is not None and "TimeoutSeconds" not in state_def:
            seconds = sfn._resolve_path(path, raw_input)
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
                raise sfn._ExecutionError(
                    "States.Runtime", f"TimeoutSecondsPath {path} is {seconds!r}, not a positive integer")
            state_def = {**state_def, "TimeoutSeconds": seconds}
        return execute_task(state_def, raw_input, execution, ctx)

    return execute


sfn._execute_task = _with_timeout_path(sfn._execute_task)

_resolved = threading.local()


def _remember_parameters(apply_parameters):
    def apply(state_def, data, ctx=None):
        out = apply_parameters(state_def, data, ctx)
        _resolved.parameters = out if state_def.get("Parameters") else None
        return out

    return apply


def _with_scheduled_parameters(add_event):
    def add(execution, event_type, details=None):
        params = getattr(_resolved, "parameters", None)
        if event_type == "TaskScheduled" and details and params is not None:
            details["taskScheduledEventDetails"].setdefault("parameters", json.dumps(params))
        return add_event(execution, event_type, details)

    return add


sfn._apply_parameters = _remember_parameters(sfn._apply_parameters)
sfn._add_event = _with_scheduled_parameters(sfn._add_event)

if __name__ == "__main__":
    sys.exit(main())
