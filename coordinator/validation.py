"""Checks for spec fields that raise ModelError with the field, the value and what is allowed.

Used in ``__post_init__`` of every spec::

    require_int(self, "n", minimum=1)
    require_number(self, "tau_m_ms", "dt_ms", positive=True)

Messages read ``lif: 'tau_m_ms' must be a finite number > 0 (got nan)``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from .errors import ModelError


def _owner(spec: Any) -> str:
    return getattr(spec, "type", None) or type(spec).__name__


def fail(spec: Any, message: str) -> ModelError:
    """A ModelError prefixed with the spec's type name."""
    return ModelError(f"{_owner(spec)}: {message}")


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_number(spec: Any, *names: str, positive: bool = False,
                   nonnegative: bool = False, allow_none: bool = False) -> None:
    """Each named field is a finite real number (and > 0 or >= 0 when asked)."""
    for name in names:
        value = getattr(spec, name)
        if value is None and allow_none:
            continue
        bound = " > 0" if positive else (" >= 0" if nonnegative else "")
        ok = is_number(value) and math.isfinite(value)
        if ok and positive:
            ok = value > 0
        if ok and nonnegative:
            ok = value >= 0
        if not ok:
            raise fail(spec, f"{name!r} must be a finite number{bound} (got {value!r})")
        # Store numbers as float so that a spec built from 10 and from 10.0 compare equal and
        # serialise the same way.
        if not isinstance(value, float):
            object.__setattr__(spec, name, float(value))


def require_int(spec: Any, *names: str, minimum: int | None = None) -> None:
    """Each named field is an integer (bool is not), at least ``minimum`` if given."""
    for name in names:
        value = getattr(spec, name)
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if ok and minimum is not None:
            ok = value >= minimum
        if not ok:
            bound = f" >= {minimum}" if minimum is not None else ""
            raise fail(spec, f"{name!r} must be an integer{bound} (got {value!r})")
        if not type(value) is int:
            object.__setattr__(spec, name, int(value))


def require_choice(spec: Any, name: str, choices: Iterable[str]) -> None:
    """The named field is one of ``choices``."""
    value = getattr(spec, name)
    allowed = tuple(choices)
    if value not in allowed:
        listed = ", ".join(repr(c) for c in allowed)
        raise fail(spec, f"{name!r} must be one of {listed} (got {value!r})")


def require_str(spec: Any, *names: str, nonempty: bool = True) -> None:
    for name in names:
        value = getattr(spec, name)
        if not isinstance(value, str) or (nonempty and not value):
            raise fail(spec, f"{name!r} must be a non-empty string (got {value!r})")


def as_tuple(spec: Any, name: str, item=None) -> tuple:
    """Normalise a list-like field to a tuple (recursively for nested lists), in place.

    ``item`` converts each leaf element (e.g. ``float``); a leaf it cannot convert is reported.
    """
    value = getattr(spec, name)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise fail(spec, f"{name!r} must be a sequence (got {value!r})")

    def convert(v):
        if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and not is_number(v)):
            if hasattr(v, "tolist"):
                v = v.tolist()
            return tuple(convert(x) for x in v)
        if item is None:
            return v
        try:
            return item(v)
        except (TypeError, ValueError):
            raise fail(spec, f"{name!r} has an element {v!r} that is not a valid "
                             f"{getattr(item, '__name__', item)}") from None

    out = convert(value)
    object.__setattr__(spec, name, out)
    return out
