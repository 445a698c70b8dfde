"""Multilevel partitioning (G. Karypis and V. Kumar, "A fast and high quality multilevel
scheme for partitioning irregular graphs", SIAM J. Sci. Comput. 20(1), 1998): blocks of
neurons, their coarse graph, METIS k-way, sampled usage and a probe of the split factor."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...mapping import BUDGET_NAMES
from ...targets import Target
from ...targets.budgets import synapse_row_bits
from ..arrays import concat_ranges
from .repair import compact, overload, split_over
from .usage import Eval, evaluate
from .view import View


def sequential(view: View, cap: int) -> tuple[np.ndarray, int]:
    """Neurons to cores in order, ``cap`` per core, each population starting a new core.

    Returns:
        The core of every neuron and the number of cores."""
    nc = np.empty(view.n_neurons, dtype=np.int64)
    base = 0
    for k in range(len(view.pops)):
        a, b = int(view.pop_off[k]), int(view.pop_off[k + 1])
        nc[a:b] = base + np.arange(b - a) // cap
        base += -(-(b - a) // cap)
    return nc, base


def _blocks(view: View, cap: int, max_blocks: int) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, int]:
    """Contiguous neuron blocks: (block of neuron, block sizes, block group, n_blocks)."""
    n = view.n_neurons
    b = max(1, -(-n // max_blocks))
    b = min(b, max(1, cap // 16))
    sizes = np.diff(view.pop_off)
    nblk = -(-sizes // b)
    boff = np.concatenate([[0], np.cumsum(nblk)])
    block = np.empty(n, dtype=np.int64)
    for k in range(len(view.pops)):
        a, e = int(view.pop_off[k]), int(view.pop_off[k + 1])
        block[a:e] = boff[k] + np.arange(e - a) // b
    n_blocks = int(boff[-1])
    bsize = np.bincount(block, minlength=n_blocks)
    bgroup = np.repeat(view.groups[: len(view.pops)], nblk)
    return block, bsize, bgroup, n_blocks


def _block_graph(view: View, block: np.ndarray, bsize: np.ndarray, n_blocks: int,
                 rng: np.random.Generator, sample: int) -> sp.csr_matrix:
    """Symmetric block graph (weights ``min(synapses, |A|)``, float), from all synapses or
    a seeded sample of them."""
    total = sum(pr.n_syn for pr in view.projs if pr.pre_row < view.n_neurons)
    rows, cols, wts = [], [], []
    for pr in view.projs:
        if pr.pre_row >= view.n_neurons or pr.n_syn == 0:
            continue  # inputs are not placed
        quota = pr.n_syn if total <= sample else max(1, int(sample * pr.n_syn / total))
        if pr.kind == "dense":
            pb = block[pr.pre_row:pr.pre_row + pr.n_pre]
            qb = block[pr.post_off:pr.post_off + pr.n_post]
            pu, pc = np.unique(pb, return_counts=True)
            qu, qc = np.unique(qb, return_counts=True)
            r, c = np.meshgrid(pu, qu, indexing="ij")
            rows.append(r.ravel())
            cols.append(c.ravel())
            wts.append(np.outer(pc, qc).ravel().astype(np.float64))
            continue
        if quota >= pr.n_syn:
            s = None
            scale = 1.0
        else:
            s = np.sort(rng.choice(pr.n_syn, size=quota, replace=False))
            scale = pr.n_syn / quota
        if pr.kind == "csr":
            if s is None:
                pre = np.repeat(np.arange(pr.n_pre, dtype=np.int64), np.diff(pr.indptr))
                post = pr.indices
            else:
                pre = np.searchsorted(pr.indptr, s, side="right") - 1
                post = pr.indices[s]
        else:
            pre, post = (pr.pre, pr.indices) if s is None else (pr.pre[s], pr.indices[s])
        rows.append(block[pr.pre_row + pre])
        cols.append(block[pr.post_off + np.asarray(post, dtype=np.int64)])
        wts.append(np.full(rows[-1].shape[0], scale))
    if not rows:
        return sp.csr_matrix((n_blocks, n_blocks))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = np.concatenate(wts)
    off = r != c
    r, c, w = r[off], c[off], w[off]
    g = sp.coo_matrix((w, (r, c)), shape=(n_blocks, n_blocks)).tocsr()
    # a source neuron sends at most one message to the core holding B
    rr = np.repeat(np.arange(n_blocks), np.diff(g.indptr))
    g.data = np.minimum(g.data, bsize[rr].astype(np.float64))
    g = (g + g.T).tocsr()
    return g


def _metis(g: sp.csr_matrix, vw: np.ndarray, k: int, seed: int, max_edges: int,
           cache: dict[str, Any] | None = None) -> np.ndarray:
    """pymetis k-way on a symmetric weighted graph; returns the part of every vertex.

    ``cache`` (one dict per graph ``g``) keeps the pruned graph and its integer edge
    weights between calls on the same graph (the re-weighting rounds change only the
    vertex weights)."""
    n = g.shape[0]
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    import pymetis

    if cache is not None and "adjacency" in cache:
        indptr, indices, w = cache["adjacency"]
    else:
        if g.nnz > max_edges:  # keep the heaviest edges of every vertex, then symmetrise
            keep = max(4, max_edges // max(n, 1))
            rows = np.repeat(np.arange(n), np.diff(g.indptr))
            order = np.lexsort((-g.data, rows))
            rank = np.arange(order.shape[0]) - np.repeat(g.indptr[:-1], np.diff(g.indptr))
            sel = order[rank < keep]
            h = sp.csr_matrix((g.data[sel], (rows[sel], g.indices[sel])), shape=g.shape)
            g = h.maximum(h.T).tocsr()
        w = g.data
        if w.size:
            factor = min(1e6 / max(float(w.max()), 1e-12), 1e9 / max(float(w.sum()), 1e-12))
            w = np.maximum(1, np.rint(w * factor)).astype(np.int64)
        indptr, indices = g.indptr.astype(np.int64), g.indices.astype(np.int64)
        if cache is not None:
            cache["adjacency"] = (indptr, indices, w)
    opts = pymetis.Options(seed=int(seed) % (2**31 - 1), ufactor=30)
    _, parts = pymetis.part_graph(
        int(k), adjacency=pymetis.CSRAdjacency(indptr, indices),
        vweights=np.maximum(vw, 1).astype(np.int64), eweights=w if w.size else None,
        options=opts)
    return np.asarray(parts, dtype=np.int64)


def _sample_usage(view: View, nc: np.ndarray, n_cores: int, target: Target,
                  cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact usage ``(len(cores), budgets)`` of a few ``cores`` (sorted) only
    (destination cores left 0): the synapses onto them and the synapses of their
    neurons, found with one gather over every synapse and no sort of any of them.

    Returns the usage and the probed core (index into ``cores``) and synapse count of
    every (source, probed core) pair, in the order of (source, core)."""
    n = view.n_neurons
    k = len(cores)
    cores = np.asarray(cores, dtype=np.int64)
    if k > 1 and not np.all(np.diff(cores) > 0):
        raise ValueError("_sample_usage needs sorted, distinct cores")
    where = np.full(n_cores, -1, dtype=np.int64)
    where[cores] = np.arange(k)
    ins = where >= 0
    # the neurons of the probed cores, numbered 0.. in order (rows of the output bitmap)
    in_probe = ins[nc]
    probe_rows = np.flatnonzero(in_probe)
    local = np.full(n, -1, dtype=np.int64)
    local[probe_rows] = np.arange(probe_rows.shape[0])
    n_local = int(probe_rows.shape[0])
    # input side: synapses per (source row, probed core), counted over a (row, probe)
    # table: its nonzero entries in order are the pairs in (source, core) order
    acc = np.zeros(view.n_rows * k, dtype=np.int64)
    # output side: a bitmap of (probed neuron, destination core) pairs
    use_bitmap = n_local * n_cores <= 400_000_000
    seen = np.zeros(n_local * n_cores if use_bitmap else 0, dtype=bool)
    k_out: list[np.ndarray] = []
    nc32 = nc if nc.dtype == np.int32 else nc.astype(np.int32)
    for pr in view.projs:
        post_core = nc32[pr.post_off:pr.post_off + pr.n_post]
        src_pop = pr.pre_row < n
        pre_in_s = in_probe[pr.pre_row:pr.pre_row + pr.n_pre] if src_pop else None
        if pr.kind == "dense":
            rows = np.arange(pr.n_pre, dtype=np.int64)
            r = np.bincount(post_core, minlength=n_cores)
            cs = np.flatnonzero((r > 0) & ins)
            keys = ((pr.pre_row + rows)[:, None] * k + where[cs][None, :]).ravel()
            acc[keys] += np.tile(r[cs], pr.n_pre)  # keys are distinct
            if src_pop:
                cz = np.flatnonzero(r)
                lp = local[pr.pre_row + rows[pre_in_s]]
                kk = (lp[:, None] * n_cores + cz[None, :]).ravel()
                if use_bitmap:
                    seen[kk] = True
                else:
                    k_out.append(kk)
            continue
        post_in = ins[post_core]
        pos = np.flatnonzero(post_in[pr.indices])
        if pr.kind == "csr":
            pre = np.searchsorted(pr.indptr, pos, side="right") - 1
        else:
            pre = pr.pre[pos]
        dst = post_core[pr.indices[pos]]
        acc += np.bincount((pr.pre_row + pre) * k + where[dst], minlength=acc.shape[0])
        if src_pop:
            if pr.kind == "csr":
                rs = np.flatnonzero(pre_in_s)
                ln = np.diff(pr.indptr)[rs]

                at = concat_ranges(pr.indptr[rs], ln)
                pre_o = np.repeat(rs, ln)
            else:
                at = np.flatnonzero(pre_in_s[pr.pre])
                pre_o = pr.pre[at]
            kk = local[pr.pre_row + pre_o] * n_cores + post_core[pr.indices[at]]
            if use_bitmap:
                seen[kk] = True
            else:
                k_out.append(kk)
    used = np.zeros((k, len(BUDGET_NAMES)), dtype=np.int64)
    used[:, 0] = np.bincount(nc, minlength=n_cores)[cores]
    nz = np.flatnonzero(acc)
    cnt = acc[nz]
    col = nz % k
    used[:, 1] = np.bincount(col, minlength=k)
    used[:, 3] = np.bincount(col, weights=synapse_row_bits(cnt, target), minlength=k)
    if use_bitmap:
        per_neuron = np.count_nonzero(seen.reshape(n_local, n_cores), axis=1) \
            if n_local and n_cores else np.zeros(n_local, dtype=np.int64)
        used[:, 2] = np.bincount(where[nc[probe_rows]], weights=per_neuron, minlength=k)
    elif k_out:
        uo = np.unique(np.concatenate(k_out))
        used[:, 2] = np.bincount(where[nc[probe_rows[uo // n_cores]]], minlength=k)
    return used, col, cnt


def _probe_factor(used: np.ndarray, col: np.ndarray, cnt: np.ndarray, lim: np.ndarray,
                  margin: float = 0.9) -> int:
    """Smallest number of pieces (the same for every probed core) whose predicted usage
    is within ``margin`` of every budget (pieces vary about the prediction; a repair
    round costs a full count): input axons by the spread model of
    :func:`_predict_split` (distinct sources saturate on large cores, so the pieces
    need more than the overload suggests), memory following them, the rest even."""
    k = len(used)
    cntf = cnt.astype(np.float64)
    has = lim > 0

    def worst(f: int) -> float:
        reach = np.bincount(col, weights=1.0 - (1.0 - 1.0 / f) ** cntf, minlength=k)
        pred = used.astype(np.float64) / f
        pred[:, 0] = np.ceil(used[:, 0] / f)
        pred[:, 1] = reach
        pred[:, 3] = np.where(used[:, 1] > 0, used[:, 3] * reach / np.maximum(used[:, 1], 1),
                              0.0)
        return float(np.where(has[None, :], pred / np.maximum(lim, 1)[None, :], 0.0).max())

    lo, hi = 1, 2
    top = int(max(used[:, 0].max(initial=1), 1))
    while hi < top and worst(hi) > margin:
        lo, hi = hi, min(2 * hi, top)
    while hi - lo > 1:  # worst(f) falls as f grows
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if worst(mid) > margin else (lo, mid)
    return hi


def metis_partition(view: View, target: Target, cap: int, lim: np.ndarray, seed: int,
                     max_blocks: int, sample: int, rounds: int, max_edges: int,
                     stats: dict[str, Any]) -> tuple[np.ndarray, int, Eval | None]:
    """Partition blocks of neurons with METIS on the sampled block graph, within ``lim``.

    Returns:
        The core of every neuron, the number of cores and the usage evaluation."""
    rng = np.random.default_rng(seed)
    block, bsize, bgroup, n_blocks = _blocks(view, cap, max_blocks)
    t0 = time.perf_counter()
    g = _block_graph(view, block, bsize, n_blocks, rng,
                     min(sample, 64 * n_blocks + 100_000))
    stats["blocks"] = n_blocks
    stats["block_size"] = int(bsize.max()) if bsize.size else 0
    stats["block_graph_edges"] = int(g.nnz)
    stats["block_graph_s"] = round(time.perf_counter() - t0, 3)
    weight = bsize.astype(np.float64)  # load of each block in units of "neurons"
    groups = np.unique(bgroup)
    ev = None
    nc = np.zeros(view.n_neurons, dtype=np.int64)
    n_cores = 0
    t0 = time.perf_counter()
    subs: dict[Any, tuple[sp.csr_matrix, dict[str, Any]]] = {}  # per group, all rounds
    for r in range(rounds):
        part = np.empty(n_blocks, dtype=np.int64)
        base = 0
        for gid in groups:
            sel = np.flatnonzero(bgroup == gid)
            k = max(1, math.ceil(weight[sel].sum() * 1.03 / cap))
            if gid not in subs:
                subs[gid] = (g[sel][:, sel].tocsr() if groups.size > 1 else g, {})
            sub, cache = subs[gid]
            vw = np.rint(weight[sel] * 16).astype(np.int64)
            tm = time.perf_counter()
            part[sel] = base + _metis(sub, vw, k, seed + 7919 * r, max_edges, cache)
            stats["metis_call_s"] = round(stats.get("metis_call_s", 0)
                                          + time.perf_counter() - tm, 3)
            base += k
        nc, n_cores = compact(part[block])
        if rounds == 1 and n_cores > 1:
            # large network: a few cores counted exactly first; if they are far over a
            # budget (random fan-in against input axons), every core is cut by their
            # overload at once and the exact count of METIS's parts is skipped
            probe = np.sort(rng.choice(n_cores, min(8, n_cores), replace=False))
            su, s_col, s_cnt = _sample_usage(view, nc, n_cores, target, probe)
            has = lim > 0
            sr = np.where(has[None, :], su / np.maximum(lim, 1)[None, :], 0.0)[:, 1:]
            stats["probe_overload"] = round(float(sr.max()), 3)
            # only for spread connectivity (few synapses per (source, core) pair): the
            # spread model is far too pessimistic for local connectivity, whose sources
            # reach few contiguous pieces
            spread = s_cnt.size > 0 and float(s_cnt.mean()) <= 4.0
            stats["probe_synapses_per_pair"] = round(float(s_cnt.mean()), 3) \
                if s_cnt.size else 0.0
            if sr.max() > 4.0 and spread:
                sizes = np.bincount(nc, minlength=n_cores)
                f = np.minimum(sizes, _probe_factor(su, s_col, s_cnt, lim))
                nc, n_cores = split_over(nc, n_cores, f)
                stats["probe_split"] = int(f.max())
                stats["metis_rounds"] = r + 1
                ev = None
                break
        ev = evaluate(view, nc, n_cores, target)
        ratio = overload(ev, lim)
        stats["metis_rounds"] = r + 1
        other = np.delete(ev.used / np.maximum(lim, 1), 0, axis=1)[:, lim[1:] >= 0]
        if other.size == 0 or other.max() <= 1.0 or r == rounds - 1:
            break  # neuron overflow from METIS's imbalance is left to the repair
        if np.median(other.max(axis=1)) > 8.0:  # far over everywhere (random fan-in vs
            break  # input axons): re-weighting cannot help; the repair cuts every core
        # blocks of an overloaded core weigh its overload (budgets other than neurons)
        core_of_block = nc[np.searchsorted(block, np.arange(n_blocks))]
        neurons_c = np.maximum(ev.used[:, 0], 1)
        load = np.maximum(ratio, ev.used[:, 0] / cap) * cap / neurons_c * 1.1
        weight = np.maximum(weight, bsize * load[core_of_block])
    stats["metis_s"] = round(time.perf_counter() - t0, 3)
    return nc, n_cores, ev
