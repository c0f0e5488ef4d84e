"""Stimulus solvers: sources of activity given as data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.signals import Port, Spikes, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import TICKS_PER_MS, to_ticks
from ..coordinator.validation import as_tuple, fail, require_int, require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikeTrain(SolverSpec):
    """Emits given spikes at exactly the given times.

    Parameters
    ----------
    times_ms : (k,) spike times (ms, >= 0; whole numbers of the 1 ns base resolution)
    ids : (k,) channel of each spike (default all 0)
    size : number of channels
    dt_ms : step (ms); only sets which windows the solver can be advanced by

    Ports
    -----
    spikes : out, spikes (size,)
    """

    type: ClassVar[str] = "spike_train"
    level: ClassVar[str] = "stimulus"

    times_ms: tuple = ()
    ids: tuple | None = None
    size: int = 1
    dt_ms: float = 0.1

    def __post_init__(self) -> None:
        require_number(self, "dt_ms", positive=True)
        require_int(self, "size", minimum=1)
        times = as_tuple(self, "times_ms", float)
        for t in times:
            if not (t >= 0 and np.isfinite(t)):
                raise fail(self, f"'times_ms' must hold finite times >= 0 (got {t!r})")
            to_ticks(t, "spike_train: times_ms")
        if self.ids is not None:
            ids = as_tuple(self, "ids", int)
            if len(ids) != len(times):
                raise fail(self, f"'ids' has {len(ids)} entries but 'times_ms' has {len(times)}")
            bad = [i for i in ids if not 0 <= i < self.size]
            if bad:
                raise fail(self, f"'ids' holds {bad[0]}, outside [0, size={self.size})")

    def ports(self) -> dict[str, Port]:
        return {"spikes": Port("spikes", "out", self.size, "", None, "the given spikes")}

    def build(self, ctx: SolverContext) -> "_SpikeTrainSolver":
        return _SpikeTrainSolver(self)


class _SpikeTrainSolver:
    def __init__(self, spec: SpikeTrain):
        self.dt_ticks = to_ticks(spec.dt_ms, "spike_train: dt_ms")
        ticks = np.round(np.asarray(spec.times_ms, dtype=np.float64) * TICKS_PER_MS).astype(np.int64)
        ids = np.zeros(len(ticks), np.int64) if spec.ids is None else np.asarray(spec.ids, np.int64)
        order = np.argsort(ticks, kind="stable")
        self.ticks, self.ids = ticks[order], ids[order]

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        lo, hi = np.searchsorted(self.ticks, [t0, t1])
        return WindowResult(outputs={"spikes": Spikes(self.ticks[lo:hi], self.ids[lo:hi])})

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def close(self) -> None:
        pass
