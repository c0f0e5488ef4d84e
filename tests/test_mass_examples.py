"""The level III examples run and reproduce what they claim."""
import sys

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.config import load_model


def test_jansen_rit_example_is_tvbs_trajectory(examples_dir, reference):
    """1 s of the example equals the first 1 s of TVB's single-node reference (same scheme, same
    operations: 1e-6 of each variable's range, the task's tolerance)."""
    run = ps.run(load_model(examples_dir / "jansen_rit.py", {"t_stop_ms": 1000.0}))
    state = run.signal("jr", "state")
    assert state.data.shape == (10000, 6)
    ref = np.load(reference / "mass" / "jr_det_y.npy")[:9999]
    err = np.abs(state.data[1:] - ref).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 1e-6
    rate = run.signal("jr", "rate").data
    assert 0.0 < rate.min() and rate.max() <= 5.0   # 2 nu_max = 5 Hz is the sigmoid's ceiling


def test_whole_brain_example_runs_on_a_connectome_file(examples_dir, reference):
    path = reference / "mass" / "conn76_weights.npy"
    model = load_model(examples_dir / "whole_brain.py", {"connectome": str(path), "t_stop_ms": 300.0})
    ps.check(model)
    run = ps.run(model)
    act = run.signal("brain", "activity")
    assert act.data.shape == (300, 76)
    assert np.isfinite(act.data).all()
    # every region is driven away from rest by mu and its neighbours within 300 ms
    assert (np.ptp(act.data, axis=0) > 1.0).all()


def test_whole_brain_example_says_where_to_get_a_connectome(examples_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tvb_data", None)   # import fails as if not installed
    with pytest.raises(ps.PolyscaleError, match=r"pip install tvb-data.*-p connectome=PATH"):
        load_model(examples_dir / "whole_brain.py", {"t_stop_ms": 10.0})


@pytest.mark.parametrize("name", ["jansen_rit.py"])
def test_examples_pass_check(examples_dir, name):
    ps.check(load_model(examples_dir / name))
