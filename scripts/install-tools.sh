#!/usr/bin/env bash
# Install the local test/drill tools into <repo>/.tools/ (gitignored), at pinned versions.
#
#   scripts/install-tools.sh [moto] [ministack] [sam] [asl] [lambda]     (no args = all)
#
# Each component lives in its own folder and carries a stamp file recording exactly what was
# installed; a component whose stamp matches the pins below is skipped, so re-runs take ~1 s.
# Python components are virtualenvs made with the machine's `python3 -m venv`.
set -euo pipefail

# ---- pins -------------------------------------------------------------------------------------
# PyYAML: the drill reads template.yaml with it (CloudFormation tags, scripts/drill/contract.py); the version
# moto[server] 5.2.5 resolved.
MOTO_PKGS=("moto[server]==5.2.5" "PyYAML==6.0.4")
# cbor2: ministack needs it to serve CloudWatch in smithy-rpc-v2-cbor, the protocol the Rust SDK speaks.
# ministack pins its own botocore, hence its own venv; aws-sam-translator lets its CloudFormation
# deploy SAM templates (version = what pip resolved beside ministack 1.5.33).
MINISTACK_PKGS=("ministack==1.5.33" "aws-sam-translator==1.115.0" "cbor2==6.3.0")
SAM_PKGS=("aws-sam-cli==1.170.0" "cfn-lint==1.58.0")
ASL_PKGS=("asl-validator@4.0.0")
# Only needed by `sam build` (BuildMethod: rust-cargolambda) for real deployments.
LAMBDA_PKGS=("cargo-lambda==1.9.2" "ziglang==0.17.1")
# -----------------------------------------------------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PYTHON="${PILOTLIGHT_PYTHON:-python3}"
ALL=(moto ministack sam asl lambda)

usage() { echo "usage: $0 [${ALL[*]}]   (no args = all)" >&2; exit 2; }

stamp_ok() { # dir wanted
  [[ -f "$1/.pilotlight-stamp" && "$(cat "$1/.pilotlight-stamp")" == "$2" ]]
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

install_venv() { # name check-binary pkgs...
  local name="$1" check="$2"; shift 2
  local dir="$TOOLS/$name" want="pip: $*"
  if stamp_ok "$dir" "$want" && [[ -x "$dir/bin/$check" ]]; then
    echo "$name: already present ($*)"
    return 0
  fi
  local t0; t0=$(date +%s)
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
    || { echo "$name: pip install failed" >&2; rm -rf "$dir"; return 1; }
  [[ -x "$dir/bin/$check" ]] || { echo "$name: $check missing after install" >&2; return 1; }
  printf '%s' "$want" >"$dir/.pilotlight-stamp"
  echo "$name: installed ($*) in $(elapsed "$t0")"
}

install_asl() {
  local dir="$TOOLS/node" want="npm: ${ASL_PKGS[*]}"
  if stamp_ok "$dir" "$want" && [[ -x "$dir/node_modules/.bin/asl-validator" ]]; then
    echo "asl: already present (${ASL_PKGS[*]})"
    return 0
  fi
  command -v npm >/dev/null || { echo "asl: npm not found" >&2; return 1; }
  local t0; t0=$(date +%s)
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --save-exact --prefix "$dir" "${ASL_PKGS[@]}" >/dev/null
  [[ -x "$dir/node_modules/.bin/asl-validator" ]] || { echo "asl: asl-validator missing after install" >&2; return 1; }
  printf '%s' "$want" >"$dir/.pilotlight-stamp"
  echo "asl: installed (${ASL_PKGS[*]}) in $(elapsed "$t0")"
}

components=("$@")
[[ ${#components[@]} -eq 0 ]] && components=("${ALL[@]}")
for c in "${components[@]}"; do
  case "$c" in moto|ministack|sam|asl|lambda) ;; -h|--help) usage ;; *) echo "unknown component: $c" >&2; usage ;; esac
done

mkdir -p "$TOOLS"
# one installer at a time (parallel test runs may call this concurrently)
exec 9>"$TOOLS/.install.lock"
flock 9
for c in "${components[@]}"; do
  case "$c" in
    moto)      install_venv moto moto_server "${MOTO_PKGS[@]}" ;;
    ministack) install_venv ministack ministack "${MINISTACK_PKGS[@]}" ;;
    sam)       install_venv sam sam "${SAM_PKGS[@]}" ;;
    asl)       install_asl ;;
    lambda)    install_venv lambda cargo-lambda "${LAMBDA_PKGS[@]}" ;;
  esac
done
