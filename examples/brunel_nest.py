"""Brunel's network coupled to a small neural-mass brain, on polyscale's point solver or on NEST.

The network is examples/brunel.py's (Brunel 2000, NEST's brunel_delta_nest.py: iaf_psc_delta,
fixed in-degree 10%, J = 0.1 mV, g = 5, D = 1.5 ms, eta = 2) at ``scale`` (0.1: 1000 E and
250 I neurons). ``backend='polyscale'`` runs it as a PointNetwork; ``backend='nest'`` builds
the same network in NEST with :func:`nest_brunel` (its neuron parameters translated from the
very same polyscale spec, through ps.adapters.nest.NEST_NEURON) and runs it as a NestNetwork.
One config, two backends; the statistics agree (tests/test_adapter_nest.py).

The brain is ``n_regions`` Montbrio-Pazo-Roxin masses on a licence-free spherical connectome
(polyscale's RegionNetwork). The network's excitatory population rate (1 ms bins, in 1/ms)
drives region 0's input; region 0's firing rate (Hz) comes back as an extra Poisson drive of
weight J into the E population (``E.rate_in``), scaled by ``feedback_gain``. Both couplings
have a delay of ``delay_ms`` on either backend: NestNetwork takes its inputs ahead
(``input_lead_ms()``, 0.2 ms) so that they act in NEST exactly at the coupling delay (see
adapters/nest.py); the delay must cover the window plus that lead.

    polyscale run examples/brunel_nest.py -p backend=nest --out b.h5 --transport zmq
    polyscale run examples/brunel_nest.py --out b.h5                   # polyscale's solver
"""
import polyscale as ps
from polyscale.adapters import Affine, SpikesToRate
from polyscale.solvers.mass import MontbrioPazoRoxin, RegionNetwork, spherical_connectome
from polyscale.solvers.point import FixedIndegree, IafPscDelta, PointNetwork, Population, Projection

DT_MS = 0.1


def brunel_spec(scale: float = 0.1, g: float = 5.0, eta: float = 2.0) -> PointNetwork:
    """examples/brunel.py's network as a PointNetwork spec."""
    n_e, n_i = int(round(10000 * scale)), int(round(2500 * scale))
    c_e, c_i = int(0.1 * n_e), int(0.1 * n_i)
    j, delay, tau_m, theta = 0.1, 1.5, 20.0, 20.0
    nu_th = theta / (j * c_e * tau_m)
    p_rate_hz = 1000.0 * eta * nu_th * c_e
    neuron = IafPscDelta(tau_m_ms=tau_m, c_m_pF=1.0, e_l_mV=0.0, v_th_mV=theta, v_reset_mV=10.0,
                         t_ref_ms=2.0, v_init_mV=0.0)
    pops = tuple(Population(name=name, size=n, model=neuron, poisson_rate_hz=p_rate_hz,
                            poisson_weight=j) for name, n in (("E", n_e), ("I", n_i)))
    projs = tuple(Projection(source=src, target=tgt, rule=FixedIndegree(indegree=c), weight=w,
                             delay_ms=delay)
                  for src, c, w in (("E", c_e, j), ("I", c_i, -g * j)) for tgt in ("E", "I"))
    return PointNetwork(populations=pops, projections=projs, dt_ms=DT_MS)


def nest_brunel(spec: dict):
    """Build ``spec`` (a PointNetwork's to_dict(): iaf_psc_delta/iaf_psc_exp populations with a
    Poisson drive, FixedIndegree projections of constant weight and delay) in NEST.

    Runs inside NestNetwork's worker, after the kernel is reset; returns {name: NodeCollection}.
    """
    import nest

    from polyscale.adapters.nest import nest_neuron
    net = PointNetwork.from_dict(spec)
    pops = {}
    for p in net.populations:
        model, params = nest_neuron(p.model)
        if p.v_init_mV is not None:
            params["V_m"] = p.v_init_mV
        pops[p.name] = nest.Create(model, p.size, params=params)
        if p.poisson_rate_hz > 0:
            drive = nest.Create("poisson_generator", params={"rate": p.poisson_rate_hz})
            # NEST's example connects the drive with the network's delay; a Poisson train's
            # statistics do not depend on it
            nest.Connect(drive, pops[p.name], syn_spec={"weight": p.poisson_weight, "delay": 1.5})
    for pr in net.projections:
        if not isinstance(pr.rule, FixedIndegree):
            raise ValueError(f"nest_brunel: only FixedIndegree projections (got {pr.rule.type})")
        nest.Connect(pops[pr.source], pops[pr.target],
                     {"rule": "fixed_indegree", "indegree": pr.rule.indegree,
                      "allow_autapses": pr.allow_autapses, "allow_multapses": pr.allow_multapses},
                     {"weight": pr.weight, "delay": pr.delay_ms})
    return pops


def build(backend: str = "polyscale", scale: float = 0.1, t_stop_ms: float = 1000.0, seed: int = 12345,
          n_regions: int = 4, feedback_gain: float = 10.0, delay_ms: float = 2.0,
          couple: bool = True, record: bool = True, window_ms: float = 1.0) -> ps.Model:
    spec = brunel_spec(scale)
    # one window for both backends (NEST's shorter coupling delay would pick another)
    model = ps.Model(seed=seed, t_stop_ms=t_stop_ms, window_ms=window_ms)
    if backend == "polyscale":
        model.solver("net", spec)
        into_net = delay_ms
    elif backend == "nest":
        from polyscale.adapters.nest import NestNetwork
        nest_spec = NestNetwork(builder=f"{__file__}:nest_brunel", params={"spec": spec.to_dict()},
                                populations={p.name: p.size for p in spec.populations},
                                inputs=("E.rate_in",) if couple else (),
                                input_weights={"E": spec.populations[0].poisson_weight},
                                dt_ms=DT_MS)
        model.solver("net", nest_spec)
        into_net = delay_ms
    else:
        raise ps.ConfigError(f"brunel_nest: 'backend' must be 'polyscale' or 'nest' (got {backend!r})")
    if couple:
        model.solver("brain", RegionNetwork(model=MontbrioPazoRoxin(),
                                            connectome=spherical_connectome(n_regions),
                                            integrator="heun", dt_ms=DT_MS))
        model.couple("net.E.spikes", "brain.input[0]", delay_ms=delay_ms,
                     via=[SpikesToRate(bin_ms=1.0), Affine(gain=1e-3, units="", produces="analog")])
        model.couple("brain.rate[0]", "net.E.rate_in", delay_ms=into_net, weight=feedback_gain)
        if record:
            model.record("brain.rate", every_ms=1.0)
    if record:
        model.record("net.E.spikes")
        model.record("net.I.spikes")
    return model
