"""SKv3_1: fast non-inactivating K current (Rettig et al. 1992), SKv3_1.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ik = gbar m (v - ek).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/SKv3_1_mod/SKv3_1.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism


@njit(error_model="numpy", inline="always")
def _rates(v):
    return (1.0 / (1.0 + fexp((v - 18.7) / -9.7)),
            0.2 * 20.0 / (1.0 + fexp((v + 46.56) / -44.14)))


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ek):
    return (_rates(v)[0],)


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, gbar, ek):
    g = gbar * m
    return g * (v - ek), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, gbar, ek):
    minf, mtau = _rates(v)
    return (m + (1.0 - fexp(-dt / mtau)) * (minf - m),)


MECHANISM = Mechanism(name="SKv3_1", params={"gSKv3_1bar_S_cm2": 1e-5}, states=("m",), reads=("ek",),
                      init=init, current=current, advance=advance,
                      source="SKv3_1.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Rettig et al. (1992) EMBO J 11:2473")
