"""A population of multicompartment cells of one morphology, each placed in tissue coordinates.

Discretisation as NEURON's: a section of nseg segments has a node at each segment's centre
plus a zero-area node at its 1-end (children attached at 1 connect there); the root section
also has a zero-area node at its 0-end. Segment areas and half-segment axial resistances are
integrated over the section's 3D points; two neighbouring centres are joined through the sum
of their half-segment resistances, a centre and an end node through one half. A child attached
inside its parent (0 < parent_x < 1) connects to the parent's segment centre, as NEURON does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.signals import Port, Samples, Spikes, WindowResult
from ...coordinator.specs import SolverContext, SolverSpec
from ...coordinator.time import TICKS_PER_MS, to_ticks
from ...coordinator.validation import (as_tuple, fail, require_choice, require_int, require_number,
                                      require_str)
from .._poisson import poisson_events
from . import _generated
from ._kernels import cell_advance, group_events, hh_init, hh_table, static_inverse
from .mech import ION_REVERSALS, IONS, registry
from .mechanisms import AlphaSynapse, Exp2Syn, IClamp, Insert, Ions
from .morphology import Morphology, Section, ball_and_stick


@dataclass
class CellLayout:
    """One cell's compartments (local node indices), before placement.

    parent (N,) int64, -1 at the root; g_ax (N,) uS to the parent; cap_nF (N,); area_um2 (N,)
    seg_node (S,) node of each segment (the nodes with area); seg_start_um, seg_end_um (S, 3);
    seg_diam_um (S,); seg_section (S,) index into morphology.sections; seg_x (S,) centre x
    """

    morphology: Morphology
    parent: np.ndarray
    g_ax: np.ndarray
    cap_nF: np.ndarray
    area_um2: np.ndarray
    seg_node: np.ndarray
    seg_start_um: np.ndarray
    seg_end_um: np.ndarray
    seg_diam_um: np.ndarray
    seg_section: np.ndarray
    seg_x: np.ndarray
    first_node: list      # per section: node of its first centre
    end_node: list        # per section: its zero-area 1-end node
    start_node: list      # per section: the node its 0-end connects to

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    def node_at(self, section: str, x: float) -> int:
        """The node NEURON puts a point process at ``section(x)`` on."""
        k = self.morphology.index(section)
        nseg = self.morphology.sections[k].nseg
        if x <= 0.0:
            return self.start_node[k]
        if x >= 1.0:
            return self.end_node[k]
        return self.first_node[k] + min(int(x * nseg), nseg - 1)

    def nodes_of(self, k: int) -> np.ndarray:
        """Centre nodes of section k."""
        nseg = self.morphology.sections[k].nseg
        return np.arange(self.first_node[k], self.first_node[k] + nseg)


def path_distance_um(lay: CellLayout) -> np.ndarray:
    """(N,) path distance (um) along the tree from the root section's 0-end to each node's
    point (a segment's centre; a section's 1-end for its end node)."""
    morph = lay.morphology
    start = np.zeros(len(morph.sections))
    d = np.zeros(lay.n_nodes)
    for k, sec in enumerate(morph.sections):
        if sec.parent is not None:
            pk = morph.index(sec.parent)
            start[k] = start[pk] + min(max(sec.parent_x, 0.0), 1.0) * morph.sections[pk].length_um
        nseg = sec.nseg
        d[lay.first_node[k]:lay.first_node[k] + nseg] = start[k] + (np.arange(nseg) + 0.5) / nseg * sec.length_um
        d[lay.end_node[k]] = start[k] + sec.length_um
    return d


def lambda_nseg(sec: Section, d_lambda: float, ra_ohm_cm: float, cm_uF_cm2: float) -> int:
    """NEURON's d_lambda rule: odd nseg so that segments are at most d_lambda of the AC length
    constant at 100 Hz, lambda = 1e5 sqrt(diam / (4 pi f Ra cm)) um."""
    lam = 1e5 * math.sqrt(sec.mean_diam_um / (4.0 * math.pi * 100.0 * ra_ohm_cm * cm_uF_cm2))
    return int((sec.length_um / (d_lambda * lam) + 0.9) / 2) * 2 + 1


def layout_cell(morph: Morphology, ra_ohm_cm: float, cm_uF_cm2: float) -> CellLayout:
    """Compartments of one cell: nodes in Hines order (every parent before its children)."""
    parent: list[int] = []
    g_ax: list[float] = []
    area: list[float] = []
    seg = {"node": [], "a": [], "b": [], "d": [], "sec": [], "x": []}
    first_node, end_node, start_node = [], [], []
    # resistance per unit resistivity (1/um) -> MOhm for Ra in ohm cm: R = Ra * 1e-2 * r
    rfac = ra_ohm_cm * 1e-2
    for k, sec in enumerate(morph.sections):
        nseg = sec.nseg
        if sec.parent is None:
            start = len(parent)
            parent.append(-1)
            g_ax.append(0.0)
            area.append(0.0)
        else:
            pk = morph.index(sec.parent)
            px = sec.parent_x
            if px >= 1.0:
                start = end_node[pk]
            elif px <= 0.0:
                start = start_node[pk]
            else:
                start = first_node[pk] + min(int(px * morph.sections[pk].nseg), morph.sections[pk].nseg - 1)
        start_node.append(start)
        first_node.append(len(parent))
        halves = []
        for j in range(nseg):
            x0, xm, x1 = j / nseg, (j + 0.5) / nseg, (j + 1) / nseg
            a_l, r_l = sec.piece(x0, xm)
            a_r, r_r = sec.piece(xm, x1)
            halves.append((r_l, r_r))
            prev = start if j == 0 else len(parent) - 1
            r_join = r_l if j == 0 else halves[j - 1][1] + r_l
            seg["node"].append(len(parent))
            parent.append(prev)
            g_ax.append(1.0 / (rfac * r_join))
            area.append(a_l + a_r)
            seg["a"].append(sec.at(x0)[:3])
            seg["b"].append(sec.at(x1)[:3])
            seg["d"].append(sec.at(xm)[3])
            seg["sec"].append(k)
            seg["x"].append(xm)
        end_node.append(len(parent))
        parent.append(len(parent) - 1)
        g_ax.append(1.0 / (rfac * halves[-1][1]))
        area.append(0.0)
    area_arr = np.array(area)
    return CellLayout(
        morphology=morph, parent=np.array(parent, dtype=np.int64), g_ax=np.array(g_ax),
        # uF/cm2 * um2 = 1e-8 uF = 1e-5 nF
        cap_nF=cm_uF_cm2 * area_arr * 1e-5, area_um2=area_arr,
        seg_node=np.array(seg["node"], dtype=np.int64), seg_start_um=np.array(seg["a"]),
        seg_end_um=np.array(seg["b"]), seg_diam_um=np.array(seg["d"]),
        seg_section=np.array(seg["sec"], dtype=np.int64), seg_x=np.array(seg["x"]),
        first_node=first_node, end_node=end_node, start_node=start_node)


def rotation_matrix(angles_deg) -> np.ndarray:
    """R = Rz Ry Rx for rotations (rx, ry, rz) in degrees about the tissue x, y, z axes."""
    rx, ry, rz = np.radians(np.asarray(angles_deg, dtype=np.float64))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


@dataclass(frozen=True, slots=True, kw_only=True)
class CellPopulation(SolverSpec):
    """``n`` detailed cells of one morphology, solved together (backward Euler, as NEURON's
    fixed step with secondorder=0).

    Parameters
    ----------
    morphology : the cells' Morphology (its sections' nseg, unless ``d_lambda`` is set)
    n : number of cells
    positions_um : (n, 3) where each cell's local origin goes in tissue; default all at 0
    rotations_deg : (n, 3) rotations (rx, ry, rz) about x, y, z, applied before translation
    mechanisms : Insert placements; ions : Ions placements, the sections' ion reversal
        potentials (ena, ek, eca mV; NEURON's defaults 50, -77, 132.46 where none is set)
    iclamps, synapses (Exp2Syn, fed by the ``syn`` port),
        alpha_synapses (timed AlphaSynapse) : point processes placed in every cell
    ra_ohm_cm, cm_uF_cm2 : axial resistivity, specific capacitance
    celsius : temperature (C) for Q10 scaling of rates; v_init_mV : initial voltage
    d_lambda : if set, nseg of every section by NEURON's d_lambda rule at 100 Hz
    soma : section whose centre (x = 0.5) is the recording and spike-detection site
    threshold_mV : upward crossing there is a spike
    record_currents : keep each window's transmembrane currents for the probes (costs memory)
    rate_weight_uS : peak conductance of each Poisson event drawn from the ``rate`` port
    method : 'backward_euler' (NEURON's secondorder=0) or 'crank_nicolson' (secondorder=2:
        second order in dt for v; the output v_soma is then v at whole steps, as NEURON's)
    hh_tables : hh's rates from NEURON's table (hh.mod's ``TABLE ... FROM -100 TO 100 WITH
        200``: 1 mV steps, linear interpolation, the end rows outside [-100, 100] mV), as
        NEURON's default ``usetable_hh = 1`` does; False (default): the exact rates every step
        (NEURON's ``usetable_hh = 0``). Tables need hh's parameters shared by all cells (per-cell
        values go through the mechanism file, which evaluates the rates exactly)

    Ports
    -----
    spikes : out, spikes (n,), at the crossing time interpolated within the step
    v_soma : out, analog (n,) mV, every dt; sample k is v at t0 + k dt
    syn : in, spikes (n * len(synapses),); channel c * len(synapses) + j is synapse j of cell c,
        the spike's weight its peak conductance (uS)
    rate : in, rate (n * len(synapses),) Hz, every dt: Poisson input onto the same synapses,
        each event of weight ``rate_weight_uS`` (drawn from the solver's seeded stream)
    i_inj : in, analog (n,) nA, every dt: current injected at soma(0.5), held over each step
    """

    type: ClassVar[str] = "cell_population"
    level: ClassVar[str] = "I"
    nested: ClassVar = {"morphology": Morphology, "mechanisms": Insert, "ions": Ions, "iclamps": IClamp,
                        "synapses": Exp2Syn, "alpha_synapses": AlphaSynapse}

    morphology: Morphology
    n: int = 1
    positions_um: tuple | None = None
    rotations_deg: tuple | None = None
    mechanisms: tuple = ()
    ions: tuple = ()
    iclamps: tuple = ()
    synapses: tuple = ()
    alpha_synapses: tuple = ()
    ra_ohm_cm: float = 100.0
    cm_uF_cm2: float = 1.0
    celsius: float = 6.3
    v_init_mV: float = -65.0
    d_lambda: float | None = None
    soma: str = "soma"
    threshold_mV: float = 0.0
    record_currents: bool = False
    rate_weight_uS: float = 0.001
    method: str = "backward_euler"
    dt_ms: float = 0.025
    hh_tables: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.morphology, Morphology):
            raise fail(self, f"'morphology' must be a Morphology (got {type(self.morphology).__name__})")
        require_int(self, "n", minimum=1)
        require_number(self, "ra_ohm_cm", "cm_uF_cm2", "dt_ms", positive=True)
        require_number(self, "celsius", "v_init_mV", "threshold_mV")
        require_number(self, "rate_weight_uS", nonnegative=True)
        require_number(self, "d_lambda", positive=True, allow_none=True)
        require_str(self, "soma")
        names = {s.name for s in self.morphology.sections}
        kinds = {s.kind for s in self.morphology.sections}
        if self.soma not in names:
            raise fail(self, f"'soma' must name a section (got {self.soma!r}; has: {', '.join(sorted(names))})")
        for fname, cls in (("mechanisms", Insert), ("ions", Ions), ("iclamps", IClamp), ("synapses", Exp2Syn),
                           ("alpha_synapses", AlphaSynapse)):
            items = as_tuple(self, fname)
            for i, it in enumerate(items):
                if not isinstance(it, cls):
                    raise fail(self, f"{fname}[{i}] must be a {cls.__name__} (got {type(it).__name__})")
                placed = cls in (Insert, Ions)
                where = it.where if placed else it.section
                ok = where in names or (placed and (where in kinds or where == "all"))
                if not ok:
                    raise fail(self, f"{fname}[{i}]: {where!r} matches no section "
                                     f"(names: {', '.join(sorted(names))}; kinds: {', '.join(sorted(kinds))})")
        for fname in ("mechanisms", "ions"):
            for i, ins in enumerate(getattr(self, fname)):
                for pname, val in ins.params.items():
                    if isinstance(val, tuple) and len(val) != self.n:
                        what = f" ({ins.mechanism})" if fname == "mechanisms" else ""
                        raise fail(self, f"{fname}[{i}]{what}: parameter {pname!r} has "
                                         f"{len(val)} values but the population has n = {self.n} cells "
                                         f"(give one number, or one per cell)")
        for i, syn in enumerate(self.synapses):
            for fname in Exp2Syn.PER_CELL:
                val = getattr(syn, fname)
                if isinstance(val, tuple) and len(val) != self.n:
                    raise fail(self, f"synapses[{i}]: {fname!r} has {len(val)} values but the population "
                                     f"has n = {self.n} cells (give one number, or one per cell)")
        for fname in ("positions_um", "rotations_deg"):
            if getattr(self, fname) is not None:
                arr = np.array(as_tuple(self, fname, float))
                if arr.shape != (self.n, 3) or not np.isfinite(arr).all():
                    raise fail(self, f"{fname!r} must be {self.n} rows of 3 finite numbers (got shape {arr.shape})")
        require_choice(self, "method", METHODS)
        if not isinstance(self.record_currents, bool):
            raise fail(self, f"'record_currents' must be True or False (got {self.record_currents!r})")
        if not isinstance(self.hh_tables, bool):
            raise fail(self, f"'hh_tables' must be True or False (got {self.hh_tables!r})")
        to_ticks(self.dt_ms, "cell_population: dt_ms")

    @classmethod
    def example(cls) -> "CellPopulation":
        return ball_and_stick_population(n=2, dend_nseg=11, positions_um=((0, 0, 0), (100, 0, 0)),
                                         synapses=(Exp2Syn(section="dend", x=0.5),))

    @property
    def n_syn(self) -> int:
        return len(self.synapses)

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "cell_population: dt_ms")
        out = {"spikes": Port("spikes", "out", self.n, "", None, f"{self.threshold_mV} mV upward crossings at {self.soma}(0.5)"),
               "v_soma": Port("analog", "out", self.n, "mV", p, f"voltage at {self.soma}(0.5) at the start of each step")}
        if self.synapses:
            out["syn"] = Port("spikes", "in", self.n * self.n_syn, "uS",
                              None, "spikes onto synapses; channel = cell * n_syn + synapse; weight uS")
            out["rate"] = Port("rate", "in", self.n * self.n_syn, "Hz", p,
                               "Poisson input onto synapses; channel = cell * n_syn + synapse")
        out["i_inj"] = Port("analog", "in", self.n, "nA", p, f"current injected at {self.soma}(0.5)")
        return out

    def discretised(self) -> Morphology:
        """The morphology with nseg from the d_lambda rule when it is set."""
        if self.d_lambda is None:
            return self.morphology
        return self.morphology.with_nseg({s.name: lambda_nseg(s, self.d_lambda, self.ra_ohm_cm, self.cm_uF_cm2)
                                          for s in self.morphology.sections})

    def layout(self) -> CellLayout:
        return layout_cell(self.discretised(), self.ra_ohm_cm, self.cm_uF_cm2)

    def build(self, ctx: SolverContext | None) -> "CellSolver":
        """The live solver; ``ctx.rng`` draws the Poisson input (a fixed seed 0 without ctx)."""
        return CellSolver(self, ctx.rng if ctx is not None else np.random.default_rng(0))


def ball_and_stick_population(*, n: int = 1, dend_nseg: int = 101, iclamps=(), synapses=(),
                              positions_um=None, rotations_deg=None, dt_ms: float = 0.025,
                              record_currents: bool = False) -> CellPopulation:
    """The reference ball-and-stick of ../shared/reference/cell: hh soma (NEURON defaults),
    passive dendrite (g 0.001 S/cm2, e -65 mV), Ra 100 ohm cm, cm 1 uF/cm2, 6.3 C, v_init -65 mV."""
    return CellPopulation(
        morphology=ball_and_stick(dend_nseg=dend_nseg), n=n, positions_um=positions_um,
        rotations_deg=rotations_deg,
        mechanisms=(Insert(mechanism="hh", where="soma"),
                    Insert(mechanism="pas", where="dend", params={"g_S_cm2": 0.001, "e_mV": -65.0})),
        iclamps=tuple(iclamps), synapses=tuple(synapses), dt_ms=dt_ms, record_currents=record_currents)


METHODS = ("backward_euler", "crank_nicolson")

#: cells per block: the largest whose working set (a few (N, B) arrays of ~50 nodes) fits in L1/L2
BLOCK = 64


def _matches(sec: Section, where: str) -> bool:
    return where == "all" or where == sec.name or where == sec.kind


class CellSolver:
    """The live population: state arrays are (node, cell), nodes of the shared layout."""

    def __init__(self, spec: CellPopulation, rng: np.random.Generator):
        self.spec = spec
        self.rng = rng
        self.dt_ticks = to_ticks(spec.dt_ms, "cell_population: dt_ms")
        self.dt = self.dt_ticks / TICKS_PER_MS
        lay = self.layout = spec.layout()
        n, N = spec.n, lay.n_nodes
        self.n_cells, self.nodes_per_cell = n, N
        self.parent = lay.parent.copy()
        self.g_ax = lay.g_ax.copy()
        # Crank-Nicolson: a backward-Euler half step (2C/dt) then v extrapolated by 2 dv
        self.vfac = 2.0 if spec.method == "crank_nicolson" else 1.0
        self.cdt = self.vfac * lay.cap_nF / self.dt
        d0 = self.cdt.copy()
        d0[1:] += self.g_ax[1:]
        np.add.at(d0, self.parent[1:], self.g_ax[1:])
        self.d0 = d0
        # cells in blocks of at most BLOCK (state (blocks, N, B)): a block's state stays in cache
        self.n_blocks = -(-n // BLOCK)
        self.block = -(-n // self.n_blocks)
        if self.block >= 8 and any(ins.mechanism not in ("pas", "hh") for ins in spec.mechanisms):
            # a whole number of SIMD widths (8 doubles: AVX-512; 2 or 4 elsewhere): the
            # generated mechanisms' loops over a block's cells then run no scalar remainder
            # (padding columns are dropped); pas and hh alone run faster unpadded (25 cells of
            # each of benchmarks/cable.py's shapes: 2.8 against 3.3 ns per segment-step)
            self.block = -(-self.block // 8) * 8
        nb, B = self.n_blocks, self.block
        self.v = np.full((nb, N, B), spec.v_init_mV)
        morph = lay.morphology
        # density mechanisms: per-node conductances in uS (S/cm2 * um2 * 1e-2). pas and hh with
        # one value for all cells go to the kernel's own loops; everything else (or pas/hh with
        # per-cell values) to the generated kernel of their mechanism files
        self.pas_g, self.pas_e = np.zeros(N), np.zeros(N)
        hh = {k: [] for k in ("node", "gna", "gk", "gl", "ena", "ek", "el")}
        reg = registry()
        dist = path_distance_um(lay)
        # the sections' ion reversal potentials, (N, n) mV each, shared by the mechanisms there
        self.ions = self._ion_values(spec, lay, dist)
        generic: dict[str, dict[int, tuple]] = {}     # name -> node -> (area factor, (P, n) values)
        for ins in spec.mechanisms:
            mech = reg[ins.mechanism]
            for k, sec in enumerate(morph.sections):
                if not _matches(sec, ins.where):
                    continue
                nodes = lay.nodes_of(k)
                # the kernel's own hh loop takes one ena/ek per node: ions that differ between
                # cells there send hh to its mechanism file, as per-cell parameters do
                ion_cells = any(np.ptp(self.ions[f"{r}_mV"][nodes], axis=1).max(initial=0.0) > 0.0
                                for r in mech.reads if f"{r}_mV" in ION_REVERSALS)
                builtin = mech.builtin if not (ins.per_cell() or ion_cells or self._GENERIC_BUILTINS) else None
                a = lay.area_um2[nodes] * 1e-2
                fac = {x.param: x.factor(dist[nodes]) for x in ins.distribution}

                def val(pname):
                    # (len(nodes),) for a value shared by all cells, else (len(nodes), n)
                    v = ins.value(pname)
                    f = fac.get(pname, 1.0)
                    if isinstance(v, tuple):
                        return np.asarray(v)[None, :] * np.broadcast_to(f, (len(nodes),))[:, None]
                    return v * np.broadcast_to(np.asarray(f, dtype=np.float64), (len(nodes),))

                if builtin == "pas":
                    # a later placement on the same section replaces an earlier one (NEURON's
                    # insert is idempotent; the parameters last set win)
                    self.pas_g[nodes] = val("g_S_cm2") * a
                    self.pas_e[nodes] = val("e_mV")
                elif builtin == "hh":
                    hh["node"].append(nodes)
                    for key, pname in (("gna", "gnabar_S_cm2"), ("gk", "gkbar_S_cm2"), ("gl", "gl_S_cm2")):
                        hh[key].append(val(pname) * a)
                    hh["el"].append(np.array(val("el_mV"), dtype=np.float64))
                    hh["ena"].append(self.ions["ena_mV"][nodes, 0].copy())
                    hh["ek"].append(self.ions["ek_mV"][nodes, 0].copy())
                else:
                    # node -> (area factor, (P, n) values); a later placement replaces an earlier
                    inst = generic.setdefault(mech.name, {})
                    vals = [val(p) for p in mech.params]
                    for j, node in enumerate(nodes):
                        rows = np.zeros((len(vals), n))
                        for q, x in enumerate(vals):
                            rows[q] = x[j]
                        inst[int(node)] = (a[j], rows)

        def cat(parts, dtype=np.float64):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        self.hh_node = cat(hh["node"], np.int64)
        if len(np.unique(self.hh_node)) != len(self.hh_node):
            raise ModelError("cell_population: 'hh' is inserted twice on some section")
        self.hh_par = tuple(cat(hh[k]) for k in ("gna", "gk", "gl", "ena", "ek", "el"))
        for name, dense in (("hh", set(self.hh_node.tolist())), ("pas", set(np.nonzero(self.pas_g)[0].tolist()))):
            # a placement with per-cell values goes to the generated kernel, one with shared
            # values to the built-in loop: both on one node would count the mechanism twice
            if dense & set(generic.get(name, ())):
                raise ModelError(f"cell_population: {name!r} is placed on some sections both with "
                                 f"per-cell values and with shared ones; give all its placements "
                                 f"there per-cell values (or none)")
        # before the generated kernel is written and its init compiled
        if spec.hh_tables and "hh" in generic:
            raise ModelError("cell_population: hh_tables=True needs hh's parameters shared by all "
                             "cells (per-cell values are integrated by mech/hh.py with exact rates); "
                             "give one number per parameter or set hh_tables=False")
        self._setup_generic(generic, reg)
        nh = self.hh_node.shape[0]
        self.hh_m, self.hh_h, self.hh_n = (np.zeros((nb, nh, B)) for _ in range(3))
        self.q10 = 3.0 ** ((spec.celsius - 6.3) / 10.0)
        # NEURON's hh rate table at this temperature (DEPEND celsius), or none: exact rates
        self.hh_tab = hh_table(self.q10) if spec.hh_tables else np.zeros((0, 6))
        hh_init(self.v, self.hh_node, self.hh_m, self.hh_h, self.hh_n, self.q10, self.hh_tab)
        ic = spec.iclamps
        self.ic_node = np.array([lay.node_at(c.section, c.x) for c in ic], dtype=np.int64)
        self.ic = tuple(np.array([getattr(c, f) for c in ic], dtype=np.float64)
                        for f in ("delay_ms", "dur_ms", "amp_nA"))
        al = spec.alpha_synapses
        self.al_node = np.array([lay.node_at(a.section, a.x) for a in al], dtype=np.int64)
        self.al = tuple(np.array([getattr(a, f) for a in al], dtype=np.float64)
                        for f in ("onset_ms", "tau_ms", "gmax_uS", "e_mV"))
        sy = spec.synapses
        self.syn_node = np.array([lay.node_at(s.section, s.x) for s in sy], dtype=np.int64)

        def per_syn(fname):
            # (S, n): one value per synapse and cell
            return np.array([s.per_cell(fname, n) for s in sy], dtype=np.float64).reshape(len(sy), n)
        tau1, tau2 = per_syn("tau1_ms"), per_syn("tau2_ms")
        # NEURON's Exp2Syn: normalise so a weight w gives a peak conductance w
        tp = tau1 * tau2 / (tau2 - tau1) * np.log(tau2 / tau1)
        syn = {"e": per_syn("e_mV"), "mg": per_syn("mg_mM"),
               "fac": 1.0 / (-np.exp(-tp / tau1) + np.exp(-tp / tau2)),
               "d1": np.exp(-self.dt / tau1), "d2": np.exp(-self.dt / tau2)}
        pad = nb * B - n
        for key, a in syn.items():
            # (S, n) -> (blocks, S, B); padding columns repeat the last cell (valid values)
            a = np.pad(a, ((0, 0), (0, pad)), mode="edge") if a.size else np.zeros((len(sy), nb * B))
            setattr(self, f"syn_{key}", np.ascontiguousarray(a.reshape(len(sy), nb, B).transpose(1, 0, 2)))
        self.syn_a = np.zeros((nb, len(sy), B))
        self.syn_b = np.zeros((nb, len(sy), B))
        self.soma_node = lay.node_at(spec.soma, 0.5)
        # static nodes: no time-varying conductance at them or below them (only pas and the
        # axial coupling), so their elimination in the tree solve is done once here
        static = np.ones(N, bool)
        static[0] = False
        for nodes in (self.hh_node, self.syn_node, self.al_node, *self.mech_nodes.values()):
            static[nodes] = False
        for i in range(N - 1, 0, -1):
            if not static[i]:
                static[self.parent[i]] = False
        self.s_inv = static_inverse(self.parent, self.g_ax, self.d0, self.pas_g, static)
        self._scratch = tuple(np.zeros((N, B)) for _ in range(3))
        self.imem: np.ndarray | None = None
        self.stim: np.ndarray | None = None
        # sample periods (ticks) of the probes reading the currents; empty: every step is kept
        self.current_periods: set[int] = set()
        # frame periods (ticks) of the probes imaging V; v_rows (rows, N, n) mV: v at the end of
        # the steps ending at imem_ticks (rows shared with the currents)
        self.voltage_periods: set[int] = set()
        self._rows_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.v_rows = np.zeros((0, 0, 0))
        self.imem_ticks = np.zeros(0, np.int64)
        self.n_spikes = 0
        self.n_rate_events = 0

    #: tests set this to integrate pas and hh through their mechanism files (generated kernel)
    _GENERIC_BUILTINS = False

    @staticmethod
    def _ion_values(spec: CellPopulation, lay: CellLayout, dist: np.ndarray) -> dict[str, np.ndarray]:
        # 'ena_mV' / 'ek_mV' / 'eca_mV' -> (N, n) mV: NEURON's defaults, then each Ions
        # placement in order (a later one overrides an earlier one on the sections both match),
        # times its Distance profile at each segment centre
        N, n = lay.n_nodes, spec.n
        out = {k: np.full((N, n), v) for k, v in ION_REVERSALS.items()}
        for ions in spec.ions:
            fac = {x.param: x for x in ions.distribution}
            for k, sec in enumerate(lay.morphology.sections):
                if not _matches(sec, ions.where):
                    continue
                nodes = lay.nodes_of(k)
                for pname, v in ions.params.items():
                    f = fac[pname].factor(dist[nodes]) if pname in fac else np.ones(len(nodes))
                    out[pname][nodes] = np.asarray(v, dtype=np.float64)[None] * f[:, None] if isinstance(v, tuple) \
                        else (v * f)[:, None]
        return out

    def _setup_generic(self, generic: dict, reg: dict) -> None:
        # the generated kernel for the mechanisms outside the kernel's own loops: per mechanism
        # (in name order, so the same set gives the same cached kernel) node (K,), area factor
        # (K,), parameters (blocks, P, K, B) and states (blocks, S, K, B)
        nb, B, N, n = self.n_blocks, self.block, self.nodes_per_cell, self.n_cells
        self.mechs = tuple(reg[name] for name in sorted(generic))
        self.mech_nodes, self.mech_states, self.mech_params = {}, {}, {}
        if not self.mechs:
            self._advance, self._mech_args = cell_advance, ()
            return
        pad = nb * B - n
        ca = IONS["ca"]
        self.ca_c = np.full((nb, N, B), ca[1])
        ca_i = np.zeros((N, B))
        # nodes where a mechanism writes cai: eca is the Nernst potential of cai there
        ca_w = np.zeros(N, np.int8)
        for m in self.mechs:
            if m.writes == "cai":
                ca_w[np.array(sorted(generic[m.name]), dtype=np.int64)] = 1

        def blocks(a):
            # (N, n) -> (blocks, N, B); padding columns repeat the last cell
            a = np.pad(a, ((0, 0), (0, pad)), mode="edge")
            return np.ascontiguousarray(a.reshape(N, nb, B).transpose(1, 0, 2))
        ions = tuple(blocks(self.ions[k]) for k in ("ena_mV", "ek_mV", "eca_mV"))
        head = (self.spec.celsius, self.ca_c, ca_i, _generated.nernst_factor(self.spec.celsius, ca[0]), ca[2],
                ca_w, *ions)
        arrays = []
        for m in self.mechs:
            inst = generic[m.name]
            nodes = np.array(sorted(inst), dtype=np.int64)
            area = np.array([inst[i][0] for i in nodes], dtype=np.float64)
            par = np.stack([inst[i][1] for i in nodes], axis=1) if len(nodes) else np.zeros((len(m.params), 0, n))
            # (P, K, n) -> (blocks, P, K, B); padding columns repeat the last cell (valid values)
            par = np.pad(par, ((0, 0), (0, 0), (0, pad)), mode="edge")
            par = np.ascontiguousarray(par.reshape(len(m.params), len(nodes), nb, B).transpose(2, 0, 1, 3))
            st = np.zeros((nb, len(m.states), len(nodes), B))
            self.mech_nodes[m.name], self.mech_states[m.name] = nodes, st
            self.mech_params[m.name] = par
            arrays += [nodes, area, par, st]
        mod = _generated.load(self.mechs)
        mod.mech_init(self.v, *head, *arrays)
        self._advance, self._mech_args = mod.cell_advance, head + tuple(arrays)

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        steps = (t1 - t0) // self.dt_ticks
        n = self.n_cells
        n_syn = self.syn_node.shape[0]
        syn_in = inputs.get("syn")
        st = ids = w = np.zeros(0)
        if syn_in is not None and len(syn_in):
            if syn_in.ids.min() < 0 or syn_in.ids.max() >= n_syn * n:
                raise ModelError(f"cell_population: 'syn' spike channel out of range 0..{n_syn * n - 1}")
            st = (syn_in.ticks - t0) // self.dt_ticks
            ids = syn_in.ids
            w = syn_in.weights if syn_in.weights is not None else np.ones(len(syn_in))
        rate = inputs.get("rate")
        if rate is not None and n_syn and rate.data.any():
            if (rate.data < 0).any() or not np.isfinite(rate.data).all():
                raise ModelError("cell_population: 'rate' input must be finite and >= 0 Hz")
            # step-major draws: any split of the run into windows consumes the same stream
            ps, pc, counts = poisson_events(self.rng, rate.data * (self.dt * 1e-3), "cell_population: 'rate' input")
            self.n_rate_events += int(counts.sum())
            st = np.concatenate([st, ps])
            ids = np.concatenate([ids, pc])
            w = np.concatenate([w, counts * self.spec.rate_weight_uS])
        if len(st):
            m = len(st)
            ev_step, ev_syn, ev_cell = (np.empty(m, np.int64) for _ in range(3))
            ev_w, ev_start = np.empty(m), np.empty(self.n_blocks + 1, np.int64)
            if group_events(np.ascontiguousarray(st, dtype=np.int64), np.ascontiguousarray(ids, dtype=np.int64),
                            np.ascontiguousarray(w, dtype=np.float64), n_syn, self.block, steps,
                            ev_step, ev_syn, ev_cell, ev_w, ev_start):
                raise ModelError(f"cell_population: a 'syn' event outside the window [{t0}, {t1}) ticks")
        else:
            ev_step = ev_syn = ev_cell = np.zeros(0, np.int64)
            ev_w = np.zeros(0)
            ev_start = np.zeros(self.n_blocks + 1, np.int64)
        rec = np.empty((steps, n))
        cap = n * (steps // 2 + 1)
        spk_cell, spk_frac, spk_step = np.empty(cap, np.int64), np.empty(cap), np.empty(cap, np.int64)
        want = self.spec.record_currents
        want_v = bool(self.voltage_periods)
        row = self._current_rows(t0, steps) if want or want_v else np.zeros(0, np.int64)
        n_rows = int(row.max(initial=-1)) + 1
        shape = (n_rows, self.nodes_per_cell, n) if want else (0, 0, 0)
        v_out = np.empty((n_rows, self.nodes_per_cell, n) if want_v else (0, 0, 0))
        i_inj = inputs.get("i_inj")
        inj = (np.ascontiguousarray(i_inj.data, dtype=np.float64)
               if i_inj is not None and i_inj.data.any() else np.zeros((0, 0)))
        # stim is written only at clamp and soma nodes: zeros from calloc leave the rest of it
        # untouched pages, so recording costs one full array per step, not two
        imem, stim = np.empty(shape), np.zeros(shape)
        k = self._advance(steps, self.dt, t0 / TICKS_PER_MS, n, self.v, self.parent, self.g_ax, self.d0, self.cdt,
                         self.pas_g, self.pas_e, self.s_inv,
                         self.hh_node, *self.hh_par, self.hh_m, self.hh_h, self.hh_n, self.q10, self.hh_tab,
                         self.ic_node, *self.ic, self.al_node, *self.al,
                         self.syn_node, self.syn_e, self.syn_mg, self.syn_fac, self.syn_d1, self.syn_d2,
                         self.syn_a, self.syn_b,
                         ev_start, ev_step, ev_syn, ev_cell, ev_w,
                         self.soma_node, self.spec.threshold_mV, spk_cell, spk_frac, spk_step, rec, inj,
                         want, row, imem, stim, v_out, *self._scratch, self.vfac, *self._mech_args)
        self.n_spikes += k
        if want:
            self.imem, self.stim = imem, stim
        if want_v:
            self.v_rows = v_out
        # the crossing time within its step, to the tick; kept inside the step (and the window)
        off = np.minimum(np.rint(spk_frac[:k] * self.dt_ticks).astype(np.int64), self.dt_ticks - 1)
        ticks = t0 + spk_step[:k] * self.dt_ticks + off
        order = np.lexsort((spk_cell[:k], ticks))
        return WindowResult(outputs={"spikes": Spikes(ticks[order], spk_cell[:k][order]),
                                     "v_soma": Samples(t0, self.dt_ticks, rec)})

    def _current_rows(self, t0: int, steps: int) -> np.ndarray:
        # (steps,) row of imem each step writes, -1 for none: the steps ending on a multiple of
        # a registered sample period, or every step when none is registered. The pattern
        # depends on t0 only through its phase in the periods' lcm: kept per (steps, phase)
        # (the kernel only reads it), which saves ~40 us of numpy a window
        periods = self.current_periods | self.voltage_periods
        phase = t0 % math.lcm(*periods) if periods else 0
        hit = self._rows_cache.get((steps, phase))
        if hit is None:
            ends = phase + self.dt_ticks * np.arange(1, steps + 1, dtype=np.int64)
            keep = np.ones(steps, bool)
            if periods:
                keep = np.zeros(steps, bool)
                for p in periods:
                    keep |= ends % p == 0
                if self.spec.record_currents and not self.current_periods:
                    keep[:] = True      # currents read by nobody known: keep every step
            row = np.full(steps, -1, np.int64)
            row[keep] = np.arange(int(keep.sum()))
            if len(self._rows_cache) >= 64:      # windows of many lengths and phases: start anew
                self._rows_cache.clear()
            hit = self._rows_cache[(steps, phase)] = (row, ends[keep] - phase)
        row, offsets = hit
        self.imem_ticks = t0 + offsets
        return row

    # --- what the probes call -------------------------------------------------------------
    def sample_currents_every(self, period_ticks: int) -> None:
        """Keep transmembrane currents only of the steps that end on a multiple of one of the
        periods registered so far (a probe's sample period, ticks; a multiple of dt). Probes
        call this when they attach, before the first window; with none registered every step
        is kept. Recording only sampled steps is what makes ``record_currents`` cheap."""
        p = int(period_ticks)
        if p <= 0 or p % self.dt_ticks:
            raise ModelError(f"cell_population: a current sample period must be a positive multiple "
                             f"of the step ({self.dt_ticks} ticks; got {period_ticks})")
        self.current_periods.add(p)
        self._rows_cache.clear()

    def sample_voltages_every(self, period_ticks: int) -> None:
        """Keep every node's v at the end of the steps that end on a multiple of ``period_ticks``
        (a multiple of dt), in ``v_rows`` (rows at ``imem_ticks``); for probes imaging V
        between window ends (VSDI). Call before the first window."""
        p = int(period_ticks)
        if p <= 0 or p % self.dt_ticks:
            raise ModelError(f"cell_population: a voltage sample period must be a positive multiple "
                             f"of the step ({self.dt_ticks} ticks; got {period_ticks})")
        self.voltage_periods.add(p)
        self._rows_cache.clear()

    def segment_geometry(self) -> dict[str, np.ndarray]:
        """Every segment of every cell after placement, cell-major (cell c's S segments are rows
        [c S, (c+1) S)): start_um, end_um (n S, 3), diam_um (n S,), area_um2 (n S,), cell (n S,)."""
        lay, spec = self.layout, self.spec
        n = self.n_cells
        pos = np.zeros((n, 3)) if spec.positions_um is None else np.array(spec.positions_um, dtype=np.float64)
        rot = np.zeros((n, 3)) if spec.rotations_deg is None else np.array(spec.rotations_deg, dtype=np.float64)
        starts, ends = [], []
        for c in range(n):
            R = rotation_matrix(rot[c])
            starts.append(lay.seg_start_um @ R.T + pos[c])
            ends.append(lay.seg_end_um @ R.T + pos[c])
        S = lay.seg_node.shape[0]
        return {"start_um": np.concatenate(starts), "end_um": np.concatenate(ends),
                "diam_um": np.tile(lay.seg_diam_um, n), "area_um2": np.tile(lay.area_um2[lay.seg_node], n),
                "cell": np.repeat(np.arange(n), S)}

    def _per_segment(self, a: np.ndarray) -> np.ndarray:
        # (steps, N, n) -> (steps, n S), cell-major like segment_geometry
        seg = a[:, self.layout.seg_node, :]
        return np.ascontiguousarray(seg.transpose(0, 2, 1)).reshape(a.shape[0], seg.shape[1] * seg.shape[2])

    def transmembrane_currents(self) -> np.ndarray:
        """(n_rows, n S) nA of the last window, per segment (rows of segment_geometry), outward
        positive: capacitive + ionic + synaptic over each step (NEURON's i_membrane). Needs
        ``record_currents=True``. With no electrode current, each cell's columns sum to zero.
        Row k is the step ending at tick ``imem_ticks[k]``: every step of the window, or only
        those ending on a period given to ``sample_currents_every``."""
        if self.imem is None:
            raise ModelError("cell_population: transmembrane currents need record_currents=True "
                             "and at least one advanced window")
        return self._per_segment(self.imem)

    def electrode_currents(self) -> np.ndarray:
        """(n_rows, n S) nA injected by current clamps in the last window (record_currents=True),
        rows as in transmembrane_currents."""
        if self.stim is None:
            raise ModelError("cell_population: electrode currents need record_currents=True "
                             "and at least one advanced window")
        return self._per_segment(self.stim)

    def _cells(self, a: np.ndarray) -> np.ndarray:
        # (blocks, X, B) -> (X, n): drop the padding
        return np.concatenate(list(a), axis=1)[:, :self.n_cells] if a.shape[0] else a[0]

    def voltages(self) -> np.ndarray:
        """(N, n) mV: every node of every cell (nodes of ``layout``), a copy."""
        return self._cells(self.v)

    def synaptic_conductances(self) -> np.ndarray:
        """(n_synapses, n) uS of each synapse of each cell, a copy."""
        return self._cells(self.syn_b) - self._cells(self.syn_a)

    def state(self) -> dict[str, np.ndarray]:
        out = {"v": self.voltages(), "hh_m": self._cells(self.hh_m), "hh_h": self._cells(self.hh_h),
               "hh_n": self._cells(self.hh_n), "syn_a": self._cells(self.syn_a),
               "syn_b": self._cells(self.syn_b)}
        for m in self.mechs:
            # '<mechanism>_<state>' (K, n) at the nodes in mech_nodes[mechanism]
            st = self.mech_states[m.name]
            for j, sname in enumerate(m.states):
                out[f"{m.name}_{sname}"] = self._cells(st[:, j])
        if self.mechs:
            out["cai"] = self._cells(self.ca_c)
        return out

    def close(self) -> None:
        pass
