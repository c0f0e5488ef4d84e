"""SpikeRelay."""
import numpy as np

import polyscale as ps


def test_relay_re_emits_at_arrival_and_sums_weights_per_step():
    solver = ps.solvers.SpikeRelay(size=3, dt_ms=0.5).build(None)
    inp = ps.Spikes(np.array([100, 600_000, 700_000]), np.array([2, 0, 1]), np.array([0.5, 1.0, -2.0]))
    out = solver.advance(0, 1_000_000, {"in": inp}).outputs
    assert out["out"].ticks.tolist() == [100, 600_000, 700_000] and out["out"].ids.tolist() == [2, 0, 1]
    assert out["weight"].data[:, 0].tolist() == [0.5, -1.0]
    assert solver.state()["n_relayed"] == 3
