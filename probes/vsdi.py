"""Voltage-sensitive dye imaging (VSDI): membrane potential seen from above, per pixel.

The dye stains every membrane; its fluorescence changes in proportion to the membrane potential
under it, and the light from deeper membrane is attenuated and blurred on its way to the camera.
Each solver contributes *elements*, each with a membrane area A (um2), a position (um) and a
depolarisation dV (mV):

* detailed cells ('cell_population'): every segment, its area from the morphology, at its
  midpoint; dV = V - v_rest_mV;
* point-neuron networks ('point_network'): each population, at its given position, with
  A = size * area_um2 per neuron; dV = the population's mean V - E_L;
* neural masses ('region_network'): each region, at its given position (default: the
  connectome's centres), with A = area_um2; dV = the ``activity`` output minus v_rest_mV
  (for Jansen-Rit y1 - y2, the pyramidal PSP in mV).

Pixel p (a square of side ``pixel_um`` on a grid in the imaged plane z = surface_z_um) gets

    S_p = sum_e A_e exp(-d_e / depth_decay_um) G_p(x_e, y_e) dV_e / pixel_area        (mV)

where d_e = max(surface_z_um - z_e, 0) is the element's depth below the surface and G_p the
fraction of a 2-D Gaussian of standard deviation ``blur_um`` centred on the element that falls
in the pixel (erf differences; with blur_um = 0 the pixel that holds the element). S is a
membrane-area-weighted depolarisation: mV times the (attenuated) membrane area per unit of
imaged area, so it sums over solvers, is the same for any subdivision of a cell into segments
(it integrates V over the membrane), and the blur conserves it: sum_p S_p pixel_area is the
unblurred total for elements well inside the grid. Multiply by the dye's fractional change per
mV and divide by the stained membrane per imaged area to get dF/F.

Sampling: frames at every multiple of ``every_ms`` (default: the window), which must lie on
each imaged solver's step grid. Detailed cells keep every node's V at the end of the steps that
end on a frame (CellSolver.sample_voltages_every), so any frame period on their step grid works;
masses deliver their activity every step; point networks deliver V every step where each of
their populations has ``record_v=True`` (its ``P.V_m`` port), and otherwise are read at window
ends, so their frame period must then be a multiple of the window.

Assumptions: the dye signal is linear in V and proportional to the membrane area; light
attenuates exponentially with depth (scattering and absorption lumped into one length); the
lateral point-spread is a depth-independent Gaussian; all of a point population's (or a region's)
membrane sits at one point.

References
----------
Grinvald A, Hildesheim R (2004) VSDI: a new era in functional imaging of cortical dynamics.
    Nat Rev Neurosci 5:874-885.
Chemla S, Chavane F (2010) A biophysical cortical column model to study the multi-component
    origin of the VSDI signal. NeuroImage 53:420-438 (area- and depth-weighted compartments).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Port, WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec, Spec
from ..coordinator.time import fmt_ms, grid_count, grid_start, to_ticks
from ..coordinator.validation import as_tuple, fail, require_number
from ..solvers._jit import njit
from .sources import StepEndSampler, sample_rows

try:  # scipy is a dependency (runfile.versions imports it); erf vectorised
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf)


@dataclass(frozen=True, slots=True, kw_only=True)
class VsdiSource(Spec):
    """How one solver's membrane potential enters a VSDI probe (fields a solver type does not use
    must stay None).

    v_rest_mV : potential of zero signal (cells: default -65 mV; masses: default 0, the
        activity itself); point networks use each population's E_L
    area_um2 : membrane area per neuron (point networks, default 20000 um2) or per region
        (masses, default 1 um2: then S is in mV x regions per um2 of image); one number or
        one per population/region
    positions_um : (n, 3) positions of the populations (in the network's order) or regions;
        masses default to the connectome's centres (mm x 1000)
    """

    v_rest_mV: float | None = None
    area_um2: Any = None
    positions_um: tuple | None = None

    def __post_init__(self) -> None:
        require_number(self, "v_rest_mV", allow_none=True)
        a = self.area_um2
        if isinstance(a, (list, tuple, np.ndarray)):
            arr = np.array(as_tuple(self, "area_um2", float))
            if arr.ndim != 1 or not np.isfinite(arr).all() or (arr < 0).any():
                raise fail(self, f"'area_um2' must be a number >= 0 or a sequence of them (got {a!r})")
        elif a is not None:
            require_number(self, "area_um2", nonnegative=True)
        if self.positions_um is not None:
            pos = np.array(as_tuple(self, "positions_um", float))
            if pos.ndim != 2 or pos.shape[1] != 3 or not np.isfinite(pos).all():
                raise fail(self, f"'positions_um' must be rows of 3 finite numbers (got shape {pos.shape})")

    def areas(self, n: int, default: float, what: str) -> np.ndarray:
        a = default if self.area_um2 is None else self.area_um2
        arr = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) if np.ndim(a) == 0 else np.asarray(a, dtype=np.float64)
        if arr.shape != (n,):
            raise ModelError(f"vsdi: 'area_um2' has {arr.size} values for {n} {what}")
        return np.array(arr)

    def positions(self, n: int, what: str, default: np.ndarray | None = None) -> np.ndarray:
        pos = default if self.positions_um is None else np.array(self.positions_um, dtype=np.float64)
        if pos is None:
            raise ModelError(f"vsdi: give 'positions_um', one row per {what} ({n} in all)")
        if pos.shape != (n, 3):
            raise ModelError(f"vsdi: 'positions_um' has shape {pos.shape} for {n} {what}")
        return pos


@dataclass(frozen=True, slots=True, kw_only=True)
class VSDI(ProbeSpec):
    """Area- and depth-weighted membrane depolarisation per pixel (mV), blurred laterally.

    Parameters
    ----------
    sources : {solver name: VsdiSource or None} the solvers imaged and how (None: defaults)
    pixels : (nx, ny) pixels of the grid
    pixel_um : side of a pixel (um)
    center_um : (x, y) centre of the grid in tissue coordinates (um)
    surface_z_um : z of the imaged surface (um); depth is measured down (to lower z) from it
    depth_decay_um : length of the exponential attenuation with depth (um); None: none
    blur_um : standard deviation of the lateral Gaussian point-spread (um), >= 0
    every_ms : frame period (ms); None: the window
    keep_parts : also write each solver's share to the run file (``Run.probe(name).parts``)

    Channels are pixels, row-major: channel iy * nx + ix is the pixel centred at
    (cx + (ix - (nx - 1)/2) pixel_um, cy + (iy - (ny - 1)/2) pixel_um, surface_z_um).
    """

    type: ClassVar[str] = "vsdi"
    modality: ClassVar[str] = "vsdi"
    nested: ClassVar = {"sources": VsdiSource}

    sources: Mapping
    pixels: tuple = (16, 16)
    pixel_um: float = 50.0
    center_um: tuple = (0.0, 0.0)
    surface_z_um: float = 0.0
    depth_decay_um: float | None = 200.0
    blur_um: float = 50.0
    every_ms: float | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.sources, (list, tuple)):
            object.__setattr__(self, "sources", {s: None for s in self.sources})
        if not isinstance(self.sources, Mapping) or not self.sources:
            raise fail(self, f"'sources' must be a non-empty dict of solver name -> VsdiSource or "
                             f"None (got {self.sources!r})")
        fixed = {}
        for k, v in self.sources.items():
            if not isinstance(k, str) or not (v is None or isinstance(v, VsdiSource)):
                raise fail(self, f"'sources' must map solver names to VsdiSource or None "
                                 f"(got {k!r}: {v!r})")
            fixed[k] = VsdiSource() if v is None else v
        object.__setattr__(self, "sources", fixed)
        px = as_tuple(self, "pixels")
        if len(px) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in px):
            raise fail(self, f"'pixels' must be two integers >= 1, (nx, ny) (got {self.pixels!r})")
        require_number(self, "pixel_um", positive=True)
        require_number(self, "blur_um", nonnegative=True)
        require_number(self, "depth_decay_um", positive=True, allow_none=True)
        require_number(self, "surface_z_um")
        c = as_tuple(self, "center_um", float)
        if len(c) != 2 or not np.isfinite(c).all():
            raise fail(self, f"'center_um' must be two finite numbers (x, y) (got {self.center_um!r})")
        require_number(self, "every_ms", positive=True, allow_none=True)
        if not isinstance(self.keep_parts, bool):
            raise fail(self, f"'keep_parts' must be True or False (got {self.keep_parts!r})")
        if self.every_ms is not None:
            to_ticks(self.every_ms, "vsdi: every_ms")

    @classmethod
    def example(cls) -> "VSDI":
        return cls(sources={"cells": VsdiSource(v_rest_mV=-70.0),
                            "net": VsdiSource(area_um2=(2e4, 1.5e4), positions_um=((0, 0, -300), (0, 0, -800)))},
                   pixels=(8, 4), pixel_um=100.0, blur_um=80.0, every_ms=1.0)

    # -- geometry --------------------------------------------------------------------------
    @property
    def n_pixels(self) -> int:
        return int(self.pixels[0] * self.pixels[1])

    def pixel_centres_um(self) -> np.ndarray:
        """(nx * ny, 3) pixel centres, row-major (channel iy * nx + ix)."""
        nx, ny = self.pixels
        x = self.center_um[0] + (np.arange(nx) - (nx - 1) / 2.0) * self.pixel_um
        y = self.center_um[1] + (np.arange(ny) - (ny - 1) / 2.0) * self.pixel_um
        xx, yy = np.meshgrid(x, y)
        return np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, self.surface_z_um)], axis=1)

    def _edges(self, axis: int) -> np.ndarray:
        n = self.pixels[axis]
        return self.center_um[axis] + (np.arange(n + 1) - n / 2.0) * self.pixel_um

    def _fractions(self, coords: np.ndarray, axis: int) -> np.ndarray:
        """(n_pixels along axis, n_elements): share of each element's blurred light per column."""
        e = self._edges(axis)[:, None]
        c = np.asarray(coords, dtype=np.float64)[None, :]
        if self.blur_um == 0.0:
            # the pixel [e_i, e_i+1) that holds the element
            return ((c >= e[:-1]) & (c < e[1:])).astype(np.float64)
        cdf = 0.5 * (1.0 + _erf((e - c) / (self.blur_um * math.sqrt(2.0))))
        return np.diff(cdf, axis=0)

    def weights(self, positions_um: np.ndarray, area_um2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The separable forward model of elements at ``positions_um`` (n, 3) with membrane areas
        ``area_um2`` (n,): (Gx (nx, n), Gy (ny, n), w (n,) um2/um2) with the image of
        depolarisations dV (n,) being ``Gy @ (w * dV * Gx).T`` -> (ny, nx) mV."""
        pos = np.asarray(positions_um, dtype=np.float64)
        depth = np.maximum(self.surface_z_um - pos[:, 2], 0.0)
        att = np.ones(len(pos)) if self.depth_decay_um is None else np.exp(-depth / self.depth_decay_um)
        w = np.asarray(area_um2, dtype=np.float64) * att / self.pixel_um ** 2
        return self._fractions(pos[:, 0], 0), self._fractions(pos[:, 1], 1), w

    # -- the probe protocol ----------------------------------------------------------------
    def solvers(self) -> tuple[str, ...]:
        return tuple(self.sources)

    def describe(self, ports: Mapping[str, Mapping[str, Port]], window_ticks: int) -> ProbeInfo:
        period = window_ticks if self.every_ms is None else to_ticks(self.every_ms, "vsdi: every_ms")
        for name, p in ports.items():
            step = _v_step(p)
            if step is not None:
                if period % step:
                    raise ModelError(f"every_ms={period / 1e6:g} is not a multiple of the step of "
                                     f"solver {name!r} ({fmt_ms(step)})")
            elif period % window_ticks:
                raise ModelError(f"every_ms={period / 1e6:g} is not a multiple of the window "
                                 f"({fmt_ms(window_ticks)}): the membrane potentials of solver "
                                 f"{name!r} are read at window ends (set the model's window_ms, or "
                                 f"give every population record_v=True)")
        pos = tuple(tuple(float(v) for v in row) for row in self.pixel_centres_um())
        return ProbeInfo(n_channels=self.n_pixels, period_ticks=period, units="mV",
                         modality=self.modality, positions=pos)

    def local(self, solver_name: str, solver, ports: Mapping[str, Port], info: ProbeInfo):
        src = self.sources[solver_name]
        kind = getattr(getattr(solver, "spec", None), "type", type(solver).__name__)
        maker = _MAKERS.get(kind)
        if maker is None:
            raise ModelError(f"vsdi: solver {solver_name!r} ({kind}) has no membrane potential to "
                             f"image; imaged solver types: {', '.join(sorted(_MAKERS))}")
        return maker(self, src, solver, info)


class _Imager:
    """dV (n,) mV -> the row-major image (n_pixels,) of elements with shares gx (nx, n), gy
    (ny, n) and weights w (n,). Elements with equal shares (at one lateral position) are summed
    (w dV) before imaging; each group then only touches the pixels where its shares exceed 1e-9
    (a blurred element's Gaussian covers a few pixels of a large grid), in a numba loop: no
    BLAS, so the same bits on every host and no thread contention."""

    #: shares below this are left out (relative to the element's whole light, 1)
    CUT = 1e-9

    def __init__(self, gx: np.ndarray, gy: np.ndarray, w: np.ndarray):
        self.nx, self.ny = gx.shape[0], gy.shape[0]
        self.w = np.asarray(w, dtype=np.float64)
        # elements at one lateral position (the segments of an upright cell) have the same
        # shares: their weighted dV are summed first and imaged once, not once per element
        per_element = np.hstack([gx.T, gy.T])
        shares, group = np.unique(per_element, axis=0, return_inverse=True)
        self.group: np.ndarray | None = group.ravel().astype(np.int64)
        if len(shares) == len(per_element):      # nothing to merge: the elements in their order
            shares, self.group = per_element, None
        self.gx = np.ascontiguousarray(shares[:, :self.nx])
        self.gy = np.ascontiguousarray(shares[:, self.nx:])
        self.xr = _ranges(self.gx, self.CUT)
        self.yr = _ranges(self.gy, self.CUT)

    def __call__(self, dv: np.ndarray) -> np.ndarray:
        img = np.zeros((self.ny, self.nx))
        wdv = self.w * np.asarray(dv, dtype=np.float64)
        if self.group is not None:
            wdv = np.bincount(self.group, weights=wdv, minlength=self.gx.shape[0])
        image_add(self.gx, self.gy, self.xr, self.yr, wdv, img)
        return img.ravel()


def _ranges(g: np.ndarray, cut: float) -> np.ndarray:
    """(n, 2) first and one-past-last pixel where each element's share exceeds ``cut``."""
    big = g > cut
    any_ = big.any(axis=1)
    lo = np.where(any_, big.argmax(axis=1), 0)
    hi = np.where(any_, g.shape[1] - big[:, ::-1].argmax(axis=1), 0)
    return np.stack([lo, hi], axis=1).astype(np.int64)


@njit
def image_add(gx, gy, xr, yr, wdv, img):
    """img (ny, nx) += sum_e wdv[e] * gy[e, i] * gx[e, j] over each element's pixel ranges."""
    for e in range(wdv.shape[0]):
        a = wdv[e]
        if a == 0.0:
            continue
        for i in range(yr[e, 0], yr[e, 1]):
            b = a * gy[e, i]
            for j in range(xr[e, 0], xr[e, 1]):
                img[i, j] += b * gx[e, j]


def _v_step(ports: Mapping[str, Port]) -> int | None:
    """The step (ticks) on whose grid a solver with these ports gives its potentials at any
    tick, or None when it gives them at window ends only: masses (``activity``), detailed cells
    (sampled in the kernel, on the ``v_soma`` grid) and point networks whose populations all
    have a ``P.V_m`` port."""
    act = ports.get("activity")
    if act is not None and act.direction == "out" and act.sampled:
        return act.period_ticks
    if {"spikes", "v_soma", "i_inj"} <= set(ports):
        return ports["v_soma"].period_ticks
    pops = [k[:-len(".spikes")] for k in ports if k.endswith(".spikes")]
    vm = [ports.get(f"{q}.V_m") for q in pops]
    if pops and all(v is not None and v.sampled for v in vm):
        return vm[0].period_ticks
    return None


def _snapshot_part(spec: VSDI, info: ProbeInfo, read_dv, gx, gy, w):
    """A part for solvers whose state is read at window ends: the frame at t0 uses the state
    read at the end of the previous window (at build time: the initial state)."""
    period = info.period_ticks
    image = _Imager(gx, gy, w)
    state = {"dv": read_dv()}

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        out = np.zeros((grid_count(t0, t1, period), info.n_channels))
        if out.shape[0]:
            out[0] = image(state["dv"])
        if t1 % period == 0:       # only the frames' states are needed
            state["dv"] = read_dv()
        return out
    return part


def _cells(spec: VSDI, src: VsdiSource, solver, info: ProbeInfo):
    if src.area_um2 is not None or src.positions_um is not None:
        raise ModelError("vsdi: a cell population takes areas and positions from its morphology; "
                         "give only 'v_rest_mV'")
    g = solver.segment_geometry()
    mid = 0.5 * (g["start_um"] + g["end_um"])
    gx, gy, w = spec.weights(mid, g["area_um2"])
    seg_node = solver.layout.seg_node
    v_rest = -65.0 if src.v_rest_mV is None else src.v_rest_mV
    image = _Imager(gx, gy, w)
    period = info.period_ticks
    # the solver keeps V at the end of the steps ending on a frame: the frame at t is V after
    # the step ending at t (at t = 0 the initial state), whatever the window
    solver.sample_voltages_every(period)

    def f(rows: np.ndarray) -> np.ndarray:
        # (k, N, n) node voltages -> (k, n S) segment voltages, cell-major like segment_geometry
        dv = rows[:, seg_node, :].transpose(0, 2, 1).reshape(rows.shape[0], -1) - v_rest
        return np.stack([image(d) for d in dv]) if len(dv) else np.zeros((0, info.n_channels))
    sampler = StepEndSampler(solver.dt_ticks, period, f, (info.n_channels,))
    sampler.carry = f(solver.voltages()[None])[0]

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        return sampler(t0, t1, solver.v_rows, solver.imem_ticks)
    return part


def _points(spec: VSDI, src: VsdiSource, solver, info: ProbeInfo):
    if src.v_rest_mV is not None:
        raise ModelError("vsdi: a point network's depolarisation is taken from each population's "
                         "E_L; leave 'v_rest_mV' unset")
    pops = solver.spec.populations
    sizes = np.array([p.size for p in pops], dtype=np.float64)
    pos = src.positions(len(pops), "population")
    gx, gy, w = spec.weights(pos, sizes * src.areas(len(pops), 2.0e4, "populations"))
    lo = solver.lo
    if all(p.record_v for p in pops):
        # V every step from the P.V_m ports: frames at any tick of the step grid
        e_l = np.array([p.model.e_l_mV for p in pops])
        period, dt = info.period_ticks, solver.dt_ticks
        image = _Imager(gx, gy, w)

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            rows = sample_rows(t0, t1, dt, period)
            dv = np.stack([result.outputs[f"{p.name}.V_m"].data[rows].mean(axis=1) for p in pops], axis=1) - e_l
            return np.stack([image(r) for r in dv]) if len(dv) else np.zeros((0, info.n_channels))
        return part

    def read_dv() -> np.ndarray:
        # solver.v is V - E_L per neuron (mV): the populations' means
        return np.add.reduceat(solver.v, lo[:-1]) / sizes
    return _snapshot_part(spec, info, read_dv, gx, gy, w)


def _masses(spec: VSDI, src: VsdiSource, solver, info: ProbeInfo):
    n = solver.spec.n_regions
    conn = solver.spec.connectome
    centres = None if conn is None or conn.centre_array() is None else 1000.0 * conn.centre_array()
    pos = src.positions(n, "region", centres)
    gx, gy, w = spec.weights(pos, src.areas(n, 1.0, "regions"))
    v_rest = 0.0 if src.v_rest_mV is None else src.v_rest_mV
    period, dt = info.period_ticks, solver.dt_ticks
    image = _Imager(gx, gy, w)

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        a = result.outputs["activity"].data
        first = grid_start(t0, period)
        rows = a[(first - t0) // dt::period // dt][:grid_count(t0, t1, period)] - v_rest
        return np.stack([image(r) for r in rows]) if len(rows) else np.zeros((0, info.n_channels))
    return part


_MAKERS = {"cell_population": _cells, "point_network": _points, "region_network": _masses}
