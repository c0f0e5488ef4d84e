"""SpikesToCurrent: PSC kernels, charge, shot-noise statistics (Campbell), windows, coupled run."""
from __future__ import annotations

import math

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext
from conftest import feed_spikes

MS = 1_000_000
P = 100_000             # target period 0.1 ms


def current(spec, n, ticks, ids, t_stop, cuts=(), period=P):
    """Feed spikes (sorted) to ``spec`` in windows cut at the ticks ``cuts``; (S, C) output."""
    return feed_spikes(spec, n, ticks, ids, t_stop, cuts, period, coupling="src.spikes -> dst.i")


def test_one_spike_gives_the_psc_of_its_amplitude():
    """Spike at 1.0 ms: exp PSC J exp(-u/tau); alpha PSC J (u/tau) exp(1 - u/tau), whose peak J
    falls on the sample at u = tau = 0.5 ms. Exact propagation: float rounding only (1e-12)."""
    t = np.arange(50) * 0.1
    u = t - 1.0
    j, tau = -30.0, 0.5
    exp = current(ps.adapters.SpikesToCurrent(kernel="exponential", tau_ms=tau, amplitude=j),
                  1, np.array([MS]), np.array([0]), 5 * MS)[:, 0]
    np.testing.assert_allclose(exp, np.where(u >= -1e-9, j * np.exp(-np.maximum(u, 0) / tau), 0.0),
                               rtol=1e-12, atol=1e-12)
    alpha = current(ps.adapters.SpikesToCurrent(kernel="alpha", tau_ms=tau, amplitude=j),
                    1, np.array([MS]), np.array([0]), 5 * MS)[:, 0]
    np.testing.assert_allclose(alpha, np.where(u >= 0, j * u / tau * np.exp(1 - u / tau), 0.0),
                               rtol=1e-12, atol=1e-12)
    assert alpha.min() == pytest.approx(j, rel=1e-12) and np.argmin(alpha) == 15


def test_charge_of_spikes_on_the_grid_is_a_geometric_sum_across_windows():
    """Spikes on sample ticks s_i; sum of samples = J sum_i (1 - d^(S - s_i)) / (1 - d), with
    d = exp(-period / tau): no spike lost or counted twice at the window edges."""
    tau, j, s_n = 1.0, 2.0, 400
    samples = np.array([0, 9, 10, 10, 11, 99, 100, 250, 399])
    spec = ps.adapters.SpikesToCurrent(tau_ms=tau, amplitude=j)
    out = current(spec, 3, samples * P, np.arange(len(samples)) % 3, s_n * P,
                  cuts=[10 * P, 11 * P, 100 * P, 333 * P])
    d = math.exp(-0.1 / tau)
    assert out.sum() == pytest.approx(j * np.sum((1 - d ** (s_n - samples)) / (1 - d)), rel=1e-12)


@pytest.mark.parametrize("kernel", ["exponential", "alpha"])
def test_any_window_split_gives_the_result_of_one_window(kernel):
    rng = np.random.default_rng(4)
    t_stop = 20 * MS
    ticks = np.sort(np.concatenate([rng.integers(0, t_stop, 200), [0, 3 * P, 3 * P + 1, t_stop - 1]]))
    ids = rng.integers(0, 3, len(ticks))
    spec = ps.adapters.SpikesToCurrent(kernel=kernel, tau_ms=0.7, amplitude=5.0, per_channel=True)
    ref = current(spec, 3, ticks, ids, t_stop)
    for step in (1, 7, 33):
        assert np.array_equal(current(spec, 3, ticks, ids, t_stop, cuts=list(range(step * P, t_stop, step * P))), ref)
    summed = current(ps.adapters.SpikesToCurrent(kernel=kernel, tau_ms=0.7, amplitude=5.0), 3, ticks, ids, t_stop)
    np.testing.assert_allclose(summed[:, 0], ref.sum(axis=1), rtol=1e-12, atol=1e-12)


def test_poisson_shot_noise_has_campbells_mean_and_variance():
    """N r = 20 kHz of Poisson spikes (numpy), exp PSC J = 1 pA, tau = 2 ms: Campbell's theorem
    gives mean N r J tau = 40 pA and variance N r J^2 tau / 2 = 20 pA^2. The samples are
    correlated over tau, so the errors come from 20 independent blocks of the 20 s run."""
    rng = np.random.default_rng(12)
    rate, tau, t_s = 20_000.0, 2.0, 20.0
    n_spikes = rng.poisson(rate * t_s)
    ticks = np.sort(rng.integers(0, int(t_s * 1000 * MS), n_spikes))
    spec = ps.adapters.SpikesToCurrent(tau_ms=tau, amplitude=1.0, period_ms=0.5)
    out = current(spec, 1, ticks, np.zeros(n_spikes, np.int64), int(t_s * 1000 * MS),
                  cuts=list(range(100 * MS, int(t_s * 1000 * MS), 100 * MS)), period=500_000)[100:, 0]
    blocks = np.array_split(out, 20)
    means = [b.mean() for b in blocks]
    variances = [b.var() for b in blocks]
    se_m = np.std(means, ddof=1) / np.sqrt(20)
    se_v = np.std(variances, ddof=1) / np.sqrt(20)
    assert abs(np.mean(means) - rate * 1e-3 * tau) < 4 * se_m
    assert abs(np.mean(variances) - rate * 1e-3 * tau / 2) < 4 * se_v


def test_fields_and_fit_errors():
    with pytest.raises(ps.ModelError, match=r"spikes_to_current: 'amplitude' must be a finite number \(got nan\)"):
        ps.adapters.SpikesToCurrent(amplitude=float("nan"))
    with pytest.raises(ps.ModelError, match=r"consumes spikes, but receives 'rate'"):
        ps.adapters.SpikesToCurrent().signature(SignalSpec("rate", 1, "Hz", P), AdapterContext("c", MS, P))
    sig = ps.adapters.SpikesToCurrent(units="nA").signature(SignalSpec("spikes", 7), AdapterContext("c", MS, P))
    assert sig == SignalSpec("analog", 1, "nA", P)


def model(units="pA"):
    m = ps.Model(seed=1, t_stop_ms=20.0)
    m.solver("src", ps.solvers.SpikeTrain(times_ms=[2.0, 5.05], ids=[0, 1], size=2))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1, input_units="pA"))
    m.couple("src.spikes", "dst.u", delay_ms=1.0,
             via=[ps.adapters.SpikesToCurrent(kernel="alpha", tau_ms=1.0, amplitude=10.0, units=units)])
    m.record("dst.x")
    return m


def test_a_current_in_other_units_than_the_port_is_rejected():
    with pytest.raises(ps.ModelError, match=r"coupling src.spikes -> dst.u: units differ: the signal is in "
                                            r"'nA', the input port dst.u takes 'pA'"):
        ps.check(model(units="nA"))


def test_coupled_run_integrates_the_current_on_every_transport(transport):
    """x' = u (pA, dt 0.1 ms) of alpha PSCs arriving at 3.0 and 6.05 ms: x_k = 0.1 sum_{j<k} u_j."""
    x = ps.run(model(), transport=transport).signal("dst", "x").data[:, 0]
    t = np.arange(200) * 0.1
    u = np.zeros(200)
    for arrival in (3.0, 6.05):
        lag = np.maximum(t - arrival, 0.0)
        u += 10.0 * lag / 1.0 * np.exp(1 - lag / 1.0)
    np.testing.assert_allclose(x, 0.1 * np.concatenate([[0.0], np.cumsum(u)[:-1]]), rtol=1e-9, atol=1e-9)
