"""The *route* pass: paths on the target's network and, where the chip has them, routing
tables within their size limit.

* Meshes (Loihi): unicast dimension-order routes, x first then y (the deadlock-free
  routing of Loihi's mesh, Davies et al., IEEE Micro 2018), one message per
  (source neuron, destination core); link loads are summed with difference arrays along
  the rows and columns of the router grid (no loop per message).
* SpiNNaker (triangular torus of chips): multicast. Keys are allocated hierarchically
  (:func:`~nmcompiler.passes.route.multicast.allocate_keys`): every population gets an
  aligned block of key ids large enough for all its slices (logical cores), each slice an
  id in it, each neuron the low bits, as sPyNNaker allocates one key space per
  application vertex. Every source core's packets follow one tree: the union of the
  paths from its chip to every chip holding a destination core (and back to its own
  processor when its neurons have synapses on the same core), taken from a breadth-first
  shortest-path tree of the chip graph: its own chip's, or (``shared_trees``, per
  population where that needs fewer distinct routes) the tree of the chip holding most
  of its population's slices, re-rooted at its own chip, so that all slices of the
  population share one spanning tree and enter the chips off the paths between their
  chips over the same link, as PACMAN routes one tree per application vertex
  (:func:`~nmcompiler.passes.route.multicast.multicast_entries`). Each chip of the tree
  gets an entry (key, mask, route word: bits 0-5 links, bit 6 + p processor p) unless the
  packet only passes straight through (default routing), as sPyNNaker removes
  default-routable entries.
* Every chip's table is minimised by default (``merge_all``), as sPyNNaker compresses
  every chip's table: ORTC (Draves et al., INFOCOM 1999: the fewest prefix entries,
  most specific first) on the trie of key ids, with the keys of packets that never reach
  the chip as don't-cares (Mundy et al., HPSR 2016), then Mundy's ordered covering into
  ternary entries, and on chips of at most :data:`PEEL_MAX_PACKETS` packets a greedy
  top-down construction (:func:`~nmcompiler.passes.route.multicast.peel_table`); the
  smallest table wins, each checked to route every packet as the unmerged table does.
  With ``merge_all=False`` only a table over ``routing_entries`` (1023 on SpiNNaker 1)
  is merged, into disjoint aligned prefix blocks, only until it fits.
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

from ...mapping import Partition, Placement, Routes
from ...targets import Target
from ..base import CompileState, Pass, PassResult, clean_record
from .deliver import deliver, lookup
from .multicast import (
    allocate_keys,
    compress_table,
    ordered_cover,
    ortc_table,
    peel_table,
    route_bits,
    route_words,
    shared_tree_roots,
)

__all__ = ["route", "RoutePass", "unicast_link_load", "deliver", "lookup", "route_bits",
           "route_words"]


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


#: Largest number of packets (source cores needing an entry) on a chip for which the route
#: pass also tries :func:`~nmcompiler.passes.route.multicast.peel_table` (its work grows
#: with packets x routes per entry; on 300-packet chips it took seconds per chip).
PEEL_MAX_PACKETS = 128
#: element operations the ordered covering may spend on one chip (each candidate merge
#: looks up the chip's packets against its table): 20,000 merges of a 100-packet chip's
#: 20-entry table, fewer on chips that a million-neuron network fills with thousands of
#: packets (docs/benchmarks.md: a 1e6-neuron compile stays within its minute)
ORDER_COVER_WORK = 40_000_000


# =========================================================================== the pass
def route(part: Partition, placement: Placement, target: Target, *, seed: int = 0,
          compress: bool = True, merge_all: bool = True, shared_trees: bool = True,
          link_load: np.ndarray | None = None) -> Routes:
    """Route the placed partition on ``target`` (see the module docstring).

    Args:
        part, placement: the mapping to route.
        target: the target.
        seed: unused by the deterministic routing; kept for the pass signature.
        compress: merge routing-table entries (False: never; a table over
            ``routing_entries`` is then a :class:`FitError`).
        merge_all: merge every chip's entries that share a route as far as they go
            (default, as sPyNNaker compresses every table); False merges only tables over
            ``routing_entries`` and only until they fit.
        shared_trees: route every slice of a population on one chip's shortest-path
            tree, re-rooted at the slice's chip (default, as PACMAN routes one tree per
            population); False: every slice on its own chip's shortest-path tree.
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
    tree_root = None
    if tables:
        links = target.links()
        tree_root, (s, v, w, removable, load) = shared_tree_roots(
            part, placement, target, shared=shared_trees)
        key_id, id_bits, nbits = allocate_keys(part, group=node)
        if id_bits + nbits > 32:
            per_core = np.bincount(part.neuron_core, minlength=part.n_cores)
            raise FitError(f"{part.n_cores} cores of up to {per_core.max()} neurons need "
                           f"{id_bits + nbits} key bits; SpiNNaker keys have 32",
                           obj="network", rule="routing keys", need=id_bits + nbits,
                           limit=32, hint="use fewer, fuller cores")
        keys = (key_id.astype(np.uint64) << np.uint64(nbits)).astype(np.uint32)
        key_mask = int((0xFFFFFFFF << nbits) & 0xFFFFFFFF)
        keep = ~removable
        raw = np.bincount(v[keep], minlength=n_chips).astype(np.int64)
        # one integer label per distinct route (the minimisers compare labels)
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
            cid, ck = key_id[s[a:b]], keep[a:b]
            n_keep = int(ck.sum())
            trip = None
            if compress and limit is not None and n_keep > 1 and merge_all:
                # as far as it goes: the fewest ordered prefix entries
                local, inv = np.unique(label_all[a:b], return_inverse=True)
                allowed = np.zeros((b - a, local.shape[0] + 1), dtype=bool)
                allowed[np.arange(b - a), inv] = True
                allowed[:, -1] = ~ck  # a straight-through visitor may match nothing
                ortc = ortc_table(cid, allowed, id_bits)
                # a candidate merge looks up every packet against the table: bound the
                # chip's work (ORDER_COVER_WORK element operations), not only its count
                checks = int(min(20_000, max(16, ORDER_COVER_WORK
                                             // max(1, (b - a) * ortc.shape[0]))))
                trip = ordered_cover(ortc, cid, allowed, id_bits, max_checks=checks)
                # above one entry per route and small enough for the greedy's quadratic
                # work (it is tried on chips of at most PEEL_MAX_PACKETS packets)
                if trip.shape[0] > np.unique(inv[ck]).shape[0] and n_keep <= PEEL_MAX_PACKETS:
                    peeled = peel_table(cid, allowed, id_bits)
                    if peeled is not None and peeled.shape[0] < trip.shape[0]:
                        trip = peeled
                if trip.shape[0] < n_keep:
                    trip[:, 2] = local[trip[:, 2]]
                else:
                    trip = None
            elif compress and limit is not None and n_keep > limit:
                # only until it fits: disjoint prefix blocks
                trip = compress_table(cid, np.where(ck, label_all[a:b], -1), int(limit),
                                      id_bits)
                trip[:, 1] = ((1 << id_bits) - 1) & ~((np.int64(1) << trip[:, 1]) - 1)
            if trip is not None:
                compressed += 1
                kk = trip[:, 0].astype(np.uint64) << np.uint64(nbits)
                # the id mask, every bit above the key ids set, the neuron bits clear
                hi = np.uint64((0xFFFFFFFF << id_bits) & 0xFFFFFFFF)
                mm = ((trip[:, 1].astype(np.uint64) | hi) << np.uint64(nbits)) \
                    & np.uint64(0xFFFFFFFF)
                ek.append(kk.astype(np.uint32))
                em.append(mm.astype(np.uint32))
                er.append(trip[:, 2:3].astype(np.uint32) if uniq is None else uniq[trip[:, 2]])
                counts[c] = len(trip)
            else:
                o = np.argsort(cid[ck], kind="stable")
                ek.append(keys[s[a:b][ck]][o])
                em.append(np.full(n_keep, key_mask, dtype=np.uint32))
                er.append(w[a:b][ck][o])
                counts[c] = n_keep
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
        routing_limit=int(limit) if (tables and limit is not None) else None, stats=stats,
        tree_root=tree_root)


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePass(Pass):
    """:func:`route` as a pipeline pass; the fields are its options."""

    name: ClassVar[str] = "route"
    requires: ClassVar[frozenset[str]] = frozenset({"partitioned", "placed"})
    ensures: ClassVar[frozenset[str]] = frozenset({"routed"})
    compress: bool = True
    merge_all: bool = True
    shared_trees: bool = True

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        assert state.partition is not None and state.placement is not None
        rt, timings = clean_record(route(state.partition, state.placement, state.target,
                                         seed=state.seed, compress=self.compress,
                                         merge_all=self.merge_all,
                                         shared_trees=self.shared_trees,
                                         link_load=state.link_load))
        return PassResult(state=state.replace(routes=rt, link_load=None), report=rt.report(),
                          changed=False, timings=timings)
