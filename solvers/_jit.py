"""The one numba decorator every kernel uses.

cache=True: compiled kernels survive between runs. fastmath off: results must be bitwise
identical on every transport and host, and reassociation would break that. nogil: kernels touch
only arrays, and releasing the GIL lets a worker's heartbeat thread answer during a long kernel.
"""
import functools

import numba

njit = functools.partial(numba.njit, cache=True, fastmath=False, nogil=True)
