"""The placer's view of the target: router of every physical core, hops (the NoC's
hop table), the symmetric core graph and the placement objective."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...mapping import Partition
from ...targets import Target


# =========================================================================== geometry
class Geometry:
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
        """Router hops between nodes ``na`` and ``nb`` (element-wise)."""
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


def symmetric_graph(part: Partition) -> sp.csr_matrix:
    """The core graph of ``part`` as a symmetric sparse matrix of message counts."""
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


def edge_cost(geo: Geometry, g_src: np.ndarray, g_dst: np.ndarray, g_w: np.ndarray,
          pos: np.ndarray, chunk: int = 1 << 24) -> int | float:
    """``sum(w x hops)`` over the edges, in chunks (bounded temporaries on 1e8 edges)."""
    total = 0
    node = geo.core_node[pos]
    for a in range(0, g_src.shape[0], chunk):
        b = a + chunk
        h = geo.hops_nodes(node[g_src[a:b]], node[g_dst[a:b]])
        total += np.sum(g_w[a:b] * h)
    return int(total)


def graph_edges(g: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The upper-triangle edges of ``g``: sources, destinations, weights."""
    coo = g.tocoo()
    up = coo.row < coo.col
    return coo.row[up].astype(np.int64), coo.col[up].astype(np.int64), coo.data[up]
