#!/usr/bin/env bash
# Property-based API tests with schemathesis against the running binary.
#
# Starts the server built by .ci/run ($MM_BIN; default target/debug/matrix-membership) on a
# free port with a temporary data folder and rate limits off, registers a user through the
# two-step m.login.dummy flow, and runs schemathesis over generated/swagger.json with that
# user's token as `Authorization: Bearer`. Every phase runs (examples, coverage, fuzzing,
# stateful), with a bounded number of examples per operation. Any failed check, a 5xx, or a
# server that died on the way fails the script. Then the example program examples/first_program.rs
# runs against the same server, so it cannot rot.
#
# Usage: bash .ci/schemathesis.sh        (after `cargo build --bin matrix-membership --examples`)
# Env:   MM_BIN, MM_EXAMPLE (paths of the built binaries), ST_MAX_EXAMPLES (default 25), ST_SEED
#        (default: a fresh seed each run; schemathesis prints it, so a failure can be replayed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export MM_BIN="${MM_BIN:-$TARGET/debug/matrix-membership}"
MM_EXAMPLE="${MM_EXAMPLE:-$TARGET/debug/examples/first_program}"
ST="$ROOT/.venv/bin/st"
# shellcheck source=.ci/lib/server.sh
source "$ROOT/.ci/lib/server.sh"

report_dir="$(mktemp -d)"
trap 'rm -rf "$report_dir"; stop_server' EXIT
start_server
MM_TOKEN="$(register_user "schemathesis")"
export MM_TOKEN

# A bounded run: at most ST_MAX_EXAMPLES cases per operation and phase (about
# 20 s here). logout is left out: it would revoke the one token every other request uses
# (tests/ covers it). The checks are the ones the contract promises; the
# others (negative_data_rejection and friends) judge Matrix's lenient input
# handling, not the spec.
status=0
# Run from a scratch folder: schemathesis keeps a replay cache (.schemathesis/) in its working directory.
(cd "$report_dir" && timeout 900 "$ST" --config-file "$ROOT/.ci/schemathesis.toml" run "$ROOT/generated/swagger.json" \
    --url "$BASE_URL/_matrix/client/api/v1" \
    --header "Authorization: Bearer $MM_TOKEN" \
    --exclude-operation-id logout \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --max-examples "${ST_MAX_EXAMPLES:-25}" \
    ${ST_SEED:+--seed "$ST_SEED"} \
    --workers 1 \
    --request-timeout 10 \
    --no-color) || status=$?
server_alive
if [ "$status" -ne 0 ]; then
    echo "schemathesis found contract violations (exit $status)" >&2
    exit "$status"
fi

echo
echo "==> examples/first_program against the same server"
"$MM_EXAMPLE" "$BASE_URL"
server_alive
