"""probes/head.py: CurrentDipole, EEG and MEG probes in full runs (cells and neural masses).

References: LFPykit's four-sphere EEG/ECoG of the ball-and-stick's dipole at (0, 0, 78000) um
(../shared/reference/probes); our cell solver's currents differ from NEURON's by ~0.4% relative
RMS (tests/test_cell_population.py), so full-run comparisons allow 2% relative RMS. Where a probe
is compared with the product of its own dipole and a forward matrix from the same run, the
identity is exact up to float rounding (1e-10 relative).
"""
from __future__ import annotations

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.probes import EEG, MEG, CurrentDipole, FourSphere, InfiniteMedium, RegionDipoles
from polyscale.probes import forward as F
from polyscale.solvers.cell.mechanisms import AlphaSynapse
from polyscale.solvers.cell.population import ball_and_stick_population
from polyscale.solvers.mass.connectome import spherical_connectome

ALPHA = tuple(AlphaSynapse(section="dend", x=0.8, onset_ms=t, tau_ms=2.0, gmax_uS=0.05, e_mV=0.0)
              for t in (10.0, 40.0, 70.0))
TOP = (0.0, 0.0, 78000.0)


def cells(n=1, nseg=101, positions=(TOP,), rotations=None):
    return ball_and_stick_population(n=n, dend_nseg=nseg, positions_um=positions, rotations_deg=rotations,
                                     record_currents=True).replace(alpha_synapses=ALPHA)


def rel_rms(a, b):
    return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))


def test_four_sphere_eeg_and_ecog_of_the_reference_cell_match_lfpykit(reference):
    fs = np.load(reference / "probes" / "eeg_ecog_foursphere.npz")
    m = ps.Model(seed=1, t_stop_ms=100.0, window_ms=1.0)
    m.solver("cell", cells())
    m.probe("eeg", EEG(of="cell", electrodes_um=fs["eeg_electrodes_um"]))
    m.probe("ecog", EEG(of="cell", electrodes_um=fs["ecog_electrodes_um"]))
    m.probe("p", CurrentDipole(of="cell"))
    run = ps.run(m)
    p = run.probe("p").data
    for which in ("eeg", "ecog"):
        pr = run.probe(which)
        assert pr.units == "mV" and pr.modality == "eeg"
        assert rel_rms(pr.data, fs[f"V_{which}_mV"].T[:4000]) < 0.02
        # exact: LFPykit's matrix times our own dipole
        want = p @ fs[f"M_{which}_mV_per_nAum"].T
        assert np.abs(pr.data - want).max() < 1e-10 * np.abs(want).max()


def test_meg_of_a_radial_cell_is_silent_in_a_sphere_and_a_tangential_one_is_not():
    """The ball-and-stick along z at the top of the head is a radial dipole: Sarvas gives no
    field outside; rotated by 90 deg about y it lies along x, tangential, and the field is the
    Sarvas matrix times its dipole. 'infinite' is the Biot-Savart field of the same dipole. The
    sensors lie in the x-z plane and measure B_y (radial magnetometers would see nothing of the
    radial dipole in either model: B . r_hat is the primary currents' alone)."""
    th = np.deg2rad([0.0, 10.0, 30.0])
    se = 100000.0 * np.c_[np.sin(th), np.zeros(3), np.cos(th)]
    ny = [(0.0, 1.0, 0.0)] * 3
    m = ps.Model(seed=1, t_stop_ms=20.0, window_ms=1.0)
    m.solver("radial", cells(nseg=21))
    m.solver("tangential", cells(nseg=21, rotations=((0.0, 90.0, 0.0),)))
    for s in ("radial", "tangential"):
        m.probe(f"sph_{s}", MEG(of=s, sensors_um=se, orientations=ny))
        m.probe(f"inf_{s}", MEG(of=s, sensors_um=se, orientations=ny, model="infinite"))
        m.probe(f"p_{s}", CurrentDipole(of=s))
    run = ps.run(m)
    nrm = np.array(ny)
    for s in ("radial", "tangential"):
        p = run.probe(f"p_{s}").data
        for model, fn in (("sph", F.meg_sarvas_matrix), ("inf", F.meg_infinite_matrix)):
            G = np.einsum("sb,sbd->sd", nrm, fn(se, TOP)[:, :, 0, :])
            pr = run.probe(f"{model}_{s}")
            assert pr.units == "fT"
            np.testing.assert_allclose(pr.data, p @ G.T, rtol=1e-10, atol=1e-10 * np.abs(p @ G.T).max() + 1e-300)
    inf_scale = np.abs(run.probe("inf_radial").data).max()
    assert inf_scale > 0 and np.abs(run.probe("sph_radial").data).max() < 1e-10 * inf_scale
    assert np.abs(run.probe("sph_tangential").data).max() > 0.1 * np.abs(run.probe("inf_tangential").data).max()


def _jr_model(n=6, gain=None, **eeg_kw):
    conn = spherical_connectome(n, radius_mm=70.0)
    brain = ps.solvers.RegionNetwork(connectome=conn, dt_ms=0.1)
    m = ps.Model(seed=1, t_stop_ms=50.0, window_ms=1.0)
    m.solver("brain", brain)
    m.record("brain.activity")
    src = RegionDipoles(gain_nA_um_per_mV=gain if gain is not None else 1e5)
    return m, conn, src


def test_mass_region_dipoles_give_eeg_equal_to_lead_field_times_gain_times_y1_minus_y2():
    """Jansen-Rit regions on a sphere of 70 mm: each region's dipole is gain * (y1 - y2) along
    its radial direction at its centre, so EEG = L @ (gain * activity) with L the four-sphere
    lead field of those dipoles; with a user lead field, that matrix."""
    gain = np.linspace(1e5, 2e5, 6)
    m, conn, src = _jr_model(gain=tuple(gain))
    el = 90000.0 * np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 0.6, 0.8], [0, -0.8, 0.6]])
    user = np.random.default_rng(2).normal(size=(4, 18)) * 1e-9
    m.probe("eeg", EEG(of="brain", electrodes_um=el, sources={"brain": src}))
    m.probe("user", EEG(of="brain", electrodes_um=el, sources={"brain": src}, lead_field={"brain": user}))
    m.probe("p", CurrentDipole(of="brain", sources={"brain": src}))
    m.probe("each", CurrentDipole(of="brain", sources={"brain": src}, per="source"))
    run = ps.run(m)
    act = run.signal("brain", "activity").data             # (n_t, 6) mV
    pos = 1000.0 * conn.centre_array()
    ori = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    dip = (act * gain)[:, :, None] * ori[None]              # (n_t, 6, 3) nA um
    L = F.four_sphere_lead_field(el, pos).reshape(4, 18)
    want = dip.reshape(len(act), -1) @ L.T
    got = run.probe("eeg").data
    assert np.abs(want).max() > 0
    assert np.abs(got - want).max() < 1e-12 * np.abs(want).max()
    want_user = dip.reshape(len(act), -1) @ user.T
    assert np.abs(run.probe("user").data - want_user).max() < 1e-12 * np.abs(want_user).max()
    np.testing.assert_allclose(run.probe("p").data, dip.sum(axis=1), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(run.probe("each").data, dip.reshape(len(act), -1), rtol=1e-12, atol=1e-9)


def test_eeg_over_cells_and_masses_sums_their_shares():
    """One EEG over a detailed cell population and a mass network: the written signal is the
    sum of the two parts (keep_parts), and each part is the probe over that solver alone."""
    el = [(0.0, 0.0, 90000.0), (90000.0, 0.0, 0.0)]

    def model(of, keep=False):
        m, conn, src = _jr_model(n=4)
        m.solver("cell", cells(nseg=21))
        srcs = {"brain": src} if "brain" in of else None
        m.probe("eeg", EEG(of=of, electrodes_um=el, sources=srcs, keep_parts=keep, every_ms=0.1))
        return m
    both = ps.run(model(("cell", "brain"), True)).probe("eeg")
    for s in ("cell", "brain"):
        alone = ps.run(model((s,))).probe("eeg").data
        np.testing.assert_allclose(both.parts[s], alone, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(both.data, both.parts["cell"] + both.parts["brain"], rtol=1e-12, atol=1e-20)


def test_infinite_medium_head_and_a_reference_electrode():
    el = [(0.0, 0.0, 80000.0), (3000.0, 0.0, 79000.0), (0.0, 3000.0, 78000.0)]
    m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
    m.solver("cell", cells(nseg=21))
    m.probe("inf", EEG(of="cell", electrodes_um=el, head=InfiniteMedium(sigma_S_per_m=0.3)))
    m.probe("ref", EEG(of="cell", electrodes_um=el, head=InfiniteMedium(sigma_S_per_m=0.3), reference=2))
    m.probe("p", CurrentDipole(of="cell"))
    run = ps.run(m)
    p, inf = run.probe("p").data, run.probe("inf").data
    want = p @ F.infinite_dipole_matrix(el, TOP, 0.3)[:, 0, :].T
    np.testing.assert_allclose(inf, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())
    np.testing.assert_allclose(run.probe("ref").data, inf - inf[:, 2:3], rtol=1e-10, atol=1e-20)


def test_current_dipole_per_solver_and_total():
    m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
    m.solver("a", cells(nseg=11))
    m.solver("b", cells(nseg=11, rotations=((0.0, 90.0, 0.0),)))
    m.probe("each", CurrentDipole(of=("a", "b")))
    m.probe("total", CurrentDipole(of=("a", "b"), per="total"))
    run = ps.run(m)
    each, total = run.probe("each").data, run.probe("total").data
    assert each.shape[1] == 6 and total.shape[1] == 3
    np.testing.assert_allclose(total, each[:, :3] + each[:, 3:], rtol=1e-12, atol=1e-12)
    # a is along z, b (rotated 90 deg about y) along x: the same moment, turned
    np.testing.assert_allclose(each[:, 3], each[:, 2], rtol=1e-9, atol=1e-9 * np.abs(each).max())


def test_current_dipole_per_cell():
    """Three cells, one rotated: per='source' gives each cell's moment, which sum to the
    population's, and the rotated cell's moment is the others' turned by 90 deg about y."""
    m = ps.Model(seed=1, t_stop_ms=15.0, window_ms=1.0)
    m.solver("c", cells(n=3, nseg=11, positions=((0, 0, 0), (50, 0, 0), (0, 80, 0)),
                        rotations=((0, 0, 0), (0, 0, 0), (0, 90, 0))))
    m.probe("each", CurrentDipole(of="c", per="source"))
    m.probe("sum", CurrentDipole(of="c"))
    run = ps.run(m)
    each = run.probe("each").data.reshape(-1, 3, 3)
    np.testing.assert_allclose(each.sum(axis=1), run.probe("sum").data, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(each[:, 1], each[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(each[:, 2, 0], each[:, 0, 2], rtol=1e-9, atol=1e-9 * np.abs(each).max())


def test_current_dipole_per_source_over_several_solvers_concatenates_them_in_order():
    """per='source' over a mass network (4 regions) and two cells: the channels are the sources
    of the solvers in the order of ``of``; the regions' block is the closed form gain * (y1 -
    y2) along the radial direction, the cells' block sums to the cells' per='solver' moment,
    and reversing ``of`` swaps the blocks."""
    gain = 1e5
    m, conn, src = _jr_model(n=4, gain=gain)
    m.solver("cell", cells(n=2, nseg=11, positions=(TOP, (100.0, 0.0, 78000.0))))
    srcs = {"brain": src}
    m.probe("each", CurrentDipole(of=("brain", "cell"), sources=srcs, per="source", every_ms=0.1))
    m.probe("back", CurrentDipole(of=("cell", "brain"), sources=srcs, per="source", every_ms=0.1))
    m.probe("cell_sum", CurrentDipole(of="cell", every_ms=0.1))
    run = ps.run(m)
    each, back = run.probe("each").data, run.probe("back").data
    assert each.shape[1] == 3 * 4 + 3 * 2
    act = run.signal("brain", "activity").data              # (n_t, 4) mV, every 0.1 ms
    pos = 1000.0 * conn.centre_array()
    ori = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    dip = (act * gain)[:, :, None] * ori[None]
    np.testing.assert_allclose(each[:, :12], dip.reshape(len(act), -1), rtol=1e-12, atol=1e-9)
    cell = each[:, 12:].reshape(len(each), 2, 3)
    assert np.abs(cell).max() > 0
    np.testing.assert_allclose(cell.sum(axis=1), run.probe("cell_sum").data, rtol=1e-12,
                               atol=1e-12 * np.abs(cell).max())
    np.testing.assert_array_equal(back, np.hstack([each[:, 12:], each[:, :12]]))


def test_bad_head_and_probe_fields_are_named():
    with pytest.raises(ModelError, match=r"'radii_um' must be 4 increasing radii"):
        FourSphere(radii_um=(80000.0, 79000.0, 85000.0, 90000.0))
    with pytest.raises(ModelError, match=r"'sigmas_S_per_m' must be 4 conductivities > 0"):
        FourSphere(sigmas_S_per_m=(0.3, 0.0, 0.1, 0.3))
    with pytest.raises(ModelError, match=r"lead_field\['b'\] must be a finite \(1, 3 n_sources\) matrix"):
        EEG(of="b", electrodes_um=[(0, 0, 1)], lead_field={"b": [[1.0, 2.0]]})
    with pytest.raises(ModelError, match=r"'reference' must be None or an electrode index in \[0, 1\)"):
        EEG(of="b", electrodes_um=[(0, 0, 1)], reference=3)
    with pytest.raises(ModelError, match=r"'model' must be one of 'sarvas', 'infinite'"):
        MEG(of="b", sensors_um=[(0, 0, 1)], model="bem")
    with pytest.raises(ModelError, match=r"'per' must be one of 'solver', 'total'"):
        CurrentDipole(of="b", per="cell")


def test_a_user_lead_field_of_the_wrong_width_is_refused_when_the_run_starts():
    m, conn, src = _jr_model(n=4)
    m.probe("eeg", EEG(of="brain", electrodes_um=[(0, 0, 90000.0)], sources={"brain": src},
                       lead_field={"brain": [[1e-9] * 6]}))
    with pytest.raises(ModelError, match=r"has 6 columns, but the solver has 4 sources"):
        ps.run(m)


def test_head_probes_round_trip_through_plain_data():
    for spec in (EEG.example(), MEG.example(), CurrentDipole.example(),
                 EEG(of="a", electrodes_um=[(0, 0, 90000.0)], head=InfiniteMedium(sigma_S_per_m=0.33),
                     sources={"a": RegionDipoles.example()}),
                 MEG(of="a", sensors_um=[(0, 0, 1e5)], orientations=[(0, 1, 0)], model="infinite")):
        assert type(spec).from_dict(spec.to_dict()) == spec


def test_every_transport_writes_the_same_eeg_lfp_and_parts(transport):
    """A cell population and a mass network in their own processes (zmq, mpi): each probe's
    local part runs beside its solver, and the file is the same as in one process."""
    def model():
        m, conn, src = _jr_model(n=3)
        m.solver("cell", cells(nseg=11))
        m.probe("eeg", EEG(of=("cell", "brain"), electrodes_um=[(0.0, 0.0, 90000.0)],
                           sources={"brain": src}, keep_parts=True, every_ms=0.5))
        m.probe("lfp", ps.probes.LFP(of="cell", electrodes_um=[(0.0, 30.0, 78100.0)], every_ms=0.5))
        return m
    got = ps.run(model(), transport=transport)
    want = ps.run(model())
    for name in ("eeg", "lfp"):
        np.testing.assert_array_equal(got.probe(name).data, want.probe(name).data)
    assert set(got.probe("eeg").parts) == {"cell", "brain"}
