"""BOLD fMRI: the Balloon-Windkessel haemodynamic model driven by region or population activity.

Per channel (a region, or a population), with neuronal drive z(t) (1/s):

    ds/dt = z - kappa s - gamma (f - 1)                  vasodilatory signal (1/s)
    df/dt = s                                            inflow f (resting 1)
    tau0 dv/dt = f - v^(1/alpha)                         venous volume v (resting 1)
    tau0 dq/dt = f E(f)/E0 - v^(1/alpha) q / v           deoxyhaemoglobin q (resting 1)
    E(f) = 1 - (1 - E0)^(1/f)
    y = 100 V0 [k1 (1 - q) + k2 (1 - q/v) + k3 (1 - v)]  BOLD signal change (%)

(Friston et al. 2000, eqs. 1-3, after Buxton et al. 1998; Stephan et al. 2007, eqs. 4-13).
Output coefficients: 'classic' k1 = 7 E0, k2 = 2, k3 = 2 E0 - 0.2 (Friston et al. 2000, after
Buxton 1998); 'revised' k1 = 4.3 nu0 E0 TE, k2 = epsilon r0 E0 TE, k3 = 1 - epsilon (Stephan et
al. 2007, eq. 12).

Parameter sets (``parameters``):

* 'friston2000': kappa 0.65 /s, gamma 0.41 /s, tau0 0.98 s, alpha 0.32, E0 0.34, V0 0.02,
  classic coefficients: the estimates Friston et al. 2000 report, which DCM took as its priors
  (Friston et al. 2003). Its unit-area impulse response peaks 2.86 s after the pulse.
* 'stephan2007': the same haemodynamic constants with the revised coefficients at 1.5 T
  (nu0 40.3 Hz, r0 25 Hz, TE 0.04 s), epsilon 1, V0 0.04 (Stephan et al. 2007). SPM's DCM
  (since 2008) uses a transit time tau0 of 2 s instead: set ``tau0_s=2.0`` for that.
* 'tvb': TVB's BalloonModel defaults (revised coefficients; tau_s 1.54 s, tau_f 1.44 s,
  tau0 0.98 s, alpha 0.32, E0 0.4, V0 0.04, TE 0.04 s, nu0 40.3 Hz, r0 25 Hz, epsilon 0.5).

Every constant can be overridden. The drive is the activity of each channel normalised as
z = efficacy * (x - baseline) (1/s): ``x`` a sampled port's value (its units) averaged over the
internal step, or a spike port's population rate (Hz, spikes of the selected neurons per neuron
and second over the step). With x = baseline the model rests at exactly s = 0, f = v = q = 1,
y = 0.

The local part, in each solver's process, delivers z at every internal step (``dt_ms``); the
global part integrates the ODE (classic fourth-order Runge-Kutta, z held over each step) and
keeps its state between windows, writing y at every multiple of the TR, which need not divide
the window.

References
----------
Buxton RB, Wong EC, Frank LR (1998) Dynamics of blood flow and oxygenation changes during brain
    activation: the balloon model. Magn Reson Med 39:855-864.
Friston KJ, Mechelli A, Turner R, Price CJ (2000) Nonlinear responses in fMRI: the Balloon
    model, Volterra kernels, and other hemodynamics. NeuroImage 12:466-477.
Friston KJ, Harrison L, Penny W (2003) Dynamic causal modelling. NeuroImage 19:1273-1302.
Stephan KE, Weiskopf N, Drysdale PM, Robinson PA, Friston KJ (2007) Comparing hemodynamic models
    with DCM. NeuroImage 38:387-401.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.model import Endpoint
from ..coordinator.signals import Port, WindowResult
from ..coordinator.specs import ProbeInfo, ProbeSpec
from ..coordinator.time import TICKS_PER_MS, fmt_ms, lcm, to_ticks
from ..coordinator.validation import as_tuple, fail, require_choice, require_number
from ..solvers._jit import njit
from .calcium import ColumnsInfo, port_addresses

#: The parameter sets (times in s, rates in 1/s or Hz); see the module docstring for sources.
PARAMETER_SETS: dict[str, dict] = {
    "friston2000": {"tau_s_s": 1.0 / 0.65, "tau_f_s": 1.0 / 0.41, "tau0_s": 0.98, "alpha": 0.32,
                    "e0": 0.34, "v0": 0.02, "coefficients": "classic", "te_s": 0.04,
                    "nu0_hz": 40.3, "r0_hz": 25.0, "epsilon": 1.0},
    "stephan2007": {"tau_s_s": 1.0 / 0.65, "tau_f_s": 1.0 / 0.41, "tau0_s": 0.98, "alpha": 0.32,
                    "e0": 0.34, "v0": 0.04, "coefficients": "revised", "te_s": 0.04,
                    "nu0_hz": 40.3, "r0_hz": 25.0, "epsilon": 1.0},
    "tvb": {"tau_s_s": 1.54, "tau_f_s": 1.44, "tau0_s": 0.98, "alpha": 0.32, "e0": 0.4,
            "v0": 0.04, "coefficients": "revised", "te_s": 0.04, "nu0_hz": 40.3, "r0_hz": 25.0,
            "epsilon": 0.5},
}
_NUMERIC = ("tau_s_s", "tau_f_s", "tau0_s", "alpha", "e0", "v0", "te_s", "nu0_hz", "r0_hz", "epsilon")


@dataclass(frozen=True, slots=True, kw_only=True)
class BOLD(ProbeSpec):
    """BOLD signal change (%) per channel, sampled every TR.

    Parameters
    ----------
    inputs : addresses of the driving ports, in channel order: a sampled port ('solver.port',
        'solver.port[a:b]') gives one channel per selected column; a spike port gives one
        channel, the population rate of the selected neurons
    parameters : 'stephan2007', 'friston2000' or 'tvb' (see PARAMETER_SETS)
    tau_s_s, tau_f_s, tau0_s, alpha, e0, v0, te_s, nu0_hz, r0_hz, epsilon, coefficients :
        overrides of the set (None keeps it); kappa = 1/tau_s, gamma = 1/tau_f
    efficacy : z = efficacy * (x - baseline), in 1/s per unit of the input; one number, or one
        per input address
    baseline : activity that leaves the model at rest (units of the input); one number, or one
        per input address
    tr_ms : repetition time (ms): one sample per TR from t = 0
    dt_ms : internal step (ms) of the ODE and of the delivered drive; None: the largest common
        divisor of the window and the TR that is at most 1 ms and a multiple of the sampled
        inputs' periods
    positions_um : (n_channels, 3) region/population positions for the run file, or None
    """

    type: ClassVar[str] = "bold"
    modality: ClassVar[str] = "bold"

    inputs: tuple
    parameters: str = "stephan2007"
    tau_s_s: float | None = None
    tau_f_s: float | None = None
    tau0_s: float | None = None
    alpha: float | None = None
    e0: float | None = None
    v0: float | None = None
    te_s: float | None = None
    nu0_hz: float | None = None
    r0_hz: float | None = None
    epsilon: float | None = None
    coefficients: str | None = None
    efficacy: float | tuple = 1.0
    baseline: float | tuple = 0.0
    tr_ms: float = 2000.0
    dt_ms: float | None = None
    positions_um: tuple | None = None

    def __post_init__(self) -> None:
        addrs = port_addresses(self, "inputs")
        require_choice(self, "parameters", tuple(PARAMETER_SETS))
        require_number(self, "tau_s_s", "tau_f_s", "tau0_s", "alpha", "e0", "v0", "te_s", "nu0_hz",
                       "r0_hz", positive=True, allow_none=True)
        require_number(self, "epsilon", nonnegative=True, allow_none=True)
        if self.coefficients is not None:
            require_choice(self, "coefficients", ("classic", "revised"))
        for name in ("efficacy", "baseline"):
            v = getattr(self, name)
            if isinstance(v, (list, tuple)):
                vals = as_tuple(self, name, float)
                if len(vals) != len(addrs) or not np.isfinite(vals).all():
                    raise fail(self, f"{name!r} must be one finite number or one per input "
                                     f"({len(addrs)}) (got {v!r})")
            else:
                require_number(self, name)
        require_number(self, "tr_ms", positive=True)
        require_number(self, "dt_ms", positive=True, allow_none=True)
        to_ticks(self.tr_ms, "bold: tr_ms")
        if self.dt_ms is not None:
            to_ticks(self.dt_ms, "bold: dt_ms")
        if not self.params()["e0"] < 1.0:
            raise fail(self, f"'e0' must be a fraction < 1 (got {self.params()['e0']!r})")
        if self.positions_um is not None:
            pos = np.asarray(as_tuple(self, "positions_um", float))
            if pos.ndim != 2 or pos.shape[1] != 3 or not np.isfinite(pos).all():
                raise fail(self, f"'positions_um' must be (n_channels, 3) finite numbers "
                                 f"(got shape {pos.shape})")

    @classmethod
    def example(cls) -> "BOLD":
        return cls(inputs=("brain.rate", "net.E.spikes[0:100]"), parameters="friston2000",
                   efficacy=0.01, baseline=5.0, tr_ms=720.0, epsilon=0.8)

    # -- parameters ------------------------------------------------------------------------
    def params(self) -> dict:
        """The parameter set with this spec's overrides applied."""
        p = dict(PARAMETER_SETS[self.parameters])
        for k in (*_NUMERIC, "coefficients"):
            v = getattr(self, k)
            if v is not None:
                p[k] = v
        return p

    def constants(self) -> np.ndarray:
        """[kappa, gamma, 1/tau0, 1/alpha, E0, 100 V0, k1, k2, k3] for the kernel."""
        p = self.params()
        e0 = p["e0"]
        if p["coefficients"] == "classic":
            k = (7.0 * e0, 2.0, 2.0 * e0 - 0.2)
        else:
            k = (4.3 * p["nu0_hz"] * e0 * p["te_s"], p["epsilon"] * p["r0_hz"] * e0 * p["te_s"],
                 1.0 - p["epsilon"])
        return np.array([1.0 / p["tau_s_s"], 1.0 / p["tau_f_s"], 1.0 / p["tau0_s"], 1.0 / p["alpha"],
                         e0, 100.0 * p["v0"], *k])

    # -- the probe protocol ----------------------------------------------------------------
    def _sources(self) -> list[Endpoint]:
        return [Endpoint.parse(a, "bold: inputs") for a in self.inputs]

    def _per_input(self, name: str) -> np.ndarray:
        v = getattr(self, name)
        return np.array(v, dtype=np.float64) if isinstance(v, tuple) else np.full(len(self.inputs), float(v))

    def solvers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ep.solver for ep in self._sources()))

    def describe(self, ports: Mapping[str, Mapping[str, Port]], window_ticks: int) -> ColumnsInfo:
        columns, n, periods = [], 0, []
        for ep in self._sources():
            p = ports[ep.solver].get(ep.port)
            if p is None or p.direction != "out":
                have = [k for k, q in ports[ep.solver].items() if q.direction == "out"]
                raise ModelError(f"solver {ep.solver!r} has no output port {ep.port!r} "
                                 f"(has: {', '.join(map(repr, have)) or 'none'})")
            sel = ep.resolve(p.size, "bold: inputs")
            columns.append((ep.solver, ep.port, tuple(sel), n))
            n += len(sel) if p.sampled else 1
            if p.sampled:
                periods.append(p.period_ticks)
        base = lcm(periods)
        if self.dt_ms is not None:
            h = to_ticks(self.dt_ms, "bold: dt_ms")
            bad = [ep.text for ep, q in zip(self._sources(), [ports[e.solver][e.port] for e in self._sources()])
                   if q.sampled and h % q.period_ticks]
            if bad:
                raise ModelError(f"dt_ms={self.dt_ms:g} is not a multiple of the sample period of "
                                 f"{bad[0]}")
        else:
            # the largest multiple of the inputs' periods that divides the window and the TR,
            # up to 1 ms
            g = math.gcd(window_ticks, to_ticks(self.tr_ms, "bold: tr_ms"))
            h = base
            for d in range(min(g, TICKS_PER_MS) // base, 0, -1):
                if g % (d * base) == 0:
                    h = d * base
                    break
        if window_ticks % h:
            raise ModelError(f"the internal step dt_ms={h / TICKS_PER_MS:g} does not divide the "
                             f"window ({fmt_ms(window_ticks)}); give a dt_ms that does")
        tr = to_ticks(self.tr_ms, "bold: tr_ms")
        if tr % h:
            raise ModelError(f"tr_ms={self.tr_ms:g} is not a multiple of the internal step "
                             f"({fmt_ms(h)})")
        if self.positions_um is not None and len(self.positions_um) != n:
            raise ModelError(f"'positions_um' has {len(self.positions_um)} rows but the inputs "
                             f"give {n} channels")
        return ColumnsInfo(n_channels=n, period_ticks=tr, units="%", modality=self.modality,
                           positions=self.positions_um, part_period_ticks=h, columns=tuple(columns))

    def local(self, solver_name: str, solver, ports: Mapping[str, Port], info: ColumnsInfo):
        h = info.part_period
        effs, bases = self._per_input("efficacy"), self._per_input("baseline")
        mine = [(port, np.asarray(sel, dtype=np.int64), first, ports[port], effs[i], bases[i])
                for i, (sname, port, sel, first) in enumerate(info.columns) if sname == solver_name]

        def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
            k = (t1 - t0) // h
            z = np.zeros((k, info.n_channels))
            for port, sel, first, p, eff, base in mine:
                sig = result.outputs[port]
                if p.sampled:
                    m = h // p.period_ticks
                    x = np.asarray(sig.data)[:, sel].reshape(k, m, len(sel)).mean(axis=1)
                    z[:, first:first + len(sel)] = eff * (x - base)
                else:
                    keep = np.isin(np.asarray(sig.ids), sel) if len(sel) != p.size else slice(None)
                    bins = (np.asarray(sig.ticks)[keep] - t0) // h
                    counts = np.bincount(bins, minlength=k)[:k] if len(bins) else np.zeros(k)
                    rate_hz = counts / (len(sel) * h / TICKS_PER_MS * 1e-3)
                    z[:, first] = eff * (rate_hz - base)
            return z
        return part

    def combine(self, info: ColumnsInfo):
        return _Haemodynamics(self.constants(), info)


class _Haemodynamics:
    """The global stage: the ODE state of every channel, carried between windows."""

    def __init__(self, c: np.ndarray, info: ProbeInfo):
        self.c = c
        self.h = info.part_period
        self.tr = info.period_ticks
        self.x = np.zeros((4, info.n_channels))
        self.x[1:] = 1.0            # s = 0, f = v = q = 1: rest

    def __call__(self, t0: int, t1: int, parts: Mapping[str, np.ndarray]) -> np.ndarray:
        z = np.sum([parts[name] for name in sorted(parts)], axis=0)
        y = np.empty_like(z)
        balloon_advance(self.x, np.ascontiguousarray(z), self.h / TICKS_PER_MS * 1e-3, self.c, y)
        steps = t0 + self.h * np.arange(z.shape[0])
        return y[steps % self.tr == 0]


@njit
def _rhs(s, f, v, q, z, c):
    kappa, gamma, itau, ialpha, e0 = c[0], c[1], c[2], c[3], c[4]
    fv = v ** ialpha
    ds = z - kappa * s - gamma * (f - 1.0)
    dv = itau * (f - fv)
    dq = itau * (f * (1.0 - (1.0 - e0) ** (1.0 / f)) / e0 - fv * q / v)
    return ds, s, dv, dq


@njit
def balloon_advance(x, z, dt_s, c, y):
    """Advance the balloon state x (4, n) = (s, f, v, q) by len(z) RK4 steps of dt_s seconds with
    drive z (steps, n) 1/s held over each step; y (steps, n) gets the BOLD signal (%) at the start
    of each step."""
    v0, k1, k2, k3 = c[5], c[6], c[7], c[8]
    for k in range(z.shape[0]):
        for i in range(x.shape[1]):
            s, f, v, q = x[0, i], x[1, i], x[2, i], x[3, i]
            y[k, i] = v0 * (k1 * (1.0 - q) + k2 * (1.0 - q / v) + k3 * (1.0 - v))
            zi = z[k, i]
            a1, b1, c1, d1 = _rhs(s, f, v, q, zi, c)
            h2 = 0.5 * dt_s
            a2, b2, c2, d2 = _rhs(s + h2 * a1, f + h2 * b1, v + h2 * c1, q + h2 * d1, zi, c)
            a3, b3, c3, d3 = _rhs(s + h2 * a2, f + h2 * b2, v + h2 * c2, q + h2 * d2, zi, c)
            a4, b4, c4, d4 = _rhs(s + dt_s * a3, f + dt_s * b3, v + dt_s * c3, q + dt_s * d3, zi, c)
            w = dt_s / 6.0
            x[0, i] = s + w * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
            x[1, i] = f + w * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
            x[2, i] = v + w * (c1 + 2.0 * c2 + 2.0 * c3 + c4)
            x[3, i] = q + w * (d1 + 2.0 * d2 + 2.0 * d3 + d4)
