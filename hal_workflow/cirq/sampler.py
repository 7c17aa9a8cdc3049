"""``HalSampler``: a ``cirq.Sampler`` that runs on any HAL backend.

::

    sampler = HalSampler(backend="sim", seed=7)
    results = sampler.run_sweep(circuit, cirq.Linspace("theta", 0, 1, 20), repetitions=1000)

``run_sweep`` converts the program once (symbols become ``input float`` parameters) and sends
it with every resolver through the backend's ``batch`` extension (``submit_sweep``: one call,
the circuit compiled once; one ``submit`` per resolver without it). Resolver ``i`` is sampled
with seed ``seed + i`` where the backend takes seeds. Each result is a ``cirq.ResultDict`` with
the program's measurement keys, each key's bits in its measurement's qubit order, rows in a
seeded random order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cirq
import numpy as np

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.cirq.convert import CirqProgram, to_program
from hal_workflow.contract.errors import CircuitError
from hal_workflow.orchestration.frameworks import counts_to_rows, run_sweep

__all__ = ["HalSampler", "result_from_counts"]


def result_from_counts(program: CirqProgram, counts: Mapping[str, int],
                       params: cirq.ParamResolver, seed: int | None = None) -> cirq.ResultDict:
    """A ``cirq.ResultDict`` from HAL counts (clbit 0 rightmost), cut into the program's keys."""
    rows = counts_to_rows(counts, program.num_clbits, seed)
    measurements = {key: rows[:, list(index)] for key, index in program.keys.items()}
    return cirq.ResultDict(params=params, measurements=measurements)


class HalSampler(cirq.Sampler):
    """A Cirq sampler on the HAL backend ``backend`` (a spec; built once per process).

    Args:
        backend: the backend spec.
        seed: base seed of each ``run_sweep`` (resolver ``i`` uses ``seed + i``); None draws
            a fresh one per call.
        timeout: seconds to wait for each job.
    """

    def __init__(self, backend: BackendSpec = "sim", seed: int | None = None,
                 timeout: float | None = None) -> None:
        self._spec = normalize_spec(backend)
        self._seed = seed
        self._timeout = timeout
        self._rng = np.random.default_rng(seed)

    @property
    def backend_spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def run_sweep(self, program: cirq.AbstractCircuit, params: cirq.Sweepable,
                  repetitions: int = 1) -> Sequence[cirq.Result]:
        from hal_workflow.orchestration.sync import run_sync

        if isinstance(repetitions, bool) or not isinstance(repetitions, (int, np.integer)) \
                or repetitions < 1:
            raise CircuitError(f"repetitions must be a positive integer, got {repetitions!r}")
        converted = to_program(program)
        if not converted.keys:
            raise CircuitError("the circuit has no measurements; nothing to sample")
        resolvers = list(cirq.to_resolvers(params))
        bindings = [self._binding(converted, r) for r in resolvers]
        seed = self._seed if self._seed is not None else int(self._rng.integers(2**31))
        counts = run_sync(self._run(converted, bindings, int(repetitions), seed))
        return [result_from_counts(converted, c, r, seed + i)
                for i, (c, r) in enumerate(zip(counts, resolvers, strict=True))]

    @staticmethod
    def _binding(program: CirqProgram, resolver: cirq.ParamResolver) -> dict[str, float]:
        values: dict[str, float] = {}
        for name in program.parameters:
            value = resolver.value_of(name)
            try:
                values[name] = float(value)
            except TypeError:
                raise CircuitError(f"symbol {name!r} has no value in resolver {resolver}") \
                    from None
        return values

    async def _run(self, program: CirqProgram, bindings: list[dict[str, float]], shots: int,
                   seed: int) -> list[Mapping[str, int]]:
        from hal_workflow.orchestration.sync import backend_for

        results = await run_sweep(backend_for(self._spec), program.qasm, bindings, shots, seed,
                                  self._timeout)
        return [r.counts for r in results]
