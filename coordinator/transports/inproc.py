"""The reference transport: every solver in this process, advanced one after the other.

Routing is direct: after a window, each source's outputs are pushed into the inboxes of its
destinations, which assemble the inputs of the next window.
"""
from __future__ import annotations

import time
from collections.abc import Mapping

from ..plan import Plan
from ..routing import Inbox
from ..signals import WindowResult
from ..solver import SolverRunner, build_solver, close_all


class InProcTransport:
    """All solvers in one process. ``compute_s`` accumulates each solver's wall time."""

    def __init__(self) -> None:
        self.runners: dict[str, SolverRunner] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.plan: Plan | None = None
        self.compute_s: dict[str, float] = {}

    def start(self, plan: Plan) -> None:
        self.plan = plan
        for name in plan.solvers:
            self.runners[name] = build_solver(plan, name)
            self.inboxes[name] = Inbox(plan, name)
            self.compute_s[name] = 0.0
        # resolved once, so that a window only calls: (name, runner, its inbox's collect) and,
        # per coupling, (source solver, out-port, the destination link's push)
        self._steps = [(name, runner, self.inboxes[name].collect) for name, runner in self.runners.items()]
        self._pushes = [(lk.source.solver, lk.source.port, self.inboxes[lk.target.solver].links[lk.index].push)
                        for lk in plan.links]

    def advance(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        results = {}
        compute = self.compute_s
        clock = time.perf_counter
        for name, runner, collect in self._steps:
            inputs = collect(t0, t1)
            start = clock()
            results[name] = runner.advance(t0, t1, inputs)
            compute[name] += clock() - start
        for solver, port, push in self._pushes:
            push(results[solver].outputs[port])
        return {name: WindowResult(runner.recorded(results[name]), results[name].probe_parts)
                for name, runner, _ in self._steps}

    def close(self) -> None:
        runners, self.runners = self.runners, {}
        close_all(runners.values())
