"""SpikeTrain."""
import numpy as np

import polyscale as ps


def test_spike_train_emits_each_spike_once_in_its_window():
    spec = ps.solvers.SpikeTrain(times_ms=[0.5, 0.1, 2.0, 1.0], ids=[1, 0, 1, 0], size=2)
    solver = spec.build(None)
    windows = [solver.advance(t, t + 1_000_000, {}).outputs["spikes"] for t in (0, 1_000_000, 2_000_000)]
    assert [w.ticks.tolist() for w in windows] == [[100_000, 500_000], [1_000_000], [2_000_000]]
    assert [w.ids.tolist() for w in windows] == [[0, 1], [0], [1]]
    assert spec.ports()["spikes"].size == 2


def test_spike_train_from_numpy_arrays_equals_from_lists():
    assert ps.solvers.SpikeTrain(times_ms=np.array([1.0, 2.0])) == ps.solvers.SpikeTrain(times_ms=[1.0, 2.0])
