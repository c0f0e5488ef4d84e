"""Membrane mechanisms, one module each, and the registry that finds them.

A mechanism module defines ``MECHANISM = Mechanism(...)``: its parameters (name with unit
suffix -> default), its states, which ion variables it reads, and three numba functions on
scalars, written in NEURON's density units (mV, ms, S/cm2, mA/cm2, mM) as the .mod file would:

    init(v, celsius, *params, *reads) -> tuple of states at steady state for v
    current(v, celsius, *states, *params, *reads) -> (i mA/cm2 outward, di/dv S/cm2)
    advance(v, dt, celsius, *states, *params, *reads) -> tuple of states after dt with v held
                                                        (cnexp: exact for v held over the step)

``reads`` are ion variables of the node, shared by every mechanism there that uses the ion
(NEURON's USEION ... READ): 'ena', 'ek' (mV: the section's reversal potentials, set with
``CellPopulation(ions=(Ions(...),))`` as NEURON's ``sec.ena``; defaults :data:`ION_REVERSALS`),
'eca' (mV: Nernst from cai at nodes where a mechanism writes cai, else the section's value),
'cai' (mM), 'ica' (mA/cm2: the total calcium current at the node, taken with the other
currents before the solve). A mechanism has no parameter of its own for them.
``current_ion='ca'`` adds the mechanism's current to ica;
``writes='cai'`` makes its first state the node's cai (a concentration mechanism has no
current). The solver generates one kernel for the set of mechanisms a model uses
(``_generated.py``), so the functions are called from compiled code. For speed, write them
as the built-ins do: ``@njit(error_model="numpy", inline="always")`` (numba then inlines them
into the kernel's loop over a block's cells, and no division raise path is left in it), the
exponentials with ``_fastexp.fexp`` / ``flog`` instead of math.exp / log / ``**`` (libm
calls keep that loop scalar), and branches as selects (``v + 1e-4 * (v == -38.0)``): the loop
over cells then vectorises. Plain ``@njit`` with math.exp is correct, only slower.

Built-ins are the modules of this package; third-party packages register theirs under the
entry-point group ``polyscale.mechanisms`` (name = module:MECHANISM), e.g. in pyproject.toml::

    [project.entry-points."polyscale.mechanisms"]
    my_kdr = "mypkg.kdr:MECHANISM"
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

#: ion -> (valence, default inner concentration mM, outer concentration mM, default reversal mV)
#: NEURON's defaults for ca (cai0_ca_ion, cao0_ca_ion; eca when no mechanism writes cai)
IONS = {"ca": (2, 5e-5, 2.0, 132.4579341637009)}
#: the ion variables a mechanism may read
ION_VARIABLES = ("ena", "ek", "eca", "cai", "ica")
#: per-node ion reversal potentials (mV) -> NEURON's defaults (ena 50, ek -77; eca where no
#: mechanism writes cai: NEURON's eca0 from cai0/cao0). Set per section, Distance profile or
#: cell with ``Ions`` (solvers/cell/mechanisms.py), as NEURON's ``sec.ena = 50``.
ION_REVERSALS = {"ena_mV": 50.0, "ek_mV": -77.0, "eca_mV": IONS["ca"][3]}


@dataclass(frozen=True)
class Mechanism:
    """One density mechanism (see the module docstring for the functions' signatures).

    name : as in ``Insert(mechanism=name)`` (NEURON's SUFFIX)
    params : parameter -> default, the name ending in its unit (``gbar_S_cm2``, ``e_mV``)
    states : state names (dimensionless gates, or mM for a concentration)
    reads : ion variables passed after the parameters, in this order
    current_ion : the ion whose current this is ('ca'), or None (non-specific / na / k)
    writes : 'cai' if the first state is the node's calcium concentration
    builtin : 'pas' or 'hh': the solver's hand-written loop integrates it (the same equations)
        unless a parameter varies per cell
    source : where the equations come from (a citation)
    """

    name: str
    params: dict
    states: tuple
    init: Callable
    current: Callable | None
    advance: Callable
    reads: tuple = ()
    current_ion: str | None = None
    writes: str | None = None
    builtin: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for r in self.reads:
            if r not in ION_VARIABLES:
                raise ValueError(f"mechanism {self.name!r}: reads {r!r} is not one of {ION_VARIABLES}")
        for p in self.params:
            if p in ION_REVERSALS:
                raise ValueError(f"mechanism {self.name!r}: {p!r} is an ion reversal potential of the "
                                 f"node, not a mechanism parameter: read it with reads=({p[:-3]!r},)")
        if self.current_ion not in (None, *IONS):
            raise ValueError(f"mechanism {self.name!r}: current_ion must be None or one of {tuple(IONS)}")
        if self.writes not in (None, "cai"):
            raise ValueError(f"mechanism {self.name!r}: writes must be None or 'cai' (got {self.writes!r})")
        if self.writes and (not self.states or self.current is not None):
            raise ValueError(f"mechanism {self.name!r}: a concentration mechanism has a first state "
                             f"(the concentration) and no current")


_BUILTIN = ("pas", "hh", "ih", "ca_hva", "ca_lvast", "cadynamics_e2", "sk_e2", "im", "nata_t",
            "skv3_1", "k_pst", "k_tst", "nap_et2")
_REGISTRY: dict[str, Mechanism] | None = None


def registry() -> dict[str, Mechanism]:
    """name -> Mechanism: this package's modules, then the ``polyscale.mechanisms`` entry points."""
    global _REGISTRY
    if _REGISTRY is None:
        reg = {}
        for mod in _BUILTIN:
            m = importlib.import_module(f"{__name__}.{mod}").MECHANISM
            reg[m.name] = m
        from importlib.metadata import entry_points
        for ep in entry_points(group="polyscale.mechanisms"):
            m = ep.load()
            if not isinstance(m, Mechanism):
                raise TypeError(f"entry point polyscale.mechanisms:{ep.name} is not a Mechanism "
                                f"(got {type(m).__name__})")
            reg.setdefault(m.name, m)
        _REGISTRY = reg
    return _REGISTRY


def register(m: Mechanism) -> None:
    """Add a mechanism at run time (tests, notebooks); an existing name is an error."""
    reg = registry()
    if m.name in reg and reg[m.name] is not m:
        raise ValueError(f"mechanism {m.name!r} is already registered")
    reg[m.name] = m


def get(name: str) -> Mechanism:
    reg = registry()
    if name not in reg:
        raise KeyError(name)
    return reg[name]
