"""Qiskit on hal-workflow: circuits in, a ``BackendV2`` provider, Sampler/Estimator V2.

* ``QuantumCircuit`` is accepted everywhere a circuit is (``run``, ``sweep``, ``submit``,
  ``Backend.submit``, the Dask/Parsl helpers) through the conversion registry;
  :func:`from_qiskit` and :func:`parameter_name` say how parameters are named.
* :class:`HalProvider` / :class:`HalBackend`: any backend spec as a Qiskit ``BackendV2``.
* :class:`HalSampler` / :class:`HalEstimator`: ``BaseSamplerV2`` / ``BaseEstimatorV2`` on any
  spec, optionally spread over a Dask ``Client`` or Parsl.

Needs the ``qiskit`` extra; ``import hal_workflow.qiskit`` itself loads Qiskit only when one
of these names is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal_workflow.qiskit.backend import HalBackend, HalJob, HalProvider
    from hal_workflow.qiskit.convert import from_qiskit, parameter_name
    from hal_workflow.qiskit.primitives import (
        EstimatorOptions,
        HalEstimator,
        HalSampler,
        SamplerOptions,
    )

_LAZY = {
    "HalBackend": "hal_workflow.qiskit.backend",
    "HalJob": "hal_workflow.qiskit.backend",
    "HalProvider": "hal_workflow.qiskit.backend",
    "from_qiskit": "hal_workflow.qiskit.convert",
    "parameter_name": "hal_workflow.qiskit.convert",
    "HalSampler": "hal_workflow.qiskit.primitives",
    "HalEstimator": "hal_workflow.qiskit.primitives",
    "SamplerOptions": "hal_workflow.qiskit.primitives",
    "EstimatorOptions": "hal_workflow.qiskit.primitives",
}

__all__ = [
    "EstimatorOptions",
    "HalBackend",
    "HalEstimator",
    "HalJob",
    "HalProvider",
    "HalSampler",
    "SamplerOptions",
    "from_qiskit",
    "parameter_name",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_workflow.qiskit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
