"""CellGroups: several populations of different morphologies and mechanisms in one solver.

The reference throughout is the same groups run as separate CellPopulation solvers (each
validated against NEURON and closed forms in tests/test_cell_population.py): CellGroups only
splits inputs and joins outputs, so spikes, soma voltages and the LFP must agree bit for bit,
and dipole-based probes to rounding.
"""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.seeding import rng_for
from polyscale.coordinator.signals import Samples, Spikes
from polyscale.coordinator.specs import SolverContext
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.probes import CSD, EEG, LFP, CurrentDipole
from polyscale.solvers.cell import (CellGroups, CellPopulation, Exp2Syn, IClamp, Insert, Morphology,
                                    ball_and_stick_population, cylinder)


#: cells and electrodes sit near the top of the four-sphere head's brain (radius 79 mm)
Z0 = 77_000.0


def _bs(**kw):
    """Group A: three ball-and-stick cells with two synapses each, placed apart."""
    syn = (Exp2Syn(section="dend", x=0.8, tau1_ms=0.5, tau2_ms=2.0, e_mV=0.0),
           Exp2Syn(section="soma", x=0.5, tau1_ms=1.0, tau2_ms=5.0, e_mV=-80.0))
    return ball_and_stick_population(n=3, dend_nseg=11, synapses=syn, record_currents=True,
                                     positions_um=((0, 0, Z0), (60, 0, Z0), (0, 60, Z0)), **kw)


def _fork(**kw):
    """Group B: two forked cells (another morphology, other mechanism parameters, a clamp that
    makes them fire, one synapse), rotated and placed elsewhere."""
    morph = Morphology(sections=(
        cylinder("soma", 15.0, 15.0, kind="soma", nseg=1),
        cylinder("apical", 300.0, 2.5, kind="dend", parent="soma", nseg=7),
        cylinder("basal", 120.0, 1.5, kind="dend", parent="soma", parent_x=0.0, nseg=3)))
    return CellPopulation(
        morphology=morph, n=2, positions_um=((-80, 0, Z0 + 20), (0, -90, Z0 - 10)),
        rotations_deg=((0, 0, 0), (30, 0, 45)),
        mechanisms=(Insert(mechanism="hh", where="soma", params={"gnabar_S_cm2": 0.14}),
                    Insert(mechanism="pas", where="dend", params={"g_S_cm2": 0.0005, "e_mV": -68.0})),
        iclamps=(IClamp(section="soma", x=0.5, delay_ms=4.0, dur_ms=20.0, amp_nA=0.4),),
        synapses=(Exp2Syn(section="apical", x=0.5, tau1_ms=0.3, tau2_ms=3.0, e_mV=0.0),),
        celsius=10.0, **{"record_currents": True, **kw})


EL = [(20.0, 30.0, Z0 + z) for z in (-50.0, 100.0, 300.0)]
SCALP = [(0.0, 0.0, 89_000.0), (30_000.0, 0.0, 84_000.0)]


def _model(mixed: bool) -> ps.Model:
    m = ps.Model(seed=3, t_stop_ms=30.0, window_ms=1.0)
    m.solver("drive", ps.solvers.SpikeTrain(times_ms=[2.0, 2.1, 3.0, 6.0, 7.5], ids=[0, 1, 2, 0, 3],
                                            size=4, dt_ms=0.025))
    a, b = ("cells", "cells") if mixed else ("a", "b")
    off = 6 if mixed else 0                            # group b's synapses follow a's 3 x 2
    if mixed:
        m.solver("cells", CellGroups(groups={"a": _bs(), "b": _fork()}))
    else:
        m.solver("a", _bs())
        m.solver("b", _fork())
    m.couple("drive.spikes[0]", f"{a}.syn[0]", delay_ms=1.0, weight=0.05)    # a: cell 0, dend
    m.couple("drive.spikes[1]", f"{a}.syn[3]", delay_ms=1.0, weight=0.02)    # a: cell 1, soma (inhibitory)
    m.couple("drive.spikes[2]", f"{a}.syn[4]", delay_ms=1.0, weight=0.1)     # a: cell 2, dend
    m.couple("drive.spikes[3]", f"{b}.syn[{off + 1}]", delay_ms=1.0, weight=0.01)   # b: cell 1
    of = "cells" if mixed else ("a", "b")
    m.probe("lfp", LFP(of=of, electrodes_um=EL))
    m.probe("csd", CSD(of=of, method="delta", r_um=150.0,
                       z_edges_um=[(Z0 - 100.0, Z0), (Z0, Z0 + 100.0), (Z0 + 100.0, Z0 + 300.0)]))
    m.probe("eeg", EEG(of=of, electrodes_um=SCALP))
    if mixed:
        m.probe("cdm", CurrentDipole(of="cells", per="source"))
    else:
        m.probe("cdm_a", CurrentDipole(of="a", per="source"))
        m.probe("cdm_b", CurrentDipole(of="b", per="source"))
    for s in ((a,) if mixed else (a, b)):
        m.record(f"{s}.spikes")
        m.record(f"{s}.v_soma")
    return m


def test_two_groups_equal_the_two_populations_as_separate_solvers(transport):
    """Same spikes, soma voltages, LFP and CSD ('delta') bit for bit as groups 'a' and 'b' run as two solvers;
    per-cell dipoles bit for bit; EEG to rounding (one lead-field product instead of two). The
    mixed run is also the same on every transport as in process."""
    sep = ps.run(_model(False), transport=transport)
    mix = ps.run(_model(True), transport=transport)
    v = mix.signal("cells", "v_soma").data
    np.testing.assert_array_equal(v[:, :3], sep.signal("a", "v_soma").data)
    np.testing.assert_array_equal(v[:, 3:], sep.signal("b", "v_soma").data)
    sa, sb, sm = sep.spikes("a", "spikes"), sep.spikes("b", "spikes"), mix.spikes("cells", "spikes")
    want = sorted([(t, i) for t, i in zip(sa.times.tolist(), sa.ids.tolist())]
                  + [(t, i + 3) for t, i in zip(sb.times.tolist(), sb.ids.tolist())])
    assert sorted(zip(sm.times.tolist(), sm.ids.tolist())) == want
    # the drive made both groups fire (else the comparison would be of resting cells)
    assert set(sa.ids.tolist()) >= {0, 2} and len(sb.times) > 0
    np.testing.assert_array_equal(mix.probe("lfp").data, sep.probe("lfp").data)
    np.testing.assert_array_equal(mix.probe("csd").data, sep.probe("csd").data)
    assert np.abs(mix.probe("csd").data).max() > 0
    np.testing.assert_array_equal(mix.probe("cdm").data,
                                  np.hstack([sep.probe("cdm_a").data, sep.probe("cdm_b").data]))
    e = sep.probe("eeg").data
    np.testing.assert_allclose(mix.probe("eeg").data, e, rtol=1e-10, atol=1e-12 * np.abs(e).max())
    assert np.abs(mix.probe("lfp").data).max() > 0
    if transport != "inproc":
        ref = ps.run(_model(True), transport="inproc")
        np.testing.assert_array_equal(v, ref.signal("cells", "v_soma").data)
        np.testing.assert_array_equal(mix.probe("lfp").data, ref.probe("lfp").data)


def _step_inputs(steps: int, n_syn: int, n_cells: int):
    rng = np.random.default_rng(7)
    # a different rate on every channel (and none on some), so a misrouted column shows
    rate = np.tile(20.0 * np.arange(n_syn, dtype=float), (steps, 1))
    rate[:, 1] = 0.0
    inj = 0.05 * rng.standard_normal((steps, n_cells))
    return rate, inj


def test_rate_and_current_inputs_split_by_the_channel_map_and_each_group_draws_its_own_stream():
    """rate and i_inj columns go to the groups by the channel map, and group g draws its Poisson
    input from the stream (seed, 'solver', name, 'group', g): a separate CellPopulation built on
    that stream, fed the same columns, gives the same voltages bit for bit; swapping the order of
    the groups changes nothing for either group."""
    spec = CellGroups(groups={"a": _bs(), "b": _fork()})
    cmap = spec.channel_map()
    assert cmap == {"a": {"cells": (0, 3), "syn": (0, 6)}, "b": {"cells": (3, 5), "syn": (6, 8)}}
    T = 20 * TICKS_PER_MS
    steps = T // 25_000
    rate, inj = _step_inputs(steps, 8, 5)
    ins = {"rate": Samples(0, 25_000, rate), "i_inj": Samples(0, 25_000, inj)}
    ctx = SolverContext(name="cells", seed=11, rng=rng_for(11, "solver", "cells"))
    mix = spec.build(ctx)
    out = mix.advance(0, T, ins)
    swapped = CellGroups(groups={"b": _fork(), "a": _bs()}).build(ctx)
    sw = swapped.advance(0, T, {"rate": Samples(0, 25_000, np.hstack([rate[:, 6:], rate[:, :6]])),
                                "i_inj": Samples(0, 25_000, np.hstack([inj[:, 3:], inj[:, :3]]))})
    np.testing.assert_array_equal(sw.outputs["v_soma"].data, np.hstack([out.outputs["v_soma"].data[:, 3:],
                                                                       out.outputs["v_soma"].data[:, :3]]))
    assert mix.n_rate_events > 0
    for g, pop in (("a", _bs()), ("b", _fork())):
        lo, hi = cmap[g]["syn"]
        c0, c1 = cmap[g]["cells"]
        alone = pop.build(SolverContext(name="x", seed=11, rng=rng_for(11, "solver", "cells", "group", g)))
        res = alone.advance(0, T, {"rate": Samples(0, 25_000, rate[:, lo:hi]),
                                   "i_inj": Samples(0, 25_000, inj[:, c0:c1])})
        np.testing.assert_array_equal(out.outputs["v_soma"].data[:, c0:c1], res.outputs["v_soma"].data)
        np.testing.assert_array_equal(mix.solvers[g].voltages(), alone.voltages())


def test_ports_sizes_and_plain_data():
    spec = CellGroups(groups={"a": _bs(), "b": _fork()})
    p = spec.ports()
    assert p["spikes"].size == p["v_soma"].size == p["i_inj"].size == 5
    assert p["syn"].size == p["rate"].size == 8 and p["v_soma"].units == "mV"
    assert p["v_soma"].period_ticks == _bs().ports()["v_soma"].period_ticks
    assert spec.dt_ms == 0.025
    assert CellGroups.from_dict(spec.to_dict()) == spec
    no_syn = CellGroups(groups={"x": ball_and_stick_population(n=2, dend_nseg=5)})
    assert "syn" not in no_syn.ports() and "rate" not in no_syn.ports()
    assert no_syn.channel_map() == {"x": {"cells": (0, 2), "syn": (0, 0)}}


def test_geometry_and_currents_join_group_after_group_cell_major():
    spec = CellGroups(groups={"a": _bs(), "b": _fork()})
    s = spec.build(None)
    s.advance(0, 2 * TICKS_PER_MS, {})
    g = s.segment_geometry()
    ga, gb = (s.solvers[k].segment_geometry() for k in ("a", "b"))
    np.testing.assert_array_equal(g["start_um"], np.vstack([ga["start_um"], gb["start_um"]]))
    np.testing.assert_array_equal(g["cell"], np.concatenate([ga["cell"], gb["cell"] + 3]))
    assert (np.diff(g["cell"]) >= 0).all() and g["group"].tolist() == [0] * 36 + [1] * 22
    i = s.transmembrane_currents()
    assert i.shape == (80, 58)
    np.testing.assert_array_equal(i[:, 36:], s.solvers["b"].transmembrane_currents())
    e = s.electrode_currents()
    # charge conservation per cell (the population's own check, on the joined array)
    per_cell = np.add.reduceat(i - e, np.searchsorted(g["cell"], np.arange(5)), axis=1)
    assert np.abs(per_cell).max() < 1e-9 * np.abs(i).max()


@pytest.mark.parametrize("groups, words", [
    ({}, "'groups' must be a non-empty dict"),
    ((("a", None),), "'groups' must be a non-empty dict"),
    ({"a": ball_and_stick_population(n=1, dend_nseg=5), "b": "cells"}, r"'groups'\['b'\] must be a CellPopulation"),
    ({"type": ball_and_stick_population(n=1, dend_nseg=5)}, "other than 'type'"),
    ({"a": ball_and_stick_population(n=1, dend_nseg=5),
      "b": ball_and_stick_population(n=1, dend_nseg=5, dt_ms=0.05)}, "same 'dt_ms'.*a: 0.025, b: 0.05"),
    ({"a": ball_and_stick_population(n=1, dend_nseg=5),
      "b": ball_and_stick_population(n=1, dend_nseg=5).replace(method="crank_nicolson")},
     "same 'method'.*b: 'crank_nicolson'"),
])
def test_bad_groups_are_named(groups, words):
    with pytest.raises(ModelError, match=words):
        CellGroups(groups=groups)


def test_a_step_other_than_the_groups_is_refused():
    with pytest.raises(ModelError, match=r"'dt_ms' must equal the groups' step 0.025 ms \(got 0.05\)"):
        CellGroups(groups={"a": ball_and_stick_population(n=1, dend_nseg=5)}, dt_ms=0.05)
    assert CellGroups(groups={"a": ball_and_stick_population(n=1, dend_nseg=5)}, dt_ms=0.025).dt_ms == 0.025


def test_out_of_range_synapse_channel_and_probes_without_currents_are_refused():
    s = CellGroups(groups={"a": _bs(), "b": _fork()}).build(None)
    with pytest.raises(ModelError, match=r"'syn' spike channel out of range 0\.\.7"):
        s.advance(0, TICKS_PER_MS, {"syn": Spikes(np.array([0]), np.array([8]), np.array([0.1]))})
    m = ps.Model(t_stop_ms=2.0)
    m.solver("cells", CellGroups(groups={"a": _bs(), "b": _fork(record_currents=False)}))
    m.probe("lfp", LFP(of="cells", electrodes_um=EL))
    with pytest.raises(ModelError, match=r"record_currents=True on every group \(off in: 'b'\)"):
        ps.run(m)


def test_mixed_cells_example_runs_and_both_groups_fire(examples_dir):
    """examples/mixed_cells.py: Poisson drive onto both groups through one rate port; both kinds
    of cell fire, every cell starts at v_init, and the electrode sees their currents."""
    from polyscale.coordinator.config import load_model
    run = ps.run(load_model(examples_dir / "mixed_cells.py", {"t_stop_ms": 40.0, "n_stick": 4, "n_fork": 2}))
    ids = run.spikes("cells", "spikes").ids
    assert (ids < 4).any() and (ids >= 4).any()
    v = run.signal("cells", "v_soma").data
    assert v.shape[1] == 6 and (v[0] == -65.0).all()
    lfp = run.probe("lfp").data
    assert np.isfinite(lfp).all() and np.abs(lfp).max() > 0
