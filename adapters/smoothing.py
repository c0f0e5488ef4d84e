"""Spikes -> population rate (Hz), smoothed with an exponential or alpha kernel.

The smoothed rate at tick t is the spikes filtered by a kernel of unit area (so its long-run
mean is the true rate) and divided by the number of channels for a population rate:

    exponential : r(t) = 1/N sum_s exp(-(t - t_s)/tau) / tau
    alpha       : r(t) = 1/N sum_s (t - t_s)/tau^2 exp(-(t - t_s)/tau)

over the spikes t_s <= t, computed exactly at each sample tick (not stepped: no error but the
float rounding). The filter state and the spikes that arrived after the last sample of a window
carry over to the next window, so any window length gives the result of one long window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.signals import Samples, SignalSpec, Spikes
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.time import to_ticks
from ..coordinator.validation import fail, require_choice, require_number
from ._common import check_period_ms, output_period, require_spikes
from ._kernels import filter_spikes

KERNELS = ("exponential", "alpha")


class SpikeFilter:
    """Exact exponential/alpha traces of a spike stream, sampled every ``period`` ticks from 0.

    ``__call__(t0, t1, spikes, chans)`` returns (n_samples, n_channels) traces (kernel peak 1 for
    exponential, 1/e at tau for alpha, see ``_kernels.filter_spikes``) at t0, t0 + period, ...
    """

    def __init__(self, n_channels: int, period: int, tau_ticks: int, alpha: bool):
        self.period, self.tau, self.alpha = period, float(tau_ticks), alpha
        self.a = np.zeros(n_channels)
        self.b = np.zeros(n_channels)
        self.pend_t = np.zeros(0, np.int64)
        self.pend_c = np.zeros(0, np.int64)

    def __call__(self, t0: int, t1: int, ticks: np.ndarray, chans: np.ndarray) -> np.ndarray:
        ticks, chans = np.asarray(ticks, np.int64), np.asarray(chans, np.int64)
        if len(self.pend_t):    # spikes after the last window's last sample come first
            ticks = np.concatenate([self.pend_t, ticks])
            chans = np.concatenate([self.pend_c, chans])
        if len(ticks) > 1 and (ticks[1:] < ticks[:-1]).any():
            order = np.argsort(ticks, kind="stable")
            ticks, chans = ticks[order], chans[order]
        n = (t1 - t0) // self.period
        out = np.empty((n, len(self.a)))
        used = filter_spikes(ticks, chans, t0, self.period, n, self.tau, self.alpha, self.a, self.b, out)
        self.pend_t, self.pend_c = ticks[used:], chans[used:]
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"trace_a": self.a.copy(), "trace_b": self.b.copy(), "pending_ticks": self.pend_t.copy()}


def check_filter_fields(spec) -> None:
    """The fields every spike filter spec shares: kernel, tau_ms, period_ms, per_channel."""
    require_choice(spec, "kernel", KERNELS)
    require_number(spec, "tau_ms", positive=True)
    to_ticks(spec.tau_ms, f"{spec.type}: tau_ms")
    check_period_ms(spec)
    if not isinstance(spec.per_channel, bool):
        raise fail(spec, f"'per_channel' must be True or False (got {spec.per_channel!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmoothedRate(AdapterSpec):
    """Population (or per-channel) rate in Hz from spikes, smoothed by a unit-area kernel.

    Parameters
    ----------
    kernel : 'exponential' (exp(-t/tau)/tau) or 'alpha' (t/tau^2 exp(-t/tau)); both have unit
        area, so the mean of the smoothed rate is the spike rate
    tau_ms : kernel time constant (ms)
    period_ms : sample period of the output (ms); None: the target port's period
    per_channel : False: one channel, the mean rate over the incoming channels; True: one rate
        per incoming channel

    Consumes spikes; produces a rate in Hz every ``period_ms``.
    """

    type: ClassVar[str] = "smoothed_rate"

    kernel: str = "exponential"
    tau_ms: float = 5.0
    period_ms: float | None = None
    per_channel: bool = False

    def __post_init__(self) -> None:
        check_filter_fields(self)

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_spikes(incoming)
        p = output_period(self.period_ms, ctx, self.type)
        return SignalSpec("rate", incoming.size if self.per_channel else 1, "Hz", p)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_SmoothedRate":
        return _SmoothedRate(self, incoming, output_period(self.period_ms, ctx, self.type))


class _SmoothedRate:
    def __init__(self, spec: SmoothedRate, incoming: SignalSpec, period: int):
        tau = to_ticks(spec.tau_ms, "tau_ms")
        self.per_channel = spec.per_channel
        self.filter = SpikeFilter(incoming.size if spec.per_channel else 1, period, tau,
                                  spec.kernel == "alpha")
        # trace (peak 1 or 1/e) -> Hz: 1/tau (s) for a unit-area kernel, per channel counted
        self.scale = 1000.0 / spec.tau_ms / (1 if spec.per_channel else incoming.size)
        self._zeros = np.zeros(64, np.int64)

    def __call__(self, t0: int, t1: int, spikes: Spikes) -> Samples:
        n = len(spikes.ticks)
        if self.per_channel:
            chans = spikes.ids
        else:                   # one channel: a slice of zeros kept between windows
            if len(self._zeros) < n:
                self._zeros = np.zeros(2 * n, np.int64)
            chans = self._zeros[:n]
        out = self.filter(t0, t1, spikes.ticks, chans)
        return Samples(t0, self.filter.period, out * self.scale)

    def state(self) -> dict[str, np.ndarray]:
        return self.filter.state()


__all__ = ["SmoothedRate", "SpikeFilter", "KERNELS"]
