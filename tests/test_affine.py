"""Affine adapter."""
import numpy as np

import polyscale as ps
from polyscale.coordinator.signals import SignalSpec
from polyscale.coordinator.specs import AdapterContext

CTX = AdapterContext(coupling="a -> b", window_ticks=1_000_000, target_period_ticks=100_000)


def test_affine_maps_values_kind_and_units():
    spec = ps.adapters.Affine(gain=0.002, offset=-0.1, units="nA", produces="analog")
    incoming = SignalSpec("rate", 2, "Hz", 100_000)
    assert spec.signature(incoming, CTX) == SignalSpec("analog", 2, "nA", 100_000)
    out = spec.build(incoming, CTX)(0, 200_000, ps.Samples(0, 100_000, np.array([[0.0, 50.0], [100.0, 5.0]])))
    np.testing.assert_allclose(out.data, [[-0.1, 0.0], [0.1, -0.09]], atol=1e-15)


def test_defaults_keep_kind_and_units():
    assert ps.adapters.Affine().signature(SignalSpec("rate", 1, "Hz", 10), CTX) == SignalSpec("rate", 1, "Hz", 10)
