"""Two-photon calcium imaging: spikes -> somatic calcium -> indicator fluorescence, per neuron.

Model, per imaged neuron i (Chen et al. 2013 for the indicator; the two-time-constant calcium
kernel as in Vogelstein et al. 2009 and Deneux et al. 2016):

    [Ca]_i(t) = ca_rest + A * sum_{spikes t_s < t} (1 - exp(-(t - t_s)/tau_r)) exp(-(t - t_s)/tau_d)
    F_i(t)    = 1 + (R - 1) * [Ca]^n / ([Ca]^n + Kd^n)          (F of Ca-free indicator = 1)

with A the jump per spike (nM; the amplitude of the decaying part), tau_r and tau_d the rise and
decay time constants, Kd, n and R = F_sat / F_free the indicator's affinity, Hill coefficient
and dynamic range. A single spike's calcium peaks at t* = tau_r ln(1 + tau_d / tau_r). The probe
writes dF/F = F / F_rest - 1, with F_rest = F(ca_rest), at every frame (``frame_rate_hz``).

Optional measurement effects, both in the global stage (deterministic for a given ``seed``,
whatever the transport): neuropil contamination, where each cell's measured fluorescence is
F_i + r * F_np with F_np the mean of all imaged cells (standing in for the surrounding
neuropil; the usual correction F - r F_np with the same r undoes it), and photon shot noise,
where the count of a frame is Poisson with mean ``photons_at_rest * F / F_rest``.

The local part, in the solver's process, turns the solver's spikes into F / F_rest - 1 of its
imaged neurons at every frame (the calcium traces are kept between windows, so a frame period
longer than the window is fine); the global part places them side by side and applies
contamination and noise.

References
----------
Chen T-W et al. (2013) Ultrasensitive fluorescent proteins for imaging neuronal activity.
    Nature 499:295-300 (Table 1: Kd, Hill coefficient and dynamic range of GCaMP6s/6f).
Vogelstein JT et al. (2009) Spike inference from calcium imaging using sequential Monte Carlo
    methods. Biophys J 97:636-655.
Deneux T et al. (2016) Accurate spike estimation from noisy calcium signals for ultrafast
    three-dimensional imaging of large neuronal populations in vivo. Nat Commun 7:12190.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.model import Endpoint
from ..coordinator.seeding import rng_for
from ..coordinator.signals import Port, WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec
from ..coordinator.time import TICKS_PER_MS, grid_start
from ..coordinator.validation import as_tuple, fail, require_choice, require_int, require_number

#: Indicator presets. Kd (nM), Hill n and dynamic range R = F_sat/F_free are meant to be the
#: purified-protein values of Chen et al. 2013 (GCaMP6s 144 nM, 2.90, 63.2; GCaMP6f 375 nM,
#: 2.27, 51.8). What could be checked against public sources (a search of stored public
#: pages and code; the paper's table itself was not reachable):
#:   - Kd 144 nM (6s) and 375 nM (6f): the same values in an independent simulator's indicator
#:     table; Helassa et al. 2016 (Sci Rep 6:38276) give "100-300 nM" for both. Consistent.
#:   - Hill n 2.90 / 2.27 and dynamic ranges 63.2 / 51.8: NOT confirmed (that table rounds n
#:     to 3.0 and uses R of about 50-60); kept, to be checked against Chen et al. 2013 Table 1.
#:   - Rise: Chen et al. 2013 (PMC3777791, section on mouse visual cortex) resolve spikes of a
#:     burst at intervals on the order of the rise time, 50-75 ms (6f) and 100-150 ms (6s):
#:     consistent with tau_rise 50 ms and 150 ms.
#:   - Decay: NOT confirmed. The 400 ms (6f) and 1250 ms (6s) calcium decay constants are
#:     typical in-vivo values for somatic transients (6f ~3x faster than 6s); half-decay
#:     times of single-spike fluorescence transients quoted elsewhere are shorter (~140 ms for
#:     6f, ~550 ms for 6s, unverified here). The fluorescence of this model decays faster than
#:     its calcium when the jump is large next to ca_rest (F ~ [Ca]^n: down to tau_decay / n);
#:     fit both constants to your preparation.
INDICATORS: dict[str, dict[str, float]] = {
    "GCaMP6f": {"kd_nM": 375.0, "hill_n": 2.27, "dynamic_range": 51.8,
                "tau_rise_ms": 50.0, "tau_decay_ms": 400.0},
    "GCaMP6s": {"kd_nM": 144.0, "hill_n": 2.90, "dynamic_range": 63.2,
                "tau_rise_ms": 150.0, "tau_decay_ms": 1250.0},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Calcium(ProbeSpec):
    """dF/F of two-photon calcium imaging, one channel per imaged neuron.

    Parameters
    ----------
    spikes : addresses of spike output ports, 'solver.port' (every neuron) or
        'solver.port[a:b]' (the imaged ones); channels follow this order
    indicator : 'GCaMP6f' or 'GCaMP6s' (see INDICATORS); the five fields below override it
    kd_nM, hill_n, dynamic_range : Hill affinity (nM), coefficient, F_sat / F_free
    tau_rise_ms, tau_decay_ms : calcium kernel time constants (ms), tau_rise < tau_decay
    ca_rest_nM : resting free calcium (nM)
    ca_per_spike_nM : jump of the decaying calcium per spike (nM); the default 10 nM gives a
        one-spike peak dF/F of about 0.11 (GCaMP6f) and 0.31 (GCaMP6s)
    frame_rate_hz : frames per second; the frame period is rounded to the nearest ns
    neuropil_r : contamination ratio r (0: none; ~0.7 in vivo)
    photons_at_rest : mean photon count per frame of a resting cell; None: no shot noise
    seed : seed of the shot noise
    positions_um : (n_channels, 3) neuron positions (um) for the run file, or None
    """

    type: ClassVar[str] = "calcium"
    modality: ClassVar[str] = "calcium"

    spikes: tuple
    indicator: str = "GCaMP6f"
    kd_nM: float | None = None
    hill_n: float | None = None
    dynamic_range: float | None = None
    tau_rise_ms: float | None = None
    tau_decay_ms: float | None = None
    ca_rest_nM: float = 50.0
    ca_per_spike_nM: float = 10.0
    frame_rate_hz: float = 30.0
    neuropil_r: float = 0.0
    photons_at_rest: float | None = None
    seed: int = 0
    positions_um: tuple | None = None

    def __post_init__(self) -> None:
        port_addresses(self, "spikes", "spike port")
        require_choice(self, "indicator", tuple(INDICATORS))
        require_number(self, "kd_nM", "hill_n", "dynamic_range", "tau_rise_ms", "tau_decay_ms",
                       positive=True, allow_none=True)
        require_number(self, "ca_rest_nM", "ca_per_spike_nM", nonnegative=True)
        require_number(self, "frame_rate_hz", positive=True)
        require_number(self, "neuropil_r", nonnegative=True)
        require_number(self, "photons_at_rest", positive=True, allow_none=True)
        require_int(self, "seed", minimum=0)
        p = self.params()
        if p["dynamic_range"] <= 1.0:
            raise fail(self, f"'dynamic_range' must be > 1 (got {p['dynamic_range']!r})")
        if not p["tau_rise_ms"] < p["tau_decay_ms"]:
            raise fail(self, f"'tau_rise_ms' ({p['tau_rise_ms']:g}) must be shorter than "
                             f"'tau_decay_ms' ({p['tau_decay_ms']:g})")
        if self.frame_ticks < 1:
            raise fail(self, f"'frame_rate_hz' must give a frame period of at least 1 ns "
                             f"(got {self.frame_rate_hz!r})")
        if self.positions_um is not None:
            pos = np.asarray(as_tuple(self, "positions_um", float))
            if pos.ndim != 2 or pos.shape[1] != 3 or not np.isfinite(pos).all():
                raise fail(self, f"'positions_um' must be (n_channels, 3) finite numbers "
                                 f"(got shape {pos.shape})")

    @classmethod
    def example(cls) -> "Calcium":
        return cls(spikes=("net.E.spikes[0:4]",), indicator="GCaMP6s", frame_rate_hz=30.0,
                   neuropil_r=0.7, photons_at_rest=100.0, seed=3)

    # -- parameters ------------------------------------------------------------------------
    def params(self) -> dict[str, float]:
        """The indicator preset with this spec's overrides applied."""
        p = dict(INDICATORS[self.indicator])
        for k in p:
            v = getattr(self, k)
            if v is not None:
                p[k] = float(v)
        return p

    @property
    def frame_ticks(self) -> int:
        return int(round(1000.0 / self.frame_rate_hz * TICKS_PER_MS))

    def fluorescence(self, ca_nM: np.ndarray) -> np.ndarray:
        """F (Ca-free indicator = 1) of free calcium ``ca_nM`` (any shape, nM): the Hill curve."""
        p = self.params()
        c = np.maximum(np.asarray(ca_nM, dtype=np.float64), 0.0) ** p["hill_n"]
        return 1.0 + (p["dynamic_range"] - 1.0) * c / (c + p["kd_nM"] ** p["hill_n"])

    def kernel_nM(self, t_ms: np.ndarray) -> np.ndarray:
        """Calcium increase (nM) ``t_ms`` after one spike (0 before it)."""
        p = self.params()
        t = np.asarray(t_ms, dtype=np.float64)
        k = (1.0 - np.exp(-t / p["tau_rise_ms"])) * np.exp(-t / p["tau_decay_ms"])
        return np.where(t > 0, self.ca_per_spike_nM * k, 0.0)

    # -- the probe protocol ----------------------------------------------------------------
    def _sources(self) -> list[Endpoint]:
        return [Endpoint.parse(a, "calcium: spikes") for a in self.spikes]

    def solvers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ep.solver for ep in self._sources()))

    def _channels(self, ports: Mapping[str, Mapping[str, Port]]) -> list[tuple[Endpoint, tuple]]:
        out = []
        for ep in self._sources():
            p = ports[ep.solver].get(ep.port)
            if p is None or p.direction != "out" or p.kind != "spikes":
                have = [n for n, q in ports[ep.solver].items() if q.direction == "out" and q.kind == "spikes"]
                raise ModelError(f"solver {ep.solver!r} has no spike output port {ep.port!r} "
                                 f"(has: {', '.join(map(repr, have)) or 'none'})")
            sel = ep.resolve(p.size, "calcium: spikes")
            if len(set(sel)) != len(sel):
                raise ModelError(f"{ep.text!r} images a neuron twice; list each neuron once")
            out.append((ep, sel))
        return out

    def describe(self, ports: Mapping[str, Mapping[str, Port]], window_ticks: int) -> "ColumnsInfo":
        columns, n = [], 0
        for ep, sel in self._channels(ports):
            columns.append((ep.solver, ep.port, tuple(sel), n))
            n += len(sel)
        if self.positions_um is not None and len(self.positions_um) != n:
            raise ModelError(f"'positions_um' has {len(self.positions_um)} rows but the spike "
                             f"ports give {n} imaged neurons")
        return ColumnsInfo(n_channels=n, period_ticks=self.frame_ticks, units="dF/F",
                           modality=self.modality, positions=self.positions_um,
                           columns=tuple(columns))

    def local(self, solver_name: str, solver, ports: Mapping[str, Port], info: "ColumnsInfo"):
        mine = []
        for sname, port, sel, first in info.columns:
            if sname == solver_name:
                # neuron index in the port -> column of the written signal (-1: not imaged)
                lookup = np.full(ports[port].size, -1, dtype=np.int64)
                lookup[np.asarray(sel, dtype=np.int64)] = first + np.arange(len(sel))
                mine.append((port, lookup))
        return _CalciumLocal(self, info, mine)

    def combine(self, info: ProbeInfo):
        return _CalciumGlobal(self, info)



def port_addresses(spec, field: str, what: str = "port") -> tuple[str, ...]:
    """Normalise ``spec.<field>`` (one address or several, 'solver.port[sel]') to a checked,
    non-empty tuple of strings, stored back on the frozen spec."""
    if isinstance(getattr(spec, field), str):
        object.__setattr__(spec, field, (getattr(spec, field),))
    addrs = as_tuple(spec, field, str)
    if not addrs:
        raise fail(spec, f"{field!r} must name at least one {what} ('solver.port')")
    for a in addrs:
        Endpoint.parse(a, f"{spec.type}: {field}")
    return addrs


@dataclass(frozen=True, slots=True)
class ColumnsInfo(ProbeInfo):
    """ProbeInfo that also says which columns each source fills: ``columns`` holds
    (solver, port, selected channels, first column) per source, in the spec's order. Every
    process plans the model anew, so each local part finds its own columns here."""

    columns: tuple = ()


class _CalciumLocal:
    """Calcium traces of one solver's imaged neurons, carried between windows."""

    def __init__(self, spec: Calcium, info: ProbeInfo, mine):
        p = spec.params()
        self.spec = spec
        self.period = info.period_ticks
        self.n = info.n_channels
        self.mine = mine
        self.tau = np.array([p["tau_decay_ms"], 1.0 / (1.0 / p["tau_rise_ms"] + 1.0 / p["tau_decay_ms"])])
        # two traces per channel: sum of exp(-(t - t_s)/tau) over past spikes, at tick self.t
        self.trace = np.zeros((2, self.n))
        self.t = 0
        self.f_rest = float(spec.fluorescence(spec.ca_rest_nM))

    def _decay(self, dt_ticks) -> np.ndarray:
        return np.exp(-np.asarray(dt_ticks, dtype=np.float64)[..., None] / TICKS_PER_MS / self.tau)

    def __call__(self, t0: int, t1: int, result: WindowResult) -> np.ndarray:
        ticks, cols = [], []
        for port, lookup in self.mine:
            sig = result.outputs[port]
            if len(sig):
                c = lookup[np.asarray(sig.ids, dtype=np.int64)]
                keep = c >= 0
                ticks.append(np.asarray(sig.ticks, dtype=np.int64)[keep])
                cols.append(c[keep])
        ticks = np.concatenate(ticks) if ticks else np.zeros(0, np.int64)
        cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        frames = np.arange(grid_start(t0, self.period), t1, self.period)
        if not len(frames):
            out = np.zeros((0, self.n))
        else:
            # traces at every frame: the carried ones decayed, plus this window's earlier spikes
            tr = self.trace[None, :, :] * self._decay(frames - self.t)[:, :, None]   # (k, 2, n)
            if len(ticks):
                lag = frames[:, None] - ticks[None, :]                                   # (k, m)
                w = np.where((lag > 0)[..., None], self._decay(np.maximum(lag, 0)), 0.0)  # (k, m, 2)
                add = np.zeros((self.n, len(frames), 2))
                np.add.at(add, cols, w.transpose(1, 0, 2))
                tr += add.transpose(1, 2, 0)
            ca = self.spec.ca_rest_nM + self.spec.ca_per_spike_nM * (tr[:, 0] - tr[:, 1])
            out = self.spec.fluorescence(ca) / self.f_rest - 1.0
        # carry the traces to t1
        self.trace *= self._decay(t1 - self.t)[:, None]
        if len(ticks):
            w = self._decay(t1 - ticks)
            for j in range(2):
                np.add.at(self.trace[j], cols, w[:, j])
        self.t = t1
        # other solvers' columns stay 0: the global stage sums the parts
        return out


class _CalciumGlobal:
    """Sums the solvers' parts; adds neuropil contamination and shot noise frame by frame."""

    def __init__(self, spec: Calcium, info: ProbeInfo):
        self.spec = spec
        self.rng = rng_for(spec.seed, "calcium") if spec.photons_at_rest is not None else None

    def __call__(self, t0: int, t1: int, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        rel = 1.0 + np.sum([parts[name] for name in sorted(parts)], axis=0)   # F / F_rest
        r = self.spec.neuropil_r
        if r > 0.0 and rel.shape[0]:
            # the neuropil at rest is as bright as a resting cell: F_rest (1 + r) is the baseline
            rel = (rel + r * rel.mean(axis=1, keepdims=True)) / (1.0 + r)
        if self.rng is not None and rel.shape[0]:
            n_ph = self.spec.photons_at_rest
            # frame-major draws: any split into windows consumes the same stream
            rel = self.rng.poisson(rel * n_ph).astype(np.float64) / n_ph
        return rel - 1.0
