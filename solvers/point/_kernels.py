"""Numba kernels of the point-neuron network: one window of steps over flat arrays.

Neurons of all populations live in one index space [0, n); population p owns [lo_p, hi_p).
Synaptic input is summed into a ring buffer ``ring`` (D, n_slots) over delay steps: row
``(step) % D`` holds what arrives during that step. Slot i is neuron i's (excitatory, or only)
input; neurons with separate inhibitory currents have a second slot ``inh_slot[i] >= n``.

Random numbers come from splitmix64 streams, one per neuron (state: one uint64 each, see
neuron_streams), so that a neuron's draws depend only on the seed, its index and its own
history: never on a global generator shared with other solvers in the same process, nor on
which other neurons share its process when the network spans MPI ranks (distributed.py).
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import njit

# model kinds (the ``kind`` column of a population)
DELTA = 0
EXP = 1
IZHIKEVICH = 2
QIF = 3
COND = 4           # conductance- or current-based exponential synapses, RK4 (iaf_cond_exp, aeif_*)
#: kinds whose inhibitory input has a slot of its own (inh_slot)
TWO_SLOTS = (EXP, COND)

# columns of the per-population parameter table ``par`` (n_pops, N_PAR); voltages are relative
# to E_L, as NEST's iaf_psc_* integrate them
P_DECAY_V = 0      # exp(-h / tau_m)
P_CURRENT = 1      # tau_m / C_m * (1 - exp(-h / tau_m))   (mV per pA)
P_THETA = 2        # V_th - E_L (mV)
P_RESET = 3        # V_reset - E_L (mV)
P_IE = 4           # I_e (pA)
P_REF = 5          # refractory steps
P_DECAY_EX = 6     # exp(-h / tau_syn_ex)
P_DECAY_IN = 7     # exp(-h / tau_syn_in)
P_SYN_EX = 8       # propagator from i_syn_ex to V over one step (mV per pA)
P_SYN_IN = 9       # the same for i_syn_in
P_LAM = 10         # mean Poisson drive events per step (rate_hz * h / 1000)
P_PW = 11          # weight of each Poisson drive event (mV for delta, pA for exp)
P_RATE2LAM = 12    # h / 1000: Hz of rate_in to events per step
P_NOISE = 13       # standard deviation (pA) of a Gaussian current redrawn every step, per neuron
P_IZH_A = 14       # Izhikevich a (1/ms)
P_IZH_B = 15       # Izhikevich b
P_IZH_D = 16       # Izhikevich d (added to u at a spike)
P_HT = 17          # QIF: h / tau (the step in units of the membrane time constant); COND: h (ms)
P_HALF = 18        # QIF: steps from the threshold crossing to the emitted spike (half refractory)
# COND kind (absolute mV inside, v stored relative to E_L as for the LIF models)
P_GL = 19          # leak conductance g_L (nS)
P_CM = 20          # C_m (pF)
P_EL = 21          # E_L (mV)
P_EEX = 22         # E_ex (mV)
P_EIN = 23         # E_in (mV)
P_DELTA_T = 24     # Delta_T (mV); 0: no exponential term
P_VT = 25          # V_th of the exponential term (mV)
P_A = 26           # a (nS)
P_B = 27           # b (pA)
P_TAU_W = 28       # tau_w (ms)
P_TAU_EX = 29      # tau_syn_ex (ms)
P_TAU_IN = 30      # tau_syn_in (ms)
P_NSUB = 31        # RK4 substeps per step
P_INSIDE = 32      # 1: spikes detected after every substep (aeif_*), 0: at the step's end (iaf_cond_exp)
P_PSC = 33         # 1: the synaptic variables are currents (pA), 0: conductances (nS)
N_PAR = 34

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0


_S56 = np.uint64(56)
#: a key no 53-bit draw exceeds: ends every search of a key table (poisson_keys)
_KEY_END = np.int64(2**63 - 1)


@njit
def splitmix(st, i):
    """The next 64-bit output of the splitmix64 state ``st[i]`` (st: (n,) uint64), advanced in place."""
    z = st[i] + _GOLDEN
    st[i] = z
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit
def uniform(st, i):
    """One uniform draw in [0, 1) from the splitmix64 state ``st[i]`` (st: (n,) uint64), advanced in
    place: the top 53 bits of the output times 2**-53 (exact: every value is a multiple of 2**-53)."""
    return float(splitmix(st, i) >> _S11) * _INV53


@njit
def normal(st, i):
    """One standard normal draw (Box-Muller, one of the pair; the other is not kept so that
    the stream has no state besides ``st[i]``)."""
    u1 = 1.0 - uniform(st, i)       # in (0, 1]: log is finite
    u2 = uniform(st, i)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def neuron_streams(seed: int, ids) -> np.ndarray:
    """Per-neuron splitmix64 states (len(ids),) uint64: neuron i's stream starts at output
    i + 1 of the splitmix64 stream of ``seed``, so the starts are spread over the 2**64 cycle,
    unrelated in every bit (starts a fixed stride apart would keep the low bits of all neurons'
    states equal at every step, and their draws correlated). Two neurons' streams overlap
    only where one's start falls within the draws of the other: probability about
    n**2 * draws / 2**64 (1e5 neurons, 1e7 draws each: 5e-3), and an overlap repeats a stretch
    of one neuron's draws in another's, shifted in time. A neuron's draws are the same
    whichever process holds it (distributed.py)."""
    i = np.asarray(ids, dtype=np.uint64)
    # uint64 array arithmetic wraps modulo 2**64, as splitmix64's
    z = np.uint64(seed) + (i + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit
def poisson_table(lam, cdf):
    """Fill ``cdf`` with the Poisson(lam) CDF from k0 upwards; return (k0, m) with m entries used.

    k0 is 15 standard deviations below the mean (0 for small lam): the mass below is < 1e-40.
    The table stops where 1 - CDF < 1e-16 or where ``cdf`` is full."""
    if lam <= 0.0:
        cdf[0] = 1.0
        return 0, 1
    k0 = int(max(0.0, math.floor(lam - 15.0 * math.sqrt(lam) - 5.0)))
    logp = -lam + k0 * math.log(lam) - math.lgamma(k0 + 1.0)
    p = math.exp(logp)
    c = p
    cdf[0] = c
    m = 1
    k = k0
    while m < cdf.shape[0] and 1.0 - c > 1e-16:
        k += 1
        p *= lam / k
        c += p
        cdf[m] = c
        m += 1
    return k0, m


@njit
def table_size(lam):
    """Length of a CDF table that covers Poisson(lam) to 1e-16 (see poisson_table)."""
    return int(40.0 * math.sqrt(lam) + 60.0)


#: guide table entries: 2**8, so that a draw's entry is the top 8 bits of its output (poisson_draw)
GUIDE = 256


@njit
def poisson_guide(cdf, m, guide):
    """Fill the guide table (GUIDE,) int64: guide[g] is the first j with cdf[j] >= g / GUIDE
    (Chen & Asau's indexed search), so a draw starts next to its answer."""
    j = 0
    for g in range(guide.shape[0]):
        x = g / guide.shape[0]
        while j < m - 1 and cdf[j] < x:
            j += 1
        guide[g] = j


@njit
def poisson_keys(cdf, m, keys):
    """Fill ``keys`` (like cdf) int64 with the integer form of the CDF table: keys[j] =
    floor(cdf[j] * 2**53) for j < m - 1, then _KEY_END.

    A uniform u = k / 2**53 (k the top 53 bits of a splitmix64 output, as ``uniform``) exceeds
    cdf[j] exactly where k > keys[j]: cdf[j] * 2**53 is exact (a power of two) and k is an
    integer. So an inversion by keys gives bit for bit the count an inversion of cdf by u gives,
    with integer compares and no conversion; _KEY_END stops every search at m - 1, where the
    float search stopped by its bound."""
    for j in range(keys.shape[0]):
        keys[j] = np.int64(cdf[j] * 9007199254740992.0) if j < m - 1 else _KEY_END


@njit
def poisson_draw(keys, k0, guide, st, i):
    """One Poisson count by inversion of the key table (poisson_keys), started from the guide
    table: the count of u = k / 2**53 is the first j with k <= keys[j], and
    guide[floor(u GUIDE)] = guide[z >> 56] is at most that j.

    Branch-free first step: for a guide of GUIDE entries the answer is guide[g] or guide[g] + 1
    unless more than one CDF value falls in [g / GUIDE, (g + 1) / GUIDE) (lam = 2: only past
    the 99.9th percentile), so one compare-and-add finds it and the loop after it almost never
    runs: no mispredicted branch per draw."""
    return poisson_count(keys, k0, guide, splitmix(st, i))


@njit
def poisson_count(keys, k0, guide, z):
    """The Poisson count of the splitmix64 output ``z`` (uint64), as poisson_draw."""
    k = np.int64(z >> _S11)
    j = guide[z >> _S56]
    j += k > keys[j]
    while k > keys[j]:
        j += 1
    return k0 + j


@njit
def splitmix_pass(st, out, refr, gated):
    """out[i] = the next output of stream st[i] for every i (st, out: (m,) uint64, refr: (m,)
    int64; slices of one population); with ``gated`` the stream advances only where refr[i] == 0
    (out[i] is then to be used only there), so that each neuron's draws are those of a
    neuron-by-neuron loop that draws only when not refractory.

    A loop of its own over whole slices (index from 0, no branch) so that LLVM vectorises it
    (AVX-512: eight 64-bit multiplies at a time); the search in the key table, which gathers,
    stays in the scalar loop that uses the counts."""
    if gated:
        for i in range(st.shape[0]):
            s0 = st[i]
            z = s0 + _GOLDEN
            z = (z ^ (z >> _S30)) * _M1
            z = (z ^ (z >> _S27)) * _M2
            out[i] = z ^ (z >> _S31)
            st[i] = s0 + _GOLDEN * np.uint64(refr[i] == 0)
    else:
        for i in range(st.shape[0]):
            z = st[i] + _GOLDEN
            st[i] = z
            z = (z ^ (z >> _S30)) * _M1
            z = (z ^ (z >> _S27)) * _M2
            out[i] = z ^ (z >> _S31)


@njit
def network_window(n_steps, step0, pops, state, conn, dense, ext, rng, spk_step, spk_id, vrec_idx, vrec,
                   plastic):
    """Advance every neuron by ``n_steps`` steps; return the number of spikes written.

    pops : (lo (n_pops + 1,) int64, kind (n_pops,) int64, par (n_pops, N_PAR) float64,
            bias (n,) float64 a constant current per neuron, added to the population's DC
            (pA; for QIF neurons their eta, dimensionless), th_off (n,) float64 per-neuron
            threshold offsets (mV; LIF, Izhikevich and iaf_cond_exp neurons), het (n_pops,) bool:
            populations with per-neuron parameters, hrow (n,) int64: a neuron's row of hpar
            (m, N_PAR) float64, used in place of par[p] for the neurons of those populations)
    state : (v (n,) mV rel. E_L, i_ex (n,) pA, i_in (n,) pA (for Izhikevich neurons: the
             recovery variable u), refr (n,) int64 steps left,
             ring (D, n_slots) float64, pend (n,) int64 neurons that crossed threshold in
             the last step, pend_n (1,) int64 how many)
    conn : CSR by source (indptr (n + 1,) int64, slot (nnz,) int32 target slot,
           weight (nnz,) float32, delay (nnz,) unsigned int steps >= 1, row_delay (n,) int64
           the delay of every synapse of a row where they are all equal, else 0), inh_slot (n,) int64,
           then the constant-weight groups (network.py's _compact_groups: g_src, g_w, g_d, g_off
           (G,), c_indptr, c_tgt uint16 or int32 target slots), delivered first
    dense : all-to-all projections held as one input per target population (pop_of (n,)
            int64 population of each neuron, src (m,) int64 source population, col (m,) int64
            column of ``pring`` (target population, + n_pops for inhibitory currents),
            w (m,) float64, d (m,) int64 delay steps >= 1, own (m,) int64: -1, or the own slot
            (0 excitatory, 1 inhibitory) from which a spiking neuron takes its weight back
            (no autapse), pring (D, 2 n_pops) float64)
    ext : (rate_in (n_steps, n_pops) Hz, current_in (n_steps, n_pops) pA,
           ext_step (m,) int64 sorted, ext_slot (m,) int64, ext_w (m,) float64)
    rng : (n,) uint64 splitmix64 states, one per neuron (neuron_streams)
    spk_step, spk_id : outputs, step within the window and neuron index of each spike
    vrec_idx (k,) int64, vrec (n_steps, k) : output, v of these neurons at the start of each step
    plastic : the STDP synapses and traces (plasticity.py, network.py's _connect_plastic);
              empty arrays where no projection is plastic

    Step k first emits the spikes of the neurons that reached threshold at t_k (the end of the
    previous step; they were reset and made refractory there, as NEST does) and delivers them
    into the ring (delay d steps: the update of step k + d - 1, as NEST); then integrates every
    neuron from t_k to t_k+1 with the input in the ring row of step k and checks threshold.
    Spikes are emitted one step late so that their time t_k lies inside the window.
    """
    lo, kind, par, bias, th_off, het, hrow, hpar = pops
    v, i_ex, i_in, refr, ring, pend, pend_n, w_ad = state
    indptr, slot, weight, delay, row_delay, inh_slot, g_src, g_w, g_d, g_off, c_indptr, c_tgt = conn
    n_groups = g_src.shape[0]
    pop_of, dn_src, dn_col, dn_w, dn_d, dn_own, pring = dense
    n_dense = dn_src.shape[0]
    n_vrec = vrec_idx.shape[0]
    rate_in, cur_in, ext_step, ext_slot, ext_w = ext
    n_pops = kind.shape[0]
    depth = ring.shape[0]
    n_ext = ext_step.shape[0]
    n_plastic = plastic[2].shape[0]
    post_hist = plastic[12].shape[0] > 0
    # Poisson CDF tables of the base rates, rebuilt for steps where rate_in changes the rate
    size = 64
    for p in range(n_pops):
        size = max(size, table_size(par[p, P_LAM]))
    base = np.empty(size)
    base_keys = np.empty((n_pops, size), np.int64)
    base_guide = np.empty((n_pops, GUIDE), np.int64)
    base_k0 = np.zeros(n_pops, np.int64)
    for p in range(n_pops):
        base_k0[p], m = poisson_table(par[p, P_LAM], base)
        poisson_guide(base, m, base_guide[p])
        poisson_keys(base, m, base_keys[p])
    zs = np.empty(rng.shape[0], np.uint64)      # a step's splitmix64 outputs (splitmix_pass)
    xs = np.empty(rng.shape[0])                 # a step's Poisson drive input (mV)
    flags = np.zeros(rng.shape[0] // 8 + 1, np.uint64)   # threshold crossings, one byte each
    nspk = 0
    e = 0
    for s in range(n_steps):
        row = (step0 + s) % depth
        # phase 1: emit the spikes of neurons that crossed threshold in the previous step
        # (spike time t_k, the end of that step, as NEST) and deliver them into the ring
        for j in range(pend_n[0]):
            i = pend[j]
            spk_step[nspk] = s
            spk_id[nspk] = i
            nspk += 1
            if n_groups:
                # constant weight and delay: targets only, one ring row per group
                ps = pop_of[i]
                for g in range(n_groups):
                    if g_src[g] == ps:
                        r = row + g_d[g] - 1
                        if r >= depth:
                            r -= depth
                        target = ring[r]
                        wg = g_w[g]
                        rr = g_off[g] + i - lo[ps]
                        for k in range(c_indptr[rr], c_indptr[rr + 1]):
                            target[c_tgt[k]] += wg
            d = row_delay[i]
            if d > 0:
                # every synapse of this neuron has delay d: one ring row for all
                r = row + d - 1
                if r >= depth:
                    r -= depth
                target = ring[r]
                for k in range(indptr[i], indptr[i + 1]):
                    target[slot[k]] += weight[k]
            else:
                for k in range(indptr[i], indptr[i + 1]):
                    # row + d - 1 < 2 depth: a compare instead of an integer division per synapse
                    r = row + np.int64(delay[k]) - 1
                    if r >= depth:
                        r -= depth
                    ring[r, slot[k]] += weight[k]
            if n_dense:
                ps = pop_of[i]
                for q in range(n_dense):
                    if dn_src[q] == ps:
                        r = row + dn_d[q] - 1
                        if r >= depth:
                            r -= depth
                        pring[r, dn_col[q]] += dn_w[q]
                        # no autapse: the neuron takes its own share back
                        if dn_own[q] == 0:
                            ring[r, i] -= dn_w[q]
                        elif dn_own[q] == 1:
                            ring[r, inh_slot[i]] -= dn_w[q]
            if n_plastic:
                stdp_pre_spike(i, step0 + s, row, ring, plastic)
            if post_hist:
                stdp_post_spike(i, step0 + s, plastic)
        pend_n[0] = 0
        for j in range(n_vrec):
            vrec[s, j] = v[vrec_idx[j]]
        # spikes from other solvers arriving during this step
        while e < n_ext and ext_step[e] == s:
            ring[row, ext_slot[e]] += ext_w[e]
            e += 1
        # phase 2: integrate from t_k to t_k+1
        for p in range(n_pops):
            lam = par[p, P_LAM]
            keys = base_keys[p]
            guide = base_guide[p]
            k0 = base_k0[p]
            if rate_in[s, p] != 0.0:
                lam = max(0.0, lam + rate_in[s, p] * par[p, P_RATE2LAM])
                cdf = np.empty(table_size(lam))
                keys = np.empty(cdf.shape[0], np.int64)
                guide = np.empty(GUIDE, np.int64)
                k0, m = poisson_table(lam, cdf)
                poisson_guide(cdf, m, guide)
                poisson_keys(cdf, m, keys)
            pw = par[p, P_PW]
            drive = lam > 0.0 and pw != 0.0
            noise = par[p, P_NOISE]
            # all-to-all input of this step, the same for every neuron of the population
            pe = pring[row, p]
            pi_ = pring[row, n_pops + p]
            pring[row, p] = 0.0
            pring[row, n_pops + p] = 0.0
            ring_row = ring[row]
            if het[p]:
                # per-neuron parameters: each neuron is a population of one with its own row
                # of the parameter table (the same arithmetic as the homogeneous path)
                for i in range(lo[p], lo[p + 1]):
                    pr = hpar[hrow[i]]
                    population_step(kind[p], i, i + 1, pr, pr[P_IE] + cur_in[s, p], pe, pi_, bias, th_off, v,
                                    i_ex, i_in, w_ad, refr, ring_row, inh_slot, drive, pw, noise, keys, k0,
                                    guide, rng, zs, xs, flags, pend, pend_n)
            else:
                population_step(kind[p], lo[p], lo[p + 1], par[p], par[p, P_IE] + cur_in[s, p], pe, pi_, bias,
                                th_off, v, i_ex, i_in, w_ad, refr, ring_row, inh_slot, drive, pw, noise, keys, k0,
                                guide, rng, zs, xs, flags, pend, pend_n)
    return nspk


@njit
def population_step(kd, a, b, par, dc, pe, pi_, bias, th_off, v, i_ex, i_in, w_ad, refr, row, inh_slot, drive, pw,
                    noise, keys, k0, guide, rng, zs, xs, flags, pend, pend_n):
    """One step of neurons [a, b) of model kind ``kd`` with the parameter row ``par`` (N_PAR,):
    ``dc`` the DC current (I_e plus current_in), ``pe``/``pi_`` the all-to-all inputs, ``row``
    this step's ring row (zeroed as it is read), the Poisson drive (key and guide tables, see
    poisson_keys) and the noise;
    neurons crossing threshold are appended to ``pend``."""
    if kd == DELTA:
        delta_population(a, b, par, dc, pe, pi_, bias, th_off, v, refr, row, drive, pw, noise, keys, k0,
                         guide, rng, zs, xs, flags, pend, pend_n)
    elif kd == IZHIKEVICH:
        izh_population(a, b, par, dc, pe, pi_, bias, th_off, v, i_in, row, drive, pw, noise, keys, k0, guide,
                       rng, pend, pend_n)
    elif kd == COND:
        cond_population(a, b, par, dc, pe, pi_, bias, th_off, v, i_ex, i_in, w_ad, refr, row, inh_slot, drive, pw,
                        noise, keys, k0, guide, rng, pend, pend_n)
    elif kd == QIF:
        qif_population(a, b, par, dc, pe + pi_, bias, v, refr, row, drive, pw, noise, keys, k0, guide, rng,
                       pend, pend_n)
    else:
        exp_population(a, b, par, dc, pe, pi_, bias, th_off, v, i_ex, i_in, refr, row, inh_slot, drive, pw,
                       noise, keys, k0, guide, rng, pend, pend_n)


@njit
def delta_population(a, b, par, dc, pe, pi_, bias, th_off, v, refr, row, drive, pw, noise, keys, k0, guide, rng,
                     zs, xs, flags, pend, pend_n):
    """One exact step of the iaf_psc_delta neurons [a, b) (see population_step; zs (n,) uint64,
    xs (n,) float64 and flags (n // 8 + 1,) uint64 are scratch). The one-loop path and the
    passes do the same operations in the same order, so they give the same V bit for bit
    (tests/test_point_heterogeneous.py runs one against the other)."""
    theta = par[P_THETA]
    reset = par[P_RESET]
    nref = np.int64(par[P_REF])
    pv = par[P_DECAY_V]
    pc = par[P_CURRENT]
    if noise > 0.0 or b - a < 16:
        # one loop: the Gaussian current's draws follow the Poisson draw of the same neuron
        # and step; and per-neuron parameters call this one neuron at a time
        for i in range(a, b):
            if refr[i] == 0:
                x = row[i] + pe + pi_
                if drive:
                    x += pw * poisson_draw(keys, k0, guide, rng, i)
                if noise > 0.0:
                    x += pc * noise * normal(rng, i)
                v[i] = pc * (dc + bias[i]) + pv * v[i] + x
            else:
                # input arriving while refractory is discarded (NEST's default)
                refr[i] -= 1
            row[i] = 0.0
    else:
        # passes over the population so that three of the four vectorise: the streams'
        # outputs (splitmix_pass), the counts (scalar: a table search), the membrane update
        # (selects in place of the refractory branch; it also writes a byte per neuron: crossed
        # threshold), then the scan of those bytes, eight at a time
        vv = v[a:b]
        rf = refr[a:b]
        rw = row[a:b]
        bs = bias[a:b]
        to = th_off[a:b]
        fl = flags.view(np.uint8)
        if drive:
            splitmix_pass(rng[a:b], zs[a:b], rf, True)
            xd = xs[a:b]
            z = zs[a:b]
            for k in range(b - a):
                xd[k] = pw * poisson_count(keys, k0, guide, z[k])
            for k in range(b - a):
                r = rf[k]
                # the same operations in the same order as NEST's update: bit for bit
                vn = pc * (dc + bs[k]) + pv * vv[k] + (rw[k] + pe + pi_ + xd[k])
                vn = vn if r == 0 else vv[k]
                vv[k] = vn
                rf[k] = r - 1 if r > 0 else r
                rw[k] = 0.0
                fl[k] = vn >= theta + to[k]
        else:
            for k in range(b - a):
                r = rf[k]
                vn = pc * (dc + bs[k]) + pv * vv[k] + (rw[k] + pe + pi_)
                vn = vn if r == 0 else vv[k]
                vv[k] = vn
                rf[k] = r - 1 if r > 0 else r
                rw[k] = 0.0
                fl[k] = vn >= theta + to[k]
        # the threshold scan reads the flags eight at a time (a spike is rare in a step)
        m = b - a
        for w in range((m + 7) >> 3):
            if flags[w] != 0:
                for k in range(w * 8, min(w * 8 + 8, m)):
                    if fl[k]:
                        i = a + k
                        v[i] = reset
                        refr[i] = nref
                        pend[pend_n[0]] = i
                        pend_n[0] += 1
        return
    for i in range(a, b):
        if v[i] >= theta + th_off[i]:
            v[i] = reset
            refr[i] = nref
            pend[pend_n[0]] = i
            pend_n[0] += 1


@njit
def izh_population(a, b, par, dc, pe, pi_, bias, th_off, v, u, row, drive, pw, noise, keys, k0, guide, rng,
                   pend, pend_n):
    """One step of the Izhikevich neurons [a, b) (``u``: their recovery variable).

    NEST's izhikevich with consistent_integration: one forward Euler step of
    v' = 0.04 v^2 + 5 v + 140 - u + I, u' = a (b v - u) from the old values; spike inputs add
    to v; at v >= V_th: v = c, u += d (no refractoriness)."""
    theta = par[P_THETA]
    reset = par[P_RESET]
    pc = par[P_CURRENT]
    ia = par[P_IZH_A]
    ib = par[P_IZH_B]
    dd = par[P_IZH_D]
    for i in range(a, b):
        x = row[i] + pe + pi_
        row[i] = 0.0
        if drive:
            x += pw * poisson_draw(keys, k0, guide, rng, i)
        cur = dc + bias[i]
        if noise > 0.0:
            cur += noise * normal(rng, i)
        vo = v[i]
        uo = u[i]
        v[i] = vo + pc * (0.04 * vo * vo + 5.0 * vo + 140.0 - uo + cur) + x
        u[i] = uo + pc * ia * (ib * vo - uo)
        if v[i] >= theta + th_off[i]:
            v[i] = reset
            u[i] += dd
            pend[pend_n[0]] = i
            pend_n[0] += 1


@njit
def exp_population(a, b, par, dc, pe, pi_, bias, th_off, v, i_ex, i_in, refr, row, inh_slot, drive, pw, noise, keys,
                   k0, guide, rng, pend, pend_n):
    """One exact step of the iaf_psc_exp neurons [a, b): V from the currents at the step's
    start (clamped while refractory), then the currents decay and take the step's input."""
    theta = par[P_THETA]
    reset = par[P_RESET]
    nref = np.int64(par[P_REF])
    pv = par[P_DECAY_V]
    pc = par[P_CURRENT]
    de = par[P_DECAY_EX]
    di = par[P_DECAY_IN]
    se = par[P_SYN_EX]
    si = par[P_SYN_IN]
    for i in range(a, b):
        j = inh_slot[i]
        xe = row[i] + pe
        xi = row[j] + pi_
        row[i] = 0.0
        row[j] = 0.0
        if drive:
            c = pw * poisson_draw(keys, k0, guide, rng, i)
            if pw >= 0.0:
                xe += c
            else:
                xi += c
        if refr[i] == 0:
            v[i] = pv * v[i] + se * i_ex[i] + si * i_in[i] + pc * (dc + bias[i])
            if noise > 0.0:
                v[i] += pc * noise * normal(rng, i)
        else:
            refr[i] -= 1
        i_ex[i] = i_ex[i] * de + xe
        i_in[i] = i_in[i] * di + xi
        if v[i] >= theta + th_off[i]:
            v[i] = reset
            refr[i] = nref
            pend[pend_n[0]] = i
            pend_n[0] += 1


@njit
def qif_step(v0, c, ht):
    """V after one step of tau dV/dt = V^2 + c (c constant), from v0, the step being ht = h / tau;
    or +inf where V passes through infinity within the step.

    Exact: V = (v0 + c g) / (1 - v0 g) with g = tan(sqrt(c) ht) / sqrt(c) (c > 0; the addition
    theorem of tan applied to sqrt(c) tan(atan(v0 / sqrt(c)) + sqrt(c) ht)), tanh(sqrt(-c) ht) /
    sqrt(-c) (c < 0) or ht (c = 0); V passes through infinity where 1 - v0 g <= 0. One
    transcendental call per step; a step so long that sqrt(c) ht >= pi/2 (a full half-period of
    tan) takes the angle form instead."""
    if c > 0.0:
        sq = math.sqrt(c)
        a = sq * ht
        if a >= 0.5 * math.pi:
            th = math.atan(v0 / sq) + a
            if th >= 0.5 * math.pi:
                return math.inf
            return sq * math.tan(th)
        g = math.tan(a) / sq
    elif c < 0.0:
        sq = math.sqrt(-c)
        g = math.tanh(sq * ht) / sq
    else:
        g = ht
    den = 1.0 - v0 * g
    if den <= 0.0:
        return math.inf
    return (v0 + c * g) / den


@njit
def qif_population(a, b, par, dc, shared, bias, v, refr, row, drive, pw, noise, keys, k0, guide,
                   rng, pend, pend_n):
    """One step of the QIF neurons [a, b) (Montbrio, Pazo & Roxin 2015, with their peak, reset
    and refractory handling): exact integration of tau dV/dt = V^2 + eta_i + I over the step
    with the current held, then the step's spike inputs added to V (``row``: this step's ring
    row, ``shared``: the all-to-all input). At V >= V_peak (or a passage through infinity
    within the step) V is set to V_reset and held for the refractory steps; the spike is
    emitted P_HALF steps after the crossing (the paper's spike time, half-way through)."""
    ht = par[P_HT]
    theta = par[P_THETA]
    reset = par[P_RESET]
    nref = np.int64(par[P_REF])
    nhalf = np.int64(par[P_HALF])
    for i in range(a, b):
        x = row[i] + shared
        row[i] = 0.0
        if drive:
            x += pw * poisson_draw(keys, k0, guide, rng, i)
        if refr[i] == 0:
            c = dc + bias[i]
            if noise > 0.0:
                c += noise * normal(rng, i)
            vn = qif_step(v[i], c, ht) + x
            if vn >= theta:
                v[i] = reset
                refr[i] = nref
                if nhalf == 0:
                    pend[pend_n[0]] = i
                    pend_n[0] += 1
            else:
                v[i] = vn
        else:
            # input arriving while refractory is discarded, as for iaf_psc_delta
            refr[i] -= 1
            if nhalf > 0 and refr[i] == nref - nhalf:
                pend[pend_n[0]] = i
                pend_n[0] += 1


@njit
def _cond_rhs(V, ge, gi, w, I, par, clamp, out):
    """Derivatives (dV, dg_ex, dg_in, dw) of the aeif / iaf_cond_exp equations, NEST's form:
    V in the exponential and adaptation terms is capped at V_peak (held at V_reset while
    refractory: ``clamp``), as NEST's aeif_* do."""
    gl = par[P_GL]
    el = par[P_EL]
    dT = par[P_DELTA_T]
    Vc = V
    if clamp:
        Vc = par[P_RESET] + el
    elif dT > 0.0 and Vc > par[P_THETA] + el:
        Vc = par[P_THETA] + el
    if par[P_PSC] != 0.0:
        isyn = ge + gi
    else:
        isyn = -ge * (Vc - par[P_EEX]) - gi * (Vc - par[P_EIN])
    spk = 0.0
    if dT > 0.0:
        spk = gl * dT * math.exp((Vc - par[P_VT]) / dT)
    if clamp:
        out[0] = 0.0
    else:
        out[0] = (-gl * (Vc - el) + spk + isyn - w + I) / par[P_CM]
    out[1] = -ge / par[P_TAU_EX]
    out[2] = -gi / par[P_TAU_IN]
    if par[P_TAU_W] > 0.0:
        out[3] = (par[P_A] * (Vc - el) - w) / par[P_TAU_W]
    else:
        out[3] = 0.0


@njit
def _rk4(V, ge, gi, w, I, par, clamp, h, k1, k2, k3, k4):
    """One classical RK4 step of length h (ms) of the _cond_rhs equations."""
    _cond_rhs(V, ge, gi, w, I, par, clamp, k1)
    _cond_rhs(V + 0.5 * h * k1[0], ge + 0.5 * h * k1[1], gi + 0.5 * h * k1[2], w + 0.5 * h * k1[3], I, par, clamp, k2)
    _cond_rhs(V + 0.5 * h * k2[0], ge + 0.5 * h * k2[1], gi + 0.5 * h * k2[2], w + 0.5 * h * k2[3], I, par, clamp, k3)
    _cond_rhs(V + h * k3[0], ge + h * k3[1], gi + h * k3[2], w + h * k3[3], I, par, clamp, k4)
    return (V + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
            ge + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
            gi + h / 6.0 * (k1[2] + 2.0 * k2[2] + 2.0 * k3[2] + k4[2]),
            w + h / 6.0 * (k1[3] + 2.0 * k2[3] + 2.0 * k3[3] + k4[3]))


@njit
def cond_population(a, b, par, dc, pe, pi_, bias, th_off, v, g_ex, g_in, w_ad, refr, row, inh_slot, drive, pw,
                    noise, keys, k0, guide, rng, pend, pend_n):
    """One step of the conductance-based (or, with P_PSC, current-based) exponential-synapse
    neurons [a, b): iaf_cond_exp, aeif_cond_exp and aeif_psc_exp as NEST updates them, with
    P_NSUB classical RK4 substeps in place of NEST's adaptive RKF45.

    Per step (NEST's order): the refractory count is decremented; the ODEs are integrated over
    the step (V held at V_reset while refractory); aeif_*: after every substep where V >=
    V_peak, V = V_reset, w += b, refractory for t_ref; iaf_cond_exp: after the step, V >= V_th
    gives the spike and reset (V held at V_reset while refractory); the spike is stamped at the
    step's end. Then the step's spike input is added (conductances in nS, or currents in pA:
    weight w >= 0 onto the excitatory variable, w < 0 as -w onto the inhibitory conductance or
    as w onto the (negative) inhibitory current)."""
    el = par[P_EL]
    theta = par[P_THETA] + el
    reset = par[P_RESET] + el
    nref = np.int64(par[P_REF])
    nsub = np.int64(par[P_NSUB])
    inside = par[P_INSIDE] != 0.0
    psc = par[P_PSC] != 0.0
    hs = par[P_HT] / nsub
    # bool, not the literal False: a literal argument would compile _rk4 a second time
    unclamped = np.bool_(False)
    bb = par[P_B]
    k1 = np.empty(4)
    k2 = np.empty(4)
    k3 = np.empty(4)
    k4 = np.empty(4)
    for i in range(a, b):
        j = inh_slot[i]
        xe = row[i] + pe
        xi = row[j] + pi_
        row[i] = 0.0
        row[j] = 0.0
        if drive:
            c = pw * poisson_draw(keys, k0, guide, rng, i)
            if pw >= 0.0:
                xe += c
            else:
                xi += c
        I = dc + bias[i]
        if noise > 0.0:
            I += noise * normal(rng, i)
        V = v[i] + el
        ge = g_ex[i]
        gi = g_in[i]
        w = w_ad[i]
        spiked = False
        for _ in range(nsub):
            clamp = inside and refr[i] > 0
            V1, ge1, gi1, w1 = _rk4(V, ge, gi, w, I, par, clamp, hs, k1, k2, k3, k4)
            if inside:
                if refr[i] > 0:
                    V1 = reset
                elif V1 >= theta:
                    # locate the crossing within the substep by bisection on the step length
                    # (V_peak is reached in a steep upswing, so the substep's end can be well
                    # past it); reset there and integrate the rest of the substep
                    lo_h, hi_h = 0.0, hs
                    for _b in range(12):
                        mid = 0.5 * (lo_h + hi_h)
                        if _rk4(V, ge, gi, w, I, par, unclamped, mid, k1, k2, k3, k4)[0] >= theta:
                            hi_h = mid
                        else:
                            lo_h = mid
                    V1, ge1, gi1, w1 = _rk4(V, ge, gi, w, I, par, unclamped, hi_h, k1, k2, k3, k4)
                    w1 += bb
                    # NEST: RefractoryCounts + 1 when > 0, decremented after the step
                    refr[i] = nref + 1 if nref > 0 else 0
                    spiked = True
                    V1, ge1, gi1, w1 = _rk4(reset, ge1, gi1, w1, I, par, refr[i] > 0, hs - hi_h, k1, k2, k3, k4)
                    if refr[i] > 0:
                        V1 = reset
            V, ge, gi, w = V1, ge1, gi1, w1
        if inside and refr[i] > 0:
            refr[i] -= 1
        if not inside:
            if refr[i] > 0:
                refr[i] -= 1
                V = reset
            elif V >= theta + th_off[i]:
                refr[i] = nref
                V = reset
                spiked = True
        if spiked:
            pend[pend_n[0]] = i
            pend_n[0] += 1
        if psc:
            ge += xe
            gi += xi
        else:
            ge += xe
            gi -= xi
        v[i] = V - el
        g_ex[i] = ge
        g_in[i] = gi
        w_ad[i] = w


@njit
def csr_fill(src, slot, weight, delay, indptr, out_slot, out_weight, out_delay, fill):
    """Scatter synapses (src, slot, weight, delay) into CSR rows by source, keeping their order.

    fill (n,) int64 is the next free position of each row, starting at indptr[:-1]."""
    for k in range(src.shape[0]):
        i = src[k]
        j = fill[i]
        out_slot[j] = slot[k]
        out_weight[j] = weight[k]
        out_delay[j] = delay[k]
        fill[i] = j + 1



@njit
def rows_count(rows, offset, counts):
    """counts[offset + r] += 1 for every r in ``rows`` (no int64 copy of ``rows``, as bincount makes)."""
    for k in range(rows.shape[0]):
        counts[offset + np.int64(rows[k])] += 1


@njit
def rows_fill(rows, offset, slot, out, fill):
    """Scatter target slots into CSR rows ``offset + rows`` (fill: next free position per row), in order."""
    for k in range(rows.shape[0]):
        r = offset + np.int64(rows[k])
        j = fill[r]
        out[j] = slot[k]
        fill[r] = j + 1


@njit
def uniform_row_delays(indptr, delay, out):
    """out[i] = the delay (steps) shared by all synapses of row i, or 0 if they differ or the row is empty."""
    for i in range(indptr.shape[0] - 1):
        a, b = indptr[i], indptr[i + 1]
        d = np.int64(delay[a]) if b > a else np.int64(0)
        for k in range(a + 1, b):
            if np.int64(delay[k]) != d:
                d = 0
                break
        out[i] = d


# -- STDP (plasticity.py has the rule and the spec; the kernels live here so that numba's cache,
# which checks only the file of the function it caches, recompiles network_window with them)

# columns of the per-projection parameter table (n_plastic_projections, N_STDP)
S_TAU_PLUS = 0     # ms
S_LAMBDA = 1
S_ALPHA = 2
S_MU_PLUS = 3
S_MU_MINUS = 4
S_WMAX = 5
N_STDP = 6

#: error flags set by the kernel (bits of ``err[0]``)
ERR_HISTORY = 1



@njit
def _wpow(x, mu):
    """x ** mu, without the call where mu is 0 or 1 (additive, multiplicative): the same
    values as pow's, which are exact there."""
    if mu == 1.0:
        return x
    if mu == 0.0:
        return 1.0
    return math.pow(x, mu)


@njit
def _facilitate(w, kplus, p):
    wmax = p[S_WMAX]
    norm_w = (w / wmax) + (p[S_LAMBDA] * _wpow(1.0 - (w / wmax), p[S_MU_PLUS]) * kplus)
    return norm_w * wmax if norm_w < 1.0 else wmax


@njit
def _depress(w, kminus, p):
    wmax = p[S_WMAX]
    norm_w = (w / wmax) - (p[S_ALPHA] * p[S_LAMBDA] * _wpow(w / wmax, p[S_MU_MINUS]) * kminus)
    return norm_w * wmax if norm_w > 0.0 else 0.0


@njit
def stdp_post_spike(i, t, plastic):
    """Add neuron i's spike at step t (global) to its history, if it is a plastic target."""
    hidx, h_t, h_k, h_n, h_tau, h_lost, dt_ms = plastic[11], plastic[12], plastic[13], plastic[14], \
        plastic[15], plastic[16], plastic[18]
    last_t, last_k = plastic[19], plastic[20]
    h = hidx[i]
    if h < 0:
        return
    c = h_n[h]
    cap = h_t.shape[1]
    k = 1.0
    if c > 0:
        prev = (c - 1) % cap
        # NEST: Kminus = Kminus * exp((t_last - t) / tau_minus) + 1
        k = h_k[h, prev] * math.exp((h_t[h, prev] - t) * dt_ms * (1.0 / h_tau[h])) + 1.0
    pos = c % cap
    if c >= cap:
        h_lost[h] = h_t[h, pos]
    h_t[h, pos] = t
    h_k[h, pos] = k
    h_n[h] = c + 1
    # the newest entry again in compact arrays: most presynaptic spikes need only it
    last_t[h] = t
    last_k[h] = k


@njit
def stdp_pre_spike(i, t, row, ring, plastic):
    """Neuron i spikes at step t (global; ring row ``row``): update and deliver the weights of
    its plastic synapses (see the module docstring), then its K+ and last spike time."""
    pop_of, lo, q_src, q_par, q_off, indptr, tgt, w_arr, dly, kplus, tlast, hidx, h_t, h_k, h_n, h_tau, \
        h_lost, err, dt_ms, last_t, last_k = plastic
    depth = ring.shape[0]
    cap = h_t.shape[1]
    p_i = pop_of[i]
    for q in range(q_src.shape[0]):
        if q_src[q] != p_i:
            continue
        p = q_par[q]
        tau_plus = p[S_TAU_PLUS]
        r = q_off[q] + i - lo[p_i]
        tl = tlast[r]
        kp = kplus[r]
        for k in range(indptr[r], indptr[r + 1]):
            j = tgt[k]
            d = dly[k]
            w = w_arr[k]
            h = hidx[j]
            c = h_n[h]
            lt = last_t[h]
            kminus = 0.0
            if c > 0 and lt <= tl - d and lt < t - d:
                # no postsynaptic spike since (the common case): no facilitation, and K- from
                # the newest spike alone
                kminus = last_k[h] * math.exp((lt - (t - d)) * dt_ms * (1.0 / h_tau[h]))
            elif c > 0:
                first = c - cap if c > cap else 0
                # facilitation: postsynaptic spikes with tl - d < t_post <= t - d, oldest first
                a = c
                while a > first and h_t[h, (a - 1) % cap] > tl - d:
                    a -= 1
                if a == first and first > 0 and h_lost[h] > tl - d:
                    err[0] |= ERR_HISTORY
                for b in range(a, c):
                    tp = h_t[h, b % cap]
                    if tp > t - d:
                        break
                    minus_dt = (tl - (tp + d)) * dt_ms
                    w = _facilitate(w, kp * math.exp(minus_dt / tau_plus), p)
                # depression: K- of the postsynaptic spikes strictly before t - d
                found = False
                b = c
                while b > first and not found:
                    b -= 1
                    tp = h_t[h, b % cap]
                    if tp < t - d:
                        kminus = h_k[h, b % cap] * math.exp((tp - (t - d)) * dt_ms * (1.0 / h_tau[h]))
                        found = True
                if not found and first > 0:
                    err[0] |= ERR_HISTORY
            w = _depress(w, kminus, p)
            w_arr[k] = w
            rr = row + d - 1
            if rr >= depth:
                rr -= depth
            ring[rr, j] += w
        kplus[r] = kp * math.exp((tl - t) * dt_ms / tau_plus) + 1.0
        tlast[r] = t


@njit
def split_spikes(step, ids, lo, t0, dt, ticks, local, first):
    """A window's spikes (step (m,) in the window, ids (m,) network-wide) by population, each in
    its emission order: ticks (m,) t0 + step dt, local (m,) the id within its population, and
    first (P + 1,) where population p's spikes start (lo (P + 1,): the populations' id bounds).
    One counting sort, where a boolean mask per population took a pass each."""
    m = step.shape[0]
    P = lo.shape[0] - 1
    pop = np.empty(m, np.int64)
    for p in range(P + 1):
        first[p] = 0
    for i in range(m):
        p = 0
        while ids[i] >= lo[p + 1]:
            p += 1
        pop[i] = p
        first[p + 1] += 1
    for p in range(P):
        first[p + 1] += first[p]
    at = first[:P].copy()
    for i in range(m):
        p = pop[i]
        k = at[p]
        at[p] += 1
        ticks[k] = t0 + step[i] * dt
        local[k] = ids[i] - lo[p]
