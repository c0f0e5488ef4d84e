"""NEURON reference traces for the cell solver's mechanism files (tests/test_cell_mechanisms.py).

Run from the repository root: ``.venv/bin/python tests/data/cell_mech_reference.py``. It compiles
tests/data/mod/*.mod with nrnivmodl in a temporary directory, runs every protocol of
:data:`PROTOCOLS` in NEURON (fixed step, backward Euler, dt 0.025 ms) and writes
tests/data/cell_mech_reference.npz: per protocol the soma and dendrite voltages and cai every
0.1 ms (float32) and the soma's spike times (0 mV upward crossings, interpolated, float64).

The same file builds the polyscale side of each protocol (:func:`polyscale_run`), so the test
and the reference cannot drift apart.

Protocols
- hay_soma: one soma section (20 x 20 um) with Hay et al. (2011)'s somatic channel set and
  values (L5PCbiophys3.hoc: pas, Ih, Ca_HVA, Ca_LVAst, CaDynamics_E2, SK_E2, SKv3_1, K_Pst,
  K_Tst, Nap_Et2, NaTa_t; ek -85 mV, ena 50 mV, 34 C), a current step: spikes with calcium
  accumulating (eca from Nernst) and SK adaptation (0.4 nA).
- ih_ball_stick: soma (hh, Ih) and a 700 um dendrite (pas; Ih growing exponentially with path
  distance as Hay's apical gradient; a Ca_LVAst/Ca_HVA hot zone at 400-560 um (no segment centre on its edges); CaDynamics_E2,
  SK_E2, Im, NaTa_t, SKv3_1), a hyperpolarising then a depolarising step at the soma, and AMPA,
  NMDA (Mg block, 1 mM) and GABA-A synapses at dend(0.8) fed spikes at fixed times; 16.3 C
  (hh does not fire at 34 C; the Hay channels have their own fixed 34 C rates).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "cell_mech_reference.npz"
DT = 0.025
DECIMATE = 4          # keep every 4th sample (0.1 ms)
EK, ENA = -85.0, 50.0

HAY_SOMA = {   # L5PCbiophys3.hoc, somatic
    "pas": {"g": 0.0000338, "e": -90.0},
    "Ih": {"gIhbar": 0.0002},
    "Ca_LVAst": {"gCa_LVAstbar": 0.00343},
    "Ca_HVA": {"gCa_HVAbar": 0.000992},
    "SKv3_1": {"gSKv3_1bar": 0.693},
    "SK_E2": {"gSK_E2bar": 0.0441},
    "K_Tst": {"gK_Tstbar": 0.0812},
    "K_Pst": {"gK_Pstbar": 0.00223},
    "Nap_Et2": {"gNap_Et2bar": 0.00172},
    "NaTa_t": {"gNaTa_tbar": 2.04},
    "CaDynamics_E2": {"decay": 460.0, "gamma": 0.000501},
}
DEND = {       # after L5PCbiophys3.hoc, apical (values rounded)
    "pas": {"g": 0.0000589, "e": -90.0},
    "CaDynamics_E2": {"decay": 122.0, "gamma": 0.000509},
    "SK_E2": {"gSK_E2bar": 0.0012},
    "Im": {"gImbar": 0.000143},
    "NaTa_t": {"gNaTa_tbar": 0.0213},
    "SKv3_1": {"gSKv3_1bar": 0.00261},
}
IH_GRADIENT = (0.0002, -0.8696, 2.087, 323.0)            # gIhbar * (a + b exp(d / 323 um))
HOT_ZONE = (400.0, 560.0, {"Ca_LVAst": (0.0187, 0.01), "Ca_HVA": (0.000555, 0.1)})  # hot value, factor outside
SYNAPSES = (  # (kind, tau1, tau2, e, mg, spike times ms, weight uS)
    ("AMPA", 0.2, 1.7, 0.0, 0.0, (60.0, 62.0, 64.0, 270.0), 0.004),
    ("NMDA", 0.29, 43.0, 0.0, 1.0, (60.0, 62.0, 64.0, 270.0), 0.003),
    ("GABAA", 0.2, 8.0, -80.0, 0.0, (90.0, 275.0), 0.01),
)

PROTOCOLS = {
    "hay_soma": {"t_stop": 300.0, "v_init": -80.0, "celsius": 34.0,
                 "clamps": ((50.0, 200.0, 0.4),)},
    "ih_ball_stick": {"t_stop": 300.0, "v_init": -75.0, "celsius": 16.3,
                      "clamps": ((20.0, 100.0, -0.3), (150.0, 100.0, 0.6))},
}
UNIT = {"g": "g_S_cm2", "e": "e_mV", "decay": "decay_ms", "gamma": "gamma"}


def spike_times(t: np.ndarray, v: np.ndarray, thr: float = 0.0) -> np.ndarray:
    """Upward crossings of thr (mV), linearly interpolated between samples (ms)."""
    k = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    return t[k] + (thr - v[k]) / (v[k + 1] - v[k]) * (t[k + 1] - t[k])


# ----------------------------------------------------------------------------------------------
# NEURON
def compile_mods(dest: Path) -> Path:
    """nrnivmodl on tests/data/mod in ``dest``; the directory to nrn_load_dll from."""
    for f in (HERE / "mod").glob("*.mod"):
        shutil.copy(f, dest)
    nrnivmodl = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
    subprocess.run([nrnivmodl], cwd=dest, check=True, capture_output=True, timeout=600)
    return dest


def neuron_run(name: str, moddir: Path) -> dict:
    from neuron import h
    lib = next(Path(moddir).glob("*/.libs/libnrnmech.so"), None) or next(Path(moddir).glob("*/libnrnmech.so"))
    if not hasattr(h, "Ih"):
        h.nrn_load_dll(str(lib))
    h.load_file("stdrun.hoc")
    p = PROTOCOLS[name]
    h.celsius = p["celsius"]
    soma = h.Section(name="soma")
    soma.L = soma.diam = 20.0
    secs = [soma]
    if name == "hay_soma":
        for mech, pars in HAY_SOMA.items():
            soma.insert(mech)
            for k, val in pars.items():
                setattr(soma(0.5), f"{k}_{mech}", val)
        dend = None
    else:
        soma.insert("hh")
        soma.insert("Ih")
        soma(0.5).gIhbar_Ih = 0.0001
        dend = h.Section(name="dend")
        dend.L, dend.diam, dend.nseg = 700.0, 2.0, 35
        dend.connect(soma(1.0))
        secs.append(dend)
        for mech in ("Ih", "Ca_LVAst", "Ca_HVA", *DEND):
            dend.insert(mech)
        for seg in dend:
            for mech, pars in DEND.items():
                for k, val in pars.items():
                    setattr(seg, f"{k}_{mech}", val)
            d = h.distance(soma(0.0), seg)
            g0, a, b, lam = IH_GRADIENT
            seg.gIhbar_Ih = g0 * (a + b * math.exp(d / lam))
            lo, hi, ch = HOT_ZONE
            for mech, (hot, out) in ch.items():
                setattr(seg, f"g{mech}bar_{mech}", hot * (1.0 if lo <= d <= hi else out))
    for sec in secs:
        sec.Ra, sec.cm = 100.0, 1.0
        if h.ismembrane("k_ion", sec=sec):
            sec.ek = EK
        if h.ismembrane("na_ion", sec=sec):
            sec.ena = ENA
    clamps = []
    for delay, dur, amp in p["clamps"]:
        c = h.IClamp(soma(0.5))
        c.delay, c.dur, c.amp = delay, dur, amp
        clamps.append(c)
    syns, ncs = [], []
    if dend is not None:
        for kind, tau1, tau2, e, mg, times, w in SYNAPSES:
            s = h.NMDA_Mg(dend(0.8)) if mg > 0 else h.Exp2Syn(dend(0.8))
            s.tau1, s.tau2, s.e = tau1, tau2, e
            if mg > 0:
                s.mg = mg
            nc = h.NetCon(None, s)
            nc.weight[0] = w
            syns.append(s)
            ncs.append((nc, times))

    def queue():
        for nc, times in ncs:
            for t in times:
                nc.event(t)
    fih = h.FInitializeHandler(queue)  # noqa: F841 (kept alive until the run ends)
    rec = {"t": h.Vector().record(h._ref_t), "v_soma": h.Vector().record(soma(0.5)._ref_v)}
    ca_seg = soma(0.5) if dend is None else dend(475.0 / 700.0)
    rec["cai"] = h.Vector().record(ca_seg._ref_cai)
    if dend is not None:
        rec["v_dend"] = h.Vector().record(dend(0.8)._ref_v)
    h.dt = DT
    h.steps_per_ms = 1.0 / DT
    h.secondorder = 0
    h.usetable_hh = 0      # exact hh rates, the arithmetic polyscale does (NEURON's 1 mV table off)
    h.finitialize(p["v_init"])
    h.continuerun(p["t_stop"])
    out = {k: np.array(v) for k, v in rec.items()}
    n = int(round(p["t_stop"] / DT))
    out = {k: v[:n] for k, v in out.items()}
    out["spikes"] = spike_times(out["t"], out["v_soma"])
    return out


def neuron_run_spec(spec, moddir: Path, t_stop_ms: float) -> np.ndarray:
    """Any one-cell-type CellPopulation (morphology, Insert placements with Distance profiles,
    IClamps; ``ions`` placements set the sections' ena / ek) built and run
    in NEURON; v at soma(0.5) of the first cell every step (n_steps,). Used on the L5 cell of
    examples/l5_cells.py (tests/test_l5_cells.py)."""
    from neuron import h
    lib = next(Path(moddir).glob("*/.libs/libnrnmech.so"), None) or next(Path(moddir).glob("*/libnrnmech.so"))
    if not hasattr(h, "Ih"):
        h.nrn_load_dll(str(lib))
    h.load_file("stdrun.hoc")
    h.celsius = spec.celsius
    names = {"g_S_cm2": "g", "e_mV": "e", "decay_ms": "decay", "gamma": "gamma", "depth_um": "depth",
             "minCai_mM": "minCai", "zTau_ms": "zTau", "ehcn_mV": "ehcn"}
    secs = {}
    for sd in spec.morphology.sections:
        sec = h.Section(name=sd.name)
        for x, y, z, d in sd.points:
            h.pt3dadd(x, y, z, d, sec=sec)
        sec.nseg, sec.Ra, sec.cm = sd.nseg, spec.ra_ohm_cm, spec.cm_uF_cm2
        if sd.parent is not None:
            sec.connect(secs[sd.parent](sd.parent_x))
        secs[sd.name] = sec
    root = secs[spec.morphology.sections[0].name]
    for ins in spec.mechanisms:
        for sd in spec.morphology.sections:
            if ins.where not in ("all", sd.name, sd.kind):
                continue
            sec = secs[sd.name]
            sec.insert(ins.mechanism)
            for seg in sec:
                d = h.distance(root(0.0), seg)
                for pname, val in ins.params.items():
                    f = 1.0
                    for prof in ins.distribution:
                        if prof.param == pname:
                            f = float(prof.factor([d])[0])
                    setattr(seg, f"{names.get(pname, pname.replace('_S_cm2', ''))}_{ins.mechanism}", val * f)
    for ion in spec.ions:
        for sd in spec.morphology.sections:
            if ion.where not in ("all", sd.name, sd.kind):
                continue
            sec = secs[sd.name]
            for seg in sec:
                d = h.distance(root(0.0), seg)
                for pname, val in ion.params.items():
                    val = val[0] if isinstance(val, tuple) else val     # the first cell's value
                    f = 1.0
                    for prof in ion.distribution:
                        if prof.param == pname:
                            f = float(prof.factor([d])[0])
                    # NEURON has the ion only where a mechanism uses it
                    if h.ismembrane(f"{pname[1:-3]}_ion", sec=sec):
                        setattr(seg, pname[:-3], val * f)
    clamps = []
    for c in spec.iclamps:
        ic = h.IClamp(secs[c.section](c.x))
        ic.delay, ic.dur, ic.amp = c.delay_ms, c.dur_ms, c.amp_nA
        clamps.append(ic)
    rec = h.Vector().record(secs[spec.soma](0.5)._ref_v)
    h.dt = spec.dt_ms
    h.steps_per_ms = 1.0 / spec.dt_ms
    h.secondorder = 0
    h.finitialize(spec.v_init_mV)
    h.continuerun(t_stop_ms)
    return np.array(rec)[:int(round(t_stop_ms / spec.dt_ms))]


#: voltage-gated Hay channels whose gates neuron_gate_steps samples
GATED = ("Ih", "Ca_HVA", "Ca_LVAst", "Im", "NaTa_t", "Nap_Et2", "SKv3_1", "K_Pst", "K_Tst")
#: the removable singularities the .mod files nudge v off (mV), sampled exactly
SINGULAR_MV = (-154.9, -66.0, -64.4, -38.0, -27.0, -17.0)


def neuron_gate_steps(moddir: Path, v_mV, cai_mM, dt_ms: float = DT) -> dict:
    """Each gating state of the .mod files sampled in NEURON over a grid, one 1-segment section per
    mechanism (cm 1e6 uF/cm2, so v hardly moves in a step):

    - ``{mech}/init``: states after ``finitialize(v)`` for v in v_mV (the mod's INITIAL: steady
      state at exactly v, singular points included), shape (len(v_mV), n_states);
    - ``{mech}/step``: from ``finitialize(v - 20)``, v set to v and one fadvance(dt):
      columns v_used (mV, the v NEURON's state update saw), states before, states after;
    - ``SK_E2/init`` over cai_mM (z at steady state) and ``SK_E2/step`` (cai, z before, z after)
      from steady state at 10 x cai.
    """
    from neuron import h
    lib = next(Path(moddir).glob("*/.libs/libnrnmech.so"), None) or next(Path(moddir).glob("*/libnrnmech.so"))
    if not hasattr(h, "Ih"):
        h.nrn_load_dll(str(lib))
    h.celsius, h.dt, h.secondorder = 34.0, dt_ms, 0
    secs, out = {}, {}
    for mech in (*GATED, "SK_E2"):
        s = h.Section(name=mech)
        s.L = s.diam = 10.0
        s.nseg, s.cm = 1, 1e6
        s.insert(mech)
        secs[mech] = s
    states = {m: [n for n in ("m", "h", "z") if hasattr(secs[m](0.5), f"{n}_{m}")] for m in secs}

    def read(m):
        return [getattr(secs[m](0.5), f"{n}_{m}") for n in states[m]]
    init = {m: [] for m in GATED}
    step = {m: [] for m in GATED}
    for v in v_mV:
        h.finitialize(float(v))
        for m in GATED:
            init[m].append(read(m))
        h.finitialize(float(v) - 20.0)
        before = {m: read(m) for m in GATED}
        for m in GATED:
            secs[m](0.5).v = float(v)
        h.fadvance()
        for m in GATED:
            step[m].append([secs[m](0.5).v, *before[m], *read(m)])
    for m in GATED:
        out[f"{m}/init"], out[f"{m}/step"] = np.array(init[m]), np.array(step[m])
    sk_init, sk_step = [], []
    sk = secs["SK_E2"](0.5)
    for c in cai_mM:
        # no mechanism writes cai in this section: NEURON's ion style keeps it a parameter,
        # which finitialize leaves as set
        sk.cai = float(c)
        h.finitialize(-70.0)
        sk_init.append(read("SK_E2"))
        sk.cai = 10.0 * float(c)
        h.finitialize(-70.0)
        z0 = read("SK_E2")
        sk.cai = float(c)
        h.fadvance()
        sk_step.append([sk.cai, *z0, *read("SK_E2")])
    out["SK_E2/init"], out["SK_E2/step"] = np.array(sk_init), np.array(sk_step)
    return out


# ----------------------------------------------------------------------------------------------
# polyscale
def polyscale_spec(name: str):
    """(CellPopulation of one cell, inputs for advance) for the protocol."""
    from polyscale.solvers.cell.mechanisms import Distance, Exp2Syn, IClamp, Insert, Ions
    from polyscale.solvers.cell.morphology import Morphology, cylinder
    from polyscale.solvers.cell.population import CellPopulation

    def ins(mech, pars, where, dist=()):
        params = {}
        for k, v in pars.items():
            params[UNIT.get(k, k if k.endswith("_S_cm2") else f"{k}_S_cm2")] = v
        return Insert(mechanism=mech, where=where, params=params, distribution=dist)

    p = PROTOCOLS[name]
    soma = cylinder("soma", 20.0, 20.0, kind="soma", start=(0.0, 0.0, -10.0))
    clamps = tuple(IClamp(section="soma", delay_ms=d, dur_ms=u, amp_nA=a) for d, u, a in p["clamps"])
    if name == "hay_soma":
        morph = Morphology(sections=(soma,))
        mechs = tuple(ins(m, pars, "soma") for m, pars in HAY_SOMA.items())
        syns = ()
    else:
        dend = cylinder("dend", 700.0, 2.0, kind="dend", start=(0.0, 0.0, 10.0), parent="soma",
                        parent_x=1.0, nseg=35)
        morph = Morphology(sections=(soma, dend))
        g0, a, b, lam = IH_GRADIENT
        lo, hi, ch = HOT_ZONE
        mechs = (Insert(mechanism="hh", where="soma"),
                 Insert(mechanism="Ih", where="soma", params={"gIhbar_S_cm2": 0.0001}),
                 Insert(mechanism="Ih", where="dend", params={"gIhbar_S_cm2": g0},
                        distribution=Distance(param="gIhbar_S_cm2", kind="exp", a=a, b=b, length_um=lam)))
        for mech, (hot, out) in ch.items():
            pn = f"g{mech}bar_S_cm2"
            mechs += (Insert(mechanism=mech, where="dend", params={pn: hot},
                             distribution=Distance(param=pn, kind="window", a=out, b=1.0, lo_um=lo, hi_um=hi)),)
        mechs += tuple(ins(m, pars, "dend") for m, pars in DEND.items())
        syns = tuple(Exp2Syn(section="dend", x=0.8, tau1_ms=t1, tau2_ms=t2, e_mV=e, mg_mM=mg)
                     for _, t1, t2, e, mg, _, _ in SYNAPSES)
    # the sections' ek and ena, read by hh and every Hay channel (NEURON's sec.ek, sec.ena)
    spec = CellPopulation(morphology=morph, n=1, mechanisms=mechs, ions=(Ions(params={"ek_mV": EK, "ena_mV": ENA}),),
                          iclamps=clamps, synapses=syns,
                          ra_ohm_cm=100.0, cm_uF_cm2=1.0, celsius=p["celsius"], v_init_mV=p["v_init"],
                          dt_ms=DT)
    inputs = {}
    if syns:
        from polyscale.coordinator.signals import Spikes
        from polyscale.coordinator.time import TICKS_PER_MS
        ev = sorted((t, j, w) for j, (_, _, _, _, _, times, w) in enumerate(SYNAPSES) for t in times)
        inputs["syn"] = Spikes(np.array([round(t * TICKS_PER_MS) for t, _, _ in ev], np.int64),
                               np.array([j for _, j, _ in ev], np.int64), np.array([w for _, _, w in ev]))
    return spec, inputs


def polyscale_run(name: str) -> dict:
    """The protocol in polyscale: the same arrays as neuron_run (every step)."""
    from polyscale.coordinator.time import TICKS_PER_MS
    spec, inputs = polyscale_spec(name)
    s = spec.build(None)
    p = PROTOCOLS[name]
    n = int(round(p["t_stop"] / DT))
    lay = s.layout
    # cai and v at the recorded sites, step by step: one window per step would be slow, so the
    # dendrite and cai are sampled by running windows of 0.1 ms (DECIMATE steps) and reading state
    t = np.arange(n) * DT
    v_soma = np.empty(n)
    other = {"v_dend": [], "cai": []}
    dend_node = lay.node_at("dend", 0.8) if name != "hay_soma" else None
    ca_node = lay.node_at("soma", 0.5) if name == "hay_soma" else lay.node_at("dend", 475.0 / 700.0)
    w = DECIMATE * s.dt_ticks
    for k in range(n // DECIMATE):
        t0 = k * w
        st = s.state()
        if dend_node is not None:
            other["v_dend"].append(st["v"][dend_node, 0])
        other["cai"].append(st["cai"][ca_node, 0])
        sub = {}
        if "syn" in inputs:
            sp = inputs["syn"]
            m = (sp.ticks >= t0) & (sp.ticks < t0 + w)
            if m.any():
                sub["syn"] = type(sp)(sp.ticks[m], sp.ids[m], sp.weights[m])
        r = s.advance(t0, t0 + w, sub)
        v_soma[k * DECIMATE:(k + 1) * DECIMATE] = r.outputs["v_soma"].data[:, 0]
    out = {"t": t, "v_soma": v_soma, "cai": np.array(other["cai"])}
    if dend_node is not None:
        out["v_dend"] = np.array(other["v_dend"])
    out["spikes"] = spike_times(t, v_soma)
    del TICKS_PER_MS
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        moddir = compile_mods(Path(d))
        data = {}
        for name in PROTOCOLS:
            r = neuron_run(name, moddir)
            data[f"{name}/v_soma"] = r["v_soma"][::DECIMATE].astype(np.float32)
            data[f"{name}/cai"] = r["cai"][::DECIMATE].astype(np.float32)
            if "v_dend" in r:
                data[f"{name}/v_dend"] = r["v_dend"][::DECIMATE].astype(np.float32)
            data[f"{name}/spikes"] = r["spikes"]
            print(name, "spikes:", len(r["spikes"]), "v range", r["v_soma"].min(), r["v_soma"].max())
    import neuron
    data["neuron_version"] = np.array(neuron.__version__)
    np.savez_compressed(OUT, **data)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
