"""Node models against closed forms and published properties; integrators' convergence orders.

Each model runs as a one-region (or uncoupled many-region) RegionNetwork, so these also test
the kernels' equations term by term against independent numpy/scipy computations.
"""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

import polyscale as ps
from polyscale.solvers.mass import (Connectome, Generic2dOscillator, JansenRit, Kuramoto, Linear,
                                    MontbrioPazoRoxin, NodeModel, ReducedWongWang, RegionNetwork, WilsonCowan,
                                    ZerlautAdaptationFirstOrder, ZerlautAdaptationSecondOrder)

MS = 1_000_000


def run(spec, t_ms, u=None):
    solver = spec.build(None)
    n = int(round(t_ms / spec.dt_ms))
    inputs = {} if u is None else {"input": ps.Samples(0, solver.dt_ticks, np.full((n, spec.n_regions), u))}
    res = solver.advance(0, n * solver.dt_ticks, inputs)
    return res.outputs["state"].data.reshape(n, spec.model.n_sv, spec.n_regions), solver.x


# ------------------------------------------------------------------ integrators on a linear ODE

def linear_g2d():
    """Generic2dOscillator with e = f = c = 0 is linear: x' = M x + q with
    M = [[d tau g, d tau alpha], [d b / tau, -d beta / tau]], q = [d tau gamma I, d a / tau]."""
    p = dict(tau=2.0, I=0.5, a=0.3, b=-1.2, c=0.0, d=0.1, e=0.0, f=0.0, g=-0.4, alpha=1.5, beta=0.6, gamma=1.0)
    M = np.array([[p["d"] * p["tau"] * p["g"], p["d"] * p["tau"] * p["alpha"]],
                  [p["d"] * p["b"] / p["tau"], -p["d"] * p["beta"] / p["tau"]]])
    q = np.array([p["d"] * p["tau"] * p["gamma"] * p["I"], p["d"] * p["a"] / p["tau"]])
    return Generic2dOscillator(**p), M, q


def exact_linear(M, q, x0, t):
    """x(t) of x' = M x + q by the matrix exponential of the augmented system (closed form)."""
    big = np.zeros((3, 3))
    big[:2, :2], big[:2, 2] = M, q
    return (scipy.linalg.expm(big * t) @ np.r_[x0, 1.0])[:2]


@pytest.mark.parametrize("integrator, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_integrators_converge_at_their_order_on_a_linear_ode(integrator, order):
    """Global error (2-norm) at t = 20 ms against the matrix exponential, for dt = 0.2, 0.1,
    0.05 ms (|eigenvalues| ~ 0.13 /ms, so dt |lambda| <= 0.03: the asymptotic regime): halving
    dt divides it by 2^order (observed order within 0.1 of the nominal one)."""
    model, M, q = linear_g2d()
    x0 = np.array([1.0, -0.5])
    want = exact_linear(M, q, x0, 20.0)
    errs = []
    for dt in (0.2, 0.1, 0.05):
        _, x = run(RegionNetwork(model=model, integrator=integrator, dt_ms=dt, initial_state=x0), 20.0)
        errs.append(np.linalg.norm(x[:, 0] - want))
    observed = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(observed - order) < 0.1), observed


def test_generic_2d_oscillator_linear_case_follows_the_matrix_exponential():
    """RK4 at dt 0.01 ms over 20 ms: 1e-12 from the exact solution (RK4 error ~ (dt lambda)^4)."""
    model, M, q = linear_g2d()
    x0 = np.array([0.2, 0.1])
    traj, _ = run(RegionNetwork(model=model, integrator="rk4", dt_ms=0.01, initial_state=x0), 20.0)
    for k in (0, 500, 1999):
        np.testing.assert_allclose(traj[k, :, 0], exact_linear(M, q, x0, k * 0.01), atol=1e-12)


# ------------------------------------------------------------------ fixed points and frequencies

def test_generic_2d_oscillator_default_rings_at_its_linearised_frequency():
    """TVB's defaults: the fixed point solves W = a + b V (beta = 1, c = 0) and
    -f V^3 + e V^2 + alpha W = 0; the Jacobian there has eigenvalues -0.022 +- 0.063i /ms, a
    stable focus ringing at 0.0632 / (2 pi) kHz = 10.06 Hz. A small kick decays as expm(J t)
    (within 1e-3 of its size; quadratic terms are 1e-4 smaller) and its zero crossings give
    that frequency within 0.1 Hz."""
    m = Generic2dOscillator()
    v = scipy.optimize.brentq(lambda v: -m.f * v ** 3 + m.e * v ** 2 + m.alpha * (m.a + m.b * v), -5, 5)
    w = m.a + m.b * v
    J = np.array([[m.d * m.tau * (-3 * m.f * v ** 2 + 2 * m.e * v + m.g), m.d * m.tau * m.alpha],
                  [m.d * m.b / m.tau, -m.d * m.beta / m.tau]])
    ev = np.linalg.eigvals(J)
    f_lin_hz = abs(ev[0].imag) / (2 * np.pi) * 1000.0
    kick = np.array([1e-4, 0.0])
    traj, _ = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.1, initial_state=(v + kick[0], w)), 300.0)
    dev = traj[:, :, 0] - [v, w]
    for k in (100, 500, 1500, 2999):
        np.testing.assert_allclose(dev[k], scipy.linalg.expm(J * k * 0.1) @ kick, atol=1e-3 * 1e-4)
    t = np.arange(dev.shape[0]) * 0.1
    z = np.flatnonzero(np.sign(dev[:-1, 0]) != np.sign(dev[1:, 0]))
    tz = t[z] - dev[z, 0] * 0.1 / (dev[z + 1, 0] - dev[z, 0])   # linear interpolation
    f_hz = 1000.0 / (2 * np.mean(np.diff(tz)))
    assert abs(f_hz - f_lin_hz) <= 0.1 and abs(f_lin_hz - 10.06) < 0.01


def test_montbrio_fixed_point_is_the_root_of_the_quartic():
    """Montbrió et al. (2015), Eqs. (12): at a fixed point V = -Delta / (2 pi tau r) and
    V^2 - (pi tau r)^2 + eta + J tau r + I = 0; with tau = 1 that is the quartic
    -pi^2 r^4 + J r^3 + (eta + I) r^2 + Delta^2 / (4 pi^2) = 0, whose positive roots are the
    fixed points. For eta = -5, J = 15, Delta = 1 (TVB's defaults) the low-activity state is
    stable: a run from near it settles on the smallest positive root."""
    m = MontbrioPazoRoxin()
    roots = np.roots([-np.pi ** 2, m.J, m.eta + m.I, 0.0, m.Delta ** 2 / (4 * np.pi ** 2)])
    r_low = min(r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0)
    v_low = -m.Delta / (2 * np.pi * r_low)
    _, x = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.01, initial_state=(r_low * 1.2, v_low)), 200.0)
    np.testing.assert_allclose(x[:, 0], [r_low, v_low], rtol=1e-8)


def test_montbrio_input_enters_beside_eta():
    """A constant input u is the same as eta + u (the quartic's root moves accordingly)."""
    m, u = MontbrioPazoRoxin(), -1.0
    _, x1 = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.01, initial_state=(0.1, -1.0)), 100.0, u=u)
    _, x2 = run(RegionNetwork(model=m.replace(eta=m.eta + u), integrator="rk4", dt_ms=0.01,
                              initial_state=(0.1, -1.0)), 100.0)
    np.testing.assert_allclose(x1, x2, rtol=1e-10)


def test_reduced_wong_wang_settles_on_its_self_consistent_fixed_point():
    """dS/dt = 0 gives S = gamma tau_s H / (1 + gamma tau_s H) with H = H(w J_N S + I_o)
    (Deco et al. 2013, Eq. 2-4); solved here by brentq, independently of the kernel."""
    m = ReducedWongWang()

    def residual(s):
        h = m.h(m.w * m.J_N * s + m.I_o)
        return s - m.gamma * m.tau_s * h / (1 + m.gamma * m.tau_s * h)

    s_star = scipy.optimize.brentq(residual, 1e-6, 1 - 1e-6)
    _, x = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.1, initial_state=(0.5,)), 3000.0)
    assert x[0, 0] == pytest.approx(s_star, rel=1e-8)


def test_wilson_cowan_origin_is_a_fixed_point_and_its_linearisation_predicts_the_decay():
    """With the shifted sigmoid S(0) = 0, so E = I = 0 is a fixed point for P = Q = 0. Near it
    the dynamics are x' = J x with J = [[(-1 + k_e S_e'(-) c_ee) / tau_e, -k_e S_e' c_ei / tau_e],
    [k_i S_i' c_ie / tau_i, (-1 - k_i S_i' c_ii) / tau_i]], S' = c a e^{ab} / (1 + e^{ab})^2 at 0
    (alpha = 1). A 1e-6 perturbation follows expm(J t) within 1e-3 of its size (the quadratic
    terms are 1e-6 smaller)."""
    m = WilsonCowan()

    def slope(a, b, c):
        return c * a * np.exp(a * b) / (1 + np.exp(a * b)) ** 2

    se, si = slope(m.a_e, m.b_e, m.c_e), slope(m.a_i, m.b_i, m.c_i)
    J = np.array([[(-1 + m.k_e * se * m.c_ee) / m.tau_e, -m.k_e * se * m.c_ei / m.tau_e],
                  [m.k_i * si * m.c_ie / m.tau_i, (-1 - m.k_i * si * m.c_ii) / m.tau_i]])
    x0 = np.array([1e-6, 0.5e-6])
    traj, _ = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.05, initial_state=x0), 50.0)
    for k in (200, 600, 999):
        want = scipy.linalg.expm(J * k * 0.05) @ x0
        np.testing.assert_allclose(traj[k, :, 0], want, atol=1e-3 * 1e-6)


def test_wilson_cowan_input_enters_beside_P():
    m, u = WilsonCowan(), 0.7
    _, x1 = run(RegionNetwork(model=m, integrator="heun", initial_state=(0.1, 0.05)), 200.0, u=u)
    _, x2 = run(RegionNetwork(model=m.replace(P=u), integrator="heun", initial_state=(0.1, 0.05)), 200.0)
    np.testing.assert_allclose(x1, x2, rtol=1e-10, atol=1e-14)


def test_jansen_rit_fixed_point_without_oscillation_matches_the_steady_state_equations():
    """With mu = 0.0 (low input) JR has a stable fixed point: y3 = y4 = y5 = 0 and
    a^2 y0 = A a S(y1 - y2), a^2 y1 = A a (mu + a_2 J S(a_1 J y0)), b^2 y2 = B b a_4 J S(a_3 J y0);
    substituting y1, y2 leaves one equation in y0 (solved by brentq)."""
    m = JansenRit(mu=0.0)

    def S(v):
        return 2 * m.nu_max / (1 + np.exp(m.r * (m.v0 - v)))

    def y12(y0):
        return (m.A / m.a * (m.mu + m.a_2 * m.J * S(m.a_1 * m.J * y0)),
                m.B / m.b * m.a_4 * m.J * S(m.a_3 * m.J * y0))

    def res(y0):
        y1, y2 = y12(y0)
        return m.a * y0 - m.A * S(y1 - y2)

    y0 = scipy.optimize.brentq(res, 0.0, 0.2)
    y1, y2 = y12(y0)
    _, x = run(RegionNetwork(model=m, integrator="rk4", dt_ms=0.1, initial_state=(y0 * 1.01, y1, y2, 0, 0, 0)),
               3000.0)
    np.testing.assert_allclose(x[:3, 0], [y0, y1, y2], rtol=1e-7)
    np.testing.assert_allclose(x[3:, 0], 0.0, atol=1e-9)


# ------------------------------------------------------------------ specs

@pytest.mark.parametrize("cls", [JansenRit, WilsonCowan, MontbrioPazoRoxin, ReducedWongWang, Generic2dOscillator,
                                 Kuramoto, ZerlautAdaptationFirstOrder, ZerlautAdaptationSecondOrder])
def test_every_model_round_trips_inside_a_network_spec(cls):
    spec = RegionNetwork(model=cls(), connectome=Connectome(weights=[[0.0, 1.0], [1.0, 0.0]]))
    data = spec.to_dict()
    assert data["model"]["type"] == cls.type
    assert RegionNetwork.from_dict(data) == spec


def test_bad_model_parameters_and_unknown_models_are_named():
    with pytest.raises(ps.ModelError, match=r"jansen_rit: parameter 'A' must be a finite number, or one per region \(got nan\)"):
        JansenRit(A=float("nan"))
    with pytest.raises(ps.ModelError, match=r"montbrio_pazo_roxin: parameter 'tau' must be a finite number > 0"):
        MontbrioPazoRoxin(tau=0.0)
    with pytest.raises(ps.ModelError, match=r"node model: 'type' must be one of .*'jansen_rit'.* \(got 'hopf'\)"):
        NodeModel.from_dict({"type": "hopf"})


# ------------------------------------------------------------------ Zerlaut AdEx mean field vs TVB

# a drive of 2.5 Hz onto both populations (di Volo et al. 2019's external rate) so that the
# run leaves the silent state; started away from the fixed point so every variable moves
ZERLAUT_DRIVE = dict(external_input_ex_ex=0.0025, external_input_in_ex=0.0025)


def zerlaut_x0(cls, n=1):
    x0 = np.zeros((len(cls.state_variables), n))
    x0[0], x0[1] = 0.010, 0.020                        # E, I (kHz)
    x0[cls.state_variables.index("W_e")] = 20.0        # pA
    x0[cls.state_variables.index("ou_drift")] = 0.001  # decays with tau_OU, through weight_noise
    if cls is ZerlautAdaptationSecondOrder:
        x0[2:5] = np.array([1e-6, 2e-7, 1e-6])[:, None]   # C_ee, C_ei, C_ii
    return x0


@pytest.mark.parametrize("ours, theirs", [(ZerlautAdaptationFirstOrder, "ZerlautAdaptationFirstOrder"),
                                          (ZerlautAdaptationSecondOrder, "ZerlautAdaptationSecondOrder")])
def test_zerlaut_single_node_follows_tvbs_own_trajectory(tvb_raw, ours, theirs):
    """One node, TVB's defaults plus a 2.5 Hz drive, HeunDeterministic dt 0.1 ms, 100 ms: every
    state variable equals TVB's run of its own model within 1e-6 of the variable's range (the
    issue's bar for the same integrator; measured ~1e-13: the same operations in another
    order). Sample k + 1 of ours is TVB's Raw row k (see test_mass_network)."""
    from tvb.simulator import coupling, models
    x0 = zerlaut_x0(ours)
    ref = tvb_raw(getattr(models, theirs)(**{k: np.array([v]) for k, v in ZERLAUT_DRIVE.items()}),
                  coupling.Linear(a=np.array([0.0])), np.zeros((1, 1)), np.zeros((1, 1)), x0, 100.0)
    got, _ = run(RegionNetwork(model=ours(**ZERLAUT_DRIVE), integrator="heun", initial_state=x0[:, 0]), 100.0)
    scale = np.abs(ref).max(axis=(0, 2))
    err = np.abs(got[1:] - ref[:-1]).max(axis=(0, 2)) / np.where(scale > 0, scale, 1.0)
    assert err.max() <= 1e-6, dict(zip(ours.state_variables, err))
    # the run is not trivial: E and W_e move by more than 10 % of their range
    for v in ("E", "W_e"):
        k = ours.state_variables.index(v)
        assert np.ptp(ref[:, k]) > 0.1 * scale[k]


def test_zerlaut_network_with_delays_follows_tvb(tvb_raw):
    """Four first-order Zerlaut regions, Linear coupling (a = 0.5, kHz per kHz), delays from
    tract lengths at 3 mm/ms, per-region drives (a heterogeneous parameter, as TVB's arrays):
    equal to TVB within 1e-6 of each variable's range over 100 ms. TVB keeps the coupled
    variable's history in float32, so ours does too (history_precision='float32')."""
    from tvb.simulator import coupling, models
    rng = np.random.default_rng(3)
    n = 4
    w = rng.uniform(0.2, 1.0, (n, n)) * (1 - np.eye(n))
    lengths = rng.uniform(10.0, 60.0, (n, n))
    lengths = (lengths + lengths.T) / 2
    drive = (0.001, 0.002, 0.003, 0.004)
    x0 = zerlaut_x0(ZerlautAdaptationFirstOrder, n)
    x0[0] = (0.002, 0.01, 0.02, 0.005)
    ref = tvb_raw(models.ZerlautAdaptationFirstOrder(external_input_ex_ex=np.array(drive)),
                  coupling.Linear(a=np.array([0.5])), w, lengths, x0, 100.0)
    spec = RegionNetwork(model=ZerlautAdaptationFirstOrder(external_input_ex_ex=drive),
                         connectome=Connectome(weights=w, tract_lengths_mm=lengths, speed_mm_per_ms=3.0),
                         coupling=Linear(a=0.5), integrator="heun", initial_state=x0,
                         history_precision="float32")
    got, _ = run(spec, 100.0)
    scale = np.abs(ref).max(axis=(0, 2))
    err = np.abs(got[1:] - ref[:-1]).max(axis=(0, 2)) / np.where(scale > 0, scale, 1.0)
    assert err.max() <= 1e-6, dict(zip(ZerlautAdaptationFirstOrder.state_variables, err))


def test_zerlaut_settles_on_the_root_of_tvbs_own_equations():
    """With a 2.5 Hz drive the first-order model has a stable asynchronous fixed point; its
    location is found independently as the root (scipy) of TVB's own dfun, and a 7 s run of
    ours ends there within 1e-9 kHz (E, I) and 1e-6 pA (W_e): the transient (a damped
    oscillation through W_e, tau_w_e 500 ms) shrinks ~200-fold per second after the first 2 s."""
    pytest.importorskip("tvb.simulator.models")
    import warnings
    from tvb.simulator import models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tvb_model = models.ZerlautAdaptationFirstOrder(**{k: np.array([v]) for k, v in ZERLAUT_DRIVE.items()})

        def f(z):
            x = np.array([z[0], z[1], z[2], 0.0, 0.0])[:, None, None]
            return tvb_model.dfun(x, np.zeros((1, 1, 1)))[:3, 0, 0] * np.array([1e3, 1e3, 1.0])

        root = scipy.optimize.fsolve(f, [0.003, 0.01, 30.0], xtol=1e-13)
    assert np.abs(f(root)).max() < 1e-9 and 0 < root[0] < 0.05
    x0 = zerlaut_x0(ZerlautAdaptationFirstOrder)[:, 0]
    _, x = run(RegionNetwork(model=ZerlautAdaptationFirstOrder(**ZERLAUT_DRIVE), integrator="heun",
                             initial_state=x0), 7000.0)
    np.testing.assert_allclose(x[:2, 0], root[:2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(x[2, 0], root[2], rtol=0, atol=1e-6)


def test_zerlaut_rates_stay_non_negative_as_tvbs_boundaries_say():
    """TVB bounds E, I at 0 from below after every stage; started at E = I = 0 without drive,
    the transfer function's tiny output keeps them at or above 0, never below."""
    st, x = run(RegionNetwork(model=ZerlautAdaptationFirstOrder(), integrator="heun",
                              initial_state=(0.0, 0.0, 0.0, 0.0, -0.01)), 50.0)
    assert (st[:, :2] >= 0).all() and (x[:2] >= 0).all()


# ------------------------------------------------------------------ per-region parameters

def test_per_region_parameters_follow_tvb_with_a_heterogeneous_network(tvb_raw):
    """Five Jansen-Rit regions with one mu and one excitatory a per region (TVB takes arrays of
    one value per node), SigmoidalJansenRit coupling, delays, Heun dt 0.1 ms, 200 ms, TVB's
    float32 history: all six state variables equal TVB's run within 1e-6 of their ranges."""
    from tvb.simulator import coupling, models
    rng = np.random.default_rng(5)
    n = 5
    w = rng.uniform(0.5, 2.0, (n, n)) * (1 - np.eye(n))
    lengths = rng.uniform(10.0, 60.0, (n, n))
    mu, a = rng.uniform(0.1, 0.3, n), rng.uniform(0.08, 0.12, n)
    x0 = rng.uniform(0, 1, (6, n)) * np.array([0.1, 10, 10, 0.1, 0.1, 0.1])[:, None]
    from polyscale.solvers.mass import SigmoidalJansenRit
    ref = tvb_raw(models.JansenRit(mu=mu, a=a), coupling.SigmoidalJansenRit(), w, lengths, x0, 200.0)
    spec = RegionNetwork(model=JansenRit(mu=tuple(mu), a=tuple(a)), coupling=SigmoidalJansenRit(),
                         connectome=Connectome(weights=w, tract_lengths_mm=lengths, speed_mm_per_ms=3.0),
                         initial_state=x0, integrator="heun", history_precision="float32")
    got, _ = run(spec, 200.0)
    err = np.abs(got[1:] - ref[:-1]).max(axis=(0, 2)) / np.abs(ref).max(axis=(0, 2))
    assert err.max() <= 1e-6, err
    # and the heterogeneity matters: the homogeneous network (mean mu, a) is elsewhere
    same, _ = run(spec.replace(model=JansenRit(mu=float(mu.mean()), a=float(a.mean()))), 200.0)
    assert np.abs(same - got).max(axis=(0, 2))[1] > 0.1


def test_a_per_region_parameter_acts_region_by_region():
    """Uncoupled Montbrió regions with eta given per region settle, each, on the fixed point of
    its own eta (the closed-form quartic root, as in test_montbrio_fixed_point...): the column
    of parameters is not shuffled or broadcast wrongly."""
    etas = (-5.0, -4.0, -6.0)
    spec = RegionNetwork(model=MontbrioPazoRoxin(eta=etas), connectome=Connectome(weights=np.zeros((3, 3))),
                         integrator="heun", initial_state=(0.1, -2.0))
    _, x = run(spec, 2000.0)
    for i, eta in enumerate(etas):
        solo = RegionNetwork(model=MontbrioPazoRoxin(eta=eta), integrator="heun", initial_state=(0.1, -2.0))
        np.testing.assert_array_equal(x[:, i], run(solo, 2000.0)[1][:, 0])


@pytest.mark.parametrize("make, message", [
    (lambda: JansenRit(mu=(0.1, float("inf"))),
     r"jansen_rit: parameter 'mu' must be a finite number or a sequence of them, one per region \(got \(0.1, inf\)\)"),
    (lambda: JansenRit(mu=()), r"jansen_rit: parameter 'mu' must be a finite number or a sequence"),
    (lambda: JansenRit(mu=((0.1, 0.2),)), r"jansen_rit: parameter 'mu' must be a finite number or a sequence"),
    (lambda: MontbrioPazoRoxin(tau=(1.0, -1.0)), r"montbrio_pazo_roxin: parameter 'tau' must be a finite number > 0 "
                                                r"or a sequence of them"),
    (lambda: ZerlautAdaptationFirstOrder(P_e=(0.1, 0.2)), r"parameter 'P_e' must be 10 finite numbers"),
    (lambda: RegionNetwork(model=JansenRit(mu=(0.1, 0.2, 0.3)),
                           connectome=Connectome(weights=np.zeros((2, 2)))),
     r"jansen_rit: parameter 'mu' has 3 values, one per region, but the network has 2 regions"),
])
def test_bad_per_region_parameters_name_the_parameter_the_value_and_what_is_allowed(make, message):
    with pytest.raises(ps.ModelError, match=message):
        make()


def test_per_region_parameters_round_trip_through_the_wire_form():
    spec = RegionNetwork(model=JansenRit(mu=np.array([0.1, 0.2])), connectome=Connectome(weights=np.zeros((2, 2))))
    assert spec.model.mu == (0.1, 0.2)
    assert RegionNetwork.from_dict(spec.to_dict()) == spec
