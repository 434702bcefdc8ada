#!/usr/bin/env bash
# The real `sam build` of template.yaml, as README's "Deploying for real" runs it, with figures: wall time and the
# arm64 `bootstrap` each function gets (size, and that it is an aarch64 ELF).
#
#   scripts/sam-build.sh [FunctionLogicalId...]     (no args = every function)
#
# BuildMethod rust-cargolambda: SAM runs `cargo lambda build --release --arm64 --bin <Binary>` at the workspace root
# for each function (one shared target/, so the SDK compiles once; each further function costs its link), then copies
# target/lambda/<Binary>/bootstrap to .aws-sam/build/<Function>/. Release only: ~10+ min clean on 2 cores.
# Needs cargo-lambda + zig (scripts/install-tools.sh lambda sam, run here) and the aarch64 Rust target (rustup adds it).
# Extra arguments for sam build: SAM_BUILD_ARGS="--debug".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/install-tools.sh lambda sam
# zig comes from the ziglang wheel: cargo-zigbuild finds it as `python3 -m ziglang`, so the venv's bin goes first.
export PATH="$ROOT/.tools/lambda/bin:$ROOT/.tools/sam/bin:$PATH"
export SAM_CLI_TELEMETRY=0
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

t0=$(date +%s)
# shellcheck disable=SC2086
sam build --template-file template.yaml ${SAM_BUILD_ARGS:-} "$@"
t1=$(date +%s)

echo
echo "== sam build: $(( (t1 - t0) / 60 )) min $(( (t1 - t0) % 60 )) s wall ($(nproc) cores)"
printf '%-22s %10s  %s\n' function bootstrap architecture
status=0
for dir in .aws-sam/build/*/; do
  fn=$(basename "$dir")
  [[ -f "$dir/bootstrap" ]] || continue
  [[ $# -eq 0 ]] || [[ " $* " == *" $fn "* ]] || continue
  bytes=$(stat -c %s "$dir/bootstrap")
  # ELF e_machine (offset 18, little-endian): 183 = EM_AARCH64.
  machine=$(od -An -t u2 -j 18 -N 2 "$dir/bootstrap" | tr -d ' ')
  arch=$([[ "$machine" == 183 ]] && echo aarch64 || echo "NOT aarch64 (e_machine $machine)")
  [[ "$machine" == 183 ]] || status=1
  printf '%-22s %6.1f MiB  %s\n' "$fn" "$(awk "BEGIN {print $bytes / 1048576}")" "$arch"
done
exit "$status"
