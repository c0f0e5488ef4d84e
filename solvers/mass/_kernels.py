"""numba kernels of the region-network solver: node models, couplings, integrators, delays.

State is ``x`` (n_sv, n_regions) float64, as TVB's (state variable, node) layout; parameters
``p`` (n_params, n_regions), one column per region (a scalar parameter is repeated).

Delayed coupling keeps a ring buffer ``buf`` (n_ch * n_regions, horizon + B), region-major, of
the coupling function's *pre* values (they depend on the source region only; a coupling that
needs the target's state is split into source-only channels, see ``pre``/``post``): row
ch * n + j holds channel ch of region j, step g's value at column g % horizon, and columns
horizon .. horizon + B - 1 repeat columns 0 .. B - 1, so that a run of up to B consecutive
steps is always one contiguous slice. The edges with a delay of at least B steps (CSR by
target: ``indptr``, ``cols``, ``delays`` in steps, ``weights``) are summed for B steps at
once, so that every value a batch reads was written before it starts: each edge then reads B
contiguous values instead of one scattered value per step. B is up to 64 steps: the few
edges with shorter delays are summed in sub-batches of B2 steps (their shortest delay) added
to the batch's sums, and only the undelayed ones (self connections) step by step. Per target
and step the sum runs over the batched edges in CSR order, then the sub-batched ones, then
the undelayed ones: the result does not depend on how a run is split into windows.

As in TVB, the coupling and the external input are computed once per step and held over the
integrator's stages.
"""
import math

import numpy as np
from numba import types
from numba.extending import overload

from .._jit import njit

# Node models. The ids are the kernel's switch; models.py names them.
JANSEN_RIT, WILSON_COWAN, MONTBRIO, WONG_WANG, GENERIC_2D, ZERLAUT_1, ZERLAUT_2, KURAMOTO_M = range(8)
MODEL_IDS = {"jansen_rit": JANSEN_RIT, "wilson_cowan": WILSON_COWAN,
             "montbrio_pazo_roxin": MONTBRIO, "reduced_wong_wang": WONG_WANG,
             "generic_2d_oscillator": GENERIC_2D, "zerlaut_adaptation_first_order": ZERLAUT_1,
             "zerlaut_adaptation_second_order": ZERLAUT_2, "kuramoto": KURAMOTO_M}
# Coupling functions.
LINEAR, SIGMOIDAL_JR, DIFFERENCE, KURAMOTO = 0, 1, 2, 3
COUPLING_IDS = {"linear": LINEAR, "sigmoidal_jansen_rit": SIGMOIDAL_JR, "difference": DIFFERENCE,
                "kuramoto": KURAMOTO}
# Integrators.
EULER, HEUN, RK4, EULER_MARUYAMA, HEUN_STOCHASTIC = 0, 1, 2, 3, 4
INTEGRATOR_IDS = {"euler": EULER, "heun": HEUN, "rk4": RK4, "euler_maruyama": EULER_MARUYAMA,
                  "heun_stochastic": HEUN_STOCHASTIC}


# exp(x) = 2^k exp(r), k = rint(x / ln 2), |r| <= ln 2 / 2 (Cody-Waite split of ln 2)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


@njit
def vexp(x, out, kbuf):
    """out[i] = exp(x[i]) for a whole array, written so that the loop vectorises (libm's exp is
    a call per element, which it cannot): Taylor series to degree 13 on |r| <= ln 2 / 2
    (truncation < 1e-17) scaled by 2^k built from its bits. Within 2 ulp of libm's exp for
    |x| <= 708; x is clipped to [-708, 709] (exp(-708) ~ 3e-308, exp(709) ~ 8e307: a sigmoid
    1 / (1 + exp(x)) is then 1 or ~1e-308 instead of exactly 1 or 0); NaN stays NaN.
    kbuf: int64 scratch of x's length."""
    n = x.shape[0]
    for i in range(n):
        xi = x[i]
        if xi < -708.0:
            xi = -708.0
        elif xi > 709.0:
            xi = 709.0
        k = math.floor(xi * _LOG2E + 0.5)
        r = (xi - k * _LN2_HI) - k * _LN2_LO
        out[i] = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
            1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
                1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (
                    1.0 / 6227020800)))))))))))))
        kbuf[i] = (np.int64(k) + 1023) << 52 if xi == xi else 0
    scale = kbuf.view(np.float64)
    for i in range(n):
        out[i] *= scale[i]


@njit
def _zerlaut_fluct(fe_r, fi_r, fe_ext, fi_ext, W, p, i, E_L):
    """TVB's ZerlautAdaptationFirstOrder.get_fluct_regime_vars, term for term: mean (mV),
    standard deviation (mV) and autocorrelation time (ms) of the membrane potential.
    p rows (models.py ZERLAUT_PARAMS order) from 0: g_L, E_L_e, E_L_i, C_m, b_e, a_e, b_i, a_i,
    tau_w_e, tau_w_i, E_e, E_i, Q_e, Q_i, tau_e, tau_i, N_tot, p_connect_e, p_connect_i, g,
    K_ext_e, K_ext_i, T, ..."""
    g_L, C_m, E_e, E_i = p[0, i], p[3, i], p[10, i], p[11, i]
    Q_e, Q_i, tau_e, tau_i = p[12, i], p[13, i], p[14, i], p[15, i]
    N_tot, p_e, p_i, g, K_e, K_i = p[16, i], p[17, i], p[18, i], p[19, i], p[20, i], p[21, i]
    fe = (fe_r + 1.0e-6) * (1. - g) * p_e * N_tot + fe_ext * K_e
    fi = (fi_r + 1.0e-6) * g * p_i * N_tot + fi_ext * K_i
    mu_Ge, mu_Gi = Q_e * tau_e * fe, Q_i * tau_i * fi
    mu_G = g_L + mu_Ge + mu_Gi
    T_m = C_m / mu_G
    mu_V = (mu_Ge * E_e + mu_Gi * E_i + g_L * E_L - W) / mu_G
    U_e, U_i = Q_e / mu_G * (E_e - mu_V), Q_i / mu_G * (E_i - mu_V)
    sigma_V = math.sqrt(fe * (U_e * tau_e) ** 2 / (2. * (tau_e + T_m))
                        + fi * (U_i * tau_i) ** 2 / (2. * (tau_i + T_m)))
    T_V = ((fe * (U_e * tau_e) ** 2 + fi * (U_i * tau_i) ** 2)
           / (fe * (U_e * tau_e) ** 2 / (tau_e + T_m) + fi * (U_i * tau_i) ** 2 / (tau_i + T_m)))
    return mu_V, sigma_V, T_V


@njit
def _zerlaut_tf(fe_r, fi_r, fe_ext, fi_ext, W, p, i, E_L, P0):
    """TVB's ZerlautAdaptationFirstOrder.TF (kHz): the output rate of a population whose
    threshold polynomial starts at row P0 of p."""
    mu_V, sigma_V, T_V = _zerlaut_fluct(fe_r, fi_r, fe_ext, fi_ext, W, p, i, E_L)
    V = (mu_V - -60.0) / 10.0
    S = (sigma_V - 4.0) / 6.0
    T = (T_V * p[0, i] / p[3, i] - 0.5) / 1.
    V_thre = (p[P0, i] + p[P0 + 1, i] * V + p[P0 + 2, i] * S + p[P0 + 3, i] * T + p[P0 + 4, i] * V ** 2
              + p[P0 + 5, i] * S ** 2 + p[P0 + 6, i] * T ** 2 + p[P0 + 7, i] * V * S
              + p[P0 + 8, i] * V * T + p[P0 + 9, i] * S * T)
    V_thre *= 1e3
    return math.erfc((V_thre - mu_V) / (math.sqrt(2) * sigma_V)) / (2 * T_V)


# rows of the Zerlaut parameters after the 23 scalars (see models.py)
Z_PE, Z_PI = 23, 33
Z_EXT_EE, Z_EXT_EI, Z_EXT_IE, Z_EXT_II, Z_TAU_OU, Z_W_NOISE, Z_S_I = 43, 44, 45, 46, 47, 48, 49


@njit
def _zerlaut2_rate(p, i, E, I, C_ee, C_ei, C_ii, fe_in, fi_in, W, E_L, P0, TF, rate, T):
    """d rate / dt of one population of TVB's second-order model: its transfer function TF
    (already computed) corrected by the (co)variances times its second derivatives, which TVB
    takes by central differences with step df = 1e-7 (term for term as TVB's _diff2_*)."""
    df = 1e-7
    d2 = (df * 1e3) ** 2
    fefe = (_zerlaut_tf(E + df, I, fe_in, fi_in, W, p, i, E_L, P0) - 2 * TF
            + _zerlaut_tf(E - df, I, fe_in, fi_in, W, p, i, E_L, P0)) / d2
    # _diff2_fe_fi: d/dfi of d/dfe
    fefi = (((_zerlaut_tf(E + df, I + df, fe_in, fi_in, W, p, i, E_L, P0)
              - _zerlaut_tf(E - df, I + df, fe_in, fi_in, W, p, i, E_L, P0)) / (2 * df * 1e3))
            - ((_zerlaut_tf(E + df, I - df, fe_in, fi_in, W, p, i, E_L, P0)
                - _zerlaut_tf(E - df, I - df, fe_in, fi_in, W, p, i, E_L, P0)) / (2 * df * 1e3))) / (2 * df * 1e3)
    # _diff2_fi_fe: d/dfe of d/dfi
    fife = (((_zerlaut_tf(E + df, I + df, fe_in, fi_in, W, p, i, E_L, P0)
              - _zerlaut_tf(E + df, I - df, fe_in, fi_in, W, p, i, E_L, P0)) / (2 * df * 1e3))
            - ((_zerlaut_tf(E - df, I + df, fe_in, fi_in, W, p, i, E_L, P0)
                - _zerlaut_tf(E - df, I - df, fe_in, fi_in, W, p, i, E_L, P0)) / (2 * df * 1e3))) / (2 * df * 1e3)
    fifi = (_zerlaut_tf(E, I + df, fe_in, fi_in, W, p, i, E_L, P0) - 2 * TF
            + _zerlaut_tf(E, I - df, fe_in, fi_in, W, p, i, E_L, P0)) / d2
    return (TF - rate + .5 * C_ee * fefe + .5 * C_ei * fefi + .5 * C_ei * fife + .5 * C_ii * fifi) / T


@njit
def _zerlaut2(p, i, E, I, C_ee, C_ei, C_ii, W_e, W_i, ou, c_in, dx):
    """TVB's ZerlautAdaptationSecondOrder.dfun for region i, term for term."""
    N_tot, g, T = p[16, i], p[19, i], p[22, i]
    E_L_e, E_L_i = p[1, i], p[2, i]
    N_e = N_tot * (1 - g)
    N_i = N_tot * g
    Ee_in = c_in + p[Z_EXT_EE, i] + p[Z_W_NOISE, i] * ou
    if Ee_in < 0:
        Ee_in = 0.0
    Ei_in = p[Z_S_I, i] * c_in + p[Z_EXT_IE, i] + p[Z_W_NOISE, i] * ou
    if Ei_in < 0:
        Ei_in = 0.0
    Ie_in = p[Z_EXT_EI, i]
    Ii_in = p[Z_EXT_II, i]
    df = 1e-7
    TFe = _zerlaut_tf(E, I, Ee_in, Ie_in, W_e, p, i, E_L_e, Z_PE)
    TFi = _zerlaut_tf(E, I, Ei_in, Ii_in, W_i, p, i, E_L_i, Z_PI)
    # first derivatives, central differences as TVB's _diff_fe / _diff_fi
    dfe_e = (_zerlaut_tf(E + df, I, Ee_in, Ie_in, W_e, p, i, E_L_e, Z_PE)
             - _zerlaut_tf(E - df, I, Ee_in, Ie_in, W_e, p, i, E_L_e, Z_PE)) / (2 * df * 1e3)
    dfe_i = (_zerlaut_tf(E + df, I, Ei_in, Ii_in, W_i, p, i, E_L_i, Z_PI)
             - _zerlaut_tf(E - df, I, Ei_in, Ii_in, W_i, p, i, E_L_i, Z_PI)) / (2 * df * 1e3)
    dfi_e = (_zerlaut_tf(E, I + df, Ee_in, Ie_in, W_e, p, i, E_L_e, Z_PE)
             - _zerlaut_tf(E, I - df, Ee_in, Ie_in, W_e, p, i, E_L_e, Z_PE)) / (2 * df * 1e3)
    dfi_i = (_zerlaut_tf(E, I + df, Ei_in, Ii_in, W_i, p, i, E_L_i, Z_PI)
             - _zerlaut_tf(E, I - df, Ei_in, Ii_in, W_i, p, i, E_L_i, Z_PI)) / (2 * df * 1e3)
    dx[0, i] = _zerlaut2_rate(p, i, E, I, C_ee, C_ei, C_ii, Ee_in, Ie_in, W_e, E_L_e, Z_PE, TFe, E, T)
    dx[1, i] = _zerlaut2_rate(p, i, E, I, C_ee, C_ei, C_ii, Ei_in, Ii_in, W_i, E_L_i, Z_PI, TFi, I, T)
    dx[2, i] = (TFe * (1. / T - TFe) / N_e + (TFe - E) ** 2 + 2. * C_ee * dfe_e + 2. * C_ei * dfi_e
                - 2. * C_ee) / T
    dx[3, i] = ((TFe - E) * (TFi - I) + C_ee * dfe_e + C_ei * dfe_i + C_ei * dfi_e + C_ii * dfi_i
                - 2. * C_ei) / T
    dx[4, i] = (TFi * (1. / T - TFi) / N_i + (TFi - I) ** 2 + 2. * C_ii * dfi_i + 2. * C_ei * dfe_i
                - 2. * C_ii) / T
    mu_V = _zerlaut_fluct(E, I, Ee_in, Ie_in, W_e, p, i, E_L_e)[0]
    dx[5, i] = -W_e / p[8, i] + p[4, i] * E + p[5, i] * (mu_V - E_L_e) / p[8, i]
    mu_V = _zerlaut_fluct(E, I, Ei_in, Ii_in, W_i, p, i, E_L_i)[0]
    dx[6, i] = -W_i / p[9, i] + p[6, i] * I + p[7, i] * (mu_V - E_L_i) / p[9, i]
    dx[7, i] = -ou / p[Z_TAU_OU, i]


# ws rows of Jansen-Rit's fast path: scratch 0..5, then per-region constants (jr_constants)
JR_WS = 21


@njit
def jr_constants(p, ws):
    """ws[6..20] for _jr_fast: exp(-3 r v0), then r, v0, a_1 J, a_3 J, 2 nu_max, A a, 2 a, a^2,
    a_2 J, B b, 2 b, b^2, a_4 J, mu, one column per region. Each is a leading product of TVB's
    expressions (evaluated left to right), so that using it changes no bit."""
    for i in range(p.shape[1]):
        A, B, a, b, v0, nu_max, r, J = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i], p[6, i], p[7, i]
        a_1, a_2, a_3, a_4, mu = p[8, i], p[9, i], p[10, i], p[11, i], p[12, i]
        ws[6, i] = math.exp(-3.0 * r * v0)
        ws[7, i], ws[8, i], ws[9, i], ws[10, i], ws[11, i] = r, v0, a_1 * J, a_3 * J, 2.0 * nu_max
        ws[12, i], ws[13, i], ws[14, i], ws[15, i] = A * a, 2.0 * a, a ** 2, a_2 * J
        ws[16, i], ws[17, i], ws[18, i], ws[19, i], ws[20, i] = B * b, 2.0 * b, b ** 2, a_4 * J, mu


@njit(error_model="numpy")
def _jr_fast(x, c, u, dx, aux, fast, ws, wk, ea_given):
    """dfun's Jansen-Rit with every exponential from vexp (fast >= 1), TVB's _numba_dfun_jr
    operation for operation otherwise. Each loop writes one array: LLVM then vectorises it (with
    several outputs its runtime alias checks exceed its limit and it stays scalar); and IEEE
    division (error_model='numpy': the divisors are 1 + exp(.) >= 1) drops numba's zero check,
    whose branch would keep the divisions scalar. With a_1 = 4 a_3 in every region (TVB's
    defaults; fast == 2) the two sigmoids of y0 share one exponential:
    exp(r (v0 - a_1 J y0)) = exp(r (v0 - a_3 J y0))^4 exp(-3 r v0) (a few ulp from the direct
    value; an overflow to inf gives the sigmoid's limit 0, as the direct value would).
    ws: (JR_WS, n), rows 6.. from jr_constants; ea_given: ws[3] already holds
    exp(r (v0 - (y1 - y2))) (the coupling's exponentials, when its sigmoid is the model's)."""
    n = x.shape[1]
    ta, tb, tc, ea, eb, ec, k3 = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5], ws[6]
    r, v0, a1J, a3J, nu2 = ws[7], ws[8], ws[9], ws[10], ws[11]
    Aa, a2a, asq, a2J, Bb, b2b, bsq, a4J, mu = ws[12], ws[13], ws[14], ws[15], ws[16], ws[17], ws[18], ws[19], ws[20]
    x0, x1, x2, x3, x4, x5 = x[0], x[1], x[2], x[3], x[4], x[5]
    if not ea_given:
        for i in range(n):
            ta[i] = r[i] * (v0[i] - (x1[i] - x2[i]))
        vexp(ta, ea, wk)
    for i in range(n):
        tc[i] = r[i] * (v0[i] - a3J[i] * x0[i])
    vexp(tc, ec, wk)
    if fast == 2:
        for i in range(n):
            e2 = ec[i] * ec[i]
            eb[i] = (e2 * e2) * k3[i]
    else:
        for i in range(n):
            tb[i] = r[i] * (v0[i] - a1J[i] * x0[i])
        vexp(tb, eb, wk)
    for i in range(n):
        aux[i] = nu2[i] / (1.0 + ea[i])              # sigm_y1_y2
    for i in range(n):
        tb[i] = mu[i] + a2J[i] * (nu2[i] / (1.0 + eb[i])) + c[i] + u[i]
    for i in range(n):
        tc[i] = nu2[i] / (1.0 + ec[i])               # sigm_y0_3
    d = dx[0]
    for i in range(n):
        d[i] = x3[i]
    d = dx[1]
    for i in range(n):
        d[i] = x4[i]
    d = dx[2]
    for i in range(n):
        d[i] = x5[i]
    d = dx[3]
    for i in range(n):
        d[i] = Aa[i] * aux[i] - a2a[i] * x3[i] - asq[i] * x0[i]
    d = dx[4]
    for i in range(n):
        d[i] = Aa[i] * tb[i] - a2a[i] * x4[i] - asq[i] * x1[i]
    d = dx[5]
    for i in range(n):
        d[i] = Bb[i] * (a4J[i] * tc[i]) - b2b[i] * x5[i] - bsq[i] * x2[i]



def _at(a, i):
    """a[i] for an array of per-region values, a itself for one value shared by every region."""
    return a if np.isscalar(a) else a[i]


@overload(_at)
def _at_numba(a, i):
    if isinstance(a, types.Array):
        return lambda a, i: a[i]
    return lambda a, i: a


@njit
def _jr_heun(x, c, u, k1, tmp, aux, fast, ws, wk, ea_given, dt, homogeneous):
    """One Heun step of Jansen-Rit (fast >= 1) in place on x (see _jr_heun_rows); with
    homogeneous (every region has the same parameters) the constants are numbers instead of
    rows, which saves a load per constant and element (the same operations: the same bits)."""
    if homogeneous:
        _jr_heun_rows(x, c, u, k1, tmp, aux, fast, ws, wk, ea_given, dt, (
            ws[6, 0], ws[7, 0], ws[8, 0], ws[9, 0], ws[10, 0], ws[11, 0], ws[12, 0], ws[13, 0],
            ws[14, 0], ws[15, 0], ws[16, 0], ws[17, 0], ws[18, 0], ws[19, 0], ws[20, 0]))
    else:
        _jr_heun_rows(x, c, u, k1, tmp, aux, fast, ws, wk, ea_given, dt, (
            ws[6], ws[7], ws[8], ws[9], ws[10], ws[11], ws[12], ws[13], ws[14], ws[15], ws[16],
            ws[17], ws[18], ws[19], ws[20]))


@njit(error_model="numpy")
def _jr_heun_rows(x, c, u, k1, tmp, aux, fast, ws, wk, ea_given, dt, q):
    """One Heun step of Jansen-Rit (fast >= 1) in place on x: dfun's _jr_fast twice with TVB's
    HeunDeterministic between, fused (the intermediate state tmp and the final update are
    written as the stages produce them, k1's copies of y3..y5 read from x). Every value is
    computed by the same operations as the unfused dfun + Heun, so the result is the same to
    the bit. aux gets the first stage's 2 nu_max S(y1 - y2); k1, tmp (6, n): scratch.
    q: jr_constants' rows 6..20, each a row (n,) or one number for every region (_at)."""
    n = x.shape[1]
    ta, tb, tc, ea, eb, ec = ws[0], ws[1], ws[2], ws[3], ws[4], ws[5]
    k3, r, v0, a1J, a3J, nu2, Aa, a2a, asq, a2J, Bb, b2b, bsq, a4J, mu = q
    x0, x1, x2, x3, x4, x5 = x[0], x[1], x[2], x[3], x[4], x[5]
    t0, t1, t2, t3, t4, t5 = tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5]
    d3, d4, d5 = k1[3], k1[4], k1[5]
    for stage in range(2):
        y0, y1, y2 = (x0, x1, x2) if stage == 0 else (t0, t1, t2)
        y3, y4, y5 = (x3, x4, x5) if stage == 0 else (t3, t4, t5)
        if stage == 1 or not ea_given:
            for i in range(n):
                ta[i] = _at(r, i) * (_at(v0, i) - (y1[i] - y2[i]))
            vexp(ta, ea, wk)
        for i in range(n):
            tc[i] = _at(r, i) * (_at(v0, i) - _at(a3J, i) * y0[i])
        vexp(tc, ec, wk)
        if fast == 2:
            for i in range(n):
                e2 = ec[i] * ec[i]
                eb[i] = (e2 * e2) * _at(k3, i)
        else:
            for i in range(n):
                tb[i] = _at(r, i) * (_at(v0, i) - _at(a1J, i) * y0[i])
            vexp(tb, eb, wk)
        sa = aux if stage == 0 else ta
        for i in range(n):
            sa[i] = _at(nu2, i) / (1.0 + ea[i])                                  # sigm_y1_y2
        for i in range(n):
            tb[i] = _at(mu, i) + _at(a2J, i) * (_at(nu2, i) / (1.0 + eb[i])) + c[i] + u[i]
        for i in range(n):
            tc[i] = _at(nu2, i) / (1.0 + ec[i])                                  # sigm_y0_3
        if stage == 0:
            # k1 = (y3, y4, y5, d3, d4, d5); tmp = x + dt k1
            for i in range(n):
                d3[i] = _at(Aa, i) * sa[i] - _at(a2a, i) * x3[i] - _at(asq, i) * x0[i]
            for i in range(n):
                d4[i] = _at(Aa, i) * tb[i] - _at(a2a, i) * x4[i] - _at(asq, i) * x1[i]
            for i in range(n):
                d5[i] = _at(Bb, i) * (_at(a4J, i) * tc[i]) - _at(b2b, i) * x5[i] - _at(bsq, i) * x2[i]
            for i in range(n):
                t0[i] = x0[i] + dt * x3[i]
            for i in range(n):
                t1[i] = x1[i] + dt * x4[i]
            for i in range(n):
                t2[i] = x2[i] + dt * x5[i]
            for i in range(n):
                t3[i] = x3[i] + dt * d3[i]
            for i in range(n):
                t4[i] = x4[i] + dt * d4[i]
            for i in range(n):
                t5[i] = x5[i] + dt * d5[i]
        else:
            # x + (k1 + k2) dt / 2, k2 = (t3, t4, t5, f3(tmp), f4(tmp), f5(tmp)); y0..y2
            # first, while x3..x5 still hold k1's
            for i in range(n):
                x0[i] = x0[i] + (x3[i] + t3[i]) * dt / 2.0
            for i in range(n):
                x1[i] = x1[i] + (x4[i] + t4[i]) * dt / 2.0
            for i in range(n):
                x2[i] = x2[i] + (x5[i] + t5[i]) * dt / 2.0
            for i in range(n):
                x3[i] = x3[i] + (d3[i] + (_at(Aa, i) * sa[i] - _at(a2a, i) * t3[i] - _at(asq, i) * t0[i])) * dt / 2.0
            for i in range(n):
                x4[i] = x4[i] + (d4[i] + (_at(Aa, i) * tb[i] - _at(a2a, i) * t4[i] - _at(asq, i) * t1[i])) * dt / 2.0
            for i in range(n):
                x5[i] = x5[i] + (d5[i] + (_at(Bb, i) * (_at(a4J, i) * tc[i]) - _at(b2b, i) * t5[i] - _at(bsq, i) * t2[i])) * dt / 2.0


@njit
def dfun(model, p, x, c, u, dx, aux, fast, ws, wk, ea_given):
    """dx (n_sv, n) = f(x, c + u) for every region. p (n_params, n): the model's parameters
    (models.py order), one column per region; c, u (n,): coupling and external input, entering
    where the model says. aux (n,): Jansen-Rit writes its pyramidal rate 2 nu_max S(y1 - y2)
    (1/ms) there, which the step reuses for the rate output. fast: 0 to reproduce TVB's
    operations exactly, 1 to allow rewrites that change the last bits (vexp's exponentials), 2
    for those and, for Jansen-Rit with a_1 = 4 a_3 everywhere, a shared exponential (below).
    ws (7, n) float64, for Jansen-Rit (JR_WS, n) with rows 6.. from jr_constants, and wk (n,)
    int64: scratch.
    ea_given: Jansen-Rit's fast path finds exp(r (v0 - (y1 - y2))) already in ws[3] (the
    coupling computed the same exponentials)."""
    n = x.shape[1]
    if model == JANSEN_RIT and fast:
        _jr_fast(x, c, u, dx, aux, fast, ws, wk, ea_given)
    elif model == JANSEN_RIT:
        for i in range(n):
            A, B, a, b, v0, nu_max, r, J = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i], p[6, i], p[7, i]
            a_1, a_2, a_3, a_4, mu = p[8, i], p[9, i], p[10, i], p[11, i], p[12, i]
            y0, y1, y2, y3, y4, y5 = x[0, i], x[1, i], x[2, i], x[3, i], x[4, i], x[5, i]
            # as TVB's _numba_dfun_jr, term for term
            sigm_y1_y2 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (y1 - y2))))
            sigm_y0_1 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_1 * J * y0))))
            sigm_y0_3 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_3 * J * y0))))
            aux[i] = sigm_y1_y2
            dx[0, i] = y3
            dx[1, i] = y4
            dx[2, i] = y5
            dx[3, i] = A * a * sigm_y1_y2 - 2.0 * a * y3 - a ** 2 * y0
            dx[4, i] = A * a * (mu + a_2 * J * sigm_y0_1 + c[i] + u[i]) - 2.0 * a * y4 - a ** 2 * y1
            dx[5, i] = B * b * (a_4 * J * sigm_y0_3) - 2.0 * b * y5 - b ** 2 * y2
    elif model == WILSON_COWAN:
        for i in range(n):
            c_ee, c_ei, c_ie, c_ii, tau_e, tau_i = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i]
            a_e, b_e, c_e, theta_e = p[6, i], p[7, i], p[8, i], p[9, i]
            a_i, b_i, c_i, theta_i = p[10, i], p[11, i], p[12, i], p[13, i]
            r_e, r_i, k_e, k_i, P, Q = p[14, i], p[15, i], p[16, i], p[17, i], p[18, i], p[19, i]
            alpha_e, alpha_i = p[20, i], p[21, i]
            s0_e = 1.0 / (1.0 + math.exp(a_e * b_e))
            s0_i = 1.0 / (1.0 + math.exp(a_i * b_i))
            E, I = x[0, i], x[1, i]
            x_e = alpha_e * (c_ee * E - c_ei * I + P - theta_e + c[i] + u[i])
            x_i = alpha_i * (c_ie * E - c_ii * I + Q - theta_i)
            s_e = c_e * (1.0 / (1.0 + math.exp(-a_e * (x_e - b_e))) - s0_e)
            s_i = c_i * (1.0 / (1.0 + math.exp(-a_i * (x_i - b_i))) - s0_i)
            dx[0, i] = (-E + (k_e - r_e * E) * s_e) / tau_e
            dx[1, i] = (-I + (k_i - r_i * I) * s_i) / tau_i
    elif model == MONTBRIO:
        for i in range(n):
            tau, I0, Delta, J, eta, cr = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i]
            r, V = x[0, i], x[1, i]
            dx[0, i] = (Delta / (math.pi * tau) + 2.0 * V * r) / tau
            dx[1, i] = (V * V - math.pi ** 2 * tau ** 2 * r * r + eta + J * tau * r + I0
                        + cr * c[i] + u[i]) / tau
    elif model == WONG_WANG:
        for i in range(n):
            a, b, d, gamma, tau_s, w, J_N, I_o = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i], p[6, i], p[7, i]
            S = x[0, i]
            xx = w * J_N * S + I_o + J_N * (c[i] + u[i])
            y = a * xx - b
            H = y / (1.0 - math.exp(-d * y))
            dx[0, i] = -(S / tau_s) + (1.0 - S) * H * gamma
    elif model == GENERIC_2D:
        for i in range(n):
            tau, I0, a, b, cc, d, e, f, g = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], p[5, i], p[6, i], p[7, i], p[8, i]
            alpha, beta, gamma = p[9, i], p[10, i], p[11, i]
            V, W = x[0, i], x[1, i]
            dx[0, i] = d * tau * (alpha * W - f * V ** 3 + e * V ** 2 + g * V + gamma * I0
                                  + gamma * (c[i] + u[i]))
            dx[1, i] = d * (a + b * V + cc * V ** 2 - beta * W) / tau
    elif model == ZERLAUT_1:
        for i in range(n):
            E, I, W_e, W_i, ou = x[0, i], x[1, i], x[2, i], x[3, i], x[4, i]
            # TVB's ZerlautAdaptationFirstOrder.dfun (no local coupling)
            Fe_ext = c[i] + u[i] + p[Z_W_NOISE, i] * ou
            if Fe_ext * p[20, i] < 0:
                Fe_ext = 0.0
            Fi_ext = 0.0
            E_L_e, E_L_i, T = p[1, i], p[2, i], p[22, i]
            dx[0, i] = (_zerlaut_tf(E, I, Fe_ext + p[Z_EXT_EE, i], Fi_ext + p[Z_EXT_EI, i], W_e, p, i,
                                    E_L_e, Z_PE) - E) / T
            dx[1, i] = (_zerlaut_tf(E, I, Fe_ext + p[Z_EXT_IE, i], Fi_ext + p[Z_EXT_II, i], W_i, p, i,
                                    E_L_i, Z_PI) - I) / T
            mu_V = _zerlaut_fluct(E, I, Fe_ext + p[Z_EXT_EE, i], Fi_ext + p[Z_EXT_EI, i], W_e, p, i, E_L_e)[0]
            dx[2, i] = -W_e / p[8, i] + p[4, i] * E + p[5, i] * (mu_V - E_L_e) / p[8, i]
            mu_V = _zerlaut_fluct(E, I, Fe_ext + p[Z_EXT_IE, i], Fi_ext + p[Z_EXT_II, i], W_i, p, i, E_L_i)[0]
            dx[3, i] = -W_i / p[9, i] + p[6, i] * I + p[7, i] * (mu_V - E_L_i) / p[9, i]
            dx[4, i] = -ou / p[Z_TAU_OU, i]
    elif model == ZERLAUT_2:
        for i in range(n):
            _zerlaut2(p, i, x[0, i], x[1, i], x[2, i], x[3, i], x[4, i], x[5, i], x[6, i], x[7, i],
                      c[i] + u[i], dx)
    else:  # KURAMOTO_M: TVB's Kuramoto, d theta / dt = omega + c
        for i in range(n):
            dx[0, i] = p[0, i] + (c[i] + u[i])


@njit
def activity(model, x, i, f32):
    """The quantity of region i that couples regions (models.py table).

    f32: as TVB, whose history buffer is float32: the state variables are rounded to float32
    and combined in float32 arithmetic (tvb.simulator.history declares its arrays 'f')."""
    if f32:
        if model == JANSEN_RIT:
            return np.float64(np.float32(x[1, i]) - np.float32(x[2, i]))
        return np.float64(np.float32(x[0, i]))
    if model == JANSEN_RIT:
        return x[1, i] - x[2, i]
    return x[0, i]


@njit
def rate_hz(model, p, s, i):
    """Firing rate (Hz) of region i from activity s, for the models that have one (models.py)."""
    if model == JANSEN_RIT:  # 1000 * 2 nu_max / (1 + exp(r (v0 - s)))
        return 1000.0 * (2.0 * p[5, i] / (1.0 + math.exp(p[6, i] * (p[4, i] - s))))
    if model == MONTBRIO or model == ZERLAUT_1 or model == ZERLAUT_2:  # activity in 1/ms (kHz)
        return 1000.0 * s
    return math.nan


@njit
def n_channels(cfun):
    """How many pre values per source region the coupling function buffers."""
    return 2 if cfun == KURAMOTO else 1


@njit
def pre(cfun, cp, s, ch):
    """Channel ch of the coupling function's per-source part of activity s."""
    if cfun == SIGMOIDAL_JR:  # cp = (cmin, cmax, midpoint, r, a)
        return cp[0] + (cp[1] - cp[0]) / (1.0 + math.exp(cp[3] * (cp[2] - s)))
    if cfun == KURAMOTO:  # sin(s_j - s_i) = sin s_j cos s_i - cos s_j sin s_i
        return math.sin(s) if ch == 0 else math.cos(s)
    return s  # LINEAR: cp = (a, b); DIFFERENCE: cp = (a,)


@njit
def post(cfun, cp, g0, g1, si, strength):
    """The coupling input of a target whose activity is si (the current, undelayed value) from
    the weighted sums g0, g1 of its sources' channels; strength = sum_j w_ij."""
    if cfun == SIGMOIDAL_JR:
        return cp[4] * g0
    if cfun == DIFFERENCE:  # TVB: a sum_j w_ij (s_j - s_i)
        return cp[0] * (g0 - si * strength)
    if cfun == KURAMOTO:  # TVB: a / n_cvar sum_j w_ij sin(s_j - s_i), n_cvar = 1
        return cp[0] * (math.cos(si) * g0 - math.sin(si) * g1)
    return cp[0] * g0 + cp[1]


@njit(error_model="numpy")
def _sigmoid_pre(cp, s, arg, e, out, wk):
    """SigmoidalJansenRit's pre() of every region's activity s (n,) with vexp, as pre() computes
    it otherwise: e gets the exponentials, out the values; arg: scratch. In loops that
    vectorise (one output each, IEEE division: the divisor 1 + exp(.) is >= 1)."""
    cmin, span, mid, r = cp[0], cp[1] - cp[0], cp[2], cp[3]
    for j in range(s.shape[0]):
        arg[j] = r * (mid - s[j])
    vexp(arg, e, wk)
    for j in range(s.shape[0]):
        out[j] = cmin + span / (1.0 + e[j])


@njit
def fill_history(model, cfun, cp, x, buf, f32):
    """Every slot of the ring buffer = pre(activity(x)): a history held constant at x."""
    n = x.shape[1]
    for ch in range(n_channels(cfun)):
        for j in range(n):
            v = pre(cfun, cp, activity(model, x, j, f32), ch)
            for h in range(buf.shape[1]):
                buf[ch * n + j, h] = v


@njit
def _bound(x, lo, hi):
    """TVB's state_variable_boundaries: clip each state variable into [lo, hi] (+-inf: none)."""
    for v in range(x.shape[0]):
        for i in range(x.shape[1]):
            if x[v, i] < lo[v]:
                x[v, i] = lo[v]
            if x[v, i] > hi[v]:
                x[v, i] = hi[v]


@njit
def network_advance(model, p, integ, dt, x, buf, step0, indptr, cols, delays, weights, sindptr, scols,
                    sdelays, sweights, zindptr, zcols, zdelays, zweights, strength, B, B2, cfun, cp, f32,
                    bounded, lo, hi, u, noise, mult, repl, repl_val, out_x, out_s, out_c, out_r):
    """Advance x (n_sv, n) in place by u.shape[0] steps of dt (ms), from global step step0.

    indptr, cols, delays, weights: the edges summed in batches (delay >= B >= 1 steps, or any
    delay when B = 1), CSR by target; sindptr, scols, sdelays, sweights: shorter ones (B > delay
    >= B2 >= 1), summed in sub-batches of B2 steps within each batch and added to its sums;
    zindptr, zcols, zdelays, zweights: the others (delay < B2, e.g. undelayed self loops),
    summed step by step; strength (n,): sum_j w_ij over all three. Per target and step the sum
    runs over the first set, then the second, then the third, each in CSR order, whatever the
    windows.
    f32: derive the buffered activity from float32 state, as TVB (see activity()), and compute
    as TVB does, operation for operation (the network amplifies last-bit differences through
    the float32 rounding): libm's exp rather than vexp; the caller then puts every edge in the
    first CSR, in TVB's order, with B = 1 (an undelayed edge reads the value just written).
    bounded: clip the state into [lo, hi] (n_sv,) after every stage, as TVB's integrators.
    u (n_steps, n): external input, held over each step. noise (n_steps, n_sv, n): the additive
    increments sqrt(2 D dt) z of the stochastic integrators (unused otherwise); mult: multiply
    them by the state at the start of the step (TVB's Multiplicative noise with b(x) = x). repl (r,):
    replaced regions, whose activity is repl_val (n_steps, r) and whose state is not integrated.
    out_x (n_steps, n_sv, n), out_s (n_steps, n): state and activity at the start of each step;
    out_c (n_steps, n): the coupling input over each step; out_r (n_steps, n) the rate (Hz) at
    the start of each step, or (0, 0) for models without one.
    """
    n_sv, n = x.shape
    H = buf.shape[1] - B    # the ring proper; columns H .. H + B - 1 mirror columns 0 .. B - 1
    n_ch = n_channels(cfun)
    n_steps = u.shape[0]
    c = np.zeros(n)
    s = np.empty(n)
    s32 = np.zeros(n)
    aux = np.empty(n)
    is_repl = np.zeros(n, dtype=np.bool_)
    for q in range(repl.shape[0]):
        is_repl[repl[q]] = True
    cb = np.zeros((n_ch, n, B))
    cur = np.empty((n_ch, n))   # this step's pre values, for the undelayed edges
    k1 = np.empty((n_sv, n))
    k2 = np.empty((n_sv, n))
    k3 = np.empty((n_sv, n))
    k4 = np.empty((n_sv, n))
    tmp = np.empty((n_sv, n))
    dn = np.empty((n_sv, n))
    keep = np.empty((n_sv, repl.shape[0]))
    ws = np.empty((JR_WS if model == JANSEN_RIT else 7, n))
    wk = np.empty(n, dtype=np.int64)
    fast = 0 if f32 else 1
    if fast and model == JANSEN_RIT:
        fast = 2
        jr_constants(p, ws)
        for i in range(n):
            if p[8, i] != 4.0 * p[10, i]:
                fast = 1
    # the coupling's sigmoid has the model's exponent in every region: dfun's first stage
    # reuses the coupling's exponentials (the same arguments, so the same values)
    # flags passed on are typed bool from the start (np.bool_, not a literal): numba types a call
    # with a literal True/False apart and compiles the callee (dfun, _jr_heun) once more for it
    no_ea = np.bool_(False)
    share = np.bool_(fast > 0 and model == JANSEN_RIT and cfun == SIGMOIDAL_JR)
    if share:
        for i in range(n):
            if cp[3] != p[6, i] or cp[2] != p[4, i]:
                share = np.bool_(False)
    # Jansen-Rit's fused Heun step (same values as dfun + Heun below)
    jr_heun = fast > 0 and model == JANSEN_RIT and integ == HEUN and not bounded
    homogeneous = np.bool_(True)
    for v in range(p.shape[0]):
        for i in range(n):
            if p[v, i] != p[v, 0]:
                homogeneous = False
    kb = B
    nb = B
    ke = B
    for k in range(n_steps):
        g = step0 + k
        slot = g % H
        for j in range(n):
            s[j] = activity(model, x, j, False)
        for q in range(repl.shape[0]):
            s[repl[q]] = repl_val[k, q]
        if cfun == SIGMOIDAL_JR and not f32:
            # pre() with vexp, all regions at once; when the sigmoid's exponent is the model's
            # (share), the exponentials are those of dfun's first stage too: ws[3] keeps them
            # (post() ignores s32 for this coupling)
            _sigmoid_pre(cp, s, ws[0], ws[3], cur[0], wk)
            for j in range(n):
                buf[j, slot] = cur[0, j]
            if slot < B:
                for j in range(n):
                    buf[j, slot + H] = cur[0, j]
        else:
            for j in range(n):
                # the buffer holds what TVB's would: float32-derived activity when asked
                if f32:
                    s32[j] = np.float64(np.float32(s[j])) if is_repl[j] else activity(model, x, j, True)
                else:
                    s32[j] = s[j]
                for ch in range(n_ch):
                    v = pre(cfun, cp, s32[j], ch)
                    buf[ch * n + j, slot] = v
                    cur[ch, j] = v
                    if slot < B:
                        buf[ch * n + j, slot + H] = v
        if kb == nb:
            # a new batch: the delayed sums of the next nb steps, from values all written
            # by this step (every delay >= B >= nb, or B = 1)
            nb = min(B, n_steps - k)
            for ch in range(n_ch):
                for i in range(n):
                    row = cb[ch, i]
                    for b in range(nb):
                        row[b] = 0.0
                    for e in range(indptr[i], indptr[i + 1]):
                        w = weights[e]
                        # steps g - d .. g - d + nb - 1 (all <= g: d >= nb, or nb = 1): one
                        # run of nb values, through the mirror where the ring wraps
                        base = slot - delays[e]
                        if base < 0:
                            base += H
                        src = buf[ch * n + cols[e], base:base + nb]
                        for b in range(nb):
                            row[b] += w * src[b]
            kb = 0
            ke = 0
        if kb == ke and sindptr[n] > 0:
            # a sub-batch: the shorter edges' sums of the next ns steps (delay >= B2 >= ns),
            # added to the batch's
            ns = min(B2, nb - kb)
            ke = kb + ns
            for ch in range(n_ch):
                for i in range(n):
                    row = cb[ch, i, kb:ke]
                    for e in range(sindptr[i], sindptr[i + 1]):
                        w = sweights[e]
                        base = slot - sdelays[e]
                        if base < 0:
                            base += H
                        src = buf[ch * n + scols[e], base:base + ns]
                        for b in range(ns):
                            row[b] += w * src[b]
        for i in range(n):
            g0 = cb[0, i, kb]
            g1 = cb[1, i, kb] if n_ch == 2 else 0.0
            for e in range(zindptr[i], zindptr[i + 1]):
                d = zdelays[e]
                if d == 0:
                    g0 += zweights[e] * cur[0, zcols[e]]
                    if n_ch == 2:
                        g1 += zweights[e] * cur[1, zcols[e]]
                else:
                    q = slot - d if slot >= d else slot - d + H
                    g0 += zweights[e] * buf[zcols[e], q]
                    if n_ch == 2:
                        g1 += zweights[e] * buf[n + zcols[e], q]
            c[i] = post(cfun, cp, g0, g1, s32[i], strength[i])
        kb += 1
        for v in range(n_sv):
            for i in range(n):
                out_x[k, v, i] = x[v, i]
        for i in range(n):
            out_s[k, i] = s[i]
            out_c[k, i] = c[i]
        for q in range(repl.shape[0]):
            for v in range(n_sv):
                keep[v, q] = x[v, repl[q]]
        uk = u[k]
        if integ == EULER_MARUYAMA or integ == HEUN_STOCHASTIC:
            # g(x) dW with g evaluated once, at the start of the step (as TVB)
            for v in range(n_sv):
                for i in range(n):
                    dn[v, i] = noise[k, v, i] * x[v, i] if mult else noise[k, v, i]
        if jr_heun:
            _jr_heun(x, c, uk, k1, tmp, aux, fast, ws, wk, share, dt, homogeneous)
        else:
            dfun(model, p, x, c, uk, k1, aux, fast, ws, wk, share)
        if out_r.shape[0] > 0:
            if model == JANSEN_RIT:
                for i in range(n):
                    out_r[k, i] = 1000.0 * aux[i]   # the first stage's 2 nu_max S(y1 - y2)
                nr = repl.shape[0]
                if nr > 0 and f32:
                    for q in range(nr):
                        out_r[k, repl[q]] = rate_hz(model, p, s[repl[q]], repl[q])
                elif nr > 0:
                    # a replaced region's rate from its given activity, computed as dfun's
                    for q in range(nr):
                        i = repl[q]
                        ws[0, q] = p[6, i] * (p[4, i] - s[i])
                    vexp(ws[0, :nr], ws[1, :nr], wk[:nr])
                    for q in range(nr):
                        out_r[k, repl[q]] = 1000.0 * (2.0 * p[5, repl[q]] / (1.0 + ws[1, q]))
            else:
                for i in range(n):
                    out_r[k, i] = rate_hz(model, p, s[i], i)
        if jr_heun:
            pass
        elif integ == EULER or integ == EULER_MARUYAMA:
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + dt * k1[v, i]
            if integ == EULER_MARUYAMA:
                for v in range(n_sv):
                    for i in range(n):
                        x[v, i] += dn[v, i]
        elif integ == HEUN or integ == HEUN_STOCHASTIC:
            # TVB's HeunDeterministic / HeunStochastic, operation for operation
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt * k1[v, i]
                    if integ == HEUN_STOCHASTIC:
                        tmp[v, i] += dn[v, i]
            if bounded:
                _bound(tmp, lo, hi)
            dfun(model, p, tmp, c, uk, k2, aux, fast, ws, wk, no_ea)
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + (k1[v, i] + k2[v, i]) * dt / 2.0
                    if integ == HEUN_STOCHASTIC:
                        x[v, i] += dn[v, i]
        else:  # RK4, as TVB's RungeKutta4thOrderDeterministic
            dt2 = dt / 2.0
            dt6 = dt / 6.0
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt2 * k1[v, i]
            if bounded:
                _bound(tmp, lo, hi)
            dfun(model, p, tmp, c, uk, k2, aux, fast, ws, wk, no_ea)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt2 * k2[v, i]
            if bounded:
                _bound(tmp, lo, hi)
            dfun(model, p, tmp, c, uk, k3, aux, fast, ws, wk, no_ea)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt * k3[v, i]
            if bounded:
                _bound(tmp, lo, hi)
            dfun(model, p, tmp, c, uk, k4, aux, fast, ws, wk, no_ea)
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + dt6 * (k1[v, i] + 2.0 * k2[v, i] + 2.0 * k3[v, i] + k4[v, i])
        if bounded:
            _bound(x, lo, hi)
        for q in range(repl.shape[0]):
            for v in range(n_sv):
                x[v, repl[q]] = keep[v, q]
