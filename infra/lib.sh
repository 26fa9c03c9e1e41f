# Shared by infra/dev.sh and infra/test.sh (sourced, not run).
# Starts and stops the local pieces; every process started here is stopped by stop_started.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.tools/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
started_pids=()

step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash only, no curl needed).
port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Runs "$@" in the background in a process group of its own, so stop_started
# can stop it with everything it spawned (cargo lambda watch runs one process per function).
run_in_group() {
  setsid "$@" &
  started_pids+=($!)
}

wait_for_port() { # port seconds what
  local port=$1 seconds=$2 what=$3 i
  for ((i = 0; i < seconds * 4; i++)); do
    port_answers "$port" && return 0
    sleep 0.25
  done
  echo "error: $what did not answer on port $port within ${seconds}s" >&2
  return 1
}

# Fails when something already answers on port $1: a stale process would be tested
# (or served) instead of the one this run starts.
require_free_port() { # port what
  if port_answers "$1"; then
    echo "error: something already listens on 127.0.0.1:$1 (wanted for $2); stop it first" >&2
    return 1
  fi
}

# The AWS emulator (moto server, Apache-2.0: DynamoDB, DynamoDB Streams, SQS, ...) on
# 127.0.0.1:$1, in memory (its data is gone when it stops), serial (infra/local/emulator.py says why).
start_emulator() {
  local port=$1 log="$root/.local/moto-$1.log"
  mkdir -p "$root/.local"
  require_free_port "$port" "the emulator"
  step "starting the AWS emulator (moto server) on 127.0.0.1:$port (log: .local/moto-$port.log)"
  run_in_group "$root/.tools/venv-moto/bin/python" "$root/infra/local/emulator.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1
  emulator_pid=${started_pids[-1]}
  wait_for_port "$port" 30 "the emulator"
}

# The local REST gateway on 127.0.0.1:$1 in front of `cargo lambda watch` on $2;
# further arguments go to local-gateway (e.g. --parameter Name=Value).
start_gateway() {
  local port=$1 functions=$2 log="$root/.local/gateway-$1.log"
  shift 2
  require_free_port "$port" "the local gateway"
  step "starting the local gateway on 127.0.0.1:$port (log: .local/gateway-$port.log)"
  run_in_group "${CARGO_TARGET_DIR:-$root/target}/debug/local-gateway" --port "$port" \
    --functions "http://127.0.0.1:$functions" "$@" >"$log" 2>&1
  wait_for_port "$port" 30 "the local gateway"
}

# `cargo lambda watch` on $1 with extra `--env-var K=V` arguments; in the background.
start_watch_background() {
  local port=$1 log="$root/.local/watch-$1.log"
  shift
  mkdir -p "$root/.local"
  require_free_port "$port" "cargo lambda watch"
  step "starting cargo lambda watch on 127.0.0.1:$port (log: .local/watch-$port.log)"
  run_in_group cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" "$@" >"$log" 2>&1
}

stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do
    # CONT first: a process frozen by the outage drill would not act on TERM.
    kill -CONT -- "-$pid" 2>/dev/null || true
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
}

# The environment of everything local: the emulator on $1 (DynamoDB, Secrets Manager), the local gateway
# on $2 (API Gateway's control plane, for the provisioner's authorizer-cache flush),
# dummy credentials, no instance-metadata probing.
export_local_aws_env() {
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1" AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$1"
  # The webhook pipeline's queues and the fleet table's stream, on the same emulator.
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$1" AWS_ENDPOINT_URL_DYNAMODB_STREAMS="http://127.0.0.1:$1"
  export AWS_ENDPOINT_URL_API_GATEWAY="http://127.0.0.1:$2"
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
}
