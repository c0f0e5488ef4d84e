"""Extracellular potentials in tissue: LFP, CSD and ECoG probes.

Each probe's local part runs in the process of each solver it names: the solver type's
registered factory (probes/sources.py) builds an (electrodes x sources) matrix once from the
solver's geometry and multiplies it with the solver's currents each window. The global part sums
the solvers' parts (ProbeSpec.combine): potentials of independent sources add in a linear medium.
``keep_parts=True`` also writes each solver's share to the run file
(``/probes/<name>/parts/<solver>``, docs/run-file.md).

Assumptions (all three): quasi-static, ohmic, linear extracellular medium; LFP and CSD: infinite,
homogeneous and isotropic with conductivity ``sigma_S_per_m`` (default 0.3 S/m, grey matter;
Logothetis et al. 2007 report ~0.3-0.4 S/m at low frequencies); ECoG: the same tissue under a
planar interface to a second medium (method of images). Positions are um in one tissue
coordinate system, the one the solvers place their cells in.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Port, WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec
from ..coordinator.time import lcm, to_ticks
from ..coordinator.validation import as_tuple, fail, require_choice, require_number
from . import forward
from .sources import SourceModel, extracellular_part

METHODS = forward.METHODS


# --------------------------------------------------------------------------------------------
# what every probe over solvers shares (also used by probes/head.py)
# --------------------------------------------------------------------------------------------
def check_common(spec) -> None:
    """Validate and normalise ``solvers``, ``sources``, ``every_ms`` and ``keep_parts``."""
    sv = spec.of
    if isinstance(sv, str):
        sv = (sv,)
    if not isinstance(sv, (list, tuple)) or not sv or not all(isinstance(s, str) and s for s in sv):
        raise fail(spec, f"'of' must be a solver name or a non-empty sequence of names (got {spec.of!r})")
    if len(set(sv)) != len(sv):
        raise fail(spec, f"'of' names a solver twice (got {tuple(sv)!r})")
    object.__setattr__(spec, "of", tuple(sv))
    src = spec.sources
    if src is not None:
        if not isinstance(src, Mapping):
            raise fail(spec, f"'sources' must be a dict of solver name -> source model (got {src!r})")
        for k, v in src.items():
            if k not in spec.of:
                raise fail(spec, f"'sources' names solver {k!r}, which is not in 'of' "
                                 f"({', '.join(map(repr, spec.of))})")
            if not isinstance(v, SourceModel):
                raise fail(spec, f"sources[{k!r}] must be a source model ({', '.join(sorted(SourceModel._kinds))}) "
                                 f"(got {v!r})")
        # an empty dict and None mean the same; None keeps the wire form simple
        object.__setattr__(spec, "sources", dict(src) if src else None)
    require_number(spec, "every_ms", positive=True, allow_none=True)
    if spec.every_ms is not None:
        to_ticks(spec.every_ms, f"{spec.type}: every_ms")
    if not isinstance(spec.keep_parts, bool):
        raise fail(spec, f"'keep_parts' must be True or False (got {spec.keep_parts!r})")


def check_points(spec, name: str, allow_none: bool = False) -> np.ndarray | None:
    """Normalise an (n, 3) field of positions (um) to a tuple of tuples; return it as an array."""
    if getattr(spec, name) is None and allow_none:
        return None
    arr = np.array(as_tuple(spec, name, float), dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (3,):
        arr = arr[None, :]
        object.__setattr__(spec, name, (tuple(arr[0]),))
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1 or not np.isfinite(arr).all():
        raise fail(spec, f"{name!r} must be rows of 3 finite numbers (x, y, z in um) (got shape {arr.shape})")
    return arr


class OverSolvers:
    """Mixin: the probe draws a local part from each solver named in its ``of`` field."""

    __slots__ = ()

    def solvers(self) -> tuple[str, ...]:
        return tuple(self.of)


def probe_period(spec, ports: Mapping[str, Mapping[str, Port]]) -> int:
    """The probe's sample period (ticks): ``every_ms``, or the least common multiple over its
    solvers of each one's shortest sampled output period (its step, for the built-in solvers)."""
    if spec.every_ms is not None:
        return to_ticks(spec.every_ms, f"{spec.type}: every_ms")
    periods = []
    for s in spec.of:
        ps = [p.period_ticks for p in ports[s].values() if p.direction == "out" and p.sampled]
        if ps:
            periods.append(min(ps))
    if not periods:
        raise ModelError(f"{spec.type}: none of the solvers {', '.join(map(repr, spec.of))} has a "
                         f"sampled output to take a period from: give 'every_ms'")
    return lcm(periods)


def source_model(spec, solver_name: str):
    return None if spec.sources is None else spec.sources.get(solver_name)


# --------------------------------------------------------------------------------------------
# LFP
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class LFP(OverSolvers, ProbeSpec):
    """Extracellular potential (mV) at point electrodes, summed over the named solvers.

    Parameters
    ----------
    of : the solvers whose currents contribute (a name or a sequence of names)
    electrodes_um : (n_el, 3) electrode positions (um); one channel each
    method : 'line' (each segment's current spread evenly along it; Holt 1998), 'point' (at the
        segment's midpoint), or 'root_as_point' (the soma section's segments as points, the rest
        as lines; LFPykit's RecExtElectrode method of that name)
    sigma_S_per_m : extracellular conductivity (S/m), default 0.3
    min_distance_um : no source is taken closer to an electrode than this (um): it caps the
        potential near a segment, whose current in reality leaves through its surface. None:
        each segment's radius (LFPykit's default).
    every_ms : sample period (ms); None: the solvers' step (lcm over solvers). Every sample of
        a detailed cell population costs a pass over M: at every step of 50-segment cells, 32
        channels cost about as much as the cells' own step (benchmarks/probes.py); LFPs are
        usually analysed below 300 Hz, and every_ms=0.5 or 1 costs a few percent
    sources : {solver name: SourceModel} for solver types that need one (point networks:
        probes/kernels.py); detailed cells need none
    keep_parts : also write each solver's share to the run file

    Detailed cells (cell_population) need ``record_currents=True``: the potential is
    M @ i_membrane with M (n_el, n_segments) built once.
    """

    type: ClassVar[str] = "lfp"
    modality: ClassVar[str] = "lfp"
    nested: ClassVar = {"sources": SourceModel}

    of: tuple
    electrodes_um: tuple
    method: str = "line"
    sigma_S_per_m: float = 0.3
    min_distance_um: float | None = None
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        check_common(self)
        check_points(self, "electrodes_um")
        require_choice(self, "method", METHODS)
        require_number(self, "sigma_S_per_m", positive=True)
        require_number(self, "min_distance_um", nonnegative=True, allow_none=True)

    @classmethod
    def example(cls) -> "LFP":
        return cls(of=("cells",), electrodes_um=tuple((30.0, 0.0, z) for z in (0.0, 100.0, 200.0)),
                   every_ms=0.1)

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        return ProbeInfo(n_channels=len(self.electrodes_um), period_ticks=probe_period(self, ports),
                         units="mV", modality=self.modality, positions=self.electrodes_um)

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        return extracellular_part(solver_name, solver, ports, source_model(self, solver_name),
                                  np.array(self.electrodes_um), self.sigma_S_per_m, self.method,
                                  self.min_distance_um, info.period_ticks)


# --------------------------------------------------------------------------------------------
# CSD
# --------------------------------------------------------------------------------------------
CSD_METHODS = ("second_difference", "delta")


@dataclass(frozen=True, slots=True, kw_only=True)
class CSD(OverSolvers, ProbeSpec):
    """Current source density (nA/um^3) on a laminar probe.

    method 'second_difference' (the standard CSD of Nicholson & Freeman 1975): the LFP at the
        contacts (equally spaced along a straight line), then C_k = -sigma (V_{k-1} - 2 V_k +
        V_{k+1}) / h^2 at each interior contact; channels: the n - 2 interior contacts. Assumes
        laterally infinite layered sources (no lateral current), so it is an estimate.
    method 'delta' ("ground truth" CSD; Pettersen et al. 2008, Hagen et al. 2017 Eq. 11;
        LFPykit's LaminarCurrentSourceDensity): the transmembrane current inside each of a
        stack of cylinders along z (radius ``r_um``, axis through ``axis_xy_um``), each
        segment's current spread evenly along it, divided by the cylinder's volume. Channels:
        the cylinders, from ``z_edges_um`` ((n, 2) lower/upper edges, um) or, if None, one
        cylinder per contact, centred on it, as tall as the contact spacing. Detailed cells only.

    lfpykit_fractions : method 'delta' only: LFPykit 0.6's fractions of oblique segments
        (forward.laminar_csd_matrix) instead of each segment's length inside the cylinder; the
        two agree for segments along the axis or in a plane through it.
    Other fields as LFP: of, contacts_um ((n, 3) um), sigma_S_per_m (second_difference),
    lfp_method and min_distance_um (the LFP of second_difference), every_ms, sources,
    keep_parts.
    """

    type: ClassVar[str] = "csd"
    modality: ClassVar[str] = "csd"
    nested: ClassVar = {"sources": SourceModel}

    of: tuple
    contacts_um: tuple | None = None
    method: str = "second_difference"
    sigma_S_per_m: float = 0.3
    lfp_method: str = "line"
    min_distance_um: float | None = None
    z_edges_um: tuple | None = None
    r_um: float = 100.0
    axis_xy_um: tuple | None = None
    lfpykit_fractions: bool = False
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        check_common(self)
        require_choice(self, "method", CSD_METHODS)
        if not isinstance(self.lfpykit_fractions, bool):
            raise fail(self, f"'lfpykit_fractions' must be True or False (got {self.lfpykit_fractions!r})")
        require_choice(self, "lfp_method", METHODS)
        require_number(self, "sigma_S_per_m", "r_um", positive=True)
        require_number(self, "min_distance_um", nonnegative=True, allow_none=True)
        c = check_points(self, "contacts_um", allow_none=True)
        if self.method == "second_difference":
            if c is None or c.shape[0] < 3:
                raise fail(self, "method 'second_difference' needs 'contacts_um': at least 3 "
                                 "equally spaced contacts on a line")
            step = np.diff(c, axis=0)
            h = np.linalg.norm(step, axis=1)
            if (h == 0).any() or not np.allclose(step, step[0], rtol=1e-9, atol=1e-9 * h.max()):
                raise fail(self, "'contacts_um' must be equally spaced along a straight line for "
                                 "method 'second_difference'")
        else:
            if self.z_edges_um is None:
                if c is None or c.shape[0] < 2:
                    raise fail(self, "method 'delta' needs 'z_edges_um' ((n, 2) lower/upper edges, um) "
                                     "or at least 2 'contacts_um' to centre cylinders on")
                dz = np.diff(c[:, 2])
                if not np.allclose(c[:, :2], c[0, :2]) or (dz <= 0).any() or not np.allclose(dz, dz[0]):
                    raise fail(self, "for method 'delta' without 'z_edges_um', 'contacts_um' must lie on "
                                     "a vertical line, with z increasing in equal steps")
            else:
                z = np.array(as_tuple(self, "z_edges_um", float))
                if z.ndim != 2 or z.shape[1] != 2 or not np.isfinite(z).all() or (z[:, 1] <= z[:, 0]).any():
                    raise fail(self, f"'z_edges_um' must be rows (lower, upper) in um with lower < upper "
                                     f"(got shape {z.shape})")
        if self.axis_xy_um is not None:
            a = np.array(as_tuple(self, "axis_xy_um", float))
            if a.shape != (2,) or not np.isfinite(a).all():
                raise fail(self, f"'axis_xy_um' must be 2 finite numbers (x, y in um) (got {self.axis_xy_um!r})")

    @classmethod
    def example(cls) -> "CSD":
        return cls(of=("cells",), contacts_um=tuple((0.0, 0.0, 100.0 * k) for k in range(5)),
                   every_ms=0.1)

    # geometry ------------------------------------------------------------------------------
    def _axis(self) -> np.ndarray:
        if self.axis_xy_um is not None:
            return np.array(self.axis_xy_um, dtype=np.float64)
        if self.contacts_um is not None:
            return np.array(self.contacts_um, dtype=np.float64)[:, :2].mean(axis=0)
        return np.zeros(2)

    def z_edges(self) -> np.ndarray:
        """(n, 2) um: the cylinders of method 'delta'."""
        if self.z_edges_um is not None:
            return np.array(self.z_edges_um, dtype=np.float64)
        z = np.array(self.contacts_um, dtype=np.float64)[:, 2]
        h = z[1] - z[0]
        return np.column_stack([z - h / 2, z + h / 2])

    def positions(self) -> tuple:
        if self.method == "second_difference":
            return tuple(self.contacts_um[1:-1])
        ax = self._axis()
        return tuple((float(ax[0]), float(ax[1]), float(z.mean())) for z in self.z_edges())

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        n = len(self.contacts_um) - 2 if self.method == "second_difference" else len(self.z_edges())
        return ProbeInfo(n_channels=n, period_ticks=probe_period(self, ports), units="nA/um^3",
                         modality=self.modality, positions=self.positions())

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        if self.method == "second_difference":
            c = np.array(self.contacts_um)
            lfp = extracellular_part(solver_name, solver, ports, source_model(self, solver_name), c,
                                     self.sigma_S_per_m, self.lfp_method, self.min_distance_um,
                                     info.period_ticks)
            Dt = forward.second_difference_matrix(len(c), float(np.linalg.norm(c[1] - c[0])),
                                                  self.sigma_S_per_m).T

            def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
                return lfp(t0, t1, result) @ Dt
            return part
        return _cell_delta_csd(solver_name, solver, self, info.period_ticks)


def _cell_delta_csd(solver_name, solver, spec: CSD, period_ticks: int):
    kind = getattr(getattr(solver, "spec", None), "type", type(solver).__name__)
    if kind not in ("cell_population", "cell_groups"):
        raise ModelError(f"csd method 'delta' needs segment currents: solver {solver_name!r} ({kind}) "
                         f"has none; only 'cell_population' and 'cell_groups' can (use method "
                         f"'second_difference')")
    from .sources import cell_matrix_part
    g = solver.segment_geometry()
    M = forward.laminar_csd_matrix(g["start_um"], g["end_um"], spec.z_edges(), spec.r_um, spec._axis(),
                                   lfpykit_fractions=spec.lfpykit_fractions)
    if kind == "cell_groups":       # several populations: each group's columns of M, summed
        return solver.matrix_part(M, period_ticks)
    return cell_matrix_part(solver, M, period_ticks)


# --------------------------------------------------------------------------------------------
# ECoG
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ECoG(OverSolvers, ProbeSpec):
    """Potential (mV) at electrodes on (or above, or below) the cortical surface, taken as a
    plane between the tissue (sigma_S_per_m) and a second medium (sigma_above_S_per_m: 0 for
    an insulating grid, air, or a silicone sheet; ~1.5-2 S/m for saline or CSF), by the method of
    images (Nunez & Srinivasan 2006, ch. 6; Ness et al. 2015 for the analogous MEA slice).

    With W = (s_t - s_a) / (s_t + s_a): an electrode in the tissue or on the plane sees
    V_inf(sources) + W V_inf(sources mirrored in the plane); one beyond it sees
    (1 + W) V_inf(sources): on the plane both give (1 + W) V_inf, twice the infinite-medium
    value under an insulator. Sources must lie in the tissue (not checked per window).
    Mirroring the electrodes is the same as mirroring the sources (reflection keeps distances),
    so any solver type that gives LFP gives ECoG.

    Parameters
    ----------
    plane_point_um : a point of the surface (um); plane_normal : its normal, pointing out of the
        tissue (default +z: tissue below z = plane_point z)
    Other fields as LFP.

    For ECoG in a spherical head (electrodes on the brain surface of a four-sphere model), use
    probes.EEG with the electrodes at r = radii_um[0].
    """

    type: ClassVar[str] = "ecog"
    modality: ClassVar[str] = "ecog"
    nested: ClassVar = {"sources": SourceModel}

    of: tuple
    electrodes_um: tuple
    sigma_S_per_m: float = 0.3
    sigma_above_S_per_m: float = 0.0
    plane_point_um: tuple = (0.0, 0.0, 0.0)
    plane_normal: tuple = (0.0, 0.0, 1.0)
    method: str = "line"
    min_distance_um: float | None = None
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        check_common(self)
        check_points(self, "electrodes_um")
        require_choice(self, "method", METHODS)
        require_number(self, "sigma_S_per_m", positive=True)
        require_number(self, "sigma_above_S_per_m", nonnegative=True)
        require_number(self, "min_distance_um", nonnegative=True, allow_none=True)
        for name in ("plane_point_um", "plane_normal"):
            v = np.array(as_tuple(self, name, float))
            if v.shape != (3,) or not np.isfinite(v).all():
                raise fail(self, f"{name!r} must be 3 finite numbers (got {getattr(self, name)!r})")
        if np.linalg.norm(np.array(self.plane_normal)) == 0:
            raise fail(self, "'plane_normal' must be a nonzero vector (got (0, 0, 0))")

    @classmethod
    def example(cls) -> "ECoG":
        return cls(of=("cells",), electrodes_um=((0.0, 0.0, 600.0), (200.0, 0.0, 600.0)),
                   plane_point_um=(0.0, 0.0, 600.0), every_ms=0.1)

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        return ProbeInfo(n_channels=len(self.electrodes_um), period_ticks=probe_period(self, ports),
                         units="mV", modality=self.modality, positions=self.electrodes_um)

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        el = np.array(self.electrodes_um, dtype=np.float64)
        p0, nrm = np.array(self.plane_point_um), np.array(self.plane_normal)
        st, sa = self.sigma_S_per_m, self.sigma_above_S_per_m
        W = (st - sa) / (st + sa)
        beyond = ((el - p0) @ (nrm / np.linalg.norm(nrm))) > 0
        both = np.concatenate([el, forward.mirror(el, p0, nrm)])
        inner = extracellular_part(solver_name, solver, ports, source_model(self, solver_name), both,
                                   st, self.method, self.min_distance_um, info.period_ticks)
        n = el.shape[0]
        w_img = np.where(beyond, 0.0, W)
        w_dir = np.where(beyond, 1.0 + W, 1.0)

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            v = inner(t0, t1, result)
            return v[:, :n] * w_dir + v[:, n:] * w_img
        return part
