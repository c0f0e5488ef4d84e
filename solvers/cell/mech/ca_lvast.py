"""Ca_LVAst: low-voltage-activated calcium current (Avery & Johnston 1996, shifted), Ca_LVAst.mod
of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653. ica = gbar m^2 h (v - eca); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/Ca_LVAst_mod/Ca_LVAst.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
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
    minf = 1.0 / (1.0 + fexp((v + 30.0) / -6.0))
    mtau = (5.0 + 20.0 / (1.0 + fexp((v + 25.0) / 5.0))) / _QT
    hinf = 1.0 / (1.0 + fexp((v + 80.0) / 6.4))
    htau = (20.0 + 50.0 / (1.0 + fexp((v + 40.0) / 7.0))) / _QT
    return minf, mtau, hinf, htau


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, eca):
    minf, _, hinf, _ = _rates(v)
    return minf, hinf


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, h, gbar, eca):
    g = gbar * m * m * h
    return g * (v - eca), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, h, gbar, eca):
    minf, mtau, hinf, htau = _rates(v)
    return (m + (1.0 - fexp(-dt / mtau)) * (minf - m),
            h + (1.0 - fexp(-dt / htau)) * (hinf - h))


MECHANISM = Mechanism(name="Ca_LVAst", params={"gCa_LVAstbar_S_cm2": 1e-5}, states=("m", "h"),
                      reads=("eca",), current_ion="ca", init=init, current=current, advance=advance,
                      source="Ca_LVAst.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Avery & Johnston (1996) J Neurosci 16:5567")
