"""PennyLane devices that run on any HAL backend: ``"hal"`` (any spec) and ``"hal.sim"``.

::

    dev = qml.device("hal.sim", wires=2, shots=1000, seed=7)
    dev = qml.device("hal", wires=4, backend={"name": "slurm", "backend": "sim"}, shots=2000)

How a batch of tapes runs:

* Preprocessing (PennyLane transforms) defers mid-circuit measurements, splits
  non-commuting measurements, rotates sampled observables to the Z basis and decomposes every
  operation to the standard gates of :data:`~hal_workflow.pennylane.convert.GATES`.
* Each tape becomes OpenQASM 3 text whose angles are ``input float`` parameters, so tapes
  that differ only in angles (parameter-shift, ``batch_params``) share one text.
* With shots, each group of tapes with the same text and shots is one ``submit_sweep`` of the
  backend's ``batch`` extension (one ``submit`` per tape without it); tape ``i`` of an
  ``execute`` call is sampled with seed ``base + i`` (``base`` drawn from the device's
  ``seed``), on every engine. Counts become samples that PennyLane's own measurement
  processes reduce, so expval/var/probs/sample/counts and shot vectors all follow its rules.
* Without shots (analytic mode), the backend's ``statevector`` extension gives the exact
  final state; backends without it refuse analytic mode with a ``ConfigurationError``.
* ``executor=``: a Dask ``Client``, or ``"parsl"`` / a Parsl ``Config`` (loaded if none is)
  spreads sampled tapes over workers with :mod:`hal_workflow.executors`, each worker
  building its own backend from the spec; seeds follow the same ``base + i`` rule.

Gradients: parameter shift and finite differences (PennyLane's own, through ``execute``);
the device computes no derivatives itself, so backprop and adjoint are not offered.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pennylane as qml
from pennylane.devices import Device, ExecutionConfig
from pennylane.devices.modifiers import simulator_tracking, single_tape_support
from pennylane.devices.preprocess import (
    decompose,
    validate_device_wires,
    validate_measurements,
    validate_observables,
)
from pennylane.devices.qubit import measure
from pennylane.measurements import ExpectationMP
from pennylane.tape import QuantumScript
from pennylane.transforms import broadcast_expand, defer_measurements, split_non_commuting
from pennylane.transforms.core import CompilePipeline

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.orchestration.frameworks import counts_to_rows, run_sweep
from hal_workflow.pennylane.convert import decomposer, is_supported, tape_to_qasm

__all__ = ["HalDevice", "HalSimDevice"]

_SEED_RANGE = 2**31


def _parse_backend(backend: BackendSpec) -> dict[str, Any]:
    """A spec from a mapping, a name, or JSON text (``pl-device-test --device-kwargs``)."""
    if isinstance(backend, str) and backend.lstrip().startswith("{"):
        try:
            backend = json.loads(backend)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"backend spec is not valid JSON: {exc}") from exc
    return normalize_spec(backend)


def _qubitwise_commuting(obs: Any) -> bool:
    """Whether ``obs`` is one Pauli word or a sum of Pauli words that agree on every wire."""
    rep = obs.pauli_rep
    if rep is None:
        return not isinstance(obs, qml.ops.Sum)
    basis: dict[Any, str] = {}
    for word in rep:
        for wire, pauli in word.items():
            if basis.setdefault(wire, pauli) != pauli:
                return False
    return True


def _needs_split(tape: QuantumScript) -> bool:
    """Whether measurements share wires, or an expectation value is of a sum of terms that do
    not commute qubit-wise (measured better term group by term group than in the eigenbasis
    of the whole sum). Variances of sums cannot be split; they are measured in that eigenbasis."""
    seen: set[Any] = set()
    for m in tape.measurements:
        if seen & set(m.wires):
            return True
        seen |= set(m.wires)
        if isinstance(m, ExpectationMP) and m.obs is not None and not _qubitwise_commuting(m.obs):
            return True
    return False


def _split(tape: QuantumScript) -> tuple[list[QuantumScript], Any]:
    """``split_non_commuting`` where needed; where it cannot (a variance of a sum beside other
    measurements on its wires), one tape per measurement, each split again if needed."""
    if not _needs_split(tape):
        return [tape], lambda results: results[0]
    try:
        return split_non_commuting(tape)  # type: ignore[no-any-return]
    except RuntimeError:
        pass
    tapes: list[QuantumScript] = []
    parts: list[tuple[int, int, Any]] = []
    for m in tape.measurements:
        sub_tapes, sub_post = _split(tape.copy(measurements=[m]))
        parts.append((len(tapes), len(sub_tapes), sub_post))
        tapes.extend(sub_tapes)

    def postprocess(results: Any) -> Any:
        values = [post(results[start:start + n]) for start, n, post in parts]
        if tape.shots.has_partitioned_shots:
            return tuple(tuple(v[b] for v in values) for b in range(tape.shots.num_copies))
        return tuple(values)

    return tapes, postprocess


@qml.transform
def _split_when_sampled(tape: QuantumScript) -> tuple[list[QuantumScript], Any]:
    """Sampled tapes: one tape per group of commuting measurements where needed, each ending
    with the gates that rotate its observables to the computational basis (samples are then
    reduced by each measurement's own ``process_samples``, as ``default.qubit`` does).
    Analytic tapes pass unchanged: the exact state answers every measurement at once."""
    if not tape.shots:
        return [tape], lambda results: results[0]
    tapes, postprocess = _split(tape)
    rotated = [
        QuantumScript([*t.operations, *t.diagonalizing_gates], t.measurements, shots=t.shots,
                      trainable_params=t.trainable_params)
        for t in tapes
    ]
    return rotated, postprocess


@dataclass
class _Group:
    """Tapes that share one program text and shot count: one sweep of the backend."""

    text: str
    shots: int
    indices: list[int] = field(default_factory=list)
    bindings: list[dict[str, float]] = field(default_factory=list)


@simulator_tracking
@single_tape_support
class HalDevice(Device):
    """A PennyLane device running on the HAL backend ``backend`` (any spec).

    Args:
        wires: number of wires or their labels (labels map to qubits by position).
        shots: default shots (``None``: analytic, needs the ``statevector`` extension).
        backend: the backend spec (name, mapping, or JSON text of a mapping).
        seed: seeds the per-execution base seed (reproducible samples where the backend
            takes seeds).
        executor: a Dask ``Client``, ``"parsl"`` or a Parsl ``Config``; sampled tapes then
            run as tasks of that engine.
        timeout: seconds to wait for one job (None: no limit).
    """

    def __init__(
        self,
        wires: Any = None,
        shots: Any = None,
        backend: BackendSpec = "sim",
        seed: int | None = None,
        executor: Any = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(wires=wires, shots=shots)
        self._spec = _parse_backend(backend)
        self._rng = np.random.default_rng(seed)
        self._executor = executor
        self._timeout = timeout
        self._backend_obj: Any = None

    @property
    def name(self) -> str:
        return "hal"

    @property
    def backend_spec(self) -> dict[str, Any]:
        """The spec the device runs on."""
        return dict(self._spec)

    @property
    def backend(self) -> Any:
        """The process-wide :class:`~hal_workflow.Backend` for the spec (built on first use)."""
        if self._backend_obj is None:
            from hal_workflow.orchestration.sync import backend_for

            self._backend_obj = backend_for(self._spec)
        return self._backend_obj

    # -- preprocessing ------------------------------------------------------------------------
    def preprocess_transforms(
        self, execution_config: ExecutionConfig | None = None
    ) -> CompilePipeline:
        program = CompilePipeline()
        program.add_transform(validate_device_wires, wires=self.wires, name=self.name)
        program.add_transform(defer_measurements, allow_postselect=False)
        program.add_transform(validate_measurements, name=self.name)
        program.add_transform(_split_when_sampled)
        program.add_transform(decompose, stopping_condition=is_supported, decomposer=decomposer,
                              skip_initial_state_prep=False, name=self.name)
        program.add_transform(validate_observables, stopping_condition=lambda obs: True,
                              name=self.name)
        program.add_transform(broadcast_expand)
        return program

    # -- execution ----------------------------------------------------------------------------
    def _layout(self, tape: QuantumScript) -> tuple[list[Hashable], dict[Hashable, int]]:
        order = list(self.wires) if self.wires is not None else list(tape.wires)
        return order, {w: i for i, w in enumerate(order)}

    def execute(self, circuits: Any, execution_config: ExecutionConfig | None = None) -> Any:
        tapes = list(circuits)
        results: list[Any] = [None] * len(tapes)
        base = int(self._rng.integers(_SEED_RANGE))
        groups: dict[tuple[str, int], _Group] = {}
        for i, tape in enumerate(tapes):
            order, wire_map = self._layout(tape)
            if not tape.shots:
                results[i] = self._exact(tape, order, wire_map)
                continue
            text, bindings = tape_to_qasm(tape, wire_map, len(order), measure=True)
            group = groups.setdefault((text, tape.shots.total_shots),
                                      _Group(text, tape.shots.total_shots))
            group.indices.append(i)
            group.bindings.append(bindings)
        if groups:
            counts = self._sample(list(groups.values()), base)
            for index, tape_counts in counts.items():
                results[index] = self._from_counts(tapes[index], tape_counts, base + index)
        return tuple(results)

    # analytic mode
    def _exact(self, tape: QuantumScript, order: list[Hashable],
               wire_map: dict[Hashable, int]) -> Any:
        from hal_workflow.orchestration.sync import run_sync

        extension = self.backend.extension("statevector")
        if extension is None:
            raise ConfigurationError(
                f"backend {self._spec['name']!r} offers no 'statevector' extension, so it "
                "cannot run analytic (shots=None) circuits; give the device or QNode shots"
            )
        text, bindings = tape_to_qasm(tape, wire_map, len(order), measure=False)
        amplitudes = np.asarray(run_sync(extension.statevector(text, bindings or None)))
        width = len(order)
        # little-endian (qubit q = bit q) -> a tensor whose axis q is qubit q, which
        # default.qubit's own measurement code reads with wires mapped to 0..n-1
        state = amplitudes.astype(np.complex128).reshape([2] * width).transpose(
            range(width - 1, -1, -1))
        values = tuple(measure(m.map_wires(wire_map), state) for m in tape.measurements)
        return values[0] if len(values) == 1 else values

    # sampled mode
    def _sample(self, groups: list[_Group], base: int) -> dict[int, Mapping[str, int]]:
        """Counts of every sampled tape (by tape index), one backend sweep per group."""
        from hal_workflow.orchestration.sync import run_sync

        if self._executor is not None:
            return self._sample_on_executor(groups, base)
        return run_sync(self._sample_async(groups, base))

    async def _sample_async(self, groups: list[_Group], base: int) -> dict[int, Mapping[str, int]]:
        backend = self.backend
        out: dict[int, Mapping[str, int]] = {}
        for group in groups:
            for indices, bindings in _contiguous_runs(group):
                # element j of a sweep uses seed + j: a run from index k starts at base + k
                results = await run_sweep(backend, group.text, bindings, group.shots,
                                          base + indices[0], self._timeout)
                for i, result in zip(indices, results, strict=True):
                    out[i] = result.counts
        return out

    def _sample_on_executor(self, groups: list[_Group], base: int) -> dict[int, Mapping[str, int]]:
        out: dict[int, Mapping[str, int]] = {}
        for group in groups:
            for indices, bindings in _contiguous_runs(group):
                spec = {**self._spec, "seed": base + indices[0]}
                results = _executor_sweep(self._executor, group.text, bindings, spec,
                                          group.shots)
                for i, result in zip(indices, results, strict=True):
                    out[i] = result.counts
        return out

    def _from_counts(self, tape: QuantumScript, counts: Mapping[str, int], seed: int) -> Any:
        """PennyLane results from counts: samples (rows in a seeded random order, so shot-vector
        bins are independent draws) reduced by each measurement process."""
        order, _ = self._layout(tape)
        samples = counts_to_rows(counts, len(order), seed).astype(np.int64)
        wire_order = qml.wires.Wires(order)
        shot_results = []
        for lower, upper in tape.shots.bins():
            part = samples[lower:upper]
            values = tuple(m.process_samples(part, wire_order) for m in tape.measurements)
            shot_results.append(values[0] if len(values) == 1 else values)
        if tape.shots.has_partitioned_shots:
            return tuple(shot_results)
        return shot_results[0]


class HalSimDevice(HalDevice):
    """``qml.device("hal.sim", wires=..., shots=..., seed=...)``: the built-in simulator
    (analytic mode included); extra keyword arguments are simulator options
    (``precision``, ``threads``, ``fusion`` ...)."""

    def __init__(self, wires: Any = None, shots: Any = None, seed: int | None = None,
                 executor: Any = None, timeout: float | None = None,
                 **sim_options: Any) -> None:
        super().__init__(wires=wires, shots=shots, backend={"name": "sim", **sim_options},
                         seed=seed, executor=executor, timeout=timeout)

    @property
    def name(self) -> str:
        return "hal.sim"


def _contiguous_runs(group: _Group) -> list[tuple[list[int], list[dict[str, float]]]]:
    """The group's tapes cut where their indices jump, so each run is seeded ``seed + j``."""
    runs: list[tuple[list[int], list[dict[str, float]]]] = []
    for i, binding in zip(group.indices, group.bindings, strict=True):
        if runs and runs[-1][0][-1] == i - 1:
            runs[-1][0].append(i)
            runs[-1][1].append(binding)
        else:
            runs.append(([i], [binding]))
    return runs


def _executor_sweep(executor: Any, text: str,
                    bindings: Sequence[Mapping[str, float]], spec: dict[str, Any],
                    shots: int) -> list[Any]:
    """Run one sweep on a Dask client or on Parsl; results in order."""
    module = type(executor).__module__.split(".")[0]
    if module == "distributed":
        from hal_workflow.executors import dask as hal_dask

        return hal_dask.sweep(executor, text, bindings, backend=spec, shots=shots,
                              progress=False)
    if executor == "parsl" or module == "parsl":
        import parsl
        from parsl.errors import NoDataFlowKernelError

        from hal_workflow.executors import parsl as hal_parsl

        if module == "parsl":
            try:
                parsl.dfk()
            except NoDataFlowKernelError:  # load the given config; a loaded one is used as is
                parsl.load(executor)
        return [f.result() for f in hal_parsl.sweep(text, bindings, backend=spec, shots=shots)]
    raise ConfigurationError(
        f"executor must be a Dask Client, 'parsl' or a Parsl Config, not {type(executor).__name__}"
    )
