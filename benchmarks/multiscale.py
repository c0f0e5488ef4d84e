"""The flagship run (examples/multiscale_column.py): where its wall time goes, inproc vs zmq.

On inproc (one process) every solver's ``advance`` and every runner's window (advance + the
local parts of its probes) are timed; what is left of the wall time is routing, adapters and the
run-file writer (coupling + writing). On zmq each solver runs in its own process, so wall time
below the inproc sum is parallelism; the part of the zmq wall time above the busiest solver's
own work (compute + probes, measured inproc) is what coupling costs there: communication,
the coordinator and the writer (waiting caused by load imbalance is already excluded, since
the busiest solver's work is subtracted).

    python benchmarks/multiscale.py                 # scale 1, 2000 ms (the README's run)
    python benchmarks/multiscale.py --scale 2 --t-stop 1000

One thread per process (set below, before numpy loads); on 2 cores the zmq run has 4 solver
processes plus the coordinator.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import polyscale as ps  # noqa: E402
from polyscale.coordinator import solver as solver_mod  # noqa: E402


def load_example():
    path = Path(__file__).resolve().parents[1] / "examples" / "multiscale_column.py"
    spec = importlib.util.spec_from_file_location("multiscale_column", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def instrumented_inproc(model, out):
    """Run inproc with every solver's advance and every runner's window timed (s)."""
    compute, window = defaultdict(float), defaultdict(float)
    original_init = solver_mod.SolverRunner.__init__
    original_advance = solver_mod.SolverRunner.advance

    def init(self, plan, name, solver):
        inner = solver.advance

        def timed(t0, t1, inputs, _name=name):
            c = time.perf_counter()
            try:
                return inner(t0, t1, inputs)
            finally:
                compute[_name] += time.perf_counter() - c
        solver.advance = timed
        original_init(self, plan, name, solver)

    def advance(self, t0, t1, inputs):
        c = time.perf_counter()
        try:
            return original_advance(self, t0, t1, inputs)
        finally:
            window[self.name] += time.perf_counter() - c

    solver_mod.SolverRunner.__init__, solver_mod.SolverRunner.advance = init, advance
    try:
        w = time.perf_counter()
        ps.run(model, out=out, force=True)
        wall = time.perf_counter() - w
    finally:
        solver_mod.SolverRunner.__init__, solver_mod.SolverRunner.advance = original_init, original_advance
    return wall, dict(compute), dict(window)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--t-stop", type=float, default=2000.0, help="simulated ms")
    ap.add_argument("--repeat", type=int, default=2, help="runs per transport; the minimum is shown")
    args = ap.parse_args()
    ex = load_example()
    model = ex.build(scale=args.scale, t_stop_ms=args.t_stop)
    with tempfile.TemporaryDirectory() as tmp:
        ps.run(model.with_options(t_stop_ms=20.0), out=f"{tmp}/warm.h5", force=True)  # numba caches
        best = None
        for _ in range(args.repeat):
            r = instrumented_inproc(model, f"{tmp}/inproc.h5")
            best = r if best is None or r[0] < best[0] else best
        wall_in, compute, window = best
        zmq_walls = []
        for _ in range(args.repeat):
            w = time.perf_counter()
            ps.run(model, out=f"{tmp}/zmq.h5", transport="zmq", force=True)
            zmq_walls.append(time.perf_counter() - w)
        wall_zmq = min(zmq_walls)
        starts = []                      # starting worker processes and building: paid once per run
        for _ in range(args.repeat):
            w = time.perf_counter()
            ps.run(model.with_options(t_stop_ms=2.0), out=f"{tmp}/start.h5", transport="zmq", force=True)
            starts.append(time.perf_counter() - w)
        start = min(starts)

    print(f"multiscale_column, scale {args.scale:g}, {args.t_stop:g} ms simulated, "
          f"{os.cpu_count()} cores, best of {args.repeat}\n")
    print(f"{'solver':<10} {'compute s':>10} {'probes s':>9} {'window s':>9}")
    for name in sorted(window):
        c = compute.get(name, 0.0)
        print(f"{name:<10} {c:>10.3f} {window[name] - c:>9.3f} {window[name]:>9.3f}")
    total_c, total_w = sum(compute.values()), sum(window.values())
    rest = wall_in - total_w
    print(f"{'sum':<10} {total_c:>10.3f} {total_w - total_c:>9.3f} {total_w:>9.3f}\n")
    busiest = max(window.values())
    print(f"{'transport':<9} {'wall s':>8} {'coupling+writing s':>19} {'share of wall':>14}")
    print(f"{'inproc':<9} {wall_in:>8.3f} {rest:>19.3f} {rest / wall_in:>13.1%}")
    over = max(0.0, wall_zmq - busiest)
    print(f"{'zmq':<9} {wall_zmq:>8.3f} {over:>19.3f} {over / wall_zmq:>13.1%}")
    run_zmq = wall_zmq - start
    over_run = max(0.0, run_zmq - busiest)
    print(f"{'zmq run':<9} {run_zmq:>8.3f} {over_run:>19.3f} {over_run / run_zmq:>13.1%}   "
          f"(less {start:.2f} s of worker start-up, measured on a one-window run)")
    print(f"\nzmq / inproc wall: {wall_zmq / wall_in:.2f} with start-up, {run_zmq / wall_in:.2f} "
          f"without (goal < 1); busiest solver's work {busiest:.3f} s = the floor for any parallel run")


if __name__ == "__main__":
    main()
