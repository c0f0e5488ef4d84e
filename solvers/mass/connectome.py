"""The connectome of a region network: weights, tract lengths, conduction speed -> delays.

Specs are plain data, so the connectome travels *in* the model: every process rebuilds the same
network from ``Model.from_dict`` with no file to ship alongside, and the run file's ``/model``
is self-contained (a file path + checksum would instead need the file on every host, and a run
file that cannot be re-run without it). Matrices up to PACK_ABOVE entries (up to 32 regions)
are nested tuples, readable in the run file; larger ones are stored packed, as the string
``"f8le-b64:<n>:<base64 of little-endian float64>"``, exact and ~25x cheaper to encode than
JSON numbers: a 1000-region model as tuples took ~6 s to write into the run file, packed it
takes milliseconds, and the 76-region connectome as tuples cost ~0.1 s of every run. Either form is accepted as input and
normalised to the one its size calls for, so equal connectomes compare equal.
``load_connectome`` reads the common file formats into this spec.
"""
from __future__ import annotations

import base64
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.specs import Spec
from ...coordinator.validation import as_tuple, fail, require_number


#: matrices with more entries than this are stored packed (see the module docstring)
PACK_ABOVE = 1024
_PACKED = "f8le-b64:"


def pack_matrix(arr: np.ndarray) -> str:
    """(n, n) float64 -> the packed string form."""
    a = np.ascontiguousarray(arr, dtype="<f8")
    return f"{_PACKED}{a.shape[0]}:" + base64.b64encode(a.tobytes()).decode("ascii")


def unpack_matrix(text: str) -> np.ndarray:
    """The packed string form -> (n, n) float64; ValueError if it is not one."""
    if not text.startswith(_PACKED):
        raise ValueError(f"a packed matrix starts with {_PACKED!r}")
    n_text, _, data = text[len(_PACKED):].partition(":")
    n = int(n_text)
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    if len(raw) != 8 * n * n:
        raise ValueError(f"{len(raw)} bytes do not make a {n} x {n} float64 matrix")
    return np.frombuffer(raw, dtype="<f8").reshape(n, n).astype(np.float64)


def _square(spec, name: str, n: int | None) -> np.ndarray:
    """Validate a matrix field, store it in its canonical form, return it as an array."""
    value = getattr(spec, name)
    if isinstance(value, str):
        try:
            arr = unpack_matrix(value)
        except ValueError as exc:
            raise fail(spec, f"{name!r} is a string but not a packed matrix ({exc})") from None
    elif isinstance(value, np.ndarray):
        arr = value.astype(np.float64)
    else:
        as_tuple(spec, name, float)
        try:
            arr = np.array(getattr(spec, name), dtype=np.float64)
        except ValueError:
            raise fail(spec, f"{name!r} must be a square matrix (rows of equal length)") from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (n is not None and arr.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "(n, n)"
        raise fail(spec, f"{name!r} must be a square matrix of shape {want} (got shape {arr.shape})")
    if not np.isfinite(arr).all():
        raise fail(spec, f"{name!r} must hold finite numbers")
    canonical = pack_matrix(arr) if arr.size > PACK_ABOVE else tuple(map(tuple, arr.tolist()))
    object.__setattr__(spec, name, canonical)
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class Connectome(Spec):
    """Structural connectivity of n regions.

    weights : (n, n) weights[i][j] is the connection *from j to i* (rows are targets, as TVB);
        nested sequences, an array, or the packed string form
    tract_lengths_mm : (n, n) tract lengths (mm) or None (no delays); as weights
    speed_mm_per_ms : conduction speed (mm/ms = m/s)
    labels : n region names, or None
    centres_mm : (n, 3) region centres (mm) in the head's coordinate system, or None; what
        region dipoles for EEG/MEG are placed at
    """

    weights: tuple | str
    tract_lengths_mm: tuple | str | None = None
    speed_mm_per_ms: float = 3.0
    labels: tuple | None = None
    centres_mm: tuple | None = None

    def __post_init__(self) -> None:
        require_number(self, "speed_mm_per_ms", positive=True)
        w = _square(self, "weights", None)
        n = w.shape[0]
        if self.tract_lengths_mm is not None:
            t = _square(self, "tract_lengths_mm", n)
            if (t < 0).any():
                raise fail(self, f"'tract_lengths_mm' must be >= 0 (got min {t.min()!r})")
        if self.labels is not None:
            labels = as_tuple(self, "labels", str)
            if len(labels) != n:
                raise fail(self, f"'labels' must name all {n} regions (got {len(labels)})")
        if self.centres_mm is not None:
            c = np.array(as_tuple(self, "centres_mm", float))
            if c.shape != (n, 3) or not np.isfinite(c).all():
                raise fail(self, f"'centres_mm' must be {n} rows of 3 finite numbers (got shape {c.shape})")

    @classmethod
    def example(cls) -> "Connectome":
        return cls(weights=((0.0, 1.0), (0.5, 0.0)), tract_lengths_mm=((0.0, 30.0), (30.0, 0.0)),
                   labels=("A", "B"))

    @property
    def n(self) -> int:
        if isinstance(self.weights, str):
            return int(self.weights[len(_PACKED):].partition(":")[0])
        return len(self.weights)

    def weight_matrix(self) -> np.ndarray:
        """(n, n) float64, [i, j] from j to i."""
        return _array(self.weights)

    def length_matrix(self) -> np.ndarray | None:
        """(n, n) float64 tract lengths (mm), or None."""
        return None if self.tract_lengths_mm is None else _array(self.tract_lengths_mm)

    def centre_array(self) -> np.ndarray | None:
        """(n, 3) float64 region centres (mm), or None."""
        return None if self.centres_mm is None else np.array(self.centres_mm, dtype=np.float64)

    def delay_steps(self, dt_ms: float) -> np.ndarray:
        """(n, n) int64 delays in steps of dt_ms: rint(length / speed / dt), half to even, as TVB."""
        if self.tract_lengths_mm is None:
            return np.zeros((self.n, self.n), dtype=np.int64)
        return np.rint(self.length_matrix() / self.speed_mm_per_ms / dt_ms).astype(np.int64)


def _array(value) -> np.ndarray:
    return unpack_matrix(value) if isinstance(value, str) else np.array(value, dtype=np.float64)


def load_connectome(path: str | os.PathLike, *, speed_mm_per_ms: float = 3.0) -> Connectome:
    """Read a connectome from a file or folder into a Connectome spec.

    Formats:
    * a TVB connectivity zip (``weights.txt``, ``tract_lengths.txt``, optional
      ``centres.txt`` whose first column is the label), as shipped by tvb-data;
    * a folder holding the same files;
    * a ``.npz`` with arrays ``weights`` and optional ``tract_lengths_mm`` and ``labels``;
    * a ``weights`` ``.npy`` next to a ``tract_lengths`` ``.npy`` (the name with ``weights``
      replaced by ``tract_lengths_mm`` or ``tract_lengths``), optional ``region_labels.txt``
      and optional centres (mm) in a ``.npy`` named with ``centres_mm`` or ``centres``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"connectome: file {str(p)!r} does not exist")
    if p.is_dir() or (p.suffix != ".npz" and zipfile.is_zipfile(p)):
        files = _read_folder(p)
        w = _text_matrix(files, "weights", p)
        t = _text_matrix(files, "tract_lengths", p) if _has(files, "tract_lengths") else None
        labels = centres = None
        if _has(files, "centres"):
            rows = [ln.split() for ln in _get(files, "centres").splitlines() if ln.strip()]
            labels = tuple(r[0] for r in rows)
            if all(len(r) == 4 for r in rows):
                centres = np.array([[float(v) for v in r[1:]] for r in rows])
        return _make(w, t, labels, speed_mm_per_ms, p, centres)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "weights" not in z:
                raise ModelError(f"connectome: {str(p)!r} has no array 'weights' (has: {', '.join(z.files)})")
            w = z["weights"]
            t = z["tract_lengths_mm"] if "tract_lengths_mm" in z else None
            labels = tuple(str(s) for s in z["labels"]) if "labels" in z else None
            centres = z["centres_mm"] if "centres_mm" in z else None
        return _make(w, t, labels, speed_mm_per_ms, p, centres)
    if p.suffix == ".npy" and "weights" in p.name:
        w = np.load(p, allow_pickle=False)
        t = None
        for alt in ("tract_lengths_mm", "tract_lengths"):
            q = p.with_name(p.name.replace("weights", alt))
            if q.exists():
                t = np.load(q, allow_pickle=False)
                break
        labels = None
        for q in (p.with_name(p.name.replace("weights.npy", "region_labels.txt")),
                  p.with_name("region_labels.txt")):
            if q.exists():
                labels = tuple(ln.strip() for ln in q.read_text().splitlines() if ln.strip())
                break
        centres = None
        for alt in ("centres_mm", "centres"):
            q = p.with_name(p.name.replace("weights", alt))
            if q.exists():
                centres = np.load(q, allow_pickle=False)
                break
        return _make(w, t, labels, speed_mm_per_ms, p, centres)
    raise ModelError(f"connectome: cannot read {str(p)!r}: expected a TVB zip or folder "
                     "(weights.txt, tract_lengths.txt), a .npz, or a *weights*.npy")


def _make(w, t, labels, speed, p, centres=None) -> Connectome:
    w = np.asarray(w, dtype=np.float64)
    if labels is not None and len(labels) != w.shape[0]:
        labels = None  # a labels file that does not match is ignored rather than guessed at
    if centres is not None and np.shape(centres) != (w.shape[0], 3):
        centres = None
    try:
        return Connectome(weights=w, tract_lengths_mm=None if t is None else np.asarray(t, float),
                          speed_mm_per_ms=speed, labels=labels,
                          centres_mm=None if centres is None else np.asarray(centres, float))
    except ModelError as exc:
        raise ModelError(f"connectome from {str(p)!r}: {exc}") from None


def _read_folder(p: Path) -> dict[str, str]:
    if p.is_dir():
        return {f.name: f.read_text() for f in p.iterdir() if f.suffix in (".txt", ".csv")}
    with zipfile.ZipFile(p) as z:
        return {Path(n).name: z.read(n).decode() for n in z.namelist() if n.endswith((".txt", ".csv"))}


def _has(files: dict[str, str], stem: str) -> bool:
    return any(Path(k).stem == stem for k in files)


def _get(files: dict[str, str], stem: str) -> str:
    return next(v for k, v in files.items() if Path(k).stem == stem)


def _text_matrix(files: dict[str, str], stem: str, p: Path) -> np.ndarray:
    if not _has(files, stem):
        raise ModelError(f"connectome: {str(p)!r} has no {stem}.txt (has: {', '.join(sorted(files))})")
    text = _get(files, stem)
    delim = "," if "," in text.splitlines()[0] else None
    return np.loadtxt(io.StringIO(text), delimiter=delim, ndmin=2)


def spherical_connectome(n_regions: int = 76, *, radius_mm: float = 70.0, lambda_mm: float = 20.0,
                         min_weight: float = 0.05, speed_mm_per_ms: float = 3.0) -> Connectome:
    """A synthetic, licence-free stand-in for a connectome: ``n_regions`` regions spread evenly
    (Fibonacci lattice) on a sphere of ``radius_mm``, region 0 nearest the top (0, 0, r).

    Weights follow the exponential distance rule (Ercsey-Ravasz et al. 2013, Neuron 80:184):
    ``w_ij = exp(-d_ij / lambda_mm)`` for the straight-line distance d_ij (mm), set to 0 below
    ``min_weight`` and on the diagonal; symmetric, maximum 1. Tract lengths are the straight-line
    distances. It has the spatial statistics of a cortical network and none of its anatomy: use
    a measured connectome (``load_connectome``) for anything region-specific.
    """
    if not isinstance(n_regions, int) or n_regions < 2:
        raise ModelError(f"spherical_connectome: 'n_regions' must be an integer >= 2 (got {n_regions!r})")
    for name, v in (("radius_mm", radius_mm), ("lambda_mm", lambda_mm), ("speed_mm_per_ms", speed_mm_per_ms)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise ModelError(f"spherical_connectome: {name!r} must be a finite number > 0 (got {v!r})")
    if not (isinstance(min_weight, (int, float)) and 0 <= min_weight < 1):
        raise ModelError(f"spherical_connectome: 'min_weight' must be in [0, 1) (got {min_weight!r})")
    k = np.arange(n_regions) + 0.5
    z = 1.0 - 2.0 * k / n_regions                       # evenly spaced heights: equal areas
    phi = np.pi * (1.0 + 5.0 ** 0.5) * k                 # golden-angle turns
    rho = np.sqrt(1.0 - z * z)
    centres = radius_mm * np.column_stack([rho * np.cos(phi), rho * np.sin(phi), z])
    d = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)
    w = np.exp(-d / lambda_mm)
    np.fill_diagonal(w, 0.0)
    w[w < min_weight] = 0.0
    return Connectome(weights=w, tract_lengths_mm=d, speed_mm_per_ms=speed_mm_per_ms,
                      labels=tuple(f"r{i:02d}" for i in range(n_regions)), centres_mm=centres)
