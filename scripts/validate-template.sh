#!/usr/bin/env bash
# Offline validation of the deployable artefacts: template.yaml and the state machine definition.
#
#   scripts/validate-template.sh
#
# Checks (each prints one line; all run, the exit status is non-zero if any failed):
#   cfn-lint            every finding fails, informational ones included (no rule is ignored)
#   sam validate        SAM translation (the transform itself) and `sam validate --lint`
#   asl graph           scripts/check_asl_graph.py on statemachine/failover.asl.json as AWS will see it: every
#                       ${Name} placeholder replaced textually by a sample value of its type (ARN for *Arn,
#                       integer for *Seconds);
#                       placeholders = the template's DefinitionSubstitutions (both ways); unique state names,
#                       dangling targets, reachability, bounded loops (counted guard), Retry, callback timeouts.
#                       Writes the substituted definition for the next check.
#   asl-validator       ASL schema + JSONPath syntax of that substituted definition, and of the committed file as it
#                       stands (generated: valid JSON, placeholders only inside strings), as Workflow Studio opens it
#                       (cfn-lint does not look inside DefinitionUri files)
#   contract variables  every PILOTLIGHT_* variable of docs/contract.md is set by template.yaml
#   checkov             IaC scan of template.yaml (checkov's cloudformation framework reads AWS::Serverless::*
#                       itself); fails on any finding not suppressed inline (resource Metadata checkov/skip, each
#                       with a comment), on a parse error, or when it scanned no resource. docs/security.md.
# Tools come from scripts/install-tools.sh (.tools/sam, .tools/node, .tools/checkov). No network, no AWS credentials.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE=template.yaml
ASL=statemachine/failover.asl.json
CONTRACT=docs/contract.md
SAM_BIN="$ROOT/.tools/sam/bin"
ASL_VALIDATOR="$ROOT/.tools/node/node_modules/.bin/asl-validator"
CHECKOV="$ROOT/.tools/checkov/bin/checkov"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

for tool in "$SAM_BIN/cfn-lint" "$SAM_BIN/sam" "$SAM_BIN/python" "$ASL_VALIDATOR" "$CHECKOV"; do
  if [[ ! -x "$tool" ]]; then
    echo "validate-template: missing $tool - run scripts/install-tools.sh sam asl checkov" >&2
    exit 2
  fi
done

LOG_DIR="$(mktemp -d)"
trap 'rm -rf "$LOG_DIR"' EXIT
failures=0
# The definition with sample values for its placeholders, written by the asl graph check.
SUBSTITUTED="$LOG_DIR/failover.substituted.asl.json"

# check NAME CMD...: run CMD quietly; one line per check, the tool's output only when it fails.
check() {
  local name="$1"; shift
  local log="$LOG_DIR/${name//[^a-zA-Z0-9]/_}.log"
  if "$@" >"$log" 2>&1; then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s  (%s)\n' "$name" "$*"
    sed 's/^/      /' "$log"
    failures=$((failures + 1))
  fi
}

# DefinitionSubstitutions names, read with cfn-lint's own CloudFormation-aware YAML loader.
substitutions() {
  "$SAM_BIN/python" - "$TEMPLATE" "$ASL" <<'PY'
import sys
from cfnlint.decode import decode
template, asl = sys.argv[1], sys.argv[2]
doc, matches = decode(template)
if matches:
    sys.exit(f"cannot parse {template}: {matches}")
machines = {k: v for k, v in doc.get("Resources", {}).items() if v.get("Type") == "AWS::Serverless::StateMachine"}
users = [k for k, v in machines.items() if v.get("Properties", {}).get("DefinitionUri") == asl]
if len(users) != 1:
    sys.exit(f"expected exactly one AWS::Serverless::StateMachine with DefinitionUri {asl}, found {users}")
print(",".join(sorted(machines[users[0]]["Properties"].get("DefinitionSubstitutions", {}))))
PY
}

check_asl_graph() {
  local subs
  subs="$(substitutions)" || return 1
  python3 scripts/check_asl_graph.py "$ASL" --substitutions "$subs" --write-substituted "$SUBSTITUTED"
}

check_asl_schema() {
  if [[ ! -s "$SUBSTITUTED" ]]; then
    echo "no substituted definition: the asl graph check could not substitute the placeholders (see above)"
    return 1
  fi
  "$ASL_VALIDATOR" --json-path "$SUBSTITUTED"
}

# Every PILOTLIGHT_* name in the contract's plan table must be set somewhere in the template.
check_contract_variables() {
  local missing=0 var
  while read -r var; do
    if ! grep -Eq "^[[:space:]]+${var}:" "$TEMPLATE"; then
      echo "not set in $TEMPLATE: $var"
      missing=1
    fi
  # A name ending in "_" is a family (PILOTLIGHT_FUNCTION_<BINARY>, PILOTLIGHT_PROBE_*), not one variable.
  done < <(grep -Eo 'PILOTLIGHT_[A-Z0-9_]+' "$CONTRACT" | grep -v '_$' | sort -u)
  return "$missing"
}

# checkov: offline (--skip-download: no policy or guideline download from the vendor's platform), every check of
# the cloudformation framework; the JSON report is judged here so that a parse error or an empty scan fails too.
check_checkov() {
  local report="$LOG_DIR/checkov.json"
  "$CHECKOV" --file "$TEMPLATE" --framework cloudformation --skip-download --compact --output json \
    >"$report" 2>"$LOG_DIR/checkov.stderr" || true
  "$SAM_BIN/python" - "$report" "$LOG_DIR/checkov.stderr" <<'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("checkov wrote no JSON report:\n" + open(sys.argv[2]).read() + open(sys.argv[1]).read())
reports = data if isinstance(data, list) else [data]
bad = 0
for r in reports:
    summary = r.get("summary", {})
    results = r.get("results", {})
    for c in results.get("failed_checks", []):
        print(f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}")
        bad += 1
    for c in results.get("skipped_checks", []):
        if not (c.get("check_result", {}).get("suppress_comment") or "").strip():
            print(f"{c['check_id']} {c['resource']}: suppressed without a comment")
            bad += 1
    if summary.get("parsing_errors"):
        print(f"parsing errors: {results.get('parsing_errors')}")
        bad += 1
    print(f"checkov {summary.get('checkov_version')}: {summary.get('resource_count', 0)} resources, "
          f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, {summary.get('skipped', 0)} suppressed inline")
if not any(r.get("summary", {}).get("resource_count") for r in reports):
    print("checkov scanned no resource")
    bad += 1
sys.exit(1 if bad else 0)
PY
}

check "cfn-lint" "$SAM_BIN/cfn-lint" --include-checks I --non-zero-exit-code informational -- "$TEMPLATE"
check "sam validate" "$SAM_BIN/sam" validate --region us-east-1 --template "$TEMPLATE"
check "sam validate --lint" "$SAM_BIN/sam" validate --lint --region us-east-1 --template "$TEMPLATE"
check "asl graph" check_asl_graph
check "asl-validator" check_asl_schema
check "asl-validator (committed file as is)" "$ASL_VALIDATOR" --json-path "$ASL"
check "contract variables" check_contract_variables
check "checkov (IaC scan; findings fixed or suppressed inline with a reason)" check_checkov

if (( failures > 0 )); then
  echo "validate-template: $failures check(s) failed"
  exit 1
fi
echo "validate-template: all checks passed"
