"""The emulator's engine: a compiled network stepped in the target's integer arithmetic.

Design (docs/emulator.md):

* **Slots.** All neurons live in flat state arrays ("slots"), ordered by zero-delay level
  and then by population (network order), so a population is a contiguous slot range and
  the order never depends on the mapping. The partition groups the slots per core through
  ``slot_core`` (index arrays), which only the counters read: the arithmetic of a neuron
  and the delivery time of a spike (its projection's delay) are the same whatever the
  partition and placement, so mapping invariance (docs/architecture.md#fidelity) holds by
  construction and the fidelity tests check it bit for bit.
* **Synapses.** Every synapse lands in one *group* keyed by its total delay ``d``
  (projection delay + per-synapse delay), whether its payload counts as 1 (Loihi binary
  axons) and, for ``d = 0``, the zero-delay level of its target. A group is one
  ``scipy.sparse`` CSC matrix ``rows x sources``; a step adds the columns of the sources
  that fired at ``t - d``, times their payloads, with a zero-copy call of scipy's
  ``csc_matvec`` (see :meth:`Engine._deliver`; work in proportion to the synaptic
  events), row block by row block only for very large networks (:attr:`Engine.BLOCK_ROWS`).
  Integer sums are exact in float32 when a per-row bound allows (2**24) and in float64
  otherwise. Loihi projections with a negative ``weight_exp`` get their own rows so the
  shift floors the projection's sum, as Lava does.
* **Counters** come from one more sparse matrix (per source, its synapses per
  destination core, messages, local and input deliveries and spike, one row per bin),
  added per step by the same kernel; :mod:`.counting` and :mod:`.costs` turn them into
  hops per link, NoC latency, time and energy from the routes' formulas.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.connectivity import Sparse
from nmcompiler.ir.errors import BackendError, InputError
from nmcompiler.ir.expand import projection_coo
from nmcompiler.ir.models import Reset, canonical
from nmcompiler.ir.network import Network
from nmcompiler.ir.simulate import normalise_inputs
from nmcompiler.ir.verify import verify
from nmcompiler.quantization import PopulationQuant, ProjectionQuant, QuantizationInfo
from nmcompiler.targets.families import loihi as la

from . import core_counts as _cc
from . import counting as _cnt
from .arith import RESET_HARD, RESET_NONE, RESET_SOFT, SlotParams, make_arith
from .costs import CostTables, evaluate
from .counting import Counting, concat_active
from .delivery import SplitDelivery, default_threads, deliver, threads_pool
from .folding import StackedCounts, stack_counts
from .slots import slot_layout
from .sparse import (
    F32_EXACT,
    cast_data,
    group_weights,
    integer_valued,
    narrow_indices,
    part_coo,
    part_csc,
    pow2_unit,
    row_sums,
)

__all__ = ["Engine", "EngineResult"]

_RESET_CODE = {Reset.HARD: RESET_HARD, Reset.SOFT: RESET_SOFT, Reset.NONE: RESET_NONE}


@dataclass
class EngineResult:
    """Raw result of :meth:`Engine.run` (the backend wraps it in a RunResult)."""

    outputs: dict[str, np.ndarray]
    probes: dict[str, np.ndarray]
    counters: dict[str, np.ndarray]
    steps: int
    batched: bool
    wall_s: float
    synaptic_events: int
    spikes: int = 0
    #: time and energy (:func:`~nmcompiler.backends.emulator.costs.evaluate`'s keys), or
    #: None (no counters or no cost tables)
    costs: dict[str, Any] | None = None
    #: whether ``counters`` hold one row per step (else one row: the run's totals) and
    #: whether ``link_hops`` / ``pair_msgs`` do (see :attr:`Engine.COUNTER_BYTES`)
    counters_per_step: bool = True
    link_hops_per_step: bool = True
    #: per source (population or input): ``spikes``, ``synaptic_ops``, ``messages``
    per_population: dict[str, dict[str, int]] = field(default_factory=dict)


def check_inputs(net: Any, inputs: Mapping[str, np.ndarray] | None, steps: int | None,
                  family: str) -> tuple[dict, int, int, bool, float, bool]:
    """The input checks of a run (:meth:`Engine.run`, the distributed run): the arrays,
    steps, batch, whether batched, the largest payload (at least 1) and whether all are
    integers; non-integer values are refused outside the generic ``emulator`` family."""
    arrays, steps, batch, batched = normalise_inputs(net, inputs or {}, steps)
    max_in, int_in = 1.0, True
    for name, x in arrays.items():
        whole = not x.size or bool(np.all(np.equal(np.mod(x, 1), 0)))
        int_in = int_in and whole
        if family != "emulator" and not whole:
            raise InputError(
                f"input '{name}' holds non-integer values; the {family} arithmetic "
                "takes integer spikes or payloads", obj=name, rule="integer input",
                hint="round the input or run on the 'emulator' target")
        if x.size:
            max_in = max(max_in, float(np.abs(x).max()))
    return dict(arrays), steps, batch, batched, max_in, int_in


class Engine:
    """Precomputed, vectorised stepping of one network on one mapping.

    Args:
        net: the (quantised) network.
        family: the arithmetic (``"emulator"``, ``"loihi"``, ``"spinnaker"``, ``"speck"``).
        formats: the target's number formats (``target.formats``) or None.
        neuron_core: ``(n_neurons,)`` logical core of every neuron in network order
            (``Partition.neuron_core``); None = everything on core 0.
        n_cores: number of logical cores (default ``neuron_core.max() + 1``).
        costs: routes and cost tables (:class:`~nmcompiler.backends.emulator.costs.CostTables`) or
            None (then counters are counted but no time or energy is computed).
        time_stepped: neuron updates every step for every neuron (else one per SOP).
    """

    def __init__(
        self,
        net: Network,
        *,
        family: str = "emulator",
        formats: Any = None,
        neuron_core: np.ndarray | None = None,
        n_cores: int | None = None,
        costs: CostTables | None = None,
        time_stepped: bool = True,
        check: bool = True,
    ) -> None:
        if check:
            verify(net)
        self.net = net
        self.family = family
        self.costs = costs
        self.time_stepped = time_stepped
        self._formats = formats
        q = QuantizationInfo.of(net) or QuantizationInfo()
        lay = slot_layout(net)
        self.pops = lay.pops
        self.slot_off: dict[str, int] = lay.slot_off
        self.N = n = lay.n
        self.n_levels = len(lay.level_bounds) - 1
        b = lay.level_bounds
        self.level_slices = [slice(b[k], b[k + 1]) for k in range(self.n_levels)]
        self.pop_level = lay.level
        self.src_off = lay.src_off
        self.n_src = lay.n_src
        slot_global = lay.slot_global
        if neuron_core is None:
            slot_core = np.zeros(n, dtype=np.int64)
        else:
            nc = np.asarray(neuron_core, dtype=np.int64)
            if nc.shape != (n,):
                raise BackendError(
                    f"the partition covers {nc.shape[0]} neurons, the network has {n}",
                    obj=net.name, rule="partition size", need=n, limit=int(nc.shape[0]),
                    hint="compile the network again")
            slot_core = nc[slot_global]
        self.n_cores = int(n_cores if n_cores is not None else (slot_core.max(initial=-1) + 1))
        self.n_cores = max(self.n_cores, 1)
        self.slot_core = slot_core
        self.core_neurons = np.bincount(slot_core, minlength=self.n_cores)
        self._build_params(q)
        self._build_synapses(q)
        self._build_counting()

    # ------------------------------------------------------------------ parameters
    def _build_params(self, q: QuantizationInfo) -> None:
        net, n = self.net, self.N
        complex_v = any(np.asarray(canonical(net.populations[p].model)["lam"]).dtype.kind == "c"
                        for p in self.pops)
        arr = {k: np.zeros(n, dtype=np.complex128 if (k == "lam" and complex_v) else np.float64)
               for k in ("alpha_u", "lam", "theta", "bias", "v_reset")}
        reset = np.zeros(n, dtype=np.int8)
        refr = np.zeros(n, dtype=np.int64)
        gmax = np.zeros(n, dtype=np.int64)
        fat = np.zeros(n, dtype=bool)
        spiking = np.zeros(n, dtype=bool)
        extra = {k: np.zeros(n, dtype=np.int64)
                 for k in ("du", "dv", "vth", "bias_mant", "bias_exp")}
        self.noisy: list[tuple[str, slice, float, np.random.Generator | None]] = []
        self.integer_params = True
        for name in self.pops:
            pop = net.populations[name]
            p = canonical(pop.model)
            sl = slice(self.slot_off[name], self.slot_off[name] + pop.size)
            for k in arr:
                arr[k][sl] = np.broadcast_to(np.asarray(p[k]), (pop.size,))
            reset[sl] = _RESET_CODE[p["reset"]]
            refr[sl] = int(p["refractory"])
            gmax[sl] = int(p["graded_max"]) if p["graded"] else 0
            fat[sl] = bool(p["fire_at_threshold"])
            spiking[sl] = bool(p["spiking"])
            if p["noise"] and p["spiking"]:
                self.noisy.append((name, sl, float(p["noise"]), None))
            if self.family == "loihi":
                e = q.population(name) or PopulationQuant(scale=1.0)
                alpha_u, lam = np.real(p["alpha_u"]), np.real(p["lam"])
                derived = {
                    "du": la.decay_from_factor(alpha_u, current=True),
                    "dv": la.decay_from_factor(lam, current=False),
                    "vth": np.rint(np.minimum(np.real(p["theta"]) / 64.0, 2**17 - 1)),
                }
                bm, be = la.bias_from_float(np.real(p["bias"]), 64.0)
                derived.update(bias_mant=bm, bias_exp=be)
                for k in extra:
                    val = getattr(e, k)
                    val = derived[k] if val is None else val
                    extra[k][sl] = np.broadcast_to(np.asarray(val, dtype=np.int64), (pop.size,))
        self.params = SlotParams(
            alpha_u=np.real(arr["alpha_u"]), lam=arr["lam"] if complex_v else arr["lam"].real,
            theta=np.real(arr["theta"]), bias=np.real(arr["bias"]),
            v_reset=np.real(arr["v_reset"]), reset=reset, refractory=refr, graded_max=gmax,
            fire_at_threshold=fat, spiking=spiking, extra=extra,
        )

    # ------------------------------------------------------------------ synapses
    def _build_synapses(self, q: QuantizationInfo) -> None:
        net, n = self.net, self.N
        fam = self.family
        parts: dict[tuple[int, bool, int], list] = {}
        seg_rows: list[tuple[int, int, int, int]] = []  # (row0, slot0, size, shift)
        n_rows = n
        self.graded_sources = np.zeros(self.n_src, dtype=bool)
        for name in self.pops:
            if self.params.graded_max[self.slot_off[name]] > 0:
                s0 = self.slot_off[name]
                self.graded_sources[s0:s0 + net.populations[name].size] = True
        integer = True
        for proj in net.projections.values():
            # a Sparse projection without per-synapse delays is already CSC over its
            # sources: its arrays become the group matrix directly (no COO round trip)
            fast = isinstance(proj.conn, Sparse) and proj.conn.delays is None
            if fast:
                pre = post = dl = None
                w = proj.conn.weight
            else:
                pre, post, w, dl = projection_coo(proj.conn, net.shape_of(proj.pre),
                                                  keep_zeros=False)
                dl = None if dl is None else dl.astype(np.int64)
            w = np.real(np.asarray(w))
            binary = False
            row_off = self.slot_off[proj.post]
            if fam == "loihi":
                e = q.projection(proj.name) or ProjectionQuant()
                exp = e.weight_exp or 0
                nmb = e.num_message_bits
                if nmb is None:
                    graded_src = proj.pre in net.populations and \
                        self.params.graded_max[self.slot_off[proj.pre]] > 0
                    nmb = 8 if graded_src else 0
                binary = int(nmb) == 0
                shift = la.ACT_SHIFT + exp if e.weight_shift is None else e.weight_shift
                # whole numbers below 2**9 x 2**exp: exact in float32 up to exp 15, the
                # dtype the kernel reads them in where the sums are exact (no float64
                # copy is made unless a run needs float64 sums)
                w, _ = la.synapse_weights(w, weight_shift=shift, weight_exp=exp,
                                          num_weight_bits=e.num_weight_bits or 8,
                                          sign_mode=e.sign_mode or None,
                                          pool=threads_pool(),
                                          dtype=np.float32 if exp < 16 else np.float64)
                whole = True
                if exp < 0:
                    m = net.size_of(proj.post)
                    seg_rows.append((n_rows, row_off, m, -exp))
                    row_off = n_rows
                    n_rows += m
            elif fam in ("spinnaker", "speck"):
                whole = integer_valued(w)  # (blockwise, as mod(w, 1) == 0)
                if not whole:
                    w = np.rint(w)
                    whole = True
            else:
                w = np.asarray(w, dtype=np.float64)
                whole = False
            if integer and not whole and not integer_valued(w):
                integer = False
            lvl = self.pop_level[proj.post]
            if fast:
                dd = int(proj.delay)
                key = (dd, binary, lvl if dd == 0 else -1)
                parts.setdefault(key, []).append(
                    ("csc", proj.conn, row_off, self.src_off[proj.pre], w))
                continue
            d = np.full(pre.shape, int(proj.delay), dtype=np.int64)
            if dl is not None:
                d = d + dl
            src = pre + self.src_off[proj.pre]
            rows = post + row_off
            for dd in np.unique(d):
                keep = d == dd
                key = (int(dd), binary, lvl if dd == 0 else -1)
                parts.setdefault(key, []).append((rows[keep], src[keep], w[keep]))
        self.integer = integer and self.integer_params
        self.n_rows = n_rows
        self.segments = seg_rows
        self.row_slot = np.arange(n_rows, dtype=np.int64)
        for r0, s0, m, _ in seg_rows:
            self.row_slot[r0:r0 + m] = np.arange(s0, s0 + m)
        self.groups: list[tuple[int, bool, int, sp.csc_matrix]] = []
        for key in sorted(parts):
            ps = parts[key]
            if all(isinstance(p[0], str) for p in ps):
                mat = part_csc(ps[0], n_rows, self.n_src, pool=threads_pool())
                for p in ps[1:]:
                    mat = (mat + part_csc(p, n_rows, self.n_src)).tocsc()
                    mat.sum_duplicates()
            else:
                ps = [part_coo(p) if isinstance(p[0], str) else p for p in ps]
                rows = np.concatenate([p[0] for p in ps])
                cols = np.concatenate([p[1] for p in ps])
                vals = group_weights(np.concatenate([p[2] for p in ps]))
                mat = sp.csc_matrix((vals, (rows, cols)), shape=(n_rows, self.n_src))
                mat.sum_duplicates()
            narrow_indices(mat)
            self.groups.append((key[0], key[1], key[2], mat))
        self.max_delay = max((g[0] for g in self.groups), default=0)
        # exactness bound of float32 accumulation (per row: sum |w| x largest payload)
        absrow = np.zeros(n_rows)
        self.row_degree = np.zeros(n_rows, dtype=np.int64)  # synapses per row
        for _, _, _, m in self.groups:
            a, cnt = row_sums(m.indices, m.data, n_rows, pool=threads_pool(), whole=integer,
                              n_cols=self.n_src)
            absrow += a
            self.row_degree += cnt
        self.row_abs_max = float(absrow.max(initial=0.0))
        self._weight_unit: float | None = None
        self.max_pop_payload = float(max(1, int(self.params.graded_max.max(initial=0))))
        self._mats32: list | None = None
        self._mats_cache: dict[str, list] = {}
        self._stack_cache: dict[str, StackedCounts | None] = {}

    #: largest per-step counter arrays (bytes) a run keeps: per-step, per-core counters
    #: (``(T, B, n_cores)`` x 6) and per-step link hops and pair messages (``(T, n_links)``
    #: + ``(T, B, n_pairs)``) are kept while they fit, else the run keeps their totals
    #: (one row) and only the per-step time and energy, so memory does not grow with
    #: steps x cores (docs/emulator.md, "Counters").
    COUNTER_BYTES = 1 << 30

    #: rows per cache block of the accumulator. Blocking cuts every firing column into
    #: one piece per block, and each piece costs a cache miss of its own: on the 1e6-neuron
    #: benchmark 2**18 rows (4 blocks) ran at 0.8e8 synaptic events/s and one block (a
    #: 4 MB float32 accumulator, which stays in L3) at 1.4e8, so blocking starts only
    #: where the accumulator outgrows a last-level cache (2**24 float32 rows = 64 MiB).
    BLOCK_ROWS = 1 << 24

    def _matrices(self, max_payload: float, integer_inputs: bool = True
                  ) -> list[list[tuple[int, sp.csc_matrix]]]:
        """Per group, its row blocks ``(first row, CSC block)`` in the accumulation dtype.

        Integer sums (integer weights and integer input payloads) use float32 where
        exact. Groups with more rows than
        :attr:`BLOCK_ROWS` are cut into row blocks so that the scattered additions of one
        block stay in cache (cache blocking); the sums are the same.
        """
        f32 = (self.integer and integer_inputs
               and self.sums_exact(self.row_abs_max * max_payload, np.float32))
        key = "f32" if f32 else "f64"
        cache = self._mats_cache.get(key)
        if cache is None:
            cache = []
            for *_, m in self.groups:
                mm = cast_data(m, np.float32 if f32 else np.float64, pool=threads_pool())
                blocks = []
                if mm.shape[0] > self.BLOCK_ROWS and mm.nnz:
                    for r0 in range(0, mm.shape[0], self.BLOCK_ROWS):
                        blk = mm[r0:r0 + self.BLOCK_ROWS, :].tocsc()
                        blk.indptr = blk.indptr.astype(mm.indptr.dtype, copy=False)
                        blk.indices = blk.indices.astype(mm.indptr.dtype, copy=False)
                        blocks.append((r0, blk))
                else:
                    blocks.append((0, mm))
                cache.append(blocks)
            self._mats_cache[key] = cache
            if f32:
                self._mats32 = cache  # type: ignore[assignment]
        return cache

    @property
    def weight_unit(self) -> float:
        """The largest power of two dividing every weight (whole weights; 1 where there
        are none): every sum of whole payloads times weights is a multiple of it. Made on
        first use (one pass over the weights, on the helper threads)."""
        if self._weight_unit is None:
            unit = pow2_unit((m.data for *_, m in self.groups), threads_pool()) \
                if self.integer else 1.0
            self._weight_unit = 1.0 if unit == float("inf") else unit
        return self._weight_unit

    def sums_exact(self, bound: float, dtype: Any) -> bool:
        """Whether sums of whole payloads times the (whole) weights, at most ``bound`` in
        magnitude, are exact in ``dtype`` in any order: below the dtype's exact integers
        (2**24 in float32, 2**53 in float64), or below that many multiples of
        :attr:`weight_unit` (every partial sum is one; fixed-point weights such as
        SpiNNaker's s16.15 are multiples of a large power of two)."""
        limit = F32_EXACT if np.dtype(dtype) == np.float32 else 2.0**53
        return bool(bound < limit) or (self.integer and bound < limit * self.weight_unit)

    # ------------------------------------------------------------------ counting
    def _build_counting(self) -> None:
        """Per source: its destination cores and synapses on each, then the counter matrix."""
        n_src = self.n_src
        #: per source: synapses (all cores); with destination cores, messages (other
        #: cores) and a local delivery (0 / 1), the counter matrix's column is made of them
        self.sops_per_src = sum((np.diff(m.indptr) for *_, m in self.groups),
                                np.zeros(n_src, dtype=np.int64)).astype(np.float64)
        tot = _cc.synapses_per_core(self)
        tot.sum_duplicates()  # per source, its destination cores in order
        ip = tot.indptr.astype(np.int64)
        nnz = np.diff(ip)
        core = tot.indices
        src_core = np.full(n_src, -1, dtype=np.int64)
        src_core[:self.N] = self.slot_core
        self.src_core = src_core
        neuron = src_core >= 0
        # the entry on the source's own core, if any (at most one per source), and the
        # inter-core entries (source, destination core), CSR over the sources: the core
        # pairs, the per-source costs and the messages per pair are made from them
        has_local, self._noc_core = _cc.own_core_entries(self, core, ip)
        self._src_msgs = np.where(neuron, nnz - has_local, 0)
        self._src_local = has_local
        _cnt.count_layout(self, tot, ip, neuron)  # the counter matrix: made on first use
        self._noc_ptr = np.zeros(n_src + 1, dtype=np.int64)
        np.cumsum(self._src_msgs, out=self._noc_ptr[1:])
        del core
        self._pairs: np.ndarray | None = None
        self._src_pair: sp.csr_matrix | None = None
        self._pairs_attached = False
        self._src_link: Any = None
        self.src_latency = np.zeros(n_src)
        self.src_hop_energy = np.zeros(n_src)
        self.noc_hops_total = 0.0
        if self.costs is not None:
            _cnt.source_costs(self)

    @property
    def pairs(self) -> np.ndarray:
        """Sorted keys ``src_core * n_cores + dst_core`` of the communicating core pairs
        (the compiled routes' pairs where the engine has them), built on first use."""
        if self._pairs is None:
            self._pairs = _cnt.core_pairs(self)
        return self._pairs

    @property
    def pair_src(self) -> np.ndarray:
        """Source logical core of every pair of :attr:`pairs`."""
        return self.pairs // self.n_cores

    @property
    def pair_dst(self) -> np.ndarray:
        """Destination logical core of every pair of :attr:`pairs`."""
        return self.pairs % self.n_cores

    @property
    def src_pair(self) -> sp.csr_matrix:
        """``(n_src, n_pairs)``: per source, one message per core pair it reaches on
        another core; built on first use (per-step pair messages, :meth:`costs_of`)."""
        if self._src_pair is None:
            self._src_pair = _cnt.source_pairs(self)
        return self._src_pair

    def _attach_pairs(self) -> None:
        """Per-pair hops, latency and energy on the cost tables (once, on first use)."""
        if self.costs is not None and not self._pairs_attached:
            self.costs.attach_pairs(self.pair_src, self.pair_dst)
            self._pairs_attached = True

    def _source_links(self) -> sp.csr_matrix | None:
        """Per source its messages' hops per link, or None (:func:`source_links`)."""
        return _cnt.source_links(self)

    #: ways the counters may be folded into the synapse walk, in order of preference
    #: (:class:`~nmcompiler.backends.emulator.folding.StackedCounts`: ``"pack"``,
    #: ``"stack"``); empty: the counter matrix is walked on its own every step. The
    #: counts are the same integers either way (tests/backends/emulator).
    COUNT_FOLDING: tuple[str, ...] = ("pack", "stack")
    #: threads for a step's large synapse walks where the sums are exact (0: the
    #: ``NMC_THREADS`` environment variable, else the CPUs; :mod:`.delivery`)
    THREADS: int = 0

    #: counter rows ("bins") of the counter matrix, in this order, one per logical core
    COUNT_BINS = ("sops", "messages", "local", "input", "spikes")
    #: each bin's rows of the counter matrix, its entries, and the dtype the per-step
    #: kernel reads it in (``counting.count_layout``)
    count_slices: dict[str, slice]
    count_nnz: int
    count_dtype: np.dtype
    _count_mat: sp.csc_matrix | None = None
    _count_mat_step: sp.csc_matrix | None = None

    @property
    def count_mat(self) -> sp.csc_matrix:
        """The counter matrix (bins x sources; ``counting.build_count_matrix``) in
        float64, made on first use: a run whose counters are folded into the synapse
        walk by ``"pack"`` never needs it (docs/emulator.md, "Counters")."""
        if self._count_mat is None:
            self._count_mat = _cnt.build_count_matrix(self)
            self._count_src = None  # what it was made from: not needed again
        return self._count_mat

    @count_mat.setter
    def count_mat(self, mat: sp.csc_matrix) -> None:
        self._count_mat = mat

    @property
    def count_mat_step(self) -> sp.csc_matrix:
        """:attr:`count_mat` as the per-step kernel reads it (:attr:`count_dtype`)."""
        if self._count_mat_step is None:
            self._count_mat_step = cast_data(self.count_mat, self.count_dtype)
        return self._count_mat_step

    @count_mat_step.setter
    def count_mat_step(self, mat: sp.csc_matrix) -> None:
        self._count_mat_step = mat

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Mapping[str, np.ndarray] | None,
        steps: int | None = None,
        *,
        probes: tuple[str, ...] = (),
        count: bool = True,
        progress: Callable[[int], None] | None = None,
        pair_msgs: bool = False,
    ) -> EngineResult:
        """Run for ``steps`` steps; inputs ``(T, n)`` or ``(T, B, n)`` per input name.

        ``progress(t)`` is called after every step (e.g. a progress bar). ``pair_msgs``:
        also keep the per-step messages per core pair (``counters["pair_msgs"]``, ``(T,
        B, n_pairs)``, within :attr:`COUNTER_BYTES`)."""
        net = self.net
        arrays, steps, batch, batched, max_in, int_in = check_inputs(net, inputs, steps,
                                                                      self.family)
        # fractional input payloads (generic target) are summed in float64
        mats = self._matrices(max(max_in, self.max_pop_payload), int_in)
        mdtype = mats[0][0][1].dtype if mats else np.float64
        arith = make_arith(self.family, self.params, self._formats, integer=self.integer)
        arith.init(batch)
        arith.a_bound = self.row_abs_max * max(max_in, self.max_pop_payload)
        self._order_cache: tuple | None = None
        self._i32_direct = arith.a_bound < 2**31
        rngs = [(sl, sd, np.random.Generator(np.random.PCG64(
            [int(canonical(net.populations[nm].model)["seed"]), zlib.crc32(nm.encode())])))
            for nm, sl, sd, _ in self.noisy]
        # recording
        keys = [p.key for p in net.probes] + [k for k in probes if "." in k]
        rec_out = {o.name: np.zeros((steps, batch, net.size_of(o.source)),
                                    dtype=self.record_dtype(o.source, "out"))
                   for o in net.outputs.values()}
        rec_probe: dict[str, np.ndarray] = {}
        for key in dict.fromkeys(keys):
            target, var = key.rsplit(".", 1)
            if target not in net.populations or var not in ("spikes", "v", "u"):
                raise InputError(f"probe '{key}' names no population variable", obj=key,
                                 rule="known probe", hint="use 'population.spikes', '.v' or '.u'")
            cplx = var == "v" and getattr(arith, "complex_v", False)
            rec_probe[key] = np.zeros((steps, batch, net.size_of(target)),
                                      dtype=np.complex128 if cplx
                                      else self.record_dtype(target, var))
        ring_len = self.max_delay + 1
        ring: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * ring_len
        # spikes are recorded from the step's firing list (zeros elsewhere): per spike
        # record, its array and its population's slot range
        spike_rec = [(rec_out[o.name], self.slot_off[o.source], net.size_of(o.source))
                     for o in net.outputs.values()
                     if self.params.spiking[self.slot_off[o.source]]]
        spike_rec += [(arr, self.slot_off[k.rsplit(".", 1)[0]],
                       net.size_of(k.rsplit(".", 1)[0]))
                      for k, arr in rec_probe.items() if k.endswith(".spikes")]
        state_rec = [(rec_out[o.name], "v", self.slot_off[o.source], net.size_of(o.source),
                      True) for o in net.outputs.values()
                     if not self.params.spiking[self.slot_off[o.source]]]
        state_rec += [(arr, k.rsplit(".", 1)[1], self.slot_off[k.rsplit(".", 1)[0]],
                       net.size_of(k.rsplit(".", 1)[0]), False)
                      for k, arr in rec_probe.items() if not k.endswith(".spikes")]
        stacked = self.prepare_counting(max_in, int_in) if count else None
        extra: list = [None] * len(mats)
        if stacked is not None:
            mats, extra = stacked.mats, stacked.extra
        counting = Counting(self, steps, batch, pair_msgs, stacked) if count else None
        unpack = counting.unpack if (stacked is not None and stacked.mode == "pack") else None
        acc_buf = np.zeros((batch, self.n_rows + (stacked.rows if stacked else 0)),
                           dtype=mdtype)
        self._a_buf = np.zeros((batch, self.N)) if self.segments else None
        arith.keep_u = any(k.endswith(".u") for k in rec_probe)
        in_items = [(self.src_off[nm], arrays[nm]) for nm in net.inputs if nm in arrays]
        # integer sums below the dtype's exact integers: any summation order is exact
        exact = (self.integer and int_in and batch == 1
                 and self.sums_exact(arith.a_bound, acc_buf.dtype))
        n_thr = (self.THREADS or default_threads()) if exact else 1
        split = SplitDelivery(n_thr, acc_buf.shape, acc_buf.dtype) if n_thr > 1 else None
        n_events = 0
        n_spikes = 0
        groups = [(g[0], g[1], g[2], m, xc)
                  for g, m, xc in zip(self.groups, mats, extra, strict=True)]
        t0 = time.perf_counter()
        for t in range(steps):
            # inputs of this step
            act_b, act_s, act_p = [], [], []
            for off, x in in_items:
                xt = x[t]
                b, i = np.nonzero(xt)
                if i.size:
                    act_b.append(b)
                    act_s.append(i + off)
                    act_p.append(xt[b, i].astype(np.float64))
            # deliveries of earlier steps (d >= 1)
            acc = acc_buf
            acc.fill(0)
            for d, binary, _, m, xc in groups:
                if d == 0 or t - d < 0:
                    continue
                ent = ring[(t - d) % ring_len]
                if ent is not None:
                    for r0, blk in m:
                        n_events += self._deliver(acc[:, r0:r0 + blk.shape[0]], blk, ent,
                                                  binary, batch, xc, split=split, r0=r0)
            if split is not None:
                split.reduce(acc)
            if unpack is not None and t >= counting.lag:
                unpack(t, acc)
            for lv, sl in enumerate(self.level_slices):
                if lv > 0 or any(g[0] == 0 for g in groups):
                    cur = concat_active(act_b, act_s, act_p)
                    for d, binary, glv, m, xc in groups:
                        if d == 0 and glv == lv and cur[0].size:
                            for r0, blk in m:
                                n_events += self._deliver(acc[:, r0:r0 + blk.shape[0]], blk,
                                                          cur, binary, batch, xc)
                a = self._activation(acc, sl)
                noise = None
                if rngs:
                    noise = np.zeros((batch, sl.stop - sl.start))
                    for nsl, sd, rng in rngs:
                        if sl.start <= nsl.start < sl.stop:
                            noise[:, nsl.start - sl.start:nsl.stop - sl.start] = \
                                sd * rng.standard_normal((batch, nsl.stop - nsl.start))
                arith.fired = arith.fired_idx = None
                s = arith.step(a, sl, noise if rngs else None)
                b, i = arith.fired_entries(s)
                if i.size:
                    act_b.append(b)
                    act_s.append(i + sl.start)
                    act_p.append(np.ones(i.shape[0]) if s is None else s[b, i])
            step_act = concat_active(act_b, act_s, act_p)
            n_spikes += int(np.count_nonzero(step_act[1] < self.N))
            ring[t % ring_len] = step_act if step_act[0].size else None
            if counting is not None:
                counting.step(t, step_act, acc)
            if progress is not None:
                progress(t)
            if spike_rec and step_act[1].size:
                sb, ss, sp_ = step_act
                for arr, s0, m_ in spike_rec:
                    if s0 == 0 and m_ == self.N:
                        sel = ss < m_
                    else:
                        sel = (ss >= s0) & (ss < s0 + m_)
                    arr[t, sb[sel], ss[sel] - s0] = sp_[sel]
            for arr, var, s0, m_, real in state_rec:
                val = arith.state(var)[:, s0:s0 + m_]
                arr[t] = np.real(val) if real else val
        wall = time.perf_counter() - t0
        if split is not None:
            split.close()
        counters: dict[str, np.ndarray] = {}
        costs = None
        per_step = {}
        per_pop: dict[str, dict[str, int]] = {}
        if counting is not None:
            counters, costs = counting.finish(lambda t_: ring[t_ % ring_len])
            per_step = {"counters_per_step": counting.keep_core,
                        "link_hops_per_step": counting.keep_link}
            per_pop = self.per_population(counting.fires)
        return EngineResult(outputs=rec_out, probes=rec_probe, counters=counters, steps=steps,
                            batched=batched, wall_s=wall, synaptic_events=n_events,
                            spikes=n_spikes, costs=costs, per_population=per_pop, **per_step)

    def prepare_counting(self, max_input: float = 1.0, integer_inputs: bool = True
                         ) -> StackedCounts | None:
        """The counters' folding into the synapse walk for runs whose inputs reach
        ``max_input`` (:func:`~nmcompiler.backends.emulator.folding.stack_counts`), built
        on first use and kept (one at a time: its matrices are about the size of the
        synapses'); a counted run calls it, or call it after building the engine to
        count its cost there."""
        if not self.COUNT_FOLDING:
            return None
        pay = max(float(max_input), self.max_pop_payload)
        mats = self._matrices(pay, integer_inputs)
        mdtype = mats[0][0][1].dtype if mats else np.float64
        key = f"{np.dtype(mdtype).name}:{pay!r}:{integer_inputs}:{','.join(self.COUNT_FOLDING)}"
        if key not in self._stack_cache:
            self._stack_cache.clear()
            self._stack_cache[key] = stack_counts(self, mats, mdtype, self.COUNT_FOLDING,
                                                  max_payload=pay,
                                                  integer_inputs=integer_inputs)
        return self._stack_cache[key]

    def record_dtype(self, pop: str, var: str) -> type:
        """The dtype a run records ``pop``'s ``var`` in (``"out"``: its output): bool
        for the spikes of a population whose spikes are binary (no graded payloads; 1/8
        of float64's memory), else float64 (docs/cli.md, "Run outputs")."""
        spiking, binary = self._pop_kind(pop)
        spikes = var == "spikes" or (var == "out" and spiking)
        return np.bool_ if spikes and binary else np.float64

    def _pop_kind(self, pop: str) -> tuple[bool, bool]:
        """Whether ``pop`` spikes, and whether its spikes are binary (no graded payload)."""
        s0 = self.slot_off[pop]
        m = self.net.size_of(pop)
        return (bool(self.params.spiking[s0:s0 + m].all()),
                not bool((self.params.graded_max[s0:s0 + m] > 0).any()))

    def per_population(self, fires: np.ndarray) -> dict[str, dict[str, int]]:
        """The run's ``spikes``, ``synaptic_ops`` and ``messages`` by source (population
        or input) from ``fires``, firings per source (:func:`counting.per_population`)."""
        return _cnt.per_population(self, fires)

    def _deliver(self, acc: np.ndarray, m: sp.csc_matrix, ent: tuple, binary: bool,
                 batch: int, extra: np.ndarray | None = None, *,
                 split: SplitDelivery | None = None, r0: int = 0) -> int:
        """:func:`~nmcompiler.backends.emulator.delivery.deliver` (the synaptic events
        of ``ent``'s firing sources through ``m`` into ``acc``), with this engine's sort
        of a step's sources kept for its next groups."""
        return deliver(acc, m, ent, binary, batch, extra, split=split, r0=r0, owner=self)

    def _activation(self, acc: np.ndarray, sl: slice) -> np.ndarray:
        """Synaptic input of slots ``sl`` (B, len) from the accumulator rows.

        Without Loihi's floored segments this is a view of the accumulator itself, in its
        dtype: the arithmetic reads float32 sums (integers below 2**24) exactly, so no
        copy to float64 is needed. The caller clears the accumulator before reusing it.
        """
        if self.segments:
            a = self._a_buf[:, sl]
            np.copyto(a, acc[:, sl])
            for r0, s0, m, shift in self.segments:
                lo, hi = max(s0, sl.start), min(s0 + m, sl.stop)
                if lo >= hi:
                    continue
                seg = acc[:, r0 + lo - s0:r0 + hi - s0].astype(np.float64)
                a[:, lo - sl.start:hi - sl.start] += np.floor(seg / float(1 << shift))
        else:
            a = acc[:, sl]
        if self.family == "loihi":  # int32 wrap of the port sum (none within 2**31)
            return a.astype(np.int32) if self._i32_direct else a.astype(np.int64).astype(
                np.int32)
        return a

    def costs_of(self, counters: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
        """Time and energy from per-step counters with ``pair_msgs`` (None without cost
        tables); :meth:`run` computes them itself as it goes (``EngineResult.costs``)."""
        if self.costs is None or not counters or "pair_msgs" not in counters:
            return None
        self._attach_pairs()
        return evaluate(self.costs, counters)
