"""The reference ball-and-stick cell under a current clamp (../shared/reference/cell).

Soma L = diam = 20 um, nseg 1, Hodgkin-Huxley (NEURON's hh at 6.3 C); dendrite L 500 um,
diam 2 um, nseg 101, passive (g 0.001 S/cm2, e -65 mV); Ra 100 ohm cm, cm 1 uF/cm2;
v_init -65 mV; backward Euler, dt 0.025 ms; IClamp 0.5 nA from 10 to 60 ms at soma(0.5).
Records the soma voltage as `cell.v_soma` every dt and the spikes (0 mV upward at the soma).
NEURON fires at 11.3288 and 25.0329 ms on this protocol (rates evaluated exactly).

    polyscale run examples/ball_and_stick.py --out ball_and_stick.h5
"""
import polyscale as ps
from polyscale.solvers.cell import IClamp, ball_and_stick_population


def build(amp_nA: float = 0.5, t_stop_ms: float = 100.0, seed: int = 1234) -> ps.Model:
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    clamp = IClamp(section="soma", x=0.5, delay_ms=10.0, dur_ms=50.0, amp_nA=amp_nA)
    model.solver("cell", ball_and_stick_population(n=1, dend_nseg=101, iclamps=[clamp], dt_ms=0.025))
    model.record("cell.v_soma")
    model.record("cell.spikes")
    return model


if __name__ == "__main__":
    run = ps.run(build())
    print("spikes (ms):", run.spikes("cell", "spikes").times)
