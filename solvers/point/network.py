"""Level II: a network of point neurons, NEST-style, advanced by one numba kernel per window.

Populations of one neuron model each (models.py), projections between them drawn by a
connection rule (connectivity.py), Poisson drives and DC currents. The connectome is stored
by source as CSR: per synapse an int32 target slot, a float32 weight and an unsigned integer
delay in steps (uint8 while delays fit, else uint16): 9 bytes per synapse (+ 8 per neuron).
Projections with a constant weight and delay are held apart, grouped by (source population,
weight, delay), as target slots only (uint16 while the slots fit, else int32): 2 or 4 bytes per
synapse (+ 8 per source neuron and group); a spike delivers its groups first, then its CSR row.
Spikes are delivered through a ring buffer over delays, as NEST does.

Time: a neuron whose membrane potential reaches threshold over the step ending at t_k spikes
at t_k (NEST's spike time), is reset there and is refractory for round(t_ref / dt) steps; its
spike is emitted in the window that starts at or contains t_k; a crossing in the very last
step of a run is reported at t_stop, as NEST does, through ``spikes_at_stop`` (recorded
only). A spike with delay d steps acts on V over the step ending at t_k + d * dt (NEST's
delivery). A spike from another solver arriving at tick A acts over the step that contains A, so on V at the first grid time after A.
"""
from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.signals import Port, Samples, Spikes, WindowResult
from ...coordinator.specs import SolverContext, SolverSpec, Spec
from ...coordinator.time import to_ticks
from ...coordinator.validation import fail, is_number, require_int, require_number
from . import _kernels as K
from .connectivity import Distribution, FixedIndegree, Rule, draw_values
from .models import IafPscDelta, NeuronModel
from .plasticity import ERR_HISTORY, STDP, check_weights, empty_plastic

_POP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

#: numeric model fields that stay one value per population (see Population.params)
_SHARED_ONLY = {"qif": ("eta_bar", "delta")}


def per_neuron_fields(model: NeuronModel) -> list[str]:
    """The fields of ``model`` that may vary per neuron (Population.params): its numeric fields."""
    skip = _SHARED_ONLY.get(model.type, ())
    return [f.name for f in dataclasses.fields(model)
            if f.name not in skip and (is_number(getattr(model, f.name)) or getattr(model, f.name) is None)
            and not isinstance(getattr(model, f.name), str)]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class Population(Spec):
    """``size`` identical neurons of ``model``, with an optional Poisson drive.

    poisson_rate_hz : rate (Hz) of an independent Poisson spike train into every neuron
        (NEST's poisson_generator connected to each neuron); the ``<name>.rate_in`` port adds
        to it
    poisson_weight : weight of each drive event (mV onto delta synapses, pA onto exp synapses)
    noise_std_pA : standard deviation (pA) of a Gaussian white current into every neuron,
        independent between neurons, redrawn every step and held over it (NEST's
        noise_generator with dt = resolution and mean 0; the mean is the model's ``i_e_pA``)
    v_init_mV : initial membrane potential (mV) of every neuron, or a Distribution to draw one
        per neuron (from the solver's generator); None: the model's ``v_init_mV``
    v_th_mV : a Distribution to draw a threshold (mV) per neuron, in place of the model's
        ``v_th_mV`` (iaf_psc_delta, iaf_psc_exp, iaf_cond_exp, izhikevich); None: the model's
    i_e_pA : a Distribution to draw a constant current (pA; dimensionless for QIF) per neuron,
        in place of the model's ``i_e_pA`` (``i_e`` for QIF); None: the model's
    record_v : give the population a ``<name>.V_m`` output port (the membrane potential of
        every neuron at every step; off by default, as it costs a copy per step)
    params : per-neuron model parameters: {name of a numeric field of ``model``: values}, the
        values either a sequence (or array) of ``size`` numbers, neuron i's first, or a
        Distribution to draw one per neuron from the solver's generator (drawn in the order of
        the sorted names, after every other draw of the network). The neurons of such a
        population are each ``model`` with these fields replaced (validated as the model is:
        the error names the population and the neuron) and integrated with their own
        parameters; the other populations keep the shared, faster path. E.g.
        ``params={"tau_m_ms": Normal(mean=10, std=1, low=5), "v_th_mV": thresholds}``. Not
        with the population's own ``v_init_mV``, ``v_th_mV`` or ``i_e_pA`` for the same field;
        QIF's ``eta_bar`` and ``delta`` stay shared (eta is per neuron already; add offsets
        through ``i_e``), and ``eta_sampling`` (not a number) too.
    DC current: the model's ``i_e_pA``, plus the ``<name>.current_in`` port.
    """

    nested: ClassVar[dict] = {"model": NeuronModel, "v_init_mV": Distribution, "v_th_mV": Distribution,
                              "i_e_pA": Distribution}

    name: str
    size: int
    model: NeuronModel = IafPscDelta()
    poisson_rate_hz: float = 0.0
    poisson_weight: float = 0.0
    noise_std_pA: float = 0.0
    v_init_mV: float | Distribution | None = None
    v_th_mV: Distribution | None = None
    i_e_pA: Distribution | None = None
    record_v: bool = False
    params: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _POP_RE.match(self.name):
            raise fail(self, f"'name' must be a name of letters, digits, '_' and '-' starting "
                             f"with a letter or '_' (got {self.name!r})")
        require_int(self, "size", minimum=1)
        if not isinstance(self.model, NeuronModel):
            raise fail(self, f"population {self.name!r}: 'model' must be a neuron model spec "
                             f"({', '.join(sorted(NeuronModel._kinds))}) (got {self.model!r})")
        require_number(self, "poisson_rate_hz", nonnegative=True)
        require_number(self, "poisson_weight")
        require_number(self, "noise_std_pA", nonnegative=True)
        if not isinstance(self.v_init_mV, Distribution):
            require_number(self, "v_init_mV", allow_none=True)
        for name in ("v_th_mV", "i_e_pA"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Distribution):
                raise fail(self, f"population {self.name!r}: {name!r} must be a Distribution or None "
                                 f"(got {getattr(self, name)!r}; a constant belongs in the model)")
        if self.v_th_mV is not None and self.model.type not in ("iaf_psc_delta", "iaf_psc_exp", "iaf_cond_exp",
                                                                "izhikevich"):
            raise fail(self, f"population {self.name!r}: per-neuron 'v_th_mV' is for iaf_psc_delta, "
                             f"iaf_psc_exp, iaf_cond_exp and izhikevich neurons (got {self.model.type!r})")
        if not isinstance(self.record_v, bool):
            raise fail(self, f"population {self.name!r}: 'record_v' must be True or False (got {self.record_v!r})")
        if self.params is not None:
            object.__setattr__(self, "params", self._check_params())

    def _check_params(self) -> dict:
        """``params`` with arrays as tuples of floats and Distributions decoded (from the wire)."""
        if not isinstance(self.params, Mapping):
            raise fail(self, f"population {self.name!r}: 'params' must be a dict of per-neuron model "
                             f"parameters or None (got {type(self.params).__name__})")
        allowed = per_neuron_fields(self.model)
        own = {"v_init_mV": self.v_init_mV, "v_th_mV": self.v_th_mV, "i_e_pA": self.i_e_pA}
        out = {}
        for name, value in self.params.items():
            if name not in allowed:
                raise fail(self, f"population {self.name!r}: 'params' key {name!r} is not a per-neuron "
                                 f"parameter of {self.model.type} (allowed: {', '.join(allowed)})")
            if own.get(name) is not None:
                raise fail(self, f"population {self.name!r}: {name!r} is given both as the population's "
                                 f"field and in 'params'; give it once")
            if isinstance(value, Mapping) and "type" in value:
                value = Distribution.from_dict(value)
            if not isinstance(value, Distribution):
                try:
                    arr = np.asarray(value, dtype=np.float64)
                except (TypeError, ValueError):
                    arr = None
                if isinstance(value, (str, bytes)) or arr is None or arr.shape != (self.size,) \
                        or not np.all(np.isfinite(arr)):
                    raise fail(self, f"population {self.name!r}: params[{name!r}] must be a Distribution or "
                                     f"{self.size} finite numbers, one per neuron (got {_short(value)})")
                value = tuple(arr.tolist())
            out[str(name)] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection(Spec):
    """Synapses from population ``source`` onto population ``target``.

    rule : FixedIndegree, FixedOutdegree, PairwiseBernoulli, OneToOne or AllToAll
    weight : constant or Distribution; mV onto delta-synapse models, pA onto exp-synapse models
    delay_ms : constant (>= dt; rounded to whole steps as NEST does) or Distribution (drawn
        delays are rounded to steps and raised to one step where shorter)
    allow_autapses, allow_multapses : NEST's options (both True by default, as NEST's)
    dense : only for AllToAll with a constant weight and delay: hold the projection as one
        input per target population (a spike adds its weight once, O(1), and the neuron takes
        its own share back where autapses are not allowed) instead of one CSR entry per
        synapse. The same dynamics with no memory per synapse; its synapses are not in the
        CSR arrays (``n_synapses`` counts them, ``connectome_bytes`` does not).
    plasticity : None (static synapses), or STDP (plasticity.py): NEST's stdp_synapse on every
        synapse of the projection, whose weights must then lie in [0, w_max]; plastic synapses
        are held apart (float64 weights; read them with ``PointNetworkSolver.weights``) and
        static projections keep their fast path
    """

    nested: ClassVar[dict] = {"rule": Rule, "weight": Distribution, "delay_ms": Distribution,
                              "plasticity": STDP}

    source: str
    target: str
    rule: Rule
    weight: float | Distribution = 1.0
    delay_ms: float | Distribution = 1.0
    allow_autapses: bool = True
    allow_multapses: bool = True
    dense: bool = False
    plasticity: STDP | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rule, Rule):
            raise fail(self, f"{self.source}->{self.target}: 'rule' must be a connection rule "
                             f"({', '.join(sorted(Rule._kinds))}) (got {self.rule!r})")
        for name in ("weight", "delay_ms"):
            value = getattr(self, name)
            if not isinstance(value, Distribution):
                require_number(self, name)
        if is_number(self.delay_ms) and self.delay_ms <= 0:
            raise fail(self, f"{self.source}->{self.target}: 'delay_ms' must be > 0 (got {self.delay_ms})")
        for name in ("allow_autapses", "allow_multapses", "dense"):
            if not isinstance(getattr(self, name), bool):
                raise fail(self, f"{name!r} must be True or False (got {getattr(self, name)!r})")
        if self.dense and (self.rule.type != "all_to_all" or not is_number(self.weight)
                           or not is_number(self.delay_ms)):
            raise fail(self, f"{self.source}->{self.target}: 'dense' needs rule AllToAll with a constant "
                             f"weight and delay (got rule {self.rule.type!r}, weight {self.weight!r}, "
                             f"delay_ms {self.delay_ms!r})")
        if self.plasticity is not None:
            if not isinstance(self.plasticity, STDP):
                raise fail(self, f"{self.source}->{self.target}: 'plasticity' must be None or an STDP spec "
                                 f"(got {self.plasticity!r})")
            if self.dense:
                raise fail(self, f"{self.source}->{self.target}: 'dense' projections cannot be plastic "
                                 f"(they hold no per-synapse weights)")
            if is_number(self.weight):
                check_weights(self.plasticity, np.array([self.weight], float), f"{self.source}->{self.target}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PointNetwork(SolverSpec):
    """Populations of point neurons connected by projections (NEST's model, exact integration).

    Parameters
    ----------
    populations : Population specs (unique names)
    projections : Projection specs between them
    dt_ms : integration step (ms)
    ranks : MPI ranks the network asks for under the mpi transport (``model.place(name,
        ranks=...)`` overrides it): its neurons are split across them (distributed.py) with the
        same spikes as in one process. inproc and zmq run it in one process, with a warning.

    Ports (for every population P)
    -----
    P.spikes : out, spikes (size,): the population's spikes, channel = neuron index in P
    P.spikes_in : in, spikes (size,): spikes from other solvers, channel i onto neuron i; the
        delivered weight (the coupling's) is added to V in mV (delta synapses) or to the
        synaptic current in pA (exp synapses; negative: the inhibitory current)
    P.rate_in : in, rate (1,) Hz, every dt: added to the rate of P's Poisson drive (each event
        of weight ``poisson_weight``), the same for every neuron
    P.current_in : in, analog (1,) pA, every dt: a current into every neuron of P, held over
        each step (dimensionless for QIF neurons, as their V)
    P.V_m : out, analog (size,) mV, every dt, only where the population has ``record_v``: the
        membrane potential of every neuron at the start of each step (dimensionless for QIF)
    """

    type: ClassVar[str] = "point_network"
    level: ClassVar[str] = "II"
    nested: ClassVar[dict] = {"populations": Population, "projections": Projection}

    populations: tuple
    projections: tuple = ()
    dt_ms: float = 0.1
    ranks: int = 1

    def __post_init__(self) -> None:
        require_number(self, "dt_ms", positive=True)
        require_int(self, "ranks", minimum=1)
        pops = tuple(self.populations) if isinstance(self.populations, (list, tuple)) else None
        if not pops or not all(isinstance(p, Population) for p in pops):
            raise fail(self, f"'populations' must be a non-empty sequence of Population specs "
                             f"(got {self.populations!r})")
        projs = tuple(self.projections) if isinstance(self.projections, (list, tuple)) else None
        if projs is None or not all(isinstance(p, Projection) for p in projs):
            raise fail(self, f"'projections' must be a sequence of Projection specs (got {self.projections!r})")
        object.__setattr__(self, "populations", pops)
        object.__setattr__(self, "projections", projs)
        names = [p.name for p in pops]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise fail(self, f"population name {dup[0]!r} is used twice")
        size = {p.name: p.size for p in pops}
        for pr in projs:
            for end in ("source", "target"):
                if getattr(pr, end) not in size:
                    raise fail(self, f"projection {pr.source}->{pr.target}: {end} {getattr(pr, end)!r} "
                                     f"is not a population (have: {', '.join(names)})")
            problem = pr.rule.check(size[pr.source], size[pr.target], pr.allow_autapses,
                                    pr.allow_multapses, pr.source == pr.target)
            if problem:
                raise fail(self, f"projection {pr.source}->{pr.target}: {problem}")
            if is_number(pr.delay_ms) and round(pr.delay_ms / self.dt_ms) < 1:
                raise fail(self, f"projection {pr.source}->{pr.target}: 'delay_ms'={pr.delay_ms} is "
                                 f"shorter than one step (dt_ms={self.dt_ms})")
        tau_minus = {}
        for pr in projs:
            if pr.plasticity is not None:
                tm = tau_minus.setdefault(pr.target, pr.plasticity.tau_minus_ms)
                if tm != pr.plasticity.tau_minus_ms:
                    raise fail(self, f"projection {pr.source}->{pr.target}: STDP 'tau_minus_ms'="
                                     f"{pr.plasticity.tau_minus_ms} differs from {tm} of another plastic "
                                     f"projection onto {pr.target!r} (the postsynaptic trace is the neuron's)")
        for p in pops:
            lam = p.poisson_rate_hz * self.dt_ms * 1e-3
            if lam > 1e4:
                raise fail(self, f"population {p.name!r}: 'poisson_rate_hz'={p.poisson_rate_hz} is "
                                 f"more than 1e4 events per step; use a current instead")

    @classmethod
    def example(cls) -> "PointNetwork":
        from .connectivity import Normal
        from .models import IafPscExp
        return cls(populations=(Population(name="E", size=8, poisson_rate_hz=8000.0, poisson_weight=2.0),
                                Population(name="I", size=2, model=IafPscExp())),
                   projections=(Projection(source="E", target="I", rule=FixedIndegree(indegree=3),
                                           weight=Normal(mean=50.0, std=5.0), delay_ms=1.5),
                                Projection(source="I", target="E", rule=FixedIndegree(indegree=2),
                                           weight=-1.0, delay_ms=0.5)))

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def ports(self) -> dict[str, Port]:
        dt = to_ticks(self.dt_ms, "point_network: dt_ms")
        out: dict[str, Port] = {}
        for p in self.populations:
            wu = p.model.weight_units
            out[f"{p.name}.spikes"] = Port("spikes", "out", p.size, "", None, f"spikes of {p.name}")
            out[f"{p.name}.spikes_in"] = Port("spikes", "in", p.size, "", None,
                                              f"spikes onto {p.name}, weight in {wu}, one-to-one")
            out[f"{p.name}.rate_in"] = Port("rate", "in", 1, "Hz", dt,
                                            f"added to the Poisson drive rate of {p.name}")
            out[f"{p.name}.current_in"] = Port("analog", "in", 1, p.model.current_units, dt,
                                               f"current into every neuron of {p.name}")
            if p.record_v:
                out[f"{p.name}.V_m"] = Port("analog", "out", p.size, "mV" if p.model.current_units else "",
                                            dt, f"membrane potential of every neuron of {p.name}")
        return out

    def build(self, ctx: SolverContext) -> "PointNetworkSolver":
        if ctx.comm is not None and ctx.comm.Get_size() > 1:
            from .distributed import DistributedPointNetworkSolver
            return DistributedPointNetworkSolver(self, ctx.rng, ctx.comm)
        if self.ranks > 1:
            warnings.warn(f"point_network {ctx.name!r} asks for ranks={self.ranks}, but the transport gave it "
                          f"one process (inproc and zmq run each solver in one; under mpi, model.place says "
                          f"ranks=1): it runs in one process, with the same spikes", stacklevel=2)
        return PointNetworkSolver(self, ctx.rng)


def _smallest_uint(largest: int):
    """The smallest unsigned integer dtype that holds ``largest``."""
    for t in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(t).max:
            return t
    return np.uint64


class PointNetworkSolver:
    """The live network: flat state arrays, CSR connectome, ring buffer (see module docstring).

    Attributes (read-only for callers)
    ----------
    v : (n,) membrane potentials relative to each population's E_L (mV)
    indptr, slot, weight, delay : the CSR connectome by source
    """

    #: hold constant-weight projections as target-only groups (_compact_groups); the MPI-spanning
    #: solver delivers from one per-synapse CSR and turns it off
    _compact = True

    def __init__(self, spec: PointNetwork, rng: np.random.Generator):
        self.spec = spec
        self.dt_ticks = to_ticks(spec.dt_ms, "point_network: dt_ms")
        pops = spec.populations
        self.names = [p.name for p in pops]
        self.lo = np.zeros(len(pops) + 1, np.int64)
        self.lo[1:] = np.cumsum([p.size for p in pops])
        n = int(self.lo[-1])
        self.n = n
        self.kind = np.array([p.model.kind for p in pops], np.int64)
        par = np.stack([p.model.kernel_params(spec.dt_ms) for p in pops])
        for i, p in enumerate(pops):
            par[i, K.P_LAM] = p.poisson_rate_hz * spec.dt_ms * 1e-3
            par[i, K.P_PW] = p.poisson_weight
            par[i, K.P_NOISE] = p.noise_std_pA
        self.par = par
        # the kernel's random streams first, so they do not depend on the connectome's size;
        # one per neuron (K.neuron_streams), so a neuron's draws do not depend on which other
        # neurons share its process (distributed.py)
        self.rng_state = K.neuron_streams(int(rng.integers(0, 2**63 - 1)), np.arange(n))
        self.v = np.empty(n)
        for i, p in enumerate(pops):
            if isinstance(p.v_init_mV, Distribution):
                v0 = draw_values(p.v_init_mV, rng, p.size)
            else:
                v0 = p.model.v0() if p.v_init_mV is None else p.v_init_mV
            self.v[self.lo[i]:self.lo[i + 1]] = v0 - p.model.e_l_mV
        self.bias = np.zeros(n)
        for i, p in enumerate(pops):
            b = p.model.bias(p.size, rng)
            if b is not None:
                self.bias[self.lo[i]:self.lo[i + 1]] = b
        # per-neuron thresholds and currents, drawn after everything else so that models
        # without them keep their random streams
        self.th_off = np.zeros(n)
        for i, p in enumerate(pops):
            a, b = self.lo[i], self.lo[i + 1]
            if p.v_th_mV is not None:
                self.th_off[a:b] = draw_values(p.v_th_mV, rng, p.size) - p.model.v_th_mV
            if p.i_e_pA is not None:
                ie = p.model.i_e if p.model.type == "qif" else p.model.i_e_pA
                self.bias[a:b] += draw_values(p.i_e_pA, rng, p.size) - ie
        self.het = np.zeros(len(pops), np.bool_)
        self.hrow = np.zeros(n, np.int64)
        self.hpar = np.zeros((0, K.N_PAR))
        self.i_ex = np.zeros(n)
        self.i_in = np.zeros(n)
        for i, p in enumerate(pops):
            if p.model.kind == K.IZHIKEVICH:    # i_in holds the recovery variable u
                a, b = self.lo[i], self.lo[i + 1]
                self.i_in[a:b] = p.model.u0(self.v[a:b])
        self.refr = np.zeros(n, np.int64)
        # adaptation current w (pA) of AdEx neurons
        self.w_ad = np.zeros(n)
        for i, p in enumerate(pops):
            if hasattr(p.model, "w_init_pA"):
                self.w_ad[self.lo[i]:self.lo[i + 1]] = p.model.w_init_pA
        self.e_l = np.concatenate([np.full(p.size, p.model.e_l_mV) for p in pops])
        self._per_neuron(rng)
        # neurons that crossed threshold at the end of the last step: their spikes are emitted
        # (time stamped t1 of that window, which is t0 of the next) at the start of the next
        self.pend = np.zeros(n, np.int64)
        self.pend_n = np.zeros(1, np.int64)
        # inhibitory current slots after the n excitatory ones, for models with two currents
        self.inh_slot = np.arange(n, dtype=np.int64)
        extra = n
        for i, p in enumerate(pops):
            if p.model.kind in K.TWO_SLOTS:
                a, b = self.lo[i], self.lo[i + 1]
                self.inh_slot[a:b] = np.arange(extra, extra + (b - a))
                extra += b - a
        self.n_slots = extra
        if extra >= 2**31:
            raise ModelError(f"point_network: {extra} neurons and inhibitory current slots exceed the "
                             f"int32 indices of the connectome (at most {2**31 - 1})")
        self._connect(rng)
        self.ring = np.zeros((self.depth, self.n_slots))
        self.pring = np.zeros((self.depth, 2 * len(pops)))
        self.vrec_idx = np.concatenate([np.arange(self.lo[i], self.lo[i + 1]) for i, p in enumerate(pops)
                                        if p.record_v] or [np.zeros(0, np.int64)]).astype(np.int64)
        self.step = 0
        self._spk_step = np.zeros(0, np.int64)
        self._spk_id = np.zeros(0, np.int64)
        self.ref_steps = par[:, K.P_REF].astype(np.int64)
        for i in np.flatnonzero(self.het):
            # the spike buffer's bound needs the shortest refractory period of the population
            self.ref_steps[i] = int(self.hpar[self.hrow[self.lo[i]:self.lo[i + 1]], K.P_REF].min())
        # E_L of the recorded neurons (network order, before distributed.py localizes vrec_idx)
        self.vrec_el = self.e_l[self.vrec_idx]

    def _per_neuron(self, rng: np.random.Generator) -> None:
        """Populations with ``params``: draw the per-neuron values (sorted names, after every
        other per-neuron draw), build each neuron's model (validated), fill its kernel row in
        ``hpar`` (``hrow``, ``het``) and its initial state (V, u, w) and E_L."""
        rows = []
        n_rows = 0
        dt = self.spec.dt_ms
        for i, p in enumerate(self.spec.populations):
            if not p.params:
                continue
            a, b = int(self.lo[i]), int(self.lo[i + 1])
            values = {name: (draw_values(v, rng, p.size) if isinstance(v, Distribution)
                             else np.asarray(v, np.float64)) for name, v in sorted(p.params.items())}
            v_abs = self.v[a:b] + self.e_l[a:b]
            block = np.empty((p.size, K.N_PAR))
            for j in range(p.size):
                try:
                    m = p.model.replace(**{name: float(v[j]) for name, v in values.items()})
                except ModelError as exc:
                    raise ModelError(f"point_network: population {p.name!r} neuron {j}: {exc}") from None
                block[j] = m.kernel_params(dt)
                if p.v_init_mV is None:
                    v_abs[j] = m.v0()
                self.e_l[a + j] = m.e_l_mV
                if m.kind == K.IZHIKEVICH:
                    self.i_in[a + j] = m.u0(v_abs[j])
                if hasattr(m, "w_init_pA"):
                    self.w_ad[a + j] = m.w_init_pA
            # the drive is the population's
            block[:, K.P_LAM] = self.par[i, K.P_LAM]
            block[:, K.P_PW] = self.par[i, K.P_PW]
            block[:, K.P_NOISE] = self.par[i, K.P_NOISE]
            self.v[a:b] = v_abs - self.e_l[a:b]
            self.hrow[a:b] = np.arange(n_rows, n_rows + p.size)
            self.het[i] = True
            n_rows += p.size
            rows.append(block)
        if rows:
            self.hpar = np.ascontiguousarray(np.concatenate(rows))

    # -- connectome ----------------------------------------------------------------------------
    def _connect(self, rng: np.random.Generator) -> None:
        spec = self.spec
        index = {name: i for i, name in enumerate(self.names)}
        parts = []
        max_d = 1
        dense = []
        plastic = []
        self.n_dense_synapses = 0
        # constant weight and delay: one weight per (source population, weight, delay) group and
        # only target slots per synapse (uint16 where they fit) instead of 9 bytes (see _compact)
        groups: dict = {}
        const_parts: dict = {}
        for pr in spec.projections:
            si, ti = index[pr.source], index[pr.target]
            n_src, n_tgt = spec.populations[si].size, spec.populations[ti].size
            if pr.dense:
                steps = max(1, round(pr.delay_ms / spec.dt_ms))
                max_d = max(max_d, steps)
                inh = spec.populations[ti].model.kind in K.TWO_SLOTS and pr.weight < 0
                own = -1 if (pr.allow_autapses or si != ti) else (1 if inh else 0)
                dense.append((si, ti + (len(spec.populations) if inh else 0), float(pr.weight), steps, own))
                self.n_dense_synapses += n_src * n_tgt - (n_src if own >= 0 else 0)
                continue
            src, tgt = pr.rule.pairs(rng, n_src, n_tgt, pr.allow_autapses, pr.allow_multapses,
                                     pr.source == pr.target)
            src, tgt = np.asarray(src, np.int32), np.asarray(tgt, np.int32)
            m = src.shape[0]
            if (self._compact and pr.plasticity is None and is_number(pr.weight)
                    and is_number(pr.delay_ms)):
                # constant weight and delay, held as groups: straight to the group's types
                # (uint16 rows and slots where they fit), with no per-synapse weight or delay
                # array and the int32 pairs freed at once; the build's peak is then the pairs
                # of the largest projection (8 B per synapse) plus every group kept so far (4)
                steps = max(1, round(pr.delay_ms / spec.dt_ms))
                if m:
                    max_d = max(max_d, steps)
                key = (si, float(np.float32(pr.weight)), steps if m else 1)
                rows = src.astype(_smallest_uint(n_src))
                del src
                tdt = np.uint16 if self.n_slots <= 65536 else np.int32
                if spec.populations[ti].model.kind in K.TWO_SLOTS and np.float32(pr.weight) < 0:
                    # negative weights go to the inhibitory slots (as slot[neg] below)
                    slot = self.inh_slot[self.lo[ti]:self.lo[ti + 1]].astype(tdt)[tgt]
                else:
                    tgt += np.int32(self.lo[ti])
                    slot = tgt.astype(tdt)
                del tgt
                groups.setdefault(key, []).append((rows, slot))
                del rows, slot
                continue
            # compact types from the start: the build's peak memory is these arrays of every
            # projection (13 bytes per synapse) plus the CSR (9)
            if isinstance(pr.weight, Distribution):
                w = draw_values(pr.weight, rng, m).astype(np.float64 if pr.plasticity else np.float32)
            else:
                w = np.full(m, pr.weight, np.float64 if pr.plasticity else np.float32)
            if isinstance(pr.delay_ms, Distribution):
                d = np.maximum(1, np.rint(draw_values(pr.delay_ms, rng, m) / spec.dt_ms)).astype(np.int64)
                d = d.astype(_smallest_uint(int(d.max()) if m else 1))
            else:
                steps = max(1, round(pr.delay_ms / spec.dt_ms))
                d = np.full(m, steps, _smallest_uint(steps))
            if m:
                max_d = max(max_d, int(d.max()))
            src += np.int32(self.lo[si])
            slot = tgt
            slot += np.int32(self.lo[ti])
            if spec.populations[ti].model.kind in K.TWO_SLOTS:
                neg = w < 0
                slot[neg] = self.inh_slot[slot[neg]]
            if pr.plasticity is not None:
                check_weights(pr.plasticity, w, f"projection {pr.source}->{pr.target}")
                plastic.append((pr, si, ti, src, slot, w, d))
                continue
            if is_number(pr.weight) and is_number(pr.delay_ms):
                # (the groups took theirs above)
                key = (si, float(np.float32(pr.weight)), int(d[0]) if m else 1)
                const_parts.setdefault(key, []).append(self._keep_synapses(src, slot, w, d))
                continue
            parts.append(self._keep_synapses(src, slot, w, d))
        self.depth = max_d
        self._compact_groups(groups)
        # without groups, their synapses lead each CSR row in group order: every ring slot then
        # sums a spike's weights in the same order as with groups, so the float sums (and the
        # spikes) do not depend on which layout holds them (distributed.py)
        parts = [x for v in const_parts.values() for x in v] + parts
        self._connect_plastic(plastic)
        cols = list(zip(*dense)) if dense else [(), (), (), (), ()]
        self.dense = (np.repeat(np.arange(len(spec.populations), dtype=np.int64), np.diff(self.lo)),
                      np.array(cols[0], np.int64), np.array(cols[1], np.int64), np.array(cols[2], np.float64),
                      np.array(cols[3], np.int64), np.array(cols[4], np.int64))
        ddt = _smallest_uint(max_d)
        counts = np.zeros(self.n, np.int64)
        for src, *_ in parts:
            counts += np.bincount(src, minlength=self.n)
        self.indptr = np.zeros(self.n + 1, np.int64)
        np.cumsum(counts, out=self.indptr[1:])
        nnz = int(self.indptr[-1])
        self.slot = np.empty(nnz, np.int32)
        self.weight = np.empty(nnz, np.float32)
        self.delay = np.empty(nnz, ddt)
        fill = self.indptr[:-1].copy()
        while parts:
            src, slot, w, d = parts.pop(0)
            K.csr_fill(src, slot, w, d.astype(ddt, copy=False), self.indptr, self.slot, self.weight, self.delay, fill)
        self.row_delay = np.zeros(self.n, np.int64)
        K.uniform_row_delays(self.indptr, self.delay, self.row_delay)

    def _compact_groups(self, groups: dict) -> None:
        """The synapses of projections with a constant weight and delay, by group (source
        population, float32 weight, delay steps; projections sharing all three are merged in
        model order): ``g_src``, ``g_w`` (float64 of the float32 weight, the value the CSR would
        hold), ``g_d`` (G,) and ``g_off`` (G,) the group's first row in ``c_indptr``
        (sum of source population sizes + 1,) int64, rows by source neuron, each listing the
        target slots ``c_tgt`` (uint16 where every slot fits, else int32) in draw order.
        A spike reads 2 bytes per synapse here instead of 9 from the CSR."""
        keys = list(groups)
        sizes = np.array([self.spec.populations[si].size for si, _, _ in keys], np.int64)
        self.g_src = np.array([k[0] for k in keys], np.int64)
        self.g_w = np.array([k[1] for k in keys], np.float64)
        self.g_d = np.array([k[2] for k in keys], np.int64)
        self.g_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        n_rows = int(sizes.sum())
        counts = np.zeros(n_rows, np.int64)
        for q, key in enumerate(keys):
            for src, _ in groups[key]:
                K.rows_count(src, self.g_off[q], counts)
        self.c_indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(counts, out=self.c_indptr[1:])
        self.c_tgt = np.empty(int(self.c_indptr[-1]), np.uint16 if self.n_slots <= 65536 else np.int32)
        fill = self.c_indptr[:-1].copy()
        for q, key in enumerate(keys):
            parts = groups.pop(key)
            while parts:
                src, slot = parts.pop(0)
                K.rows_fill(src, self.g_off[q], slot, self.c_tgt, fill)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every synapse held in CSR form, by source neuron, in delivery order (the constant-weight
        groups, then the per-synapse CSR): (indptr (n + 1,) int64, slot (nnz,) int64 target slot,
        weight (nnz,) float64, delay (nnz,) int64 steps). A copy built on demand (for probes and
        tests); the kernel reads the compact arrays."""
        srcs, slots, ws, ds = [], [], [], []
        for q in range(self.g_src.shape[0]):
            si = int(self.g_src[q])
            size = int(self.lo[si + 1] - self.lo[si])
            rows = self.c_indptr[self.g_off[q]:self.g_off[q] + size + 1]
            a, b = int(rows[0]), int(rows[-1])
            srcs.append(np.repeat(np.arange(size, dtype=np.int64) + self.lo[si], np.diff(rows)))
            slots.append(self.c_tgt[a:b].astype(np.int64))
            ws.append(np.full(b - a, self.g_w[q]))
            ds.append(np.full(b - a, self.g_d[q], np.int64))
        n_rows = self.indptr.shape[0] - 1
        srcs.append(np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(self.indptr)))
        slots.append(self.slot.astype(np.int64))
        ws.append(self.weight.astype(np.float64))
        ds.append(self.delay.astype(np.int64))
        src = np.concatenate(srcs)
        order = np.argsort(src, kind="stable")
        indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(src, minlength=n_rows), out=indptr[1:])
        return indptr, np.concatenate(slots)[order], np.concatenate(ws)[order], np.concatenate(ds)[order]

    def _keep_synapses(self, src, slot, w, d):
        """The synapses of one projection (global source index, global target slot, weight,
        delay steps) that this process holds: all of them here; a network spanning MPI ranks
        keeps those onto its own neurons (distributed.py)."""
        return src, slot, w, d

    def _connect_plastic(self, plastic) -> None:
        """The plastic projections' CSR and STDP state (plasticity.py; ``self.plastic`` is the
        kernel's tuple): rows are (projection, source neuron), in projection order."""
        n, n_pops = self.n, len(self.names)
        self.plastic_projections = [pr for pr, *_ in plastic]
        if not plastic:
            self.plastic = empty_plastic(n, n_pops)
            return
        pop_of = np.repeat(np.arange(n_pops, dtype=np.int64), np.diff(self.lo))
        q_src = np.array([si for _, si, *_ in plastic], np.int64)
        sizes = np.array([self.spec.populations[si].size for si in q_src], np.int64)
        q_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rows, tgts, ws, ds = [], [], [], []
        for q, (pr, si, ti, src, slot, w, d) in enumerate(plastic):
            rows.append(q_off[q] + src.astype(np.int64) - self.lo[si])
            tgts.append(slot.astype(np.int64))
            ws.append(w)
            ds.append(d.astype(np.int64))
        rows = np.concatenate(rows)
        order = np.argsort(rows, kind="stable")     # by source row, draw order within a row
        n_rows = int(sizes.sum())
        indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        tgt = np.concatenate(tgts)[order]
        # postsynaptic histories: one row per neuron of a population a plastic projection targets
        hidx = np.full(n, -1, np.int64)
        taus = []
        for pr, si, ti, *_ in plastic:
            a, b = self.lo[ti], self.lo[ti + 1]
            if hidx[a] < 0:
                hidx[a:b] = np.arange(len(taus), len(taus) + (b - a))
                taus += [pr.plasticity.tau_minus_ms] * int(b - a)
        cap = max(pr.plasticity.history for pr, *_ in plastic)
        nh = len(taus)
        self.plastic = (pop_of, self.lo, q_src, np.stack([pr.plasticity.row() for pr, *_ in plastic]), q_off,
                        indptr, tgt, np.concatenate(ws).astype(np.float64)[order], np.concatenate(ds)[order],
                        np.zeros(n_rows), np.zeros(n_rows, np.int64), hidx, np.zeros((nh, cap), np.int64),
                        np.zeros((nh, cap)), np.zeros(nh, np.int64), np.array(taus, np.float64),
                        np.full(nh, np.iinfo(np.int64).min, np.int64), np.zeros(1, np.int64), float(self.spec.dt_ms),
                        np.zeros(nh, np.int64), np.zeros(nh))

    def weights(self, source: str, target: str, index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The synapses of the ``index``-th plastic projection from population ``source`` onto
        ``target``: (source neuron (m,) int64, target neuron (m,) int64, current weight (m,)
        float64), indices within the populations, in CSR order (by source neuron, then in the
        order the rule drew them); weights in the projection's units (mV onto delta synapses,
        pA onto current synapses, nS onto conductances). As NEST's GetStatus of the connections,
        a weight holds the postsynaptic spikes only up to its last presynaptic spike."""
        found = [q for q, pr in enumerate(self.plastic_projections) if pr.source == source and pr.target == target]
        if index >= len(found):
            raise KeyError(f"point_network: no plastic projection {source}->{target} number {index} "
                           f"(have {len(found)})")
        q = found[index]
        pl = self.plastic
        q_off, indptr = pl[4], pl[5]
        si = self.names.index(source)
        ti = self.names.index(target)
        r0, r1 = q_off[q], q_off[q] + self.spec.populations[si].size
        a, b = indptr[r0], indptr[r1]
        src = np.repeat(np.arange(r1 - r0, dtype=np.int64), np.diff(indptr[r0:r1 + 1]))
        return src, pl[6][a:b] - self.lo[ti], pl[7][a:b].copy()

    @property
    def n_synapses(self) -> int:
        """Synapses of the network: those in the CSR and the constant-weight groups plus those of
        dense and plastic projections."""
        return (int(self.indptr[-1]) + int(self.c_tgt.shape[0]) + self.n_dense_synapses
                + int(self.plastic[6].shape[0]))

    def connectome_bytes(self) -> int:
        """Bytes held by the connectome (CSR arrays, the constant-weight groups' row pointers and
        targets, and those of plastic synapses and their traces)."""
        return (self.indptr.nbytes + self.slot.nbytes + self.weight.nbytes + self.delay.nbytes
                + (self.c_indptr.nbytes + self.c_tgt.nbytes if self.g_src.shape[0] else 0)
                + (sum(a.nbytes for a in self.plastic[5:17] + self.plastic[19:21]) if self.plastic_projections else 0))

    # -- the Solver protocol -------------------------------------------------------------------
    def _input_slots(self, p: int, ids: np.ndarray):
        """Ring slots of population ``p``'s neurons ``ids`` and which of the ids this solver
        holds (None: all). distributed.py keeps only its rank's neurons."""
        return ids + self.lo[p], None

    def _external(self, t0: int, n_steps: int, inputs):
        """The external inputs of a window as K.network_window takes them: rates and currents
        (n_steps, populations), and spikes from other solvers sorted by step (step, slot, weight)."""
        dt = self.dt_ticks
        n_pops = len(self.names)
        rate_in = np.zeros((n_steps, n_pops))
        cur_in = np.zeros((n_steps, n_pops))
        steps, slots, ws = [], [], []
        for p, name in enumerate(self.names):
            r = inputs.get(f"{name}.rate_in")
            if r is not None:
                rate_in[:, p] = r.data[:, 0]
            c = inputs.get(f"{name}.current_in")
            if c is not None:
                cur_in[:, p] = c.data[:, 0]
            s = inputs.get(f"{name}.spikes_in")
            if s is not None and len(s):
                w = np.ones(len(s)) if s.weights is None else np.asarray(s.weights, np.float64)
                slot, keep = self._input_slots(p, np.asarray(s.ids, np.int64))
                ticks = np.asarray(s.ticks, np.int64)
                if keep is not None:
                    w, ticks = w[keep], ticks[keep]
                if self.kind[p] in K.TWO_SLOTS:
                    slot = np.where(w < 0, self.inh_slot[slot], slot)
                steps.append((ticks - t0) // dt)
                slots.append(slot)
                ws.append(w)
        if steps:
            st = np.concatenate(steps)
            order = np.argsort(st, kind="stable")
            return rate_in, cur_in, st[order], np.concatenate(slots)[order], np.concatenate(ws)[order]
        z = np.zeros(0, np.int64)
        return rate_in, cur_in, z, z, np.zeros(0)

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        dt = self.dt_ticks
        n_steps = (t1 - t0) // dt
        ext = self._external(t0, n_steps, inputs)
        count, vrec = self._integrate(n_steps, ext)
        ticks, local = np.empty(count, np.int64), np.empty(count, np.int64)
        first = np.empty(len(self.names) + 1, np.int64)
        K.split_spikes(self._spk_step[:count], self._spk_id[:count], self.lo, t0, dt, ticks, local, first)
        outputs = {}
        for p, name in enumerate(self.names):
            a, b = first[p], first[p + 1]
            outputs[f"{name}.spikes"] = Spikes(ticks[a:b], local[a:b])
        col = 0
        for p, pop in enumerate(self.spec.populations):
            if pop.record_v:
                k = pop.size
                outputs[f"{pop.name}.V_m"] = Samples(t0, dt, vrec[:, col:col + k] + self.vrec_el[col:col + k])
                col += k
        return WindowResult(outputs=outputs)

    def _integrate(self, n_steps: int, ext) -> tuple[int, np.ndarray]:
        """Run the kernel over ``n_steps`` steps with the external inputs ``ext`` (see
        K.network_window); return the number of spikes in ``_spk_step`` / ``_spk_id`` and the
        recorded V (n_steps, len(vrec_idx)). distributed.py calls it once per min-delay chunk."""
        # at most one spike per neuron every (refractory steps + 1) steps, plus the pending ones
        sizes = np.diff(self.lo)
        cap = int(np.sum(sizes * -(-n_steps // (self.ref_steps + 1)))) + int(self.lo[-1])
        if self._spk_step.shape[0] < cap:
            self._spk_step = np.empty(cap, np.int64)
            self._spk_id = np.empty(cap, np.int64)
        vrec = np.empty((n_steps, self.vrec_idx.shape[0]))
        count = K.network_window(
            n_steps, self.step, (self.lo, self.kind, self.par, self.bias, self.th_off, self.het, self.hrow,
                                 self.hpar),
            (self.v, self.i_ex, self.i_in, self.refr, self.ring, self.pend, self.pend_n, self.w_ad),
            (self.indptr, self.slot, self.weight, self.delay, self.row_delay, self.inh_slot, self.g_src, self.g_w,
             self.g_d, self.g_off, self.c_indptr, self.c_tgt),
            self.dense + (self.pring,), ext, self.rng_state, self._spk_step, self._spk_id,
            self.vrec_idx, vrec, self.plastic)
        self.step += n_steps
        if self.plastic[17][0] & ERR_HISTORY:
            raise ModelError("point_network: a plastic projection's source was silent while a target fired more "
                             "than STDP 'history' times; raise 'history' (postsynaptic spikes kept per neuron)")
        return count, vrec

    def spikes_at_stop(self, t_stop: int) -> dict[str, Spikes]:
        """The spikes at tick ``t_stop`` (the end of the last window): the neurons that crossed
        threshold in its last step, still pending emission (SolverRunner records them)."""
        ids = self.pend[:self.pend_n[0]]
        out = {}
        for p, name in enumerate(self.names):
            keep = np.sort(ids[(ids >= self.lo[p]) & (ids < self.lo[p + 1])]) - self.lo[p]
            out[f"{name}.spikes"] = Spikes(np.full(len(keep), t_stop, np.int64), keep.astype(np.int64))
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"v_rel_mV": self.v.copy(), "i_ex_pA": self.i_ex.copy(), "i_in_pA": self.i_in.copy(),
                "refractory_steps": self.refr.copy(), "ring": self.ring.copy(), "dense_ring": self.pring.copy(),
                "pending_spikes": self.pend[:self.pend_n[0]].copy(),
                "w_pA": self.w_ad.copy(), "rng_state": self.rng_state.copy(), "step": np.array(self.step),
                # plastic synapses in CSR order (see ``weights``), weights in the projections' units
                "stdp_weights": self.plastic[7].copy(), "stdp_k_plus": self.plastic[9].copy(),
                "stdp_post_spike_count": self.plastic[14].copy()}

    def close(self) -> None:
        pass
