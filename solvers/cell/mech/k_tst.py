"""K_Tst: fast inactivating K current (Korngreen & Sakmann 2000), K_Tst.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ik = gbar m^4 h (v - ek); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/K_Tst_mod/K_Tst.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism

_QT = 2.3 ** ((34.0 - 21.0) / 10.0)


@njit(error_model="numpy", inline="always")
def _rates(v):
    v = v + 10.0
    minf = 1.0 / (1.0 + fexp(-(v + 0.0) / 19.0))
    mtau = (0.34 + 0.92 * fexp(-((v + 71.0) / 59.0) ** 2)) / _QT
    hinf = 1.0 / (1.0 + fexp(-(v + 66.0) / -10.0))
    htau = (8.0 + 49.0 * fexp(-((v + 73.0) / 23.0) ** 2)) / _QT
    return minf, mtau, hinf, htau


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ek):
    minf, _, hinf, _ = _rates(v)
    return minf, hinf


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, h, gbar, ek):
    m2 = m * m
    g = gbar * m2 * m2 * h
    return g * (v - ek), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, h, gbar, ek):
    minf, mtau, hinf, htau = _rates(v)
    return (m + (1.0 - fexp(-dt / mtau)) * (minf - m),
            h + (1.0 - fexp(-dt / htau)) * (hinf - h))


MECHANISM = Mechanism(name="K_Tst", params={"gK_Tstbar_S_cm2": 1e-5}, states=("m", "h"), reads=("ek",),
                      init=init, current=current, advance=advance,
                      source="K_Tst.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Korngreen & Sakmann (2000) J Physiol 525:621")
