"""One Jansen-Rit cortical column with TVB's default parameters: the level III reference case.

Jansen & Rit (1995) as parameterised in TVB (A 3.25 mV, B 22 mV, a 0.1 /ms, b 0.05 /ms, ...,
mu 0.22 /ms), Heun's scheme at dt 0.1 ms from all-zero state; its six state variables y0..y5
are recorded as signal `state` (y1 - y2 is the pyramidal potential, the EEG source). The
trajectory is TVB's to the last bit (tests/test_mass_network.py) and settles on a 6.8 Hz
limit cycle.

    polyscale run examples/jansen_rit.py --out jansen_rit.h5
    polyscale run examples/jansen_rit.py -p t_stop_ms=2000 -p mu=0.1
"""
import polyscale as ps
from polyscale.solvers.mass import JansenRit, RegionNetwork


def build(t_stop_ms: float = 5000.0, mu: float = 0.22, seed: int = 0) -> ps.Model:
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("jr", RegionNetwork(model=JansenRit(mu=mu), integrator="heun", dt_ms=0.1))
    model.record("jr.state")      # y0..y5, every 0.1 ms
    model.record("jr.rate")       # pyramidal firing rate, Hz
    return model
