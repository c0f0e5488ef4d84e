"""The model: what a coupled run is made of, as data.

A :class:`Model` is built in a Python config file and holds only specs (frozen dataclasses), so it
serialises to plain msgpack/JSON data (:meth:`Model.to_dict`), travels to worker processes and is
stored in the run file under ``/model``. It checks what it can as things are added (names,
types); :func:`polyscale.coordinator.plan.make_plan` checks the whole model and reports every
problem at once.

Addresses name a port and optionally channels of it: ``"cortex.E.spikes"``,
``"brain.input[12]"``, ``"brain.rate[0:10]"``, ``"cells.v[0, 3, 7]"``. The solver name is the part
before the first dot.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import registry
from .errors import ModelError
from .specs import AdapterSpec, ProbeSpec, SolverSpec
from .validation import is_number

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_ADDRESS_RE = re.compile(r"^(?P<solver>[^.\[\]\s]+)\.(?P<port>[^\[\]\s]+)(?:\[(?P<sel>[^\]]*)\])?$")
INTERPOLATIONS = ("hold", "linear")
MODEL_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed address: solver, port, and the selected channels (None: all of them)."""

    solver: str
    port: str
    selection: tuple[int, ...] | None = None
    text: str = ""

    @classmethod
    def parse(cls, text: Any, what: str) -> "Endpoint":
        if not isinstance(text, str):
            raise ModelError(f"{what} must be an address string like 'solver.port' or "
                             f"'solver.port[0:10]' (got {text!r})")
        m = _ADDRESS_RE.match(text.strip())
        if m is None:
            raise ModelError(f"{what} {text!r} is not an address of the form 'solver.port', "
                             f"'solver.port[i]', 'solver.port[i, j, ...]' or 'solver.port[a:b]'")
        sel = m.group("sel")
        return cls(m.group("solver"), m.group("port"),
                   None if sel is None else _parse_selection(sel, text, what), text.strip())

    def resolve(self, size: int, what: str) -> tuple[int, ...]:
        """The selected channel indices for a port of ``size`` channels (all if no selection)."""
        if self.selection is None:
            return tuple(range(size))
        bad = [i for i in self.selection if not 0 <= i < size]
        if bad:
            raise ModelError(f"{what} {self.text!r}: channel {bad[0]} is out of range; port "
                             f"{self.solver}.{self.port} has {size} channel(s) (0..{size - 1})")
        return self.selection


def _parse_selection(sel: str, text: str, what: str) -> tuple[int, ...]:
    sel = sel.strip()
    try:
        if ":" in sel:
            parts = [p.strip() for p in sel.split(":")]
            if len(parts) > 3:
                raise ValueError
            start = int(parts[0]) if parts[0] else 0
            if not parts[1]:
                raise ValueError
            stop = int(parts[1])
            step = int(parts[2]) if len(parts) == 3 and parts[2] else 1
            if step <= 0 or start < 0 or stop <= start:
                raise ValueError
            return tuple(range(start, stop, step))
        items = tuple(int(p) for p in sel.split(","))
        if not items or any(i < 0 for i in items):
            raise ValueError
        return items
    except ValueError:
        raise ModelError(f"{what} {text!r}: the selection [{sel}] must be an index, a list of "
                         f"indices or a slice a:b[:step] of non-negative integers with b > a") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Coupling:
    """Output port -> input port, with a delay, a weight and an optional chain of adapters.

    source, target : addresses ('solver.port[sel]')
    delay_ms : transmission delay (ms); must be at least one window
    via : adapters applied in order on the destination side
    weight : multiplies delivered samples; becomes each delivered spike's weight
    interpolation : how sampled signals are put on the destination's sample grid: 'hold'
        (the latest source sample at or before t - delay; causal, the default) or 'linear'
        (between the two source samples around t - delay; needs delay >= window + source period)
    """

    source: str
    target: str
    delay_ms: float
    via: tuple[AdapterSpec, ...] = ()
    weight: float = 1.0
    interpolation: str = "hold"

    def __post_init__(self) -> None:
        Endpoint.parse(self.source, "coupling source")
        Endpoint.parse(self.target, "coupling target")
        name = f"coupling {self.source} -> {self.target}"
        if not is_number(self.delay_ms) or not self.delay_ms == self.delay_ms or self.delay_ms < 0:
            raise ModelError(f"{name}: 'delay_ms' must be a finite number >= 0 (got {self.delay_ms!r})")
        if not is_number(self.weight) or self.weight != self.weight or abs(self.weight) == float("inf"):
            raise ModelError(f"{name}: 'weight' must be a finite number (got {self.weight!r})")
        if self.interpolation not in INTERPOLATIONS:
            raise ModelError(f"{name}: 'interpolation' must be one of {INTERPOLATIONS} "
                             f"(got {self.interpolation!r})")
        via = self.via
        if isinstance(via, AdapterSpec):
            via = (via,)
        if not isinstance(via, Iterable) or isinstance(via, (str, bytes)):
            raise ModelError(f"{name}: 'via' must be a list of adapter specs (got {via!r})")
        via = tuple(via)
        for a in via:
            if not isinstance(a, AdapterSpec):
                raise ModelError(f"{name}: 'via' holds {a!r}, which is not an adapter spec "
                                 f"(e.g. ps.adapters.SpikesToRate(bin_ms=1.0))")
        object.__setattr__(self, "via", via)
        object.__setattr__(self, "delay_ms", float(self.delay_ms))
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def name(self) -> str:
        return f"{self.source} -> {self.target}"

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "delay_ms": self.delay_ms,
                "via": [a.to_dict() for a in self.via], "weight": self.weight,
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Coupling":
        d = dict(d)
        via = tuple(registry.spec_from_dict("adapters", a) for a in d.pop("via", ()))
        try:
            return cls(via=via, **d)
        except TypeError as exc:
            raise ModelError(f"coupling: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """Write an output port to the run file.

    target : address of an out port ('solver.port[sel]')
    every_ms : for sampled ports, keep one sample every every_ms (a multiple of the port's
        period); None keeps every sample. Spikes are always kept in full.
    """

    target: str
    every_ms: float | None = None

    def __post_init__(self) -> None:
        Endpoint.parse(self.target, "recording")
        if self.every_ms is not None and (not is_number(self.every_ms) or not self.every_ms > 0
                                          or self.every_ms == float("inf")):
            raise ModelError(f"recording {self.target}: 'every_ms' must be a finite number > 0 "
                             f"or None (got {self.every_ms!r})")

    def to_dict(self) -> dict:
        return {"target": self.target, "every_ms": self.every_ms}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Recording":
        return cls(**d)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where a solver runs: a run option, not science (the same model runs anywhere).

    host : label of the worker that runs it ('node03'); None lets the transport choose
    ranks : number of MPI ranks (or processes) the solver spans; 1 unless the solver supports more
    """

    host: str | None = None
    ranks: int = 1

    def __post_init__(self) -> None:
        if self.host is not None and (not isinstance(self.host, str) or not self.host):
            raise ModelError(f"placement: 'host' must be a non-empty string or None (got {self.host!r})")
        if isinstance(self.ranks, bool) or not isinstance(self.ranks, int) or self.ranks < 1:
            raise ModelError(f"placement: 'ranks' must be an integer >= 1 (got {self.ranks!r})")

    def to_dict(self) -> dict:
        return {"host": self.host, "ranks": self.ranks}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Placement":
        return cls(**d)


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ModelError(f"{what} name must be a letter or '_' followed by letters, digits, '_' "
                         f"or '-' (got {name!r})")
    return name


class Model:
    """A coupled run: named solvers, couplings between their ports, recordings and probes.

    Parameters
    ----------
    seed : run seed; every solver's and adapter's random stream is split from it by name
    t_stop_ms : simulated duration (ms)
    window_ms : exchange interval (ms); None picks the largest one the couplings allow

    Examples
    --------
    >>> import polyscale as ps
    >>> model = ps.Model(seed=1, t_stop_ms=100.0)
    >>> model.solver("a", ps.solvers.LinearSystem(a=((-0.1,),), dt_ms=0.1))
    >>> model.solver("b", ps.solvers.LinearSystem(a=((-0.2,),), dt_ms=0.1))
    >>> model.couple("a.x", "b.u", delay_ms=2.0)
    >>> model.record("b.x")
    """

    def __init__(self, *, seed: int = 0, t_stop_ms: float = 1000.0, window_ms: float | None = None):
        self.seed = seed
        self.t_stop_ms = t_stop_ms
        self.window_ms = window_ms
        self.solvers: dict[str, SolverSpec] = {}
        self.couplings: list[Coupling] = []
        self.recordings: list[Recording] = []
        self.probes: dict[str, ProbeSpec] = {}
        self.placement: dict[str, Placement] = {}
        self.metadata: dict[str, Any] = {}
        self._check_header()

    def _check_header(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ModelError(f"model: 'seed' must be an integer in [0, 2**63) (got {self.seed!r})")
        if not is_number(self.t_stop_ms) or not 0 < self.t_stop_ms < float("inf"):
            raise ModelError(f"model: 't_stop_ms' must be a finite number > 0 (got {self.t_stop_ms!r})")
        if self.window_ms is not None and (not is_number(self.window_ms)
                                           or not 0 < self.window_ms < float("inf")):
            raise ModelError(f"model: 'window_ms' must be a finite number > 0 or None "
                             f"(got {self.window_ms!r})")

    # -- building -----------------------------------------------------------------------------
    def solver(self, name: str, spec: SolverSpec) -> None:
        """Add a solver under ``name`` (letters, digits, '_', '-')."""
        _check_name(name, "solver")
        if name in self.solvers:
            raise ModelError(f"solver {name!r} is already in the model")
        if not isinstance(spec, SolverSpec):
            raise ModelError(f"solver {name!r}: expected a solver spec such as "
                             f"ps.solvers.LinearSystem(...) (got {type(spec).__name__})")
        registry.ensure_registered("solvers", type(spec))
        self.solvers[name] = spec

    def couple(self, source: str, target: str, *, delay_ms: float,
               via: Sequence[AdapterSpec] | AdapterSpec = (), weight: float = 1.0,
               interpolation: str = "hold") -> None:
        """Route ``source`` (an out port) to ``target`` (an in port) after ``delay_ms``."""
        c = Coupling(source=source, target=target, delay_ms=delay_ms, via=via, weight=weight,
                     interpolation=interpolation)
        for a in c.via:
            registry.ensure_registered("adapters", type(a))
        self.couplings.append(c)

    def record(self, target: str, *, every_ms: float | None = None) -> None:
        """Write out port ``target`` to the run file (sampled ports: every ``every_ms``)."""
        self.recordings.append(Recording(target=target, every_ms=every_ms))

    def probe(self, name: str, spec: ProbeSpec) -> None:
        """Add a probe: a measurement written to ``/probes/<name>`` in the run file."""
        _check_name(name, "probe")
        if name in self.probes:
            raise ModelError(f"probe {name!r} is already in the model")
        if not isinstance(spec, ProbeSpec):
            raise ModelError(f"probe {name!r}: expected a probe spec such as "
                             f"ps.probes.LinearReadout(...) (got {type(spec).__name__})")
        registry.ensure_registered("probes", type(spec))
        self.probes[name] = spec

    def place(self, name: str, *, host: str | None = None, ranks: int = 1) -> None:
        """Say where solver ``name`` runs (see :class:`Placement`); transports that cannot honour
        it say so when the run starts. The CLI's ``--place name=host`` does the same."""
        self.placement[name] = Placement(host=host, ranks=ranks)

    def with_options(self, *, seed: int | None = None, t_stop_ms: float | None = None,
                     window_ms: float | None = None) -> "Model":
        """A copy with run options changed (what the CLI's --seed and --t-stop do)."""
        m = Model(seed=self.seed if seed is None else seed,
                  t_stop_ms=self.t_stop_ms if t_stop_ms is None else t_stop_ms,
                  window_ms=self.window_ms if window_ms is None else window_ms)
        # specs are frozen: sharing them is safe
        m.solvers = dict(self.solvers)
        m.couplings = list(self.couplings)
        m.recordings = list(self.recordings)
        m.probes = dict(self.probes)
        m.placement = dict(self.placement)
        m.metadata = dict(self.metadata)
        return m

    # -- data ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The model as plain data (msgpack/JSON types only)."""
        return {
            "format": MODEL_FORMAT,
            "seed": self.seed,
            "t_stop_ms": float(self.t_stop_ms),
            "window_ms": None if self.window_ms is None else float(self.window_ms),
            "solvers": {n: s.to_dict() for n, s in self.solvers.items()},
            "couplings": [c.to_dict() for c in self.couplings],
            "recordings": [r.to_dict() for r in self.recordings],
            "probes": {n: p.to_dict() for n, p in self.probes.items()},
            "placement": {n: p.to_dict() for n, p in self.placement.items()},
            "metadata": _plain(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Model":
        if not isinstance(d, Mapping):
            raise ModelError(f"a model must be a dict (got {type(d).__name__})")
        fmt = d.get("format", MODEL_FORMAT)
        if fmt != MODEL_FORMAT:
            raise ModelError(f"model format {fmt!r} is not supported (this polyscale reads {MODEL_FORMAT})")
        m = cls(seed=d.get("seed", 0), t_stop_ms=d.get("t_stop_ms", 1000.0), window_ms=d.get("window_ms"))
        for name, s in (d.get("solvers") or {}).items():
            m.solver(name, registry.spec_from_dict("solvers", s))
        m.couplings = [Coupling.from_dict(c) for c in d.get("couplings") or ()]
        m.recordings = [Recording.from_dict(r) for r in d.get("recordings") or ()]
        for name, p in (d.get("probes") or {}).items():
            m.probe(name, registry.spec_from_dict("probes", p))
        m.placement = {n: Placement.from_dict(p) for n, p in (d.get("placement") or {}).items()}
        m.metadata = dict(d.get("metadata") or {})
        return m

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"Model(seed={self.seed}, t_stop_ms={self.t_stop_ms}, solvers={list(self.solvers)}, "
                f"couplings={len(self.couplings)}, recordings={len(self.recordings)}, "
                f"probes={list(self.probes)})")

    def check(self):
        """Validate the whole model; return the Plan or raise ModelError listing every problem."""
        from .plan import make_plan
        return make_plan(self)


def _plain(value: Any) -> Any:
    from .specs import encode
    return encode(value)


__all__ = ["Model", "Coupling", "Recording", "Endpoint", "Placement", "INTERPOLATIONS"]
