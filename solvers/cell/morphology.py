"""Cell morphology as data: sections of 3D points with diameters, a ball-and-stick builder, SWC.

A :class:`Section` is an unbranched cable given by points ``(x, y, z, diam)`` in um, joined by
straight frusta; its 0-end attaches to its parent at ``parent_x`` (0..1 along the parent), as
NEURON's ``connect child(0), parent(parent_x)``. A :class:`Morphology` is a tuple of sections in
which every parent comes before its children (the first section is the root).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ...coordinator.errors import ModelError
from ...coordinator.specs import Spec
from ...coordinator.validation import as_tuple, fail, require_int, require_number, require_str

#: SWC structure identifiers (the standard's 1-4) and the section kinds they become
SWC_KINDS = {1: "soma", 2: "axon", 3: "dend", 4: "apic"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Section(Spec):
    """An unbranched cable.

    name : unique within the morphology
    kind : 'soma', 'axon', 'dend', 'apic' or any label; mechanisms are placed by name or kind
    points : ((x, y, z, diam), ...) um, at least 2; the cable runs through them in order
    parent : name of the parent section, None for the root
    parent_x : where on the parent the 0-end attaches (0..1), NEURON's connect(..., x)
    nseg : number of segments (compartments), unless the population sets a d_lambda rule
    """

    name: str
    kind: str = "dend"
    points: tuple = ()
    parent: str | None = None
    parent_x: float = 1.0
    nseg: int = 1

    def __post_init__(self) -> None:
        require_str(self, "name", "kind")
        pts = as_tuple(self, "points", float)
        arr = np.array(pts, dtype=np.float64) if pts else np.zeros((0, 4))
        if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] < 2:
            raise fail(self, f"section {self.name!r}: 'points' must be at least 2 rows of "
                             f"(x, y, z, diam) um (got shape {arr.shape})")
        if not np.isfinite(arr).all() or (arr[:, 3] <= 0).any():
            raise fail(self, f"section {self.name!r}: 'points' must be finite with diam > 0")
        if self.length_um <= 0:
            raise fail(self, f"section {self.name!r}: length must be > 0 (all points coincide)")
        if self.parent is not None:
            require_str(self, "parent")
        require_number(self, "parent_x")
        if not 0.0 <= self.parent_x <= 1.0:
            raise fail(self, f"section {self.name!r}: 'parent_x' must be in [0, 1] (got {self.parent_x})")
        require_int(self, "nseg", minimum=1)

    @property
    def xyzd(self) -> np.ndarray:
        """(n_points, 4): x, y, z, diam (um)."""
        return np.array(self.points, dtype=np.float64)

    @property
    def arc_um(self) -> np.ndarray:
        """(n_points,) path length from the 0-end to each point (um)."""
        p = self.xyzd
        return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p[:, :3], axis=0), axis=1))])

    @property
    def length_um(self) -> float:
        return float(self.arc_um[-1])

    @property
    def mean_diam_um(self) -> float:
        """Length-weighted mean diameter (um)."""
        p, s = self.xyzd, self.arc_um
        return float(np.sum(np.diff(s) * 0.5 * (p[1:, 3] + p[:-1, 3])) / s[-1])

    def at(self, x: float) -> np.ndarray:
        """(x, y, z, diam) at relative position x (0..1) along the section."""
        p, s = self.xyzd, self.arc_um
        target = x * s[-1]
        return np.array([np.interp(target, s, p[:, k]) for k in range(4)])

    def piece(self, x0: float, x1: float) -> tuple[float, float]:
        """(lateral area um^2, axial resistance per Ra, 1/um) of the part between x0 and x1.

        Each frustum contributes area pi (ra + rb) sqrt(l^2 + (ra - rb)^2) and resistance
        l / (pi ra rb) per unit resistivity (the exact integral of dx / (pi r(x)^2) for a
        radius linear in x), as NEURON integrates over 3D points.
        """
        p, s = self.xyzd, self.arc_um
        a0, a1 = x0 * s[-1], x1 * s[-1]
        area = res = 0.0
        for k in range(len(s) - 1):
            lo, hi = max(a0, s[k]), min(a1, s[k + 1])
            if hi <= lo:
                continue
            ra = 0.5 * np.interp(lo, s, p[:, 3])
            rb = 0.5 * np.interp(hi, s, p[:, 3])
            seg = hi - lo
            area += math.pi * (ra + rb) * math.sqrt(seg * seg + (ra - rb) ** 2)
            res += seg / (math.pi * ra * rb)
        return area, res


def cylinder(name: str, length_um: float, diam_um: float, *, kind: str = "dend",
             start=(0.0, 0.0, 0.0), direction=(0.0, 0.0, 1.0), parent: str | None = None,
             parent_x: float = 1.0, nseg: int = 1) -> Section:
    """A straight cylinder of ``length_um`` and ``diam_um`` from ``start`` along ``direction``."""
    d = np.asarray(direction, dtype=np.float64)
    norm = float(np.linalg.norm(d))
    if not math.isfinite(norm) or norm == 0.0:
        raise ModelError(f"cylinder {name!r}: 'direction' must be a nonzero vector (got {direction!r})")
    a = np.asarray(start, dtype=np.float64)
    b = a + d / norm * float(length_um)
    return Section(name=name, kind=kind, parent=parent, parent_x=parent_x, nseg=nseg,
                   points=((*a, diam_um), (*b, diam_um)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Morphology(Spec):
    """A tree of sections; ``sections[0]`` is the root and parents come before children."""

    nested: ClassVar = {"sections": Section}
    sections: tuple = ()

    def __post_init__(self) -> None:
        secs = as_tuple(self, "sections")
        if not secs:
            raise fail(self, "'sections' must hold at least one Section")
        seen: set[str] = set()
        for i, s in enumerate(secs):
            if not isinstance(s, Section):
                raise fail(self, f"sections[{i}] must be a Section (got {type(s).__name__})")
            if s.name in seen:
                raise fail(self, f"section name {s.name!r} is used twice")
            if i == 0 and s.parent is not None:
                raise fail(self, f"the root section {s.name!r} must have parent None (got {s.parent!r})")
            if i > 0 and s.parent not in seen:
                raise fail(self, f"section {s.name!r}: parent {s.parent!r} is not an earlier section "
                                 f"(earlier: {', '.join(sorted(seen))})")
            seen.add(s.name)

    def section(self, name: str) -> Section:
        for s in self.sections:
            if s.name == name:
                return s
        raise ModelError(f"morphology: no section {name!r} (has: {', '.join(s.name for s in self.sections)})")

    def index(self, name: str) -> int:
        return self.sections.index(self.section(name))

    def with_nseg(self, nseg: dict) -> "Morphology":
        """A copy with the given section name -> nseg."""
        return Morphology(sections=tuple(s.replace(nseg=int(nseg.get(s.name, s.nseg)))
                                         for s in self.sections))


def ball_and_stick(*, soma_L_um: float = 20.0, soma_diam_um: float = 20.0,
                   dend_L_um: float = 500.0, dend_diam_um: float = 2.0,
                   dend_nseg: int = 101) -> Morphology:
    """The reference ball-and-stick: soma along z from -L/2 to +L/2, dendrite on from +L/2.

    The geometry is that of ../shared/reference/cell (soma -10..10 um, dendrite 10..510 um)."""
    h = soma_L_um / 2.0
    soma = cylinder("soma", soma_L_um, soma_diam_um, kind="soma", start=(0.0, 0.0, -h))
    dend = cylinder("dend", dend_L_um, dend_diam_um, kind="dend", start=(0.0, 0.0, h),
                    parent="soma", parent_x=1.0, nseg=dend_nseg)
    return Morphology(sections=(soma, dend))


def read_swc(path: str | Path, *, text: str | None = None) -> Morphology:
    """A Morphology from an SWC file (columns: id type x y z radius parent; um).

    Unbranched runs of points of one type become one section; a section starts at its parent
    point so the cable is continuous. Soma points form the root; a one-point soma becomes a
    cylinder of length and diameter 2r along y (the usual convention). Malformed lines raise
    ModelError naming the file and line number.
    """
    name = str(path)
    if text is None:
        text = Path(path).read_text()
    rows: dict[int, tuple[int, float, float, float, float, int]] = {}
    order: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 7:
            raise ModelError(f"{name}:{lineno}: an SWC line has 7 columns (id type x y z radius parent), "
                             f"got {len(parts)}")
        try:
            ident, kind, parent = int(parts[0]), int(parts[1]), int(parts[6])
            x, y, z, r = (float(v) for v in parts[2:6])
        except ValueError:
            raise ModelError(f"{name}:{lineno}: id, type and parent must be integers and x, y, z, "
                             f"radius numbers (got {line!r})") from None
        if not all(math.isfinite(v) for v in (x, y, z, r)) or r <= 0:
            raise ModelError(f"{name}:{lineno}: radius must be a finite number > 0 um (got {parts[5]})")
        if ident in rows:
            raise ModelError(f"{name}:{lineno}: point id {ident} appears twice")
        if parent != -1 and parent not in rows:
            raise ModelError(f"{name}:{lineno}: parent {parent} of point {ident} is not an earlier point")
        if parent == -1 and order:
            raise ModelError(f"{name}:{lineno}: a second root point ({ident}); one tree per file")
        rows[ident] = (kind, x, y, z, 2.0 * r, parent)
        order.append(ident)
    if not order:
        raise ModelError(f"{name}: no points")
    children: dict[int, list[int]] = {i: [] for i in order}
    for i in order:
        if rows[i][5] != -1:
            children[rows[i][5]].append(i)
    root = order[0]
    if rows[root][0] != 1:
        raise ModelError(f"{name}: the root point must be soma (type 1), got type {rows[root][0]}")

    def pt(i):
        k, x, y, z, d, _ = rows[i]
        return (x, y, z, d)

    sections: list[Section] = []
    counts: dict[str, int] = {}
    # soma: follow the chain of soma points from the root
    soma_ids = [root]
    while True:
        nxt = [c for c in children[soma_ids[-1]] if rows[c][0] == 1]
        if len(nxt) != 1:
            break
        soma_ids.append(nxt[0])
    if len(soma_ids) == 1:
        x, y, z, d = pt(root)
        soma_pts = ((x, y - d / 2, z, d), (x, y + d / 2, z, d))
    else:
        soma_pts = tuple(pt(i) for i in soma_ids)
    sections.append(Section(name="soma", kind="soma", points=soma_pts))
    end_of = {i: ("soma", 0.5 if len(soma_ids) == 1 else k / (len(soma_ids) - 1))
              for k, i in enumerate(soma_ids)}
    stack = [(c, i) for i in reversed(soma_ids) for c in reversed(children[i]) if c not in soma_ids]
    while stack:
        first, attach = stack.pop()
        kind = SWC_KINDS.get(rows[first][0], f"type{rows[first][0]}")
        ids = [first]
        while len(children[ids[-1]]) == 1 and rows[children[ids[-1]][0]][0] == rows[first][0]:
            ids.append(children[ids[-1]][0])
        counts[kind] = counts.get(kind, 0) + 1
        sec_name = f"{kind}[{counts[kind] - 1}]"
        parent_sec, parent_x = end_of[attach]
        pts = [pt(attach)] if parent_sec != "soma" else []
        pts += [pt(i) for i in ids]
        if len(pts) < 2:  # a one-point branch off the soma: start it at the soma point
            pts = [pt(attach)[:3] + (pt(ids[0])[3],)] + pts
        if parent_sec != "soma":
            pts[0] = pts[0][:3] + (pt(ids[0])[3],)  # diameter of the child's own first point
        sections.append(Section(name=sec_name, kind=kind, points=tuple(pts), parent=parent_sec,
                                parent_x=1.0 if parent_sec != "soma" else parent_x))
        end_of[ids[-1]] = (sec_name, 1.0)
        for c in reversed(children[ids[-1]]):
            stack.append((c, ids[-1]))
    return Morphology(sections=tuple(sections))
