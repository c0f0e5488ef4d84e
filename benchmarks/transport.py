"""What the zmq transport costs, against a raw pyzmq loop and against inproc, in one run.

Prints six tables:

1. raw pyzmq: a ROUTER and 1, 2 or 4 forked DEALER workers, 1 KiB each way per step (the floor
   for any exchange over ZeroMQ on this machine), over loopback TCP and over a Unix domain
   socket (ipc://);
2. polyscale's wall time per window on zmq and on inproc for 1, 2 and 4 trivial solvers (the
   1-state linear systems in a ring of benchmarks/window_overhead.py, one step per window), its
   local workers connected over TCP and over ipc (the default; ZmqTransport.LOCAL_IPC), each
   against the raw loop over the same kind of socket;
3. routing throughput of a spike-heavy coupling: a spike train of N spikes -> relay -> relay,
   spikes routed per second of wall time;
4. a coupled run whose solvers are busy (dense LinearSystems, many steps per window): zmq wall
   time against inproc's wall time and its sum of compute;
5. the routing design, in raw pyzmq: workers in a ring exchanging D bytes per step either
   through the coordinator (each result carries D, forwarded in the next step's command: what
   polyscale does) or directly worker to worker (PUSH/PULL) with only small control messages
   through the coordinator;
6. the mpi transport against raw mpi4py loops (benchmarks/mpi_transport.py);
7. where polyscale's own time per window goes on zmq (the ring of part 2): each worker's Python
   from receiving an ``advance`` to sending its result (decoding, the solver's window with its
   inputs, checks and outputs, encoding), timed inside the forked workers, against the same
   calls repeated warm in a tight loop in one process; and the coordinator's time outside its
   receive (its Python and the sends, whose system calls the raw loop makes too).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/transport.py [--quick] [--repeat 3] [--parts 1234567]
        [--cpu-latency-us 0]   # all of it with idle CPUs polling (ZmqTransport's cpu_latency_us)

Parts 1 and 2 also print CPU time (this process with zmq's I/O threads, plus every worker from
/proc): on a loaded machine wall time includes waiting for a core, CPU time far less so.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

import polyscale as ps
from polyscale.coordinator.plan import make_plan
from polyscale.coordinator.transports.inproc import InProcTransport
from polyscale.coordinator.transports.zmq import ZmqTransport

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from window_overhead import model as ring_model  # noqa: E402


#: the sockets parts 1 and 2 compare: loopback TCP (remote workers, and local ones with
#: ZmqTransport.LOCAL_IPC off) and Unix domain sockets (local workers, the default)
KINDS = ("tcp", "ipc")


# -- 1. raw pyzmq --------------------------------------------------------------------------------
def _raw_worker(endpoint: str) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    s.send(b"hi")
    payload = b"w" * 1024
    while s.recv() != b"stop":
        s.send(payload)
    s.close()
    ctx.term()


def _router_with_workers(k: int, worker, *args, kind: str = "tcp"):
    """A ROUTER bound on loopback TCP (``kind`` 'tcp') or on a Unix domain socket ('ipc', as
    polyscale's local workers connect) and ``k`` forked processes running ``worker(endpoint,
    *args)``."""
    ctx = zmq.Context()
    r = ctx.socket(zmq.ROUTER)
    r.linger = 0
    if kind == "ipc":
        r.bind(f"ipc://{tempfile.mkdtemp(prefix='polyscale-raw-')}/router")
    else:
        r.bind("tcp://127.0.0.1:*")
    endpoint = r.getsockopt_string(zmq.LAST_ENDPOINT)
    pids = []
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            try:
                worker(endpoint, *args)
            finally:
                os._exit(0)
        pids.append(pid)
    return ctx, r, pids


def cpu_s(pids=()) -> float:
    """CPU time (user + system, s) of this process (all its threads, zmq's I/O threads too) and of
    the live processes ``pids`` (from /proc, 10 ms resolution). On a loaded machine CPU time is
    distorted far less than wall time, which includes waiting for a core."""
    total = time.process_time()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def raw_step(k: int, steps: int, kind: str = "tcp") -> tuple[float, float]:
    """Wall time and CPU time (coordinator + workers) per step (us): the ROUTER sends 1 KiB to
    each of ``k`` workers and waits for 1 KiB back from each, over ``kind`` ('tcp' or 'ipc')."""
    ctx, r, pids = _router_with_workers(k, _raw_worker, kind=kind)
    ids = [r.recv_multipart()[0] for _ in range(k)]
    payload = b"c" * 1024
    for _ in range(100):  # warm up
        for i in ids:
            r.send_multipart([i, payload])
        for _ in ids:
            r.recv_multipart()
    cpu = cpu_s(pids)
    start = time.perf_counter()
    for _ in range(steps):
        for i in ids:
            r.send_multipart([i, payload])
        for _ in ids:
            r.recv_multipart()
    dt = (time.perf_counter() - start) / steps
    cpu = (cpu_s(pids) - cpu) / steps
    for i in ids:
        r.send_multipart([i, b"stop"])
    for pid in pids:
        os.waitpid(pid, 0)
    endpoint = r.getsockopt_string(zmq.LAST_ENDPOINT)
    r.close()
    ctx.term()
    if kind == "ipc":
        shutil.rmtree(os.path.dirname(endpoint[len("ipc://"):]), ignore_errors=True)
    return dt * 1e6, cpu * 1e6


def raw_step_us(k: int, steps: int) -> float:
    """Wall time per step (us) of :func:`raw_step`."""
    return raw_step(k, steps)[0]


# -- 5. hub or direct --------------------------------------------------------------------------
def _ring_worker(endpoint: str, direct: bool, size: int) -> None:
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    s.send_string(str(port))
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    push.connect(s.recv_string())  # the next worker's PULL
    data = b"d" * size
    first = True
    while True:
        msg = s.recv_multipart(copy=False)
        if msg[0].bytes == b"stop":
            break
        if direct:
            if not first:
                pull.recv(copy=False)  # the previous step's data from the worker before us
            first = False
            push.send(data, copy=False)
            s.send(b"done")
        else:
            s.send(data, copy=False)
    for sock in (s, pull, push):
        sock.close()
    ctx.term()


def ring_step_us(k: int, size: int, direct: bool, steps: int) -> float:
    """Wall time per step (us) of ``k`` workers in a ring passing ``size`` bytes on each step."""
    ctx, r, pids = _router_with_workers(k, _ring_worker, direct, size)
    hello = [r.recv_multipart() for _ in range(k)]
    ids = [h[0] for h in hello]
    for i in range(k):
        r.send_multipart([ids[i], f"tcp://127.0.0.1:{hello[(i + 1) % k][1].decode()}".encode()])
    pending = {i: b"" for i in ids}
    where = {ids[i]: ids[(i + 1) % k] for i in range(k)}

    def step():
        for i in ids:
            r.send_multipart([i, b"go", pending[i]], copy=False)
        for _ in ids:
            ident, data = r.recv_multipart(copy=False)
            if not direct:
                pending[where[ident.bytes]] = data  # forwarded in the next command, not copied
    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - start) / steps
    for i in ids:
        r.send_multipart([i, b"stop"])
    for pid in pids:
        os.waitpid(pid, 0)
    r.close()
    ctx.term()
    return dt * 1e6


# -- helpers -------------------------------------------------------------------------------------
def timed_windows(model: ps.Model, transport) -> tuple[float, int, object]:
    """Wall time (s) of the window loop alone (start and close excluded) and the window count;
    ``transport.loop_cpu_s`` is the CPU time of the loop (s), this process and its workers;
    ``transport.coordinator_cpu_s`` that of this process alone (s)."""
    plan = make_plan(model)
    transport.start(plan)
    try:
        windows = list(plan.windows())
        pids = [w.pid for w in getattr(transport, "workers", {}).values() if w.pid is not None]
        cpu, own = cpu_s(pids), time.process_time()
        start = time.perf_counter()
        for t0, t1 in windows:
            transport.advance(t0, t1)
        wall = time.perf_counter() - start
        own = time.process_time() - own
        transport.loop_cpu_s = cpu_s(pids) - cpu
        transport.coordinator_cpu_s = own   # this process alone (with zmq's I/O threads)
        return wall, len(windows), transport
    finally:
        transport.close()


# -- 3. spikes -----------------------------------------------------------------------------------
def spike_model(n_spikes: int, size: int, t_stop_ms: float) -> ps.Model:
    rng = np.random.default_rng(0)
    # times on the 0.1 ms grid of the relays, sorted; ids uniform over the population
    times = np.sort(rng.integers(0, int(t_stop_ms * 10) - 30, n_spikes)) / 10.0
    ids = rng.integers(0, size, n_spikes)
    m = ps.Model(t_stop_ms=t_stop_ms, window_ms=1.0)
    m.solver("train", ps.solvers.SpikeTrain(times_ms=tuple(times.tolist()), ids=tuple(ids.tolist()), size=size))
    m.solver("r1", ps.solvers.SpikeRelay(size=size, dt_ms=0.1))
    m.solver("r2", ps.solvers.SpikeRelay(size=size, dt_ms=0.1))
    m.couple("train.spikes", "r1.in", delay_ms=1.0)
    m.couple("r1.out", "r2.in", delay_ms=1.0)
    return m


# -- 4. busy solvers -----------------------------------------------------------------------------
def busy_model(k: int, n: int, steps_per_window: int, n_windows: int) -> ps.Model:
    """``k`` dense n-state linear systems in a ring, coupled through one input each."""
    rng = np.random.default_rng(1)
    dt = 0.01
    m = ps.Model(t_stop_ms=n_windows * steps_per_window * dt, window_ms=steps_per_window * dt)
    for i in range(k):
        a = rng.standard_normal((n, n)) / np.sqrt(n) - 2.0 * np.eye(n)
        b = np.zeros((n, 1))
        b[0, 0] = 1.0
        m.solver(f"s{i}", ps.solvers.LinearSystem(a=a.tolist(), b=b.tolist(), c=[0.1] * n, dt_ms=dt))
    for i in range(k):
        m.couple(f"s{i}.x[0]", f"s{(i + 1) % k}.u", delay_ms=steps_per_window * dt)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke test, noisier numbers)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of parts 1 and 2, and jobs per row of "
                    "part 6 (the minimum is shown)")
    ap.add_argument("--parts", default="1234567", help="which parts to run, e.g. 12 (parts 1 and 2 always run together)")
    ap.add_argument("--windows", type=int, default=5000, help="windows of part 2 (raw steps: 4x as many)")
    ap.add_argument("--cpu-latency-us", type=int, metavar="US",
                    help="hold the CPUs' wake-up latency at US microseconds for the whole benchmark, raw "
                         "loops included (coordinator/cpu_latency.py; needs write access to /dev/cpu_dma_latency)")
    args = ap.parse_args()
    holding_cpu_latency(args.cpu_latency_us, "benchmarks/transport.py", _main, args)


def holding_cpu_latency(us: int | None, what: str, fn, *args) -> None:
    """``fn(*args)``, with the CPUs' wake-up latency held at ``us`` microseconds meanwhile
    (coordinator/cpu_latency.py) unless ``us`` is None; says whether it is held."""
    from polyscale.coordinator.cpu_latency import LatencyHold
    if us is None:
        fn(*args)
        return
    with LatencyHold(us, what=what) as hold:
        print(f"# CPU wake-up latency held at {us} us for the whole benchmark: {hold.held}"
              + ("" if hold.held else f" ({hold.reason})"))
        fn(*args)


def _main(args) -> None:
    q = 10 if args.quick else 1
    print(f"# {os.cpu_count()} cores; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}; pyzmq {zmq.__version__}, "
          f"libzmq {zmq.zmq_version()}")
    ps.run(ring_model(2, 10, False))  # compile and warm caches before anything forks

    parts = set(args.parts)
    mpi_repeat = max(1, args.repeat)   # part 6 takes the least of as many jobs per row
    if not parts & set("12"):
        args.repeat = 0
    # parts 1 and 2 interleaved, --repeat times; the minimum of the repeats is printed, since on
    # a shared machine other processes only ever add time
    # each of tcp and ipc: polyscale's local workers connect over ipc (ZmqTransport.LOCAL_IPC),
    # remote ones over tcp; each is compared with the raw loop over the same kind of socket
    keys = [(kind, k) for kind in KINDS for k in (1, 2, 4)]
    raw, raw_cpu, zmq_us, zmq_cpu, coord_cpu = ({key: [] for key in keys} for _ in range(5))
    inproc_us: dict[int, list[float]] = {k: [] for k in (1, 2, 4)}
    for _ in range(args.repeat):
        for k in (1, 2, 4):
            n = args.windows // q
            for kind in KINDS:
                wall, cpu = raw_step(k, 4 * args.windows // q, kind)
                raw[kind, k].append(wall)
                raw_cpu[kind, k].append(cpu)
                tr = ZmqTransport()
                tr.LOCAL_IPC = kind == "ipc"
                wall, nw, tr = timed_windows(ring_model(k, n, False), tr)
                zmq_us[kind, k].append(wall / nw * 1e6)
                zmq_cpu[kind, k].append(tr.loop_cpu_s / nw * 1e6)
                coord_cpu[kind, k].append(tr.coordinator_cpu_s / nw * 1e6)
            wall_in, _, _ = timed_windows(ring_model(k, n, False), InProcTransport())
            inproc_us[k].append(wall_in / nw * 1e6)
    if args.repeat:
        print_window_cost(args.repeat, raw, raw_cpu, zmq_us, zmq_cpu, inproc_us, coord_cpu)
    if "3" in parts:
        spikes_part(q)
    if "4" in parts:
        busy_part(q)
    if "5" in parts:
        design_part(q)
    if "6" in parts:
        mpi_part(q, mpi_repeat)
    if "7" in parts:
        python_part(q)


def print_window_cost(repeat, raw, raw_cpu, zmq_us, zmq_cpu, inproc_us, coord_cpu) -> None:
    """Parts 1 and 2: the minimum of the repeats of each; keys (socket kind, workers)."""
    print(f"\n1. raw pyzmq ROUTER/DEALER, 1 KiB each way per step (min of {repeat} repeats; CPU: "
          f"coordinator + workers)")
    for kind in KINDS:
        for k in (1, 2, 4):
            print(f"   {kind} {k} worker(s): {min(raw[kind, k]):8.1f} us/step, CPU {min(raw_cpu[kind, k]):8.1f} us/step")

    print(f"\n2. per-window cost, trivial solvers (1-state linear ring, one step per window; min of "
          f"{repeat} repeats interleaved with part 1; CPU: coordinator + workers). Local workers "
          f"connect over ipc by default; 'zmq / raw' compares each with the raw loop over the same kind")
    print(f"   {'socket':>6} {'solvers':>7} {'zmq us/window':>14} {'inproc us/window':>17} {'zmq / raw':>10} "
          f"{'zmq CPU us/window':>18} {'CPU / raw CPU':>14} {'of which coordinator':>21}")
    for kind in KINDS:
        for k in (1, 2, 4):
            z, i, c = min(zmq_us[kind, k]), min(inproc_us[k]), min(zmq_cpu[kind, k])
            print(f"   {kind:>6} {k:>7} {z:>14.1f} {i:>17.1f} {z / min(raw[kind, k]):>10.2f} {c:>18.1f} "
                  f"{c / min(raw_cpu[kind, k]):>14.2f} {min(coord_cpu[kind, k]):>21.1f}")


def spikes_part(q: int) -> None:
    print("\n3. routing throughput, spike train -> relay -> relay (1 ms windows)")
    n_spikes, size, t_stop = 400_000 // q, 1000, 200.0
    for name, tr in (("zmq", ZmqTransport()), ("inproc", InProcTransport())):
        wall, nw, _ = timed_windows(spike_model(n_spikes, size, t_stop), tr)
        routed = 2 * n_spikes  # every spike crosses both couplings
        print(f"   {name:>6}: {routed} spikes routed in {wall:.3f} s: {routed / wall:,.0f} spikes/s "
              f"({nw} windows)")



def busy_part(q: int) -> None:
    print("\n4. busy solvers: dense 200-state linear systems in a ring, 200 steps of 0.01 ms per window")
    for k in (2, 4):
        model = busy_model(k, 200, 200, 100 // q)
        wall_in, nw, tr_in = timed_windows(model, InProcTransport())
        compute = sum(tr_in.compute_s.values())
        wall_z, _, tr_z = timed_windows(model, ZmqTransport())
        compute_z = sum(tr_z.compute_s.values())
        print(f"   {k} solvers, inproc: wall {wall_in:.3f} s, sum of compute {compute:.3f} s ({nw} windows)")
        print(f"   {k} solvers, zmq:    wall {wall_z:.3f} s = {wall_z / compute:.2f} x inproc's sum of compute "
              f"(workers' own compute {compute_z:.3f} s)")



def design_part(q: int) -> None:
    print("\n5. routing design (raw pyzmq), workers in a ring passing D bytes per step: us/step")
    print(f"   {'workers':>7} {'D':>8} {'through coordinator':>20} {'direct':>8}")
    for k in (2, 4):
        for size, steps in ((1024, 5000), (1 << 20, 200)):
            hub = ring_step_us(k, size, False, steps // q)
            direct = ring_step_us(k, size, True, steps // q)
            print(f"   {k:>7} {size:>8} {hub:>20.1f} {direct:>8.1f}")



def mpi_part(q: int, repeat: int = 1) -> None:
    print("\n6. the mpi transport against raw mpi4py loops (benchmarks/mpi_transport.py, same run)")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print("   skipped: mpi4py is not installed (pip install -e '.[mpi]')")
        return
    mpi_args = ["--steps", str(20000 // q), "--windows", str(5000 // q), "--spikes", "100000",
                "--repeat", str(repeat)]
    subprocess.run([sys.executable, str(Path(__file__).with_name("mpi_transport.py")), *mpi_args],
                   check=True)


def _python_in_loop(k: int, n: int, folder: str) -> tuple[float, float]:
    """One zmq run of the ring of ``k`` solvers, ``n`` windows, with the window code timed: each
    worker writes '<us recv->send> <us decode> <us advance> <us encode>' per window to a file in
    ``folder``; returns the coordinator's wall and time outside its receive (us per window)."""
    from polyscale.coordinator import worker as worker_mod
    from polyscale.coordinator.transports import wire
    from polyscale.coordinator.transports import zmq as zmq_mod
    clock = time.perf_counter
    saved = (zmq_mod.recv_frames, zmq_mod.send_frames, wire.decode, wire.encode_window,
             worker_mod._Session.advance, worker_mod._Session.loop)
    recv, send, decode, encode, advance, loop = saved
    acc = {"got": 0.0, "python": 0.0, "decode": 0.0, "advance": 0.0, "encode": 0.0, "n": 0}

    def timed(key, fn):
        def call(*a, **kw):
            start = clock()
            out = fn(*a, **kw)
            acc[key] += clock() - start
            return out
        return call

    def recv_frames(sock):
        frames = recv(sock)
        acc["got"] = clock()
        return frames

    def send_frames(sock, frames):
        acc["python"] += clock() - acc["got"]
        acc["n"] += 1
        send(sock, frames)

    def session_loop(self):
        try:
            return loop(self)
        finally:   # in the forked worker: its figures to a file, per window
            m = max(acc["n"], 1)
            with open(os.path.join(folder, f"worker-{os.getpid()}"), "w") as f:
                f.write(" ".join(f"{1e6 * acc[key] / m:.2f}" for key in ("python", "decode", "advance", "encode")))
    # the worker takes these from the modules when its loop starts, after the fork
    zmq_mod.recv_frames, zmq_mod.send_frames = recv_frames, send_frames
    wire.decode, wire.encode_window = timed("decode", decode), timed("encode", encode)
    worker_mod._Session.advance, worker_mod._Session.loop = timed("advance", advance), session_loop
    try:
        plan = make_plan(ring_model(k, n, False))
        tr = ZmqTransport()
        tr.start(plan)
        try:
            # the coordinator: its own receive timed, everything else is its window code
            zmq_mod.recv_frames, wire.decode, wire.encode_window = recv, decode, encode
            blocked = [0.0]

            def coordinator_recv(sock):
                start = clock()
                frames = recv(sock)
                blocked[0] += clock() - start
                return frames
            windows = list(plan.windows())
            for t0, t1 in windows[:200]:
                tr.advance(t0, t1)
            zmq_mod.recv_frames = coordinator_recv
            blocked[0] = 0.0
            start = clock()
            for t0, t1 in windows[200:]:
                tr.advance(t0, t1)
            wall = clock() - start
            zmq_mod.recv_frames = recv
        finally:
            tr.close()
    finally:
        (zmq_mod.recv_frames, zmq_mod.send_frames, wire.decode, wire.encode_window,
         worker_mod._Session.advance, worker_mod._Session.loop) = saved
    m = len(windows) - 200
    return 1e6 * wall / m, 1e6 * (wall - blocked[0]) / m


def _python_warm(n: int) -> tuple[float, float, float]:
    """A worker's session for the one-solver ring fed its advance messages in a tight loop in
    this process (no sockets, caches warm): us per window of decode, advance (solver window and
    encode) and the result's encode alone, medians."""
    from polyscale.coordinator import worker as worker_mod
    from polyscale.coordinator.transports import wire
    model = ring_model(1, n, False)
    plan = make_plan(model)
    links, adv = worker_mod.advance_layout(plan, ["s0"])
    items, res = worker_mod.result_layout(plan, ["s0"])

    class Held:   # the session's socket: it sends only 'ready' here
        def send_multipart(self, frames):
            pass
    assign = wire.decode(wire.encode("assign", meta={
        "solvers": ["s0"], "heartbeat_s": 1.0, "coordinator_timeout_s": 10.0, "max_message_bytes": 1 << 30,
        "model": model.to_dict(), "advance_layout": adv.to_wire(), "result_layout": res.to_wire()}))
    session = worker_mod._Session(assign, Held())
    out, rows, clock = None, [], time.perf_counter
    for t0, t1 in plan.windows():
        frames = wire.encode_window("advance", t0, t1, [] if out is None else [out.data[0]])
        a = clock()
        msg = wire.decode(frames, layouts=session.layouts)
        b = clock()
        result = session.advance(msg)
        c = clock()
        out = wire.decode(result, layouts={"result": res})
        d = clock()
        wire.encode_window("result", t0, t1, out.data, out.compute_s)
        rows.append((b - a, c - b, clock() - d))
    t = np.median(np.array(rows[200:]), axis=0) * 1e6
    return float(t[0]), float(t[1]), float(t[2])


def python_part(q: int) -> None:
    print("\n7. polyscale's time per window on zmq, trivial solvers (the ring of part 2, us per window)")
    n = 6000 // q
    with tempfile.TemporaryDirectory() as folder:
        for k in (1, 4):
            wall, outside = _python_in_loop(k, n, folder)
            rows = []
            for name in os.listdir(folder):
                with open(os.path.join(folder, name)) as f:
                    rows.append([float(x) for x in f.read().split()])
                os.remove(os.path.join(folder, name))
            w = np.mean(np.array(rows), axis=0)
            print(f"   {k} solver(s): coordinator {wall:.1f} a window, {outside:.1f} of it outside its receive "
                  f"(its Python and sends); each worker (mean of {len(rows)}): {w[0]:.1f} from receiving an "
                  f"advance to sending its result = decode {w[1]:.1f} + solver window and encode {w[2]:.1f}")
    dec, adv, enc = _python_warm(n)
    print(f"   the same worker calls warm in a tight loop (one process, no sockets): decode {dec:.1f} + solver "
          f"window and encode {adv:.1f} (of which the result's encode about {enc:.1f})")


if __name__ == "__main__":
    main()
