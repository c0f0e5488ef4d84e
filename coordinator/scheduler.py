"""The window loop: plan the model, start the transport, advance window by window, write.

Knows the Transport protocol and the run-file writer, nothing about sockets or ranks. Whatever
goes wrong (a ModelError before the start, a solver that raises, Ctrl-C), the run file is left
valid: every complete window written, ``status`` set to ``"failed: <reason>"``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable

from .errors import ProbeError, SolverError
from .model import Model
from .plan import Plan, make_plan
from .runfile import Run, RunWriter
from .transports import Transport, get_transport
from .time import to_ms

#: progress(t_done_ticks, t_stop_ticks, wall_s) after each window
Progress = Callable[[int, int, float], None]


def run(model: Model, out: str | os.PathLike | None = None, *, transport: str | Transport = "inproc",
        force: bool = False, seed: int | None = None, t_stop_ms: float | None = None,
        progress: Progress | None = None) -> Run:
    """Run ``model`` and write its run file.

    Parameters
    ----------
    model : the coupled model
    out : run-file path; None keeps the file in memory
    transport : 'inproc' (default), or a Transport object
    force : overwrite an existing run file
    seed, t_stop_ms : override the model's seed or stop time (ms)
    progress : called after each window with (t_done_ticks, t_stop_ticks, wall_s)

    Returns
    -------
    Run : the run file opened for reading; None on the ranks of an mpi run other than rank 0,
        which serve the run and write nothing

    Raises
    ------
    ModelError before anything runs; RunFileError if ``out`` cannot be written; SolverError or
    TransportError if the run fails (the run file then says so and keeps every complete window).
    """
    if seed is not None or t_stop_ms is not None:
        model = model.with_options(seed=seed, t_stop_ms=t_stop_ms)
    plan = make_plan(model)
    tname = transport if isinstance(transport, str) else getattr(transport, "name", type(transport).__name__)
    tr = get_transport(transport)
    if not getattr(tr, "writes", True):
        # a rank of an SPMD transport (mpi) other than the writer's: same windows, no run file
        tr.serve(plan)
        return None
    try:
        writer = RunWriter(out, plan, force=force, transport=tname)
    except BaseException:
        stop = getattr(tr, "stop_before_start", None)
        if stop is not None:  # release ranks already waiting in start()
            stop(plan)
        raise
    return execute(plan, tr, writer, progress)


def execute(plan: Plan, tr: Transport, writer: RunWriter, progress: Progress | None = None) -> Run:
    """Drive ``tr`` over every window of ``plan``, appending to ``writer``."""
    start = time.perf_counter()
    status = "failed: unknown error"
    t_now = 0
    try:
        tr.start(plan)
        post, gather = getattr(tr, "post", None), getattr(tr, "gather", None)
        if post is None or gather is None or not getattr(tr, "pipeline", False):
            for t0, t1 in plan.windows():
                t_now = t0
                results = tr.advance(t0, t1)
                writer.append(t0, t1, results)
                if progress is not None:
                    progress(t1, plan.t_stop_ticks, time.perf_counter() - start)
        else:
            # a transport whose solvers run elsewhere, and that asks for it (``pipeline``): the
            # next window goes out before this one is written, so the writer (and the probes'
            # global stage) works while the solvers compute instead of between windows. A window is still written only once complete,
            # and a failure anywhere stops the run with every earlier window written.
            windows = plan.windows()
            nxt = next(windows, None)
            if nxt is not None:
                post(*nxt)
            while nxt is not None:
                t0, t1 = nxt
                t_now = t0
                results = gather(t0, t1)
                nxt = next(windows, None)
                if nxt is not None:
                    post(*nxt)
                writer.append(t0, t1, results)
                if progress is not None:
                    progress(t1, plan.t_stop_ticks, time.perf_counter() - start)
        status = "complete"
    except KeyboardInterrupt:
        status = f"failed: interrupted (KeyboardInterrupt) in window starting at {to_ms(t_now):g} ms"
        raise
    except (SolverError, ProbeError) as exc:
        status = f"failed: {exc}"
        raise
    except BaseException as exc:
        status = f"failed: {type(exc).__name__}: {exc} (in window starting at {to_ms(t_now):g} ms)"
        raise
    finally:
        try:
            tr.close()
        except Exception as exc:
            if status == "complete":
                status = f"failed: closing the transport: {type(exc).__name__}: {exc}"
                writer.finish(status, getattr(tr, "compute_s", None), wall_s=time.perf_counter() - start)
                raise
        writer.finish(status, getattr(tr, "compute_s", None), wall_s=time.perf_counter() - start)
    return writer.reader()
