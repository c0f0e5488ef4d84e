"""Destination-side delivery, driven directly (the scheduler tests cover it end to end)."""
from __future__ import annotations

import numpy as np

import polyscale as ps
from polyscale.coordinator.routing import Inbox


def plan_for(interpolation="hold", delay_ms=1.0, t_stop_ms=100.0):
    m = ps.Model(t_stop_ms=t_stop_ms)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0], ], c=[1.0], dt_ms=0.1))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.05))
    m.couple("src.x", "dst.u", delay_ms=delay_ms, interpolation=interpolation)
    return m.check()


def feed(inbox, plan, n_windows):
    """Push ramp samples x(t) = t for each window; collect each next window's input."""
    lk = plan.links[0]
    w = plan.window_ticks
    got = []
    for i in range(n_windows):
        t0, t1 = i * w, (i + 1) * w
        got.append(inbox.collect(t0, t1)["u"])
        times = np.arange(t0, t1, 100_000)
        inbox.push(lk.index, ps.Samples(t0, 100_000, (times / 1e6)[:, None]))
    return got


def test_history_before_t0_is_zero_and_values_follow_with_the_delay():
    plan = plan_for("hold", delay_ms=1.0)
    got = feed(Inbox(plan, "dst"), plan, 3)
    u = np.concatenate([g.data[:, 0] for g in got])
    t = np.arange(len(u)) * 0.05
    expected = np.where(t >= 1.0, np.floor(np.round((t - 1.0) / 0.1, 9)) * 0.1, 0.0)
    np.testing.assert_allclose(u, expected, atol=1e-12)
    assert got[0].period == 50_000 and got[1].t0 == plan.window_ticks


def test_the_history_buffer_stays_bounded_over_a_long_run():
    plan = plan_for("linear", delay_ms=1.2)
    inbox = Inbox(plan, "dst")
    feed(inbox, plan, 200)
    link = inbox.links[0]
    # keeps about delay / period + window / period samples, not the whole run
    assert len(link.hist) <= (1.2 + plan.window_ticks / 1e6) / 0.1 + 2
    assert link.hist_k0 > 0


def test_inputs_exist_for_every_in_port_even_when_uncoupled():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("r", ps.solvers.SpikeRelay(size=2))
    m.solver("x", ps.solvers.LinearSystem(a=[[0.0, 0.0], [0.0, 0.0]]))
    inputs_r = Inbox(m.check(), "r").collect(0, 1_000_000)
    inputs_x = Inbox(m.check(), "x").collect(0, 1_000_000)
    assert len(inputs_r["in"]) == 0 and inputs_r["in"].weights is not None
    assert inputs_x["u"].data.shape == (10, 2) and not inputs_x["u"].data.any()


# -- a solver that takes its inputs ahead (SolverSpec.input_lead_ms) ---------------------------------

from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

import pytest  # noqa: E402

from polyscale.coordinator.time import to_ticks  # noqa: E402


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadEcho(ps.SolverSpec):
    """Test-only: declares an input lead of ``lead_ms`` and writes out what it was handed, one row
    per step of its window [t0, t1): ``arrived`` = summed weights of spikes whose arrival tick
    falls in step [t + lead, t + lead + dt) of the shifted interval, ``u_at`` = the ``u`` sample
    it was handed for time t + lead. With lead 0 it is a plain delivery recorder."""

    type: ClassVar[str] = "test_lead_echo"
    level: ClassVar[str] = "test"
    lead_ms: float = 0.0
    size: int = 2
    dt_ms: float = 0.1

    def input_lead_ms(self) -> float:
        return self.lead_ms

    def ports(self):
        p = to_ticks(self.dt_ms, "dt_ms")
        return {"in": ps.Port("spikes", "in", self.size, "", None),
                "u": ps.Port("analog", "in", 1, "", p),
                "arrived": ps.Port("analog", "out", self.size, "", p),
                "u_at": ps.Port("analog", "out", 1, "", p)}

    def build(self, ctx):
        return _LeadEcho(self)


class _LeadEcho:
    def __init__(self, spec: LeadEcho):
        self.dt_ticks = to_ticks(spec.dt_ms, "dt_ms")
        self.lead = to_ticks(spec.lead_ms, "lead_ms")
        self.size = spec.size

    def advance(self, t0, t1, inputs):
        dt, a0, a1 = self.dt_ticks, t0 + self.lead, t1 + self.lead
        s, u = inputs["in"], inputs["u"]
        # what the core promises: spikes arriving in [t0 + lead, t1 + lead), samples from t0 + lead
        assert len(s) == 0 or (s.ticks.min() >= a0 and s.ticks.max() < a1), (s.ticks, a0, a1)
        assert u.t0 == a0 and u.data.shape == ((t1 - t0) // dt, 1), (u.t0, a0, u.data.shape)
        arrived = np.zeros(((t1 - t0) // dt, self.size))
        np.add.at(arrived, ((s.ticks - a0) // dt, s.ids), s.weights)
        return {"arrived": ps.Samples(t0, dt, arrived), "u_at": ps.Samples(t0, dt, u.data.copy())}

    def state(self):
        return {}

    def close(self):
        pass


SPIKE_MS = (0.0, 0.3, 0.35, 1.0, 2.7, 4.1)     # 0.35: arrives off the 0.1 ms grid
SPIKE_IDS = (0, 1, 0, 1, 0, 1)


def lead_model(lead_ms, delay_ms=1.5, window_ms=None, t_stop_ms=6.0):
    """A spike train and a ramp x(t) = t (ms), both with delay_ms, into a LeadEcho."""
    m = ps.Model(seed=5, t_stop_ms=t_stop_ms, window_ms=window_ms)
    m.solver("train", ps.solvers.SpikeTrain(times_ms=SPIKE_MS, ids=SPIKE_IDS, size=2, dt_ms=0.05))
    m.solver("ramp", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))
    m.solver("echo", LeadEcho(lead_ms=lead_ms))
    m.couple("train.spikes", "echo.in", delay_ms=delay_ms, weight=2.0)
    m.couple("ramp.x", "echo.u", delay_ms=delay_ms)
    m.record("echo.arrived")
    m.record("echo.u_at")
    return m


def test_a_lead_hands_the_solver_what_arrives_that_much_later(transport):
    """Lead 0.4 ms, delay 1.5 ms: row t of the echo holds what arrives in [t + 0.4, t + 0.5) ms,
    i.e. spike k (emitted at T_k) in row floor((T_k + 1.5 - 0.4) / 0.1), and the ramp read at
    t + 0.4 - 1.5 (zero before 0): closed forms, on every transport."""
    run = ps.run(lead_model(0.4), transport=transport)
    arrived, u = run.signal("echo", "arrived"), run.signal("echo", "u_at")
    n = len(arrived.data)
    assert n == 60
    want = np.zeros((n, 2))
    for t_ms, i in zip(SPIKE_MS, SPIKE_IDS):
        row = int(np.floor(round((t_ms + 1.5 - 0.4) / 0.1, 9)))
        if row < n:
            want[row, i] += 2.0
    np.testing.assert_array_equal(arrived.data, want)
    t = np.arange(n) * 0.1
    # the ramp's sample at tau is tau (ms); hold reads the latest sample at or before t + 0.4 - 1.5
    np.testing.assert_allclose(u.data[:, 0], np.maximum(np.round(t + 0.4 - 1.5, 9), 0.0), atol=1e-12)


def test_a_lead_shifts_delivery_and_nothing_else():
    """The echo with lead 0.6 ms sees at row t exactly what the echo without a lead sees at row
    t + 0.6 (same couplings): the lead moves the interval, never the arrival ticks."""
    a = ps.run(lead_model(0.0, delay_ms=2.0))
    b = ps.run(lead_model(0.6, delay_ms=2.0))
    for port in ("arrived", "u_at"):
        x, y = a.signal("echo", port).data, b.signal("echo", port).data
        np.testing.assert_array_equal(y[:-6], x[6:])


def test_a_lead_gives_the_same_deliveries_for_every_window():
    """Windows of 0.5, 1.0 and 1.1 ms (the longest the 1.5 ms delay allows with the 0.4 ms
    lead): the same recorded inputs, bitwise."""
    assert lead_model(0.4).check().window_ticks == to_ticks(1.1, "w")
    runs = [ps.run(lead_model(0.4, window_ms=w)) for w in (0.5, 1.0, None)]
    for other in runs[1:]:
        for port in ("arrived", "u_at"):
            np.testing.assert_array_equal(runs[0].signal("echo", port).data, other.signal("echo", port).data)


def test_a_lead_limits_the_window_and_a_short_delay_is_rejected_naming_it():
    assert lead_model(0.4).check().window_ticks == to_ticks(1.1, "w")     # 1.5 - 0.4
    assert lead_model(0.0).check().window_ticks == to_ticks(1.5, "w")
    with pytest.raises(ps.ModelError, match=r"coupling train\.spikes -> echo\.in: delay_ms=1\.5 is shorter "
                                            r"than the window \(1 ms\) plus the input lead of solver 'echo' "
                                            r"\(0\.6 ms, its input_lead_ms\(\)"):
        lead_model(0.6, window_ms=1.0).check()
    with pytest.raises(ps.ModelError, match=r"delay_ms=0\.4 is shorter than the shortest possible window, "
                                            r"0\.1 ms once the input lead of solver 'echo' \(0\.4 ms"):
        lead_model(0.4, delay_ms=0.4).check()


@pytest.mark.parametrize("lead_ms,message", [
    (0.05, r"input_lead_ms\(\)=0\.05 ms is not a whole number of the solver's dt \(0\.1 ms\)"),
    (-0.1, r"input_lead_ms\(\)=-0\.1 ms must be >= 0"),
])
def test_a_lead_off_the_solver_grid_is_rejected(lead_ms, message):
    with pytest.raises(ps.ModelError, match=r"solver 'echo' \(test_lead_echo\): " + message):
        lead_model(lead_ms).check()


def test_a_chain_whose_samples_do_not_divide_the_lead_is_rejected():
    """Bins of 0.5 ms run over windows shifted by a 0.4 ms lead would leave their grid."""
    m = lead_model(0.4, delay_ms=2.0, window_ms=1.0)
    m.couple("train.spikes", "echo.u", delay_ms=2.0,
             via=[ps.adapters.SpikesToRate(bin_ms=0.5), ps.adapters.Affine(units="", produces="analog")])
    with pytest.raises(ps.ModelError, match=r"coupling train\.spikes -> echo\.u: the chain carries samples "
                                            r"every 0\.5 ms, which does not divide the input lead of "
                                            r"solver 'echo' \(0\.4 ms"):
        m.check()
    ok = lead_model(0.4, delay_ms=2.0, window_ms=1.0)
    ok.couple("train.spikes", "echo.u", delay_ms=2.0,
              via=[ps.adapters.SpikesToRate(bin_ms=0.2), ps.adapters.Affine(units="", produces="analog")])
    ok.check()


def _same_grid_plan(delay_ms):
    m = ps.Model(t_stop_ms=100.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1))
    m.couple("src.x", "dst.u", delay_ms=delay_ms)
    return m.check()


def test_a_delay_over_several_windows_reads_rows_across_the_pushed_blocks():
    # same grid, delay of whole periods but not of whole windows: a window's rows span two
    # pushed windows; reference: the ramp x(t) = t (ms) delayed, u(t) = t - delay, 0 before
    plan = _same_grid_plan(2.3)
    inbox = Inbox(plan, "dst")
    lk, w = plan.links[0], plan.window_ticks
    out = []
    buf = np.empty((w // 100_000, 1))  # the source reuses one output buffer, as a solver may
    for i in range(12):
        t0, t1 = i * w, (i + 1) * w
        out.append(inbox.collect(t0, t1)["u"].data[:, 0])
        buf[:, 0] = np.arange(t0, t1, 100_000) / 1e6
        if i % 2:  # both ways in: a Samples, or a window's rows (what the zmq worker pushes)
            inbox.links[lk.index].push_rows(t0, buf)
        else:
            inbox.push(lk.index, ps.Samples(t0, 100_000, buf))
    u = np.concatenate(out)
    t = np.arange(len(u)) * 0.1
    expected = np.where(t >= 2.3 - 1e-9, t - 2.3, 0.0)
    np.testing.assert_allclose(u, expected, atol=1e-12)
    # bounded: the delay's rows, a window's and the one before
    link = inbox.links[lk.index]
    assert link.hist_n == len(link.hist) <= 23 + w // 100_000 + 1
    np.testing.assert_array_equal(link.state()["history"][:, 0],
                                  (link.hist_k0 + np.arange(link.hist_n)) * 100_000 / 1e6)


def test_samples_out_of_order_or_of_the_wrong_width_are_refused_naming_the_coupling():
    plan = _same_grid_plan(1.0)
    inbox = Inbox(plan, "dst")
    link = inbox.links[plan.links[0].index]
    w = plan.window_ticks
    link.push_rows(0, np.zeros((w // 100_000, 1)))
    with pytest.raises(ps.SolverError, match="arrived out of order"):
        link.push_rows(2 * w, np.zeros((w // 100_000, 1)))
    with pytest.raises(ps.SolverError, match=r"expected \(n, 1\)"):
        link.push_rows(w, np.zeros((w // 100_000, 2)))


@pytest.mark.parametrize("delay_windows", [1.0, 2.5])
def test_delayed_spikes_arrive_in_their_window_in_tick_order(delay_windows):
    # windows pushed in order, some with spikes out of tick order; reference: every pushed
    # spike with tick + delay in [t0, t1), sorted by arrival tick keeping the push order of
    # equal ticks (a plain Python sort), whichever path (one window due whole, or several)
    m = ps.Model(t_stop_ms=10.0)
    m.solver("a", ps.solvers.SpikeRelay(size=3))
    m.solver("b", ps.solvers.SpikeRelay(size=3))
    probe = m.check()
    m.couple("a.out", "b.in", delay_ms=delay_windows * probe.window_ticks / 1e6)
    plan = m.check()
    w = plan.window_ticks
    delay = plan.links[0].delay_ticks
    inbox = Inbox(plan, "b")
    rng = np.random.default_rng(7)
    pushed = []
    for i in range(12):
        t0, t1 = i * w, (i + 1) * w
        got = inbox.collect(t0, t1)["in"]
        want = sorted((t + delay, k, c) for k, (t, c) in enumerate(pushed) if t0 <= t + delay < t1)
        assert got.ticks.tolist() == [t for t, _, _ in want]
        assert got.ids.tolist() == [c for _, _, c in want]
        ticks = np.sort(rng.integers(t0, t1, 4)) if i % 3 else rng.integers(t0, t1, 4)
        ids = rng.integers(0, 3, 4)
        pushed += list(zip(ticks.tolist(), ids.tolist()))
        inbox.push(plan.links[0].index, ps.Spikes(ticks.astype(np.int64), ids.astype(np.int64)))
