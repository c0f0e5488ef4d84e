"""Level III: neural masses on a connectome (whole-brain networks, validated against TVB) and
neural fields on a 2D sheet."""
from .connectome import Connectome, load_connectome, spherical_connectome
from .coupling import CouplingFunction, Linear, SigmoidalJansenRit
from .field import NeuralField
from .models import (Generic2dOscillator, JansenRit, MontbrioPazoRoxin, NodeModel, ReducedWongWang,
                     WilsonCowan)
from .network import RegionNetwork

__all__ = ["Connectome", "CouplingFunction", "Generic2dOscillator", "JansenRit", "Linear",
           "MontbrioPazoRoxin", "NeuralField", "NodeModel", "ReducedWongWang", "RegionNetwork",
           "SigmoidalJansenRit", "WilsonCowan", "load_connectome", "spherical_connectome"]
