"""``HalEstimator`` on the simulator against Qiskit's ``StatevectorEstimator`` and Aer's
``EstimatorV2``, side by side in one run; then the same PUB through Dask on 2 workers.

    python benchmarks/qiskit_estimator.py              # 12 qubits, 200 terms, 1000 sets
    python benchmarks/qiskit_estimator.py --sets 100 --repeat 1     # smoke run

The PUB: ``efficient_su2(12, reps=2)`` (72 parameters), a 200-term Hamiltonian (random Pauli
strings, seeded; ``--hamiltonian local`` draws 1- and 2-local terms instead, as in lattice and
chemistry models), 1000 parameter sets in one PUB.

* **exact** (``precision=0``): every estimator computes exact expectation values.
* **shots** (``precision=--precision``): ours *measures*, with ``ceil(1/precision^2)`` shots per
  qubit-wise commuting basis and standard errors from the samples; both peers compute the exact
  value and add Gaussian noise of that width (that is what their ``precision`` does), so
  this row compares our real sampling with their post-hoc noise.
* **Dask**: ``HalEstimator(executor=client)`` on a ``local_cluster(2 workers x 1 thread)``, the
  simulator given 1 thread per worker; the engine cost is the Dask no-op task time, measured
  in the same run, times the number of chunks. Two ratios: the wall time over the ideal from
  the in-process single-thread time (which needs two idle cores), and over the ideal from the
  compute time the workers really spent (Dask's task stream): on a shared machine the first
  also counts the workers' lost cores, the second only what the engine adds.

Each cell is the median of ``--repeat`` timed runs after one untimed warm-up (JIT, caches).
"""

from __future__ import annotations

import argparse
import os

_ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_ARGS.add_argument("--qubits", type=int, default=12)
_ARGS.add_argument("--terms", type=int, default=200)
_ARGS.add_argument("--sets", type=int, default=1000)
_ARGS.add_argument("--precision", type=float, default=0.05)
_ARGS.add_argument("--repeat", type=int, default=3)
_ARGS.add_argument("--statevector-sets", type=int, default=100,
                   help="StatevectorEstimator is slow: time it on this many sets, scaled up")
_ARGS.add_argument("--threads", type=int, default=2)
_ARGS.add_argument("--hamiltonian", choices=["random", "local"], default="random")
_ARGS.add_argument("--skip", default="", help="comma-separated: statevector,aer,shots,dask")

if __name__ == "__main__":  # thread counts must be fixed before the SDKs load
    _opts = _ARGS.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(_opts.threads))
    os.environ.setdefault("NUMBA_NUM_THREADS", str(_opts.threads))

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402


def hamiltonian(kind: str, num_qubits: int, terms: int, seed: int = 7) -> Any:
    from qiskit.quantum_info import SparsePauliOp, random_pauli_list

    rng = np.random.default_rng(seed)
    if kind == "random":
        paulis = random_pauli_list(num_qubits, terms, seed=seed, phase=False)
        return SparsePauliOp(paulis, rng.normal(size=terms))
    labels: set[str] = set()
    while len(labels) < terms:
        label = ["I"] * num_qubits
        for q in rng.choice(num_qubits, size=rng.integers(1, 3), replace=False):
            label[q] = "XYZ"[rng.integers(3)]
        labels.add("".join(label))
    return SparsePauliOp(sorted(labels), rng.normal(size=terms))


def timed(fn: Callable[[], Any], repeat: int, warm_up: bool = True) -> tuple[float, Any]:
    if warm_up:
        fn()  # JIT, plan caches, worker start
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    opts = _ARGS.parse_args()
    skip = set(filter(None, opts.skip.split(",")))
    from qiskit.circuit.library import efficient_su2
    from qiskit.primitives import StatevectorEstimator

    from hal_workflow.qiskit import HalEstimator

    circuit = efficient_su2(opts.qubits, reps=2)
    observable = hamiltonian(opts.hamiltonian, opts.qubits, opts.terms)
    values = np.random.default_rng(1).uniform(-np.pi, np.pi, (opts.sets, circuit.num_parameters))
    pub = (circuit, observable, values)
    spec = {"name": "sim", "threads": opts.threads}
    groups = len(observable.group_commuting(qubit_wise=True))
    print(f"{opts.qubits} qubits, {circuit.num_parameters} parameters, {opts.terms} terms "
          f"({opts.hamiltonian}; {groups} qubit-wise commuting groups), {opts.sets} parameter "
          f"sets, {opts.threads} threads, median of {opts.repeat}")

    def run(estimator: Any, precision: float) -> Any:
        return estimator.run([pub], precision=precision).result()[0].data

    rows: list[tuple[str, str, float, str]] = []
    ours_exact = HalEstimator(spec)
    t_ours, data_ours = timed(lambda: run(ours_exact, 0.0), opts.repeat)
    rows.append(("exact", "HalEstimator (sim)", t_ours, ""))
    print(rows[-1], flush=True)
    reference = None
    peers: dict[str, float] = {}
    few = min(opts.sets, opts.statevector_sets)
    scale = opts.sets / few
    sv_note = f"timed on {few} sets, x{scale:g}" if scale != 1 else ""

    def run_sv(precision: float) -> Any:
        few_pub = (circuit, observable, values[:few])
        return StatevectorEstimator(seed=1).run([few_pub], precision=precision).result()[0].data

    if "statevector" not in skip:
        t, data = timed(lambda: run_sv(0.0), 1, warm_up=False)  # no JIT or cache to warm
        peers["StatevectorEstimator"] = t * scale
        rows.append(("exact", "StatevectorEstimator", t * scale, sv_note))
        print(rows[-1], flush=True)
        if few == opts.sets:
            reference = data.evs
        else:
            diff = np.abs(data_ours.evs[:few] - data.evs).max()
            rows[-1] = (*rows[-1][:3], f"{sv_note}; max |ours - it| = {diff:.1e}")
    if "aer" not in skip:
        from qiskit_aer.primitives import EstimatorV2 as AerEstimator

        aer = AerEstimator(options={"backend_options": {"max_parallel_threads": opts.threads}})
        t, data = timed(lambda: run(aer, 0.0), opts.repeat)
        peers["Aer EstimatorV2"] = t
        rows.append(("exact", "Aer EstimatorV2", t, ""))
        print(rows[-1], flush=True)
        reference = data.evs if reference is None else reference
    if reference is not None:
        diff = np.abs(data_ours.evs - reference).max()
        rows[0] = (*rows[0][:3], f"max |ours - Aer| = {diff:.1e}")
    fastest_exact = min(peers.values()) if peers else None
    shot_peers: list[float] = []

    if "shots" not in skip:
        measured = HalEstimator(spec, {"seed": 1})
        t, data = timed(lambda: run(measured, opts.precision), opts.repeat)
        z = np.abs(data.evs - data_ours.evs) / data.stds
        rows.append(("shots", "HalEstimator (sim), measured", t,
                     f"{int(np.ceil(opts.precision ** -2))} shots x {groups} bases; "
                     f"|z| median {np.median(z):.2f}, max {z.max():.2f}"))
        print(rows[-1], flush=True)
        if "statevector" not in skip:
            t, _ = timed(lambda: run_sv(opts.precision), 1, warm_up=False)
            rows.append(("shots", "StatevectorEstimator (exact + noise)", t * scale, sv_note))
            shot_peers.append(t * scale)
        if "aer" not in skip:
            t, _ = timed(lambda: run(aer, opts.precision), opts.repeat)
            rows.append(("shots", "Aer EstimatorV2 (exact + noise)", t, ""))
            shot_peers.append(t)

    if "dask" not in skip:
        from distributed import Client

        from hal_workflow.executors.dask import local_cluster

        with local_cluster(n_workers=2, threads_per_worker=1, backend_threads=1,
                           dashboard_address=None) as cluster, Client(cluster) as client:
            one = {"name": "sim", "threads": 1}
            noop, _ = timed(lambda: client.gather([client.submit(int, i, pure=False)
                                                   for i in range(200)]), opts.repeat)
            per_task = noop / 200 * 2  # 2 workers ran the 200 no-ops in parallel

            def on_dask(estimator: Any, precision: float) -> tuple[float, float, Any]:
                """Median wall time, the workers' compute time summed over its tasks (from
                Dask's task stream) in that run, and the data."""
                run(estimator, precision)  # warm-up
                client.get_task_stream()  # starts the scheduler's task stream plugin
                samples = []
                for _ in range(opts.repeat):
                    start = time.time()
                    wall = time.perf_counter()
                    data = run(estimator, precision)
                    wall = time.perf_counter() - wall
                    chunks = len(estimator._engine.ranges(opts.sets))
                    tasks: list[Any] = []
                    for _ in range(100):  # the task stream hears of the tasks a bit later
                        tasks = client.get_task_stream(start=start)
                        if len(tasks) >= chunks:
                            break
                        time.sleep(0.05)
                    busy = sum(part["stop"] - part["start"] for task in tasks
                               for part in task["startstops"] if part["action"] == "compute")
                    samples.append((wall, busy, data))
                return sorted(samples, key=lambda s: s[0])[len(samples) // 2]

            def engine_note(t: float, t_local: float, busy: float, chunks: int) -> str:
                engine = chunks * per_task / 2
                return (f"{chunks} chunks; no-op task {per_task * 1e3:.2f} ms; "
                        f"t / (t_1thread/2 + chunks x no-op/2) = {t / (t_local / 2 + engine):.2f}"
                        f"; workers computed {busy:.2f} s (in process {t_local:.2f} s): "
                        f"t / (computed/2 + chunks x no-op/2) = {t / (busy / 2 + engine):.2f}")

            t_local1, _ = timed(lambda: run(HalEstimator(one), 0.0), opts.repeat)
            dask_exact = HalEstimator(one, executor=client)
            t, busy, data = on_dask(dask_exact, 0.0)
            chunks = len(dask_exact._engine.ranges(opts.sets))
            same = np.array_equal(data.evs, data_ours.evs) or np.abs(
                data.evs - data_ours.evs).max() < 1e-9
            rows.append(("dask", "in process, 1 thread, exact", t_local1, ""))
            rows.append(("dask", "Dask 2 workers x 1 thread, exact", t,
                         f"{engine_note(t, t_local1, busy, chunks)}; values equal: {same}"))
            print(rows[-1], flush=True)
            if "shots" not in skip:
                local_measured = HalEstimator(one, {"seed": 1})
                t1, d1 = timed(lambda: run(local_measured, opts.precision), opts.repeat)
                spread = HalEstimator(one, {"seed": 1}, executor=client)
                t2, busy, d2 = on_dask(spread, opts.precision)
                rows.append(("dask", "in process, 1 thread, measured", t1, ""))
                rows.append(("dask", "Dask 2 workers x 1 thread, measured", t2,
                             f"{engine_note(t2, t1, busy, chunks)}; identical to in process: "
                             f"{np.array_equal(d1.evs, d2.evs)}"))
                print(rows[-1], flush=True)

    fastest_shots = min(shot_peers) if shot_peers else None
    print()
    print("| mode | estimator | time s | vs faster peer | notes |")
    print("|---|---|---:|---:|---|")
    for mode, name, seconds, note in rows:
        fastest = fastest_exact if mode == "exact" else fastest_shots if mode == "shots" else None
        ratio = f"{seconds / fastest:.2f}x" if fastest else ""
        print(f"| {mode} | {name} | {seconds:.3f} | {ratio} | {note} |")


if __name__ == "__main__":
    main()
