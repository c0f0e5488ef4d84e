"""Ih: hyperpolarisation-activated cation current (Kole et al. 2006), Ih.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.

gIh = gIhbar m, ihcn = gIh (v - ehcn); no temperature scaling.

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/Ih_mod/Ih.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism


@njit(error_model="numpy", inline="always")
def _rates(v):
    v = v + 0.0001 * (v == -154.9)    # branch-free (vectorises)
    a = 0.001 * 6.43 * (v + 154.9) / (fexp((v + 154.9) / 11.9) - 1.0)
    b = 0.001 * 193.0 * fexp(v / 33.1)
    # minf and 1/mtau (1/ms): the cnexp step takes exp(-dt (a + b)), two divisions fewer
    # than exp(-dt / (1 / (a + b))) and within an ulp of it
    s = a + b
    return a / s, s


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ehcn):
    return (_rates(v)[0],)


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, gbar, ehcn):
    g = gbar * m
    return g * (v - ehcn), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, gbar, ehcn):
    minf, m_rate = _rates(v)
    return (m + (1.0 - fexp(-dt * m_rate)) * (minf - m),)


MECHANISM = Mechanism(name="Ih", params={"gIhbar_S_cm2": 1e-5, "ehcn_mV": -45.0}, states=("m",),
                      init=init, current=current, advance=advance,
                      source="Ih.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Kole, Hallermann & Stuart (2006) J Neurosci 26:1677")
