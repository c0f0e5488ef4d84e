"""RateToCurrent: linear and sigmoid rate (Hz) -> current maps against their formulas."""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

P = 100_000
CTX = AdapterContext("src.r -> dst.i", 1_000_000, P)


def apply(spec, r):
    r = np.asarray(r, dtype=np.float64).reshape(len(r), -1)
    incoming = SignalSpec("rate", r.shape[1], "Hz", P)
    return spec.build(incoming, CTX)(0, P * len(r), ps.Samples(0, P, r)).data


def test_linear_is_gain_times_rate_plus_offset():
    spec = ps.adapters.RateToCurrent(gain=0.5, offset=-3.0)
    assert spec.signature(SignalSpec("rate", 2, "Hz", P), CTX) == SignalSpec("analog", 2, "pA", P)
    np.testing.assert_array_equal(apply(spec, [[0.0, 10.0], [4.0, 100.0]]), [[-3.0, 2.0], [-1.0, 47.0]])


def test_sigmoid_floor_half_point_ceiling_and_slope():
    """I = offset + i_max / (1 + exp(-(r - r_half)/w)): offset far below, offset + i_max/2 at
    r_half, offset + i_max far above, slope i_max / (4 w) at r_half."""
    spec = ps.adapters.RateToCurrent(function="sigmoid", offset=10.0, i_max=200.0, r_half_Hz=20.0,
                                     width_Hz=4.0, units="pA")
    i = apply(spec, [-1e6, 20.0, 1e6, 19.999, 20.001])[:, 0]
    assert i[:3].tolist() == pytest.approx([10.0, 110.0, 210.0], rel=1e-14)
    assert (i[4] - i[3]) / 0.002 == pytest.approx(200.0 / 16.0, rel=1e-6)  # central difference, O(h^2)
    r = np.linspace(0, 50, 11)
    np.testing.assert_allclose(apply(spec, r)[:, 0], 10.0 + 200.0 / (1 + np.exp(-(r - 20.0) / 4.0)), rtol=1e-14)


def test_what_it_consumes_and_field_errors():
    spec = ps.adapters.RateToCurrent(units="nA")
    assert spec.signature(SignalSpec("analog", 1, "Hz", P), CTX).units == "nA"
    with pytest.raises(ps.ModelError, match=r"consumes a rate in Hz \(a sampled signal\), but receives 'spikes'"):
        spec.signature(SignalSpec("spikes", 1), CTX)
    with pytest.raises(ps.ModelError, match=r"consumes a rate in Hz, but receives 'analog' in 'mV'"):
        spec.signature(SignalSpec("analog", 1, "mV", P), CTX)
    with pytest.raises(ps.ModelError, match=r"rate_to_current: 'width_Hz' must be a finite number > 0 \(got -2"):
        ps.adapters.RateToCurrent(function="sigmoid", width_Hz=-2)
    with pytest.raises(ps.ModelError, match=r"'function' must be one of 'linear', 'sigmoid' \(got 'tanh'\)"):
        ps.adapters.RateToCurrent(function="tanh")


def test_rate_to_current_on_a_spikes_port_is_rejected_in_a_model():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("src", ps.solvers.SpikeTrain(times_ms=[1.0]))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], input_units="pA"))
    m.couple("src.spikes", "dst.u", delay_ms=1.0, via=[ps.adapters.RateToCurrent()])
    with pytest.raises(ps.ModelError, match=r"coupling src.spikes -> dst.u: adapter 1 \(rate_to_current\): "
                                            r"consumes a rate in Hz \(a sampled signal\), but receives 'spikes'"):
        ps.check(m)


def test_coupled_run_on_every_transport(transport):
    """20 Hz source --1 ms--> sigmoid current --> x' = u (pA): u = I(0) before 1 ms (the source
    reads 0 before t = 0), then I(20); x_k = 0.1 sum_{j<k} u_j."""
    spec = ps.adapters.RateToCurrent(function="sigmoid", offset=-5.0, i_max=50.0, r_half_Hz=10.0, width_Hz=5.0)
    m = ps.Model(seed=3, t_stop_ms=4.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], x0=[20.0], units="Hz"))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], input_units="pA"))
    m.couple("src.x", "dst.u", delay_ms=1.0, via=[spec])
    m.record("dst.x")
    x = ps.run(m, transport=transport).signal("dst", "x").data[:, 0]
    i = lambda r: -5.0 + 50.0 / (1 + np.exp(-(r - 10.0) / 5.0))  # noqa: E731
    u = np.where(np.arange(40) < 10, i(0.0), i(20.0))
    np.testing.assert_allclose(x, 0.1 * np.concatenate([[0.0], np.cumsum(u)[:-1]]), rtol=1e-12)
