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
# Tools come from scripts/install-tools.sh (.tools/sam, .tools/node). No network, no AWS credentials.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE=template.yaml
ASL=statemachine/failover.asl.json
CONTRACT=docs/contract.md
SAM_BIN="$ROOT/.tools/sam/bin"
ASL_VALIDATOR="$ROOT/.tools/node/node_modules/.bin/asl-validator"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

for tool in "$SAM_BIN/cfn-lint" "$SAM_BIN/sam" "$SAM_BIN/python" "$ASL_VALIDATOR"; do
  if [[ ! -x "$tool" ]]; then
    echo "validate-template: missing $tool - run scripts/install-tools.sh sam asl" >&2
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
  done < <(grep -Eo 'PILOTLIGHT_[A-Z0-9_]+' "$CONTRACT" | sort -u)
  return "$missing"
}

check "cfn-lint" "$SAM_BIN/cfn-lint" --include-checks I --non-zero-exit-code informational -- "$TEMPLATE"
check "sam validate" "$SAM_BIN/sam" validate --region us-east-1 --template "$TEMPLATE"
check "sam validate --lint" "$SAM_BIN/sam" validate --lint --region us-east-1 --template "$TEMPLATE"
check "asl graph" check_asl_graph
check "asl-validator" check_asl_schema
check "asl-validator (committed file as is)" "$ASL_VALIDATOR" --json-path "$ASL"
check "contract variables" check_contract_variables

if (( failures > 0 )); then
  echo "validate-template: $failures check(s) failed"
  exit 1
fi
echo "validate-template: all checks passed"
