"""SpikesToRate adapter."""
import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

CTX = AdapterContext(coupling="a -> b", window_ticks=2_000_000, target_period_ticks=100_000)


def test_population_and_per_channel_rates_in_hz():
    spikes = ps.Spikes(np.array([0, 100, 999_999, 1_000_000, 1_500_000]), np.array([0, 1, 1, 3, 3]))
    incoming = SignalSpec("spikes", 4)
    pop = ps.adapters.SpikesToRate(bin_ms=1.0)
    assert pop.signature(incoming, CTX) == SignalSpec("rate", 1, "Hz", 1_000_000)
    out = pop.build(incoming, CTX)(0, 2_000_000, spikes)
    # 3 spikes in 1 ms among 4 neurons = 750 Hz; then 2 spikes = 500 Hz
    assert out.data[:, 0].tolist() == [750.0, 500.0] and (out.t0, out.period) == (0, 1_000_000)
    per = ps.adapters.SpikesToRate(bin_ms=1.0, per_channel=True)
    out = per.build(incoming, CTX)(0, 2_000_000, spikes)
    assert out.data.tolist() == [[1000.0, 2000.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2000.0]]


def test_poisson_input_gives_its_rate_back_within_three_standard_errors():
    """Seeded Poisson trains at 20 Hz x 200 neurons over 1 s: the mean of the binned population
    rate must lie within 3 standard errors of 20 Hz (sd of the mean = sqrt(lambda N T) / (N T))."""
    rng = np.random.default_rng(11)
    lam, n, t_ms = 20.0, 200, 1000.0
    counts = rng.poisson(lam * t_ms / 1000.0, size=n)
    ticks = np.concatenate([np.sort(rng.integers(0, int(t_ms * 1e6), c)) for c in counts])
    ids = np.repeat(np.arange(n), counts)
    order = np.argsort(ticks, kind="stable")
    ticks, ids = ticks[order], ids[order]
    adapter = ps.adapters.SpikesToRate(bin_ms=0.5).build(SignalSpec("spikes", n), CTX)
    rates = []
    for t0 in range(0, int(t_ms * 1e6), CTX.window_ticks):
        now = (ticks >= t0) & (ticks < t0 + CTX.window_ticks)
        rates.append(adapter(t0, t0 + CTX.window_ticks, ps.Spikes(ticks[now], ids[now])).data[:, 0])
    rates = np.concatenate(rates)
    se = np.sqrt(lam * n * t_ms / 1000.0) / (n * t_ms / 1000.0)
    assert abs(rates.mean() - lam) < 3 * se
    assert rates.mean() == pytest.approx(counts.sum() / n / (t_ms / 1000.0), rel=1e-12)  # counts conserved


def test_rates_cannot_be_made_from_samples():
    with pytest.raises(ps.ModelError, match=r"consumes spikes, but receives 'analog'"):
        ps.adapters.SpikesToRate().signature(SignalSpec("analog", 1, "", 100), CTX)
