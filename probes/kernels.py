"""LFP, CSD and EEG/MEG dipoles from point-neuron networks: the kernel method and the current proxy.

Two source models (members of :class:`~polyscale.probes.sources.SourceModel`) registered for
the solver type ``point_network``, so that the extracellular probes (LFP, CSD) and the head
probes (EEG, MEG) work on a point network:

* :class:`KernelMethod` (Hagen et al. 2016 Cereb Cortex 26:4461, hybridLFPy; Hagen et al. 2022
  PLoS Comput Biol 18:e1010353). Each postsynaptic population Y is stood for by a passive
  multicompartment cell (:class:`KernelCell`: a morphology, somata over a disc). For each
  presynaptic population X, the spike-to-signal kernel is the extracellular potential (and
  current dipole moment) that a synaptic current of unit peak, spread over Y's membrane by
  :class:`KernelSynapse`, causes in Y's cells, averaged over their positions; it is computed
  once when the probe is built, in closed form (no time step: ``_kernel_cell.PassiveCell``).
  Each window, every spike of X injects, after each of its synapses' delays, the summed
  synaptic weights (converted to nA) of its own synapses onto Y, and the signal is the sum over
  (X, Y) of these injections convolved with the kernels. State across windows: the injections
  still to come (delays) and the past injections within the kernel's duration.
* :class:`CurrentProxy` (Mazzoni et al. 2015 PLoS Comput Biol 11:e1004584): the 'weighted sum'
  proxy WS(t) = sum over neurons of the chosen populations of |I_AMPA(t - 6 ms)| - 1.65
  |I_GABA(t)| (pA), times a user gain per electrode. It predicts the time course of the LFP at
  one site up to scale and sign, not its spatial profile or units: with the default gain 1 the
  'mV' it writes are pA.

Assumptions of the kernel method (what makes it exact, and what it averages over)
-----------------------------------------------------------------------------------
* Linearity: the multicompartment cells are passive and the synapses are currents, so the
  signal is a sum of responses to single synaptic events. Active membrane conductances are not
  represented (Hagen 2022 linearises them around a working point; here the leak is the only
  membrane conductance) and conductance synapses are taken as currents at a fixed potential.
* The network's spikes drive the cells; the cells do not act back on the network (hybrid
  scheme).
* Mean field over cells: every cell of Y is the same morphology, its somata spread evenly over a
  disc in one plane (deterministic placement, :func:`~._kernel_cell.disc_placement`), and the potential
  kernel is the average over those positions of one cell's potential, times the number of
  synapses. This is exact when every cell of Y receives the same synaptic input; otherwise
  it replaces which cell receives a spike by the average cell. Synapses of X onto Y are spread
  over the segments of the chosen sections by membrane area times an optional Gaussian depth
  profile (also an average: exact when each synaptic event is shared that way).
* Network synapses: every synapse of the network's projections counts with its own weight and
  delay (the connectome as built, not the rule's mean). Input from outside the network
  (Poisson drives, ``spikes_in`` ports, currents) is not part of the signal.
* Time: a spike at t_s through a synapse of delay d starts the synaptic current at t_s + d;
  output samples are at multiples of the probe's period, which must be a multiple of the
  network's dt (spikes lie on its grid, so the kernels are sampled exactly there).
* Weights: onto ``iaf_psc_exp``-like models (pA, with tau_syn_ex/in) the synaptic current has
  the network's weight as its peak (pA -> nA) and the model's time constant for its sign;
  onto models with weights in mV (``iaf_psc_delta``) the charge C_m w is kept, in a current of
  the given ``tau_decay_ms``; onto conductance models (nS: ``iaf_cond_exp``, ``aeif_cond_exp``)
  the conductance is linearised at a fixed potential, |w| (E_rev - v_ref), v_ref the model's
  E_L unless given (Hagen et al. 2022 linearise at the mean potential); otherwise
  ``weight_nA`` must be given.
"""
from __future__ import annotations

import json
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import WindowResult
from ..coordinator.specs import Spec
from ..coordinator.time import TICKS_PER_MS, fmt_ms, grid_count, grid_start
from ..coordinator.validation import as_tuple, fail, require_int, require_number, require_str
from ..solvers.cell.morphology import Morphology, ball_and_stick
from ..solvers.cell.population import lambda_nseg, layout_cell
from ._kernel_cell import (PassiveCell, convolve_rows, disc_placement, inject_classes, line_source_matrix,
                           point_source_matrix, rotation_z, unit_current_area)
from .sources import SourceModel, register_dipoles, register_extracellular


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelCell(Spec):
    """The passive multicompartment cell standing for one postsynaptic population, and where
    its cells are.

    morphology : the cell in its own frame (um), its apical axis along +z; default a
        ball-and-stick (soma 20 x 20 um, dendrite 500 x 2 um)
    g_pas_S_cm2 : leak conductance (S/cm2) everywhere; ra_ohm_cm, cm_uF_cm2 : axial
        resistivity (ohm cm), specific capacitance (uF/cm2)
    d_lambda : nseg of every section by NEURON's d_lambda rule at 100 Hz; None: the
        morphology's nseg
    center_um : (x, y, z) tissue position of the centre of the soma layer (um)
    radius_um : somata are spread over a disc of this radius (um) in the plane z = center z
    n_positions : cells over which the kernel is averaged (the disc placement; each cell also
        turned about z by the golden angle)
    """

    morphology: Morphology = ball_and_stick(dend_nseg=1)
    g_pas_S_cm2: float = 1e-4
    ra_ohm_cm: float = 150.0
    cm_uF_cm2: float = 1.0
    d_lambda: float | None = 0.1
    center_um: tuple = (0.0, 0.0, 0.0)
    radius_um: float = 500.0
    n_positions: int = 64

    nested: ClassVar = {"morphology": Morphology}

    def __post_init__(self) -> None:
        if not isinstance(self.morphology, Morphology):
            raise fail(self, f"'morphology' must be a Morphology (got {type(self.morphology).__name__})")
        require_number(self, "g_pas_S_cm2", "ra_ohm_cm", "cm_uF_cm2", positive=True)
        require_number(self, "d_lambda", positive=True, allow_none=True)
        require_number(self, "radius_um", nonnegative=True)
        require_int(self, "n_positions", minimum=1)
        c = as_tuple(self, "center_um", float)
        if len(c) != 3 or not all(math.isfinite(v) for v in c):
            raise fail(self, f"'center_um' must be 3 finite numbers (x, y, z) um (got {self.center_um!r})")

    def passive_cell(self) -> PassiveCell:
        """The cell's compartments (the cell solver's discretisation) as a PassiveCell."""
        morph = self.morphology
        if self.d_lambda is not None:
            morph = morph.with_nseg({s.name: lambda_nseg(s, self.d_lambda, self.ra_ohm_cm, self.cm_uF_cm2)
                                     for s in morph.sections})
        lay = layout_cell(morph, self.ra_ohm_cm, self.cm_uF_cm2)
        # S/cm2 * um2 = 1e-8 S = 1e-2 uS
        return PassiveCell(lay, self.g_pas_S_cm2 * lay.area_um2 * 1e-2)

    def placement(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n_positions, 3) um, angles about z (n_positions,) rad) of the cells the
        kernels average over."""
        return disc_placement(self.n_positions, self.radius_um, self.center_um)


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelSynapse(Spec):
    """Where and how the synapses of population ``source`` onto ``target`` act on the
    target's kernel cell (pairs not listed: every section, by area, the network's weights).

    where : section name or kind ('soma', 'dend', 'apic', ...) that receives them, or 'all';
        None: by the weight's sign, excitatory onto every section but those of kind 'soma',
        inhibitory onto the 'soma' sections (perisomatic inhibition, as Hagen et al. 2016).
        A current spread by area over a whole uniform passive cell moves no charge along it
        and makes no extracellular potential: where the synapses are is what makes the LFP.
    z_mean_um, z_std_um : Gaussian depth profile (tissue z, um) of the synapse density per
        membrane area; both None: uniform
    weight_nA : peak synaptic current of every synapse (nA, inward positive); None: from the
        network's weight (see the module docstring)
    tau_rise_ms : rise time of the synaptic current (ms); 0: a jump then a single exponential
    tau_decay_ms : decay time (ms); None: the target model's tau_syn_ex_ms / tau_syn_in_ms by
        the weight's sign
    v_ref_mV : onto conductance models (weights in nS), the membrane potential the synapse is
        linearised at: a conductance g acts as the current g (E_rev - v_ref_mV) (Hagen et al.
        2022 take the mean membrane potential); None: the target model's e_l_mV
    """

    source: str
    target: str
    where: str | None = None
    z_mean_um: float | None = None
    z_std_um: float | None = None
    weight_nA: float | None = None
    tau_rise_ms: float = 0.0
    tau_decay_ms: float | None = None
    v_ref_mV: float | None = None

    def __post_init__(self) -> None:
        require_str(self, "source", "target")
        if self.where is not None:
            require_str(self, "where")
        require_number(self, "z_mean_um", "weight_nA", "v_ref_mV", allow_none=True)
        require_number(self, "z_std_um", "tau_decay_ms", positive=True, allow_none=True)
        require_number(self, "tau_rise_ms", nonnegative=True)
        if (self.z_mean_um is None) != (self.z_std_um is None):
            raise fail(self, f"{self.source}->{self.target}: give both 'z_mean_um' and 'z_std_um' or "
                             f"neither (got {self.z_mean_um!r}, {self.z_std_um!r})")
        if self.tau_decay_ms is not None and self.tau_rise_ms >= self.tau_decay_ms:
            raise fail(self, f"{self.source}->{self.target}: 'tau_rise_ms' must be below 'tau_decay_ms' "
                             f"(got {self.tau_rise_ms} >= {self.tau_decay_ms})")


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelMethod(SourceModel):
    """Spike-to-signal kernels from passive multicompartment cells (Hagen et al. 2022).

    cells : {population name: KernelCell}; populations without one contribute nothing
    synapses : KernelSynapse entries for (source, target) pairs that differ from the default
    duration_ms : length of each kernel after the synaptic onset (ms); the response of a
        passive cell decays with its membrane time constant (C/g = 10 ms at the defaults)
    """

    type: ClassVar[str] = "kernel_method"
    nested: ClassVar = {"cells": KernelCell, "synapses": KernelSynapse}

    cells: Mapping
    synapses: tuple = ()
    duration_ms: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.cells, Mapping) or not self.cells:
            raise fail(self, f"'cells' must be a non-empty dict of population name -> KernelCell "
                             f"(got {self.cells!r})")
        for name, cell in self.cells.items():
            if not isinstance(name, str) or not isinstance(cell, KernelCell):
                raise fail(self, f"cells[{name!r}] must be a KernelCell keyed by a population name "
                                 f"(got {type(cell).__name__})")
        object.__setattr__(self, "cells", dict(self.cells))
        syn = as_tuple(self, "synapses")
        seen = set()
        for i, s in enumerate(syn):
            if not isinstance(s, KernelSynapse):
                raise fail(self, f"synapses[{i}] must be a KernelSynapse (got {type(s).__name__})")
            if (s.source, s.target) in seen:
                raise fail(self, f"synapses[{i}]: the pair {s.source}->{s.target} is given twice")
            seen.add((s.source, s.target))
        require_number(self, "duration_ms", positive=True)

    @classmethod
    def example(cls) -> "KernelMethod":
        return cls(cells={"E": KernelCell(n_positions=4, center_um=(0.0, 0.0, -200.0))},
                   synapses=(KernelSynapse(source="I", target="E", where="soma", tau_decay_ms=4.0),),
                   duration_ms=40.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentProxy(SourceModel):
    """Mazzoni et al. (2015)'s weighted-sum proxy: WS(t) = sum |I_AMPA(t - delay)| - alpha |I_GABA(t)|.

    The sums run over the neurons of ``populations`` (Mazzoni: the pyramidal cells), over the
    synaptic currents of the network's own projections (positive weights AMPA, negative GABA);
    currents in pA. An electrode's value is gain * WS ('mV' only if the gain is in mV/pA; with
    the default gain 1 it is WS in pA): the proxy gives a time course, the same at every
    electrode up to its gain. As a head source it is one dipole at ``position_um`` along
    ``axis`` of moment dipole_gain * WS (nA um with dipole_gain in nA um/pA).

    populations : postsynaptic populations summed; None: all
    delay_ms, alpha : Mazzoni's fitted values for the reference proxy (6 ms, 1.65)
    gain : one number or one per electrode
    tau_ampa_ms, tau_gaba_ms : decay times of the currents (ms); None: the target model's
        tau_syn_ex_ms / tau_syn_in_ms (needed for models with weights in mV, whose event charge
        C_m w is kept in a current of that decay)
    v_ref_mV : onto conductance models (weights in nS), the potential the currents are taken at,
        |g (E_rev - v_ref_mV)|; None: the model's e_l_mV
    """

    type: ClassVar[str] = "current_proxy"

    populations: tuple | None = None
    delay_ms: float = 6.0
    alpha: float = 1.65
    gain: float | tuple = 1.0
    tau_ampa_ms: float | None = None
    tau_gaba_ms: float | None = None
    v_ref_mV: float | None = None
    position_um: tuple = (0.0, 0.0, 0.0)
    axis: tuple = (0.0, 0.0, 1.0)
    dipole_gain: float = 1.0

    def __post_init__(self) -> None:
        if self.populations is not None:
            pops = as_tuple(self, "populations")
            if not pops or not all(isinstance(p, str) for p in pops):
                raise fail(self, f"'populations' must be a non-empty sequence of names or None "
                                 f"(got {self.populations!r})")
        require_number(self, "delay_ms", "alpha", nonnegative=True)
        require_number(self, "tau_ampa_ms", "tau_gaba_ms", positive=True, allow_none=True)
        require_number(self, "dipole_gain")
        require_number(self, "v_ref_mV", allow_none=True)
        if isinstance(self.gain, (list, tuple)) or hasattr(self.gain, "tolist"):
            g = as_tuple(self, "gain", float)
            if not g or not all(math.isfinite(v) for v in g):
                raise fail(self, f"'gain' must be a finite number or a non-empty sequence of them (got {self.gain!r})")
        else:
            require_number(self, "gain")
        for name in ("position_um", "axis"):
            v = as_tuple(self, name, float)
            if len(v) != 3 or not all(math.isfinite(x) for x in v):
                raise fail(self, f"{name!r} must be 3 finite numbers (got {getattr(self, name)!r})")
        if not any(self.axis):
            raise fail(self, f"'axis' must be a nonzero vector (got {self.axis!r})")


# --- the network side ---------------------------------------------------------------------------

@dataclass
class _Class:
    """Synapses of one (source population, target population, sign) with a kernel of their own.

    weights (n_source, D) summed per source neuron and delay (kernel units: nA or pA); delays (D,)
    steps; kernel (L, n_ch) the response to one unit of weight starting at lag 0."""

    source: int
    target: int
    sign: int
    weights: np.ndarray
    delays: np.ndarray
    kernel: np.ndarray | None = None


def _network(solver):
    spec = getattr(solver, "spec", None)
    if spec is None or getattr(spec, "type", None) != "point_network" or not hasattr(solver, "indptr"):
        raise ModelError(f"kernel sources need a live point_network solver (got {type(solver).__name__})")
    return spec


def _check_names(kind: str, names, spec) -> None:
    have = [p.name for p in spec.populations]
    for n in names:
        if n not in have:
            raise ModelError(f"{kind}: population {n!r} is not in the point network (has: {', '.join(have)})")


def _synapse_classes(solver, targets: set[int], value) -> list[_Class]:
    """Per (source pop, target pop in ``targets``, sign): each source neuron's summed synapse
    values per delay, from the connectome as built. ``value(x, y, sign, w)`` maps the float
    weights of those synapses to kernel units."""
    lo = solver.lo
    n, n_pops = solver.n, len(solver.names)
    inv = np.arange(solver.n_slots, dtype=np.int64)
    inv[solver.inh_slot] = np.arange(n, dtype=np.int64)
    depth = int(solver.depth)
    index = {name: i for i, name in enumerate(solver.names)}
    out = []
    chunk = 1 << 21
    # every CSR synapse, constant-weight groups included (the solver holds those apart)
    indptr, slot, weight, delay = solver.csr()
    for x in range(n_pops):
        nx = int(lo[x + 1] - lo[x])
        acc = {}
        a_all, b_all = int(indptr[lo[x]]), int(indptr[lo[x + 1]])
        for a in range(a_all, b_all, chunk):
            b = min(b_all, a + chunk)
            idx = np.arange(a, b, dtype=np.int64)
            src = np.searchsorted(indptr, idx, side="right") - 1 - lo[x]
            tgt = inv[slot[a:b]]
            ypop = np.searchsorted(lo, tgt, side="right") - 1
            w = weight[a:b]
            d = delay[a:b]
            for y in targets:
                for sign in (1, -1):
                    m = (ypop == y) & ((w >= 0) if sign > 0 else (w < 0))
                    if not m.any():
                        continue
                    vals = value(x, y, sign, w[m])
                    key = src[m] * (depth + 1) + d[m]
                    tot = np.bincount(key, weights=vals, minlength=nx * (depth + 1))
                    acc[(y, sign)] = acc.get((y, sign), 0.0) + tot
        # dense projections (AllToAll, one weight and delay) are not in the CSR: each source
        # neuron has every target neuron (but itself where autapses are not allowed)
        for pr in getattr(solver.spec, "projections", ()):
            if not getattr(pr, "dense", False) or index[pr.source] != x or index[pr.target] not in targets:
                continue
            y, w = index[pr.target], float(pr.weight)
            sign = 1 if w >= 0 else -1
            n_t = int(lo[y + 1] - lo[y]) - (0 if pr.allow_autapses or x != y else 1)
            steps = max(1, round(pr.delay_ms / (solver.dt_ticks / TICKS_PER_MS)))
            if n_t <= 0 or steps > depth:
                continue
            tot = np.zeros(nx * (depth + 1))
            tot[steps::depth + 1] = n_t * value(x, y, sign, np.array([w]))[0]
            acc[(y, sign)] = acc.get((y, sign), 0.0) + tot
        for (y, sign), tot in sorted(acc.items()):
            mat = tot.reshape(nx, depth + 1)
            used = np.flatnonzero(np.any(mat != 0.0, axis=0))
            if used.size:
                out.append(_Class(x, y, sign, np.ascontiguousarray(mat[:, used]), used.astype(np.int64)))
    return out


class _SpikeFilter:
    """Per window: spikes of each source population -> delayed weighted injections -> sum of
    their convolutions with the classes' kernels, at multiples of ``period_ticks``.

    State between windows: ``pending`` (C, depth) injections already scheduled beyond the window;
    ``history`` (C, L - 1) the past injections the kernels still reach. The result does not
    depend on how the run is cut into windows (the sums run in one order: bit for bit)."""

    def __init__(self, solver, classes: list[_Class], n_ch: int, period_ticks: int, label: str):
        self.dt = int(solver.dt_ticks)
        if period_ticks % self.dt:
            raise ModelError(f"{label}: the probe's period ({fmt_ms(period_ticks)}) must be a multiple "
                             f"of the point network's dt ({fmt_ms(self.dt)})")
        self.period = int(period_ticks)
        self.names = list(solver.names)
        self.classes = classes
        self.n_ch = n_ch
        C = len(classes)
        self.L = max([c.kernel.shape[0] for c in classes], default=1)
        self.kern = np.zeros((C, self.L, n_ch))
        for i, c in enumerate(classes):
            self.kern[i, :c.kernel.shape[0]] = c.kernel
        self.depth = max([int(c.delays.max()) for c in classes], default=0)
        self.pending = np.zeros((C, self.depth))
        self.history = np.zeros((C, self.L - 1))

    def __call__(self, t0: int, t1: int, result: WindowResult) -> np.ndarray:
        dt = self.dt
        steps = (t1 - t0) // dt
        C = len(self.classes)
        n_out = grid_count(t0, t1, self.period)
        if C == 0:
            return np.zeros((n_out, self.n_ch))
        inj = np.zeros((C, steps + self.depth))
        inj[:, :self.depth] = self.pending
        spikes = {}
        for i, c in enumerate(self.classes):
            if c.source not in spikes:
                s = result.outputs.get(f"{self.names[c.source]}.spikes")
                if s is None:
                    raise ModelError(f"kernel sources: the window result has no '{self.names[c.source]}.spikes'")
                spikes[c.source] = ((np.asarray(s.ticks, np.int64) - t0) // dt, np.asarray(s.ids, np.int64))
            st, ids = spikes[c.source]
            if st.size:
                np.add.at(inj[i], st[:, None] + c.delays[None, :], c.weights[ids])
        self.pending = inj[:, steps:steps + self.depth].copy()
        ext = np.concatenate([self.history, inj[:, :steps]], axis=1)   # (C, L - 1 + steps)
        self.history = ext[:, steps:].copy()
        out = np.zeros((n_out, self.n_ch))
        if n_out:
            first = (grid_start(t0, self.period) - t0) // dt
            rows = first + np.arange(n_out, dtype=np.int64) * (self.period // dt)
            convolve_rows(np.ascontiguousarray(ext), self.kern, rows, out)
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"pending": self.pending.copy(), "history": self.history.copy()}


class _SharedFilter:
    """The kernel method's spikes -> injections -> convolutions of one point-network solver and
    one KernelMethod, once per window for every probe that reads them (an LFP, its CSD, an ECoG
    grid, EEG and MEG dipoles of one column all convolve the same injections).

    Each probe registers its kernels with :meth:`consumer` (classes' kernels concatenated along
    channels; identical kernels at the same period, e.g. EEG's and MEG's dipoles, register
    once) and gets a ``part(t0, t1, result)``. The first part asked for a window computes the
    injections (as :class:`_SpikeFilter` does) and one :func:`convolve_rows` over every
    consumer's channels at the union of their sample steps; each part then takes its rows and
    channels. Every output element is the same sum in the same order as a probe's own
    ``_SpikeFilter`` would compute (channels are independent), so the result is bit for bit the
    same. A window starting at tick 0 starts the state afresh (a new run on the same solver)."""

    def __init__(self, solver, classes: list[_Class]):
        self.dt = int(solver.dt_ticks)
        self.names = list(solver.names)
        self.classes = classes
        self.depth = max([int(c.delays.max()) for c in classes], default=0)
        # the classes' sources, delays and weights flat, for inject_classes
        sources = sorted({c.source for c in classes})
        self._ports = [f"{self.names[x]}.spikes" for x in sources]
        self._cls_src = np.array([sources.index(c.source) for c in classes], dtype=np.int64)
        d_off = np.zeros(len(classes) + 1, np.int64)
        np.cumsum([len(c.delays) for c in classes], out=d_off[1:])
        w_off = np.zeros(len(classes) + 1, np.int64)
        np.cumsum([c.weights.size for c in classes], out=w_off[1:])
        self._flat = (np.concatenate([c.delays for c in classes] or [np.zeros(0, np.int64)]).astype(np.int64), d_off,
                      np.concatenate([np.ascontiguousarray(c.weights, np.float64).ravel() for c in classes]
                                     or [np.zeros(0)]), w_off)
        self.kerns: list[np.ndarray] = []        # per consumer (C, L, n_ch)
        self.periods: list[int] = []
        self.kern: np.ndarray | None = None      # (C, L, sum n_ch), built at the first window
        self.window: tuple | None = None
        self.outs: list[np.ndarray] = []
        self._rows_cache: dict = {}
        self._reset()

    def _reset(self) -> None:
        C = len(self.classes)
        self.L = max([k.shape[1] for k in self.kerns], default=1)
        self.pending = np.zeros((C, self.depth))
        self.history = np.zeros((C, self.L - 1))
        self.t_next = 0

    def consumer(self, kernels: list[np.ndarray], n_ch: int, period_ticks: int, label: str):
        """``part(t0, t1, result) -> (n_samples, n_ch)`` for kernels (one (L, n_ch) per class,
        in the classes' order) sampled every ``period_ticks``."""
        if period_ticks % self.dt:
            raise ModelError(f"{label}: the probe's period ({fmt_ms(period_ticks)}) must be a multiple "
                             f"of the point network's dt ({fmt_ms(self.dt)})")
        C = len(self.classes)
        L = max([k.shape[0] for k in kernels], default=1)
        kern = np.zeros((C, L, n_ch))
        for i, k in enumerate(kernels):
            kern[i, :k.shape[0]] = k
        for i, (k, p) in enumerate(zip(self.kerns, self.periods)):
            if p == period_ticks and k.shape == kern.shape and np.array_equal(k, kern):
                idx = i
                break
        else:
            if self.window is not None and L > self.L:
                raise ModelError(f"{label}: a kernel method probe with longer kernels attached after the run started")
            idx = len(self.kerns)
            self.kerns.append(kern)
            self.periods.append(int(period_ticks))
            self.kern = None
            self._rows_cache = {}
            if self.window is None:
                self._reset()

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            if self.window != (t0, t1):
                self._advance(t0, t1, result)
            return self.outs[idx]
        part.state = self.state
        return part

    def _advance(self, t0: int, t1: int, result: WindowResult) -> None:
        dt = self.dt
        if t0 == 0:
            self._reset()
        elif t0 != self.t_next:
            raise ModelError(f"kernel sources: window [{fmt_ms(t0)}, {fmt_ms(t1)}) ms does not follow "
                             f"the last one (ended at {fmt_ms(self.t_next)} ms)")
        if self.kern is None:
            C = len(self.classes)
            self.kern = np.zeros((C, self.L, sum(k.shape[2] for k in self.kerns)))
            self.cols, a = [], 0
            for k in self.kerns:
                self.kern[:, :k.shape[1], a:a + k.shape[2]] = k
                self.cols.append((a, a + k.shape[2]))
                a += k.shape[2]
        steps = (t1 - t0) // dt
        C = len(self.classes)
        inj = np.zeros((C, steps + self.depth))
        inj[:, :self.depth] = self.pending
        if C:
            # every source's spikes, one after the other, and all classes in one call
            ticks, ids = [], []
            for port in self._ports:
                s = result.outputs.get(port)
                if s is None:
                    raise ModelError(f"kernel sources: the window result has no {port!r}")
                ticks.append(s.ticks)
                ids.append(s.ids)
            s_off = np.zeros(len(ticks) + 1, np.int64)
            np.cumsum([len(t) for t in ticks], out=s_off[1:])
            if s_off[-1]:
                st = (np.concatenate(ticks).astype(np.int64, copy=False) - t0) // dt
                inject_classes(inj, self._cls_src, st, np.concatenate(ids).astype(np.int64, copy=False), s_off,
                               *self._flat)
        self.pending = inj[:, steps:steps + self.depth].copy()
        ext = np.concatenate([self.history, inj[:, :steps]], axis=1)   # (C, L - 1 + steps)
        self.history = ext[:, steps:].copy()
        union, picks = self._rows(t0, t1)
        out = np.zeros((union.size, self.kern.shape[2]))
        if union.size and C:
            convolve_rows(np.ascontiguousarray(ext), self.kern, union, out)
        self.outs = [np.ascontiguousarray(out[:, a:b] if pick is None else out[pick, a:b])
                     for pick, (a, b) in zip(picks, self.cols)]
        self.window = (t0, t1)
        self.t_next = t1

    def _rows(self, t0: int, t1: int) -> tuple[np.ndarray, list]:
        """(union (R,) steps of the window at which some consumer samples, per consumer its rows
        of the union (None: all)); the same for every window of the same length and phase, so
        kept per (length, t0 modulo each period)."""
        key = (t1 - t0, *(t0 % p for p in self.periods))
        got = self._rows_cache.get(key)
        if got is None:
            dt, rows = self.dt, []
            for p in self.periods:
                first = (grid_start(t0, p) - t0) // dt
                rows.append(first + np.arange(grid_count(t0, t1, p), dtype=np.int64) * (p // dt))
            union = np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)
            picks = [None if r.size == union.size else np.searchsorted(union, r) for r in rows]
            got = self._rows_cache[key] = (union, picks)
        return got

    def state(self) -> dict[str, np.ndarray]:
        return {"pending": self.pending.copy(), "history": self.history.copy()}


def _model_tau(model, sign: int) -> float | None:
    return getattr(model, "tau_syn_ex_ms" if sign > 0 else "tau_syn_in_ms", None)


def _reversal(model, sign: int) -> float:
    return getattr(model, "e_ex_mV" if sign > 0 else "e_in_mV")


def _kernel_synapse_value(km: KernelMethod, spec, names):
    """value(x, y, sign, w) -> nA per synapse, and shape(x, y, sign) -> (tau_rise, tau_decay)."""
    over = {(s.source, s.target): s for s in km.synapses}

    def shape(x, y, sign):
        s = over.get((names[x], names[y]))
        model = spec.populations[y].model
        tau_d = s.tau_decay_ms if s is not None and s.tau_decay_ms is not None else _model_tau(model, sign)
        if tau_d is None:
            raise ModelError(f"KernelMethod: {names[x]}->{names[y]}: the target model "
                             f"{model.type!r} has no synaptic time constant; give "
                             f"KernelSynapse(source={names[x]!r}, target={names[y]!r}, tau_decay_ms=...)")
        tau_r = s.tau_rise_ms if s is not None else 0.0
        if tau_r >= tau_d:
            raise ModelError(f"KernelMethod: {names[x]}->{names[y]}: 'tau_rise_ms' {tau_r} must be below "
                             f"the decay time {tau_d} ms")
        return tau_r, tau_d

    def value(x, y, sign, w):
        s = over.get((names[x], names[y]))
        if s is not None and s.weight_nA is not None:
            return np.full(w.shape, s.weight_nA)
        model = spec.populations[y].model
        units = getattr(model, "weight_units", "")
        if units == "pA" and _model_tau(model, sign) is not None:
            return w * 1e-3
        if units == "mV" and hasattr(model, "c_m_pF"):
            # keep the event's charge C_m w (pF mV = fC = 1e-3 nA ms) in a current of this shape
            return w * model.c_m_pF * 1e-3 / unit_current_area(*shape(x, y, sign))
        if units == "nS" and hasattr(model, "e_ex_mV"):
            # linearised conductance: |w| (E_rev - v_ref) (nS mV = pA)
            v_ref = s.v_ref_mV if s is not None and s.v_ref_mV is not None else model.e_l_mV
            return np.abs(w) * 1e-3 * (_reversal(model, sign) - v_ref)
        raise ModelError(f"KernelMethod: {names[x]}->{names[y]}: weights onto {model.type!r} are in "
                         f"{units or 'unknown units'}; give KernelSynapse(source={names[x]!r}, "
                         f"target={names[y]!r}, weight_nA=...)")
    return value, shape


def _share(cell: KernelCell, pc: PassiveCell, syn: KernelSynapse | None, sign: int, label: str) -> np.ndarray:
    """(S,) fraction of each synaptic event on each segment: area x depth profile on ``where``."""
    secs = cell.morphology.sections
    where = None if syn is None else syn.where
    if where is None:
        soma = np.array([secs[k].kind == "soma" for k in pc.section])
        on = ~soma if sign > 0 else soma
        where = "non-soma sections" if sign > 0 else "soma sections"
    else:
        on = np.array([where == "all" or secs[k].name == where or secs[k].kind == where for k in pc.section])
    w = pc.area_um2 * on
    if syn is not None and syn.z_std_um is not None:
        z = pc.mid_um[:, 2] + cell.center_um[2]
        w = w * np.exp(-0.5 * ((z - syn.z_mean_um) / syn.z_std_um) ** 2)
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        raise ModelError(f"KernelMethod: {label}: no membrane receives these synapses (where={where!r}"
                         + ("" if syn is None or syn.z_std_um is None else
                            f", z {syn.z_mean_um} +- {syn.z_std_um} um") + ")")
    return w / total


class _KernelBuild:
    """The kernel method's per-population cells and per-class membrane currents (computed once
    per solver and KernelMethod: an LFP and an EEG probe of one network share them)."""

    _cache: ClassVar = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, solver, km) -> "_KernelBuild":
        key = json.dumps(km.to_dict(), sort_keys=True) if isinstance(km, KernelMethod) else None
        try:
            per_solver = cls._cache.setdefault(solver, {})
        except TypeError:            # a solver that takes no weak reference: no sharing
            per_solver = {}
        if key is None or key not in per_solver:
            built = cls(solver, km)
            per_solver[key] = built
        return per_solver[key]

    def __init__(self, solver, km: KernelMethod | None):
        if not isinstance(km, KernelMethod):
            raise ModelError("point_network sources: give sources={solver: ps.probes.KernelMethod(cells=...)} "
                             "or ps.probes.CurrentProxy() for the point network "
                             f"(got {type(km).__name__ if km is not None else None})")
        spec = _network(solver)
        names = list(solver.names)
        _check_names("KernelMethod cells", km.cells, spec)
        for s in km.synapses:
            _check_names("KernelMethod synapses", (s.source, s.target), spec)
        value, shape = _kernel_synapse_value(km, spec, names)
        self.targets = [i for i, nm in enumerate(names) if nm in km.cells]
        self.classes = _synapse_classes(solver, set(self.targets), value)
        self.names, self.km = names, km
        self.dt_ms = solver.dt_ticks / TICKS_PER_MS
        L = int(round(km.duration_ms / self.dt_ms)) + 1
        self.t_ms = np.arange(L) * self.dt_ms
        self.cells = {y: km.cells[names[y]] for y in self.targets}
        self.passive = {y: self.cells[y].passive_cell() for y in self.targets}
        over = {(s.source, s.target): s for s in km.synapses}
        self.imem = []   # per class: (L, S) nA per unit (1 nA) of injected weight
        for c in self.classes:
            label = f"{names[c.source]}->{names[c.target]}"
            syn = over.get((names[c.source], names[c.target]))
            share = _share(self.cells[c.target], self.passive[c.target], syn, c.sign, label)
            tau_r, tau_d = shape(c.source, c.target, c.sign)
            self.imem.append(self.passive[c.target].membrane_currents(share, self.t_ms, tau_r, tau_d))
        # the spikes -> injections -> convolutions every probe of this build shares
        self.filter = _SharedFilter(solver, self.classes)


def _extracellular_factory(solver, ports, model, electrodes_um, sigma_S_per_m, method, min_distance_um,
                           period_ticks):
    """KernelMethod: (n_samples, n_el) mV at the electrodes; CurrentProxy: gain * WS."""
    el = np.asarray(electrodes_um, dtype=np.float64).reshape(-1, 3)
    if isinstance(model, CurrentProxy):
        return _proxy(solver, model, period_ticks, n_el=el.shape[0])
    b = _KernelBuild.of(solver, model)
    mats = {}
    for y in b.targets:
        cell, pc = b.cells[y], b.passive[y]
        pos, ang = cell.placement()
        acc = np.zeros((el.shape[0], pc.n_segments))
        for p, a in zip(pos, ang):
            R = rotation_z(a)
            acc += _electrode_matrix(pc, pc.start_um @ R.T + p, pc.end_um @ R.T + p, el,
                                     sigma_S_per_m, method, min_distance_um)
        mats[y] = acc / len(pos)
    kernels = [im @ mats[c.target].T for c, im in zip(b.classes, b.imem)]
    return b.filter.consumer(kernels, el.shape[0], period_ticks, "KernelMethod")


def _electrode_matrix(pc: PassiveCell, start, end, el, sigma, method, min_distance_um):
    """(n_el, S) mV/nA of one placed cell: the extracellular probes' forward model
    (probes/forward.py) where it is there, else the closed forms of _kernel_cell."""
    try:
        from .forward import extracellular_matrix
    except ImportError:
        extracellular_matrix = None
    if extracellular_matrix is not None:
        soma = np.flatnonzero(pc.section == 0)   # the root section: 'root_as_point'
        return extracellular_matrix(start, end, pc.diam_um, el, sigma, method=method,
                                    min_distance_um=min_distance_um, roots=soma)
    md = 0.5 * pc.diam_um if min_distance_um is None else np.full(pc.n_segments, float(min_distance_um))
    if method == "point":
        return point_source_matrix(0.5 * (start + end), el, sigma, md[None, :])
    if method == "line":
        return line_source_matrix(start, end, el, sigma, md[None, :])
    raise ModelError(f"KernelMethod: forward method must be 'line' or 'point' (got {method!r})")


def _dipole_factory(solver, ports, model, period_ticks):
    """KernelMethod: one dipole per population with a cell (at its centre), (n_samples, n_pop, 3)
    nA um; CurrentProxy: one dipole at position_um."""
    if isinstance(model, CurrentProxy):
        filt = _proxy(solver, model, period_ticks, n_el=1, dipole=True)
        ax = np.asarray(model.axis, float) / np.linalg.norm(model.axis)

        def proxy_part(t0, t1, result):
            ws = filt(t0, t1, result)[:, 0]
            return (model.dipole_gain * ws)[:, None, None] * ax[None, None, :]
        proxy_part.state = filt.state
        return np.asarray([model.position_um], float), proxy_part
    b = _KernelBuild.of(solver, model)
    n_src = len(b.targets)
    where = {y: i for i, y in enumerate(b.targets)}
    kernels = []
    for c, im in zip(b.classes, b.imem):
        cell, pc = b.cells[c.target], b.passive[c.target]
        _, ang = cell.placement()
        # the average cell's moment: sum I r is unchanged by translation (sum I = 0), turned by
        # the mean rotation about z
        R = np.mean([rotation_z(a) for a in ang], axis=0)
        k = np.zeros((im.shape[0], n_src * 3))
        j = where[c.target]
        k[:, 3 * j:3 * j + 3] = (im @ pc.mid_um) @ R.T
        kernels.append(k)
    filt = b.filter.consumer(kernels, n_src * 3, period_ticks, "KernelMethod")
    positions = np.array([b.cells[y].center_um for y in b.targets], dtype=np.float64).reshape(n_src, 3)

    def part(t0, t1, result):
        return filt(t0, t1, result).reshape(-1, n_src, 3)
    part.state = filt.state
    return positions, part


def _proxy(solver, px: CurrentProxy, period_ticks: int, n_el: int, dipole: bool = False):
    spec = _network(solver)
    names = list(solver.names)
    pops = names if px.populations is None else list(px.populations)
    _check_names("CurrentProxy populations", pops, spec)
    gain = np.asarray(px.gain, dtype=np.float64).reshape(-1)
    if not dipole and gain.size not in (1, n_el):
        raise ModelError(f"CurrentProxy: 'gain' has {gain.size} values for {n_el} electrodes (give 1 or {n_el})")
    if dipole:
        gain = np.ones(1)
    dt_ms = solver.dt_ticks / TICKS_PER_MS
    delay_steps = int(round(px.delay_ms / dt_ms))

    def tau(y, sign):
        t = px.tau_ampa_ms if sign > 0 else px.tau_gaba_ms
        model = spec.populations[y].model
        t = t if t is not None else _model_tau(model, sign)
        if t is None:
            raise ModelError(f"CurrentProxy: the model {model.type!r} of {names[y]!r} has no synaptic time "
                             f"constant; give {'tau_ampa_ms' if sign > 0 else 'tau_gaba_ms'}")
        return t

    def value(x, y, sign, w):
        # |I| of each synapse's current at its onset (pA)
        model = spec.populations[y].model
        units = getattr(model, "weight_units", "")
        if units == "pA":
            return np.abs(w)
        if units == "mV" and hasattr(model, "c_m_pF"):
            return np.abs(w) * model.c_m_pF / tau(y, sign)   # charge C_m |w| (fC) over tau (ms): pA
        if units == "nS" and hasattr(model, "e_ex_mV"):
            v_ref = px.v_ref_mV if px.v_ref_mV is not None else model.e_l_mV
            return np.abs(w) * abs(_reversal(model, sign) - v_ref)     # nS mV = pA
        raise ModelError(f"CurrentProxy: weights onto {model.type!r} ({names[y]!r}) are in "
                         f"{units or 'unknown units'}, not a current")

    classes = _synapse_classes(solver, {names.index(p) for p in pops}, value)
    cols = gain if gain.size == n_el else np.full(n_el, gain[0])
    for c in classes:
        t = tau(c.target, c.sign)
        if c.sign > 0:
            L = delay_steps + int(math.ceil(30.0 * t / dt_ms)) + 1
            m = np.arange(L) - delay_steps
            h = np.where(m >= 0, np.exp(-np.maximum(m, 0) * dt_ms / t), 0.0)
        else:
            L = int(math.ceil(30.0 * t / dt_ms)) + 1
            h = -px.alpha * np.exp(-np.arange(L) * dt_ms / t)
        c.kernel = h[:, None] * cols[None, :]
    return _SpikeFilter(solver, classes, n_el, period_ticks, "CurrentProxy")


register_extracellular("point_network", _extracellular_factory)
register_dipoles("point_network", _dipole_factory)
