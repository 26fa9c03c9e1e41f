# The two commands of README.md. Everything they need is installed into .tools/.
.PHONY: dev test fuzz bench sam-build metrics

## Run the API locally on http://127.0.0.1:9000 (the moto emulator, cargo lambda watch, the local gateway).
dev:
	bash infra/dev.sh

## Run every test against the AWS emulator (moto server) and the local stack, plus sam validate --lint.
test:
	bash infra/test.sh

## The parser fuzz targets for longer than make test gives them (FUZZ_SECONDS each, default 300).
FUZZ_SECONDS ?= 300
fuzz:
	FLEETGATE_FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --release -p fleetgate-tests --test fuzz -- --nocapture

## Benchmarks of SPEC §7 (cold start, warm overhead, RSS, connections, size); writes docs/.
bench:
	bash infra/bench.sh

## What production would chart: the EMF metrics in the functions' log of the latest
## `make dev` or `make test` (or LOG=path), checked and summed per metric and dimensions.
LOG ?= $(shell ls -t .local/watch-*.log 2>/dev/null | head -1)
metrics:
	@test -n "$(LOG)" || { echo "no .local/watch-*.log yet: run make dev or make test first (or LOG=path)"; exit 2; }
	cargo run --quiet --bin local-stack -- metrics "$(LOG)"

## sam build (arm64 release binaries via cargo lambda), as `sam deploy` needs it.
sam-build:
	bash infra/bootstrap.sh lambda sam
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build
