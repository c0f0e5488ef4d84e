"""STDP of point-network projections (solvers/point/plasticity.py) against NEST 3's stdp_synapse.

Both sides get the same given pre- and postsynaptic spike trains: in NEST, parrot neurons driven
by spike generators (the plastic connections onto receptor 1 of the postsynaptic parrots, which
does not repeat spikes); here, relay neurons driven through ``spikes_in`` by one strong input
spike a step before each wanted spike (the test checks they fire exactly then). Weights,
final and after every window, must agree to 1e-9 relative: both sides do the same operations in
double precision, up to the rounding of spike times in ms (NEST counts tics, we multiply steps by
dt), far below the 1e-6 the issue asks for.
"""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Spikes
from polyscale.coordinator.specs import SolverContext
from polyscale.solvers.point import (STDP, AllToAll, FixedIndegree, IafPscDelta, PointNetwork, Population,
                                     Projection)

DT = 0.1
TICKS = 100_000          # ticks per step of 0.1 ms (coordinator/time.py: 1e6 ticks per ms)
# relay neurons: one 100 mV input makes them fire at the end of that step; plastic inputs
# (at most w_max = 1 mV each) decay with tau_m 10 ms and stay far below the 10 mV threshold
RELAY = IafPscDelta(tau_m_ms=10.0, e_l_mV=0.0, v_th_mV=10.0, v_reset_mV=0.0, t_ref_ms=0.1, v_init_mV=0.0)
N_PRE, N_POST = 3, 2
DELAYS_MS = (1.0, 2.3)
T_MS = 600.0

ADDITIVE = STDP(tau_plus_ms=15.0, tau_minus_ms=25.0, lambda_=0.3, alpha=0.35, mu_plus=0.0, mu_minus=0.0,
                w_max=1.0)
MULTIPLICATIVE = STDP(tau_plus_ms=20.0, tau_minus_ms=30.0, lambda_=0.05, alpha=0.9, mu_plus=1.0,
                      mu_minus=1.0, w_max=1.0)


def trains(seed, n, rate_hz, t_ms):
    """Spike steps (each array sorted) of n Poisson-like trains on the grid, at least 3 steps
    apart (relay neurons are refractory for one step), within [5, t_ms / DT - 5] steps."""
    rng = np.random.default_rng(seed)
    n_steps = int(round(t_ms / DT))
    out = []
    for _ in range(n):
        k = np.flatnonzero(rng.random(n_steps) < rate_hz * DT * 1e-3)
        k = k[(k >= 5) & (k <= n_steps - 5)]
        keep = [k[0]] if len(k) else []
        for x in k[1:]:
            if x - keep[-1] >= 3:
                keep.append(x)
        out.append(np.array(keep, np.int64))
    return out


def with_ties(pre, post):
    """Add postsynaptic spikes exactly one delay before some presynaptic ones (t_post + d =
    t_pre: NEST counts such a pair as facilitation, and not in the depressing trace), and make
    postsynaptic neuron 0 follow presynaptic neuron 0 by 1.5 ms after arrival (so that some
    weights grow to w_max)."""
    post = [p.copy() for p in post]
    post[0] = np.union1d(post[0], pre[0] + int(round(DELAYS_MS[0] / DT)) + 15)
    for j in range(N_POST):
        for d in DELAYS_MS:
            extra = pre[j][::4] - int(round(d / DT))
            merged = np.union1d(post[j], extra[extra >= 5])
            keep = [merged[0]]
            for x in merged[1:]:
                if x - keep[-1] >= 3:
                    keep.append(x)
            post[j] = np.array(keep, np.int64)
    return post


def network(stdp, w0=0.5):
    return PointNetwork(populations=(Population(name="pre", size=N_PRE, model=RELAY),
                                     Population(name="post", size=N_POST, model=RELAY)),
                        projections=tuple(Projection(source="pre", target="post", rule=AllToAll(), weight=w0,
                                                     delay_ms=d, plasticity=stdp) for d in DELAYS_MS),
                        dt_ms=DT)


def drive(steps):
    """(ticks, ids) of the input spikes that make neuron i fire at each step of steps[i]."""
    ticks = np.concatenate([(s - 1) * TICKS for s in steps])
    ids = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(steps)])
    order = np.argsort(ticks, kind="stable")
    return ticks[order], ids[order]


def run_ours(stdp, pre, post, bounds_ms):
    """Run the network over windows split at ``bounds_ms``; return the weights after every
    window ({(src, tgt, delay_ms): weight} per window) and the spikes of pre and post."""
    solver = network(stdp).build(SolverContext("net", 1, np.random.default_rng(1)))
    inputs = {"pre": drive(pre), "post": drive(post)}
    ticks = [int(round(b / DT)) * TICKS for b in bounds_ms]
    after, fired = [], {"pre": [], "post": []}
    for t0, t1 in zip(ticks[:-1], ticks[1:]):
        win = {}
        for name, (tk, ids) in inputs.items():
            keep = (tk >= t0) & (tk < t1)
            win[f"{name}.spikes_in"] = Spikes(tk[keep], ids[keep], np.full(int(keep.sum()), 100.0))
        out = solver.advance(t0, t1, win).outputs
        for name in fired:
            fired[name].append((out[f"{name}.spikes"].ticks, out[f"{name}.spikes"].ids))
        ws = {}
        for q, d in enumerate(DELAYS_MS):
            src, tgt, w = solver.weights("pre", "post", q)
            ws.update({(int(s), int(t), d): float(x) for s, t, x in zip(src, tgt, w)})
        after.append(ws)
    spikes = {}
    for name, parts in fired.items():
        tk = np.concatenate([p[0] for p in parts])
        ids = np.concatenate([p[1] for p in parts])
        spikes[name] = [np.sort(tk[ids == i] // TICKS) for i in range(N_PRE if name == "pre" else N_POST)]
    return after, spikes, solver


def run_nest(nest, stdp, pre, post, t_ms, w0=0.5):
    """NEST 3's stdp_synapse between parrot neurons firing at the given steps: the weight
    recorder's events and the final weights {(src, tgt, delay_ms): weight}."""
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT, "print_time": False, "local_num_threads": 1})
    # a generator spike at t reaches its parrot after one step: the parrot fires at t + DT
    gen_pre = nest.Create("spike_generator", N_PRE, params=[{"spike_times": np.round((s - 1) * DT, 10)}
                                                            for s in pre])
    gen_post = nest.Create("spike_generator", N_POST, params=[{"spike_times": np.round((s - 1) * DT, 10)}
                                                              for s in post])
    p_pre = nest.Create("parrot_neuron", N_PRE)
    p_post = nest.Create("parrot_neuron", N_POST, params={"tau_minus": stdp.tau_minus_ms})
    nest.Connect(gen_pre, p_pre, "one_to_one", syn_spec={"delay": DT})
    nest.Connect(gen_post, p_post, "one_to_one", syn_spec={"delay": DT})
    wr = nest.Create("weight_recorder")
    nest.CopyModel("stdp_synapse", "stdp_test", {"weight_recorder": wr})
    for d in DELAYS_MS:
        nest.Connect(p_pre, p_post, "all_to_all",
                     syn_spec={"synapse_model": "stdp_test", "weight": w0, "delay": d, "receptor_type": 1,
                               "tau_plus": stdp.tau_plus_ms, "lambda": stdp.lambda_, "alpha": stdp.alpha,
                               "mu_plus": stdp.mu_plus, "mu_minus": stdp.mu_minus, "Wmax": stdp.w_max})
    rec = nest.Create("spike_recorder")
    nest.Connect(p_pre + p_post, rec)
    nest.Simulate(t_ms + 5.0)    # past t_ms, so every presynaptic spike before it is delivered
    c = nest.GetConnections(p_pre, p_post).get(["source", "target", "delay", "weight"])
    a, b = p_pre[0].global_id, p_post[0].global_id
    key = lambda s, t, d: (int(s) - a, int(t) - b, float(np.round(d, 6)))    # noqa: E731
    delays = {}
    for s, t, d in zip(c["source"], c["target"], c["delay"]):
        delays.setdefault((int(s), int(t)), []).append(float(d))
    ev = wr.get("events")
    ev_keys = []
    # the weight recorder gives no delay: events of one pair alternate between its connections
    # in creation order (NEST delivers a spike to a source's connections in that order)
    seen = {}
    for s, t in zip(ev["senders"], ev["targets"]):
        n = seen.get((int(s), int(t)), 0)
        seen[(int(s), int(t))] = n + 1
        ds = delays[(int(s), int(t))]
        ev_keys.append(key(s, t, ds[n % len(ds)]))
    fired = rec.get("events")
    steps = {gid: np.sort(np.round(fired["times"][fired["senders"] == gid] / DT).astype(np.int64))
             for gid in set(fired["senders"].tolist())}
    final = {key(s, t, d): float(w) for s, t, d, w in zip(c["source"], c["target"], c["delay"], c["weight"])}
    return (np.asarray(ev["times"]), ev_keys, np.asarray(ev["weights"])), final, steps, (a, b)


@pytest.mark.parametrize("stdp", [ADDITIVE, MULTIPLICATIVE], ids=["additive", "multiplicative"])
def test_weights_match_nest_stdp_synapse_final_and_after_every_window(stdp):
    nest = pytest.importorskip("nest", reason="NEST is the reference for STDP (pip install nest-simulator)")
    pre = trains(10, N_PRE, 40.0, T_MS)
    post = with_ties(pre, trains(11, N_POST, 30.0, T_MS))
    bounds = [0.0, 33.3, 100.0, 250.7, 400.0, T_MS]
    after, spikes, _ = run_ours(stdp, pre, post, bounds)
    # our relays fired exactly at the given steps
    for got, want in zip(spikes["pre"] + spikes["post"], pre + post):
        assert got.tolist() == want.tolist()
    (ev_t, ev_key, ev_w), final, nest_steps, (a, b) = run_nest(nest, stdp, pre, post, T_MS)
    for i in range(N_PRE):
        assert nest_steps[a + i].tolist() == pre[i].tolist()
    for j in range(N_POST):
        assert nest_steps.get(b + j, np.zeros(0)).tolist() == post[j].tolist()
    # final weights: every synapse, and they moved (the test would not see a broken update otherwise)
    ours = after[-1]
    assert sorted(ours) == sorted(final)
    got = np.array([ours[k] for k in sorted(final)])
    want = np.array([final[k] for k in sorted(final)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    assert np.all(np.abs(want - 0.5) > 1e-3)
    if stdp is ADDITIVE:
        # the additive rule ran into the lower bound on the way (NEST's clipping reproduced)
        assert ev_w.min() == 0.0
    # after every window: NEST's weight after the last presynaptic spike before the window's end
    for end, ws in zip(bounds[1:], after):
        last = {}
        for t, k, w in zip(ev_t, ev_key, ev_w):
            if t < end - 1e-9:
                last[k] = w
        for k, w in ws.items():
            np.testing.assert_allclose(w, last.get(k, 0.5), rtol=1e-9, atol=0, err_msg=f"{k} at {end} ms")


def test_closed_form_pairs_and_the_bounds():
    """One synapse (delay 1 ms), additive, lambda 0.6, alpha 1, w0 0.5, w_max 1, tau+ 20 ms,
    tau- 30 ms, by hand from the rule (module docstring of plasticity.py):
    pre at 10 ms: no postsynaptic spikes, K+ = 0: w stays 0.5, then K+ = 1;
    post at 11 ms (at the synapse at 12 ms); pre at 12 ms: the post spike is in
    (10 - 1, 12 - 1], facilitation 0.5 + 0.6 exp(-(12 - 10) / 20) > 1: capped at w_max; K- of
    postsynaptic spikes strictly before 11 ms is 0: w = w_max exactly;
    pre at 20 ms: no new post spike; depression by K-(19 ms) = exp(-8 / 30): w = 1 - 0.6 exp(-8/30);
    pre at 21 ms: no new post spike, depression by 0.6 exp(-9 / 30);
    pre at 22 ms: depression by 0.6 exp(-10 / 30) floors it at 0."""
    rule = STDP(tau_plus_ms=20.0, tau_minus_ms=30.0, lambda_=0.6, alpha=1.0, mu_plus=0.0, mu_minus=0.0,
                w_max=1.0)
    net = PointNetwork(populations=(Population(name="pre", size=1, model=RELAY),
                                    Population(name="post", size=1, model=RELAY)),
                       projections=(Projection(source="pre", target="post", rule=AllToAll(), weight=0.5,
                                               delay_ms=1.0, plasticity=rule),), dt_ms=DT)
    solver = net.build(SolverContext("net", 1, np.random.default_rng(1)))
    pre, post = [np.array([100, 120, 200, 210, 220])], [np.array([110])]
    assert 0.5 + 0.6 * np.exp(-2 / 20) > 1
    want = {100: 0.5, 120: 1.0, 200: 1.0 - 0.6 * np.exp(-8 / 30)}
    want[210] = want[200] - 0.6 * np.exp(-9 / 30)
    want[220] = 0.0
    assert want[210] > 0 and want[210] - 0.6 * np.exp(-10 / 30) < 0
    inputs = {"pre": drive(pre), "post": drive(post)}

    def advance(t0, t1):
        win = {}
        for name, (tk, ids) in inputs.items():
            keep = (tk >= t0) & (tk < t1)
            win[f"{name}.spikes_in"] = Spikes(tk[keep], ids[keep], np.full(int(keep.sum()), 100.0))
        solver.advance(t0, t1, win)

    for k in sorted(want):
        # up to the step after the presynaptic spike at step k, whose update it holds
        advance(solver.step * TICKS, (k + 1) * TICKS)
        np.testing.assert_allclose(solver.weights("pre", "post")[2], [want[k]], rtol=1e-14, atol=0,
                                   err_msg=f"after the presynaptic spike at step {k}")


def test_weights_do_not_depend_on_how_the_run_is_split_into_windows():
    """Bitwise the same weights and spikes for one window, for many small ones and for odd splits."""
    pre = trains(20, N_PRE, 50.0, 300.0)
    post = with_ties(pre, trains(21, N_POST, 40.0, 300.0))
    ref, ref_spk, _ = run_ours(MULTIPLICATIVE, pre, post, [0.0, 300.0])
    for bounds in ([0.0, 0.1, 0.2, 1.0, 2.3, 150.0, 299.9, 300.0], list(np.arange(0.0, 300.1, 1.5))):
        got, spk, _ = run_ours(MULTIPLICATIVE, pre, post, bounds)
        assert got[-1] == ref[-1]
        for name in spk:
            assert [s.tolist() for s in spk[name]] == [s.tolist() for s in ref_spk[name]]


def test_a_short_postsynaptic_history_that_overflows_fails_with_a_clear_message():
    """A presynaptic neuron silent while its target fires more than ``history`` times."""
    pre = [np.array([10, 2000]), np.array([10]), np.array([10])]
    post = [np.arange(20, 1500, 10), np.arange(20, 1500, 10)]
    with pytest.raises(ModelError, match="history"):
        run_ours(MULTIPLICATIVE.replace(history=8), pre, post, [0.0, 250.0])
    # the same with enough history runs
    run_ours(MULTIPLICATIVE.replace(history=200), pre, post, [0.0, 250.0])


def test_bad_stdp_specs_are_rejected_naming_the_field():
    with pytest.raises(ModelError, match="w_max"):
        Projection(source="a", target="b", rule=AllToAll(), weight=2.0, plasticity=STDP(w_max=1.0))
    with pytest.raises(ModelError, match="w_max"):
        Projection(source="a", target="b", rule=AllToAll(), weight=-0.5, plasticity=STDP(w_max=1.0))
    with pytest.raises(ModelError, match="tau_plus_ms"):
        STDP(tau_plus_ms=0.0)
    with pytest.raises(ModelError, match="dense"):
        Projection(source="a", target="b", rule=AllToAll(), weight=0.5, dense=True, plasticity=STDP())
    pops = (Population(name="a", size=2), Population(name="b", size=2))
    with pytest.raises(ModelError, match="tau_minus_ms"):
        PointNetwork(populations=pops, projections=(
            Projection(source="a", target="b", rule=AllToAll(), weight=0.5, plasticity=STDP(tau_minus_ms=20.0)),
            Projection(source="b", target="b", rule=AllToAll(), weight=0.5, plasticity=STDP(tau_minus_ms=30.0))))


def test_spec_round_trips_and_static_projections_keep_float32_weights():
    net = PointNetwork(populations=(Population(name="a", size=20), Population(name="b", size=20)),
                       projections=(Projection(source="a", target="b", rule=FixedIndegree(indegree=5), weight=0.5,
                                               plasticity=STDP(lambda_=0.02)),
                                    Projection(source="b", target="a", rule=FixedIndegree(indegree=5), weight=0.5)))
    assert PointNetwork.from_dict(net.to_dict()) == net
    solver = net.build(SolverContext("net", 1, np.random.default_rng(1)))
    # the static projection (constant weight) is a target-only group: 2 bytes per synapse
    assert solver.c_tgt.dtype == np.uint16 and solver.c_tgt.shape == (100,) and solver.weight.shape == (0,)
    assert np.all(solver.csr()[2] == np.float32(0.5))
    src, tgt, w = solver.weights("a", "b")
    assert w.dtype == np.float64 and w.shape == (100,) and np.all(w == 0.5)
    assert solver.n_synapses == 200
    assert np.bincount(tgt, minlength=20).tolist() == [5] * 20


def plastic_run(transport="inproc", window_ms=None, plastic=True):
    e = IafPscDelta(tau_m_ms=20.0, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0, t_ref_ms=2.0,
                    v_init_mV=0.0)
    rule = STDP(lambda_=0.05, alpha=1.05, w_max=2.0, history=64) if plastic else None
    net = PointNetwork(populations=(Population(name="E", size=80, model=e, poisson_rate_hz=20000.0,
                                               poisson_weight=0.1),),
                       projections=(Projection(source="E", target="E", rule=FixedIndegree(indegree=20), weight=1.0,
                                               delay_ms=1.5, plasticity=rule),), dt_ms=0.1)
    m = ps.Model(seed=7, t_stop_ms=80.0, window_ms=window_ms)
    m.solver("net", net)
    m.record("net.E.spikes")
    sp = ps.run(m, transport=transport).spikes("net", "E")
    return sp.times, sp.ids


def test_a_plastic_network_gives_the_same_spikes_on_every_transport(transport):
    """The spec (with its STDP) travels to worker processes and runs there as in process; the
    weights matter (a static copy of the network spikes differently)."""
    ref = plastic_run()
    assert len(ref[0]) > 100
    for t, i in (plastic_run(transport=transport), plastic_run(window_ms=0.7)):
        assert np.array_equal(t, ref[0]) and np.array_equal(i, ref[1])
    static = plastic_run(plastic=False)
    assert not (len(static[0]) == len(ref[0]) and np.array_equal(static[0], ref[0]))
