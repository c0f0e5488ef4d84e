"""solvers/cell/_generated.py: the machine code of a kernel generated for the Hay et al. (2011)
mechanism set, as the process that compiles it runs it."""
import pytest

from polyscale.coordinator.config import load_model
from polyscale.solvers.cell import _generated


@pytest.mark.slow
def test_freshly_compiled_hay_kernel_has_exp_and_log_inlined(examples_dir, tmp_path, monkeypatch):
    """The example's L5 cell (11 generated mechanisms), compiled in this process from an empty
    kernel cache: its kernel must call neither fexp nor flog. Before fexp was written
    into the caller's IR, numba optimised the kernel's module before linking fexp in, 12 fexp
    calls stayed in the block function, their loops stayed scalar, and a process that compiled
    the kernel ran it ~3x slower (~180-195 vs ~60 ns per segment-step at 100 cells, kernel
    alone, under load) than
    one that loaded it from the cache (whose copy had been re-optimised with fexp linked in).
    Packed double arithmetic must be there (the mechanisms' loops over a block's cells)."""
    monkeypatch.setenv("POLYSCALE_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(_generated, "_LOADED", {})
    spec = load_model(examples_dir / "l5_cells.py", {"n_cells": 2, "t_stop_ms": 1.0}).solvers["cells"]
    s = spec.build(None)
    s.advance(0, s.dt_ticks * 2, {})
    assert len(s.mechs) == 11 and len(list(tmp_path.glob("cellk_*.py"))) == 1
    mod = _generated.load(s.mechs)
    fn = mod.cell_advance
    assert fn.signatures, fn
    for sig in fn.signatures:
        asm = fn.inspect_asm(sig)
        assert "fexp" not in asm and "flog" not in asm
        assert "vdivpd" in asm and "vmulpd" in asm
