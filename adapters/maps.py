"""Channel maps with weights: many-to-one and one-to-many (region <-> populations).

``ChannelMap(weights=W)`` with W of shape (n_out, n_in) turns n_in incoming channels into n_out:

* sampled signals (rate, analog): y = W x at every sample (units unchanged unless ``units``);
* spikes: a spike of incoming channel j is sent to every output channel i with W[i, j] > 0,
  W[i, j] times (spike weights are the coupling's, so here only whole copies make sense).

``ChannelMap.pool(sizes)`` sums (or averages) consecutive blocks of channels, e.g. the rates
of a region's populations into the region; ``ChannelMap.spread(sizes)`` sends each channel to
a block, e.g. a region's rate to each of its populations. Stateless: any window split gives the
same output.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Samples, SignalSpec, Spikes
from ..coordinator.specs import AdapterContext, AdapterSpec
from ..coordinator.validation import as_tuple, fail


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelMap(AdapterSpec):
    """y = W x over channels: W (n_out, n_in), row i says how output channel i is made.

    Parameters
    ----------
    weights : (n_out, n_in) finite numbers; for spikes whole numbers >= 0 (copies)
    units : units of the output (default: the incoming units); say it when W converts units

    Consumes any signal with n_in channels; produces the same kind with n_out channels.
    """

    type: ClassVar[str] = "channel_map"

    weights: tuple
    units: str | None = None

    def __post_init__(self) -> None:
        w = np.array(as_tuple(self, "weights", float), dtype=np.float64)
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise fail(self, f"'weights' must be a matrix (n_out, n_in) with at least one row and "
                             f"one column (got shape {w.shape})")
        if not np.isfinite(w).all():
            raise fail(self, "'weights' must hold finite numbers")
        if self.units is not None and not isinstance(self.units, str):
            raise fail(self, f"'units' must be a string or None (got {self.units!r})")

    @classmethod
    def example(cls) -> "ChannelMap":
        return cls.pool((2, 3), mean=True)

    @classmethod
    def pool(cls, sizes, *, mean: bool = False, units: str | None = None) -> "ChannelMap":
        """Many-to-one: consecutive blocks of ``sizes`` incoming channels each into one channel,
        summed (or averaged with ``mean=True``)."""
        sizes = _sizes(sizes)
        w = np.zeros((len(sizes), sum(sizes)))
        start = 0
        for r, s in enumerate(sizes):
            w[r, start:start + s] = 1.0 / s if mean else 1.0
            start += s
        return cls(weights=w.tolist(), units=units)

    @classmethod
    def spread(cls, sizes, *, units: str | None = None) -> "ChannelMap":
        """One-to-many: incoming channel r copied to a block of ``sizes[r]`` output channels."""
        pooled = cls.pool(sizes)
        return cls(weights=np.array(pooled.weights).T.tolist(), units=units)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.weights), len(self.weights[0])

    def signature(self, incoming: SignalSpec, ctx: AdapterContext) -> SignalSpec:
        n_out, n_in = self.shape
        if incoming.size != n_in:
            raise ModelError(f"'weights' has shape ({n_out}, {n_in}): {n_in} columns, one per "
                             f"incoming channel, but {incoming.size} channel(s) arrive")
        if incoming.kind == "spikes":
            w = np.array(self.weights)
            if (w < 0).any() or (w != np.round(w)).any():
                bad = w[(w < 0) | (w != np.round(w))][0]
                raise ModelError(f"maps spikes only with whole weights >= 0 (copies of each spike), "
                                 f"but 'weights' holds {bad:g} (weight the coupling instead, or map "
                                 f"a rate)")
        units = incoming.units if self.units is None else self.units
        return SignalSpec(incoming.kind, n_out, units, incoming.period_ticks)

    def build(self, incoming: SignalSpec, ctx: AdapterContext) -> "_ChannelMap":
        return _ChannelMap(np.array(self.weights, dtype=np.float64), incoming.kind == "spikes")


def _sizes(sizes) -> tuple[int, ...]:
    out = tuple(sizes) if not isinstance(sizes, (str, bytes)) else ()
    if not out or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in out):
        raise ModelError(f"channel_map: 'sizes' must be whole numbers >= 1, one per block (got {sizes!r})")
    return tuple(int(s) for s in out)


class _ChannelMap:
    def __init__(self, w: np.ndarray, spikes: bool):
        self.w = w
        # one input channel (a population rate fanned out): each output is one product, so a
        # broadcast multiply gives the matrix product's bits without its call
        self.col = np.ascontiguousarray(w[:, 0]) if w.ndim == 2 and w.shape[1] == 1 else None
        if spikes:
            # (copies) per incoming channel: the output channels, repeated by weight
            counts = w.astype(np.int64)
            self.fan = [np.repeat(np.arange(w.shape[0]), counts[:, j]) for j in range(w.shape[1])]
            self.n_fan = np.array([len(f) for f in self.fan], dtype=np.int64)
            self.targets = np.concatenate(self.fan) if self.fan else np.zeros(0, np.int64)
            self.offsets = np.concatenate([[0], np.cumsum(self.n_fan)])

    def __call__(self, t0: int, t1: int, x):
        if isinstance(x, Samples):
            if self.col is not None:
                return Samples(x.t0, x.period, x.data * self.col)
            return Samples(x.t0, x.period, x.data @ self.w.T)
        reps = self.n_fan[x.ids]
        ticks = np.repeat(x.ticks, reps)
        # the position of each copy within its spike's fan
        start = np.repeat(self.offsets[x.ids], reps)
        within = np.arange(len(ticks)) - np.repeat(np.cumsum(reps) - reps, reps)
        ids = self.targets[start + within]
        order = np.lexsort((ids, ticks))
        return Spikes(ticks[order], ids[order].astype(np.int64))

    def state(self) -> dict[str, np.ndarray]:
        return {}
