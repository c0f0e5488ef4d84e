"""Per-neuron model parameters of the point network (Population.params): every numeric field of
every neuron model may be one value per neuron or a distribution drawn from the solver's
generator.

References: NEST 3.10 with the same parameters set node by node (``SetStatus`` with one dict per
neuron; a subprocess, as NEST's kernel is one per process), for iaf_psc_delta, iaf_psc_exp and
aeif_cond_exp; and the homogeneous path of the same solver (checked against NEST and closed
forms in the other test files), which a population whose per-neuron values are all equal must
reproduce bit for bit.

Tolerances against NEST: the LIF models are integrated exactly by both (the same propagators in
double precision, evaluated in a different order), so V agrees to 1e-9 mV and spike times
exactly on the 0.1 ms grid. aeif_cond_exp: NEST's adaptive RKF45 against RK4 in 0.01 ms
substeps, as in test_point_adex.py: V within 1e-4 mV until a neuron's first spike, spike counts
equal and times within one step.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Spikes
from polyscale.coordinator.specs import SolverContext
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.point import (AeifCondExp, FixedIndegree, IafPscDelta, IafPscExp, Izhikevich, Normal,
                                     PointNetwork, Population, Projection, QIF)
from polyscale.solvers.point.network import per_neuron_fields

DT = 0.1
DT_TICKS = int(round(DT * TICKS_PER_MS))
T_MS = 300.0
N = 6
SPIKE_T = [10.0, 12.0, 20.0, 20.5, 30.0, 31.0, 32.0, 150.0]       # ms, into every neuron, delay 1 ms
SPIKE_W = [1.0, 1.0, -2.0, 1.6, 4.0, 4.0, 4.0, -3.0]               # times the model's weight scale

# polyscale field -> NEST parameter name
NEST_NAMES = {"tau_m_ms": "tau_m", "c_m_pF": "C_m", "e_l_mV": "E_L", "v_th_mV": "V_th", "v_reset_mV": "V_reset",
              "t_ref_ms": "t_ref", "i_e_pA": "I_e", "v_init_mV": "V_m", "tau_syn_ex_ms": "tau_syn_ex",
              "tau_syn_in_ms": "tau_syn_in", "g_l_nS": "g_L", "delta_t_mV": "Delta_T", "a_nS": "a", "b_pA": "b",
              "tau_w_ms": "tau_w", "v_peak_mV": "V_peak", "e_ex_mV": "E_ex", "e_in_mV": "E_in"}


def lif_params(rng, syn: bool) -> dict:
    """Per-neuron LIF parameters spread widely around NEST's defaults (times on the 0.1 ms grid,
    as NEST rounds t_ref to steps); I_e around the rheobase, so some neurons fire and some not."""
    e_l = rng.uniform(-75.0, -60.0, N)
    p = {"tau_m_ms": rng.uniform(6.0, 25.0, N), "c_m_pF": rng.uniform(150.0, 350.0, N), "e_l_mV": e_l,
         "v_th_mV": e_l + rng.uniform(10.0, 20.0, N), "v_reset_mV": e_l + rng.uniform(-5.0, 5.0, N),
         "t_ref_ms": np.round(rng.uniform(0.5, 4.0, N), 1), "v_init_mV": e_l + rng.uniform(0.0, 8.0, N)}
    p["i_e_pA"] = p["c_m_pF"] / p["tau_m_ms"] * (p["v_th_mV"] - e_l) * rng.uniform(0.9, 1.6, N)
    if syn:
        p["tau_syn_ex_ms"] = rng.uniform(0.5, 4.0, N)
        p["tau_syn_in_ms"] = rng.uniform(1.0, 8.0, N)
    return p


def aeif_params(rng) -> dict:
    e_l = rng.uniform(-72.0, -68.0, N)
    return {"c_m_pF": rng.uniform(200.0, 320.0, N), "g_l_nS": rng.uniform(20.0, 40.0, N),
            "e_l_mV": e_l, "v_init_mV": e_l + rng.uniform(-3.0, 3.0, N), "delta_t_mV": rng.uniform(1.0, 3.0, N),
            "v_th_mV": rng.uniform(-52.0, -48.0, N), "v_reset_mV": rng.uniform(-62.0, -55.0, N),
            "a_nS": rng.uniform(0.0, 8.0, N), "b_pA": rng.uniform(40.0, 120.0, N),
            "tau_w_ms": rng.uniform(80.0, 200.0, N), "t_ref_ms": np.round(rng.uniform(0.0, 2.0, N), 1),
            "tau_syn_ex_ms": rng.uniform(0.2, 2.0, N), "tau_syn_in_ms": rng.uniform(1.0, 5.0, N),
            "i_e_pA": rng.uniform(600.0, 1000.0, N)}


CASES = {  # name: (model class, parameters, weight scale: mV, pA or nS)
    "iaf_psc_delta": (IafPscDelta, lif_params(np.random.default_rng(1), syn=False), 2.0),
    "iaf_psc_exp": (IafPscExp, lif_params(np.random.default_rng(2), syn=True), 150.0),
    "aeif_cond_exp": (AeifCondExp, aeif_params(np.random.default_rng(3)), 5.0),
}

NEST_SCRIPT = r"""
import json, os, sys
os.environ["PYNEST_QUIET"] = "1"
import nest
cases = json.loads(sys.argv[1])
out = {}
for name, (params, wscale) in cases.items():
    nest.ResetKernel()
    nest.set(resolution=%(dt)r, print_time=False)
    n = nest.Create(name, %(n)d)
    nest.SetStatus(n, params)                      # one dict per neuron
    sg = nest.Create("spike_generator", params={"spike_times": %(st)r,
                                                 "spike_weights": [w * wscale for w in %(sw)r]})
    nest.Connect(sg, n, syn_spec={"delay": 1.0})
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": %(dt)r})
    sr = nest.Create("spike_recorder")
    nest.Connect(mm, n)
    nest.Connect(n, sr)
    nest.Simulate(%(t)r)
    ev, sp = mm.get("events"), sr.get("events")
    ids = [int(x) for x in n.tolist()]
    out[name] = {"t": [list(ev["times"][ev["senders"] == g]) for g in ids],
                 "v": [list(ev["V_m"][ev["senders"] == g]) for g in ids],
                 "spikes": [list(sp["times"][sp["senders"] == g]) for g in ids]}
print("RESULT" + json.dumps(out))
""" % {"dt": DT, "n": N, "st": SPIKE_T, "sw": SPIKE_W, "t": T_MS}


@pytest.fixture(scope="module")
def nest_runs():
    nest = pytest.importorskip("nest")
    del nest
    arg = {name: ([{NEST_NAMES[k]: float(v[i]) for k, v in params.items()} for i in range(N)], wscale)
           for name, (_, params, wscale) in CASES.items()}
    res = subprocess.run([sys.executable, "-c", NEST_SCRIPT, json.dumps(arg)], capture_output=True, text=True,
                         timeout=300)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")]
    if not line:
        pytest.fail(f"NEST run failed: {res.stderr[-2000:]}")
    return json.loads(line[0][len("RESULT"):])


def polyscale_run(model, params, wscale):
    """V (N, steps) mV at the start of every step and spike times per neuron (ms), the NEST
    protocol: a spike stamped T = t + 1 ms in NEST acts at the end of the step ending at T, an
    input arriving at tick T - dt here (test_point_adex.py)."""
    s = PointNetwork(populations=(Population(name="P", size=N, model=model, record_v=True, params=params),),
                     dt_ms=DT).build(SolverContext("n", 0, np.random.default_rng(0)))
    arrive = np.rint((np.array(SPIKE_T) + 1.0 - DT) / DT).astype(np.int64) * DT_TICKS
    w = np.array(SPIKE_W) * wscale
    v, out = [], [[] for _ in range(N)]
    win = 100
    for k in range(0, int(round(T_MS / DT)), win):
        t0, t1 = k * DT_TICKS, (k + win) * DT_TICKS
        sel = (arrive >= t0) & (arrive < t1)
        ticks = np.repeat(arrive[sel], N)
        ids = np.tile(np.arange(N), int(sel.sum()))
        r = s.advance(t0, t1, {"P.spikes_in": Spikes(ticks, ids, np.repeat(w[sel], N))})
        v.append(r.outputs["P.V_m"].data)
        sp = r.outputs["P.spikes"]
        for t, i in zip(sp.ticks, sp.ids):
            out[int(i)].append(t / TICKS_PER_MS)
    return np.concatenate(v).T, [np.array(x) for x in out]


@pytest.mark.parametrize("name", sorted(CASES))
def test_per_neuron_parameters_against_nest_setstatus(nest_runs, name):
    cls, params, wscale = CASES[name]
    v, spikes = polyscale_run(cls(), {k: v.tolist() for k, v in params.items()}, wscale)
    ref = nest_runs[name]
    t = DT * np.arange(v.shape[1])
    fired = 0
    for i in range(N):
        tn, vn, sn = np.array(ref["t"][i]), np.array(ref["v"][i]), np.array(ref["spikes"][i])
        if name == "aeif_cond_exp":
            # until the neuron's first spike (after it the two integrators' resets differ)
            upto = tn < (sn[0] - 1.0 if sn.size else T_MS)
            assert np.abs(np.interp(tn[upto], t, v[i]) - vn[upto]).max() < 1e-4
            assert spikes[i].size == sn.size
            if sn.size:
                assert np.abs(spikes[i] - sn).max() <= DT + 1e-9
        else:
            # NEST samples V after the step ending at t, polyscale at the start of the step at t
            assert np.abs(np.interp(tn, t, v[i]) - vn).max() < 1e-9
            np.testing.assert_allclose(spikes[i], sn, rtol=0, atol=1e-9)
        fired += sn.size > 0
    # the heterogeneity matters: neurons differ, some fire and (LIF) some do not
    assert fired >= 2
    assert len({len(x) for x in ref["spikes"]}) >= 2


@pytest.mark.parametrize("model", [IafPscDelta(), IafPscExp(), Izhikevich(), QIF(eta_bar=1.0), AeifCondExp(i_e_pA=700.0)],
                         ids=lambda m: m.type)
def test_equal_per_neuron_values_reproduce_the_shared_path_bit_for_bit(model):
    """Every per-neuron field given, each with the model's own value for all neurons: the per-neuron
    path (one parameter row per neuron) gives the shared path's spikes and V exactly, in a
    recurrent network with a Poisson drive."""
    def run(params):
        pop = Population(name="P", size=40, model=model, poisson_rate_hz=8000.0,
                         poisson_weight=60.0 if model.weight_units == "pA" else 2.0, record_v=True, params=params)
        m = ps.Model(seed=5, t_stop_ms=100.0)
        m.solver("net", PointNetwork(populations=(pop,), projections=(
            Projection(source="P", target="P", rule=FixedIndegree(indegree=5), weight=Normal(mean=-1.0, std=0.2),
                       delay_ms=1.5),)))
        m.record("net.P.spikes")
        m.record("net.P.V_m")
        r = ps.run(m)
        return r.spikes("net", "P"), np.asarray(r.signal("net", "P.V_m").data)
    same = {f: [getattr(model, f)] * 40 for f in per_neuron_fields(model) if getattr(model, f) is not None}
    (sa, va), (sb, vb) = run(None), run(same)
    assert np.array_equal(sa.times, sb.times) and np.array_equal(sa.ids, sb.ids)
    assert np.array_equal(va, vb)
    assert len(sa.times) > 20 and np.ptp(va) > 1.0


def test_distributions_are_drawn_per_neuron_from_the_solver_generator():
    """A Distribution gives each neuron its own value (bounds respected), the same for the same
    seed; the drawn membrane time constants give each neuron its own exact decay: V(t) of a
    neuron started at E_L + 10 mV without input is 10 exp(-t / tau_i) mV above E_L."""
    pop = Population(name="P", size=50, model=IafPscDelta(v_init_mV=-60.0, v_th_mV=0.0),
                     params={"tau_m_ms": Normal(mean=15.0, std=5.0, low=5.0, high=30.0)}, record_v=True)
    spec = PointNetwork(populations=(pop,), dt_ms=DT)
    a = spec.build(SolverContext("n", 0, np.random.default_rng(7)))
    b = spec.build(SolverContext("n", 0, np.random.default_rng(7)))
    tau = -DT / np.log(a.hpar[a.hrow, 0])       # P_DECAY_V = exp(-h / tau_m)
    assert np.array_equal(a.hpar, b.hpar) and np.all((tau >= 5.0 - 1e-9) & (tau <= 30.0 + 1e-9))
    assert np.unique(np.round(tau, 9)).size == 50 and abs(tau.mean() - 15.0) < 2.5
    r = a.advance(0, 200 * DT_TICKS, {})
    t = DT * np.arange(200)
    expect = -70.0 + 10.0 * np.exp(-t[:, None] / tau[None, :])
    np.testing.assert_allclose(r.outputs["P.V_m"].data, expect, rtol=0, atol=1e-9)


def test_spec_round_trip_and_errors_name_the_field():
    pop = Population(name="P", size=3, model=IafPscExp(),
                     params={"tau_m_ms": np.array([5.0, 10.0, 20.0]), "c_m_pF": Normal(mean=250.0, std=10.0)})
    assert pop.params["tau_m_ms"] == (5.0, 10.0, 20.0)
    assert Population.from_dict(pop.to_dict()) == pop
    with pytest.raises(ModelError, match=r"'params' key 'tau_w_ms' is not a per-neuron parameter of iaf_psc_exp "
                                         r"\(allowed: tau_m_ms, c_m_pF"):
        Population(name="P", size=3, model=IafPscExp(), params={"tau_w_ms": [1.0, 2.0, 3.0]})
    with pytest.raises(ModelError, match=r"params\['tau_m_ms'\] must be a Distribution or 3 finite numbers, one "
                                         r"per neuron \(got \[1.0, 2.0\]\)"):
        Population(name="P", size=3, params={"tau_m_ms": [1.0, 2.0]})
    with pytest.raises(ModelError, match=r"params\['v_th_mV'\] must be a Distribution or 3 finite numbers"):
        Population(name="P", size=3, params={"v_th_mV": [1.0, float("nan"), 2.0]})
    with pytest.raises(ModelError, match=r"'v_th_mV' is given both as the population's field and in 'params'"):
        Population(name="P", size=3, v_th_mV=Normal(mean=-50.0, std=1.0), params={"v_th_mV": [1.0, 2.0, 3.0]})
    with pytest.raises(ModelError, match=r"'params' key 'eta_bar' is not a per-neuron parameter of qif"):
        Population(name="P", size=3, model=QIF(), params={"eta_bar": [1.0, 2.0, 3.0]})
    bad = PointNetwork(populations=(Population(name="P", size=3, params={"tau_m_ms": [10.0, -1.0, 10.0]}),))
    with pytest.raises(ModelError, match=r"population 'P' neuron 1: .*'tau_m_ms' must be a finite number > 0 "
                                         r"\(got -1.0\)"):
        bad.build(SolverContext("n", 0, np.random.default_rng(0)))
    bad = PointNetwork(populations=(Population(name="P", size=2, params={"v_reset_mV": [-70.0, -50.0]}),))
    with pytest.raises(ModelError, match=r"neuron 1: .*'v_reset_mV' must be below 'v_th_mV'"):
        bad.build(SolverContext("n", 0, np.random.default_rng(0)))
