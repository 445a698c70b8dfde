"""Tests of the place pass: validity, determinism, CP-SAT optimality, heuristic gap, Speck."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir.errors import FitError
from nmcompiler.mapping import CoreUsage, Partition
from nmcompiler.passes.partition import partition
from nmcompiler.passes.place import place, placement_cost
from nmcompiler.targets import load_target


def core_graph_partition(n_cores: int, seed: int, density: float = 0.5) -> Partition:
    """A partition given directly by its core graph (random symmetric message counts)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 20, (n_cores, n_cores)) * (rng.random((n_cores, n_cores)) < density)
    np.fill_diagonal(w, 0)
    src, dst = np.nonzero(w)
    used = np.ones((n_cores, 1), dtype=np.int64)
    return Partition(
        target="t", populations=("p",), pop_offsets=np.array([0, n_cores]),
        neuron_core=np.arange(n_cores, dtype=np.int32), n_cores=n_cores,
        usage=CoreUsage(names=("neurons",), used=used, limit=-np.ones_like(used)),
        edge_src=src.astype(np.int32), edge_dst=dst.astype(np.int32),
        edge_messages=w[src, dst].astype(np.int64), core_sources=np.ones(n_cores, np.int64),
        input_messages=np.zeros(n_cores, np.int64), messages=int(w.sum()), local_messages=0,
        method="test", seed=0)


def brute_force(part: Partition, target, n_slots: int) -> int:
    """Optimal cost over all injective maps into the first ``n_slots`` physical cores."""
    from itertools import permutations

    best = None
    for perm in permutations(range(n_slots), part.n_cores):
        c = placement_cost(part, target, np.array(perm))
        best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("name", ["loihi", "spinnaker:spinn3", "emulator"])
def test_valid_and_deterministic(name):
    target = load_target(name)
    part = core_graph_partition(20, seed=1, density=0.3)
    a = place(part, target, seed=3)
    b = place(part, target, seed=3)
    assert np.array_equal(a.core, b.core)
    assert np.unique(a.core).size == part.n_cores
    assert a.core.min() >= 0 and a.core.max() < target.total_cores
    assert a.cost == placement_cost(part, target, a.core)
    for m in ("sequential", "random"):
        base = place(part, target, method=m, seed=3)
        assert np.unique(base.core).size == part.n_cores
        assert a.cost <= base.cost


def test_cpsat_optimal_on_tiny_instance():
    """5 cores on a SpiNN-3 board: CP-SAT proves its answer optimal (bound == cost)."""
    target = load_target("spinnaker:spinn3")
    part = core_graph_partition(5, seed=2, density=0.8)
    res = place(part, target, method="cpsat", seed=0, time_limit_s=5)
    assert res.optimal
    assert res.lower_bound is not None and res.lower_bound == pytest.approx(res.cost)


def test_cpsat_matches_brute_force_and_heuristic_gap():
    import tomllib

    from nmcompiler import hw_configs
    from nmcompiler.targets import parse_target

    doc = tomllib.loads(hw_configs.path("loihi").read_text())
    doc["real_chip"] = False
    doc["topology"]["node_grid"] = {"value": [3, 2], "status": "synthetic", "note": "t"}
    doc["topology"]["cores_per_node"] = {"value": 1, "status": "synthetic", "note": "t"}
    doc["topology"]["cores_per_chip"] = {"value": 6, "status": "synthetic", "note": "t"}
    target = parse_target(doc, label="tiny-mesh")
    gaps = []
    for seed in range(3):
        part = core_graph_partition(5, seed=seed, density=0.7)
        opt = brute_force(part, target, 6)
        exact = place(part, target, method="cpsat", time_limit_s=5)
        assert exact.optimal and exact.cost == opt
        heur = place(part, target, method="heuristic", seed=seed)
        gaps.append(heur.cost / opt - 1)
    assert max(gaps) <= 0.25, gaps  # measured: 0 on these instances


def test_auto_uses_cpsat_on_small():
    target = load_target("loihi")
    part = core_graph_partition(6, seed=4)
    res = place(part, target, method="auto", time_limit_s=5)
    assert res.method == "cpsat"
    assert res.cost <= place(part, target, method="heuristic").cost


def test_heuristic_beats_baselines_on_partitioned_grid():
    side = 40
    n = side * side
    idx = np.arange(n).reshape(side, side)
    pre = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    post = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    net = ir.Network("grid")
    net.population("g", n, ir.LIF())
    net.connect("g", "g", ir.Sparse.from_coo(pre=np.concatenate([pre, post]),
                                             post=np.concatenate([post, pre]),
                                             weight=np.ones(2 * pre.size), n_pre=n, n_post=n))
    target = load_target("spinnaker")
    part = partition(net, target)
    h = place(part, target)
    r = place(part, target, method="random")
    assert h.cost < 0.5 * r.cost


def test_speck_matching_and_errors():
    target = load_target("speck2f")
    net = ir.Network("cnn")
    net.input("in", shape=(2, 32, 32))
    net.population("c1", shape=(16, 32, 32), model=ir.IF())  # neuron 16 * 2**10 = 16 Ki
    net.connect("in", "c1", ir.Conv2d(weight=np.ones((16, 2, 3, 3)), padding=(1, 1)))
    net.population("c2", shape=(64, 16, 16), model=ir.IF())  # neuron 64 Ki: cores 0-2
    net.connect("c1", "c2", ir.Conv2d(weight=np.ones((64, 16, 3, 3)), stride=(2, 2),
                                      padding=(1, 1)))
    part = partition(net, target)
    pl = place(part, target)
    assert pl.method == "matching"
    assert pl.core[1] in (0, 1, 2)
    assert np.unique(pl.core).size == 2
    # four layers that each need a 64 Ki-neuron core: only three exist
    net2 = ir.Network("too-many")
    net2.input("in", shape=(1, 32, 32))
    prev = "in"
    for k in range(4):
        net2.population(f"l{k}", shape=(64, 32, 32), model=ir.IF())
        c_in = 1 if k == 0 else 64
        net2.connect(prev, f"l{k}", ir.Conv2d(weight=np.ones((64, c_in, 1, 1))))
        prev = f"l{k}"
    part2 = partition(net2, target)
    with pytest.raises(FitError) as e:
        place(part2, target)
    assert "layer 'l" in str(e.value) and e.value.hint


def _one_router_target(tmp_path, cores: int = 400):
    """SpiNNaker 2's file with one chip of ``cores`` cores on its single router."""
    import re

    from nmcompiler import hw_configs

    txt = hw_configs.path("spinnaker2").read_text()
    txt = txt[:txt.index("[variants.")]
    txt = re.sub(r"cores_per_node = \{ value = 150", f"cores_per_node = {{ value = {cores}", txt)
    txt = re.sub(r"cores_per_chip = \{ value = 150", f"cores_per_chip = {{ value = {cores}", txt)
    txt = re.sub(r"neurons = \{ value = 256", "neurons = { value = 2", txt)
    path = tmp_path / "one_router.toml"
    path.write_text(txt)
    return path


def test_single_router_target_no_index_error(tmp_path):
    # regression: on a target with one router (one SpiNNaker 2 chip) the local search drew
    # a neighbouring router from an empty link list: "IndexError: index -1 is out of
    # bounds for axis 0 with size 0" (reached once cores x region exceeded the
    # exhaustive-search size); one router means every placement costs 0
    from nmcompiler.api import compile as nmc_compile

    rng = np.random.default_rng(0)
    net = ir.Network("s")
    net.input("in", 20)
    net.population("h", 300, ir.LIF())
    net.population("o", 10, ir.LIF())
    net.connect("in", "h", ir.Dense(weight=rng.normal(size=(300, 20))))
    m = 3000
    net.connect("h", "h", ir.Sparse.from_coo(
        pre=rng.integers(0, 300, m), post=rng.integers(0, 300, m),
        weight=rng.normal(size=m) * 0.1, n_pre=300, n_post=300), delay=1)
    net.connect("h", "o", ir.Dense(weight=rng.normal(size=(10, 300))))
    net.output("o")

    for target in (str(_one_router_target(tmp_path)), "spinnaker2"):
        tgt = load_target(target)
        c = nmc_compile(net, target)  # up to 400 cores on one chip: wide route words
        assert c.report["summary"]["traffic_x_hops"] == 0
        assert np.unique(c.placement.core).size == c.partition.n_cores
        part = c.partition
        for method in ("auto", "heuristic", "sequential", "random"):
            pl = place(part, tgt, method=method)
            assert np.unique(pl.core).size == part.n_cores
    # the local search itself, forced onto the sampled (non-exhaustive) path
    t = load_target(str(_one_router_target(tmp_path)))
    part = core_graph_partition(300, seed=2, density=0.05)
    from nmcompiler.passes.place.geometry import Geometry, symmetric_graph
    from nmcompiler.passes.place.heuristic import local_search

    geo = Geometry(t)
    g = symmetric_graph(part)
    pos = local_search(geo, g, np.arange(300), np.random.default_rng(0), 100_000, 0.1,
                        part, {})
    assert np.unique(pos).size == 300
