"""A handful of layer-5 pyramidal-like cells with Hay et al. (2011)-style channels, driven by
Poisson synapses, seen by a laminar extracellular electrode.

Each cell: a soma (20 x 20 um), two basal dendrites, an apical trunk (800 um) splitting into a
two-branch tuft, and a short axon. Channels after Hay et al. (2011, PLoS Comput Biol
7:e1002107, L5PCbiophys3.hoc; mechanism files in polyscale/solvers/cell/mech/): NaTa_t,
SKv3_1, K_Pst, K_Tst, Nap_Et2, SK_E2, Ca_HVA, Ca_LVAst and CaDynamics_E2 at the soma; Ih
everywhere, growing with path distance d along the apical dendrite as gIhbar (-0.8696 + 2.087
exp(d / 323 um)); a Ca_LVAst / Ca_HVA hot zone 685-885 um from the soma; Im, NaTa_t, SKv3_1 and
SK_E2 on the apical tree; a passive leak everywhere (e -90 mV), 34 C. The sections' ion
reversal potentials are Hay's, ek -85 mV and ena 50 mV, read by every K and Na channel there
(``Ions``, as NEURON's ``sec.ek``).
The somatic Ih density differs from cell to cell (+-20 %, a per-cell parameter).

The cells stand in a column (somata within 100 um of its axis, at depths 0-200 um, apical
dendrites up along +z) each turned by a random angle about the column axis. Each cell has AMPA
and NMDA synapses on its basal and tuft dendrites and a GABA-A synapse at the soma, each
driven through the cells' ``rate`` port: a constant rate per synapse (a LinearSystem at rest,
``x0`` = the rates) from which the cell solver draws Poisson events every step from the run's
seeded stream, each of peak conductance ``rate_weight_uS``. A 16-contact electrode along the column
axis, 50 um apart from -200 to 1300 um, records the LFP (line sources, 0.3 S/m).

    polyscale run examples/l5_cells.py --out l5.h5
"""
from __future__ import annotations

import numpy as np

import polyscale as ps
from polyscale.adapters import Affine
from polyscale.solvers.cell.mechanisms import AMPA, GABAA, NMDA, Distance, Insert, Ions
from polyscale.solvers.cell.morphology import Morphology, cylinder
from polyscale.solvers.cell.population import CellPopulation

EK, ENA = -85.0, 50.0
#: synapses of each cell (the `rate` port's channel = cell * len(SYNAPSES) + index) and the
#: Poisson rate (Hz) each receives: one synapse stands for many afferents
SYNAPSES = (AMPA(section="basal0", x=0.6), AMPA(section="basal1", x=0.6),
            NMDA(section="basal0", x=0.6), AMPA(section="tuft0", x=0.5), AMPA(section="tuft1", x=0.5),
            NMDA(section="tuft0", x=0.5), GABAA(section="soma", x=0.5))
RATES_HZ = (400.0, 400.0, 100.0, 400.0, 400.0, 100.0, 400.0)
WEIGHT_US = 0.0015      # peak conductance of one event (every synapse type)


def l5_morphology() -> Morphology:
    """Soma, two basal dendrites, an 800 um apical trunk, a two-branch tuft and an axon (um)."""
    s = cylinder("soma", 20.0, 20.0, kind="soma", start=(0.0, 0.0, -10.0))
    secs = [s,
            cylinder("basal0", 200.0, 1.5, kind="dend", start=(0.0, 0.0, -10.0), direction=(1.0, 0.0, -1.0),
                     parent="soma", parent_x=0.0, nseg=5),
            cylinder("basal1", 200.0, 1.5, kind="dend", start=(0.0, 0.0, -10.0), direction=(-1.0, 0.0, -1.0),
                     parent="soma", parent_x=0.0, nseg=5),
            cylinder("trunk", 800.0, 3.0, kind="apic", start=(0.0, 0.0, 10.0), parent="soma", nseg=21),
            cylinder("tuft0", 300.0, 1.5, kind="apic", start=(0.0, 0.0, 810.0), direction=(1.0, 0.0, 1.5),
                     parent="trunk", nseg=7),
            cylinder("tuft1", 300.0, 1.5, kind="apic", start=(0.0, 0.0, 810.0), direction=(-1.0, 0.0, 1.5),
                     parent="trunk", nseg=7),
            cylinder("axon", 200.0, 1.0, kind="axon", start=(0.0, 0.0, -10.0), direction=(0.0, 0.0, -1.0),
                     parent="soma", parent_x=0.0, nseg=5)]
    return Morphology(sections=tuple(secs))


def l5_mechanisms(ih_soma_S_cm2) -> tuple:
    """Hay et al. (2011)-style placements; ``ih_soma_S_cm2``: one value or one per cell."""
    return (
        Insert(mechanism="pas", params={"g_S_cm2": 3.38e-5, "e_mV": -90.0}),
        Insert(mechanism="pas", where="apic", params={"g_S_cm2": 5.89e-5, "e_mV": -90.0}),
        Insert(mechanism="Ih", where="soma", params={"gIhbar_S_cm2": ih_soma_S_cm2}),
        Insert(mechanism="Ih", where="dend", params={"gIhbar_S_cm2": 2e-4}),
        Insert(mechanism="Ih", where="apic", params={"gIhbar_S_cm2": 2e-4},
               distribution=Distance(param="gIhbar_S_cm2", kind="exp", a=-0.8696, b=2.087, length_um=323.0)),
        Insert(mechanism="NaTa_t", where="soma", params={"gNaTa_tbar_S_cm2": 2.04}),
        Insert(mechanism="NaTa_t", where="axon", params={"gNaTa_tbar_S_cm2": 3.137}),
        Insert(mechanism="NaTa_t", where="apic", params={"gNaTa_tbar_S_cm2": 0.0213}),
        Insert(mechanism="Nap_Et2", where="soma", params={"gNap_Et2bar_S_cm2": 0.00172}),
        Insert(mechanism="SKv3_1", where="soma", params={"gSKv3_1bar_S_cm2": 0.693}),
        Insert(mechanism="SKv3_1", where="axon", params={"gSKv3_1bar_S_cm2": 1.0}),
        Insert(mechanism="SKv3_1", where="apic", params={"gSKv3_1bar_S_cm2": 0.00261}),
        Insert(mechanism="K_Pst", where="soma", params={"gK_Pstbar_S_cm2": 0.00223}),
        Insert(mechanism="K_Pst", where="axon", params={"gK_Pstbar_S_cm2": 0.973}),
        Insert(mechanism="K_Tst", where="soma", params={"gK_Tstbar_S_cm2": 0.0812}),
        Insert(mechanism="K_Tst", where="axon", params={"gK_Tstbar_S_cm2": 0.089}),
        Insert(mechanism="Im", where="apic", params={"gImbar_S_cm2": 1.43e-4}),
        Insert(mechanism="SK_E2", where="soma", params={"gSK_E2bar_S_cm2": 0.0441}),
        Insert(mechanism="SK_E2", where="apic", params={"gSK_E2bar_S_cm2": 0.0012}),
        Insert(mechanism="Ca_HVA", where="soma", params={"gCa_HVAbar_S_cm2": 9.92e-4}),
        Insert(mechanism="Ca_LVAst", where="soma", params={"gCa_LVAstbar_S_cm2": 3.43e-3}),
        # the hot zone: the value given is the zone's; 10 % (HVA) and 1 % (LVA) elsewhere
        Insert(mechanism="Ca_HVA", where="apic", params={"gCa_HVAbar_S_cm2": 5.55e-4},
               distribution=Distance(param="gCa_HVAbar_S_cm2", kind="window", a=0.1, b=1.0, lo_um=685.0, hi_um=885.0)),
        Insert(mechanism="Ca_LVAst", where="apic", params={"gCa_LVAstbar_S_cm2": 0.0187},
               distribution=Distance(param="gCa_LVAstbar_S_cm2", kind="window", a=0.01, b=1.0, lo_um=685.0, hi_um=885.0)),
        Insert(mechanism="CaDynamics_E2", where="soma", params={"decay_ms": 460.0, "gamma": 5.01e-4}),
        Insert(mechanism="CaDynamics_E2", where="apic", params={"decay_ms": 122.0, "gamma": 5.09e-4}),
    )


#: Hay's ion reversal potentials (L5PCbiophys3.hoc: ek -85 mV, ena 50 mV on every section
#: with K or Na channels; here on all, which is the same)
IONS = (Ions(params={"ek_mV": EK, "ena_mV": ENA}),)


def build(n_cells: int = 5, t_stop_ms: float = 500.0, seed: int = 11, dt_ms: float = 0.025) -> ps.Model:
    rng = np.random.default_rng(seed)
    r = 100.0 * np.sqrt(rng.uniform(0.0, 1.0, n_cells))
    phi = rng.uniform(0.0, 2.0 * np.pi, n_cells)
    positions = np.column_stack([r * np.cos(phi), r * np.sin(phi), rng.uniform(0.0, 200.0, n_cells)])
    rotations = np.column_stack([np.zeros(n_cells), np.zeros(n_cells), rng.uniform(0.0, 360.0, n_cells)])
    ih = tuple(2e-4 * rng.uniform(0.8, 1.2, n_cells))
    cells = CellPopulation(morphology=l5_morphology(), n=n_cells, positions_um=positions.tolist(),
                           rotations_deg=rotations.tolist(), mechanisms=l5_mechanisms(ih if n_cells > 1 else ih[0]),
                           ions=IONS, synapses=SYNAPSES, celsius=34.0, v_init_mV=-80.0, ra_ohm_cm=100.0,
                           cm_uF_cm2=1.0, dt_ms=dt_ms, record_currents=True, rate_weight_uS=WEIGHT_US)
    n_ch = n_cells * len(SYNAPSES)
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    # a constant rate per synapse channel: a linear system at rest at x0 (dx/dt = 0); the
    # cells draw the Poisson events from it (the `rate` port) with the run's seeded stream
    model.solver("drive", ps.solvers.LinearSystem(a=np.zeros((n_ch, n_ch)).tolist(), x0=list(RATES_HZ) * n_cells,
                                                  units="Hz", dt_ms=dt_ms))
    model.solver("cells", cells)
    model.couple("drive.x", "cells.rate", delay_ms=1.0, via=Affine(produces="rate"))
    model.record("cells.v_soma", every_ms=0.1)
    model.record("cells.spikes")
    electrodes = [(0.0, 0.0, float(z)) for z in range(-200, 1301, 100)]
    model.probe("lfp", ps.probes.LFP(of="cells", electrodes_um=electrodes, sigma_S_per_m=0.3, every_ms=0.5))
    return model


if __name__ == "__main__":
    run = ps.run(build())
    sp = run.spikes("cells", "spikes")
    lfp = run.probe("lfp").data
    print(f"{len(sp.times)} spikes from 5 cells in 500 ms "
          f"({len(sp.times) / 5 / 0.5:.1f} Hz per cell); LFP peak-to-peak per contact (uV):",
          np.round(1e3 * np.ptp(lfp, axis=0), 2))
