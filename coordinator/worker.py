"""A worker of the ``zmq`` transport: runs some of a model's solvers in this process.

Started by the coordinator on this machine (forked, or ``python -m polyscale worker``), or by hand
on another host (``polyscale worker --connect tcp://HOST:PORT --host LABEL --keys DIR``). It says
hello, receives the model as plain data (msgpack) with the names of the solvers it runs, builds
them exactly as the inproc transport does (same plan, same seeds, same :class:`Inbox`), and then
answers one ``advance`` per window until ``stop``. docs/wire-protocol.md describes the messages.

Liveness: a thread sends a heartbeat every ``heartbeat_s`` on its own socket and exits the
process when the coordinator has been silent for ``coordinator_timeout_s`` (or, for a worker the
coordinator started, as soon as the coordinator process is gone), so a dead coordinator never
leaves workers behind.
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

from .cpu_latency import LatencyHold
from .errors import PolyscaleError, TransportError
from .model import Model
from .plan import make_plan
from .routing import Inbox
from .signals import Spikes
from .solver import SolverRunner, build_solver
from .transports import wire


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ key pairs as written by ``polyscale keys DIR`` (zmq.auth certificate files).

    DIR/coordinator.key(_secret) is the coordinator's pair, DIR/worker.key(_secret) the workers',
    DIR/authorized/ holds the public keys the coordinator accepts.
    """

    folder: Path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "CurveKeys":
        p = Path(folder)
        need = ["coordinator.key", "worker.key", "authorized"]
        missing = [n for n in need if not (p / n).exists()]
        if missing:
            raise TransportError(f"keys folder {str(p)!r} lacks {', '.join(missing)}; create one with "
                                 f"`polyscale keys {p}`")
        return cls(p)

    def _pair(self, name: str) -> tuple[bytes, bytes]:
        import zmq.auth
        f = self.folder / f"{name}.key_secret"
        if not f.exists():
            raise TransportError(f"secret key {str(f)!r} is missing (this side needs it)")
        public, secret = zmq.auth.load_certificate(f)
        return public, secret

    def server_public(self) -> bytes:
        import zmq.auth
        return zmq.auth.load_certificate(self.folder / "coordinator.key")[0]

    def as_server(self, sock: zmq.Socket) -> None:
        public, secret = self._pair("coordinator")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def as_client(self, sock: zmq.Socket) -> None:
        public, secret = self._pair("worker")
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = self.server_public()


def generate_keys(folder: str | os.PathLike) -> Path:
    """Write a coordinator and a worker key pair into ``folder`` (created); return it.

    Copy ``coordinator.key``, ``worker.key`` and ``worker.key_secret`` to the worker hosts; keep
    ``coordinator.key_secret`` on the coordinator's host only.
    """
    import shutil

    import zmq.auth
    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    for name in ("coordinator", "worker"):
        if (p / f"{name}.key_secret").exists():
            raise TransportError(f"{str(p / (name + '.key_secret'))!r} exists; refusing to overwrite keys")
    zmq.auth.create_certificates(p, "coordinator")
    zmq.auth.create_certificates(p, "worker")
    (p / "authorized").mkdir(exist_ok=True)
    shutil.copy(p / "worker.key", p / "authorized" / "worker.key")
    for f in p.glob("*.key_secret"):
        f.chmod(0o600)
    return p


class _Heartbeat(threading.Thread):
    """Sends heartbeats; ends the process when the coordinator is gone."""

    def __init__(self, ctx: zmq.Context, connect: str, identity: bytes, keys: CurveKeys | None,
                 interval_s: float, timeout_s: float, parent_pid: int | None):
        super().__init__(daemon=True, name="polyscale-heartbeat")
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.identity = identity + b"!hb"
        if keys is not None:
            keys.as_client(self.sock)
        self.sock.connect(connect)
        self.interval_s, self.timeout_s, self.parent_pid = interval_s, timeout_s, parent_pid
        self.done = threading.Event()

    def run(self) -> None:
        last = time.monotonic()
        beat = wire.encode("heartbeat")
        try:
            next_beat = 0.0
            while not self.done.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self.sock.send_multipart(beat)
                    next_beat = now + self.interval_s
                # short polls so that the worker's exit is not held up by a whole period
                if self.sock.poll(min(50, int(self.interval_s * 1000))):
                    while self.sock.poll(0):
                        self.sock.recv_multipart()
                        last = time.monotonic()
                gone = None
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    gone = "the coordinator process is gone"
                elif time.monotonic() - last > self.timeout_s:
                    gone = f"no heartbeat from the coordinator for {self.timeout_s:g} s"
                if gone:
                    print(f"polyscale worker {os.getpid()}: {gone}; exiting", file=sys.stderr, flush=True)
                    os._exit(3)
        finally:
            self.sock.close(0)


def serve(connect: str, *, host: str | None = None, keys: str | os.PathLike | None = None,
          worker_id: str | None = None, parent_pid: int | None = None,
          join_timeout_s: float = 60.0, cpu_latency_us: int | None = None) -> int:
    """Join the run at ``connect``, run the assigned solvers until told to stop; exit status.
    ``cpu_latency_us``: hold this machine's CPU wake-up latency at that bound meanwhile
    (coordinator/cpu_latency.py; what ZmqTransport's option does on the coordinator's machine).

    Raises TransportError if the coordinator refuses this worker or never answers.
    """
    hold = None if cpu_latency_us is None else LatencyHold(cpu_latency_us, what="polyscale worker")
    if parent_pid is not None:
        # started by the coordinator: a Ctrl-C reaches the whole process group, and it is the
        # coordinator's to handle (it marks the run file interrupted and stops the workers)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    label = host or socket.gethostname()
    wid = worker_id or f"{label}-{os.getpid()}-{os.urandom(3).hex()}"
    curve = CurveKeys.load(keys) if keys is not None else None
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.identity = wid.encode()
    if curve is not None:
        curve.as_client(sock)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    hb = None
    try:
        if hold is not None:
            hold.hold()
        sock.connect(connect)
        sock.send_multipart(wire.encode("hello", meta={
            "host": label, "pid": os.getpid(), "hostname": socket.gethostname(), "worker": wid,
            "wire": wire.WIRE_VERSION}))
        msg = _wait_assign(sock, monitor, connect, curve is not None, join_timeout_s)
        if msg.type == "error":
            raise TransportError(f"the coordinator at {connect} refused this worker: {msg.meta.get('message')}")
        sock.disable_monitor()
        monitor.close(0)
        monitor = None
        session = _Session(msg, sock)
        hb = _Heartbeat(ctx, connect, wid.encode(), curve, session.heartbeat_s,
                        session.coordinator_timeout_s, parent_pid)
        hb.start()
        return session.loop()
    finally:
        if hold is not None:
            hold.release()
        if hb is not None:
            hb.done.set()
            hb.join(timeout=2.0)
        if monitor is not None:
            sock.disable_monitor()
            monitor.close(0)
        sock.close(0)
        ctx.destroy(linger=0)


def _wait_assign(sock, monitor, connect: str, curve: bool, timeout_s: float) -> wire.Message:
    from zmq.utils.monitor import recv_monitor_message

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for s, _ in poller.poll(100):
            if s is monitor:
                ev = recv_monitor_message(monitor)
                if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    why = ("CurveZMQ authentication failed: this worker's public key is not among the "
                           "coordinator's authorized keys")
                else:
                    why = ("the security handshake failed" + ("" if curve else
                           " (the coordinator may require CurveZMQ: give --keys DIR)"))
                raise TransportError(f"the coordinator at {connect} refused this worker: {why}")
            msg = wire.decode(sock.recv_multipart(copy=False))
            if msg.type in ("assign", "error"):
                return msg
    raise TransportError(f"no answer from a coordinator at {connect} within {timeout_s:g} s")


def sent_channels(plan) -> dict[tuple[str, str], np.ndarray | None]:
    """(solver, out-port) -> the channels any coupling reads from it (sorted), or None for all.

    Only those go on the wire: a large state coupled through a few channels costs a few
    channels. Both ends compute this from the same plan."""
    used: dict[tuple[str, str], set[int]] = {}
    size: dict[tuple[str, str], int] = {}
    for lk in plan.links:
        key = (lk.source.solver, lk.source.port)
        used.setdefault(key, set()).update(lk.source_channels)
        size[key] = lk.source_port.size
    return {k: None if len(ch) == size[k] else np.array(sorted(ch), dtype=np.int64) for k, ch in used.items()}


def advance_layout(plan, solvers) -> tuple[list, wire.Layout]:
    """What an ``advance`` to a worker running ``solvers`` carries, fixed for the run: the
    incoming couplings (plan order) and the :class:`~.transports.wire.Layout` of their arrays:
    ``l/<link index>/ticks`` and ``/ids`` (int64) for spikes, ``l/<link index>/data`` (float64,
    one column per sent channel) for samples."""
    sent = sent_channels(plan)
    links, entries = [], []
    for lk in plan.links:
        if lk.target.solver not in solvers:
            continue
        p, sel = lk.source_port, sent[lk.source.solver, lk.source.port]
        if p.kind == "spikes":
            entries += [(f"l/{lk.index}/ticks", "<i8", ()), (f"l/{lk.index}/ids", "<i8", ())]
        else:
            entries.append((f"l/{lk.index}/data", "<f8", (p.size if sel is None else len(sel),)))
        links.append(lk)
    return links, wire.Layout.of(entries)


def result_layout(plan, solvers) -> tuple[list, wire.Layout]:
    """What a ``result`` from a worker running ``solvers`` carries, fixed for the run: per solver
    in order, its recordings (``<s>/r/<port>/ticks`` and ``/ids``, or ``/data`` with the recorded
    channels), its probe parts (``<s>/p/<probe>``) and its out-ports that feed a coupling
    (``<s>/l/<port>/...``, only the channels some coupling reads). Returns the items, as
    ``("rec", solver, RecordingPlan)``, ``("probe", solver, ProbePlan)`` or ``("linked", solver,
    port, channels sent or None)``, and the :class:`~.transports.wire.Layout`."""
    sent = sent_channels(plan)
    items, entries = [], []
    for s in solvers:
        for r in plan.recordings_of(s):
            if r.kind == "spikes":
                entries += [(f"{s}/r/{r.port}/ticks", "<i8", ()), (f"{s}/r/{r.port}/ids", "<i8", ())]
            else:
                entries.append((f"{s}/r/{r.port}/data", "<f8", (len(r.channels),)))
            items.append(("rec", s, r))
        for pp in plan.probes_of(s):
            entries.append((f"{s}/p/{pp.name}", "<f8", (pp.info.part_shape_channels,)))
            items.append(("probe", s, pp))
        ports = plan.solvers[s].ports
        for port in sorted({lk.source.port for lk in plan.links_from(s)}):
            p, sel = ports[port], sent[s, port]
            if p.kind == "spikes":
                entries += [(f"{s}/l/{port}/ticks", "<i8", ()), (f"{s}/l/{port}/ids", "<i8", ())]
            else:
                entries.append((f"{s}/l/{port}/data", "<f8", (p.size if sel is None else len(sel),)))
            items.append(("linked", s, port, sel))
    return items, wire.Layout.of(entries)


def _linked_arrays(sig, sel: np.ndarray | None, mask: np.ndarray | None) -> list[np.ndarray]:
    """The result arrays of a linked output: only the channels ``sel`` (spikes keep their ids
    and only the events of those channels, found through ``mask``, True at each sent channel;
    samples keep those columns), or all of them when ``sel`` is None."""
    if isinstance(sig, Spikes):
        ticks, ids = sig.ticks, sig.ids
        if mask is not None:
            keep = mask[ids]
            ticks, ids = ticks[keep], ids[keep]
        return [np.ascontiguousarray(ticks, np.int64), np.ascontiguousarray(ids, np.int64)]
    data = sig.data if sel is None else sig.data[:, sel]
    return [np.ascontiguousarray(data, np.float64)]


class _Session:
    """The assigned solvers and their inboxes; answers windows."""

    def __init__(self, msg: wire.Message, sock: zmq.Socket):
        self.sock = sock
        meta = msg.meta
        try:
            self.names: list[str] = [str(n) for n in meta["solvers"]]
            self.heartbeat_s = float(meta["heartbeat_s"])
            self.coordinator_timeout_s = float(meta["coordinator_timeout_s"])
            self.max_bytes = int(meta["max_message_bytes"])
            if not isinstance(meta["model"], dict):
                raise TypeError("model must be a map")
        except (KeyError, TypeError, ValueError) as exc:
            raise wire.ProtocolError(f"assign: meta must hold solvers, heartbeat_s, coordinator_timeout_s, "
                                     f"max_message_bytes and model ({type(exc).__name__}: {exc})") from None
        self.runners: dict[str, SolverRunner] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.failed = False
        self.layouts: dict[str, wire.Layout] = {}    # the window messages this worker takes
        self._prev: tuple[int, int] | None = None   # the last window advanced
        try:
            plan = make_plan(Model.from_dict(meta["model"]))
            self.plan = plan
            for name in self.names:
                self.runners[name] = build_solver(plan, name)
                self.inboxes[name] = Inbox(plan, name)
            self.sent = sent_channels(plan)
            # the window messages' layouts (wire v2): the coordinator sends them in assign;
            # both sides derive them from the same plan, so they must agree
            links, adv = advance_layout(plan, self.names)
            items, res = result_layout(plan, self.names)
            for key, mine in (("advance_layout", adv), ("result_layout", res)):
                theirs = wire.Layout.from_wire(meta.get(key), f"assign: meta.{key}")
                if theirs != mine:
                    raise wire.ProtocolError(f"assign: meta.{key} differs from this worker's plan "
                                             f"({theirs.names} vs {mine.names})")
            self.layouts = {"advance": adv}
            # what a window needs, looked up once: per incoming coupling (advance order) its
            # link's push (of Spikes, or of a sampled window's rows), whether spikes, channels
            # sent (None: all), port size and period
            self._incoming = []
            for lk in links:
                link = self.inboxes[lk.target.solver].links[lk.index]
                spikes = lk.source_port.kind == "spikes"
                self._incoming.append((link.push if spikes else link.push_rows, spikes,
                                       self.sent[lk.source.solver, lk.source.port], lk.source_port.size,
                                       lk.source_port.period_ticks))
            # per solver: runner, inbox collect, recorded ports, probe names, linked ports with
            # the channels sent, in the result layout's order
            self._steps = []
            for name, runner in self.runners.items():
                recs = [r.port for kind, s, *rest in items if kind == "rec" and s == name for r in rest]
                probes = [pp.name for kind, s, *rest in items if kind == "probe" and s == name for pp in rest]
                linked = []
                for kind, s, *rest in items:
                    if kind == "linked" and s == name:
                        port, sel = rest
                        mask = None
                        if sel is not None and plan.solvers[name].ports[port].kind == "spikes":
                            mask = np.zeros(plan.solvers[name].ports[port].size, dtype=bool)
                            mask[sel] = True
                        linked.append((port, sel, mask))
                # a linked sampled port sent whole (the usual case) needs no selection
                linked = [(port, 0, None, None) if sel is None and plan.solvers[name].ports[port].sampled
                          else (port, 1, sel, mask) for port, sel, mask in linked]
                self._steps.append((runner.advance, runner.recorded if recs else None, self.inboxes[name].collect,
                                    recs, probes, linked))
        except Exception as exc:
            self._error(exc, None)
            return
        self.sock.send_multipart(wire.encode("ready", meta={"solvers": self.names}))

    def _error(self, exc: BaseException, t0: int | None) -> None:
        self.failed = True
        solver = getattr(exc, "solver", None) or (self.names[0] if self.names else None)
        if isinstance(exc, PolyscaleError):
            text = str(exc)
        else:
            text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
        self.sock.send_multipart(wire.encode("error", solver=solver, t0=t0, meta={
            "message": text, "error": type(exc).__name__, "t_ms": getattr(exc, "t_ms", None)}))

    def loop(self) -> int:
        # a blocking receive (libzmq waits, the GIL is released) with a timeout, not a poll
        # before every message; the heartbeat thread ends the process if the coordinator is gone
        self.sock.rcvtimeo = 1000
        from .transports.zmq import recv_frames, send_frames
        sock = self.sock
        # what was built lives as long as the run: keep it out of every garbage collection
        gc.freeze()
        while True:
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                continue
            try:
                msg = wire.decode(frames, max_bytes=self.max_bytes, layouts=self.layouts)
            except Exception as exc:
                self._error(exc, None)
                continue
            if msg.type == "stop":
                self.close()
                self.sock.send_multipart(wire.encode("bye"))
                return 1 if self.failed else 0
            if msg.type == "advance" and not self.failed:
                try:
                    send_frames(sock, self.advance(msg))
                except Exception as exc:
                    self._error(exc, msg.t0)

    def advance(self, msg: wire.Message) -> list:
        t0, t1 = msg.t0, msg.t1
        data, prev = msg.data, self._prev
        if data:
            # the previous window's outputs of the couplings' sources, in the layout's order
            if prev is None:
                raise wire.ProtocolError("advance: arrays in the first window (nothing to forward yet)")
            p0, p1 = prev
            k = 0
            for push, spikes, sel, size, period in self._incoming:
                if spikes:
                    push(Spikes(data[k], data[k + 1]))
                    k += 2
                    continue
                d = data[k]
                k += 1
                if d.shape[0] != (p1 - p0) // period:
                    raise wire.ProtocolError(f"advance: header.rows[{k - 1}]: {d.shape[0]} samples, expected "
                                             f"{(p1 - p0) // period}")
                if sel is not None:
                    # back to the port's width: the unsent channels are ones no coupling reads
                    full = np.zeros((d.shape[0], size))
                    full[:, sel] = d
                    d = full
                push(p0, d)
        elif prev is not None and self._incoming:
            raise wire.ProtocolError("advance: no arrays, but couplings lead into this worker's solvers")
        arrays: list[np.ndarray] = []
        compute: list[float] = []
        clock = time.perf_counter
        contiguous = np.ascontiguousarray
        f8, i8 = np.float64, np.int64
        for advance, recorded, collect, recs, probes, linked in self._steps:
            inputs = collect(t0, t1)
            start = clock()
            res = advance(t0, t1, inputs)
            compute.append(clock() - start)
            if recorded is not None:
                rec = recorded(res)
                for port in recs:
                    sig = rec[port]
                    if type(sig) is Spikes:
                        arrays += [contiguous(sig.ticks, i8), contiguous(sig.ids, i8)]
                    else:
                        arrays.append(contiguous(sig.data, f8))
            if probes:
                parts = res.probe_parts
                for name in probes:
                    arrays.append(contiguous(parts[name], f8))
            outs = res.outputs
            for port, how, sel, mask in linked:
                if how == 0:
                    arrays.append(contiguous(outs[port].data, f8))
                else:
                    arrays += _linked_arrays(outs[port], sel, mask)
        self._prev = (t0, t1)
        return wire.encode_window("result", t0, t1, arrays, compute)

    def close(self) -> None:
        for runner in self.runners.values():
            try:
                runner.close()
            except Exception:  # the run is over; closing the others matters more
                pass
        self.runners = {}


def main(argv: list[str] | None = None) -> int:
    """``python -m polyscale.coordinator.worker`` (the CLI's ``polyscale worker`` is the same)."""
    import argparse
    ap = argparse.ArgumentParser(prog="polyscale worker")
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv))


def add_arguments(ap) -> None:
    ap.add_argument("--connect", required=True, metavar="tcp://HOST:PORT", help="the coordinator's address")
    ap.add_argument("--host", metavar="LABEL", help="this worker's host label, matched against the "
                    "model's placement (default: the host name)")
    ap.add_argument("--keys", metavar="DIR", help="CurveZMQ keys from `polyscale keys DIR`")
    ap.add_argument("--join-timeout", type=float, default=60.0, metavar="S",
                    help="give up when no coordinator answers within S seconds (default 60)")
    ap.add_argument("--worker-id", help="identity given by a coordinator that starts this worker")
    ap.add_argument("--parent-pid", type=int, help="exit when this process (the coordinator) is gone")
    ap.add_argument("--cpu-latency-us", type=int, metavar="US",
                    help="ask this machine's CPUs to wake within US microseconds while the run lasts "
                         "(0: idle CPUs poll; Linux, needs write access to /dev/cpu_dma_latency)")


def run_from_args(args) -> int:
    try:
        return serve(args.connect, host=args.host, keys=args.keys, worker_id=args.worker_id,
                     parent_pid=args.parent_pid, join_timeout_s=args.join_timeout,
                     cpu_latency_us=args.cpu_latency_us)
    except PolyscaleError as exc:
        print(f"polyscale worker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
