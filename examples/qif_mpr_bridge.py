"""A spiking population replacing one node of a neural-mass network: QIF neurons and their exact
mean field (Montbrió, Pazó & Roxin 2015, Phys Rev X 5:021028), the level II <-> III bridge.

Two Montbrió-Pazó-Roxin masses (eta -5, Delta 1, J 15, tau 10 ms, the paper's Fig. 2) excite each
other (Linear coupling, weight 100 on r in 1/ms, 2 ms connectome delay). Node 1 is a proxy: its
rate comes from ``n`` quadratic integrate-and-fire neurons (polyscale's PointNetwork, etas at the
Lorentzian's quantiles, all-to-all J / n), whose spikes are counted in 0.1 ms bins and handed
to the mass as r (1/ms); the mass's coupling input for node 1 drives the neurons' current_in.
Each coupling adds 0.5 ms. With ``replace=False`` the same network is all mass (connectome
delay 2.5 ms, so that the two runs are the same model): compare the two run files' rates.

    polyscale run examples/qif_mpr_bridge.py --out bridge.h5
"""
import numpy as np

import polyscale as ps
from polyscale.adapters import Affine, SpikesToRate
from polyscale.solvers.mass import RegionNetwork
from polyscale.solvers.mass.connectome import Connectome
from polyscale.solvers.mass.models import MontbrioPazoRoxin
from polyscale.solvers.point import QIF, AllToAll, PointNetwork, Population, Projection

TAU_MS, ETA, DELTA, J = 10.0, -5.0, 1.0, 15.0
DT_MS = 0.01
COUPLING_DELAY_MS = 0.5


def masses(weight: float, delay_ms: float, replaced=()) -> RegionNetwork:
    conn = Connectome(weights=((0.0, weight), (weight, 0.0)), speed_mm_per_ms=3.0,
                      tract_lengths_mm=((0.0, 3.0 * delay_ms), (3.0 * delay_ms, 0.0)))
    return RegionNetwork(model=MontbrioPazoRoxin(tau=TAU_MS, eta=ETA, Delta=DELTA, J=J), connectome=conn,
                         dt_ms=DT_MS, initial_state=((0.0, 0.0), (-2.0, -1.0)), replaced=replaced)


def qif_population(n: int) -> PointNetwork:
    pop = Population(name="P", size=n, model=QIF(tau_m_ms=TAU_MS, eta_bar=ETA, delta=DELTA), v_init_mV=-1.0)
    return PointNetwork(populations=(pop,), dt_ms=DT_MS,
                        projections=(Projection(source="P", target="P", rule=AllToAll(), weight=J / n,
                                                delay_ms=DT_MS, dense=True),))


def build(n: int = 10000, weight: float = 100.0, delay_ms: float = 2.0, t_stop_ms: float = 200.0,
          replace: bool = True, seed: int = 3) -> ps.Model:
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    if not replace:
        model.solver("mass", masses(weight, delay_ms + COUPLING_DELAY_MS))
        model.record("mass.rate", every_ms=0.5)
        return model
    model.solver("mass", masses(weight, delay_ms, replaced=(1,)))
    model.solver("qif", qif_population(n))
    model.couple("mass.coupling[1]", "qif.P.current_in", delay_ms=COUPLING_DELAY_MS)
    model.couple("qif.P.spikes", "mass.replaced", delay_ms=COUPLING_DELAY_MS,
                 via=[SpikesToRate(bin_ms=0.1), Affine(gain=1e-3, units="1/ms", produces="analog")])
    model.record("mass.rate", every_ms=0.5)
    model.record("qif.P.spikes")
    return model


if __name__ == "__main__":
    n = 10000
    hybrid, pure = ps.run(build(n=n)), ps.run(build(replace=False))
    r_pure = pure.signal("mass", "rate").data
    r_hyb = hybrid.signal("mass", "rate").data
    t = np.asarray(hybrid.spikes("qif", "P").times)
    r_qif = np.bincount((t / 0.5).astype(int), minlength=r_pure.shape[0])[:r_pure.shape[0]] / n / 0.5e-3
    half = r_pure.shape[0] // 2
    print(f"node 0 (mass):      all-mass {r_pure[half:, 0].mean():.2f} Hz, with QIF node {r_hyb[half:, 0].mean():.2f} Hz")
    print(f"node 1 (QIF / mass): all-mass {r_pure[half:, 1].mean():.2f} Hz, QIF network {r_qif[half:].mean():.2f} Hz")
