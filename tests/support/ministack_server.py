#!/usr/bin/env python3
"""Starts ministack (pinned in .tools/ministack) with the AWS behaviour the product relies on that ministack 1.5.33
lacks, modelled here as test support (scripts/emulators.sh runs this instead of the bare `ministack` command):

- Task `TimeoutSecondsPath` (Amazon States Language: the task's timeout read from the state input by a reference
  path). ministack honours only a literal `TimeoutSeconds`; pilotlight's approval task reads its timeout from
  `$.timing.approval_timeout_seconds`, so without this an approval that nobody answers would wait forever here while
  AWS times it out. As in AWS, a path that does not resolve to a positive integer fails the state
  (`States.Runtime`).

Run with ministack's own interpreter: `.tools/ministack/bin/python tests/support/ministack_server.py` (same
environment variables as `ministack`: GATEWAY_PORT, BIND_HOST).
"""
import sys

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

if __name__ == "__main__":
    sys.exit(main())
