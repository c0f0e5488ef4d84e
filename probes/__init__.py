"""Probes: measurements computed from the activity of one or more solvers.

Each probe has a local part, run in the process of each solver it draws from, and a global part
where the run file is written (a sum over solvers by default). The forward models of the
modalities (LFP, CSD, ECoG, EEG, MEG, VSDI, calcium, BOLD) join here as modules of their own.
"""
from .bold import BOLD
from .calcium import Calcium
from .extracellular import CSD, ECoG, LFP
from .head import EEG, MEG, CurrentDipole, FourSphere, HeadModel, InfiniteMedium
from .kernels import CurrentProxy, KernelCell, KernelMethod, KernelSynapse
from .linear_readout import LinearReadout
from .sources import RegionDipoles, SourceModel
from .vsdi import VSDI, VsdiSource

__all__ = ["BOLD", "CSD", "Calcium", "CurrentDipole", "ECoG", "EEG", "FourSphere", "HeadModel", "InfiniteMedium", "LFP", "MEG", "CurrentProxy", "KernelCell", "KernelMethod", "KernelSynapse", "LinearReadout", "RegionDipoles", "SourceModel", "VSDI", "VsdiSource"]
