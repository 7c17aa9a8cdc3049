"""Dense matrices of OpenQASM 3's standard gates, and the gate modifiers applied to them.

Every matrix function is vectorised over a batch of parameter values: parameters arrive as
arrays of shape ``(B,)`` (or scalars) and the result has shape ``(B, d, d)``. One code path thus
serves a single run (``B = 1``) and a parameter sweep (``B`` bindings at once).

Conventions (the same as Qiskit's, so results compare directly with ``qiskit.quantum_info``):

* a matrix on qubits ``(q0, q1, ...)`` is little-endian: bit ``j`` of a row/column index is the
  state of ``q_j``;
* named gates carry Qiskit's global phases (``x`` is ``[[0, 1], [1, 0]]``, ``rz`` is
  ``diag(e^{-iθ/2}, e^{iθ/2})``, ``cu`` applies ``e^{iγ}`` on the controlled block);
* ``pow(k) @ g`` scales the angle of a rotation-family gate (``rx``, ``ry``, ``rz``, ``p``,
  ``u1``, ``gphase``; ``z``, ``s``, ``sdg``, ``t``, ``tdg`` as phase gates), as Qiskit's gates
  do; any other gate gets the principal power with the branch cut rotated by ``π·1e-12``, as
  ``qiskit.quantum_info.Operator.power`` does, so ``pow(0.5) @ x`` is ``sx``.

Controlled gates are kept as *base matrix + controls* (``ccx`` is ``x`` with two controls): the
fusion planner expands them to dense blocks only when that pays off, and the kernels apply
many-control gates without ever building a ``2^(c+t)`` matrix.
"""

from __future__ import annotations

import cmath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import CodeType

import numpy as np

from hal_workflow.circuits.ir import Expr, GateOp, Param

_SQ2 = 1.0 / np.sqrt(2.0)
_BRANCH_CUT = cmath.pi * 1e-12  # same rotation as qiskit.quantum_info.Operator.power

MatrixFn = Callable[..., np.ndarray]


def _stack(rows: Sequence[Sequence[object]], batch: int) -> np.ndarray:
    """Build a ``(B, d, d)`` complex array from a nested list of scalars or ``(B,)`` arrays."""
    d = len(rows)
    out = np.empty((batch, d, d), dtype=np.complex128)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            out[:, i, j] = value
    return out


def _batch(*params: np.ndarray) -> int:
    return max((np.size(p) for p in params), default=1)


def _const(matrix: Sequence[Sequence[complex]]) -> MatrixFn:
    fixed = np.asarray(matrix, dtype=np.complex128)[None]

    def build(batch: int = 1) -> np.ndarray:
        return np.broadcast_to(fixed, (batch, *fixed.shape[1:]))

    return build


def _phase(lam: np.ndarray) -> np.ndarray:
    return _stack([[1.0, 0.0], [0.0, np.exp(1j * lam)]], _batch(lam))


def _rx(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return _stack([[c, -1j * s], [-1j * s, c]], _batch(theta))


def _ry(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return _stack([[c, -s], [s, c]], _batch(theta))


def _rz(lam: np.ndarray) -> np.ndarray:
    return _stack([[np.exp(-0.5j * lam), 0.0], [0.0, np.exp(0.5j * lam)]], _batch(lam))


def _u(theta: np.ndarray, phi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return _stack(
        [[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]],
        _batch(theta, phi, lam),
    )


def _u2(phi: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return _u(np.full(_batch(phi, lam), np.pi / 2), phi, lam)


def _cu_base(theta: np.ndarray, phi: np.ndarray, lam: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    return _u(theta, phi, lam) * np.exp(1j * np.asarray(gamma, dtype=float)).reshape(-1, 1, 1)


def _gphase(theta: np.ndarray) -> np.ndarray:
    return np.exp(1j * np.asarray(theta, dtype=float)).reshape(-1, 1, 1)


@dataclass(frozen=True)
class GateDef:
    """A standard gate as ``controls`` control qubits on a base matrix.

    ``build(*params)`` returns the base matrix batch; ``diagonal`` says the base matrix is
    diagonal for every parameter value (structure the planner relies on, never numerics).
    """

    base_qubits: int
    num_params: int
    build: MatrixFn
    controls: int = 0
    diagonal: bool = False

    @property
    def num_qubits(self) -> int:
        return self.base_qubits + self.controls


_X = _const([[0, 1], [1, 0]])
_Y = _const([[0, -1j], [1j, 0]])
_Z = _const([[1, 0], [0, -1]])
_H = _const([[_SQ2, _SQ2], [_SQ2, -_SQ2]])
_SWAP = _const([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])

GATES: dict[str, GateDef] = {
    "gphase": GateDef(0, 1, _gphase, diagonal=True),
    "id": GateDef(1, 0, _const([[1, 0], [0, 1]]), diagonal=True),
    "x": GateDef(1, 0, _X),
    "y": GateDef(1, 0, _Y),
    "z": GateDef(1, 0, _Z, diagonal=True),
    "h": GateDef(1, 0, _H),
    "s": GateDef(1, 0, _const([[1, 0], [0, 1j]]), diagonal=True),
    "sdg": GateDef(1, 0, _const([[1, 0], [0, -1j]]), diagonal=True),
    "t": GateDef(1, 0, _const([[1, 0], [0, cmath.exp(0.25j * cmath.pi)]]), diagonal=True),
    "tdg": GateDef(1, 0, _const([[1, 0], [0, cmath.exp(-0.25j * cmath.pi)]]), diagonal=True),
    "sx": GateDef(1, 0, _const([[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]])),
    "p": GateDef(1, 1, _phase, diagonal=True),
    "phase": GateDef(1, 1, _phase, diagonal=True),
    "u1": GateDef(1, 1, _phase, diagonal=True),
    "rx": GateDef(1, 1, _rx),
    "ry": GateDef(1, 1, _ry),
    "rz": GateDef(1, 1, _rz, diagonal=True),
    "u2": GateDef(1, 2, _u2),
    "u3": GateDef(1, 3, _u),
    "U": GateDef(1, 3, _u),
    "cx": GateDef(1, 0, _X, controls=1),
    "CX": GateDef(1, 0, _X, controls=1),
    "cy": GateDef(1, 0, _Y, controls=1),
    "cz": GateDef(1, 0, _Z, controls=1, diagonal=True),
    "ch": GateDef(1, 0, _H, controls=1),
    "cp": GateDef(1, 1, _phase, controls=1, diagonal=True),
    "cphase": GateDef(1, 1, _phase, controls=1, diagonal=True),
    "crx": GateDef(1, 1, _rx, controls=1),
    "cry": GateDef(1, 1, _ry, controls=1),
    "crz": GateDef(1, 1, _rz, controls=1, diagonal=True),
    "cu": GateDef(1, 4, _cu_base, controls=1),
    "swap": GateDef(2, 0, _SWAP),
    "ccx": GateDef(1, 0, _X, controls=2),
    "cswap": GateDef(2, 0, _SWAP, controls=1),
}
"""Every gate of ``stdgates.inc`` plus ``U`` and ``gphase``, by OpenQASM name."""

GATE_SET = frozenset(GATES)


def _parity(build: MatrixFn) -> MatrixFn:
    """``cx a, b; g b; cx a, b`` for a diagonal ``g = diag(d0, d1)``: the two-qubit diagonal
    ``d[a ^ b]`` over ``(a, b)``."""

    def parity(*args: np.ndarray) -> np.ndarray:
        d = np.diagonal(build(*args), axis1=-2, axis2=-1)
        out = np.zeros((d.shape[0], 4, 4), dtype=np.complex128)
        for i, bit in enumerate((0, 1, 1, 0)):
            out[:, i, i] = d[:, bit]
        return out

    return parity


INTERNAL_GATES: dict[str, GateDef] = {
    "rzz": GateDef(2, 1, _parity(_rz), diagonal=True),
    "parity_p": GateDef(2, 1, _parity(_phase), diagonal=True),
}
"""Gates the planner makes from patterns (:func:`merge_parity_phases`), never a program's:
they are not in :data:`GATE_SET`."""
PARITY_GATES = {"rz": "rzz", "p": "parity_p", "phase": "parity_p", "u1": "parity_p"}
"""One-qubit diagonal gates ``g`` whose ``cx a, b; g b; cx a, b`` becomes a parity gate."""

_MONOMIAL = frozenset(
    {"x", "y", "cx", "CX", "cy", "swap", "ccx", "cswap"}
    | {name for name, d in (GATES | INTERNAL_GATES).items() if d.diagonal}
)
"""Gates whose base matrix is a permutation with phases (integer powers keep that)."""

_ANGLE_SCALED: dict[str, MatrixFn] = {
    "rx": _rx, "ry": _ry, "rz": _rz, "p": _phase, "phase": _phase, "u1": _phase,
    "gphase": _gphase,
}
"""One-angle gates whose powers are the same gate at a scaled angle."""
_FIXED_PHASE = {"z": np.pi, "s": np.pi / 2, "sdg": -np.pi / 2, "t": np.pi / 4, "tdg": -np.pi / 4}
"""Constant gates that are ``p(angle)``; their powers are ``p(k * angle)``."""


# -- modifiers on matrix batches ------------------------------------------------------------


def inverse(m: np.ndarray) -> np.ndarray:
    """The inverse (conjugate transpose) of a batch of unitaries."""
    return np.conj(np.swapaxes(m, -1, -2))


def power(m: np.ndarray, k: np.ndarray | float, diagonal: bool = False) -> np.ndarray:
    """``m ** k`` for a batch of unitaries, principal branch (see module docstring).

    Integer exponents use repeated products, so ``pow(2) @ g`` is exactly ``g·g``.
    """
    ks = np.broadcast_to(np.asarray(k, dtype=float), (m.shape[0],))
    if np.all(ks == np.round(ks)) and np.all(ks == ks[0]):
        n = int(ks[0])
        base = m if n >= 0 else inverse(m)
        return np.linalg.matrix_power(base, abs(n))
    rot = cmath.rect(1.0, -_BRANCH_CUT)
    if diagonal:
        d = np.diagonal(m, axis1=-2, axis2=-1) * rot
        vals = np.exp(ks[:, None] * (np.log(np.abs(d)) + 1j * np.angle(d)))
        vals *= np.exp(1j * _BRANCH_CUT * ks)[:, None]
        out = np.zeros_like(m)
        idx = np.arange(m.shape[-1])
        out[:, idx, idx] = vals
        return out
    import scipy.linalg  # only fractional powers of non-diagonal gates need it

    out = np.empty_like(m)
    for b in range(m.shape[0]):
        t, z = scipy.linalg.schur(rot * m[b], output="complex")
        ev = np.diag(t)
        powered = np.exp(ks[b] * (np.log(np.abs(ev)) + 1j * np.angle(ev)))
        out[b] = (z * powered) @ z.conj().T * cmath.exp(1j * _BRANCH_CUT * ks[b])
    return out


def controlled(m: np.ndarray, ctrl_values: Sequence[int]) -> np.ndarray:
    """Expand a base matrix batch with controls into a dense batch.

    The controls are the *low* bits of the result (they lead the qubit list, little-endian),
    and ``ctrl_values[i]`` is the value control ``i`` must have (1 for ``ctrl``, 0 for
    ``negctrl``).
    """
    nc = len(ctrl_values)
    if nc == 0:
        return m
    d = m.shape[-1]
    full = d << nc
    out = np.zeros((m.shape[0], full, full), dtype=m.dtype)
    idx = np.arange(full)
    out[:, idx, idx] = 1.0
    cval = sum(int(v) << i for i, v in enumerate(ctrl_values))
    sel = cval + (np.arange(d) << nc)
    out[:, sel[:, None], sel[None, :]] = m
    return out


# -- gates resolved against their operands ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedGate:
    """A ``GateOp`` reduced to *base matrix on targets*, *controls* and a parameter recipe.

    ``targets`` are the base matrix's qubits in little-endian order; ``controls`` must hold
    ``ctrl_values``. ``params`` and ``steps`` (``("inv", None)`` or ``("pow", k)``, innermost
    first) are evaluated per binding by :meth:`matrix`. A gate with no targets and no
    controls is a global phase.
    """

    name: str
    targets: tuple[int, ...]
    controls: tuple[int, ...]
    ctrl_values: tuple[int, ...]
    diagonal: bool
    params: tuple[Param, ...]
    steps: tuple[tuple[str, Param | None], ...]
    line: int | None = None
    # derived once in __post_init__ (slots, no per-gate __dict__: planning 100k gates holds
    # 100k of these)
    qubits: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Controls, then targets."""
    monomial: bool = field(init=False, repr=False, compare=False)
    """Whether the matrix has exactly one non-zero per row for every parameter value
    (a permutation with phases: ``x``, ``cx``, ``swap``, ``ccx``, ``y``, diagonals...),
    so applying it is a copy and a phase, not a matrix product."""
    parametric: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "qubits", self.controls + self.targets)
        object.__setattr__(self, "monomial", self._monomial())
        object.__setattr__(self, "parametric", any(isinstance(p, Expr) for p in self.params)
                           or any(isinstance(k, Expr) for _, k in self.steps))

    def _monomial(self) -> bool:
        if self.name not in _MONOMIAL:
            return False
        for kind, arg in self.steps:
            if kind == "pow" and not self.diagonal:
                if isinstance(arg, Expr) or float(arg) != round(float(arg)):  # type: ignore[arg-type]
                    return False
        return True

    def base_matrix(self, values: Mapping[str, np.ndarray] | None = None,
                    batch: int = 1) -> np.ndarray:
        """The base matrix batch (targets only) under parameter ``values`` (``(B,)`` arrays).

        A step ``("xconj", mask)`` (only ever outermost) conjugates the matrix by X on the
        targets in ``mask``: the gate as seen through pending X gates (see
        ``engine.x_frame``)."""
        if self.steps and self.steps[-1][0] == "xconj":
            mask = int(self.steps[-1][1])  # type: ignore[arg-type]
            inner = replace(self, steps=self.steps[:-1]).base_matrix(values, batch)
            flip = np.arange(inner.shape[-1]) ^ mask
            return np.ascontiguousarray(inner[:, flip][:, :, flip])
        definition = GATES.get(self.name) or INTERNAL_GATES[self.name]
        args = [evaluate_batch(p, values, batch) for p in self.params]
        if self.steps and (self.name in _ANGLE_SCALED or self.name in _FIXED_PHASE):
            scale = np.ones(batch)
            for kind, arg in self.steps:
                scale = scale * (-1.0 if kind == "inv" else evaluate_batch(arg, values, batch))
            if self.name in _FIXED_PHASE:
                return np.ascontiguousarray(_phase(scale * _FIXED_PHASE[self.name]))
            m = _ANGLE_SCALED[self.name](args[0] * scale)
            return np.ascontiguousarray(np.broadcast_to(m, (batch, *m.shape[1:])))
        m = definition.build(*args) if args else definition.build(batch)
        if m.shape[0] != batch:
            m = np.broadcast_to(m, (batch, *m.shape[1:]))
        for kind, arg in self.steps:
            if kind == "inv":
                m = inverse(m)
            else:
                m = power(m, evaluate_batch(arg, values, batch), self.diagonal)
        return np.ascontiguousarray(m)

    def dense(self, values: Mapping[str, np.ndarray] | None = None, batch: int = 1) -> np.ndarray:
        """The full matrix over :attr:`qubits` (controls first, little-endian)."""
        return controlled(self.base_matrix(values, batch), self.ctrl_values)


def resolve(op: GateOp) -> ResolvedGate:
    """Reduce a lowered ``GateOp`` to a :class:`ResolvedGate` (raises ``KeyError`` on an
    unknown gate name and ``ValueError`` on an inconsistent operand count)."""
    definition = GATES[op.name]
    qubits = tuple(op.qubits)
    controls: list[int] = []
    ctrl_values: list[int] = []
    steps: list[tuple[str, Param | None]] = []
    pos = 0
    for modifier in op.modifiers:  # outermost first: their controls lead the qubit list
        if modifier.kind in ("ctrl", "negctrl"):
            count = round(float(modifier.argument))  # type: ignore[arg-type]
            controls.extend(qubits[pos : pos + count])
            ctrl_values.extend([1 if modifier.kind == "ctrl" else 0] * count)
            pos += count
        elif modifier.kind == "inv":
            steps.append(("inv", None))
        elif modifier.kind == "pow":
            steps.append(("pow", modifier.argument))
        else:
            raise ValueError(f"unknown gate modifier {modifier.kind!r}")
    inner = qubits[pos:]
    if len(inner) != definition.num_qubits:
        raise ValueError(
            f"gate {op.name!r} acts on {definition.num_qubits} qubit(s), got {len(inner)}"
        )
    controls.extend(inner[: definition.controls])
    ctrl_values.extend([1] * definition.controls)
    if len(op.params) != definition.num_params:
        raise ValueError(
            f"gate {op.name!r} takes {definition.num_params} parameter(s), got {len(op.params)}"
        )
    if len(set(qubits)) != len(qubits):
        raise ValueError(f"gate {op.name!r} repeats a qubit in {qubits}")
    return ResolvedGate(
        name=op.name,
        targets=tuple(inner[definition.controls :]),
        controls=tuple(controls),
        ctrl_values=tuple(ctrl_values),
        diagonal=definition.diagonal,
        params=tuple(op.params),
        steps=tuple(reversed(steps)),  # innermost modifier applies first
        line=op.line,
    )


# -- parameter evaluation over batches -------------------------------------------------------

_NUMPY_NAMESPACE: dict[str, object] = {
    "__builtins__": {},
    "pi": np.pi,
    "π": np.pi,
    "tau": 2 * np.pi,
    "τ": 2 * np.pi,
    "euler": np.e,
    "ℇ": np.e,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "mod": np.fmod,
    "floor": np.floor,
    "ceiling": np.ceil,
}
_compiled: dict[str, CodeType] = {}


def evaluate_batch(
    value: Param | None, values: Mapping[str, np.ndarray] | None, batch: int
) -> np.ndarray:
    """Evaluate a parameter for ``batch`` bindings at once (``values``: name -> ``(B,)``).

    Expressions are evaluated once on whole arrays with NumPy's ufuncs; an expression NumPy
    cannot handle falls back to :meth:`Expr.evaluate` per binding.
    """
    if not isinstance(value, Expr):
        return np.full(batch, float(value if value is not None else 0.0))
    if values is None:
        raise KeyError(f"unbound parameter(s) {sorted(value.free)}")
    code = _compiled.get(value.source)
    if code is None:
        code = _compiled[value.source] = compile(value.source, "<hal-expr>", "eval")
    scope = {name: values[name] for name in value.free}
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(eval(code, _NUMPY_NAMESPACE, scope), dtype=float)
        return np.broadcast_to(result, (batch,)).copy()
    except (TypeError, ValueError):
        return np.array(
            [value.evaluate({n: float(values[n][b]) for n in value.free}) for b in range(batch)]
        )
