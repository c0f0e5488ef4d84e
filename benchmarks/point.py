"""Level II speed and memory: polyscale's PointNetwork against NEST on Brunel's network.

The model is examples/brunel.py (NEST's brunel_delta_nest with V_reset 10 mV, as in
../shared/reference/point): fixed in-degree 10 %, J 0.1 mV, g 5, eta 2, D 1.5 ms, dt 0.1 ms,
all spikes recorded, one Poisson generator per neuron. Each side runs in its own subprocess,
one thread (OMP_NUM_THREADS=1, NUMBA_NUM_THREADS=1, NEST local_num_threads 1), one after the
other for each scale, and reports:

* build: polyscale: building the solver (connectome drawn, CSR filled), timed inside the run;
  NEST: Create + Connect + Prepare (its connection sorting; the microcircuit's too).
* sim: polyscale: a full ``ps.run`` of the model (plan, windows, recording into an in-memory run
  file) minus the build timed inside that same run; NEST: ``Simulate``.
  Wall and CPU seconds (CPU matters on a loaded machine), each the minimum over ``--repeat``
  builds and runs in one process (default 3; ``--nest-repeat`` for NEST's long runs); "spread"
  is max - min of the sim CPU seconds, and the ratio line adds polyscale's worst sim CPU over
  NEST's best.
* rtf: simulation wall seconds per simulated second.
* peak: peak resident memory of the process (MB); B/syn: (peak - resident memory after imports)
  / synapses; polyscale's CSR alone is also given (csr B/syn).

polyscale's kernels are compiled (or loaded from numba's cache) by a tiny warm-up run first,
as a user would have them after a first run. NEST runs in its own virtual environment:

    python3 -m venv /tmp/nest-venv && /tmp/nest-venv/bin/pip install nest-simulator
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/point.py --nest-python /tmp/nest-venv/bin/python

Without --nest-python only the polyscale rows are run.

Brian2 (Brunel only) is an optional third row: Brian2 needs numpy < 2.4, so it runs from its own
virtual environment, named by ``--brian2-python`` or the environment variable
POLYSCALE_BRIAN2_PYTHON (the row is skipped with a message otherwise):

    python3 -m venv /tmp/brian2-venv && /tmp/brian2-venv/bin/pip install brian2 "numpy<2.4"
    POLYSCALE_BRIAN2_PYTHON=/tmp/brian2-venv/bin/python python benchmarks/point.py

It is the same model in cpp_standalone mode, one thread (openmp_threads 0): NeuronGroup with
exact integration, input discarded while refractory (as iaf_psc_delta), PoissonInput of C_E
sources per neuron at the NEST example's rate, fixed in-degree by ``sample`` (Brian2 draws
without replacement: no multapses, unlike NEST's and ours). Its columns: build = the binary's
setup (synapses created in C++) = its wall time minus the simulation's; sim = Brian2's own
run time of the simulation loop (wall); sim cpu is not separated ("-"; the binary's CPU time,
setup and simulation together, is printed below the row); peak = the binary's maximum
resident memory (GNU time), B/syn = peak / synapses. The C++ compilation (tens of seconds) is
printed on its own line, not counted in build.

``--build-memory`` (Brunel, polyscale only) prints the peak traced memory (tracemalloc) of each
build phase per synapse: each projection's pair drawing, the groups, the CSR.

``--model microcircuit`` runs examples/microcircuit.py (Potjans & Diesmann 2014, scales e.g. 0.1
and 1) instead; NEST's side is built in plain PyNEST from the same derived parameters
(``parameters()`` of the example: neurons, fixed_total_number synapse counts, PSC weights
redrawn within their sign, delays redrawn above half a step, Poisson drive, DC): the same model,
not the microcircuit package's code. E Hz / I Hz are then over all E / all I neurons.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE_THREAD = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}

RSS = '''
import resource
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
'''

# polyscale's build is timed inside each ps.run (PointNetwork.build wrapped): build and
# simulation come from the same run, so sim = run - build has no second, separately noisy build
TIMED_BUILD = '''
import time
from polyscale.solvers.point.network import PointNetwork
BUILDS = []
_build = PointNetwork.build
def _timed_build(self, ctx):
    t0, c0 = time.perf_counter(), time.process_time()
    solver = _build(self, ctx)
    BUILDS.append((time.perf_counter() - t0, time.process_time() - c0, solver.n_synapses,
                   solver.connectome_bytes()))
    return solver
PointNetwork.build = _timed_build
'''

NEST_SCRIPT = RSS + '''
import json, sys, time
import nest
scale, t_ms, seed, repeat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
reps = []
rss0 = None
for _ in range(repeat):
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": 1, "rng_seed": seed, "print_time": False})
    rss0 = rss_mb() if rss0 is None else rss0
    NE, NI = int(round(10000 * scale)), int(round(2500 * scale))
    CE, CI = int(0.1 * NE), int(0.1 * NI)
    J, g, eta, D, tau_m, theta = 0.1, 5.0, 2.0, 1.5, 20.0, 20.0
    p_rate = 1000.0 * eta * theta / (J * CE * tau_m) * CE
    params = {"C_m": 1.0, "tau_m": tau_m, "t_ref": 2.0, "E_L": 0.0, "V_reset": 10.0, "V_m": 0.0, "V_th": theta}
    t0, c0 = time.perf_counter(), time.process_time()
    ex = nest.Create("iaf_psc_delta", NE, params=params)
    inh = nest.Create("iaf_psc_delta", NI, params=params)
    noise = nest.Create("poisson_generator", params={"rate": p_rate})
    rec_e, rec_i = nest.Create("spike_recorder"), nest.Create("spike_recorder")
    nest.CopyModel("static_synapse", "excitatory", {"weight": J, "delay": D})
    nest.CopyModel("static_synapse", "inhibitory", {"weight": -g * J, "delay": D})
    nest.Connect(noise, ex, syn_spec="excitatory")
    nest.Connect(noise, inh, syn_spec="excitatory")
    nest.Connect(ex, rec_e, syn_spec="excitatory")
    nest.Connect(inh, rec_i, syn_spec="excitatory")
    nest.Connect(ex, ex + inh, {"rule": "fixed_indegree", "indegree": CE}, "excitatory")
    nest.Connect(inh, ex + inh, {"rule": "fixed_indegree", "indegree": CI}, "inhibitory")
    nest.Prepare()          # connection sorting etc. is NEST's build, as polyscale's CSR fill is ours
    nest.Cleanup()
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    nest.Simulate(t_ms)
    sim_s, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    reps.append({"build_s": build_s, "build_cpu_s": build_cpu, "sim_s": sim_s, "sim_cpu_s": sim_cpu})
n_syn = (CE + CI) * (NE + NI)          # the recurrent synapses (fixed in-degree)
print(json.dumps({"reps": reps, "peak_mb": peak_mb(), "rss0_mb": rss0, "n_synapses": n_syn,
                  "rate_e_hz": rec_e.n_events / NE / (t_ms / 1000.0),
                  "rate_i_hz": rec_i.n_events / NI / (t_ms / 1000.0), "version": nest.__version__}))
'''

POLYSCALE_SCRIPT = RSS + TIMED_BUILD + '''
import json, sys, time
sys.path.insert(0, sys.argv[4])
import polyscale as ps
from brunel import build
scale, t_ms, seed, repeat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
ps.run(build(scale=0.01, t_stop_ms=5.0))              # compile or load the kernels
rss0 = rss_mb()
model = build(scale=scale, t_stop_ms=t_ms, seed=seed)
spec = model.solvers["net"]
reps = []
for _ in range(repeat):
    BUILDS.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    run = ps.run(model)
    total_s, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    (build_s, build_cpu, n_syn, csr), = BUILDS
    reps.append({"build_s": build_s, "build_cpu_s": build_cpu, "sim_s": total_s - build_s,
                 "sim_cpu_s": total_cpu - build_cpu})
ne, ni = (spec.population(p).size for p in "EI")
print(json.dumps({"reps": reps, "peak_mb": peak_mb(), "rss0_mb": rss0,
                  "n_synapses": n_syn, "csr_bytes": csr,
                  "rate_e_hz": len(run.spikes("net", "E").times) / ne / (t_ms / 1000.0),
                  "rate_i_hz": len(run.spikes("net", "I").times) / ni / (t_ms / 1000.0),
                  "version": ps.__version__ if hasattr(ps, "__version__") else ""}))
'''

PD14_NEST_SCRIPT = RSS + '''
import json, runpy, sys, time
import numpy as np
import nest
scale, t_ms, seed, repeat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
mc = runpy.run_path(sys.argv[4] + "/microcircuit.py", run_name="pd14")
p = mc["parameters"](scale)
reps = []
rss0 = None
for _ in range(repeat):
    nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": mc["DT_MS"], "local_num_threads": 1, "rng_seed": seed, "print_time": False})
    rss0 = rss_mb() if rss0 is None else rss0
    t0, c0 = time.perf_counter(), time.process_time()
    pops, recs = [], []
    for i in range(8):
        pop = nest.Create("iaf_psc_exp", int(p["n"][i]), params={
            "C_m": mc["C_M"], "tau_m": mc["TAU_M"], "E_L": -65.0, "V_th": -50.0, "V_reset": -65.0, "t_ref": 2.0,
            "tau_syn_ex": mc["TAU_SYN"], "tau_syn_in": mc["TAU_SYN"], "I_e": float(p["dc_pA"][i])})
        pop.V_m = nest.random.normal(mc["V0_MEAN_MV"][i], mc["V0_STD_MV"][i])
        pg = nest.Create("poisson_generator", params={"rate": float(p["bg_rate_hz"][i])})
        nest.Connect(pg, pop, "all_to_all", {"weight": float(p["bg_weight_pA"]), "delay": 1.5})
        rec = nest.Create("spike_recorder")
        nest.Connect(pop, rec)
        pops.append(pop)
        recs.append(rec)
    for i in range(8):
        for j in range(8):
            n = int(p["synapses"][i, j])
            if n <= 0:
                continue
            w = float(p["weight_pA"][i, j])
            dm = mc["DELAY_MS"][j % 2]
            nest.Connect(pops[j], pops[i], {"rule": "fixed_total_number", "N": n}, {
                "weight": nest.math.redraw(nest.random.normal(mean=w, std=abs(w) * mc["WEIGHT_CV"]),
                                           min=0.0 if w > 0 else -np.inf, max=np.inf if w > 0 else 0.0),
                "delay": nest.math.redraw(nest.random.normal(mean=dm, std=dm * mc["DELAY_CV"]),
                                          min=0.5 * mc["DT_MS"], max=np.inf)})
    nest.Prepare()
    nest.Cleanup()
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    nest.Simulate(t_ms)
    sim_s, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    reps.append({"build_s": build_s, "build_cpu_s": build_cpu, "sim_s": sim_s, "sim_cpu_s": sim_cpu})
ne, ni = int(p["n"][0::2].sum()), int(p["n"][1::2].sum())
ce = sum(r.n_events for r in recs[0::2])
ci = sum(r.n_events for r in recs[1::2])
print(json.dumps({"reps": reps, "peak_mb": peak_mb(), "rss0_mb": rss0, "n_synapses": int(p["synapses"].sum()),
                  "rate_e_hz": ce / ne / (t_ms / 1000.0), "rate_i_hz": ci / ni / (t_ms / 1000.0),
                  "version": nest.__version__}))
'''


PD14_POLYSCALE_SCRIPT = RSS + TIMED_BUILD + '''
import json, runpy, sys, time
import polyscale as ps
scale, t_ms, seed, repeat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
mc = runpy.run_path(sys.argv[4] + "/microcircuit.py", run_name="pd14")
ps.run(mc["build"](scale=0.002, t_stop_ms=5.0))           # compile or load the kernels
rss0 = rss_mb()
model = mc["build"](scale=scale, t_stop_ms=t_ms, seed=seed)
spec = model.solvers["net"]
reps = []
for _ in range(repeat):
    BUILDS.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    run = ps.run(model)
    total_s, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    (build_s, build_cpu, n_syn, csr), = BUILDS
    reps.append({"build_s": build_s, "build_cpu_s": build_cpu, "sim_s": total_s - build_s,
                 "sim_cpu_s": total_cpu - build_cpu})
sizes = [p.size for p in spec.populations]
counts = [len(run.spikes("net", p.name).times) for p in spec.populations]
print(json.dumps({"reps": reps, "peak_mb": peak_mb(), "rss0_mb": rss0,
                  "n_synapses": n_syn, "csr_bytes": csr,
                  "rate_e_hz": sum(counts[0::2]) / sum(sizes[0::2]) / (t_ms / 1000.0),
                  "rate_i_hz": sum(counts[1::2]) / sum(sizes[1::2]) / (t_ms / 1000.0), "version": ""}))
'''


PROFILE_SCRIPT = RSS + '''
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[4])
import polyscale as ps
from polyscale.coordinator.seeding import rng_for
from polyscale.coordinator.specs import SolverContext
from brunel import build
scale, t_ms, seed, repeat = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
ps.run(build(scale=0.01, t_stop_ms=5.0))              # compile or load the kernels
model = build(scale=scale, t_stop_ms=t_ms, seed=seed)
spec = model.solvers["net"]
WIN = 100                                             # steps per window: ps.run's 10 ms
n_steps = int(round(t_ms / spec.dt_ms))


def solver():
    return spec.build(SolverContext("net", seed, rng_for(seed, "solver", "net")))


def kernel(s):
    """CPU seconds of the kernel alone over the run, spikes, synaptic events delivered."""
    indptr = s.csr()[0]
    out_deg = np.diff(indptr)
    ext = s._external(0, WIN, {})
    c0 = time.process_time()
    events = spikes = 0
    for _ in range(n_steps // WIN):
        count, _ = s._integrate(WIN, ext)
        spikes += count
        events += int(out_deg[s._spk_id[:count]].sum())
    return time.process_time() - c0, spikes, events


def advance(s):
    """CPU seconds of advance() over the run, and of the kernel calls within it (same run)."""
    tick = s.dt_ticks
    inner = [0.0]
    integrate = s._integrate

    def timed(*a):
        c = time.process_time()
        out = integrate(*a)
        inner[0] += time.process_time() - c
        return out
    s._integrate = timed
    c0 = time.process_time()
    for w in range(n_steps // WIN):
        s.advance(w * WIN * tick, (w + 1) * WIN * tick, {})
    return time.process_time() - c0, inner[0]


best = {}
for _ in range(repeat):
    t_k, spikes, events = kernel(solver())
    t_a, t_in = advance(solver())
    s = solver()
    s.indptr[:] = 0
    s.c_indptr[:] = 0                                 # no synapses: the neuron update alone
    t_n, spikes_n, _ = kernel(s)
    c0 = time.process_time()
    ps.run(model)
    t_run = time.process_time() - c0
    c0 = time.process_time()
    solver()
    t_build = time.process_time() - c0
    for k, v in (("kernel", t_k), ("advance", t_a), ("python", t_a - t_in), ("neurons", t_n), ("run", t_run),
                 ("build", t_build)):
        best[k] = min(best.get(k, v), v)
n = int(spec.populations[0].size + spec.populations[1].size)
print(json.dumps({**best, "spikes": spikes, "events": events, "spikes_unconnected": spikes_n,
                  "neuron_steps": n * n_steps, "windows": n_steps // WIN}))
'''


BUILD_MEMORY_SCRIPT = '''
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[4])
import polyscale as ps
from polyscale.coordinator.seeding import rng_for
from polyscale.coordinator.specs import SolverContext
from polyscale.solvers.point import connectivity, network
from brunel import build
scale, seed = float(sys.argv[1]), int(sys.argv[3])
ps.run(build(scale=0.01, t_stop_ms=5.0))              # compile or load the kernels
spec = build(scale=scale, t_stop_ms=10.0, seed=seed).solvers["net"]
phases = []


def mark(what):
    cur, peak = tracemalloc.get_traced_memory()
    phases.append((what, peak, cur))
    tracemalloc.reset_peak()


def wrap(cls, name):
    f = cls.__dict__[name]

    def g(*a, **k):
        mark(f"until {cls.__name__}.{name}")
        out = f(*a, **k)
        mark(f"in {cls.__name__}.{name}")
        return out
    setattr(cls, name, g)


for rule in set(connectivity.Rule._kinds.values()):
    if "pairs" in rule.__dict__:
        wrap(rule, "pairs")
for name in ("_connect", "_compact_groups", "_connect_plastic"):
    wrap(network.PointNetworkSolver, name)
tracemalloc.start()
solver = spec.build(SolverContext("net", seed, rng_for(seed, "solver", "net")))
mark("until the end of build")
print(json.dumps({"phases": phases, "n_synapses": solver.n_synapses}))
'''


BRIAN2_SCRIPT = '''
import json, os, shutil, sys, tempfile, time
scale, t_ms, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
import brian2 as b2
from brian2 import ms, mV
workdir = tempfile.mkdtemp(prefix="brian2_brunel_")
timefile = os.path.join(workdir, "time.txt")
b2.set_device("cpp_standalone", directory=workdir, build_on_run=False)
b2.prefs.devices.cpp_standalone.openmp_threads = 0
b2.prefs.devices.cpp_standalone.run_cmd_unix = ["/usr/bin/time", "-f", "%M %U %S %e", "-o", timefile, "./main"]
b2.defaultclock.dt = 0.1 * ms
b2.seed(seed)
NE, NI = int(round(10000 * scale)), int(round(2500 * scale))
CE, CI = int(0.1 * NE), int(0.1 * NI)
J, g, eta, D, tau_m, theta = 0.1 * mV, 5.0, 2.0, 1.5 * ms, 20.0 * ms, 20.0 * mV
p_rate = 1000.0 * eta * 20.0 / (0.1 * CE * 20.0) * CE          # Hz per neuron, as NEST's example
net = b2.NeuronGroup(NE + NI, "dv/dt = -v / tau_m : volt (unless refractory)", threshold="v >= theta",
                     reset="v = 10*mV", refractory=2.0 * ms, method="exact",
                     namespace={"tau_m": tau_m, "theta": theta})
E, I = net[:NE], net[NE:]
# input arriving while refractory is discarded, as NEST's iaf_psc_delta does
se = b2.Synapses(E, net, on_pre="v_post += J * int(not_refractory_post)", delay=D, namespace={"J": J})
si = b2.Synapses(I, net, on_pre="v_post += -g * J * int(not_refractory_post)", delay=D,
                 namespace={"J": J, "g": g})
se.connect(i=f"k for k in sample(N_pre, size={CE})")
si.connect(i=f"k for k in sample(N_pre, size={CI})")
drive = b2.PoissonInput(net, "v", N=CE, rate=p_rate / CE * b2.Hz, weight="J * int(not_refractory)")
me, mi = b2.SpikeMonitor(E, record=False), b2.SpikeMonitor(I, record=False)
b2.run(t_ms * ms, namespace={"J": J})
t0 = time.perf_counter()
b2.device.build(directory=workdir, compile=True, run=False)
compile_s = time.perf_counter() - t0
b2.device.run(directory=workdir, with_output=False)
peak_kb, usr, sys_, wall = (float(x) for x in open(timefile).read().split()[-4:])
sim_s = b2.device._last_run_time
print(json.dumps({"build_s": wall - sim_s, "build_cpu_s": None, "sim_s": sim_s, "sim_cpu_s": None,
                  "binary_cpu_s": usr + sys_, "compile_s": compile_s, "peak_mb": peak_kb / 1024.0, "rss0_mb": 0.0,
                  "n_synapses": (CE + CI) * (NE + NI), "rate_e_hz": int(me.num_spikes) / NE / (t_ms / 1000.0),
                  "rate_i_hz": int(mi.num_spikes) / NI / (t_ms / 1000.0), "version": b2.__version__}))
shutil.rmtree(workdir, ignore_errors=True)
'''


def run_script(python: str, script: str, scale: float, t_ms: float, seed: int, repeat: int = 1) -> dict:
    """Write ``script`` to a temporary file, run it with ``python`` (one thread) on
    ``scale t_ms seed examples_dir repeat`` and return the JSON object its last stdout line holds."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run([python, path, str(scale), str(t_ms), str(seed), str(HERE.parent / "examples"),
                              str(repeat)],
                             capture_output=True, text=True, env={**os.environ, **ONE_THREAD}, check=False)
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise RuntimeError(f"{python} failed at scale {scale}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_side(python: str, script: str, scale: float, t_ms: float, seed: int, repeat: int = 1) -> dict:
    """Run one side in a subprocess; ``repeat`` builds and runs in it. The result's build/sim
    columns are the minimum over the repeats (the least disturbed by other load), with the
    spread (max - min) and every repeat's values kept."""
    return summarize(run_script(python, script, scale, t_ms, seed, repeat))


def summarize(r: dict) -> dict:
    """Fold a side's repeats (``reps``) into min and spread (max - min) per time column."""
    reps = r.get("reps") or [{k: r[k] for k in ("build_s", "build_cpu_s", "sim_s", "sim_cpu_s")}]
    for key in ("build_s", "build_cpu_s", "sim_s", "sim_cpu_s"):
        vals = [x[key] for x in reps if x[key] is not None]
        r[key] = min(vals) if vals else None
        r[key + "_spread"] = (max(vals) - min(vals)) if vals else None
    r["reps"] = reps
    return r


def row(name: str, scale: float, t_ms: float, r: dict) -> str:
    rtf = r["sim_s"] / (t_ms / 1000.0)
    bps = (r["peak_mb"] - r["rss0_mb"]) * 2**20 / r["n_synapses"]
    csr = f"{r['csr_bytes'] / r['n_synapses']:.1f}" if "csr_bytes" in r else "-"
    cpu = "-" if r["sim_cpu_s"] is None else f"{r['sim_cpu_s']:.2f}"
    bcpu = "-" if r["build_cpu_s"] is None else f"{r['build_cpu_s']:.2f}"
    spread = "-" if r["sim_cpu_s_spread"] is None else f"{r['sim_cpu_s_spread']:.2f}"
    return (f"{name:<10} {scale:>5g} {r['n_synapses'] / 1e6:>8.2f} {r['build_s']:>8.2f} {bcpu:>9} "
            f"{r['sim_s']:>8.2f} {cpu:>8} {spread:>7} {len(r['reps']):>3} {rtf:>7.2f} {r['peak_mb']:>8.0f} {bps:>6.1f} {csr:>6} "
            f"{r['rate_e_hz']:>6.2f} {r['rate_i_hz']:>6.2f}")


def profile(args) -> int:
    print(f"polyscale Brunel profile, {args.t_ms:g} ms, one thread, CPU s (min of {args.repeat}); "
          f"windows of 10 ms as ps.run's")
    for scale in args.scales:
        r = run_script(sys.executable, PROFILE_SCRIPT, scale, args.t_ms, args.seed, args.repeat)
        deliver = r["kernel"] - r["neurons"]
        python = r["python"]
        rest = r["run"] - r["build"] - r["advance"]
        print(f"scale {scale:g}: run {r['run']:.3f} = build {r['build']:.3f} + neuron update {r['neurons']:.3f} "
              f"({r['neurons'] / r['neuron_steps'] * 1e9:.2f} ns per neuron-step) + delivery {deliver:.3f} "
              f"({deliver / max(r['events'], 1) * 1e9:.2f} ns per synaptic event, {r['events'] / 1e6:.0f} M events, "
              f"{r['spikes']} spikes) + Python per window {python:.3f} ({python / r['windows'] * 1e6:.0f} us "
              f"x {r['windows']}) + plan and recording {rest:.3f}")
        print(f"          (the neuron update is timed without synapses, where {r['spikes_unconnected']} "
              f"spikes fire; delivery is the difference, so it carries the spike handling)")
    return 0


def build_memory(args) -> int:
    """Peak traced memory (tracemalloc: numpy's and Python's allocations) in each phase of
    polyscale's Brunel build, per synapse: where the build's peak comes from."""
    print(f"polyscale Brunel build memory (tracemalloc), bytes per synapse: peak within each phase, "
          f"then held at its end")
    for scale in args.scales:
        r = run_script(sys.executable, BUILD_MEMORY_SCRIPT, scale, args.t_ms, args.seed)
        n = r["n_synapses"]
        print(f"scale {scale:g} ({n / 1e6:.2f} M synapses): build peak "
              f"{max(p for _, p, _ in r['phases']) / n:.2f} B/syn")
        for what, peak, cur in r["phases"]:
            print(f"  {what:<42} peak {peak / n:6.2f}  then {cur / n:6.2f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--t-ms", type=float, default=1000.0, help="simulated time (ms)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--nest-python", help="python of a venv with nest-simulator installed")
    ap.add_argument("--brian2-python", default=os.environ.get("POLYSCALE_BRIAN2_PYTHON"),
                    help="python of a venv with brian2 (and numpy<2.4); default $POLYSCALE_BRIAN2_PYTHON")
    ap.add_argument("--repeat", type=int, default=3,
                    help="builds and runs per side and scale (in one process each); min and spread reported")
    ap.add_argument("--nest-repeat", type=int, default=None,
                    help="repeats for NEST (default: --repeat; NEST's runs are long)")
    ap.add_argument("--profile", action="store_true",
                    help="polyscale only (Brunel): where the simulation time goes (CPU, min over --repeat): "
                         "neuron update (the kernel with no synapses), delivery (kernel - that), Python per "
                         "window (advance - its kernel calls), plan and recording (run - build - advance)")
    ap.add_argument("--build-memory", action="store_true",
                    help="polyscale only (Brunel): peak traced memory per build phase, bytes per synapse")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--model", choices=["brunel", "microcircuit"], default="brunel")
    args = ap.parse_args(argv)
    pd14 = args.model == "microcircuit"
    if args.profile:
        return profile(args)
    if args.build_memory:
        return build_memory(args)
    ps_script = PD14_POLYSCALE_SCRIPT if pd14 else POLYSCALE_SCRIPT
    nest_script = PD14_NEST_SCRIPT if pd14 else NEST_SCRIPT
    head = (f"{'simulator':<10} {'scale':>5} {'Msyn':>8} {'build s':>8} {'build cpu':>9} {'sim s':>8} "
            f"{'sim cpu':>8} {'spread':>7} {'n':>3} "
            f"{'rtf':>7} {'peak MB':>8} {'B/syn':>6} {'csr':>6} {'E Hz':>6} {'I Hz':>6}")
    print(f"{'Potjans-Diesmann microcircuit' if pd14 else 'Brunel delta network'}, {args.t_ms:g} ms, "
          f"dt 0.1 ms, one thread per process")
    print(head)
    brian2 = args.brian2_python if not pd14 else None
    if not args.brian2_python:
        print("(Brian2 row skipped: set POLYSCALE_BRIAN2_PYTHON or --brian2-python to the python of a venv "
              "with brian2 and numpy<2.4)")
    elif pd14:
        print("(Brian2 row skipped: only the Brunel model has a Brian2 version here)")
    results = []
    for scale in args.scales:
        ps_r = run_side(sys.executable, ps_script, scale, args.t_ms, args.seed, args.repeat)
        print(row("polyscale", scale, args.t_ms, ps_r), flush=True)
        entry = {"scale": scale, "polyscale": ps_r}
        if args.nest_python:
            nest_r = run_side(args.nest_python, nest_script, scale, args.t_ms, args.seed,
                              args.nest_repeat or args.repeat)
            print(row(f"NEST {nest_r['version']}", scale, args.t_ms, nest_r), flush=True)
            entry["nest"] = nest_r
            print(f"{'ratio':<10} {scale:>5g} polyscale/NEST: build {ps_r['build_s'] / nest_r['build_s']:.3f}, "
                  f"sim {ps_r['sim_s'] / nest_r['sim_s']:.3f} (cpu {ps_r['sim_cpu_s'] / nest_r['sim_cpu_s']:.3f}; "
                  f"worst polyscale cpu / best NEST cpu "
                  f"{max(x['sim_cpu_s'] for x in ps_r['reps']) / nest_r['sim_cpu_s']:.3f}), "
                  f"build cpu {ps_r['build_cpu_s'] / nest_r['build_cpu_s']:.3f}, "
                  f"peak memory {ps_r['peak_mb'] / nest_r['peak_mb']:.3f}", flush=True)
        if brian2:
            b2_r = run_side(brian2, BRIAN2_SCRIPT, scale, args.t_ms, args.seed)
            print(row(f"Brian2 {b2_r['version']}", scale, args.t_ms, b2_r), flush=True)
            print(f"{'':<10} {scale:>5g} Brian2: C++ compilation {b2_r['compile_s']:.1f} s (not in build); "
                  f"binary CPU (setup + sim) {b2_r['binary_cpu_s']:.2f} s; polyscale/Brian2 sim "
                  f"{ps_r['sim_s'] / b2_r['sim_s']:.3f}", flush=True)
            entry["brian2"] = b2_r
        results.append(entry)
    if args.json:
        Path(args.json).write_text(json.dumps({"t_ms": args.t_ms, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
