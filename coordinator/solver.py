"""The solver interface, and the runner that guards every call a coordinator makes to a solver.

A solver is built from its spec in the process that runs it (``spec.build(ctx)``) and must
provide what :class:`Solver` lists, no more. :class:`SolverRunner` owns the state machine around
it, as scipy's ``OdeSolver.step`` guards ``_step_impl``: it checks that windows follow each
other, that outputs match the declared ports (kinds, shapes, spike ticks inside the window,
channel indices in range), computes the local parts of probes, selects what is recorded, and
turns any exception into a :class:`SolverError` naming the solver and the simulated time.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..solvers._jit import njit
from .errors import PolyscaleError, SolverError
from .plan import Plan
from .seeding import rng_for
from .signals import Port, Samples, Signal, Spikes, WindowResult
from .specs import SolverContext
from .time import grid_count, to_ms


_I8 = np.dtype(np.int64)


@njit
def _spikes_in_range(ticks: np.ndarray, ids: np.ndarray, t0: int, t1: int, size: int) -> bool:
    """Whether every event has t0 <= tick < t1 and 0 <= id < size."""
    for k in range(ticks.shape[0]):
        t, c = ticks[k], ids[k]
        if t < t0 or t >= t1 or c < 0 or c >= size:
            return False
    return True


@runtime_checkable
class Solver(Protocol):
    """What the coordinator needs from a solver, and no more.

    ``dt_ticks`` is the integration step in ticks; the coordinator only ever asks for windows
    that are whole numbers of it. ``advance`` integrates ``[t0, t1)`` with the inputs already
    delivered for that interval (every in-port present: ``Spikes`` with absolute arrival ticks
    and weights, or ``Samples`` on the port's grid) and returns the out-ports' signals for the
    same interval (a ``WindowResult``, or a plain dict of outputs). A solver whose spec declares
    an input lead L (``input_lead_ms()``) is handed the inputs over ``[t0 + L, t1 + L)`` instead.

    Out-ports that nothing reads (not in ``SolverContext.consumed``: no coupling, recording or
    probe) must still be returned, but may be empty: a solver may skip their work.

    Optional: ``spikes_at_stop(t_stop)`` -> {spike out-port: Spikes at tick t_stop}, asked after
    the last window, for solvers that stamp a spike at the end of the step it occurs in (as NEST
    does): a crossing in the run's last step is then recorded at t_stop.
    """

    dt_ticks: int

    def advance(self, t0: int, t1: int, inputs: Mapping[str, Signal]) -> WindowResult | Mapping[str, Signal]: ...

    def state(self) -> dict[str, np.ndarray]:
        """The solver's state as named arrays (checkpoints, debugging)."""
        ...

    def close(self) -> None: ...


def consumed_outputs(plan: Plan, name: str) -> frozenset[str]:
    """The out-ports of solver ``name`` that something reads in ``plan``: the source of a
    coupling, a recording, or, when any probe attaches to the solver, every out-port (a probe's
    local part may read any of them). The rest the coordinator never looks at (passed to the
    solver as ``SolverContext.consumed``)."""
    outs = [p for p, port in plan.solvers[name].ports.items() if port.direction == "out"]
    if plan.probes_of(name):
        return frozenset(outs)
    read = {lk.source.port for lk in plan.links_from(name)}
    read.update(r.port for r in plan.recordings_of(name))
    return frozenset(p for p in outs if p in read)


def build_solver(plan: Plan, name: str, comm: Any = None) -> "SolverRunner":
    """Build solver ``name`` of ``plan`` in this process and wrap it in a runner."""
    sp = plan.solvers[name]
    ctx = SolverContext(name=name, seed=plan.seed, rng=rng_for(plan.seed, "solver", name), comm=comm,
                        consumed=consumed_outputs(plan, name))
    try:
        solver = sp.spec.build(ctx)
    except PolyscaleError:
        raise
    except Exception as exc:
        raise SolverError(f"solver {name!r} ({sp.spec.type}) failed to build: "
                          f"{type(exc).__name__}: {exc}", solver=name) from exc
    return SolverRunner(plan, name, solver)


class SolverRunner:
    """Guards one solver: window order, output checks, probe parts, recording selection."""

    def __init__(self, plan: Plan, name: str, solver: Solver):
        self.name = name
        self.solver = solver
        sp = plan.solvers[name]
        self.type = sp.spec.type
        self.ports: Mapping[str, Port] = sp.ports
        self.t = 0
        dt = getattr(solver, "dt_ticks", None)
        if dt != sp.dt_ticks:
            raise SolverError(f"solver {name!r} ({self.type}): built with dt_ticks={dt!r}, but its "
                              f"spec says {sp.dt_ticks}", solver=name)
        self.out_ports = {n: p for n, p in self.ports.items() if p.direction == "out"}
        self.in_ports = {n: p for n, p in self.ports.items() if p.direction == "in"}
        self.recordings = plan.recordings_of(name)
        # spikes stamped at exactly t_stop (a threshold crossing in the run's last step, which
        # NEST stamps at the step's end and reports): solvers that can have them say so with
        # ``spikes_at_stop(t_stop)``; they are recorded, never routed nor given to probes
        self._t_stop = plan.t_stop_ticks
        self._spikes_at_stop = getattr(solver, "spikes_at_stop", None)
        self._at_stop: dict[str, Spikes] = {}
        # what each window checks and selects, resolved once: (port, is spikes, size, period)
        self._checks = [(n, p.kind == "spikes", p.size, p.period_ticks) for n, p in self.out_ports.items()]
        self._recs = []   # (port, is spikes, None for every channel or the channel lookup, every_ticks)
        for r in self.recordings:
            sel = None
            if not r.all_channels:
                if r.kind == "spikes":
                    sel = np.full(self.ports[r.port].size, -1, dtype=np.int64)
                    sel[list(r.channels)] = np.arange(len(r.channels))
                else:
                    sel = np.asarray(r.channels, dtype=np.int64)
            self._recs.append((r.port, r.kind == "spikes", sel, r.every_ticks))
        self.probes = []
        for pp in plan.probes_of(name):
            try:
                self.probes.append((pp, pp.spec.local(name, solver, self.ports, pp.info)))
            except PolyscaleError:
                raise
            except Exception as exc:
                raise SolverError(f"probe {pp.name!r} could not attach to solver {name!r}: "
                                  f"{type(exc).__name__}: {exc}", solver=name) from exc

    def _fail(self, t0: int, what: str, exc: BaseException | None = None) -> SolverError:
        msg = f"solver {self.name!r} ({self.type}) {what} in window [{to_ms(t0):g}, ...) ms"
        if exc is not None:
            msg += f": {type(exc).__name__}: {exc}"
        return SolverError(msg, solver=self.name, t_ms=to_ms(t0))

    def advance(self, t0: int, t1: int, inputs: Mapping[str, Signal]) -> WindowResult:
        """Advance the solver over [t0, t1); return its checked WindowResult with probe parts."""
        if t0 != self.t:
            raise self._fail(t0, f"was asked for a window starting at tick {t0}, but it is at tick {self.t}")
        try:
            out = self.solver.advance(t0, t1, inputs)
        except PolyscaleError:
            raise
        except Exception as exc:
            raise self._fail(t0, "raised", exc) from exc
        result = out if type(out) is WindowResult or isinstance(out, WindowResult) else WindowResult(outputs=dict(out))
        self._check(t0, t1, result)
        if self.probes:
            self._probe_parts(t0, t1, result)
        self.t = t1
        if self._at_stop:
            self._at_stop = {}
        if t1 == self._t_stop and self._spikes_at_stop is not None:
            self._at_stop = self._stop_spikes(t0, t1)
        return result

    def _stop_spikes(self, t0: int, t1: int) -> dict[str, Spikes]:
        """The solver's spikes at exactly t_stop = t1, checked as window outputs are."""
        try:
            got = dict(self._spikes_at_stop(t1))
        except PolyscaleError:
            raise
        except Exception as exc:
            raise self._fail(t0, "raised in spikes_at_stop", exc) from exc
        out = {}
        for pname, sig in got.items():
            port = self.out_ports.get(pname)
            if port is None or port.kind != "spikes" or not isinstance(sig, Spikes):
                raise self._fail(t0, f"gave spikes at t_stop for {pname!r}, which is not a spike out-port")
            ticks, ids = np.asarray(sig.ticks, np.int64), np.asarray(sig.ids, np.int64)
            if ticks.shape != ids.shape or ticks.ndim != 1 or (ticks != t1).any() \
                    or (len(ids) and (ids.min() < 0 or ids.max() >= port.size)):
                raise self._fail(t0, f"gave spikes at t_stop for {pname!r} not all at tick {t1} "
                                     f"with ids in [0, {port.size})")
            if len(ticks):
                out[pname] = Spikes(ticks, ids)
        return out

    def _probe_parts(self, t0: int, t1: int, result: WindowResult) -> None:
        for pp, local in self.probes:
            try:
                part = np.asarray(local(t0, t1, result), dtype=np.float64)
            except Exception as exc:
                raise self._fail(t0, f"failed computing its part of probe {pp.name!r}", exc) from exc
            want = (grid_count(t0, t1, pp.info.part_period), pp.info.part_shape_channels)
            if part.shape != want:
                raise self._fail(t0, f"gave probe {pp.name!r} a part of shape {part.shape}, expected {want}")
            result.probe_parts[pp.name] = part

    def _check(self, t0: int, t1: int, result: WindowResult) -> None:
        outputs = result.outputs
        for pname, spikes, size, period in self._checks:
            sig = outputs.get(pname)
            if sig is None:
                raise self._fail(t0, f"returned no output for port {pname!r}")
            if spikes:
                if not isinstance(sig, Spikes):
                    raise self._fail(t0, f"returned {type(sig).__name__} for spike port {pname!r}")
                ticks, ids = sig.ticks, sig.ids
                # the usual output, int64 arrays with every event in range, in one compiled pass
                # (four numpy reductions cost ~5 us a port, more than most windows' spikes)
                if (type(ticks) is np.ndarray and type(ids) is np.ndarray and ticks.dtype == _I8
                        and ids.dtype == _I8 and ticks.ndim == 1 and ticks.shape == ids.shape
                        and _spikes_in_range(ticks, ids, t0, t1, size)):
                    continue
                ticks = np.asarray(ticks)
                ids = np.asarray(ids)
                if ticks.shape != ids.shape or ticks.ndim != 1:
                    raise self._fail(t0, f"returned spikes for {pname!r} with ticks {ticks.shape} "
                                         f"and ids {ids.shape}; both must be (n,)")
                if len(ticks) and (ticks.min() < t0 or ticks.max() >= t1):
                    raise self._fail(t0, f"returned spikes for {pname!r} outside its window "
                                         f"[{t0}, {t1}) ticks")
                if len(ids) and (ids.min() < 0 or ids.max() >= size):
                    raise self._fail(t0, f"returned spike ids for {pname!r} outside [0, {size})")
                if ticks.dtype != np.int64 or ids.dtype != np.int64:
                    outputs[pname] = Spikes(ticks.astype(np.int64), ids.astype(np.int64))
            else:
                if not isinstance(sig, Samples):
                    raise self._fail(t0, f"returned {type(sig).__name__} for {self.out_ports[pname].kind} "
                                         f"port {pname!r}")
                want = ((t1 - t0) // period, size)
                if sig.t0 != t0 or sig.period != period or sig.data.shape != want:
                    raise self._fail(t0, f"returned samples for {pname!r} starting at tick {sig.t0}, "
                                         f"every {sig.period}, shape {sig.data.shape}; expected "
                                         f"{t0}, {period}, {want}")

    def recorded(self, result: WindowResult) -> dict[str, Signal]:
        """The recorded out-ports of ``result`` with channel selection and decimation applied."""
        out: dict[str, Signal] = {}
        outputs = result.outputs
        for port, spikes, sel, every in self._recs:
            sig = outputs[port]
            if spikes:
                last = self._at_stop.get(port)
                if last is not None:    # the last window: its spikes at t_stop after the others
                    sig = Spikes(np.concatenate([sig.ticks, last.ticks]), np.concatenate([sig.ids, last.ids]))
                if sel is not None:
                    keep = sel[sig.ids] >= 0
                    sig = Spikes(sig.ticks[keep], sig.ids[keep])
                out[port] = sig
                continue
            data = sig.data if sel is None else sig.data[:, sel]
            if not every:
                # the whole window as it is: the same Samples when nothing is selected
                out[port] = sig if sel is None and data.flags.c_contiguous else Samples(
                    sig.t0, sig.period, np.ascontiguousarray(data))
                continue
            times = sig.times()
            keep = times % every == 0
            data = data[keep]
            first = times[keep][0] if keep.any() else sig.t0
            out[port] = Samples(int(first), every, np.ascontiguousarray(data))
        return out

    def close(self) -> None:
        close = getattr(self.solver, "close", None)
        if close is not None:
            close()


def close_all(runners) -> None:
    """Close every runner, all of them even when some raise; then raise the first error."""
    errors = []
    for runner in runners:
        try:
            runner.close()
        except Exception as exc:  # close the others all the same
            errors.append(exc)
    if errors:
        raise errors[0]
