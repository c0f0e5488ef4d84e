"""Level I speed: polyscale's cell solvers against NEURON and Arbor on the same cells.

Cells: 'ball-and-stick': soma L = diam = 20 um, nseg 1, hh (NEURON defaults); dendrite L 500 um,
diam 2 um, nseg 49, pas (g 0.001 S/cm2, e -65 mV): 50 segments. 'tree': hh soma, two passive
trunks branching three times (159 segments). 'tree3': hh soma, three passive trunks branching
twice (112 segments). 'active': hh soma, an apical trunk with hh that forks into two passive
tufts (34 segments). Every shape is built the same way on every side. Ra 100 ohm cm, cm 1
uF/cm2, 6.3 C, v_init -65 mV, IClamp 0.5 nA at soma(0.5) from 10 to 60 ms, fixed step dt
0.025 ms, backward Euler (NEURON's secondorder 0), 100 ms, one thread each.

Rows: a population of one shape (1, 100, 1000 ball-and-sticks; 100 trees), solved by
``CellPopulation``; and a heterogeneous population ('mixed': the four shapes in equal parts),
solved by ``CellGroups`` (one group per shape, one solver).

polyscale's time is the solver's ``advance`` over 100 ms in 1 ms windows (what a coupled run
with a 1 ms window does), after a warm-up that compiles the kernels and an untimed build;
polyscale takes hh's rates from NEURON's table (``hh_tables=True``, NEURON's default
``usetable_hh = 1``: the same arithmetic as NEURON's default run). NEURON's is
``h.continuerun(100)`` after ``h.finitialize(-65)``, with its defaults (hh rate tables on),
and with ``--neuron-exact`` also with ``usetable_hh = 0`` against polyscale with exact rates
(``hh_tables=False``, polyscale's default) in rows of their own (off by default to keep a run
under about two minutes). Arbor's is ``simulation.run(100 ms, 0.025 ms)``
in a context of one thread, after building the simulation (untimed), with one CV per NEURON
segment (``cv_policy`` fixed-per-branch nseg on each section; Arbor joins a fork to its
children without NEURON's zero-area node, so its voltages differ slightly: the spike-time
check below says by how much). NEURON and Arbor run in their own processes, each from a
python that has it installed:

    python3 -m venv /tmp/neuron-venv && /tmp/neuron-venv/bin/pip install neuron
    python3 -m venv /tmp/arbor-venv && /tmp/arbor-venv/bin/pip install arbor
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/cable.py \\
        --neuron-python /tmp/neuron-venv/bin/python --arbor-python /tmp/arbor-venv/bin/python

(or POLYSCALE_NEURON_PYTHON / POLYSCALE_ARBOR_PYTHON; a column whose python is not given is
skipped with a message). Printed per row: wall and CPU seconds, us per cell per simulated ms
and ns per segment-step (from CPU time, which a shared machine disturbs less than wall time),
and the ratio polyscale / other (CPU time; below 1 is faster). Then, per row, whether the
sides simulate the same cells: the spike times and the soma voltage (every 1 ms) of the first
cell of each shape, polyscale against Arbor and against NEURON (exact rates when run; NEURON's NetCon reports a crossing at
the end of its step, polyscale and Arbor interpolate within it, so expect up to one dt there).
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


def _branching(trunks: int, depth: int, trunk_L: float, trunk_d: float, trunk_nseg: int,
               L: float, nseg: int) -> list[tuple]:
    """hh soma, ``trunks`` passive trunks, each branching in two ``depth`` times (diameters by
    Rall's 3/2 rule)."""
    secs = [("soma", None, 20.0, 20.0, 1, "hh")]
    for t in range(trunks):
        secs.append((f"trunk{t}", "soma", trunk_L, trunk_d, trunk_nseg, "pas"))
        level = [(f"trunk{t}", trunk_d)]
        for _ in range(depth):
            nxt = []
            for parent, d in level:
                dc = d / 2 ** (2 / 3)
                for k in range(2):
                    name = f"{parent}_{k}"
                    secs.append((name, parent, L, dc, nseg, "pas"))
                    nxt.append((name, dc))
            level = nxt
    return secs


def tree() -> list[tuple]:
    """A branched cell: hh soma, two passive trunks (200 um, 3 um, nseg 9) that branch in two
    three times (100 um, nseg 5): 30 dendrites, 159 segments."""
    return _branching(2, 3, 200.0, 3.0, 9, 100.0, 5)


def tree3() -> list[tuple]:
    """hh soma, three passive trunks (150 um, 2.5 um, nseg 7) that branch in two twice (80 um,
    nseg 5): 18 dendrites, 112 segments."""
    return _branching(3, 2, 150.0, 2.5, 7, 80.0, 5)


def active() -> list[tuple]:
    """Another mechanism set: hh soma, an apical trunk with hh (300 um, 3 um, nseg 15) forking
    into two passive tufts (150 um, 1.5 um, nseg 9): 34 segments."""
    return [("soma", None, 20.0, 20.0, 1, "hh"), ("apical", "soma", 300.0, 3.0, 15, "hh"),
            ("tuft0", "apical", 150.0, 1.5, 9, "pas"), ("tuft1", "apical", 150.0, 1.5, 9, "pas")]


SHAPES = {"ball-and-stick": ball_and_stick, "tree": tree, "tree3": tree3, "active": active}
MIXED = ("ball-and-stick", "tree", "tree3", "active")


def segments(pop: list[tuple[str, int]]) -> int:
    """Segments of a population [(shape, cells), ...]."""
    return sum(n * sum(sec[4] for sec in SHAPES[s]()) for s, n in pop)


NEURON_SCRIPT = r"""
import json, sys, time
from neuron import h
h.load_file("stdrun.hoc")
usetable, dt, t_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
pops = json.loads(sys.argv[4])          # [[sections, n], ...]
cells, spikes, i = [], [], 0
for secs, n in pops:
    for j in range(n):
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
        if j == 0:                      # spike times of each shape's first cell
            vec = h.Vector()
            nc = h.NetCon(made["soma"](0.5)._ref_v, None, sec=made["soma"]); nc.threshold = 0
            nc.record(vec)
            vv = h.Vector()
            vv.record(made["soma"](0.5)._ref_v, 1.0)
            spikes.append((nc, vec, vv))
        i += 1
h.usetable_hh = usetable
h.celsius = 6.3
h.dt = dt; h.steps_per_ms = 1 / dt; h.secondorder = 0
h.cvode_active(0)
h.finitialize(-65)
t0, c0 = time.perf_counter(), time.process_time()
h.continuerun(t_ms)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "v_end": cells[0][0]["soma"](0.5).v,
                  "spikes": [list(v) for _, v, _ in spikes], "v_1ms": [list(v)[:int(t_ms)] for _, _, v in spikes]}))
"""

ARBOR_SCRIPT = r"""
import json, sys, time
import arbor as A
from arbor import units as U
dt, t_ms = float(sys.argv[1]), float(sys.argv[2])
pops = json.loads(sys.argv[3])          # [[sections, n], ...]

def make(secs):
    # each section one cylinder with its own tag; a child starts at its parent's 1-end, as
    # NEURON's connect(parent(1)); the direction does not matter electrically
    tree, seg, end, policy = A.segment_tree(), {}, {}, []
    dec = A.decor()
    dec.set_property(Vm=-65 * U.mV, cm=0.01 * U.F / U.m2, rL=100 * U.Ohm * U.cm, tempK=279.45 * U.Kelvin)
    for k, (name, parent, L, diam, nseg, mech) in enumerate(secs):
        tag = k + 1
        z0 = 0.0 if parent is None else end[parent]
        p = A.mnpos if parent is None else seg[parent]
        r = diam / 2
        seg[name] = tree.append(p, A.mpoint(0, 0, z0, r), A.mpoint(0, 0, z0 + L, r), tag=tag)
        end[name] = z0 + L
        if mech == "pas":
            dec.paint(f"(tag {tag})", A.density("pas/e=-65", {"g": 0.001}))
        else:
            dec.paint(f"(tag {tag})", A.density("hh"))
        policy.append(f"(fixed-per-branch {nseg} (tag {tag}))")
    labels = A.label_dict({"soma": "(tag 1)", "centre": '(on-components 0.5 (region "soma"))'})
    dec.place('"centre"', A.i_clamp(10 * U.ms, 50 * U.ms, 0.5 * U.nA))
    dec.place('"centre"', A.threshold_detector(0 * U.mV), "detector")
    pol = policy[0] if len(policy) == 1 else "(join " + " ".join(policy) + ")"
    return A.cable_cell(A.morphology(tree), dec, labels, discretization=A.cv_policy(pol))

protos = [make(secs) for secs, _ in pops]
kind, first = [], []
for k, (_, n) in enumerate(pops):
    first.append(len(kind))
    kind += [k] * n

class Recipe(A.recipe):
    def __init__(self):
        A.recipe.__init__(self)
        self.props = A.neuron_cable_properties()
    def num_cells(self):
        return len(kind)
    def cell_kind(self, gid):
        return A.cell_kind.cable
    def cell_description(self, gid):
        return protos[kind[gid]]
    def probes(self, gid):
        return [A.cable_probe_membrane_voltage('"centre"', "Um")] if gid in first else []
    def global_properties(self, k):
        return self.props

ctx = A.context(threads=1)
sim = A.simulation(Recipe(), ctx)
sim.record(A.spike_recording.local)   # (.all records nothing without connections in 0.12)
handles = [sim.sample((g, "Um"), A.regular_schedule(1 * U.ms)) for g in first]
t0, c0 = time.perf_counter(), time.process_time()
sim.run(t_ms * U.ms, dt * U.ms)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
sp = sim.spikes()
spikes = [sorted(float(t) for (gid, _), t in sp if gid == g) for g in first]
v_1ms = [[float(x) for x in sim.samples(hd)[0][0][:int(t_ms), 1]] for hd in handles]
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "spikes": spikes, "n_spikes": len(sp), "v_1ms": v_1ms}))
"""


def _subprocess(python: str, script: str, args: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([python, path, *args], capture_output=True, text=True, env=env, timeout=600)
        if out.returncode:
            raise RuntimeError(f"{python} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(path)


def _pops_json(pop) -> str:
    return json.dumps([[SHAPES[s](), n] for s, n in pop])


def run_neuron(python: str, pop, usetable: int) -> dict:
    return _subprocess(python, NEURON_SCRIPT, [str(usetable), str(DT), str(T_MS), _pops_json(pop)])


def run_arbor(python: str, pop) -> dict:
    return _subprocess(python, ARBOR_SCRIPT, [str(DT), str(T_MS), _pops_json(pop)])


def population(shape: str, n: int, hh_tables: bool = True):
    """polyscale's CellPopulation of ``n`` cells of ``shape`` (hh rates from NEURON's table
    unless ``hh_tables`` is False)."""
    from polyscale.solvers.cell import CellPopulation, IClamp, Insert, Morphology, cylinder

    secs = SHAPES[shape]()
    morph = Morphology(sections=tuple(
        cylinder(name, L, diam, kind="soma" if parent is None else "dend", parent=parent, nseg=nseg)
        for name, parent, L, diam, nseg, _ in secs))
    mechs = tuple(Insert(mechanism=m, where=name, **({"params": {"g_S_cm2": 0.001, "e_mV": -65.0}}
                                                     if m == "pas" else {}))
                  for name, _, _, _, _, m in secs)
    return CellPopulation(morphology=morph, n=n, mechanisms=mechs, dt_ms=DT, hh_tables=hh_tables,
                          iclamps=(IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=0.5),))


def run_polyscale(pop, hh_tables: bool = True) -> dict:
    """One shape: a CellPopulation; several: a CellGroups with one group per shape."""
    from polyscale.coordinator.time import TICKS_PER_MS
    from polyscale.solvers.cell import CellGroups

    def make():
        if len(pop) == 1:
            return population(*pop[0], hh_tables).build(None)
        return CellGroups(groups={s: population(s, n, hh_tables) for s, n in pop}).build(None)

    warm = make()
    warm.advance(0, TICKS_PER_MS, {})            # compiles (or loads) the kernel
    s = make()
    w = TICKS_PER_MS
    first = [sum(n for _, n in pop[:k]) for k in range(len(pop))]
    spikes = {c: [] for c in first}
    v_1ms = {c: [] for c in first}
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(int(T_MS)):
        out = s.advance(k * w, (k + 1) * w, {}).outputs
        sp = out["spikes"]
        for c in first:
            # a cheap look at one id per shape; negligible next to the step
            spikes[c].extend((sp.ticks[sp.ids == c] / TICKS_PER_MS).tolist())
            v_1ms[c].append(float(out["v_soma"].data[0, c]))      # v at t = k ms
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall_s": wall, "cpu_s": cpu, "spikes": [spikes[c] for c in first], "n_spikes": s.n_spikes,
            "v_1ms": [v_1ms[c] for c in first]}


def _python(arg: str | None, env: str, what: str) -> str | None:
    py = arg or os.environ.get(env)
    if not py:
        print(f"({what} column skipped: give --{what.lower()}-python or set {env})")
    return py


def _max_dt(a: list[list[float]], b: list[list[float]]) -> str:
    """Largest spike-time difference (ms) over the shapes' first cells; the counts when they differ."""
    if [len(x) for x in a] != [len(x) for x in b]:
        return f"spike counts differ: {[len(x) for x in a]} vs {[len(x) for x in b]}"
    d = max((abs(x - y) for xa, xb in zip(a, b) for x, y in zip(xa, xb)), default=0.0)
    return f"max |dt_spike| {d:.4f} ms over {sum(len(x) for x in a)} spikes"


def _max_dv(a: list[list[float]], b: list[list[float]]) -> str:
    """Largest soma-voltage difference (mV) over the shapes' first cells, sampled every 1 ms."""
    import numpy as np
    d = [np.abs(np.array(x[:len(y)]) - np.array(y[:len(x)])) for x, y in zip(a, b)]
    worst = max(float(x.max()) for x in d)
    median = float(np.median(np.concatenate(d)))
    return f"|dv_soma| at 1 ms samples: max {worst:.3g} mV, median {median:.2g} mV"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--neuron-python", default=None, help="python with `neuron` (or POLYSCALE_NEURON_PYTHON)")
    ap.add_argument("--neuron-exact", action="store_true",
                    help="also run NEURON with exact hh rates (usetable_hh 0) against polyscale with exact rates")
    ap.add_argument("--arbor-python", default=None, help="python with `arbor` (or POLYSCALE_ARBOR_PYTHON)")
    ap.add_argument("--cells", default="1,100,1000", help="ball-and-stick population sizes")
    ap.add_argument("--tree-cells", default="100", help="branched-tree population sizes ('' for none)")
    ap.add_argument("--mixed-cells", default="100,1000",
                    help="heterogeneous population sizes, the four shapes in equal parts ('' for none)")
    args = ap.parse_args()
    neuron_py = _python(args.neuron_python, "POLYSCALE_NEURON_PYTHON", "NEURON")
    arbor_py = _python(args.arbor_python, "POLYSCALE_ARBOR_PYTHON", "Arbor")
    cases = [("ball-and-stick", [("ball-and-stick", int(c))]) for c in args.cells.split(",") if c]
    cases += [("tree", [("tree", int(c))]) for c in args.tree_cells.split(",") if c]
    cases += [("mixed", [(s, int(c) // len(MIXED)) for s in MIXED]) for c in args.mixed_cells.split(",") if c]
    rows = []
    for label, pop in cases:
        row = {"label": label, "pop": pop, "polyscale": run_polyscale(pop)}
        if neuron_py:
            row["neuron"] = run_neuron(neuron_py, pop, 1)
            if args.neuron_exact:
                row["polyscale_exact"] = run_polyscale(pop, hh_tables=False)
                row["neuron_notable"] = run_neuron(neuron_py, pop, 0)
        if arbor_py:
            row["arbor"] = run_arbor(arbor_py, pop)
        rows.append(row)

    print(f"dt {DT} ms, {T_MS:g} ms, backward Euler, one thread; segments per cell: "
          + ", ".join(f"{k} {sum(sec[4] for sec in f())}" for k, f in SHAPES.items())
          + f"; mixed = {' + '.join(MIXED)} in equal parts")
    print("per-cell figures from CPU time (time.process_time; the machine may be shared), wall for reference")
    print(f"{'population':>15} {'cells':>6} {'who':>18} {'wall s':>8} {'cpu s':>8} {'us/cell/ms':>11} "
          f"{'ns/seg-step':>12} {'ratio':>6}")
    labels = {"polyscale": "polyscale (tables)", "neuron": "NEURON (tables)", "polyscale_exact": "polyscale (exact)",
              "neuron_notable": "NEURON (exact)", "arbor": "Arbor"}
    for row in rows:
        n = sum(c for _, c in row["pop"])
        segs = segments(row["pop"])
        for who in ("polyscale", "neuron", "polyscale_exact", "neuron_notable", "arbor"):
            if who not in row:
                continue
            r = row[who]
            us = r["cpu_s"] / (n * T_MS) * 1e6
            ns = r["cpu_s"] / (segs * T_MS / DT) * 1e9
            # exact rates against exact rates, tables against tables (and Arbor)
            mine = row["polyscale_exact" if who == "neuron_notable" else "polyscale"]
            ratio = "" if who.startswith("polyscale") else f"{mine['cpu_s'] / r['cpu_s']:.2f}"
            print(f"{row['label']:>15} {n:>6} {labels.get(who, who):>18} {r['wall_s']:>8.3f} {r['cpu_s']:>8.3f} "
                  f"{us:>11.2f} {ns:>12.2f} {ratio:>6}")
    print("ratio = polyscale CPU time / other CPU time (below 1: polyscale is faster)")
    for row in rows:
        n = sum(c for _, c in row["pop"])
        for mine, who in (("polyscale", "neuron"), ("polyscale_exact", "neuron_notable"), ("polyscale", "arbor")):
            if who in row:
                print(f"same cells? {row['label']} x {n}, first cell of each shape, {labels[mine]} vs "
                      f"{labels[who]}: {_max_dt(row[mine]['spikes'], row[who]['spikes'])}; "
                      f"{_max_dv(row[mine]['v_1ms'], row[who]['v_1ms'])}")


if __name__ == "__main__":
    main()
