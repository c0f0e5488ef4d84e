"""What flows between solvers: ports and the two kinds of window data, spikes and samples.

A *port* is a named input or output of a solver carrying one kind of signal:

* ``spikes``: events, each an integer emission tick and a source index in ``[0, size)``;
* ``rate``: population rates in Hz, sampled every ``period_ticks``;
* ``analog``: any other sampled vector (a current, a voltage, a state), sampled every
  ``period_ticks``.

Within a window ``[t0, t1)`` a sampled signal has ``(t1 - t0) // period`` samples; sample ``k`` is
the value *at* tick ``t0 + k * period`` (for an output: the state at the start of that step).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np

from .errors import ModelError

SignalKind = Literal["spikes", "rate", "analog"]
KINDS = ("spikes", "rate", "analog")
SAMPLED = ("rate", "analog")


@dataclass(frozen=True, slots=True)
class Port:
    """A solver's named input or output.

    Attributes
    ----------
    kind : 'spikes', 'rate' or 'analog'
    direction : 'in' or 'out'
    size : number of channels (neurons for spikes, vector length for sampled signals)
    units : physical units of the values ('Hz', 'mV', 'nA'; '' for spikes or dimensionless)
    period_ticks : sample period in ticks for sampled signals; None for spikes
    doc : one line saying what the port carries
    """

    kind: SignalKind
    direction: Literal["in", "out"]
    size: int
    units: str = ""
    period_ticks: int | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelError(f"port kind must be one of {KINDS} (got {self.kind!r})")
        if self.direction not in ("in", "out"):
            raise ModelError(f"port direction must be 'in' or 'out' (got {self.direction!r})")
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ModelError(f"port size must be an integer >= 1 (got {self.size!r})")
        if self.kind in SAMPLED:
            if not isinstance(self.period_ticks, (int, np.integer)) or self.period_ticks < 1:
                raise ModelError(f"a {self.kind} port needs period_ticks >= 1 "
                                 f"(got {self.period_ticks!r})")
        elif self.period_ticks is not None:
            raise ModelError("a spikes port has no period_ticks")

    @property
    def sampled(self) -> bool:
        return self.kind in SAMPLED

    def to_dict(self) -> dict:
        return {"kind": self.kind, "direction": self.direction, "size": int(self.size),
                "units": self.units, "period_ticks": self.period_ticks, "doc": self.doc}

    @classmethod
    def from_dict(cls, d: dict) -> "Port":
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Spikes:
    """Spike events of one window.

    ticks : (n,) int64, absolute time of each event in ticks
    ids : (n,) int64, channel (neuron) index of each event
    weights : (n,) float64 or None; set on deliveries, from the coupling's weight
    """

    ticks: np.ndarray
    ids: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def empty(cls, with_weights: bool = False) -> "Spikes":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(0) if with_weights else None)

    def __len__(self) -> int:
        return int(self.ticks.shape[0])


@dataclass(frozen=True, slots=True)
class Samples:
    """A sampled signal over one window.

    t0 : tick of the first sample
    period : ticks between samples
    data : (n_samples, size) float64; row k is the value at tick ``t0 + k * period``
    """

    t0: int
    period: int
    data: np.ndarray

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    def times(self) -> np.ndarray:
        """(n_samples,) int64 ticks of the samples."""
        return self.t0 + self.period * np.arange(self.n, dtype=np.int64)


Signal = Union[Spikes, Samples]


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """What a stage of a coupling carries: kind, channel count, units, period (None for spikes)."""

    kind: SignalKind
    size: int
    units: str = ""
    period_ticks: int | None = None


@dataclass(slots=True)
class WindowResult:
    """What one solver hands out after a window.

    outputs : out-port name -> Spikes or Samples for the window
    probe_parts : probe name -> (n_samples, n_channels) float64, the solver's local contribution
    """

    outputs: dict[str, Signal] = field(default_factory=dict)
    probe_parts: dict[str, np.ndarray] = field(default_factory=dict)
