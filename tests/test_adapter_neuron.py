"""NeuronCells: cells built and run by NEURON itself, behind the ports of the built-in cable solver.

References: ../shared/reference/cell and ../shared/reference/probes (NEURON 9.0.2 outputs,
through the ``reference`` fixture) and polyscale's CellPopulation, whose agreement with NEURON
is tested in tests/test_cell_population.py. The cells come from the plain-NEURON builder in
examples/neuron_lfp.py. Tests that need NEURON skip with a reason where it is not installed.
"""
import importlib.util
import sys

import numpy as np
import pytest

import polyscale as ps
from polyscale.adapters.neuron import NeuronCells
from polyscale.coordinator.signals import Samples, Spikes
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell import Exp2Syn, IClamp, ball_and_stick_population

DT_TICKS = 25_000   # 0.025 ms


@pytest.fixture(scope="module")
def neuron_h():
    pytest.importorskip("neuron", reason="NEURON is not installed: pip install 'polyscale[neuron]'")


@pytest.fixture(scope="module")
def builder(examples_dir):
    return f"{examples_dir / 'neuron_lfp.py'}:ball_and_stick_cells"


def cells(builder, n=1, **params):
    return NeuronCells(builder=builder, params={"n": n, **params}, n=n, synapses=("syn",))


def run_windows(solver, t_ms, window_ms=10.0, inputs=None):
    """Advance a live solver over [0, t_ms) in windows; v_soma (steps, n) and spikes."""
    vs, ticks, ids = [], [], []
    w = int(round(window_ms * TICKS_PER_MS))
    for t0 in range(0, int(round(t_ms * TICKS_PER_MS)), w):
        r = solver.advance(t0, t0 + w, inputs(t0, t0 + w) if inputs else {})
        vs.append(r.outputs["v_soma"].data)
        ticks.append(r.outputs["spikes"].ticks)
        ids.append(r.outputs["spikes"].ids)
    return np.concatenate(vs), np.concatenate(ticks) / TICKS_PER_MS, np.concatenate(ids)


# ---------------------------------------------------------------- the spec, without NEURON

def test_spec_checks_name_the_field_and_what_is_allowed():
    with pytest.raises(ps.ModelError, match=r"neuron_cells: 'builder': must be 'package.module:function'"):
        NeuronCells(builder="cells.make")
    with pytest.raises(ps.ModelError, match=r"'n' must be an integer >= 1 \(got 0\)"):
        NeuronCells(builder="m:f", n=0)
    with pytest.raises(ps.ModelError, match=r"'synapses' names one twice"):
        NeuronCells(builder="m:f", synapses=("syn", "syn"))
    with pytest.raises(ps.ModelError, match=r"'dt_ms' must be a finite number > 0"):
        NeuronCells(builder="m:f", dt_ms=0.0)


def test_ports_mirror_the_cable_solvers():
    ours = NeuronCells(builder="m:f", n=3, synapses=("a", "b")).ports()
    builtin = ball_and_stick_population(n=3, synapses=(Exp2Syn(section="dend"), Exp2Syn(section="dend"))).ports()
    for name in ("spikes", "v_soma", "syn", "rate", "i_inj"):
        assert ours[name] == builtin[name].__class__(**{**builtin[name].to_dict(), "doc": ours[name].doc}), name


def test_every_row_of_the_unit_tables_goes_there_and_back():
    """NEURON's units are polyscale's (ms, mV, nA, uS, um): each row maps to NEURON's name with
    factor 1 and back to ours."""
    from polyscale.adapters.neuron import GLOBALS, PORT_UNITS
    for table in (GLOBALS, PORT_UNITS):
        for row in table:
            assert row.factor == 1.0
            there = table.to_external({row.ours: 0.7})
            assert there == {row.theirs: 0.7} and table.from_external(there) == {row.ours: 0.7}
    assert set(GLOBALS.ours()) <= set(NeuronCells.__dataclass_fields__)


def test_missing_neuron_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "neuron", None)     # import fails as if not installed
    with pytest.raises(ps.ModelError, match=r"pip install 'polyscale\[neuron\]'"):
        NeuronCells(builder="m:f").build(None)


def test_the_module_imports_without_neuron():
    """ps.adapters.neuron and its spec work where NEURON is not installed (a fresh interpreter
    that cannot import it); the error comes when the solver is built."""
    import subprocess
    code = ("import sys; sys.modules['neuron'] = None\n"
            "import polyscale as ps\n"
            "spec = ps.adapters.neuron.NeuronCells(builder='m:f', n=2, synapses=('syn',))\n"
            "assert spec.ports()['syn'].size == 2\n"
            "try:\n    spec.build(None)\nexcept ps.ModelError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'polyscale[neuron]'" in out.stdout


# ---------------------------------------------------------------- against NEURON's own runs

def test_windowed_run_is_neurons_reference_run(neuron_h, builder, reference):
    """The reference protocol (IClamp 0.5 nA, 10-60 ms at soma(0.5)) in ten 10 ms windows is
    NEURON's single continuerun: the same program and arithmetic, so to 1e-9 mV; spikes are the
    reference's interpolated crossings (11.3283 and 25.0082 ms, table hh) to 1e-4 ms (the tick
    rounding and NEURON's float sum of dts)."""
    s = cells(builder, iclamp=(10.0, 50.0, 0.5)).build(None)
    try:
        v, t, _ = run_windows(s, 100.0)
    finally:
        s.close()
    ref = np.load(reference / "cell" / "ballstick_iclamp_v_soma.npy")
    np.testing.assert_allclose(v[:, 0], ref[:4000], atol=1e-9)
    np.testing.assert_allclose(t, [11.3283, 25.0082], atol=1e-4)


def test_recordings_survive_cutting_back_and_growing_their_buffers(neuron_h, builder, reference, monkeypatch):
    """With room for 150 samples only, the 400-step windows grow the buffers and every window
    cuts them back: the trace and currents are still NEURON's reference ones (1e-9)."""
    import polyscale.adapters.neuron as mod
    monkeypatch.setattr(mod, "RECORD_CAPACITY", 150)
    spec = cells(builder, alpha_onsets_ms=(10.0, 40.0, 70.0)).replace(record_currents=True)
    s = spec.build(None)
    try:
        v, cur = [], []
        for w in range(10):
            r = s.advance(w * 10 * TICKS_PER_MS, (w + 1) * 10 * TICKS_PER_MS, {})
            v.append(r.outputs["v_soma"].data[:, 0])
            cur.append(s.transmembrane_currents())
    finally:
        s.close()
    ref = np.load(reference / "probes" / "lfp_ballstick_inputs.npz")
    want = ref["imem_nA"][:, 1:]
    assert np.abs(np.concatenate(cur).T - want).max() <= 1e-9 * np.abs(want).max()
    assert np.abs(np.concatenate(v) - ref["v_soma_mV"][:4000]).max() < 1e-9


def test_swapping_the_cable_solver_for_neuron_gives_the_same_soma_trace(neuron_h, builder, reference):
    """examples/ball_and_stick.py with CellPopulation, then with NeuronCells building the same
    cell (exact hh rates, usetable_hh = 0, as the built-in evaluates them): the built-in solver
    matches NEURON to 1e-6 mV (README, tests/test_cell_population.py), so the two runs agree to
    1e-5 mV and both are the reference's notable trace."""
    import importlib.util
    from pathlib import Path
    path = Path(builder.rpartition(":")[0]).parent / "ball_and_stick.py"
    spec = importlib.util.spec_from_file_location("ball_and_stick_example", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    m = ex.build()
    a = ps.run(m)
    m.solvers["cell"] = cells(builder, hh_table=False, iclamp=(10.0, 50.0, 0.5))
    b = ps.run(m)
    va, vb = a.signal("cell", "v_soma").data, b.signal("cell", "v_soma").data
    assert va.shape == vb.shape == (4000, 1)
    assert np.abs(va - vb).max() < 1e-5
    ref = np.load(reference / "cell" / "ballstick_iclamp_notable_v_soma.npy")
    assert np.abs(vb[:, 0] - ref[:4000]).max() < 1e-9
    np.testing.assert_allclose(b.spikes("cell", "spikes").times, a.spikes("cell", "spikes").times, atol=2e-6)


def test_spikes_on_the_syn_port_arrive_after_the_coupling_delay(neuron_h, builder):
    """Spikes from a SpikeTrain through a 1.5 ms coupling onto the Exp2Syn at dend(0.8), cell 0
    (0.1 uS at 5.0 and 5.5 ms) and cell 1 (0.05 uS at 7.0 ms): each event is delivered at
    emission + delay, with the coupling's weight. The built-in solver with the same synapse
    (its Exp2Syn is tested against NEURON) gives the same soma traces within 1e-5 mV."""
    def model(solver):
        m = ps.Model(t_stop_ms=30.0)
        m.solver("drive", ps.solvers.SpikeTrain(times_ms=[5.0, 5.5, 7.0], ids=[0, 0, 1], size=2, dt_ms=0.025))
        m.solver("cells", solver)
        m.couple("drive.spikes[0]", "cells.syn[0]", delay_ms=1.5, weight=0.1)
        m.couple("drive.spikes[1]", "cells.syn[1]", delay_ms=1.5, weight=0.05)
        m.record("cells.v_soma")
        return ps.run(m).signal("cells", "v_soma").data

    ours = model(cells(builder, n=3, hh_table=False))
    builtin = model(ball_and_stick_population(n=3, synapses=(Exp2Syn(section="dend", x=0.8),)))
    assert np.abs(ours - builtin).max() < 1e-5
    # cell 2 gets nothing. The first event reaches cell 0 at 6.5 ms: NEURON delivers it at the
    # start of that step, where Exp2Syn's g = B - A is still 0, so v(6.525) is cell 2's and
    # v(6.55) is not; cell 1 likewise at 8.5 ms
    k0, k1 = int(round(6.5 / 0.025)), int(round(8.5 / 0.025))
    np.testing.assert_array_equal(ours[:k0 + 2, 0], ours[:k0 + 2, 2])
    np.testing.assert_array_equal(ours[:k1 + 2, 1], ours[:k1 + 2, 2])
    assert ours[k0 + 2, 0] > ours[k0 + 2, 2] and ours[k1 + 2, 1] > ours[k1 + 2, 2]
    assert (ours[k0:k0 + 40, 0] - ours[k0:k0 + 40, 2]).max() > 0.1        # a 1 ms EPSP rise


def test_poisson_rate_input_draws_the_built_in_solvers_events(neuron_h, builder):
    """The rate port draws its Poisson events as CellPopulation does (step-major counts from the
    solver's generator): with the same seed both get the same events, so the same soma traces
    (the built-in solver's tolerance against NEURON, 1e-5 mV), in ten 10 ms windows; a cell
    with no input stays at the others' rest."""
    from polyscale.coordinator.specs import SolverContext
    rate = np.zeros((4000, 3))
    rate[:, 0], rate[:, 1] = 300.0, 100.0          # cells 0 and 1; cell 2 none

    def run(spec):
        s = spec.build(SolverContext("cells", 7, np.random.default_rng(11)))
        try:
            v = np.concatenate([s.advance(w * 10 * TICKS_PER_MS, (w + 1) * 10 * TICKS_PER_MS,
                                          {"rate": Samples(w * 10 * TICKS_PER_MS, DT_TICKS, rate[w * 400:(w + 1) * 400])}
                                          ).outputs["v_soma"].data for w in range(10)])
            return v, s.n_rate_events
        finally:
            getattr(s, "close", lambda: None)()

    ours, n_ours = run(cells(builder, n=3, hh_table=False).replace(rate_weight_uS=0.004))
    builtin, n_builtin = run(ball_and_stick_population(n=3, synapses=(Exp2Syn(section="dend", x=0.8),)
                                                      ).replace(rate_weight_uS=0.004))
    # 300 + 100 Hz for 0.1 s: ~40 events (Poisson; 4 standard errors either side)
    assert n_ours == n_builtin and 15 <= n_ours <= 65
    assert np.abs(ours - builtin).max() < 1e-5
    assert ours[:, 0].max() > ours[:, 2].max() + 0.5


def test_current_on_the_i_inj_port_is_the_reference_clamp(neuron_h, builder, reference):
    """0.5 nA from 10 to 60 ms through the i_inj port, held over each step, is NEURON's IClamp
    of the reference (the clamp is on for the steps that start in [10, 60) ms): the notable
    reference trace within 1e-9 mV. The windows without current run by continuerun, the others
    step by step: the trace does not show where that changes."""
    s = cells(builder, hh_table=False).build(None)

    def inputs(t0, t1):
        t = (t0 + DT_TICKS * np.arange((t1 - t0) // DT_TICKS)) / TICKS_PER_MS
        amp = np.where((t >= 10.0 - 1e-9) & (t < 60.0 - 1e-9), 0.5, 0.0)[:, None]
        return {"i_inj": Samples(t0, DT_TICKS, amp)}

    try:
        v, t, _ = run_windows(s, 100.0, inputs=inputs)
    finally:
        s.close()
    ref = np.load(reference / "cell" / "ballstick_iclamp_notable_v_soma.npy")
    assert np.abs(v[:, 0] - ref[:4000]).max() < 1e-9
    np.testing.assert_allclose(t, [11.3288, 25.0329], atol=1e-4)


def test_transmembrane_currents_and_geometry_are_lfpykits_inputs(neuron_h, builder, reference):
    """The synapse-driven cell of ../shared/reference/probes (AlphaSynapses at dend(0.8), onsets
    10/40/70 ms, NEURON's hh tables): i_membrane_ per segment (reference column k + 1 is the
    current over our step k), end points, diameters and areas as LFPykit read them from NEURON.
    Same program: 1e-9 relative; each step's currents sum to zero (no electrode)."""
    ref = np.load(reference / "probes" / "lfp_ballstick_inputs.npz")
    spec = cells(builder, alpha_onsets_ms=(10.0, 40.0, 70.0)).replace(record_currents=True)
    s = spec.build(None)
    try:
        cur = []
        for w in range(10):
            s.advance(w * 10 * TICKS_PER_MS, (w + 1) * 10 * TICKS_PER_MS, {})
            cur.append(s.transmembrane_currents())
        geo = s.segment_geometry()
    finally:
        s.close()
    cur = np.concatenate(cur).T
    want = ref["imem_nA"][:, 1:]
    assert cur.shape == want.shape == (102, 4000)
    assert np.abs(cur - want).max() <= 1e-9 * np.abs(want).max()
    assert np.abs(cur.sum(axis=0)).max() < 1e-9 * np.abs(want).max()
    for k, axis in enumerate("xyz"):
        np.testing.assert_allclose(geo["start_um"][:, k], ref[f"seg_{axis}_um"][:, 0], atol=1e-9)
        np.testing.assert_allclose(geo["end_um"][:, k], ref[f"seg_{axis}_um"][:, 1], atol=1e-9)
    np.testing.assert_allclose(geo["diam_um"], ref["seg_d_um"], rtol=1e-12)
    np.testing.assert_allclose(geo["area_um2"], ref["seg_area_um2"], rtol=1e-12)
    # the shapes of the built-in solver's, so the probes read both alike
    builtin = ball_and_stick_population().build(None).segment_geometry()
    assert {k: v.shape for k, v in geo.items()} == {k: v.shape for k, v in builtin.items()}


# ---------------------------------------------------------------- one hoc per process; transports

def test_a_second_solver_in_the_same_process_is_refused(neuron_h, builder):
    a = cells(builder).build(None)
    try:
        with pytest.raises(ps.ModelError, match=r"global to a process.*transport=.zmq."):
            cells(builder).build(None)
    finally:
        a.close()
    cells(builder).build(None).close()       # once closed, the process is free again


def test_two_neuron_solvers_need_a_process_each(neuron_h, builder):
    """Two NeuronCells in one model: inproc refuses with a message that names zmq; on zmq each
    gets its own worker and both run as they do alone (cell b driven by a's spikes)."""
    def model():
        m = ps.Model(seed=2, t_stop_ms=40.0)
        m.solver("a", cells(builder, iclamp=(5.0, 30.0, 0.5)))
        m.solver("b", cells(builder))
        m.couple("a.spikes", "b.syn", delay_ms=1.0, weight=0.2)
        m.record("a.spikes")
        m.record("b.v_soma")
        return m

    with pytest.raises(ps.PolyscaleError, match=r"global to a process.*transport='zmq'"):
        ps.run(model())
    run = ps.run(model(), transport="zmq")
    a_spikes = run.spikes("a", "spikes").times
    assert len(a_spikes) >= 1
    v = run.signal("b", "v_soma").data[:, 0]
    k = int(round((a_spikes[0] + 1.0) / 0.025))      # b hears a's first spike 1 ms later
    assert np.ptp(v[:k - 1]) < 0.05 < np.ptp(v[k:])


def test_builder_errors_are_clear(neuron_h, builder):
    with pytest.raises(ps.ModelError, match=r"made 2 cells but n is 3"):
        NeuronCells(builder=builder, params={"n": 2}, n=3).build(None)
    with pytest.raises(ps.ModelError, match=r"cell 0 has no synapse 'ampa'"):
        NeuronCells(builder=builder, synapses=("ampa",)).build(None)
    with pytest.raises(ps.ModelError, match=r"has no callable 'nothing'"):
        NeuronCells(builder=builder.rpartition(":")[0] + ":nothing").build(None)


def test_a_builder_that_sets_another_dt_is_refused(neuron_h, tmp_path):
    (tmp_path / "dt.py").write_text(
        "from neuron import h\n"
        "def make():\n"
        "    h.dt = 0.01\n"
        "    s = h.Section(name='soma')\n"
        "    return [{'soma': s}]\n")
    with pytest.raises(ps.ModelError, match=r"set h.dt = 0.01 ms but dt_ms is 0.025 ms"):
        NeuronCells(builder=f"{tmp_path / 'dt.py'}:make").build(None)
    # the same cell at NEURON's 0.01 ms runs, windows of whole steps
    s = NeuronCells(builder=f"{tmp_path / 'dt.py'}:make", dt_ms=0.01).build(None)
    try:
        r = s.advance(0, TICKS_PER_MS, {})
        assert r.outputs["v_soma"].data.shape == (100, 1)
    finally:
        s.close()


def test_mixed_run_on_zmq_is_the_inproc_run(neuron_h, builder):
    """NEURON cells in their worker driven by a built-in SpikeTrain in another: the same
    recordings, bit for bit, on inproc and zmq."""
    def model():
        m = ps.Model(seed=3, t_stop_ms=40.0)
        m.solver("drive", ps.solvers.SpikeTrain(times_ms=[2.0, 2.1, 2.2, 9.0], ids=[0, 0, 0, 1], size=2, dt_ms=0.025))
        m.solver("cells", cells(builder, n=2))
        m.couple("drive.spikes", "cells.syn", delay_ms=1.0, weight=0.1)
        m.record("cells.v_soma")
        m.record("cells.spikes")
        return m

    a, b = ps.run(model(), transport="inproc"), ps.run(model(), transport="zmq")
    np.testing.assert_array_equal(a.signal("cells", "v_soma").data, b.signal("cells", "v_soma").data)
    np.testing.assert_array_equal(a.spikes("cells", "spikes").times, b.spikes("cells", "spikes").times)
    assert len(a.spikes("cells", "spikes").times) >= 1


def test_lfp_and_dipole_probes_on_neuron_cells_are_lfpykits(neuron_h, builder, reference):
    """The probes that read the built-in cable solver, on NeuronCells (the factories registered
    for 'neuron_cells' in probes/sources.py), in a full run of the synapse-driven reference
    cell: LFPykit's line-source, point-source and root-as-point potentials at its 27 electrodes
    and its current dipole moment. The probes' sample at t holds the currents of the step ending
    at t, as NEURON records i_membrane_, so row k is the reference's column k. Same currents,
    same geometry: 1e-9 of each signal's peak (LFPykit's matrices, our own)."""
    from polyscale.probes.extracellular import LFP
    from polyscale.probes.head import CurrentDipole
    lfp = np.load(reference / "probes" / "lfp_ballstick_lfp.npz")
    dip = np.load(reference / "probes" / "lfp_ballstick_dipole.npz")["P_nA_um"]
    el = np.c_[lfp["elec_x_um"], lfp["elec_y_um"], lfp["elec_z_um"]]
    m = ps.Model(seed=1, t_stop_ms=100.0, window_ms=1.0)
    m.solver("cell", cells(builder, alpha_onsets_ms=(10.0, 40.0, 70.0)).replace(record_currents=True))
    methods = (("line", "linesource"), ("point", "pointsource"), ("root_as_point", "root_as_point"))
    for meth, _ in methods:
        m.probe(f"lfp_{meth}", LFP(of="cell", electrodes_um=el, method=meth))
    m.probe("cdm", CurrentDipole(of="cell"))
    run = ps.run(m)
    for meth, key in methods:
        got, want = run.probe(f"lfp_{meth}").data, lfp[f"V_{key}_mV"].T[:4000]
        assert got.shape == want.shape == (4000, 27)
        assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max(), meth
    got, want = run.probe("cdm").data, dip.T[:4000]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()


def test_the_lfp_example_runs(neuron_h, examples_dir):
    """examples/neuron_lfp.py at a small scale: NEURON cells driven by Poisson spikes, with the
    LFP probe on a 15-contact laminar electrode, every step, in mV."""
    spec = importlib.util.spec_from_file_location("neuron_lfp_example", examples_dir / "neuron_lfp.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    run = ps.run(ex.build(n_cells=3, t_stop_ms=30.0))
    lfp = run.probe("lfp")
    assert lfp.units == "mV" and lfp.data.shape == (1200, 15) and np.isfinite(lfp.data).all()
    # synaptic input makes currents: the potential moves (by microvolts, 30 um from 3 cells)
    assert 1e-4 < np.ptp(lfp.data) < 1.0
    assert run.signal("cells", "v_soma").data.shape == (1200, 3)
