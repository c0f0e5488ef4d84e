"""`polyscale plot`: the multimodal figure of a run file."""
import sys

import numpy as np
import pytest

import polyscale as ps
from polyscale.cli import main
from polyscale.plot import figure, panels, plot

pytest.importorskip("matplotlib", reason="polyscale plot needs the 'plot' extra (matplotlib)")


@pytest.fixture(scope="module")
def multimodal_run(tmp_path_factory):
    """Spikes of two populations, an LFP-like readout over depth, an EEG-like readout, calcium,
    BOLD, VSDI and one recorded signal: 1 raster + 5 probes + 1 signal = 7 panels."""
    path = tmp_path_factory.mktemp("plot") / "run.h5"
    m = ps.Model(t_stop_ms=40.0, window_ms=1.0)
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 39.9, 200)).round(1)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=times.tolist(), ids=rng.integers(0, 20, 200).tolist(),
                                         size=20, dt_ms=0.1))
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0, 1.0], [-1.0, 0.0]], x0=[1.0, 0.0], dt_ms=0.1))
    m.solver("brain", ps.solvers.RegionNetwork(initial_state=(0.0, 5.0, 1.0, 0.0, 0.0, 0.0), dt_ms=0.1))
    m.record("st.spikes")
    m.record("lin.x")
    w = np.linspace(-1, 1, 8)[:, None] * np.array([[1.0, 0.5]])
    m.probe("lfp", ps.probes.LinearReadout(weights={"lin.x": w.tolist()}, units="mV", modality="lfp",
                                           positions_um=[[0, 0, z] for z in range(0, 800, 100)]))
    m.probe("eeg", ps.probes.LinearReadout(weights={"lin.x": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]},
                                           units="uV", modality="eeg"))
    m.probe("ca", ps.probes.Calcium(spikes="st.spikes[0:5]", frame_rate_hz=1000.0))
    m.probe("bold", ps.probes.BOLD(inputs="st.spikes", tr_ms=2.0))
    m.probe("vsdi", ps.probes.VSDI(sources={"brain": ps.probes.VsdiSource(positions_um=((0, 0, -50),), area_um2=1e4)},
                                   pixels=(5, 4)))
    ps.run(m, path)
    return path


def test_one_axis_per_panel(multimodal_run):
    with ps.load(multimodal_run) as r:
        kinds = [k for k, _, _ in panels(r)]
        fig = figure(r)
    # probes ordered by modality, microscopic to macroscopic, then the recorded signals
    assert kinds == ["raster", "depth", "traces", "frame", "traces", "traces", "traces"]
    assert len(fig.axes) == 7
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert [t.split(",")[0] for t in titles] == ["spikes", "lfp (lfp)", "eeg (eeg)", "vsdi (vsdi)",
                                                 "ca (calcium)", "bold (bold)", "lin.x"]
    # the raster holds every recorded spike; the depth image spans the electrodes' z
    raster = fig.axes[0].collections[0].get_offsets()
    assert len(raster) == 200
    assert fig.axes[1].images[0].get_extent()[2:] == pytest.approx([-50.0, 750.0])
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_time_range_limits_what_is_drawn(multimodal_run):
    fig = figure(multimodal_run, t0_ms=10.0, t1_ms=20.0)
    with ps.load(multimodal_run) as r:
        s = r.spikes("st", "spikes")
        n_in = int(((s.times >= 10.0) & (s.times < 20.0)).sum())
    assert len(fig.axes[0].collections[0].get_offsets()) == n_in
    assert fig.axes[0].get_xlim() == (10.0, 20.0)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_cli_writes_png_and_pdf(multimodal_run, tmp_path, capsys):
    png = tmp_path / "fig.png"
    assert main(["plot", str(multimodal_run), "--out", str(png), "--t0", "5", "--t1", "30"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in capsys.readouterr().out
    pdf = plot(multimodal_run, tmp_path / "fig.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_run_without_anything_to_plot_is_a_clear_error(run_file, tmp_path, capsys):
    m = ps.Model(t_stop_ms=2.0)
    m.solver("lin", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.1))
    ps.run(m, run_file)
    with pytest.raises(ps.RunFileError, match=r"holds nothing to plot: no spikes, probes or recorded signals"):
        plot(run_file, tmp_path / "x.png")
    assert main(["plot", str(run_file)]) == 2
    assert "holds nothing to plot" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_bad_output_name_and_range_are_rejected(multimodal_run, tmp_path):
    with pytest.raises(ps.ConfigError, match=r"--out must end in \.png or \.pdf \(got '.*fig\.jpg'\)"):
        plot(multimodal_run, tmp_path / "fig.jpg")
    with pytest.raises(ps.ConfigError, match=r"--t1 \(5 ms\) must be after --t0 \(10 ms\)"):
        plot(multimodal_run, tmp_path / "fig.png", t0_ms=10.0, t1_ms=5.0)


def test_missing_matplotlib_names_the_plot_extra(multimodal_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    with pytest.raises(ps.ConfigError, match=r"pip install 'polyscale\[plot\]' \(the 'plot' extra\)"):
        figure(multimodal_run)
