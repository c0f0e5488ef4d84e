"""A linear time-invariant system, integrated exactly: the scheduler's closed-form test bed.

dx/dt = A x + B u(t) + c, with u held constant over each step (zero-order hold). The step map
x <- Phi x + Gamma u + g comes from the matrix exponential of the augmented matrix
[[A, B, c], [0, 0, 0]] * dt (Van Loan), so the only error against the continuous system is the
hold of u, and none at all for constant inputs. Useful on its own as a linear filter, a
stimulus shaper or a leaky integrator stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.linalg

from ..coordinator.signals import Port, Samples, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import to_ticks
from ..coordinator.validation import as_tuple, fail, require_number
from ._kernels import linear_advance


def _matrix(spec, name: str, rows: int | None, cols: int | None) -> np.ndarray:
    value = as_tuple(spec, name, float)
    arr = np.array(value, dtype=np.float64)
    if arr.ndim != 2 or (rows is not None and arr.shape[0] != rows) or (cols is not None and arr.shape[1] != cols):
        want = f"({rows if rows is not None else 'n'}, {cols if cols is not None else 'm'})"
        raise fail(spec, f"{name!r} must be a matrix of shape {want} (got shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise fail(spec, f"{name!r} must hold finite numbers")
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearSystem(SolverSpec):
    """dx/dt = A x + B u(t) + c, exact for inputs held over each step.

    Parameters
    ----------
    a : (n, n) state matrix, 1/ms
    b : (n, m) input matrix (1/ms per input unit); default the identity (m = n)
    c : (n,) constant drive (state units per ms); default zero
    x0 : (n,) initial state; default zero
    dt_ms : step (ms)
    units, input_units : units of x and of u (for the run file and coupling checks)

    Ports
    -----
    u : in, analog (m,), every dt
    x : out, analog (n,), every dt; sample k is the state at t0 + k dt
    """

    type: ClassVar[str] = "linear"
    level: ClassVar[str] = "generic"

    a: tuple
    b: tuple | None = None
    c: tuple | None = None
    x0: tuple | None = None
    dt_ms: float = 0.1
    units: str = ""
    input_units: str = ""

    def __post_init__(self) -> None:
        require_number(self, "dt_ms", positive=True)
        a = _matrix(self, "a", None, None)
        n = a.shape[0]
        if a.shape != (n, n):
            raise fail(self, f"'a' must be square (got shape {a.shape})")
        if self.b is not None:
            _matrix(self, "b", n, None)
        for name in ("c", "x0"):
            if getattr(self, name) is not None:
                v = np.array(as_tuple(self, name, float))
                if v.shape != (n,) or not np.isfinite(v).all():
                    raise fail(self, f"{name!r} must be {n} finite numbers (got {getattr(self, name)!r})")
        if not isinstance(self.units, str) or not isinstance(self.input_units, str):
            raise fail(self, "'units' and 'input_units' must be strings")

    @classmethod
    def example(cls) -> "LinearSystem":
        return cls(a=((0.0, 1.0), (-0.04, -0.02)), b=((0.0,), (1.0,)), c=(0.0, 0.1), x0=(1.0, 0.0),
                   dt_ms=0.1, units="mV")

    @property
    def n(self) -> int:
        return len(self.a)

    @property
    def m(self) -> int:
        return self.n if self.b is None else len(self.b[0])

    def ports(self) -> dict[str, Port]:
        p = to_ticks(self.dt_ms, "linear: dt_ms")
        return {"u": Port("analog", "in", self.m, self.input_units, p, "input, held over each step"),
                "x": Port("analog", "out", self.n, self.units, p, "state at the start of each step")}

    def build(self, ctx: SolverContext) -> "LinearSolver":
        return LinearSolver(self)

    def step_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Phi (n, n), Gamma (n, m), g (n,)) of one step, exact for held input."""
        n, m = self.n, self.m
        a = np.array(self.a, dtype=np.float64)
        b = np.eye(n) if self.b is None else np.array(self.b, dtype=np.float64)
        c = np.zeros(n) if self.c is None else np.array(self.c, dtype=np.float64)
        big = np.zeros((n + m + 1, n + m + 1))
        big[:n, :n] = a
        big[:n, n:n + m] = b
        big[:n, n + m] = c
        e = scipy.linalg.expm(big * self.dt_ms)
        return e[:n, :n].copy(), e[:n, n:n + m].copy(), e[:n, n + m].copy()


class LinearSolver:
    def __init__(self, spec: LinearSystem):
        self.dt_ticks = to_ticks(spec.dt_ms, "linear: dt_ms")
        self.phi, self.gamma, self.drive = spec.step_map()
        self.x = np.zeros(spec.n) if spec.x0 is None else np.array(spec.x0, dtype=np.float64)

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        u = inputs["u"].data
        out = np.empty((u.shape[0], self.x.shape[0]))
        linear_advance(self.x, np.ascontiguousarray(u), self.phi, self.gamma, self.drive, out)
        return WindowResult(outputs={"x": Samples(t0, self.dt_ticks, out)})

    def state(self) -> dict[str, np.ndarray]:
        return {"x": self.x.copy()}

    def close(self) -> None:
        pass
