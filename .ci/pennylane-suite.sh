#!/usr/bin/env bash
# PennyLane's own device test suite (pl-device-test) on hal-workflow's devices:
#   hal.sim analytic (--shots None) and sampled (--shots 10000): the whole suite;
#   hal over a SLURM-wrapped simulator (--shots 10000): the test_measurements module.
# Run inside the environment .ci/run installed (pennylane, pytest-mock, flaky, entry points
# from `pip install -e .[all,test]`); the SLURM part needs the cluster .ci/run starts.
# Usage: bash .ci/pennylane-suite.sh [sim|slurm|all]   (default: all)
set -euo pipefail
WHAT=${1:-all}
COMMON=(-q -rfEsx -p no:cacheprovider -W ignore::DeprecationWarning
        -W ignore::pennylane.exceptions.PennyLaneDeprecationWarning)

if [ "$WHAT" = sim ] || [ "$WHAT" = all ]; then
  pl-device-test --device hal.sim --shots None "${COMMON[@]}"
  pl-device-test --device hal.sim --shots 10000 "${COMMON[@]}"
fi
if [ "$WHAT" = slurm ] || [ "$WHAT" = all ]; then
  ROOT=$(mktemp -d /tmp/hal-pennylane-slurm-XXXXXX)
  trap 'rm -rf "$ROOT"' EXIT
  SPEC="{\"name\":\"slurm\",\"backend\":\"sim\",\"site\":\"ci\",\"job_root\":\"$ROOT\",\"poll_interval\":0.5}"
  pl-device-test --device hal --shots 10000 --device-kwargs "backend=$SPEC" \
    -k test_measurements "${COMMON[@]}"
fi
