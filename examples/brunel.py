"""Brunel (2000) sparse balanced network of LIF neurons with delta synapses (level II).

NEST's ``brunel_delta_nest.py`` (the parameters of ../shared/reference/point): N_E = 10000 and
N_I = 2500 neurons times ``scale``; every neuron gets exactly C_E = 0.1 N_E excitatory and
C_I = 0.1 N_I inhibitory synapses (fixed in-degree, autapses and multapses allowed), J = 0.1 mV,
inhibitory weight -g J with g = 5, delay D = 1.5 ms; iaf_psc_delta with tau_m 20 ms, C_m 1 pF,
E_L 0, theta 20 mV, V_reset 10 mV (Brunel's value), t_ref 2 ms, V(0) = 0; one Poisson
generator per neuron at eta * nu_th * C_E with eta = 2 (20 kHz through J). Note that C_E
scales with N, so the dynamics change with ``scale`` (84.6 Hz at 0.1, 37.7 Hz at 1 in NEST).
Spikes of all neurons are recorded under populations E and I.

    polyscale run examples/brunel.py --out brunel.h5
    polyscale run examples/brunel.py -p scale=0.1 -p t_stop_ms=500
"""
import polyscale as ps
from polyscale.solvers.point import FixedIndegree, IafPscDelta, PointNetwork, Population, Projection


def build(scale: float = 1.0, t_stop_ms: float = 1000.0, seed: int = 12345, g: float = 5.0,
          eta: float = 2.0, record: bool = True) -> ps.Model:
    n_e, n_i = int(round(10000 * scale)), int(round(2500 * scale))
    c_e, c_i = int(0.1 * n_e), int(0.1 * n_i)      # truncated, as NEST's example does
    j, delay, tau_m, theta = 0.1, 1.5, 20.0, 20.0
    nu_th = theta / (j * c_e * tau_m)          # 1/ms: the rate that brings the mean input to theta
    p_rate_hz = 1000.0 * eta * nu_th * c_e     # Hz, per neuron
    neuron = IafPscDelta(tau_m_ms=tau_m, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=theta, v_reset_mV=10.0,
                         t_ref_ms=2.0, v_init_mV=0.0)
    pops = tuple(Population(name=name, size=n, model=neuron, poisson_rate_hz=p_rate_hz,
                            poisson_weight=j) for name, n in (("E", n_e), ("I", n_i)))
    projs = tuple(Projection(source=src, target=tgt, rule=FixedIndegree(indegree=c), weight=w,
                             delay_ms=delay)
                  for src, c, w in (("E", c_e, j), ("I", c_i, -g * j)) for tgt in ("E", "I"))
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("net", PointNetwork(populations=pops, projections=projs, dt_ms=0.1))
    if record:
        model.record("net.E.spikes")
        model.record("net.I.spikes")
    return model
