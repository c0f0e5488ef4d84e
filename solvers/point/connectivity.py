"""Connection rules and parameter distributions of projections, and how synapses are drawn.

Rules follow NEST's ``Connect`` (fixed in-degree, fixed out-degree, pairwise Bernoulli,
one-to-one, all-to-all, explicit pairs) with its ``allow_autapses`` / ``allow_multapses`` options; weights and
delays are constants or drawn per synapse from a distribution. Every draw uses the solver's
seeded Generator, projection after projection in model order, so the same seed gives the same
connectome on any host.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.specs import Spec
from ...coordinator.validation import as_tuple, fail, require_int, require_number


class _Variant(Spec):
    """A nested spec whose ``type`` picks the subclass on the wire (one registry per base)."""

    __slots__ = ()
    _what: ClassVar[str] = ""

    @classmethod
    def _registry(cls) -> dict[str, type]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        reg = cls._registry()
        if not cls.type:
            if not isinstance(data, Mapping) or data.get("type") not in reg:
                got = data.get("type") if isinstance(data, Mapping) else data
                raise ModelError(f"{cls._what}: 'type' must be one of "
                                 f"{', '.join(map(repr, sorted(reg)))} (got {got!r})")
            return reg[data["type"]].from_dict(data)
        return Spec.from_dict.__func__(cls, data)


# -- distributions ---------------------------------------------------------------------------

class Distribution(_Variant):
    """A per-synapse value drawn independently for every synapse."""

    __slots__ = ()
    _what: ClassVar[str] = "distribution"
    _kinds: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if cls.type:
            Distribution._kinds[cls.type] = cls

    @classmethod
    def _registry(cls):
        return Distribution._kinds

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class Normal(Distribution):
    """Normal(mean, std), optionally bounded to [low, high]: values outside are set to the
    bound, or with ``redraw=True`` drawn again until inside (NEST's ``nest.math.redraw``)."""

    type: ClassVar[str] = "normal"
    mean: float
    std: float
    low: float | None = None
    high: float | None = None
    redraw: bool = False

    def __post_init__(self) -> None:
        require_number(self, "mean")
        require_number(self, "std", nonnegative=True)
        require_number(self, "low", "high", allow_none=True)
        if not isinstance(self.redraw, bool):
            raise fail(self, f"'redraw' must be True or False (got {self.redraw!r})")
        if self.redraw:
            lo = -np.inf if self.low is None else self.low
            hi = np.inf if self.high is None else self.high
            # at least 1e-3 of the mass inside, or redrawing would not end in reasonable time
            from math import erf, sqrt
            z = (lambda x: 0.5 * (1 + erf((x - self.mean) / (self.std * sqrt(2)))) if self.std > 0
                 else float(x >= self.mean))
            if not (hi > lo and z(hi) - z(lo) > 1e-3):
                raise fail(self, f"redraw: less than 0.1% of Normal({self.mean}, {self.std}) lies in "
                                 f"[{self.low}, {self.high}]")

    def draw(self, rng, n):
        x = rng.normal(self.mean, self.std, n)
        if self.low is not None or self.high is not None:
            if self.redraw:
                lo = -np.inf if self.low is None else self.low
                hi = np.inf if self.high is None else self.high
                bad = np.flatnonzero((x < lo) | (x > hi))
                while bad.size:
                    x[bad] = rng.normal(self.mean, self.std, bad.size)
                    bad = bad[(x[bad] < lo) | (x[bad] > hi)]
            else:
                np.clip(x, self.low, self.high, out=x)
        return x


@dataclass(frozen=True, slots=True, kw_only=True)
class Uniform(Distribution):
    """Uniform on [low, high)."""

    type: ClassVar[str] = "uniform"
    low: float
    high: float

    def __post_init__(self) -> None:
        require_number(self, "low", "high")
        if self.high < self.low:
            raise fail(self, f"'high' must be >= 'low' (got low={self.low}, high={self.high})")

    def draw(self, rng, n):
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lorentzian(Distribution):
    """Lorentzian (Cauchy) of centre ``center`` and half-width at half-maximum ``half_width``;
    e.g. the initial V of QIF neurons on the Montbrio-Pazo-Roxin manifold (centre V, half-width
    pi tau r)."""

    type: ClassVar[str] = "lorentzian"
    center: float
    half_width: float

    def __post_init__(self) -> None:
        require_number(self, "center")
        require_number(self, "half_width", nonnegative=True)

    def draw(self, rng, n):
        return self.center + self.half_width * np.tan(np.pi * (rng.random(n) - 0.5))


# -- connection rules ------------------------------------------------------------------------

class Rule(_Variant):
    """How the pairs (source, target) of a projection are chosen."""

    __slots__ = ()
    _what: ClassVar[str] = "connection rule"
    _kinds: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if cls.type:
            Rule._kinds[cls.type] = cls

    @classmethod
    def _registry(cls):
        return Rule._kinds

    def check(self, n_src: int, n_tgt: int, autapses: bool, multapses: bool, same: bool) -> str | None:
        """A problem with these sizes and options, or None."""
        return None

    def pairs(self, rng, n_src: int, n_tgt: int, autapses: bool, multapses: bool,
              same: bool) -> tuple[np.ndarray, np.ndarray]:
        """(src (k,) int32, tgt (k,) int32), local indices in the two populations."""
        raise NotImplementedError


def _redraw_autapses(rng, src, tgt_of_row, n_src):
    """Redraw sources equal to their target (NEST's rejection) until none is left."""
    bad = np.flatnonzero(src == tgt_of_row)
    while bad.size:
        src[bad] = rng.integers(0, n_src, bad.size, dtype=np.int32)
        bad = bad[src[bad] == tgt_of_row[bad]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedIndegree(Rule):
    """Every target neuron gets exactly ``indegree`` incoming synapses from uniformly drawn sources."""

    type: ClassVar[str] = "fixed_indegree"
    indegree: int

    def __post_init__(self) -> None:
        require_int(self, "indegree", minimum=0)

    def check(self, n_src, n_tgt, autapses, multapses, same):
        avail = n_src - (1 if same and not autapses else 0)
        if not multapses and self.indegree > avail:
            return (f"fixed_indegree: 'indegree'={self.indegree} exceeds the {avail} possible sources "
                    f"without multapses")
        if avail < 1 and self.indegree > 0:
            return "fixed_indegree: no possible source (one neuron, autapses not allowed)"
        return None

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        k = self.indegree
        tgt = np.repeat(np.arange(n_tgt, dtype=np.int32), k)
        if multapses:
            src = rng.integers(0, n_src, n_tgt * k, dtype=np.int32)
            if same and not autapses:
                _redraw_autapses(rng, src, tgt, n_src)
            return src, tgt
        src = np.empty(n_tgt * k, np.int32)
        for j in range(n_tgt):
            if same and not autapses:
                pick = rng.choice(n_src - 1, k, replace=False)
                pick += pick >= j
            else:
                pick = rng.choice(n_src, k, replace=False)
            src[j * k:(j + 1) * k] = pick
        return src, tgt


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedOutdegree(Rule):
    """Every source neuron makes exactly ``outdegree`` synapses onto uniformly drawn targets."""

    type: ClassVar[str] = "fixed_outdegree"
    outdegree: int

    def __post_init__(self) -> None:
        require_int(self, "outdegree", minimum=0)

    def check(self, n_src, n_tgt, autapses, multapses, same):
        return FixedIndegree(indegree=self.outdegree).check(n_tgt, n_src, autapses, multapses, same)

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        tgt, src = FixedIndegree(indegree=self.outdegree).pairs(rng, n_tgt, n_src, autapses, multapses, same)
        return src, tgt


@dataclass(frozen=True, slots=True, kw_only=True)
class PairwiseBernoulli(Rule):
    """Each pair (source, target) is connected with probability ``p`` (never twice)."""

    type: ClassVar[str] = "pairwise_bernoulli"
    p: float

    def __post_init__(self) -> None:
        require_number(self, "p", nonnegative=True)
        if self.p > 1:
            raise fail(self, f"'p' must be in [0, 1] (got {self.p})")

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        srcs, tgts = [], []
        for j in range(n_tgt):
            s = np.flatnonzero(rng.random(n_src) < self.p).astype(np.int32)
            if same and not autapses:
                s = s[s != j]
            srcs.append(s)
            tgts.append(np.full(s.size, j, np.int32))
        if not srcs:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        return np.concatenate(srcs), np.concatenate(tgts)


@dataclass(frozen=True, slots=True, kw_only=True)
class OneToOne(Rule):
    """Source i onto target i (the populations must have the same size)."""

    type: ClassVar[str] = "one_to_one"

    def check(self, n_src, n_tgt, autapses, multapses, same):
        if n_src != n_tgt:
            return f"one_to_one: source and target sizes differ ({n_src} != {n_tgt})"
        if same and not autapses:
            return "one_to_one within one population makes only autapses, but allow_autapses is False"
        return None

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        i = np.arange(n_src, dtype=np.int32)
        return i, i.copy()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllToAll(Rule):
    """Every source onto every target (minus autapses if not allowed)."""

    type: ClassVar[str] = "all_to_all"

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        src = np.tile(np.arange(n_src, dtype=np.int32), n_tgt)
        tgt = np.repeat(np.arange(n_tgt, dtype=np.int32), n_src)
        if same and not autapses:
            keep = src != tgt
            src, tgt = src[keep], tgt[keep]
        return src, tgt


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedTotalNumber(Rule):
    """``n`` synapses, each between a uniformly drawn source and target (NEST's
    ``fixed_total_number``; multapses must be allowed, autapses are redrawn where not)."""

    type: ClassVar[str] = "fixed_total_number"
    n: int

    def __post_init__(self) -> None:
        require_int(self, "n", minimum=0)

    def check(self, n_src, n_tgt, autapses, multapses, same):
        if not multapses:
            return "fixed_total_number: needs allow_multapses=True (pairs are drawn with replacement)"
        if same and not autapses and n_src < 2 and self.n > 0:
            return "fixed_total_number: no possible pair (one neuron, autapses not allowed)"
        return None

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        src = rng.integers(0, n_src, self.n, dtype=np.int32)
        tgt = rng.integers(0, n_tgt, self.n, dtype=np.int32)
        if same and not autapses:
            _redraw_autapses(rng, src, tgt, n_src)
        return src, tgt


@dataclass(frozen=True, slots=True, kw_only=True)
class Explicit(Rule):
    """The given pairs: ``sources[k]`` onto ``targets[k]`` (indices within the two populations)."""

    type: ClassVar[str] = "explicit"
    sources: tuple
    targets: tuple

    def __post_init__(self) -> None:
        for name in ("sources", "targets"):
            values = as_tuple(self, name)
            if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in values):
                raise fail(self, f"{name!r} must hold neuron indices >= 0 (got {values!r})")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        if len(self.sources) != len(self.targets):
            raise fail(self, f"'sources' has {len(self.sources)} entries but 'targets' has {len(self.targets)}")

    def check(self, n_src, n_tgt, autapses, multapses, same):
        if self.sources and max(self.sources) >= n_src:
            return f"explicit: source index {max(self.sources)} is outside [0, {n_src})"
        if self.targets and max(self.targets) >= n_tgt:
            return f"explicit: target index {max(self.targets)} is outside [0, {n_tgt})"
        pairs = list(zip(self.sources, self.targets))
        if same and not autapses and any(s == t for s, t in pairs):
            return "explicit: lists an autapse, but allow_autapses is False"
        if not multapses and len(set(pairs)) != len(pairs):
            return "explicit: lists a pair twice, but allow_multapses is False"
        return None

    def pairs(self, rng, n_src, n_tgt, autapses, multapses, same):
        return np.array(self.sources, np.int32), np.array(self.targets, np.int32)


def draw_values(value, rng, n: int) -> np.ndarray:
    """(n,) float64 per-synapse values: a constant repeated, or draws from a Distribution."""
    if isinstance(value, Distribution):
        return np.asarray(value.draw(rng, n), dtype=np.float64)
    return np.full(n, float(value))
