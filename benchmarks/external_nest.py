"""NEST under polyscale: the coupling overhead of NestNetwork against the same network run alone
in NEST, for the same simulated time.

Model: examples/brunel_nest.py's Brunel network (examples/brunel.py's, NEST's
brunel_delta_nest with V_reset 10 mV) at ``--scale`` (default 0.1: 1250 neurons), built in NEST
by ``brunel_nest.nest_brunel`` from the PointNetwork spec, dt 0.1 ms, one thread, every spike
recorded. NEST runs alone with one fixed seed; under polyscale NestNetwork takes its rng_seed
from the run seed (split by solver name), another realisation of the same network (the spike
counts differ by ~0.1%: the "spikes" column).

* alone: ``nest.Simulate(T)`` after the build, spike recorders per population, events read once
  at the end;
* alone-windowed: the same, advanced by ``nest.Run(window)`` between one Prepare and one
  Cleanup: NEST's own cost of stopping every window, the floor of any co-simulation at that
  window (spikes read once at the end);
* by-hand: what a user coupling NEST by hand pays at that window: the same Run(window) pieces,
  and after each the new spikes read as NestNetwork reads them (one recorder of both
  populations writing NEST's ascii file; the bytes added since the last window parsed into
  ticks and node ids by the same numba pass); the baseline of "vs by hand";
* inproc / zmq: ``ps.run`` of a model holding only the NestNetwork (``window_ms``, default 2 ms,
  the exchange interval of a coupled run), recording both populations' spikes (no run file);
  on zmq NEST runs in a worker process and every window's spikes cross a socket (below the
  table, the floor that puts under the zmq row: by hand's overhead plus the CPU of ZeroMQ's own
  exchange once a window, benchmarks/transport.py's raw loop measured in the same run);
* inproc+input: as inproc, with the E population's ``rate_in`` fed every step from a polyscale
  LinearSystem (0 Hz: the same dynamics, the cost of setting NEST's generator each window),
  its connection delay 1.5 ms (the network's: NEST's min_delay, so its slices, unchanged).

The window. Nothing in these models sets it: with only the NestNetwork (or its input fed with
a delay of window + lead) polyscale would pick 10 ms ("nothing coupled"); ``window_ms`` (2 ms by
default) stands for the exchange interval a coupled run would have (examples/brunel_nest.py's
couplings of 2 ms delay, less NestNetwork's 0.2 ms input lead, allow up to 1.8 ms; it runs at
1 ms). "alone" is the issue's reference, the same network in NEST for the same simulated time,
in one Simulate; alone-windowed is what stopping every window costs NEST itself (2 ms windows
cut NEST's 1.5 ms min_delay slices: more, shorter slices). Every fixed per-window cost
(NEST's Run; the first Python after it, which finds cold caches; polyscale's Python) scales
with 1 / window.

polyscale's time is the window loop, from the end of the first window to the end of the last,
scaled to all windows (the first carries the build and NEST's Prepare). The measure is CPU
seconds ("sim_s" in --json; on zmq those of the coordinator and its worker processes, read from
/proc), which a shared machine disturbs less than wall time ("wall_s", also shown). Each
variant runs in a fresh subprocess (one NEST kernel per process), ``--repeat`` times; the table
shows the minimum, and the overhead relative to alone. On a shared machine take the ratio, or
better the last lines: on inproc, the CPU time inside ``nest.Run`` against the whole loop, both
measured in the same process, and "interleaved": alone, inproc and inproc+input run in turn in
one process, ``--rounds`` times, with the median of each round's ratio (runs seconds apart see
the same load; a median ignores a round that a burst of load hit).

    OMP_NUM_THREADS=1 python benchmarks/external_nest.py [--t-ms 2000] [--scale 0.1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))
VARIANTS = ("alone", "alone-windowed", "by-hand", "inproc", "zmq", "inproc+input")
SEED = 12345
NEST_SEED = 123457
# CPU seconds inside nest.Run; in NestNetworkSolver.advance, its spike reads, Cleanup+Prepare
nest_cpu = [0.0]
adapter_cpu = [0.0, 0.0, 0.0]
_timed = [False]


def cpu_s() -> float:
    """CPU seconds of this process and its child processes that are alive now (the zmq
    workers), from /proc (Linux); this process's alone elsewhere."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    try:
        kids = set()
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as f:
                kids.update(f.read().split())
        for pid in kids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick     # utime, stime
    except OSError:
        pass
    return total


def run_alone(t_ms: float, scale: float, window_ms: float | None = None, by_hand: bool = False) -> dict:
    os.environ.setdefault("PYNEST_QUIET", "1")
    import brunel_nest
    import nest
    nest.verbosity = nest.VerbosityLevel.ERROR
    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": 1, "rng_seed": NEST_SEED})
    pops = brunel_nest.nest_brunel(brunel_nest.brunel_spec(scale).to_dict())
    recs = []
    if by_hand:
        from polyscale.adapters.nest import spike_file_folder
        # where NestNetwork writes its spike files (a RAM folder where there is one)
        tmp = tempfile.mkdtemp(prefix="polyscale-bench-", dir=spike_file_folder())
        r = nest.Create("spike_recorder", params={"record_to": "ascii", "time_in_steps": True,
                                                  "precision": 6, "label": f"{tmp}/spikes"})
        for p in pops.values():
            nest.Connect(p, r)
        recs.append(r)
        import numpy as np

        from polyscale.adapters.nest import _parse_events
        _parse_events(np.zeros(0, np.uint8), 100_000)     # numba's compile or cache load
    else:
        for p in pops.values():
            r = nest.Create("spike_recorder")
            nest.Connect(p, r)
            recs.append(r)
    t1, c1 = time.perf_counter(), time.process_time()
    n = 0
    if window_ms is None:
        nest.Simulate(t_ms)
    elif not by_hand:
        nest.Prepare()
        for _ in range(int(round(t_ms / window_ms))):
            nest.Run(window_ms)
        nest.Cleanup()
    else:
        # the spike file read as NestNetwork reads it: the new bytes, parsed by the same pass
        windows = int(round(t_ms / window_ms))
        nest.Prepare()
        (f,) = [open(name, "rb") for name in recs[0].get("filenames")]   # noqa: SIM115
        for _ in range(windows):
            nest.Run(window_ms)
            ticks, senders = _parse_events(np.frombuffer(f.read(), np.uint8), 100_000)
            n += len(ticks)
        nest.Cleanup()
        f.close()
        shutil.rmtree(tmp)
    if not by_hand:
        n = sum(len(r.get("events")["times"]) for r in recs)
    t2, c2 = time.perf_counter(), time.process_time()
    return {"build_s": t1 - t0, "sim_s": c2 - c1, "wall_s": t2 - t1, "spikes": n}


def run_polyscale(t_ms: float, scale: float, transport: str, window_ms: float, rate_input: bool) -> dict:
    import brunel_nest

    import polyscale as ps
    from polyscale.adapters import Affine
    from polyscale.adapters.nest import NestNetwork
    spec = brunel_nest.brunel_spec(scale)
    m = ps.Model(seed=SEED, t_stop_ms=t_ms, window_ms=window_ms)
    m.solver("net", NestNetwork(builder=f"{brunel_nest.__file__}:nest_brunel", params={"spec": spec.to_dict()},
                                populations={p.name: p.size for p in spec.populations},
                                inputs=("E.rate_in",) if rate_input else (),
                                # the network's own delay (1.5 ms) keeps NEST's min_delay
                                input_delay_ms=1.5))
    if rate_input:
        m.solver("src", ps.solvers.LinearSystem(a=((0.0,),), x0=(0.0,)))
        # NestNetwork takes its inputs input_lead_ms() ahead: the delay covers window + lead
        m.couple("src.x", "net.E.rate_in", delay_ms=window_ms + m.solvers["net"].input_lead_ms(),
                 via=[Affine(units="Hz", produces="rate")])
    m.record("net.E.spikes")
    m.record("net.I.spikes")
    nest_cpu[0] = adapter_cpu[0] = adapter_cpu[1] = adapter_cpu[2] = 0.0
    if transport == "inproc" and not _timed[0]:     # (once per process: interleaved runs)
        _timed[0] = True
        # NEST's own share of the loop, measured in the same process (robust to machine load)
        import polyscale.adapters.nest as pnest
        real_import = pnest.import_nest

        class TimedNest:
            """The nest module, with the CPU time spent in Run counted."""
            def __init__(self, nest):
                self._nest = nest

            def __getattr__(self, name):
                return getattr(self._nest, name)

            def Run(self, t):   # noqa: N802 (NEST's name)
                c = time.process_time()
                self._nest.Run(t)
                nest_cpu[0] += time.process_time() - c

            def Cleanup(self):  # noqa: N802 (emptying the recorder: Cleanup, n_events, Prepare)
                c = time.process_time()
                self._nest.Cleanup()
                adapter_cpu[2] += time.process_time() - c

            def Prepare(self):  # noqa: N802
                c = time.process_time()
                self._nest.Prepare()
                adapter_cpu[2] += time.process_time() - c
        pnest.import_nest = lambda: TimedNest(real_import())
        real_advance, real_read = pnest.NestNetworkSolver.advance, pnest.NestNetworkSolver._read_new

        def advance(self, t0, t1, inputs):
            c = time.process_time()
            out = real_advance(self, t0, t1, inputs)
            adapter_cpu[0] += time.process_time() - c
            return out

        def read_new(self, t1):
            # the spike read, less any emptying inside it (counted as emptying)
            c, e = time.process_time(), adapter_cpu[2]
            out = real_read(self, t1)
            adapter_cpu[1] += time.process_time() - c - (adapter_cpu[2] - e)
            return out
        pnest.NestNetworkSolver.advance, pnest.NestNetworkSolver._read_new = advance, read_new
    marks, windows = [], [0]

    def mark(done, stop, wall):
        # CPU read (from /proc, which costs ~0.1 ms) only after the first and the last window
        windows[0] += 1
        if not marks:   # the per-part counters, as the loop's time, from the end of window 1
            nest_cpu[0] = adapter_cpu[0] = adapter_cpu[1] = adapter_cpu[2] = 0.0
        if not marks or done >= stop:
            marks.append((time.perf_counter(), cpu_s()))
    t0 = time.perf_counter()
    run = ps.run(m, transport=transport, progress=mark)
    t1 = time.perf_counter()
    n = sum(len(run.spikes("net", p).times) for p in ("E", "I"))
    # from the end of the first window (which carries the build and NEST's Prepare) to the end
    # of the last, scaled to all windows
    k = windows[0] / max(windows[0] - 1, 1)
    return {"total_s": t1 - t0, "sim_s": (marks[-1][1] - marks[0][1]) * k,
            "wall_s": (marks[-1][0] - marks[0][0]) * k,
            "nest_run_s": nest_cpu[0] if transport == "inproc" else None,
            "advance_s": adapter_cpu[0] if transport == "inproc" else None,
            "read_s": adapter_cpu[1] if transport == "inproc" else None,
            "empty_s": adapter_cpu[2] if transport == "inproc" else None,
            "loop_s": marks[-1][1] - marks[0][1], "spikes": n, "windows": windows[0]}


def child(variant: str, args) -> None:
    if variant == "interleaved":
        # alone, inproc and inproc+input in turn in one process, --rounds times: the three of a
        # round run within seconds of each other, under the same load, which rows run in
        # separate processes at different moments are not. Each round's ratios pair runs of
        # that round; their median is robust to a burst of load in one round
        alone, poly, fed = [], [], []
        for _ in range(args.rounds):
            alone.append(run_alone(args.t_ms, args.scale)["sim_s"])
            poly.append(run_polyscale(args.t_ms, args.scale, "inproc", args.window_ms, False)["sim_s"])
            fed.append(run_polyscale(args.t_ms, args.scale, "inproc", args.window_ms, True)["sim_s"])
        print("RESULT " + json.dumps({"alone_s": min(alone), "inproc_s": min(poly), "input_s": min(fed),
                                      "inproc_ratios": [p / a for p, a in zip(poly, alone)],
                                      "input_ratios": [f / a for f, a in zip(fed, alone)]}))
        return
    if variant.startswith("alone"):
        out = run_alone(args.t_ms, args.scale, None if variant == "alone" else args.window_ms)
    elif variant == "by-hand":
        out = run_alone(args.t_ms, args.scale, args.window_ms, by_hand=True)
    else:
        out = run_polyscale(args.t_ms, args.scale, "zmq" if variant == "zmq" else "inproc",
                            args.window_ms, variant.endswith("input"))
    print("RESULT " + json.dumps(out))


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else 0.5 * (xs[m - 1] + xs[m])


def measure(variant: str, args) -> dict:
    best = None
    for _ in range(1 if variant == "interleaved" else args.repeat):
        p = subprocess.run([sys.executable, __file__, "--child", variant, "--t-ms", str(args.t_ms),
                            "--scale", str(args.scale), "--window-ms", str(args.window_ms),
                            "--repeat", str(args.repeat), "--rounds", str(args.rounds)],
                           capture_output=True, text=True, check=False)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if p.returncode or line is None:
            raise RuntimeError(f"{variant} failed:\n{p.stderr[-3000:]}")
        r = json.loads(line[7:])
        if best is None or r.get("sim_s", 0.0) < best["sim_s"]:
            best = r
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t-ms", type=float, default=2000.0, help="simulated time (ms)")
    ap.add_argument("--scale", type=float, default=0.1, help="Brunel scale (1: 12,500 neurons)")
    ap.add_argument("--window-ms", type=float, default=2.0, help="polyscale's window (ms)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5, help="rounds of the interleaved measure (alone, "
                    "inproc and inproc+input in turn in one process)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--cpu-latency-us", type=int, metavar="US",
                    help="hold the CPUs' wake-up latency at US microseconds for the whole benchmark, every "
                         "variant included (ZmqTransport's cpu_latency_us; needs write access to "
                         "/dev/cpu_dma_latency)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args)
        return
    from transport import holding_cpu_latency   # benchmarks/transport.py, beside this file
    holding_cpu_latency(args.cpu_latency_us, "benchmarks/external_nest.py", _main, args)


def _main(args) -> None:
    print(f"NEST, Brunel scale {args.scale:g}, dt 0.1 ms, one thread, {args.t_ms:g} ms simulated, "
          f"window {args.window_ms:g} ms, best of {args.repeat}")
    rows = {v: measure(v, args) for v in VARIANTS}
    base, hand = rows["alone"]["sim_s"], rows["by-hand"]["sim_s"]
    wbase = rows["alone"]["wall_s"]
    print(f"{'variant':<16}{'CPU s':>8}{'vs Simulate':>13}{'vs by hand':>12}{'wall s':>8}"
          f"{'vs Simulate':>13}{'spikes':>9}")
    for v, r in rows.items():
        print(f"{v:<16}{r['sim_s']:>8.3f}{100 * (r['sim_s'] / base - 1):>12.1f}%"
              f"{100 * (r['sim_s'] / hand - 1):>11.1f}%{r['wall_s']:>8.3f}"
              f"{100 * (r['wall_s'] / wbase - 1):>12.1f}%{r['spikes']:>9}")
    windows = int(round(args.t_ms / args.window_ms))
    print(f"per window ({args.window_ms:g} ms), CPU ms: Simulate {1e3 * base / windows:.3f}, by hand "
          f"{1e3 * hand / windows:.3f}")
    # on zmq NEST's spikes cross a socket every window: ZeroMQ's own exchange is a floor that
    # no code of polyscale's can go below (benchmarks/transport.py's raw loop, measured now)
    from transport import raw_step
    raw_cpu = min(raw_step(1, 4000, "ipc")[1] for _ in range(3))
    print(f"zmq floor: the raw pyzmq exchange with one worker over ipc (1 KiB each way) costs "
          f"{raw_cpu:.0f} us of CPU a step, {100 * raw_cpu * 1e-6 * windows / base:.1f}% of Simulate; with "
          f"by hand's {100 * (hand / base - 1):.1f}%, the zmq row cannot go below "
          f"{100 * ((hand + raw_cpu * 1e-6 * windows) / base - 1):.1f}%")
    for v, r in rows.items():
        if r.get("nest_run_s"):
            loop, run, adv, read, empty = (r["loop_s"], r["nest_run_s"], r["advance_s"], r["read_s"],
                                           r["empty_s"])
            w = r["windows"] - 1
            print(f"{v}: per window, CPU ms: loop {1e3 * loop / w:.3f} = nest.Run {1e3 * run / w:.3f} "
                  f"+ spike read {1e3 * read / w:.3f} + emptying {1e3 * empty / w:.3f} + rest of the adapter "
                  f"{1e3 * (adv - run - read - empty) / w:.3f}"
                  f" + coordinator {1e3 * (loop - adv) / w:.3f} (adapter + coordinator "
                  f"{100 * (loop / run - 1):.1f}% on top of nest.Run)")
    inter = measure("interleaved", args)
    print(f"interleaved in one process, {args.rounds} rounds of Simulate, inproc, inproc+input: best "
          f"Simulate {inter['alone_s']:.3f} CPU s, inproc {inter['inproc_s']:.3f} "
          f"({100 * (inter['inproc_s'] / inter['alone_s'] - 1):.1f}%), inproc+input {inter['input_s']:.3f} "
          f"({100 * (inter['input_s'] / inter['alone_s'] - 1):.1f}%)")
    for key, label in (("inproc_ratios", "inproc"), ("input_ratios", "inproc+input")):
        rs = sorted(inter[key])
        print(f"  {label} over Simulate within each round: median {100 * (_median(rs) - 1):.1f}% "
              f"(from {100 * (rs[0] - 1):.1f}% to {100 * (rs[-1] - 1):.1f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps({"t_ms": args.t_ms, "rows": rows, "interleaved": inter},
                                              indent=1))


if __name__ == "__main__":
    main()
