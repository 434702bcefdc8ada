"""The contract the drill runs against, read from where it is defined instead of copied into the drill:

- template.yaml: its parameters, which PILOTLIGHT_* variable each function gets from which parameter, the
  functions (binary <-> logical id), the state machine and the outputs;
- the plan: through `pilotlight check-plan --json`, the product's own parser and validation (FailoverPlan), so
  a plan file means to the drill exactly what it means to the functions.
"""

import json
import os
import subprocess
import tempfile

import yaml

from .console import DrillError


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags turned into their long form, the JSON template shape:
    `!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!If [...]` -> {"Fn::If": [...]}."""


def _long_form(loader, tag, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag in ("Ref", "Condition"):
        return {tag: value}
    if tag == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag}": value}


CfnLoader.add_multi_constructor("!", _long_form)


class Contract:
    def __init__(self, root, binaries):
        self.root = root
        self.template_path = os.path.join(root, "template.yaml")
        try:
            with open(self.template_path) as f:
                self.template = yaml.load(f, Loader=CfnLoader)
        except (OSError, yaml.YAMLError) as e:
            raise DrillError(f"cannot read {self.template_path}: {e}") from e
        self.cli = os.path.join(binaries, "pilotlight")

    # -- template ------------------------------------------------------------------------------------------
    @property
    def parameters(self):
        return self.template.get("Parameters", {})

    def resources_of_type(self, kind):
        return {name: r for name, r in self.template.get("Resources", {}).items() if r.get("Type") == kind}

    def functions(self):
        """binary -> logical id, from each function's `Metadata.BuildProperties.Binary` (what cargo-lambda builds)."""
        out = {}
        for logical, r in self.resources_of_type("AWS::Serverless::Function").items():
            binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if not binary:
                raise DrillError(f"template.yaml: {logical} has no Metadata.BuildProperties.Binary: the drill cannot "
                                 "tell which debug binary to deploy as its bootstrap")
            out[binary] = logical
        return out

    def state_machine(self):
        machines = list(self.resources_of_type("AWS::Serverless::StateMachine"))
        if len(machines) != 1:
            raise DrillError(f"template.yaml: expected one AWS::Serverless::StateMachine, found {machines}")
        return machines[0]

    def function_environments(self):
        """Every environment a function gets: Globals.Function's, then each function's own."""
        envs = [self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})]
        for r in self.resources_of_type("AWS::Serverless::Function").values():
            envs.append(r.get("Properties", {}).get("Environment", {}).get("Variables", {}))
        return envs

    def _parameter_in(self, value):
        """The parameter a function's environment value comes from: `!Ref P`, `!Join [",", !Ref P]`, or the
        branch of `!If [Condition, !Ref P, ...]` taken when the variable is set."""
        if isinstance(value, dict):
            if "Ref" in value:
                return value["Ref"] if value["Ref"] in self.parameters else None
            if "Fn::If" in value:
                return self._parameter_in(value["Fn::If"][1])
            value = list(value.values())
        if isinstance(value, list):
            return next((p for p in map(self._parameter_in, value) if p), None)
        return None

    def variable_parameters(self):
        """PILOTLIGHT_* variable -> the template parameter that sets it, read from the function environments. A
        parameter no function reads is not the plan's (e.g. OperatorEmail): it keeps its Default."""
        mapping = {}
        for env in self.function_environments():
            for variable, value in env.items():
                parameter = self._parameter_in(value)
                if parameter:
                    mapping[variable] = parameter
        return mapping

    def parameter_values(self, variables):
        """{parameter: value} for every plan variable the template takes as a parameter (empty values left to the
        parameter's Default), and the variables it does not take."""
        mapping = self.variable_parameters()
        values = {mapping[k]: v for k, v in variables.items() if k in mapping and v != ""}
        return values, sorted(k for k in variables if k not in mapping)

    def outputs(self, stack_outputs):
        """The stack's outputs by what they name: {"functions": {binary: arn}, "state_machine": arn, "topic": arn},
        read from the template's Outputs (`!GetAtt <Function>.Arn`, `!Ref <StateMachine>`, `!Ref <Topic>`)."""
        binary_of = {logical: binary for binary, logical in self.functions().items()}
        topics = self.resources_of_type("AWS::SNS::Topic")
        found = {"functions": {}, "state_machine": None, "topic": None}
        for key, out in self.template.get("Outputs", {}).items():
            value, arn = out.get("Value", {}), stack_outputs.get(key)
            target = value.get("Fn::GetAtt", [None])[0] if isinstance(value, dict) else None
            if target in binary_of:
                found["functions"][binary_of[target]] = arn
            elif isinstance(value, dict) and value.get("Ref") == self.state_machine():
                found["state_machine"] = arn
            elif isinstance(value, dict) and value.get("Ref") in topics:
                found["topic"] = arn
        # A function under a Condition (the probe, deployed only with targets) has an output only when deployed.
        conditional = {logical for logical, r in self.resources_of_type("AWS::Serverless::Function").items()
                       if r.get("Condition")}
        missing = [b for logical, b in binary_of.items() if not found["functions"].get(b) and logical not in conditional]
        if missing or not found["state_machine"] or not found["topic"]:
            raise DrillError(f"template.yaml Outputs: the drill needs every function's ARN (missing: {missing}), the "
                             "state machine's and the operators' topic's; add the missing outputs")
        return found

    # -- plan ----------------------------------------------------------------------------------------------
    def check_plan(self, path, drill_values=(), label=None):
        """`pilotlight check-plan --json <path>`: (plan, variables). The CLI lets PILOTLIGHT_* variables of the
        environment win over the file (as the functions' FailoverPlan::from_file does); the values the drill set
        itself (drill_values: names of seeded resources) are kept out of its environment so they always win."""
        cmd = [self.cli] if os.access(self.cli, os.X_OK) else ["cargo", "run", "-q", "--bin", "pilotlight", "--"]
        env = {k: v for k, v in os.environ.items() if k not in set(drill_values)}
        r = subprocess.run(cmd + ["check-plan", "--json", path], cwd=self.root, env=env, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise DrillError(f"the plan ({label or path}) is not valid, says `{' '.join(cmd)} check-plan --json`: "
                             f"{r.stderr.strip()[-1500:]}; fix the variable it names (in the plan file or the "
                             "PILOTLIGHT_* environment)")
        out = json.loads(r.stdout)
        return out["plan"], out["variables"]

    def request_plan(self, static_path, values):
        """The plan the drill asks for: the static plan file as it is, then the values only the run knows (later
        lines win in a plan file), validated by check-plan. Returns (plan, variables)."""
        try:
            with open(static_path) as f:
                static = f.read()
        except OSError as e:
            raise DrillError(f"cannot read the plan file {static_path} (--plan): {e}") from e
        with tempfile.NamedTemporaryFile("w", prefix="pilotlight-drill-plan-", suffix=".env", delete=False) as f:
            f.write(static.rstrip("\n") + "\n\n# set by the drill run (seeded resources)\n")
            f.writelines(f"{k}={v}\n" for k, v in values.items())
        try:
            return self.check_plan(f.name, values, f"{static_path}, this run's values, the PILOTLIGHT_* environment")
        finally:
            os.unlink(f.name)
