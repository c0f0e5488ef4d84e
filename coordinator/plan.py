"""The plan: a model checked as a whole and resolved into ticks, ports, links and the window.

:func:`make_plan` is a pure function of the model. Every process of a run (the coordinator, each
worker) computes the same plan from the same model data, so only the model travels. It collects
*every* problem it finds and raises them together in one :class:`ModelError`.

Window rule (DESIGN.md): the window W is a whole number of every solver's dt, not longer than
the shortest coupling delay (minus the source sample period for linearly interpolated
couplings), so that whatever a solver emits in a window arrives at its destinations in a later
window: the conservative scheme of MUSIC and NEST's min_delay, exact without rollback. A solver
that takes its inputs ahead (``SolverSpec.input_lead_ms()``, a lead L) needs every coupling into
it to have a delay of at least W + L.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ModelError
from .model import Endpoint, Model
from .signals import Port, SignalSpec
from .specs import AdapterContext, AdapterSpec, ProbeInfo, ProbeSpec, SolverSpec
from .time import DEFAULT_FREE_WINDOW_TICKS, fmt_ms, lcm, to_ticks


@dataclass(frozen=True, slots=True)
class SolverPlan:
    name: str
    spec: SolverSpec
    dt_ticks: int
    ports: Mapping[str, Port]
    lead_ticks: int = 0   # inputs are delivered over [t0 + lead, t1 + lead) (SolverSpec.input_lead_ms)


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """One coupling, resolved. ``source_channels``/``target_channels`` are explicit indices."""

    index: int
    name: str
    source: Endpoint
    target: Endpoint
    source_port: Port
    target_port: Port
    source_channels: tuple[int, ...]
    target_channels: tuple[int, ...]
    delay_ticks: int
    weight: float
    interpolation: str
    via: tuple[AdapterSpec, ...]
    stages: tuple[SignalSpec, ...]   # signal entering each adapter, then what leaves the last


@dataclass(frozen=True, slots=True)
class RecordingPlan:
    solver: str
    port: str
    kind: str
    units: str
    channels: tuple[int, ...]
    all_channels: bool
    every_ticks: int | None   # sampled: keep samples at ticks that are multiples of this
    group: str                 # run-file group: 'spikes/<solver>/<population>' or 'signals/<solver>/<port>'


@dataclass(frozen=True, slots=True)
class ProbePlan:
    name: str
    spec: ProbeSpec
    info: ProbeInfo
    solvers: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    model: Model
    seed: int
    t_stop_ticks: int
    window_ticks: int
    solvers: Mapping[str, SolverPlan]
    links: tuple[LinkPlan, ...]
    recordings: tuple[RecordingPlan, ...]
    probes: tuple[ProbePlan, ...]
    window_reason: str = ""
    _by_dst: dict = field(default_factory=dict, repr=False, compare=False)

    def windows(self, start: int = 0):
        """(t0, t1) tick pairs from ``start`` to the stop time; the last may be shorter."""
        t = start
        while t < self.t_stop_ticks:
            t1 = min(t + self.window_ticks, self.t_stop_ticks)
            yield t, t1
            t = t1

    def links_into(self, solver: str) -> tuple[LinkPlan, ...]:
        return tuple(lk for lk in self.links if lk.target.solver == solver)

    def links_from(self, solver: str) -> tuple[LinkPlan, ...]:
        return tuple(lk for lk in self.links if lk.source.solver == solver)

    def recordings_of(self, solver: str) -> tuple[RecordingPlan, ...]:
        return tuple(r for r in self.recordings if r.solver == solver)

    def probes_of(self, solver: str) -> tuple[ProbePlan, ...]:
        return tuple(p for p in self.probes if solver in p.solvers)

    def describe(self) -> str:
        """The plan as text, for ``polyscale check``."""
        out = [f"model: seed {self.seed}, t_stop {fmt_ms(self.t_stop_ticks)}, "
               f"window {fmt_ms(self.window_ticks)} ({self.window_reason}), "
               f"{-(-self.t_stop_ticks // self.window_ticks)} windows"]
        out.append(f"solvers ({len(self.solvers)}):")
        for s in self.solvers.values():
            level = f"level {s.spec.level}" if s.spec.level in ("I", "II", "III") else s.spec.level
            lead = f", inputs {fmt_ms(s.lead_ticks)} ahead" if s.lead_ticks else ""
            out.append(f"  {s.name}: {s.spec.type} ({level}), dt {fmt_ms(s.dt_ticks)}{lead}")
            for pname, p in s.ports.items():
                period = f", every {fmt_ms(p.period_ticks)}" if p.period_ticks else ""
                units = f" [{p.units}]" if p.units else ""
                out.append(f"    {p.direction:>3} {pname}: {p.kind} x{p.size}{units}{period}")
        out.append(f"couplings ({len(self.links)}):")
        for lk in self.links:
            chain = " -> ".join(a.type for a in lk.via)
            via = f" via {chain}" if chain else ""
            w = f", weight {lk.weight:g}" if lk.weight != 1.0 else ""
            interp = f", {lk.interpolation}" if lk.source_port.sampled else ""
            out.append(f"  {lk.name}: delay {fmt_ms(lk.delay_ticks)}{via}{w}{interp}")
        out.append(f"recordings ({len(self.recordings)}):")
        for r in self.recordings:
            ch = "all" if r.all_channels else f"{len(r.channels)}"
            every = f", every {fmt_ms(r.every_ticks)}" if r.every_ticks else ""
            out.append(f"  {r.solver}.{r.port} -> /{r.group} ({r.kind}, {ch} channels{every})")
        out.append(f"probes ({len(self.probes)}):")
        for p in self.probes:
            out.append(f"  {p.name}: {p.spec.type} ({p.info.modality}), {p.info.n_channels} channels "
                       f"[{p.info.units}] every {fmt_ms(p.info.period_ticks)} from {', '.join(p.solvers)}")
        return "\n".join(out)


class _AlreadyReported(Exception):
    """A part depends on a solver whose own problems are already in the list."""


def spike_population(port: str) -> str:
    """Run-file population name of a spike port: 'E.spikes' -> 'E'; 'spikes' -> 'spikes'."""
    return port[: -len(".spikes")] if port.endswith(".spikes") else port


def make_plan(model: Model) -> Plan:
    """Check the whole model and resolve it; raise one ModelError listing every problem."""
    problems: list[str] = []

    def guard(fn, *args):
        try:
            return fn(*args)
        except _AlreadyReported:
            return None
        except ModelError as exc:
            problems.extend(exc.problems or [str(exc)])
            return None

    model._check_header()
    t_stop = guard(to_ticks, model.t_stop_ms, "model: t_stop_ms")

    # solvers: dt and ports
    solvers: dict[str, SolverPlan] = {}
    if not model.solvers:
        problems.append("model has no solvers; add one with model.solver(name, spec)")
    for name, spec in model.solvers.items():
        dt = guard(to_ticks, getattr(spec, "dt_ms", None), f"solver {name!r} ({spec.type}): dt_ms")
        ports = guard(_ports_of, name, spec)
        if dt is None or ports is None:
            continue
        if dt <= 0:
            problems.append(f"solver {name!r} ({spec.type}): dt_ms must be > 0")
            continue
        lead = guard(_lead_of, name, spec, dt, ports)
        if lead is None:
            continue
        solvers[name] = SolverPlan(name, spec, dt, ports, lead)

    for name in model.placement:
        if name not in model.solvers:
            known = ", ".join(map(repr, model.solvers)) or "none"
            problems.append(f"placement: there is no solver {name!r} (solvers: {known})")

    # couplings, first pass: endpoints and delays (the window depends on these)
    resolved = []
    for i, c in enumerate(model.couplings):
        r = guard(_resolve_coupling, i, c, solvers, model.solvers)
        if r is not None:
            resolved.append(r)

    # the window: a whole number of every dt and of every sampled port's period
    dts = [s.dt_ticks for s in solvers.values()]
    periods = [p.period_ticks for s in solvers.values() for p in s.ports.values() if p.sampled]
    base = lcm(dts + periods)
    window, reason = None, ""
    if model.window_ms is not None:
        window = guard(to_ticks, model.window_ms, "model: window_ms")
        reason = "set by the model"
        if window is not None and window % base:
            problems.append(f"model: window_ms={model.window_ms:g} is not a whole number of every "
                            f"solver's dt ({_dt_list(solvers)}) and sample period; use a multiple "
                            f"of {fmt_ms(base)}")
            window = None
    elif resolved:
        which = min(resolved, key=_delay_limit)
        window = (_delay_limit(which) // base) * base
        reason = f"limited by coupling {which['coupling'].name}"
        if window <= 0:
            window = None
    else:
        window = max(base, (DEFAULT_FREE_WINDOW_TICKS // base) * base)
        if t_stop is not None and t_stop < window:
            window = max(base, (t_stop // base) * base)
        reason = "nothing coupled"

    if window is not None:
        for r in resolved:
            need = _delay_limit(r)
            if need < window:
                c = r["coupling"]
                extra = (f" plus the source period ({fmt_ms(r['src_port'].period_ticks)}) for linear "
                         f"interpolation") if c.interpolation == "linear" else ""
                if r["lead"]:
                    extra += (f" plus the input lead of solver {r['dst'].solver!r} "
                              f"({fmt_ms(r['lead'])}, its input_lead_ms(): it takes its inputs that "
                              f"much ahead)")
                problems.append(f"coupling {c.name}: delay_ms={c.delay_ms:g} is shorter than the window "
                                f"({fmt_ms(window)}){extra}; every delay must be at least one window, "
                                f"so that what is sent in one window arrives in a later one")
    else:
        for r in resolved:
            need = _delay_limit(r)
            if need < base:
                c = r["coupling"]
                lead = (f" once the input lead of solver {r['dst'].solver!r} ({fmt_ms(r['lead'])}, "
                        f"its input_lead_ms()) is taken off") if r["lead"] else ""
                problems.append(f"coupling {c.name}: delay_ms={c.delay_ms:g} is shorter than the "
                                f"shortest possible window, {fmt_ms(base)}{lead} (a whole number of every "
                                f"solver's dt and sample period; dt: {_dt_list(solvers)})")

    if t_stop is not None and solvers and t_stop % base:
        problems.append(f"model: t_stop_ms={model.t_stop_ms:g} is not a whole number of every "
                        f"solver's dt and sample period ({fmt_ms(base)})")

    # couplings, second pass: adapter chains (they may need the window), kinds, sizes, units
    links = []
    if window is not None:
        for r in resolved:
            lk = guard(_chain, r, window, len(links))
            if lk is not None:
                links.append(lk)

    recordings = []
    seen_rec = {}
    for rec in model.recordings:
        rp = guard(_resolve_recording, rec, solvers, model.solvers)
        if rp is None:
            continue
        key = (rp.solver, rp.port)
        if key in seen_rec:
            problems.append(f"recording {rec.target}: port {rp.solver}.{rp.port} is already recorded "
                            f"(by {seen_rec[key]!r}); record it once")
            continue
        seen_rec[key] = rec.target
        recordings.append(rp)

    probes = []
    if window is not None:
        for pname, pspec in model.probes.items():
            pp = guard(_resolve_probe, pname, pspec, solvers, model.solvers, window)
            if pp is not None:
                probes.append(pp)

    if problems:
        raise ModelError(problems=problems)
    return Plan(model=model, seed=model.seed, t_stop_ticks=t_stop, window_ticks=window,
                solvers=solvers, links=tuple(links), recordings=tuple(recordings),
                probes=tuple(probes), window_reason=reason)


def _dt_list(solvers: Mapping[str, SolverPlan]) -> str:
    return ", ".join(f"{s.name} {fmt_ms(s.dt_ticks)}" for s in solvers.values())


def _ports_of(name: str, spec: SolverSpec) -> Mapping[str, Port]:
    try:
        ports = spec.ports()
    except ModelError as exc:
        raise ModelError(f"solver {name!r} ({spec.type}): {exc}") from None
    if not isinstance(ports, Mapping) or not all(isinstance(p, Port) for p in ports.values()):
        raise ModelError(f"solver {name!r} ({spec.type}): ports() must return a dict of Port")
    return dict(ports)


def _lead_of(name: str, spec: SolverSpec, dt: int, ports: Mapping[str, Port]) -> int:
    """The solver's input lead in ticks: >= 0, a whole number of its dt and of the periods of
    its sampled input ports (so that the shifted windows stay on their grids)."""
    method = getattr(spec, "input_lead_ms", None)
    if method is None:
        return 0
    what = f"solver {name!r} ({spec.type}): input_lead_ms()"
    lead_ms = method()
    lead = to_ticks(lead_ms, what)
    if lead < 0:
        raise ModelError(f"{what}={lead_ms!r} ms must be >= 0")
    if lead % dt:
        raise ModelError(f"{what}={lead_ms!r} ms is not a whole number of the solver's dt "
                         f"({fmt_ms(dt)})")
    for pname, p in ports.items():
        if p.direction == "in" and p.sampled and lead % p.period_ticks:
            raise ModelError(f"{what}={lead_ms!r} ms is not a whole number of the sample period "
                             f"of input port {pname!r} ({fmt_ms(p.period_ticks)})")
    return lead


def _port_of(ep: Endpoint, direction: str, solvers, specs, what: str) -> Port:
    if ep.solver not in specs:
        known = ", ".join(map(repr, specs)) or "none"
        raise ModelError(f"{what}: there is no solver {ep.solver!r} (solvers: {known})")
    if ep.solver not in solvers:
        raise _AlreadyReported
    ports = solvers[ep.solver].ports
    p = ports.get(ep.port)
    have = [n for n, q in ports.items() if q.direction == direction]
    if p is None or p.direction != direction:
        listed = ", ".join(map(repr, have)) or "none"
        word = "input" if direction == "in" else "output"
        raise ModelError(f"{what}: solver {ep.solver!r} has no {word} port {ep.port!r} (has: {listed})")
    return p


def _resolve_coupling(i, c, solvers, specs) -> dict:
    what = f"coupling {c.name}"
    src = Endpoint.parse(c.source, "coupling source")
    dst = Endpoint.parse(c.target, "coupling target")
    errs = []
    sp = dp = None
    for ep, direction in ((src, "out"), (dst, "in")):
        try:
            p = _port_of(ep, direction, solvers, specs, what)
            if direction == "out":
                sp = p
            else:
                dp = p
        except ModelError as exc:
            errs.extend(exc.problems)
        except _AlreadyReported:
            errs.append("")
    delay = None
    try:
        delay = to_ticks(c.delay_ms, f"{what}: delay_ms")
    except ModelError as exc:
        errs.extend(exc.problems)
    if errs:
        if not any(errs):
            raise _AlreadyReported
        raise ModelError(problems=[e for e in errs if e])
    src_ch = src.resolve(sp.size, what)
    dst_ch = dst.resolve(dp.size, what)
    if c.interpolation == "linear" and not sp.sampled:
        raise ModelError(f"{what}: interpolation='linear' applies to sampled signals; the source "
                         f"{src.solver}.{src.port} carries spikes")
    return {"index": i, "coupling": c, "src": src, "dst": dst, "src_port": sp, "dst_port": dp,
            "src_ch": src_ch, "dst_ch": dst_ch, "delay": delay, "lead": solvers[dst.solver].lead_ticks}


def _delay_limit(r: dict) -> int:
    """The longest window the coupling allows: its delay, less the destination's input lead,
    less the source period for linear interpolation (which reads one sample further)."""
    if r["coupling"].interpolation == "linear":
        return r["delay"] - r["lead"] - r["src_port"].period_ticks
    return r["delay"] - r["lead"]


def _chain(r: dict, window: int, index: int) -> LinkPlan:
    c = r["coupling"]
    what = f"coupling {c.name}"
    sp, dp = r["src_port"], r["dst_port"]
    sig = SignalSpec(sp.kind, len(r["src_ch"]), sp.units, sp.period_ticks)
    if sig.period_ticks is not None:
        # sampled sources enter the chain on the destination's grid (or their own if it has none)
        sig = SignalSpec(sig.kind, sig.size, sig.units, dp.period_ticks or sig.period_ticks)
    stages = [sig]
    for k, a in enumerate(c.via):
        ctx = AdapterContext(coupling=c.name, window_ticks=window, target_period_ticks=dp.period_ticks)
        try:
            sig = a.signature(sig, ctx)
        except ModelError as exc:
            raise ModelError(f"{what}: adapter {k + 1} ({a.type}): {exc}") from None
        stages.append(sig)
    # a rate is one kind of analog signal: an analog input takes it (units are checked below)
    if sig.kind != dp.kind and not (sig.kind == "rate" and dp.kind == "analog"):
        hint = (" (add an adapter in via=[...] that turns one into the other, e.g. "
                "ps.adapters.SpikesToRate)") if (sig.kind == "spikes") != (dp.kind == "spikes") else ""
        arrives = "arrives as" if c.via else "carries"
        raise ModelError(f"{what}: the signal {arrives} {sig.kind!r} but the input port "
                         f"{r['dst'].solver}.{r['dst'].port} takes {dp.kind!r}{hint}")
    if sig.units and dp.units and sig.units != dp.units:
        raise ModelError(f"{what}: units differ: the signal is in {sig.units!r}, the input port "
                         f"{r['dst'].solver}.{r['dst'].port} takes {dp.units!r} (convert with "
                         f"ps.adapters.Affine(gain=..., units={dp.units!r}))")
    n, m = sig.size, len(r["dst_ch"])
    if not (n == m or n == 1 or m == 1):
        raise ModelError(f"{what}: {n} channel(s) arrive for {m} target channel(s); they must be "
                         f"equal, or one side must be a single channel (broadcast or sum)")
    if sig.period_ticks is not None and window % sig.period_ticks:
        raise ModelError(f"{what}: the chain produces samples every {fmt_ms(sig.period_ticks)}, "
                         f"which does not divide the window ({fmt_ms(window)})")
    # a destination with an input lead runs the chain over windows shifted by it: every stage's
    # samples must stay on their own grid
    for st in stages:
        if r["lead"] and st.period_ticks and r["lead"] % st.period_ticks:
            raise ModelError(f"{what}: the chain carries samples every {fmt_ms(st.period_ticks)}, "
                             f"which does not divide the input lead of solver {r['dst'].solver!r} "
                             f"({fmt_ms(r['lead'])}, its input_lead_ms()); use a period that does")
    return LinkPlan(index=index, name=c.name, source=r["src"], target=r["dst"], source_port=sp,
                    target_port=dp, source_channels=r["src_ch"], target_channels=r["dst_ch"],
                    delay_ticks=r["delay"], weight=c.weight, interpolation=c.interpolation,
                    via=c.via, stages=tuple(stages))


def _resolve_recording(rec, solvers, specs) -> RecordingPlan:
    what = f"recording {rec.target}"
    ep = Endpoint.parse(rec.target, "recording")
    p = _port_of(ep, "out", solvers, specs, what)
    channels = ep.resolve(p.size, what)
    every = None
    if rec.every_ms is not None:
        if not p.sampled:
            raise ModelError(f"{what}: every_ms applies to sampled ports; spikes are recorded in full")
        every = to_ticks(rec.every_ms, f"{what}: every_ms")
        if every % p.period_ticks:
            raise ModelError(f"{what}: every_ms={rec.every_ms:g} is not a multiple of the port's "
                             f"sample period ({fmt_ms(p.period_ticks)})")
    if p.kind == "spikes":
        group = f"spikes/{ep.solver}/{spike_population(ep.port)}"
    else:
        group = f"signals/{ep.solver}/{ep.port}"
    return RecordingPlan(solver=ep.solver, port=ep.port, kind=p.kind, units=p.units,
                         channels=channels, all_channels=ep.selection is None,
                         every_ticks=every, group=group)


def _resolve_probe(name, spec: ProbeSpec, solvers, specs, window) -> ProbePlan:
    what = f"probe {name!r} ({spec.type})"
    try:
        names = tuple(spec.solvers())
    except ModelError as exc:
        raise ModelError(f"{what}: {exc}") from None
    missing = [s for s in names if s not in specs]
    if missing:
        known = ", ".join(map(repr, specs)) or "none"
        raise ModelError(f"{what}: there is no solver {missing[0]!r} (solvers: {known})")
    if any(s not in solvers for s in names):
        raise _AlreadyReported
    try:
        info = spec.describe({s: solvers[s].ports for s in names}, window)
    except ModelError as exc:
        raise ModelError(f"{what}: {exc}") from None
    if not isinstance(info, ProbeInfo) or info.period_ticks < 1 or info.part_period < 1:
        raise ModelError(f"{what}: describe() must return a ProbeInfo with periods >= 1 tick")
    return ProbePlan(name=name, spec=spec, info=info, solvers=names)
