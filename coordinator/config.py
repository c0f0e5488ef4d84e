"""Loading a model from a Python config file.

A config file defines ``model`` (a Model) or ``build(**params)`` returning one. Parameters come
from the command line as ``-p name=value`` with values parsed as Python literals (a value that
is no literal is taken as a string); a name ``build`` does not take is an error that lists the
names it does take.
"""
from __future__ import annotations

import ast
import inspect
import os
import runpy
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError, PolyscaleError
from .model import Model


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """['scale=0.5', 'name=cortex'] -> {'scale': 0.5, 'name': 'cortex'}."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"parameter {item!r} must be NAME=VALUE, e.g. -p scale=0.5")
        try:
            out[name] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[name] = raw.strip()
    return out


def load_model(path: str | os.PathLike, params: Mapping[str, Any] | None = None) -> Model:
    """Execute a config file and return its model (calling ``build(**params)`` if it has one)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if p.is_dir() or p.suffix != ".py":
        raise ConfigError(f"config {str(p)!r} must be a Python file (*.py) that defines `model` "
                          f"or `build(**params)`")
    try:
        ns = runpy.run_path(str(p), run_name="__polyscale_config__")
    except PolyscaleError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {f.lineno}" for f in reversed(tb) if f.filename == str(p)), "")
        raise ConfigError(f"config {str(p)!r} raised {type(exc).__name__}: {exc}"
                          + (f" ({where})" if where else "")) from exc
    params = dict(params or {})
    build = ns.get("build")
    if callable(build):
        sig = inspect.signature(build)
        takes_any = any(q.kind is q.VAR_KEYWORD for q in sig.parameters.values())
        known = [n for n, q in sig.parameters.items()
                 if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)]
        unknown = [n for n in params if n not in known]
        if unknown and not takes_any:
            raise ConfigError(f"config {str(p)!r}: build() takes no parameter {unknown[0]!r} "
                              f"(it takes: {', '.join(known) or 'none'})")
        try:
            model = build(**params)
        except PolyscaleError:
            raise
        except Exception as exc:
            raise ConfigError(f"config {str(p)!r}: build() raised {type(exc).__name__}: {exc}") from exc
        what = "build() returned"
    else:
        if params:
            raise ConfigError(f"config {str(p)!r} defines `model` directly, so it takes no parameters "
                              f"(got {', '.join(params)}); define build(**params) to take them")
        if "model" not in ns:
            raise ConfigError(f"config {str(p)!r} defines neither `model` nor `build(**params)`")
        model = ns["model"]
        what = "`model` is"
    if not isinstance(model, Model):
        raise ConfigError(f"config {str(p)!r}: {what} {type(model).__name__}, not a polyscale.Model")
    return model


__all__ = ["load_model", "parse_params", "ModelError"]
