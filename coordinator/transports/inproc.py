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

    def advance(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        results = {}
        for name, runner in self.runners.items():
            inputs = self.inboxes[name].collect(t0, t1)
            start = time.perf_counter()
            results[name] = runner.advance(t0, t1, inputs)
            self.compute_s[name] += time.perf_counter() - start
        for lk in self.plan.links:
            self.inboxes[lk.target.solver].push(lk.index, results[lk.source.solver].outputs[lk.source.port])
        return {name: WindowResult(outputs=self.runners[name].recorded(res), probe_parts=res.probe_parts)
                for name, res in results.items()}

    def close(self) -> None:
        runners, self.runners = self.runners, {}
        close_all(runners.values())
