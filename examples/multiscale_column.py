"""A cortical column in a whole brain, every level at once (after Einevoll et al. 2019, Fig. 2).

Three solvers, one per level, in one head coordinate system (um, origin at the head centre):

* **level III, "brain"**: ``n_regions`` Jansen-Rit masses (TVB's defaults) on a licence-free
  connectome (``spherical_connectome``: regions on a 70 mm sphere, exponential distance rule,
  delays at 3 mm/ms), TVB's SigmoidalJansenRit coupling, Heun at 0.1 ms. Region 0, at the top
  of the sphere, is *replaced* by the column: its activity is the column's, not a mass's.
* **level II, "column"**: the column's layer 2/3 and layer 4 populations (excitatory and
  inhibitory, NEST's iaf_psc_exp defaults), ``scale`` x (400, 100, 400, 100) neurons, fixed
  in-degree 10 % of each source, 87.8 pA / -4 x 87.8 pA synapses (Potjans & Diesmann's weights),
  1.5 ms delays, Poisson background (``background_hz`` at 87.8 pA: a mean input just under
  threshold, so the network fires irregularly at a few Hz); microcircuit-like, not the full
  microcircuit (examples/microcircuit.py is that).
* **level I, "l5"**: ``scale`` x 20 layer-5 pyramidal cells as detailed cells: Hodgkin-Huxley
  soma, a 1000 um passive apical dendrite (a ball-and-stick; the cell solver's
  reference geometry made longer), somata 1200 um under the pial surface spread on a 200 um
  disc, one basal-proximal synapse (from L4E) and one apical-tuft synapse (from L2/3E) per cell.

The column's axis is the head's z axis; its pial surface lies at z = 78.8 mm, inside the brain
sphere of the four-sphere head (radius 79 mm).

Couplings (all through translators on the destination side, 2 ms delays):

* a whisker-like stimulus: a thalamic volley (``n_thalamic`` spikes in 10 ms at ``stim_ms``)
  smoothed to a population rate drives L4's Poisson input;
* L4E and L2/3E population rates (exponentially smoothed, 5 ms) drive the L5 cells' basal and
  apical synapses as Poisson input (rate x in-degree ``k_l5``);
* L5 spikes feed back onto L2/3I as a rate;
* the column's L2/3E rate stands in for region 0's Jansen-Rit activity (1 mV per Hz: the
  translator's assumption, documented, not a fitted map), and region 0's coupling input from
  the rest of the brain adds to L2/3E's and L4E's background (``brain_gain_hz`` Hz per unit).

Probes: spikes of every population; a 16-contact laminar LFP (100 um pitch) and its CSD, from
the L5 cells (line sources) and the point network (kernel method, Hagen et al. 2022); a 3 x 3
ECoG grid on the pial surface; EEG (four-sphere head, 10 scalp electrodes) and MEG (Sarvas,
radial magnetometers at 100 mm) summed over all three levels (region dipoles from y1 - y2 with
a gain of 1e6 nA um per mV, region 0 excluded: the column stands for it); VSDI of the column's
surface; two-photon calcium imaging (GCaMP6f, 30 Hz) of 50 L2/3E neurons (all, if fewer); BOLD of every region
(Balloon-Windkessel, Stephan et al. 2007, TR ``tr_ms``).

    polyscale run examples/multiscale_column.py --out column.h5 && polyscale plot column.h5 --out column.png
    polyscale run examples/multiscale_column.py -p scale=2 -p t_stop_ms=4000 --transport zmq --out big.h5
"""
import numpy as np

import polyscale as ps
from polyscale.adapters import Affine, ChannelMap, SmoothedRate, SpikesToRate
from polyscale.probes import (BOLD, CSD, EEG, LFP, MEG, VSDI, Calcium, ECoG, KernelCell, KernelMethod,
                              RegionDipoles, VsdiSource)
from polyscale.solvers import SpikeTrain
from polyscale.solvers.cell import CellPopulation, Exp2Syn, Insert
from polyscale.solvers.cell.morphology import ball_and_stick
from polyscale.solvers.mass import JansenRit, RegionNetwork, SigmoidalJansenRit, spherical_connectome
from polyscale.solvers.point import FixedIndegree, IafPscExp, PointNetwork, Population, Projection

SURFACE_UM = 78800.0          # pial surface of the column (head frame, z axis)
DELAY_MS = 2.0                # every coupling between solvers
POPS = (("L23E", 400, 300.0), ("L23I", 100, 300.0), ("L4E", 400, 700.0), ("L4I", 100, 700.0))  # name, size at scale 1, soma depth (um)


def column_network(scale: float, background_hz: float) -> PointNetwork:
    neuron = IafPscExp()
    w = 87.8                                                   # pA, Potjans & Diesmann
    pops = tuple(Population(name=n, size=max(2, int(round(s * scale))), model=neuron,
                            poisson_rate_hz=background_hz, poisson_weight=w) for n, s, _ in POPS)
    sizes = {p.name: p.size for p in pops}
    projs = tuple(Projection(source=src, target=tgt, rule=FixedIndegree(indegree=max(1, sizes[src] // 10)),
                             weight=w if src.endswith("E") else -4.0 * w, delay_ms=1.5)
                  for src in sizes for tgt in sizes)
    return PointNetwork(populations=pops, projections=projs, dt_ms=0.1)


def l5_cells(n: int, seed: int) -> CellPopulation:
    rng = np.random.default_rng(seed)
    r = 200.0 * np.sqrt(rng.uniform(size=n))
    phi = rng.uniform(0, 2 * np.pi, size=n)
    pos = np.column_stack([r * np.cos(phi), r * np.sin(phi), np.full(n, SURFACE_UM - 1200.0)])
    return CellPopulation(
        morphology=ball_and_stick(dend_L_um=1000.0, dend_nseg=41), n=n, positions_um=pos,
        mechanisms=(Insert(mechanism="hh", where="soma"),
                    Insert(mechanism="pas", where="dend", params={"g_S_cm2": 0.0001, "e_mV": -65.0})),
        synapses=(Exp2Syn(section="dend", x=0.1, tau1_ms=0.5, tau2_ms=2.0),     # basal/proximal: L4E
                  Exp2Syn(section="dend", x=0.95, tau1_ms=0.5, tau2_ms=2.0)),   # apical tuft: L2/3E
        rate_weight_uS=0.004, record_currents=True, dt_ms=0.025)


def build(scale: float = 1.0, t_stop_ms: float = 2000.0, n_regions: int = 76, seed: int = 2019,
          stim_ms: float = 500.0, n_thalamic: int = 40, background_hz: float = 2000.0,
          k_l5: float = 10.0, brain_gain_hz: float = 2e4, tr_ms: float = 500.0) -> ps.Model:
    conn = spherical_connectome(n_regions)
    n_l5 = max(1, int(round(20 * scale)))
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("brain", RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(),
                                        integrator="heun", dt_ms=0.1, replaced=(0,)))
    column = column_network(scale, background_hz)
    model.solver("column", column)
    model.solver("l5", l5_cells(n_l5, seed))
    volley = np.random.default_rng(seed).uniform(stim_ms, stim_ms + 10.0, n_thalamic)
    model.solver("thalamus", SpikeTrain(times_ms=np.round(np.sort(volley), 3), ids=np.arange(n_thalamic),
                                        size=n_thalamic, dt_ms=0.1))

    # stimulus -> L4 (the thalamic population rate, x 100 afferents, added to L4's background)
    for pop in ("L4E", "L4I"):
        model.couple("thalamus.spikes", f"column.{pop}.rate_in", delay_ms=DELAY_MS, weight=100.0,
                     via=[SmoothedRate(kernel="exponential", tau_ms=2.0, period_ms=0.1)])
    # L4E -> basal, L2/3E -> apical synapses of L5 (Poisson, k_l5 presynaptic cells each)
    for j, pop in enumerate(("L4E", "L23E")):
        pick = np.zeros((2 * n_l5, 1))
        pick[j::2] = k_l5
        model.couple(f"column.{pop}.spikes", "l5.rate", delay_ms=DELAY_MS,
                     via=[SmoothedRate(kernel="exponential", tau_ms=5.0, period_ms=0.025),
                          ChannelMap(weights=pick)])
    # L5 -> L2/3I
    model.couple("l5.spikes", "column.L23I.rate_in", delay_ms=DELAY_MS, weight=20.0,
                 via=[SmoothedRate(kernel="exponential", tau_ms=5.0, period_ms=0.1)])
    # column <-> brain
    model.couple("column.L23E.spikes", "brain.replaced", delay_ms=DELAY_MS,
                 via=[SpikesToRate(bin_ms=0.1), Affine(gain=1.0, units="mV", produces="analog")])
    for pop in ("L23E", "L4E"):
        model.couple("brain.coupling[0]", f"column.{pop}.rate_in", delay_ms=DELAY_MS,
                     via=[Affine(gain=brain_gain_hz, units="Hz", produces="rate")])

    for pop, _, _ in POPS:
        model.record(f"column.{pop}.spikes")
    model.record("l5.spikes")
    model.record("l5.v_soma", every_ms=0.5)
    model.record("brain.activity", every_ms=1.0)

    kernels = KernelMethod(cells={name: KernelCell(center_um=(0.0, 0.0, SURFACE_UM - depth), radius_um=200.0,
                                                   n_positions=16)
                                  for name, _, depth in POPS if name.endswith("E")}, duration_ms=50.0)
    contacts = np.column_stack([np.zeros(16), np.zeros(16), SURFACE_UM - 100.0 * np.arange(16)])
    col = {"column": kernels}
    model.probe("lfp", LFP(of=("l5", "column"), electrodes_um=contacts, every_ms=0.5, sources=col))
    model.probe("csd", CSD(of=("l5", "column"), contacts_um=contacts, every_ms=0.5, sources=col))
    gx, gy = np.meshgrid([-500.0, 0.0, 500.0], [-500.0, 0.0, 500.0])
    grid = np.column_stack([gx.ravel(), gy.ravel(), np.full(9, SURFACE_UM)])
    model.probe("ecog", ECoG(of=("l5", "column"), electrodes_um=grid, plane_point_um=(0.0, 0.0, SURFACE_UM),
                             every_ms=0.5, sources=col))
    gain = np.full(n_regions, 1e6)
    gain[0] = 0.0                                      # the column stands for region 0
    heads = {"column": kernels, "brain": RegionDipoles(gain_nA_um_per_mV=gain)}
    theta = np.radians([0, 15, 30, 45, 60, 90, 120, 150, 90, 90])
    phi = np.radians([0, 0, 0, 0, 0, 0, 0, 0, 90, 270])
    unit = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    model.probe("eeg", EEG(of=("l5", "column", "brain"), electrodes_um=90000.0 * unit, every_ms=1.0,
                           sources=heads))
    model.probe("meg", MEG(of=("l5", "column", "brain"), sensors_um=100000.0 * unit, every_ms=1.0,
                           sources=heads))
    model.probe("vsdi", VSDI(sources={"l5": VsdiSource(), "column": VsdiSource(positions_um=[(0.0, 0.0, SURFACE_UM - d) for _, _, d in POPS])}, pixels=(16, 16),
                             pixel_um=50.0, surface_z_um=SURFACE_UM, every_ms=2.0))
    n_imaged = min(50, column.populations[0].size)
    model.probe("calcium", Calcium(spikes=(f"column.L23E.spikes[0:{n_imaged}]",), indicator="GCaMP6f", frame_rate_hz=30.0))
    model.probe("bold", BOLD(inputs=("brain.activity",), efficacy=0.05, tr_ms=tr_ms))
    return model


if __name__ == "__main__":
    run = ps.run(build(scale=0.5, t_stop_ms=1000.0), out="column.h5", force=True)
    print(run.summary())
