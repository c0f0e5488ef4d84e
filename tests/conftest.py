"""Shared fixtures: run-file paths, the transports every scenario runs on, reference data."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from polyscale.coordinator.transports import TRANSPORTS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _sigint_as_at_a_terminal():
    """The suite may be started with SIGINT ignored (a background job of a shell without job
    control: POSIX gives it SIG_IGN, which Python and every run it starts would inherit and
    honour); the Ctrl-C tests need SIGINT as a terminal has it, here and in their runs (a
    Python-level handler is reset to the default on exec)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    """A path for a run file that does not exist yet."""
    return tmp_path / "run.h5"


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request) -> str:
    """Every available transport; each scenario parametrized over it must give the same result.

    'mpi' runs in the test process as a one-rank job (tests/test_mpi.py launches real mpiexec
    jobs of 2 and 3 ranks)."""
    if request.param == "mpi":
        pytest.importorskip("mpi4py", reason="the mpi transport needs mpi4py: pip install -e '.[mpi]'")
    return request.param


@pytest.fixture(scope="session")
def reference() -> Path:
    """../shared/reference (or $POLYSCALE_REFERENCE); tests using it skip if it is absent."""
    path = Path(os.environ.get("POLYSCALE_REFERENCE", REPO.parent / "shared" / "reference"))
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set POLYSCALE_REFERENCE)")
    return path


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"


def interrupt_when_running(cmd, out: Path, *, env=None, settle_s: float = 3.0):
    """Start ``cmd`` (a `polyscale run` writing ``out``), send it SIGINT once the run file exists
    and ``settle_s`` more seconds have passed (compile, windows written out), and return
    (returncode, stderr). Bounded: never waits more than ~90 s."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)   # the file appears once imports are done and the model is planned
        time.sleep(settle_s)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, err



def feed_spikes(spec, n, ticks, ids, t_stop, cuts=(), period=100_000, coupling="src.spikes -> dst.x"):
    """Run a spikes-consuming adapter ``spec`` on sorted spikes (``ticks``, ``ids``) of ``n``
    channels over [0, t_stop), in windows cut at the ticks ``cuts``, for a target sampled every
    ``period`` ticks; checks each window's output grid and returns the (samples, channels) output."""
    import numpy as np
    import polyscale as ps
    from polyscale.coordinator.signals import SignalSpec
    from polyscale.coordinator.specs import AdapterContext
    incoming = SignalSpec("spikes", n)
    ctx = AdapterContext(coupling, t_stop, period)
    sig = spec.signature(incoming, ctx)
    adapter = spec.build(incoming, ctx)
    out = []
    edges = [0, *cuts, t_stop]
    for t0, t1 in zip(edges[:-1], edges[1:]):
        now = (ticks >= t0) & (ticks < t1)
        s = adapter(t0, t1, ps.Spikes(ticks[now], ids[now]))
        assert (s.t0, s.period) == (t0, sig.period_ticks)
        assert s.data.shape == ((t1 - t0) // sig.period_ticks, sig.size)
        out.append(s.data)
    return np.concatenate(out)


@pytest.fixture(scope="session")
def tvb_raw():
    """run(model, coupling, weights, lengths_mm, x0 (n_sv, n), t_ms, speed=3.0, integrator=None):
    TVB's own deterministic run (HeunDeterministic, dt 0.1 ms unless an integrator is given) of
    a region network from a history held at x0, as TVB's Raw monitor gives it: (n_steps, n_sv, n),
    row k the state after step k + 1. Skips where TVB is not installed."""
    pytest.importorskip("tvb.simulator.simulator", reason="TVB is not installed: pip install 'polyscale[tvb]'")
    import warnings

    import numpy as np

    def run(model, cfun, w, lengths, x0, t_ms, speed=3.0, integrator=None):
        from tvb.datatypes import connectivity
        from tvb.simulator import integrators, monitors, simulator
        w, lengths, x0 = (np.asarray(a, dtype=np.float64) for a in (w, lengths, x0))
        n, n_sv = w.shape[0], x0.shape[0]
        model.variables_of_interest = tuple(model.state_variables)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            conn = connectivity.Connectivity(weights=w, tract_lengths=lengths, centres=np.zeros((n, 3)),
                                             region_labels=np.array([f"r{i}" for i in range(n)]),
                                             speed=np.array([speed]))
            conn.configure()
            horizon = int(np.rint(lengths / speed / 0.1).max()) + 1
            ic = np.repeat(x0[None, :, :, None], horizon, axis=0)
            sim = simulator.Simulator(
                model=model, connectivity=conn, coupling=cfun,
                integrator=integrators.HeunDeterministic(dt=0.1) if integrator is None else integrator,
                monitors=(monitors.Raw(variables_of_interest=np.arange(n_sv)),),
                simulation_length=t_ms, initial_conditions=ic, conduction_speed=speed)
            sim.configure()
            (_, y), = sim.run()
        return y[:, :, :, 0]
    return run
