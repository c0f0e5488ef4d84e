"""The point network in coupled runs: ports, delays inside the network and from other solvers,
recording, and determinism across seeds, windows and transports."""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.plan import make_plan
from polyscale.solvers import SpikeTrain
from polyscale.solvers.point import (FixedIndegree, IafPscDelta, IafPscExp, OneToOne, PointNetwork, Population,
                                     Projection)

# Relay neurons: E_L 0, theta 10 mV, no leak to speak of over a few ms (tau_m 1e6 ms), so a
# 15 mV input spike makes a neuron fire at the end of the step it arrives in.
RELAY = IafPscDelta(tau_m_ms=1e6, e_l_mV=0.0, v_th_mV=10.0, v_reset_mV=0.0, t_ref_ms=1.0, v_init_mV=0.0)


def chain(delay_ms):
    """A -> B one-to-one with weight 15 mV, so each spike of A makes B fire delay_ms later."""
    return PointNetwork(populations=(Population(name="A", size=3, model=RELAY),
                                     Population(name="B", size=3, model=RELAY)),
                        projections=(Projection(source="A", target="B", rule=OneToOne(), weight=15.0,
                                                delay_ms=delay_ms),), dt_ms=0.1)


def test_ports_are_declared_per_population():
    ports = chain(1.0).ports()
    assert sorted(ports) == sorted(f"{p}.{k}" for p in "AB" for k in ("spikes", "spikes_in", "rate_in",
                                                                      "current_in"))
    assert ports["A.spikes"].size == 3 and ports["A.spikes"].direction == "out"
    assert ports["B.rate_in"].units == "Hz" and ports["B.rate_in"].size == 1
    assert ports["B.current_in"].units == "pA"


def test_spikes_in_then_delays_inside_the_network_are_exact():
    """A spike train arrives at A at 2.03 ms (coupling delay 2 ms after 0.03 ms): A integrates it
    over the step [2.0, 2.1) and spikes at 2.1 ms; B receives that spike 1.7 ms later and spikes
    at 3.8 ms. Neuron 2 gets a spike on the grid at 4.0 ms: it acts over [4.0, 4.1), A spikes at
    4.1, B at 5.8. Spikes are recorded as /spikes/net/A and /spikes/net/B."""
    m = ps.Model(seed=5, t_stop_ms=10.0)
    m.solver("stim", SpikeTrain(times_ms=(0.03, 2.0), ids=(0, 2), size=3))
    m.solver("net", chain(1.7))
    m.couple("stim.spikes", "net.A.spikes_in", delay_ms=2.0, weight=15.0)
    m.record("net.A.spikes")
    m.record("net.B.spikes")
    run = ps.run(m)
    a, b = run.spikes("net", "A"), run.spikes("net", "B")
    np.testing.assert_allclose(a.times, [2.1, 4.1], atol=1e-9)
    assert a.ids.tolist() == [0, 2]
    np.testing.assert_allclose(b.times, [3.8, 5.8], atol=1e-9)
    assert b.ids.tolist() == [0, 2]


def test_weak_input_spikes_do_not_fire():
    """The same stimulus with weight 5 mV (< theta 10 mV): no spikes at all."""
    m = ps.Model(seed=5, t_stop_ms=10.0)
    m.solver("stim", SpikeTrain(times_ms=(0.03,), ids=(0,), size=3))
    m.solver("net", chain(1.7))
    m.couple("stim.spikes", "net.A.spikes_in", delay_ms=2.0, weight=5.0)
    m.record("net.A.spikes")
    assert len(ps.run(m).spikes("net", "A").times) == 0


def test_network_spikes_drive_another_solver():
    """net.A.spikes coupled back into net.B.spikes_in of a second network behaves as a projection
    with the coupling delay: A fires at 2.1 ms, the second network's B at 2.1 + 3.0 + 0.1 ms (the
    spike arrives on the grid at 5.1 ms and acts over the step [5.1, 5.2))."""
    m = ps.Model(seed=5, t_stop_ms=10.0)
    m.solver("stim", SpikeTrain(times_ms=(0.03,), ids=(1,), size=3))
    m.solver("net", chain(1.7))
    m.solver("net2", chain(1.7))
    m.couple("stim.spikes", "net.A.spikes_in", delay_ms=2.0, weight=15.0)
    m.couple("net.A.spikes", "net2.B.spikes_in", delay_ms=3.0, weight=15.0)
    m.record("net2.B.spikes")
    b = ps.run(m).spikes("net2", "B")
    np.testing.assert_allclose(b.times, [5.2], atol=1e-9)
    assert b.ids.tolist() == [1]


def small_network(rate_hz=15000.0):
    e = IafPscDelta(tau_m_ms=20.0, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0, t_ref_ms=2.0,
                    v_init_mV=0.0)
    i = IafPscExp(tau_m_ms=10.0, c_m_pF=250.0, e_l_mV=-70.0, v_th_mV=-55.0, t_ref_ms=2.0)
    return PointNetwork(
        populations=(Population(name="E", size=200, model=e, poisson_rate_hz=rate_hz, poisson_weight=0.1),
                     Population(name="I", size=50, model=i, poisson_rate_hz=8000.0, poisson_weight=90.0)),
        projections=(Projection(source="E", target="E", rule=FixedIndegree(indegree=20), weight=0.1, delay_ms=1.5),
                     Projection(source="E", target="I", rule=FixedIndegree(indegree=20), weight=30.0, delay_ms=0.8),
                     Projection(source="I", target="E", rule=FixedIndegree(indegree=5), weight=-0.5, delay_ms=2.3),
                     Projection(source="I", target="I", rule=FixedIndegree(indegree=5), weight=-40.0,
                                delay_ms=1.0)),
        dt_ms=0.1)


def spikes_of(seed=3, window_ms=None, transport="inproc"):
    m = ps.Model(seed=seed, t_stop_ms=60.0, window_ms=window_ms)
    m.solver("net", small_network())
    m.record("net.E.spikes")
    m.record("net.I.spikes")
    run = ps.run(m, transport=transport)
    return [(run.spikes("net", p).times, run.spikes("net", p).ids) for p in "EI"]


def test_same_seed_same_spikes_whatever_the_window():
    """Determinism: the kernel's random stream and delivery depend only on the seed and the step
    order, not on how the run is cut into windows."""
    ref = spikes_of(3)
    assert len(ref[0][0]) > 50 and len(ref[1][0]) > 10       # both populations are active
    for other in (spikes_of(3), spikes_of(3, window_ms=0.7), spikes_of(3, window_ms=7.3)):
        for (t, i), (t2, i2) in zip(ref, other):
            assert np.array_equal(t, t2) and np.array_equal(i, i2)
    t, _ = spikes_of(4)[0]
    assert not (len(t) == len(ref[0][0]) and np.array_equal(t, ref[0][0]))


def test_same_spikes_on_every_transport(transport):
    ref = spikes_of(3)
    for (t, i), (t2, i2) in zip(ref, spikes_of(3, transport=transport)):
        assert np.array_equal(t, t2) and np.array_equal(i, i2)


def test_spec_round_trip_and_model_check():
    spec = small_network()
    assert PointNetwork.from_dict(spec.to_dict()) == spec
    m = ps.Model(seed=1, t_stop_ms=5.0)
    m.solver("net", spec)
    m.record("net.E.spikes")
    data = m.to_dict()
    assert ps.Model.from_dict(data).to_dict() == data
    make_plan(m)
    m.couple("net.E.spikes", "net.I.rate_in", delay_ms=1.0)
    with pytest.raises(ModelError, match="rate"):
        make_plan(m)


def test_errors_name_the_field():
    with pytest.raises(ModelError, match=r"'populations' must be a non-empty sequence of Population specs"):
        PointNetwork(populations=())
    with pytest.raises(ModelError, match=r"'poisson_rate_hz' must be a finite number >= 0 \(got -5\)"):
        Population(name="E", size=3, poisson_rate_hz=-5)
    with pytest.raises(ModelError, match=r"'size' must be an integer >= 1 \(got 0\)"):
        Population(name="E", size=0)


def test_mixed_delays_from_one_source():
    """A's synapses onto B (1.7 ms) and onto C (0.4 ms) sit in one CSR row with different delays
    (the per-synapse delivery path): A spikes at 2.1 ms, B at 3.8 ms, C at 2.5 ms."""
    net = PointNetwork(populations=tuple(Population(name=p, size=3, model=RELAY) for p in "ABC"),
                       projections=(Projection(source="A", target="B", rule=OneToOne(), weight=15.0, delay_ms=1.7),
                                    Projection(source="A", target="C", rule=OneToOne(), weight=15.0, delay_ms=0.4)),
                       dt_ms=0.1)
    m = ps.Model(seed=5, t_stop_ms=10.0)
    m.solver("stim", SpikeTrain(times_ms=(0.03,), ids=(1,), size=3))
    m.solver("net", net)
    m.couple("stim.spikes", "net.A.spikes_in", delay_ms=2.0, weight=15.0)
    for p in "ABC":
        m.record(f"net.{p}.spikes")
    run = ps.run(m)
    for p, t in (("A", 2.1), ("B", 3.8), ("C", 2.5)):
        sp = run.spikes("net", p)
        np.testing.assert_allclose(sp.times, [t], atol=1e-9)
        assert sp.ids.tolist() == [1]


@pytest.mark.parametrize("window_ms", [None, 5.0])
def test_a_spike_in_the_last_step_is_recorded_at_t_stop_as_nest_does(window_ms):
    """iaf_psc_delta with I_e = 400 pA (NEST's defaults otherwise) fires at 27.8 and 57.6 ms; a
    run to t_stop = 57.6 ms crosses threshold in its last step. NEST 3.10 stamps that spike at
    the step's end and reports it at t_stop; so does our run file (and not twice)."""
    t_stop = 57.6
    m = ps.Model(seed=1, t_stop_ms=t_stop, **({} if window_ms is None else {"window_ms": window_ms}))
    m.solver("net", PointNetwork(populations=(Population(name="A", size=1, model=IafPscDelta(i_e_pA=400.0)),)))
    m.record("net.A.spikes")
    ours = ps.run(m).spikes("net", "A").times
    nest = pytest.importorskip("nest", reason="NEST is the reference for the spike times")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "print_time": False, "local_num_threads": 1})
    n = nest.Create("iaf_psc_delta", params={"I_e": 400.0, "V_m": -70.0})
    rec = nest.Create("spike_recorder")
    nest.Connect(n, rec)
    nest.Simulate(t_stop)
    want = rec.get("events")["times"]
    assert len(want) == 2 and abs(want[-1] - t_stop) < 1e-9
    np.testing.assert_allclose(ours, want, atol=1e-9)


def test_the_spike_at_t_stop_is_recorded_on_every_transport(transport):
    m = ps.Model(seed=1, t_stop_ms=57.6)
    m.solver("net", PointNetwork(populations=(Population(name="A", size=1, model=IafPscDelta(i_e_pA=400.0)),)))
    m.record("net.A.spikes")
    np.testing.assert_allclose(ps.run(m, transport=transport).spikes("net", "A").times, [27.8, 57.6], atol=1e-9)


def test_split_spikes_groups_each_population_in_emission_order():
    """K.split_spikes against one boolean mask per population (what it replaced): the same
    ticks and population-local ids, population by population, bit for bit."""
    from polyscale.solvers.point import _kernels as K
    rng = np.random.default_rng(4)
    lo = np.array([0, 5, 5, 40, 41, 100], dtype=np.int64)        # an empty population too
    step = np.sort(rng.integers(0, 20, 300))
    ids = rng.integers(0, 100, 300)
    t0, dt = 7_000_000, 100_000
    ticks, local, first = np.empty(300, np.int64), np.empty(300, np.int64), np.empty(6, np.int64)
    K.split_spikes(step, ids, lo, t0, dt, ticks, local, first)
    for p in range(5):
        keep = (ids >= lo[p]) & (ids < lo[p + 1])
        np.testing.assert_array_equal(ticks[first[p]:first[p + 1]], t0 + step[keep] * dt)
        np.testing.assert_array_equal(local[first[p]:first[p + 1]], ids[keep] - lo[p])
    assert first[-1] == 300 and first[1] == first[2]
