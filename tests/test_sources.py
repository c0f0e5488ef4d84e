"""probes/sources.py: the registry of solver types that make extracellular currents and dipoles,
the step-end sampling of per-step currents, and RegionDipoles."""
from __future__ import annotations

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Samples, WindowResult
from polyscale.probes import RegionDipoles, SourceModel, sources
from polyscale.solvers.mass.connectome import Connectome, spherical_connectome
from polyscale.solvers.mass.network import RegionNetwork


class _Spec:
    def __init__(self, type_):
        self.type = type_


class _Solver:
    def __init__(self, type_):
        self.spec = _Spec(type_)


def test_unknown_solver_types_are_refused_naming_the_types_that_can_contribute():
    with pytest.raises(ModelError, match=r"solver 'x' \(nothing\) cannot contribute current dipoles; "
                                         r"the solver types that can: .*'cell_population'.*'region_network'"):
        sources.dipole_part("x", _Solver("nothing"), {}, None, 100)
    with pytest.raises(ModelError, match=r"solver 'x' \(nothing\) cannot contribute to an extracellular "
                                         r"probe; the solver types that can: .*'cell_population'"):
        sources.extracellular_part("x", _Solver("nothing"), {}, None, np.zeros((1, 3)), 0.3, "line", None, 100)


def test_a_registered_factory_receives_what_the_probe_asks_for():
    seen = {}

    def factory(solver, ports, model, electrodes_um, sigma, method, min_distance_um, period_ticks):
        seen.update(solver=solver, electrodes=electrodes_um, sigma=sigma, method=method,
                    min_distance=min_distance_um, period=period_ticks)
        return lambda t0, t1, result: np.zeros((1, len(electrodes_um)))
    sources.register_extracellular("test_only_type", factory)
    try:
        s = _Solver("test_only_type")
        part = sources.extracellular_part("s", s, {}, None, [[1.0, 2.0, 3.0]], 0.25, "point", 5.0, 400)
        assert part(0, 400, None).shape == (1, 1)
        assert seen["solver"] is s and seen["sigma"] == 0.25 and seen["method"] == "point"
        assert seen["min_distance"] == 5.0 and seen["period"] == 400
        np.testing.assert_array_equal(seen["electrodes"], [[1.0, 2.0, 3.0]])
        assert "test_only_type" in sources.extracellular_types()
    finally:
        sources._EXTRACELLULAR.pop("test_only_type")


def test_step_end_sampler_takes_the_step_ending_at_each_sample_whatever_the_windows():
    """Per-step values x_k over [k dt, (k+1) dt): the sample at t = j P is x_{j P / dt - 1}, and
    0 at t = 0; split into windows of any length, the samples are the same."""
    dt, period, n_steps = 25, 100, 48
    x = np.arange(1.0, n_steps + 1)[:, None] * np.array([[1.0, -2.0]])      # (steps, 2)
    want = np.vstack([[0.0, 0.0], x[period // dt - 1::period // dt][: n_steps * dt // period - 1]])
    for window_steps in (1, 3, 4, 7, 48):
        s = sources.StepEndSampler(dt, period, lambda rows: rows * 1.0, (2,))
        got = []
        for a in range(0, n_steps, window_steps):
            b = min(n_steps, a + window_steps)
            got.append(s(a * dt, b * dt, x[a:b]))
        np.testing.assert_array_equal(np.concatenate(got), want)


def test_step_end_sampler_maps_each_window_in_one_call():
    """The samples inside a window and the one at its end (carried to the next window) are
    consecutive grid ticks, so f runs once per window on all of them: f is a pass over a probe
    matrix that streams from memory, and a second call for the carried sample read it twice."""
    dt, period = 25, 100
    x = np.arange(1.0, 49.0)[:, None]
    calls = []

    def f(rows):
        calls.append(len(rows))
        return rows * 1.0
    s = sources.StepEndSampler(dt, period, f, (1,))
    for a in range(0, 48, 8):                    # 200-tick windows: samples at a and a + 100
        s(a * dt, (a + 8) * dt, x[a:a + 8])
    assert calls == [2] * 6                      # a + 100 and the carried a + 200, together
    calls.clear()
    s(48 * dt, 50 * dt, np.ones((2, 1)))         # a window without a grid tick inside or at its end
    assert calls == []


def test_step_end_sampler_on_kept_rows_equals_the_sampler_on_every_step():
    """Given only the rows of the steps ending on the sample grids of two periods (with their
    end ticks), the sampler picks the same rows as from every step; a missing row is refused."""
    dt, n_steps = 25, 48
    x = np.arange(1.0, n_steps + 1)[:, None] * np.array([[1.0, -2.0]])
    ends = dt * np.arange(1, n_steps + 1)
    for period in (100, 150):
        keep = (ends % 100 == 0) | (ends % 150 == 0)
        for window_steps in (1, 5, 7, 48):
            full = sources.StepEndSampler(dt, period, lambda rows: rows * 1.0, (2,))
            kept = sources.StepEndSampler(dt, period, lambda rows: rows * 1.0, (2,))
            for a in range(0, n_steps, window_steps):
                b = min(n_steps, a + window_steps)
                k = keep[a:b]
                np.testing.assert_array_equal(kept(a * dt, b * dt, x[a:b][k], ends[a:b][k]),
                                              full(a * dt, b * dt, x[a:b]))
    s = sources.StepEndSampler(dt, 100, lambda rows: rows * 1.0, (2,))
    with pytest.raises(ModelError, match="did not keep the steps ending at the probe's samples"):
        s(0, 1200, x[:48:6], ends[:48:6])


def test_cell_solver_keeps_only_the_steps_the_probes_sample():
    """A cell solver told two sample periods (0.1 and 0.25 ms) keeps the currents of just the
    steps ending on either grid, bitwise those of the same steps of a twin that keeps every
    step (the per-step arithmetic does not change); clamp currents likewise. Windows of one
    length at one phase of the periods' 20-step lcm (the last three) reuse the solver's kept
    row pattern at later ticks."""
    from polyscale.solvers.cell.mechanisms import IClamp
    from polyscale.solvers.cell.population import ball_and_stick_population
    spec = ball_and_stick_population(n=3, dend_nseg=5, record_currents=True,
                                     iclamps=(IClamp(section="soma", x=0.5, delay_ms=0.3, dur_ms=5.0, amp_nA=0.5),))
    every, sampled = spec.build(None), spec.build(None)
    dt = sampled.dt_ticks
    sampled.sample_currents_every(4 * dt)
    sampled.sample_currents_every(10 * dt)
    t = 0
    for steps in (7, 13, 20, 1, 9, 20, 20, 20):
        t1 = t + steps * dt
        every.advance(t, t1, {})
        sampled.advance(t, t1, {})
        ends = t + dt * np.arange(1, steps + 1)
        keep = (ends % (4 * dt) == 0) | (ends % (10 * dt) == 0)
        np.testing.assert_array_equal(sampled.imem_ticks, ends[keep])
        np.testing.assert_array_equal(sampled.transmembrane_currents(), every.transmembrane_currents()[keep])
        np.testing.assert_array_equal(sampled.electrode_currents(), every.electrode_currents()[keep])
        t = t1
    with pytest.raises(ModelError, match=r"positive multiple of the step \(25000 ticks; got 30000\)"):
        sampled.sample_currents_every(30000)


@pytest.mark.parametrize("n", [7, 13, 16, 40])
def test_node_product_is_the_matrix_times_each_sample_in_one_order_whatever_the_window(n):
    """sources._node_product on random currents of n cells at 3 nodes of a strided buffer, against
    numpy's float64 product with the float32 matrix widened exactly: within
    NODE_PRODUCT_REL_ERROR (five roundings of each term, ~3e-7) of sum |M I|, and not equal to
    it (the float32 sums are in use; a wrong row or sample is off by orders of magnitude more).
    Several samples at once give each sample bitwise as alone (a sample does not depend on its
    window). 7 cells: 21 rows, two groups of eight summed in float32 (spanning nodes), then five
    one by one; 16 cells: two groups per node, which several samples read straight from the
    buffer (_node_product_direct) and one sample from its float32 copy; 13 and 40 cells: 4 and
    15 groups, so every one of the NODE_PRODUCT_CHUNKS chunks holds one, or up to four (which
    one sample reads interleaved, several one chunk after the other)."""
    rng = np.random.default_rng(3)
    N, n_out = 6, 5
    nodes = np.array([1, 2, 4], dtype=np.int64)
    M = rng.normal(size=(len(nodes) * n, n_out)).astype(np.float32)
    buf = rng.normal(size=(9, N, n))
    rows = buf[1::3]                                        # (3, N, n), a strided view
    out = np.empty((3, n_out))
    a32 = np.empty((3, len(nodes) * n), np.float32)
    sources._node_product(rows, nodes, M, out, a32)
    x = rows[:, nodes, :].reshape(3, -1)                    # node-major, cell-minor: M's rows
    want = x @ M.astype(np.float64)
    scale = np.abs(x) @ np.abs(M.astype(np.float64))
    assert (np.abs(out - want) <= sources.NODE_PRODUCT_REL_ERROR * scale).all()
    assert np.abs(out - want).max() > 1e-3 * sources.NODE_PRODUCT_REL_ERROR * scale.max()
    for s in range(3):
        one = np.empty((1, n_out))
        sources._node_product(rows[s:s + 1], nodes, M, one, a32)
        np.testing.assert_array_equal(one[0], out[s])


@pytest.mark.parametrize("n, seed", [(64, 0), (64, 1), (40, 0), (61, 0)])
def test_node_product_sums_groups_and_chunks_in_one_order_for_one_sample_or_several(n, seed):
    """Each group of eight rows of M scaled by 1 to 1e9, 64 channels: the float32 group sums are
    of such different sizes that their float64 sums round, so another order of the groups or
    of the NODE_PRODUCT_CHUNKS chunks for one sample (read interleaved) than for several (one
    chunk after the other) shows in the last bits (a one-sample path adding every group into
    one sum differs in 20 to 65 of these 192 entries at 64 cells). 61 cells: several samples
    gathered into float32 first, and 5 rows past the last group."""
    rng = np.random.default_rng(seed)
    nodes = np.array([1, 2, 4], dtype=np.int64)
    rows = rng.normal(size=(9, 6, n))[1::3]
    R = len(nodes) * n
    M = (rng.normal(size=(R, 64)) * np.repeat(10.0 ** rng.integers(0, 10, size=-(-R // 8)), 8)[:R, None]).astype(np.float32)
    a32 = np.empty((3, R), np.float32)
    out = np.empty((3, 64))
    sources._node_product(rows, nodes, M, out, a32)
    for s in range(3):
        one = np.empty((1, 64))
        sources._node_product(rows[s:s + 1], nodes, M, one, a32)
        np.testing.assert_array_equal(one[0], out[s])


def test_matrices_on_one_cell_solver_are_stacked_and_each_part_is_its_matrix_times_the_currents():
    """Two probe matrices on one cell solver and period share one stack (one product per
    window); each part equals its matrix times the segment currents of the step ending at each
    sample, taken from a twin solver that keeps every step: float64 products of the float64
    matrices. The stack stores the matrices in float32 (sources.NODE_MATRIX_DTYPE), so each
    sample may differ by at most NODE_MATRIX_REL_ERROR (the entries' rounding, and the product's
    float32 sums of eight cells: six roundings of each term, ~4e-7) times sum_j |M_ij I_j|; a
    wrong row, column or step is
    off by orders of magnitude more."""
    from polyscale.solvers.cell.mechanisms import IClamp
    from polyscale.solvers.cell.population import ball_and_stick_population
    # 7 cells x 8 nodes: the product sums rows eight at a time in float32, some groups spanning two nodes
    spec = ball_and_stick_population(n=7, dend_nseg=7, record_currents=True,
                                     iclamps=(IClamp(section="soma", x=0.5, delay_ms=0.1, dur_ms=3.0, amp_nA=0.6),))
    solver, twin = spec.build(None), spec.build(None)
    dt = solver.dt_ticks
    rng = np.random.default_rng(0)
    n_seg = solver.n_cells * len(solver.layout.seg_node)
    M1, M2 = rng.normal(size=(4, n_seg)), rng.normal(size=(2, n_seg))
    p1 = sources.cell_matrix_part(solver, M1, 4 * dt)
    p2 = sources.cell_matrix_part(solver, M2, 4 * dt)
    assert len(sources._NODE_MATRICES[solver]) == 1
    got1, got2, want1, want2, abs1, abs2 = [], [], [], [], [], []
    prev = np.zeros(n_seg)          # currents of the step ending at the window start
    t = 0
    for steps in (6, 10, 3, 13):
        t1 = t + steps * dt
        solver.advance(t, t1, {})
        twin.advance(t, t1, {})
        got1.append(p1(t, t1, None))
        got2.append(p2(t, t1, None))
        cur = np.vstack([prev, twin.transmembrane_currents()])  # row j: step ending at t + j dt
        for tick in range(-(-t // (4 * dt)) * 4 * dt, t1, 4 * dt):
            row = cur[(tick - t) // dt]
            want1.append(M1 @ row)
            want2.append(M2 @ row)
            abs1.append(np.abs(M1) @ np.abs(row))
            abs2.append(np.abs(M2) @ np.abs(row))
        prev = cur[-1]
        t = t1
    got1, got2 = np.concatenate(got1), np.concatenate(got2)
    assert got1.shape == (len(want1), 4) and np.abs(got1).max() > 0
    bound = sources.NODE_MATRIX_REL_ERROR
    assert (np.abs(got1 - want1) <= bound * np.array(abs1)).all()
    assert (np.abs(got2 - want2) <= bound * np.array(abs2)).all()
    assert np.abs(got1 - want1).max() > 0       # the float32 storage is really in use



def test_cell_dipoles_match_the_moment_of_the_placed_segments_beside_a_stacked_matrix():
    """Each cell's dipole (summed in the cell's own frame, then turned) against the definition
    on the placed geometry: sum over segments of I times (segment midpoint - cell position),
    from segment_geometry and a twin solver that keeps every step, in float64. Only the
    summation order and the rotation's rounding differ (1e-12 of sum |I| |r|); a wrong cell,
    axis, rotation or step is off by far more. Two dipole probes on the solver give the same
    samples, and a matrix part on the same solver and period keeps its own product."""
    from polyscale.solvers.cell.mechanisms import IClamp
    from polyscale.solvers.cell.population import ball_and_stick_population
    pos = ((0.0, 0.0, 0.0), (40.0, -10.0, 5.0), (-30.0, 20.0, 100.0), (5.0, 5.0, -50.0), (0.0, 90.0, 0.0))
    rot = ((0.0, 0.0, 0.0), (30.0, 0.0, 0.0), (0.0, 90.0, 0.0), (10.0, -20.0, 45.0), (0.0, 0.0, 180.0))
    spec = ball_and_stick_population(n=5, dend_nseg=7, record_currents=True, positions_um=pos, rotations_deg=rot,
                                     iclamps=(IClamp(section="soma", x=0.5, delay_ms=0.1, dur_ms=3.0, amp_nA=0.6),))
    solver, twin = spec.build(None), spec.build(None)
    dt = solver.dt_ticks
    g = solver.segment_geometry()
    mid = 0.5 * (g["start_um"] + g["end_um"]) - np.array(pos)[g["cell"]]      # (n S, 3) um
    n_seg = len(g["cell"])
    p_pos, d1 = sources.cell_dipoles(solver, None, None, 4 * dt)
    M = np.random.default_rng(1).normal(size=(3, n_seg))
    lfp = sources.cell_matrix_part(solver, M, 4 * dt)
    _, d2 = sources.cell_dipoles(solver, None, None, 4 * dt)
    np.testing.assert_array_equal(p_pos, pos)
    got, want, scale, got_m, want_m = [], [], [], [], []
    prev = np.zeros(n_seg)
    t = 0
    for steps in (6, 10, 3, 13):
        t1 = t + steps * dt
        solver.advance(t, t1, {})
        twin.advance(t, t1, {})
        a, b = d1(t, t1, None), d2(t, t1, None)
        np.testing.assert_array_equal(a, b)
        got.append(a)
        got_m.append(lfp(t, t1, None))
        cur = np.vstack([prev, twin.transmembrane_currents()])
        for tick in range(-(-t // (4 * dt)) * 4 * dt, t1, 4 * dt):
            row = cur[(tick - t) // dt]
            want.append(np.stack([(row * mid[:, d]).reshape(5, -1).sum(1) for d in range(3)], axis=1))
            scale.append((np.abs(row) * np.linalg.norm(mid, axis=1)).reshape(5, -1).sum(1))
            want_m.append(M @ row)
        prev = cur[-1]
        t = t1
    got, want, scale = np.concatenate(got), np.array(want), np.array(scale)
    assert got.shape == (len(want), 5, 3) and np.abs(got).max() > 0
    assert (np.abs(got - want) <= 1e-12 * scale[:, :, None]).all()
    # the matrix's columns are untouched by the dipoles' after them
    np.testing.assert_allclose(np.concatenate(got_m), want_m, rtol=0,
                               atol=1e-6 * np.abs(np.array(want_m)).max())


def test_sample_rows_picks_the_multiples_of_the_period():
    assert sources.sample_rows(0, 1000, 100, 300) == slice(0, 12, 3)
    assert sources.sample_rows(1000, 2000, 100, 300) == slice(2, 11, 3)


def test_region_dipoles_default_to_connectome_centres_and_radial_orientations():
    conn = spherical_connectome(5, radius_mm=70.0)
    gain, pos, ori = RegionDipoles(gain_nA_um_per_mV=2e5, head_centre_um=(0.0, 0.0, 0.0)).arrays(5, conn.centre_array())
    np.testing.assert_allclose(pos, 1000.0 * conn.centre_array())
    np.testing.assert_allclose(ori, conn.centre_array() / np.linalg.norm(conn.centre_array(), axis=1, keepdims=True))
    np.testing.assert_array_equal(gain, np.full(5, 2e5))
    given = RegionDipoles(gain_nA_um_per_mV=(1.0, 2.0), positions_um=((0, 0, 1.0), (0, 2.0, 0)),
                          orientations=((0, 0, 3.0), (1.0, 1.0, 0)))
    g, p, o = given.arrays(2, None)
    np.testing.assert_allclose(o, [[0, 0, 1], [2 ** -0.5, 2 ** -0.5, 0]])


def test_region_dipoles_part_is_gain_times_activity_along_the_orientation():
    conn = spherical_connectome(3, radius_mm=70.0)
    solver = RegionNetwork(connectome=conn, dt_ms=0.1).build(None)
    model = RegionDipoles(gain_nA_um_per_mV=(1.0, 2.0, 3.0))
    pos, part = sources.dipole_part("brain", solver, {}, model, 200_000)
    act = np.arange(30.0).reshape(10, 3)
    res = WindowResult(outputs={"activity": Samples(0, 100_000, act)})
    p = part(0, 1_000_000, res)
    assert p.shape == (5, 3, 3)
    ori = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    np.testing.assert_allclose(p, (act[::2] * [1.0, 2.0, 3.0])[:, :, None] * ori[None], rtol=1e-15)


@pytest.mark.parametrize("kw, match", [
    pytest.param(dict(gain_nA_um_per_mV=float("nan")), r"'gain_nA_um_per_mV' must be a finite number", id="gain"),
    pytest.param(dict(positions_um=((0, 0),)), r"'positions_um' must be rows of 3", id="positions"),
    pytest.param(dict(orientations=((0, 0, 0),)), r"'orientations' must be nonzero", id="orientation"),
    pytest.param(dict(head_centre_um=(0, 0)), r"'head_centre_um' must be 3 finite numbers", id="centre"),
])
def test_bad_region_dipoles_are_named(kw, match):
    with pytest.raises(ModelError, match=match):
        RegionDipoles(**kw)


def test_region_dipoles_need_positions_from_somewhere_and_one_per_region():
    with pytest.raises(ModelError, match=r"'positions_um' is None and the connectome has no region centres"):
        RegionDipoles().arrays(2, None)
    with pytest.raises(ModelError, match=r"'gain_nA_um_per_mV' has 3 values for 2 regions"):
        RegionDipoles(gain_nA_um_per_mV=(1.0, 2.0, 3.0), positions_um=((0, 0, 1.0), (0, 0, 2.0))).arrays(2, None)
    no_centres = Connectome.example()
    with pytest.raises(ModelError, match="no region centres"):
        sources.dipole_part("b", RegionNetwork(connectome=no_centres.replace(centres_mm=None)).build(None),
                            {}, None, 100_000)


def test_source_models_round_trip_through_their_family():
    m = RegionDipoles.example()
    assert SourceModel.from_dict(m.to_dict()) == m
    with pytest.raises(ModelError, match=r"source model: 'type' must be one of .*'region_dipoles'"):
        SourceModel.from_dict({"type": "nope"})
