"""Tests of the route pass: hops, link loads, SpiNNaker tables (fit and deliver), errors."""

from __future__ import annotations

import numpy as np
import pytest
import tomllib

from nmcompiler import ir
from nmcompiler.ir.errors import FitError
from nmcompiler.passes.partition import partition
from nmcompiler.passes.place import place
from nmcompiler.passes.route import deliver, lookup, route, unicast_link_load
from nmcompiler.targets import load_target, parse_target

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


def random_net(n=2000, k=8, seed=0, pops=2) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network("r")
    size = n // pops
    for p in range(pops):
        net.population(f"p{p}", size, ir.LIF())
    for p in range(pops):
        q = (p + 1) % pops
        pre = np.repeat(np.arange(size), k)
        post = rng.integers(0, size, size * k)
        net.connect(f"p{p}", f"p{q}", ir.Sparse.from_coo(
            pre=pre, post=post, weight=np.ones(pre.size), n_pre=size, n_post=size))
    return net


def senders(part) -> np.ndarray:
    """Cores that send packets: sources of the core graph and cores with synapses on
    themselves."""
    return np.union1d(part.edge_src, np.flatnonzero(np.asarray(part.local_sources) > 0))


def expected_deliveries(part, pl) -> set:
    """(source core, physical core) pairs the tables must deliver: every edge of the core
    graph, and a core with synapses on itself back to itself (through its router)."""
    local = np.flatnonzero(np.asarray(part.local_sources) > 0)
    src = np.concatenate([part.edge_src.astype(np.int64), local])
    dst = np.concatenate([part.edge_dst.astype(np.int64), local])
    return set(map(tuple, np.unique(np.stack([src, pl.core[dst]], axis=1),
                                    axis=0).tolist()))


def spinnaker_with(entries: int, variant: str | None = None, base: str = "spinnaker"):
    from nmcompiler import hw_configs

    doc = tomllib.loads(hw_configs.path(base).read_text())
    doc["real_chip"] = False
    doc["chip_budget"]["routing_entries"] = {"value": entries, "status": "synthetic",
                                             "note": "test"}
    return parse_target(doc, label=f"{base}-{entries}", variant=variant)


def test_mesh_hops_and_link_loads():
    target = load_target("loihi")
    # one message from core 0 (node (0,0)) to core 4*3 + 8*4*2 (node (3, 2))
    dst = 4 * 3 + 4 * 8 * 2
    links, load = unicast_link_load(target, np.array([0]), np.array([dst]), np.array([5]))
    assert int(target.hops(0, dst)) == 5
    assert load.sum() == 5 * 5 and set(np.unique(load)) <= {0, 5}
    xy = target.node_coords()
    used = links[load > 0]
    # x first along row 0, then y along column 3
    assert all(xy[a][1] == 0 for a, b in used if xy[a][1] == xy[b][1])
    assert all(xy[a][0] == 3 for a, b in used if xy[a][0] == xy[b][0])


def test_route_mesh_totals():
    target = load_target("loihi")
    net = random_net()
    part = partition(net, target)
    pl = place(part, target)
    r = route(part, pl, target)
    assert r.messages == part.messages
    assert r.total_hops == pl.cost
    assert np.array_equal(r.pair_hops, target.hops(pl.core[part.edge_src],
                                                   pl.core[part.edge_dst]))
    assert r.link_load.sum() == r.total_hops  # every hop crosses one link
    assert r.routing_limit is None


@pytest.mark.parametrize("variant", [None, "spinn3"])
def test_spinnaker_tables_route_every_key(variant):
    target = load_target("spinnaker" if variant is None else f"spinnaker:{variant}")
    net = random_net(n=3000 if variant is None else 1500)
    part = partition(net, target)
    pl = place(part, target)
    r = route(part, pl, target)
    assert r.multicast and r.routing_limit == 1023
    assert r.entries_per_chip.max() <= 1023
    got = set(map(tuple, deliver(r, pl, target, senders(part)).tolist()))
    assert got == expected_deliveries(part, pl)


def test_compression_only_until_fit_and_correct():
    base = spinnaker_with(1023, "spinn3")
    net = random_net(n=4000, k=20, pops=4, seed=2)
    part = partition(net, base)
    pl = place(part, base)
    full = route(part, pl, base, compress=False)
    need = int(full.entries_per_chip.max())
    assert need > 8  # tables worth compressing
    limit = need - 3
    small = spinnaker_with(limit, "spinn3")
    # default (merge_all=True): every chip merged as far as it goes
    merged = route(part, pl, small)
    got = set(map(tuple, deliver(merged, pl, small, senders(part)).tolist()))
    assert got == expected_deliveries(part, pl)
    r = route(part, pl, small, merge_all=False)
    assert r.entries_per_chip.max() <= limit
    # compressed only as far as needed: the fullest chip ends close to the limit
    assert r.entries_per_chip.max() >= limit - 8
    assert np.array_equal(r.entries_uncompressed, full.entries_uncompressed)
    got = set(map(tuple, deliver(r, pl, small, senders(part)).tolist()))
    assert got == expected_deliveries(part, pl)
    assert merged.entries_per_chip.sum() <= r.entries_per_chip.sum()


def test_routing_table_fit_error():
    t = spinnaker_with(1, "spinn3")
    net = random_net(n=3000, k=20, pops=3, seed=1)
    part = partition(net, t)
    pl = place(part, t)
    with pytest.raises(FitError) as e:
        route(part, pl, t)
    text = str(e.value)
    assert "chip (" in text and "routing entries" in text and "allows 1" in text
    assert e.value.hint and e.value.need > 1 and e.value.limit == 1


def test_lookup_first_match_wins():
    target = load_target("spinnaker:spinn3")
    net = random_net(n=600)
    part = partition(net, target)
    pl = place(part, target)
    r = route(part, pl, target)
    chip = int(np.argmax(r.entries_per_chip))
    a = r.table_offsets[chip]
    key = r.table_key[a]
    assert lookup(r, np.array([chip]), np.array([key]))[0] == a
    assert lookup(r, np.array([chip]), np.array([0xFFFFFFF0], dtype=np.uint32))[0] == -1


def test_speck_direct_links():
    target = load_target("speck2f")
    net = ir.Network("cnn")
    net.input("in", shape=(2, 16, 16))
    net.population("a", shape=(4, 16, 16), model=ir.IF())
    net.population("b", shape=(4, 8, 8), model=ir.IF())
    net.connect("in", "a", ir.Conv2d(weight=np.ones((4, 2, 3, 3)), padding=(1, 1)))
    net.connect("a", "b", ir.Conv2d(weight=np.ones((4, 4, 3, 3)), stride=(2, 2),
                                    padding=(1, 1)))
    part = partition(net, target)
    pl = place(part, target)
    r = route(part, pl, target)
    assert r.pair_hops.tolist() == [1]
    assert r.max_link_load == part.messages


def test_spinnaker2_wide_route_words_reach_every_processor():
    # SpiNNaker 2 has 150 application cores per chip: routes need 6 + 151 bits (five
    # 32-bit words); a 32-bit word would silently drop destinations in slots 25+
    from nmcompiler.api import compile as compile_network
    from nmcompiler.passes.route import route_bits, route_words

    rng = np.random.default_rng(0)
    n = 256 * 40
    net = ir.Network("wide")
    net.population("p", n, ir.LIF(lam=0.9))
    pre = rng.integers(0, n, 20 * n)
    post = rng.integers(0, n, 20 * n)
    net.connect("p", "p", ir.Sparse.from_coo(pre=pre, post=post,
                                             weight=np.ones(pre.size) * .1,
                                             n_pre=n, n_post=n), delay=1)
    target = load_target("spinnaker2")
    assert route_words(target) == 5
    c = compile_network(net, "spinnaker2", seed=0)
    r, pl, part = c.routes, c.placement, c.partition
    assert r.table_route.shape == (r.table_key.shape[0], 5)
    slots = np.asarray(target.core_coords())[pl.core, 4]
    assert slots.max() >= 25  # the cores beyond a 32-bit word are in use
    got = set(map(tuple, deliver(r, pl, target, senders(part)).tolist()))
    assert got == expected_deliveries(part, pl)
    # every processor bit set in a table names a used core (no stray bits)
    bits = route_bits(r, np.arange(r.table_key.shape[0]))
    used = set((slots + 1).tolist())
    assert set(np.flatnonzero(bits[:, 6:].any(axis=0)).tolist()) <= used


def test_spinnaker2_compressed_wide_routes_still_deliver():
    # compression on multi-word routes merges by route identity across all words
    base = load_target("spinnaker2:board48")
    net = random_net(n=4000, k=20, pops=4, seed=2)
    part = partition(net, base)
    pl = place(part, base)
    full = route(part, pl, base, compress=False)
    need = int(full.entries_per_chip.max())
    assert need > 8
    small = spinnaker_with(need - 3, "board48", base="spinnaker2")
    r = route(part, pl, small)
    assert r.entries_per_chip.max() <= need - 3
    assert r.stats["chips_compressed"] >= 1
    got = set(map(tuple, deliver(r, pl, small, senders(part)).tolist()))
    assert got == expected_deliveries(part, pl)


# ------------------------------------------------------------- keys and table minimisation
def _first_match(table, ids):
    """Label of the first matching row of a (key id, id mask, label) table; -1: none."""
    if table.shape[0] == 0:
        return np.full(ids.shape[0], -1)
    key, mask, lab = table[:, 0], table[:, 1], table[:, 2]
    hit = (ids[:, None] & mask[None, :]) == key[None, :]
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), lab[first], -1)


def _chip_problem(data, id_bits):
    """Random visitors of one chip: distinct key ids, a required route each, some only
    passing straight through (which may match nothing or their own straight route)."""
    from hypothesis import strategies as st

    n = data.draw(st.integers(1, min(40, 2 ** id_bits)))
    ids = np.array(sorted(data.draw(st.sets(st.integers(0, 2 ** id_bits - 1), min_size=n,
                                            max_size=n))), dtype=np.int64)
    n_labels = data.draw(st.integers(1, 6))
    lab = np.array(data.draw(st.lists(st.integers(0, n_labels - 1), min_size=n,
                                      max_size=n)), dtype=np.int64)
    straight = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    allowed = np.zeros((n, n_labels + 1), dtype=bool)
    allowed[np.arange(n), lab] = True
    allowed[:, -1] = straight
    return ids, allowed


def _routes_every_visitor(table, ids, allowed):
    got = _first_match(table, ids)
    none = allowed.shape[1] - 1
    return bool(np.all(allowed[np.arange(ids.shape[0]), np.where(got < 0, none, got)]))


def test_minimised_chip_tables_route_every_key_property():
    # for every packet reaching the chip, the first matching entry of each minimiser's
    # table gives the route it needs (a straight-through packet: no match, or its own
    # straight route); keys of packets that never reach the chip are free
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from nmcompiler.passes.route.multicast import ordered_cover, ortc_table, peel_table

    @settings(max_examples=80, deadline=None, derandomize=True)
    @given(st.data(), st.integers(1, 7))
    def check(data, id_bits):
        ids, allowed = _chip_problem(data, id_bits)
        need = ~allowed[:, -1]
        ortc = ortc_table(ids, allowed, id_bits)
        assert _routes_every_visitor(ortc, ids, allowed)
        # (ORTC may exceed one entry per packet where straight-through packets sit under
        # a merged entry: the route pass then keeps the smaller table)
        oc = ordered_cover(ortc, ids, allowed, id_bits)
        assert _routes_every_visitor(oc, ids, allowed)
        assert oc.shape[0] <= ortc.shape[0]
        peel = peel_table(ids, allowed, id_bits)
        assert peel is not None and _routes_every_visitor(peel, ids, allowed)
        assert peel.shape[0] <= int(need.sum())

    check()


def _required_routes(part, pl, target):
    from nmcompiler.passes.route.multicast import multicast_entries

    s, v, w, removable, _ = multicast_entries(part, pl, target)
    return s, v, w, removable


def _net_from(sizes, pairs, seed, p=0.05):
    rng = np.random.default_rng(seed)
    net = ir.Network("rand")
    for i, n in enumerate(sizes):
        net.population(f"p{i}", n, ir.LIF(lam=0.9))
    for a, b in pairs:
        na, nb = sizes[a], sizes[b]
        m = rng.random((na, nb)) < p
        pre, post = np.nonzero(m)
        if pre.size == 0:
            pre, post = np.array([0]), np.array([0])
        net.connect(f"p{a}", f"p{b}", ir.Sparse.from_coo(
            pre=pre, post=post, weight=np.full(pre.size, 0.5), n_pre=na, n_post=nb))
    return net


def test_merged_tables_route_every_key_as_unmerged_property():
    # random networks: on every chip, every source core's key (every neuron of it) takes
    # at its first matching entry exactly the route of the unmerged table (or, where the
    # unmerged table has no entry because the packet goes straight on, no entry or that
    # straight link)
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from nmcompiler.passes.route.multicast import route_bits as _  # noqa: F401

    target = load_target("spinnaker:spinn3")

    @settings(max_examples=12, deadline=None, derandomize=True)
    @given(st.lists(st.integers(30, 900), min_size=2, max_size=7), st.integers(0, 10**6))
    def check(sizes, seed):
        rng = np.random.default_rng(seed)
        k = len(sizes)
        pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, k, (2 * k, 2))})
        net = _net_from(sizes, pairs, seed)
        part = partition(net, target)
        pl = place(part, target)
        r = route(part, pl, target)
        s, v, w, removable = _required_routes(part, pl, target)
        per_core = np.bincount(part.neuron_core, minlength=part.n_cores)
        for j in range(s.shape[0]):
            src, chip = int(s[j]), int(v[j])
            keys = (r.keys[src] | np.arange(per_core[src], dtype=np.uint32)).astype(np.uint32)
            e = lookup(r, np.full(keys.shape[0], chip), keys)
            if removable[j]:
                ok = (e < 0) | np.all(r.table_route[np.maximum(e, 0)] == w[j], axis=1)
            else:
                ok = (e >= 0) & np.all(r.table_route[np.maximum(e, 0)] == w[j], axis=1)
            assert ok.all(), (src, chip)
        assert np.all(r.entries_per_chip <= r.entries_uncompressed)
        got = set(map(tuple, deliver(r, pl, target, senders(part)).tolist()))
        assert got == expected_deliveries(part, pl)

    check()


def test_population_slices_on_one_route_share_one_entry():
    # population b (6 slices) and a (1 slice) both reach the same chip with different
    # routes; hierarchical keys give b one aligned block, so one entry covers all its
    # slices (with one key per core and prefix merging, ids 1..6 next to a's id 0 needed
    # several blocks)
    target = load_target("spinnaker:spinn3")
    net = ir.Network("slices")
    for name, n in (("a", 200), ("b", 6 * 256), ("da", 200), ("db", 256)):
        net.population(name, n, ir.LIF(lam=0.9))
    rng = np.random.default_rng(0)
    for pre, post, n_pre, n_post in (("a", "da", 200, 200), ("b", "db", 6 * 256, 256)):
        m = rng.random((n_pre, n_post)) < 0.05
        i, j = np.nonzero(m)
        net.connect(pre, post, ir.Sparse.from_coo(pre=i, post=j, weight=np.full(i.size, .5),
                                                 n_pre=n_pre, n_post=n_post))
    part = partition(net, target, method="sequential")
    pl = place(part, target)
    r = route(part, pl, target)
    first = np.unique(part.neuron_core, return_index=True)[1]
    pop = np.searchsorted(part.pop_offsets, first, side="right") - 1
    b_cores = np.flatnonzero(pop == 1)
    assert b_cores.size == 6
    cpc = int(target.topology.cores_per_chip)
    chip = int(pl.core[np.flatnonzero(pop == 3)[0]] // cpc)  # db's chip
    e = lookup(r, np.full(b_cores.size, chip), r.keys[b_cores])
    assert (e >= 0).all() and np.unique(e).size == 1
    # the ids of b's slices form one aligned block
    ids = r.keys[b_cores] >> np.uint32(8)
    assert int(ids.min()) % 8 == 0 and int(ids.max()) - int(ids.min()) == 5


def test_keys_and_tables_deterministic():
    target = load_target("spinnaker:spinn3")
    net = _net_from([500, 300, 700, 120], [(0, 1), (1, 2), (2, 0), (2, 2), (3, 1)], 3)
    out = []
    for _ in range(2):
        part = partition(net, target, seed=1)
        pl = place(part, target, seed=1)
        r = route(part, pl, target)
        out.append(b"".join(np.ascontiguousarray(a).tobytes() for a in (
            r.keys, r.table_offsets, r.table_key, r.table_mask, r.table_route)))
    assert out[0] == out[1]


def test_compile_report_shows_routing_entries_per_chip():
    # report.json holds entries per chip after merging and before; the printed report
    # has a row with the totals and the largest chip (targets with routing tables only)
    import io

    from rich.console import Console

    from nmcompiler.api import compile as compile_network
    from nmcompiler.report import render_compile_report

    net = _net_from([600, 500, 300], [(0, 1), (1, 2), (2, 0), (1, 1)], 5)
    c = compile_network(net, "spinnaker:spinn3", seed=0)
    rep = c.report["routes"]
    per = rep["routing_entries_per_chip"]
    r = c.routes
    assert sum(per["entries"]) == rep["routing_entries_total"] == int(r.entries_per_chip.sum())
    assert sum(per["uncompressed"]) == rep["routing_entries_uncompressed_total"] \
        == int(r.entries_uncompressed.sum())
    assert max(per["entries"]) == rep["routing_entries_max"]
    assert all(r.entries_per_chip[k] == e for k, e in zip(per["chip"], per["entries"], strict=True))
    buf = io.StringIO()
    render_compile_report(c.report, Console(file=buf, width=200))
    line = next(x for x in buf.getvalue().splitlines() if "routing entries" in x)
    assert f"{rep['routing_entries_total']:,} on" in line
    assert f"before merging {rep['routing_entries_uncompressed_total']:,}" in line
    loihi = compile_network(net, "loihi", seed=0)
    buf = io.StringIO()
    render_compile_report(loihi.report, Console(file=buf, width=200))
    assert "routing entries" not in buf.getvalue()


def walk_packets(r, pl, target, senders_):
    """Follow one packet of every sending core through the compiled tables, chip by chip
    (first matching entry, default routing on a link arrival with no match). Returns
    ``{source core: Counter of physical cores reached}``; fails if a packet enters a chip
    twice (a loop or a duplicate) or leaves the machine."""
    from collections import Counter

    from nmcompiler.passes.route.multicast import route_bits

    cpc = int(target.topology.cores_per_chip)
    neigh = target.noc.neighbours()
    out = {}
    for s in np.unique(np.asarray(senders_, dtype=np.int64)).tolist():
        key = np.uint32(r.keys[s])
        got: Counter = Counter()
        seen: set = set()
        frontier = [(int(pl.core[s]) // cpc, -1)]
        while frontier:
            chip, arrive = frontier.pop()
            assert chip not in seen, f"core {s}: chip {chip} reached twice"
            seen.add(chip)
            e = int(lookup(r, np.array([chip]), np.array([key], dtype=np.uint32))[0])
            if e < 0:
                assert arrive >= 0, f"core {s}: no entry on its own chip {chip}"
                links, procs = [arrive], []
            else:
                bits = route_bits(r, np.array([e]))[0]
                links = np.flatnonzero(bits[:6]).tolist()
                procs = np.flatnonzero(bits[7:7 + cpc]).tolist()
            for p in procs:
                got[chip * cpc + p] += 1
            for d in links:
                nxt = int(neigh[chip, d])
                assert nxt >= 0, f"core {s}: packet leaves the machine at chip {chip}"
                frontier.append((nxt, d))
        out[s] = got
    return out


@pytest.mark.parametrize("name", ["spinnaker", "spinnaker:spinn5x12"])
def test_population_trees_deliver_each_packet_exactly_once_property(name):
    # random networks, populations split over chips: following the compiled tables from
    # every sending core reaches exactly the physical cores holding its targets, each
    # once, and the walk ends (no chip entered twice), with and without shared trees
    from hypothesis import given, settings
    from hypothesis import strategies as st

    target = load_target(name)

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(st.lists(st.integers(30, 1500), min_size=2, max_size=8), st.integers(0, 10**6),
           st.booleans())
    def check(sizes, seed, shared):
        rng = np.random.default_rng(seed)
        k = len(sizes)
        pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, k, (2 * k, 2))})
        net = _net_from(sizes, pairs, seed, p=0.02)
        part = partition(net, target)
        pl = place(part, target)
        r = route(part, pl, target, shared_trees=shared)
        walked = walk_packets(r, pl, target, senders(part))
        want: dict = {}
        for s, c in expected_deliveries(part, pl):
            want.setdefault(s, set()).add(c)
        assert set(walked) == set(want)
        for s, got in walked.items():
            assert set(got) == want[s], s
            assert max(got.values()) == 1, s
        got = set(map(tuple, deliver(r, pl, target, senders(part)).tolist()))
        assert got == expected_deliveries(part, pl)

    check()


def test_population_trees_need_fewer_entries_than_trees_per_core():
    # ten populations of 4 slices each, some split over chips: routing each split
    # population on one tree (re-rooted at each slice's chip) saves entries, in total and
    # on the fullest chip, and still delivers every packet exactly once
    from nmcompiler.passes.route.multicast import core_population, multicast_entries

    target = load_target("spinnaker")
    rng = np.random.default_rng(5)
    k = int(rng.integers(6, 12))
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, k, (3 * k, 2))})
    net = _net_from([1000] * k, pairs, 5, p=0.01)
    part = partition(net, target)
    pl = place(part, target)
    cpc = int(target.topology.cores_per_chip)
    pop = core_population(part)
    split = [q for q in range(k) if np.unique(pl.core[pop == q] // cpc).size > 1]
    assert split  # the case under test
    own = route(part, pl, target, shared_trees=False).entries_per_chip
    r = route(part, pl, target)
    assert r.entries_per_chip.sum() < own.sum()
    assert r.entries_per_chip.max() <= own.max()
    # on one tree, a split population enters every chip outside its own chips over one
    # link with one route there, for at least one split population
    s, v, w, rem, _ = multicast_entries(part, pl, target)
    one_route = []
    for q in split:
        m = (pop[s] == q) & ~np.isin(v, np.unique(pl.core[pop == q] // cpc)) & ~rem
        one_route.append(all(len({tuple(x) for x in w[m & (v == c)]}) == 1
                             for c in np.unique(v[m])))
    assert any(one_route)
    walked = walk_packets(r, pl, target, senders(part))
    assert all(max(g.values()) == 1 for g in walked.values())
    assert {(s_, c) for s_, g in walked.items() for c in g} == expected_deliveries(part, pl)
