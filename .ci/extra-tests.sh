#!/usr/bin/env bash
# A framework extra that [all] leaves out, tested in a venv of its own, by hand (.ci/run does
# the same in its per-extra loop):
#   bash .ci/extra-tests.sh cudaq   # ~2.6 GB; venv .venv-cudaq
#   bash .ci/extra-tests.sh qrisp   # qrisp pins qiskit<2.6 and sympy<=1.13; installed beside
#                                   # [all] here, which also checks that the two co-install
set -euo pipefail
EXTRA=${1:?usage: bash .ci/extra-tests.sh cudaq|qrisp}
case "$EXTRA" in
  cudaq) SPEC='.[sim,test,cudaq]' ;;
  qrisp) SPEC='.[all,test,qrisp]' ;;
  *) echo "extra-tests: no tests of their own for [$EXTRA] (its tests run in .venv)" >&2; exit 2 ;;
esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$REPO/.venv-$EXTRA
cd "$REPO"
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e "$SPEC"
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m pytest "tests/$EXTRA" -q -rs -p no:cacheprovider
