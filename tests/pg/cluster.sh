#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the PostgreSQL half of the tests.
#
#   bash tests/pg/cluster.sh start   # starts it (or finds it running) and prints the admin URL
#   bash tests/pg/cluster.sh url     # prints the admin URL of the running cluster
#   bash tests/pg/cluster.sh stop    # stops it and removes its folder
#
# The cluster runs as `nobody` (initdb refuses root) in a fresh folder from
# `mktemp -d /tmp/mm-pg.XXXXXX`, with its socket in that folder, listening on
# 127.0.0.1 on a free port, trust auth for local and loopback connections.
# fsync and synchronous_commit are on, as PostgreSQL's defaults are, stated
# here because the durability tests depend on them: a 2xx comes only after a
# commit that is on disk. max_connections is high because the whole suite runs
# in parallel, every test server with its own pool; shared_buffers is small.
#
# State: target/pg/cluster.env in the checkout (whatever CARGO_TARGET_DIR says,
# so every shell finds it) holds the URL and the folder, for `url` and `stop`. Env: PG_BIN, the folder
# of initdb/pg_ctl (default: the folder of the initdb on PATH).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$(pwd)"
STATE_DIR="$ROOT/target/pg"
STATE="$STATE_DIR/cluster.env"
PG_USER=nobody

initdb_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN/initdb"
    else
        command -v initdb || { echo "initdb is not on PATH (PostgreSQL 15 needed; or set PG_BIN)" >&2; return 1; }
    fi
}

# Fails unless initdb is PostgreSQL 15: the schema and the tests are pinned to it.
check_version() {
    local version
    version="$("$1" --version)"
    case "$version" in
        *" 15."*) ;;
        *) echo "PostgreSQL 15 is needed, '$1 --version' says: $version" >&2; return 1 ;;
    esac
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$STATE" ] || return 1
    # shellcheck source=/dev/null
    source "$STATE"
    [ -d "${PG_DIR:-}" ] && as_pg "$PG_CTL" -D "$PG_DIR/data" status >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    if running; then
        echo "$MM_PG_URL"
        return 0
    fi
    local initdb pg_ctl dir port user
    initdb="$(initdb_bin)"
    check_version "$initdb"
    pg_ctl="$(dirname "$initdb")/pg_ctl"
    dir="$(mktemp -d /tmp/mm-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown "$PG_USER" "$dir"
        user="$PG_USER"
    else
        user="$(id -un)"
    fi
    chmod 700 "$dir"
    as_pg "$initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
# tests/pg/cluster.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
max_connections = 400
shared_buffers = 64MB
CONF
    cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 trust
HBA
    port="$(free_port)"
    if ! as_pg "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null; then
        cat "$dir/server.log" >&2 || true
        rm -rf "$dir"
        return 1
    fi
    mkdir -p "$STATE_DIR"
    MM_PG_URL="postgres://$user@127.0.0.1:$port/postgres"
    printf 'MM_PG_URL=%q\nPG_DIR=%q\nPG_CTL=%q\n' "$MM_PG_URL" "$dir" "$pg_ctl" >"$STATE"
    echo "$MM_PG_URL"
}

stop() {
    if [ ! -f "$STATE" ]; then
        echo "no cluster state at $STATE: nothing to stop" >&2
        return 0
    fi
    # shellcheck source=/dev/null
    source "$STATE"
    if [ -d "${PG_DIR:-}" ]; then
        as_pg "$PG_CTL" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    rm -f "$STATE"
}

url() {
    if ! running; then
        echo "no running cluster: start one with 'bash tests/pg/cluster.sh start'" >&2
        return 1
    fi
    echo "$MM_PG_URL"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
