"""Shared by the boto3 self-checks (check_gapfill.py, check_faultproxy.py): make boto3 importable.

When the running interpreter lacks boto3, re-executes the calling script with <repo>/.tools/moto/bin/python
(scripts/install-tools.sh moto installs it); exits with a how-to line when that is missing too.
"""
import os
import sys
from pathlib import Path


def ensure_boto3(script: str) -> None:
    try:
        import boto3  # noqa: F401
    except ImportError:
        venv_py = Path(__file__).resolve().parents[2] / ".tools" / "moto" / "bin" / "python"
        if venv_py.exists() and Path(sys.executable).resolve() != venv_py.resolve():
            os.execv(str(venv_py), [str(venv_py), script, *sys.argv[1:]])
        sys.exit("boto3 not found: run scripts/install-tools.sh moto")
