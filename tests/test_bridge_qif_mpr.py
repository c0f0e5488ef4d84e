"""The level II <-> level III bridge (issue 9): a network of QIF neurons and its exact mean field,
the Montbrio-Pazo-Roxin neural mass (Montbrio, Pazo & Roxin 2015, Phys Rev X 5:021028), run
side by side and coupled both ways.

Parameters of the paper's Fig. 2: eta_bar = -5, Delta = 1, J = 15, tau = 10 ms, a step of input
I = 3 (bistable: the network jumps to the high state and stays there after the step).

Tolerances. The mean field is exact for infinitely many neurons. With N neurons whose eta are
the Lorentzian's quantiles (the paper's choice), the largest eta is
eta_N = eta_bar + Delta tan(pi/2 (N - 1)/(N + 1)) ~ 2 N Delta / pi, and the neurons of the
missing tail beyond it would fire at ~ sqrt(eta) / (pi tau) each: the network lacks
2 Delta / (pi^2 tau sqrt(eta_N)) of rate (0.25 Hz at N = 10^4, 0.57 Hz at N = 2000: 3% and 7%
of the low state's 8 Hz; it is the finite-size error the issue expects, ~5% at 10^4). The tests
allow that deficit plus 2% for the rest (finite v_peak with the paper's refractory handling,
spike times on the 0.01 ms grid); twice the deficit where two populations feed each other
(the loop's gain amplifies it: ~1.5x here).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import polyscale as ps
from polyscale.adapters import Affine, SpikesToRate
from polyscale.coordinator.signals import Samples
from polyscale.coordinator.specs import SolverContext
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.mass import RegionNetwork
from polyscale.solvers.mass.connectome import Connectome
from polyscale.solvers.mass.models import MontbrioPazoRoxin
from polyscale.solvers.point import QIF, AllToAll, PointNetwork, Population, Projection

TAU, ETA, DELTA, J = 10.0, -5.0, 1.0, 15.0
DT = 0.01           # ms, QIF and mass
MASS_DT = 0.005     # ms, the mean field alone (Heun): converged to < 0.1% here


def tail_deficit_hz(n: int) -> float:
    """Rate (Hz) the quantile-sampled network lacks: the Lorentzian's tail beyond its top eta."""
    eta_n = ETA + DELTA * math.tan(0.5 * math.pi * (n - 1) / (n + 1))
    return 1000.0 * 2 * DELTA / (math.pi ** 2 * TAU * math.sqrt(eta_n))


def qif_population(n: int, v0: float) -> PointNetwork:
    """n QIF neurons, all-to-all J / n (the paper's J tau r coupling), V starting at v0."""
    pop = Population(name="P", size=n, model=QIF(tau_m_ms=TAU, eta_bar=ETA, delta=DELTA), v_init_mV=v0)
    return PointNetwork(populations=(pop,), dt_ms=DT,
                        projections=(Projection(source="P", target="P", rule=AllToAll(), weight=J / n,
                                                delay_ms=DT, dense=True),))


def side_by_side(n: int, t_ms: float):
    """Rates (Hz) of the QIF network and of the mean field in 1 ms bins, both from r = 0, V = -2,
    with I = 3 over the middle third of the run."""
    def current(t):
        return np.where((t >= t_ms / 3) & (t < 2 * t_ms / 3), 3.0, 0.0)[:, None]

    qif = qif_population(n, -2.0).build(SolverContext("qif", 1, np.random.default_rng(1)))
    mass = RegionNetwork(model=MontbrioPazoRoxin(tau=TAU, eta=ETA, Delta=DELTA, J=J), dt_ms=MASS_DT,
                         initial_state=(0.0, -2.0)).build(None)
    w = TICKS_PER_MS
    q_dt, m_dt = round(DT * TICKS_PER_MS), round(MASS_DT * TICKS_PER_MS)
    rq, rm = [], []
    for k in range(int(t_ms)):
        t0 = k * w
        tq = (t0 + q_dt * np.arange(w // q_dt)) / TICKS_PER_MS
        res = qif.advance(t0, t0 + w, {"P.current_in": Samples(t0, q_dt, current(tq))})
        rq.append(len(res.outputs["P.spikes"]) / n * 1000.0)
        tm = (t0 + m_dt * np.arange(w // m_dt)) / TICKS_PER_MS
        rm.append(mass.advance(t0, t0 + w, {"input": Samples(t0, m_dt, current(tm))}).outputs["rate"].data.mean())
    return np.array(rq), np.array(rm)


def check_side_by_side(n: int, t_ms: float):
    rq, rm = side_by_side(n, t_ms)
    tol = 0.02 + tail_deficit_hz(n) / 8.0          # relative to the low state's ~8 Hz
    third = int(t_ms / 3)
    # stationary: the last half of each third (low state, high state with I, high state after)
    for k in range(3):
        a, b = k * third + third // 2, (k + 1) * third
        q, m = rq[a:b].mean(), rm[a:b].mean()
        assert abs(q / m - 1) < tol, f"third {k}: QIF {q:.2f} Hz, mean field {m:.2f} Hz, tolerance {tol:.1%}"
    # the step: the jump to the high state (first bin above 100 Hz) within 3 ms, the first
    # overshoot's peak within 10% (1 ms bins: ~N r dt = 2000+ spikes per bin at the peak, so
    # counting noise is a few %, the rest is the low state's deficit delaying the take-off)
    seg_q, seg_m = rq[third:2 * third], rm[third:2 * third]
    jq, jm = np.argmax(seg_q > 100.0), np.argmax(seg_m > 100.0)
    assert seg_m[jm] > 100.0 and abs(int(jq) - int(jm)) <= 3
    pq, pm = seg_q[jq:jq + 10].max(), seg_m[jm:jm + 10].max()
    assert abs(pq / pm - 1) < 0.10


def test_qif_network_matches_its_mean_field_fast():
    """2000 neurons, 150 ms."""
    check_side_by_side(2000, 150.0)


@pytest.mark.slow
def test_qif_network_matches_its_mean_field_10k():
    """10^4 neurons, 300 ms (the issue's size)."""
    check_side_by_side(10000, 300.0)


def two_nodes(w: float, delay_ms: float, t_ms: float, replaced=()):
    """Two MPR nodes coupled both ways (weight w, Linear coupling a = 1: c = w r(t - delay), r in
    1/ms), node 0 from (r, V) = (0, -2), node 1 from (0, -1)."""
    conn = Connectome(weights=((0.0, w), (w, 0.0)), speed_mm_per_ms=3.0,
                      tract_lengths_mm=((0.0, 3.0 * delay_ms), (3.0 * delay_ms, 0.0)))
    return RegionNetwork(model=MontbrioPazoRoxin(tau=TAU, eta=ETA, Delta=DELTA, J=J), connectome=conn,
                         dt_ms=DT, initial_state=((0.0, 0.0), (-2.0, -1.0)), replaced=replaced)


def check_coupled(n: int, t_ms: float):
    """Node 1 of a two-node mass network replaced by n QIF neurons: their spikes -> rate (0.1 ms
    bins, 1/ms) -> the mass's replaced input; the coupling the mass computes for node 1 -> the
    QIF neurons' current_in. The two couplings add 0.5 ms each way, so the pure two-node run
    has connectome delays 0.5 ms longer (2.5 ms) to be the same model."""
    w, d, dc = 100.0, 2.0, 0.5
    pure = ps.Model(seed=3, t_stop_ms=t_ms)
    pure.solver("mass", two_nodes(w, d + dc, t_ms))
    pure.record("mass.rate", every_ms=0.5)
    ref = ps.run(pure).signal("mass", "rate").data

    hyb = ps.Model(seed=3, t_stop_ms=t_ms)
    hyb.solver("mass", two_nodes(w, d, t_ms, replaced=(1,)))
    hyb.solver("qif", qif_population(n, -1.0))
    hyb.couple("mass.coupling[1]", "qif.P.current_in", delay_ms=dc)
    hyb.couple("qif.P.spikes", "mass.replaced", delay_ms=dc,
               via=[SpikesToRate(bin_ms=0.1), Affine(gain=1e-3, units="1/ms", produces="analog")])
    hyb.record("mass.rate", every_ms=0.5)
    hyb.record("qif.P.spikes")
    run = ps.run(hyb)
    got0 = run.signal("mass", "rate").data[:, 0]
    times = np.asarray(run.spikes("qif", "P").times)
    got1 = np.bincount((times / 0.5).astype(int), minlength=ref.shape[0])[:ref.shape[0]] / n / 0.5e-3
    half = ref.shape[0] // 2
    deficit = tail_deficit_hz(n) / ref[half:, 1].mean()
    # the stationary state (second half) of both nodes; node 0 only hears the deficit
    assert abs(got0[half:].mean() / ref[half:, 0].mean() - 1) < 0.02 + deficit
    assert abs(got1[half:].mean() / ref[half:, 1].mean() - 1) < 0.02 + 2 * deficit
    # the transient from rest (first quarter: 0 -> 9 Hz), node 0, 5 ms means; + 0.5 Hz for the
    # counting noise of the 0.1 ms bins that reaches node 0 through the coupling
    q = ref.shape[0] // 4
    m_ref = ref[:q, 0].reshape(-1, 10).mean(axis=1)
    m_got = got0[:q].reshape(-1, 10).mean(axis=1)
    assert np.max(np.abs(m_got - m_ref)) < (0.02 + deficit) * ref[half:, 0].mean() + 0.5


def test_qif_population_replaces_a_mass_node_fast():
    check_coupled(2000, 100.0)


@pytest.mark.slow
def test_qif_population_replaces_a_mass_node_10k():
    check_coupled(10000, 200.0)


def test_bridge_example_runs_and_passes_check(examples_dir):
    """examples/qif_mpr_bridge.py: both variants pass ps.check and run a few ms."""
    from polyscale.coordinator.config import load_model
    for replace in (True, False):
        model = load_model(examples_dir / "qif_mpr_bridge.py", {"n": 500, "t_stop_ms": 5.0, "replace": replace})
        ps.check(model)
        assert ps.run(model).status == "complete"


def test_bridge_is_the_same_on_every_transport(examples_dir, transport):
    """Same seed, same spikes and mass rates, whatever the transport."""
    from polyscale.coordinator.config import load_model
    model = load_model(examples_dir / "qif_mpr_bridge.py", {"n": 500, "t_stop_ms": 20.0})
    a, b = ps.run(model), ps.run(model, transport=transport)
    assert len(a.spikes("qif", "P").times) > 10
    np.testing.assert_array_equal(a.spikes("qif", "P").times, b.spikes("qif", "P").times)
    np.testing.assert_array_equal(a.spikes("qif", "P").ids, b.spikes("qif", "P").ids)
    np.testing.assert_array_equal(a.signal("mass", "rate").data, b.signal("mass", "rate").data)
