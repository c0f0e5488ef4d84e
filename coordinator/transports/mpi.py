"""The MPI transport: solvers on the ranks of an ``mpiexec`` / ``srun`` job, exchange without a hub.

Every rank runs the same program (``mpiexec -n K python -m polyscale run model.py --transport
mpi``), computes the same plan from the same model, and so knows, without asking, which solver
runs where and what every rank sends to every other in each window. Rank 0 is the coordinator
and the writer: the scheduler drives it window by window; the other ranks run :meth:`serve`,
the same window loop with nothing to write.

Placement (:func:`placement`): by default one solver per rank, in model order, round-robin when
there are more solvers than ranks (rank 0 takes solvers too); ``model.place(name, ranks=N)``
gives a solver N consecutive ranks and a sub-communicator (``SolverContext.comm``), and
``model.place(name, host=...)`` keeps it on ranks whose processor name is ``host``.

One window on every rank:

1. each local solver collects its inputs from its own :class:`~..routing.Inbox` and advances;
2. one round of messages: a max-reduction of every rank's status (a (ranks,) vector: 0 ok,
   1 this rank failed, 2 rank 0 stopped the run; a persistent ``Allreduce_init`` where the MPI
   has MPI-4's persistent collectives, else an ``Iallreduce``), so a failure anywhere is known
   everywhere at once, overlapped with the data: a rank that is ok sends at once (``Isend``)
   each solver's outputs straight to the ranks of the solvers they feed (each source port once
   per destination rank) and its recorded outputs and probe parts to rank 0. Both sides derive
   the list and dtype of every array in a message from the plan, so a message is just
   ``int64`` lengths followed by the arrays' bytes: numpy buffers, nothing pickled. A receiver
   takes the message of every source that the reduction says is ok (``Mprobe`` for its size,
   then ``Mrecv``) and none from the others, so no rank waits for data that will never come;
3. each rank pushes what it received (and what its own solvers produced) into its inboxes.

A solver spanning several ranks is advanced on all of them with the same inputs (each of its
ranks receives them); its outputs, recordings and probe parts are taken from its first rank,
which must return the whole outputs (e.g. gathered over ``ctx.comm``).

Failure: an exception on any rank (building or advancing a solver, routing) is caught there,
announced in the window's status reduction, and its text gathered to rank 0, which raises it
with the rank in the message; the scheduler then writes ``status = "failed: ..."``. Every rank leaves
the loop at the same window, so nothing hangs. A rank that is killed or hangs inside a solver
is not detected here: mpiexec / srun ends the job (use the batch system's time limit).

Measured choice (benchmarks/mpi_transport.py, raw loops without polyscale, paired runs on a
shared 2-core machine, so noisy): point to point between neighbours beat an Alltoall of sizes
plus an Alltoallv of data in 5 of 6 pairs (2 ranks: median 51 vs 75 us per step; 4 ranks: 103
vs 943 us), and sends nothing between ranks that exchange nothing, where the all-to-all touches
every pair of ranks in every window. Sizes used to go in a round of their own before the data;
probing the data message for its size saves that round.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import PolyscaleError, SolverError, TransportError
from ..plan import Plan
from ..routing import Inbox
from ..signals import Samples, Spikes, WindowResult
from ..solver import SolverRunner, build_solver, close_all
from ..time import to_ms

_OK, _FAILED, _STOP = 0, 1, 2
_TAG_DATA = 72
_I8 = np.dtype(np.int64)
_F8 = np.dtype(np.float64)


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TransportError("the mpi transport needs mpi4py and an MPI library: "
                             "pip install 'polyscale[mpi]' (or build mpi4py against your "
                             f"cluster's MPI, README 'Running on a cluster'): {exc}") from exc
    return MPI


def placement(plan: Plan, size: int, hosts: list[str] | None = None) -> dict[str, tuple[int, ...]]:
    """Ranks of every solver of ``plan`` on ``size`` ranks: a pure function of the plan.

    Solvers take ranks in model order, round-robin from rank 0; a solver placed with
    ``ranks=N`` (or, unplaced, whose spec has ``ranks=N``) takes N consecutive ranks
    (wrapping), one with ``host=`` only ranks whose processor name (``hosts[rank]``) is that
    host. TransportError if a placement cannot be met.
    """
    out: dict[str, tuple[int, ...]] = {}
    nxt = 0
    for name in plan.solvers:
        pl = plan.model.placement.get(name)
        # model.place decides; without it a spec may ask for ranks (PointNetwork(ranks=N))
        n = pl.ranks if pl is not None else getattr(plan.solvers[name].spec, "ranks", 1)
        host = pl.host if pl is not None else None
        if host is not None:
            cands = [r for r in range(size) if hosts is not None and hosts[r] == host]
            if len(cands) < n:
                have = sorted(set(hosts or []))
                raise TransportError(f"placement of solver {name!r}: host {host!r} has {len(cands)} "
                                     f"rank(s), {n} needed (hosts of this job: {', '.join(have)})")
            k = sum(1 for s in out if plan.model.placement.get(s) is not None
                    and plan.model.placement[s].host == host)
            out[name] = tuple(cands[(k + j) % len(cands)] for j in range(n))
            continue
        if n > size:
            asked = " (its spec asks for them)" if pl is None else ""
            raise TransportError(f"placement of solver {name!r}: ranks={n}{asked}, but the job has only "
                                 f"{size} rank(s); start it with mpiexec -n {n} or more")
        out[name] = tuple((nxt + j) % size for j in range(n))
        nxt = (nxt + n) % size
    return out


class MpiTransport:
    """Solvers on the ranks of ``comm`` (default ``MPI.COMM_WORLD``); rank 0 writes.

    ``writes`` is True on rank 0 only; the scheduler calls :meth:`serve` on the other ranks.
    ``compute_s`` accumulates the wall time of each local solver (s), ``exchange_s`` that of
    the window exchange on this rank (s).
    """

    #: what the run file's ``transport`` attribute says when an MpiTransport object is passed in
    name = "mpi"

    def __init__(self, comm: Any = None) -> None:
        MPI = _mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.writes = self.rank == 0
        self.plan: Plan | None = None
        self.ranks: dict[str, tuple[int, ...]] = {}
        self.runners: dict[str, SolverRunner] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.subcomms: list[Any] = []
        self.compute_s: dict[str, float] = {}
        self.exchange_s = 0.0
        self._send_bufs: dict[int, np.ndarray] = {}   # per destination rank, reused by _pack
        self._advances: list = []       # (solver, advance, collect) of the local solvers (_bind)
        self._collect_out: list = []    # rank 0: what each solver hands the writer (_bind)
        self._stopped = False     # every rank has left the window loop (end, failure or stop)
        self._t_done = 0
        self._in_exchange = False
        self._sigint_pending = False
        self._late_err: dict | None = None   # a delivery failed here after the exchange
        self._old_sigint = None
        # this rank's status at its own index (zero elsewhere), and every rank's after the
        # max-reduction; the reduction request, made at the first exchange (None: not yet,
        # False: this MPI has no persistent collectives)
        self._status_bufs = (np.zeros(self.size, np.int64), np.zeros(self.size, np.int64))
        self._persistent: Any = None
        self._probe_status = MPI.Status()
        if self.size > 1:
            _leave_together(self.comm)

    # -- setup --------------------------------------------------------------------------------
    def start(self, plan: Plan) -> None:
        self.plan = plan
        if self.writes and self.size > 1 and threading.current_thread() is threading.main_thread():
            self._old_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        err = None
        try:
            hosts = self._hosts() if any(p.host for p in plan.model.placement.values()) else None
            self.ranks = placement(plan, self.size, hosts)
            self._routes()
            # sub-communicators first, every rank in model order (Create_group is collective over
            # the group, so this order cannot deadlock), before any build can fail
            comms = {}
            for i, (name, ranks) in enumerate(self.ranks.items()):
                if len(ranks) > 1 and self.rank in ranks:
                    group = self.comm.Get_group().Incl(list(ranks))
                    comms[name] = self.comm.Create_group(group, tag=1000 + i)
                    group.Free()
                    self.subcomms.append(comms[name])
            for name, ranks in self.ranks.items():
                if self.rank in ranks:
                    self.runners[name] = build_solver(plan, name, comm=comms.get(name))
                    self.inboxes[name] = Inbox(plan, name)
                    self.compute_s[name] = 0.0
            # what a window's delivery calls, resolved once: per source port, its links' push
            # methods, and (source, port, pushes) for the local solvers' outputs to local ones
            self._pushes = {key: [self.inboxes[lk.target.solver].links[lk.index].push for lk in lks]
                            for key, lks in self.links_by_source.items()}
            self._local_pushes = [(s, port, self._pushes[(s, port)]) for (s, port) in self.local_out]
            self._bind()
        except BaseException as exc:
            err = _describe(exc, None, self.rank)
        self._exchange(err, {}, t0=None)

    def _hosts(self) -> list[str]:
        """Every rank's processor name, as fixed-size bytes (no pickle)."""
        mine = np.zeros(256, np.uint8)
        name = self.MPI.Get_processor_name().encode()[:256]
        mine[:len(name)] = np.frombuffer(name, np.uint8)
        allnames = np.zeros((self.size, 256), np.uint8)
        self.comm.Allgather(mine, allnames)
        return [bytes(row).rstrip(b"\0").decode() for row in allnames]

    def _routes(self) -> None:
        """What each rank sends to each other rank in a window, in an order every rank agrees on.

        ``self.streams[(src, dst)]`` lists ('out', solver, port) for a source port feeding a
        solver with a rank ``dst``, and ('rec', solver) for recordings and probe parts to rank 0.
        """
        plan = self.plan
        lead = {s: r[0] for s, r in self.ranks.items()}
        streams: dict[tuple[int, int], list[tuple]] = {}
        self.local_out: dict[tuple[str, str], bool] = {}
        seen = []
        for lk in plan.links:
            key = (lk.source.solver, lk.source.port)
            if key not in seen:
                seen.append(key)
        for s, port in seen:
            src = lead[s]
            dsts = sorted({r for lk in plan.links_from(s) if lk.source.port == port
                           for r in self.ranks[lk.target.solver]})
            for dst in dsts:
                if dst == src:
                    if dst == self.rank:
                        self.local_out[(s, port)] = True
                else:
                    streams.setdefault((src, dst), []).append(("out", s, port))
        for s in plan.solvers:
            has = plan.recordings_of(s) or plan.probes_of(s)
            if has and lead[s] != 0:
                streams.setdefault((lead[s], 0), []).append(("rec", s))
        self.streams = streams
        self.lead = lead
        self._programs()
        # links into local solvers, by source port
        self.links_by_source: dict[tuple[str, str], list] = {}
        for lk in plan.links:
            if self.rank in self.ranks[lk.target.solver]:
                self.links_by_source.setdefault((lk.source.solver, lk.source.port), []).append(lk)

    # -- one window ---------------------------------------------------------------------------
    def advance(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        """Rank 0: advance every rank over [t0, t1); return recorded outputs of all solvers."""
        return self._window(t0, t1)

    def serve(self, plan: Plan) -> None:
        """Ranks other than 0: the window loop of a run whose file rank 0 writes.

        Returns when the run ends, fails elsewhere, or rank 0 stops it; raises this rank's own
        failure (rank 0 has it too, and writes it into the run file)."""
        with _sigint_ignored():  # Ctrl-C reaches every rank; rank 0 alone decides to stop
            try:
                self.start(plan)
                for t0, t1 in plan.windows():
                    self._window(t0, t1)
            except _Stopped:
                pass
            finally:
                self._close_local()

    def _window(self, t0: int, t1: int) -> dict[str, WindowResult] | None:
        results: dict[str, WindowResult] = {}
        err, self._late_err = self._late_err, None
        try:
            if err is not None:   # the last window's delivery failed here: announce it now
                raise _Announce
            clock, compute = time.perf_counter, self.compute_s
            for name, advance, collect in self._advances:
                inputs = collect(t0, t1)
                start = clock()
                results[name] = advance(t0, t1, inputs)
                compute[name] += clock() - start
        except KeyboardInterrupt:
            if not self.writes:
                raise
            # rank 0 interrupted in its own solvers: stop every rank at this exchange, then
            # let the scheduler record the interruption
            self._stopped = True
            try:
                self._exchange(None, {}, t0=None, stop=True, window=True)
            except _Stopped:
                pass
            raise
        except _Announce:
            pass
        except BaseException as exc:
            err = _describe(exc, t0, self.rank)
        # rank 0: a Ctrl-C between the two rounds would desynchronise the ranks; hold it back
        self._in_exchange = True
        try:
            return self._deliver(t0, t1, err, results)
        finally:
            self._in_exchange = False
            if self._sigint_pending:
                self._sigint_pending = False
                raise KeyboardInterrupt

    def _deliver(self, t0: int, t1: int, err: dict | None,
                 results: dict[str, WindowResult]) -> dict[str, WindowResult] | None:
        start = time.perf_counter()
        bufs = self._exchange(err, results, t0=t0)
        self.exchange_s += time.perf_counter() - start
        self._t_done = t1
        if t1 >= self.plan.t_stop_ticks:
            self._stopped = True
        try:
            # deliver: what came from other ranks (pushed as each message is read), then what
            # local solvers produced for local ones
            rec: dict[str, WindowResult] = {}
            for src, program in self._recv.items():
                buf = bufs[src]
                self._unpack(buf, 0, len(buf), src, t0, program, rec)
            for s, port, local in self._local_pushes:
                sig = results[s].outputs[port]
                for push in local:
                    push(sig)
        except Exception as exc:
            if self.writes or self._stopped:
                raise   # rank 0 stops the others in close(); after the last window none waits
            # the other ranks are already in the next exchange: fail there, not here
            self._late_err = _describe(exc, t0, self.rank)
            return None
        if not self.writes:
            return None
        out = {}
        for name, local, recorded in self._collect_out:
            if name in rec:
                out[name] = rec[name]
            elif local and name in results:
                res = results[name]
                out[name] = WindowResult(outputs=recorded(res), probe_parts=res.probe_parts)
            else:
                out[name] = WindowResult()
        return out

    # -- the exchange -------------------------------------------------------------------------
    def _programs(self) -> None:
        """Resolve the streams this rank sends and receives into what packing needs: ports,
        periods, columns and dtypes, so a window does no plan look-ups."""
        plan, me = self.plan, self.rank

        def resolve(st):
            if st[0] == "out":
                port = plan.solvers[st[1]].ports[st[2]]
                items = [_I8, _I8] if port.kind == "spikes" else [(_F8, port.size)]
                return ("out", st[1], st[2], port.kind == "spikes", port.period_ticks, port.size), items
            recs = tuple((r.port, r.kind == "spikes", len(r.channels)) for r in plan.recordings_of(st[1]))
            probes = tuple((pp.name, pp.info.part_shape_channels) for pp in plan.probes_of(st[1]))
            items = []
            for _, spikes, cols in recs:
                items += [_I8, _I8] if spikes else [_I8, (_F8, cols)]
            items += [(_F8, cols) for _, cols in probes]
            return ("rec", st[1], recs, probes), items

        self._send = {dst: [resolve(st)[0] for st in sts] for (src, dst), sts in self.streams.items()
                      if src == me}
        self._recv = {}
        for (src, dst), sts in sorted(self.streams.items()):
            if dst == me:
                resolved = [resolve(st) for st in sts]
                self._recv[src] = ([r for r, _ in resolved], [it for _, its in resolved for it in its])

    def _exchange(self, err: dict | None, results: Mapping[str, WindowResult], t0: int | None,
                  stop: bool = False, window: bool | None = None) -> dict:
        """Statuses and data in one round; raise (rank 0) or stop (others) if any rank failed or
        rank 0 stopped the run.

        Every rank's status goes into a max-reduction of a (ranks,) vector (a persistent
        ``Allreduce_init`` where the MPI has it, else an ``Iallreduce``), so each rank learns the
        status of every other. A rank whose status is ok sends this window's messages at once
        (``Isend`` to the ranks it feeds, before the reduction completes); a receiver takes the
        message of each source whose status is ok (``Mprobe`` gives its size, ``Mrecv`` takes it)
        and none from the others, so nothing is left unmatched when a run stops.
        ``window`` False: the exchange at the end of ``start`` (status only)."""
        MPI = self.MPI
        window = t0 is not None if window is None else window
        status = _STOP if stop else (_FAILED if err is not None else _OK)
        payload: dict[int, np.ndarray] = {}
        if window and status == _OK:
            try:
                payload = {dst: self._pack(results, sts, dst) for dst, sts in self._send.items()}
            except Exception as exc:   # announce it in this exchange rather than leave the others waiting
                err = _describe(exc, t0, self.rank)
                status, payload = _FAILED, {}
        mine, statuses = self._status_bufs
        mine[self.rank] = status
        reduction = self._reduction()
        sends = [self.comm.Isend(buf, dest=dst, tag=_TAG_DATA) for dst, buf in payload.items()]
        reduction.Wait()
        every = statuses.tolist()   # a list: a few Python look-ups cost less than numpy's
        bufs: dict[int, np.ndarray] = {}
        if window:
            probe = self._probe_status
            for src in self._recv:
                if every[src] == _OK:   # it sent this window's message: take it, even to discard
                    m = self.comm.Mprobe(source=src, tag=_TAG_DATA, status=probe)
                    buf = np.empty(probe.Get_count(MPI.BYTE), np.uint8)
                    m.Recv(buf)
                    bufs[src] = buf
        if sends:
            MPI.Request.Waitall(sends)
        worst = max(every)
        if worst == _STOP:
            self._stopped = True
            raise _Stopped
        if worst == _FAILED:
            self._stopped = True
            self._failures(err)   # raises
        if not window or t0 is None:
            return {}
        return bufs

    def _reduction(self):
        """The started reduction of every rank's status: persistent after the first exchange."""
        red = self._persistent
        if red is None:
            mine, statuses = self._status_bufs
            try:
                red = self._persistent = self.comm.Allreduce_init(mine, statuses, op=self.MPI.MAX)
            except (AttributeError, NotImplementedError, self.MPI.Exception):   # MPI before 4.0
                self._persistent = False
                red = False
        if red is False:
            mine, statuses = self._status_bufs
            return self.comm.Iallreduce(mine, statuses, op=self.MPI.MAX)
        red.Start()
        return red

    def _bind(self) -> None:
        """What a window calls, looked up once the local solvers and inboxes exist: the receive
        programs with each coupled source port's pushes (``push_rows`` for samples: no Samples
        object per window), rank 0's list of solvers to hand to the writer, and each
        destination's send program with the runners' ``recorded``."""
        def bind(st):
            if st[0] == "out":
                _, s, port, spikes, period, _size = st
                links = [self.inboxes[lk.target.solver].links[lk.index]
                         for lk in self.links_by_source.get((s, port), ())]
                return ("out", spikes, period, [lk.push if spikes else lk.push_rows for lk in links])
            return st
        self._recv = {src: ([bind(st) for st in sts], items) for src, (sts, items) in self._recv.items()}
        self._collect_out = [(name, name in self.runners and self.lead[name] == self.rank,
                              self.runners[name].recorded if name in self.runners else None)
                             for name in self.plan.solvers]
        self._send = {dst: [st if st[0] == "out" else (*st, self.runners[st[1]].recorded) for st in sts]
                      for dst, sts in self._send.items()}
        self._advances = [(name, runner.advance, self.inboxes[name].collect)
                          for name, runner in self.runners.items()]

    def _failures(self, err: dict | None) -> None:
        """Some rank failed: gather the failures' texts (JSON) to rank 0 and raise there the
        first (lowest rank); a failed rank raises its own; the others stop."""
        text = np.frombuffer(json.dumps(err).encode(), np.uint8) if err is not None else np.zeros(0, np.uint8)
        n = np.array([len(text)], np.int64)
        counts = np.zeros(self.size, np.int64)
        self.comm.Gather(n, counts, root=0)
        if self.rank != 0:
            self.comm.Gatherv(text, None, root=0)
            if err is not None:   # this rank's own failure: report it here too
                raise _as_error([err])
            raise _Stopped
        displ = np.concatenate([[0], np.cumsum(counts[:-1])])
        rbuf = np.empty(int(counts.sum()), np.uint8)
        self.comm.Gatherv(text, [rbuf, (counts.astype(np.int32), displ.astype(np.int32)), self.MPI.BYTE], root=0)
        errors = [json.loads(bytes(rbuf[d:d + c]).decode()) for d, c in zip(displ, counts) if c]
        raise _as_error(errors)

    def _pack(self, results: Mapping[str, WindowResult], streams: list, dst: int) -> np.ndarray:
        """One message: int64 element counts of its arrays, then the arrays' bytes."""
        arrays: list[np.ndarray] = []
        f8 = np.float64
        for st in streams:
            res = results[st[1]]
            if st[0] == "out":
                sig = res.outputs[st[2]]
                if st[3]:
                    arrays += [sig.ticks, sig.ids]
                else:
                    arrays.append(np.asarray(sig.data, dtype=f8))
            else:
                rec = st[4](res)
                for port, spikes, _ in st[2]:
                    sig = rec[port]
                    if spikes:
                        arrays += [sig.ticks, sig.ids]
                    else:
                        arrays += [np.array([sig.t0, sig.period], np.int64), np.asarray(sig.data, dtype=f8)]
                for name, _ in st[3]:
                    arrays.append(np.asarray(res.probe_parts[name], dtype=f8))
        # into this destination's buffer, kept between windows (grown when a window needs more):
        # the send completes within the exchange, before the next window packs again
        head = 8 * len(arrays)
        total = head
        for a in arrays:
            total += a.nbytes
        buf = self._send_bufs.get(dst)
        if buf is None or len(buf) < total:
            buf = self._send_bufs[dst] = np.empty(max(total, 2 * (0 if buf is None else len(buf))), np.uint8)
        buf[:head].view(np.int64)[:] = [a.size for a in arrays]
        pos = head
        for a in arrays:
            n = a.nbytes
            buf[pos:pos + n] = a.reshape(-1).view(np.uint8)
            pos += n
        return buf[:total]

    def _unpack(self, buf: np.ndarray, offset: int, count: int, src: int, t0: int,
                program: tuple, rec: dict) -> None:
        """Read one message from rank ``src`` and deliver it: coupled outputs pushed into their
        links here, recordings and probe parts of solvers led elsewhere put in ``rec`` (rank 0)."""
        streams, items = program
        lengths = np.frombuffer(buf, np.int64, len(items), offset).tolist()
        pos = offset + 8 * len(items)
        arrays = []
        frombuffer, i8, f8 = np.frombuffer, np.int64, np.float64
        for item, n in zip(items, lengths):
            if item is _I8:
                arrays.append(frombuffer(buf, i8, n, pos))
            else:
                arrays.append(frombuffer(buf, f8, n, pos).reshape(-1, item[1]))
            pos += 8 * n
        if pos != offset + count:
            raise TransportError(f"rank {self.rank}: message from rank {src} has {count} bytes, "
                                 f"its plan says {pos - offset}")
        k = 0
        for st in streams:
            if st[0] == "out":
                if st[1]:
                    sig = Spikes(arrays[k], arrays[k + 1])
                    k += 2
                    for push in st[3]:
                        push(sig)
                else:
                    data = arrays[k]
                    k += 1
                    for push_rows in st[3]:
                        push_rows(t0, data)
            else:
                outputs = {}
                for port, spikes, _ in st[2]:
                    if spikes:
                        outputs[port] = Spikes(arrays[k], arrays[k + 1])
                    else:
                        outputs[port] = Samples(int(arrays[k][0]), int(arrays[k][1]), arrays[k + 1])
                    k += 2
                parts = {}
                for name, _ in st[3]:
                    parts[name] = arrays[k]
                    k += 1
                rec[st[1]] = WindowResult(outputs=outputs, probe_parts=parts)

    # -- the end ------------------------------------------------------------------------------
    def _on_sigint(self, signum, frame) -> None:
        """Rank 0's Ctrl-C: at once, except inside the exchange (then right after it)."""
        if self._in_exchange:
            self._sigint_pending = True
        else:
            raise KeyboardInterrupt

    def close(self) -> None:
        """Stop the other ranks if the run ends early here (rank 0), and close local solvers."""
        if self.writes and self.plan is not None and not self._stopped:
            # rank 0 left the loop early (writer error, Ctrl-C): tell the ranks waiting for the
            # next exchange to stop
            self._stopped = True
            try:
                self._exchange(None, {}, t0=None, stop=True, window=True)
            except _Stopped:
                pass
        self._close_local()

    def stop_before_start(self, plan: Plan) -> None:
        """Rank 0 failed before start (e.g. the run file exists): release the serving ranks."""
        self.plan = plan
        self._stopped = True
        try:
            self._exchange(None, {}, t0=None, stop=True)
        except _Stopped:
            pass

    def _close_local(self) -> None:
        if self._old_sigint is not None:
            signal.signal(signal.SIGINT, self._old_sigint)
            self._old_sigint = None
        runners, self.runners = self.runners, {}
        try:
            close_all(runners.values())
        finally:
            if self._persistent:
                self._persistent.Free()
            self._persistent = None
            for c in self.subcomms:
                c.Free()
            self.subcomms = []


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT in the block (ranks other than 0: mpiexec forwards Ctrl-C to every rank,
    and rank 0 stops the others through the exchange)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)


_EXIT_BARRIERS: set[int] = set()


def _leave_together(comm) -> None:
    """At interpreter exit, wait for every rank of ``comm`` before leaving.

    Rank 0 closes the run file after the transport is closed; Open MPI ends the whole job as
    soon as one rank exits with a non-zero status (a rank whose solver failed), which could cut
    rank 0 short. Registered after mpi4py's own exit handler, so it runs before MPI_Finalize."""
    import atexit
    key = id(comm)
    if key not in _EXIT_BARRIERS:
        _EXIT_BARRIERS.add(key)
        atexit.register(comm.Barrier)


class _Announce(Exception):
    """Internal: skip this window's solvers and announce an earlier failure."""


class _Stopped(Exception):
    """The run ended elsewhere (rank 0 stopped it, or another rank failed)."""


def _describe(exc: BaseException, t0: int | None, rank: int) -> dict:
    msg = str(exc) if isinstance(exc, PolyscaleError) else f"{type(exc).__name__}: {exc}"
    where = "" if t0 is None or isinstance(exc, SolverError) else f" (in window starting at {to_ms(t0):g} ms)"
    return {"rank": int(rank), "type": type(exc).__name__, "message": msg + where,
            "solver": getattr(exc, "solver", None), "t_ms": getattr(exc, "t_ms", None)}


def _as_error(errors: list[dict]) -> PolyscaleError:
    first = errors[0]
    more = f" (and {len(errors) - 1} more rank(s) failed)" if len(errors) > 1 else ""
    msg = f"rank {first['rank']}: {first['message']}{more}"
    if first["solver"] is not None:
        return SolverError(msg, solver=first["solver"], t_ms=first["t_ms"])
    return TransportError(msg)


# -- launching ---------------------------------------------------------------------------------

def mpiexec_command(n: int, mpiexec: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment to start ``n`` ranks on this machine.

    Finds ``mpiexec`` next to this Python (the ``mpi`` extra puts MPICH's there) or on PATH.
    Open MPI needs ``--oversubscribe`` for more ranks than cores, and its two
    ``OMPI_ALLOW_RUN_AS_ROOT*`` variables when run as root; MPICH needs neither.
    TransportError if there is no mpiexec.
    """
    exe = mpiexec or os.environ.get("POLYSCALE_MPIEXEC")
    if exe is None:
        here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        exe = here if os.path.exists(here) else shutil.which("mpiexec")
    if exe is None:
        raise TransportError("no mpiexec found next to this Python or on PATH: pip install "
                             "'polyscale[mpi]', or set POLYSCALE_MPIEXEC")
    env = dict(os.environ)
    cmd = [exe, "-n", str(n)]
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TransportError(f"{exe} --version failed: {exc}") from exc
    if "Open MPI" in version or "OpenRTE" in version:
        cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return cmd, env
