"""Transport selection (each transport's behaviour is covered by the scenarios parametrized over it)."""
import pytest

import polyscale as ps
from polyscale.coordinator.transports import Transport, get_transport
from polyscale.coordinator.transports.inproc import InProcTransport


def test_transports_by_name_and_by_object():
    t = get_transport("inproc")
    assert isinstance(t, InProcTransport) and isinstance(t, Transport)
    assert get_transport(t) is t


def test_unknown_transport_lists_the_available_ones():
    with pytest.raises(ps.ModelError, match=r"unknown transport 'carrier-pigeon' \(available: inproc"):
        get_transport("carrier-pigeon")
    with pytest.raises(ps.ModelError, match=r"transport must be a name \(inproc.*\) or a Transport object \(got 42\)"):
        get_transport(42)


def test_inproc_accounts_compute_time_per_solver():
    m = ps.Model(t_stop_ms=5.0)
    m.solver("a", ps.solvers.LinearSystem(a=[[-1.0]]))
    m.solver("b", ps.solvers.SpikeRelay())
    t = InProcTransport()
    ps.run(m, transport=t)
    assert set(t.compute_s) == {"a", "b"} and all(v > 0 for v in t.compute_s.values())
