"""The *place* pass: logical cores -> physical cores of the target's network.

Objective (the same for every method): ``cost = sum over core-graph edges of messages x
hops(physical src, physical dst)`` with ``target.hops`` (mesh: Manhattan distance
between routers; SpiNNaker: the triangular-torus distance between chips; Speck: 1),
i.e. the quadratic assignment problem of Koopmans & Beckmann (1957). The heuristic also
balances links: a batch of moves is kept only if ``cost + link_weight * max link load``
(dimension-order / shortest-path unicast routes) does not grow.

Methods:

``"cpsat"`` -- an exact model for OR-Tools CP-SAT (Perron & Didier, Google OR-Tools):
Boolean ``x[i, v]`` (logical core i on router v), capacity ``sum_i x[i, v] <= cores of
v``, router coordinates ``X_i = sum_v x_v x[i, v]`` and per edge the hop count as linear
constraints: ``h >= |X_i - X_j| + |Y_i - Y_j|`` on a mesh, ``h >= max(|dx|, |dy|,
|dx - dy|)`` on SpiNNaker's triangular lattice (the hexagonal distance), and an element
table of ``target.hops`` on wrapped or other topologies. It runs with a *deterministic*
time limit (``max_deterministic_time``), one worker, a fixed ``random_seed`` and
``interleave_search`` off, so the same seed gives the same answer; a wall-clock limit of
three times that only guards against a slow machine (only when it, rather than the
deterministic limit, ends the search can two runs differ). The heuristic's placement
is its hint, so CP-SAT never returns worse.

``"heuristic"`` -- dual recursive bipartitioning (F. Pellegrini, "Static mapping by dual
recursive bipartitioning of process and architecture graphs", SHPCC 1994, as in Scotch):
the physical cores are cut in two along the longer axis of the router grid and the core
graph is bisected by METIS (Karypis & Kumar 1998) into parts of matching sizes,
recursively; then a Kernighan-Lin style pairwise-swap local search (B. W. Kernighan and
S. Lin, Bell Syst. Tech. J. 49(2), 1970), batched: each round draws candidate moves of a
logical core next to one of its heavier neighbours (seeded), computes every candidate's
exact cost change vectorised over the sparse core graph, applies the best
non-conflicting improving swaps and keeps the batch only if the total objective fell.
Departures: no tentative (negative-gain) moves as in full KL, a fixed work budget
instead of a time limit (so the result is deterministic for a seed).

``"auto"`` -- the heuristic, then CP-SAT when the instance is small
(``cpsat_max_cores`` logical cores), keeping the better.

``"sequential"`` (logical core i on physical core i, the fill order of sPyNNaker's and
Lava's mappers) and ``"random"`` (a seeded permutation) are the baselines.

Speck: layers are matched to the 9 cores by a maximum bipartite matching (as sinabs'
``get_valid_mapping``, Edmonds-Karp max-flow) over the cores whose kernel, neuron and bias
memory fit the layer; with at most 2 destinations per core (checked by partition).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.errors import FitError, UsageError

from ..mapping import Partition, Placement
from ..targets import Target
from .arrays import concat_ranges
from .base import CompileState, Pass, PassResult, clean_record

__all__ = ["place", "place_with_link_load", "placement_cost", "hop_matrix"]


# =========================================================================== geometry
class _Geo:
    """Router geometry of a target for the placer: node of every physical core, hops
    (the NoC's hop table when it has one, :mod:`nmcompiler.targets.topology`)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.noc = target.noc
        p = int(target.total_cores)
        self.n_phys = p
        self.core_node = np.asarray(target.core_node(np.arange(p)), dtype=np.int64)
        self.n_nodes = int(target.n_nodes)
        self.node_xy = np.asarray(target.node_coords(), dtype=np.int64)
        self.node_cores_ptr = np.concatenate(
            [[0], np.cumsum(np.bincount(self.core_node, minlength=self.n_nodes))])
        self.node_cores = np.argsort(self.core_node, kind="stable")
        self.H: np.ndarray | None = self.noc.hop_table()
        links = np.asarray(target.links(), dtype=np.int64).reshape(-1, 2)
        self.adj = sp.csr_matrix((np.ones(links.shape[0]), (links[:, 0], links[:, 1])),
                                 shape=(self.n_nodes, self.n_nodes))

    def hops_nodes(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        if self.H is not None:
            return self.H[na, nb].astype(np.int64)
        return self.noc.pair_hops(na, nb)


def hop_matrix(target: Target) -> np.ndarray:
    """``(n_nodes, n_nodes)`` int16 router-to-router hops of ``target``."""
    table = target.noc.hop_table()
    if table is not None:
        return table
    n = np.arange(int(target.n_nodes), dtype=np.int64)
    return target.noc.node_hops(n[:, None], n[None, :]).astype(np.int16)


def _sym_graph(part: Partition) -> sp.csr_matrix:
    c = part.n_cores
    w = sp.csr_matrix((part.edge_messages.astype(np.float64),
                       (part.edge_src.astype(np.int64), part.edge_dst.astype(np.int64))),
                      shape=(c, c))
    g = (w + w.T).tocsr()
    g.sum_duplicates()
    return g


def placement_cost(part: Partition, target: Target, core: np.ndarray) -> int:
    """``sum(messages x hops)`` of a placement ``core`` (logical -> physical)."""
    core = np.asarray(core, dtype=np.int64)
    h = target.hops(core[part.edge_src], core[part.edge_dst])
    return int(np.sum(part.edge_messages * np.asarray(h, dtype=np.int64)))


def _cost(geo: _Geo, g_src: np.ndarray, g_dst: np.ndarray, g_w: np.ndarray,
          pos: np.ndarray, chunk: int = 1 << 24) -> int | float:
    """``sum(w x hops)`` over the edges, in chunks (bounded temporaries on 1e8 edges)."""
    total = 0
    node = geo.core_node[pos]
    for a in range(0, g_src.shape[0], chunk):
        b = a + chunk
        h = geo.hops_nodes(node[g_src[a:b]], node[g_dst[a:b]])
        total += np.sum(g_w[a:b] * h)
    return int(total)


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


def _region(geo: _Geo, n: int) -> np.ndarray:
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


def _snake(geo: _Geo, n: int) -> np.ndarray:
    """Logical core i on the i-th core of a compact region, routers in snake order."""
    phys = _region(geo, n)
    xy = geo.node_xy[geo.core_node[phys]]
    x = np.where(xy[:, 1] % 2 == 0, xy[:, 0], -xy[:, 0])
    order = np.lexsort((phys, x, xy[:, 1]))
    return phys[order[:n]].astype(np.int64)


def _initial(geo: _Geo, g: sp.csr_matrix, seed: int) -> np.ndarray:
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


def _local_search(geo: _Geo, g: sp.csr_matrix, pos: np.ndarray, rng: np.random.Generator,
                  budget: int, link_weight: float, part: Partition, stats: dict[str, Any]
                  ) -> np.ndarray:
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
        cost = _cost(geo, e_src, e_dst, e_w, p)
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


# =========================================================================== CP-SAT
def _cpsat(geo: _Geo, g: sp.csr_matrix, hint: np.ndarray | None, seed: int,
           time_limit_s: float, stats: dict[str, Any]
           ) -> tuple[np.ndarray | None, bool, float | None]:
    from ortools.sat.python import cp_model

    t = geo.target
    c = g.shape[0]
    n_nodes = geo.n_nodes
    cap = np.diff(geo.node_cores_ptr)
    coo = g.tocoo()
    up = coo.row < coo.col
    es, ed = coo.row[up], coo.col[up]
    ew = np.rint(coo.data[up]).astype(np.int64)
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{i}_{v}") for v in range(n_nodes)] for i in range(c)]
    for i in range(c):
        m.add_exactly_one(x[i])
    for v in range(n_nodes):
        m.add(sum(x[i][v] for i in range(c)) <= int(cap[v]))
    xs, ys = geo.node_xy[:, 0], geo.node_xy[:, 1]
    metric = t.noc.metric
    coords = metric is not None and not any(t.topology.wrap)
    hmax = int(geo.H.max()) if geo.H is not None else 64
    terms = []
    if coords:
        xmin, xmax, ymin, ymax = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        X = [m.new_int_var(xmin, xmax, f"X{i}") for i in range(c)]
        Y = [m.new_int_var(ymin, ymax, f"Y{i}") for i in range(c)]
        for i in range(c):
            m.add(X[i] == sum(int(xs[v]) * x[i][v] for v in range(n_nodes)))
            m.add(Y[i] == sum(int(ys[v]) * x[i][v] for v in range(n_nodes)))
        full = (len(t.topology.chips) == t.topology.chip_grid[0] * t.topology.chip_grid[1]
                and np.all(cap == cap[0]))
        if full:  # translations preserve hops: some core sits on the lowest row / column
            m.add_min_equality(xmin, X)
            m.add_min_equality(ymin, Y)
            stats["cpsat_symmetry_breaking"] = True
        for e, (i, j) in enumerate(zip(es.tolist(), ed.tolist(), strict=True)):
            h = m.new_int_var(0, hmax, f"h{e}")
            ax = m.new_int_var(0, xmax - xmin, f"ax{e}")
            ay = m.new_int_var(0, ymax - ymin, f"ay{e}")
            m.add(ax >= X[i] - X[j])
            m.add(ax >= X[j] - X[i])
            m.add(ay >= Y[i] - Y[j])
            m.add(ay >= Y[j] - Y[i])
            if metric == "manhattan":
                m.add(h >= ax + ay)
            else:  # hexagonal distance on the triangular lattice
                m.add(h >= ax)
                m.add(h >= ay)
                m.add(h >= X[i] - X[j] - Y[i] + Y[j])
                m.add(h >= X[j] - X[i] - Y[j] + Y[i])
            terms.append(int(ew[e]) * h)
    else:
        H = geo.H if geo.H is not None else hop_matrix(t)
        flat = [int(v) for v in H.astype(np.int64).ravel()]
        node = [m.new_int_var(0, n_nodes - 1, f"n{i}") for i in range(c)]
        for i in range(c):
            m.add(node[i] == sum(v * x[i][v] for v in range(n_nodes)))
        for e, (i, j) in enumerate(zip(es.tolist(), ed.tolist(), strict=True)):
            idx = m.new_int_var(0, n_nodes * n_nodes - 1, f"k{e}")
            m.add(idx == node[i] * n_nodes + node[j])
            h = m.new_int_var(0, int(H.max()), f"h{e}")
            m.add_element(idx, flat, h)
            terms.append(int(ew[e]) * h)
    m.minimize(sum(terms) if terms else 0)
    if hint is not None:
        hn = geo.core_node[hint]
        for i in range(c):
            for v in range(n_nodes):
                m.add_hint(x[i][v], int(hn[i] == v))
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = 1
    prm.random_seed = int(seed) % (2**31 - 1)
    prm.interleave_search = False
    prm.max_deterministic_time = float(time_limit_s)
    prm.max_time_in_seconds = float(time_limit_s) * 3
    status = solver.solve(m)
    stats["cpsat_status"] = solver.status_name(status)
    stats["cpsat_wall_s"] = round(solver.wall_time, 3)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, False, None
    nodes = np.array([next(v for v in range(n_nodes) if solver.value(x[i][v]))
                      for i in range(c)], dtype=np.int64)
    # cores within a router: in slot order
    pos = np.empty(c, dtype=np.int64)
    fill = np.zeros(n_nodes, dtype=np.int64)
    for i in range(c):
        v = nodes[i]
        pos[i] = geo.node_cores[geo.node_cores_ptr[v] + fill[v]]
        fill[v] += 1
    return pos, status == cp_model.OPTIMAL, float(solver.best_objective_bound)


# =========================================================================== Speck
def _speck(part: Partition, target: Target, seed: int) -> Placement:
    from scipy.sparse.csgraph import maximum_bipartite_matching

    names = part.usage.names
    p = int(target.total_cores)
    limits = []
    for name in names:
        if name in ("neurons", "neuron_memory_words"):
            v = target.per_core("neurons")
        elif name == "kernel_memory_words":
            v = target.per_core("synaptic_memory_words")
        elif name == "bias_memory_words":
            v = target.per_core("bias_memory_words")
        elif name == "destination_cores":
            v = target.per_core("max_destinations")
        else:
            v = np.full(p, -1)
        limits.append(np.asarray(v, dtype=np.int64))
    lim = np.stack(limits, axis=1)  # (P, names)
    skip = np.array([n == "neurons" for n in names])  # Speck counts neuron memory
    used = part.usage.used
    fits = np.all((lim[None, :, :] < 0) | (used[:, None, :] <= lim[None, :, :]) |
                  skip[None, None, :], axis=2)
    match = maximum_bipartite_matching(sp.csr_matrix(fits.astype(np.int8)),
                                       perm_type="column")
    if np.any(match < 0):
        bad = np.flatnonzero(match < 0)
        layer = part.populations[int(bad[0])]
        options = np.flatnonzero(fits[bad[0]]).tolist()
        raise FitError(
            f"layers cannot all get a {target.name} core: layer '{layer}' fits cores "
            f"{options} only and they are taken by other layers; {int(fits.any(1).sum())} "
            f"of {part.n_cores} layers fit some core",
            obj=layer, rule="core assignment", need=part.n_cores,
            limit=int(fits.any(axis=0).sum()),
            hint="shrink the layers that compete for the large-memory cores (fewer "
                 "channels, smaller kernels or feature maps)")
    core = match.astype(np.int64)
    cost = int(np.sum(part.edge_messages))
    return Placement(target=target.name, core=core,
                     coords=np.asarray(target.core_coords())[core], cost=cost,
                     messages=int(part.messages), mean_hops=1.0 if cost else 0.0,
                     max_link_load=int(part.edge_messages.max(initial=0)),
                     method="matching", optimal=True, lower_bound=float(cost),
                     seed=int(seed), stats={})


# =========================================================================== the pass
def place(
    part: Partition,
    target: Target,
    *,
    seed: int = 0,
    method: str = "auto",
    time_limit_s: float = 10.0,
    cpsat_max_cores: int = 8,
    effort: int = 20_000_000,
    link_weight: float = 0.1,
) -> Placement:
    """Place the logical cores of ``part`` on ``target``: :func:`place_with_link_load`
    without the link load."""
    return place_with_link_load(part, target, seed=seed, method=method,
                                time_limit_s=time_limit_s, cpsat_max_cores=cpsat_max_cores,
                                effort=effort, link_weight=link_weight)[0]


def place_with_link_load(
    part: Partition,
    target: Target,
    *,
    seed: int = 0,
    method: str = "auto",
    time_limit_s: float = 10.0,
    cpsat_max_cores: int = 8,
    effort: int = 20_000_000,
    link_weight: float = 0.1,
) -> tuple[Placement, np.ndarray | None]:
    """Place the logical cores of ``part`` on ``target`` (see the module docstring).

    Returns the placement and the unicast link load of its routes (``target.links()``
    order; None for layer placements), which the route pass takes instead of routing
    the same pairs again.

    Args:
        part: the partition.
        target: the target it was made for.
        seed: seeds METIS, the local search and CP-SAT; same seed -> same placement.
        method: ``"auto"``, ``"cpsat"``, ``"heuristic"``, ``"sequential"``, ``"random"``.
        time_limit_s: CP-SAT's deterministic time limit (about seconds).
        cpsat_max_cores: ``auto`` runs CP-SAT up to this many logical cores (and at
            most 2048 core x router variables).
        effort: work budget of the local search (core-graph entries examined).
        link_weight: weight of the max link load in the heuristic's acceptance test.

    Raises:
        FitError: more logical cores than physical ones, or (Speck) no core assignment.
    """
    if method not in ("auto", "cpsat", "heuristic", "sequential", "random"):
        raise UsageError(f"unknown placement method {method!r}", obj="place", rule="method",
                         hint="use auto, cpsat, heuristic, sequential or random")
    t0 = time.perf_counter()
    if part.method == "layers" or target.noc.layered:
        out = _speck(part, target, seed)
        out.stats["time_s"] = round(time.perf_counter() - t0, 3)
        return out, None
    c = int(part.n_cores)
    if c > target.total_cores:
        raise FitError(
            f"partition has {c} cores; {target.name} has {target.total_cores}",
            obj="network", rule="cores", need=c, limit=int(target.total_cores),
            hint="use a target with more chips")
    geo = _Geo(target)
    n_edges = int(part.edge_src.shape[0])
    # a large near-complete core graph (random networks): every placement costs about the
    # same (a full local-search round on 2,654 cores at density 0.7 gained 0.4%), so it
    # keeps the snake start and never builds the symmetric graph (up to 2e8 entries)
    dense = method in ("auto", "heuristic") and n_edges > 500_000 and n_edges > 0.1 * c * c
    g = None if dense else _sym_graph(part)
    stats: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    optimal = False
    bound = None
    if method == "sequential":
        pos = np.arange(c, dtype=np.int64)
    elif method == "random":
        pos = rng.permutation(geo.n_phys)[:c].astype(np.int64)
    else:
        pos = None
        if geo.n_nodes == 1:  # one router (one SpiNNaker 2 chip): every placement costs 0
            pos = geo.node_cores[:c].astype(np.int64)
            stats["single_router"] = True
        elif dense:
            pos = _snake(geo, c)
            stats["dense_core_graph"] = True
            stats["local_search_budget"] = 0
        elif method in ("auto", "heuristic") or c > 0:
            # two starts (dual recursive bipartitioning; the logical order laid along a
            # snake through a compact region), each improved by local search; keep the best
            starts = [_snake(geo, c)]
            if g.nnz <= min(2_000_000, 0.5 * c * c):  # bisecting a near-complete graph:
                # no gain
                starts.insert(0, _initial(geo, g, seed))
            # effort scaled to the core graph: a few passes over its entries, and none on
            # a large near-complete graph (every placement costs about the same there;
            # measured gain of a full round on 2,654 cores at density 0.7: 0.4%)
            budget = min(effort // 2, max(1_000_000, 16 * int(g.nnz)))
            stats["local_search_budget"] = budget
            e_src, e_dst, e_w = _edges(g)
            best = None
            for k, start in enumerate(starts):
                st: dict[str, Any] = {}
                cand = start if budget == 0 else _local_search(
                    geo, g, start, np.random.default_rng([seed, k]), budget, link_weight,
                    part, st)
                cost_k = _cost(geo, e_src, e_dst, e_w, cand)
                stats[f"start{k}_cost"] = [_cost(geo, e_src, e_dst, e_w, start), cost_k]
                if best is None or cost_k < best[0]:
                    best = (cost_k, cand, st)
            pos = best[1]
            stats.update(best[2])
        small = 1 < c <= cpsat_max_cores and c * geo.n_nodes <= 2048 and g is not None
        trivial = pos is not None and (geo.n_nodes == 1 or (  # already optimal
            g is not None and _cost(geo, *_edges(g), pos) == 0))
        if trivial and method == "auto":
            optimal, bound = True, 0.0
        if method == "cpsat" or (method == "auto" and small and not trivial):
            g = _sym_graph(part) if g is None else g
            sol, optimal, bound = _cpsat(geo, g, pos, seed, time_limit_s, stats)
            if sol is not None and (pos is None or
                                    _cost(geo, *_edges(g), sol) <= _cost(geo, *_edges(g), pos)):
                pos = sol
            else:
                optimal = False
    method_used = method if method != "auto" else \
        ("cpsat" if "cpsat_status" in stats else "heuristic")
    core = pos.astype(np.int64)
    node = geo.core_node[core]  # router of each logical core
    msgs_e = part.edge_messages.astype(np.int64, copy=False)
    n_e = int(part.edge_src.shape[0])
    # sum(messages x hops) in chunks (integers: exact in any order), no (edges,) int64
    # temporaries of the router of every edge end (up to 1e8 edges)
    cost = _cost(geo, part.edge_src, part.edge_dst, msgs_e, core, chunk=1 << 22) \
        if n_e else 0
    _, load = target.noc.core_link_load(node, part.edge_src, part.edge_dst, msgs_e)
    stats["time_s"] = round(time.perf_counter() - t0, 3)
    msgs = int(part.messages)
    placement = Placement(target=target.name, core=core,
                          coords=np.asarray(target.core_coords())[core], cost=cost,
                          messages=msgs, mean_hops=cost / msgs if msgs else 0.0,
                          max_link_load=int(load.max(initial=0)), method=method_used,
                          optimal=bool(optimal), lower_bound=bound, seed=int(seed),
                          stats=stats)
    return placement, load


def _edges(g: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coo = g.tocoo()
    up = coo.row < coo.col
    return coo.row[up].astype(np.int64), coo.col[up].astype(np.int64), coo.data[up]


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class PlacePass(Pass):
    """:func:`place_with_link_load` as a pipeline pass; the fields are its options. The
    link load of the placement goes to the route pass through the state."""

    name: ClassVar[str] = "place"
    requires: ClassVar[frozenset[str]] = frozenset({"partitioned"})
    ensures: ClassVar[frozenset[str]] = frozenset({"placed"})
    method: str = "auto"
    time_limit_s: float = 10.0
    cpsat_max_cores: int = 8
    effort: int = 20_000_000
    link_weight: float = 0.1

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        assert state.partition is not None  # requires "partitioned"
        opts = self.options()
        opts["method"] = getattr(self.method, "value", self.method)  # a PlaceMethod too
        pl, load = place_with_link_load(state.partition, state.target, seed=state.seed,
                                        **opts)
        pl, timings = clean_record(pl)
        return PassResult(state=state.replace(placement=pl, link_load=load),
                          report=pl.report(), changed=False, timings=timings)
