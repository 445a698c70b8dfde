"""Heuristic placement: dual recursive bipartitioning (Pellegrini 1994, as in Scotch)
and a batched Kernighan-Lin style local search (Kernighan and Lin 1970)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ...mapping import Partition
from ..arrays import concat_ranges
from .geometry import Geometry, edge_cost


# =========================================================================== heuristic
def _bisect(g: sp.csr_matrix, n1: int, seed: int) -> np.ndarray:
    """Side (0/1) of every vertex, exactly ``n1`` on side 0, small cut (METIS + fix)."""
    n = g.shape[0]
    if n1 <= 0:
        return np.ones(n, dtype=np.int64)
    if n1 >= n:
        return np.zeros(n, dtype=np.int64)
    side = None
    if g.nnz > 0 and n > 3:
        import pymetis

        w = g.data
        factor = min(1e6 / max(float(w.max()), 1e-12), 1e9 / max(float(w.sum()), 1e-12))
        wi = np.maximum(1, np.rint(w * factor)).astype(np.int64)
        try:
            _, parts = pymetis.part_graph(
                2, adjacency=pymetis.CSRAdjacency(g.indptr.astype(np.int64),
                                                  g.indices.astype(np.int64)),
                eweights=wi, tpwgts=[n1 / n, 1 - n1 / n],
                options=pymetis.Options(seed=int(seed) % (2**31 - 1)))
            side = np.asarray(parts, dtype=np.int64)
        except Exception:  # noqa: BLE001 - METIS rejects some degenerate graphs
            side = None
    if side is None:
        side = (np.arange(n) >= n1).astype(np.int64)
    k0 = int((side == 0).sum())
    if k0 != n1:  # move the vertices that gain most from the larger side
        src_side = 0 if k0 > n1 else 1
        moves = abs(k0 - n1)
        other = (side != src_side).astype(np.float64)
        ext = g @ other
        tot = np.asarray(g.sum(axis=1)).ravel()
        gain = ext - (tot - ext)
        cand = np.flatnonzero(side == src_side)
        order = cand[np.lexsort((cand, -gain[cand]))]
        side[order[:moves]] = 1 - src_side
    return side


def _region(geo: Geometry, n: int) -> np.ndarray:
    """A compact set of at least ``n`` physical cores: whole routers in order of their
    hop distance from the router nearest the centre of the system."""
    xy = geo.node_xy
    centre = xy.mean(axis=0)
    c0 = int(np.lexsort((np.arange(xy.shape[0]), np.abs(xy - centre).sum(axis=1)))[0])
    d = geo.hops_nodes(np.full(geo.n_nodes, c0), np.arange(geo.n_nodes))
    order = np.lexsort((xy[:, 0], xy[:, 1], d))
    cap = np.diff(geo.node_cores_ptr)[order]
    k = int(np.searchsorted(np.cumsum(cap), n)) + 1
    nodes = order[:k]
    return np.concatenate([geo.node_cores[geo.node_cores_ptr[v]:geo.node_cores_ptr[v + 1]]
                           for v in nodes])


def snake_start(geo: Geometry, n: int) -> np.ndarray:
    """Logical core i on the i-th core of a compact region, routers in snake order."""
    phys = _region(geo, n)
    xy = geo.node_xy[geo.core_node[phys]]
    x = np.where(xy[:, 1] % 2 == 0, xy[:, 0], -xy[:, 0])
    order = np.lexsort((phys, x, xy[:, 1]))
    return phys[order[:n]].astype(np.int64)


def bisection_start(geo: Geometry, g: sp.csr_matrix, seed: int) -> np.ndarray:
    """Dual recursive bipartitioning of the core graph and a compact region of routers."""
    c = g.shape[0]
    pos = np.full(c, -1, dtype=np.int64)
    xy = geo.node_xy[geo.core_node]
    slot = np.arange(geo.n_phys)
    stack = [(np.arange(c), _region(geo, c))]
    calls = 0
    while stack:
        logical, phys = stack.pop()
        n, p = logical.shape[0], phys.shape[0]
        if n == 0:
            continue
        pxy = xy[phys]
        if n == 1 or np.ptp(pxy[:, 0]) + np.ptp(pxy[:, 1]) == 0:
            order = np.lexsort((slot[phys], pxy[:, 0], pxy[:, 1]))
            pos[logical] = phys[order[:n]]
            continue
        axis = 0 if np.ptp(pxy[:, 0]) >= np.ptp(pxy[:, 1]) else 1
        order = np.lexsort((slot[phys], pxy[:, 1 - axis], pxy[:, axis]))
        phys = phys[order]
        n1 = (n + 1) // 2
        p1 = min(max(int(round(p * n1 / n)), n1), p - (n - n1))
        # do not cut a router in two when a router boundary is close
        sub = g[logical][:, logical].tocsr()
        side = _bisect(sub, n1, seed + calls)
        calls += 1
        stack.append((logical[side == 1], phys[p1:]))
        stack.append((logical[side == 0], phys[:p1]))
    return pos


def local_search(geo: Geometry, g: sp.csr_matrix, pos: np.ndarray, rng: np.random.Generator,
                  budget: int, link_weight: float, part: Partition, stats: dict[str, Any]
                  ) -> np.ndarray:
    """Improve placement ``pos`` by pairwise swaps and moves, within ``budget`` tries."""
    c = g.shape[0]
    if c < 2:
        return pos
    occ = np.full(geo.n_phys, -1, dtype=np.int64)
    occ[pos] = np.arange(c)
    indptr, indices, data = g.indptr, g.indices.astype(np.int64), g.data
    deg = np.diff(indptr)
    coo = g.tocoo()
    up = coo.row < coo.col
    e_src, e_dst, e_w = coo.row[up].astype(np.int64), coo.col[up].astype(np.int64), \
        coo.data[up]
    cw = np.cumsum(data)
    rowsum = np.asarray(g.sum(axis=1)).ravel()
    nadj_ptr, nadj = geo.adj.indptr, geo.adj.indices.astype(np.int64)

    def objective(p: np.ndarray) -> tuple[float, int]:
        cost = edge_cost(geo, e_src, e_dst, e_w, p)
        if link_weight <= 0:
            return float(cost), cost
        node = geo.core_node[p]
        _, load = geo.noc.unicast_link_load(node[part.edge_src], node[part.edge_dst],
                                            np.asarray(part.edge_messages, dtype=np.int64))
        return cost + link_weight * float(load.max(initial=0)), cost

    best_j, _ = objective(pos)
    work = 0
    rounds = 0
    idle = 0
    accepted = 0
    m = int(min(max(64, c), 1024))
    region = np.union1d(_region(geo, 4 * c), pos)
    exhaustive = c * region.shape[0] <= 50_000
    while work < budget and idle < 12 and rounds < 2000:
        rounds += 1
        if exhaustive:  # every (logical core, region core) pair: a full 2-opt round
            a = np.repeat(np.arange(c), region.shape[0])
            p = np.tile(region, c)
        else:
            a = rng.integers(0, c, m)
            a = np.repeat(a[deg[a] > 0], 8)
            if a.size == 0:
                break
            # a neighbour k of a, drawn by weight; target router: k's or one next to it
            u = rng.random(a.shape[0])
            base = np.where(indptr[a] > 0, cw[np.maximum(indptr[a] - 1, 0)], 0.0)
            k = indices[np.minimum(np.searchsorted(cw, base + u * rowsum[a], side="right"),
                                   indptr[a + 1] - 1)]
            node = geo.core_node[pos[k]]
            nd = nadj_ptr[node + 1] - nadj_ptr[node]
            hop = rng.random(a.shape[0]) < 0.5
            pick = nadj_ptr[node] + (rng.random(a.shape[0]) * np.maximum(nd, 1)).astype(
                np.int64)
            if nadj.shape[0]:  # a single router (one SpiNNaker 2 chip) has no links
                step = nadj[np.minimum(pick, nadj.shape[0] - 1)]
                step_cnt = geo.node_cores_ptr[step + 1] - geo.node_cores_ptr[step]
                node = np.where(hop & (nd > 0) & (step_cnt > 0), step, node)
            ncnt = geo.node_cores_ptr[node + 1] - geo.node_cores_ptr[node]
            slot = (rng.random(a.shape[0]) * ncnt).astype(np.int64)
            p = geo.node_cores[geo.node_cores_ptr[node] + slot]
        b = occ[p]
        pa = pos[a]
        ok = (p != pa) & (b != a)
        a, p, b, pa = a[ok], p[ok], b[ok], pa[ok]
        if a.size == 0:
            idle += 1
            continue
        # delta of moving a to p (and b, if any, to pa)
        na = geo.core_node
        ia = np.repeat(np.arange(a.shape[0]), deg[a])
        ea = concat_ranges(indptr[a], deg[a])
        nb_a = indices[ea]
        npos = na[pos[nb_a]]
        d_a = data[ea] * (geo.hops_nodes(na[p[ia]], npos) - geo.hops_nodes(na[pa[ia]], npos))
        delta = np.bincount(ia, weights=d_a, minlength=a.shape[0])
        w_ab = np.bincount(ia, weights=data[ea] * (nb_a == b[ia]), minlength=a.shape[0])
        has_b = b >= 0
        bi = np.flatnonzero(has_b)
        if bi.size:
            bb = b[bi]
            ib = np.repeat(bi, deg[bb])
            eb = concat_ranges(indptr[bb], deg[bb])
            nposb = na[pos[indices[eb]]]
            d_b = data[eb] * (geo.hops_nodes(na[pa[ib]], nposb) -
                              geo.hops_nodes(na[p[ib]], nposb))
            delta += np.bincount(ib, weights=d_b, minlength=a.shape[0])
            work += eb.shape[0]
        delta += 2 * w_ab * geo.hops_nodes(na[pa], na[p]) * has_b
        work += ea.shape[0]
        good = np.flatnonzero(delta < -1e-9)
        if good.size == 0:
            idle += 1
            if exhaustive:
                break
            continue
        good = good[np.lexsort((good, delta[good]))]
        used: set[int] = set()
        chosen = []
        # plain Python ints (one conversion per array, not one per element)
        for i, ka, kb, kp, kpa in zip(good.tolist(), a[good].tolist(), b[good].tolist(),
                                      p[good].tolist(), pa[good].tolist(), strict=True):
            if ka in used or (kb >= 0 and kb in used) or \
                    -2 - kp in used or -2 - kpa in used:
                continue
            used.update((ka, kb, -2 - kp, -2 - kpa))
            chosen.append(i)
        ch = np.asarray(chosen, dtype=np.int64)
        new = pos.copy()
        new[a[ch]] = p[ch]
        hb = ch[b[ch] >= 0]
        new[b[hb]] = pa[hb]
        j, _ = objective(new)
        if j >= best_j and ch.size > 1:  # interactions: fall back to the single best swap
            ch = ch[:1]
            new = pos.copy()
            new[a[ch]] = p[ch]
            hb = ch[b[ch] >= 0]
            new[b[hb]] = pa[hb]
            j, _ = objective(new)
        if j < best_j - 1e-9:
            best_j = j
            pos = new
            occ[:] = -1
            occ[pos] = np.arange(c)
            accepted += int(ch.size)
            idle = 0
        else:
            idle += 1
            if exhaustive and ch.size == 1:
                break
    stats["local_search_rounds"] = rounds
    stats["local_search_moves"] = accepted
    return pos
