"""NEST (nest-simulator) as a polyscale solver: a user's NEST network, built by the user's own
code inside the worker process, advanced window by window, with ports like PointNetwork's.

The spec is data. ``builder`` names a callable ('package.module:function' or
'path/to/file.py:function'); in the worker, after ``nest.ResetKernel()`` and setting the
resolution (``dt_ms``), the threads and ``rng_seed`` (from the solver's generator), it is called
as ``function(**params)`` and returns ``{population name: NodeCollection}``. The sizes must equal
the spec's ``populations`` (declared so that the ports are known before anything runs).

Time. NEST's resolution is ``dt_ms``; polyscale's windows are whole numbers of it by
construction. The kernel is prepared once (``nest.Prepare()``), advanced by ``nest.Run(window)``
and cleaned up at close. Spikes are recorded only for the populations whose ``P.spikes``
something reads (a coupling, a recording, a probe: ``SolverContext.consumed``), to a file that
each window reads from where the last stopped; now and then a Cleanup and Prepare start the file
anew (or, with NEST's memory backend, empty the recorder: NEST allows nothing else), which leaves
the dynamics bitwise unchanged (tested). NEST stamps a spike at the end of the step in which the threshold is
crossed; a spike stamped t1 (the end of a window) is handed out with the next window, whose
start it is (PointNetwork does the same), so every output spike lies in [t0, t1) and lies on
NEST's grid exactly. NEST's own min_delay needs no agreement with the window: NEST runs any
multiple of its resolution. A window that is a multiple of min_delay gives the same spikes,
bitwise, whatever the window; one that splits NEST's min_delay slices changes the order in which
NEST's Poisson generators draw, so the spikes differ, though not their statistics. A coupling
into NEST needs a delay of at least one window plus the input lead (below).

Inputs, exactly at their arrival time. NEST's devices cannot act on the step that is already
under way when a window starts, and their connections have a delay of at least one step, so
NestNetwork declares an input lead (``input_lead_ms() = dt_ms + input_delay_ms``, 0.2 ms by
default): the coordinator hands its window [t0, t1) the inputs that arrive in
[t0 + lead, t1 + lead), and every coupling into it needs a delay of at least one window plus
the lead (the plan says so). The devices are then scheduled early enough that each input acts
when it is due, as a NEST connection of the coupling's delay would make it act:

* ``P.spikes_in``: a spike arriving at tick A (emission + coupling delay) is emitted by a
  ``spike_generator`` (one per neuron, one to one) at ``A - input_delay_ms`` and reaches the
  neuron at A: the PSP (or the PSC's onset) shows in V_m at A, as for a NEST spike at the
  emission time through a connection of the coupling's delay. An arrival off NEST's grid
  acts at the next grid time (NEST rounds off-grid spike times up), as in PointNetwork; an
  arrival on the grid shows one step earlier than in PointNetwork, which applies it over the
  step that starts at A (so on V at A + dt). The coupling's weight is
  the NEST synaptic weight (``spike_weights``: mV onto iaf_psc_delta, pA onto current-based
  synapses); spikes due in the same step onto one neuron are one event of the summed weight.
* ``P.rate_in``: rate (Hz), one value shared by the population, every dt: the rate of one
  ``inhomogeneous_poisson_generator`` connected to every neuron of P (NEST draws independent
  trains per target), events of weight ``input_weights[P]``. The sample at t is the rate over
  the step [t, t + dt), and its events act at t + dt, as PointNetwork's ``rate_in`` does;
  negative rates are taken as 0 Hz.
* ``P.current_in``: current (pA), one value for the population, every dt: a
  ``step_current_generator``'s amplitude; the sample at t is the current over the step
  [t, t + dt) (as if ``I_e`` were set at t).

Inputs due before the lead (t < lead) are never handed over; nothing arrives there, since
every delay is longer than the lead (an adapter's constant offset would be lost there).

The devices, and their connections, exist only for the input ports listed in ``inputs`` (a
connection of one step's delay lowers NEST's min_delay, and so makes it exchange more often).

Process-global state: NEST's kernel is one per process, so one NestNetwork per process; a
second one in the same process (e.g. ``--transport inproc``) is a ModelError that says to run
with ``--transport zmq`` (one process per solver).

Needs ``pip install 'polyscale[nest]'``; this module imports without NEST.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ..coordinator.errors import ModelError
from ..coordinator.signals import Port, Spikes, WindowResult
from ..coordinator.specs import SolverContext, SolverSpec
from ..coordinator.time import TICKS_PER_MS, to_ticks
from ..coordinator.validation import fail, require_int, require_number
from ..solvers._jit import njit
from ._external import Translation, check_target, claim_process, load_target, release_process, require_extra

EXTRA = "nest"
#: decimals of the spike file's offsets (ms): one per decade of ticks per ms, so that the
#: digits of an offset, read as an integer, are its ticks
OFFSET_DIGITS = len(str(TICKS_PER_MS)) - 1
assert 10 ** OFFSET_DIGITS == TICKS_PER_MS
INPUT_KINDS = ("spikes_in", "rate_in", "current_in")
#: where the spike files go when the machine has it: a RAM file system, where each Run's write
#: of its spikes costs less than on a disk's (Brunel at scale 0.1, 2 ms windows, NEST's CPU
#: over the memory backend's, 4 rounds in one process: +5.1% on /dev/shm, +7.5% on this VM's /tmp)
FAST_TMP = "/dev/shm"


def spike_file_folder() -> str | None:
    """The folder for NEST's spike files: FAST_TMP where it is a writable folder with room for
    four files of NestNetworkSolver.MAX_FILE_BYTES (a container's /dev/shm may hold only 64 MB),
    else None (tempfile's default)."""
    try:
        st = os.statvfs(FAST_TMP)
    except (OSError, AttributeError):
        return None
    roomy = st.f_bavail * st.f_frsize >= 4 * NestNetworkSolver.MAX_FILE_BYTES
    return FAST_TMP if roomy and os.access(FAST_TMP, os.W_OK | os.X_OK) else None

#: polyscale's point-neuron parameter names (solvers/point/models.py) -> NEST's, with the factor
#: from polyscale's unit to NEST's. NEST wants pA, pF, mV, ms, nS; polyscale's point models use
#: the same units, so every factor is 1 and only the names differ. The rows in other units say
#: so once, as data (nA, nF, uS to NEST's pA, pF, nS).
NEST_NEURON = Translation(
    "nest neuron parameters",
    ("tau_m_ms", "tau_m", 1.0),
    ("c_m_pF", "C_m", 1.0),
    ("e_l_mV", "E_L", 1.0),
    ("v_th_mV", "V_th", 1.0),
    ("v_reset_mV", "V_reset", 1.0),
    ("t_ref_ms", "t_ref", 1.0),
    ("i_e_pA", "I_e", 1.0),
    ("v_init_mV", "V_m", 1.0),
    ("tau_syn_ex_ms", "tau_syn_ex", 1.0),
    ("tau_syn_in_ms", "tau_syn_in", 1.0),
    ("g_l_nS", "g_L", 1.0),
    ("e_ex_mV", "E_ex", 1.0),
    ("e_in_mV", "E_in", 1.0),
    # adaptive exponential (aeif_cond_exp, aeif_psc_exp)
    ("delta_t_mV", "Delta_T", 1.0),
    ("v_peak_mV", "V_peak", 1.0),
    ("a_nS", "a", 1.0),
    ("b_pA", "b", 1.0),
    ("tau_w_ms", "tau_w", 1.0),
    ("w_init_pA", "w", 1.0),
)

#: polyscale's Izhikevich model -> NEST's ``izhikevich`` (a, b, d dimensionless; I in pA as is)
NEST_IZHIKEVICH = Translation(
    "nest izhikevich parameters",
    ("a", "a", 1.0),
    ("b", "b", 1.0),
    ("c_mV", "c", 1.0),
    ("d", "d", 1.0),
    ("v_th_mV", "V_th", 1.0),
    ("i_e_pA", "I_e", 1.0),
    ("v_init_mV", "V_m", 1.0),
    ("u_init", "U_m", 1.0),
)

#: other units into NEST's: factor that multiplies a value in the first unit
NEST_UNITS = Translation(
    "nest units",
    ("i_nA", "I_pA", 1e3),      # NEST wants pA
    ("c_nF", "C_pF", 1e3),      # NEST wants pF
    ("g_uS", "g_nS", 1e3),      # NEST wants nS
    ("t_s", "t_ms", 1e3),       # NEST wants ms
    ("v_V", "v_mV", 1e3),       # NEST wants mV
    ("rate_Hz", "rate_Hz", 1.0),   # NEST's generators take Hz
)

#: polyscale point-model type -> NEST model name (the same equations, NEST's names and defaults)
NEST_MODELS = {"iaf_psc_delta": "iaf_psc_delta", "iaf_psc_exp": "iaf_psc_exp",
               "iaf_cond_exp": "iaf_cond_exp", "aeif_cond_exp": "aeif_cond_exp",
               "aeif_psc_exp": "aeif_psc_exp", "izhikevich": "izhikevich"}

#: the translation table of each polyscale point-model type
NEST_TABLES = {t: NEST_IZHIKEVICH if t == "izhikevich" else NEST_NEURON for t in NEST_MODELS}

#: polyscale fields that NEST's model has no parameter for: ``substep_ms`` is polyscale's RK4
#: substep (NEST integrates these models with adaptive RKF45); aeif_psc_exp's current synapses
#: have no reversal potentials (polyscale's class inherits E_ex, E_in unused)
NEST_NOT_PASSED = {"iaf_cond_exp": ("substep_ms",), "aeif_cond_exp": ("substep_ms",),
                   "aeif_psc_exp": ("substep_ms", "e_ex_mV", "e_in_mV")}

#: NEST parameters set to make NEST's model the one polyscale's implements
NEST_FIXED = {"izhikevich": {"consistent_integration": True}}


def nest_neuron(model) -> tuple[str, dict[str, Any]]:
    """(NEST model name, NEST parameters) of a polyscale point-model spec (solvers/point/models.py:
    every type in :data:`NEST_MODELS`), through its table in :data:`NEST_TABLES`; for build
    callables that make the same neurons as PointNetwork. Every field of the spec is passed
    (a field with no row is an error) except those in :data:`NEST_NOT_PASSED`. ``v_init_mV=None``
    gives the model's own initial V (E_L; -65 mV for izhikevich), ``u_init=None`` gives
    U_m = b V_m (NEST's default)."""
    name = NEST_MODELS.get(getattr(model, "type", None))
    if name is None:
        raise ModelError(f"nest_neuron: model {getattr(model, 'type', model)!r} has no NEST "
                         f"translation (have: {', '.join(map(repr, NEST_MODELS))})")
    skip = NEST_NOT_PASSED.get(model.type, ())
    values = {f.name: getattr(model, f.name) for f in fields(model) if f.name not in skip}
    values["v_init_mV"] = model.v0()
    if model.type == "izhikevich":
        values["u_init"] = model.u0(values["v_init_mV"])
    params = NEST_TABLES[model.type].to_external(values)
    params.update(NEST_FIXED.get(model.type, {}))
    return name, params


def _status_setter(nest):
    """``set(nodes, params)``: params (a dict for every node, or a list of one dict per node)
    straight to NEST's kernel. NodeCollection.set first gets the whole status of the first
    node (a recorder's: all its events) to look for list-valued parameters; these sets hold
    none that need it. NEST < 3.10 has no such entry: NodeCollection.set then."""
    try:
        from nest import nestkernel_api
        raw = nestkernel_api.llapi_set_nc_status
    except (ImportError, AttributeError):
        return lambda nodes, params: nodes.set(params)
    return lambda nodes, params: raw(nodes._datum, [params] if isinstance(params, dict) else params)


def _events_reader(recorder):
    """``read()``: the recorder's events {'times': ms, 'senders': node ids}, straight from NEST's
    kernel (NodeCollection.get adds its Python on top); NodeCollection.get before NEST 3.10."""
    try:
        from nest import nestkernel_api
        raw, datum = nestkernel_api.llapi_get_nc_status, recorder._datum
    except (ImportError, AttributeError):
        return lambda: recorder.get("events")
    return lambda: raw(datum, "events")


def import_nest():
    """The nest module, quiet, or ModelError naming the extra to install."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    nest = require_extra("nest", EXTRA, "nest_network")
    try:
        nest.verbosity = nest.VerbosityLevel.ERROR
    except AttributeError:    # NEST < 3.9
        nest.set_verbosity("M_ERROR")
    return nest


@dataclass(frozen=True, slots=True, kw_only=True)
class NestNetwork(SolverSpec):
    """A NEST network built by a user's callable, under polyscale.

    Parameters
    ----------
    builder : 'package.module:function' or 'path/to/file.py:function'; called in the worker as
        ``function(**params)`` after the kernel is reset and set up, returns
        ``{population: NodeCollection}``
    params : keyword arguments of ``builder`` (plain data)
    populations : {population: size}, the sizes ``builder`` creates (checked)
    inputs : input ports to create, e.g. ('E.spikes_in', 'E.rate_in', 'I.current_in')
    input_weights : {population: weight} of each ``rate_in`` Poisson event (NEST units: mV
        onto delta synapses, pA onto current-based ones); default 1.0
    input_delay_ms : NEST delay (ms) of the input devices' connections (default: dt_ms)
    dt_ms : NEST's resolution (ms)
    threads : NEST's local_num_threads

    Ports (for every population P)
    -----
    P.spikes : out, spikes (size,), channel = position in P's NodeCollection
    P.spikes_in, P.rate_in (1,) Hz, P.current_in (1,) pA : in, only those listed in
        ``inputs``; taken ``input_lead_ms()`` ahead, acting at arrival (module docstring)
    """

    type: ClassVar[str] = "nest_network"
    level: ClassVar[str] = "II"

    builder: str
    populations: dict
    params: dict = field(default_factory=dict)
    inputs: tuple = ()
    input_weights: dict = field(default_factory=dict)
    input_delay_ms: float | None = None
    dt_ms: float = 0.1
    threads: int = 1

    def __post_init__(self) -> None:
        check_target(self.builder, "nest_network: 'builder'")
        if not isinstance(self.params, dict) or not all(isinstance(k, str) for k in self.params):
            raise fail(self, f"'params' must be a dict with string keys (got {self.params!r})")
        if (not isinstance(self.populations, dict) or not self.populations
                or not all(isinstance(k, str) and k and "." not in k for k in self.populations)):
            raise fail(self, f"'populations' must be a non-empty dict {{name: size}} with names "
                             f"without '.' (got {self.populations!r})")
        for name, size in self.populations.items():
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise fail(self, f"population {name!r}: size must be an integer >= 1 (got {size!r})")
        require_number(self, "dt_ms", positive=True)
        require_number(self, "input_delay_ms", positive=True, allow_none=True)
        require_int(self, "threads", minimum=1)
        inputs = tuple(self.inputs) if isinstance(self.inputs, (list, tuple)) else None
        if inputs is None:
            raise fail(self, f"'inputs' must be a sequence of port names (got {self.inputs!r})")
        object.__setattr__(self, "inputs", inputs)
        allowed = [f"{p}.{k}" for p in self.populations for k in INPUT_KINDS]
        for name in inputs:
            if name not in allowed:
                raise fail(self, f"'inputs': {name!r} is not an input port (allowed: "
                                 f"{', '.join(allowed)})")
        if len(set(inputs)) != len(inputs):
            raise fail(self, f"'inputs' lists a port twice ({inputs!r})")
        if not isinstance(self.input_weights, dict):
            raise fail(self, f"'input_weights' must be a dict {{population: weight}} "
                             f"(got {self.input_weights!r})")
        for name, w in self.input_weights.items():
            if name not in self.populations:
                raise fail(self, f"'input_weights': {name!r} is not a population (have: "
                                 f"{', '.join(self.populations)})")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w):
                raise fail(self, f"'input_weights'[{name!r}] must be a finite number (got {w!r})")
        dt = to_ticks(self.dt_ms, "nest_network: dt_ms")
        if self.input_delay_ms is not None:
            d = to_ticks(self.input_delay_ms, "nest_network: input_delay_ms")
            if d % dt:
                raise fail(self, f"'input_delay_ms'={self.input_delay_ms} must be a whole number of "
                                 f"dt_ms={self.dt_ms} (NEST's resolution)")

    @classmethod
    def example(cls) -> "NestNetwork":
        return cls(builder="my_models.nest:brunel", params={"scale": 0.1},
                   populations={"E": 1000, "I": 250}, inputs=("E.rate_in",),
                   input_weights={"E": 0.1})

    def input_lead_ms(self) -> float:
        """How far ahead (ms) NEST takes its inputs: one step (its devices cannot act on the step
        under way) plus the devices' connection delay; see the module docstring."""
        return self.dt_ms + (self.dt_ms if self.input_delay_ms is None else self.input_delay_ms)

    def ports(self) -> dict[str, Port]:
        dt = to_ticks(self.dt_ms, "nest_network: dt_ms")
        out: dict[str, Port] = {}
        lat = "acts at arrival"
        for p, n in self.populations.items():
            out[f"{p}.spikes"] = Port("spikes", "out", int(n), "", None, f"spikes of NEST population {p}")
            if f"{p}.spikes_in" in self.inputs:
                out[f"{p}.spikes_in"] = Port("spikes", "in", int(n), "", None,
                                             f"spikes onto {p} one to one, NEST weight; {lat}")
            if f"{p}.rate_in" in self.inputs:
                out[f"{p}.rate_in"] = Port("rate", "in", 1, "Hz", dt,
                                           f"Poisson rate into every neuron of {p}; {lat}")
            if f"{p}.current_in" in self.inputs:
                out[f"{p}.current_in"] = Port("analog", "in", 1, "pA", dt,
                                              f"current into every neuron of {p}; {lat}")
        return out

    def build(self, ctx: SolverContext) -> "NestNetworkSolver":
        return NestNetworkSolver(self, ctx)


class NestNetworkSolver:
    """The live NEST network (see the module docstring). One per process."""

    # Spikes come from one spike recorder of the populations whose spikes something reads
    # (``ctx.consumed``; none: no recorder, no reads). It writes to a file (NEST's ascii
    # backend: sender, step, offset per line, flushed at the end of every Run), and each window
    # reads only the bytes added since the last: no status read of NEST (whose first one after a
    # Run costs ~0.1 ms whatever it asks, see below) and nothing to empty. The file is kept below
    # MAX_FILE_BYTES by a Cleanup, delete, Prepare (rare: 64 MiB is ~4 million spikes). The file
    # lives in a temporary folder (on FAST_TMP where there is one), named by the recorder's
    # label; a builder that set NEST's data_path or data_prefix (which would be put before it)
    # keeps the memory backend, read as follows.
    #
    # The memory backend's recorder is read every window and returns every event it holds (~0.12 us
    # each, NEST 3.10: any get() of a recorder builds its whole status, events included, so
    # even n_events costs that); emptying it needs Cleanup + n_events = 0 + Prepare (NEST
    # refuses n_events = 0 inside Prepare/Cleanup, nest-simulator issue #3728): c_p ~0.1 ms at
    # 1,250 neurons, ~0.5 ms at 6,250 (Prepare grows with the network). Emptying once it holds E
    # events costs per window c_e E / 2 + c_p s / E (s: events per window), least at
    # E = sqrt(2 (c_p / c_e) s). c_p is measured (CPU) as the run goes (PREPARE_OVER_EVENT c_e until
    # it was), c_e is EVENT_READ_S (measured: the first read after a Run also costs ~0.08 ms
    # whatever the recorder holds, so timing reads would overstate c_e), s is the running
    # mean. (That first-read cost is NEST's: the first status read of any node after a Run
    # pays it, an idle recorder's too, and no cheaper kernel call before it takes it over.) Timing only moves the emptying, which leaves the dynamics bitwise unchanged (tested).
    EVENT_READ_S = 0.2e-6
    PREPARE_OVER_EVENT = 1e3
    MIN_HELD_EVENTS = 100
    MAX_HELD_EVENTS: int | None = None      # fixed threshold (tests); None: adaptive
    MAX_FILE_BYTES = 64 << 20               # the spike file's size that makes it start anew

    def __init__(self, spec: NestNetwork, ctx: SolverContext):
        self.spec = spec
        self.name = ctx.name
        self.nest = nest = import_nest()
        claim_process("NEST", ctx.name)
        self._claimed = True
        self._prepared = False
        self._files: list = []
        self._tmpdir = None
        try:
            self._setup(spec, ctx, nest)
        except BaseException:
            self.close()
            raise

    def _setup(self, spec: NestNetwork, ctx: SolverContext, nest) -> None:
        self.dt_ticks = to_ticks(spec.dt_ms, "nest_network: dt_ms")
        seed = int(ctx.rng.integers(1, 2**31 - 1))
        nest.ResetKernel()
        nest.SetKernelStatus({"resolution": spec.dt_ms, "local_num_threads": spec.threads,
                              "rng_seed": seed})
        fn = load_target(spec.builder, f"nest_network {ctx.name!r}: 'builder'")
        pops = fn(**spec.params)
        status = nest.GetKernelStatus()
        if (abs(status["resolution"] - spec.dt_ms) > 1e-12 or status["rng_seed"] != seed
                or status["local_num_threads"] != spec.threads):
            raise ModelError(f"nest_network {ctx.name!r}: {spec.builder!r} changed the kernel "
                             f"(resolution {status['resolution']} ms, threads "
                             f"{status['local_num_threads']}, or reset it); set dt_ms and threads "
                             f"in the spec and leave ResetKernel/SetKernelStatus to polyscale")
        if not isinstance(pops, dict):
            raise ModelError(f"nest_network {ctx.name!r}: {spec.builder!r} must return a dict "
                             f"{{population: NodeCollection}} (got {type(pops).__name__})")
        if sorted(pops) != sorted(spec.populations):
            raise ModelError(f"nest_network {ctx.name!r}: {spec.builder!r} returned populations "
                             f"{sorted(pops)} but the spec declares {sorted(spec.populations)}")
        for p, n in spec.populations.items():
            if len(pops[p]) != n:
                raise ModelError(f"nest_network {ctx.name!r}: population {p!r} has {len(pops[p])} "
                                 f"neurons in NEST but populations[{p!r}]={n} in the spec")
        self.pops = pops
        d_in = spec.dt_ms if spec.input_delay_ms is None else spec.input_delay_ms
        self.names = list(spec.populations)
        # one recorder for the populations whose spikes something reads (every read of a NEST
        # device costs ~0.2 ms); the others' ports stay empty (ctx.consumed: nothing reads them)
        read = [i for i, p in enumerate(self.names) if ctx.consumed is None or f"{p}.spikes" in ctx.consumed]
        self.recorder = None
        if read:
            self.recorder = nest.Create("spike_recorder", params=self._recorder_params(nest))
        gids, pop_of, pos = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for i, p in enumerate(self.names):
            if i in read:
                nest.Connect(pops[p], self.recorder)
            g = np.asarray(pops[p].tolist(), np.int64)
            gids.append(g)
            pop_of.append(np.full(len(g), i, np.int64))
            pos.append(np.arange(len(g), dtype=np.int64))
        gids = np.concatenate(gids)
        order = np.argsort(gids, kind="stable")
        gids, pop_of, pos = gids[order], np.concatenate(pop_of)[order], np.concatenate(pos)[order]
        if len(gids) > 1 and (np.diff(gids) == 0).any():
            dup = int(gids[1:][np.diff(gids) == 0][0])
            raise ModelError(f"nest_network {ctx.name!r}: node {dup} is in two populations returned by "
                             f"{spec.builder!r}; populations must not overlap")
        # node id - gid_base -> (population, position): one lookup per recorded spike
        self.gid_base = int(gids[0])
        self.n_pops = len(self.names)
        self.lut = np.full((2, int(gids[-1]) - self.gid_base + 1), -1, np.int64)
        self.lut[0, gids - self.gid_base], self.lut[1, gids - self.gid_base] = pop_of, pos
        self.spike_gens, self.rate_gens, self.current_gens = {}, {}, {}
        for p in self.names:
            if f"{p}.spikes_in" in spec.inputs:
                gens = nest.Create("spike_generator", len(pops[p]), params={"allow_offgrid_times": True})
                nest.Connect(gens, pops[p], "one_to_one", {"weight": 1.0, "delay": d_in})
                self.spike_gens[p] = gens
            if f"{p}.rate_in" in spec.inputs:
                gen = nest.Create("inhomogeneous_poisson_generator")
                nest.Connect(gen, pops[p], "all_to_all",
                             {"weight": float(spec.input_weights.get(p, 1.0)), "delay": d_in})
                self.rate_gens[p] = gen
            if f"{p}.current_in" in spec.inputs:
                gen = nest.Create("step_current_generator")
                nest.Connect(gen, pops[p], "all_to_all", {"delay": d_in})
                self.current_gens[p] = gen
        self.t = 0
        self.d_in_ticks = to_ticks(d_in, "nest_network: input_delay_ms")
        self.lead_ticks = self.dt_ticks + self.d_in_ticks
        # spikes due to fire after this window (an off-grid arrival in its last step); the rate
        # for the first step of the next window (from the last sample of this one)
        self.spike_carry = {p: (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
                            for p in self.spike_gens}
        self.rate_carry = {p: 0.0 for p in self.rate_gens}
        self._steps = np.zeros(0, np.int64)     # dt, 2 dt, ... (ticks) over a window
        self.seen = 0
        self._n_windows = 0
        self._n_events = 0
        self._empty_s = 0.0
        self._n_empty = 0
        self._set_status = _status_setter(nest)
        # spikes NEST stamped at or after the window's end (ticks, population, position): the
        # next window's
        self.pending = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._out_names = [f"{p}.spikes" for p in self.names]
        self._read_events = None if self.recorder is None else _events_reader(self.recorder)
        self._file_bytes = 0
        nest.Prepare()
        self._prepared = True
        self._open_files()

    def _recorder_params(self, nest) -> dict:
        """The spike recorder's parameters: NEST's ascii backend writing to a temporary folder
        (the class comment), or {} (memory) where the builder set a data_path or data_prefix."""
        if tuple(nest.GetKernelStatus(["data_path", "data_prefix"])) != ("", ""):
            if self.spec.threads > 1:
                # (NEST's memory backend then gives each thread's events in turn, so the
                # new ones are not those after the last read)
                raise ModelError(f"nest_network {self.name!r}: with threads={self.spec.threads} the "
                                 f"spikes are read from NEST's spike files, which needs NEST's "
                                 f"data_path and data_prefix left unset; {self.spec.builder!r} set "
                                 f"them: leave them to NEST's defaults, or use threads=1")
            return {}
        self._tmpdir = tempfile.mkdtemp(prefix="polyscale-nest-", dir=spike_file_folder())
        # offsets (ms, precise-timing models) in fixed notation with a digit per tick decade
        return {"record_to": "ascii", "time_in_steps": True, "precision": OFFSET_DIGITS,
                "label": os.path.join(self._tmpdir, "spikes")}

    def _open_files(self) -> None:
        """Open the recorder's files (one per NEST thread; written from Prepare on)."""
        if self._tmpdir is not None:
            # one file per thread, '<label>-<node id>-<thread>.dat' (the recorder's
            # 'filenames' names only one of them), in thread order
            names = sorted(os.listdir(self._tmpdir), key=lambda n: int(n.rsplit("-", 1)[1].split(".")[0]))
            if len(names) != self.spec.threads:
                raise ModelError(f"nest_network {self.name!r}: expected {self.spec.threads} spike "
                                 f"files from NEST's recorder, found {names} in {self._tmpdir}")
            self._files = [open(os.path.join(self._tmpdir, n), "rb") for n in names]   # noqa: SIM115
            self._file_bytes = 0

    def _close_files(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

    def _read_new(self, t1: int) -> tuple:
        """The recorder's events since the last window, after the pending ones, split by
        population (:func:`_split_spikes`'s result)."""
        if self._files:
            # the first Python after nest.Run pays for a cold cache (~0.1 ms under load), so
            # this path is short: one read per file, one numba call that parses and splits
            data = self._files[0].read() if len(self._files) == 1 else b"".join(f.read() for f in self._files)
            self._file_bytes += len(data)
            out = _parse_split(np.frombuffer(data, np.uint8), self.dt_ticks, self.lut, self.gid_base,
                               self.n_pops, t1, *self.pending)
            if self._file_bytes > self.MAX_FILE_BYTES:
                # start the file anew (Cleanup closes it; Prepare opens a new one)
                self.nest.Cleanup()
                self._close_files()
                for n in os.listdir(self._tmpdir):
                    os.remove(os.path.join(self._tmpdir, n))
                self.nest.Prepare()
                self._open_files()
            return out
        # the memory backend: every event held, the new ones from self.seen on
        ev = self._read_events()
        # (an empty recorder gives float senders)
        times = np.asarray(ev["times"], np.float64)[self.seen:]
        senders = np.asarray(ev["senders"], np.int64)[self.seen:]
        self.seen += len(times)
        self._n_events += len(times)
        self._empty_memory()
        return _split_spikes(np.rint(times * TICKS_PER_MS).astype(np.int64), senders, self.lut,
                             self.gid_base, self.n_pops, t1, *self.pending)

    # -- the Solver protocol -------------------------------------------------------------------
    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        nest = self.nest
        if t0 != self.t:
            raise ModelError(f"nest_network {self.name!r}: window starts at tick {t0}, NEST is at {self.t}")
        dt, d_in = self.dt_ticks, self.d_in_ticks
        # The inputs cover [t0 + lead, t1 + lead) (lead = dt + d_in). A device value for NEST
        # time R (R > t0: NEST will not act on the step under way) is used in the step ending
        # at R and reaches the neurons d_in later; the generators' lists are replaced each window.
        if self.rate_gens or self.current_gens:
            n = (t1 - t0) // dt
            if len(self._steps) != n:
                self._steps = dt * np.arange(1, n + 1)
            # ms of t0 + dt ... t1, one list for every generator of the window
            times = ((t0 + self._steps) / TICKS_PER_MS).tolist()
        for p in self.spike_gens:
            s = inputs.get(f"{p}.spikes_in")
            self._inject_spikes(p, s, t1)
        for p, gen in self.rate_gens.items():
            r = inputs[f"{p}.rate_in"]
            # sample at t: events over [t, t + dt) act at t + dt, so R = t + dt - d_in; here
            # R = t0 + 2 dt ... t1 + dt, and R = t0 + dt came with the last window
            values = np.maximum(r.data[:, 0], 0.0).tolist()
            self._set_status(gen, {"rate_times": times,
                                   "rate_values": [self.rate_carry[p]] + values[:-1]})
            self.rate_carry[p] = values[-1]
        for p, gen in self.current_gens.items():
            c = inputs[f"{p}.current_in"]
            # sample at t: the current over [t, t + dt), so R = t - d_in = t0 + dt ... t1
            self._set_status(gen, {"amplitude_times": times,
                                   "amplitude_values": c.data[:, 0].tolist()})
        nest.Run((t1 - t0) / TICKS_PER_MS)
        self.t = t1
        self._n_windows += 1
        if self.recorder is None:     # nothing reads any spikes
            empty = np.zeros(0, np.int64)
            return WindowResult(outputs={port: Spikes(empty, empty) for port in self._out_names})
        ticks, ids, offsets, *self.pending = self._read_new(t1)
        outputs = {port: Spikes(ticks[offsets[i]:offsets[i + 1]], ids[offsets[i]:offsets[i + 1]])
                   for i, port in enumerate(self._out_names)}
        return WindowResult(outputs=outputs)

    def _empty_memory(self) -> None:
        """Empty the memory backend's recorder when it holds enough events (class comment)."""
        nest = self.nest
        limit = self.MAX_HELD_EVENTS
        if limit is None:
            per_window = self._n_events / self._n_windows
            ratio = self.PREPARE_OVER_EVENT
            if self._n_empty:
                ratio = self._empty_s / self._n_empty / self.EVENT_READ_S
            limit = max(self.MIN_HELD_EVENTS, (2.0 * ratio * per_window) ** 0.5)
        if self.seen > limit:
            clock = time.process_time()     # CPU: a loaded machine's waits are not the cost
            nest.Cleanup()
            # straight to the kernel: NodeCollection.set first gets the whole status (events)
            self._set_status(self.recorder, {"n_events": 0})
            self.seen = 0
            nest.Prepare()
            self._empty_s += time.process_time() - clock
            self._n_empty += 1

    def _inject_spikes(self, p: str, s: Spikes | None, t1: int) -> None:
        """Spike generator j fires at ``ceil(A / dt) dt - d_in`` for each arrival tick A, so
        that the spike reaches neuron j at A (or at the next grid time after an off-grid A);
        firings after ``t1`` (off-grid arrivals in the last step) wait for the next window."""
        dt = self.dt_ticks
        cf, ci, cw = self.spike_carry[p]
        if s is not None and len(s):
            fire = -(-np.asarray(s.ticks, np.int64) // dt) * dt - self.d_in_ticks
            w = np.ones(len(s)) if s.weights is None else np.asarray(s.weights, np.float64)
            fire = np.concatenate([cf, fire])
            ids = np.concatenate([ci, np.asarray(s.ids, np.int64)])
            w = np.concatenate([cw, w])
        elif len(cf):
            fire, ids, w = cf, ci, cw
        else:
            return
        later = fire > t1
        self.spike_carry[p] = (fire[later], ids[later], w[later])
        fire, ids, w = fire[~later], ids[~later], w[~later]
        if not len(fire):
            return
        order = np.lexsort((fire, ids))
        ids, fire, w = ids[order], fire[order], w[order]
        cut = np.flatnonzero(np.diff(ids)) + 1
        starts = np.concatenate([[0], cut])
        stops = np.concatenate([cut, [len(ids)]])
        gens = self.spike_gens[p]
        targets = ids[starts]
        values = []
        for a, b in zip(starts, stops):
            # the same step twice: one event of the summed weight (NEST needs increasing times)
            f, inv = np.unique(fire[a:b], return_inverse=True)
            ww = np.bincount(inv, weights=w[a:b])
            values.append({"spike_times": (f / TICKS_PER_MS).tolist(), "spike_weights": ww.tolist()})
        self._set_status(gens[targets.tolist()], values)

    def state(self) -> dict[str, np.ndarray]:
        return {"t_ticks": np.array(self.t)}

    def close(self) -> None:
        if self._prepared:
            self._prepared = False
            try:
                self.nest.Cleanup()
            except Exception:   # noqa: BLE001 (the kernel may already be torn down at exit)
                pass
        self._close_files()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if self._claimed:
            self._claimed = False
            release_process("NEST", self.name)


@njit
def _parse_events(buf, dt_ticks):
    """(ticks, node ids) of the lines ``sender<TAB>step<TAB>offset`` of NEST's ascii spike
    file (``buf``: uint8, whole lines; lines not starting with a digit, the header, are
    skipped): tick = step * dt_ticks - offset, the offset (ms) written with OFFSET_DIGITS
    decimals, so its digits are its ticks."""
    n = 0
    for c in buf:
        if c == 10:
            n += 1
    ticks = np.empty(n, np.int64)
    senders = np.empty(n, np.int64)
    m = 0
    i = 0
    end = len(buf)
    while i < end:
        if buf[i] < 48 or buf[i] > 57:      # a header line
            while i < end and buf[i] != 10:
                i += 1
            i += 1
            continue
        sender = step = offset = 0
        f = 0
        while i < end and buf[i] != 10:
            c = np.int64(buf[i])
            if c == 9:
                f += 1
            elif 48 <= c <= 57:
                if f == 0:
                    sender = sender * 10 + c - 48
                elif f == 1:
                    step = step * 10 + c - 48
                else:
                    offset = offset * 10 + c - 48
            i += 1
        i += 1
        senders[m] = sender
        ticks[m] = step * dt_ticks - offset
        m += 1
    return ticks[:m], senders[:m]


@njit
def _parse_split(buf, dt_ticks, lut, base, n_pops, t1, pend_ticks, pend_pop, pend_ids):
    """:func:`_split_spikes` of the events :func:`_parse_events` reads from ``buf``."""
    ticks, senders = _parse_events(buf, dt_ticks)
    return _split_spikes(ticks, senders, lut, base, n_pops, t1, pend_ticks, pend_pop, pend_ids)


@njit
def _split_spikes(new_ticks, senders, lut, base, n_pops, t1, pend_ticks, pend_pop, pend_ids):
    """One window's spikes from the recorder's new events (ticks, senders as NEST node ids;
    ``lut[:, id - base]`` their population and position) after the pending ones:
    (ticks, positions, offsets, *pending), the spikes before tick ``t1`` grouped by population
    (population i < n_pops in ``offsets[i]:offsets[i + 1]``), each group in time order (stable),
    and the rest (ticks >= t1: NEST stamps (t0, t1]) as ticks, populations, positions."""
    n_p = len(pend_ticks)
    n = n_p + len(new_ticks)
    tk = np.empty(n, np.int64)
    pp = np.empty(n, np.int64)
    ix = np.empty(n, np.int64)
    for j in range(n_p):            # loops, not slice assignments: no shape check to compile
        tk[j], pp[j], ix[j] = pend_ticks[j], pend_pop[j], pend_ids[j]
    for j in range(len(new_ticks)):
        k = senders[j] - base
        o = n_p + j
        tk[o] = new_ticks[j]
        pp[o] = lut[0, k]
        ix[o] = lut[1, k]
    counts = np.zeros(n_pops + 1, np.int64)
    n_later = 0
    for j in range(n):
        if tk[j] < t1:
            counts[pp[j] + 1] += 1
        else:
            n_later += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    out_t = np.empty(offsets[-1], np.int64)
    out_i = np.empty(offsets[-1], np.int64)
    later_t = np.empty(n_later, np.int64)
    later_p = np.empty(n_later, np.int64)
    later_i = np.empty(n_later, np.int64)
    m = 0
    for j in range(n):
        if tk[j] < t1:
            q = fill[pp[j]]
            out_t[q], out_i[q] = tk[j], ix[j]
            fill[pp[j]] += 1
        else:
            later_t[m], later_p[m], later_i[m] = tk[j], pp[j], ix[j]
            m += 1
    for i in range(n_pops):
        a, b = offsets[i], offsets[i + 1]
        ordered = True
        for q in range(a + 1, b):
            if out_t[q] < out_t[q - 1]:
                ordered = False
                break
        if not ordered:
            _sort_by_tick(out_t[a:b], out_i[a:b])
    return out_t, out_i, offsets, later_t, later_p, later_i


@njit
def _sort_by_tick(t, i):
    """Sort the ticks t (int64) in place, stably (equal ticks keep their order), and i along:
    a bottom-up merge sort. numba's np.argsort(kind='mergesort') did the same, but compiling it
    (and the shape checks of slice assignments) made the parser's first call take ~10 s; ~4 now."""
    n = len(t)
    src_t, src_i = t, i
    dst_t, dst_i = np.empty_like(t), np.empty_like(i)
    width, passes = 1, 0
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            a, b = lo, mid
            for k in range(lo, hi):
                # from the right run only when strictly earlier: ties keep the left run's first
                if a < mid and (b >= hi or src_t[b] >= src_t[a]):
                    dst_t[k], dst_i[k] = src_t[a], src_i[a]
                    a += 1
                else:
                    dst_t[k], dst_i[k] = src_t[b], src_i[b]
                    b += 1
        src_t, dst_t = dst_t, src_t
        src_i, dst_i = dst_i, src_i
        width *= 2
        passes += 1
    if passes % 2:
        for k in range(n):          # a loop, not t[:] = ...: no shape check to compile
            t[k], i[k] = src_t[k], src_i[k]
