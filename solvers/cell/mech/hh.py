"""NEURON's hh: Hodgkin & Huxley (1952) Na, K and leak at 6.3 C, rates scaled by Q10 3."""
from ..._jit import njit
from .._fastexp import fexp
from .._kernels import hh_rates
from . import Mechanism


@njit(error_model="numpy", inline="always")
def init(v, celsius, gnabar, gkbar, gl, el, ena, ek):
    minf, _, hinf, _, ninf, _ = hh_rates(v, 3.0 ** ((celsius - 6.3) / 10.0))
    return minf, hinf, ninf


@njit(error_model="numpy", inline="always")
def current(v, celsius, m, h, n, gnabar, gkbar, gl, el, ena, ek):
    gna = gnabar * m * m * m * h
    n2 = n * n
    gk = gkbar * n2 * n2
    return gna * (v - ena) + gk * (v - ek) + gl * (v - el), gna + gk + gl


@njit(error_model="numpy", inline="always")
def advance(v, dt, celsius, m, h, n, gnabar, gkbar, gl, el, ena, ek):
    minf, mtau, hinf, htau, ninf, ntau = hh_rates(v, 3.0 ** ((celsius - 6.3) / 10.0))
    return (m + (1.0 - fexp(-dt / mtau)) * (minf - m),
            h + (1.0 - fexp(-dt / htau)) * (hinf - h),
            n + (1.0 - fexp(-dt / ntau)) * (ninf - n))


MECHANISM = Mechanism(
    name="hh", params={"gnabar_S_cm2": 0.12, "gkbar_S_cm2": 0.036, "gl_S_cm2": 0.0003,
                       "el_mV": -54.3},
    states=("m", "h", "n"), reads=("ena", "ek"), init=init, current=current, advance=advance, builtin="hh",
    source="NEURON's built-in hh.mod (Hodgkin & Huxley 1952)")
