"""Coupling functions between regions, TVB's pre/post form: c_i = post(sum_j w_ij pre(s_j(t - d_ij))).

``s_j`` is region j's activity (see models.py; for Jansen-Rit y1 - y2 in mV). Only couplings
whose pre part depends on the source alone are here (that is what lets the ring buffer hold
pre values); TVB's Difference and Kuramoto (which need the target's state) are not.
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
