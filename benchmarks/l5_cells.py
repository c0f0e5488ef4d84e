"""Level I speed on detailed cells: the L5 pyramidal cell of examples/l5_cells.py (Hay et al.
2011 channels, 51 segments) in polyscale and in NEURON on the same .mod files, side by side.

The cell is the example's (its morphology, all its mechanism and ion placements, the Ih
gradient and the Ca hot zone; per-cell somatic Ih), without the synaptic drive, with a 0.8 nA
step at the soma from 10 to 90 ms: it fires throughout. NEURON builds the same cells from the
same spec (tests/data/cell_mech_reference.py's recipe, per cell) with the .mod files of
tests/data/mod compiled by nrnivmodl in a temporary directory, fixed step dt 0.025 ms,
secondorder 0, one thread. polyscale's time is ``advance`` in 1 ms windows after a warm-up
that compiles the kernel and an untimed build; NEURON's is ``h.continuerun`` after
``h.finitialize``. Both are CPU time (time.process_time) in their own process. Printed:
us per cell per simulated ms, ns per segment-step, the ratio polyscale / NEURON, and the first
cell's spike count on each side.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/l5_cells.py --cells 1,100

The NEURON side needs a python with ``neuron`` and polyscale (``--neuron-python``, default this
one) and ``nrnivmodl`` with a C compiler.

``--kernel N`` times the generated kernel alone instead (N cells, no coordinator, no
recording, 10 ms at rest after a 10 ms warm-up, CPU time, least of 3): the whole kernel, the
kernel with no generated mechanism (assembly and the tree solve), and each mechanism's cost as
the whole kernel minus the kernel without that mechanism (leave-one-out keeps the voltages
near the cell's own; a kernel with one mechanism alone drifts to voltages where the rates
cost differently).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T_MS = 100.0


def spec(n: int):
    from polyscale.coordinator.config import load_model
    from polyscale.solvers.cell.mechanisms import IClamp
    s = load_model(ROOT / "examples" / "l5_cells.py", {"n_cells": n, "t_stop_ms": T_MS}).solvers["cells"]
    return s.replace(synapses=(), record_currents=False,
                     iclamps=(IClamp(section="soma", delay_ms=10.0, dur_ms=80.0, amp_nA=0.8),))


def run_polyscale(n: int) -> dict:
    from polyscale.coordinator.time import TICKS_PER_MS
    sp = spec(n)
    sp.build(None).advance(0, TICKS_PER_MS, {})           # compiles (or loads) the kernel
    s = sp.build(None)
    first = 0
    c0 = time.process_time()
    for k in range(int(T_MS)):
        out = s.advance(k * TICKS_PER_MS, (k + 1) * TICKS_PER_MS, {}).outputs
        first += int((out["spikes"].ids == 0).sum())
    return {"cpu_s": time.process_time() - c0, "first_cell_spikes": first}


NEURON_SCRIPT = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import cell_mech_reference as r
from neuron import h
from polyscale.solvers.cell.population import CellPopulation
spec = CellPopulation.from_dict(json.loads(Path(sys.argv[2]).read_text()))
moddir = r.compile_mods(Path(sys.argv[3]))
lib = next(moddir.glob("*/.libs/libnrnmech.so"), None) or next(moddir.glob("*/libnrnmech.so"))
h.nrn_load_dll(str(lib))
h.load_file("stdrun.hoc")
h.celsius = spec.celsius
names = {"g_S_cm2": "g", "e_mV": "e", "decay_ms": "decay", "gamma": "gamma", "depth_um": "depth",
         "minCai_mM": "minCai", "zTau_ms": "zTau", "ehcn_mV": "ehcn"}
keep = []


def value(val, ci, prof_list, pname, d):
    val = val[ci] if isinstance(val, (tuple, list)) else val
    for prof in prof_list:
        if prof.param == pname:
            val = val * float(prof.factor([d])[0])
    return val


for ci in range(spec.n):
    secs = {}
    for sd in spec.morphology.sections:
        sec = h.Section(name=f"{sd.name}_{ci}")
        for x, y, z, d in sd.points:
            h.pt3dadd(x, y, z, d, sec=sec)
        sec.nseg, sec.Ra, sec.cm = sd.nseg, spec.ra_ohm_cm, spec.cm_uF_cm2
        if sd.parent is not None:
            sec.connect(secs[sd.parent](sd.parent_x))
        secs[sd.name] = sec
    root = secs[spec.morphology.sections[0].name]
    for ins in spec.mechanisms:
        for sd in spec.morphology.sections:
            if ins.where in ("all", sd.name, sd.kind):
                sec = secs[sd.name]
                sec.insert(ins.mechanism)
                for seg in sec:
                    d = h.distance(root(0.0), seg)
                    for pname, val in ins.params.items():
                        setattr(seg, f"{names.get(pname, pname.replace('_S_cm2', ''))}_{ins.mechanism}",
                                value(val, ci, ins.distribution, pname, d))
    for ion in spec.ions:
        for sd in spec.morphology.sections:
            if ion.where in ("all", sd.name, sd.kind):
                sec = secs[sd.name]
                for seg in sec:
                    d = h.distance(root(0.0), seg)
                    for pname, val in ion.params.items():
                        if h.ismembrane(f"{pname[1:-3]}_ion", sec=sec):
                            setattr(seg, pname[:-3], value(val, ci, ion.distribution, pname, d))
    ics = []
    for c in spec.iclamps:
        ic = h.IClamp(secs[c.section](c.x))
        ic.delay, ic.dur, ic.amp = c.delay_ms, c.dur_ms, c.amp_nA
        ics.append(ic)
    keep.append((secs, ics))
nc = h.NetCon(keep[0][0][spec.soma](0.5)._ref_v, None, sec=keep[0][0][spec.soma])
nc.threshold = 0.0
tv = h.Vector()
nc.record(tv)
h.dt = spec.dt_ms
h.steps_per_ms = 1.0 / spec.dt_ms
h.secondorder = 0
h.finitialize(spec.v_init_mV)
c0 = time.process_time()
h.continuerun(float(sys.argv[4]))
print(json.dumps({"cpu_s": time.process_time() - c0, "first_cell_spikes": len(tv)}))
"""


def run_neuron(python: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.json").write_text(json.dumps(spec(n).to_dict()))
        (Path(tmp) / "run.py").write_text(NEURON_SCRIPT)
        (Path(tmp) / "mod").mkdir()
        out = subprocess.run([python, str(Path(tmp) / "run.py"), str(ROOT / "tests" / "data"),
                              str(Path(tmp) / "spec.json"), str(Path(tmp) / "mod"), str(T_MS)],
                             capture_output=True, text=True, timeout=1800)
        if out.returncode:
            raise RuntimeError(f"NEURON run failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def kernel_alone(n: int, steps: int = 400, reps: int = 3) -> None:
    """Print the generated kernel's ns per segment-step for n cells, whole and per mechanism."""
    import numpy as np
    from polyscale.coordinator.time import TICKS_PER_MS
    s = spec(n).build(None)
    kernel, grabbed = s._advance, []
    s._advance = lambda *a: (grabbed.append(list(a)), kernel(*a))[1]
    s.advance(0, 10 * TICKS_PER_MS, {})                  # compiles; the arguments of 400 steps
    args = grabbed[-1]
    args[0] = steps
    # segments as in main(), not nodes (the layout has more nodes than segments)
    nseg = sum(sec.nseg for sec in spec(1).morphology.sections)
    first = len(args) - 4 * len(s.mechs)                 # per mechanism: node, area, par, st

    def ns(a):
        best = min(_cpu(kernel, a) for _ in range(reps))
        return best / (n * nseg * steps) * 1e9
    none = [np.zeros(0, np.int64) if k >= first and (k - first) % 4 == 0 else x for k, x in enumerate(args)]
    whole, bare = ns(args), ns(none)
    print(f"kernel alone, {n} cells, {nseg} segments ({s.nodes_per_cell} nodes), {steps} steps at rest, CPU time, least of {reps}")
    print(f"{'whole kernel':>28} {whole:8.1f} ns/seg-step")
    print(f"{'no generated mechanism':>28} {bare:8.1f} ns/seg-step (assembly, tree solve, pas)")
    for j, m in enumerate(s.mechs):
        k = first + 4 * j
        drop = list(args)
        drop[k] = np.zeros(0, np.int64)
        cost = whole - ns(drop)
        print(f"{m.name:>18} ({len(args[k]):2d} nodes) {cost:8.1f} ns/seg-step = "
              f"{cost * nseg / max(len(args[k]), 1):6.1f} ns per instance-step")


def _cpu(f, a) -> float:
    c = time.process_time()
    f(*a)
    return time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default="1,100", help="population sizes")
    ap.add_argument("--neuron-python", default=sys.executable, help="python with neuron and polyscale")
    ap.add_argument("--kernel", type=int, default=0, help="time the generated kernel alone for this many cells")
    args = ap.parse_args()
    if args.kernel:
        kernel_alone(args.kernel)
        return
    nseg = sum(s.nseg for s in spec(1).morphology.sections)
    print(f"L5 cell of examples/l5_cells.py: {nseg} segments, dt 0.025 ms, {T_MS:g} ms, 0.8 nA step, "
          "one thread, CPU time (the machine may be shared)")
    print(f"{'cells':>6} {'who':>10} {'cpu s':>8} {'us/cell/ms':>11} {'ns/seg-step':>12} {'ratio':>6} {'spikes':>7}")
    for n in (int(c) for c in args.cells.split(",") if c):
        ps = run_polyscale(n)
        nrn = run_neuron(args.neuron_python, n)
        for who, r in (("polyscale", ps), ("NEURON", nrn)):
            us = r["cpu_s"] / (n * T_MS) * 1e6
            ns = r["cpu_s"] / (n * nseg * T_MS / 0.025) * 1e9
            ratio = f"{ps['cpu_s'] / nrn['cpu_s']:.2f}" if who == "NEURON" else ""
            print(f"{n:>6} {who:>10} {r['cpu_s']:>8.3f} {us:>11.2f} {ns:>12.2f} {ratio:>6} {r['first_cell_spikes']:>7}")
    print("ratio = polyscale CPU time / NEURON CPU time (below 1: polyscale is faster)")


if __name__ == "__main__":
    main()
