"""Cell kernels: the Hines tree solve against a dense solve, hh rates at their singular points."""
from __future__ import annotations

import numpy as np
import pytest

from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell import CellPopulation, Insert, Morphology, cylinder
from polyscale.solvers.cell._kernels import group_events, hh_rates


def _tree():
    # a trunk with two branches at its end and one from its middle, each with a sub-branch
    return Morphology(sections=(
        cylinder("soma", 20, 20, kind="soma", nseg=3),
        cylinder("t", 200, 3, parent="soma", nseg=7),
        cylinder("a", 100, 1.5, parent="t", nseg=5, direction=(1, 0, 1)),
        cylinder("b", 150, 1.0, parent="t", nseg=4, direction=(-1, 0, 1)),
        cylinder("m", 80, 0.8, parent="t", parent_x=0.3, nseg=3, direction=(0, 1, 0)),
        cylinder("aa", 60, 0.7, parent="a", nseg=2),
        cylinder("s0", 30, 1.2, parent="soma", parent_x=0.0, nseg=2, direction=(0, 0, -1)),
    ))


def test_one_step_equals_the_dense_backward_euler_solve():
    """Passive membrane only, so one step is exactly (C/dt + Gm + A) v' = C/dt v + Gm e, with A
    the axial conductance (graph Laplacian) matrix; solved densely by numpy."""
    e = -70.0
    spec = CellPopulation(morphology=_tree(), n=2, mechanisms=(Insert(mechanism="pas", params={"e_mV": e}),),
                          v_init_mV=e, dt_ms=0.025)
    s = spec.build(None)
    rng = np.random.default_rng(3)
    v0 = e + rng.normal(0, 10, s.v.shape[1:])      # (nodes, cells): 2 cells, one block
    s.v[0] = v0
    s.advance(0, int(0.025 * TICKS_PER_MS), {})
    N = v0.shape[0]
    A = np.zeros((N, N))
    for i, p in enumerate(s.parent):
        if p >= 0:
            g = s.g_ax[i]
            A[i, i] += g; A[p, p] += g; A[i, p] -= g; A[p, i] -= g
    M = np.diag(s.cdt + s.pas_g) + A
    want = np.linalg.solve(M, s.cdt[:, None] * v0 + (s.pas_g * e)[:, None])
    np.testing.assert_allclose(s.voltages(), want, rtol=0, atol=1e-9)


def test_layout_is_hines_ordered_and_connects_as_neuron():
    lay = CellPopulation(morphology=_tree()).layout()
    assert ((lay.parent < np.arange(lay.n_nodes)) | (lay.parent == -1)).all()
    assert (lay.parent == -1).sum() == 1
    # 'm' hangs off the centre of t's segment containing x = 0.3 (segment 2 of 7)
    m0 = lay.first_node[4]
    assert lay.parent[m0] == lay.first_node[1] + 2
    # 's0' attaches at soma(0): the root's zero-area 0-end node
    assert lay.parent[lay.first_node[6]] == 0 and lay.area_um2[0] == 0.0


@pytest.mark.parametrize("v", [-40.0, -55.0])
def test_hh_rates_are_continuous_at_the_removable_singularities(v):
    """alpha_m at -40 mV and alpha_n at -55 mV are 0/0; NEURON's vtrap takes the limit."""
    at = np.array(hh_rates(v, 1.0))
    near = np.array(hh_rates(v + 1e-4, 1.0))
    assert np.isfinite(at).all()
    np.testing.assert_allclose(at, near, rtol=1e-4)


def test_hh_q10_scales_the_time_constants():
    a = hh_rates(-60.0, 1.0)
    b = hh_rates(-60.0, 3.0)
    np.testing.assert_allclose(b[1::2], np.array(a[1::2]) / 3.0, rtol=1e-14)
    np.testing.assert_allclose(b[0::2], a[0::2], rtol=1e-14)


def test_static_nodes_eliminated_once_give_the_same_bits_as_every_step():
    """Nodes with only pas at and below them have their tree-solve elimination done once at
    build (CellSolver.s_inv); the kernel must give exactly what eliminating them every step
    gives (s_inv all 0), voltages and transmembrane currents, with hh on one branch and a
    synapse on another so both static and non-static subtrees occur."""
    from polyscale.coordinator.signals import Spikes
    from polyscale.solvers.cell import Exp2Syn, IClamp
    spec = CellPopulation(morphology=_tree(), n=3, record_currents=True,
                          mechanisms=(Insert(mechanism="pas"), Insert(mechanism="hh", where="soma"),
                                      Insert(mechanism="hh", where="a")),
                          synapses=(Exp2Syn(section="m", x=0.5),),
                          iclamps=(IClamp(section="soma", delay_ms=1.0, dur_ms=5.0, amp_nA=0.5),))
    fast, slow = spec.build(None), spec.build(None)
    assert 0 < (fast.s_inv > 0).sum() < fast.nodes_per_cell - 1
    slow.s_inv = np.zeros_like(slow.s_inv)
    ev = Spikes(np.array([int(2.0 * TICKS_PER_MS)]), np.array([1]), np.array([0.02]))
    for k in range(8):
        inp = {"syn": ev} if k == 2 else {}
        fast.advance(k * TICKS_PER_MS, (k + 1) * TICKS_PER_MS, inp)
        slow.advance(k * TICKS_PER_MS, (k + 1) * TICKS_PER_MS, inp)
        np.testing.assert_array_equal(fast.voltages(), slow.voltages())
        np.testing.assert_array_equal(fast.imem, slow.imem)
    assert fast.voltages().max() > -40.0          # the clamp drove the cells


@pytest.mark.parametrize("n_cells, n_syn, block", [(20, 3, 8), (5, 1, 8), (37, 4, 16)])
def test_group_events_orders_by_block_then_step_then_arrival(n_cells, n_syn, block):
    """group_events against the numpy it replaced: a stable argsort by step, then a stable
    argsort by block, on random events with many ties (80 steps, repeated channels); every
    output bit for bit, and a step outside the window refused with nothing written."""
    rng = np.random.default_rng(n_cells)
    m, steps = 500, 80
    n_blocks = -(-n_cells // block)
    st = rng.integers(0, steps, m)
    ids = rng.integers(0, n_cells * n_syn, m)
    w = rng.random(m)
    order = np.argsort(st, kind="stable")
    cell = ids[order] // n_syn
    blk = cell // block
    by = np.argsort(blk, kind="stable")
    want = (st[order][by], (ids[order] % n_syn)[by], cell[by] - blk[by] * block, w[order][by],
            np.searchsorted(blk[by], np.arange(n_blocks + 1)))
    got = [np.empty(m, np.int64) for _ in range(3)] + [np.empty(m), np.empty(n_blocks + 1, np.int64)]
    assert group_events(st, ids, w, n_syn, block, steps, *got) == 0
    for g, x in zip(got, want):
        np.testing.assert_array_equal(g, x)
    st[17] = steps
    assert group_events(st, ids, w, n_syn, block, steps, *got) == 1
