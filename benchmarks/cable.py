"""Level I speed: polyscale's CellPopulation against NEURON on the same ball-and-stick cells.

Cells: soma L = diam = 20 um, nseg 1, hh (NEURON defaults); dendrite L 500 um, diam 2 um,
nseg 49, pas (g 0.001 S/cm2, e -65 mV): 50 segments per cell. A second shape, 'tree', is a
branched cell (hh soma, two trunks branching three times: 159 segments) built the same way on
both sides. Ra 100 ohm cm, cm 1 uF/cm2,
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


def ball_and_stick() -> list[tuple]:
    """Sections (name, parent, L um, diam um, nseg, mechanism), parents first."""
    return [("soma", None, 20.0, 20.0, 1, "hh"), ("dend", "soma", 500.0, 2.0, NSEG_DEND, "pas")]


def tree() -> list[tuple]:
    """A branched cell: hh soma, two passive trunks (200 um, 3 um, nseg 9) that branch in two
    three times (100 um, nseg 5, diameters by Rall's 3/2 rule): 30 dendrites, 159 segments."""
    secs = [("soma", None, 20.0, 20.0, 1, "hh")]
    for t in range(2):
        secs.append((f"trunk{t}", "soma", 200.0, 3.0, 9, "pas"))
        level = [(f"trunk{t}", 3.0)]
        for depth in range(3):
            nxt = []
            for parent, d in level:
                dc = d / 2 ** (2 / 3)
                for k in range(2):
                    name = f"{parent}_{k}"
                    secs.append((name, parent, 100.0, dc, 5, "pas"))
                    nxt.append((name, dc))
            level = nxt
    return secs


SHAPES = {"ball-and-stick": ball_and_stick, "tree": tree}

NEURON_SCRIPT = r"""
import json, sys, time
from neuron import h
h.load_file("stdrun.hoc")
n, usetable, dt, t_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
secs = json.loads(sys.argv[5])
cells = []
for i in range(n):
    made = {}
    for name, parent, L, diam, nseg, mech in secs:
        s = h.Section(name=f"{name}_{i}")
        s.L, s.diam, s.nseg, s.Ra, s.cm = L, diam, nseg, 100, 1
        s.insert(mech)
        if mech == "pas":
            for seg in s:
                seg.pas.g = 0.001; seg.pas.e = -65
        if parent is not None:
            s.connect(made[parent](1))
        made[name] = s
    ic = h.IClamp(made["soma"](0.5)); ic.delay = 10; ic.dur = 50; ic.amp = 0.5
    cells.append((made, ic))
h.usetable_hh = usetable
h.celsius = 6.3
h.dt = dt; h.steps_per_ms = 1 / dt; h.secondorder = 0
h.cvode_active(0)
h.finitialize(-65)
t0, c0 = time.perf_counter(), time.process_time()
h.continuerun(t_ms)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "v_end": cells[0][0]["soma"](0.5).v}))
"""


def run_neuron(python: str, shape: str, n: int, usetable: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(NEURON_SCRIPT)
        path = f.name
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([python, path, str(n), str(usetable), str(DT), str(T_MS),
                              json.dumps(SHAPES[shape]())],
                             capture_output=True, text=True, check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(path)


def run_polyscale(shape: str, n: int) -> dict:
    from polyscale.coordinator.time import TICKS_PER_MS
    from polyscale.solvers.cell import CellPopulation, IClamp, Insert, Morphology, cylinder

    secs = SHAPES[shape]()
    morph = Morphology(sections=tuple(
        cylinder(name, L, diam, kind="soma" if parent is None else "dend", parent=parent, nseg=nseg)
        for name, parent, L, diam, nseg, _ in secs))
    mechs = tuple(Insert(mechanism=m, where=name, **({"params": {"g_S_cm2": 0.001, "e_mV": -65.0}}
                                                     if m == "pas" else {}))
                  for name, _, _, _, _, m in secs)

    def make():
        spec = CellPopulation(morphology=morph, n=n, mechanisms=mechs, dt_ms=DT,
                              iclamps=(IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=0.5),))
        return spec.build(None)

    warm = make()
    warm.advance(0, TICKS_PER_MS, {})            # compiles (or loads) the kernel
    s = make()
    w = TICKS_PER_MS
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(int(T_MS)):
        s.advance(k * w, (k + 1) * w, {})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "v_end": float(s.voltages()[s.soma_node, 0]),
            "n_spikes": s.n_spikes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neuron-python", default=None, help="python of a venv with `neuron` installed")
    ap.add_argument("--cells", default="1,100,1000", help="ball-and-stick population sizes")
    ap.add_argument("--tree-cells", default="100", help="branched-tree population sizes ('' for none)")
    args = ap.parse_args()
    cases = [("ball-and-stick", int(c)) for c in args.cells.split(",") if c]
    cases += [("tree", int(c)) for c in args.tree_cells.split(",") if c]
    rows = []
    for shape, n in cases:
        row = {"shape": shape, "cells": n, "polyscale": run_polyscale(shape, n)}
        if args.neuron_python:
            row["neuron"] = run_neuron(args.neuron_python, shape, n, 1)
            row["neuron_notable"] = run_neuron(args.neuron_python, shape, n, 0)
        rows.append(row)

    print(f"dt {DT} ms, {T_MS:g} ms, backward Euler, one thread; segments per cell: "
          + ", ".join(f"{k} {sum(sec[4] for sec in f())}" for k, f in SHAPES.items()))
    print("per-cell figures from CPU time (time.process_time; the machine may be shared), wall for reference")
    print(f"{'shape':>15} {'cells':>6} {'who':>16} {'wall s':>8} {'cpu s':>8} {'us/cell/ms':>11} "
          f"{'ns/seg-step':>12} {'ratio':>6}")
    for row in rows:
        n = row["cells"]
        segs = sum(sec[4] for sec in SHAPES[row["shape"]]())
        for who in ("polyscale", "neuron", "neuron_notable"):
            if who not in row:
                continue
            r = row[who]
            us = r["cpu_s"] / (n * T_MS) * 1e6
            ns = r["cpu_s"] / (n * segs * T_MS / DT) * 1e9
            ratio = "" if who == "polyscale" else f"{row['polyscale']['cpu_s'] / r['cpu_s']:.2f}"
            label = {"neuron": "NEURON (tables)", "neuron_notable": "NEURON (exact)"}.get(who, who)
            print(f"{row['shape']:>15} {n:>6} {label:>16} {r['wall_s']:>8.3f} {r['cpu_s']:>8.3f} {us:>11.2f} "
                  f"{ns:>12.2f} {ratio:>6}")
    print("ratio = polyscale CPU time / NEURON CPU time")
    for row in rows:
        if "neuron_notable" in row:
            dv = abs(row["polyscale"]["v_end"] - row["neuron_notable"]["v_end"])
            print(f"same cell? {row['shape']} x {row['cells']}: |v_soma(100 ms) polyscale - NEURON (exact)| "
                  f"= {dv:.2e} mV ({row['polyscale']['v_end']!r} vs {row['neuron_notable']['v_end']!r})")


if __name__ == "__main__":
    main()
