"""The Virtual Brain (tvb-library) as a polyscale solver: a TVB region simulator, stepped window by
window inside its worker, with region outputs and proxy regions.

The simulator comes either from a user's build callable (``builder='pkg.mod:make_sim'`` or
``'path/to/file.py:make_sim'``, called with ``params``) that returns a TVB ``Simulator`` set up
but not run, or from the spec's own fields: a polyscale :class:`Connectome` (weights, tract
lengths, speed), a TVB model, coupling and integrator named by class, with their parameters.
Either way the simulator is configured here (again, if the build configured it), and advanced
with TVB's own components in the order of ``Simulator.__call__`` (tvb-library 2.10)::

    for each step n (state x_n at t = n dt):
        x_n[proxy variables, proxy regions] = proxy_in(t)    # only with proxies; history(n) too
        c = coupling(n + 1)        # TVB: sim._loop_compute_node_coupling, from the history
        outputs at t are read from x_n                       # the state at the start of the step
        x_{n+1} = integrator(x_n, model, c)                  # TVB: sim.integrate_next_step
        history(n + 1) = x_{n+1}                             # TVB: sim._loop_update_history

Without proxies this is exactly TVB's loop (the same calls on the same arrays), so the
trajectory is TVB's; TVB's monitors are not run (the ports are the outputs), and TVB stimuli
and surface simulations are refused.

Proxy regions (tvb-multiscale's proxy nodes): every step, before the coupling is computed, the
listed state variables of the listed regions are overwritten with the incoming ``proxy_in``
sample for that time and written into TVB's delay history, so the other regions receive the
incoming signal through the connectome, with their delays, as if the proxy region had
produced it. The proxy regions' other state variables are integrated as usual (they no longer
reach anyone, as TVB couples only through the model's coupling variables ``cvar``; list every
coupling variable in ``proxy_variables`` to replace a region entirely). Values before t = 0
are the initial history.

Randomness: an initial history not given, or the part of the delay horizon a builder's
``initial_conditions`` leave out, is drawn uniformly in the model's ``state_variable_range``
(TVB's default, which uses numpy's global generator) from the solver's seeded generator, before
the given samples; a stochastic integrator's noise stream is reseeded from it too, so a run is
reproducible from its seed.

Needs ``pip install 'polyscale[tvb]'`` (tvb-library); this module imports without it, and the
spec says which extra to install when it is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Port, Samples, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import to_ticks
from ..coordinator.validation import as_tuple, fail, is_number, require_int, require_number, require_str
from ..solvers.mass.connectome import Connectome
from ._external import Translation, check_target, load_target, require_extra

EXTRA = "tvb"


# --- translation tables: polyscale's level-III specs and TVB's classes -----------------------
# Both count time in ms and potentials in mV, and polyscale's node models and couplings keep
# TVB's parameter names (solvers/mass), so every factor is 1: said once, here, as data.

#: polyscale's Connectome fields -> TVB Connectivity attributes
CONNECTIVITY = Translation(
    "tvb connectivity",
    ("weights", "weights", 1.0),                 # weights[i, j] from j to i in both
    ("tract_lengths_mm", "tract_lengths", 1.0),  # TVB: mm
    ("speed_mm_per_ms", "speed", 1.0),           # TVB: mm/ms
    ("centres_mm", "centres", 1.0),              # TVB: mm
)
#: polyscale's time fields -> TVB's (ms)
TIME = Translation("tvb time", ("dt_ms", "dt", 1.0), ("period_ms", "period", 1.0))
#: polyscale node model type -> (TVB model class, the region activity as (state variable,
#: coefficient) pairs: what couples regions in RegionNetwork, its ``activity`` port)
MODELS = {
    "jansen_rit": ("JansenRit", (("y1", 1.0), ("y2", -1.0))),
    "wilson_cowan": ("WilsonCowan", (("E", 1.0),)),
    "montbrio_pazo_roxin": ("MontbrioPazoRoxin", (("r", 1.0),)),
    "reduced_wong_wang": ("ReducedWongWang", (("S", 1.0),)),
    "generic_2d_oscillator": ("Generic2dOscillator", (("V", 1.0),)),
}
#: polyscale coupling function type -> TVB coupling class
COUPLINGS = {"linear": "Linear", "sigmoidal_jansen_rit": "SigmoidalJansenRit"}
#: polyscale integrator name -> TVB integrator class
INTEGRATORS = {"euler": "EulerDeterministic", "heun": "HeunDeterministic",
               "rk4": "RungeKutta4thOrderDeterministic", "euler_maruyama": "EulerStochastic",
               "heun_stochastic": "HeunStochastic"}


def _import_tvb():
    """tvb.simulator's modules, or ModelError naming the extra to install."""
    require_extra("tvb.simulator.simulator", EXTRA, "tvb_simulator")
    from tvb.datatypes import connectivity
    from tvb.simulator import coupling, integrators, models, noise, simulator
    return simulator, models, coupling, integrators, noise, connectivity


def _name_tuple(spec, name: str) -> tuple:
    vals = as_tuple(spec, name)
    for v in vals:
        if not isinstance(v, str) or not v:
            raise fail(spec, f"{name!r} must hold state variable names (got {v!r})")
    return vals


@dataclass(frozen=True, slots=True, kw_only=True)
class TVBSimulator(SolverSpec):
    """A TVB region simulator under polyscale.

    Parameters
    ----------
    builder : 'package.module:function' or 'path/to/file.py:function', called in the worker as
        ``function(**params)``; returns a tvb ``Simulator`` (not run). None: build from the fields
        connectome, model, coupling, integrator below.
    params : keyword arguments of the builder (plain data)
    n_regions : number of regions; required with a builder (checked against the simulator),
        else taken from ``connectome``
    connectome : polyscale Connectome (weights[i, j] from j to i, tract lengths mm, speed mm/ms)
    model, model_params : TVB model class in tvb.simulator.models and its parameters
    coupling, coupling_params : TVB coupling class in tvb.simulator.coupling and its parameters
    integrator : TVB integrator class in tvb.simulator.integrators ('HeunDeterministic', ...)
    noise : with a stochastic integrator, TVB's Additive nsig (one per state variable)
    initial_state : (n_sv,) or (n_sv, n_regions): the state at t = 0 and the whole history
        before it (default: drawn in the model's state_variable_range from the solver's
        generator, as TVB does with its own)
    dt_ms : integration step (ms); must be the simulator's ``integrator.dt``
    rates : the region activity on the ``rates`` port: pairs (state variable, coefficient),
        summed, e.g. (('y1', 1.0), ('y2', -1.0)) for Jansen-Rit's y1 - y2 (mV), or
        (('r', 1000.0),) for Montbrio-Pazo-Roxin's r (1/ms) in Hz. Empty: the model's first
        variable of interest, coefficient 1.
    rates_units : units of ``rates``; 'Hz' makes it a rate port, anything else an analog one
    period_ms : sample period of ``rates`` and ``state`` (a multiple of dt; default dt)
    average : False: the value at each sample time; True: the mean over the period that
        starts there: the states at t, t + dt, ..., t + period - dt (as many steps as TVB's
        TemporalAverage, whose blocks sit one step earlier: tests/test_mass_network.py aligns them)
    variables : state variables on the ``state`` port (none: no such port)
    proxy_regions : regions whose state is replaced by ``proxy_in`` (see the module docstring)
    proxy_variables : the state variables replaced there

    Ports
    -----
    rates : out, (n_regions,) every period: the region activity above
    state : out, (len(variables) * n_regions,), variable-major (column v * n + i), only if
        ``variables``
    proxy_in : in, analog (len(proxy_variables) * len(proxy_regions),) every dt, variable-major
        (column v * len(proxy_regions) + q), held over each step; only with proxies
    """

    type: ClassVar[str] = "tvb_simulator"
    level: ClassVar[str] = "III"
    nested: ClassVar[dict] = {"connectome": Connectome}

    builder: str | None = None
    params: dict = field(default_factory=dict)
    n_regions: int | None = None
    connectome: Connectome | None = None
    model: str = "JansenRit"
    model_params: dict = field(default_factory=dict)
    coupling: str = "Linear"
    coupling_params: dict = field(default_factory=dict)
    integrator: str = "HeunDeterministic"
    noise: tuple | None = None
    initial_state: tuple | None = None
    dt_ms: float = 0.1
    rates: tuple = ()
    rates_units: str = ""
    period_ms: float | None = None
    average: bool = False
    variables: tuple = ()
    proxy_regions: tuple = ()
    proxy_variables: tuple = ()

    def __post_init__(self) -> None:
        require_number(self, "dt_ms", positive=True)
        to_ticks(self.dt_ms, "tvb_simulator: dt_ms")
        if self.builder is None:
            if not isinstance(self.connectome, Connectome):
                raise fail(self, f"without a 'builder', 'connectome' must be a Connectome "
                                 f"(got {type(self.connectome).__name__})")
            if self.n_regions is not None and self.n_regions != self.connectome.n:
                raise fail(self, f"'n_regions' is {self.n_regions!r} but the connectome has "
                                 f"{self.connectome.n} regions")
            object.__setattr__(self, "n_regions", self.connectome.n)
            require_str(self, "model", "coupling", "integrator")
        else:
            check_target(self.builder, "tvb_simulator: 'builder'")
            if self.connectome is not None:
                raise fail(self, "give either 'builder' or 'connectome', not both")
            if self.n_regions is None:
                raise fail(self, "with a 'builder', 'n_regions' must say how many regions it makes")
        require_int(self, "n_regions", minimum=1)
        for name in ("params", "model_params", "coupling_params"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise fail(self, f"{name!r} must be a dict with string keys (got {value!r})")
        if self.noise is not None:
            nz = np.array(as_tuple(self, "noise", float))
            if nz.ndim != 1 or not np.isfinite(nz).all() or (nz < 0).any():
                raise fail(self, f"'noise' must be finite numbers >= 0, one per state variable "
                                 f"(got {self.noise!r})")
        if self.initial_state is not None:
            x0 = np.array(as_tuple(self, "initial_state", float))
            if x0.ndim not in (1, 2) or (x0.ndim == 2 and x0.shape[1] != self.n_regions) \
                    or not np.isfinite(x0).all():
                raise fail(self, f"'initial_state' must be (n_sv,) or (n_sv, {self.n_regions}) "
                                 f"finite numbers (got shape {x0.shape})")
        rates = as_tuple(self, "rates")
        for r in rates:
            if not (isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], str) and is_number(r[1])):
                raise fail(self, f"'rates' must hold pairs (state variable, coefficient) (got {r!r})")
        object.__setattr__(self, "rates", tuple((v, float(c)) for v, c in rates))
        if not isinstance(self.rates_units, str):
            raise fail(self, f"'rates_units' must be a string (got {self.rates_units!r})")
        require_number(self, "period_ms", positive=True, allow_none=True)
        if self.period_ms is not None:
            p, d = to_ticks(self.period_ms, "tvb_simulator: period_ms"), self.dt_ticks
            if p % d:
                raise fail(self, f"'period_ms' ({self.period_ms:g}) must be a multiple of dt_ms "
                                 f"({self.dt_ms:g})")
        if not isinstance(self.average, bool):
            raise fail(self, f"'average' must be True or False (got {self.average!r})")
        _name_tuple(self, "variables")
        pv = _name_tuple(self, "proxy_variables")
        pr = as_tuple(self, "proxy_regions")
        for r in pr:
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < self.n_regions:
                raise fail(self, f"'proxy_regions' must hold region indices in [0, {self.n_regions}) "
                                 f"(got {r!r})")
        if len(set(pr)) != len(pr):
            raise fail(self, f"'proxy_regions' lists a region twice (got {pr!r})")
        object.__setattr__(self, "proxy_regions", tuple(int(r) for r in pr))
        if bool(pr) != bool(pv):
            raise fail(self, "'proxy_regions' and 'proxy_variables' go together: give both or neither "
                             f"(got {len(pr)} regions, {len(pv)} variables)")

    @classmethod
    def example(cls) -> "TVBSimulator":
        return cls(connectome=Connectome.example(), coupling="SigmoidalJansenRit",
                   rates=(("y1", 1.0), ("y2", -1.0)), rates_units="mV",
                   initial_state=(0.0,) * 6, proxy_regions=(1,), proxy_variables=("y1", "y2"))

    @classmethod
    def from_region_network(cls, spec, **fields) -> "TVBSimulator":
        """The TVBSimulator running in TVB what a RegionNetwork spec runs in polyscale: same
        connectome, node model, coupling, integrator, noise, initial state and dt (through the
        tables above), its ``rates`` the network's ``activity``. ``fields`` override or add
        (period_ms, variables, proxies, ...). Not translated: multiplicative noise and replaced
        regions (give proxy_regions / proxy_variables instead)."""
        from ..solvers.mass.network import RegionNetwork
        if not isinstance(spec, RegionNetwork):
            raise ModelError(f"tvb_simulator: from_region_network needs a RegionNetwork spec "
                             f"(got {type(spec).__name__})")
        for what, key, table in (("node model", spec.model.type, MODELS),
                                 ("coupling", spec.coupling.type, COUPLINGS),
                                 ("integrator", spec.integrator, INTEGRATORS)):
            if key not in table:
                raise ModelError(f"tvb_simulator: no TVB {what} for {key!r} (known: "
                                 f"{', '.join(sorted(table))})")
        if spec.noise is not None and spec.noise_kind != "additive":
            raise ModelError("tvb_simulator: only additive noise is translated to TVB "
                             f"(got noise_kind={spec.noise_kind!r})")
        if spec.replaced:
            raise ModelError("tvb_simulator: RegionNetwork's 'replaced' regions are not translated; "
                             "give proxy_regions and proxy_variables")
        if spec.connectome is None:
            raise ModelError("tvb_simulator: the RegionNetwork has no connectome (one unconnected "
                             "region); TVB needs a connectivity")
        model_cls, activity = MODELS[spec.model.type]
        kw = dict(connectome=spec.connectome, model=model_cls,
                  model_params={p: getattr(spec.model, p) for p in spec.model.params},
                  coupling=COUPLINGS[spec.coupling.type],
                  coupling_params={p: getattr(spec.coupling, p) for p in spec.coupling.params},
                  integrator=INTEGRATORS[spec.integrator], noise=spec.noise,
                  initial_state=spec.initial_state if spec.initial_state is not None
                  else (0.0,) * spec.model.n_sv,
                  dt_ms=TIME.to_external({"dt_ms": spec.dt_ms})["dt"],
                  rates=activity, rates_units=spec.model.activity_units)
        kw.update(fields)
        return cls(**kw)

    @property
    def dt_ticks(self) -> int:
        return to_ticks(self.dt_ms, "tvb_simulator: dt_ms")

    @property
    def period_ticks(self) -> int:
        return self.dt_ticks if self.period_ms is None else to_ticks(self.period_ms, "tvb_simulator: period_ms")

    def ports(self) -> dict[str, Port]:
        n, p = self.n_regions, self.period_ticks
        kind = "rate" if self.rates_units == "Hz" else "analog"
        what = (" + ".join(f"{c:g} {v}" for v, c in self.rates) if self.rates
                else "the model's first variable of interest")
        out = {"rates": Port(kind, "out", n, self.rates_units, p, f"region activity: {what}")}
        if self.variables:
            out["state"] = Port("analog", "out", len(self.variables) * n, "", p,
                                f"{', '.join(self.variables)} of every region (variable-major)")
        if self.proxy_regions:
            out["proxy_in"] = Port("analog", "in", len(self.proxy_variables) * len(self.proxy_regions),
                                   "", self.dt_ticks,
                                   f"{', '.join(self.proxy_variables)} of regions "
                                   f"{', '.join(map(str, self.proxy_regions))} (variable-major)")
        return out

    def build(self, ctx: SolverContext | None) -> "TVBSolver":
        return TVBSolver(self, ctx.rng if ctx is not None else np.random.default_rng(0))


def build_simulator(spec: TVBSimulator):
    """A tvb Simulator (not configured) from the spec's fields."""
    simulator, models, coupling, integrators, noise, connectivity = _import_tvb()

    def cls_of(module, name: str, field_name: str):
        cls = getattr(module, name, None)
        if not isinstance(cls, type):
            known = sorted(k for k, v in vars(module).items() if isinstance(v, type) and not k.startswith("_"))
            raise fail(spec, f"{field_name!r} must name a class of {module.__name__} "
                             f"(got {name!r}; has: {', '.join(known)})")
        return cls

    def arrays(d: dict) -> dict:
        return {k: np.atleast_1d(np.array(v, dtype=np.float64)) for k, v in d.items()}

    conn = spec.connectome
    n = conn.n
    lengths = conn.length_matrix()
    centres = conn.centre_array()
    c = connectivity.Connectivity(
        region_labels=np.array([f"r{i}" for i in range(n)]),
        **CONNECTIVITY.to_external({
            "weights": conn.weight_matrix(),
            "tract_lengths_mm": np.zeros((n, n)) if lengths is None else lengths,
            "speed_mm_per_ms": np.array([float(conn.speed_mm_per_ms)]),
            "centres_mm": np.zeros((n, 3)) if centres is None else centres}))
    model = cls_of(models, spec.model, "model")(**arrays(spec.model_params))
    cpl = cls_of(coupling, spec.coupling, "coupling")(**arrays(spec.coupling_params))
    icls = cls_of(integrators, spec.integrator, "integrator")
    stochastic = issubclass(icls, integrators.IntegratorStochastic)
    if stochastic != (spec.noise is not None):
        raise fail(spec, f"integrator {spec.integrator!r} is {'' if stochastic else 'not '}stochastic: "
                         f"{'give' if stochastic else 'leave out'} 'noise'")
    if stochastic:
        integ = icls(**TIME.to_external({"dt_ms": spec.dt_ms}),
                     noise=noise.Additive(nsig=np.array(spec.noise, dtype=np.float64)))
    else:
        integ = icls(**TIME.to_external({"dt_ms": spec.dt_ms}))
    return simulator.Simulator(model=model, connectivity=c, coupling=cpl, integrator=integ,
                               monitors=(), conduction_speed=float(conn.speed_mm_per_ms))


class TVBSolver:
    """The live solver: a configured TVB Simulator stepped window by window (see module docstring)."""

    def __init__(self, spec: TVBSimulator, rng: np.random.Generator):
        self.spec = spec
        _, _, _, integrators, _, _ = _import_tvb()
        self.dt_ticks = spec.dt_ticks
        if spec.builder is None:
            sim = build_simulator(spec)
        else:
            sim = load_target(spec.builder, "tvb_simulator: builder")(**spec.params)
            if not all(hasattr(sim, a) for a in ("model", "connectivity", "integrator", "configure")):
                raise ModelError(f"tvb_simulator: builder {spec.builder!r} returned "
                                 f"{type(sim).__name__}, not a tvb Simulator")
        self.sim = sim
        if getattr(sim, "surface", None) is not None:
            raise ModelError("tvb_simulator: surface simulations are not supported (region simulations only)")
        if getattr(sim, "stimulus", None) is not None:
            raise ModelError("tvb_simulator: TVB stimuli are not supported under polyscale "
                             "(their time grid does not continue across windows); drive regions "
                             "through another solver and 'proxy_in'")
        dt_sim = float(sim.integrator.dt)
        if to_ticks(dt_sim, "tvb_simulator: integrator.dt") != self.dt_ticks:
            raise ModelError(f"tvb_simulator: the simulator's integrator.dt is {dt_sim:g} ms but "
                             f"dt_ms is {spec.dt_ms:g} ms; they must be equal")
        sim.connectivity.configure()
        sim.connectivity.set_idelays(dt_sim)
        n = int(sim.connectivity.number_of_regions)
        if n != spec.n_regions:
            raise ModelError(f"tvb_simulator: the simulator has {n} regions but n_regions is "
                             f"{spec.n_regions}")
        model = sim.model
        svars = tuple(model.state_variables)
        n_sv = len(svars)
        if model.number_of_modes != 1:
            raise ModelError(f"tvb_simulator: model {type(model).__name__} has "
                             f"{model.number_of_modes} modes; only single-mode models are supported")
        horizon = int(sim.connectivity.horizon)

        def index(name: str, what: str) -> int:
            if name not in svars:
                raise ModelError(f"tvb_simulator: {what} {name!r} is not a state variable of "
                                 f"{type(model).__name__} (has: {', '.join(svars)})")
            return svars.index(name)

        if spec.rates:
            self.rate_idx = np.array([index(v, "'rates'") for v, _ in spec.rates], dtype=np.int64)
            self.rate_coef = np.array([c for _, c in spec.rates])
        else:
            voi = tuple(model.variables_of_interest) or svars
            self.rate_idx = np.array([index(voi[0], "variable of interest")], dtype=np.int64)
            self.rate_coef = np.ones(1)
        self.var_idx = np.array([index(v, "'variables'") for v in spec.variables], dtype=np.int64)
        self.proxy_var = np.array([index(v, "'proxy_variables'") for v in spec.proxy_variables], dtype=np.int64)
        self.proxy_reg = np.array(spec.proxy_regions, dtype=np.int64)
        # the initial history: given, or drawn from the seeded generator (TVB's default draws
        # from numpy's global one); constant over the delay horizon when given
        if spec.initial_state is not None:
            x0 = np.array(spec.initial_state, dtype=np.float64)
            if x0.shape[0] != n_sv:
                raise ModelError(f"tvb_simulator: 'initial_state' has {x0.shape[0]} rows but "
                                 f"{type(model).__name__} has {n_sv} state variables ({', '.join(svars)})")
            x0 = np.repeat(x0[:, None], n, axis=1) if x0.ndim == 1 else x0
            sim.initial_conditions = np.repeat(x0[None, :, :, None], horizon, axis=0)
        else:
            ic = getattr(sim, "initial_conditions", None)
            have = 0 if ic is None else int(np.shape(ic)[0])
            if have < horizon:
                # TVB would fill the missing history from numpy's global generator; draw it from
                # ours, in the model's state_variable_range, before the given (latest) samples
                lo = np.array([model.state_variable_range[v][0] for v in svars])
                hi = np.array([model.state_variable_range[v][1] for v in svars])
                u = rng.random((horizon - have, n_sv, n, 1))
                pad = lo[None, :, None, None] + (hi - lo)[None, :, None, None] * u
                sim.initial_conditions = pad if ic is None else np.concatenate([pad, np.asarray(ic, dtype=np.float64)])
        if isinstance(sim.integrator, integrators.IntegratorStochastic):
            sim.integrator.noise.noise_seed = int(rng.integers(2**31 - 1))
        sim.monitors = ()
        sim.current_step = 0
        sim.configure()
        if isinstance(sim.integrator, integrators.IntegratorStochastic):
            sim.integrator.noise.reset_random_stream()   # from the seed drawn above
        self.step = int(sim.current_step)   # TVB's index of the state at t = 0
        self.x = sim.current_state
        self.local_coupling = sim._prepare_local_coupling()
        self.n = n
        self.period_steps = spec.period_ticks // self.dt_ticks

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        sim = self.sim
        steps = (t1 - t0) // self.dt_ticks
        # the state at the start of every step, copied as it goes; the outputs from it at the end
        xs = np.empty((steps,) + self.x.shape[:2])
        proxy = inputs.get("proxy_in") if inputs else None
        pv = None
        if len(self.proxy_reg):
            npr = len(self.proxy_reg)
            pv = (np.zeros((steps, len(self.proxy_var), npr)) if proxy is None
                  else np.asarray(proxy.data, dtype=np.float64).reshape(steps, len(self.proxy_var), npr))
            rows, cols = np.ix_(self.proxy_var, self.proxy_reg)
        x = self.x
        step = self.step
        integrate = sim.integrate_next_step
        model, lc = sim.model, self.local_coupling
        for k in range(steps):
            if pv is not None:
                x[rows, cols, 0] = pv[k]
                sim._loop_update_history(step, x)
            c = sim._loop_compute_node_coupling(step + 1)
            xs[k] = x[:, :, 0]
            x = integrate(x, model, c, lc, 0.0)
            step += 1
            sim._loop_update_history(step, x)
        self.x, self.step = x, step
        sim.current_state, sim.current_step = x, step
        rates = np.einsum("v,kvn->kn", self.rate_coef, xs[:, self.rate_idx, :])
        outputs = {"rates": Samples(t0, self.spec.period_ticks, self._decimate(rates))}
        if len(self.var_idx):
            state = xs[:, self.var_idx, :].reshape(steps, -1)
            outputs["state"] = Samples(t0, self.spec.period_ticks, self._decimate(state))
        return WindowResult(outputs=outputs)

    def _decimate(self, a: np.ndarray) -> np.ndarray:
        p = self.period_steps
        if p == 1:
            return a
        if self.spec.average:
            return a.reshape(a.shape[0] // p, p, -1).mean(axis=1)
        return np.ascontiguousarray(a[::p])

    def state(self) -> dict[str, np.ndarray]:
        return {"x": np.array(self.x[:, :, 0]), "step": np.array([self.step], dtype=np.int64)}

    def close(self) -> None:
        self.sim = None


# --- the probes: region dipoles as for region_network (probes/sources.py) --------------------
def tvb_dipoles(solver, ports, model, period_ticks):
    """A current dipole per region from the ``rates`` output (the region activity: for
    Jansen-Rit give rates = y1 - y2, the pyramidal PSP in mV, as region_network's activity),
    with a RegionDipoles source model (gain, positions, orientations; positions default to the
    connectome's centres when the spec has a connectome with them)."""
    from ..probes.sources import RegionDipoles, _check_period, sample_rows
    spec = solver.spec
    if model is None:
        model = RegionDipoles()
    if not isinstance(model, RegionDipoles):
        raise ModelError(f"tvb_simulator: the source model must be a RegionDipoles (got "
                         f"{type(model).__name__})")
    centres = None if spec.connectome is None else spec.connectome.centre_array()
    gain, pos, ori = model.arrays(spec.n_regions, centres)
    step = spec.period_ticks
    _check_period("tvb_simulator", step, period_ticks)
    w = gain[:, None] * ori  # (n, 3) nA*um per unit of the rates

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        a = result.outputs["rates"].data[sample_rows(t0, t1, step, period_ticks)]  # (k, n)
        return a[:, :, None] * w[None, :, :]
    return pos, part


def _register_probe_sources() -> None:
    from ..probes import sources
    sources.register_dipoles(TVBSimulator.type, tvb_dipoles)


_register_probe_sources()
