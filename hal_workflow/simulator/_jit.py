"""The numba kernels of the statevector simulator (see :mod:`hal_workflow.simulator.kernels`).

Imported only when a kernel is first compiled or loaded, so running a small circuit on the
NumPy kernels never imports numba. For LLVM to vectorise the lane loops it must know that the
buffer being written and the scratch it reads from do not overlap. Numba cannot say so, so this
module (a) registers numba's internal ``noalias`` flag as a jit option, and (b) compiles with
LLVM's SLP vectoriser switched on (numba leaves it off by default). Both are done locally: the
option is added to numba's option table once, and SLP is enabled only while *our* kernels
compile (:func:`slp_enabled`). If numba ever drops the flag, the kernels still compile and run,
only slower.
"""
# ruff: noqa: E402

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import numpy as np

from hal_workflow.simulator import parallel
from hal_workflow.simulator.kernels import (
    B_KIND,
    B_LANES,
    B_NCHUNK,
    B_NT,
    B_OFF,
    B_TABLE,
    B_TARGETS,
    D_CBITS,
    D_KIND,
    D_NQ,
    D_NSPECIAL,
    D_QUBITS,
    D_SPECIAL,
    DIAG,
    LANES,
    MAX_DENSE,
    PERM,
    TABLE_BITS,
    WIDTH,
    line_map,
)

parallel.configure()  # pin the threading layer before anything here compiles

import numba
from numba import njit, prange, types
from numba.extending import intrinsic


def _configure_cache() -> None:
    """Put numba's cache where ``simulator.cache-dir`` says (``$NUMBA_CACHE_DIR`` wins), before
    the kernels below are decorated: their cache locations are fixed then."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    from hal_workflow import config

    configured = config.get("simulator.cache-dir", None)
    if configured:
        numba.config.CACHE_DIR = os.path.expanduser(os.path.expandvars(str(configured)))


_configure_cache()


def _register_noalias_option() -> bool:
    try:
        from numba.core.cpu import CPUTargetOptions
        from numba.core.options import TargetOptions

        if not hasattr(CPUTargetOptions, "noalias"):
            CPUTargetOptions.noalias = TargetOptions.Mapping("noalias")
        return True
    except Exception:
        return False


_NOALIAS = {"noalias": True} if _register_noalias_option() else {}
_FAST = {"fastmath": True, "cache": True, "nogil": True}

# ----------------------------------------------------------------------------------------
# direct kernels (state indexed by physical basis index)
# ----------------------------------------------------------------------------------------


@njit(**_FAST)
def _deposit(g: int, special: np.ndarray, nspecial: int) -> int:
    """Spread the bits of ``g`` over the positions not listed in ``special`` (ascending)."""
    base = g
    for b in range(nspecial):
        t = special[b]
        low = base & ((1 << t) - 1)
        base = ((base >> t) << (t + 1)) | low
    return base


@njit(**_FAST)
def _direct_range(state, desc, pool, off, g0, g1, offs, tmp):
    """Apply one direct operation to groups ``[g0, g1)`` of ``state``."""
    kind = desc[D_KIND]
    nq = desc[D_NQ]
    nspecial = desc[D_NSPECIAL]
    cbits = desc[D_CBITS]
    special = desc[D_SPECIAL:D_SPECIAL + nspecial]
    d = 1 << nq
    for i in range(d):
        o = 0
        for b in range(nq):
            if (i >> b) & 1:
                o += 1 << desc[D_QUBITS + b]
        offs[i] = o
    if kind == DIAG:
        for g in range(g0, g1):
            base = _deposit(g, special, nspecial) | cbits
            for i in range(d):
                state[base + offs[i]] *= pool[off + i]
    elif nq == 1:
        m00 = pool[off]
        m01 = pool[off + 1]
        m10 = pool[off + 2]
        m11 = pool[off + 3]
        s = offs[1]
        for g in range(g0, g1):
            base = _deposit(g, special, nspecial) | cbits
            a0 = state[base]
            a1 = state[base + s]
            state[base] = m00 * a0 + m01 * a1
            state[base + s] = m10 * a0 + m11 * a1
    elif nq == 2:
        s1 = offs[1]
        s2 = offs[2]
        s3 = offs[3]
        for g in range(g0, g1):
            base = _deposit(g, special, nspecial) | cbits
            a0 = state[base]
            a1 = state[base + s1]
            a2 = state[base + s2]
            a3 = state[base + s3]
            state[base] = (pool[off] * a0 + pool[off + 1] * a1
                           + pool[off + 2] * a2 + pool[off + 3] * a3)
            state[base + s1] = (pool[off + 4] * a0 + pool[off + 5] * a1
                                + pool[off + 6] * a2 + pool[off + 7] * a3)
            state[base + s2] = (pool[off + 8] * a0 + pool[off + 9] * a1
                                + pool[off + 10] * a2 + pool[off + 11] * a3)
            state[base + s3] = (pool[off + 12] * a0 + pool[off + 13] * a1
                                + pool[off + 14] * a2 + pool[off + 15] * a3)
    else:
        for g in range(g0, g1):
            base = _deposit(g, special, nspecial) | cbits
            for j in range(d):
                tmp[j] = state[base + offs[j]]
            for i in range(d):
                acc = pool[off + i * d] * tmp[0]
                for j in range(1, d):
                    acc += pool[off + i * d + j] * tmp[j]
                state[base + offs[i]] = acc


@njit(**_FAST)
def run_direct(states, descs, offsets, pools):
    """Apply every operation of a direct program to each state of a batch, serially.

    ``states``: ``(B, 2^n)``; ``pools``: ``(B, P)`` matrices and tables per binding;
    ``descs``: ``(ops, D_WIDTH)`` descriptors; ``offsets``: pool offset per operation.
    """
    n_amps = states.shape[1]
    widest = 0
    for k in range(descs.shape[0]):
        widest = max(widest, descs[k, D_NQ])
    offs = np.empty(1 << widest, np.int64)
    tmp = np.empty(1 << MAX_DENSE, states.dtype)
    for b in range(states.shape[0]):
        state = states[b]
        pool = pools[b]
        for k in range(descs.shape[0]):
            desc = descs[k]
            groups = n_amps >> desc[D_NSPECIAL]
            _direct_range(state, desc, pool, offsets[k], 0, groups, offs, tmp)


@njit(parallel=True, **_FAST)
def run_direct_parallel(state, desc, pool, off, nthreads):
    """Apply one direct operation to a large state with ``nthreads`` threads."""
    groups = state.shape[0] >> desc[D_NSPECIAL]
    for t in prange(nthreads):
        offs = np.empty(1 << desc[D_NQ], np.int64)
        tmp = np.empty(1 << MAX_DENSE, state.dtype)
        g0 = groups * t // nthreads
        g1 = groups * (t + 1) // nthreads
        _direct_range(state, desc, pool, off, g0, g1, offs, tmp)


# ----------------------------------------------------------------------------------------
# block kernels (one chunk of the state in a split re/im buffer)
# ----------------------------------------------------------------------------------------


def _dense_group_codegen(nt: int) -> Callable[..., object]:
    """LLVM IR for one group of a dense ``nt``-qubit block gate: the ``2^nt`` rows of ``WIDTH``
    floats at the given offsets of ``buf`` (each ``LANES`` real parts, then ``LANES`` imaginary
    parts) are replaced by the matrix at ``pool[off:]`` (row-major) times them.

    Written as explicit vector code because LLVM's vectorisers, given the same arithmetic as
    lane loops, go through a scratch copy and, for complex64, keep 256-bit halves: a complex64
    row is one 512-bit vector ``x = [re | im]`` and ``U x`` is ``sum a x + b' y`` with
    ``y = [im | re]`` (one shuffle per input row) and ``b' = [-b | b]``, so each complex
    multiply-add is two fused multiply-adds over 16 floats; complex128 keeps the real and
    imaginary parts in two 8-double vectors (four multiply-adds). All rows are loaded before
    any is stored, and the matrix entries are broadcasts that LLVM hoists out of the group
    loop. Hosts without AVX-512 get the same code in 256-bit halves (the complex64 shuffle
    then only renames registers). Measured idle (``benchmarks/sim_kernels.py --k 14``) against
    the lane loops it replaces, cycles per amplitude, complex64: 1 qubit 0.63 -> 0.45,
    2 qubits 0.97 -> 0.69, 3 qubits 2.8 -> 1.9; complex128 2 qubits 1.63 -> 1.52."""
    from llvmlite import ir
    from numba.core import cgutils

    d = 1 << nt
    i32, i64 = ir.IntType(32), ir.IntType(64)

    def codegen(context, builder, signature, args):
        buf_t, pool_t = signature.args[0], signature.args[1 + d]
        fty = context.get_value_type(buf_t.dtype)
        single = isinstance(fty, ir.FloatType)
        n = WIDTH if single else LANES
        vty = ir.VectorType(fty, n)
        align = 4 if single else 8
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]),
            f"llvm.fma.v{n}{'f32' if single else 'f64'}")
        data = context.make_array(buf_t)(context, builder, args[0]).data
        pool = context.make_array(pool_t)(context, builder, args[1 + d]).data
        entries = builder.gep(builder.bitcast(pool, fty.as_pointer()),
                              [builder.mul(args[2 + d], ir.Constant(i64, 2))])
        undef = ir.Constant(vty, ir.Undefined)
        first = ir.Constant(ir.VectorType(i32, n), [0] * n)

        def splat(index: int) -> object:
            scalar = builder.load(builder.gep(entries, [ir.Constant(i64, index)]), align=align)
            return builder.shuffle_vector(
                builder.insert_element(undef, scalar, ir.Constant(i32, 0)), undef, first)

        def row(j: int, part: int = 0) -> object:
            at = args[1 + j] if not part else builder.add(args[1 + j], ir.Constant(i64, part))
            return builder.bitcast(builder.gep(data, [at]), vty.as_pointer())

        def madd(a: object, x: object, acc: object | None) -> object:
            return builder.fmul(a, x) if acc is None else builder.call(fma, [a, x, acc])

        if single:
            lanes = ir.VectorType(i32, n)
            halves = ir.Constant(lanes, [*range(LANES, WIDTH), *range(LANES)])
            signed = ir.Constant(lanes, [*range(LANES), *range(WIDTH + LANES, 2 * WIDTH)])
            xs = [builder.load(row(j), align=align) for j in range(d)]
            ys = [builder.shuffle_vector(x, undef, halves) for x in xs]
            outs = []
            for i in range(d):
                acc = None
                for j in range(d):
                    b = splat(2 * (d * i + j) + 1)
                    acc = madd(splat(2 * (d * i + j)), xs[j], acc)
                    acc = madd(builder.shuffle_vector(builder.fneg(b), b, signed), ys[j], acc)
                outs.append(acc)
            for i, out in enumerate(outs):
                builder.store(out, row(i), align=align)
        else:
            res = [builder.load(row(j), align=align) for j in range(d)]
            ims = [builder.load(row(j, LANES), align=align) for j in range(d)]
            pairs = []
            for i in range(d):
                re = im = None
                for j in range(d):
                    a, b = splat(2 * (d * i + j)), splat(2 * (d * i + j) + 1)
                    re = madd(builder.fneg(b), ims[j], madd(a, res[j], re))
                    im = madd(b, res[j], madd(a, ims[j], im))
                pairs.append((re, im))
            for i, (re, im) in enumerate(pairs):
                builder.store(re, row(i), align=align)
                builder.store(im, row(i, LANES), align=align)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _dense_group1(typingctx, buf, o0, o1, pool, off):
    return types.void(buf, o0, o1, pool, off), _dense_group_codegen(1)


@intrinsic
def _dense_group2(typingctx, buf, o0, o1, o2, o3, pool, off):
    return types.void(buf, o0, o1, o2, o3, pool, off), _dense_group_codegen(2)


@intrinsic
def _dense_group3(typingctx, buf, o0, o1, o2, o3, o4, o5, o6, o7, pool, off):
    return (types.void(buf, o0, o1, o2, o3, o4, o5, o6, o7, pool, off),
            _dense_group_codegen(3))


@njit(**_FAST, **_NOALIAS)
def _block_dense1(buf, k, t, pool, off):
    """A dense gate on local qubit ``t``."""
    s = 1 << t
    W = WIDTH
    for g in range(1 << (k - 1)):
        i0 = ((g >> t) << (t + 1)) | (g & (s - 1))
        _dense_group1(buf, i0 * W, (i0 + s) * W, pool, off)


@njit(**_FAST, **_NOALIAS)
def _block_dense2(buf, k, t0, t1, pool, off):
    """A dense gate on local qubits ``t0 < t1``."""
    s0 = 1 << t0
    s1 = 1 << t1
    W = WIDTH
    for g in range(1 << (k - 2)):
        base = ((g >> t0) << (t0 + 1)) | (g & (s0 - 1))
        base = ((base >> t1) << (t1 + 1)) | (base & (s1 - 1))
        _dense_group2(buf, base * W, (base + s0) * W, (base + s1) * W, (base + s0 + s1) * W,
                      pool, off)


@njit(**_FAST, **_NOALIAS)
def _block_dense3(buf, k, t0, t1, t2, pool, off):
    """A dense gate on local qubits ``t0 < t1 < t2``."""
    s0 = 1 << t0
    s1 = 1 << t1
    s2 = 1 << t2
    W = WIDTH
    for g in range(1 << (k - 3)):
        base = ((g >> t0) << (t0 + 1)) | (g & (s0 - 1))
        base = ((base >> t1) << (t1 + 1)) | (base & (s1 - 1))
        base = ((base >> t2) << (t2 + 1)) | (base & (s2 - 1))
        _dense_group3(buf, base * W, (base + s0) * W, (base + s1) * W, (base + s0 + s1) * W,
                      (base + s2) * W, (base + s0 + s2) * W, (base + s1 + s2) * W,
                      (base + s0 + s1 + s2) * W, pool, off)


@njit(**_FAST, **_NOALIAS)
def _block_dense(buf, tmp, acc, offs, k, targets, nt, pool, off):
    """A dense gate on ``nt`` (3..5) local qubits ``targets`` (ascending)."""
    L = LANES
    W = WIDTH
    d = 1 << nt
    for i in range(d):
        o = 0
        for b in range(nt):
            if (i >> b) & 1:
                o += 1 << targets[b]
        offs[i] = o * W
    for g in range(1 << (k - nt)):
        base = g
        for b in range(nt):
            t = targets[b]
            base = ((base >> t) << (t + 1)) | (base & ((1 << t) - 1))
        base *= W
        for j in range(d):
            S = buf[base + offs[j]:base + offs[j] + W]
            T = tmp[j * W:j * W + W]
            for lane in range(W):
                T[lane] = S[lane]
        for i in range(d * W):
            acc[i] = 0.0
        for j in range(d):
            T = tmp[j * W:j * W + W]
            for i in range(d):
                m = pool[off + i * d + j]
                a = m.real
                b = m.imag
                A = acc[i * W:i * W + W]
                for lane in range(L):
                    A[lane] += a * T[lane] - b * T[L + lane]
                for lane in range(L):
                    A[L + lane] += a * T[L + lane] + b * T[lane]
        for i in range(d):
            D = buf[base + offs[i]:base + offs[i] + W]
            A = acc[i * W:i * W + W]
            for lane in range(W):
                D[lane] = A[lane]


@njit(**_FAST, **_NOALIAS)
def _block_perm(buf, tmp, offs, k, targets, nt, src, pool, off):
    """A monomial gate on local qubits ``targets`` (ascending): row ``i`` of the matrix has
    its one entry in column ``src[i]``, read from the dense matrix at ``pool[off]``.

    Only the rows the gate changes are touched: a row that keeps its amplitude (``src[i] ==
    i``, phase exactly 1) is skipped when every changed row has phase 1: those are then plain
    copies (:func:`_perm_copy`). A ``cx`` moves two of its four rows without a multiply, an
    ``x`` or ``swap`` likewise. Otherwise every row is copied and multiplied by its phase.
    """
    W = WIDTH
    d = 1 << nt
    for i in range(d):
        o = 0
        for b in range(nt):
            if (i >> b) & 1:
                o += 1 << targets[b]
        offs[i] = o * W
    moved = 0  # the rows that change, listed in offs[d:d + moved]
    plain = True
    for i in range(d):
        ph = pool[off + i * d + src[i]]
        unit = ph.real == 1.0 and ph.imag == 0.0
        if src[i] != i or not unit:
            offs[d + moved] = i
            moved += 1
            plain = plain and unit
    if moved == 0:
        return
    if plain:
        _perm_copy(buf, tmp, offs, k, targets, nt, src, d, moved)
    else:
        _perm_phase(buf, tmp, offs, k, targets, nt, src, d, pool, off)


@njit(**_FAST, **_NOALIAS)
def _perm_base(g, targets, nt):
    base = g
    for b in range(nt):
        t = targets[b]
        base = ((base >> t) << (t + 1)) | (base & ((1 << t) - 1))
    return base * WIDTH


@njit(**_FAST, **_NOALIAS)
def _perm_copy(buf, tmp, offs, k, targets, nt, src, d, moved):
    W = WIDTH
    for g in range(1 << (k - nt)):
        base = _perm_base(g, targets, nt)
        for m in range(moved):
            o = base + offs[src[offs[d + m]]]
            S = buf[o:o + W]
            T = tmp[m * W:m * W + W]
            for lane in range(W):
                T[lane] = S[lane]
        for m in range(moved):
            o = base + offs[offs[d + m]]
            D = buf[o:o + W]
            T = tmp[m * W:m * W + W]
            for lane in range(W):
                D[lane] = T[lane]


@njit(**_FAST, **_NOALIAS)
def _perm_phase(buf, tmp, offs, k, targets, nt, src, d, pool, off):
    """Every row: a copy and a phase."""
    L = LANES
    W = WIDTH
    for g in range(1 << (k - nt)):
        base = _perm_base(g, targets, nt)
        for j in range(d):
            S = buf[base + offs[j]:base + offs[j] + W]
            T = tmp[j * W:j * W + W]
            for lane in range(W):
                T[lane] = S[lane]
        for i in range(d):
            j = src[i]
            ph = pool[off + i * d + j]
            a = ph.real
            b = ph.imag
            T = tmp[j * W:j * W + W]
            D = buf[base + offs[i]:base + offs[i] + W]
            for lane in range(L):
                D[lane] = a * T[lane] - b * T[L + lane]
            for lane in range(L):
                D[L + lane] = a * T[L + lane] + b * T[lane]


@njit(**_FAST, **_NOALIAS)
def _block_diag(buf, phases, k, lo, hi, lane_idx, use_lanes, chunk_off, pool, off):
    """Multiply by a diagonal: phase of local index ``i`` is
    ``pool[off + chunk_off + lo[i & mask] + hi[i >> TABLE_BITS] (+ lane_idx[lane])]``.

    Per-lane phases are first gathered into ``phases`` (scratch) so that the multiply itself
    stays one vector operation.
    """
    L = LANES
    W = WIDTH
    mask = (1 << TABLE_BITS) - 1
    base = off + chunk_off
    for i in range(1 << k):
        idx = base + lo[i & mask] + hi[i >> TABLE_BITS]
        D = buf[i * W:i * W + W]
        if use_lanes:
            for lane in range(L):
                ph = pool[idx + lane_idx[lane]]
                phases[lane] = ph.real
                phases[L + lane] = ph.imag
            for lane in range(L):
                x = D[lane]
                y = D[L + lane]
                D[lane] = phases[lane] * x - phases[L + lane] * y
                D[L + lane] = phases[lane] * y + phases[L + lane] * x
        else:
            a = pool[idx].real
            b = pool[idx].imag
            for lane in range(L):
                x = D[lane]
                y = D[L + lane]
                D[lane] = a * x - b * y
                D[L + lane] = a * y + b * x


@njit(**_FAST, **_NOALIAS)
def _block_phase_pass(buf, ph, k, descs, p0, p1, base, dlo, dhi, dlane, dcq, dcp, pool):
    """The diagonal blocks ``descs[p0:p1]`` (all DIAG) as one phase pass over the buffer.

    The phases of the blocks that do not depend on a lane qubit are multiplied together per
    row first (in ``ph``, one complex number per row, ``2^(k+1)`` floats, in L1), so the
    buffer itself is read and written once for all of them. Blocks that depend on a lane
    qubit (per-lane phases) are applied to the buffer one by one.
    """
    W = WIDTH
    L = LANES
    mask = (1 << TABLE_BITS) - 1
    n = 1 << k
    first = True
    for p in range(p0, p1):
        t = descs[p, B_TABLE]
        start = descs[p, B_OFF]
        for b in range(descs[p, B_NCHUNK]):
            if (base >> dcq[t, b]) & 1:
                start += 1 << dcp[t, b]
        if descs[p, B_LANES] != 0:
            _block_diag(buf, ph, k, dlo[t], dhi[t], dlane[t], True, start - descs[p, B_OFF],
                        pool, descs[p, B_OFF])
            continue
        lo_t = dlo[t]
        hi_t = dhi[t]
        if first:
            for i in range(n):
                z = pool[start + lo_t[i & mask] + hi_t[i >> TABLE_BITS]]
                ph[2 * n + 2 * i] = z.real
                ph[2 * n + 2 * i + 1] = z.imag
            first = False
        else:
            for i in range(n):
                z = pool[start + lo_t[i & mask] + hi_t[i >> TABLE_BITS]]
                x = ph[2 * n + 2 * i]
                y = ph[2 * n + 2 * i + 1]
                ph[2 * n + 2 * i] = x * z.real - y * z.imag
                ph[2 * n + 2 * i + 1] = x * z.imag + y * z.real
    if first:
        return
    for i in range(n):
        a = ph[2 * n + 2 * i]
        b = ph[2 * n + 2 * i + 1]
        D = buf[i * W:i * W + W]
        for lane in range(L):
            x = D[lane]
            y = D[L + lane]
            D[lane] = a * x - b * y
            D[L + lane] = a * y + b * x


def _line_order(store: bool, pattern: int) -> list[int]:
    """The shuffle of :func:`_lines_codegen` for one pattern: flat indices of the 128 floats
    moved, buffer rows to memory lines (``store``) or back. Buffer row j holds the real part
    of lane l at 16j + l, the imaginary part at 16j + 8 + l; memory line x holds amplitude p
    as real part at 16x + 2p, imaginary part at 16x + 2p + 1."""
    to_line = {16 * x + 2 * p + part: 16 * j + LANES * part + lane
               for (j, lane), (x, p) in line_map(pattern).items() for part in (0, 1)}
    if store:
        return [to_line[i] for i in range(128)]
    return [i for _, i in sorted((v, i) for i, v in to_line.items())]


def _lines_codegen(store: bool) -> Callable[..., object]:
    """LLVM IR moving 8 buffer rows (from ``boff``) to or from the 8 memory lines at
    ``ob + lines[x]`` of the state, laid out as line pattern ``pattern`` says
    (:func:`~hal_workflow.simulator.kernels.line_map`; a switch over the eight): all 64
    amplitudes are loaded as whole vectors, put in place by one shuffle of the
    concatenation, and stored as whole vectors. Written out because numba's lane loops,
    given the same moves one amplitude at a time, cost 3.1-3.4 cycles per amplitude for a
    gather and scatter at 22 qubits (complex64, 2 threads) where whole lines cost 2.2, the
    price of the plain row copy whose lanes are physical qubits 0-2."""
    from llvmlite import ir

    i32, i64 = ir.IntType(32), ir.IntType(64)

    def codegen(context, builder, signature, args):
        buf_t, state_t, lines_t = signature.args[0], signature.args[2], signature.args[4]
        fty = context.get_value_type(buf_t.dtype)
        n = WIDTH if isinstance(fty, ir.FloatType) else LANES  # floats per vector
        vty = ir.VectorType(fty, n)
        align = 4 if n == WIDTH else 8
        buf = context.make_array(buf_t)(context, builder, args[0]).data
        state = builder.bitcast(context.make_array(state_t)(context, builder, args[2]).data,
                                fty.as_pointer())
        lines = context.make_array(lines_t)(context, builder, args[4]).data
        rows = [builder.add(args[1], ir.Constant(i64, WIDTH * j)) for j in range(LANES)]
        starts = [builder.mul(builder.add(args[3], builder.load(
            builder.gep(lines, [ir.Constant(i64, x)]))), ir.Constant(i64, 2))
            for x in range(LANES)]
        src, dst = (buf, state) if store else (state, buf)
        src_at, dst_at = (rows, starts) if store else (starts, rows)

        def ptr(base: object, at: object, part: int) -> object:
            at = builder.add(at, ir.Constant(i64, part)) if part else at
            return builder.bitcast(builder.gep(base, [at]), vty.as_pointer())

        def move(pattern: int) -> None:
            vecs = [builder.load(ptr(src, at, part), align=align)
                    for at in src_at for part in range(0, WIDTH, n)]
            while len(vecs) > 1:  # concatenate pairwise up to one 128-element vector
                size = 2 * vecs[0].type.count
                both = ir.Constant(ir.VectorType(i32, size), list(range(size)))
                vecs = [builder.shuffle_vector(vecs[i], vecs[i + 1], both)
                        for i in range(0, len(vecs), 2)]
            moved = builder.shuffle_vector(
                vecs[0], ir.Constant(vecs[0].type, ir.Undefined),
                ir.Constant(ir.VectorType(i32, 128), _line_order(store, pattern)))
            undef = ir.Constant(moved.type, ir.Undefined)
            for i, at in enumerate(dst_at):
                for part in range(0, WIDTH, n):
                    piece = ir.Constant(ir.VectorType(i32, n),
                                        list(range(16 * i + part, 16 * i + part + n)))
                    builder.store(builder.shuffle_vector(moved, undef, piece),
                                  ptr(dst, at, part), align=align)

        end = builder.append_basic_block("lines.end")
        switch = builder.switch(args[5], end)
        for pattern in range(LANES):
            case = builder.append_basic_block(f"lines.{pattern}")
            switch.add_case(ir.Constant(args[5].type, pattern), case)
            builder.position_at_end(case)
            move(pattern)
            builder.branch(end)
        builder.position_at_end(end)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _lines_in(typingctx, buf, boff, state, ob, lines, pattern):
    """Memory lines into 8 buffer rows (:func:`_lines_codegen`)."""
    return types.void(buf, boff, state, ob, lines, pattern), _lines_codegen(False)


@intrinsic
def _lines_out(typingctx, buf, boff, state, ob, lines, pattern):
    """8 buffer rows out to their memory lines (:func:`_lines_codegen`)."""
    return types.void(buf, boff, state, ob, lines, pattern), _lines_codegen(True)


def _prefetch_codegen(write: int) -> Callable[..., object]:
    def codegen(context, builder, signature, args):
        from llvmlite import ir

        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), i8p)
        builder.call(fn, [ptr, ir.Constant(i32, write), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return codegen


@intrinsic
def _prefetch(typingctx, arr, index):
    """Hint the cache to fetch ``arr[index]`` for reading (llvm.prefetch)."""
    return types.void(arr, index), _prefetch_codegen(0)


@intrinsic
def _prefetch_write(typingctx, arr, index):
    """Hint the cache to fetch ``arr[index]`` for writing (llvm.prefetch)."""
    return types.void(arr, index), _prefetch_codegen(1)


PREFETCH_GROUPS = 8
"""How many row groups ahead the gather and scatter ask for their memory lines. A chunk's
lines come in runs as long as its lowest chunk qubit allows (for a chunk qubit 5, 32
amplitudes), too short for the hardware prefetcher, which stops at each 4 KiB page; asked
for ahead, the lines arrive while the rows before them move, and the scatter's lines are
owned before it writes them. Empty stages of quantum volume 24 (complex128, 2 threads):
270 -> 200 cycles per amplitude over its 24 stages, the whole run 13% faster; complex64
24 qubits: 126 -> 104; complex64 22 qubits (32 MiB: the state stays in L3) about the same,
46-50 -> 45-47 (``benchmarks/sim_stages.py --empty``). Groups 4 to 32 ahead measured
alike."""

PREFETCH_RUN_BYTES = 1 << 16
"""Runs this long or longer are left to the hardware prefetcher: an empty 22-qubit complex64
stage whose chunk qubits are 17-21 (1 MiB runs) took 2.44 cycles per amplitude without the
prefetch and 2.76 with it; in quantum volume 24 (complex128) stages with 16-32 KiB runs
still gained (7.3-8.7 -> 6.1-7.7)."""


@njit(**_FAST)
def _ask_ahead(state, base, loc_lo, loc_hi, lines, r, n_local, write):
    """Prefetch the memory lines of row group ``r + PREFETCH_GROUPS * LANES`` (both 64-byte
    halves of a complex128 line), for writing or reading."""
    ahead = r + PREFETCH_GROUPS * LANES
    if ahead >= n_local:
        return
    mask = (1 << TABLE_BITS) - 1
    oa = base + loc_lo[ahead & mask] + loc_hi[ahead >> TABLE_BITS]
    for x in range(LANES):
        for half in range(0, LANES * state.itemsize // 64):
            o = oa + lines[x] + half * (64 // state.itemsize)
            if write:
                _prefetch_write(state, o)
            else:
                _prefetch(state, o)


@njit(**_FAST)
def _move_lines(state, buf, n_local, base, loc_lo, loc_hi, lines, chunk_q, pattern, store):
    """Gather a chunk into the buffer, or scatter it back (``store``), by whole memory lines
    (``pattern``: see ``kernels.line_map``), asking for the lines ahead when the chunk's
    memory comes in runs shorter than :data:`PREFETCH_RUN_BYTES`."""
    mask = (1 << TABLE_BITS) - 1
    ask = chunk_q.shape[0] > 0 and (1 << chunk_q[0]) * state.itemsize < PREFETCH_RUN_BYTES
    for r in range(0, n_local, LANES):
        ob = base + loc_lo[r & mask] + loc_hi[r >> TABLE_BITS]
        if ask:
            _ask_ahead(state, base, loc_lo, loc_hi, lines, r, n_local, store)
        if store:
            _lines_out(buf, r * WIDTH, state, ob, lines, pattern)
        else:
            _lines_in(buf, r * WIDTH, state, ob, lines, pattern)


@njit(**_FAST, **_NOALIAS)
def _product_chunk(buf, tmp, k, start, cf):
    """Write a chunk of a product state into the buffer: amplitude = lo[i & mask] *
    hi[i >> TABLE_BITS] * lane[l] * ``cf`` (``start``: lo, hi, lane, chunk tables, see
    ``_StageStep.product_tables``; ``cf`` the chunk's factor). ``tmp`` holds the lane
    factors (times the chunk's). Returns whether the chunk is all zeros."""
    L = LANES
    W = WIDTH
    size = 1 << TABLE_BITS
    mask = size - 1
    n_local = 1 << k
    if cf.real == 0.0 and cf.imag == 0.0:
        buf[:n_local * W] = 0.0
        return True
    for lane in range(L):
        z = cf * start[2 * size + lane]
        tmp[lane] = z.real
        tmp[L + lane] = z.imag
    for i in range(n_local):
        a = start[i & mask] * start[size + (i >> TABLE_BITS)]
        ar = a.real
        ai = a.imag
        D = buf[i * W:i * W + W]
        for lane in range(L):
            D[lane] = ar * tmp[lane] - ai * tmp[L + lane]
        for lane in range(L):
            D[L + lane] = ar * tmp[L + lane] + ai * tmp[lane]
    return False


@njit(**_FAST)
def _group_norms(buf, norms, c, k):
    """Squared norms of the buffer's row groups (``2^TABLE_BITS`` rows each, fewer when the
    buffer is smaller) into ``norms[c * groups + g]``: the sample blocks of a stage's chunk
    (see ``_scan_stage``). A group's rows are contiguous in the buffer."""
    n_local = 1 << k
    rows = min(n_local, 1 << TABLE_BITS)
    groups = n_local // rows
    span = rows * WIDTH
    for g in range(groups):
        total = 0.0
        seg = buf[g * span:(g + 1) * span]
        for j in range(span):
            total += seg[j] * seg[j]
        norms[c * groups + g] = total


@njit(**_FAST)
def _stage_chunk(state, c, fresh, start, template, norms, k, loc_lo, loc_hi, lane_off, lines,
                 chunk_q, descs, dlo, dhi, dlane, dcq, dcp, pool, buf, tmp, acc, offs):
    """Run every operation of a stage on chunk ``c``: gather, apply, scatter; with a
    non-empty ``norms``, also the squared norms of the chunk's sample blocks
    (:func:`_group_norms`), so that sampling needs no pass of its own.

    ``fresh``: the state is the initial state and not yet written (the caller may pass
    uninitialised memory), so the buffer is set instead of gathered: to |0...0>, or with a
    non-empty ``start`` to the product state it describes (:func:`_product_chunk`), or with
    a non-empty ``template`` to that times the chunk's factor (:func:`stage_template`).
    """
    L = LANES
    W = WIDTH
    mask = (1 << TABLE_BITS) - 1
    n_local = 1 << k
    pattern = lines[L]  # how physical qubits 0-2 lie in the buffer (kernels.line_map)
    base = 0
    for b in range(chunk_q.shape[0]):
        if (c >> b) & 1:
            base |= 1 << chunk_q[b]
    if not fresh and pattern >= 0:
        _move_lines(state, buf, n_local, base, loc_lo, loc_hi, lines, chunk_q, pattern, False)
    elif not fresh:
        for i in range(n_local):
            o = base + loc_lo[i & mask] + loc_hi[i >> TABLE_BITS]
            for lane in range(L):
                z = state[o + lane_off[lane]]
                buf[i * W + lane] = z.real
                buf[i * W + L + lane] = z.imag
    zero = False  # a fresh chunk of zeros stays zero: only its store is left to do
    if fresh and template.shape[0] > 0:
        # the stage's operations act on local qubits only: this chunk is the template
        # (the operations applied to the product state once) times the chunk's factor
        _scaled_copy(template, buf, start[2 * (1 << TABLE_BITS) + L + c], n_local)
        zero = True
    elif fresh and start.shape[0] > 0:
        zero = _product_chunk(buf, tmp, k, start, start[2 * (1 << TABLE_BITS) + L + c])
    elif fresh:
        buf[:n_local * W] = 0.0
        if base == 0:
            buf[0] = 1.0  # amplitude 0: local index 0, lane 0, real part
        zero = base != 0
    if not zero:
        _stage_ops(buf, tmp, acc, offs, k, base, descs, dlo, dhi, dlane, dcq, dcp, pool)
    if norms.shape[0] > 0:
        _group_norms(buf, norms, c, k)
    if pattern >= 0:
        _move_lines(state, buf, n_local, base, loc_lo, loc_hi, lines, chunk_q, pattern, True)
        return
    for i in range(n_local):
        o = base + loc_lo[i & mask] + loc_hi[i >> TABLE_BITS]
        for lane in range(L):
            state[o + lane_off[lane]] = buf[i * W + lane] + 1j * buf[i * W + L + lane]


@njit(**_FAST, **_NOALIAS)
def _scaled_copy(src, buf, z, n_local):
    """``buf = z * src`` over ``n_local`` split rows."""
    L = LANES
    W = WIDTH
    a = z.real
    b = z.imag
    for i in range(n_local):
        S = src[i * W:i * W + W]
        D = buf[i * W:i * W + W]
        for lane in range(L):
            D[lane] = a * S[lane] - b * S[L + lane]
        for lane in range(L):
            D[L + lane] = a * S[L + lane] + b * S[lane]


@njit(**_FAST)
def stage_template(start, k, descs, dlo, dhi, dlane, dcq, dcp, pool, buf, tmp, acc, offs):
    """The first chunk of a fresh stage whose operations act on local qubits only, with
    chunk factor 1: the product state's local and lane part with the operations applied
    (``buf``, which every chunk then scales by its own factor)."""
    _product_chunk(buf, tmp, k, start, 1.0 + 0.0j)
    _stage_ops(buf, tmp, acc, offs, k, 0, descs, dlo, dhi, dlane, dcq, dcp, pool)


@njit(**_FAST)
def _stage_ops(buf, tmp, acc, offs, k, base, descs, dlo, dhi, dlane, dcq, dcp, pool):
    """Apply a stage's operations to the buffer of the chunk at ``base``."""
    ndesc = descs.shape[0]
    p = 0
    while p < ndesc:
        desc = descs[p]
        off = desc[B_OFF]
        t = desc[B_TABLE]
        p += 1
        if desc[B_KIND] == DIAG and p < ndesc and descs[p, B_KIND] == DIAG:
            # a run of diagonal blocks: one phase pass
            p1 = p + 1
            while p1 < ndesc and descs[p1, B_KIND] == DIAG:
                p1 += 1
            _block_phase_pass(buf, tmp, k, descs, p - 1, p1, base, dlo, dhi, dlane, dcq, dcp,
                              pool)
            p = p1
        elif desc[B_KIND] == DIAG:
            chunk_off = 0
            for b in range(desc[B_NCHUNK]):
                if (base >> dcq[t, b]) & 1:
                    chunk_off += 1 << dcp[t, b]
            _block_diag(buf, tmp, k, dlo[t], dhi[t], dlane[t], desc[B_LANES] != 0, chunk_off,
                        pool, off)
        elif desc[B_KIND] == PERM:
            _block_perm(buf, tmp, offs, k, desc[B_TARGETS:B_TARGETS + desc[B_NT]], desc[B_NT],
                        dlo[t], pool, off)
        elif desc[B_NT] == 1:
            _block_dense1(buf, k, desc[B_TARGETS], pool, off)
        elif desc[B_NT] == 2:
            _block_dense2(buf, k, desc[B_TARGETS], desc[B_TARGETS + 1], pool, off)
        elif desc[B_NT] == 3:
            _block_dense3(buf, k, desc[B_TARGETS], desc[B_TARGETS + 1],
                          desc[B_TARGETS + 2], pool, off)
        else:
            _block_dense(buf, tmp, acc, offs, k, desc[B_TARGETS:B_TARGETS + desc[B_NT]],
                         desc[B_NT], pool, off)


@njit(**_FAST)
def run_stage(state, c0, c1, fresh, start, template, norms, k, loc_lo, loc_hi, lane_off, lines,
              chunk_q, descs, dlo, dhi, dlane, dcq, dcp, pool, bufs, tmps, accs, offss):
    """Serial stage run over chunks ``[c0, c1)`` (scratch of thread 0)."""
    for c in range(c0, c1):
        _stage_chunk(state, c, fresh, start, template, norms, k, loc_lo, loc_hi, lane_off,
                     lines, chunk_q, descs, dlo, dhi, dlane, dcq, dcp, pool, bufs[0], tmps[0],
                     accs[0], offss[0])


@njit(parallel=True, **_FAST)
def run_stage_parallel(state, c0, c1, fresh, start, template, norms, k, loc_lo, loc_hi, lane_off,
                       lines, chunk_q, descs, dlo, dhi, dlane, dcq, dcp, pool, bufs, tmps, accs,
                       offss):
    """Stage run over chunks ``[c0, c1)`` on numba's threads, each with its own scratch.

    Call it with a parallel chunk size of 1 (:func:`dynamic`) so that chunks are handed out
    one at a time: a thread slowed by another process then simply takes fewer chunks.
    """
    for c in prange(c0, c1):
        t = numba.get_thread_id()
        _stage_chunk(state, c, fresh, start, template, norms, k, loc_lo, loc_hi, lane_off,
                     lines, chunk_q, descs, dlo, dhi, dlane, dcq, dcp, pool, bufs[t], tmps[t],
                     accs[t], offss[t])


# ----------------------------------------------------------------------------------------
# measurement, sampling and read-out
# ----------------------------------------------------------------------------------------


@njit(**_FAST)
def _prob_one_range(state, q, a, b):
    total = 0.0
    bit = 1 << q
    for i in range(a, b):
        if i & bit:
            z = state[i]
            total += z.real * z.real + z.imag * z.imag
    return total


@njit(parallel=True, **_FAST)
def prob_one(state, q, nthreads):
    """Probability that physical qubit ``q`` reads 1."""
    n = state.shape[0]
    parts = np.zeros(nthreads)
    for t in prange(nthreads):
        parts[t] = _prob_one_range(state, q, n * t // nthreads, n * (t + 1) // nthreads)
    return parts.sum()


@njit(**_FAST)
def prob_one_serial(state, q):
    return _prob_one_range(state, q, 0, state.shape[0])


@njit(**_FAST)
def _collapse_range(state, q, outcome, scale, reset, a, b):
    bit = 1 << q
    for i in range(a, b):
        if i & bit:
            continue
        j = i | bit
        if outcome == 0:
            state[i] *= scale
            state[j] = 0.0
        elif reset:
            state[i] = state[j] * scale
            state[j] = 0.0
        else:
            state[i] = 0.0
            state[j] *= scale


@njit(parallel=True, **_FAST)
def collapse(state, q, outcome, scale, reset, nthreads):
    """Project qubit ``q`` on ``outcome`` and renormalise by ``scale``; with ``reset`` the
    surviving amplitudes move to ``q = 0``."""
    n = state.shape[0]
    for t in prange(nthreads):
        _collapse_range(state, q, outcome, scale, reset, n * t // nthreads,
                        n * (t + 1) // nthreads)


@njit(**_FAST)
def collapse_serial(state, q, outcome, scale, reset):
    _collapse_range(state, q, outcome, scale, reset, 0, state.shape[0])


@njit(**_FAST)
def _block_norms(state, sums, a, b, size):
    for blk in range(a, b):
        total = 0.0
        for i in range(blk * size, (blk + 1) * size):
            z = state[i]
            total += z.real * z.real + z.imag * z.imag
        sums[blk] = total


@njit(parallel=True, **_FAST)
def block_norms(state, size, nthreads):
    """Squared norm of every ``size``-amplitude block of ``state``."""
    nblk = state.shape[0] // size
    sums = np.empty(nblk)
    for t in prange(nthreads):
        _block_norms(state, sums, nblk * t // nthreads, nblk * (t + 1) // nthreads, size)
    return sums


@njit(**_FAST)
def block_norms_serial(state, size):
    nblk = state.shape[0] // size
    sums = np.empty(nblk)
    _block_norms(state, sums, 0, nblk, size)
    return sums


@njit(**_FAST)
def _scan_blocks(state, size, starts, us, first, out, a, b):
    """For blocks ``[a, b)``: walk the block once, placing the sorted uniforms that fall in
    it (``us[first[blk]:first[blk + 1]]``; ``starts[blk]`` is the mass before the block) on
    basis indices. A uniform that rounding leaves past the block's last amplitude goes to
    the block's last non-zero one, never to an impossible outcome."""
    for blk in range(a, b):
        s0 = first[blk]
        s1 = first[blk + 1]
        if s0 == s1:
            continue
        acc = starts[blk]
        s = s0
        last = blk * size
        for i in range(blk * size, (blk + 1) * size):
            z = state[i]
            p = z.real * z.real + z.imag * z.imag
            if p > 0.0:
                last = i
                acc += p
                while s < s1 and us[s] < acc:
                    out[s] = i
                    s += 1
            if s == s1:
                break
        while s < s1:
            out[s] = last
            s += 1


@njit(parallel=True, **_FAST)
def scan_blocks(state, size, starts, us, first, nthreads):
    """Basis indices of sorted uniforms ``us`` (see :func:`_scan_blocks`)."""
    nblk = first.shape[0] - 1
    out = np.empty(us.shape[0], np.int64)
    for t in prange(nthreads):
        _scan_blocks(state, size, starts, us, first, out, nblk * t // nthreads,
                     nblk * (t + 1) // nthreads)
    return out


@njit(**_FAST)
def scan_blocks_serial(state, size, starts, us, first):
    out = np.empty(us.shape[0], np.int64)
    _scan_blocks(state, size, starts, us, first, out, 0, first.shape[0] - 1)
    return out


@njit(**_FAST)
def _scan_stage(state, k, loc_lo, loc_hi, lane_off, chunk_q, starts, us, first, out, a, b):
    """:func:`_scan_blocks` over the sample blocks of a stage's layout: block ``c * groups +
    g`` holds chunk ``c``'s buffer rows ``g * rows ...`` (see ``_group_norms``), walked row by
    row, lane by lane, as the stage laid them out."""
    L = LANES
    mask = (1 << TABLE_BITS) - 1
    n_local = 1 << k
    rows = min(n_local, 1 << TABLE_BITS)
    groups = n_local // rows
    for blk in range(a, b):
        s0 = first[blk]
        s1 = first[blk + 1]
        if s0 == s1:
            continue
        c = blk // groups
        g = blk - c * groups
        base = 0
        for bit in range(chunk_q.shape[0]):
            if (c >> bit) & 1:
                base |= 1 << chunk_q[bit]
        acc = starts[blk]
        s = s0
        last = base + loc_lo[(g * rows) & mask] + loc_hi[(g * rows) >> TABLE_BITS] + lane_off[0]
        for r in range(rows):
            i = g * rows + r
            o = base + loc_lo[i & mask] + loc_hi[i >> TABLE_BITS]
            for lane in range(L):
                z = state[o + lane_off[lane]]
                p = z.real * z.real + z.imag * z.imag
                if p > 0.0:
                    last = o + lane_off[lane]
                    acc += p
                    while s < s1 and us[s] < acc:
                        out[s] = last
                        s += 1
            if s == s1:
                break
        while s < s1:
            out[s] = last
            s += 1


@njit(parallel=True, **_FAST)
def scan_stage(state, k, loc_lo, loc_hi, lane_off, chunk_q, starts, us, first, nthreads):
    """Basis indices of sorted uniforms ``us`` over a stage's sample blocks
    (:func:`_scan_stage`)."""
    nblk = first.shape[0] - 1
    out = np.empty(us.shape[0], np.int64)
    for t in prange(nthreads):
        _scan_stage(state, k, loc_lo, loc_hi, lane_off, chunk_q, starts, us, first, out,
                    nblk * t // nthreads, nblk * (t + 1) // nthreads)
    return out


@njit(**_FAST)
def scan_stage_serial(state, k, loc_lo, loc_hi, lane_off, chunk_q, starts, us, first):
    out = np.empty(us.shape[0], np.int64)
    _scan_stage(state, k, loc_lo, loc_hi, lane_off, chunk_q, starts, us, first, out, 0,
                first.shape[0] - 1)
    return out


@njit(**_FAST)
def _permute_range(src, dst, perm, a, b):
    """``dst[logical index] = src[physical index]`` where logical bit ``q`` is physical bit
    ``perm[q]``."""
    for x in range(a, b):
        y = 0
        for q in range(perm.shape[0]):
            y |= ((x >> q) & 1) << perm[q]
        dst[x] = src[y]


@njit(parallel=True, **_FAST)
def permute(src, perm, nthreads):
    n = src.shape[0]
    dst = np.empty_like(src)
    for t in prange(nthreads):
        _permute_range(src, dst, perm, n * t // nthreads, n * (t + 1) // nthreads)
    return dst


@njit(**_FAST)
def permute_serial(src, perm):
    dst = np.empty_like(src)
    _permute_range(src, dst, perm, 0, src.shape[0])
    return dst


@njit(**_FAST)
def _pauli_range(state, xmask, zmask, a, b):
    total = 0.0 + 0.0j
    for y in range(a, b):
        z = state[y]
        w = state[y ^ xmask]
        term = np.conj(w) * z
        x = y & zmask
        parity = 0
        while x:
            x &= x - 1
            parity ^= 1
        total += -term if parity else term
    return total


@njit(parallel=True, **_FAST)
def pauli_expectation(state, xmask, zmask, nthreads):
    """``sum_y conj(psi[y ^ xmask]) psi[y] (-1)^popcount(y & zmask)`` (the caller multiplies
    by ``i^nY``)."""
    n = state.shape[0]
    parts = np.zeros(nthreads, np.complex128)
    for t in prange(nthreads):
        parts[t] = _pauli_range(state, xmask, zmask, n * t // nthreads, n * (t + 1) // nthreads)
    return parts.sum()


@njit(**_FAST)
def pauli_expectation_serial(state, xmask, zmask):
    return _pauli_range(state, xmask, zmask, 0, state.shape[0])


_VECTOR_WIDTH_ATTR = '"prefer-vector-width"="512"'
"""LLVM function attribute that lets the vectorisers use 512-bit registers. LLVM's tuning for
AVX-512 Intel cores prefers 256-bit vectors; the complex128 block kernels keep 8 lanes of
doubles (512 bits) side by side and run faster with them: the 2-qubit kernel 2.0-2.2 -> 1.6-1.7
cycles per amplitude (``benchmarks/sim_kernels.py``; the dense 1-3 qubit kernels have since
become explicit vector code, which the attribute does not affect). complex64 lane loops keep
256 bits: 8 lanes of floats fill a 256-bit register, and at 512 bits LLVM's code for them
measured slower."""


def _with_vector_width(add_ir_module: Callable[..., None]) -> Callable[..., None]:
    """Wrap numba's ``CodeLibrary.add_ir_module`` so that every function it is given carries
    :data:`_VECTOR_WIDTH_ATTR`. llvmlite names only enum attributes, so the string attribute
    goes into the function's attribute set directly (it is printed verbatim)."""

    def add(library: object, ir_module: object) -> None:
        for fn in getattr(ir_module, "functions", ()):
            if not fn.is_declaration:
                set.add(fn.attributes, _VECTOR_WIDTH_ATTR)
        add_ir_module(library, ir_module)

    return add


def _wide_vectors(dtype: np.dtype | None) -> bool:
    """Whether kernels for states of ``dtype`` compile for 512-bit vectors: complex128 on a
    host with AVX-512F, unless ``HAL_SIM_VECTOR256`` is set (an A/B knob for benchmarks: numba's
    disk cache does not key on it, so use it with a fresh ``NUMBA_CACHE_DIR``)."""
    if dtype is None or np.dtype(dtype) != np.complex128 or os.environ.get("HAL_SIM_VECTOR256"):
        return False
    try:
        from llvmlite import binding as ll

        return bool(ll.get_host_cpu_features().get("avx512f", False))
    except Exception:
        return False


@contextlib.contextmanager
def slp_enabled(dtype: np.dtype | None = None) -> Iterator[None]:
    """Turn on LLVM's SLP vectoriser, and for complex128 states on AVX-512 hosts 512-bit
    vectors (:func:`_wide_vectors`), for compilations inside the block. Callers hold the
    kernel compile lock, so no other kernel of ours compiles meanwhile; numba code that
    another thread compiles at that moment would get the same settings (only code-generation
    choices, never results)."""
    from numba.core.codegen import CPUCodeLibrary

    old = numba.config.SLP_VECTORIZE
    old_add = CPUCodeLibrary.add_ir_module
    numba.config.SLP_VECTORIZE = 1
    if _wide_vectors(dtype):
        CPUCodeLibrary.add_ir_module = _with_vector_width(old_add)  # type: ignore[method-assign]
    try:
        yield
    finally:
        numba.config.SLP_VECTORIZE = old
        CPUCodeLibrary.add_ir_module = old_add  # type: ignore[method-assign]


def signatures(dtype: np.dtype) -> dict[str, list[tuple[object, ...]]]:
    """The signatures each kernel is compiled for, by kernel name."""
    from numba import types as t

    c = numba.from_dtype(dtype)
    f = numba.from_dtype(np.dtype(np.float32 if dtype == np.complex64 else np.float64))
    i64 = t.int64
    vec = t.Array(c, 1, "C")
    ivec = t.Array(i64, 1, "C")
    imat = t.Array(i64, 2, "C")
    fmat = t.Array(f, 2, "C")
    cmat = t.Array(c, 2, "C")
    fvec = t.Array(t.float64, 1, "C")
    stage = (vec, i64, i64, t.boolean, vec, t.Array(f, 1, "C"), fvec, i64, ivec, ivec, ivec,
             ivec, ivec, imat, imat, imat, imat, imat, imat, vec, fmat, fmat, fmat, imat)
    return {
        "run_direct": [(cmat, imat, ivec, cmat)],
        "run_direct_parallel": [(vec, ivec, vec, i64, i64)],
        "run_stage": [stage],
        "stage_template": [(vec, i64, imat, imat, imat, imat, imat, imat, vec,
                            t.Array(f, 1, "C"), t.Array(f, 1, "C"), t.Array(f, 1, "C"), ivec)],
        "run_stage_parallel": [stage],
        "prob_one": [(vec, i64, i64)],
        "prob_one_serial": [(vec, i64)],
        "collapse": [(vec, i64, i64, t.float64, t.boolean, i64)],
        "collapse_serial": [(vec, i64, i64, t.float64, t.boolean)],
        "block_norms": [(vec, i64, i64)],
        "block_norms_serial": [(vec, i64)],
        "scan_blocks": [(vec, i64, t.Array(t.float64, 1, "C"), t.Array(t.float64, 1, "C"),
                       ivec, i64)],
        "scan_blocks_serial": [(vec, i64, t.Array(t.float64, 1, "C"),
                              t.Array(t.float64, 1, "C"), ivec)],
        "scan_stage": [(vec, i64, ivec, ivec, ivec, ivec, fvec, fvec, ivec, i64)],
        "scan_stage_serial": [(vec, i64, ivec, ivec, ivec, ivec, fvec, fvec, ivec)],
        "permute": [(vec, ivec, i64)],
        "permute_serial": [(vec, ivec)],
        "pauli_expectation": [(vec, i64, i64, i64)],
        "pauli_expectation_serial": [(vec, i64, i64)],
    }


