"""examples/l5_cells.py: Hay-style L5 cells driven by Poisson synapses through the cells' ``rate``
port (constant rates from a LinearSystem at rest), with an LFP electrode.

The first run compiles the example's generated kernel (some tens of seconds); later runs load it
from the kernel cache.
"""
import shutil

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.config import load_model
from polyscale.coordinator.signals import Samples, Spikes
from polyscale.coordinator.time import TICKS_PER_MS


def test_l5_cells_spike_at_a_plausible_rate_and_the_lfp_is_finite(examples_dir):
    """Driven cortical pyramidal cells fire at a few to tens of Hz (here 1-40 Hz per cell over
    300 ms, the Poisson events drawn by the cells from their `rate` input); the LFP has every
    contact finite and nonzero, sampled every 0.5 ms."""
    model = load_model(examples_dir / "l5_cells.py", {"t_stop_ms": 300.0})
    run = ps.run(model)
    sp = run.spikes("cells", "spikes")
    rate = len(sp.times) / 5 / 0.3
    assert 1.0 <= rate <= 40.0, rate
    assert len(set(np.asarray(sp.ids).tolist())) >= 3          # not one cell alone
    lfp = np.asarray(run.probe("lfp").data)
    assert lfp.shape == (600, 16)
    assert np.isfinite(lfp).all()
    assert (np.ptp(lfp, axis=0) > 1e-4).all()                  # > 0.1 uV on every contact


def test_l5_cells_drive_is_the_rate_port_with_poisson_counts(examples_dir):
    """The example couples a constant rate per synapse channel (the LinearSystem's x0 = the
    example's RATES_HZ, cell-major) into `cells.rate` and nothing into `cells.syn`; the cells
    turn those rates into Poisson events: over 100 ms the count must be Poisson with mean
    sum(rate) x 0.1 s (1100 for 5 cells), within 5 standard deviations."""
    import importlib.util
    spec_ = importlib.util.spec_from_file_location("l5_cells_example", examples_dir / "l5_cells.py")
    ex = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(ex)
    model = load_model(examples_dir / "l5_cells.py", {"t_stop_ms": 100.0})
    targets = {(c.source, c.target) for c in model.couplings}
    assert targets == {("drive.x", "cells.rate")}
    rates = np.asarray(model.solvers["drive"].x0, dtype=float)
    np.testing.assert_array_equal(rates, np.tile(ex.RATES_HZ, 5))
    cells = model.solvers["cells"]
    assert cells.rate_weight_uS == ex.WEIGHT_US
    s = cells.build(None)
    steps = int(round(100.0 / cells.dt_ms))
    s.advance(0, steps * s.dt_ticks, {"rate": Samples(0, s.dt_ticks, np.tile(rates, (steps, 1)))})
    mean = rates.sum() * 0.1
    assert abs(s.n_rate_events - mean) < 5 * np.sqrt(mean), (s.n_rate_events, mean)


def test_l5_cells_are_silent_without_their_synaptic_drive(examples_dir):
    """The rate above comes from the Poisson drive: the same cells (Ih, Ca hot zone, every
    channel) advanced 300 ms with no input rest below threshold and never spike, so a broken
    drive or an unstable mechanism set fails one of the two tests."""
    model = load_model(examples_dir / "l5_cells.py", {"t_stop_ms": 300.0})
    s = model.solvers["cells"].build(None)
    out = s.advance(0, int(300 * TICKS_PER_MS), {}).outputs
    assert len(out["spikes"]) == 0
    v = np.asarray(out["v_soma"].data)
    assert np.isfinite(v).all() and v.max() < -50.0, v.max()


def test_l5_cells_transmembrane_currents_sum_to_zero_per_cell(examples_dir):
    """Charge conservation with every mechanism of the example active: capacitive + ionic +
    synaptic currents over each cell's segments sum to zero at every step (no electrode); the
    bound is rounding, 1e-9 of the largest segment current."""
    model = load_model(examples_dir / "l5_cells.py", {"t_stop_ms": 50.0, "n_cells": 3})
    spec = model.solvers["cells"]
    s = spec.build(None)
    n_syn = len(spec.synapses)
    ids = np.arange(3 * n_syn, dtype=np.int64)
    spikes = Spikes(np.full(len(ids), int(1 * TICKS_PER_MS), np.int64), ids, np.full(len(ids), 0.005))
    s.advance(0, int(20 * TICKS_PER_MS), {"syn": spikes})
    i = s.transmembrane_currents()
    per_cell = i.reshape(i.shape[0], 3, -1)
    assert np.abs(i).max() > 0.01
    assert np.abs(per_cell.sum(axis=2)).max() < 1e-9 * np.abs(i).max()


@pytest.mark.slow
def test_the_example_cell_matches_neuron_live(examples_dir, tmp_path):
    """One L5 cell of the example (its morphology, all 25 placements with the Ih gradient and
    the Ca hot zone; no synapses) under a 0.8 nA step, against NEURON 9 on the .mod files of
    tests/data/mod compiled now (a subprocess): same equations and discretisation, so the
    bounds are rounding-level: 1e-3 mV RMS, spike times within 1 us."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    from polyscale.solvers.cell.mechanisms import IClamp
    from polyscale.solvers.cell.population import CellPopulation
    if shutil.which("make") is None:
        pytest.skip("nrnivmodl needs make")
    pytest.importorskip("neuron")
    spec = load_model(examples_dir / "l5_cells.py", {"n_cells": 1, "t_stop_ms": 100.0}).solvers["cells"]
    spec = spec.replace(synapses=(), record_currents=False,
                        iclamps=(IClamp(section="soma", delay_ms=10.0, dur_ms=80.0, amp_nA=0.8),))
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict()))
    data = Path(__file__).parent / "data"
    code = (f"import sys, json, numpy as np; sys.path.insert(0, {str(data)!r}); import cell_mech_reference as r; "
            f"from polyscale.solvers.cell.population import CellPopulation; from pathlib import Path; "
            f"spec = CellPopulation.from_dict(json.loads(Path({str(tmp_path / 'spec.json')!r}).read_text())); "
            f"m = r.compile_mods(Path({str(tmp_path)!r})); np.save({str(tmp_path / 'v.npy')!r}, r.neuron_run_spec(spec, m, 100.0))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=900, capture_output=True)
    v_nrn = np.load(tmp_path / "v.npy")
    s = CellPopulation.from_dict(spec.to_dict()).build(None)
    v = s.advance(0, int(100.0 * TICKS_PER_MS), {}).outputs["v_soma"].data[:, 0]

    def spikes(x):
        k = np.nonzero((x[:-1] < 0) & (x[1:] >= 0))[0]
        return 0.025 * (k - x[k] / (x[k + 1] - x[k]))
    assert np.sqrt(np.mean((v - v_nrn) ** 2)) < 1e-3
    assert len(spikes(v_nrn)) >= 3 and len(spikes(v)) == len(spikes(v_nrn))
    np.testing.assert_allclose(spikes(v), spikes(v_nrn), atol=1e-3)
