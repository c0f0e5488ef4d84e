"""Coupling overhead of the external simulators under polyscale: one table.

Runs benchmarks/external_nest.py and, where they exist, external_neuron.py and external_tvb.py
(each times its simulator alone and under polyscale, in fresh subprocesses; see their
docstrings), and prints every row with its overhead relative to that simulator alone, in CPU
seconds of the simulation ("sim_s" of each part; wall time beside it; the goal: below 10%). A
simulator that is not installed is reported and skipped.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/external.py [--t-ms 1000] [--repeat 3]

NEST also has "vs by hand" (the same Run pieces with the spike file read each window, as
NestNetwork reads it), and "interleaved": NEST alone and under polyscale (inproc) run in turn in
one process, so both see the same machine load. Below the table, polyscale's share measured inside one process
(the simulator's own stepping timed within the same run), which the load of a shared machine
tilts less than the rows, run at different moments; the goal is judged on it.
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
    ap.add_argument("--from-json", help="print the tables of an earlier --json instead of running")
    args = ap.parse_args()
    table, everything = [], {}
    earlier = json.loads(Path(args.from_json).read_text()) if args.from_json else None
    for label, script, module in PARTS:
        if earlier is not None:
            if label in earlier:
                everything[label] = res = earlier[label]
                args.t_ms = res["t_ms"]
                _rows(label, res, table)
            continue
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
            # (TVB logs its warnings to stdout)
            print("\n".join(ln for ln in p.stdout.rstrip().splitlines() if " - WARNING - " not in ln))
            res = json.loads(out.read_text())
        everything[label] = res
        _rows(label, res, table)
    _print(args, table, everything)


def _rows(label: str, res: dict, table: list) -> None:
    """The table's rows of one simulator's results: overhead vs alone and, for NEST, vs by hand."""
    rows = res["rows"]
    base = rows.get("alone", {}).get("sim_s")
    hand = rows.get("by-hand", {}).get("sim_s")
    for variant, r in rows.items():
        over = f"{100 * (r['sim_s'] / base - 1):.1f}%" if base else "-"
        over_hand = f"{100 * (r['sim_s'] / hand - 1):.1f}%" if hand else "-"
        table.append((label, variant, r["sim_s"], over, over_hand, r.get("wall_s")))


def _print(args, table: list, everything: dict) -> None:
    print()
    print(f"{'simulator':<10}{'variant':<17}{'CPU s':>8}{'vs alone':>10}{'vs by hand':>12}{'wall s':>8}"
          f"   ({args.t_ms:g} ms simulated; alone = one Simulate/continuerun/run)")
    for label, variant, s, over, over_hand, wall in table:
        w = f"{wall:>8.3f}" if wall is not None else f"{'-':>8}"
        print(f"{label:<10}{variant:<17}{s:>8.3f}{over:>10}{over_hand:>12}{w}")
    # the same-process shares: the simulator's own time and polyscale's around it, measured in
    # one process under the same load (the table's rows run at different moments)
    print()
    print("polyscale on top of the simulator's own stepping, measured in the same process "
          "(goal < 10%):")
    shares = []
    r = everything.get("NEST", {}).get("rows", {})
    for v in ("inproc", "inproc+input"):
        if r.get(v, {}).get("nest_run_s"):
            x = r[v]
            shares.append((f"NEST {v}", x["loop_s"] / x["nest_run_s"] - 1, "of nest.Run"))
            # what a by-hand loop pays too (reading and emptying the recorder), taken out
            shares.append((f"NEST {v} -read", (x["loop_s"] - x["read_s"] - x["empty_s"])
                           / x["nest_run_s"] - 1, "of nest.Run, less recorder"))
    r = everything.get("NEST", {}).get("interleaved")
    if r:
        shares.append(("NEST inproc interleaved", r["inproc_s"] / r["alone_s"] - 1, "of Simulate, interleaved"))
        for key, v in (("inproc_ratios", "inproc"), ("input_ratios", "inproc+input")):
            if r.get(key):   # the median of the rounds' paired ratios (external_nest.py --rounds)
                rs = sorted(r[key])
                med = rs[len(rs) // 2] if len(rs) % 2 else 0.5 * (rs[len(rs) // 2 - 1] + rs[len(rs) // 2])
                shares.append((f"NEST {v} paired", med - 1, f"of Simulate, median of {len(rs)} rounds"))
    r = everything.get("NEURON", {}).get("rows", {}).get("polyscale", {})
    if r.get("neuron_s"):
        shares.append(("NEURON polyscale", r["sim_s"] / r["neuron_s"] - 1, "of continuerun"))
    r = everything.get("TVB", {}).get("interleaved")
    if r:
        shares.append(("TVB adapter", r["adapter_s"] / r["alone_s"] - 1, "of TVB's run, interleaved"))
    for name, x, what in shares:
        print(f"  {name:<26}{100 * x:>7.1f}% {what:<36}{'met' if x < 0.10 else 'NOT met'}")
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
