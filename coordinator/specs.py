"""The base of every spec: a frozen dataclass that validates itself and travels as plain data.

A spec names a registered type (``type``) and holds only msgpack/JSON-able values: numbers,
strings, booleans, None, tuples (lists on the wire), dicts with string keys, and nested specs.
``from_dict(to_dict(s)) == s`` holds for every registered spec (tests/test_specs.py).

Subclasses are declared as::

    @dataclass(frozen=True, slots=True, kw_only=True)
    class LinearSystem(SolverSpec):
        type: ClassVar[str] = "linear"
        ...
        def __post_init__(self): require_number(self, "dt_ms", positive=True)
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import ModelError

if TYPE_CHECKING:
    from .signals import Port


def encode(value: Any) -> Any:
    """A spec field value as msgpack/JSON-able plain data."""
    if isinstance(value, Spec):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return encode(value.tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelError(f"cannot serialise {type(value).__name__} value {value!r}: a spec holds only "
                     "numbers, strings, booleans, None, sequences, dicts and nested specs")


def decode(value: Any) -> Any:
    """Plain data back to spec field values: lists become tuples (recursively)."""
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


class Spec:
    """Base of solver, adapter and probe specs (and of nested parts of them)."""

    __slots__ = ()
    #: registered name of the type (solvers, adapters, probes); nested part specs leave it empty
    type: ClassVar[str] = ""
    #: field name -> Spec subclass for fields that hold nested specs (alone, in a tuple or dict)
    nested: ClassVar[Mapping[str, type]] = {}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.type} if self.type else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = encode(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        if not isinstance(data, Mapping):
            raise ModelError(f"{cls.type or cls.__name__}: expected a dict of fields "
                             f"(got {type(data).__name__})")
        data = dict(data)
        given_type = data.pop("type", cls.type)
        if given_type != cls.type:
            raise ModelError(f"{cls.__name__}: dict has type {given_type!r}, expected {cls.type!r}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelError(f"{cls.type or cls.__name__}: unknown field(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(sorted(names))})")
        kwargs = {}
        for k, v in data.items():
            sub = cls.nested.get(k)
            if sub is not None:
                kwargs[k] = _decode_nested(sub, v)
            else:
                kwargs[k] = decode(v)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise ModelError(f"{cls.type or cls.__name__}: {exc}") from None

    @classmethod
    def example(cls):
        """A valid instance, for round-trip and smoke tests of every registered type.

        Specs whose fields all have defaults need not override this."""
        return cls()

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


class SpecFamily(Spec):
    """Base of a family of nested specs whose ``type`` picks the member on the wire (neuron
    models, node models, coupling functions).

    The family's base class subclasses this, defines ``_kinds: ClassVar[dict] = {}`` and names
    itself in ``family``; every subclass with a ``type`` joins the family. ``Base.from_dict``
    then builds the member that the data's ``type`` names, and rejects an unknown one listing
    the known.
    """

    __slots__ = ()
    family: ClassVar[str] = "spec"

    @classmethod
    def _root(cls) -> type:
        return next(k for k in cls.__mro__ if "_kinds" in k.__dict__)

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        # dataclass(slots=True) makes the class anew: the last registration is the final class
        if cls.type and "_kinds" not in cls.__dict__:
            cls._root()._kinds[cls.type] = cls

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        root = cls._root()
        if cls is root:
            kinds = root._kinds
            if not isinstance(data, Mapping) or data.get("type") not in kinds:
                got = data.get("type") if isinstance(data, Mapping) else data
                raise ModelError(f"{root.family}: 'type' must be one of "
                                 f"{', '.join(map(repr, sorted(kinds)))} (got {got!r})")
            return kinds[data["type"]].from_dict(data)
        return super().from_dict(data)


def _decode_nested(sub: type, value: Any) -> Any:
    if isinstance(value, Mapping) and ("type" in value or not _is_dict_of_specs(value)):
        return sub.from_dict(value)
    if isinstance(value, Mapping):
        return {k: sub.from_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(sub.from_dict(v) for v in value)
    return value


def _is_dict_of_specs(value: Mapping) -> bool:
    return bool(value) and all(isinstance(v, Mapping) for v in value.values())


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class SolverSpec(Spec):
    """A solver's parameters. Subclasses set ``type``, ``level`` and implement the two methods.

    Every solver spec has a ``dt_ms`` field (its integration step, ms).
    """

    __slots__ = ()
    #: 'I' (detailed cells), 'II' (point neurons), 'III' (masses/fields), or 'stimulus' / 'test'
    level: ClassVar[str] = ""

    def ports(self) -> dict[str, "Port"]:
        """The solver's ports, known from the spec alone (so a model is checked before it runs)."""
        raise NotImplementedError

    def build(self, ctx: "SolverContext"):
        """Build the live solver (the Solver protocol) in the process that will run it."""
        raise NotImplementedError

    def input_lead_ms(self) -> float:
        """How far ahead (ms) the solver takes its inputs: ``advance(t0, t1)`` receives the inputs
        that arrive in ``[t0 + lead, t1 + lead)``, so that a simulator which must schedule input
        events ahead (NEST's devices) can make them act exactly at their arrival time. A whole
        number of ``dt_ms`` and of every sampled input port's period; every coupling into the
        solver then needs ``delay >= window + lead`` (checked by the plan). Default 0: inputs
        over the window itself."""
        return 0.0


class AdapterSpec(Spec):
    """A translator on a coupling. Subclasses implement ``signature`` and ``build``."""

    __slots__ = ()

    def signature(self, incoming, ctx: "AdapterContext"):
        """The SignalSpec this adapter produces from ``incoming``; ModelError if it does not fit."""
        raise NotImplementedError

    def build(self, incoming, ctx: "AdapterContext"):
        """The live adapter: a callable ``(t0, t1, signal) -> signal`` with ``state()``."""
        raise NotImplementedError


class ProbeSpec(Spec):
    """A measurement: a local part in each solver process, a global part where the file is written.

    Subclasses implement :meth:`solvers`, :meth:`describe` and :meth:`local`; :meth:`combine`
    defaults to the sum over solvers (what the physics of LFP, EEG and MEG does).
    """

    __slots__ = ()
    modality: ClassVar[str] = ""

    def solvers(self) -> tuple[str, ...]:
        """Names of the solvers this probe takes a local part from."""
        raise NotImplementedError

    def describe(self, ports: Mapping[str, Mapping[str, "Port"]], window_ticks: int) -> "ProbeInfo":
        """Channels, sample period, units and positions; ModelError if the solvers do not fit."""
        raise NotImplementedError

    def local(self, solver_name: str, solver: Any, ports: Mapping[str, "Port"], info: "ProbeInfo"):
        """Built in the solver's process: a callable ``(t0, t1, result) -> (n_samples, n_channels)``
        computing this solver's contribution from its WindowResult (or from the solver itself,
        e.g. transmembrane currents it exposes); ``info`` is what :meth:`describe` returned."""
        raise NotImplementedError

    def combine(self, info: "ProbeInfo"):
        """Built where the run file is written: a callable ``(t0, t1, parts) -> (n_samples,
        n_channels)`` merging the parts (dict solver -> array), with one row per multiple of
        ``info.period_ticks`` in [t0, t1). Stateful stages (head models, haemodynamics) return
        an object that keeps its state between windows. The default sums the parts, which
        assumes parts and output share channels and period."""
        def total(t0: int, t1: int, parts: Mapping[str, np.ndarray]) -> np.ndarray:
            names = sorted(parts)
            if not names:
                return np.sum([], axis=0)
            # left to right into a copy of the first: what np.sum over the stacked parts adds
            # along its first axis (the same bits), without stacking them every window
            out = np.array(parts[names[0]])
            for name in names[1:]:
                out += parts[name]
            return out
        return total


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeInfo:
    """What a probe writes, and what its local parts hand to its global part.

    n_channels, period_ticks, units, modality : the written signal: ``n_channels`` columns at
        every tick that is a multiple of ``period_ticks`` (which need not divide the window: a
        BOLD probe writes one sample per TR, whatever the window)
    positions : (n_channels, 3) electrode/sensor positions (um) or None
    part_channels, part_period_ticks : shape of each solver's local part, (rows at multiples of
        part_period_ticks in the window, part_channels); default: the same as the written signal
    """

    n_channels: int
    period_ticks: int
    units: str
    modality: str
    positions: tuple[tuple[float, float, float], ...] | None = None
    part_channels: int | None = None
    part_period_ticks: int | None = None

    @property
    def part_shape_channels(self) -> int:
        return self.n_channels if self.part_channels is None else self.part_channels

    @property
    def part_period(self) -> int:
        return self.period_ticks if self.part_period_ticks is None else self.part_period_ticks


@dataclasses.dataclass(frozen=True, slots=True)
class SolverContext:
    """What a solver is built with, in the process that runs it.

    name : the solver's name in the model
    seed : the run seed
    rng : a Generator seeded from (run seed, stable hash of name): the same stream on any host
    comm : an MPI communicator when the transport gives the solver several ranks, else None
    consumed : the out-ports whose signals something reads (a coupling from the port, a
        recording of it, or any probe on the solver: a probe may read every port), or None
        when unknown (a solver built outside a plan): then every out-port counts as read. A
        solver may skip the work of an out-port not in it and return that port empty (no
        spikes; samples of the right shape, any finite values): nothing looks at them.
    """

    name: str
    seed: int
    rng: np.random.Generator
    comm: Any = None
    consumed: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AdapterContext:
    """What an adapter is built with: the window, the destination port, its own RNG."""

    coupling: str
    window_ticks: int
    target_period_ticks: int | None
    rng: np.random.Generator | None = None
