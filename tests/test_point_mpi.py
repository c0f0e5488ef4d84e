"""A PointNetwork spanning MPI ranks (solvers/point/distributed.py), and solver specs asking
for ranks (coordinator/transports/mpi.py ``placement``).

The reference is the single-process network on inproc (validated against NEST's statistics in
test_point_brunel.py and against closed forms in test_point_network.py / test_point_models.py):
the issue asks for the same spikes whatever the process layout, so the comparison is bit for
bit, every dataset of the run file. MPI jobs run as in test_mpi.py (mpiexec in a subprocess with
a timeout); without mpi4py or an mpiexec they skip with the reason, and CI runs them.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.plan import make_plan
from polyscale.coordinator.transports.mpi import placement
from polyscale.solvers.point import (AllToAll, FixedIndegree, FixedOutdegree, IafPscDelta, IafPscExp, Normal,
                                     PairwiseBernoulli, PointNetwork, Population, Projection, Uniform)
from polyscale.solvers.point.distributed import blocks

from test_mpi import assert_same_datasets, datasets, mpirun


def brunel(scale: float = 0.02) -> PointNetwork:
    """examples/brunel.py's network (NEST's brunel_delta_nest) at ``scale``."""
    n_e, n_i = int(round(10000 * scale)), int(round(2500 * scale))
    c_e, c_i = int(0.1 * n_e), int(0.1 * n_i)
    j, g, eta, tau_m, theta = 0.1, 5.0, 2.0, 20.0, 20.0
    rate = 1000.0 * eta * theta / (j * c_e * tau_m) * c_e
    neuron = IafPscDelta(tau_m_ms=tau_m, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=theta, v_reset_mV=10.0,
                         t_ref_ms=2.0, v_init_mV=0.0)
    pops = tuple(Population(name=name, size=n, model=neuron, poisson_rate_hz=rate, poisson_weight=j)
                 for name, n in (("E", n_e), ("I", n_i)))
    projs = tuple(Projection(source=s, target=t, rule=FixedIndegree(indegree=c), weight=w, delay_ms=1.5)
                  for s, c, w in (("E", c_e, j), ("I", c_i, -g * j)) for t in ("E", "I"))
    return PointNetwork(populations=pops, projections=projs, dt_ms=0.1)


def features(ranks: int = 2) -> PointNetwork:
    """Every path of the distributed solver: exp synapses (inhibitory slots), drawn initial V,
    thresholds and currents, per-neuron model parameters (drawn and given), noise, drawn
    per-synapse delays (rows of mixed delay), constant-weight groups sharing targets with drawn
    synapses, dense all-to-all projections with and without autapses, recorded V, a min delay of
    1 ms."""
    lif = IafPscDelta(tau_m_ms=20.0, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0, t_ref_ms=2.0)
    pops = (Population(name="A", size=37, model=IafPscExp(), poisson_rate_hz=8000.0, poisson_weight=30.0,
                       noise_std_pA=30.0, v_init_mV=Normal(mean=-65.0, std=4.0), record_v=True,
                       params={"tau_m_ms": Uniform(low=8.0, high=12.0), "tau_syn_ex_ms": Uniform(low=1.0, high=3.0),
                               "e_l_mV": tuple(np.linspace(-72.0, -68.0, 37))}),
            Population(name="B", size=23, model=lif, poisson_rate_hz=12000.0, poisson_weight=0.15,
                       v_th_mV=Normal(mean=20.0, std=1.0), record_v=True),
            Population(name="C", size=11, model=lif, poisson_rate_hz=5000.0, poisson_weight=0.2,
                       i_e_pA=Uniform(low=0.0, high=0.5), params={"tau_m_ms": tuple(np.linspace(15.0, 25.0, 11))}))
    projs = (Projection(source="A", target="B", rule=FixedIndegree(indegree=5), weight=Normal(mean=0.5, std=0.1),
                        delay_ms=Uniform(low=1.0, high=3.0)),
             Projection(source="B", target="A", rule=PairwiseBernoulli(p=0.2), weight=-40.0, delay_ms=1.0),
             Projection(source="A", target="A", rule=FixedOutdegree(outdegree=4), weight=20.0, delay_ms=2.0),
             Projection(source="C", target="B", rule=AllToAll(), weight=-0.3, delay_ms=1.2, dense=True),
             Projection(source="C", target="C", rule=AllToAll(), weight=0.2, delay_ms=1.5, dense=True,
                        allow_autapses=False),
             Projection(source="B", target="C", rule=FixedIndegree(indegree=3), weight=0.4, delay_ms=1.1),
             # a constant projection after a drawn one between the same populations: one process
             # holds it as a group delivered first, the ranks as the head of each CSR row
             Projection(source="A", target="B", rule=FixedIndegree(indegree=2), weight=0.25, delay_ms=2.0))
    return PointNetwork(populations=pops, projections=projs, dt_ms=0.1, ranks=ranks)


def model(brunel_ranks: int = 1, features_ranks: int | None = None) -> ps.Model:
    """Brunel at scale 0.02 (window 10 ms > its 1.5 ms min delay: several exchanges per window)
    and the features network (its spec asks for 2 ranks), driven by spikes from two SpikeTrains
    (onto excitatory and, with a negative weight, inhibitory currents), every spike and V recorded."""
    m = ps.Model(seed=7, t_stop_ms=200.0, window_ms=4.0)
    m.solver("brunel", brunel())
    m.solver("net", features())
    rng = np.random.default_rng(3)
    for pop, size, w in (("A", 37, -60.0), ("B", 23, 3.0)):
        times = np.round(np.sort(rng.uniform(0.0, 190.0, 60)), 1)
        m.solver(f"kick{pop}", ps.solvers.SpikeTrain(times_ms=tuple(times), ids=tuple(rng.integers(0, size, 60)),
                                                     size=size))
        m.couple(f"kick{pop}.spikes", f"net.{pop}.spikes_in", delay_ms=5.0, weight=w)
    for name in ("brunel.E.spikes", "brunel.I.spikes", "net.A.spikes", "net.B.spikes", "net.C.spikes",
                 "net.A.V_m", "net.B.V_m"):
        m.record(name)
    if brunel_ranks > 1:
        m.place("brunel", ranks=brunel_ranks)
    if features_ranks is not None:
        m.place("net", ranks=features_ranks)
    return m


CONFIG = """\
from test_point_mpi import model
model = model({brunel}, {features})
"""


# -- without MPI ------------------------------------------------------------------------------

def test_blocks_give_every_neuron_to_exactly_one_rank_in_population_order():
    sizes = [7, 1, 12]
    for r in (1, 2, 3, 5, 8):
        parts = [blocks(sizes, r, k) for k in range(r)]
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(20))
        for part in parts:
            assert np.all(np.diff(part) > 0)          # population order, then index order
        # contiguous blocks of each population, within one neuron of an equal split
        for lo, size in ((0, 7), (7, 1), (8, 12)):
            counts = [np.count_nonzero((p >= lo) & (p < lo + size)) for p in parts]
            assert max(counts) - min(counts) <= 1


def test_a_spec_asking_for_ranks_is_placed_on_them_and_model_place_overrides_it():
    m = model()
    plan = make_plan(m)
    ranks = placement(plan, 4)
    assert ranks["brunel"] == (0,) and ranks["net"] == (1, 2)     # the spec's ranks=2
    m.place("net", ranks=3)
    assert placement(make_plan(m), 4)["net"] == (1, 2, 3)
    m.place("net", ranks=1)
    assert placement(make_plan(m), 4)["net"] == (1,)


def test_a_spec_asking_for_more_ranks_than_the_job_has_is_a_clear_error():
    m = ps.Model(seed=1, t_stop_ms=10.0)
    m.solver("net", features(ranks=3))
    with pytest.raises(ps.TransportError, match=r"'net': ranks=3 \(its spec asks for them\), but the job "
                                               r"has only 2 rank\(s\); start it with mpiexec -n 3"):
        placement(make_plan(m), 2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_ranks_must_be_a_positive_integer(bad):
    with pytest.raises(ps.ModelError, match="'ranks' must be an integer >= 1"):
        features(ranks=bad)


def test_inproc_runs_a_spec_asking_for_ranks_in_one_process_with_a_warning_and_the_same_spikes(tmp_path):
    def one(ranks):
        m = ps.Model(seed=4, t_stop_ms=50.0)
        m.solver("net", features(ranks=ranks))
        m.record("net.A.spikes")
        m.record("net.B.V_m")
        return m
    with pytest.warns(UserWarning, match=r"'net' asks for ranks=2, but the transport gave it one process"):
        ps.run(one(2), out=tmp_path / "two.h5").close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ps.run(one(1), out=tmp_path / "one.h5").close()
    with ps.load(tmp_path / "one.h5") as run:
        assert len(run.spikes("net", "A").times) > 50     # the test network does fire
    one, two = datasets(tmp_path / "one.h5"), datasets(tmp_path / "two.h5")
    assert sorted(one) == sorted(two)
    for name in one:
        if name != "model":    # the model itself differs: its ranks
            assert np.array_equal(one[name], two[name]), name


# -- under mpiexec ----------------------------------------------------------------------------

@pytest.mark.parametrize("world,brunel_ranks,features_ranks", [(2, 2, None), (3, 3, 3)])
def test_a_network_spanning_ranks_writes_the_same_run_file_as_one_process(tmp_path, world, brunel_ranks,
                                                                          features_ranks):
    """Every spike time and id and every V sample, bit for bit: 2 ranks (the features network
    on the 2 its spec asks for), 3 ranks (model.place overriding the spec)."""
    ref = tmp_path / "inproc.h5"
    with pytest.warns(UserWarning, match="asks for ranks=2"):
        ps.run(model(brunel_ranks, features_ranks), out=ref).close()   # inproc: placement ignored
    config = CONFIG.format(brunel=brunel_ranks, features=features_ranks)
    rc, out, err, path = mpirun(tmp_path, world, config, timeout=120.0)
    assert rc == 0, err
    assert "status complete" in out
    assert_same_datasets(ref, path)
    with ps.load(path) as run:
        assert run.attrs["transport"] == "mpi"
        # the comparison is not vacuous: both networks fire, and every rank's neurons among them
        assert len(run.spikes("brunel", "E").times) > 1000
        for pop, size in (("A", 37), ("B", 23), ("C", 11)):
            assert len(np.unique(run.spikes("net", pop).ids)) > size // 2, pop


def test_a_spec_asking_for_more_ranks_than_the_job_has_fails_the_mpi_run_with_the_message(tmp_path):
    rc, out, err, path = mpirun(tmp_path, 1, "from test_point_mpi import model\nmodel = model()\n")
    assert rc != 0
    assert ("'net': ranks=2 (its spec asks for them), but the job has only 1 rank(s); start it with "
            "mpiexec -n 2") in out + err


def plastic_model(ranks: int = 2) -> ps.Model:
    """STDP on two projections (E->E multiplicative with dendritic delays drawn, E->I additive)
    of a Poisson-driven network whose plastic weights shape its firing, every spike recorded,
    and a static inhibitory projection back: min delay 1 ms, windows of 5 ms."""
    from polyscale.solvers.point import STDP
    lif = IafPscDelta(tau_m_ms=20.0, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0, t_ref_ms=2.0)
    pops = (Population(name="E", size=40, model=lif, poisson_rate_hz=14000.0, poisson_weight=0.1),
            Population(name="I", size=13, model=lif, poisson_rate_hz=12000.0, poisson_weight=0.1))
    projs = (Projection(source="E", target="E", rule=FixedIndegree(indegree=8), weight=Uniform(low=0.2, high=1.0),
                        delay_ms=Uniform(low=1.0, high=3.0), plasticity=STDP(lambda_=0.05, mu_plus=0.4, mu_minus=0.4,
                                                                               w_max=2.0)),
             Projection(source="E", target="I", rule=FixedIndegree(indegree=6), weight=0.5, delay_ms=1.5,
                        plasticity=STDP(lambda_=0.02, alpha=1.1, w_max=1.5)),
             Projection(source="I", target="E", rule=FixedIndegree(indegree=4), weight=-0.8, delay_ms=1.0))
    m = ps.Model(seed=11, t_stop_ms=300.0, window_ms=5.0)
    m.solver("net", PointNetwork(populations=pops, projections=projs, dt_ms=0.1, ranks=ranks))
    m.record("net.E.spikes")
    m.record("net.I.spikes")
    return m


@pytest.mark.parametrize("world", [2, 3])
def test_stdp_spanning_ranks_writes_the_same_run_file_as_one_process(tmp_path, world):
    """Plastic synapses split by target across ranks, their weights updated as each spike is
    delivered: every spike bit for bit as in one process. The comparison is not vacuous: the
    network fires, and the same run with the weights frozen (lambda 0) fires differently."""
    ref = tmp_path / "inproc.h5"
    with pytest.warns(UserWarning, match=f"asks for ranks={world}"):
        ps.run(plastic_model(world), out=ref).close()
    rc, out, err, path = mpirun(tmp_path, world, f"from test_point_mpi import plastic_model\n"
                                                 f"model = plastic_model({world})\n", timeout=120.0)
    assert rc == 0, err
    assert_same_datasets(ref, path)
    with ps.load(ref) as run:
        e = run.spikes("net", "E")
        assert len(e.times) > 500
        frozen = plastic_model(1)
        net = frozen.solvers["net"]
        projs = tuple(pr.replace(plasticity=pr.plasticity.replace(lambda_=0.0)) if pr.plasticity else pr
                      for pr in net.projections)
        frozen.solvers["net"] = net.replace(projections=projs)
        e0 = ps.run(frozen).spikes("net", "E")
        assert not (len(e0.times) == len(e.times) and np.array_equal(e0.times, e.times))


def test_neuron_streams_start_at_successive_outputs_of_the_seeds_splitmix64():
    """Each neuron's stream starts at output i + 1 of splitmix64 (Steele, Lea & Flood 2014;
    constants of Vigna's reference C code) seeded with the solver's seed, computed here in pure
    Python: starts spread over the whole cycle, and the same for a neuron whichever ids are
    drawn with it (what makes the draws independent of the process layout)."""
    from polyscale.solvers.point._kernels import neuron_streams

    def splitmix64(seed, k):
        z = (seed + k * 0x9E3779B97F4A7C15) % 2**64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return z ^ (z >> 31)

    seed = 2**63 - 25
    got = neuron_streams(seed, np.arange(50))
    assert got.dtype == np.uint64
    assert [int(x) for x in got] == [splitmix64(seed, i + 1) for i in range(50)]
    assert np.array_equal(neuron_streams(seed, [7, 31]), got[[7, 31]])
