"""Level III speed: polyscale's RegionNetwork against TVB (tvb-library) on the same networks.

Rows (Heun, dt 0.1 ms, no noise, one thread per process):

* jr76: TVB's 76-region default connectivity (tvb-data), Jansen-Rit, SigmoidalJansenRit
  coupling, delays from tract lengths at 3 mm/ms, 10 s; TVB records a 1 ms TemporalAverage of
  y1, y2, polyscale records y1 - y2 every 1 ms (both the cheapest monitor they have).
* jr1000: 1000 regions, a seeded synthetic connectome (centres uniform in a 140 x 170 x 120 mm
  box, 10 % of pairs connected, weights U(0, 0.8) so the mean in-strength is ~40 like the 76's,
  tract length = distance), 3 mm/ms, 0.2 s (TVB needs ~4 minutes per simulated second here).
* mpr76: Montbrió-Pazó-Roxin on the 76-region connectome, Linear coupling a = 0.01, 10 s,
  TVB's default backend.
* mpr76-nb: the same against TVB's numba backend (tvb.simulator.backend.nb_mpr), which only
  runs stochastic Heun: both sides run it with zero noise intensity (drawing and adding the
  zero-scaled noise), TVB's time includes the compilation of its generated kernel, as a user
  of that backend pays it on every run. (Its TemporalAverage path needs the step count to be a
  multiple of its 100000-step chunk: 10 s at 0.1 ms is exactly one.)

polyscale's time is a full ``ps.run`` (plan, windows, recording; no run file), after a warm-up
that compiles the kernels; TVB's is ``Simulator.run`` after ``configure()``; with --repeat N
each side runs N times and its least time is reported. Both are CPU time
(``time.process_time`` of the process that runs them, one thread each), which other load on
the machine distorts less than wall time; the wall times are printed too. TVB runs once per
row, in a subprocess: by default this python when it imports tvb (``.[all]`` installs
tvb-library), else the one --tvb-python names (a venv with tvb-library):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/mass.py
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/mass.py --tvb-python /tmp/tvb-venv/bin/python

The 76-region connectome is TVB's connectivity_76.zip from tvb-data when that is installed
(--conn76 names it), else the same arrays from ../shared/reference/mass (conn76_*.npy, saved
from tvb-data by the reference scripts). Without any TVB only the polyscale column is filled.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = {
    "jr76": dict(model="jr", n=76, t_ms=10000.0),
    "jr1000": dict(model="jr", n=1000, t_ms=200.0),
    "mpr76": dict(model="mpr", n=76, t_ms=10000.0),
    "mpr76-nb": dict(model="mpr", n=76, t_ms=10000.0, tvb_backend="numba"),
}
DT = 0.1
SPEED = 3.0


def synthetic_connectome(n: int, seed: int = 42):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (n, 3)) * [140.0, 170.0, 120.0]
    lengths = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    w = rng.uniform(0, 0.8, (n, n)) * (rng.uniform(size=(n, n)) < 0.1)
    np.fill_diagonal(w, 0.0)
    return w, lengths


REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "mass"


def connectome_arrays(n: int, conn76: str | None):
    if n == 76:
        if conn76 is None:
            if (REFERENCE / "conn76_weights.npy").exists():
                return (np.load(REFERENCE / "conn76_weights.npy"),
                        np.load(REFERENCE / "conn76_tract_lengths_mm.npy"))
            raise SystemExit("the 76-region rows need TVB's connectivity_76.zip: pass --conn76, or "
                             "--tvb-python of a venv with tvb-data")
        from polyscale.solvers.mass import load_connectome
        c = load_connectome(conn76)
        return c.weight_matrix(), c.length_matrix()
    return synthetic_connectome(n)


# -- polyscale -----------------------------------------------------------------------------------

def polyscale_time(row: dict, w: np.ndarray, lengths: np.ndarray, repeat: int = 1) -> tuple[float, float, np.ndarray]:
    """CPU and wall time (s) of the run (the least of ``repeat`` runs) and each region's
    time-mean activity."""
    import polyscale as ps
    from polyscale.solvers.mass import (Connectome, JansenRit, Linear, MontbrioPazoRoxin, RegionNetwork,
                                        SigmoidalJansenRit)
    conn = Connectome(weights=w, tract_lengths_mm=lengths, speed_mm_per_ms=SPEED)
    if row["model"] == "jr":
        spec = RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(),
                             integrator="heun", dt_ms=DT)
    elif row.get("tvb_backend") == "numba":
        spec = RegionNetwork(model=MontbrioPazoRoxin(), connectome=conn, coupling=Linear(a=0.01),
                             integrator="heun_stochastic", noise=(0.0, 0.0), dt_ms=DT,
                             initial_state=(0.1, -2.0))
    else:
        spec = RegionNetwork(model=MontbrioPazoRoxin(), connectome=conn, coupling=Linear(a=0.01),
                             integrator="heun", dt_ms=DT, initial_state=(0.1, -2.0))

    def model(t_ms):
        m = ps.Model(t_stop_ms=t_ms)
        m.solver("brain", spec)
        m.record("brain.activity", every_ms=1.0)
        return m

    ps.run(model(10.0))                       # compile (numba caches to disk too)
    cpu = wall = float("inf")
    for _ in range(repeat):
        m = model(row["t_ms"])
        start, cpu0 = time.perf_counter(), time.process_time()
        run = ps.run(m)
        cpu = min(cpu, time.process_time() - cpu0)
        wall = min(wall, time.perf_counter() - start)
    assert np.isfinite(run.signal("brain", "activity").data).all()
    # the check column needs every step's activity (TVB averages all of them), which the timed
    # run does not record: one more, untimed run of the solver alone
    solver = spec.build(ps.coordinator.specs.SolverContext("brain", 0, np.random.default_rng(0)))
    act = solver.advance(0, int(round(row["t_ms"] / DT)) * solver.dt_ticks, {}).outputs["activity"].data
    # TVB's averages 1, 2, ... cover our steps 9, 10, ... (its first one is partial: see
    # tests/test_mass_network.py, tvb_temporal_average)
    return cpu, wall, act[9:].mean(axis=0)


# -- TVB (run by the TVB venv's python) -----------------------------------------------------------

def tvb_worker(args) -> None:
    import warnings
    warnings.filterwarnings("ignore")
    from tvb.datatypes import connectivity
    from tvb.simulator import coupling, integrators, models, monitors, noise, simulator
    row = ROWS[args.row]
    d = np.load(args.arrays)
    w, lengths = d["weights"], d["tract_lengths"]
    n = w.shape[0]
    conn = connectivity.Connectivity(weights=w, tract_lengths=lengths, centres=np.zeros((n, 3)),
                                     region_labels=np.array([f"r{i}" for i in range(n)]),
                                     speed=np.array([SPEED]))
    conn.configure()
    horizon = int(np.rint(lengths / SPEED / DT).max()) + 1   # TVB's, given the whole history
    if row["model"] == "jr":
        model, cfun, voi = models.JansenRit(), coupling.SigmoidalJansenRit(), [1, 2]
        ic = np.zeros((horizon, 6, n, 1))
    else:
        model, cfun, voi = models.MontbrioPazoRoxin(), coupling.Linear(a=np.array([0.01])), [0]
        ic = np.zeros((horizon, 2, n, 1))
        ic[:, 0], ic[:, 1] = 0.1, -2.0
    numba = row.get("tvb_backend") == "numba"
    if numba:
        integrator = integrators.HeunStochastic(dt=DT, noise=noise.Additive(nsig=np.array([0.0, 0.0])))
    else:
        integrator = integrators.HeunDeterministic(dt=DT)
    sim = simulator.Simulator(model=model, connectivity=conn, coupling=cfun, integrator=integrator,
                              monitors=(monitors.TemporalAverage(period=1.0, variables_of_interest=np.array(voi)),),
                              simulation_length=row["t_ms"], initial_conditions=ic, conduction_speed=SPEED)
    sim.configure()
    start, cpu0 = time.perf_counter(), time.process_time()
    if numba:
        from tvb.simulator.backend.nb_mpr import NbMPRBackend
        # compatibility_mode: hold the coupling over the Heun step, as classic TVB and polyscale
        (t, y), = NbMPRBackend().run_sim(sim, simulation_length=row["t_ms"], compatibility_mode=True)
    else:
        (t, y), = sim.run()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - start
    assert np.isfinite(y).all()
    # each region's time mean of the activity polyscale records: y1 - y2 (JR), r (MPR), without
    # the first, partial average
    act = y[1:, 0, :, 0] - y[1:, 1, :, 0] if row["model"] == "jr" else y[1:, 0, :, 0]
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "samples": int(len(t)), "mean": act.mean(axis=0).tolist()}))


def tvb_time(tvb_python: str, row_name: str, w, lengths, repeat: int = 1) -> dict:
    """TVB's run, the least CPU (and wall) time of ``repeat`` runs, each in a fresh process."""
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conn.npz")
        np.savez(path, weights=w, tract_lengths=lengths)
        for _ in range(repeat):
            out = subprocess.run([tvb_python, __file__, "--tvb-worker", "--row", row_name, "--arrays", path],
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            if best is None:
                best = got
            else:
                best["cpu_s"], best["wall_s"] = min(best["cpu_s"], got["cpu_s"]), min(best["wall_s"], got["wall_s"])
    return best


def find_conn76(tvb_python: str | None) -> str | None:
    if tvb_python is None:
        return None
    code = "import tvb_data, os; print(os.path.join(os.path.dirname(tvb_data.__file__), 'connectivity', 'connectivity_76.zip'))"
    out = subprocess.run([tvb_python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def default_tvb_python() -> str | None:
    """This python, if it imports tvb.simulator."""
    out = subprocess.run([sys.executable, "-c", "import tvb.simulator.simulator"], capture_output=True)
    return sys.executable if out.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tvb-python", help="python of a venv with tvb-library and tvb-data")
    ap.add_argument("--conn76", help="TVB's connectivity_76.zip (default: from tvb-data in --tvb-python)")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ", ".join(ROWS))
    ap.add_argument("--no-tvb", action="store_true", help="time polyscale only")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per side and row; each side's least time is reported (for a loaded machine)")
    ap.add_argument("--tvb-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--arrays", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tvb_worker:
        return tvb_worker(args)
    args.tvb_python = None if args.no_tvb else (args.tvb_python or default_tvb_python())
    conn76 = args.conn76 or find_conn76(args.tvb_python)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    # mean dev: max over regions of |time mean (TVB) - time mean (polyscale)| of the activity,
    # relative to TVB's largest |time mean|: a check that both ran the same model
    print(f"TVB: {args.tvb_python}; 76-region connectome: {conn76 or REFERENCE}")
    print("CPU seconds (wall seconds in brackets)")
    print(f"{'row':9} {'regions':>7} {'sim s':>6} {'polyscale s':>16} {'TVB s':>16} {'TVB / polyscale':>16} "
          f"{'mean dev':>9}")
    for name in args.rows.split(","):
        row = ROWS[name]
        w, lengths = connectome_arrays(row["n"], conn76)
        ours, ours_wall, mean = polyscale_time(row, w, lengths, args.repeat)
        theirs, theirs_wall, dev = float("nan"), float("nan"), float("nan")
        if args.tvb_python:
            tvb = tvb_time(args.tvb_python, name, w, lengths, args.repeat)
            theirs, theirs_wall = tvb["cpu_s"], tvb["wall_s"]
            dev = np.abs(np.array(tvb["mean"]) - mean).max() / np.abs(tvb["mean"]).max()
        print(f"{name:9} {row['n']:7d} {row['t_ms'] / 1000:6.1f} {ours:7.2f} ({ours_wall:6.2f}) "
              f"{theirs:7.2f} ({theirs_wall:6.2f}) {theirs / ours:16.1f} {dev:9.1e}", flush=True)


if __name__ == "__main__":
    main()
