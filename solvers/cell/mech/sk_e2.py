"""SK_E2: small-conductance calcium-activated potassium current (Koehler et al. 1996),
SK_E2.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653. ik = gbar z (v - ek), zInf = 1 / (1 + (0.43 uM / cai)^4.8), zTau 1 ms.

ek is the node's potassium reversal (the section's ``ek``: NEURON's default -77 mV; Hay sets -85 mV).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/SK_E2_mod/SK_E2.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
import math

from ..._jit import njit
from . import Mechanism


@njit
def _zinf(ca):
    if ca < 1e-7:
        ca = ca + 1e-7
    return 1.0 / (1.0 + (0.00043 / ca) ** 4.8)


@njit
def init(v, celsius, gbar, ztau, ek, cai):
    return (_zinf(cai),)


@njit
def current(v, celsius, z, gbar, ztau, ek, cai):
    g = gbar * z
    return g * (v - ek), g


@njit
def advance(v, dt, celsius, z, gbar, ztau, ek, cai):
    return (z + (1.0 - math.exp(-dt / ztau)) * (_zinf(cai) - z),)


MECHANISM = Mechanism(name="SK_E2", params={"gSK_E2bar_S_cm2": 1e-6, "zTau_ms": 1.0},
                      states=("z",), reads=("ek", "cai"), init=init, current=current, advance=advance,
                      source="SK_E2.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Koehler et al. (1996) Science 273:1709")
