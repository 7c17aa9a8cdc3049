#!/usr/bin/env bash
# Each framework extra installs on its own in a fresh venv, pip check clean, and its tests
# pass with only that extra (plus pytest). cudaq and qrisp have their own scripts.
# Usage: bash .ci/extras-alone.sh [EXTRA...]   (default: pennylane cirq)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
cd "$REPO"
for EXTRA in "${@:-pennylane cirq}"; do
  for E in $EXTRA; do
    VENV=$(mktemp -d "/tmp/hal-extra-$E-XXXXXX")
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[$E]" pytest pytest-timeout
    "$VENV/bin/python" -m pip check
    "$VENV/bin/python" -m pytest "tests/$E" -q -rs -p no:cacheprovider
    rm -rf "$VENV"
  done
done
