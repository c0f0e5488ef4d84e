"""Level II: point-neuron networks (NEST's models, exact integration, numba kernels)."""
from .connectivity import (AllToAll, Distribution, Explicit, FixedIndegree, FixedOutdegree, FixedTotalNumber, Lorentzian, Normal,
                           OneToOne, PairwiseBernoulli, Rule, Uniform)
from .models import QIF, AeifCondExp, AeifPscExp, IafCondExp, IafPscDelta, IafPscExp, Izhikevich, NeuronModel
from .network import PointNetwork, Population, Projection
from .plasticity import STDP

__all__ = ["AeifCondExp", "AeifPscExp", "AllToAll", "IafCondExp", "Distribution", "Explicit", "FixedIndegree", "FixedOutdegree", "FixedTotalNumber", "IafPscDelta",
           "IafPscExp", "Izhikevich", "Lorentzian", "NeuronModel", "Normal", "QIF", "OneToOne", "PairwiseBernoulli",
           "PointNetwork", "Population", "Projection", "Rule", "STDP", "Uniform"]
