"""Membrane mechanisms and point processes as data.

:class:`Insert` places a density mechanism on sections (by name or kind, or 'all'), with
parameters that override the mechanism's defaults. :class:`IClamp` and :class:`Exp2Syn` are
point processes at a section and relative position, placed in every cell of a population.
The kernels that integrate them are in ``_kernels.py``.

Density parameters are per membrane area (S/cm2), reversal potentials in mV, as in NEURON's
``pas`` and ``hh``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ...coordinator.specs import Spec
from ...coordinator.validation import fail, require_number, require_str

#: mechanism name -> parameter -> default (units in the name's suffix)
MECHANISMS: dict[str, dict[str, float]] = {
    # NEURON's pas
    "pas": {"g_S_cm2": 0.001, "e_mV": -70.0},
    # NEURON's hh (Hodgkin & Huxley 1952 at 6.3 C, rates scaled by Q10 3 with celsius)
    "hh": {"gnabar_S_cm2": 0.12, "gkbar_S_cm2": 0.036, "gl_S_cm2": 0.0003,
           "el_mV": -54.3, "ena_mV": 50.0, "ek_mV": -77.0},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Insert(Spec):
    """Insert density mechanism ``mechanism`` on sections matching ``where`` (name, kind or 'all').

    params : parameter name -> value, overriding :data:`MECHANISMS` defaults
    """

    mechanism: str
    where: str = "all"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise fail(self, f"'mechanism' must be one of {', '.join(map(repr, MECHANISMS))} "
                             f"(got {self.mechanism!r})")
        require_str(self, "where")
        if not isinstance(self.params, dict):
            raise fail(self, f"'params' must be a dict (got {type(self.params).__name__})")
        known = MECHANISMS[self.mechanism]
        clean = {}
        for k, v in self.params.items():
            if k not in known:
                raise fail(self, f"{self.mechanism}: unknown parameter {k!r} (known: {', '.join(known)})")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise fail(self, f"{self.mechanism}: parameter {k!r} must be a finite number (got {v!r})")
            clean[k] = float(v)
        object.__setattr__(self, "params", clean)

    def value(self, name: str) -> float:
        return self.params.get(name, MECHANISMS[self.mechanism][name])


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
    (NEURON's Exp2Syn: f normalises the peak to the weight w in uS); reversal ``e_mV``."""

    section: str
    x: float = 0.5
    tau1_ms: float = 0.5
    tau2_ms: float = 2.0
    e_mV: float = 0.0

    def __post_init__(self) -> None:
        require_str(self, "section")
        require_number(self, "x", "e_mV")
        require_number(self, "tau1_ms", "tau2_ms", positive=True)
        if not 0.0 <= self.x <= 1.0:
            raise fail(self, f"'x' must be in [0, 1] (got {self.x})")
        if self.tau1_ms >= self.tau2_ms:
            raise fail(self, f"'tau1_ms' must be smaller than 'tau2_ms' (got {self.tau1_ms} >= {self.tau2_ms})")

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
