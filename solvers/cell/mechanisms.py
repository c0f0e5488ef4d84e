"""Membrane mechanisms and point processes as data.

:class:`Insert` places a density mechanism on sections (by name or kind, or 'all'), with
parameters that override the mechanism's defaults: one number for every cell, or one per cell,
optionally scaled along the tree by a :class:`Distance` profile; :class:`Ions` sets the sections'
ion reversal potentials (ena, ek, eca) the same way, shared by every mechanism that reads them
(NEURON's ``sec.ek``). The mechanisms themselves are
modules of ``mech/`` (one file each, plus the ``polyscale.mechanisms`` entry points).
:class:`IClamp`, :class:`Exp2Syn` (and its presets :func:`AMPA`, :func:`NMDA`, :func:`GABAA`)
and :class:`AlphaSynapse` are point processes at a section and relative position, placed in
every cell of a population. The kernels that integrate them are in ``_kernels.py`` and
``_generated.py``.

Density parameters are per membrane area (S/cm2), reversal potentials in mV, as in NEURON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from ...coordinator.specs import Spec
from ...coordinator.validation import fail, require_number, require_str
from .mech import ION_REVERSALS, registry


class _Defaults(dict):
    # mechanism name -> parameter -> default, read from the registry when first used (so that
    # entry-point mechanisms appear too)
    def _fill(self):
        if not dict.__len__(self):
            self.update({k: dict(m.params) for k, m in registry().items()})

    def __getitem__(self, k):
        self._fill()
        return dict.__getitem__(self, k)

    def __contains__(self, k):
        self._fill()
        return dict.__contains__(self, k)

    def __iter__(self):
        self._fill()
        return dict.__iter__(self)

    def __len__(self):
        self._fill()
        return dict.__len__(self)

    def keys(self):
        self._fill()
        return dict.keys(self)

    def items(self):
        self._fill()
        return dict.items(self)


#: mechanism name -> parameter -> default (units in the name's suffix), from ``mech/``
MECHANISMS: dict[str, dict[str, float]] = _Defaults()

DISTANCE_KINDS = ("linear", "exp", "window")


@dataclass(frozen=True, slots=True, kw_only=True)
class Distance(Spec):
    """Scale one parameter of an :class:`Insert` by a profile f(d) of the path distance d (um)
    from the root section's 0-end to each segment's centre:

    kind 'linear': f = a + b d / length_um; 'exp': f = a + b exp(d / length_um);
    'window': f = b where lo_um <= d <= hi_um, a elsewhere.

    E.g. Hay et al. (2011)'s apical Ih: Distance(param="gIhbar_S_cm2", kind="exp", a=-0.8696,
    b=2.087, length_um=323); their calcium hot zone: kind="window", a=0.01, b=1, lo_um=685,
    hi_um=885 (the parameter given as its hot-zone value).
    """

    param: str
    kind: str = "exp"
    a: float = 0.0
    b: float = 1.0
    length_um: float = 1.0
    lo_um: float = 0.0
    hi_um: float = 1e12

    def __post_init__(self) -> None:
        require_str(self, "param")
        if self.kind not in DISTANCE_KINDS:
            raise fail(self, f"'kind' must be one of {', '.join(map(repr, DISTANCE_KINDS))} (got {self.kind!r})")
        require_number(self, "a", "b", "lo_um", "hi_um")
        require_number(self, "length_um", positive=True)
        if self.lo_um > self.hi_um:
            raise fail(self, f"'lo_um' must not exceed 'hi_um' (got {self.lo_um} > {self.hi_um})")

    def factor(self, d_um):
        """f(d) for path distances d (um), an array."""
        import numpy as np
        d = np.asarray(d_um, dtype=np.float64)
        if self.kind == "linear":
            return self.a + self.b * d / self.length_um
        if self.kind == "exp":
            return self.a + self.b * np.exp(d / self.length_um)
        return np.where((d >= self.lo_um) & (d <= self.hi_um), self.b, self.a)


def _finite(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _ion_hint(name: str) -> str:
    return (f"{name!r} is an ion reversal potential shared by every mechanism at the node that "
            f"uses the ion (NEURON's sec.{name[:-3]}), not a mechanism parameter: set it per "
            f"section with CellPopulation(ions=(Ions(where=..., params={{{name!r}: ...}}),))")


def _clean_params(spec, params: dict, known, label: str) -> dict:
    # parameter -> float, or tuple of one float per cell; unknown names and bad values refused
    if not isinstance(params, dict):
        raise fail(spec, f"'params' must be a dict (got {type(params).__name__})")
    clean = {}
    for k, v in params.items():
        if k not in known:
            if k in ION_REVERSALS:
                raise fail(spec, f"{label}: {_ion_hint(k)}")
            raise fail(spec, f"{label}: unknown parameter {k!r} (known: {', '.join(known)})")
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, (list, tuple)):
            if not v or not all(_finite(x) for x in v):
                raise fail(spec, f"{label}: parameter {k!r} must be a finite number or a "
                                 f"non-empty sequence of finite numbers, one per cell (got {v!r})")
            clean[k] = tuple(float(x) for x in v)
        elif _finite(v):
            clean[k] = float(v)
        else:
            raise fail(spec, f"{label}: parameter {k!r} must be a finite number or a "
                             f"sequence of one per cell (got {v!r})")
    return clean


def _clean_distribution(spec, dist, known, label: str) -> tuple:
    if isinstance(dist, Distance):
        dist = (dist,)
    if not isinstance(dist, (list, tuple)) or not all(isinstance(x, Distance) for x in dist):
        raise fail(spec, f"'distribution' must be a Distance or a sequence of them (got {dist!r})")
    seen = set()
    for x in dist:
        if x.param not in known:
            if x.param in ION_REVERSALS:
                raise fail(spec, f"distribution: {_ion_hint(x.param)}")
            raise fail(spec, f"distribution: {label} has no parameter {x.param!r} "
                             f"(known: {', '.join(known)})")
        if x.param in seen:
            raise fail(spec, f"distribution: parameter {x.param!r} has two profiles")
        seen.add(x.param)
    return tuple(dist)


@dataclass(frozen=True, slots=True, kw_only=True)
class Insert(Spec):
    """Insert density mechanism ``mechanism`` on sections matching ``where`` (name, kind or 'all').

    params : parameter name -> value overriding the mechanism's default: a number, or a sequence
        of one number per cell (length n of the population, checked there)
    distribution : Distance profiles (one per parameter at most) multiplying their parameter
    """

    mechanism: str
    where: str = "all"
    params: dict = field(default_factory=dict)
    distribution: tuple = ()

    nested: ClassVar = {"distribution": Distance}

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise fail(self, f"'mechanism' must be one of {', '.join(map(repr, MECHANISMS))} "
                             f"(got {self.mechanism!r})")
        require_str(self, "where")
        known = MECHANISMS[self.mechanism]
        object.__setattr__(self, "params", _clean_params(self, self.params, known, self.mechanism))
        object.__setattr__(self, "distribution",
                           _clean_distribution(self, self.distribution, known, self.mechanism))

    def value(self, name: str):
        """The parameter's value: a float, or a tuple of one per cell."""
        return self.params.get(name, MECHANISMS[self.mechanism][name])

    def per_cell(self) -> bool:
        return any(isinstance(v, tuple) for v in self.params.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class Ions(Spec):
    """Ion reversal potentials (mV) of the sections matching ``where`` (name, kind or 'all'),
    as NEURON's ``sec.ena = 50``: every mechanism at a node that uses the ion (``reads`` 'ena',
    'ek' or 'eca') sees the node's value. Placements apply in order, a later one overriding an
    earlier one where both match; nodes no placement sets keep NEURON's defaults
    (:data:`ION_REVERSALS`: ena 50 mV, ek -77 mV, eca 132.46 mV). 'eca_mV' holds only where no
    mechanism writes cai; where one does, eca is the Nernst potential of cai (NEURON's ion style).

    params : 'ena_mV' / 'ek_mV' / 'eca_mV' -> a number, or a sequence of one per cell
    distribution : Distance profiles multiplying their parameter along the tree
    """

    where: str = "all"
    params: dict = field(default_factory=dict)
    distribution: tuple = ()

    nested: ClassVar = {"distribution": Distance}

    def __post_init__(self) -> None:
        require_str(self, "where")
        object.__setattr__(self, "params", _clean_params(self, self.params, ION_REVERSALS, "ions"))
        object.__setattr__(self, "distribution",
                           _clean_distribution(self, self.distribution, ION_REVERSALS, "ions"))

    def value(self, name: str):
        """The reversal potential (mV): a float, or a tuple of one per cell (None: not set here)."""
        return self.params.get(name)

    def per_cell(self) -> bool:
        return any(isinstance(v, tuple) for v in self.params.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class IClamp(Spec):
    """A current clamp at ``section(x)``: ``amp_nA`` from ``delay_ms`` for ``dur_ms`` (NEURON's IClamp)."""

    section: str
    x: float = 0.5
    delay_ms: float = 0.0
    dur_ms: float = 0.0
    amp_nA: float = 0.0

    def __post_init__(self) -> None:
        require_str(self, "section")
        require_number(self, "x", "amp_nA")
        require_number(self, "delay_ms", "dur_ms", nonnegative=True)
        if not 0.0 <= self.x <= 1.0:
            raise fail(self, f"'x' must be in [0, 1] (got {self.x})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exp2Syn(Spec):
    """A conductance synapse g(t) = w f (exp(-t/tau2) - exp(-t/tau1)) at ``section(x)``
    (NEURON's Exp2Syn: f normalises the peak to the weight w in uS); reversal ``e_mV``.

    mg_mM > 0 adds NMDA's voltage-dependent Mg block: i = g B(v) (v - e), B = 1 / (1 +
    exp(-0.062 v) [Mg] / 3.57) (Jahr & Stevens 1990, as in Blue Brain's ProbAMPANMDA_EMS.mod).

    tau1_ms, tau2_ms, e_mV and mg_mM are each one number for every cell of the population, or
    a sequence of one per cell (length n, checked by the population), as Insert's parameters.
    """

    section: str
    x: float = 0.5
    tau1_ms: float | tuple = 0.5
    tau2_ms: float | tuple = 2.0
    e_mV: float | tuple = 0.0
    mg_mM: float | tuple = 0.0

    #: the fields that may hold one value per cell
    PER_CELL: ClassVar[tuple] = ("tau1_ms", "tau2_ms", "e_mV", "mg_mM")

    def __post_init__(self) -> None:
        require_str(self, "section")
        require_number(self, "x")
        if not 0.0 <= self.x <= 1.0:
            raise fail(self, f"'x' must be in [0, 1] (got {self.x})")
        for name in self.PER_CELL:
            v = getattr(self, name)
            if hasattr(v, "tolist"):
                v = v.tolist()
            vals = v if isinstance(v, (list, tuple)) else (v,)
            if isinstance(v, (list, tuple)) and not v or not all(_finite(x) for x in vals):
                raise fail(self, f"{name!r} must be a finite number or a non-empty sequence of "
                                 f"finite numbers, one per cell (got {v!r})")
            if name in ("tau1_ms", "tau2_ms") and min(vals) <= 0.0:
                raise fail(self, f"{name!r} must be > 0 (got {v!r})")
            if name == "mg_mM" and min(vals) < 0.0:
                raise fail(self, f"'mg_mM' must be >= 0 (got {v!r})")
            object.__setattr__(self, name, tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v))
        t1, t2 = self.tau1_ms, self.tau2_ms
        if isinstance(t1, tuple) and isinstance(t2, tuple) and len(t1) != len(t2):
            raise fail(self, f"'tau1_ms' and 'tau2_ms' have {len(t1)} and {len(t2)} values (one per cell each)")
        n = max(len(t) if isinstance(t, tuple) else 1 for t in (t1, t2))
        for c in range(n):
            a = t1[c] if isinstance(t1, tuple) else t1
            b = t2[c] if isinstance(t2, tuple) else t2
            if a >= b:
                where = f" (cell {c})" if n > 1 else ""
                raise fail(self, f"'tau1_ms' must be smaller than 'tau2_ms'{where} (got {a} >= {b})")

    def per_cell(self, name: str, n: int):
        """(n,) float64 array of field ``name`` for a population of n cells."""
        import numpy as np
        return np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (n,)).copy()

    kind: ClassVar[str] = "exp2syn"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlphaSynapse(Spec):
    """A conductance g(t) = gmax_uS u exp(1 - u), u = (t - onset_ms) / tau_ms, for 0 < u < 10,
    at ``section(x)`` with reversal ``e_mV`` (NEURON's AlphaSynapse: a timed input, no port)."""

    section: str
    x: float = 0.5
    onset_ms: float = 0.0
    tau_ms: float = 0.1
    gmax_uS: float = 0.0
    e_mV: float = 0.0

    def __post_init__(self) -> None:
        require_str(self, "section")
        require_number(self, "x", "e_mV", "onset_ms")
        require_number(self, "tau_ms", positive=True)
        require_number(self, "gmax_uS", nonnegative=True)
        if not 0.0 <= self.x <= 1.0:
            raise fail(self, f"'x' must be in [0, 1] (got {self.x})")


# Presets: dual-exponential kinetics of Blue Brain's ProbAMPANMDA_EMS.mod / ProbGABAAB_EMS.mod
# (Markram et al. 2015, Cell 163:456): AMPA rise 0.2 ms, decay 1.7 ms; NMDA rise 0.29 ms, decay
# 43 ms with the Jahr & Stevens (1990) Mg block at 1 mM; GABA-A rise 0.2 ms, decay 8 ms, -80 mV.
def AMPA(*, section: str, x: float = 0.5, tau1_ms: float = 0.2, tau2_ms: float = 1.7,
         e_mV: float = 0.0) -> Exp2Syn:
    """An AMPA synapse (an :class:`Exp2Syn` fed by the ``syn`` port): reversal 0 mV. Each value
    may be one per cell (a sequence of length n), in this and the other presets."""
    return Exp2Syn(section=section, x=x, tau1_ms=tau1_ms, tau2_ms=tau2_ms, e_mV=e_mV)


def NMDA(*, section: str, x: float = 0.5, tau1_ms: float = 0.29, tau2_ms: float = 43.0,
         e_mV: float = 0.0, mg_mM: float = 1.0) -> Exp2Syn:
    """An NMDA synapse: dual exponential times the Mg block of Jahr & Stevens (1990), [Mg] mM."""
    return Exp2Syn(section=section, x=x, tau1_ms=tau1_ms, tau2_ms=tau2_ms, e_mV=e_mV, mg_mM=mg_mM)


def GABAA(*, section: str, x: float = 0.5, tau1_ms: float = 0.2, tau2_ms: float = 8.0,
          e_mV: float = -80.0) -> Exp2Syn:
    """A GABA-A synapse: reversal -80 mV (ProbGABAAB_EMS.mod; use e_mV=-70 for a depolarised Cl-)."""
    return Exp2Syn(section=section, x=x, tau1_ms=tau1_ms, tau2_ms=tau2_ms, e_mV=e_mV)
