"""examples/brunel.py against NEST 3.10 on the same model (../shared/reference/point).

The network is chaotic, so the comparison is statistical: population rates and the mean CV of
the inter-spike intervals, computed as the reference computes them (rate: spikes / neurons /
time; CV: the mean over neurons of std/mean of each neuron's ISIs).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import polyscale as ps
from polyscale.coordinator.config import load_model


def statistics(run, pop, t_ms):
    sp = run.spikes("net", pop)
    n = sp.n_channels
    rate = len(sp.times) / n / (t_ms / 1000.0)
    order = np.lexsort((sp.times, sp.ids))
    t, ids = sp.times[order], sp.ids[order]
    bounds = np.searchsorted(ids, np.arange(n + 1))
    cvs = []
    for i in range(n):
        isi = np.diff(t[bounds[i]:bounds[i + 1]])
        if len(isi) >= 2:
            cvs.append(isi.std() / isi.mean())
    return rate, float(np.mean(cvs)), len(cvs) / n


def run_example(examples_dir, scale, t_stop_ms, seed=12345):
    return ps.run(load_model(examples_dir / "brunel.py", {"scale": scale, "t_stop_ms": t_stop_ms, "seed": seed}))


def test_brunel_scale_0_1_short_run_matches_nest(examples_dir, reference):
    """Scale 0.1 for 400 ms against NEST's 1 s at scale 0.1 (84.6 Hz, CV 0.13). Tolerance 5% on
    rates and 0.03 on CV, tighter than the issue's 10% / 0.1 because at this scale the network
    is nearly regular and the estimates are precise: the across-neuron spread of rates is 1.3 Hz
    in NEST, so the population mean over 1000 neurons has a standard error of ~0.05 Hz; what
    remains is the onset transient (NEST: 84.6 Hz over 1 s vs 85.5 Hz after 100 ms), which
    lowers a 400 ms mean by ~1-2%."""
    ref = json.loads((reference / "point" / "nest_s0.1_t1.json").read_text())["stats"]
    run = run_example(examples_dir, 0.1, 400.0)
    for pop in ("E", "I"):
        rate, cv, frac = statistics(run, pop, 400.0)
        assert rate == pytest.approx(ref[pop]["rate_hz"], rel=0.05), pop
        assert abs(cv - ref[pop]["cv_isi_mean"]) < 0.03, pop
        assert frac == 1.0                       # every neuron fires (NEST: frac_silent 0)


def test_brunel_same_seed_same_spikes(examples_dir):
    a = run_example(examples_dir, 0.05, 100.0, seed=7)
    b = run_example(examples_dir, 0.05, 100.0, seed=7)
    c = run_example(examples_dir, 0.05, 100.0, seed=8)
    for pop in ("E", "I"):
        sa, sb, sc = (r.spikes("net", pop) for r in (a, b, c))
        assert len(sa.times) > 100
        assert np.array_equal(sa.times, sb.times) and np.array_equal(sa.ids, sb.ids)
        assert not (len(sa.times) == len(sc.times) and np.array_equal(sa.ids, sc.ids))


# scale 1 takes 3 s here on a quiet machine and 18 s with the 2 cores shared: slow
@pytest.mark.parametrize("scale,name", [pytest.param(1.0, "nest_s1_t1.json", marks=pytest.mark.slow),
                                        (0.1, "nest_s0.1_t1.json")])
def test_brunel_matches_nest_over_one_second(examples_dir, reference, scale, name):
    """The issue's criterion: 1 s, rates within 10% and CV within 0.1 of NEST's, same model
    (different random streams, so statistics only)."""
    ref = json.loads((reference / "point" / name).read_text())["stats"]
    run = run_example(examples_dir, scale, 1000.0)
    for pop in ("E", "I"):
        rate, cv, _ = statistics(run, pop, 1000.0)
        assert rate == pytest.approx(ref[pop]["rate_hz"], rel=0.10), pop
        assert abs(cv - ref[pop]["cv_isi_mean"]) < 0.1, pop


def test_brunel_example_passes_check(examples_dir):
    model = load_model(examples_dir / "brunel.py", {"scale": 0.01})
    ps.check(model)
    spec = model.solvers["net"]
    assert [p.size for p in spec.populations] == [100, 25]
    assert [p.rule.indegree for p in spec.projections] == [10, 10, 2, 2]   # int(0.1 * 25), as NEST truncates
