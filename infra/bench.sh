#!/usr/bin/env bash
# `make bench` (not part of `make test`): builds every function in release
# (x86_64 to run here; arm64 with cargo lambda for its size), starts the AWS
# emulator (moto) on 127.0.0.1:8200 and runs the harness in tests/bench, which writes
# docs/benchmarks.md, docs/benchmarks.json and docs/cold-start.svg.
#   BENCH_ARM64=0               skip the arm64 build (sizes then show "–")
#   BENCH_COLD_STARTS=30 BENCH_WARM_INVOCATIONS=1000   (the defaults)
#   BENCH_DELIVERY_SAMPLES=100  webhook deliveries timed end to end on the local stack (0: skip)
#   BENCH_ONLY=hello,cli,get-vehicle   only the subjects whose names start so (cli: the admin CLI)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT
trap 'trap "" INT TERM; exit 130' INT TERM
cd "$root"

EMULATOR_PORT=${BENCH_EMULATOR_PORT:-8200}
target_dir=${CARGO_TARGET_DIR:-target}
sizes_file="$target_dir/bench-sizes.json"
step "checking tools"
infra/bootstrap.sh lambda moto
if [ ! -x .tools/venv-bench/bin/python ]; then
  step "installing the Python peer's runtime (awslambdaric, boto3) into .tools/venv-bench"
  python3 -m venv .tools/venv-bench
  .tools/venv-bench/bin/pip install --quiet --disable-pip-version-check awslambdaric boto3
fi

bins=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
for p in meta["packages"]:
    if p["manifest_path"].startswith(meta["workspace_root"] + "/functions/") or p["name"] == "bench-hello":
        for t in p["targets"]:
            if "bin" in t["kind"]:
                print(t["name"])')

step "release build, x86_64 (this machine runs it), non-PIE like the arm64 build (.cargo/config.toml)"
bin_args=(); for b in $bins; do bin_args+=(--bin "$b"); done
# With an explicit --target, RUSTFLAGS reach only the target's artifacts, not build scripts or proc macros.
# The admin CLI too (its start-up is measured; it runs on admins' machines, so no arm64 build).
RUSTFLAGS="-C relocation-model=static" cargo build --release --target x86_64-unknown-linux-gnu "${bin_args[@]}" --bin fleetgate
cargo build --release -p fleetgate-bench --bin bench
release_dir="$target_dir/x86_64-unknown-linux-gnu/release"

sizes_of() { # arch dir-pattern...
  python3 - "$@" <<'PY'
import io, json, os, sys, zipfile
arch, pattern, out = sys.argv[1], sys.argv[2], os.environ["SIZES_FILE"]
sizes = json.load(open(out)) if os.path.exists(out) else {}
for name in sys.argv[3:]:
    path = pattern.replace("{bin}", name)
    if not os.path.exists(path):
        continue
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    sizes.setdefault(name, {})[arch] = {"binary": os.path.getsize(path), "zip": len(buffer.getvalue())}
json.dump(sizes, open(out, "w"), indent=2)
PY
}
export SIZES_FILE="$sizes_file"
rm -f "$sizes_file"
sizes_of x86_64 "$release_dir/{bin}" $bins fleetgate

if [ "${BENCH_ARM64:-1}" != 0 ]; then
  step "release build, arm64 (for size; as sam build makes it)"
  rustup target add aarch64-unknown-linux-gnu >/dev/null
  cargo lambda build --release --arm64 "${bin_args[@]}"
  sizes_of arm64 "$target_dir/lambda/{bin}/bootstrap" $bins
fi

start_emulator "$EMULATOR_PORT"
# The builds above leave the machine hot and busy; timings taken right after them
# were 40 % slower. Wait (at most 3 minutes) for the 1-minute load to fall.
step "waiting for the machine to settle (load average below 0.5)"
for _ in $(seq 1 36); do
  awk '{ exit !($1 < 0.5) }' /proc/loadavg && break
  sleep 5
done
step "measuring (cold starts, warm invocations, RSS, connections)"
BENCH_DYNAMODB_URL="http://127.0.0.1:$EMULATOR_PORT" BENCH_PYTHON="$root/.tools/venv-bench/bin/python" \
  BENCH_RELEASE_DIR="$release_dir" BENCH_SIZES="$sizes_file" "$target_dir/release/bench"

if [ "${BENCH_DELIVERY_SAMPLES:-100}" != 0 ]; then
  # The webhook pipeline end to end: the stack as make dev runs it (debug builds under
  # cargo lambda watch, the local gateway with its poller), on ports of its own.
  API_PORT=${BENCH_API_PORT:-9200}
  FUNCTIONS_PORT=${BENCH_FUNCTIONS_PORT:-9201}
  step "webhook delivery latency through the local stack (gateway :$API_PORT, functions :$FUNCTIONS_PORT)"
  cargo build --workspace --bins
  export_local_aws_env "$EMULATOR_PORT" "$API_PORT"
  cargo run --quiet --bin local-stack -- tables
  start_watch_background "$FUNCTIONS_PORT" --ignore-changes
  wait_for_port "$FUNCTIONS_PORT" 60 "cargo lambda watch"
  start_gateway "$API_PORT" "$FUNCTIONS_PORT"
  "$target_dir/release/bench" delivery-latency "http://127.0.0.1:$API_PORT"
fi
