"""BOLD probe: the Balloon-Windkessel model against TVB, closed-form steady states and scipy."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import polyscale as ps
from polyscale.probes.bold import PARAMETER_SETS


def _impulse(parameters: str, t_stop_ms: float = 30000.0, **kw) -> ps.coordinator.runfile.ProbeRecord:
    """One spike of one neuron at 1 s: over the 1 ms internal step its rate is 1000 Hz, so with
    efficacy 1 the drive is a pulse of unit area (1/s * s)."""
    m = ps.Model(t_stop_ms=t_stop_ms)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=[1000.0], dt_ms=0.1))
    m.probe("bold", ps.probes.BOLD(inputs="st.spikes", parameters=parameters, tr_ms=1.0, dt_ms=1.0, **kw))
    return ps.run(m).probe("bold")


def test_no_input_rests_at_exactly_zero():
    m = ps.Model(t_stop_ms=6000.0)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=[], size=3, dt_ms=0.1))
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0]], x0=[2.5], dt_ms=0.5))      # x = 2.5 forever
    m.probe("bold", ps.probes.BOLD(inputs=("st.spikes", "lin.x"), baseline=(0.0, 2.5), tr_ms=500.0))
    rec = ps.run(m).probe("bold")
    assert rec.data.shape == (12, 2) and rec.units == "%" and rec.modality == "bold"
    assert (rec.data == 0.0).all()


def test_unit_impulse_matches_tvb_balloon_model(reference):
    """TVB's BalloonModel (Heun, dt 1 ms) holds each input sample over the step *ending* at it;
    we hold it over the step starting at it, so TVB's trace at t is ours at t + 1 ms. Our RK4
    and TVB's Heun at 1 ms differ by O(dt^2) of time constants ~1 s: 1e-5 of the peak bounds
    both schemes' errors."""
    ref = np.load(reference / "mass" / "bold_balloon_impulse.npy")
    t_ref = np.load(reference / "mass" / "bold_balloon_impulse_t_s.npy")
    rec = _impulse("tvb")
    y = rec.data[1:, 0]
    np.testing.assert_allclose(y, ref[:len(y)], rtol=0, atol=1e-5 * ref.max())
    # the published shape (README of the reference): peak 3.67 s, undershoot 8.34 s (1 ms grid)
    assert t_ref[np.argmax(ref)] == pytest.approx(3.669)
    assert rec.time[np.argmax(rec.data[:, 0])] / 1000.0 == pytest.approx(3.669 + 0.001, abs=0.0015)
    assert rec.time[np.argmin(rec.data[:, 0])] / 1000.0 == pytest.approx(8.342 + 0.001, abs=0.0015)


def _scipy_balloon(p: dict, t_s: np.ndarray, on: float = 1.0, width: float = 0.001) -> np.ndarray:
    """The balloon ODE written out from Friston et al. 2000 (eqs. 1-3), driven by a pulse of
    unit area over [on, on + width) s, integrated by scipy's adaptive DOP853 at tight
    tolerances, piece by piece so that no step crosses the pulse's edges: an independent
    solution. Before the pulse the model is at rest (y = 0)."""
    kappa, gamma, tau, alpha, e0, v0 = (1 / p["tau_s_s"], 1 / p["tau_f_s"], p["tau0_s"],
                                        p["alpha"], p["e0"], p["v0"])

    def rhs(z):
        def f_(t, x):
            s, f, v, q = x
            return [z - kappa * s - gamma * (f - 1), s, (f - v ** (1 / alpha)) / tau,
                    (f * (1 - (1 - e0) ** (1 / f)) / e0 - v ** (1 / alpha) * q / v) / tau]
        return f_

    opts = dict(method="DOP853", rtol=1e-11, atol=1e-13, dense_output=True)
    pulse = solve_ivp(rhs(1.0 / width), (on, on + width), [0.0, 1.0, 1.0, 1.0], **opts)
    after = solve_ivp(rhs(0.0), (on + width, t_s[-1]), pulse.y[:, -1], **opts)
    x = np.tile(np.array([[0.0], [1.0], [1.0], [1.0]]), (1, len(t_s)))
    inside = (t_s > on) & (t_s < on + width)
    if inside.any():
        x[:, inside] = pulse.sol(t_s[inside])
    later = t_s >= on + width
    x[:, later] = after.sol(t_s[later])
    s, f, v, q = x
    k1, k2, k3 = 7 * e0, 2.0, 2 * e0 - 0.2          # Friston et al. 2000, after Buxton 1998
    return 100 * v0 * (k1 * (1 - q) + k2 * (1 - q / v) + k3 * (1 - v))


def test_friston2000_impulse_matches_an_independent_integration():
    """Friston et al. 2000's set (kappa 0.65, gamma 0.41, tau 0.98, alpha 0.32, rho 0.34, V0 0.02):
    our trace against scipy's DOP853 on the equations written out here. RK4 at 1 ms (time
    constants ~1 s, the pulse's edges on the step grid) is good to ~1e-9 of the peak; 1e-7
    leaves room for the platform's libm. The response peaks 2.86 s after the pulse and
    undershoots at 9.05 s."""
    rec = _impulse("friston2000", t_stop_ms=20000.0)
    want = _scipy_balloon(PARAMETER_SETS["friston2000"], rec.time / 1000.0)
    np.testing.assert_allclose(rec.data[:, 0], want, rtol=0, atol=1e-7 * want.max())
    assert rec.time[np.argmax(want)] / 1000.0 - 1.0 == pytest.approx(2.857, abs=0.002)
    assert rec.time[np.argmax(rec.data[:, 0])] / 1000.0 - 1.0 == pytest.approx(2.857, abs=0.002)


@pytest.mark.parametrize("parameters", sorted(PARAMETER_SETS))
def test_constant_drive_reaches_the_closed_form_steady_state(parameters):
    """Constant z: s = 0, f = 1 + z/gamma, v = f^alpha, q = v E(f)/E0 (the right-hand sides set to
    zero), and y from the set's coefficients. A sampled port: x = 3, efficacy 0.1 -> z = 0.3/s."""
    m = ps.Model(t_stop_ms=60000.0)
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0]], x0=[3.0], dt_ms=0.5))
    spec = ps.probes.BOLD(inputs="lin.x", parameters=parameters, efficacy=0.1, tr_ms=60000.0 - 1000.0)
    m.probe("bold", spec)
    rec = ps.run(m).probe("bold")
    p = PARAMETER_SETS[parameters]
    f = 1 + 0.3 * p["tau_f_s"]
    v = f ** p["alpha"]
    q = v * (1 - (1 - p["e0"]) ** (1 / f)) / p["e0"]
    e0 = p["e0"]
    if p["coefficients"] == "classic":
        k = (7 * e0, 2.0, 2 * e0 - 0.2)
    else:   # Stephan et al. 2007, eq. 12
        k = (4.3 * p["nu0_hz"] * e0 * p["te_s"], p["epsilon"] * p["r0_hz"] * e0 * p["te_s"], 1 - p["epsilon"])
    y = 100 * p["v0"] * (k[0] * (1 - q) + k[1] * (1 - q / v) + k[2] * (1 - v))
    assert rec.time.tolist() == [0.0, 59000.0]
    # after 59 s (> 20 of the slowest time constants, ~2.4 s) the transient is below 1e-6
    assert rec.data[1, 0] == pytest.approx(y, rel=1e-6)


def test_tr_longer_than_and_not_a_multiple_of_the_window_loses_nothing():
    """TR 1005 ms over 10 ms windows samples exactly the 5 ms-TR trace at every 201st point,
    and 1 ms windows give the same bits: the global stage carries its state across windows."""
    def run(tr_ms, window_ms):
        m = ps.Model(t_stop_ms=12000.0, window_ms=window_ms)
        m.solver("st", ps.solvers.SpikeTrain(times_ms=[100.0, 900.0, 950.0, 4000.0], ids=[0, 1, 0, 1],
                                             size=2, dt_ms=0.1))
        m.probe("bold", ps.probes.BOLD(inputs="st.spikes", tr_ms=tr_ms, dt_ms=1.0))
        return ps.run(m).probe("bold")
    fine, coarse, other = run(5.0, 10.0), run(1005.0, 10.0), run(1005.0, 1.0)
    np.testing.assert_allclose(coarse.time, np.arange(12) * 1005.0)
    np.testing.assert_array_equal(coarse.data, fine.data[::201])
    np.testing.assert_array_equal(coarse.data, other.data)
    assert coarse.data.max() > 0


def test_channels_follow_the_inputs_and_every_transport_agrees(transport):
    """A sampled port of two regions (only the second driven above baseline) and a spike
    population (one channel): 3 columns in that order, the same on every transport."""
    m = ps.Model(t_stop_ms=8000.0)
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0, 0.0], [0.0, 0.0]], x0=[1.0, 4.0], dt_ms=0.5))
    m.solver("st", ps.solvers.SpikeTrain(times_ms=list(np.arange(10.0, 2000.0, 10.0)), size=4, dt_ms=0.1))
    m.probe("bold", ps.probes.BOLD(inputs=("lin.x", "st.spikes"), baseline=1.0, efficacy=0.2, tr_ms=1000.0,
                                   positions_um=[[0, 0, 0], [1000, 0, 0], [0, 1000, 0]]))
    rec = ps.run(m, transport=transport).probe("bold")
    assert rec.data.shape == (8, 3)
    assert (rec.data[:, 0] == 0).all()            # x = baseline
    assert rec.data[3, 1] > 0                      # z = 0.2 * 3 = 0.6 /s
    # 100 Hz on neuron 0 of 4 = 25 Hz population rate; z = 0.2 * (25 - 1) = 4.8 /s for 2 s
    assert rec.data[3, 2] > rec.data[3, 1]
    assert rec.positions_um.shape == (3, 3)


@pytest.mark.parametrize("kw, match", [
    pytest.param({"parameters": "buxton"}, r"'parameters' must be one of 'friston2000', 'stephan2007', 'tvb' \(got 'buxton'\)", id="set"),
    pytest.param({"tr_ms": -1.0}, r"'tr_ms' must be a finite number > 0 \(got -1\.0\)", id="tr"),
    pytest.param({"e0": 1.5}, r"'e0' must be a fraction < 1 \(got 1\.5\)", id="e0"),
    pytest.param({"coefficients": "new"}, r"'coefficients' must be one of 'classic', 'revised' \(got 'new'\)", id="coefficients"),
])
def test_bad_parameters_are_rejected(kw, match):
    with pytest.raises(ps.ModelError, match=match):
        ps.probes.BOLD(inputs="a.b", **kw)


def test_steps_and_trs_that_do_not_fit_are_rejected():
    m = ps.Model(t_stop_ms=100.0, window_ms=1.0)
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.5))
    m.probe("a", ps.probes.BOLD(inputs="lin.x", dt_ms=0.7))
    with pytest.raises(ps.ModelError, match=r"dt_ms=0\.7 is not a multiple of the sample period of lin\.x"):
        m.check()
    m.probes.clear()
    m.probe("b", ps.probes.BOLD(inputs="lin.x", dt_ms=1.0, tr_ms=1500.5))
    with pytest.raises(ps.ModelError, match=r"tr_ms=1500\.5 is not a multiple of the internal step \(1 ms\)"):
        m.check()
    m.probes.clear()
    m.probe("c", ps.probes.BOLD(inputs="lin.x", dt_ms=1.5))
    with pytest.raises(ps.ModelError, match=r"the internal step dt_ms=1\.5 does not divide the window \(1 ms\)"):
        m.check()


@pytest.mark.parametrize("window_ms, period_ms, step_ms", [
    pytest.param(10.0, 0.1, 1.0, id="1ms-divides-the-window"),
    pytest.param(0.3, 0.1, 0.1, id="window-below-1ms-tr-2s"),     # gcd(0.3, 2000) = 0.1 ms
    pytest.param(2.5, 0.5, 0.5, id="1ms-does-not-divide"),
    pytest.param(10.0, None, 1.0, id="spikes-only"),
])
def test_default_internal_step_is_the_largest_fitting_one_up_to_1_ms(window_ms, period_ms, step_ms):
    """The default dt_ms: the largest multiple of the sampled inputs' periods that divides the
    window and the TR (2 s) and is at most 1 ms."""
    from polyscale.coordinator.signals import Port
    tick = 1_000_000
    port = (Port("spikes", "out", 3) if period_ms is None
            else Port("rate", "out", 3, "Hz", round(period_ms * tick)))
    info = ps.probes.BOLD(inputs="s.p").describe({"s": {"p": port}}, round(window_ms * tick))
    assert info.part_period_ticks == round(step_ms * tick)
