"""Numba kernels of the cable solver: one fixed step of all cells' trees, as NEURON does it.

Units: v mV, t ms, capacitance nF, conductance uS, current nA (uS * mV = nA, nF * mV/ms = nA).

The cells of a population share one morphology; its nodes are in Hines order (``parent[i] <
i``, the root is node 0), and state arrays are (block, node, cell in block), so the two sweeps
of the tree solve run without fill-in over a block's cells at once, the inner loop over cells
being independent work, and a block runs all its steps while its state is in cache.

One step (NEURON's fixed step with secondorder=0): membrane currents i(v) and their
conductances g = di/dv are taken at v(t) with gating states of t; the linearised implicit
system (C/dt + g + axial) dv = I_stim - i(v) - axial v is solved; v += dv; then the gating
states advance over dt with the new v (exponential Euler, NEURON's cnexp), and synaptic
conductances decay. The clamp current is evaluated at the step's midpoint, as NEURON does.
Crank-Nicolson (secondorder=2) is the same solve with 2C/dt, after which v moves by 2 dv.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit
from ._fastexp import fexp


@njit(error_model="numpy", inline="always")
def _vtrap(x, y, ex):
    # x / (exp(x/y) - 1) given ex = exp(x/y), with its limit y (1 - x/y/2) near x = 0 (hh.mod);
    # as a select of the two (the unused side may be 0/0), so that loops of it vectorise
    return y * (1.0 - x / y / 2.0) if abs(x / y) < 1e-6 else x / (ex - 1.0)


# exp(-(v + 40)/10) = E^8 e^2.5, exp(-(v + 35)/10) = E^8 e^3, exp(-(v + 55)/10) = E^8 e^1 and
# exp(-(v + 65)/20) = E^4 with E = exp(-(v + 65)/80): one exp instead of five (rounding ~1e-15)
_E25, _E3, _E1 = math.exp(2.5), math.exp(3.0), math.exp(1.0)


@njit(error_model="numpy", inline="always")
def hh_rates(v, q10):
    """(minf, mtau, hinf, htau, ninf, ntau) of NEURON's hh.mod at v (mV); tau in ms. Its two
    exponentials are fexp's (within an ulp of libm's, and a loop of them over cells vectorises)."""
    e80 = fexp(-(v + 65.0) / 80.0)
    e20 = e80 * e80
    e20 = e20 * e20
    e10 = e20 * e20
    a = 0.1 * _vtrap(-(v + 40.0), 10.0, e10 * _E25)
    b = 4.0 * fexp(-(v + 65.0) / 18.0)
    s = a + b
    mtau = 1.0 / (q10 * s)
    minf = a / s
    a = 0.07 * e20
    b = 1.0 / (e10 * _E3 + 1.0)
    s = a + b
    htau = 1.0 / (q10 * s)
    hinf = a / s
    a = 0.01 * _vtrap(-(v + 55.0), 10.0, e10 * _E1)
    b = 0.125 * e80
    s = a + b
    ntau = 1.0 / (q10 * s)
    ninf = a / s
    return minf, mtau, hinf, htau, ninf, ntau


#: NEURON's hh.mod (9.0): ``TABLE minf, mtau, hinf, htau, ninf, ntau DEPEND celsius FROM -100
#: TO 100 WITH 200``: the six rates at v = -100, -99, ..., 100 mV (201 rows), linearly
#: interpolated when ``usetable_hh`` is 1 (NEURON's default)
HH_TABLE_VMIN_MV, HH_TABLE_STEPS = -100.0, 200


@njit
def hh_table(q10):
    """(202, 6) minf, mtau, hinf, htau, ninf, ntau (tau ms) at v = -100 + i mV, i = 0..200, as
    nocmodl's ``_check_rates`` fills them (x accumulated by += 1 mV from -100, exact in binary
    floating point); row 201 repeats row 200 so that v >= 100 mV reads row 200 exactly."""
    tab = np.empty((HH_TABLE_STEPS + 2, 6))
    dx = (100.0 - HH_TABLE_VMIN_MV) / HH_TABLE_STEPS
    x = HH_TABLE_VMIN_MV
    for i in range(HH_TABLE_STEPS + 1):
        r = hh_rates(x, q10)
        for j in range(6):
            tab[i, j] = r[j]
        x += dx
    for j in range(6):
        tab[HH_TABLE_STEPS + 1, j] = tab[HH_TABLE_STEPS, j]
    return tab


@njit(error_model="numpy", inline="always")
def hh_table_index(v):
    """(row i, fraction th) of v (mV) in :func:`hh_table`, by nocmodl's ``_n_rates``: xi = v +
    100; xi <= 0 gives row 0, xi >= 200 row 200 (th 0), NaN gives th NaN, else i = int(xi) and
    th = xi - i. Branch-free (selects), so a loop of it over cells vectorises: th = (xi - i) +
    0 xi is xi - i inside the table, 0 at or past its ends and NaN for a NaN v."""
    xi = v - HH_TABLE_VMIN_MV
    xc = float(HH_TABLE_STEPS) if xi >= HH_TABLE_STEPS else xi
    xp = xc if xc > 0.0 else 0.0
    i = int(xp)
    return i, (xp - i) + 0.0 * xc


@njit
def hh_rates_tabled(v, tab):
    """hh_rates from the table of :func:`hh_table` at v (mV): row i plus th times the
    difference to row i + 1 (:func:`hh_table_index`), as nocmodl's ``_n_rates``."""
    i, th = hh_table_index(v)
    return (tab[i, 0] + th * (tab[i + 1, 0] - tab[i, 0]), tab[i, 1] + th * (tab[i + 1, 1] - tab[i, 1]),
            tab[i, 2] + th * (tab[i + 1, 2] - tab[i, 2]), tab[i, 3] + th * (tab[i + 1, 3] - tab[i, 3]),
            tab[i, 4] + th * (tab[i + 1, 4] - tab[i, 4]), tab[i, 5] + th * (tab[i + 1, 5] - tab[i, 5]))


@njit
def hh_init(v, node, m, h, n, q10, tab):
    """Gates (blocks, K, B) at steady state for v (blocks, N, B) (NEURON's INITIAL block); the
    rates from ``tab`` (:func:`hh_table`) unless it has no rows (exact rates)."""
    for blk in range(v.shape[0]):
        for k in range(node.shape[0]):
            for c in range(v.shape[2]):
                if tab.shape[0]:
                    minf, _, hinf, _, ninf, _ = hh_rates_tabled(v[blk, node[k], c], tab)
                else:
                    minf, _, hinf, _, ninf, _ = hh_rates(v[blk, node[k], c], q10)
                m[blk, k, c] = minf
                h[blk, k, c] = hinf
                n[blk, k, c] = ninf


@njit
def group_events(st, ids, w, n_syn, block, steps, ev_step, ev_syn, ev_cell, ev_w, ev_start):
    """The window's synaptic events, in the order cell_advance reads them: by block of cells,
    within a block by step, ties in arrival order (two stable counting sorts, by step then by
    block). st (m,) int64 step in the window, ids (m,) int64 channel (cell * n_syn + synapse),
    w (m,) float64 weight (uS); out: ev_step, ev_syn, ev_cell (cell within its block), ev_w
    (m,) and ev_start (n_blocks + 1,) each block's first event. Returns 0, or 1 when a step is
    outside [0, steps) (nothing is written then)."""
    m = st.shape[0]
    n_blocks = ev_start.shape[0] - 1
    first = np.zeros(steps + 1, np.int64)
    for i in range(m):
        s = st[i]
        if s < 0 or s >= steps:
            return 1
        first[s + 1] += 1
    for s in range(steps):
        first[s + 1] += first[s]
    by_step = np.empty(m, np.int64)
    for i in range(m):
        s = st[i]
        by_step[first[s]] = i
        first[s] += 1
    for b in range(n_blocks + 1):
        ev_start[b] = 0
    for i in range(m):
        ev_start[ids[i] // n_syn // block + 1] += 1
    for b in range(n_blocks):
        ev_start[b + 1] += ev_start[b]
    at = ev_start[:n_blocks].copy()
    for j in range(m):
        i = by_step[j]
        c = ids[i] // n_syn
        b = c // block
        k = at[b]
        at[b] += 1
        ev_step[k] = st[i]
        ev_syn[k] = ids[i] - c * n_syn
        ev_cell[k] = c - b * block
        ev_w[k] = w[i]
    return 0


def static_inverse(parent, g_ax, d0, pas_g, static):
    """(N,) 1 / eliminated diagonal of the nodes where ``static`` (bool (N,)) is set, 0 elsewhere.

    A node is static when nothing at it or below it adds a conductance that changes in time
    (only pas and the axial coupling): the leaves-up elimination then gives it the same
    diagonal every step and in every cell. This repeats the kernel's own operations in the same
    order (d = d0 + g_pas, minus g f of each child, highest index first), so the kernel gets
    the same bits as when it computes them each step. The root is never static.
    """
    N = parent.shape[0]
    d = [float(d0[i]) + float(pas_g[i]) for i in range(N)]
    out = [0.0] * N
    for i in range(N - 1, 0, -1):
        inv = 1.0 / d[i]
        f = float(g_ax[i]) * inv
        d[parent[i]] -= f * float(g_ax[i])
        if static[i]:
            out[i] = inv
    return np.array(out)


@njit(error_model="numpy")
def cell_advance(n_steps, dt, t0_ms, n_cells, v_all, parent, g_ax, d0, cdt, pas_g, pas_e, s_inv,
                 hh_node, hh_gna, hh_gk, hh_gl, hh_ena, hh_ek, hh_el, hh_m_all, hh_h_all, hh_n_all, q10, hh_tab,
                 ic_node, ic_del, ic_dur, ic_amp, al_node, al_onset, al_tau, al_gmax, al_e,
                 syn_node, syn_e_all, syn_mg_all, syn_fac_all, syn_d1_all, syn_d2_all, syn_a_all, syn_b_all,
                 ev_start, ev_step, ev_syn, ev_cell, ev_w,
                 soma, thr, spk_cell, spk_frac, spk_step, rec_out, inj,
                 want_imem, imem_row, imem, stim_out, v_out, rhs, d, gm, vfac):
    """Advance ``n_cells`` cells of one morphology by ``n_steps`` steps of ``dt`` ms, in place.

    Cells are in blocks of B: state arrays are (blocks, N, B) (cell = block * B + column; the
    last block may be padded with cells whose results are dropped). Each block runs all its
    steps before the next, so its state stays in cache; within a block the loops over cells are
    independent work (the sweeps of the tree solve run across the block's cells at once).
    Events of block b are ev_*[ev_start[b]:ev_start[b + 1]], sorted by step; ev_cell is the
    column within the block. Returns the number of spikes written.

    vfac 1: backward Euler (cdt = C/dt, d0 built with it). vfac 2: Crank-Nicolson as NEURON's
    secondorder=2: the same linearised solve with cdt = 2C/dt gives dv over half a step, and
    v advances by 2 dv.

    One function, the loop over blocks outermost: numba compiles a jitted callee on its own and
    then optimises it again inside its caller's module, so a per-block function called from
    here was optimised and turned into machine code twice (a quarter of a generated kernel's
    compile time: the Hay cell's took 24-26 s, now 18-20 s). Names ending in _all are the
    block-major arrays (blocks, ..., B); the loop takes each block's view under the plain name.

    Within a block, arrays are (N, n) (node-major, cell-minor; n = B):

    v (N, n) mV. Per node (N,): parent (-1 at the root, node 0), g_ax uS to the parent, d0 =
    C/dt + axial conductances (uS), cdt = C/dt (uS), pas_g (uS, 0 where pas is absent), pas_e mV.
    s_inv (N,): 1 / (eliminated diagonal) of each static node (no conductance that changes in
    time at it or below it: its elimination is the same every step and cell, computed once by
    :func:`static_inverse`), 0 elsewhere (and at the root).
    hh_*: node (K,), gnabar/gkbar/gl (K,) uS, ena/ek/el (K,) mV, gates m/h/n (K, n), q10;
    hh_tab: NEURON's rate table (:func:`hh_table`), or (0, 6) for exact rates every step.
    ic_*: node, delay/duration (ms), amplitude (nA), one entry per clamp (same in every cell).
    al_*: alpha synapses: node, onset (ms), tau (ms), gmax (uS), e (mV), same in every cell.
    syn_*: node (S,); per synapse and cell (S, n): e mV, [Mg] mM (0: no Mg block; NMDA), peak
    factor, decay per step exp(-dt/tau1), exp(-dt/tau2); states A, B (S, n) uS.
    ev_*: input spikes sorted by step: step, synapse, cell, weight (uS).
    soma: recording and threshold node; rec_out (n_steps, n) gets v there before each step;
    upward crossings of thr (mV) go to spk_cell / spk_frac (fraction of the step) / spk_step,
    and the count is returned. inj (n_steps, n_cells) nA injected at the soma, or (0, 0).
    want_imem: write transmembrane currents (rows, N, n) nA into imem (outward positive:
    capacitive + ionic + synaptic) and clamp currents (rows, N, n) into stim_out, the step's
    row being imem_row[step] (n_steps,) int64; a step with row -1 is not written (the probes
    sample only some steps). v_out (rows, N, n) mV, or (0, 0, 0): v after each step with a row
    (the voltage at the step's end, for probes imaging V).
    rhs, d, gm (N, n): scratch.
    """
    nb, N, n = v_all.shape
    hh_ix = np.empty(n, np.int64)      # scratch of the tabled hh gates: row, fraction, rates
    hh_th = np.empty(n)
    hh_r = np.empty((6, n))
    n_spk = 0
    for blk in range(nb):
        c0 = blk * n
        v = v_all[blk]
        hh_m, hh_h, hh_n = hh_m_all[blk], hh_h_all[blk], hh_n_all[blk]
        syn_e, syn_mg, syn_fac = syn_e_all[blk], syn_mg_all[blk], syn_fac_all[blk]
        syn_d1, syn_d2, syn_a, syn_b = syn_d1_all[blk], syn_d2_all[blk], syn_a_all[blk], syn_b_all[blk]
        ev, ev_end = ev_start[blk], ev_start[blk + 1]
        # @mechanisms: block (the generated kernels take their arrays' block views here)
        n_real = min(n, n_cells - c0)      # columns past it are padding
        for step in range(n_steps):
            t_mid = t0_ms + (step + 0.5) * dt
            r = imem_row[step] if want_imem else -1
            for c in range(n_real):
                rec_out[step, c0 + c] = v[soma, c]
            # spikes arriving in this step open their synapses before the currents are taken
            while ev < ev_end and ev_step[ev] == step:
                k = ev_syn[ev]
                c = ev_cell[ev]
                syn_a[k, c] += ev_w[ev] * syn_fac[k, c]
                syn_b[k, c] += ev_w[ev] * syn_fac[k, c]
                ev += 1
            # passive leak (dense: zero where absent) and the constant part of the diagonal
            for i in range(N):
                g = pas_g[i]
                e = pas_e[i]
                dd = d0[i] + g
                if s_inv[i] > 0.0:
                    # a static node's diagonal is never read (its inverse is s_inv[i]), nor its
                    # membrane conductance (pas_g[i], its only one)
                    for c in range(n):
                        rhs[i, c] = -g * (v[i, c] - e)
                else:
                    for c in range(n):
                        rhs[i, c] = -g * (v[i, c] - e)
                        d[i, c] = dd
            for k in range(hh_node.shape[0]):
                i = hh_node[k]
                for c in range(n):
                    m = hh_m[k, c]
                    gna = hh_gna[k] * m * m * m * hh_h[k, c]
                    n2 = hh_n[k, c] * hh_n[k, c]
                    gk = hh_gk[k] * n2 * n2
                    vi = v[i, c]
                    rhs[i, c] -= gna * (vi - hh_ena[k]) + gk * (vi - hh_ek[k]) + hh_gl[k] * (vi - hh_el[k])
                    d[i, c] += gna + gk + hh_gl[k]
            for k in range(syn_node.shape[0]):
                i = syn_node[k]
                mg = 0.0
                for c in range(n):
                    mg = max(mg, syn_mg[k, c])
                if mg > 0.0:
                    # NMDA: Mg block B(v) = 1 / (1 + exp(-0.062 v) [Mg] / 3.57) (Jahr & Stevens
                    # 1990); di/dv = g (B + (v - e) dB/dv), dB/dv = 0.062 B (1 - B). A cell with
                    # [Mg] 0 here gets B = 1 and dB/dv = 0 exactly: the plain synapse's numbers
                    for c in range(n):
                        g = syn_b[k, c] - syn_a[k, c]
                        vi = v[i, c]
                        es = syn_e[k, c]
                        bm = 1.0 / (1.0 + math.exp(-0.062 * vi) * (syn_mg[k, c] / 3.57))
                        rhs[i, c] -= g * bm * (vi - es)
                        d[i, c] += g * (bm + (vi - es) * 0.062 * bm * (1.0 - bm))
                else:
                    for c in range(n):
                        g = syn_b[k, c] - syn_a[k, c]
                        rhs[i, c] -= g * (v[i, c] - syn_e[k, c])
                        d[i, c] += g
            # timed alpha conductances, at the step's midpoint as NEURON's BREAKPOINT sees them
            for k in range(al_node.shape[0]):
                u = (t_mid - al_onset[k]) / al_tau[k]
                if u > 0.0 and u < 10.0:
                    g = al_gmax[k] * u * math.exp(1.0 - u)
                    i = al_node[k]
                    for c in range(n):
                        rhs[i, c] -= g * (v[i, c] - al_e[k])
                        d[i, c] += g
            # @mechanisms: currents (the generated kernels of _generated.py add theirs here)
            if r >= 0:
                # membrane current and conductance, for the currents written after the solve
                for i in range(N):
                    # through a row view indexed by the loop's own counter (no wrap-around test on
                    # c0 + c), the loop vectorises: a sampled step cost ~2x an unsampled one before
                    out = imem[r, i, c0:c0 + n_real]
                    if s_inv[i] > 0.0:
                        for c in range(n_real):
                            out[c] = -rhs[i, c]
                        continue
                    for c in range(n_real):
                        out[c] = -rhs[i, c]
                        gm[i, c] = d[i, c] - d0[i]
            for k in range(ic_node.shape[0]):
                if t_mid >= ic_del[k] and t_mid < ic_del[k] + ic_dur[k]:
                    i = ic_node[k]
                    for c in range(n):
                        rhs[i, c] += ic_amp[k]
                    if r >= 0:
                        for c in range(n_real):
                            stim_out[r, i, c0 + c] += ic_amp[k]
            if inj.shape[0]:
                # current injected at the soma from the i_inj port, held over the step
                for c in range(n_real):
                    rhs[soma, c] += inj[step, c0 + c]
                    if r >= 0:
                        stim_out[r, soma, c0 + c] += inj[step, c0 + c]
            # One sweep from the leaves up (children have higher indices than their parents): add
            # the axial current between i and its parent at v(t) to both right-hand sides, then
            # eliminate i (its own sum is complete: its children came before it). d[i] keeps 1/d.
            # A static node's 1/d is s_inv[i] (the same bits as computed here), so only rhs moves;
            # its parent's diagonal is updated only where the parent is not static itself.
            for i in range(N - 1, 0, -1):
                p = parent[i]
                g = g_ax[i]
                si = s_inv[i]
                if si > 0.0:
                    f = g * si
                    if s_inv[p] > 0.0:
                        for c in range(n):
                            cur = g * (v[p, c] - v[i, c])
                            ri = rhs[i, c] + cur
                            rhs[i, c] = ri
                            rhs[p, c] += f * ri - cur
                    else:
                        fg = f * g
                        for c in range(n):
                            cur = g * (v[p, c] - v[i, c])
                            ri = rhs[i, c] + cur
                            rhs[i, c] = ri
                            d[p, c] -= fg
                            rhs[p, c] += f * ri - cur
                    continue
                for c in range(n):
                    cur = g * (v[p, c] - v[i, c])
                    ri = rhs[i, c] + cur
                    inv = 1.0 / d[i, c]
                    d[i, c] = inv
                    f = g * inv
                    rhs[i, c] = ri
                    d[p, c] -= f * g
                    rhs[p, c] += f * ri - cur
            # ... then substitute from the root down; rhs becomes dv, and v moves by vfac dv in the
            # same pass (the spike check below reads v before the step from rec_out)
            for c in range(n):
                x = rhs[0, c] / d[0, c]
                rhs[0, c] = x
                v[0, c] += vfac * x
            for i in range(1, N):
                p = parent[i]
                g = g_ax[i]
                si = s_inv[i]
                if si > 0.0:
                    for c in range(n):
                        x = (rhs[i, c] + g * rhs[p, c]) * si
                        rhs[i, c] = x
                        v[i, c] += vfac * x
                else:
                    for c in range(n):
                        x = (rhs[i, c] + g * rhs[p, c]) * d[i, c]
                        rhs[i, c] = x
                        v[i, c] += vfac * x
            if r >= 0:
                for i in range(N):
                    out = imem[r, i, c0:c0 + n_real]
                    if s_inv[i] > 0.0:
                        # its membrane conductance is pas_g[i] alone, taken as d - d0 with d = d0 +
                        # pas_g (the rounding of every other node's): the same bits whether the node
                        # is eliminated once or every step
                        gi = cdt[i] + ((d0[i] + pas_g[i]) - d0[i])
                        for c in range(n_real):
                            out[c] += gi * rhs[i, c]
                        continue
                    for c in range(n_real):
                        out[c] += (cdt[i] + gm[i, c]) * rhs[i, c]
            for c in range(n_real):
                vo = rec_out[step, c0 + c]
                vn = v[soma, c]
                if vo < thr and vn >= thr:
                    spk_cell[n_spk] = c0 + c
                    spk_frac[n_spk] = (thr - vo) / (vn - vo)
                    spk_step[n_spk] = step
                    n_spk += 1
            if v_out.shape[0] and imem_row[step] >= 0:
                for i in range(N):
                    for c in range(n_real):
                        v_out[imem_row[step], i, c0 + c] = v[i, c]
            # @mechanisms: states (the generated kernels of _generated.py advance theirs here)
            # gating states over dt with the new v (cnexp: exact for v held over the step)
            if hh_tab.shape[0]:
                # NEURON's default (tabled rates), in three passes over the block's cells so that
                # two of them vectorise: the row and fraction; the six rates (a gather from the
                # table: scalar, as LLVM finds gathers unprofitable here); the gates, with fexp.
                # ~7 ns per hh segment-step against ~20 in one pass calling libm's exp
                for k in range(hh_node.shape[0]):
                    i = hh_node[k]
                    for c in range(n):
                        hh_ix[c], hh_th[c] = hh_table_index(v[i, c])
                    for c in range(n):
                        row = hh_ix[c]
                        th = hh_th[c]
                        for j in range(6):
                            hh_r[j, c] = hh_tab[row, j] + th * (hh_tab[row + 1, j] - hh_tab[row, j])
                    for c in range(n):
                        hh_m[k, c] += (1.0 - fexp(-dt / hh_r[1, c])) * (hh_r[0, c] - hh_m[k, c])
                        hh_h[k, c] += (1.0 - fexp(-dt / hh_r[3, c])) * (hh_r[2, c] - hh_h[k, c])
                        hh_n[k, c] += (1.0 - fexp(-dt / hh_r[5, c])) * (hh_r[4, c] - hh_n[k, c])
            else:
                # exact rates (branch-free, fexp): the loop over cells vectorises
                for k in range(hh_node.shape[0]):
                    i = hh_node[k]
                    for c in range(n):
                        minf, mtau, hinf, htau, ninf, ntau = hh_rates(v[i, c], q10)
                        hh_m[k, c] += (1.0 - fexp(-dt / mtau)) * (minf - hh_m[k, c])
                        hh_h[k, c] += (1.0 - fexp(-dt / htau)) * (hinf - hh_h[k, c])
                        hh_n[k, c] += (1.0 - fexp(-dt / ntau)) * (ninf - hh_n[k, c])
            for k in range(syn_node.shape[0]):
                for c in range(n):
                    syn_a[k, c] *= syn_d1[k, c]
                    syn_b[k, c] *= syn_d2[k, c]
    return n_spk
