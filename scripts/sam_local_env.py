#!/usr/bin/env python3
"""The environment `sam local invoke <Function> --env-vars FILE` gives each function's container, computed by SAM
CLI's own code (the stack and function providers and LocalLambdaRunner's env-var merge, as `sam local invoke` calls
them), without Docker. For tests/sam.rs; run with the SAM venv's Python:

    .tools/sam/bin/python scripts/sam_local_env.py template.yaml [sam-local/env.json]

Prints {"<LogicalId>": {"declared": [names], "environment": {name: value}}}: `declared` are the variables SAM local
sees in the template for that function (Globals merged), `environment` what the container gets (AWS_* runtime
variables included). Without FILE: what SAM local leaves for each variable (logical ids for !Ref of resources,
"" for unresolved intrinsics), to see what the file must supply.
"""
import json
import os
import sys

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider


def main():
    template = sys.argv[1]
    env_vars = {}
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            env_vars = json.load(f)  # as InvokeContext reads --env-vars
    region = os.environ.get("AWS_REGION", "ap-northeast-1")
    stacks, _ = SamLocalStackProvider.get_stacks(template, global_parameter_overrides={"AWS::Region": region})
    provider = SamFunctionProvider(stacks)
    runner = LocalLambdaRunner(
        local_runtime=None, function_provider=provider, cwd=os.path.dirname(os.path.abspath(template)),
        real_path=os.path.dirname(os.path.abspath(template)), aws_region=region, env_vars_values=env_vars,
    )
    out = {}
    for function in provider.get_all():
        variables = (function.environment or {}).get("Variables", {})
        out[function.name] = {
            "declared": sorted(variables),
            "environment": runner._make_env_vars(function).resolve(),
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
