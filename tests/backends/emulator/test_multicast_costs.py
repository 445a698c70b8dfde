"""The emulator's multicast link traffic follows the compiled SpiNNaker routing tables,
also where the route pass routes a population's slices on one shared tree
(docs/spinnaker_backend.md)."""

from __future__ import annotations

import numpy as np

import nmcompiler
from nmcompiler import ir
from nmcompiler.backends.emulator import EmulatorBackend
from nmcompiler.compiled import load_compiled
from nmcompiler.passes.route import lookup, route_bits


def _net(seed: int = 0) -> ir.Network:
    # populations of 4 slices each, some split over chips (the shared trees' case)
    rng = np.random.default_rng(seed)
    k = int(rng.integers(6, 12))
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, k, (3 * k, 2))})
    net = ir.Network("multicast")
    for i in range(k):
        net.population(f"p{i}", 1000, ir.LIF(lam=0.9))
    for a, b in pairs:
        pre, post = np.nonzero(rng.random((1000, 1000)) < 0.01)
        net.connect(f"p{a}", f"p{b}", ir.Sparse.from_coo(
            pre=pre, post=post, weight=np.full(pre.size, 0.5), n_pre=1000, n_post=1000))
    return net


def _table_links(cn, s: int) -> set[int]:
    """Links a packet of logical core ``s`` crosses following the compiled tables."""
    r, target = cn.routes, cn.target
    cpc = int(target.topology.cores_per_chip)
    neigh = target.noc.neighbours()
    _, lkey, n = target.noc.link_keys()
    out, frontier, seen = set(), [(int(cn.placement.core[s]) // cpc, -1)], set()
    while frontier:
        chip, arrive = frontier.pop()
        assert chip not in seen
        seen.add(chip)
        e = int(lookup(r, np.array([chip]), np.array([r.keys[s]], dtype=np.uint32))[0])
        links = [arrive] if e < 0 else np.flatnonzero(route_bits(r, np.array([e]))[0][:6])
        for d in links:
            nxt = int(neigh[chip, int(d)])
            out.add(int(np.searchsorted(lkey, chip * n + nxt)))
            frontier.append((nxt, int(d)))
    return out


def test_emulator_link_traffic_follows_compiled_trees(tmp_path):
    cn = nmcompiler.compile(_net(), "spinnaker", seed=0)
    assert cn.routes.tree_root is not None  # some population on one shared tree
    for compiled in (cn, load_compiled(EmulatorBackend().lower(cn, tmp_path / "b"))):
        assert np.array_equal(compiled.routes.tree_root, cn.routes.tree_root)
        eng = EmulatorBackend().engine(compiled)
        core_link = eng.costs.core_link.tocsr()
        senders = np.unique(cn.routes.pair_src)
        assert senders.size
        for s in senders.tolist():
            row = core_link.indices[core_link.indptr[s]:core_link.indptr[s + 1]]
            assert set(row.tolist()) == _table_links(cn, s), s
