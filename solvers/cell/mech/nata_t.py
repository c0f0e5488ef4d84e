"""NaTa_t: fast inactivating Na current (Colbert & Pan 2002), NaTa_t.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ina = gbar m^3 h (v - ena); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/NaTa_t_mod/NaTa_t.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
import math

from ..._jit import njit
from . import Mechanism

_QT = 2.3 ** ((34.0 - 21.0) / 10.0)


@njit
def _rates(v):
    # the original nudges v itself off each removable singularity, in sequence: the nudge at
    # -38 mV also reaches the h rates (as in the published rates())
    if v == -38.0:
        v = v + 0.0001
    ma = (0.182 * (v + 38.0)) / (1.0 - math.exp(-(v + 38.0) / 6.0))
    mb = (0.124 * (-v - 38.0)) / (1.0 - math.exp(-(-v - 38.0) / 6.0))
    if v == -66.0:
        v = v + 0.0001
    ha = (-0.015 * (v + 66.0)) / (1.0 - math.exp((v + 66.0) / 6.0))
    hb = (-0.015 * (-v - 66.0)) / (1.0 - math.exp((-v - 66.0) / 6.0))
    return (ma / (ma + mb), (1.0 / (ma + mb)) / _QT, ha / (ha + hb), (1.0 / (ha + hb)) / _QT)


@njit
def init(v, celsius, gbar, ena):
    minf, _, hinf, _ = _rates(v)
    return minf, hinf


@njit
def current(v, celsius, m, h, gbar, ena):
    g = gbar * m * m * m * h
    return g * (v - ena), g


@njit
def advance(v, dt, celsius, m, h, gbar, ena):
    minf, mtau, hinf, htau = _rates(v)
    return (m + (1.0 - math.exp(-dt / mtau)) * (minf - m),
            h + (1.0 - math.exp(-dt / htau)) * (hinf - h))


MECHANISM = Mechanism(name="NaTa_t", params={"gNaTa_tbar_S_cm2": 1e-5}, states=("m", "h"), reads=("ena",),
                      init=init, current=current, advance=advance,
                      source="NaTa_t.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Colbert & Pan (2002) Nat Neurosci 5:533")
