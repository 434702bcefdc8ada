#!/usr/bin/env python3
"""Prints template.yaml as the JSON CloudFormation sees (short-form tags in their long form), for checks written
in other languages (tests/budget.rs). Uses the drill's CloudFormation-aware loader; needs PyYAML (the moto venv
in .tools has it pinned): `.tools/moto/bin/python scripts/template_json.py template.yaml`."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yaml  # noqa: E402

from drill.contract import CfnLoader  # noqa: E402

with open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml") as f:
    json.dump(yaml.load(f, Loader=CfnLoader), sys.stdout, indent=1, default=str)
print()
