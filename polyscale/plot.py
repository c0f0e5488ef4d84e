"""``polyscale plot``: one multimodal figure of a run, in the spirit of Figure 2 of Einevoll et
al. (2019), "The Scientific Case for Brain Simulations", Neuron 102:735.

Panels, top to bottom, for whatever the run file holds: a raster of every spike population;
then one panel per probe by modality (LFP, CSD: an image over depth; VSDI: the frame of largest
signal as an image; EEG, MEG, ECoG, dipoles, calcium, BOLD and other probes: traces); then one
panel per recorded signal (traces). Traces of many channels are offset from each other; at most
``MAX_TRACES`` channels are drawn per panel, evenly picked.

matplotlib (the ``plot`` extra) is imported only here, with the Agg backend, so the rest of
polyscale never needs it. This module may touch: run files (read only) and the output image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .coordinator.errors import ConfigError, RunFileError
from .coordinator.runfile import Run, load

#: most channels drawn as traces in one panel
MAX_TRACES = 16
#: modalities drawn as an image over depth (channels along z)
DEPTH_IMAGES = ("lfp", "csd")
#: panel order of the probes, from the microscopic to the macroscopic (as in Figure 2); other
#: modalities follow, by name
ORDER = ("lfp", "csd", "ecog", "current_dipole", "eeg", "meg", "vsdi", "calcium", "bold")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("polyscale plot needs matplotlib: pip install 'polyscale[plot]' "
                          "(the 'plot' extra)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def panels(run: Run) -> list[tuple[str, str, Any]]:
    """What :func:`figure` draws, in order: (kind, title, source) with kind 'raster', 'depth',
    'frame' or 'traces'; RunFileError when the run holds nothing to plot."""
    out: list[tuple[str, str, Any]] = []
    pops = run.spike_populations()
    if pops:
        out.append(("raster", "spikes", pops))
    mods = {name: str(run.f[f"probes/{name}"].attrs.get("modality", "")) for name in run.probe_names()}
    rank = {m: i for i, m in enumerate(ORDER)}
    for name in sorted(mods, key=lambda n: (rank.get(mods[n], len(ORDER)), n)):
        modality = mods[name]
        if modality in DEPTH_IMAGES:
            kind = "depth"
        elif modality == "vsdi":
            kind = "frame"
        else:
            kind = "traces"
        out.append((kind, f"{name} ({modality})" if modality else name, ("probe", name)))
    for solver, sig in run.signal_names():
        out.append(("traces", f"{solver}.{sig}", ("signal", (solver, sig))))
    if not out:
        raise RunFileError(f"run file {run.f.filename!r} holds nothing to plot: no spikes, probes "
                           f"or recorded signals (record some with model.record / model.probe)")
    return out


def _window(t: np.ndarray, t0_ms: float | None, t1_ms: float | None) -> np.ndarray:
    keep = np.ones(t.shape, dtype=bool)
    if t0_ms is not None:
        keep &= t >= t0_ms
    if t1_ms is not None:
        keep &= t < t1_ms
    return keep


def _pick(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_TRACES)).round().astype(int))


def figure(run: Run | str | os.PathLike, *, t0_ms: float | None = None, t1_ms: float | None = None):
    """The matplotlib Figure of a run (a Run or a path): one axis per entry of :func:`panels`,
    sharing the time axis (ms) over [t0_ms, t1_ms)."""
    if t0_ms is not None and t1_ms is not None and not t1_ms > t0_ms:
        raise ConfigError(f"plot: --t1 ({t1_ms:g} ms) must be after --t0 ({t0_ms:g} ms)")
    plt = _pyplot()
    own = not isinstance(run, Run)
    r = load(run) if own else run
    try:
        spec = panels(r)
        heights = [2.0 if kind in ("raster", "depth") else 1.4 for kind, _, _ in spec]
        fig, axes = plt.subplots(len(spec), 1, figsize=(8.0, 1.0 + sum(heights)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        axes = axes[:, 0]
        t_done = float(r.attrs.get("t_done_ms", 0.0))
        lo = 0.0 if t0_ms is None else t0_ms
        hi = t_done if t1_ms is None else t1_ms
        for ax, (kind, title, src) in zip(axes, spec):
            ax.set_title(title, fontsize=9, loc="left")
            if kind == "raster":
                _raster(ax, r, src, t0_ms, t1_ms)
            elif kind == "frame":
                _frame(ax, r.probe(src[1]), t0_ms, t1_ms)
                continue            # an image in space: no time axis
            else:
                rec = r.probe(src[1]) if src[0] == "probe" else r.signal(*src[1])
                (_depth if kind == "depth" else _traces)(ax, rec, t0_ms, t1_ms)
            if hi > lo:
                ax.set_xlim(lo, hi)
        time_axes = [ax for ax, (kind, _, _) in zip(axes, spec) if kind != "frame"]
        if time_axes:
            time_axes[-1].set_xlabel("time (ms)")
        fig.suptitle(f"{Path(str(r.f.filename)).name}: {t_done:g} ms, status {r.attrs.get('status', '?')}",
                     fontsize=10)
        fig.tight_layout()
        return fig
    finally:
        if own:
            r.close()


def _raster(ax, r: Run, pops, t0_ms, t1_ms) -> None:
    offset = 0
    ticks, labels = [], []
    for k, (solver, pop) in enumerate(pops):
        s = r.spikes(solver, pop)
        keep = _window(s.times, t0_ms, t1_ms)
        ax.scatter(s.times[keep], s.ids[keep] + offset, s=1.0, marker="|", color=f"C{k % 10}", linewidths=0.5)
        ticks.append(offset + s.n_channels / 2.0)
        labels.append(f"{solver}.{pop}")
        offset += s.n_channels
    ax.set_ylim(0, max(offset, 1))
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_ylabel("neuron")


def _depth(ax, rec, t0_ms, t1_ms) -> None:
    keep = _window(rec.time, t0_ms, t1_ms)
    data = rec.data[keep]
    t = rec.time[keep]
    if rec.positions_um is not None:
        z = rec.positions_um[:, 2]
        order = np.argsort(z)
        data, z = data[:, order], z[order]
        ylab = "z (um)"
    else:
        z = np.arange(rec.data.shape[1], dtype=float)
        ylab = "channel"
    if not len(t):
        return
    lim = float(np.abs(data).max()) or 1.0
    dz = (z[-1] - z[0]) / max(len(z) - 1, 1) if len(z) > 1 else 1.0
    dt = (t[-1] - t[0]) / max(len(t) - 1, 1) if len(t) > 1 else 1.0
    ax.imshow(data.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
              extent=(t[0] - dt / 2, t[-1] + dt / 2, z[0] - dz / 2, z[-1] + dz / 2), interpolation="nearest")
    ax.set_ylabel(ylab)
    ax.text(1.0, 1.02, f"colour: +/-{lim:.3g} {rec.units}", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=7)


def _frame(ax, rec, t0_ms, t1_ms) -> None:
    keep = _window(rec.time, t0_ms, t1_ms)
    data, t = rec.data[keep], rec.time[keep]
    if not len(t):
        return
    k = int(np.argmax(np.abs(data).max(axis=1)))
    pos = rec.positions_um
    if pos is not None:
        xs, ys = np.unique(pos[:, 0]), np.unique(pos[:, 1])
        img = data[k].reshape(len(ys), len(xs))
        ext = (xs[0], xs[-1], ys[0], ys[-1])
    else:
        img, ext = data[k][None, :], None
    lim = float(np.abs(img).max()) or 1.0
    ax.imshow(img, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=ext, interpolation="nearest")
    ax.set_anchor("W")
    ax.set_xlabel("x (um)")
    ax.set_ylabel("y (um)")
    ax.locator_params(nbins=4)
    ax.tick_params(labelsize=7)
    # the frame of largest signal; the title may run past the (square) image
    ax.set_title(f"{ax.get_title(loc='left')}, t = {t[k]:g} ms, colour +/-{lim:.3g} {rec.units}",
                 fontsize=9, loc="left")


def _traces(ax, rec, t0_ms, t1_ms) -> None:
    keep = _window(rec.time, t0_ms, t1_ms)
    t, data = rec.time[keep], rec.data[keep]
    cols = _pick(data.shape[1])
    if not len(t):
        return
    span = float(np.ptp(data[:, cols])) if data.size else 0.0
    step = span if len(cols) > 1 else 0.0
    for j, c in enumerate(cols):
        ax.plot(t, data[:, c] - j * step, lw=0.7, color=f"C{j % 10}")
    ax.set_ylabel(rec.units or "value")
    if len(cols) > 1:
        ax.set_yticks([])
        ax.text(1.0, 1.02, f"{len(cols)} of {data.shape[1]} channels, offset {step:.3g} {rec.units}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7)


def plot(run_path: str | os.PathLike, out: str | os.PathLike | None = None, *,
         t0_ms: float | None = None, t1_ms: float | None = None) -> Path:
    """Draw the figure of the run file ``run_path`` into ``out`` (.png or .pdf; default: the run
    file's name with .png) and return its path."""
    out_path = Path(out) if out is not None else Path(run_path).with_suffix(".png")
    if out_path.suffix.lower() not in (".png", ".pdf"):
        raise ConfigError(f"plot: --out must end in .png or .pdf (got {str(out_path)!r})")
    if not out_path.parent.is_dir():
        raise ConfigError(f"plot: folder {str(out_path.parent)!r} does not exist")
    fig = figure(run_path, t0_ms=t0_ms, t1_ms=t1_ms)
    try:
        fig.savefig(out_path, dpi=150)
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    return out_path
