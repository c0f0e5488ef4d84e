"""Nap_Et2: persistent Na current (Magistretti & Alonso 1999), Nap_Et2.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ina = gbar m^3 h (v - ena); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/Nap_Et2_mod/Nap_Et2.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism

_QT = 2.3 ** ((34.0 - 21.0) / 10.0)


@njit(error_model="numpy", inline="always")
def _rates(v):
    minf = 1.0 / (1.0 + fexp((v + 52.6) / -4.6))
    # the original nudges v itself off each removable singularity, in sequence (after minf):
    # the nudge at -38 mV also reaches hinf and the h rates (as in the published rates())
    # (branch-free, exp(-x) as 1 / exp(x): the loop over cells vectorises; _fastexp)
    v = v + 0.0001 * (v == -38.0)
    e = fexp(-(v + 38.0) / 6.0)
    ma = (0.182 * (v + 38.0)) / (1.0 - e)
    mb = (0.124 * (-v - 38.0)) / (1.0 - 1.0 / e)
    mtau = 6.0 * (1.0 / (ma + mb)) / _QT
    v = v + 0.0001 * (v == -17.0)
    v = v + 0.0001 * (v == -64.4)
    hinf = 1.0 / (1.0 + fexp((v + 48.8) / 10.0))
    ha = -2.88e-6 * (v + 17.0) / (1.0 - fexp((v + 17.0) / 4.63))
    hb = 6.94e-6 * (v + 64.4) / (1.0 - fexp(-(v + 64.4) / 2.63))
    return minf, mtau, hinf, (1.0 / (ha + hb)) / _QT


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ena):
    minf, _, hinf, _ = _rates(v)
    return minf, hinf


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, h, gbar, ena):
    g = gbar * m * m * m * h
    return g * (v - ena), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, h, gbar, ena):
    minf, mtau, hinf, htau = _rates(v)
    return (m + (1.0 - fexp(-dt / mtau)) * (minf - m),
            h + (1.0 - fexp(-dt / htau)) * (hinf - h))


MECHANISM = Mechanism(name="Nap_Et2", params={"gNap_Et2bar_S_cm2": 1e-5}, states=("m", "h"), reads=("ena",),
                      init=init, current=current, advance=advance,
                      source="Nap_Et2.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Magistretti & Alonso (1999) J Gen Physiol 114:491")
