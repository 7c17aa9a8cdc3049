"""Numba kernels of the statevector simulator.

Two ways of applying gates:

* **direct** kernels work on the state itself (complex, one amplitude per basis index, bit
  ``i`` of the index = physical qubit ``i``). They serve small states, many-control gates and
  batched parameter sweeps (a ``(B, 2^n)`` stack of states run in one call).
* **block** kernels apply a whole *stage* of fused gates with one pass over memory: the state
  is cut into chunks of ``2^k`` local-qubit x 8 lane amplitudes that fit in L2 cache; each chunk
  is copied into a split real/imaginary buffer (``[local index][re x8, im x8]``), every fused
  gate of the stage is applied there, and the chunk is written back. The 8 lanes are 3 qubits
  no dense gate of the stage touches, so every gate kernel works on 8 independent lanes that
  LLVM turns into SIMD instructions. Operations are dense matrices (1-3 qubits have their own
  kernels), monomial matrices (a copy and a phase per row) and diagonal phase tables (whose
  qubits may lie outside the buffer: their bits are constant per chunk, or per lane). A run
  of consecutive diagonal tables is one *phase pass*: their per-row phases are multiplied
  together first and the buffer is read and written once for all of them. The gather and
  the scatter move whole memory lines (8 amplitudes over physical qubits 0-2, whether those
  are lane or local qubits: :func:`line_map`), shuffled in registers. Chunks
  are handed to the threads one at a time. The first stage on a fresh state fills its buffers
  instead of reading the (uninitialised) state.

The numba code lives in :mod:`hal_workflow.simulator._jit`, imported on first compile.

Each kernel compiles on its first call, per precision (:class:`Kernel`), so a small circuit
never waits for the large-state kernels; compiled code is cached on disk (``cache=True``) in
numba's cache directory (the ``simulator.cache-dir`` configuration key, else numba's default),
shared by every process: a Dask or Parsl worker loads what another process compiled, and a
file lock makes concurrent first runs compile once.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

LANES = 8
"""Amplitudes processed side by side in the block kernels (3 lane qubits)."""
WIDTH = 2 * LANES
"""Floats per local index in a block buffer: 8 real parts then 8 imaginary parts."""
MAX_DENSE = 5
"""Largest dense (fused) gate the kernels apply, in qubits."""
TABLE_BITS = 7
"""Local-index bits per lookup table half in block diagonals (so up to 14 local qubits)."""

GENERIC_LINES = -1
"""Line pattern of a stage with a chunk qubit among physical qubits 0-2 (see
:func:`line_map`): its gather and scatter move one amplitude at a time."""


def line_map(pattern: int) -> dict[tuple[int, int], tuple[int, int]]:
    """How 8 buffer rows x 8 lanes lie in 8 memory lines of 8 amplitudes (physical qubits 0-2
    vary within a line), for a stage whose physical qubits 0-2 are all local or lane qubits.
    ``pattern``: bit ``t`` set when physical qubit ``t`` is a lane qubit. Local and lane
    qubits are kept in increasing order, so the lane qubits among 0-2 are lanes ``0..m-1``
    and the local ones buffer-row bits ``0..2-m``; a group of rows ``8g..8g+7`` then fills 8
    lines: row ``j`` and lane ``l`` go to line ``x`` (its remaining row bits, then its
    remaining lane bits) at position ``p`` (its bits on physical qubits 0-2). Returns
    ``{(j, l): (x, p)}``; pattern 7 (lanes on 0-2) is the plain row copy, pattern 0 an
    8 x 8 transpose."""
    lane_pos = [t for t in range(3) if (pattern >> t) & 1]
    row_pos = [t for t in range(3) if not (pattern >> t) & 1]
    m = len(lane_pos)
    out = {}
    for j in range(LANES):
        for lane in range(LANES):
            p = sum(((lane >> i) & 1) << t for i, t in enumerate(lane_pos))
            p += sum(((j >> i) & 1) << t for i, t in enumerate(row_pos))
            out[j, lane] = ((j >> (3 - m)) | ((lane >> m) << m), p)
    return out


# operation kinds shared by the planner and the kernels
DENSE = 0
DIAG = 1
PERM = 2

# columns of a direct-operation descriptor row
D_KIND, D_NQ, D_NSPECIAL, D_CBITS, D_OFF = 0, 1, 2, 3, 4
D_QUBITS = 5
D_SPECIAL = D_QUBITS + 64
D_WIDTH = D_SPECIAL + 64

# columns of a block-operation descriptor row
B_KIND, B_NT, B_OFF, B_LANES, B_NCHUNK = 0, 1, 2, 3, 4
B_TARGETS = 5
B_TABLE = B_TARGETS + MAX_DENSE  # row of the stage's tables (dlo, dhi, ...) for DIAG and PERM
B_WIDTH = B_TABLE + 1


# ----------------------------------------------------------------------------------------
# compilation control: each kernel compiles on its first call, per precision
# ----------------------------------------------------------------------------------------

_compile_lock = threading.RLock()
_announced = False
NOTICE = "hal-workflow: compiling simulator kernels, first run only"
"""The line printed on stderr (once per process) before a kernel compiles rather than loads."""

def _jit() -> Any:
    """The numba kernels module (imports numba, pins its threading layer, on first use)."""
    from hal_workflow.simulator import _jit as jit

    return jit


@contextlib.contextmanager
def dynamic() -> Iterator[None]:
    """Hand out ``prange`` iterations one at a time (dynamic scheduling) in this block."""
    numba = _jit().numba
    old = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old)


class Kernel:
    """A numba kernel that compiles (or loads from numba's on-disk cache) on its first call
    at each precision, so a circuit pays only for the kernels it uses.

    Compiling takes a file lock in the cache directory: of several processes starting at once
    (Dask or Parsl workers), the first compiles and the others wait, then load its result.
    A kernel with a ``fallback`` (a NumPy version of the same operation) always runs it for
    small inputs (``small(*args)``), compiled or not: which kernel computes a state must not
    depend on what this process compiled earlier, since the two differ in the last bits and a
    seeded sample can then differ (a sweep element computed in a fresh Dask worker must equal
    the same element computed in the driver). A Bell pair never waits for LLVM.
    """

    __slots__ = ("__name__", "_dispatcher", "fallback", "ready", "small")

    def __init__(self, name: str, fallback: Any = None, small: Any = None) -> None:
        self.__name__ = name
        self._dispatcher: Any = None
        self.fallback = fallback
        self.small = small
        self.ready: set[str] = set()

    @property
    def dispatcher(self) -> Any:
        """numba's dispatcher of this kernel (importing numba on first use)."""
        if self._dispatcher is None:
            self._dispatcher = getattr(_jit(), self.__name__)
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        if self.fallback is not None and self.small(*args):
            return self.fallback(*args)  # small states: always NumPy (see the class docstring)
        dtype = args[0].dtype
        if dtype.name not in self.ready:
            self.compile(dtype, announce=True)
        return self.dispatcher(*args)

    def compile(self, dtype: np.dtype | type, announce: bool = False) -> None:
        """Compile (or load) this kernel's signatures for states of ``dtype``; with
        ``announce``, say so on stderr first when that means compiling, not loading."""
        name = np.dtype(dtype).name
        if name in self.ready:
            return
        if announce and not _in_disk_cache(self.dispatcher):
            _announce()
        with _compile_lock:
            if name in self.ready:
                return
            jit = _jit()
            with _cache_file_lock(jit.numba.config.CACHE_DIR), jit.slp_enabled(np.dtype(dtype)):
                for sig in jit.signatures(np.dtype(dtype))[self.__name__]:
                    self.dispatcher.compile(sig)
            self.ready.add(name)

    def __repr__(self) -> str:
        return f"<simulator kernel {self.__name__}, compiled for {sorted(self.ready) or 'none'}>"


# ----------------------------------------------------------------------------------------
# NumPy versions of the small-state kernels, used for every state of up to NUMPY_MAX_QUBITS
# ----------------------------------------------------------------------------------------

NUMPY_MAX_QUBITS = 10
"""States of up to this many qubits run on NumPy (their kernels never wait for numba)."""


def _small_states(states: np.ndarray, *_: Any) -> bool:
    return bool(states.shape[-1] <= (1 << NUMPY_MAX_QUBITS))


def _run_direct_numpy(states: np.ndarray, descs: np.ndarray, offsets: np.ndarray,
                      pools: np.ndarray) -> None:
    """:func:`run_direct` in NumPy: the same descriptors, the same result."""
    index = np.arange(states.shape[1], dtype=np.int64)
    for k in range(descs.shape[0]):
        desc = descs[k]
        nq, nspecial = int(desc[D_NQ]), int(desc[D_NSPECIAL])
        mask = 0
        for bit in desc[D_SPECIAL:D_SPECIAL + nspecial]:
            mask |= 1 << int(bit)
        bases = index[(index & mask) == 0] | desc[D_CBITS]
        d = 1 << nq
        rows = np.arange(d, dtype=np.int64)
        offs = np.zeros(d, dtype=np.int64)
        for b in range(nq):
            offs |= ((rows >> b) & 1) << desc[D_QUBITS + b]
        where = bases[:, None] + offs[None, :]
        off = int(offsets[k])
        if desc[D_KIND] == DIAG:
            states[:, where] *= pools[:, None, off:off + d]
        else:
            matrices = pools[:, off:off + d * d].reshape(-1, d, d)
            states[:, where] = np.einsum("bij,bgj->bgi", matrices, states[:, where])


def _permute_numpy(src: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """:func:`permute_serial` in NumPy."""
    logical = np.arange(src.shape[0], dtype=np.int64)
    physical = np.zeros_like(logical)
    for q in range(perm.shape[0]):
        physical |= ((logical >> q) & 1) << int(perm[q])
    return src[physical]


def _announce() -> None:
    global _announced
    if not _announced:
        _announced = True
        print(NOTICE, file=sys.stderr, flush=True)


def _in_disk_cache(dispatcher: Any) -> bool:
    """Whether numba's cache has an index for this kernel (then compiling is a quick load)."""
    cache = getattr(dispatcher, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    return isinstance(index, str) and os.path.exists(index)


@contextlib.contextmanager
def _cache_file_lock(directory: str | None) -> Iterator[None]:
    """An exclusive lock on ``<numba cache dir>/hal-workflow.lock`` (none where unavailable)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: processes may compile the same kernel twice, harmlessly
        yield
        return
    directory = directory or os.path.join(os.path.dirname(__file__), "__pycache__")
    try:
        os.makedirs(directory, exist_ok=True)
        handle = open(os.path.join(directory, "hal-workflow.lock"), "a+b")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


SMALL_CIRCUIT_KERNELS = ("run_direct", "permute_serial")
"""What small circuits run through: :func:`ensure_compiled` prepares these by default."""


def is_compiled(dtype: np.dtype | type, num_qubits: int | None = None) -> bool:
    """Whether small circuits (of ``num_qubits``, if given) run at ``dtype`` without waiting
    for a compilation: numba's kernels are ready, or the NumPy ones cover that size."""
    if num_qubits is not None and num_qubits <= NUMPY_MAX_QUBITS:
        return True
    name = np.dtype(dtype).name
    return all(name in globals()[k].ready for k in SMALL_CIRCUIT_KERNELS)


def ensure_compiled(dtype: np.dtype | type, kernels: Iterable[str] | None = None) -> None:
    """Compile (or load from the on-disk cache) ``kernels`` for states of ``dtype``.

    By default the kernels small circuits use (:data:`SMALL_CIRCUIT_KERNELS`); pass
    ``KERNELS`` to prepare every one, e.g. in a parent process before it starts workers.
    Other kernels compile on their first call.
    """
    for name in SMALL_CIRCUIT_KERNELS if kernels is None else kernels:
        globals()[name].compile(dtype)


run_direct = Kernel("run_direct", _run_direct_numpy, _small_states)
run_direct_parallel = Kernel("run_direct_parallel")
run_stage = Kernel("run_stage")
run_stage_parallel = Kernel("run_stage_parallel")
stage_template = Kernel("stage_template")
prob_one = Kernel("prob_one")
prob_one_serial = Kernel("prob_one_serial")
collapse = Kernel("collapse")
collapse_serial = Kernel("collapse_serial")
block_norms = Kernel("block_norms")
block_norms_serial = Kernel("block_norms_serial")
scan_blocks = Kernel("scan_blocks")
scan_blocks_serial = Kernel("scan_blocks_serial")
scan_stage = Kernel("scan_stage")
scan_stage_serial = Kernel("scan_stage_serial")
permute = Kernel("permute")
permute_serial = Kernel("permute_serial", _permute_numpy, _small_states)
pauli_expectation = Kernel("pauli_expectation")
pauli_expectation_serial = Kernel("pauli_expectation_serial")

KERNELS = tuple(name for name, value in list(globals().items()) if isinstance(value, Kernel))
"""The kernels the engine calls, each a :class:`Kernel` (names as in ``_jit``)."""
_FALLBACKS = {name: globals()[name].fallback for name in KERNELS if globals()[name].fallback}
