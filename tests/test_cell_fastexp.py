"""solvers/cell/_fastexp.py: the mechanisms' vectorisable exp and log against the platform's
libm (math.exp, math.log), over the whole double range, at the special values, and as SIMD
code."""
import math

import numba
import numpy as np
import pytest

from polyscale.solvers.cell._fastexp import fexp, fexp_reference, flog, flog_reference


@numba.njit(cache=False)
def _fexp_array(x, out):
    for i in range(x.shape[0]):
        out[i] = fexp(x[i])


@numba.njit(cache=False)
def _flog_array(x, out):
    for i in range(x.shape[0]):
        out[i] = flog(x[i])


def _ulp_distance(a, b):
    # finite doubles of one sign: the integer distance of their bit patterns is in ulps
    return np.abs(a.view(np.int64) - b.view(np.int64))


def _libm(x):
    return np.array([math.exp(v) for v in x.tolist()])


def test_within_one_ulp_of_libm_over_the_whole_range():
    """9e5 arguments: uniform over the finite, non-zero range of exp (-745.13..709.78), uniform
    over the rate code's -60..60, and log-uniform in magnitude 1e-300..700 (tiny arguments,
    where exp(x) is 1 + x). fdlibm's algorithm is within 1 ulp of the true value; libm within
    ~0.5: at most 1 ulp apart."""
    rng = np.random.default_rng(7)
    n = 300_000
    x = np.concatenate([rng.uniform(-745.13, 709.78, n), rng.uniform(-60.0, 60.0, n),
                        np.exp(rng.uniform(math.log(1e-300), math.log(700.0), n - 50_000))
                        * rng.choice([-1.0, 1.0], n - 50_000)])
    out = np.empty_like(x)
    _fexp_array(x, out)
    d = _ulp_distance(out, _libm(x))
    assert d.max() <= 1, x[d.argmax()]
    # the 1-ulp cases are a minority (about 10 %), not a systematic offset
    assert (d > 0).mean() < 0.2


def test_special_values_and_range_ends():
    """exp(+-0) = 1 exactly; inf, -inf, NaN; the largest finite result and the first overflow;
    gradual underflow: the smallest subnormal and the first argument that rounds to 0."""
    for x, want in [(0.0, 1.0), (-0.0, 1.0), (math.inf, math.inf), (-math.inf, 0.0), (1e308, math.inf),
                    (-1e308, 0.0), (5e-324, 1.0), (-5e-324, 1.0), (1e-17, 1.0), (-1e-17, 1.0)]:
        assert fexp(x) == want, x
    assert math.isnan(fexp(math.nan))
    top = 709.782712893384
    assert fexp(top) == math.exp(top) == 1.7976931348622732e+308
    assert fexp(math.nextafter(top, math.inf)) == math.inf
    bottom = -745.1332191019411
    assert fexp(bottom) == math.exp(bottom) == 5e-324
    assert fexp(math.nextafter(bottom, -math.inf)) == 0.0


def test_subnormal_results_within_one_unit_of_libm():
    """Results below 2.2e-308 (arguments -745.13..-708.4) keep gradual underflow: at most one
    unit of the subnormal spacing (4.9e-324) from libm's."""
    x = np.random.default_rng(3).uniform(-745.13, -708.4, 100_000)
    out = np.empty_like(x)
    _fexp_array(x, out)
    assert _ulp_distance(out, _libm(x)).max() <= 1
    assert (out > 0).all()


def test_array_loop_is_simd_and_gives_the_scalar_bits():
    """A loop of fexp over an array compiles to vector instructions (LLVM IR with <N x double>
    operations, no call to libm's exp), and its results are the bits of scalar calls: no
    fused multiply-add or other rewrite depends on how the loop was compiled."""
    x = np.random.default_rng(5).uniform(-50.0, 50.0, 1001)
    out = np.empty_like(x)
    _fexp_array(x, out)
    ir = _fexp_array.inspect_llvm(_fexp_array.signatures[0])
    assert " x double>" in ir
    assert "@exp(" not in ir and "llvm.exp." not in ir
    assert np.array_equal(out, np.array([fexp(v) for v in x]))
    y = np.abs(x) + 1e-3
    _flog_array(y, out)
    ir = _flog_array.inspect_llvm(_flog_array.signatures[0])
    assert " x double>" in ir and "@log(" not in ir and "llvm.log." not in ir
    assert np.array_equal(out, np.array([flog(v) for v in y]))


def test_log_within_one_ulp_of_libm():
    """flog: 6e5 arguments log-uniform over the normal range (1e-307..1e308), uniform on
    0.5..2 (near log's zero, where fdlibm switches forms) and on the subnormals: at most 1 ulp
    from math.log."""
    rng = np.random.default_rng(9)
    x = np.concatenate([np.exp(rng.uniform(-706.0, 709.0, 300_000)), rng.uniform(0.5, 2.0, 250_000),
                        rng.uniform(0.0, 2.2e-308, 50_000)])
    out = np.empty_like(x)
    _flog_array(x, out)
    ref = np.array([math.log(v) for v in x.tolist()])
    pos, neg = ref >= 0, ref < 0
    assert _ulp_distance(out[pos], ref[pos]).max() <= 1
    assert _ulp_distance(out[neg], ref[neg]).max() <= 1
    assert np.all(np.sign(out) == np.sign(ref))


def test_log_special_values():
    assert flog(1.0) == 0.0
    assert flog(2.0) == math.log(2.0) and flog(0.5) == math.log(0.5)
    assert flog(0.0) == -math.inf and flog(-0.0) == -math.inf
    assert flog(math.inf) == math.inf
    assert math.isnan(flog(-1.0)) and math.isnan(flog(-math.inf)) and math.isnan(flog(math.nan))
    assert flog(5e-324) == math.log(5e-324)


@pytest.mark.slow
def test_ten_million_arguments():
    """The brief's check at full size: 1e7 uniform arguments over the finite range, <= 1 ulp."""
    x = np.random.default_rng(11).uniform(-745.13, 709.78, 10_000_000)
    out = np.empty_like(x)
    _fexp_array(x, out)
    assert _ulp_distance(out, _libm(x)).max() <= 1


@pytest.mark.slow
def test_vectorised_mechanisms_give_each_cell_the_bits_of_a_lone_cell():
    """The example's L5 cell (all Hay channels; one somatic Ih value for all) alone (scalar
    loops), as 2 cells, and as 9 cells in one block padded to 16 columns (SIMD loops): the
    same soma trace, bit for bit, in every cell; it fires."""
    from pathlib import Path
    from polyscale.coordinator.config import load_model
    from polyscale.coordinator.time import TICKS_PER_MS
    from polyscale.solvers.cell.mechanisms import IClamp

    def run(n):
        spec = load_model(Path(__file__).parents[1] / "examples" / "l5_cells.py",
                          {"n_cells": n, "t_stop_ms": 30.0}).solvers["cells"]
        mechs = tuple(m.replace(params={"gIhbar_S_cm2": 2e-4}) if (m.mechanism, m.where) == ("Ih", "soma") else m
                      for m in spec.mechanisms)
        spec = spec.replace(synapses=(), record_currents=False, mechanisms=mechs,
                            iclamps=(IClamp(section="soma", delay_ms=2.0, dur_ms=25.0, amp_nA=0.8),))
        s = spec.build(None)
        return s, s.advance(0, int(30 * TICKS_PER_MS), {}).outputs["v_soma"].data

    _, one = run(1)
    assert one.max() > 0.0
    for n in (2, 9):
        s, v = run(n)
        assert n < 9 or s.block == 16
        for c in range(n):
            assert np.array_equal(v[:, c], one[:, 0]), (n, c)


@numba.njit(cache=False)
def _both(x, a, b):
    for i in range(x.shape[0]):
        a[i] = fexp(x[i])
        b[i] = fexp_reference(x[i])


@numba.njit(cache=False)
def _both_log(x, a, b):
    for i in range(x.shape[0]):
        a[i] = flog(x[i])
        b[i] = flog_reference(x[i])


def test_ir_exp_gives_the_bits_of_its_numba_arithmetic():
    """fexp is written into the caller's LLVM IR by hand (_fastexp._exp_ir); it must give the
    bits of the same fdlibm arithmetic written as numba code (fexp_reference, whose accuracy the
    tests above also bound against libm), over 2e6 arguments across the clamped range, around 0
    and at the special values."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-760.0, 720.0, 1_000_000), rng.uniform(-5.0, 5.0, 1_000_000),
                        [0.0, -0.0, math.inf, -math.inf, math.nan, 709.78, -745.13, 5e-324, -1e-300]])
    a, b = np.empty_like(x), np.empty_like(x)
    _both(x, a, b)
    assert np.array_equal(a.view(np.int64), b.view(np.int64))
    assert fexp(1) == fexp(1.0)                                   # integer arguments cast


def test_ir_log_gives_the_bits_of_its_numba_arithmetic():
    """flog (_fastexp._log_ir, hand-written IR) against the same fdlibm arithmetic as numba
    code (flog_reference): the same bits over 2e6 log-uniform arguments from the subnormals to
    1e308, around 1, negative numbers and the special values."""
    rng = np.random.default_rng(12)
    x = np.concatenate([10.0 ** rng.uniform(-323.0, 308.0, 1_500_000), rng.uniform(0.5, 2.0, 500_000),
                        -rng.uniform(0.0, 5.0, 100), [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 5e-324]])
    a, b = np.empty_like(x), np.empty_like(x)
    _both_log(x, a, b)
    assert np.array_equal(a.view(np.int64), b.view(np.int64))
    assert flog(2) == flog(2.0)
