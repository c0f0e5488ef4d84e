"""y = gain * x + offset, sample by sample: unit conversion and simple rate -> current maps."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import SAMPLED, Samples, SignalSpec
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.validation import require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class Affine(AdapterSpec):
    """Pointwise ``gain * x + offset`` on a sampled signal.

    units : units of the result (default: unchanged); say it when the gain converts units
    produces : 'rate' or 'analog' (default: the incoming kind)
    """

    type: ClassVar[str] = "affine"

    gain: float = 1.0
    offset: float = 0.0
    units: str | None = None
    produces: str | None = None

    def __post_init__(self) -> None:
        require_number(self, "gain", "offset")
        if self.produces is not None and self.produces not in SAMPLED:
            raise ModelError(f"affine: 'produces' must be one of {SAMPLED} or None (got {self.produces!r})")
        if self.units is not None and not isinstance(self.units, str):
            raise ModelError(f"affine: 'units' must be a string or None (got {self.units!r})")

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        if incoming.kind not in SAMPLED:
            raise ModelError(f"consumes a sampled signal (rate or analog), but receives {incoming.kind!r}")
        return SignalSpec(self.produces or incoming.kind, incoming.size,
                          incoming.units if self.units is None else self.units, incoming.period_ticks)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_Affine":
        return _Affine(self.gain, self.offset)


class _Affine:
    def __init__(self, gain: float, offset: float):
        self.gain, self.offset = gain, offset

    def __call__(self, t0: int, t1: int, x: Samples) -> Samples:
        return Samples(x.t0, x.period, self.gain * x.data + self.offset)

    def state(self) -> dict[str, np.ndarray]:
        return {}
