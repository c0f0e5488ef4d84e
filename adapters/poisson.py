"""Rates -> spike trains: inhomogeneous Poisson (independent, or correlated through shared
sources as tvb-multiscale's single and multiple interaction processes) and gamma renewal.

Both translators read a rate in Hz per incoming channel, held constant over each incoming sample
(the rate a destination solver would see), and drive ``n_per_channel`` trains with it: output
channel ``i * n_per_channel + j`` is train j of incoming channel i. Negative rates count as 0 Hz.
Spike ticks lie in the window, on the 1 ns tick grid; the ids are in range.

Randomness comes only from the coupling's own generator (``AdapterContext.rng``), split into
independent streams that are always consumed in the order of the samples, so a run cut into
windows of any length gives exactly the spikes of one long window, on every transport.

References
----------
Kuhn A, Aertsen A, Rotter S (2003) Higher-order statistics of input ensembles and the response
of simple model neurons. Neural Comput 15:67-101 (SIP and MIP).
Brown EN, Barbieri R, Ventura V, Kass RE, Frank LM (2002) The time-rescaling theorem and its
application to neural spike train data analysis. Neural Comput 14:325-346.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.signals import Samples, SignalSpec, Spikes
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.validation import fail, require_choice, require_int, require_number
from ._common import S_PER_TICK, input_period_divides_window, require_finite, require_rate, require_rng
from ._kernels import gamma_trains


def _sorted_spikes(ticks: np.ndarray, ids: np.ndarray) -> Spikes:
    order = np.lexsort((ids, ticks))
    return Spikes(ticks[order].astype(np.int64, copy=False), ids[order].astype(np.int64, copy=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class RateToPoisson(AdapterSpec):
    """Inhomogeneous Poisson spike trains at the incoming rate (Hz), optionally correlated.

    Parameters
    ----------
    n_per_channel : trains per incoming channel, each at that channel's rate
    correlation : c in [0, 1], the pairwise correlation coefficient of the spike counts of two
        trains of the same incoming channel (any bin width); trains of different channels are
        independent
    interaction : how the correlation is made (Kuhn, Aertsen & Rotter 2003):
        'sip' (single interaction process): each train is its own Poisson process at (1 - c) r
        plus one shared process at c r whose spikes go to every train of the channel, at the
        same tick;
        'mip' (multiple interaction process): a mother process at r / c whose every spike each
        train keeps with probability c, independently.
        With c = 0 both are independent Poisson trains.

    Consumes a rate in Hz (a 'rate' signal, or 'analog' in 'Hz'); produces spikes, (size *
    n_per_channel,) channels.
    """

    type: ClassVar[str] = "rate_to_poisson"

    n_per_channel: int = 1
    correlation: float = 0.0
    interaction: str = "sip"

    def __post_init__(self) -> None:
        require_int(self, "n_per_channel", minimum=1)
        require_number(self, "correlation")
        if not 0.0 <= self.correlation <= 1.0:
            raise fail(self, f"'correlation' must be in [0, 1] (got {self.correlation!r})")
        require_choice(self, "interaction", ("sip", "mip"))

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_rate(incoming)
        input_period_divides_window(incoming, ctx)
        return SignalSpec("spikes", incoming.size * self.n_per_channel, "", None)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_RateToPoisson":
        return _RateToPoisson(self, incoming, ctx)


class _RateToPoisson:
    def __init__(self, spec: RateToPoisson, incoming: SignalSpec, ctx: AdapterContext):
        self.n = spec.n_per_channel
        self.c = spec.correlation
        self.mode = spec.interaction if self.c > 0 else "independent"
        self.ctx = ctx
        # counts, positions in the interval, trains (picks, MIP thinning): one stream each, so
        # each is consumed in sample order whatever the window (split invariance rests on this)
        self.counts_rng, self.times_rng, self.thin_rng = require_rng(ctx, spec.type).spawn(3)
        self.n_events = 0

    def __call__(self, t0: int, t1: int, x: Samples) -> Spikes:
        require_finite(x.data, self.ctx, "rate_to_poisson", t0, "Hz")
        p = x.period
        lam = np.maximum(x.data, 0.0) * (p * S_PER_TICK)          # (S, C) expected per train
        s_n, c_n = lam.shape
        n = self.n
        start = x.t0 + p * np.arange(s_n, dtype=np.int64)
        if self.mode == "mip":
            counts = self.counts_rng.poisson(lam / self.c)          # mother spikes (S, C)
            flat = counts.ravel()
            total = int(flat.sum())
            cell = np.repeat(np.arange(flat.size), flat)
            ticks = start[cell // c_n] + (self.times_rng.random(total) * p).astype(np.int64)
            keep = self.thin_rng.random((total, n)) < self.c      # (events, trains)
            ev, j = np.nonzero(keep)
            self.n_events += len(ev)
            return _sorted_spikes(ticks[ev], (cell[ev] % c_n) * n + j)
        # n independent Poisson trains at r are one Poisson process at n r whose every spike
        # goes to a train picked uniformly: the cost is per spike, not per train and sample
        if self.mode == "sip":
            own_shared = np.stack([n * (1.0 - self.c) * lam, self.c * lam], axis=2)
            counts = self.counts_rng.poisson(own_shared)            # (S, C, 2)
        else:
            counts = self.counts_rng.poisson(n * lam)[:, :, None]   # (S, C, 1)
        flat = counts.ravel()
        total = int(flat.sum())
        cell = np.repeat(np.arange(flat.size), flat)
        width = counts.shape[2]
        s_i, rest = np.divmod(cell, c_n * width)
        ch, shared = np.divmod(rest, width)
        ticks = start[s_i] + (self.times_rng.random(total) * p).astype(np.int64)
        own = shared == 0
        # a uniform double per pick (not integers(), whose 32-bit draws are buffered per call)
        j = (self.thin_rng.random(int(own.sum())) * n).astype(np.int64)
        if self.mode == "sip":
            t_sh, ch_sh = ticks[~own], ch[~own]
            ticks = np.concatenate([ticks[own], np.repeat(t_sh, n)])
            ids = np.concatenate([ch[own] * n + j,
                                  np.repeat(ch_sh * n, n) + np.tile(np.arange(n), len(t_sh))])
        else:
            ids = ch * n + j
        self.n_events += len(ticks)
        return _sorted_spikes(ticks, ids)

    def state(self) -> dict[str, np.ndarray]:
        return {"n_spikes": np.array(self.n_events)}


#: gamma intervals drawn per train at a time; fixed, so the draws do not depend on the window
_BLOCK = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class RateToGamma(AdapterSpec):
    """Gamma renewal spike trains at the incoming rate (Hz): ISI CV = 1 / sqrt(shape).

    The trains are renewal processes in operational time (time rescaled by the integrated rate):
    intervals Gamma(shape, 1/shape) of mean 1 there, so a constant rate r gives Gamma(shape,
    1/(shape r)) intervals in time, and a varying rate modulates them as in Brown et al. (2002).
    Each train starts in equilibrium (its first spike after a forward-recurrence time, drawn as
    U * Gamma(shape + 1, 1/shape)), so its rate is r from t = 0. shape = 1 is Poisson.

    Parameters
    ----------
    shape : gamma shape k > 0 (k > 1: more regular than Poisson; k < 1: burstier)
    n_per_channel : independent trains per incoming channel, each at that channel's rate

    Consumes a rate in Hz; produces spikes, (size * n_per_channel,) channels.
    """

    type: ClassVar[str] = "rate_to_gamma"

    shape: float = 2.0
    n_per_channel: int = 1

    def __post_init__(self) -> None:
        require_number(self, "shape", positive=True)
        require_int(self, "n_per_channel", minimum=1)

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_rate(incoming)
        input_period_divides_window(incoming, ctx)
        return SignalSpec("spikes", incoming.size * self.n_per_channel, "", None)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_RateToGamma":
        return _RateToGamma(self, incoming, ctx)


class _RateToGamma:
    def __init__(self, spec: RateToGamma, incoming: SignalSpec, ctx: AdapterContext):
        self.k = spec.shape
        self.n = spec.n_per_channel
        self.ctx = ctx
        c_n = incoming.size
        # one stream per incoming channel: its trains draw intervals in blocks of (n, _BLOCK), the
        # same blocks in the same order whenever they are drawn
        self.gens = require_rng(ctx, spec.type).spawn(c_n)
        self.rem = np.empty((c_n, self.n))
        for g, gen in enumerate(self.gens):
            self.rem[g] = gen.random(self.n) * gen.standard_gamma(self.k + 1.0, self.n) / self.k
        self.buf = np.empty((c_n, self.n, _BLOCK))
        self.filled = np.zeros(c_n, np.int64)
        self.pos = np.zeros((c_n, self.n), dtype=np.int64)

    def _refill(self, g: int) -> None:
        """Drop group g's intervals that every train has used, append one block."""
        lo = int(self.pos[g].min())
        keep = int(self.filled[g]) - lo
        if keep + _BLOCK > self.buf.shape[2]:
            wider = np.empty(self.buf.shape[:2] + (keep + 2 * _BLOCK,))
            wider[:, :, :self.buf.shape[2]] = self.buf
            self.buf = wider
        self.buf[g, :, :keep] = self.buf[g, :, lo:lo + keep]
        self.buf[g, :, keep:keep + _BLOCK] = self.gens[g].standard_gamma(self.k, (self.n, _BLOCK)) / self.k
        self.filled[g] = keep + _BLOCK
        self.pos[g] -= lo

    def __call__(self, t0: int, t1: int, x: Samples) -> Spikes:
        require_finite(x.data, self.ctx, "rate_to_gamma", t0, "Hz")
        p = x.period
        lam = np.ascontiguousarray(np.maximum(x.data, 0.0) * (p * S_PER_TICK))
        # enough intervals for the expected count and then some before the first try (this
        # changes when blocks are drawn, never which)
        total = lam.sum(axis=0)
        need = total + 6.0 * np.sqrt(total) + 4.0
        for g in np.nonzero(self.filled - self.pos.max(axis=1) < need)[0]:
            while self.filled[g] - self.pos[g].max() < need[g]:
                self._refill(int(g))
        new_pos = np.empty_like(self.pos)
        new_rem = np.empty_like(self.rem)
        size = int(need.sum()) * self.n + 16
        while True:
            out_t = np.empty(size, np.int64)
            out_i = np.empty(size, np.int64)
            cnt = gamma_trains(lam, x.t0, p, self.buf, self.filled, self.pos, self.rem, new_pos,
                               new_rem, out_t, out_i)
            if cnt >= 0:
                break
            if cnt == -(len(self.gens) + 1):
                size *= 2
            else:
                self._refill(-cnt - 1)
        self.pos, self.rem = new_pos, new_rem
        return _sorted_spikes(out_t[:cnt], out_i[:cnt])

    def state(self) -> dict[str, np.ndarray]:
        return {"operational_time_to_next": self.rem.copy()}
