"""Adapters: translators on a coupling, run on the destination side.

Each declares what it consumes and produces (``signature``) so a chain that does not fit its
ports is rejected before the run. The translators between levels (rate -> Poisson spikes,
transfer functions, region <-> population maps) join here as modules of their own; wrappers
of external simulators (NEST, NEURON, TVB) too.
"""
from .affine import Affine
from .maps import ChannelMap
from .poisson import RateToGamma, RateToPoisson
from .rate_to_current import RateToCurrent
from .smoothing import SmoothedRate
from .spikes_to_current import SpikesToCurrent
from .spikes_to_rate import SpikesToRate
from .transfer import TransferFunction
# wrappers of external simulators: submodules (ps.adapters.neuron.NeuronCells, ...), which
# import without their simulator and name the extra to install when a spec is built
from . import nest, neuron, tvb  # noqa: E402

__all__ = ["Affine", "ChannelMap", "RateToCurrent", "RateToGamma", "RateToPoisson", "SmoothedRate",
           "SpikesToCurrent", "SpikesToRate", "TransferFunction"]
