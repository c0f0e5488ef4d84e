"""Transports: how windows and data move between the coordinator and the solvers.

The scheduler sees only the :class:`Transport` protocol. ``inproc`` runs every solver in this
process; further transports (``zmq``, ``mpi``) implement the same three calls, reusing
:class:`polyscale.coordinator.routing.Inbox` where the destination solver lives, so every
transport delivers the same inputs and writes the same run file.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ..errors import ModelError
from ..plan import Plan
from ..signals import WindowResult


@runtime_checkable
class Transport(Protocol):
    """One seam between the scheduler and wherever the solvers run.

    Optional: ``post(t0, t1)`` and ``gather(t0, t1)``, ``advance`` split into sending a window
    and collecting its results, with a ``pipeline`` attribute (read after ``start``); when it is
    true the scheduler posts window w + 1 before it writes window w, so that writing overlaps
    the solvers' compute (zmq does so when the machine has a core per worker to spare).
    """

    def start(self, plan: Plan) -> None:
        """Build every solver (wherever it runs) and the routing for ``plan``."""
        ...

    def advance(self, t0: int, t1: int) -> Mapping[str, WindowResult]:
        """Advance all solvers over [t0, t1) and route their outputs to the next window's inputs.

        Returns, per solver, the *recorded* outputs (selection and decimation applied) and the
        local probe parts of the window.
        """
        ...

    def close(self) -> None:
        """Stop every solver and release resources; safe to call more than once."""
        ...


def _inproc(**options):
    from .inproc import InProcTransport
    return InProcTransport(**options)


def _mpi(**options):
    from .mpi import MpiTransport
    return MpiTransport(**options)


def _zmq(**options):
    from .zmq import ZmqTransport
    return ZmqTransport(**options)


TRANSPORTS = {"inproc": _inproc, "mpi": _mpi, "zmq": _zmq}


def get_transport(name: str | Transport, **options) -> Transport:
    """A transport by name ('inproc', ...), or ``name`` itself if it is already a transport."""
    if not isinstance(name, str):
        if isinstance(name, Transport):
            return name
        raise ModelError(f"transport must be a name ({', '.join(TRANSPORTS)}) or a Transport "
                         f"object (got {name!r})")
    factory = TRANSPORTS.get(name)
    if factory is None:
        raise ModelError(f"unknown transport {name!r} (available: {', '.join(TRANSPORTS)})")
    return factory(**options)
