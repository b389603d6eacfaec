#!/usr/bin/env bash
# The one command that runs alcatraz's whole test suite on a fresh Debian machine.
#
#   ./scripts/test.sh            # everything: set-up, lint, types, unit, integration
#   ./scripts/test.sh --unit     # skip the engine set-up and the integration tests
#
# It installs what it needs itself (Debian packages, Mutagen, local test images, a
# rootless-Podman user; see scripts/setup-test-env.sh and scripts/setup-rootless-lane.sh),
# creates a virtualenv in .venv, and never needs stdin.
set -euo pipefail
cd "$(dirname "$0")/.."

unit_only=0
[[ "${1:-}" == "--unit" ]] && unit_only=1

step() { printf '\n==> %s\n' "$*"; }

if [[ $unit_only -eq 0 ]]; then
  step "Setting up engines, nftables, Mutagen and test images"
  if [[ $(id -u) -ne 0 ]]; then
    echo "The integration set-up needs root (apt-get, dockerd, nftables): run with sudo." >&2
    exit 1
  fi
  bash scripts/setup-test-env.sh
  bash scripts/setup-rootless-lane.sh   # an unprivileged user with rootless Podman
fi

step "Python environment (.venv)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
export PATH="$PWD/.venv/bin:$PATH"

step "Lint (ruff), types (mypy), import contracts (lint-imports)"
ruff check src tests bench
ruff format --check src tests bench
mypy
lint-imports

step "Unit tests"
python -m pytest tests/unit tests/security -q -n auto -p no:cacheprovider -m "not integration"

if [[ $unit_only -eq 0 ]]; then
  step "Integration and security tests (real Docker, Podman, nftables, Mutagen), scorecard"
  # The dockerd restart fault runs only against a dockerd our set-up started (pid file).
  if [[ -f /run/alca-test-dockerd.pid ]] && [[ $(pgrep -x dockerd) == "$(cat /run/alca-test-dockerd.pid)" ]]; then
    export ALCA_TEST_RESTART_DOCKERD=1
  fi
  # One session, so the security scorecard at the end counts the network truth tables,
  # the faults and the bad-input catalogue together.
  python -m pytest tests/integration tests/security tests/unit/test_bad_input.py \
    -q -p no:cacheprovider -m "integration or not integration"
fi
