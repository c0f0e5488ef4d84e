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


def test_whole_brain_example_eeg_is_the_head_model_seeing_the_recorded_activity(examples_dir, reference):
    """The EEG probe is wired as the docstring says: each sample equals the four-sphere lead
    field of radial dipoles at the region centres times 1e6 nA um per mV of that millisecond's
    activity (y1 - y2), to 1e-9 relative. (The lead field itself is tested against LFPykit in
    the probes' tests; this checks the example's geometry, gain and wiring.)"""
    from polyscale.probes import FourSphere
    path = reference / "mass" / "conn76_weights.npy"
    run = ps.run(load_model(examples_dir / "whole_brain.py", {"connectome": str(path), "t_stop_ms": 100.0}))
    eeg = run.probe("eeg")
    act = run.signal("brain", "activity").data
    assert eeg.units == "mV" and eeg.data.shape == (100, 10)
    centres = np.load(reference / "mass" / "conn76_centres_mm.npy") * 1000.0
    c = centres.mean(axis=0)
    radii = (85000.0, 86000.0, 91000.0, 96000.0)
    th, ph = np.radians([0, 15, 30, 45, 60, 90, 120, 150, 90, 90]), np.radians([0, 0, 0, 0, 0, 0, 0, 0, 90, 270])
    el = c + radii[3] * np.column_stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
    lf = FourSphere(radii_um=radii, centre_um=tuple(c)).lead_field(el, centres)   # (10, 76, 3)
    radial = (centres - c) / np.linalg.norm(centres - c, axis=1)[:, None]
    moments = 1e6 * act[:, :, None] * radial[None]                                 # (100, 76, 3) nA um
    want = np.einsum("tjk,ejk->te", moments, lf)
    np.testing.assert_allclose(eeg.data, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_whole_brain_example_bold_rises_with_the_regions_firing(examples_dir, reference):
    """BOLD every 1 s over 4 s: 0 % at t = 0 (the Balloon model starts at rest), then, driven
    by positive firing rates (0.02 /s per Hz), positive in every region after the haemodynamic
    delay (~2 s), as a positive flow-inducing signal must give."""
    path = reference / "mass" / "conn76_weights.npy"
    run = ps.run(load_model(examples_dir / "whole_brain.py", {"connectome": str(path), "t_stop_ms": 4000.0,
                                                            "tr_ms": 1000.0, "eeg": False}))
    bold = run.probe("bold")
    assert bold.units == "%" and bold.data.shape == (4, 76)
    np.testing.assert_allclose(bold.data[0], 0.0, atol=1e-12)
    assert (bold.data[3] > 0.1).all()


def test_whole_brain_example_asks_for_centres_when_eeg_cannot_place_dipoles(examples_dir, tmp_path):
    np.save(tmp_path / "weights.npy", np.ones((3, 3)) - np.eye(3))
    with pytest.raises(ps.PolyscaleError, match=r"EEG probe needs the regions' centres.*-p eeg=False"):
        load_model(examples_dir / "whole_brain.py", {"connectome": str(tmp_path / "weights.npy")})


def test_whole_brain_example_says_where_to_get_a_connectome(examples_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tvb_data", None)   # import fails as if not installed
    with pytest.raises(ps.PolyscaleError, match=r"pip install tvb-data.*-p connectome=PATH"):
        load_model(examples_dir / "whole_brain.py", {"t_stop_ms": 10.0})


@pytest.mark.parametrize("name", ["jansen_rit.py"])
def test_examples_pass_check(examples_dir, name):
    ps.check(load_model(examples_dir / name))
