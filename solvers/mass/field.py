"""A neural field on a 2D sheet (Amari type), the lateral kernel applied by FFT convolution.

    tau du/dt = -u + (w * f(u))(x) + h + s(x, t)

u (ny, nx) is the mean membrane potential (mV) on a grid of spacing ``spacing_mm``; w the
lateral connectivity, a difference of Gaussians in the distance r (mm),
w(r) = a_e exp(-r^2 / (2 sigma_e^2)) - a_i exp(-r^2 / (2 sigma_i^2)) (per mm^2: the convolution
sums w times the cell area spacing^2); f the firing function, a sigmoid
1 / (1 + exp(-beta (u - theta))) or, for analysis, linear beta u; h the resting level and s the
stimulus (the ``stimulus`` input port). The sheet is periodic (a torus: distances wrap) or
padded (zero activity outside the sheet: a linear convolution, computed by zero-padding to
twice the size). The convolution is one real FFT pair per evaluation (numpy.fft); the
integrators are Euler, Heun and RK4 with the stimulus held over each step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.signals import Port, Samples, WindowResult
from ...coordinator.specs import SolverContext, SolverSpec
from ...coordinator.time import to_ticks
from ...coordinator.validation import as_tuple, fail, require_choice, require_number


@dataclass(frozen=True, slots=True, kw_only=True)
class NeuralField(SolverSpec):
    """Amari neural field on a (ny, nx) sheet; see the module docstring for the equation.

    Parameters
    ----------
    shape : (ny, nx) grid points
    spacing_mm : grid spacing (mm)
    boundary : 'periodic' or 'padded'
    tau_ms : membrane time constant (ms)
    h : resting level (mV)
    a_e, sigma_e_mm, a_i, sigma_i_mm : the difference-of-Gaussians kernel (amplitudes per mm^2)
    firing : 'sigmoid' (1 / (1 + exp(-beta (u - theta)))) or 'linear' (beta u)
    beta, theta : firing gain (1/mV) and threshold (mV)
    integrator : 'euler', 'heun' or 'rk4'
    dt_ms : step (ms)
    initial_u : ny * nx values (row-major) or one value for the whole sheet; default h

    Ports
    -----
    stimulus : in, analog (ny * nx,), mV, held over each step (row-major: index y * nx + x)
    u : out, analog (ny * nx,), mV, the field at the start of each step
    rate : out, analog (ny * nx,), f(u) (a fraction of the maximum rate), same times
    """

    type: ClassVar[str] = "neural_field"
    level: ClassVar[str] = "III"

    shape: tuple = (32, 32)
    spacing_mm: float = 1.0
    boundary: str = "periodic"
    tau_ms: float = 10.0
    h: float = 0.0
    a_e: float = 1.0
    sigma_e_mm: float = 2.0
    a_i: float = 0.5
    sigma_i_mm: float = 4.0
    firing: str = "sigmoid"
    beta: float = 1.0
    theta: float = 0.0
    integrator: str = "heun"
    dt_ms: float = 0.1
    initial_u: tuple | float | None = None

    def __post_init__(self) -> None:
        require_number(self, "spacing_mm", "tau_ms", "sigma_e_mm", "sigma_i_mm", "dt_ms", positive=True)
        require_number(self, "h", "a_e", "a_i", "beta", "theta")
        require_choice(self, "boundary", ("periodic", "padded"))
        require_choice(self, "firing", ("sigmoid", "linear"))
        require_choice(self, "integrator", ("euler", "heun", "rk4"))
        shape = as_tuple(self, "shape")
        if len(shape) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
            raise fail(self, f"'shape' must be two integers >= 1, (ny, nx) (got {self.shape!r})")
        if self.initial_u is not None:
            if isinstance(self.initial_u, (int, float)) and not isinstance(self.initial_u, bool):
                require_number(self, "initial_u")
            else:
                u0 = np.array(as_tuple(self, "initial_u", float))
                if u0.shape != (self.size,) or not np.isfinite(u0).all():
                    raise fail(self, f"'initial_u' must be one number or {self.size} finite numbers "
                                     f"(row-major ny * nx) (got shape {u0.shape})")

    @property
    def size(self) -> int:
        return int(self.shape[0] * self.shape[1])

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "neural_field: dt_ms")
        n = self.size
        return {"stimulus": Port("analog", "in", n, "mV", p, "stimulus per grid point (row-major)"),
                "u": Port("analog", "out", n, "mV", p, "field at the start of each step"),
                "rate": Port("analog", "out", n, "", p, "firing f(u), fraction of the maximum")}

    def build(self, ctx: SolverContext | None) -> "NeuralFieldSolver":
        return NeuralFieldSolver(self)

    def kernel(self, r_mm: np.ndarray) -> np.ndarray:
        """w(r) per mm^2 at distances r_mm (any shape)."""
        r2 = np.asarray(r_mm, dtype=np.float64) ** 2
        return (self.a_e * np.exp(-r2 / (2 * self.sigma_e_mm ** 2))
                - self.a_i * np.exp(-r2 / (2 * self.sigma_i_mm ** 2)))

    def kernel_spectrum(self) -> np.ndarray:
        """rfft2 of the kernel times the cell area, on the grid the convolution uses:
        (ny, nx // 2 + 1) for 'periodic', (2 ny, nx + 1) for 'padded'."""
        ny, nx = self.shape
        if self.boundary == "periodic":
            # displacement of grid index k: k or k - n, whichever is shorter (the torus)
            dy = np.minimum(np.arange(ny), ny - np.arange(ny))
            dx = np.minimum(np.arange(nx), nx - np.arange(nx))
        else:
            # indices 0..n-1 are displacements 0..n-1, n..2n-1 are -n..-1: a linear convolution
            # of two n-point signals fits without wrapping
            dy = np.abs(np.where(np.arange(2 * ny) < ny, np.arange(2 * ny), np.arange(2 * ny) - 2 * ny))
            dx = np.abs(np.where(np.arange(2 * nx) < nx, np.arange(2 * nx), np.arange(2 * nx) - 2 * nx))
        r = self.spacing_mm * np.hypot(dy[:, None], dx[None, :])
        return np.fft.rfft2(self.kernel(r) * self.spacing_mm ** 2)


class NeuralFieldSolver:
    """The live solver of a NeuralField (the Solver protocol)."""

    def __init__(self, spec: NeuralField):
        self.spec = spec
        self.dt_ticks = to_ticks(spec.dt_ms, "neural_field: dt_ms")
        self.ny, self.nx = spec.shape
        self.w_hat = spec.kernel_spectrum()
        self.u = np.full((self.ny, self.nx), spec.h, dtype=np.float64)
        if isinstance(spec.initial_u, float):
            self.u[:] = spec.initial_u
        elif spec.initial_u is not None:
            self.u[:] = np.array(spec.initial_u, dtype=np.float64).reshape(self.ny, self.nx)

    def firing(self, u: np.ndarray) -> np.ndarray:
        s = self.spec
        if s.firing == "linear":
            return s.beta * u
        return 1.0 / (1.0 + np.exp(-s.beta * (u - s.theta)))

    def lateral(self, rate: np.ndarray) -> np.ndarray:
        """(w * rate)(x), (ny, nx)."""
        if self.spec.boundary == "periodic":
            return np.fft.irfft2(np.fft.rfft2(rate) * self.w_hat, s=(self.ny, self.nx))
        full = np.fft.irfft2(np.fft.rfft2(rate, s=(2 * self.ny, 2 * self.nx)) * self.w_hat,
                             s=(2 * self.ny, 2 * self.nx))
        return full[:self.ny, :self.nx]

    def dudt(self, u: np.ndarray, stim: np.ndarray) -> np.ndarray:
        s = self.spec
        return (-u + self.lateral(self.firing(u)) + s.h + stim) / s.tau_ms

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        n_steps = (t1 - t0) // self.dt_ticks
        n = self.ny * self.nx
        sig = inputs.get("stimulus") if inputs else None
        stim = np.zeros((n_steps, n)) if sig is None else np.asarray(sig.data, dtype=np.float64)
        out_u = np.empty((n_steps, n))
        dt, integ = self.spec.dt_ms, self.spec.integrator
        u = self.u
        for k in range(n_steps):
            out_u[k] = u.ravel()
            s = stim[k].reshape(self.ny, self.nx)
            k1 = self.dudt(u, s)
            if integ == "euler":
                u = u + dt * k1
            elif integ == "heun":
                u = u + (k1 + self.dudt(u + dt * k1, s)) * dt / 2.0
            else:
                k2 = self.dudt(u + dt / 2 * k1, s)
                k3 = self.dudt(u + dt / 2 * k2, s)
                k4 = self.dudt(u + dt * k3, s)
                u = u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        self.u = u
        return WindowResult(outputs={"u": Samples(t0, self.dt_ticks, out_u),
                                     "rate": Samples(t0, self.dt_ticks, self.firing(out_u))})

    def state(self) -> dict[str, np.ndarray]:
        return {"u": self.u.copy()}

    def close(self) -> None:
        pass
