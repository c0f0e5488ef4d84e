"""Coupling functions between regions, TVB's pre/post form: c_i = post(sum_j w_ij pre(s_j(t - d_ij))).

``s_j`` is region j's activity (see models.py; for Jansen-Rit y1 - y2 in mV). The ring buffer
holds per-source values only, so a coupling that needs the target's current activity s_i
(TVB's Difference and Kuramoto) is split into source-only sums that post() combines with s_i:
sum_j w_ij (s_j - s_i) = sum_j w_ij s_j - s_i sum_j w_ij, and sum_j w_ij sin(s_j - s_i) =
cos s_i sum_j w_ij sin s_j - sin s_i sum_j w_ij cos s_j. This differs from TVB's direct form
only by rounding (a few ulp of the sums).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...coordinator.specs import SpecFamily
from ...coordinator.validation import require_number
from ._kernels import COUPLING_IDS


class CouplingFunction(SpecFamily):
    """Base of the coupling functions; ``type`` picks one on the wire."""

    __slots__ = ()
    params: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = 'coupling function'
    _kinds: ClassVar[dict[str, type]] = {}


    def __post_init__(self) -> None:
        require_number(self, *self.params)


    @property
    def coupling_id(self) -> int:
        return int(COUPLING_IDS[self.type])

    def param_array(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in self.params], dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Linear(CouplingFunction):
    """c_i = a sum_j w_ij s_j(t - d_ij) + b (TVB's ``Linear``; a is the global coupling strength)."""

    type: ClassVar[str] = "linear"
    params: ClassVar[tuple[str, ...]] = ("a", "b")
    a: float = 1.0
    b: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SigmoidalJansenRit(CouplingFunction):
    """TVB's ``SigmoidalJansenRit``, with its defaults:

    pre(s) = cmin + (cmax - cmin) / (1 + exp(r (midpoint - s)))   (1/ms; s = y1 - y2 in mV)
    c_i = a sum_j w_ij pre(s_j(t - d_ij))                          (a: global coupling strength)
    """

    type: ClassVar[str] = "sigmoidal_jansen_rit"
    params: ClassVar[tuple[str, ...]] = ("cmin", "cmax", "midpoint", "r", "a")
    cmin: float = 0.0
    cmax: float = 2.0 * 0.0025   # 1/ms
    midpoint: float = 6.0        # mV
    r: float = 0.56              # 1/mV
    a: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference(CouplingFunction):
    """c_i = a sum_j w_ij (s_j(t - d_ij) - s_i(t)) (TVB's ``Difference``, default a = 0.1), with
    s_i the target's current activity."""

    type: ClassVar[str] = "difference"
    params: ClassVar[tuple[str, ...]] = ("a",)
    a: float = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class Kuramoto(CouplingFunction):
    """c_i = a sum_j w_ij sin(s_j(t - d_ij) - s_i(t)) (TVB's ``Kuramoto``, default a = 1; s in
    rad). TVB's post divides by gx.shape[0], the number of coupling variables (1 here), not by
    the number of regions: so does this (scale a yourself for a 1/N normalisation)."""

    type: ClassVar[str] = "kuramoto"
    params: ClassVar[tuple[str, ...]] = ("a",)
    a: float = 1.0
