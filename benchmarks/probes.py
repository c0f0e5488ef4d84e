"""Probe cost as a fraction of solver time: 1000 detailed cells with a 32-channel laminar LFP,
32-electrode four-sphere EEG and 32-sensor MEG (Sarvas).

Cells: ball-and-stick-like (hh soma 20 x 20 um; passive dendrite 500 um, 2 um, nseg 49: 50
segments per cell), dt 0.025 ms, backward Euler, IClamp 0.5 nA at the soma from 10 to 60 ms
(every cell fires), in a cortical column of radius 200 um at the top of the brain sphere
(somata 77500..78300 um from the head centre, tilted up to 20 deg). LFP: 32 contacts 50 um apart
along the column's axis, line sources, sigma 0.3 S/m. EEG: 32 scalp electrodes (r = 90 mm) on
the upper hemisphere, four-sphere head with the default radii and conductivities, one dipole per
cell. MEG: 32 radial magnetometers at r = 100 mm, Sarvas. Each probe samples every ``every_ms``.

Timed (process CPU time, less disturbed by a shared machine than wall time, and wall time):
the solver's ``advance`` over ``t_ms`` in windows of ``window_ms``, with record_currents off
(the bare solver) and on (what the probes need: the solver keeps each window's transmembrane
currents); and the probes' local parts on each window (what runs in the solver's process; the
global part, a sum over solvers, is nothing here with one solver). Building the matrices
(once, before the run) is timed apart.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/probes.py [--cells 1000] [--every-ms 0.025]
        [--window-ms 1 2 10]

Windows: the issue's number (goal < 10%) is at 1 ms windows with probes every 1 ms, one sample
per window, where the stacked LFP matrix (1000 cells x 50 segments x 32 channels, float32: 6.4
MB) streams from memory once per sample. Runs get longer windows, and the matrix is read once per
window for all its samples: a cell population run alone gets 10 ms windows (coordinator/plan.py,
nothing coupled: DEFAULT_FREE_WINDOW_TICKS), the flagship examples/multiscale_column.py 2 ms
(its 2 ms coupling delays; LFP every 0.5 ms, EEG/MEG every 1 ms). ``--window-ms`` takes several.

The solver keeps currents only at the steps the probes sample (CellSolver.sample_currents_every,
told by the probes when they attach). Bare and probed runs alternate ``--repeats`` times; each
CPU time printed is the sum over the windows of that window's least CPU time over the runs (the
runs do the same work window by window, and a shared machine only ever adds time), and a last
line gives the least run totals too. Two fractions are printed: the probe parts over the solver
that records currents (what a run with these probes spends in each), and (probe parts + the
extra cost of recording currents) over the bare solver (what the probes add to a run without
them). With one sample a window, a last line gives the LFP part's floor: its stacked matrix read
once from memory at the bandwidth this process measures (a sum over 256 MB, read in the product's
interleaved streams), against the solver.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from polyscale.coordinator.time import TICKS_PER_MS, to_ticks
from polyscale.probes import EEG, LFP, MEG
from polyscale.solvers.cell.mechanisms import IClamp
from polyscale.solvers.cell.population import ball_and_stick_population

TOP = 78000.0


def population(n: int, record: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = 200.0 * np.sqrt(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    pos = np.c_[r * np.cos(phi), r * np.sin(phi), TOP - 500.0 + rng.uniform(0, 800.0, n)]
    rot = np.c_[rng.uniform(-20, 20, n), rng.uniform(-20, 20, n), np.zeros(n)]
    return ball_and_stick_population(n=n, dend_nseg=49, positions_um=pos, rotations_deg=rot,
                                     iclamps=(IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=0.5),),
                                     record_currents=record)


def sensors(n: int, radius: float, seed: int) -> np.ndarray:
    """n points spread evenly (Fibonacci) over the upper hemisphere of ``radius`` um."""
    k = np.arange(n) + 0.5
    z = 1.0 - k / n
    phi = np.pi * (1 + 5 ** 0.5) * k
    rho = np.sqrt(1 - z * z)
    return radius * np.c_[rho * np.cos(phi), rho * np.sin(phi), z]


def probes(every_ms: float):
    lfp = LFP(of="cells", electrodes_um=[(0.0, 0.0, TOP - 700.0 + 50.0 * k) for k in range(32)], every_ms=every_ms)
    eeg = EEG(of="cells", electrodes_um=sensors(32, 90000.0, 1), every_ms=every_ms)
    meg = MEG(of="cells", sensors_um=sensors(32, 100000.0, 2), every_ms=every_ms)
    return {"lfp (32 ch)": lfp, "eeg (32 el)": eeg, "meg (32 sens)": meg}


def advance_all(solver, t_ms: float, window_ms: float, parts=None):
    """(solver CPU s, solver wall s, parts CPU s, parts wall s, per-probe CPU s) of the run;
    the CPU times as arrays (one entry per window), the wall times as totals."""
    w = to_ticks(window_ms, "window")
    n = round(t_ms / window_ms)
    t_solver, t_probe = np.zeros(n), np.zeros(n)
    w_solver = w_probe = 0.0
    per = {k: np.zeros(n) for k in (parts or {})}
    for i in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        res = solver.advance(i * w, (i + 1) * w, {})
        c1, w1 = time.process_time(), time.perf_counter()
        t_solver[i] = c1 - c0
        w_solver += w1 - w0
        for name, part in (parts or {}).items():
            a = time.process_time()
            part(i * w, (i + 1) * w, res)
            per[name][i] = time.process_time() - a
        t_probe[i] = time.process_time() - c1
        w_probe += time.perf_counter() - w1
    return t_solver, w_solver, t_probe, w_probe, per


def run_with_probes(n: int, every: float, t_ms: float, window_ms: float):
    """(build CPU s, solver CPU s, solver wall s, parts CPU s, parts wall s, per-probe CPU s)
    of one run of the recording solver with the three probes attached."""
    spec = population(n, True)
    solver = spec.build(None)
    ports = spec.ports()
    t0 = time.process_time()
    parts = {}
    for name, p in probes(every).items():
        info = p.describe({"cells": ports}, to_ticks(window_ms, "window"))
        parts[name] = p.local("cells", solver, ports, info)
    build = time.process_time() - t0
    return (build, *advance_all(solver, t_ms, window_ms, parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--t-ms", type=float, default=100.0)
    ap.add_argument("--window-ms", type=float, nargs="+", default=[1.0],
                    help="window lengths (ms) to time, each in turn (1: the issue's number; 10: "
                         "a cell population alone; 2: the flagship example)")
    ap.add_argument("--every-ms", type=float, nargs="+", default=[0.025, 0.1, 1.0])
    ap.add_argument("--repeats", type=int, default=3,
                    help="bare and probed runs alternate this many times; each window's least "
                         "CPU time is kept (a shared machine only ever adds time)")
    args = ap.parse_args()

    n = args.cells
    args.bandwidth = memory_bandwidth()
    # warm-up: compile the kernels on a small population
    warm = population(4, True).build(None)
    advance_all(warm, 2.0, 1.0)
    run_with_probes(4, 1.0, 2.0, 1.0)
    for window_ms in args.window_ms:
        table(n, args, window_ms)


def memory_bandwidth() -> float:
    """Bytes per second this process streams from memory: the best of 5 sums over a 256 MB
    float32 array (far larger than any cache), read as the product reads its matrix, in
    NODE_PRODUCT_CHUNKS interleaved streams: the floor of a product that reads it once."""
    from numba import njit

    from polyscale.probes.sources import NODE_PRODUCT_CHUNKS as C

    @njit(fastmath=True)
    def total(a):
        t = np.float32(0.0)
        q = a.size // C
        for i in range(q):
            for c in range(C):
                t += a[c * q + i]
        return t
    a = np.ones(64 * 2 ** 20, np.float32)
    total(a)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        total(a)
        best = min(best, time.perf_counter() - t0)
    return a.nbytes / best


def least(runs) -> float:
    """Sum over windows of each window's least CPU time over the runs (arrays, one per run)."""
    return float(np.min(np.stack(runs), axis=0).sum())


def table(n: int, args, window_ms: float) -> None:
    print(f"\n{n} cells x 50 segments, {args.t_ms:g} ms in {window_ms:g} ms windows, dt 0.025 ms, "
          f"{args.repeats} runs each; CPU s: the sum over windows of each window's least CPU time")
    bare_runs = []
    for every in args.every_ms:
        runs = []
        for _ in range(args.repeats):
            bare = population(n, False).build(None)
            bare_runs.append(advance_all(bare, args.t_ms, window_ms)[:2])
            runs.append(run_with_probes(n, every, args.t_ms, window_ms))
        # every run does the same work window by window, so a window's least CPU time over the
        # runs is the least disturbed measure of it; a run's total takes every disturbance of
        # its 10-100 windows, and the least of a few totals still varies by 5-10 % when the
        # machine is shared
        cb, wb = least([c for c, _ in bare_runs]), min(w for _, w in bare_runs)
        build = min(r[0] for r in runs)
        cs, ws = least([r[1] for r in runs]), min(r[2] for r in runs)
        cp, wp = least([r[3] for r in runs]), min(r[4] for r in runs)
        per = {k: least([r[5][k] for r in runs]) for k in runs[0][5]}
        run_b = min(c.sum() for c, _ in bare_runs)
        run_s = min(r[1].sum() for r in runs)
        extra = max(cs - cb, 0.0)
        print(f"\nprobes every {every:g} ms ({round(args.t_ms / every)} samples), matrices built in {build:.2f} s CPU")
        print(f"{'':34s} {'CPU s':>9s} {'wall s':>9s} {'/ bare solver':>14s}")
        print(f"{'bare solver (record_currents off)':34s} {cb:9.3f} {wb:9.3f} {1.0:14.3f}")
        print(f"{'solver, record_currents on':34s} {cs:9.3f} {ws:9.3f} {cs / cb:14.3f}")
        for name, c in per.items():
            print(f"{'  probe part ' + name:34s} {c:9.3f} {'':9s} {c / cb:14.3%}")
        print(f"{'  all probe parts':34s} {cp:9.3f} {wp:9.3f} {cp / cb:14.3%}")
        print(f"{'  recording currents (on - off)':34s} {extra:9.3f} {ws - wb:9.3f} {extra / cb:14.3%}")
        print(f"{'probe parts / solver (rec. on)':34s} {'':9s} {'':9s} {cp / cs:14.3%}")
        print(f"{'(parts + recording) / bare solver':34s} {'':9s} {'':9s} {(cp + extra) / cb:14.3%}")
        print(f"(least run totals, CPU s: bare {run_b:.3f}, record_currents on {run_s:.3f}, "
              f"recording / bare {max(run_s - run_b, 0.0) / run_b:.3%})")
        if window_ms <= every:
            # one sample a window: the stacked LFP matrix streams from memory once per window
            floor = n * 50 * 32 * 4 / args.bandwidth
            n_win = round(args.t_ms / window_ms)
            print(f"floor of the LFP part alone: its {n * 50 * 32 * 4 / 1e6:.1f} MB float32 matrix "
                  f"read from memory at {args.bandwidth / 1e9:.1f} GB/s takes {floor * 1e6:.0f} us a "
                  f"window, {floor * n_win / cb:.1%} of the bare solver")

if __name__ == "__main__":
    main()
