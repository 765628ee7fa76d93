#!/usr/bin/env bash
# A client in another language from the same spec: converts generated/swagger.json to
# OpenAPI 3 (swagger2openapi, npm), generates a Python client from it (openapi-python-client,
# PyPI), both pinned, into a temporary folder (never committed), and runs flow.py with it
# against a freshly started server ($MM_BIN).
#
# Usage: bash .ci/python-client/run.sh   (after .ci/run made .venv and built the binary)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$(pwd)"
HERE="$ROOT/.ci/python-client"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export MM_BIN="${MM_BIN:-$TARGET/debug/matrix-membership}"
VENV="$ROOT/.venv"
# openapi-python-client formats its output with ruff, which sits in the venv.
export PATH="$VENV/bin:$PATH"

# swagger2openapi, exactly as package-lock.json pins it, into .ci/python-client/node_modules (ignored by git).
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)

WORK="$(mktemp -d)"
# shellcheck source=.ci/lib/server.sh
source "$ROOT/.ci/lib/server.sh"
cleanup() {
    local status=0
    stop_server || status=$?
    rm -rf "$WORK"
    return "$status"
}
trap cleanup EXIT

"$HERE/node_modules/.bin/swagger2openapi" "$ROOT/generated/swagger.json" --patch --outfile "$WORK/openapi.json"
(cd "$WORK" && openapi-python-client generate --path openapi.json --meta none --output-path mm_client --fail-on-warning)

start_server
PYTHONPATH="$WORK" "$VENV/bin/python" "$HERE/flow.py" "$BASE_URL"
server_alive
