"""ps.adapters.nest.NestNetwork: a NEST network under polyscale (NEST 3.10 from the [nest] extra).

Independent references: NEST's own parameter names (nest.GetDefaults), the physical unit
factors, NEST's published Brunel statistics (../shared/reference/point/nest_s0.1_t1.json) and
polyscale's PointNetwork on the same spec, pure NEST runs in which the same input is a NEST
device or connection of the coupling's delay (exact timing of inputs), and the Poisson count
of a known rate.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import polyscale as ps
from polyscale.adapters import Affine
from polyscale.adapters import nest as pnest
from polyscale.adapters._external import extra_available
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.time import TICKS_PER_MS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
import brunel_nest  # noqa: E402

needs_nest = pytest.mark.skipif(not extra_available("nest"),
                                reason="NEST is not installed: pip install 'polyscale[nest]'")
HERE = str(Path(__file__).resolve())


# -- builders run inside the solver (this file is loaded by path in the worker) ---------------------

def parrots(n: int = 3):
    import nest
    return {"P": nest.Create("parrot_neuron", n)}


def threshold_neurons(n: int = 2):
    """iaf_psc_delta without leak that matters: a spike of weight > 15 mV fires it, smaller ones
    do not (a 20 ms membrane time constant over one step changes V by 0.5%)."""
    import nest
    return {"N": nest.Create("iaf_psc_delta", n, params={"E_L": 0.0, "V_m": 0.0, "V_th": 15.0,
                                                          "V_reset": 0.0, "C_m": 1.0, "tau_m": 20.0,
                                                          "t_ref": 2.0})}


def wrong_size():
    import nest
    return {"P": nest.Create("parrot_neuron", 2)}


def reset_kernel():
    import nest
    nest.ResetKernel()
    return {"P": nest.Create("parrot_neuron", 3)}


# -- the spec: plain data, validated without NEST ------------------------------------------------

def test_spec_round_trips_and_imports_without_building():
    spec = pnest.NestNetwork.example()
    assert pnest.NestNetwork.from_dict(spec.to_dict()) == spec
    assert ps.adapters.nest.NestNetwork is pnest.NestNetwork


@pytest.mark.parametrize("changes,match", [
    pytest.param({"builder": "no colon"}, r"'builder'.*must be 'package.module:function'", id="builder"),
    pytest.param({"populations": {}}, r"'populations' must be a non-empty dict", id="no-pops"),
    pytest.param({"populations": {"E": 0}}, r"population 'E': size must be an integer >= 1 \(got 0\)", id="size"),
    pytest.param({"inputs": ("E.foo",)}, r"'inputs': 'E.foo' is not an input port \(allowed: E.spikes_in", id="input"),
    pytest.param({"input_delay_ms": 0.15}, r"'input_delay_ms'=0.15 must be a whole number of dt_ms=0.1", id="delay"),
    pytest.param({"input_weights": {"X": 1.0}}, r"'input_weights': 'X' is not a population", id="weights"),
    pytest.param({"threads": 0}, r"'threads'", id="threads"),
])
def test_bad_spec_is_rejected(changes, match):
    kw = dict(builder="m:f", populations={"E": 3}, inputs=("E.rate_in",))
    kw.update(changes)
    with pytest.raises(ModelError, match=match):
        pnest.NestNetwork(**kw)


def test_ports_follow_inputs_and_state_the_input_lead():
    spec = pnest.NestNetwork(builder="m:f", populations={"E": 4, "I": 1}, inputs=("E.spikes_in", "I.current_in"),
                             input_delay_ms=0.5)
    ports = spec.ports()
    assert sorted(ports) == ["E.spikes", "E.spikes_in", "I.current_in", "I.spikes"]
    assert ports["E.spikes_in"].size == 4 and ports["I.current_in"].units == "pA"
    assert spec.input_lead_ms() == pytest.approx(0.6)     # one step + the devices' delay
    # the plan takes it: a coupling into NEST needs a delay of at least window + 0.6 ms
    model = ps.Model(seed=1, t_stop_ms=5.0, window_ms=1.0)
    model.solver("src", ps.solvers.SpikeTrain(size=4))
    model.solver("net", spec)
    model.couple("src.spikes", "net.E.spikes_in", delay_ms=1.5)
    with pytest.raises(ModelError, match=r"delay_ms=1\.5 is shorter than the window \(1 ms\) plus the "
                                         r"input lead of solver 'net' \(0\.6 ms"):
        model.check()


def test_module_imports_and_checks_specs_without_nest():
    """In a fresh interpreter where `import nest` fails: ps.adapters.nest imports, a spec is
    validated and gives its ports, and building it names the extra to install."""
    import subprocess
    code = ("import sys; sys.modules['nest'] = None\n"
            "import polyscale as ps\n"
            "spec = ps.adapters.nest.NestNetwork.example()\n"
            "assert 'E.rate_in' in spec.ports()\n"
            "from polyscale.coordinator.specs import SolverContext\n"
            "import numpy as np\n"
            "try:\n"
            "    spec.build(SolverContext('net', 1, np.random.default_rng(1)))\n"
            "except ps.ModelError as e:\n"
            "    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "pip install 'polyscale[nest]'" in p.stdout


def test_missing_nest_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nest", None)     # makes `import nest` raise ImportError
    with pytest.raises(ModelError, match=r"pip install 'polyscale\[nest\]'"):
        pnest.import_nest()


# -- the translation table ---------------------------------------------------------------------------

@pytest.mark.parametrize("table", [pnest.NEST_NEURON, pnest.NEST_IZHIKEVICH, pnest.NEST_UNITS],
                         ids=lambda t: t.name)
def test_every_translation_entry_round_trips(table):
    for row in table:
        value = 3.7
        there = table.to_external({row.ours: value})
        assert list(there) == [row.theirs]
        assert table.from_external(there) == {row.ours: pytest.approx(value, rel=1e-15)}


def test_unit_factors_are_the_physical_ones():
    # 1 nA = 1000 pA, 1 nF = 1000 pF, 1 uS = 1000 nS, 1 s = 1000 ms, 1 V = 1000 mV
    u = pnest.NEST_UNITS
    assert u.to_external({"i_nA": 0.25}) == {"I_pA": 250.0}
    assert u.to_external({"c_nF": 0.25}) == {"C_pF": 250.0}
    assert u.to_external({"g_uS": 0.004}) == {"g_nS": 4.0}
    with pytest.raises(ModelError, match=r"unknown parameter 'x_mA'"):
        u.to_external({"x_mA": 1.0})


@needs_nest
def test_translated_names_are_nest_parameters():
    """Every NEST-side name is a parameter of a NEST model that polyscale's point models map to."""
    nest = pnest.import_nest()
    known = set()
    for model in ("iaf_psc_delta", "iaf_psc_exp", "iaf_cond_exp", "aeif_cond_exp", "aeif_psc_exp"):
        known |= set(nest.GetDefaults(model))
    assert set(pnest.NEST_NEURON.theirs()) <= known
    from polyscale.solvers.point import IafPscExp
    name, params = pnest.nest_neuron(IafPscExp(c_m_pF=200.0, tau_syn_ex_ms=0.5))
    defaults = nest.GetDefaults(name)
    assert set(params) <= set(defaults) and params["C_m"] == 200.0 and params["tau_syn_ex"] == 0.5


POINT_MODELS = ("IafPscDelta", "IafPscExp", "IafCondExp", "AeifCondExp", "AeifPscExp", "Izhikevich")


@needs_nest
@pytest.mark.parametrize("cls", POINT_MODELS)
def test_every_point_model_maps_onto_nest_defaults(cls):
    """polyscale's point models carry NEST's names and defaults (solvers/point/models.py), so
    each default spec, translated, must give exactly NEST's own defaults for the mapped model
    (nest.GetDefaults is the independent reference); a changed field arrives under NEST's name."""
    from polyscale.solvers import point
    nest = pnest.import_nest()
    spec = getattr(point, cls)()
    name, params = pnest.nest_neuron(spec)
    assert name == spec.type
    defaults = nest.GetDefaults(name)
    assert set(params) <= set(defaults), set(params) - set(defaults)
    for k, v in params.items():
        assert v == pytest.approx(defaults[k], rel=1e-12), (k, v, defaults[k])
    changed = spec.replace(v_th_mV=spec.v_th_mV + 1.0)
    assert pnest.nest_neuron(changed)[1]["V_th"] == spec.v_th_mV + 1.0


def test_a_model_without_nest_translation_is_rejected_naming_those_with_one():
    from polyscale.solvers.point import QIF
    with pytest.raises(ModelError, match=r"nest_neuron: model 'qif' has no NEST translation \(have: "
                                         r"'iaf_psc_delta', 'iaf_psc_exp', 'iaf_cond_exp', 'aeif_cond_exp'"):
        pnest.nest_neuron(QIF())


def point_populations(spec: dict):
    """Build a PointNetwork spec's populations (no projections, no drive) in NEST through
    nest_neuron, for swapping PointNetwork for NestNetwork."""
    import nest

    from polyscale.solvers.point import PointNetwork
    net = PointNetwork.from_dict(spec)
    out = {}
    for p in net.populations:
        name, params = pnest.nest_neuron(p.model)
        out[p.name] = nest.Create(name, p.size, params=params)
    return out


@needs_nest
def test_point_network_swapped_for_nest_gives_the_same_spikes():
    """One neuron of every mapped model, each driven by its own constant current from 5 ms on
    (through current_in, delay 5 ms), 150 ms on PointNetwork and on NestNetwork built from the
    same spec. Exactly integrated and Euler models (iaf_psc_*, izhikevich): the same spike
    times to 1e-9 ms (the same arithmetic on the same grid, and the current acting over the
    same steps on both); RK models (iaf_cond_exp, aeif_*): the same count and times within one
    step (0.1 ms), as issue 5 measured PointNetwork's RK4 against NEST's adaptive RKF45."""
    from polyscale.solvers import point
    currents = {"IafPscDelta": 500.0, "IafPscExp": 500.0, "IafCondExp": 500.0, "AeifCondExp": 800.0,
                "AeifPscExp": 800.0, "Izhikevich": 10.0}
    pops = tuple(point.Population(name=c, size=1, model=getattr(point, c)()) for c in POINT_MODELS)
    spec = point.PointNetwork(populations=pops, projections=(), dt_ms=0.1)
    runs = {}
    for backend in ("polyscale", "nest"):
        m = ps.Model(seed=4, t_stop_ms=150.0)
        m.solver("src", ps.solvers.LinearSystem(a=((0.0,),), x0=(1.0,)))
        if backend == "polyscale":
            m.solver("net", spec)
        else:
            m.solver("net", pnest.NestNetwork(builder=f"{HERE}:point_populations",
                                              params={"spec": spec.to_dict()},
                                              populations={c: 1 for c in POINT_MODELS},
                                              inputs=tuple(f"{c}.current_in" for c in POINT_MODELS)))
        for c in POINT_MODELS:
            m.couple("src.x", f"net.{c}.current_in", delay_ms=5.0, weight=currents[c],
                     via=[Affine(units="pA", produces="analog")])
            m.record(f"net.{c}.spikes")
        runs[backend] = ps.run(m)
    for c in POINT_MODELS:
        a, b = runs["polyscale"].spikes("net", c).times, runs["nest"].spikes("net", c).times
        assert len(a) >= 3 and len(a) == len(b), (c, len(a), len(b))
        tol = 1e-9 if c in ("IafPscDelta", "IafPscExp", "Izhikevich") else 0.1 + 1e-9
        assert np.abs(a - b).max() <= tol, (c, np.abs(a - b).max())


# -- running NEST ------------------------------------------------------------------------------------

def _stats(run, pop, t_ms):
    sp = run.spikes("net", pop)
    n = sp.n_channels
    order = np.lexsort((sp.times, sp.ids))
    t, ids = sp.times[order], sp.ids[order]
    bounds = np.searchsorted(ids, np.arange(n + 1))
    cvs = [np.std(d) / np.mean(d) for d in (np.diff(t[bounds[i]:bounds[i + 1]]) for i in range(n))
           if len(d) >= 2]
    return len(sp.times) / n / (t_ms / 1000.0), float(np.mean(cvs))


@needs_nest
def test_brunel_on_nest_matches_point_network_and_nest_reference(reference):
    """The same Brunel spec (scale 0.1, fixed in-degree, one thread) on PointNetwork and on
    NestNetwork, 400 ms. Tolerances: the issue's 10% on rates between the two backends; against
    NEST's reference 1 s run, 5% and 0.03 on CV, as tests/test_point_brunel.py argues (400 ms
    hold ~34,000 spikes per population, the onset transient lowers the mean by 1-2%)."""
    ref = json.loads((reference / "point" / "nest_s0.1_t1.json").read_text())["stats"]
    runs = {b: ps.run(brunel_nest.build(backend=b, t_stop_ms=400.0, couple=False))
            for b in ("polyscale", "nest")}
    for pop in ("E", "I"):
        r_nest, cv_nest = _stats(runs["nest"], pop, 400.0)
        r_ps, cv_ps = _stats(runs["polyscale"], pop, 400.0)
        assert r_nest == pytest.approx(r_ps, rel=0.10), pop
        assert abs(cv_nest - cv_ps) < 0.03, pop
        assert r_nest == pytest.approx(ref[pop]["rate_hz"], rel=0.05), pop
        assert abs(cv_nest - ref[pop]["cv_isi_mean"]) < 0.03, pop


def _pure_nest_parrots(times, ids, n, delay_ms, t_stop_ms):
    """Reference: the same spike train as NEST spike generators (one per channel, off-grid
    times allowed, so NEST rounds them up to its grid) into parrots through connections of the
    same total delay: NEST cannot emit at t = 0, so the generators fire 1 ms after the train
    and their connections are 1 ms shorter. The parrots' spikes, (time ms, id) sorted."""
    nest = pnest.import_nest()
    nest.ResetKernel()
    nest.resolution = 0.1
    par = nest.Create("parrot_neuron", n)
    rec = nest.Create("spike_recorder")
    nest.Connect(par, rec)
    for i in range(n):
        ts = [t for t, j in zip(times, ids) if j == i]
        g = nest.Create("spike_generator", params={"spike_times": [t + 1.0 for t in ts],
                                                   "allow_offgrid_times": True})
        nest.Connect(g, par[i], syn_spec={"weight": 1.0, "delay": delay_ms - 1.0})
    nest.Simulate(t_stop_ms)
    ev = rec.events
    out = sorted(zip(np.round(ev["times"], 6), np.asarray(ev["senders"]) - par[0].global_id))
    nest.ResetKernel()
    return [(t, i) for t, i in out if t < t_stop_ms]


@needs_nest
def test_spikes_reach_a_parrot_exactly_at_the_coupling_delay():
    """src --(D = 2.0 ms)--> parrots: each parrot fires exactly when a pure NEST run with spike
    generators at the emission times and connections of delay D makes it fire (on-grid: at
    T + D; off-grid: at the next grid time). Also across window lengths (1.0 and 1.8 ms, the
    longest the 0.2 ms lead allows) and on zmq."""
    times = (0.0, 0.3, 1.0, 1.05, 4.37, 7.9, 9.95)
    ids = (0, 1, 2, 0, 1, 2, 0)
    want = _pure_nest_parrots(times, ids, 3, 2.0, 12.0)
    assert (2.0, 0) in want and (2.3, 1) in want and (3.1, 0) in want    # on grid: T + D exactly

    def got(window_ms, transport="inproc"):
        model = ps.Model(seed=3, t_stop_ms=12.0, window_ms=window_ms)
        model.solver("src", ps.solvers.SpikeTrain(times_ms=times, ids=ids, size=3, dt_ms=0.01))
        model.solver("net", pnest.NestNetwork(builder=f"{HERE}:parrots", params={"n": 3},
                                              populations={"P": 3}, inputs=("P.spikes_in",)))
        model.couple("src.spikes", "net.P.spikes_in", delay_ms=2.0)
        model.record("net.P.spikes")
        sp = ps.run(model, transport=transport).spikes("net", "P")
        return sorted(zip(np.round(sp.times, 6), sp.ids))

    assert got(1.0) == want
    assert got(None) == want            # window 1.8 ms: 9.95 + 2.0 is off grid in a last step
    assert got(1.0, "zmq") == want


_PROBE: dict = {}


def psc_neurons(model: str = "iaf_psc_exp"):
    """Two neurons that never fire, V_m recorded every step (the multimeter is kept here for
    the test to read after the run; inproc runs the builder in the test's process)."""
    import nest
    n = nest.Create(model, 2, params={"V_th": 1e6})
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 0.1})
    nest.Connect(mm, n)
    _PROBE["mm"] = mm
    return {"N": n}


def _v_m(mm, n_ids, first_gid):
    ev = mm.events
    t, s, v = np.asarray(ev["times"]), np.asarray(ev["senders"]) - first_gid, np.asarray(ev["V_m"])
    return {i: (np.round(t[s == i], 6), v[s == i]) for i in range(n_ids)}


@needs_nest
@pytest.mark.parametrize("model", ["iaf_psc_exp", "iaf_psc_delta"])
def test_psp_onset_is_exactly_at_emission_plus_delay_as_in_nest(model):
    """A spike emitted at T through a coupling of delay D (weights 50 pA / 5 mV, both signs,
    two spikes due in one step) gives the V_m trace of a pure NEST run in which spike
    generators fire at T through connections of delay D: the same values at the same times, to
    1e-12 mV (the same NEST arithmetic), so the PSC/PSP starts at T + D exactly."""
    times, ids, w = (0.5, 1.2, 1.2, 3.05), (0, 1, 1, 0), (1.0, 1.0, -0.5, 1.0)
    weight = 50.0 if model == "iaf_psc_exp" else 5.0
    delay, t_stop = 1.5, 8.0
    nest = pnest.import_nest()
    # the reference, pure NEST
    nest.ResetKernel()
    nest.resolution = 0.1
    ref_n = psc_neurons(model)["N"]
    for t, i, ww in zip(times, ids, w):
        g = nest.Create("spike_generator", params={"spike_times": [t], "allow_offgrid_times": True})
        nest.Connect(g, ref_n[i], syn_spec={"weight": weight * ww, "delay": delay})
    nest.Simulate(t_stop)
    ref = _v_m(_PROBE["mm"], 2, ref_n[0].global_id)
    # the same spikes from a polyscale SpikeTrain, one coupling per sign of weight
    m = ps.Model(seed=1, t_stop_ms=t_stop)
    pos = [(t, i) for t, i, ww in zip(times, ids, w) if ww > 0]
    m.solver("a", ps.solvers.SpikeTrain(times_ms=tuple(t for t, _ in pos), ids=tuple(i for _, i in pos),
                                        size=2, dt_ms=0.05))
    m.solver("b", ps.solvers.SpikeTrain(times_ms=(1.2,), ids=(1,), size=2))
    m.solver("net", pnest.NestNetwork(builder=f"{HERE}:psc_neurons", params={"model": model},
                                      populations={"N": 2}, inputs=("N.spikes_in",)))
    m.couple("a.spikes", "net.N.spikes_in", delay_ms=delay, weight=weight)
    m.couple("b.spikes", "net.N.spikes_in", delay_ms=delay, weight=-0.5 * weight)
    ps.run(m)
    from polyscale.adapters._external import load_target
    probe = load_target(f"{HERE}:psc_neurons", "test").__globals__["_PROBE"]["mm"]
    got = _v_m(probe, 2, 1)
    for i in (0, 1):
        tr, vr = ref[i]
        tg, vg = got[i]
        k = min(len(tr), len(tg))
        # NEST's multimeter hands over its last min_delay slice only at the next one: compare
        # what both have, which covers every arrival (the last at 4.6 ms)
        assert k >= 60 and tr[k - 1] > 4.6 + 1.0
        np.testing.assert_array_equal(tg[:k], tr[:k])
        np.testing.assert_allclose(vg[:k], vr[:k], rtol=0, atol=1e-12)
    # and the onset is where the closed form puts it: V_m leaves E_L first at T + D
    t0, v0 = got[0]
    first = t0[np.flatnonzero(v0 != v0[0])[0]]
    assert first == pytest.approx(0.5 + delay + (0.1 if model == "iaf_psc_exp" else 0.0))


@needs_nest
def test_spike_weights_are_nest_weights():
    """Weight 20 mV crosses a 15 mV threshold, 10 mV does not; two 10 mV spikes due in the same
    step (arrivals 6.01 and 6.02 ms, both acting at 6.1 ms) are one event of 20 mV and do. The
    threshold is crossed when the input acts: at the arrival (2.0 ms) or the next grid time."""
    model = ps.Model(seed=1, t_stop_ms=10.0)
    model.solver("a", ps.solvers.SpikeTrain(times_ms=(1.0,), ids=(0,), size=2))
    model.solver("b", ps.solvers.SpikeTrain(times_ms=(1.0, 5.01, 5.02), ids=(1, 1, 1), size=2, dt_ms=0.01))
    model.solver("net", pnest.NestNetwork(builder=f"{HERE}:threshold_neurons", populations={"N": 2},
                                          inputs=("N.spikes_in",)))
    model.couple("a.spikes", "net.N.spikes_in", delay_ms=1.0, weight=20.0)
    model.couple("b.spikes", "net.N.spikes_in", delay_ms=1.0, weight=10.0)
    model.record("net.N.spikes")
    sp = ps.run(model).spikes("net", "N")
    assert list(sp.ids) == [0, 1]
    assert sp.times[0] == pytest.approx(2.0) and sp.times[1] == pytest.approx(6.1)


@needs_nest
def test_rate_in_drives_poisson_events_at_that_rate():
    """A constant 2000 Hz into 20 parrots for 200 ms: 8,000 events expected; Poisson, so the
    count is within 4 standard deviations (sqrt(8000) ~ 89) of it."""
    rate_hz, n, t_ms = 2000.0, 20, 200.0
    model = ps.Model(seed=11, t_stop_ms=t_ms)
    model.solver("src", ps.solvers.LinearSystem(a=((0.0,),), x0=(1.0,)))
    model.solver("net", pnest.NestNetwork(builder=f"{HERE}:parrots", params={"n": n}, populations={"P": n},
                                          inputs=("P.rate_in",)))
    model.couple("src.x", "net.P.rate_in", delay_ms=1.0, weight=rate_hz,
                 via=[Affine(units="Hz", produces="rate")])
    model.record("net.P.spikes")
    sp = ps.run(model).spikes("net", "P")
    # the rate is on from the sample at the coupling delay (1 ms; zero before: values before t = 0
    # are zero), whose events act one step later, as PointNetwork's; events at t_stop are not
    # reported, so the events fall in [1.1, 199.9] ms
    expected = rate_hz * n * (t_ms - 1.1) / 1000.0
    assert abs(len(sp.times) - expected) < 4 * np.sqrt(expected)
    assert sp.times.min() > 1.1 - 1e-9


@needs_nest
def test_rate_in_events_are_those_of_nest_with_the_rate_at_the_coupling_delay():
    """A ramp rate r(t) = 400 (t - D) Hz (D = 1.5 ms, zero before) into 10 parrots, 30 ms,
    against a pure NEST run built in the same order with the same kernel seed, in which one
    inhomogeneous_poisson_generator holds the whole rate profile: the sample at t (the rate over
    [t, t + dt)) at rate_time t + dt - d_in, so that its events act at t + dt. NEST draws the
    same numbers for the same rates at the same steps, so the parrots' spikes must be equal,
    bitwise: the rate acts in NEST exactly at the coupling delay (and not one step off)."""
    from polyscale.coordinator.seeding import rng_for
    n, t_stop, delay, dt = 10, 30.0, 1.5, 0.1
    model = ps.Model(seed=21, t_stop_ms=t_stop)
    model.solver("src", ps.solvers.LinearSystem(a=((0.0,),), c=(1.0,), dt_ms=dt))    # x(t) = t (ms)
    model.solver("net", pnest.NestNetwork(builder=f"{HERE}:parrots", params={"n": n}, populations={"P": n},
                                          inputs=("P.rate_in",)))
    model.couple("src.x", "net.P.rate_in", delay_ms=delay, weight=400.0,
                 via=[Affine(units="Hz", produces="rate")])
    model.record("net.P.spikes")
    sp = ps.run(model).spikes("net", "P")
    got = sorted(zip(np.round(sp.times, 6), sp.ids))
    nest = pnest.import_nest()
    nest.ResetKernel()
    seed = int(rng_for(21, "solver", "net").integers(1, 2**31 - 1))
    nest.SetKernelStatus({"resolution": dt, "local_num_threads": 1, "rng_seed": seed})
    par = parrots(n)["P"]
    rec = nest.Create("spike_recorder")
    nest.Connect(par, rec)
    gen = nest.Create("inhomogeneous_poisson_generator")
    d_in = dt                                   # NestNetwork's default device delay
    nest.Connect(gen, par, "all_to_all", {"weight": 1.0, "delay": d_in})
    t = np.round(np.arange(1, int(round(t_stop / dt))) * dt, 10)          # samples at t > 0
    gen.set(rate_times=list(np.round(t + dt - d_in, 10)),
            rate_values=list(400.0 * np.maximum(t - delay, 0.0)))
    nest.Simulate(t_stop)
    ev = rec.events
    want = sorted((round(float(x), 6), int(g) - par[0].global_id) for x, g in zip(ev["times"], ev["senders"])
                  if x < t_stop - 1e-9)
    nest.ResetKernel()
    assert len(want) > 300
    assert got == want


def lif_neuron(n: int = 1):
    import nest
    return {"N": nest.Create("iaf_psc_delta", n, params={"E_L": 0.0, "V_m": 0.0, "V_th": 15.0, "V_reset": 0.0,
                                                          "C_m": 250.0, "tau_m": 20.0, "t_ref": 2.0})}


@needs_nest
def test_current_in_gives_the_closed_form_lif_interspike_interval():
    """500 pA from t = 1 ms (coupling delay) into a LIF with R = tau_m / C_m = 0.08 mV/pA,
    theta 15 mV, reset 0 mV, t_ref 2 ms: ISI = t_ref + tau_m ln(RI / (RI - theta)) =
    2 + 20 ln(40 / 25) = 11.400 ms (the closed form of the LIF with constant drive). NEST
    stamps spikes on its 0.1 ms grid, so each ISI is within 0.1 ms of it. Exact timing: the
    spikes equal those of a pure NEST run in which I_e is set to 500 pA at 1 ms."""
    model = ps.Model(seed=2, t_stop_ms=100.0)
    model.solver("src", ps.solvers.LinearSystem(a=((0.0,),), x0=(1.0,)))
    spec = pnest.NestNetwork(builder=f"{HERE}:lif_neuron", populations={"N": 1}, inputs=("N.current_in",))
    model.solver("net", spec)
    model.couple("src.x", "net.N.current_in", delay_ms=1.0, weight=500.0,
                 via=[Affine(units="pA", produces="analog")])
    model.record("net.N.spikes")
    t = ps.run(model).spikes("net", "N").times
    isi = 2.0 + 20.0 * np.log(40.0 / 25.0)
    assert len(t) == 8
    assert np.abs(np.diff(t) - isi).max() <= 0.1 + 1e-9
    # the first spike: no refractory period, the current on from 1 ms exactly
    assert abs(t[0] - (1.0 + isi - 2.0)) <= 0.1 + 1e-9
    nest = pnest.import_nest()
    nest.ResetKernel()
    nest.resolution = 0.1
    n = lif_neuron()["N"]
    rec = nest.Create("spike_recorder")
    nest.Connect(n, rec)
    nest.Simulate(1.0)
    n.I_e = 500.0
    nest.Simulate(99.0)
    ref = np.asarray(rec.events["times"])
    nest.ResetKernel()
    np.testing.assert_array_equal(np.round(t, 9), np.round(ref[ref < 100.0], 9))


def test_spike_files_go_to_a_ram_folder_only_where_it_exists_and_has_room(monkeypatch, tmp_path):
    monkeypatch.setattr(pnest, "FAST_TMP", str(tmp_path / "nowhere"))
    assert pnest.spike_file_folder() is None
    monkeypatch.setattr(pnest, "FAST_TMP", str(tmp_path))
    assert pnest.spike_file_folder() == str(tmp_path)
    # a container's small /dev/shm: a spike file may grow to MAX_FILE_BYTES before it starts anew
    free = os.statvfs(tmp_path)
    monkeypatch.setattr(pnest.NestNetworkSolver, "MAX_FILE_BYTES", free.f_bavail * free.f_frsize // 2)
    assert pnest.spike_file_folder() is None


@needs_nest
def test_window_size_and_emptying_recorders_do_not_change_nest_spikes(monkeypatch):
    """NEST run in windows of 1 ms and 3 ms (multiples of its min_delay, 1 ms here), with its
    spike file started anew after every window (Cleanup, delete, Prepare), and read from NEST's
    memory backend instead of the file (as where a builder sets a data_path), once emptied
    after every window (Cleanup, reset, Prepare): the same spikes, bitwise, and no file left.
    (Windows that split NEST's min_delay slices change the order in which NEST's Poisson
    generators draw, so the spikes then differ, though not their statistics.)"""
    import glob
    import tempfile
    def spikes(window_ms):
        run = ps.run(brunel_nest.build(backend="nest", scale=0.05, t_stop_ms=60.0, couple=False,
                                       window_ms=window_ms))
        return run.spikes("net", "E")
    folder = pnest.spike_file_folder() or tempfile.gettempdir()
    left = set(glob.glob(f"{folder}/polyscale-nest-*"))
    a, b = spikes(1.0), spikes(3.0)
    monkeypatch.setattr(pnest.NestNetworkSolver, "MAX_FILE_BYTES", 0)
    c = spikes(1.0)
    assert set(glob.glob(f"{folder}/polyscale-nest-*")) == left
    monkeypatch.setattr(pnest.NestNetworkSolver, "_recorder_params", lambda self, nest: {})
    d = spikes(1.0)
    monkeypatch.setattr(pnest.NestNetworkSolver, "MAX_HELD_EVENTS", 0)
    e = spikes(1.0)
    assert len(a.times) > 100
    for other in (b, c, d, e):
        assert np.array_equal(a.times, other.times) and np.array_equal(a.ids, other.ids)


@needs_nest
def test_two_nest_threads_give_the_spikes_of_one_long_window(monkeypatch):
    """threads=2 (NEST writes a spike file per thread): 1 ms windows give the spikes of one
    60 ms window, bitwise, and those of NEST alone (one Simulate, the same seed, its memory
    backend read once). The memory backend cannot be read window by window with threads (it
    gives each thread's events in turn): where a builder set NEST's data_path, a ModelError
    says so."""
    from polyscale.coordinator.seeding import rng_for
    import dataclasses
    def spikes(window_ms):
        m = brunel_nest.build(backend="nest", scale=0.05, t_stop_ms=60.0, couple=False, window_ms=window_ms)
        m.solvers["net"] = dataclasses.replace(m.solvers["net"], threads=2)
        run = ps.run(m)
        return [a for p in ("E", "I") for a in (run.spikes("net", p).times, run.spikes("net", p).ids)]
    one = spikes(60.0)
    files = spikes(1.0)
    assert len(one[0]) > 100 and len(one[2]) > 20
    assert all(np.array_equal(a, b) for a, b in zip(one, files))
    import nest
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": 2,
                          "rng_seed": int(rng_for(12345, "solver", "net").integers(1, 2**31 - 1))})
    pops = brunel_nest.nest_brunel(brunel_nest.brunel_spec(0.05).to_dict())
    recs = {p: nest.Create("spike_recorder") for p in ("E", "I")}
    for p, r in recs.items():
        nest.Connect(pops[p], r)
    nest.Simulate(60.0)
    for k, p in enumerate(("E", "I")):
        ev = recs[p].get("events")
        keep = ev["times"] < 60.0 - 1e-9      # polyscale hands out [0, t_stop)
        want = sorted(zip(np.round(ev["times"][keep], 9).tolist(), (ev["senders"][keep] - pops[p][0].global_id).tolist()))
        got = sorted(zip(np.round(one[2 * k], 9).tolist(), one[2 * k + 1].tolist()))
        assert got == want
    nest.ResetKernel()
    monkeypatch.setattr(pnest, "import_nest", _nest_with_data_path(pnest.import_nest))
    with pytest.raises(ModelError, match=r"threads=2 the spikes are read from NEST.s spike files"):
        spikes(1.0)


def _nest_with_data_path(real_import):
    """import_nest whose kernel reports a data_path (as if a builder had set one)."""
    def wrapped():
        nest = real_import()

        class Nest:
            def __getattr__(self, name):
                return getattr(nest, name)

            def GetKernelStatus(self, keys=None):   # noqa: N802 (NEST's name)
                got = nest.GetKernelStatus(keys)
                return ("/somewhere", "") if keys == ["data_path", "data_prefix"] else got
        return Nest()
    return wrapped


@needs_nest
def test_only_spikes_that_something_reads_are_recorded():
    """SolverContext.consumed: a population whose spikes nothing reads gets no recorder
    connection and an empty port; the one read gets the spikes it gets when both are read
    (bitwise: the recorder does not touch the dynamics); nothing read, no recorder at all."""
    from polyscale.coordinator.specs import SolverContext
    spec = brunel_nest.build(backend="nest", scale=0.05, t_stop_ms=30.0, couple=False).solvers["net"]
    def run(consumed):
        import nest
        s = spec.build(SolverContext("net", 1, np.random.default_rng(1), consumed=consumed))
        try:
            outs = [s.advance(t, t + TICKS_PER_MS, {}).outputs for t in range(0, 30 * TICKS_PER_MS, TICKS_PER_MS)]
            senders = set() if s.recorder is None else set(
                nest.GetConnections(target=s.recorder).get("source"))
            return ({p: np.concatenate([o[f"{p}.spikes"].ticks for o in outs]) for p in ("E", "I")},
                    senders, s.recorder)
        finally:
            s.close()
    both, senders, _ = run(None)
    e_only, e_senders, _ = run(frozenset({"E.spikes"}))
    none, _, rec = run(frozenset())
    assert len(both["E"]) > 50 and len(both["I"]) > 10
    assert np.array_equal(both["E"], e_only["E"]) and len(e_only["I"]) == 0
    assert len(senders) == spec.populations["E"] + spec.populations["I"]
    assert len(e_senders) == spec.populations["E"]
    assert rec is None and len(none["E"]) == len(none["I"]) == 0


def test_spike_file_lines_parse_as_python_reads_them():
    """_parse_events (numba, NEST's ascii spike file) against Python's split(): the header
    skipped, tick = step * dt - offset with the offset's decimals as ticks (precise-timing
    models), over several lines and chunks."""
    dt = TICKS_PER_MS // 10
    rng = np.random.default_rng(5)
    rows = [(int(s), int(k), int(o)) for s, k, o in zip(rng.integers(1, 10**6, 40), rng.integers(0, 10**8, 40),
                                                        rng.integers(0, dt, 40))]
    rows[3] = (7, 12, 0)
    body = "".join(f"{s}\t{k}\t{o / TICKS_PER_MS:.{pnest.OFFSET_DIGITS}f}\n" for s, k, o in rows)
    text = "# NEST version: 3.10.0\n# RecordingBackendASCII version: 2\nsender\ttime_step\ttime_offset\n" + body
    ticks, senders = pnest._parse_events(np.frombuffer(text.encode(), np.uint8), dt)
    want = [(int(a), round(int(b) * dt - float(c) * TICKS_PER_MS))
            for a, b, c in (ln.split("\t") for ln in body.splitlines())]
    assert list(zip(senders.tolist(), ticks.tolist())) == want
    t2, s2 = pnest._parse_events(np.frombuffer(body.encode(), np.uint8), dt)   # a later chunk
    assert t2.tolist() == ticks.tolist() and s2.tolist() == senders.tolist()
    empty = pnest._parse_events(np.zeros(0, np.uint8), dt)
    assert len(empty[0]) == len(empty[1]) == 0


def test_recorded_events_split_by_population_as_a_plain_sort_does():
    """_split_spikes (the numba pass over a window's recorder events) against plain Python:
    events in any order from two populations with a gap in the node ids, a start offset (the
    events already handed out), pending spikes of the last window, and spikes stamped at or
    after t1 (the next window's). Reference: each population's spikes before t1, pending ones
    first, then recorder order, stably sorted by tick; the rest kept for later."""
    rng = np.random.default_rng(3)
    gids = {0: np.arange(5, 15), 1: np.arange(20, 24)}    # E: nodes 5..14, I: 20..23
    base = 5
    lut = np.full((2, 24 - base), -1, np.int64)
    for p, g in gids.items():
        lut[0, g - base], lut[1, g - base] = p, np.arange(len(g))
    t1 = 30 * TICKS_PER_MS // 10
    senders = rng.choice(np.concatenate(list(gids.values())), 60).astype(np.int64)
    times = rng.integers(1, 33, 60) / 10.0        # ms on a 0.1 ms grid, some >= t1 (3.0 ms)
    start = 7
    pend = (np.array([21 * TICKS_PER_MS // 10, 25 * TICKS_PER_MS // 10], np.int64),
            np.array([1, 0], np.int64), np.array([3, 9], np.int64))
    new = np.rint(times[start:] * TICKS_PER_MS).astype(np.int64)
    ticks, ids, offsets, *later = pnest._split_spikes(new, senders[start:], lut, base, 2, t1, *pend)
    allev = list(zip(*[a.tolist() for a in pend]))
    for t, s in zip(times[start:], senders[start:]):
        p = 0 if s < 20 else 1
        allev.append((int(round(t * TICKS_PER_MS)), p, int(s - gids[p][0])))
    for p in (0, 1):
        want = sorted([(t, i) for t, q, i in allev if q == p and t < t1], key=lambda e: e[0])
        got = list(zip(ticks[offsets[p]:offsets[p + 1]].tolist(), ids[offsets[p]:offsets[p + 1]].tolist()))
        assert got == want and len(want) > 3
    assert [tuple(a.tolist()) for a in later] == [tuple(x) for x in zip(*[e for e in allev if e[0] >= t1])]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1001])
def test_tick_sort_is_numpys_stable_sort(n):
    """_sort_by_tick (a merge sort by hand: numba's own took seconds to compile) against numpy's
    stable argsort, with many equal ticks (their order must be kept), sizes around powers of 2."""
    rng = np.random.default_rng(n)
    t = rng.integers(0, max(n // 3, 1), n).astype(np.int64)
    i = np.arange(n, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    want_t, want_i = t[order], i[order]
    pnest._sort_by_tick(t, i)
    assert t.tolist() == want_t.tolist() and i.tolist() == want_i.tolist()


@needs_nest
def test_builder_that_disagrees_with_the_spec_is_rejected():
    model = ps.Model(seed=1, t_stop_ms=1.0)
    model.solver("net", pnest.NestNetwork(builder=f"{HERE}:wrong_size", populations={"P": 3}))
    with pytest.raises(ps.PolyscaleError, match=r"population 'P' has 2 neurons in NEST but populations\['P'\]=3"):
        ps.run(model)
    model = ps.Model(seed=1, t_stop_ms=1.0)
    model.solver("net", pnest.NestNetwork(builder=f"{HERE}:reset_kernel", populations={"P": 3}, dt_ms=0.05))
    with pytest.raises(ps.PolyscaleError, match=r"changed the kernel"):
        ps.run(model)


@needs_nest
def test_two_nest_networks_in_one_process_say_use_zmq():
    model = ps.Model(seed=1, t_stop_ms=1.0)
    for name in ("a", "b"):
        model.solver(name, pnest.NestNetwork(builder=f"{HERE}:parrots", populations={"P": 3}))
    with pytest.raises(ps.PolyscaleError, match=r"--transport zmq"):
        ps.run(model)


@needs_nest
def test_nest_and_mass_on_zmq_write_the_inproc_run_file(tmp_path):
    """examples/brunel_nest.py on NEST, coupled both ways to a polyscale neural-mass brain:
    the run file's spikes and signals are equal on inproc and zmq (same seed: NEST's rng_seed
    comes from the solver's generator)."""
    runs = {t: ps.run(brunel_nest.build(backend="nest", scale=0.05, t_stop_ms=60.0),
                      out=tmp_path / f"{t}.h5", transport=t) for t in ("inproc", "zmq")}
    a, b = runs["inproc"], runs["zmq"]
    for pop in ("E", "I"):
        sa, sb = a.spikes("net", pop), b.spikes("net", pop)
        assert len(sa.times) > 50
        assert np.array_equal(sa.times, sb.times) and np.array_equal(sa.ids, sb.ids)
    ra, rb = a.signal("brain", "rate").data, b.signal("brain", "rate").data
    assert np.array_equal(ra, rb) and np.ptp(ra[:, 0]) > 0
