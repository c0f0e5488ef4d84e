"""numba kernels of the translators: exact spike-train filters and gamma-renewal trains.

Both walk samples in time order and carry their state from one call to the next, doing the same
arithmetic in the same order whatever the window, so a run cut into windows of any length gives
bitwise the same result as one long window.
"""
from __future__ import annotations

import numpy as np

from ..solvers._jit import njit


@njit
def filter_spikes(ticks, chans, first, period, n_samples, tau_ticks, alpha, a, b, out):
    """Exponential or alpha traces of spikes, exact at the sample ticks.

    At sample tick t_k = first + k * period, with u = (t_k - t_s) / tau over the spikes t_s <= t_k
    of each channel,

        a(t_k) = sum exp(-u)          (exponential kernel, 1 at the spike)
        b(t_k) = sum u exp(-u)        (alpha kernel, peak 1/e at u = 1)

    propagated exactly between samples: a <- a d, b <- (b + a dt/tau) d with d = exp(-dt/tau).

    ticks, chans : (n,) int64 spike ticks (sorted) and channel of each; spikes after the last
        sample stay for the next call
    a, b : (c,) float64 traces at the sample before ``first``, updated in place
    out : (n_samples, c) float64, written with ``b`` if alpha else ``a``

    Returns the number of spikes consumed (those at or before the last sample).
    """
    d = np.exp(-period / tau_ticks)
    h = period / tau_ticks
    n = ticks.shape[0]
    nc = a.shape[0]
    j = 0
    for k in range(n_samples):
        t = first + k * period
        for c in range(nc):
            a_old = a[c]
            a[c] = a_old * d
            b[c] = (b[c] + a_old * h) * d
        while j < n and ticks[j] <= t:
            u = (t - ticks[j]) / tau_ticks
            e = np.exp(-u)
            c = chans[j]
            a[c] += e
            b[c] += u * e
            j += 1
        if alpha:
            for c in range(nc):
                out[k, c] = b[c]
        else:
            for c in range(nc):
                out[k, c] = a[c]
    return j


@njit
def gamma_trains(lam, first, period, buf, filled, pos, rem, new_pos, new_rem, out_ticks, out_ids):
    """Spikes of renewal trains in operational time (time rescaled by the rate): C groups of n
    trains, the trains of a group sharing a rate.

    lam : (S, C) float64, expected spikes per train in each sample interval (rate * period); the
        rate is constant within an interval, so operational time grows linearly in it
    first, period : tick of the first interval and interval length (ticks)
    buf : (C, n, L) float64, inter-spike intervals in operational time (mean 1), per train;
        columns [0, filled[g]) of group g hold intervals
    pos : (C, n) int64, next unused column of each train; rem : (C, n) operational time to each
        train's next spike, from the start of interval 0
    new_pos, new_rem : (C, n) written with the state after the S intervals
    out_ticks, out_ids : written with the spikes (train i of group g has id g * n + i)

    Returns the number of spikes, or -(g + 1) if a train of group g ran out of intervals (refill
    that group), or -(C + 1) if ``out_ticks`` is full (make it longer); nothing is then to be
    kept: call again with the same state.
    """
    n_s, n_g = lam.shape
    n = buf.shape[1]
    cap = out_ticks.shape[0]
    cnt = 0
    for g in range(n_g):
        width = filled[g]
        for i in range(n):
            r = rem[g, i]
            p = pos[g, i]
            for k in range(n_s):
                lk = lam[k, g]
                while r < lk:
                    if cnt == cap:
                        return -(n_g + 1)
                    off = np.int64(r / lk * period)
                    if off >= period:
                        off = period - 1
                    out_ticks[cnt] = first + k * period + off
                    out_ids[cnt] = g * n + i
                    cnt += 1
                    if p >= width:
                        return -(g + 1)
                    r += buf[g, i, p]
                    p += 1
                r -= lk
            new_rem[g, i] = r
            new_pos[g, i] = p
    return cnt
