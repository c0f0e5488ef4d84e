"""examples/l5_cells.py: Hay-style L5 cells driven by Poisson synapses, with an LFP electrode.

The first run compiles the example's generated kernel (some tens of seconds); later runs load it
from the kernel cache.
"""
import numpy as np

import polyscale as ps
from polyscale.coordinator.config import load_model
from polyscale.coordinator.signals import Spikes
from polyscale.coordinator.time import TICKS_PER_MS


def test_l5_cells_spike_at_a_plausible_rate_and_the_lfp_is_finite(examples_dir):
    """Driven cortical pyramidal cells fire at a few to tens of Hz (here 1-40 Hz per cell over
    300 ms); the LFP has every contact finite and nonzero, sampled every 0.5 ms."""
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
