"""NEURON under polyscale: the coupling overhead of NeuronCells against the same cells run alone
by NEURON, for the same simulated time.

Model: ``--cells`` ball-and-stick cells of examples/neuron_lfp.py (hh soma, passive dendrite
of 101 segments; NEURON's defaults, hh rate tables on), fixed step 0.025 ms; each cell's Exp2Syn
at dend(0.8) receives a Poisson train of 40 Hz (seeded, on the step grid), 0.02 uS, 1 ms
delay; the cells' spikes are detected at the soma (0 mV).

* alone: the cells, one source-less NetCon per cell onto its synapse with every input event
  queued by ``NetCon.event`` after ``h.finitialize``, NetCon spike recorders, and one
  ``h.continuerun(T)``;
* polyscale: ``ps.run`` of a SpikeTrain coupled to NeuronCells (1 ms delay, so 1 ms windows),
  recording the cells' spikes; no run file. Per window NeuronCells queues that window's events,
  calls ``h.continuerun``, and reads the soma voltages and spikes.

Each variant runs in a fresh subprocess (NEURON's hoc is one per process), alternating,
``--repeat`` times; the table shows the minimum CPU time of the simulation (NEURON's run;
polyscale's window loop, build excluded; CPU time, which a shared machine disturbs less than
wall time; "sim_s" in --json, wall time as "wall_s") and the overhead relative to alone. Both
sides check they saw the same spikes. As the two variants run at different moments, a busy
machine can tilt that ratio; so the polyscale run also times NEURON's ``continuerun`` inside
its windows, and the line below the table gives polyscale's share of the same loop, measured
under the same load.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/external_neuron.py [--cells 50] [--t-ms 1000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUILDER = f"{ROOT / 'examples' / 'neuron_lfp.py'}:ball_and_stick_cells"
DT, DELAY, W_US, RATE_HZ = 0.025, 1.0, 0.02, 40.0


def inputs(n: int, t_ms: float, seed: int = 5):
    """Poisson spike times (ms, on the step grid, sorted) and the cell each goes to."""
    rng = np.random.default_rng(seed)
    times, ids = [], []
    for c in range(n):
        t = np.cumsum(rng.exponential(1000.0 / RATE_HZ, size=int(2 * RATE_HZ * t_ms / 1000) + 20))
        t = np.unique(np.round(t[t < t_ms - DELAY - DT] / DT)) * DT
        times += t.tolist()
        ids += [c] * len(t)
    order = np.argsort(np.array(times), kind="stable")
    return np.round(np.array(times)[order], 6), np.array(ids, dtype=np.int64)[order]


def run_alone(n: int, t_ms: float) -> dict:
    from polyscale.adapters._external import load_target
    from neuron import h
    h.load_file("stdrun.hoc")
    cells = load_target(BUILDER, "benchmark")(n=n)
    h.cvode_active(0)
    h.dt = DT
    h.steps_per_ms = 1.0 / DT
    h.celsius = 6.3
    rec, keep = [], []
    for c in cells:
        nc = h.NetCon(c.soma(0.5)._ref_v, None, sec=c.soma)
        nc.threshold = 0.0
        v = h.Vector()
        nc.record(v)
        rec.append(v)
        keep.append(nc)
    syn = []
    for c in cells:
        nc = h.NetCon(None, c.syn)
        nc.weight[0] = W_US
        syn.append(nc)
    times, ids = inputs(n, t_ms)
    h.finitialize(-65.0)
    for t, i in zip(times.tolist(), ids.tolist()):
        syn[i].event(t + DELAY)
    t0, w0 = time.process_time(), time.perf_counter()
    h.continuerun(t_ms)
    t1, w1 = time.process_time(), time.perf_counter()
    return {"sim_s": t1 - t0, "wall_s": w1 - w0, "spikes": int(sum(v.size() for v in rec))}


def run_polyscale(n: int, t_ms: float) -> dict:
    import polyscale as ps
    from polyscale.adapters import neuron as adapter
    from polyscale.adapters.neuron import NeuronCells
    # time NEURON's own integration inside the windows (h.continuerun), in the same run as the
    # whole loop: their difference is polyscale's share, measured under the same load
    in_neuron = [0.0]

    class TimedHoc:
        def __init__(self, h):
            object.__setattr__(self, "_h", h)

        def __getattr__(self, name):
            return getattr(self._h, name)

        def __setattr__(self, name, value):
            setattr(self._h, name, value)

        def continuerun(self, t):
            c = time.process_time()
            self._h.continuerun(t)
            in_neuron[0] += time.process_time() - c

    init = adapter.NeuronSolver.__init__

    def timed_init(self, *a, **kw):
        init(self, *a, **kw)
        self.h = TimedHoc(self.h)
    adapter.NeuronSolver.__init__ = timed_init
    times, ids = inputs(n, t_ms)
    m = ps.Model(seed=1, t_stop_ms=t_ms)
    m.solver("input", ps.solvers.SpikeTrain(times_ms=times.tolist(), ids=ids.tolist(), size=n, dt_ms=DT))
    m.solver("cells", NeuronCells(builder=BUILDER, params={"n": n}, n=n, synapses=("syn",), dt_ms=DT))
    m.couple("input.spikes", "cells.syn", delay_ms=DELAY, weight=W_US)
    m.record("cells.spikes")
    marks, walls = [], []
    run = ps.run(m, progress=lambda done, stop, wall: (marks.append(time.process_time()),
                                                          walls.append(time.perf_counter())))
    # the window loop from the end of the first window to the end of the last, scaled to all
    # windows (the first carries the build)
    k = len(marks) / max(len(marks) - 1, 1)
    return {"sim_s": (marks[-1] - marks[0]) * k, "wall_s": (walls[-1] - walls[0]) * k,
            "neuron_s": in_neuron[0], "spikes": int(len(run.spikes("cells", "spikes").times)),
            "windows": len(marks)}


def measure(n: int, t_ms: float, repeat: int) -> dict:
    best: dict = {}
    for _ in range(repeat):
        for v in ("alone", "polyscale"):
            p = subprocess.run([sys.executable, __file__, "--child", v, "--cells", str(n), "--t-ms", str(t_ms)],
                               capture_output=True, text=True, check=False)
            line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if p.returncode or line is None:
                raise RuntimeError(f"{v} failed:\n{p.stderr[-3000:]}")
            r = json.loads(line[7:])
            if v not in best or r["sim_s"] < best[v]["sim_s"]:
                best[v] = r
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=50)
    ap.add_argument("--t-ms", type=float, default=1000.0, help="simulated time (ms)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = run_alone if args.child == "alone" else run_polyscale
        print("RESULT " + json.dumps(fn(args.cells, args.t_ms)))
        return
    print(f"NEURON, {args.cells} ball-and-stick cells (102 segments), dt {DT} ms, Poisson input "
          f"{RATE_HZ:g} Hz per cell, {args.t_ms:g} ms simulated, 1 ms windows, best of {args.repeat}")
    rows = measure(args.cells, args.t_ms, args.repeat)
    if rows["alone"]["spikes"] != rows["polyscale"]["spikes"]:
        print(f"WARNING: spike counts differ: alone {rows['alone']['spikes']}, "
              f"polyscale {rows['polyscale']['spikes']}")
    base = rows["alone"]["sim_s"]
    print(f"{'variant':<12}{'CPU s':>9}{'overhead':>10}{'wall s':>9}{'spikes':>9}")
    for v, r in rows.items():
        print(f"{v:<12}{r['sim_s']:>9.3f}{100 * (r['sim_s'] / base - 1):>9.1f}%{r['wall_s']:>9.3f}{r['spikes']:>9}")
    p = rows["polyscale"]
    print(f"in the polyscale run, NEURON's continuerun took {p['neuron_s']:.3f} CPU s of the loop's "
          f"{p['sim_s']:.3f}: polyscale's share {100 * (1 - p['neuron_s'] / p['sim_s']):.1f}% of the loop "
          f"({1e3 * (p['sim_s'] - p['neuron_s']) / p['windows']:.3f} ms per window)")
    if args.json:
        Path(args.json).write_text(json.dumps({"cells": args.cells, "t_ms": args.t_ms, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
