#!/usr/bin/env bash
# `make dev`: the whole stack on this machine, no AWS account, no Docker.
# Installs what is missing (into .tools/), starts the AWS emulator (moto server) on
# 127.0.0.1:8000, creates the tables from infra/template.yaml, seeds the demo tenant,
# prints demo keys, runs the functions under cargo lambda watch (127.0.0.1:9001) and
# serves the API on http://127.0.0.1:9000 through the local gateway (as API Gateway
# would: authorizer, its cache, gateway responses). Ctrl-C stops everything it started;
# the emulator keeps its data in memory, so the local data is gone then.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT
# Ignore further signals while cleaning up (make forwards the one the terminal already sent).
trap 'trap "" INT TERM; exit 130' INT TERM

EMULATOR_PORT=8000
API_PORT=9000
FUNCTIONS_PORT=9001
# Inherited by local-stack and, through cargo lambda watch, the functions.
export_local_aws_env "$EMULATOR_PORT" "$API_PORT"
export RUST_LOG="${RUST_LOG:-info}"

step "checking tools (installs into .tools/ on first run)"
"$root/infra/bootstrap.sh" lambda moto

for port in "$API_PORT" "$FUNCTIONS_PORT"; do require_free_port "$port" "make dev"; done
start_emulator "$EMULATOR_PORT"

step "building the functions and the local gateway (the first build takes a few minutes)"
(cd "$root" && cargo build --workspace --bins)

step "creating tables and seeding the demo tenant"
(cd "$root" && cargo run --quiet --bin local-stack -- setup)

cd "$root"
start_watch_background "$FUNCTIONS_PORT"
start_gateway "$API_PORT" "$FUNCTIONS_PORT"
cat >&2 <<MSG
==> serving http://127.0.0.1:$API_PORT  (routes: see README; admin: target/debug/fleetgate --local --help,
    or the raw provisioner: curl -s -X POST http://127.0.0.1:$API_PORT/2015-03-31/functions/provisioner/invocations \\
      -d '{"action":"list_keys","tenant_id":"demo"}')
    Webhooks: target/debug/fleetgate webhooks listen --secret whsec_… receives on http://127.0.0.1:8787/
    (README: Webhooks). Ctrl-C stops the emulator, cargo lambda watch and the gateway (local data is not kept).
MSG
wait "${started_pids[-1]}"
