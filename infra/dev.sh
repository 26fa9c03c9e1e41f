#!/usr/bin/env bash
# `make dev`: the whole stack on this machine, no AWS account, no Docker.
# Installs what is missing (into .tools/), starts DynamoDB Local on 127.0.0.1:8000,
# creates the tables from infra/template.yaml, seeds the demo tenant, prints demo
# keys, and serves the API on http://127.0.0.1:9000 with cargo lambda watch.
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT
# Ignore further signals while cleaning up (make forwards the one the terminal already sent).
trap 'trap "" INT TERM; exit 130' INT TERM

DYNAMODB_PORT=8000
API_PORT=9000
export_local_aws_env "$DYNAMODB_PORT" # inherited by local-stack and, through cargo lambda watch, the functions
export RUST_LOG="${RUST_LOG:-info}"

step "checking tools (installs into .tools/ on first run)"
"$root/infra/bootstrap.sh" lambda dynamodb

if port_answers "$API_PORT"; then
  echo "error: something already listens on 127.0.0.1:$API_PORT; stop it first" >&2
  exit 1
fi
start_dynamodb "$DYNAMODB_PORT"

step "building the functions (the first build takes a few minutes)"
(cd "$root" && cargo build --workspace --bins)

step "creating tables and seeding the demo tenant"
(cd "$root" && cargo run --quiet -p fleetgate-local --bin local-stack -- setup)

cat >&2 <<MSG
==> serving http://127.0.0.1:$API_PORT  (routes: see README; provisioner:
    curl -s -X POST http://127.0.0.1:$API_PORT/2015-03-31/functions/provisioner/invocations \\
      -d '{"action":"list_keys","tenant_id":"demo"}')
    Ctrl-C stops DynamoDB Local and cargo lambda watch.
MSG
cd "$root"
run_in_group cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT"
wait "${started_pids[-1]}"
