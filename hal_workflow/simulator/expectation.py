"""Exact expectation values of Pauli sums over a batch of statevectors.

For each observable, terms that share an X mask share one pass over the state: their Z signs,
``i^nY`` phases and coefficients are folded once into a diagonal ``D_x`` (independent of the
state), so ``<psi|H|psi> = sum_x sum_y conj(psi[y ^ x]) D_x[y] psi[y]``. A diagonal-heavy
Hamiltonian (Ising, chemistry: many Z-only terms) costs one pass per distinct X mask, not
per term; the batch runs in parallel over states.

Measured estimates (:func:`measured_expectations`) sample every qubit-wise commuting basis
from each state: rotated into the basis qubit by qubit, never evolved again. Working memory
per thread: about ``32 * 2^n`` bytes (twice the state) plus kept partial rotations up to
:data:`SAMPLE_BUFFER_BYTES`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numba import njit, prange

from hal_workflow.circuits.observables import PauliSum, group_labels

__all__ = ["expectation_values", "folded_diagonals", "measured_expectations"]


def _physical(mask: int, perm: np.ndarray) -> int:
    out = 0
    for q in range(len(perm)):
        if mask >> q & 1:
            out |= 1 << int(perm[q])
    return out


PLAN_CACHE_BYTES = 64 << 20
"""Folded diagonals and sampling plans are kept per process up to this many bytes (least
recently used first out), so the chunks of one PUB on a worker build them once."""

_plans: OrderedDict[tuple[Any, ...], tuple[int, Any]] = OrderedDict()
_plans_lock = threading.Lock()


def _planned(kind: str, observables: Sequence[PauliSum], perm: np.ndarray,
             build: Callable[[], tuple[Any, ...]]) -> Any:
    """``build()`` for these observables and qubit order, or the copy kept from an earlier
    call (the arrays are shared: callers only read them)."""
    key = (kind, tuple(observables), np.asarray(perm, dtype=np.int64).tobytes())
    with _plans_lock:
        hit = _plans.get(key)
        if hit is not None:
            _plans.move_to_end(key)
            return hit[1]
    value = build()
    size = sum(a.nbytes for a in value if isinstance(a, np.ndarray))
    if size <= PLAN_CACHE_BYTES:
        with _plans_lock:
            _plans[key] = (size, value)
            while sum(entry[0] for entry in _plans.values()) > PLAN_CACHE_BYTES:
                _plans.popitem(last=False)
    return value


def folded_diagonals(observables: Sequence[PauliSum], perm: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xmasks, diagonals, owner)``: one row per distinct (observable, physical X mask).

    ``diagonals[g, y] = sum_k c_k i^{nY_k} (-1)^{popcount(y & z_k)}`` over the terms ``k`` of
    observable ``owner[g]`` whose X mask is ``xmasks[g]`` (physical qubit order ``perm``).
    Kept per process (:data:`PLAN_CACHE_BYTES`): every chunk of a PUB folds the same sums.
    """
    return _planned("folded", observables, perm, lambda: _fold(observables, perm))


def _fold(observables: Sequence[PauliSum], perm: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


SAMPLE_BUFFER_BYTES = 4 << 20
"""Per thread at most this many bytes of partly rotated states, kept so that bases sharing
their first letters share those rotations."""

DRAWS_CHUNK_BYTES = 32 << 20
"""At most this many bytes of random draws at once (the states are taken in groups)."""

_LETTER = {"Z": 0, "X": 1, "Y": 2}


_BLOCK = 16
"""Outcomes per block of the sampling walk: blocks no draw falls in are passed in one step."""


_WIDE = 16
"""From this stride on, pair loops run over slices (which LLVM vectorises); below, by index."""


@njit(cache=True)
def _rotate(source, target, bit, letter):  # pragma: no cover - numba
    """``target = R source`` on physical ``bit``, both ``(2, 2^n)`` float32 (real and
    imaginary parts, so the loops vectorise; never the same array): X is H, Y is H S†, both
    without the ``1/sqrt(2)``, which only scales the outcome weights (normalised when
    sampled). Single precision: the weights' relative error (~1e-7) is far below the shot
    noise of any number of shots a backend allows."""
    if bit >= _WIDE:
        _rotate_wide(source, target, bit, letter)
    else:
        _rotate_narrow(source, target, bit, letter)


@njit(cache=True)
def _rotate_wide(source, target, bit, letter):  # pragma: no cover - numba
    """:func:`_rotate` over slices of ``bit`` amplitudes (LLVM vectorises these loops)."""
    size = source.shape[1]
    for high in range(0, size, 2 * bit):
        s0r = source[0, high:high + bit]
        s1r = source[0, high + bit:high + 2 * bit]
        s0i = source[1, high:high + bit]
        s1i = source[1, high + bit:high + 2 * bit]
        t0r = target[0, high:high + bit]
        t1r = target[0, high + bit:high + 2 * bit]
        t0i = target[1, high:high + bit]
        t1i = target[1, high + bit:high + 2 * bit]
        if letter == 1:
            for i in range(bit):
                t0r[i] = s0r[i] + s1r[i]
                t1r[i] = s0r[i] - s1r[i]
                t0i[i] = s0i[i] + s1i[i]
                t1i[i] = s0i[i] - s1i[i]
        else:  # S† first: a1 -> -i a1
            for i in range(bit):
                t0r[i] = s0r[i] + s1i[i]
                t1r[i] = s0r[i] - s1i[i]
                t0i[i] = s0i[i] - s1r[i]
                t1i[i] = s0i[i] + s1r[i]


@njit(cache=True)
def _rotate_narrow(source, target, bit, letter):  # pragma: no cover - numba
    """:func:`_rotate` by index, for strides below :data:`_WIDE`."""
    sr, si = source[0], source[1]
    tr, ti = target[0], target[1]
    size = sr.shape[0]
    for high in range(0, size, 2 * bit):
        if letter == 1:
            for y in range(high, high + bit):
                tr[y] = sr[y] + sr[y + bit]
                ti[y] = si[y] + si[y + bit]
                tr[y + bit] = sr[y] - sr[y + bit]
                ti[y + bit] = si[y] - si[y + bit]
        else:
            for y in range(high, high + bit):
                tr[y] = sr[y] + si[y + bit]
                ti[y] = si[y] - sr[y + bit]
                tr[y + bit] = sr[y] - si[y + bit]
                ti[y + bit] = si[y] + sr[y + bit]


@njit(cache=True)
def _weights(source, bit, letter, out):  # pragma: no cover - numba
    """``out[y] = |(R source)[y]|^2`` in float64, ``R`` as in :func:`_rotate` (``letter`` 0:
    no rotation): the last rotation of a basis is never stored."""
    sr, si = source[0], source[1]
    size = sr.shape[0]
    if letter == 0:
        for y in range(size):
            r = np.float64(sr[y])
            i = np.float64(si[y])
            out[y] = r * r + i * i
        return
    if bit >= _WIDE:
        _weights_wide(source, bit, letter, out)
        return
    for high in range(0, size, 2 * bit):
        for y in range(high, high + bit):
            a0r = np.float64(sr[y])
            a0i = np.float64(si[y])
            a1r = np.float64(sr[y + bit])
            a1i = np.float64(si[y + bit])
            if letter == 2:  # S† first: a1 -> -i a1
                a1r, a1i = a1i, -a1r
            out[y] = (a0r + a1r) ** 2 + (a0i + a1i) ** 2
            out[y + bit] = (a0r - a1r) ** 2 + (a0i - a1i) ** 2


@njit(cache=True)
def _weights_wide(source, bit, letter, out):  # pragma: no cover - numba
    """:func:`_weights` over slices of ``bit`` amplitudes (vectorised)."""
    size = source.shape[1]
    sign = 1.0 if letter == 1 else 0.0  # X mixes real with real, Y real with imaginary
    for high in range(0, size, 2 * bit):
        s0r = source[0, high:high + bit]
        s0i = source[1, high:high + bit]
        s1r = source[0, high + bit:high + 2 * bit]
        s1i = source[1, high + bit:high + 2 * bit]
        o0 = out[high:high + bit]
        o1 = out[high + bit:high + 2 * bit]
        for i in range(bit):
            a0r = np.float64(s0r[i])
            a0i = np.float64(s0i[i])
            # X: a1 as is; Y: a1 -> -i a1 = (a1i, -a1r)
            a1r = sign * np.float64(s1r[i]) + (1.0 - sign) * np.float64(s1i[i])
            a1i = sign * np.float64(s1i[i]) - (1.0 - sign) * np.float64(s1r[i])
            o0[i] = (a0r + a1r) ** 2 + (a0i + a1i) ** 2
            o1[i] = (a0r - a1r) ** 2 + (a0i - a1i) ** 2


@njit(cache=True, inline="always")
def _parity(v):  # pragma: no cover - numba
    v ^= v >> 32
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    return (0x6996 >> (v & 0xF)) & 1


@njit(cache=True, inline="always")
def _add_outcome(y, count, row, g0, g1, segment_terms, term_mask, term_coef, sums,
                 squares):  # pragma: no cover - numba
    """Outcome ``y`` drawn ``count`` times: add its value in segments ``g0:g1``."""
    for g in range(g0, g1):
        f = 0.0
        for t in range(segment_terms[g], segment_terms[g + 1]):
            f += term_coef[t] * (1 - 2 * _parity(y & term_mask[t]))
        sums[row, g] += count * f
        squares[row, g] += count * f * f


@njit(parallel=True, cache=True)
def _sample_bases(states, order, letters, last_letter, folds, basis_of, shared, keep, draws,
                  shots, basis_segments, segment_terms, term_mask, term_coef, sums,
                  squares):  # pragma: no cover - numba
    """For every state ``b`` (in parallel) and basis ``k``: rotate the state into the basis
    one qubit at a time (``letters[k, d]`` on physical bit ``order[d]``; 0 Z, 1 X, 2 Y; the
    last X or Y, ``last_letter[k]``, applied while the weights are computed), sum out the
    bits ``folds[k]`` that no term of the basis reads, draw ``shots`` outcomes from the
    remaining Born weights, and sum each segment's value over them.

    Bases are visited in ``basis_of`` order, where basis ``basis_of[j]`` shares its first
    ``shared[j]`` letters with the one before: the states after the first ``keep`` letters are
    kept, so shared rotations are done once. Outcomes are drawn by walking the running sum of
    the weights beside ``shots`` sorted uniforms, built from the ``shots + 1`` standard
    exponentials ``draws[b, k]`` (their normalised partial sums are distributed as the order
    statistics of uniforms): one pass, no sort, no search. Segment ``g`` (the terms
    ``segment_terms[g]:segment_terms[g + 1]`` of one observable in one basis; basis ``k`` owns
    segments ``basis_segments[k]:basis_segments[k + 1]``) has value
    ``f(y) = sum_t term_coef[t] (-1)^popcount(y & term_mask[t])`` (masks over the bits kept
    after the folds); ``sums[b, g]`` and
    ``squares[b, g]`` receive ``f`` and ``f^2`` summed over the shots.
    """
    batch, size = states.shape
    depth = order.shape[0]
    for b in prange(batch):
        # slots 0..keep-1: kept levels; keep, keep + 1: work; keep + 2: the state itself
        levels = np.empty((keep + 3, 2, size), dtype=np.float32)
        for y in range(size):
            levels[keep + 2, 0, y] = states[b, y].real
            levels[keep + 2, 1, y] = states[b, y].imag
        ref = np.full(depth + 1, keep + 2, dtype=np.int64)  # level d is in slot ref[d]
        valid = 0  # levels 0..valid hold the letters the current basis starts with
        probabilities = np.empty(size)
        block_sums = np.empty((size + _BLOCK - 1) // _BLOCK)
        for j in range(letters.shape[0]):
            k = basis_of[j]
            stop = last_letter[k]  # its last X or Y: applied while computing the weights
            reach = min(keep, max(stop, 0))
            start = min(shared[j], valid)
            for d in range(start, reach):
                if letters[k, d] == 0:
                    ref[d + 1] = ref[d]
                else:
                    _rotate(levels[ref[d]], levels[d], 1 << order[d], letters[k, d])
                    ref[d + 1] = d
            valid = max(start, reach)
            final = ref[reach]
            for d in range(reach, stop):  # past the kept levels: work slots
                if letters[k, d] != 0:
                    target = keep if final != keep else keep + 1
                    _rotate(levels[final], levels[target], 1 << order[d], letters[k, d])
                    final = target
            if stop < 0:
                _weights(levels[final], 1, 0, probabilities)
            else:
                _weights(levels[final], 1 << order[stop], letters[k, stop], probabilities)
            # sum out the qubits no term of the basis reads (highest first, so the bits
            # below keep their places): outcomes are then the read qubits' bits only
            width = size
            for f in range(folds.shape[1]):
                if folds[k, f] < 0:
                    break
                bit = 1 << folds[k, f]
                w = 0
                for high in range(0, width, 2 * bit):
                    for low in range(high, high + bit):
                        probabilities[w] = probabilities[low] + probabilities[low + bit]
                        w += 1
                width >>= 1
            blocks = (width + _BLOCK - 1) // _BLOCK
            total = 0.0
            for i in range(blocks):
                part = 0.0
                for y in range(i * _BLOCK, min(width, (i + 1) * _BLOCK)):
                    part += probabilities[y]
                block_sums[i] = part
                total += part
            exps = draws[b, k]
            norm = 0.0
            for s in range(shots + 1):
                norm += exps[s]
            scale = total / norm
            running = exps[0]
            drawn = 0
            cumulative = 0.0
            last = -1
            g0 = basis_segments[k]
            g1 = basis_segments[k + 1]
            for i in range(blocks):
                if drawn >= shots:
                    break
                if running * scale >= cumulative + block_sums[i]:
                    cumulative += block_sums[i]  # no draw in this block
                    if block_sums[i] > 0.0:
                        last = i
                    continue
                inner = cumulative
                for y in range(i * _BLOCK, min(width, (i + 1) * _BLOCK)):
                    inner += probabilities[y]
                    count = 0
                    while drawn < shots and running * scale < inner:
                        drawn += 1
                        count += 1
                        running += exps[drawn]
                    if count:
                        _add_outcome(y, count, b, g0, g1, segment_terms, term_mask, term_coef,
                                     sums, squares)
                cumulative += block_sums[i]
                if block_sums[i] > 0.0:
                    last = i
            if drawn < shots:  # rounding left draws past the running sum: the last outcome
                y = -1
                for x in range(last * _BLOCK, min(width, (last + 1) * _BLOCK)):
                    if probabilities[x] > 0.0:
                        y = x
                _add_outcome(y, shots - drawn, b, g0, g1, segment_terms, term_mask, term_coef,
                             sums, squares)


def _shared_prefixes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows in lexicographic order and, for each, how many leading letters it shares with
    the row before it (0 for the first)."""
    order = np.lexsort(rows.T[::-1]) if rows.shape[0] else np.zeros(0, dtype=np.int64)
    shared = np.zeros(len(order), dtype=np.int64)
    for j in range(1, len(order)):
        same = rows[order[j]] == rows[order[j - 1]]
        shared[j] = len(same) if same.all() else int(np.argmin(same))
    return order.astype(np.int64), shared


def measured_expectations(states: np.ndarray, observables: Sequence[PauliSum], perm: np.ndarray,
                          shots: int, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``shots`` measurements of every state in each qubit-wise commuting basis of
    the observables' terms, and estimate: ``(means, variances of the means)``, each
    ``(B, len(observables))``.

    The outcomes have the distribution of running each basis circuit ``shots`` times (the
    Born weights of the state rotated into the basis), without evolving the state again per
    basis: the state is rotated qubit by qubit in single precision (rotations shared between
    bases with common leading letters), the qubits no term of the basis reads are summed out,
    and the rest sampled in one pass (:func:`_sample_bases`). State ``b`` draws every
    basis from one generator, ``PCG64(seeds[b])``, so its values depend on its seed alone, not
    on how many states share the call. The variance of the mean of a basis is the sample
    variance of its terms' summed values over ``shots``; bases are independent, so they add.
    """
    batch, size = states.shape
    (order, letters, last, folds, basis_of, shared, basis_segments, segment_terms, term_mask,
     term_coef, segment_obs) = _planned("sampling", observables, perm,
                             lambda: _sampling_plan(observables, perm))
    nbases = letters.shape[0]
    keep = int(max(0, min(len(perm), SAMPLE_BUFFER_BYTES // (size * 8) - 3)))
    means = np.zeros((batch, len(observables)))
    variances = np.zeros_like(means)
    group = max(1, DRAWS_CHUNK_BYTES // (8 * max(1, nbases) * (shots + 1)))
    for start in range(0, batch, group):
        part = np.ascontiguousarray(states[start:start + group], dtype=np.complex128)
        draws = np.empty((part.shape[0], nbases, shots + 1))
        for b in range(part.shape[0]):
            generator = np.random.Generator(np.random.PCG64(int(seeds[start + b])))
            generator.standard_exponential(out=draws[b])
        sums = np.zeros((part.shape[0], len(segment_obs)))
        squares = np.zeros_like(sums)
        _sample_bases(part, order, letters, last, folds, basis_of, shared, keep, draws, shots,
                      basis_segments, segment_terms, term_mask, term_coef, sums, squares)
        mean = sums / shots
        spread = np.maximum(squares / shots - mean * mean, 0.0) / shots
        rows = slice(start, start + part.shape[0])
        for g, o in enumerate(segment_obs):  # in segment order: the same sums in every chunk
            means[rows, o] += mean[:, g]
            variances[rows, o] += spread[:, g]
    return means, variances


def _sampling_plan(observables: Sequence[PauliSum], perm: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays :func:`_sample_bases` reads (see there), for these observables measured in
    their qubit-wise commuting bases, and each segment's observable."""
    n = len(perm)
    labels = [label for pauli in observables for label in pauli.labels]
    grouping = group_labels(labels)
    nbases = len(grouping.bases)
    # rotations in physical bit order from bit 0 up: the narrow strides (slow loops) come
    # first, where the most bases share them
    order = np.arange(n, dtype=np.int64)
    logical = np.argsort(np.asarray(perm, dtype=np.int64))  # the qubit on each physical bit
    letters = np.array([[_LETTER[basis[n - 1 - int(logical[d])]] for d in range(n)]
                        for basis in grouping.bases], dtype=np.int64).reshape(nbases, n)
    basis_of, shared = _shared_prefixes(letters)
    last = np.array([max((d for d in range(n) if row[d]), default=-1) for row in letters],
                    dtype=np.int64)
    # segments: the terms of one observable read in one basis, ordered by basis
    members: dict[tuple[int, int], list[tuple[int, float]]] = {}
    offset = 0
    for o, pauli in enumerate(observables):
        for label, coeff in pauli.terms:
            mask = 0
            for q, ch in enumerate(reversed(label)):
                if ch != "I":
                    mask |= 1 << int(perm[q])
            members.setdefault((grouping.term_basis[offset], o), []).append((mask, coeff))
            offset += 1
    keys = sorted(members)
    segment_obs = np.array([o for _, o in keys], dtype=np.int64)
    basis_segments = np.searchsorted([k for k, _ in keys], np.arange(nbases + 1)).astype(np.int64)
    segment_terms = np.cumsum([0] + [len(members[key]) for key in keys]).astype(np.int64)
    term_mask = np.array([m for key in keys for m, _ in members[key]], dtype=np.int64)
    term_coef = np.array([c for key in keys for _, c in members[key]], dtype=np.float64)
    # per basis: the physical bits no term of it reads (summed out before sampling, highest
    # first), and each term's mask over the bits that remain
    read = np.zeros(nbases, dtype=np.int64)
    for (k, _), terms in members.items():
        for mask, _ in terms:
            read[k] |= mask
    folds = np.full((nbases, n), -1, dtype=np.int64)
    for k in range(nbases):
        unread = [bit for bit in reversed(range(n)) if not read[k] >> bit & 1]
        folds[k, :len(unread)] = unread
    term_mask = np.array([_compress(mask, int(read[key[0]]))
                          for key in keys for mask, _ in members[key]], dtype=np.int64)
    return (order, letters, last, folds, basis_of, shared, basis_segments, segment_terms,
            term_mask, term_coef, segment_obs)


def _compress(mask: int, read: int) -> int:
    """``mask``'s bits at the positions of ``read``'s set bits, packed from bit 0 up."""
    out = position = 0
    bit = 0
    while read >> bit:
        if read >> bit & 1:
            out |= (mask >> bit & 1) << position
            position += 1
        bit += 1
    return out
