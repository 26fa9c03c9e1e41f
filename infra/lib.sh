# Shared by infra/dev.sh and infra/test.sh (sourced, not run).
# Starts and stops the local pieces; every process started here is stopped by stop_started.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/.tools/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
started_pids=()

step() { printf '\n==> %s\n' "$*" >&2; }

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

# DynamoDB Local (AWS's jar) in memory on $1; reuses one already answering there.
start_dynamodb() {
  local port=$1 dir="$root/.tools/dynamodb" log="$root/.local/dynamodb-$1.log"
  mkdir -p "$root/.local"
  if port_answers "$port"; then
    step "DynamoDB Local already answers on 127.0.0.1:$port; using it"
    return 0
  fi
  step "starting DynamoDB Local on 127.0.0.1:$port (log: .local/dynamodb-$port.log)"
  run_in_group java -Xmx256m -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$port" >"$log" 2>&1
  wait_for_port "$port" 30 "DynamoDB Local"
}

# `cargo lambda watch` on $1 with extra `--env-var K=V` arguments; in the background.
start_watch_background() {
  local port=$1 log="$root/.local/watch-$1.log"
  shift
  mkdir -p "$root/.local"
  step "starting cargo lambda watch on 127.0.0.1:$port (log: .local/watch-$port.log)"
  run_in_group cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" "$@" >"$log" 2>&1
}

stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
}

# DynamoDB Local on $1 with dummy credentials; no instance-metadata probing.
export_local_aws_env() {
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1"
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
}
