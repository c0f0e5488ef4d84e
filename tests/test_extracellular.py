"""probes/extracellular.py: LFP, CSD and ECoG probes in full runs of detailed cells.

The reference is LFPykit applied to NEURON's currents of the synapse-driven ball-and-stick of
../shared/reference/probes. Our cell solver reproduces NEURON's i_membrane_ to ~0.4% relative
RMS (tests/test_cell_population.py: NEURON used 1 mV hh rate tables, we evaluate the rates
exactly), so the full-run comparisons allow 2% relative RMS, that test's bound; the forward
matrices themselves match LFPykit to 1e-9 (tests/test_forward.py).
"""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.probes import CSD, ECoG, LFP, CurrentDipole
from polyscale.probes import forward as F
from polyscale.solvers.cell.mechanisms import AlphaSynapse
from polyscale.solvers.cell.population import ball_and_stick_population

ALPHA = tuple(AlphaSynapse(section="dend", x=0.8, onset_ms=t, tau_ms=2.0, gmax_uS=0.05, e_mV=0.0)
              for t in (10.0, 40.0, 70.0))


def cells(n=1, nseg=101, positions=None, record=True):
    return ball_and_stick_population(n=n, dend_nseg=nseg, positions_um=positions,
                                     record_currents=record).replace(alpha_synapses=ALPHA)


def rel_rms(a, b):
    return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))


@pytest.fixture(scope="module")
def lfp_ref(reference):
    return np.load(reference / "probes" / "lfp_ballstick_lfp.npz"), \
        np.load(reference / "probes" / "lfp_ballstick_dipole.npz")


def test_full_run_lfp_csd_and_dipole_match_neuron_and_lfpykit(lfp_ref):
    """100 ms of the reference cell; our sample at t is the currents of the step ending at t, as
    NEURON records i_membrane_, so row k lines up with the reference's column k."""
    lfp, dip = lfp_ref
    el = np.c_[lfp["elec_x_um"], lfp["elec_y_um"], lfp["elec_z_um"]]
    m = ps.Model(seed=1, t_stop_ms=100.0, window_ms=1.0)
    m.solver("cell", cells())
    for meth, key in (("line", "linesource"), ("point", "pointsource"), ("root_as_point", "root_as_point")):
        m.probe(f"lfp_{meth}", LFP(of="cell", electrodes_um=el, method=meth))
    m.probe("csd", CSD(of="cell", method="delta", z_edges_um=lfp["csd_z_edges_um"], r_um=100.0,
                       axis_xy_um=(0.0, 0.0)))
    m.probe("cdm", CurrentDipole(of="cell"))
    run = ps.run(m)
    for meth, key in (("line", "linesource"), ("point", "pointsource"), ("root_as_point", "root_as_point")):
        pr = run.probe(f"lfp_{meth}")
        assert pr.units == "mV" and pr.modality == "lfp" and pr.data.shape == (4000, 27)
        np.testing.assert_allclose(pr.time[:3], [0.0, 0.025, 0.05])
        np.testing.assert_array_equal(pr.positions_um, el)
        assert rel_rms(pr.data, lfp[f"V_{key}_mV"].T[:4000]) < 0.02
    assert rel_rms(run.probe("csd").data, lfp["CSD_nA_per_um3"].T[:4000]) < 0.02
    assert rel_rms(run.probe("cdm").data, dip["P_nA_um"].T[:4000]) < 0.02
    # the three spikes' peaks, where the currents are largest, within 3% of the reference
    line = run.probe("lfp_line").data
    assert np.abs(line - lfp["V_linesource_mV"].T[:4000]).max() < 0.03 * np.abs(line).max()


def _short_model(window_ms=1.0, every_ms=None, t_stop=45.0, **probe_kw):
    m = ps.Model(seed=1, t_stop_ms=t_stop, window_ms=window_ms)
    m.solver("cell", cells(nseg=21))
    el = [(30.0, 0.0, z) for z in (-50.0, 100.0, 400.0)]
    m.probe("lfp", LFP(of="cell", electrodes_um=el, every_ms=every_ms, **probe_kw))
    return m


def test_lfp_does_not_depend_on_the_window_and_every_ms_subsamples():
    """Currents carried over window ends: windows of 0.025, 1 and 2.2 ms give one signal."""
    base = ps.run(_short_model(1.0)).probe("lfp")
    for w in (0.025, 2.2):
        other = ps.run(_short_model(w)).probe("lfp")
        np.testing.assert_allclose(other.data, base.data, rtol=1e-12, atol=1e-15)
    sub = ps.run(_short_model(2.2, every_ms=0.1)).probe("lfp")
    np.testing.assert_allclose(sub.time, base.time[::4])
    np.testing.assert_allclose(sub.data, base.data[::4], rtol=1e-12, atol=1e-15)


def test_probes_of_several_periods_on_one_cell_solver_each_get_their_samples():
    """An LFP every 0.1 ms and a dipole every 0.25 ms on the same cells: the solver keeps the
    union of their steps, and each probe equals the same probe sampled from every step (the
    every-step LFP subsampled; the dipole probe alone at every step, subsampled)."""
    m = _short_model(1.0, every_ms=0.1, t_stop=12.0)
    m.probe("cdm", CurrentDipole(of="cell", every_ms=0.25))
    run = ps.run(m)
    base = ps.run(_short_model(1.0, t_stop=12.0)).probe("lfp")
    np.testing.assert_allclose(run.probe("lfp").data, base.data[::4], rtol=1e-12, atol=1e-15)
    alone = ps.Model(seed=1, t_stop_ms=12.0, window_ms=1.0)
    alone.solver("cell", cells(nseg=21))
    alone.probe("cdm", CurrentDipole(of="cell"))
    every = ps.run(alone).probe("cdm").data
    assert np.abs(every).max() > 0
    np.testing.assert_allclose(run.probe("cdm").data, every[::10], rtol=1e-12, atol=1e-12 * np.abs(every).max())


def test_a_sample_period_longer_than_the_window_and_one_off_the_step_grid():
    base = ps.run(_short_model(1.0)).probe("lfp")
    slow = ps.run(_short_model(1.0, every_ms=2.0)).probe("lfp")
    np.testing.assert_allclose(slow.time, base.time[::80])
    np.testing.assert_allclose(slow.data, base.data[::80], rtol=1e-12, atol=1e-15)
    with pytest.raises(ModelError, match=r"sample period \(10000 ticks\) must be a multiple of the "
                                         r"solver's step \(25000 ticks\)"):
        ps.run(_short_model(1.0, every_ms=0.01))


def test_two_solvers_sum_and_keep_parts_writes_each_share():
    """A probe over two cell populations writes their sum; keep_parts keeps each one's share,
    equal to the same probe over that solver alone."""
    el = [(0.0, 50.0, z) for z in (0.0, 200.0)]

    def model(names, keep):
        m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
        m.solver("a", cells(nseg=11))
        m.solver("b", cells(nseg=11, positions=((100.0, 0.0, 0.0),)))
        m.probe("lfp", LFP(of=names, electrodes_um=el, keep_parts=keep))
        return m
    both = ps.run(model(("a", "b"), True)).probe("lfp")
    a = ps.run(model("a", False)).probe("lfp")
    b = ps.run(model("b", False)).probe("lfp")
    assert a.parts is None and set(both.parts) == {"a", "b"}
    np.testing.assert_allclose(both.parts["a"], a.data, rtol=1e-12)
    np.testing.assert_allclose(both.parts["b"], b.data, rtol=1e-12)
    np.testing.assert_allclose(both.data, a.data + b.data, rtol=1e-12, atol=1e-18)


def test_ecog_by_images_under_an_insulator_and_in_the_tissue():
    """Electrodes on an insulating plane see twice the infinite-medium LFP; an electrode in the
    tissue sees LFP(r) + LFP(mirror of r) (W = 1); with equal conductivities ECoG is the LFP."""
    top = 600.0
    on = [(0.0, 0.0, top), (200.0, 0.0, top)]
    inside = [(40.0, 0.0, 300.0)]
    mirrored = [(40.0, 0.0, 900.0)]
    m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
    m.solver("cell", cells(nseg=11))
    m.probe("ecog", ECoG(of="cell", electrodes_um=on + inside, plane_point_um=(0.0, 0.0, top)))
    m.probe("same", ECoG(of="cell", electrodes_um=on, plane_point_um=(0.0, 0.0, top), sigma_above_S_per_m=0.3))
    m.probe("lfp", LFP(of="cell", electrodes_um=on + inside + mirrored))
    run = ps.run(m)
    e, v = run.probe("ecog").data, run.probe("lfp").data
    np.testing.assert_allclose(e[:, :2], 2 * v[:, :2], rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(e[:, 2], v[:, 2] + v[:, 3], rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(run.probe("same").data, v[:, :2], rtol=1e-12, atol=1e-18)


def test_second_difference_csd_is_the_standard_estimate_of_the_probes_lfp():
    contacts = [(20.0, 0.0, z) for z in np.arange(-100.0, 601.0, 100.0)]
    m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
    m.solver("cell", cells(nseg=21))
    m.probe("csd", CSD(of="cell", contacts_um=contacts, sigma_S_per_m=0.3))
    m.probe("lfp", LFP(of="cell", electrodes_um=contacts))
    run = ps.run(m)
    csd = run.probe("csd")
    assert csd.units == "nA/um^3" and csd.data.shape[1] == len(contacts) - 2
    np.testing.assert_array_equal(csd.positions_um, np.array(contacts)[1:-1])
    np.testing.assert_allclose(csd.data, F.second_difference_csd(run.probe("lfp").data, 100.0, 0.3),
                               rtol=1e-10, atol=1e-22)


def test_cells_without_recorded_currents_are_refused_with_the_fix():
    m = ps.Model(seed=1, t_stop_ms=2.0)
    m.solver("cell", cells(nseg=5, record=False))
    m.probe("lfp", LFP(of="cell", electrodes_um=[(10.0, 0.0, 0.0)]))
    with pytest.raises(ModelError, match="record_currents=True"):
        ps.run(m)


def test_a_solver_type_without_sources_is_refused_naming_those_that_have_them():
    m = ps.Model(seed=1, t_stop_ms=2.0)
    m.solver("lin", ps.solvers.LinearSystem.example())
    m.probe("lfp", LFP(of="lin", electrodes_um=[(10.0, 0.0, 0.0)]))
    with pytest.raises(ModelError, match=r"solver 'lin' \(\w+\) cannot contribute to an extracellular probe; .*'cell_population'"):
        ps.run(m)


@pytest.mark.parametrize("kw, match", [
    pytest.param(dict(method="disc"), r"'method' must be one of 'point', 'line', 'root_as_point' \(got 'disc'\)",
                 id="method"),
    pytest.param(dict(electrodes_um=[(1.0, 2.0)]), r"'electrodes_um' must be rows of 3", id="electrodes"),
    pytest.param(dict(sigma_S_per_m=0.0), r"'sigma_S_per_m' must be a finite number > 0 \(got 0.0\)", id="sigma"),
    pytest.param(dict(of=()), r"'of' must be a solver name", id="no-solvers"),
    pytest.param(dict(keep_parts="yes"), r"'keep_parts' must be True or False", id="keep-parts"),
    pytest.param(dict(sources={"x": 1}), r"'sources' names solver 'x', which is not in 'of'", id="sources"),
])
def test_bad_lfp_fields_are_named(kw, match):
    args = dict(of="cell", electrodes_um=[(0.0, 0.0, 0.0)]) | kw
    with pytest.raises(ModelError, match=match):
        LFP(**args)


def test_bad_csd_and_ecog_geometry_is_named():
    with pytest.raises(ModelError, match="equally spaced along a straight line"):
        CSD(of="c", contacts_um=[(0, 0, 0), (0, 0, 100), (0, 0, 250)])
    with pytest.raises(ModelError, match="needs 'contacts_um'"):
        CSD(of="c")
    with pytest.raises(ModelError, match="'z_edges_um' must be rows"):
        CSD(of="c", method="delta", z_edges_um=[(0, -1)])
    with pytest.raises(ModelError, match="'plane_normal' must be a nonzero vector"):
        ECoG(of="c", electrodes_um=[(0, 0, 0)], plane_normal=(0, 0, 0))


def test_probes_round_trip_through_plain_data():
    for spec in (LFP.example(), CSD.example(), ECoG.example(),
                 CSD(of=("a", "b"), method="delta", contacts_um=[(0, 0, 0), (0, 0, 50)], keep_parts=True)):
        assert type(spec).from_dict(spec.to_dict()) == spec
