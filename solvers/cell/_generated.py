"""Kernels generated for the set of mechanisms a model uses, compiled once and cached on disk.

The hand-written kernel of ``_kernels.py`` integrates pas, hh and the synapses. For any other
mechanism (``mech/``), this module writes a variant of it: the same source (read with
``inspect``), with the mechanisms' loops spliced in at its ``# @mechanisms:`` markers (each
block's views of their arrays, their currents, their states) and their arrays appended to the
signature. Each loop calls the mechanism's scalar numba functions
(``current`` before the solve, ``advance`` after), which numba inlines (the built-ins are
``inline='always'``; see mech/__init__.py), so there is no Python call per step. The source goes to a cache directory under a name that hashes it and every
mechanism module it calls; it is imported from there, so numba's ``cache=True`` keeps the
machine code for the next process (compiling once per set of mechanisms, per machine).

Cache directory: ``$POLYSCALE_KERNEL_CACHE``, else ``~/.cache/polyscale/cell_kernels`` (if that
cannot be written, ``polyscale_cell_kernels_<uid>`` in the temporary directory).

Per mechanism j the kernel gets: ``mj_node`` (K,) node of each instance, ``mj_area`` (K,) uS
per S/cm2 (area um2 * 1e-2, also nA per mA/cm2), ``mj_par`` (blocks, P, K, B) parameter values
per instance and cell, ``mj_st`` (blocks, S, K, B) states. With calcium: ``ca_c`` (blocks, N, B)
cai mM, ``ca_i`` (N, B) scratch (ica mA/cm2 of the step), ``ca_ktf`` (RT/2F mV), ``ca_co``
(cao mM), ``ca_w`` (N,) int8, 1 where a mechanism writes cai (eca is Nernst there). Ion
reversal potentials per node and cell: ``ion_ena``, ``ion_ek``, ``ion_eca`` (blocks, N, B) mV
(the sections' values, shared by every mechanism reading them). ``celsius`` (C).
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
from pathlib import Path

from . import _fastexp, _kernels
from .mech import IONS, Mechanism

#: NEURON 9's gas constant (J/(mol K)) and Faraday constant (C/mol), 2019 SI values
GAS_CONSTANT = 8.314462618
FARADAY = 96485.33212331001

_LOADED: dict[str, object] = {}


def cache_dir() -> Path:
    d = os.environ.get("POLYSCALE_KERNEL_CACHE")
    return Path(d) if d else Path.home() / ".cache" / "polyscale" / "cell_kernels"


def _fn_ref(f) -> tuple[str, str]:
    return f.__module__, getattr(f, "py_func", f).__name__


def _args(j: int) -> list[str]:
    return [f"m{j}_node", f"m{j}_area", f"m{j}_par", f"m{j}_st"]


def _read_expr(r: str, ca_written: bool, i: str, c: str) -> str:
    if r in ("ena", "ek"):
        return f"ion_{r}[{i}, {c}]"
    if r == "cai":
        return f"ca_c[{i}, {c}]"
    if r == "ica":
        return f"ca_i[{i}, {c}]"
    # eca: Nernst from cai at nodes where a mechanism writes it (NEURON's ion style there),
    # else the section's value
    if not ca_written:
        return f"ion_eca[{i}, {c}]"
    return f"(ca_ktf * flog(ca_co / ca_c[{i}, {c}]) if ca_w[{i}] else ion_eca[{i}, {c}])"


def _call(j: int, m: Mechanism, fn: str, ca_written: bool, *, with_dt: bool, states: bool) -> str:
    args = ["v[_i, _c]"] + (["dt"] if with_dt else []) + ["celsius"]
    if states:
        args += [f"m{j}_st[{s}, _k, _c]" for s in range(len(m.states))]
    args += [f"m{j}_par[{p}, _k, _c]" for p in range(len(m.params))]
    args += [_read_expr(r, ca_written, "_i", "_c") for r in m.reads]
    return f"m{j}_{fn}({', '.join(args)})"


def _current_code(mechs, uses_ca: bool, ca_written: bool) -> str:
    ind = " " * 12
    out = []
    if uses_ca:
        out += [f"{ind}# the step's calcium current (mA/cm2) per node, summed over mechanisms",
                f"{ind}for _i in range(N):",
                f"{ind}    for _c in range(n):",
                f"{ind}        ca_i[_i, _c] = 0.0"]
    for j, m in enumerate(mechs):
        if m.current is None:
            continue
        out += [f"{ind}# {m.name}: i (mA/cm2) into rhs, di/dv (S/cm2) onto the diagonal, as NEURON",
                f"{ind}for _k in range(m{j}_node.shape[0]):",
                f"{ind}    _i = m{j}_node[_k]",
                f"{ind}    _a = m{j}_area[_k]",
                f"{ind}    for _c in range(n):",
                f"{ind}        _ii, _gg = {_call(j, m, 'current', ca_written, with_dt=False, states=True)}",
                f"{ind}        rhs[_i, _c] -= _a * _ii",
                f"{ind}        d[_i, _c] += _a * _gg"]
        if m.current_ion == "ca":
            out.append(f"{ind}        ca_i[_i, _c] += _ii")
    return "\n".join(out) + "\n"


def _state_code(mechs, ca_written: bool) -> str:
    ind = " " * 12
    out = []
    # concentrations first, so that mechanisms reading cai see the step's new value (NEURON's
    # nrn_state order for Hay's files: CaDynamics_E2 comes before SK_E2)
    order = sorted(range(len(mechs)), key=lambda j: mechs[j].writes is None)
    for j in order:
        m = mechs[j]
        if not m.states:
            continue
        out += [f"{ind}# {m.name}: states over dt with the new v",
                f"{ind}for _k in range(m{j}_node.shape[0]):",
                f"{ind}    _i = m{j}_node[_k]",
                f"{ind}    for _c in range(n):",
                f"{ind}        _s = {_call(j, m, 'advance', ca_written, with_dt=True, states=True)}"]
        out += [f"{ind}        m{j}_st[{s}, _k, _c] = _s[{s}]" for s in range(len(m.states))]
        if m.writes == "cai":
            out.append(f"{ind}        ca_c[_i, _c] = _s[0]")
    return "\n".join(out) + "\n"


def _init_code(mechs, ca_written: bool) -> str:
    lines = ["@njit",
             "def mech_init(v, celsius, ca_c, ca_i, ca_ktf, ca_co, ca_w, ion_ena, ion_ek, ion_eca, "
             + ", ".join(a for j in range(len(mechs)) for a in _args(j)) + "):",
             '    """States at steady state for v (blocks, N, B), concentrations first."""',
             "    for _b in range(v.shape[0]):"]
    order = sorted(range(len(mechs)), key=lambda j: mechs[j].writes is None)
    for j in order:
        m = mechs[j]
        if not m.states:
            continue
        call = _call(j, m, "init", ca_written, with_dt=False, states=False)
        call = call.replace("v[_i, _c]", "v[_b, _i, _c]").replace("ca_c[_i, _c]", "ca_c[_b, _i, _c]")
        for ion in ("ena", "ek", "eca"):
            call = call.replace(f"ion_{ion}[_i, _c]", f"ion_{ion}[_b, _i, _c]")
        call = call.replace(f"m{j}_par[", f"m{j}_par[_b, ")
        lines += [f"        for _k in range(m{j}_node.shape[0]):",
                  f"            _i = m{j}_node[_k]",
                  f"            for _c in range(v.shape[2]):",
                  f"                _s = {call}"]
        lines += [f"                m{j}_st[_b, {s}, _k, _c] = _s[{s}]" for s in range(len(m.states))]
        if m.writes == "cai":
            lines.append("                ca_c[_b, _i, _c] = _s[0]")
    lines.append("    return 0")
    return "\n".join(lines) + "\n"


def generate(mechs: tuple[Mechanism, ...]) -> str:
    """The source of a module with ``cell_advance`` (the kernel of ``_kernels.py`` with the
    mechanisms' arrays appended to its arguments) and ``mech_init``."""
    uses_ca = any(m.current_ion == "ca" or m.writes == "cai" or {"cai", "ica"} & set(m.reads) for m in mechs)
    ca_written = any(m.writes == "cai" for m in mechs)
    # the block-major arrays (blocks, ...) come in as *_all; the kernel's block loop takes each
    # block's view under the plain name, which the mechanisms' loops index
    blocked = ["ca_c", "ion_ena", "ion_ek", "ion_eca"] + [f"m{j}_{a}" for j in range(len(mechs)) for a in ("par", "st")]
    extra = ["celsius", "ca_c", "ca_i", "ca_ktf", "ca_co", "ca_w", "ion_ena", "ion_ek", "ion_eca"]
    extra += [a for j in range(len(mechs)) for a in _args(j)]
    extra = [a + "_all" if a in blocked else a for a in extra]
    kernel = _function_source("cell_advance")
    blk, cur, st = ("        # @mechanisms: block", "            # @mechanisms: currents",
                    "            # @mechanisms: states")
    if (kernel.count("vfac):") != 1 or kernel.count(blk) != 1 or kernel.count(cur) != 1
            or kernel.count(st) != 1):
        raise RuntimeError("cell kernel generator: _kernels.py lost its '# @mechanisms:' markers "
                           "or its signature no longer ends in vfac")
    kernel = kernel.replace("vfac):", f"vfac, {', '.join(extra)}):", 1)
    views = "".join(f"        {a} = {a}_all[blk]\n" for a in blocked)
    kernel = kernel.replace(blk, views + blk, 1)
    kernel = kernel.replace(cur, _current_code(mechs, uses_ca, ca_written) + cur, 1)
    kernel = kernel.replace(st, _state_code(mechs, ca_written) + st, 1)
    head = ["# generated by polyscale.solvers.cell._generated for: " + ", ".join(m.name for m in mechs),
            "import math", "", "from polyscale.solvers._jit import njit",
            "from polyscale.solvers.cell._fastexp import flog  # eca: vectorises, within 1 ulp of math.log",
            "from polyscale.solvers.cell import _kernels as _kernel_module",
            "",
            "# every helper the kernel's source calls (hh_rates, hh_rates_tabled, ...), as in _kernels.py",
            "globals().update({k: v for k, v in vars(_kernel_module).items()",
            "                  if not k.startswith('__') and k != 'cell_advance'})"]
    for j, m in enumerate(mechs):
        for fn in ("init", "current", "advance"):
            f = getattr(m, fn)
            if f is None:
                continue
            mod, name = _fn_ref(f)
            head.append(f"from {mod} import {name} as m{j}_{fn}  # noqa: F401")
    return "\n".join(head) + "\n\n\n" + kernel + "\n\n" + _init_code(mechs, ca_written)


def _function_source(name: str) -> str:
    # the function's text as _kernels.py holds it now, found by name with ast (inspect goes by
    # the line numbers of the imported code, which are wrong once the file has been edited)
    text = Path(inspect.getsourcefile(_kernels)).read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            # error_model numpy: a float division by zero gives inf/nan as in C (NEURON) instead of
            # raising; the raise path would keep the mechanisms' loops over cells from vectorising.
            # fastmath arcp only: a division by one of the mod files' constants becomes a product
            # with its reciprocal (rounded once, at compile time) and divisions by one divisor
            # share its reciprocal; results move by an ulp, the same bits on every host of one CPU
            # architecture (no reassociation, no fused multiply-add; how many repeated divisions
            # share a reciprocal is LLVM's per-target choice, 2 on x86 and AArch64). ~6% of the
            # Hay kernel (benchmarks/l5_cells.py --kernel 100: 59.8 -> 56.5 ns per segment-step)
            return ("@njit(error_model='numpy', fastmath={'arcp'})\n"
                    + ast.get_source_segment(text, node, padded=True) + "\n")
    raise RuntimeError(f"cell kernel generator: _kernels.py has no function {name!r}")


def _fingerprint(src: str, mechs) -> str:
    h = hashlib.sha256(src.encode())
    for m in mechs:
        for fn in (m.init, m.current, m.advance):
            if fn is not None:
                h.update(inspect.getsource(sys.modules[_fn_ref(fn)[0]]).encode())
    h.update(Path(inspect.getsourcefile(_kernels)).read_text().encode())
    # the mechanisms inline fexp: a new fexp must not reuse a kernel compiled with the old one
    h.update(Path(inspect.getsourcefile(_fastexp)).read_text().encode())
    return h.hexdigest()[:20]


def load(mechs: tuple[Mechanism, ...]):
    """The generated module for these mechanisms (in this order): written to the cache
    directory if new, imported, reused within the process."""
    src = generate(mechs)
    key = _fingerprint(src, mechs)
    if key in _LOADED:
        return _LOADED[key]
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        if not os.access(d, os.W_OK):
            raise PermissionError(str(d))
    except OSError:
        # a read-only home (batch nodes, containers): the temporary directory, per user
        d = Path(tempfile.gettempdir()) / f"polyscale_cell_kernels_{os.getuid() if hasattr(os, 'getuid') else 0}"
        d.mkdir(parents=True, exist_ok=True)
    path = d / f"cellk_{key}.py"
    if not path.exists() or path.read_text() != src:
        # write then rename: another process importing it never sees half a file, and an
        # unchanged file keeps its mtime, which numba's cache index checks
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(src)
        os.replace(tmp, path)
    name = f"polyscale_cellk_{key}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    _LOADED[key] = mod
    return mod


def nernst_factor(celsius: float, z: int) -> float:
    """RT/(zF) in mV at ``celsius`` (NEURON's ktf / z)."""
    return 1000.0 * GAS_CONSTANT * (celsius + 273.15) / FARADAY / z


__all__ = ["IONS", "cache_dir", "generate", "load", "nernst_factor"]
