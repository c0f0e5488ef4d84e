"""A spike relay: re-emits every delivered spike at its arrival tick, on the same channel.

Makes deliveries observable (record ``relay.out`` to see exactly when spikes arrived), and
serves as a fan-in/fan-out point of a spike routing graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.signals import Port, Samples, Spikes, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import to_ticks
from ..coordinator.validation import require_int, require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikeRelay(SolverSpec):
    """Spikes in, the same spikes out at their arrival ticks.

    Ports
    -----
    in : in, spikes (size,)
    out : out, spikes (size,)
    weight : out, analog (1,), every dt: sum of the weights of spikes arriving in each step
    """

    type: ClassVar[str] = "relay"
    level: ClassVar[str] = "generic"

    size: int = 1
    dt_ms: float = 0.1

    def __post_init__(self) -> None:
        require_int(self, "size", minimum=1)
        require_number(self, "dt_ms", positive=True)

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "relay: dt_ms")
        return {"in": Port("spikes", "in", self.size, "", None, "spikes to relay"),
                "out": Port("spikes", "out", self.size, "", None, "the same spikes, at arrival"),
                "weight": Port("analog", "out", 1, "", p, "summed weight of arrivals per step")}

    def build(self, ctx: SolverContext) -> "_RelaySolver":
        return _RelaySolver(self)


class _RelaySolver:
    def __init__(self, spec: SpikeRelay):
        self.dt_ticks = to_ticks(spec.dt_ms, "relay: dt_ms")
        self.n_relayed = 0

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        s = inputs["in"]
        steps = (t1 - t0) // self.dt_ticks
        w = np.zeros((steps, 1))
        np.add.at(w[:, 0], (s.ticks - t0) // self.dt_ticks, s.weights)
        self.n_relayed += len(s)
        return WindowResult(outputs={"out": Spikes(s.ticks.copy(), s.ids.copy()),
                                     "weight": Samples(t0, self.dt_ticks, w)})

    def state(self) -> dict[str, np.ndarray]:
        return {"n_relayed": np.array(self.n_relayed)}

    def close(self) -> None:
        pass
