"""First-run cost: how long each level's kernels take to compile on a machine with empty caches.

numba compiles every kernel the first time a process on this machine calls it with new types,
and caches the machine code (``cache=True``; generated cell kernels under
``$POLYSCALE_KERNEL_CACHE``); every later run loads it in milliseconds. A user's first run of a
model, and a CI run on a fresh clone, pay every compile. Each row runs in a fresh subprocess
with empty caches: a solver of the flagship (examples/multiscale_column.py) or of the L5 example
(the Hay et al. 2011 mechanism set, a generated kernel) is built and advanced 20 steps twice;
"first" is the first advance (compile + run), "again" the second (run only), both wall seconds.
The last row is the whole flagship run for 5 ms through ``polyscale.run``, then the same run in a
second process that finds the caches filled.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/compile.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = (("cells (built-in kernel: hh, pas)", "multiscale_column.py", "CellPopulation"),
        ("cells (generated: 11 Hay mechanisms)", "l5_cells.py", "CellPopulation"),
        ("point network", "multiscale_column.py", "PointNetwork"),
        ("region network (neural masses)", "multiscale_column.py", "RegionNetwork"))

SOLVER = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from polyscale.coordinator.config import load_model
from polyscale.coordinator.specs import SolverContext
example, kind = sys.argv[1], sys.argv[2]
m = load_model(Path(sys.argv[3]) / "examples" / example, {"t_stop_ms": 5.0})
name, spec = next((n, s) for n, s in m.solvers.items() if type(s).__name__ == kind)
s = spec.build(SolverContext(name, 0, np.random.default_rng(0)))
out = []
for k in range(2):
    t = time.perf_counter()
    s.advance(20 * k * s.dt_ticks, 20 * (k + 1) * s.dt_ticks, {})
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""

WHOLE = r"""
import json, sys, time
from pathlib import Path
t = time.perf_counter()
import polyscale as ps
from polyscale.coordinator.config import load_model
ps.run(load_model(Path(sys.argv[1]) / "examples" / "multiscale_column.py", {"t_stop_ms": 5.0}))
print(json.dumps([time.perf_counter() - t]))
"""


def run(code: str, args: list[str], env: dict) -> list[float]:
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{'':40s} {'first s':>9s} {'again s':>9s}")
    for label, example, kind in ROWS:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"),
                       POLYSCALE_KERNEL_CACHE=str(Path(tmp) / "kernels"))
            first, again = run(SOLVER, [example, kind, str(ROOT)], env)
        print(f"{label:40s} {first:9.1f} {again:9.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"),
                   POLYSCALE_KERNEL_CACHE=str(Path(tmp) / "kernels"))
        cold = run(WHOLE, [str(ROOT)], env)[0]
        warm = run(WHOLE, [str(ROOT)], env)[0]
    print(f"{'flagship, 5 ms through ps.run (process)':40s} {cold:9.1f} {warm:9.3f}")


if __name__ == "__main__":
    main()
