"""Potjans & Diesmann (2014) cortical microcircuit: 8 populations (L2/3, L4, L5, L6; E and I) of
iaf_psc_exp neurons under 1 mm^2 of cortex, Poisson background, as the microcircuit-PD14 model
(INM-6, PyPI ``microcircuit`` 1.0, which NEST's example became) builds it.

Parameters (the package's defaults, bg_input_type 'poisson'): neurons N = 20683, 5834, 21915,
5479, 4850, 1065, 14395, 2948 at full scale; connection probabilities C (target x source) of
the paper's Table 5 turned into total synapse numbers K = log(1 - C) / log(1 - 1/(N_pre N_post)),
drawn as NEST's fixed_total_number (multapses and autapses allowed); PSP 0.15 mV (0.30 mV for
L4E -> L2/3E), g = -4, as PSC amplitudes through the iaf_psc_exp kernel (C_m 250 pF, tau_m 10 ms,
tau_syn 0.5 ms), weights Normal with 10% CV redrawn within their sign; delays Normal(1.5, 0.75)
ms (E) and (0.75, 0.375) ms (I) redrawn above half a step; E_L = V_reset = -65 mV, V_th = -50 mV,
t_ref 2 ms; initial V Normal with the package's population-specific ('optimized') means and
SDs; background: K_ext = 1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100 Poisson inputs at 8 Hz
per neuron (one Poisson drive per neuron at K_ext x 8 Hz). dt 0.1 ms.

Scaling (the package's): N x ``scale``, synapse numbers x scale x ``k_scale`` (in-degrees x
k_scale, default = scale), background in-degree x k_scale; with k_scale < 1 weights grow by
1 / sqrt(k_scale) and a DC current makes up the lost mean input from the full-scale rates
(0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829 Hz).

Measured (rates over 500..1500 ms): at full scale (seed 55; 299 M synapses, 6 GB peak)
0.893, 2.965, 4.392, 5.874, 7.642, 8.640, 1.126, 7.829 Hz, within 2% of the package's full-scale
NEST rates above and within 4% of the published excitatory ones (0.86, 4.45, 7.59, 1.09 Hz); at
scale 0.1, see tests/test_point_microcircuit.py.

    polyscale run examples/microcircuit.py --out pd14.h5 --set scale=0.1
"""
import math

import numpy as np

import polyscale as ps
from polyscale.solvers.point import FixedTotalNumber, IafPscExp, Normal, PointNetwork, Population, Projection

POPS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
N_FULL = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
#: connection probabilities, rows: target, columns: source (Potjans & Diesmann 2014, Table 5)
CONN_PROBS = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443]])
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
FULL_MEAN_RATES_HZ = np.array([0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829])
V0_MEAN_MV = (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43)
V0_STD_MV = (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48)
PSP_MV, G, BG_RATE_HZ = 0.15, -4.0, 8.0
C_M, TAU_M, TAU_SYN = 250.0, 10.0, 0.5
DELAY_MS = (1.5, 0.75)          # mean delay of E and I sources
DELAY_CV, WEIGHT_CV = 0.5, 0.1
DT_MS = 0.1


def psc_over_psp(c_m=C_M, tau_m=TAU_M, tau_syn=TAU_SYN) -> float:
    """pA of an exponential PSC per mV of the PSP's peak it causes in iaf_psc_exp."""
    sub = 1.0 / (tau_syn - tau_m)
    pre = tau_m * tau_syn / c_m * sub
    frac = (tau_m / tau_syn) ** sub
    return 1.0 / (pre * (frac ** tau_m - frac ** tau_syn))


def parameters(scale: float = 1.0, k_scale: float | None = None) -> dict:
    """Derived numbers: neurons (8,), synapses (8, 8) target x source, weights (8, 8) pA,
    background rate (8,) Hz and weight pA, DC (8,) pA."""
    k_scale = scale if k_scale is None else k_scale
    prod = np.outer(N_FULL, N_FULL).astype(float)
    full_syn = np.log(1.0 - CONN_PROBS) / np.log((prod - 1.0) / prod)
    psp = np.tile([PSP_MV, G * PSP_MV], (8, 4))
    psp[0, 2] *= 2.0
    w = psp * psc_over_psp()
    w_ext = PSP_MV * psc_over_psp()
    # lost input of the scaled-down in-degrees, made up by a DC current from the full-scale rates
    indeg = full_syn / N_FULL[:, None]
    input_rec = np.sum(w * indeg * FULL_MEAN_RATES_HZ, axis=1)
    input_ext = w_ext * K_EXT * BG_RATE_HZ
    dc = 0.001 * TAU_SYN * (1.0 - math.sqrt(k_scale)) * (input_rec + input_ext)
    return {"n": np.round(N_FULL * scale).astype(int),
            "synapses": np.round(full_syn * scale * k_scale).astype(np.int64),
            "weight_pA": w / math.sqrt(k_scale), "bg_weight_pA": w_ext / math.sqrt(k_scale),
            "bg_rate_hz": BG_RATE_HZ * np.round(K_EXT * k_scale), "dc_pA": dc}


def network(scale: float = 1.0, k_scale: float | None = None, record_v: bool = False) -> PointNetwork:
    p = parameters(scale, k_scale)
    pops = tuple(Population(name=name, size=int(p["n"][i]),
                            model=IafPscExp(c_m_pF=C_M, tau_m_ms=TAU_M, e_l_mV=-65.0, v_th_mV=-50.0,
                                            v_reset_mV=-65.0, t_ref_ms=2.0, tau_syn_ex_ms=TAU_SYN,
                                            tau_syn_in_ms=TAU_SYN, i_e_pA=float(p["dc_pA"][i])),
                            v_init_mV=Normal(mean=V0_MEAN_MV[i], std=V0_STD_MV[i]),
                            poisson_rate_hz=float(p["bg_rate_hz"][i]), poisson_weight=float(p["bg_weight_pA"]),
                            record_v=record_v)
                 for i, name in enumerate(POPS))
    projs = []
    for i, tgt in enumerate(POPS):
        for j, src in enumerate(POPS):
            n_syn = int(p["synapses"][i, j])
            if n_syn <= 0:
                continue
            wm = float(p["weight_pA"][i, j])
            weight = Normal(mean=wm, std=abs(wm) * WEIGHT_CV, redraw=True,
                            **({"low": 0.0} if wm > 0 else {"high": 0.0}))
            dm = DELAY_MS[j % 2]
            delay = Normal(mean=dm, std=dm * DELAY_CV, low=0.5 * DT_MS, redraw=True)
            projs.append(Projection(source=src, target=tgt, rule=FixedTotalNumber(n=n_syn),
                                    weight=weight, delay_ms=delay))
    return PointNetwork(populations=pops, projections=tuple(projs), dt_ms=DT_MS)


def build(scale: float = 1.0, k_scale: float | None = None, t_stop_ms: float = 1500.0,
          seed: int = 55, record: bool = True) -> ps.Model:
    """The microcircuit as one solver ``net``; spikes of every population recorded."""
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("net", network(scale, k_scale))
    if record:
        for name in POPS:
            model.record(f"net.{name}.spikes")
    return model


def rates_hz(run, scale: float, t_from_ms: float, t_to_ms: float, k_scale: float | None = None) -> dict:
    """Mean rate (Hz, silent neurons included) of every population over [t_from, t_to) ms."""
    sizes = parameters(scale, k_scale)["n"]
    out = {}
    for i, name in enumerate(POPS):
        t = np.asarray(run.spikes("net", name).times)
        out[name] = np.sum((t >= t_from_ms) & (t < t_to_ms)) / sizes[i] / ((t_to_ms - t_from_ms) / 1000.0)
    return out


if __name__ == "__main__":
    import sys
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    run = ps.run(build(scale=scale, t_stop_ms=1500.0))
    for name, r in rates_hz(run, scale, 500.0, 1500.0).items():
        print(f"{name}: {r:.3f} Hz")
