"""The model as data: building, addresses, serialisation."""
from __future__ import annotations

import json

import msgpack
import pytest

import polyscale as ps
from polyscale.coordinator.model import Endpoint


def small_model():
    m = ps.Model(seed=42, t_stop_ms=20.0)
    m.solver("a", ps.solvers.LinearSystem.example())
    m.solver("b", ps.solvers.LinearSystem(a=[[-0.2]], dt_ms=0.05))
    m.solver("stim", ps.solvers.SpikeTrain(times_ms=[1.0, 2.0]))
    m.couple("a.x[0]", "b.u", delay_ms=2.0, weight=0.5, interpolation="linear")
    m.couple("stim.spikes", "a.u", delay_ms=1.0, via=[ps.adapters.SpikesToRate(bin_ms=0.5),
                                                      ps.adapters.Affine(gain=0.01)])
    m.record("b.x", every_ms=0.5)
    m.probe("p", ps.probes.LinearReadout(weights={"b.x": [[1.0]]}))
    m.metadata["paper"] = "none"
    return m


def test_model_round_trips_through_msgpack_and_json():
    m = small_model()
    data = m.to_dict()
    assert ps.Model.from_dict(msgpack.unpackb(msgpack.packb(data))) == m
    assert ps.Model.from_dict(json.loads(m.to_json())) == m
    assert ps.Model.from_dict(data).couplings[1].via[0] == ps.adapters.SpikesToRate(bin_ms=0.5)


def test_with_options_changes_run_options_only():
    m = small_model()
    m2 = m.with_options(seed=7, t_stop_ms=5.0)
    assert (m2.seed, m2.t_stop_ms, m.seed) == (7, 5.0, 42)
    assert m2.solvers == m.solvers


@pytest.mark.parametrize("text, parsed", [
    ("cortex.E.spikes", ("cortex", "E.spikes", None)),
    ("brain.input[12]", ("brain", "input", (12,))),
    ("brain.rate[0:6:2]", ("brain", "rate", (0, 2, 4))),
    ("cells.v[0, 3, 7]", ("cells", "v", (0, 3, 7))),
    ("b.x[:3]", ("b", "x", (0, 1, 2))),
])
def test_addresses_parse_into_solver_port_and_channels(text, parsed):
    ep = Endpoint.parse(text, "coupling source")
    assert (ep.solver, ep.port, ep.selection) == parsed


@pytest.mark.parametrize("text", ["cortex", "cortex.", ".x", "a.x[", "a.x[-1]", "a.x[3:1]", "a.x[a]",
                                  "a.x[1:2:0]", "a.x[]", 5])
def test_malformed_addresses_are_rejected_with_the_forms_allowed(text):
    with pytest.raises(ps.ModelError, match=r"coupling source .*(not an address of the form|the selection|must be an address)"):
        Endpoint.parse(text, "coupling source")


@pytest.mark.parametrize("call, message", [
    pytest.param(lambda m: m.solver("a", ps.solvers.SpikeRelay()), r"solver 'a' is already in the model",
                 id="duplicate-solver"),
    pytest.param(lambda m: m.solver("1st", ps.solvers.SpikeRelay()), r"solver name must be a letter",
                 id="bad-name"),
    pytest.param(lambda m: m.solver("c", {"type": "relay"}),
                 r"solver 'c': expected a solver spec such as .* \(got dict\)", id="not-a-spec"),
    pytest.param(lambda m: m.couple("a.x", "b.u", delay_ms=-1.0),
                 r"coupling a\.x -> b\.u: 'delay_ms' must be a finite number >= 0 \(got -1\.0\)",
                 id="negative-delay"),
    pytest.param(lambda m: m.couple("a.x", "b.u", delay_ms=float("nan")),
                 r"'delay_ms' must be a finite number >= 0 \(got nan\)", id="nan-delay"),
    pytest.param(lambda m: m.couple("a.x", "b.u", delay_ms=1.0, interpolation="cubic"),
                 r"'interpolation' must be one of \('hold', 'linear'\) \(got 'cubic'\)", id="bad-interp"),
    pytest.param(lambda m: m.couple("a.x", "b.u", delay_ms=1.0, via=["spikes_to_rate"]),
                 r"'via' holds 'spikes_to_rate', which is not an adapter spec", id="via-not-spec"),
    pytest.param(lambda m: m.couple("a.x", "b.u", delay_ms=1.0, weight=float("inf")),
                 r"'weight' must be a finite number \(got inf\)", id="inf-weight"),
    pytest.param(lambda m: m.record("b.x", every_ms=0), r"'every_ms' must be a finite number > 0",
                 id="zero-every"),
    pytest.param(lambda m: m.probe("q", ps.solvers.SpikeRelay()), r"probe 'q': expected a probe spec",
                 id="probe-not-probe"),
])
def test_building_rejects_bad_arguments_at_once(call, message):
    with pytest.raises(ps.ModelError, match=message):
        call(small_model())


@pytest.mark.parametrize("kw, message", [
    (dict(seed=-1), r"'seed' must be an integer in \[0, 2\*\*63\) \(got -1\)"),
    (dict(seed=1.5), r"'seed' must be an integer"),
    (dict(t_stop_ms=0.0), r"'t_stop_ms' must be a finite number > 0 \(got 0\.0\)"),
    (dict(t_stop_ms=float("inf")), r"'t_stop_ms' must be a finite number > 0 \(got inf\)"),
    (dict(window_ms=-1.0), r"'window_ms' must be a finite number > 0 or None"),
])
def test_model_options_are_checked(kw, message):
    with pytest.raises(ps.ModelError, match=message):
        ps.Model(**kw)


def test_from_dict_rejects_unknown_types_and_formats():
    data = small_model().to_dict()
    data["solvers"]["a"]["type"] = "nest_network_typo"
    with pytest.raises(ps.ModelError, match=r"unknown solver type 'nest_network_typo' \(known: .*linear.*\); "
                                            r"third-party types register through the entry-point group"):
        ps.Model.from_dict(data)
    with pytest.raises(ps.ModelError, match=r"model format 99 is not supported"):
        ps.Model.from_dict({**small_model().to_dict(), "format": 99})


def test_placement_is_data_and_names_real_solvers():
    m = small_model()
    m.place("a", host="node03", ranks=2)
    assert ps.Model.from_dict(msgpack.unpackb(msgpack.packb(m.to_dict()))).placement["a"].host == "node03"
    assert m.with_options(seed=3).placement == m.placement
    m.place("ghost", host="x")
    with pytest.raises(ps.ModelError, match=r"placement: there is no solver 'ghost'"):
        m.check()
    with pytest.raises(ps.ModelError, match=r"placement: 'ranks' must be an integer >= 1 \(got 0\)"):
        m.place("a", ranks=0)
