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
Kuramoto          theta (rad)           theta                   dtheta, beside omega    -
ZerlautAdaptation E, I (kHz), W_e, W_i  E (kHz)                 external excitatory     1000 E, Hz
  First/SecondOrder (pA), ou_drift (+ C_ee, C_ei, C_ii)         rate, beside c (kHz)

Every parameter may be one number or a sequence of one number per region (as TVB's arrays);
Zerlaut's P_e, P_i are 10 coefficients shared by all regions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.specs import SpecFamily
from ...coordinator.validation import fail, is_number
from ._kernels import MODEL_IDS



def require_params(spec, *names: str, positive: bool = False) -> None:
    """Each named parameter is a finite number (stored as float), or a non-empty sequence of
    them, one per region (stored as a tuple of floats; its length is checked against the
    network's regions when the network is built); > 0 everywhere when asked. A vector parameter
    (``vector_params``) must have exactly its length."""
    bound = " > 0" if positive else ""
    for name in names:
        value = getattr(spec, name)
        want = spec.vector_params.get(name)
        if want is None and is_number(value):
            if not (math.isfinite(value) and (not positive or value > 0)):
                raise fail(spec, f"parameter {name!r} must be a finite number{bound}, or one per "
                                 f"region (got {value!r})")
            object.__setattr__(spec, name, float(value))
            continue
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        what = (f"{want} finite numbers" if want is not None
                else f"a finite number{bound} or a sequence of them, one per region")
        if arr is None or arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() \
                or (want is not None and arr.size != want) or (positive and not (arr > 0).all()):
            raise fail(spec, f"parameter {name!r} must be {what} (got {value!r})")
        object.__setattr__(spec, name, tuple(float(v) for v in arr))


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


    #: parameters that hold a fixed-length vector of coefficients (name: length), the same in
    #: every region, rather than one number or one number per region
    vector_params: ClassVar[dict[str, int]] = {}
    #: TVB's state_variable_boundaries as ((lower per state variable), (upper ...)), +-inf for
    #: none, or None: the integrators clip the state into them after every stage, as TVB's
    bounds: ClassVar[tuple | None] = None

    def __post_init__(self) -> None:
        require_params(self, *self.params)

    @property
    def n_sv(self) -> int:
        return len(self.state_variables)

    @property
    def model_id(self) -> int:
        return int(MODEL_IDS[self.type])

    def param_matrix(self, n_regions: int) -> np.ndarray:
        """(n_rows, n_regions) float64 in the kernel's order: one row per parameter (a vector
        parameter gives one row per coefficient), one column per region."""
        rows = []
        for k in self.params:
            v = getattr(self, k)
            if k in self.vector_params:
                rows.extend(np.full(n_regions, e) for e in v)
            elif isinstance(v, tuple):
                if len(v) != n_regions:
                    raise ModelError(f"{self.type}: parameter {k!r} has {len(v)} values, one per "
                                     f"region, but the network has {n_regions} regions (give one "
                                     f"number, or exactly {n_regions})")
                rows.append(np.array(v, dtype=np.float64))
            else:
                rows.append(np.full(n_regions, v, dtype=np.float64))
        return np.array(rows, dtype=np.float64).reshape(len(rows), n_regions)

    def param_array(self) -> np.ndarray:
        """(n_rows,) float64 in the kernel's order, for a model whose parameters are all scalars."""
        return self.param_matrix(1)[:, 0]

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
        nu_max, r, v0 = (np.asarray(getattr(self, k)) for k in ("nu_max", "r", "v0"))
        return 1000.0 * 2.0 * nu_max / (1.0 + np.exp(r * (v0 - np.asarray(activity))))


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
        require_params(self, *self.params)
        require_params(self, "tau", positive=True)

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Kuramoto(NodeModel):
    """TVB's ``Kuramoto`` phase oscillator: d theta / dt = omega + c + u (rad/ms; theta in rad,
    not wrapped, as TVB). Activity = theta; pair it with the Kuramoto coupling."""

    type: ClassVar[str] = "kuramoto"
    state_variables: ClassVar[tuple[str, ...]] = ("theta",)
    state_units: ClassVar[str] = "rad"
    activity_units: ClassVar[str] = "rad"
    input_units: ClassVar[str] = "rad/ms"
    params: ClassVar[tuple[str, ...]] = ("omega",)

    omega: float = 1.0   # rad/ms


_ZERLAUT_PARAMS = ("g_L", "E_L_e", "E_L_i", "C_m", "b_e", "a_e", "b_i", "a_i", "tau_w_e", "tau_w_i",
                   "E_e", "E_i", "Q_e", "Q_i", "tau_e", "tau_i", "N_tot", "p_connect_e", "p_connect_i",
                   "g", "K_ext_e", "K_ext_i", "T", "P_e", "P_i", "external_input_ex_ex",
                   "external_input_ex_in", "external_input_in_ex", "external_input_in_in", "tau_OU",
                   "weight_noise", "S_i")


@dataclass(frozen=True, slots=True, kw_only=True)
class ZerlautAdaptationFirstOrder(NodeModel):
    """The AdEx mean field of di Volo et al. (2019) / Zerlaut et al. (2018), first order: TVB's
    ``ZerlautAdaptationFirstOrder`` (tvb.simulator.models.zerlaut) with its names and defaults,
    so that a region of AdEx point neurons has a matching mass.

    T dE/dt = F_e(E, I, W_e) - E,  T dI/dt = F_i(E, I, W_i) - I  (E, I in kHz = 1/ms)
    dW_e/dt = -W_e / tau_w_e + b_e E + a_e (mu_V - E_L_e) / tau_w_e     (W in pA)
    d ou_drift/dt = -ou_drift / tau_OU
    F = erfc((V_thre - mu_V) / (sqrt(2) sigma_V)) / (2 T_V), with mu_V, sigma_V, T_V the
    membrane potential's mean, standard deviation and autocorrelation time of a conductance-
    based AdEx population driven at the given rates, and V_thre the fitted second-order
    polynomial P_e / P_i (10 coefficients, V) of the normalised mu_V, sigma_V, T_V.
    Conductances in nS, capacitance pF, potentials mV, times ms. The coupling input c and the
    per-region input u (kHz) add to the external excitatory rate of the excitatory
    population (TVB's c_0, times K_ext_e external synapses; a negative total is set to 0);
    weight_noise ou_drift adds too. E >= 0 and I >= 0 are enforced after every integrator stage,
    as TVB's state_variable_boundaries. Activity = E; rate = 1000 E Hz. Local (surface)
    coupling is not supported.
    """

    type: ClassVar[str] = "zerlaut_adaptation_first_order"
    state_variables: ClassVar[tuple[str, ...]] = ("E", "I", "W_e", "W_i", "ou_drift")
    state_units: ClassVar[str] = "kHz (E, I), pA (W_e, W_i), kHz (ou_drift)"
    activity_units: ClassVar[str] = "kHz"
    input_units: ClassVar[str] = "kHz"
    params: ClassVar[tuple[str, ...]] = _ZERLAUT_PARAMS
    vector_params: ClassVar[dict[str, int]] = {"P_e": 10, "P_i": 10}
    bounds: ClassVar[tuple | None] = ((0.0, 0.0, -np.inf, -np.inf, -np.inf),
                                      (np.inf, np.inf, np.inf, np.inf, np.inf))

    g_L: float = 10.0        # nS
    E_L_e: float = -65.0     # mV
    E_L_i: float = -65.0     # mV
    C_m: float = 200.0       # pF
    b_e: float = 60.0        # pA, adaptation jump per spike (W in pA, E in kHz)
    a_e: float = 4.0         # nS
    b_i: float = 0.0
    a_i: float = 0.0         # nS
    tau_w_e: float = 500.0   # ms
    tau_w_i: float = 1.0     # ms
    E_e: float = 0.0         # mV
    E_i: float = -80.0       # mV
    Q_e: float = 1.5         # nS
    Q_i: float = 5.0         # nS
    tau_e: float = 5.0       # ms
    tau_i: float = 5.0       # ms
    N_tot: float = 10000.0
    p_connect_e: float = 0.05
    p_connect_i: float = 0.05
    g: float = 0.2           # fraction of inhibitory cells
    K_ext_e: float = 400.0
    K_ext_i: float = 0.0
    T: float = 20.0          # ms
    P_e: tuple = (-0.04983106, 0.005063550882777035, -0.023470121807314552, 0.0022951513725067503,
                  -0.0004105302652029825, 0.010547051343547399, -0.03659252821136933,
                  0.007437487505797858, 0.001265064721846073, -0.04072161294490446)   # V
    P_i: tuple = (-0.05149122024209484, 0.004003689190271077, -0.008352013668528155,
                  0.0002414237992765705, -0.0005070645080016026, 0.0014345394104282397,
                  -0.014686689498949967, 0.004502706285435741, 0.0028472190352532454,
                  -0.015357804594594548)   # V
    external_input_ex_ex: float = 0.0   # kHz
    external_input_ex_in: float = 0.0
    external_input_in_ex: float = 0.0
    external_input_in_in: float = 0.0
    tau_OU: float = 5.0      # ms
    weight_noise: float = 10.5
    S_i: float = 1.0         # (second order only) scaling of the coupling onto inhibitory cells

    def __post_init__(self) -> None:
        require_params(self, *self.params)
        require_params(self, "C_m", "g_L", "T", "tau_w_e", "tau_w_i", "tau_OU", "tau_e", "tau_i",
                       "N_tot", positive=True)

    @property
    def has_rate(self) -> bool:
        return True

    def rate_hz(self, activity: np.ndarray) -> np.ndarray:
        """Rate (Hz) = 1000 E."""
        return 1000.0 * np.asarray(activity)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZerlautAdaptationSecondOrder(ZerlautAdaptationFirstOrder):
    """TVB's ``ZerlautAdaptationSecondOrder``: the first-order model plus the (co)variances
    C_ee, C_ei, C_ii of the rates (El Boustani & Destexhe 2009), with the transfer functions'
    first and second derivatives by central differences (step 1e-7 kHz, as TVB). The coupling
    reaches the inhibitory population too, scaled by S_i. State E, I, C_ee, C_ei, C_ii, W_e,
    W_i, ou_drift; E, I >= 0 enforced as in TVB."""

    type: ClassVar[str] = "zerlaut_adaptation_second_order"
    state_variables: ClassVar[tuple[str, ...]] = ("E", "I", "C_ee", "C_ei", "C_ii", "W_e", "W_i", "ou_drift")
    state_units: ClassVar[str] = "kHz (E, I), kHz^2 (C_ee, C_ei, C_ii), pA (W_e, W_i), kHz (ou_drift)"
    bounds: ClassVar[tuple | None] = ((0.0, 0.0, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf),
                                      (np.inf,) * 8)


MODELS = (JansenRit, WilsonCowan, MontbrioPazoRoxin, ReducedWongWang, Generic2dOscillator, Kuramoto,
          ZerlautAdaptationFirstOrder, ZerlautAdaptationSecondOrder)


def _check_params_complete() -> None:
    # every declared parameter is a field: a typo here would silently hand the kernel garbage
    for m in MODELS:
        names = {f.name for f in fields(m)}
        missing = [p for p in m.params if p not in names]
        assert not missing, (m.__name__, missing)


_check_params_complete()
