#!/usr/bin/env python3
"""`sam deploy --config-env ENV`'s settings from samconfig.toml, read and parsed by SAM CLI's own code (SamConfig,
the --parameter-overrides type), and each override checked against template.yaml's parameter (exists, AllowedValues,
AllowedPattern as CloudFormation applies them to the whole value). For tests/sam.rs; run with the SAM venv's Python:

    .tools/sam/bin/python scripts/samconfig_overrides.py template.json ENV

(template.json: scripts/template_json.py's output). Prints {"deploy": {...}, "overrides": {...}, "problems": [...]}.
"""
import json
import re
import sys

from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

template = json.load(open(sys.argv[1]))
env = sys.argv[2]
deploy = SamConfig(".").get_all(["deploy"], "parameters", env=env)
raw = deploy.get("parameter_overrides", [])
overrides = CfnParameterOverridesType().convert(raw if isinstance(raw, list) else [raw], None, None)
problems = []
params = template["Parameters"]
for key, value in overrides.items():
    p = params.get(key)
    if p is None:
        problems.append(f"{key}: not a parameter of template.yaml")
        continue
    if "AllowedValues" in p and value not in [str(v) for v in p["AllowedValues"]]:
        problems.append(f"{key}={value}: not one of {p['AllowedValues']}")
    if "AllowedPattern" in p:
        items = value.split(",") if p["Type"] == "CommaDelimitedList" else [value]
        problems += [f"{key}={value}: {v!r} does not match {p['AllowedPattern']}"
                     for v in items if not re.fullmatch(p["AllowedPattern"], v)]
for key, p in params.items():
    if "Default" not in p and key not in overrides:
        problems.append(f"{key}: no Default and no override (sam deploy would refuse)")
json.dump({"deploy": {k: v for k, v in deploy.items() if k != "parameter_overrides"}, "overrides": overrides,
           "problems": problems}, sys.stdout, indent=1, default=str)
print()
