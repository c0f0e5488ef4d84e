"""numba kernels of the generic solvers. Flat arrays in, results written in place."""
import numpy as np

from ._jit import njit


@njit
def linear_advance(x, u, phi, gamma, drive, out):
    """Advance x (n,) in place by u.shape[0] steps of x <- phi @ x + gamma @ u[k] + drive.

    u : (n_steps, m) input held over each step; out : (n_steps, n) receives x before each step.
    """
    n = x.shape[0]
    m = u.shape[1]
    tmp = np.empty(n)
    for k in range(u.shape[0]):
        for i in range(n):
            out[k, i] = x[i]
        for i in range(n):
            acc = drive[i]
            for j in range(n):
                acc += phi[i, j] * x[j]
            for j in range(m):
                acc += gamma[i, j] * u[k, j]
            tmp[i] = acc
        for i in range(n):
            x[i] = tmp[i]
