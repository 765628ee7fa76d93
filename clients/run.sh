#!/usr/bin/env bash
# Real-client flows: matrix-nio (Python) and matrix-js-sdk (Node) against a
# freshly started matrix-membership server. Runs from any directory:
#
#   bash clients/run.sh
#
# Builds the server once (debug profile, as `cargo test` does), starts it on a
# free loopback port with a temporary data folder and --no-rate-limits,
# installs the clients' pinned dependencies (a virtualenv from
# clients/nio/requirements.txt; `npm ci` from clients/js/package-lock.json),
# runs both flows, stops the server and exits non-zero if any flow failed.
# With MM_DATABASE_URL (the admin URL of a PostgreSQL cluster) the server runs
# on a fresh database of that cluster instead of sled (.ci/lib/database.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
CLIENTS="$ROOT/clients"
# shellcheck source=.ci/lib/database.sh
source "$ROOT/.ci/lib/database.sh"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() {
    printf '\n==> %s\n' "$*"
}

say "building the server"
cargo build --quiet --bin matrix-membership
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/debug/matrix-membership"
[ -x "$BIN" ] || { echo "no server binary at $BIN" >&2; exit 1; }

say "installing matrix-nio (pinned) into clients/nio/.venv"
VENV="$CLIENTS/nio/.venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$CLIENTS/nio/requirements.txt"

say "installing matrix-js-sdk (pinned) with npm ci"
(cd "$CLIENTS/js" && npm ci --no-audit --no-fund --loglevel=error)

DATA="$(mktemp -d)"
LOG="$DATA/server.log"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export HOMESERVER="http://127.0.0.1:$PORT"
SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
    rm -rf "$DATA"
}
trap stop_server EXIT

DATABASE_URL="$(fresh_database_url)"
DATABASE=()
[ -z "$DATABASE_URL" ] || DATABASE=(--database-url "$DATABASE_URL")
say "starting the server on $HOMESERVER ($(backend_name))"
"$BIN" --bind "127.0.0.1:$PORT" --data-dir "$DATA/db" --no-rate-limits "${DATABASE[@]}" >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "$HOMESERVER/_matrix/client/versions" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server exited at start-up:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$HOMESERVER/_matrix/client/versions" >/dev/null

passed=0
failed=0
run_flow() {
    local name="$1"
    shift
    say "flow: $name"
    if (cd "$CLIENTS" && timeout 300 "$@"); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "flow $name FAILED" >&2
    fi
}
run_flow matrix-nio "$VENV/bin/python" nio/flow.py
run_flow matrix-js-sdk node js/flow.mjs

if [ "$failed" -ne 0 ]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 40 "$LOG" >&2
fi
stop_server
echo
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
