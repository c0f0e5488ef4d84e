"""Built-in solvers. Each is a spec class; ``spec.build(ctx)`` makes the live solver.

Generic building blocks live here now; the level I (cells), II (point neurons) and III (neural
masses) solvers join as modules of their own.
"""
from .cell import CellGroups, CellPopulation
from .linear import LinearSystem
from .mass import RegionNetwork
from .point import PointNetwork
from .relay import SpikeRelay
from .stimulus import SpikeTrain

__all__ = ["CellGroups", "CellPopulation", "LinearSystem", "PointNetwork", "RegionNetwork", "SpikeRelay", "SpikeTrain"]
