"""Block-wise counting of the emulator's work: per-step, per-core counters and link hops.

:class:`Counting` keeps the counters of a run in blocks of steps (bounded memory, at most
``Engine.COUNTER_BYTES``), delivering a per-core counter of every firing source like the
synapses, and turns each finished block into energy and latency with the cost model
(:class:`~nmcompiler.backends.emulator.costs.CostStream`); beyond the budget it keeps
run totals (docs/emulator.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools as _st

from nmcompiler.parallel import each, ordered

from .delivery import threads_pool
from .sparse import F32_EXACT, narrow_indices, row_counts

if TYPE_CHECKING:
    from .costs import MeshPlan
    from .engine import Engine
    from .folding import StackedCounts

__all__ = ["Counting", "build_count_matrix", "count_layout", "concat_active", "core_pairs",
           "core_trees", "source_costs", "link_totals", "per_population", "source_pairs",
           "source_links"]


class Counting:
    """Counters and costs of one run, accumulated in blocks of steps (docs/emulator.md).

    Per step the firing sources' columns of ``count_mat`` go into one row of a small
    block buffer ``(block, B, 5 x n_cores)`` and the sources are logged; at the end of a
    block the block's per-core counters, pair messages (log x ``src_pair``), NoC latency
    (the largest ``src_latency`` of a step's firing sources) and hop energy are turned
    into per-step time and energy by :class:`~nmcompiler.backends.emulator.costs.CostStream`,
    and either stored per step or added to the run's totals (:attr:`Engine.COUNTER_BYTES`).
    Nothing of size steps x pairs or steps x links is allocated unless kept.
    """

    BLOCK_BYTES = 1 << 22
    #: ``"pack"`` accumulators of at least this many rows are split in two halves at
    #: once (:meth:`unpack`), one on a helper thread
    UNPACK_SPLIT_ROWS = 1 << 18

    def __init__(self, eng: Engine, steps: int, batch: int, want_pairs: bool = False,
                 stacked: StackedCounts | None = None) -> None:
        self.eng, self.steps, self.batch = eng, steps, batch
        c = eng.n_cores
        n_pairs = eng.pairs.shape[0] if want_pairs else 0
        if want_pairs:
            eng._attach_pairs()
        n_links = eng.costs.n_links if eng.costs is not None else 0
        # multicast targets: a step's link hops are its spikes per core x the core's tree
        self.core_link = eng.costs.core_link if eng.costs is not None else None
        budget = eng.COUNTER_BYTES
        self.keep_core = steps * batch * 6 * c * 8 <= budget
        self.want_pairs = want_pairs
        self.keep_link = steps * (batch * n_pairs + n_links) * 8 <= budget
        self.src_link = None
        if self.keep_link and n_links and self.core_link is None:
            self.src_link = eng._source_links()
            if self.src_link is None and not want_pairs:
                # per-step link hops would cost more than the counting itself (long
                # routes on a large mesh): keep their totals; the per-step energy does
                # not need them
                self.keep_link = False
        bins = 5 * c
        self.block = max(1, min(steps, self.BLOCK_BYTES // max(batch * bins * 8, 1)))
        self.stacked = stacked
        #: rows of the buffer past the block: counts that arrive with a delayed delivery
        self.lag = stacked.lag if stacked is not None else 0
        self.buf = np.zeros((self.block + self.lag, batch, bins),
                            dtype=eng.count_dtype)
        self.t0 = 0
        self._ev: np.ndarray | None = None
        self._halves: tuple | None = None
        #: blocks are counted on a helper thread where there is more than one CPU
        self._pool = threads_pool()
        self._pending: Any = None
        self._sops = eng.count_slices["sops"]
        self.log: list[tuple[int, np.ndarray, np.ndarray]] = []
        rows = steps if self.keep_core else 1
        # integer counters (exact): int32 per step where a step's count on a core stays
        # below 2**24 (the float32 test of ``count_mat_step``), else int64; run totals in
        # int64. Time-stepped updates are the same every step: a read-only broadcast view
        exact32 = self.keep_core and eng.count_dtype == np.float32
        it = np.int32 if exact32 else np.int64
        self.core = {k: np.zeros((rows, batch, c), dtype=it) for k in eng.COUNT_BINS}
        self.updates_view = bool(self.keep_core and eng.time_stepped)
        self.core["updates"] = (np.broadcast_to(eng.core_neurons.astype(it), (rows, batch, c))
                                if self.updates_view else np.zeros((rows, batch, c), dtype=it))
        self.fires = np.zeros(eng.n_src, dtype=np.int64)
        self.pair_msgs = np.zeros((steps, batch, n_pairs)) if (
            self.keep_link and want_pairs) else None
        self.stream = None
        if eng.costs is not None:
            from .costs import CostStream

            self.stream = CostStream(eng.costs, steps, batch, c, keep_links=self.keep_link)

    def step(self, t: int, ent: tuple, acc: np.ndarray | None = None) -> None:
        """Counters of step ``t``: the columns of the firing sources ``ent`` (those
        without a carrier, with :attr:`stacked`) and, with :attr:`stacked`, the counter
        regions of the step's accumulator ``acc`` (the carried sources of step ``t - d``
        for a carrier of delay ``d``)."""
        r = t - self.t0
        st = self.stacked
        if ent[1].size:
            if st is None:
                self.eng._deliver(self.buf[r], self.eng.count_mat_step, ent, True,
                                  self.batch)
            elif st.residual is not None:
                free = st.carrier_delay[ent[1]] < 0
                if free.any():
                    sub = ent if free.all() else (ent[0][free], ent[1][free], ent[2][free])
                    self.eng._deliver(self.buf[r], st.residual, sub, True, self.batch)
            self.log.append((r, ent[0], ent[1]))
        if st is not None and acc is not None and st.mode == "stack":
            for row0, rows, d in st.regions:
                if t - d >= 0:
                    self.buf[r - d] += acc[:, row0:row0 + rows]
        if r - self.lag == self.block - 1:  # the block's rows are complete
            self._flush(self.block)

    def unpack(self, t: int, acc: np.ndarray) -> None:
        """``"pack"``: split step ``t``'s accumulator (after the deliveries of spikes of
        step ``t - lag``) into the weighted sums, in place, and the synaptic events per
        row, added per core to the counters of step ``t - lag``."""
        st = self.stacked
        rows = acc[:, :self.eng.n_rows]
        # a row holds S + q x events with |S| < q / 2 and |row| < 2**(m-2) x q
        # (folding._pack_offset): adding M = 1.5 x 2**(m-1) x q rounds it to the nearest
        # multiple of q (the spacing of floats in [2**(m-1) q, 2**m q)), exactly
        # q x events; subtracting M again is exact, and S = row - q x events
        if self._ev is None or self._ev.shape != rows.shape:
            m = np.finfo(rows.dtype).nmant + 1
            self._ev = np.empty_like(rows)
            self._big = rows.dtype.type(1.5 * 2.0 ** (m - 1) * st.q)
            self._inv_q = rows.dtype.type(1.0 / st.q)
            # large accumulators: two halves cut at a run of rows, one on a helper thread
            n_runs = st.row_starts.shape[0]
            mid = int(np.searchsorted(st.row_starts, rows.shape[1] // 2))
            self._halves = ((0, mid), (mid, n_runs)) if (
                rows.shape[1] >= self.UNPACK_SPLIT_ROWS and self._pool is not None
                and 0 < mid < n_runs) else None
        dst = self.buf[t - self.lag - self.t0][:, self._sops]
        if self._halves is None or self._pool is None:
            runs = self._split_rows(rows, 0, st.row_starts.shape[0])
        else:
            (a0, a1), (b0, b1) = self._halves
            fut = self._pool.submit(self._split_rows, rows, b0, b1)
            runs = np.concatenate([self._split_rows(rows, a0, a1), fut.result()], axis=1)
        runs *= self._inv_q
        if st.row_cores is None:
            dst += runs
        else:
            for b in range(runs.shape[0]):
                dst[b] += np.bincount(st.row_cores, weights=runs[b], minlength=dst.shape[1])

    def _split_rows(self, rows: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """:meth:`unpack` on the runs ``r0:r1`` of rows (their rows split in place);
        returns ``q x events`` per run."""
        starts = self.stacked.row_starts  # type: ignore[union-attr]
        lo = int(starts[r0])
        hi = int(starts[r1]) if r1 < starts.shape[0] else rows.shape[1]
        part, qev, big = rows[:, lo:hi], self._ev[:, lo:hi], self._big
        np.add(part, big, out=qev)
        qev -= big
        part -= qev
        return np.add.reduceat(qev, starts[r0:r1] - lo, axis=1)

    def _tail_pack(self, t: int, ent: tuple) -> None:
        """``"pack"``: the synaptic events of the folded sources ``ent`` of step ``t``
        (whose delivery would come after the run): delivered once more through the
        folded groups into a scratch accumulator and split as :meth:`unpack` splits a
        step's, booked to step ``t``."""
        st, eng = self.stacked, self.eng
        blocks = [b for (d, *_), mats in zip(eng.groups, st.mats, strict=True)
                  if d == self.lag for b in mats]
        if not blocks:
            return
        acc = np.zeros((self.batch, eng.n_rows), dtype=blocks[0][1].dtype)
        for r0, blk in blocks:
            eng._deliver(acc[:, r0:r0 + blk.shape[0]], blk, ent, True, self.batch)
        self.unpack(t + self.lag, acc)

    def _add_own_core(self, blk: np.ndarray, j: np.ndarray, b: np.ndarray,
                      src: np.ndarray) -> None:
        """``"pack"``: the folded sources' counts on their own core (messages, local
        deliveries, spikes), from the block's log of firing sources."""
        st, eng = self.stacked, self.eng
        if st is None or not st.own_core or not src.shape[0]:
            return
        nb, batch, c = blk.shape[0], self.batch, eng.n_cores
        fold = st.carrier_delay[src] >= 0
        if not fold.all():
            j, b, src = j[fold], b[fold], src[fold]
        key = (j * batch + b) * c + eng.src_core[src]
        for name, val in st.own_core.items():
            # a spike is one on its core: no weights needed
            w = None if name == "spikes" else val[src]
            blk[:, :, eng.count_slices[name]] += np.bincount(
                key, weights=w, minlength=nb * batch * c).reshape(nb, batch, c)

    def _flush(self, nb: int) -> None:
        """Turn the buffer's first ``nb`` rows (steps ``t0 ..``) into counters and costs,
        and move the rest (counts of later steps already arrived) to the front. The
        rows and the block's log are taken here; the counters and costs are made from
        them by :meth:`_block` on a helper thread while the run goes on (one block at a
        time, in block order, so every sum is added in the same order as on one thread;
        :meth:`wait` before reading them)."""
        log, later = self.log, []
        if self.lag:
            later = [e for e in log if e[0] >= nb]
            log = [e for e in log if e[0] < nb]
        blk = self.buf[:nb].astype(np.float64)  # exact integers either way (a copy)
        t0 = self.t0
        rest = self.buf.shape[0] - nb
        if rest > 0:
            self.buf[:rest] = self.buf[nb:]
        self.buf[max(rest, 0):] = 0.0
        self.log = [(jj - nb, bb, ss) for jj, bb, ss in later]
        self.t0 = t0 + nb
        self.wait()
        if self._pool is not None:
            self._pending = self._pool.submit(self._block, blk, log, t0)
        else:
            self._block(blk, log, t0)

    def wait(self) -> None:
        """Wait for the block being counted on a helper thread (and raise its error)."""
        if self._pending is not None:
            fut, self._pending = self._pending, None
            fut.result()

    def _block(self, blk: np.ndarray, log: list, t0: int) -> None:
        """The counters and costs of the block of steps ``t0 ..`` from its buffer rows
        ``blk`` (float64) and its log of firing sources."""
        eng, batch = self.eng, self.batch
        nb = blk.shape[0]
        t_end = t0 + nb
        c = eng.n_cores
        if log:
            j = np.repeat(np.array([jj for jj, _, _ in log], dtype=np.int64),
                          [s.shape[0] for _, _, s in log])
            b = np.concatenate([bb for _, bb, _ in log])
            src = np.concatenate([s for _, _, s in log])
        else:
            j = b = src = np.zeros(0, dtype=np.int64)
        self._add_own_core(blk, j, b, src)
        part = {k: blk[:, :, sl] for k, sl in eng.count_slices.items()}
        if eng.time_stepped:
            upd = np.broadcast_to(eng.core_neurons.astype(np.float64), (nb, batch, c))
        else:
            upd = part["sops"]
        part["updates"] = upd
        np.add.at(self.fires, src, 1)
        lh = None
        if self.keep_link and self.stream is not None and eng.costs.n_links:
            # the log is in step order: a CSR matrix (step, source) directly
            ip = np.zeros(nb + 1, dtype=np.int64)
            np.cumsum(np.bincount(j, minlength=nb), out=ip[1:])
            fs = sp.csr_matrix((np.ones(src.shape[0]), src, ip), shape=(nb, eng.n_src))
            if self.core_link is not None:  # as costs.evaluate: spikes per core x trees
                spikes = part["spikes"].sum(axis=1)
                lh = np.asarray((sp.csr_matrix(spikes) @ self.core_link).todense())
            elif self.src_link is not None:
                lh = (fs @ self.src_link).toarray()
            else:
                lh = ((fs @ eng.src_pair) @ eng.costs.pair_link).toarray()
        if self.pair_msgs is not None and eng.pairs.shape[0]:
            rows = j * batch + b
            order = None if batch == 1 else np.argsort(rows, kind="stable")
            ip = np.zeros(nb * batch + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=nb * batch), out=ip[1:])
            fm = sp.csr_matrix((np.ones(src.shape[0]), src if order is None else src[order],
                                ip), shape=(nb * batch, eng.n_src))
            self.pair_msgs[t0:t_end] = (fm @ eng.src_pair).toarray().reshape(
                nb, batch, -1)
        if self.stream is not None:
            noc = np.zeros(nb * batch)
            if src.shape[0]:
                rows = j * batch + b  # in step order; samples apart within a step
                order = None if batch == 1 else np.argsort(rows, kind="stable")
                lat = eng.src_latency[src] if order is None else eng.src_latency[src[order]]
                rows = rows if order is None else rows[order]
                starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
                noc[rows[starts]] = np.maximum.reduceat(lat, starts)
            noc = noc.reshape(nb, batch)
            hop_e = np.bincount(j, weights=eng.src_hop_energy[src], minlength=nb)
            self.stream.add(t0, part, noc, hop_e, lh)
        if self.keep_core:
            for k, v in part.items():
                if k != "updates" or not self.updates_view:
                    self.core[k][t0:t_end] = v
        else:
            for k, v in part.items():
                self.core[k][0] += v.sum(axis=0).astype(np.int64)

    def finish(self, pending: Callable[[int], tuple | None] | None = None
               ) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
        """The counters (per step or totals) and the costs of the run. With
        :attr:`stacked`, ``pending(t)`` is the firing of step ``t`` (the delay ring's
        entry), for the carried sources of the last steps whose delivery, and so their
        counts, would come after the run."""
        st = self.stacked
        if st is not None and self.lag and pending is not None:
            for t in range(max(0, self.steps - self.lag), self.steps):
                ent = pending(t)
                if ent is None or not ent[1].size:
                    continue
                late = st.carrier_delay[ent[1]] > self.steps - 1 - t
                if not late.any():
                    continue
                sub = (ent[0][late], ent[1][late], ent[2][late])
                if st.tail is not None:
                    self.eng._deliver(self.buf[t - self.t0], st.tail, sub, True, self.batch)
                else:
                    self._tail_pack(t, sub)
        if self.steps > self.t0:
            self._flush(self.steps - self.t0)
        self.wait()
        cnt = {"sops": self.core["sops"], "updates": self.core["updates"],
               **{k: self.core[k] for k in self.eng.COUNT_BINS if k != "sops"}}
        if self.pair_msgs is not None:
            cnt["pair_msgs"] = self.pair_msgs
        costs = None
        if self.stream is not None:
            costs = self.stream.finish(link_totals=None if self.stream.link_hops is not None
                                       else link_totals(self.eng, self.fires))
        return cnt, costs


def count_layout(eng: Engine, tot: sp.csr_matrix, ip: np.ndarray, neuron: np.ndarray
                 ) -> None:
    """What the engine knows of its counter matrix without making it (it is made on first
    use, :func:`build_count_matrix`; a ``"pack"``ed run never needs it): ``count_slices``,
    ``count_nnz`` and ``count_dtype``, the dtype the per-step kernel reads it in
    (float32 where every bin's largest possible step total, all sources firing, is
    exact there: below 2**24). Keeps ``tot`` for the matrix."""
    c, n = eng.n_cores, eng.N
    eng.count_slices = {k: slice(i * c, (i + 1) * c) for i, k in enumerate(eng.COUNT_BINS)}
    n_inp = int(ip[-1] - ip[n])
    eng.count_nnz = int(tot.nnz + (eng._src_msgs > 0).sum() + (eng._src_local > 0).sum()
                        + n_inp + neuron.sum())
    per_bin = [np.bincount(eng.slot_core[eng.row_slot], weights=eng.row_degree,
                           minlength=c),
               np.bincount(eng.src_core[neuron], weights=eng._src_msgs[neuron], minlength=c),
               np.bincount(eng.src_core[neuron], weights=eng._src_local[neuron],
                           minlength=c),
               row_counts(tot.indices[int(ip[n]):], c),
               np.bincount(eng.src_core[neuron], minlength=c)]
    rowmax = max(float(v.max(initial=0)) for v in per_bin)
    eng.count_dtype = np.dtype(np.float32 if rowmax < F32_EXACT else np.float64)
    eng._count_src = (tot, ip, neuron)


def build_count_matrix(eng: Engine, keep: np.ndarray | None = None) -> sp.csc_matrix:
    """The engine's counter matrix (bins x sources, CSC), in float64: what one spike of
    a source adds to each per-core counter of its step, delivered like the synapses
    (``counting.Counting``); with ``keep``, only those sources' columns (the others
    empty).

    Per source: its synapses on each destination core (``tot``, the synaptic
    operations there); for a neuron, its messages (destination cores other than its
    own) and local delivery (0 / 1) on its own core, and its spike; for an input
    channel, one input message on every destination core. Bins: :attr:`COUNT_BINS`,
    each a slice of ``count_slices``. Counts are integers in float64, so the sums are
    exact. The column's rows are in bin order, so the matrix is the synapse-per-core
    matrix and a small one of the other bins side by side (stacked with scipy's
    compiled ``csr_hstack``: no sort of the ~1e8 entries). Messages per core pair
    are not bins here (there can be millions of pairs): ``counting.Counting`` makes
    them from the firing sources and ``src_pair``.
    """
    tot, ip, neuron = eng._count_src
    c, n_src, n = eng.n_cores, eng.n_src, eng.N
    ar = np.arange(n_src, dtype=np.int64)
    inp_src = np.repeat(ar[n:], np.diff(ip[n:]))
    kinds = [  # (sources, column in the extra bins, value), in bin order per source
        (ar[eng._src_msgs > 0], eng.src_core[eng._src_msgs > 0],
         eng._src_msgs[eng._src_msgs > 0]),
        (ar[eng._src_local > 0], c + eng.src_core[eng._src_local > 0],
         np.ones(int((eng._src_local > 0).sum()))),
        (inp_src, 2 * c + tot.indices[int(ip[n]):].astype(np.int64),
         np.ones(inp_src.shape[0])),
        (ar[neuron], 3 * c + eng.src_core[neuron], np.ones(int(neuron.sum()))),
    ]
    data, indices, indptr = tot.data, tot.indices, tot.indptr
    if keep is not None:
        kinds = [(r[keep[r]], k[keep[r]], v[keep[r]]) for r, k, v in kinds]
        lens = np.diff(ip)
        ent = np.repeat(keep, lens)
        indptr = np.zeros(ip.shape[0], dtype=ip.dtype)
        np.cumsum(lens * keep, out=indptr[1:])
        data, indices = data[ent], indices[ent]
    rows = np.concatenate([k[0] for k in kinds])
    extra = sp.csr_matrix((np.concatenate([k[2] for k in kinds]).astype(np.float64),
                           (rows, np.concatenate([k[1] for k in kinds]))),
                          shape=(n_src, 4 * c))
    extra.sum_duplicates()
    syn = sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=(n_src, c),
                        copy=False)
    mat = sp.hstack([syn, extra], format="csr").T
    del syn, extra
    mat = sp.csc_matrix((mat.data, mat.indices, mat.indptr), shape=mat.shape, copy=False)
    mat.has_sorted_indices = True
    narrow_indices(mat)
    return mat


def concat_active(bs: list, ss: list, ps: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (batch index, source, payload) triple of arrays from per-part lists."""
    if not ss:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    if len(ss) == 1:
        return bs[0].astype(np.int64), ss[0].astype(np.int64), ps[0]
    return (np.concatenate(bs).astype(np.int64), np.concatenate(ss).astype(np.int64),
            np.concatenate(ps))


def core_pairs(eng: Engine) -> np.ndarray:
    """Sorted keys ``src_core * n_cores + dst_core`` of the core pairs that exchange
    messages (from the engine's inter-core entries)."""
    key = np.repeat(eng.src_core, np.diff(eng._noc_ptr)) * eng.n_cores
    key += eng._noc_core
    return np.unique(key)


#: inter-core entries handled at once by the per-source cost and link-load loops (and
#: entries by the build's per-core counts): their int64 / float64 temporaries stay well
#: below glibc's largest heap allocation (32 MiB; a larger one is fresh memory from the
#: system each time, slow to touch: docs/benchmarks.md, first touch)
CHUNK = 1 << 20


def _ranges(ip: np.ndarray):
    """Consecutive source ranges ``(s0, s1)`` of about :data:`CHUNK` entries each."""
    n_src = ip.shape[0] - 1
    s0 = 0
    while s0 < n_src:
        s1 = int(np.searchsorted(ip, ip[s0] + CHUNK, side="right")) - 1
        s1 = min(max(s1, s0 + 1), n_src)
        yield s0, s1
        s0 = s1


def _chunks(eng: Engine, it: type = np.int64):
    """``(s0, s1, a, b)``: consecutive source ranges and their inter-core entries
    (source core ``a``, destination core ``b``), about :data:`CHUNK` entries each."""
    ip = eng._noc_ptr
    for s0, s1 in _ranges(ip):
        if int(ip[s1]) > int(ip[s0]):
            yield (s0, s1, *_chunk(eng, s0, s1, it))


def _chunk(eng: Engine, s0: int, s1: int, it: type = np.int64
           ) -> tuple[np.ndarray, np.ndarray]:
    """The inter-core entries (source core, destination core) of sources ``s0:s1``."""
    ip = eng._noc_ptr
    a = np.repeat(eng.src_core[s0:s1].astype(it), np.diff(ip[s0:s1 + 1]))
    return a, eng._noc_core[int(ip[s0]):int(ip[s1])].astype(it)


def _leg_plan(eng: Engine, legs: tuple, c: int, ex: int
              ) -> tuple[MeshPlan, np.ndarray, np.ndarray]:
    """The mesh's :class:`~nmcompiler.backends.emulator.costs.MeshPlan` over the legs the
    engine's inter-core entries use, and per entry (source core a, destination core b)
    the plan's index of its x leg (key ``a * ex + column(b)``) and of its y leg (key
    ``row(a) * n_cores + b``): built once per engine (two ints per entry)."""
    if getattr(eng, "_leg_plan_cache", None) is None:
        ey = int(legs[1].max(initial=0)) + 1
        it = np.int64 if max(c * ex, c * ey) >= 2**31 else np.int32
        xc, yc = (v.astype(it) for v in legs)
        kx = np.empty(int(eng._noc_ptr[-1]), dtype=it)
        ky = np.empty_like(kx)
        seen = (np.zeros(c * ex, dtype=bool), np.zeros(ey * c, dtype=bool))
        ip = eng._noc_ptr
        ranges = [(s0, s1) for s0, s1 in _ranges(ip) if int(ip[s1]) > int(ip[s0])]
        spans = [(int(ip[s0]), int(ip[s1])) for s0, s1 in ranges]
        pool = threads_pool()

        def keys_of(r: tuple[int, int]) -> None:  # (chunks write apart; "seen" is a set)
            s0, s1 = r
            a, b = _chunk(eng, s0, s1, it)
            e0, e1 = int(ip[s0]), int(ip[s1])
            np.multiply(yc[a], c, out=ky[e0:e1])
            ky[e0:e1] += b
            np.multiply(a, ex, out=kx[e0:e1])
            kx[e0:e1] += xc[b]
            seen[0][kx[e0:e1]] = True
            seen[1][ky[e0:e1]] = True

        each(keys_of, ranges, pool)
        plan = eng.costs.mesh_plan(np.flatnonzero(seen[0]), np.flatnonzero(seen[1]))
        del seen
        # each entry's key becomes the plan's index of its leg, chunk by chunk
        for k, size, keys in ((kx, c * ex, plan.x_keys), (ky, ey * c, plan.y_keys)):
            at = np.zeros(size, dtype=it)
            at[keys] = np.arange(keys.shape[0], dtype=it)

            def index_of(sp_: tuple[int, int], k: np.ndarray = k, at: np.ndarray = at
                         ) -> None:
                k[sp_[0]:sp_[1]] = at[k[sp_[0]:sp_[1]]]

            each(index_of, spans, pool)
        eng._leg_plan_cache = (plan, kx, ky)
    return eng._leg_plan_cache


def source_costs(eng: Engine) -> None:
    """Per source: the longest latency of its messages' routes (a step's NoC latency is
    the largest over its firing sources, the same as over its active core pairs) and the
    hop energy of one of its spikes (its messages' routes, or on multicast targets its
    core's tree: the compiled routes' trees where the engine has them), without
    materialising any per-pair route (:meth:`CostTables.pair_costs`)."""
    tab = eng.costs
    ip = eng._noc_ptr
    tab.prepare_pairs(int(ip[-1]))  # made once here, before the chunks read it

    def one(s0: int, s1: int) -> float:
        if int(ip[s1]) == int(ip[s0]):
            return 0.0
        hops, lat, energy = tab.pair_costs(*_chunk(eng, s0, s1))
        cnt = np.diff(ip[s0:s1 + 1])
        full = np.flatnonzero(cnt)
        eng.src_latency[s0 + full] = np.maximum.reduceat(lat, ip[s0:s1][full] - ip[s0])
        if tab.n_links and not tab.multicast:
            # summed one message at a time in core order, as a CSR product sums
            m = sp.csr_matrix((energy, np.zeros(energy.shape[0], dtype=np.int32),
                               ip[s0:s1 + 1] - ip[s0]), shape=(s1 - s0, 1))
            eng.src_hop_energy[s0:s1] = m @ np.ones(1)
        return float(hops.sum())

    # chunks write apart; on several threads where there are several (the hop totals
    # are added in chunk order either way)
    hops_total = 0.0
    for v in ordered(lambda r: one(*r), list(_ranges(ip)), threads_pool()):
        hops_total += v
    eng.noc_hops_total = hops_total
    tree_e = core_trees(tab, lambda: (eng.pair_src, eng.pair_dst))
    if tree_e is not None:
        eng.src_hop_energy[:eng.N] = tree_e[eng.slot_core]


def core_trees(tab: Any, pairs: Callable[[], tuple[np.ndarray, np.ndarray]]
               ) -> np.ndarray | None:
    """On multicast targets with links: attach every core's multicast tree to the cost
    tables (``core_link``: the compiled routes' trees where the tables have them, else the
    trees over the core pairs ``pairs()`` returns) and return per logical core the hop
    energy of one packet along its tree; None elsewhere (unicast routes)."""
    if not (tab.multicast and tab.n_links):
        return None
    rt = tab.routes
    if rt is not None and bool(getattr(rt, "multicast", False)):
        tab.attach_trees(rt.pair_src, rt.pair_dst)
    else:
        tab.attach_trees(*pairs())
    return tab.core_link @ tab.link_energy


_ONES: list[np.ndarray] = [np.ones(0)]


def _ones(n: int) -> np.ndarray:
    """A read-only array of ``n`` ones, kept between calls (fresh memory is slow to
    touch: docs/benchmarks.md, first touch)."""
    if _ONES[0].shape[0] < n:
        arr = np.ones(n)
        arr.flags.writeable = False
        _ONES[0] = arr
    return _ONES[0][:n]


def link_totals(eng: Engine, fires: np.ndarray) -> np.ndarray:
    """``(1, n_links)`` messages on each link over a run whose sources fired ``fires``
    times: multicast trees x spikes per core, or the unicast routes' loads of the
    messages per core pair (the compiler's aggregated loads)."""
    tab = eng.costs
    if not tab.n_links:
        return np.zeros((1, 0))
    if tab.core_link is not None:
        per_core = np.bincount(eng.slot_core, weights=fires[:eng.N], minlength=eng.n_cores)
        return np.asarray(tab.core_link.T @ per_core).reshape(1, -1)
    ip = eng._noc_ptr
    legs = tab.mesh_legs()
    if legs is not None:
        # x legs per (source core, column), y legs per (row, destination core): per chunk
        # of sources one transposed sparse product over its entries keyed by the legs'
        # plan (made once per engine), then the plan's segment sums
        c, (ex, _) = eng.n_cores, tab.target.noc.extent
        plan, kx, ky = _leg_plan(eng, legs, c, ex)
        it = kx.dtype
        nx, ny = plan.x_keys.shape[0], plan.y_keys.shape[0]
        ones = _ones(min(CHUNK, int(ip[-1])) + 1)

        def walk(keys: np.ndarray, n_keys: int) -> np.ndarray:
            out = np.zeros(n_keys)
            for s0, s1 in _ranges(ip):
                e0, e1 = int(ip[s0]), int(ip[s1])
                if e1 > e0:
                    ap = (ip[s0:s1 + 1] - e0).astype(it)
                    f = np.ascontiguousarray(fires[s0:s1], dtype=np.float64)
                    _st.csc_matvec(n_keys, s1 - s0, ap, keys[e0:e1], ones, f, out)
            return out

        # the two walks are apart (each sums in the same order on any thread)
        pool = threads_pool()
        if pool is not None and int(ip[-1]) >= CHUNK:
            fut = pool.submit(walk, kx, nx)
            y_legs = walk(ky, ny)
            x_legs = fut.result()
        else:
            x_legs, y_legs = walk(kx, nx), walk(ky, ny)
        return tab.plan_loads(plan, x_legs, y_legs).reshape(1, -1)
    load = np.zeros(tab.n_links)
    for s0, s1, a, b in _chunks(eng):
        w = np.repeat(fires[s0:s1], np.diff(ip[s0:s1 + 1]))
        keep = w > 0
        if keep.any():
            load += tab.link_loads(a[keep], b[keep], w[keep])
    return load.reshape(1, -1)


def per_population(eng: Engine, fires: np.ndarray) -> dict[str, dict[str, int]]:
    """The run's counters by source, population or input: ``fires`` (firings per source
    over the run) times what one firing adds, summed per population: its synapses
    (``sops_per_src``), its messages (destination cores other than its own) and, for a
    neuron, its spike. The totals over sources are the run's ``spikes``, ``sops`` and
    ``messages`` (an input's spikes are not a core's: 0; docs/emulator.md). Integer sums
    in float64: exact."""
    f = np.asarray(fires, dtype=np.float64)
    msgs = np.diff(eng._noc_ptr).astype(np.float64)
    out: dict[str, dict[str, int]] = {}
    net = eng.net
    sizes = {**{k: p.size for k, p in net.populations.items()},
             **{k: i.size for k, i in net.inputs.items()}}
    for name, size in sizes.items():
        sl = slice(eng.src_off[name], eng.src_off[name] + size)
        out[name] = {
            "spikes": int(round(float(f[sl].sum()))) if name in net.populations else 0,
            "synaptic_ops": int(round(float(f[sl] @ eng.sops_per_src[sl]))),
            "messages": int(round(float(f[sl] @ msgs[sl]))),
        }
    return out


def source_pairs(eng: Engine) -> sp.csr_matrix:
    """``(n_src, n_pairs)`` CSR: per source one message per core pair it reaches (its
    inter-core entries, already grouped by source and sorted by core)."""
    key = np.repeat(eng.src_core, np.diff(eng._noc_ptr)) * eng.n_cores
    key += eng._noc_core
    pair_of = np.searchsorted(eng.pairs, key).astype(eng._noc_core.dtype)
    return sp.csr_matrix((np.ones(pair_of.shape[0]), pair_of, eng._noc_ptr),
                         shape=(eng.n_src, eng.pairs.shape[0]))


def source_links(eng: Engine) -> sp.csr_matrix | None:
    """Per source, its messages' hops per link (``src_pair @ pair_link``), cached; None
    where that matrix would be much larger than the counter matrix (long routes: the
    per-step link hops then go through the core pairs or stay run totals)."""
    if eng._src_link is None:
        if eng.noc_hops_total > max(eng.count_nnz, 100_000):
            eng._src_link = False
        else:
            eng._attach_pairs()
            eng._src_link = (eng.src_pair @ eng.costs.pair_link).tocsr()
    return eng._src_link if eng._src_link is not False else None
