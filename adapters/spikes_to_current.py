"""Spikes -> synaptic current, with an exponential or alpha postsynaptic current (PSC) kernel,
sampled on the target's grid.

Each spike at t_s adds, from t_s on (u = t - t_s),

    exponential : amplitude * exp(-u / tau)                 (NEST's iaf_psc_exp PSC)
    alpha       : amplitude * (u / tau) * exp(1 - u / tau)  (NEST's iaf_psc_alpha PSC, peak at tau)

evaluated exactly at each sample tick (the value at tick t counts the spikes at t_s <= t), so
the charge of one spike is amplitude * tau (exponential) or amplitude * e * tau (alpha). State
(the traces and spikes not yet sampled) carries across windows: any window length gives the
result of one long window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.signals import Samples, SignalSpec, Spikes
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.time import to_ticks
from ..coordinator.validation import require_number, require_str
from ._common import output_period, require_spikes
from .smoothing import SpikeFilter, check_filter_fields


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikesToCurrent(AdapterSpec):
    """Synaptic current from spikes: a PSC of peak ``amplitude`` per spike.

    Parameters
    ----------
    kernel : 'exponential' or 'alpha' (see the module docstring)
    tau_ms : synaptic time constant (ms)
    amplitude : peak current of one spike's PSC, in ``units`` (negative: inhibitory)
    units : units of the current ('pA' or 'nA'; the target port's)
    period_ms : sample period (ms); None: the target port's period
    per_channel : False: one channel, the summed current of all incoming channels; True: one
        current per incoming channel

    Consumes spikes; produces an analog current in ``units``.
    """

    type: ClassVar[str] = "spikes_to_current"

    kernel: str = "exponential"
    tau_ms: float = 2.0
    amplitude: float = 1.0
    units: str = "pA"
    period_ms: float | None = None
    per_channel: bool = False

    def __post_init__(self) -> None:
        check_filter_fields(self)
        require_number(self, "amplitude")
        require_str(self, "units", nonempty=False)

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_spikes(incoming)
        p = output_period(self.period_ms, ctx, self.type)
        return SignalSpec("analog", incoming.size if self.per_channel else 1, self.units, p)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_SpikesToCurrent":
        return _SpikesToCurrent(self, incoming, output_period(self.period_ms, ctx, self.type))


class _SpikesToCurrent:
    def __init__(self, spec: SpikesToCurrent, incoming: SignalSpec, period: int):
        alpha = spec.kernel == "alpha"
        self.per_channel = spec.per_channel
        self.filter = SpikeFilter(incoming.size if spec.per_channel else 1, period,
                                  to_ticks(spec.tau_ms, "tau_ms"), alpha)
        # the alpha trace peaks at 1/e
        self.scale = spec.amplitude * (math.e if alpha else 1.0)

    def __call__(self, t0: int, t1: int, spikes: Spikes) -> Samples:
        chans = spikes.ids if self.per_channel else np.zeros(len(spikes), np.int64)
        out = self.filter(t0, t1, spikes.ticks, chans)
        return Samples(t0, self.filter.period, out * self.scale)

    def state(self) -> dict[str, np.ndarray]:
        return self.filter.state()
