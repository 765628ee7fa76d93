#!/usr/bin/env bash
# Runs the membership benchmark against a local Synapse, for comparison only
# (not part of CI). Synapse's code is installed from PyPI into a venv, never
# committed here.
#
#   benches/synapse/run.sh              # install, start, bench, stop
#   benches/synapse/run.sh all --duration 10 --large-room-members 1000
#   benches/synapse/run.sh install | start | bench [ARGS] | stop
#
# Arguments after the command go to the bench (`cargo bench --bench membership -- ...`).
# Environment: SYNAPSE_VENV (/tmp/synapse-venv), SYNAPSE_DATA (/tmp/synapse-bench),
# SYNAPSE_PORT (8009). Synapse listens on 127.0.0.1 only, plain HTTP.
set -euo pipefail

SYNAPSE_VERSION=1.163.2
VENV=${SYNAPSE_VENV:-/tmp/synapse-venv}
DATA=${SYNAPSE_DATA:-/tmp/synapse-bench}
PORT=${SYNAPSE_PORT:-8009}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
URL="http://127.0.0.1:$PORT"

install() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/pip" show matrix-synapse 2>/dev/null | grep -qx "Version: $SYNAPSE_VERSION"; then
    return
  fi
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "matrix-synapse==$SYNAPSE_VERSION"
}

secret() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))'; }

versions_up() {
  "$VENV/bin/python" - "$URL/_matrix/client/versions" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

start() {
  if [ -f "$DATA/synapse.pid" ] && kill -0 "$(cat "$DATA/synapse.pid")" 2>/dev/null; then
    echo "Synapse already running (pid $(cat "$DATA/synapse.pid")); run '$0 stop' first" >&2
    exit 1
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA/media_store"
  sed -e "s|@DATA_DIR@|$DATA|g" -e "s|@PORT@|$PORT|g" \
      -e "s|@MACAROON_SECRET@|$(secret)|" -e "s|@FORM_SECRET@|$(secret)|" \
      -e "s|@REGISTRATION_SECRET@|$(secret)|" \
      "$HERE/homeserver.yaml.template" > "$DATA/homeserver.yaml"
  # Warnings only, to a file: the same as our server's RUST_LOG=warn.
  cat > "$DATA/log.config" <<LOG
version: 1
formatters:
  plain:
    format: '%(asctime)s %(levelname)s %(name)s %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: plain
    filename: $DATA/homeserver.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
LOG
  "$VENV/bin/python" -m synapse.app.homeserver -c "$DATA/homeserver.yaml" --generate-keys >/dev/null
  nohup "$VENV/bin/python" -m synapse.app.homeserver -c "$DATA/homeserver.yaml" \
    >"$DATA/stdout.log" 2>&1 </dev/null &
  echo $! > "$DATA/synapse.pid"
  for _ in $(seq 1 240); do
    if versions_up; then
      echo "Synapse $SYNAPSE_VERSION up at $URL (pid $(cat "$DATA/synapse.pid"), data $DATA)"
      return
    fi
    if ! kill -0 "$(cat "$DATA/synapse.pid")" 2>/dev/null; then
      echo "Synapse exited at start:" >&2
      tail -n 40 "$DATA/stdout.log" "$DATA/homeserver.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "Synapse did not answer $URL/_matrix/client/versions within 120 s" >&2
  exit 1
}

stop() {
  if [ -f "$DATA/synapse.pid" ]; then
    pid=$(cat "$DATA/synapse.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$DATA/synapse.pid"
  fi
}

bench() {
  cd "$REPO"
  # 100,000 members would take hours to populate through Synapse: 1,000 by default here.
  cargo bench --bench membership -- --url "$URL" --server-pid "$(cat "$DATA/synapse.pid")" \
    --large-room-members 1000 "$@"
}

cmd=${1:-all}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install ;;
  start) install; start ;;
  bench) bench "$@" ;;
  stop) stop ;;
  all)
    install
    start
    trap stop EXIT
    bench "$@"
    ;;
  *) echo "usage: $0 [install|start|bench|stop|all] [bench args]" >&2; exit 2 ;;
esac
