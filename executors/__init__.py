"""The Parsl and Dask layer, installed as ``hal_workflow.executors``.

Quantum work as ordinary tasks of an HPC workflow engine:

* :mod:`~hal_workflow.executors.dask`: ``submit_circuit``, ``map_circuits``, ``sweep`` /
  ``iter_sweep`` (chunked, streaming, with a progress bar), ``estimate``, ``cancel`` and
  ``local_cluster``;
* :mod:`~hal_workflow.executors.parsl`: the apps ``run_circuit``, ``run_sweep``,
  ``run_items``, ``run_estimates``, the ``sweep`` / ``estimate`` helpers, the
  ``quantum_app`` decorator and ``local_app`` for glue steps of a DAG;
* :mod:`~hal_workflow.executors.config`: ready Parsl configs and Dask clusters by site name;
* :mod:`~hal_workflow.executors.engines`: ``open_engine("local" | "dask" | "parsl")``, one
  sweep interface over all three;
* :mod:`~hal_workflow.executors.observables`: Pauli expectation values from counts.

What crosses the wire is plain data: a backend *spec*, OpenQASM text (a ``Circuit`` pickles as
its text), shots and bindings. Each worker builds its own backend from the spec, once per
process (``hal_workflow.orchestration.sync.backend_for``).

Seeding. A spec with a ``seed`` makes a sweep reproducible whatever the engine, the number of
workers, the chunking, or a chunk rerun after a worker died: element ``i`` of a sweep is
sampled with seed ``seed + i``. A chunk starting at element ``k`` calls the backend's
``submit_sweep(..., seed=seed + k)`` (or ``submit(..., seed=seed + k + j)`` without the batch
extension), so this needs a backend whose batch elements are seeded ``s + j``; a single-process
``hal_workflow.sweep`` with the same spec gives the same counts. Backends whose calls take no
``seed`` keep their own sampling.

Threads. ``local_cluster`` and the site configs give each worker
``HAL_WORKFLOW_BACKEND_THREADS`` (and ``NUMBA_NUM_THREADS``...), so worker threads times
simulator threads fit the cores; tasks put it into ``sim`` specs that have no ``threads``.
"""
