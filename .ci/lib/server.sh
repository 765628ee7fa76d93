# Sourced by the CI scripts that need a running server: start_server, register_user, stop_server.
#
# start_server starts the already-built binary ($MM_BIN) on a free loopback port with a
# temporary data folder and rate limits off, waits until it answers, and sets BASE_URL.
# stop_server stops it (SIGTERM, graceful) and fails if it had died on its own, so a crash
# during a run fails CI. Register stop_server with `trap stop_server EXIT`.
# With MM_DATABASE_URL (an admin URL, see database.sh) the server runs on a fresh
# PostgreSQL database instead of sled.

# shellcheck source=.ci/lib/database.sh
source "$(dirname "${BASH_SOURCE[0]}")/database.sh"

MM_PID=""
MM_DATA=""

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
    if [ ! -x "${MM_BIN:-}" ]; then
        echo "MM_BIN must point at the built matrix-membership binary (got '${MM_BIN:-}')" >&2
        return 1
    fi
    MM_DATA="$(mktemp -d)"
    local port
    port="$(free_port)"
    BASE_URL="http://127.0.0.1:$port"
    local database_url database=()
    database_url="$(fresh_database_url)"
    [ -z "$database_url" ] || database=(--database-url "$database_url")
    RUST_LOG="${RUST_LOG:-warn}" "$MM_BIN" --bind "127.0.0.1:$port" --data-dir "$MM_DATA/db" --no-rate-limits \
        "${database[@]}" >"$MM_DATA/server.log" 2>&1 &
    MM_PID=$!
    for _ in $(seq 1 100); do
        if curl -sf "$BASE_URL/_matrix/client/versions" >/dev/null 2>&1; then
            echo "server $MM_PID listening on $BASE_URL (data in ${database_url:-$MM_DATA})"
            return 0
        fi
        if ! kill -0 "$MM_PID" 2>/dev/null; then
            echo "the server exited during start-up:" >&2
            cat "$MM_DATA/server.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "the server did not answer within 10 s" >&2
    return 1
}

# register_user NAME: prints an access token, registering through the two-step
# m.login.dummy flow (the first request gets a 401 with a session).
register_user() {
    local name="$1" url="$BASE_URL/_matrix/client/api/v1/register" session token
    session="$(curl -s -X POST "$url" -H 'Content-Type: application/json' \
        -d "{\"username\": \"$name\", \"password\": \"$name-password\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["session"])')"
    token="$(curl -sf -X POST "$url" -H 'Content-Type: application/json' \
        -d "{\"username\": \"$name\", \"password\": \"$name-password\", \"auth\": {\"type\": \"m.login.dummy\", \"session\": \"$session\"}}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
    [ -n "$token" ] || return 1
    printf '%s\n' "$token"
}

stop_server() {
    local status=0
    if [ -n "$MM_PID" ]; then
        if kill -0 "$MM_PID" 2>/dev/null; then
            kill -TERM "$MM_PID"
            wait "$MM_PID" || true
        else
            echo "the server had exited before the end of the run (crash?); its log:" >&2
            tail -n 50 "$MM_DATA/server.log" >&2 || true
            status=1
        fi
        MM_PID=""
    fi
    if [ -n "$MM_DATA" ]; then
        rm -rf "$MM_DATA"
        MM_DATA=""
    fi
    return "$status"
}

# server_alive: fails, showing the log, when the server is gone.
server_alive() {
    if ! kill -0 "$MM_PID" 2>/dev/null; then
        echo "the server died during the run; its log:" >&2
        tail -n 50 "$MM_DATA/server.log" >&2 || true
        return 1
    fi
}
