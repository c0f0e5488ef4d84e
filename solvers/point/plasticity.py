"""Spike-timing dependent plasticity of point-network projections: NEST's ``stdp_synapse``.

Pair-based STDP with all-to-all pair interaction (Song, Miller & Abbott 2000; Guetig et al.
2003 for the weight dependence), as NEST 3 implements it:

* every synapse keeps the presynaptic trace K+ (increment 1, time constant ``tau_plus_ms``) and
  the time of the last presynaptic spike; every postsynaptic neuron keeps its spike history
  with the trace K- (increment 1, time constant ``tau_minus_ms``) after each spike;
* the whole delay d is dendritic: a postsynaptic spike at t_post reaches the synapse at
  t_post + d; a presynaptic spike at t_pre is at the synapse at t_pre;
* weights change only when a presynaptic spike at t_pre is delivered (NEST's ``send``): first
  facilitation for every postsynaptic spike with t_last - d < t_post <= t_pre - d, in order,
  each by the K+ of the spikes before t_last decayed to t_post + d
  (w/Wmax + lambda (1 - w/Wmax)^mu_plus K+, capped at 1); then depression by the K- of the
  postsynaptic spikes strictly before t_pre - d (w/Wmax - alpha lambda (w/Wmax)^mu_minus K-,
  floored at 0); the new weight is the one this spike delivers (acting at t_pre + d);
* mu_plus = mu_minus = 0: additive STDP; 1: multiplicative. Weights stay in [0, Wmax].

So a weight read between two presynaptic spikes does not yet hold the postsynaptic spikes
since the last one, exactly as NEST's ``GetStatus`` of the connection.

Storage: the plastic projections live in a CSR of their own (by source), with float64 weights
(the weight changes by small steps, and float32 would round them off) and int64 target neuron
and delay steps: 24 bytes per synapse, plus K+ and the last spike time per source row, plus
``history`` postsynaptic spike times and traces per target neuron. Static projections keep
their float32 CSR and their kernel path unchanged. The kernels (stdp_pre_spike,
stdp_post_spike) are in _kernels.py, called by network_window for every emitted spike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...coordinator.validation import fail, require_int, require_number
from ...coordinator.specs import Spec

from ._kernels import ERR_HISTORY, N_STDP, S_ALPHA, S_LAMBDA, S_MU_MINUS, S_MU_PLUS, S_TAU_PLUS, S_WMAX


@dataclass(frozen=True, slots=True, kw_only=True)
class STDP(Spec):
    """Pair-based STDP of a projection, NEST's ``stdp_synapse`` (names and defaults as NEST's).

    tau_plus_ms : time constant (ms) of the presynaptic trace (facilitation window)
    tau_minus_ms : time constant (ms) of the postsynaptic trace (depression window); in NEST a
        parameter of the postsynaptic neuron, so every plastic projection onto one population
        must give the same value
    lambda_ : learning rate (NEST's ``lambda``)
    alpha : ratio of depression to facilitation
    mu_plus, mu_minus : weight dependence exponents of facilitation and depression
        (0: additive, 1: multiplicative)
    w_max : largest weight (the projection's weight units: mV onto delta synapses, pA onto
        current synapses, nS onto conductances); weights are kept in [0, w_max]
    history : postsynaptic spikes kept per target neuron; a presynaptic neuron silent while
        its targets fire more often than this makes the run fail with a message naming it
    """

    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    lambda_: float = 0.01
    alpha: float = 1.0
    mu_plus: float = 1.0
    mu_minus: float = 1.0
    w_max: float = 100.0
    history: int = 256

    def __post_init__(self) -> None:
        require_number(self, "tau_plus_ms", "tau_minus_ms", "w_max", positive=True)
        require_number(self, "lambda_", "alpha", "mu_plus", "mu_minus", nonnegative=True)
        require_int(self, "history", minimum=1)

    def row(self) -> np.ndarray:
        """The kernel's parameter row (N_STDP,)."""
        r = np.zeros(N_STDP)
        r[S_TAU_PLUS] = self.tau_plus_ms
        r[S_LAMBDA] = self.lambda_
        r[S_ALPHA] = self.alpha
        r[S_MU_PLUS] = self.mu_plus
        r[S_MU_MINUS] = self.mu_minus
        r[S_WMAX] = self.w_max
        return r


def check_weights(spec: STDP, w: np.ndarray, where: str) -> None:
    """Raise naming the projection unless every weight lies in [0, w_max]."""
    if w.size and (w.min() < 0 or w.max() > spec.w_max):
        raise fail(spec, f"{where}: STDP needs excitatory weights in [0, w_max={spec.w_max}] "
                         f"(got weights in [{w.min():g}, {w.max():g}])")


def empty_plastic(n: int, n_pops: int):
    """The kernel's plastic tuple for a network without plastic projections."""
    z = np.zeros(0, np.int64)
    return (np.zeros(n, np.int64), np.zeros(n_pops + 1, np.int64), z, np.zeros((0, N_STDP)), z,
            np.zeros(1, np.int64), z, np.zeros(0), z, np.zeros(0), z, np.full(n, -1, np.int64),
            np.zeros((0, 1), np.int64), np.zeros((0, 1)), z, np.zeros(0), z, np.zeros(1, np.int64), 0.1, z,
            np.zeros(0))
