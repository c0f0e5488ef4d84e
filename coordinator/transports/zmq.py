"""The ZeroMQ transport: solvers in worker processes, on this machine or across hosts.

The coordinator binds one ROUTER socket (127.0.0.1 unless told otherwise) and, by default, starts
one worker per solver on this machine (:mod:`polyscale.coordinator.worker`), or one per group of
solvers (``groups``); solvers ``in_coordinator`` run in its own process, through the same worker
session without sockets (:func:`balance` places them all by their compute). Solvers the model
places on a host (``model.place(name, host=...)``) wait for a worker started there by hand
(``polyscale worker --connect tcp://HOST:PORT --host LABEL``), which runs every solver placed on
its label. Each worker receives the model as data, makes the same plan and builds its solvers and
their :class:`Inbox` es, so deliveries (and the run file) are the same bits as ``inproc``.

Per window the coordinator sends each worker ``advance`` with the outputs of the last window that
feed its solvers, and waits for every ``result``: recorded outputs and probe parts (for the run
file) and the outputs that feed couplings (only the channels some coupling reads). Both are
window messages in the wire's compact form: their layouts go once, in ``assign``, and a window
carries only its ticks, each array's row count and the raw arrays (since wire v3 all in one
frame, the arrays inline after the header, unless they are large), which the coordinator checks
and forwards as they came (no per-window names, dicts or signal objects). Window
outputs are routed *through the coordinator*: it has to receive every worker's result anyway
(barrier, recordings, probes), so forwarding the coupled outputs in the next ``advance`` costs
no extra message per window, whereas a direct worker-to-worker route adds one message per
coupled pair. benchmarks/transport.py (part 5) measures both in raw pyzmq: through the
coordinator is faster for small windows (1 KiB per step), direct is faster once a window
carries about a megabyte per coupling, where the extra copy through the coordinator dominates.

Liveness: workers send heartbeats from a thread; the coordinator sends them back while it waits.
A worker whose process ends (any signal), that sends nothing for ``timeout_s``, or that reports
an error stops the run with a SolverError naming the solver, worker pid, host and window; the
others are told to stop and, when the coordinator started them, killed if they do not.
Messages that do not decode (docs/wire-protocol.md) are refused: from a peer that is not a worker
of this run they are dropped and counted (``rejected``); from a worker they fail the run.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from ..cpu_latency import LatencyHold
from ..errors import ProtocolError, SolverError, TransportError
from ..plan import Plan
from ..signals import Samples, Spikes, WindowResult
from ..time import grid_count, grid_start, to_ms
from . import wire

log = logging.getLogger("polyscale.zmq")

LOCAL = "local"
#: the host of the solvers run in the coordinator's own process (``in_coordinator``)
HERE = "(coordinator)"

# The window loop's sends and receives call pyzmq's compiled socket methods with plain integer
# flags: its Python layer (send_multipart / recv_multipart) type-checks every frame and builds
# enum flags for each, which costs more than the system calls for small messages.
_csend = zmq.backend.Socket.send
_crecv = zmq.backend.Socket.recv
_SNDMORE = int(zmq.SNDMORE)
#: frames at least this large (bytes) are sent without copying (pyzmq's own copy threshold)
ZERO_COPY_BYTES = 1 << 16


def send_frames(sock: zmq.Socket, frames: list) -> None:
    """Send ``frames`` (bytes or buffers) as one multipart message; large ones without a copy."""
    last = frames[-1]
    for i in range(len(frames) - 1):
        f = frames[i]
        _csend(sock, f, _SNDMORE, (f.nbytes if type(f) is memoryview else len(f)) < ZERO_COPY_BYTES)
    _csend(sock, last, 0, (last.nbytes if type(last) is memoryview else len(last)) < ZERO_COPY_BYTES)


def recv_frames(sock: zmq.Socket) -> list:
    """The frames (zmq.Frame, not copied) of one message; zmq.Again after the socket's rcvtimeo."""
    f = _crecv(sock, 0, False)
    parts = [f]
    while f.more:  # read from the frame: asking the socket (RCVMORE) costs more
        f = _crecv(sock, 0, False)
        parts.append(f)
    return parts


@dataclass
class _Worker:
    """One worker process as the coordinator sees it."""

    wid: str
    solvers: list[str]
    host: str = LOCAL
    pid: int | None = None
    proc: subprocess.Popen | None = None     # spawned
    forked: bool = False                     # pid is our child by fork
    ident: bytes | None = None
    ready: bool = False
    gone: str | None = None                  # why the process ended, once it has
    reaped: bool = False                     # a local process collected (waitpid / Popen.wait)
    failed: bool = False                     # took for dead or hung: no stop, killed at close
    cpu: int = -1                            # CPU clock ticks used, when last looked at (/proc)
    cpu_seen: float = 0.0                    # when that count last went up
    last_seen: float = 0.0
    # wire v2+: the result layout this worker answers with (decode), what each of its arrays is
    # (_take's program), and the next advance's arrays (filled by the sources' results)
    layouts: dict = field(default_factory=dict)
    # in_coordinator: the worker session run in this process, and the advance posted to it
    session: Any = None
    posted: tuple | None = None
    program: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    filled: int = 0
    n_result: int = 0

    @property
    def solver_set(self) -> frozenset:
        return frozenset(self.solvers)

    def describe(self) -> str:
        names = ", ".join(repr(s) for s in self.solvers)
        if self.session is not None:
            return f"solver {names} (in the coordinator's process, pid {self.pid})"
        return f"solver {names} (worker pid {self.pid} on host {self.host!r})"


def _check_bind(bind: str, keys, insecure: bool) -> str:
    if not isinstance(bind, str) or not bind.startswith("tcp://") or ":" not in bind[6:]:
        raise TransportError(f"zmq transport: bind must look like tcp://ADDRESS:PORT (got {bind!r})")
    addr = bind[6:].rsplit(":", 1)[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(addr).is_loopback
    except ValueError:
        loopback = addr == "localhost"
    if not loopback and keys is None and not insecure:
        raise TransportError(f"zmq transport: binding to {addr} (not loopback) needs CurveZMQ keys "
                             f"(keys=DIR, from `polyscale keys DIR`); insecure=True allows it anyway")
    return bind


def balance(compute_s: Mapping[str, float], processes: int) -> dict:
    """``ZmqTransport`` options placing the solvers on ``processes`` processes of this machine
    by their compute time (s, e.g. ``Run.compute_s()`` of an earlier run): packed into that
    many groups of about equal compute (largest first, each into the least loaded group: LPT,
    within 4/3 of the best split), the lightest group run in the coordinator's own process
    (which also routes and writes), the others in a worker each. Returns ``{"groups": [...],
    "in_coordinator": [...]}`` (groups in the order of their first solver in ``compute_s``)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise TransportError(f"zmq transport: balance needs processes >= 1 (got {processes!r})")
    if not compute_s:
        raise TransportError("zmq transport: balance needs the compute time of at least one solver")
    order = list(compute_s)
    groups: list[list[str]] = [[] for _ in range(min(processes, len(order)))]
    load = [0.0] * len(groups)
    for name in sorted(order, key=lambda n: (-float(compute_s[n]), order.index(n))):
        i = load.index(min(load))
        groups[i].append(name)
        load[i] += float(compute_s[name])
    here = min(range(len(groups)), key=lambda i: (load[i], i))
    rest = [sorted(g, key=order.index) for i, g in enumerate(groups) if i != here]
    rest.sort(key=lambda g: order.index(g[0]))
    return {"groups": rest, "in_coordinator": sorted(groups[here], key=order.index)}


class _Kept:
    """In place of the socket of the worker session run in the coordinator's process: keeps the
    last message it sends (ready, or an error), for the coordinator to read."""

    frames: list = []

    def send_multipart(self, frames: list) -> None:
        self.frames = frames


def _check_groups(groups, what: str = "groups") -> tuple[tuple[str, ...], ...]:
    """``groups`` as a tuple of non-empty, disjoint tuples of names; TransportError naming the
    offending entry otherwise (the names are checked against the plan at start)."""
    if groups is None:
        return ()
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
        raise TransportError(f"zmq transport: {what} must be a list of lists of solver names "
                             f"(got {groups!r})")
    out, seen = [], {}
    for i, g in enumerate(groups):
        if isinstance(g, (str, bytes)) or not isinstance(g, Sequence) or not g \
                or not all(isinstance(n, str) for n in g):
            where = f"{what}[{i}]" if what == "groups" else what
            raise TransportError(f"zmq transport: {where} must be a non-empty list of solver names "
                                 f"(got {g!r})")
        for n in g:
            if n in seen:
                raise TransportError(f"zmq transport: solver {n!r} is in {what}[{seen[n]}] and {what}[{i}]: "
                                     f"a solver runs in one process")
            seen[n] = i
        out.append(tuple(g))
    return tuple(out)


def _close_inherited_fds() -> None:
    """In a forked worker: close every descriptor but stdin/out/err. The parent's sockets, run
    file and any pipe it (or a thread of its caller) holds must not stay open in the worker: a
    pipe held open by a worker would keep its reader waiting for the worker to end."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


class ZmqTransport:
    """Solvers in worker processes, exchanging windows over ZeroMQ.

    Parameters
    ----------
    bind : coordinator address, ``tcp://ADDRESS:PORT`` (PORT ``*`` or 0: any free port);
        default ``tcp://127.0.0.1:*``. A non-loopback address needs ``keys``.
    keys : folder from ``polyscale keys DIR``: CurveZMQ authentication and encryption for every
        peer; peers without an authorized key are refused.
    launch : how solvers without a placed host are started: 'fork' (default on POSIX: a child
        of this process, no import or JIT cost), 'spawn' (``python -m polyscale worker``), or
        'none' (every worker is started by hand).
    place : solver -> host label, added to (and overriding) the model's placement.
    groups : lists of solver names, each run by one local worker process (in the plan's order,
        one after the other within a window); local solvers in no group get a process each.
        On a machine with fewer cores than solvers, as many groups as cores, balanced by the
        solvers' compute (``Run.compute_s()`` of an earlier run, ``polyscale info``), spend less
        on messages and context switches than a process per solver (benchmarks/multiscale.py).
    in_coordinator : solver names run in the coordinator's own process, as a worker would run
        them but without sockets: once the window is posted to the workers, the coordinator
        computes these while they compute theirs (the same code as a worker, the same bits).
        On a machine with few cores this gives the coordinator, otherwise mostly waiting, a
        share of the compute, and spares one worker's messages. The coordinator sends no
        heartbeats while it computes them: a window of theirs must take less than
        ``coordinator_timeout_s``, or the workers take the coordinator for gone.
    heartbeat_s : heartbeat period (s), both ways.
    timeout_s : a worker silent for this long (no heartbeat, no result) is taken for hung (s).
        A solver holding the GIL for longer in one call silences the heartbeat: a local worker
        that is using CPU meanwhile counts as busy (Linux); a remote one looks hung, so raise
        ``timeout_s`` for such solvers.
    window_timeout_s : if set, a worker that has not answered a window after this long is taken
        for hung even if its heartbeat goes on (a solver stuck in a loop or a sleep) (s).
    coordinator_timeout_s : workers exit when the coordinator is silent this long (s).
    join_timeout_s : how long start() waits for workers to join (s).
    max_message_bytes : larger messages are refused (by libzmq, and by the decoder).
    on_listen : called with the bound address once it is known (to start remote workers).
    pipeline : whether the scheduler posts the next window before writing this one (the writer
        then works while the solvers compute). None (default): only when this machine has a
        core to spare for it (more usable cores than local workers); on fewer cores the writer
        would take CPU from the solvers instead (benchmarks/multiscale.py measured it).
    cpu_latency_us : if set, every CPU of this machine is asked to wake within this many
        microseconds while the run lasts (Linux PM QoS, ``/dev/cpu_dma_latency``; 0: idle CPUs
        poll instead of sleeping), which the local workers share: each window's messages then
        wake their processes sooner and warmer (on a 2-core VM, a trivial window 289 -> 127 us;
        coordinator/cpu_latency.py). Idle CPUs spin meanwhile. Needs write access to that file;
        without it a RuntimeWarning says so and the run goes on. Remote workers ask on their
        own machine (``polyscale worker --cpu-latency-us``).
    """

    name = "zmq"  # what the run file's 'transport' attribute says
    #: local workers connect over ipc:// where it exists (False: over the TCP endpoint, as
    #: remote workers do; for comparisons)
    LOCAL_IPC = True

    def __init__(self, bind: str | None = None, *, keys: str | os.PathLike | None = None,
                 launch: str | None = None, place: Mapping[str, str] | None = None,
                 heartbeat_s: float = 0.5, timeout_s: float = 5.0, coordinator_timeout_s: float = 10.0,
                 join_timeout_s: float = 60.0, window_timeout_s: float | None = None,
                 max_message_bytes: int = wire.MAX_MESSAGE_BYTES,
                 insecure: bool = False, on_listen=None, pipeline: bool | None = None,
                 groups: Sequence[Sequence[str]] | None = None, in_coordinator: Sequence[str] | None = None,
                 cpu_latency_us: int | None = None):
        self.bind = _check_bind(bind or "tcp://127.0.0.1:*", keys, insecure)
        self.cpu_latency = (None if cpu_latency_us is None
                            else LatencyHold(cpu_latency_us, what="zmq transport"))
        launch = launch or ("fork" if hasattr(os, "fork") else "spawn")
        if launch not in ("fork", "spawn", "none"):
            raise TransportError(f"zmq transport: launch must be 'fork', 'spawn' or 'none' (got {launch!r})")
        for name, value in (("heartbeat_s", heartbeat_s), ("timeout_s", timeout_s),
                            ("coordinator_timeout_s", coordinator_timeout_s), ("join_timeout_s", join_timeout_s)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise TransportError(f"zmq transport: {name} must be a number of seconds > 0 (got {value!r})")
        if window_timeout_s is not None and not (isinstance(window_timeout_s, (int, float)) and window_timeout_s > 0):
            raise TransportError(f"zmq transport: window_timeout_s must be None or a number of seconds > 0 "
                                 f"(got {window_timeout_s!r})")
        self.window_timeout_s = window_timeout_s
        self.launch = launch
        self.keys = None if keys is None else str(keys)
        self.place = dict(place or {})
        self.groups = _check_groups(groups)
        self.in_coordinator = () if in_coordinator is None else _check_groups([in_coordinator], "in_coordinator")[0]
        self.heartbeat_s, self.timeout_s = float(heartbeat_s), float(timeout_s)
        self.coordinator_timeout_s, self.join_timeout_s = float(coordinator_timeout_s), float(join_timeout_s)
        self.max_message_bytes = int(max_message_bytes)
        self.on_listen = on_listen
        if pipeline not in (None, True, False):
            raise TransportError(f"zmq transport: pipeline must be None, True or False (got {pipeline!r})")
        self.pipeline = pipeline
        self.endpoint: str | None = None
        self.local_endpoint: str | None = None     # where the workers started here connect
        self._ipc_dir: str | None = None
        self.workers: dict[str, _Worker] = {}
        self.by_ident: dict[bytes, _Worker] = {}
        self.rejected: list[str] = []   # what was refused from peers that are not workers of this run
        self.refused_peers: list[str] = []  # failed security handshakes
        self.compute_s: dict[str, float] = {}
        self.ctx = self.sock = self.auth = self.monitor = None
        self.plan: Plan | None = None
        self._last_beat = 0.0
        self._left_at = time.monotonic()
        self._posted = 0            # windows posted
        self._post_order: list[_Worker] = []

    # -- start -------------------------------------------------------------------------------
    def start(self, plan: Plan) -> None:
        self.plan = plan
        if self.cpu_latency is not None:
            self.cpu_latency.hold()     # until close()
        self.compute_s = {n: 0.0 for n in plan.solvers}
        hosts = {n: p.host for n, p in plan.model.placement.items() if p.host}
        hosts.update(self.place)
        unknown = sorted(set(self.place) - set(plan.solvers))
        if unknown:
            raise TransportError(f"zmq transport: place names no solver {unknown} (solvers: {sorted(plan.solvers)})")
        multi = {n: p.ranks for n, p in plan.model.placement.items() if p.ranks > 1}
        if multi:
            raise TransportError(f"zmq transport: runs each solver in one process, but the placement asks "
                                 f"for more: {multi} (ranks); use --transport mpi for solvers spanning ranks")
        grouped = {}
        here = self.in_coordinator
        for i, g in enumerate((*self.groups, here)):
            what = f"groups[{i}]" if i < len(self.groups) else "in_coordinator"
            for name in g:
                if name not in plan.solvers:
                    raise TransportError(f"zmq transport: {what} names no solver {name!r} "
                                         f"(solvers: {sorted(plan.solvers)})")
                if name in hosts:
                    raise TransportError(f"zmq transport: {what} holds solver {name!r}, which is placed on "
                                         f"host {hosts[name]!r}: groups are processes on this machine")
                if name in grouped:
                    raise TransportError(f"zmq transport: solver {name!r} is in groups[{grouped[name]}] and "
                                         f"{what}: a solver runs in one process")
                grouped[name] = i
        for name in plan.solvers:
            if name not in hosts and name not in here:
                if self.launch == "none":
                    raise TransportError(f"zmq transport: solver {name!r} has no host and launch='none'; "
                                         f"place it (model.place({name!r}, host=...)) or run it in_coordinator")
                if name not in grouped:
                    self.workers[f"local-{name}"] = _Worker(f"local-{name}", [name])
        for i in range(len(self.groups)):   # in_coordinator's index, len(groups), is not a process
            # 'local-' + a digit: no solver's name starts with one, so no clash with the above
            wid = f"local-{i}"
            self.workers[wid] = _Worker(wid, [n for n in plan.solvers if grouped.get(n) == i])
        if here:
            self.workers["coordinator"] = _Worker("coordinator", [n for n in plan.solvers if n in here],
                                                  host=HERE, pid=os.getpid(), ready=True)
        remote: dict[str, list[str]] = {}
        for name, h in hosts.items():
            remote.setdefault(h, []).append(name)
        for h, names in remote.items():
            self.workers[f"host:{h}"] = _Worker(f"host:{h}", names, host=h)

        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.maxmsgsize = self.max_message_bytes
        self.sock.router_handover = 1  # a worker reconnecting after a network blip keeps its identity
        if self.keys is not None:
            from zmq.auth.thread import ThreadAuthenticator

            from ..worker import CurveKeys
            curve = CurveKeys.load(self.keys)
            self.auth = ThreadAuthenticator(self.ctx, log=log)
            self.auth.start()
            self.auth.configure_curve(domain="*", location=str(Path(self.keys) / "authorized"))
            curve.as_server(self.sock)
        self.monitor = self.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                                    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        bind = self.bind[:-1] + "*" if self.bind.endswith(":0") else self.bind
        try:
            self.sock.bind(bind)
        except zmq.ZMQError as exc:
            raise TransportError(f"zmq transport: cannot bind {bind}: {exc}") from exc
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.local_endpoint = self._bind_local() if any(w.host == LOCAL for w in self.workers.values()) \
            else self.endpoint
        # every wait is a blocking receive with this timeout (ms): libzmq waits, no Python-level
        # poll per message
        self.sock.rcvtimeo = 100
        if self.on_listen is not None:
            self.on_listen(self.endpoint)
        if any(w.host not in (LOCAL, HERE) for w in self.workers.values()):
            log.warning("polyscale: waiting for workers on %s to join: polyscale worker --connect %s --host LABEL",
                        ", ".join(sorted(remote)), self.endpoint)
        for w in self.workers.values():
            if w.host == LOCAL:
                self._launch(w)
        if "coordinator" in self.workers:   # built while the workers build theirs
            self._start_here(self.workers["coordinator"], model=plan.model.to_dict())
        self._handshake()
        if self.pipeline is None:
            local = sum(1 for w in self.workers.values() if w.host == LOCAL)
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            self.pipeline = cores > local
        self._programs()
        self._left_at = time.monotonic()

    def _bind_local(self) -> str:
        """The endpoint the workers started here connect to: a Unix domain socket (ipc://) in a
        private folder (mode 0700: only this user can connect, which loopback TCP does not
        ensure) where libzmq has them; else the TCP endpoint. A window's round trip over ipc
        skips the kernel's TCP stack: benchmarks/transport.py part 1 prints both."""
        if not self.LOCAL_IPC or os.name != "posix" or not zmq.has("ipc"):
            return self.endpoint
        folder = tempfile.mkdtemp(prefix="polyscale-zmq-")
        path = os.path.join(folder, "coordinator")
        if len(path.encode()) > 100:    # sun_path holds 108 bytes on Linux, 104 on macOS
            os.rmdir(folder)
            return self.endpoint
        try:
            self.sock.bind(f"ipc://{path}")
        except zmq.ZMQError as exc:
            log.warning("polyscale zmq: local workers use %s (ipc://%s: %s)", self.endpoint, path, exc)
            os.rmdir(folder)
            return self.endpoint
        self._ipc_dir = folder
        return f"ipc://{path}"

    def _launch(self, w: _Worker) -> None:
        if self.launch == "fork":
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # child: never return into the caller's code
                code = 1
                try:
                    _close_inherited_fds()
                    from ..worker import serve
                    code = serve(self.local_endpoint, host=LOCAL, keys=self.keys, worker_id=w.wid,
                                 parent_pid=parent, join_timeout_s=self.join_timeout_s)
                except BaseException as exc:  # noqa: BLE001 - report and leave, whatever it was
                    try:
                        print(f"polyscale worker {os.getpid()}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    except BaseException:
                        pass
                finally:
                    os._exit(code)
            w.pid, w.forked = pid, True
        else:
            cmd = [sys.executable, "-m", "polyscale", "worker", "--connect", self.local_endpoint, "--host", LOCAL,
                   "--worker-id", w.wid, "--parent-pid", str(os.getpid()),
                   "--join-timeout", str(self.join_timeout_s)]
            if self.keys is not None:
                cmd += ["--keys", self.keys]
            w.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
            w.pid = w.proc.pid

    def _handshake(self) -> None:
        deadline = time.monotonic() + self.join_timeout_s
        model = self.plan.model.to_dict()
        while not all(w.ready for w in self.workers.values()):
            self._check_processes(None)
            if time.monotonic() > deadline:
                missing = [w for w in self.workers.values() if not w.ready]
                lines = "; ".join(f"{w.describe()}" + ("" if w.host == LOCAL else
                                  f": start `polyscale worker --connect {self.endpoint} --host {w.host}`")
                                  for w in missing)
                raise TransportError(f"zmq transport: workers did not join within {self.join_timeout_s:g} s: {lines}")
            got = self._recv()
            if got is None:
                continue
            w, ident, msg = got
            if msg.type == "hello":
                self._hello(ident, msg, model)
            elif w is None:
                self._reject(ident, f"a {msg.type!r} message from a peer that has not said hello")
            elif msg.type == "ready":
                w.ready = True
            elif msg.type == "error":
                self._raise_error(w, msg)

    def _hello(self, ident: bytes, msg: wire.Message, model: dict) -> None:
        meta = msg.meta
        wid, host, pid = meta.get("worker"), meta.get("host"), meta.get("pid")
        if not isinstance(host, str) or not isinstance(pid, int) or isinstance(pid, bool):
            self._reject(ident, f"hello: meta.host must be a string and meta.pid an integer (got {host!r}, {pid!r})")
            return
        w = self.workers.get(wid) if isinstance(wid, str) and wid.startswith("local-") else None
        if w is not None and w.ident is None and w.host == LOCAL and pid == w.pid:
            pass
        else:
            w = self.workers.get(f"host:{host}")
            if w is None or w.ident is not None:
                placed = sorted({x.host for x in self.workers.values() if x.host not in (LOCAL, HERE)})
                why = (f"no solver is placed on host {host!r} (placed: {', '.join(placed) or 'none'})"
                       if w is None else f"host {host!r} already has a worker (pid {w.pid})")
                self._reject(ident, f"hello from pid {pid} on host {host!r}: {why}")
                self.sock.send_multipart([ident, *wire.encode("error", meta={"message": why})])
                return
            w.pid = pid
        w.ident, w.last_seen = ident, time.monotonic()
        self.by_ident[ident] = w
        self.by_ident[ident + b"!hb"] = w
        self.sock.send_multipart([ident, *wire.encode("assign", meta=self._assign(w, model))])

    def _assign(self, w: _Worker, model: dict) -> dict:
        """The meta of worker ``w``'s ``assign`` (and its result layout, kept to decode with)."""
        from ..worker import advance_layout, result_layout
        adv, res = advance_layout(self.plan, w.solvers)[1], result_layout(self.plan, w.solvers)[1]
        w.layouts = {"result": res}
        return {"model": model, "solvers": w.solvers, "heartbeat_s": self.heartbeat_s,
                "coordinator_timeout_s": self.coordinator_timeout_s,
                "max_message_bytes": self.max_message_bytes,
                "advance_layout": adv.to_wire(), "result_layout": res.to_wire()}

    def _start_here(self, w: _Worker, model: dict) -> None:
        """Build ``in_coordinator``'s solvers in this process: a worker's session, assigned
        through the same message, whose replies (ready or error) are kept, not sent."""
        from ..worker import _Session
        w.session = _Session(wire.decode(wire.encode("assign", meta=self._assign(w, model))), _Kept())
        reply = wire.decode(w.session.sock.frames)
        if reply.type == "error":
            self._raise_error(w, reply)

    def _advance_here(self, w: _Worker, results: dict) -> None:
        """Window ``w.posted`` of the solvers in this process, then filed as a worker's result."""
        t0, t1, data = w.posted
        w.posted = None
        session = w.session
        self._beat()    # the workers hear nothing from here until these solvers are done
        try:
            frames = session.advance(wire.Message("advance", None, t0, t1, data=data))
        except Exception as exc:
            session._error(exc, t0)
            self._raise_error(w, wire.decode(session.sock.frames))
        msg = wire.decode(frames, max_bytes=self.max_message_bytes, layouts=w.layouts)
        try:
            self._take(w, msg, results)
        except ProtocolError as exc:
            raise TransportError(f"{w.describe()} gave a malformed result: {exc}") from exc

    # -- messages ----------------------------------------------------------------------------
    def _reject(self, ident: bytes, why: str) -> None:
        self.rejected.append(why)
        log.warning("polyscale zmq: refused a message from peer %r: %s", ident[:32], why)

    def _recv(self):
        """One decoded message (worker or None, identity, message), or None after 100 ms
        (the socket's receive timeout); refuses (drops and counts) anything malformed from a peer
        that is not a worker."""
        now = time.monotonic()
        if now - self._last_beat >= self.heartbeat_s:
            self._beat()
        try:
            frames = recv_frames(self.sock)
        except zmq.Again:
            return None
        ident = frames[0].bytes
        w = self.by_ident.get(ident)
        if w is not None:
            w.last_seen = time.monotonic()
        try:
            msg = wire.decode(frames[1:], max_bytes=self.max_message_bytes,
                              layouts=None if w is None else w.layouts)
        except ProtocolError as exc:
            if w is None:
                self._reject(ident, str(exc))
                if str(exc).startswith("header.v:"):  # the handshake's version check: tell the peer why
                    self.sock.send_multipart([ident, *wire.encode("error", meta={"message": str(exc)})])
                return None
            raise TransportError(f"{w.describe()} sent a malformed message: {exc}") from exc
        if msg.type == "heartbeat":
            return None
        if w is not None and not ident.endswith(b"!hb") and msg.type == "hello":
            self._reject(ident, "a second hello")
            return None
        return w, ident, msg

    def _security_events(self) -> None:
        from zmq.utils.monitor import recv_monitor_message
        while self.monitor.poll(0):
            ev = recv_monitor_message(self.monitor)
            why = ("CurveZMQ authentication failed (key not authorized)" if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                   else "security handshake failed (wrong or missing CurveZMQ keys, or not ZMTP)")
            self.refused_peers.append(why)
            log.warning("polyscale zmq: refused a peer: %s", why)

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < self.heartbeat_s:
            return
        self._last_beat = now
        if self.monitor.poll(0):
            self._security_events()
        beat = wire.encode("heartbeat")
        for w in self.workers.values():
            if w.ident is not None and w.gone is None:
                self.sock.send_multipart([w.ident + b"!hb", *beat])

    def _check_processes(self, t0: int | None) -> None:
        for w in self.workers.values():
            if w.session is not None:   # this process: an error here raises at once
                continue
            if w.gone is None and w.pid is not None and w.host == LOCAL:
                status = None
                if w.forked:
                    try:
                        pid, st = os.waitpid(w.pid, os.WNOHANG)
                    except ChildProcessError:
                        pid, st = w.pid, 0
                    if pid:
                        status = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
                elif w.proc is not None:
                    status = w.proc.poll()
                if status is not None:
                    w.reaped = True
                    w.gone = (f"was killed by signal {signal.Signals(-status).name}" if status < 0
                              else f"exited with status {status}")
                    raise self._failure(w, w.gone, t0)
            if (t0 is not None and w.ready and w.gone is None
                    and time.monotonic() - w.last_seen > self.timeout_s and not self._busy(w)):
                raise self._failure(w, f"stopped answering (nothing for {self.timeout_s:g} s)", t0)

    def _busy(self, w: _Worker) -> bool:
        """Whether a silent local worker is computing rather than hung: a solver holding the GIL
        (a numba kernel without nogil, a long C call) keeps the heartbeat thread from running,
        but the process then uses CPU. A stopped process (SIGSTOP), or one that has used no CPU
        for ``timeout_s``, is not busy. Linux only (/proc); elsewhere silence is enough."""
        if w.host != LOCAL or w.pid is None:
            return False
        try:
            with open(f"/proc/{w.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            state, cpu = fields[0], int(fields[11]) + int(fields[12])  # utime + stime, clock ticks
        except (OSError, IndexError, ValueError):
            return False
        if state in ("T", "t", "Z", "X"):
            return False
        now = time.monotonic()
        if cpu != w.cpu:
            w.cpu, w.cpu_seen = cpu, now
        return now - w.cpu_seen < self.timeout_s

    def _failure(self, w: _Worker, what: str, t0: int | None) -> SolverError:
        w.failed = True
        when = "while starting" if t0 is None else f"in the window starting at {to_ms(t0):g} ms"
        return SolverError(f"{w.describe()} {what} {when}", solver=w.solvers[0],
                           t_ms=None if t0 is None else to_ms(t0))

    def _raise_error(self, w: _Worker, msg: wire.Message):
        text = msg.meta.get("message")
        solver = msg.solver if msg.solver in (w.solvers or ()) else w.solvers[0]
        t_ms = msg.meta.get("t_ms")
        t_ms = float(t_ms) if isinstance(t_ms, (int, float)) and not isinstance(t_ms, bool) else (
            None if msg.t0 is None else to_ms(msg.t0))
        where = "in the coordinator's process" if w.session is not None else f"worker pid {w.pid} on host {w.host!r}"
        raise SolverError(f"{text} [{where}]", solver=solver, t_ms=t_ms)

    # -- windows -----------------------------------------------------------------------------
    def advance(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        self.post(t0, t1)
        return self.gather(t0, t1)

    def _credit_away(self) -> None:
        # silence counts only while we listen: heartbeats that queued up while the scheduler
        # was writing a window are not read yet, so that time is credited to everyone
        now = time.monotonic()
        away = now - self._left_at
        for w in self.workers.values():
            w.last_seen += away
        self._left_at = now

    def post(self, t0: int, t1: int) -> None:
        """Send every worker window [t0, t1)'s ``advance`` (with the coupled outputs of the last
        window) and return at once; :meth:`gather` collects the results. The scheduler writes the
        previous window in between, while the workers compute."""
        self._credit_away()
        # the busiest workers first (by the compute they reported so far): the window's critical
        # path runs through them, so they should not wait for the others' messages. The order is
        # looked at again every 32 windows, not each (sorting costs more than a trivial window)
        if not self._posted & 31:
            compute = self.compute_s
            self._post_order = sorted(self.workers.values(), key=lambda w: -sum(compute[n] for n in w.solvers))
        self._posted += 1
        for w in self._post_order:
            # the sources' last outputs, all of them (none before the first result)
            if w.filled and w.filled != len(w.pending):
                raise TransportError(f"zmq transport: internal error: {w.filled} of {len(w.pending)} "
                                     f"inputs of {w.describe()} arrived")
            if w.session is not None:   # computed in gather, once the workers have theirs
                w.posted = (t0, t1, list(w.pending) if w.filled else [])
            else:
                send_frames(self.sock, [w.ident, *wire.encode_window("advance", t0, t1, w.pending if w.filled else ())])
            w.filled = 0

    def gather(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        """Wait for every worker's result of the window :meth:`post` sent; return them."""
        results: dict[str, WindowResult] = {}
        waiting = set()
        for w in self.workers.values():
            if w.session is None:
                waiting.add(w.wid)
            else:   # the workers got theirs in post: this runs while they compute
                self._advance_here(w, results)
        self._credit_away()     # after the solvers here: no heartbeat was read meanwhile
        checked = time.monotonic()
        give_up = None if self.window_timeout_s is None else checked + self.window_timeout_s
        while waiting:
            # a dead or silent worker sends nothing, so checking on a quiet socket (and at least
            # every 0.1 s) finds it soon without a system call per message
            now = time.monotonic()
            if now - checked > 0.1:
                self._check_processes(t0)
                checked = now
            got = self._recv()
            if got is None:
                self._check_processes(t0)
                if give_up is not None and time.monotonic() > give_up:
                    w = self.workers[sorted(waiting)[0]]
                    raise self._failure(w, f"did not finish its window within {self.window_timeout_s:g} s "
                                           f"(window_timeout_s)", t0)
                continue
            w, ident, msg = got
            if w is None and msg.type == "hello":
                self._hello(ident, msg, None)  # too late: every host has its worker; says why
                continue
            if w is None:
                self._reject(ident, f"a {msg.type!r} message from a peer that is not a worker of this run")
                continue
            if msg.type == "error":
                self._raise_error(w, msg)
            if msg.type != "result" or w.wid not in waiting:
                continue
            if (msg.t0, msg.t1) != (t0, t1):
                raise TransportError(f"{w.describe()} answered window [{msg.t0}, {msg.t1}) ticks when "
                                     f"asked for [{t0}, {t1})")
            try:
                self._take(w, msg, results)
            except ProtocolError as exc:
                raise TransportError(f"{w.describe()} sent a malformed result: {exc}") from exc
            waiting.discard(w.wid)
        self._left_at = time.monotonic()
        return results

    def _programs(self) -> None:
        """Per worker, once per run: what each array of its result is and where it goes (wire
        v2+, docs/wire-protocol.md), so that a window only walks a list."""
        from ..worker import advance_layout, result_layout
        # where each coupling's arrays sit in its target worker's advance
        at: dict[int, tuple[_Worker, int]] = {}
        for w in self.workers.values():
            links, layout = advance_layout(self.plan, w.solvers)
            w.pending = [None] * len(layout)
            pos = 0
            for lk in links:
                at[lk.index] = (w, pos)
                pos += 2 if lk.source_port.kind == "spikes" else 1
        for w in self.workers.values():
            items, _ = result_layout(self.plan, w.solvers)
            program = []
            for item in items:
                kind, s = item[0], item[1]
                if kind == "rec":
                    r = item[2]
                    port = self.plan.solvers[s].ports[r.port]
                    program.append(("rec", s, r.port, r.kind == "spikes", r.every_ticks or 0, port.period_ticks))
                elif kind == "probe":
                    program.append(("probe", s, item[2].name, item[2].info.part_period))
                else:
                    port = self.plan.solvers[s].ports[item[2]]
                    targets = [at[lk.index] for lk in self.plan.links_from(s) if lk.source.port == item[2]]
                    program.append(("linked", s, item[2], port.kind == "spikes", port.size, port.period_ticks,
                                    targets))
            w.program = program
            w.n_result = len(w.layouts["result"])

    def _take(self, w: _Worker, msg: wire.Message, results: dict[str, WindowResult]) -> None:
        """Check a worker's result (v2+), file its recordings and probe parts under ``results``
        and put its coupled outputs into the next advance of their targets' workers."""
        t0, t1, data = msg.t0, msg.t1, msg.data
        if len(data) != w.n_result:
            raise ProtocolError(f"header.rows: {len(data)} arrays, the result layout has {w.n_result}")
        if len(msg.compute_s) != len(w.solvers):
            raise ProtocolError(f"header.compute_s: {len(msg.compute_s)} values for solvers {w.solvers}")
        compute = self.compute_s
        outputs = {n: {} for n in w.solvers}
        parts = {n: {} for n in w.solvers}
        for n, c in zip(w.solvers, msg.compute_s):
            compute[n] += c
        k = 0
        for step in w.program:
            kind, name = step[0], step[1]
            if kind == "rec":
                _, _, port, spikes, every, period = step
                if spikes:
                    outputs[name][port] = Spikes(data[k], data[k + 1])
                    k += 2
                    continue
                d = data[k]
                k += 1
                # recorded samples: the port's grid in the window, or its ticks that are
                # multiples of ``every``
                want = grid_count(t0, t1, every) if every else (t1 - t0) // period
                if d.shape[0] != want:
                    raise ProtocolError(f"result {name}.{port} (recorded): {d.shape[0]} samples in window "
                                        f"[{t0}, {t1}) ticks, expected {want}")
                outputs[name][port] = (Samples(grid_start(t0, every), every, d) if every
                                       else Samples(t0, period, d))
            elif kind == "probe":
                _, _, probe, period = step
                d = data[k]
                k += 1
                if d.shape[0] != grid_count(t0, t1, period):
                    raise ProtocolError(f"result {name}: part of probe {probe!r} has {d.shape[0]} rows in window "
                                        f"[{t0}, {t1}) ticks, expected {grid_count(t0, t1, period)}")
                parts[name][probe] = d
            else:
                _, _, port, spikes, size, period, targets = step
                # what goes on to another worker is checked here, whoever wrote the worker
                if spikes:
                    ticks, ids = data[k], data[k + 1]
                    if len(ticks) != len(ids):
                        raise ProtocolError(f"linked {name}.{port}: {len(ticks)} ticks but {len(ids)} ids")
                    if len(ticks) and (ticks.min() < t0 or ticks.max() >= t1 or ids.min() < 0 or ids.max() >= size):
                        raise ProtocolError(f"linked {name}.{port}: spikes outside window [{t0}, {t1}) "
                                            f"ticks or channels [0, {size})")
                    for tw, pos in targets:
                        tw.pending[pos] = ticks
                        tw.pending[pos + 1] = ids
                        tw.filled += 2
                    k += 2
                else:
                    d = data[k]
                    if d.shape[0] != (t1 - t0) // period:
                        raise ProtocolError(f"linked {name}.{port}: {d.shape[0]} samples in window [{t0}, {t1}) "
                                            f"ticks every {period}, expected {(t1 - t0) // period}")
                    for tw, pos in targets:
                        tw.pending[pos] = d
                        tw.filled += 1
                    k += 1
        for n in w.solvers:
            results[n] = WindowResult(outputs[n], parts[n])

    # -- close -------------------------------------------------------------------------------
    def close(self) -> None:
        """Tell every worker to stop, wait briefly, kill the local ones that did not; idempotent."""
        if self.cpu_latency is not None:
            self.cpu_latency.release()
        if self.sock is None:
            return
        for w in self.workers.values():
            if w.session is not None:
                w.session.close()
        stop = wire.encode("stop")
        for w in self.workers.values():
            if w.ident is not None and not w.failed:
                try:
                    self.sock.send_multipart([w.ident, *stop])
                except zmq.ZMQError:
                    pass
        # a worker answers 'stop' with 'bye' at once unless it is stuck; one that said bye is
        # closing down (an interpreter's exit can take seconds on a loaded machine), so it gets
        # longer before it is killed than one that said nothing
        start = time.monotonic()
        answer_by, exit_by = start + max(2.0, 2 * self.heartbeat_s), start + 15.0
        local = [w for w in self.workers.values() if w.host == LOCAL and w.pid is not None]
        for w in local:
            # a dead or hung worker will not answer 'stop', nor one that never joined (the run
            # failed while starting) hear it: no point in waiting
            if (w.failed or w.ident is None) and not self._reap(w):
                self._kill(w)
        bye: set[str] = set()
        remote = {w.wid for w in self.workers.values() if w.host != LOCAL and w.ident is not None and not w.failed}

        def waiting() -> bool:  # local processes not ended, or remote workers not yet gone with bye
            return (any(not self._reap(w) for w in local)
                    or (bool(remote - bye) and time.monotonic() < answer_by))
        while waiting():
            now = time.monotonic()
            late = [w for w in local if not w.reaped and (now > exit_by or (now > answer_by and w.wid not in bye))]
            for w in late:
                self._kill(w)
            if self.sock.poll(20):
                frames = self.sock.recv_multipart()
                w = self.by_ident.get(frames[0])
                if w is not None and not frames[0].endswith(b"!hb"):
                    bye.add(w.wid)
        self.sock.close(0)
        if self.monitor is not None:
            self.monitor.close(0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()
        self.sock = self.ctx = self.monitor = self.auth = None
        if self._ipc_dir is not None:
            shutil.rmtree(self._ipc_dir, ignore_errors=True)
            self._ipc_dir = None

    def _kill(self, w: _Worker) -> None:
        try:
            os.kill(w.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap(w, block=True)

    def _reap(self, w: _Worker, block: bool = False) -> bool:
        """Whether the local worker's process has ended (collecting it if so)."""
        if w.reaped:
            return True
        if w.forked:
            try:
                pid, _ = os.waitpid(w.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                pid = w.pid
            w.reaped = bool(pid)
        else:
            if block:
                w.proc.wait()
            w.reaped = w.proc.poll() is not None
        if w.reaped:
            w.gone = w.gone or "stopped"
        return w.reaped


__all__ = ["ZmqTransport", "balance"]
