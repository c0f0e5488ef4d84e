"""Level I speed: polyscale's CellPopulation against NEURON on the same ball-and-stick cells.

Cells: soma L = diam = 20 um, nseg 1, hh (NEURON defaults); dendrite L 500 um, diam 2 um,
nseg 49, pas (g 0.001 S/cm2, e -65 mV): 50 segments per cell. Ra 100 ohm cm, cm 1 uF/cm2,
6.3 C, v_init -65 mV, IClamp 0.5 nA at soma(0.5) from 10 to 60 ms (each cell fires twice),
fixed step dt 0.025 ms, backward Euler (NEURON's secondorder 0), 100 ms, one thread each.

polyscale's time is the solver's ``advance`` over 100 ms in 1 ms windows (what a coupled run
with a 1 ms window does), after a warm-up that compiles the kernels and an untimed build;
polyscale evaluates the hh rates exactly every step. NEURON's is ``h.continuerun(100)`` after
``h.finitialize(-65)``, with its defaults (hh rate tables on) and with ``usetable_hh = 0``
(exact rates, the arithmetic polyscale does). NEURON runs in its own virtual environment,
called as a subprocess:

    python3 -m venv /tmp/neuron-venv && /tmp/neuron-venv/bin/pip install neuron
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/cable.py --neuron-python /tmp/neuron-venv/bin/python

Printed per row: wall and CPU seconds, us per cell per simulated ms and ns per segment-step
(from CPU time, which a shared machine disturbs less than wall time), and the ratio polyscale /
NEURON (CPU time; below 1 is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

DT, T_MS, NSEG_DEND = 0.025, 100.0, 49
SEGMENTS = 1 + NSEG_DEND

NEURON_SCRIPT = r"""
import json, sys, time
from neuron import h
h.load_file("stdrun.hoc")
n, usetable, dt, t_ms, nseg = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
cells = []
for i in range(n):
    soma = h.Section(name=f"soma{i}"); dend = h.Section(name=f"dend{i}")
    soma.L = soma.diam = 20; soma.nseg = 1
    dend.L = 500; dend.diam = 2; dend.nseg = nseg
    dend.connect(soma(1))
    for s in (soma, dend):
        s.Ra = 100; s.cm = 1
    soma.insert("hh"); dend.insert("pas")
    for seg in dend:
        seg.pas.g = 0.001; seg.pas.e = -65
    ic = h.IClamp(soma(0.5)); ic.delay = 10; ic.dur = 50; ic.amp = 0.5
    cells.append((soma, dend, ic))
h.usetable_hh = usetable
h.celsius = 6.3
h.dt = dt; h.steps_per_ms = 1 / dt; h.secondorder = 0
h.cvode_active(0)
h.finitialize(-65)
t0, c0 = time.perf_counter(), time.process_time()
h.continuerun(t_ms)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "v_end": cells[0][0](0.5).v}))
"""


def run_neuron(python: str, n: int, usetable: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(NEURON_SCRIPT)
        path = f.name
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([python, path, str(n), str(usetable), str(DT), str(T_MS), str(NSEG_DEND)],
                             capture_output=True, text=True, check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(path)


def run_polyscale(n: int) -> dict:
    from polyscale.coordinator.time import TICKS_PER_MS
    from polyscale.solvers.cell import IClamp, ball_and_stick_population

    def make():
        spec = ball_and_stick_population(
            n=n, dend_nseg=NSEG_DEND, dt_ms=DT,
            iclamps=[IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=0.5)])
        return spec.build(None)

    warm = make()
    warm.advance(0, TICKS_PER_MS, {})            # compiles (or loads) the kernel
    s = make()
    w = TICKS_PER_MS
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(int(T_MS)):
        r = s.advance(k * w, (k + 1) * w, {})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "v_end": float(r.outputs["v_soma"].data[-1, 0]),
            "n_spikes": s.n_spikes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neuron-python", default=None, help="python of a venv with `neuron` installed")
    ap.add_argument("--cells", default="1,100,1000")
    args = ap.parse_args()
    rows = []
    for n in (int(c) for c in args.cells.split(",")):
        row = {"cells": n, "polyscale": run_polyscale(n)}
        if args.neuron_python:
            row["neuron"] = run_neuron(args.neuron_python, n, 1)
            row["neuron_notable"] = run_neuron(args.neuron_python, n, 0)
        rows.append(row)

    def per(wall, n):
        return wall / (n * T_MS) * 1e6, wall / (n * SEGMENTS * T_MS / DT) * 1e9

    print(f"ball-and-stick, {SEGMENTS} segments/cell, dt {DT} ms, {T_MS:g} ms, one thread")
    print("per-cell figures from CPU time (time.process_time; the machine may be shared), wall for reference")
    print(f"{'cells':>6} {'who':>16} {'wall s':>8} {'cpu s':>8} {'us/cell/ms':>11} {'ns/seg-step':>12} {'ratio':>6}")
    for row in rows:
        n = row["cells"]
        for who in ("polyscale", "neuron", "neuron_notable"):
            if who not in row:
                continue
            r = row[who]
            us, ns = per(r["cpu_s"], n)
            ratio = "" if who == "polyscale" else f"{row['polyscale']['cpu_s'] / r['cpu_s']:.2f}"
            label = {"neuron": "NEURON (tables)", "neuron_notable": "NEURON (exact)"}.get(who, who)
            print(f"{n:>6} {label:>16} {r['wall_s']:>8.3f} {r['cpu_s']:>8.3f} {us:>11.2f} {ns:>12.2f} {ratio:>6}")
    print("ratio = polyscale CPU time / NEURON CPU time")


if __name__ == "__main__":
    main()
