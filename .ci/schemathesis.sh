#!/usr/bin/env bash
# Property-based API tests with schemathesis against the running binary.
#
# Starts the server built by .ci/run ($MM_BIN; default target/debug/matrix-membership) on a
# free port with a temporary data folder and rate limits off, registers a user through the
# two-step m.login.dummy flow, and runs schemathesis over generated/swagger.json with that
# user's token in both places the spec states (?access_token= and Authorization: Bearer, see
# .ci/schemathesis.toml). Every phase runs (examples, coverage, fuzzing, stateful) with every
# check (--checks all: negative_data_rejection, positive_data_acceptance, ignored_auth, ...),
# with a bounded number of examples per operation. Any failed check, a 5xx, or a server that
# died on the way fails the script. Then the example program examples/first_program.rs runs
# against the same server, so it cannot rot.
#
# What is left out, and why:
# - logout: it would revoke the one token every other request uses (tests/ covers it).
# - GET /sync is fuzzed with timeout=0 and one valid inline filter (.ci/schemathesis.toml says why).
# - Schema-valid cases are kept clear of the server's state and capability rules that no
#   schema can state (a taken username, a room version it does not create, ...), and cases
#   schemathesis would send other than it generated are dropped: .ci/schemathesis_hooks.py
#   names each rule.
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

# A bounded run: at most ST_MAX_EXAMPLES cases per operation and phase (about 90 s here).
status=0
# Run from a scratch folder: schemathesis keeps a replay cache (.schemathesis/) in its working directory.
(cd "$report_dir" && PYTHONPATH="$ROOT/.ci" SCHEMATHESIS_HOOKS=schemathesis_hooks timeout 900 "$ST" --config-file "$ROOT/.ci/schemathesis.toml" run "$ROOT/generated/swagger.json" \
    --url "$BASE_URL/_matrix/client/api/v1" \
    --exclude-operation-id logout \
    --checks all \
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
