"""Per-core and per-link counters of a compiled multi-core network against a
straightforward reference (docs/emulator.md, "Counters and costs").

The network is compiled for a small multi-chip copy of ``loihi2`` (a mesh: unicast
x-then-y routes) and of ``spinnaker`` (a triangular torus: one multicast tree per source
core), then run by the emulator backend with its counters on. The reference recomputes,
from the recorded spikes alone, every firing neuron's messages: on the mesh one message per
(neuron, destination core on another core), walked hop by hop along x, then along y, from
the placed routers' coordinates; on SpiNNaker one packet per spike over every link of its
core's tree, found by following the compiled routing tables chip by chip.
A wrong source -> link incidence (the engine reads link loads from aggregated legs and
trees, not from walked routes) changes the per-link numbers. For one "spike round" (every
neuron fires once) the run's link loads must equal the compile report's.
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_nets import target_file

from nmcompiler import ir
from nmcompiler.api import compile as compile_network
from nmcompiler.backends.emulator import EmulatorBackend, counting
from nmcompiler.backends.emulator.counting import link_totals


def _net(seed: int) -> tuple[ir.Network, dict]:
    rng = np.random.default_rng(seed)
    net = ir.Network(f"routes{seed}")
    net.input("in", 6)
    n1, n2 = 40, 30
    net.population("a", n1, ir.IF(theta=2.5, bias=0.0))
    net.population("b", n2, ir.IF(theta=3.5, bias=0.0))
    net.connect("in", "a", ir.Dense(weight=rng.integers(0, 3, (n1, 6)).astype(float)),
                delay=1)
    for pre, post, m, k in (("a", "b", n1, n2), ("b", "a", n2, n1), ("a", "a", n1, n1)):
        w = np.where(rng.random((k, m)) < 0.25, rng.integers(1, 3, (k, m)), 0).astype(float)
        net.connect(pre, post, ir.Sparse.from_dense(w), delay=1)
    net.output("a")
    net.output("b")
    x = (rng.random((30, 6)) < 0.5).astype(float)
    return ir.verify(net), {"in": x}


def _mesh_route(noc, a: int, b: int) -> list[tuple[int, int]]:
    """Router pairs of the x-then-y route from router a to router b (no wrap)."""
    xy = noc.node_coords()
    at = {(int(x), int(y)): i for i, (x, y) in enumerate(xy)}
    (x, y), (x1, y1) = xy[a], xy[b]
    out, cur = [], a
    while x != x1:
        x += 1 if x1 > x else -1
        nxt = at[(int(x), int(y))]
        out.append((cur, nxt))
        cur = nxt
    while y != y1:
        y += 1 if y1 > y else -1
        nxt = at[(int(x), int(y))]
        out.append((cur, nxt))
        cur = nxt
    return out


def _walked_links(cn, home: int) -> set[tuple[int, int]]:
    """Links one packet of core ``home`` crosses, following the compiled routing tables
    chip by chip (first matching entry; default routing straight on where no entry
    matches): the trees the route pass chose, shared per population or per core."""
    from nmcompiler.passes.route import lookup
    from nmcompiler.passes.route.multicast import route_bits

    r, tgt = cn.routes, cn.target
    cpc = int(tgt.topology.cores_per_chip)
    neigh = tgt.noc.neighbours()
    key = np.uint32(r.keys[home])
    links: set[tuple[int, int]] = set()
    frontier = [(int(cn.placement.core[home]) // cpc, -1)]
    while frontier:
        chip, arrive = frontier.pop()
        e = int(lookup(r, np.array([chip]), np.array([key], dtype=np.uint32))[0])
        out = [arrive] if e < 0 else np.flatnonzero(route_bits(r, np.array([e]))[0][:6])
        for d in out:
            nxt = int(neigh[chip, int(d)])
            links.add((chip, nxt))
            frontier.append((nxt, int(d)))
    return links


def _synapses(net, offs) -> dict[int, list[int]]:
    """Post global ids of every neuron source's synapses."""
    from nmcompiler.ir.expand import projection_coo

    syn: dict[int, list[int]] = {}
    for proj in net.projections.values():
        if proj.pre not in net.populations:
            continue
        pre, post, _, _ = projection_coo(proj.conn, net.shape_of(proj.pre), keep_zeros=False)
        for i, j in zip(pre + offs[proj.pre], post + offs[proj.post], strict=True):
            syn.setdefault(int(i), []).append(int(j))
    return syn


def _reference(cn, res, inputs):
    """Per step: messages per source core, sops per core, link hops (dense, by hand)."""
    net, part, tgt = cn.network, cn.partition, cn.target
    noc = tgt.noc
    node = np.asarray(tgt.core_node(cn.placement.core), dtype=np.int64)
    link_index = {(int(a), int(b)): k for k, (a, b) in enumerate(tgt.links())}
    offs, k = {}, 0
    for name in net.populations:
        offs[name] = k
        k += net.size_of(name)
    core = np.asarray(part.neuron_core, dtype=np.int64)
    syn = _synapses(net, offs)
    steps = inputs["in"].shape[0]
    c, n_links = part.n_cores, len(link_index)
    messages = np.zeros((steps, c))
    sops = np.zeros((steps, c))
    hops = np.zeros((steps, n_links))
    # a core's multicast tree: the destination chips of all its neurons
    core_dests: dict[int, set[int]] = {}
    for i, posts in syn.items():
        for j in posts:
            if core[j] != core[i]:
                core_dests.setdefault(int(core[i]), set()).add(int(node[core[j]]))
    walked: dict[int, set[tuple[int, int]]] = {}
    for t in range(steps):
        for name in net.populations:
            fired = np.flatnonzero(res.probes[f"{name}.spikes"][t, 0])
            for i in fired + offs[name]:
                home = int(core[i])
                dest = {int(core[j]) for j in syn.get(int(i), [])}
                for j in syn.get(int(i), []):
                    sops[t, core[j]] += 1
                remote = sorted(d for d in dest if d != home)
                messages[t, home] += len(remote)
                if noc.multicast_tables:
                    if home not in walked:
                        walked[home] = (_walked_links(cn, home) if home in core_dests
                                        else set())
                    for ln in walked[home]:
                        hops[t, link_index[ln]] += 1
                else:
                    for d in remote:
                        for ln in _mesh_route(noc, int(node[home]), int(node[d])):
                            hops[t, link_index[ln]] += 1
    return messages, sops, hops


@pytest.mark.parametrize("base,chunk", [("loihi2", None), ("spinnaker", None),
                                        ("loihi2", 5), ("spinnaker", 5)])
def test_compiled_counters_and_link_hops_follow_the_routes(base, chunk, tmp_path,
                                                           monkeypatch):
    """``chunk``: the engine's per-entry work (own-core entries, route costs, link legs)
    done a few entries at a time, as on a network of 1e8 synapses; its run-end link
    totals then walk the x and y legs on two threads, and the ``pack`` split of the
    accumulator runs in two halves."""
    if chunk is not None:
        monkeypatch.setattr(counting, "CHUNK", chunk)
        monkeypatch.setattr(counting.Counting, "UNPACK_SPLIT_ROWS", 1)
        monkeypatch.setenv("NMC_THREADS", "2")
    net, x = _net(1)
    # few neurons per core and (loihi2) several chips, so that routes cross many links
    path = target_file(tmp_path, f"small_{base}", 8, base=base)
    text = path.read_text()
    if base == "loihi2":
        text = text.replace('chip_grid = { value = [1, 1]', 'chip_grid = { value = [2, 1]', 1)
        text = text.replace('chips_per_system = { value = 1,', 'chips_per_system = { value = 2,',
                            1)
    else:  # two application cores per chip: the cores spread over many chips
        for key in ("cores_per_node", "cores_per_chip"):
            text = text.replace(f"{key} = {{ value = 16,", f"{key} = {{ value = 2,", 1)
    path.write_text(text)
    cn = compile_network(net, path, seed=0)
    assert cn.partition.n_cores > 4 and cn.routes.link_load.sum() > 0
    steps = x["in"].shape[0]
    probes = tuple(f"{p}.spikes" for p in net.populations)
    backend = EmulatorBackend()
    res = backend.run(cn, x, steps, probes=probes)
    assert res.info["counters_per_step"] and res.info["link_hops_per_step"]
    messages, sops, hops = _reference(cn, res, x)
    assert hops.sum() > 0
    np.testing.assert_array_equal(res.counters.messages, messages)
    # sops: the input's synapses land on cores too
    assert (res.counters.sops >= sops).all() and res.counters.sops.sum() > sops.sum()
    np.testing.assert_array_equal(res.counters.link_hops, hops)

    # run totals only (beyond the counter budget): link totals from legs / trees
    from nmcompiler.backends.emulator.engine import Engine

    monkeypatch.setattr(Engine, "COUNTER_BYTES", 0)
    tot = backend.run(cn, x, steps, probes=probes)
    assert tot.info["link_hops_per_step"] is False
    np.testing.assert_array_equal(tot.counters.link_hops[0], hops.sum(axis=0))

    # one spike round: every neuron that sends fires once -> the compile report's loads
    eng = backend.engine(cn)
    fires = np.zeros(eng.n_src)
    fires[:eng.N] = (eng.sops_per_src[:eng.N] > 0)
    np.testing.assert_array_equal(link_totals(eng, fires)[0], cn.routes.link_load)
