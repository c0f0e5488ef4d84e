"""Holding the CPUs' wake-up latency (coordinator/cpu_latency.py): the bound written and held as
Linux's PM QoS file wants it, released at the end, a warning where it cannot be held, and the
zmq transport and the worker's options.

The PM QoS file itself (/dev/cpu_dma_latency) needs root and changes the whole machine, so the
tests point the module at a regular file: what the kernel reads from that file is the int32
written to it while the file stays open, which a regular file shows as well.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

import polyscale as ps
from polyscale.coordinator import cpu_latency
from polyscale.coordinator.cpu_latency import MAX_US, LatencyHold
from polyscale.coordinator.errors import TransportError
from polyscale.coordinator.transports.zmq import ZmqTransport
from polyscale.coordinator.worker import serve
from test_zmq import assert_same_run_files, three_rate_model


@pytest.fixture
def qos_file(tmp_path, monkeypatch):
    path = tmp_path / "cpu_dma_latency"
    path.write_bytes(b"")
    monkeypatch.setattr(cpu_latency, "PATH", str(path))
    return path


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_the_bound_is_written_as_an_int32_held_open_and_released(qos_file):
    hold = LatencyHold(37)
    assert hold.hold() and hold.held
    fd = hold._fd
    assert qos_file.read_bytes() == struct.pack("=i", 37) and _is_open(fd)
    assert hold.hold()     # held already: nothing written twice
    assert qos_file.read_bytes() == struct.pack("=i", 37)
    hold.release()
    assert not hold.held and not _is_open(fd)
    hold.release()         # idempotent
    with LatencyHold(0) as h:
        assert h.held
        fd = h._fd
    assert not _is_open(fd)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0", MAX_US + 1])
def test_bounds_that_are_not_whole_microseconds_in_range_are_refused_naming_the_option(bad):
    with pytest.raises(TransportError, match=r"zmq transport: cpu_latency_us: must be None or a whole "
                                             r"number of microseconds in \[0, 2000000000\] .*\(got "
                                             + repr(bad).replace(".", r"\.") + r"\)"):
        ZmqTransport(cpu_latency_us=bad)
    with pytest.raises(TransportError, match=r"polyscale worker: cpu_latency_us"):
        serve("tcp://127.0.0.1:1", cpu_latency_us=bad, join_timeout_s=0.1)


def test_without_access_a_warning_says_why_and_the_run_goes_on(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-file"
    monkeypatch.setattr(cpu_latency, "PATH", str(missing))
    tr = ZmqTransport(cpu_latency_us=0)
    with pytest.warns(RuntimeWarning, match=r"zmq transport: could not hold the CPUs' wake-up latency at 0 us "
                                            r"\(cannot open .*no-such-file: No such file or directory\); the run "
                                            r"goes on without it\. It needs write access to"):
        run = ps.run(three_rate_model(), tmp_path / "r.h5", transport=tr)
    assert run.status == "complete" and not tr.cpu_latency.held
    assert "no-such-file" in tr.cpu_latency.reason


def test_a_zmq_run_holds_the_bound_while_it_lasts_and_gives_the_same_bits(tmp_path, qos_file):
    tr = ZmqTransport(cpu_latency_us=0)
    held = []
    run = ps.run(three_rate_model(), tmp_path / "zmq.h5", transport=tr,
                 progress=lambda done, stop, wall: held.append(tr.cpu_latency.held))
    assert run.status == "complete" and held and all(held)
    assert qos_file.read_bytes() == struct.pack("=i", 0) and not tr.cpu_latency.held
    ps.run(three_rate_model(), tmp_path / "inproc.h5")
    assert_same_run_files(tmp_path / "inproc.h5", tmp_path / "zmq.h5")


def test_a_failed_run_releases_the_bound(tmp_path, qos_file):
    m = three_rate_model()
    m.place("a", ranks=2)     # refused by the zmq transport's start
    tr = ZmqTransport(cpu_latency_us=5)
    with pytest.raises(TransportError, match="ranks"):
        ps.run(m, tmp_path / "r.h5", transport=tr)
    assert qos_file.read_bytes() == struct.pack("=i", 5) and not tr.cpu_latency.held


def test_the_cli_passes_the_option_to_zmq_and_refuses_it_elsewhere(tmp_path, capsys):
    cfg = tmp_path / "model.py"
    cfg.write_text("import polyscale as ps\nmodel = ps.Model(t_stop_ms=1.0)\n"
                   "model.solver('a', ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))\nmodel.record('a.x')\n")
    out = subprocess.run([sys.executable, "-m", "polyscale", "run", str(cfg), "-o", str(tmp_path / "r.h5"),
                          "--cpu-latency-us", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--cpu-latency-us are options of --transport zmq" in out.stderr
    from polyscale.cli import main as cli_main
    args = ["run", str(cfg), "-o", str(tmp_path / "z.h5"), "--transport", "zmq", "-q", "--cpu-latency-us", "-3"]
    # refused by the transport, as a bad --bind is: the run fails before anything starts
    assert cli_main(args) == 1
    assert "zmq transport: cpu_latency_us: must be None or a whole number" in capsys.readouterr().err


def test_a_worker_started_by_hand_holds_the_bound_on_its_machine_while_it_serves(tmp_path, qos_file, monkeypatch):
    import threading
    events = []
    hold, release = LatencyHold.hold, LatencyHold.release
    monkeypatch.setattr(LatencyHold, "hold", lambda self: events.append(("hold", self.what)) or hold(self))
    monkeypatch.setattr(LatencyHold, "release", lambda self: events.append(("release", self.what)) or release(self))
    m = ps.Model(seed=3, t_stop_ms=2.0)
    m.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], x0=[1.0], dt_ms=0.1))
    m.record("a.x")
    m.place("a", host="h1")
    done = {}

    def worker(address):
        t = threading.Thread(target=lambda: done.setdefault("code", serve(address, host="h1", cpu_latency_us=0)))
        t.start()
        done["thread"] = t
    run = ps.run(m, tmp_path / "r.h5", transport=ZmqTransport(launch="none", on_listen=worker))
    done["thread"].join(timeout=30)
    assert run.status == "complete" and done["code"] == 0
    assert events == [("hold", "polyscale worker"), ("release", "polyscale worker")]
    assert qos_file.read_bytes() == struct.pack("=i", 0)
