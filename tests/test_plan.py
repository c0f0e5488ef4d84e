"""Whole-model checks: the window rule, and one clear message per problem, all at once."""
from __future__ import annotations

from typing import ClassVar  # noqa: F401  (module level: dataclasses resolves the string annotation here)

import pytest

import polyscale as ps
from polyscale.coordinator.time import TICKS_PER_MS

MS = TICKS_PER_MS


def lin(dt_ms=0.1, n=1):
    return ps.solvers.LinearSystem(a=[[-0.1] * n for _ in range(n)], dt_ms=dt_ms)


def two(dt_a=0.1, dt_b=0.1, delay_ms=2.0, **model):
    m = ps.Model(seed=1, t_stop_ms=model.pop("t_stop_ms", 10.0), **model)
    m.solver("a", lin(dt_a))
    m.solver("b", lin(dt_b))
    m.couple("a.x", "b.u", delay_ms=delay_ms)
    return m


def test_window_is_the_shortest_delay_rounded_down_to_a_whole_number_of_every_dt():
    # dts 0.1 and 0.025 ms: the window must be a multiple of 0.1 ms; delay 1.05 ms -> 1.0 ms
    plan = two(0.1, 0.025, delay_ms=1.05).check()
    assert plan.window_ticks == 1 * MS
    assert "a.x -> b.u" in plan.window_reason


def test_window_of_coprime_steps_is_their_least_common_multiple():
    # 0.3 and 0.2 ms steps share windows of 0.6 ms; delay 1.3 ms allows two of them: 1.2 ms
    plan = two(0.3, 0.2, delay_ms=1.3, t_stop_ms=12.0).check()
    assert plan.window_ticks == 1_200_000


def test_window_without_couplings_is_bounded_and_whole():
    m = ps.Model(t_stop_ms=300.0)
    m.solver("a", lin(0.3))
    plan = m.check()
    assert plan.window_ticks % 300_000 == 0 and 0 < plan.window_ticks <= 10 * MS


def test_linear_interpolation_needs_a_window_plus_a_source_period_of_delay():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("a", lin(0.5))
    m.solver("b", lin(0.1))
    m.couple("a.x", "b.u", delay_ms=2.0, interpolation="linear")
    # hold would allow 2.0 ms; linear needs W <= 2.0 - 0.5 ms, a multiple of 0.5 ms: 1.5 ms
    assert m.check().window_ticks == 1_500_000


def test_user_window_is_used_when_it_fits():
    assert two(window_ms=0.5).check().window_ticks == MS // 2


def test_windows_cover_the_run_and_the_last_may_be_shorter():
    plan = two(delay_ms=3.0, t_stop_ms=10.0).check()
    wins = list(plan.windows())
    assert wins[0] == (0, 3 * MS) and wins[-1] == (9 * MS, 10 * MS)
    assert all(a[1] == b[0] for a, b in zip(wins, wins[1:]))


@pytest.mark.parametrize("build, message", [
    pytest.param(lambda: two(delay_ms=0.05),
                 r"coupling a\.x -> b\.u: delay_ms=0\.05 is shorter than the shortest possible window, 0\.1 ms",
                 id="delay-shorter-than-any-window"),
    pytest.param(lambda: two(delay_ms=0.5, window_ms=1.0),
                 r"coupling a\.x -> b\.u: delay_ms=0\.5 is shorter than the window \(1 ms\)",
                 id="delay-shorter-than-user-window"),
    pytest.param(lambda: two(0.1, 0.03, delay_ms=1.0),
                 r"t_stop_ms=10 is not a whole number of every solver's dt and sample period",
                 id="t-stop-off-grid"),
    pytest.param(lambda: two(window_ms=0.25),
                 r"window_ms=0\.25 is not a whole number of every solver's dt \(a 0\.1 ms, b 0\.1 ms\)",
                 id="window-not-multiple-of-dt"),
    pytest.param(lambda: two(dt_a=1 / 3),
                 r"solver 'a' \(linear\): dt_ms=0\.333333\d* ms is not a whole number of the base resolution",
                 id="dt-off-the-1ns-grid"),
])
def test_bad_timing_is_rejected_with_a_message_naming_it(build, message):
    with pytest.raises(ps.ModelError, match=message):
        build().check()


def model_with(couple=(), record=(), probes=()):
    m = ps.Model(seed=1, t_stop_ms=10.0)
    m.solver("a", lin())
    m.solver("b", lin())
    m.solver("stim", ps.solvers.SpikeTrain(times_ms=[1.0]))
    m.solver("relay", ps.solvers.SpikeRelay(size=3))
    for src, dst, kw in couple:
        m.couple(src, dst, **{"delay_ms": 1.0, **kw})
    for r in record:
        m.record(r)
    for name, spec in probes:
        m.probe(name, spec)
    return m


@pytest.mark.parametrize("kw, message", [
    pytest.param(dict(couple=[("nope.x", "b.u", {})]),
                 r"coupling nope\.x -> b\.u: there is no solver 'nope' \(solvers: 'a', 'b', 'stim', 'relay'\)",
                 id="unknown-solver"),
    pytest.param(dict(couple=[("a.x", "b.rates", {})]),
                 r"coupling a\.x -> b\.rates: solver 'b' has no input port 'rates' \(has: 'u'\)",
                 id="unknown-port"),
    pytest.param(dict(couple=[("a.u", "b.u", {})]),
                 r"solver 'a' has no output port 'u' \(has: 'x'\)", id="input-used-as-output"),
    pytest.param(dict(couple=[("stim.spikes", "b.u", {})]),
                 r"the signal carries 'spikes' but the input port b\.u takes 'analog' \(add an adapter",
                 id="kind-mismatch"),
    pytest.param(dict(couple=[("a.x", "relay.in", {})]),
                 r"carries 'analog' but the input port relay\.in takes 'spikes'", id="analog-into-spikes"),
    pytest.param(dict(couple=[("a.x[3]", "b.u", {})]),
                 r"a\.x\[3\]'?: channel 3 is out of range; port a\.x has 1 channel\(s\) \(0\.\.0\)",
                 id="selection-out-of-range"),
    pytest.param(dict(couple=[("stim.spikes", "relay.in[0:2]", {}), ("relay.out[0:3]", "relay.in[0:2]", {})]),
                 r"3 channel\(s\) arrive for 2 target channel\(s\)", id="channel-count-mismatch"),
    pytest.param(dict(couple=[("stim.spikes", "b.u", {"via": [ps.adapters.Affine()]})]),
                 r"adapter 1 \(affine\): consumes a sampled signal \(rate or analog\), but receives 'spikes'",
                 id="adapter-does-not-fit"),
    pytest.param(dict(couple=[("stim.spikes", "b.u", {"via": [ps.adapters.SpikesToRate(bin_ms=0.3)]})]),
                 r"bin_ms=0\.3 does not divide the window \(1 ms\)", id="bin-not-dividing-window"),
    pytest.param(dict(couple=[("stim.spikes", "relay.in", {"interpolation": "linear"})]),
                 r"interpolation='linear' applies to sampled signals", id="linear-on-spikes"),
    pytest.param(dict(record=["a.u"]), r"recording a\.u: solver 'a' has no output port 'u'",
                 id="record-an-input"),
    pytest.param(dict(record=["a.x", "a.x"]), r"port a\.x is already recorded", id="record-twice"),
    pytest.param(dict(probes=[("p", ps.probes.LinearReadout(weights={"zz.x": [[1.0]]}))]),
                 r"probe 'p' \(linear_readout\): there is no solver 'zz'", id="probe-unknown-solver"),
    pytest.param(dict(probes=[("p", ps.probes.LinearReadout(weights={"a.x": [[1.0, 2.0]]}))]),
                 r"weights\['a\.x'\] has 2 columns but the port has 1 channels", id="probe-wrong-shape"),
])
def test_bad_model_is_rejected_before_anything_runs(kw, message):
    with pytest.raises(ps.ModelError, match=message):
        model_with(**kw).check()


def test_units_that_differ_are_rejected_with_the_fix():
    m = ps.Model(t_stop_ms=10.0)
    m.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], units="mV"))
    m.solver("b", ps.solvers.LinearSystem(a=[[-0.1]], input_units="nA"))
    m.couple("a.x", "b.u", delay_ms=1.0)
    with pytest.raises(ps.ModelError, match=r"units differ: the signal is in 'mV', the input port b\.u "
                                            r"takes 'nA' \(convert with ps\.adapters\.Affine"):
        m.check()
    m.couplings.clear()
    m.couple("a.x", "b.u", delay_ms=1.0, via=[ps.adapters.Affine(gain=0.01, units="nA")])
    m.check()


def test_every_problem_is_reported_at_once():
    m = model_with(couple=[("a.x", "b.rates", {}), ("nope.x", "b.u", {}), ("a.x", "b.u", {"delay_ms": 0.01})],
                   record=["a.u"])
    with pytest.raises(ps.ModelError) as info:
        m.check()
    err = info.value
    assert len(err.problems) == 4, err.problems
    assert str(err).startswith("4 problems in model:\n - ")
    assert any("delay_ms=0.01 is shorter" in p for p in err.problems)


def test_empty_model_is_rejected():
    with pytest.raises(ps.ModelError, match="model has no solvers"):
        ps.Model().check()


def test_plan_describes_solvers_ports_couplings_and_window():
    text = two(0.1, 0.05, delay_ms=2.0).check().describe()
    assert "window 2 ms (limited by coupling a.x -> b.u)" in text
    assert "a: linear (generic), dt 0.1 ms" in text and "b: linear (generic), dt 0.05 ms" in text
    assert "a.x -> b.u: delay 2 ms, hold" in text
    assert "in u: analog x1, every 0.05 ms" in text


def test_the_plan_is_a_pure_function_of_the_model_data():
    m = two(0.1, 0.05, delay_ms=2.0)
    again = ps.Model.from_dict(m.to_dict()).check()
    plan = m.check()
    assert (again.window_ticks, again.t_stop_ticks) == (plan.window_ticks, plan.t_stop_ticks)
    assert [lk.name for lk in again.links] == [lk.name for lk in plan.links]


def test_window_is_also_a_whole_number_of_every_sample_period():
    """dt 0.1 ms but an output sampled every 0.5 ms: delay 1.2 ms gives a 1.0 ms window, not 1.2."""
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Slow(ps.SolverSpec):
        type: ClassVar[str] = "test_plan_slow"
        dt_ms: float = 0.1

        def ports(self):
            return {"r": ps.Port("rate", "out", 1, "Hz", 500_000)}

    m = ps.Model(t_stop_ms=10.0)
    m.solver("s", Slow())
    m.solver("b", lin())
    m.couple("s.r", "b.u", delay_ms=1.2)
    assert m.check().window_ticks == MS
    with pytest.raises(ps.ModelError, match=r"window_ms=0\.7 is not a whole number of every solver's dt "
                                            r"\(s 0\.1 ms, b 0\.1 ms\) and sample period; use a multiple of 0\.5 ms"):
        m.with_options(window_ms=0.7).check()
