"""A linear readout of sampled ports, summed over solvers: a user-given lead field.

For each source port ``s`` with samples ``x_s`` (n_samples, size_s) and a matrix ``W_s``
(n_channels, size_s), the probe writes ``sum_s x_s @ W_s.T``. The product runs in the solver's
process (its local part) and the sum where the run file is written, as every linear forward
model does (LFP, EEG and MEG are such sums over sources).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.model import Endpoint
from ..coordinator.signals import Port, WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec
from ..coordinator.time import fmt_ms, grid_count, grid_start, lcm, to_ticks
from ..coordinator.validation import as_tuple, require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearReadout(ProbeSpec):
    """Channels = sum over sources of weights[source] @ source samples.

    Parameters
    ----------
    weights : {address: (n_channels, port size) matrix}; addresses name sampled out ports
        ('solver.port')
    units : units of the result
    every_ms : sample period of the probe (ms); a multiple of every source port's period.
        None: the least common multiple of the source periods. Sources are sampled, not
        averaged, at these times.
    modality : what the channels measure ('analog', 'eeg', 'lfp', ...)
    positions_um : (n_channels, 3) channel positions (um), or None
    """

    type: ClassVar[str] = "linear_readout"
    modality: str = "analog"

    weights: Mapping
    units: str = ""
    every_ms: float | None = None
    positions_um: tuple | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise ModelError(f"linear_readout: 'weights' must be a non-empty dict of address -> "
                             f"matrix (got {self.weights!r})")
        fixed = {}
        n_ch = None
        for addr, w in self.weights.items():
            ep = Endpoint.parse(addr, "linear_readout: weights key")
            if ep.selection is not None:
                raise ModelError(f"linear_readout: weights key {addr!r}: give the whole port; put "
                                 f"zeros in the matrix for channels to leave out")
            arr = np.asarray(w, dtype=np.float64)
            if arr.ndim != 2 or not np.isfinite(arr).all():
                raise ModelError(f"linear_readout: weights[{addr!r}] must be a finite (n_channels, "
                                 f"port size) matrix (got shape {arr.shape})")
            if n_ch is not None and arr.shape[0] != n_ch:
                raise ModelError(f"linear_readout: weights[{addr!r}] has {arr.shape[0]} rows, the "
                                 f"others {n_ch}; every matrix gives the same channels")
            n_ch = arr.shape[0]
            fixed[addr] = tuple(tuple(float(v) for v in row) for row in arr)
        object.__setattr__(self, "weights", fixed)
        if self.positions_um is not None:
            pos = np.asarray(as_tuple(self, "positions_um", float))
            if pos.shape != (n_ch, 3):
                raise ModelError(f"linear_readout: 'positions_um' must be ({n_ch}, 3) (got {pos.shape})")
        require_number(self, "every_ms", positive=True, allow_none=True)
        if not isinstance(self.modality, str) or not isinstance(self.units, str):
            raise ModelError("linear_readout: 'modality' and 'units' must be strings")

    @classmethod
    def example(cls) -> "LinearReadout":
        return cls(weights={"a.x": ((1.0, 0.5),), "b.x": ((2.0,),)}, units="mV", modality="lfp",
                   every_ms=0.5, positions_um=((0.0, 0.0, 100.0),))

    def _sources(self) -> list[Endpoint]:
        return [Endpoint.parse(a, "weights key") for a in self.weights]

    def solvers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ep.solver for ep in self._sources()))

    def describe(self, ports: Mapping[str, Mapping[str, Port]], window_ticks: int) -> ProbeInfo:
        periods = []
        for ep in self._sources():
            p = ports[ep.solver].get(ep.port)
            if p is None or p.direction != "out" or not p.sampled:
                have = [n for n, q in ports[ep.solver].items() if q.direction == "out" and q.sampled]
                raise ModelError(f"solver {ep.solver!r} has no sampled output port {ep.port!r} "
                                 f"(has: {', '.join(map(repr, have)) or 'none'})")
            w = self.weights[ep.text]
            if len(w[0]) != p.size:
                raise ModelError(f"weights[{ep.text!r}] has {len(w[0])} columns but the port has "
                                 f"{p.size} channels")
            periods.append((ep.text, p.period_ticks))
        period = lcm(q for _, q in periods)
        if self.every_ms is not None:
            period = to_ticks(self.every_ms, "linear_readout: every_ms")
            for addr, q in periods:
                if period % q:
                    raise ModelError(f"every_ms={self.every_ms:g} is not a multiple of the sample "
                                     f"period of {addr} ({fmt_ms(q)})")
        n_ch = len(next(iter(self.weights.values())))
        return ProbeInfo(n_channels=n_ch, period_ticks=period, units=self.units,
                         modality=self.modality, positions=self.positions_um)

    def local(self, solver_name: str, solver, ports: Mapping[str, Port], info: ProbeInfo):
        probe_period = info.period_ticks
        mats = [(ep.port, np.array(self.weights[ep.text]).T) for ep in self._sources()
                if ep.solver == solver_name]

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            total = np.zeros((grid_count(t0, t1, probe_period), info.n_channels))
            first = grid_start(t0, probe_period)
            for port, m in mats:
                sig = result.outputs[port]
                rows = sig.data[(first - t0) // sig.period::probe_period // sig.period]
                total += rows @ m
            return total
        return part
