"""A population of ball-and-stick cells built and run in NEURON, driven by spikes from polyscale,
with the extracellular potential they make.

The cells are the reference ball-and-stick of ../shared/reference/cell (hh soma 20 x 20 um,
passive dendrite 500 x 2 um, nseg 101; Ra 100 ohm cm, cm 1 uF/cm2, 6.3 C), written in plain
NEURON Python in `ball_and_stick_cells` below: polyscale only names that function
(`NeuronCells(builder="examples/neuron_lfp.py:ball_and_stick_cells")`), and NEURON builds and
runs the cells in their own worker. The cells stand in a row along x, 40 um apart, apical
dendrites along +z; an Exp2Syn at dend(0.8) of each (tau 0.5 / 2 ms, e 0 mV) receives Poisson
spike trains (`SpikeTrain` drawn here with a seed) through a 1 ms coupling, 0.02 uS each.

Records the soma voltages and spikes, and the extracellular potential on a laminar electrode
beside the row (`ps.probes.LFP`: line sources in an infinite medium of 0.3 S/m, from NEURON's
i_membrane_ of every segment; the same probe reads polyscale's own cable solver). Run:

    polyscale run examples/neuron_lfp.py --out neuron_lfp.h5 --transport zmq
"""
from pathlib import Path

import numpy as np

import polyscale as ps

HERE = Path(__file__).resolve()


def ball_and_stick_cells(n: int = 1, dend_nseg: int = 101, spacing_um: float = 40.0,
                         hh_table: bool = True, iclamp: tuple | None = None,
                         alpha_onsets_ms: tuple = (), syn_x: float = 0.8) -> list:
    """``n`` ball-and-stick cells in NEURON, cell i at x = i * spacing_um (um).

    hh_table : NEURON's default 1 mV rate table for hh (False: exact rates, usetable_hh = 0,
        as polyscale's built-in solver evaluates them)
    iclamp : (delay_ms, dur_ms, amp_nA) of an IClamp at soma(0.5) of every cell, or None
    alpha_onsets_ms : AlphaSynapses at dend(0.8) (tau 2 ms, gmax 0.05 uS, e 0 mV) with these
        onsets (the drive of ../shared/reference/probes)
    Each cell has .soma, .dend and .syn (Exp2Syn at dend(syn_x), tau1 0.5, tau2 2 ms, e 0 mV).
    """
    from neuron import h
    h.usetable_hh = 1 if hh_table else 0

    class Cell:
        def __init__(self, i: int):
            x = i * spacing_um
            self.soma = h.Section(name=f"soma[{i}]")
            self.dend = h.Section(name=f"dend[{i}]")
            self.dend.connect(self.soma(1))
            self.soma.pt3dadd(x, 0, -10.0, 20.0)
            self.soma.pt3dadd(x, 0, 10.0, 20.0)
            self.dend.pt3dadd(x, 0, 10.0, 2.0)
            self.dend.pt3dadd(x, 0, 510.0, 2.0)
            self.dend.nseg = dend_nseg
            for sec in (self.soma, self.dend):
                sec.Ra, sec.cm = 100.0, 1.0
            self.soma.insert("hh")
            self.dend.insert("pas")
            for seg in self.dend:
                seg.pas.g, seg.pas.e = 0.001, -65.0
            self.syn = h.Exp2Syn(self.dend(syn_x))
            self.syn.tau1, self.syn.tau2, self.syn.e = 0.5, 2.0, 0.0
            self.stims = []
            if iclamp is not None:
                ic = h.IClamp(self.soma(0.5))
                ic.delay, ic.dur, ic.amp = iclamp
                self.stims.append(ic)
            for onset in alpha_onsets_ms:
                a = h.AlphaSynapse(self.dend(0.8))
                a.onset, a.tau, a.gmax, a.e = onset, 2.0, 0.05, 0.0
                self.stims.append(a)

    return [Cell(i) for i in range(n)]


def build(n_cells: int = 10, rate_hz: float = 40.0, t_stop_ms: float = 200.0, seed: int = 7) -> ps.Model:
    from polyscale.adapters.neuron import NeuronCells
    from polyscale.solvers.stimulus import SpikeTrain

    rng = np.random.default_rng(seed)
    times, ids = [], []
    for c in range(n_cells):   # a Poisson train per cell, on the 0.025 ms grid
        t = np.cumsum(rng.exponential(1000.0 / rate_hz, size=int(3 * rate_hz * t_stop_ms / 1000) + 10))
        t = np.round(t[t < t_stop_ms - 1.0] / 0.025) * 0.025
        times += t.tolist()
        ids += [c] * len(t)
    order = np.argsort(times, kind="stable")
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("input", SpikeTrain(times_ms=np.array(times)[order].round(6).tolist(),
                                     ids=np.array(ids)[order].tolist(), size=n_cells, dt_ms=0.025))
    model.solver("cells", NeuronCells(builder=f"{HERE}:ball_and_stick_cells", params={"n": n_cells},
                                      n=n_cells, synapses=("syn",), dt_ms=0.025, record_currents=True))
    model.couple("input.spikes", "cells.syn", delay_ms=1.0, weight=0.02)
    model.record("cells.v_soma")
    model.record("cells.spikes")
    # a laminar electrode 30 um beside the middle of the row, 50 um spacing from -100 to 600 um
    electrodes = [((n_cells - 1) * 20.0, 30.0, float(z)) for z in range(-100, 601, 50)]
    model.probe("lfp", ps.probes.LFP(of="cells", electrodes_um=electrodes, sigma_S_per_m=0.3))
    return model


if __name__ == "__main__":
    run = ps.run(build(), transport="zmq")
    lfp = run.probe("lfp").data
    print("spikes:", len(run.spikes("cells", "spikes").times),
          "| LFP peak-to-peak per contact (uV):", np.round(1e3 * np.ptp(lfp, axis=0), 1))
