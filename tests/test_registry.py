"""Registry of solver, adapter and probe types."""
from dataclasses import dataclass
from typing import ClassVar

import pytest

import polyscale as ps
from polyscale.coordinator import registry


def test_entry_points_resolve_to_the_spec_classes():
    assert registry.get("solvers", "linear") is ps.solvers.LinearSystem
    assert registry.get("adapters", "spikes_to_rate") is ps.adapters.SpikesToRate
    assert registry.get("probes", "linear_readout") is ps.probes.LinearReadout


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ps.ModelError, match=r"unknown adapter type 'nope' \(known: affine, .*spikes_to_rate"):
        registry.get("adapters", "nope")


def test_run_time_registration_and_conflicts():
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Mine(ps.SolverSpec):
        type: ClassVar[str] = "test_registry_mine"
        dt_ms: float = 0.1

    registry.register("solvers", Mine)
    assert registry.get("solvers", "test_registry_mine") is Mine
    assert registry.spec_from_dict("solvers", {"type": "test_registry_mine", "dt_ms": 0.2}) == Mine(dt_ms=0.2)

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Other(ps.SolverSpec):
        type: ClassVar[str] = "linear"
    with pytest.raises(ps.ModelError, match=r"solvers type 'linear' is already registered by polyscale\.solvers\.linear"):
        registry.register("solvers", Other)
    with pytest.raises(ps.ModelError, match=r"is not a AdapterSpec subclass"):
        registry.register("adapters", Mine)


def test_a_class_handed_over_directly_is_registered_unless_its_name_is_taken():
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Direct(ps.SolverSpec):
        type: ClassVar[str] = "test_registry_direct"
        dt_ms: float = 0.1

        def ports(self):
            return {}

    m = ps.Model()
    m.solver("d", Direct())
    assert ps.Model.from_dict(m.to_dict()) == m

    @dataclass(frozen=True, slots=True, kw_only=True)
    class Impostor(ps.SolverSpec):
        type: ClassVar[str] = "relay"
    with pytest.raises(ps.ModelError, match=r"solver type 'relay' of .*Impostor is already taken by "
                                            r"polyscale\.solvers\.relay\.SpikeRelay; give it another type name"):
        m.solver("i", Impostor())
