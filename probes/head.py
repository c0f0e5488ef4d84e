"""Current dipoles and what the head makes of them: CurrentDipole, EEG and MEG probes.

Every solver type that registers dipoles (probes/sources.py: detailed cells, one dipole per
cell; neural masses, one per region; point networks in probes/kernels.py) hands its probe part
the dipole moments p (nA*um) of its sources at each sample. The local part multiplies them with
a lead field built once from the sources' positions; the global part sums the solvers' parts.

Head models (:class:`HeadModel` family, the ``head`` field of EEG):

- :class:`FourSphere`: brain, CSF, skull and scalp as concentric spheres (Naess et al. 2017,
  the corrected four-sphere model), defaults radii 79/80/85/90 mm and 0.3/1.5/0.015/0.3 S/m
  (Naess et al. 2017, Table 1; McCann et al. 2019 for the range of skull conductivities).
- :class:`InfiniteMedium`: one homogeneous infinite conductor (a check, and the far field in
  tissue).
- a user lead field (EEG's ``lead_field``: {solver: (n_el, 3 n_sources) matrix}, e.g. from MNE,
  in mV per nA*um; column 3 i + d is component d of source i).

MEG: magnetic field (fT) along each sensor's orientation, of the dipoles in an infinite medium
('infinite': Biot-Savart of the primary current) or in a spherically symmetric conductor
('sarvas': Sarvas 1987, primary plus volume currents; radial dipoles are silent outside).
Positions are um in the head coordinate system, which the sources share.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec, SpecFamily
from ..coordinator.validation import as_tuple, fail, require_choice, require_number
from . import forward
from .extracellular import OverSolvers, check_common, check_points, probe_period, source_model
from .sources import SourceModel, dipole_part, source_count


# --------------------------------------------------------------------------------------------
# head models
# --------------------------------------------------------------------------------------------
class HeadModel(SpecFamily):
    """A volume conductor that maps current dipoles to potentials at electrodes."""

    __slots__ = ()
    _kinds: ClassVar[dict] = {}
    family: ClassVar[str] = "head model"

    def lead_field(self, electrodes_um: np.ndarray, dipoles_um: np.ndarray) -> np.ndarray:
        """(n_el, n_dip, 3) mV/(nA*um)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class FourSphere(HeadModel):
    """Four concentric shells: brain, CSF, skull, scalp (Naess et al. 2017; LFPykit's
    FourSphereVolumeConductor), air outside.

    radii_um : outer radii (um) of brain, CSF, skull, scalp, increasing (default 79000, 80000,
        85000, 90000)
    sigmas_S_per_m : their conductivities (S/m) (default 0.3, 1.5, 0.015, 0.3)
    centre_um : the common centre (um)
    iter_factor : where the series stops (forward.four_sphere_matrix): LFPykit's rule by
        default; None: to machine precision
    lfpykit_azimuth : reproduce LFPykit 0.6's azimuth, which differs from the true projection
        for dipoles off the coordinate axes (forward.four_sphere_matrix); default False

    Assumptions: isotropic, homogeneous, ohmic shells; every dipole inside the brain sphere;
    electrodes between the dipole's radius and the scalp surface (EEG on the scalp at r =
    radii[3], ECoG on the brain at r = radii[0])."""

    type: ClassVar[str] = "four_sphere"

    radii_um: tuple = (79000.0, 80000.0, 85000.0, 90000.0)
    sigmas_S_per_m: tuple = (0.3, 1.5, 0.015, 0.3)
    centre_um: tuple = (0.0, 0.0, 0.0)
    iter_factor: float | None = forward.LFPYKIT_ITER_FACTOR
    lfpykit_azimuth: bool = False

    def __post_init__(self) -> None:
        r = np.array(as_tuple(self, "radii_um", float))
        s = np.array(as_tuple(self, "sigmas_S_per_m", float))
        c = np.array(as_tuple(self, "centre_um", float))
        if r.shape != (4,) or not np.isfinite(r).all() or r[0] <= 0 or (np.diff(r) <= 0).any():
            raise fail(self, f"'radii_um' must be 4 increasing radii > 0 (brain, CSF, skull, scalp; um) "
                             f"(got {self.radii_um!r})")
        if s.shape != (4,) or not np.isfinite(s).all() or (s <= 0).any():
            raise fail(self, f"'sigmas_S_per_m' must be 4 conductivities > 0 (S/m) (got {self.sigmas_S_per_m!r})")
        if c.shape != (3,) or not np.isfinite(c).all():
            raise fail(self, f"'centre_um' must be 3 finite numbers (got {self.centre_um!r})")
        require_number(self, "iter_factor", positive=True, allow_none=True)
        if not isinstance(self.lfpykit_azimuth, bool):
            raise fail(self, f"'lfpykit_azimuth' must be True or False (got {self.lfpykit_azimuth!r})")

    def lead_field(self, electrodes_um, dipoles_um) -> np.ndarray:
        return forward.four_sphere_lead_field(electrodes_um, dipoles_um, radii_um=self.radii_um,
                                              sigmas_S_per_m=self.sigmas_S_per_m,
                                              centre_um=self.centre_um, iter_factor=self.iter_factor,
                                              lfpykit_azimuth=self.lfpykit_azimuth)


@dataclass(frozen=True, slots=True, kw_only=True)
class InfiniteMedium(HeadModel):
    """An infinite homogeneous conductor of ``sigma_S_per_m`` (S/m): V = p . R / (4 pi sigma
    |R|^3), the dipole's far field."""

    type: ClassVar[str] = "infinite_medium"

    sigma_S_per_m: float = 0.3

    def __post_init__(self) -> None:
        require_number(self, "sigma_S_per_m", positive=True)

    def lead_field(self, electrodes_um, dipoles_um) -> np.ndarray:
        return forward.infinite_dipole_matrix(electrodes_um, dipoles_um, self.sigma_S_per_m)


# --------------------------------------------------------------------------------------------
# CurrentDipole
# --------------------------------------------------------------------------------------------
PER = ("solver", "total", "source")


@dataclass(frozen=True, slots=True)
class SourcesInfo(ProbeInfo):
    """ProbeInfo of CurrentDipole(per='source'): ``first`` holds (solver, first channel, number
    of channels) per solver, in the order of ``of``. Every process plans the model anew, so each local part
    finds its own columns here."""

    first: tuple = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentDipole(OverSolvers, ProbeSpec):
    """Current dipole moment (nA*um), written as x, y, z channels.

    per : 'solver' (default): the summed moment of each solver's sources (a cell population, a
        point-neuron population, a region network), 3 channels per solver in the order of
        ``of``; 'total': the sum over all solvers, 3 channels; 'source': one moment per source
        (per cell of a cell population, per region of a region network), 3 channels each (x,
        y, z of source 0, then source 1, ...), the sources of the solvers concatenated in the
        order of ``of`` (solver of[0]'s sources first); it needs the number of sources before
        the run, from each solver's ports (sources.register_source_count: cells and regions
        are known).
    Other fields as the LFP probe (of, every_ms, sources, keep_parts).
    """

    type: ClassVar[str] = "current_dipole"
    modality: ClassVar[str] = "current_dipole"
    nested: ClassVar = {"sources": SourceModel}

    of: tuple
    per: str = "solver"
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        check_common(self)
        require_choice(self, "per", PER)

    @classmethod
    def example(cls) -> "CurrentDipole":
        return cls(of=("cells", "brain"), every_ms=1.0)

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        period = probe_period(self, ports)
        if self.per == "source":
            # each solver's sources take 3 channels each, solvers in the order of `of`
            first, n = [], 0
            for name in self.of:
                k = 3 * source_count(name, ports[name])
                first.append((name, n, k))
                n += k
            return SourcesInfo(n_channels=n, period_ticks=period, units="nA*um",
                               modality=self.modality, first=tuple(first))
        n = 3 * (len(self.of) if self.per == "solver" else 1)
        return ProbeInfo(n_channels=n, period_ticks=period, units="nA*um", modality=self.modality)

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        pos, dpart = dipole_part(solver_name, solver, ports, source_model(self, solver_name),
                                 info.period_ticks)
        n = info.n_channels
        if self.per == "source":
            a, b = next((f, f + k) for name, f, k in info.first if name == solver_name)
            if 3 * len(pos) != b - a:
                raise ModelError(f"current_dipole: solver {solver_name!r} has {len(pos)} dipole sources, "
                                 f"but its ports said {(b - a) // 3}")

            def each(t0: int, t1: int, result: WindowResult) -> np.ndarray:
                p = dpart(t0, t1, result)               # (n_samples, n_src, 3)
                if b - a == n:                          # the only solver: no other columns
                    return p.reshape(p.shape[0], -1)
                out = np.zeros((p.shape[0], n))         # the global stage sums the solvers' parts
                out[:, a:b] = p.reshape(p.shape[0], -1)
                return out
            return each
        k = self.of.index(solver_name) if self.per == "solver" else 0

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            p = dpart(t0, t1, result).sum(axis=1)       # (n_samples, 3)
            out = np.zeros((p.shape[0], n))
            out[:, 3 * k:3 * k + 3] = p
            return out
        return part


def lead_rows(Lt: np.ndarray) -> np.ndarray:
    """A (3 n_src, n_out) lead field as the (n_out, 3 n_src) C-contiguous matrix each window
    multiplies the dipoles by: one sensor's row is a contiguous stream, which BLAS reads from
    memory ~1.6x faster than the columns of Lt (32 sensors x 3000 dipole components, float64,
    from a cold cache: ~45 against ~75 us)."""
    return np.ascontiguousarray(Lt.T)


# --------------------------------------------------------------------------------------------
# EEG
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class EEG(OverSolvers, ProbeSpec):
    """Potential (mV) at electrodes (on the scalp, or anywhere the head model allows, e.g. ECoG
    on the brain surface) of the sources' current dipoles.

    Parameters
    ----------
    of : solvers whose dipoles contribute
    electrodes_um : (n_el, 3) electrode positions (um), head coordinates
    head : a HeadModel (default FourSphere() with the standard radii and conductivities); ignored
        for solvers that ``lead_field`` covers
    lead_field : None, or {solver name: (n_el, 3 n_sources) matrix} (mV per nA*um), column
        3 i + d for component d of that solver's source i (e.g. computed with MNE for a
        realistic head); the number of sources is checked when the run starts
    every_ms, sources, keep_parts : as the LFP probe
    reference : None (potentials against infinity / the model's zero), or an electrode index
        whose potential is subtracted from every channel (a common reference)
    """

    type: ClassVar[str] = "eeg"
    modality: ClassVar[str] = "eeg"
    nested: ClassVar = {"sources": SourceModel, "head": HeadModel}

    of: tuple
    electrodes_um: tuple
    head: HeadModel = FourSphere()
    lead_field: dict | None = None
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False
    reference: int | None = None

    def __post_init__(self) -> None:
        check_common(self)
        el = check_points(self, "electrodes_um")
        if not isinstance(self.head, HeadModel):
            raise fail(self, f"'head' must be a head model ({', '.join(sorted(HeadModel._kinds))}) "
                             f"(got {self.head!r})")
        if self.lead_field is not None:
            if not isinstance(self.lead_field, Mapping):
                raise fail(self, f"'lead_field' must be a dict of solver name -> (n_el, 3 n_sources) "
                                 f"matrix (got {type(self.lead_field).__name__})")
            fixed = {}
            for k, m in self.lead_field.items():
                if k not in self.of:
                    raise fail(self, f"'lead_field' names solver {k!r}, which is not in 'of'")
                arr = np.asarray(m, dtype=np.float64)
                if arr.ndim != 2 or arr.shape[0] != el.shape[0] or arr.shape[1] % 3 or not np.isfinite(arr).all():
                    raise fail(self, f"lead_field[{k!r}] must be a finite ({el.shape[0]}, 3 n_sources) "
                                     f"matrix, mV per nA*um (got shape {arr.shape})")
                fixed[k] = tuple(tuple(float(v) for v in row) for row in arr)
            object.__setattr__(self, "lead_field", fixed or None)
        if self.reference is not None and (isinstance(self.reference, bool) or not isinstance(self.reference, int)
                                           or not 0 <= self.reference < el.shape[0]):
            raise fail(self, f"'reference' must be None or an electrode index in [0, {el.shape[0]}) "
                             f"(got {self.reference!r})")

    @classmethod
    def example(cls) -> "EEG":
        return cls(of=("cells", "brain"), electrodes_um=((0.0, 0.0, 90000.0), (90000.0, 0.0, 0.0)),
                   lead_field={"brain": ((1e-9, 0.0, 2e-9), (0.0, 1e-9, 0.0))}, every_ms=1.0)

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        return ProbeInfo(n_channels=len(self.electrodes_um), period_ticks=probe_period(self, ports),
                         units="mV", modality=self.modality, positions=self.electrodes_um)

    def matrix(self, solver_name: str, positions_um: np.ndarray) -> np.ndarray:
        """(3 n_src, n_el): this solver's dipoles (flattened source-major) to potentials."""
        el = np.array(self.electrodes_um, dtype=np.float64)
        n_src = positions_um.shape[0]
        if self.lead_field is not None and solver_name in self.lead_field:
            L = np.array(self.lead_field[solver_name], dtype=np.float64)
            if L.shape[1] != 3 * n_src:
                raise ModelError(f"eeg: lead_field[{solver_name!r}] has {L.shape[1]} columns, but the "
                                 f"solver has {n_src} sources (3 columns each)")
        else:
            L = self.head.lead_field(el, positions_um).reshape(el.shape[0], 3 * n_src)
        if self.reference is not None:
            L = L - L[self.reference]
        return np.ascontiguousarray(L.T)

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        pos, dpart = dipole_part(solver_name, solver, ports, source_model(self, solver_name),
                                 info.period_ticks)
        L = lead_rows(self.matrix(solver_name, np.asarray(pos, dtype=np.float64).reshape(-1, 3)))

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            p = dpart(t0, t1, result)
            return (L @ p.reshape(p.shape[0], -1).T).T
        return part


# --------------------------------------------------------------------------------------------
# MEG
# --------------------------------------------------------------------------------------------
MEG_MODELS = ("sarvas", "infinite")


@dataclass(frozen=True, slots=True, kw_only=True)
class MEG(OverSolvers, ProbeSpec):
    """Magnetic field (fT) at sensors, along each sensor's orientation (a magnetometer).

    Parameters
    ----------
    sensors_um : (n, 3) sensor positions (um), head coordinates, outside the head
    orientations : (n, 3) sensor normals (normalised here), or None: radial from ``centre_um``
    model : 'sarvas' (spherically symmetric head centred at ``centre_um``: primary and volume
        currents; Sarvas 1987; independent of the conductivities; radial dipoles give 0) or
        'infinite' (an infinite homogeneous medium: the primary currents' Biot-Savart field)
    centre_um : the sphere's centre (um)
    every_ms, sources, keep_parts : as the LFP probe

    Units: B = mu0 H; H in nA/um (LFPykit's unit) is 1e-3 A/m, so 1 nA/um gives 4 pi 1e5 fT.
    """

    type: ClassVar[str] = "meg"
    modality: ClassVar[str] = "meg"
    nested: ClassVar = {"sources": SourceModel}

    of: tuple
    sensors_um: tuple
    orientations: tuple | None = None
    model: str = "sarvas"
    centre_um: tuple = (0.0, 0.0, 0.0)
    every_ms: float | None = None
    sources: dict | None = None
    keep_parts: bool = False

    def __post_init__(self) -> None:
        check_common(self)
        se = check_points(self, "sensors_um")
        o = check_points(self, "orientations", allow_none=True)
        if o is not None:
            if o.shape != se.shape:
                raise fail(self, f"'orientations' must be one row per sensor, {se.shape} (got {o.shape})")
            if (np.linalg.norm(o, axis=1) == 0).any():
                raise fail(self, "'orientations' must be nonzero vectors (a row is 0, 0, 0)")
        require_choice(self, "model", MEG_MODELS)
        c = np.array(as_tuple(self, "centre_um", float))
        if c.shape != (3,) or not np.isfinite(c).all():
            raise fail(self, f"'centre_um' must be 3 finite numbers (got {self.centre_um!r})")
        if o is None and (np.linalg.norm(se - c, axis=1) == 0).any():
            raise fail(self, "a sensor sits at 'centre_um', so it has no radial direction: give 'orientations'")

    @classmethod
    def example(cls) -> "MEG":
        return cls(of=("cells",), sensors_um=((0.0, 0.0, 100000.0), (100000.0, 0.0, 0.0)), every_ms=1.0)

    def describe(self, ports, window_ticks: int) -> ProbeInfo:
        return ProbeInfo(n_channels=len(self.sensors_um), period_ticks=probe_period(self, ports),
                         units="fT", modality=self.modality, positions=self.sensors_um)

    def normals(self) -> np.ndarray:
        se = np.array(self.sensors_um, dtype=np.float64)
        o = (se - np.array(self.centre_um)) if self.orientations is None else np.array(self.orientations, dtype=np.float64)
        return o / np.linalg.norm(o, axis=1, keepdims=True)

    def matrix(self, positions_um: np.ndarray) -> np.ndarray:
        """(3 n_src, n_sensors) fT per nA*um: dipoles (flattened source-major) to the field along
        each sensor's normal."""
        se = np.array(self.sensors_um, dtype=np.float64)
        if self.model == "sarvas":
            G = forward.meg_sarvas_matrix(se, positions_um, self.centre_um)
        else:
            G = forward.meg_infinite_matrix(se, positions_um)
        L = np.einsum("sb,sbjd->sjd", self.normals(), G)   # (n_s, n_src, 3)
        return np.ascontiguousarray(L.reshape(se.shape[0], -1).T)

    def local(self, solver_name, solver, ports, info: ProbeInfo):
        pos, dpart = dipole_part(solver_name, solver, ports, source_model(self, solver_name),
                                 info.period_ticks)
        L = lead_rows(self.matrix(np.asarray(pos, dtype=np.float64).reshape(-1, 3)))

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            p = dpart(t0, t1, result)
            return (L @ p.reshape(p.shape[0], -1).T).T
        return part
