"""The command line: ``polyscale run | check | info | plot | worker | keys``.

The only place that turns polyscale errors into exit codes: 0 done, 1 the run failed (the run
file says so and keeps every complete window), 2 bad input (config, model, run-file path),
130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from numba.core import event

from . import __version__
from .coordinator.config import load_model, parse_params
from .coordinator.errors import ConfigError, ModelError, PolyscaleError, RunFileError
from .coordinator.plan import make_plan
from .coordinator.runfile import load
from .coordinator.scheduler import run as run_model
from .coordinator.time import TICKS_PER_MS
from .coordinator.transports import TRANSPORTS


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="polyscale", description="Multiscale co-simulation of brain models.")
    ap.add_argument("--version", action="version", version=f"polyscale {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(p):
        p.add_argument("config", help="Python config file defining `model` or `build(**params)`")
        p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="parameter for build(); value parsed as a Python literal (repeatable)")
        p.add_argument("--t-stop", type=float, metavar="MS", help="override the stop time (ms)")
        p.add_argument("--seed", type=int, help="override the run seed")

    r = sub.add_parser("run", help="run a model and write its run file")
    model_args(r)
    r.add_argument("--out", "-o", metavar="RUN.h5", help="run file (default: CONFIG name + .h5)")
    r.add_argument("--transport", default="inproc", choices=sorted(TRANSPORTS),
                   help="where solvers run (default: inproc)")
    r.add_argument("--force", action="store_true", help="overwrite an existing run file")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    z = r.add_argument_group("zmq transport")
    z.add_argument("--bind", metavar="tcp://ADDRESS:PORT",
                   help="address workers connect to (default tcp://127.0.0.1:*); not loopback needs --keys")
    z.add_argument("--keys", metavar="DIR", help="CurveZMQ keys from `polyscale keys DIR`")
    z.add_argument("--place", action="append", default=[], metavar="SOLVER=HOST",
                   help="run SOLVER on the worker started with --host HOST (repeatable)")
    z.add_argument("--group", action="append", default=[], metavar="SOLVER,SOLVER,...",
                   help="run these solvers in one worker process on this machine (repeatable; the "
                        "others get a process each); balance groups by `polyscale info`'s compute")
    z.add_argument("--in-coordinator", metavar="SOLVER,SOLVER,...",
                   help="run these solvers in the coordinator's own process, while the workers compute")
    z.add_argument("--balance", metavar="RUN.h5",
                   help="place the solvers on this machine's cores by their compute time in an earlier "
                        "run file: groups in workers, the lightest in the coordinator")
    z.add_argument("--cpu-latency-us", type=int, metavar="US",
                   help="ask this machine's CPUs to wake within US microseconds while the run lasts (0: "
                        "idle CPUs poll; each window's messages then wake the processes sooner; Linux, "
                        "needs write access to /dev/cpu_dma_latency)")

    c = sub.add_parser("check", help="build and validate a model without running it; print the plan")
    model_args(c)

    i = sub.add_parser("info", help="describe a run file")
    i.add_argument("runfile", help="run file (.h5)")

    pl = sub.add_parser("plot", help="draw a multimodal figure of a run file (needs the 'plot' extra)")
    pl.add_argument("runfile", help="run file (.h5)")
    pl.add_argument("--out", "-o", metavar="FIG.png|pdf", help="figure file (default: RUNFILE name + .png)")
    pl.add_argument("--t0", type=float, metavar="MS", help="start of the time range (ms)")
    pl.add_argument("--t1", type=float, metavar="MS", help="end of the time range (ms)")

    from .coordinator import worker
    w = sub.add_parser("worker", help="join a zmq run: run the solvers placed on this host")
    worker.add_arguments(w)

    k = sub.add_parser("keys", help="generate CurveZMQ keys for zmq runs across hosts")
    k.add_argument("folder", help="folder to create (coordinator and worker key pairs)")
    return ap


class _ProgressBar:
    """Simulated time, wall time and rate on one terminal line; nothing when not a terminal."""

    def __init__(self, stream):
        self.stream = stream
        self.last = 0.0

    def __call__(self, t_done: int, t_stop: int, wall_s: float) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and t_done < t_stop:
            return
        self.last = now
        frac = t_done / t_stop
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        sim_ms = t_done / TICKS_PER_MS
        rate = sim_ms / wall_s if wall_s > 0 else float("inf")
        self.stream.write(f"\r[{bar}] {100 * frac:5.1f}%  {sim_ms:.1f}/{t_stop / TICKS_PER_MS:.1f} ms  "
                          f"wall {wall_s:.1f} s  {rate:.3g} ms/s ")
        if t_done >= t_stop:
            self.stream.write("\n")
        self.stream.flush()


class _CompileNotice(event.Listener):
    """One line on the terminal when numba has been compiling for ``delay_s`` (a first run on
    this machine compiles each kernel for seconds to tens of seconds; later runs load them from
    the cache in milliseconds), so that a silent start is not taken for a hang. A context
    manager: listens to numba's compile events while it is open."""

    def __init__(self, stream, delay_s: float = 2.0):
        self.stream, self.delay = stream, delay_s
        self.lock = threading.Lock()
        self.depth = 0
        self.timer: threading.Timer | None = None
        self.shown = False
        self.pid = os.getpid()      # a forked worker inherits the listener; only we print

    def _show(self) -> None:
        with self.lock:
            if self.shown or self.depth == 0:
                return
            self.shown = True
        self.stream.write("\rpolyscale: compiling the model's kernels (the first run on this "
                          "machine; numba caches them for every later run)\n")
        self.stream.flush()

    def on_start(self, event) -> None:
        if os.getpid() != self.pid:
            return
        with self.lock:
            self.depth += 1
            if self.depth == 1 and not self.shown:
                self.timer = threading.Timer(self.delay, self._show)
                self.timer.daemon = True
                self.timer.start()

    def on_end(self, event) -> None:
        if os.getpid() != self.pid:
            return
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def __enter__(self) -> "_CompileNotice":
        event.register("numba:compile", self)
        return self

    def __exit__(self, *exc) -> None:
        event.unregister("numba:compile", self)
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None


def _model(args):
    model = load_model(args.config, parse_params(args.param))
    if args.t_stop is not None or args.seed is not None:
        model = model.with_options(seed=args.seed, t_stop_ms=args.t_stop)
    return model


def _place(text: str) -> tuple[str, str]:
    name, sep, host = text.partition("=")
    if not sep or not name or not host:
        raise ModelError(f"--place must look like SOLVER=HOST (got {text!r})")
    return name, host


def _group(text: str, option: str = "--group") -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ModelError(f"{option} must look like SOLVER,SOLVER,... (got {text!r})")
    return names


def _balance(path: str, model, place: dict) -> tuple[list[list[str]], list[str]]:
    """--balance: (groups, in_coordinator) for the model's solvers not placed on a host, from
    the compute times in the run file at ``path``, over this process's usable cores."""
    from .coordinator.transports.zmq import balance
    with load(path) as r:
        busy = r.compute_s()
    hosts = {n for n, p in model.placement.items() if p.host} | set(place)
    local = [n for n in model.solvers if n not in hosts]
    missing = [n for n in local if n not in busy]
    if missing:
        raise ModelError(f"--balance: run file {path!r} has no compute time for solver(s) {missing} "
                         f"(it has: {sorted(busy) or 'none'}); run this model once (inproc) and give its run file")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    options = balance({n: busy[n] for n in local}, cores)
    return options["groups"], options["in_coordinator"]


def _mpi_world_size() -> int:
    """Ranks of the MPI job this process belongs to, from the launcher's environment (MPICH/Hydra,
    Open MPI, Slurm), without importing MPI; 1 outside a job."""
    import os
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            continue
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    err = sys.stderr
    try:
        if args.command == "check":
            plan = make_plan(_model(args))
            print(plan.describe())
            print("ok: the model is valid")
            return 0
        if args.command == "info":
            with load(args.runfile) as r:
                print(r.summary())
            return 0
        if args.command == "plot":
            from .plot import plot
            print(f"wrote {plot(args.runfile, args.out, t0_ms=args.t0, t1_ms=args.t1)}")
            return 0
        if args.command == "worker":
            from .coordinator.worker import run_from_args
            return run_from_args(args)
        if args.command == "keys":
            from .coordinator.worker import generate_keys
            try:
                folder = generate_keys(args.folder)
            except PolyscaleError as exc:
                print(f"polyscale: error: {exc}", file=err)
                return 2
            print(f"wrote CurveZMQ keys to {folder}: keep coordinator.key_secret on the coordinator's "
                  f"host; copy coordinator.key, worker.key and worker.key_secret to the worker hosts")
            return 0
        # run
        ranks = _mpi_world_size()
        if ranks > 1 and args.transport != "mpi":
            raise ModelError(f"this process is one of {ranks} MPI ranks (started by mpiexec or srun), "
                             f"but --transport is {args.transport!r}: every rank would run the whole "
                             f"model and write the same file; add --transport mpi")
        model = _model(args)
        out = args.out or (Path(args.config).stem + ".h5")
        bar = None if args.quiet or not err.isatty() else _ProgressBar(err)
        start = time.perf_counter()
        transport = args.transport
        if (args.bind or args.keys or args.place or args.group or args.in_coordinator or args.balance
                or args.cpu_latency_us is not None):
            if transport != "zmq":
                raise ModelError("--bind, --keys, --place, --group, --in-coordinator, --balance and "
                                 "--cpu-latency-us are options of --transport zmq")
            place = dict(_place(p) for p in args.place)
            groups = [_group(g) for g in args.group] or None
            here = None if args.in_coordinator is None else _group(args.in_coordinator, "--in-coordinator")
            if args.balance:
                if groups or here:
                    raise ModelError("--balance places every local solver: give it without --group and "
                                     "--in-coordinator")
                groups, here = _balance(args.balance, model, place)
            transport = TRANSPORTS["zmq"](bind=args.bind, keys=args.keys, place=place, groups=groups,
                                          in_coordinator=here, cpu_latency_us=args.cpu_latency_us)
        if bar is None:
            run = run_model(model, out, transport=transport, force=args.force, progress=bar)
        else:
            with _CompileNotice(err):
                run = run_model(model, out, transport=transport, force=args.force, progress=bar)
        if run is None:  # an mpi rank other than 0: rank 0 wrote the file and reports
            return 0
        with run as r:
            wall = time.perf_counter() - start
            sim = r.attrs["t_done_ms"]
            print(f"wrote {out}: {sim:g} ms simulated in {wall:.2f} s wall "
                  f"({r.attrs['n_windows']} windows, status {r.status})")
        return 0
    except (ConfigError, ModelError, RunFileError) as exc:
        print(f"polyscale: error: {exc}", file=err)
        return 2
    except PolyscaleError as exc:
        print(f"polyscale: run failed: {type(exc).__name__}: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("\npolyscale: interrupted; the run file keeps every complete window", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
