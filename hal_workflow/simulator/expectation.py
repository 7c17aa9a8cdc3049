"""Exact expectation values of Pauli sums over a batch of statevectors.

For each observable, terms that share an X mask share one pass over the state: their Z signs,
``i^nY`` phases and coefficients are folded once into a diagonal ``D_x`` (independent of the
state), so ``<psi|H|psi> = sum_x sum_y conj(psi[y ^ x]) D_x[y] psi[y]``. A diagonal-heavy
Hamiltonian (Ising, chemistry: many Z-only terms) costs one pass per distinct X mask, not
per term; the batch runs in parallel over states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from hal_workflow.circuits.observables import PauliSum

__all__ = ["expectation_values", "folded_diagonals"]


def _physical(mask: int, perm: np.ndarray) -> int:
    out = 0
    for q in range(len(perm)):
        if mask >> q & 1:
            out |= 1 << int(perm[q])
    return out


def folded_diagonals(observables: Sequence[PauliSum], perm: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xmasks, diagonals, owner)``: one row per distinct (observable, physical X mask).

    ``diagonals[g, y] = sum_k c_k i^{nY_k} (-1)^{popcount(y & z_k)}`` over the terms ``k`` of
    observable ``owner[g]`` whose X mask is ``xmasks[g]`` (physical qubit order ``perm``).
    """
    n = len(perm)
    index = np.arange(1 << n, dtype=np.int64)
    xs: list[int] = []
    owner: list[int] = []
    rows: list[np.ndarray] = []
    for o, observable in enumerate(observables):
        xm, zm, ny = observable.masks()
        found: dict[int, int] = {}
        for coeff, x, z, y in zip(observable.coefficients, xm, zm, ny, strict=True):
            px, pz = _physical(int(x), perm), _physical(int(z), perm)
            row = found.get(px)
            if row is None:
                row = found[px] = len(rows)
                xs.append(px)
                owner.append(o)
                rows.append(np.zeros(1 << n, dtype=np.complex128))
            signs = 1.0 - 2.0 * (np.bitwise_count(index & pz) & 1)
            rows[row] += (coeff * (1j) ** int(y)) * signs
    diagonals = np.array(rows) if rows else np.zeros((0, 1 << n), dtype=np.complex128)
    return np.array(xs, dtype=np.int64), diagonals, np.array(owner, dtype=np.int64)


@njit(parallel=True, cache=True, fastmath=True)
def _expectations(states, xmasks, diagonals, owner, out):  # pragma: no cover - numba
    batch, size = states.shape
    for b in prange(batch):
        state = states[b]
        for g in range(xmasks.shape[0]):
            x = xmasks[g]
            diagonal = diagonals[g]
            acc = 0.0
            if x == 0:
                for y in range(size):
                    a = state[y]
                    acc += (a.real * a.real + a.imag * a.imag) * diagonal[y].real
            else:
                for y in range(size):
                    a = state[y]
                    w = state[y ^ x]
                    pr = w.real * a.real + w.imag * a.imag  # conj(w) * a
                    pi = w.real * a.imag - w.imag * a.real
                    d = diagonal[y]
                    acc += pr * d.real - pi * d.imag
            out[b, owner[g]] += acc


def expectation_values(states: np.ndarray, observables: Sequence[PauliSum], perm: np.ndarray,
                       folded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                       ) -> np.ndarray:
    """``<psi_b|O_o|psi_b>`` as a ``(B, len(observables))`` float64 array.

    ``states`` is ``(B, 2^n)`` in physical order (logical qubit ``q`` is bit ``perm[q]``);
    ``folded`` reuses :func:`folded_diagonals` across calls.
    """
    xmasks, diagonals, owner = folded if folded is not None else folded_diagonals(
        observables, perm)
    out = np.zeros((states.shape[0], len(observables)), dtype=np.float64)
    _expectations(np.ascontiguousarray(states), xmasks, diagonals, owner, out)
    return out
