"""Mechanism files (solvers/cell/mech/), the generated kernels, per-cell parameters, distance
profiles and the AMPA/NMDA/GABA-A synapses of the cell solver.

References: NEURON 9 running the .mod files of tests/data/mod (stored traces, made by
tests/data/cell_mech_reference.py, and a slow test that reruns NEURON live), closed forms, and
the hand-written pas/hh kernel. The first run compiles two generated kernels (tens of seconds);
later runs load them from the kernel cache.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Spikes
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell import mech as mech_pkg
from polyscale.solvers.cell._generated import generate
from polyscale.solvers.cell.mechanisms import AMPA, GABAA, NMDA, Distance, Exp2Syn, IClamp, Insert
from polyscale.solvers.cell.morphology import Morphology, cylinder
from polyscale.solvers.cell.population import CellPopulation, CellSolver, ball_and_stick_population

DATA = Path(__file__).parent / "data"


def _reference_module():
    spec = importlib.util.spec_from_file_location("cell_mech_reference", DATA / "cell_mech_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


REF = _reference_module()


def _compare(name: str, ours: dict, theirs: dict) -> None:
    """Same equations and discretisation as NEURON: what is left is rounding and the float32 the
    reference is stored in (~4e-6 mV at 100 mV), so the bounds are far inside the issue's 0.5 mV
    RMS / 0.1 ms: 1e-3 mV RMS, 0.01 mV at worst (steepest spike flanks), spike times to 1 us,
    cai to 1e-4 of its range."""
    v = ours["v_soma"][::REF.DECIMATE]
    ref_v = np.asarray(theirs["v_soma"], dtype=float)
    assert np.sqrt(np.mean((v - ref_v) ** 2)) < 1e-3, name
    assert np.abs(v - ref_v).max() < 1e-2, name
    if "v_dend" in theirs:
        ref_d = np.asarray(theirs["v_dend"], dtype=float)
        assert np.sqrt(np.mean((ours["v_dend"] - ref_d) ** 2)) < 1e-3, name
    ref_ca = np.asarray(theirs["cai"], dtype=float)
    assert ref_ca.max() > 2 * ref_ca.min()                 # calcium did accumulate
    assert np.abs(ours["cai"] - ref_ca).max() < 1e-4 * (ref_ca.max() - ref_ca.min()), name
    assert len(ours["spikes"]) == len(theirs["spikes"]) >= 1, name
    np.testing.assert_allclose(ours["spikes"], theirs["spikes"], atol=1e-3)


@pytest.mark.parametrize("name", sorted(REF.PROTOCOLS))
def test_protocol_matches_stored_neuron_traces(name):
    """hay_soma: Hay et al. (2011)'s full somatic channel set (Ca accumulating, eca by Nernst, SK
    adaptation); ih_ball_stick: hh soma, an exponential Ih gradient and a Ca hot zone placed by
    Distance profiles, and AMPA, NMDA (Mg block) and GABA-A synapses, against NEURON 9."""
    stored = np.load(DATA / "cell_mech_reference.npz")
    theirs = {k.split("/", 1)[1]: stored[k] for k in stored.files if k.startswith(name + "/")}
    _compare(name, REF.polyscale_run(name), theirs)


def _nrnivmodl_works() -> str | None:
    exe = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
    if not Path(exe).exists():
        return "nrnivmodl not found"
    if shutil.which("make") is None or (shutil.which("gcc") is None and shutil.which("cc") is None):
        return "nrnivmodl needs make and a C compiler"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REF.PROTOCOLS))
def test_protocol_matches_neuron_run_live(name, tmp_path):
    """The same, against NEURON run now on the .mod files (compiled with nrnivmodl). NEURON runs
    in a subprocess: its compiled mechanisms load once per process."""
    why = _nrnivmodl_works()
    if why:
        pytest.skip(why)
    pytest.importorskip("neuron")
    out = tmp_path / "ref.npz"
    code = (f"import sys, numpy as np; sys.path.insert(0, {str(DATA)!r}); import cell_mech_reference as r; "
            f"m = r.compile_mods(__import__('pathlib').Path({str(tmp_path)!r})); "
            f"d = r.neuron_run({name!r}, m); np.savez({str(out)!r}, **d)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=900, capture_output=True)
    d = dict(np.load(out))
    theirs = {k: (v[::REF.DECIMATE] if k in ("v_soma", "v_dend", "cai") else v) for k, v in d.items()}
    _compare(name, REF.polyscale_run(name), theirs)


@pytest.mark.slow
def test_every_gate_matches_neuron_over_the_whole_voltage_range(tmp_path):
    """Each Hay channel's init (steady state) and one advance step against NEURON on the .mod
    files, -120..60 mV every 0.5 mV plus the exact singular points the mods nudge v off (SK_E2:
    cai 1e-8..1e-2 mM, the 1e-7 mM branch included). The protocols only visit the voltages a
    trajectory passes; this covers the rest. Same formulas in double precision (our exp within
    1 ulp of NEURON's): init to 1e-12 relative, a step to 1e-14 (the states move by 1e-4..0.1
    in it, so a wrong rate shows); at the singular points, bounds from the formulas' own
    rounding there (see below)."""
    why = _nrnivmodl_works()
    if why:
        pytest.skip(why)
    pytest.importorskip("neuron")
    out = tmp_path / "gates.npz"
    code = (f"import sys, numpy as np; sys.path.insert(0, {str(DATA)!r}); import cell_mech_reference as r; "
            f"m = r.compile_mods(__import__('pathlib').Path({str(tmp_path)!r})); "
            f"v = np.unique(np.concatenate([np.arange(-120.0, 60.01, 0.5), r.SINGULAR_MV])); "
            f"ca = np.geomspace(1e-8, 1e-2, 61); "
            f"np.savez({str(out)!r}, v=v, ca=ca, **r.neuron_gate_steps(m, v, ca))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=900, capture_output=True)
    d = dict(np.load(out))
    mechs = {**{m: mech_pkg.get(m) for m in REF.GATED}, "SK_E2": mech_pkg.get("SK_E2")}
    for name, mech in mechs.items():
        pars, ns = list(mech.params.values()), len(mech.states)
        init, step = d[f"{name}/init"], d[f"{name}/step"]
        if name == "SK_E2":
            ek = -77.0                                  # reads ('ek', 'cai'): z does not use ek
            ours_init = [mech.init(-70.0, 34.0, *pars, ek, c) for c in d["ca"]]
            ours_step = [mech.advance(-70.0, REF.DT, 34.0, *r[1:1 + ns], *pars, ek, r[0]) for r in step]
        else:
            reads = [0.0] * len(mech.reads)             # ena / ek / eca: the gates do not use them
            ours_init = [mech.init(v, 34.0, *pars, *reads) for v in d["v"]]
            ours_step = [mech.advance(r[0], REF.DT, 34.0, *r[1:1 + ns], *pars, *reads) for r in step]
            assert np.abs(step[:, 0] - d["v"]).max() < 1e-6, name      # the step ran at the grid v
        # at the singular points the rates take x / (1 - exp(x / k)) at x ~ 1e-4 (the nudge):
        # one ulp of exp (ours, _fastexp, against NEURON's libm; either may be the nearer)
        # moves 1 - exp by 2e-16 / 2e-5 ~ 1e-11 relative: 1e-10 there (a wrong rate there, as
        # the pre-fix NaTa_t h rates at -38 mV, is off by ~1e-5; states are <= 1), 1e-12 and
        # 1e-14 elsewhere
        sing = np.isin(d["v"], REF.SINGULAR_MV) if name != "SK_E2" else np.zeros(len(init), bool)
        ours_init, ours_step = np.array(ours_init), np.array(ours_step)
        np.testing.assert_allclose(ours_init[~sing], init[~sing], rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(ours_init[sing], init[sing], rtol=1e-10, atol=0, err_msg=name)
        after, before = step[:, 1 + ns:], step[:, 1:1 + ns]
        assert np.abs(after - before).max() > 1e-4, name
        np.testing.assert_allclose(ours_step[~sing], after[~sing], rtol=0, atol=1e-14, err_msg=name)
        # NEURON's step ran at v_used, ~1e-8 mV off the singular point (v moves a little even
        # with cm 1e6): no nudge there, so 1 - exp(x / k) cancels to |v_used - v_s| / k and one
        # ulp of exp is 2e-16 k / |v_used - v_s| of the rate (k <= 11.9 mV in these mods) on
        # each side: the formula's own rounding, not a difference of equations (1e-14 / distance;
        # at v_s exactly the nudge makes the distance 1e-4 mV: 1e-10)
        if sing.any():
            vs = d["v"][sing]
            dist = np.where(step[sing, 0] == vs, 1e-4, np.abs(step[sing, 0] - vs))
            bound = 1e-14 + 1e-14 / dist
            assert (np.abs(ours_step[sing] - after[sing]) <= bound[:, None]).all(), (name, dist)


# --- the generated kernel against the hand-written one ------------------------------------------
def _clamped_ball_and_stick(n=2, **kw):
    return ball_and_stick_population(n=n, dend_nseg=11, iclamps=(IClamp(section="soma", delay_ms=1.0, dur_ms=15.0, amp_nA=0.3),), **kw)


def test_pas_and_hh_through_their_mechanism_files_equal_the_built_in_loops(monkeypatch):
    """The mechanism files of pas and hh (density x area in the generated kernel) against the
    kernel's own loops (conductances pre-multiplied by area): the same equations, so only the
    order of rounding differs; 1e-9 mV over 20 ms with spikes."""
    spec = _clamped_ball_and_stick()
    T = int(20 * TICKS_PER_MS)
    fast = spec.build(None)
    v_fast = fast.advance(0, T, {}).outputs["v_soma"].data
    monkeypatch.setattr(CellSolver, "_GENERIC_BUILTINS", True)
    gen = spec.build(None)
    assert [m.name for m in gen.mechs] == ["hh", "pas"]
    v_gen = gen.advance(0, T, {}).outputs["v_soma"].data
    assert v_fast.max() > 20.0                              # it spiked
    np.testing.assert_allclose(v_gen, v_fast, atol=1e-9, rtol=0)


def test_generated_source_splices_the_kernel_and_calls_each_mechanism():
    reg = mech_pkg.registry()
    src = generate((reg["CaDynamics_E2"], reg["SK_E2"]))
    assert "def cell_advance(" in src and "def mech_init(" in src
    # the kernel's block loop takes each block's view of the mechanisms' block-major arrays
    assert "m0_st = m0_st_all[blk]" in src and "m1_par = m1_par_all[blk]" in src
    assert "m1_current(" in src and "m0_advance(" in src and "m0_current(" not in src
    # the concentration is advanced before SK reads it (NEURON's nrn_state order for Hay's files)
    assert src.index("m0_advance(") < src.index("m1_advance(")
    compile(src, "generated", "exec")


# --- per-cell parameters and distance profiles --------------------------------------------------
def test_per_cell_parameters_equal_separate_populations():
    """hh's gnabar and the dendrite's pas conductance given per cell (three cells, one
    silenced) equal three one-cell populations with the scalar values: per-cell values go
    through the generated kernel, scalars through the built-in loops, so this also checks the
    two against each other (1e-9 mV). (hh and pas, as in the test above: the two share one
    generated kernel, one compile.)"""
    g = (0.12, 0.0, 0.08)
    g_pas = (0.001, 0.0012, 0.0008)
    base = _clamped_ball_and_stick(n=3)
    pas = base.mechanisms[1]
    assert pas.mechanism == "pas"

    def mechs(gna, gp):
        return (Insert(mechanism="hh", where="soma", params={"gnabar_S_cm2": gna}),
                pas.replace(params={**pas.params, "g_S_cm2": gp}))
    T = int(20 * TICKS_PER_MS)
    per_cell = base.replace(mechanisms=mechs(g, g_pas)).build(None)
    assert [m.name for m in per_cell.mechs] == ["hh", "pas"]
    v = per_cell.advance(0, T, {}).outputs["v_soma"].data
    for c, (gc, gpc) in enumerate(zip(g, g_pas)):
        one = base.replace(n=1, mechanisms=mechs(gc, gpc)).build(None)
        assert one.mechs == ()
        v1 = one.advance(0, T, {}).outputs["v_soma"].data[:, 0]
        np.testing.assert_allclose(v[:, c], v1, atol=1e-9, rtol=0)
    assert v[:, 0].max() > 20.0 and v[:, 1].max() < 0.0     # gnabar 0: no spike


def test_per_cell_parameter_of_the_wrong_length_names_field_value_and_rule():
    base = _clamped_ball_and_stick(n=3)
    with pytest.raises(ModelError, match=r"mechanisms\[0\].*'gnabar_S_cm2' has 2 values.*n = 3"):
        base.replace(mechanisms=(Insert(mechanism="hh", where="soma", params={"gnabar_S_cm2": (0.1, 0.2)}),))
    both = (Insert(mechanism="hh", where="soma"),
            Insert(mechanism="hh", where="soma", params={"gnabar_S_cm2": (0.1, 0.1, 0.1)}))
    with pytest.raises(ModelError, match=r"'hh' is placed on some sections both with per-cell values"):
        base.replace(mechanisms=both).build(None)
    with pytest.raises(ModelError, match=r"'gnabar_S_cm2' must be a finite number.*nan"):
        Insert(mechanism="hh", params={"gnabar_S_cm2": (0.1, float("nan"))})
    with pytest.raises(ModelError, match=r"no parameter 'gbar'"):
        Insert(mechanism="Ih", distribution=Distance(param="gbar"))
    with pytest.raises(ModelError, match=r"'kind' must be one of"):
        Distance(param="gIhbar_S_cm2", kind="sigmoid")
    with pytest.raises(ModelError, match=r"unknown parameter 'gbar'.*gIhbar_S_cm2"):
        Insert(mechanism="Ih", params={"gbar": 1.0})


def test_distance_profile_is_placed_at_each_segment_centre():
    """Ih on a 700 um dendrite (35 segments) after Hay et al. (2011): g(d) = gbar (-0.8696 +
    2.087 exp(d / 323 um)), d = 20 um (soma) + (j + 1/2) 20 um for segment j, computed here."""
    soma = cylinder("soma", 20.0, 20.0, kind="soma")
    dend = cylinder("dend", 700.0, 2.0, parent="soma", nseg=35, start=(0.0, 0.0, 20.0))
    prof = Distance(param="gIhbar_S_cm2", kind="exp", a=-0.8696, b=2.087, length_um=323.0)
    spec = CellPopulation(morphology=Morphology(sections=(soma, dend)), n=2,
                          mechanisms=(Insert(mechanism="Ih", where="dend", params={"gIhbar_S_cm2": (1e-4, 2e-4)},
                                             distribution=prof),))
    s = spec.build(None)
    d = 20.0 + (np.arange(35) + 0.5) * 20.0
    want = np.outer(-0.8696 + 2.087 * np.exp(d / 323.0), [1e-4, 2e-4])
    par = s.mech_params["Ih"]                              # (blocks, P, K, B) parameters
    got = np.concatenate(list(par[:, 0]), axis=1)[:, :2]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert Distance(param="x", kind="window", a=0.1, b=1.0, lo_um=10, hi_um=20).factor([5, 10, 20, 25]).tolist() == [0.1, 1, 1, 0.1]
    assert Distance(param="x", kind="linear", a=1.0, b=2.0, length_um=100).factor([50.0]).tolist() == [2.0]


# --- synapses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, tau1, tau2, e", [(AMPA, 0.2, 1.7, 0.0), (NMDA, 0.29, 43.0, 0.0),
                                                 (GABAA, 0.2, 8.0, -80.0)])
def test_synapse_conductance_is_the_normalised_dual_exponential(make, tau1, tau2, e):
    """g(t) = w (exp(-t/tau2) - exp(-t/tau1)) / (exp(-tp/tau2) - exp(-tp/tau1)), tp the peak
    time, for a spike of weight w at t = 0 (NEURON's Exp2Syn); the decay per step is exact, so
    the bound is rounding (1e-12 uS)."""
    syn = make(section="soma")
    assert (syn.tau1_ms, syn.tau2_ms, syn.e_mV) == (tau1, tau2, e)
    assert syn.mg_mM == (1.0 if make is NMDA else 0.0)
    spec = ball_and_stick_population(n=1, dend_nseg=5, synapses=(syn,))
    s = spec.build(None)
    w, dt = 0.002, spec.dt_ms
    s.advance(0, s.dt_ticks, {"syn": Spikes(np.array([0], np.int64), np.array([0], np.int64), np.array([w]))})
    tp = tau1 * tau2 / (tau2 - tau1) * math.log(tau2 / tau1)
    norm = math.exp(-tp / tau2) - math.exp(-tp / tau1)
    for k in range(1, 400):
        t = k * dt
        assert s.synaptic_conductances()[0, 0] == pytest.approx(w * (math.exp(-t / tau2) - math.exp(-t / tau1)) / norm, abs=1e-12)
        s.advance(k * s.dt_ticks, (k + 1) * s.dt_ticks, {})


def test_nmda_mg_block_follows_jahr_and_stevens():
    """One compartment, only an NMDA synapse and a leak: with the synapse's conductance g known in
    closed form, the first step's voltage change must be that of i = g B(v) (v - e), B = 1 / (1
    + exp(-0.062 v) [Mg] / 3.57): at -70 mV and 1 mM, B = 0.0445 (vs 1 without Mg)."""
    soma = cylinder("soma", 20.0, 20.0, kind="soma")
    dvs = {}
    for mg in (0.0, 1.0):
        spec = CellPopulation(morphology=Morphology(sections=(soma,)), v_init_mV=-70.0,
                              mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": 1e-9, "e_mV": -70.0}),),
                              synapses=(Exp2Syn(section="soma", tau1_ms=0.29, tau2_ms=43.0, mg_mM=mg),))
        s = spec.build(None)
        s.advance(0, s.dt_ticks, {"syn": Spikes(np.array([0], np.int64), np.array([0], np.int64), np.array([1e-3]))})
        v1 = s.voltages()[0, 0]
        s.advance(s.dt_ticks, 2 * s.dt_ticks, {})
        dvs[mg] = s.voltages()[0, 0] - v1
    b = 1.0 / (1.0 + math.exp(0.062 * 70.0) / 3.57)
    assert b == pytest.approx(0.0445, abs=1e-4)
    assert dvs[1.0] / dvs[0.0] == pytest.approx(b, rel=0.02)    # linearised step: first order


# --- per-cell synapse parameters ---------------------------------------------------------------
SYN_TAU1, SYN_TAU2, SYN_E = (0.2, 0.5, 1.0), (1.7, 5.0, 20.0), (0.0, -20.0, -80.0)
NMDA_MG = (0.0, 1.0, 2.0)


def _per_cell_syn_spec():
    """Three passive ball-and-sticks, an Exp2Syn and an NMDA synapse whose parameters differ per cell."""
    soma = cylinder("soma", 20.0, 20.0, kind="soma", start=(0.0, 0.0, -10.0))
    dend = cylinder("dend", 400.0, 2.0, kind="dend", start=(0.0, 0.0, 10.0), parent="soma", nseg=11)
    return CellPopulation(morphology=Morphology(sections=(soma, dend)), n=3, celsius=6.3, v_init_mV=-65.0,
                          mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": 1e-4, "e_mV": -65.0}),),
                          synapses=(Exp2Syn(section="dend", x=0.5, tau1_ms=SYN_TAU1, tau2_ms=SYN_TAU2, e_mV=SYN_E),
                                    NMDA(section="dend", x=0.8, mg_mM=NMDA_MG, e_mV=(0.0, 0.0, 10.0))))


def test_per_cell_synapse_conductance_is_each_cells_dual_exponential():
    """One spike of weight w onto the per-cell Exp2Syn of each cell: cell c's conductance is the
    normalised dual exponential with its own tau1, tau2 (closed form, rounding: 1e-12 uS)."""
    spec = _per_cell_syn_spec()
    s = spec.build(None)
    w = 0.002
    ids = np.array([0, 2, 4], np.int64)               # synapse 0 of cells 0, 1, 2
    s.advance(0, s.dt_ticks, {"syn": Spikes(np.zeros(3, np.int64), ids, np.full(3, w))})
    for k in range(1, 200):
        t = k * spec.dt_ms
        g = s.synaptic_conductances()[0]
        for c in range(3):
            t1, t2 = SYN_TAU1[c], SYN_TAU2[c]
            tp = t1 * t2 / (t2 - t1) * math.log(t2 / t1)
            want = w * (math.exp(-t / t2) - math.exp(-t / t1)) / (math.exp(-tp / t2) - math.exp(-tp / t1))
            assert g[c] == pytest.approx(want, abs=1e-12)
        s.advance(k * s.dt_ticks, (k + 1) * s.dt_ticks, {})


def test_per_cell_synapse_parameters_match_neuron():
    """The three cells against NEURON 9 (Exp2Syn built in, NMDA_Mg.mod of tests/data/mod compiled
    now), each built with its own tau1/tau2/e and [Mg], fed the same spikes: rounding-level
    agreement (1e-6 mV at worst over 60 ms); the cells differ from each other by millivolts."""
    if _nrnivmodl_works():
        pytest.skip(_nrnivmodl_works())
    pytest.importorskip("neuron")
    import tempfile
    times = (5.0, 7.0, 30.0)
    spec = _per_cell_syn_spec()
    s = spec.build(None)
    ev = [(t, c * 2 + j) for t in times for c in range(3) for j in range(2)]
    syn = Spikes(np.array([round(t * TICKS_PER_MS) for t, _ in ev], np.int64), np.array([i for _, i in ev], np.int64),
                 np.full(len(ev), 0.003))
    v = s.advance(0, int(60 * TICKS_PER_MS), {"syn": syn}).outputs["v_soma"].data
    code = f"""
import sys, numpy as np
from pathlib import Path
from neuron import h
d = Path(sys.argv[1])
h.nrn_load_dll(str(next(d.glob("*/.libs/libnrnmech.so"), None) or next(d.glob("*/libnrnmech.so"))))
h.load_file("stdrun.hoc")
h.celsius, h.dt, h.steps_per_ms, h.secondorder = 6.3, 0.025, 40.0, 0
out = []
for c in range(3):
    soma = h.Section(name="soma"); soma.L = soma.diam = 20.0
    dend = h.Section(name="dend"); dend.L, dend.diam, dend.nseg = 400.0, 2.0, 11
    dend.connect(soma(1.0))
    for sec in (soma, dend):
        sec.Ra, sec.cm = 100.0, 1.0
        sec.insert("pas")
        for seg in sec:
            seg.g_pas, seg.e_pas = 1e-4, -65.0
    a = h.Exp2Syn(dend(0.5)); a.tau1, a.tau2, a.e = {SYN_TAU1}[c], {SYN_TAU2}[c], {SYN_E}[c]
    b = h.NMDA_Mg(dend(0.8)); b.tau1, b.tau2, b.e, b.mg = 0.29, 43.0, (0.0, 0.0, 10.0)[c], {NMDA_MG}[c]
    ncs = [h.NetCon(None, x) for x in (a, b)]
    for nc in ncs:
        nc.weight[0] = 0.003
    fih = h.FInitializeHandler(lambda: [nc.event(t) for nc in ncs for t in {times}])
    rec = h.Vector().record(soma(0.5)._ref_v)
    h.finitialize(-65.0)
    h.continuerun(60.0)
    out.append(np.array(rec)[:2400])
    del fih, ncs, a, b, rec, soma, dend
np.save(sys.argv[2], np.array(out))
"""
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(DATA / "mod" / "NMDA_Mg.mod", d)
        exe = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
        subprocess.run([exe], cwd=d, check=True, capture_output=True, timeout=600)
        subprocess.run([sys.executable, "-c", code, d, f"{d}/v.npy"], check=True, capture_output=True, timeout=600)
        ref = np.load(f"{d}/v.npy")
    for c in range(3):
        np.testing.assert_allclose(v[:, c], ref[c], rtol=0, atol=1e-6)
    assert min(np.abs(ref[a] - ref[b]).max() for a, b in ((0, 1), (1, 2), (0, 2))) > 1.0


def test_per_cell_synapse_values_are_validated():
    with pytest.raises(ModelError, match=r"synapses\[0\]: 'tau1_ms' has 2 values.*n = 3"):
        _per_cell_syn_spec().replace(synapses=(Exp2Syn(section="dend", tau1_ms=(0.1, 0.2)),))
    with pytest.raises(ModelError, match=r"'tau1_ms' must be smaller than 'tau2_ms' \(cell 1\)"):
        Exp2Syn(section="dend", tau1_ms=(0.1, 3.0), tau2_ms=2.0)
    with pytest.raises(ModelError, match=r"'mg_mM' must be >= 0"):
        NMDA(section="dend", mg_mM=(1.0, -1.0))
    with pytest.raises(ModelError, match=r"'e_mV' must be a finite number.*nan"):
        Exp2Syn(section="dend", e_mV=(0.0, float("nan")))
    spec = _per_cell_syn_spec()
    assert CellPopulation.from_dict(spec.to_dict()) == spec


# --- registry ------------------------------------------------------------------------------------
def test_entry_point_mechanisms_join_the_registry(monkeypatch):
    """A third-party package's ``polyscale.mechanisms`` entry point is found, and Insert accepts it."""
    pas = mech_pkg.registry()["pas"]
    plug = mech_pkg.Mechanism(name="leak_ep", params={"g_S_cm2": 1e-4, "e_mV": -60.0}, states=(),
                              init=pas.init, current=pas.current, advance=pas.advance)

    class EP:
        name = "leak_ep"

        def load(self):
            return plug
    import importlib.metadata
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [EP()] if group == "polyscale.mechanisms" else [])
    monkeypatch.setattr(mech_pkg, "_REGISTRY", None)
    from polyscale.solvers.cell import mechanisms as mechs_mod
    monkeypatch.setattr(mechs_mod, "MECHANISMS", mechs_mod._Defaults())
    assert mech_pkg.get("leak_ep") is plug and "Ih" in mech_pkg.registry()
    assert Insert(mechanism="leak_ep").value("e_mV") == -60.0


@pytest.mark.slow
def test_a_second_process_reuses_the_compiled_kernel(tmp_path):
    """The generated source is written once under a content hash; a second process imports the
    same file and numba's cache supplies the machine code: it must not compile again (the
    first process does, which costs seconds; the second well under one)."""
    code = ("import time; t = time.process_time(); "
            "from polyscale.solvers.cell.population import ball_and_stick_population as b; "
            "from polyscale.solvers.cell.mechanisms import Insert; "
            "s = b(n=1, dend_nseg=3); s = s.replace(mechanisms=s.mechanisms + (Insert(mechanism='Im', where='dend'),)); "
            "x = s.build(None); t1 = time.process_time(); x.advance(0, x.dt_ticks * 4, {}); "
            "print(time.process_time() - t1)")
    env = dict(os.environ, POLYSCALE_KERNEL_CACHE=str(tmp_path))
    first = float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                 text=True, timeout=600).stdout.split()[-1])
    second = float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                  text=True, timeout=600).stdout.split()[-1])
    assert len(list(tmp_path.glob("cellk_*.py"))) == 1
    assert second < 0.5 < first


def test_specs_with_profiles_per_cell_values_and_nmda_round_trip_through_plain_data():
    spec, _ = REF.polyscale_spec("ih_ball_stick")
    spec = spec.replace(n=2, mechanisms=spec.mechanisms + (Insert(mechanism="Im", where="dend",
                                                                  params={"gImbar_S_cm2": [1e-4, 2e-4]}),))
    again = CellPopulation.from_dict(spec.to_dict())
    assert again == spec
    assert again.synapses[1].mg_mM == 1.0 and again.mechanisms[2].distribution[0].kind == "exp"


def test_an_unwritable_cache_directory_falls_back_to_the_temporary_one(tmp_path, monkeypatch):
    """Only where the generated source goes is tested (the kernel itself is the one the other
    tests compile): a cache path under a plain file cannot be created."""
    from polyscale.solvers.cell import _generated
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("POLYSCALE_KERNEL_CACHE", str(blocker / "sub"))
    monkeypatch.setattr(_generated, "_LOADED", {})
    monkeypatch.setattr(_generated.tempfile, "gettempdir", lambda: str(tmp_path))
    reg = mech_pkg.registry()
    mod = _generated.load((reg["hh"], reg["pas"]))
    assert Path(mod.__file__).parent.name.startswith("polyscale_cell_kernels_")
