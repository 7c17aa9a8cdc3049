"""The gather and scatter of a cache-blocked stage by whole memory lines (issue 12): for every
way physical qubits 0-2 can lie in a stage's buffer (all lanes, all local, or mixed: the eight
``kernels.line_map`` patterns) and for a chunk qubit among them (amplitudes moved one at a
time), a stage of random dense blocks is checked against Qiskit's ``Statevector``, reading an
existing state and starting fresh, at both precisions.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import quantum_info as qiskit_info  # a test dependency: the reference

from hal_workflow.simulator import engine
from hal_workflow.simulator import kernels as K

N, KBITS = 9, 4  # 4 local + 3 lane qubits in the buffer, 2 chunk qubits: 4 chunks
TOLERANCE = {np.complex128: 1e-10, np.complex64: 2e-5}

# (lanes, expected pattern): the local qubits are the lowest KBITS others, chunk the rest
LAYOUTS = [
    ((0, 1, 2), 7),   # lanes on 0-2: plain row copies
    ((3, 4, 5), 0),   # 0-2 local: an 8 x 8 transpose
    ((6, 7, 8), 0),   # far lanes
    ((0, 5, 8), 1),
    ((1, 4, 6), 2),
    ((0, 1, 7), 3),
    ((2, 3, 8), 4),
    ((0, 2, 6), 5),
    ((1, 2, 5), 6),
]


def _stage(lanes: tuple[int, ...], chunk: tuple[int, ...] = ()) -> engine._StageStep:
    others = [q for q in range(N) if q not in lanes and q not in chunk]
    local = others[:KBITS]
    return engine._StageStep(N, KBITS, local, lanes)


def _run(step: engine._StageStep, dtype: type, fresh: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool: list[complex] = []
    blocks = []
    for width in (2, 1, 3, 2, 2, 1):
        qubits = tuple(sorted(rng.choice(step.local, width, replace=False).tolist()))
        d = 1 << width
        unitary, _ = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
        step.add_dense(qubits, len(pool))
        pool.extend(unitary.ravel())
        blocks.append((qubits, unitary))
    step.freeze()
    if fresh:
        initial = np.zeros(1 << N, dtype=complex)
        initial[0] = 1.0
        state = np.full((1, 1 << N), np.nan, dtype=dtype)  # never read
    else:
        initial = rng.normal(size=1 << N) + 1j * rng.normal(size=1 << N)
        initial /= np.linalg.norm(initial)
        state = initial.astype(dtype)[None, :].copy()
    step.apply(state, np.array([pool], dtype=dtype), engine.make_run(2), fresh=fresh)
    expected = qiskit_info.Statevector(initial)
    for qubits, unitary in blocks:
        expected = expected.evolve(qiskit_info.Operator(unitary), qargs=list(qubits))
    np.testing.assert_allclose(state[0], expected.data, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize(("lanes", "pattern"), LAYOUTS)
def test_stage_moves_whole_lines_in_every_pattern(dtype: type, fresh: bool,
                                                  lanes: tuple[int, ...], pattern: int) -> None:
    step = _stage(lanes)
    _run(step, dtype, fresh, seed=10 * pattern + sum(lanes))
    assert step.lines[K.LANES] == pattern


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize("chunk", [(0, 8), (2, 7), (1, 2)])
def test_stage_with_a_chunk_qubit_among_0_to_2_moves_single_amplitudes(
        dtype: type, fresh: bool, chunk: tuple[int, ...]) -> None:
    lanes = tuple(q for q in (3, 4, 5, 6) if q not in chunk)[:3]
    step = _stage(lanes, chunk)
    assert set(step.chunk) == set(chunk)
    _run(step, dtype, fresh, seed=sum(chunk))
    assert step.lines[K.LANES] == K.GENERIC_LINES


@pytest.mark.parametrize("pattern", range(8))
def test_line_map_is_a_bijection_onto_lines(pattern: int) -> None:
    where = K.line_map(pattern)
    assert sorted(where.values()) == [(x, p) for x in range(8) for p in range(8)]
    lane_bits = [t for t in range(3) if (pattern >> t) & 1]
    for (_, lane), (_, p) in where.items():
        # the position in the line holds the lane bits on the lane qubits among 0-2
        assert [(p >> t) & 1 for t in lane_bits] == [(lane >> i) & 1
                                                     for i in range(len(lane_bits))]


@pytest.mark.parametrize("precision", ["complex128", "complex64"])
def test_planned_stages_keep_qubits_0_to_2_in_the_buffer(precision: str) -> None:
    """Diagonal gates on qubits 0-2 make them the last choice for lanes; the planner still
    puts them in the buffer (padding or lanes), never in the chunk bits, and the state
    matches Qiskit's."""
    from conftest import HEADER, make_backend, reference_state, run

    from hal_workflow.circuits import Circuit

    rng = np.random.default_rng(12)
    n = 12
    lines = [HEADER, f"qubit[{n}] q;"]
    for _ in range(60):
        a, b = (int(q) for q in rng.choice(range(3, n), 2, replace=False))
        low = int(rng.integers(3))
        lines += [f"ry({rng.uniform(0, 3):.3f}) q[{a}];", f"cx q[{a}], q[{b}];",
                  f"crz({rng.uniform(0, 3):.3f}) q[{low}], q[{b}];",
                  f"cp({rng.uniform(0, 3):.3f}) q[{low}], q[{a}];"]
    text = "\n".join(lines) + "\n"
    options = {"precision": precision, "blocking_threshold": 4, "block_qubits": 5,
               "method": "statevector"}
    exe = engine.Executable(Circuit.from_qasm(text).lowered, engine.EngineOptions(
        precision=precision, blocking_threshold=4, block_qubits=5))
    stages = [s for s in exe.unitary.get().steps if isinstance(s, engine._StageStep)]
    assert len(stages) > 3
    assert all(s.lines[K.LANES] != K.GENERIC_LINES for s in stages)
    backend = make_backend(**options)
    ours = run(backend.extension("statevector").statevector(text))
    np.testing.assert_allclose(ours, reference_state(text),
                               atol=TOLERANCE[np.dtype(engine.DTYPES[precision]).type])
