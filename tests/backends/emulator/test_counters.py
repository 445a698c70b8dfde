"""Counters and the cost model of the emulator, against hand-derived numbers.

The network: one input channel -> population A (2 IF neurons, logical core 0) -> population
B (3 silent neurons: B0, B1 on logical core 1, B2 on core 0). On the ``emulator`` target
logical core 0 sits on physical core 0 (router (0, 0)) and core 1 on physical core 12
(router (3, 0)): 3 hops along x. One input spike at step 0 makes both A neurons fire at
step 1 (delay 1).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from emu_nets import placement

from nmcompiler import ir
from nmcompiler.backends.emulator import EmulatorBackend, emulate
from nmcompiler.backends.emulator.costs import route_links
from nmcompiler.compiled import CompiledNetwork, load_compiled
from nmcompiler.targets import load_target, target_names


def _net():
    net = ir.Network("count")
    net.input("in", 1)
    net.population("A", 2, ir.IF(theta=0.5))
    net.population("B", 3, ir.IF(theta=100.0))
    net.connect("in", "A", ir.Dense(weight=np.ones((2, 1))), delay=1)
    net.connect("A", "B", ir.Dense(weight=np.ones((3, 2))), delay=1)
    net.output("A")
    return net


def _mapping(tgt):
    part = SimpleNamespace(populations=("A", "B"), n_cores=2,
                           neuron_core=np.array([0, 0, 1, 1, 0], dtype=np.int32))
    pl = placement(tgt, 2, 0)
    pl = type(pl)(**{**{f: getattr(pl, f) for f in pl.__slots__},
                     "core": np.array([0, 12]), "coords": tgt.core_coords()[[0, 12]]})
    return part, pl


def test_hand_derived_counts_time_and_energy(emulator_target):
    tgt = emulator_target
    part, pl = _mapping(tgt)
    x = np.zeros((3, 1))
    x[0, 0] = 1
    r = emulate(_net(), {"in": x}, target=tgt, partition=part, placement=pl)
    c = r.counters
    np.testing.assert_array_equal(r.outputs["A"][:, 0], [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_array_equal(c.sops, [[2, 0], [2, 4], [0, 0]])
    np.testing.assert_array_equal(c.neuron_updates, [[3, 2]] * 3)
    np.testing.assert_array_equal(c.spikes_sent, [[0, 0], [2, 0], [0, 0]])
    np.testing.assert_array_equal(c.messages, [[0, 0], [2, 0], [0, 0]])
    assert r.info["local_deliveries"] == 2  # A -> B2 at t=1
    assert r.info["input_messages"] == 1  # the host's input spike into core 0
    links = tgt.links()
    used = np.flatnonzero(c.link_hops[1])
    assert c.link_hops[1, used].tolist() == [2, 2, 2]
    xy = tgt.node_coords()
    path = {tuple(xy[a]) + tuple(xy[b]) for a, b in links[used]}
    assert path == {(0, 0, 1, 0), (1, 0, 2, 0), (2, 0, 3, 0)}
    k = tgt.cost
    compute = max(2 * k.time_per_synop_s + 3 * k.time_per_neuron_update_s,
                  4 * k.time_per_synop_s + 2 * k.time_per_neuron_update_s)
    step1 = compute + 3 * k.time_per_hop_s + k.barrier_time_s
    assert c.step_time_s[1] == pytest.approx(step1)
    step0 = 2 * k.time_per_synop_s + 3 * k.time_per_neuron_update_s + k.barrier_time_s
    assert c.step_time_s[0] == pytest.approx(step0)
    e1 = (6 * k.energy_per_synop_j + 5 * k.energy_per_neuron_update_j
          + 6 * k.energy_per_hop_j + 2 * k.energy_per_spike_local_j
          + k.static_power_w * 1 * step1)
    assert c.step_energy_j[1] == pytest.approx(e1)
    assert c.energy_j["total"] == pytest.approx(c.step_energy_j.sum())
    assert c.energy_j["synaptic"] == pytest.approx(8 * k.energy_per_synop_j)


@pytest.mark.parametrize("name", target_names())
def test_routes_have_the_targets_hop_counts(name):
    tgt = load_target(name)
    rng = np.random.default_rng(0)
    a = rng.integers(0, tgt.total_cores, 300)
    b = rng.integers(0, tgt.total_cores, 300)
    na, nb = tgt.core_node(a), tgt.core_node(b)
    indptr, li = route_links(tgt, na, nb)
    np.testing.assert_array_equal(np.diff(indptr), tgt.hops(a, b))
    assert (li >= 0).all()
    links = tgt.links()
    # every route is a connected walk from a's router to b's router
    for k in range(0, 300, 37):
        walk = links[li[indptr[k]:indptr[k + 1]]]
        if walk.size:
            assert walk[0, 0] == na[k] and walk[-1, 1] == nb[k]
            assert (walk[1:, 0] == walk[:-1, 1]).all()


def test_backend_runs_a_compiled_network_and_its_artifact(tmp_path, emulator_target):
    tgt = emulator_target
    from nmcompiler.passes.partition import partition

    net = _net()
    part = partition(net, tgt, seed=0)
    pl = placement(tgt, part.n_cores, 0)
    cn = CompiledNetwork(network=net, target=tgt, target_toml=open(tgt.path).read(),
                         partition=part, placement=pl, routes=None)
    be = EmulatorBackend()
    assert be.available() is None and "loihi" in be.families
    x = np.zeros((4, 1))
    x[0, 0] = 1
    r1 = be.run(cn, {"in": x}, 4)
    path = be.lower(cn, tmp_path / "build")
    assert path.exists()
    r2 = be.run(path, {"in": x}, 4)
    np.testing.assert_array_equal(r1.outputs["A"], r2.outputs["A"])
    assert r1.counters.sops.sum() == 2 + 6
    assert load_compiled(path).network.name == "count"
