"""solvers/_jit.py and the kernels' use of it: each jitted function is compiled once per
argument types.

numba types a call made from compiled code with a literal argument (``f(x, False)``, or a
variable that starts as ``0`` or ``True``) as Literal[...] and compiles the callee a second time
for it, besides the version for the variable's own type. On the cell kernel's per-block function
that doubled the compile time of every generated kernel (each some tens of seconds); on the
network kernels it recompiled dfun, the fused Jansen-Rit steps and the AdEx RK4. First runs
and a CI run with an empty cache pay every such compile.
"""
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json
import numpy as np
from numba.core import types
from polyscale.coordinator.specs import SolverContext
from polyscale.solvers.cell import _kernels as CK
from polyscale.solvers.cell.population import ball_and_stick_population
from polyscale.solvers.mass import Connectome, JansenRit, RegionNetwork, SigmoidalJansenRit
from polyscale.solvers.mass import _kernels as MK
from polyscale.solvers.point import AeifCondExp, PointNetwork, Population
from polyscale.solvers.point import _kernels as PK

ctx = SolverContext("n", 0, np.random.default_rng(0))
conn = Connectome(weights=np.array([[0.0, 1.0], [1.0, 0.0]]), tract_lengths_mm=np.full((2, 2), 3.0),
                  speed_mm_per_ms=3.0)
# heun: the fused Jansen-Rit step sharing the coupling's exponentials; rk4: dfun four times
for integrator in ("heun", "rk4"):
    s = RegionNetwork(model=JansenRit(), connectome=conn, coupling=SigmoidalJansenRit(),
                      integrator=integrator, dt_ms=0.1).build(ctx)
    s.advance(0, s.dt_ticks * 20, {})
s = PointNetwork(populations=(Population(name="P", size=2, model=AeifCondExp()),), dt_ms=0.1).build(ctx)
s.advance(0, s.dt_ticks * 20, {})
s = ball_and_stick_population(n=3, dend_nseg=3).build(ctx)
s.advance(0, s.dt_ticks * 20, {})
out = {}
for mod, names in ((MK, ("dfun", "_jr_heun", "_jr_fast")), (PK, ("_rk4", "_cond_rhs")),
                   (CK, ("cell_advance",))):
    for name in names:
        sigs = getattr(mod, name).signatures
        out[name] = {"n": len(sigs), "literal": [str(sig) for sig in sigs
                                                 if any(isinstance(t, types.Literal) for t in sig)]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_kernels_compile_their_helpers_once_for_typed_flags(tmp_path):
    """In a process with an empty numba cache (so that every callee is typed and compiled here,
    not loaded with its caller's machine code), run the paths that pass flags to helpers: no
    helper has a signature with a literal argument, and each has exactly one."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               POLYSCALE_KERNEL_CACHE=str(tmp_path / "kernels"))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for name, got in out.items():
        assert got["literal"] == [], (name, got["literal"])
        assert got["n"] == 1, (name, got)
