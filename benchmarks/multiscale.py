"""The flagship run (examples/multiscale_column.py): where its wall time goes, inproc vs zmq.

Issue 9 asks for the wall time split into solver compute, waiting, communication and writing,
and for *coupling* = communication + waiting not caused by load imbalance, below 10 % of wall.
Every phase of a window is timed from the inside (``time.perf_counter``, exclusive of the
phases nested in it) by wrapping the functions that do it, in the coordinator and, on zmq, in
every forked worker (the wrappers are installed before the fork; each worker writes its
per-window timings to a file when it stops). Nothing in polyscale is changed for this.

Phases (one window):

* **compute**: the solver's ``advance``;
* **translators**: the adapters on couplings (spikes -> rate, rate -> Poisson spikes, rate ->
  current, ...), run on the destination side. Issue 9 lists them among the model's components
  (stateful, seeded, each with its own science), so their work is model work, listed on its
  own, not coupling;
* **probes**: the local parts of its probes (``SolverRunner._probe_parts``, solver side) and the
  probes' global stage (the combiners, run by the writer on the coordinator). Probe work is
  neither coupling nor writing; it is listed on its own;
* **communication**: everything that moves a window's outputs to the inputs of the next one:
  routing into the delay buffers (``Link.push``), delivery (``Inbox.collect``: delays and
  channel maps, the adapters' own work taken out), the runner's output checks; on zmq also encoding, sending, receiving and
  decoding messages (coordinator and workers), the coordinator's ``_take`` and heartbeats, and
  the rest of the worker's and the coordinator's window code;
* **writing**: selecting the recorded channels (``SolverRunner.recorded``), the writer's
  ``append`` (staging), ``flush`` (h5py) and ``finish``;
* **waiting** (zmq only): a process blocked in a receive.

inproc (one process, one solver after the other): wall = start-up + the sum of all phases +
close + a residual (the loop itself, unaccounted); there is no waiting, so coupling =
communication.

zmq (one worker process per solver, the coordinator in this process), per window w on the
coordinator's clock (from sending window w's ``advance`` to sending window w+1's):

    wall_w = max_s work_s,w + probes_global_w + writing_w + coupling_w

where work_s,w = compute + translators + local probe parts of solver s: the busiest solver's work is the
floor of the window (nothing parallel can beat it), and what the other workers wait for it is
waiting *caused by load imbalance*, which the issue leaves out of coupling. Coupling_w is the
rest, printed in three parts: the CPU time (``time.thread_time``) of the coordinator's own
communication, the CPU time of the busiest worker's own communication, and the rest (message
latency, process wake-ups, preemption: on 2 cores the four workers and the coordinator share
the CPUs, and other jobs take them too). Per worker the same window is

    wall_w = work + own communication + own recording + imbalance wait + other wait

with imbalance wait = min(wait, max_s work_s,w - own work) of the wait for window w+1's advance
(the barrier: every worker waits for all results of window w), and other wait the rest (the
coordinator writing and routing, latency). Each table prints its sum beside the wall time
(inproc prints the unaccounted residual). CPU time (this process, plus reaped children on zmq) is printed
beside the wall time, since other jobs on a shared machine distort wall time.

The timing is not free: each timed call adds about 2 us of CPU (measured at start on a no-op
and printed as timed calls per window x that cost), most of it inside communication, so the
coupling printed is an upper bound by that much.

When zmq pipelines (``ZmqTransport(pipeline=...)``; by default only with a core per worker to
spare), window w + 1 is posted before window w is written, so the writing and the probes' global
stage in a span run while the workers compute: only their excess over the busiest solver's work
is counted on the critical path (the hidden part is printed, outside the sum). ``--transports
zmq-pipelined,zmq-unpipelined`` forces either, for an A/B on the same machine.

Each zmq table ends with a floor: the raw pyzmq exchange with as many worker processes
(benchmarks/transport.py's part 1, measured in the same run) once per window, since every coupling's delay is one window and the
busiest worker waits for its result to reach the coordinator and the next advance to come back.
It is the coupling that placement would have with no polyscale code at all, as a share of its
window loop (the busiest solver's work, the visible writing and probes' global stage, and it).

``zmq-grouped`` runs the solvers in as many worker processes as this machine has cores
(``ZmqTransport(groups=...)``), packed by their compute in a short inproc run beforehand
(``Run.compute_s()``; zmq.balance's packing): what to do with more solvers
than cores. Its tables are per worker process, each labelled with its solvers.

``zmq-balanced`` (in the default list) places them as ``--balance`` would: one group per core
by that compute, the lightest computed in the coordinator's own process
(``ZmqTransport(in_coordinator=...)``), whose windows then also hold those solvers' work; they
count as one more "worker" for the busiest solver's work, and their communication is the
coordinator's.

Last, a table of deployments (``--deployments ROUNDS``, 3 by default), each a whole run without
the timing wrappers, in interleaved rounds: inproc; zmq with a process per solver; zmq with
those groups; and zmq with one of the groups run in the coordinator's own process
(``ZmqTransport(in_coordinator=...)``, the other groups in workers), each group in turn. It
prints wall and CPU time and each run's wall time over inproc's in the same round: the issue's
"zmq faster than inproc in wall time", for each way to place the solvers on this machine.

    python benchmarks/multiscale.py                 # scale 1, 2000 ms (the README's run)
    python benchmarks/multiscale.py --scale 2 --t-stop 1000 --repeat 1
    python benchmarks/multiscale.py --transports inproc --links --profile 30   # what each link and function costs
    python benchmarks/multiscale.py --cpu-latency-us 0   # idle CPUs polling (ZmqTransport's cpu_latency_us)

One thread per process (set below, before numpy loads); on 2 cores the zmq run has 4 solver
processes plus the coordinator.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import pickle  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import polyscale as ps  # noqa: E402
from polyscale.coordinator import routing, runfile, solver as solver_mod, worker as worker_mod  # noqa: E402
from polyscale.coordinator.transports import inproc as inproc_mod, wire, zmq as zmq_mod  # noqa: E402

perf = time.perf_counter
cpu = time.thread_time     # CPU time of this thread: the phase's own work, without preemption
COMM = ("push", "collect", "checks", "encode", "send", "recv", "decode", "take", "beat", "loop")
WRITE = ("recorded", "append", "flush", "finish")
WRAP_US = 0.0   # what one timed call adds (us), measured in main()
GROUPS: list = []   # zmq-grouped's processes (solver names), packed in main()
BALANCED: dict = {}  # zmq-balanced's ZmqTransport options (zmq.balance), in main()


def load_example():
    path = Path(__file__).resolve().parents[1] / "examples" / "multiscale_column.py"
    spec = importlib.util.spec_from_file_location("multiscale_column", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Clock:
    """Exclusive time per phase, per window, in this process."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stack: list[float] = []
        self.acc: dict = defaultdict(float)     # the window being timed
        self.windows: list[dict] = []           # closed windows, in order
        self.dump_dir: str | None = getattr(self, "dump_dir", None)

    def wrap(self, fn, key):
        cpu_key = key + "#cpu"

        def timed(*a, **k):
            st = self.stack
            st.append([0.0, 0.0])
            s, c = perf(), cpu()
            try:
                return fn(*a, **k)
            finally:
                d, dc = perf() - s, cpu() - c
                child = st.pop()
                acc = self.acc
                acc[key] += d - child[0]
                acc[cpu_key] += dc - child[1]
                acc["#calls"] += 1
                if st:
                    st[-1][0] += d
                    st[-1][1] += dc
        timed.__wrapped__ = fn
        return timed

    def close_window(self, **extra) -> None:
        self.acc.update(extra)
        self.windows.append(dict(self.acc))
        self.acc = defaultdict(float)


CLOCK = Clock()


def wrapper_cost_s(n: int = 20000) -> float:
    """What one timed call adds (s of CPU): the clocks and the bookkeeping, measured on a no-op
    (thread CPU time, the best of 5, so that other jobs on the machine do not inflate it)."""
    probe = Clock()
    f = probe.wrap(lambda: None, "x")
    plain = lambda: None  # noqa: E731
    best = float("inf")
    for _ in range(5):
        t = cpu()
        for _ in range(n):
            plain()
        base = cpu() - t
        t = cpu()
        for _ in range(n):
            f()
        best = min(best, (cpu() - t - base) / n)
    return max(0.0, best)


_PATCHED: list[tuple[object, str, object]] = []


def _patch(owner, attr, key, wrapper=None):
    fn = getattr(owner, attr)
    _PATCHED.append((owner, attr, fn))
    setattr(owner, attr, wrapper(fn) if wrapper else CLOCK.wrap(fn, key))


def install(dump_dir: str) -> None:
    """Wrap every phase (once); workers forked afterwards inherit the wrappers."""
    CLOCK.dump_dir = dump_dir
    if _PATCHED:
        return
    original_init = solver_mod.SolverRunner.__init__

    def runner_init(self, plan, name, solver):
        solver.advance = CLOCK.wrap(solver.advance, "compute")
        original_init(self, plan, name, solver)
    _PATCHED.append((solver_mod.SolverRunner, "__init__", original_init))
    solver_mod.SolverRunner.__init__ = runner_init
    _patch(solver_mod.SolverRunner, "advance", "checks")
    _patch(solver_mod.SolverRunner, "_probe_parts", "probes")
    _patch(solver_mod.SolverRunner, "recorded", "recorded")
    for attr in ("push", "_push_spikes", "_push_samples"):   # a link may bind its push per kind
        if attr in vars(routing.Link):
            _patch(routing.Link, attr, "push")
    _patch(routing.Inbox, "collect", "collect")
    # translators (the adapters on a coupling: spikes -> rate, rate -> Poisson spikes, ...) are
    # model components with their own science, run on the destination side: their work is
    # timed on its own, not as communication (delay buffers, routing and channel maps are)
    link_init = routing.Link.__init__

    def l_init(self, *a, **k):
        link_init(self, *a, **k)
        self.adapters = [CLOCK.wrap(ad, "translators") for ad in self.adapters]
    _PATCHED.append((routing.Link, "__init__", link_init))
    routing.Link.__init__ = l_init
    writer_init = runfile.RunWriter.__init__

    def init(self, *a, **k):
        writer_init(self, *a, **k)
        self._combiners = {n: CLOCK.wrap(c, "probes_global") for n, c in self._combiners.items()}
    _PATCHED.append((runfile.RunWriter, "__init__", writer_init))
    runfile.RunWriter.__init__ = init
    _patch(runfile.RunWriter, "append", "append")
    _patch(runfile.RunWriter, "flush", "flush")
    _patch(runfile.RunWriter, "finish", "finish")
    # inproc: a window is one advance of the transport (+ the writer's append after it)
    _patch(inproc_mod.InProcTransport, "advance", "loop", _window_start)
    _patch(inproc_mod.InProcTransport, "close", "close", _close_start)
    # zmq, both sides: message encoding, sockets, decoding
    _patch(wire, "encode_window", "encode")
    _patch(wire, "decode", "decode")
    _patch(zmq_mod, "send_frames", "send", _send)
    _patch(zmq_mod, "recv_frames", "recv")
    # a window starts when it is posted (advance = post + gather; the scheduler may pipeline)
    _patch(zmq_mod.ZmqTransport, "post", "loop", lambda fn: _window_start(fn, posted=True))
    _patch(zmq_mod.ZmqTransport, "gather", "loop")
    _patch(zmq_mod.ZmqTransport, "_take", "take")
    _patch(zmq_mod.ZmqTransport, "_beat", "beat")
    _patch(zmq_mod.ZmqTransport, "close", "close", _close_start)
    # worker: one window per advance; the wait for it is what its recv took before
    session_init, session_close = worker_mod._Session.__init__, worker_mod._Session.close

    def s_init(self, *a, **k):
        if os.getpid() == CLOCK.coordinator_pid:   # in_coordinator's session: timed as the coordinator
            session_init(self, *a, **k)
            CLOCK.here = list(self.names)
            return
        CLOCK.reset()
        CLOCK.worker = True
        session_init(self, *a, **k)
        CLOCK.acc = defaultdict(float)   # the wait for the first window is start-up

    def s_close(self):
        if os.getpid() != CLOCK.coordinator_pid:
            path = Path(CLOCK.dump_dir) / f"worker-{os.getpid()}.pkl"
            path.write_bytes(pickle.dumps({"solvers": self.names, "windows": CLOCK.windows}))
        session_close(self)
    for attr, fn in (("__init__", s_init), ("close", s_close)):
        _PATCHED.append((worker_mod._Session, attr, getattr(worker_mod._Session, attr)))
        setattr(worker_mod._Session, attr, fn)
    _patch(worker_mod._Session, "advance", "loop", _worker_window)


def _window_start(fn, posted=False):
    """Coordinator side: a window starts when the transport is asked to advance it (or, in the
    scheduler's pipelined loop, when it is posted)."""
    inner = CLOCK.wrap(fn, "loop")

    def advance(self, t0, t1):
        now = perf()
        if CLOCK.windows or CLOCK.acc.get("t0") is not None:
            CLOCK.close_window(end=now)
        CLOCK.acc["t0"], CLOCK.acc["start"] = t0, now
        if posted:
            CLOCK.acc["posted"] = 1
        return inner(self, t0, t1)
    return advance


def _close_start(fn):
    inner = CLOCK.wrap(fn, "close")

    def close(self):
        if CLOCK.acc.get("t0") is not None:
            CLOCK.close_window(end=perf())
        return inner(self)
    return close


def _worker_window(fn):
    inner = CLOCK.wrap(fn, "loop")

    def advance(self, msg):
        if CLOCK.worker:
            CLOCK.acc["t0"] = msg.t0
            CLOCK.acc["wait"] = CLOCK.acc.pop("recv", 0.0)
        return inner(self, msg)
    return advance


def _send(fn):
    inner = CLOCK.wrap(fn, "send")

    def send(sock, frames):
        out = inner(sock, frames)
        if getattr(CLOCK, "worker", False) and CLOCK.acc.get("t0") is not None:
            CLOCK.close_window()   # the worker's window ends when its result is sent
        return out
    return send


def uninstall() -> None:
    while _PATCHED:
        owner, attr, fn = _PATCHED.pop()
        setattr(owner, attr, fn)


def timed_run(model, out, transport, dump_dir):
    """One run; returns wall s, CPU s (this process + children reaped), coordinator windows,
    worker windows {solver: [window dicts]}, and the phases outside the window loop."""
    for f in Path(dump_dir).glob("worker-*.pkl"):
        f.unlink()
    CLOCK.reset()
    CLOCK.worker = False
    CLOCK.coordinator_pid, CLOCK.here = os.getpid(), []
    c0, ch0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    w = perf()
    if transport == "zmq-grouped":
        transport = zmq_mod.ZmqTransport(groups=GROUPS)
    elif transport == "zmq-balanced":
        transport = zmq_mod.ZmqTransport(**BALANCED)
    elif transport.startswith("zmq"):
        # zmq: the transport decides (a core per worker to spare); zmq-pipelined / -unpipelined force it
        transport = zmq_mod.ZmqTransport(pipeline={"zmq": None, "zmq-pipelined": True,
                                                   "zmq-unpipelined": False}[transport])
    ps.run(model, out=out, transport=transport, force=True)
    pipelined = bool(getattr(transport, "pipeline", False))
    wall = perf() - w
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime)
    windows = CLOCK.windows
    outside = {k: v for k, v in CLOCK.acc.items() if k not in ("t0", "start", "end")}  # close, finish
    workers = {}
    for f in Path(dump_dir).glob("worker-*.pkl"):
        d = pickle.loads(f.read_bytes())
        workers["+".join(d["solvers"])] = d["windows"]
    if CLOCK.here:
        # the solvers computed in the coordinator: their work, from its own windows (their
        # communication is the coordinator's)
        workers["(coord.) " + "+".join(CLOCK.here)] = [
            {"t0": row["t0"], "here": 1.0, **{k: row.get(k, 0.0) for k in ("compute", "translators", "probes", "recorded")}}
            for row in windows]
    return dict(wall=wall, cpu=cpu, windows=windows, outside=outside, workers=workers, pipelined=pipelined,
                loop=windows[-1]["end"] - windows[0]["start"])


def pack(busy: dict, n: int) -> list[list[str]]:
    """zmq.balance's n groups, all as groups (the one it would run in the coordinator first)."""
    b = zmq_mod.balance(busy, n)
    return [b["in_coordinator"], *b["groups"]]


def deploy(model, rounds: int, busy: dict, tmp: str) -> str:
    """The table of ways to run the model on this machine, each run whole (no timing wrappers)
    in ``rounds`` interleaved rounds: wall and CPU s (this process + its workers), and each
    run's wall over inproc's in the same round (median over rounds)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    groups = pack(busy, cores)
    chosen = zmq_mod.balance(busy, cores)["in_coordinator"]
    label = lambda gs: " | ".join("+".join(g) for g in gs)  # noqa: E731
    ways = [("inproc", "1 process", lambda: "inproc"),
            ("zmq, a process per solver", f"{len(busy)} workers", lambda: zmq_mod.ZmqTransport()),
            ("zmq, grouped by compute", f"workers {label(groups)}", lambda: zmq_mod.ZmqTransport(groups=groups))]
    for g in groups:
        rest = [x for x in groups if x is not g]
        tag = " (--balance)" if sorted(g) == sorted(chosen) else ""
        ways.append((f"zmq, {'+'.join(g)} in the coordinator{tag}", f"worker{'s' if len(rest) > 1 else ''} {label(rest)}",
                     lambda g=g, rest=rest: zmq_mod.ZmqTransport(groups=rest, in_coordinator=g)))
    wall, cpu = {w[0]: [] for w in ways}, {w[0]: [] for w in ways}
    for _ in range(rounds):
        for name, _, make in ways:
            c0, ch0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
            w = perf()
            ps.run(model, out=f"{tmp}/deploy.h5", transport=make(), force=True).close()
            wall[name].append(perf() - w)
            ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(time.process_time() - c0 + (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime))
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    lines = [f"deployments on this machine ({cores} cores; solvers' compute in a short inproc run: "
             + ", ".join(f"{n} {busy[n]:.3f} s" for n in sorted(busy, key=lambda n: -busy[n]))
             + f"), {rounds} interleaved rounds, whole runs without timing wrappers:",
             f"  {'deployment':<52} {'processes':<34} {'wall min':>8} {'median':>7} {'/ inproc':>8} {'CPU med':>8}"]
    for name, procs, _ in ways:
        ratio = med([x / i for x, i in zip(wall[name], wall["inproc"])])
        lines.append(f"  {name:<52} {procs:<34} {min(wall[name]):8.2f} {med(wall[name]):7.2f} {ratio:8.2f} "
                     f"{med(cpu[name]):8.2f}")
    lines.append("  (/ inproc: the median over rounds of the run's wall time over inproc's in the same round; goal < 1)\n")
    return "\n".join(lines)


def _sum(rows, keys):
    return sum(r.get(k, 0.0) for r in rows for k in keys)


def report_inproc(r, detail=False) -> float:
    """Print inproc's split; return the coupling share of wall time."""
    ws, wall = r["windows"], r["wall"]
    compute = _sum(ws, ("compute",))
    translators = _sum(ws, ("translators",))
    probes = _sum(ws, ("probes", "probes_global"))
    comm = _sum(ws, ("push", "collect", "checks", "loop"))
    out = r["outside"]
    writing = _sum(ws, WRITE) + out.get("finish", 0.0) + out.get("flush", 0.0)
    close = out.get("close", 0.0)
    start = wall - r["loop"] - close - out.get("finish", 0.0) - out.get("flush", 0.0)
    resid = r["loop"] - (compute + translators + probes + comm + _sum(ws, WRITE))
    print(f"inproc: wall {wall:.3f} s, CPU {r['cpu']:.3f} s, {len(ws)} windows")
    rows = [("solver compute", compute), ("translators (adapters on couplings)", translators),
            ("probes (local + global)", probes),
            ("communication (route, deliver, checks, loop)", comm), ("writing (select, stage, h5py)", writing),
            ("start-up (plan, build, file) + close", start + close), ("residual (unaccounted)", resid)]
    for name, v in rows:
        print(f"  {name:<46} {v:8.3f} s {v / wall:7.1%}")
    print(f"  {'sum':<46} {sum(v for _, v in rows):8.3f} s   (wall {wall:.3f} s)")
    if detail:
        print("  per phase, us per window (exclusive), wall/CPU:")
        _detail("inproc", ws)
    share = comm / wall
    calls = _sum(ws, ("#calls",)) / max(len(ws), 1)
    print(f"  timing itself: {calls:.0f} timed calls per window, about {calls * WRAP_US:.0f} us per window "
          f"({calls * WRAP_US * 1e-6 * len(ws):.3f} s), most of it inside communication")
    timing = calls * WRAP_US * 1e-6 * len(ws)
    print(f"  coupling = communication (no waiting in one process): {share:.1%} of wall, "
          f"{comm / r['loop']:.1%} of the window loop; {max(0.0, comm - timing) / wall:.1%} of wall "
          f"less all the timing itself (a lower bound)\n")
    return share


def _detail(name, rows) -> None:
    keys = sorted({k for r in rows for k in r if "#" not in k} - {"t0", "start", "end", "posted"})
    n = max(len(rows), 1)

    def us(k):
        return 1e6 * sum(r.get(k, 0.0) for r in rows) / n
    print(f"    {name:<12} " + ", ".join(f"{k} {us(k):.0f}/{us(k + '#cpu'):.0f}" for k in keys))


def report_zmq(r, detail=False, floor=None) -> tuple[float, float]:
    """Print zmq's split, per window on the coordinator's clock and per worker; return the
    coupling share of the wall time and of the window loop. ``floor(k)``: (wall, CPU) us of the
    raw pyzmq round trip with ``k`` worker processes on this machine (:func:`zmq_floor_us`),
    printed as the least coupling of this placement."""
    ws, wall = r["windows"], r["wall"]
    workers = r["workers"]
    by_t0 = {s: {row["t0"]: row for row in rows} for s, rows in workers.items()}
    work = {s: {t0: row.get("compute", 0.0) + row.get("probes", 0.0) + row.get("translators", 0.0)
                for t0, row in rows.items()}
            for s, rows in by_t0.items()}
    tot = defaultdict(float)
    per = {s: defaultdict(float) for s in workers}
    t0s = [row["t0"] for row in ws]
    pipelined = r["pipelined"]
    for i, row in enumerate(ws):
        t0 = row["t0"]
        wall_w = row["end"] - row["start"]
        busy = max(workers, key=lambda s: work[s][t0])
        mx = work[busy][t0]
        coord_comm = sum(row.get(k, 0.0) for k in COMM)   # its recv includes waiting: taken out below
        coord_wait = row.get("recv", 0.0)
        # the coordinator's writing and probes' global stage in this span (of the window before,
        # when the scheduler pipelines): hidden while it is shorter than the busiest solver's
        # work, which runs meanwhile; only the excess is on the critical path
        written = sum(row.get(k, 0.0) for k in ("append", "flush")) + row.get("probes_global", 0.0)
        # (with solvers in the coordinator, it is free only for the busiest's work beyond theirs)
        here = sum(work[s][t0] for s in workers if by_t0[s][t0].get("here"))
        visible = written if not pipelined else max(0.0, written - (mx - here))
        pg = row.get("probes_global", 0.0) * (visible / written if written else 0.0)
        writing = visible - pg
        b = by_t0[busy][t0]
        busy_comm = sum(b.get(k, 0.0) for k in COMM if k != "recv")
        busy_rec = b.get("recorded", 0.0)
        coupling = wall_w - mx - pg - writing - busy_rec
        tot["hidden"] += written - visible
        tot["wall"] += wall_w
        tot["work"] += mx
        tot["compute"] += b.get("compute", 0.0)
        tot["translators"] += b.get("translators", 0.0)
        tot["probes_local"] += b.get("probes", 0.0)
        tot["probes_global"] += pg
        tot["writing"] += writing + busy_rec
        tot["coupling"] += coupling
        tot["coord_comm"] += coord_comm - coord_wait
        tot["busy_comm"] += busy_comm
        tot["coord_wait"] += coord_wait
        tot["coord_comm_cpu"] += sum(row.get(k + "#cpu", 0.0) for k in COMM)
        tot["busy_comm_cpu"] += sum(b.get(k + "#cpu", 0.0) for k in COMM if k != "recv")
        # per worker: its window, and the wait before the next one split by the barrier
        nxt = t0s[i + 1] if i + 1 < len(t0s) else None
        for s in workers:
            rw = by_t0[s][t0]
            p = per[s]
            p["compute"] += rw.get("compute", 0.0)
            p["transl"] += rw.get("translators", 0.0)
            p["probes"] += rw.get("probes", 0.0)
            p["comm"] += sum(rw.get(k, 0.0) for k in COMM if k != "recv")
            p["recorded"] += rw.get("recorded", 0.0)
            if nxt is not None:
                wait = by_t0[s][nxt].get("wait", 0.0)
                imb = min(wait, mx - work[s][t0])
                p["imbalance"] += imb
                p["other_wait"] += wait - imb
    loop = tot["wall"]
    rest = wall - loop
    print(f"zmq: wall {wall:.3f} s, CPU {r['cpu']:.3f} s (coordinator + workers), {len(ws)} windows")
    print("  critical path (per window: the busiest solver's work, then what else the coordinator waited for):")
    rows = [("busiest solver's work (compute + translators + local probes)", tot["work"]),
            ("  of which solver compute", tot["compute"]), ("  of which translators", tot["translators"]),
            ("  of which local probe parts", tot["probes_local"]),
            ("probes' global stage (coordinator)", tot["probes_global"]),
            ("writing (select on the worker, stage, h5py)", tot["writing"]),
            ("coupling (communication + waiting not from imbalance)", tot["coupling"]),
            ("  of which coordinator communication (CPU time)", tot["coord_comm_cpu"]),
            ("  of which the busiest worker's communication (CPU time)", tot["busy_comm_cpu"]),
            ("  of which latency, wake-ups, preemption (the rest)",
             tot["coupling"] - tot["coord_comm_cpu"] - tot["busy_comm_cpu"]),
            ("start-up (fork, build, handshake) + close + finish", rest)]
    for name, v in rows:
        print(f"  {name:<56} {v:8.3f} s {v / wall:7.1%}")
    top = tot["work"] + tot["probes_global"] + tot["writing"] + tot["coupling"] + rest
    if pipelined:
        print(f"  {'(writing + probes global hidden behind the compute)':<56} {tot['hidden']:8.3f} s   not in the sum")
    print(f"  {'sum':<56} {top:8.3f} s   (wall {wall:.3f} s; window loop {loop:.3f} s)")
    print("  per worker (each line adds up to the window loop, less the first window's start-up wait; the "
          "solvers in the coordinator show only their work):")
    nw = max([10, *map(len, per)])
    print(f"  {'solver':<{nw}} {'compute':>8} {'transl.':>7} {'probes':>7} {'comm':>7} {'record':>7} {'imbal.':>7} "
          f"{'other':>7} {'sum':>7}")
    for s in sorted(per):
        p = per[s]
        total = sum(p.values())
        print(f"  {s:<{nw}} {p['compute']:8.3f} {p['transl']:7.3f} {p['probes']:7.3f} {p['comm']:7.3f} {p['recorded']:7.3f} "
              f"{p['imbalance']:7.3f} {p['other_wait']:7.3f} {total:7.3f}")
    if detail:
        print("  per phase, us per window (exclusive), wall/CPU:")
        _detail("coordinator", ws)
        for s in sorted(workers):
            _detail(s, workers[s][1:])
    calls = _sum(ws, ("#calls",)) / max(len(ws), 1)
    wcalls = max((_sum(rows[1:], ("#calls",)) / max(len(rows) - 1, 1) for rows in workers.values()), default=0.0)
    print(f"  timing itself: {calls:.0f} timed calls per window in the coordinator, up to {wcalls:.0f} in a "
          f"worker: about {(calls + wcalls) * WRAP_US:.0f} us per window on the critical path")
    share, share_loop = tot["coupling"] / wall, tot["coupling"] / loop
    print(f"  coupling: {share:.1%} of wall, {share_loop:.1%} of the window loop (without start-up)")
    if floor is not None:
        # every coupling's delay is one window: the busiest worker cannot start window w + 1
        # before its result of window w reached the coordinator and the next advance came back
        k = sum(1 for rows in by_t0.values() if not any(row.get("here") for row in rows.values()))
        us = floor(k)
        least = us[0] * 1e-6 * len(ws)
        rest_of_loop = tot["work"] + tot["probes_global"] + tot["writing"]
        print(f"  floor: ZeroMQ's own exchange with {k} worker process(es) (raw pyzmq ROUTER/DEALER over "
              f"ipc, 1 KiB each way, measured in this run: {us[0]:.0f} us wall, {us[1]:.0f} us CPU a step) "
              f"comes once a window; with no polyscale code at all this placement's coupling would be "
              f"{least:.3f} s, {least / (rest_of_loop + least):.1%} of its window loop")
    print()
    return share, share_loop


_FLOOR: dict[int, tuple[float, float]] = {}


def zmq_floor_us(k: int, tries: int = 3, steps: int = 4000) -> tuple[float, float]:
    """The raw pyzmq exchange on this machine now: a ROUTER and ``k`` DEALER processes over
    ipc, 1 KiB each way (benchmarks/transport.py's part 1), (wall, CPU) us per step, least of
    ``tries``; measured once per ``k``."""
    if k not in _FLOOR:
        from transport import raw_step   # benchmarks/transport.py, beside this file
        got = [raw_step(k, steps, "ipc") for _ in range(tries)]
        _FLOOR[k] = min(g[0] for g in got), min(g[1] for g in got)
    return _FLOOR[k]


def link_costs(model) -> None:
    """One inproc run with every link's delivery (delay + adapters), every adapter and every
    push timed on their own (thread CPU time, us per window): which coupling costs what."""
    acc, calls = defaultdict(float), defaultdict(int)
    original = routing.Link.__init__

    def timed(key, fn):
        def call(*a):
            c = cpu()
            try:
                return fn(*a)
            finally:
                acc[key] += cpu() - c
                calls[key] += 1
        return call

    def init(self, *a, **k):
        original(self, *a, **k)
        name = self.plan.name
        self.collect = timed(("deliver", name), self.collect)
        self.push = timed(("push", name), self.push)
        self.adapters = [timed((f"  {type(ad).__name__.lstrip('_')}", name), ad) for ad in self.adapters]
    routing.Link.__init__ = init
    try:
        ps.run(model, out=None, transport="inproc")
    finally:
        routing.Link.__init__ = original
    n = max(calls.values(), default=1)
    print(f"per link, inproc, CPU us per window ({n} windows; 'deliver' includes the adapters below it):")
    for name in sorted({k[1] for k in acc}):
        for key in sorted(k for k in acc if k[1] == name):
            print(f"  {key[0]:<16} {1e6 * acc[key] / n:7.1f}  {name}")
    tot = sum(v for k, v in acc.items() if k[0] in ("deliver", "push"))
    print(f"  {'all links':<16} {1e6 * tot / n:7.1f}  (deliver + push)\n")


def profile(model, top: int) -> None:
    """One inproc run under cProfile (process CPU time): the ``top`` functions by own time, us
    per window. cProfile's own cost inflates Python-heavy functions: read it for ranking."""
    import cProfile
    import pstats
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    ps.run(model, out=None, transport="inproc")
    prof.disable()
    st = pstats.Stats(prof)
    windows = max([v[1] for (f, _, fn), v in st.stats.items()
                   if fn == "advance" and f.endswith("inproc.py")], default=1)
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"cProfile, inproc, own CPU us per window ({windows} windows), top {top}:")
    for (fname, line, func), (cc, nc, tt, ct, _) in rows:
        where = fname.replace(str(Path(__file__).resolve().parents[1]) + "/", "")
        print(f"  {1e6 * tt / windows:8.1f} own {1e6 * ct / windows:8.1f} cum {nc / windows:6.1f} calls  "
              f"{func} ({where.split('site-packages/')[-1]}:{line})")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--t-stop", type=float, default=2000.0, help="simulated ms")
    ap.add_argument("--repeat", type=int, default=2, help="interleaved rounds (each runs every transport once); the fastest run of each is shown")
    ap.add_argument("--transports", default="inproc,zmq,zmq-balanced",
                    help="comma-separated: inproc, zmq (pipelined when a core per worker is to spare), "
                         "zmq-grouped (one process per core, solvers packed by compute), zmq-balanced "
                         "(zmq.balance: one group per core, the lightest in the coordinator), "
                         "zmq-pipelined, zmq-unpipelined (the scheduler posts the next window before "
                         "writing this one, or not)")
    ap.add_argument("--deployments", type=int, default=3, metavar="ROUNDS",
                    help="interleaved rounds of the deployments table (0: none)")
    ap.add_argument("--detail", action="store_true", help="print every phase's time per window")
    ap.add_argument("--links", action="store_true", help="also time each link's delivery, adapters and push "
                    "(one more inproc run)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also print the N functions with the most own CPU time (one more inproc run, cProfile)")
    ap.add_argument("--cpu-latency-us", type=int, metavar="US",
                    help="hold the CPUs' wake-up latency at US microseconds for the whole benchmark, inproc "
                         "and the floors included (ZmqTransport's cpu_latency_us; needs write access to "
                         "/dev/cpu_dma_latency)")
    args = ap.parse_args()
    from transport import holding_cpu_latency   # benchmarks/transport.py, beside this file
    holding_cpu_latency(args.cpu_latency_us, "benchmarks/multiscale.py", _main, args)


def _main(args) -> None:
    global WRAP_US
    WRAP_US = 1e6 * wrapper_cost_s()
    ex = load_example()
    model = ex.build(scale=args.scale, t_stop_ms=args.t_stop)
    with tempfile.TemporaryDirectory() as tmp:
        # numba caches; and each solver's compute, to pack zmq-grouped's processes by
        with ps.run(model.with_options(t_stop_ms=min(200.0, args.t_stop)), out=f"{tmp}/warm.h5", force=True) as warm:
            global GROUPS
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            busy = warm.compute_s()
            GROUPS = pack(busy, cores)
            BALANCED.update(zmq_mod.balance(busy, cores))
        install(tmp)
        try:
            # interleaved rounds, every transport once per round: on a shared machine the load
            # drifts within minutes, and a ratio taken within a round sees the same load
            best, walls = {}, {}
            for _ in range(args.repeat):
                for tname in args.transports.split(","):
                    r = timed_run(model, f"{tmp}/{tname}.h5", tname, tmp)
                    walls.setdefault(tname, []).append(r["wall"])
                    if tname not in best or r["wall"] < best[tname]["wall"]:
                        best[tname] = r
        finally:
            uninstall()
        table = deploy(model, args.deployments, busy, tmp) if args.deployments else None
    print(f"multiscale_column, scale {args.scale:g}, {args.t_stop:g} ms simulated, {os.cpu_count()} cores, "
          f"fastest of {args.repeat} interleaved rounds\n")
    if "inproc" in best:
        report_inproc(best["inproc"], args.detail)
    for name in ("zmq", "zmq-pipelined", "zmq-unpipelined", "zmq-grouped", "zmq-balanced"):
        if name in best:
            groups = f", processes {' | '.join('+'.join(g) for g in GROUPS)}" if name == "zmq-grouped" else ""
            if name == "zmq-balanced":
                groups = (f", {'+'.join(BALANCED['in_coordinator'])} in the coordinator, workers "
                          f"{' | '.join('+'.join(g) for g in BALANCED['groups'])}")
            print(f"[{name}{', pipelined' if best[name]['pipelined'] else ''}{groups}]")
            report_zmq(best[name], args.detail, zmq_floor_us)
    if table:
        print(table)
    if args.links:
        link_costs(model)
    if args.profile:
        profile(model, args.profile)
    for z in ("zmq", "zmq-grouped", "zmq-balanced"):
        if "inproc" not in best or z not in best:
            continue
        a, b = best["inproc"], best[z]
        print(f"{z} / inproc: wall {b['wall'] / a['wall']:.2f}, window loop {b['loop'] / a['loop']:.2f} "
              f"(goal < 1); CPU {b['cpu'] / a['cpu']:.2f}")
        if args.repeat > 1:
            per_round = sorted(x / i for x, i in zip(walls[z], walls["inproc"]))
            print(f"{z} / inproc wall within each of the {args.repeat} rounds: median "
                  f"{per_round[len(per_round) // 2]:.2f} (from {per_round[0]:.2f} to {per_round[-1]:.2f})")


if __name__ == "__main__":
    main()
