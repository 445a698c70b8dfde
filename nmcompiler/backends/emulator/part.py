"""One worker's part of a distributed emulation: the neurons of some chips and the
synapses onto them, stepped exactly as :class:`~nmcompiler.backends.emulator.engine.Engine`
steps them (docs/scale.md, "Emulation beyond one machine").

A :class:`PartEngine` holds, for the cores it owns, the state of their neurons and every
synapse whose *post* neuron is on them (rows), with the sources (columns) kept in the
single-process engine's order, so every sum is added in the same order and the numbers
are the same bit for bit. Spikes of sources on other workers arrive after each block of
steps (the block is never longer than the smallest delay of a synapse that crosses
workers, so they arrive before they are due) and go into the same delay ring.

Counters are counted where the synapses are: a worker counts, for its destination cores,
the synaptic operations, local deliveries, input messages and the messages sent to them
(on the source's core), and the spikes of its own neurons. Every (source, destination
core) entry of the single-process counter matrix is counted by exactly one worker, so the
per-core sums over workers are the single-process counters (integers: exact in any order).
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.connectivity import Sparse
from nmcompiler.ir.expand import projection_coo
from nmcompiler.ir.models import canonical
from nmcompiler.ir.network import Network
from nmcompiler.quantization import ProjectionQuant, QuantizationInfo
from nmcompiler.targets.families import loihi as la

from .arith import SlotParams, make_arith
from .costs import CostTables
from .delivery import threads_pool
from .engine import Engine
from .slots import slot_layout
from .sparse import F32_EXACT, narrow_indices, pow2_unit

__all__ = ["PartEngine", "slot_layout"]


class PartEngine(Engine):
    """The part of a network's emulation that runs on one worker (module docstring).

    Args:
        net: the (quantised, compiled) network, whole.
        family, formats, time_stepped: as :class:`Engine`'s.
        neuron_core: ``(n_neurons,)`` logical core of every neuron in network order.
        n_cores: logical cores of the whole network.
        own_cores: ``(n_cores,)`` bool: the cores this part holds.
        target: the Target (for the cost tables) or None; ``physical`` its placement.
    """

    #: the whole network's :attr:`Engine.weight_unit` (:meth:`set_global`; a part's own
    #: weights are not the network's)
    _weight_unit: float | None = 1.0

    # the engine's core pairs are built on first use from its own inter-core entries; a
    # part holds only its share of them and sets them itself (plain attributes here)
    pairs = None  # type: ignore[assignment]
    pair_src = None  # type: ignore[assignment]
    pair_dst = None  # type: ignore[assignment]
    src_pair = None  # type: ignore[assignment]

    def __init__(self, net: Network, *, family: str, formats: Any, neuron_core: np.ndarray,
                 n_cores: int, own_cores: np.ndarray, target: Any = None,
                 physical: np.ndarray | None = None, time_stepped: bool = True) -> None:
        self.net = net
        self.family = family
        self._formats = formats
        self.time_stepped = time_stepped
        lay = slot_layout(net)
        self.layout = lay
        self.n_cores = c = int(n_cores)
        slot_core = np.asarray(neuron_core, dtype=np.int64)[lay.slot_global]
        self.g_slot_core = slot_core
        own = np.flatnonzero(np.asarray(own_cores, dtype=bool)[slot_core])
        self.own = own  # global slots of this part, ascending
        self.N = n = int(own.shape[0])
        self.loc_of = np.full(lay.n, -1, dtype=np.int64)
        self.loc_of[own] = np.arange(n)
        self.pops = lay.pops
        self.slot_off, self.pop_index = {}, {}
        for name in lay.pops:
            s0, m = lay.slot_off[name], net.populations[name].size
            lo, hi = np.searchsorted(own, [s0, s0 + m])
            self.slot_off[name] = int(lo)
            self.pop_index[name] = own[lo:hi] - s0  # indices within the population
        lb = np.searchsorted(own, lay.level_bounds)
        self.level_slices = [slice(int(lb[k]), int(lb[k + 1])) for k in range(len(lb) - 1)]
        self.n_levels = len(self.level_slices)
        self.slot_core = slot_core[own]
        self.core_neurons_all = np.bincount(slot_core, minlength=c)
        q = QuantizationInfo.of(net) or QuantizationInfo()
        self._params_of(q)
        self._synapses_of(q)
        self.costs = None
        if target is not None:
            self.costs = CostTables(target, physical, c)
        self._count_of()
        # what a run needs of the network; the network itself is dropped (a part keeps
        # only its own state: docs/scale.md)
        self.meta = SimpleNamespace(
            name=net.name, outputs=[(o.name, o.source) for o in net.outputs.values()],
            probes=[p.key for p in net.probes],
            # (name, first source, size, is a population) in the single-process engine's
            # per-population order: populations, then inputs
            sources=[(nm, lay.src_off[nm], p.size, True) for nm, p in net.populations.items()]
            + [(nm, lay.src_off[nm], i.size, False) for nm, i in net.inputs.items()],
            noise={nm: (int(canonical(net.populations[nm].model)["seed"]),
                        net.populations[nm].size) for nm, *_ in self.noisy_parts})
        self.net = None  # type: ignore[assignment]

    def _pop_kind(self, pop: str) -> tuple[bool, bool]:
        """:meth:`Engine._pop_kind` from the whole network's parameters (this part's
        slots are only some of a population's)."""
        return self.pop_spiking.get(pop, False), self.pop_binary[pop]

    # ------------------------------------------------------------------ parameters
    def _params_of(self, q: QuantizationInfo) -> None:
        """:meth:`Engine._build_params` on the whole network, then this part's slots."""
        lay = self.layout
        full = SimpleNamespace(net=self.net, N=lay.n, pops=lay.pops, slot_off=lay.slot_off,
                               family=self.family)
        Engine._build_params(full, q)  # type: ignore[arg-type]
        p, own = full.params, self.own
        self.pop_spiking = {nm: bool(p.spiking[lay.slot_off[nm]]) for nm in lay.pops
                            if self.net.populations[nm].size}
        # the dtype of a population's recorded spikes (Engine.record_dtype)
        self.pop_binary = {nm: not bool((p.graded_max[lay.slot_off[nm]:lay.slot_off[nm]
                                                      + self.net.populations[nm].size]
                                         > 0).any()) for nm in lay.pops}
        self.g_graded = p.graded_max > 0
        self.max_pop_payload = float(max(1, int(p.graded_max.max(initial=0))))
        self.integer_params = full.integer_params
        kw = {f: getattr(p, f)[own] for f in SlotParams.__dataclass_fields__ if f != "extra"}
        self.params = SlotParams(extra={k: v[own] for k, v in p.extra.items()}, **kw)
        # noisy populations: (name, local slice, sd, indices within the population)
        self.noisy_parts = []
        for name, _, sd, _ in full.noisy:
            idx = self.pop_index[name]
            if idx.size:
                s0 = self.slot_off[name]
                self.noisy_parts.append((name, slice(s0, s0 + idx.size), sd, idx))
        del full

    # ------------------------------------------------------------------ synapses
    def _synapses_of(self, q: QuantizationInfo) -> None:
        """The synapses onto this part's slots, grouped as :meth:`Engine._build_synapses`
        groups them, with the weights transformed on whole projections (Loihi's sign
        mode depends on all of a projection's weights)."""
        net, lay, n = self.net, self.layout, self.N
        parts: dict[tuple[int, bool, int], list] = {}
        seg_rows: list[tuple[int, int, int, int]] = []
        n_rows = n
        integer = True
        self.cross_delay: tuple[int, str] | None = None  # smallest delay from another part
        own_src = np.zeros(lay.n_src, dtype=bool)
        own_src[self.own] = True
        own_src[lay.n:] = True  # input channels come to every part
        for proj in net.projections.values():
            # a Sparse projection without per-synapse delays keeps its explicit zeros
            # (the single-process engine takes its arrays as they are)
            fast = isinstance(proj.conn, Sparse) and proj.conn.delays is None
            if fast:
                pre, post, w, dl = (proj.conn.pre_index(), np.asarray(proj.conn.indices),
                                    proj.conn.weight, None)
            else:
                pre, post, w, dl = projection_coo(proj.conn, net.shape_of(proj.pre),
                                                  keep_zeros=False)
            w = np.real(np.asarray(w))
            post_g = post + lay.slot_off[proj.post]
            rows = self.loc_of[post_g]
            keep = rows >= 0
            binary, w, shift = self._weights(q, proj, w)
            if shift < 0:
                lo = self.slot_off[proj.post]
                m = int(self.pop_index[proj.post].shape[0])
                seg_rows.append((n_rows, lo, m, -shift))
                rows = rows - lo + n_rows
                n_rows += m
            if integer and not np.all(w - np.trunc(w) == 0):
                integer = False
            d = np.full(pre.shape, int(proj.delay), dtype=np.int64)
            if dl is not None:
                d = d + np.asarray(dl, dtype=np.int64)
            src = pre + lay.src_off[proj.pre]
            rows, src, w, d = rows[keep], src[keep], w[keep], d[keep]
            remote = ~own_src[src]
            if remote.any():
                dmin = int(d[remote].min())
                if self.cross_delay is None or dmin < self.cross_delay[0]:
                    self.cross_delay = (dmin, proj.name)
            lvl = lay.level[proj.post]
            for dd in np.unique(d):
                sel = d == dd
                key = (int(dd), binary, lvl if dd == 0 else -1)
                parts.setdefault(key, []).append((rows[sel], src[sel], w[sel], fast))
        self.integer_local = integer and self.integer_params
        self.n_rows = n_rows
        self.segments = seg_rows
        self.row_slot = np.arange(n_rows, dtype=np.int64)
        for r0, s0, m, _ in seg_rows:
            self.row_slot[r0:r0 + m] = np.arange(s0, s0 + m)
        # columns: every source with a synapse here, and this part's own neurons (their
        # spikes are counted here), in the single-process source order
        cols = [self.own] + [p[1] for ps in parts.values() for p in ps]
        self.cols = np.unique(np.concatenate(cols)) if cols else np.zeros(0, np.int64)
        self.n_src = int(self.cols.shape[0])
        self.own_col = np.searchsorted(self.cols, self.own)
        self.groups = []
        for key in sorted(parts):
            ps = parts[key]
            rows = np.concatenate([p[0] for p in ps])
            cc = np.searchsorted(self.cols, np.concatenate([p[1] for p in ps]))
            vals = np.concatenate([p[2] for p in ps]).astype(np.float64)
            mat = sp.csc_matrix((vals, (rows, cc)), shape=(n_rows, self.n_src))
            mat.sum_duplicates()
            if len(ps) > 1 and all(p[3] for p in ps):
                mat.eliminate_zeros()  # the engine adds these with sparse '+', which drops 0
            narrow_indices(mat)
            self.groups.append((key[0], key[1], key[2], mat))
        self.max_delay = max((g[0] for g in self.groups), default=0)
        absrow = np.zeros(n_rows)
        for _, _, _, m in self.groups:
            absrow += np.bincount(m.indices, weights=np.abs(m.data), minlength=n_rows)
        self.row_abs_max_local = float(absrow.max(initial=0.0))
        self.row_abs_max = self.row_abs_max_local
        self.integer = self.integer_local
        self._mats32 = None
        self._mats_cache: dict[str, list] = {}
        # input channels: (input name, local columns, indices within the input)
        self.in_cols = []
        for name in net.inputs:
            s0 = lay.src_off[name]
            m = net.inputs[name].size
            lo, hi = np.searchsorted(self.cols, [s0, s0 + m])
            if hi > lo:
                self.in_cols.append((name, np.arange(lo, hi), self.cols[lo:hi] - s0))

    def _weights(self, q: QuantizationInfo, proj: Any, w: np.ndarray
                 ) -> tuple[bool, np.ndarray, int]:
        """The family's weights of a whole projection (as :meth:`Engine._build_synapses`
        makes them): (binary payloads, weights, negative Loihi ``weight_exp`` or 0)."""
        fam, net, lay = self.family, self.net, self.layout
        if fam in ("spinnaker", "speck"):
            return False, np.rint(w), 0
        if fam != "loihi":
            return False, w, 0
        e = q.projection(proj.name) or ProjectionQuant()
        exp = e.weight_exp or 0
        nmb = e.num_message_bits
        if nmb is None:
            graded_src = proj.pre in net.populations and \
                bool(self.g_graded[lay.slot_off[proj.pre]])
            nmb = 8 if graded_src else 0
        shift = la.ACT_SHIFT + exp if e.weight_shift is None else e.weight_shift
        mant = np.rint(w / 2.0**shift)
        mode = e.sign_mode or la.sign_mode_of(mant)
        w = la.prepare_weights(mant, num_weight_bits=e.num_weight_bits or 8,
                               sign_mode=mode).astype(np.float64)
        if exp > 0:
            w = w * float(2**exp)
        return int(nmb) == 0, w, min(exp, 0)

    def local_weight_unit(self) -> float:
        """The largest power of two dividing every weight of this part (whole weights;
        inf where it has none, 1 where they are not whole)."""
        if not self.integer_local:
            return 1.0
        return pow2_unit((m.data for *_, m in self.groups), threads_pool())

    def set_global(self, *, integer: bool, row_abs_max: float, weight_unit: float = 1.0
                   ) -> None:
        """The whole network's exactness figures (the accumulation dtype and the
        arithmetic's bounds must be the single-process engine's)."""
        self.integer = integer
        self.row_abs_max = row_abs_max
        self._weight_unit = weight_unit
        self._mats_cache = {}
        self._mats32 = None

    # ------------------------------------------------------------------ counting
    def _count_of(self) -> None:
        """:meth:`Engine._build_counting` for the columns and destination cores here."""
        c = self.n_cores
        n_src = self.n_src
        core32 = self.slot_core.astype(np.int32 if c < 2**31 else np.int64)
        tot = None
        for _, _, _, m in self.groups:
            rows = self.row_slot[m.indices]
            s_ = sp.csr_matrix((np.ones(m.indices.shape[0], dtype=np.int64), core32[rows],
                                m.indptr.copy()), shape=(n_src, c))
            s_.sum_duplicates()
            tot = s_ if tot is None else tot + s_
        if tot is None:
            tot = sp.csr_matrix((n_src, c), dtype=np.int64)
        tot.sum_duplicates()
        src = np.repeat(np.arange(n_src, dtype=np.int64), np.diff(tot.indptr))
        core = tot.indices.astype(np.int64)
        cnt = tot.data
        lay = self.layout
        src_core = np.full(n_src, -1, dtype=np.int64)
        neur = self.cols < lay.n
        src_core[neur] = self.g_slot_core[self.cols[neur]]
        esc = src_core[src]
        local = esc == core
        noc = (esc >= 0) & ~local
        inp = esc < 0
        pair_key = esc * c + core
        self.pairs = np.unique(pair_key[noc])
        self.pair_src, self.pair_dst = np.divmod(self.pairs, c)
        # what the single-process counter matrix's size is made of (see distributed.py)
        self.nnz_parts = {"entries": int(src.shape[0]), "inputs": int(inp.sum()),
                          "local_sources": int(np.unique(src[local]).shape[0]),
                          "noc_sources": self.cols[np.unique(src[noc])]}
        own_cols = self.own_col
        rows = np.concatenate([core, c + esc[noc], 2 * c + core[local], 3 * c + core[inp],
                               4 * c + self.slot_core])
        cc = np.concatenate([src, src[noc], src[local], src[inp], own_cols])
        vals = np.concatenate([cnt.astype(np.float64), np.ones(cc.shape[0] - cnt.shape[0])])
        n_bins = 5 * c
        mat = sp.csc_matrix((vals, (rows, cc)), shape=(n_bins, n_src))
        mat.sum_duplicates()
        narrow_indices(mat)
        self.count_mat = mat
        rowmax = np.bincount(mat.indices, weights=mat.data, minlength=n_bins).max(initial=0)
        self.count_mat_step = mat.astype(np.float32) if rowmax < F32_EXACT else mat
        self.count_dtype = self.count_mat_step.dtype
        self.count_nnz = int(mat.nnz)
        self.count_slices = {k: slice(i * c, (i + 1) * c)
                             for i, k in enumerate(self.COUNT_BINS)}
        pair_of = np.searchsorted(self.pairs, pair_key[noc])
        sm = sp.csr_matrix((np.ones(pair_of.shape[0]), (src[noc], pair_of)),
                           shape=(n_src, self.pairs.shape[0]))
        sm.sum_duplicates()
        self.src_pair = sm
        # per column: its synapses and its messages counted here (per_population)
        self.sops_per_col = np.bincount(src, weights=cnt, minlength=n_src)
        self.msgs_per_col = np.bincount(src[noc], minlength=n_src).astype(np.float64)
        self.src_latency = np.zeros(n_src)
        self.src_hop_energy = np.zeros(n_src)
        self.src_link = None
        self.hops_estimate = 0.0
        if self.costs is not None:
            tab = self.costs
            # this part's pairs only: the multicast trees are the whole network's (the
            # driver sends their energies, worker.PartRunner.configure)
            tab.attach_pairs(self.pair_src, self.pair_dst, trees=False)
            self._source_costs()
            self.hops_estimate = float(
                (sm @ np.asarray(tab.pair_hops, dtype=np.float64)).sum())
            if not tab.multicast:
                self.src_link = (sm @ tab.pair_link).tocsr()

    def _source_costs(self) -> None:
        """Per column, over its messages counted here: the longest route latency and the
        hop energy (unicast routes), as ``counting.source_costs`` makes them for the whole
        engine: the latency a maximum (exact in any order), the energy ``src_pair @
        pair_energy``, summed one message at a time in destination-core order as the
        single-process CSR product sums it. The per-source sums of a source whose messages
        are counted on several parts are made exactly by ``PartRunner.set_hop_energy``
        where the run needs them."""
        tab, sm = self.costs, self.src_pair
        ip = sm.indptr
        full = np.flatnonzero(np.diff(ip))
        if full.size:
            self.src_latency[full] = np.maximum.reduceat(tab.pair_latency[sm.indices],
                                                         ip[full])
        if tab.n_links and not tab.multicast:
            self.src_hop_energy = np.asarray(sm @ tab.pair_energy, dtype=np.float64)

    # ------------------------------------------------------------------ inputs
    def inputs_at(self, arrays: Mapping[str, np.ndarray], t: int, b0: int, b1: int
                  ) -> tuple[list, list, list]:
        """The input channels firing at step ``t`` (samples ``b0:b1``) as (batch, column,
        payload) parts."""
        act_b, act_s, act_p = [], [], []
        for name, cols, idx in self.in_cols:
            xt = arrays[name][t, b0:b1][:, idx]
            b, i = np.nonzero(xt)
            if i.size:
                act_b.append(b)
                act_s.append(cols[i])
                act_p.append(xt[b, i].astype(np.float64))
        return act_b, act_s, act_p

    def noise_rngs(self) -> list:
        """Per noisy population here: (local slice, sd, its generator, indices), seeded
        as the single-process engine seeds it."""
        out = []
        for nm, sl, sd, idx in self.noisy_parts:
            seed, size = self.meta.noise[nm]
            rng = np.random.Generator(np.random.PCG64([seed, zlib.crc32(nm.encode())]))
            out.append((sl, sd, rng, idx, size))
        return out

    def new_arith(self, batch: int, a_bound: float, keep_u: bool) -> Any:
        """The family's arithmetic over this part's slots, started."""
        arith = make_arith(self.family, self.params, self._formats, integer=self.integer)
        arith.init(batch)
        arith.a_bound = a_bound
        arith.keep_u = keep_u
        return arith
