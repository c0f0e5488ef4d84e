"""Neuron models of the point-neuron network: nested specs whose ``type`` picks the model.

All are NEST's. The LIF models are integrated exactly as NEST does (Rotter & Diesmann 1999):
the membrane and synaptic currents are linear between spikes, so one step of h ms is a fixed
linear map (propagators below); spikes fall on the step grid; the refractory period is a whole
number of steps (t_ref / h rounded). Izhikevich's model is nonlinear and takes NEST's forward
Euler step. Units are NEST's: mV, ms, pF, pA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.specs import SpecFamily
from ...coordinator.validation import fail, require_number
from . import _kernels as K


class NeuronModel(SpecFamily):
    """Base of the neuron models: a nested spec whose ``type`` picks the model on the wire."""

    __slots__ = ()
    kind: ClassVar[int] = -1
    #: units of a synaptic weight onto this model
    weight_units: ClassVar[str] = ""
    #: units of the currents into this model (i_e, current_in, noise)
    current_units: ClassVar[str] = "pA"
    family: ClassVar[str] = 'neuron model'
    _kinds: ClassVar[dict[str, type]] = {}



    def _check_common(self) -> None:
        require_number(self, "tau_m_ms", "c_m_pF", positive=True)
        require_number(self, "t_ref_ms", nonnegative=True)
        require_number(self, "e_l_mV", "v_th_mV", "v_reset_mV", "i_e_pA")
        require_number(self, "v_init_mV", allow_none=True)
        if self.v_reset_mV >= self.v_th_mV:
            raise fail(self, f"'v_reset_mV' must be below 'v_th_mV' (got {self.v_reset_mV} >= {self.v_th_mV})")

    def v0(self) -> float:
        """Initial membrane potential (mV)."""
        return self.e_l_mV if self.v_init_mV is None else self.v_init_mV

    def bias(self, size: int, rng: np.random.Generator) -> np.ndarray | None:
        """(size,) constant current per neuron added to ``i_e`` (the model's current units), or
        None where the neurons are identical."""
        return None

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        """(N_PAR,) row of the kernel's parameter table for a step of dt_ms (drive columns 0)."""
        h = dt_ms
        p = np.zeros(K.N_PAR)
        p[K.P_DECAY_V] = math.exp(-h / self.tau_m_ms)
        p[K.P_CURRENT] = -self.tau_m_ms / self.c_m_pF * math.expm1(-h / self.tau_m_ms)
        p[K.P_THETA] = self.v_th_mV - self.e_l_mV
        p[K.P_RESET] = self.v_reset_mV - self.e_l_mV
        p[K.P_IE] = self.i_e_pA
        p[K.P_REF] = round(self.t_ref_ms / h)
        p[K.P_RATE2LAM] = h * 1e-3
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class _Lif(NeuronModel):
    """The parameters both LIF models share (NEST's names and defaults; mV, ms, pF, pA)."""

    tau_m_ms: float = 10.0
    c_m_pF: float = 250.0
    e_l_mV: float = -70.0
    v_th_mV: float = -55.0
    v_reset_mV: float = -70.0
    t_ref_ms: float = 2.0
    i_e_pA: float = 0.0

    def __post_init__(self) -> None:
        self._check_common()


@dataclass(frozen=True, slots=True, kw_only=True)
class IafPscDelta(_Lif):
    """Leaky integrate-and-fire, delta synapses (NEST's ``iaf_psc_delta``; NEST's defaults).

    C dV/dt = -(C / tau_m)(V - E_L) + I_e + I(t); a spike of weight w (mV) makes V jump by w.
    Input arriving while refractory is discarded. Weights are in mV.
    """

    type: ClassVar[str] = "iaf_psc_delta"
    kind: ClassVar[int] = K.DELTA
    weight_units: ClassVar[str] = "mV"

    v_init_mV: float | None = None


def _syn_propagator(tau_s: float, tau_m: float, c_m: float, h: float) -> float:
    """Effect on V (mV) after h of a unit (1 pA) exponential current decaying with tau_s, V
    starting at 0: the exact solution, with its limit where tau_s == tau_m (NEST's
    propagator_32 without its numerical guard)."""
    if abs(tau_m - tau_s) < 1e-12 * tau_m:
        return h / c_m * math.exp(-h / tau_m)
    return (tau_s * tau_m / (c_m * (tau_m - tau_s))
            * (math.exp(-h / tau_m) - math.exp(-h / tau_s)))


@dataclass(frozen=True, slots=True, kw_only=True)
class IafPscExp(_Lif):
    """Leaky integrate-and-fire, exponential current synapses (NEST's ``iaf_psc_exp``).

    C dV/dt = -(C / tau_m)(V - E_L) + I_ex + I_in + I_e + I(t); tau_syn dI_x/dt = -I_x; a spike
    of weight w (pA) makes I_ex jump by w if w >= 0, else I_in. The currents keep evolving while
    refractory (only V is clamped). Weights are in pA.
    """

    type: ClassVar[str] = "iaf_psc_exp"
    kind: ClassVar[int] = K.EXP
    weight_units: ClassVar[str] = "pA"

    tau_syn_ex_ms: float = 2.0
    tau_syn_in_ms: float = 2.0
    v_init_mV: float | None = None

    def __post_init__(self) -> None:
        self._check_common()
        require_number(self, "tau_syn_ex_ms", "tau_syn_in_ms", positive=True)

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        p = NeuronModel.kernel_params(self, dt_ms)
        h = dt_ms
        p[K.P_DECAY_EX] = math.exp(-h / self.tau_syn_ex_ms)
        p[K.P_DECAY_IN] = math.exp(-h / self.tau_syn_in_ms)
        p[K.P_SYN_EX] = _syn_propagator(self.tau_syn_ex_ms, self.tau_m_ms, self.c_m_pF, h)
        p[K.P_SYN_IN] = _syn_propagator(self.tau_syn_in_ms, self.tau_m_ms, self.c_m_pF, h)
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class Izhikevich(NeuronModel):
    """Izhikevich (2003) neuron as NEST's ``izhikevich`` (consistent_integration, its defaults).

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I_e + I(t), du/dt = a (b v - u) (v in mV, t in ms), one
    forward Euler step per dt from the values at the start of the step (NEST's scheme: exact
    integration does not apply, so results depend on dt as NEST's do). At v >= v_th_mV: v = c,
    u += d; no refractory period. Spike weights (mV) add to v. I is in NEST's units (pA, used
    as is in the equation).
    """

    type: ClassVar[str] = "izhikevich"
    kind: ClassVar[int] = K.IZHIKEVICH
    weight_units: ClassVar[str] = "mV"
    #: the equation's voltages are absolute (no resting potential parameter)
    e_l_mV: ClassVar[float] = 0.0

    a: float = 0.02
    b: float = 0.2
    c_mV: float = -65.0
    d: float = 8.0
    v_th_mV: float = 30.0
    i_e_pA: float = 0.0
    v_init_mV: float | None = -65.0
    u_init: float | None = None

    def __post_init__(self) -> None:
        require_number(self, "a", "b", "c_mV", "d", "v_th_mV", "i_e_pA")
        require_number(self, "v_init_mV", "u_init", allow_none=True)
        if self.c_mV >= self.v_th_mV:
            raise fail(self, f"'c_mV' (the reset) must be below 'v_th_mV' (got {self.c_mV} >= {self.v_th_mV})")

    def v0(self) -> float:
        return -65.0 if self.v_init_mV is None else self.v_init_mV

    def u0(self, v0):
        """Initial recovery variable: ``u_init``, or b * v0 (NEST's default U_m = b V_m)."""
        return self.b * v0 if self.u_init is None else self.u_init

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        p = np.zeros(K.N_PAR)
        p[K.P_DECAY_V] = 1.0
        p[K.P_CURRENT] = dt_ms           # Euler: v gains dt * I per step
        p[K.P_THETA] = self.v_th_mV
        p[K.P_RESET] = self.c_mV
        p[K.P_IE] = self.i_e_pA
        p[K.P_RATE2LAM] = dt_ms * 1e-3
        p[K.P_IZH_A] = self.a
        p[K.P_IZH_B] = self.b
        p[K.P_IZH_D] = self.d
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class QIF(NeuronModel):
    """Quadratic integrate-and-fire neurons of Montbrió, Pazó & Roxin (2015), whose population
    the MontbrioPazoRoxin neural mass describes exactly (in the limit of many neurons).

    tau dV_j/dt = V_j^2 + eta_j + I_e + I(t) + tau sum_k w_k delta(t - t_k), V dimensionless,
    tau in ms. The eta_j follow a Lorentzian of centre ``eta_bar`` and half-width ``delta``:
    with ``eta_sampling='quantiles'`` the paper's deterministic choice eta_j = eta_bar +
    delta tan(pi/2 (2j - N - 1) / (N + 1)), j = 1..N; with 'random', independent draws from the
    solver's generator. Integrated exactly over each step with the input held (the solution
    of V' = V^2 + c); a spike input of weight w makes V jump by w, so an all-to-all projection
    of weight J / N gives the paper's coupling J tau r(t). At V >= v_peak, V is set to v_reset
    and held there for ``t_ref_ms`` (default 2 tau / v_peak, the time a free neuron takes from
    v_peak to infinity and back from minus infinity to -v_peak); the spike is emitted half-way
    through (the paper's scheme, with v_peak = -v_reset = 100). Currents (``i_e``,
    ``current_in``, noise) are dimensionless as V.
    """

    type: ClassVar[str] = "qif"
    kind: ClassVar[int] = K.QIF
    weight_units: ClassVar[str] = ""
    current_units: ClassVar[str] = ""
    e_l_mV: ClassVar[float] = 0.0

    tau_m_ms: float = 10.0
    eta_bar: float = -5.0
    delta: float = 1.0
    eta_sampling: str = "quantiles"
    v_peak: float = 100.0
    v_reset: float = -100.0
    t_ref_ms: float | None = None
    i_e: float = 0.0
    v_init_mV: float | None = None

    def __post_init__(self) -> None:
        require_number(self, "tau_m_ms", "v_peak", positive=True)
        require_number(self, "delta", nonnegative=True)
        require_number(self, "eta_bar", "v_reset", "i_e")
        require_number(self, "t_ref_ms", nonnegative=True, allow_none=True)
        require_number(self, "v_init_mV", allow_none=True)
        if self.eta_sampling not in ("quantiles", "random"):
            raise fail(self, f"'eta_sampling' must be 'quantiles' or 'random' (got {self.eta_sampling!r})")
        if self.v_reset >= self.v_peak:
            raise fail(self, f"'v_reset' must be below 'v_peak' (got {self.v_reset} >= {self.v_peak})")

    @property
    def refractory_ms(self) -> float:
        """The refractory time (ms): ``t_ref_ms``, or 2 tau / v_peak."""
        return 2.0 * self.tau_m_ms / self.v_peak if self.t_ref_ms is None else self.t_ref_ms

    def v0(self) -> float:
        """Initial V (dimensionless): ``v_init_mV`` (the name the populations share), else 0."""
        return 0.0 if self.v_init_mV is None else self.v_init_mV

    def etas(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """(size,) eta_j: the Lorentzian's quantiles, or random draws (see the class docstring)."""
        if self.eta_sampling == "quantiles":
            j = np.arange(1, size + 1)
            return self.eta_bar + self.delta * np.tan(0.5 * np.pi * (2 * j - size - 1) / (size + 1))
        return self.eta_bar + self.delta * np.tan(np.pi * (rng.random(size) - 0.5))

    def bias(self, size, rng):
        return self.etas(size, rng)

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        h = dt_ms
        p = np.zeros(K.N_PAR)
        p[K.P_CURRENT] = 1.0
        p[K.P_THETA] = self.v_peak
        p[K.P_RESET] = self.v_reset
        p[K.P_IE] = self.i_e
        nref = round(self.refractory_ms / h)
        p[K.P_REF] = nref
        p[K.P_HALF] = min(nref, round(0.5 * self.refractory_ms / h))
        p[K.P_HT] = h / self.tau_m_ms
        p[K.P_RATE2LAM] = h * 1e-3
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class _CondBase(NeuronModel):
    """What the RK4-integrated exponential-synapse models share (NEST's names; mV, ms, pF, nS, pA)."""

    kind: ClassVar[int] = K.COND
    weight_units: ClassVar[str] = "nS"
    _psc: ClassVar[bool] = False
    _inside: ClassVar[bool] = True

    def _check(self) -> None:
        require_number(self, "c_m_pF", "g_l_nS", "tau_syn_ex_ms", "tau_syn_in_ms", "substep_ms", positive=True)
        require_number(self, "t_ref_ms", nonnegative=True)
        require_number(self, "e_l_mV", "v_th_mV", "v_reset_mV", "i_e_pA")
        require_number(self, "v_init_mV", allow_none=True)
        if self.v_reset_mV >= self.v_th_mV:
            raise fail(self, f"'v_reset_mV' must be below 'v_th_mV' (got {self.v_reset_mV} >= {self.v_th_mV})")

    def _fill(self, p: np.ndarray, h: float) -> None:
        p[K.P_GL] = self.g_l_nS
        p[K.P_CM] = self.c_m_pF
        p[K.P_EL] = self.e_l_mV
        p[K.P_RESET] = self.v_reset_mV - self.e_l_mV
        p[K.P_IE] = self.i_e_pA
        p[K.P_REF] = round(self.t_ref_ms / h)
        p[K.P_TAU_EX] = self.tau_syn_ex_ms
        p[K.P_TAU_IN] = self.tau_syn_in_ms
        p[K.P_NSUB] = max(1, math.ceil(h / self.substep_ms - 1e-9))
        p[K.P_HT] = h
        p[K.P_CURRENT] = h / self.c_m_pF      # noise: the V increment per pA over a step
        p[K.P_RATE2LAM] = h * 1e-3
        p[K.P_INSIDE] = 1.0 if self._inside else 0.0
        p[K.P_PSC] = 1.0 if self._psc else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class IafCondExp(_CondBase):
    """Leaky integrate-and-fire with exponential conductances, NEST's ``iaf_cond_exp`` (its
    names and defaults).

    C dV/dt = -g_L (V - E_L) - g_ex (V - E_ex) - g_in (V - E_in) + I_e + I(t);
    tau_syn_x dg_x/dt = -g_x; a spike of weight w (nS) adds w to g_ex (w >= 0) or -w to g_in.
    V >= V_th at the end of a step: spike stamped there, V = V_reset for t_ref. NEST integrates
    with adaptive RKF45 (GSL); here classical RK4 in substeps of at most ``substep_ms``
    (polyscale's; 0.01 ms keeps the error far below NEST's 1e-6 local tolerance's effect on
    spike times).
    """

    type: ClassVar[str] = "iaf_cond_exp"
    _inside: ClassVar[bool] = False

    c_m_pF: float = 250.0
    g_l_nS: float = 16.6667
    e_l_mV: float = -70.0
    e_ex_mV: float = 0.0
    e_in_mV: float = -85.0
    v_th_mV: float = -55.0
    v_reset_mV: float = -60.0
    t_ref_ms: float = 2.0
    tau_syn_ex_ms: float = 0.2
    tau_syn_in_ms: float = 2.0
    i_e_pA: float = 0.0
    v_init_mV: float | None = None
    substep_ms: float = 0.01

    def __post_init__(self) -> None:
        self._check()
        require_number(self, "e_ex_mV", "e_in_mV")

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        p = np.zeros(K.N_PAR)
        self._fill(p, dt_ms)
        p[K.P_THETA] = self.v_th_mV - self.e_l_mV
        p[K.P_EEX] = self.e_ex_mV
        p[K.P_EIN] = self.e_in_mV
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class AeifCondExp(_CondBase):
    """Adaptive exponential integrate-and-fire (Brette & Gerstner 2005) with exponential
    conductances, NEST's ``aeif_cond_exp`` (its names and defaults; mV, ms, pF, nS, pA).

    C dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_th) / Delta_T) - g_ex (V - E_ex)
              - g_in (V - E_in) - w + I_e + I(t)
    tau_w dw/dt = a (V - E_L) - w;  tau_syn_x dg_x/dt = -g_x (weights as iaf_cond_exp).
    V is capped at V_peak inside the equations (NEST's guard). When V >= V_peak (V_th if
    Delta_T = 0) after a substep: V = V_reset, w += b, refractory (V held) for t_ref; the
    spike is stamped at the step's end, as NEST's. RK4 substeps of at most ``substep_ms`` in
    place of NEST's adaptive RKF45: the reset falls at the end of the substep in which V
    crossed V_peak instead of at NEST's adaptive step, which shifts later spikes by a few
    substeps at most.
    """

    type: ClassVar[str] = "aeif_cond_exp"

    c_m_pF: float = 281.0
    g_l_nS: float = 30.0
    e_l_mV: float = -70.6
    e_ex_mV: float = 0.0
    e_in_mV: float = -85.0
    delta_t_mV: float = 2.0
    v_th_mV: float = -50.4
    v_peak_mV: float = 0.0
    v_reset_mV: float = -60.0
    a_nS: float = 4.0
    b_pA: float = 80.5
    tau_w_ms: float = 144.0
    t_ref_ms: float = 0.0
    tau_syn_ex_ms: float = 0.2
    tau_syn_in_ms: float = 2.0
    i_e_pA: float = 0.0
    v_init_mV: float | None = None
    w_init_pA: float = 0.0
    substep_ms: float = 0.01

    def __post_init__(self) -> None:
        self._check()
        require_number(self, "e_ex_mV", "e_in_mV", "v_peak_mV", "a_nS", "b_pA", "w_init_pA")
        require_number(self, "delta_t_mV", nonnegative=True)
        require_number(self, "tau_w_ms", positive=True)
        if self.delta_t_mV > 0 and self.v_peak_mV < self.v_th_mV:
            raise fail(self, f"'v_peak_mV' must be >= 'v_th_mV' (got {self.v_peak_mV} < {self.v_th_mV})")

    def kernel_params(self, dt_ms: float) -> np.ndarray:
        p = np.zeros(K.N_PAR)
        self._fill(p, dt_ms)
        p[K.P_THETA] = (self.v_peak_mV if self.delta_t_mV > 0 else self.v_th_mV) - self.e_l_mV
        p[K.P_EEX] = getattr(self, "e_ex_mV", 0.0)
        p[K.P_EIN] = getattr(self, "e_in_mV", 0.0)
        p[K.P_DELTA_T] = self.delta_t_mV
        p[K.P_VT] = self.v_th_mV
        p[K.P_A] = self.a_nS
        p[K.P_B] = self.b_pA
        p[K.P_TAU_W] = self.tau_w_ms
        return p


@dataclass(frozen=True, slots=True, kw_only=True)
class AeifPscExp(AeifCondExp):
    """AdEx with exponential current synapses, NEST's ``aeif_psc_exp``: as AeifCondExp with
    -g_ex (V - E_ex) - g_in (V - E_in) replaced by I_ex + I_in; a spike of weight w (pA) adds
    to I_ex (w >= 0) or to the (negative) I_in. E_ex, E_in are unused."""

    type: ClassVar[str] = "aeif_psc_exp"
    weight_units: ClassVar[str] = "pA"
    _psc: ClassVar[bool] = True
