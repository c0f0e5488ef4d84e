"""probes/forward.py: the forward-model matrices against LFPykit 0.6.2 (../shared/reference/probes,
computed from a NEURON ball-and-stick), LFPykit's documented examples, and closed forms.

Tolerances: LFPykit's matrices are reproduced to 1e-9 relative (the issue asks 1e-6; the
formulas are the same, so only rounding differs); closed forms checked by numerical integration
or differentiation carry the discretisation error stated at each test.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.probes import forward as F

RTOL = 1e-9


def rel(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


@pytest.fixture(scope="module")
def ref(reference):
    r = reference / "probes"
    out = {k: np.load(r / f"{k}.npz") for k in ("lfp_ballstick_inputs", "lfp_ballstick_lfp",
                                                  "lfp_ballstick_dipole", "eeg_ecog_foursphere")}
    out["summary"] = json.loads((r / "lfp_summary.json").read_text())
    return out


@pytest.fixture(scope="module")
def cell(ref):
    inp = ref["lfp_ballstick_inputs"]
    start = np.c_[inp["seg_x_um"][:, 0], inp["seg_y_um"][:, 0], inp["seg_z_um"][:, 0]]
    end = np.c_[inp["seg_x_um"][:, 1], inp["seg_y_um"][:, 1], inp["seg_z_um"][:, 1]]
    lfp = ref["lfp_ballstick_lfp"]
    el = np.c_[lfp["elec_x_um"], lfp["elec_y_um"], lfp["elec_z_um"]]
    return start, end, inp["seg_d_um"], el, inp["imem_nA"]


@pytest.mark.parametrize("method, key", [("point", "pointsource"), ("line", "linesource"),
                                         ("root_as_point", "root_as_point")])
def test_lfp_matrices_and_potentials_match_lfpykit(ref, cell, method, key):
    start, end, d, el, imem = cell
    lfp = ref["lfp_ballstick_lfp"]
    M = F.extracellular_matrix(start, end, d, el, float(lfp["sigma_S_per_m"]), method)
    assert rel(M, lfp[f"M_{key}_mV_per_nA"]) < RTOL
    assert rel(M @ imem, lfp[f"V_{key}_mV"]) < RTOL


def test_line_source_is_the_integral_of_point_sources_along_the_segment():
    """Holt's closed form against a midpoint rule with 20000 points (error ~1e-8 relative)."""
    rng = np.random.default_rng(3)
    start = rng.uniform(-100, 100, (5, 3))
    end = start + rng.uniform(-60, 60, (5, 3))
    el = rng.uniform(-200, 200, (7, 3))
    M = F.line_source_matrix(start, end, np.zeros(5), el, 0.3)
    s = (np.arange(20000) + 0.5) / 20000
    for k in range(5):
        pts = start[k] + s[:, None] * (end[k] - start[k])
        r = np.linalg.norm(el[:, None, :] - pts[None], axis=-1)
        want = (1.0 / (4 * np.pi * 0.3 * r)).mean(axis=1)
        np.testing.assert_allclose(M[:, k], want, rtol=1e-7)


def test_min_distance_caps_the_potential_next_to_a_segment():
    start, end = np.array([[0.0, 0, 0]]), np.array([[0.0, 0, 10]])
    el = np.array([[0.5, 0, 5], [0.0, 0, 5]])
    M = F.line_source_matrix(start, end, np.array([2.0]), el, 0.3, min_distance_um=3.0)
    # both electrodes are nearer than 3 um to the axis: taken as 3 um from it
    want = F.line_source_matrix(start, end, np.array([2.0]), np.array([[3.0, 0, 5]]), 0.3)
    np.testing.assert_allclose(M, np.vstack([want, want]), rtol=1e-12)
    P = F.point_source_matrix(start, end, np.array([2.0]), el, 0.3)    # default: radius 1 um
    assert P[1, 0] == pytest.approx(1 / (4 * np.pi * 0.3 * 1.0))


@pytest.mark.parametrize("lfpykit_fractions", [False, True])
def test_laminar_csd_matches_lfpykit(ref, cell, lfpykit_fractions):
    start, end, _, _, imem = cell
    lfp = ref["lfp_ballstick_lfp"]
    M = F.laminar_csd_matrix(start, end, lfp["csd_z_edges_um"], lfp["csd_r_um"],
                             lfpykit_fractions=lfpykit_fractions)
    assert rel(M, lfp["M_csd_per_um3"]) < RTOL
    assert rel(M @ imem, lfp["CSD_nA_per_um3"]) < RTOL


def test_lfpykit_fractions_of_an_oblique_segment_follow_its_rz_plane_rule():
    """A segment from (50, 0, 0) to (50, 60, 100) um leaves the cylinder z in [0, 50) through
    its top at half its length. LFPykit draws it straight in the (R, z) plane, from (50, 0) to
    (R1, 100) with R1 = sqrt(50^2 + 60^2), and counts the length to the top there,
    0.5 sqrt((R1 - 50)^2 + 100^2), over the 3D length sqrt(60^2 + 100^2)."""
    s, e = [[50.0, 0, 0]], [[50.0, 60, 100]]
    vol = np.pi * 100.0 ** 2 * 50.0
    exact = F.laminar_csd_matrix(s, e, [[0.0, 50.0]], 100.0)[0, 0] * vol
    lfpykit = F.laminar_csd_matrix(s, e, [[0.0, 50.0]], 100.0, lfpykit_fractions=True)[0, 0] * vol
    R1 = math.hypot(50.0, 60.0)
    assert exact == pytest.approx(0.5, rel=1e-12)
    assert lfpykit == pytest.approx(0.5 * math.hypot(R1 - 50.0, 100.0) / math.hypot(60.0, 100.0), rel=1e-12)


@pytest.mark.parametrize("lfpykit_fractions", [False, True])
def test_laminar_csd_reproduces_lfpykits_documented_example(lfpykit_fractions):
    """LaminarCurrentSourceDensity's docstring: three 10-um segments on the z axis, cylinders
    of r = 100 um and 10 um; 1 / (pi 100^2 10) = 3.18309886e-06."""
    start = np.array([[0.0, 0, 0], [0, 0, 10], [0, 0, 20]])
    end = np.array([[0.0, 0, 10], [0, 0, 20], [0, 0, 30]])
    z = np.array([[-10.0, 0], [0, 10], [10, 20], [20, 30], [30, 40]])
    I = np.array([[0.0, -1.0, 1.0], [-1.0, 1.0, 0.0], [1.0, 0.0, -1.0]])
    C = F.laminar_csd_matrix(start, end, z, np.full(5, 100.0), lfpykit_fractions=lfpykit_fractions) @ I
    a = 3.18309886e-06
    want = np.array([[0, 0, 0], [0, -a, a], [-a, a, 0], [a, 0, -a], [0, 0, 0]])
    np.testing.assert_allclose(C, want, rtol=1e-8, atol=1e-20)


def test_laminar_csd_takes_the_part_of_an_oblique_segment_inside_the_cylinder():
    """A segment from (0,0,0) to (200,0,100) crosses r = 100 at its midpoint: half its length
    lies in the cylinder z in [0, 100), and none in [100, 200)."""
    vol = np.pi * 100.0 ** 2 * 100.0
    for lfpykit in (False, True):      # in a plane through the axis, LFPykit's rule is exact
        M = F.laminar_csd_matrix([[0.0, 0, 0]], [[200.0, 0, 100]], [[0.0, 100.0], [100.0, 200.0]], 100.0,
                                 lfpykit_fractions=lfpykit)
        np.testing.assert_allclose(M[:, 0] * vol, [0.5, 0.0], atol=1e-12)


def test_second_difference_csd_of_a_quadratic_potential_is_exact():
    """V = a z^2 (mV) has d2V/dz2 = 2a, so C = -sigma 2a (nA/um^3) at every interior contact."""
    z = np.arange(10) * 50.0
    a = 3e-7
    C = F.second_difference_csd(a * z ** 2, 50.0, 0.3)
    np.testing.assert_allclose(C, -0.3 * 2 * a, rtol=1e-9)
    D = F.second_difference_matrix(10, 50.0, 0.3)
    np.testing.assert_allclose(D @ (a * z ** 2), C, rtol=1e-12)


def test_current_dipole_moment_matrix_matches_lfpykit(ref, cell):
    start, end, _, _, imem = cell
    dip = ref["lfp_ballstick_dipole"]
    M = F.dipole_moment_matrix(start, end)
    assert rel(M, dip["M_cdm_um"]) < RTOL
    assert rel(M @ imem, dip["P_nA_um"]) < RTOL


def test_infinite_medium_dipole_matches_lfpykit(ref):
    dip = ref["lfp_ballstick_dipole"]
    M = F.infinite_dipole_matrix(dip["farfield_points_um"], dip["farfield_dipole_center_um"])[:, 0, :]
    assert rel(M @ dip["P_nA_um"], dip["V_far_dipole_infinite_mV"]) < RTOL
    # InfiniteVolumeConductor's docstring example: p = (10, 10, 10) nA um at r = (1000, 0, 5000) um
    v = F.infinite_dipole_matrix([[1000.0, 0, 5000]], [0.0, 0, 0])[0, 0] @ np.full(3, 10.0)
    assert v == pytest.approx(1.20049432e-07, rel=1e-8)


@pytest.mark.parametrize("which", ["eeg", "ecog"])
def test_four_sphere_matrices_and_potentials_match_lfpykit(ref, which):
    fs = ref["eeg_ecog_foursphere"]
    M = F.four_sphere_matrix(fs[f"{which}_electrodes_um"], fs["dipole_location_um"], fs["radii_um"],
                             fs["sigmas_S_per_m"])
    assert rel(M, fs[f"M_{which}_mV_per_nAum"]) < RTOL
    assert rel(M @ fs["P_nA_um"], fs[f"V_{which}_mV"]) < RTOL
    assert rel(M @ fs["P_tan_nA_um"], fs[f"V_{which}_tan_mV"]) < RTOL
    inf = F.infinite_dipole_matrix(fs[f"{which}_electrodes_um"], fs["dipole_location_um"], 0.3)[:, 0]
    assert rel(inf, fs[f"M_{which}_infinite_sigma0p3_mV_per_nAum"]) < RTOL


def test_four_sphere_top_of_scalp_and_skull_match_lfpykits_documented_values():
    """FourSphereVolumeConductor's docstring: p = (10, 10, 10) nA um at (0, 0, 78000) um gives
    1.06247669e-08 mV at the top of the scalp and 2.39290752e-10 mV at (0, 85000, 0) (the
    skull's outer surface); the reference README's radial transfer 1.0625e-9 mV per nA um."""
    M = F.four_sphere_matrix([[0.0, 0, 90000], [0, 85000, 0]], [0.0, 0, 78000])
    v = M @ np.full(3, 10.0)
    np.testing.assert_allclose(v, [1.06247669e-08, 2.39290752e-10], rtol=2e-8)


def test_four_sphere_series_to_machine_precision_stays_within_lfpykits_truncation(ref):
    fs = ref["eeg_ecog_foursphere"]
    for which in ("eeg", "ecog"):
        exact = F.four_sphere_matrix(fs[f"{which}_electrodes_um"], fs["dipole_location_um"], iter_factor=None)
        # LFPykit stops at a term 2e-8 of the running sum; the tangential P_n^1 grow with n,
        # so its truncation reaches ~1e-5 relative just above the dipole
        assert rel(exact, fs[f"M_{which}_mV_per_nAum"]) < 3e-5


def test_four_sphere_with_equal_conductivities_is_the_infinite_medium_far_from_the_surface():
    """Equal conductivities leave one homogeneous sphere (air outside). With radii of 10 m and
    electrodes within 3 mm of the dipole, the boundary's effect is of order (3e3 / 1e7)^2 ~ 1e-7."""
    R = 1e7
    radii = (R, R * 1.001, R * 1.002, R * 1.003)
    dip = np.array([0.0, 0, 1000.0])
    rng = np.random.default_rng(0)
    el = dip + rng.uniform(-3000, 3000, (12, 3))
    el = el[np.linalg.norm(el, axis=1) > 1500.0]
    M = F.four_sphere_matrix(el, dip, radii, (0.3, 0.3, 0.3, 0.3), iter_factor=None)
    inf = F.infinite_dipole_matrix(el, dip, 0.3)[:, 0]
    np.testing.assert_allclose(M, inf, rtol=1e-5, atol=1e-6 * np.abs(inf).max())


def test_four_sphere_rejects_a_dipole_outside_the_brain():
    with pytest.raises(ModelError, match="not inside the brain"):
        F.four_sphere_matrix([[0.0, 0, 90000]], [0.0, 0, 79500])
    with pytest.raises(ModelError, match="electrodes must lie between"):
        F.four_sphere_matrix([[0.0, 0, 95000]], [0.0, 0, 78000])


def _meg_sensors():
    """The 13 sensors of the reference's MEG check (scripts/cell/lfpykit_refs.py)."""
    th = np.deg2rad([0, 5, 10, 20, 30, 45, 60])
    ring = 100000.0 * np.c_[np.sin(th), np.zeros_like(th), np.cos(th)]
    off = 100000.0 * np.c_[np.sin(th) * np.cos(np.pi / 4), np.sin(th) * np.sin(np.pi / 4), np.cos(th)][1:]
    return np.vstack([ring, off])


def test_meg_matches_the_reference_field_magnitudes(ref):
    """LFPykit's H (nA/um) times mu0 * 1e-3 is B in T (README note); the summary keeps max |B|
    in fT over sensors and time for the radial (ball-and-stick) and tangential dipoles."""
    fs, meg = ref["eeg_ecog_foursphere"], ref["summary"]["meg"]
    se, loc = _meg_sensors(), fs["dipole_location_um"]
    for model, fn in (("sph", F.meg_sarvas_matrix), ("inf", F.meg_infinite_matrix)):
        G = fn(se, loc)[:, :, 0, :]                    # (n_s, 3, 3)
        for kind, P in (("radial", fs["P_nA_um"]), ("tangential", fs["P_tan_nA_um"])):
            got = np.abs(np.einsum("sbd,dt->sbt", G, P)).max()
            want = meg[f"{kind}_dipole_{model}_max_abs_B_fT"]
            if want == 0.0:
                inf = np.abs(np.einsum("sbd,dt->sbt", F.meg_infinite_matrix(se, loc)[:, :, 0, :], P)).max()
                assert got < 1e-12 * inf
            else:
                assert got == pytest.approx(want, rel=1e-9)


def test_infinite_medium_meg_is_the_curl_of_the_vector_potential():
    """B = curl A with A = mu0 p / (4 pi |r - r0|), by central differences of step 1e-3 |R|
    (error ~1e-6 relative)."""
    rng = np.random.default_rng(5)
    r0 = rng.uniform(-1000, 1000, 3)
    p = rng.normal(size=3) * 100
    se = rng.uniform(-1e4, 1e4, (4, 3))
    G = F.meg_infinite_matrix(se, r0)[:, :, 0, :] @ p
    for s in range(4):
        h = 1e-3 * np.linalg.norm(se[s] - r0)

        def A(x):
            return p / (4 * np.pi * np.linalg.norm(x - r0))
        J = np.empty((3, 3))                           # J[i, j] = dA_i / dx_j
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            J[:, j] = (A(se[s] + e) - A(se[s] - e)) / (2 * h)
        curl = np.array([J[2, 1] - J[1, 2], J[0, 2] - J[2, 0], J[1, 0] - J[0, 1]])
        np.testing.assert_allclose(G[s], F.FT_PER_H_NA_PER_UM * curl, rtol=1e-5,
                                   atol=1e-6 * np.abs(G[s]).max())


def test_sarvas_radial_component_is_the_primary_currents_and_radial_dipoles_are_silent():
    """Outside a spherically symmetric conductor the volume currents add nothing to B . r_hat
    (Sarvas 1987, Eq. 20), and a radial dipole has no field outside at all."""
    rng = np.random.default_rng(7)
    dp = rng.normal(size=(3, 3))
    dp = 70000.0 * dp / np.linalg.norm(dp, axis=1, keepdims=True)
    se = rng.normal(size=(6, 3))
    se = 110000.0 * se / np.linalg.norm(se, axis=1, keepdims=True)
    S, I = F.meg_sarvas_matrix(se, dp), F.meg_infinite_matrix(se, dp)
    rhat = se / np.linalg.norm(se, axis=1, keepdims=True)
    np.testing.assert_allclose(np.einsum("sb,sbjd->sjd", rhat, S), np.einsum("sb,sbjd->sjd", rhat, I),
                               rtol=1e-9, atol=1e-12 * np.abs(I).max())
    radial = np.einsum("sbjd,jd->sbj", S, dp / 70000.0)
    assert np.abs(radial).max() < 1e-12 * np.abs(S).max()
    assert math.isclose(F.FT_PER_H_NA_PER_UM, 4e-7 * math.pi * 1e-3 * 1e15)


def test_planar_interface_doubles_the_potential_on_an_insulating_plane():
    """Method of images: a point source under an insulator (W = 1) gives twice the infinite-
    medium potential on the plane, and V_inf(r, s) + V_inf(r, s') inside the tissue."""
    start, end = np.array([[10.0, 0, -100]]), np.array([[10.0, 0, -80]])
    el = np.array([[0.0, 0, 0], [50.0, 0, -20], [0, 0, 30]])
    M = F.planar_interface_matrix(start, end, [1.0], el, 0.3, 0.0, method="point")
    inf = F.point_source_matrix(start, end, [1.0], el, 0.3)
    mid_img = np.array([10.0, 0, 90])
    r_img = np.linalg.norm(el - mid_img, axis=1)
    np.testing.assert_allclose(M[0], 2 * inf[0], rtol=1e-12)
    np.testing.assert_allclose(M[1, 0], inf[1, 0] + 1 / (4 * np.pi * 0.3 * r_img[1]), rtol=1e-12)
    np.testing.assert_allclose(M[2], 2 * inf[2], rtol=1e-12)
    same = F.planar_interface_matrix(start, end, [1.0], el, 0.3, 0.3, method="line")
    np.testing.assert_allclose(same, F.line_source_matrix(start, end, [1.0], el, 0.3), rtol=1e-12)


def test_four_sphere_turns_with_the_head():
    """Rotating dipole, its moment and the electrodes together leaves the potentials unchanged
    (the model is spherically symmetric), also for a dipole off the coordinate axes. LFPykit's
    own azimuth (lfpykit_azimuth=True) agrees with ours on the axes only."""
    from scipy.spatial.transform import Rotation
    el = 90000.0 * np.array([[np.sin(0.3), 0, np.cos(0.3)], [0, np.sin(0.5), np.cos(0.5)],
                             [np.sin(0.2) * 0.6, np.sin(0.2) * 0.8, np.cos(0.2)], [0, 0, -1.0]])
    rz = np.array([0.0, 0, 78000])
    p = np.array([3.0, -1.0, 2.0])
    R = Rotation.from_euler("xyz", [20, 35, 10], degrees=True).as_matrix()
    v0 = F.four_sphere_matrix(el, rz) @ p
    v1 = F.four_sphere_matrix(el @ R.T, R @ rz) @ (R @ p)
    np.testing.assert_allclose(v1, v0, rtol=1e-9, atol=1e-9 * np.abs(v0).max())
    on_axis = F.four_sphere_matrix(el, rz, lfpykit_azimuth=True)
    np.testing.assert_allclose(on_axis, F.four_sphere_matrix(el, rz), rtol=1e-12, atol=1e-25)
    off = F.four_sphere_matrix(el @ R.T, R @ rz, lfpykit_azimuth=True) @ (R @ p)
    assert np.abs(off - v0).max() > 1e-3 * np.abs(v0).max()
