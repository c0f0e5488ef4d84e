"""Im: muscarinic K current (Adams et al. 1982), Im.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ik = gbar m (v - ek); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/Im_mod/Im.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism

_QT = 2.3 ** ((34.0 - 21.0) / 10.0)


@njit(error_model="numpy", inline="always")
def _rates(v):
    # exp(-x) as 1 / exp(x): one exponential (_fastexp)
    e = fexp(2.5 * 0.04 * (v + 35.0))
    a = 3.3e-3 * e
    b = 3.3e-3 / e
    # minf and 1/mtau (1/ms): the cnexp step takes exp(-dt (a + b) qt), within an ulp of
    # exp(-dt / ((1 / (a + b)) / qt)) with two divisions fewer
    s = a + b
    return a / s, s * _QT


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ek):
    return (_rates(v)[0],)


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, gbar, ek):
    g = gbar * m
    return g * (v - ek), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, gbar, ek):
    minf, m_rate = _rates(v)
    return (m + (1.0 - fexp(-dt * m_rate)) * (minf - m),)


MECHANISM = Mechanism(name="Im", params={"gImbar_S_cm2": 1e-5}, states=("m",), reads=("ek",),
                      init=init, current=current, advance=advance,
                      source="Im.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Adams, Brown & Constanti (1982) J Physiol 330:537")
