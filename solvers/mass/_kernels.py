"""numba kernels of the region-network solver: node models, couplings, integrators, delays.

State is ``x`` (n_sv, n_regions) float64, as TVB's (state variable, node) layout. Delayed
coupling keeps a ring buffer ``buf`` (2 * horizon, n_regions) of the coupling function's *pre*
values (they depend on the source region only), written once per step into rows g % horizon
and g % horizon + horizon; the coupling input of region i at step g is
``post(sum_e w_e buf[g % horizon + horizon - d_e, col_e])`` over the incoming edges e of i (CSR: ``indptr``, ``cols``, ``delays`` in steps, ``weights``). As in TVB, the
coupling and the external input are computed once per step and held over the integrator's
stages.
"""
import math

import numpy as np

from .._jit import njit

# Node models. The ids are the kernel's switch; models.py names them.
JANSEN_RIT, WILSON_COWAN, MONTBRIO, WONG_WANG, GENERIC_2D = 0, 1, 2, 3, 4
MODEL_IDS = {"jansen_rit": JANSEN_RIT, "wilson_cowan": WILSON_COWAN,
             "montbrio_pazo_roxin": MONTBRIO, "reduced_wong_wang": WONG_WANG,
             "generic_2d_oscillator": GENERIC_2D}
# Coupling functions.
LINEAR, SIGMOIDAL_JR = 0, 1
COUPLING_IDS = {"linear": LINEAR, "sigmoidal_jansen_rit": SIGMOIDAL_JR}
# Integrators.
EULER, HEUN, RK4, EULER_MARUYAMA, HEUN_STOCHASTIC = 0, 1, 2, 3, 4
INTEGRATOR_IDS = {"euler": EULER, "heun": HEUN, "rk4": RK4, "euler_maruyama": EULER_MARUYAMA,
                  "heun_stochastic": HEUN_STOCHASTIC}


@njit
def dfun(model, p, x, c, u, dx):
    """dx (n_sv, n) = f(x, c + u) for every region. p: the model's parameters (models.py order);
    c, u (n,): coupling and external input, entering where the model says."""
    n = x.shape[1]
    if model == JANSEN_RIT:
        A, B, a, b, v0, nu_max, r, J = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
        a_1, a_2, a_3, a_4, mu = p[8], p[9], p[10], p[11], p[12]
        for i in range(n):
            y0, y1, y2, y3, y4, y5 = x[0, i], x[1, i], x[2, i], x[3, i], x[4, i], x[5, i]
            # as TVB's _numba_dfun_jr, term for term
            sigm_y1_y2 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (y1 - y2))))
            sigm_y0_1 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_1 * J * y0))))
            sigm_y0_3 = 2.0 * nu_max / (1.0 + math.exp(r * (v0 - (a_3 * J * y0))))
            dx[0, i] = y3
            dx[1, i] = y4
            dx[2, i] = y5
            dx[3, i] = A * a * sigm_y1_y2 - 2.0 * a * y3 - a ** 2 * y0
            dx[4, i] = A * a * (mu + a_2 * J * sigm_y0_1 + c[i] + u[i]) - 2.0 * a * y4 - a ** 2 * y1
            dx[5, i] = B * b * (a_4 * J * sigm_y0_3) - 2.0 * b * y5 - b ** 2 * y2
    elif model == WILSON_COWAN:
        c_ee, c_ei, c_ie, c_ii, tau_e, tau_i = p[0], p[1], p[2], p[3], p[4], p[5]
        a_e, b_e, c_e, theta_e, a_i, b_i, c_i, theta_i = p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]
        r_e, r_i, k_e, k_i, P, Q, alpha_e, alpha_i = p[14], p[15], p[16], p[17], p[18], p[19], p[20], p[21]
        s0_e = 1.0 / (1.0 + math.exp(a_e * b_e))
        s0_i = 1.0 / (1.0 + math.exp(a_i * b_i))
        for i in range(n):
            E, I = x[0, i], x[1, i]
            x_e = alpha_e * (c_ee * E - c_ei * I + P - theta_e + c[i] + u[i])
            x_i = alpha_i * (c_ie * E - c_ii * I + Q - theta_i)
            s_e = c_e * (1.0 / (1.0 + math.exp(-a_e * (x_e - b_e))) - s0_e)
            s_i = c_i * (1.0 / (1.0 + math.exp(-a_i * (x_i - b_i))) - s0_i)
            dx[0, i] = (-E + (k_e - r_e * E) * s_e) / tau_e
            dx[1, i] = (-I + (k_i - r_i * I) * s_i) / tau_i
    elif model == MONTBRIO:
        tau, I0, Delta, J, eta, cr = p[0], p[1], p[2], p[3], p[4], p[5]
        for i in range(n):
            r, V = x[0, i], x[1, i]
            dx[0, i] = (Delta / (math.pi * tau) + 2.0 * V * r) / tau
            dx[1, i] = (V * V - math.pi ** 2 * tau ** 2 * r * r + eta + J * tau * r + I0
                        + cr * c[i] + u[i]) / tau
    elif model == WONG_WANG:
        a, b, d, gamma, tau_s, w, J_N, I_o = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
        for i in range(n):
            S = x[0, i]
            xx = w * J_N * S + I_o + J_N * (c[i] + u[i])
            y = a * xx - b
            H = y / (1.0 - math.exp(-d * y))
            dx[0, i] = -(S / tau_s) + (1.0 - S) * H * gamma
    else:  # GENERIC_2D
        tau, I0, a, b, cc, d, e, f, g = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
        alpha, beta, gamma = p[9], p[10], p[11]
        for i in range(n):
            V, W = x[0, i], x[1, i]
            dx[0, i] = d * tau * (alpha * W - f * V ** 3 + e * V ** 2 + g * V + gamma * I0
                                  + gamma * (c[i] + u[i]))
            dx[1, i] = d * (a + b * V + cc * V ** 2 - beta * W) / tau


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
def rate_hz(model, p, s):
    """Firing rate (Hz) from activity s, for the models that have one (models.py)."""
    if model == JANSEN_RIT:  # 1000 * 2 nu_max / (1 + exp(r (v0 - s)))
        return 1000.0 * (2.0 * p[5] / (1.0 + math.exp(p[6] * (p[4] - s))))
    if model == MONTBRIO:
        return 1000.0 * s
    return math.nan


@njit
def pre(cfun, cp, s):
    """The coupling function's per-source part of activity s."""
    if cfun == SIGMOIDAL_JR:  # cp = (cmin, cmax, midpoint, r, a)
        return cp[0] + (cp[1] - cp[0]) / (1.0 + math.exp(cp[3] * (cp[2] - s)))
    return s  # LINEAR: cp = (a, b)


@njit
def post(cfun, cp, g):
    if cfun == SIGMOIDAL_JR:
        return cp[4] * g
    return cp[0] * g + cp[1]


@njit
def fill_history(model, cfun, cp, x, buf, f32):
    """Every slot of the ring buffer = pre(activity(x)): a history held constant at x."""
    for j in range(x.shape[1]):
        v = pre(cfun, cp, activity(model, x, j, f32))
        for h in range(buf.shape[0]):
            buf[h, j] = v


@njit
def network_advance(model, p, integ, dt, x, buf, step0, indptr, cols, delays, weights, cfun, cp,
                    f32, u, noise, mult, repl, repl_val, out_x, out_s, out_c, out_r):
    """Advance x (n_sv, n) in place by u.shape[0] steps of dt (ms), from global step step0.

    f32: derive the buffered activity from float32 state, as TVB (see activity()).
    u (n_steps, n): external input, held over each step. noise (n_steps, n_sv, n): the additive
    increments sqrt(2 D dt) z of the stochastic integrators (unused otherwise); mult: multiply
    them by the state at the start of the step (TVB's Multiplicative noise with b(x) = x). repl (r,):
    replaced regions, whose activity is repl_val (n_steps, r) and whose state is not integrated.
    out_x (n_steps, n_sv, n), out_s (n_steps, n): state and activity at the start of each step;
    out_c (n_steps, n): the coupling input over each step; out_r (n_steps, n) the rate (Hz) at
    the start of each step, or (0, 0) for models without one.
    """
    n_sv, n = x.shape
    H = buf.shape[0] // 2
    c = np.zeros(n)
    s = np.empty(n)
    k1 = np.empty((n_sv, n))
    k2 = np.empty((n_sv, n))
    k3 = np.empty((n_sv, n))
    k4 = np.empty((n_sv, n))
    tmp = np.empty((n_sv, n))
    dn = np.empty((n_sv, n))
    keep = np.empty((n_sv, repl.shape[0]))
    for k in range(u.shape[0]):
        g = step0 + k
        slot = g % H
        for j in range(n):
            s[j] = activity(model, x, j, False)
        for q in range(repl.shape[0]):
            s[repl[q]] = repl_val[k, q]
        for j in range(n):
            # the buffer holds what TVB's would: float32-derived activity when asked
            sj = activity(model, x, j, True) if f32 else s[j]
            v = pre(cfun, cp, sj)
            buf[slot, j] = v
            buf[slot + H, j] = v
        if f32:
            for q in range(repl.shape[0]):
                v = pre(cfun, cp, np.float64(np.float32(repl_val[k, q])))
                buf[slot, repl[q]] = v
                buf[slot + H, repl[q]] = v
        for i in range(n):
            acc = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                # rows slot and slot + H hold the same values, so slot + H - d (delays < H)
                # needs neither a modulo nor a branch
                acc += weights[e] * buf[slot + H - delays[e], cols[e]]
            c[i] = post(cfun, cp, acc)
        for v in range(n_sv):
            for i in range(n):
                out_x[k, v, i] = x[v, i]
        for i in range(n):
            out_s[k, i] = s[i]
            out_c[k, i] = c[i]
        if out_r.shape[0] > 0:
            for i in range(n):
                out_r[k, i] = rate_hz(model, p, s[i])
        for q in range(repl.shape[0]):
            for v in range(n_sv):
                keep[v, q] = x[v, repl[q]]
        uk = u[k]
        if integ == EULER_MARUYAMA or integ == HEUN_STOCHASTIC:
            # g(x) dW with g evaluated once, at the start of the step (as TVB)
            for v in range(n_sv):
                for i in range(n):
                    dn[v, i] = noise[k, v, i] * x[v, i] if mult else noise[k, v, i]
        if integ == EULER or integ == EULER_MARUYAMA:
            dfun(model, p, x, c, uk, k1)
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + dt * k1[v, i]
            if integ == EULER_MARUYAMA:
                for v in range(n_sv):
                    for i in range(n):
                        x[v, i] += dn[v, i]
        elif integ == HEUN or integ == HEUN_STOCHASTIC:
            # TVB's HeunDeterministic / HeunStochastic, operation for operation
            dfun(model, p, x, c, uk, k1)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt * k1[v, i]
                    if integ == HEUN_STOCHASTIC:
                        tmp[v, i] += dn[v, i]
            dfun(model, p, tmp, c, uk, k2)
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + (k1[v, i] + k2[v, i]) * dt / 2.0
                    if integ == HEUN_STOCHASTIC:
                        x[v, i] += dn[v, i]
        else:  # RK4, as TVB's RungeKutta4thOrderDeterministic
            dt2 = dt / 2.0
            dt6 = dt / 6.0
            dfun(model, p, x, c, uk, k1)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt2 * k1[v, i]
            dfun(model, p, tmp, c, uk, k2)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt2 * k2[v, i]
            dfun(model, p, tmp, c, uk, k3)
            for v in range(n_sv):
                for i in range(n):
                    tmp[v, i] = x[v, i] + dt * k3[v, i]
            dfun(model, p, tmp, c, uk, k4)
            for v in range(n_sv):
                for i in range(n):
                    x[v, i] = x[v, i] + dt6 * (k1[v, i] + 2.0 * k2[v, i] + 2.0 * k3[v, i] + k4[v, i])
        for q in range(repl.shape[0]):
            for v in range(n_sv):
                x[v, repl[q]] = keep[v, q]
