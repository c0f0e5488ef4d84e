"""The passive multicompartment cell behind the kernel method: exact responses to current synapses.

Owns the physics of :mod:`.kernels` that does not depend on the network: the compartments of a
passive cell (the cell solver's own discretisation, :func:`~polyscale.solvers.cell.layout_cell`),
their transmembrane currents after a synaptic current of unit peak, solved in closed form (no
time step), the placement of a population's cells over a disc, and small closed forms of the
extracellular potential of line and point sources (used when no forward model is handed in).

The compartmental model (NEURON's discretisation, zero-area end nodes eliminated) is linear:

    C du/dt = -(L + G) u + p I(t),   i_m = -L u     (u = v - v_rest, mV; i_m outward, nA)

with C (S,) nF, G (S,) uS the leak, L the axial Laplacian (uS) reduced onto the segments, p (S,)
how the synaptic current I (nA, inward positive) is shared between segments. With S = C^-1/2 (L +
G) C^-1/2 = Q diag(lam) Q^T, u(t) = C^-1/2 Q diag(int_0^t e^(-lam (t-s)) I(s) ds) Q^T C^-1/2 p,
and for exponential I each integral has a closed form, so the kernels are exact for the
compartmental model at any sample time.
"""
from __future__ import annotations

import math

import numpy as np

from ..coordinator.errors import ModelError
from ..solvers._jit import njit

#: golden angle (rad): successive cells of the disc placement turn by it (Vogel's sunflower)
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def exp2_peak_factor(tau_rise_ms: float, tau_decay_ms: float) -> float:
    """f such that f (exp(-t/tau_decay) - exp(-t/tau_rise)) peaks at 1 (NEURON's Exp2Syn); 1
    for a single exponential (tau_rise 0)."""
    if tau_rise_ms == 0.0:
        return 1.0
    tp = tau_rise_ms * tau_decay_ms / (tau_decay_ms - tau_rise_ms) * math.log(tau_decay_ms / tau_rise_ms)
    return 1.0 / (math.exp(-tp / tau_decay_ms) - math.exp(-tp / tau_rise_ms))


def unit_current_area(tau_rise_ms: float, tau_decay_ms: float) -> float:
    """Charge (nA ms = pC) of the synaptic current of peak 1 nA: f (tau_decay - tau_rise)."""
    return exp2_peak_factor(tau_rise_ms, tau_decay_ms) * (tau_decay_ms - tau_rise_ms)


def _exp_conv(lam: np.ndarray, a: float, t: np.ndarray) -> np.ndarray:
    """(T, K): int_0^t exp(-lam (t - s)) exp(-a s) ds for lam (K,) 1/ms, a 1/ms, t (T,) ms.

    (exp(-a t) - exp(-lam t)) / (lam - a), with the series of expm1 where lam t is near a t
    (the difference would cancel)."""
    tt = t[:, None]
    d = lam[None, :] - a
    x = d * tt
    small = np.abs(x) < 1e-3
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        direct = (np.exp(-a * tt) - np.exp(-lam[None, :] * tt)) / np.where(small, 1.0, d)
    series = np.exp(-lam[None, :] * tt) * tt * (1.0 + x / 2.0 + x * x / 6.0)
    return np.where(small, series, direct)


class PassiveCell:
    """A passive cell of the cell solver's compartments, reduced onto its S segments.

    layout : a CellLayout (solvers/cell/population.py); g_pas_uS : (N,) leak per node (uS), >0
    on every segment node. Attributes: cap_nF (S,), lap_uS (S, S) reduced axial Laplacian,
    g_uS (S,), mid_um (S, 3) segment midpoints in the cell's own frame, start_um, end_um (S, 3),
    diam_um (S,), area_um2 (S,).
    """

    def __init__(self, layout, g_pas_uS: np.ndarray):
        N = layout.n_nodes
        lap = np.zeros((N, N))
        for i in range(1, N):
            p, g = int(layout.parent[i]), float(layout.g_ax[i])
            lap[i, i] += g
            lap[p, p] += g
            lap[i, p] -= g
            lap[p, i] -= g
        seg = layout.seg_node
        zero = np.setdiff1d(np.arange(N), seg)
        # zero-area nodes hold no charge: Kron reduction (their Kirchhoff rows solved exactly)
        red = lap[np.ix_(seg, seg)]
        if zero.size:
            red = red - lap[np.ix_(seg, zero)] @ np.linalg.solve(lap[np.ix_(zero, zero)], lap[np.ix_(zero, seg)])
        self.lap_uS = 0.5 * (red + red.T)
        self.cap_nF = np.asarray(layout.cap_nF, dtype=np.float64)[seg]
        self.g_uS = np.asarray(g_pas_uS, dtype=np.float64)[seg]
        if (self.g_uS <= 0).any() or (self.cap_nF <= 0).any():
            raise ModelError("kernel cell: every segment needs a leak conductance > 0 and a capacitance > 0")
        self.start_um = np.asarray(layout.seg_start_um, dtype=np.float64)
        self.end_um = np.asarray(layout.seg_end_um, dtype=np.float64)
        self.mid_um = 0.5 * (self.start_um + self.end_um)
        self.diam_um = np.asarray(layout.seg_diam_um, dtype=np.float64)
        self.area_um2 = np.asarray(layout.area_um2, dtype=np.float64)[seg]
        self.section = np.asarray(layout.seg_section, dtype=np.int64)
        s = 1.0 / np.sqrt(self.cap_nF)
        sym = s[:, None] * (self.lap_uS + np.diag(self.g_uS)) * s[None, :]
        lam, q = np.linalg.eigh(0.5 * (sym + sym.T))
        self.lam_per_ms = lam                       # uS / nF = 1/ms
        self._out = -(self.lap_uS * s[None, :]) @ q  # i_m = out @ modal amplitudes
        self._in = q.T * s[None, :]                 # modal input of a current distribution

    @property
    def n_segments(self) -> int:
        return int(self.cap_nF.shape[0])

    def membrane_currents(self, share: np.ndarray, t_ms: np.ndarray, tau_rise_ms: float,
                          tau_decay_ms: float) -> np.ndarray:
        """(T, S) nA: transmembrane currents (outward positive, capacitive + leak + synaptic) at
        times t_ms (T,) after a synaptic current of peak 1 nA, f (exp(-t/tau_decay) -
        exp(-t/tau_rise)) (a single exponential when tau_rise_ms is 0), starts at t = 0, shared
        between segments by ``share`` (S,) (fractions summing to 1). Each row sums to zero."""
        t = np.asarray(t_ms, dtype=np.float64)
        c = self._in @ np.asarray(share, dtype=np.float64)
        modal = _exp_conv(self.lam_per_ms, 1.0 / tau_decay_ms, t)
        if tau_rise_ms > 0.0:
            modal = modal - _exp_conv(self.lam_per_ms, 1.0 / tau_rise_ms, t)
            modal *= exp2_peak_factor(tau_rise_ms, tau_decay_ms)
        return (modal * c[None, :]) @ self._out.T


def disc_placement(n: int, radius_um: float, center_um) -> tuple[np.ndarray, np.ndarray]:
    """n soma positions spread evenly over a disc in the xy-plane (Vogel's sunflower: equal area
    per cell) and the rotation of each cell about z (rad, k times the golden angle).

    Returns positions (n, 3) um and angles (n,) rad. Deterministic: the same cells everywhere."""
    k = np.arange(n, dtype=np.float64)
    r = radius_um * np.sqrt((k + 0.5) / n)
    theta = k * GOLDEN_ANGLE
    pos = np.stack([r * np.cos(theta), r * np.sin(theta), np.zeros(n)], axis=1) + np.asarray(center_um, float)
    return pos, np.mod(theta, 2.0 * math.pi)


def rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def line_source_matrix(start_um: np.ndarray, end_um: np.ndarray, electrodes_um: np.ndarray,
                       sigma_S_per_m: float, min_distance_um: float) -> np.ndarray:
    """(n_el, S) mV/nA: potential of a current spread evenly along each segment (line source,
    Holt & Koch 1999, the form LFPykit's LineSourcePotential uses), infinite homogeneous
    medium of conductivity sigma. The distance from a segment's axis is at least
    min_distance_um (a number, or (1, S) per segment). phi = I / (4 pi sigma ds) (asinh(l /
    rho) - asinh(h / rho)), h and l the electrode's coordinate along the axis from the
    segment's end and start; I nA, sigma S/m, lengths um give mV."""
    a, b, e = start_um[None, :, :], end_um[None, :, :], electrodes_um[:, None, :]
    ds = np.linalg.norm(end_um - start_um, axis=1)[None, :]
    u = (b - a) / ds[..., None]
    h = np.sum((e - b) * u, axis=2)
    l = h + ds
    rho2 = np.maximum(np.sum((e - b) ** 2, axis=2) - h * h, 0.0)
    rho2 = np.maximum(rho2, min_distance_um ** 2)
    # the form without cancellation on each side of the segment
    both_before = l < 0
    both_after = h >= 0
    sq_h, sq_l = np.sqrt(h * h + rho2), np.sqrt(l * l + rho2)
    with np.errstate(divide="ignore", invalid="ignore"):
        before = np.log((sq_h - h) / (sq_l - l))
        after = np.log((l + sq_l) / (h + sq_h))
        rho = np.sqrt(rho2)
        across = np.arcsinh(l / rho) - np.arcsinh(h / rho)
    val = np.where(both_before, before, np.where(both_after, after, across))
    return val / (4.0 * math.pi * sigma_S_per_m * ds)


def point_source_matrix(mid_um: np.ndarray, electrodes_um: np.ndarray, sigma_S_per_m: float,
                        min_distance_um: float) -> np.ndarray:
    """(n_el, S) mV/nA: each segment's current at its midpoint, phi = I / (4 pi sigma r), r at
    least min_distance_um (a number, or (1, S) per segment; infinite homogeneous medium)."""
    r = np.linalg.norm(electrodes_um[:, None, :] - mid_um[None, :, :], axis=2)
    return 1.0 / (4.0 * math.pi * sigma_S_per_m * np.maximum(r, min_distance_um))


@njit
def convolve_rows(ext, kern, rows, out):
    """Add to out (R, n_ch) the causal convolutions, at R fine steps, of injections with kernels.

    ext (C, L - 1 + steps): per class, the last L - 1 injections before the window and the
    window's; kern (C, L, n_ch): lag-major kernels; rows (R,) steps of the window. out[j] +=
    sum_c sum_m ext[c, rows[j] + L - 1 - m] kern[c, m]. One fixed order of the sums, whatever
    the window (so any cut of a run into windows gives the same bits), and no BLAS threads
    competing with the solvers for cores; zero injections (most, in sparse spiking) are
    skipped."""
    C, L, n_ch = kern.shape
    W = ext.shape[1]
    R = rows.shape[0]
    for c in range(C):
        # the class's injections latest first (lag m = f - p ascending for every row), each
        # added to every row it reaches: a pass over the class's kernel in lag order (the rows'
        # lags of one injection are close together), where a pass per row read the whole
        # kernel (1.3 MB in the flagship, beyond L2) once per row. Each out[j, k] still adds c
        # by c, then m by m: the same sums in the same order
        for p in range(W - 1, -1, -1):
            x = ext[c, p]
            if x == 0.0:
                continue
            for j in range(R):
                m = rows[j] + L - 1 - p
                if m < 0 or m >= L:
                    continue
                o = out[j]
                km = kern[c, m]
                for k in range(n_ch):
                    o[k] += x * km[k]


@njit
def inject_classes(inj, cls_src, steps, ids, s_off, delays, d_off, weights, w_off):
    """Add each spike's summed synaptic weights at its step plus each delay, for every class c
    at once: the spikes of its source
    (``steps[s_off[cls_src[c]]:s_off[cls_src[c] + 1]]``, ``ids`` likewise), its delays
    ``delays[d_off[c]:d_off[c + 1]]`` (D of them) and its weights, row-major (n_source, D) from
    ``weights[w_off[c]]``: inj[c, steps[s] + delay[d]] += weight[ids[s], d], spikes then delays
    in order (the order ``np.add.at`` adds them in, so the sums are the same bits)."""
    for c in range(inj.shape[0]):
        a, b = s_off[cls_src[c]], s_off[cls_src[c] + 1]
        d0 = d_off[c]
        D = d_off[c + 1] - d0
        w0 = w_off[c]
        for s in range(a, b):
            i, k = ids[s], steps[s]
            for d in range(D):
                inj[c, k + delays[d0 + d]] += weights[w0 + i * D + d]
