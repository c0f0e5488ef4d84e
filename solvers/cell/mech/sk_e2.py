"""SK_E2: small-conductance calcium-activated potassium current (Koehler et al. 1996),
SK_E2.mod of Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653. ik = gbar z (v - ek), zInf = 1 / (1 + (0.43 uM / cai)^4.8), zTau 1 ms.

ek is the node's potassium reversal (the section's ``ek``: NEURON's default -77 mV; Hay sets -85 mV).

Checked against the published text (issue 6): GitHub OpenSourceBrain/L5bPyrCellHayEtAl2011,
neuroConstruct/cellMechanisms/SK_E2_mod/SK_E2.mod (neuroConstruct's copy of the ModelDB 139653 file, SUFFIX and
conductance name templated): rate equations, constants, exponents, qt, gate powers, defaults
and ion use are the same here.
"""
from ..._jit import njit
from .._fastexp import fexp, flog
from . import Mechanism


@njit(error_model="numpy", inline="always")
def _zinf(ca):
    ca = ca + 1e-7 * (ca < 1e-7)    # branch-free (vectorises)
    # (0.00043 / ca)^4.8 as exp(4.8 log(...)) in _fastexp's arithmetic (pow is a libm call,
    # which keeps the loop over cells scalar): within ~2e-14 relative of pow
    return 1.0 / (1.0 + fexp(4.8 * flog(0.00043 / ca)))


@njit(error_model="numpy", inline="always")
def init(v, celsius, gbar, ztau, ek, cai):
    return (_zinf(cai),)


@njit(error_model="numpy", inline="always")
def current(v, celsius, z, gbar, ztau, ek, cai):
    g = gbar * z
    return g * (v - ek), g


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, z, gbar, ztau, ek, cai):
    return (z + (1.0 - fexp(-dt / ztau)) * (_zinf(cai) - z),)


MECHANISM = Mechanism(name="SK_E2", params={"gSK_E2bar_S_cm2": 1e-6, "zTau_ms": 1.0},
                      states=("z",), reads=("ek", "cai"), init=init, current=current, advance=advance,
                      source="SK_E2.mod, Hay et al. (2011) PLoS Comput Biol 7:e1002107, ModelDB 139653; Koehler et al. (1996) Science 273:1709")
