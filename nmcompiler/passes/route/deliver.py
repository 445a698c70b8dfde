"""Simulation of the routing tables: key/mask lookup and default routing."""

from __future__ import annotations

import numpy as np

from ...mapping import Placement, Routes
from ...targets import Target
from .multicast import route_bits


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


def deliver(routes: Routes, placement: Placement, target: Target,
            senders: np.ndarray | None = None) -> np.ndarray:
    """Simulate the packets of the sending cores through the tables (vectorised).

    ``senders``: the logical cores that send packets (default: the sources of the core
    graph, ``routes.pair_src``; add the cores with synapses on themselves, whose packets
    come back through their router). A core that sends nothing has keys but no entries:
    merged entries may cover its keys (don't-cares), so its packets are not simulated.
    Returns ``(n, 2)`` int64 (source logical core, physical core reached), unique.
    A packet injected at its chip with no matching entry is dropped; one arriving on a
    link with no matching entry leaves on the opposite link (default routing).
    """
    cpc = int(target.topology.cores_per_chip)
    if senders is None:
        senders = np.unique(routes.pair_src)
    s = np.unique(np.asarray(senders, dtype=np.int64))
    chip = placement.core[s] // cpc
    neigh = target.noc.neighbours()  # type: ignore[attr-defined]
    n_nodes = neigh.shape[0]
    v = chip.copy()
    arrive = np.full(s.shape[0], -1, dtype=np.int64)
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
