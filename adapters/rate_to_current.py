"""Rate (Hz) -> input current, sample by sample: linear or sigmoid.

    linear  : I = gain * r + offset
    sigmoid : I = offset + i_max / (1 + exp(-(r - r_half_Hz) / width_Hz))

with r in Hz and I in ``units`` (pA by default; gain in units per Hz). Stateless: the samples
keep their grid, so any window split gives the same current.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import expit

from ..coordinator.signals import Samples, SignalSpec
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.validation import require_choice, require_number, require_str
from ._common import require_finite, require_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class RateToCurrent(AdapterSpec):
    """Current from a rate: linear, or a sigmoid that saturates at ``offset + i_max``.

    Parameters
    ----------
    function : 'linear' or 'sigmoid'
    gain : linear: current per Hz (units/Hz)
    offset : current at r = 0 (linear) or the sigmoid's floor, in ``units``
    i_max : sigmoid: the range of the current, in ``units`` (negative: inhibitory)
    r_half_Hz : sigmoid: the rate of half the range (Hz)
    width_Hz : sigmoid: the rate scale of the rise (Hz, > 0); the slope at r_half_Hz is
        i_max / (4 width_Hz)
    units : units of the current ('pA', 'nA')

    Consumes a rate in Hz; produces an analog current in ``units`` on the same grid.
    """

    type: ClassVar[str] = "rate_to_current"

    function: str = "linear"
    gain: float = 1.0
    offset: float = 0.0
    i_max: float = 1.0
    r_half_Hz: float = 0.0
    width_Hz: float = 1.0
    units: str = "pA"

    def __post_init__(self) -> None:
        require_choice(self, "function", ("linear", "sigmoid"))
        require_number(self, "gain", "offset", "i_max", "r_half_Hz")
        require_number(self, "width_Hz", positive=True)
        require_str(self, "units", nonempty=False)

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        require_rate(incoming)
        return SignalSpec("analog", incoming.size, self.units, incoming.period_ticks)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_RateToCurrent":
        return _RateToCurrent(self, ctx)


class _RateToCurrent:
    def __init__(self, spec: RateToCurrent, ctx: AdapterContext):
        self.spec, self.ctx = spec, ctx

    def __call__(self, t0: int, t1: int, x: Samples) -> Samples:
        s = self.spec
        require_finite(x.data, self.ctx, s.type, t0, "Hz")
        if s.function == "linear":
            y = s.gain * x.data + s.offset
        else:
            y = s.offset + s.i_max * expit((x.data - s.r_half_Hz) / s.width_Hz)
        return Samples(x.t0, x.period, y)

    def state(self) -> dict[str, np.ndarray]:
        return {}
