#!/usr/bin/env bash
# The Qrisp integration's tests in a venv of their own: qrisp pins qiskit<2.6 and sympy<=1.13,
# which [all] (qiskit 2.6) does not share. Also checks that [all] and qrisp co-install.
# Usage: bash .ci/qrisp-tests.sh   (venv: $QRISP_VENV, default .venv-qrisp in the repo)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${QRISP_VENV:-$REPO/.venv-qrisp}
PY=${PYTHON:-python3}
cd "$REPO"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[all,test,qrisp]'
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pytest tests/qrisp -q -rs -p no:cacheprovider
