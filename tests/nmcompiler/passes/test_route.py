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
    got = set(map(tuple, deliver(r, pl, target).tolist()))
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
    got = set(map(tuple, deliver(merged, pl, small).tolist()))
    assert got == expected_deliveries(part, pl)
    r = route(part, pl, small, merge_all=False)
    assert r.entries_per_chip.max() <= limit
    # compressed only as far as needed: the fullest chip ends close to the limit
    assert r.entries_per_chip.max() >= limit - 8
    assert np.array_equal(r.entries_uncompressed, full.entries_uncompressed)
    got = set(map(tuple, deliver(r, pl, small).tolist()))
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
    got = set(map(tuple, deliver(r, pl, target).tolist()))
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
    got = set(map(tuple, deliver(r, pl, small).tolist()))
    assert got == expected_deliveries(part, pl)
