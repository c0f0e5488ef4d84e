"""examples/microcircuit.py (Potjans & Diesmann 2014) against NEST's run of the same model
(../shared/reference/point/pd14_s0.1_t1.json: the microcircuit-PD14 package 1.0 on NEST 3.10,
scale 0.1, Poisson background, seed 55, rates over 500..1500 ms)."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

import polyscale as ps

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "microcircuit.py"


@pytest.fixture(scope="module")
def mc():
    return runpy.run_path(str(EXAMPLE))


def test_structure_matches_nest(mc, reference):
    """Neurons and synapses: NEST's count is the recurrent synapses plus one Poisson generator
    and one spike recorder connection per neuron; ours must be exactly the recurrent ones (the
    numbers are derived, not drawn)."""
    ref = json.loads((reference / "point" / "pd14_s0.1_t1.json").read_text())
    p = mc["parameters"](0.1)
    assert int(p["n"].sum()) == ref["n_neurons"]
    assert int(p["synapses"].sum()) == ref["n_synapses"] - 2 * ref["n_neurons"]
    for i, name in enumerate(mc["POPS"]):
        assert int(p["n"][i]) == ref["stats"][name]["n_neurons"]


@pytest.mark.slow
def test_rates_match_nest_at_scale_0_1(mc, reference):
    """Population rates (Hz, 500..1500 ms), mean over 3 seeds, against NEST's one run.

    Tolerance: 10% for the populations firing above 2 Hz; 25% for the two sparse excitatory
    populations L2/3E and L6E (0.4 and 0.8 Hz, ~70% of their neurons silent at this scale),
    the spread between sources the reference README reports. Those two sit just below
    threshold and hang on the DC that makes up for the scaled-down in-degrees, which is
    computed from the full-scale rates; the package's versions disagree on those rates
    (changing them to NEST's older example's moves our L2/3E from 0.49 to 0.76 Hz), so a
    sparse population's rate is not determined to better than that."""
    ref = json.loads((reference / "point" / "pd14_s0.1_t1.json").read_text())
    rates = []
    for seed in (1, 2, 3):
        run = ps.run(mc["build"](scale=0.1, seed=seed, t_stop_ms=1500.0))
        rates.append(list(mc["rates_hz"](run, 0.1, 500.0, 1500.0).values()))
    ours = np.mean(rates, axis=0)
    for i, name in enumerate(mc["POPS"]):
        nest = ref["stats"][name]["rate_hz"]
        tol = 0.10 if nest > 2.0 else 0.25
        assert abs(ours[i] / nest - 1) < tol, f"{name}: polyscale {ours[i]:.3f} Hz, NEST {nest:.3f} Hz"

