"""SpiNNaker multicast: route words, tree entries and table compression (Mundy et al.,
HPSR 2016, prefix blocks only)."""

from __future__ import annotations

import numpy as np

from ...mapping import Partition, Placement, Routes
from ...targets import Target


def route_words(target: Target) -> int:
    """32-bit words per routing-table route of ``target`` (its family's encoding,
    :meth:`nmcompiler.targets.families.spinnaker.SpinnakerFamily.route_words`)."""
    return target.family.route_words(target)


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


def multicast_entries(part: Partition, place: Placement, target: Target
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trees of every source core. Returns entries (source, chip, route words, removable)
    sorted by (chip, source), and the link load of the trees; route words are
    ``(n, route_words(target))`` uint32."""
    noc = target.noc
    cpc = int(target.topology.cores_per_chip)
    core = place.core
    chip_of = core // cpc
    src = part.edge_src.astype(np.int64)
    dst = part.edge_dst.astype(np.int64)
    s_all, v_all, child, par, lidx = noc.multicast_trees(chip_of, src, chip_of[dst],
                                                         int(part.n_cores))
    n = noc.n_nodes
    nodes = s_all * n + v_all
    n_words = route_words(target)
    words = np.zeros((nodes.shape[0], n_words), dtype=np.uint32)
    # links to children
    cs, cv = s_all[child], v_all[child]
    d = noc.direction(par, cv)  # type: ignore[attr-defined]
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
    load = np.bincount(lidx, weights=part.core_sources[cs], minlength=noc.links().shape[0])
    order = np.lexsort((s_all, v_all))
    return s_all[order], v_all[order], words[order], removable[order], load.astype(np.int64)


def compress_table(src: np.ndarray, label: np.ndarray, limit: int, id_bits: int
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
