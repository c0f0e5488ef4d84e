"""Kernel method and current proxy (probes/kernels.py, probes/_kernel_cell.py) on point networks.

References: the matrix exponential of the compartmental ODE (scipy), LFPykit's transfer
matrices (../shared/reference/probes), a detailed simulation of the same passive cells with the
cell solver (CellPopulation), and Mazzoni et al. (2015)'s proxy written out by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

import polyscale as ps
from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.signals import Spikes, WindowResult
from polyscale.coordinator.specs import SolverContext
from polyscale.probes import kernels as K
from polyscale.probes._kernel_cell import (PassiveCell, exp2_peak_factor, line_source_matrix,
                                           point_source_matrix)
from polyscale.probes.sources import SourceModel, dipole_part, extracellular_part
from polyscale.solvers.cell import CellPopulation, Exp2Syn, Insert, ball_and_stick, layout_cell
from polyscale.solvers.point import (AllToAll, Explicit, IafPscDelta, IafPscExp, PointNetwork, Population,
                                     Projection)

MS = 1_000_000          # ticks per ms
DT_NET = 100_000        # the networks' dt, 0.1 ms


def _solver(net: PointNetwork):
    return net.build(SolverContext(name="net", seed=1, rng=np.random.default_rng(1)))


def _result(spikes: dict, t0: int, t1: int, sizes: dict) -> WindowResult:
    """A point network's WindowResult holding the given spikes {pop: (ticks, ids)} of [t0, t1)."""
    out = {}
    for pop in sizes:
        ticks, ids = spikes.get(pop, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        keep = (ticks >= t0) & (ticks < t1)
        out[f"{pop}.spikes"] = Spikes(ticks[keep], ids[keep])
    return WindowResult(outputs=out)


def _feed(part, spikes: dict, sizes: dict, t_stop: int, window: int) -> np.ndarray:
    rows = []
    for t0 in range(0, t_stop, window):
        t1 = min(t0 + window, t_stop)
        rows.append(part(t0, t1, _result(spikes, t0, t1, sizes)))
    return np.concatenate(rows)


def _poisson(rng, n: int, rate_hz: float, t_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Spikes on the 0.1 ms grid: (ticks, ids) sorted by tick."""
    steps = int(round(t_ms / 0.1))
    hits = rng.random((steps, n)) < rate_hz * 1e-4
    st, ids = np.nonzero(hits)
    return st.astype(np.int64) * DT_NET, ids.astype(np.int64)


# --- the passive cell ------------------------------------------------------------------------

@pytest.mark.parametrize("tau_rise", [0.0, 0.5], ids=["exp", "exp2"])
def test_passive_cell_currents_match_the_matrix_exponential(tau_rise):
    """The closed-form modal solution against expm of the compartmental ODE augmented by the
    synaptic current's two exponentials: both exact, so they agree to rounding (1e-9 of the peak
    leaves room for expm's own error on a stiff 12-state system)."""
    lay = layout_cell(ball_and_stick(dend_nseg=11), 150.0, 1.0)
    pc = PassiveCell(lay, 1e-4 * lay.area_um2 * 1e-2)
    S = pc.n_segments
    share = np.zeros(S)
    share[[3, 8]] = (0.25, 0.75)
    tau_d = 2.0
    t = np.linspace(0.0, 20.0, 41)
    got = pc.membrane_currents(share, t, tau_rise, tau_d)
    A = np.zeros((S + 2, S + 2))
    A[:S, :S] = -(pc.lap_uS + np.diag(pc.g_uS)) / pc.cap_nF[:, None]
    f = exp2_peak_factor(tau_rise, tau_d)
    A[:S, S] = f * share / pc.cap_nF          # I = f (decay - rise)
    A[:S, S + 1] = -f * share / pc.cap_nF if tau_rise else 0.0
    A[S, S] = -1.0 / tau_d
    A[S + 1, S + 1] = -1.0 / tau_rise if tau_rise else -1.0
    x0 = np.zeros(S + 2)
    x0[S:] = 1.0
    want = np.array([-pc.lap_uS @ (scipy.linalg.expm(A * tt) @ x0)[:S] for tt in t])
    assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()
    # Kirchhoff: the transmembrane currents of a cell sum to zero
    assert np.abs(got.sum(axis=1)).max() <= 1e-12 * np.abs(got).max()


def test_uniform_current_into_a_uniform_cell_makes_no_lfp():
    """Current spread by area over a cell of uniform membrane charges it uniformly: no axial
    current, so no transmembrane current is left over (the closed form: u(t) the same
    everywhere, L u = 0)."""
    lay = layout_cell(ball_and_stick(dend_nseg=7), 150.0, 1.0)
    pc = PassiveCell(lay, 1e-4 * lay.area_um2 * 1e-2)
    share = pc.area_um2 / pc.area_um2.sum()
    im = pc.membrane_currents(share, np.linspace(0, 10, 11), 0.0, 2.0)
    assert np.abs(im).max() <= 1e-12


def test_closed_forms_match_lfpykit(reference):
    """The fallback line/point-source matrices against LFPykit's (1e-9: both closed forms)."""
    d = np.load(reference / "probes" / "lfp_ballstick_inputs.npz")
    lfp = np.load(reference / "probes" / "lfp_ballstick_lfp.npz")
    a = np.stack([d["seg_x_um"][:, 0], d["seg_y_um"][:, 0], d["seg_z_um"][:, 0]], 1)
    b = np.stack([d["seg_x_um"][:, 1], d["seg_y_um"][:, 1], d["seg_z_um"][:, 1]], 1)
    el = np.stack([lfp["elec_x_um"], lfp["elec_y_um"], lfp["elec_z_um"]], 1)
    sigma = float(lfp["sigma_S_per_m"])
    for got, key in ((line_source_matrix(a, b, el, sigma, 0.0), "M_linesource_mV_per_nA"),
                     (point_source_matrix(0.5 * (a + b), el, sigma, 0.0), "M_pointsource_mV_per_nA")):
        want = lfp[key]
        assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()


# --- kernel method against the detailed simulation ---------------------------------------------

NSEG, G_PAS, V_REST, RA = 9, 5e-4, -65.0, 100.0
# A conductance synapse g (E - v) is a current g (E - v_rest) to first order in the depolarisation
# dv: with g this small, dv stays ~1e-5 mV and the relative error dv / (E - v_rest) ~1e-7.
G_SYN_uS, E_SYN = 1e-7, 0.0


def _two_population_net(model_y=IafPscExp()) -> PointNetwork:
    return PointNetwork(populations=(Population(name="X", size=3, model=IafPscDelta()),
                                     Population(name="Y", size=4, model=model_y)),
                        projections=(Projection(source="X", target="Y", rule=AllToAll(), weight=10.0,
                                                delay_ms=1.0),), dt_ms=0.1)


def _kernel_cell() -> K.KernelCell:
    return K.KernelCell(morphology=ball_and_stick(dend_nseg=NSEG), d_lambda=None, g_pas_S_cm2=G_PAS,
                        ra_ohm_cm=RA, n_positions=4, radius_um=60.0, center_um=(10.0, -5.0, 0.0))


def _detailed(cell: K.KernelCell, x_ticks: np.ndarray, delay: int, dt_ms: float, t_stop: int, el):
    """The 4 placed cells of ``cell`` in the cell solver, each X spike opening, after ``delay``,
    one Exp2Syn per dendritic segment in every cell (the kernel's share: equal areas). Returns
    the line-source LFP (rows at the steps' midpoints, Crank-Nicolson) and the summed dipole."""
    pos, ang = cell.placement()
    cp = CellPopulation(morphology=cell.morphology, n=len(pos), positions_um=tuple(map(tuple, pos)),
                        rotations_deg=tuple((0.0, 0.0, math.degrees(a)) for a in ang),
                        mechanisms=(Insert(mechanism="pas", params={"g_S_cm2": G_PAS, "e_mV": V_REST}),),
                        synapses=tuple(Exp2Syn(section="dend", x=(j + 0.5) / NSEG, tau1_ms=0.5, tau2_ms=2.0,
                                               e_mV=E_SYN) for j in range(NSEG)),
                        v_init_mV=V_REST, ra_ohm_cm=RA, dt_ms=dt_ms, record_currents=True,
                        method="crank_nicolson")
    cs = cp.build(None)
    n_in = len(pos) * NSEG
    arr = np.repeat(x_ticks + delay, n_in)
    ids = np.tile(np.arange(n_in), len(x_ticks))
    keep = arr < t_stop
    cs.advance(0, t_stop, {"syn": Spikes(arr[keep], ids[keep], np.full(int(keep.sum()), G_SYN_uS / NSEG))})
    im = cs.transmembrane_currents()
    g = cs.segment_geometry()
    M = line_source_matrix(g["start_um"], g["end_um"], el, 0.3, 1.0)
    return im @ M.T, im @ (0.5 * (g["start_um"] + g["end_um"]))


def _at_grid(rows: np.ndarray, dt_ms: float) -> np.ndarray:
    """Crank-Nicolson rows (row k at t_k + dt/2) at the 0.1 ms grid t = 0.1, 0.2, ...: the mean
    of the rows on either side (second order, like the scheme)."""
    step = int(round(0.1 / dt_ms))
    return 0.5 * (rows[step - 1:-1:step] + rows[step::step])


def test_kernel_method_equals_the_detailed_simulation_of_passive_cells():
    """Poisson spike trains of X drive 4 passive ball-and-sticks through current-like synapses.
    The kernel prediction is exact for the compartmental model; the cell solver differs from it
    only by its time discretisation, first order here (it holds each synaptic conductance at its
    value at the start of the step). So: the error halves with dt, and the Richardson
    extrapolation 2 d(dt/2) - d(dt) of the detailed run matches the kernel prediction to the
    second-order remainder."""
    net = _two_population_net()
    cell = _kernel_cell()
    km = K.KernelMethod(cells={"Y": cell}, duration_ms=40.0,
                        synapses=(K.KernelSynapse(source="X", target="Y", where="dend", tau_rise_ms=0.5,
                                                  tau_decay_ms=2.0, weight_nA=G_SYN_uS * (E_SYN - V_REST)),))
    el = np.stack([np.full(6, 30.0), np.zeros(6), np.linspace(-100.0, 600.0, 6)], 1)
    t_stop = 40 * MS
    x_ticks, x_ids = _poisson(np.random.default_rng(7), 3, 150.0, 30.0)
    sizes = {"X": 3, "Y": 4}
    solver = _solver(net)
    lfp = _feed(extracellular_part("net", solver, net.ports(), km, el, 0.3, "line", 1.0, DT_NET),
                {"X": (x_ticks, x_ids)}, sizes, t_stop, MS)
    pos, dpart = dipole_part("net", solver, net.ports(), km, DT_NET)
    dip = _feed(dpart, {"X": (x_ticks, x_ids)}, sizes, t_stop, MS)[:, 0, :]
    assert np.allclose(pos, [cell.center_um])
    errs, ext = [], {}
    for dt in (0.025, 0.0125):
        v, p = _detailed(cell, x_ticks, MS, dt, t_stop, el)
        ext[dt] = (_at_grid(v, dt), _at_grid(p, dt))
        n = len(ext[dt][0])
        errs.append(np.abs(ext[dt][0] - lfp[1:n + 1]).max() / np.abs(lfp).max())
    n = len(ext[0.025][0])
    # measured: 1.4 % at 0.025 ms, 0.69 % at 0.0125 ms (ratio 0.49)
    assert errs[0] < 0.03 and 0.4 < errs[1] / errs[0] < 0.6
    rich_v = 2 * ext[0.0125][0][:n] - ext[0.025][0]
    rich_p = 2 * ext[0.0125][1][:n] - ext[0.025][1]
    scale_v, scale_p = np.abs(lfp).max(), np.abs(dip).max()
    # measured: 4.5e-4 (LFP) and 1.2e-4 (dipole) of the peak, the O(dt^2) remainder
    assert np.abs(rich_v - lfp[1:n + 1]).max() <= 1e-3 * scale_v
    assert np.abs(rich_p - dip[1:n + 1]).max() <= 1e-3 * scale_p


# --- state across windows, zero connections -----------------------------------------------------

def _mixed_net() -> PointNetwork:
    return PointNetwork(populations=(Population(name="E", size=6, model=IafPscExp(tau_syn_ex_ms=1.5,
                                                                                  tau_syn_in_ms=4.0)),
                                     Population(name="I", size=3, model=IafPscExp(tau_syn_ex_ms=1.5,
                                                                                  tau_syn_in_ms=4.0))),
                        projections=(Projection(source="E", target="E", rule=AllToAll(), weight=20.0,
                                                delay_ms=1.5, allow_autapses=False),
                                     Projection(source="E", target="I", rule=AllToAll(), weight=15.0, delay_ms=0.7),
                                     Projection(source="I", target="E", rule=AllToAll(), weight=-60.0, delay_ms=0.4),
                                     Projection(source="I", target="I", rule=AllToAll(), weight=-30.0, delay_ms=2.3)),
                        dt_ms=0.1)


@pytest.mark.parametrize("model", ["kernel", "proxy"])
def test_windows_of_any_length_give_the_one_window_result(model):
    """Spikes late in a window reach the next one through the kernels and delays: cutting the
    run into windows of 1, 7 and 33 steps gives the one-window result, bit for bit (the sums
    run in one order whatever the window)."""
    net = _mixed_net()
    sizes = {"E": 6, "I": 3}
    rng = np.random.default_rng(3)
    spikes = {"E": _poisson(rng, 6, 80.0, 30.0), "I": _poisson(rng, 3, 150.0, 30.0)}
    el = np.array([[0.0, 0.0, z] for z in (-200.0, 0.0, 300.0)])
    if model == "kernel":
        src = K.KernelMethod(cells={"E": K.KernelCell(n_positions=3, radius_um=100.0),
                                    "I": K.KernelCell(n_positions=2, center_um=(0.0, 0.0, -100.0))},
                             duration_ms=20.0)
    else:
        src = K.CurrentProxy(populations=("E",), gain=(1.0, 2.0, -0.5))
    t_stop = 30 * MS
    outs = {}
    for w in (1, 7, 33, 300):
        part = extracellular_part("net", _solver(net), net.ports(), src, el, 0.3, "line", None, DT_NET)
        outs[w] = _feed(part, spikes, sizes, t_stop, w * DT_NET)
        pos, dpart = dipole_part("net", _solver(net), net.ports(), src, DT_NET)
        outs[(w, "dipole")] = _feed(dpart, spikes, sizes, t_stop, w * DT_NET)
    for key in ((1,), (7,), (33,)):
        w = key[0]
        for k in (w, (w, "dipole")):
            ref = outs[300 if k == w else (300, "dipole")]
            assert np.abs(ref).max() > 0
            assert np.array_equal(outs[k], ref)


def test_probes_of_one_network_share_the_convolution_and_get_their_own_results():
    """An LFP, a coarser-period contact set and two dipole probes (EEG and MEG alike) on one
    network share one spikes -> injections -> convolution pass per window (_SharedFilter); each
    gets, bit for bit, what it gets alone on a solver of its own (the same sums in the same
    order), and a second run on the same solver (windows from tick 0 again) repeats the first."""
    net = _mixed_net()
    sizes = {"E": 6, "I": 3}
    rng = np.random.default_rng(5)
    spikes = {"E": _poisson(rng, 6, 80.0, 30.0), "I": _poisson(rng, 3, 150.0, 30.0)}
    km = K.KernelMethod(cells={"E": K.KernelCell(n_positions=3, radius_um=100.0),
                               "I": K.KernelCell(n_positions=2, center_um=(0.0, 0.0, -100.0))},
                        duration_ms=20.0)
    el_a = np.array([[0.0, 0.0, z] for z in (-200.0, 0.0, 300.0)])
    el_b = np.array([[50.0, 0.0, -50.0], [0.0, 80.0, 150.0]])

    def make(solver):
        return [extracellular_part("net", solver, net.ports(), km, el_a, 0.3, "line", None, DT_NET),
                extracellular_part("net", solver, net.ports(), km, el_b, 0.3, "line", None, 5 * DT_NET),
                dipole_part("net", solver, net.ports(), km, 5 * DT_NET)[1],
                dipole_part("net", solver, net.ports(), km, 5 * DT_NET)[1]]
    alone = [_feed(make(_solver(net))[i], spikes, sizes, 30 * MS, 7 * DT_NET) for i in range(4)]
    solver = _solver(net)
    for _ in range(2):                       # two runs on the same solver
        parts = make(solver)
        got = [[] for _ in parts]
        for t0 in range(0, 30 * MS, 7 * DT_NET):   # as the runner asks: every part, window by window
            t1 = min(t0 + 7 * DT_NET, 30 * MS)
            res = _result(spikes, t0, t1, sizes)
            for i, part in enumerate(parts):
                got[i].append(part(t0, t1, res))
        for i in range(4):
            assert np.abs(alone[i]).max() > 0
            assert np.array_equal(np.concatenate(got[i]), alone[i])
    with pytest.raises(ModelError, match="does not follow"):
        parts[0](3 * MS, 4 * MS, _result(spikes, 3 * MS, 4 * MS, sizes))


def test_a_probe_period_coarser_than_dt_samples_the_fine_result():
    """Rows at every 1 ms are the rows of the 0.1 ms result at those times."""
    net = _mixed_net()
    sizes = {"E": 6, "I": 3}
    spikes = {"E": _poisson(np.random.default_rng(4), 6, 80.0, 20.0)}
    el = np.array([[0.0, 0.0, 100.0]])
    km = K.KernelMethod(cells={"E": K.KernelCell(n_positions=2)}, duration_ms=10.0)
    fine = _feed(extracellular_part("net", _solver(net), net.ports(), km, el, 0.3, "line", None, DT_NET),
                 spikes, sizes, 20 * MS, 7 * DT_NET)
    coarse = _feed(extracellular_part("net", _solver(net), net.ports(), km, el, 0.3, "line", None, MS),
                   spikes, sizes, 20 * MS, 7 * DT_NET)
    assert coarse.shape == (20, 1)
    assert np.abs(coarse - fine[::10]).max() <= 1e-12 * np.abs(fine).max()


def test_a_population_without_connections_contributes_nothing():
    """Kernels scale with the number of synapses: a kernel cell for a population nobody projects
    onto gives exactly zero, however much the others fire."""
    net = PointNetwork(populations=(Population(name="X", size=3, model=IafPscDelta()),
                                    Population(name="Y", size=4, model=IafPscExp()),
                                    Population(name="Z", size=2, model=IafPscExp())),
                       projections=(Projection(source="X", target="Y", rule=AllToAll(), weight=10.0,
                                               delay_ms=1.0),), dt_ms=0.1)
    sizes = {"X": 3, "Y": 4, "Z": 2}
    spikes = {"X": _poisson(np.random.default_rng(5), 3, 200.0, 10.0),
              "Y": _poisson(np.random.default_rng(6), 4, 200.0, 10.0)}
    el = np.array([[0.0, 0.0, 100.0], [0.0, 0.0, 400.0]])
    km = K.KernelMethod(cells={"Z": K.KernelCell(n_positions=2)}, duration_ms=10.0)
    out = _feed(extracellular_part("net", _solver(net), net.ports(), km, el, 0.3, "line", None, DT_NET),
                spikes, sizes, 10 * MS, MS)
    assert out.shape == (100, 2) and not out.any()
    pos, dpart = dipole_part("net", _solver(net), net.ports(), km, DT_NET)
    assert not _feed(dpart, spikes, sizes, 10 * MS, MS).any()
    # the same cell on Y, which X does project onto, is not silent
    km_y = K.KernelMethod(cells={"Y": K.KernelCell(n_positions=2)}, duration_ms=10.0)
    out_y = _feed(extracellular_part("net", _solver(net), net.ports(), km_y, el, 0.3, "line", None, DT_NET),
                  spikes, sizes, 10 * MS, MS)
    assert np.abs(out_y).max() > 0


# --- the current proxy ----------------------------------------------------------------------------

def test_proxy_is_mazzonis_weighted_sum_written_out():
    """WS(t) = sum over Y's synapses of |AMPA|(t - 6 ms) - 1.65 |GABA|(t), each synapse's
    current w exp(-(t - t_spike - delay) / tau) from its onset, summed by hand over the explicit
    synapses; an electrode's value is its gain times WS. Synapses onto X are left out
    (populations=('Y',)). Same sums in another order: 1e-12 of the peak."""
    tau_ex, tau_in = 2.0, 5.0
    ex = [(0, 0, 30.0, 1.0), (0, 1, 20.0, 2.0), (1, 2, 25.0, 1.0)]      # (X id, Y id, pA, ms)
    inh = [(0, 0, -50.0, 0.5), (0, 2, -40.0, 0.5)]                     # (I id, Y id, pA, ms)
    net = PointNetwork(populations=(Population(name="X", size=2, model=IafPscDelta()),
                                    Population(name="I", size=1, model=IafPscDelta()),
                                    Population(name="Y", size=3, model=IafPscExp(tau_syn_ex_ms=tau_ex,
                                                                                 tau_syn_in_ms=tau_in))),
                       projections=tuple(
                           Projection(source=src, target="Y", rule=Explicit(sources=[e[0]], targets=[e[1]]),
                                      weight=e[2], delay_ms=e[3]) for src, lst in (("X", ex), ("I", inh))
                           for e in lst) + (Projection(source="X", target="X", rule=AllToAll(), weight=3.0,
                                                       delay_ms=1.0),), dt_ms=0.1)
    x = (np.array([2, 5, 5, 31, 80, 81]) * DT_NET, np.array([0, 0, 1, 1, 0, 1]))
    i = (np.array([10, 40, 95]) * DT_NET, np.array([0, 0, 0]))
    sizes = {"X": 2, "I": 1, "Y": 3}
    gain = (1.0, -2.5)
    px = K.CurrentProxy(populations=("Y",), gain=gain)
    out = _feed(extracellular_part("net", _solver(net), net.ports(), px, np.zeros((2, 3)), 0.3, "line", None,
                                   DT_NET), {"X": x, "I": i}, sizes, 25 * MS, 3 * MS)
    t = np.arange(250) * 0.1

    def current(times_ticks, ids, edges, tau, at):
        total = np.zeros_like(at)
        for ts, src in zip(times_ticks / MS, ids):
            for s, _, w, d in edges:
                if s == src:
                    lag = at - ts - d
                    total += np.where(lag >= -1e-9, abs(w) * np.exp(-np.maximum(lag, 0) / tau), 0.0)
        return total

    ws = current(*x, ex, tau_ex, t - 6.0) - 1.65 * current(*i, inh, tau_in, t)
    want = ws[:, None] * np.array(gain)[None, :]
    assert np.abs(want).max() > 0
    assert np.abs(out - want).max() <= 1e-12 * np.abs(want).max()
    # as a head source: one dipole along the axis, dipole_gain * WS
    px_d = K.CurrentProxy(populations=("Y",), dipole_gain=3.0, axis=(0.0, 0.0, 2.0), position_um=(1.0, 2.0, 3.0))
    pos, dpart = dipole_part("net", _solver(net), net.ports(), px_d, DT_NET)
    dip = _feed(dpart, {"X": x, "I": i}, sizes, 25 * MS, 3 * MS)
    assert np.allclose(pos, [[1.0, 2.0, 3.0]])
    assert dip.shape == (250, 1, 3) and not dip[:, 0, :2].any()
    assert np.abs(dip[:, 0, 2] - 3.0 * ws).max() <= 1e-12 * np.abs(3.0 * ws).max()


def test_proxy_currents_are_the_networks_own_synaptic_currents():
    """With no delay and alpha 0 the proxy is sum |I_ex| over Y; with gain -1 and alpha 1 and the
    same delay 0, proxy + that = sum |I_in|. Both against the currents the point network
    integrates (its state after the window ending at the sample time), to 1e-12 of the peak
    (measured 3e-15: the network decays its currents step by step, the kernel takes powers of
    exp(-dt/tau))."""
    net = PointNetwork(populations=(Population(name="X", size=4, model=IafPscDelta(), poisson_rate_hz=30000.0,
                                               poisson_weight=1.0),
                                    Population(name="Y", size=3, model=IafPscExp(tau_syn_ex_ms=2.0,
                                                                                 tau_syn_in_ms=5.0))),
                       projections=(Projection(source="X", target="Y", rule=AllToAll(), weight=30.0, delay_ms=1.0),
                                    Projection(source="X", target="Y", rule=AllToAll(), weight=-20.0,
                                               delay_ms=0.5)), dt_ms=0.1)
    el = np.zeros((1, 3))
    a_net, b_net = _solver(net), _solver(net)
    ampa = extracellular_part("net", a_net, net.ports(), K.CurrentProxy(populations=("Y",), delay_ms=0.0, alpha=0.0),
                              el, 0.3, "line", None, DT_NET)
    both = extracellular_part("net", b_net, net.ports(),
                              K.CurrentProxy(populations=("Y",), delay_ms=0.0, alpha=1.0, gain=-1.0),
                              el, 0.3, "line", None, DT_NET)
    got_ex, got_in, net_ex, net_in = [], [], [], []
    for k in range(150):
        t0, t1 = k * DT_NET, (k + 1) * DT_NET
        pa = ampa(t0, t1, a_net.advance(t0, t1, {}))[0, 0]
        pb = both(t0, t1, b_net.advance(t0, t1, {}))[0, 0]
        got_ex.append(pa)
        got_in.append(pb + pa)
        net_ex.append(a_net.i_ex[4:7].sum())
        net_in.append(-b_net.i_in[4:7].sum())
    # the sample at t is the state after the window ending at t
    got_ex, got_in = np.array(got_ex[1:]), np.array(got_in[1:])
    net_ex, net_in = np.array(net_ex[:-1]), np.array(net_in[:-1])
    assert np.abs(net_ex).max() > 0 and np.abs(net_in).max() > 0
    assert np.abs(got_ex - net_ex).max() <= 1e-12 * np.abs(net_ex).max()
    assert np.abs(got_in - net_in).max() <= 1e-12 * np.abs(net_in).max()


# --- in a run ------------------------------------------------------------------------------------

def test_lfp_csd_dipole_and_proxy_probes_of_a_point_network_in_a_run(transport):
    """The probes of a run (spec sent as plain data to the solver's process on zmq/mpi) equal the
    kernels applied to the run's own recorded spikes (1e-12 of the peak). AllToAll rules make the
    connectome the same in the run and here."""
    net = _mixed_net()
    net = net.replace(populations=tuple(p.replace(poisson_rate_hz=20000.0, poisson_weight=40.0)
                                        for p in net.populations))
    km = K.KernelMethod(cells={"E": K.KernelCell(n_positions=3, center_um=(0.0, 0.0, -300.0)),
                               "I": K.KernelCell(n_positions=2, center_um=(0.0, 0.0, -300.0))},
                        synapses=(K.KernelSynapse(source="I", target="E", where="soma", tau_decay_ms=3.0),),
                        duration_ms=15.0)
    px = K.CurrentProxy(populations=("E",), gain=0.01)
    el = [(0.0, 0.0, z) for z in (-500.0, -300.0, -100.0, 100.0)]
    m = ps.Model(seed=11, t_stop_ms=20.0)
    m.solver("net", net)
    m.record("net.E.spikes")
    m.record("net.I.spikes")
    m.probe("lfp", ps.probes.LFP(of="net", electrodes_um=el, sources={"net": km}, every_ms=0.5))
    m.probe("csd", ps.probes.CSD(of="net", contacts_um=el, sources={"net": km}, every_ms=0.5))
    m.probe("dipole", ps.probes.CurrentDipole(of="net", sources={"net": km}, every_ms=0.5))
    m.probe("proxy", ps.probes.LFP(of="net", electrodes_um=el[:1], sources={"net": px}, every_ms=0.1))
    run = ps.run(m, transport=transport)
    spikes = {}
    for pop in ("E", "I"):
        rec = run.spikes("net", pop)
        spikes[pop] = (np.rint(np.asarray(rec.times) * MS).astype(np.int64), np.asarray(rec.ids, np.int64))
    assert len(spikes["E"][0]) > 10 and len(spikes["I"][0]) > 5
    sizes = {"E": 6, "I": 3}
    el_arr = np.array(el)
    lfp = _feed(extracellular_part("net", _solver(net), net.ports(), km, el_arr, 0.3, "line", None, MS // 2),
                spikes, sizes, 20 * MS, MS)
    got = run.probe("lfp")
    assert got.units == "mV" and got.data.shape == (40, 4)
    assert np.abs(got.data - lfp).max() <= 1e-12 * np.abs(lfp).max()
    # second difference of the same potentials, -sigma (V[k-1] - 2 V[k] + V[k+1]) / h^2
    csd = -0.3 * (lfp[:, :-2] - 2 * lfp[:, 1:-1] + lfp[:, 2:]) / 200.0 ** 2
    assert np.abs(run.probe("csd").data - csd).max() <= 1e-9 * np.abs(csd).max()
    _, dpart = dipole_part("net", _solver(net), net.ports(), km, MS // 2)
    dip = _feed(dpart, spikes, sizes, 20 * MS, MS).sum(axis=1)     # the probe sums the sources
    got_d = run.probe("dipole").data
    assert np.abs(got_d - dip).max() <= 1e-12 * np.abs(dip).max()
    prox = _feed(extracellular_part("net", _solver(net), net.ports(), px, el_arr[:1], 0.3, "line", None, DT_NET),
                 spikes, sizes, 20 * MS, MS)
    assert np.abs(run.probe("proxy").data - prox).max() <= 1e-12 * np.abs(prox).max()


# --- specs and errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    pytest.param(K.KernelMethod.example(), id="kernel_method"),
    pytest.param(K.CurrentProxy(populations=("E",), gain=(1.0, -2.0), tau_ampa_ms=2.0), id="current_proxy"),
])
def test_source_models_round_trip_through_plain_data(spec):
    import json

    import msgpack
    data = spec.to_dict()
    assert SourceModel.from_dict(msgpack.unpackb(msgpack.packb(data))) == spec
    assert SourceModel.from_dict(json.loads(json.dumps(data))) == spec


@pytest.mark.parametrize("make, message", [
    pytest.param(lambda: K.KernelSynapse(source="X", target="Y", z_mean_um=100.0),
                 r"give both 'z_mean_um' and 'z_std_um' or neither \(got 100\.0, None\)", id="half-profile"),
    pytest.param(lambda: K.KernelSynapse(source="X", target="Y", tau_rise_ms=3.0, tau_decay_ms=2.0),
                 r"'tau_rise_ms' must be below 'tau_decay_ms' \(got 3\.0 >= 2\.0\)", id="rise-after-decay"),
    pytest.param(lambda: K.KernelMethod(cells={}), r"'cells' must be a non-empty dict", id="no-cells"),
    pytest.param(lambda: K.KernelCell(radius_um=-1.0), r"'radius_um' must be a finite number >= 0 \(got -1\.0\)",
                 id="negative-radius"),
    pytest.param(lambda: K.CurrentProxy(axis=(0, 0, 0)), r"'axis' must be a nonzero vector", id="zero-axis"),
])
def test_bad_specs_are_rejected_naming_the_field(make, message):
    with pytest.raises(ModelError, match=message):
        make()


@pytest.mark.parametrize("model, period, message", [
    pytest.param(K.KernelMethod(cells={"Z": K.KernelCell()}), DT_NET,
                 r"population 'Z' is not in the point network \(has: X, Y\)", id="unknown-population"),
    pytest.param(K.KernelMethod(cells={"Y": K.KernelCell()},
                                synapses=(K.KernelSynapse(source="X", target="Y", where="apic"),)), DT_NET,
                 r"X->Y: no membrane receives these synapses \(where='apic'\)", id="no-membrane"),
    pytest.param(K.KernelMethod(cells={"Y": K.KernelCell()}), 150_000,
                 r"period \(0\.15 ms\) must be a multiple of the point network's dt \(0\.1 ms\)", id="period"),
    pytest.param(K.CurrentProxy(gain=(1.0, 2.0, 3.0)), DT_NET, r"'gain' has 3 values for 2 electrodes",
                 id="gain-size"),
    pytest.param(None, DT_NET, r"give sources=\{solver: ps\.probes\.KernelMethod", id="no-model"),
])
def test_bad_sources_are_rejected_when_the_probe_is_built(model, period, message):
    net = _two_population_net()
    with pytest.raises(ModelError, match=message):
        extracellular_part("net", _solver(net), net.ports(), model, np.zeros((2, 3)), 0.3, "line", None, period)


def test_a_delta_synapse_target_needs_a_decay_time_and_keeps_the_charge():
    """Onto iaf_psc_delta (weights in mV) the kernel keeps each event's charge C_m w in a current
    of the given decay: the same signal as a current synapse of peak C_m w / tau (nA)."""
    net = _two_population_net(model_y=IafPscDelta())
    with pytest.raises(ModelError, match=r"X->Y: the target model 'iaf_psc_delta' has no synaptic time "
                                         r"constant; give KernelSynapse\(source='X', target='Y', tau_decay_ms"):
        extracellular_part("net", _solver(net), net.ports(), K.KernelMethod(cells={"Y": K.KernelCell()}),
                           np.zeros((1, 3)), 0.3, "line", None, DT_NET)
    el = np.array([[20.0, 0.0, 300.0]])
    spikes = {"X": _poisson(np.random.default_rng(8), 3, 200.0, 10.0)}
    sizes = {"X": 3, "Y": 4}
    outs = []
    for syn in (K.KernelSynapse(source="X", target="Y", tau_decay_ms=2.0),
                K.KernelSynapse(source="X", target="Y", tau_decay_ms=2.0, weight_nA=250.0 * 10.0 * 1e-3 / 2.0)):
        km = K.KernelMethod(cells={"Y": K.KernelCell(n_positions=2)}, synapses=(syn,), duration_ms=10.0)
        outs.append(_feed(extracellular_part("net", _solver(net), net.ports(), km, el, 0.3, "line", None, DT_NET),
                          spikes, sizes, 10 * MS, MS))
    assert np.abs(outs[0]).max() > 0
    assert np.abs(outs[0] - outs[1]).max() <= 1e-12 * np.abs(outs[1]).max()


def test_synapses_enter_where_their_depth_profile_puts_them():
    """A Gaussian depth profile at z = 400 um on the dendrite (10..510 um) puts the inward
    current there: just after the onset the most inward transmembrane current is in the
    segment nearest 400 um, and the soma's is outward (the return current)."""
    cell = K.KernelCell(morphology=ball_and_stick(dend_nseg=25), d_lambda=None)
    net = _two_population_net()
    km = K.KernelMethod(cells={"Y": cell}, duration_ms=5.0,
                        synapses=(K.KernelSynapse(source="X", target="Y", z_mean_um=400.0, z_std_um=20.0,
                                                  tau_decay_ms=2.0),))
    b = K._KernelBuild.of(_solver(net), km)
    pc = b.passive[1]
    early = b.imem[0][5]                       # 0.5 ms after the onset, (S,) nA per nA
    assert np.argmin(early) == np.argmin(np.abs(pc.mid_um[:, 2] - 400.0))
    assert early[pc.section == 0].sum() > 0


def test_dense_projections_count_like_the_csr_ones():
    """A dense AllToAll projection (no CSR entries) gives the signal of the same projection
    held synapse by synapse (1e-12: the sums are taken in another order)."""
    outs = []
    spikes = {"X": _poisson(np.random.default_rng(9), 3, 200.0, 10.0),
              "Y": _poisson(np.random.default_rng(10), 4, 200.0, 10.0)}
    for dense in (False, True):
        net = PointNetwork(populations=(Population(name="X", size=3, model=IafPscDelta()),
                                        Population(name="Y", size=4, model=IafPscExp())),
                           projections=(Projection(source="X", target="Y", rule=AllToAll(), weight=10.0, delay_ms=1.0,
                                                   dense=dense),
                                        Projection(source="Y", target="Y", rule=AllToAll(), weight=-30.0, delay_ms=0.5,
                                                   allow_autapses=False, dense=dense)), dt_ms=0.1)
        km = K.KernelMethod(cells={"Y": K.KernelCell(n_positions=2)}, duration_ms=10.0)
        outs.append(_feed(extracellular_part("net", _solver(net), net.ports(), km, np.array([[0.0, 0.0, 200.0]]),
                                             0.3, "line", None, DT_NET), spikes, {"X": 3, "Y": 4}, 10 * MS, MS))
    assert np.abs(outs[0]).max() > 0
    assert np.abs(outs[1] - outs[0]).max() <= 1e-12 * np.abs(outs[0]).max()


def test_conductance_synapses_are_linearised_at_rest():
    """Onto iaf_cond_exp a weight w (nS) acts as the current |w| (E_rev - E_L): the kernel equals
    that of current synapses of peak |w| (E_rev - E_L) 1e-3 nA with the model's decay times, and
    the proxy's currents are |w| |E_rev - v_ref| pA."""
    from polyscale.solvers.point import IafCondExp
    cond = IafCondExp()
    net = PointNetwork(populations=(Population(name="X", size=3, model=IafPscDelta()),
                                    Population(name="Y", size=4, model=cond)),
                       projections=(Projection(source="X", target="Y", rule=AllToAll(), weight=2.0, delay_ms=1.0),
                                    Projection(source="Y", target="Y", rule=AllToAll(), weight=-5.0, delay_ms=0.5)),
                       dt_ms=0.1)
    spikes = {"X": _poisson(np.random.default_rng(11), 3, 200.0, 10.0),
              "Y": _poisson(np.random.default_rng(12), 4, 200.0, 10.0)}
    sizes, el = {"X": 3, "Y": 4}, np.array([[0.0, 0.0, 200.0]])

    def lfp(synapses, v_ref=None):
        km = K.KernelMethod(cells={"Y": K.KernelCell(n_positions=2)}, duration_ms=10.0, synapses=synapses)
        return _feed(extracellular_part("net", _solver(net), net.ports(), km, el, 0.3, "line", None, DT_NET),
                     spikes, sizes, 10 * MS, MS)

    got = lfp(())
    want = lfp((K.KernelSynapse(source="X", target="Y", tau_decay_ms=cond.tau_syn_ex_ms,
                                weight_nA=2.0e-3 * (cond.e_ex_mV - cond.e_l_mV)),
                K.KernelSynapse(source="Y", target="Y", tau_decay_ms=cond.tau_syn_in_ms,
                                weight_nA=5.0e-3 * (cond.e_in_mV - cond.e_l_mV))))
    assert np.abs(want).max() > 0
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
    px = K.CurrentProxy(populations=("Y",), delay_ms=0.0, alpha=0.0, v_ref_mV=-60.0)
    ampa = _feed(extracellular_part("net", _solver(net), net.ports(), px, el, 0.3, "line", None, DT_NET),
                 spikes, sizes, 10 * MS, MS)[:, 0]
    t = np.arange(100) * 0.1
    hand = np.zeros(100)
    for ts in spikes["X"][0] / MS:                     # each X spike onto all 4 Y neurons
        lag = t - ts - 1.0
        hand += np.where(lag >= -1e-9, 4 * 2.0 * 60.0 * np.exp(-np.maximum(lag, 0) / cond.tau_syn_ex_ms), 0.0)
    assert np.abs(ampa - hand).max() <= 1e-12 * np.abs(hand).max()
