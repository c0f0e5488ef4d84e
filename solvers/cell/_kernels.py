"""Numba kernels of the cable solver: one fixed step of all cells' trees, as NEURON does it.

Units: v mV, t ms, capacitance nF, conductance uS, current nA (uS * mV = nA, nF * mV/ms = nA).

Nodes of all cells lie in one flat array in Hines order: ``parent[i] < i`` for every non-root
node, ``parent[i] == -1`` for each cell's root. The tree solve therefore runs over the whole
population in two sweeps without fill-in, whatever the cells' shapes.

One step (NEURON's fixed step with secondorder=0): membrane currents i(v) and their
conductances g = di/dv are taken at v(t) with gating states of t; the linearised implicit
system (C/dt + g + axial) dv = I_stim - i(v) - axial v is solved; v += dv; then the gating
states advance over dt with the new v (exponential Euler, NEURON's cnexp), and synaptic
conductances decay. The clamp current is evaluated at the step's midpoint, as NEURON does.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit


@njit
def _vtrap(x, y):
    # x / (exp(x/y) - 1), with its limit y (1 - x/y/2) near x = 0 (NEURON's hh.mod)
    if abs(x / y) < 1e-6:
        return y * (1.0 - x / y / 2.0)
    return x / (math.exp(x / y) - 1.0)


@njit
def hh_rates(v, q10):
    """(minf, mtau, hinf, htau, ninf, ntau) of NEURON's hh.mod at v (mV); tau in ms."""
    a = 0.1 * _vtrap(-(v + 40.0), 10.0)
    b = 4.0 * math.exp(-(v + 65.0) / 18.0)
    s = a + b
    mtau = 1.0 / (q10 * s)
    minf = a / s
    a = 0.07 * math.exp(-(v + 65.0) / 20.0)
    b = 1.0 / (math.exp(-(v + 35.0) / 10.0) + 1.0)
    s = a + b
    htau = 1.0 / (q10 * s)
    hinf = a / s
    a = 0.01 * _vtrap(-(v + 55.0), 10.0)
    b = 0.125 * math.exp(-(v + 65.0) / 80.0)
    s = a + b
    ntau = 1.0 / (q10 * s)
    ninf = a / s
    return minf, mtau, hinf, htau, ninf, ntau


@njit
def hh_init(v, node, m, h, n, q10):
    """Gates at their steady state for the nodes' voltages (NEURON's INITIAL block)."""
    for k in range(node.shape[0]):
        minf, _, hinf, _, ninf, _ = hh_rates(v[node[k]], q10)
        m[k] = minf
        h[k] = hinf
        n[k] = ninf


@njit
def cell_advance(n_steps, dt, t0_ms, v, parent, g_ax, d0, cdt,
                 pas_node, pas_g, pas_e,
                 hh_node, hh_gna, hh_gk, hh_gl, hh_ena, hh_ek, hh_el, hh_m, hh_h, hh_n, q10,
                 ic_node, ic_del, ic_dur, ic_amp,
                 syn_node, syn_e, syn_fac, syn_d1, syn_d2, syn_a, syn_b,
                 ev_step, ev_syn, ev_w,
                 rec_node, rec_out,
                 thr_node, thr, spk_cell, spk_frac, spk_step,
                 want_imem, imem, stim_out,
                 rhs, d, im, gm):
    """Advance every cell by ``n_steps`` steps of ``dt`` ms, in place.

    v (N,) mV; parent (N,) int64 (-1 at roots); g_ax (N,) uS to the parent; d0 (N,) C/dt +
    axial conductances (uS); cdt (N,) C/dt (uS).
    pas_*: node, g (uS), e (mV). hh_*: node, gnabar/gkbar/gl (uS), ena/ek/el (mV), gates m/h/n,
    q10 the temperature factor. ic_*: node, delay/duration (ms), amplitude (nA).
    syn_*: node, e (mV), peak factor, decay per step exp(-dt/tau1), exp(-dt/tau2), states A, B
    (uS). ev_*: input spikes sorted by step: step within this window, synapse, weight (uS).
    rec_node (R,): nodes whose voltage is written into rec_out (n_steps, R) before each step.
    thr_node (C,): threshold site per cell; upward crossings of thr (mV) are written to
    spk_cell / spk_frac (fraction of the step where v crossed) / spk_step; returns their count.
    want_imem: write transmembrane currents (n_steps, N) nA into imem (outward positive:
    capacitive + ionic + synaptic; electrode current excluded) and electrode current per node
    into stim_out (n_steps, N) nA. rhs, d, im, gm (N,): scratch.
    """
    N = v.shape[0]
    n_spk = 0
    ev = 0
    n_ev = ev_step.shape[0]
    for step in range(n_steps):
        t_mid = t0_ms + (step + 0.5) * dt
        for r in range(rec_node.shape[0]):
            rec_out[step, r] = v[rec_node[r]]
        # spikes arriving in this step open their synapses before the currents are taken
        while ev < n_ev and ev_step[ev] == step:
            k = ev_syn[ev]
            syn_a[k] += ev_w[ev] * syn_fac[k]
            syn_b[k] += ev_w[ev] * syn_fac[k]
            ev += 1
        for i in range(N):
            im[i] = 0.0
            gm[i] = 0.0
        for k in range(pas_node.shape[0]):
            i = pas_node[k]
            im[i] += pas_g[k] * (v[i] - pas_e[k])
            gm[i] += pas_g[k]
        for k in range(hh_node.shape[0]):
            i = hh_node[k]
            m = hh_m[k]
            gna = hh_gna[k] * m * m * m * hh_h[k]
            n4 = hh_n[k] * hh_n[k]
            gk = hh_gk[k] * n4 * n4
            im[i] += gna * (v[i] - hh_ena[k]) + gk * (v[i] - hh_ek[k]) + hh_gl[k] * (v[i] - hh_el[k])
            gm[i] += gna + gk + hh_gl[k]
        for k in range(syn_node.shape[0]):
            i = syn_node[k]
            g = syn_b[k] - syn_a[k]
            im[i] += g * (v[i] - syn_e[k])
            gm[i] += g
        for i in range(N):
            rhs[i] = -im[i]
            d[i] = d0[i] + gm[i]
        if want_imem:
            for i in range(N):
                stim_out[step, i] = 0.0
        for k in range(ic_node.shape[0]):
            if t_mid >= ic_del[k] and t_mid < ic_del[k] + ic_dur[k]:
                rhs[ic_node[k]] += ic_amp[k]
                if want_imem:
                    stim_out[step, ic_node[k]] += ic_amp[k]
        # axial currents at v(t): the right-hand side of the system for dv
        for i in range(N):
            p = parent[i]
            if p >= 0:
                cur = g_ax[i] * (v[p] - v[i])
                rhs[i] += cur
                rhs[p] -= cur
        # Hines: eliminate leaves first (children have higher indices than their parents) ...
        for i in range(N - 1, -1, -1):
            p = parent[i]
            if p >= 0:
                f = g_ax[i] / d[i]
                d[p] -= f * g_ax[i]
                rhs[p] += f * rhs[i]
        # ... then substitute from the roots down; rhs becomes dv
        for i in range(N):
            p = parent[i]
            if p >= 0:
                rhs[i] = (rhs[i] + g_ax[i] * rhs[p]) / d[i]
            else:
                rhs[i] = rhs[i] / d[i]
        if want_imem:
            for i in range(N):
                imem[step, i] = cdt[i] * rhs[i] + im[i] + gm[i] * rhs[i]
        for c in range(thr_node.shape[0]):
            i = thr_node[c]
            vo = v[i]
            vn = vo + rhs[i]
            if vo < thr and vn >= thr:
                spk_cell[n_spk] = c
                spk_frac[n_spk] = (thr - vo) / (vn - vo)
                spk_step[n_spk] = step
                n_spk += 1
        for i in range(N):
            v[i] += rhs[i]
        # gating states over dt with the new v (cnexp: exact for v held over the step)
        for k in range(hh_node.shape[0]):
            minf, mtau, hinf, htau, ninf, ntau = hh_rates(v[hh_node[k]], q10)
            hh_m[k] += (1.0 - math.exp(-dt / mtau)) * (minf - hh_m[k])
            hh_h[k] += (1.0 - math.exp(-dt / htau)) * (hinf - hh_h[k])
            hh_n[k] += (1.0 - math.exp(-dt / ntau)) * (ninf - hh_n[k])
        for k in range(syn_node.shape[0]):
            syn_a[k] *= syn_d1[k]
            syn_b[k] *= syn_d2[k]
    return n_spk
