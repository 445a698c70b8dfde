"""Block-wise counting of the emulator's work: per-step, per-core counters and link hops.

:class:`Counting` keeps the counters of a run in blocks of steps (bounded memory, at most
``Engine.COUNTER_BYTES``), delivering a per-core counter of every firing source like the
synapses, and turns each finished block into energy and latency with the cost model
(:class:`~nmcompiler.backends.emulator.costs.CostStream`); beyond the budget it keeps
run totals (docs/emulator.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Counting", "concat_active"]


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

    def __init__(self, eng: Engine, steps: int, batch: int, want_pairs: bool = False
                 ) -> None:
        self.eng, self.steps, self.batch = eng, steps, batch
        c = eng.n_cores
        n_pairs = eng.pairs.shape[0]
        n_links = eng.costs.n_links if eng.costs is not None else 0
        budget = eng.COUNTER_BYTES
        self.keep_core = steps * batch * 6 * c * 8 <= budget
        self.want_pairs = want_pairs
        self.keep_link = steps * ((batch * n_pairs if want_pairs else 0) + n_links) * 8 \
            <= budget
        self.src_link = eng._source_links() if (self.keep_link and n_links) else None
        if self.keep_link and n_links and not want_pairs and self.src_link is None:
            # per-step link hops would cost more than the counting itself (long routes
            # on a large mesh): keep their totals; the per-step energy does not need them
            self.keep_link = False
        bins = eng.count_mat.shape[0]
        self.block = max(1, min(steps, self.BLOCK_BYTES // max(batch * bins * 8, 1)))
        self.buf = np.zeros((self.block, batch, bins), dtype=eng.count_mat_step.dtype)
        self.t0 = 0
        self.log: list[tuple[int, np.ndarray, np.ndarray]] = []
        rows = steps if self.keep_core else 1
        self.core = {k: np.zeros((rows, batch, c)) for k in ("updates",) + eng.COUNT_BINS}
        self.fires = np.zeros(eng.n_src)
        self.pair_msgs = np.zeros((steps, batch, n_pairs)) if (
            self.keep_link and want_pairs) else None
        self.stream = None
        if eng.costs is not None:
            from .costs import CostStream

            self.stream = CostStream(eng.costs, steps, batch, c, keep_links=self.keep_link)

    def step(self, t: int, ent: tuple) -> None:
        """Counters of step ``t``: the columns of the firing sources ``ent``."""
        if t - self.t0 == self.block:
            self._flush(t)
        if ent[1].size:
            self.eng._deliver(self.buf[t - self.t0], self.eng.count_mat_step, ent, True,
                              self.batch)
            self.log.append((t - self.t0, ent[0], ent[1]))

    def _flush(self, t_end: int) -> None:
        eng, nb, batch = self.eng, t_end - self.t0, self.batch
        blk = self.buf[:nb].astype(np.float64)  # exact integers either way
        c = eng.n_cores
        part = {k: blk[:, :, sl] for k, sl in eng.count_slices.items()}
        if eng.time_stepped:
            upd = np.broadcast_to(eng.core_neurons.astype(np.float64), (nb, batch, c))
        else:
            upd = part["sops"]
        part["updates"] = upd
        if self.log:
            j = np.concatenate([np.full(s.shape[0], jj, dtype=np.int64)
                                for jj, _, s in self.log])
            b = np.concatenate([bb for _, bb, _ in self.log])
            src = np.concatenate([s for _, _, s in self.log])
        else:
            j = b = src = np.zeros(0, dtype=np.int64)
        self.fires += np.bincount(src, minlength=eng.n_src)
        lh = None
        if self.keep_link and self.stream is not None and eng.costs.n_links:
            # the log is in step order: a CSR matrix (step, source) directly
            ip = np.zeros(nb + 1, dtype=np.int64)
            np.cumsum(np.bincount(j, minlength=nb), out=ip[1:])
            fs = sp.csr_matrix((np.ones(src.shape[0]), src, ip), shape=(nb, eng.n_src))
            if self.src_link is not None:
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
            self.pair_msgs[self.t0:t_end] = (fm @ eng.src_pair).toarray().reshape(
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
            self.stream.add(self.t0, part, noc, hop_e, lh)
        if self.keep_core:
            for k, v in part.items():
                self.core[k][self.t0:t_end] = v
        else:
            for k, v in part.items():
                self.core[k][0] += v.sum(axis=0)
        self.buf[:nb] = 0.0
        self.log = []
        self.t0 = t_end

    def finish(self) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
        """The counters (per step or totals) and the costs of the run."""
        self._flush(self.steps)
        cnt = {"sops": self.core["sops"], "updates": self.core["updates"],
               **{k: self.core[k] for k in self.eng.COUNT_BINS if k != "sops"}}
        if self.pair_msgs is not None:
            cnt["pair_msgs"] = self.pair_msgs
        costs = None
        if self.stream is not None:
            pair_tot = self.eng.src_pair.T @ self.fires
            costs = self.stream.finish(pair_tot)
        return cnt, costs


def concat_active(bs: list, ss: list, ps: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (batch index, source, payload) triple of arrays from per-part lists."""
    if not ss:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    if len(ss) == 1:
        return bs[0].astype(np.int64), ss[0].astype(np.int64), ps[0]
    return (np.concatenate(bs).astype(np.int64), np.concatenate(ss).astype(np.int64),
            np.concatenate(ps))
