"""Coupling overhead of the external simulators under polyscale: one table.

Runs benchmarks/external_nest.py and, where they exist, external_neuron.py and external_tvb.py
(each times its simulator alone and under polyscale, in fresh subprocesses; see their
docstrings), and prints every row with its overhead relative to that simulator alone, in CPU
seconds of the simulation ("sim_s" of each part; wall time beside it; the goal: below 10%). A
simulator that is not installed is reported and skipped.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/external.py [--t-ms 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = (("NEST", "external_nest.py", "nest"), ("NEURON", "external_neuron.py", "neuron"),
         ("TVB", "external_tvb.py", "tvb"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t-ms", type=float, default=1000.0, help="simulated time (ms) of every part")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    table, everything = [], {}
    for label, script, module in PARTS:
        path = HERE / script
        if not path.is_file():
            print(f"{label}: {script} not present, skipped")
            continue
        if importlib.util.find_spec(module) is None:
            print(f"{label}: not installed (pip install 'polyscale[{module}]'), skipped")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            p = subprocess.run([sys.executable, str(path), "--t-ms", str(args.t_ms), "--repeat",
                                str(args.repeat), "--json", str(out)], capture_output=True, text=True)
            if p.returncode or not out.is_file():
                print(f"{label}: {script} failed:\n{p.stderr[-2000:]}")
                continue
            print(p.stdout.rstrip())
            res = json.loads(out.read_text())
        everything[label] = res
        rows = res["rows"]
        base = rows.get("alone", {}).get("sim_s")
        for variant, r in rows.items():
            over = f"{100 * (r['sim_s'] / base - 1):.1f}%" if base else "-"
            table.append((label, variant, r["sim_s"], over, r.get("wall_s")))
    print()
    print(f"{'simulator':<10}{'variant':<20}{'CPU s':>9}{'overhead':>10}{'wall s':>9}   "
          f"({args.t_ms:g} ms simulated)")
    for label, variant, s, over, wall in table:
        w = f"{wall:>9.3f}" if wall is not None else f"{'-':>9}"
        print(f"{label:<10}{variant:<20}{s:>9.3f}{over:>10}{w}")
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
