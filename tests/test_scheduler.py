"""The window loop against closed forms: exact delays, multi-rate exchange, window invariance.

The test bed is the exactly integrated LinearSystem: a *ramp* (x' = 1, so x(t) = t at every
sample) feeding an *integrator* (x' = u) through a delayed coupling. The integrator's state is
then a sum of the delivered samples, which has a closed form for each delivery rule.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import polyscale as ps
from polyscale.coordinator.time import TICKS_PER_MS


def ramp(dt_ms):
    return ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=dt_ms)


def integrator(dt_ms):
    return ps.solvers.LinearSystem(a=[[0.0]], dt_ms=dt_ms)


def ramp_into_integrator(dt_src, dt_dst, delay_ms, t_stop_ms=10.0, interpolation="hold", transport="inproc"):
    m = ps.Model(seed=3, t_stop_ms=t_stop_ms)
    m.solver("src", ramp(dt_src))
    m.solver("dst", integrator(dt_dst))
    m.couple("src.x", "dst.u", delay_ms=delay_ms, interpolation=interpolation)
    m.record("src.x")
    m.record("dst.x")
    run = ps.run(m, transport=transport)
    return run.signal("src", "x"), run.signal("dst", "x")


# Matrix exponentials of these nilpotent matrices are exact to a few ulp, and the integrator
# sums at most a few hundred terms: 1e-12 relative leaves room for rounding and nothing else.
RTOL, ATOL = 1e-12, 1e-12


def test_ramp_source_is_exact(transport):
    src, _ = ramp_into_integrator(0.1, 0.1, 1.0, transport=transport)
    np.testing.assert_allclose(src.data[:, 0], src.time, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(src.time, np.arange(100) * 100_000 / TICKS_PER_MS)  # ticks -> ms


def test_same_step_hold_delivers_the_sample_exactly_one_delay_earlier(transport):
    """src (0.1 ms) --(1.0 ms)--> dst (0.1 ms): u_k = (k - 10) dt for k >= 10, else 0."""
    _, dst = ramp_into_integrator(0.1, 0.1, 1.0, transport=transport)
    dt, d = 0.1, 10
    k = np.arange(100)
    expected = dt * dt * np.clip(k - d, 0, None) * np.clip(k - d - 1, 0, None) / 2
    np.testing.assert_allclose(dst.data[:, 0], expected, rtol=RTOL, atol=ATOL)


def test_fine_destination_holds_the_coarse_source_sample(transport):
    """src (0.1 ms) --(1.0 ms, hold)--> dst (0.025 ms): each source sample is held for 4 steps."""
    _, dst = ramp_into_integrator(0.1, 0.025, 1.0, transport=transport)
    j = np.arange(400)
    tau = j * 25_000 - 1_000_000                 # ticks of t_j - delay
    k = np.floor_divide(tau, 100_000)            # latest source sample at or before it
    u = np.where(tau >= 0, k * 0.1, 0.0)
    expected = np.concatenate([[0.0], np.cumsum(0.025 * u)[:-1]])
    np.testing.assert_allclose(dst.data[:, 0], expected, rtol=RTOL, atol=ATOL)


def test_linear_interpolation_reproduces_a_ramp_exactly(transport):
    """src (0.1 ms) --(1.2 ms, linear)--> dst (0.025 ms): u(t) = max(t - 1.2, 0) exactly."""
    _, dst = ramp_into_integrator(0.1, 0.025, 1.2, interpolation="linear", transport=transport)
    m = np.arange(400)
    dt, d = 0.025, 48
    expected = dt * dt * np.clip(m - d, 0, None) * np.clip(m - d - 1, 0, None) / 2
    np.testing.assert_allclose(dst.data[:, 0], expected, rtol=1e-10, atol=1e-12)


def test_coarse_destination_reads_every_other_source_sample(transport):
    """src (0.1 ms) --(1.0 ms)--> dst (0.2 ms): u_j = 0.2 j - 1.0 for j >= 5."""
    _, dst = ramp_into_integrator(0.1, 0.2, 1.0, transport=transport)
    j = np.arange(50)
    expected = 0.04 * np.clip(j - 5, 0, None) * np.clip(j - 6, 0, None) / 2
    np.testing.assert_allclose(dst.data[:, 0], expected, rtol=RTOL, atol=ATOL)


def test_couplings_into_one_port_add(transport):
    m = ps.Model(t_stop_ms=5.0)
    m.solver("r1", ramp(0.1))
    m.solver("r2", ps.solvers.LinearSystem(a=[[0.0]], c=[3.0], dt_ms=0.1))   # x = 3 t
    m.solver("dst", integrator(0.1))
    m.couple("r1.x", "dst.u", delay_ms=1.0)
    m.couple("r2.x", "dst.u", delay_ms=1.0, weight=0.5)
    m.record("dst.x")
    x = ps.run(m, transport=transport).signal("dst", "x").data[:, 0]
    k = np.arange(50)
    expected = 2.5 * 0.01 * np.clip(k - 10, 0, None) * np.clip(k - 11, 0, None) / 2  # (1 + 0.5*3) t
    np.testing.assert_allclose(x, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("window_ms", [0.1, 0.7, 1.0, 2.0])
def test_relay_delivers_at_emission_plus_delay(window_ms, transport):
    """A --(2.0 ms)--> B ; A emits at 0.3 and 1.7 ms; dt 0.1 ms; any window up to the delay."""
    m = ps.Model(t_stop_ms=10.0, window_ms=window_ms)
    m.solver("A", ps.solvers.SpikeTrain(times_ms=[0.3, 1.7], dt_ms=0.1))
    m.solver("B", ps.solvers.SpikeRelay(dt_ms=0.1))
    m.couple("A.spikes", "B.in", delay_ms=2.0)
    m.record("B.out")
    s = ps.run(m, transport=transport).spikes("B", "out")
    assert list(zip(np.round(s.times * 10).astype(int), s.ids)) == [(23, 0), (37, 0)]  # (tick of 0.1 ms, id)


def test_spike_times_off_the_step_grid_arrive_exactly(transport):
    """Exact times survive: 0.3004 ms + 1.05 ms arrives at 1.3504 ms, on a 0.025 ms relay."""
    m = ps.Model(t_stop_ms=3.0)
    m.solver("A", ps.solvers.SpikeTrain(times_ms=[0.3004], dt_ms=0.1))
    m.solver("B", ps.solvers.SpikeRelay(dt_ms=0.025))
    m.couple("A.spikes", "B.in", delay_ms=1.05)
    m.record("B.out")
    s = ps.run(m, transport=transport).spikes("B", "out")
    assert s.times.tolist() == [1_350_400 / TICKS_PER_MS]


def test_channels_map_one_to_one_broadcast_and_merge_with_weights(transport):
    m = ps.Model(t_stop_ms=4.0)
    m.solver("A", ps.solvers.SpikeTrain(times_ms=[0.5, 0.6, 0.7], ids=[0, 1, 2], size=3))
    for name in ("one", "bcast", "merge"):
        m.solver(name, ps.solvers.SpikeRelay(size=3))
        m.record(f"{name}.out")
    m.couple("A.spikes[0:2]", "one.in[1:3]", delay_ms=1.0)        # 0 -> 1, 1 -> 2; 2 dropped
    m.couple("A.spikes[2]", "bcast.in", delay_ms=1.0)              # 2 -> 0, 1, 2
    m.couple("A.spikes", "merge.in[0]", delay_ms=1.0, weight=2.5)  # all -> 0
    m.record("merge.weight")
    run = ps.run(m, transport=transport)
    one, bcast, merge = (run.spikes(n, "out") for n in ("one", "bcast", "merge"))
    assert list(zip(one.times.round(6), one.ids)) == [(1.5, 1), (1.6, 2)]
    assert list(zip(bcast.times.round(6), bcast.ids)) == [(1.7, 0), (1.7, 1), (1.7, 2)]
    assert list(zip(merge.times.round(6), merge.ids)) == [(1.5, 0), (1.6, 0), (1.7, 0)]
    w = run.signal("merge", "weight")
    assert w.data.sum() == 7.5 and w.data[15, 0] == 2.5


def test_spikes_to_rate_conserves_counts_across_windows(transport):
    """Every spike is counted once whatever the window; 1 spike in a 0.5 ms bin of 4 channels = 500 Hz."""
    times = np.round(np.linspace(0.05, 9.95, 97), 2)
    m = ps.Model(t_stop_ms=20.0, window_ms=1.5)
    m.solver("A", ps.solvers.SpikeTrain(times_ms=times, ids=np.arange(97) % 4, size=4))
    m.solver("dst", integrator(0.5))
    m.couple("A.spikes", "dst.u", delay_ms=2.0, via=[ps.adapters.SpikesToRate(bin_ms=0.5)])
    m.record("dst.x")
    x = ps.run(m, transport=transport).signal("dst", "x").data[:, 0]
    # one spike in a bin of 4 channels is 1 / (4 * bin_s) Hz for bin_ms: 1000 / 4 Hz*ms whatever
    # the bin, so the integrated rate counts the spikes; 1e-12: a sum of 40 exact terms
    assert x[-1] == pytest.approx(97 * 1000.0 / 4, rel=1e-12)
    assert np.count_nonzero(np.diff(x)) == 20  # every 0.5 ms bin of 0-10 ms holds spikes


def relay_and_loop_model(window_ms):
    m = ps.Model(seed=7, t_stop_ms=23.1, window_ms=window_ms)
    m.solver("a", ps.solvers.LinearSystem(a=[[-0.05, 0.3], [-0.3, -0.05]], c=[0.1, 0.0], dt_ms=0.1))
    m.solver("b", ps.solvers.LinearSystem(a=[[-0.2]], dt_ms=0.05))
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.3, 4.4, 9.9, 9.9], ids=[0, 1, 1, 0], size=2))
    m.solver("relay", ps.solvers.SpikeRelay(size=2, dt_ms=0.1))
    m.couple("a.x[0]", "b.u", delay_ms=5.0)
    m.couple("b.x", "a.u[1]", delay_ms=5.0, weight=-0.5, interpolation="linear")
    m.couple("kick.spikes", "relay.in", delay_ms=5.0)
    m.couple("kick.spikes", "a.u[0]", delay_ms=5.0, via=[ps.adapters.SpikesToRate(bin_ms=0.1)])
    m.record("a.x")
    m.record("b.x")
    m.record("relay.out")
    m.probe("mix", ps.probes.LinearReadout(weights={"a.x": [[1.0, 2.0]], "b.x": [[-1.0]]}, every_ms=0.1))
    return m


@pytest.mark.parametrize("window_ms", [0.1, 0.7, 3.3])
def test_results_do_not_depend_on_the_window_bitwise(window_ms, transport):
    """Windows of 1, 7 and 33 steps give the same bits as the longest window the delays allow."""
    ref = ps.run(relay_and_loop_model(None))
    got = ps.run(relay_and_loop_model(window_ms), transport=transport)
    assert ref.attrs["window_ms"] == pytest.approx(4.9) and got.attrs["window_ms"] == pytest.approx(window_ms)
    for s, n in (("a", "x"), ("b", "x")):
        assert np.array_equal(ref.signal(s, n).data, got.signal(s, n).data)
        assert np.array_equal(ref.signal(s, n).time, got.signal(s, n).time)
    assert np.array_equal(ref.spikes("relay", "out").times, got.spikes("relay", "out").times)
    assert np.array_equal(ref.probe("mix").data, got.probe("mix").data)
    assert np.abs(ref.signal("a", "x").data).max() > 0.1   # something happened


def delay_loop(dt_ms, t_stop_ms=60.0):
    """x' = -x/10 + 0.08 y(t - 3) + 0.5 ;  y' = -y/5 - 0.1 x(t - 4)  (ms), zero history."""
    m = ps.Model(t_stop_ms=t_stop_ms)
    m.solver("x", ps.solvers.LinearSystem(a=[[-0.1]], c=[0.5], dt_ms=dt_ms))
    m.solver("y", ps.solvers.LinearSystem(a=[[-0.2]], dt_ms=dt_ms))
    m.couple("y.x", "x.u", delay_ms=3.0, weight=0.08)
    m.couple("x.x", "y.u", delay_ms=4.0, weight=-0.1)
    m.record("x.x")
    m.record("y.x")
    run = ps.run(m)
    return run.signal("x", "x").time, run.signal("x", "x").data[:, 0], run.signal("y", "x").data[:, 0]


def method_of_steps(t_stop_ms=60.0, step=3.0):
    """The continuous delay system by the method of steps, with scipy's dense output as history."""
    pieces = []

    def hist(t, i):
        if t <= 0:  # zero history, and both states start at zero
            return 0.0
        for t_lo, t_hi, sol in pieces:
            if t_lo <= t <= t_hi:
                return sol(t)[i]
        raise AssertionError(f"history at {t} not yet known")

    def rhs(t, s):
        return [-0.1 * s[0] + 0.08 * hist(t - 3.0, 1) + 0.5, -0.2 * s[1] - 0.1 * hist(t - 4.0, 0)]

    state, t = [0.0, 0.0], 0.0
    while t < t_stop_ms:
        t1 = min(t + step, t_stop_ms)
        sol = solve_ivp(rhs, (t, t1), state, dense_output=True, rtol=1e-11, atol=1e-13, max_step=0.05)
        pieces.append((t, t1, sol.sol))
        state, t = sol.y[:, -1], t1
    return lambda ts: np.array([[hist(t, 0), hist(t, 1)] for t in ts])


def test_coupled_delay_system_converges_to_the_method_of_steps_solution():
    """First-order convergence to the continuous DDE: inputs are held over a step, and a delayed
    sample can be up to one step old, so the error must halve when dt halves."""
    exact = method_of_steps()
    errors = []
    for dt in (0.1, 0.05):
        t, x, y = delay_loop(dt)
        ref = exact(t)
        errors.append(max(np.abs(x - ref[:, 0]).max(), np.abs(y - ref[:, 1]).max()))
    scale = np.abs(ref).max()
    assert errors[1] < 0.01 * scale, (errors, scale)
    assert errors[0] / errors[1] == pytest.approx(2.0, abs=0.3), errors


class ScriptedTransport:
    """A fake transport that answers from a script, to test the scheduler alone (httpx style)."""

    def __init__(self, fail_at=None):
        self.calls = []
        self.fail_at = fail_at
        self.closed = 0

    def start(self, plan):
        self.calls.append(("start", plan.window_ticks))

    def advance(self, t0, t1):
        self.calls.append(("advance", t0, t1))
        if self.fail_at is not None and t0 >= self.fail_at:
            raise ps.SolverError("scripted failure", solver="x", t_ms=t0 / TICKS_PER_MS)
        n = (t1 - t0) // 100_000
        return {"x": ps.WindowResult(outputs={"x": ps.Samples(t0, 100_000, np.full((n, 1), t0 / 1e6))})}

    def close(self):
        self.closed += 1


def scripted_model():
    m = ps.Model(t_stop_ms=5.0, window_ms=2.0)
    m.solver("x", ps.solvers.LinearSystem(a=[[0.0]]))
    m.record("x.x")
    return m


def test_scheduler_advances_windows_in_order_through_any_transport():
    fake = ScriptedTransport()
    run = ps.run(scripted_model(), transport=fake)
    assert fake.calls == [("start", 2_000_000), ("advance", 0, 2_000_000),
                          ("advance", 2_000_000, 4_000_000), ("advance", 4_000_000, 5_000_000)]
    assert fake.closed == 1
    assert run.status == "complete" and run.attrs["transport"] == "ScriptedTransport"
    assert run.signal("x", "x").data[:, 0].tolist() == [0.0] * 20 + [2.0] * 20 + [4.0] * 10


def test_scheduler_closes_the_transport_and_keeps_complete_windows_on_failure(run_file):
    fake = ScriptedTransport(fail_at=4_000_000)
    with pytest.raises(ps.SolverError, match="scripted failure"):
        ps.run(scripted_model(), out=run_file, transport=fake)
    assert fake.closed == 1
    with ps.load(run_file) as run:
        assert run.status.startswith("failed: scripted failure")
        assert run.attrs["n_windows"] == 2 and run.attrs["t_done_ms"] == 4.0
        assert len(run.signal("x", "x").data) == 40


class PipelinedTransport(ScriptedTransport):
    """A scripted transport whose solvers run elsewhere: post() sends a window, gather() returns it."""

    pipeline = True

    def post(self, t0, t1):
        self.calls.append(("post", t0, t1))

    def gather(self, t0, t1):
        self.calls.append(("gather", t0, t1))
        if self.fail_at is not None and t0 >= self.fail_at:
            raise ps.SolverError("scripted failure", solver="x", t_ms=t0 / TICKS_PER_MS)
        n = (t1 - t0) // 100_000
        return {"x": ps.WindowResult(outputs={"x": ps.Samples(t0, 100_000, np.full((n, 1), t0 / 1e6))})}

    def advance(self, t0, t1):
        raise AssertionError("a transport with post/gather is driven through them")


def test_scheduler_posts_the_next_window_before_writing_this_one():
    """The writer works while the solvers compute: window w + 1 is posted as soon as window w is
    gathered, before w is written; every window is written once, in order, whole."""
    fake = PipelinedTransport()
    written = []
    run = ps.run(scripted_model(), transport=fake, progress=lambda t, stop, wall: written.append((t, len(fake.calls))))
    w = [(0, 2_000_000), (2_000_000, 4_000_000), (4_000_000, 5_000_000)]
    assert fake.calls == [("start", 2_000_000), ("post", *w[0]), ("gather", *w[0]), ("post", *w[1]),
                          ("gather", *w[1]), ("post", *w[2]), ("gather", *w[2])]
    # window 0 is written after window 1 was posted (4 calls), window 1 after window 2 (6 calls)
    assert written == [(2_000_000, 4), (4_000_000, 6), (5_000_000, 7)]
    assert fake.closed == 1 and run.status == "complete"
    assert run.signal("x", "x").data[:, 0].tolist() == [0.0] * 20 + [2.0] * 20 + [4.0] * 10


def test_pipelined_failure_keeps_every_complete_window(run_file):
    fake = PipelinedTransport(fail_at=4_000_000)
    with pytest.raises(ps.SolverError, match="scripted failure"):
        ps.run(scripted_model(), out=run_file, transport=fake)
    assert fake.closed == 1
    with ps.load(run_file) as run:
        assert run.status.startswith("failed: scripted failure")
        assert run.attrs["n_windows"] == 2 and run.attrs["t_done_ms"] == 4.0
        assert run.signal("x", "x").data[:, 0].tolist() == [0.0] * 20 + [2.0] * 20


def test_a_transport_that_does_not_ask_for_pipelining_is_advanced_window_by_window():
    fake = PipelinedTransport()
    fake.pipeline = False
    fake.advance = lambda t0, t1: (fake.calls.append(("advance", t0, t1)),
                                   PipelinedTransport.gather(fake, t0, t1))[1]
    ps.run(scripted_model(), transport=fake)
    assert [c[0] for c in fake.calls] == ["start"] + ["advance", "gather"] * 3
