"""A TVB brain with one region replaced by a polyscale spiking network (tvb-multiscale's set-up).

The brain is The Virtual Brain's own simulator (tvb-library), built here in plain TVB by
`tvb_brain` and run by TVB window by window under polyscale (`TVBSimulator`): one
Montbrió-Pazó-Roxin mass per region (TVB's defaults, eta = -5, J = 15, Delta = 1, tau = 1 ms;
its firing rate r in 1/ms) on a licence-free 20-region connectome (`spherical_connectome`, the
exponential distance rule; delays from tract lengths at 3 mm/ms), TVB's Linear coupling
(a = 0.5), Heun at 0.1 ms, starting from r = 0.01, V = -2 (the regions settle near 81 Hz).

Region 0 is a proxy: its rate is not TVB's but that of a sparse network of 400 excitatory and
100 inhibitory LIF neurons (polyscale's PointNetwork, Brunel's delta synapses, Poisson drive).
Every step, TVB's state r of region 0 is overwritten by the network's excitatory population
rate (spikes -> 1 ms bins -> Hz -> 1/ms) before TVB computes the coupling, so the other regions
hear the spiking network through the connectome with their delays. Back the other way, the
rate of region 0's strongest neighbour in TVB (Hz) adds to the network's Poisson drive
(`E.rate_in`, `I.rate_in`, times `feedback_gain`; on top of 5 kHz per neuron at 0.2 mV, the
network fires at ~30 Hz). Both couplings have a 2 ms delay.

Records TVB's rates (Hz, every 1 ms) and the network's spikes. Needs `pip install
'polyscale[tvb]'`; runs on inproc, or with TVB in a worker of its own:

    polyscale run examples/tvb_spiking_region.py --out brain.h5 --transport zmq
"""
from pathlib import Path

import numpy as np

import polyscale as ps
from polyscale.adapters import Affine, SpikesToRate
from polyscale.adapters.tvb import TVBSimulator
from polyscale.solvers.mass import spherical_connectome
from polyscale.solvers.point import FixedIndegree, IafPscDelta, PointNetwork, Population, Projection

DT_MS = 0.1


def tvb_brain(n_regions: int = 20, coupling_a: float = 0.5, eta: float = -5.0, J: float = 15.0,
              speed_mm_per_ms: float = 3.0):
    """The TVB simulator of the brain, set up and not run (what TVBSimulator's builder returns).

    Plain tvb-library: the connectivity is polyscale's spherical_connectome handed to TVB as
    weights and tract lengths; the initial history is left to TVBSimulator (drawn from the
    run's seed in the model's state_variable_range, as TVB would)."""
    from tvb.datatypes import connectivity
    from tvb.simulator import coupling, integrators, models, simulator

    conn = spherical_connectome(n_regions, speed_mm_per_ms=speed_mm_per_ms)
    c = connectivity.Connectivity(weights=conn.weight_matrix(), tract_lengths=conn.length_matrix(),
                                  centres=conn.centre_array(),
                                  region_labels=np.array([f"r{i}" for i in range(n_regions)]),
                                  speed=np.array([speed_mm_per_ms]))
    model = models.MontbrioPazoRoxin(eta=np.array([eta]), J=np.array([J]))
    return simulator.Simulator(model=model, connectivity=c, coupling=coupling.Linear(a=np.array([coupling_a])),
                               integrator=integrators.HeunDeterministic(dt=DT_MS), monitors=(),
                               conduction_speed=speed_mm_per_ms)


def spiking_region(n_e: int = 400, n_i: int = 100, drive_hz: float = 5000.0) -> PointNetwork:
    """Brunel's network at a small scale: iaf_psc_delta, 10% connectivity, J 0.2 mV, g 5."""
    neuron = IafPscDelta(tau_m_ms=20.0, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=20.0, v_reset_mV=10.0,
                         t_ref_ms=2.0, v_init_mV=0.0)
    j = 0.2
    pops = tuple(Population(name=name, size=n, model=neuron, poisson_rate_hz=drive_hz, poisson_weight=j)
                 for name, n in (("E", n_e), ("I", n_i)))
    projs = tuple(Projection(source=src, target=tgt, rule=FixedIndegree(indegree=max(1, n // 10)),
                             weight=w, delay_ms=1.5)
                  for src, n, w in (("E", n_e, j), ("I", n_i, -5.0 * j)) for tgt in ("E", "I"))
    return PointNetwork(populations=pops, projections=projs, dt_ms=DT_MS)


def build(n_regions: int = 20, n_e: int = 400, n_i: int = 100, t_stop_ms: float = 1000.0,
          feedback_gain: float = 10.0, seed: int = 42) -> ps.Model:
    brain_builder = f"{Path(__file__).resolve()}:tvb_brain"
    conn = spherical_connectome(n_regions)
    neighbour = int(np.argmax(conn.weight_matrix()[:, 0]))     # the region region 0 drives most
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("brain", TVBSimulator(builder=brain_builder, params={"n_regions": n_regions},
                                       n_regions=n_regions, dt_ms=DT_MS,
                                       rates=(("r", 1000.0),), rates_units="Hz",
                                       initial_state=(0.01, -2.0),
                                       proxy_regions=(0,), proxy_variables=("r",)))
    model.solver("region0", spiking_region(n_e, n_i))
    # spiking network -> TVB: E population rate (Hz) in 1 ms bins, as TVB's r (1/ms)
    model.couple("region0.E.spikes", "brain.proxy_in", delay_ms=2.0,
                 via=[SpikesToRate(bin_ms=1.0), Affine(gain=1e-3, units="1/ms", produces="analog")])
    # TVB -> spiking network: the neighbour's rate adds to both populations' Poisson drive
    for pop in ("E", "I"):
        model.couple(f"brain.rates[{neighbour}]", f"region0.{pop}.rate_in", delay_ms=2.0,
                     weight=feedback_gain)
    model.record("brain.rates", every_ms=1.0)
    model.record("region0.E.spikes")
    return model


if __name__ == "__main__":
    run = ps.run(build(t_stop_ms=500.0), transport="zmq")
    r = run.signal("brain", "rates").data
    print("TVB rates (Hz), mean over time, first regions:", np.round(r.mean(axis=0)[:5], 2))
    print("spiking region: ", len(run.spikes("region0", "E").times), "E spikes")
