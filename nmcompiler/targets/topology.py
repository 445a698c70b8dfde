"""The network-on-chip of a target, once: coordinates, hops, links, routes and link loads.

One class per topology kind (``topology.kind`` of a target file, docs/targets.md), all
behind :class:`NoC`; a :class:`~nmcompiler.targets.model.Target` builds its NoC once
(``target.noc``) and every cache (hop table, shortest-path tree, link list) lives on that
object. Passes (place, route) and backends (the emulator's cost model) ask it, so the
compile report and the run report share one routing model:

* ``mesh2d`` (Loihi): routers on a 2-D grid, chips extend the grid; unicast
  dimension-order routes, x first then y (the deadlock-free routing of Loihi's mesh,
  Davies et al., IEEE Micro 2018); a wrapped axis is crossed the shorter way round.
* ``triangular_torus`` (SpiNNaker): one router per chip, six links (x±1, y), (x, y±1),
  (x+1, y+1), (x−1, y−1), optionally wrapped; routes follow one breadth-first
  shortest-path tree per source, and multicast routing tables are built on it
  (``multicast_tables``).
* ``speck_layers`` / ``full``: every node reaches every other over one direct link.

Hops between routers are the length of these routes; on a chip set with holes the
formulas assume the set is convex in the lattice (true for SpiNN-5 boards).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from ..mapping import SPINNAKER_LINK_DIRECTIONS

if TYPE_CHECKING:
    from .model import Topology

__all__ = ["NoC", "MeshNoC", "TriangularTorusNoC", "DirectNoC", "NOC_KINDS", "TOPOLOGY_KINDS",
           "make_noc"]

#: routers up to which a full ``(n, n)`` int16 hop table is kept on the object
HOP_TABLE_MAX_NODES = 6000


class NoC:
    """Geometry and routing of one target's network-on-chip (see the module docstring).

    Args:
        topo: the target's :class:`~nmcompiler.targets.model.Topology` value.
    """

    kind: ClassVar[str] = ""
    #: the compiler builds multicast routing tables on this network (SpiNNaker)
    multicast_tables: ClassVar[bool] = False
    #: one layer per core, cores talk directly (Speck): partition and place by layers
    layered: ClassVar[bool] = False
    #: distance the exact placer can model with coordinates ("manhattan", "hexagonal")
    metric: ClassVar[str | None] = None

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self._cache: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------- sizes
    @property
    def n_chips(self) -> int:
        """Chips in the system."""
        return int(self.topo.chips_per_system)

    @property
    def n_nodes(self) -> int:
        """Routers in the system."""
        return self.n_chips * self.topo.nodes_per_chip

    @property
    def total_cores(self) -> int:
        """Usable cores in the system."""
        return self.n_chips * int(self.topo.cores_per_chip)

    @property
    def extent(self) -> tuple[int, int]:
        """Size of the global router grid in x and y."""
        t = self.topo
        return (int(t.chip_grid[0] * t.node_grid[0]), int(t.chip_grid[1] * t.node_grid[1]))

    # ----------------------------------------------------------------- coordinates
    def core_coords(self) -> np.ndarray:
        """Coordinates of every core, ``(total_cores, 5)``: chip x, y, node x, y, slot.

        Core ``c`` lies on chip ``c // cores_per_chip`` (chips in the order of
        ``topology.chips``); its local index ``l`` lives in node ``l // cores_per_node``
        (nodes numbered x fastest) at slot ``l % cores_per_node``.
        """
        if "core_coords" not in self._cache:
            t = self.topo
            local = np.arange(t.cores_per_chip)
            node = local // t.cores_per_node
            per_chip = np.stack(
                [node % t.node_grid[0], node // t.node_grid[0], local % t.cores_per_node],
                axis=1,
            )
            chips = np.asarray(t.chips, dtype=np.int64).reshape(-1, 2)
            out = np.concatenate(
                [np.repeat(chips, t.cores_per_chip, axis=0),
                 np.tile(per_chip, (t.chips_per_system, 1))],
                axis=1,
            ).astype(np.int64)
            out.setflags(write=False)
            self._cache["core_coords"] = out
        return self._cache["core_coords"]

    def node_coords(self) -> np.ndarray:
        """Global (x, y) of every router, ``(n_nodes, 2)``.

        Node ``n`` is router ``n % nodes_per_chip`` (x fastest) of chip
        ``n // nodes_per_chip``; x = chip_x · node_grid_x + node_x (likewise y).
        """
        if "node_coords" not in self._cache:
            t = self.topo
            nx, ny = t.node_grid
            k = np.arange(nx * ny)
            local = np.stack([k % nx, k // nx], axis=1)
            chips = np.asarray(t.chips, dtype=np.int64).reshape(-1, 2)
            out = (np.repeat(chips * (nx, ny), nx * ny, axis=0)
                   + np.tile(local, (t.chips_per_system, 1))).astype(np.int64)
            out.setflags(write=False)
            self._cache["node_coords"] = out
        return self._cache["node_coords"]

    def core_node(self, cores: np.ndarray) -> np.ndarray:
        """Router of each (checked, int64) core id; vectorised."""
        t = self.topo
        chip, local = np.divmod(cores, t.cores_per_chip)
        return chip * t.nodes_per_chip + local // t.cores_per_node

    # ----------------------------------------------------------------- hops
    def node_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        """Router-to-router hops (broadcasting int arrays); 0 on one router."""
        raise NotImplementedError

    def hop_table(self) -> np.ndarray | None:
        """``(n_nodes, n_nodes)`` int16 hops, built once; None above
        ``HOP_TABLE_MAX_NODES`` routers."""
        n = self.n_nodes
        if n > HOP_TABLE_MAX_NODES:
            return None
        if "hop_table" not in self._cache:
            idx = np.arange(n, dtype=np.int64)
            self._cache["hop_table"] = np.asarray(
                self.node_hops(idx[:, None], idx[None, :]), dtype=np.int16)
        return self._cache["hop_table"]

    def pair_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        """:meth:`node_hops` for many pairs: a lookup in :meth:`hop_table` when it is
        built already (:meth:`hop_table`; a caller with many pairs in several calls
        builds it first) or there are more than ``4 n_nodes**2`` pairs, otherwise
        computed directly (int64)."""
        if "hop_table" in self._cache or self.hop_table_pays(na.size):
            return self.hop_table()[na, nb].astype(np.int64)  # type: ignore[index]
        return np.asarray(self.node_hops(na, nb), dtype=np.int64)

    def hop_table_pays(self, pairs: int) -> bool:
        """Whether :meth:`hop_table` is worth building for ``pairs`` pairs looked up in
        all (more than ``4 n_nodes**2``, and it is made at this size)."""
        n = self.n_nodes
        return n <= HOP_TABLE_MAX_NODES and pairs > 4 * n * n

    # ----------------------------------------------------------------- links
    def links(self) -> np.ndarray:
        """Directed router-to-router links, ``(n_links, 2)`` of node indices, sorted.

        Both directions are listed; link-load accounting counts each direction apart.
        """
        if "links" not in self._cache:
            pairs = self._build_links().astype(np.int64)
            pairs.setflags(write=False)
            self._cache["links"] = pairs
        return self._cache["links"]

    def _build_links(self) -> np.ndarray:
        raise NotImplementedError

    def link_keys(self) -> tuple[np.ndarray, np.ndarray, int]:
        """``(links, src * n_nodes + dst, n_nodes)``: links and their sorted integer keys."""
        links = np.asarray(self.links(), dtype=np.int64).reshape(-1, 2)
        n = self.n_nodes
        return links, links[:, 0] * n + links[:, 1], n

    def link_along_x(self) -> np.ndarray | None:
        """Bool per link, True along x, where links have a direction (meshes); else None."""
        return None

    def predecessors(self) -> np.ndarray:
        """``(n_nodes, n_nodes)`` int32 parents in the breadth-first shortest-path tree
        of every source router (``pred[s, v]``), built once."""
        if "pred" not in self._cache:
            links, _, n = self.link_keys()
            g = sp.csr_matrix((np.ones(links.shape[0]), (links[:, 0], links[:, 1])),
                              shape=(n, n))
            _, pred = shortest_path(g, method="D", unweighted=True, return_predecessors=True)
            self._cache["pred"] = pred.astype(np.int32)
        return self._cache["pred"]

    # ----------------------------------------------------------------- unicast routes
    def unicast_link_load(self, na: np.ndarray, nb: np.ndarray, messages: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """``(links(), load)`` when router ``na[k]`` sends ``messages[k]`` unicast to
        ``nb[k]`` along :meth:`route_links`' routes (no loop per message)."""
        links, _, _ = self.link_keys()
        m = np.asarray(messages, dtype=np.int64)
        if links.shape[0] == 0 or na.size == 0:
            return links, np.zeros(links.shape[0], dtype=np.int64)
        diff = na != nb
        return links, self._loads(na[diff], nb[diff], m[diff])

    def _loads(self, na: np.ndarray, nb: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Unicast shortest-path-tree routes (any topology); load per :meth:`links`."""
        links, lkey, n = self.link_keys()
        pred = self.predecessors()
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

    def core_link_load(self, node: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`unicast_link_load` of the edges ``src -> dst`` between logical cores
        placed on routers ``node``."""
        return self.unicast_link_load(node[src], node[dst], m)

    def route_links(self, na: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Links of the route from router ``na[k]`` to ``nb[k]``, in order, as CSR.

        Returns ``(indptr, link_ids)`` over the pairs, ``link_ids`` indexing
        :meth:`links`; the routes of :meth:`unicast_link_load`. This default walks the
        shortest-path tree back from the destination (one loop iteration per hop)."""
        links, lkey, n = self.link_keys()
        pred = self.predecessors()
        na = np.asarray(na, dtype=np.int64)
        nb = np.asarray(nb, dtype=np.int64)
        k = na.shape[0]
        pair_ids, link_ids, depth = [], [], []
        live = np.flatnonzero(na != nb)
        cur = nb.copy()
        step = 0
        while live.size:
            par = pred[na[live], cur[live]].astype(np.int64)
            pair_ids.append(live)
            link_ids.append(np.searchsorted(lkey, par * n + cur[live]))
            depth.append(np.full(live.shape[0], step, dtype=np.int64))
            cur[live] = par
            live = live[par != na[live]]
            step += 1
        if not pair_ids:
            return np.zeros(k + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        p = np.concatenate(pair_ids)
        li = np.concatenate(link_ids)
        o = np.lexsort((-np.concatenate(depth), p))  # by pair, source end first
        return _csr_ptr(p, k), li[o].astype(np.int64)

    # ----------------------------------------------------------------- multicast trees
    def multicast_trees(self, root: np.ndarray, src: np.ndarray, dst_node: np.ndarray,
                        n_sources: int, tree_root: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                   np.ndarray]:
        """The multicast tree of every source: the union of the routes from its router
        ``root[s]`` to every router ``dst_node[k]`` of its edges ``src[k]`` (a tree: no
        router receives a packet twice).

        The routes follow the breadth-first shortest-path tree of router
        ``tree_root[s]`` (default ``root[s]``: shortest paths from the source), re-rooted
        at ``root[s]``: on the path between ``tree_root[s]`` and ``root[s]`` the links
        point away from ``root[s]``, elsewhere away from ``tree_root[s]``. Sources that
        share a ``tree_root`` (the slices of one population) so use one spanning tree,
        and a router off the paths between their roots is entered over the same link by
        all of them (docs/spinnaker_backend.md).

        Returns ``(s, v, child, parent, link)``: the tree nodes as (source, router) sorted
        by ``s * n_nodes + v``; ``child`` marks the non-root nodes, ``parent`` and
        ``link`` (index into :meth:`links`) are given for those."""
        n = self.n_nodes
        pred = self.predecessors()
        root = np.asarray(root, dtype=np.int64)
        tr = root if tree_root is None else np.asarray(tree_root, dtype=np.int64)
        # re-rooting: the parent of each router on the path root[s] -> tr[s] is the next
        # router towards root[s] (keys s * n + router, sorted)
        okey_l, opar_l = [], []
        live = np.unique(np.asarray(src, dtype=np.int64))
        live = live[tr[live] != root[live]]
        cur = root[live].copy()
        while live.size:
            p = pred[tr[live], cur].astype(np.int64)
            okey_l.append(live * n + p)
            opar_l.append(cur)
            more = p != tr[live]
            live, cur = live[more], p[more]
        okey = np.concatenate(okey_l) if okey_l else np.zeros(0, dtype=np.int64)
        opar = np.concatenate(opar_l) if opar_l else np.zeros(0, dtype=np.int64)
        o = np.argsort(okey, kind="stable")
        okey, opar = okey[o], opar[o]

        def parent(s: np.ndarray, v: np.ndarray) -> np.ndarray:
            par = pred[tr[s], v].astype(np.int64)
            if okey.size:
                k = s * n + v
                i = np.minimum(np.searchsorted(okey, k), okey.size - 1)
                hit = okey[i] == k
                par[hit] = opar[i[hit]]
            return par

        # tree nodes: destination routers and their ancestors; keys source * n + router,
        # marked in a bitmap over the key space (sources x routers), so each step only
        # looks at the keys it reaches (no set difference against every key found so far)
        seen = np.zeros(int(n_sources) * n, dtype=bool)
        seen[src * n + dst_node] = True
        frontier = np.flatnonzero(seen)
        for _ in range(2 * n):
            s, v = np.divmod(frontier, n)
            act = v != root[s]
            s, v = s[act], v[act]
            if s.size == 0:
                break
            pk = s * n + parent(s, v)
            pk = np.unique(pk[~seen[pk]])
            seen[pk] = True
            frontier = pk
        seen[src * n + root[src]] = True
        nodes = np.flatnonzero(seen)
        s_all, v_all = np.divmod(nodes, n)
        child = v_all != root[s_all]
        cs, cv = s_all[child], v_all[child]
        par = parent(cs, cv)
        _, lkey, _ = self.link_keys()
        link = np.searchsorted(lkey, par * n + cv)
        return s_all, v_all, child, par, link


def _csr_ptr(rows: np.ndarray, k: int) -> np.ndarray:
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=k), out=indptr[1:])
    return indptr


def _signed(d: np.ndarray, e: int, wrap: bool) -> np.ndarray:
    """Signed step count along an axis of length ``e``; a wrapped axis takes the shorter
    way (ties go the positive way)."""
    if not wrap:
        return d
    d = np.mod(d, e)
    return np.where(d > e // 2, d - e, d)


def _grid_links(noc: NoC, steps: list[tuple[int, int]]) -> np.ndarray:
    """Links to the neighbours ``steps`` away on the global router grid (vectorised)."""
    t = noc.topo
    n = noc.n_nodes
    xy = noc.node_coords()
    ex, ey = noc.extent
    index = np.full((ex, ey), -1, dtype=np.int64)
    index[xy[:, 0], xy[:, 1]] = np.arange(n)
    keys = []
    for sx, sy in steps:
        qx, qy = xy[:, 0] + sx, xy[:, 1] + sy
        if t.wrap[0]:
            qx = np.mod(qx, ex)
        if t.wrap[1]:
            qy = np.mod(qy, ey)
        ok = (qx >= 0) & (qx < ex) & (qy >= 0) & (qy < ey)
        i = np.flatnonzero(ok)
        j = index[qx[ok], qy[ok]]
        keep = (j >= 0) & (j != i)
        keys.append(i[keep] * n + j[keep])
    key = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    return np.stack(np.divmod(key, n), axis=1).astype(np.int64).reshape(-1, 2)


class MeshNoC(NoC):
    """``mesh2d``: Manhattan hops, x-then-y unicast routes."""

    kind = "mesh2d"
    metric = "manhattan"

    def node_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:  # noqa: D102
        xy = self.node_coords()
        ad = np.abs(xy[nb] - xy[na])
        extent = self.extent
        for axis in (0, 1):
            if self.topo.wrap[axis]:
                ad[..., axis] = np.minimum(ad[..., axis], extent[axis] - ad[..., axis])
        return ad.sum(axis=-1).astype(np.int64)

    def pair_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        """Hops of many pairs; int32 Manhattan without temporaries on a plain mesh."""
        if any(self.topo.wrap):
            return super().pair_hops(na, nb)
        xy = self.node_coords()
        xs, ys = xy[:, 0].astype(np.int32), xy[:, 1].astype(np.int32)
        h = np.abs(xs[na] - xs[nb])
        h += np.abs(ys[na] - ys[nb])
        return h.astype(np.int64)

    def _build_links(self) -> np.ndarray:
        return _grid_links(self, [(1, 0), (-1, 0), (0, 1), (0, -1)])

    def link_along_x(self) -> np.ndarray | None:  # noqa: D102
        links = np.asarray(self.links(), dtype=np.int64)
        xy = self.node_coords()
        return xy[links[:, 0], 1] == xy[links[:, 1], 1]

    def _loads(self, na: np.ndarray, nb: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Unicast x-then-y routes: x legs on the source's row, y legs on the
        destination's column, summed with difference arrays (int32 coordinates)."""
        t = self.topo
        xy = np.asarray(self.node_coords(), dtype=np.int64)
        ex, ey = self.extent
        xs = xy[:, 0].astype(np.int32)
        ys = xy[:, 1].astype(np.int32)
        x0, y0, x1, y1 = xs[na], ys[na], xs[nb], ys[nb]
        dx = _signed(x1 - x0, ex, bool(t.wrap[0]))
        dy = _signed(y1 - y0, ey, bool(t.wrap[1]))
        del x1
        mf = np.asarray(m, dtype=np.float64)  # bincount sums in float64: exact below 2**53
        pos, neg = dx > 0, dx < 0
        right = _run(y0[pos], x0[pos], dx[pos], mf[pos], ex, ey)
        left = _run(y0[neg], ex - 1 - x0[neg], -dx[neg], mf[neg], ex, ey)[:, ::-1]
        pos, neg = dy > 0, dy < 0
        xd = xs[nb]
        up = _run(xd[pos], y0[pos], dy[pos], mf[pos], ey, ex)
        down = _run(xd[neg], ey - 1 - y0[neg], -dy[neg], mf[neg], ey, ex)[:, ::-1]
        return self._gather(right, left, up, down)

    def _gather(self, right: np.ndarray, left: np.ndarray, up: np.ndarray,
                down: np.ndarray) -> np.ndarray:
        """Per-link load from the four direction grids (``right[y, x]``: x -> x+1, ...):
        where each link sits in the four grids side by side is found once (cached)."""
        at = self._cache.get("gather_at")
        if at is None:
            t = self.topo
            ex, ey = self.extent
            xy = np.asarray(self.node_coords(), dtype=np.int64)
            links = np.asarray(self.links(), dtype=np.int64).reshape(-1, 2)
            la, lb = xy[links[:, 0]], xy[links[:, 1]]
            ddx = _signed(lb[:, 0] - la[:, 0], ex, bool(t.wrap[0]))
            ddy = _signed(lb[:, 1] - la[:, 1], ey, bool(t.wrap[1]))
            xa, ya = la[:, 0], la[:, 1]
            size = ex * ey
            # right, left: [y, x]; up, down: [x, y]; a link in none of them: the zero cell
            at = np.full(links.shape[0], 4 * size, dtype=np.int64)
            at = np.where((ddx == 1) & (ddy == 0), ya * ex + xa, at)
            at = np.where((ddx == -1) & (ddy == 0), size + ya * ex + xa, at)
            at = np.where((ddy == 1) & (ddx == 0), 2 * size + xa * ey + ya, at)
            at = np.where((ddy == -1) & (ddx == 0), 3 * size + xa * ey + ya, at)
            self._cache["gather_at"] = at
        flat = np.concatenate([np.asarray(g, dtype=np.int64).reshape(-1)
                               for g in (right, left, up, down)] + [np.zeros(1, np.int64)])
        return flat[at]

    def gather_loads(self, right: np.ndarray, left: np.ndarray, up: np.ndarray,
                     down: np.ndarray) -> np.ndarray:
        """:meth:`_gather` (per-link loads from the four direction grids), public."""
        return self._gather(right, left, up, down)

    def core_link_load(self, node: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mesh link loads of edges between placed logical cores, aggregated before any
        per-message work: x legs depend only on (source core, destination column), y legs
        only on (source row, destination core), so two sparse products with one-hot
        matrices reduce up to 1e8 core pairs to at most cores x grid-width entries.
        Exactly the loads of :meth:`unicast_link_load`."""
        links = np.asarray(self.links(), dtype=np.int64).reshape(-1, 2)
        if src.shape[0] == 0:
            return links, np.zeros(links.shape[0], dtype=np.int64)
        t = self.topo
        xy = np.asarray(self.node_coords(), dtype=np.int64)
        ex, ey = self.extent
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
        x0, y0, x1 = xc[b.row], yc[b.row], b.col
        mx = np.rint(b.data).astype(np.int64)
        ya, xb, yb = d.row, xc[d.col], yc[d.col]
        my = np.rint(d.data).astype(np.int64)
        dx = _signed(x1 - x0, ex, bool(t.wrap[0]))
        dy = _signed(yb - ya, ey, bool(t.wrap[1]))
        p, q = dx > 0, dx < 0
        right = _run(y0[p], x0[p], dx[p], mx[p].astype(np.float64), ex, ey)
        left = _run(y0[q], ex - 1 - x0[q], -dx[q], mx[q].astype(np.float64), ex, ey)[:, ::-1]
        p, q = dy > 0, dy < 0
        up = _run(xb[p], ya[p], dy[p], my[p].astype(np.float64), ey, ex)
        down = _run(xb[q], ey - 1 - ya[q], -dy[q], my[q].astype(np.float64), ey, ex)[:, ::-1]
        return links, self._gather(right, left, up, down)

    def route_links(self, na: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x-then-y routes (the shorter way round a wrapped axis), walked one hop per
        iteration over all pairs at once."""
        t = self.topo
        _, lkey, n = self.link_keys()
        na = np.asarray(na, dtype=np.int64)
        nb = np.asarray(nb, dtype=np.int64)
        k = na.shape[0]
        xy = np.asarray(self.node_coords(), dtype=np.int64)
        ex, ey = self.extent
        grid = np.full((ex, ey), -1, dtype=np.int64)
        grid[xy[:, 0], xy[:, 1]] = np.arange(n)
        cur = xy[na].copy()
        d = np.stack([_signed(xy[nb, 0] - cur[:, 0], ex, bool(t.wrap[0])),
                      _signed(xy[nb, 1] - cur[:, 1], ey, bool(t.wrap[1]))], axis=1)
        node = na.copy()
        pair_ids, link_ids = [], []
        live = np.flatnonzero((d != 0).any(axis=1))
        while live.size:
            dx, dy = d[live, 0], d[live, 1]
            stx = np.sign(dx)
            sty = np.where(dx == 0, np.sign(dy), 0)
            nxt = cur[live] + np.stack([stx, sty], axis=1)
            nxt[:, 0] %= ex
            nxt[:, 1] %= ey
            nn = grid[nxt[:, 0], nxt[:, 1]]
            key = node[live] * n + np.maximum(nn, 0)
            pos = np.minimum(np.searchsorted(lkey, key), max(lkey.shape[0] - 1, 0))
            found = (nn >= 0) & (lkey[pos] == key) if lkey.shape[0] else nn < -1
            pair_ids.append(live)
            link_ids.append(np.where(found, pos, -1))
            cur[live] = nxt
            node[live] = np.where(nn >= 0, nn, node[live])
            d[live, 0] -= stx
            d[live, 1] -= sty
            live = live[(d[live] != 0).any(axis=1)]
        if not pair_ids:
            return np.zeros(k + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        p = np.concatenate(pair_ids)
        li = np.concatenate(link_ids).astype(np.int64)
        o = np.argsort(p, kind="stable")
        return _csr_ptr(p, k), li[o]


def _run_ends(line: np.ndarray, start: np.ndarray, length: np.ndarray, e: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Where segments of ``length`` links starting at ``start`` on ``line`` (lines of
    length ``e``) open and close in :func:`_run_sum`'s difference array: ``(at, end)``."""
    at = line.astype(np.int64) * (2 * e + 1) + start
    return at, at + length


def _run_sum(at: np.ndarray, end: np.ndarray, weights: np.ndarray, e: int,
             n_lines: int) -> np.ndarray:
    """Load on the links ``k -> k+1`` of ``n_lines`` lines of length ``e`` from segments
    that open at ``at`` and close at ``end`` (:func:`_run_ends`) with ``weights``."""
    w = 2 * e + 1
    size = n_lines * w
    flat = np.bincount(at, weights=weights, minlength=size)
    flat -= np.bincount(end, weights=weights, minlength=size)
    acc = np.cumsum(np.rint(flat).astype(np.int64).reshape(n_lines, w), axis=1)
    return acc[:, :e] + acc[:, e:2 * e]


def _run(line: np.ndarray, start: np.ndarray, length: np.ndarray, weights: np.ndarray,
         e: int, n_lines: int) -> np.ndarray:
    """Load on the links ``k -> k+1`` of ``n_lines`` lines of length ``e`` when segments of
    ``length`` links start at ``start`` on ``line`` (a difference array per line; a
    segment running past the end wraps round)."""
    return _run_sum(*_run_ends(line, start, length, e), weights, e, n_lines)


#: the mesh helpers under public names: the emulator's cost model aggregates link loads
#: with them (one routing model for the compile and the run report)
signed_delta = _signed
segment_loads = _run
segment_ends = _run_ends
segment_sums = _run_sum


class TriangularTorusNoC(NoC):
    """``triangular_torus`` (SpiNNaker): one router per chip, six links; multicast."""

    kind = "triangular_torus"
    multicast_tables = True
    metric = "hexagonal"

    #: (dx, dy) of links 0..5 (east, north-east, north, west, south-west, south)
    DIRECTIONS = SPINNAKER_LINK_DIRECTIONS

    def node_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        """The SpiNNaker distance between chips with d = (dx, dy): max(|dx|, |dy|) when
        dx and dy have the same sign, |dx| + |dy| otherwise, minimised over the
        wrap-arounds of wrapped axes."""
        xy = self.node_coords()
        d = xy[nb] - xy[na]
        ex, ey = self.extent
        dx, dy = d[..., 0], d[..., 1]
        shifts_x = (-ex, 0, ex) if self.topo.wrap[0] else (0,)
        shifts_y = (-ey, 0, ey) if self.topo.wrap[1] else (0,)
        best = None
        for sx in shifts_x:
            for sy in shifts_y:
                h = _tri_distance(dx + sx, dy + sy)
                best = h if best is None else np.minimum(best, h)
        return np.asarray(best, dtype=np.int64)

    def _build_links(self) -> np.ndarray:
        return _grid_links(self, [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)])

    def direction(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Link number (index of :attr:`DIRECTIONS`) from router a to neighbouring b."""
        t = self.topo
        xy = np.asarray(self.node_coords(), dtype=np.int64)
        d = xy[b] - xy[a]
        ex, ey = int(t.chip_grid[0]), int(t.chip_grid[1])
        if t.wrap[0]:
            d[:, 0] = np.mod(d[:, 0] + 1, ex) - 1
        if t.wrap[1]:
            d[:, 1] = np.mod(d[:, 1] + 1, ey) - 1
        out = np.full(a.shape[0], -1, dtype=np.int64)
        for k, (vx, vy) in enumerate(self.DIRECTIONS):
            hit = (d[:, 0] == vx) & (d[:, 1] == vy) & (out < 0)
            out[hit] = k
        return out

    def neighbours(self) -> np.ndarray:
        """``(n_nodes, 6)`` router reached over each link, -1 where there is none."""
        t = self.topo
        xy = np.asarray(self.node_coords(), dtype=np.int64)
        ex, ey = int(t.chip_grid[0]), int(t.chip_grid[1])
        index = {(int(x), int(y)): i for i, (x, y) in enumerate(xy)}
        neigh = np.full((xy.shape[0], 6), -1, dtype=np.int64)
        for i, (x, y) in enumerate(xy):
            for d, (vx, vy) in enumerate(self.DIRECTIONS):
                qx, qy = int(x) + vx, int(y) + vy
                if t.wrap[0]:
                    qx %= ex
                if t.wrap[1]:
                    qy %= ey
                neigh[i, d] = index.get((qx, qy), -1)
        return neigh


def _tri_distance(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    same_sign = (dx * dy) >= 0
    return np.where(same_sign, np.maximum(np.abs(dx), np.abs(dy)), np.abs(dx) + np.abs(dy))


class DirectNoC(NoC):
    """``full``: every router reaches every other over one direct link."""

    kind = "full"

    def node_hops(self, na: np.ndarray, nb: np.ndarray) -> np.ndarray:  # noqa: D102
        return (na != nb).astype(np.int64)

    def _build_links(self) -> np.ndarray:
        n = self.n_nodes
        a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        pairs = np.stack([a.ravel(), b.ravel()], axis=1)
        return pairs[pairs[:, 0] != pairs[:, 1]]

    def _loads(self, na: np.ndarray, nb: np.ndarray, m: np.ndarray) -> np.ndarray:
        links, lkey, n = self.link_keys()
        idx = np.searchsorted(lkey, na * n + nb)
        return np.bincount(idx, weights=m, minlength=links.shape[0]).astype(np.int64)

    def route_links(self, na: np.ndarray, nb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One direct link per pair of different routers."""
        _, lkey, n = self.link_keys()
        na = np.asarray(na, dtype=np.int64)
        nb = np.asarray(nb, dtype=np.int64)
        idx = np.flatnonzero(na != nb)
        return _csr_ptr(idx, na.shape[0]), np.searchsorted(lkey, na[idx] * n + nb[idx])


class LayerNoC(DirectNoC):
    """``speck_layers``: every core talks directly to the cores it sends to (Speck)."""

    kind = "speck_layers"
    layered = True


#: topology kind -> its NoC class (the only place that reads ``topology.kind``)
NOC_KINDS: dict[str, type[NoC]] = {
    cls.kind: cls for cls in (MeshNoC, TriangularTorusNoC, LayerNoC, DirectNoC)
}
TOPOLOGY_KINDS = ("mesh2d", "triangular_torus", "speck_layers", "full")
"""Network-on-chip kinds. ``mesh2d``: routers on a 2-D grid, chips extend the grid
(Loihi). ``triangular_torus``: one router per chip, six links (x±1, y), (x, y±1),
(x+1, y+1), (x−1, y−1), optionally wrapped (SpiNNaker). ``speck_layers``: every core
talks directly to the cores it sends to (≤ ``max_destinations``). ``full``: every node
reaches every other in one hop."""


def make_noc(topo: Topology) -> NoC:
    """The :class:`NoC` of a topology value (its ``kind`` picks the class)."""
    return NOC_KINDS[topo.kind](topo)
