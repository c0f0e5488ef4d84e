"""Ca_HVA: high-voltage-activated calcium current (Reuveni et al. 1993), Ca_HVA.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653.

ica = gbar m^2 h (v - eca); no temperature scaling.

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/Ca_HVA_mod/Ca_HVA.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp
from . import Mechanism


@njit(error_model="numpy", inline="always")
def _rates(v):
    v = v + 0.0001 * (v == -27.0)    # branch-free (vectorises)
    ma = 0.055 * (-27.0 - v) / (fexp((-27.0 - v) / 3.8) - 1.0)
    mb = 0.94 * fexp((-75.0 - v) / 17.0)
    ha = 0.000457 * fexp((-13.0 - v) / 50.0)
    hb = 0.0065 / (fexp((-v - 15.0) / 28.0) + 1.0)
    # minf, 1/mtau (1/ms), hinf, 1/htau: the gates' cnexp step needs exp(-dt/tau), and
    # -dt (ma + mb) spares two divisions per gate (within an ulp of -dt / (1 / (ma + mb)))
    sm, sh = ma + mb, ha + hb
    return ma / sm, sm, ha / sh, sh


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
    minf, m_rate, hinf, h_rate = _rates(v)
    return (m + (1.0 - fexp(-dt * m_rate)) * (minf - m),
            h + (1.0 - fexp(-dt * h_rate)) * (hinf - h))


MECHANISM = Mechanism(name="Ca_HVA", params={"gCa_HVAbar_S_cm2": 1e-5}, states=("m", "h"),
                      reads=("eca",), current_ion="ca", init=init, current=current, advance=advance,
                      source="Ca_HVA.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Reuveni et al. (1993) J Neurosci 13:4609")
