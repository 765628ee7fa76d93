#!/usr/bin/env bash
# Runs Sydent (pinned in requirements.txt) for the tests, creating its venv
# on first use. The venv lives in $SYDENT_VENV, by default target/sydent-venv
# (so CI caches it with target/), and is rebuilt when requirements.txt changes.
#
# usage: tests/sydent/sydent.sh --port PORT --data DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${SYDENT_VENV:-${CARGO_TARGET_DIR:-$root/target}/sydent-venv}"
python="${PYTHON:-python3}"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$venv/.installed" 2>/dev/null || true)" != "$want" ]; then
    # One installer at a time: tests may start Sydent in parallel.
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
    if [ "$(cat "$venv/.installed" 2>/dev/null || true)" != "$want" ]; then
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt" >&2
        echo "$want" > "$venv/.installed"
    fi
    flock -u 9
fi
exec "$venv/bin/python" "$here/run_sydent.py" "$@"
