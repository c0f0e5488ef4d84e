"""NEURON as a polyscale solver: cells the user builds with hoc or Python, run by NEURON itself
window by window inside the worker, with the ports of the built-in cable solver.

A build callable (``builder='pkg.mod:make_cells'`` or ``'path/to/file.py:make_cells'``, called
as ``make_cells(**params)`` in the worker) creates the cells and returns them: a list of ``n``
objects (or dicts), each with a section named by ``soma`` (the spike source and recording
site, at its x = 0.5) and point processes named by ``synapses`` (attributes or keys). The cells
are placed in tissue by their own 3D points (``pt3dadd``); sections without any get NEURON's
``define_shape()`` layout.

Time: NEURON's fixed step (``cvode_active(0)``) at ``h.dt = dt_ms``; ``h.finitialize(v_init)``
once when built, then ``h.continuerun(t1)`` per window, so a run split into windows is the run
NEURON makes in one go. The coordinator only asks for windows that are whole numbers of dt.

Ports (as solvers/cell's CellPopulation):

* ``spikes`` out: NEURON's NetCon threshold detection at ``soma(0.5)``; each spike time is
  refined by linear interpolation of v over the step it was detected in, as the built-in
  solver does, and kept inside that step.
* ``v_soma`` out: v at ``soma(0.5)`` (mV) at the start of every step.
* ``syn`` in: spikes onto the synapses, channel ``cell * len(synapses) + j``, the spike's weight
  the NetCon weight (uS for NEURON's conductance synapses). The delivered spikes already carry
  the coupling's delay (their tick is the arrival time), so they go into NEURON's event queue
  with ``NetCon.event(t)`` at that time, which does not add the NetCon's own delay: the total
  delay is the coupling's. An arrival between two steps is delivered at the start of the step
  it falls in (as the built-in solver). One source-less NetCon per (synapse, weight).
* ``rate`` in: Poisson input (Hz) onto the same synapses, drawn per step from the solver's
  seeded generator exactly as the built-in solver draws it, queued as events of
  ``rate_weight_uS`` each.
* ``i_inj`` in: current (nA) at ``soma(0.5)`` through an IClamp, held over each step. A window
  with nonzero current is stepped with ``h.fadvance()`` so that the amplitude can change every
  step; windows without it run at NEURON's full speed.

Transmembrane currents (``record_currents=True``): ``cvode.use_fast_imem(1)`` and the
``i_membrane_`` (nA) of every segment, and the segments' end points from the sections' 3D points
(as LFPykit's CellGeometry from NEURON), so the probes that read the built-in cable solver read
this one the same way (``segment_geometry()``, ``transmembrane_currents()``).

hoc is one interpreter per process: one NeuronCells solver per process at a time (a second
raises ModelError; run models with several on the zmq or mpi transport, one per worker).
Needs ``pip install 'polyscale[neuron]'``; this module imports without it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Port, Samples, Spikes, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import TICKS_PER_MS, to_ticks
from ..coordinator.validation import as_tuple, fail, require_int, require_number, require_str
from ..solvers._poisson import poisson_events
from ._external import Translation, check_target, claim_process, load_target, release_process, require_extra

EXTRA = "neuron"

# NEURON counts in ms, mV, nA, uS and um, as polyscale's cable solver does: every factor is 1,
# said once, here, as data (tests/test_adapter_neuron.py goes through every row both ways).
#: the spec's fields -> NEURON's globals and the attributes polyscale sets
GLOBALS = Translation(
    "neuron globals",
    ("dt_ms", "dt", 1.0),              # h.dt, ms
    ("celsius", "celsius", 1.0),       # h.celsius, degC
    ("v_init_mV", "v_init", 1.0),      # h.finitialize(v_init), mV
    ("threshold_mV", "threshold", 1.0),  # NetCon.threshold, mV
)
#: what the ports carry -> what NEURON's objects take
PORT_UNITS = Translation(
    "neuron port units",
    ("syn_weight_uS", "NetCon.weight", 1.0),   # Exp2Syn/ExpSyn weights are uS
    ("rate_weight_uS", "NetCon.weight(rate)", 1.0),
    ("i_inj_nA", "IClamp.amp", 1.0),           # nA
    ("v_soma_mV", "v", 1.0),                   # mV
    ("i_membrane_nA", "i_membrane_", 1.0),     # nA (fast_imem)
    ("segment_um", "x3d", 1.0),                # um
)


def _import_neuron():
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")   # no X11 warning in workers
    h = require_extra("neuron", EXTRA, "neuron_cells").h
    h.load_file("stdrun.hoc")
    return h


def _part(cell, name: str, what: str, i: int):
    if isinstance(cell, dict):
        obj = cell.get(name)
    else:
        obj = getattr(cell, name, None)
    if obj is None:
        raise ModelError(f"neuron_cells: cell {i} has no {what} {name!r}")
    return obj


#: samples reserved per recording Vector (grown when a window needs more)
RECORD_CAPACITY = 8192


class _Recorder:
    """NEURON Vectors recording variables every step, read window by window without a hoc call
    per vector per window (each costs microseconds, which a window of a few cells does not).

    Each vector's buffer is reserved once and viewed as a numpy array; NEURON appends into it, we
    read the window's rows from the views, and only when the next window would not fit is every
    vector cut back to its last sample (amortised: one hoc call per vector per many windows).
    ``pos`` is the index of the newest sample (the value at the end of the last window)."""

    def __init__(self, h, refs, capacity: int | None = None):
        capacity = RECORD_CAPACITY if capacity is None else capacity
        self.h = h
        self.vecs = []
        for r in refs:
            v = h.Vector()
            v.record(r)
            self.vecs.append(v)
        self.views: list = []
        self.cap = 0
        self.pos = 0
        self._reserve(capacity)

    def _reserve(self, cap: int) -> None:
        views = []
        for v in self.vecs:
            n = int(v.size())
            keep = v.as_numpy()[:n].copy()
            v.buffer_size(cap)
            v.resize(cap)
            view = v.as_numpy()
            v.resize(n)
            view[:n] = keep
            views.append(view)
        self.views, self.cap = views, cap

    def check(self) -> None:
        """ModelError unless every vector holds pos + 1 samples in the buffer we view."""
        for v, view in zip(self.vecs, self.views):
            if int(v.size()) != self.pos + 1 or v.as_numpy().ctypes.data != view.ctypes.data:
                raise ModelError("neuron_cells: a recording Vector was resized or recorded at another "
                                 "rate than dt by something else (did the builder change h.dt or "
                                 "the recordings?)")

    def prepare(self, steps: int) -> None:
        """Room for ``steps`` more samples."""
        if self.pos + steps + 1 <= self.cap:
            return
        self.check()
        for v, view in zip(self.vecs, self.views):
            last = view[self.pos]
            v.resize(1)
            view[0] = last
        self.pos = 0
        if steps + 1 > self.cap:
            self._reserve(2 * (steps + 1))

    def window(self, steps: int) -> np.ndarray:
        """(steps + 1, n_vectors): samples pos .. pos + steps (the window's start to its end)."""
        a, b = self.pos, self.pos + steps + 1
        out = np.empty((steps + 1, len(self.views)))
        for j, view in enumerate(self.views):
            out[:, j] = view[a:b]
        self.pos += steps
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class NeuronCells(SolverSpec):
    """Cells built in NEURON by a user's callable, run by NEURON (see the module docstring).

    Parameters
    ----------
    builder : 'package.module:function' or 'path/to/file.py:function'; ``function(**params)``
        returns the list of ``n`` cells
    params : keyword arguments of the builder (plain data)
    n : number of cells the builder returns (checked)
    soma : name of each cell's section that is the spike source and recording site (x = 0.5)
    synapses : names of each cell's point processes fed by the ``syn`` port
    threshold_mV : upward crossing at soma(0.5) that is a spike (NetCon threshold)
    v_init_mV : h.finitialize's voltage; celsius : h.celsius (C)
    dt_ms : NEURON's fixed step h.dt (ms)
    record_currents : record every segment's i_membrane_ for the probes (costs time and memory)
    rate_weight_uS : weight of each Poisson event drawn from the ``rate`` port (uS)

    Ports
    -----
    spikes : out, spikes (n,); v_soma : out, analog (n,) mV every dt;
    syn : in, spikes (n * len(synapses),), weight in the synapse's weight units (uS);
    rate : in, rate (n * len(synapses),) Hz every dt: Poisson events onto the same synapses,
        each of ``rate_weight_uS`` (drawn from the solver's seeded stream, as CellPopulation);
    i_inj : in, analog (n,) nA every dt, at soma(0.5)
    """

    type: ClassVar[str] = "neuron_cells"
    level: ClassVar[str] = "I"

    builder: str
    params: dict = field(default_factory=dict)
    n: int = 1
    soma: str = "soma"
    synapses: tuple = ()
    threshold_mV: float = 0.0
    v_init_mV: float = -65.0
    celsius: float = 6.3
    dt_ms: float = 0.025
    record_currents: bool = False
    rate_weight_uS: float = 0.001

    def __post_init__(self) -> None:
        check_target(self.builder, "neuron_cells: 'builder'")
        require_str(self, "soma")
        if not isinstance(self.params, dict) or not all(isinstance(k, str) for k in self.params):
            raise fail(self, f"'params' must be a dict with string keys (got {self.params!r})")
        require_int(self, "n", minimum=1)
        syn = as_tuple(self, "synapses")
        for s in syn:
            if not isinstance(s, str) or not s:
                raise fail(self, f"'synapses' must hold names of point processes (got {s!r})")
        if len(set(syn)) != len(syn):
            raise fail(self, f"'synapses' names one twice (got {syn!r})")
        require_number(self, "threshold_mV", "v_init_mV", "celsius")
        require_number(self, "dt_ms", positive=True)
        require_number(self, "rate_weight_uS", nonnegative=True)
        to_ticks(self.dt_ms, "neuron_cells: dt_ms")
        if not isinstance(self.record_currents, bool):
            raise fail(self, f"'record_currents' must be True or False (got {self.record_currents!r})")

    @classmethod
    def example(cls) -> "NeuronCells":
        return cls(builder="my_cells:make", params={"n": 2}, n=2, synapses=("syn",))

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "neuron_cells: dt_ms")
        out = {"spikes": Port("spikes", "out", self.n, "", None,
                              f"{self.threshold_mV:g} mV upward crossings at {self.soma}(0.5)"),
               "v_soma": Port("analog", "out", self.n, "mV", p, f"voltage at {self.soma}(0.5) at the start of each step")}
        if self.synapses:
            out["syn"] = Port("spikes", "in", self.n * len(self.synapses), "uS", None,
                              "spikes onto synapses; channel = cell * n_syn + synapse; weight uS")
            out["rate"] = Port("rate", "in", self.n * len(self.synapses), "Hz", p,
                               "Poisson input onto synapses; channel = cell * n_syn + synapse")
        out["i_inj"] = Port("analog", "in", self.n, "nA", p, f"current injected at {self.soma}(0.5)")
        return out

    def build(self, ctx: SolverContext | None) -> "NeuronSolver":
        """The live solver; ``ctx.rng`` draws the Poisson input (a fixed seed 0 without ctx)."""
        return NeuronSolver(self, None if ctx is None else ctx.name,
                            ctx.rng if ctx is not None else np.random.default_rng(0))


class NeuronSolver:
    """The live solver: NEURON's cells, stepped window by window."""

    def __init__(self, spec: NeuronCells, name: str | None = None,
                 rng: np.random.Generator | None = None):
        h = _import_neuron()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.n_rate_events = 0
        # hoc is one interpreter per process: one solver at a time (a direct build, with no
        # name from a model, claims under a name of its own)
        self.name = name or f"neuron_cells@{id(self):x}"
        claim_process("NEURON", self.name)
        self.spec, self.h = spec, h
        self.netcons, self.detectors, self.clamps = {}, [], []
        self.v_rec = self.i_rec = None
        self.dt_ticks = to_ticks(spec.dt_ms, "neuron_cells: dt_ms")
        self.dt = self.dt_ticks / TICKS_PER_MS
        try:
            cells = self._make_cells()
        except BaseException:
            release_process("NEURON", self.name)
            raise
        try:
            self._setup(cells)
        except BaseException:
            self.close()
            raise

    def _make_cells(self) -> list:
        spec, h = self.spec, self.h
        dt_before = float(h.dt)
        cells = load_target(spec.builder, "neuron_cells: builder")(**spec.params)
        # polyscale sets h.dt; a builder that sets another one meant another step
        if float(h.dt) != dt_before and abs(float(h.dt) - self.dt) > 1e-12:
            raise ModelError(f"neuron_cells: builder {spec.builder!r} set h.dt = {float(h.dt):g} ms but "
                             f"dt_ms is {spec.dt_ms:g} ms; set dt_ms to NEURON's step (the coupling "
                             f"window is a whole number of it) or leave h.dt to polyscale")
        if isinstance(cells, dict) or not hasattr(cells, "__len__"):
            raise ModelError(f"neuron_cells: builder {spec.builder!r} must return a list of cells "
                             f"(got {type(cells).__name__})")
        cells = list(cells)
        if len(cells) != spec.n:
            raise ModelError(f"neuron_cells: builder {spec.builder!r} made {len(cells)} cells but "
                             f"n is {spec.n}")
        return cells

    def _setup(self, cells: list) -> None:
        h, spec = self.h, self.spec
        self.netcons: dict = {}
        self.cells = cells
        self.soma = [_part(c, spec.soma, "section", i) for i, c in enumerate(cells)]
        self.syn = [[_part(c, s, "synapse", i) for s in spec.synapses] for i, c in enumerate(cells)]
        h.cvode_active(0)
        if spec.record_currents:
            h.cvode.use_fast_imem(1)
        g = GLOBALS.to_external({"dt_ms": self.dt, "celsius": spec.celsius,
                                 "v_init_mV": spec.v_init_mV, "threshold_mV": spec.threshold_mV})
        h.dt = g["dt"]
        h.steps_per_ms = 1.0 / g["dt"]
        h.celsius = g["celsius"]
        self._v_init, self._threshold = g["v_init"], g["threshold"]
        h.define_shape()     # 3D points for sections the builder left without any
        self.v_rec = _Recorder(h, [s(0.5)._ref_v for s in self.soma])
        # one pair of vectors records every cell's spikes (time, cell): two hoc calls a window
        self.spk_t, self.spk_id = h.Vector(), h.Vector()
        for c, s in enumerate(self.soma):
            nc = h.NetCon(s(0.5)._ref_v, None, sec=s)
            nc.threshold = self._threshold
            nc.record(self.spk_t, self.spk_id, c)
            self.detectors.append(nc)
        self.clamps = []
        for s in self.soma:
            ic = h.IClamp(s(0.5))
            ic.delay, ic.dur, ic.amp = 0.0, 1e9, 0.0
            self.clamps.append(ic)
        self.imem: np.ndarray | None = None
        self._segments = None
        if spec.record_currents:
            self._segments = self._collect_segments()
            self.i_rec = _Recorder(h, [seg._ref_i_membrane_ for seg in self._segments[0]])
        h.finitialize(self._v_init)
        self.step = 0
        self.n_spikes = 0

    # --- the window ---------------------------------------------------------------------
    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        h, dt_t = self.h, self.dt_ticks
        steps = (t1 - t0) // dt_t
        n0 = t0 // dt_t
        syn_in = inputs.get("syn") if inputs else None
        if syn_in is not None and len(syn_in):
            self._queue(syn_in, t0)
        rate = inputs.get("rate") if inputs else None
        if rate is not None and self.spec.synapses and rate.data.any():
            self._poisson(rate.data, t0)
        self.v_rec.prepare(steps)
        if self.spec.record_currents:
            self.i_rec.prepare(steps)
        i_inj = inputs.get("i_inj") if inputs else None
        if i_inj is not None and np.asarray(i_inj.data).any():
            amps = np.asarray(i_inj.data, dtype=np.float64)
            for k in range(steps):
                for ic, a in zip(self.clamps, amps[k]):
                    ic.amp = a
                h.fadvance()
            for ic in self.clamps:
                ic.amp = 0.0
        else:
            h.continuerun((n0 + steps) * self.dt)
        if abs(h.t - (n0 + steps) * self.dt) > 0.5 * self.dt:
            raise ModelError(f"neuron_cells: NEURON is at t = {h.t:g} ms after the window ending at "
                             f"{(n0 + steps) * self.dt:g} ms (dt {self.dt:g} ms); did something call "
                             f"stoprun or change h.dt?")
        v = self.v_rec.window(steps)                  # v at t0 .. t1, (steps + 1, n)
        ticks, ids = [], []
        thr = self.spec.threshold_mV
        n_spk = int(self.spk_t.size())
        if n_spk:
            times = self.spk_t.as_numpy().copy()
            cells = self.spk_id.as_numpy().astype(np.int64)
            self.spk_t.resize(0)
            self.spk_id.resize(0)
            for ts, c in zip(times.tolist(), cells.tolist()):
                # detected at the end of step j (NEURON's fixed step); refine within the step
                i = int(round(ts / self.dt)) - n0
                i = min(max(i, 1), steps)
                lo, hi = v[i - 1, c], v[i, c]
                frac = (thr - lo) / (hi - lo) if hi != lo else 1.0
                frac = min(max(frac, 0.0), 1.0)
                off = min(int(np.rint(frac * dt_t)), dt_t - 1)
                ticks.append(t0 + (i - 1) * dt_t + off)
                ids.append(c)
        if self.spec.record_currents:
            # sample 0 is the current over the step before the window (or the initial one)
            self.imem = self.i_rec.window(steps)[1:]
        self.step = n0 + steps
        self.n_spikes += len(ticks)
        t_arr, i_arr = np.array(ticks, dtype=np.int64), np.array(ids, dtype=np.int64)
        order = np.lexsort((i_arr, t_arr))
        return WindowResult(outputs={"spikes": Spikes(t_arr[order], i_arr[order]),
                                     "v_soma": Samples(t0, dt_t, v[:steps])})

    def _poisson(self, rate_hz: np.ndarray, t0: int) -> None:
        """Poisson events onto the synapses at ``rate_hz`` (steps, n * n_syn), drawn as the
        built-in solver draws them (step-major counts per step from the solver's generator, so
        any split into windows and the same seed give the same events); each event of
        ``count * rate_weight_uS`` at the start of its step."""
        if (rate_hz < 0).any() or not np.isfinite(rate_hz).all():
            raise ModelError("neuron_cells: 'rate' input must be finite and >= 0 Hz")
        ps_, pc, counts = poisson_events(self.rng, rate_hz * (self.dt * 1e-3), "neuron_cells: 'rate' input")
        if not len(ps_):
            return
        self.n_rate_events += int(counts.sum())
        ticks = t0 + ps_ * self.dt_ticks
        self._queue(Spikes(ticks, pc, counts * self.spec.rate_weight_uS), t0)

    def _queue(self, spikes: Spikes, t0: int) -> None:
        h, n_syn = self.h, len(self.spec.synapses)
        ids = np.asarray(spikes.ids, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= n_syn * self.spec.n:
            raise ModelError(f"neuron_cells: 'syn' spike channel out of range 0..{n_syn * self.spec.n - 1}")
        w = spikes.weights if spikes.weights is not None else np.ones(len(ids))
        # on the step grid: an arrival is delivered at the start of the step it falls in
        step = (np.asarray(spikes.ticks, dtype=np.int64) // self.dt_ticks)
        for s, c, wt in zip(step.tolist(), ids.tolist(), np.asarray(w, dtype=np.float64).tolist()):
            key = (c, wt)
            nc = self.netcons.get(key)
            if nc is None:
                nc = h.NetCon(None, self.syn[c // n_syn][c % n_syn])
                nc.weight[0] = wt
                nc.delay = 0.0
                self.netcons[key] = nc
            nc.event(s * self.dt)

    # --- what the probes call -----------------------------------------------------------
    def _collect_segments(self):
        """Every segment of every cell, cell-major, with its end points (um), diameter and area."""
        h = self.h
        segs, start, end, diam, area, cell, roots, centre = [], [], [], [], [], [], [], []
        for c, soma in enumerate(self.soma):
            for sec in soma.wholetree():
                n3 = int(sec.n3d())
                if n3 < 2:
                    raise ModelError(f"neuron_cells: section {sec.name()} has {n3} 3D points; the "
                                     "probes need its geometry")
                arc = np.array([sec.arc3d(i) for i in range(n3)])
                xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n3)])
                # segment boundaries at equal arc lengths, as LFPykit/LFPy place them
                b = np.linspace(0.0, arc[-1], sec.nseg + 1)
                pts = np.column_stack([np.interp(b, arc, xyz[:, k]) for k in range(3)])
                if sec == soma:
                    roots.extend(range(len(segs), len(segs) + sec.nseg))
                    centre.append([np.interp(0.5 * arc[-1], arc, xyz[:, k]) for k in range(3)])
                for j, seg in enumerate(sec):
                    segs.append(seg)
                    start.append(pts[j])
                    end.append(pts[j + 1])
                    diam.append(seg.diam)
                    area.append(seg.area())
                    cell.append(c)
        geo = {"start_um": np.array(start, dtype=np.float64), "end_um": np.array(end, dtype=np.float64),
               "diam_um": np.array(diam, dtype=np.float64), "area_um2": np.array(area, dtype=np.float64),
               "cell": np.array(cell, dtype=np.int64)}
        self._roots = np.array(roots, dtype=np.int64)
        self._centres = np.array(centre, dtype=np.float64).reshape(-1, 3)
        return segs, geo

    def segment_geometry(self) -> dict[str, np.ndarray]:
        """Every segment of every cell, cell-major (each cell's sections in NEURON's tree order
        from its root, segments from 0 to 1): start_um, end_um (n_seg, 3), diam_um, area_um2
        (n_seg,), cell (n_seg,); the shapes of the built-in CellSolver's."""
        if self._segments is None:
            self._segments = self._collect_segments()
        return {k: v.copy() for k, v in self._segments[1].items()}

    def root_segments(self) -> np.ndarray:
        """Rows of segment_geometry that belong to each cell's soma section (root_as_point)."""
        self.segment_geometry()
        return self._roots.copy()

    def soma_centres(self) -> np.ndarray:
        """(n, 3) um: the 3D point at the middle of each cell's soma section."""
        self.segment_geometry()
        return self._centres.copy()

    @property
    def n_cells(self) -> int:
        return self.spec.n

    def transmembrane_currents(self) -> np.ndarray:
        """(n_steps, n_seg) nA of the last window, per segment (rows of segment_geometry),
        outward positive: NEURON's i_membrane_ over each step. Needs ``record_currents=True``."""
        if self.imem is None:
            raise ModelError("neuron_cells: transmembrane currents need record_currents=True "
                             "and at least one advanced window")
        return self.imem

    def state(self) -> dict[str, np.ndarray]:
        return {"v_soma": np.array([s(0.5).v for s in self.soma]),
                "t_ms": np.array([self.h.t])}

    def close(self) -> None:
        """Let go of the cells and NEURON objects, so another solver can be built here."""
        release_process("NEURON", self.name)
        self.netcons.clear()
        self.detectors, self.clamps = [], []
        self.v_rec = self.i_rec = None
        self._segments = None
        self.syn, self.soma, self.cells = [], [], []


# --- the probes: the same physics as the built-in cable solver's (probes/sources.py) ---------
def _currents(solver):
    if not solver.spec.record_currents:
        raise ModelError("neuron_cells: extracellular and dipole probes need the cells' "
                         "transmembrane currents: set record_currents=True on the solver spec")
    return solver.transmembrane_currents


def neuron_extracellular(solver, ports, model, electrodes_um, sigma, method, min_distance_um,
                         period_ticks):
    """Extracellular potential (mV) at the electrodes from every segment's i_membrane_ (nA):
    one (n_el, n_seg) matrix from the segments' end points, built once, sampled as for
    cell_population (the sample at tick t holds the currents of the step ending at t)."""
    from ..probes.forward import extracellular_matrix
    from ..probes.sources import StepEndSampler, _check_period, _no_model
    _no_model("neuron_cells", model)
    currents = _currents(solver)
    _check_period("neuron_cells", solver.dt_ticks, period_ticks)
    g = solver.segment_geometry()
    M = extracellular_matrix(g["start_um"], g["end_um"], g["diam_um"], electrodes_um, sigma,
                             method=method, min_distance_um=min_distance_um,
                             roots=solver.root_segments())
    Mt = np.ascontiguousarray(M.T)
    sampler = StepEndSampler(solver.dt_ticks, period_ticks, lambda rows: rows @ Mt, (M.shape[0],))

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        return sampler(t0, t1, currents())
    return part


def neuron_dipoles(solver, ports, model, period_ticks):
    """One current dipole moment per cell (nA*um), sum of i_membrane_ times segment midpoint
    relative to the cell's soma centre (LFPykit's CurrentDipoleMoment), placed at that centre;
    sampled as for cell_population (the step ending at each sample)."""
    from ..probes.sources import StepEndSampler, _check_period, _no_model
    _no_model("neuron_cells", model)
    currents = _currents(solver)
    _check_period("neuron_cells", solver.dt_ticks, period_ticks)
    g = solver.segment_geometry()
    pos = solver.soma_centres()
    mid = 0.5 * (g["start_um"] + g["end_um"])
    rel = mid - pos[g["cell"]]                       # (n_seg, 3)
    # segments are cell-major (cells may differ in segment count): sum each cell's run
    starts = np.searchsorted(g["cell"], np.arange(solver.n_cells))

    def f(rows: np.ndarray) -> np.ndarray:           # (k, n_seg) nA -> (k, n, 3) nA um
        return np.stack([np.add.reduceat(rows * rel[:, d], starts, axis=1) for d in range(3)], axis=2)
    sampler = StepEndSampler(solver.dt_ticks, period_ticks, f, (solver.n_cells, 3))

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        return sampler(t0, t1, currents())
    return pos, part


def _register_probe_sources() -> None:
    from ..probes import sources
    sources.register_extracellular(NeuronCells.type, neuron_extracellular)
    sources.register_dipoles(NeuronCells.type, neuron_dipoles)


_register_probe_sources()
