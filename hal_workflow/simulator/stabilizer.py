"""The stabilizer method: Clifford circuits on a tableau, at thousands of qubits.

A circuit whose gates are all Clifford (``h``, ``s``, ``cx``, ..., and rotations by multiples of
π/2) once its parameters are bound is simulated on an Aaronson-Gottesman tableau (CHP,
quant-ph/0406196): ``2n`` rows of Pauli operators (``n`` destabilizers, ``n`` stabilizers)
stored as bit matrices, so a gate costs O(n) and a measurement O(n²) at worst, and memory is
O(n²) bits instead of 2ⁿ amplitudes.

Sampling:

* **Terminal measurements** (nothing but measurements after the first one): the tableau is
  measured once, symbolically. Each measurement whose outcome is random contributes a Pauli
  ``P_k`` (the stabilizer that anticommuted with it); flipping that outcome is applying
  ``P_k``, which flips exactly the later outcomes on qubits where ``P_k`` has an X part. So the
  outcomes form the affine space ``o + span{P_k restricted to the measured qubits}``, and all
  shots come from one GF(2) matrix product.
* **Mid-circuit measurement, reset and classically controlled Paulis**: Pauli frames (as
  stim's frame simulator): one reference run on the tableau, and per shot only the Pauli
  separating it from the reference, all shots at once.
* **Other classically controlled gates**: the part before the first measurement runs once;
  the rest runs per shot on a copy of the tableau.

Bit order follows the rest of the simulator: qubit ``q`` is bit ``q``; counts keys cover every
classical bit, clbit 0 rightmost.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
    evaluate_param,
)

__all__ = ["MAX_QUBITS", "StabilizerProgram", "compile_clifford", "is_clifford"]

MAX_QUBITS = 4096
"""Widest circuit the stabilizer method takes (two 2n x n bit matrices: 32 MiB at 4096)."""

_ANGLE_TOL = 1e-9

# Primitive instructions of a compiled program: ("h"|"s"|"sdg"|"x"|"y"|"z", a),
# ("cx", a, b), ("swap", a, b), ("measure", q, c), ("reset", q), ("if", clbits, value, body).
Instr = tuple


def _quarter_turns(angle: float) -> int | None:
    """``angle`` as a number of π/2 turns (mod 4), or None when it is not a multiple."""
    k = angle / (math.pi / 2)
    nearest = round(k)
    if abs(k - nearest) > _ANGLE_TOL * max(1.0, abs(k)):
        return None
    return nearest % 4


def _rz(k: int, a: int) -> list[Instr]:
    return {0: [], 1: [("s", a)], 2: [("z", a)], 3: [("sdg", a)]}[k]


def _rx(k: int, a: int) -> list[Instr]:
    return [("h", a), *_rz(k, a), ("h", a)] if k else []


def _ry(k: int, a: int) -> list[Instr]:
    # ry(θ) = S · rx(θ) · S†: in circuit order sdg, rx, s
    return [("sdg", a), *_rx(k, a), ("s", a)] if k else []


_FIXED: dict[str, Callable[..., list[Instr]]] = {
    "id": lambda a: [],
    "x": lambda a: [("x", a)],
    "y": lambda a: [("y", a)],
    "z": lambda a: [("z", a)],
    "h": lambda a: [("h", a)],
    "s": lambda a: [("s", a)],
    "sdg": lambda a: [("sdg", a)],
    "sx": lambda a: [("h", a), ("s", a), ("h", a)],
    "sxdg": lambda a: [("h", a), ("sdg", a), ("h", a)],
    "cx": lambda a, b: [("cx", a, b)],
    "CX": lambda a, b: [("cx", a, b)],
    "cy": lambda a, b: [("sdg", b), ("cx", a, b), ("s", b)],
    "cz": lambda a, b: [("h", b), ("cx", a, b), ("h", b)],
    "swap": lambda a, b: [("swap", a, b)],
}
_ROTATIONS: dict[str, Callable[[int, int], list[Instr]]] = {
    "rz": _rz, "p": _rz, "phase": _rz, "u1": _rz, "rx": _rx, "ry": _ry,
}


_INVERSE = {"s": "sdg", "sdg": "s"}


def _gate(op: GateOp, bindings: Mapping[str, float]) -> list[Instr] | None:
    """The primitives of one gate, or None when it is not Clifford (as bound)."""
    if op.modifiers:
        kinds = [m.kind for m in op.modifiers]
        if kinds == ["inv"]:  # the inverse: primitives reversed, s <-> sdg
            inner = _gate(GateOp(op.name, op.qubits, op.params), bindings)
            if inner is None:
                return None
            return [(_INVERSE.get(i[0], i[0]), *i[1:]) for i in reversed(inner)]
        if (kinds == ["ctrl"] and op.modifiers[0].argument == 1 and op.name in ("x", "y", "z")
                and not op.params):
            return _FIXED["c" + op.name](*op.qubits)
        return None
    name, qubits = op.name, op.qubits
    if name in _FIXED:
        return _FIXED[name](*qubits)
    if name == "gphase":
        return []
    angles = [evaluate_param(p, bindings) for p in op.params]
    turns = [_quarter_turns(a) for a in angles]
    if any(t is None for t in turns):
        return None
    if name in _ROTATIONS:
        return _ROTATIONS[name](turns[0], qubits[0])  # type: ignore[arg-type]
    if name in ("U", "u", "u3", "u2"):
        if name == "u2":
            turns = [1, *turns]
        theta, phi, lam = turns  # U = rz(φ) ry(θ) rz(λ), up to a global phase
        a = qubits[0]
        return [*_rz(lam, a), *_ry(theta, a), *_rz(phi, a)]  # type: ignore[arg-type]
    if name in ("cp", "cphase", "cu1") and turns[0] in (0, 2):
        return [] if turns[0] == 0 else _FIXED["cz"](*qubits)
    return None


def _compile(ops: Sequence[Operation], bindings: Mapping[str, float]) -> list[Instr] | None:
    out: list[Instr] = []
    for op in ops:
        if isinstance(op, GateOp):
            prims = _gate(op, bindings)
            if prims is None:
                return None
            out.extend(prims)
        elif isinstance(op, MeasureOp):
            out.append(("measure", op.qubit, op.clbit))
        elif isinstance(op, ResetOp):
            out.append(("reset", op.qubit))
        elif isinstance(op, BarrierOp):
            continue
        elif isinstance(op, IfOp):
            body = _compile(op.body, bindings)
            other = _compile(op.else_body, bindings)
            if body is None or other is None:
                return None
            cond = op.condition
            out.append(("if", cond.clbits, cond.value, tuple(body), tuple(other)))
        else:  # pragma: no cover - the IR has no other operations
            return None
    return out


def is_clifford(lowered: LoweredCircuit, bindings: Mapping[str, float] | None = None) -> bool:
    """True when every gate of ``lowered`` (with ``bindings``) is a Clifford gate."""
    return _compile(lowered.operations, bindings or {}) is not None


# ------------------------------------------------------------------------------------------
# the tableau
# ------------------------------------------------------------------------------------------


class Tableau:
    """CHP tableau of an n-qubit stabilizer state, qubit-major: ``x[q]`` is qubit q's X bits
    over the 2n rows (rows 0..n-1 destabilizers, n..2n-1 stabilizers); ``r`` the signs."""

    __slots__ = ("n", "r", "x", "z")

    def __init__(self, n: int, x: np.ndarray | None = None, z: np.ndarray | None = None,
                 r: np.ndarray | None = None) -> None:
        self.n = n
        if x is None or z is None or r is None:
            eye = np.eye(n, dtype=bool)
            zeros = np.zeros((n, n), dtype=bool)
            self.x = np.concatenate([eye, zeros], axis=1)  # destabilizer i = X_i
            self.z = np.concatenate([zeros, eye], axis=1)  # stabilizer i = Z_i
            self.r = np.zeros(2 * n, dtype=bool)
        else:
            self.x, self.z, self.r = x, z, r

    def copy(self) -> Tableau:
        return Tableau(self.n, self.x.copy(), self.z.copy(), self.r.copy())

    # -- gates (conjugation rules of CHP) --------------------------------------------------
    def apply(self, instr: Instr) -> None:
        kind = instr[0]
        x, z, r = self.x, self.z, self.r
        if kind == "h":
            a = instr[1]
            r ^= x[a] & z[a]
            x[a], z[a] = z[a].copy(), x[a].copy()
        elif kind == "s":
            a = instr[1]
            r ^= x[a] & z[a]
            z[a] ^= x[a]
        elif kind == "sdg":
            a = instr[1]
            r ^= x[a] & ~z[a]
            z[a] ^= x[a]
        elif kind == "x":
            r ^= z[instr[1]]
        elif kind == "z":
            r ^= x[instr[1]]
        elif kind == "y":
            r ^= x[instr[1]] ^ z[instr[1]]
        elif kind == "cx":
            a, b = instr[1], instr[2]
            r ^= x[a] & z[b] & ~(x[b] ^ z[a])
            x[b] ^= x[a]
            z[a] ^= z[b]
        elif kind == "swap":
            a, b = instr[1], instr[2]
            x[[a, b]] = x[[b, a]]
            z[[a, b]] = z[[b, a]]
        else:  # pragma: no cover - compiled programs hold nothing else here
            raise ValueError(f"not a gate: {instr!r}")

    # -- measurement ---------------------------------------------------------------------
    @staticmethod
    def _phase_sum(x1: np.ndarray, z1: np.ndarray, x2: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """Σ_j g(x1, z1, x2, z2) over qubits (axis 0): the power of i picked up when the
        Pauli (x1, z1) multiplies each Pauli (x2, z2) (columns of the 2-D arrays)."""
        x1 = x1.astype(np.int8)[:, None] if x1.ndim == 1 else x1.astype(np.int8)
        z1 = z1.astype(np.int8)[:, None] if z1.ndim == 1 else z1.astype(np.int8)
        x2 = x2.astype(np.int8)
        z2 = z2.astype(np.int8)
        g = (x1 & z1) * (z2 - x2) + (x1 & (1 - z1)) * (z2 * (2 * x2 - 1)) \
            + ((1 - x1) & z1) * (x2 * (1 - 2 * z2))
        return g.sum(axis=0, dtype=np.int64)

    def _rowsum_into(self, rows: np.ndarray, p: int) -> None:
        """Rows ``rows`` := row p x row (each), phases included (CHP's rowsum, vectorised)."""
        x, z, r = self.x, self.z, self.r
        total = 2 * r[rows].astype(np.int64) + 2 * int(r[p]) + self._phase_sum(
            x[:, p], z[:, p], x[:, rows], z[:, rows])
        r[rows] = (total % 4) == 2
        x[:, rows] ^= x[:, p][:, None]
        z[:, rows] ^= z[:, p][:, None]

    def measure(self, a: int, outcome_if_random: int) -> tuple[int, bool, np.ndarray | None]:
        """Measure qubit ``a`` in Z. Returns (outcome, random?, the X bits of the Pauli that
        flips this outcome when it was random)."""
        n, x, z, r = self.n, self.x, self.z, self.r
        stab = np.flatnonzero(x[a, n:])
        if stab.size:
            p = int(stab[0]) + n
            flip = x[:, p].copy()
            others = np.flatnonzero(x[a])
            others = others[others != p]
            if others.size:
                self._rowsum_into(others, p)
            x[:, p - n], z[:, p - n], r[p - n] = x[:, p], z[:, p], r[p]
            x[:, p] = False
            z[:, p] = False
            z[a, p] = True
            r[p] = bool(outcome_if_random)
            return int(outcome_if_random), True, flip
        # deterministic: ±Z_a is the product of the stabilizers whose destabilizers have an X
        # on a; its sign is the outcome.
        rows = np.flatnonzero(x[a, :n]) + n
        return self._product_sign(rows), False, None

    def _product_sign(self, rows: np.ndarray) -> int:
        """The sign bit of the ordered product of tableau rows ``rows`` (commuting Paulis).

        A row is (-1)^r i^(x.z) X^x Z^z. Moving every X left of every Z costs (-1)^(z_i.x_j)
        for each pair i < j, so the product is (-1)^(Σr) i^(Σ x_i.z_i) (-1)^(Σ_{i<j} z_i.x_j)
        X^(⊕x) Z^(⊕z), and rewriting i^e as (-1)^(e/2) i^(X.Z) gives its sign in one pass.
        """
        if rows.size == 0:
            return 0
        xs = self.x[:, rows].astype(np.int64)
        zs = self.z[:, rows].astype(np.int64)
        z_before = np.cumsum(zs, axis=1) - zs  # z bits of the rows before each one
        total_x = xs.sum(axis=1) & 1
        total_z = zs.sum(axis=1) & 1
        exponent = int((xs & zs).sum()) + 2 * int((xs * z_before).sum()) \
            - int((total_x & total_z).sum())
        return (int(self.r[rows].sum()) + (exponent % 4) // 2) & 1


# ------------------------------------------------------------------------------------------
# programs
# ------------------------------------------------------------------------------------------


@dataclass
class StabilizerProgram:
    """A bound Clifford circuit, ready to sample (see the module docstring)."""

    num_qubits: int
    num_clbits: int
    prefix: list[Instr]           # runs once
    rest: list[Instr]             # per shot (empty when measurements are terminal)
    terminal: list[tuple[int, int]]  # (qubit, clbit) of terminal measurements
    # terminal measurements: (reference, flips) over the clbits, computed once (it does not
    # depend on the shots' random bits), so a program run again only draws and counts
    _space: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)
    _tables: np.ndarray | None = field(default=None, init=False, repr=False)
    _keys: list[str] | None = field(default=None, init=False, repr=False)

    def sample(self, shots: int, rng: np.random.Generator,
               cancelled: Callable[[], bool] | None = None) -> dict[str, int]:
        """``shots`` samples as counts over every classical bit, clbit 0 rightmost."""
        if not self.rest:
            return self._sample_terminal(shots, rng, cancelled)
        base = self._prepared(cancelled)
        if _pauli_feedback_only(self.rest):
            bits = self._sample_frames(base, shots, rng, cancelled)
        else:
            bits = np.zeros((shots, self.num_clbits), dtype=np.uint8)
            for shot in range(shots):
                if cancelled is not None and shot % 16 == 0 and cancelled():
                    raise JobCancelled
                bits[shot] = self._one_shot(base.copy(), rng)
        return _counts(bits, self.num_clbits)

    def _prepared(self, cancelled: Callable[[], bool] | None) -> Tableau:
        """The tableau after the gates before the first measurement."""
        base = Tableau(self.num_qubits)
        for instr in self.prefix:
            base.apply(instr)
        if cancelled is not None and cancelled():
            raise JobCancelled
        return base

    def _clbit_space(self, cancelled: Callable[[], bool] | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Terminal outcomes as ``reference ⊕ c·flips`` over the classical bits (one column
        per clbit; a clbit measured twice keeps the later measurement, one never measured
        stays 0)."""
        if self._space is None:
            qubits = np.array([q for q, _ in self.terminal], dtype=np.int64)
            reference, flips = outcome_space(self._prepared(cancelled), qubits)
            last = {clbit: j for j, (_, clbit) in enumerate(self.terminal)}
            ref = np.zeros(self.num_clbits, dtype=np.uint8)
            rows = np.zeros((flips.shape[0], self.num_clbits), dtype=np.uint8)
            for clbit, j in last.items():
                ref[clbit] = reference[j]
                rows[:, clbit] = flips[:, j]
            self._space = ref, rows[rows.any(axis=1)]
        return self._space

    def _sample_terminal(self, shots: int, rng: np.random.Generator,
                         cancelled: Callable[[], bool] | None) -> dict[str, int]:
        reference, flips = self._clbit_space(cancelled)
        k, width = flips.shape
        if width and k <= _SMALL_SPACE_BITS:
            # few outcomes, equally likely: a multinomial draw over their cached keys
            keys = self._space_keys()
            hits = rng.multinomial(shots, np.full(len(keys), 1.0 / len(keys)))
            out: dict[str, int] = {}
            for i in np.flatnonzero(hits).tolist():
                out[keys[i]] = out.get(keys[i], 0) + int(hits[i])  # dependent flips: sum
            return out
        if width and width <= _INT_KEY_BITS:  # outcomes as integers: XOR of the drawn flips
            values = np.empty(shots, dtype=np.int64)
            values.fill(self._int_reference())
            if k:
                # k uniform random bits per shot, as bytes; byte j selects the XOR of flips
                # 8j..8j+7 from a 256-entry table (k/8 lookups per shot instead of k)
                tables = self._byte_tables()
                draws = rng.integers(0, 256, size=(tables.shape[0], shots), dtype=np.uint8)
                for table, byte in zip(tables, draws, strict=True):
                    values ^= table[byte]
            return int_counts(values, width)
        out = np.broadcast_to(reference, (shots, width)).copy()
        if k:
            coefficients = rng.integers(0, 2, size=(shots, k), dtype=np.uint8)
            product = coefficients.astype(np.float32) @ flips.astype(np.float32)
            out ^= product.astype(np.int64).astype(np.uint8) & 1
        return _counts(out, width)

    def _int_reference(self) -> int:
        reference, _ = self._clbit_space(None)
        return int(reference.astype(np.int64) @ _WEIGHTS[: reference.shape[0]])

    def _byte_tables(self) -> np.ndarray:
        """``tables[j, b]``: the XOR of the flips (as integers) that the bits of byte ``b``
        select among flips ``8j .. 8j+7``."""
        if self._tables is None:
            _, flips = self._clbit_space(None)
            k, width = flips.shape
            masks = np.zeros(-(-k // 8) * 8, dtype=np.int64)
            masks[:k] = flips.astype(np.int64) @ _WEIGHTS[:width]
            choose = (np.arange(256)[:, None] >> np.arange(8)) & 1 == 1  # (byte, bit)
            self._tables = np.bitwise_xor.reduce(
                np.where(choose[None], masks.reshape(-1, 1, 8), 0), axis=2)
        return self._tables

    def _space_keys(self) -> list[str]:
        """The count key of every outcome ``reference ^ (flips selected by c)``, by ``c``."""
        if self._keys is None:
            reference, flips = self._clbit_space(None)
            k = flips.shape[0]
            rows = np.broadcast_to(reference, (1 << k, reference.shape[0])).copy()
            for j in range(k):
                rows[(np.arange(1 << k) >> j) & 1 == 1] ^= flips[j]
            self._keys = [row[::-1].tobytes().translate(_ASCII_BITS).decode() for row in rows]
        return self._keys

    @property
    def cheap(self) -> bool:
        """Whether sampling is cheap enough to run inside ``submit``: terminal measurements
        whose outcome space the program has at hand (it ran before): cached keys of a small
        space, or byte tables of at most :data:`_INLINE_TABLES` bytes."""
        return not self.rest and (self._keys is not None or (
            self._tables is not None and self._tables.shape[0] <= _INLINE_TABLES))

    def _sample_frames(self, base: Tableau, shots: int, rng: np.random.Generator,
                       cancelled: Callable[[], bool] | None) -> np.ndarray:
        """Pauli-frame sampling (as stim's frame simulator): one reference run on the tableau,
        random outcomes fixed to 0, and per shot only the Pauli that separates that shot from
        the reference, propagated through the Cliffords as X and Z bits. Each shot starts
        with a random Z frame on every qubit (|0> does not see it); gates turn it into the
        randomness of later measurements, and a measurement re-randomises its qubit's Z.
        Classically controlled Paulis add to the frames of the shots whose condition differs
        from the reference's."""
        n = self.num_qubits
        reference = base.copy()
        fx = np.zeros((n, shots), dtype=bool)
        fz = rng.integers(0, 2, size=(n, shots), dtype=np.uint8).astype(bool)
        for instr in self.prefix:  # the frames start at |0...0>, before the prefix
            _frame_gate(instr, fx, fz)
        ref_bits = np.zeros(self.num_clbits, dtype=bool)
        shot_bits = np.zeros((self.num_clbits, shots), dtype=bool)
        for step, instr in enumerate(self.rest):
            if cancelled is not None and step % 64 == 0 and cancelled():
                raise JobCancelled
            kind = instr[0]
            if kind == "measure":
                q, c = instr[1], instr[2]
                outcome, _, _ = reference.measure(q, 0)
                ref_bits[c] = bool(outcome)
                shot_bits[c] = fx[q] ^ bool(outcome)
                fz[q] = rng.integers(0, 2, size=shots, dtype=np.uint8).astype(bool)
            elif kind == "reset":
                q = instr[1]
                outcome, _, _ = reference.measure(q, 0)
                if outcome:
                    reference.apply(("x", q))
                fx[q] = False
                fz[q] = rng.integers(0, 2, size=shots, dtype=np.uint8).astype(bool)
            elif kind == "if":
                _, cond_bits, value, body, other = instr
                ref_true = all(ref_bits[c] == bool(value >> i & 1)
                               for i, c in enumerate(cond_bits))
                shot_true = np.ones(shots, dtype=bool)
                for i, c in enumerate(cond_bits):
                    shot_true &= shot_bits[c] == bool(value >> i & 1)
                for pauli in body if ref_true else other:
                    reference.apply(pauli)
                # the shot's Pauli times the reference's: body x other where they differ
                differs = shot_true ^ ref_true
                for pauli in (*body, *other):
                    q = pauli[1]
                    if pauli[0] in ("x", "y"):
                        fx[q] ^= differs
                    if pauli[0] in ("z", "y"):
                        fz[q] ^= differs
            else:
                reference.apply(instr)
                _frame_gate(instr, fx, fz)
        return shot_bits.T.astype(np.uint8)

    def _one_shot(self, tableau: Tableau, rng: np.random.Generator) -> np.ndarray:
        clbits = np.zeros(self.num_clbits, dtype=np.uint8)
        self._run(self.rest, tableau, clbits, rng)
        return clbits

    def _run(self, instrs: Sequence[Instr], tableau: Tableau, clbits: np.ndarray,
             rng: np.random.Generator) -> None:
        for instr in instrs:
            kind = instr[0]
            if kind == "measure":
                outcome, _, _ = tableau.measure(instr[1], int(rng.integers(0, 2)))
                clbits[instr[2]] = outcome
            elif kind == "reset":
                outcome, _, _ = tableau.measure(instr[1], int(rng.integers(0, 2)))
                if outcome:
                    tableau.apply(("x", instr[1]))
            elif kind == "if":
                _, cond_bits, value, body, other = instr
                held = sum(int(clbits[c]) << i for i, c in enumerate(cond_bits))
                self._run(body if held == value else other, tableau, clbits, rng)
            else:
                tableau.apply(instr)


# ------------------------------------------------------------------------------------------
# the outcome space of terminal Z measurements, on bit-packed rows
# ------------------------------------------------------------------------------------------

_INT_KEY_BITS = 62
"""Widest register whose outcomes are counted as integers (int64 keys)."""

_WEIGHTS = np.left_shift(np.int64(1), np.arange(_INT_KEY_BITS, dtype=np.int64))
_SMALL_SPACE_BITS = 10
"""Terminal outcome spaces of at most 2^this outcomes are drawn as one multinomial."""
_INLINE_TABLES = 16
"""Programs of at most this many byte tables (128 random outcome bits) count as cheap."""


def int_counts(values: np.ndarray, width: int) -> dict[str, int]:
    """Counts keyed by ``width``-character bitstrings (bit 0 rightmost) of integer outcomes
    (``width`` <= 62): the keys are written as one ASCII buffer and split, since formatting
    each integer in Python costs more than sampling a Clifford circuit's shots."""
    ordered = np.sort(values)
    first = np.empty(ordered.shape[0], dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    keys, counts = ordered[starts], np.diff(starts, append=ordered.shape[0])
    rows = np.empty((keys.shape[0], width + 1), dtype=np.uint8)
    rows[:, width] = ord("\n")
    bits = np.unpackbits(keys.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    np.add(bits[:, 64 - width:], ord("0"), out=rows[:, :width])
    text = rows.tobytes().decode("ascii")
    return dict(zip(text.split("\n"), counts.tolist(), strict=False))  # one trailing ""


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a 2-D uint64 array (or of a 1-D one, as a scalar array)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
    as_bytes = words.view(np.uint8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=-1)


def _pack(bits: np.ndarray) -> np.ndarray:
    """Rows of booleans -> rows of uint64 words (bit j of a row is bit j%64 of word j//64)."""
    packed = np.packbits(bits, axis=1, bitorder="little")
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


def _column(words: np.ndarray, col: int) -> np.ndarray:
    return ((words[:, col >> 6] >> np.uint64(col & 63)) & np.uint64(1)).astype(bool)


def outcome_space(tableau: Tableau, qubits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measuring ``qubits`` (in order, Z basis) gives ``reference ⊕ c·flips`` for uniformly
    random bits ``c``: returns ``reference`` (one bit per measurement) and ``flips`` (one row
    per independent random bit). Qiskit-free GF(2) linear algebra on packed stabilizer rows.

    The stabilizers are brought to a form where the first ones have independent X parts and
    the rest are ±Z-strings; each ±Z^z says ``z·b = r`` for the outcome bits ``b``, so the
    outcomes are the solutions of that linear system: a particular solution plus its null
    space.
    """
    n = tableau.n
    x = _pack(tableau.x[:, n:].T)  # row i: stabilizer i
    z = _pack(tableau.z[:, n:].T)
    r = tableau.r[n:].copy()
    used = np.zeros(n, dtype=bool)
    # 1. eliminate X parts: pivot rows take them, the others become Z-strings
    for col in range(n):
        candidates = np.flatnonzero(_column(x, col) & ~used)
        if not candidates.size:
            continue
        p = int(candidates[0])
        used[p] = True
        targets = np.flatnonzero(_column(x, col))
        targets = targets[targets != p]
        if targets.size:
            _multiply_rows(x, z, r, targets, p)
    zrows = np.flatnonzero(~used)
    zc, rc = z[zrows].copy(), r[zrows].copy()
    # 2. reduced row echelon form of z·b = r
    pivot_of_row: list[int] = []
    top = 0
    for col in range(n):
        if top == len(zrows):
            break
        below = np.flatnonzero(_column(zc[top:], col)) + top
        if not below.size:
            continue
        p = int(below[0])
        if p != top:
            zc[[top, p]] = zc[[p, top]]
            rc[[top, p]] = rc[[p, top]]
        others = np.flatnonzero(_column(zc, col))
        others = others[others != top]
        zc[others] ^= zc[top]
        rc[others] ^= rc[top]
        pivot_of_row.append(col)
        top += 1
    pivots = np.array(pivot_of_row, dtype=np.int64)
    free = np.setdiff1d(np.arange(n), pivots)
    # 3. particular solution (free bits 0) and null space, restricted to ``qubits``
    solution = np.zeros(n, dtype=np.uint8)
    solution[pivots] = rc[: len(pivots)]
    row_of_pivot = {int(c): i for i, c in enumerate(pivots)}
    free_index = {int(f): k for k, f in enumerate(free)}
    flips = np.zeros((len(free), len(qubits)), dtype=np.uint8)
    unpacked: dict[int, np.ndarray] = {}
    for j, q in enumerate(qubits):
        q = int(q)
        if q in free_index:
            flips[free_index[q], j] = 1
        else:
            i = row_of_pivot[q]
            if i not in unpacked:
                unpacked[i] = np.unpackbits(zc[i].view(np.uint8), bitorder="little")[:n]
            flips[:, j] = unpacked[i][free]
    keep = flips.any(axis=1)
    return solution[qubits], flips[keep]


def _multiply_rows(x: np.ndarray, z: np.ndarray, r: np.ndarray, targets: np.ndarray,
                   p: int) -> None:
    """Rows ``targets`` := row · row p, for commuting Paulis (-1)^r i^(x.z) X^x Z^z."""
    xa, za = x[targets], z[targets]
    xb, zb = x[p], z[p]
    nx, nz = xa ^ xb, za ^ zb
    exponent = (_popcount_rows(xa & za) + int(_popcount_rows(xb & zb))
                + 2 * _popcount_rows(za & xb) - _popcount_rows(nx & nz))
    r[targets] = r[targets] ^ r[p] ^ ((exponent % 4) // 2).astype(bool)
    x[targets] = nx
    z[targets] = nz


def _pauli_feedback_only(instrs: Sequence[Instr]) -> bool:
    """Whether every classically controlled block holds only Pauli gates (frame-friendly)."""
    for instr in instrs:
        if instr[0] == "if" and not all(
            i[0] in ("x", "y", "z") for branch in (instr[3], instr[4]) for i in branch
        ):
            return False
    return True


def _frame_gate(instr: Instr, fx: np.ndarray, fz: np.ndarray) -> None:
    """Propagate Pauli frames (signs do not matter) through one Clifford primitive."""
    kind = instr[0]
    if kind == "h":
        a = instr[1]
        fx[a], fz[a] = fz[a].copy(), fx[a].copy()
    elif kind in ("s", "sdg"):
        a = instr[1]
        fz[a] ^= fx[a]
    elif kind == "cx":
        a, b = instr[1], instr[2]
        fx[b] ^= fx[a]
        fz[a] ^= fz[b]
    elif kind == "swap":
        a, b = instr[1], instr[2]
        fx[[a, b]] = fx[[b, a]]
        fz[[a, b]] = fz[[b, a]]
    # x, y, z: Paulis commute with frames up to sign


def _counts(bits: np.ndarray, num_clbits: int) -> dict[str, int]:
    if num_clbits == 0:
        return {"": int(bits.shape[0])}
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return {
        bits[i, ::-1].tobytes().translate(_ASCII_BITS).decode(): int(n)
        for i, n in zip(first, counts, strict=True)
    }


_ASCII_BITS = bytes.maketrans(b"\x00\x01", b"01")


_PROGRAMS: OrderedDict[tuple[int, tuple[tuple[str, float], ...]],
                      tuple[LoweredCircuit, StabilizerProgram | None]] = OrderedDict()
_PROGRAMS_LOCK = threading.Lock()
_PROGRAMS_SIZE = 64
"""Compiled programs kept per process (most recently used), so a circuit run again (a
repeated job, the same text parsed once by the conversion cache) skips compiling and its
terminal outcome space."""


def is_compiled(lowered: LoweredCircuit) -> bool:
    """Whether :func:`compile_clifford` has ``lowered`` (with no bindings) at hand."""
    with _PROGRAMS_LOCK:
        hit = _PROGRAMS.get((id(lowered), ()))
    return hit is not None and hit[0] is lowered and hit[1] is not None


def compile_clifford(lowered: LoweredCircuit,
                     bindings: Mapping[str, float] | None = None) -> StabilizerProgram | None:
    """The stabilizer program of ``lowered`` bound with ``bindings``, or None when a gate is
    not Clifford (the caller then uses the statevector method). Kept per process for the
    last few (circuit, bindings) pairs."""
    key = (id(lowered), tuple(sorted((str(k), float(v)) for k, v in (bindings or {}).items())))
    with _PROGRAMS_LOCK:
        hit = _PROGRAMS.get(key)
        if hit is not None and hit[0] is lowered:
            _PROGRAMS.move_to_end(key)
            return hit[1]
    program = _compile_clifford(lowered, bindings)
    with _PROGRAMS_LOCK:
        _PROGRAMS[key] = (lowered, program)  # the circuit is held, so its id stays unique
        while len(_PROGRAMS) > _PROGRAMS_SIZE:
            _PROGRAMS.popitem(last=False)
    return program


def _compile_clifford(lowered: LoweredCircuit,
                      bindings: Mapping[str, float] | None) -> StabilizerProgram | None:
    instrs = _compile(lowered.operations, bindings or {})
    if instrs is None:
        return None
    first = next((i for i, ins in enumerate(instrs) if ins[0] in ("measure", "reset", "if")),
                 len(instrs))
    prefix, tail = instrs[:first], instrs[first:]
    if all(ins[0] == "measure" for ins in tail):
        terminal = [(ins[1], ins[2]) for ins in tail]
        return StabilizerProgram(lowered.num_qubits, lowered.num_clbits, prefix, [], terminal)
    return StabilizerProgram(lowered.num_qubits, lowered.num_clbits, prefix, tail, [])
