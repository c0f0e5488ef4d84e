"""NaTa_t: fast inactivating Na current (Colbert & Pan 2002), NaTa_t.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.
ina = gbar m^3 h (v - ena); rates at 34 C (qt = 2.3^((34 - 21)/10), fixed in the mod).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/NaTa_t_mod/NaTa_t.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism

_QT = 2.3 ** ((34.0 - 21.0) / 10.0)


@njit(error_model="numpy", inline="always")
def _rates(v):
    # the original nudges v itself off each removable singularity, in sequence: the nudge at
    # -38 mV also reaches the h rates (as in the published rates())
    # (branch-free: the nudge as arithmetic, and exp(-x) as 1 / exp(x), so that the loop
    # over cells vectorises; _fastexp)
    v = v + 0.0001 * (v == -38.0)
    e = fexp(-(v + 38.0) / 6.0)
    ma = (0.182 * (v + 38.0)) / (1.0 - e)
    mb = (0.124 * (-v - 38.0)) / (1.0 - 1.0 / e)
    v = v + 0.0001 * (v == -66.0)
    e = fexp((v + 66.0) / 6.0)
    ha = (-0.015 * (v + 66.0)) / (1.0 - e)
    hb = (-0.015 * (-v - 66.0)) / (1.0 - 1.0 / e)
    # minf, 1/mtau (1/ms), hinf, 1/htau: the cnexp step needs exp(-dt/tau), and -dt (ma +
    # mb) qt spares two divisions per gate (within an ulp of -dt / ((1 / (ma + mb)) / qt))
    sm, sh = ma + mb, ha + hb
    return ma / sm, sm * _QT, ha / sh, sh * _QT


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
    minf, m_rate, hinf, h_rate = _rates(v)
    return (m + (1.0 - fexp(-dt * m_rate)) * (minf - m),
            h + (1.0 - fexp(-dt * h_rate)) * (hinf - h))


MECHANISM = Mechanism(name="NaTa_t", params={"gNaTa_tbar_S_cm2": 1e-5}, states=("m", "h"), reads=("ena",),
                      init=init, current=current, advance=advance,
                      source="NaTa_t.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Colbert & Pan (2002) Nat Neurosci 5:533")
