"""polyscale: multiscale co-simulation of brain models.

The public facade. A model is built in a Python config::

    import polyscale as ps
    model = ps.Model(seed=1, t_stop_ms=100.0)
    model.solver("a", ps.solvers.LinearSystem(a=[[-0.1]], dt_ms=0.1))
    ...
    run = ps.run(model, out="run.h5")

and the run file is read back with ``ps.load("run.h5")``.
"""
__version__ = "0.1.0.dev0"

from . import adapters, probes, solvers  # noqa: E402
from .coordinator.config import load_model  # noqa: E402
from .coordinator.errors import (  # noqa: E402
    ConfigError,
    ModelError,
    PolyscaleError,
    ProbeError,
    ProtocolError,
    RunFileError,
    SolverError,
    TransportError,
)
from .coordinator.model import Model  # noqa: E402
from .coordinator.plan import Plan, make_plan  # noqa: E402
from .coordinator.registry import register  # noqa: E402
from .coordinator.runfile import Run, load  # noqa: E402
from .coordinator.scheduler import run  # noqa: E402
from .coordinator.signals import Port, Samples, SignalSpec, Spikes, WindowResult  # noqa: E402
from .coordinator.specs import (  # noqa: E402
    AdapterContext,
    AdapterSpec,
    ProbeInfo,
    ProbeSpec,
    SolverContext,
    SolverSpec,
)


def check(model: Model) -> Plan:
    """Validate ``model`` without running it; return its Plan or raise ModelError."""
    return make_plan(model)


__all__ = [
    "__version__",
    # building and running
    "Model", "run", "check", "load", "load_model", "Run", "Plan",
    "solvers", "adapters", "probes",
    # errors
    "PolyscaleError", "ModelError", "ConfigError", "RunFileError", "SolverError",
    "ProbeError", "TransportError", "ProtocolError",
    # for authors of solvers, adapters and probes
    "SolverSpec", "AdapterSpec", "ProbeSpec", "SolverContext", "AdapterContext", "ProbeInfo",
    "Port", "Spikes", "Samples", "SignalSpec", "WindowResult", "register",
]
