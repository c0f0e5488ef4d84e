"""Shared fixtures: run-file paths, the transports every scenario runs on, reference data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from polyscale.coordinator.transports import TRANSPORTS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    """A path for a run file that does not exist yet."""
    return tmp_path / "run.h5"


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request) -> str:
    """Every available transport; each scenario parametrized over it must give the same result.

    'mpi' runs in the test process as a one-rank job (tests/test_mpi.py launches real mpiexec
    jobs of 2 and 3 ranks)."""
    if request.param == "mpi":
        pytest.importorskip("mpi4py", reason="the mpi transport needs mpi4py: pip install -e '.[mpi]'")
    return request.param


@pytest.fixture(scope="session")
def reference() -> Path:
    """../shared/reference (or $POLYSCALE_REFERENCE); tests using it skip if it is absent."""
    path = Path(os.environ.get("POLYSCALE_REFERENCE", REPO.parent / "shared" / "reference"))
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set POLYSCALE_REFERENCE)")
    return path


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"
