"""Poisson event counts of per-step rate inputs, one uniform each, inverted.

A detailed cell population (solvers/cell/population.py) and NEURON's cells (adapters/neuron.py)
turn their ``rate`` input into events: per step and channel a count ~ Poisson(rate * dt). At the
per-step means of synaptic inputs (lambda = 20 Hz * 0.025 ms = 5e-4) nearly every count is 0;
numpy's Generator.poisson takes ~19 ns a value whatever lambda is: ~150 of the ~640 us of the
flagship L5 population's window (80 steps x 40 channels). Here each count inverts one uniform
of the solver's generator: u < 1 - lambda (<= e^-lambda, so the count is 0) settles nearly all
of them with one comparison, and the rest walk the cumulative distribution (exact to the
rounding of its terms). One uniform per value, in C order (step-major): any split of a run into
windows draws the same counts.
"""
from __future__ import annotations

import math

import numpy as np

from ..coordinator.errors import ModelError
from ._jit import njit

#: the largest mean per step and channel drawn: e^-lambda stays a normal double up to ~708 and
#: the walk takes ~lambda steps; a mean this high is thousands of events per ms on one synapse
LAMBDA_MAX = 700.0


@njit
def _count(m: float, x: float) -> int:
    """The smallest k with x < F(k), F the Poisson(m) distribution function (m in [0,
    LAMBDA_MAX], x uniform in [0, 1))."""
    if x < 1.0 - m:
        return 0
    p = math.exp(-m)
    f = p
    k = 0
    while x >= f:
        k += 1
        p *= m / k
        g = f + p
        if g == f:          # the sum has stopped short of x by its rounding (x within ~1e-13
            break           # of 1): the tail's terms no longer add
        f = g
    return k


@njit
def _events(lam: np.ndarray, u: np.ndarray, step: np.ndarray, chan: np.ndarray,
            count: np.ndarray) -> int:
    """The nonzero counts of lam, u (S, C), step-major, into step, chan, count (>= S C,) int64;
    returns how many."""
    k = 0
    for s in range(lam.shape[0]):
        for c in range(lam.shape[1]):
            n = _count(lam[s, c], u[s, c])
            if n:
                step[k], chan[k], count[k] = s, c, n
                k += 1
    return k


def _means(lam: np.ndarray, who: str) -> np.ndarray:
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    if lam.size and lam.max() > LAMBDA_MAX:
        raise ModelError(f"{who}: a mean of {lam.max():g} events per step on one channel is above "
                         f"{LAMBDA_MAX:g} (the most drawn per step); lower the rate or spread it "
                         f"over more channels")
    return lam


def poisson_events(rng: np.random.Generator, lam: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts ~ Poisson(lam) for lam (steps, channels), means >= 0 and finite (the caller checks
    its input), e.g. rate (Hz) * dt (s): the nonzero ones as (step, channel, count), int64,
    step-major. ``who`` names the input in the error for a mean above LAMBDA_MAX."""
    lam = _means(lam, who)
    u = rng.random(lam.shape)
    step, chan, count = (np.empty(lam.size, np.int64) for _ in range(3))
    k = _events(lam, u, step, chan, count)
    return step[:k], chan[:k], count[:k]
