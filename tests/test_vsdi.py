"""VSDI probe: pixels of area- and depth-weighted depolarisation, from cells, point neurons and masses."""
import math

import numpy as np
import pytest

import polyscale as ps
from polyscale.solvers.cell.mechanisms import IClamp
from polyscale.solvers.cell.population import ball_and_stick_population
from polyscale.solvers.mass.connectome import Connectome
from polyscale.solvers.point.models import IafPscDelta
from polyscale.solvers.point.network import Population

VsdiSource = ps.probes.VsdiSource


def _gauss_share(lo, hi, c, sigma):
    """Share of a 1-D Gaussian N(c, sigma) in [lo, hi), from math.erf."""
    return 0.5 * (math.erf((hi - c) / (sigma * math.sqrt(2))) - math.erf((lo - c) / (sigma * math.sqrt(2))))


def _cell_run(nseg: int):
    """A ball-and-stick lying in the imaged plane 150 um deep (dendrite along +x), driven at the
    soma; 4 x 2 pixels of 200 um over it."""
    m = ps.Model(t_stop_ms=20.0, window_ms=0.5)
    m.solver("cells", ball_and_stick_population(
        n=1, dend_nseg=nseg, positions_um=((-250.0, 0.0, -150.0),), rotations_deg=((0.0, 90.0, 0.0),),
        iclamps=(IClamp(section="soma", x=0.5, delay_ms=2.0, dur_ms=10.0, amp_nA=0.5),)))
    m.probe("vsdi", ps.probes.VSDI(sources={"cells": VsdiSource(v_rest_mV=-65.0)}, pixels=(4, 2),
                                   pixel_um=200.0, blur_um=60.0, depth_decay_um=200.0))
    return ps.run(m).probe("vsdi")


def test_cell_image_does_not_depend_on_the_subdivision():
    """The same cell at dend nseg 11 and 101: the image integrates V over the membrane, so it
    changes only by the cable solver's discretisation error (and the midpoint rule's), which at
    nseg 11 over 500 um (45 um segments, lambda ~ 700 um) is well under 2 % of the peak."""
    a, b = _cell_run(11), _cell_run(101)
    assert a.data.shape == b.data.shape == (40, 8)
    scale = np.abs(b.data).max()
    assert scale > 0.1   # the spike is in the image
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=0.02 * scale)
    # and the total over the image to the same bound
    np.testing.assert_allclose(a.data.sum(axis=1), b.data.sum(axis=1), rtol=0, atol=0.02 * np.abs(b.data.sum(axis=1)).max())


def test_cell_at_rest_images_zero_and_frames_start_at_zero():
    m = ps.Model(t_stop_ms=2.0, window_ms=0.5)
    m.solver("cells", ball_and_stick_population(n=2, dend_nseg=5, positions_um=((0, 0, -100), (100, 0, -100))))
    m.probe("vsdi", ps.probes.VSDI(sources=["cells"], pixels=(3, 3), every_ms=1.0))
    rec = ps.run(m).probe("vsdi")
    np.testing.assert_allclose(rec.time, [0.0, 1.0])
    # v_init -65 = v_rest: the hh soma drifts by < 1e-3 mV in 2 ms; a frame sees no signal at t=0
    assert (rec.data[0] == 0).all()
    assert np.abs(rec.data).max() < 1e-2


def _region_model(blur_um, positions, areas, t_stop_ms=5.0, **kw):
    m = ps.Model(t_stop_ms=t_stop_ms, window_ms=1.0)
    n = len(positions)
    conn = Connectome(weights=np.zeros((n, n)).tolist(), tract_lengths_mm=np.zeros((n, n)).tolist())
    x0 = np.zeros((6, n))
    x0[1] = np.linspace(3.0, 8.0, n)          # y1 - y2 = activity, mV
    m.solver("brain", ps.solvers.RegionNetwork(connectome=conn, initial_state=x0.tolist(), dt_ms=0.1))
    m.record("brain.activity")
    m.probe("vsdi", ps.probes.VSDI(sources={"brain": VsdiSource(positions_um=positions, area_um2=areas)},
                                   blur_um=blur_um, **kw))
    return ps.run(m)


@pytest.mark.parametrize("blur_um", [0.0, 30.0, 120.0])
def test_blur_conserves_the_total_signal(blur_um):
    """Regions well inside a 60 x 60 grid of 25 um pixels (1.5 mm): sum_p S_p pixel_area equals
    sum_e A_e exp(-d_e / lambda) dV_e for any blur (every source is > 4.5 sigma from the grid's
    edges, so the Gaussian's tails outside it are below 1e-5)."""
    pos = [(-100.0, 40.0, -50.0), (120.0, -200.0, -300.0), (0.0, 0.0, 0.0)]
    areas = [1.0e4, 3.0e4, 2.0e4]
    run = _region_model(blur_um, pos, areas, pixels=(60, 60), pixel_um=25.0, depth_decay_um=150.0)
    rec, act = run.probe("vsdi"), run.signal("brain", "activity")
    att = np.exp(-np.array([50.0, 300.0, 0.0]) / 150.0)
    want = (act.data[::10] * (np.array(areas) * att)).sum(axis=1)   # frames every 1 ms, steps 0.1 ms
    np.testing.assert_allclose(rec.data.sum(axis=1) * 25.0 ** 2, want, rtol=1e-5)


def test_one_source_closed_form_per_pixel():
    """One region at (30, -70, -120) um, area 5e4 um2, blur 40 um, lambda 200 um: pixel (ix, iy)
    = A exp(-120/200) Gx Gy dV / 50^2 with Gx, Gy the Gaussian's shares of the pixel's edges."""
    run = _region_model(40.0, [(30.0, -70.0, -120.0)], 5.0e4, pixels=(4, 3), pixel_um=50.0,
                        depth_decay_um=200.0, center_um=(10.0, 0.0))
    rec, act = run.probe("vsdi"), run.signal("brain", "activity")
    xe = 10.0 + (np.arange(5) - 2.0) * 50.0     # pixel edges
    ye = (np.arange(4) - 1.5) * 50.0
    g = np.array([[_gauss_share(ye[iy], ye[iy + 1], -70.0, 40.0) * _gauss_share(xe[ix], xe[ix + 1], 30.0, 40.0)
                   for ix in range(4)] for iy in range(3)]).ravel()
    want = act.data[::10, :1] * (5.0e4 * math.exp(-120.0 / 200.0) / 50.0 ** 2) * g[None, :]
    np.testing.assert_allclose(rec.data, want, rtol=1e-12, atol=1e-15)
    # channel iy * nx + ix sits at the pixel centre
    assert rec.positions_um[6].tolist() == [10.0 + 0.5 * 50.0, 0.0, 0.0]   # channel 6: ix 2, iy 1


def test_point_population_mean_potential_closed_form():
    """An unconnected LIF population started at E_L + 12 mV relaxes as 12 exp(-t / tau_m) (NEST's
    exact iaf_psc_delta propagator); with blur 0 its whole membrane (size x area) shows in the
    pixel that holds the population."""
    m = ps.Model(t_stop_ms=10.0, window_ms=1.0)
    model = IafPscDelta(tau_m_ms=10.0, e_l_mV=-70.0)
    m.solver("net", ps.solvers.PointNetwork(populations=(Population(name="E", size=20, model=model, v_init_mV=-58.0),
                                                        Population(name="I", size=5, model=model)), dt_ms=0.1))
    m.probe("vsdi", ps.probes.VSDI(sources={"net": VsdiSource(positions_um=((60.0, -10.0, 0.0), (0.0, 0.0, -1e5)),
                                                              area_um2=(1.0e4, 1.0e4))},
                                   pixels=(2, 2), pixel_um=100.0, blur_um=0.0, depth_decay_um=None))
    rec = ps.run(m).probe("vsdi")
    t = rec.time
    want = 20 * 1.0e4 * 12.0 * np.exp(-t / 10.0) / 100.0 ** 2
    # (60, -10) lies in pixel ix = 1, iy = 0 -> channel 1; I (at rest, dV = 0) lies in pixel 3
    np.testing.assert_allclose(rec.data[:, 1], want, rtol=1e-12)
    assert (rec.data[:, [0, 2, 3]] == 0).all()


def test_solvers_sum(transport):
    """A point network and a neural mass imaged together give the sum of their images alone, on
    every transport, and keep each one's share on request."""
    def model(which):
        m = ps.Model(t_stop_ms=6.0, window_ms=1.0)
        sources = {}
        if "net" in which:
            m.solver("net", ps.solvers.PointNetwork(populations=(Population(name="E", size=4, v_init_mV=-60.0),), dt_ms=0.1))
            sources["net"] = VsdiSource(positions_um=((0.0, 0.0, -50.0),))
        if "brain" in which:
            m.solver("brain", ps.solvers.RegionNetwork(initial_state=(0.0, 5.0, 1.0, 0.0, 0.0, 0.0), dt_ms=0.1))
            sources["brain"] = VsdiSource(positions_um=((40.0, 10.0, -20.0),), area_um2=1e4)
        m.probe("vsdi", ps.probes.VSDI(sources=sources, pixels=(3, 3), blur_um=30.0, keep_parts=True))
        return ps.run(m, transport=transport).probe("vsdi")
    both, a, b = model(("net", "brain")), model(("net",)), model(("brain",))
    np.testing.assert_allclose(both.data, a.data + b.data, rtol=1e-12, atol=1e-12)
    assert np.abs(a.data).max() > 0 and np.abs(b.data).max() > 0
    # keep_parts: each solver's share, as imaged alone
    np.testing.assert_array_equal(both.parts["net"], a.data)
    np.testing.assert_array_equal(both.parts["brain"], b.data)


def test_cell_frames_faster_than_the_window_are_v_at_the_frame_times():
    """Frames every 0.1 ms in windows of 0.5 ms: each is the image of V at that tick, as read
    from a live solver advanced to exactly that tick (independent of the probe's sampling)
    and imaged by the separable form Gy (w dV Gx)^T of VSDI.weights."""
    spec = ball_and_stick_population(n=2, dend_nseg=5, positions_um=((0, 0, -100), (150, 0, -100)),
                                     iclamps=(IClamp(section="soma", x=0.5, delay_ms=0.2, dur_ms=5.0, amp_nA=0.8),))
    probe = ps.probes.VSDI(sources=["cells"], pixels=(3, 2), pixel_um=100.0, blur_um=40.0, every_ms=0.1)
    m = ps.Model(t_stop_ms=3.0, window_ms=0.5)
    m.solver("cells", spec)
    m.probe("vsdi", probe)
    rec = ps.run(m).probe("vsdi")
    np.testing.assert_allclose(rec.time, np.arange(30) * 0.1, atol=1e-12)
    live = spec.build(None)
    g = live.segment_geometry()
    gx, gy, w = probe.weights(0.5 * (g["start_um"] + g["end_um"]), g["area_um2"])
    step = live.dt_ticks
    want = []
    for k in range(30):
        dv = live.voltages()[live.layout.seg_node].T.ravel() + 65.0
        want.append((gy @ (w * dv * gx).T).ravel())
        live.advance(k * 4 * step, (k + 1) * 4 * step, {})
    want = np.array(want)
    assert np.abs(want).max() > 1.0          # the spike is in the frames
    np.testing.assert_allclose(rec.data, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


def test_point_frames_faster_than_the_window_need_record_v():
    """With record_v on every population, frames every 0.3 ms in 1 ms windows follow the
    closed-form relaxation 12 exp(-t / tau_m) of an unconnected LIF population; without it the
    network is read at window ends and such frames are refused, naming the fix."""
    def model(record_v):
        m = ps.Model(t_stop_ms=6.0, window_ms=1.0)
        lif = IafPscDelta(tau_m_ms=10.0, e_l_mV=-70.0)
        m.solver("net", ps.solvers.PointNetwork(populations=(
            Population(name="E", size=20, model=lif, v_init_mV=-58.0, record_v=record_v),), dt_ms=0.1))
        m.probe("vsdi", ps.probes.VSDI(sources={"net": VsdiSource(positions_um=((60.0, -10.0, 0.0),), area_um2=1.0e4)},
                                       pixels=(2, 2), pixel_um=100.0, blur_um=0.0, depth_decay_um=None, every_ms=0.3))
        return m
    rec = ps.run(model(True)).probe("vsdi")
    np.testing.assert_allclose(rec.time, np.arange(20) * 0.3, atol=1e-12)
    want = 20 * 1.0e4 * 12.0 * np.exp(-rec.time / 10.0) / 100.0 ** 2
    np.testing.assert_allclose(rec.data[:, 1], want, rtol=1e-12)
    with pytest.raises(ps.ModelError, match=r"every_ms=0\.3 is not a multiple of the window \(1 ms\): "
                                            r"the membrane potentials of solver 'net' are read at window "
                                            r"ends \(set the model's window_ms, or give every population record_v=True\)"):
        model(False).check()


def test_frames_off_the_cell_step_grid_are_rejected():
    m = ps.Model(t_stop_ms=2.0, window_ms=0.5)
    m.solver("cells", ball_and_stick_population(n=1, dend_nseg=3))
    m.probe("vsdi", ps.probes.VSDI(sources=["cells"], every_ms=0.01))
    with pytest.raises(ps.ModelError, match=r"every_ms=0\.01 is not a multiple of the step of solver 'cells' \(0\.025 ms\)"):
        m.check()


def test_a_solver_without_membrane_potential_is_rejected():
    m = ps.Model(t_stop_ms=2.0, window_ms=0.5)
    m.solver("st", ps.solvers.SpikeTrain(times_ms=[], dt_ms=0.1))
    m.probe("vsdi", ps.probes.VSDI(sources=["st"]))
    # raised when the probe attaches to the live solver, before the first window
    with pytest.raises(ps.ModelError, match=r"vsdi: solver 'st' \(\w+\) has no membrane potential to image; "
                                            r"imaged solver types: cell_population, point_network, region_network"):
        ps.run(m)


@pytest.mark.parametrize("kw, match", [
    pytest.param({"pixels": (0, 4)}, r"'pixels' must be two integers >= 1, \(nx, ny\) \(got \(0, 4\)\)", id="pixels"),
    pytest.param({"blur_um": -1.0}, r"'blur_um' must be a finite number >= 0 \(got -1\.0\)", id="blur"),
    pytest.param({"sources": {}}, r"'sources' must be a non-empty dict", id="no-sources"),
    pytest.param({"depth_decay_um": 0.0}, r"'depth_decay_um' must be a finite number > 0 \(got 0\.0\)", id="decay"),
])
def test_bad_parameters_are_rejected(kw, match):
    with pytest.raises(ps.ModelError, match=match):
        ps.probes.VSDI(**({"sources": ["a"]} | kw))


def test_regions_default_to_the_connectome_centres():
    """Two regions with centres (0.1, 0, 0) and (-0.1, 0, 0) mm, no positions given: blur 0
    puts each wholly in the pixel over its centre (x = +100 and -100 um)."""
    m = ps.Model(t_stop_ms=2.0, window_ms=1.0)
    conn = Connectome(weights=[[0.0, 0.0], [0.0, 0.0]], centres_mm=[[0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]])
    m.solver("brain", ps.solvers.RegionNetwork(connectome=conn, initial_state=(0.0, 4.0, 1.0, 0.0, 0.0, 0.0), dt_ms=0.1))
    m.probe("vsdi", ps.probes.VSDI(sources={"brain": VsdiSource(area_um2=(1e4, 3e4))}, pixels=(4, 1),
                                   pixel_um=100.0, blur_um=0.0, depth_decay_um=None))
    rec = ps.run(m).probe("vsdi")
    # pixel edges -200, -100, 0, 100, 200: -100 falls in pixel 1, +100 in pixel 3 (left-closed)
    frame0 = rec.data[0]
    np.testing.assert_allclose(frame0, [0.0, 3e4 * 3.0 / 1e4, 0.0, 1e4 * 3.0 / 1e4], rtol=1e-12)


def test_region_without_positions_or_centres_is_rejected():
    m = ps.Model(t_stop_ms=2.0, window_ms=1.0)
    m.solver("brain", ps.solvers.RegionNetwork(dt_ms=0.1))
    m.probe("vsdi", ps.probes.VSDI(sources=["brain"]))
    with pytest.raises(ps.ModelError, match=r"vsdi: give 'positions_um', one row per region \(1 in all\)"):
        ps.run(m)


def test_elements_at_one_lateral_position_are_imaged_once_with_the_same_image():
    """Upright cells: every segment of a cell has the cell's (x, y), so its shares are the
    cell's. The imager sums their weighted dV and images each position once; the image equals
    imaging every element on its own (the dense product Gy diag(w dV) Gx^T) to rounding."""
    from polyscale.probes.vsdi import _Imager
    rng = np.random.default_rng(2)
    spec = ps.probes.VSDI(sources={"cells": None}, pixels=(6, 5), pixel_um=40.0, blur_um=50.0, depth_decay_um=300.0)
    cells = rng.uniform(-100.0, 100.0, size=(4, 2))
    pos = np.array([(x, y, -z) for x, y in cells for z in np.linspace(10.0, 900.0, 11)])
    gx, gy, w = spec.weights(pos, rng.uniform(100.0, 400.0, len(pos)))
    image = _Imager(gx, gy, w)
    assert image.gx.shape[0] == 4                     # 44 elements at 4 positions
    dv = rng.normal(size=len(pos))
    want = (gy @ ((w * dv)[:, None] * gx.T)).ravel()
    np.testing.assert_allclose(image(dv), want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    spread = _Imager(*spec.weights(pos + rng.normal(size=pos.shape), np.ones(len(pos))))
    assert spread.group is None and spread.gx.shape[0] == len(pos)
