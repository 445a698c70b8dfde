"""The stepping of one worker's part of a distributed emulation (docs/scale.md).

:class:`PartRunner` runs a :class:`~nmcompiler.backends.emulator.part.PartEngine` block
of steps by block of steps, as :meth:`Engine.run` runs the whole network, and packs the
spikes other workers need (``np.packbits``: one bit per (step, sample, exported source),
plus the payloads of graded sources). It is a Dask actor in a distributed run
(:mod:`nmcompiler.backends.emulator.distributed`) and a plain object in tests.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from .counting import concat_active
from .part import PartEngine

__all__ = ["PartRunner"]


class PartRunner:
    """One part's engine and its run state.

    Args:
        compiled_net, kw: :class:`PartEngine`'s arguments.
    """

    def __init__(self, net: Any, **kw: Any) -> None:
        self.eng = PartEngine(net, **kw)
        self.tree_e: np.ndarray | None = None

    # ------------------------------------------------------------------ set-up
    def summary(self) -> dict[str, Any]:
        """What the driver needs to lay out the run: the sources needed from other parts,
        the smallest crossing delay, the exactness figures and the counter-size parts."""
        e = self.eng
        lay = e.layout
        own = np.zeros(lay.n, dtype=bool)
        own[e.own] = True
        cols = e.cols
        needed = cols[(cols < lay.n)]
        needed = needed[~own[needed]]
        return {"needed": needed, "cross_delay": e.cross_delay, "integer": e.integer_local,
                "row_abs_max": e.row_abs_max_local, "weight_unit": e.local_weight_unit(),
                "max_delay": e.max_delay,
                "nnz_parts": e.nnz_parts, "hops_estimate": e.hops_estimate,
                "pairs": e.pairs, "n_neurons": e.N, "n_synapses": int(sum(
                    g[3].nnz for g in e.groups)), "state_bytes": self.state_bytes()}

    def state_bytes(self) -> int:
        """Bytes of this part's engine: synapse and counter matrices, parameters."""
        e = self.eng
        tot = 0
        mats = [g[3] for g in e.groups] + [e.count_mat, e.src_pair]
        if getattr(e, "src_link", None) is not None:
            mats.append(e.src_link)
        for m in mats:
            tot += m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        p = e.params
        tot += sum(getattr(p, f).nbytes for f in p.__dataclass_fields__ if f != "extra")
        tot += sum(v.nbytes for v in p.extra.values())
        return int(tot + e.cols.nbytes + e.own.nbytes)

    def configure(self, *, integer: bool, row_abs_max: float,
                  exports: Mapping[int, np.ndarray], imports: Mapping[int, np.ndarray],
                  tree_energy: np.ndarray | None = None, weight_unit: float = 1.0) -> None:
        """The whole network's exactness figures (with the largest power of two dividing
        all of its weights, :attr:`Engine.weight_unit`), and per other part the global sources
        to send there (``exports``) and receive from there (``imports``), ascending. On
        multicast targets ``tree_energy`` is, per logical core, the hop energy of one
        packet along the core's multicast tree (the whole network's trees, which one part
        cannot build from its own pairs): an own neuron's spike costs its core's."""
        e = self.eng
        e.set_global(integer=integer, row_abs_max=row_abs_max, weight_unit=weight_unit)
        self.tree_e = None if tree_energy is None else np.asarray(tree_energy,
                                                                  dtype=np.float64)
        if self.tree_e is not None:
            e.src_hop_energy = np.zeros(e.n_src)
            e.src_hop_energy[e.own_col] = self.tree_e[e.slot_core]
        self.exports = {int(r): np.searchsorted(e.own, ids) for r, ids in exports.items()}
        self.exp_graded = {r: bool(e.params.graded_max[i].any()) if i.size else False
                           for r, i in self.exports.items()}
        self.imports = {int(r): np.searchsorted(e.cols, ids) for r, ids in imports.items()}
        self.out_meta = e.meta.outputs
        self.probe_keys = e.meta.probes

    # ------------------------------------------------------------------ hop energy
    def _hop_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global source, core-pair key, hop energy of the pair) of every message counted
        here: the terms of the single-process engine's per-source hop energy."""
        e = self.eng
        sm = e.src_pair.tocoo()
        pe = np.asarray(e.costs.pair_energy, dtype=np.float64) if e.costs is not None and \
            e.costs.n_links else np.zeros(e.pairs.shape[0])
        return e.cols[sm.row], e.pairs[sm.col], pe[sm.col]

    def hop_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_hop_entries` of the sources on other parts (sent to their owners)."""
        src, key, pe = self._hop_entries()
        far = self.eng.loc_of[src] < 0
        return src[far], key[far], pe[far]

    def set_hop_energy(self, received: list) -> None:
        """The hop energy of every own neuron, summed over all its messages in the
        single-process order (core pairs ascending, as ``src_pair @ pair_energy``), from
        the entries counted here and those other parts counted (``received``)."""
        import scipy.sparse as sp

        e = self.eng
        if self.tree_e is not None:  # multicast: one tree per spike, on its own core
            self.own_hop = self.tree_e[e.slot_core]
            return
        src, key, pe = self._hop_entries()
        mine = e.loc_of[src] >= 0
        parts = [(src[mine], key[mine], pe[mine])] + list(received)
        src = np.concatenate([p[0] for p in parts])
        key = np.concatenate([p[1] for p in parts])
        pe = np.concatenate([p[2] for p in parts])
        ukey, inv = np.unique(key, return_inverse=True)
        val = np.zeros(ukey.shape[0])
        val[inv] = pe
        sm = sp.csr_matrix((np.ones(src.shape[0]), (e.loc_of[src], inv)),
                           shape=(e.N, ukey.shape[0]))
        sm.sum_duplicates()
        self.own_hop = sm @ val

    def _hop_events(self, j: np.ndarray, b: np.ndarray, src: np.ndarray) -> tuple:
        """(step, sample, global slot, hop energy) of the own neurons' spikes with
        messages, for the driver to add in the single-process order."""
        e = self.eng
        own_of_col = np.full(e.n_src, -1, dtype=np.int64)
        own_of_col[e.own_col] = np.arange(e.N)
        k = own_of_col[src]
        sel = k >= 0
        v = self.own_hop[k[sel]]
        nz = v != 0
        return (j[sel][nz], b[sel][nz] + self.b0, e.own[k[sel]][nz], v[nz])

    # ------------------------------------------------------------------ running
    def start(self, arrays: Mapping[str, np.ndarray], steps: int, b0: int, b1: int, *,
              probes: tuple[str, ...], count: bool, max_in: float, int_in: bool,
              batch_full: int) -> None:
        """Start a run of ``steps`` steps on samples ``b0:b1`` of the (normalised)
        inputs; ``max_in`` / ``int_in`` are the whole input's (the accumulation dtype)."""
        e = self.eng
        self.arrays, self.steps, self.b0, self.b1 = arrays, steps, b0, b1
        self.batch = batch = b1 - b0
        self.batch_full = batch_full
        self.mats = e._matrices(max(max_in, e.max_pop_payload), int_in)
        e._order_cache = None
        self.mdtype = self.mats[0][0][1].dtype if self.mats else np.float64
        keys = list(dict.fromkeys(self.probe_keys + [k for k in probes if "." in k]))
        self.rec_out = {nm: np.zeros((steps, batch, e.pop_index[src].shape[0]),
                                     dtype=e.record_dtype(src, "out"))
                        for nm, src in self.out_meta}
        a_bound = e.row_abs_max * max(max_in, e.max_pop_payload)
        e._i32_direct = a_bound < 2**31  # the port sum's int32 cast (Engine._activation)
        self.arith = e.new_arith(batch, a_bound, any(k.endswith(".u") for k in keys))
        cplx = getattr(self.arith, "complex_v", False)
        self.rec_probe = {k: np.zeros((steps, batch, e.pop_index[k.rsplit(".", 1)[0]].shape[0]),
                                      dtype=np.complex128 if (cplx and k.endswith(".v"))
                                      else e.record_dtype(*k.rsplit(".", 1))) for k in keys}
        self.ring_len = e.max_delay + 1
        self.ring: list[Any] = [None] * self.ring_len
        self.s_full = np.zeros((batch, e.N))
        self.need_s = bool(self.rec_probe) or any(e.pop_spiking.get(src, False)
                                                  for _, src in self.out_meta)
        self.acc_buf = np.zeros((batch, e.n_rows), dtype=self.mdtype)
        e._a_buf = np.zeros((batch, e.N)) if e.segments else None
        self.rngs = e.noise_rngs()
        self.groups = [(g[0], g[1], g[2], m) for g, m in zip(e.groups, self.mats,
                                                                strict=True)]
        self.count = count
        bins = e.count_mat.shape[0]
        self.cbuf = np.zeros((steps, batch, bins), dtype=e.count_mat_step.dtype) \
            if count else None
        self.log: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.n_events = 0
        self.n_spikes = 0
        self.bytes_out = 0
        self.wall = 0.0

    def _counted(self, t: int, ent: tuple) -> None:
        if self.count and ent[1].size:
            self.eng._deliver(self.cbuf[t], self.eng.count_mat_step, ent, True, self.batch)
            self.log.append((t, ent[0], ent[1]))

    def absorb(self, incoming: list) -> None:
        """Spikes of other parts: ``(part, t0, n, packed bits, payloads)`` each; into
        the delay ring at their steps, and counted there."""
        for r, t0, n, packed, pay in incoming:
            cols = self.imports[r]
            bits = np.unpackbits(packed, axis=-1, count=cols.shape[0]).reshape(
                n, self.batch, cols.shape[0])
            tt, b, i = np.nonzero(bits)
            p = np.ones(i.shape[0]) if pay is None else pay
            for k in range(n):
                sel = tt == k
                if not sel.any():
                    continue
                ent = (b[sel].astype(np.int64), cols[i[sel]].astype(np.int64), p[sel])
                t = t0 + k
                slot = t % self.ring_len
                old = self.ring[slot]
                self.ring[slot] = ent if old is None else concat_active(
                    [old[0], ent[0]], [old[1], ent[1]], [old[2], ent[2]])
                self._counted(t, ent)

    def advance(self, t0: int, n: int, incoming: list) -> dict[int, tuple]:
        """Absorb ``incoming``, run steps ``t0 .. t0+n-1``; return per other part the
        packed spikes it needs: ``{part: (packed bits, payloads or None)}``."""
        self.absorb(incoming)
        tw = time.perf_counter()
        e = self.eng
        batch = self.batch
        self._fired = np.zeros((n, batch, e.N), dtype=bool) if self.exports else None
        self._payl = np.zeros((n, batch, e.N)) if self.exports and any(
            self.exp_graded.values()) else None
        for t in range(t0, t0 + n):
            self._step(t, t - t0)
        out = self._pack()
        self.wall += time.perf_counter() - tw
        return out

    def _step(self, t: int, k: int) -> None:
        """One step, as :meth:`Engine.run`'s loop body (``k``: the step in the block)."""
        e, batch, groups = self.eng, self.batch, self.groups
        act_b, act_s, act_p = e.inputs_at(self.arrays, t, self.b0, self.b1)
        acc = self.acc_buf
        acc.fill(0)
        for d, binary, _, m in groups:
            if d == 0 or t - d < 0:
                continue
            ent = self.ring[(t - d) % self.ring_len]
            if ent is not None:
                for r0, blk in m:
                    self.n_events += e._deliver(acc[:, r0:r0 + blk.shape[0]], blk, ent,
                                                binary, batch)
        if self.need_s:
            self.s_full[:] = 0.0
        zero = any(g[0] == 0 for g in groups)
        for lv, sl in enumerate(e.level_slices):
            if lv > 0 or zero:
                cur = concat_active(act_b, act_s, act_p)
                for d, binary, glv, m in groups:
                    if d == 0 and glv == lv and cur[0].size:
                        for r0, blk in m:
                            self.n_events += e._deliver(acc[:, r0:r0 + blk.shape[0]], blk,
                                                        cur, binary, batch)
            if sl.stop > sl.start:
                self._level(acc, sl, k, act_b, act_s, act_p)
        step_act = concat_active(act_b, act_s, act_p)
        self.ring[t % self.ring_len] = step_act if step_act[0].size else None
        self._counted(t, step_act)
        self._record(t)

    def _noise(self, sl: slice) -> np.ndarray:
        """This level's noise: every noisy population's whole draw (all samples, all its
        neurons, as the single-process engine draws it), cut to this part."""
        noise = np.zeros((self.batch, sl.stop - sl.start))
        for nsl, sd, rng, idx, size in self.rngs:
            if sl.start <= nsl.start < sl.stop:
                draw = sd * rng.standard_normal((self.batch_full, size))
                noise[:, nsl.start - sl.start:nsl.stop - sl.start] = \
                    draw[self.b0:self.b1][:, idx]
        return noise

    def _level(self, acc: np.ndarray, sl: slice, k: int, act_b: list, act_s: list,
               act_p: list) -> None:
        """Update the slots of one zero-delay level; their spikes join the step's."""
        e, arith = self.eng, self.arith
        a = e._activation(acc, sl)
        arith.fired = arith.fired_idx = None
        s = arith.step(a, sl, self._noise(sl) if self.rngs else None)
        src = arith.fired if s is None else s
        if self.need_s:
            self.s_full[:, sl] = src
        b, i = arith.fired_entries(s)
        self.n_spikes += int(i.size)
        if i.size:
            li = i + sl.start
            pay = np.ones(i.shape[0]) if s is None else s[b, i]
            if self._fired is not None:
                self._fired[k, b, li] = True
                if self._payl is not None:
                    self._payl[k, b, li] = pay
            act_b.append(b)
            act_s.append(self.eng.own_col[li])
            act_p.append(pay)

    def _pack(self) -> dict[int, tuple]:
        """Per other part, the block's spikes of the sources it needs, bit-packed."""
        out: dict[int, tuple] = {}
        if self._fired is None:
            return out
        for r, idx in self.exports.items():
            bits = self._fired[:, :, idx]
            packed = np.packbits(bits, axis=-1)
            pay = None
            if self.exp_graded[r] and self._payl is not None:
                pay = self._payl[:, :, idx][bits]
            out[r] = (packed, pay)
            self.bytes_out += packed.nbytes + (0 if pay is None else pay.nbytes)
        return out

    def _record(self, t: int) -> None:
        e, arith = self.eng, self.arith
        for nm, src in self.out_meta:
            s0 = e.slot_off[src]
            m_ = e.pop_index[src].shape[0]
            if not m_:
                continue
            if e.pop_spiking[src]:
                self.rec_out[nm][t] = self.s_full[:, s0:s0 + m_]
            else:
                self.rec_out[nm][t] = np.real(arith.state("v")[:, s0:s0 + m_])
        for key, arr in self.rec_probe.items():
            target, var = key.rsplit(".", 1)
            s0 = e.slot_off[target]
            m_ = e.pop_index[target].shape[0]
            if not m_:
                continue
            arr[t] = self.s_full[:, s0:s0 + m_] if var == "spikes" else \
                arith.state(var)[:, s0:s0 + m_]

    def finish(self, incoming: list, *, keep_link: bool, hop_events: bool = False
               ) -> dict[str, Any]:
        """Absorb the last spikes; return the recordings and this part's counters:
        ``counts (T, B, 5 x n_cores)``, ``noc (T, B)`` (largest route latency of the
        step's messages counted here), ``link_hops (T, n_links)`` or None, ``hop_e (T,)``
        and the messages per core pair (``pairs``, ``pair_totals``)."""
        self.absorb(incoming)
        e = self.eng
        res: dict[str, Any] = {
            "outputs": self.rec_out, "probes": self.rec_probe,
            "index": {nm: e.pop_index[nm] for nm in e.pops},
            "events": self.n_events, "spikes": self.n_spikes, "wall_s": self.wall,
            "bytes_out": self.bytes_out, "float32": e._mats32 is not None}
        if not self.count:
            return res
        steps, batch = self.steps, self.batch
        if self.log:
            j = np.concatenate([np.full(s.shape[0], t, dtype=np.int64) for t, _, s in self.log])
            b = np.concatenate([bb for _, bb, _ in self.log])
            src = np.concatenate([s for _, _, s in self.log])
            order = np.argsort(j, kind="stable")
            j, b, src = j[order], b[order], src[order]
        else:
            j = b = src = np.zeros(0, dtype=np.int64)
        noc = np.zeros((steps, batch))
        np.maximum.at(noc, (j, b), e.src_latency[src])
        hop_e = np.bincount(j, weights=e.src_hop_energy[src], minlength=steps)
        fires = np.bincount(src, minlength=e.n_src).astype(np.float64)
        lh = None
        # multicast link hops are spikes per core x the cores' trees: the driver makes
        # them from the summed counters (as the single-process counting does)
        if keep_link and e.costs is not None and e.costs.n_links and e.src_link is not None:
            import scipy.sparse as sp

            ip = np.zeros(steps + 1, dtype=np.int64)
            np.cumsum(np.bincount(j, minlength=steps), out=ip[1:])
            fs = sp.csr_matrix((np.ones(src.shape[0]), src, ip), shape=(steps, e.n_src))
            lh = (fs @ e.src_link).toarray()
        if hop_events:
            res["hop_events"] = self._hop_events(j, b, src)
        res.update(counts=self.cbuf.astype(np.float64), noc=noc, hop_e=hop_e,
                   link_hops=lh, pairs=e.pairs, pair_totals=e.src_pair.T @ fires,
                   per_population=self.per_population(fires))
        return res

    def per_population(self, fires: np.ndarray) -> dict[str, dict[str, int]]:
        """This part's share of the run's counters by source (``counting.per_population``):
        spikes of its own neurons, synaptic operations and messages counted here. Each
        is an integer; their sums over the parts are the single-process figures."""
        e = self.eng
        own = np.zeros(e.n_src, dtype=bool)
        own[e.own_col] = True
        out: dict[str, dict[str, int]] = {}
        for name, s0, size, is_pop in e.meta.sources:
            lo, hi = np.searchsorted(e.cols, [s0, s0 + size])
            f = fires[lo:hi]
            out[name] = {
                "spikes": int(round(float(f[own[lo:hi]].sum()))) if is_pop else 0,
                "synaptic_ops": int(round(float(f @ e.sops_per_col[lo:hi]))),
                "messages": int(round(float(f @ e.msgs_per_col[lo:hi]))),
            }
        return out
