"""A whole brain of 76 Jansen-Rit columns coupled through TVB's default connectome with delays.

Each region is TVB's JansenRit; regions drive each other through TVB's SigmoidalJansenRit
coupling with conduction delays from the tract lengths at 3 mm/ms (rounded to 0.1 ms steps),
Heun's scheme at dt 0.1 ms. The history before t = 0 is held at the initial state. Records
every region's pyramidal potential y1 - y2 (`activity`, mV) and firing rate (Hz) every 1 ms.
(BOLD and EEG probes join once the probes exist.)

The connectome is not shipped: TVB's 76-region connectivity (tvb-data, GPL-3.0-or-later)
cannot be copied into this BSD-licensed repository. Get it with `pip install tvb-data`: the
example then finds tvb_data/connectivity/connectivity_76.zip by itself, or pass any connectome
file that polyscale.solvers.mass.load_connectome reads (TVB zip or folder, .npz, *weights*.npy):

    polyscale run examples/whole_brain.py --out brain.h5
    polyscale run examples/whole_brain.py -p connectome=/path/to/connectivity_76.zip -p t_stop_ms=2000
"""
from pathlib import Path

import polyscale as ps
from polyscale.coordinator.errors import ConfigError
from polyscale.solvers.mass import JansenRit, RegionNetwork, SigmoidalJansenRit, load_connectome


def default_connectome() -> Path:
    try:
        import tvb_data
    except ImportError:
        raise ConfigError("whole_brain: no connectome given and tvb-data is not installed; "
                          "`pip install tvb-data` or pass -p connectome=PATH (a TVB zip or folder, "
                          ".npz, or *weights*.npy)") from None
    return Path(tvb_data.__file__).parent / "connectivity" / "connectivity_76.zip"


def build(connectome: str | None = None, t_stop_ms: float = 10000.0, speed_mm_per_ms: float = 3.0,
          coupling_strength: float = 1.0, seed: int = 0) -> ps.Model:
    conn = load_connectome(connectome or default_connectome(), speed_mm_per_ms=speed_mm_per_ms)
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("brain", RegionNetwork(model=JansenRit(), connectome=conn,
                                        coupling=SigmoidalJansenRit(a=coupling_strength),
                                        integrator="heun", dt_ms=0.1))
    model.record("brain.activity", every_ms=1.0)
    model.record("brain.rate", every_ms=1.0)
    return model
