"""Brunel's network (examples/brunel.py) on one process and spanning 1, 2, ... MPI ranks.

Prints one row per layout: wall time of the run, CPU time summed over the ranks (each rank's
``time.process_time`` around ``ps.run``, build included), the network solver's own compute time
(the transport's ``compute_s``, the slowest rank; it includes the spike exchanges inside the
window), the transport's window exchange, the peak resident memory (the largest rank's;
inproc: the benchmark's own process, which ran nothing bigger before), and the number of
spikes (which must be the same in every row: the layouts give the same spikes). Run it
outside mpiexec: it starts one ``mpiexec -n K`` job per row running this file in worker mode.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/point_mpi.py [--scale 0.2] [--t-stop 1000] [--ranks 1 2]

On a machine with fewer free cores than ranks the ranks share cores, and MPICH's ranks spin
while they wait for each other: the CPU column then grows with the ranks and the wall time
shows no speed-up. Read the table with the load in mind.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))


def worker(scale: float, t_stop_ms: float) -> None:
    """One rank of an mpiexec job: run Brunel on every rank of COMM_WORLD; rank 0 prints a JSON row."""
    import polyscale as ps
    from mpi4py import MPI
    from polyscale.coordinator.transports.mpi import MpiTransport

    from brunel import build

    comm = MPI.COMM_WORLD
    model = build(scale=scale, t_stop_ms=t_stop_ms)
    if comm.Get_size() > 1:
        model.place("net", ranks=comm.Get_size())
    tr = MpiTransport()
    comm.Barrier()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run = ps.run(model, transport=tr)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    rows = comm.gather({"cpu": cpu, "wall": wall, "compute": tr.compute_s.get("net", 0.0),
                        "exchange": tr.exchange_s, "rss": _peak_mib()}, root=0)
    if comm.Get_rank() == 0:
        n = sum(len(run.spikes("net", p).times) for p in ("E", "I"))
        run.close()
        print("ROW " + json.dumps({"ranks": comm.Get_size(), "spikes": n,
                                   "wall": max(r["wall"] for r in rows), "cpu": sum(r["cpu"] for r in rows),
                                   "compute": max(r["compute"] for r in rows),
                                   "exchange": max(r["exchange"] for r in rows),
                                   "rss": max(r["rss"] for r in rows)}))


def inproc(scale: float, t_stop_ms: float) -> dict:
    import polyscale as ps

    from brunel import build

    wall0, cpu0 = time.perf_counter(), time.process_time()
    run = ps.run(build(scale=scale, t_stop_ms=t_stop_ms))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    n = sum(len(run.spikes("net", p).times) for p in ("E", "I"))
    run.close()
    return {"ranks": "inproc", "spikes": n, "wall": wall, "cpu": cpu, "compute": float("nan"),
            "exchange": float("nan"), "rss": _peak_mib()}


def _peak_mib() -> float:
    """Peak resident memory of this process (MiB; Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--t-stop", type=float, default=1000.0, help="simulated time (ms)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.scale, a.t_stop)
        return
    from polyscale.coordinator.transports.mpi import mpiexec_command

    n_e, n_i = int(round(10000 * a.scale)), int(round(2500 * a.scale))
    print(f"Brunel scale {a.scale} ({n_e + n_i} neurons, {int(0.1 * n_e) + int(0.1 * n_i)} synapses per "
          f"neuron), {a.t_stop:g} ms simulated; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    rows = [inproc(a.scale, a.t_stop)]
    for k in a.ranks:
        cmd, env = mpiexec_command(k)
        env = {**env, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        p = subprocess.run([*cmd, sys.executable, str(Path(__file__).resolve()), "--worker", "--scale",
                            str(a.scale), "--t-stop", str(a.t_stop)], capture_output=True, text=True,
                           env=env, timeout=3600)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("ROW ")]
        if p.returncode or not line:
            sys.exit(f"mpiexec -n {k} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        rows.append(json.loads(line[0][4:]))
    print(f"{'layout':>10} {'wall s':>8} {'CPU s (all ranks)':>18} {'solver s':>9} {'exchange s':>11} "
          f"{'peak MiB/rank':>14} {'spikes':>9}")
    for r in rows:
        name = r["ranks"] if r["ranks"] == "inproc" else f"{r['ranks']} rank(s)"
        print(f"{name:>10} {r['wall']:8.2f} {r['cpu']:18.2f} {r['compute']:9.2f} {r['exchange']:11.3f} "
              f"{r['rss']:14.0f} {r['spikes']:9d}")
    same = len({r["spikes"] for r in rows}) == 1
    print("same number of spikes in every layout" if same else "SPIKE COUNTS DIFFER")


if __name__ == "__main__":
    main()
