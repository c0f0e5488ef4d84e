"""Connection rules, per-synapse distributions and the CSR connectome of the point network."""
from __future__ import annotations

import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.specs import SolverContext
from polyscale.solvers.point import (AllToAll, Explicit, FixedIndegree, FixedOutdegree, IafPscDelta, IafPscExp, Normal,
                                     OneToOne, PairwiseBernoulli, PointNetwork, Population, Projection, Rule,
                                     Uniform)


def build(projections, sizes=(("A", 50), ("B", 40)), models=None, seed=0):
    models = models or {}
    pops = tuple(Population(name=n, size=s, model=models.get(n, IafPscDelta())) for n, s in sizes)
    spec = PointNetwork(populations=pops, projections=tuple(projections), dt_ms=0.1)
    return spec.build(SolverContext("net", seed, np.random.default_rng(seed)))


def edges(s):
    """(src, target slot, weight, delay steps) of every synapse, from the CSR (constant-weight
    groups included)."""
    indptr, slot, w, d = s.csr()
    return np.repeat(np.arange(s.n), np.diff(indptr)), slot, w, d


@pytest.mark.parametrize("autapses,multapses", [(True, True), (False, True), (True, False), (False, False)])
def test_fixed_indegree_counts_and_options(autapses, multapses):
    s = build([Projection(source="A", target="A", rule=FixedIndegree(indegree=30), weight=0.5,
                          delay_ms=1.0, allow_autapses=autapses, allow_multapses=multapses)])
    src, tgt, w, d = edges(s)
    assert np.bincount(tgt, minlength=50).tolist() == [30] * 50
    if not autapses:
        assert not np.any(src == tgt)
    pairs = src * 1000 + tgt
    if not multapses:
        assert np.unique(pairs).size == pairs.size
    else:
        # 30 draws of 50 with replacement: P(no repeat) = prod(1 - k/50) ~ 1e-5 per target
        assert np.unique(pairs).size < pairs.size
    assert (w == np.float32(0.5)).all() and (d == 10).all()


def test_fixed_outdegree_and_sources_between_populations():
    s = build([Projection(source="A", target="B", rule=FixedOutdegree(outdegree=7), allow_multapses=False)])
    src, tgt, _, _ = edges(s)
    assert np.bincount(src, minlength=90)[:50].tolist() == [7] * 50
    assert tgt.min() >= 50 and tgt.max() < 90


def test_pairwise_bernoulli_count_is_binomial():
    """n m p expected synapses, binomial spread: within 4 standard deviations."""
    p, n = 0.2, 50 * 40
    s = build([Projection(source="A", target="B", rule=PairwiseBernoulli(p=p))])
    src, tgt, _, _ = edges(s)
    assert abs(s.n_synapses - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert np.unique(src * 1000 + tgt).size == src.size


def test_one_to_one_and_all_to_all():
    s = build([Projection(source="A", target="A", rule=OneToOne())], sizes=(("A", 20),))
    src, tgt, _, _ = edges(s)
    assert (src == tgt).all() and s.n_synapses == 20
    s = build([Projection(source="A", target="A", rule=AllToAll(), allow_autapses=False)], sizes=(("A", 20),))
    src, tgt, _, _ = edges(s)
    assert s.n_synapses == 20 * 19 and not np.any(src == tgt)


def test_explicit_pairs():
    s = build([Projection(source="A", target="B", rule=Explicit(sources=(3, 0, 3), targets=(1, 2, 39)))])
    src, tgt, _, _ = edges(s)
    assert sorted(zip(src.tolist(), tgt.tolist())) == [(0, 52), (3, 51), (3, 89)]
    with pytest.raises(ModelError, match=r"explicit: target index 40 is outside \[0, 40\)"):
        build([Projection(source="A", target="B", rule=Explicit(sources=(0,), targets=(40,)))])
    with pytest.raises(ModelError, match=r"lists a pair twice, but allow_multapses is False"):
        build([Projection(source="A", target="B", rule=Explicit(sources=(1, 1), targets=(2, 2)),
                          allow_multapses=False)])
    with pytest.raises(ModelError, match=r"'sources' has 2 entries but 'targets' has 1"):
        Explicit(sources=(1, 2), targets=(0,))


def test_distributions_weights_and_delays():
    """Normal weights: sample mean and std within 4 standard errors; uniform delays rounded to
    steps of 0.1 ms cover [1, 3] ms; float32 weights are the drawn values rounded to float32."""
    s = build([Projection(source="A", target="B", rule=AllToAll(), weight=Normal(mean=2.0, std=0.5),
                          delay_ms=Uniform(low=1.0, high=3.0))])
    _, _, w, d = edges(s)
    n = w.size
    assert abs(w.mean() - 2.0) < 4 * 0.5 / math.sqrt(n)
    assert abs(w.std() - 0.5) < 4 * 0.5 / math.sqrt(2 * n)
    assert d.min() == 10 and d.max() == 30 and s.depth == 30
    s = build([Projection(source="A", target="B", rule=AllToAll(), weight=Normal(mean=0.0, std=1.0, low=0.0))])
    assert (edges(s)[2] >= 0).all()


def test_negative_weights_onto_exp_synapses_use_the_inhibitory_slot():
    s = build([Projection(source="A", target="B", rule=OneToOne(), weight=Uniform(low=-1.0, high=1.0))],
              sizes=(("A", 40), ("B", 40)), models={"B": IafPscExp()})
    src, slot, w, _ = edges(s)
    assert ((slot >= 80) == (w < 0)).all()
    assert (s.inh_slot[40:] == np.arange(80, 120)).all() and s.n_slots == 120


def test_csr_is_compact_and_the_same_for_the_same_seed():
    """9 bytes per synapse (int32 slot, float32 weight, uint8 delay) plus 8 per neuron for the
    row pointers; the same seed draws the same connectome, another seed another one."""
    proj = [Projection(source="A", target="B", rule=FixedIndegree(indegree=25), weight=Normal(mean=1, std=0.1))]
    a, b, c = build(proj, seed=1), build(proj, seed=1), build(proj, seed=2)
    assert a.connectome_bytes() == 9 * a.n_synapses + 8 * (a.n + 1)
    for x, y in zip(edges(a), edges(b)):
        assert np.array_equal(x, y)
    assert not np.array_equal(edges(a)[0], edges(c)[0])


def test_round_trip_and_errors():
    for r in (FixedIndegree(indegree=3), PairwiseBernoulli(p=0.1), OneToOne(), AllToAll(), FixedOutdegree(outdegree=2),
              Explicit(sources=(0, 1), targets=(1, 1))):
        assert Rule.from_dict(r.to_dict()) == r
    pop = (Population(name="A", size=5),)
    with pytest.raises(ModelError, match=r"'indegree'=9 exceeds the 4 possible sources without multapses"):
        PointNetwork(populations=pop, projections=(Projection(
            source="A", target="A", rule=FixedIndegree(indegree=9), allow_autapses=False, allow_multapses=False),))
    with pytest.raises(ModelError, match=r"target 'B' is not a population \(have: A\)"):
        PointNetwork(populations=pop, projections=(Projection(source="A", target="B", rule=OneToOne()),))
    with pytest.raises(ModelError, match=r"'delay_ms'=0.04 is shorter than one step \(dt_ms=0.1\)"):
        PointNetwork(populations=pop, projections=(Projection(source="A", target="A", rule=OneToOne(),
                                                              delay_ms=0.04),))
    with pytest.raises(ModelError, match=r"'p' must be in \[0, 1\] \(got 1.5\)"):
        PairwiseBernoulli(p=1.5)
    with pytest.raises(ModelError, match=r"connection rule: 'type' must be one of .*'one_to_one'.* \(got 'random'\)"):
        Rule.from_dict({"type": "random"})
    with pytest.raises(ModelError, match=r"population name 'A' is used twice"):
        PointNetwork(populations=pop + pop)
    with pytest.raises(ModelError, match=r"'name' must be a name .* \(got 'E.x'\)"):
        Population(name="E.x", size=3)


def test_constant_weight_groups_deliver_as_the_per_synapse_csr():
    """Projections with a constant weight and delay are held as target-only groups (uint16 slots,
    one weight per group; 2 bytes per synapse plus 8 per source row). Reference: the same
    network built with every synapse in the per-synapse CSR (the path the MPI-spanning solver
    uses, checked against NEST elsewhere): the same synapses, the same spikes bit for bit over
    500 steps of a recurrent network with several groups onto both slot kinds."""
    from polyscale.solvers.point.network import PointNetworkSolver

    class PerSynapse(PointNetworkSolver):
        _compact = False

    pops = (Population(name="A", size=60, poisson_rate_hz=12000.0, poisson_weight=1.5),
            Population(name="B", size=40, model=IafPscExp(), poisson_rate_hz=12000.0, poisson_weight=40.0))
    # a drawn projection first, then constant ones onto the same targets with the same delay: the
    # per-synapse layout must put the groups' synapses first in each row, as they are delivered
    projs = (Projection(source="A", target="B", rule=FixedIndegree(indegree=3), weight=Normal(mean=20, std=2),
                        delay_ms=1.5),
             Projection(source="A", target="A", rule=FixedIndegree(indegree=6), weight=0.7, delay_ms=1.5),
             Projection(source="A", target="B", rule=FixedIndegree(indegree=6), weight=0.7, delay_ms=1.5),
             Projection(source="B", target="A", rule=FixedIndegree(indegree=5), weight=-1.2, delay_ms=0.8),
             Projection(source="B", target="B", rule=FixedIndegree(indegree=5), weight=-30.0, delay_ms=2.0))
    spec = PointNetwork(populations=pops, projections=projs, dt_ms=0.1)
    a = spec.build(SolverContext("net", 4, np.random.default_rng(4)))
    b = PerSynapse(spec, np.random.default_rng(4))
    assert a.g_src.tolist() == [0, 1, 1] and a.c_tgt.dtype == np.uint16     # A->A and A->B merged
    assert b.c_tgt.shape == (0,) and a.n_synapses == b.n_synapses == 1100 + 40 * 3
    for x, y in zip(a.csr(), b.csr()):
        assert np.array_equal(x, y)
    # 1100 constant synapses (100 targets x 6 from A, 60 x 5 and 40 x 5 from B); rows: 60 + 40 + 40
    assert a.connectome_bytes() == b.connectome_bytes() - 9 * 1100 + 2 * 1100 + 8 * (60 + 40 + 40 + 1)
    tick = a.dt_ticks
    n_spikes = 0
    for w in range(50):
        ra, rb = a.advance(w * 10 * tick, (w + 1) * 10 * tick, {}), b.advance(w * 10 * tick, (w + 1) * 10 * tick, {})
        for name in ("A.spikes", "B.spikes"):
            assert np.array_equal(ra.outputs[name].ticks, rb.outputs[name].ticks)
            assert np.array_equal(ra.outputs[name].ids, rb.outputs[name].ids)
            n_spikes += len(ra.outputs[name].ids)
    assert a.step == 500 and np.array_equal(a.v, b.v) and a.pend_n[0] == b.pend_n[0]
    assert n_spikes > 200 and np.any(a.i_in != 0.0)     # recurrent input of both signs acted
