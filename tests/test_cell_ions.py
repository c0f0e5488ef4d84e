"""Ion reversal potentials of the cell solver: ``Ions`` placements (solvers/cell/mechanisms.py)
set ena / ek / eca per section, Distance profile and cell, and every mechanism at a node that
reads the ion sees the same value, as NEURON's ``sec.ek = ...``.

Reference: NEURON 9 (in .venv) running the same cell, built here by hand with the same
settings, on the .mod files of tests/data/mod (Im, Ca_HVA, CaDynamics_E2, compiled now with
nrnivmodl: a few seconds) and its built-in hh and pas.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.coordinator.time import TICKS_PER_MS
from polyscale.solvers.cell.mechanisms import Distance, IClamp, Insert, Ions
from polyscale.solvers.cell.morphology import Morphology, cylinder
from polyscale.solvers.cell.population import CellPopulation

MOD = Path(__file__).parent / "data" / "mod"
T_MS, DT = 60.0, 0.025
EK_SOMA = (-85.0, -95.0)        # per cell: read at the soma by hh and Im
ENA = 55.0                      # read by hh
#: the dendrite's ek: -80 mV (1 + 0.2 d / 300 um) along the path distance d (read by Im only)
EK_DEND = Distance(param="ek_mV", kind="linear", a=1.0, b=0.2, length_um=300.0)
ECA_DEND = 120.0                # Ca_HVA's eca in the dendrite (no cai writer there)


def _spec(n: int = 2, ek_soma=EK_SOMA, dend_ions: bool = True) -> CellPopulation:
    soma = cylinder("soma", 20.0, 20.0, kind="soma", start=(0.0, 0.0, -10.0))
    dend = cylinder("dend", 300.0, 2.0, kind="dend", start=(0.0, 0.0, 10.0), parent="soma", nseg=9)
    ions = (Ions(params={"ek_mV": ek_soma, "ena_mV": ENA}),)
    if dend_ions:
        ions += (Ions(where="dend", params={"ek_mV": -80.0, "eca_mV": ECA_DEND}, distribution=EK_DEND),)
    return CellPopulation(
        morphology=Morphology(sections=(soma, dend)), n=n, celsius=6.3, v_init_mV=-65.0, dt_ms=DT,
        mechanisms=(Insert(mechanism="hh", where="soma"),
                    Insert(mechanism="Im", params={"gImbar_S_cm2": 0.001}),
                    Insert(mechanism="Ca_HVA", params={"gCa_HVAbar_S_cm2": 0.002}),
                    Insert(mechanism="CaDynamics_E2", where="soma", params={"decay_ms": 50.0, "gamma": 0.05}),
                    Insert(mechanism="pas", where="dend", params={"g_S_cm2": 1e-4, "e_mV": -65.0})),
        ions=ions, iclamps=(IClamp(section="soma", delay_ms=5.0, dur_ms=50.0, amp_nA=0.4),))


# NEURON: the same two cells, one after the other, built section by section (sec.ek as NEURON
# users set it); v at soma(0.5) every step
_NEURON = r"""
import json, sys
from pathlib import Path
import numpy as np
from neuron import h
moddir, out = Path(sys.argv[1]), sys.argv[2]
h.nrn_load_dll(str(next(moddir.glob("*/.libs/libnrnmech.so"), None) or next(moddir.glob("*/libnrnmech.so"))))
h.load_file("stdrun.hoc")
h.celsius, h.dt, h.steps_per_ms, h.secondorder = 6.3, {dt}, 1.0 / {dt}, 0
h.usetable_hh = 0       # exact hh rates, as polyscale's default
res = []
for ek_soma in {ek_soma}:
    soma = h.Section(name="soma")
    soma.L = soma.diam = 20.0
    dend = h.Section(name="dend")
    dend.L, dend.diam, dend.nseg = 300.0, 2.0, 9
    dend.connect(soma(1.0))
    for sec in (soma, dend):
        sec.Ra, sec.cm = 100.0, 1.0
        sec.insert("Im"); sec.insert("Ca_HVA")
        for seg in sec:
            seg.gImbar_Im, seg.gCa_HVAbar_Ca_HVA = 0.001, 0.002
    soma.insert("hh"); soma.insert("CaDynamics_E2")
    soma(0.5).decay_CaDynamics_E2, soma(0.5).gamma_CaDynamics_E2 = 50.0, 0.05
    dend.insert("pas")
    for seg in dend:
        seg.g_pas, seg.e_pas = 1e-4, -65.0
    soma.ek, soma.ena = ek_soma, {ena}
    for seg in dend:
        seg.ek = -80.0 * (1.0 + 0.2 * h.distance(soma(0.0), seg) / 300.0)
        seg.eca = {eca}
    ic = h.IClamp(soma(0.5))
    ic.delay, ic.dur, ic.amp = 5.0, 50.0, 0.4
    v = h.Vector().record(soma(0.5)._ref_v)
    h.finitialize(-65.0)
    h.continuerun({t})
    res.append(np.array(v)[:int(round({t} / {dt}))])
    del v, ic, soma, dend
np.save(out, np.array(res))
"""


@pytest.fixture(scope="module")
def neuron_v(tmp_path_factory):
    """(2, steps) soma v (mV) of NEURON's two cells."""
    if shutil.which("make") is None:
        pytest.skip("nrnivmodl needs make")
    pytest.importorskip("neuron")
    d = tmp_path_factory.mktemp("ions_nrn")
    for name in ("Im", "Ca_HVA", "CaDynamics_E2"):
        shutil.copy(MOD / f"{name}.mod", d)
    nrnivmodl = shutil.which("nrnivmodl") or str(Path(sys.executable).parent / "nrnivmodl")
    subprocess.run([nrnivmodl], cwd=d, check=True, capture_output=True, timeout=600)
    code = _NEURON.format(dt=DT, t=T_MS, ek_soma=json.dumps(list(EK_SOMA)), ena=ENA, eca=ECA_DEND)
    subprocess.run([sys.executable, "-c", code, str(d), str(d / "v.npy")], check=True,
                   capture_output=True, timeout=600)
    return np.load(d / "v.npy")


def _run(spec: CellPopulation):
    s = spec.build(None)
    return s, s.advance(0, int(T_MS * TICKS_PER_MS), {}).outputs["v_soma"].data


def _spike_times(v):
    k = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    return DT * (k - v[k] / (v[k + 1] - v[k]))


def test_shared_ek_and_per_section_ions_match_neuron(neuron_v):
    """Soma: hh and Im both read the soma's ek (one value per cell: -85, -95 mV), hh its ena;
    dendrite: Im reads an ek that varies along it (a Distance profile), Ca_HVA an eca set there
    (no cai writer), while at the soma CaDynamics_E2 writes cai and eca is its Nernst potential.
    Same equations and discretisation as NEURON, so the bound is rounding-level: 1e-6 mV at
    worst over 60 ms with spikes (7e-10 measured), spike times within 1e-6 ms. Per-cell ions send hh to its
    mechanism file; one cell alone (shared values) runs hh in the kernel's own loop: both match."""
    s, v = _run(_spec())
    assert "hh" in [m.name for m in s.mechs]
    for c in range(2):
        ours, ref = v[:, c], neuron_v[c]
        assert len(_spike_times(ref)) >= 1
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(_spike_times(ours), _spike_times(ref), atol=1e-6)
        one, v1 = _run(_spec(n=1, ek_soma=EK_SOMA[c]))
        assert "hh" not in [m.name for m in one.mechs]        # the built-in hh loop
        np.testing.assert_allclose(v1[:, 0], ref, rtol=0, atol=1e-6)
    # the check has teeth: the cells' ek differ by 10 mV and their traces by far more than the
    # bound; without the dendrite's placement (ek -> the soma's, eca -> NEURON's default) the
    # soma trace moves away from NEURON's too
    assert np.abs(neuron_v[0] - neuron_v[1]).max() > 1.0
    _, v_nodend = _run(_spec(dend_ions=False))
    assert np.abs(v_nodend[:, 0] - neuron_v[0]).max() > 1.0


def test_changing_the_sections_ek_changes_every_mechanism_that_reads_it():
    """hh and Im at one node: the membrane current each gives at t = 0 (gates at steady state)
    is g (v - ek) with the node's ek; moving the section's ek by 10 mV moves both currents by g
    times 10 mV (closed form from each mechanism's own current function, 1e-12 relative)."""
    from polyscale.solvers.cell.mech import get
    base = _spec(n=2, ek_soma=(-77.0, -87.0), dend_ions=False)
    s = base.build(None)
    soma = s.layout.node_at("soma", 0.5)
    ek = s.ions["ek_mV"][soma]
    np.testing.assert_array_equal(ek, [-77.0, -87.0])
    v = -65.0
    hh, im = get("hh"), get("Im")
    for c in range(2):
        m, h_, n_ = hh.init(v, 6.3, 0.12, 0.036, 0.0003, -54.3, ENA, ek[c])
        i_hh, _ = hh.current(v, 6.3, m, h_, n_, 0.0, 0.036, 0.0, -54.3, ENA, ek[c])   # K part only
        gk = 0.036 * n_ ** 4
        assert i_hh == pytest.approx(gk * (v - ek[c]), rel=1e-12)
        (mi,) = im.init(v, 6.3, 0.004, ek[c])
        i_im, g_im = im.current(v, 6.3, mi, 0.004, ek[c])
        assert i_im == pytest.approx(g_im * (v - ek[c]), rel=1e-12) and g_im > 0
    # the generated kernel gets the node's ek for every mechanism reading it (no per-mechanism copy)
    st = s.mech_params
    assert "Im" in st and st["Im"].shape[1] == 1                  # Im's only parameter is gImbar


def test_mechanism_level_reversal_potentials_are_refused_with_where_they_live_now():
    with pytest.raises(ModelError, match=r"'ek_mV' is an ion reversal potential.*sec\.ek.*Ions\(where="):
        Insert(mechanism="hh", params={"ek_mV": -85.0})
    with pytest.raises(ModelError, match=r"'ena_mV' is an ion reversal potential"):
        Insert(mechanism="NaTa_t", distribution=Distance(param="ena_mV"))
    with pytest.raises(ModelError, match=r"ions: unknown parameter 'ek'.*ena_mV"):
        Ions(params={"ek": -85.0})
    with pytest.raises(ModelError, match=r"ions: parameter 'ek_mV' must be a finite number.*nan"):
        Ions(params={"ek_mV": float("nan")})
    with pytest.raises(ModelError, match=r"ions\[0\]: parameter 'ek_mV' has 3 values.*n = 2"):
        _spec(ek_soma=(-85.0, -90.0, -95.0))
    with pytest.raises(ModelError, match=r"ions\[0\]: 'apical' matches no section"):
        _spec().replace(ions=(Ions(where="apical", params={"ek_mV": -85.0}),))
    from polyscale.solvers.cell.mech import Mechanism, get
    pas = get("pas")
    with pytest.raises(ValueError, match=r"'ek_mV' is an ion reversal potential.*reads=\('ek',\)"):
        Mechanism(name="bad", params={"g_S_cm2": 1.0, "ek_mV": -77.0}, states=(),
                  init=pas.init, current=pas.current, advance=pas.advance)


def test_ions_round_trip_through_plain_data_and_default_to_neurons_values():
    spec = _spec()
    again = CellPopulation.from_dict(spec.to_dict())
    assert again == spec and again.ions[1].distribution[0].param == "ek_mV"
    s = _spec(n=1, ek_soma=-85.0).replace(ions=()).build(None)
    assert (s.ions["ena_mV"] == 50.0).all() and (s.ions["ek_mV"] == -77.0).all()
