"""Name -> spec class for solvers, adapters and probes.

Built-in and third-party types register the same way, through entry points in the groups
``polyscale.solvers``, ``polyscale.adapters`` and ``polyscale.probes`` (see pyproject.toml)::

    [project.entry-points."polyscale.solvers"]
    my_solver = "my_package.module:MySolverSpec"

A class can also be registered at run time with :func:`register`. Entry points are read once,
on first use; a broken one is reported by name when it is asked for, not at import.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

from .errors import ModelError
from .specs import AdapterSpec, ProbeSpec, SolverSpec, Spec

GROUPS = {"solvers": SolverSpec, "adapters": AdapterSpec, "probes": ProbeSpec}

_entry_points: dict[str, dict[str, metadata.EntryPoint]] = {}
_classes: dict[str, dict[str, type]] = {g: {} for g in GROUPS}


def _group_entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    if group not in _entry_points:
        eps = metadata.entry_points(group=f"polyscale.{group}")
        _entry_points[group] = {ep.name: ep for ep in eps}
    return _entry_points[group]


def register(group: str, cls: type) -> type:
    """Register ``cls`` under ``cls.type`` in ``group`` ('solvers', 'adapters' or 'probes')."""
    if group not in GROUPS:
        raise ModelError(f"registry group must be one of {sorted(GROUPS)} (got {group!r})")
    if not (isinstance(cls, type) and issubclass(cls, GROUPS[group])):
        raise ModelError(f"{cls!r} is not a {GROUPS[group].__name__} subclass")
    name = cls.type
    existing = _classes[group].get(name)
    redefined = existing is not None and (existing.__module__, existing.__qualname__) == (
        cls.__module__, cls.__qualname__)
    # a config or notebook cell executed again defines the same class anew: take the new one
    if existing is not None and existing is not cls and not redefined:
        raise ModelError(f"{group} type {name!r} is already registered by "
                         f"{existing.__module__}.{existing.__qualname__}")
    _classes[group][name] = cls
    return cls


def ensure_registered(group: str, cls: type) -> None:
    """Register a class handed over directly (``model.solver("x", MySpec(...))``), so that the
    model can be rebuilt from its data in this process; a name taken by another class is an
    error. Processes elsewhere still need an entry point (or a register call) to find it."""
    name = cls.type
    if _classes[group].get(name) is cls:
        return
    if name in _group_entry_points(group):
        other = get(group, name)
        if other is not cls:
            raise ModelError(f"{group[:-1]} type {name!r} of {cls.__module__}.{cls.__qualname__} is "
                             f"already taken by {other.__module__}.{other.__qualname__}; give it "
                             f"another type name")
        return
    register(group, cls)


def get(group: str, name: str) -> type:
    """The spec class registered as ``name`` in ``group``; ModelError listing the known names."""
    if name in _classes[group]:
        return _classes[group][name]
    ep = _group_entry_points(group).get(name)
    if ep is None:
        known = ", ".join(sorted(names(group))) or "none"
        raise ModelError(f"unknown {group[:-1]} type {name!r} (known: {known}); third-party types "
                         f"register through the entry-point group 'polyscale.{group}'")
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plug-in must not look like a typo
        raise ModelError(f"{group[:-1]} type {name!r}: entry point {ep.value!r} failed to load: "
                         f"{type(exc).__name__}: {exc}") from exc
    if getattr(cls, "type", None) != name:
        raise ModelError(f"entry point {name!r} -> {ep.value} has type {getattr(cls, 'type', None)!r}; "
                         f"they must agree")
    return register(group, cls)


def names(group: str) -> list[str]:
    return sorted(set(_classes[group]) | set(_group_entry_points(group)))


def all_specs(group: str | None = None) -> list[type]:
    """Every registered spec class (of one group, or of all)."""
    groups = [group] if group else list(GROUPS)
    return [get(g, n) for g in groups for n in names(g)]


def spec_from_dict(group: str, data: Any) -> Spec:
    """Rebuild a spec of ``group`` from its ``to_dict()`` form."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ModelError(f"a {group[:-1]} spec must be a dict with a 'type' (got {data!r:.80})")
    return get(group, data["type"]).from_dict(data)
