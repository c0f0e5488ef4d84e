"""solvers/_poisson.py: Poisson events of per-step rate inputs, by inversion of one uniform each.

The reference is scipy's Poisson quantile function, an independent implementation of the same
inversion: ppf(u) is the smallest k with F(k) >= u, ours the smallest k with u < F(k); they
differ only where u equals F(k) to the last bit, which random uniforms do not hit.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from polyscale.coordinator.errors import ModelError
from polyscale.solvers._poisson import LAMBDA_MAX, _events, poisson_events


def invert(lam, u) -> np.ndarray:
    """The counts of means lam (m,) from uniforms u (m,), through _events (one step)."""
    step, chan, count = (np.empty(len(u), np.int64) for _ in range(3))
    k = _events(np.asarray(lam, np.float64).reshape(1, -1), np.asarray(u).reshape(1, -1), step, chan, count)
    out = np.zeros(len(u), np.int64)
    out[chan[:k]] = count[:k]
    return out


def counts(rng, lam) -> np.ndarray:
    """poisson_events as a dense (steps, channels) array."""
    step, chan, count = poisson_events(rng, lam, "test")
    assert (count > 0).all() and (np.diff(step * lam.shape[1] + chan) > 0).all()   # step-major
    out = np.zeros(lam.shape, np.int64)
    out[step, chan] = count
    return out


@pytest.mark.parametrize("lam", [0.0, 1e-9, 5e-4, 0.05, 0.7, 3.0, 25.0, 150.0, 690.0])
def test_each_count_is_the_poisson_quantile_of_its_uniform(lam):
    """Uniforms spread over [0, 1) and both tails (the fast path u < 1 - lambda, the walk, and
    u within 1e-12 of 1, where the walk's sum runs into rounding), against scipy's ppf. The
    last uniform below 1 (its tail has probability 1e-16) must still end in the far tail, not
    run away."""
    rng = np.random.default_rng(7)
    u = np.concatenate([rng.random(20000), 1.0 - 1e-15 - rng.random(200) * 1e-12,
                        rng.random(200) * 1e-12, [0.0]])
    out = invert(np.full(u.shape, lam), u)
    # scipy's ppf(0) is -1 by convention; the count of u = 0 is 0
    want = np.maximum(stats.poisson.ppf(u, lam), 0.0) if lam > 0 else np.zeros(u.shape)
    far = u < 1.0 - 1e-9
    np.testing.assert_array_equal(out[far], want[far])
    # within 1e-9 of 1 the two sums of ~lambda terms round differently: one count apart at most
    assert (np.abs(out - want) <= 1).all()
    last = invert([lam], [np.nextafter(1.0, 0.0)])
    assert lam <= last[0] <= lam + 10 * np.sqrt(lam) + 40


def test_counts_have_the_poisson_mean_variance_and_zero_fraction():
    """200,000 draws at each of three means: the sample mean and the fraction of zeros within 5
    standard errors of lambda and e^-lambda, the variance within 5 of its standard error."""
    rng = np.random.default_rng(11)
    for lam in (5e-4, 0.3, 12.0):
        c = counts(rng, np.full((2000, 100), lam))
        n = c.size
        assert c.dtype == np.int64 and c.shape == (2000, 100)
        assert abs(c.mean() - lam) < 5 * np.sqrt(lam / n)
        p0 = np.exp(-lam)
        assert abs((c == 0).mean() - p0) < 5 * np.sqrt(p0 * (1 - p0) / n) + 1e-12
        # var of the sample variance of a Poisson: (lambda + 2 lambda^2) / n, about
        assert abs(c.var() - lam) < 5 * np.sqrt((lam + 2 * lam * lam) / n)


def test_any_split_into_windows_draws_the_same_counts():
    """One uniform per value in step-major order: three windows of 7, 1 and 12 steps give the
    counts of one window of 20 steps, with per-step means that change over time."""
    lam = np.linspace(0.0, 2.0, 20 * 6).reshape(20, 6)
    whole = counts(np.random.default_rng(3), lam)
    rng = np.random.default_rng(3)
    parts = [counts(rng, lam[a:b]) for a, b in ((0, 7), (7, 8), (8, 20))]
    np.testing.assert_array_equal(np.vstack(parts), whole)
    assert whole.sum() > 0


def test_a_mean_above_the_limit_is_refused_naming_the_input():
    lam = np.array([[1.0, LAMBDA_MAX * 1.01]])
    with pytest.raises(ModelError, match=r"cell_population: 'rate' input: a mean of 707 events per step.*above 700"):
        poisson_events(np.random.default_rng(0), lam, "cell_population: 'rate' input")
