"""QIF neurons of the point-network solver (Montbrio, Pazo & Roxin 2015) against closed forms,
and dense all-to-all projections against the same projection held synapse by synapse."""
from __future__ import annotations

import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Samples
from polyscale.coordinator.specs import SolverContext
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.point import (QIF, AllToAll, IafPscDelta, IafPscExp, PointNetwork, Population,
                                     Projection)

DT = 0.01
DT_TICKS = int(round(DT * TICKS_PER_MS))


def build(pops, projs=(), seed=0):
    spec = PointNetwork(populations=tuple(pops), projections=tuple(projs), dt_ms=DT)
    return spec.build(SolverContext("net", seed, np.random.default_rng(seed)))


def run(s, n_steps, current=0.0, window=100):
    """Advance in windows of ``window`` steps; spike times (ms) per population, V_m rows."""
    spikes = {p.name: [] for p in s.spec.populations}
    vm = {p.name: [] for p in s.spec.populations if p.record_v}
    for k in range(0, n_steps, window):
        t0 = k * DT_TICKS
        inp = {f"{p.name}.current_in": Samples(t0, DT_TICKS, np.full((window, 1), current))
               for p in s.spec.populations}
        res = s.advance(t0, t0 + window * DT_TICKS, inp)
        for name in spikes:
            sp = res.outputs[f"{name}.spikes"]
            spikes[name].append(np.stack([sp.ticks / TICKS_PER_MS, sp.ids]))
        for name in vm:
            vm[name].append(res.outputs[f"{name}.V_m"].data)
    return ({k: np.concatenate(v, axis=1) for k, v in spikes.items()},
            {k: np.concatenate(v) for k, v in vm.items()})


def test_tonic_isi_is_the_closed_form_on_the_grid():
    """A QIF neuron with eta = c > 0 goes from v_reset to v_peak in
    T = tau / sqrt(c) (atan(v_peak / sqrt c) - atan(v_reset / sqrt c)); the exact step crosses
    in the step that contains T, so every ISI is exactly (ceil(T / h) + n_ref) steps (the
    refractory 2 tau / v_peak = 20 steps of 0.01 ms), up to float rounding (1e-9 ms)."""
    tau, c, vp = 10.0, 4.0, 100.0
    s = build([Population(name="P", size=1, model=QIF(tau_m_ms=tau, eta_bar=c, delta=0.0), v_init_mV=-vp)])
    spikes, _ = run(s, 20000)
    t = spikes["P"][0]
    t_free = tau / math.sqrt(c) * (math.atan(vp / math.sqrt(c)) - math.atan(-vp / math.sqrt(c)))
    isi = DT * (math.ceil(t_free / DT) + round(2 * tau / vp / DT))
    assert t.size > 10
    np.testing.assert_allclose(np.diff(t), isi, rtol=0, atol=1e-9)
    # and the rate is within 0.5% of the infinite-peak QIF rate sqrt(c) / (pi tau) (the
    # paper's refractory handling makes up for the finite peak; the rest is the grid)
    assert abs(1.0 / isi / (math.sqrt(c) / (math.pi * tau)) - 1) < 5e-3


def test_subthreshold_trajectory_is_exact():
    """For c = eta + I < 0, V(t) = -s tanh(s t / tau - atanh(V0 / s)), s = sqrt(-c): the exact
    step follows it to float rounding (1e-10), read from the V_m port (value at each step's
    start); the current_in port adds to eta (dimensionless)."""
    tau, eta, i_in, v0 = 20.0, -3.0, -1.0, 1.5
    s = build([Population(name="P", size=1, model=QIF(tau_m_ms=tau, eta_bar=eta, delta=0.0), v_init_mV=v0,
                          record_v=True)])
    assert s.spec.ports()["P.V_m"].units == "" and s.spec.ports()["P.current_in"].units == ""
    spikes, vm = run(s, 3000, current=i_in)
    sq = math.sqrt(-(eta + i_in))
    t = DT * np.arange(3000)
    expect = -sq * np.tanh(sq * t / tau - math.atanh(v0 / sq))
    np.testing.assert_allclose(vm["P"][:, 0], expect, rtol=0, atol=1e-10)
    assert spikes["P"].shape[1] == 0


def test_lorentzian_quantiles_and_draws():
    """Quantiles: eta_j = eta_bar + delta tan(pi/2 (2j - N - 1)/(N + 1)), symmetric about eta_bar,
    with half of them within one half-width (the Lorentzian's quartiles: exact up to one
    neuron). Random draws: the sample median and quartiles within 4 standard errors."""
    m = QIF(eta_bar=-5.0, delta=2.0)
    e = m.etas(1001, None)
    assert e[500] == pytest.approx(-5.0, abs=1e-12)
    np.testing.assert_allclose(e + e[::-1], -10.0, atol=1e-9)
    assert abs(np.sum(np.abs(e + 5.0) <= 2.0) - 1001 / 2) <= 1.5
    r = QIF(eta_bar=-5.0, delta=2.0, eta_sampling="random").etas(40000, np.random.default_rng(1))
    q = np.quantile(r, [0.25, 0.5, 0.75])
    # standard error of a quantile: sqrt(p(1-p)/n) / density; density at the quartiles 1/(2 pi delta)
    se = math.sqrt(0.25 * 0.75 / 40000) * 2 * math.pi * 2.0
    np.testing.assert_allclose(q, [-7.0, -5.0, -3.0], atol=4 * se)


@pytest.mark.parametrize("autapses", [True, False])
@pytest.mark.parametrize("model", [IafPscDelta(tau_m_ms=10.0, e_l_mV=0.0, v_th_mV=1.0, v_reset_mV=0.0, t_ref_ms=1.0),
                                   IafPscExp(tau_m_ms=10.0, e_l_mV=0.0, v_th_mV=1.0, v_reset_mV=0.0, c_m_pF=10.0),
                                   QIF(tau_m_ms=10.0, eta_bar=-1.0, delta=0.5)])
def test_dense_all_to_all_equals_the_csr(model, autapses):
    """A dense projection (one input per target population, the spiking neuron taking back its
    own share where autapses are not allowed) gives the same spikes as the same AllToAll
    projection synapse by synapse (sums in another order: equal to float rounding, so the
    spike trains are compared exactly over a run short enough not to amplify it)."""
    is_qif = isinstance(model, QIF)
    w_ex, w_in = (0.02, -0.03) if not isinstance(model, IafPscExp) else (3.0, -4.0)

    def net(dense):
        cur = 0.0 if is_qif else None
        pops = [Population(name="A", size=40, model=model, v_init_mV=None if is_qif else 0.5,
                           poisson_rate_hz=20000.0, poisson_weight=0.05 if not isinstance(model, IafPscExp) else 8.0),
                Population(name="B", size=30, model=model, v_init_mV=cur)]
        projs = [Projection(source="A", target="A", rule=AllToAll(), weight=w_ex, delay_ms=0.5,
                            allow_autapses=autapses, dense=dense),
                 Projection(source="A", target="B", rule=AllToAll(), weight=2 * w_ex, delay_ms=1.0, dense=dense),
                 Projection(source="B", target="A", rule=AllToAll(), weight=w_in, delay_ms=0.3, dense=dense)]
        return build(pops, projs, seed=4)

    a, b = net(False), net(True)
    assert a.n_synapses == b.n_synapses == 40 * (40 if autapses else 39) + 2 * 40 * 30
    assert b.connectome_bytes() == 8 * (70 + 1)     # only the (empty) CSR row pointers
    sa, _ = run(a, 2000, current=2.0 if is_qif else 0.0)
    sb, _ = run(b, 2000, current=2.0 if is_qif else 0.0)
    assert sa["A"].shape[1] > 50
    for name in ("A", "B"):
        np.testing.assert_array_equal(sa[name], sb[name])


def test_bad_specs_name_the_field():
    with pytest.raises(ModelError, match=r"qif: 'eta_sampling' must be 'quantiles' or 'random' \(got 'grid'\)"):
        QIF(eta_sampling="grid")
    with pytest.raises(ModelError, match=r"'v_reset' must be below 'v_peak'"):
        QIF(v_peak=10.0, v_reset=20.0)
    with pytest.raises(ModelError, match=r"'dense' needs rule AllToAll with a constant weight"):
        from polyscale.solvers.point import FixedIndegree
        Projection(source="A", target="A", rule=FixedIndegree(indegree=2), dense=True)
    assert QIF.from_dict(QIF(delta=0.3, t_ref_ms=0.1).to_dict()) == QIF(delta=0.3, t_ref_ms=0.1)
