"""The linear system solver against closed forms."""
import numpy as np
import pytest

import polyscale as ps


def run_alone(spec, t_stop_ms):
    m = ps.Model(t_stop_ms=t_stop_ms)
    m.solver("s", spec)
    m.record("s.x")
    return ps.run(m).signal("s", "x")


def test_harmonic_oscillator_follows_cos_exactly():
    """x'' = -w^2 x, x(0) = 1: the matrix exponential makes every sample cos(w t) up to rounding."""
    w = 2 * np.pi * 0.01   # 10 Hz in rad/ms
    sig = run_alone(ps.solvers.LinearSystem(a=[[0, 1], [-w * w, 0]], x0=[1.0, 0.0], dt_ms=0.1), 500.0)
    # 5000 steps of a rotation, each exact to ~1e-16: rounding accumulates to well under 1e-10
    np.testing.assert_allclose(sig.data[:, 0], np.cos(w * sig.time), atol=1e-10)
    np.testing.assert_allclose(sig.data[:, 1], -w * np.sin(w * sig.time), atol=1e-12)


def test_leaky_integrator_with_constant_drive_relaxes_exactly():
    """x' = -x / tau + c: x(t) = c tau (1 - exp(-t / tau)), exact at every sample."""
    tau, c = 7.0, 0.3
    sig = run_alone(ps.solvers.LinearSystem(a=[[-1 / tau]], c=[c], dt_ms=0.25), 50.0)
    np.testing.assert_allclose(sig.data[:, 0], c * tau * (1 - np.exp(-sig.time / tau)), rtol=1e-12, atol=1e-14)


def test_ports_follow_the_matrices():
    spec = ps.solvers.LinearSystem(a=np.eye(3) * -1.0, b=np.ones((3, 2)), dt_ms=0.5, units="mV", input_units="nA")
    p = spec.ports()
    assert (p["u"].size, p["u"].units, p["u"].period_ticks) == (2, "nA", 500_000)
    assert (p["x"].size, p["x"].units, p["x"].direction) == (3, "mV", "out")


def test_state_reports_the_current_state():
    solver = ps.solvers.LinearSystem(a=[[0.0]], c=[2.0], dt_ms=0.5).build(None)
    out = solver.advance(0, 2_000_000, {"u": ps.Samples(0, 500_000, np.zeros((4, 1)))})
    assert out.outputs["x"].data[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert solver.state()["x"].tolist() == pytest.approx([4.0])
