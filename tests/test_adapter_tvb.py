"""TVBSimulator: The Virtual Brain's own simulator stepped window by window under polyscale.

References: ../shared/reference/mass (TVB 2.10's runs, through the ``reference`` fixture) and
polyscale's RegionNetwork, whose agreement with TVB is tested in tests/test_mass_network.py.
TVB takes ~3 s to import and ~3 s per simulated second of the 76-region network: one
module-level fixture imports it, and the runs are short. Tests that need TVB skip with a
reason where it is not installed.
"""
import importlib.util
import sys

import numpy as np
import pytest

import polyscale as ps
from polyscale.adapters import tvb as tvb_tables
from polyscale.adapters.tvb import TVBSimulator
from polyscale.coordinator.signals import Samples
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.mass import Connectome, JansenRit, RegionNetwork, SigmoidalJansenRit

DT_TICKS = 100_000    # 0.1 ms
JR_ACTIVITY = (("y1", 1.0), ("y2", -1.0))


@pytest.fixture(scope="module")
def tvb():
    pytest.importorskip("tvb.simulator.simulator", reason="TVB is not installed: pip install 'polyscale[tvb]'")


@pytest.fixture(scope="module")
def example(examples_dir):
    spec = importlib.util.spec_from_file_location("tvb_spiking_region_example", examples_dir / "tvb_spiking_region.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def connectome76(reference):
    d = reference / "mass"
    return Connectome(weights=np.load(d / "conn76_weights.npy"),
                      tract_lengths_mm=np.load(d / "conn76_tract_lengths_mm.npy"), speed_mm_per_ms=3.0)


# ---------------------------------------------------------------- the spec, without TVB

def test_spec_checks_name_the_field_and_what_is_allowed():
    with pytest.raises(ps.ModelError, match=r"without a 'builder', 'connectome' must be a Connectome"):
        TVBSimulator()
    with pytest.raises(ps.ModelError, match=r"with a 'builder', 'n_regions' must say how many"):
        TVBSimulator(builder="brain:make")
    with pytest.raises(ps.ModelError, match=r"'builder': must be 'package.module:function'"):
        TVBSimulator(builder="brain.make", n_regions=2)
    with pytest.raises(ps.ModelError, match=r"'proxy_regions' must hold region indices in \[0, 2\) \(got 5\)"):
        TVBSimulator(builder="m:f", n_regions=2, proxy_regions=(5,), proxy_variables=("y1",))
    with pytest.raises(ps.ModelError, match=r"'proxy_regions' and 'proxy_variables' go together"):
        TVBSimulator(builder="m:f", n_regions=2, proxy_regions=(1,))
    with pytest.raises(ps.ModelError, match=r"'rates' must hold pairs \(state variable, coefficient\)"):
        TVBSimulator(builder="m:f", n_regions=2, rates=("y1",))
    with pytest.raises(ps.ModelError, match=r"'period_ms' \(0.25\) must be a multiple of dt_ms \(0.1\)"):
        TVBSimulator(builder="m:f", n_regions=2, period_ms=0.25)


def test_ports_say_sizes_units_and_layout():
    p = TVBSimulator(builder="m:f", n_regions=4, rates=(("r", 1000.0),), rates_units="Hz",
                     variables=("r", "V"), period_ms=1.0, proxy_regions=(0, 3), proxy_variables=("r",)).ports()
    assert (p["rates"].kind, p["rates"].size, p["rates"].units, p["rates"].period_ticks) == ("rate", 4, "Hz", 10 * DT_TICKS)
    assert (p["state"].size, p["proxy_in"].size, p["proxy_in"].period_ticks) == (8, 2, DT_TICKS)
    assert TVBSimulator(builder="m:f", n_regions=2, rates_units="mV").ports()["rates"].kind == "analog"


def test_missing_tvb_names_the_extra(monkeypatch):
    # import fails as if not installed, also where other tests already imported tvb's modules
    for name in [m for m in sys.modules if m == "tvb" or m.startswith("tvb.")] + ["tvb"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ps.ModelError, match=r"pip install 'polyscale\[tvb\]'"):
        TVBSimulator.example().build(None)


def test_the_module_imports_without_tvb():
    """ps.adapters.tvb and its spec work where TVB is not installed (a fresh interpreter that
    cannot import it); the error comes when the solver is built."""
    import subprocess
    code = ("import sys; sys.modules['tvb'] = None\n"
            "import polyscale as ps\n"
            "spec = ps.adapters.tvb.TVBSimulator.example()\n"
            "assert spec.ports()['rates'].size == 2\n"
            "try:\n    spec.build(None)\nexcept ps.ModelError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'polyscale[tvb]'" in out.stdout


# ---------------------------------------------------------------- against TVB's reference runs

def test_single_node_from_a_builder_is_tvbs_trajectory(tvb, reference, tmp_path):
    """TVB's JansenRit with defaults, HeunDeterministic 0.1 ms, from zeros, built by a user's
    function: the same calls as TVB's own loop, so its reference trajectory (jr_det_y, TVB's Raw
    monitor: row k is the state after step k + 1) to 1e-12 of each variable's range, in 5 ms
    windows over 200 ms."""
    (tmp_path / "one_node.py").write_text(
        "import numpy as np\n"
        "from tvb.simulator import coupling, integrators, models, simulator\n"
        "from tvb.datatypes import connectivity\n"
        "def make():\n"
        "    c = connectivity.Connectivity(weights=np.zeros((1, 1)), tract_lengths=np.zeros((1, 1)),\n"
        "        centres=np.zeros((1, 3)), region_labels=np.array(['jr0']), speed=np.array([3.0]))\n"
        "    return simulator.Simulator(model=models.JansenRit(), connectivity=c,\n"
        "        coupling=coupling.Linear(a=np.array([0.0])), integrator=integrators.HeunDeterministic(dt=0.1),\n"
        "        initial_conditions=np.zeros((1, 6, 1, 1)), conduction_speed=3.0)\n")
    spec = TVBSimulator(builder=f"{tmp_path / 'one_node.py'}:make", n_regions=1,
                        variables=("y0", "y1", "y2", "y3", "y4", "y5"))
    s = spec.build(None)
    y = np.concatenate([s.advance(w * 50 * DT_TICKS, (w + 1) * 50 * DT_TICKS, {}).outputs["state"].data
                        for w in range(40)])
    ref = np.load(reference / "mass" / "jr_det_y.npy")
    err = np.abs(y[1:] - ref[:1999]).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 1e-12, err


@pytest.fixture(scope="module")
def whole_brain_runs(tvb, reference):
    """The 76-region Jansen-Rit network of wb_jr (TVB's SigmoidalJansenRit, delays at 3 mm/ms,
    history constant at the initial state), 1 s, once with TVBSimulator and once with
    RegionNetwork (float32 history, as TVB), in the same model through ps.run."""
    x0 = np.load(reference / "mass" / "wb_jr_initial_state.npy")
    conn = connectome76(reference).replace(centres_mm=np.load(reference / "mass" / "conn76_centres_mm.npy"))
    builtin = RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(),
                            integrator="heun", dt_ms=0.1, initial_state=x0, history_precision="float32")
    m = ps.Model(t_stop_ms=1000.0)
    # the swap: the same spec, translated to TVB's classes (adapters/tvb.py's tables)
    m.solver("brain", TVBSimulator.from_region_network(builtin))
    m.record("brain.rates")
    # region dipoles (radial from the origin, gain 1 nA*um per mV) from either solver's activity
    m.probe("cdm", ps.probes.CurrentDipole(of="brain", every_ms=1.0))
    a = ps.run(m)
    m.solvers["brain"] = builtin
    m.recordings.clear()
    m.record("brain.activity")
    b = ps.run(m)
    return (a.signal("brain", "rates").data, b.signal("brain", "activity").data,
            a.probe("cdm").data, b.probe("cdm").data)


def test_whole_brain_matches_tvbs_reference(whole_brain_runs, reference):
    """y1 - y2 averaged over 1 ms, as TVB's TemporalAverage (the alignment of
    tests/test_mass_network.py: its output k averages our samples 10k - 1 .. 10k + 8; TVB's
    stamps start at 51.5 ms because of its 51.2 ms of history): the first 990 averages of
    wb_jr_tavg within 1e-9 of each region's range (the same program: TVB's own arithmetic)."""
    a = whole_brain_runs[0]
    k0 = a[1:9].sum(axis=0) / 10.0
    rest = a[9:9 + 10 * 99 * 10].reshape(-1, 10, 76).mean(axis=1)
    ours = np.vstack([k0[None], rest])
    ref = np.load(reference / "mass" / "wb_jr_tavg_y1_minus_y2.npy")[:ours.shape[0]]
    err = np.abs(ours - ref).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 1e-9, err.max()


def test_swapping_region_network_for_tvb_gives_the_same_traces(whole_brain_runs):
    """RegionNetwork with TVB's float32 history matches TVB to ~1e-12 over 10 s (issue 7,
    tests/test_mass_network.py); over this 1 s every sample of every region within 1e-9 mV."""
    ours, builtin, cdm_ours, cdm_builtin = whole_brain_runs
    assert ours.shape == builtin.shape == (10000, 76)
    assert np.abs(ours - builtin).max() <= 1e-9
    # and what the head probes see: the region dipoles registered for tvb_simulator are
    # region_network's (probes/sources.py), sum_i activity_i * unit radial direction_i
    assert cdm_ours.shape == cdm_builtin.shape == (1000, 3)
    assert np.abs(cdm_ours - cdm_builtin).max() <= 1e-9 * np.abs(cdm_builtin).max()


# ---------------------------------------------------------------- the translation tables

@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4"])
@pytest.mark.parametrize("model", sorted(tvb_tables.MODELS))
def test_every_model_and_integrator_translates_to_tvbs_own(tvb, model, integrator):
    """Each entry of MODELS, COUPLINGS and the deterministic INTEGRATORS: a two-region network
    with delays, 50 ms, run by RegionNetwork (TVB's float32 history) and by TVB through
    TVBSimulator.from_region_network: the same activity to 1e-9 of its range (the same
    equations; ~1e-11 is float32 history rounding in different places). Also proves that
    polyscale's parameter names are TVB's and need no unit factor."""
    from polyscale.solvers.mass.coupling import CouplingFunction, Linear
    from polyscale.solvers.mass.models import NodeModel
    conn = Connectome(weights=[[0.0, 0.8], [0.5, 0.0]], tract_lengths_mm=[[0.0, 3.0], [4.5, 0.0]])
    m = NodeModel._kinds[model]()
    cpl = CouplingFunction._kinds["sigmoidal_jansen_rit"]() if model == "jansen_rit" else Linear(a=0.1)
    rn = RegionNetwork(model=m, connectome=conn, coupling=cpl, integrator=integrator, dt_ms=0.1,
                       initial_state=np.linspace(0.1, 0.5, m.n_sv), history_precision="float32")
    ours = TVBSimulator.from_region_network(rn)
    assert ours.model == tvb_tables.MODELS[model][0] and ours.integrator == tvb_tables.INTEGRATORS[integrator]
    a = rn.build(None).advance(0, 500 * DT_TICKS, {}).outputs["activity"].data
    b = ours.build(None).advance(0, 500 * DT_TICKS, {}).outputs["rates"].data
    assert np.abs(a - b).max() <= 1e-9 * np.abs(a).max()


def test_stochastic_integrators_and_unit_tables(tvb):
    """The stochastic entries name TVB's stochastic classes (their noise streams differ, so no
    trajectory comparison); every row of the unit tables goes to TVB's name and back."""
    from tvb.simulator import integrators
    from polyscale.solvers.mass.network import STOCHASTIC
    for ours, theirs in tvb_tables.INTEGRATORS.items():
        assert issubclass(getattr(integrators, theirs), integrators.IntegratorStochastic) == (ours in STOCHASTIC)
    for table in (tvb_tables.CONNECTIVITY, tvb_tables.TIME):
        for row in table:
            there = table.to_external({row.ours: 2.5})
            assert there == {row.theirs: 2.5 * row.factor}
            assert table.from_external(there) == {row.ours: 2.5}
    with pytest.raises(ps.ModelError, match=r"'replaced' regions are not translated"):
        TVBSimulator.from_region_network(RegionNetwork.example())


# ---------------------------------------------------------------- proxies, noise, transports

def test_a_proxy_region_is_region_networks_replaced_region(tvb, reference):
    """Region 5 of the 76-region network replaced by a 10 Hz sine (mV) for 300 ms: TVB with
    y1 := sine, y2 := 0 on the proxy (so its y1 - y2 is the sine), and RegionNetwork with the
    sine on its 'replaced' port, give the same activity in every other region to 1e-9 mV."""
    x0 = np.load(reference / "mass" / "wb_jr_initial_state.npy")
    conn = connectome76(reference)
    steps = 3000
    t = np.arange(steps) * 0.1
    sine = 6.0 + 3.0 * np.sin(2 * np.pi * 10.0 * t / 1000.0)
    tvb_spec = TVBSimulator(connectome=conn, coupling="SigmoidalJansenRit", rates=JR_ACTIVITY,
                            initial_state=x0, proxy_regions=(5,), proxy_variables=("y1", "y2"))
    ours = tvb_spec.build(None).advance(0, steps * DT_TICKS, {"proxy_in": Samples(
        0, DT_TICKS, np.column_stack([sine, np.zeros(steps)]))}).outputs["rates"].data
    rn = RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(), integrator="heun",
                       dt_ms=0.1, initial_state=x0, history_precision="float32", replaced=(5,))
    builtin = rn.build(None).advance(0, steps * DT_TICKS, {"replaced": Samples(0, DT_TICKS, sine[:, None])})
    builtin = builtin.outputs["activity"].data
    np.testing.assert_allclose(ours[:, 5], sine, atol=1e-12)
    others = np.arange(76) != 5
    assert np.abs(ours[:, others] - builtin[:, others]).max() <= 1e-9
    # and the proxy matters: without it region 5's neighbours move differently
    free = TVBSimulator(connectome=conn, coupling="SigmoidalJansenRit", rates=JR_ACTIVITY, initial_state=x0)
    alone = free.build(None).advance(0, steps * DT_TICKS, {}).outputs["rates"].data
    assert np.abs(alone[:, others] - ours[:, others]).max() > 1e-3


def test_noise_comes_from_the_run_seed_and_any_window_split_draws_the_same(tvb):
    """HeunStochastic on TVB's Generic2dOscillator: the stream is reseeded from the solver's
    generator, so the same seed gives the same run in one window or in ten, another seed
    another run."""
    conn = Connectome(weights=[[0.0, 1.0], [1.0, 0.0]], tract_lengths_mm=[[0.0, 3.0], [3.0, 0.0]])
    spec = TVBSimulator(connectome=conn, model="Generic2dOscillator", integrator="HeunStochastic",
                        noise=(1e-3, 1e-3), initial_state=(0.0, 0.0))

    def run(seed, windows):
        ctx = ps.coordinator.specs.SolverContext("brain", seed, np.random.default_rng(seed))
        s = spec.build(ctx)
        w = 200 // windows
        return np.concatenate([s.advance(k * w * DT_TICKS, (k + 1) * w * DT_TICKS, {}).outputs["rates"].data
                               for k in range(windows)])

    a, b, c = run(1, 1), run(1, 10), run(2, 1)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_a_history_left_to_tvb_is_drawn_from_the_run_seed(tvb, example):
    """The example's brain builder gives no initial conditions: TVB would draw the history from
    numpy's global generator; here it comes from the solver's, in the model's
    state_variable_range (MPR: r in [0, 2], V in [-2, 1.5]) - the same seed, the same run."""
    spec = TVBSimulator(builder=f"{example.__file__}:tvb_brain", params={"n_regions": 10}, n_regions=10,
                        variables=("r", "V"))

    def first(seed):
        ctx = ps.coordinator.specs.SolverContext("brain", seed, np.random.default_rng(seed))
        return spec.build(ctx).advance(0, 20 * DT_TICKS, {}).outputs["state"].data

    a, b, c = first(3), first(3), first(4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    assert (0.0 <= a[0, :10]).all() and (a[0, :10] <= 2.0).all()
    assert (-2.0 <= a[0, 10:]).all() and (a[0, 10:] <= 1.5).all()


def test_a_period_samples_or_averages_the_steps(tvb):
    """period_ms = 1 ms: average=False gives every 10th step's value, average=True the mean of
    the 10 steps from each sample time on (t .. t + 0.9 ms), both on a 1 ms grid."""
    base = TVBSimulator(connectome=Connectome.example(), coupling="SigmoidalJansenRit", rates=JR_ACTIVITY,
                        initial_state=(0.0, 5.0, 10.0, 0.0, 0.0, 0.0), variables=("y0",))
    every = base.build(None).advance(0, 200 * DT_TICKS, {}).outputs
    for average in (False, True):
        out = base.replace(period_ms=1.0, average=average).build(None).advance(0, 200 * DT_TICKS, {}).outputs
        for port in ("rates", "state"):
            assert out[port].period == 10 * DT_TICKS and out[port].data.shape == (20, every[port].data.shape[1])
            blocks = every[port].data.reshape(20, 10, -1)
            want = blocks.mean(axis=1) if average else blocks[:, 0]
            np.testing.assert_allclose(out[port].data, want, rtol=1e-13, atol=1e-13)


def test_builder_errors_are_clear(tvb, tmp_path):
    (tmp_path / "b.py").write_text("def make(n=2):\n    return 'not a simulator'\n")
    with pytest.raises(ps.ModelError, match=r"returned str, not a tvb Simulator"):
        TVBSimulator(builder=f"{tmp_path / 'b.py'}:make", n_regions=2).build(None)
    (tmp_path / "dt.py").write_text(
        "import numpy as np\n"
        "from tvb.simulator import coupling, integrators, models, simulator\n"
        "from tvb.datatypes import connectivity\n"
        "def make():\n"
        "    c = connectivity.Connectivity(weights=np.zeros((1, 1)), tract_lengths=np.zeros((1, 1)),\n"
        "        centres=np.zeros((1, 3)), region_labels=np.array(['a']), speed=np.array([3.0]))\n"
        "    return simulator.Simulator(model=models.JansenRit(), connectivity=c, coupling=coupling.Linear(),\n"
        "        integrator=integrators.HeunDeterministic(dt=0.05))\n")
    with pytest.raises(ps.ModelError, match=r"integrator.dt is 0.05 ms but dt_ms is 0.1 ms"):
        TVBSimulator(builder=f"{tmp_path / 'dt.py'}:make", n_regions=1).build(None)
    with pytest.raises(ps.ModelError, match=r"the simulator has 1 regions but n_regions is 3"):
        TVBSimulator(builder=f"{tmp_path / 'dt.py'}:make", n_regions=3, dt_ms=0.05).build(None)
    conn = Connectome.example()
    with pytest.raises(ps.ModelError, match=r"'model' must name a class of tvb.simulator.models \(got 'Nope'"):
        TVBSimulator(connectome=conn, model="Nope").build(None)
    with pytest.raises(ps.ModelError, match=r"'rates' 'v' is not a state variable of JansenRit \(has: y0"):
        TVBSimulator(connectome=conn, rates=(("v", 1.0),)).build(None)


def test_example_mixed_with_a_spiking_network_gives_the_same_run_file_on_zmq(tvb, example, tmp_path):
    """examples/tvb_spiking_region.py at a small scale (10 regions, 100 neurons, 60 ms): TVB's
    brain and polyscale's PointNetwork coupled both ways give the same recordings on inproc
    and zmq, bit for bit; the proxy region's TVB rate is the network's binned E rate."""
    def model():
        return example.build(n_regions=10, n_e=80, n_i=20, t_stop_ms=60.0)

    a = ps.run(model(), transport="inproc", out=tmp_path / "a.h5")
    b = ps.run(model(), transport="zmq", out=tmp_path / "b.h5")
    ra, rb = a.signal("brain", "rates").data, b.signal("brain", "rates").data
    np.testing.assert_array_equal(ra, rb)
    sa, sb = a.spikes("region0", "E"), b.spikes("region0", "E")
    np.testing.assert_array_equal(sa.times, sb.times)
    np.testing.assert_array_equal(sa.ids, sb.ids)
    assert len(sa.times) > 0
    # region 0's rate (recorded every 1 ms) is the E rate of the bin 2 ms (the delay) earlier
    counts = np.bincount((sa.times // 1.0).astype(int), minlength=60)[:60]
    np.testing.assert_allclose(ra[2:, 0], counts[:58] / 80 / 1e-3, rtol=1e-12, atol=1e-9)
