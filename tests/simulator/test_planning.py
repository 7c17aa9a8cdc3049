"""The fusion and cache-blocking planners: what they may and may not do with a gate list."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_backend, random_program, reference_state, run

from benchmarks.circuits import heisenberg, quantum_volume, random_clifford
from hal_workflow.circuits import Circuit, hardware_efficient_ansatz, qft, random_layered
from hal_workflow.simulator.engine import EngineOptions, Executable
from hal_workflow.simulator.fusion import (
    LOOKAHEAD,
    MAX_DIAG,
    Block,
    BlockMatrix,
    Stage,
    _partition,
    fusable,
    fuse,
    merge_parity_phases,
    partition,
)
from hal_workflow.simulator.gates import ResolvedGate, resolve


def _gates(circuit: Circuit) -> list[ResolvedGate]:
    return [resolve(op) for op in circuit.lowered.operations if hasattr(op, "name")]


def _commute(a: ResolvedGate, b: ResolvedGate) -> bool:
    return not set(a.qubits) & set(b.qubits) or (a.diagonal and b.diagonal)


def _check_reordering(gates: list[ResolvedGate], order: list[int],
                      planned: list[int] | None = None) -> None:
    """``order`` holds each ``planned`` gate once, and moves a gate before an earlier one only
    when they commute."""
    position = {g: p for p, g in enumerate(order)}
    planned = list(range(len(gates))) if planned is None else planned
    assert sorted(order) == sorted(planned)
    for a, i in enumerate(planned):
        for j in planned[a + 1:]:
            if position[j] < position[i]:
                assert _commute(gates[i], gates[j]), (gates[i], gates[j])


_CIRCUITS = [random_layered(20, 6, seed=2), qft(18), Circuit.from_qasm(quantum_volume(16))]


@pytest.mark.parametrize("circuit", _CIRCUITS, ids=["random", "qft", "qv"])
def test_partition_respects_dependencies_and_local_width(circuit: Circuit) -> None:
    gates = _gates(circuit)
    k = 10
    steps = partition(gates, list(range(len(gates))), circuit.num_qubits, k, max_fused=4)
    order: list[int] = []
    for step in steps:
        assert isinstance(step, Stage)
        assert len(step.local) <= k
        for index in step.gates:
            if not gates[index].diagonal:  # diagonals may reach beyond the local qubits
                assert set(gates[index].qubits) <= set(step.local)
        order += step.gates
    _check_reordering(gates, order)


@pytest.mark.parametrize("windows", LOOKAHEAD[1:], ids=str)
@pytest.mark.parametrize("circuit", _CIRCUITS, ids=["random", "qft", "qv"])
def test_lookahead_scans_respect_dependencies(circuit: Circuit, windows: tuple[int, ...]) -> None:
    """Each lookahead strategy alone (a local set fixed in advance) keeps every gate, moves
    gates only past gates they commute with, and keeps dense gates on the local qubits."""
    gates = _gates(circuit)
    steps = _partition(gates, list(range(len(gates))), circuit.num_qubits, 9, 4, None, windows)
    order: list[int] = []
    for step in steps:
        assert isinstance(step, Stage) and len(step.local) <= 9
        for index in step.gates:
            if not gates[index].diagonal:
                assert set(gates[index].qubits) <= set(step.local)
        order += step.gates
    _check_reordering(gates, order)


@pytest.mark.parametrize(("text", "k", "fewer"), [
    (quantum_volume(24), 13, True), (random_clifford(24), 13, True),
    (heisenberg(22), 14, False), (random_layered(20, 8, seed=3).qasm, 10, False)],
    ids=["qv", "clifford", "heisenberg", "random"])
def test_lookahead_never_adds_stages(text: str, k: int, fewer: bool) -> None:
    """The chosen plan has no more stages than the greedy scan, and fewer on the quantum
    volume and Clifford circuits of the benchmark (their planner input: parity gates
    merged). On the Trotter circuit the greedy scan finds the 3 stages itself (it took 6
    before one-qubit gates stopped claiming local places, see ``_scan``)."""
    circuit = Circuit.from_qasm(text)
    gates = merge_parity_phases(_gates(circuit))
    order = [i for i, g in enumerate(gates) if g.targets or g.controls]
    greedy = _partition(gates, order, circuit.num_qubits, k, 4, None, ())
    chosen = partition(gates, order, circuit.num_qubits, k, 4)
    assert len(chosen) < len(greedy) if fewer else len(chosen) <= len(greedy), (
        len(chosen), len(greedy))


def test_one_qubit_runs_wait_for_the_block_they_lead() -> None:
    """Quantum volume cut into stages of 7 local qubits: a ``U`` that leads a pair whose
    partner is not local moves to a later stage, where it joins its pair's block, instead of
    running alone (25 one-qubit blocks here before). Only one-qubit blocks with no later gate
    on their qubit may remain, and the plan keeps its stage count (17; moving the gates only
    after each stage's scan took 20)."""
    circuit = Circuit.from_qasm(quantum_volume(14))
    gates = _gates(circuit)
    steps = partition(gates, list(range(len(gates))), 14, 7, max_fused=4)
    later: list[set[int]] = [set() for _ in steps]
    for s in range(len(steps) - 2, -1, -1):
        step = steps[s + 1]
        assert isinstance(step, Stage)
        later[s] = later[s + 1] | {q for i in step.gates for q in gates[i].qubits}
    alone = 0
    for step, after in zip(steps, later, strict=True):
        assert isinstance(step, Stage)
        for block in fuse(gates, step.gates, 4, local=frozenset(step.local)):
            if block.kind == "dense" and len(block.qubits) == 1:
                alone += 1
                assert block.qubits[0] not in after, (block, step)
    assert alone == 0
    assert len(steps) <= 17, len(steps)


@pytest.mark.parametrize("precision", ["complex128", "complex64"])
def test_quantum_volume_in_small_stages_matches_qiskit(precision: str) -> None:
    """Quantum volume on 11 qubits in stages of 5 local qubits (many moved one-qubit runs)."""
    text = quantum_volume(11).replace("c = measure q;\n", "")
    backend = make_backend(precision=precision, blocking_threshold=4, block_qubits=5,
                           method="statevector")
    ours = run(backend.extension("statevector").statevector(text))  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, reference_state(text),
                               atol=1e-10 if precision == "complex128" else 3e-5)


def test_gates_too_wide_for_a_block_run_alone() -> None:
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[12] q;\nh q[0];\n'
            "ctrl(7) @ ry(0.2) q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7];\nh q[9];\n")
    gates = _gates(Circuit.from_qasm(text))
    assert not fusable(gates[1], 4)
    steps = partition(gates, [0, 1, 2], 12, 6, max_fused=4)
    # h q[9] does not touch the wide gate's qubits, so it joins the first stage
    assert steps == [Stage((0, 9), [0, 2]), 1]


def test_waiting_one_qubit_gate_is_not_lost_beside_a_barrier() -> None:
    """A one-qubit gate waits for the gate it leads; when a gate too wide for a block runs
    first (disjoint qubits, nothing taken), the waiting gate follows in the next step (it
    once took the step, and the wide gate was dropped). The wide gate acts on |0...0>."""
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[12] q;\nh q[9];\n'
            "negctrl(7) @ ry(0.2) q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7];\n")
    gates = _gates(Circuit.from_qasm(text))
    steps = partition(gates, [0, 1], 12, 6, max_fused=4)
    assert steps == [1, Stage((9,), [0])]
    backend = make_backend(blocking_threshold=4, block_qubits=5, method="statevector")
    ours = run(backend.extension("statevector").statevector(text))  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, reference_state(text), atol=1e-10)


def test_fusion_merges_only_blocks_last_on_their_qubits() -> None:
    rng = np.random.default_rng(5)
    text = random_program(rng, 6, 60, modifiers=False, custom=False)
    gates = _gates(Circuit.from_qasm(text))
    order = [i for i, g in enumerate(gates) if fusable(g, 4) and (g.targets or g.controls)]
    blocks = fuse(gates, order, max_fused=4)
    _check_reordering(gates, [m for b in blocks for m in b.members], order)
    for block in blocks:
        assert len(block.qubits) <= (MAX_DIAG if block.kind == "diag" else 5)
        if block.kind == "dense":
            assert len(block.qubits) <= 4
        assert set().union(*(gates[m].qubits for m in block.members)) == set(block.qubits)


def test_unfused_plan_has_one_block_per_gate() -> None:
    gates = _gates(random_layered(5, 3, seed=1, measure=False))
    blocks = fuse(gates, list(range(len(gates))), max_fused=4, enabled=False)
    assert [b.members for b in blocks] == [[i] for i in range(len(gates))]


def test_block_matrix_is_the_product_of_its_gates() -> None:
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\n'
            "h q[2];\ncx q[2], q[0];\nrz(0.3) q[0];\nctrl @ sx q[1], q[2];\n")
    gates = _gates(Circuit.from_qasm(text))
    from qiskit import qasm3
    from qiskit.quantum_info import Operator

    expected = Operator(qasm3.loads(text)).data
    ours = BlockMatrix(Block("dense", (0, 1, 2), [0, 1, 2, 3]), gates).evaluate().reshape(8, 8)
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_sweep_reevaluates_only_parametric_matrices() -> None:
    """The plan is built once; a batch of bindings only recomputes parameter-dependent
    pool entries, and equals one-by-one evaluation."""
    circuit = hardware_efficient_ansatz(4, 2)
    exe = Executable(circuit.lowered, EngineOptions())
    plan = exe.unitary.get()
    assert exe.unitary.get() is plan
    rng = np.random.default_rng(0)
    bindings = [dict(zip(circuit.parameters, rng.uniform(0, 6, len(circuit.parameters)),
                         strict=True)) for _ in range(5)]
    pools = plan.pools(exe.values(bindings), 5, exe.dtype)
    for b, binding in enumerate(bindings):
        single = plan.pools(exe.values([binding]), 1, exe.dtype)[0]
        np.testing.assert_allclose(pools[b], single, atol=1e-14)
    dynamic = {offset for offset, _ in plan.pool._dynamic}
    assert dynamic and len(dynamic) < plan.pool.count


def test_monomial_blocks_for_permutation_chains() -> None:
    """A cx chain on a blocked state becomes copy-and-phase blocks, not dense matrices."""
    body = "\n".join(f"cx q[{i}], q[{i + 1}];" for i in range(15))
    text = f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[16] q;\nh q[0];\n{body}\n'
    exe = Executable(Circuit.from_qasm(text).lowered, EngineOptions())
    kinds = [int(row[0]) for step in exe.unitary.get().steps for row in step.descs]
    from hal_workflow.simulator.kernels import DENSE, PERM

    assert kinds.count(PERM) >= 3 and kinds.count(DENSE) <= 2
