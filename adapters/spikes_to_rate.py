"""Spikes -> population rate (Hz), counted in bins."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Samples, SignalSpec, Spikes
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.time import TICKS_PER_MS, fmt_ms, to_ticks
from ..coordinator.validation import require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikesToRate(AdapterSpec):
    """Rate in Hz from spike counts in bins of ``bin_ms``, aligned to the window start.

    With ``per_channel=False`` (default) the output is one channel, the population rate: spikes
    in the bin / (channels x bin width). With ``per_channel=True`` each channel's own rate.
    The value of a bin is the rate over the bin [b, b + bin_ms): the destination sees the whole
    bin's count from its start (a lookahead of at most one bin, which the coupling delay covers).
    """

    type: ClassVar[str] = "spikes_to_rate"

    bin_ms: float = 1.0
    per_channel: bool = False

    def __post_init__(self) -> None:
        require_number(self, "bin_ms", positive=True)
        if not isinstance(self.per_channel, bool):
            raise ModelError(f"spikes_to_rate: 'per_channel' must be True or False (got {self.per_channel!r})")

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        if incoming.kind != "spikes":
            raise ModelError(f"consumes spikes, but receives {incoming.kind!r}")
        b = to_ticks(self.bin_ms, "spikes_to_rate: bin_ms")
        if ctx.window_ticks % b:
            raise ModelError(f"bin_ms={self.bin_ms:g} does not divide the window ({fmt_ms(ctx.window_ticks)})")
        return SignalSpec("rate", incoming.size if self.per_channel else 1, "Hz", b)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_SpikesToRate":
        return _SpikesToRate(to_ticks(self.bin_ms, "bin_ms"), incoming.size, self.per_channel)


class _SpikesToRate:
    def __init__(self, bin_ticks: int, n: int, per_channel: bool):
        self.bin = bin_ticks
        self.n = n
        self.per_channel = per_channel
        self.scale = 1000.0 * TICKS_PER_MS / bin_ticks  # count per bin -> Hz

    def __call__(self, t0: int, t1: int, spikes: Spikes) -> Samples:
        nb = (t1 - t0) // self.bin
        b = (spikes.ticks - t0) // self.bin
        if self.per_channel:
            counts = np.zeros((nb, self.n))
            np.add.at(counts, (b, spikes.ids), 1.0)
            return Samples(t0, self.bin, counts * self.scale)
        counts = np.bincount(b, minlength=nb).astype(np.float64)[:, None]
        return Samples(t0, self.bin, counts * (self.scale / self.n))

    def state(self) -> dict[str, np.ndarray]:
        return {}
