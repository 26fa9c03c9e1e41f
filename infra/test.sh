#!/usr/bin/env bash
# `make test`: every test against the AWS emulator (moto server), the end-to-end tests
# through the local gateway in front of cargo lambda watch, and `sam validate --lint`.
# Installs what is missing into .tools/. Uses its own ports (emulator 8100, API 9100,
# functions 9101) so it can run beside `make dev`; a port already taken fails the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT
# Ignore further signals while cleaning up (make forwards the one the terminal already sent).
trap 'trap "" INT TERM; exit 130' INT TERM

EMULATOR_PORT=${TEST_EMULATOR_PORT:-8100}
API_PORT=${TEST_API_PORT:-9100}
FUNCTIONS_PORT=${TEST_FUNCTIONS_PORT:-9101}
cd "$root"

step "checking tools (installs into .tools/ on first run)"
infra/bootstrap.sh lambda moto sam fuzz

step "rustfmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "sam validate --lint (and cfn-lint)"
sam validate --lint --template-file infra/template.yaml
cfn-lint infra/template.yaml

for port in "$API_PORT" "$FUNCTIONS_PORT"; do require_free_port "$port" "make test"; done
start_emulator "$EMULATOR_PORT"
export FLEETGATE_TEST_DYNAMODB_URL="http://127.0.0.1:$EMULATOR_PORT"

step "building workspace and tests"
cargo build --workspace --bins
cargo test --workspace --no-run

step "unit, property and integration tests (the emulator on :$EMULATOR_PORT)"
cargo test --workspace --lib --bins
# Our webhook signatures against the reference Standard Webhooks implementation.
cargo test --workspace --test standard_webhooks
cargo test --workspace --test integration -- --skip faults::
# The fault tests time their answers (503 within 7 s, well inside the 10 s function
# timeout): run alone, so the rest of the suite does not load the machine meanwhile.
cargo test --workspace --test integration faults::

step "fuzz targets: every parser of untrusted input, 15 s each (make fuzz runs longer)"
FLEETGATE_FUZZ_SECONDS=${FUZZ_SECONDS:-15} cargo test --workspace --test fuzz -- --nocapture

step "end-to-end through the local gateway on :$API_PORT (functions under cargo lambda watch on :$FUNCTIONS_PORT)"
# The functions get [workspace.metadata.lambda.env] plus this environment (the endpoints).
export_local_aws_env "$EMULATOR_PORT" "$API_PORT"
cargo run --quiet --bin local-stack -- tables
# --ignore-changes: no hot reload while tests run (a file written meanwhile, such as
# schemathesis' .hypothesis/ database, would restart every function mid-request).
# The functions log at trace level (AWS_LAMBDA_LOG_LEVEL, as Lambda's logging config sets
# it; fleetgate_api::logging caps other crates at info), so the secrets scan below reads
# the most they can ever log. RUST_LOG is cargo lambda's own level.
RUST_LOG=info AWS_LAMBDA_LOG_LEVEL=trace start_watch_background "$FUNCTIONS_PORT" --ignore-changes
wait_for_port "$FUNCTIONS_PORT" 60 "cargo lambda watch"
# Stage throttling is the template's parameter, raised here: the soak measures data
# integrity under concurrency, not the stage limit (the e2e tests check THROTTLED on a
# gateway of their own with a small limit).
start_gateway "$API_PORT" "$FUNCTIONS_PORT" --parameter ThrottlingRateLimit=100000 --parameter ThrottlingBurstLimit=100000
export FLEETGATE_E2E_URL="http://127.0.0.1:$API_PORT" FLEETGATE_E2E_FUNCTIONS_URL="http://127.0.0.1:$FUNCTIONS_PORT"
cargo test --workspace --test e2e -- --skip outage_drill

step "admin CLI: every fleetgate subcommand through the real binary against the test stack"
# Lambda's and CloudFormation's endpoints are pointed here by the tests (the AWS path).
cargo test --workspace --test cli

step "README's examples, run as pasted against the test stack"
python3 tests/readme/run_examples.py README.md "http://127.0.0.1:$API_PORT"

step "outage drill: the emulator frozen under the running stack, then thawed"
# Alone, because it stops the emulator every other test uses.
FLEETGATE_TEST_EMULATOR_PID=$emulator_pid cargo test --workspace --test e2e outage_drill -- --nocapture

step "concurrency soak: 2,000 mixed requests over 32 connections, then every write counted in DynamoDB"
cargo test --workspace --test soak -- --nocapture

step "contract: schemathesis against docs/openapi.json through the local gateway"
# A tenant of its own with a template, and two keys: full-fleet (plus webhooks:manage,
# so the webhook routes are exercised too), then read-only.
provision() { curl -s -X POST "http://127.0.0.1:$API_PORT/2015-03-31/functions/provisioner/invocations" -d "$1"; }
api_key() { python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'; }
tenant="contract-$$"
provision '{"action":"create_tenant","tenant_id":"'"$tenant"'","name":"Contract"}' >/dev/null
provision '{"action":"put_inspection_template","tenant_id":"'"$tenant"'","template":{"id":"tpl_pretrip","name":"Pre-trip","items":[{"id":"brakes","label":"Brakes"}]}}' >/dev/null
full_key=$(provision '{"action":"create_key","tenant_id":"'"$tenant"'","name":"contract","scopes":["vehicles:write","inspections:write","webhooks:manage"]}' | api_key)
read_key=$(provision '{"action":"create_key","tenant_id":"'"$tenant"'","name":"contract-ro","preset":"read-only"}' | api_key)
# Generated requests, valid (and their stateful follow-ups) and invalid (wrong types,
# formats, missing or unknown fields, odd bytes in bodies and headers): every response
# must be a documented status with a documented content type and body, never a 5xx.
# tests/contract/hooks.py adds two checks on authorisation: the read-only key's writes
# are all 403, and the full-fleet key's valid requests succeed where the document says.
contract() { # kind key
  CONTRACT_KEY_KIND=$1 CONTRACT_KEY=$2 SCHEMATHESIS_HOOKS=tests.contract.hooks PYTHONPATH=. \
  .tools/venv-fuzz/bin/schemathesis run docs/openapi.json \
    --url "http://127.0.0.1:$API_PORT" -H "X-API-Key: $2" --mode all -n "${CONTRACT_EXAMPLES:-25}" -w 1 \
    --request-timeout 30 --seed 20261129 --generation-deterministic \
    -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,read_only_key_cannot_write,full_fleet_key_gets_what_the_document_promises
}
contract full-fleet "$full_key"
step "contract with a read-only key (every write must be a 403)"
contract read-only "$read_key"

step "no key material in the functions' trace-level logs or in any table"
# Everything the functions (and the gateway) printed at trace level during the e2e,
# contract and soak runs (keys were created, used, rotated and revoked): no API key and
# no hash of any key in the keys table; and no table item holds a plaintext key.
cargo run --quiet --bin local-stack -- check-secrets ".local/watch-$FUNCTIONS_PORT.log" ".local/gateway-$API_PORT.log"
# Logs carry ids, never bodies: the soak's VINs travelled only in bodies.
if grep -q "5YJ3E1EA7KF" ".local/watch-$FUNCTIONS_PORT.log"; then
  echo "error: a request body field (a soak VIN) appears in the functions' log" >&2
  exit 1
fi

step "metrics: every EMF document the functions wrote is valid; every route and refusal reason was counted"
cargo run --quiet --bin local-stack -- metrics --require-coverage ".local/watch-$FUNCTIONS_PORT.log" >.local/metrics.txt
head -n 1 .local/metrics.txt   # the whole summary: .local/metrics.txt (or make metrics)

step "sam build (arm64, BuildMethod rust-cargolambda)"
# Proves the template builds every function for provided.al2023/arm64. Release
# optimisations are off here (no LTO, opt-level 0, parallel codegen) to keep CI fast;
# `make sam-build` and `sam build` for deploys use the real release profile.
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1
CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
  sam build --template-file infra/template.yaml --build-dir .aws-sam/build-ci
expected=$(grep -c "Type: AWS::Serverless::Function" infra/template.yaml)
python3 - "$expected" <<'PY'
import glob, struct, sys
built = sorted(glob.glob(".aws-sam/build-ci/*Function/bootstrap"))
for path in built:
    with open(path, "rb") as f:
        header = f.read(20)
    kind, machine = struct.unpack("<HH", header[16:20])
    if header[:4] != b"\x7fELF" or machine != 183:  # EM_AARCH64
        sys.exit(f"{path} is not an arm64 ELF binary")
    if kind != 2:  # ET_EXEC: non-PIE, as .cargo/config.toml asks (faster cold start)
        sys.exit(f"{path} is position-independent; .cargo/config.toml's rustflags did not apply")
if len(built) != int(sys.argv[1]):
    sys.exit(f"expected {sys.argv[1]} built functions, found {len(built)}")
print(f"sam build: {len(built)} arm64 bootstraps")
PY
