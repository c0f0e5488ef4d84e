"""Checks and helpers the translators between levels share: what a rate input is, which grid a
translator samples on, and the error a translator raises on a bad value while running.

Owns nothing stateful; every translator module imports from here.
"""
from __future__ import annotations

import numpy as np

from ..coordinator.errors import ModelError, SolverError
from ..coordinator.signals import SAMPLED, SignalSpec
from ..coordinator.specs import AdapterContext
from ..coordinator.time import fmt_ms, to_ms, to_ticks

#: seconds per tick: a rate in Hz times a duration in ticks times this is an expected count
S_PER_TICK = 1e-9


def require_rate(incoming: SignalSpec, what: str = "a rate in Hz") -> None:
    """``incoming`` is a sampled signal in Hz (a 'rate', or an 'analog' signal in 'Hz').

    Raises ModelError saying what the translator consumes and what it receives."""
    if incoming.kind not in SAMPLED:
        raise ModelError(f"consumes {what} (a sampled signal), but receives {incoming.kind!r}")
    if incoming.kind != "rate" and incoming.units != "Hz":
        raise ModelError(f"consumes {what}, but receives {incoming.kind!r} in {incoming.units!r} "
                         f"(convert with ps.adapters.Affine(gain=..., units='Hz', produces='rate'))")


def require_sampled(incoming: SignalSpec, units: tuple[str, ...], what: str) -> None:
    """``incoming`` is sampled and in one of ``units`` ('' = not declared)."""
    if incoming.kind not in SAMPLED:
        raise ModelError(f"consumes {what} (a sampled signal), but receives {incoming.kind!r}")
    if incoming.units not in units:
        allowed = " or ".join(repr(u) for u in units)
        raise ModelError(f"consumes {what} in {allowed}, but receives {incoming.kind!r} in "
                         f"{incoming.units!r} (convert with ps.adapters.Affine(gain=..., "
                         f"units={units[0]!r}))")


def require_spikes(incoming: SignalSpec) -> None:
    if incoming.kind != "spikes":
        raise ModelError(f"consumes spikes, but receives {incoming.kind!r}")


def input_period_divides_window(incoming: SignalSpec, ctx: AdapterContext) -> int:
    """The incoming sample period (ticks), which must divide the window so that every window
    holds whole samples."""
    p = int(incoming.period_ticks)
    if ctx.window_ticks % p:
        raise ModelError(f"the incoming samples every {fmt_ms(p)} do not divide the window "
                         f"({fmt_ms(ctx.window_ticks)})")
    return p


def output_period(period_ms: float | None, ctx: AdapterContext, owner: str) -> int:
    """Ticks between output samples: ``period_ms`` if given, else the target port's period.

    It must divide the window (samples of a window lie in it, whole)."""
    if period_ms is None:
        if ctx.target_period_ticks is None:
            raise ModelError(f"the target port is not sampled, so {owner} cannot take its period: "
                             f"give period_ms")
        p = int(ctx.target_period_ticks)
    else:
        p = to_ticks(period_ms, f"{owner}: period_ms")
    if ctx.window_ticks % p:
        raise ModelError(f"the output period ({fmt_ms(p)}) does not divide the window "
                         f"({fmt_ms(ctx.window_ticks)})")
    return p


def check_period_ms(spec, name: str = "period_ms") -> None:
    """A ``period_ms`` field is None or a positive whole number of ticks."""
    value = getattr(spec, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ModelError(f"{spec.type}: {name!r} must be a number of ms > 0 or None (got {value!r})")
    to_ticks(value, f"{spec.type}: {name}")
    if not isinstance(value, float):
        object.__setattr__(spec, name, float(value))


def target_solver(coupling: str) -> str:
    """The destination solver's name in a coupling name 'a.port -> b.port'."""
    return coupling.rpartition("->")[2].strip().split(".")[0] or coupling


def require_finite(data: np.ndarray, ctx: AdapterContext, owner: str, t0: int, units: str) -> None:
    """A running translator received NaN or infinity: stop the run naming the coupling."""
    bad = ~np.isfinite(data)
    if bad.any():
        k, c = (int(i) for i in np.argwhere(bad.reshape(len(data), -1))[0])
        value = data.reshape(len(data), -1)[k, c]
        raise SolverError(f"coupling {ctx.coupling}: {owner} received {value} {units} on channel "
                          f"{c} in sample {k} of the window starting at {to_ms(t0):g} ms",
                          solver=target_solver(ctx.coupling), t_ms=to_ms(t0))


def require_rng(ctx: AdapterContext, owner: str) -> np.random.Generator:
    """The adapter's own seeded generator (a stochastic translator never uses a global one)."""
    if ctx.rng is None:
        raise ModelError(f"{owner} draws random numbers and needs the AdapterContext's rng "
                         f"(the coordinator gives every coupling its own seeded one)")
    return ctx.rng
