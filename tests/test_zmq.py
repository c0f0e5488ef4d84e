"""The zmq transport: same run file as inproc, liveness, garbage on the socket, hosts with Curve keys.

Every wait here is bounded (pytest-timeout is not installed): subprocesses get ``timeout=``, and
the transport's own timeouts are set short so a failure to notice a dead worker fails the test
within seconds instead of hanging it.
"""
from __future__ import annotations

import os
import re
import pty
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import h5py
import msgpack
import numpy as np
import pytest
import zmq

import polyscale as ps
from polyscale.cli import main as cli_main
from polyscale.coordinator.errors import SolverError, TransportError
from polyscale.coordinator.transports import wire
from polyscale.coordinator.transports.zmq import ZmqTransport, balance
from polyscale.coordinator.worker import generate_keys

REPO = Path(__file__).resolve().parents[1]
PY = [sys.executable, "-m", "polyscale"]


def three_rate_model(t_stop_ms=12.0, window_ms=None, every_ms=None):
    """Three solvers of different dt (0.1, 0.05, 0.025 ms), a spike source and a relay; spikes,
    analog couplings with hold and linear interpolation, an adapter, channel maps, a probe;
    ``every_ms``: a.x is recorded decimated, one channel only."""
    m = ps.Model(seed=11, t_stop_ms=t_stop_ms, window_ms=window_ms)
    m.solver("a", ps.solvers.LinearSystem(a=[[-0.05, 0.3], [-0.3, -0.05]], c=[0.1, 0.0], dt_ms=0.1))
    m.solver("b", ps.solvers.LinearSystem(a=[[-0.2]], dt_ms=0.05))
    m.solver("c", ps.solvers.LinearSystem(a=[[-0.1, 0.0], [0.0, -0.3]], dt_ms=0.025))
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.3, 1.25, 4.4, 9.9, 9.9], ids=[0, 1, 1, 0, 1], size=2))
    m.solver("relay", ps.solvers.SpikeRelay(size=2, dt_ms=0.1))
    m.solver("kick3", ps.solvers.SpikeTrain(times_ms=[0.5, 0.5, 2.0, 3.3], ids=[0, 2, 1, 2], size=3))
    m.couple("a.x[0]", "b.u", delay_ms=1.0)
    m.couple("b.x", "a.u[1]", delay_ms=1.5, weight=-0.5, interpolation="linear")
    m.couple("a.x[0]", "c.u", delay_ms=1.2, interpolation="linear")  # broadcast to both channels
    m.couple("kick.spikes", "relay.in", delay_ms=1.0)
    # only some channels of a.x and kick3.spikes are read: only those go on the wire
    m.couple("kick3.spikes[0, 2]", "relay.in", delay_ms=2.0, weight=2.0)
    m.couple("kick.spikes", "a.u[0]", delay_ms=1.0, via=[ps.adapters.SpikesToRate(bin_ms=0.1)])
    for s in ("a.x", "b.x", "c.x", "relay.out"):
        if s == "a.x" and every_ms is not None:
            m.record("a.x[1]", every_ms=every_ms)
        else:
            m.record(s)
    m.probe("mix", ps.probes.LinearReadout(weights={"a.x": [[1.0, 2.0]], "c.x": [[-1.0, 0.5]]}, every_ms=0.1))
    return m


def datasets(path):
    """Every dataset of a run file (name -> array) and the root attributes that do not depend on
    the transport or the wall clock."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        attrs = {k: f.attrs[k] for k in ("status", "n_windows", "t_done_ms") if k in f.attrs}
    return out, attrs


def assert_same_run_files(a, b):
    """Every dataset of run files a and b, and their transport- and clock-free root attributes,
    bit for bit."""
    ref, ref_attrs = datasets(a)
    got, got_attrs = datasets(b)
    assert ref_attrs == got_attrs and sorted(ref) == sorted(got)
    for name in ref:
        x, y = np.asarray(ref[name]), np.asarray(got[name])
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.mark.parametrize("every_ms", [None, 0.3])
def test_same_run_file_bit_for_bit_as_inproc(tmp_path, every_ms):
    """Also with a decimated recording whose samples do not start at each window's start (every
    0.3 ms in windows of 1 ms): the result message carries only rows, the times follow from the
    window."""
    ps.run(three_rate_model(every_ms=every_ms), tmp_path / "inproc.h5")
    tr = ZmqTransport()
    run = ps.run(three_rate_model(every_ms=every_ms), tmp_path / "zmq.h5", transport=tr)
    assert run.status == "complete" and run.attrs["transport"] == "zmq"
    assert_same_run_files(tmp_path / "inproc.h5", tmp_path / "zmq.h5")
    # something travelled: relayed spikes and the analog loop
    assert len(run.spikes("relay", "out").times) == 5 + 3 and np.abs(run.signal("c", "x").data).max() > 0
    assert len({w.pid for w in tr.workers.values()}) == 6 and tr.rejected == []


def test_grouped_solvers_share_a_process_and_give_the_same_bits(tmp_path):
    """``groups``: a and c in one process, the spike sources and the relay in another (couplings
    inside a group and across groups), b alone: three worker processes, the run file bit for
    bit inproc's, and each solver's compute time in it."""
    ps.run(three_rate_model(), tmp_path / "inproc.h5")
    tr = ZmqTransport(groups=[["c", "a"], ["kick", "relay", "kick3"]])
    run = ps.run(three_rate_model(), tmp_path / "zmq.h5", transport=tr)
    assert run.status == "complete"
    # one process per group, its solvers in the model's order; b, in no group, alone
    assert {w.wid: w.solvers for w in tr.workers.values()} == {
        "local-b": ["b"], "local-0": ["a", "c"], "local-1": ["kick", "relay", "kick3"]}
    assert len({w.pid for w in tr.workers.values()}) == 3
    assert_same_run_files(tmp_path / "inproc.h5", tmp_path / "zmq.h5")
    assert len(run.spikes("relay", "out").times) == 5 + 3
    # what each solver's window took, as its worker measured it
    busy = run.compute_s()
    assert sorted(busy) == sorted(tr.compute_s) and all(busy[n] == pytest.approx(tr.compute_s[n]) for n in busy)
    assert all(v > 0 for v in busy.values())


def test_solvers_in_the_coordinators_process_give_the_same_bits(tmp_path):
    """``in_coordinator``: a and kick3 computed in this process (while the workers compute),
    kick and relay grouped in a worker, b and c alone: the run file is inproc's, bit for bit;
    the solvers here were built here, and each solver's compute time is kept."""
    ps.run(three_rate_model(), tmp_path / "inproc.h5")
    tr = ZmqTransport(groups=[["relay", "kick"]], in_coordinator=["kick3", "a"])
    run = ps.run(three_rate_model(), tmp_path / "zmq.h5", transport=tr)
    assert run.status == "complete"
    assert {w.wid: w.solvers for w in tr.workers.values()} == {
        "local-b": ["b"], "local-c": ["c"], "local-0": ["kick", "relay"], "coordinator": ["a", "kick3"]}
    assert tr.workers["coordinator"].pid == os.getpid()
    assert len({w.pid for w in tr.workers.values()} - {os.getpid()}) == 3
    assert_same_run_files(tmp_path / "inproc.h5", tmp_path / "zmq.h5")
    assert len(run.spikes("relay", "out").times) == 5 + 3 and np.abs(run.signal("c", "x").data).max() > 0
    assert sorted(run.compute_s()) == sorted(three_rate_model().solvers)
    # with a core to spare for each worker... here 3 workers: the scheduler pipelines only
    # with more usable cores than worker processes (the solvers here do not count)
    assert tr.pipeline == (len(os.sched_getaffinity(0)) > 3)


@pytest.mark.parametrize("busy, n, want", [
    # the flagship's solvers (s in a 200 ms run): two balanced groups, the lighter in the coordinator
    ({"brain": 0.052, "column": 0.098, "l5": 0.092, "thalamus": 0.002}, 2,
     {"groups": [["brain", "l5"]], "in_coordinator": ["column", "thalamus"]}),
    # LPT: 7 -> g0; 5 -> g1; 4 -> g2; 3 -> g2 (4 + 3); 3 -> g1 (5 + 3); loads 7, 8, 7: the
    # coordinator takes the first of the lightest
    ({"a": 3.0, "b": 7.0, "c": 5.0, "d": 4.0, "e": 3.0}, 3,
     {"groups": [["a", "d"], ["c", "e"]], "in_coordinator": ["b"]}),
    # more processes than solvers: one each; one process: all in the coordinator
    ({"a": 1.0, "b": 2.0}, 8, {"groups": [["b"]], "in_coordinator": ["a"]}),
    ({"a": 1.0, "b": 2.0}, 1, {"groups": [], "in_coordinator": ["a", "b"]}),
])
def test_balance_packs_solvers_by_compute_and_keeps_the_lightest_group_in_the_coordinator(busy, n, want):
    got = balance(busy, n)
    assert got == want
    placed = [x for g in got["groups"] for x in g] + got["in_coordinator"]
    assert sorted(placed) == sorted(busy)
    with pytest.raises(TransportError, match=r"balance needs processes >= 1 \(got 0\)"):
        balance(busy, 0)


def test_every_solver_in_the_coordinator_needs_no_worker_even_with_launch_none(tmp_path):
    ps.run(three_rate_model(), tmp_path / "inproc.h5")
    names = list(three_rate_model().solvers)
    tr = ZmqTransport(launch="none", in_coordinator=names)
    run = ps.run(three_rate_model(), tmp_path / "zmq.h5", transport=tr)
    assert run.status == "complete" and list(tr.workers) == ["coordinator"]
    assert_same_run_files(tmp_path / "inproc.h5", tmp_path / "zmq.h5")
    with pytest.raises(TransportError, match=r"solver 'b' has no host and launch='none'; place it .* or run it "
                                             r"in_coordinator"):
        ps.run(three_rate_model(), transport=ZmqTransport(launch="none", in_coordinator=[n for n in names if n != "b"]))


def test_bad_groups_are_refused_naming_the_entry():
    with pytest.raises(TransportError, match=r"groups must be a list of lists of solver names \(got 'ab'\)"):
        ZmqTransport(groups="ab")
    with pytest.raises(TransportError, match=r"groups\[1\] must be a non-empty list of solver names \(got \[\]\)"):
        ZmqTransport(groups=[["a"], []])
    with pytest.raises(TransportError, match=r"solver 'a' is in groups\[0\] and groups\[1\]"):
        ZmqTransport(groups=[["a", "b"], ["c", "a"]])
    with pytest.raises(TransportError, match=r"groups\[0\] names no solver 'nope' \(solvers: \['dst', 'side', 'src'\]\)"):
        ps.run(long_model(5.0), transport=ZmqTransport(groups=[["src", "nope"]]))
    with pytest.raises(TransportError, match=r"groups\[0\] holds solver 'src', which is placed on host 'far'"):
        ps.run(long_model(5.0), transport=ZmqTransport(groups=[["src", "dst"]], place={"src": "far"}))
    with pytest.raises(TransportError, match=r"in_coordinator must be a non-empty list of solver names \(got 'src'\)"):
        ZmqTransport(in_coordinator="src")
    with pytest.raises(TransportError, match=r"solver 'dst' is in groups\[0\] and in_coordinator"):
        ps.run(long_model(5.0), transport=ZmqTransport(groups=[["src", "dst"]], in_coordinator=["dst"]))
    with pytest.raises(TransportError, match=r"in_coordinator names no solver 'nope'"):
        ps.run(long_model(5.0), transport=ZmqTransport(in_coordinator=["nope"]))


@pytest.mark.skipif(os.name != "posix" or not zmq.has("ipc"), reason="libzmq without ipc://")
def test_local_workers_connect_over_a_private_unix_socket_and_tcp_gives_the_same_bits(tmp_path):
    """Workers started here connect over ipc:// in a folder only this user can enter (loopback
    TCP lets any local user connect); the folder goes when the run ends. With LOCAL_IPC off they
    connect over TCP, as remote workers do, and the run file holds the same bits."""
    seen = {}

    class Watch(ZmqTransport):
        def _programs(self):            # after the handshake: every worker has joined
            seen["endpoint"], seen["dir"] = self.local_endpoint, self._ipc_dir
            seen["mode"] = os.stat(self._ipc_dir).st_mode & 0o777
            super()._programs()
    run = ps.run(three_rate_model(), tmp_path / "ipc.h5", transport=Watch())
    assert run.status == "complete"
    assert seen["endpoint"] == f"ipc://{seen['dir']}/coordinator" and seen["mode"] == 0o700
    assert not os.path.exists(seen["dir"])
    tcp = ZmqTransport()
    tcp.LOCAL_IPC = False
    ps.run(three_rate_model(), tmp_path / "tcp.h5", transport=tcp)
    assert tcp.local_endpoint == tcp.endpoint and tcp.endpoint.startswith("tcp://127.0.0.1:")
    a, _ = datasets(tmp_path / "ipc.h5")
    b, _ = datasets(tmp_path / "tcp.h5")
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_spawned_workers_give_the_same_results():
    """launch='spawn' starts `python -m polyscale worker` processes: a fresh interpreter per solver."""
    m = ramp_model()
    ref = ps.run(m)
    tr = ZmqTransport(launch="spawn")
    got = ps.run(m, transport=tr)
    assert len(tr.workers) == 2
    assert all(w.proc is not None and w.proc.returncode == 0 for w in tr.workers.values())
    for s in ("src", "dst"):
        assert np.array_equal(ref.signal(s, "x").data, got.signal(s, "x").data)
    assert np.abs(got.signal("dst", "x").data).max() > 0


# -- liveness ----------------------------------------------------------------------------------
def long_model(t_stop_ms=2000.0):
    m = ps.Model(seed=1, t_stop_ms=t_stop_ms, window_ms=1.0)
    m.solver("src", ps.solvers.LinearSystem(a=[[-0.1]], c=[1.0], dt_ms=0.1))
    m.solver("dst", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
    m.solver("side", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
    m.couple("src.x", "dst.u", delay_ms=1.0)
    m.couple("dst.x", "side.u", delay_ms=1.0)
    m.record("src.x")
    m.record("dst.x")
    return m


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _kill_at(tr, solver, sig, at_ms):
    state = {}

    def progress(t_done, t_stop, wall):
        if t_done >= at_ms * 1e6 and "pid" not in state:
            state["pid"] = tr.workers[f"local-{solver}"].pid
            state["t"] = time.monotonic()
            os.kill(state["pid"], sig)
    return state, progress


@pytest.mark.parametrize("sig, what, here", [
    (signal.SIGKILL, "was killed by signal SIGKILL", None),
    (signal.SIGSTOP, r"stopped answering \(nothing for 1 s\)", None),
    # the coordinator computing solvers of its own between windows still notices
    (signal.SIGSTOP, r"stopped answering \(nothing for 1 s\)", ["src", "side"])])
def test_a_killed_or_frozen_worker_stops_the_run_naming_solver_pid_host_and_time(sig, what, here, run_file):
    tr = ZmqTransport(timeout_s=1.0, heartbeat_s=0.2, in_coordinator=here)
    state, progress = _kill_at(tr, "dst", sig, at_ms=5.0)
    try:
        with pytest.raises(SolverError, match=rf"solver 'dst' \(worker pid \d+ on host 'local'\) {what} "
                                              rf"in the window starting at \d+ ms") as err:
            ps.run(long_model(), run_file, transport=tr, progress=progress)
        noticed = time.monotonic() - state["t"]
    finally:
        if "pid" in state and sig == signal.SIGSTOP and not _gone(state["pid"]):
            os.kill(state["pid"], signal.SIGKILL)
    assert str(state["pid"]) in str(err.value) and err.value.solver == "dst"
    # within a few seconds: at once for a dead process, timeout_s (1 s) + polling for a frozen one
    assert noticed < 3.0
    # the other workers were told to stop (or killed) and have exited; nothing is left behind
    assert all(_gone(w.pid) for w in tr.workers.values() if w.session is None)
    run = ps.load(run_file)
    assert run.status.startswith("failed: solver 'dst'")
    n = run.attrs["n_windows"]
    assert n >= 5 and err.value.t_ms == n * 1.0  # every complete window, up to the failing one
    x = run.signal("src", "x").data[:, 0]
    # x' = 1 - x/10 from 0: x(t) = 10 (1 - exp(-t/10)); exact propagator, so 1e-12
    t = run.signal("src", "x").time
    assert x.shape == (n * 10,) and np.allclose(x, 10 * (1 - np.exp(-t / 10)), rtol=1e-12, atol=1e-12)
    run.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Faulty(ps.SolverSpec):
    """One analog output; raises, sleeps or holds the GIL in the window that starts at ``at_ms``."""

    type: ClassVar[str] = "test_zmq_faulty"
    level: ClassVar[str] = "test"
    fault: str = "raise"
    at_ms: float = 3.0
    dt_ms: float = 0.1

    def ports(self):
        return {"v": ps.Port("analog", "out", 1, "mV", 100_000)}

    def build(self, ctx):
        if self.fault == "build":
            raise RuntimeError("cannot open the morphology file")
        return _Faulty(self)


class _Faulty:
    dt_ticks = 100_000

    def __init__(self, spec):
        self.spec = spec

    def advance(self, t0, t1, inputs):
        if t0 >= self.spec.at_ms * 1e6:
            if self.spec.fault == "raise":
                raise FloatingPointError("overflow in channel kinetics")
            if self.spec.fault == "gil":
                if t0 == self.spec.at_ms * 1e6:  # once, ~1 s: one C call holding the GIL
                    sum(range(40_000_000))
                return {"v": ps.Samples(t0, self.dt_ticks, np.zeros(((t1 - t0) // self.dt_ticks, 1)))}
            time.sleep(60)  # 'hang': the process lives and its heartbeat goes on
        return {"v": ps.Samples(t0, self.dt_ticks, np.zeros(((t1 - t0) // self.dt_ticks, 1)))}

    def state(self):
        return {}

    def close(self):
        pass


def faulty_model(fault):
    m = ps.Model(t_stop_ms=10.0, window_ms=1.0)
    m.solver("ok", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
    m.solver("bad", Faulty(fault=fault))
    m.couple("bad.v", "ok.u", delay_ms=1.0)
    m.record("bad.v")
    return m


@pytest.mark.parametrize("here", [False, True], ids=["worker", "in-coordinator"])
def test_a_solver_raising_in_its_worker_fails_the_run_with_its_message(run_file, here):
    where = r"in the coordinator's process" if here else r"worker pid \d+ on host 'local'"
    with pytest.raises(SolverError, match=r"solver 'bad' \(test_zmq_faulty\) raised in window \[3, \.\.\.\) ms: "
                                          rf"FloatingPointError: overflow in channel kinetics \[{where}\]") as err:
        ps.run(faulty_model("raise"), run_file, transport=ZmqTransport(in_coordinator=["bad"] if here else None))
    assert err.value.solver == "bad" and err.value.t_ms == 3.0
    with ps.load(run_file) as run:
        assert run.status.startswith("failed: solver 'bad'") and run.attrs["n_windows"] == 3


def test_a_solver_failing_to_build_in_the_coordinator_stops_the_run_at_once(run_file):
    """The other workers, which never joined, are not waited for (they could not hear 'stop')."""
    tr = ZmqTransport(in_coordinator=["bad"])
    start = time.monotonic()
    with pytest.raises(SolverError, match=r"solver 'bad' \(test_zmq_faulty\) failed to build: RuntimeError: cannot "
                                          r"open the morphology file \[in the coordinator's process\]"):
        ps.run(faulty_model("build"), run_file, transport=tr)
    assert time.monotonic() - start < 1.5     # was 2 s and more: 'stop' unanswered, then killed
    assert _gone(tr.workers["local-ok"].pid)
    with ps.load(run_file) as run:
        assert run.status.startswith("failed: solver 'bad'") and run.attrs["n_windows"] == 0


def test_a_solver_stuck_in_its_window_is_stopped_by_the_window_timeout():
    tr = ZmqTransport(window_timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(SolverError, match=r"solver 'bad' \(worker pid \d+ on host 'local'\) did not finish "
                                          r"its window within 1 s \(window_timeout_s\) in the window starting at 3 ms"):
        ps.run(faulty_model("hang"), transport=tr)
    assert time.monotonic() - start < 5.0  # not the solver's 60 s sleep: the stuck worker was killed
    assert all(_gone(w.pid) for w in tr.workers.values())


COORDINATOR = textwrap.dedent("""
    import sys, polyscale as ps
    from polyscale.coordinator.transports.zmq import ZmqTransport, balance
    sys.path.insert(0, {tests!r})
    from test_zmq import long_model
    m = long_model(t_stop_ms=1e6)
    m.place("side", host="far")
    def listen(endpoint):
        print("endpoint", endpoint, flush=True)
    tr = ZmqTransport(coordinator_timeout_s=1.5, on_listen=listen)
    def progress(t, T, w):
        if t == 2_000_000:
            print("pids", *[w.pid for w in tr.workers.values()], flush=True)
    ps.run(m, transport=tr, progress=progress)
""")


def test_workers_exit_when_the_coordinator_dies(tmp_path):
    """Forked workers notice at once (their parent is gone); a worker started by hand elsewhere
    notices the missing heartbeats (coordinator_timeout_s = 1.5 s)."""
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR.format(tests=str(REPO / "tests")))
    coord = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    far = None
    try:
        endpoint = coord.stdout.readline().split()[1]
        far = subprocess.Popen(PY + ["worker", "--connect", endpoint, "--host", "far", "--join-timeout", "20"],
                               stderr=subprocess.PIPE, text=True)
        line = coord.stdout.readline().split()
        assert line[0] == "pids", line
        pids = [int(p) for p in line[1:]]
        assert far.pid in pids and len(pids) == 3
        coord.kill()
        coord.wait(timeout=10)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and not all(_gone(p) for p in pids if p != far.pid):
            time.sleep(0.05)
        assert all(_gone(p) for p in pids if p != far.pid)
        assert far.wait(timeout=6.0) == 3
        assert "no heartbeat from the coordinator for 1.5 s; exiting" in far.stderr.read()
    finally:
        for p in (coord, far):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)


# -- bad input and garbage ----------------------------------------------------------------------
def test_bad_options_are_refused_naming_the_value():
    with pytest.raises(TransportError, match=r"binding to 10\.1\.2\.3 \(not loopback\) needs CurveZMQ keys"):
        ZmqTransport("tcp://10.1.2.3:5555")
    with pytest.raises(TransportError, match=r"bind must look like tcp://ADDRESS:PORT \(got 'ipc:///tmp/x'\)"):
        ZmqTransport("ipc:///tmp/x")
    with pytest.raises(TransportError, match=r"launch must be 'fork', 'spawn' or 'none' \(got 'ssh'\)"):
        ZmqTransport(launch="ssh")
    with pytest.raises(TransportError, match=r"timeout_s must be a number of seconds > 0 \(got 0\)"):
        ZmqTransport(timeout_s=0)
    with pytest.raises(TransportError, match=r"place names no solver \['nope'\]"):
        ps.run(long_model(5.0), transport=ZmqTransport(place={"nope": "x"}))
    m = long_model(5.0)
    m.place("src", ranks=2)
    with pytest.raises(TransportError, match=r"runs each solver in one process, but the placement asks for "
                                             r"more: \{'src': 2\} \(ranks\); use --transport mpi"):
        ps.run(m, transport="zmq")


def test_garbage_on_the_socket_is_refused_and_the_run_goes_on(tmp_path):
    """Random frames, a header of the wrong version, a malformed header, a result from a stranger,
    an oversized message and raw non-ZMTP bytes: each is refused, the run completes unchanged."""
    ctx = zmq.Context()
    junk = ctx.socket(zmq.DEALER)
    junk.linger = 0
    answers = []

    def listen(endpoint):
        junk.connect(endpoint)
        junk.send_multipart([b"\x00\x01garbage", b"more"])
        junk.send_multipart([msgpack.packb({"v": 99, "type": "hello", "solver": None, "t0": None,
                                            "t1": None, "arrays": [], "meta": {}})])
        host, port = endpoint[6:].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(os.urandom(4096))

    sent = []

    def progress(t_done, t_stop, wall):
        if not sent:
            sent.append(t_done)
            junk.send_multipart(wire.encode("result", t0=0, t1=1_000_000, meta={"results": {}}))
            junk.send_multipart([b"\x81\xa1v\x01"])  # a header map missing every other key
            junk.send_multipart(wire.encode_window("result", 0, 100_000, [np.zeros((2, 1))], [0.0]))
            junk.send_multipart(wire.encode("result", arrays={"big": np.zeros(300_000)}))  # 2.4 MB

    tr = ZmqTransport(on_listen=listen, max_message_bytes=1 << 20)
    try:
        run = ps.run(long_model(300.0), transport=tr, progress=progress)
        if junk.poll(5000):  # the coordinator answered the wrong version during its handshake
            answers.append(wire.decode(junk.recv_multipart()))
    finally:
        junk.close(0)
        ctx.term()
    assert run.status == "complete" and run.attrs["n_windows"] == 300
    ref = ps.run(long_model(300.0))
    assert np.array_equal(ref.signal("dst", "x").data, run.signal("dst", "x").data)
    assert answers and answers[0].type == "error"
    assert "header.v: wire version 99 is not supported (this side speaks 3)" in answers[0].meta["message"]
    # a window message in the compact form from a peer with no layout is refused, not decoded
    assert any("is not a window message this side takes" in why for why in tr.rejected), tr.rejected
    text = "\n".join(tr.rejected)
    assert "header: not valid msgpack" in text or "header: keys must be" in text
    assert "a 'result' message from a peer that is not a worker of this run" in text
    assert "header: keys must be v, type, solver, t0, t1, arrays, meta" in text
    # the 2.4 MB message never reached the decoder: libzmq dropped the peer at maxmsgsize


# -- hosts -------------------------------------------------------------------------------------
def _free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_two_hosts_with_curve_keys_and_unauthenticated_peers_refused(tmp_path):
    """A coordinator on 127.0.0.2 with Curve keys; solvers 'b' and 'kick' on host 'hostB', whose worker
    is started by hand as a separate process connecting from 127.0.0.1. Before it, a worker
    without keys and one with a key the coordinator does not know are both refused."""
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    assert cli_main(["keys", str(keys)]) == 0 and (keys / "authorized" / "worker.key").exists()
    assert cli_main(["keys", str(keys)]) == 2  # never overwrites keys
    generate_keys(stranger)
    # the stranger knows the coordinator's public key but holds a worker key it never authorized
    (stranger / "coordinator.key").write_bytes((keys / "coordinator.key").read_bytes())
    port = _free_port("127.0.0.2")
    connect = f"tcp://127.0.0.1:0;127.0.0.2:{port}"  # source address 127.0.0.1: the other 'host'
    refusals = []

    def listen(endpoint):
        assert endpoint == f"tcp://127.0.0.2:{port}"
        bad = [subprocess.Popen(PY + ["worker", "--connect", connect, "--host", "hostB", "--join-timeout", "20",
                                      *extra], stderr=subprocess.PIPE, text=True)
               for extra in ([], ["--keys", str(stranger)])]
        for p in bad:
            _, err = p.communicate(timeout=60)
            refusals.append((p.returncode, err))
        listen.good = subprocess.Popen(PY + ["worker", "--connect", connect, "--host", "hostB",
                                             "--keys", str(keys), "--join-timeout", "20"])
    listen.good = None

    m = three_rate_model(t_stop_ms=6.0)
    m.place("b", host="hostB")
    m.place("kick", host="hostB")  # one worker runs every solver placed on its host
    tr = ZmqTransport(f"tcp://127.0.0.2:{port}", keys=keys, on_listen=listen, join_timeout_s=30)
    try:
        run = ps.run(m, transport=tr)
        assert listen.good.wait(timeout=10) == 0
    finally:
        if listen.good is not None and listen.good.poll() is None:
            listen.good.kill()
            listen.good.wait(timeout=10)
    ref = ps.run(three_rate_model(t_stop_ms=6.0))
    for s in ("a", "b", "c"):
        assert np.array_equal(ref.signal(s, "x").data, run.signal(s, "x").data)
    assert tr.workers["host:hostB"].pid == listen.good.pid and tr.workers["host:hostB"].solvers == ["b", "kick"]
    assert np.array_equal(ref.spikes("relay", "out").times, run.spikes("relay", "out").times)
    (code1, err1), (code2, err2) = refusals
    assert code1 == 2 and "refused this worker: the security handshake failed (the coordinator may require " \
                          "CurveZMQ: give --keys DIR)" in err1
    assert code2 == 2 and "refused this worker: CurveZMQ authentication failed" in err2
    assert len(tr.refused_peers) >= 2


def test_a_worker_for_a_host_with_nothing_placed_is_told_so():
    """While the run waits for host 'there', a worker saying it is 'nowhere' is refused with the
    reason; then the worker for 'there' joins and the run completes."""
    got = {}

    def workers(endpoint):
        got["nowhere"] = subprocess.run(PY + ["worker", "--connect", endpoint, "--host", "nowhere",
                                              "--join-timeout", "20"], capture_output=True, text=True, timeout=60)
        got["there"] = subprocess.run(PY + ["worker", "--connect", endpoint, "--host", "there",
                                            "--join-timeout", "20"], capture_output=True, text=True, timeout=60)

    def listen(endpoint):
        got["thread"] = threading.Thread(target=workers, args=(endpoint,))
        got["thread"].start()

    m = long_model(3.0)
    m.place("side", host="there")
    tr = ZmqTransport(on_listen=listen, join_timeout_s=30)
    try:
        run = ps.run(m, transport=tr)
    finally:
        got["thread"].join(timeout=60)
    assert run.status == "complete" and got["there"].returncode == 0
    assert got["nowhere"].returncode == 2
    assert "refused this worker: no solver is placed on host 'nowhere' (placed: there)" in got["nowhere"].stderr


CLI_MODEL = textwrap.dedent("""
    import polyscale as ps
    model = ps.Model(t_stop_ms=5.0)
    model.solver("src", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))
    model.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1))
    model.couple("src.x", "dst.u", delay_ms=1.0)
    model.record("dst.x")
""")


def test_cli_runs_a_model_on_zmq(tmp_path):
    cfg = tmp_path / "model.py"
    cfg.write_text(CLI_MODEL)
    out = subprocess.run(PY + ["run", str(cfg), "-o", str(tmp_path / "r.h5"), "--transport", "zmq"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with ps.load(tmp_path / "r.h5") as run:
        assert run.status == "complete" and run.attrs["transport"] == "zmq"
        # dst integrates the ramp t delayed by 1 ms: x(t) = (t - 1)^2 / 2 on the step grid, summed
        # exactly by the hold rule: sum_{k < n - 10} 0.1 * (0.1 k) = 0.01 (n-10)(n-11)/2
        n = np.arange(50)
        want = np.where(n > 10, 0.01 * (n - 10) * (n - 11) / 2, 0.0)
        assert np.allclose(run.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)


def test_cli_groups_solvers_in_one_process_and_info_prints_their_compute(tmp_path, capsys):
    cfg = tmp_path / "model.py"
    cfg.write_text(CLI_MODEL)
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "g.h5"), "--transport", "zmq", "-q",
                     "--group", "src, dst"]) == 0
    with ps.load(tmp_path / "g.h5") as run:
        assert run.status == "complete" and sorted(run.compute_s()) == ["dst", "src"]
        n = np.arange(50)
        want = np.where(n > 10, 0.01 * (n - 10) * (n - 11) / 2, 0.0)
        assert np.allclose(run.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)
    capsys.readouterr()
    assert cli_main(["info", str(tmp_path / "g.h5")]) == 0
    info = capsys.readouterr().out
    assert re.search(r"  src: linear \(level \w+\), dt 0\.1 ms, compute [0-9.e-]+ s", info), info
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "h.h5"), "--group", "src,dst"]) == 2
    assert "--in-coordinator, --balance and --cpu-latency-us are options of --transport zmq" in capsys.readouterr().err
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "i.h5"), "--transport", "zmq", "--group", "src,,dst"]) == 2
    assert "--group must look like SOLVER,SOLVER,... (got 'src,,dst')" in capsys.readouterr().err
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "j.h5"), "--transport", "zmq", "-q",
                     "--in-coordinator", "dst"]) == 0
    with ps.load(tmp_path / "j.h5") as run:
        assert run.status == "complete"
        assert np.allclose(run.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)
    # --balance: placed from g.h5's compute times (the lightest group in the coordinator)
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "k.h5"), "--transport", "zmq", "-q",
                     "--balance", str(tmp_path / "g.h5")]) == 0
    with ps.load(tmp_path / "k.h5") as run:
        assert run.status == "complete"
        assert np.allclose(run.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)
    capsys.readouterr()
    other = tmp_path / "other.py"
    other.write_text(CLI_MODEL.replace('"dst"', '"sink"').replace("dst.", "sink."))
    assert cli_main(["run", str(other), "-o", str(tmp_path / "l.h5"), "--transport", "zmq",
                     "--balance", str(tmp_path / "g.h5")]) == 2
    assert "--balance: run file" in (err := capsys.readouterr().err) and "no compute time for solver(s) ['sink']" in err
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "m.h5"), "--transport", "zmq",
                     "--balance", str(tmp_path / "g.h5"), "--group", "src"]) == 2
    assert "--balance places every local solver" in capsys.readouterr().err


def test_cli_places_a_solver_on_a_worker_started_by_hand_with_keys(tmp_path):
    """`polyscale run --transport zmq --bind ... --keys ... --place dst=hostB` and `polyscale worker
    --host hostB --keys ...` started by hand: the run completes with the closed-form result."""
    cfg = tmp_path / "model.py"
    cfg.write_text(CLI_MODEL)
    keys = tmp_path / "keys"
    generate_keys(keys)
    port = _free_port("127.0.0.2")
    out = tmp_path / "r.h5"
    run = subprocess.Popen(PY + ["run", str(cfg), "-o", str(out), "--transport", "zmq", "--bind",
                                 f"tcp://127.0.0.2:{port}", "--keys", str(keys), "--place", "dst=hostB"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen(PY + ["worker", "--connect", f"tcp://127.0.0.2:{port}", "--host", "hostB",
                                    "--keys", str(keys), "--join-timeout", "30"], stderr=subprocess.PIPE, text=True)
    try:
        _, err = run.communicate(timeout=60)
        _, werr = worker.communicate(timeout=30)
    finally:
        for p in (run, worker):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    assert run.returncode == 0 and worker.returncode == 0, (err, werr)
    with ps.load(out) as r:
        assert r.status == "complete" and r.attrs["transport"] == "zmq"
        n = np.arange(50)
        want = np.where(n > 10, 0.01 * (n - 10) * (n - 11) / 2, 0.0)  # as in test_cli_runs_a_model_on_zmq
        assert np.allclose(r.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "x.h5"), "--bind", "tcp://127.0.0.1:0"]) == 2
    assert cli_main(["run", str(cfg), "-o", str(tmp_path / "x.h5"), "--transport", "zmq", "--place", "dst"]) == 2


def test_ctrl_c_to_the_process_group_stops_a_zmq_run_with_130_and_a_valid_file(tmp_path):
    """A terminal's Ctrl-C reaches the coordinator and its workers (one process group): the
    workers leave it to the coordinator, which marks the run interrupted and stops them."""
    cfg = tmp_path / "long.py"
    cfg.write_text(textwrap.dedent("""
        import polyscale as ps
        model = ps.Model(t_stop_ms=1e5, window_ms=0.1)
        model.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], c=[1.0], dt_ms=0.1))
        model.solver("b", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
        model.couple("a.x", "b.u", delay_ms=0.1)
        model.record("a.x")
    """))
    out = tmp_path / "long.h5"
    # stderr on a terminal, so the CLI draws its progress bar after each window: Ctrl-C goes
    # once a window is done. (Waiting a fixed time after the file appeared was not enough on a
    # loaded machine: forking the workers and loading their JIT code took longer, and no window
    # was written when Ctrl-C came.)
    master, slave = pty.openpty()
    proc = subprocess.Popen(PY + ["run", str(cfg), "--out", str(out), "--transport", "zmq"],
                            stdout=subprocess.PIPE, stderr=slave, text=True, start_new_session=True)
    os.close(slave)
    seen = bytearray()
    first_window = threading.Event()

    def drain():  # read the terminal until the process has gone, so its writes never block
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            seen.extend(chunk)
            if b"ms/s" in seen:
                first_window.set()
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not first_window.wait(0.1) and time.monotonic() < deadline and proc.poll() is None:
            pass
        assert first_window.is_set() and proc.poll() is None, (bytes(seen), proc.communicate())
        workers = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        reader.join(timeout=10)
        os.close(master)
    err = bytes(seen).decode(errors="replace")
    assert proc.returncode == 130, err
    assert len(workers) == 2 and all(_gone(p) for p in workers)
    with ps.load(out) as run:
        assert run.status.startswith("failed: interrupted (KeyboardInterrupt)")
        n = run.attrs["n_windows"]
        assert n > 0 and run.signal("a", "x").data.shape == (n, 1)


def test_a_slow_writer_or_progress_callback_is_not_taken_for_silent_workers():
    """Heartbeats queue up while the coordinator is away from the socket (here a progress
    callback sleeping 1.5 s, past timeout_s = 1 s): that time does not count as silence."""
    slept = []

    def progress(t_done, t_stop, wall):
        if not slept:
            slept.append(t_done)
            time.sleep(1.5)

    run = ps.run(long_model(5.0), transport=ZmqTransport(timeout_s=1.0, heartbeat_s=0.2), progress=progress)
    assert run.status == "complete" and slept


def foreign_worker(endpoint, result, bad=False):
    """A worker written from docs/wire-protocol.md alone (zmq + msgpack + numpy, no polyscale):
    it runs solver 'src', a ramp x(t) = t (ms) sampled every 0.1 ms, on host label 'foreign'."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)

    def send(type, t0=None, t1=None, arrays=(), meta=None):
        header = {"v": 3, "type": type, "solver": None, "t0": t0, "t1": t1, "meta": meta or {},
                  "arrays": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in arrays]}
        s.send_multipart([msgpack.packb(header), *[np.ascontiguousarray(a).tobytes() for _, a in arrays]])

    def recv():
        assert s.poll(10_000), "the coordinator went quiet"
        frames = s.recv_multipart()
        if frames[0][:2] == b"PW":  # a window message: prefix, [type, t0, t1, rows, compute_s], arrays
            f = frames[0]
            n = int.from_bytes(f[4:8], "little")
            h = msgpack.unpackb(f[8:8 + n])
            return {"v": f[2], "type": h[0], "t0": h[1], "t1": h[2], "rows": h[3]}, frames[1:]
        return msgpack.unpackb(frames[0]), frames[1:]

    try:
        send("hello", meta={"host": "foreign", "pid": os.getpid(), "hostname": "x", "worker": "f1", "wire": 3})
        h, _ = recv()
        assert h["type"] == "assign" and h["meta"]["solvers"] == ["src"], h
        # the layout of each result, sent once: the recording of src.x, then its coupled output
        layout = h["meta"]["result_layout"]
        assert [(e["name"], e["dtype"], e["shape"]) for e in layout] == [
            ("src/r/x/data", "<f8", [1]), ("src/l/x/data", "<f8", [1])], layout
        send("ready", meta={"solvers": ["src"]})
        while True:
            h, _ = recv()
            if h["type"] == "stop":
                send("bye")
                result["ok"] = True
                return
            if h["type"] != "advance":
                continue  # heartbeats come to the !hb socket, which this worker does without
            t0, t1 = h["t0"], h["t1"]
            n = (t1 - t0) // 100_000
            x = (t0 + 100_000 * np.arange(n)) / 1e6
            data = x[:, None].astype("<f8")
            linked = data if not bad else np.concatenate([data, data[-1:]])  # one sample too many
            # one frame: prefix (magic, version 3, inline form, header length), header padded to
            # a multiple of 8 bytes, then the arrays (whole float64s: no padding between them)
            h = msgpack.packb(["result", t0, t1, [n, len(linked)], [0.0]])
            head = b"PW\x03\x00" + len(h).to_bytes(4, "little") + h
            s.send(head + bytes(-len(head) % 8) + data.tobytes() + linked.tobytes())
    except Exception as exc:
        result["error"] = exc
    finally:
        s.close(0)
        ctx.term()


def ramp_model():
    m = ps.Model(t_stop_ms=5.0, window_ms=0.5)
    m.solver("src", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))  # a ramp x = t
    m.solver("dst", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1))
    m.couple("src.x", "dst.u", delay_ms=1.0)
    m.record("src.x")
    m.record("dst.x")
    return m


@pytest.mark.parametrize("bad", [False, True])
def test_a_worker_written_from_the_protocol_document_joins_and_is_checked(bad):
    """Solver 'src' runs in a worker that knows only docs/wire-protocol.md; what it sends is
    recorded and delivered exactly. The same worker sending one sample too many per window is
    refused with an error naming the field, and the run fails instead of computing garbage."""
    result = {}

    def listen(endpoint):
        result["thread"] = threading.Thread(target=foreign_worker, args=(endpoint, result, bad))
        result["thread"].start()

    m = ramp_model()
    m.place("src", host="foreign")
    tr = ZmqTransport(on_listen=listen, join_timeout_s=20)
    try:
        if bad:
            with pytest.raises(TransportError, match=r"solver 'src' \(worker pid \d+ on host 'foreign'\) sent a "
                                                     r"malformed result: linked src.x: 6 samples in window "
                                                     r"\[0, 500000\) ticks every 100000, expected 5"):
                ps.run(m, transport=tr)
            return
        run = ps.run(m, transport=tr)
    finally:
        result["thread"].join(timeout=30)
    assert "error" not in result and result.get("ok")
    n = np.arange(50)
    assert np.array_equal(run.signal("src", "x").data[:, 0], n * 100_000 / 1e6)  # as sent, bit for bit
    # dst integrates the ramp delayed by 1 ms (hold): x_n = 0.1 * sum_{k=10}^{n-1} 0.1 (k - 10);
    # a sum of at most 40 terms, so 1e-12
    want = np.where(n > 10, 0.01 * (n - 10) * (n - 11) / 2, 0.0)
    assert np.allclose(run.signal("dst", "x").data[:, 0], want, rtol=1e-12, atol=1e-12)


def test_a_worker_busy_holding_the_gil_is_not_taken_for_hung():
    """A solver holding the GIL in one call silences its worker's heartbeat for longer than
    timeout_s (0.2 s here); the worker uses CPU meanwhile, so it is busy, not hung."""
    tr = ZmqTransport(timeout_s=0.2, heartbeat_s=0.05)
    run = ps.run(faulty_model("gil"), transport=tr)
    assert run.status == "complete"
    assert tr.compute_s["bad"] > 0.25  # the GIL really was held longer than timeout_s in one window
