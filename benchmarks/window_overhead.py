"""Per-window cost of the coupled-run core (inproc), against a bare loop doing the same work.

For K trivial solvers (1-state linear systems coupled in a ring with one-window delays), one
step per window, this prints the wall time per window of polyscale.run and of a bare Python loop
that calls the same numba kernel for each solver and copies each output into the next solver's
input, with no checks, routing or recording: the ratio is what the core costs on top.

    python benchmarks/window_overhead.py [--windows 20000]

``--profile inproc|zmq`` instead prints where a window's time goes: cProfile's top functions of
the coordinator (and, for zmq, of one worker) over a ring of 2 recorded solvers. The profiler
multiplies the cost of every Python call, so read it for proportions, not for times.
"""
from __future__ import annotations

import argparse
import cProfile
import glob
import os
import pstats
import tempfile
import time

import numpy as np

import polyscale as ps
from polyscale.solvers._kernels import linear_advance


def model(k: int, n_windows: int, record: bool) -> ps.Model:
    m = ps.Model(t_stop_ms=0.1 * n_windows, window_ms=0.1)
    for i in range(k):
        m.solver(f"s{i}", ps.solvers.LinearSystem(a=[[-0.1]], c=[0.01], dt_ms=0.1))
    for i in range(k):
        m.couple(f"s{i}.x", f"s{(i + 1) % k}.u", delay_ms=0.1)
        if record:
            m.record(f"s{i}.x")
    return m


def bare(k: int, n_windows: int) -> float:
    spec = ps.solvers.LinearSystem(a=[[-0.1]], c=[0.01], dt_ms=0.1)
    phi, gamma, drive = spec.step_map()
    xs = [np.zeros(1) for _ in range(k)]
    us = [np.zeros((1, 1)) for _ in range(k)]
    outs = [np.empty((1, 1)) for _ in range(k)]
    start = time.perf_counter()
    for _ in range(n_windows):
        for i in range(k):
            linear_advance(xs[i], us[i], phi, gamma, drive, outs[i])
        for i in range(k):
            us[(i + 1) % k][:] = outs[i]
    return time.perf_counter() - start


def profile(transport: str, n_windows: int, top: int = 25) -> None:
    """Print cProfile's top functions (by own time) of ``n_windows`` windows on ``transport``."""
    tr: object = transport
    folder = tempfile.mkdtemp(prefix="polyscale-profile-")
    if transport == "zmq":
        import polyscale.coordinator.worker as worker
        from polyscale.coordinator.transports.zmq import ZmqTransport
        serve = worker.serve

        def profiled_serve(*a, **kw):  # runs in each forked worker
            pr = cProfile.Profile()
            pr.enable()
            try:
                return serve(*a, **kw)
            finally:
                pr.disable()
                pr.dump_stats(os.path.join(folder, f"worker-{os.getpid()}.prof"))
        worker.serve = profiled_serve
        tr = ZmqTransport()
    pr = cProfile.Profile()
    pr.enable()
    ps.run(model(2, n_windows, True), transport=tr)
    pr.disable()
    print(f"== coordinator, {transport}, ring of 2 recorded solvers, {n_windows} windows")
    pstats.Stats(pr).sort_stats("tottime").print_stats(top)
    for f in sorted(glob.glob(os.path.join(folder, "worker-*.prof")))[:1]:
        print("== one worker")
        pstats.Stats(f).sort_stats("tottime").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=20000)
    ap.add_argument("--profile", choices=("inproc", "zmq"), help="profile one transport instead")
    args = ap.parse_args()
    n = args.windows
    if args.profile:
        ps.run(model(2, 10, True))  # compile first: the profile is of windows, not of numba
        profile(args.profile, n)
        return
    ps.run(model(2, 10, True))  # compile and warm caches
    bare(2, 10)
    print(f"{'solvers':>7} {'recorded':>8} {'polyscale us/window':>20} {'bare loop us/window':>20} {'ratio':>7}")
    for k in (1, 2, 4):
        for record in (False, True):
            start = time.perf_counter()
            ps.run(model(k, n, record))
            ours = (time.perf_counter() - start) / n * 1e6
            theirs = bare(k, n) / n * 1e6
            print(f"{k:>7} {'yes' if record else 'no':>8} {ours:>20.1f} {theirs:>20.2f} {ours / theirs:>7.0f}")


if __name__ == "__main__":
    main()
