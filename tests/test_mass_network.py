"""The region-network solver (level III) against TVB, closed forms and its own invariants.

References: ../shared/reference/mass (TVB 2.10 outputs; see its README for provenance), through
the ``reference`` fixture, which skips when the data are absent.
"""
import numpy as np
import pytest
from scipy import signal

import polyscale as ps
from polyscale.solvers.mass import (Connectome, Generic2dOscillator, JansenRit, Linear, RegionNetwork,
                                    SigmoidalJansenRit)

MS = 1_000_000  # ticks per ms


def advance(spec, t_ms, inputs=None, rng=None):
    """Build the live solver and run it for t_ms in one window: dict of output arrays."""
    solver = spec.build(None if rng is None else ps.coordinator.specs.SolverContext("n", 0, rng))
    res = solver.advance(0, int(round(t_ms * MS)), inputs or {})
    return {k: v.data for k, v in res.outputs.items()}


def dominant_frequency_hz(x, dt_ms):
    """Peak of a Welch PSD (Hann, 4 s segments, 8x zero padding, parabolic interpolation of the
    log power): the method of the reference scripts (scripts/mass/common.py), written out again."""
    x = np.asarray(x, float) - np.mean(x)
    fs = 1000.0 / dt_ms
    nper = min(len(x), int(round(4.0 * fs)))
    f, p = signal.welch(x, fs=fs, nperseg=nper, nfft=8 * nper)
    band = (f >= 0.5) & (f <= 100.0)
    i = np.argmax(np.where(band, p, -np.inf))
    a, b, c = np.log(p[i - 1]), np.log(p[i]), np.log(p[i + 1])
    return f[i] + 0.5 * (a - c) / (a - 2 * b + c) * (f[1] - f[0])


# ---------------------------------------------------------------- TVB: one Jansen-Rit node

def test_single_jansen_rit_node_matches_tvb_trajectory(reference):
    """TVB JansenRit defaults, HeunDeterministic dt 0.1 ms, 5 s from all zeros, through a full
    polyscale run. TVB's Raw monitor gives the state after steps 1..50000 (t = 0.1..5000 ms);
    polyscale's sample at t is the state at t, so sample k is TVB's row k - 1."""
    ref = np.load(reference / "mass" / "jr_det_y.npy")
    m = ps.Model(t_stop_ms=5000.0)
    m.solver("jr", RegionNetwork(model=JansenRit(), integrator="heun", dt_ms=0.1))
    m.record("jr.state")
    sig = ps.run(m).signal("jr", "state")
    assert sig.data.shape == (50000, 6)
    np.testing.assert_allclose(sig.time[1:], np.load(reference / "mass" / "jr_det_t.npy")[:-1], rtol=1e-12)
    # Same scheme, same operations in the same order (numba, as TVB's own JR kernel): the task
    # asks for 1e-6 relative; each variable is compared relative to its range so that zero
    # crossings do not blow up the relative error.
    err = np.abs(sig.data[1:] - ref[:-1]).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 1e-6, err


def test_single_jansen_rit_node_has_tvbs_dominant_frequency(reference):
    """6.80 Hz in TVB (jr_summary.json, Welch after 1 s of transient); within 0.1 Hz."""
    import json
    summary = json.loads((reference / "mass" / "jr_summary.json").read_text())
    y = advance(RegionNetwork(dt_ms=0.1), 5000.0)["state"]
    eeg = y[10000:, 1] - y[10000:, 2]
    assert abs(dominant_frequency_hz(eeg, 0.1) - summary["det"]["f_dominant_welch_hz"]) <= 0.1


# ---------------------------------------------------------------- TVB: 76 regions with delays

def whole_brain(reference, **kw):
    d = reference / "mass"
    conn = Connectome(weights=np.load(d / "conn76_weights.npy"),
                      tract_lengths_mm=np.load(d / "conn76_tract_lengths_mm.npy"), speed_mm_per_ms=3.0)
    return RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(),
                         integrator="heun", dt_ms=0.1,
                         initial_state=np.load(d / "wb_jr_initial_state.npy"), **kw)


def tvb_temporal_average(a):
    """TVB's TemporalAverage (1 ms = 10 steps) of polyscale samples a[n] (state at step n).

    TVB starts at step 513 (its history fills steps 0..512, so its stamps start at 51.5 ms);
    output k averages its stock slots for steps 511 + 10k .. 520 + 10k, i.e. our samples
    n = 10k - 1 .. 10k + 8. For k = 0 the two slots before the first step were never written and
    hold zeros, so TVB's first average is (a[1] + ... + a[8]) / 10.
    """
    k0 = a[1:9].sum(axis=0) / 10.0
    n = (a.shape[0] - 9) // 10
    rest = a[9:9 + 10 * n].reshape(n, 10, -1).mean(axis=1)
    return np.vstack([k0[None], rest])


@pytest.fixture(scope="module")
def tvb_tavg(reference):
    return np.load(reference / "mass" / "wb_jr_tavg_y1_minus_y2.npy")


def test_whole_brain_delays_are_tvbs(reference):
    spec = whole_brain(reference)
    np.testing.assert_array_equal(spec.connectome.delay_steps(0.1),
                                  np.load(reference / "mass" / "conn76_idelays_steps_dt0.1.npy"))


def test_whole_brain_matches_tvb_time_average_with_tvbs_float32_history(reference, tvb_tavg):
    """The 76-region network, 10 s: y1 - y2 averaged over 1 ms equals TVB's within 1e-6 of its
    range at every sample and region. TVB keeps its delay buffer and weights in float32
    (tvb.simulator.history); history_precision='float32' does the same, and the two runs then
    agree to ~1e-12 over the full 10 s. The stamps agree too: TVB's 51.5 ms is our 0.3 ms plus
    its 51.2 ms of history (see tvb_temporal_average)."""
    a = advance(whole_brain(reference, history_precision="float32"), 10000.0)["activity"]
    ours = tvb_temporal_average(a)
    assert ours.shape == tvb_tavg.shape == (10000, 76)
    # TVB stamps output k at (step - 5) * dt = 51.5 + k ms, i.e. k + 0.3 ms after its last
    # history step (512 * 0.1 ms): our samples 10k - 1 .. 10k + 8 straddle that time
    t_tvb = np.load(reference / "mass" / "wb_jr_tavg_t_ms.npy")
    np.testing.assert_allclose(t_tvb - 51.2, np.arange(10000) + 0.3, atol=1e-9)
    err = np.abs(ours - tvb_tavg).max(axis=0) / np.abs(tvb_tavg).max(axis=0)
    assert err.max() <= 1e-6, err.max()


def test_whole_brain_float64_history_keeps_every_regions_frequency(reference, tvb_tavg):
    """With the default float64 history the runs part slowly (TVB's float32 rounding, amplified by
    the network over seconds) but the physics agrees: every region's dominant frequency (Welch
    on the 1 ms averages, after 1 s) is TVB's within 0.1 Hz."""
    ours = tvb_temporal_average(advance(whole_brain(reference), 10000.0)["activity"])
    for i in range(76):
        f_ours = dominant_frequency_hz(ours[1000:, i], 1.0)
        f_tvb = dominant_frequency_hz(tvb_tavg[1000:, i], 1.0)
        assert abs(f_ours - f_tvb) <= 0.1, (i, f_ours, f_tvb)


# ---------------------------------------------------------------- delays, ports, replaced regions

def two_regions(length_mm, speed, **kw):
    """Region 0 drives region 1 through one connection (weight 1); G2D made linear and inert
    (d = 0), so activity is just V and stays where the input puts it."""
    conn = Connectome(weights=[[0.0, 0.0], [1.0, 0.0]],
                      tract_lengths_mm=[[0.0, length_mm], [length_mm, 0.0]], speed_mm_per_ms=speed)
    return RegionNetwork(model=Generic2dOscillator(d=0.0), connectome=conn, coupling=Linear(a=1.0),
                         integrator="euler", dt_ms=0.1, replaced=(0,), **kw)


@pytest.mark.parametrize("length_mm, speed, delay_steps", [
    (12.0, 3.0, 40),        # 4 ms exactly
    (7.5, 2.5, 30),         # 3 ms exactly
    (12.25, 3.0, 41),       # 4.083 ms: rounded to the nearest step, as TVB
])
def test_a_pulse_in_one_region_arrives_in_the_other_after_length_over_speed(length_mm, speed, delay_steps):
    """Region 0's activity is a one-step pulse at step 100 (it is replaced, so the pulse is
    exact); region 1's coupling input is that pulse, delayed by rint(L / v / dt) steps."""
    n = 400
    pulse = np.zeros((n, 1))
    pulse[100, 0] = 1.0
    out = advance(two_regions(length_mm, speed), n * 0.1, {"replaced": ps.Samples(0, 100_000, pulse)})
    np.testing.assert_array_equal(out["activity"][:, 0], pulse[:, 0])
    arrived = np.flatnonzero(out["coupling"][:, 1])
    assert arrived.tolist() == [100 + delay_steps]
    assert abs(delay_steps * 0.1 - length_mm / speed) <= 0.05


def test_delays_hold_across_windows():
    """The ring buffer carries over between windows: the same pulse, cut into 1 ms windows."""
    solver = two_regions(12.0, 3.0).build(None)
    got = []
    for w in range(40):
        pulse = np.zeros((10, 1))
        if w == 10:
            pulse[0, 0] = 1.0
        res = solver.advance(w * MS, (w + 1) * MS, {"replaced": ps.Samples(w * MS, 100_000, pulse)})
        got.append(res.outputs["coupling"].data[:, 1])
    assert np.flatnonzero(np.concatenate(got)).tolist() == [100 + 40]


def test_a_region_replaced_by_a_recording_of_itself_leaves_the_others_unchanged():
    """Run a 3-region Jansen-Rit network; run it again with region 1 replaced and fed its own
    recorded activity: regions 0 and 2 follow exactly the same trajectories (bitwise: the same
    numbers reach the same buffer), and region 1's outputs are its input."""
    rng = np.random.default_rng(3)
    w = rng.uniform(0.5, 2.0, (3, 3))
    np.fill_diagonal(w, 0.0)
    conn = Connectome(weights=w, tract_lengths_mm=rng.uniform(10, 60, (3, 3)), speed_mm_per_ms=3.0)
    base = RegionNetwork(connectome=conn, coupling=SigmoidalJansenRit(a=5.0), dt_ms=0.1,
                         initial_state=rng.uniform(0, 1, (6, 3)))
    full = advance(base, 1000.0)
    proxy = advance(base.replace(replaced=(1,)), 1000.0,
                    {"replaced": ps.Samples(0, 100_000, full["activity"][:, 1:2])})
    for i in (0, 2):
        np.testing.assert_array_equal(proxy["activity"][:, i], full["activity"][:, i])
    np.testing.assert_array_equal(proxy["activity"][:, 1], full["activity"][:, 1])
    np.testing.assert_array_equal(proxy["rate"][:, 1], full["rate"][:, 1])
    np.testing.assert_allclose(proxy["rate"][:, 1], JansenRit().rate_hz(full["activity"][:, 1]), rtol=1e-14)
    # and the stand-in matters: with a different activity the others move
    other = advance(base.replace(replaced=(1,)), 1000.0)
    assert np.abs(other["activity"][:, 0] - full["activity"][:, 0]).max() > 0.1


def test_a_replaced_region_is_fed_through_a_coupling_in_a_full_run():
    """Another solver stands in for region 0 (a constant from a linear system) in a model run:
    region 0's activity is what arrives, and it reaches region 1 after the tract delay."""
    m = ps.Model(t_stop_ms=20.0)
    m.solver("brain", two_regions(12.0, 3.0))
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], x0=[2.5], dt_ms=0.1))
    m.couple("src.x", "brain.replaced", delay_ms=1.0)
    m.record("brain.activity")
    m.record("brain.coupling")
    run = ps.run(m)
    act, coup = run.signal("brain", "activity"), run.signal("brain", "coupling")
    t = act.time
    # the coupling delivers zeros until its 1 ms delay has passed, then 2.5
    np.testing.assert_array_equal(act.data[:, 0], np.where(t >= 1.0 - 1e-9, 2.5, 0.0))
    np.testing.assert_array_equal(coup.data[:, 1], np.where(t >= 5.0 - 1e-9, 2.5, 0.0))


def test_the_input_port_enters_where_mu_does_in_jansen_rit():
    """A constant input u (1/ms) to every region is the same as raising mu by u (TVB's dy4)."""
    u = 0.05
    conn = Connectome(weights=[[0.0, 1.0], [1.0, 0.0]], tract_lengths_mm=[[0, 30.0], [30.0, 0]])
    a = advance(RegionNetwork(connectome=conn, coupling=SigmoidalJansenRit()), 500.0,
                {"input": ps.Samples(0, 100_000, np.full((5000, 2), u))})
    b = advance(RegionNetwork(model=JansenRit(mu=0.22 + u), connectome=conn, coupling=SigmoidalJansenRit()), 500.0)
    # mu + ... + u against (mu + u) + ...: rounding only, over a few oscillation cycles
    np.testing.assert_allclose(a["state"], b["state"], rtol=1e-9, atol=1e-12)
    assert np.abs(a["state"] - advance(RegionNetwork(connectome=conn, coupling=SigmoidalJansenRit()),
                                       500.0)["state"]).max() > 1e-3


def test_outputs_and_state_layout():
    """state is variable-major: column v * n + i is variable v of region i; rate is in Hz."""
    conn = Connectome(weights=[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    spec = RegionNetwork(connectome=conn, coupling=SigmoidalJansenRit(), initial_state=np.arange(18.0).reshape(6, 3) * 0.01)
    out = advance(spec, 1.0)
    assert out["state"].shape == (10, 18)
    np.testing.assert_array_equal(out["state"][0], np.arange(18.0) * 0.01)
    np.testing.assert_array_equal(out["activity"], out["state"][:, 3:6] - out["state"][:, 6:9])
    # Jansen-Rit's pyramidal rate: 2 nu_max S(v), nu_max 0.0025/ms -> at most 5 Hz
    v = out["activity"]
    np.testing.assert_allclose(out["rate"], 1000 * 2 * 0.0025 / (1 + np.exp(0.56 * (5.52 - v))), rtol=1e-14)
    ports = spec.ports()
    assert (ports["rate"].kind, ports["rate"].units, ports["state"].size) == ("rate", "Hz", 18)
    assert "replaced" not in ports and ports["input"].units == "1/ms"


def test_window_splits_give_identical_runs_including_noise():
    """Noise is drawn step-major from the solver's seeded generator: 0.5 ms and 5 ms windows give
    bit-identical runs; a different seed gives a different one."""
    conn = Connectome(weights=[[0.0, 1.0], [1.0, 0.0]], tract_lengths_mm=[[0, 15.0], [15.0, 0]])
    spec = RegionNetwork(connectome=conn, coupling=SigmoidalJansenRit(), integrator="heun_stochastic",
                         noise=(0, 0, 0, 0, 1e-3, 0))

    def run(window_ms, seed=7):
        m = ps.Model(seed=seed, t_stop_ms=100.0, window_ms=window_ms)
        m.solver("b", spec)
        m.record("b.state")
        return ps.run(m).signal("b", "state").data

    a = run(0.5)
    np.testing.assert_array_equal(a, run(5.0))
    assert np.abs(a - run(0.5, seed=8)).max() > 1e-3


@pytest.mark.parametrize("integrator", ["euler_maruyama", "heun_stochastic"])
def test_additive_noise_gives_the_ornstein_uhlenbeck_variance(integrator):
    """dV = -k V dt + sqrt(2 D) dW (G2D with g = -k, everything else off, d = tau = 1): both
    schemes are linear recursions V' = m V + s z whose stationary variance s^2 / (1 - m^2) is
    known exactly (Euler-Maruyama: m = 1 - k dt, s^2 = 2 D dt; stochastic Heun with TVB's
    shared increment: m = 1 - k dt + (k dt)^2 / 2, s^2 = 2 D dt (1 - k dt / 2)^2). 400
    uncoupled regions, 20000 steps after burn-in; the estimate lies within 4 standard errors
    (autocorrelation time 1 / k = 10 ms, so ~ 400 * 2000 / 20 independent samples)."""
    k, D, dt = 0.1, 0.5, 0.1
    model = Generic2dOscillator(d=1.0, tau=1.0, alpha=0.0, e=0.0, f=0.0, g=-k, a=0.0, b=0.0, beta=0.0)
    conn = Connectome(weights=np.zeros((400, 400)))
    spec = RegionNetwork(model=model, connectome=conn, integrator=integrator, noise=(D, 0.0), dt_ms=dt)
    v = advance(spec, 2100.0, rng=np.random.default_rng(11))["activity"][1000:]
    if integrator == "euler_maruyama":
        m, s2 = 1 - k * dt, 2 * D * dt
    else:
        m, s2 = 1 - k * dt + (k * dt) ** 2 / 2, 2 * D * dt * (1 - k * dt / 2) ** 2
    var = s2 / (1 - m * m)
    n_eff = v.size / (2 * (1 / k) / dt)
    assert abs(v.var() - var) <= 4 * var * np.sqrt(2 / n_eff)


@pytest.mark.parametrize("make, message", [
    (lambda: RegionNetwork(integrator="rk45"),
     r"region_network: 'integrator' must be one of 'euler', 'heun', 'rk4', 'euler_maruyama', 'heun_stochastic' \(got 'rk45'\)"),
    (lambda: RegionNetwork(integrator="heun_stochastic"),
     r"integrator 'heun_stochastic' needs 'noise' \(6 intensities, one per state variable y0, y1"),
    (lambda: RegionNetwork(noise=(0.0,) * 6),
     r"'noise' is given but integrator 'heun' is deterministic"),
    (lambda: RegionNetwork(integrator="euler_maruyama", noise=(1.0, -1.0, 0, 0, 0, 0)),
     r"'noise' must be 6 finite numbers >= 0"),
    (lambda: RegionNetwork(initial_state=(0.0, 1.0)),
     r"'initial_state' must be 6 finite numbers or a \(6, 1\) matrix \(state variable, region\) \(got shape \(2,\)\)"),
    (lambda: RegionNetwork(replaced=(1,)), r"'replaced' must hold region indices in \[0, 1\) \(got 1\)"),
    (lambda: RegionNetwork(connectome=Connectome(weights=[[0, 1.0], [1.0, 0]]), replaced=(0, 0)),
     r"'replaced' lists a region twice"),
    (lambda: RegionNetwork(dt_ms=0.0), r"'dt_ms' must be a finite number > 0 \(got 0.0\)"),
    (lambda: RegionNetwork(history_precision="half"), r"'history_precision' must be one of 'float64', 'float32'"),
    (lambda: RegionNetwork(model="jansen_rit"), r"'model' must be a node model spec"),
    (lambda: RegionNetwork.from_dict({"coupling": {"type": "hyperbolic_tangent"}}),
     r"coupling function: 'type' must be one of 'difference', 'kuramoto', 'linear', 'sigmoidal_jansen_rit' "
     r"\(got 'hyperbolic_tangent'\)"),
])
def test_bad_network_specs_name_the_field_the_value_and_what_is_allowed(make, message):
    with pytest.raises(ps.ModelError, match=message):
        make()


@pytest.mark.parametrize("integrator", ["euler_maruyama", "heun_stochastic"])
def test_multiplicative_noise_gives_geometric_brownian_moments(integrator):
    """dV = -k V dt + sqrt(2 D) V dW (TVB's Multiplicative noise, b(x) = x, evaluated at the start
    of the step): each step multiplies V by m + s z with m, s as in the additive case, so
    E[V_n] = m^n and E[V_n^2] = (m^2 + s^2)^n exactly. 1000 independent regions; both moments
    within 4 standard errors of the sample."""
    k, D, dt, n = 0.02, 0.005, 0.1, 500
    model = Generic2dOscillator(d=1.0, tau=1.0, alpha=0.0, e=0.0, f=0.0, g=-k, a=0.0, b=0.0, beta=0.0)
    spec = RegionNetwork(model=model, connectome=Connectome(weights=np.zeros((1000, 1000))),
                         integrator=integrator, noise=(D, 0.0), noise_kind="multiplicative", dt_ms=dt,
                         initial_state=(1.0, 0.0))
    v = advance(spec, (n + 1) * dt, rng=np.random.default_rng(5))["activity"][n]
    if integrator == "euler_maruyama":
        m, s2 = 1 - k * dt, 2 * D * dt
    else:
        m, s2 = 1 - k * dt + (k * dt) ** 2 / 2, 2 * D * dt * (1 - k * dt / 2) ** 2
    assert abs(v.mean() - m ** n) <= 4 * v.std() / np.sqrt(v.size)
    assert abs((v ** 2).mean() - (m * m + s2) ** n) <= 4 * (v ** 2).std() / np.sqrt(v.size)
    # and it is multiplicative: a region at V = 0 stays there
    z = advance(spec.replace(initial_state=(0.0, 0.0)), 10.0, rng=np.random.default_rng(5))["activity"]
    assert not z.any()


def test_delayed_coupling_equals_a_plain_loop_over_the_history_in_any_windows():
    """Eight linear Generic2D regions (e = f = c = 0), Linear coupling, delays from 0 to 150
    steps (self loops without delay, short ones the kernel sums step by step, long ones it sums
    in batches), Euler: the same run written as a plain numpy loop over a full history array is
    the reference. The kernel's result, in windows of 7, 33 and 100 steps (batches cut at window
    ends, the ring wrapping mid-batch), equals it to 1e-12 of the range."""
    rng = np.random.default_rng(11)
    n, dt, steps = 8, 0.1, 700
    w = rng.uniform(0.1, 1.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.6)
    d = rng.integers(1, 151, (n, n))
    d[rng.uniform(size=(n, n)) < 0.08] = 3                            # a few short delays
    np.fill_diagonal(d, 0)
    model = Generic2dOscillator(e=0.0, f=0.0, c=0.0, g=-0.5, a=0.1, d=0.5)
    x0 = rng.uniform(-1, 1, (2, n))
    spec = RegionNetwork(model=model, integrator="euler", dt_ms=dt, initial_state=x0, coupling=Linear(a=0.3),
                         connectome=Connectome(weights=w, tract_lengths_mm=d * dt * 3.0, speed_mm_per_ms=3.0))
    assert (spec.connectome.delay_steps(dt) == d).all()
    # reference: x' = M x + q + gamma c, c_i = a sum_j w_ij V_j(t - d_ij), history = x0
    p = {k: getattr(model, k) for k in ("tau", "I", "a", "b", "d", "g", "alpha", "beta", "gamma")}
    V = np.empty((steps + 1, n))
    x = x0.copy()
    ref = np.empty((steps, 2, n))
    for k in range(steps):
        V[k] = x[0]
        past = np.where(k - d >= 0, V[np.maximum(k - d, 0), np.arange(n)[None, :]], x0[0][None, :])
        c = 0.3 * (w * past).sum(axis=1)
        ref[k] = x
        dV = p["d"] * p["tau"] * (p["alpha"] * x[1] + p["g"] * x[0] + p["gamma"] * p["I"] + p["gamma"] * c)
        dW = p["d"] * (p["a"] + p["b"] * x[0] - p["beta"] * x[1]) / p["tau"]
        x = x + dt * np.array([dV, dW])
    for window in (7, 33, 100):
        solver = spec.build(None)
        got, t = [], 0
        while t < steps:
            m = min(window, steps - t)
            got.append(solver.advance(t * solver.dt_ticks, (t + m) * solver.dt_ticks, {}).outputs["state"].data)
            t += m
        got = np.concatenate(got).reshape(steps, 2, n)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err <= 1e-12, (window, err)


@pytest.mark.parametrize("model, coupling", [
    (JansenRit(), SigmoidalJansenRit(a=2.0)),                                    # TVB's defaults
    (JansenRit(mu=tuple(np.linspace(0.18, 0.26, 6)), a=(0.1, 0.09, 0.1, 0.11, 0.1, 0.095)),
     SigmoidalJansenRit(a=2.0)),                                                  # per-region values
    (JansenRit(a_1=1.2), SigmoidalJansenRit(a=2.0, midpoint=5.52)),  # a_1 != 4 a_3; the coupling's
])                                                                   # sigmoid is the model's
def test_jansen_rit_fast_path_equals_a_plain_loop_with_delays(model, coupling):
    """The float64 Jansen-Rit path (vectorised exponentials, the exponentials it shares, the
    fused Heun step, batched delayed sums) against TVB's equations written as a plain numpy loop
    with np.exp over a full history array: six regions, delays 0 (self loops) to 40 steps,
    SigmoidalJansenRit coupling, Heun, 400 steps in windows of 7 and 64 steps. vexp is within
    2 ulp of exp and the sums are ordered differently: the states agree to 1e-12 of their range."""
    rng = np.random.default_rng(3)
    n, dt, steps = 6, 0.1, 400
    w = rng.uniform(0.5, 2.0, (n, n)) * (rng.uniform(size=(n, n)) < 0.7)
    d = rng.integers(1, 41, (n, n))
    d[rng.uniform(size=(n, n)) < 0.2] = 2
    np.fill_diagonal(d, 0)
    x0 = rng.uniform(-1, 1, (6, n)) * np.array([1.0, 8.0, 8.0, 0.1, 0.1, 0.1])[:, None]
    spec = RegionNetwork(model=model, connectome=Connectome(weights=w, tract_lengths_mm=d * dt * 3.0,
                                                            speed_mm_per_ms=3.0),
                         coupling=coupling, integrator="heun", dt_ms=dt, initial_state=x0)
    P = {k: np.broadcast_to(np.asarray(getattr(model, k), float), (n,))
         for k in ("A", "B", "a", "b", "v0", "nu_max", "r", "J", "a_1", "a_2", "a_3", "a_4", "mu")}
    cmin, cmax, mid, cr, ca = (getattr(coupling, k) for k in ("cmin", "cmax", "midpoint", "r", "a"))

    def f(y, c):
        S = lambda v: 2.0 * P["nu_max"] / (1.0 + np.exp(P["r"] * (P["v0"] - v)))
        return np.array([y[3], y[4], y[5],
                         P["A"] * P["a"] * S(y[1] - y[2]) - 2 * P["a"] * y[3] - P["a"] ** 2 * y[0],
                         P["A"] * P["a"] * (P["mu"] + P["a_2"] * P["J"] * S(P["a_1"] * P["J"] * y[0]) + c)
                         - 2 * P["a"] * y[4] - P["a"] ** 2 * y[1],
                         P["B"] * P["b"] * P["a_4"] * P["J"] * S(P["a_3"] * P["J"] * y[0])
                         - 2 * P["b"] * y[5] - P["b"] ** 2 * y[2]])

    pre = np.empty((steps, n))   # the coupling's sigmoid of every region's y1 - y2, per step
    x = x0.copy()
    ref = np.empty((steps, 6, n))
    for k in range(steps):
        ref[k] = x
        pre[k] = cmin + (cmax - cmin) / (1.0 + np.exp(cr * (mid - (x[1] - x[2]))))
        h0 = cmin + (cmax - cmin) / (1.0 + np.exp(cr * (mid - (x0[1] - x0[2]))))
        past = np.where(k - d >= 0, pre[np.maximum(k - d, 0), np.arange(n)[None, :]], h0[None, :])
        c = ca * (w * past).sum(axis=1)
        k1 = f(x, c)
        k2 = f(x + dt * k1, c)
        x = x + (k1 + k2) * dt / 2.0
    for window in (7, 64):
        solver = spec.build(None)
        got, t = [], 0
        while t < steps:
            m = min(window, steps - t)
            got.append(solver.advance(t * solver.dt_ticks, (t + m) * solver.dt_ticks, {}).outputs["state"].data)
            t += m
        got = np.concatenate(got).reshape(steps, 6, n)
        err = (np.abs(got - ref).max(axis=(0, 2)) / np.abs(ref).max(axis=(0, 2))).max()
        assert err <= 1e-12, (window, err)
