"""The *route* pass: paths on the target's network and, where the chip has them, routing
tables within their size limit.

* Meshes (Loihi): unicast dimension-order routes, x first then y (the deadlock-free
  routing of Loihi's mesh, Davies et al., IEEE Micro 2018), one message per
  (source neuron, destination core); link loads are summed with difference arrays along
  the rows and columns of the router grid (no loop per message).
* SpiNNaker (triangular torus of chips): multicast. Every logical core gets a key block
  ``key = core << b`` (``b`` bits for its neurons, mask the upper bits), as sPyNNaker
  allocates one key space per machine vertex. Its packets follow one tree: the union of
  the shortest paths from its chip to every chip holding a destination core, taken from a
  breadth-first shortest-path tree of the chip graph (so the union is a tree and no chip
  receives a packet twice). Each chip of the tree gets an entry (key, mask, route word:
  bits 0-5 links, bit 6 + p processor p) unless the packet only passes straight through
  (SpiNNaker's default routing sends an unmatched packet out opposite the link it came
  in on), as sPyNNaker removes default-routable entries.
* Every chip's table is merged as far as it goes by default (the policy lives in
  :mod:`nmcompiler.passes.route_keys`); with ``MERGE_BY_DEFAULT = False`` only a table
  over ``routing_entries`` (1023 on SpiNNaker 1) is, *only until it fits*: entries with
  the same route word merge into aligned key
  blocks (a prefix of the core id) that contain no key of a packet needing another route
  or the default route at that chip; keys of packets that never reach the chip are
  don't-cares (the idea of "don't-care" merging in A. Mundy, J. Heathcote and J. D.
  Garside, "On-chip order-exploiting routing table minimization for a multicast
  supercomputer network", HPSR 2016; departure: only prefix blocks, so merged entries
  are disjoint and the table order does not matter). Merges are applied smallest level
  first, biggest saving first, and stop as soon as the table fits.
* Speck and ``full`` networks: direct links.

:func:`deliver` simulates the tables (vectorised key/mask lookup, default routing) and
returns every (source core, physical core) pair a packet reaches; the tests check it
against the partition's edges.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from nmcompiler.ir.errors import FitError

from ..mapping import SPINNAKER_LINK_DIRECTIONS, Partition, Placement, Routes
from .route_keys import merge_target  # hook: table merging policy (route_keys.py)

__all__ = ["route", "unicast_link_load", "deliver", "lookup", "route_bits", "route_words"]

_PRED_CACHE: dict[tuple, np.ndarray] = {}

#: the unicast link load of the last placement (``place`` computes it for its report;
#: ``route`` reuses it when given that very partition and placement: same arrays)
_LOAD_MEMO: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []


def remember_link_load(part: Partition, core: np.ndarray, links: np.ndarray,
                       load: np.ndarray) -> None:
    """Keep the unicast link load of ``core`` (a placement of ``part``) for :func:`route`.

    Only the last one is kept, until a route uses it; it is recognised by the identity of
    the partition's edge arrays and of the placement's core array (never by value), so a
    route of any other mapping recomputes. Saves a pass over up to 1e8 core pairs."""
    _LOAD_MEMO.clear()
    _LOAD_MEMO.append((part.edge_src, part.edge_dst, part.edge_messages, core,
                       np.asarray(load)))


def _recall_link_load(part: Partition, core: np.ndarray) -> np.ndarray | None:
    if not _LOAD_MEMO:
        return None
    src, dst, msg, c, load = _LOAD_MEMO[0]
    if src is part.edge_src and dst is part.edge_dst and msg is part.edge_messages and \
            c is core:
        _LOAD_MEMO.clear()  # used once: hold no reference to the mapping afterwards
        return load
    return None


# =========================================================================== helpers
def _link_keys(target: Any) -> tuple[np.ndarray, np.ndarray, int]:
    links = np.asarray(target.links(), dtype=np.int64).reshape(-1, 2)
    n = int(target.n_nodes)
    return links, links[:, 0] * n + links[:, 1], n


def _predecessors(target: Any) -> np.ndarray:
    """``(n_nodes, n_nodes)`` BFS shortest-path-tree parents (``pred[s, v]``)."""
    links, _, n = _link_keys(target)
    key = (target.name, target.path, n, links.shape[0])
    if key not in _PRED_CACHE:
        g = sp.csr_matrix((np.ones(links.shape[0]), (links[:, 0], links[:, 1])),
                          shape=(n, n))
        _, pred = shortest_path(g, method="D", unweighted=True, return_predecessors=True)
        if len(_PRED_CACHE) > 8:
            _PRED_CACHE.clear()
        _PRED_CACHE[key] = pred.astype(np.int32)
    return _PRED_CACHE[key]


def _mesh_loads(target: Any, na: np.ndarray, nb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Unicast x-then-y routes on the global router grid; load per ``target.links()``.

    Difference arrays along every grid row (x legs, on the source's row) and column (y
    legs, on the destination's column), filled with ``bincount``; int32 coordinates."""
    t = target.topology
    xy = np.asarray(target.node_coords(), dtype=np.int64)
    ex = int(t.chip_grid[0] * t.node_grid[0])
    ey = int(t.chip_grid[1] * t.node_grid[1])
    xs = xy[:, 0].astype(np.int32)
    ys = xy[:, 1].astype(np.int32)
    x0, y0, x1, y1 = xs[na], ys[na], xs[nb], ys[nb]

    def signed(d: np.ndarray, e: int, wrap: bool) -> np.ndarray:
        if not wrap:
            return d
        d = np.mod(d, e)
        return np.where(d > e // 2, d - e, d)

    dx = signed(x1 - x0, ex, bool(t.wrap[0]))
    dy = signed(y1 - y0, ey, bool(t.wrap[1]))
    del x1
    mf = np.asarray(m, dtype=np.float64)  # bincount sums in float64: exact below 2**53

    def run(sel: np.ndarray, line: np.ndarray, start: np.ndarray, length: np.ndarray,
            e: int, n_lines: int) -> np.ndarray:
        """Load on the links ``k -> k+1`` of lines of length e, segments of ``length``."""
        w = 2 * e + 1
        size = n_lines * w
        at = line[sel].astype(np.int64) * w + start[sel]
        ms = mf[sel]
        flat = np.bincount(at, weights=ms, minlength=size)
        flat -= np.bincount(at + length[sel], weights=ms, minlength=size)
        acc = np.cumsum(np.rint(flat).astype(np.int64).reshape(n_lines, w), axis=1)
        return acc[:, :e] + acc[:, e:2 * e]

    pos, neg = dx > 0, dx < 0
    right = run(pos, y0, x0, dx, ex, ey)  # right[y, x]: x -> x+1
    left = run(neg, y0, ex - 1 - x0, -dx, ex, ey)[:, ::-1]  # left[y, x]: x -> x-1
    pos, neg = dy > 0, dy < 0
    xd = xs[nb]
    up = run(pos, xd, y0, dy, ey, ex)  # up[x, y]: y -> y+1
    down = run(neg, xd, ey - 1 - y0, -dy, ey, ex)[:, ::-1]
    links = np.asarray(target.links(), dtype=np.int64).reshape(-1, 2)
    la, lb = xy[links[:, 0]], xy[links[:, 1]]
    ddx = signed(lb[:, 0] - la[:, 0], ex, bool(t.wrap[0]))
    ddy = signed(lb[:, 1] - la[:, 1], ey, bool(t.wrap[1]))
    out = np.zeros(links.shape[0], dtype=np.int64)
    xa, ya = la[:, 0], la[:, 1]
    out = np.where((ddx == 1) & (ddy == 0), right[ya, xa], out)
    out = np.where((ddx == -1) & (ddy == 0), left[ya, xa], out)
    out = np.where((ddy == 1) & (ddx == 0), up[xa, ya], out)
    out = np.where((ddy == -1) & (ddx == 0), down[xa, ya], out)
    return out


def mesh_link_load_cores(target: Any, node: np.ndarray, src: np.ndarray, dst: np.ndarray,
                         m: np.ndarray) -> np.ndarray:
    """:func:`_mesh_loads` for the edges ``src -> dst`` between logical cores placed on
    routers ``node``, aggregated before any per-message work: x legs depend only on
    (source core, destination column), y legs only on (source row, destination core),
    so two sparse products with one-hot matrices reduce up to 1e8 core pairs to at most
    cores x grid-width entries. Exactly the loads of :func:`_mesh_loads`."""
    t = target.topology
    xy = np.asarray(target.node_coords(), dtype=np.int64)
    ex = int(t.chip_grid[0] * t.node_grid[0])
    ey = int(t.chip_grid[1] * t.node_grid[1])
    c = int(node.shape[0])
    xc, yc = xy[node, 0], xy[node, 1]
    counts = np.bincount(src, minlength=c)
    if src.shape[0] > 1 and np.any(src[1:] < src[:-1]):  # not sorted by source: sort
        order = np.argsort(src, kind="stable")
        src, dst, m = src[order], dst[order], m[order]
    a = sp.csr_matrix((np.asarray(m, dtype=np.float64), np.asarray(dst, dtype=np.int64),
                       np.concatenate([[0], np.cumsum(counts)])), shape=(c, c))
    ones = np.ones(c)
    px = sp.csr_matrix((ones, (np.arange(c), xc)), shape=(c, ex))  # core -> its column
    py = sp.csr_matrix((ones, (np.arange(c), yc)), shape=(c, ey))  # core -> its row
    b = (a @ px).tocoo()  # b[s, x1]: messages from core s to column x1
    d = (py.T @ a).tocoo()  # d[y0, k]: messages from row y0 to core k
    # x legs: from (x(s), y(s)) to (x1, y(s)); y legs: from (x(k), y0) to (x(k), y(k))
    seg_x = (b.row, b.col, b.data)
    seg_y = (d.row, d.col, d.data)
    return _mesh_loads_legs(target, xy, ex, ey, xc[seg_x[0]], yc[seg_x[0]], seg_x[1],
                            np.rint(seg_x[2]).astype(np.int64), seg_y[0], xc[seg_y[1]],
                            yc[seg_y[1]], np.rint(seg_y[2]).astype(np.int64))


def _mesh_loads_legs(target: Any, xy: np.ndarray, ex: int, ey: int, x0: np.ndarray,
                     y0: np.ndarray, x1: np.ndarray, mx: np.ndarray, ya: np.ndarray,
                     xb: np.ndarray, yb: np.ndarray, my: np.ndarray) -> np.ndarray:
    """Link loads of x legs ``(x0, y0) -> (x1, y0)`` carrying ``mx`` and y legs
    ``(xb, ya) -> (xb, yb)`` carrying ``my`` (difference arrays, as :func:`_mesh_loads`)."""
    t = target.topology

    def signed(d: np.ndarray, e: int, wrap: bool) -> np.ndarray:
        if not wrap:
            return d
        d = np.mod(d, e)
        return np.where(d > e // 2, d - e, d)

    def run(line: np.ndarray, start: np.ndarray, length: np.ndarray, mm: np.ndarray,
            e: int, n_lines: int) -> np.ndarray:
        w = 2 * e + 1
        size = n_lines * w
        at = line.astype(np.int64) * w + start
        ms = mm.astype(np.float64)
        flat = np.bincount(at, weights=ms, minlength=size)
        flat -= np.bincount(at + length, weights=ms, minlength=size)
        acc = np.cumsum(np.rint(flat).astype(np.int64).reshape(n_lines, w), axis=1)
        return acc[:, :e] + acc[:, e:2 * e]

    dx = signed(x1 - x0, ex, bool(t.wrap[0]))
    dy = signed(yb - ya, ey, bool(t.wrap[1]))
    p, q = dx > 0, dx < 0
    right = run(y0[p], x0[p], dx[p], mx[p], ex, ey)
    left = run(y0[q], ex - 1 - x0[q], -dx[q], mx[q], ex, ey)[:, ::-1]
    p, q = dy > 0, dy < 0
    up = run(xb[p], ya[p], dy[p], my[p], ey, ex)
    down = run(xb[q], ey - 1 - ya[q], -dy[q], my[q], ey, ex)[:, ::-1]
    links = np.asarray(target.links(), dtype=np.int64).reshape(-1, 2)
    la, lb = xy[links[:, 0]], xy[links[:, 1]]
    ddx = signed(lb[:, 0] - la[:, 0], ex, bool(t.wrap[0]))
    ddy = signed(lb[:, 1] - la[:, 1], ey, bool(t.wrap[1]))
    out = np.zeros(links.shape[0], dtype=np.int64)
    xa, yl = la[:, 0], la[:, 1]
    out = np.where((ddx == 1) & (ddy == 0), right[yl, xa], out)
    out = np.where((ddx == -1) & (ddy == 0), left[yl, xa], out)
    out = np.where((ddy == 1) & (ddx == 0), up[xa, yl], out)
    out = np.where((ddy == -1) & (ddx == 0), down[xa, yl], out)
    return out


def _tree_loads(target: Any, na: np.ndarray, nb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Unicast shortest-path-tree routes (any topology); load per ``target.links()``."""
    links, lkey, n = _link_keys(target)
    pred = _predecessors(target)
    load = np.zeros(links.shape[0], dtype=np.int64)
    cur, src, w = nb.copy(), na.copy(), m.astype(np.int64)
    for _ in range(n):
        act = cur != src
        if not act.any():
            break
        cur, src, w = cur[act], src[act], w[act]
        par = pred[src, cur].astype(np.int64)
        idx = np.searchsorted(lkey, par * n + cur)
        load += np.bincount(idx, weights=w, minlength=links.shape[0]).astype(np.int64)
        cur = par
    return load


def unicast_link_load(target: Any, src_core: np.ndarray, dst_core: np.ndarray,
                      messages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed links and their load when every pair sends ``messages`` unicast.

    Mesh: x-then-y; triangular torus and others: shortest-path tree; Speck / full:
    the direct link. Returns ``(target.links(), load)``.
    """
    src_core = np.asarray(src_core, dtype=np.int64)
    dst_core = np.asarray(dst_core, dtype=np.int64)
    if src_core.size == 0:
        return _node_link_load(target, src_core, dst_core, messages)
    na = np.asarray(target.core_node(src_core), dtype=np.int64)
    nb = np.asarray(target.core_node(dst_core), dtype=np.int64)
    return _node_link_load(target, na, nb, messages)


def _hops_nodes(target: Any, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Router hops between routers ``na`` and ``nb`` (int32 Manhattan on plain meshes)."""
    t = target.topology
    if t.kind == "mesh2d" and not any(t.wrap):
        xy = np.asarray(target.node_coords())
        xs, ys = xy[:, 0].astype(np.int32), xy[:, 1].astype(np.int32)
        h = np.abs(xs[na] - xs[nb])
        h += np.abs(ys[na] - ys[nb])
        return h.astype(np.int64)
    n = int(target.n_nodes)
    if n <= 6000 and na.size > 4 * n * n:  # many pairs: one lookup in a hop table
        key = ("hops", target.name, target.path, n)
        if key not in _PRED_CACHE:
            idx = np.arange(n, dtype=np.int64)
            _PRED_CACHE[key] = np.asarray(target._node_hops(idx[:, None], idx[None, :]),
                                          dtype=np.int16)
        return _PRED_CACHE[key][na, nb].astype(np.int64)
    return np.asarray(target._node_hops(na, nb), dtype=np.int64)


def _node_link_load(target: Any, na: np.ndarray, nb: np.ndarray, messages: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unicast_link_load` from the routers of the source and destination cores."""
    links, lkey, n = _link_keys(target)
    m = np.asarray(messages, dtype=np.int64)
    if links.shape[0] == 0 or na.size == 0:
        return links, np.zeros(links.shape[0], dtype=np.int64)
    diff = na != nb
    na, nb, m = na[diff], nb[diff], m[diff]
    kind = target.topology.kind
    if kind == "mesh2d":
        return links, _mesh_loads(target, na, nb, m)
    if kind in ("speck_layers", "full"):
        idx = np.searchsorted(lkey, na * n + nb)
        return links, np.bincount(idx, weights=m, minlength=links.shape[0]).astype(np.int64)
    return links, _tree_loads(target, na, nb, m)


# =========================================================================== SpiNNaker
def _direction(target: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SpiNNaker link number from chip a to neighbouring chip b."""
    t = target.topology
    xy = np.asarray(target.node_coords(), dtype=np.int64)
    d = xy[b] - xy[a]
    ex, ey = int(t.chip_grid[0]), int(t.chip_grid[1])
    if t.wrap[0]:
        d[:, 0] = np.mod(d[:, 0] + 1, ex) - 1
    if t.wrap[1]:
        d[:, 1] = np.mod(d[:, 1] + 1, ey) - 1
    out = np.full(a.shape[0], -1, dtype=np.int64)
    for k, (vx, vy) in enumerate(SPINNAKER_LINK_DIRECTIONS):
        hit = (d[:, 0] == vx) & (d[:, 1] == vy) & (out < 0)
        out[hit] = k
    return out


def route_words(target: Any) -> int:
    """32-bit words per route: 6 link bits, then one bit per processor 0..cores_per_chip
    (processor 0 is the monitor; application core in slot ``k`` is processor ``k + 1``).
    SpiNNaker 1 (18 processors): 24 bits, one word; SpiNNaker 2 (150 application cores):
    157 bits, five words. SpiNNMachine encodes routes the same way (``RoutingEntry.
    _calc_spinnaker_route``: bit ``6 + p`` for processor ``p``, for every processor of the
    chip); how SpiNNaker 2's router stores the wider word is not public (hw_reference.md
    section 4), so the words here are a logical bit set, not a register layout."""
    return (6 + 1 + int(target.topology.cores_per_chip) + 31) // 32


def _set_bits(words: np.ndarray, rows: np.ndarray, bits: np.ndarray) -> None:
    """Set bit ``bits[i]`` of route ``rows[i]`` in the ``(n, n_words)`` uint32 array."""
    bits = np.asarray(bits, dtype=np.int64)
    np.bitwise_or.at(words, (rows, bits >> 5),
                     np.left_shift(np.uint32(1), (bits & 31).astype(np.uint32)))


def route_bits(routes: Routes, entries: np.ndarray) -> np.ndarray:
    """``(len(entries), 32 * n_words)`` bool: bit ``b`` of each entry's route word
    (links 0..5, then processor ``p`` at bit ``6 + p``)."""
    w = np.ascontiguousarray(routes.table_route[np.asarray(entries, dtype=np.int64)])
    if w.shape[0] == 0:
        return np.zeros((0, 32 * routes.table_route.shape[1]), dtype=bool)
    return np.unpackbits(w.astype("<u4").view(np.uint8), axis=1,
                         bitorder="little").astype(bool)


def _multicast(part: Partition, place: Placement, target: Any
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trees of every source core. Returns entries (source, chip, route words, removable)
    sorted by (chip, source), and the link load of the trees; route words are
    ``(n, route_words(target))`` uint32."""
    cpc = int(target.topology.cores_per_chip)
    n = int(target.n_nodes)
    pred = _predecessors(target)
    core = place.core
    chip_of = core // cpc
    src = part.edge_src.astype(np.int64)
    dst = part.edge_dst.astype(np.int64)
    root = chip_of[src]
    # tree nodes: destination chips and their ancestors; keys source * n + chip, marked
    # in a bitmap over the key space (cores x chips), so each step only looks at the
    # keys it reaches (no set difference against every key found so far)
    space = int(part.n_cores) * n
    seen = np.zeros(space, dtype=bool)
    seen[src * n + chip_of[dst]] = True
    frontier = np.flatnonzero(seen)
    for _ in range(n):
        s, v = np.divmod(frontier, n)
        act = v != chip_of[s]
        s, v = s[act], v[act]
        if s.size == 0:
            break
        par = pred[chip_of[s], v].astype(np.int64)
        pk = s * n + par
        pk = np.unique(pk[~seen[pk]])
        seen[pk] = True
        frontier = pk
    seen[src * n + root] = True
    nodes = np.flatnonzero(seen)
    s_all, v_all = np.divmod(nodes, n)
    n_words = route_words(target)
    words = np.zeros((nodes.shape[0], n_words), dtype=np.uint32)
    # links to children
    child = v_all != chip_of[s_all]
    cs, cv = s_all[child], v_all[child]
    par = pred[chip_of[cs], cv].astype(np.int64)
    d = _direction(target, par, cv)
    pidx = np.searchsorted(nodes, cs * n + par)
    _set_bits(words, pidx, d)
    # processors of destination cores: processor p = slot + 1 (processor 0 is the monitor)
    slot = np.asarray(target.core_coords(), dtype=np.int64)[core[dst], 4]
    didx = np.searchsorted(nodes, src * n + chip_of[dst])
    _set_bits(words, didx, 6 + 1 + slot)
    # arrival direction of every non-root node, for default routing
    arrive = np.full(nodes.shape[0], -1, dtype=np.int64)
    arrive[np.flatnonzero(child)] = d
    w0 = words[:, 0].astype(np.int64)
    only_link = (w0 < 64) & (w0 > 0) & ((w0 & (w0 - 1)) == 0)
    if n_words > 1:
        only_link &= ~words[:, 1:].any(axis=1)
    link_bit = np.where(only_link, np.log2(np.maximum(w0, 1)).astype(np.int64), -2)
    removable = child & only_link & (link_bit == arrive)
    # link loads: each tree edge carries the source's packets
    links, lkey, _ = _link_keys(target)
    lidx = np.searchsorted(lkey, par * n + cv)
    load = np.bincount(lidx, weights=part.core_sources[cs], minlength=links.shape[0])
    order = np.lexsort((s_all, v_all))
    return s_all[order], v_all[order], words[order], removable[order], load.astype(np.int64)


def _compress(src: np.ndarray, label: np.ndarray, limit: int, id_bits: int
              ) -> list[tuple[int, int, int]]:
    """Entries ``(first source id, level, route)`` for one chip, merged only until at most
    ``limit`` remain. ``label``: route word, or -1 for a default-routed visitor."""
    order = np.argsort(src, kind="stable")
    src, label = src[order], label[order]
    ent = src >= 0  # every non-default visitor starts as its own entry (level 0)
    need = label >= 0
    ent_key = np.where(need, src, -1)  # entry id: first id of its block
    ent_lvl = np.zeros(src.shape[0], dtype=np.int64)
    del ent
    count = int(need.sum())
    for lvl in range(1, id_bits + 1):
        if count <= limit:
            break
        blk = src >> lvl
        starts = np.flatnonzero(np.concatenate([[True], blk[1:] != blk[:-1]]))
        lo = np.minimum.reduceat(label, starts)
        hi = np.maximum.reduceat(label, starts)
        pure = (lo == hi) & (lo >= 0)
        if not pure.any():
            continue
        # entries inside each block (distinct (key, level)); in a pure block every member
        # is an entry and members of one entry are adjacent (sources sorted, prefix
        # blocks disjoint), so counting changes along the sorted sources counts them
        eid = ent_key * 64 + ent_lvl
        seg = np.repeat(np.arange(starts.shape[0]), np.diff(np.append(starts, src.shape[0])))
        change = np.ones(src.shape[0], dtype=bool)
        change[1:] = (eid[1:] != eid[:-1]) | (seg[1:] != seg[:-1])
        inside = np.bincount(seg[change], minlength=starts.shape[0])
        gain = np.where(pure, inside - 1, 0)
        cand = np.flatnonzero(gain > 0)
        if cand.size == 0:
            continue
        cand = cand[np.lexsort((cand, -gain[cand]))]
        cum = np.cumsum(gain[cand])
        k = int(np.searchsorted(cum, count - limit)) + 1
        take = cand[:k]
        count -= int(gain[take].sum())
        mark = np.zeros(starts.shape[0], dtype=bool)
        mark[take] = True
        hit = mark[seg]
        ent_key[hit] = (src[hit] >> lvl) << lvl
        ent_lvl[hit] = lvl
    # distinct (key, level, route) in key order: members of one entry are adjacent
    trip = np.stack([ent_key[need], ent_lvl[need], label[need]], axis=1)
    if trip.shape[0] > 1:
        keep = np.ones(trip.shape[0], dtype=bool)
        keep[1:] = np.any(trip[1:] != trip[:-1], axis=1)
        trip = trip[keep]
    return trip


# =========================================================================== lookup
def lookup(routes: Routes, chips: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of the first matching entry for each (chip, key), or -1 (no match); the
    route itself is ``routes.table_route[index]`` (see :func:`route_bits`)."""
    chips = np.asarray(chips, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.uint32)
    start = routes.table_offsets[chips]
    length = routes.table_offsets[chips + 1] - start
    out = np.full(chips.shape[0], -1, dtype=np.int64)
    total = int(length.sum())
    if total == 0:
        return out
    q = np.repeat(np.arange(chips.shape[0]), length)
    offs = np.concatenate([[0], np.cumsum(length)[:-1]])
    e = np.arange(total) - np.repeat(offs - start, length)
    match = (keys[q] & routes.table_mask[e]) == routes.table_key[e]
    big = np.iinfo(np.int64).max
    first = np.full(chips.shape[0], big, dtype=np.int64)
    np.minimum.at(first, q[match], e[match])
    ok = first < big
    out[ok] = first[ok]
    return out


def deliver(routes: Routes, placement: Placement, target: Any) -> np.ndarray:
    """Simulate every source core's packet through the tables (vectorised).

    Returns ``(n, 2)`` int64 (source logical core, physical core reached), unique.
    A packet injected at its chip with no matching entry is dropped; one arriving on a
    link with no matching entry leaves on the opposite link (default routing).
    """
    cpc = int(target.topology.cores_per_chip)
    n_src = routes.keys.shape[0]
    chip = placement.core[np.arange(n_src)] // cpc
    xy = np.asarray(target.node_coords(), dtype=np.int64)
    index = {(int(x), int(y)): i for i, (x, y) in enumerate(xy)}
    t = target.topology
    ex, ey = int(t.chip_grid[0]), int(t.chip_grid[1])
    neigh = np.full((xy.shape[0], 6), -1, dtype=np.int64)
    for i, (x, y) in enumerate(xy):
        for d, (vx, vy) in enumerate(SPINNAKER_LINK_DIRECTIONS):
            qx, qy = int(x) + vx, int(y) + vy
            if t.wrap[0]:
                qx %= ex
            if t.wrap[1]:
                qy %= ey
            neigh[i, d] = index.get((qx, qy), -1)
    s = np.arange(n_src)
    v = chip.copy()
    arrive = np.full(n_src, -1, dtype=np.int64)
    got = []
    for _ in range(4 * xy.shape[0] + 8):
        if s.size == 0:
            break
        entry = lookup(routes, v, routes.keys[s])
        # a packet that arrived on a link and matches nothing goes straight on
        default = (entry < 0) & (arrive >= 0)
        live = (entry >= 0) | default
        s, v, entry, default, arrive = s[live], v[live], entry[live], default[live], arrive[live]
        bits = route_bits(routes, np.maximum(entry, 0))
        bits[default] = False
        bits[np.flatnonzero(default), arrive[default]] = True
        r, c = np.nonzero(bits[:, 7:7 + cpc])  # processor c + 1 = slot c
        if r.size:
            got.append(np.stack([s[r], v[r] * cpc + c], axis=1))
        ns, nv, na = [], [], []
        for d in range(6):
            hit = bits[:, d]
            if hit.any():
                nxt = neigh[v[hit], d]
                ok = nxt >= 0
                ns.append(s[hit][ok])
                nv.append(nxt[ok])
                na.append(np.full(int(ok.sum()), d, dtype=np.int64))
        if not ns:
            break
        s, v, arrive = np.concatenate(ns), np.concatenate(nv), np.concatenate(na)
    if not got:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(got), axis=0)


# =========================================================================== the pass
def route(part: Partition, placement: Placement, target: Any, *, seed: int = 0,
          compress: bool = True) -> Routes:
    """Route the placed partition on ``target`` (see the module docstring).

    Args:
        part, placement: the mapping to route.
        target: the target.
        seed: unused by the deterministic routing; kept for the pass signature.
        compress: compress routing tables that exceed ``routing_entries``.

    Raises:
        FitError: a chip's routing table exceeds the limit even after compression.
    """
    t0 = time.perf_counter()
    core = placement.core
    node = np.asarray(target.core_node(core), dtype=np.int64)  # router of each logical core
    na, nb = node[part.edge_src], node[part.edge_dst]
    hops = _hops_nodes(target, na, nb)
    msgs = part.edge_messages.astype(np.int64)
    total = int(np.sum(msgs * hops))
    n_msgs = int(msgs.sum())
    limit = target.chip.routing_entries
    tables = target.topology.kind == "triangular_torus"
    n_chips = int(target.n_chips)
    stats: dict[str, Any] = {}
    empty_u32 = np.zeros(0, dtype=np.uint32)
    keys = empty_u32
    key_mask = 0
    offsets = np.zeros(n_chips + 1, dtype=np.int64)
    tk, tm = empty_u32, empty_u32
    tr = np.zeros((0, route_words(target) if tables else 1), dtype=np.uint32)
    raw = np.zeros(n_chips, dtype=np.int64)
    if tables:
        links, load = _link_keys(target)[0], None
        s, v, w, removable, load = _multicast(part, placement, target)
        per_core = np.bincount(part.neuron_core, minlength=part.n_cores)
        nbits = int(np.ceil(np.log2(max(int(per_core.max(initial=1)), 1))))
        id_bits = int(np.ceil(np.log2(max(part.n_cores, 2))))
        if id_bits + nbits > 32:
            raise FitError(f"{part.n_cores} cores of up to {per_core.max()} neurons need "
                           f"{id_bits + nbits} key bits; SpiNNaker keys have 32",
                           obj="network", rule="routing keys", need=id_bits + nbits,
                           limit=32, hint="use fewer, fuller cores")
        keys = (np.arange(part.n_cores, dtype=np.uint64) << np.uint64(nbits)).astype(np.uint32)
        key_mask = int((0xFFFFFFFF << nbits) & 0xFFFFFFFF)
        keep = ~removable
        raw = np.bincount(v[keep], minlength=n_chips).astype(np.int64)
        # one integer label per distinct route (the compressor compares labels)
        if w.shape[1] == 1:
            uniq, label_all = None, w[:, 0].astype(np.int64)
        else:
            rows = np.ascontiguousarray(w).view(np.dtype((np.void, 4 * w.shape[1])))[:, 0]
            _, first, label_all = np.unique(rows, return_index=True, return_inverse=True)
            uniq = w[first]
        chip_start = np.searchsorted(v, np.arange(n_chips + 1))
        ek, em, er, counts = [], [], [], np.zeros(n_chips, dtype=np.int64)
        compressed = 0
        for c in range(n_chips):
            a, b = int(chip_start[c]), int(chip_start[c + 1])
            if a == b:
                continue
            cs, ck = s[a:b], keep[a:b]
            # --- hook: table merging policy (nmcompiler/passes/route_keys.py): merge
            # entries sharing a route on every chip by default, not only over the limit
            merge_to = merge_target(limit, int(ck.sum()), compress)
            if merge_to is not None:
                label = np.where(ck, label_all[a:b], -1)
                trip = _compress(cs, label, merge_to, id_bits)
            # --- end hook
                compressed += 1
                kk = trip[:, 0].astype(np.uint64) << np.uint64(nbits)
                lv = trip[:, 1].astype(np.uint64)
                mm = (np.uint64(0xFFFFFFFF) << (lv + np.uint64(nbits))) & np.uint64(0xFFFFFFFF)
                ek.append(kk.astype(np.uint32))
                em.append(mm.astype(np.uint32))
                er.append(trip[:, 2:3].astype(np.uint32) if uniq is None else uniq[trip[:, 2]])
                counts[c] = len(trip)
            else:
                ek.append(keys[cs[ck]])
                em.append(np.full(int(ck.sum()), key_mask, dtype=np.uint32))
                er.append(w[a:b][ck])
                counts[c] = int(ck.sum())
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if ek:
            tk, tm, tr = np.concatenate(ek), np.concatenate(em), np.concatenate(er, axis=0)
        stats["chips_compressed"] = compressed
        if limit is not None and counts.max(initial=0) > limit:
            c = int(np.argmax(counts))
            x, y = (int(q) for q in np.asarray(target.node_coords())[c])
            raise FitError(
                f"chip ({x}, {y}) needs {int(counts[c])} routing entries after compression; "
                f"{target.name} allows {limit}",
                obj=f"chip ({x}, {y})", rule="routing_entries", need=int(counts[c]),
                limit=int(limit),
                hint="place the network on more chips, group sources with the same "
                     "destinations, or lower the fan-out of the populations routed there")
        multicast = True
    else:
        load = _recall_link_load(part, core)
        if load is None:
            links, load = _node_link_load(target, na, nb, msgs)
        else:
            links = _link_keys(target)[0]
        multicast = False
    del na, nb
    stats["time_s"] = round(time.perf_counter() - t0, 3)
    return Routes(
        target=target.name, pair_src=part.edge_src.copy(), pair_dst=part.edge_dst.copy(),
        pair_messages=msgs, pair_hops=hops, links=np.asarray(links, dtype=np.int64),
        link_load=np.asarray(load, dtype=np.int64), total_hops=total, messages=n_msgs,
        mean_hops=total / n_msgs if n_msgs else 0.0,
        max_link_load=int(np.max(load, initial=0)), multicast=multicast, keys=keys,
        key_mask=key_mask, table_offsets=offsets, table_key=tk, table_mask=tm,
        table_route=tr, entries_uncompressed=raw,
        routing_limit=int(limit) if (tables and limit is not None) else None, stats=stats)
