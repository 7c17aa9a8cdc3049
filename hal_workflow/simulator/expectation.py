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

from hal_workflow.circuits.observables import BASIS_SEED_STRIDE, PauliSum

__all__ = ["expectation_values", "folded_diagonals", "measured_expectations"]


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
                # Hermitian: the pair (y, y ^ x) contributes twice the real part of one
                # member, so visit only the y whose top bit of x is clear
                top = x
                while top & (top - 1):
                    top &= top - 1
                for high in range(0, size, 2 * top):
                    for y in range(high, high + top):
                        a = state[y]
                        w = state[y ^ x]
                        pr = w.real * a.real + w.imag * a.imag  # conj(w) * a
                        pi = w.real * a.imag - w.imag * a.real
                        d = diagonal[y]
                        acc += 2.0 * (pr * d.real - pi * d.imag)
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


@njit(parallel=True, cache=True, fastmath=True)
def _rotated_probabilities(states, hmask, smask, out):  # pragma: no cover - numba
    """``|<y|H^hmask S†^smask|psi_b>|^2`` for every state: the outcome distribution of
    measuring in a basis (X: H; Y: S† then H; Z: nothing), physical bit order."""
    batch, size = states.shape
    scale = 1.0 / np.sqrt(2.0)
    for b in prange(batch):
        buf = states[b].copy()
        if smask:
            for y in range(size):
                k = 0
                v = y & smask
                while v:
                    v &= v - 1
                    k += 1
                k &= 3
                a = buf[y]
                if k == 1:
                    buf[y] = complex(a.imag, -a.real)  # * (-i)
                elif k == 2:
                    buf[y] = -a
                elif k == 3:
                    buf[y] = complex(-a.imag, a.real)  # * i
        bit = 1
        while bit < size:
            if hmask & bit:
                for high in range(0, size, 2 * bit):
                    for y in range(high, high + bit):
                        a0 = buf[y]
                        a1 = buf[y + bit]
                        buf[y] = (a0 + a1) * scale
                        buf[y + bit] = (a0 - a1) * scale
            bit <<= 1
        for y in range(size):
            a = buf[y]
            out[b, y] = a.real * a.real + a.imag * a.imag


def _signs(size: int, mask: int) -> np.ndarray:
    return 1.0 - 2.0 * (np.bitwise_count(np.arange(size, dtype=np.int64) & mask) & 1)


def measured_expectations(states: np.ndarray, observables: Sequence[PauliSum], perm: np.ndarray,
                          shots: int, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``shots`` measurements of every state in each qubit-wise commuting basis of
    the observables' terms, and estimate: ``(means, variances of the means)``, each
    ``(B, len(observables))``.

    What running each basis circuit ``shots`` times would give (the same Born
    distribution, and with the same seeds the same counts: state ``b`` in basis ``k`` is
    sampled with seed ``seeds[b] + k * BASIS_SEED_STRIDE``, as the basis circuits are),
    without evolving the state again per basis.
    """
    from hal_workflow.circuits.observables import group_labels

    batch, size = states.shape
    labels = [label for pauli in observables for label in pauli.labels]
    grouping = group_labels(labels)
    # per basis: (observable-term weights as outcome functions f[y], one column per observable)
    columns = np.zeros((len(grouping.bases), size, len(observables)))
    offset = 0
    for o, pauli in enumerate(observables):
        for k, (label, coeff) in enumerate(pauli.terms):
            support = 0
            for q, ch in enumerate(reversed(label)):
                if ch != "I":
                    support |= 1 << int(perm[q])
            columns[grouping.term_basis[offset + k], :, o] += coeff * _signs(size, support)
        offset += len(pauli.terms)
    means = np.zeros((batch, len(observables)))
    variances = np.zeros_like(means)
    probabilities = np.empty((batch, size))
    states = np.ascontiguousarray(states)
    for k, basis in enumerate(grouping.bases):
        hmask = smask = 0
        for q, ch in enumerate(reversed(basis)):
            if ch in "XY":
                hmask |= 1 << int(perm[q])
            if ch == "Y":
                smask |= 1 << int(perm[q])
        _rotated_probabilities(states, hmask, smask, probabilities)
        histogram = np.empty((batch, size))
        for b in range(batch):
            p = probabilities[b]
            seed = int(seeds[b]) + k * BASIS_SEED_STRIDE
            generator = np.random.Generator(np.random.PCG64(seed))
            histogram[b] = generator.multinomial(shots, p / p.sum())
        f = columns[k]
        # row by row (not one matrix product), so a state's value does not depend on how
        # many states share the chunk: results are bit-identical however a PUB is split
        mean = np.stack([(histogram * f[:, o]).sum(axis=1) for o in range(f.shape[1])],
                        axis=1) / shots
        second = np.stack([(histogram * (f[:, o] * f[:, o])).sum(axis=1)
                           for o in range(f.shape[1])], axis=1) / shots
        means += mean
        variances += np.maximum(second - mean * mean, 0.0) / shots
    return means, variances
