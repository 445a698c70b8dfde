"""Counters folded into the synapse walk (docs/emulator.md, "Counters").

:func:`stack_counts` builds, for an engine's synapse matrices, the
:class:`StackedCounts` a counted run uses so that a firing source's synapses and its
counters are fetched in one walk; :class:`~nmcompiler.backends.emulator.counting.Counting`
reads it. The counts are the same integers as walking the counter matrix on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from .counting import build_count_matrix
from .delivery import threads_pool
from .sparse import blockwise, cast_data, row_counts

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["StackedCounts", "stack_counts", "pack_counts"]


@dataclass
class StackedCounts:
    """The counter matrix folded into the synapse walk (docs/emulator.md, "Counters").

    A firing source's synapses and its counters are both columns of a sparse matrix; on
    a large mesh a spike reaches about as many cores as synapses, so walking the two
    apart fetches every firing column twice. Two ways fold them into one walk, for the
    neuron sources whose payload is always 1 (binary axons, or no graded spikes):

    * ``"pack"``: every such source's synapse weights carry ``+ q`` (a power of two above
      twice the largest possible row sum), so the accumulator of a row holds its weighted
      sum plus ``q`` times its synaptic events; :meth:`Counting.unpack` splits the two
      exactly (``q x events = (acc + M) - M``, ``M = 1.5 x 2**(m-1) x q`` with ``m`` the
      dtype's mantissa bits: the float addition rounds to a multiple of ``q``) before the
      neurons read the sums, and adds the
      events per core. Used where every such source's synapses share one delay ``d >= 1``
      and the packed sums stay exact integers in the accumulator's dtype (the weights'
      common power-of-two factor counts: the sums are its multiples).
    * ``"stack"``: each such source's counter column is appended to its column in one
      *carrier* group (the first, in group order, with synapses of the source), in rows
      past the synapse rows (``5 x n_cores`` rows per carrier group).

    Either way the counts arrive with the delivery, ``d`` steps after the spike, and go
    back to the spike's step; the spikes of the run's last ``d`` steps, never delivered,
    are counted at the end (:meth:`Counting.finish`: ``"pack"`` delivers them once more
    into a scratch accumulator, ``"stack"`` reads ``tail``). What is not folded
    (inputs, graded spikes, sources without synapses, and with ``"pack"`` every bin but
    the synaptic operations) is counted from ``residual`` at the spike's step. The counts
    are the same integers either way.
    """

    mode: str
    #: per group, its row blocks (as ``Engine._matrices``), with the folded counts
    mats: list
    #: per group: None, or per source the counter entries stacked into its column
    extra: list
    #: accumulator rows past ``n_rows`` (``"stack"``: all regions)
    rows: int
    #: ``"stack"``, per carrier group: (first accumulator row, rows, delay)
    regions: list
    #: the largest folded delay (counts complete that many steps after a spike)
    lag: int
    #: per source: the delay of its folded counts, or -1 (counted from ``residual``)
    carrier_delay: np.ndarray
    #: what is counted at the spike's step (None: nothing)
    residual: sp.csc_matrix | None
    #: ``"stack"``: the counter matrix, for the run's last ``lag`` steps
    tail: sp.csc_matrix | None = None
    #: ``"pack"``: the weight offset, and per run of accumulator rows on one core its
    #: first row and its core (None: one run per core, in core order)
    q: float = 0.0
    row_starts: np.ndarray | None = None
    row_cores: np.ndarray | None = None
    #: ``"pack"``: per bin (``Engine.COUNT_BINS``) other than the synaptic operations,
    #: what one spike of each folded source adds on its own core (added per block from
    #: the log of firing sources, :meth:`Counting._flush`)
    own_core: dict | None = None


def _keep_columns(mat: sp.csc_matrix, keep: np.ndarray, dtype: Any) -> sp.csc_matrix:
    """``mat`` (CSC) with the columns where ``keep`` is False emptied, data in ``dtype``."""
    if not bool(keep.any()):
        return sp.csc_matrix(mat.shape, dtype=dtype)
    if bool(keep.all()):
        out = sp.csc_matrix((mat.data.astype(dtype, copy=False), mat.indices, mat.indptr),
                            shape=mat.shape, copy=False)
    else:
        lens = np.diff(mat.indptr)
        ent = np.repeat(keep, lens)
        ip = np.zeros(mat.indptr.shape[0], dtype=mat.indptr.dtype)
        np.cumsum(lens * keep, out=ip[1:])
        out = sp.csc_matrix((mat.data[ent].astype(dtype, copy=False), mat.indices[ent], ip),
                            shape=mat.shape, copy=False)
    out.has_sorted_indices = mat.has_sorted_indices
    return out


def _unit_sources(eng: Engine) -> np.ndarray:
    """Per source: a neuron whose spikes always carry payload 1 (no graded spikes)."""
    unit = np.zeros(eng.n_src, dtype=bool)
    unit[:eng.N] = ~eng.graded_sources[:eng.N]
    return unit


def _pack_offset(eng: Engine, mats: list, dtype: Any, unit: np.ndarray, folded: list,
                 max_payload: float) -> float | None:
    """``q`` of ``"pack"``: a power of two above twice the largest row sum, or None where
    some partial sum ``S + q x events`` would not be an exact integer in ``dtype``
    (every partial sum is a multiple of the weights' common power-of-two factor ``g``
    and at most ``|S|max + q x events`` in magnitude)."""
    mant = 24 if np.dtype(dtype) == np.float32 else 53
    g = eng.weight_unit  # (the blocks hold the groups' weights)
    bound = eng.row_abs_max * max_payload
    q = 2.0 ** int(np.floor(np.log2(max(2.0 * bound, 1.0))) + 1)  # > 2 x bound
    q = max(q, 2.0 * g)
    every = bool(unit.all())
    if every and len(folded) == len(mats):  # every synapse is folded
        events = eng.row_degree
    else:
        events = np.zeros(eng.n_rows, dtype=np.int64)
        for gi in folded:
            for r0, m in mats[gi]:
                idx = m.indices if every else m.indices[np.repeat(unit, np.diff(m.indptr))]
                events[r0:r0 + m.shape[0]] += row_counts(idx, m.shape[0])
    e_max = float(events.max(initial=0))
    if (bound + q * e_max) / g >= 2.0 ** mant or e_max + 0.5 >= 2.0 ** (mant - 2):
        return None  # (the second: Counting.unpack's rounding by adding 1.5 x 2**(m-1) q)
    return q


def _own_core_counts(eng: Engine) -> dict:
    """Per counter bin other than ``sops``: what one spike of each neuron source adds on
    its own core (all of its counts but the synaptic operations sit there: its
    messages, its local delivery and its spike; ``Engine._build_count_matrix``)."""
    neuron = eng.src_core >= 0
    own = {"messages": eng._src_msgs.astype(np.float64),
           "local": eng._src_local.astype(np.float64), "spikes": neuron.astype(np.float64)}
    return {k: v for k, v in own.items() if bool(v.any())}


def pack_counts(eng: Engine, mats: list, dtype: Any, max_payload: float = 1.0
                ) -> StackedCounts | None:
    """The ``"pack"`` :class:`StackedCounts` of ``mats`` in ``dtype`` for a run whose
    payloads reach ``max_payload`` (integer sums only), or None where it does not apply
    (see the class)."""
    if not eng.integer or not eng.groups or eng.count_nnz == 0:
        return None
    unit = _unit_sources(eng)
    folded: list[int] = []
    delays = set()
    for gi, ((d, _, _, _), blocks) in enumerate(zip(eng.groups, mats, strict=True)):
        has = np.zeros(eng.n_src, dtype=bool)
        for _, m in blocks:
            has |= np.diff(m.indptr) > 0
        if bool((has & unit).any()):
            folded.append(gi)
            delays.add(int(d))
    if len(delays) != 1 or min(delays) < 1:
        return None
    d = delays.pop()
    q = _pack_offset(eng, mats, dtype, unit, folded, max_payload)
    if q is None:
        return None
    own = _own_core_counts(eng)
    out_mats = list(mats)
    every = bool(unit.all())
    for gi in folded:
        blocks = []
        for r0, m in mats[gi]:
            if every:
                qd = np.dtype(dtype).type(q)
                data = blockwise(lambda x, qd=qd: np.add(x, qd, dtype=x.dtype), m.data,
                                 m.data.dtype, threads_pool())
            else:
                data = m.data.copy()
                data[np.repeat(unit, np.diff(m.indptr))] += np.dtype(dtype).type(q)
            pm = sp.csc_matrix((data, m.indices, m.indptr), shape=m.shape, copy=False)
            pm.has_sorted_indices = m.has_sorted_indices
            blocks.append((r0, pm))
        out_mats[gi] = blocks
    # counted at the spike's step: the columns of the other sources only (the whole
    # counter matrix is not made)
    residual = None
    if bool((~unit).any()):
        residual = (_keep_columns(eng.count_mat_step, ~unit, eng.count_dtype)
                    if eng._count_mat is not None else
                    cast_data(build_count_matrix(eng, keep=~unit), eng.count_dtype))
        residual = residual if residual.nnz else None
    st = StackedCounts(mode="pack", mats=out_mats, extra=[None] * len(mats), rows=0,
                       regions=[], lag=d, carrier_delay=np.where(unit, d, -1),
                       residual=residual, tail=None, q=q,
                       own_core=own)
    row_core = eng.slot_core[eng.row_slot]
    starts = np.flatnonzero(np.r_[True, row_core[1:] != row_core[:-1]])
    st.row_starts, st.row_cores = starts, row_core[starts]
    if np.array_equal(st.row_cores, np.arange(eng.n_cores)):
        st.row_cores = None  # one run per core, in core order
    return st


def stack_counts(eng: Engine, mats: list, dtype: Any,
                 modes: tuple[str, ...] = ("pack", "stack"), *, max_payload: float = 1.0,
                 integer_inputs: bool = True) -> StackedCounts | None:
    """The :class:`StackedCounts` of ``mats`` (``Engine._matrices``' blocks, in
    ``dtype``): the first of ``modes`` that applies (``"pack"``, ``"stack"``); None where
    none does or the counts would not be exact in ``dtype`` (then :class:`Counting`
    walks ``count_mat_step`` per step)."""
    if eng.count_nnz == 0 or not eng.groups:
        return None
    if np.dtype(dtype) == np.float32 and eng.count_dtype != np.float32:
        return None  # some per-step counter could exceed float32's exact integers
    for mode in modes:
        if mode == "pack" and integer_inputs:
            packed = pack_counts(eng, mats, dtype, max_payload)
            if packed is not None:
                return packed
        elif mode == "stack":
            break
    else:
        return None
    cm = eng.count_mat
    n_src, bins = eng.n_src, cm.shape[0]
    unit = _unit_sources(eng)
    carrier = np.full(n_src, -1, dtype=np.int64)
    for gi, ((_, binary, _, _), blocks) in enumerate(zip(eng.groups, mats, strict=True)):
        if len(blocks) != 1:
            continue
        m = blocks[0][1]
        ok = (np.diff(m.indptr) > 0) & (carrier < 0)
        ok[eng.N:] = False  # inputs: counted apart (their messages are not a core's)
        if not binary:
            ok &= unit
        carrier[ok] = gi
    if not bool((carrier >= 0).any()):
        return None
    used = [gi for gi in range(len(eng.groups)) if bool((carrier == gi).any())]
    n_rows = eng.n_rows
    rows = bins * len(used)
    out_mats, extra, regions = list(mats), [None] * len(mats), []
    for k, gi in enumerate(used):
        d = int(eng.groups[gi][0])
        keep = carrier == gi
        m = mats[gi][0][1]
        cnt = _keep_columns(cm, keep, m.dtype)
        # stacking rows of CSC matrices = stacking columns of their CSR transposes
        # (scipy's compiled csr_hstack: no COO round trip)
        parts = [m.T, sp.csr_matrix((n_src, bins * k), dtype=m.dtype), cnt.T,
                 sp.csr_matrix((n_src, bins * (len(used) - k - 1)), dtype=m.dtype)]
        st = sp.hstack([p for p in parts if p.shape[1]], format="csr").T.tocsc(copy=False)
        st.has_sorted_indices = True
        idx_t = m.indptr.dtype if st.nnz < 2**31 else np.int64
        st.indptr = st.indptr.astype(idx_t, copy=False)
        st.indices = st.indices.astype(idx_t, copy=False)
        out_mats[gi] = [(0, st)]
        extra[gi] = np.diff(cnt.indptr).astype(np.int64)
        regions.append((n_rows + bins * k, bins, d))
    cdelay = np.full(n_src, -1, dtype=np.int64)
    for gi in used:
        cdelay[carrier == gi] = int(eng.groups[gi][0])
    free = carrier < 0
    residual = None
    if bool((free & (np.diff(cm.indptr) > 0)).any()):
        residual = _keep_columns(eng.count_mat_step, free, eng.count_mat_step.dtype)
    return StackedCounts(mode="stack", mats=out_mats, extra=extra, rows=rows,
                         regions=regions, lag=max(r[2] for r in regions),
                         carrier_delay=cdelay, residual=residual,
                         tail=eng.count_mat_step)
