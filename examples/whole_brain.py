"""A whole brain of 76 Jansen-Rit columns coupled through TVB's default connectome with delays.

Each region is TVB's JansenRit; regions drive each other through TVB's SigmoidalJansenRit
coupling with conduction delays from the tract lengths at 3 mm/ms (rounded to 0.1 ms steps),
Heun's scheme at dt 0.1 ms. The history before t = 0 is held at the initial state. Records
every region's pyramidal potential y1 - y2 (`activity`, mV) and firing rate (Hz) every 1 ms,
and two probes:

* `bold`: BOLD signal change (%) of every region every TR (2 s), the Balloon-Windkessel model
  (Stephan et al. 2007) driven by the region's firing rate: z = 0.02 /s per Hz x rate;
* `eeg`: 10 scalp electrodes every 1 ms, from one radial dipole per region at its centre whose
  moment is 1e6 nA um per mV of y1 - y2 (RegionDipoles), through a four-sphere head (brain,
  CSF, skull, scalp radii 85, 86, 91, 96 mm, as the standard 79-90 mm head plus 6 mm, so that
  every centre of TVB's connectome, up to 79.3 mm from their mean, lies in the brain sphere),
  centred on the mean of the region centres. EEG needs the centres: a connectome without them
  runs with -p eeg=False.

The connectome is not shipped: TVB's 76-region connectivity (tvb-data, GPL-3.0-or-later)
cannot be copied into this BSD-licensed repository. Get it with `pip install tvb-data`: the
example then finds tvb_data/connectivity/connectivity_76.zip by itself, or pass any connectome
file that polyscale.solvers.mass.load_connectome reads (TVB zip or folder, .npz, *weights*.npy):

    polyscale run examples/whole_brain.py --out brain.h5
    polyscale run examples/whole_brain.py -p connectome=/path/to/connectivity_76.zip -p t_stop_ms=2000
"""
from pathlib import Path

import numpy as np

import polyscale as ps
from polyscale.coordinator.errors import ConfigError
from polyscale.probes import BOLD, EEG, FourSphere, RegionDipoles
from polyscale.solvers.mass import JansenRit, RegionNetwork, SigmoidalJansenRit, load_connectome

# 10 scalp electrodes: a meridian at 0, 15, ..., 150 degrees from the vertex and two lateral
THETA_DEG = (0, 15, 30, 45, 60, 90, 120, 150, 90, 90)
PHI_DEG = (0, 0, 0, 0, 0, 0, 0, 0, 90, 270)
HEAD_RADII_UM = (85000.0, 86000.0, 91000.0, 96000.0)


def default_connectome() -> Path:
    try:
        import tvb_data
    except ImportError:
        raise ConfigError("whole_brain: no connectome given and tvb-data is not installed; "
                          "`pip install tvb-data` or pass -p connectome=PATH (a TVB zip or folder, "
                          ".npz, or *weights*.npy)") from None
    return Path(tvb_data.__file__).parent / "connectivity" / "connectivity_76.zip"


def build(connectome: str | None = None, t_stop_ms: float = 10000.0, speed_mm_per_ms: float = 3.0,
          coupling_strength: float = 1.0, seed: int = 0, eeg: bool = True, tr_ms: float = 2000.0) -> ps.Model:
    conn = load_connectome(connectome or default_connectome(), speed_mm_per_ms=speed_mm_per_ms)
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("brain", RegionNetwork(model=JansenRit(), connectome=conn,
                                        coupling=SigmoidalJansenRit(a=coupling_strength),
                                        integrator="heun", dt_ms=0.1))
    model.record("brain.activity", every_ms=1.0)
    model.record("brain.rate", every_ms=1.0)
    model.probe("bold", BOLD(inputs=("brain.rate",), efficacy=0.02, tr_ms=tr_ms))
    if eeg:
        centres = conn.centre_array()
        if centres is None:
            raise ConfigError("whole_brain: the EEG probe needs the regions' centres, and this connectome "
                              "has none; use one with centres or pass -p eeg=False")
        centre = centres.mean(axis=0) * 1000.0   # um
        theta, phi = np.radians(THETA_DEG), np.radians(PHI_DEG)
        unit = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
        model.probe("eeg", EEG(of=("brain",), electrodes_um=centre + HEAD_RADII_UM[3] * unit, every_ms=1.0,
                               head=FourSphere(radii_um=HEAD_RADII_UM, centre_um=tuple(centre)),
                               sources={"brain": RegionDipoles(gain_nA_um_per_mV=1e6,
                                                               head_centre_um=tuple(centre))}))
    return model
