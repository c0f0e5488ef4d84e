"""examples/hybrid_network.py: detailed cells embedded in a point network, spike for spike."""
import importlib.util

import numpy as np
import pytest

import polyscale as ps


@pytest.fixture(scope="module")
def hybrid(examples_dir):
    spec = importlib.util.spec_from_file_location("hybrid_network", examples_dir / "hybrid_network.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cells_without_synaptic_weight_leave_the_network_exactly_as_alone(hybrid, tmp_path):
    """With w_syn = 0 the cells never fire, so nothing flows back: the network's spikes must be
    bitwise those of the network run alone (its random stream depends only on its name)."""
    coupled = ps.run(hybrid.build(t_stop_ms=200.0, w_syn_uS=0.0), out=tmp_path / "coupled.h5")
    alone_model = hybrid.build(t_stop_ms=200.0)
    alone_model.solvers.pop("cells")
    alone_model.couplings.clear()
    alone_model.recordings = [r for r in alone_model.recordings if not r.target.startswith("cells")]
    alone = ps.run(alone_model, out=tmp_path / "alone.h5")
    assert len(coupled.spikes("cells", "spikes").times) == 0
    for pop in ("E", "I"):
        np.testing.assert_array_equal(coupled.spikes("net", pop).times, alone.spikes("net", pop).times)
        np.testing.assert_array_equal(coupled.spikes("net", pop).ids, alone.spikes("net", pop).ids)


def test_network_spikes_drive_the_cells_and_the_cells_drive_the_network_back(hybrid, tmp_path):
    quiet = ps.run(hybrid.build(t_stop_ms=300.0, w_syn_uS=0.0), out=tmp_path / "q.h5")
    loud = ps.run(hybrid.build(t_stop_ms=300.0, w_syn_uS=0.005), out=tmp_path / "l.h5")
    n_cell_spikes = len(loud.spikes("cells", "spikes").times)
    # 20 inputs at ~30 Hz of 2 nS conductance each fire a ball-and-stick at tens of Hz
    assert n_cell_spikes > 50
    # each cell spike adds 87.8 pA kicks to 40 E neurons: the E rate must rise
    assert len(loud.spikes("net", "E").times) > len(quiet.spikes("net", "E").times)


def test_the_hybrid_gives_the_same_run_file_on_every_transport(hybrid, transport, tmp_path):
    ref = ps.run(hybrid.build(t_stop_ms=60.0, n_e=80, n_i=20, n_cells=3, k_out=10), out=tmp_path / "ref.h5")
    run = ps.run(hybrid.build(t_stop_ms=60.0, n_e=80, n_i=20, n_cells=3, k_out=10),
                 out=tmp_path / "t.h5", transport=transport)
    for solver, port in (("net", "E"), ("net", "I"), ("cells", "spikes")):
        np.testing.assert_array_equal(ref.spikes(solver, port).times, run.spikes(solver, port).times)
    np.testing.assert_array_equal(ref.signal("cells", "v_soma").data, run.signal("cells", "v_soma").data)
