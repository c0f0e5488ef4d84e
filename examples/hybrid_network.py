"""Detailed cells embedded in a point-neuron network (the hybrid pattern), spike for spike.

A sparse E/I network of ``n_e`` + ``n_i`` LIF neurons (NEST's iaf_psc_exp defaults, fixed
in-degree 10 %, 87.8 pA / -351 pA synapses, 1.5 ms delays, Poisson background ``background_hz``
at 87.8 pA) hosts ``n_cells`` detailed ball-and-stick cells (Hodgkin-Huxley soma, passive
500 um dendrite; the cell solver's reference geometry). Every cell receives the spikes of
``k_in`` excitatory network neurons, chosen at random once (seeded), on an Exp2Syn on its
dendrite (``w_syn_uS`` peak conductance each), and every cell's spikes reach ``k_out`` random
excitatory network neurons as 87.8 pA synapses. Spikes travel as spikes, with their exact
times and a 2 ms delay: ``ChannelMap`` copies each spike to the channels its 0/1 matrix names.

    polyscale run examples/hybrid_network.py --out hybrid.h5
    polyscale run examples/hybrid_network.py --out hybrid.h5 --transport zmq
"""
import numpy as np

import polyscale as ps
from polyscale.adapters import ChannelMap
from polyscale.solvers.cell import Exp2Syn, ball_and_stick_population
from polyscale.solvers.point import FixedIndegree, IafPscExp, PointNetwork, Population, Projection


def build(n_e: int = 400, n_i: int = 100, n_cells: int = 10, k_in: int = 20, k_out: int = 40,
          w_syn_uS: float = 0.002, background_hz: float = 2000.0, t_stop_ms: float = 1000.0,
          seed: int = 7) -> ps.Model:
    w = 87.8
    pops = tuple(Population(name=n, size=s, model=IafPscExp(), poisson_rate_hz=background_hz, poisson_weight=w)
                 for n, s in (("E", n_e), ("I", n_i)))
    projs = tuple(Projection(source=src, target=tgt, rule=FixedIndegree(indegree=max(1, size // 10)),
                             weight=w if src == "E" else -4.0 * w, delay_ms=1.5)
                  for src, size in (("E", n_e), ("I", n_i)) for tgt in ("E", "I"))
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("net", PointNetwork(populations=pops, projections=projs, dt_ms=0.1))
    model.solver("cells", ball_and_stick_population(n=n_cells, dend_nseg=21,
                                                    synapses=[Exp2Syn(section="dend", x=0.3)]))
    # the wiring is part of the model (data), drawn here from the run seed
    rng = np.random.default_rng([seed, 1])
    into = np.zeros((n_cells, n_e))                     # cell c <- k_in E neurons
    for c in range(n_cells):
        into[c, rng.choice(n_e, k_in, replace=False)] = 1.0
    out = np.zeros((n_e, n_cells))                      # cell c -> k_out E neurons
    for c in range(n_cells):
        out[rng.choice(n_e, k_out, replace=False), c] = 1.0
    model.couple("net.E.spikes", "cells.syn", delay_ms=2.0, weight=w_syn_uS, via=[ChannelMap(weights=into)])
    model.couple("cells.spikes", "net.E.spikes_in", delay_ms=2.0, weight=w, via=[ChannelMap(weights=out)])
    model.record("net.E.spikes")
    model.record("net.I.spikes")
    model.record("cells.spikes")
    model.record("cells.v_soma", every_ms=0.5)
    return model


if __name__ == "__main__":
    run = ps.run(build())
    print(run.summary())
