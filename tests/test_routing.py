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
