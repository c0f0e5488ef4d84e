"""Single neurons of the point-network solver against closed forms.

A neuron is driven step by step through the live solver (``advance`` one window at a time) so
that its membrane potential can be read after every step; spikes come from the window results.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Samples, Spikes
from polyscale.coordinator.specs import SolverContext
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.point import IafPscDelta, IafPscExp, Izhikevich, NeuronModel, PointNetwork, Population

DT = 0.1
DT_TICKS = int(DT * TICKS_PER_MS)


def solver(model, size=1, **pop):
    spec = PointNetwork(populations=(Population(name="P", size=size, model=model, **pop),), dt_ms=DT)
    return spec.build(SolverContext("net", 1, np.random.default_rng(0)))


def no_input(n_steps, size=1, spikes=None, current_pA=0.0, rate_hz=0.0):
    s = Spikes.empty(with_weights=True) if spikes is None else spikes
    return {"P.spikes_in": s,
            "P.current_in": Samples(0, DT_TICKS, np.full((n_steps, 1), current_pA)),
            "P.rate_in": Samples(0, DT_TICKS, np.full((n_steps, 1), rate_hz))}


def trace(s, n_steps, inputs_at=None):
    """V (mV, absolute) at t_1 .. t_n (after each step) and the spike times (ms) of neuron 0."""
    e_l = s.spec.populations[0].model.e_l_mV
    v, spikes = [], []
    for k in range(n_steps):
        t0 = k * DT_TICKS
        inp = inputs_at(k) if inputs_at else no_input(1)
        res = s.advance(t0, t0 + DT_TICKS, inp)
        spikes += list(res.outputs["P.spikes"].ticks / TICKS_PER_MS)
        v.append(s.v[0] + e_l)
    return np.array(v), np.array(spikes)


@pytest.mark.parametrize("model_cls", [IafPscDelta, IafPscExp])
def test_subthreshold_dc_trajectory_is_exact(model_cls):
    """V(t) = E_L + (I_e tau_m / C)(1 - exp(-t / tau_m)) from V = E_L: the propagator is exact,
    so only rounding separates the two (1e-12 mV over 200 steps)."""
    m = model_cls(tau_m_ms=15.0, c_m_pF=200.0, e_l_mV=-65.0, v_th_mV=0.0, i_e_pA=250.0)
    v, spikes = trace(solver(m), 200)
    t = DT * np.arange(1, 201)
    expect = -65.0 + 250.0 * 15.0 / 200.0 * (1 - np.exp(-t / 15.0))
    np.testing.assert_allclose(v, expect, rtol=0, atol=1e-12)
    assert spikes.size == 0


@pytest.mark.parametrize("model_cls", [IafPscDelta, IafPscExp])
def test_current_port_adds_to_i_e(model_cls):
    """current_in (pA, held over each step) acts exactly as the same I_e."""
    m = model_cls(tau_m_ms=10.0, c_m_pF=100.0, e_l_mV=0.0, v_th_mV=100.0)
    v, _ = trace(solver(m), 50, lambda k: no_input(1, current_pA=80.0))
    t = DT * np.arange(1, 51)
    np.testing.assert_allclose(v, 80.0 * 10.0 / 100.0 * (1 - np.exp(-t / 10.0)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("i_e", [400.0, 600.0, 1500.0])
@pytest.mark.parametrize("model_cls", [IafPscDelta, IafPscExp])
def test_f_i_curve_on_the_step_grid(model_cls, i_e):
    """Constant suprathreshold current: the free run from V_reset reaches theta after
    T = tau_m ln((R I - V_reset) / (R I - theta)) (voltages from E_L, R = tau_m / C), so the
    interval is t_ref + T in continuous time; on the step grid the crossing is seen at the first
    grid time at or after it, so every ISI is t_ref + ceil(T / h) h exactly and the rate is
    within the grid error of 1 / (t_ref + T)."""
    tau, c, theta, reset, t_ref = 10.0, 250.0, 15.0, 5.0, 2.0
    m = model_cls(tau_m_ms=tau, c_m_pF=c, e_l_mV=0.0, v_th_mV=theta, v_reset_mV=reset, t_ref_ms=t_ref,
                  i_e_pA=i_e, v_init_mV=reset)
    s = solver(m)
    n_steps = 5000
    res = s.advance(0, n_steps * DT_TICKS, no_input(n_steps))
    spikes = res.outputs["P.spikes"].ticks / TICKS_PER_MS
    ri = i_e * tau / c
    t_free = tau * math.log((ri - reset) / (ri - theta))
    isi_grid = t_ref + math.ceil(t_free / DT - 1e-9) * DT
    isis = np.diff(spikes)
    assert len(isis) > 10
    np.testing.assert_allclose(isis, isi_grid, rtol=0, atol=1e-9)
    # the first spike: from V_reset without refractoriness, at the first grid point after t_free
    assert spikes[0] == pytest.approx(math.ceil(t_free / DT - 1e-9) * DT, abs=1e-9)
    f_analytic = 1000.0 / (t_ref + t_free)
    f_sim = 1000.0 / isis.mean()
    assert f_sim <= f_analytic and f_sim >= 1000.0 / (t_ref + t_free + DT)


def test_delta_psp_jump_decay_and_refractory_discard():
    """A spike of weight w arriving in step s makes V jump by exactly w at the end of that step
    and decay with tau_m; spikes arriving while refractory are discarded (NEST's
    iaf_psc_delta), and V sits exactly at V_reset for t_ref."""
    m = IafPscDelta(tau_m_ms=20.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0, t_ref_ms=2.0, v_init_mV=0.0)
    s = solver(m)
    arrive = {5: 3.0, 30: 25.0, 35: 100.0}     # step -> weight (mV): a PSP, a spike, a discarded input

    def inputs(k):
        if k in arrive:
            return no_input(1, spikes=Spikes(np.array([k * DT_TICKS + 7]), np.array([0]),
                                             np.array([arrive[k]])))
        return no_input(1)

    v, spikes = trace(s, 80, inputs)
    t = DT * np.arange(1, 81)
    # steps 5..29: the PSP, jump at t_6 = 0.6 ms
    psp = 3.0 * np.exp(-(t[5:30] - 0.6) / 20.0)
    np.testing.assert_allclose(v[5:30], psp, rtol=0, atol=1e-12)
    # the second input crosses theta at t_31: spike there, then V_reset for 20 steps
    assert spikes.tolist() == [pytest.approx(3.1)]
    np.testing.assert_allclose(v[30:50], 10.0, rtol=0, atol=0)
    # then free decay from V_reset: the 100 mV input at step 35 left no trace
    np.testing.assert_allclose(v[50:], 10.0 * np.exp(-(t[50:] - 5.1) / 20.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("tau_syn", [2.0, 10.0])
def test_exp_psp_is_the_alpha_difference_closed_form(tau_syn):
    """A current jump of w pA at t_a decays with tau_s; V(t) - E_L = w tau_s tau_m / (C (tau_m -
    tau_s)) (exp(-(t - t_a)/tau_m) - exp(-(t - t_a)/tau_s)), or w (t - t_a)/C exp(-(t - t_a)/tau)
    where tau_s = tau_m. Negative weights go through the inhibitory current (tau_syn_in)."""
    tau_m, c = 10.0, 250.0
    for w in (500.0, -300.0):
        m = IafPscExp(tau_m_ms=tau_m, c_m_pF=c, e_l_mV=0.0, v_th_mV=50.0, tau_syn_ex_ms=tau_syn,
                      tau_syn_in_ms=tau_syn)
        s = solver(m)

        def inputs(k):
            if k == 10:
                return no_input(1, spikes=Spikes(np.array([10 * DT_TICKS]), np.array([0]), np.array([w])))
            return no_input(1)

        v, _ = trace(s, 300, inputs)
        u = DT * np.arange(1, 301) - 1.1          # time since the jump at t_11
        if tau_syn == tau_m:
            expect = w * u / c * np.exp(-u / tau_m)
        else:
            expect = w * tau_syn * tau_m / (c * (tau_m - tau_syn)) * (np.exp(-u / tau_m) - np.exp(-u / tau_syn))
        expect[u < 0] = 0.0
        np.testing.assert_allclose(v, expect, rtol=0, atol=1e-12 * abs(w))


def test_poisson_drive_counts():
    """With tau_m so long that nothing leaks in 50 ms and no threshold in reach, V counts the
    drive's events times the weight: over 2000 neurons the mean count is lambda = rate * T and
    the variance equals the mean (Poisson); 4 standard errors each (seeded, so the test is
    deterministic; the bound only says the sampler is right)."""
    n, t_ms, rate = 2000, 50.0, 3000.0
    m = IafPscDelta(tau_m_ms=1e12, e_l_mV=0.0, v_th_mV=1e9, v_init_mV=0.0, t_ref_ms=0.0)
    s = solver(m, size=n, poisson_rate_hz=rate, poisson_weight=1.0)
    steps = int(t_ms / DT)
    s.advance(0, steps * DT_TICKS, no_input(steps, n))
    counts = s.v.copy()
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-6)
    lam = rate * t_ms / 1000.0
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / n)
    # variance of the sample variance of a Poisson: (lam + 2 lam^2 (n/(n-1))) / n ~ 2 lam^2 / n
    assert abs(counts.var(ddof=1) - lam) < 4 * math.sqrt((lam + 2 * lam**2) / n)


def test_poisson_drive_per_step_law_at_brunels_rate():
    """Per step, the drive's count follows Poisson(lam) at Brunel's lam = 2 events per step
    (20 kHz, 0.1 ms): 2000 neurons x 250 steps = 500,000 counts (V after each step minus V
    before, weight 1 mV, nothing leaks), binned 0..7 and >= 8, against the closed-form pmf
    exp(-lam) lam^k / k!. Chi-square with 8 degrees of freedom below 31.8 (upper tail 1e-4;
    seeded, so deterministic); a sampler off by one count in 1 % of draws gives ~ 50 or more
    here. The mean is within 4 standard errors of lam."""
    from scipy.stats import chi2
    n, steps, rate = 2000, 250, 20000.0
    m = IafPscDelta(tau_m_ms=1e12, e_l_mV=0.0, v_th_mV=1e9, v_init_mV=0.0, t_ref_ms=0.0)
    s = solver(m, size=n, poisson_rate_hz=rate, poisson_weight=1.0)
    lam = rate * DT / 1000.0
    counts = np.empty((steps, n))
    for k in range(steps):
        v0 = s.v.copy()
        s.advance(k * DT_TICKS, (k + 1) * DT_TICKS, no_input(1, n))
        counts[k] = s.v - v0
    counts = np.rint(counts).astype(np.int64).ravel()
    observed = np.bincount(np.minimum(counts, 8), minlength=9).astype(float)
    pmf = np.array([math.exp(-lam) * lam**k / math.factorial(k) for k in range(8)])
    expected = counts.size * np.append(pmf, 1.0 - pmf.sum())
    stat = float(((observed - expected) ** 2 / expected).sum())
    assert stat < chi2.isf(1e-4, 8), (stat, observed, expected)
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / counts.size)


def test_poisson_draws_are_the_exact_inversion_of_the_cdf():
    """K.poisson_count (integer keys, guide table, branch-free first step) gives, for every one
    of 20,000 splitmix64 outputs z, the count of the plain inversion of the Poisson CDF at
    u = (z >> 11) / 2**53: the smallest k with u <= CDF(k), the CDF summed here from the
    closed-form pmf (math.lgamma) over lam from 0.05 to 500 (where the table starts 15
    standard deviations below the mean). The only law it adds to Poisson's is u's 2**-53 grid.
    (A draw in the 1e-16-wide gap between two roundings of the same CDF value would differ:
    with 80,000 draws the chance is ~1e-11.)"""
    from polyscale.solvers.point import _kernels as K
    st = K.neuron_streams(99, np.arange(20000))
    z = np.empty_like(st)
    K.splitmix_pass(st, z, np.zeros(st.size, np.int64), False)
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    for lam in (0.05, 2.0, 30.0, 500.0):
        cdf = np.empty(K.table_size(lam))
        k0, m = K.poisson_table(lam, cdf)
        keys = np.empty(cdf.size, np.int64)
        guide = np.empty(K.GUIDE, np.int64)
        K.poisson_guide(cdf, m, guide)
        K.poisson_keys(cdf, m, keys)
        got = np.array([K.poisson_count(keys, k0, guide, x) for x in z])
        kmax = int(lam + 40 * math.sqrt(lam) + 40)
        ref_cdf = np.cumsum([math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1.0)) for k in range(kmax)])
        expect = np.searchsorted(ref_cdf, u, side="left")
        np.testing.assert_array_equal(got, expect, err_msg=f"lam {lam}")


def test_rate_port_adds_to_the_poisson_rate():
    """rate_in (Hz) adds to poisson_rate_hz: 1000 Hz base + 2000 Hz in, the same statistics as 3000 Hz."""
    n, t_ms = 2000, 50.0
    m = IafPscDelta(tau_m_ms=1e12, e_l_mV=0.0, v_th_mV=1e9, v_init_mV=0.0, t_ref_ms=0.0)
    s = solver(m, size=n, poisson_rate_hz=1000.0, poisson_weight=0.5)
    steps = int(t_ms / DT)
    s.advance(0, steps * DT_TICKS, no_input(steps, n, rate_hz=2000.0))
    counts = s.v / 0.5
    lam = 3000.0 * t_ms / 1000.0
    assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / n)


def test_model_round_trip_and_errors():
    for m in (IafPscDelta(), IafPscExp(tau_syn_ex_ms=5.0), Izhikevich(d=2.0)):
        assert NeuronModel.from_dict(m.to_dict()) == m
    with pytest.raises(ModelError, match=r"'type' must be one of .*'iaf_psc_delta', 'iaf_psc_exp', 'izhikevich', 'qif' \(got 'hh'\)"):
        NeuronModel.from_dict({"type": "hh"})
    with pytest.raises(ModelError, match=r"iaf_psc_delta: 'tau_m_ms' must be a finite number > 0 \(got -1\)"):
        IafPscDelta(tau_m_ms=-1)
    with pytest.raises(ModelError, match=r"'v_reset_mV' must be below 'v_th_mV'"):
        IafPscExp(v_reset_mV=-50.0, v_th_mV=-55.0)


def test_initial_potentials_per_population_and_per_neuron():
    """Population.v_init_mV overrides the model's; a Distribution draws one value per neuron."""
    from polyscale.solvers.point import Uniform
    m = IafPscDelta(e_l_mV=-70.0, v_init_mV=-60.0)
    assert solver(m, size=3).v.tolist() == [10.0] * 3                 # relative to E_L
    assert solver(m, size=3, v_init_mV=-65.0).v.tolist() == [5.0] * 3
    v = solver(m, size=4000, v_init_mV=Uniform(low=-70.0, high=-55.0)).v + -70.0
    assert v.min() >= -70.0 and v.max() < -55.0
    # mean of U(-70, -55) is -62.5, standard error 15 / sqrt(12 * 4000) = 0.068 mV: 4 of them
    assert abs(v.mean() + 62.5) < 4 * 15 / math.sqrt(12 * 4000)
    spec = PointNetwork(populations=(Population(name="P", size=2, v_init_mV=Uniform(low=0.0, high=1.0)),))
    assert PointNetwork.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("model_cls", [IafPscDelta, IafPscExp])
def test_noise_current_variance(model_cls):
    """A Gaussian current of std sigma redrawn every step, far below threshold: V_n - E_L =
    sum_k a^(n-1-k) b xi_k with a = exp(-h/tau_m), b = tau_m/C (1 - a), so the mean is 0 and the
    variance b^2 sigma^2 (1 - a^(2n)) / (1 - a^2). Over 4000 neurons: mean within 4 standard
    errors, variance within 4 standard errors of a sample variance (var sqrt(2 / (N - 1)))."""
    tau, c, sigma, n_steps, n = 10.0, 250.0, 200.0, 300, 4000
    m = model_cls(tau_m_ms=tau, c_m_pF=c, e_l_mV=0.0, v_th_mV=1e6, v_init_mV=0.0)
    s = solver(m, size=n, noise_std_pA=sigma)
    s.advance(0, n_steps * DT_TICKS, no_input(n_steps, n))
    a = math.exp(-DT / tau)
    b = tau / c * (1 - a)
    var = b**2 * sigma**2 * (1 - a ** (2 * n_steps)) / (1 - a**2)
    assert abs(s.v.mean()) < 4 * math.sqrt(var / n)
    assert abs(s.v.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1))


def test_izhikevich_rests_at_the_stable_fixed_point():
    """I = 0, regular spiking (a 0.02, b 0.2): with u = b v the v-nullcline gives
    0.04 v^2 + 4.8 v + 140 = 0, v = -70 (stable) or -50 mV; from NEST's initial state
    (-65 mV, u = b v) the neuron settles at v = -70, u = -14 without spiking (1e-9 after 2 s:
    the slowest eigenvalue decays as exp(-t / 50 ms) or faster)."""
    s = solver(Izhikevich(), size=1)
    res = s.advance(0, 20000 * DT_TICKS, no_input(20000))
    assert len(res.outputs["P.spikes"]) == 0
    assert s.v[0] == pytest.approx(-70.0, abs=1e-9) and s.i_in[0] == pytest.approx(-14.0, abs=1e-9)


def nest_izhikevich(a, b, c, d, v_th, i_e, v, u, h, n_steps, kicks):
    """NEST's izhikevich::update (consistent_integration) written out in scalar Python, with
    spike inputs ``kicks`` (step -> mV): V (n_steps,) after each step and the spike steps."""
    vs, spikes = [], []
    for k in range(n_steps):
        v_old, u_old = v, u
        v = v + h * (0.04 * v_old * v_old + 5.0 * v_old + 140.0 - u_old + i_e) + kicks.get(k, 0.0)
        u = u + h * a * (b * v_old - u_old)
        if v >= v_th:
            v, u = c, u + d
            spikes.append(k + 1)          # spike time: the end of the step
        vs.append(v)
    return np.array(vs), spikes


@pytest.mark.parametrize("params", [dict(a=0.02, b=0.2, c_mV=-65.0, d=8.0),     # regular spiking
                                    dict(a=0.02, b=0.2, c_mV=-50.0, d=2.0),     # chattering
                                    dict(a=0.1, b=0.2, c_mV=-65.0, d=2.0)])     # fast spiking
def test_izhikevich_is_nests_scheme(params):
    """Against NEST's update written out independently (scalar Python): the same spike times
    and V to 1e-9 mV over 300 ms of tonic drive (I_e = 10) with two input spikes."""
    m = Izhikevich(i_e_pA=10.0, **params)
    kicks = {500: 4.0, 1700: -6.0}

    def inputs(k):
        if k in kicks:
            return no_input(1, spikes=Spikes(np.array([k * DT_TICKS]), np.array([0]), np.array([kicks[k]])))
        return no_input(1)

    v, spikes = trace(solver(m), 3000, inputs)
    ref_v, ref_steps = nest_izhikevich(params["a"], params["b"], params["c_mV"], params["d"], 30.0, 10.0,
                                       -65.0, params["b"] * -65.0, DT, 3000, kicks)
    np.testing.assert_allclose(v, ref_v, rtol=0, atol=1e-9)
    assert len(ref_steps) > 5
    # a spike at the end of the last step is emitted in the next window, which never comes
    np.testing.assert_allclose(spikes, DT * np.array([k for k in ref_steps if k < 3000]), atol=1e-9)
    assert Izhikevich.from_dict(m.to_dict()) == m


def test_per_neuron_thresholds_and_currents_give_each_neuron_its_closed_form_rate():
    """Thresholds and DC drawn per neuron (Population.v_th_mV, .i_e_pA): each neuron fires with
    the LIF period of its own threshold and current, T = tau ln(R I / (R I - theta)) (R = tau /
    C), on the grid: ceil(T / dt) steps plus the refractory steps. Spike counts over 500 ms are
    exact up to the first spike's phase (+-1)."""
    from polyscale.solvers.point import Uniform
    m = IafPscDelta(tau_m_ms=10.0, c_m_pF=250.0, e_l_mV=0.0, v_th_mV=15.0, v_reset_mV=0.0, t_ref_ms=2.0,
                    v_init_mV=0.0)
    s = solver(m, size=50, v_th_mV=Uniform(low=10.0, high=20.0), i_e_pA=Uniform(low=550.0, high=700.0))
    theta = s.th_off + 15.0
    current = s.bias                                    # the drawn i_e (the model's is 0)
    assert theta.min() >= 10.0 and theta.max() < 20.0 and current.min() >= 550.0
    steps = int(500.0 / DT)
    res = s.advance(0, steps * DT_TICKS, no_input(steps))
    counts = np.bincount(res.outputs["P.spikes"].ids, minlength=50)
    ri = 10.0 / 250.0 * current
    period_steps = np.ceil(10.0 * np.log(ri / (ri - theta)) / DT - 1e-9) + round(2.0 / DT)
    np.testing.assert_allclose(counts, steps / period_steps, atol=1.0)
    with pytest.raises(ModelError, match=r"'v_th_mV' must be a Distribution or None"):
        Population(name="P", size=2, v_th_mV=3.0)
