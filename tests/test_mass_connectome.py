"""Connectome spec and loader: formats, delays (TVB's rounding), bad input."""
import re
import zipfile

import msgpack
import numpy as np
import pytest

import polyscale as ps
from polyscale.solvers.mass import Connectome, RegionNetwork, load_connectome, spherical_connectome


def arrays(n=5, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 3, (n, n)) * (rng.uniform(size=(n, n)) < 0.6)
    t = rng.uniform(5, 150, (n, n))
    return w, t, [f"r{i}" for i in range(n)]


def test_tvb_zip_folder_npz_and_npy_give_the_same_connectome(tmp_path):
    w, t, labels = arrays()
    centres = np.tile([0.0, 1.0, 2.0], (len(labels), 1))
    want = Connectome(weights=w, tract_lengths_mm=t, speed_mm_per_ms=4.0, labels=labels, centres_mm=centres)
    # TVB's zip layout: whitespace text, centres.txt with the label first
    folder = tmp_path / "tvb"
    folder.mkdir()
    np.savetxt(folder / "weights.txt", w, fmt="%.17g")
    np.savetxt(folder / "tract_lengths.txt", t, fmt="%.17g")
    (folder / "centres.txt").write_text("".join(f"{s} 0.0 1.0 2.0\n" for s in labels))
    with zipfile.ZipFile(tmp_path / "conn.zip", "w") as z:
        for f in folder.iterdir():
            z.write(f, f.name)
    np.savez(tmp_path / "conn.npz", weights=w, tract_lengths_mm=t, labels=np.array(labels), centres_mm=centres)
    np.save(tmp_path / "c_weights.npy", w)
    np.save(tmp_path / "c_tract_lengths_mm.npy", t)
    (tmp_path / "c_region_labels.txt").write_text("\n".join(labels))
    for path in (folder, tmp_path / "conn.zip", tmp_path / "conn.npz"):
        assert load_connectome(path, speed_mm_per_ms=4.0) == want, path
    # a bare weights .npy has no centres
    assert load_connectome(tmp_path / "c_weights.npy", speed_mm_per_ms=4.0) == want.replace(centres_mm=None)


def test_csv_text_matrices_are_read(tmp_path):
    w, t, _ = arrays(3)
    np.savetxt(tmp_path / "weights.csv", w, delimiter=",", fmt="%.17g")
    np.savetxt(tmp_path / "tract_lengths.csv", t, delimiter=",", fmt="%.17g")
    c = load_connectome(tmp_path)
    np.testing.assert_array_equal(c.weight_matrix(), w)


def test_the_reference_connectome_loads_with_its_labels(reference):
    c = load_connectome(reference / "mass" / "conn76_weights.npy")
    assert c.n == 76 and c.labels[0] == "rA1"
    assert np.count_nonzero(c.weight_matrix()) == 1560          # the README's edge count
    np.testing.assert_array_equal(c.delay_steps(0.1), np.load(reference / "mass" / "conn76_idelays_steps_dt0.1.npy"))


def test_delays_round_half_to_even_like_tvb():
    """length / speed / dt = 2.5 and 3.5 steps round to 2 and 4 (numpy.rint, as TVB)."""
    c = Connectome(weights=[[0, 1.0, 1.0], [1.0, 0, 0], [0, 0, 0]],
                   tract_lengths_mm=[[0, 0.75, 1.05], [0.75, 0, 0], [0, 0, 0]], speed_mm_per_ms=3.0)
    d = c.delay_steps(0.1)
    assert d[0, 1] == np.rint(0.75 / 3.0 / 0.1) and d[0, 2] == np.rint(1.05 / 3.0 / 0.1)
    assert Connectome(weights=[[0.0]]).delay_steps(0.1).tolist() == [[0]]


def test_a_connectome_travels_as_plain_data_inside_the_model():
    w, t, labels = arrays(4)
    spec = RegionNetwork(connectome=Connectome(weights=w, tract_lengths_mm=t, labels=labels))
    data = msgpack.unpackb(msgpack.packb(spec.to_dict()))
    assert RegionNetwork.from_dict(data) == spec
    m = ps.Model(t_stop_ms=1.0)
    m.solver("brain", spec)
    assert ps.Model.from_dict(m.to_dict()) == m


@pytest.mark.parametrize("make, message", [
    (lambda: Connectome(weights=[[0.0, 1.0]]), r"'weights' must be a square matrix of shape \(n, n\) \(got shape \(1, 2\)\)"),
    (lambda: Connectome(weights=[[0.0, float("nan")], [0.0, 0.0]]), r"'weights' must hold finite numbers"),
    (lambda: Connectome(weights=[[0.0, 1.0], [1.0, 0.0]], tract_lengths_mm=[[0.0]]),
     r"'tract_lengths_mm' must be a square matrix of shape \(2, 2\)"),
    (lambda: Connectome(weights=[[0.0, 1.0], [1.0, 0.0]], tract_lengths_mm=[[0.0, -1.0], [1.0, 0.0]]),
     r"'tract_lengths_mm' must be >= 0"),
    (lambda: Connectome(weights=[[0.0]], speed_mm_per_ms=0.0), r"'speed_mm_per_ms' must be a finite number > 0 \(got 0.0\)"),
    (lambda: Connectome(weights=[[0.0]], labels=["a", "b"]), r"'labels' must name all 1 regions \(got 2\)"),
])
def test_bad_connectomes_name_the_field(make, message):
    with pytest.raises(ps.ModelError, match=message):
        make()


def test_loader_errors_name_the_file_and_what_is_expected(tmp_path):
    with pytest.raises(ps.ModelError, match=r"does not exist"):
        load_connectome(tmp_path / "nope.zip")
    (tmp_path / "x.txt").write_text("1 2\n3 4\n")
    with pytest.raises(ps.ModelError, match=r"expected a TVB zip or folder"):
        load_connectome(tmp_path / "x.txt")
    with pytest.raises(ps.ModelError, match=r"has no weights.txt"):
        load_connectome(tmp_path)


def test_large_matrices_travel_packed_exactly_and_small_ones_as_tuples():
    """Above PACK_ABOVE entries a matrix is stored as a base64 string of its float64 bytes:
    exact, and cheap to write into the run file's /model; below, as readable tuples. Either
    form is accepted and normalised, so equal connectomes compare equal."""
    from polyscale.solvers.mass.connectome import PACK_ABOVE, pack_matrix
    rng = np.random.default_rng(1)
    n = int(np.sqrt(PACK_ABOVE)) + 1
    w, t = rng.uniform(0, 1, (n, n)), rng.uniform(0, 100, (n, n))
    big = Connectome(weights=w, tract_lengths_mm=t)
    assert isinstance(big.weights, str) and isinstance(big.tract_lengths_mm, str)
    np.testing.assert_array_equal(big.weight_matrix(), w)          # bit for bit
    np.testing.assert_array_equal(big.length_matrix(), t)
    assert big.n == n
    assert Connectome(weights=w.tolist(), tract_lengths_mm=pack_matrix(t)) == big
    data = msgpack.unpackb(msgpack.packb(big.to_dict()))
    assert Connectome.from_dict(data) == big
    small = Connectome(weights=pack_matrix(np.eye(3)))
    assert small.weights == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    with pytest.raises(ps.ModelError, match=r"'weights' is a string but not a packed matrix"):
        Connectome(weights="f8le-b64:3:AAAA")


def test_spherical_connectome_follows_the_exponential_distance_rule():
    c = spherical_connectome(40, radius_mm=70.0, lambda_mm=20.0, min_weight=0.05)
    x, w, d = c.centre_array(), c.weight_matrix(), c.length_matrix()
    # every centre on the sphere, region 0 nearest the top
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 70.0, rtol=1e-12)
    assert np.argmax(x[:, 2]) == 0
    np.testing.assert_allclose(d, np.linalg.norm(x[:, None] - x[None], axis=-1), rtol=1e-12)
    kept = w > 0
    np.testing.assert_allclose(w[kept], np.exp(-d[kept] / 20.0), rtol=1e-12)
    assert (np.exp(-d[~kept & ~np.eye(40, dtype=bool)] / 20.0) < 0.05).all()
    np.testing.assert_array_equal(w, w.T)
    assert Connectome.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kw, message", [
    (dict(n_regions=1), "'n_regions' must be an integer >= 2"),
    (dict(lambda_mm=0.0), "'lambda_mm' must be a finite number > 0"),
    (dict(min_weight=1.0), "'min_weight' must be in [0, 1)"),
])
def test_spherical_connectome_rejects_bad_parameters(kw, message):
    with pytest.raises(ps.ModelError, match=re.escape(message)):
        spherical_connectome(**kw)


def test_centres_must_be_one_row_per_region():
    with pytest.raises(ps.ModelError, match=re.escape("'centres_mm' must be 2 rows of 3 finite numbers")):
        Connectome(weights=[[0, 1.0], [1.0, 0]], centres_mm=[[0, 0, 1.0]])
