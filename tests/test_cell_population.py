"""CellPopulation: NEURON's ball-and-stick traces, the finite cable in closed form, charge
conservation, synapses taking spikes from ports, placement of cells in tissue."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell import (AlphaSynapse, CellPopulation, Exp2Syn, IClamp, Insert, Morphology,
                                    ball_and_stick_population, cylinder)


def _example(examples_dir):
    spec = importlib.util.spec_from_file_location("ball_and_stick", examples_dir / "ball_and_stick.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _crossings(t, v, thr=0.0):
    k = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    return t[k] + (thr - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])


def test_ball_and_stick_matches_neuron(reference, examples_dir):
    """The example against NEURON 9.0.2 with usetable_hh = 0 (same dt, same discretisation).
    The issue asks for 0.5 mV RMS and 0.1 ms; both solvers do the same arithmetic, so we hold
    the trace to 1e-6 mV and spike times to 1e-5 ms (the run file's float32 time stamps)."""
    ref = reference / "cell"
    t_ref = np.load(ref / "ballstick_iclamp_notable_t.npy")
    v_ref = np.load(ref / "ballstick_iclamp_notable_v_soma.npy")
    run = ps.run(_example(examples_dir).build())
    sig = run.signal("cell", "v_soma")
    v = sig.data[:, 0]
    n = len(v)                         # samples at 0 .. 100 - dt; NEURON's include t = 100
    np.testing.assert_allclose(sig.time, t_ref[:n], atol=1e-9)
    rms = float(np.sqrt(np.mean((v - v_ref[:n]) ** 2)))
    assert rms < 1e-6, rms
    spikes = run.spikes("cell", "spikes").times
    np.testing.assert_allclose(spikes, [11.328819450994748, 25.032864504001353], atol=1e-5)
    np.testing.assert_allclose(_crossings(t_ref, v_ref), spikes, atol=1e-5)


def test_dendrite_voltage_matches_neuron(reference):
    """dend(0.5) in NEURON is our dendrite's centre segment (index 50 of 101)."""
    ref = reference / "cell"
    spec = ball_and_stick_population(iclamps=[IClamp(section="soma", delay_ms=10, dur_ms=50, amp_nA=0.5)])
    s = spec.build(None)
    node = s.layout.node_at("dend", 0.5)
    out = []
    for w in range(10):      # ten windows of 10 ms: window splits must not matter
        s.advance(w * 400 * 25_000, (w + 1) * 400 * 25_000, {})
        out.append(s.voltages()[node, 0])
    v_ref = np.load(ref / "ballstick_iclamp_notable_v_dend.npy")
    np.testing.assert_allclose(out, v_ref[400::400], atol=1e-6)


def test_sealed_finite_cable_steady_state_is_cosh():
    """Current I into the sealed 0-end of a passive cable (length L, space constant lambda):
    V(x) - E = I r_a lambda cosh((L - x)/lambda) / sinh(L/lambda) (Rall). The compartmental
    error is O((dx/lambda)^2) ~ 1e-4 here; the issue's bound is 0.1% relative RMS."""
    L, d, ra, g, e, amp = 1000.0, 2.0, 100.0, 1e-3, -65.0, 0.1
    nseg = 201
    cab = cylinder("cable", L, d, kind="dend", nseg=nseg)
    spec = CellPopulation(morphology=Morphology(sections=(cab,)), soma="cable",
                          mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": g, "e_mV": e}),),
                          iclamps=(IClamp(section="cable", x=0.0, delay_ms=0.0, dur_ms=1e3, amp_nA=amp),),
                          v_init_mV=e, dt_ms=0.025)
    s = spec.build(None)
    s.advance(0, int(40 * TICKS_PER_MS), {})      # tau_m = 1 ms: 40 time constants
    rm = 1.0 / g                                   # ohm cm2
    lam = math.sqrt(d * 1e-4 * rm / (4 * ra)) * 1e4          # um
    r_a = 4 * ra / (math.pi * (d * 1e-4) ** 2) * 1e-4 * 1e-6  # MOhm per um
    x = (np.arange(nseg) + 0.5) / nseg * L
    want = amp * r_a * lam * np.cosh((L - x) / lam) / math.sinh(L / lam)   # nA * MOhm = mV
    got = s.voltages()[s.layout.seg_node, 0] - e
    rel_rms = np.sqrt(np.mean((got - want) ** 2)) / np.sqrt(np.mean(want ** 2))
    assert rel_rms < 1e-3, rel_rms


def test_branched_tree_equals_its_equivalent_cylinder():
    """Rall: two daughters with d^(3/2) summing to the parent's and equal electrotonic length
    are, in steady state, the parent cylinder continued; so the input end sees the cosh profile
    of one cable of the total electrotonic length (0.1% as above)."""
    g, e, amp, ra = 1e-3, -65.0, 0.1, 100.0
    d0 = 2.0
    d1 = d0 / 2 ** (2 / 3)                      # two daughters: 2 d1^1.5 = d0^1.5
    lam = lambda d: math.sqrt(d * 1e-4 / g / (4 * ra)) * 1e4   # noqa: E731
    L0, X1 = 400.0, 0.8                          # trunk 400 um; daughters 0.8 lambda long
    L1 = X1 * lam(d1)
    secs = (cylinder("trunk", L0, d0, nseg=201),
            cylinder("a", L1, d1, parent="trunk", start=(0, 0, L0), direction=(1, 0, 1), nseg=201),
            cylinder("b", L1, d1, parent="trunk", start=(0, 0, L0), direction=(-1, 0, 1), nseg=201))
    spec = CellPopulation(morphology=Morphology(sections=secs), soma="trunk",
                          mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": g, "e_mV": e}),),
                          iclamps=(IClamp(section="trunk", x=0.0, dur_ms=1e3, amp_nA=amp),),
                          v_init_mV=e)
    s = spec.build(None)
    s.advance(0, int(40 * TICKS_PER_MS), {})
    l0 = lam(d0)
    Ltot = L0 / l0 + X1                           # electrotonic length of the equivalent cable
    r_a = 4 * ra / (math.pi * (d0 * 1e-4) ** 2) * 1e-10
    X = (np.arange(201) + 0.5) / 201 * L0 / l0
    want = amp * r_a * l0 * np.cosh(Ltot - X) / math.sinh(Ltot)
    got = s.voltages()[s.layout.nodes_of(0), 0] - e
    assert np.sqrt(np.mean((got - want) ** 2)) / np.sqrt(np.mean(want ** 2)) < 1e-3
    # and the two daughters carry the same profile
    v = s.voltages()
    np.testing.assert_allclose(v[s.layout.nodes_of(1)], v[s.layout.nodes_of(2)], rtol=0, atol=1e-12)


def _driven_population(**kw):
    syn = (Exp2Syn(section="dend", x=0.8, tau1_ms=0.5, tau2_ms=2.0, e_mV=0.0),
           Exp2Syn(section="soma", x=0.5, tau1_ms=1.0, tau2_ms=5.0, e_mV=-80.0))
    return ball_and_stick_population(n=3, dend_nseg=21, synapses=syn, record_currents=True, **kw)


def _spikes_in(ticks_ms, ids, weights):
    return ps.coordinator.signals.Spikes(np.asarray(np.round(np.array(ticks_ms) * TICKS_PER_MS), np.int64),
                                         np.asarray(ids, np.int64), np.asarray(weights, float))


@pytest.mark.parametrize("method", ["backward_euler", "crank_nicolson"])
def test_transmembrane_currents_sum_to_zero_per_cell(method):
    """Capacitive + ionic + synaptic currents, computed from their own definitions, sum over a
    cell to zero at every step when no electrode injects current: the axial currents cancel.
    The bound is rounding: 1e-9 of the largest segment current."""
    spec = _driven_population().replace(method=method)
    s = spec.build(None)
    spikes = _spikes_in([1.0, 1.0, 3.0, 4.0], [0, 2, 3, 5], [0.05, 0.05, 0.08, 0.02])
    s.advance(0, int(20 * TICKS_PER_MS), {"syn": spikes})
    i = s.transmembrane_currents().reshape(800, 3, -1)
    assert np.abs(i).max() > 0.05                      # the synapses did drive currents
    assert np.abs(i.sum(axis=2)).max() < 1e-9 * np.abs(i).max()


def test_with_a_clamp_the_currents_sum_to_the_injected_current():
    spec = ball_and_stick_population(n=2, dend_nseg=11, record_currents=True,
                                     iclamps=[IClamp(section="soma", delay_ms=1.0, dur_ms=3.0, amp_nA=0.3)])
    s = spec.build(None)
    s.advance(0, int(6 * TICKS_PER_MS), {})
    i = s.transmembrane_currents().reshape(240, 2, -1).sum(axis=2)
    stim = s.electrode_currents().reshape(240, 2, -1).sum(axis=2)
    assert stim.max() == pytest.approx(0.3) and stim[:40].max() == 0.0
    np.testing.assert_allclose(i, stim, atol=1e-9)


def test_exp2syn_conductance_peaks_at_the_weight():
    """NEURON's Exp2Syn normalisation: a spike of weight w gives a peak conductance w (uS) at
    t_peak = tau1 tau2 / (tau2 - tau1) ln(tau2 / tau1) (sampled on the dt grid, so within 1e-3)."""
    s = _driven_population().build(None)
    s.advance(0, int(0.1 * TICKS_PER_MS), {"syn": _spikes_in([0.0], [0], [0.01])})
    g = []
    for k in range(1, 200):
        s.advance(int(k * 0.1 * TICKS_PER_MS), int((k + 1) * 0.1 * TICKS_PER_MS), {})
        g.append(s.synaptic_conductances()[0, 0])
    assert max(g) == pytest.approx(0.01, rel=1e-3)
    tp = 0.5 * 2.0 / 1.5 * math.log(4.0)
    assert (np.argmax(g) + 2) * 0.1 == pytest.approx(tp, abs=0.1)


def test_spikes_from_a_port_make_the_cell_fire_in_a_coupled_run(transport):
    m = ps.Model(t_stop_ms=30.0)
    m.solver("drive", ps.solvers.SpikeTrain(times_ms=[5.0, 5.1, 5.2, 5.3], ids=[0, 1, 0, 1], size=2, dt_ms=0.025))
    m.solver("cells", _driven_population())
    m.couple("drive.spikes[0]", "cells.syn[0]", delay_ms=1.0, weight=0.1)   # cell 0, excitatory
    m.couple("drive.spikes[1]", "cells.syn[4]", delay_ms=1.0, weight=0.1)   # cell 2, excitatory
    m.record("cells.spikes")
    m.record("cells.v_soma")
    run = ps.run(m, transport=transport)
    sp = run.spikes("cells", "spikes")
    assert sorted(set(sp.ids.tolist())) == [0, 2]
    assert (sp.times > 6.0).all() and (sp.times < 12.0).all()
    v = run.signal("cells", "v_soma").data
    assert v[:, 1].max() < -64.9   # cell 1 got nothing: it stays near rest (hh rests near -65)
    assert v[:, 0].max() > 20.0


def test_segment_geometry_follows_position_and_rotation():
    spec = ball_and_stick_population(n=2, dend_nseg=5, positions_um=[[0, 0, 0], [100, 0, 50]],
                                     rotations_deg=[[0, 0, 0], [0, 90, 0]])
    s = spec.build(None)
    geo = s.segment_geometry()
    assert geo["start_um"].shape == (12, 3) and (geo["cell"] == np.repeat([0, 1], 6)).all()
    np.testing.assert_allclose(geo["end_um"][5], [0, 0, 510], atol=1e-9)
    # rotated 90 degrees about y, the dendrite's tip (0, 0, 510) goes to (510, 0, 0), then moves
    np.testing.assert_allclose(geo["end_um"][11], [610, 0, 50], atol=1e-9)
    lengths = np.linalg.norm(geo["end_um"] - geo["start_um"], axis=1)
    np.testing.assert_allclose(lengths[:6], lengths[6:], rtol=1e-12)


def test_ports_and_plain_data():
    spec = CellPopulation.example()
    ports = spec.ports()
    assert ports["v_soma"].units == "mV" and ports["v_soma"].size == 2
    assert ports["syn"].size == 2 and ports["spikes"].kind == "spikes"
    assert CellPopulation.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("change, words", [
    (dict(n=0), "'n'"),
    (dict(soma="axon"), "'soma'"),
    (dict(mechanisms=(Insert(mechanism="pas", where="apical"),)), "matches no section"),
    (dict(positions_um=((0, 0, 0),)), "'positions_um'"),
    (dict(dt_ms=-0.1), "'dt_ms'"),
])
def test_bad_specs_name_the_field(change, words):
    with pytest.raises(ModelError, match=words):
        ball_and_stick_population(n=2, dend_nseg=5).replace(**change)


def test_bad_mechanisms_name_the_parameter():
    with pytest.raises(ModelError, match="unknown parameter 'gbar'"):
        Insert(mechanism="hh", params={"gbar": 1.0})
    with pytest.raises(ModelError, match="'mechanism' must be one of"):
        Insert(mechanism="kdr")
    with pytest.raises(ModelError, match="'tau1_ms' must be smaller"):
        Exp2Syn(section="soma", tau1_ms=3.0, tau2_ms=2.0)


@pytest.mark.parametrize("method, order", [("backward_euler", 1), ("crank_nicolson", 2)])
def test_time_stepping_converges_at_its_order(method, order):
    """An isopotential passive compartment under a current step: V - E = I/G (1 - exp(-t/tau)).
    Halving dt divides the error by 2 (backward Euler) or 4 (Crank-Nicolson, NEURON's
    secondorder=2); within 15% of those ratios (the asymptotic regime at dt = tau/10)."""
    g, e, amp = 1e-3, -65.0, 0.05
    morph = Morphology(sections=(cylinder("soma", 20.0, 20.0, kind="soma"),))
    err = []
    for dt in (0.1, 0.05, 0.025):
        spec = CellPopulation(morphology=morph, method=method, dt_ms=dt, v_init_mV=e,
                              mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": g, "e_mV": e}),),
                              iclamps=(IClamp(section="soma", delay_ms=1.0, dur_ms=100.0, amp_nA=amp),))
        s = spec.build(None)
        s.advance(0, int(3 * TICKS_PER_MS), {})
        area = math.pi * 20.0 * 20.0
        G = g * area * 1e-2                     # uS
        tau = 1.0 / g * 1e-3                    # ms: cm / g = 1 uF/cm2 / (1 mS/cm2)
        want = amp / G * (1 - math.exp(-2.0 / tau))
        err.append(abs(s.voltages()[1, 0] - e - want))
    r1, r2 = err[0] / err[1], err[1] / err[2]
    assert r1 == pytest.approx(2 ** order, rel=0.15) and r2 == pytest.approx(2 ** order, rel=0.15)
    if order == 2:
        assert err[2] < 1e-3 * amp / G


@pytest.mark.parametrize("method, dt_ms", [("crank_nicolson", 0.005), ("backward_euler", 0.001)])
def test_sealed_finite_cable_transient_is_rall(method, dt_ms):
    """Current step I at the sealed 0-end of a passive cable of electrotonic length L, from rest
    (Rall): (V - E) / (I r_a lambda) = (1 - e^-T) / L + (2/L) sum_n cos(a_n X) (1 - e^{-(1 + a_n^2) T})
    / (1 + a_n^2), a_n = n pi / L, T = t / tau. Relative RMS over the cable at t = 0.25 .. 4 ms
    below the issue's 0.1% (the spatial error is ~1e-4; the time step is chosen to match)."""
    L, d, ra, g, e, amp, nseg = 1000.0, 2.0, 100.0, 1e-3, -65.0, 0.1, 201
    spec = CellPopulation(morphology=Morphology(sections=(cylinder("cable", L, d, nseg=nseg),)), soma="cable",
                          mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": g, "e_mV": e}),),
                          iclamps=(IClamp(section="cable", x=0.0, dur_ms=1e3, amp_nA=amp),),
                          v_init_mV=e, method=method, dt_ms=dt_ms)
    s = spec.build(None)
    lam = math.sqrt(d * 1e-4 / g / (4 * ra)) * 1e4          # um
    r_a = 4 * ra / (math.pi * (d * 1e-4) ** 2) * 1e-10       # MOhm per um
    Ll = L / lam
    X = (np.arange(nseg) + 0.5) / nseg * Ll
    an = (np.arange(1, 4000) * math.pi / Ll)[:, None]        # series truncated far below 1e-4
    t_prev = 0.0
    for t in (0.25, 0.5, 1.0, 2.0, 4.0):                     # tau = cm / g = 1 ms, so T = t
        s.advance(int(round(t_prev * TICKS_PER_MS)), int(round(t * TICKS_PER_MS)), {})
        t_prev = t
        series = (1 - math.exp(-t)) / Ll + 2 / Ll * np.sum(
            np.cos(an * X) / (1 + an ** 2) * (1 - np.exp(-(1 + an ** 2) * t)), axis=0)
        want = amp * r_a * lam * series
        got = s.voltages()[s.layout.seg_node, 0] - e
        assert np.sqrt(np.mean((got - want) ** 2)) / np.sqrt(np.mean(want ** 2)) < 1e-3, t


def test_transmembrane_currents_and_geometry_match_neurons(reference):
    """The synapse-driven ball-and-stick of ../shared/reference/probes (three AlphaSynapses on
    dend(0.8)): NEURON's i_membrane_ per segment (fast_imem; its sample k is the current over
    step k - 1) and the segments' end points, diameters and areas. NEURON ran with its 1 mV hh
    rate tables and we evaluate rates exactly, which moves the soma trace by ~0.07 mV RMS (the
    issue's bound is 0.5 mV) and the currents by ~0.4% relative RMS (bound here: 2%)."""
    ref = np.load(reference / "probes" / "lfp_ballstick_inputs.npz")
    alpha = tuple(AlphaSynapse(section="dend", x=0.8, onset_ms=t, tau_ms=2.0, gmax_uS=0.05, e_mV=0.0)
                  for t in (10.0, 40.0, 70.0))
    s = ball_and_stick_population(record_currents=True).replace(alpha_synapses=alpha).build(None)
    cur, v = [], []
    for w in range(10):
        r = s.advance(w * 10 * TICKS_PER_MS, (w + 1) * 10 * TICKS_PER_MS, {})
        cur.append(s.transmembrane_currents())
        v.append(r.outputs["v_soma"].data[:, 0])
    cur, v = np.concatenate(cur).T, np.concatenate(v)
    want = ref["imem_nA"][:, 1:]
    assert s.n_spikes == 3
    assert np.sqrt(np.mean((v - ref["v_soma_mV"][:4000]) ** 2)) < 0.5
    assert np.sqrt(np.mean((cur - want) ** 2)) / np.sqrt(np.mean(want ** 2)) < 0.02
    geo = s.segment_geometry()
    for k, axis in enumerate("xyz"):
        np.testing.assert_allclose(geo["start_um"][:, k], ref[f"seg_{axis}_um"][:, 0], atol=1e-9)
        np.testing.assert_allclose(geo["end_um"][:, k], ref[f"seg_{axis}_um"][:, 1], atol=1e-9)
    np.testing.assert_allclose(geo["diam_um"], ref["seg_d_um"], rtol=1e-12)
    np.testing.assert_allclose(geo["area_um2"], ref["seg_area_um2"], rtol=1e-12)


def _samples(data, dt_ms=0.025):
    return ps.coordinator.signals.Samples(0, int(round(dt_ms * TICKS_PER_MS)), np.asarray(data, float))


def test_recorded_currents_of_each_window_are_its_own_whatever_the_split():
    """The solver keeps its current buffers from window to window: a window's transmembrane and
    electrode currents must be exactly those of the same steps run in one window, and a clamp
    or port current of an earlier window must not linger in a later one."""
    spec = ball_and_stick_population(n=3, dend_nseg=11, record_currents=True,
                                     iclamps=[IClamp(section="soma", delay_ms=0.5, dur_ms=1.0, amp_nA=0.3)])
    w = TICKS_PER_MS
    cur = np.zeros((40, 3))
    cur[:, 1] = 0.2                                    # port current at cell 1, first window only
    whole = spec.build(None)
    whole.advance(0, 3 * w, {"i_inj": _samples(np.vstack([cur, np.zeros((80, 3))]), 0.025)})
    split = spec.build(None)
    for k in range(3):
        inputs = {"i_inj": ps.coordinator.signals.Samples(k * w, w // 40, cur if k == 0 else np.zeros((40, 3)))}
        split.advance(k * w, (k + 1) * w, inputs)
        rows = slice(40 * k, 40 * (k + 1))
        np.testing.assert_array_equal(split.transmembrane_currents(), whole.transmembrane_currents()[rows])
        np.testing.assert_array_equal(split.electrode_currents(), whole.electrode_currents()[rows])
    assert np.abs(whole.electrode_currents()[:40]).max() > 0.0   # clamp and port did inject
    assert not split.electrode_currents().any()        # none in the last window: none kept


def test_current_from_the_i_inj_port_charges_the_soma_as_a_clamp_would():
    """An isopotential passive compartment, current from the port: V - E = I/G (1 - exp(-t/tau))
    (Crank-Nicolson at dt 0.005 ms: 1e-4 relative); the electrode current is accounted as one."""
    g, e, amp = 1e-3, -65.0, 0.05
    spec = CellPopulation(morphology=Morphology(sections=(cylinder("soma", 20.0, 20.0, kind="soma"),)), n=2,
                          mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": g, "e_mV": e}),),
                          method="crank_nicolson", dt_ms=0.005, v_init_mV=e, record_currents=True)
    s = spec.build(None)
    steps = 400
    cur = np.zeros((steps, 2))
    cur[:, 0] = amp                                    # cell 0 only
    s.advance(0, steps * 5000, {"i_inj": _samples(cur, 0.005)})
    G = g * math.pi * 400.0 * 1e-2
    want = amp / G * (1 - math.exp(-2.0 / 1.0))        # t = 2 ms, tau = 1 ms
    v = s.voltages()[1]
    assert v[0] - e == pytest.approx(want, rel=1e-4) and v[1] == e
    np.testing.assert_allclose(s.transmembrane_currents().reshape(steps, 2, -1).sum(axis=2), cur, atol=1e-12)


def test_poisson_rate_input_draws_the_expected_events_and_any_window_split_is_the_same():
    """rate_Hz on each synapse channel for T: the event count is Poisson with mean rate T (within
    4 standard errors); the draws are step-major, so one 200 ms window and twenty 10 ms windows
    give the same voltages bit for bit; a cell with no input rests."""
    spec = _driven_population().replace(rate_weight_uS=0.002)
    rate = np.zeros((8000, 6))
    rate[:, :4] = 40.0                                  # cells 0 and 1, both synapses; cell 2 none
    a = spec.build(None)
    a.advance(0, 200 * TICKS_PER_MS, {"rate": _samples(rate)})
    b = spec.build(None)
    for w in range(20):
        b.advance(w * 10 * TICKS_PER_MS, (w + 1) * 10 * TICKS_PER_MS,
                  {"rate": ps.coordinator.signals.Samples(w * 10 * TICKS_PER_MS, 25_000, rate[w * 400:(w + 1) * 400])})
    mean = 4 * 40.0 * 0.2
    assert abs(a.n_rate_events - mean) < 4 * math.sqrt(mean)
    assert a.n_rate_events == b.n_rate_events
    np.testing.assert_array_equal(a.voltages(), b.voltages())
    assert a.synaptic_conductances()[:, 2].max() == 0.0


def test_a_syn_event_outside_its_window_is_refused():
    """The 'syn' port's spikes must fall in the window being advanced (the coordinator delivers
    them so); one past its end is refused, not written past the kernel's event arrays."""
    spec = _driven_population()
    s = spec.build(None)
    t1 = 2 * TICKS_PER_MS
    late = ps.coordinator.signals.Spikes(np.array([TICKS_PER_MS, t1]), np.array([0, 1]))
    with pytest.raises(ModelError, match=r"a 'syn' event outside the window \[0, 2000000\) ticks"):
        s.advance(0, t1, {"syn": late})
