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
* If a chip's table still exceeds ``routing_entries`` (1023 on SpiNNaker 1), it is
  compressed *only until it fits*: entries with the same route word merge into aligned key
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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nmcompiler.ir.errors import FitError

from ..mapping import Partition, Placement, Routes
from ..targets import Target
from .base import CompileState, Pass, PassResult, clean_record

__all__ = ["route", "unicast_link_load", "deliver", "lookup", "route_bits", "route_words"]

def unicast_link_load(target: Target, src_core: np.ndarray, dst_core: np.ndarray,
                      messages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed links and their load when every pair sends ``messages`` unicast.

    Mesh: x-then-y; triangular torus and others: shortest-path tree; Speck / full:
    the direct link (:meth:`nmcompiler.targets.topology.NoC.unicast_link_load`).
    Returns ``(target.links(), load)``.
    """
    src_core = np.asarray(src_core, dtype=np.int64)
    dst_core = np.asarray(dst_core, dtype=np.int64)
    if src_core.size == 0:
        return target.noc.unicast_link_load(src_core, dst_core, messages)
    na = np.asarray(target.core_node(src_core), dtype=np.int64)
    nb = np.asarray(target.core_node(dst_core), dtype=np.int64)
    return target.noc.unicast_link_load(na, nb, messages)


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


def _multicast(part: Partition, place: Placement, target: Target
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


def deliver(routes: Routes, placement: Placement, target: Target) -> np.ndarray:
    """Simulate every source core's packet through the tables (vectorised).

    Returns ``(n, 2)`` int64 (source logical core, physical core reached), unique.
    A packet injected at its chip with no matching entry is dropped; one arriving on a
    link with no matching entry leaves on the opposite link (default routing).
    """
    cpc = int(target.topology.cores_per_chip)
    n_src = routes.keys.shape[0]
    chip = placement.core[np.arange(n_src)] // cpc
    neigh = target.noc.neighbours()  # type: ignore[attr-defined]
    n_nodes = neigh.shape[0]
    s = np.arange(n_src)
    v = chip.copy()
    arrive = np.full(n_src, -1, dtype=np.int64)
    got = []
    for _ in range(4 * n_nodes + 8):
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
def route(part: Partition, placement: Placement, target: Target, *, seed: int = 0,
          compress: bool = True, link_load: np.ndarray | None = None) -> Routes:
    """Route the placed partition on ``target`` (see the module docstring).

    Args:
        part, placement: the mapping to route.
        target: the target.
        seed: unused by the deterministic routing; kept for the pass signature.
        compress: compress routing tables that exceed ``routing_entries``.
        link_load: the unicast link load of this very placement, as
            :func:`nmcompiler.passes.place.place_with_link_load` returns it (saves
            routing the pairs again); ignored where routing tables are built.

    Raises:
        FitError: a chip's routing table exceeds the limit even after compression.
    """
    t0 = time.perf_counter()
    core = placement.core
    node = np.asarray(target.core_node(core), dtype=np.int64)  # router of each logical core
    na, nb = node[part.edge_src], node[part.edge_dst]
    hops = target.noc.pair_hops(na, nb)
    msgs = part.edge_messages.astype(np.int64)
    total = int(np.sum(msgs * hops))
    n_msgs = int(msgs.sum())
    limit = target.chip.routing_entries
    tables = target.noc.multicast_tables
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
        links = target.links()
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
            if limit is not None and compress and int(ck.sum()) > limit:
                label = np.where(ck, label_all[a:b], -1)
                trip = _compress(cs, label, int(limit), id_bits)
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
        if link_load is None:
            links, load = target.noc.unicast_link_load(na, nb, msgs)
        else:
            links, load = target.links(), link_load
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


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePass(Pass):
    """:func:`route` as a pipeline pass; the fields are its options."""

    name: ClassVar[str] = "route"
    requires: ClassVar[frozenset[str]] = frozenset({"partitioned", "placed"})
    ensures: ClassVar[frozenset[str]] = frozenset({"routed"})
    compress: bool = True

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        assert state.partition is not None and state.placement is not None
        rt, timings = clean_record(route(state.partition, state.placement, state.target,
                                         seed=state.seed, compress=self.compress,
                                         link_load=state.link_load))
        return PassResult(state=state.replace(routes=rt, link_load=None), report=rt.report(),
                          changed=False, timings=timings)
