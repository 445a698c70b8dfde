"""SpiNNaker multicast: hierarchical routing keys, route words, tree entries and table
minimisation (ordered prefix tables: ORTC, Draves et al., INFOCOM 1999, with the don't-care
keys of Mundy et al., HPSR 2016; the prefix-block merging used only until a table fits)."""

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


def core_population(part: Partition) -> np.ndarray:
    """Population of every logical core: the population of its first neuron (int64)."""
    n = int(part.n_cores)
    nc = np.asarray(part.neuron_core, dtype=np.int64)
    first = np.full(n, nc.shape[0], dtype=np.int64)
    np.minimum.at(first, nc, np.arange(nc.shape[0], dtype=np.int64))
    offsets = np.asarray(part.pop_offsets, dtype=np.int64)
    return np.searchsorted(offsets, first, side="right") - 1


def population_tree_roots(part: Partition, chip_of: np.ndarray, senders: np.ndarray
                          ) -> np.ndarray:
    """The chip whose shortest-path tree carries every slice of a population, per core:
    the chip holding most of the population's sending cores (the lowest such chip on a
    tie); a core that sends nothing keeps its own chip."""
    pop = core_population(part)
    out = np.asarray(chip_of, dtype=np.int64).copy()
    s = np.unique(np.asarray(senders, dtype=np.int64))
    if s.size == 0:
        return out
    pairs, counts = np.unique(np.stack([pop[s], chip_of[s]], axis=1), axis=0,
                              return_counts=True)
    # per population: most senders first, then the lowest chip
    o = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
    pairs = pairs[o]
    firsts = np.concatenate([[True], pairs[1:, 0] != pairs[:-1, 0]])
    best = np.full(int(pop.max(initial=0)) + 1, -1, dtype=np.int64)
    best[pairs[firsts, 0]] = pairs[firsts, 1]
    out[s] = best[pop[s]]
    return out


#: the most chips a population's slices may span and still share one tree
SHARED_TREE_MAX_CHIPS = 4


def multicast_entries(part: Partition, place: Placement, target: Target, *,
                      shared_trees: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Trees of every source core. Returns entries (source, chip, route words, removable)
    sorted by (chip, source), and the link load of the trees; route words are
    ``(n, route_words(target))`` uint32.

    A core whose neurons have synapses on the same core (``part.local_sources``) also
    routes to its own processor: on SpiNNaker a spike leaves the core as a multicast
    packet and comes back through the router, as sPyNNaker routes it; so every slice of a
    population with recurrent synapses has the same route word on its chip.

    Each slice routes on a shortest-path tree of the chip graph. Without
    ``shared_trees``, the tree of its own chip. With it (default), per population, the
    choice that needs fewer distinct (chip, route) pairs for its table entries (its own
    chips' trees on a tie): those, or one tree for every slice, the shortest-path tree
    of the chip holding most of its slices (:func:`population_tree_roots`) re-rooted at
    each slice's chip (:meth:`nmcompiler.targets.topology.NoC.multicast_trees`), so that
    slices on different chips enter every chip off the paths between their chips over
    the same link and one entry can cover the population there, as PACMAN routes one
    tree per application vertex (docs/spinnaker_backend.md). A population spread over
    several chips with other populations' slices in between can need more entries on
    one tree (detours through chips it would pass straight through or not visit), hence
    the choice per population.
    """
    return shared_tree_roots(part, place, target, shared=shared_trees)[1]


def shared_tree_roots(part: Partition, place: Placement, target: Target, *,
                      shared: bool = True
                      ) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
    """The tree chip of every core as :func:`multicast_entries` chooses it with
    ``shared_trees=shared`` (None where every core keeps its own chip's tree), and
    those entries."""
    own = _tree_entries(part, place, target, None)
    if not shared:
        return None, own
    cpc = int(target.topology.cores_per_chip)
    chip_of = place.core // cpc
    senders = np.union1d(part.edge_src, np.flatnonzero(np.asarray(part.local_sources) > 0))
    root = population_tree_roots(part, chip_of, senders)
    pop = core_population(part)
    n_pops = int(pop.max(initial=0)) + 1
    # only a population on a few chips can share one tree (one spread over many chips
    # would detour through all of them): the others keep their own chips' trees, and a
    # network with none such (a million neurons over hundreds of chips) builds one set
    pc = np.unique(np.stack([pop, chip_of]), axis=1)[0]
    spread = np.bincount(pc, minlength=n_pops)
    root = np.where(spread[pop] <= SHARED_TREE_MAX_CHIPS, root, chip_of)
    if np.array_equal(root, chip_of):
        return None, own
    one = _tree_entries(part, place, target, root)

    def pairs(e: tuple[np.ndarray, ...]) -> np.ndarray:
        s, v, w, rem = e[0], e[1], e[2], e[3]
        keep = ~rem
        rows = np.concatenate([pop[s[keep]][:, None], v[keep][:, None],
                               w[keep].astype(np.int64)], axis=1)
        u = np.unique(rows, axis=0)
        return np.bincount(u[:, 0], minlength=n_pops)

    better = pairs(one) < pairs(own)
    if not better.any():
        return None, own
    chosen = np.where(better[pop], root, chip_of)
    return chosen, _tree_entries(part, place, target, chosen)


def _tree_entries(part: Partition, place: Placement, target: Target,
                  tree_root: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`multicast_entries` with the slices of core ``s`` on the shortest-path tree
    of chip ``tree_root[s]`` re-rooted at their own chip (None: their own chip's)."""
    noc = target.noc
    cpc = int(target.topology.cores_per_chip)
    core = place.core
    chip_of = core // cpc
    src = part.edge_src.astype(np.int64)
    dst = part.edge_dst.astype(np.int64)
    local = np.flatnonzero(np.asarray(part.local_sources) > 0)
    if local.size:  # packets for a core's own synapses come back through its router
        src = np.concatenate([src, local])
        dst = np.concatenate([dst, local])
    s_all, v_all, child, par, lidx = noc.multicast_trees(chip_of, src, chip_of[dst],
                                                         int(part.n_cores),
                                                         tree_root=tree_root)
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
              ) -> np.ndarray:
    """Entries ``(first key id, level, route)`` for one chip, merged only until at most
    ``limit`` remain (aligned prefix blocks of key ids that hold no key needing another
    route, so entries are disjoint). ``src``: the visitors' key ids; ``label``: route
    label, or -1 for a default-routed visitor."""
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


def allocate_keys(part: Partition, group: np.ndarray | None = None
                  ) -> tuple[np.ndarray, int, int]:
    """Hierarchical routing keys: population, then slice, then neuron.

    A logical core's population is the population of its first neuron; the cores of a
    population (its slices, consecutive in the partition's numbering) get consecutive key
    ids inside one block of ``2**ceil(log2(slices))`` ids aligned to its size, so a single
    key/mask covers every slice of a population (as sPyNNaker allocates one key space per
    application vertex with the machine vertices inside, docs/spinnaker_backend.md).
    Blocks are laid out largest first (network order among equal sizes), which keeps
    every block aligned without gaps. Neuron ``i`` of a core sends
    ``(key_id << neuron_bits) | i``.

    Returns ``(key_id per core, id_bits, neuron_bits)``: int64 ids, the bits the ids
    take, the bits of the neuron field.
    """
    n = int(part.n_cores)
    nc = np.asarray(part.neuron_core, dtype=np.int64)
    per_core = np.bincount(nc, minlength=n)
    neuron_bits = int(np.ceil(np.log2(max(int(per_core.max(initial=1)), 1))))
    if n == 0:
        return np.zeros(0, dtype=np.int64), 1, neuron_bits
    first = np.full(n, nc.shape[0], dtype=np.int64)
    np.minimum.at(first, nc, np.arange(nc.shape[0], dtype=np.int64))
    offsets = np.asarray(part.pop_offsets, dtype=np.int64)
    pop = np.searchsorted(offsets, first, side="right") - 1
    n_pops = offsets.shape[0] - 1
    slices = np.bincount(pop, minlength=n_pops)
    block = np.where(slices > 0, 1 << np.ceil(np.log2(np.maximum(slices, 1))).astype(np.int64),
                     0)
    if group is None:
        gkey = np.zeros(n_pops, dtype=np.int64)
    else:  # the group (e.g. chip) of each population's first core
        gkey = np.zeros(n_pops, dtype=np.int64)
        firsts = np.flatnonzero(np.concatenate([[True], pop[1:] != pop[:-1]]))
        gkey[pop[firsts]] = np.asarray(group, dtype=np.int64)[firsts]
    order = np.lexsort((np.arange(n_pops), gkey, -block))
    base = np.zeros(n_pops, dtype=np.int64)
    base[order] = np.cumsum(block[order]) - block[order]
    # rank of each core among its population's cores (in core order)
    by_pop = np.lexsort((np.arange(n), pop))
    rank = np.empty(n, dtype=np.int64)
    start = np.searchsorted(pop[by_pop], pop[by_pop], side="left")
    rank[by_pop] = np.arange(n) - start
    key_id = base[pop] + rank
    id_bits = max(int(np.ceil(np.log2(max(int(block.sum()), 2)))), 1)
    return key_id, id_bits, neuron_bits


def ortc_table(ids: np.ndarray, allowed: np.ndarray, id_bits: int) -> np.ndarray:
    """The fewest prefix entries that route every visitor of one chip, in first-match
    order: ORTC (R. Draves, C. King, S. Venkatachary and B. Zill, "Constructing optimal IP
    routing tables", INFOCOM 1999) on the binary trie of key ids.

    ``ids``: the ``(m,)`` distinct key ids of the packets that reach the chip; ``allowed``:
    ``(m, L + 1)`` bool, the routes (labels ``0..L-1``) each may take, column ``L``
    meaning "no entry matches" (the default route, acceptable for a packet that only
    passes straight through, whose own label is then the straight link as well).
    Keys of packets that never reach the chip are don't-cares (their subtrees accept
    every route), the idea of A. Mundy, J. Heathcote and J. D. Garside, "On-chip
    order-exploiting routing table minimization for a multicast supercomputer network",
    HPSR 2016. ORTC: bottom up, a node's candidate set is the intersection of its
    children's if not empty, else their union; top down, a node inherits its parent's
    route if that is a candidate, else it gets an entry with one of its candidates (the
    lowest label). Entries listed most specific first make the first match the longest
    prefix. Departures: masks are prefixes (Mundy's ordered covering also merges into
    non-prefix masks), and "no entry" cannot be chosen below an entry, so a node whose
    only candidate is the default route passes its parent's route to its children.

    Returns ``(n_entries, 3)`` int64 rows ``(key id, id mask, label)`` (the mask over the
    ``id_bits`` bits of the key id: the prefix), most specific first.
    """
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    node, cand = ids[order], np.asarray(allowed, dtype=bool)[order]
    n_real = cand.shape[1] - 1
    nodes, sets, groups = [node], [cand], []
    for _ in range(id_bits):
        par = node >> 1
        starts = np.flatnonzero(np.concatenate([[True], par[1:] != par[:-1]]))
        counts = np.diff(np.append(starts, par.shape[0]))
        up = cand[starts].copy()
        two = np.flatnonzero(counts == 2)
        if two.size:
            a, b = cand[starts[two]], cand[starts[two] + 1]
            both = a & b
            up[two] = np.where(both.any(axis=1)[:, None], both, a | b)
        groups.append(counts)
        node, cand = par[starts], up
        nodes.append(node)
        sets.append(cand)
    out = []
    inherit = np.full(nodes[-1].shape[0], n_real, dtype=np.int64)  # no entry above root
    for lvl in range(id_bits, -1, -1):
        s = sets[lvl]
        ok = s[np.arange(s.shape[0]), inherit]
        real = s[:, :n_real]
        need = ~ok & real.any(axis=1)
        pick = np.argmax(real, axis=1)
        if need.any():
            out.append(np.stack([nodes[lvl][need] << lvl, np.full(int(need.sum()), lvl),
                                 pick[need]], axis=1))
        eff = np.where(need, pick, inherit)
        if lvl > 0:
            inherit = np.repeat(eff, groups[lvl - 1])
    if not out:
        return np.zeros((0, 3), dtype=np.int64)
    trip = np.concatenate(out[::-1]).astype(np.int64)  # level 0 first
    trip = trip[np.lexsort((trip[:, 0], trip[:, 1]))]
    full = (1 << id_bits) - 1
    trip[:, 1] = full & ~((np.int64(1) << trip[:, 1]) - 1)
    return trip


def ordered_cover(table: np.ndarray, ids: np.ndarray, allowed: np.ndarray, id_bits: int,
                  max_checks: int = 20_000) -> np.ndarray:
    """Merge entries of one chip's ordered table that share a route into ternary entries
    (any mask, not only prefixes), after :func:`ortc_table`: the ordered covering of
    A. Mundy, J. Heathcote and J. D. Garside, "On-chip order-exploiting routing table
    minimization for a multicast supercomputer network", HPSR 2016.

    ``table``: ``(n, 3)`` rows ``(key id, id mask, label)`` in first-match order, sorted
    by generality (the number of don't-care bits); ``ids``, ``allowed``: as for
    :func:`ortc_table`. Routes are taken in order of their entry count (most first); an
    entry is merged into the growing merged entry of its route (key bits where both
    agree, every other bit don't-care), the result inserted after every entry of no
    greater generality, and the merge is kept only if every packet it matches still
    takes an allowed route at its first match. Departures from the paper: merges grow
    one entry at a time and are checked by looking up the keys that reach the chip
    (so keys of packets that never reach it stay don't-cares) instead of Mundy's
    up- and down-checks and aliases; at most ``max_checks`` candidate merges per chip.

    Returns the merged table, rows as ``table``'s.
    """
    ids = np.asarray(ids, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=bool)
    key, mask, lab = (np.asarray(table[:, i], dtype=np.int64).copy() for i in range(3))
    full = (1 << id_bits) - 1
    uid = np.arange(key.shape[0])  # identity of each row while rows move

    def xbits(m: int) -> int:
        return id_bits - bin(m & full).count("1")

    gen = np.array([xbits(int(m)) for m in mask], dtype=np.int64)
    checks = 0
    labels, counts = np.unique(lab, return_counts=True)
    for r in labels[np.lexsort((labels, -counts))]:
        pending = [int(u) for u in uid[lab == r]]
        while len(pending) >= 2 and checks < max_checks:
            cur, left = pending[0], []  # the growing merged entry keeps cur's identity
            for other in pending[1:]:
                if checks >= max_checks:
                    break
                checks += 1
                ci = int(np.flatnonzero(uid == cur)[0])
                oi = int(np.flatnonzero(uid == other)[0])
                nm = int(mask[ci]) & int(mask[oi]) & ~(int(key[ci]) ^ int(key[oi])) & full
                nk = int(key[ci]) & nm
                g_new = xbits(nm)
                keep = np.ones(key.shape[0], dtype=bool)
                keep[[ci, oi]] = False
                g2 = gen[keep]
                at = int(np.searchsorted(g2, g_new, side="right"))
                k2 = np.insert(key[keep], at, nk)
                m2 = np.insert(mask[keep], at, nm)
                l2 = np.insert(lab[keep], at, r)
                hit = np.flatnonzero((ids & nm) == nk)
                first = np.argmax((ids[hit, None] & m2[None, :]) == k2[None, :], axis=1)
                if np.all(allowed[hit, l2[first]]):
                    key, mask, lab = k2, m2, l2
                    gen = np.insert(g2, at, g_new)
                    uid = np.insert(uid[keep], at, cur)
                else:
                    left.append(other)
            pending = left
    return np.stack([key, mask, lab], axis=1)


def _covers(ids: np.ndarray, members: np.ndarray, id_bits: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Ternary cover (key, mask) of the ids in each column of ``members`` ((m, L) bool):
    a bit is fixed where every member agrees, don't-care elsewhere."""
    full = (1 << id_bits) - 1
    key = np.zeros(members.shape[1], dtype=np.int64)
    mask = np.full(members.shape[1], full, dtype=np.int64)
    for b in range(id_bits):
        one = ((ids >> b) & 1).astype(bool)
        has1 = (members & one[:, None]).any(axis=0)
        has0 = (members & ~one[:, None]).any(axis=0)
        mask[has0 & has1] &= ~(1 << b)
        key[has1 & ~has0] |= 1 << b
    return key, mask


def _best_group(lid: np.ndarray, lal: np.ndarray, lneed: np.ndarray, mem: np.ndarray,
                sub: np.ndarray, r: int, id_bits: int) -> tuple[int, int, int, int]:
    """Of the groups of route ``r``'s members ``mem`` (columns of ``sub``), the one whose
    ternary cover captures no foreign packet and the most packets still needing a route:
    ``(packets covered, r, key, mask)``, ``(0, r, ...)`` when none qualifies."""
    gk, gm = _covers(lid[mem], sub, id_bits)
    gcap = (lid[:, None] & gm[None, :]) == gk[None, :]
    gok = ~(gcap & ~lal[:, r:r + 1]).any(axis=0)
    g = np.where(gok, (gcap & lneed[:, None]).sum(axis=0), 0)
    j = int(np.argmax(g))
    return int(g[j]), r, int(gk[j]), int(gm[j])


#: :func:`peel_table` settles the foreign packets under a route's cover one by one when
#: there are at most this many (else it splits a route's packets)
SETTLE_MAX = 1


def peel_table(ids: np.ndarray, allowed: np.ndarray, id_bits: int,
               max_steps: int = 4096) -> np.ndarray | None:
    """An ordered ternary table for one chip built from the top: each step appends the
    entry that gives the most packets still unrouted their route without giving any of
    them a route it may not take (first match wins, so packets matched above are
    settled and no longer constrain it). Candidates per route: the ternary cover of all
    its unrouted packets; when none qualifies and a route's cover captures at most
    :data:`SETTLE_MAX` foreign packets, an exact entry for one of them (settling it
    above, so that cover qualifies later); else the cover of all but one of a route's
    packets or of the packets under one node of their binary trie of key ids (a single
    key always qualifies, so every step makes progress). Packets that may
    match nothing (straight through) are never targeted but may be covered by an entry
    of their own straight route. This is the order-exploiting idea of Mundy et al.
    (HPSR 2016) run greedily from the top of the table instead of by merging pairs;
    ``ids`` and ``allowed`` as for :func:`ortc_table`. Returns rows ``(key id, id mask,
    label)`` in table order, or None after ``max_steps`` steps.
    """
    ids = np.asarray(ids, dtype=np.int64)
    allowed = np.asarray(allowed, dtype=bool)
    n_real = allowed.shape[1] - 1
    need = ~allowed[:, n_real]
    live = np.ones(ids.shape[0], dtype=bool)
    out: list[tuple[int, int, int]] = []
    for _ in range(max_steps):
        if not (live & need).any():
            return np.asarray(out, dtype=np.int64).reshape(-1, 3)
        li = np.flatnonzero(live)
        lid, lal, lneed = ids[li], allowed[li, :n_real], need[li]
        has_need = (lal & lneed[:, None]).any(axis=0)
        key, mask = _covers(lid, lal & lneed[:, None], id_bits)
        cap = (lid[:, None] & mask[None, :]) == key[None, :]
        ok = ~(cap & ~lal).any(axis=0)
        gain = np.where(ok & (lal & lneed[:, None]).any(axis=0),
                        (cap & lneed[:, None]).sum(axis=0), 0)
        if gain.max(initial=0) > 0:
            r = int(np.argmax(gain))
            k, m = int(key[r]), int(mask[r])
        elif (foreign := np.where(has_need, (cap & ~lal).sum(axis=0), id_bits + 2**20)
              ).min(initial=SETTLE_MAX + 1) <= SETTLE_MAX:
            # a route's full cover captures few foreign packets: settle one of them with
            # an exact entry above it (the full cover qualifies once all are settled)
            rs = np.flatnonzero(foreign == foreign.min())
            r0 = int(rs[np.argmax((lal[:, rs] & lneed[:, None]).sum(axis=0))])
            i = int(np.flatnonzero(cap[:, r0] & ~lal[:, r0])[0])
            r, k, m = int(np.argmax(lal[i])), int(lid[i]), (1 << id_bits) - 1
        else:  # every full cover captures foreign packets: best trie-node cover
            best = (0, 0, 0, 0)
            for r in np.flatnonzero((lal & lneed[:, None]).any(axis=0)):
                mem = np.flatnonzero(lal[:, r] & lneed)
                if mem.size > 2:  # every member but one
                    sub = ~np.eye(mem.size, dtype=bool)
                    cand = _best_group(lid, lal, lneed, mem, sub, int(r), id_bits)
                    best = cand if cand[0] > best[0] else best
                for lvl in range(id_bits - 1, -1, -1):
                    pre = lid[mem] >> lvl
                    groups = np.unique(pre)
                    sub = pre[:, None] == groups[None, :]
                    cand = _best_group(lid, lal, lneed, mem, sub, int(r), id_bits)
                    best = cand if cand[0] > best[0] else best
                    if cand[0] > 0:
                        break  # the largest groups of this route that qualify
            _, r, k, m = best
        out.append((k, m, r))
        live[li[(lid & m) == k]] = False
    return None
