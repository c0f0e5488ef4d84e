"""Level I: multicompartment cells (cable equation on branched morphologies, numba).

Morphologies are data (:mod:`.morphology`), mechanisms are data (:mod:`.mechanisms`), and a
:class:`CellPopulation` solves many placed cells at once (:mod:`.population`), with kernels in
``_kernels.py``.
"""
from .mechanisms import AMPA, GABAA, MECHANISMS, NMDA, AlphaSynapse, Distance, Exp2Syn, IClamp, Insert, Ions
from .morphology import Morphology, Section, ball_and_stick, cylinder, read_swc
from .population import CellPopulation, ball_and_stick_population, lambda_nseg, layout_cell
from .mixed import CellGroups

__all__ = ["AMPA", "GABAA", "MECHANISMS", "NMDA", "AlphaSynapse", "Distance", "CellGroups", "CellPopulation", "Exp2Syn", "IClamp", "Insert", "Ions", "Morphology", "Section",
           "ball_and_stick", "ball_and_stick_population", "cylinder", "lambda_nseg", "layout_cell",
           "read_swc"]
