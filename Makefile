# The two commands of README.md. Everything they need is installed into .tools/.
.PHONY: dev test fuzz bench sam-build

## Run the API locally on http://127.0.0.1:9000 (DynamoDB Local + cargo lambda watch).
dev:
	bash infra/dev.sh

## Run every test against a real DynamoDB Local, plus sam validate --lint.
test:
	bash infra/test.sh

## The parser fuzz targets for longer than make test gives them (FUZZ_SECONDS each, default 300).
FUZZ_SECONDS ?= 300
fuzz:
	FLEETGATE_FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --release -p fleetgate-tests --test fuzz -- --nocapture

## Benchmarks of SPEC §7 (cold start, warm overhead, RSS, connections, size); writes docs/.
bench:
	bash infra/bench.sh

## sam build (arm64 release binaries via cargo lambda), as `sam deploy` needs it.
sam-build:
	bash infra/bootstrap.sh lambda sam
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.tools/venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build
