"""TransferFunction: mean potential (mV) -> rate (Hz), against the published functions."""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

P = 100_000
CTX = AdapterContext("src.x -> dst.u", 1_000_000, P)


def apply(spec, v):
    v = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
    incoming = SignalSpec("analog", v.shape[1], "mV", P)
    return spec.build(incoming, CTX)(0, P * len(v), ps.Samples(0, P, v)).data


def test_default_is_jansen_rit_sigmoid():
    """Jansen & Rit (1995): S(v) = 2 e0 / (1 + exp(r (v0 - v))), e0 = 2.5 /s, v0 = 6 mV,
    r = 0.56 /mV. Closed form, float rounding only."""
    v = np.linspace(-20, 40, 61)
    np.testing.assert_allclose(apply(ps.adapters.TransferFunction(), v)[:, 0],
                               5.0 / (1 + np.exp(0.56 * (6.0 - v))), rtol=1e-13)


def test_sigmoid_matches_tvb_jansen_rit():
    """TVB's JansenRit computes the same sigmoid inside dfun: with y0 = y3 = 0 the derivative of
    y3 is A a S(y1 - y2) (1/ms), so S = dfun[3] / (A a); polyscale with TVB's parameters (v0 =
    5.52 mV, nu_max = 0.0025 /ms = 2.5 Hz) must give S * 1000 Hz."""
    models = pytest.importorskip("tvb.simulator.models", reason="needs tvb-library")
    jr = models.JansenRit()
    jr.configure()
    v = np.linspace(-10, 30, 9)
    y = np.zeros((6, len(v), 1))
    y[1, :, 0] = v
    c = np.zeros((2, len(v), 1))
    s_tvb = jr.dfun(y, c)[3, :, 0] / (jr.A[0] * jr.a[0]) * 1000.0
    spec = ps.adapters.TransferFunction(r_max_Hz=2 * jr.nu_max[0] * 1000.0, v_half_mV=float(jr.v0[0]),
                                        slope_per_mV=float(jr.r[0]))
    np.testing.assert_allclose(apply(spec, v)[:, 0], s_tvb, rtol=1e-12)


def test_sigmoid_half_point_and_slope():
    spec = ps.adapters.TransferFunction(r_max_Hz=80.0, v_half_mV=-50.0, slope_per_mV=0.25)
    r = apply(spec, [-50.0, -50.001, -49.999])[:, 0]
    assert r[0] == pytest.approx(40.0, rel=1e-14)
    # slope at the half point r_max * slope / 4 = 5 Hz/mV; central difference error ~ h^2
    assert (r[2] - r[1]) / 0.002 == pytest.approx(5.0, rel=1e-6)


def test_threshold_linear_with_and_without_ceiling():
    v = [-60.0, -55.0, -50.0, -40.0, 0.0]
    free = ps.adapters.TransferFunction(function="threshold_linear", v_th_mV=-55.0, gain_Hz_per_mV=2.0)
    assert apply(free, v)[:, 0].tolist() == [0.0, 0.0, 10.0, 30.0, 110.0]
    capped = free.replace(r_cap_Hz=25.0)
    assert apply(capped, v)[:, 0].tolist() == [0.0, 0.0, 10.0, 25.0, 25.0]


def test_kinds_and_units_that_do_not_fit():
    spec = ps.adapters.TransferFunction()
    assert spec.signature(SignalSpec("analog", 3, "mV", P), CTX) == SignalSpec("rate", 3, "Hz", P)
    with pytest.raises(ps.ModelError, match=r"consumes a mean potential \(a sampled signal\), but receives 'spikes'"):
        spec.signature(SignalSpec("spikes", 3), CTX)
    with pytest.raises(ps.ModelError, match=r"consumes a mean potential in 'mV' or '', but receives 'rate' in 'Hz'"):
        spec.signature(SignalSpec("rate", 3, "Hz", P), CTX)
    with pytest.raises(ps.ModelError, match=r"transfer_function: 'slope_per_mV' must be a finite number > 0 \(got 0"):
        ps.adapters.TransferFunction(slope_per_mV=0)
    with pytest.raises(ps.ModelError, match=r"'function' must be one of 'sigmoid', 'threshold_linear' \(got 'relu'\)"):
        ps.adapters.TransferFunction(function="relu")


def test_non_finite_potential_stops_the_run():
    with pytest.raises(ps.SolverError, match=r"transfer_function received inf mV on channel 1 in sample 2"):
        apply(ps.adapters.TransferFunction(), [[0.0, 0.0], [0.0, 0.0], [0.0, np.inf]])


def test_potential_to_rate_to_current_chain_on_every_transport(transport):
    """mV source (10 mV from t = 0) --1 ms--> [JR sigmoid -> linear 2 pA/Hz] --> x' = u (pA).
    Before 1 ms the source reads 0 mV (the run starts at rest): u = 2 S(0), then u = 2 S(10)."""
    m = ps.Model(seed=2, t_stop_ms=5.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], x0=[10.0], units="mV"))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], input_units="pA"))
    m.couple("src.x", "dst.u", delay_ms=1.0,
             via=[ps.adapters.TransferFunction(), ps.adapters.RateToCurrent(gain=2.0, units="pA")])
    m.record("dst.x")
    x = ps.run(m, transport=transport).signal("dst", "x").data[:, 0]
    s = lambda v: 5.0 / (1 + np.exp(0.56 * (6.0 - v)))  # noqa: E731
    u = np.where(np.arange(50) < 10, 2 * s(0.0), 2 * s(10.0))
    np.testing.assert_allclose(x, 0.1 * np.concatenate([[0.0], np.cumsum(u)[:-1]]), rtol=1e-12)
