"""Delivery on the destination side: delay buffers, adapter chains and input assembly.

An :class:`Inbox` belongs to one destination solver and holds a :class:`Link` for every coupling
into it. After each window the source's outputs are pushed into the links (``push``); before the
next window the inbox assembles the solver's inputs (``collect``). The same code runs in the
coordinator (``inproc``) or in a worker process (``zmq``, ``mpi``), so every transport delivers
the same inputs.

Semantics (docs/run-file.md and README state them for users):

* spikes emitted at tick ``e`` arrive at tick ``e + delay``, exactly;
* a sampled source is read at ``t - delay`` for each sample tick ``t`` of the destination's
  grid: 'hold' takes the latest source sample at or before it, 'linear' interpolates between
  the two around it. Source values before t = 0 are zero (the run starts at rest);
* adapters then run over the destination's window; a sampled chain output on another grid is
  held onto the destination's grid;
* channels are mapped to the target's selected channels: equal counts map one to one, a single
  channel is broadcast, many channels into one target channel are summed; the coupling's weight
  multiplies samples and becomes each delivered spike's weight;
* several couplings into one port add (sampled) or merge in time order (spikes);
* a solver with an input lead L (``SolverSpec.input_lead_ms()``) is handed, for its window
  [t0, t1), the inputs that arrive in [t0 + L, t1 + L): spikes with their arrival ticks and
  samples at those times, exactly what a solver without a lead gets for that later interval.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import SolverError
from .plan import LinkPlan, Plan
from .seeding import rng_for
from .signals import Port, Samples, Signal, SignalSpec, Spikes
from .specs import AdapterContext
from .time import to_ms


class Link:
    """One coupling's buffer and adapter chain, on the destination side."""

    def __init__(self, plan: Plan, lk: LinkPlan):
        self.plan = lk
        self.delay = lk.delay_ticks
        src = lk.source_port
        self.adapters = []
        for k, (a, sig) in enumerate(zip(lk.via, lk.stages)):
            ctx = AdapterContext(coupling=lk.name, window_ticks=plan.window_ticks,
                                 target_period_ticks=lk.target_port.period_ticks,
                                 rng=rng_for(plan.seed, "coupling", str(lk.index), lk.name, str(k)))
            self.adapters.append(a.build(sig, ctx))
        # lookup from source channel to position in the selection (-1: not selected)
        self.lut = None
        if list(lk.source_channels) != list(range(src.size)):
            self.lut = np.full(src.size, -1, dtype=np.int64)
            self.lut[list(lk.source_channels)] = np.arange(len(lk.source_channels))
        self.src_channels = np.asarray(lk.source_channels, dtype=np.int64)
        self.dst_channels = np.asarray(lk.target_channels, dtype=np.int64)
        self.dst_unique = len(set(lk.target_channels)) == len(lk.target_channels)
        self.dst_is_all = list(lk.target_channels) == list(range(lk.target_port.size))
        if src.kind == "spikes":
            self._pending_ticks: list[np.ndarray] = []
            self._pending_ids: list[np.ndarray] = []
            self.push = self._push_spikes
        else:
            self.src_period = src.period_ticks
            self.grid = lk.stages[0].period_ticks
            # history of source samples, kept as the windows' blocks as they came (each a private
            # copy; joining them every window would copy the whole history): row i of their
            # concatenation is source sample index hist_k0 + i, hist_n rows in all
            self._blocks: list[np.ndarray] = []
            self._width = len(lk.source_channels)
            self.hist_k0 = 0
            self.hist_n = 0
            self.contiguous = (self.grid == self.src_period and self.delay % self.src_period == 0)
            self.push = self._push_samples
        # the window's signal, resolved once: the delayed signal itself when no adapter follows
        self.collect = (self._collect_chain if self.adapters else
                        self._delayed_spikes if src.kind == "spikes" else self._delayed_samples)

    # -- source side ------------------------------------------------------------------------
    def push(self, sig: Signal) -> None:
        """Take the source port's output for one window (in window order).

        (Bound per instance, at construction, to the spike or the sampled version.)"""
        (self._push_spikes if isinstance(sig, Spikes) else self._push_samples)(sig)

    def _push_spikes(self, sig: Spikes) -> None:
        ids = sig.ids
        ticks = sig.ticks
        if self.lut is not None:
            pos = self.lut[ids]
            keep = pos >= 0
            ids, ticks = pos[keep], ticks[keep]
        if len(ids):
            self._pending_ticks.append(ticks + self.delay)
            self._pending_ids.append(ids)

    def _push_samples(self, sig: Samples) -> None:
        self.push_rows(sig.t0, sig.data)

    def push_rows(self, t0: int, data: np.ndarray) -> None:
        """Take a sampled source's output for one window: ``data`` (n, source port size) from tick
        ``t0`` on the source's grid (what :meth:`push` does with a ``Samples``, without one)."""
        if self.lut is not None:
            data = data[:, self.src_channels]
        if t0 // self.src_period != self.hist_k0 + self.hist_n:
            raise SolverError(f"coupling {self.plan.name}: source samples from tick {t0} "
                              f"arrived out of order", solver=self.plan.source.solver,
                              t_ms=to_ms(t0))
        # a private copy: the source may reuse its output buffer, the wire's frames are read-only
        block = np.array(data, dtype=np.float64)
        if block.ndim != 2 or block.shape[1] != self._width:
            raise SolverError(f"coupling {self.plan.name}: source samples of shape {block.shape} from tick "
                              f"{t0}, expected (n, {self._width})", solver=self.plan.source.solver,
                              t_ms=to_ms(t0))
        if len(block):
            self._blocks.append(block)
            self.hist_n += len(block)

    @property
    def hist(self) -> np.ndarray:
        """The source samples kept, (hist_n, channels): row i is source sample hist_k0 + i."""
        blocks = self._blocks
        if len(blocks) == 1:
            return blocks[0]
        if not blocks:
            return np.zeros((0, self._width))
        joined = np.concatenate(blocks)
        self._blocks = [joined]
        return joined

    # -- destination side -------------------------------------------------------------------
    def _delayed_spikes(self, t0: int, t1: int) -> Spikes:
        if not self._pending_ticks:
            return Spikes.empty()
        if len(self._pending_ticks) == 1:
            # the common case (delay = window): one pushed window, all due now, in tick order;
            # the same spikes as the general path below, without its masks and sort
            ticks = self._pending_ticks[0]
            if t0 <= ticks[0] and ticks[-1] < t1 and (len(ticks) < 2 or (ticks[1:] >= ticks[:-1]).all()):
                ids = self._pending_ids[0]
                self._pending_ticks, self._pending_ids = [], []
                return Spikes(ticks, ids.copy())
        ticks = np.concatenate(self._pending_ticks)
        ids = np.concatenate(self._pending_ids)
        now = ticks < t1
        if (ticks[now] < t0).any():
            raise SolverError(f"coupling {self.plan.name}: a spike due at tick {ticks[now].min()} "
                              f"arrived after its window started at {t0}", solver=self.plan.target.solver,
                              t_ms=to_ms(t0))
        later = ~now
        self._pending_ticks = [ticks[later]] if later.any() else []
        self._pending_ids = [ids[later]] if later.any() else []
        order = np.argsort(ticks[now], kind="stable")
        return Spikes(ticks[now][order], ids[now][order])

    def _source_at(self, taus: np.ndarray) -> np.ndarray:
        """Source values at ticks ``taus`` (n,) -> (n, channels); zero before t = 0."""
        p = self.src_period
        k = np.floor_divide(taus, p)
        if self.plan.interpolation == "hold":
            return self._rows(k)
        frac = ((taus - k * p) / p)[:, None]
        return (1.0 - frac) * self._rows(k) + frac * self._rows(k + 1)

    def _rows(self, k: np.ndarray) -> np.ndarray:
        hist = self.hist
        out = np.zeros((len(k), self._width))
        have = k >= 0
        idx = k[have] - self.hist_k0
        if len(idx) and (idx.min() < 0 or idx.max() >= len(hist)):
            raise SolverError(f"coupling {self.plan.name}: source sample {int(k[have].max())} is not "
                              f"available yet (internal error: delay shorter than the window?)",
                              solver=self.plan.target.solver)
        out[have] = hist[idx]
        return out

    def _delayed_samples(self, t0: int, t1: int) -> Samples:
        grid = self.grid
        p = self.src_period
        if self.contiguous:
            # same grid and a delay of whole periods: the rows are one slice of the history,
            # usually of one window's block
            k0 = (t0 - self.delay) // p
            n = (t1 - t0) // p
            lo = k0 - self.hist_k0
            data = None
            if k0 >= 0 and lo >= 0 and lo + n <= self.hist_n:
                for b in self._blocks:
                    m = b.shape[0]
                    if lo < m:
                        if lo + n <= m:
                            data = b[lo:lo + n].copy()
                        break
                    lo -= m
                if data is None:  # across blocks
                    lo = k0 - self.hist_k0
                    data = self.hist[lo:lo + n].copy()
            else:
                data = self._rows(np.arange(k0, k0 + n, dtype=np.int64))
        else:
            times = np.arange(t0, t1, grid, dtype=np.int64)
            data = self._source_at(times - self.delay)
        # forget what no later window can ask for
        oldest_needed = (t1 - self.delay) // p - 1
        drop = oldest_needed - self.hist_k0
        if drop > 0:
            self._drop(drop)
        return Samples(t0, grid, data)

    def _drop(self, drop: int) -> None:
        """Forget the oldest ``drop`` rows of the history (whole blocks, then part of one)."""
        self.hist_k0 += drop
        blocks = self._blocks
        if drop >= self.hist_n:
            blocks.clear()
            self.hist_n = 0
            return
        self.hist_n -= drop
        m = blocks[0].shape[0]
        while m <= drop:  # some rows stay, so a block with rows to keep comes
            del blocks[0]
            drop -= m
            m = blocks[0].shape[0]
        if drop:
            blocks[0] = blocks[0][drop:]

    def collect(self, t0: int, t1: int) -> Signal:
        """The link's signal over [t0, t1) after delay and adapters, before channel mapping.

        (Bound per instance, at construction, to the delayed signal itself when the link has no
        adapters.)"""
        return self._collect_chain(t0, t1)

    def _collect_chain(self, t0: int, t1: int) -> Signal:
        sig: Signal = (self._delayed_spikes(t0, t1) if self.plan.source_port.kind == "spikes"
                       else self._delayed_samples(t0, t1))
        for a in self.adapters:
            sig = a(t0, t1, sig)
        return sig

    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.plan.source_port.kind == "spikes":
            out["pending_ticks"] = (np.concatenate(self._pending_ticks) if self._pending_ticks
                                    else np.zeros(0, np.int64))
            out["pending_ids"] = (np.concatenate(self._pending_ids) if self._pending_ids
                                  else np.zeros(0, np.int64))
        else:
            out["history"] = self.hist.copy()
            out["history_k0"] = np.array(self.hist_k0)
        for i, a in enumerate(self.adapters):
            for k, v in getattr(a, "state", lambda: {})().items():
                out[f"adapter{i}.{k}"] = v
        return out


def _hold_onto(sig: Samples, t0: int, t1: int, period: int) -> Samples:
    """Zero-order hold of ``sig`` (which starts at t0) onto the grid t0, t0 + period, ..."""
    if sig.period == period:
        return sig
    times = np.arange(t0, t1, period, dtype=np.int64)
    idx = (times - sig.t0) // sig.period
    return Samples(t0, period, sig.data[idx])


class Inbox:
    """Assembles one destination solver's inputs from all couplings into it."""

    def __init__(self, plan: Plan, solver: str):
        self.solver = solver
        self.lead = plan.solvers[solver].lead_ticks
        self.ports: Mapping[str, Port] = {n: p for n, p in plan.solvers[solver].ports.items()
                                          if p.direction == "in"}
        self.links = {lk.index: Link(plan, lk) for lk in plan.links_into(solver)}
        self._spike_ports = [n for n, p in self.ports.items() if p.kind == "spikes"]
        self._sampled_ports = [(n, p.period_ticks, p.size) for n, p in self.ports.items() if p.sampled]
        fan_in = {n: sum(1 for lk in self.links.values() if lk.plan.target.port == n) for n in self.ports}
        # a sampled port fed by one link that covers all its channels one to one takes that
        # link's window as it is, with no accumulator
        self._direct = {}
        for link in self.links.values():
            lk = link.plan
            port = self.ports[lk.target.port]
            if (port.sampled and fan_in[lk.target.port] == 1 and link.dst_is_all
                    and lk.stages[-1].size == port.size):
                self._direct[lk.index] = lk.target.port
        # per link, resolved once: (link, target port, its period if the link feeds it directly
        # (else None), weight)
        self._order = [(link, link.plan.target.port,
                        self.ports[self._direct[i]].period_ticks if i in self._direct else None,
                        link.plan.weight) for i, link in self.links.items()]
        # the common case, resolved once: every in-port fed by one link, on the port's own grid,
        # with weight 1 and no adapters, whose delayed window is the input as it is (no dicts
        # of parts, no accumulators); a solver without in-ports gets an empty dict
        fast = [(target, link.collect) for link, target, period, w in self._order
                if period is not None and w == 1.0 and not link.adapters and link.grid == period]
        if len(fast) == len(self._order) == len(self.ports):
            self._fast = fast
            self.collect = self._collect_fast

    def _collect_fast(self, t0: int, t1: int) -> dict[str, Signal]:
        if self.lead:
            t0, t1 = t0 + self.lead, t1 + self.lead
        return {target: collect(t0, t1) for target, collect in self._fast}

    def push(self, link_index: int, sig: Signal) -> None:
        self.links[link_index].push(sig)

    def collect(self, t0: int, t1: int) -> dict[str, Signal]:
        """Inputs for every in-port for the solver's window [t0, t1): those arriving over
        [t0 + lead, t1 + lead) (the plan checked that every delay covers window + lead)."""
        if self.lead:
            t0, t1 = t0 + self.lead, t1 + self.lead
        out: dict[str, Signal] = {}
        spikes: dict[str, list[Spikes]] = {n: [] for n in self._spike_ports} if self._spike_ports else {}
        sampled: dict[str, np.ndarray] = {}
        for link, target, period, w in self._order:
            if period is not None:
                sig = link.collect(t0, t1)
                if sig.period != period:
                    sig = _hold_onto(sig, t0, t1, period)
                elif w == 1.0 and sig.t0 == t0:
                    out[target] = sig
                    continue
                out[target] = Samples(t0, period, sig.data * w if w != 1.0 else sig.data)
                continue
            lk = link.plan
            sig = link.collect(t0, t1)
            dst = link.dst_channels
            if isinstance(sig, Spikes):
                if len(sig) == 0:
                    continue
                n, m = lk.stages[-1].size, len(dst)
                if n == m:
                    ticks, ids = sig.ticks, dst[sig.ids]
                elif n == 1:  # broadcast each event to every target channel
                    ticks = np.repeat(sig.ticks, m)
                    ids = np.tile(dst, len(sig))
                else:  # many into one
                    ticks, ids = sig.ticks, np.full(len(sig), dst[0], dtype=np.int64)
                spikes[lk.target.port].append(Spikes(ticks, ids, np.full(len(ticks), lk.weight)))
            else:
                port = self.ports[lk.target.port]
                sig = _hold_onto(sig, t0, t1, port.period_ticks)
                acc = sampled.get(lk.target.port)
                if acc is None:
                    acc = sampled[lk.target.port] = np.zeros(((t1 - t0) // port.period_ticks, port.size))
                data = sig.data * lk.weight if lk.weight != 1.0 else sig.data
                n, m = data.shape[1], len(dst)
                if n == m and link.dst_is_all:
                    acc += data
                elif n == m and link.dst_unique:
                    acc[:, dst] += data
                elif n == m:
                    np.add.at(acc, (slice(None), dst), data)
                elif n == 1:
                    np.add.at(acc, (slice(None), dst), np.broadcast_to(data, (data.shape[0], m)))
                else:
                    acc[:, dst[0]] += data.sum(axis=1)
        for name, parts in spikes.items():
            if not parts:
                out[name] = Spikes.empty(with_weights=True)
            elif len(parts) == 1:
                out[name] = parts[0]
            else:
                ticks = np.concatenate([p.ticks for p in parts])
                order = np.argsort(ticks, kind="stable")
                out[name] = Spikes(ticks[order], np.concatenate([p.ids for p in parts])[order],
                                   np.concatenate([p.weights for p in parts])[order])
        if len(out) == len(self.ports):
            return out
        for name, period, size in self._sampled_ports:
            if name not in out:
                acc = sampled.get(name)
                out[name] = Samples(t0, period, np.zeros(((t1 - t0) // period, size)) if acc is None else acc)
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {f"link{i}.{k}": v for i, link in self.links.items() for k, v in link.state().items()}


__all__ = ["Inbox", "Link", "SignalSpec"]
