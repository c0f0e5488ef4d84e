"""Mean membrane potential (mV) -> firing rate (Hz) through a transfer function, sample by sample.

    sigmoid          : r = r_max_Hz / (1 + exp(slope_per_mV * (v_half_mV - v)))
    threshold_linear : r = min(gain_Hz_per_mV * max(v - v_th_mV, 0), r_cap_Hz)

The sigmoid's defaults are Jansen & Rit's (1995) potential-to-rate function S(v) = 2 e0 /
(1 + exp(r (v0 - v))) with e0 = 2.5 /s, v0 = 6 mV, r = 0.56 /mV: r_max_Hz = 2 e0 = 5 Hz (TVB's
JansenRit has the same function with nu_max = e0 = 0.0025 /ms and v0 = 5.52 mV). Wilson &
Cowan's S(x) = 1 / (1 + exp(-a (x - theta))) is the same shape with r_max_Hz = 1,
slope_per_mV = a, v_half_mV = theta (scale it to Hz with r_max_Hz). Stateless, so any window
split gives the same rates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import expit

from ..coordinator.signals import Samples, SignalSpec
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.validation import require_choice, require_number
from ._common import require_finite, require_sampled


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFunction(AdapterSpec):
    """Rate (Hz) from a mean potential (mV).

    Parameters
    ----------
    function : 'sigmoid' or 'threshold_linear'
    r_max_Hz : sigmoid: the maximal rate (> 0)
    v_half_mV : sigmoid: the potential of half the maximal rate
    slope_per_mV : sigmoid: steepness (1/mV, > 0); the slope at v_half_mV is
        r_max_Hz * slope_per_mV / 4 (Hz/mV)
    v_th_mV : threshold_linear: the threshold
    gain_Hz_per_mV : threshold_linear: rate per mV above threshold (>= 0)
    r_cap_Hz : threshold_linear: the rate it saturates at (> 0); None: no ceiling

    Consumes a sampled potential in mV (or undeclared units, read as mV); produces a rate in Hz
    on the same grid.
    """

    type: ClassVar[str] = "transfer_function"

    function: str = "sigmoid"
    r_max_Hz: float = 5.0
    v_half_mV: float = 6.0
    slope_per_mV: float = 0.56
    v_th_mV: float = 0.0
    gain_Hz_per_mV: float = 1.0
    r_cap_Hz: float | None = None

    def __post_init__(self) -> None:
        require_choice(self, "function", ("sigmoid", "threshold_linear"))
        require_number(self, "v_half_mV", "v_th_mV")
        require_number(self, "slope_per_mV", positive=True)
        require_number(self, "gain_Hz_per_mV", nonnegative=True)
        require_number(self, "r_max_Hz", positive=True)
        require_number(self, "r_cap_Hz", positive=True, allow_none=True)

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_sampled(incoming, ("mV", ""), "a mean potential")
        return SignalSpec("rate", incoming.size, "Hz", incoming.period_ticks)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_Transfer":
        return _Transfer(self, ctx)


class _Transfer:
    def __init__(self, spec: TransferFunction, ctx: AdapterContext):
        self.spec, self.ctx = spec, ctx

    def __call__(self, t0: int, t1: int, v: Samples) -> Samples:
        s = self.spec
        require_finite(v.data, self.ctx, s.type, t0, "mV")
        if s.function == "sigmoid":
            r = s.r_max_Hz * expit(s.slope_per_mV * (v.data - s.v_half_mV))
        else:
            r = s.gain_Hz_per_mV * np.maximum(v.data - s.v_th_mV, 0.0)
            if s.r_cap_Hz is not None:
                r = np.minimum(r, s.r_cap_Hz)
        return Samples(v.t0, v.period, r)

    def state(self) -> dict[str, np.ndarray]:
        return {}
