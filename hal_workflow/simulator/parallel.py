"""Numba threading setup: pin the threading layer, size the thread pool, survive ``fork``.

Why this module exists: importing Braket's default simulator sets
``numba.config.THREADING_LAYER = "workqueue"`` for the whole process, and the workqueue layer
made small parallel kernels ~13x slower and is not safe to enter from two threads at once.
The layer is chosen only when numba first launches its thread pool, so :func:`configure`
picks the best available layer (``tbb``, then ``omp``, then ``workqueue``) and launches the
pool *immediately*, before anything else can change the setting. It runs once, when the
simulator's numba kernels are first loaded (small circuits on the NumPy kernels never load
numba).

GNU OpenMP cannot be used again in a child created by ``fork`` after its threads started; the
child would abort on its first parallel kernel. An ``os.register_at_fork`` hook therefore
switches a forked child to serial kernels.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

logger = logging.getLogger(__name__)

_PREFERRED_LAYERS = ("tbb", "omp", "workqueue")
_lock = threading.Lock()
_configured = False
_forked_child = False
_layer: str | None = None
_pool_size = 1

parallel_lock = threading.Lock()
"""Held while a parallel kernel runs, so two jobs never oversubscribe the cores (and the
workqueue layer, should another library have forced it, is never entered concurrently)."""


def _available_layer() -> str:
    """The first layer of :data:`_PREFERRED_LAYERS` whose runtime imports here."""
    modules = {"tbb": "tbbpool", "omp": "omppool", "workqueue": "workqueue"}
    for layer in _PREFERRED_LAYERS:
        try:
            importlib.import_module(f"numba.np.ufunc.{modules[layer]}")
        except Exception:
            continue
        return layer
    return "workqueue"


def _after_fork_in_child() -> None:
    global _forked_child
    _forked_child = True


def configure() -> str:
    """Pin numba's threading layer and launch its pool (idempotent). Returns the layer used."""
    global _configured, _layer, _pool_size
    with _lock:
        if _configured:
            return _layer or "unknown"
        import numba
        from numba.np.ufunc import parallel as _np_parallel

        if not getattr(_np_parallel, "_is_initialized", False):
            requested = os.environ.get("NUMBA_THREADING_LAYER")
            if requested and requested not in ("default", "safe", "threadsafe", "forksafe"):
                numba.config.THREADING_LAYER = requested  # an explicit user choice wins
            else:
                numba.config.THREADING_LAYER = _available_layer()
        # Launches the pool now if nobody did. (Braket also sets config.NUMBA_NUM_THREADS to
        # -1, so the pool size is read from numba, never from its config.)
        _pool_size = max(1, numba.get_num_threads())
        try:
            _layer = numba.threading_layer()
        except ValueError:
            _layer = str(numba.config.THREADING_LAYER)
        if _layer == "workqueue":
            logger.warning(
                "numba's threading layer is 'workqueue' (set before hal_workflow.simulator was"
                " imported); parallel kernels run serialised and small states stay serial"
            )
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
        _configured = True
        return _layer


def layer() -> str | None:
    """The threading layer in use, or None before :func:`configure` ran."""
    return _layer


def max_threads() -> int:
    """Threads a kernel may use: numba's pool size (``NUMBA_NUM_THREADS``) capped by the
    CPUs this process may run on; 1 in a child forked after the pool started."""
    if _forked_child:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    pool = _pool_size if _configured else _expected_pool_size(cpus)
    return max(1, min(pool, cpus))


def _expected_pool_size(cpus: int) -> int:
    """The pool numba will start (``NUMBA_NUM_THREADS``, else the CPUs), before it has."""
    try:
        return int(os.environ.get("NUMBA_NUM_THREADS") or cpus)
    except ValueError:
        return cpus


def use_threads(requested: int | None) -> int:
    """Set numba's thread count for the calling thread (it is thread-local) and return it."""
    count = max_threads() if requested is None else max(1, min(int(requested), max_threads()))
    # before numba is loaded, the kernels' own ``nthreads`` arguments bound their threads
    if not _forked_child and _configured:
        import numba

        numba.set_num_threads(count)
    return count
