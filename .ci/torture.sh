#!/usr/bin/env bash
# Crash torture of the server binary (examples/torture.rs). Runs from any directory.
#
# 1. Builds the server and the torture, in the debug profile by default
#    (TORTURE_PROFILE=release for the optimised build): the guarantees checked
#    here do not depend on optimisation, and reusing the debug build that CI
#    has already made saves a cold release build, about 8 minutes on 2 cores.
# 2. Shows that the checks fire, so that a passing run means something: with
#    the database rolled back before a restart, the torture must report lost
#    acknowledged changes (retry acknowledgements among them), lost accounts,
#    phantom and undelivered events, changed sync windows and a stream that
#    went back; with a database that cannot be opened, a failed restart.
# 3. The torture itself: TORTURE_CYCLES cycles (default 50, about a minute and
#    a half on the busy 2-core CI machine); any violation fails.
#
# TORTURE_SEED fixes the seed (default: the clock; every run prints its seed).
# With MM_DATABASE_URL (the admin URL of a PostgreSQL cluster) the torture runs
# on a fresh database of that cluster (every restart on the same database),
# and step 2 is skipped: the faults damage sled's data folder, and the checks
# they prove are the torture's own, the same on either backend.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE="${TORTURE_PROFILE:-debug}"
case "$PROFILE" in
    debug) PROFILE_DIR=debug PROFILE_FLAG=() ;;
    release) PROFILE_DIR=release PROFILE_FLAG=(--release) ;;
    *) echo "TORTURE_PROFILE must be debug or release, not $PROFILE" >&2; exit 2 ;;
esac
TORTURE="$TARGET/$PROFILE_DIR/examples/torture"
SERVER="$TARGET/$PROFILE_DIR/matrix-membership"
CYCLES="${TORTURE_CYCLES:-50}"
SEED="${TORTURE_SEED:-$(date +%s)}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

cargo build "${PROFILE_FLAG[@]}" --bin matrix-membership --example torture
# shellcheck source=.ci/lib/database.sh
source "$ROOT/.ci/lib/database.sh"

# The number after NAME= in a summary line.
count() {
    sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"
}

# expect_fault FAULT CYCLES COUNTER...: the run must fail and every COUNTER be above 0.
expect_fault() {
    local fault="$1" cycles="$2" summary status=0
    shift 2
    summary="$("$TORTURE" --server-bin "$SERVER" --fault "$fault" --cycles "$cycles" --seed "$SEED" 2>"$LOG")" || status=$?
    echo "--fault $fault: $summary"
    if [ "$status" -ne 1 ]; then
        echo "expected exit status 1 (violations found), got $status; its log:" >&2
        tail -n 40 "$LOG" >&2
        return 1
    fi
    for counter in "$@"; do
        if [ "$(count "$counter" "$summary")" = 0 ]; then
            echo "the $counter check did not fire against --fault $fault; its log:" >&2
            tail -n 40 "$LOG" >&2
            return 1
        fi
    done
}

DATABASE=()
if [ -n "${MM_DATABASE_URL:-}" ]; then
    DATABASE=(--database-url "$(fresh_database_url)")
    echo "on PostgreSQL (${DATABASE[1]}): the fault runs are sled's, skipped"
else
    echo "checks fire against a damaged data folder (seed $SEED):"
    expect_fault rollback 2 lost_acked_ops retry_acks_lost phantom_events undelivered_events \
        changed_windows stream_regressions
    if ! grep -q "lost account" "$LOG"; then
        echo "the account check did not fire against --fault rollback" >&2
        exit 1
    fi
    expect_fault no-restart 1 restarts_failed
fi

echo "the torture: $CYCLES cycles on $(backend_name) (seed $SEED)"
"$TORTURE" --server-bin "$SERVER" --cycles "$CYCLES" --seed "$SEED" "${DATABASE[@]}"
