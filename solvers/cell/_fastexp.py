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
"""
from __future__ import annotations

import math

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


@njit(error_model="numpy")
def fexp(x):
    """exp(x) for a float64 x, within 1 ulp of the correctly rounded value (see the module
    docstring), in arithmetic that LLVM inlines and vectorises."""
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


@njit(error_model="numpy")
def flog(x):
    """log(x) for a float64 x, fdlibm's ``__ieee754_log`` without branches (both of its
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


__all__ = ["fexp", "flog"]
