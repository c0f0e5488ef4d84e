"""Holding the CPUs' wake-up latency low while a run lasts (Linux PM QoS).

Every process of a zmq run waits once a window: the workers for their ``advance``, the
coordinator for their results. A CPU with nothing to run goes idle, and leaving an idle state
takes time. On a virtual machine an idle vCPU halts: the host runs other work on its core, and
the process woken for the next message then also finds its caches, TLB and branch predictors
cold. On this project's 2-core KVM VM a worker's Python for one window takes about 19 us when
run back to back and about 59 us after each wait (benchmarks/transport.py, part 7).

Linux lets a process bound that latency for every CPU: it writes the bound (microseconds, a
native int32) to ``/dev/cpu_dma_latency`` and keeps the file open. The idle governor then uses
only states that can be left within the bound (with 0: idle CPUs poll instead of halting), and
the request ends when the file is closed, also when the process dies. It is what ``tuned``'s
latency-performance profile does for a whole machine.

Measured on the same VM, benchmarks/transport.py --parts 127 with and without
``--cpu-latency-us 0``, one after the other:

* the raw pyzmq exchange (ROUTER and one DEALER over ipc, 1 KiB each way): 172 -> 54 us a step;
* polyscale's zmq window (ipc), one trivial solver: 289 -> 127 us; four: 515 -> 387 us;
* a worker's Python for such a window, from receiving it to sending its result: 70 -> 42 us.

The price: idle CPUs spin (power and heat) while the run lasts; the run's processes lose no CPU
time to it. Holding the bound needs write access to the file (root, or a udev rule that gives a
group write access); where that is missing a RuntimeWarning says why and the run goes on.
Elsewhere than Linux the file does not exist: the same warning.
"""
from __future__ import annotations

import os
import struct
import warnings

from .errors import TransportError

#: the PM QoS file of the CPUs' wake-up latency (Linux)
PATH = "/dev/cpu_dma_latency"
#: the largest bound the kernel takes (its default: no bound), microseconds
MAX_US = 2_000_000_000


def check_us(value, field: str) -> int | None:
    """``value`` as a latency bound in microseconds (a whole number in [0, MAX_US]) or None;
    TransportError naming ``field`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_US:
        raise TransportError(f"{field}: must be None or a whole number of microseconds in "
                             f"[0, {MAX_US}] (0: idle CPUs poll) (got {value!r})")
    return value


class LatencyHold:
    """A request that every CPU wake within ``us`` microseconds, held from :meth:`hold` to
    :meth:`release` (or the end of a ``with`` block). ``held`` says whether it is in force;
    ``reason`` says why not, after a :meth:`hold` that could not."""

    def __init__(self, us: int, *, what: str = "polyscale"):
        self.us = check_us(us, f"{what}: cpu_latency_us")
        self.what = what
        self.reason: str | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> bool:
        """Open the PM QoS file and write the bound; True when it is held. Where it cannot be,
        warn (RuntimeWarning) with the reason and return False."""
        if self._fd is not None:
            return True
        path = PATH     # (looked up here, so that a test can point it elsewhere)
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            return self._cannot(f"cannot open {path}: {exc.strerror or exc}")
        try:
            os.write(fd, struct.pack("=i", self.us))
        except OSError as exc:
            os.close(fd)
            return self._cannot(f"cannot write to {path}: {exc.strerror or exc}")
        self._fd = fd
        self.reason = None
        return True

    def _cannot(self, why: str) -> bool:
        self.reason = why
        warnings.warn(f"{self.what}: could not hold the CPUs' wake-up latency at {self.us} us ({why}); "
                      f"the run goes on without it. It needs write access to {PATH} (Linux; root, or a "
                      f"udev rule giving your group write access)", RuntimeWarning, stacklevel=3)
        return False

    def release(self) -> None:
        """End the request (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "LatencyHold":
        self.hold()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
