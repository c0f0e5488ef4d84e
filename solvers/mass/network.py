"""A network of neural masses coupled by a connectome with conduction delays (level III).

One region per node of the connectome, each the same node model (models.py); region j's
activity s_j reaches region i through the coupling function (coupling.py) after
d_ij = rint(tract length / speed / dt) steps, as in TVB. The integrators are TVB's: Euler,
Heun and RK4 (deterministic), Euler-Maruyama and stochastic Heun with additive or
multiplicative noise drawn from the solver's seeded generator. The history before t = 0 is
held constant at the initial state (TVB given a full history).

A region listed in ``replaced`` is a proxy (tvb-multiscale's proxy nodes): another solver
stands in for it. Its activity is read from the ``replaced`` input port, reaches the other
regions through the connectome like any region's, and appears in its outputs; its own state
is not integrated (it stays at the initial state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.signals import Port, Samples, WindowResult
from ...coordinator.specs import SolverContext, SolverSpec
from ...coordinator.time import to_ticks
from ...coordinator.validation import as_tuple, fail, require_choice, require_number
from . import _kernels as K
from .connectome import Connectome
from .coupling import CouplingFunction, Linear
from .models import JansenRit, NodeModel

DETERMINISTIC = ("euler", "heun", "rk4")
STOCHASTIC = ("euler_maruyama", "heun_stochastic")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionNetwork(SolverSpec):
    """Neural masses on a connectome, integrated with TVB's schemes at a fixed step.

    Parameters
    ----------
    model : the node model, the same in every region (default JansenRit with TVB's defaults);
        any of its parameters may be one number per region (models.py)
    connectome : Connectome (weights, tract lengths, speed), or None for one unconnected region
    coupling : coupling function; its ``a`` is the global coupling strength (default Linear)
    integrator : 'euler', 'heun', 'rk4' (deterministic) or 'euler_maruyama',
        'heun_stochastic' (with noise)
    noise : (n_sv,) noise intensity D per state variable (TVB's nsig: each step adds
        sqrt(2 D dt) z, z ~ N(0, 1)); required by, and only by, the stochastic integrators
    noise_kind : 'additive', or 'multiplicative': the increment is sqrt(2 D dt) z x, with x the
        state at the start of the step (TVB's Multiplicative noise with its default b(x) = x)
    dt_ms : integration step (ms)
    initial_state : (n_sv,) for every region, or (n_sv, n_regions); default all zeros. Also the
        history before t = 0.
    replaced : indices of regions another solver stands in for (see the module docstring)
    history_precision : 'float64', or 'float32' to reproduce TVB, which keeps the delay history
        and the weights in float32 (tvb.simulator.history declares them 'f'): the activity that
        couples regions is then computed from float32-rounded state variables in float32, and
        the weights are rounded to float32. It also computes as TVB does operation for operation
        (libm exponentials, TVB's summation order), since the network amplifies last-bit
        differences through the float32 rounding; the float64 default uses faster forms that
        differ from TVB's in the last bits (see _kernels). Only for comparisons with TVB.

    Ports
    -----
    state : out, analog (n_sv * n_regions,), every dt: column v * n_regions + i is state
        variable v of region i at the start of each step (for one region: y0..y5 of JansenRit)
    activity : out, analog (n_regions,), every dt: what couples regions (JansenRit: y1 - y2, mV)
    coupling : out, analog (n_regions,), every dt: the coupling input over each step (units of
        the model's input), c_i = post(sum_j w_ij pre(s_j(t - d_ij)))
    rate : out, rate (n_regions,) Hz, every dt; only for models with a firing rate
    input : in, analog (n_regions,), held over each step, added where the model's input enters
    replaced : in, analog (len(replaced),), the replaced regions' activity; only if any
    """

    type: ClassVar[str] = "region_network"
    level: ClassVar[str] = "III"
    nested: ClassVar[dict] = {"model": NodeModel, "connectome": Connectome, "coupling": CouplingFunction}

    model: NodeModel = JansenRit()
    connectome: Connectome | None = None
    coupling: CouplingFunction = Linear()
    integrator: str = "heun"
    noise: tuple | None = None
    noise_kind: str = "additive"
    dt_ms: float = 0.1
    initial_state: tuple | None = None
    replaced: tuple = ()
    history_precision: str = "float64"

    def __post_init__(self) -> None:
        require_number(self, "dt_ms", positive=True)
        require_choice(self, "history_precision", ("float64", "float32"))
        if not isinstance(self.model, NodeModel):
            raise fail(self, f"'model' must be a node model spec ({', '.join(sorted(NodeModel._kinds))}) "
                             f"(got {self.model!r})")
        if self.connectome is not None and not isinstance(self.connectome, Connectome):
            raise fail(self, f"'connectome' must be a Connectome or None (got {type(self.connectome).__name__})")
        if not isinstance(self.coupling, CouplingFunction):
            raise fail(self, f"'coupling' must be a coupling function spec "
                             f"({', '.join(sorted(CouplingFunction._kinds))}) (got {self.coupling!r})")
        require_choice(self, "integrator", DETERMINISTIC + STOCHASTIC)
        require_choice(self, "noise_kind", ("additive", "multiplicative"))
        n, n_sv = self.n_regions, self.model.n_sv
        self.model.param_matrix(n)   # per-region parameters: one value per region, or one
        if self.integrator in STOCHASTIC:
            if self.noise is None:
                raise fail(self, f"integrator {self.integrator!r} needs 'noise' ({n_sv} intensities, "
                                 f"one per state variable {', '.join(self.model.state_variables)})")
        elif self.noise is not None:
            raise fail(self, f"'noise' is given but integrator {self.integrator!r} is deterministic "
                             f"(use one of {', '.join(STOCHASTIC)})")
        if self.noise is not None:
            d = np.array(as_tuple(self, "noise", float))
            if d.shape != (n_sv,) or not np.isfinite(d).all() or (d < 0).any():
                raise fail(self, f"'noise' must be {n_sv} finite numbers >= 0, one per state variable "
                                 f"{', '.join(self.model.state_variables)} (got {self.noise!r})")
        if self.initial_state is not None:
            x0 = np.array(as_tuple(self, "initial_state", float))
            if x0.shape not in ((n_sv,), (n_sv, n)) or not np.isfinite(x0).all():
                raise fail(self, f"'initial_state' must be {n_sv} finite numbers or a ({n_sv}, {n}) "
                                 f"matrix (state variable, region) (got shape {x0.shape})")
        repl = as_tuple(self, "replaced")
        for r in repl:
            if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < n:
                raise fail(self, f"'replaced' must hold region indices in [0, {n}) (got {r!r})")
        if len(set(repl)) != len(repl):
            raise fail(self, f"'replaced' lists a region twice (got {repl!r})")
        object.__setattr__(self, "replaced", tuple(int(r) for r in repl))

    @classmethod
    def example(cls) -> "RegionNetwork":
        from .coupling import SigmoidalJansenRit
        return cls(connectome=Connectome.example(), coupling=SigmoidalJansenRit(), replaced=(1,))

    @property
    def n_regions(self) -> int:
        return 1 if self.connectome is None else self.connectome.n

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "region_network: dt_ms")
        n, m = self.n_regions, self.model
        out = {
            "state": Port("analog", "out", m.n_sv * n, m.state_units, p,
                          f"{', '.join(m.state_variables)} of every region (variable-major)"),
            "activity": Port("analog", "out", n, m.activity_units, p, "activity that couples regions"),
            "coupling": Port("analog", "out", n, m.input_units, p,
                             "coupling input per region over each step (from the connectome)"),
            "input": Port("analog", "in", n, m.input_units, p, "external input per region"),
        }
        if m.has_rate:
            out["rate"] = Port("rate", "out", n, "Hz", p, "firing rate per region")
        if self.replaced:
            out["replaced"] = Port("analog", "in", len(self.replaced), m.activity_units, p,
                                   "activity of the replaced regions, from the solvers standing in")
        return out

    def build(self, ctx: SolverContext | None) -> "RegionNetworkSolver":
        return RegionNetworkSolver(self, None if ctx is None else ctx.rng)

    def initial_array(self) -> np.ndarray:
        """(n_sv, n_regions) initial state."""
        n, n_sv = self.n_regions, self.model.n_sv
        if self.initial_state is None:
            return np.zeros((n_sv, n))
        x0 = np.array(self.initial_state, dtype=np.float64)
        return np.repeat(x0[:, None], n, axis=1) if x0.ndim == 1 else x0.copy()


class RegionNetworkSolver:
    """The live solver of a RegionNetwork (the Solver protocol)."""

    def __init__(self, spec: RegionNetwork, rng: np.random.Generator | None):
        self.spec = spec
        self.dt_ticks = to_ticks(spec.dt_ms, "region_network: dt_ms")
        self.dt = float(spec.dt_ms)
        m = spec.model
        n = spec.n_regions
        self.model_id, self.p = m.model_id, m.param_matrix(n)
        self.bounded = m.bounds is not None
        lo, hi = (m.bounds if self.bounded else ((), ()))
        self.lo = np.array(lo, dtype=np.float64).reshape(-1)
        self.hi = np.array(hi, dtype=np.float64).reshape(-1)
        self.cfun, self.cp = spec.coupling.coupling_id, spec.coupling.param_array()
        self.integ = K.INTEGRATOR_IDS[spec.integrator]
        if spec.connectome is None:
            w, d = np.zeros((1, 1)), np.zeros((1, 1), dtype=np.int64)
        else:
            w, d = spec.connectome.weight_matrix(), spec.connectome.delay_steps(spec.dt_ms)
        self.f32 = spec.history_precision == "float32"
        if self.f32:  # TVB holds weights as float32 too
            w = w.astype(np.float32).astype(np.float64)
        # sparse incoming edges per target (CSR over rows of w[i, j]: from j to i), the delayed
        # ones apart from the undelayed ones (see _kernels)
        nz = w != 0
        self.strength = w.sum(axis=1)
        if self.f32:
            # TVB's summation order (every edge in one CSR), one step per batch: see _kernels
            self.batch = 1
            long = nz
        else:
            # steps summed per batch, at most the delay of every batched edge so that a batch
            # reads only the past: 64, or less, so that at most 1/8 of the delayed edges (those
            # with shorter delays) go step by step
            delayed = np.sort(d[nz & (d > 0)])
            self.batch = 64 if delayed.size == 0 else int(min(64, max(delayed[delayed.size // 8], 1)))
            long = nz & (d >= self.batch)
        # the shorter delayed edges in sub-batches of their shortest delay; the rest (undelayed)
        # step by step
        short = nz & ~long & (d > 0)
        self.batch2 = int(d[short].min()) if short.any() else 1
        (self.indptr, self.cols, self.delays, self.weights) = _csr(w, d, long, n)
        (self.sindptr, self.scols, self.sdelays, self.sweights) = _csr(w, d, short, n)
        (self.zindptr, self.zcols, self.zdelays, self.zweights) = _csr(w, d, nz & ~long & ~short, n)
        self.horizon = int(d[nz].max(initial=0)) + 1
        self.x = spec.initial_array()
        n_ch = K.n_channels(self.cfun)
        # region-major ring, its first batch of columns mirrored after it: see _kernels
        self.buf = np.empty((n_ch * n, self.horizon + self.batch))
        K.fill_history(self.model_id, self.cfun, self.cp, self.x, self.buf, self.f32)
        self.step = 0
        self.repl = np.array(spec.replaced, dtype=np.int64)
        self.noise_scale = None
        self.mult = spec.noise_kind == "multiplicative"
        if spec.noise is not None:
            self.noise_scale = np.sqrt(2.0 * np.array(spec.noise, dtype=np.float64) * self.dt)
            if rng is None:
                raise ModelError("region_network: a stochastic integrator needs the solver's "
                                 "generator (build it with a SolverContext)")
        self.rng = rng
        # read-only zeros for absent inputs, kept between windows (the kernel never writes them)
        self._zeros: dict = {}
        self._no_noise = np.zeros((0, 0, 0))

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        n_steps = (t1 - t0) // self.dt_ticks
        n_sv, n = self.x.shape
        u = _input(inputs, "input", n_steps, n, self._zeros)
        rv = _input(inputs, "replaced", n_steps, len(self.repl), self._zeros)
        if self.noise_scale is not None:
            # step-major (n_steps, n_sv, n): any split into windows draws the same stream
            noise = self.rng.standard_normal((n_steps, n_sv, n)) * self.noise_scale[None, :, None]
        else:
            noise = self._no_noise
        out_x = np.empty((n_steps, n_sv, n))
        out_s = np.empty((n_steps, n))
        out_c = np.empty((n_steps, n))
        out_r = np.empty((n_steps, n) if self.spec.model.has_rate else (0, 0))
        K.network_advance(self.model_id, self.p, self.integ, self.dt, self.x, self.buf, self.step,
                          self.indptr, self.cols, self.delays, self.weights, self.sindptr, self.scols,
                          self.sdelays, self.sweights, self.zindptr, self.zcols, self.zdelays, self.zweights,
                          self.strength, self.batch, self.batch2, self.cfun, self.cp, self.f32,
                          self.bounded, self.lo, self.hi, u, noise, self.mult, self.repl, rv,
                          out_x, out_s, out_c, out_r)
        self.step += n_steps
        outputs = {"state": Samples(t0, self.dt_ticks, out_x.reshape(n_steps, n_sv * n)),
                   "activity": Samples(t0, self.dt_ticks, out_s),
                   "coupling": Samples(t0, self.dt_ticks, out_c)}
        if self.spec.model.has_rate:
            outputs["rate"] = Samples(t0, self.dt_ticks, out_r)
        return WindowResult(outputs=outputs)

    def state(self) -> dict[str, np.ndarray]:
        return {"x": self.x.copy(), "history": self.buf[:, :self.horizon].copy(),
                "step": np.array([self.step], dtype=np.int64)}

    def close(self) -> None:
        pass


def _csr(w: np.ndarray, d: np.ndarray, mask: np.ndarray, n: int):
    """The edges of mask as CSR by target: indptr (n + 1,), cols, delays (steps), weights."""
    rows, cols = np.nonzero(mask)
    indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
    return indptr, cols.astype(np.int64), d[rows, cols].astype(np.int64), w[rows, cols].astype(np.float64)


def _input(inputs, name: str, n_steps: int, size: int, zeros: dict) -> np.ndarray:
    sig = inputs.get(name) if inputs else None
    if sig is None or size == 0:
        z = zeros.get((n_steps, size))
        if z is None:
            # (left writeable: a read-only array would compile a second specialisation)
            z = zeros[(n_steps, size)] = np.zeros((n_steps, size))
        return z
    return np.ascontiguousarray(sig.data, dtype=np.float64)
