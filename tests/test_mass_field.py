"""The 2D neural field: FFT convolution against direct sums, linear modes against closed forms."""
import numpy as np
import pytest

import polyscale as ps
from polyscale.solvers.mass import NeuralField

MS = 1_000_000


def direct_lateral(spec, rate):
    """(w * rate)(x) by the double sum over grid points, with distances on the torus
    ('periodic') or in the plane with nothing outside the sheet ('padded')."""
    ny, nx = spec.shape
    out = np.zeros((ny, nx))
    ys, xs = np.mgrid[0:ny, 0:nx]
    for y in range(ny):
        for x in range(nx):
            dy, dx = np.abs(ys - y), np.abs(xs - x)
            if spec.boundary == "periodic":
                dy, dx = np.minimum(dy, ny - dy), np.minimum(dx, nx - dx)
            r = spec.spacing_mm * np.hypot(dy, dx)
            out[y, x] = np.sum(spec.kernel(r) * rate) * spec.spacing_mm ** 2
    return out


@pytest.mark.parametrize("boundary", ["periodic", "padded"])
def test_fft_convolution_equals_the_direct_sum(boundary):
    spec = NeuralField(shape=(7, 9), spacing_mm=0.7, boundary=boundary, sigma_e_mm=1.1, sigma_i_mm=2.3)
    rate = np.random.default_rng(0).uniform(size=(7, 9))
    got = spec.build(None).lateral(rate)
    # FFT round-off: ~1e-15 of the largest term
    np.testing.assert_allclose(got, direct_lateral(spec, rate), rtol=0, atol=1e-12)


def linear_field(**kw):
    p = dict(shape=(16, 20), spacing_mm=0.5, boundary="periodic", tau_ms=10.0, h=0.0, a_e=0.8,
             sigma_e_mm=1.0, a_i=0.3, sigma_i_mm=2.0, firing="linear", beta=1.0)
    p.update(kw)
    return NeuralField(**p)


def mode_eigenvalue(spec, ky, kx):
    """lambda_k = (-1 + beta w_hat(k)) / tau, w_hat(k) = spacing^2 sum_x w(|x|) cos(k . x) over the
    torus's displacements: the closed form of a linear field's Fourier mode k."""
    ny, nx = spec.shape
    dy = np.arange(ny)
    dx = np.arange(nx)
    ddy, ddx = np.minimum(dy, ny - dy), np.minimum(dx, nx - dx)
    r = spec.spacing_mm * np.hypot(ddy[:, None], ddx[None, :])
    phase = np.cos(2 * np.pi * (ky * dy[:, None] / ny + kx * dx[None, :] / nx))
    w_hat = spec.spacing_mm ** 2 * np.sum(spec.kernel(r) * phase)
    return (-1.0 + spec.beta * w_hat) / spec.tau_ms


@pytest.mark.parametrize("ky, kx", [(0, 0), (1, 0), (2, 3), (8, 10)])
def test_a_fourier_mode_of_the_linear_field_grows_or_decays_at_its_eigenvalue(ky, kx):
    """u(x, 0) = cos(k . x): the linear field keeps the shape and scales it by exp(lambda_k t).
    RK4 at dt 0.02 ms: |lambda| <= 0.31 /ms, so the global relative error |lambda| t (lambda dt)^4
    / 120 stays below 1e-10 over 20 ms; asserted to 1e-9."""
    spec = linear_field(integrator="rk4", dt_ms=0.02)
    ny, nx = spec.shape
    y, x = np.mgrid[0:ny, 0:nx]
    u0 = np.cos(2 * np.pi * (ky * y / ny + kx * x / nx))
    solver = spec.replace(initial_u=u0.ravel()).build(None)
    out = solver.advance(0, 20 * MS, {}).outputs["u"].data
    lam = mode_eigenvalue(spec, ky, kx)
    for k in (250, 999):
        np.testing.assert_allclose(out[k], u0.ravel() * np.exp(lam * k * 0.02), rtol=1e-9, atol=1e-12)


def test_uniform_stimulus_gives_the_closed_form_steady_state():
    """Linear field, constant uniform stimulus s: u* = s / (1 - beta w_hat(0)) everywhere (the
    (0, 0) mode is stable here), reached within 1e-9 after 40 time constants."""
    spec = linear_field(integrator="heun", dt_ms=0.1)
    lam0 = mode_eigenvalue(spec, 0, 0)
    assert lam0 < 0
    s = 2.0
    m = ps.Model(t_stop_ms=400.0)
    m.solver("f", spec)
    m.solver("s", ps.solvers.LinearSystem(a=[[0.0]], x0=[s], dt_ms=0.1))
    m.couple("s.x", "f.stimulus", delay_ms=0.1)   # one channel broadcast to every grid point
    m.record("f.u")
    u = ps.run(m).signal("f", "u").data
    w_hat0 = (lam0 * spec.tau_ms + 1.0) / spec.beta
    np.testing.assert_allclose(u[-1], s / (1 - spec.beta * w_hat0), rtol=1e-9)


def test_a_sigmoid_field_window_split_does_not_change_the_run():
    spec = NeuralField(shape=(8, 8), boundary="padded", firing="sigmoid", beta=2.0, theta=0.5,
                       initial_u=np.linspace(-1, 1, 64), integrator="heun")
    whole = spec.build(None).advance(0, 10 * MS, {}).outputs["u"].data
    solver = spec.build(None)
    parts = [solver.advance(w * MS, (w + 1) * MS, {}).outputs["u"].data for w in range(10)]
    np.testing.assert_array_equal(np.vstack(parts), whole)


@pytest.mark.parametrize("make, message", [
    (lambda: NeuralField(shape=(0, 4)), r"neural_field: 'shape' must be two integers >= 1, \(ny, nx\) \(got \(0, 4\)\)"),
    (lambda: NeuralField(boundary="reflecting"), r"'boundary' must be one of 'periodic', 'padded' \(got 'reflecting'\)"),
    (lambda: NeuralField(sigma_e_mm=0.0), r"'sigma_e_mm' must be a finite number > 0"),
    (lambda: NeuralField(shape=(2, 2), initial_u=(1.0, 2.0)), r"'initial_u' must be one number or 4 finite numbers"),
])
def test_bad_field_specs_name_the_field(make, message):
    with pytest.raises(ps.ModelError, match=message):
        make()
