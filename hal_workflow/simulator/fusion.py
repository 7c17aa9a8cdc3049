"""Gate fusion and cache blocking: how a gate list becomes few, cheap kernel calls.

Two planners, both pure Python and run once per circuit (the result is cached and reused for
every shot batch and parameter binding):

* :func:`partition` cuts the gate list of a large state into *stages*. A stage is a set of
  at most ``k`` *local* qubits plus the gates that can run on them now; the block kernels
  then apply a whole stage with one read and one write of the state, chunk by chunk in L2
  cache. Gates may move earlier past gates they commute with (disjoint qubits, or both
  diagonal). Diagonal gates need no local qubits: a non-local qubit is constant inside a
  chunk, so its bit just selects part of the phase table.
* :func:`fuse` merges consecutive gates into dense blocks of up to ``max_fused`` qubits and
  diagonal blocks (phase tables) of up to :data:`MAX_DIAG` qubits. It is greedy: each gate
  joins the blocks that are still last on its qubits when a measured cost model says the
  merged block is no dearer than the parts (a 2-qubit dense kernel costs about 2.7 cycles per
  amplitude, a 4-qubit one about 12, a phase table about 0.8).

Before either, :func:`merge_parity_phases` turns ``cx a, b; rz b; cx a, b`` (OpenQASM's
``rzz``, the ZZ terms of QAOA and Trotter circuits) into one diagonal gate, and after
:func:`fuse` in a stage :func:`gather_diagonals` moves diagonal blocks together, so that a
diagonal layer of any size costs one phase pass over each chunk.

Every block keeps the *recipe* of its matrix: constant runs of gates are multiplied out at
plan time and parameter-dependent gates are re-evaluated per binding, so a parameter sweep
reuses the plan's structure and recomputes only the matrices that change.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hal_workflow.circuits.ir import Expr
from hal_workflow.simulator.gates import PARITY_GATES, ResolvedGate

MAX_DENSE = 5
"""Largest dense block (the kernels' limit)."""
MAX_DIAG = 10
"""Largest diagonal block: its phase table (16 KiB) stays in cache beside a block buffer."""
MAX_PERM = 5
"""Largest monomial (permutation-with-phases) block."""

# Cost per amplitude, measured on the block kernels (cycles/amplitude on one AVX-512 core,
# buffer in L2): 1 and 2 qubits are near the FMA peak, 3 qubits has its own kernel. The
# default table; the cache-blocked planner uses the table of its precision (BLOCK_COSTS).
DENSE_COST = {0: 0.0, 1: 0.75, 2: 1.45, 3: 5.25, 4: 9.45, 5: 18.6}
DIAG_COST = 0.6
PERM_COST = 1.5
DIAG_LANE_COST = 1.8
"""Extra cost of a diagonal that depends on a lane qubit (per-lane phases)."""
GATHER_COST = 3.7
"""Copying a chunk into its buffer and back (one pass over the state)."""


@dataclass(frozen=True)
class CostModel:
    """Cycles per amplitude of each block kind, by which :func:`fuse` decides merges and the
    engine sizes its kernel calls: ``dense[width]``, a phase table (``diag``), a monomial
    block (``perm``), the extra of a lane-dependent table (``diag_lane``), the gather and
    scatter of a chunk (``gather``)."""

    dense: Mapping[int, float]
    diag: float
    perm: float
    diag_lane: float
    gather: float

    def block(self, kind: str, width: int) -> float:
        if kind == "diag":
            return self.diag
        if kind == "perm":
            return self.perm
        return self.dense[width]


DEFAULT_COSTS = CostModel(DENSE_COST, DIAG_COST, PERM_COST, DIAG_LANE_COST, GATHER_COST)
BLOCK_COSTS = {
    # Medians of `benchmarks/sim_kernels.py` (2 idle runs, 2-core Sapphire Rapids-class Xeon
    # at 2.6 GHz) at each precision's default block size: complex64 at k = 14, complex128 at
    # k = 13; dense 1-3 qubits are the explicit-vector kernels (``_dense_group_codegen``).
    # "perm" lies between a plain-copy cx (0.65 / 0.9) and a phased monomial block (1.15 /
    # 1.6): most monomial blocks of real circuits are cx/x/swap/ccx runs.
    "complex64": CostModel({0: 0.0, 1: 0.42, 2: 0.58, 3: 1.78, 4: 7.3, 5: 15.8},
                           diag=0.4, perm=1.0, diag_lane=1.8, gather=2.23),
    "complex128": CostModel({0: 0.0, 1: 0.85, 2: 1.44, 3: 3.35, 4: 12.4, 5: 23.0},
                            diag=0.48, perm=1.3, diag_lane=1.8, gather=4.3),
}
"""Per-precision cost tables of the cache-blocked block kernels (see :class:`CostModel`)."""


@dataclass
class Block:
    """A fused gate built from ``members`` (indices into the gate list, in application order).

    ``kind`` is "dense" (a matrix over ``qubits``, ascending, little-endian), "perm" (a
    monomial matrix: one phase per row, applied as a copy) or "diag" (a phase table).
    """

    kind: str
    qubits: tuple[int, ...]
    members: list[int] = field(default_factory=list)
    solo: bool = False  # never merged with other gates

    @property
    def cost(self) -> float:
        return block_cost(self.kind, len(self.qubits))


def block_cost(kind: str, width: int, costs: CostModel = DEFAULT_COSTS) -> float:
    return costs.block(kind, width)


def gate_kind(gate: ResolvedGate) -> str:
    return "diag" if gate.diagonal else "perm" if gate.monomial else "dense"


_LIMITS = {"diag": MAX_DIAG, "perm": MAX_PERM}


def fusable(gate: ResolvedGate, max_fused: int) -> bool:
    """Whether ``gate`` may join a block (else it runs alone as a controlled operation)."""
    return len(gate.qubits) <= _LIMITS.get(gate_kind(gate), max_fused)


def fuse(
    gates: Sequence[ResolvedGate],
    order: Sequence[int],
    max_fused: int,
    enabled: bool = True,
    fuse_parametric: bool = True,
    local: frozenset[int] | None = None,
    costs: CostModel = DEFAULT_COSTS,
) -> list[Block]:
    """Fuse the gates ``order`` (indices into ``gates``, all :func:`fusable`) into blocks.

    With ``enabled`` False every gate becomes its own block (the reference path in tests).
    With ``fuse_parametric`` False a parameter-dependent gate stays alone, so a sweep over a
    small circuit evaluates one small matrix per gate and binding instead of re-multiplying
    fused blocks (on small states the kernels cost less than that arithmetic). Inside a
    stage, ``local`` are its local qubits: only a diagonal block may reach beyond them.
    ``costs``: the cost table merges are decided by (the kernels' at the run's precision).
    """
    # Live blocks by id, in the order they run: a merge moves the merged block to the end
    # (it runs after every block created before it). Merging grows the largest member list
    # in place, so memory stays linear in the gate count however many merges happen.
    live: dict[int, Block] = {}
    last: dict[int, Block] = {}
    for index in order:
        gate = gates[index]
        qubits = frozenset(gate.qubits)
        solo = not fuse_parametric and gate.parametric
        kind = gate_kind(gate)
        best: tuple[float, int, tuple[Block, ...], frozenset[int], str] | None = None
        if enabled and not solo:
            alone_cost = costs.block(kind, len(qubits))
            candidates = {id(last[q]): last[q] for q in qubits if q in last}
            free = [b for b in candidates.values()
                    if not b.solo and all(last.get(q) is b for q in b.qubits)]
            for size in range(len(free), 0, -1):
                for subset in itertools.combinations(free, size):
                    union = qubits.union(*(b.qubits for b in subset))
                    kinds = {kind, *(b.kind for b in subset)}
                    merged_kind: str = next(k for k in ("dense", "perm", "diag") if k in kinds)
                    if len(union) > _LIMITS.get(merged_kind, max_fused):
                        continue
                    if local is not None and merged_kind != "diag" and not union <= local:
                        continue
                    merged_cost = costs.block(merged_kind, len(union))
                    gain = (sum(costs.block(b.kind, len(b.qubits)) for b in subset)
                            + alone_cost - merged_cost)
                    if gain >= 0 and (best is None or (gain, size) > (best[0], best[1])):
                        best = (gain, size, subset, union, merged_kind)
        if best is None:
            block = Block(kind, tuple(sorted(qubits)), [index], solo=solo)
        else:
            _, _, subset, union, merged_kind = best
            # the merged blocks have disjoint qubits, so any order of their members is valid
            block = max(subset, key=lambda b: len(b.members))
            for other in subset:
                if other is not block:
                    block.members.extend(other.members)
                    other.members.clear()
                    del live[id(other)]
            block.members.append(index)
            block.kind, block.qubits = merged_kind, tuple(sorted(union))
            del live[id(block)]
        live[id(block)] = block
        for q in block.qubits:
            last[q] = block
    return list(live.values())


def gather_diagonals(blocks: Sequence[Block], reach: int = 64) -> list[Block]:
    """Reorder ``blocks`` so that diagonal blocks stand together in runs, each run applied
    as one phase pass (see ``_block_phase_pass``).

    A diagonal block moves back to the nearest earlier diagonal block when every block it
    passes acts on other qubits (diagonals commute with each other, and gates on disjoint
    qubits commute); it passes at most ``reach`` blocks, so the reordering stays linear.
    """
    out: list[Block] = []
    for block in blocks:
        if block.kind == "diag":
            qubits = set(block.qubits)
            j = len(out)
            while (j > 0 and len(out) - j < reach and out[j - 1].kind != "diag"
                   and not qubits.intersection(out[j - 1].qubits)):
                j -= 1
            if 0 < j < len(out) and out[j - 1].kind == "diag":
                out.insert(j, block)
                continue
        out.append(block)
    return out


@dataclass
class Stage:
    """Gates (indices) that run in one pass with ``local`` qubits in cache."""

    local: tuple[int, ...]
    gates: list[int]


LOOKAHEAD = ((), (4,), (8,), (2, 4, 8))
"""The stage-scan strategies :func:`partition` tries: windows of :func:`_busiest` (in units
of ``k`` non-diagonal gates) whose fixed local sets compete with the greedy scan."""


def partition(
    gates: Sequence[ResolvedGate], order: Sequence[int], num_qubits: int, k: int, max_fused: int,
    check: Callable[[], None] | None = None,
) -> list[Stage | int]:
    """Cut ``order`` into stages of at most ``k`` local qubits: the plan of the
    :data:`LOOKAHEAD` strategy with the fewest steps, each tried with one-qubit gates held
    for the gate they lead and without (``hold``, see :func:`_scan`; ties: the earlier
    strategy, holding first; the first is the plain greedy scan, so the result never has
    more steps than it). Every stage costs a read and a write of the state, so fewer stages
    is less memory traffic; picking per stage the locally best scan measured worse overall on
    quantum-volume circuits. Holding saves the one-qubit passes (quantum volume 24: 337 ->
    274 blocks) but can cost a stage (random Clifford 24: 9 instead of 8), hence both."""
    best: list[Stage | int] | None = None
    for hold in (True, False):
        for windows in LOOKAHEAD:
            steps = _partition(gates, order, num_qubits, k, max_fused, check, windows, hold)
            if best is None or len(steps) < len(best):
                best = steps
    assert best is not None
    return best


def _partition(
    gates: Sequence[ResolvedGate], order: Sequence[int], num_qubits: int, k: int, max_fused: int,
    check: Callable[[], None] | None, windows: Sequence[int], hold: bool = True,
) -> list[Stage | int]:
    """Cut ``order`` into stages of at most ``k`` local qubits.

    Returns stages and, between them, indices of gates that must run alone on the whole state
    (not :func:`fusable`). A gate is taken into the current stage when it commutes with every
    gate left behind on its qubits and, if not diagonal, its qubits fit the local set. The
    scan for a stage stops once every qubit is blocked by a gate left behind. ``check`` is
    called once per stage (it may raise to abandon planning).

    Each stage is scanned greedily (local qubits added in gate order) and, for each of
    ``windows``, with the local set fixed in advance to the ``k`` qubits that the next
    ``window * k`` non-diagonal gates use most (:func:`_busiest`); the scan that takes the
    most non-diagonal gates makes the stage (ties: the earlier). With ``hold``, one-qubit
    gates wait for the gate they lead (:func:`_scan`) and those a stage would run alone move
    on (:func:`_defer_lonely`). All deterministic, so a circuit always gets the same plan.
    """
    qubit_sets = {i: frozenset(gates[i].qubits) for i in order}
    kinds = {i: ("diag" if gates[i].diagonal and fusable(gates[i], max_fused)
                 else "dense" if fusable(gates[i], max_fused) and len(qubit_sets[i]) <= k
                 else "barrier") for i in order}
    everything = frozenset(range(num_qubits))
    steps: list[Stage | int] = []
    remaining = list(order)
    while remaining:
        if check is not None:
            check()
        scan = _scan(remaining, qubit_sets, kinds, everything, k, None, hold)
        for window in windows:
            seed = _busiest(remaining, qubit_sets, kinds, k, window)
            if scan[0] and seed is not None:
                other = _scan(remaining, qubit_sets, kinds, everything, k, seed, hold)
                if _dense_count(other[0], kinds) > _dense_count(scan[0], kinds):
                    scan = other
        taken, local, left, barrier = scan
        if hold:
            taken, left = _defer_lonely(taken, local, left, qubit_sets, kinds)
        if taken:  # a barrier is only chosen while nothing is taken, so none is pending here
            steps.append(Stage(tuple(sorted(local)), taken))
        else:
            assert barrier is not None
            steps.append(barrier)
        remaining = left
    return steps


def _defer_lonely(taken: list[int], local: set[int], left: list[int],
                  qubit_sets: Mapping[int, frozenset[int]], kinds: Mapping[int, str],
                  ) -> tuple[list[int], list[int]]:
    """Move to the next stage the one-qubit gates a stage would take on a qubit after its
    last wider gate there, when later gates wait on that qubit: here they may have no block
    to join (the wider gate's block is no longer the last on its other qubit) and cost a
    pass of their own; later they join the block of the gate they precede. A
    quantum-volume stage takes 2-5 such ``U`` gates (the lead of a pair whose partner is not
    local). Only runs with a non-diagonal gate move, only towards a gate that can join a
    block (not a barrier), and never every gate of the stage; a qubit left with no gate
    leaves ``local``. Each run goes into ``left`` just before the first gate on its qubit, so
    the next stage's scan meets it where it meets that gate. Nothing in ``left`` on its qubit
    came before it except diagonal gates, which commute with the diagonal ones of the run (a
    non-diagonal gate is taken only when nothing on its qubit was left behind)."""
    if not left:
        return taken, left
    trailing: dict[int, list[int]] = {}  # qubit -> one-qubit gates since its last wider gate
    for index in taken:
        qubits = qubit_sets[index]
        if len(qubits) == 1:
            trailing.setdefault(next(iter(qubits)), []).append(index)
        else:
            for q in qubits:
                trailing[q] = []
    follower: dict[int, int] = {}  # qubit -> position in left of the first gate on it
    for position, index in enumerate(left):
        for q in qubit_sets[index]:
            follower.setdefault(q, position)
    runs = {q: run for q, run in trailing.items() if q in follower
            and kinds[left[follower[q]]] != "barrier" and any(kinds[i] == "dense" for i in run)}
    moved = {i for run in runs.values() for i in run}
    if not moved or len(moved) == len(taken):
        return taken, left
    kept = [i for i in taken if i not in moved]
    local.intersection_update(set().union(*(qubit_sets[i] for i in kept)))
    before: dict[int, list[int]] = {}
    for q, run in runs.items():
        before.setdefault(follower[q], []).extend(run)
    out: list[int] = []
    for position, index in enumerate(left):
        out.extend(sorted(before.get(position, ())))
        out.append(index)
    return kept, out


def _dense_count(taken: Sequence[int], kinds: Mapping[int, str]) -> int:
    return sum(1 for i in taken if kinds[i] == "dense")


def _busiest(remaining: Sequence[int], qubit_sets: Mapping[int, frozenset[int]],
             kinds: Mapping[int, str], k: int, window: int) -> frozenset[int] | None:
    """The ``k`` qubits most used by the first ``4k`` non-diagonal gates of ``remaining``
    (ties: the qubit used first), or None when those gates use at most ``k`` qubits (then
    the greedy scan finds the same set)."""
    uses: dict[int, int] = {}
    first: dict[int, int] = {}
    seen = 0
    for position, index in enumerate(remaining):
        if kinds[index] != "dense":
            continue
        for q in qubit_sets[index]:
            uses[q] = uses.get(q, 0) + 1
            first.setdefault(q, position)
        seen += 1
        if seen >= window * k:
            break
    if len(uses) <= k:
        return None
    return frozenset(sorted(uses, key=lambda q: (-uses[q], first[q]))[:k])


def _scan(remaining: Sequence[int], qubit_sets: Mapping[int, frozenset[int]],
          kinds: Mapping[int, str], everything: frozenset[int], k: int,
          fixed: frozenset[int] | None, hold: bool = True,
          ) -> tuple[list[int], set[int], list[int], int | None]:
    """One stage's scan of ``remaining``: (taken gates, local qubits, gates left, barrier).
    With ``fixed`` the local set is those qubits, else it grows with the gates taken.

    Growing and with ``hold``, a non-diagonal one-qubit gate on a qubit not yet local waits
    (``pending``) for the next gate on its qubit instead of claiming a local place: taken
    before that gate when it is taken (its block then holds it), left before it when it is
    left. A one-qubit gate that claimed a place for itself would run alone and hold a place
    the stage could use."""
    local: set[int] = set()
    blocked_dense: set[int] = set()
    blocked_diag: set[int] = set()
    taken: list[int] = []
    left: list[int] = []
    pending: dict[int, list[int]] = {}
    barrier: int | None = None

    def settle(qubits: frozenset[int], take: bool) -> None:
        for q in sorted(qubits & pending.keys()):
            (taken if take else left).extend(pending.pop(q))

    def claim(qubits: frozenset[int]) -> None:
        """Before a gate that no block of theirs will hold: take the waiting gates of each
        qubit that still fits, leave the others (their qubits blocked)."""
        for q in sorted(qubits & pending.keys()):
            fits = len(local) < k
            if fits:
                local.add(q)
            else:
                blocked_dense.add(q)
            settle(frozenset((q,)), fits)

    stop = len(remaining)
    for position, index in enumerate(remaining):
        if barrier is not None or blocked_dense >= everything:
            stop = position
            break
        qubits = qubit_sets[index]
        kind = kinds[index]
        if kind == "barrier":
            claim(qubits)
            if not (qubits & blocked_dense or qubits & blocked_diag) and not taken:
                barrier = index  # nothing before it is pending: run it now
                continue
            left.append(index)
            blocked_dense |= qubits
        elif kind == "diag":
            claim(qubits)
            if qubits & blocked_dense:
                left.append(index)
                blocked_diag |= qubits
            else:
                taken.append(index)
        elif (not (qubits & blocked_dense or qubits & blocked_diag)
              and (qubits <= fixed if fixed is not None else len(local | qubits) <= k)):
            if hold and fixed is None and len(qubits) == 1 and not qubits <= local:
                pending.setdefault(next(iter(qubits)), []).append(index)
                continue
            settle(qubits, True)
            local |= qubits
            taken.append(index)
        else:
            settle(qubits, False)
            left.append(index)
            blocked_dense |= qubits
    rest = remaining[stop:]
    if pending and barrier is None:  # gates no later gate waits on: taken while there is room
        later = set().union(*(qubit_sets[i] for i in rest)) if rest else set()
        claim(frozenset(pending.keys() - later))
    # still waiting: left (a barrier chosen to run now has none on its qubits, and the step
    # that runs it takes no gate, so they wait for the next stage)
    settle(frozenset(pending), False)
    left.extend(rest)
    return taken, local, left, barrier


def merge_parity_phases(gates: Sequence[ResolvedGate]) -> list[ResolvedGate]:
    """Replace every ``cx a, b; g b; cx a, b`` (``g`` a plain ``rz``/``p``/``u1`` on ``b``,
    nothing else on ``a`` or ``b`` in between) by one diagonal parity gate on ``(a, b)``.

    OpenQASM's ``rzz`` is defined so, and QAOA and Trotter programs are mostly made of it:
    as a diagonal it joins the stage's phase pass instead of costing three monomial gates.
    One pass over the gates, holding the last gate on each qubit and, for each candidate
    middle gate, the gate before it on its qubit: planning stays linear in time and memory.
    """
    last: dict[int, int] = {}
    before_middle: dict[int, int | None] = {}
    out: list[ResolvedGate | None] = list(gates)

    def plain_cx(gate: ResolvedGate) -> bool:
        return gate.name in ("cx", "CX") and gate.ctrl_values == (1,) and not gate.steps

    for k, gate in enumerate(gates):
        if plain_cx(gate):
            (a,), (b,) = gate.controls, gate.targets
            i, j = last.get(a), last.get(b)
            if (i is not None and j is not None and before_middle.get(j, -1) == i
                    and plain_cx(gates[i]) and gates[i].controls == (a,)
                    and gates[i].targets == (b,) and out[i] is gates[i]):
                middle = gates[j]
                out[i] = ResolvedGate(PARITY_GATES[middle.name], (a, b), (), (), True,
                                      middle.params, (), middle.line)
                out[j] = out[k] = None
                del before_middle[j]
                last[a] = last[b] = i  # the parity gate, applied where the first cx was
                continue
        elif (gate.name in PARITY_GATES and len(gate.targets) == 1 and not gate.controls
              and not gate.steps):
            before_middle[k] = last.get(gate.targets[0])
        for q in gate.qubits:
            last[q] = k
    return [g for g in out if g is not None]


# -- matrices of blocks ---------------------------------------------------------------------


def _pdep(value: int, positions: Sequence[int]) -> int:
    out = 0
    for j, p in enumerate(positions):
        if (value >> j) & 1:
            out |= 1 << p
    return out


def _pext(value: int, positions: Sequence[int]) -> int:
    return sum(((value >> p) & 1) << j for j, p in enumerate(positions))


@dataclass
class _Embed:
    """Where a member gate's matrix entries land in its block's matrix (or table)."""

    gate: int
    rows: np.ndarray
    cols: np.ndarray
    src: np.ndarray


def _dense_embedding(gate_qubits: Sequence[int], block_qubits: Sequence[int], index: int) -> _Embed:
    pos = tuple(block_qubits.index(q) for q in gate_qubits)
    rows, cols, src = _dense_pattern(pos, len(block_qubits))
    return _Embed(index, rows, cols, src)


@functools.lru_cache(maxsize=4096)
def _dense_pattern(pos: tuple[int, ...], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays placing a gate on block positions ``pos`` into a ``width``-qubit block."""
    d, gd = 1 << width, 1 << len(pos)
    pmask = sum(1 << p for p in pos)
    rows, cols, src = [], [], []
    for r in range(d):
        gr = _pext(r, pos)
        rest = r & ~pmask
        for gc in range(gd):
            rows.append(r)
            cols.append(rest | _pdep(gc, pos))
            src.append(gr * gd + gc)
    return np.array(rows), np.array(cols), np.array(src)


def _diag_embedding(gate_qubits: Sequence[int], block_qubits: Sequence[int], index: int) -> _Embed:
    pos = [block_qubits.index(q) for q in gate_qubits]
    src = np.array([_pext(x, pos) for x in range(1 << len(block_qubits))])
    return _Embed(index, src, src, src)


def gate_diagonal(gate: ResolvedGate, values: Mapping[str, np.ndarray] | None,
                  batch: int) -> np.ndarray:
    """The phases of a diagonal gate over ``gate.qubits`` (controls first), ``(B, 2^q)``."""
    base = np.diagonal(gate.base_matrix(values, batch), axis1=-2, axis2=-1)
    nc = len(gate.controls)
    if nc == 0:
        return np.ascontiguousarray(base)
    out = np.ones((batch, base.shape[1] << nc), dtype=np.complex128)
    cval = sum(v << i for i, v in enumerate(gate.ctrl_values))
    out[:, cval + (np.arange(base.shape[1]) << nc)] = base
    return out


class BlockMatrix:
    """The matrix (dense) or phase table (diag) of a block, as a recipe.

    Runs of parameter-free members are multiplied out once; :meth:`evaluate` multiplies in
    the parameter-dependent ones for a batch of bindings.
    """

    def __init__(self, block: Block, gates: Sequence[ResolvedGate]) -> None:
        self.kind = block.kind
        self.dim = 1 << len(block.qubits)
        self.size = self.dim if self.kind == "diag" else self.dim * self.dim
        self._gates = gates
        self._members = list(block.members)
        self._steps: list[np.ndarray | _Embed] = []
        embed = _diag_embedding if self.kind == "diag" else _dense_embedding
        pending: np.ndarray | None = None
        for index in block.members:
            gate = gates[index]
            e = embed(gate.qubits, block.qubits, index)
            if gate.parametric:
                if pending is not None:
                    self._steps.append(pending)
                    pending = None
                self._steps.append(e)
            else:
                pending = self._apply(pending, e, None, 1)
        if pending is not None:
            self._steps.append(pending)
        self.parametric = any(isinstance(s, _Embed) for s in self._steps)

    def sources(self) -> np.ndarray:
        """For a "perm" block: the column of the non-zero entry of each row. Monomial gates
        keep their pattern for every parameter value, so any values reveal it."""
        free = {name for i in self._members for name in _free_names(self._gates[i])}
        probe = {name: np.array([0.377]) for name in free}
        matrix = self.evaluate(probe, 1).reshape(self.dim, self.dim)
        return np.argmax(np.abs(matrix), axis=1).astype(np.int64)

    def _identity(self, batch: int) -> np.ndarray:
        if self.kind == "diag":
            return np.ones((batch, self.dim), dtype=np.complex128)
        eye = np.eye(self.dim, dtype=np.complex128)
        return np.broadcast_to(eye, (batch, self.dim, self.dim)).copy()

    def _apply(self, acc: np.ndarray | None, e: _Embed,
               values: Mapping[str, np.ndarray] | None, batch: int) -> np.ndarray:
        """``embedded gate x acc`` (``acc`` None: the identity)."""
        gate = self._gates[e.gate]
        if self.kind == "diag":
            phases = gate_diagonal(gate, values, batch)[:, e.src]
            return phases if acc is None else acc * phases
        g = gate.dense(values, batch)
        full = np.zeros((batch, self.dim, self.dim), dtype=np.complex128)
        full[:, e.rows, e.cols] = g.reshape(batch, -1)[:, e.src]
        return full if acc is None else full @ acc

    def evaluate(self, values: Mapping[str, np.ndarray] | None = None,
                 batch: int = 1) -> np.ndarray:
        """The flattened matrix (row-major) or table for each binding: ``(B, size)``."""
        acc: np.ndarray | None = None
        for step in self._steps:
            if isinstance(step, _Embed):
                acc = self._apply(acc, step, values, batch)
            elif acc is None:
                acc = np.broadcast_to(step, (batch, *step.shape[1:]))
            elif self.kind == "diag":
                acc = acc * step
            else:
                acc = step @ acc
        if acc is None:
            acc = self._identity(batch)
        return np.ascontiguousarray(acc.reshape(batch, self.size))


def _free_names(gate: ResolvedGate) -> set[str]:
    names: set[str] = set()
    for p in (*gate.params, *(k for _, k in gate.steps)):
        if isinstance(p, Expr):
            names |= p.free
    return names


class GateMatrix:
    """The recipe of a gate that runs alone with its controls kept apart (base matrix, or
    base diagonal for a diagonal gate)."""

    def __init__(self, gate: ResolvedGate) -> None:
        self._gate = gate
        self.kind = "diag" if gate.diagonal else "dense"
        d = 1 << len(gate.targets)
        self.size = d if gate.diagonal else d * d
        self.parametric = gate.parametric

    def evaluate(self, values: Mapping[str, np.ndarray] | None = None,
                 batch: int = 1) -> np.ndarray:
        m = self._gate.base_matrix(values, batch)
        if self.kind == "diag":
            m = np.diagonal(m, axis1=-2, axis2=-1)
        return np.ascontiguousarray(m.reshape(batch, self.size))
