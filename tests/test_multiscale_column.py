"""The flagship example, examples/multiscale_column.py: every level and every probe in one run."""
import importlib.util

import numpy as np
import pytest

import polyscale as ps


@pytest.fixture(scope="module")
def column(examples_dir):
    spec = importlib.util.spec_from_file_location("multiscale_column", examples_dir / "multiscale_column.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small(column, **kw):
    return column.build(scale=0.1, t_stop_ms=40.0, n_regions=8, stim_ms=10.0, tr_ms=20.0, **kw)


def test_the_flagship_gives_the_same_run_file_on_every_transport(column, transport, tmp_path):
    """Issue 9: the same seed gives the same run file on inproc, zmq and mpi (bitwise)."""
    ref = ps.run(small(column), out=tmp_path / "reference.h5")
    run = ps.run(small(column), out=tmp_path / f"{transport}.h5", transport=transport)
    for pop in ("L23E", "L23I", "L4E", "L4I"):
        a, b = ref.spikes("column", pop), run.spikes("column", pop)
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(ref.signal("l5", "v_soma").data, run.signal("l5", "v_soma").data)
    np.testing.assert_array_equal(ref.signal("brain", "activity").data, run.signal("brain", "activity").data)
    for name in ("lfp", "csd", "ecog", "eeg", "meg", "vsdi", "calcium", "bold"):
        np.testing.assert_array_equal(ref.probe(name).data, run.probe(name).data, err_msg=name)


@pytest.mark.parametrize("placement", [{}, {"groups": [["l5", "brain"]], "in_coordinator": ["column", "thalamus"]}],
                         ids=["a-process-per-solver", "in-coordinator"])
def test_the_flagship_gives_the_same_run_file_when_zmq_pipelines_the_writer(column, tmp_path, placement):
    """zmq with pipeline=True (the default on machines with a core per worker): the scheduler
    writes window w while the workers compute w + 1; the run file is the same bits as inproc.
    Also with solvers grouped in a worker and others computed in the coordinator's process
    (what ``--balance`` picks on 2 cores), between posting window w + 1 and writing w."""
    from polyscale.coordinator.transports.zmq import ZmqTransport
    ref = ps.run(small(column), out=tmp_path / "reference.h5")
    tr = ZmqTransport(pipeline=True, **placement)
    run = ps.run(small(column), out=tmp_path / "pipelined.h5", transport=tr)
    assert tr.pipeline is True
    for pop in ("L23E", "L23I", "L4E", "L4I"):
        np.testing.assert_array_equal(ref.spikes("column", pop).times, run.spikes("column", pop).times)
        np.testing.assert_array_equal(ref.spikes("column", pop).ids, run.spikes("column", pop).ids)
    np.testing.assert_array_equal(ref.signal("l5", "v_soma").data, run.signal("l5", "v_soma").data)
    for name in ("lfp", "csd", "ecog", "eeg", "meg", "vsdi", "calcium", "bold"):
        np.testing.assert_array_equal(ref.probe(name).data, run.probe(name).data, err_msg=name)
        np.testing.assert_array_equal(ref.probe(name).time, run.probe(name).time, err_msg=name)


def test_every_modality_is_written_with_its_units_and_the_stimulus_drives_layer_4(column, tmp_path):
    run = ps.run(column.build(scale=0.25, t_stop_ms=300.0, n_regions=8, stim_ms=200.0, tr_ms=100.0),
                 out=tmp_path / "col.h5")
    units = {"lfp": "mV", "csd": "nA/um^3", "ecog": "mV", "eeg": "mV", "meg": "fT", "vsdi": "mV",
             "calcium": "dF/F", "bold": "%"}
    for name, u in units.items():
        p = run.probe(name)
        assert p.units == u, name
        assert np.isfinite(p.data).all() and np.abs(p.data).max() > 0, name
    # the whisker volley (40 spikes in 10 ms at 200 ms) raises layer 4's rate well above its
    # background in the 20 ms after it arrives (2 ms delay); a mean-driven response, so the
    # factor 3 is far from the noise of 25 neurons x 20 ms
    t = run.spikes("column", "L4E").times
    before = ((t >= 100) & (t < 200)).sum() / 100.0
    after = ((t >= 202) & (t < 222)).sum() / 20.0
    assert after > 3 * max(before, 0.05)
    # BOLD: one sample per TR
    assert run.probe("bold").data.shape == (3, 8)
