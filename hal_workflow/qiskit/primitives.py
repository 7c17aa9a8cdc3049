"""``HalSampler`` (``BaseSamplerV2``) and ``HalEstimator`` (``BaseEstimatorV2``) on any HAL
backend spec.

Both take ``backend=`` a spec (default ``"sim"``), a HAL ``Backend`` or a :class:`HalBackend`,
``options=`` a mapping of the fields of :class:`SamplerOptions` / :class:`EstimatorOptions`,
and ``executor=`` a Dask ``Client`` or a loaded Parsl config to spread large PUBs in chunks.

Every binding of a PUB goes to the backend in one sweep (its ``batch`` extension where
offered: the simulator compiles the circuit once and runs all bindings in one kernel call;
SLURM makes one array job). With ``seed`` set, element ``i`` of a sweep is sampled with
``seed + i``, so results do not depend on how a PUB is chunked or where it runs.

The estimator measures the terms of all observables of a PUB in qubit-wise commuting bases
(one sweep per basis, ``ceil(1 / precision^2)`` shots) and reports standard errors; with
``precision=0`` (or the ``exact`` option) it asks the backend's ``statevector`` extension for
exact values instead. Bad PUBs raise a typed :class:`~hal_workflow.contract.errors.HalError`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.primitives import (
    BaseEstimatorV2,
    BasePrimitiveJob,
    BaseSamplerV2,
    PrimitiveResult,
    PubResult,
    SamplerPubResult,
)
from qiskit.primitives.containers import BitArray, DataBin
from qiskit.primitives.containers.estimator_pub import EstimatorPub, EstimatorPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike
from qiskit.providers import JobStatus

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.circuits.observables import as_observable
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    ConfigurationError,
    HalError,
    UnsupportedExtensionError,
    ValidationError,
)
from hal_workflow.contract.types import ExecutionResult, ValidationCode, ValidationIssue
from hal_workflow.executors import _tasks
from hal_workflow.orchestration.sync import backend_for
from hal_workflow.qiskit._engine import Engine
from hal_workflow.qiskit.convert import from_qiskit, parameter_name

__all__ = ["EstimatorOptions", "HalEstimator", "HalPrimitiveJob", "HalSampler", "SamplerOptions"]

DEFAULT_PRECISION = 0.015625
"""Precision of a PUB on a backend without exact expectation values (4096 shots)."""


@dataclass(frozen=True)
class SamplerOptions:
    """``default_shots`` per PUB; ``seed`` (element ``i`` of a PUB sampled with ``seed + i``);
    ``chunk_size``: bindings per task on an executor (default: a few chunks per slot)."""

    default_shots: int = 1024
    seed: int | None = None
    chunk_size: int | None = None


@dataclass(frozen=True)
class EstimatorOptions:
    """``default_precision``: None is 0 (exact) where the backend offers the statevector
    extension, else :data:`DEFAULT_PRECISION`. ``exact``: None follows the precision (0 is
    exact), True always computes exact values, False always measures. ``seed`` and
    ``chunk_size`` as for :class:`SamplerOptions`."""

    default_precision: float | None = None
    exact: bool | None = None
    seed: int | None = None
    chunk_size: int | None = None


def _options(cls: type[Any], options: Any) -> Any:
    if options is None:
        return cls()
    if isinstance(options, cls):
        return options
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"options must be a mapping or {cls.__name__}, not "
                                 f"{type(options).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(f"unknown option(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
    return cls(**options)


def _spec(backend: Any) -> dict[str, Any]:
    from hal_workflow.qiskit.backend import HalBackend

    if isinstance(backend, HalBackend):
        return dict(backend.hal_spec)
    if isinstance(backend, Backend):
        return backend.spec
    return normalize_spec(backend)


def _invalid(message: str, code: ValidationCode = ValidationCode.UNSUPPORTED_FEATURE
             ) -> ValidationError:
    return ValidationError([ValidationIssue(code, message)])


def _coerced(coerce: Any, pubs: Iterable[Any], default: Any, kind: str) -> list[Any]:
    """Qiskit's own PUB coercion, its ``ValueError``/``TypeError`` as a typed error naming
    the PUB (unbound parameters, shapes that do not broadcast, wrong observable width)."""
    out = []
    for index, pub in enumerate(pubs):
        try:
            out.append(coerce(pub, default))
        except HalError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            text = str(exc)
            code = (ValidationCode.UNBOUND_PARAMETERS if "parameter" in text.lower()
                    else ValidationCode.UNSUPPORTED_FEATURE)
            raise _invalid(f"{kind} PUB {index}: {text}", code) from exc
    return out


def _bindings(circuit: QuantumCircuit, values: Any) -> list[dict[str, float]]:
    """The PUB's parameter values, flattened (C order), keyed by input name."""
    size = int(np.prod(values.shape, dtype=np.int64))
    parameters = list(circuit.parameters)
    if not parameters:
        return [{} for _ in range(size)]
    array = np.asarray(values.as_array(parameters), dtype=np.float64).reshape(-1, len(parameters))
    if not np.all(np.isfinite(array)):
        raise _invalid("parameter values must be finite numbers")
    names = [parameter_name(p) for p in parameters]
    return [dict(zip(names, row, strict=True)) for row in array.tolist()]


def _with_seed(spec: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return spec if seed is None else {**spec, "seed": int(seed)}


# -- jobs -------------------------------------------------------------------------------------
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hal-primitive")


class HalPrimitiveJob(BasePrimitiveJob[Any, JobStatus]):
    """The primitives' job: the PUBs run on a shared thread pool (threads, and so their event
    loops and backends, are reused across jobs)."""

    def __init__(self, function: Any, *args: Any) -> None:
        super().__init__(str(uuid.uuid4()))
        self._future: Future[Any] = _POOL.submit(function, *args)

    def result(self) -> Any:
        return self._future.result()

    def status(self) -> JobStatus:
        if self._future.running():
            return JobStatus.RUNNING
        if self._future.cancelled():
            return JobStatus.CANCELLED
        if not self._future.done():
            return JobStatus.QUEUED
        return JobStatus.DONE if self._future.exception() is None else JobStatus.ERROR

    def done(self) -> bool:
        return self.status() is JobStatus.DONE

    def running(self) -> bool:
        return self.status() is JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self.status() is JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        return self.status() in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED)

    def cancel(self) -> bool:
        """Cancel a job that has not started (a running one finishes)."""
        return self._future.cancel()


class _Primitive:
    def __init__(self, backend: BackendSpec | Backend | Any, options: Any,
                 executor: Any, options_type: type[Any]) -> None:
        self._spec = _spec(backend)
        self._options = _options(options_type, options)
        self._engine = Engine(executor, self._options.chunk_size)

    @property
    def options(self) -> Any:
        """The options (a frozen dataclass); change them with :meth:`set_options`."""
        return self._options

    def set_options(self, **options: Any) -> None:
        merged = {f.name: getattr(self._options, f.name) for f in fields(self._options)}
        self._options = _options(type(self._options), {**merged, **options})
        self._engine = Engine(self._engine.executor, self._options.chunk_size)

    @property
    def backend_spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def _backend(self) -> Backend:
        return backend_for(_tasks.worker_spec(self._spec))

    def _chunks(self, n: int) -> list[range]:
        return self._engine.ranges(n)


# -- sampler ----------------------------------------------------------------------------------
class HalSampler(_Primitive, BaseSamplerV2):
    """Sampler V2 on a HAL backend: ``HalSampler(backend="sim", options={"seed": 1})``."""

    def __init__(self, backend: BackendSpec | Backend | Any = "sim", options: Any = None,
                 executor: Any = None) -> None:
        super().__init__(backend, options, executor, SamplerOptions)

    def run(self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None
            ) -> HalPrimitiveJob:
        if shots is None:
            shots = self._options.default_shots
        coerced = _coerced(SamplerPub.coerce, pubs, shots, "sampler")
        max_shots = self._backend().capabilities().max_shots
        for index, pub in enumerate(coerced):
            if not 1 <= pub.shots <= max_shots:
                raise _invalid(f"sampler PUB {index}: shots must be between 1 and {max_shots}, "
                               f"got {pub.shots}", ValidationCode.SHOTS_OUT_OF_RANGE)
        circuits = [from_qiskit(pub.circuit) for pub in coerced]  # CircuitError now, not later
        return HalPrimitiveJob(self._run, coerced, circuits)

    def _run(self, pubs: list[SamplerPub], circuits: list[Any]) -> PrimitiveResult[Any]:
        results = [self._run_pub(pub, circuit) for pub, circuit in zip(pubs, circuits,
                                                                       strict=True)]
        return PrimitiveResult(results, metadata={"version": 2, "backend": self._spec["name"]})

    def _run_pub(self, pub: SamplerPub, circuit: Any) -> SamplerPubResult:
        bindings = _bindings(pub.circuit, pub.parameter_values)
        spec = _with_seed(self._spec, self._options.seed)
        calls = [(spec, circuit, bindings[r.start:r.stop], pub.shots, r.start)
                 for r in self._chunks(len(bindings))]
        packed = self._engine.map(_tasks_sweep_packed, calls)
        results = [r for blob in packed for r in _tasks.unpack_results(blob)]
        return _sampler_result(pub, results)


def _tasks_sweep_packed(spec: dict[str, Any], circuit: Any, bindings: list[dict[str, float]],
                        shots: int, first_index: int) -> bytes:
    """One chunk of a sampler PUB on a worker: results packed for the trip back."""
    return _tasks.pack_results(_tasks.run_sweep(spec, circuit, bindings, shots,
                                                first_index=first_index))


def _sampler_result(pub: SamplerPub, results: list[ExecutionResult]) -> SamplerPubResult:
    """Counts (keys over all clbits, clbit 0 rightmost) as one ``BitArray`` per register."""
    qc = pub.circuit
    num_clbits = qc.num_clbits
    registers = [(creg.name, [qc.find_bit(bit).index for bit in creg]) for creg in qc.cregs]
    arrays: dict[str, list[np.ndarray]] = {name: [] for name, _ in registers}
    for result in results:
        counts = {key: n for key, n in result.counts.items() if n}
        full = BitArray.from_counts(counts, num_bits=max(num_clbits, 1)) if num_clbits else None
        for name, indices in registers:
            assert full is not None
            arrays[name].append(full.slice_bits(indices).array)
    shape = pub.shape
    data = {
        name: BitArray(np.stack(arrays[name]).reshape(shape + arrays[name][0].shape), len(idx))
        for name, idx in registers
    }
    return SamplerPubResult(
        DataBin(**data, shape=shape),
        metadata={"shots": pub.shots, "circuit_metadata": qc.metadata,
                  "job_ids": [r.job_id for r in results[:100]]},
    )


# -- estimator --------------------------------------------------------------------------------
class HalEstimator(_Primitive, BaseEstimatorV2):
    """Estimator V2 on a HAL backend: ``HalEstimator(backend="sim")`` (exact by default on
    the simulator; give a ``precision`` to measure with shots)."""

    def __init__(self, backend: BackendSpec | Backend | Any = "sim", options: Any = None,
                 executor: Any = None) -> None:
        super().__init__(backend, options, executor, EstimatorOptions)

    def _default_precision(self) -> float:
        if self._options.default_precision is not None:
            return float(self._options.default_precision)
        exact = self._backend().extension("statevector") is not None
        return 0.0 if exact and self._options.exact is not False else DEFAULT_PRECISION

    def run(self, pubs: Iterable[EstimatorPubLike], *, precision: float | None = None
            ) -> HalPrimitiveJob:
        if precision is None:
            precision = self._default_precision()
        coerced = _coerced(EstimatorPub.coerce, pubs, precision, "estimator")
        plans = []
        backend = self._backend()
        for index, pub in enumerate(coerced):
            exact = self._options.exact if self._options.exact is not None else pub.precision == 0
            if exact and backend.extension("statevector") is None:
                raise UnsupportedExtensionError(
                    f"estimator PUB {index}: precision 0 needs exact expectation values, and "
                    f"backend {self._spec['name']!r} offers no statevector extension; give a "
                    "precision > 0"
                )
            shots = 0
            if not exact:
                if pub.precision <= 0:
                    raise _invalid(f"estimator PUB {index}: measuring needs a precision > 0")
                shots = math.ceil(1.0 / pub.precision ** 2)
                if shots > backend.capabilities().max_shots:
                    raise _invalid(
                        f"estimator PUB {index}: precision {pub.precision} needs {shots} shots, "
                        f"more than the backend's max_shots "
                        f"{backend.capabilities().max_shots}", ValidationCode.SHOTS_OUT_OF_RANGE)
            circuit = from_qiskit(pub.circuit)
            observables = [as_observable(o, pub.circuit.num_qubits)
                           for o in pub.observables.ravel().tolist()]
            plans.append((pub, circuit, observables, bool(exact), shots))
        return HalPrimitiveJob(self._run, plans)

    def _run(self, plans: list[tuple[Any, ...]]) -> PrimitiveResult[Any]:
        return PrimitiveResult([self._run_pub(*plan) for plan in plans],
                               metadata={"version": 2, "backend": self._spec["name"]})

    def _run_pub(self, pub: EstimatorPub, circuit: Any, observables: list[Any], exact: bool,
                 shots: int) -> PubResult:
        bindings = _bindings(pub.circuit, pub.parameter_values)
        spec = _with_seed(self._spec, self._options.seed)
        calls = [(spec, circuit, observables, bindings[r.start:r.stop], max(shots, 1), exact,
                  r.start) for r in self._chunks(len(bindings))]
        parts = self._engine.map(_expectations_task, calls)
        values = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 0))
        variances = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 0))
        shape = pub.shape
        obs_shape = pub.observables.shape
        par_shape = pub.parameter_values.shape
        o_index = np.broadcast_to(np.arange(math.prod(obs_shape)).reshape(obs_shape), shape)
        p_index = np.broadcast_to(np.arange(math.prod(par_shape)).reshape(par_shape), shape)
        evs = values[p_index, o_index]
        stds = np.sqrt(variances[p_index, o_index])
        data = DataBin(evs=evs, stds=stds, shape=shape)
        return PubResult(data, metadata={
            "target_precision": pub.precision, "shots": 0 if exact else shots, "exact": exact,
            "circuit_metadata": pub.circuit.metadata,
        })


def _expectations_task(spec: dict[str, Any], circuit: Any, observables: list[Any],
                       bindings: list[dict[str, float]], shots: int, exact: bool,
                       first_index: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of an estimator PUB on a worker."""
    return _tasks.run_expectations(spec, circuit, observables, bindings, shots, exact,
                                   first_index=first_index)
