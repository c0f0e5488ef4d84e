"""Two kinds of detailed cells in one solver, driven by Poisson input, seen by a laminar electrode.

'stick': ball-and-stick cells (hh soma, passive 500 um dendrite) with an excitatory Exp2Syn on
the dendrite; 'fork': cells with an active apical trunk (hh) forking into two passive tufts,
with an excitatory synapse on each tuft. Both groups live in one ``CellGroups`` solver, each
group solved vectorised across its cells; a Poisson rate drives every synapse (drawn from each
group's own seeded stream) and an LFP electrode along z sums the transmembrane currents of all
cells. Records spikes and soma voltages (channels: the 'stick' cells, then the 'fork' cells).

    polyscale run examples/mixed_cells.py --out mixed_cells.h5
"""
import numpy as np

import polyscale as ps
from polyscale.adapters import Affine
from polyscale.probes import LFP
from polyscale.solvers.cell import (CellGroups, CellPopulation, Exp2Syn, Insert, Morphology,
                                    ball_and_stick_population, cylinder)


def fork_cells(n: int, positions_um) -> CellPopulation:
    morph = Morphology(sections=(
        cylinder("soma", 20.0, 20.0, kind="soma", nseg=1),
        cylinder("apical", 300.0, 3.0, parent="soma", start=(0.0, 0.0, 20.0), nseg=15),
        cylinder("tuft0", 150.0, 1.5, parent="apical", start=(0.0, 0.0, 320.0), direction=(1.0, 0.0, 1.0), nseg=9),
        cylinder("tuft1", 150.0, 1.5, parent="apical", start=(0.0, 0.0, 320.0), direction=(-1.0, 0.0, 1.0), nseg=9)))
    return CellPopulation(
        morphology=morph, n=n, positions_um=positions_um, record_currents=True,
        mechanisms=(Insert(mechanism="hh", where="soma"), Insert(mechanism="hh", where="apical"),
                    Insert(mechanism="pas", where="tuft0", params={"g_S_cm2": 0.0005, "e_mV": -65.0}),
                    Insert(mechanism="pas", where="tuft1", params={"g_S_cm2": 0.0005, "e_mV": -65.0})),
        synapses=(Exp2Syn(section="tuft0", x=0.5, tau1_ms=0.5, tau2_ms=2.0, e_mV=0.0),
                  Exp2Syn(section="tuft1", x=0.5, tau1_ms=0.5, tau2_ms=2.0, e_mV=0.0)),
        rate_weight_uS=0.004)


def build(n_stick: int = 20, n_fork: int = 10, rate_Hz: float = 400.0, t_stop_ms: float = 200.0,
          seed: int = 1) -> ps.Model:
    rng = np.random.default_rng(seed)           # placement only; the run's noise comes from `seed`
    stick_pos = tuple(map(tuple, np.c_[rng.uniform(-100, 100, (n_stick, 2)), np.zeros(n_stick)]))
    fork_pos = tuple(map(tuple, np.c_[rng.uniform(-100, 100, (n_fork, 2)), np.zeros(n_fork)]))
    stick = ball_and_stick_population(n=n_stick, dend_nseg=49, positions_um=stick_pos, record_currents=True,
                                      synapses=(Exp2Syn(section="dend", x=0.3, tau1_ms=0.5, tau2_ms=2.0, e_mV=0.0),))
    cells = CellGroups(groups={"stick": stick.replace(rate_weight_uS=0.004), "fork": fork_cells(n_fork, fork_pos)})
    n_syn = cells.n_syn_channels
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms, window_ms=1.0)
    # a constant rate on every synapse: a linear system at rest at x0 = rate_Hz (dx/dt = 0)
    model.solver("drive", ps.solvers.LinearSystem(a=np.zeros((n_syn, n_syn)).tolist(), x0=[rate_Hz] * n_syn,
                                                  units="Hz", dt_ms=0.025))
    model.couple("drive.x", "cells.rate", delay_ms=1.0, via=Affine(produces="rate"))
    model.solver("cells", cells)
    model.probe("lfp", LFP(of="cells", electrodes_um=[(0.0, 150.0, z) for z in (-100.0, 0.0, 200.0, 400.0)],
                           every_ms=0.5))
    model.record("cells.spikes")
    model.record("cells.v_soma", every_ms=0.5)
    return model


if __name__ == "__main__":
    run = ps.run(build())
    sp = run.spikes("cells", "spikes")
    print(f"{len(sp.times)} spikes; LFP range {np.ptp(run.probe('lfp').data, axis=0)} mV")
