"""Large compilation work (Qiskit's importer and transpiler) in a worker *process*.

Why a process: Qiskit's transpiler runs Rust passes that hold the GIL for up to a second on a
10,000-gate circuit, so running them in a thread (``asyncio.to_thread``) still stalls the
caller's event loop, which the contract (§12) forbids. :func:`call` runs a function here when
the work is small (latency stays as it was: no pickling, no process hop) and in a shared worker
process when its estimated size is above ``compilation.worker-min-operations``. The calling
thread only waits on a pipe, which releases the GIL.

The workers are one small pool per process (``compilation.worker-processes``), started on
first use and stopped at exit. Each is ``python -m hal_workflow.compilation.workers``, fed
pickled calls on its stdin. Why not ``multiprocessing`` (a ``spawn``/``forkserver``
``ProcessPoolExecutor``): its workers import the caller's main script first, so a script
without the ``if __name__ == "__main__":`` guard would run again in the worker, submitting its
jobs a second time before failing; ``fork`` is unsafe in a process with threads. A worker here
imports nothing of the caller's, and exits when its parent does (its stdin closes).

Functions and their arguments cross by pickle: module-level functions, circuits as OpenQASM
text or ``QuantumCircuit``, a ``Target``. Errors come back as themselves (``HalError``
pickles); a worker that dies is reported as ``BackendUnavailableError`` and replaced on the
next call.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from hal_workflow import config
from hal_workflow.contract.errors import BackendUnavailableError

__all__ = ["budget", "call", "estimate", "shutdown"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

_LOCK = threading.Condition()
_IDLE: list[_Worker] = []
_STARTED = 0  # workers alive (idle or busy)
_IN_WORKER = False


def budget() -> int | None:
    """Operations up to which work runs in this process (None: always here)."""
    value = config.get("compilation.worker-min-operations", 1000)
    if value is None or str(value).lower() in ("null", "none", ""):
        return None
    return int(value)


def _processes() -> int:
    value = config.get("compilation.worker-processes", None)
    if value is not None and str(value).lower() not in ("null", "none", ""):
        return max(1, int(value))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(4, max(1, cores or 1))


def estimate(program: Any) -> int:
    """A cheap size estimate, in operations, of a program (text, ``Circuit`` or Qiskit circuit).

    Text counts its statements (``;``): reading it costs far less than the work it stands for.
    """
    text = program if isinstance(program, str) else getattr(program, "qasm", None)
    if isinstance(text, str):
        return text.count(";")
    data = getattr(program, "data", None)  # a QuantumCircuit
    return len(data) if data is not None else 0


class _Worker:
    """One worker process and its two pipes; used by one thread at a time."""

    def __init__(self) -> None:
        # this hal_workflow first, then the caller's path (as multiprocessing passes it), so
        # that the worker imports the functions it is sent from where the caller did
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in (root, *sys.path) if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hal_workflow.compilation.workers"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests: IO[bytes] = self.process.stdin
        self.answers: IO[bytes] = self.process.stdout

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)``; OSError/EOFError if the worker died."""
        _send(self.requests, (fn, args, kwargs))
        answer: tuple[bool, Any] = _receive(self.answers)
        return answer

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.requests.close()  # the worker exits at the end of its input
        try:
            self.process.wait(5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            self.answers.close()


_HEADER = struct.Struct("!Q")


def _send(stream: IO[bytes], value: Any) -> None:
    """One message: its length, then its pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """One message, read whole before it is unpickled: the wait for its bytes releases the
    GIL, where ``pickle.load`` on the pipe would hold it while the sender is still busy."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the worker process closed its pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the worker process closed its pipe")
    return pickle.loads(data)


def _acquire() -> _Worker:
    global _STARTED
    with _LOCK:
        while not _IDLE and _STARTED >= _processes():
            _LOCK.wait()
        if _IDLE:
            return _IDLE.pop()
        _STARTED += 1
    try:
        worker = _Worker()
    except BaseException:
        _release(None)
        raise
    logger.debug("compilation: started worker process %d", worker.process.pid)
    return worker


def _release(worker: _Worker | None) -> None:
    """Return ``worker`` to the idle list (None: it is gone)."""
    global _STARTED
    with _LOCK:
        if worker is None:
            _STARTED -= 1
        else:
            _IDLE.append(worker)
        _LOCK.notify()


def shutdown() -> None:
    """Stop the idle worker processes (at exit; a later :func:`call` starts new ones)."""
    global _STARTED
    with _LOCK:
        idle = list(_IDLE)
        _IDLE.clear()
        _STARTED -= len(idle)
    for worker in idle:
        worker.stop()


atexit.register(shutdown)


def call(fn: Callable[..., _T], /, *args: Any, size: int, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)``: here when ``size`` (see :func:`estimate`) is within
    :func:`budget`, else in a worker process.

    Blocking, like ``fn`` itself: call it from a thread (``asyncio.to_thread``), as adapters
    already do for SDK work. ``fn`` must be a module-level function.
    """
    limit = budget()
    if _IN_WORKER or limit is None or size <= limit:
        return fn(*args, **kwargs)
    worker = _acquire()
    try:
        ok, value = worker.call(fn, args, kwargs)
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        worker.stop()
        _release(None)
        raise BackendUnavailableError(
            f"a compilation worker process died running {getattr(fn, '__name__', fn)} on a "
            f"program of about {size} operations (exit status {worker.process.returncode}; "
            "out of memory?)") from exc
    except BaseException:  # the call's arguments did not pickle, say: the worker is fine
        _release(worker)
        raise
    _release(worker)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: one pickled call in, one pickled answer out, until end of input."""
    global _IN_WORKER
    _IN_WORKER = True  # a worker runs everything in place: no workers of its own
    while True:
        try:
            fn, args, kwargs = _receive(requests)
        except EOFError:
            return
        except Exception as exc:  # a function or argument this process cannot import
            answer: tuple[bool, Any] = (False, exc)
        else:
            try:
                answer = (True, fn(*args, **kwargs))
            except Exception as exc:  # sent back to the caller, who raises it
                answer = (False, exc)
        try:
            _send(answers, answer)
        except Exception as exc:  # anything pickle raises on odd objects
            if answer[0]:
                reply: Exception = BackendUnavailableError(
                    f"compilation worker: cannot send back {type(answer[1]).__name__}: {exc}")
            else:  # an SDK error that does not pickle: its message, which callers parse
                reply = RuntimeError(str(answer[1]))
            _send(answers, (False, reply))


if __name__ == "__main__":
    # the protocol owns stdout: anything a library prints goes to stderr instead
    _answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    import hal_workflow.compilation.qiskit_bridge  # noqa: F401  (before the first call)
    from hal_workflow.compilation import workers  # the module the functions see, not __main__

    workers._serve(sys.stdin.buffer, _answers)
