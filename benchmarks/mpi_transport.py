"""The mpi transport against raw mpi4py loops: per-window cost and spike routing throughput.

benchmarks/transport.py runs it as its part 6, so one run prints both transports' tables.
Run it outside mpiexec: it starts one ``mpiexec -n K`` job per row (MPICH from the ``mpi``
extra, or Open MPI) running this file in worker mode, and prints the table.

Rows:

* raw star loop: rank 0 sends each worker a step command (2 int64) and receives its output
  (2 float64), numpy buffers with the uppercase mpi4py API: the least a coordinator-driven
  step can cost;
* raw point-to-point loop: what polyscale's exchange does, without polyscale: a persistent
  max-reduction of the ranks' statuses overlapped with 16 bytes of data sent at once with
  ``Isend`` between neighbours only (the next rank in a ring, and rank 0), taken with
  ``Mprobe``/``Mrecv``; and the same with the sizes sent in a round of their own first (what
  polyscale did before);
* raw collective loop: the alternative that was measured against it, an ``Alltoall`` of
  sizes and an ``Alltoallv`` of the same data;
* raw point-to-point loop with the ring's work: the same, plus one step of the LinearSystem
  solver's numba kernel per step and its output sent to the next rank (what the polyscale ring
  computes and exchanges, without polyscale);
* polyscale mpi: K one-state linear solvers in a ring, one step per window (window 0.1 ms),
  every solver recorded, one solver per rank: through ``ps.run`` (rank 0 writes the run file),
  and the window loop alone (no run file, as benchmarks/transport.py part 2 times zmq), with its
  ratio to the two raw point-to-point loops; the same model on inproc for comparison;
* spike routing: a source emitting ``--spikes`` spikes per 1 ms window to a relay on the other
  rank (mpi, 2 ranks) or in the same process (inproc).

    python benchmarks/mpi_transport.py [--steps 20000] [--windows 5000] [--spikes 100000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


# -- worker side (under mpiexec) ------------------------------------------------------------------

def raw_star(steps: int) -> float:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    cmd = np.zeros(2, np.int64)
    out = np.zeros(2, np.float64)
    got = np.zeros((size, 2), np.float64)
    comm.Barrier()
    start = time.perf_counter()
    for t in range(steps):
        if rank == 0:
            cmd[:] = (t, t + 1)
            for w in range(1, size):
                comm.Send(cmd, dest=w, tag=1)
            for w in range(1, size):
                comm.Recv(got[w], source=w, tag=2)
        else:
            comm.Recv(cmd, source=0, tag=1)
            out[:] = cmd
            comm.Send(out, dest=0, tag=2)
    return (time.perf_counter() - start) / steps


def raw_collective(steps: int) -> float:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    sizes = np.zeros((size, 2), np.int64)
    rsizes = np.zeros((size, 2), np.int64)
    payload = np.arange(16, dtype=np.uint8)
    nxt = (rank + 1) % size
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(steps):
        sizes[:, 1] = 0
        sizes[nxt, 1] += 16
        sizes[0, 1] += 16
        comm.Alltoall(sizes, rsizes)
        scounts = sizes[:, 1].astype(np.int32)
        sdispl = np.concatenate([[0], np.cumsum(scounts)[:-1]]).astype(np.int32)
        sbuf = np.concatenate([payload] * int(scounts.sum() // 16))
        rcounts = rsizes[:, 1].astype(np.int32)
        rdispl = np.concatenate([[0], np.cumsum(rcounts)[:-1]]).astype(np.int32)
        rbuf = np.empty(int(rcounts.sum()), np.uint8)
        comm.Alltoallv([sbuf, (scounts, sdispl), MPI.BYTE], [rbuf, (rcounts, rdispl), MPI.BYTE])
    return (time.perf_counter() - start) / steps


def raw_p2p(steps: int, kernel: bool = False) -> float:
    """polyscale's pattern: a persistent max-reduction of every rank's status (a (ranks,)
    vector) overlapped with the data, sent at once point to point between neighbours only (the
    next rank in the ring, and rank 0); receivers probe each message for its size (Mprobe) and
    take it (Mrecv).

    ``kernel``: each step also does the work of polyscale's ring (:func:`ring`) without
    polyscale: one step of the same numba kernel as the LinearSystem solver, its output sent to
    the next rank (the ring's coupling), the received value copied into the next step's input."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    mine = np.zeros(size, np.int64)
    statuses = np.zeros(size, np.int64)
    red = comm.Allreduce_init(mine, statuses, op=MPI.MAX)
    payload = np.arange(16, dtype=np.uint8)
    dsts = sorted({(rank + 1) % size, 0} - {rank}) if size > 1 else []
    srcs = sorted({(rank - 1) % size} | (set(range(1, size)) if rank == 0 else set()) - {rank})
    prev = (rank - 1) % size
    st = MPI.Status()
    if kernel:
        import polyscale as ps
        from polyscale.solvers._kernels import linear_advance
        phi, gamma, drive = ps.solvers.LinearSystem(a=[[-0.1]], c=[0.01], dt_ms=0.1).step_map()
        x, u, out = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1))
        linear_advance(x, u, phi, gamma, drive, out)   # compiled before the clock starts
        payload = out.reshape(-1).view(np.uint8)
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(steps):
        if kernel:
            linear_advance(x, u, phi, gamma, drive, out)
        red.Start()
        sends = [comm.Isend(payload, dest=d, tag=2) for d in dsts]
        red.Wait()
        for s in srcs:
            if statuses[s] == 0:
                m = comm.Mprobe(source=s, tag=2, status=st)
                buf = np.empty(st.Get_count(MPI.BYTE), np.uint8)
                m.Recv(buf)
                if kernel and s == prev:
                    u[0, 0] = buf.view(np.float64)[0]
        MPI.Request.Waitall(sends)
    dt = (time.perf_counter() - start) / steps
    red.Free()
    return dt


def raw_p2p_sizes_first(steps: int) -> float:
    """polyscale's pattern until wire/mpi were made lean: an Iallreduce of the status
    overlapped with the sizes, then the data in a second round, point to point between
    neighbours only."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    status = np.zeros(1, np.int64)
    worst = np.zeros(1, np.int64)
    payload = np.arange(16, dtype=np.uint8)
    dsts = sorted({(rank + 1) % size, 0} - {rank}) if size > 1 else []
    srcs = sorted({(rank - 1) % size} | (set(range(1, size)) if rank == 0 else set()) - {rank})
    nsend = np.array([16], np.int64)
    nrecv = {s: np.zeros(1, np.int64) for s in srcs}
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(steps):
        reqs = [comm.Iallreduce(status, worst, op=MPI.MAX)]
        reqs += [comm.Irecv(nrecv[s], source=s, tag=1) for s in srcs]
        reqs += [comm.Isend(nsend, dest=d, tag=1) for d in dsts]
        MPI.Request.Waitall(reqs)
        bufs = {s: np.empty(int(nrecv[s][0]), np.uint8) for s in srcs}
        reqs = [comm.Irecv(bufs[s], source=s, tag=2) for s in srcs]
        reqs += [comm.Isend(payload, dest=d, tag=2) for d in dsts]
        MPI.Request.Waitall(reqs)
    return (time.perf_counter() - start) / steps


def ring(k: int, n_windows: int):
    import polyscale as ps
    m = ps.Model(t_stop_ms=0.1 * n_windows, window_ms=0.1)
    for i in range(k):
        m.solver(f"s{i}", ps.solvers.LinearSystem(a=[[-0.1]], c=[0.01], dt_ms=0.1))
    for i in range(k):
        m.couple(f"s{i}.x", f"s{(i + 1) % k}.u", delay_ms=0.1)
        m.record(f"s{i}.x")
    return m


@functools.lru_cache(maxsize=None)
def _spike_source_spec():
    import polyscale as ps
    from polyscale.coordinator.time import to_ticks

    @dataclass(frozen=True, slots=True, kw_only=True)
    class BenchSpikes(ps.SolverSpec):
        """Emits ``per_ms`` spikes per ms on ``size`` channels (cyclic ids, spread over the steps)."""
        type: ClassVar[str] = "bench_spikes"
        level: ClassVar[str] = "test"
        size: int = 1000
        per_ms: int = 1000
        dt_ms: float = 0.1

        def ports(self):
            return {"spikes": ps.Port("spikes", "out", self.size)}

        def build(self, ctx):
            spec = self

            class Live:
                dt_ticks = to_ticks(spec.dt_ms, "dt_ms")

                def advance(self, t0, t1, inputs):
                    n = int(round(spec.per_ms * (t1 - t0) / 1e6))
                    ticks = t0 + (np.arange(n, dtype=np.int64) * (t1 - t0)) // max(n, 1)
                    ticks -= ticks % self.dt_ticks
                    return {"spikes": ps.Spikes(ticks, np.arange(n, dtype=np.int64) % spec.size)}

                def state(self):
                    return {}

                def close(self):
                    pass
            return Live()
    return BenchSpikes


def spike_model(per_window: int, n_windows: int):
    import polyscale as ps
    m = ps.Model(t_stop_ms=1.0 * n_windows, window_ms=1.0)
    m.solver("src", _spike_source_spec()(per_ms=per_window))
    m.solver("relay", ps.solvers.SpikeRelay(size=1000, dt_ms=0.1))
    m.couple("src.spikes", "relay.in", delay_ms=1.0)
    return m


def timed_run(model, transport) -> float:
    import polyscale as ps
    from mpi4py import MPI
    MPI.COMM_WORLD.Barrier()
    start = time.perf_counter()
    ps.run(model, transport=transport)
    return time.perf_counter() - start


def ring_loop(n_windows: int) -> float:
    """Wall time per window (s) of polyscale's window loop alone on mpi, as benchmarks/transport.py
    part 2 times zmq: no run file (rank 0 calls ``advance`` window by window, the others serve),
    start and close excluded. Rank 0's value; the others return None."""
    from mpi4py import MPI
    from polyscale.coordinator.plan import make_plan
    from polyscale.coordinator.transports.mpi import MpiTransport
    plan = make_plan(ring(MPI.COMM_WORLD.Get_size(), n_windows))
    tr = MpiTransport()
    if not tr.writes:
        tr.serve(plan)
        return None
    try:
        tr.start(plan)
        windows = list(plan.windows())
        start = time.perf_counter()
        for t0, t1 in windows:
            tr.advance(t0, t1)
        return (time.perf_counter() - start) / len(windows)
    finally:
        tr.close()


def worker(args) -> None:
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.Get_rank()
    size = MPI.COMM_WORLD.Get_size()
    if args.worker == "star":
        result = raw_star(args.steps)
    elif args.worker == "collective":
        result = raw_collective(args.steps)
    elif args.worker == "p2p":
        result = raw_p2p(args.steps)
    elif args.worker == "p2p_kernel":
        result = raw_p2p(args.steps, kernel=True)
    elif args.worker == "ring_loop":
        ring_loop(20)                               # warm up
        result = ring_loop(args.windows)
    elif args.worker == "p2p_sizes":
        result = raw_p2p_sizes_first(args.steps)
    elif args.worker == "ring":
        from polyscale.coordinator.transports.mpi import MpiTransport
        timed_run(ring(size, 20), "mpi")            # warm up: numba, imports, MPI connections
        tr = MpiTransport()
        wall = timed_run(ring(size, args.windows), tr) / args.windows
        result = [wall, tr.exchange_s / args.windows]
    elif args.worker == "spikes":
        timed_run(spike_model(args.spikes, 3), "mpi")
        result = timed_run(spike_model(args.spikes, args.windows), "mpi")
    if rank == 0:
        print(json.dumps({"result": result}), flush=True)


# -- driver ---------------------------------------------------------------------------------------

def launch(case: str, n: int, args):
    """The least result of ``args.repeat`` jobs of ``case`` on ``n`` ranks (every result here is
    a time: on a shared machine other processes only ever add to it); a list result by its first
    item."""
    results = [_launch_once(case, n, args) for _ in range(max(1, args.repeat))]
    return min(results, key=lambda r: r[0] if isinstance(r, list) else r)


def _launch_once(case: str, n: int, args):
    from polyscale.coordinator.transports.mpi import mpiexec_command
    cmd, env = mpiexec_command(n)
    env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    p = subprocess.run([*cmd, sys.executable, os.path.abspath(__file__), "--worker", case,
                        "--steps", str(args.steps), "--windows", str(args.windows),
                        "--spikes", str(args.spikes)], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"{case} on {n} ranks failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])["result"]


def inproc_ring(k: int, n_windows: int, repeat: int = 1) -> float:
    import polyscale as ps
    ps.run(ring(k, 20))
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        ps.run(ring(k, n_windows))
        best = min(best, (time.perf_counter() - start) / n_windows)
    return best


def inproc_spikes(per_window: int, n_windows: int) -> float:
    import polyscale as ps
    ps.run(spike_model(per_window, 3))
    start = time.perf_counter()
    ps.run(spike_model(per_window, n_windows))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20000, help="steps of the raw loops")
    ap.add_argument("--windows", type=int, default=5000, help="windows of the polyscale runs")
    ap.add_argument("--spikes", type=int, default=100000, help="spikes per 1 ms window")
    ap.add_argument("--repeat", type=int, default=1, help="jobs per row: the least time is shown")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    from mpi4py import MPI
    print(f"MPI: {MPI.Get_library_version().splitlines()[0]}; mpi4py {__import__('mpi4py').__version__}; "
          f"{os.cpu_count()} cores; OMP_NUM_THREADS=NUMBA_NUM_THREADS=1; least of {max(1, args.repeat)} job(s) per row")
    rows = []
    for workers in (1, 3, 4):
        rows.append((f"raw star loop, {workers} worker(s)", workers + 1,
                     launch("star", workers + 1, args) * 1e6, "us/step"))
    for k in (2, 4):
        rows.append(("raw status reduction + neighbour p2p (polyscale's)", k, launch("p2p", k, args) * 1e6, "us/step"))
        rows.append(("raw same, sizes in a round of their own", k, launch("p2p_sizes", k, args) * 1e6, "us/step"))
        rows.append(("raw Alltoall + Alltoallv loop", k, launch("collective", k, args) * 1e6, "us/step"))
    raw_p2p_us = {k: v for name, k, v, _ in rows if name.startswith("raw status reduction")}
    for k in (2, 4):
        raw_kernel = launch("p2p_kernel", k, args) * 1e6
        rows.append(("raw same + the ring's kernel step and copy", k, raw_kernel, "us/step"))
        rows.append((f"polyscale inproc, ring of {k}", 1, inproc_ring(k, args.windows, args.repeat) * 1e6, "us/window"))
        wall, exchange = launch("ring", k, args)
        rows.append((f"polyscale mpi, ring of {k} (ps.run, run file)", k, wall * 1e6, "us/window"))
        rows.append((f"  of which rank 0 in the exchange", k, exchange * 1e6, "us/window"))
        loop = launch("ring_loop", k, args) * 1e6
        rows.append((f"polyscale mpi, ring of {k}, window loop alone", k, loop, "us/window"))
        rows.append(("  window loop / raw status reduction + p2p", k, loop / raw_p2p_us[k], "ratio"))
        rows.append(("  window loop / raw same + kernel step", k, loop / raw_kernel, "ratio"))
    n_sp = args.spikes * args.windows // 10
    w_sp = args.windows // 10
    t_in = inproc_spikes(args.spikes, w_sp)
    rows.append((f"spike routing inproc, {args.spikes} spikes/window", 1, n_sp / t_in / 1e6, "M spikes/s"))
    t_mpi = launch("spikes", 2, argparse.Namespace(**{**vars(args), "windows": w_sp}))
    rows.append((f"spike routing mpi, {args.spikes} spikes/window", 2, n_sp / t_mpi / 1e6, "M spikes/s"))
    print(f"| {'case':<50} | ranks | {'value':>9} | unit |")
    print(f"|{'-' * 52}|-------|{'-' * 11}|------|")
    for name, ranks, value, unit in rows:
        print(f"| {name:<50} | {ranks:>5} | {value:>9.2f} | {unit} |")


if __name__ == "__main__":
    main()
