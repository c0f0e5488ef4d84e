"""Simulated time as integer ticks, and the choice of the exchange window.

One tick is 1 ns (1e-6 ms). Every time in a model (dt, delay, sample period, stop time) must be a
whole number of ticks; sums and comparisons are then exact, whatever order windows run in, and an
int64 tick count covers 292 years of simulated time. Nothing here uses float arithmetic on time
beyond the one conversion in :func:`to_ticks`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from .errors import ModelError

TICKS_PER_MS = 1_000_000
TICK_MS = 1.0 / TICKS_PER_MS


def to_ticks(value_ms: float, what: str) -> int:
    """Convert a time in ms to ticks; raise ModelError if it is not a whole number of ticks.

    ``what`` names the quantity in the message, e.g. ``"solver 'cortex': dt_ms"``.
    """
    if isinstance(value_ms, bool) or not isinstance(value_ms, (int, float)) or not math.isfinite(value_ms):
        raise ModelError(f"{what} must be a finite number of ms (got {value_ms!r})")
    exact = value_ms * TICKS_PER_MS
    ticks = round(exact)
    # 1e-9 relative: the float closest to 0.1 ms is 0.1 ms to 1e-17; anything further off was
    # not meant to be on the 1 ns grid (e.g. 1/3 ms).
    if abs(exact - ticks) > 1e-9 * max(1.0, abs(exact)) + 1e-6:
        raise ModelError(f"{what}={value_ms!r} ms is not a whole number of the base resolution "
                         f"({TICK_MS} ms)")
    return int(ticks)


def to_ms(ticks: int) -> float:
    """Ticks to ms (float)."""
    return ticks / TICKS_PER_MS


def lcm(values: Iterable[int]) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def grid_count(t0: int, t1: int, period: int) -> int:
    """How many ticks k * period lie in [t0, t1)."""
    return (t1 - 1) // period - (t0 - 1) // period


def grid_start(t0: int, period: int) -> int:
    """The first tick k * period at or after t0."""
    return -(-t0 // period) * period


def fmt_ms(ticks: int) -> str:
    """A tick count as ms for messages: '0.1 ms', '1500 ms'."""
    return f"{to_ms(ticks):g} ms"


# When nothing limits the window (no couplings), windows of this length keep progress reports and
# crash recovery fine-grained without costing per-window overhead.
DEFAULT_FREE_WINDOW_TICKS = 10 * TICKS_PER_MS
