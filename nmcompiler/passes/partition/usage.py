"""Per-core usage of a partition, vectorised over the sparse synapse structure: neurons,
input and output axons, synaptic memory bits, destination cores, and the core graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.network import Network

from ...mapping import BUDGET_NAMES, CoreUsage
from ...targets import Target
from ...targets.budgets import limits_of, synapse_row_bits
from .view import Ones, Proj, View, build_view, plain_ones


# =========================================================================== evaluation
def _proj_counts(pr: Proj, neuron_core: np.ndarray, n_cores: int, ones: Any = None
                 ) -> sp.csr_matrix:
    """``(n_pre, n_cores)`` CSR: synapses of each presynaptic neuron on each core, without
    duplicates; the columns of a row are *not* necessarily sorted (no consumer needs them
    sorted: every per-core sum over the pairs meets them in source order either way)."""
    ones = ones or plain_ones
    post_core = neuron_core[pr.post_off:pr.post_off + pr.n_post]
    if pr.kind == "dense":
        r = np.bincount(post_core, minlength=n_cores)
        nz = np.flatnonzero(r).astype(np.int32)
        k = nz.shape[0]
        return sp.csr_matrix(
            (np.tile(r[nz], pr.n_pre), np.tile(nz, pr.n_pre),
             np.arange(pr.n_pre + 1, dtype=np.int64) * k), shape=(pr.n_pre, n_cores))
    if pr.kind == "csr":
        pc = post_core.astype(np.int32, copy=False) if n_cores < 2**31 - 1 else post_core
        return _dedupe(pr.indptr, pc[pr.indices], pr.n_pre, n_cores, ones)
    dst = post_core[pr.indices]
    m = sp.csr_matrix((np.ones(dst.shape[0], dtype=np.int32), (pr.pre, dst)),
                      shape=(pr.n_pre, n_cores))
    m.sum_duplicates()
    return m


def _dedupe(indptr: np.ndarray, dst: np.ndarray, n_rows: int, n_cols: int, ones: Ones
            ) -> sp.csr_matrix:
    """``(n_rows, n_cols)`` CSR counting the entries ``dst[indptr[r]:indptr[r + 1]]`` of
    every row ``r``, without duplicates, columns within a row in no particular order.

    It is the product of that matrix (with duplicates) and the identity: scipy's SMMP
    kernel merges each row's duplicates with a dense per-row accumulator (linear, no
    per-row sort of up to 1e8 entries); called directly, as the result has at most as
    many entries as ``dst`` (no counting pass)."""
    nnz = int(dst.shape[0])
    try:
        if not USE_SPARSETOOLS:
            raise ImportError("public scipy route requested")
        from scipy.sparse._sparsetools import csr_matmat

        idx = np.int32 if max(nnz, n_rows, n_cols) < 2**31 - 1 else np.int64
        cp = np.empty(n_rows + 1, dtype=idx)
        cj = np.empty(nnz, dtype=idx)
        cx = np.empty(nnz, dtype=np.int32)
        csr_matmat(n_rows, n_cols, np.asarray(indptr, dtype=idx), np.asarray(dst, dtype=idx),
                   ones(nnz), np.arange(n_cols + 1, dtype=idx), np.arange(n_cols, dtype=idx),
                   ones(n_cols), cp, cj, cx)
    except (ImportError, AttributeError, TypeError, ValueError):
        m = sp.csr_matrix((ones(nnz), dst, indptr), shape=(n_rows, n_cols))
        return (m @ sp.identity(n_cols, dtype=np.int32, format="csr")).tocsr()
    k = int(cp[-1])
    if k < 0.75 * nnz:  # many duplicates (local connectivity): do not keep the slack
        cj, cx = cj[:k].copy(), cx[:k].copy()
    return sp.csr_matrix((cx[:k], cj[:k], cp), shape=(n_rows, n_cols))


#: call scipy's compiled sparse kernels (``scipy.sparse._sparsetools``, private) directly
#: where that skips a pass over 1e8 entries; False (or a scipy without them) takes the
#: public scipy route, which gives the same partition (tested)
USE_SPARSETOOLS = True


def _pair_matrix(view: View, neuron_core: np.ndarray, n_cores: int) -> sp.csr_matrix:
    """``(n_rows, n_cores)`` CSR over all sources: synapses per (source, core) pair (no
    duplicates; columns within a row in no particular order)."""
    by_row: dict[int, list[Proj]] = {}
    for pr in view.projs:
        by_row.setdefault(pr.pre_row, []).append(pr)
    starts = sorted(set(int(x) for x in view.pop_off[:-1]) | set(int(x) for x in
                                                                   view.in_off[:-1]))
    sizes = {int(view.pop_off[k]): int(view.pop_off[k + 1] - view.pop_off[k])
             for k in range(len(view.pops))}
    sizes.update({int(view.in_off[k]): int(view.in_off[k + 1] - view.in_off[k])
                  for k in range(len(view.inputs))})
    simple = all(len(v) == 1 and v[0].kind == "csr" for v in by_row.values())
    if simple and sum(sizes[s] for s in starts) == view.n_rows:
        # every source feeds at most one projection, all sparse: the synapse cores of
        # all sources are gathered into one buffer and counted in one product (no
        # concatenation of per-population results afterwards)
        total = sum(pr.n_syn for pr in view.projs)
        dst = np.empty(total, dtype=np.int32 if n_cores < 2**31 - 1 else np.int64)
        indptr = np.empty(view.n_rows + 1, dtype=np.int64)
        indptr[0] = 0
        off = 0
        for s in starts:
            size = sizes[s]
            prs = by_row.get(s)
            if prs:
                pr = prs[0]
                post_core = neuron_core[pr.post_off:pr.post_off + pr.n_post].astype(
                    dst.dtype, copy=False)
                np.take(post_core, pr.indices, out=dst[off:off + pr.n_syn], mode="clip")
                indptr[s + 1:s + size + 1] = np.asarray(pr.indptr[1:], dtype=np.int64) + off
                off += pr.n_syn
            else:
                indptr[s + 1:s + size + 1] = off
        return _dedupe(indptr, dst, view.n_rows, n_cores, view.ones)
    blocks = []
    for s in starts:
        mats = [_proj_counts(pr, neuron_core, n_cores, view.ones) for pr in by_row.get(s, [])]
        if not mats:
            blocks.append(sp.csr_matrix((sizes[s], n_cores), dtype=np.int32))
            continue
        m = mats[0]
        for other in mats[1:]:
            m = m + other  # scipy merges rows (sorted or not) without duplicates
        blocks.append(m.tocsr())
    if len(blocks) == 1:
        return blocks[0]
    # stack the blocks by hand: one copy, no re-check of up to 1e8 entries
    ptr = [np.zeros(1, dtype=np.int64)]
    off = 0
    for b in blocks:
        ptr.append(b.indptr[1:].astype(np.int64) + off)
        off += int(b.indptr[-1])
    out = sp.csr_matrix((np.concatenate([b.data for b in blocks]),
                         np.concatenate([b.indices for b in blocks]), np.concatenate(ptr)),
                        shape=(sum(b.shape[0] for b in blocks), n_cores))
    return out


def fill_dest(ev: Eval) -> None:
    """Exact destination cores per core (column ``destination_cores``) from the graph."""
    g = ev.core_graph
    j = ev.names.index("destination_cores")
    ev.used[:, j] = np.diff(g.indptr) - (g.diagonal() > 0)


class Eval:
    """Exact usage of one assignment. The core graph (messages between cores, the
    diagonal = local) is built on first use from the (source, core) pairs: repair rounds
    that only check budgets never build it (up to 1e8 pairs), unless the target limits
    destination cores."""

    __slots__ = ("used", "names", "core_sources", "input_messages", "pair_core",
                 "pair_count", "pair_src_core", "_graph", "_n_cores")

    def __init__(self, used: np.ndarray, names: tuple[str, ...], core_sources: np.ndarray,
                 input_messages: np.ndarray, pair_core: np.ndarray | None = None,
                 pair_count: np.ndarray | None = None,
                 pair_src_core: np.ndarray | None = None,
                 core_graph: sp.csr_matrix | None = None, n_cores: int = 0) -> None:
        self.used = used  # (C, len(names))
        self.names = names
        self.core_sources = core_sources
        self.input_messages = input_messages
        self.pair_core = pair_core  # core of every (source, core) pair, sources in order
        self.pair_count = pair_count  # synapses of the pair
        self.pair_src_core = pair_src_core  # core of the source neuron (neuron rows only)
        self._graph = core_graph
        self._n_cores = n_cores

    @property
    def core_graph(self) -> sp.csr_matrix:
        """``(C, C)`` CSR of messages, sorted indices, no duplicates."""
        if self._graph is None:
            self._graph = build_core_graph(self.pair_src_core, self.pair_core, self._n_cores)
        return self._graph


def build_core_graph(rc: np.ndarray, col: np.ndarray, n_cores: int, ones: Any = None
                ) -> sp.csr_matrix:
    """Messages between cores from the source core and destination core of every
    (neuron, core) pair (``col`` may run on past ``rc`` into input rows)."""
    nb = rc.shape[0]
    pidx = col[:nb]
    if n_cores * n_cores <= 50_000_000:
        flat = np.bincount(rc.astype(np.int64) * n_cores + pidx,
                           minlength=n_cores * n_cores)
        # the nonzero cells in row-major order are the CSR entries (sorted, canonical)
        nz = np.flatnonzero(flat)
        indptr = np.zeros(n_cores + 1, dtype=np.int64)
        np.cumsum(np.bincount(nz // n_cores, minlength=n_cores), out=indptr[1:])
        idx = np.int32 if max(n_cores, nz.shape[0]) < 2**31 - 1 else np.int64
        core_graph = sp.csr_matrix((flat[nz], (nz % n_cores).astype(idx),
                                    indptr.astype(idx)), shape=(n_cores, n_cores))
    else:
        core_graph = _sorted_pairs_csr(rc, pidx, n_cores, ones or plain_ones)
    core_graph.sum_duplicates()
    return core_graph


def _sorted_pairs_csr(rows: np.ndarray, cols: np.ndarray, n: int,
                      ones: Any = plain_ones) -> sp.csr_matrix:
    """``(n, n)`` int64 CSR counting the pairs ``(rows[i], cols[i])``, sorted indices,
    duplicates adjacent (``sum_duplicates`` is then linear): two stable counting sorts
    (by column, then by row: a transpose), no comparison sort of up to 1e8 pairs."""
    nb = int(rows.shape[0])
    try:
        if not USE_SPARSETOOLS:
            raise ImportError("public scipy route requested")
        from scipy.sparse import _sparsetools

        idx = np.int32 if max(nb, n) < 2**31 - 1 else np.int64
        tp = np.empty(n + 1, dtype=idx)
        ti = np.empty(nb, dtype=idx)
        tx = np.empty(nb, dtype=np.int32)
        # the transpose (rows = columns of the result), entries in their given order
        _sparsetools.coo_tocsr(n, n, nb, cols.astype(idx, copy=False),
                               rows.astype(idx, copy=False), ones(nb), tp, ti, tx)
    except (ImportError, AttributeError, TypeError, ValueError):
        g = sp.coo_matrix((np.ones(nb, dtype=np.int64), (rows, cols)), shape=(n, n)).tocsr()
        return g
    t = sp.csr_matrix((tx, ti, tp), shape=(n, n))
    del ti, tx
    g = t.tocsc()  # stable: rows of the result in order, columns sorted within each
    del t
    out = sp.csr_matrix((g.data, g.indices, g.indptr), shape=(n, n))
    out.sum_duplicates()
    out.data = out.data.astype(np.int64)
    return out


def evaluate(view: View, neuron_core: np.ndarray, n_cores: int, target: Target) -> Eval:
    """The resource usage of every core under the assignment ``neuron_core``."""
    n = view.n_neurons
    m = _pair_matrix(view, neuron_core, n_cores)
    indptr = m.indptr
    nb = int(indptr[n])
    idx = m.indices
    input_axons = np.bincount(idx, minlength=n_cores).astype(np.int64)
    # bits: every pair's row at the cost of a one-synapse row, plus the difference for
    # the (few, on spread connectivity) pairs of several synapses (integers: exact)
    data = m.data
    multi = np.flatnonzero(data != 1)
    one_bits = int(synapse_row_bits(np.ones(1, dtype=np.int64), target)[0])
    extra = synapse_row_bits(data[multi], target).astype(np.int64) - one_bits
    bits = (input_axons * one_bits + np.bincount(
        idx[multi], weights=extra, minlength=n_cores)).astype(np.int64)
    rowlen = np.diff(indptr[:n + 1])
    own = neuron_core.astype(np.int64)
    output_axons = np.bincount(own, weights=rowlen, minlength=n_cores).astype(np.int64)
    rc = np.repeat(own.astype(np.int32), rowlen)  # source core of every (neuron, core) pair
    pidx = idx[:nb]
    # pairs are distinct, so a neuron has at most one pair on its own core
    own_pair = np.flatnonzero(pidx == rc)
    has_own = np.bincount(np.searchsorted(indptr[:n + 1], own_pair, side="right") - 1,
                          minlength=n)
    remote = (rowlen - has_own) > 0
    core_sources = np.bincount(own[remote], minlength=n_cores).astype(np.int64)
    core_graph = None
    if target.core.max_destinations is not None:
        core_graph = build_core_graph(rc, idx, n_cores, view.ones)
        dest = np.diff(core_graph.indptr) - (core_graph.diagonal() > 0)
    else:  # no such budget: counted from the pairs when the core graph is built
        dest = np.zeros(n_cores, dtype=np.int64)
    input_messages = np.bincount(idx[nb:], minlength=n_cores).astype(np.int64)
    neurons = np.bincount(own, minlength=n_cores).astype(np.int64)
    names = BUDGET_NAMES
    used = np.stack([neurons, input_axons, output_axons, bits, dest.astype(np.int64)], axis=1)
    return Eval(used=used, names=names, core_graph=core_graph, core_sources=core_sources,
                 input_messages=input_messages, pair_core=idx, pair_count=m.data,
                 pair_src_core=rc, n_cores=n_cores)


def evaluate_partition(net: Network, target: Target, neuron_core: np.ndarray,
                       *, mix_populations: bool | None = None) -> CoreUsage:
    """Exact per-core usage of a given neuron -> core assignment (for checks and tests)."""
    view = build_view(net, target, mix_populations)
    nc = np.asarray(neuron_core, dtype=np.int64)
    n_cores = int(nc.max()) + 1 if nc.size else 0
    ev = evaluate(view, nc, n_cores, target)
    fill_dest(ev)
    lim = np.broadcast_to(limits_of(target, ev.names, False), ev.used.shape).copy()
    return CoreUsage(names=ev.names, used=ev.used, limit=lim)
