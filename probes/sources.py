"""Sources: how each kind of solver turns its activity into extracellular currents and dipoles.

The extracellular and head probes (probes/extracellular.py, probes/head.py) know geometry and
volume conduction; they do not know solvers. A solver type that can contribute to them
registers a *factory* here, keyed by its spec's ``type``:

- :func:`register_extracellular` for potentials at electrodes in tissue (LFP, CSD, ECoG);
- :func:`register_dipoles` for current dipole moments (CurrentDipole, EEG, MEG).

A factory runs once, in the solver's process (inside the probe's ``local()``), builds its
matrices from the solver's geometry, and returns a ``part(t0, t1, result)`` callable that each
window turns the solver's activity into rows at every multiple of ``period_ticks`` in
[t0, t1) (coordinator.time.grid_start / grid_count).

How a solver type makes currents may need parameters of its own (a gain per region, kernels of
a point-neuron population): these are :class:`SourceModel` specs, given per solver in a probe's
``sources={solver_name: model}``. Registered here: detailed cells ('cell_population', from
transmembrane currents; no model) and neural masses ('region_network', :class:`RegionDipoles`).
Point networks register in probes/kernels.py.

This module may touch: the live solver objects handed to a probe's local() (read only).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import weakref

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import WindowResult
from ..coordinator.specs import SpecFamily
from ..coordinator.time import grid_count, grid_start
from ..coordinator.validation import as_tuple, fail, require_number
from ..solvers._jit import njit

#: factory(solver, ports, model, electrodes_um (n_el, 3), sigma_S_per_m, method,
#:         min_distance_um, period_ticks) -> part(t0, t1, result) -> (n_samples, n_el) mV
ExtracellularFactory = Callable[..., Callable[[int, int, WindowResult], np.ndarray]]
#: factory(solver, ports, model, period_ticks) -> (positions_um (n_src, 3),
#:         part(t0, t1, result) -> (n_samples, n_src, 3) nA*um)
DipoleFactory = Callable[..., tuple]

_EXTRACELLULAR: dict[str, ExtracellularFactory] = {}
_DIPOLES: dict[str, DipoleFactory] = {}


class SourceModel(SpecFamily):
    """How a solver of some level turns its activity into extracellular currents/dipoles: a typed
    nested spec given per solver in a probe's `sources={solver_name: model}`. Family members
    register by subclassing with a `type` (e.g. 'region_dipoles' here, 'kernel_method' and
    'current_proxy' in probes/kernels.py)."""

    __slots__ = ()
    _kinds: ClassVar[dict] = {}
    family: ClassVar[str] = "source model"


def register_extracellular(solver_type: str, factory: ExtracellularFactory) -> None:
    """Let solvers of ``solver_type`` contribute to extracellular potentials (LFP, CSD, ECoG).

    ``factory(solver, ports, model, electrodes_um, sigma_S_per_m, method, min_distance_um,
    period_ticks)`` returns ``part(t0, t1, result) -> (n_samples, n_el)`` mV, one row per
    multiple of ``period_ticks`` in [t0, t1). ``model`` is the probe's SourceModel for this
    solver or None; ``method`` is 'point', 'line' or 'root_as_point' (a factory may reject those
    it cannot do, with a ModelError)."""
    _EXTRACELLULAR[str(solver_type)] = factory


def register_dipoles(solver_type: str, factory: DipoleFactory) -> None:
    """Let solvers of ``solver_type`` contribute current dipoles (CurrentDipole, EEG, MEG).

    ``factory(solver, ports, model, period_ticks)`` returns ``(positions_um (n_src, 3),
    part(t0, t1, result) -> (n_samples, n_src, 3) nA*um)``."""
    _DIPOLES[str(solver_type)] = factory


#: functions ports -> number of dipole sources, or None when the ports are not of their kind
_SOURCE_COUNTS: list[Callable[[Mapping], int | None]] = []


def register_source_count(count: Callable[[Mapping], int | None]) -> None:
    """Let probes that write one channel group per source (CurrentDipole(per='source')) learn,
    before the run, how many dipoles a solver has: ``count(ports)`` returns that number from the
    solver's ports, or None when the ports are not those of the solver type it knows."""
    _SOURCE_COUNTS.append(count)


def source_count(solver_name: str, ports: Mapping) -> int:
    """How many dipole sources the solver with these ports has; ModelError if no registered
    count recognises its ports."""
    for count in _SOURCE_COUNTS:
        n = count(ports)
        if n is not None:
            return int(n)
    raise ModelError(f"cannot tell from its ports how many dipole sources solver {solver_name!r} has "
                     f"(known: detailed cells, one per cell; region networks, one per region)")


def extracellular_types() -> tuple[str, ...]:
    """Solver types that can contribute extracellular potentials."""
    return tuple(sorted(_EXTRACELLULAR))


def dipole_types() -> tuple[str, ...]:
    """Solver types that can contribute current dipoles."""
    return tuple(sorted(_DIPOLES))


def _solver_type(solver: Any) -> str:
    spec = getattr(solver, "spec", None)
    return getattr(spec, "type", None) or type(solver).__name__


def extracellular_part(solver_name: str, solver: Any, ports: Mapping, model: SourceModel | None,
                       electrodes_um: np.ndarray, sigma: float, method: str,
                       min_distance_um: float | None, period_ticks: int):
    """This solver's extracellular part: ``part(t0, t1, result) -> (n_samples, n_el)`` mV."""
    kind = _solver_type(solver)
    factory = _EXTRACELLULAR.get(kind)
    if factory is None:
        raise ModelError(f"solver {solver_name!r} ({kind}) cannot contribute to an extracellular "
                         f"probe; the solver types that can: "
                         f"{', '.join(map(repr, extracellular_types())) or 'none'}")
    return factory(solver, ports, model, np.asarray(electrodes_um, dtype=np.float64), float(sigma),
                   method, min_distance_um, int(period_ticks))


def dipole_part(solver_name: str, solver: Any, ports: Mapping, model: SourceModel | None,
                period_ticks: int):
    """This solver's dipoles: ``(positions_um (n_src, 3), part(t0, t1, result) -> (n_samples,
    n_src, 3) nA*um)``."""
    kind = _solver_type(solver)
    factory = _DIPOLES.get(kind)
    if factory is None:
        raise ModelError(f"solver {solver_name!r} ({kind}) cannot contribute current dipoles; "
                         f"the solver types that can: "
                         f"{', '.join(map(repr, dipole_types())) or 'none'}")
    return factory(solver, ports, model, int(period_ticks))


def sample_rows(t0: int, t1: int, step_ticks: int, period_ticks: int) -> slice:
    """Rows of a per-step array of the window [t0, t1) (row k at t0 + k step_ticks) that fall on
    the multiples of ``period_ticks``; ``period_ticks`` must be a multiple of ``step_ticks``."""
    first = grid_start(t0, period_ticks)
    n = grid_count(t0, t1, period_ticks)
    start = (first - t0) // step_ticks
    stride = period_ticks // step_ticks
    return slice(start, start + n * stride, stride)


def _check_period(kind: str, step_ticks: int, period_ticks: int) -> None:
    if period_ticks % step_ticks:
        raise ModelError(f"{kind}: the probe's sample period ({period_ticks} ticks) must be a "
                         f"multiple of the solver's step ({step_ticks} ticks)")


class StepEndSampler:
    """Samples, at every multiple of ``period_ticks``, of a linear map ``f`` of per-step
    quantities, taking at tick t the step that *ends* at t.

    Backward Euler computes a step's currents at the step's end, and NEURON reports
    i_membrane_ at time t for the step ending at t; so the sample at t is f(row of the step
    [t - dt, t)), and at t = 0 (no step yet) zero. The step ending at a window's end is carried
    to the next window. Also memoises the window, so probes sharing a sampler compute it once.

    f : rows (m, ...) -> (m, *shape); shape : the shape of one sample.

    ``rows`` holds every step of the window, or (``row_ticks`` given, (m,) int64 ascending)
    only some of them, row k being the step that ends at tick row_ticks[k]: every step ending on
    a multiple of the period must be among them (a solver told the period by the probe keeps
    just those, see CellSolver.sample_currents_every).
    """

    def __init__(self, step_ticks: int, period_ticks: int, f, shape: tuple):
        self.dt, self.period, self.f = step_ticks, period_ticks, f
        self.carry = np.zeros(shape)
        self.memo: tuple | None = None

    def _rows(self, t0: int, first: int, m: int, rows: np.ndarray, row_ticks) -> np.ndarray:
        # rows of the steps ending at first, first + P, ... (m of them), a strided view if it can
        if row_ticks is None:
            stride = self.period // self.dt
            j = (first - t0) // self.dt - 1
            return rows[j:j + (m - 1) * stride + 1:stride]
        if m == 1:                               # the common case (one sample a window): no arrays
            i = int(np.searchsorted(row_ticks, first))
            if i < len(row_ticks) and row_ticks[i] == first:
                return rows[i:i + 1]
        want = first + self.period * np.arange(m, dtype=np.int64)
        idx = np.searchsorted(row_ticks, want)
        if idx[-1] >= len(row_ticks) or (row_ticks[idx] != want).any():
            raise ModelError(f"the solver did not keep the steps ending at the probe's samples "
                             f"(period {self.period} ticks): it must be told the period before "
                             f"the first window")
        step = int(idx[1] - idx[0]) if m > 1 else 1
        if m == 1 or (np.diff(idx) == step).all():
            return rows[idx[0]:idx[-1] + 1:step]
        return rows[idx]

    def __call__(self, t0: int, t1: int, rows: np.ndarray, row_ticks: np.ndarray | None = None) -> np.ndarray:
        if self.memo is not None and self.memo[0] == (t0, t1):
            return self.memo[1]
        n = grid_count(t0, t1, self.period)
        out = np.empty((n,) + self.carry.shape)
        first, k = grid_start(t0, self.period), 0
        if n and first == t0:                    # the step ending at t0 was the last window's
            out[0] = self.carry
            first, k = first + self.period, 1
        # the samples inside the window and, when the window ends on the grid, the one at t1
        # (the next window's first, carried): consecutive grid ticks from ``first``, so one
        # call of f (one pass over a probe matrix) serves them all
        carried = t1 % self.period == 0
        m = n - k + carried
        if m:
            values = self.f(self._rows(t0, first, m, rows, row_ticks))
            out[k:] = values[:n - k]
            if carried:
                self.carry = values[-1].copy()
        self.memo = ((t0, t1), out)
        return out


# --------------------------------------------------------------------------------------------
# detailed cells
# --------------------------------------------------------------------------------------------
#: per live cell solver and sample period, the one dipole sampler its probes share
_DIPOLE_SAMPLERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def cell_currents(solver, period_ticks: int | None = None) -> Callable[[int, int], tuple]:
    """``get(t0, t1) -> (rows (m, N, n) nA, row_ticks (m,))``: the transmembrane currents of the
    window [t0, t1) in the solver's own node-major layout (``solver.imem``: kept step, node of
    the cell layout, cell; nodes without membrane carry none), so that probes multiply it
    without a copy, and the tick at which each kept step ends. Tells the solver the probe's
    ``period_ticks`` so that it keeps only the steps the probes sample; ModelError unless the
    spec has record_currents=True."""
    if not getattr(solver.spec, "record_currents", False):
        raise ModelError("cell_population: extracellular and dipole probes need the cells' "
                         "transmembrane currents: set record_currents=True on the solver spec")
    if period_ticks is not None:
        solver.sample_currents_every(period_ticks)

    def get(t0: int, t1: int) -> tuple:
        if solver.imem is None:
            solver.transmembrane_currents()      # raises the solver's own error
        return solver.imem, solver.imem_ticks
    return get


def segment_to_node(solver, M: np.ndarray) -> np.ndarray:
    """(N n, n_out): M (n_out, n S), whose columns are segments cell-major (segment_geometry's
    rows), rearranged to act on a step of the node-major currents reshaped to (N n,)."""
    n, N = solver.n_cells, solver.nodes_per_cell
    seg_node = np.asarray(solver.layout.seg_node)
    S = seg_node.shape[0]
    out = np.zeros((N, n, M.shape[0]))
    out[seg_node] = M.T.reshape(n, S, M.shape[0]).transpose(1, 0, 2)
    return out.reshape(N * n, M.shape[0])


#: storage of the stacked cell probe matrices: float32 halves the bytes each sample reads (1000
#: cells x 50 segments x 32 channels is 6.4 MB in float32, 12.8 MB in float64), and the product
#: sums eight cells in float32 before each float64 update (:func:`_node_product`). A sample's
#: error is at most NODE_MATRIX_REL_ERROR * sum_j |M_ij I_j| -- some 4e-6 of the signal where the
#: currents cancel 10-fold, against percent-level errors of the volume conductor (sigma known to
#: 10-50%) and of recorded LFPs (uV amplifier noise on 0.1-1 mV signals)
NODE_MATRIX_DTYPE = np.float32
#: bound on the product's error relative to sum_j |M_ij I_j|, with M as stored (float32): each
#: term rounds 5 times (the current to float32, the product, three levels of the eight-term sum)
#: and the float64 accumulation adds at most 2**20 * 2**-53
NODE_PRODUCT_REL_ERROR = (1.0 + 2.0 ** -24) ** 5 - 1.0 + 2.0 ** -33
#: the same with the rounding of each entry to float32 (against the float64 matrix)
NODE_MATRIX_REL_ERROR = (1.0 + 2.0 ** -24) ** 6 - 1.0 + 2.0 ** -33


#: the stacked matrix's groups of eight rows are summed in this many chunks of consecutive groups,
#: each into its own float64 sum, and the chunks' sums added in order. One sample a window reads
#: the chunks interleaved, four streams from memory at once, which the hardware prefetchers
#: serve faster than one: 1000 cells x 50 segments x 32 channels from a cold cache took ~225 us
#: against ~345 as one stream (this VM). Several samples read the chunks one after the other;
#: the sums, and so the bits, are the same.
NODE_PRODUCT_CHUNKS = 4


@njit
def _combine_chunks(part: np.ndarray, out: np.ndarray) -> None:
    """out (k, n_out) = the chunks' sums part (C, k, n_out) added in chunk order."""
    for s in range(out.shape[0]):
        for o in range(out.shape[1]):
            acc = part[0, s, o]
            for c in range(1, part.shape[0]):
                acc += part[c, s, o]
            out[s, o] = acc


@njit
def _node_product_direct(rows: np.ndarray, nodes: np.ndarray, M: np.ndarray, out: np.ndarray) -> None:
    """:func:`_node_product` for several samples when groups of eight cells tile every node (n %
    8 == 0): the currents read and rounded to float32 inside the loop over M, not gathered in a
    pass of their own before it (6-10% faster for 4-40 samples of 1000 cells x 50 nodes, the
    same for 2; for one sample the pass is faster). The same groups, chunks, operations and
    order as _node_product."""
    k, n, n_out = rows.shape[0], rows.shape[2], M.shape[1]
    G = M.shape[0] // 8
    C = NODE_PRODUCT_CHUNKS
    per = (G + C - 1) // C
    part = np.zeros((C, k, n_out))
    for ch in range(C):
        for g in range(ch * per, min(G, (ch + 1) * per)):
            r = 8 * g
            jj = r // n
            c = r - jj * n
            j = nodes[jj]
            m0, m1, m2, m3, m4, m5, m6, m7 = M[r], M[r + 1], M[r + 2], M[r + 3], M[r + 4], M[r + 5], M[r + 6], M[r + 7]
            for s in range(k):
                x, o_s = rows[s, j], part[ch, s]
                a0, a1, a2, a3 = np.float32(x[c]), np.float32(x[c + 1]), np.float32(x[c + 2]), np.float32(x[c + 3])
                a4, a5, a6, a7 = np.float32(x[c + 4]), np.float32(x[c + 5]), np.float32(x[c + 6]), np.float32(x[c + 7])
                for o in range(n_out):
                    o_s[o] += np.float64(((a0 * m0[o] + a1 * m1[o]) + (a2 * m2[o] + a3 * m3[o]))
                                         + ((a4 * m4[o] + a5 * m5[o]) + (a6 * m6[o] + a7 * m7[o])))
    _combine_chunks(part, out)


@njit
def _node_product(rows: np.ndarray, nodes: np.ndarray, M: np.ndarray, out: np.ndarray,
                  a32: np.ndarray) -> None:
    """out (k, n_out) = sum over the nodes ``nodes`` (J,) and cells c of rows[s, node, c] M[jj n +
    c, :]: rows (k, N, n) nA (any strides: a strided view of the solver's buffer), M (J n, n_out)
    float32, row jj n + c acting on node nodes[jj] of cell c; a32 (>= k, J n) float32 scratch.

    The currents are first gathered into a32 in M's row order, in float32; then each group of
    eight rows is summed in float32 (the channel loop innermost and contiguous: it vectorises,
    16 lanes, without reassociation) and added in float64 to the sum of its chunk of
    consecutive groups (NODE_PRODUCT_CHUNKS of them); the chunks' sums are added in order, and
    the rows past the last whole group one by one. float32 products take half the vector
    operations of float64 ones and no widening of M: with several samples a window the product
    is bound by those (1000 x 50 x 32, 10 samples, in a run: ~1.5 ms in float64, ~1.0 in
    float32); with one, streaming M from memory bounds it, which the chunks, read interleaved,
    speed up. The error this adds is bounded by NODE_PRODUCT_REL_ERROR.

    Several samples (k > 1) read each group of M once for all of them (the matrix streams from
    memory once a window; when the groups tile every node, :func:`_node_product_direct` does it
    without the gather into a32); one sample takes a loop of its own, which compiles to faster code
    than the same loop nested in one over samples. All do the same operations in the same
    order, so a sample does not depend on its window."""
    k, n, n_out = rows.shape[0], rows.shape[2], M.shape[1]
    J = nodes.shape[0]
    R = J * n
    if k > 1 and n % 8 == 0:
        _node_product_direct(rows, nodes, M, out)
        return
    for s in range(k):
        for jj in range(J):
            j = nodes[jj]
            base = jj * n
            for c in range(n):
                a32[s, base + c] = np.float32(rows[s, j, c])
    G = R // 8
    n8 = 8 * G
    C = NODE_PRODUCT_CHUNKS
    per = (G + C - 1) // C
    part = np.zeros((C, k, n_out))
    if k == 1:
        a = a32[0]
        for i in range(per):
            for ch in range(C):
                g = ch * per + i
                if g >= G:
                    continue
                r = 8 * g
                o_s = part[ch, 0]
                a0, a1, a2, a3, a4, a5, a6, a7 = a[r], a[r + 1], a[r + 2], a[r + 3], a[r + 4], a[r + 5], a[r + 6], a[r + 7]
                m0, m1, m2, m3, m4, m5, m6, m7 = M[r], M[r + 1], M[r + 2], M[r + 3], M[r + 4], M[r + 5], M[r + 6], M[r + 7]
                for o in range(n_out):
                    o_s[o] += np.float64(((a0 * m0[o] + a1 * m1[o]) + (a2 * m2[o] + a3 * m3[o]))
                                         + ((a4 * m4[o] + a5 * m5[o]) + (a6 * m6[o] + a7 * m7[o])))
    else:
        for ch in range(C):
            for g in range(ch * per, min(G, (ch + 1) * per)):
                r = 8 * g
                m0, m1, m2, m3, m4, m5, m6, m7 = M[r], M[r + 1], M[r + 2], M[r + 3], M[r + 4], M[r + 5], M[r + 6], M[r + 7]
                for s in range(k):
                    a, o_s = a32[s], part[ch, s]
                    a0, a1, a2, a3, a4, a5, a6, a7 = a[r], a[r + 1], a[r + 2], a[r + 3], a[r + 4], a[r + 5], a[r + 6], a[r + 7]
                    for o in range(n_out):
                        o_s[o] += np.float64(((a0 * m0[o] + a1 * m1[o]) + (a2 * m2[o] + a3 * m3[o]))
                                             + ((a4 * m4[o] + a5 * m5[o]) + (a6 * m6[o] + a7 * m7[o])))
    _combine_chunks(part, out)
    for r in range(n8, R):
        for s in range(k):
            a_r = np.float64(a32[s, r])
            for o in range(n_out):
                out[s, o] += a_r * M[r, o]


class _NodeMatrices:
    """Every matrix that probes apply to one cell solver's currents at one sample period,
    stacked into one (J n, n_out_total) matrix (NODE_MATRIX_DTYPE) over the J segment nodes of
    the node-major current buffer: each window reads the stack once (:func:`_node_product`, for
    all the probes' channels and samples of the window) and one StepEndSampler serves every
    probe, each taking its columns. Nodes without membrane (zero-area section ends) carry no
    current and have no rows."""

    def __init__(self, solver, period_ticks: int):
        self.solver, self.period = solver, period_ticks
        self.mats: list[np.ndarray] = []
        self.sampler: StepEndSampler | None = None
        self.nodes = np.unique(np.asarray(solver.layout.seg_node, dtype=np.int64))

    def add(self, Mn: np.ndarray) -> tuple[int, int]:
        """Stack Mn (N n, n_out) (segment_to_node's layout); returns its output columns [a, b)."""
        a = sum(m.shape[1] for m in self.mats)
        n = self.solver.n_cells
        rows = (self.nodes[:, None] * n + np.arange(n)[None, :]).ravel()
        self.mats.append(Mn[rows])
        return a, a + Mn.shape[1]

    def _seal(self) -> None:
        M = np.ascontiguousarray(np.hstack(self.mats), dtype=NODE_MATRIX_DTYPE)   # (J n, n_out)
        self.mats = []
        nodes = self.nodes

        scratch = [np.empty((0, M.shape[0]), np.float32)]

        def f(rows: np.ndarray) -> np.ndarray:    # rows (k, N, n) strided, no copy -> (k, n_out)
            k = rows.shape[0]
            if scratch[0].shape[0] < k:            # kept: a window's samples are few and alike
                scratch[0] = np.empty((k, M.shape[0]), np.float32)
            out = np.empty((k, M.shape[1]))
            _node_product(rows, nodes, M, out, scratch[0])
            return out
        self.sampler = StepEndSampler(self.solver.dt_ticks, self.period, f, (M.shape[1],))

    def __call__(self, t0: int, t1: int) -> np.ndarray:
        if self.sampler is None:
            self._seal()
        return self.sampler(t0, t1, self.solver.imem, self.solver.imem_ticks)


#: per live cell solver and sample period, the stack of matrices its probes share
_NODE_MATRICES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def cell_matrix_part(solver, M: np.ndarray, period_ticks: int):
    """``part(t0, t1, result) -> (n_samples, n_out)``: M (n_out, n S) times the transmembrane
    currents of the step ending at each sample (StepEndSampler), on the solver's node-major
    buffer. The matrices of all probes on this solver and period are stacked and applied in
    one product per window (_NodeMatrices); each part is its columns of it."""
    _check_period("cell_population", solver.dt_ticks, period_ticks)
    currents = cell_currents(solver, period_ticks)
    stacks = _NODE_MATRICES.setdefault(solver, {})
    stack = stacks.get(period_ticks)
    if stack is None or stack.sampler is not None:   # sealed at its first window: a new one
        stack = stacks[period_ticks] = _NodeMatrices(solver, period_ticks)
    a, b = stack.add(segment_to_node(solver, M))

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        currents(t0, t1)                             # raises the solver's error if none yet
        return stack(t0, t1)[:, a:b]
    return part


def _no_model(kind: str, model) -> None:
    if model is not None:
        raise ModelError(f"{kind}: takes no source model (got {type(model).__name__}); its "
                         f"currents come from the cable equation")


def cell_extracellular(solver, ports, model, electrodes_um, sigma, method, min_distance_um,
                       period_ticks):
    """Extracellular potential (mV) of every segment of every cell: one (n_el, n S) matrix,
    built once; each window multiplies it with the transmembrane currents (nA) at the samples.
    The sample at tick t holds the currents of the step ending at t (NEURON's i_membrane_)."""
    from .forward import extracellular_matrix
    _no_model("cell_population", model)
    cell_currents(solver)
    g = solver.segment_geometry()
    roots = _root_segments(solver, g)
    M = extracellular_matrix(g["start_um"], g["end_um"], g["diam_um"], electrodes_um, sigma,
                             method=method, min_distance_um=min_distance_um, roots=roots)
    return cell_matrix_part(solver, M, period_ticks)


@njit
def _local_dipoles(rows: np.ndarray, seg_node: np.ndarray, m: np.ndarray, R: np.ndarray,
                   q: np.ndarray, out: np.ndarray) -> None:
    """out[k, c] = R[c] @ sum_j rows[k, j, c] m[:, j]: each cell's dipole (nA um) from its node
    currents rows (k, N, n) nA, summed over the segment nodes ``seg_node`` with the segment
    midpoints m (3, N) um in the cell's own frame (before rotation and placement), then turned
    by the cell's rotation R (n, 3, 3). Reads only the currents and a few numbers per cell; q
    (3, n) is scratch."""
    k_n, n = rows.shape[0], rows.shape[2]
    for k in range(k_n):
        for d in range(3):
            for c in range(n):
                q[d, c] = 0.0
        for jj in range(seg_node.shape[0]):
            j = seg_node[jj]
            m0, m1, m2 = m[0, j], m[1, j], m[2, j]
            for c in range(n):          # cells innermost: contiguous memory
                a = rows[k, j, c]
                q[0, c] += a * m0
                q[1, c] += a * m1
                q[2, c] += a * m2
        for c in range(n):
            for d in range(3):
                out[k, c, d] = R[c, d, 0] * q[0, c] + R[c, d, 1] * q[1, c] + R[c, d, 2] * q[2, c]


def _root_segments(solver, g) -> np.ndarray:
    """Indices (rows of segment_geometry) of the segments of the soma section, every cell: the
    'root' that root_as_point treats as a point."""
    lay = solver.layout
    k = lay.morphology.index(solver.spec.soma)
    local = np.nonzero(np.asarray(lay.seg_section) == k)[0].astype(np.int64)
    S = len(g["diam_um"]) // solver.n_cells
    return (local[None, :] + S * np.arange(solver.n_cells)[:, None]).ravel()


def cell_dipoles(solver, ports, model, period_ticks):
    """One current dipole moment per cell (nA*um) = sum over its segments of the transmembrane
    current times the segment midpoint (LFPykit's CurrentDipoleMoment), placed at the cell's
    position (its origin in tissue, ``positions_um``). With no electrode current the moment does
    not depend on the origin. Samples as cell_extracellular (the step ending at each sample)."""
    _no_model("cell_population", model)
    _check_period("cell_population", solver.dt_ticks, period_ticks)
    currents = cell_currents(solver, period_ticks)
    n = solver.n_cells
    pos = (np.zeros((n, 3)) if solver.spec.positions_um is None
           else np.array(solver.spec.positions_um, dtype=np.float64))
    samplers = _DIPOLE_SAMPLERS.setdefault(solver, {})
    sampler = samplers.get(period_ticks)
    if sampler is None:
        # per cell, the moment about its own position, sum I (r - r_cell): the same as about the
        # origin when the cell's currents sum to zero, and better conditioned far from it. With
        # r = R r_local + r_cell (segment_geometry's placement), sum I (r - r_cell) = R sum I
        # r_local: summed in the cell's frame, then turned once per cell
        from ..solvers.cell.population import rotation_matrix
        lay = solver.layout
        seg_node = np.asarray(lay.seg_node, dtype=np.int64)
        m = np.zeros((3, solver.nodes_per_cell))
        m[:, seg_node] = (0.5 * (np.asarray(lay.seg_start_um) + np.asarray(lay.seg_end_um))).T
        rot = solver.spec.rotations_deg
        R = (np.broadcast_to(np.eye(3), (n, 3, 3)).copy() if rot is None
             else np.stack([rotation_matrix(r) for r in np.array(rot, dtype=np.float64)]))
        q = np.empty((3, n))

        def f(rows: np.ndarray) -> np.ndarray:      # rows (k, N, n) -> (k, n, 3)
            out = np.empty((rows.shape[0], n, 3))
            _local_dipoles(rows, seg_node, m, R, q, out)
            return out
        sampler = samplers[period_ticks] = StepEndSampler(solver.dt_ticks, period_ticks, f, (n, 3))

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        return sampler(t0, t1, *currents(t0, t1))
    return pos, part


# --------------------------------------------------------------------------------------------
# neural masses
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RegionDipoles(SourceModel):
    """A current dipole per region of a neural-mass network, proportional to the model's
    EEG-like output (the ``activity`` port: the pyramidal PSP, y1 - y2 in mV for Jansen-Rit).

    p_i(t) = gain_i * activity_i(t) * orientation_i   (nA*um), placed at position_i.

    Parameters
    ----------
    gain_nA_um_per_mV : one gain for every region, or one per region (nA*um per mV of the
        activity; for models whose activity has other units, per that unit). It lumps the
        number of aligned pyramidal cells in the region and each one's dipole per mV of PSP
        (e.g. 1e5 cells x 1 nA*um/mV = 1e5 nA*um/mV); it scales the EEG/MEG, not their shape.
    positions_um : (n_regions, 3) dipole positions (um), or None: the connectome's region
        centres (mm, times 1000)
    orientations : (n_regions, 3) directions (normalised here), or None: radial, from
        ``head_centre_um`` through each position
    head_centre_um : (3,) centre of the head (um), for the default radial orientations

    Assumptions: one equivalent dipole per region, its moment linear in the activity (no
    offset: a resting activity gives a constant dipole, which EEG electrodes see as DC).
    """

    type: ClassVar[str] = "region_dipoles"

    gain_nA_um_per_mV: Any = 1.0
    positions_um: tuple | None = None
    orientations: tuple | None = None
    head_centre_um: tuple = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        g = self.gain_nA_um_per_mV
        if isinstance(g, (list, tuple, np.ndarray)):
            arr = np.array(as_tuple(self, "gain_nA_um_per_mV", float))
            if arr.ndim != 1 or not arr.size or not np.isfinite(arr).all():
                raise fail(self, f"'gain_nA_um_per_mV' must be a finite number or a sequence of "
                                 f"finite numbers, one per region (got {g!r})")
        else:
            require_number(self, "gain_nA_um_per_mV")
        for name in ("positions_um", "orientations"):
            if getattr(self, name) is not None:
                arr = np.array(as_tuple(self, name, float))
                if arr.ndim != 2 or arr.shape[1] != 3 or not np.isfinite(arr).all():
                    raise fail(self, f"{name!r} must be rows of 3 finite numbers, one per region "
                                     f"(got shape {arr.shape})")
                if name == "orientations" and (np.linalg.norm(arr, axis=1) == 0).any():
                    raise fail(self, "'orientations' must be nonzero vectors (a row is 0, 0, 0)")
        c = np.array(as_tuple(self, "head_centre_um", float))
        if c.shape != (3,) or not np.isfinite(c).all():
            raise fail(self, f"'head_centre_um' must be 3 finite numbers (got {self.head_centre_um!r})")

    def arrays(self, n_regions: int, centres_mm: np.ndarray | None):
        """(gain (n,), positions (n, 3) um, unit orientations (n, 3)) for ``n_regions`` regions;
        ModelError when a size does not match or nothing gives the positions."""
        gain = np.broadcast_to(np.asarray(self.gain_nA_um_per_mV, dtype=np.float64), (n_regions,)) \
            if np.ndim(self.gain_nA_um_per_mV) == 0 else np.asarray(self.gain_nA_um_per_mV, dtype=np.float64)
        if gain.shape != (n_regions,):
            raise fail(self, f"'gain_nA_um_per_mV' has {gain.size} values for {n_regions} regions")
        if self.positions_um is not None:
            pos = np.array(self.positions_um, dtype=np.float64)
        elif centres_mm is not None:
            pos = 1000.0 * np.asarray(centres_mm, dtype=np.float64)
        else:
            raise fail(self, "'positions_um' is None and the connectome has no region centres "
                             "(centres_mm): give the positions")
        if pos.shape != (n_regions, 3):
            raise fail(self, f"'positions_um' has shape {pos.shape} for {n_regions} regions")
        if self.orientations is not None:
            ori = np.array(self.orientations, dtype=np.float64)
        else:
            ori = pos - np.array(self.head_centre_um, dtype=np.float64)
            if (np.linalg.norm(ori, axis=1) == 0).any():
                raise fail(self, "a region sits at 'head_centre_um', so it has no radial "
                                 "direction: give 'orientations'")
        if ori.shape != (n_regions, 3):
            raise fail(self, f"'orientations' has shape {ori.shape} for {n_regions} regions")
        ori = ori / np.linalg.norm(ori, axis=1, keepdims=True)
        return np.array(gain), pos, ori

    @classmethod
    def example(cls) -> "RegionDipoles":
        return cls(gain_nA_um_per_mV=(1e5, 2e5), positions_um=((0.0, 0.0, 70000.0), (0.0, 60000.0, 30000.0)))


def region_dipoles(solver, ports, model, period_ticks):
    """Region dipoles of a RegionNetwork from its ``activity`` output (see RegionDipoles)."""
    spec = solver.spec
    if model is None:
        model = RegionDipoles()
    if not isinstance(model, RegionDipoles):
        raise ModelError(f"region_network: the source model must be a RegionDipoles (got "
                         f"{type(model).__name__})")
    n = spec.n_regions
    centres = None if spec.connectome is None else spec.connectome.centre_array()
    gain, pos, ori = model.arrays(n, centres)
    _check_period("region_network", solver.dt_ticks, period_ticks)
    dt = solver.dt_ticks
    w = gain[:, None] * ori  # (n, 3) nA*um per unit of activity

    def part(t0: int, t1: int, result: WindowResult) -> np.ndarray:
        sig = result.outputs["activity"]
        a = sig.data[sample_rows(t0, t1, dt, period_ticks)]  # (k, n)
        return a[:, :, None] * w[None, :, :]
    return pos, part


def _cell_count(ports: Mapping) -> int | None:
    # cell_population: one dipole per cell, as many as spike channels
    if {"spikes", "v_soma", "i_inj"} <= set(ports):
        return ports["spikes"].size
    return None


def _region_count(ports: Mapping) -> int | None:
    # region_network: one dipole per region
    if {"state", "activity", "coupling", "input"} <= set(ports):
        return ports["activity"].size
    return None


register_source_count(_cell_count)
register_source_count(_region_count)
register_extracellular("cell_population", cell_extracellular)
register_dipoles("cell_population", cell_dipoles)
register_dipoles("region_network", region_dipoles)
