"""RateToPoisson and RateToGamma: spike statistics against their closed forms.

Statistical tests use fixed seeds, so each outcome is reproducible; the level alpha = 0.01 is
what a correct generator would fail with for a random seed, and each KS test is paired with a
power check (the same data against a 10 %-wrong rate, or without the modulation, must fail),
which shows the sample is large enough for the test to mean something.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

MS = 1_000_000          # ticks per ms
P = 100_000             # incoming sample period: 0.1 ms
ALPHA = 0.01


def drive(spec, rates_hz, cuts, seed=7, period=P):
    """Run ``spec`` on rates (S, C) Hz held per sample, in windows cut at sample indices ``cuts``.

    Checks on the way that every window's spikes lie in [t0, t1) and have ids in range; returns
    (ticks, ids) of all windows, concatenated."""
    rates_hz = np.asarray(rates_hz, dtype=np.float64)
    s_n, c_n = rates_hz.shape
    incoming = SignalSpec("rate", c_n, "Hz", period)
    window = period * s_n
    sig = spec.signature(incoming, AdapterContext("src.r -> dst.in", window, None))
    adapter = spec.build(incoming, AdapterContext("src.r -> dst.in", window, None,
                                                  np.random.default_rng(seed)))
    ticks, ids = [], []
    edges = [0, *cuts, s_n]
    for a, b in zip(edges[:-1], edges[1:]):
        t0, t1 = a * period, b * period
        out = adapter(t0, t1, ps.Samples(t0, period, rates_hz[a:b]))
        assert out.ticks.dtype == np.int64 and out.ids.dtype == np.int64
        assert ((out.ticks >= t0) & (out.ticks < t1)).all()
        assert ((out.ids >= 0) & (out.ids < sig.size)).all()
        assert (np.diff(out.ticks) >= 0).all()
        ticks.append(out.ticks)
        ids.append(out.ids)
    return np.concatenate(ticks), np.concatenate(ids)


def windows(s_n, window_samples):
    return list(range(window_samples, s_n, window_samples))


def isis_ms(ticks, ids, n):
    return np.concatenate([np.diff(ticks[ids == i]) / MS for i in range(n)])


def block_se(values_per_block):
    """Standard error of a mean estimated from independent blocks."""
    v = np.asarray(values_per_block)
    return v.std(ddof=1) / np.sqrt(len(v))


# -- Poisson ----------------------------------------------------------------------------------

def test_isis_at_a_constant_rate_are_exponential():
    r, n, t_s = 50.0, 20, 5.0
    s_n = int(t_s * 1e4)
    ticks, ids = drive(ps.adapters.RateToPoisson(n_per_channel=n), np.full((s_n, 1), r),
                       windows(s_n, 100))
    isi = isis_ms(ticks, ids, n) / 1000.0                       # s; ~5000 intervals
    assert stats.kstest(isi, "expon", args=(0, 1 / r)).pvalue > ALPHA
    # power: a 10 % error in the rate is detected with this many intervals
    assert stats.kstest(isi, "expon", args=(0, 1 / (1.1 * r))).pvalue < ALPHA


def sinusoid(t_s, r0=40.0, depth=0.9, f_hz=5.0):
    t = np.arange(int(t_s * 1e4)) * 1e-4
    return r0 * (1 + depth * np.sin(2 * np.pi * f_hz * t))


def rescaled(ticks, ids, n, rate_per_sample, period=P):
    """Time-rescaling (Brown et al. 2002): intervals of Lambda(t) = integral of the rate the
    adapter saw (held per sample), exact for that piecewise-constant rate."""
    cum = np.concatenate([[0.0], np.cumsum(rate_per_sample * period * 1e-9)])
    k = ticks // period
    lam = cum[k] + rate_per_sample[k] * (ticks - k * period) * 1e-9
    return np.concatenate([np.diff(lam[ids == i]) for i in range(n)])


def test_time_rescaled_intervals_of_an_inhomogeneous_train_are_exp1():
    n = 10
    r = sinusoid(10.0)
    ticks, ids = drive(ps.adapters.RateToPoisson(n_per_channel=n), r[:, None], windows(len(r), 37))
    z = rescaled(ticks, ids, n, r)                              # ~4000 intervals
    assert stats.kstest(z, "expon").pvalue > ALPHA
    # power: rescaling by the mean rate, ignoring the 90 % modulation, is rejected
    flat = rescaled(ticks, ids, n, np.full_like(r, r.mean()))
    assert stats.kstest(flat, "expon").pvalue < ALPHA


def test_counts_have_mean_rate_times_duration_and_fano_factor_one():
    r, n, t_s = 10.0, 2000, 1.0
    s_n = int(t_s * 1e4)
    _, ids = drive(ps.adapters.RateToPoisson(n_per_channel=n), np.full((s_n, 1), r), windows(s_n, 250))
    counts = np.bincount(ids, minlength=n)
    # mean of n Poisson(rT) counts: standard error sqrt(rT / n) = 0.07
    assert abs(counts.mean() - r * t_s) < 4 * np.sqrt(r * t_s / n)
    # sample variance / mean of Poisson counts: standard error ~ sqrt(2 / (n - 1)) = 0.032
    fano = counts.var(ddof=1) / counts.mean()
    assert abs(fano - 1.0) < 4 * np.sqrt(2 / (n - 1))


@pytest.mark.parametrize("interaction", ["sip", "mip"])
def test_pairwise_count_correlation_is_c(interaction):
    """Two channels x 30 trains at 20 Hz for 40 s, c = 0.25; counts in 50 ms bins. For SIP and
    MIP the count correlation of two trains is c for any bin width (Kuhn et al. 2003); trains of
    different channels are independent. The error of the mean pairwise correlation is estimated
    from 20 independent blocks of time and must be small enough (< 0.02) to test c."""
    c, r, n, t_s = 0.25, 20.0, 30, 40.0
    s_n = int(t_s * 1e4)
    spec = ps.adapters.RateToPoisson(n_per_channel=n, correlation=c, interaction=interaction)
    ticks, ids = drive(spec, np.full((s_n, 2), r), windows(s_n, 500))
    bin_ticks = 50 * MS
    n_bins = int(t_s * 1000 / 50)
    counts = np.zeros((2 * n, n_bins))
    np.add.at(counts, (ids, ticks // bin_ticks), 1.0)
    # each train keeps its rate
    assert abs(counts.sum(axis=1).mean() / t_s - r) < 4 * np.sqrt(r / t_s / (2 * n))
    within, across = [], []
    iu = np.triu_indices(n, 1)
    for block in np.array_split(np.arange(n_bins), 20):
        cc = np.corrcoef(counts[:, block])
        within.append(np.mean([cc[:n, :n][iu].mean(), cc[n:, n:][iu].mean()]))
        across.append(cc[:n, n:].mean())
    se_w, se_a = block_se(within), block_se(across)
    assert se_w < 0.02 and se_a < 0.02
    assert abs(np.mean(within) - c) < 4 * se_w
    assert abs(np.mean(across)) < 4 * se_a


def test_sip_shared_spikes_land_on_the_same_tick_in_every_train():
    """With c = 1 every spike is shared: all trains of a channel are the same train."""
    n = 5
    ticks, ids = drive(ps.adapters.RateToPoisson(n_per_channel=n, correlation=1.0),
                       np.full((2000, 1), 100.0), windows(2000, 10))
    trains = [ticks[ids == i] for i in range(n)]
    assert len(trains[0]) > 5 and all(np.array_equal(trains[0], t) for t in trains[1:])


# -- gamma ------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0.5, 4.0])
def test_gamma_isis_follow_gamma_and_cv_is_one_over_sqrt_shape(k):
    r, n, t_s = 20.0, 20, 10.0
    s_n = int(t_s * 1e4)
    ticks, ids = drive(ps.adapters.RateToGamma(shape=k, n_per_channel=n), np.full((s_n, 1), r),
                       windows(s_n, 70))
    per_train = [np.diff(ticks[ids == i]) / MS / 1000.0 for i in range(n)]
    isi = np.concatenate(per_train)                            # ~4000 intervals
    assert stats.kstest(isi, "gamma", args=(k, 0, 1 / (k * r))).pvalue > ALPHA
    assert stats.kstest(isi, "gamma", args=(k, 0, 1 / (k * 1.1 * r))).pvalue < ALPHA
    # CV per train, its error from the spread over the 20 independent trains
    cvs = [x.std(ddof=1) / x.mean() for x in per_train]
    assert abs(np.mean(cvs) - 1 / np.sqrt(k)) < 4 * block_se(cvs) + 0.02  # + bias of a ratio estimate
    # equilibrium start: the rate is r from t = 0 (a train started at a spike would be off by
    # (CV^2 - 1) / 2 spikes); the error of the mean count from the spread over the trains
    first = np.array([(t < 500 * MS).sum() for t in (ticks[ids == i] for i in range(n))])
    assert abs(first.mean() - r * 0.5) < 4 * block_se(first)


def test_gamma_time_rescaled_intervals_follow_gamma_of_mean_one():
    k, n = 3.0, 10
    r = sinusoid(10.0)
    ticks, ids = drive(ps.adapters.RateToGamma(shape=k, n_per_channel=n), r[:, None],
                       windows(len(r), 41))
    z = rescaled(ticks, ids, n, r)
    assert stats.kstest(z, "gamma", args=(k, 0, 1 / k)).pvalue > ALPHA
    assert stats.kstest(rescaled(ticks, ids, n, np.full_like(r, r.mean())), "gamma",
                        args=(k, 0, 1 / k)).pvalue < ALPHA


# -- windows, seeds, errors -------------------------------------------------------------------

SPECS = [
    pytest.param(ps.adapters.RateToPoisson(n_per_channel=4), id="poisson"),
    pytest.param(ps.adapters.RateToPoisson(n_per_channel=4, correlation=0.3), id="sip"),
    pytest.param(ps.adapters.RateToPoisson(n_per_channel=4, correlation=0.3, interaction="mip"), id="mip"),
    pytest.param(ps.adapters.RateToGamma(shape=2.5, n_per_channel=4), id="gamma"),
]


@pytest.mark.parametrize("spec", SPECS)
def test_any_window_split_gives_the_spikes_of_one_window(spec):
    """No spike lost or duplicated at window edges: the same seed cut into windows of 1, 7, 33
    samples and irregular ones gives exactly the spikes of one long window."""
    s_n = 3000
    rates = np.stack([sinusoid(0.3, r0=80.0), sinusoid(0.3, r0=30.0, f_hz=11.0)], axis=1)
    ref = drive(spec, rates, [])
    assert len(ref[0]) > 100
    for cuts in (windows(s_n, 1), windows(s_n, 7), windows(s_n, 33), [5, 6, 400, 2999]):
        got = drive(spec, rates, cuts)
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    other = drive(spec, rates, [], seed=8)
    assert not (len(other[0]) == len(ref[0]) and np.array_equal(other[0], ref[0]))


@pytest.mark.parametrize("spec", SPECS)
def test_zero_and_negative_rates_give_no_spikes(spec):
    ticks, _ = drive(spec, np.concatenate([np.zeros((500, 2)), np.full((500, 2), -10.0)]), [100])
    assert len(ticks) == 0


def test_non_finite_rate_stops_the_run_naming_the_coupling():
    rates = np.full((10, 1), 5.0)
    rates[3, 0] = np.nan
    with pytest.raises(ps.SolverError, match=r"coupling src.r -> dst.in: rate_to_poisson received nan Hz "
                                             r"on channel 0 in sample 3 of the window starting at 0 ms"):
        drive(ps.adapters.RateToPoisson(), rates, [])


def test_bad_fields_are_named():
    with pytest.raises(ps.ModelError, match=r"rate_to_poisson: 'correlation' must be in \[0, 1\] \(got 1.5\)"):
        ps.adapters.RateToPoisson(correlation=1.5)
    with pytest.raises(ps.ModelError, match=r"'interaction' must be one of 'sip', 'mip' \(got 'xip'\)"):
        ps.adapters.RateToPoisson(interaction="xip")
    with pytest.raises(ps.ModelError, match=r"rate_to_gamma: 'shape' must be a finite number > 0 \(got 0\)"):
        ps.adapters.RateToGamma(shape=0)
    with pytest.raises(ps.ModelError, match=r"'n_per_channel' must be an integer >= 1 \(got 0\)"):
        ps.adapters.RateToPoisson(n_per_channel=0)


def source(units="Hz", value=40.0):
    return ps.solvers.LinearSystem(a=[[0.0]], x0=[value], dt_ms=0.1, units=units)


@pytest.mark.parametrize("via, src_units, message", [
    pytest.param(ps.adapters.RateToPoisson(), "spikes", r"adapter 1 \(rate_to_poisson\): consumes a rate "
                 r"in Hz \(a sampled signal\), but receives 'spikes'", id="poisson-on-spikes"),
    pytest.param(ps.adapters.RateToGamma(), "mV", r"adapter 1 \(rate_to_gamma\): consumes a rate in Hz, "
                 r"but receives 'analog' in 'mV' \(convert with ps.adapters.Affine", id="gamma-on-mV"),
])
def test_chains_that_do_not_fit_are_rejected(via, src_units, message):
    m = ps.Model(t_stop_ms=10.0)
    if src_units == "spikes":
        m.solver("src", ps.solvers.SpikeTrain(times_ms=[1.0]))
        m.couple("src.spikes", "dst.in", delay_ms=1.0, via=[via])
    else:
        m.solver("src", source(units=src_units))
        m.couple("src.x", "dst.in", delay_ms=1.0, via=[via])
    m.solver("dst", ps.solvers.SpikeRelay(size=1))
    with pytest.raises(ps.ModelError, match=r"coupling src\.\w+ -> dst\.in: " + message):
        ps.check(m)


def poisson_model():
    """src (constant 40 Hz) --1 ms--> [SIP Poisson x 50] --> relay_p ; --> [gamma k=4 x 50] --> relay_g"""
    m = ps.Model(seed=5, t_stop_ms=200.0)
    m.solver("src", source())
    m.solver("relay_p", ps.solvers.SpikeRelay(size=50))
    m.solver("relay_g", ps.solvers.SpikeRelay(size=50))
    m.couple("src.x", "relay_p.in", delay_ms=1.0,
             via=[ps.adapters.RateToPoisson(n_per_channel=50, correlation=0.1)])
    m.couple("src.x", "relay_g.in", delay_ms=1.0, via=[ps.adapters.RateToGamma(shape=4.0, n_per_channel=50)])
    m.record("relay_p.out")
    m.record("relay_g.out")
    return m


def test_coupled_run_is_the_same_on_every_transport(transport):
    ref = ps.run(poisson_model())
    run = ps.run(poisson_model(), transport=transport)
    for name in ("relay_p", "relay_g"):
        a, b = ref.spikes(name, "out"), run.spikes(name, "out")
        assert np.array_equal(a.times, b.times) and np.array_equal(a.ids, b.ids)
        # the source is 0 until the 1 ms delay has passed: 40 Hz x 50 trains x 0.199 s = 398;
        # SIP counts have variance rT n (1 + (n - 1) c) = 398 x 5.9, gamma ~ rT n / k
        assert abs(len(b.times) - 398) < 4 * np.sqrt(398 * 5.9)
        assert b.times.min() >= 1.0
