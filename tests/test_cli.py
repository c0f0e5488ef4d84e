"""The command line (polyscale/cli.py): `run`, `check`, `info`, their options and exit codes
(0 done, 1 the run failed, 2 bad input, 130 interrupted). Called in-process through main();
one test runs the real `python -m polyscale` and `polyscale` executables."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pytest

import polyscale as ps
from polyscale.cli import main

from conftest import interrupt_when_running

CONFIG = """\
import polyscale as ps

def build(n: int = 2, label="default", t_stop_ms: float = 2.0):
    model = ps.Model(seed=5, t_stop_ms=t_stop_ms)
    model.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.25, 0.75], size=n))
    model.solver("relay", ps.solvers.SpikeRelay(size=n))
    model.couple("kick.spikes", "relay.in", delay_ms=1.0)
    model.record("relay.out")
    model.metadata["params"] = {"n": n, "label": label}
    return model
"""

BAD = """\
import polyscale as ps
model = ps.Model(seed=1, t_stop_ms=10.0)
model.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
model.solver("b", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
model.couple("a.x", "b.u", delay_ms=0.05)
model.couple("a.x", "b.nope", delay_ms=1.0)
model.record("c.x")
"""

# A solver defined in the config itself: fails (or is interrupted) in the window holding 1.5 ms.
# Each test gives it its own type name: a type name belongs to one class per process.
FAILING = """\
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polyscale as ps


@dataclass(frozen=True, slots=True, kw_only=True)
class Failing(ps.SolverSpec):
    type: ClassVar[str] = "{type}"
    level: ClassVar[str] = "test"
    interrupt: bool = False
    dt_ms: float = 0.1

    def ports(self):
        return {{"x": ps.Port("analog", "out", 1, "", 100_000)}}

    def build(self, ctx):
        return _Live(self.interrupt)


class _Live:
    dt_ticks = 100_000

    def __init__(self, interrupt):
        self.interrupt = interrupt

    def advance(self, t0, t1, inputs):
        if t0 <= 1_500_000 < t1:
            raise KeyboardInterrupt if self.interrupt else RuntimeError("boom")
        return {{"x": ps.Samples(t0, 100_000, np.zeros(((t1 - t0) // 100_000, 1)))}}

    def state(self):
        return {{}}

    def close(self):
        pass


model = ps.Model(seed=1, t_stop_ms=3.0, window_ms=0.5)
model.solver("bad", Failing(interrupt={interrupt}))
model.record("bad.x")
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch) -> Path:
    """Every test runs in its own folder (`run` writes CONFIG.h5 there by default)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(tmp_path: Path, text: str, name: str = "config.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def attrs(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return dict(f.attrs)


def assert_output(text: str, pattern: str) -> None:
    """``pattern`` is found in ``text`` (re.M: ^ and $ match at every line; \\Z at the end only)."""
    assert re.search(pattern, text, re.M), f"{pattern!r} not found in {text!r}"


def stored_model(path: Path) -> dict:
    with ps.load(path) as run:
        return run.model


# -- run ------------------------------------------------------------------------------------

def test_run_writes_the_run_file_and_prints_a_summary_line(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(write(tmp_path, CONFIG)), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: 2 ms simulated in \d+\.\d\d s wall "
                        r"\(2 windows, status complete\)\n", stdout)
    a = attrs(out)
    assert (a["status"], a["t_done_ms"], a["n_windows"], a["seed"]) == ("complete", 2.0, 2, 5)


def test_run_writes_config_name_h5_by_default(tmp_path: Path, capsys):
    assert main(["run", str(write(tmp_path, CONFIG, "mymodel.py"))]) == 0
    assert attrs(tmp_path / "mymodel.h5")["status"] == "complete"


def test_parameters_reach_build_as_literals_or_strings(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    code = main(["run", str(write(tmp_path, CONFIG)), "--out", str(out),
                 "-p", "n=3", "-p", "label=foo bar", "--param", "t_stop_ms=4.0"])
    assert code == 0
    model = stored_model(out)
    assert model["metadata"]["params"] == {"n": 3, "label": "foo bar"}
    assert model["solvers"]["kick"]["size"] == 3
    assert attrs(out)["t_stop_ms"] == 4.0


def test_unknown_parameter_is_an_error_listing_the_known_ones(tmp_path: Path, capsys):
    assert main(["run", str(write(tmp_path, CONFIG)), "-p", "scale=0.5"]) == 2
    err = capsys.readouterr().err
    assert_output(err, r"^polyscale: error: config '.*config\.py': build\(\) takes no parameter "
                       r"'scale' \(it takes: n, label, t_stop_ms\)$")
    assert not (tmp_path / "config.h5").exists()


def test_t_stop_and_seed_override_the_model(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    config = str(write(tmp_path, CONFIG))
    assert main(["run", config, "--out", str(out), "--t-stop", "5", "--seed", "42"]) == 0
    a = attrs(out)
    assert (a["t_stop_ms"], a["t_done_ms"], a["n_windows"], a["seed"]) == (5.0, 5.0, 5, 42)
    assert (stored_model(out)["seed"], stored_model(out)["t_stop_ms"]) == (42, 5.0)


def test_existing_run_file_is_kept_without_force_and_replaced_with_it(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    out.write_bytes(b"keep me")
    config = str(write(tmp_path, CONFIG))
    assert main(["run", config, "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert_output(capsys.readouterr().err, r"^polyscale: error: run file .*out\.h5' exists; .*--force")
    assert main(["run", config, "--out", str(out), "--force"]) == 0
    assert attrs(out)["status"] == "complete"


def test_run_file_in_a_missing_folder_is_bad_input(tmp_path: Path, capsys):
    assert main(["run", str(write(tmp_path, CONFIG)), "--out", str(tmp_path / "no" / "out.h5")]) == 2
    assert_output(capsys.readouterr().err, r"^polyscale: error: cannot write run file .*: folder .*no' "
                                           r"does not exist$")


def test_failing_solver_exits_1_and_the_run_file_says_why(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(write(tmp_path, FAILING.format(type="test_cli_raises", interrupt=False))),
                 "--out", str(out)]) == 1
    assert_output(capsys.readouterr().err, r"^polyscale: run failed: SolverError: solver 'bad' "
                                           r"\(test_cli_raises\) raised in window \[1\.5, \.\.\.\) ms: "
                                           r"RuntimeError: boom$")
    a = attrs(out)
    assert a["status"].startswith("failed: solver 'bad'")
    assert (a["n_windows"], a["t_done_ms"]) == (3, 1.5)


def test_interrupted_run_exits_130_and_keeps_the_complete_windows(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(write(tmp_path, FAILING.format(type="test_cli_interrupts", interrupt=True))),
                 "--out", str(out)]) == 130
    assert_output(capsys.readouterr().err, r"^polyscale: interrupted; the run file keeps every "
                                           r"complete window$")
    a = attrs(out)
    assert a["status"].startswith("failed: interrupted")
    assert (a["n_windows"], a["t_done_ms"]) == (3, 1.5)


def test_seed_override_works_for_a_solver_defined_in_the_config(tmp_path: Path, capsys):
    text = FAILING.format(type="test_cli_seed", interrupt=False).replace("t_stop_ms=3.0", "t_stop_ms=1.0")
    out = tmp_path / "out.h5"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "--seed", "9", "--t-stop", "1.2"]) == 0
    a = attrs(out)
    assert (a["status"], a["seed"], a["t_done_ms"]) == ("complete", 9, 1.2)


# -- bad configs ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("text, message", [
    pytest.param(None, r"config file '.*config\.py' does not exist", id="missing"),
    pytest.param("import polyscale\nx = [1][2]\n", r"config '.*config\.py' raised IndexError: "
                 r"list index out of range \(line 2\)", id="raises"),
    pytest.param("x = 1\n", r"config '.*config\.py' defines neither `model` nor `build\(\*\*params\)`",
                 id="no-model"),
    pytest.param("model = 'a model'\n", r"config '.*config\.py': `model` is str, not a polyscale\.Model",
                 id="model-wrong-type"),
])
def test_bad_config_exits_2_with_a_clear_message(tmp_path: Path, capsys, command, text, message):
    path = tmp_path / "config.py"
    if text is not None:
        path.write_text(text)
    assert main([command, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_output(captured.err, r"\Apolyscale: error: " + message + r"\n\Z")
    assert not (tmp_path / "config.h5").exists()


# -- check ------------------------------------------------------------------------------------

def test_check_prints_the_plan_and_ok(examples_dir: Path, capsys):
    assert main(["check", str(examples_dir / "coupled_oscillators.py"), "--t-stop", "100"]) == 0
    out = capsys.readouterr().out
    for line in (r"model: seed 1234, t_stop 100 ms, window 2 ms \(limited by coupling kick\.spikes -> "
                 r"left\.u\), 50 windows",
                 r"  left: linear \(generic\), dt 0\.1 ms",
                 r"  right: linear \(generic\), dt 0\.05 ms",
                 r"  kick: spike_train \(stimulus\), dt 0\.1 ms",
                 r"  left\.x\[0\] -> right\.u: delay 5 ms, weight 0\.001, hold",
                 r"  right\.x\[0\] -> left\.u: delay 8 ms, weight -0\.001, hold",
                 r"  kick\.spikes -> left\.u: delay 2 ms via spikes_to_rate -> affine",
                 r"  electrode: linear_readout \(analog\), 2 channels \[mV\] every 0\.1 ms from left, right",
                 r"ok: the model is valid"):
        assert re.search(f"^{line}$", out, re.M), line
    assert list(Path.cwd().iterdir()) == []   # check runs nothing and writes nothing


def test_check_applies_parameters(tmp_path: Path, capsys):
    assert main(["check", str(write(tmp_path, CONFIG)), "-p", "n=4", "-p", "t_stop_ms=6.0"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^model: seed 5, t_stop 6 ms, window 1 ms .*, 6 windows$", out, re.M)
    assert re.search(r"^    out spikes: spikes x4$", out, re.M)


def test_check_of_a_bad_model_prints_every_problem_and_exits_2(tmp_path: Path, capsys):
    assert main(["check", str(write(tmp_path, BAD))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_output(captured.err,
                  r"\Apolyscale: error: 3 problems in model:\n"
                  r" - coupling a\.x -> b\.nope: solver 'b' has no input port 'nope' \(has: 'u'\)\n"
                  r" - coupling a\.x -> b\.u: delay_ms=0\.05 is shorter than the shortest possible "
                  r"window, 0\.1 ms .*\n"
                  r" - recording c\.x: there is no solver 'c' \(solvers: 'a', 'b'\)\n\Z")


def test_run_of_a_bad_model_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    assert main(["run", str(write(tmp_path, BAD))]) == 2
    assert not (tmp_path / "config.h5").exists()


# -- info -------------------------------------------------------------------------------------

def test_info_reads_a_run_file_back(tmp_path: Path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(write(tmp_path, CONFIG)), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    with ps.load(out) as run:
        assert text == run.summary() + "\n"
    for line in (r"status: complete", r"  kick: spike_train \(level stimulus\), dt 0\.1 ms, compute [0-9.e-]+ s",
                 r"  relay/out: 2 spikes from 2 channels \(500 Hz per channel\)"):
        assert re.search(f"^{line}$", text, re.M), line


@pytest.mark.parametrize("make, message", [
    pytest.param(None, r"run file '.*nope\.h5' does not exist", id="missing"),
    pytest.param(lambda p: p.write_text("text"), r"cannot read run file '.*nope\.h5'", id="not-hdf5"),
])
def test_info_of_something_that_is_no_run_file_exits_2(tmp_path: Path, capsys, make, message):
    path = tmp_path / "nope.h5"
    if make is not None:
        make(path)
    assert main(["info", str(path)]) == 2
    assert_output(capsys.readouterr().err, r"^polyscale: error: " + message)


# -- the command line itself ------------------------------------------------------------------

def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"polyscale {ps.__version__}\n"


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "x.py"])
    assert info.value.code == 2
    assert_output(capsys.readouterr().err, r"^polyscale: error: argument COMMAND: invalid choice: 'simulate'")


def test_example_runs_end_to_end(examples_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "oscillators.h5"
    example = str(examples_dir / "coupled_oscillators.py")
    assert main(["run", example, "--out", str(out), "--t-stop", "100"]) == 0
    with ps.load(out) as run:
        assert (run.status, run.attrs["t_done_ms"], run.attrs["n_windows"]) == ("complete", 100.0, 50)
        assert run.signal("left", "x").data.shape == (200, 2)       # every 0.5 ms
        assert run.signal("right", "x").data.shape == (200, 1)
        assert run.probe("electrode").data.shape == (1000, 2)       # every 0.1 ms
        assert list(run.spikes("kick", "spikes").times) == [50.0, 50.5, 51.0]   # 300 ms is after t_stop
    assert main(["info", str(out)]) == 0
    assert_output(capsys.readouterr().out, r"^  electrode: analog, 1000 samples x 2 channels \[mV\]$")


def test_real_executables_run_and_describe_a_model(tmp_path: Path):
    script = shutil.which("polyscale", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip(f"no polyscale script beside {sys.executable} (pip install -e .)")
    config, out = write(tmp_path, CONFIG), tmp_path / "out.h5"
    ran = subprocess.run([sys.executable, "-m", "polyscale", "run", str(config), "--out", str(out),
                          "-p", "n=3", "--seed", "11"], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: 2 ms .*status complete\)\n", ran.stdout)
    info = subprocess.run([script, "info", str(out)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert re.search(r"^seed 11, t_stop 2 ms, window 1 ms, 2 windows written up to 2 ms", info.stdout, re.M)
    assert re.search(r"^  relay/out: 2 spikes from 3 channels", info.stdout, re.M)
    before = out.read_bytes()
    again = subprocess.run([sys.executable, "-m", "polyscale", "run", str(config), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert (again.returncode, again.stdout) == (2, "")
    assert out.read_bytes() == before


# -- a real Ctrl-C and a real terminal ------------------------------------------------------------

LONG = """
import polyscale as ps
model = ps.Model(seed=1, t_stop_ms=1e5, window_ms=0.1)
model.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], c=[1.0], dt_ms=0.1))
model.record("a.x")
"""


def test_sigint_stops_a_real_run_with_130_and_a_valid_file(tmp_path: Path):
    """SIGINT (Ctrl-C) to a running `polyscale run`: exit 130, status 'failed: interrupted',
    and every written window complete (samples = windows x samples per window)."""
    out = tmp_path / "long.h5"
    cfg = tmp_path / "long.py"
    cfg.write_text(LONG)
    returncode, err = interrupt_when_running(
        [sys.executable, "-m", "polyscale", "run", str(cfg), "--out", str(out)], out)
    assert returncode == 130, err
    assert "interrupted; the run file keeps every complete window" in err
    with ps.load(out) as run:
        assert run.status.startswith("failed: interrupted (KeyboardInterrupt)")
        n = run.attrs["n_windows"]
        assert n > 0 and run.attrs["t_done_ms"] == pytest.approx(0.1 * n)
        assert run.signal("a", "x").data.shape == (n, 1)


def test_progress_bar_on_a_terminal_and_none_in_logs(tmp_path: Path):
    import os
    import pty

    cfg = tmp_path / "short.py"
    cfg.write_text(LONG.replace("t_stop_ms=1e5", "t_stop_ms=50.0"))
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "polyscale", "run", str(cfg), "--out", str(tmp_path / "a.h5")],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:   # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    tty = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert re.search(r"\[#{30}\] 100\.0%  50\.0/50\.0 ms  wall \d+\.\d s  \S+ ms/s", tty), tty
    # not a terminal: no bar at all
    logged = subprocess.run([sys.executable, "-m", "polyscale", "run", str(cfg), "--out", str(tmp_path / "b.h5")],
                            capture_output=True, text=True, timeout=60)
    assert logged.returncode == 0 and logged.stderr == ""


def test_run_under_an_mpi_launcher_without_the_mpi_transport_is_refused(tmp_path: Path, capsys, monkeypatch):
    """mpiexec -n 4 polyscale run ... without --transport mpi would run the model 4 times over."""
    monkeypatch.setenv("PMI_SIZE", "4")
    cfg = tmp_path / "m.py"
    cfg.write_text(LONG.replace("t_stop_ms=1e5", "t_stop_ms=1.0"))
    assert main(["run", str(cfg), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"one of 4 MPI ranks .* but --transport is 'inproc'.*add --transport mpi", err), err
    assert not (tmp_path / "x.h5").exists()


def test_a_long_compile_gets_one_notice_on_the_terminal_a_cache_load_none():
    """numba compile events (numba.core.event, what every dispatcher's compile or cache load
    triggers): one shorter than the delay prints nothing; the first longer one prints the
    notice once, and a second long one nothing more; after the block no listener is left."""
    import io

    from numba.core import event

    from polyscale.cli import _CompileNotice
    buf = io.StringIO()
    with _CompileNotice(buf, delay_s=0.1) as notice:
        with event.trigger_event("numba:compile", data={}):
            pass
        time.sleep(0.2)
        assert buf.getvalue() == ""
        for _ in range(2):
            with event.trigger_event("numba:compile", data={}):
                time.sleep(0.4)
        assert buf.getvalue().count("compiling the model's kernels") == 1
    assert notice not in event._registered.get("numba:compile", [])
