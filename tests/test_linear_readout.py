"""LinearReadout probe: local products, global sum over solvers."""
import numpy as np
import pytest

import polyscale as ps


def test_readout_is_the_sum_over_solvers_of_weights_times_samples():
    m = ps.Model(t_stop_ms=4.0)
    m.solver("a", ps.solvers.LinearSystem(a=[[0.0], ], c=[1.0], dt_ms=0.1))                    # x = t
    m.solver("b", ps.solvers.LinearSystem(a=[[0.0, 0.0], [0.0, 0.0]], c=[2.0, -1.0], dt_ms=0.05))  # (2t, -t)
    m.probe("lfp", ps.probes.LinearReadout(weights={"a.x": [[1.0], [0.0]], "b.x": [[0.5, 0.0], [0.0, 3.0]]},
                                           units="mV", modality="lfp", positions_um=[[0, 0, 0], [0, 0, 100]]))
    p = ps.run(m).probe("lfp")
    # the probe samples at the coarser source period, 0.1 ms: channel 0 = t + t, channel 1 = -3 t
    t = np.arange(40) * 0.1
    np.testing.assert_allclose(p.time, t, atol=1e-12)
    np.testing.assert_allclose(p.data, np.stack([2 * t, -3 * t], axis=1), atol=1e-12)
    assert (p.units, p.modality) == ("mV", "lfp") and p.positions_um.tolist() == [[0, 0, 0], [0, 0, 100]]


def test_readout_period_must_be_a_multiple_of_every_source_period():
    m = ps.Model(t_stop_ms=4.0)
    m.solver("a", ps.solvers.LinearSystem(a=[[0.0]], dt_ms=0.2))
    m.probe("p", ps.probes.LinearReadout(weights={"a.x": [[1.0]]}, every_ms=0.3))
    with pytest.raises(ps.ModelError, match=r"every_ms=0\.3 is not a multiple of the sample period of a\.x \(0\.2 ms\)"):
        m.check()


def test_readout_slower_than_the_window_writes_one_sample_per_period():
    """A 0.7 ms readout over 0.2 ms windows: samples at every multiple of 0.7 ms, none lost."""
    m = ps.Model(t_stop_ms=5.0, window_ms=0.2)
    m.solver("a", ps.solvers.LinearSystem(a=[[0.0]], c=[1.0], dt_ms=0.1))   # x = t
    m.probe("slow", ps.probes.LinearReadout(weights={"a.x": [[2.0]]}, every_ms=0.7))
    p = ps.run(m).probe("slow")
    t = np.arange(8) * 0.7
    np.testing.assert_allclose(p.time, t, atol=1e-12)
    np.testing.assert_allclose(p.data[:, 0], 2 * t, atol=1e-12)
