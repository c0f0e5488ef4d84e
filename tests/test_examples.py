"""The examples run, and what they compute makes physical sense."""
import runpy

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.config import load_model


def test_coupled_oscillators_ring_at_their_natural_frequency(examples_dir):
    model = load_model(examples_dir / "coupled_oscillators.py", {"t_stop_ms": 400.0})
    run = ps.run(model)
    left = run.signal("left", "x")
    assert run.status == "complete"
    # kicked at ~52 ms; after that 'left' is a lightly damped 10 Hz oscillator (zeta 0.05: the
    # damped period is 100.1 ms; the coupling to 'right' is weak): its zero crossings between the
    # kicks are half a period apart, within two recorded samples (1 ms)
    t, x = left.time, left.data[:, 0]
    sel = (t > 60) & (t < 300)
    crossings = t[sel][1:][np.sign(x[sel][:-1]) != np.sign(x[sel][1:])]
    assert len(crossings) >= 4
    assert np.abs(np.diff(crossings) - 50.0).max() <= 1.0
    assert np.abs(x[t < 52.0]).max() == 0.0          # nothing before the kick arrives
    assert run.spikes("kick", "spikes").times.tolist() == [50.0, 50.5, 51.0, 300.0]
    assert run.probe("electrode").data.shape == (4000, 2)


def test_readme_snippet_runs(tmp_path, monkeypatch):
    readme = (examples_dir_root() / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    runpy.run_path(str(script))
    assert (tmp_path / "run.h5").exists()


def examples_dir_root():
    from pathlib import Path
    return Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["coupled_oscillators.py"])
def test_every_example_passes_check(examples_dir, name):
    ps.check(load_model(examples_dir / name))
