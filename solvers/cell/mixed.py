"""Several populations of detailed cells, of different morphologies and mechanisms, in one solver.

:class:`CellGroups` holds named groups, each a :class:`~.population.CellPopulation` (its
morphology, number of cells, positions, rotations, mechanisms, synapses, clamps). Each group is
built and advanced by its own population solver, vectorised across its cells as when it runs
alone; this module only splits the inputs by group and joins the outputs, so a group gives
bit for bit what the same CellPopulation gives as a solver of its own (tests/test_cell_mixed.py).

Channel map (groups in the order of the ``groups`` dict; :meth:`CellGroups.channel_map`):

- cells: group g's cells are channels [c_g, c_g + n_g) of ``spikes``, ``v_soma`` and
  ``i_inj``, with c_g the sum of n over the groups before it;
- synapses: group g's are channels [s_g, s_g + n_g * n_syn_g) of ``syn`` and ``rate``, inside
  which channel cell * n_syn_g + synapse is as in a CellPopulation; groups without synapses take
  no channels;
- segments (the probes): ``segment_geometry()`` and ``transmembrane_currents()`` put the groups'
  segments one after the other, each group cell-major, so that the whole is cell-major over the
  channels above; extracellular probes (LFP, ECoG, CSD by either method) and dipole probes
  (CurrentDipole, EEG, MEG; one dipole per cell, in cell-channel order) take a ``cell_groups``
  solver as they take a ``cell_population`` (registered below with probes.sources).

Randomness: group g's Poisson input draws from the stream of (run seed, 'solver', solver name,
'group', g), so a group's draws depend on its name, not on the order or number of the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.seeding import rng_for
from ...coordinator.signals import Port, Samples, Spikes, WindowResult
from ...coordinator.specs import SolverContext, SolverSpec
from ...coordinator.time import to_ticks
from ...coordinator.validation import fail, require_number
from ...probes import sources
from .mechanisms import Exp2Syn, IClamp, Insert
from .morphology import Morphology, cylinder
from .population import METHODS, CellPopulation, ball_and_stick_population


@dataclass(frozen=True, slots=True, kw_only=True)
class CellGroups(SolverSpec):
    """Named groups of detailed cells, each of one morphology and mechanism set, solved in one
    process (each group vectorised across its cells, as a CellPopulation is).

    Parameters
    ----------
    groups : {name: CellPopulation}, in channel order (see the module's channel map). Every
        group must have the same ``dt_ms`` and ``method``; everything else (morphology, n,
        positions, rotations, mechanisms, synapses, clamps, temperature, record_currents, ...)
        is the group's own
    dt_ms : the step (ms); None (default) takes the groups' common step, a number must equal it

    Ports
    -----
    spikes : out, spikes (n_cells,): every group's cells, group after group
    v_soma : out, analog (n_cells,) mV, every dt: each group's soma voltage
    syn : in, spikes (n_syn_channels,), when some group has synapses: group g's channels from
        its offset, channel = offset + cell * n_syn_g + synapse; the spike's weight its peak
        conductance (uS)
    rate : in, rate (n_syn_channels,) Hz, every dt: Poisson input onto the same synapses
    i_inj : in, analog (n_cells,) nA, every dt: current at each cell's soma(0.5)

    Example
    -------
    >>> from polyscale.solvers.cell import CellGroups, ball_and_stick_population
    >>> spec = CellGroups(groups={"bs": ball_and_stick_population(n=10, dend_nseg=49),
    ...                           "short": ball_and_stick_population(n=5, dend_nseg=9)})
    >>> spec.channel_map()["short"]
    {'cells': (10, 15), 'syn': (0, 0)}
    """

    type: ClassVar[str] = "cell_groups"
    level: ClassVar[str] = "I"
    nested: ClassVar = {"groups": CellPopulation}

    groups: dict
    dt_ms: float | None = None

    def __post_init__(self) -> None:
        g = self.groups
        if not isinstance(g, dict) or not g:
            raise fail(self, f"'groups' must be a non-empty dict of name -> CellPopulation "
                             f"(got {type(g).__name__}{'' if not isinstance(g, dict) else ' with no groups'})")
        for name, pop in g.items():
            if not isinstance(name, str) or not name or name == "type":
                raise fail(self, f"'groups': each name must be a non-empty string other than 'type' "
                                 f"(got {name!r})")
            if not isinstance(pop, CellPopulation):
                raise fail(self, f"'groups'[{name!r}] must be a CellPopulation (got {type(pop).__name__})")
        dts = {name: pop.dt_ms for name, pop in g.items()}
        first = next(iter(g))
        if len({to_ticks(d, f"cell_groups: groups[{n!r}].dt_ms") for n, d in dts.items()}) != 1:
            raise fail(self, "every group must have the same 'dt_ms' (got "
                             + ", ".join(f"{n}: {d!r}" for n, d in dts.items()) + ")")
        if self.dt_ms is None:
            object.__setattr__(self, "dt_ms", g[first].dt_ms)
        else:
            require_number(self, "dt_ms", positive=True)
            if to_ticks(self.dt_ms, "cell_groups: dt_ms") != to_ticks(g[first].dt_ms, "cell_groups: dt_ms"):
                raise fail(self, f"'dt_ms' must equal the groups' step {g[first].dt_ms!r} ms (got {self.dt_ms!r}); "
                                 f"leave it None to take theirs")
        methods = {name: pop.method for name, pop in g.items()}
        if len(set(methods.values())) != 1:
            raise fail(self, "every group must have the same 'method' (one of "
                             f"{', '.join(map(repr, METHODS))}; got "
                             + ", ".join(f"{n}: {m!r}" for n, m in methods.items()) + ")")

    @classmethod
    def example(cls) -> "CellGroups":
        tree = Morphology(sections=(
            cylinder("soma", 20.0, 20.0, kind="soma", nseg=1),
            cylinder("a", 200.0, 2.0, kind="dend", parent="soma", nseg=5),
            cylinder("b", 150.0, 1.5, kind="dend", parent="soma", nseg=3)))
        fork = CellPopulation(morphology=tree, n=1, positions_um=((0.0, 50.0, 0.0),),
                              mechanisms=(Insert(mechanism="hh", where="soma"), Insert(mechanism="pas", where="dend")),
                              iclamps=(IClamp(section="soma", x=0.5, delay_ms=1.0, dur_ms=5.0, amp_nA=0.3),))
        return cls(groups={"bs": ball_and_stick_population(n=2, dend_nseg=11, synapses=(Exp2Syn(section="dend", x=0.5),)),
                           "fork": fork})

    @property
    def n_cells(self) -> int:
        return sum(pop.n for pop in self.groups.values())

    @property
    def n_syn_channels(self) -> int:
        return sum(pop.n * len(pop.synapses) for pop in self.groups.values())

    def channel_map(self) -> dict[str, dict[str, tuple[int, int]]]:
        """{group: {'cells': (lo, hi), 'syn': (lo, hi)}}: the group's channels [lo, hi) of the
        cell ports (spikes, v_soma, i_inj) and of the synapse ports (syn, rate)."""
        out, c, s = {}, 0, 0
        for name, pop in self.groups.items():
            k = pop.n * len(pop.synapses)
            out[name] = {"cells": (c, c + pop.n), "syn": (s, s + k)}
            c, s = c + pop.n, s + k
        return out

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "cell_groups: dt_ms")
        n, k = self.n_cells, self.n_syn_channels
        out = {"spikes": Port("spikes", "out", n, "", None, "each group's spikes at its soma; channels group after group"),
               "v_soma": Port("analog", "out", n, "mV", p, "each group's soma voltage at the start of each step")}
        if k:
            out["syn"] = Port("spikes", "in", k, "uS", None,
                              "spikes onto synapses; channel = group offset + cell * n_syn + synapse; weight uS")
            out["rate"] = Port("rate", "in", k, "Hz", p, "Poisson input onto synapses; channels as 'syn'")
        out["i_inj"] = Port("analog", "in", n, "nA", p, "current injected at each cell's soma(0.5)")
        return out

    def build(self, ctx: SolverContext | None) -> "CellGroupsSolver":
        """The live solver; each group's Poisson input draws from its own named stream (run seed
        0 and solver name 'cell_groups' without ctx)."""
        return CellGroupsSolver(self, ctx)


class CellGroupsSolver:
    """The live groups: one population solver per group (``solvers``), inputs split and outputs
    joined along the channel map."""

    def __init__(self, spec: CellGroups, ctx: SolverContext | None):
        self.spec = spec
        seed, name = (0, "cell_groups") if ctx is None else (ctx.seed, ctx.name)
        self.solvers = {}
        for g, pop in spec.groups.items():
            sub = SolverContext(name=f"{name}/{g}", seed=seed, rng=rng_for(seed, "solver", name, "group", g))
            self.solvers[g] = pop.build(sub)
        self.dt_ticks = to_ticks(spec.dt_ms, "cell_groups: dt_ms")
        cmap = spec.channel_map()
        self.cells = {g: cmap[g]["cells"] for g in cmap}
        self.syn = {g: cmap[g]["syn"] for g in cmap}
        self.n_cells = spec.n_cells
        self.n_syn_channels = spec.n_syn_channels

    @property
    def n_spikes(self) -> int:
        return sum(s.n_spikes for s in self.solvers.values())

    @property
    def n_rate_events(self) -> int:
        return sum(s.n_rate_events for s in self.solvers.values())

    def _split(self, inputs) -> dict[str, dict]:
        per = {g: {} for g in self.solvers}
        syn = inputs.get("syn")
        if syn is not None and len(syn):
            k = self.n_syn_channels
            if syn.ids.min() < 0 or syn.ids.max() >= k:
                raise ModelError(f"cell_groups: 'syn' spike channel out of range 0..{k - 1}")
            for g, (lo, hi) in self.syn.items():
                m = (syn.ids >= lo) & (syn.ids < hi)
                if m.any():
                    per[g]["syn"] = Spikes(syn.ticks[m], syn.ids[m] - lo,
                                           None if syn.weights is None else syn.weights[m])
        rate = inputs.get("rate")
        if rate is not None:
            for g, (lo, hi) in self.syn.items():
                if hi > lo:
                    per[g]["rate"] = Samples(rate.t0, rate.period, rate.data[:, lo:hi])
        inj = inputs.get("i_inj")
        if inj is not None:
            for g, (lo, hi) in self.cells.items():
                per[g]["i_inj"] = Samples(inj.t0, inj.period, inj.data[:, lo:hi])
        return per

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        per = self._split(inputs)
        ticks, ids, vs = [], [], []
        for g, s in self.solvers.items():
            out = s.advance(t0, t1, per[g]).outputs
            sp = out["spikes"]
            ticks.append(sp.ticks)
            ids.append(sp.ids + self.cells[g][0])
            vs.append(out["v_soma"].data)
        ticks, ids = np.concatenate(ticks), np.concatenate(ids)
        order = np.lexsort((ids, ticks))
        return WindowResult(outputs={"spikes": Spikes(ticks[order], ids[order]),
                                     "v_soma": Samples(t0, self.dt_ticks, np.hstack(vs))})

    # --- what the probes call -------------------------------------------------------------
    def segment_geometry(self) -> dict[str, np.ndarray]:
        """Every segment of every cell after placement, group after group, each cell-major:
        start_um, end_um (S_total, 3), diam_um, area_um2 (S_total,), cell (S_total,) the cell's
        channel (as in ``spikes``), group (S_total,) the group's index in ``groups``."""
        parts = []
        for i, (g, s) in enumerate(self.solvers.items()):
            geo = s.segment_geometry()
            geo["cell"] = geo["cell"] + self.cells[g][0]
            geo["group"] = np.full(len(geo["diam_um"]), i, dtype=np.int64)
            parts.append(geo)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _need_currents(self, what: str) -> None:
        off = [g for g, s in self.solvers.items() if not s.spec.record_currents]
        if off:
            raise ModelError(f"cell_groups: {what} need record_currents=True on every group "
                             f"(off in: {', '.join(map(repr, off))})")

    def transmembrane_currents(self) -> np.ndarray:
        """(n_steps, S_total) nA of the last window, columns as the rows of segment_geometry;
        each group's as CellPopulation's (needs record_currents=True on every group)."""
        self._need_currents("transmembrane currents")
        return np.hstack([s.transmembrane_currents() for s in self.solvers.values()])

    def electrode_currents(self) -> np.ndarray:
        """(n_steps, S_total) nA injected by current clamps in the last window."""
        self._need_currents("electrode currents")
        return np.hstack([s.electrode_currents() for s in self.solvers.values()])

    def matrix_part(self, M: np.ndarray, period_ticks: int):
        """``part(t0, t1, result) -> (n_samples, n_out)``: M (n_out, S_total), whose columns are
        the rows of segment_geometry, times the transmembrane currents of the step ending at each
        sample: the sum over groups of each group's columns, as sources.cell_matrix_part does for
        one population (what CSD's 'delta' method calls)."""
        self._need_currents("segment-current probes")
        parts, lo = [], 0
        for s in self.solvers.values():
            S = s.segment_geometry()["diam_um"].shape[0]
            parts.append(sources.cell_matrix_part(s, np.ascontiguousarray(M[:, lo:lo + S]), period_ticks))
            lo += S

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            out = parts[0](t0, t1, result)
            for p in parts[1:]:
                out = out + p(t0, t1, result)   # never in place: a part may hand out its memo
            return out
        return part

    def state(self) -> dict[str, np.ndarray]:
        """Each group's state arrays, keyed 'group.name' (shapes differ between groups)."""
        return {f"{g}.{k}": v for g, s in self.solvers.items() for k, v in s.state().items()}

    def close(self) -> None:
        for s in self.solvers.values():
            s.close()


# --- probes: each group's part from the cell_population sources, joined --------------------------
def _no_model(model) -> None:
    if model is not None:
        raise ModelError(f"cell_groups: takes no source model (got {type(model).__name__}); its "
                         f"currents come from the cable equation")


def _groups_extracellular(solver, ports, model, electrodes_um, sigma, method, min_distance_um, period_ticks):
    """Extracellular potential (mV): the sum over groups of each group's part, computed as for a
    cell_population of that group (one matrix per group, built once)."""
    _no_model(model)
    solver._need_currents("extracellular probes")
    parts = [sources.cell_extracellular(s, None, None, electrodes_um, sigma, method, min_distance_um,
                                        period_ticks) for s in solver.solvers.values()]

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        out = parts[0](t0, t1, result)
        for p in parts[1:]:
            out = out + p(t0, t1, result)   # never in place: a part may hand out its memo
        return out
    return part


def _groups_dipoles(solver, ports, model, period_ticks):
    """One dipole per cell (nA um), group after group, each as for a cell_population."""
    _no_model(model)
    solver._need_currents("dipole probes")
    got = [sources.cell_dipoles(s, None, None, period_ticks) for s in solver.solvers.values()]
    pos = np.concatenate([p for p, _ in got])
    parts = [f for _, f in got]

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        return np.concatenate([f(t0, t1, result) for f in parts], axis=1)
    return pos, part


sources.register_extracellular("cell_groups", _groups_extracellular)
sources.register_dipoles("cell_groups", _groups_dipoles)
