"""The run file: one HDF5 file per run, written window by window, and its reader.

The schema is documented in docs/run-file.md; bump ``FORMAT_VERSION`` when it changes in a way
an older reader would misread. The writer creates every group and dataset when the run starts
(the plan says what will be written) and takes each *complete* window. It buffers windows in
memory and writes them out at least every ``flush_s`` seconds of wall time (and when the buffer
grows past ``flush_bytes``), because an HDF5 resize + write + flush per dataset per window costs
far more than a short window's compute. Every path that ends a run (success, an exception,
Ctrl-C) writes out the buffer before it sets ``status``, so a run that fails keeps every complete
window; only a hard kill of the writing process loses the windows of the last ``flush_s``.
"""
from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import platform
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import ProbeError, RunFileError
from .plan import Plan
from .signals import Samples, Spikes, WindowResult
from .time import TICKS_PER_MS, grid_count, grid_start, to_ms

FORMAT = "polyscale-run"
FORMAT_VERSION = 1
_SPIKE_CHUNK = 1 << 13   # values per chunk (64 KiB): a flush rewrites each partly filled chunk
_SAMPLE_CHUNK = 1 << 13
# in-memory run files need names unique among the open ones: id(writer) is not (a writer can be
# freed while the Run it returned keeps its file open, and the next writer reuses the id)
_MEMORY_FILES = itertools.count()


@contextlib.contextmanager
def _sigint_deferred():
    """Hold back SIGINT during the block and raise KeyboardInterrupt after it, if one came. A
    process that ignores SIGINT (started in the background by a shell without job control, as
    POSIX has it) keeps ignoring it."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)
    if got:
        raise KeyboardInterrupt


def versions() -> dict[str, str]:
    import numba
    import scipy

    from .. import __version__
    return {"polyscale": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "numba": numba.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version}


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Raise RunFileError unless ``path`` can be created (or, with ``force``, replaced)."""
    p = Path(path)
    if p.is_dir():
        raise RunFileError(f"run file {str(p)!r} is a directory; give a file name such as run.h5")
    if p.exists() and not force:
        raise RunFileError(f"run file {str(p)!r} exists; choose another name or overwrite it with "
                           f"--force (force=True in Python)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise RunFileError(f"cannot write run file {str(p)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise RunFileError(f"cannot write run file {str(p)!r}: permission denied")
    return p


class _Grid:
    """``n`` sample ticks ``first + k * period`` of one window, kept as three numbers until the
    writer flushes: then the times (ms) of all buffered windows are made at once."""

    __slots__ = ("first", "period", "n")

    def __init__(self, first: int, period: int, n: int):
        self.first, self.period, self.n = first, period, n

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        return 8 * self.n

    @staticmethod
    def times_ms(grids: list["_Grid"]) -> np.ndarray:
        """Times (ms, float64) of consecutive grids: one arange when they continue each other
        (the usual case: windows follow each other on one grid), else one per grid. The same
        numbers either way: int64 ticks divided by TICKS_PER_MS."""
        period = grids[0].period
        tick = first = total = 0
        for g in grids:
            if not g.n:  # an empty window (a decimated signal with no sample in it) adds nothing
                continue
            if total == 0:
                tick = g.first
            if g.period != period or g.first != tick:
                return np.concatenate([(g.first + g.period * np.arange(g.n, dtype=np.int64)) / TICKS_PER_MS
                                       for g in grids])
            if total == 0:
                first = g.first
            tick += period * g.n
            total += g.n
        return (first + period * np.arange(total, dtype=np.int64)) / TICKS_PER_MS


class RunWriter:
    """Writes one run. ``path`` None keeps the file in memory (returned by :meth:`reader`)."""

    def __init__(self, path: str | os.PathLike | None, plan: Plan, *, force: bool = False,
                 transport: str = "inproc", flush_s: float = 1.0, flush_bytes: int = 64 << 20):
        self.plan = plan
        self.flush_s = flush_s
        self.flush_bytes = flush_bytes
        # complete windows not yet written: (t1, [(dataset, values), ...]); a window joins with
        # one list.append, so a Ctrl-C arriving anywhere leaves it either whole or absent
        self._pending: list[tuple[int, list[tuple[h5py.Dataset, np.ndarray]]]] = []
        self._pending_bytes = 0
        self._last_flush = time.monotonic()
        # per appended dataset, found once: its low-level id, dtype, trailing shape and the rows
        # written so far (h5py's high-level resize and setitem ask HDF5 for the chunking, dtype
        # and shape on every call, which cost more than the write itself for small windows)
        self._targets: dict[int, list] = {}
        self.path = None if path is None else check_writable(path, force)
        try:
            if self.path is None:
                self.f = h5py.File(f"polyscale-run-{os.getpid()}-{next(_MEMORY_FILES)}.h5", "w",
                                   driver="core", backing_store=False)
            else:
                self.f = h5py.File(self.path, "w")
        except OSError as exc:
            raise RunFileError(f"cannot create run file {str(self.path)!r}: {exc}") from exc
        self.n_windows = 0
        self._combiners = {pp.name: pp.spec.combine(pp.info) for pp in plan.probes}
        self._layout(transport)
        self.f.flush()

    # -- layout -------------------------------------------------------------------------------
    def _layout(self, transport: str) -> None:
        plan, f = self.plan, self.f
        a = f.attrs
        a["format"] = FORMAT
        a["format_version"] = FORMAT_VERSION
        v = versions()
        a["polyscale_version"] = v["polyscale"]
        a["versions"] = json.dumps(v)
        a["seed"] = np.int64(plan.seed)
        a["t_stop_ms"] = to_ms(plan.t_stop_ticks)
        a["window_ms"] = to_ms(plan.window_ticks)
        a["tick_ms"] = 1.0 / TICKS_PER_MS
        a["transport"] = transport
        a["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        a["status"] = "running"
        a["t_done_ms"] = 0.0
        a["n_windows"] = 0
        f.create_dataset("model", data=plan.model.to_json(), dtype=h5py.string_dtype())
        for name, sp in plan.solvers.items():
            g = f.create_group(f"solvers/{name}")
            g.attrs["type"] = sp.spec.type
            g.attrs["level"] = sp.spec.level
            g.attrs["dt_ms"] = to_ms(sp.dt_ticks)
            g.attrs["rng"] = f"PCG64(SeedSequence([seed, blake2b64('solver'), blake2b64({name!r})]))"
            g.attrs["ports"] = json.dumps({n: p.to_dict() for n, p in sp.ports.items()})
        self._spikes: dict[tuple[str, str], tuple[h5py.Dataset, h5py.Dataset]] = {}
        self._signals: dict[tuple[str, str], tuple[h5py.Dataset, h5py.Dataset]] = {}
        for r in plan.recordings:
            g = f.create_group(r.group)
            if r.kind == "spikes":
                g.create_dataset("times", shape=(0,), maxshape=(None,), dtype="f8", chunks=(_SPIKE_CHUNK,))
                g.create_dataset("ids", shape=(0,), maxshape=(None,), dtype="i8", chunks=(_SPIKE_CHUNK,))
                g["times"].attrs["units"] = "ms"
                g.attrs["n_channels"] = self.plan.solvers[r.solver].ports[r.port].size
                if not r.all_channels:
                    g.create_dataset("recorded_ids", data=np.asarray(r.channels, dtype=np.int64))
                self._spikes[(r.solver, r.port)] = (g["times"], g["ids"])
            else:
                n = len(r.channels)
                self._sampled(g, n, r.units, r.kind)
                g.create_dataset("channels", data=np.asarray(r.channels, dtype=np.int64))
                self._signals[(r.solver, r.port)] = (g["data"], g["time"])
        self._probes: dict[str, tuple[h5py.Dataset, h5py.Dataset]] = {}
        self._parts: dict[str, dict[str, h5py.Dataset]] = {}
        for pp in plan.probes:
            g = f.create_group(f"probes/{pp.name}")
            self._sampled(g, pp.info.n_channels, pp.info.units, pp.info.modality)
            g.attrs["modality"] = pp.info.modality
            g.attrs["type"] = pp.spec.type
            g.attrs["solvers"] = json.dumps(list(pp.solvers))
            if pp.info.positions is not None:
                g.create_dataset("positions_um", data=np.asarray(pp.info.positions, dtype=np.float64))
            self._probes[pp.name] = (g["data"], g["time"])
            if getattr(pp.spec, "keep_parts", False):
                # each solver's share as it arrives: only where parts and output share a shape
                if pp.info.part_shape_channels != pp.info.n_channels or pp.info.part_period != pp.info.period_ticks:
                    raise RunFileError(f"probe {pp.name!r} ({pp.spec.type}): keep_parts needs parts shaped "
                                       f"like the probe's output")
                n = pp.info.n_channels
                self._parts[pp.name] = {s: g.create_dataset(f"parts/{s}", shape=(0, n), maxshape=(None, n),
                                                            dtype="f8", chunks=g["data"].chunks)
                                        for s in pp.solvers}
                for ds in self._parts[pp.name].values():
                    ds.attrs["units"] = pp.info.units

    @staticmethod
    def _sampled(g: h5py.Group, n: int, units: str, kind: str) -> None:
        rows = max(1, _SAMPLE_CHUNK // max(n, 1))
        g.create_dataset("data", shape=(0, n), maxshape=(None, n), dtype="f8", chunks=(rows, n))
        g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(min(rows * 4, _SAMPLE_CHUNK),))
        g["time"].attrs["units"] = "ms"
        g["data"].attrs["units"] = units
        g.attrs["units"] = units
        g.attrs["kind"] = kind

    # -- appending ----------------------------------------------------------------------------
    def append(self, t0: int, t1: int, results: Mapping[str, WindowResult]) -> None:
        """Take one complete window: recorded outputs and combined probe parts.

        All or nothing: if a probe's global stage fails, nothing of this window is kept.
        """
        # what this window adds to each dataset; empty values are left out here, and the byte
        # count is summed as they are staged (both ran as extra passes over every window)
        staged: list[tuple[h5py.Dataset, np.ndarray | _Grid]] = []
        nbytes = 0
        for (solver, port), (times, ids) in self._spikes.items():
            sig = results[solver].outputs[port]
            if len(sig.ticks):
                staged += [(times, sig.ticks / TICKS_PER_MS), (ids, sig.ids)]
                nbytes += 8 * len(sig.ticks) + sig.ids.nbytes
        for (solver, port), (data, tds) in self._signals.items():
            sig = results[solver].outputs[port]
            n = sig.data.shape[0]
            if n:
                # sample times are a regular grid: made for all buffered windows at once in flush
                staged += [(data, sig.data), (tds, _Grid(sig.t0, sig.period, n))]
                nbytes += sig.data.nbytes + 8 * n
        for pp in self.plan.probes:
            parts = {s: results[s].probe_parts[pp.name] for s in pp.solvers}
            try:
                out = np.asarray(self._combiners[pp.name](t0, t1, parts), dtype=np.float64)
            except Exception as exc:
                raise ProbeError(f"probe {pp.name!r} ({pp.spec.type}) failed combining the window "
                                 f"[{to_ms(t0):g}, {to_ms(t1):g}) ms: {type(exc).__name__}: {exc}",
                                 probe=pp.name, t_ms=to_ms(t0)) from exc
            want = (grid_count(t0, t1, pp.info.period_ticks), pp.info.n_channels)
            if out.shape != want:
                raise ProbeError(f"probe {pp.name!r} ({pp.spec.type}) combined the window "
                                 f"[{to_ms(t0):g}, {to_ms(t1):g}) ms into shape {out.shape}, "
                                 f"expected {want}", probe=pp.name, t_ms=to_ms(t0))
            data, tds = self._probes[pp.name]
            period = pp.info.period_ticks
            if want[0]:
                staged += [(data, out), (tds, _Grid(grid_start(t0, period), period, want[0]))]
                nbytes += out.nbytes + 8 * want[0]
            for s, ds in self._parts.get(pp.name, {}).items():
                part = np.asarray(parts[s], dtype=np.float64)
                if len(part):
                    staged.append((ds, part))
                    nbytes += part.nbytes
        self._pending.append((t1, staged))
        self._pending_bytes += nbytes
        if (self._pending_bytes >= self.flush_bytes
                or time.monotonic() - self._last_flush >= self.flush_s):
            self.flush()

    def flush(self) -> None:
        """Write every buffered window to the file and flush it (Ctrl-C waits until it is done,
        so the file never holds part of a window)."""
        with _sigint_deferred():
            windows, self._pending = self._pending, []
            self._pending_bytes = 0
            if windows:
                by_ds: dict[int, tuple[h5py.Dataset, list[np.ndarray]]] = {}
                for _, staged in windows:
                    for ds, values in staged:
                        by_ds.setdefault(id(ds), (ds, []))[1].append(values)
                for ds, chunks in by_ds.values():
                    if type(chunks[0]) is _Grid:
                        values = _Grid.times_ms(chunks)
                    else:
                        values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                    self._write_rows(ds, values)
                self.n_windows += len(windows)
                self.f.attrs["t_done_ms"] = to_ms(windows[-1][0])
                self.f.attrs["n_windows"] = self.n_windows
            self.f.flush()
        self._last_flush = time.monotonic()

    def _write_rows(self, ds: h5py.Dataset, values: np.ndarray) -> None:
        """Append ``values`` (rows) to ``ds`` through the low-level API: extend, select the new
        rows of the file space, write (the same bytes as ``ds.resize`` + ``ds[old:] = values``)."""
        target = self._targets.get(id(ds))
        if target is None:
            target = self._targets[id(ds)] = [ds.id, ds.dtype, ds.shape[1:], ds.shape[0]]
        dsid, dtype, tail, old = target
        values = np.ascontiguousarray(values, dtype=dtype)
        n = len(values)
        if values.shape[1:] != tail:
            raise RunFileError(f"run file: rows of shape {values.shape[1:]} for dataset {ds.name!r}, "
                               f"which holds rows of shape {tail}")
        dsid.set_extent((old + n, *tail))
        if n:
            fspace = dsid.get_space()
            fspace.select_hyperslab((old, *(0 for _ in tail)), (n, *tail))
            dsid.write(h5py.h5s.create_simple((n, *tail)), fspace, values)
        target[3] = old + n

    def finish(self, status: str, compute_s: Mapping[str, float] | None = None, **attrs: Any) -> None:
        """Write out what is buffered, set the final status ('complete' or 'failed: <reason>')
        and close the file. ``compute_s``: wall time (s) each solver spent in its windows (its
        probes' local parts included), as far as this process knows it, stored as the
        ``compute_s`` attribute of ``solvers/NAME``."""
        if not self.f:
            return
        self.flush()
        self.f.attrs["status"] = status
        for name, sec in (compute_s or {}).items():
            g = self.f.get(f"solvers/{name}")
            if g is not None:
                g.attrs["compute_s"] = float(sec)
        for k, v in attrs.items():
            self.f.attrs[k] = v
        self.f.flush()
        if self.path is not None:
            self.f.close()

    def reader(self) -> "Run":
        """A reader over this run (in-memory runs stay open; on-disk runs are reopened)."""
        if self.path is None:
            return Run(self.f)
        return load(self.path)


# ---------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class SpikeRecord:
    """Spikes of one population: ``times`` (n,) ms, ``ids`` (n,) neuron index in the port."""

    times: np.ndarray
    ids: np.ndarray
    n_channels: int


@dataclass(frozen=True)
class SignalRecord:
    """A sampled signal: ``time`` (n,) ms, ``data`` (n, channels), ``units``, ``channels`` indices."""

    time: np.ndarray
    data: np.ndarray
    units: str
    channels: np.ndarray


@dataclass(frozen=True)
class ProbeRecord:
    """A probe: ``time`` (n,) ms, ``data`` (n, channels) in ``units``; ``positions_um`` or None;
    ``parts``: {solver: (n, channels)} each solver's share (probes with keep_parts=True) or None."""

    time: np.ndarray
    data: np.ndarray
    units: str
    modality: str
    positions_um: np.ndarray | None
    parts: dict | None = None


class Run:
    """A run file opened for reading (``polyscale.load``). Use as a context manager or close()."""

    def __init__(self, f: h5py.File):
        self.f = f
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise RunFileError(f"{f.filename!r} is not a polyscale run file (format={fmt!r})")
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise RunFileError(f"{f.filename!r} has run-file format_version {version}; this polyscale "
                               f"reads up to {FORMAT_VERSION}: upgrade polyscale")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.f:
            self.f.close()

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.f.attrs.items()}

    @property
    def status(self) -> str:
        return str(self.f.attrs["status"])

    @property
    def model(self) -> dict:
        """The model as given (the dict of ``Model.to_dict()``)."""
        raw = self.f["model"][()]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)

    def solvers(self) -> dict[str, dict[str, Any]]:
        return {n: dict(g.attrs) for n, g in self.f.get("solvers", {}).items()}

    def compute_s(self) -> dict[str, float]:
        """Wall time (s) each solver spent in its windows, its probes' local parts included, as
        measured where it ran; solvers the writing process did not time (other mpi ranks) are
        missing. The busiest solvers are the ones to give a process or core of their own."""
        return {n: float(s["compute_s"]) for n, s in self.solvers().items() if "compute_s" in s}

    def spike_populations(self) -> list[tuple[str, str]]:
        return [(s, p) for s, g in self.f.get("spikes", {}).items() for p in g]

    def signal_names(self) -> list[tuple[str, str]]:
        return [(s, n) for s, g in self.f.get("signals", {}).items() for n in g]

    def probe_names(self) -> list[str]:
        return list(self.f.get("probes", {}))

    def _group(self, path: str, what: str, known: list) -> h5py.Group:
        if path not in self.f:
            raise KeyError(f"no {what} {path!r} in this run (has: {', '.join(map(str, known)) or 'none'})")
        return self.f[path]

    def spikes(self, solver: str, population: str) -> SpikeRecord:
        g = self._group(f"spikes/{solver}/{population}", "spike population",
                        [f"{s}/{p}" for s, p in self.spike_populations()])
        return SpikeRecord(g["times"][()], g["ids"][()], int(g.attrs["n_channels"]))

    def signal(self, solver: str, name: str) -> SignalRecord:
        g = self._group(f"signals/{solver}/{name}", "signal",
                        [f"{s}/{n}" for s, n in self.signal_names()])
        return SignalRecord(g["time"][()], g["data"][()], str(g.attrs["units"]), g["channels"][()])

    def probe(self, name: str) -> ProbeRecord:
        g = self._group(f"probes/{name}", "probe", self.probe_names())
        pos = g["positions_um"][()] if "positions_um" in g else None
        parts = {s: d[()] for s, d in g["parts"].items()} if "parts" in g else None
        return ProbeRecord(g["time"][()], g["data"][()], str(g.attrs["units"]),
                           str(g.attrs["modality"]), pos, parts)

    def summary(self) -> str:
        """A human-readable description (what ``polyscale info`` prints)."""
        a = self.attrs
        lines = [f"{self.f.filename}: {a['format']} v{a['format_version']}, polyscale {a['polyscale_version']}",
                 f"status: {a['status']}",
                 f"seed {a['seed']}, t_stop {a['t_stop_ms']:g} ms, window {a['window_ms']:g} ms, "
                 f"{a['n_windows']} windows written up to {a['t_done_ms']:g} ms, transport {a['transport']}"]
        if "wall_s" in a:
            lines.append(f"wall time {a['wall_s']:.3g} s")
        lines.append("solvers:")
        for n, s in self.solvers().items():
            busy = f", compute {s['compute_s']:.3g} s" if "compute_s" in s else ""
            lines.append(f"  {n}: {s['type']} (level {s['level']}), dt {s['dt_ms']:g} ms{busy}")
        if self.spike_populations():
            lines.append("spikes:")
            for s, p in self.spike_populations():
                g = self.f[f"spikes/{s}/{p}"]
                n = g["times"].shape[0]
                n_rec = len(g["recorded_ids"]) if "recorded_ids" in g else int(g.attrs["n_channels"])
                dur = a["t_done_ms"] / 1000.0
                rate = n / (n_rec * dur) if dur > 0 else float("nan")
                lines.append(f"  {s}/{p}: {n} spikes from {n_rec} channels "
                             f"({rate:.3g} Hz per channel)")
        if self.signal_names():
            lines.append("signals:")
            for s, n in self.signal_names():
                g = self.f[f"signals/{s}/{n}"]
                lines.append(f"  {s}/{n}: {g['data'].shape[0]} samples x {g['data'].shape[1]} "
                             f"channels [{g.attrs['units']}]")
        if self.probe_names():
            lines.append("probes:")
            for n in self.probe_names():
                g = self.f[f"probes/{n}"]
                lines.append(f"  {n}: {g.attrs['modality']}, {g['data'].shape[0]} samples x "
                             f"{g['data'].shape[1]} channels [{g.attrs['units']}]")
        return "\n".join(lines)


def load(path: str | os.PathLike) -> Run:
    """Open a run file for reading; RunFileError if it is missing or not a run file."""
    p = Path(path)
    if not p.exists():
        raise RunFileError(f"run file {str(p)!r} does not exist")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise RunFileError(f"cannot read run file {str(p)!r}: {exc}") from exc
    try:
        return Run(f)
    except RunFileError:
        f.close()
        raise
