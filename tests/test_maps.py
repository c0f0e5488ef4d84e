"""ChannelMap: weighted many-to-one and one-to-many channel maps (region <-> populations)."""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

P = 100_000
CTX = AdapterContext("a.x -> b.u", 1_000_000, P)


def test_pool_and_spread_build_block_matrices():
    assert ps.adapters.ChannelMap.pool((2, 3)).weights == ((1, 1, 0, 0, 0), (0, 0, 1, 1, 1))
    mean = np.array(ps.adapters.ChannelMap.pool((2, 3), mean=True).weights)
    np.testing.assert_allclose(mean, [[0.5, 0.5, 0, 0, 0], [0, 0, 1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)
    assert ps.adapters.ChannelMap.spread((2, 1)).weights == ((1, 0), (1, 0), (0, 1))
    with pytest.raises(ps.ModelError, match=r"'sizes' must be whole numbers >= 1, one per block \(got \(2, 0\)\)"):
        ps.adapters.ChannelMap.pool((2, 0))


def test_sampled_signal_is_multiplied_by_the_matrix():
    w = [[0.5, 0.5, 0.0], [0.0, 2.0, -1.0]]
    spec = ps.adapters.ChannelMap(weights=w, units="nA")
    assert spec.signature(SignalSpec("rate", 3, "Hz", P), CTX) == SignalSpec("rate", 2, "nA", P)
    x = np.array([[1.0, 3.0, 5.0], [2.0, -2.0, 0.5]])
    out = spec.build(SignalSpec("rate", 3, "Hz", P), CTX)(0, 2 * P, ps.Samples(0, P, x))
    np.testing.assert_allclose(out.data, [[2.0, 1.0], [0.0, -4.5]], rtol=1e-15)


def test_one_input_channel_fanned_out_is_each_weight_times_the_input():
    # one population rate to several targets: out[:, i] = w[i] x, one product per element,
    # written out by hand
    w = [[0.0], [10.0], [0.1], [-3.0]]
    spec = ps.adapters.ChannelMap(weights=w)
    x = np.array([[1.5], [0.3], [7.0]])
    out = spec.build(SignalSpec("rate", 1, "Hz", P), CTX)(0, 3 * P, ps.Samples(0, P, x))
    want = [[w[i][0] * x[k, 0] for i in range(4)] for k in range(3)]
    assert out.data.shape == (3, 4) and out.data.tolist() == want


def test_spikes_are_copied_to_every_target_as_many_times_as_the_weight():
    """W (3 out, 2 in) = [[1, 0], [2, 1], [0, 0]]: a spike of channel 0 goes once to 0 and twice
    to 1; one of channel 1 once to 1. Counts: out = W @ in."""
    spec = ps.adapters.ChannelMap(weights=[[1, 0], [2, 1], [0, 0]])
    incoming = SignalSpec("spikes", 2)
    assert spec.signature(incoming, CTX) == SignalSpec("spikes", 3, "", None)
    out = spec.build(incoming, CTX)(0, P, ps.Spikes(np.array([5, 7, 9]), np.array([0, 1, 0])))
    assert out.ticks.tolist() == [5, 5, 5, 7, 9, 9, 9]
    assert out.ids.tolist() == [0, 1, 1, 1, 0, 1, 1]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 2, 500)
    out = spec.build(incoming, CTX)(0, P, ps.Spikes(np.sort(rng.integers(0, P, 500)), ids))
    np.testing.assert_array_equal(np.bincount(out.ids, minlength=3),
                                  np.array([[1, 0], [2, 1], [0, 0]]) @ np.bincount(ids, minlength=2))


def test_shape_and_weight_errors_name_the_field():
    with pytest.raises(ps.ModelError, match=r"'weights' has shape \(2, 3\): 3 columns, one per incoming "
                                            r"channel, but 4 channel\(s\) arrive"):
        ps.adapters.ChannelMap(weights=[[1, 2, 3], [4, 5, 6]]).signature(SignalSpec("rate", 4, "Hz", P), CTX)
    with pytest.raises(ps.ModelError, match=r"maps spikes only with whole weights >= 0 \(copies of each spike\), "
                                            r"but 'weights' holds 0.5"):
        ps.adapters.ChannelMap(weights=[[0.5, 1.0]]).signature(SignalSpec("spikes", 2), CTX)
    with pytest.raises(ps.ModelError, match=r"channel_map: 'weights' must be a matrix \(n_out, n_in\) with at "
                                            r"least one row and one column \(got shape \(3,\)\)"):
        ps.adapters.ChannelMap(weights=[1, 2, 3])
    with pytest.raises(ps.ModelError, match=r"channel_map: 'weights' must hold finite numbers"):
        ps.adapters.ChannelMap(weights=[[np.nan]])


def test_a_map_of_the_wrong_width_is_rejected_in_a_model():
    m = ps.Model(t_stop_ms=5.0)
    m.solver("region", ps.solvers.LinearSystem(a=np.zeros((2, 2)).tolist(), units="Hz"))
    m.solver("pops", ps.solvers.LinearSystem(a=np.zeros((3, 3)).tolist(), input_units="Hz"))
    m.couple("region.x", "pops.u", delay_ms=1.0, via=[ps.adapters.ChannelMap.spread((2, 1, 1))])
    with pytest.raises(ps.ModelError, match=r"coupling region.x -> pops.u: adapter 1 \(channel_map\): 'weights' "
                                            r"has shape \(4, 3\): 3 columns, one per incoming channel, but 2"):
        ps.check(m)


def test_region_and_populations_both_ways_on_every_transport(transport):
    """A region's 2 rates (10, 30 Hz) spread to 3 populations (2 + 1), integrated; the spikes of
    5 neurons pooled into 2 groups (2 + 3) and relayed. Closed forms: x_k = 0.1 sum_{j<k} u_j
    with u = (10, 10, 30) after the 1 ms delay; every spike arrives in its group, 1 ms later."""
    m = ps.Model(seed=4, t_stop_ms=3.0)
    m.solver("region", ps.solvers.LinearSystem(a=np.zeros((2, 2)).tolist(), x0=[10.0, 30.0], units="Hz"))
    m.solver("pops", ps.solvers.LinearSystem(a=np.zeros((3, 3)).tolist(), input_units="Hz"))
    m.solver("neurons", ps.solvers.SpikeTrain(times_ms=[0.5, 0.5, 1.2, 1.7], ids=[0, 4, 2, 1], size=5))
    m.solver("groups", ps.solvers.SpikeRelay(size=2))
    m.couple("region.x", "pops.u", delay_ms=1.0, via=[ps.adapters.ChannelMap.spread((2, 1))])
    m.couple("neurons.spikes", "groups.in", delay_ms=1.0, via=[ps.adapters.ChannelMap.pool((2, 3))])
    m.record("pops.x")
    m.record("groups.out")
    run = ps.run(m, transport=transport)
    u = np.where(np.arange(30)[:, None] < 10, 0.0, np.array([10.0, 10.0, 30.0]))
    expected = 0.1 * np.concatenate([np.zeros((1, 3)), np.cumsum(u, axis=0)[:-1]])
    np.testing.assert_allclose(run.signal("pops", "x").data, expected, rtol=1e-12, atol=1e-12)
    sp = run.spikes("groups", "out")
    np.testing.assert_allclose(sp.times, [1.5, 1.5, 2.2, 2.7], rtol=1e-12)
    assert sp.ids.tolist() == [0, 1, 1, 0]
