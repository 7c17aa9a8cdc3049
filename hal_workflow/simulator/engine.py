"""Compile a lowered circuit once, then run it for any shots, seed and parameter binding.

:class:`Executable` is what the backend caches per circuit. Compiling it

1. decides the *mode*: ``statevector`` (simulate once, sample every shot from the final
   probabilities) unless the circuit needs per-shot evolution: a measured qubit that is used
   again, a reset of a used qubit, or a classical ``if``;
2. turns unconditional top-level ``swap`` gates into relabelings of physical qubits (free);
3. builds :class:`UnitaryPlan` s: fused blocks (``fusion``), run directly on small states or
   in cache-blocked stages on large ones (``kernels`` docstring).

Per-shot mode runs *branches*: at a measurement the shots of a branch split binomially
between the outcomes and each outcome continues with its own collapsed state, so a circuit
with ``m`` mid-circuit measurements costs at most ``min(shots, 2^m)`` evolutions, not
``shots``. When memory is short a pending branch keeps only its outcome history and is
replayed from the start instead of holding a copy of the state.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hal_workflow.backends.local_jobs import JobCancelled
from hal_workflow.circuits.ir import (
    BarrierOp,
    GateOp,
    IfOp,
    LoweredCircuit,
    MeasureOp,
    Operation,
    ResetOp,
)
from hal_workflow.simulator import kernels as K
from hal_workflow.simulator import parallel
from hal_workflow.simulator.fusion import (
    BLOCK_COSTS,
    DEFAULT_COSTS,
    MAX_DENSE,
    Block,
    BlockMatrix,
    CostModel,
    GateMatrix,
    Stage,
    fusable,
    fuse,
    gather_diagonals,
    merge_parity_phases,
    partition,
)
from hal_workflow.simulator.gates import INTERNAL_GATES, ResolvedGate, resolve

DTYPES = {"complex128": np.complex128, "complex64": np.complex64}
SMALL_SAMPLE_QUBITS = 12
"""Up to this many qubits sampling works on the full probability vector in NumPy."""
_SAMPLE_BLOCK = 1 << 12
_CALL_SECONDS = 0.05
"""Target length of one kernel call on a large state: the cancel-check granularity."""
_CYCLES_PER_SECOND = 2.5e9
_PARALLEL_SCAN_AMPLITUDES = 1 << 22
"""A sampling scan that may read fewer amplitudes runs on one thread: a parallel region
costs more to start than such a scan (1000 shots of a 24-qubit state read at most 2^20:
0.2-2.5 ms on one thread, 15 ms on two threads of a busy machine)."""


@dataclass(frozen=True)
class EngineOptions:
    """Tuning knobs of the engine (all have sensible defaults).

    ``block_qubits`` local qubits per cache block (2^k x 8 amplitudes, 512 KiB at k = 12 in
    complex128); None: :attr:`block_bits` picks it from the L2 cache. States of
    ``blocking_threshold`` qubits or more run in blocked stages.
    """

    precision: str = "complex128"
    fusion: bool = True
    max_fused_qubits: int = 4
    block_qubits: int | None = None
    blocking_threshold: int = 16
    threads: int | None = None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DTYPES[self.precision])

    def block_bits(self, num_qubits: int) -> int:
        """Local qubits per cache block for a state of ``num_qubits``: ``block_qubits``, else
        the largest block whose buffer fills at most half the L2 cache (the other half holds
        tables, scratch and lines in flight), but no fewer than 12 and, above 12, only while
        the state keeps 16 chunks or more for the threads. Measured on a 2 MiB L2 at 22
        qubits: complex64 at k = 14 and complex128 at k = 13 (1 MiB buffers) run QV, QAOA,
        HEA and Ising circuits 5-13% faster than at k = 12."""
        if self.block_qubits is not None:
            return self.block_qubits
        row = K.WIDTH * self.dtype.itemsize // 2  # bytes per local index (8 amplitudes)
        fits = (l2_cache_bytes() // 2 // row).bit_length() - 1
        return min(max(12, min(fits, num_qubits - 3 - 4)), 2 * K.TABLE_BITS)


@functools.lru_cache(maxsize=1)
def l2_cache_bytes() -> int:
    """The L2 cache of one core (Linux sysfs), else 1 MiB."""
    import glob

    for path in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(f"{path}/level") as level, open(f"{path}/size") as size:
                if level.read().strip() != "2":
                    continue
                text = size.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        digits = text.rstrip("KMB")
        if digits.isdigit():
            return int(digits) * scale
    return 1 << 20


Values = Mapping[str, np.ndarray]
CancelCheck = Callable[[], bool]


def _never() -> bool:
    return False


class _Run:
    """Per-run settings threaded through the kernels: threads and the cancel check."""

    def __init__(self, threads: int, cancelled: CancelCheck = _never) -> None:
        self.threads = threads
        self.cancelled = cancelled

    @property
    def parallel(self) -> bool:
        return self.threads > 1

    def check(self) -> None:
        if self.cancelled():
            raise JobCancelled()


# ------------------------------------------------------------------------------------------
# unitary plans
# ------------------------------------------------------------------------------------------


class _Pool:
    """Matrices and phase tables of a plan, laid end to end; constant parts built once.

    A constant recipe is evaluated into the pool as it is added and then dropped, and the
    pool grows in place (``ndarray.resize``), so planning holds each matrix once.
    """

    def __init__(self) -> None:
        self._const = np.zeros(1024, dtype=np.complex128)
        self._dynamic: list[tuple[int, BlockMatrix | GateMatrix]] = []
        self.size = 0
        self.count = 0  # matrices and tables in the pool

    def add(self, recipe: BlockMatrix | GateMatrix) -> int:
        offset = self.size
        self.size += recipe.size
        self.count += 1
        if self.size > self._const.shape[0]:
            self._const.resize(max(self.size, self._const.shape[0] * 3 // 2), refcheck=False)
        if recipe.parametric:
            self._dynamic.append((offset, recipe))
        else:
            self._const[offset:self.size] = recipe.evaluate()[0]
        return offset

    def freeze(self) -> None:
        self._const.resize(max(self.size, 1), refcheck=False)  # zero-filled when it grows
        self._cast: dict[str, np.ndarray] = {}
        self.parametric = bool(self._dynamic)

    def build(self, values: Values | None, batch: int, dtype: np.dtype) -> np.ndarray:
        """``(B, size)`` pool for ``batch`` bindings (kernels only read it)."""
        if not self._dynamic and batch == 1:
            cast = self._cast.get(dtype.name)
            if cast is None:
                cast = self._cast[dtype.name] = _flush_residue(self._const.astype(dtype)[None])
            return cast
        pools = np.empty((batch, self._const.shape[0]), dtype=dtype)
        pools[:] = self._const
        for offset, recipe in self._dynamic:
            pools[:, offset:offset + recipe.size] = recipe.evaluate(values, batch)
        return _flush_residue(pools)


RESIDUE = {np.dtype(np.complex64): 2.0**-40}
"""Matrix and phase components below this are rounding residue of fusing (a 1e-17 where the
product is 0): in single precision they are set to 0. Multiplied into amplitudes that are
themselves tiny (a state near an eigenstate, as a Heisenberg chain from |0...0>), they make
float32 subnormals, which the CPU handles 10-100x slower: complex64 ran such a circuit 4x
slower than complex128. 2^-40 is far below float32's resolution (2^-24) of an entry <= 1."""


def _flush_residue(pools: np.ndarray) -> np.ndarray:
    bound = RESIDUE.get(pools.dtype)
    if bound is not None:
        parts = pools.view(np.float32)
        parts[np.abs(parts) < bound] = 0.0
    return pools


def _direct_desc(kind: int, qubits: Sequence[int], controls: Sequence[int] = (),
                 ctrl_values: Sequence[int] = ()) -> np.ndarray:
    row = np.zeros(K.D_WIDTH, dtype=np.int64)
    special = sorted(set(qubits) | set(controls))
    row[K.D_KIND] = kind
    row[K.D_NQ] = len(qubits)
    row[K.D_NSPECIAL] = len(special)
    row[K.D_CBITS] = sum(v << c for c, v in zip(controls, ctrl_values, strict=True))
    row[K.D_QUBITS:K.D_QUBITS + len(qubits)] = qubits
    row[K.D_SPECIAL:K.D_SPECIAL + len(special)] = special
    return row


class _DirectStep:
    """Operations applied straight to the state, in one kernel call per batch."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.offsets: list[int] = []
        self.cost = 0.0

    def freeze(self) -> None:
        self.descs = np.array(self.rows, dtype=np.int64).reshape(-1, K.D_WIDTH)
        self.offs = np.array(self.offsets, dtype=np.int64)

    def apply(self, states: np.ndarray, pools: np.ndarray, run: _Run) -> None:
        if states.shape[0] == 1 and run.parallel and states.shape[1] >= (1 << 14):
            for row, off in zip(self.descs, self.offs, strict=True):
                run.check()
                with parallel.parallel_lock:
                    K.run_direct_parallel(states[0], row, pools[0], int(off), run.threads)
        else:
            K.run_direct(states, self.descs, self.offs, pools)


class _StageStep:
    """One cache-blocked pass: ``local`` qubits in the buffer, ``lanes`` side by side."""

    def __init__(self, n: int, k: int, local: Sequence[int], lanes: Sequence[int],
                 gather_cost: float = DEFAULT_COSTS.gather) -> None:
        self.n, self.k = n, k
        self.local = tuple(local)
        self.lanes = tuple(lanes)
        self.chunk = tuple(q for q in range(n) if q not in set(local) | set(lanes))
        self.position = {q: i for i, q in enumerate(self.local)}
        self.rows: list[np.ndarray] = []
        # tables of DIAG and PERM blocks only (a row's B_TABLE points here; row 0 is unused),
        # so a plan of dense blocks holds no per-block tables
        self.diag_rows: list[tuple[np.ndarray, ...]] = [self._no_diag()]
        self.cost = gather_cost  # cycles per amplitude, sizes the kernel calls

    def add_dense(self, qubits: Sequence[int], offset: int,
                  sources: np.ndarray | None = None) -> None:
        """A dense matrix on local ``qubits``; with ``sources`` (the column of each row's one
        entry) a monomial one, applied as a copy and a phase."""
        row = np.zeros(K.B_WIDTH, dtype=np.int64)
        row[K.B_KIND] = K.DENSE if sources is None else K.PERM
        row[K.B_NT] = len(qubits)
        row[K.B_OFF] = offset
        row[K.B_TARGETS:K.B_TARGETS + len(qubits)] = [self.position[q] for q in qubits]
        self.rows.append(row)
        if sources is not None:
            tables = self._no_diag()
            tables[0][:len(sources)] = sources
            row[K.B_TABLE] = len(self.diag_rows)
            self.diag_rows.append(tables)

    def add_diag(self, qubits: Sequence[int], offset: int) -> None:
        row = np.zeros(K.B_WIDTH, dtype=np.int64)
        row[K.B_KIND] = K.DIAG
        row[K.B_OFF] = offset
        size = 1 << K.TABLE_BITS
        lo = np.zeros(size, dtype=np.int64)
        hi = np.zeros(size, dtype=np.int64)
        lane_idx = np.zeros(K.LANES, dtype=np.int64)
        cq = np.zeros(self.n, dtype=np.int64)
        cp = np.zeros(self.n, dtype=np.int64)
        nchunk = 0
        for p, q in enumerate(qubits):
            if q in self.position:
                b = self.position[q]
                table, bit = (lo, b) if b < K.TABLE_BITS else (hi, b - K.TABLE_BITS)
                table[(np.arange(size) >> bit) & 1 == 1] += 1 << p
            elif q in self.lanes:
                j = self.lanes.index(q)
                lane_idx[(np.arange(K.LANES) >> j) & 1 == 1] += 1 << p
                row[K.B_LANES] = 1
            else:
                cq[nchunk], cp[nchunk] = q, p
                nchunk += 1
        row[K.B_NCHUNK] = nchunk
        row[K.B_TABLE] = len(self.diag_rows)
        self.rows.append(row)
        self.diag_rows.append((lo, hi, lane_idx, cq, cp))

    def _no_diag(self) -> tuple[np.ndarray, ...]:
        size = 1 << K.TABLE_BITS
        return (np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(K.LANES, np.int64),
                np.zeros(self.n, np.int64), np.zeros(self.n, np.int64))  # chunk qubits < n

    def freeze(self) -> None:
        self.descs = np.array(self.rows, dtype=np.int64).reshape(-1, K.B_WIDTH)
        widths = [d.shape[0] for d in self._no_diag()]
        self.dlo, self.dhi, self.dlane, self.dcq, self.dcp = (
            np.array([row[i] for row in self.diag_rows], dtype=np.int64).reshape(-1, w)
            for i, w in enumerate(widths)
        )
        self.rows, self.diag_rows = [], []  # now held by the arrays above
        size = 1 << K.TABLE_BITS
        self.loc_lo = np.zeros(size, dtype=np.int64)
        self.loc_hi = np.zeros(size, dtype=np.int64)
        for b, q in enumerate(self.local):
            table, bit = (self.loc_lo, b) if b < K.TABLE_BITS else (self.loc_hi, b - K.TABLE_BITS)
            table[(np.arange(size) >> bit) & 1 == 1] += 1 << q
        self.lane_off = np.array(
            [sum(((lane >> j) & 1) << q for j, q in enumerate(self.lanes))
             for lane in range(K.LANES)],
            dtype=np.int64,
        )
        self.lines = self._lines()
        self.chunk_q = np.array(self.chunk, dtype=np.int64)
        self.num_chunks = 1 << len(self.chunk)
        self.local_only = not any(
            row[K.B_KIND] == K.DIAG and (row[K.B_LANES] or row[K.B_NCHUNK]) for row in self.descs)
        """Whether every operation acts on local qubits only: then, started fresh from a
        product state, every chunk is one template chunk times its own factor."""

    def _lines(self) -> np.ndarray:
        """The line pattern of the gather and scatter and the 8 line offsets of a group of 8
        buffer rows (:func:`kernels.line_map`), as ``[offsets..., pattern]``; pattern
        ``GENERIC_LINES`` when a chunk qubit is among physical qubits 0-2 (or the buffer has
        fewer than 8 rows): then each amplitude moves on its own."""
        out = np.zeros(K.LANES + 1, dtype=np.int64)
        out[K.LANES] = K.GENERIC_LINES
        low = range(3)
        if self.k < 3 or not set(low) <= set(self.local) | set(self.lanes):
            return out
        pattern = sum(1 << t for t in low if t in self.lanes)
        m = bin(pattern).count("1")
        if (list(self.lanes[:m]) != [t for t in low if t in self.lanes]
                or list(self.local[:3 - m]) != [t for t in low if t in self.local]):
            return out  # not in increasing order: line_map's layout does not hold

        def address(j: int, lane: int) -> int:
            return int(sum(((j >> b) & 1) << q for b, q in enumerate(self.local[:3]))
                       + self.lane_off[lane])

        where = K.line_map(pattern)
        for (j, lane), (x, p) in where.items():
            if p == 0:
                out[x] = address(j, lane)
        assert all(address(j, lane) == out[x] + p for (j, lane), (x, p) in where.items())
        out[K.LANES] = pattern
        return out

    def product_tables(self, vecs: np.ndarray) -> np.ndarray:
        """The product state given by per-qubit 2-vectors ``vecs`` ``(B, n, 2)``, factored as
        this stage lays the state out: an amplitude is ``lo[i & mask] * hi[i >> TABLE_BITS]
        * lane[l] * chunk[c]`` for local index ``i``, lane ``l`` and chunk ``c``. Returns
        ``(B, 2 * 2^TABLE_BITS + LANES + chunks)``: lo, hi (zero-padded), lane, chunk."""
        size = 1 << K.TABLE_BITS
        parts = [product_table(vecs, self.local[:K.TABLE_BITS]),
                 product_table(vecs, self.local[K.TABLE_BITS:]),
                 product_table(vecs, self.lanes), product_table(vecs, self.chunk)]
        out = np.zeros((vecs.shape[0], 2 * size + K.LANES + (1 << len(self.chunk))),
                       dtype=vecs.dtype)
        at = 0
        for part, width in zip(parts, (size, size, K.LANES, parts[3].shape[1]), strict=True):
            out[:, at:at + part.shape[1]] = part
            at += width
        return out

    @property
    def sample_blocks(self) -> int:
        """How many sample blocks the stage's layout has (``_group_norms`` in ``_jit``):
        chunk ``c``'s buffer rows in groups of ``2^TABLE_BITS`` (all rows, if fewer)."""
        return self.num_chunks << max(0, self.k - K.TABLE_BITS)

    def sample(self, state: np.ndarray, norms: np.ndarray, shots: int,
               rng: np.random.Generator, run: _Run) -> np.ndarray:
        """Basis indices of ``shots`` samples of ``state``, which this stage wrote last, with
        ``norms`` the squared norms of its sample blocks (from :meth:`apply`)."""
        starts, us, first = _sorted_uniforms(norms, shots, rng)
        args = (state, self.k, self.loc_lo, self.loc_hi, self.lane_off, self.chunk_q, starts,
                us, first)
        # the scan reads only the blocks that hold samples: threads pay off for many shots
        block = min(1 << self.k, 1 << K.TABLE_BITS) * K.LANES  # amplitudes per sample block
        if run.parallel and min(shots, self.sample_blocks) * block >= _PARALLEL_SCAN_AMPLITUDES:
            with parallel.parallel_lock:
                return K.scan_stage(*args, run.threads)  # type: ignore[no-any-return]
        return K.scan_stage_serial(*args)  # type: ignore[no-any-return]

    def apply(self, states: np.ndarray, pools: np.ndarray, run: _Run, fresh: bool = False,
              start: np.ndarray | None = None, norms: np.ndarray | None = None) -> None:
        """Run the stage; ``fresh``: ``states`` are the initial state not yet written (see
        kernels): |0...0>, or with ``start`` (:meth:`product_tables`) that product state.
        ``norms`` (one state only): filled with the squared norms of the sample blocks."""
        dtype = np.float32 if states.dtype == np.complex64 else np.float64
        threads = run.threads if run.parallel and self.num_chunks >= 2 * run.threads else 1
        width = K.WIDTH
        bufs = np.empty((threads, (1 << self.k) * width), dtype=dtype)
        # scratch of the dense kernels, and of the phase pass: per-lane phases (first 2L
        # floats) and per-row phases (2^(k+1) floats after 2^(k+1))
        tmps = np.empty((threads, max((1 << MAX_DENSE) * width, 4 << self.k)), dtype=dtype)
        accs = np.empty((threads, (1 << MAX_DENSE) * width), dtype=dtype)
        offss = np.empty((threads, 2 << MAX_DENSE), dtype=np.int64)  # offsets, moved rows
        seconds = self.cost * (1 << self.n) / (_CYCLES_PER_SECOND * threads)
        calls = max(1, min(self.num_chunks // (4 * threads), int(seconds / _CALL_SECONDS)))
        per_call = -(-self.num_chunks // calls)
        kernel = K.run_stage_parallel if threads > 1 else K.run_stage
        none = np.empty(0, dtype=states.dtype)
        no_template = np.empty(0, dtype=dtype)
        template = None
        if fresh and start is not None and self.local_only and len(self.descs):
            template = np.empty((states.shape[0], (1 << self.k) * width), dtype=dtype)
            for b in range(states.shape[0]):
                K.stage_template(start[b], self.k, self.descs, self.dlo, self.dhi, self.dlane,
                                 self.dcq, self.dcp, pools[b], template[b], tmps[0], accs[0],
                                 offss[0])
        no_norms = np.empty(0, dtype=np.float64)
        assert norms is None or (states.shape[0] == 1 and norms.shape[0] == self.sample_blocks)
        for b in range(states.shape[0]):
            for c0 in range(0, self.num_chunks, per_call):
                run.check()
                args = (states[b], c0, min(c0 + per_call, self.num_chunks), fresh,
                        none if start is None else start[b],
                        no_template if template is None else template[b],
                        no_norms if norms is None else norms,
                        self.k, self.loc_lo, self.loc_hi, self.lane_off, self.lines,
                        self.chunk_q, self.descs, self.dlo, self.dhi, self.dlane, self.dcq,
                        self.dcp, pools[b], bufs, tmps, accs, offss)
                if threads > 1:
                    with parallel.parallel_lock, K.dynamic():
                        kernel(*args)
                else:
                    kernel(*args)


class UnitaryPlan:
    """A gate sequence (physical qubits) compiled to kernel steps and a matrix pool."""

    def __init__(self, gates: Sequence[ResolvedGate], num_qubits: int, options: EngineOptions,
                 check: Callable[[], None] | None = None, initial_product: bool = False,
                 skipped_diagonals: int = 0, x_gates_as_flips: int = 0,
                 trailing_permutations: int = 0) -> None:
        self.num_qubits = num_qubits
        self._check = check
        self.gates = merge_parity_phases(gates) if options.fusion else list(gates)
        self.summary: Counter[str] = Counter(parity_gates=sum(
            1 for g in self.gates if g.name in INTERNAL_GATES),
            trailing_diagonals_skipped=skipped_diagonals, x_gates_as_flips=x_gates_as_flips,
            trailing_permutations=trailing_permutations)
        """What the plan is made of (``metadata["plan"]`` of a result): stages, direct
        operations, dense/monomial/diagonal blocks, phase passes (runs of diagonal blocks
        applied in one pass), parity gates (``cx; rz; cx`` planned as one diagonal), leading
        one-qubit gates folded into the initial product state, diagonal gates a sampling
        run skips and permutations it leaves to the read-out (:func:`trailing_gates`), ``x``
        gates it reads as flipped bits (:func:`x_frame`)."""
        self.phase_gates = [g for g in self.gates if not g.targets and not g.controls]
        self.pool = _Pool()
        self.steps: list[_DirectStep | _StageStep] = []
        order = [i for i, g in enumerate(self.gates)
                 if (g.targets or g.controls) and g.name != "id"]
        self.product = np.full(num_qubits, -1, dtype=np.int64)
        """Pool offset of each qubit's leading one-qubit matrix (-1: none); with any, the
        plan starts from their product state instead of |0...0> (:meth:`initial_vectors`)."""
        max_fused = max(1, min(options.max_fused_qubits, MAX_DENSE))
        # small states: keep parametric gates apart so sweeps re-evaluate only small matrices
        self._fuse_parametric = num_qubits > SMALL_SAMPLE_QUBITS
        blocked = num_qubits >= max(options.blocking_threshold, 4) and num_qubits >= 4
        k = max(1, min(options.block_bits(num_qubits), num_qubits - 3, 2 * K.TABLE_BITS))
        items: list[Stage | int] | None = None
        if initial_product and options.fusion:
            rest, leading = self._leading(order)
            if blocked:
                # the greedy partition starts elsewhere without the leading gates: keep them
                # out only if that costs no extra pass (the product start needs a stage first)
                items = partition(self.gates, order, num_qubits, k, min(max_fused, k),
                                  self._check)
                folded = partition(self.gates, rest, num_qubits, k, min(max_fused, k),
                                   self._check)
                passes = len(folded) + (0 if folded and isinstance(folded[0], Stage) else 1)
                if leading and passes <= len(items):
                    items = folded
                    self._fold(leading)
            elif leading:
                order = rest
                self._fold(leading)
        if blocked:
            if items is None:
                items = partition(self.gates, order, num_qubits, k, min(max_fused, k),
                                  self._check)
            self._build_blocked(items, k, min(max_fused, k), options.fusion,
                                BLOCK_COSTS[options.precision])
        else:
            self._build_direct(order, max_fused, options.fusion)
        if self.has_product and blocked and not self.starts_blocked:
            # the product state is written by a first stage, one without operations
            self.steps.insert(0, self._empty_stage(num_qubits, k))
        self.pool.freeze()
        for step in self.steps:
            step.freeze()
        self.parametric = self.pool.parametric or any(g.parametric for g in self.phase_gates)
        self._tables: dict[str, np.ndarray] = {}

    # -- building -------------------------------------------------------------------------
    def _leading(self, order: list[int]) -> tuple[list[int], dict[int, list[int]]]:
        """Split ``order`` into the rest and the leading one-qubit gates per qubit (each
        one-qubit gate on a qubit before any other gate touches it)."""
        leading: dict[int, list[int]] = {}
        entangled: set[int] = set()
        rest: list[int] = []
        for index in order:
            qubits = self.gates[index].qubits
            if len(qubits) == 1 and qubits[0] not in entangled:
                leading.setdefault(qubits[0], []).append(index)
            else:
                entangled.update(qubits)
                rest.append(index)
        return rest, leading

    def _fold(self, leading: Mapping[int, list[int]]) -> None:
        """Start from the product state of the ``leading`` gates: acting on |0>, each qubit's
        run of them is a 2-vector, kept as a 2x2 matrix recipe in the pool (evaluated per
        binding like any block) of which the plan's start uses column 0."""
        for q, members in sorted(leading.items()):
            recipe = BlockMatrix(Block("dense", (q,), members), self.gates)
            self.product[q] = self.pool.add(recipe)
            self.summary["initial_product_gates"] += len(members)

    @property
    def has_product(self) -> bool:
        """Whether the plan starts from a product state other than |0...0>."""
        return bool(np.any(self.product >= 0))

    def initial_vectors(self, pools: np.ndarray) -> np.ndarray:
        """Each qubit's initial 2-vector per binding, ``(B, n, 2)`` (|0> where none)."""
        vecs = np.zeros((pools.shape[0], self.num_qubits, 2), dtype=pools.dtype)
        vecs[:, :, 0] = 1.0
        for q in np.flatnonzero(self.product >= 0):
            off = int(self.product[q])
            vecs[:, q, 0] = pools[:, off]  # column 0 of the row-major 2x2 matrix
            vecs[:, q, 1] = pools[:, off + 2]
        return vecs

    def product_states(self, pools: np.ndarray) -> np.ndarray:
        """The initial product states ``(B, 2^n)`` (the direct path's start)."""
        return product_table(self.initial_vectors(pools), range(self.num_qubits))

    def start_tables(self, pools: np.ndarray) -> np.ndarray | None:
        """What the first stage needs to write the initial product state, per binding (see
        :meth:`_StageStep.product_tables`); None for |0...0>. Cached when constant."""
        if not self.has_product:
            return None
        first = self.steps[0]
        assert isinstance(first, _StageStep)
        constant = not self.pool.parametric and pools.shape[0] == 1
        tables = self._tables.get(pools.dtype.name) if constant else None
        if tables is None:
            tables = first.product_tables(self.initial_vectors(pools))
            if constant:
                self._tables[pools.dtype.name] = tables
        return tables

    def _empty_stage(self, n: int, k: int) -> _StageStep:
        self.summary["stages"] += 1
        return _StageStep(n, k, range(k), range(k, k + 3))

    def _single(self, step: _DirectStep, index: int) -> None:
        self.summary["direct_ops"] += 1
        gate = self.gates[index]
        recipe = GateMatrix(gate)
        kind = K.DIAG if gate.diagonal else K.DENSE
        step.rows.append(_direct_desc(kind, gate.targets, gate.controls, gate.ctrl_values))
        step.offsets.append(self.pool.add(recipe))

    def _build_direct(self, order: Sequence[int], max_fused: int, fusion: bool) -> None:
        step = _DirectStep()
        run: list[int] = []

        def flush() -> None:
            for block in fuse(self.gates, run, max_fused, fusion, self._fuse_parametric):
                kind = K.DIAG if block.kind == "diag" else K.DENSE
                self.summary[f"{block.kind}_blocks"] += 1
                step.rows.append(_direct_desc(kind, block.qubits))
                step.offsets.append(self.pool.add(BlockMatrix(block, self.gates)))
            run.clear()

        for index in order:
            if fusable(self.gates[index], max_fused):
                run.append(index)
            else:
                flush()
                self._single(step, index)
        flush()
        if step.rows:
            self.steps.append(step)

    def _build_blocked(self, items: Sequence[Stage | int], k: int, max_fused: int,
                       fusion: bool, costs: CostModel) -> None:
        n = self.num_qubits
        for item in items:
            if self._check is not None:
                self._check()
            if not isinstance(item, Stage):
                step = _DirectStep()
                self._single(step, item)
                self.steps.append(step)
                continue
            blocks = gather_diagonals(fuse(self.gates, item.gates, max_fused, fusion,
                                           self._fuse_parametric, frozenset(item.local), costs))
            # lanes: the outside qubits fewest diagonal blocks depend on (a block that depends
            # on a lane qubit needs per-lane phases and leaves the phase pass); physical
            # qubits 0-2 go in the buffer (padding, else lanes) so that the stage moves whole
            # memory lines (_StageStep._lines)
            in_diag = Counter(q for b in blocks if b.kind == "diag" for q in b.qubits)
            outside = [q for q in range(n) if q not in item.local]
            lanes = sorted(outside, key=lambda q: (in_diag[q], q))[:3]
            pad = sorted((q for q in outside if q not in lanes),
                         key=lambda q: (q > 2, -in_diag[q], q))[: k - len(item.local)]
            low = [q for q in range(3) if q in outside and q not in lanes and q not in pad]
            if low:
                lanes = [q for q in lanes if q < 3] + low
                lanes += sorted((q for q in outside if q not in lanes and q not in pad),
                                key=lambda q: (in_diag[q], q))[:3 - len(lanes)]
            stage = _StageStep(n, k, sorted(item.local + tuple(pad)), sorted(lanes), costs.gather)
            self.summary["stages"] += 1
            self.summary["phase_passes"] += sum(
                1 for i, b in enumerate(blocks)
                if b.kind == "diag" and (i == 0 or blocks[i - 1].kind != "diag"))
            for block in blocks:
                self.summary[f"{block.kind}_blocks"] += 1
                recipe = BlockMatrix(block, self.gates)
                offset = self.pool.add(recipe)
                if block.kind == "diag":
                    stage.add_diag(block.qubits, offset)
                    lane_bound = bool(set(block.qubits) & set(lanes))
                    stage.cost += costs.diag + (costs.diag_lane if lane_bound else 0.0)
                else:
                    sources = recipe.sources() if block.kind == "perm" else None
                    stage.add_dense(block.qubits, offset, sources)
                    stage.cost += costs.block(block.kind, len(block.qubits))
            self.steps.append(stage)

    # -- running --------------------------------------------------------------------------
    def pools(self, values: Values | None, batch: int, dtype: np.dtype) -> np.ndarray:
        return self.pool.build(values, batch, dtype)

    def global_phase(self, values: Values | None, batch: int) -> np.ndarray:
        phase = np.ones(batch, dtype=np.complex128)
        for gate in self.phase_gates:
            phase *= gate.base_matrix(values, batch)[:, 0, 0]
        return phase

    @property
    def starts_blocked(self) -> bool:
        """Whether the first step is a stage, which can start from unwritten memory."""
        return bool(self.steps) and isinstance(self.steps[0], _StageStep)

    @property
    def last_stage(self) -> _StageStep | None:
        """The last step if it is a stage (it can then take the sample-block norms)."""
        last = self.steps[-1] if self.steps else None
        return last if isinstance(last, _StageStep) else None

    def apply(self, states: np.ndarray, pools: np.ndarray, run: _Run, fresh: bool = False,
              norms: np.ndarray | None = None) -> None:
        """Apply the plan; ``fresh`` (only with :attr:`starts_blocked`): ``states`` hold
        uninitialised memory that stands for the initial state (|0...0>, or the product
        state of :attr:`product`, which the first stage then writes). Without ``fresh`` a
        plan with a product start expects ``states`` to hold it already
        (:meth:`product_states`). ``norms`` (only with :attr:`last_stage`): the last stage
        fills it with its sample-block norms (:meth:`_StageStep.sample`)."""
        last = len(self.steps) - 1
        for index, step in enumerate(self.steps):
            run.check()
            kwargs: dict[str, Any] = {}
            if index == 0 and fresh:
                assert isinstance(step, _StageStep)
                kwargs.update(fresh=True, start=self.start_tables(pools))
            if index == last and norms is not None:
                assert isinstance(step, _StageStep)
                kwargs["norms"] = norms
            step.apply(states, pools, run, **kwargs)


class SpareStates:
    """One large state kept between runs, for the next run of the same size to reuse.

    Fresh memory costs page faults on first touch (about 2 ms per 16 MiB here, several times
    that the first time a process touches it under a hypervisor): 30 ms for a 24-qubit
    complex128 state, as long as a whole GHZ or Bernstein-Vazirani circuit takes to run.
    A run that only samples its final state gives the array back; the next run of that size
    and precision takes it instead of allocating (its first stage overwrites every amplitude).
    At most one array of at most ``simulator.keep-state-bytes`` is kept, so an idle process
    holds at most one state; 0 keeps none.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: np.ndarray | None = None

    def take(self, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` (the kept one if it fits)."""
        with self._lock:
            spare = self._spare
            if spare is not None and spare.shape == shape and spare.dtype == dtype:
                self._spare = None
                return spare
        return np.empty(shape, dtype=dtype)

    def give(self, states: np.ndarray) -> None:
        """Keep ``states`` (no longer used by the caller) for the next :meth:`take`."""
        if states.nbytes < (1 << (SMALL_SAMPLE_QUBITS + 4)) or not states.flags.owndata:
            return  # small: allocation is cheap and the pages stay mapped anyway
        from hal_workflow import config

        limit = config.get("simulator.keep-state-bytes", 0) or 0
        with self._lock:
            self._spare = states if states.nbytes <= int(limit) else None

    def clear(self) -> None:
        with self._lock:
            self._spare = None


spare_states = SpareStates()


def product_table(vecs: np.ndarray, qubits: Sequence[int]) -> np.ndarray:
    """``(B, 2^len(qubits))``: entry ``x`` is the product over ``j`` of
    ``vecs[:, qubits[j], bit j of x]`` (1 for no qubits)."""
    table = np.ones((vecs.shape[0], 1), dtype=vecs.dtype)
    for q in qubits:
        table = np.concatenate((table * vecs[:, q, :1], table * vecs[:, q, 1:]), axis=1)
    return table


def initial_states(batch: int, num_qubits: int, dtype: np.dtype) -> np.ndarray:
    """``batch`` states |0...0>, shape ``(B, 2^n)``.

    Plain ``np.zeros``: its pages are mapped lazily and first touched by the (parallel)
    kernels. Transparent huge pages were tried and made allocation slower (compaction).
    """
    states = np.zeros((batch, 1 << num_qubits), dtype=dtype)
    states[:, 0] = 1.0
    return states


# ------------------------------------------------------------------------------------------
# read-out: physical outcomes to classical-bit counts
# ------------------------------------------------------------------------------------------


class Readout:
    """Maps physical basis indices to classical-register values and count keys.

    ``pairs`` are ``(physical qubit, clbit)`` in program order (a later write to a clbit
    wins). Keys have ``num_clbits`` characters, clbit 0 rightmost; with no clbits at all the
    only key is ``""``.
    """

    def __init__(self, pairs: Sequence[tuple[int, int]], num_clbits: int,
                 outcome_map: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        final: dict[int, int] = {}
        for q, c in pairs:
            final[c] = q
        self.pairs = sorted(final.items())  # (clbit, qubit)
        self.num_clbits = num_clbits
        self.outcome_map = outcome_map
        """Applied to physical outcomes first (gates a sampling plan left out)."""
        self.mask = sum(1 << c for c, _ in self.pairs)
        self.wide = num_clbits > 62
        self._hist_cache: dict[int, tuple[np.ndarray | None, list[int], list[str]]] = {}

    def key(self, value: int) -> str:
        return format(value, f"0{self.num_clbits}b") if self.num_clbits else ""

    def values(self, outcomes: np.ndarray) -> np.ndarray | list[int]:
        """Register values (only the measured bits) of physical ``outcomes``."""
        if self.outcome_map is not None:
            outcomes = self.outcome_map(outcomes)
        if self.wide:
            return [sum(((int(x) >> q) & 1) << c for c, q in self.pairs) for x in outcomes]
        vals = np.zeros(outcomes.shape, dtype=np.int64)
        for c, q in self.pairs:
            vals |= ((outcomes >> q) & 1) << c
        return vals

    def _histogram_map(self, size: int) -> tuple[np.ndarray | None, list[int], list[str]]:
        """For ``size`` physical outcomes: the index of each one's register value among the
        distinct values (None when all differ), those values, and their keys."""
        cached = self._hist_cache.get(size)
        if cached is None:
            vals = self.values(np.arange(size, dtype=np.int64))
            uniq, inverse = np.unique(np.asarray(vals, dtype=object if self.wide else np.int64),
                                      return_inverse=True)
            if len(uniq) == size:  # one value per outcome: index values by outcome
                values, inv = [int(uniq[j]) for j in inverse], None
            else:
                values, inv = [int(u) for u in uniq], inverse.astype(np.int64)
            cached = (inv, values, [self.key(v) for v in values])
            self._hist_cache[size] = cached
        return cached

    def from_histogram(self, hist: np.ndarray, base: int = 0) -> dict[int, int]:
        """Register values -> counts from shots per physical index (``hist``, length 2^n);
        ``base`` holds bits set earlier (mid-circuit measurements) that these don't cover."""
        inverse, uniq, _ = self._histogram_map(hist.shape[0])
        agg = hist if inverse is None else np.bincount(inverse, weights=hist, minlength=len(uniq))
        keep = base & ~self.mask
        return {keep | uniq[i]: int(agg[i]) for i in np.flatnonzero(agg)}

    def keyed_histogram(self, hist: np.ndarray) -> dict[str, int]:
        """Count keys straight from a histogram over physical outcomes (no earlier bits)."""
        inverse, _, keys = self._histogram_map(hist.shape[0])
        agg = hist if inverse is None else np.bincount(inverse, weights=hist, minlength=len(keys))
        nonzero = np.flatnonzero(agg)
        return dict(zip([keys[i] for i in nonzero], agg[nonzero].astype(int).tolist(),
                        strict=True))

    def from_outcomes(self, outcomes: np.ndarray, base: int = 0) -> dict[int, int]:
        keep = base & ~self.mask
        vals = self.values(outcomes)
        if self.wide:
            return dict(Counter(keep | v for v in vals))
        uniq, counts = np.unique(vals, return_counts=True)
        return {keep | int(u): int(c) for u, c in zip(uniq, counts, strict=True)}

    def keyed(self, counts: Mapping[int, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for value, count in counts.items():
            key = self.key(value)
            out[key] = out.get(key, 0) + count
        return out


def _probabilities(state: np.ndarray) -> np.ndarray:
    p = state.real.astype(np.float64) ** 2 + state.imag.astype(np.float64) ** 2
    return p


def _histogram(state: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Shots per basis index of a small state."""
    p = _probabilities(state)
    total = p.sum()
    if state.shape[0] <= 1024 or shots >= state.shape[0]:
        return rng.multinomial(shots, p / total)
    idx = np.searchsorted(np.cumsum(p), rng.random(shots) * total, side="right")
    idx[idx >= state.shape[0]] = np.flatnonzero(p)[-1]  # rounding past the end
    return np.bincount(idx, minlength=state.shape[0])


def sample_keys(state: np.ndarray, shots: int, rng: np.random.Generator, run: _Run,
                readout: Readout) -> dict[str, int]:
    """Sample ``shots`` outcomes of the final state; count keys -> counts."""
    if state.shape[0].bit_length() - 1 <= SMALL_SAMPLE_QUBITS:
        return readout.keyed_histogram(_histogram(state, shots, rng))
    return readout.keyed(sample_physical(state, shots, rng, run, readout))


def _sorted_uniforms(norms: np.ndarray, shots: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-CDF sampling over blocks of squared norms ``norms``: the mass before each
    block, ``shots`` sorted uniforms scaled to the total, and the first uniform of each block
    (``first[-1] == shots``). Uniforms that rounding puts past the last block with any mass
    go to that block."""
    starts = np.concatenate(([0.0], np.cumsum(norms)[:-1]))
    total = float(norms.sum())
    us = np.sort(rng.random(shots)) * total
    first = np.concatenate((np.searchsorted(us, starts, side="left"), [shots])).astype(np.int64)
    first[0] = 0
    nonzero = np.flatnonzero(norms > 0)
    if nonzero.size:
        first[nonzero[-1] + 1:] = shots
    return starts, us, first


def sample_physical(state: np.ndarray, shots: int, rng: np.random.Generator, run: _Run,
                    readout: Readout, base: int = 0) -> dict[int, int]:
    """Sample ``shots`` outcomes of the final state; register values -> counts (``base``:
    bits written earlier, kept where these measurements do not overwrite them)."""
    if shots == 0:
        return {}
    n = state.shape[0].bit_length() - 1
    if n <= SMALL_SAMPLE_QUBITS:
        return readout.from_histogram(_histogram(state, shots, rng), base)
    size = min(_SAMPLE_BLOCK, state.shape[0])
    threads = run.threads if run.parallel else 1
    if threads > 1:
        with parallel.parallel_lock:
            norms = K.block_norms(state, size, threads)
    else:
        norms = K.block_norms_serial(state, size)
    starts, us, first = _sorted_uniforms(norms, shots, rng)
    if threads > 1 and min(shots, norms.shape[0]) * size >= _PARALLEL_SCAN_AMPLITUDES:
        with parallel.parallel_lock:
            outcomes = K.scan_blocks(state, size, starts, us, first, threads)
    else:
        outcomes = K.scan_blocks_serial(state, size, starts, us, first)
    return readout.from_outcomes(outcomes, base)


# ------------------------------------------------------------------------------------------
# program analysis and the executable
# ------------------------------------------------------------------------------------------


def _touches(op: Operation) -> set[int]:
    if isinstance(op, GateOp):
        return set(op.qubits)
    if isinstance(op, (ResetOp, MeasureOp)):
        return {op.qubit}
    if isinstance(op, IfOp):
        out: set[int] = set()
        for inner in op.body + op.else_body:
            out |= _touches(inner)
        return out
    return set()


def needs_per_shot(operations: Sequence[Operation]) -> bool:
    """Whether results depend on state collapse mid-circuit (see module docstring)."""
    used: set[int] = set()
    measured: set[int] = set()
    for op in operations:
        if isinstance(op, IfOp):
            return True
        if isinstance(op, MeasureOp):
            measured.add(op.qubit)
            used.add(op.qubit)
        elif isinstance(op, ResetOp):
            if op.qubit in used:
                return True
        elif isinstance(op, GateOp):
            if measured & set(op.qubits):
                return True
            used |= set(op.qubits)
    return False


_COMMUTES_WITH_X = frozenset({"x", "cx", "CX", "ccx", "rx", "crx", "sx"})
"""Gates whose base matrix (one target) commutes with X, for any parameter value (and so
under any ``inv``/``pow`` modifier)."""


def x_frame(gates: Sequence[ResolvedGate]) -> tuple[list[ResolvedGate], int, int]:
    """The gates with every plain ``x`` moved to the end, the qubits those leave flipped (a
    bit mask) and how many were moved.

    ``x`` on qubit q followed by a gate G on q equals ``(X G X)`` followed by ``x``: so an
    ``x`` costs nothing if every later gate on its qubit is seen through it (a control on q
    inverts its value, a target of q conjugates the base matrix, a ``("xconj", mask)`` step
    of :meth:`ResolvedGate.base_matrix`; gates that commute with X stay as they are). The
    ``x`` gates left at the end only invert sampled bits. Diagonal gates stay diagonal.
    """
    flipped = 0
    moved = 0
    out: list[ResolvedGate] = []
    for gate in gates:
        if gate.name == "x" and not gate.controls and not gate.steps:
            flipped ^= 1 << gate.targets[0]
            moved += 1
            continue
        if not any((flipped >> q) & 1 for q in gate.qubits):
            out.append(gate)
            continue
        values = tuple(v ^ ((flipped >> q) & 1) for q, v in zip(gate.controls, gate.ctrl_values,
                                                                 strict=True))
        mask = sum(1 << j for j, q in enumerate(gate.targets) if (flipped >> q) & 1)
        steps = gate.steps
        if mask and not (gate.name in _COMMUTES_WITH_X and len(gate.targets) == 1):
            steps = (*steps, ("xconj", mask))
        out.append(ResolvedGate(gate.name, gate.targets, gate.controls, values, gate.diagonal,
                                gate.params, steps, gate.line))
    return out, flipped, moved


def trailing_gates(gates: Sequence[ResolvedGate]) -> tuple[set[int], list[int]]:
    """The gates a sampling run can leave out: indices of the monomial gates (diagonal ones
    included) that can move to the end, and of those the non-diagonal ones, in order.

    A gate moves to the end when it commutes with every later gate that stays, on its
    qubits: a diagonal passes diagonals, a permutation passes only gates that move too
    (passing a diagonal that moves leaves a diagonal behind it). At the end a diagonal
    changes phases only, so the final probabilities are the same without it; a permutation
    (``x``, ``cx``, ``swap``, ``ccx``... up to phases) permutes the outcomes, which the
    read-out does instead (:class:`OutcomeMap`). Parametric permutations stay (their
    pattern is fixed, but working it out needs a binding)."""
    blocked: set[int] = set()  # qubits of a later gate that stays and is not diagonal
    diagonal: set[int] = set()  # ... and of a later diagonal that stays
    out: set[int] = set()
    perms: list[int] = []
    for index in range(len(gates) - 1, -1, -1):
        gate = gates[index]
        if not gate.qubits:
            continue  # a global phase
        if gate.diagonal:
            if blocked.isdisjoint(gate.qubits):
                out.add(index)
            else:
                diagonal.update(gate.qubits)
        elif (gate.monomial and not gate.parametric and len(gate.qubits) <= _MAX_MAPPED_QUBITS
              and blocked.isdisjoint(gate.qubits) and diagonal.isdisjoint(gate.qubits)):
            out.add(index)
            perms.append(index)
        else:
            blocked.update(gate.qubits)
    return out, perms[::-1]


_MAX_MAPPED_QUBITS = 8
"""Widest permutation the read-out applies (a table of 2^8 entries)."""


class OutcomeMap:
    """Basis-index permutations applied to sampled outcomes, then a bit flip: the trailing
    permutation gates and the ``x`` gates a sampling plan left out (:func:`trailing_gates`,
    :func:`x_frame`)."""

    def __init__(self, gates: Sequence[ResolvedGate], flip: int) -> None:
        self.flip = flip
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []  # (qubits, image of each pattern)
        for gate in gates:
            dense = gate.dense()[0]
            image = np.argmax(np.abs(dense) > 0.5, axis=0)  # column j's one entry: row
            self.steps.append((np.array(gate.qubits, dtype=np.int64), image.astype(np.int64)))

    def __bool__(self) -> bool:
        return bool(self.flip or self.steps)

    def __call__(self, outcomes: np.ndarray) -> np.ndarray:
        out = np.asarray(outcomes, dtype=np.int64)
        for qubits, image in self.steps:
            local = np.zeros_like(out)
            for j, q in enumerate(qubits):
                local |= ((out >> q) & 1) << j
            mapped = image[local]
            for j, q in enumerate(qubits):
                out = (out & ~(1 << q)) | (((mapped >> j) & 1) << q)
        return out ^ self.flip if self.flip else out


class LazyPlan:
    """A :class:`UnitaryPlan` built on first use (on the job's thread, not in ``submit``)."""

    def __init__(self, gates: list[ResolvedGate], num_qubits: int, options: EngineOptions,
                 **kwargs: Any) -> None:
        self._args = (gates, num_qubits, options)
        self._kwargs = kwargs  # UnitaryPlan's keyword arguments
        self._plan: UnitaryPlan | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> UnitaryPlan | None:
        """The plan if it has been built, else None."""
        return self._plan

    def get(self, check: Callable[[], None] | None = None) -> UnitaryPlan:
        """The plan, built now if needed (``check`` may abandon a long build by raising)."""
        if self._plan is None:
            with self._lock:
                if self._plan is None:
                    self._plan = UnitaryPlan(*self._args, check=check, **self._kwargs)
        return self._plan


@dataclass
class _Instr:
    op: str  # "U", "M", "R", "IF", "JMP"
    plan: LazyPlan | None = None
    qubit: int = 0
    clbit: int = 0
    clbits: tuple[int, ...] = ()
    value: int = 0
    target: int = 0


class Executable:
    """A circuit compiled for this simulator; run it as often as needed.

    Raises ``KeyError`` (unknown gate) or ``ValueError`` (bad operands) while compiling; the
    backend turns them into contract errors.
    """

    def __init__(self, lowered: LoweredCircuit, options: EngineOptions) -> None:
        self.lowered = lowered
        self.options = options
        self.num_qubits = lowered.num_qubits
        self.num_clbits = lowered.num_clbits
        self.parameters = tuple(lowered.parameters)
        self.dtype = options.dtype
        self.per_shot = needs_per_shot(lowered.operations)
        self.mode = "per-shot" if self.per_shot else "statevector"
        self._perm = list(range(self.num_qubits))  # logical -> physical
        self.unitary: LazyPlan | None = None
        self.sampling: LazyPlan | None = None
        self.instructions: list[_Instr] = []
        self._final: list[tuple[int, int]] = []  # (physical qubit, clbit) sampled at the end
        self._outcome_map = OutcomeMap([], 0)  # what the sampling plan leaves to the read-out
        if self.per_shot:
            self._compile_per_shot(lowered.operations)
        else:
            self._compile_statevector(lowered.operations)
        self.readout = Readout(self._final, self.num_clbits)
        self.sample_readout = (Readout(self._final, self.num_clbits, self._outcome_map)
                               if self._outcome_map else self.readout)
        """The read-out of :attr:`sampling`'s states (:class:`OutcomeMap` first)."""
        self.perm = np.array(self._perm, dtype=np.int64)
        self.gate_count = sum(1 for op in _walk(lowered.operations) if isinstance(op, GateOp))
        self.memory_budget = 1 << 62
        """Bytes per-shot branches may hold in state copies (set by the backend)."""

    def plan_summary(self) -> dict[str, int]:
        """The built unitary plans' :attr:`UnitaryPlan.summary`, added up."""
        total: Counter[str] = Counter()
        for ins in self.instructions:
            plan = ins.plan.built if ins.plan is not None else None
            if plan is not None:
                total.update(plan.summary)
        return {key: count for key, count in sorted(total.items()) if count}

    # -- compilation ----------------------------------------------------------------------
    def _relabel(self, gate: ResolvedGate) -> ResolvedGate | None:
        """Map a gate to physical qubits; an unconditional swap only relabels (None)."""
        if gate.name == "swap" and not gate.controls and not gate.steps:
            a, b = gate.targets
            self._perm[a], self._perm[b] = self._perm[b], self._perm[a]
            return None
        p = self._perm
        return ResolvedGate(gate.name, tuple(p[q] for q in gate.targets),
                            tuple(p[q] for q in gate.controls), gate.ctrl_values, gate.diagonal,
                            gate.params, gate.steps, gate.line)

    def _plan(self, gates: list[ResolvedGate]) -> LazyPlan:
        return LazyPlan(gates, self.num_qubits, self.options)

    def prepare(self) -> None:
        """Build every unitary plan now (they are otherwise built on first run)."""
        for ins in self.instructions:
            if ins.plan is not None:
                ins.plan.get()

    def _compile_statevector(self, operations: Sequence[Operation]) -> None:
        gates: list[ResolvedGate] = []
        measures: list[tuple[int, int]] = []
        for op in operations:
            if isinstance(op, GateOp):
                g = self._relabel(resolve(op))
                if g is not None:
                    gates.append(g)
            elif isinstance(op, MeasureOp):
                measures.append((op.qubit, op.clbit))
        # measured qubits are never touched again, so read them through the final labels
        self._final = [(self._perm[q], c) for q, c in measures]
        options = self.options
        self.unitary = LazyPlan(gates, self.num_qubits, options, initial_product=True)
        sampled, flip, moved = x_frame(gates) if options.fusion else (gates, 0, 0)
        trailing, perms = trailing_gates(sampled) if options.fusion else (set(), [])
        self._outcome_map = OutcomeMap([sampled[i] for i in perms], flip)
        self.sampling = self.unitary if not (trailing or moved) else LazyPlan(
            [g for i, g in enumerate(sampled) if i not in trailing], self.num_qubits, options,
            initial_product=True, skipped_diagonals=len(trailing) - len(perms),
            x_gates_as_flips=moved, trailing_permutations=len(perms))
        """The plan of sampling runs: :attr:`unitary` less the trailing diagonal gates (which
        cannot change the final probabilities), the trailing permutations and the ``x`` gates
        (whose effect on the outcomes :attr:`sample_readout` applies), built on first use."""
        self.instructions = [_Instr("U", plan=self.sampling)]

    def _deferrable(self, operations: Sequence[Operation]) -> set[int]:
        """Positions of top-level measurements that may move to the end-of-shot sampling:
        nothing later touches their qubit, reads their clbit or writes it again."""
        out: set[int] = set()
        for i, op in enumerate(operations):
            if not isinstance(op, MeasureOp):
                continue
            later = operations[i + 1:]
            if any(op.qubit in _touches(o) and not isinstance(o, MeasureOp) for o in later):
                continue
            if any(isinstance(o, IfOp) for o in later):
                # an if may read this bit, or measure/gate in a body: keep it mid-circuit
                if any(op.clbit in o.condition.clbits or op.qubit in _touches(o)
                       for o in later if isinstance(o, IfOp)):
                    continue
            if any(isinstance(o, MeasureOp) and o.clbit == op.clbit for o in later):
                continue
            if any(isinstance(o, IfOp) and _writes(o, op.clbit) for o in later):
                continue
            out.add(i)
        return out

    def _compile_per_shot(self, operations: Sequence[Operation]) -> None:
        deferred = self._deferrable(operations)
        touched: set[int] = set()
        pending: list[ResolvedGate] = []
        final: list[tuple[int, int]] = []

        def flush() -> None:
            if pending:
                self.instructions.append(_Instr("U", plan=self._plan(list(pending))))
                pending.clear()

        def emit(ops: Sequence[Operation], top: bool) -> None:
            for i, op in enumerate(ops):
                if isinstance(op, BarrierOp):
                    continue
                if isinstance(op, GateOp):
                    g = resolve(op)
                    if top:
                        mapped = self._relabel(g)
                    else:
                        p = self._perm
                        mapped = ResolvedGate(g.name, tuple(p[q] for q in g.targets),
                                              tuple(p[q] for q in g.controls), g.ctrl_values,
                                              g.diagonal, g.params, g.steps, g.line)
                    if mapped is not None:
                        pending.append(mapped)
                    touched.update(op.qubits)
                elif isinstance(op, MeasureOp):
                    if top and i in deferred:
                        final.append((self._perm[op.qubit], op.clbit))
                        continue
                    flush()
                    self.instructions.append(
                        _Instr("M", qubit=self._perm[op.qubit], clbit=op.clbit))
                    touched.add(op.qubit)
                elif isinstance(op, ResetOp):
                    if top and op.qubit not in touched:
                        continue  # still |0>: a reset does nothing
                    flush()
                    self.instructions.append(_Instr("R", qubit=self._perm[op.qubit]))
                    touched.add(op.qubit)
                elif isinstance(op, IfOp):
                    flush()
                    branch = _Instr("IF", clbits=op.condition.clbits, value=op.condition.value)
                    self.instructions.append(branch)
                    emit(op.body, False)
                    flush()
                    if op.else_body:
                        jump = _Instr("JMP")
                        self.instructions.append(jump)
                        branch.target = len(self.instructions)
                        emit(op.else_body, False)
                        flush()
                        jump.target = len(self.instructions)
                    else:
                        branch.target = len(self.instructions)
                    touched.update(_touches(op))

        emit(operations, True)
        flush()
        self._final = final
        self.unitary = None

    # -- parameters -----------------------------------------------------------------------
    def missing(self, bindings: Mapping[str, float] | None) -> list[str]:
        bound = bindings or {}
        return [p for p in self.parameters if p not in bound]

    def values(self, bindings: Sequence[Mapping[str, float]]) -> Values:
        return {p: np.array([float(b[p]) for b in bindings]) for p in self.parameters}

    # -- statevector mode -----------------------------------------------------------------
    def _initial(self, batch: int) -> np.ndarray:
        return initial_states(batch, self.num_qubits, self.dtype)

    def final_states(self, values: Values | None, batch: int, run: _Run,
                     sampling: bool = False, norms: np.ndarray | None = None) -> np.ndarray:
        """Physical-order final states ``(B, 2^n)`` (statevector mode); ``sampling``: only
        their probabilities will be read, so :attr:`sampling`'s plan may run; ``norms``: see
        :meth:`UnitaryPlan.apply` (with ``sampling``)."""
        assert self.unitary is not None and self.sampling is not None
        plan = (self.sampling if sampling else self.unitary).get(run.check)
        pools = plan.pools(values, batch, self.dtype)
        fresh = plan.starts_blocked
        if fresh:  # the first stage writes every amplitude: skip zeroing and reading
            states = spare_states.take((batch, 1 << self.num_qubits), self.dtype)
        elif plan.has_product:
            states = plan.product_states(pools)
        else:
            states = self._initial(batch)
        plan.apply(states, pools, run, fresh=fresh, norms=norms)
        return states

    def logical(self, state: np.ndarray, values: Values | None, run: _Run) -> np.ndarray:
        """Reorder a physical state into logical qubit order and add the global phase."""
        assert self.unitary is not None
        if np.any(self.perm != np.arange(self.num_qubits)):
            if run.parallel and state.shape[0] >= (1 << 16):
                with parallel.parallel_lock:
                    state = K.permute(state, self.perm, run.threads)
            else:
                state = K.permute_serial(state, self.perm)
        phase = self.unitary.get().global_phase(values, 1)[0]
        if phase != 1.0:
            state = state * phase.astype(self.dtype)
        return state

    def sample(self, shots: int, bindings: Mapping[str, float] | None, rng: np.random.Generator,
               run: _Run) -> dict[str, int]:
        values = self.values([bindings or {}]) if self.parameters else None
        if self.per_shot:
            return self.readout.keyed(self._run_branches(shots, values, rng, run))
        assert self.sampling is not None
        last = self.sampling.get(run.check).last_stage
        if last is not None and shots > 0 and self.num_qubits > SMALL_SAMPLE_QUBITS:
            # the last stage sums the sample blocks as it writes them: no pass of its own
            norms = np.empty(last.sample_blocks, dtype=np.float64)
            states = self.final_states(values, 1, run, sampling=True, norms=norms)
            run.check()
            outcomes = last.sample(states[0], norms, shots, rng, run)
            counts = self.sample_readout.keyed(self.sample_readout.from_outcomes(outcomes))
        else:
            states = self.final_states(values, 1, run, sampling=True)
            run.check()
            counts = sample_keys(states[0], shots, rng, run, self.sample_readout)
        spare_states.give(states)  # sampled: nobody else holds it
        return counts

    def sample_batch(self, shots: int, bindings: Sequence[Mapping[str, float]],
                     seeds: Sequence[int], run: _Run) -> list[dict[str, int]]:
        """Counts for every binding, binding ``i`` sampled with a generator seeded
        ``seeds[i]`` (so it matches a single run with that seed, however the bindings are
        batched). Small statevector circuits run all bindings in one kernel call."""
        def rng(seed: int) -> np.random.Generator:
            return np.random.Generator(np.random.PCG64(seed))

        if self.per_shot or self.num_qubits > SMALL_SAMPLE_QUBITS:
            return [self.sample(shots, b, rng(s), run) for b, s in zip(bindings, seeds,
                                                                         strict=True)]
        values = self.values(bindings) if self.parameters else None
        states = self.final_states(values, len(bindings), run, sampling=True)
        return [self.sample_readout.keyed_histogram(_histogram(state, shots, rng(seed)))
                for state, seed in zip(states, seeds, strict=True)]

    # -- per-shot mode --------------------------------------------------------------------
    def _run_branches(self, shots: int, values: Values | None, rng: np.random.Generator,
                      run: _Run) -> dict[int, int]:
        pools = {id(i.plan): i.plan.get(run.check).pools(values, 1, self.dtype)
                 for i in self.instructions if i.plan is not None}
        state_bytes = (1 << self.num_qubits) * self.dtype.itemsize
        max_states = max(2, self.memory_budget // max(state_bytes, 1))
        counts: Counter[int] = Counter()
        # a branch: (instruction pointer, shots, register, state or None, outcome history)
        stack: list[tuple[int, int, int, np.ndarray | None, list[int]]] = [
            (0, shots, 0, None, [])
        ]
        held = 0  # pending branches that keep their own state copy
        while stack:
            ip, nshots, creg, state, history = stack.pop()
            if state is None:
                state = (self._initial(1)[0] if not history
                         else self._replay(history, pools, run))
            else:
                held -= 1
            while ip < len(self.instructions):
                ins = self.instructions[ip]
                if ins.op == "U":
                    assert ins.plan is not None
                    ins.plan.get().apply(state[None], pools[id(ins.plan)], run)
                    ip += 1
                elif ins.op in ("M", "R"):
                    p1 = self._prob_one(state, ins.qubit, run)
                    n1 = int(rng.binomial(nshots, min(max(p1, 0.0), 1.0)))
                    split = [(o, c) for o, c in ((0, nshots - n1), (1, n1)) if c > 0]
                    if len(split) == 2:
                        other, other_shots = split[1]
                        other_reg = _write(creg, ins, other)
                        if held + 2 <= max_states:
                            copy = state.copy()
                            self._collapse(copy, ins, other, p1, run)
                            stack.append((ip + 1, other_shots, other_reg, copy, [*history, other]))
                            held += 1
                        else:
                            stack.append((ip + 1, other_shots, other_reg, None, [*history, other]))
                    outcome, nshots = split[0]
                    self._collapse(state, ins, outcome, p1, run)
                    creg = _write(creg, ins, outcome)
                    history = [*history, outcome]
                    ip += 1
                elif ins.op == "IF":
                    value = sum(((creg >> c) & 1) << i for i, c in enumerate(ins.clbits))
                    ip = ip + 1 if value == ins.value else ins.target
                else:
                    ip = ins.target
            run.check()
            final = sample_physical(state, nshots, rng, run, self.readout, creg)
            for value, count in final.items():
                counts[value] += count
        return dict(counts)

    def _replay(self, history: list[int], pools: dict[int, np.ndarray], run: _Run) -> np.ndarray:
        """Rebuild a branch's state from |0> by forcing its recorded outcomes."""
        state = self._initial(1)[0]
        forced = iter(history)
        ip = 0
        creg = 0
        remaining = len(history)
        while remaining:
            ins = self.instructions[ip]
            if ins.op == "U":
                assert ins.plan is not None
                ins.plan.get().apply(state[None], pools[id(ins.plan)], run)
                ip += 1
            elif ins.op in ("M", "R"):
                outcome = next(forced)
                p1 = self._prob_one(state, ins.qubit, run)
                self._collapse(state, ins, outcome, p1, run)
                creg = _write(creg, ins, outcome)
                remaining -= 1
                ip += 1
            elif ins.op == "IF":
                value = sum(((creg >> c) & 1) << i for i, c in enumerate(ins.clbits))
                ip = ip + 1 if value == ins.value else ins.target
            else:
                ip = ins.target
        return state

    def _prob_one(self, state: np.ndarray, qubit: int, run: _Run) -> float:
        if run.parallel and state.shape[0] >= (1 << 16):
            with parallel.parallel_lock:
                return float(K.prob_one(state, qubit, run.threads))
        return float(K.prob_one_serial(state, qubit))

    def _collapse(self, state: np.ndarray, ins: _Instr, outcome: int, p1: float, run: _Run) -> None:
        p = p1 if outcome else 1.0 - p1
        scale = 1.0 / math.sqrt(p) if p > 0 else 0.0
        reset = ins.op == "R"
        if run.parallel and state.shape[0] >= (1 << 16):
            with parallel.parallel_lock:
                K.collapse(state, ins.qubit, outcome, scale, reset, run.threads)
        else:
            K.collapse_serial(state, ins.qubit, outcome, scale, reset)


def _write(creg: int, ins: _Instr, outcome: int) -> int:
    if ins.op != "M":
        return creg
    return (creg & ~(1 << ins.clbit)) | (outcome << ins.clbit)


def _writes(op: IfOp, clbit: int) -> bool:
    return any(isinstance(o, MeasureOp) and o.clbit == clbit for o in _walk(op.body + op.else_body))


def _walk(operations: Sequence[Operation]) -> Iterator[Operation]:
    for op in operations:
        yield op
        if isinstance(op, IfOp):
            yield from _walk(op.body + op.else_body)


def make_run(threads: int | None, cancelled: CancelCheck = _never) -> _Run:
    """Settings for one run on the calling thread (sets numba's thread count there)."""
    return _Run(parallel.use_threads(threads), cancelled)


__all__ = ["EngineOptions", "Executable", "Readout", "UnitaryPlan", "make_run"]
