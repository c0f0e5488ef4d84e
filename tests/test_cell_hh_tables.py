"""hh rate tables (CellPopulation(hh_tables=True)): NEURON's default ``usetable_hh = 1``.

The reference traces of ../shared/reference/cell were made by NEURON 9.0.2 twice: with its
default tables (``ballstick_iclamp_*``) and with exact rates (``ballstick_iclamp_notable_*``).
With tables, polyscale does NEURON's arithmetic (table rows at -100, -99, ..., 100 mV, linear
interpolation, cnexp with the interpolated tau), so its trace must match the tabled reference
as closely as the exact path matches the exact one (measured: 7e-11 mV max either way); the
two references differ by far more (7 mV max: the second spike moves by 25 us), so a test
against the wrong one fails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell import IClamp, Insert, ball_and_stick_population
from polyscale.solvers.cell._kernels import hh_rates, hh_rates_tabled, hh_table, hh_table_index

T_MS = 100.0


def _ballstick(tables: bool):
    clamp = IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=0.5)
    spec = ball_and_stick_population(n=1, dend_nseg=101, iclamps=[clamp]).replace(hh_tables=tables)
    s = spec.build(None)
    node = s.layout.node_at("dend", 0.5)
    out = s.advance(0, int(T_MS * TICKS_PER_MS), {}).outputs
    return out["v_soma"].data[:, 0], s.voltages()[node, 0], out["spikes"].ticks / TICKS_PER_MS


@pytest.fixture(scope="module")
def runs():
    return {tables: _ballstick(tables) for tables in (True, False)}


@pytest.mark.parametrize("tables, prefix", [(True, "ballstick_iclamp"), (False, "ballstick_iclamp_notable")])
def test_soma_trace_matches_neuron_with_and_without_tables(reference, runs, tables, prefix):
    """Soma voltage every dt against NEURON's (samples at 0 .. 100 - dt; NEURON's include t =
    100). Both sides do the same arithmetic in double precision, so only rounding differs (exp
    evaluated in another order): 7e-11 mV max measured over 4000 steps with two spikes; 1e-8
    mV leaves room for another libm."""
    ref = reference / "cell"
    v_ref = np.load(ref / f"{prefix}_v_soma.npy")
    v, _, _ = runs[tables]
    n = len(v)
    err = np.abs(v - v_ref[:n])
    assert err.max() < 1e-8, (tables, err.max())
    # the dendrite's centre (dend(0.5): node 50 of 101) at t = 100 ms
    v_dend_ref = np.load(ref / f"{prefix}_v_dend.npy")
    assert abs(runs[tables][1] - v_dend_ref[-1]) < 1e-8


def test_tables_are_what_separates_the_two_references(reference, runs):
    """The tabled and exact NEURON traces differ by much more than the 1e-8 mV above, so each
    path matching its own reference is a real check (and our two paths differ the same way)."""
    ref = reference / "cell"
    a = np.load(ref / "ballstick_iclamp_v_soma.npy")
    b = np.load(ref / "ballstick_iclamp_notable_v_soma.npy")
    n = len(runs[True][0])
    assert np.abs(a - b).max() > 1.0
    np.testing.assert_allclose(runs[True][0] - runs[False][0], a[:n] - b[:n], atol=1e-8)


def test_spike_times_match_neuron_with_tables(reference, runs):
    """NEURON's summary gives the crossings interpolated within the step (as polyscale puts
    them); polyscale's spike ticks round to 1 us on the tick grid, hence 1e-5 ms."""
    import json
    summary = json.loads((reference / "cell" / "ballstick_iclamp_summary.json").read_text())
    assert summary["usetable_hh"] == 1
    np.testing.assert_allclose(runs[True][2], summary["spike_times_interp_ms"], atol=1e-5)


def test_table_rows_are_the_exact_rates_and_interpolation_is_linear():
    """Rows at v = -100 + i mV equal the exact rates there; between rows the value is the
    straight line between them; outside [-100, 100] mV the end rows (nocmodl's _n_rates);
    NaN stays NaN."""
    q10 = 3.0 ** ((16.3 - 6.3) / 10.0)
    tab = hh_table(q10)
    assert tab.shape == (202, 6)
    for i in (0, 35, 60, 200):
        np.testing.assert_allclose(tab[i], hh_rates(-100.0 + i, q10), rtol=1e-14)
        np.testing.assert_array_equal(hh_rates_tabled(-100.0 + i, tab), tab[i])
    v = -64.3
    lo, hi = np.array(hh_rates(-65.0, q10)), np.array(hh_rates(-64.0, q10))
    want = lo + (v - -65.0) * (hi - lo)
    np.testing.assert_allclose(hh_rates_tabled(v, tab), want, rtol=1e-12)
    # and it is not the exact value (the table is a real approximation: ~1e-3 relative here)
    assert np.abs(np.array(hh_rates_tabled(v, tab)) / np.array(hh_rates(v, q10)) - 1).max() > 1e-5
    np.testing.assert_array_equal(hh_rates_tabled(-250.0, tab), tab[0])
    np.testing.assert_array_equal(hh_rates_tabled(-100.0, tab), tab[0])
    np.testing.assert_array_equal(hh_rates_tabled(100.0, tab), tab[200])
    np.testing.assert_array_equal(hh_rates_tabled(1e6, tab), tab[200])
    assert all(math.isnan(x) for x in hh_rates_tabled(float("nan"), tab))


def _index_by_branches(v):
    # nocmodl's _n_rates as written there (the form hh_table_index replaces with selects)
    xi = v + 100.0
    if xi >= 200.0:
        xi = 200.0
    if xi > 0.0:
        return int(xi), xi - int(xi)
    return 0, 0.0 * xi


def test_branch_free_table_index_is_nocmodls_branching_one():
    """The kernel reads rows through hh_table_index (selects, so that its loop over cells
    vectorises); it must give nocmodl's row and fraction bit for bit: inside the table, on
    every row boundary, at and past both ends, at +-inf and for NaN."""
    rng = np.random.default_rng(3)
    vs = np.concatenate([rng.uniform(-120.0, 120.0, 20000), np.arange(-101.0, 101.5, 0.5),
                         [-100.0, 100.0, -1e300, 1e300, np.nextafter(-100.0, 0.0), np.nextafter(100.0, 0.0),
                          -0.0, 0.0, -np.inf, np.inf]])
    for v in vs:
        i, th = hh_table_index(float(v))
        wi, wth = _index_by_branches(float(v))
        assert i == wi and np.array_equal(th, wth, equal_nan=True), v
    i, th = hh_table_index(float("nan"))
    assert i == 0 and math.isnan(th)


def test_tables_with_per_cell_hh_parameters_are_refused_with_the_reason(monkeypatch):
    """Refused before any kernel for the mechanism files is written or compiled (seconds)."""
    from polyscale.solvers.cell import _generated

    def no_kernel(mechs):
        raise AssertionError("a generated kernel was loaded before the refusal")
    monkeypatch.setattr(_generated, "load", no_kernel)
    base = ball_and_stick_population(n=2, dend_nseg=11)
    mechs = (Insert(mechanism="hh", where="soma", params={"gnabar_S_cm2": (0.12, 0.1)}),) + base.mechanisms[1:]
    with pytest.raises(ModelError, match="hh_tables=True needs hh's parameters shared"):
        base.replace(mechanisms=mechs, hh_tables=True).build(None)
    with pytest.raises(ValueError, match="'hh_tables' must be True or False"):
        base.replace(hh_tables=1)
