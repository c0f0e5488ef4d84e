"""NEURON's pas: a passive leak i = g (v - e)."""
from ..._jit import njit
from . import Mechanism


@njit
def init(v, celsius, g, e):
    return ()


@njit
def current(v, celsius, g, e):
    return g * (v - e), g


@njit
def advance(v, dt, celsius, g, e):
    return ()


MECHANISM = Mechanism(name="pas", params={"g_S_cm2": 0.001, "e_mV": -70.0}, states=(),
                      init=init, current=current, advance=advance, builtin="pas",
                      source="NEURON's built-in pas")
