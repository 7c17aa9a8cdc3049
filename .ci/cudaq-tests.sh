#!/usr/bin/env bash
# The CUDA-Q adapter's tests in a venv of their own: cudaq (~2.6 GB) is not in [all].
# Usage: bash .ci/cudaq-tests.sh   (venv: $CUDAQ_VENV, default .venv-cudaq in the repo)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CUDAQ_VENV:-$REPO/.venv-cudaq}
PY=${PYTHON:-python3}
cd "$REPO"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[sim,test,cudaq]'
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pytest tests/cudaq -q -rs -p no:cacheprovider
