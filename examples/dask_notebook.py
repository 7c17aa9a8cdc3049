# %% [markdown]
# # A parameter sweep from a login node, with Dask
#
# The way you would work in a notebook on a cluster's login node: connect a Dask client to a
# scheduler, submit a graph of quantum tasks, watch it progress, gather the results.
# Each `# %%` is a cell (VS Code, Jupytext, Spyder); `python examples/dask_notebook.py` runs
# them all as a script.
#
# Where the scheduler comes from:
# * `DASK_SCHEDULER_ADDRESS=tcp://login1:8786` (e.g. a scheduler started with
#   `hal_workflow.executors.config.dask_cluster("slurm")` whose workers run in batch jobs);
# * otherwise a `LocalCluster` on this machine, sized so that worker threads times simulator
#   threads fit the cores.

# %%
import os
import sys

import numpy as np
from distributed import Client

from hal_workflow.circuits import Circuit
from hal_workflow.executors import dask as hal_dask

# Run as a script, this file would be re-run by every worker process that multiprocessing
# spawns (scripts guard against that with `if __name__ == "__main__":`, which cells cannot).
# Without a file name, __main__ is left alone in the workers, as a notebook's is.
sys.modules["__main__"].__file__ = None

address = os.environ.get("DASK_SCHEDULER_ADDRESS")
cluster = None if address else hal_dask.local_cluster(n_workers=2, dashboard_address=None)
client = Client(address or cluster)
print(f"workers: {len(client.nthreads())}, threads: {sum(client.nthreads().values())}")

# %% [markdown]
# A two-qubit circuit with one free angle. The backend is named by a *spec*, plain data that
# pickles: each worker builds its own simulator from it. The seed makes the run reproducible
# on any number of workers.

# %%
CIRCUIT = Circuit.from_qasm("""
OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
ry(theta) q[1];
c = measure q;
""")
BACKEND = {"name": "sim", "seed": 2024}
thetas = np.linspace(0, np.pi, 64)
bindings = [{"theta": float(t)} for t in thetas]

# %% [markdown]
# The sweep: chunks of bindings become tasks (the simulator runs each chunk as one batch),
# results stream back with a progress bar and return in input order.

# %%
results = hal_dask.sweep(client, CIRCUIT, bindings, BACKEND, shots=2000)
parity = [(r.counts.get("00", 0) + r.counts.get("11", 0) - r.counts.get("01", 0)
           - r.counts.get("10", 0)) / r.shots for r in results]
print("<Z0 Z1> at theta = 0, pi/2, pi:",
      [round(parity[i], 2) for i in (0, len(thetas) // 2, len(thetas) - 1)])

# %% [markdown]
# A graph of futures: each circuit is a task, and a second task per circuit reduces its
# result on the worker that holds it, so only floats travel back to the notebook.

# %%
def z0z1(result):
    counts = result.counts
    return (counts.get("00", 0) + counts.get("11", 0) - counts.get("01", 0)
            - counts.get("10", 0)) / result.shots


runs = [hal_dask.submit_circuit(client, CIRCUIT, BACKEND, 2000, b) for b in bindings[:8]]
reduced = [client.submit(z0z1, run) for run in runs]
print("first eight <Z0 Z1>:", np.round(client.gather(reduced), 2).tolist())

# %%
client.close()
if cluster is not None:
    cluster.close()
