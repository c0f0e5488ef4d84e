"""A point-neuron network spanning the ranks of an MPI communicator (``SolverContext.comm``).

Under the mpi transport a PointNetwork given several ranks (``PointNetwork(..., ranks=R)`` or
``model.place(name, ranks=R)``) is built here on every one of them. Each population is cut into
R contiguous blocks, block r on rank r; a rank integrates its own neurons and holds only the
synapses onto them. The spikes are the same as the single-process network's, bit for bit,
whatever R:

- every random draw is independent of R: each rank draws the whole network (initial V,
  per-neuron parameters, the full connectivity, projection by projection from the solver's
  generator, the same on every rank) and keeps its part; the kernel's Poisson and noise draws
  come from per-neuron streams (``K.neuron_streams``). The price is build time and a transient
  of memory: a rank holds one projection's full arrays (13 bytes per synapse) while it keeps
  its part, plus the CSR rows of all n sources (8 bytes per neuron) with only its synapses
  (9 bytes each, about 1/R of them).
- spikes are exchanged every min-delay: the kernel runs chunks of at most ``min_delay_steps``
  steps with no synapses of its own; after each chunk one ``Allgather`` of a block per rank
  (numpy int64 keys, emission step * n + global neuron id; nothing pickled; an ``Allgatherv``
  of the overflow where a rank has more, see _allgather) gives every rank every spike of the
  chunk, and :func:`deliver` adds them into the local ring buffer in (step, neuron) order, the
  order in which the single-process kernel adds them, so the float sums are identical. A
  spike emitted at step e acts from step e + d - 1 >= e + min_delay - 1, which is after the
  chunk: no rank needs it sooner.

- STDP (plasticity.py): a rank holds the plastic synapses onto its own neurons with their
  postsynaptic histories, and the presynaptic traces of every source; deliver() updates and
  delivers a spike's plastic weights after its static ones, as the kernel does, so weights and
  spikes are those of one process. ``weights`` gives a rank's own synapses.

Outputs: every rank returns every population's spikes (all ranks know them after the
exchanges); ``P.V_m`` is gathered (``Gatherv``) to rank 0 of the communicator, the rank whose
outputs the mpi transport uses; the other ranks return a read-only zero view of the right shape.
"""
from __future__ import annotations

import numpy as np

from ...coordinator.signals import Samples, Spikes, WindowResult
from .._jit import njit
from . import _kernels as K
from .network import PointNetwork, PointNetworkSolver


def blocks(sizes, n_ranks: int, rank: int) -> np.ndarray:
    """Global ids of the neurons of ``rank``: block ``rank`` of R contiguous blocks of every
    population (sizes in population order), in population order."""
    out = []
    start = 0
    for size in sizes:
        out.append(np.arange(start + size * rank // n_ranks, start + size * (rank + 1) // n_ranks))
        start += size
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


@njit
def deliver(keys, n, step_base, depth, conn, dense, ring, pring, local_of, local_inh, plastic):
    """Add the spikes ``keys`` (sorted int64, emission step relative to ``step_base`` * n +
    global neuron id) into this rank's ring buffers, as the single-process kernel's phase 1 does:
    a spike emitted at step e through a synapse of delay d lands in row (e + d - 1) % depth.

    conn : (indptr (n + 1,) over all global sources, slot (nnz,) int32 local slots, weight
            (nnz,) float32, delay (nnz,) steps, row_delay (n,) int64)
    dense : the global all-to-all projections (pop_of (n,), src, col, w, d, own), as the kernel's
    local_of (n,) int64 : local index of a global neuron, -1 if another rank holds it
    local_inh (n_local,) int64 : local inhibitory slot of each local neuron
    plastic : the STDP tuple (network.py's _connect_plastic) with this rank's plastic synapses
              (local target slots) and the pre-synaptic traces of every source: a spike's
              weights are updated and delivered after its static ones, as the kernel does
    """
    n_plastic = plastic[2].shape[0]
    indptr, slot, weight, delay, row_delay = conn
    pop_of, dn_src, dn_col, dn_w, dn_d, dn_own = dense
    n_dense = dn_src.shape[0]
    for q in range(keys.shape[0]):
        e = keys[q] // n
        i = keys[q] - e * n
        row = (step_base + e) % depth
        d = row_delay[i]
        if d > 0:
            r = row + d - 1
            if r >= depth:
                r -= depth
            target = ring[r]
            for k in range(indptr[i], indptr[i + 1]):
                target[slot[k]] += weight[k]
        else:
            for k in range(indptr[i], indptr[i + 1]):
                r = row + np.int64(delay[k]) - 1
                if r >= depth:
                    r -= depth
                ring[r, slot[k]] += weight[k]
        if n_dense:
            ps = pop_of[i]
            li = local_of[i]
            for p in range(n_dense):
                if dn_src[p] == ps:
                    r = row + dn_d[p] - 1
                    if r >= depth:
                        r -= depth
                    pring[r, dn_col[p]] += dn_w[p]
                    if li >= 0:
                        if dn_own[p] == 0:
                            ring[r, li] -= dn_w[p]
                        elif dn_own[p] == 1:
                            ring[r, local_inh[li]] -= dn_w[p]
        if n_plastic:
            K.stdp_pre_spike(i, step_base + e, row, ring, plastic)


class DistributedPointNetworkSolver(PointNetworkSolver):
    """One rank's part of a PointNetwork spanning the ranks of ``comm`` (module docstring).

    Attributes beyond the base's: ``local`` (n_local,) global ids of this rank's neurons,
    ``min_delay_steps`` the exchange interval (steps), ``n_synapses`` of the whole network,
    ``local_synapses`` held here.
    """

    # deliver() reads one per-synapse CSR of the spikes of every rank
    _compact = False

    def __init__(self, spec: PointNetwork, rng: np.random.Generator, comm):
        from mpi4py import MPI
        self._MPI = MPI
        self.comm = comm
        self.rank, self.n_ranks = comm.Get_rank(), comm.Get_size()
        self.local = blocks([p.size for p in spec.populations], self.n_ranks, self.rank)
        self._local_of = None           # built by the first _keep_synapses (needs inh_slot)
        self._min_csr = None
        super().__init__(spec, rng)
        self._localize(spec)

    # -- build ----------------------------------------------------------------------------------
    def _slot_map(self) -> None:
        """Global slot -> local slot (-1: another rank's), in the base's layout: local neurons
        first, then the inhibitory slots of local two-slot neurons in population order."""
        nl = self.local.shape[0]
        self._slot_of = np.full(self.n_slots, -1, np.int64)
        self._slot_of[self.local] = np.arange(nl)
        self._local_of = self._slot_of[:self.n].copy()
        self._local_inh = np.arange(nl, dtype=np.int64)
        extra = nl
        for i, p in enumerate(self.spec.populations):
            mine = np.flatnonzero((self.local >= self.lo[i]) & (self.local < self.lo[i + 1]))
            if p.model.kind in K.TWO_SLOTS and mine.size:
                self._local_inh[mine] = np.arange(extra, extra + mine.size)
                self._slot_of[self.inh_slot[self.local[mine]]] = self._local_inh[mine]
                extra += mine.size
        self._n_slots_local = extra

    def _keep_synapses(self, src, slot, w, d):
        if self._local_of is None:
            self._slot_map()
        if d.shape[0]:
            lo = int(d.min())
            self._min_csr = lo if self._min_csr is None else min(self._min_csr, lo)
        loc = self._slot_of[slot]
        keep = loc >= 0
        return src[keep], loc[keep].astype(np.int32), w[keep], d[keep]

    def _connect_plastic(self, plastic) -> None:
        """STDP across ranks: a rank holds the plastic synapses onto its own neurons (with their
        postsynaptic histories, appended by its kernel) and the presynaptic traces of every
        source (all ranks see every spike); deliver() updates and delivers the weights of each
        spike in the order the single-process kernel does, so the weights and spikes are the
        same. A pre spike is processed after the chunk it was emitted in, when the history may
        hold later postsynaptic spikes: STDP reads only those up to t_pre - d, so they change
        nothing, but they count against ``history``."""
        if self._local_of is None:
            self._slot_map()
        mine = []
        for pr, si, ti, src, slot, w, d in plastic:
            keep = self._slot_of[slot] >= 0
            mine.append((pr, si, ti, src[keep], slot[keep], w[keep], d[keep]))
        super()._connect_plastic(mine)
        if not plastic:
            self.d_plastic = self.plastic
            return
        pl = list(self.plastic)
        pl[6] = self._slot_of[pl[6]]                    # local target slots
        pl[11] = np.ascontiguousarray(pl[11][self.local])   # history row of each local neuron
        self.d_plastic = tuple(pl)
        # the kernel appends postsynaptic spikes only: no plastic projection of its own
        pl[2] = np.zeros(0, np.int64)
        self.plastic = tuple(pl)

    def weights(self, source: str, target: str, index: int = 0):
        """As the base's, for this rank's synapses (those onto its neurons), target indices
        within the population (global)."""
        src, tgt_local, w = super().weights(source, target, index)
        ti = self.names.index(target)
        return src, self.local[tgt_local + self.lo[ti]] - self.glo[ti], w

    def _localize(self, spec: PointNetwork) -> None:
        if self._local_of is None:   # no CSR projection: the map was never needed
            self._slot_map()
        L = self.local
        nl = L.shape[0]
        n_pops = len(spec.populations)
        glo = self.lo.copy()
        self.glo = glo
        # the minimum delay (steps) over every synapse, CSR and dense: the exchange interval
        mins = [self._min_csr] if self._min_csr is not None else []
        mins += [max(1, round(pr.delay_ms / spec.dt_ms)) for pr in spec.projections if pr.dense]
        self.min_delay_steps = min(mins) if mins else None
        # the whole network's synapse count, before the CSR becomes this rank's delivery table
        local_nnz = int(self.indptr[-1])
        total = np.zeros(1, np.int64)
        self.comm.Allreduce(np.array([local_nnz], np.int64), total, op=self._MPI.SUM)
        self.local_synapses = local_nnz
        self._n_synapses = int(total[0]) + self.n_dense_synapses
        # spikes are delivered by deliver() after each exchange; the kernel gets no synapses
        self.d_conn = (self.indptr, self.slot, self.weight, self.delay, self.row_delay)
        self.g_dense = self.dense
        self.indptr = np.zeros(nl + 1, np.int64)
        self.slot = np.zeros(0, np.int32)
        self.weight = np.zeros(0, np.float32)
        self.delay = np.zeros(0, self.d_conn[3].dtype)
        self.row_delay = np.zeros(nl, np.int64)
        z = np.zeros(0, np.int64)
        self.dense = (self.g_dense[0][L].copy(), z, z, np.zeros(0), z, z)
        for name in ("v", "bias", "th_off", "hrow", "i_ex", "i_in", "refr", "w_ad", "rng_state"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[L]))
        self.inh_slot = self._local_inh
        self.n_slots = self._n_slots_local
        self.pend = np.zeros(nl, np.int64)
        self.ring = np.zeros((self.depth, self.n_slots))
        self.lo = np.zeros(n_pops + 1, np.int64)
        for i in range(n_pops):
            self.lo[i + 1] = self.lo[i] + np.count_nonzero((L >= glo[i]) & (L < glo[i + 1]))
        # recorded V: local columns, and where every rank's columns go in the gathered array
        rec = [i for i, p in enumerate(spec.populations) if p.record_v]
        self.vrec_idx = np.concatenate([np.arange(self.lo[i], self.lo[i + 1]) for i in rec]
                                       or [z]).astype(np.int64)
        col0 = {}
        c = 0
        for i in rec:
            col0[i] = c
            c += spec.populations[i].size
        self._n_vrec = c
        self._vcols = []
        sizes = [p.size for p in spec.populations]
        for r in range(self.n_ranks):
            ids = blocks(sizes, self.n_ranks, r)
            cols = [col0[i] + ids[(ids >= glo[i]) & (ids < glo[i + 1])] - glo[i] for i in rec]
            self._vcols.append(np.concatenate(cols or [z]).astype(np.int64))
        self._carry = np.zeros(0, np.int64)   # keys of spikes emitted at the next window's first step
        # keys per rank in the exchange's fixed block: small, it grows to what the network needs
        self._block = 8
        self._send = np.empty(0, np.int64)
        self._recv = np.empty((0, 0), np.int64)

    @property
    def n_synapses(self) -> int:
        """Synapses of the whole network (all ranks), CSR and dense."""
        return self._n_synapses

    def connectome_bytes(self) -> int:
        """Bytes of this rank's delivery CSR (rows of all sources, its own synapses)."""
        return sum(a.nbytes for a in self.d_conn[:4])

    # -- a window -------------------------------------------------------------------------------
    def _input_slots(self, p: int, ids: np.ndarray):
        """This rank's slots of population ``p``'s neurons ``ids``, and which ids are here."""
        loc = self._local_of[ids + self.glo[p]]
        keep = loc >= 0
        return loc[keep], keep

    def _allgather(self, mine: np.ndarray) -> np.ndarray:
        """Every rank's keys, sorted: (emission step, global neuron id) order.

        One ``Allgather`` of a fixed block per rank (its count, then up to ``_block`` keys) does
        it in one collective while no rank has more; where one has, an ``Allgatherv`` of the
        rest follows and the block grows (every rank sees the same counts, so all agree)."""
        R, B = self.n_ranks, self._block
        if self._send.shape[0] != B + 1:
            self._send = np.empty(B + 1, np.int64)
            self._recv = np.empty((R, B + 1), np.int64)
        m = mine.shape[0]
        k = min(m, B)
        self._send[0] = m
        self._send[1:1 + k] = mine[:k]
        self.comm.Allgather(self._send, self._recv)
        counts = self._recv[:, 0].copy()
        parts = [self._recv[r, 1:1 + min(int(counts[r]), B)] for r in range(R)]
        if counts.max() > B:
            rest = np.maximum(counts - B, 0)
            more = np.empty(int(rest.sum()), np.int64)
            displ = np.zeros(R, np.int64)
            np.cumsum(rest[:-1], out=displ[1:])
            self.comm.Allgatherv(np.ascontiguousarray(mine[k:]), [more, (rest, displ), self._MPI.INT64_T])
            parts.append(more)
            self._block = 1 << int(counts.max() - 1).bit_length()
        out = np.concatenate(parts)
        out.sort()
        return out

    def advance(self, t0: int, t1: int, inputs) -> WindowResult:
        dt = self.dt_ticks
        n = self.n
        n_steps = (t1 - t0) // dt
        rate_in, cur_in, ext_step, ext_slot, ext_w = self._external(t0, n_steps, inputs)
        base = self.step
        chunk = n_steps if self.min_delay_steps is None else self.min_delay_steps
        keys = [self._carry]
        vparts = []
        a = 0
        while a < n_steps:
            c = min(chunk, n_steps - a)
            i0, i1 = np.searchsorted(ext_step, [a, a + c])
            ext = (rate_in[a:a + c], cur_in[a:a + c], ext_step[i0:i1] - a, ext_slot[i0:i1], ext_w[i0:i1])
            count, vrec = self._integrate(c, ext)
            vparts.append(vrec)
            # spikes emitted in this chunk after its first step (those of its first step were
            # the last chunk's pending ones, sent then), and the pending ones, emitted at the
            # next chunk's first step: every spike whose delivery is due from now on
            ss = self._spk_step[:count]
            sel = ss >= 1
            npend = int(self.pend_n[0])
            e = np.concatenate([ss[sel], np.full(npend, c, np.int64)]) + a
            gid = self.local[np.concatenate([self._spk_id[:count][sel], self.pend[:npend]])]
            got = self._allgather(e * n + gid)
            deliver(got, n, base, self.depth, self.d_conn, self.g_dense, self.ring, self.pring,
                    self._local_of, self._local_inh, self.d_plastic)
            keys.append(got)
            a += c
        allk = np.concatenate(keys)
        e = allk // n
        nxt = e >= n_steps
        self._carry = allk[nxt] - n_steps * n
        allk, e = allk[~nxt], e[~nxt]
        gid = allk - e * n
        ticks = t0 + e * dt
        outputs = {}
        for p, name in enumerate(self.names):
            keep = (gid >= self.glo[p]) & (gid < self.glo[p + 1])
            outputs[f"{name}.spikes"] = Spikes(ticks[keep], gid[keep] - self.glo[p])
        if self._n_vrec:
            v = self._gather_v(np.concatenate(vparts) if vparts else np.zeros((0, self.vrec_idx.shape[0])),
                               n_steps)
            col = 0
            for pop in self.spec.populations:
                if pop.record_v:
                    k = pop.size
                    data = (v[:, col:col + k] + self.vrec_el[col:col + k]) if v is not None else \
                        np.broadcast_to(np.float64(0.0), (n_steps, k))
                    outputs[f"{pop.name}.V_m"] = Samples(t0, dt, data)
                    col += k
        return WindowResult(outputs=outputs)

    def spikes_at_stop(self, t_stop: int) -> dict[str, Spikes]:
        """The spikes at tick ``t_stop``: crossings in the run's last step, emitted at the next
        window's first step (``_carry``, already gathered from every rank), on every rank."""
        gid = self._carry      # keys with emission step 0: the global ids, sorted
        out = {}
        for p, name in enumerate(self.names):
            keep = gid[(gid >= self.glo[p]) & (gid < self.glo[p + 1])] - self.glo[p]
            out[f"{name}.spikes"] = Spikes(np.full(len(keep), t_stop, np.int64), keep)
        return out

    def _gather_v(self, mine: np.ndarray, n_steps: int) -> np.ndarray | None:
        """The recorded V of every rank (n_steps, all recorded neurons) on rank 0, None elsewhere."""
        sizes = np.array([cols.shape[0] * n_steps for cols in self._vcols], np.int64)
        send = np.ascontiguousarray(mine).reshape(-1)
        if self.rank != 0:
            self.comm.Gatherv(send, None, root=0)
            return None
        buf = np.empty(int(sizes.sum()))
        displ = np.zeros(self.n_ranks, np.int64)
        np.cumsum(sizes[:-1], out=displ[1:])
        self.comm.Gatherv(send, [buf, (sizes, displ), self._MPI.DOUBLE], root=0)
        out = np.empty((n_steps, self._n_vrec))
        for r, cols in enumerate(self._vcols):
            out[:, cols] = buf[displ[r]:displ[r] + sizes[r]].reshape(n_steps, cols.shape[0])
        return out
