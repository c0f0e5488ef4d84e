"""SmoothedRate: kernel-smoothed population rate against closed forms and Poisson statistics."""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext
from conftest import feed_spikes

MS = 1_000_000
P = 100_000             # output period 0.1 ms


def smooth(spec, n, ticks, ids, t_stop, cuts=(), period=P):
    """Feed spikes (sorted) to ``spec`` in windows cut at the ticks ``cuts``; (S, C) output."""
    return feed_spikes(spec, n, ticks, ids, t_stop, cuts, period, coupling="src.spikes -> dst.u")


def test_one_spike_gives_the_kernel_divided_by_the_population():
    """Spike at 0.35 ms on channel 2 of 4: r(t) = K(t - 0.35 ms) / 4 at samples t >= 0.4 ms, 0
    before; K(u) = exp(-u/tau)/tau or u/tau^2 exp(-u/tau) (1/s). The filter propagates exactly,
    so only float rounding over ~100 products separates it from the formula (1e-12)."""
    tau_ms = 2.0
    t = np.arange(100) * 0.1
    u = (t - 0.35) / 1000.0
    tau = tau_ms / 1000.0
    for kernel, k in (("exponential", np.exp(-u / tau) / tau), ("alpha", u / tau**2 * np.exp(-u / tau))):
        r = smooth(ps.adapters.SmoothedRate(kernel=kernel, tau_ms=tau_ms), 4, np.array([350_000]),
                   np.array([2]), 10 * MS)[:, 0]
        np.testing.assert_allclose(r, np.where(u >= 0, k / 4, 0.0), rtol=1e-12, atol=1e-12)


def test_a_spike_on_a_sample_tick_counts_at_that_sample():
    r = smooth(ps.adapters.SmoothedRate(tau_ms=1.0, per_channel=True), 2, np.array([MS]),
               np.array([1]), 2 * MS, cuts=[MS])
    assert r[9, 1] == 0.0 and r[10, 1] == pytest.approx(1000.0) and (r[:, 0] == 0).all()


@pytest.mark.parametrize("kernel", ["exponential", "alpha"])
def test_smoothing_a_poisson_train_gives_its_rate_back(kernel):
    """100 independent Poisson trains at 25 Hz for 4 s (drawn with numpy, not by polyscale).
    The kernels have unit area, so the time-averaged smoothed rate after the 20 tau start-up is
    the spike count over N T: its standard error is sqrt(r / (N T)) = 0.25 Hz; 4 of them."""
    rng = np.random.default_rng(3)
    r, n, t_ms, tau_ms = 25.0, 100, 4000.0, 10.0
    counts = rng.poisson(r * t_ms / 1000.0, size=n)
    ticks = rng.integers(0, int(t_ms * MS), counts.sum())
    ids = np.repeat(np.arange(n), counts)
    order = np.argsort(ticks, kind="stable")
    ticks, ids = ticks[order], ids[order]
    out = smooth(ps.adapters.SmoothedRate(kernel=kernel, tau_ms=tau_ms, period_ms=1.0), n, ticks, ids,
                 int(t_ms * MS), cuts=list(range(10 * MS, int(t_ms * MS), 10 * MS)), period=MS)
    settled = out[int(20 * tau_ms):, 0]
    t_eff = len(settled) / 1000.0
    assert abs(settled.mean() - r) < 4 * np.sqrt(r / (n * t_eff))


@pytest.mark.parametrize("kernel", ["exponential", "alpha"])
def test_any_window_split_gives_the_result_of_one_window(kernel):
    """Spikes at window edges, on sample ticks and between them: windows of 1, 7 and 33 samples
    give bitwise the output of one window (the same arithmetic in the same order)."""
    rng = np.random.default_rng(9)
    t_stop = 30 * MS
    ticks = np.sort(np.concatenate([rng.integers(0, t_stop, 300), [0, P, 7 * P, 7 * P + 1, t_stop - 1]]))
    ids = rng.integers(0, 5, len(ticks))
    spec = ps.adapters.SmoothedRate(kernel=kernel, tau_ms=1.5, per_channel=True)
    ref = smooth(spec, 5, ticks, ids, t_stop)
    for step in (1, 7, 33):
        got = smooth(spec, 5, ticks, ids, t_stop, cuts=list(range(step * P, t_stop, step * P)))
        assert np.array_equal(got, ref)


def test_errors_say_what_is_wrong():
    ctx = AdapterContext("a.x -> b.in", MS, None)
    with pytest.raises(ps.ModelError, match=r"the target port is not sampled, so smoothed_rate cannot take "
                                            r"its period: give period_ms"):
        ps.adapters.SmoothedRate().signature(SignalSpec("spikes", 3), ctx)
    with pytest.raises(ps.ModelError, match=r"the output period \(0.3 ms\) does not divide the window \(1 ms\)"):
        ps.adapters.SmoothedRate(period_ms=0.3).signature(SignalSpec("spikes", 3), ctx)
    with pytest.raises(ps.ModelError, match=r"smoothed_rate: 'kernel' must be one of 'exponential', 'alpha' "
                                            r"\(got 'box'\)"):
        ps.adapters.SmoothedRate(kernel="box")
    with pytest.raises(ps.ModelError, match=r"smoothed_rate: 'tau_ms' must be a finite number > 0 \(got -1"):
        ps.adapters.SmoothedRate(tau_ms=-1)


def test_smoothing_a_rate_is_rejected_in_a_model():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], x0=[1.0], units="Hz"))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], input_units="Hz"))
    m.couple("src.x", "dst.u", delay_ms=1.0, via=[ps.adapters.SmoothedRate()])
    with pytest.raises(ps.ModelError, match=r"coupling src.x -> dst.u: adapter 1 \(smoothed_rate\): "
                                            r"consumes spikes, but receives 'analog'"):
        ps.check(m)


def test_coupled_run_integrates_the_smoothed_rate_on_every_transport(transport):
    """Spike train (4 channels; spikes at 2.0, 3.25, 3.25 ms) --1 ms--> SmoothedRate (tau 2 ms)
    --> integrator x' = u (Hz, dt 0.1 ms). The integrator holds u over each step, so
    x_k = 0.1 ms * sum_{j<k} u_j, with u_j the closed-form smoothed rate at the sample ticks."""
    m = ps.Model(seed=1, t_stop_ms=20.0)
    m.solver("src", ps.solvers.SpikeTrain(times_ms=[2.0, 3.25, 3.25], ids=[0, 3, 1], size=4))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1, input_units="Hz"))
    m.couple("src.spikes", "dst.u", delay_ms=1.0, via=[ps.adapters.SmoothedRate(tau_ms=2.0)])
    m.record("dst.x")
    x = ps.run(m, transport=transport).signal("dst", "x").data[:, 0]
    t = np.arange(200) * 0.1
    u = np.zeros(200)
    for arrival in (3.0, 4.25, 4.25):
        lag = t - arrival
        u += np.where(lag >= -1e-9, np.exp(-np.maximum(lag, 0) / 2.0) * 1000.0 / 2.0, 0.0) / 4
    expected = 0.1 * np.concatenate([[0.0], np.cumsum(u)[:-1]])
    np.testing.assert_allclose(x, expected, rtol=1e-9, atol=1e-9)


def test_rate_to_poisson_then_smoothing_gives_the_rate_back():
    """30 Hz --10 ms--> [RateToPoisson x 400, SmoothedRate tau 5 ms] --> x' = u (Hz ms). From
    t = 10 ms the smoothed rate has mean 30 Hz * (1 - exp(-(t - 10)/tau)), so
    x(T) = 30 Hz * (T - 10 - tau (1 - exp(-(T - 10)/tau))); the spike count's error gives a
    standard error of sqrt(r / (N T)) * T."""
    m = ps.Model(seed=8, t_stop_ms=2000.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], x0=[30.0], units="Hz"))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], input_units="Hz"))
    m.couple("src.x", "dst.u", delay_ms=10.0,
             via=[ps.adapters.RateToPoisson(n_per_channel=400), ps.adapters.SmoothedRate(tau_ms=5.0)])
    m.record("dst.x", every_ms=100.0)
    x_end = ps.run(m).signal("dst", "x").data[-1, 0]      # at 1900 ms
    t = 1900.0 - 10.0
    expected = 30.0 * (t - 5.0 * (1 - np.exp(-t / 5.0)))
    se = np.sqrt(30.0 / (400 * t / 1000.0)) * t
    assert abs(x_end - expected) < 4 * se


def test_spikes_out_of_time_order_are_taken_in_time_order():
    """Spikes merged from several couplings may come out of time order within a window; the
    filter sorts them (stably) first: the same bits as the sorted train."""
    rng = np.random.default_rng(5)
    ticks = np.sort(rng.integers(0, 10 * MS, 200))
    ids = rng.integers(0, 3, 200)
    spec = ps.adapters.SmoothedRate(tau_ms=1.5, per_channel=True)
    ctx = AdapterContext(coupling="src.spikes -> dst.u", window_ticks=10 * MS, target_period_ticks=P,
                         rng=np.random.default_rng(0))
    want = spec.build(SignalSpec("spikes", 3), ctx)(0, 10 * MS, ps.Spikes(ticks, ids)).data
    shuffled = rng.permutation(200)
    got = spec.build(SignalSpec("spikes", 3), ctx)(0, 10 * MS, ps.Spikes(ticks[shuffled], ids[shuffled])).data
    np.testing.assert_array_equal(got, want)
