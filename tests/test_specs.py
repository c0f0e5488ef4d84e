"""Specs: every registered type round-trips through plain data; validation names field and value."""
from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import msgpack
import pytest

import polyscale as ps
from polyscale.coordinator import registry
from polyscale.coordinator.specs import encode

ALL = registry.all_specs()


def test_the_builtin_types_are_registered():
    assert {c.type for c in registry.all_specs("solvers")} >= {"linear", "spike_train", "relay"}
    assert {c.type for c in registry.all_specs("adapters")} >= {"spikes_to_rate", "affine"}
    assert {c.type for c in registry.all_specs("probes")} >= {"linear_readout"}


@pytest.mark.parametrize("cls", ALL, ids=[c.type for c in ALL])
def test_every_registered_spec_round_trips_through_msgpack_and_json(cls):
    spec = cls.example()
    data = spec.to_dict()
    assert data["type"] == cls.type
    assert cls.from_dict(msgpack.unpackb(msgpack.packb(data))) == spec
    assert cls.from_dict(json.loads(json.dumps(data))) == spec


@pytest.mark.parametrize("cls", ALL, ids=[c.type for c in ALL])
def test_every_registered_spec_is_frozen(cls):
    spec = cls.example()
    name = next(iter(spec.to_dict().keys() - {"type"}))
    with pytest.raises(FrozenInstanceError):
        setattr(spec, name, None)


def test_lists_and_ints_normalise_so_equal_specs_compare_equal():
    a = ps.solvers.LinearSystem(a=[[-1, 0], [0, -2]], dt_ms=1)
    b = ps.solvers.LinearSystem(a=((-1.0, 0.0), (0.0, -2.0)), dt_ms=1.0)
    assert a == b and a.to_dict() == b.to_dict()


@pytest.mark.parametrize("make, message", [
    pytest.param(lambda: ps.solvers.LinearSystem(a=[[-1.0]], dt_ms=float("nan")),
                 r"^linear: 'dt_ms' must be a finite number > 0 \(got nan\)$", id="nan-dt"),
    pytest.param(lambda: ps.solvers.LinearSystem(a=[[-1.0]], dt_ms=-0.1),
                 r"'dt_ms' must be a finite number > 0 \(got -0\.1\)", id="negative-dt"),
    pytest.param(lambda: ps.solvers.LinearSystem(a=[[-1.0, 0.0]]),
                 r"linear: 'a' must be square \(got shape \(1, 2\)\)", id="non-square"),
    pytest.param(lambda: ps.solvers.LinearSystem(a=[[-1.0]], b=[[1.0], [2.0]]),
                 r"'b' must be a matrix of shape \(1, m\) \(got shape \(2, 1\)\)", id="b-shape"),
    pytest.param(lambda: ps.solvers.LinearSystem(a=[["x"]]),
                 r"'a' has an element 'x' that is not a valid float", id="not-a-number"),
    pytest.param(lambda: ps.solvers.SpikeTrain(times_ms=[1.0, -2.0]),
                 r"spike_train: 'times_ms' must hold finite times >= 0 \(got -2\.0\)", id="negative-time"),
    pytest.param(lambda: ps.solvers.SpikeTrain(times_ms=[1.0], ids=[3], size=2),
                 r"'ids' holds 3, outside \[0, size=2\)", id="id-out-of-range"),
    pytest.param(lambda: ps.solvers.SpikeRelay(size=0),
                 r"relay: 'size' must be an integer >= 1 \(got 0\)", id="zero-size"),
    pytest.param(lambda: ps.solvers.SpikeRelay(size=True),
                 r"'size' must be an integer >= 1 \(got True\)", id="bool-is-not-int"),
    pytest.param(lambda: ps.adapters.SpikesToRate(bin_ms=0),
                 r"spikes_to_rate: 'bin_ms' must be a finite number > 0 \(got 0\)", id="zero-bin"),
    pytest.param(lambda: ps.adapters.Affine(produces="spikes"),
                 r"affine: 'produces' must be one of \('rate', 'analog'\) or None", id="bad-produces"),
    pytest.param(lambda: ps.probes.LinearReadout(weights={}),
                 r"'weights' must be a non-empty dict", id="empty-weights"),
    pytest.param(lambda: ps.probes.LinearReadout(weights={"a.x[0]": [[1.0]]}),
                 r"weights key 'a\.x\[0\]': give the whole port", id="selection-in-readout"),
])
def test_invalid_parameters_name_the_field_the_value_and_what_is_allowed(make, message):
    with pytest.raises(ps.ModelError, match=message):
        make()


def test_from_dict_rejects_unknown_fields_listing_the_known_ones():
    with pytest.raises(ps.ModelError, match=r"relay: unknown field\(s\) 'sise' \(known: dt_ms, size\)"):
        ps.solvers.SpikeRelay.from_dict({"type": "relay", "sise": 3})


def test_from_dict_rejects_a_dict_of_another_type():
    with pytest.raises(ps.ModelError, match=r"dict has type 'linear', expected 'relay'"):
        ps.solvers.SpikeRelay.from_dict({"type": "linear"})


def test_a_missing_required_field_is_a_model_error():
    with pytest.raises(ps.ModelError, match=r"linear: .*missing 1 required keyword-only argument: 'a'"):
        ps.solvers.LinearSystem.from_dict({"type": "linear"})


def test_values_that_are_not_plain_data_cannot_be_encoded():
    with pytest.raises(ps.ModelError, match=r"cannot serialise object value"):
        encode(object())


def test_the_default_probe_combine_adds_the_parts_in_name_order_and_leaves_them_alone():
    # reference: Python floats added left to right in sorted solver-name order, element by
    # element (the order np.sum over the stacked parts adds them in)
    import numpy as np

    from polyscale.coordinator.specs import ProbeSpec
    rng = np.random.default_rng(11)
    parts = {n: rng.standard_normal((3, 4)) * 10.0 ** rng.integers(-6, 6, (3, 4)) for n in ("c", "a", "b")}
    before = {n: p.copy() for n, p in parts.items()}
    out = ProbeSpec.combine(None, None)(0, 1, parts)
    want = [[(float(parts["a"][i, j]) + float(parts["b"][i, j])) + float(parts["c"][i, j]) for j in range(4)]
            for i in range(3)]
    assert out.tolist() == want
    assert all(np.array_equal(parts[n], before[n]) for n in parts)
    one = ProbeSpec.combine(None, None)(0, 1, {"x": parts["a"]})
    assert one.tolist() == parts["a"].tolist() and one is not parts["a"]
