"""The runner guarding every solver: malformed outputs become SolverErrors naming solver and time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.solver import Solver


@dataclass(frozen=True, slots=True, kw_only=True)
class Misbehaving(ps.SolverSpec):
    """A spike source + sampled output that breaks its contract in the way ``fault`` says."""

    type: ClassVar[str] = "test_misbehaving"
    level: ClassVar[str] = "test"
    fault: str = ""
    at_ms: float = 2.0
    dt_ms: float = 0.1

    def ports(self):
        return {"s": ps.Port("spikes", "out", 2), "v": ps.Port("analog", "out", 1, "mV", 100_000)}

    def build(self, ctx):
        if self.fault == "build":
            raise RuntimeError("no licence for this simulator")
        return _Misbehaving(self)


class _Misbehaving:
    dt_ticks = 100_000

    def __init__(self, spec):
        self.spec = spec

    def advance(self, t0, t1, inputs):
        n = (t1 - t0) // self.dt_ticks
        spikes = ps.Spikes(np.array([t0], np.int64), np.array([0], np.int64))
        v = ps.Samples(t0, self.dt_ticks, np.zeros((n, 1)))
        if t0 >= self.spec.at_ms * 1e6:
            f = self.spec.fault
            if f == "raise":
                raise FloatingPointError("overflow in channel kinetics")
            if f == "late-spike":
                spikes = ps.Spikes(np.array([t1], np.int64), np.array([0], np.int64))
            if f == "bad-id":
                spikes = ps.Spikes(np.array([t0], np.int64), np.array([2], np.int64))
            if f == "early-spike":
                spikes = ps.Spikes(np.array([t0, t0 - 1], np.int64), np.array([0, 0], np.int64))
            if f == "negative-id":
                spikes = ps.Spikes(np.array([t0, t0], np.int64), np.array([1, -1], np.int64))
            if f == "short-samples":
                v = ps.Samples(t0, self.dt_ticks, np.zeros((n - 1, 1)))
            if f == "missing-port":
                return {"s": spikes}
            if f == "wrong-kind":
                return {"s": v, "v": v}
        return {"s": spikes, "v": v}   # a plain dict of outputs is accepted too

    def state(self):
        return {}

    def close(self):
        pass


def run_with(fault, **kw):
    m = ps.Model(t_stop_ms=5.0, window_ms=1.0)
    m.solver("bad", Misbehaving(fault=fault, **kw))
    m.record("bad.v")
    return ps.run(m)


def test_a_well_behaved_solver_satisfies_the_protocol():
    assert isinstance(_Misbehaving(Misbehaving()), Solver)
    assert run_with("").status == "complete"


@pytest.mark.parametrize("fault, message", [
    ("raise", r"solver 'bad' \(test_misbehaving\) raised in window \[2, \.\.\.\) ms: FloatingPointError: overflow"),
    ("late-spike", r"returned spikes for 's' outside its window \[2000000, 3000000\) ticks"),
    ("bad-id", r"returned spike ids for 's' outside \[0, 2\)"),
    ("early-spike", r"returned spikes for 's' outside its window \[2000000, 3000000\) ticks"),
    ("negative-id", r"returned spike ids for 's' outside \[0, 2\)"),
    ("short-samples", r"returned samples for 'v' starting at tick 2000000, every 100000, shape \(9, 1\); "
                      r"expected 2000000, 100000, \(10, 1\)"),
    ("missing-port", r"returned no output for port 'v'"),
    ("wrong-kind", r"returned Samples for spike port 's'"),
])
def test_contract_violations_name_the_solver_and_the_window(fault, message):
    with pytest.raises(ps.SolverError, match=message) as info:
        run_with(fault)
    assert info.value.solver == "bad" and info.value.t_ms == 2.0


def test_a_solver_that_fails_to_build_is_named():
    with pytest.raises(ps.SolverError, match=r"solver 'bad' \(test_misbehaving\) failed to build: "
                                             r"RuntimeError: no licence") as info:
        run_with("build")
    assert info.value.t_ms is None


@dataclass(frozen=True, slots=True, kw_only=True)
class StopStamper(ps.SolverSpec):
    """A spike per window at its start (id 0), and through ``spikes_at_stop`` one at t_stop (id 1,
    or with ``bad`` at t_stop - 1 tick)."""

    type: ClassVar[str] = "test_stop_stamper"
    level: ClassVar[str] = "test"
    bad: bool = False
    dt_ms: float = 0.1

    def ports(self):
        return {"s": ps.Port("spikes", "out", 2)}

    def build(self, ctx):
        return _StopStamper(self.bad)


class _StopStamper:
    dt_ticks = 100_000

    def __init__(self, bad):
        self.bad = bad
        self.asked = []

    def advance(self, t0, t1, inputs):
        return {"s": ps.Spikes(np.array([t0], np.int64), np.array([0], np.int64))}

    def spikes_at_stop(self, t_stop):
        self.asked.append(t_stop)
        return {"s": ps.Spikes(np.array([t_stop - self.bad], np.int64), np.array([1], np.int64))}

    def state(self):
        return {}

    def close(self):
        pass


def test_spikes_at_t_stop_are_recorded_after_the_last_window_only():
    m = ps.Model(t_stop_ms=3.0, window_ms=1.0)
    m.solver("src", StopStamper())
    m.record("src.s")
    sp = ps.run(m).spikes("src", "s")
    np.testing.assert_allclose(sp.times, [0.0, 1.0, 2.0, 3.0])
    assert sp.ids.tolist() == [0, 0, 0, 1]
    m = ps.Model(t_stop_ms=3.0, window_ms=1.0)
    m.solver("src", StopStamper(bad=True))
    m.record("src.s")
    with pytest.raises(ps.SolverError, match=r"gave spikes at t_stop for 's' not all at tick 3000000"):
        ps.run(m)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports3(ps.SolverSpec):
    """Out-ports 'a' (analog), 'b' (spikes), 'c' (analog) and in-port 'u'; remembers the
    SolverContext's ``consumed`` of each instance built (inproc: in this process)."""

    type: ClassVar[str] = "test_ports3"
    level: ClassVar[str] = "test"
    dt_ms: float = 0.1
    seen: ClassVar[dict] = {}

    def ports(self):
        return {"a": ps.Port("analog", "out", 1, "", 100_000), "b": ps.Port("spikes", "out", 2),
                "c": ps.Port("analog", "out", 1, "", 100_000), "u": ps.Port("analog", "in", 1, "", 100_000)}

    def build(self, ctx):
        Ports3.seen[ctx.name] = ctx.consumed
        return _Ports3()


class _Ports3:
    dt_ticks = 100_000

    def advance(self, t0, t1, inputs):
        n = (t1 - t0) // self.dt_ticks
        z = ps.Samples(t0, self.dt_ticks, np.zeros((n, 1)))
        return {"a": z, "b": ps.Spikes(np.zeros(0, np.int64), np.zeros(0, np.int64)), "c": z}

    def state(self):
        return {}

    def close(self):
        pass


def test_a_solver_is_told_which_of_its_outputs_something_reads():
    from polyscale.coordinator.solver import consumed_outputs
    m = ps.Model(t_stop_ms=2.0, window_ms=1.0)
    m.solver("src", Ports3())
    m.solver("dst", Ports3())
    m.couple("src.a", "dst.u", delay_ms=1.0)
    m.record("src.c")
    Ports3.seen.clear()
    assert ps.run(m).status == "complete"
    # a coupling's source and a recording are read; 'b' and everything of dst are not
    assert Ports3.seen == {"src": frozenset({"a", "c"}), "dst": frozenset()}
    # any probe on a solver may read every out-port of it
    m.probe("p", ps.probes.LinearReadout(weights={"dst.c": [[1.0]]}))
    plan = ps.make_plan(m)
    assert consumed_outputs(plan, "dst") == frozenset({"a", "b", "c"})
    assert consumed_outputs(plan, "src") == frozenset({"a", "c"})
    # built outside a plan: unknown, so every out-port counts as read
    assert ps.coordinator.specs.SolverContext("x", 1, np.random.default_rng(1)).consumed is None
