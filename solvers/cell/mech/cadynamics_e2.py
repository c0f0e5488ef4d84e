"""CaDynamics_E2: intracellular calcium in a submembrane shell, CaDynamics_E2.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653
(modified from Destexhe et al. 1994).

cai' = -1e4 ica gamma / (2 F depth) - (cai - minCai) / decay  (mM/ms; ica mA/cm2, depth um).
With ica held over the step this is linear in cai, and cnexp's update is exact. cai starts at
NEURON's cai0_ca_ion (5e-5 mM): the mod has no INITIAL block.

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/CaDynamics_E2_mod/CaDynamics_E2.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism

#: NEURON 9's faraday (C/mol, 2019 SI constants)
FARADAY = 96485.33212331001


@njit(error_model="numpy", inline="always")
def init(v, celsius, gamma, decay_ms, depth_um, minCai_mM, ica, cai):
    return (cai,)


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, cai, gamma, decay_ms, depth_um, minCai_mM, ica, cai_now):
    inf = minCai_mM - 10000.0 * ica * gamma / (2.0 * FARADAY * depth_um) * decay_ms
    return (cai + (1.0 - fexp(-dt / decay_ms)) * (inf - cai),)


MECHANISM = Mechanism(name="CaDynamics_E2",
                      params={"gamma": 0.05, "decay_ms": 80.0, "depth_um": 0.1, "minCai_mM": 1e-4},
                      states=("cai",), reads=("ica", "cai"), writes="cai",
                      init=init, current=None, advance=advance,
                      source="CaDynamics_E2.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653")
