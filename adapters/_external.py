"""Helpers shared by the wrappers of external simulators (nest.py, neuron.py, tvb.py).

What lives here, and nothing else:

* :class:`Translation`: a parameter/unit translation table as data, one row per parameter
  (polyscale name, the simulator's name, factor), with ``to_external`` / ``from_external``;
* :func:`require_extra`: import a simulator's module, or ModelError naming the extra to install
  (``pip install 'polyscale[nest]'``);
* :func:`claim_process` / :func:`release_process`: the one-instance-per-process guard (NEST's
  kernel and NEURON's hoc interpreter are process-global);
* :func:`load_target`: the callable named by 'package.module:function' or
  'path/to/file.py:function' (a user's build script), and :func:`check_target` to validate the
  string in a spec's ``__post_init__`` without importing anything.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..coordinator.errors import ModelError

# -- translation tables ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One parameter: polyscale's name, the simulator's name, and the factor to multiply a
    polyscale value by to get the simulator's value (e.g. 1e3 from nA to pA)."""

    ours: str
    theirs: str
    factor: float = 1.0


class Translation:
    """A translation table between polyscale's parameter names/units and a simulator's.

    Built from rows ``(ours, theirs, factor)``; ``to_external({ours: v})`` gives
    ``{theirs: v * factor}``, ``from_external`` the inverse. A name not in the table is an error
    naming the known names (no silent pass-through of a unit mismatch).

    >>> t = Translation("iaf", ("c_m_nF", "C_m", 1e3), ("tau_m_ms", "tau_m", 1.0))
    >>> t.to_external({"c_m_nF": 0.25})
    {'C_m': 250.0}
    """

    def __init__(self, name: str, *rows: tuple[str, str, float] | Row):
        self.name = name
        self.rows = tuple(r if isinstance(r, Row) else Row(*r) for r in rows)
        self._by_ours = {r.ours: r for r in self.rows}
        self._by_theirs = {r.theirs: r for r in self.rows}
        if len(self._by_ours) != len(self.rows) or len(self._by_theirs) != len(self.rows):
            raise ModelError(f"translation {name!r}: a name appears twice")
        for r in self.rows:
            if not (isinstance(r.factor, (int, float)) and r.factor != 0):
                raise ModelError(f"translation {name!r}: factor of {r.ours!r} must be a non-zero "
                                 f"number (got {r.factor!r})")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def ours(self) -> tuple[str, ...]:
        return tuple(self._by_ours)

    def theirs(self) -> tuple[str, ...]:
        return tuple(self._by_theirs)

    def to_external(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """{polyscale name: value} -> {simulator name: value * factor}."""
        out = {}
        for k, v in values.items():
            row = self._by_ours.get(k)
            if row is None:
                raise ModelError(f"{self.name}: unknown parameter {k!r} (known: "
                                 f"{', '.join(sorted(self._by_ours))})")
            out[row.theirs] = _scale(v, row.factor)
        return out

    def from_external(self, values: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """{simulator name: value} -> {polyscale name: value / factor}; ``strict=False`` drops
        names not in the table (a simulator's status dict holds many more)."""
        out = {}
        for k, v in values.items():
            row = self._by_theirs.get(k)
            if row is None:
                if strict:
                    raise ModelError(f"{self.name}: unknown parameter {k!r} (known: "
                                     f"{', '.join(sorted(self._by_theirs))})")
                continue
            out[row.ours] = _scale(v, 1.0 / row.factor)
        return out


def _scale(v: Any, factor: float) -> Any:
    if factor == 1.0:
        return v
    if isinstance(v, (list, tuple)):
        return type(v)(x * factor for x in v)
    return v * factor


# -- optional extras ---------------------------------------------------------------------------


def require_extra(module: str, extra: str, what: str):
    """``importlib.import_module(module)``, or ModelError saying which extra to install.

    what : the thing that needs it, for the message (e.g. "nest_network")"""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"{what} needs the {module!r} module, which is not installed: "
                         f"pip install 'polyscale[{extra}]' ({exc})") from None


def extra_available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# -- one instance per process -------------------------------------------------------------------

_CLAIMS: dict[str, tuple[str, int]] = {}


def claim_process(simulator: str, solver: str) -> None:
    """Record that ``solver`` owns ``simulator``'s process-global state in this process.

    A second solver of the same simulator in one process raises ModelError naming both and
    saying how to give each its own process. A claim from a forked child (another pid) is
    ignored: the child has its own copy of the state."""
    held = _CLAIMS.get(simulator)
    if held is not None and held[1] == os.getpid() and held[0] != solver:
        raise ModelError(
            f"solver {solver!r}: {simulator}'s state is global to a process and solver "
            f"{held[0]!r} already uses it in this one; run each {simulator} solver in a process "
            f"of its own: polyscale run ... --transport zmq (or mpi), or ps.run(model, "
            f"transport='zmq')")
    _CLAIMS[simulator] = (solver, os.getpid())


def release_process(simulator: str, solver: str) -> None:
    """Undo :func:`claim_process` (at the solver's close)."""
    held = _CLAIMS.get(simulator)
    if held is not None and held[0] == solver:
        del _CLAIMS[simulator]


# -- build targets -------------------------------------------------------------------------------

_TARGET_RE = re.compile(r"^(?P<mod>.+):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


def check_target(target: Any, what: str) -> None:
    """ModelError unless ``target`` reads 'package.module:function' or 'path/to/file.py:function'
    (only the form is checked: the module is imported where the solver is built)."""
    m = _TARGET_RE.match(target) if isinstance(target, str) else None
    if m is None or (not m["mod"].endswith(".py")
                     and not all(p.isidentifier() for p in m["mod"].split("."))):
        raise ModelError(f"{what}: must be 'package.module:function' or 'path/to/file.py:function' "
                         f"(got {target!r})")


def load_target(target: str, what: str, base: str | Path | None = None) -> Any:
    """The callable named by 'package.module:function' or 'path/to/file.py:function'.

    A relative file path is taken from ``base`` if given and the file is there, else from the
    working directory. A file is loaded once per process, under a name derived from its path."""
    check_target(target, what)
    mod_name, _, func = target.rpartition(":")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_absolute() and base is not None and (Path(base) / path).is_file():
            path = Path(base) / path
        if not path.is_file():
            raise ModelError(f"{what}: file {mod_name!r} of {target!r} not found "
                             f"(working directory {os.getcwd()})")
        path = path.resolve()
        name = "_polyscale_build_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
    else:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise ModelError(f"{what}: cannot import {mod_name!r} of {target!r} ({exc})") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ModelError(f"{what}: {mod_name!r} has no callable {func!r}")
    return fn


def names(values: Iterable[str]) -> str:
    """'a', 'b', 'c': for messages."""
    return ", ".join(repr(v) for v in values)
