"""Forward models as matrices: geometry in, a linear map from currents or dipoles to signals out.

Pure numpy/numba, no specs: each function takes positions (um), conductivities (S/m) and returns
a matrix that the probes (probes/extracellular.py, probes/head.py) build once and multiply with
activity each window. Units throughout:

- transmembrane currents I: nA; extracellular potential: mV; so point/line-source matrices are
  mV/nA. (1 nA / (S/m * um) = 1 mV: 1/(4 pi sigma r) with sigma in S/m and r in um is mV/nA.)
- current dipole moments p: nA*um; dipole-to-potential matrices: mV/(nA*um).
- magnetic field: fT; dipole-to-field matrices: fT/(nA*um). (H in nA/um is 1e-3 A/m, and
  B = mu0 H, so B [fT] = 4 pi 1e-7 * 1e-3 * 1e15 * H [nA/um] = 4 pi 1e5 H.)
- CSD: nA/um^3.

Assumptions unless a function says otherwise: an infinite, homogeneous, isotropic, ohmic,
quasi-static extracellular medium (Nunez & Srinivasan 2006; Holt 1998; Einevoll et al. 2013).
The formulas are the ones LFPykit 0.6 implements (Hagen et al. 2018, Front. Neuroinform.
12:92), written anew here and checked against LFPykit's output (tests/test_forward.py).
"""
from __future__ import annotations

import math

import numpy as np

from ..coordinator.errors import ModelError
from ..solvers._jit import njit

MU0_T_M_PER_A = 4e-7 * math.pi
#: fT per (nA/um) of H: B = mu0 H, H [nA/um] = 1e-3 A/m
FT_PER_H_NA_PER_UM = MU0_T_M_PER_A * 1e-3 * 1e15

METHODS = ("point", "line", "root_as_point")


def _as_points(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 3:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.isfinite(arr).all():
        raise ModelError(f"{name} must be an (n, 3) array of finite positions in um (got shape {arr.shape})")
    return arr


def _r_limit(diam_um: np.ndarray, min_distance_um: float | None) -> np.ndarray:
    # LFPykit's default: no electrode closer to a segment's axis than its radius
    if min_distance_um is None:
        return 0.5 * np.asarray(diam_um, dtype=np.float64)
    return np.full(np.shape(diam_um), float(min_distance_um))


# --------------------------------------------------------------------------------------------
# potentials of transmembrane currents
# --------------------------------------------------------------------------------------------
def point_source_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m: float = 0.3,
                        min_distance_um: float | None = None) -> np.ndarray:
    """(n_el, n_seg) mV/nA: each segment's current as a point at its midpoint,
    V = I / (4 pi sigma r), r clipped below at ``min_distance_um`` (default: each segment's
    radius, diam/2).

    start_um, end_um : (n_seg, 3) segment end points; diam_um : (n_seg,); electrodes_um :
    (n_el, 3). LFPykit PointSourcePotential."""
    s, e = _as_points(start_um, "start_um"), _as_points(end_um, "end_um")
    el = _as_points(electrodes_um, "electrodes_um")
    mid = 0.5 * (s + e)
    r2 = ((el[:, None, :] - mid[None, :, :]) ** 2).sum(-1)
    lim = _r_limit(diam_um, min_distance_um)
    r2 = np.maximum(r2, (lim * lim)[None, :])
    return 1.0 / (4.0 * np.pi * sigma_S_per_m * np.sqrt(r2))


def line_source_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m: float = 0.3,
                       min_distance_um: float | None = None) -> np.ndarray:
    """(n_el, n_seg) mV/nA: each segment's current spread evenly along it (the line-source
    approximation, Holt 1998 Eq. C.13; LFPykit LineSourcePotential). The squared distance from
    an electrode to a segment's axis is clipped below at ``min_distance_um`` squared (default:
    each segment's radius). Zero-length segments are point sources.

    V = I / (4 pi sigma L) * ln((sqrt(l^2 + r^2) + l) / (sqrt(h^2 + r^2) + h)) with h the signed
    distance along the axis from the segment's end to the electrode's projection, l = h + L,
    r the distance to the axis; written per sign of h and l to avoid cancellation."""
    s, e = _as_points(start_um, "start_um"), _as_points(end_um, "end_um")
    el = _as_points(electrodes_um, "electrodes_um")
    d = e - s
    ds = np.sqrt((d * d).sum(-1))
    zero = ds == 0.0
    dsafe = np.where(zero, 1.0, ds)
    rel = el[:, None, :] - e[None, :, :]                       # (n_el, n_seg, 3) from segment end
    h = (rel * d[None, :, :]).sum(-1) / dsafe[None, :]
    r2 = np.abs((rel * rel).sum(-1) - h * h)
    lim = _r_limit(np.broadcast_to(np.asarray(diam_um, dtype=np.float64), ds.shape), min_distance_um)
    r2 = np.maximum(r2, (lim * lim)[None, :])
    l_ = h + dsafe[None, :]
    out = np.empty_like(h)
    c1 = (h < 0) & (l_ < 0)
    c2 = (h < 0) & (l_ >= 0)
    c3 = h >= 0
    hh, ll, rr = h[c1], l_[c1], r2[c1]
    out[c1] = np.log((np.sqrt(hh * hh + rr) - hh) / (np.sqrt(ll * ll + rr) - ll))
    hh, ll, rr = h[c2], l_[c2], r2[c2]
    out[c2] = np.log((np.sqrt(hh * hh + rr) - hh) * (ll + np.sqrt(ll * ll + rr)) / rr)
    hh, ll, rr = h[c3], l_[c3], r2[c3]
    out[c3] = np.log((np.sqrt(ll * ll + rr) + ll) / (np.sqrt(hh * hh + rr) + hh))
    M = out / (4.0 * np.pi * sigma_S_per_m * dsafe[None, :])
    if zero.any():
        M[:, zero] = point_source_matrix(s[zero], e[zero], np.asarray(diam_um)[zero] if np.ndim(diam_um)
                                         else np.full(zero.sum(), diam_um), el, sigma_S_per_m,
                                         min_distance_um)
    return M


def extracellular_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m: float = 0.3,
                         method: str = "line", min_distance_um: float | None = None,
                         roots=None) -> np.ndarray:
    """(n_el, n_seg) mV/nA by ``method``: 'point', 'line', or 'root_as_point' (the segments in
    ``roots``, default segment 0, as points at their midpoints; the rest as lines; LFPykit
    RecExtElectrode(method='root_as_point'))."""
    if method == "point":
        return point_source_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m, min_distance_um)
    if method == "line":
        return line_source_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m, min_distance_um)
    if method == "root_as_point":
        M = line_source_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m, min_distance_um)
        idx = np.array([0] if roots is None else roots, dtype=np.int64)
        s, e = np.asarray(start_um, dtype=np.float64), np.asarray(end_um, dtype=np.float64)
        diam = np.broadcast_to(np.asarray(diam_um, dtype=np.float64), (s.shape[0],))
        M[:, idx] = point_source_matrix(s[idx], e[idx], diam[idx], electrodes_um, sigma_S_per_m,
                                        min_distance_um)
        return M
    raise ModelError(f"extracellular method must be one of {', '.join(map(repr, METHODS))} (got {method!r})")


def mirror(points_um: np.ndarray, plane_point_um, plane_normal) -> np.ndarray:
    """Points reflected through the plane through ``plane_point_um`` with normal ``plane_normal``."""
    n = np.asarray(plane_normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    p = np.asarray(points_um, dtype=np.float64)
    return p - 2.0 * ((p - np.asarray(plane_point_um, dtype=np.float64)) @ n)[..., None] * n


def planar_interface_matrix(start_um, end_um, diam_um, electrodes_um, sigma_S_per_m: float = 0.3,
                            sigma_above_S_per_m: float = 0.0, plane_point_um=(0.0, 0.0, 0.0),
                            plane_normal=(0.0, 0.0, 1.0), method: str = "line",
                            min_distance_um: float | None = None, roots=None) -> np.ndarray:
    """(n_el, n_seg) mV/nA: sources in tissue (sigma_S_per_m) below a planar interface to a
    medium of ``sigma_above_S_per_m`` (0: an insulator such as air or a silicone ECoG grid),
    by the method of images (Nunez & Srinivasan 2006; Ness et al. 2015 for MEAs).

    The plane passes through ``plane_point_um``; ``plane_normal`` points from the tissue into
    the other medium. With W = (s_t - s_a) / (s_t + s_a):
    electrodes in tissue or on the plane: V = V_inf(sources) + W V_inf(mirrored sources);
    electrodes beyond the plane: V = (1 + W) V_inf(sources), both with sigma = s_t. On the
    plane both give (1 + W) V_inf: twice the infinite-medium potential for an insulator.
    Assumes every segment lies in the tissue (on its side of the plane)."""
    st, sa = float(sigma_S_per_m), float(sigma_above_S_per_m)
    W = (st - sa) / (st + sa)
    el = _as_points(electrodes_um, "electrodes_um")
    n = np.asarray(plane_normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    p0 = np.asarray(plane_point_um, dtype=np.float64)
    s, e = _as_points(start_um, "start_um"), _as_points(end_um, "end_um")
    if (((s - p0) @ n) > 1e-9).any() or (((e - p0) @ n) > 1e-9).any():
        raise ModelError("planar interface: every segment must lie in the tissue, on the side of "
                         "the plane opposite to plane_normal")
    direct = extracellular_matrix(s, e, diam_um, el, st, method, min_distance_um, roots)
    image = extracellular_matrix(mirror(s, p0, n), mirror(e, p0, n), diam_um, el, st, method,
                                 min_distance_um, roots)
    beyond = ((el - p0) @ n) > 0
    M = direct + W * image
    M[beyond] = (1.0 + W) * direct[beyond]
    return M


# --------------------------------------------------------------------------------------------
# current source density
# --------------------------------------------------------------------------------------------
def laminar_csd_matrix(start_um, end_um, z_edges_um, r_um, axis_xy_um=(0.0, 0.0),
                       lfpykit_fractions: bool = False) -> np.ndarray:
    """(n_vol, n_seg) 1/um^3: "ground truth" CSD in cylinders along z, C = M @ I (nA/um^3).

    Each cylinder j (axis at ``axis_xy_um``, radius r_um[j], z in [z_edges_um[j, 0],
    z_edges_um[j, 1])) gets the fraction of each segment's length that lies inside it (the
    segment's current spread evenly along it, as the line source assumes), divided by the
    cylinder's volume (Pettersen et al. 2008; Hagen et al. 2017 Eq. 11).

    lfpykit_fractions : LFPykit 0.6's LaminarCurrentSourceDensity instead: 1 for a segment with
        both ends inside; for one end inside, the length from that end to where the segment,
        drawn straight in the (distance from the axis, z) plane, leaves the cylinder, over the
        segment's 3D length; 0 when neither end is inside. The same as the default for segments
        parallel to the axis or in a plane through it; otherwise an approximation (a segment
        passing through a cylinder without an end inside it counts nothing there)."""
    s, e = _as_points(start_um, "start_um"), _as_points(end_um, "end_um")
    z = np.asarray(z_edges_um, dtype=np.float64)
    r = np.broadcast_to(np.asarray(r_um, dtype=np.float64), (z.shape[0],))
    if z.ndim != 2 or z.shape[1] != 2 or not (z[:, 1] > z[:, 0]).all() or not (r > 0).all():
        raise ModelError("laminar CSD: z_edges_um must be (n, 2) with lower < upper edge and r_um > 0")
    c = np.asarray(axis_xy_um, dtype=np.float64)
    if lfpykit_fractions:
        return _lfpykit_laminar(s, e, z, r, c)
    d = e - s
    # z slab: s(t) = s + t d, t in [0, 1]
    dz = d[:, 2][None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_a = (z[:, 0:1] - s[None, :, 2]) / dz
        t_b = (z[:, 1:2] - s[None, :, 2]) / dz
    flat = dz == 0
    inside_flat = (s[None, :, 2] >= z[:, 0:1]) & (s[None, :, 2] < z[:, 1:2])
    lo = np.where(flat, np.where(inside_flat, 0.0, 1.0), np.minimum(t_a, t_b))
    hi = np.where(flat, np.where(inside_flat, 1.0, 0.0), np.maximum(t_a, t_b))
    # radial disc: |p_xy + t d_xy - c|^2 <= r^2, a t^2 + b t + k <= 0
    q = s[:, :2] - c
    a = (d[:, :2] ** 2).sum(-1)[None, :]
    b = 2.0 * (q * d[:, :2]).sum(-1)[None, :]
    k = (q * q).sum(-1)[None, :] - (r * r)[:, None]
    disc = b * b - 4.0 * a * k
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        r_lo = np.where(a > 0, (-b - sq) / (2.0 * a), np.where(k <= 0, -np.inf, np.inf))
        r_hi = np.where(a > 0, (-b + sq) / (2.0 * a), np.where(k <= 0, np.inf, -np.inf))
    r_lo = np.where((a > 0) & (disc < 0), np.inf, r_lo)
    r_hi = np.where((a > 0) & (disc < 0), -np.inf, r_hi)
    t0 = np.maximum(np.maximum(lo, r_lo), 0.0)
    t1 = np.minimum(np.minimum(hi, r_hi), 1.0)
    frac = np.maximum(t1 - t0, 0.0)
    vol = np.pi * r * r * (z[:, 1] - z[:, 0])
    return frac / vol[:, None]


def _lfpykit_laminar(s, e, z, r, c) -> np.ndarray:
    """LFPykit's fractions (see laminar_csd_matrix), the same arithmetic in the same order."""
    R0 = np.sqrt((s[:, 0] - c[0]) ** 2 + (s[:, 1] - c[1]) ** 2)
    R1 = np.sqrt((e[:, 0] - c[0]) ** 2 + (e[:, 1] - c[1]) ** 2)
    z0, z1 = s[:, 2], e[:, 2]
    length = np.sqrt(((e - s) ** 2).sum(-1))
    M = np.zeros((z.shape[0], s.shape[0]))
    for i in range(z.shape[0]):
        lo, hi, ri = z[i, 0], z[i, 1], r[i]
        in0 = (z0 >= lo) & (z0 < hi) & (R0 <= ri)
        in1 = (z1 >= lo) & (z1 < hi) & (R1 <= ri)
        M[i, in0 & in1] = 1.0
        # boundary lines (r2, z2)-(r3, z3): bottom, top, side, in LFPykit's order (last hit wins)
        for r2, z2, r3, z3 in ((0.0, lo, ri, lo), (0.0, hi, ri, hi), (ri, lo, ri, hi)):
            with np.errstate(divide="ignore", invalid="ignore"):
                denom = (R0 - R1) * (z2 - z3) - (z0 - z1) * (r2 - r3)
                Pr = ((R0 * z1 - z0 * R1) * (r2 - r3) - (R0 - R1) * (r2 * z3 - r3 * z2)) / denom
                Pz = ((R0 * z1 - z0 * R1) * (z2 - z3) - (z0 - z1) * (r2 * z3 - r3 * z2)) / denom
            hit = (((Pr >= R0) & (Pr <= R1) | (Pr <= R0) & (Pr >= R1))
                   & ((Pz >= z0) & (Pz <= z1) | (Pz <= z0) & (Pz >= z1)))
            first = in0 & ~in1 & hit
            M[i, first] = np.sqrt((Pr[first] - R0[first]) ** 2 + (Pz[first] - z0[first]) ** 2) / length[first]
            last = ~in0 & in1 & hit
            M[i, last] = np.sqrt((Pr[last] - R1[last]) ** 2 + (Pz[last] - z1[last]) ** 2) / length[last]
    return M / (np.pi * r * r * (z[:, 1] - z[:, 0]))[:, None]


def second_difference_csd(v_mV: np.ndarray, spacing_um: float, sigma_S_per_m: float = 0.3) -> np.ndarray:
    """Standard CSD estimate (nA/um^3) from potentials on equally spaced contacts along a line:
    C_k = -sigma (V_{k-1} - 2 V_k + V_{k+1}) / h^2 at the interior contacts (Nicholson &
    Freeman 1975; Pettersen et al. 2006 "standard CSD"). v_mV : (..., n_contacts);
    returns (..., n_contacts - 2). With V in mV, h in um and sigma in S/m the result is nA/um^3.
    Assumes a laterally infinite, homogeneous layered source (no lateral currents)."""
    v = np.asarray(v_mV, dtype=np.float64)
    return -sigma_S_per_m * (v[..., :-2] - 2.0 * v[..., 1:-1] + v[..., 2:]) / (spacing_um * spacing_um)


def second_difference_matrix(n_contacts: int, spacing_um: float, sigma_S_per_m: float = 0.3) -> np.ndarray:
    """(n_contacts - 2, n_contacts) matrix D with C = D @ V: :func:`second_difference_csd`."""
    D = np.zeros((n_contacts - 2, n_contacts))
    k = np.arange(n_contacts - 2)
    f = -sigma_S_per_m / (spacing_um * spacing_um)
    D[k, k], D[k, k + 1], D[k, k + 2] = f, -2.0 * f, f
    return D


# --------------------------------------------------------------------------------------------
# dipoles
# --------------------------------------------------------------------------------------------
def dipole_moment_matrix(start_um, end_um, origin_um=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(3, n_seg) um: current dipole moment P = M @ I (nA*um), P = sum_k I_k (r_k - origin) with
    r_k the segment midpoints (LFPykit CurrentDipoleMoment, origin 0). With sum_k I_k = 0 the
    moment does not depend on the origin."""
    s, e = _as_points(start_um, "start_um"), _as_points(end_um, "end_um")
    return (0.5 * (s + e) - np.asarray(origin_um, dtype=np.float64)).T.copy()


def infinite_dipole_matrix(electrodes_um, dipoles_um, sigma_S_per_m: float = 0.3) -> np.ndarray:
    """(n_el, n_dip, 3) mV/(nA*um): potential of current dipoles in an infinite homogeneous
    medium, V = p . R / (4 pi sigma |R|^3), R = electrode - dipole (the far-field limit of the
    sources it stands for)."""
    el, dp = _as_points(electrodes_um, "electrodes_um"), _as_points(dipoles_um, "dipole positions")
    R = el[:, None, :] - dp[None, :, :]
    r = np.sqrt((R * R).sum(-1))
    if (r == 0).any():
        raise ModelError("a dipole sits exactly at an electrode: its potential is infinite there")
    return R / (4.0 * np.pi * sigma_S_per_m * r[..., None] ** 3)


# --- four-sphere head (Naess et al. 2017) -----------------------------------------------------
def _four_sphere_coefficients(n: np.ndarray, rz: float, radii, sigmas):
    r1, r2, r3, r4 = radii
    s1, s2, s3, s4 = sigmas
    r12, r23, r34 = r1 / r2, r2 / r3, r3 / r4
    s12, s23, s34 = s1 / s2, s2 / s3, s3 / s4
    np1 = (n + 1.0) / n
    nn1 = n / (n + 1.0)
    rz1 = rz / r1
    p34 = r34 ** (2 * n + 1)
    rc = (p34 - 1.0) / (np1 * p34 + 1.0)
    vn = (nn1 * s34 - rc) / (s34 + rc)
    p23 = r23 ** (2 * n + 1)
    rc2 = (nn1 * p23 - vn) / (p23 + vn)
    yn = (nn1 * s23 - rc2) / (s23 + rc2)
    p12 = r12 ** (2 * n + 1)
    zn = (p12 - np1 * yn) / (p12 + yn)
    rzn = rz1 ** (n + 1)
    c1 = (np1 * s12 + zn) / (s12 - zn) * rzn
    c2 = (c1 + rzn) * r12 ** (n + 1) / (p12 + yn)
    d2 = yn * c2
    c3 = (c2 + d2) * r23 ** (n + 1) / (p23 + vn)
    d3 = vn * c3
    c4 = np1 * r34 ** (n + 1) * (c3 + d3) / (np1 * p34 + 1.0)
    d4 = nn1 * c4
    return dict(c1=c1, yn=yn, rzn=rzn, c3=c3, d3=d3, c4=c4, d4=d4)


def _four_sphere_radial_coef(n, r, rz, radii, k):
    """Coefficient of the n-th Legendre term at radius r (um) (the factor of P_n for a radial
    dipole is n times this; of P_n^1 for a tangential one, this)."""
    r1, r2, r3, r4 = radii
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if r <= r1:
            return k["c1"] * (r / r1) ** n + (rz / r) ** (n + 1)
        if r <= r2:
            base = (r1 * r) / (r2 * r2)
            a = k["c1"] + k["rzn"]
            t1 = a * (r1 / r2) * base ** n / ((r1 / r2) ** (2 * n + 1) + k["yn"])
            t2 = k["yn"] * a / (r / r2 * base ** n + (r / r1) ** (n + 1) * k["yn"])
            return t1 + t2
        if r <= r3:
            return k["c3"] * (r / r3) ** n + k["d3"] * (r3 / r) ** (n + 1)
        return k["c4"] * (r / r4) ** n + k["d4"] * (r4 / r) ** (n + 1)


@njit
def _legendre_sums(x: np.ndarray, coef: np.ndarray, k_rad: np.ndarray, k_tan: np.ndarray,
                   out_rad: np.ndarray, out_tan: np.ndarray) -> None:
    """For each electrode e: out_rad[e] = sum_{n=1..k_rad[e]} n coef[e, n-1] P_n(x_e) and
    out_tan[e] = sum_{n=1..k_tan[e]} coef[e, n-1] P_n^1(x_e) (P_n^1 with the Condon-Shortley
    phase, as scipy's lpmv), by the three-term recurrences."""
    n_el = coef.shape[0]
    for e in range(n_el):
        xe = x[e]
        s = math.sqrt(max(0.0, 1.0 - xe * xe))
        p_prev, p = 1.0, xe                  # P_0, P_1
        q_prev, q = 0.0, -s                  # P_0^1 = 0, P_1^1
        acc_r = coef[e, 0] * p if k_rad[e] >= 1 else 0.0
        acc_t = coef[e, 0] * q if k_tan[e] >= 1 else 0.0
        for n in range(1, max(k_rad[e], k_tan[e])):
            # P_{n+1} = ((2n+1) x P_n - n P_{n-1}) / (n+1)
            p_next = ((2 * n + 1) * xe * p - n * p_prev) / (n + 1)
            # P_{n+1}^1 = ((2n+1) x P_n^1 - (n+1) P_{n-1}^1) / n
            q_next = ((2 * n + 1) * xe * q - (n + 1) * q_prev) / n
            p_prev, p = p, p_next
            q_prev, q = q, q_next
            if n < k_rad[e]:
                acc_r += (n + 1) * coef[e, n] * p
            if n < k_tan[e]:
                acc_t += coef[e, n] * q
        out_rad[e] = acc_r
        out_tan[e] = acc_t


def _n_terms(const: np.ndarray, factor: float) -> int:
    """LFPykit's stopping rule: terms n = 1..K with K the first n whose term is at most
    ``factor`` times the sum of the terms up to and including it."""
    stop = np.nonzero(const <= factor * np.cumsum(const))[0]
    return int(stop[0]) + 1 if stop.size else const.shape[0]


#: LFPykit's default iteration-stop factor of the four-sphere series
LFPYKIT_ITER_FACTOR = 2.0 / 99.0 * 1e-6


def four_sphere_matrix(electrodes_um, dipole_um, radii_um=(79000.0, 80000.0, 85000.0, 90000.0),
                       sigmas_S_per_m=(0.3, 1.5, 0.015, 0.3), centre_um=(0.0, 0.0, 0.0),
                       iter_factor: float | None = LFPYKIT_ITER_FACTOR,
                       max_terms: int = 100000, lfpykit_azimuth: bool = False) -> np.ndarray:
    """(n_el, 3) mV/(nA*um): potential at electrodes of a current dipole at ``dipole_um`` in the
    four-sphere head model (brain, CSF, skull, scalp; concentric about ``centre_um``; air
    outside), the corrected series of Naess et al. 2017 (Front. Hum. Neurosci. 11:490;
    LFPykit FourSphereVolumeConductor).

    The dipole is split into a radial part (along the dipole's position vector z_hat) and a
    tangential part: V = [N_rad z_hat - N_tan rxy_hat] . p / (4 pi sigma_brain |r_z|^2), with
    theta the angle between electrode and dipole positions, rxy_hat the electrode's direction
    projected on the plane normal to z_hat, N_rad = sum_n n c_n(r) P_n(cos theta) and
    N_tan = sum_n c_n(r) P_n^1(cos theta).

    iter_factor : where the series stops, as LFPykit does: at the first term at most
        iter_factor times the running sum (times 1e-6 more for the radial series in the brain).
        The default is LFPykit's (2/99 * 1e-6), so results match it to ~1e-12; the truncation
        error is then ~1e-7..1e-5 relative (largest for tangential dipoles seen from just above
        them). None: sum until the terms' geometric bound is below 1e-16 (more exact).

    lfpykit_azimuth : LFPykit 0.6 projects the electrode on the plane normal to z_hat with an
        element-wise product (``r - r * z_hat``), which is the projection only when the dipole
        lies on a coordinate axis; elsewhere its tangential part changes when the head is
        rotated. False (default): the true projection, rotation invariant, the same as LFPykit's
        for dipoles on an axis (the reference case). True: LFPykit's, column by column as its
        ``get_transformation_matrix``, to reproduce its numbers.

    Needs 0 < |dipole| < radii[0] (in the brain) and |dipole| <= |electrode| <= radii[3]."""
    el = _as_points(electrodes_um, "electrodes_um") - np.asarray(centre_um, dtype=np.float64)
    rzv = np.asarray(dipole_um, dtype=np.float64).reshape(3) - np.asarray(centre_um, dtype=np.float64)
    radii = tuple(float(v) for v in radii_um)
    sigmas = tuple(float(v) for v in sigmas_S_per_m)
    rz = float(np.linalg.norm(rzv))
    r_el = np.sqrt((el * el).sum(-1))
    if not (0 < radii[0] < radii[1] < radii[2] < radii[3]):
        raise ModelError(f"four-sphere: radii_um must increase, brain < CSF < skull < scalp (got {radii})")
    if min(sigmas) <= 0:
        raise ModelError(f"four-sphere: sigmas_S_per_m must be > 0 (got {sigmas})")
    if not 0 < rz < radii[0]:
        raise ModelError(f"four-sphere: a dipole at {rz:g} um from the centre is not inside the brain "
                         f"sphere (0 < r < {radii[0]:g} um)")
    if (r_el > radii[3] * (1 + 1e-12)).any() or (r_el < rz).any():
        raise ModelError(f"four-sphere: electrodes must lie between the dipole's radius ({rz:g} um) and "
                         f"the scalp ({radii[3]:g} um) (got radii {r_el.min():g}..{r_el.max():g} um)")
    zhat = rzv / rz
    # how many terms to compute: the terms fall at least as fast as (rz / min(r, r1))^n
    q = rz / min(float(r_el.min()), radii[0])
    N = max_terms if q >= 1 else int(min(max_terms, math.ceil(math.log(1e-16) / math.log(q)) + 20))
    n = np.arange(1, N + 1, dtype=np.float64)
    k = _four_sphere_coefficients(n, rz, radii, sigmas)
    # the coefficients depend on the electrode's radius only: once per distinct radius (EEG
    # electrodes usually share the scalp's)
    radii_u, which = np.unique(r_el, return_inverse=True)
    coef_u = np.empty((radii_u.shape[0], N))
    k_rad_u = np.full(radii_u.shape[0], N, dtype=np.int64)
    k_tan_u = np.full(radii_u.shape[0], N, dtype=np.int64)
    for i, r in enumerate(radii_u):
        c = _four_sphere_radial_coef(n, float(r), rz, radii, k)
        coef_u[i] = np.where(np.isfinite(c), c, 0.0)
        if iter_factor is not None:
            k_rad_u[i] = _n_terms(n * coef_u[i], iter_factor * (1e-6 if r <= radii[0] else 1.0))
            k_tan_u[i] = _n_terms(coef_u[i], iter_factor)
    coef, k_rad, k_tan = coef_u[which], k_rad_u[which], k_tan_u[which]
    cos_t = np.clip(el @ zhat / r_el, -1.0, 1.0)
    n_rad, n_tan = np.empty(el.shape[0]), np.empty(el.shape[0])
    _legendre_sums(cos_t, np.ascontiguousarray(coef), k_rad, k_tan, n_rad, n_tan)
    const = 1.0 / (4.0 * np.pi * sigmas[0] * rz * rz)
    if lfpykit_azimuth:
        return const * (n_rad[:, None] * zhat[None, :] - n_tan[:, None] * _lfpykit_sin_phi(el, zhat, cos_t))
    rxy = el - (el @ zhat)[:, None] * zhat[None, :]
    nr = np.sqrt((rxy * rxy).sum(-1))
    rxy_hat = np.where(nr[:, None] > 0, rxy / np.where(nr > 0, nr, 1.0)[:, None], 0.0)
    return const * (n_rad[:, None] * zhat[None, :] - n_tan[:, None] * rxy_hat)


def _lfpykit_sin_phi(el: np.ndarray, zhat: np.ndarray, cos_t: np.ndarray) -> np.ndarray:
    """(n_el, 3): |p_tan| sin(phi) for unit dipoles along x, y, z, as LFPykit computes the
    azimuth phi (see four_sphere_matrix's ``lfpykit_azimuth``)."""
    rxy = el - el * zhat                       # LFPykit's element-wise "projection"
    out = np.zeros((el.shape[0], 3))
    on_axis = (cos_t >= 1.0) | (cos_t <= -1.0)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1.0
        p_tan = e - (e @ zhat) * zhat
        size = np.linalg.norm(p_tan)
        if size == 0:
            continue
        x = np.cross(p_tan, zhat)
        nrm = np.linalg.norm(rxy, axis=1) * np.linalg.norm(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            phi = np.arccos(np.clip((rxy @ x) / nrm, -1.0, 1.0))
        phi = np.where((rxy @ p_tan) < 0, -phi, phi)
        out[:, i] = np.where(on_axis | (nrm == 0), 0.0, size * np.sin(phi))
    return out


def four_sphere_lead_field(electrodes_um, dipoles_um, **kw) -> np.ndarray:
    """(n_el, n_dip, 3) mV/(nA*um): :func:`four_sphere_matrix` for each dipole position."""
    dp = _as_points(dipoles_um, "dipole positions")
    el = _as_points(electrodes_um, "electrodes_um")
    out = np.empty((el.shape[0], dp.shape[0], 3))
    for j in range(dp.shape[0]):
        out[:, j, :] = four_sphere_matrix(el, dp[j], **kw)
    return out


# --- MEG -----------------------------------------------------------------------------------
def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3, 3) matrices S with S @ p = v x p."""
    S = np.zeros(v.shape[:-1] + (3, 3))
    S[..., 0, 1], S[..., 0, 2] = -v[..., 2], v[..., 1]
    S[..., 1, 0], S[..., 1, 2] = v[..., 2], -v[..., 0]
    S[..., 2, 0], S[..., 2, 1] = -v[..., 1], v[..., 0]
    return S


def meg_infinite_matrix(sensors_um, dipoles_um) -> np.ndarray:
    """(n_sens, 3, n_dip, 3) fT/(nA*um): magnetic field B at sensors of current dipoles in an
    infinite homogeneous medium (Biot-Savart of the primary current; the volume currents of an
    infinite medium add nothing): B = mu0 / (4 pi) p x R / |R|^3, R = sensor - dipole
    (Hamalainen et al. 1993 Eq. 10). out[s, :, j, :] @ p_j is B (3,) at sensor s."""
    se, dp = _as_points(sensors_um, "sensors_um"), _as_points(dipoles_um, "dipole positions")
    R = se[:, None, :] - dp[None, :, :]                 # (n_s, n_d, 3)
    r = np.sqrt((R * R).sum(-1))
    if (r == 0).any():
        raise ModelError("a dipole sits exactly at a MEG sensor")
    # p x R = -R x p = -skew(R) p
    H = -_skew(R) / (4.0 * np.pi * r[..., None, None] ** 3)   # (n_s, n_d, 3, 3) nA/um per nA*um
    return FT_PER_H_NA_PER_UM * H.transpose(0, 2, 1, 3)


def meg_sarvas_matrix(sensors_um, dipoles_um, centre_um=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(n_sens, 3, n_dip, 3) fT/(nA*um): magnetic field outside a spherically symmetric
    conductor (centred at ``centre_um``) of current dipoles inside it, primary plus volume
    currents (Sarvas 1987, Phys. Med. Biol. 32:11, Eq. 25; LFPykit
    SphericallySymmetricVolCondMEG): B = mu0 / (4 pi F^2) (F q x r0 - (q x r0 . r) grad F),
    F = a (r a + r^2 - r0 . r), a = r - r0. Radial dipoles give no field outside. Independent
    of the conductivities. Sensors must lie outside the dipoles' radius."""
    c = np.asarray(centre_um, dtype=np.float64)
    se = _as_points(sensors_um, "sensors_um") - c
    dp = _as_points(dipoles_um, "dipole positions") - c
    r_vec = se[:, None, :]                              # (n_s, 1, 3)
    r0 = dp[None, :, :]                                 # (1, n_d, 3)
    a_vec = r_vec - r0
    a = np.sqrt((a_vec * a_vec).sum(-1))
    r = np.sqrt((r_vec * r_vec).sum(-1))
    if (a == 0).any():
        raise ModelError("a dipole sits exactly at a MEG sensor")
    adotr = (a_vec * r_vec).sum(-1)
    r0dotr = (r0 * r_vec).sum(-1)
    F = a * (r * a + r * r - r0dotr)
    gradF = ((a * a / r + adotr / a + 2.0 * a + 2.0 * r)[..., None] * r_vec
             - (a + 2.0 * r + adotr / a)[..., None] * r0)
    r0xr = np.cross(r0, r_vec)                          # (n_s, n_d, 3)
    # q x r0 = -skew(r0) q;  (q x r0) . r = q . (r0 x r)
    term = (-F[..., None, None] * _skew(np.broadcast_to(r0, a_vec.shape))
            - gradF[..., :, None] * r0xr[..., None, :])
    H = term / (4.0 * np.pi * F[..., None, None] ** 2)
    return FT_PER_H_NA_PER_UM * H.transpose(0, 2, 1, 3)
