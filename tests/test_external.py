"""adapters/_external.py: the helpers every wrapper of an external simulator shares."""
from __future__ import annotations

import os
import sys

import pytest

from polyscale.adapters import _external as E
from polyscale.coordinator.errors import ModelError


def test_translation_maps_names_and_units_both_ways():
    # 0.25 nF is 250 pF and 0.3 nA is 300 pA (NEST's units); tau keeps its ms
    t = E.Translation("t", ("c_m_nF", "C_m", 1e3), ("i_e_nA", "I_e", 1e3), ("tau_m_ms", "tau_m", 1.0))
    there = t.to_external({"c_m_nF": 0.25, "i_e_nA": 0.3, "tau_m_ms": 10.0})
    assert there == {"C_m": 250.0, "I_e": 300.0, "tau_m": 10.0}
    back = t.from_external(there)
    assert back == {"c_m_nF": pytest.approx(0.25), "i_e_nA": pytest.approx(0.3), "tau_m_ms": 10.0}
    assert t.to_external({"c_m_nF": (0.1, 0.2)}) == {"C_m": (100.0, 200.0)}
    # a simulator's status dict holds more than the table: strict=False drops the rest
    assert t.from_external({"C_m": 250.0, "V_m": -70.0}, strict=False) == {"c_m_nF": 0.25}
    with pytest.raises(ModelError, match=r"t: unknown parameter 'V_m' \(known: C_m, I_e, tau_m\)"):
        t.from_external({"V_m": -70.0})


@pytest.mark.parametrize("rows,match", [
    pytest.param((("a", "A", 1.0), ("a", "B", 1.0)), "appears twice", id="dup-ours"),
    pytest.param((("a", "A", 1.0), ("b", "A", 1.0)), "appears twice", id="dup-theirs"),
    pytest.param((("a", "A", 0.0),), r"factor of 'a' must be a non-zero number \(got 0.0\)", id="zero"),
])
def test_bad_translation_table_is_rejected(rows, match):
    with pytest.raises(ModelError, match=match):
        E.Translation("t", *rows)


def test_missing_module_names_the_extra():
    with pytest.raises(ModelError, match=r"thing needs the 'no_such_sim_x' module.*pip install 'polyscale\[sim\]'"):
        E.require_extra("no_such_sim_x", "sim", "thing")
    assert E.require_extra("json", "x", "thing") is sys.modules["json"]
    assert E.extra_available("json") and not E.extra_available("no_such_sim_x")


def test_one_instance_per_process():
    E.claim_process("SIM", "a")
    try:
        E.claim_process("SIM", "a")          # the same solver again: fine
        with pytest.raises(ModelError, match=r"solver 'b': SIM's state is global.*'a'.*--transport zmq"):
            E.claim_process("SIM", "b")
    finally:
        E.release_process("SIM", "a")
    E.claim_process("SIM", "b")                # released: another may take it
    E.release_process("SIM", "b")


def test_claim_from_another_pid_is_a_forked_copy(monkeypatch):
    E.claim_process("SIM", "a")
    try:
        monkeypatch.setattr(os, "getpid", lambda: -1)   # a forked worker has its own kernel
        E.claim_process("SIM", "b")
    finally:
        E._CLAIMS.pop("SIM", None)


@pytest.mark.parametrize("target", ["pkg.mod:func", "mod:f_2", "dir/file.py:build", "/abs/x.py:make"])
def test_good_targets_pass(target):
    E.check_target(target, "what")


@pytest.mark.parametrize("target", ["nocolon", "mod:", ":func", "mod:1f", "bad name:f", 3, None])
def test_bad_targets_are_rejected(target):
    with pytest.raises(ModelError, match=r"what: must be 'package.module:function' or 'path/to/file.py:function'"):
        E.check_target(target, "what")


def test_load_target_from_module_and_file(tmp_path, monkeypatch):
    assert E.load_target("os.path:join", "w") is os.path.join
    f = tmp_path / "model_file.py"
    f.write_text("def make(n=1):\n    return n * 2\n")
    fn = E.load_target(f"{f}:make", "w")
    assert fn(n=4) == 8
    assert E.load_target(f"{f}:make", "w") is fn          # loaded once per process
    monkeypatch.chdir(tmp_path)
    assert E.load_target("model_file.py:make", "w")(n=3) == 6
    other = tmp_path / "sub"
    other.mkdir()
    assert E.load_target("model_file.py:make", "w", base=tmp_path)(n=1) == 2
    with pytest.raises(ModelError, match=r"w: file 'missing.py' of 'missing.py:make' not found"):
        E.load_target("missing.py:make", "w")
    with pytest.raises(ModelError, match=r"w: 'os.path' has no callable 'nope'"):
        E.load_target("os.path:nope", "w")
    with pytest.raises(ModelError, match=r"w: cannot import 'no_such_pkg_y.mod'"):
        E.load_target("no_such_pkg_y.mod:f", "w")
