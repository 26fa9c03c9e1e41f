#!/usr/bin/env bash
# Installs the local toolchain into ignored folders of the repo, only what is missing.
#   infra/bootstrap.sh lambda moto      # what `make dev` needs
#   infra/bootstrap.sh lambda moto sam fuzz  # what `make test` needs
# Everything lands under .tools/ so a fresh clone needs nothing installed by hand.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
venv="$tools/venv"
mkdir -p "$tools"

MOTO_VERSION=5.2.5
WAITRESS_VERSION=3.0.2
CARGO_LAMBDA_VERSION=1.9.2
SAM_CLI_VERSION=1.170.0
SCHEMATHESIS_VERSION=4.32.5

say() { printf '==> %s\n' "$*" >&2; }

ensure_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    say "creating Python venv in .tools/venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  fi
}

install_lambda() {
  if [ -x "$venv/bin/cargo-lambda" ]; then return; fi
  ensure_venv
  say "installing cargo-lambda $CARGO_LAMBDA_VERSION (pip, ~30 s)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
}

# The AWS emulator, in a venv of its own (its boto pins stay apart from the SAM CLI's).
install_moto() {
  if [ -x "$tools/venv-moto/bin/waitress-serve" ]; then return; fi
  say "installing moto[server] $MOTO_VERSION and waitress into .tools/venv-moto (pip, ~40 s)"
  python3 -m venv "$tools/venv-moto"
  "$tools/venv-moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "waitress==$WAITRESS_VERSION"
}

install_sam() {
  if [ -x "$venv/bin/sam" ] && [ -x "$venv/bin/cfn-lint" ]; then return; fi
  ensure_venv
  say "installing AWS SAM CLI $SAM_CLI_VERSION and cfn-lint (pip, ~80 s)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION" cfn-lint
}

install_fuzz() {
  if [ -x "$tools/venv-fuzz/bin/schemathesis" ]; then return; fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into .tools/venv-fuzz (pip, ~30 s)"
  python3 -m venv "$tools/venv-fuzz"
  "$tools/venv-fuzz/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

for component in "$@"; do
  case "$component" in
    lambda) install_lambda ;;
    moto) install_moto ;;
    sam) install_sam ;;
    fuzz) install_fuzz ;;
    *) echo "unknown component: $component" >&2; exit 2 ;;
  esac
done
