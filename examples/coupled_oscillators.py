"""Two damped 10 Hz oscillators coupled both ways with conduction delays, kicked by a spike train.

The best model the core can run today (the flagship multiscale column replaces it once the
level I-III solvers land). Each oscillator is x'' + 2 zeta w x' + w^2 x = u(t), integrated
exactly for inputs held over a step; oscillator 'left' drives 'right' through a 5 ms delay and
'right' feeds back onto 'left' through an 8 ms delay; a spike train (the 'kick') is turned into
a rate and scaled into 'left'. A linear readout stands in for a two-channel electrode.

    polyscale run examples/coupled_oscillators.py --out oscillators.h5
    polyscale run examples/coupled_oscillators.py -p coupling=0.002 -p t_stop_ms=2000
"""
import math

import polyscale as ps


def oscillator(freq_hz: float, zeta: float, dt_ms: float) -> ps.solvers.LinearSystem:
    w = 2 * math.pi * freq_hz / 1000.0  # rad/ms
    return ps.solvers.LinearSystem(
        a=[[0.0, 1.0], [-w * w, -2 * zeta * w]],   # state (x, dx/dt)
        b=[[0.0], [1.0]],                          # input drives the acceleration
        dt_ms=dt_ms, units="mV", input_units="")


def build(coupling: float = 0.001, t_stop_ms: float = 1000.0, seed: int = 1234) -> ps.Model:
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms)
    model.solver("left", oscillator(10.0, 0.05, dt_ms=0.1))
    model.solver("right", oscillator(12.0, 0.05, dt_ms=0.05))   # a finer step: multi-rate
    model.solver("kick", ps.solvers.SpikeTrain(times_ms=[50.0, 50.5, 51.0, 300.0], dt_ms=0.1))

    model.couple("left.x[0]", "right.u", delay_ms=5.0, weight=coupling)
    model.couple("right.x[0]", "left.u", delay_ms=8.0, weight=-coupling)
    model.couple("kick.spikes", "left.u", delay_ms=2.0,
                 via=[ps.adapters.SpikesToRate(bin_ms=1.0),
                      ps.adapters.Affine(gain=1e-4, units="")])

    model.record("left.x", every_ms=0.5)
    model.record("right.x[0]", every_ms=0.5)
    model.record("kick.spikes")
    model.probe("electrode", ps.probes.LinearReadout(
        weights={"left.x": [[1.0, 0.0], [0.5, 0.0]], "right.x": [[0.2, 0.0], [1.0, 0.0]]},
        units="mV", modality="analog", positions_um=[[0, 0, 0], [0, 0, 500]]))
    return model
