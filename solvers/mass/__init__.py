"""Level III: neural masses on a connectome (whole-brain networks, validated against TVB) and
neural fields on a 2D sheet."""
from .connectome import Connectome, load_connectome, spherical_connectome
from .coupling import CouplingFunction, Difference, Kuramoto as KuramotoCoupling, Linear, SigmoidalJansenRit
from .field import NeuralField
from .models import (Generic2dOscillator, JansenRit, Kuramoto, MontbrioPazoRoxin, NodeModel, ReducedWongWang,
                     WilsonCowan, ZerlautAdaptationFirstOrder, ZerlautAdaptationSecondOrder)
from .network import RegionNetwork

__all__ = ["Connectome", "CouplingFunction", "Difference", "Generic2dOscillator", "JansenRit", "Kuramoto",
           "KuramotoCoupling", "Linear", "MontbrioPazoRoxin", "NeuralField", "NodeModel", "ReducedWongWang",
           "RegionNetwork", "SigmoidalJansenRit", "WilsonCowan", "ZerlautAdaptationFirstOrder",
           "ZerlautAdaptationSecondOrder", "load_connectome", "spherical_connectome"]
