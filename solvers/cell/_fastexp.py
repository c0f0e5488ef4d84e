"""A scalar exp (and log) that LLVM can inline and vectorise, for the mechanisms' rate code.

numba lowers ``math.exp`` to a call into libm (this numba has no SVML), one call per
element, which keeps the loops over the cells of a block from vectorising. :func:`fexp` is
the same function in plain float and integer arithmetic, branch-free, so that a loop of
mechanism code over cells becomes SIMD code. It is fdlibm's ``__ieee754_exp`` (also musl's
and FreeBSD's exp before 2018): x = k ln2 + r with k = round(x / ln2) and |r| <= ln2 / 2
(ln2 split in a high part with trailing zeros, so that k ln2_hi is exact), exp(r) from a
degree-5 minimax rational form ``1 + r + r c / (2 - c)``, then 2^k. fdlibm states an error
below 1 ulp; tests/test_cell_fastexp.py measures it against math.exp (the platform's libm,
itself within ~0.5 ulp) over the whole double range: at most 1 ulp apart (1e7 uniform
arguments: about 10 % of the results differ from libm's, by 1 ulp), exp(0) = 1 exactly.
In a vectorised loop it costs about 1.2 ns per element against libm's 5-7 ns per call.

Differences from libm: none in the special values (exp(0) = 1, exp(-inf) = 0, exp(inf) =
inf, NaN in NaN out, overflow to inf above 709.78, gradual underflow to 0 below -745.13);
finite results may differ from libm's by one unit in the last place, deterministically (the
same bits on every machine: only IEEE +, -, *, / in a fixed order, no fused multiply-add as
fastmath stays off).

:func:`flog` is fdlibm's log the same way (within 1 ulp of math.log), for SK_E2's power
(cai^4.8 as exp(4.8 log)) and the Nernst eca of the generated kernels.

Both are written as LLVM IR into the function that calls them (``_exp_ir``, ``_log_ir``), not
called: a generated cell kernel is optimised before numba links its callees in, and LLVM left
12 fexp calls in the Hay kernel's block function, whose loops then stayed scalar (the process
that compiled the kernel ran it ~3x slower than a later one loading it from numba's cache).
``fexp_reference`` / ``flog_reference`` are the same arithmetic as numba code, for the tests.
"""
from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .._jit import njit


@intrinsic
def _as_int64(typingctx, x):
    """The bits of a float64 as an int64 (LLVM bitcast: no call, vectorises)."""
    if not isinstance(x, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return sig, codegen


@intrinsic
def _as_float64(typingctx, i):
    """An int64's bits as a float64 (LLVM bitcast)."""
    if not isinstance(i, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return sig, codegen


_LOG2E = 1.44269504088896338700e+00
_LN2_HI = 6.93147180369123816490e-01       # 0x3fe62e42_fee00000: k * _LN2_HI exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
# fdlibm e_exp.c
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
# 1.5 * 2^52: x / ln2 + _SHIFT rounds x / ln2 to the nearest integer k in the low mantissa bits
_SHIFT = 6755399441055744.0
_SHIFT_BITS = 0x4338000000000000
# below -745.14 the result is 0, above 709.79 it is inf: clamping keeps k in [-1076, 1024]
_X_MIN, _X_MAX = -746.0, 710.0


def _fexp_reference(x):
    """fexp's arithmetic as plain Python/numba code (the same operations in the same order as
    the LLVM IR of :func:`_exp_ir`); tests compare the two bit for bit."""
    # clamp (selects; NaN fails both tests and stays NaN)
    x = _X_MIN if x < _X_MIN else x
    x = _X_MAX if x > _X_MAX else x
    kd = x * _LOG2E + _SHIFT
    k = _as_int64(kd) - _SHIFT_BITS            # round(x / ln2): same exponent as _SHIFT
    kf = kd - _SHIFT
    hi = x - kf * _LN2_HI
    lo = kf * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # 2^k as two factors 2^k1 2^k2 that are both normal numbers for every k of the clamped
    # range: y 2^k1 is exact, and the product with 2^k2 rounds once (gradual underflow, inf)
    k1 = k >> 1
    k2 = k - k1
    return (y * _as_float64((k1 + 1023) << 52)) * _as_float64((k2 + 1023) << 52)


@intrinsic
def _exp_ir(typingctx, x):
    """fexp written straight into the caller's LLVM IR (the operations of
    :func:`_fexp_reference`, in its order; plain fmul/fadd, no fast-math flags, so no fused
    multiply-add). Why not a call: numba optimises a kernel's own module before it links the
    callees in, and a loop that still calls fexp there is not vectorised; a process that
    compiled the Hay kernel ran it 3x slower than one that loaded it from the cache (whose
    copy had been re-optimised with fexp inlined). numba's inline='always' fixes that too, but
    doubled the kernel's compile time."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    sig = types.float64(x)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        i64 = ir.IntType(64)
        xv = context.cast(builder, args[0], signature.args[0], types.float64)

        def c(v):
            return ir.Constant(f64, v)
        xv = builder.select(builder.fcmp_ordered("<", xv, c(_X_MIN)), c(_X_MIN), xv)
        xv = builder.select(builder.fcmp_ordered(">", xv, c(_X_MAX)), c(_X_MAX), xv)
        kd = builder.fadd(builder.fmul(xv, c(_LOG2E)), c(_SHIFT))
        k = builder.sub(builder.bitcast(kd, i64), ir.Constant(i64, _SHIFT_BITS))
        kf = builder.fsub(kd, c(_SHIFT))
        hi = builder.fsub(xv, builder.fmul(kf, c(_LN2_HI)))
        lo = builder.fmul(kf, c(_LN2_LO))
        r = builder.fsub(hi, lo)
        t = builder.fmul(r, r)
        poly = builder.fadd(c(_P4), builder.fmul(t, c(_P5)))
        for p in (_P3, _P2, _P1):
            poly = builder.fadd(c(p), builder.fmul(t, poly))
        cc = builder.fsub(r, builder.fmul(t, poly))
        q = builder.fdiv(builder.fmul(r, cc), builder.fsub(c(2.0), cc))
        y = builder.fsub(c(1.0), builder.fsub(builder.fsub(lo, q), hi))
        k1 = builder.ashr(k, ir.Constant(i64, 1))
        k2 = builder.sub(k, k1)

        def pow2(kk):
            return builder.bitcast(builder.shl(builder.add(kk, ir.Constant(i64, 1023)), ir.Constant(i64, 52)), f64)
        return builder.fmul(builder.fmul(y, pow2(k1)), pow2(k2))
    return sig, codegen


@njit(error_model="numpy", inline="always")
def fexp(x):
    """exp(x) for a float64 x, within 1 ulp of the correctly rounded value (see the module
    docstring), as straight-line IR in the caller (:func:`_exp_ir`), which LLVM vectorises."""
    return _exp_ir(x)


#: fexp's arithmetic compiled as ordinary numba code (tests: the same bits as fexp)
fexp_reference = njit(error_model="numpy")(_fexp_reference)


# fdlibm e_log.c
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_TWO54 = 18014398509481984.0
_MIN_NORMAL = 2.2250738585072014e-308


def _flog_reference(x):
    """flog's arithmetic as numba code (the operations of :func:`_log_ir`, in its order).

    log(x) for a float64 x, fdlibm's ``__ieee754_log`` without branches (both of its
    final forms computed, one selected; subnormals scaled by 2^54 first): within 1 ulp (fdlibm's
    bound; tests/test_cell_fastexp.py measures it against math.log). log(1) = 0 exactly,
    log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN in NaN out."""
    sub = x < _MIN_NORMAL
    xs = x * _TWO54 if sub else x
    bits = _as_int64(xs)
    hx = bits >> 32
    k = (hx >> 20) - (1023 + 54 if sub else 1023)
    hx = hx & 0x000fffff
    i = (hx + 0x95f64) & 0x100000
    # x scaled into [sqrt(2)/2, sqrt(2)): the exponent becomes 0 or -1
    m = _as_float64(((hx | (i ^ 0x3ff00000)) << 32) | (bits & 0xffffffff))
    k = k + (i >> 20)
    f = m - 1.0
    s = f / (2.0 + f)
    dk = float(k)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    hfsq = 0.5 * f * f
    big = ((hx - 0x6147a) | (0x6b851 - hx)) > 0
    a = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    b = dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)
    out = a if big else b
    out = -math.inf if x == 0.0 else out
    out = math.nan if x < 0.0 else out
    out = x if x == math.inf else out
    return x if x != x else out



@intrinsic
def _log_ir(typingctx, x):
    """flog written straight into the caller's LLVM IR, as :func:`_exp_ir` (the operations of
    :func:`_flog_reference` in its order; its branches are selects)."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    sig = types.float64(x)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        i64 = ir.IntType(64)
        xv = context.cast(builder, args[0], signature.args[0], types.float64)

        def c(v):
            return ir.Constant(f64, v)

        def n(v):
            return ir.Constant(i64, v)
        sub = builder.fcmp_ordered("<", xv, c(_MIN_NORMAL))
        xs = builder.select(sub, builder.fmul(xv, c(_TWO54)), xv)
        bits = builder.bitcast(xs, i64)
        hx = builder.ashr(bits, n(32))
        k = builder.sub(builder.ashr(hx, n(20)), builder.select(sub, n(1023 + 54), n(1023)))
        hx = builder.and_(hx, n(0x000fffff))
        i = builder.and_(builder.add(hx, n(0x95f64)), n(0x100000))
        m = builder.bitcast(builder.or_(builder.shl(builder.or_(hx, builder.xor(i, n(0x3ff00000))), n(32)),
                                        builder.and_(bits, n(0xffffffff))), f64)
        k = builder.add(k, builder.ashr(i, n(20)))
        f = builder.fsub(m, c(1.0))
        s = builder.fdiv(f, builder.fadd(c(2.0), f))
        dk = builder.sitofp(k, f64)
        z = builder.fmul(s, s)
        w = builder.fmul(z, z)
        t1 = builder.fmul(w, builder.fadd(c(_LG2), builder.fmul(w, builder.fadd(c(_LG4), builder.fmul(w, c(_LG6))))))
        t2 = builder.fmul(z, builder.fadd(c(_LG1), builder.fmul(w, builder.fadd(
            c(_LG3), builder.fmul(w, builder.fadd(c(_LG5), builder.fmul(w, c(_LG7))))))))
        r = builder.fadd(t2, t1)
        hfsq = builder.fmul(builder.fmul(c(0.5), f), f)
        big = builder.icmp_signed(">", builder.or_(builder.sub(hx, n(0x6147a)), builder.sub(n(0x6b851), hx)), n(0))
        dhi = builder.fmul(dk, c(_LN2_HI))
        dlo = builder.fmul(dk, c(_LN2_LO))
        a = builder.fsub(dhi, builder.fsub(builder.fsub(hfsq, builder.fadd(builder.fmul(s, builder.fadd(hfsq, r)), dlo)), f))
        b = builder.fsub(dhi, builder.fsub(builder.fsub(builder.fmul(s, builder.fsub(f, r)), dlo), f))
        out = builder.select(big, a, b)
        out = builder.select(builder.fcmp_ordered("==", xv, c(0.0)), c(-math.inf), out)
        out = builder.select(builder.fcmp_ordered("<", xv, c(0.0)), c(math.nan), out)
        out = builder.select(builder.fcmp_ordered("==", xv, c(math.inf)), xv, out)
        return builder.select(builder.fcmp_unordered("!=", xv, xv), xv, out)
    return sig, codegen


@njit(error_model="numpy", inline="always")
def flog(x):
    """log(x) for a float64 x, fdlibm's ``__ieee754_log`` without branches (both of its final
    forms computed, one selected; subnormals scaled by 2^54 first): within 1 ulp (fdlibm's
    bound; tests/test_cell_fastexp.py measures it against math.log), as straight-line IR in
    the caller (:func:`_log_ir`). log(1) = 0 exactly, log(0) = -inf, log(x < 0) = NaN,
    log(inf) = inf, NaN in NaN out."""
    return _log_ir(x)


#: flog's arithmetic compiled as ordinary numba code (tests: the same bits as flog)
flog_reference = njit(error_model="numpy")(_flog_reference)


__all__ = ["fexp", "fexp_reference", "flog", "flog_reference"]
