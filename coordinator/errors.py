"""The exceptions polyscale raises, and nothing else.

* PolyscaleError          base of everything below
  x ModelError            bad config or spec; raised before anything runs
  x ConfigError           a config file that is missing, raises, or defines no model
  x RunFileError          cannot write, exists without force, not a run file, wrong version
  x SolverError           a solver failed or hung; carries .solver and .t_ms
  x ProbeError            a probe's global stage failed while combining a window; .probe, .t_ms
  x TransportError        startup, liveness, routing between processes
    + ProtocolError       malformed message on the wire; names the field

Library code raises these and never exits the process: only the CLI maps them to exit codes.
"""
from __future__ import annotations

from collections.abc import Iterable


class PolyscaleError(Exception):
    """Base class of every error polyscale raises on purpose."""


class ModelError(PolyscaleError, ValueError):
    """A model, spec or parameter is invalid. Raised before anything runs.

    ``problems`` lists every problem found (one line each); the message joins them.
    """

    def __init__(self, message: str | None = None, *, problems: Iterable[str] = ()):
        self.problems = list(problems) if problems else ([message] if message else [])
        if message is None:
            if len(self.problems) == 1:
                message = self.problems[0]
            else:
                lines = "\n".join(f" - {p}" for p in self.problems)
                message = f"{len(self.problems)} problems in model:\n{lines}"
        super().__init__(message)


class ConfigError(PolyscaleError):
    """A config file cannot be loaded or does not define a model."""


class RunFileError(PolyscaleError, OSError):
    """A run file cannot be created, written or read."""


class SolverError(PolyscaleError):
    """A solver raised, returned malformed output, died or stopped answering.

    Attributes
    ----------
    solver : name of the solver in the model
    t_ms : start of the window in which it failed (ms), or None if it failed while being built
    """

    def __init__(self, message: str, *, solver: str, t_ms: float | None = None):
        self.solver = solver
        self.t_ms = t_ms
        super().__init__(message)


class ProbeError(PolyscaleError):
    """A probe's global part (combining the solvers' parts, head model, haemodynamics) failed."""

    def __init__(self, message: str, *, probe: str, t_ms: float | None = None):
        self.probe = probe
        self.t_ms = t_ms
        super().__init__(message)


class TransportError(PolyscaleError):
    """A transport could not start, lost a peer, or could not route a message."""


class ProtocolError(TransportError):
    """A message on the wire is malformed; the message names the offending field."""
