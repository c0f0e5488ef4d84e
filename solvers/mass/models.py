"""Node models of a region network: one neural mass per region, TVB's parameterisations.

Each model is a nested spec (plain data) naming its parameters with TVB's names and defaults
(tvb-library 2.10, ``tvb.simulator.models``; time in ms). The equations themselves live in
``_kernels.py`` (numba); here each model says how many state variables it has, which of them
(or which combination) is the *activity* that couples regions, where an external input enters,
and how to turn activity into a firing rate where the model has one.

Model             state                 activity (couples)      input enters          rate
JansenRit         y0..y5 (mV, mV/ms)    y1 - y2 (mV)            dy4, beside mu (1/ms)  2 nu_max S(y1-y2), Hz
WilsonCowan       E, I (fractions)      E                       E's argument, beside P  -
MontbrioPazoRoxin r (1/ms), V (mV)      r (1/ms)                dV, beside I            1000 r, Hz
ReducedWongWang   S (gating, 0..1)      S                       x, times J_N (nA)      -
Generic2dOscillator V, W                V                       dV, times gamma         -
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.specs import SpecFamily
from ...coordinator.validation import require_number
from ._kernels import MODEL_IDS


class NodeModel(SpecFamily):
    """Base of the node models: a nested spec whose ``type`` picks the model on the wire."""

    __slots__ = ()
    #: names of the state variables, in the order of the state arrays
    state_variables: ClassVar[tuple[str, ...]] = ()
    #: units of the state variables (one string for the run file)
    state_units: ClassVar[str] = ""
    #: units of the activity that couples regions (and of a replaced region's input)
    activity_units: ClassVar[str] = ""
    #: units of the per-region input port
    input_units: ClassVar[str] = ""
    #: order of the parameters in the flat array handed to the kernel
    params: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = 'node model'
    _kinds: ClassVar[dict[str, type]] = {}


    def __post_init__(self) -> None:
        require_number(self, *self.params)


    @property
    def n_sv(self) -> int:
        return len(self.state_variables)

    @property
    def model_id(self) -> int:
        return int(MODEL_IDS[self.type])

    def param_array(self) -> np.ndarray:
        """(n_params,) float64 in the kernel's order."""
        return np.array([getattr(self, k) for k in self.params], dtype=np.float64)

    @property
    def has_rate(self) -> bool:
        return False

    def rate_hz(self, activity: np.ndarray) -> np.ndarray:
        """Firing rate (Hz) from activity (any shape); only for models with ``has_rate``."""
        raise ModelError(f"node model {self.type!r} has no firing rate")


@dataclass(frozen=True, slots=True, kw_only=True)
class JansenRit(NodeModel):
    """Jansen & Rit (1995) cortical column, TVB's ``JansenRit`` with its defaults.

    State y0..y5: y0, y1, y2 are the PSPs (mV) of the pyramidal, excitatory and inhibitory
    populations' inputs, y3..y5 their derivatives (mV/ms). Rates are in 1/ms: nu_max 0.0025/ms
    is 5 Hz / 2. The activity that couples regions is y1 - y2 (the pyramidal membrane
    potential, the EEG source); a coupling input c (1/ms) and the per-region input u (1/ms) enter
    dy4 beside mu: ``A a (mu + a_2 J S(a_1 J y0) + c + u)``.
    """

    type: ClassVar[str] = "jansen_rit"
    state_variables: ClassVar[tuple[str, ...]] = ("y0", "y1", "y2", "y3", "y4", "y5")
    state_units: ClassVar[str] = "mV (y0-y2), mV/ms (y3-y5)"
    activity_units: ClassVar[str] = "mV"
    input_units: ClassVar[str] = "1/ms"
    params: ClassVar[tuple[str, ...]] = ("A", "B", "a", "b", "v0", "nu_max", "r", "J",
                                         "a_1", "a_2", "a_3", "a_4", "mu")

    A: float = 3.25        # mV, maximum excitatory PSP
    B: float = 22.0        # mV, maximum inhibitory PSP
    a: float = 0.1         # 1/ms, excitatory time constant's inverse
    b: float = 0.05        # 1/ms, inhibitory
    v0: float = 5.52       # mV, sigmoid midpoint
    nu_max: float = 0.0025  # 1/ms, half the maximum firing rate
    r: float = 0.56        # 1/mV, sigmoid steepness
    J: float = 135.0       # average number of synapses
    a_1: float = 1.0
    a_2: float = 0.8
    a_3: float = 0.25
    a_4: float = 0.25
    mu: float = 0.22       # 1/ms, mean input firing rate

    @property
    def has_rate(self) -> bool:
        return True

    def rate_hz(self, activity: np.ndarray) -> np.ndarray:
        """Pyramidal firing rate (Hz) = 1000 * 2 nu_max / (1 + exp(r (v0 - (y1 - y2))))."""
        return 1000.0 * 2.0 * self.nu_max / (1.0 + np.exp(self.r * (self.v0 - np.asarray(activity))))


@dataclass(frozen=True, slots=True, kw_only=True)
class WilsonCowan(NodeModel):
    """Wilson & Cowan (1972) excitatory/inhibitory pair, TVB's ``WilsonCowan`` with its defaults
    (the shifted sigmoid, so that E = I = 0 is a fixed point when P = Q = theta = 0).

    dE/dt = (-E + (k_e - r_e E) S_e(alpha_e (c_ee E - c_ei I + P - theta_e + c + u))) / tau_e
    dI/dt = (-I + (k_i - r_i I) S_i(alpha_i (c_ie E - c_ii I + Q - theta_i))) / tau_i
    S(x) = c (1 / (1 + exp(-a (x - b))) - 1 / (1 + exp(a b))). E, I are fractions of active
    cells; tau in ms. Activity = E.
    """

    type: ClassVar[str] = "wilson_cowan"
    state_variables: ClassVar[tuple[str, ...]] = ("E", "I")
    state_units: ClassVar[str] = ""
    activity_units: ClassVar[str] = ""
    input_units: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ("c_ee", "c_ei", "c_ie", "c_ii", "tau_e", "tau_i", "a_e",
                                         "b_e", "c_e", "theta_e", "a_i", "b_i", "c_i", "theta_i",
                                         "r_e", "r_i", "k_e", "k_i", "P", "Q", "alpha_e", "alpha_i")

    c_ee: float = 12.0
    c_ei: float = 4.0
    c_ie: float = 13.0
    c_ii: float = 11.0
    tau_e: float = 10.0   # ms
    tau_i: float = 10.0   # ms
    a_e: float = 1.2
    b_e: float = 2.8
    c_e: float = 1.0
    theta_e: float = 0.0
    a_i: float = 1.0
    b_i: float = 4.0
    c_i: float = 1.0
    theta_i: float = 0.0
    r_e: float = 1.0
    r_i: float = 1.0
    k_e: float = 1.0
    k_i: float = 1.0
    P: float = 0.0
    Q: float = 0.0
    alpha_e: float = 1.0
    alpha_i: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MontbrioPazoRoxin(NodeModel):
    """Montbrió, Pazó & Roxin (2015) exact mean field of QIF neurons, TVB's ``MontbrioPazoRoxin``.

    dr/dt = (Delta / (pi tau) + 2 V r) / tau
    dV/dt = (V^2 - (pi tau r)^2 + eta + J tau r + I + cr c + u) / tau
    r in 1/ms (rate 1000 r Hz), V dimensionless (as in TVB); tau in ms. Activity = r.
    TVB's second coupling channel (cv on V) is not supported.
    """

    type: ClassVar[str] = "montbrio_pazo_roxin"
    state_variables: ClassVar[tuple[str, ...]] = ("r", "V")
    state_units: ClassVar[str] = "1/ms (r), dimensionless (V)"
    activity_units: ClassVar[str] = "1/ms"
    input_units: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ("tau", "I", "Delta", "J", "eta", "cr")

    tau: float = 1.0     # ms
    I: float = 0.0       # noqa: E741  (TVB's name)
    Delta: float = 1.0
    J: float = 15.0
    eta: float = -5.0
    cr: float = 1.0

    def __post_init__(self) -> None:
        require_number(self, *self.params)
        require_number(self, "tau", positive=True)

    @property
    def has_rate(self) -> bool:
        return True

    def rate_hz(self, activity: np.ndarray) -> np.ndarray:
        """Rate (Hz) = 1000 r."""
        return 1000.0 * np.asarray(activity)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReducedWongWang(NodeModel):
    """Wong & Wang (2006) reduced by Deco et al. (2013), TVB's ``ReducedWongWang``.

    x = w J_N S + I_o + J_N (c + u)      (nA)
    H = (a x - b) / (1 - exp(-d (a x - b)))   (1/ms: TVB's a 0.27 /nC, b 0.108 /ms, d 154 ms)
    dS/dt = -S / tau_s + (1 - S) H gamma
    Activity = S.
    """

    type: ClassVar[str] = "reduced_wong_wang"
    state_variables: ClassVar[tuple[str, ...]] = ("S",)
    state_units: ClassVar[str] = ""
    activity_units: ClassVar[str] = ""
    input_units: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ("a", "b", "d", "gamma", "tau_s", "w", "J_N", "I_o")

    a: float = 0.270
    b: float = 0.108
    d: float = 154.0
    gamma: float = 0.641 / 1000.0
    tau_s: float = 100.0   # ms
    w: float = 0.6
    J_N: float = 0.2609    # nA
    I_o: float = 0.33      # nA

    def h(self, x: np.ndarray) -> np.ndarray:
        """The input-output function H(x) (1/ms) of total input x (nA)."""
        y = self.a * np.asarray(x) - self.b
        return y / (1.0 - np.exp(-self.d * y))


@dataclass(frozen=True, slots=True, kw_only=True)
class Generic2dOscillator(NodeModel):
    """TVB's ``Generic2dOscillator`` (Stefanescu-Jirsa 2D), with its defaults.

    dV/dt = d tau (alpha W - f V^3 + e V^2 + g V + gamma I + gamma (c + u))
    dW/dt = d (a + b V + c V^2 - beta W) / tau
    Activity = V. With e = f = c = 0 it is linear.
    """

    type: ClassVar[str] = "generic_2d_oscillator"
    state_variables: ClassVar[tuple[str, ...]] = ("V", "W")
    state_units: ClassVar[str] = ""
    activity_units: ClassVar[str] = ""
    input_units: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ("tau", "I", "a", "b", "c", "d", "e", "f", "g",
                                         "alpha", "beta", "gamma")

    tau: float = 1.0
    I: float = 0.0       # noqa: E741  (TVB's name)
    a: float = -2.0
    b: float = -10.0
    c: float = 0.0
    d: float = 0.02
    e: float = 3.0
    f: float = 1.0
    g: float = 0.0
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0


MODELS = (JansenRit, WilsonCowan, MontbrioPazoRoxin, ReducedWongWang, Generic2dOscillator)


def _check_params_complete() -> None:
    # every declared parameter is a field: a typo here would silently hand the kernel garbage
    for m in MODELS:
        names = {f.name for f in fields(m)}
        missing = [p for p in m.params if p not in names]
        assert not missing, (m.__name__, missing)


_check_params_complete()
