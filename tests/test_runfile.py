"""The run file (coordinator/runfile.py) through the public API: ps.run(model, out=...), ps.load.

Checks that what is written matches docs/run-file.md (attributes, groups, units, time axes), that
existing files and bad paths are refused before anything runs, that load() refuses what it
cannot read, and that a run which fails (a solver raises, Ctrl-C) leaves a valid file holding
exactly the complete windows before the failure.
"""
from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.transports.inproc import InProcTransport
from polyscale.coordinator.time import TICKS_PER_MS, to_ticks

DOC = Path(__file__).resolve().parents[1] / "docs" / "run-file.md"


# -- a test-only solver -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Scripted(ps.SolverSpec):
    """Test-only: counts its steps and fires one spike per window; fails when told to.

    Ports: ``count`` (analog out, 1 channel, every dt: the step index), ``E.spikes`` (spikes
    out, 2 channels: one spike at t0 + dt of every window, on channel (window index) % 2).
    fail_at_ms : raise RuntimeError (or KeyboardInterrupt if ``interrupt``) in the window
        holding this time
    fail_in_build : raise RuntimeError from build()
    """

    type: ClassVar[str] = "test_scripted"
    level: ClassVar[str] = "test"

    fail_at_ms: float | None = None
    interrupt: bool = False
    fail_in_build: bool = False
    dt_ms: float = 0.1

    def ports(self) -> dict[str, ps.Port]:
        p = to_ticks(self.dt_ms, "scripted: dt_ms")
        return {"count": ps.Port("analog", "out", 1, "", p), "E.spikes": ps.Port("spikes", "out", 2)}

    def build(self, ctx: ps.SolverContext) -> "_ScriptedSolver":
        if self.fail_in_build:
            raise RuntimeError("cannot build")
        return _ScriptedSolver(self)


class _ScriptedSolver:
    def __init__(self, spec: Scripted):
        self.spec = spec
        self.dt_ticks = to_ticks(spec.dt_ms, "scripted: dt_ms")
        self.fail = None if spec.fail_at_ms is None else to_ticks(spec.fail_at_ms, "fail_at_ms")
        self.windows = 0

    def advance(self, t0: int, t1: int, inputs) -> ps.WindowResult:
        if self.fail is not None and t0 <= self.fail < t1:
            if self.spec.interrupt:
                raise KeyboardInterrupt
            raise RuntimeError("boom")
        k0, n = t0 // self.dt_ticks, (t1 - t0) // self.dt_ticks
        count = np.arange(k0, k0 + n, dtype=np.float64)[:, None]
        spikes = ps.Spikes(np.array([t0 + self.dt_ticks], np.int64), np.array([self.windows % 2], np.int64))
        self.windows += 1
        return ps.WindowResult(outputs={"count": ps.Samples(t0, self.dt_ticks, count), "E.spikes": spikes})

    def state(self) -> dict[str, np.ndarray]:
        return {"windows": np.array(self.windows)}

    def close(self) -> None:
        pass


# -- models -------------------------------------------------------------------------------------

KICK_MS = (0.25, 1.5, 3.75)      # binary fractions: ms values and their sums are exact floats
KICK_IDS = (0, 1, 0)
RELAY_DELAY_MS = 2.0
READOUT = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
POSITIONS_UM = ((0.0, 0.0, 0.0), (0.0, 0.0, 100.0), (0.0, 0.0, 200.0))


def clock(dt_ms: float = 0.1) -> ps.solvers.LinearSystem:
    """x' = (1, 2): x(t) = (t, 2t), t in ms."""
    return ps.solvers.LinearSystem(a=[[0.0, 0.0], [0.0, 0.0]], c=[1.0, 2.0], dt_ms=dt_ms, units="mV")


def relay_model(t_stop_ms: float = 8.0) -> ps.Model:
    """kick --(2 ms)--> relay; clock read out by a 3-channel probe. Window 2 ms (the delay)."""
    m = ps.Model(seed=1234, t_stop_ms=t_stop_ms)
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=KICK_MS, ids=KICK_IDS, size=2))
    m.solver("relay", ps.solvers.SpikeRelay(size=2))
    m.solver("clock", clock())
    m.couple("kick.spikes", "relay.in", delay_ms=RELAY_DELAY_MS)
    m.record("kick.spikes")
    m.record("relay.out")
    m.record("clock.x")
    m.probe("electrode", ps.probes.LinearReadout(weights={"clock.x": READOUT}, units="mV",
                                                 modality="lfp", positions_um=POSITIONS_UM))
    return m


def failing_model(**scripted) -> ps.Model:
    """clock and a Scripted solver 'bad', 1 ms windows up to 5 ms, both recorded."""
    m = ps.Model(seed=7, t_stop_ms=5.0, window_ms=1.0)
    m.solver("clock", clock())            # first: it has advanced when 'bad' fails
    m.solver("bad", Scripted(**scripted))
    m.record("clock.x")
    m.record("bad.count")
    m.record("bad.E.spikes")
    return m


@pytest.fixture
def relay_run(run_file: Path) -> Path:
    ps.run(relay_model(), out=run_file).close()
    return run_file


def documented(heading: str) -> set[str]:
    """Names in the first column of the table under ``heading`` in docs/run-file.md."""
    text = DOC.read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z_]+)` \|", section, re.M))


# -- the schema ---------------------------------------------------------------------------------

def test_root_attributes_hold_format_versions_options_and_status(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        a = dict(f.attrs)
    assert a["format"] == "polyscale-run"
    assert a["format_version"] == 1
    assert a["polyscale_version"] == ps.__version__
    versions = json.loads(a["versions"])
    assert set(versions) == {"polyscale", "python", "numpy", "scipy", "numba", "h5py", "hdf5"}
    assert versions["polyscale"] == ps.__version__
    assert versions["numpy"] == np.__version__
    assert versions["h5py"] == h5py.__version__
    assert a["seed"] == 1234
    assert a["t_stop_ms"] == 8.0
    assert a["window_ms"] == RELAY_DELAY_MS
    assert a["tick_ms"] == 1.0 / TICKS_PER_MS
    assert a["transport"] == "inproc"
    created = datetime.datetime.fromisoformat(a["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created) < datetime.timedelta(minutes=10)
    assert a["status"] == "complete"
    assert a["t_done_ms"] == 8.0
    assert a["n_windows"] == 4
    assert a["wall_s"] >= 0.0


def test_every_root_attribute_is_documented_and_every_documented_one_written(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        written = set(f.attrs)
    assert written == documented("### Root attributes")


def test_solver_attributes_are_the_documented_ones(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        assert set(f["solvers"]) == {"kick", "relay", "clock"}
        for name in f["solvers"]:
            assert set(f["solvers"][name].attrs) == documented("### `/solvers/<solver>` attributes")
        g = f["solvers/clock"]
        assert (g.attrs["type"], g.attrs["level"], g.attrs["dt_ms"]) == ("linear", "generic", 0.1)
        assert g.attrs["compute_s"] > 0.0
        ports = json.loads(g.attrs["ports"])
    assert ports["x"] == {"kind": "analog", "direction": "out", "size": 2, "units": "mV",
                          "period_ticks": 100_000, "doc": "state at the start of each step"}
    assert ports["u"]["direction"] == "in"


def test_compute_s_holds_each_solvers_time_as_its_transport_measured_it(run_file: Path):
    tr = InProcTransport()
    with ps.run(relay_model(), out=run_file, transport=tr) as run:
        busy = run.compute_s()
    assert sorted(busy) == ["clock", "kick", "relay"]
    assert all(busy[n] == tr.compute_s[n] and busy[n] > 0.0 for n in busy)


def test_model_dataset_round_trips_to_the_same_model(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        raw = f["model"][()]
    text = raw.decode() if isinstance(raw, bytes) else raw
    assert ps.Model.from_dict(json.loads(text)) == relay_model()
    with ps.load(relay_run) as run:
        assert ps.Model.from_dict(run.model) == relay_model()


def test_model_dataset_holds_the_model_as_run_with_overrides(run_file: Path):
    ps.run(relay_model(), out=run_file, seed=99, t_stop_ms=4.0).close()
    with ps.load(run_file) as run:
        assert (run.model["seed"], run.model["t_stop_ms"]) == (99, 4.0)
        assert (run.attrs["seed"], run.attrs["t_stop_ms"], run.attrs["n_windows"]) == (99, 4.0, 2)


def test_spike_times_are_emission_times_in_ms_and_relayed_ones_shifted_by_the_delay(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        kick, relay = f["spikes/kick/spikes"], f["spikes/relay/out"]
        for g in (kick, relay):
            assert (g["times"].dtype, g["ids"].dtype) == (np.float64, np.int64)
            assert g["times"].attrs["units"] == "ms"
            assert g.attrs["n_channels"] == 2
            assert "recorded_ids" not in g
        np.testing.assert_array_equal(kick["times"][()], KICK_MS)
        np.testing.assert_array_equal(kick["ids"][()], KICK_IDS)
        # exact: the times are binary fractions of a ms, so the float sum is the tick sum
        np.testing.assert_array_equal(relay["times"][()], np.add(KICK_MS, RELAY_DELAY_MS))
        np.testing.assert_array_equal(relay["ids"][()], KICK_IDS)


def test_spike_times_off_the_binary_grid_are_ticks_divided_to_ms(run_file: Path):
    m = ps.Model(seed=1, t_stop_ms=2.0)
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.3, 1.1, 1.7]))
    m.record("kick.spikes")
    ps.run(m, out=run_file).close()
    with ps.load(run_file) as run:
        times = run.spikes("kick", "spikes").times
    np.testing.assert_array_equal(times, np.array([300_000, 1_100_000, 1_700_000]) / TICKS_PER_MS)


def test_spike_population_is_the_port_name_without_its_spikes_suffix(run_file: Path):
    m = ps.Model(seed=1, t_stop_ms=3.0, window_ms=1.0)
    m.solver("net", Scripted())
    m.record("net.E.spikes")
    ps.run(m, out=run_file).close()
    with ps.load(run_file) as run:
        assert run.spike_populations() == [("net", "E")]
        sp = run.spikes("net", "E")
    np.testing.assert_array_equal(sp.times, [0.1, 1.1, 2.1])
    np.testing.assert_array_equal(sp.ids, [0, 1, 0])


def test_recording_some_spike_channels_keeps_port_ids_and_lists_them(run_file: Path):
    m = ps.Model(seed=1, t_stop_ms=3.0)
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.5, 1.0, 1.5, 2.5], ids=[0, 1, 2, 2], size=3))
    m.record("kick.spikes[0, 2]")
    ps.run(m, out=run_file).close()
    with h5py.File(run_file, "r") as f:
        g = f["spikes/kick/spikes"]
        np.testing.assert_array_equal(g["recorded_ids"][()], [0, 2])
        np.testing.assert_array_equal(g["times"][()], [0.5, 1.5, 2.5])
        np.testing.assert_array_equal(g["ids"][()], [0, 2, 2])
        assert g.attrs["n_channels"] == 3


def test_signal_sample_k_is_the_value_at_its_time_stamp(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        g = f["signals/clock/x"]
        assert (g.attrs["units"], g.attrs["kind"]) == ("mV", "analog")
        assert (g["data"].attrs["units"], g["time"].attrs["units"]) == ("mV", "ms")
        np.testing.assert_array_equal(g["channels"][()], [0, 1])
        time, data = g["time"][()], g["data"][()]
    np.testing.assert_array_equal(time, np.arange(0, 8_000_000, 100_000) / TICKS_PER_MS)
    # x(t) = (t, 2t): 80 exact steps of 0.1 ms each add a rounding of ~1e-16; 1e-12 is generous
    np.testing.assert_allclose(data, np.column_stack([time, 2 * time]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("window_ms, every_ms", [
    pytest.param(0.3, 0.2, id="every-does-not-divide-the-window"),
    pytest.param(2.0, 0.5, id="every-divides-the-window"),
])
def test_every_ms_keeps_the_samples_at_multiples_of_every(run_file: Path, window_ms, every_ms):
    m = ps.Model(seed=1, t_stop_ms=1.8, window_ms=window_ms)
    m.solver("clock", clock())
    m.record("clock.x[1]", every_ms=every_ms)
    ps.run(m, out=run_file).close()
    with ps.load(run_file) as run:
        sig = run.signal("clock", "x")
    every = to_ticks(every_ms, "every")
    np.testing.assert_array_equal(sig.time, np.arange(0, 1_800_000, every) / TICKS_PER_MS)
    np.testing.assert_array_equal(sig.channels, [1])
    np.testing.assert_allclose(sig.data[:, 0], 2 * sig.time, rtol=0, atol=1e-12)  # as above


def test_probe_group_holds_summed_channels_time_positions_and_attributes(relay_run: Path):
    with h5py.File(relay_run, "r") as f:
        g = f["probes/electrode"]
        attrs = dict(g.attrs)
        time, data, pos = g["time"][()], g["data"][()], g["positions_um"][()]
        assert (g["time"].attrs["units"], g["data"].attrs["units"]) == ("ms", "mV")
    assert attrs["modality"] == "lfp"
    assert attrs["units"] == "mV"
    assert attrs["type"] == "linear_readout"
    assert json.loads(attrs["solvers"]) == ["clock"]
    np.testing.assert_array_equal(pos, POSITIONS_UM)
    np.testing.assert_array_equal(time, np.arange(0, 8_000_000, 100_000) / TICKS_PER_MS)
    x = np.column_stack([time, 2 * time])
    np.testing.assert_allclose(data, x @ np.array(READOUT).T, rtol=0, atol=1e-11)  # 3 x clock's


def test_groups_of_unrecorded_kinds_are_absent(run_file: Path):
    m = ps.Model(seed=1, t_stop_ms=1.0)
    m.solver("clock", clock())
    ps.run(m, out=run_file).close()
    with h5py.File(run_file, "r") as f:
        assert sorted(f) == ["model", "solvers"]


# -- paths ----------------------------------------------------------------------------------

def test_existing_file_is_not_overwritten_without_force(run_file: Path):
    run_file.write_bytes(b"keep me")
    with pytest.raises(ps.RunFileError, match=re.escape(repr(str(run_file))) + r" exists; .*--force"):
        ps.run(relay_model(), out=run_file)
    assert run_file.read_bytes() == b"keep me"


def test_force_replaces_an_existing_file(run_file: Path):
    run_file.write_bytes(b"old")
    ps.run(relay_model(), out=run_file, force=True).close()
    with ps.load(run_file) as run:
        assert run.status == "complete"


@pytest.mark.parametrize("where, message", [
    pytest.param("missing/run.h5", r"folder .*missing' does not exist", id="missing-folder"),
    pytest.param(".", r"is a directory", id="directory"),
])
def test_unwritable_path_is_refused_before_any_solver_is_built(tmp_path: Path, where, message):
    m = ps.Model(seed=1, t_stop_ms=1.0)
    m.solver("bad", Scripted(fail_in_build=True))   # building it would raise SolverError
    with pytest.raises(ps.RunFileError, match=message):
        ps.run(m, out=tmp_path / where, force=True)


def _newer_version(path: Path) -> None:
    ps.run(relay_model(), out=path).close()
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 2


def _other_hdf5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)


@pytest.mark.parametrize("make, message", [
    pytest.param(None, r"does not exist", id="missing"),
    pytest.param(_other_hdf5, r"is not a polyscale run file \(format=None\)", id="other-hdf5"),
    pytest.param(lambda p: p.write_text("not hdf5"), r"cannot read run file", id="not-hdf5"),
    pytest.param(_newer_version, r"format_version 2; this polyscale reads up to 1: upgrade",
                 id="newer-format-version"),
])
def test_load_refuses_what_it_cannot_read(run_file: Path, make, message):
    if make is not None:
        make(run_file)
    with pytest.raises(ps.RunFileError, match=message):
        ps.load(run_file)


# -- failed runs ------------------------------------------------------------------------------

def test_solver_raising_mid_run_leaves_a_failed_file_with_the_complete_windows(run_file: Path):
    with pytest.raises(ps.SolverError, match=r"solver 'bad' \(test_scripted\) raised in window "
                                             r"\[3, \.\.\.\) ms: RuntimeError: boom") as info:
        ps.run(failing_model(fail_at_ms=3.2), out=run_file)
    assert (info.value.solver, info.value.t_ms) == ("bad", 3.0)
    with ps.load(run_file) as run:
        assert run.status == f"failed: {info.value}"
        assert (run.attrs["n_windows"], run.attrs["t_done_ms"]) == (3, 3.0)
        clock_x, count = run.signal("clock", "x"), run.signal("bad", "count")
        spikes = run.spikes("bad", "E")
    # 3 windows of 1 ms at dt 0.1 ms; the clock's 4th window ran but is not complete
    assert clock_x.data.shape == (30, 2)
    np.testing.assert_array_equal(count.data[:, 0], np.arange(30))
    np.testing.assert_array_equal(count.time, np.arange(0, 3_000_000, 100_000) / TICKS_PER_MS)
    np.testing.assert_array_equal(spikes.times, [0.1, 1.1, 2.1])


def test_keyboard_interrupt_in_a_solver_leaves_a_failed_file_with_the_complete_windows(run_file: Path):
    with pytest.raises(KeyboardInterrupt):
        ps.run(failing_model(fail_at_ms=3.2, interrupt=True), out=run_file)
    with ps.load(run_file) as run:
        assert re.fullmatch(r"failed: interrupted \(KeyboardInterrupt\) in window starting at 3 ms",
                            run.status)
        assert (run.attrs["n_windows"], run.attrs["t_done_ms"]) == (3, 3.0)
        assert run.signal("bad", "count").data.shape == (30, 1)
        assert run.signal("clock", "x").data.shape == (30, 2)


def test_solver_failing_to_build_leaves_a_failed_file_with_no_windows(run_file: Path):
    with pytest.raises(ps.SolverError, match=r"solver 'bad' \(test_scripted\) failed to build: "
                                             r"RuntimeError: cannot build") as info:
        ps.run(failing_model(fail_in_build=True), out=run_file)
    assert (info.value.solver, info.value.t_ms) == ("bad", None)
    with ps.load(run_file) as run:
        assert run.status == f"failed: {info.value}"
        assert (run.attrs["n_windows"], run.attrs["t_done_ms"]) == (0, 0.0)
        assert run.signal("clock", "x").data.shape == (0, 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class FailingCombine(ps.ProbeSpec):
    """Test-only probe of clock.x[0] whose global part (combine) raises from ``fail_at_ms`` on."""

    type: ClassVar[str] = "test_failing_combine"
    fail_at_ms: float = 3.0

    def solvers(self) -> tuple[str, ...]:
        return ("clock",)

    def describe(self, ports, window_ticks: int) -> ps.ProbeInfo:
        return ps.ProbeInfo(1, ports["clock"]["x"].period_ticks, "mV", "analog")

    def local(self, solver_name, solver, ports, info):
        return lambda t0, t1, result: result.outputs["x"].data[:, :1]

    def combine(self, info):
        fail = to_ticks(self.fail_at_ms, "fail_at_ms")

        def total(t0, t1, parts):
            if t0 >= fail:
                raise RuntimeError("combine failed")
            return parts["clock"]
        return total


def _probe_failing_model() -> ps.Model:
    m = ps.Model(seed=1, t_stop_ms=5.0, window_ms=1.0)
    m.solver("clock", clock())
    m.record("clock.x")
    m.probe("p", FailingCombine())
    return m


def test_probe_failing_while_writing_leaves_a_failed_file_with_the_complete_windows(run_file: Path, transport):
    # on zmq the scheduler has already posted the next window when this one's probe fails
    with pytest.raises(ps.ProbeError, match=r"probe 'p' \(test_failing_combine\) failed combining the "
                                            r"window \[3, 4\) ms: RuntimeError: combine failed") as info:
        ps.run(_probe_failing_model(), out=run_file, transport=transport)
    assert (info.value.probe, info.value.t_ms) == ("p", 3.0)
    with ps.load(run_file) as run:
        assert run.status == f"failed: {info.value}"
        assert (run.attrs["n_windows"], run.attrs["t_done_ms"]) == (3, 3.0)
        # all or nothing: the signals of the window whose probe failed are not kept either
        assert run.probe("p").data.shape == (30, 1)
        assert run.signal("clock", "x").data.shape == (30, 2)


# -- reading --------------------------------------------------------------------------------

def test_in_memory_run_returns_a_readable_run_and_writes_no_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = ps.run(relay_model(), out=None)
    try:
        assert run.status == "complete"
        assert run.attrs["n_windows"] == 4
        np.testing.assert_array_equal(run.spikes("relay", "out").times, np.add(KICK_MS, RELAY_DELAY_MS))
        assert run.signal("clock", "x").data.shape == (80, 2)
        assert run.probe("electrode").data.shape == (80, 3)
        assert ps.Model.from_dict(run.model) == relay_model()
    finally:
        run.close()
    assert list(tmp_path.iterdir()) == []


def test_reader_records_carry_units_channels_and_positions(relay_run: Path):
    with ps.load(relay_run) as run:
        assert set(run.solvers()) == {"kick", "relay", "clock"}
        assert sorted(run.spike_populations()) == [("kick", "spikes"), ("relay", "out")]
        assert run.signal_names() == [("clock", "x")]
        assert run.probe_names() == ["electrode"]
        sig, pr = run.signal("clock", "x"), run.probe("electrode")
        assert run.spikes("kick", "spikes").n_channels == 2
    assert (sig.units, list(sig.channels)) == ("mV", [0, 1])
    assert (pr.units, pr.modality) == ("mV", "lfp")
    np.testing.assert_array_equal(pr.positions_um, POSITIONS_UM)


@pytest.mark.parametrize("read, message", [
    pytest.param(lambda r: r.signal("clock", "v"), r"no signal 'signals/clock/v' .*has: clock/x",
                 id="signal"),
    pytest.param(lambda r: r.spikes("kick", "E"), r"no spike population .*has: kick/spikes, relay/out",
                 id="spikes"),
    pytest.param(lambda r: r.probe("eeg"), r"no probe 'probes/eeg' .*has: electrode", id="probe"),
])
def test_unknown_names_raise_key_error_listing_the_known_ones(relay_run: Path, read, message):
    with ps.load(relay_run) as run, pytest.raises(KeyError, match=message):
        read(run)


def test_summary_mentions_every_solver_population_signal_and_probe(relay_run: Path):
    with ps.load(relay_run) as run:
        text = run.summary()
    for line in (r"status: complete",
                 r"seed 1234, t_stop 8 ms, window 2 ms, 4 windows written up to 8 ms, transport inproc",
                 r"  kick: spike_train \(level stimulus\), dt 0\.1 ms",
                 r"  relay: relay \(level generic\), dt 0\.1 ms",
                 r"  clock: linear \(level generic\), dt 0\.1 ms",
                 r"  kick/spikes: 3 spikes from 2 channels \(188 Hz per channel\)",  # 3 / (2 x 8 ms)
                 r"  relay/out: 3 spikes from 2 channels",
                 r"  clock/x: 80 samples x 2 channels \[mV\]",
                 r"  electrode: lfp, 80 samples x 3 channels \[mV\]"):
        assert re.search(f"^{line}", text, re.M), line


def test_summary_rate_counts_only_the_recorded_channels(run_file: Path):
    m = ps.Model(seed=1, t_stop_ms=2.0)
    m.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.5, 1.0], ids=[0, 3], size=4))
    m.record("kick.spikes[0]")
    with ps.run(m, out=run_file) as run:
        text = run.summary()
    # one spike on one recorded channel in 2 ms: 500 Hz (not 1 / (4 x 2 ms) = 125 Hz)
    assert re.search(r"^  kick/spikes: 1 spikes from 1 channels \(500 Hz per channel\)$", text, re.M)


def test_ctrl_c_while_windows_are_written_out_leaves_only_whole_windows(run_file: Path, monkeypatch):
    """A SIGINT that lands while the writer appends its buffer is held until every dataset has
    the window: the file never holds part of one (seen with a real Ctrl-C under mpiexec)."""
    import os
    import signal

    from polyscale.coordinator.runfile import RunWriter
    from polyscale.coordinator.transports.inproc import InProcTransport

    m = ps.Model(seed=1, t_stop_ms=1.0, window_ms=0.1)
    m.solver("a", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0]))
    m.solver("b", ps.solvers.LinearSystem(a=[[0.0]], c=[2.0]))
    m.record("a.x")
    m.record("b.x")
    plan = m.check()
    writer = RunWriter(run_file, plan, flush_s=1e9)
    tr = InProcTransport()
    tr.start(plan)
    for t0, t1 in list(plan.windows())[:4]:
        writer.append(t0, t1, tr.advance(t0, t1))
    write_rows = RunWriter._write_rows
    calls = []

    def write_then_interrupt(self, ds, values):
        calls.append(ds.name)
        write_rows(self, ds, values)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C after the first dataset grew

    monkeypatch.setattr(RunWriter, "_write_rows", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        writer.flush()
    monkeypatch.setattr(RunWriter, "_write_rows", write_rows)
    assert len(calls) == 4                                 # data and time of both signals
    writer.finish("failed: interrupted")
    with ps.load(run_file) as run:
        assert run.attrs["n_windows"] == 4
        assert run.signal("a", "x").data.shape == run.signal("b", "x").data.shape == (4, 1)


def test_sigint_during_a_write_is_held_back_and_an_ignored_one_stays_ignored():
    """A Ctrl-C that comes while a window is written raises KeyboardInterrupt once the write is
    done (so the file keeps the whole window); a process that ignores SIGINT (started with '&'
    by a script: POSIX gives such processes SIG_IGN) must go on ignoring it."""
    import os
    import signal

    from polyscale.coordinator.runfile import _sigint_deferred
    done = []
    with pytest.raises(KeyboardInterrupt):
        with _sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("write")
    assert done == ["write"]
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
