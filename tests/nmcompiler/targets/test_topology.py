"""The network-on-chip model (nmcompiler.targets.topology) and the chip families: one
routing model for the compile report and the emulator's run report."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.api import compile as compile_network
from nmcompiler.backends.emulator.costs import CostTables
from nmcompiler.targets import load_target, target_names
from nmcompiler.targets.families import FAMILIES, Family, family_of


@pytest.mark.parametrize("name", target_names())
def test_route_links_carry_the_unicast_link_load(name):
    tgt = load_target(name)
    noc = tgt.noc
    rng = np.random.default_rng(1)
    a = rng.integers(0, tgt.total_cores, 400)
    b = rng.integers(0, tgt.total_cores, 400)
    m = rng.integers(1, 5, 400)
    na, nb = tgt.core_node(a), tgt.core_node(b)
    indptr, li = noc.route_links(na, nb)
    np.testing.assert_array_equal(np.diff(indptr), noc.node_hops(na, nb))
    per_link = np.bincount(li, weights=np.repeat(m, np.diff(indptr)),
                           minlength=tgt.links().shape[0]).astype(np.int64)
    _, load = noc.unicast_link_load(na, nb, m)
    np.testing.assert_array_equal(per_link, load)
    # the hop table is built once and kept on the NoC object
    table = noc.hop_table()
    if table is not None:
        assert noc.hop_table() is table
        np.testing.assert_array_equal(table[na, nb], noc.node_hops(na, nb))
    assert tgt.noc is noc


def _net():
    rng = np.random.default_rng(0)
    net = ir.Network("mc")
    net.input("in", 40)
    net.population("h", 600, ir.LIF(lam=0.9, theta=1.0))
    net.population("o", 300, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0, 0.5, (600, 40))), delay=1)
    net.connect("h", "o", ir.Dense(weight=rng.normal(0, 0.1, (300, 600))), delay=1)
    net.output("o")
    return net


@pytest.mark.parametrize("name", ["spinnaker", "loihi"])
def test_emulator_costs_follow_the_compiled_routes(name):
    cn = compile_network(_net(), name, seed=0)
    part, pl, rt = cn.partition, cn.placement, cn.routes
    tables = CostTables(cn.target, pl.core, part.n_cores)
    tables.attach_pairs(part.edge_src.astype(np.int64), part.edge_dst.astype(np.int64))
    if rt.multicast:
        # one packet per source neuron crosses every link of its core's tree once
        assert tables.core_link is not None
        load = np.asarray(part.core_sources, dtype=np.float64) @ tables.core_link.toarray()
    else:
        assert tables.core_link is None
        load = part.edge_messages.astype(np.float64) @ tables.pair_link.toarray()
    np.testing.assert_array_equal(np.rint(load).astype(np.int64), rt.link_load)


def test_every_bundled_target_has_a_family_and_unknown_names_get_the_generic_rules():
    for name in target_names():
        fam = load_target(name).family
        assert isinstance(fam, Family) and fam is FAMILIES.get(load_target(name).backend, fam)
    assert family_of("no-such-chip") is FAMILIES["emulator"]
    assert FAMILIES["loihi"].spike_compare == ">" and FAMILIES["speck"].number_format == "speck"
    assert FAMILIES["spinnaker"].route_words(load_target("spinnaker2")) == 5
