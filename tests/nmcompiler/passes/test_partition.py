"""Tests of the partition pass: budgets, exact counts, determinism, fit errors."""

from __future__ import annotations

import numpy as np
import pytest
import tomllib

from nmcompiler import ir
from nmcompiler.ir.errors import FitError
from nmcompiler.passes.partition import evaluate_partition, partition, synapse_row_bits
from nmcompiler.targets import load_target, parse_target

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


def variant(name: str, **changes: dict) -> object:
    """A bundled target with some provenance-tagged fields replaced (None removes)."""
    from nmcompiler import hw_configs

    doc = tomllib.loads(hw_configs.path(name).read_text())
    doc["real_chip"] = False
    for section, fields in changes.items():
        for key, value in fields.items():
            if value is None:
                doc[section].pop(key, None)
            else:
                doc[section][key] = {"value": value, "status": "synthetic", "note": "test"}
    return parse_target(doc, label=f"{name}-test")


def random_net(n_pops=3, size=300, p=0.02, seed=0, n_in=20) -> ir.Network:
    rng = np.random.default_rng(seed)
    net = ir.Network("rand")
    net.input("in", n_in)
    for k in range(n_pops):
        net.population(f"p{k}", size, ir.LIF())
    for k in range(n_pops):
        for j in range(n_pops):
            m = rng.random((size, size)) < p
            net.connect(f"p{k}", f"p{j}", ir.Sparse.from_dense(m.astype(float).T))
    m = rng.random((size, n_in)) < 0.2
    net.connect("in", "p0", ir.Sparse.from_dense(m.astype(float)))
    return net


def check_usage_exact(net, target, part):
    """The partition's reported usage equals an independent recount."""
    usage = evaluate_partition(net, target, part.neuron_core)
    assert np.array_equal(usage.used, part.usage.used)
    assert part.usage.fits()


@pytest.mark.parametrize("name", ["loihi", "loihi2", "spinnaker", "emulator"])
@pytest.mark.parametrize("method", ["metis", "sequential"])
def test_budgets_respected_random(name, method):
    target = load_target(name)
    net = random_net(seed=3)
    part = partition(net, target, method=method, seed=1)
    assert part.usage.fits()
    assert part.neuron_core.shape == (net.n_neurons,)
    assert part.n_cores == int(part.neuron_core.max()) + 1
    check_usage_exact(net, target, part)


def test_tight_budgets_force_splits():
    target = variant("loihi", core_budget={"input_axons": 40, "synaptic_memory_words": 60})
    net = random_net(n_pops=2, size=200, p=0.01, seed=4)
    for method in ("metis", "sequential"):
        part = partition(net, target, method=method)
        assert part.usage.fits(), method
        over = part.usage.used / np.maximum(part.usage.limit, 1)
        assert over[:, 1].max() <= 1.0 and over[:, 3].max() <= 1.0
        check_usage_exact(net, target, part)


def test_spinnaker_cores_hold_one_population():
    target = load_target("spinnaker")
    part = partition(random_net(), target)
    for k, pop in enumerate(part.populations):
        others = np.setdiff1d(np.arange(len(part.populations)), [k])
        mine = np.unique(part.cores_of(pop))
        for j in others:
            assert not np.intersect1d(mine, part.cores_of(part.populations[j])).size


def test_exact_counts_hand_built():
    """in(3) -> a(4) and a -> b(2), three cores: a0 a1 | a2 a3 | b0 b1."""
    net = ir.Network("hand")
    net.input("in", 3)
    net.population("a", 4, ir.LIF())
    net.population("b", 2, ir.LIF())
    # in0 -> a0, a1 ; in1 -> a2 ; in2 -> a0, a3
    net.connect("in", "a", ir.Sparse.from_coo(pre=np.array([0, 0, 1, 2, 2]),
                                              post=np.array([0, 1, 2, 0, 3]),
                                              weight=np.ones(5), n_pre=3, n_post=4))
    # a0 -> b0, b1 ; a1 -> b0 ; a2 -> a3 (local) and b1
    net.connect("a", "b", ir.Sparse.from_coo(pre=np.array([0, 0, 1, 2]),
                                             post=np.array([0, 1, 0, 1]),
                                             weight=np.ones(4), n_pre=4, n_post=2))
    net.connect("a", "a", ir.Sparse.from_coo(pre=np.array([2]), post=np.array([3]),
                                             weight=np.ones(1), n_pre=4, n_post=4))
    target = load_target("loihi")
    nc = np.array([0, 0, 1, 1, 2, 2])
    u = evaluate_partition(net, target, nc)
    col = {name: u.column(name) for name in u.names}
    assert col["neurons"].tolist() == [2, 2, 2]
    # core 0: in0, in2 ; core 1: in1, in2, a2 ; core 2: a0, a1, a2
    assert col["input_axons"].tolist() == [2, 3, 3]
    # output axons: a0 -> {2}, a1 -> {2}, a2 -> {1, 2}, a3 -> {}
    assert col["output_axons"].tolist() == [2, 2, 0]
    assert col["destination_cores"].tolist() == [1, 1, 0]
    # rows: core0 (in0: 2 syn, in2: 1) ; core1 (in1, in2, a2: 1 each) ; core2 (a0: 2, a1, a2)
    assert col["synaptic_memory_bits"].tolist() == [128, 192, 192]
    # loihi row bits: ceil64(n * 8 + 10)
    assert synapse_row_bits(np.array([1, 6, 7, 64, 65]), target).tolist() == \
        [64, 64, 128, 576, 640]
    sp_bits = synapse_row_bits(np.array([1, 5]), load_target("spinnaker"))
    assert sp_bits.tolist() == [32 * 4, 32 * 8]


def test_messages_count_source_neuron_and_core():
    net = ir.Network("m")
    net.population("a", 2, ir.LIF())
    net.population("b", 4, ir.LIF())
    net.connect("a", "b", ir.Dense(weight=np.ones((4, 2))))
    target = variant("loihi", core_budget={"neurons": 2})
    part = partition(net, target, method="sequential")
    # a on core 0, b on cores 1 and 2: each a-neuron sends one message to each
    assert part.n_cores == 3
    assert part.messages == 4
    assert part.edge_src.tolist() == [0, 0] and part.edge_dst.tolist() == [1, 2]
    assert part.edge_messages.tolist() == [2, 2]
    assert part.core_sources.tolist() == [2, 0, 0]


def test_determinism():
    target = load_target("loihi")
    net = random_net(seed=7)
    a = partition(net, target, seed=5)
    b = partition(net, target, seed=5)
    assert np.array_equal(a.neuron_core, b.neuron_core)
    assert np.array_equal(a.usage.used, b.usage.used)
    assert np.array_equal(a.edge_messages, b.edge_messages)


def grid_net(side=16) -> ir.Network:
    """A 2-D grid with nearest-neighbour synapses (locality)."""
    n = side * side
    idx = np.arange(n).reshape(side, side)
    pre, post = [], []
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        src = idx[max(0, -dy):side - max(0, dy), max(0, -dx):side - max(0, dx)]
        dst = idx[max(0, dy):side - max(0, -dy) or None, max(0, dx):side - max(0, -dx) or None]
        pre.append(src.ravel())
        post.append(dst.ravel())
    pre, post = np.concatenate(pre), np.concatenate(post)
    net = ir.Network("grid")
    net.population("g", n, ir.LIF())
    net.connect("g", "g", ir.Sparse.from_coo(pre=pre, post=post, weight=np.ones(pre.size),
                                             n_pre=n, n_post=n))
    return net


def test_metis_beats_sequential_on_locality():
    target = variant("loihi", core_budget={"neurons": 64})
    net = grid_net(32)
    seq = partition(net, target, method="sequential")
    met = partition(net, target, method="metis")
    assert met.usage.fits()
    assert met.messages < 0.8 * seq.messages


def _message_ok(err: FitError, *words: str) -> None:
    text = str(err)
    for w in words:
        assert w in text, (w, text)
    assert err.hint and err.need is not None and err.limit is not None


def test_fit_error_input_axons():
    net = ir.Network("fanin")
    net.input("in", 5120)
    net.population("hidden", 10, ir.LIF())
    net.connect("in", "hidden", ir.Dense(weight=np.ones((10, 5120))))
    with pytest.raises(FitError) as e:
        partition(net, load_target("loihi2"))
    _message_ok(e.value, "population 'hidden'", "5120 input axons", "loihi2 allows 4096",
                "fan-in")
    assert e.value.rule == "input_axons" and e.value.need == 5120 and e.value.limit == 4096


def test_fit_error_output_axons_and_memory():
    net = ir.Network("fanout")
    net.population("src", 1, ir.LIF())
    net.population("dst", 40, ir.LIF())
    net.connect("src", "dst", ir.Dense(weight=np.ones((40, 1))))
    t = variant("loihi", core_budget={"neurons": 4, "output_axons": 8})
    with pytest.raises(FitError) as e:
        partition(net, t, method="sequential")
    _message_ok(e.value, "population 'src'", "10 output axons", "allows 8")
    t = variant("loihi", core_budget={"synaptic_memory_words": 2})
    net2 = ir.Network("mem")
    net2.input("in", 200)
    net2.population("h", 3, ir.LIF())
    net2.connect("in", "h", ir.Dense(weight=np.ones((3, 200))))
    with pytest.raises(FitError) as e:
        partition(net2, t)
    _message_ok(e.value, "population 'h'", "bits of synaptic memory", "allows 128")


def test_fit_error_neurons_and_cores():
    net = ir.Network("big")
    net.population("huge", 200_000, ir.LIF())
    with pytest.raises(FitError) as e:
        partition(net, load_target("loihi"))
    _message_ok(e.value, "cores", "loihi has 128", "chips")
    t = variant("loihi", core_budget={"max_destinations": 1, "neurons": 4})
    net2 = ir.Network("dest")
    net2.population("s", 1, ir.LIF())
    net2.population("d", 8, ir.LIF())
    net2.connect("s", "d", ir.Dense(weight=np.ones((8, 1))))
    with pytest.raises(FitError) as e:
        partition(net2, t, method="sequential")
    _message_ok(e.value, "population 's'", "2 destination cores", "allows 1")


def speck_cnn(c1=8, c2=16, size=32) -> ir.Network:
    rng = np.random.default_rng(0)
    net = ir.Network("cnn")
    net.input("in", shape=(2, size, size))
    net.population("conv1", shape=(c1, size // 2, size // 2), model=ir.IF())
    net.connect("in", "conv1", ir.Conv2d(weight=rng.normal(size=(c1, 2, 3, 3)), stride=(2, 2),
                                         padding=(1, 1)))
    net.population("conv2", shape=(c2, size // 4, size // 4), model=ir.IF())
    net.connect("conv1", "conv2", ir.Conv2d(weight=rng.normal(size=(c2, c1, 3, 3)),
                                            stride=(2, 2), padding=(1, 1)))
    net.population("fc", 10, ir.IF())
    net.connect("conv2", "fc", ir.Dense(weight=rng.normal(size=(10, c2 * (size // 4) ** 2))))
    return net


def test_speck_layers():
    target = load_target("speck2f")
    part = partition(speck_cnn(), target)
    assert part.method == "layers" and part.n_cores == 3
    used = {n: part.usage.column(n).tolist() for n in part.usage.names}
    # conv1: kernel 2 * 2**(4 + 3) = 256; neurons 8 * 2**(4 + 4) = 2048
    assert used["kernel_memory_words"][0] == 256
    assert used["neuron_memory_words"][0] == 2048
    # fc: a conv over the 16 x 8 x 8 input: 16 * 2**(6 + 4)
    assert used["kernel_memory_words"][2] == 16 * 2 ** 10
    assert max(used["destination_cores"]) <= 2


def test_speck_layer_too_big():
    # the sinabs docs' example: 16 -> 32 channels, 3x3, 64x64 output: 128 Ki neuron words
    net = ir.Network("big")
    net.input("in", shape=(16, 64, 64))
    net.population("conv", shape=(32, 64, 64), model=ir.IF())
    net.connect("in", "conv", ir.Conv2d(weight=np.ones((32, 16, 3, 3)), padding=(1, 1)))
    with pytest.raises(FitError) as e:
        partition(net, load_target("speck2f"))
    _message_ok(e.value, "layer 'conv'", "131072 words of neuron memory", "65536",
                "stride")


def test_speck_three_destinations():
    net = ir.Network("fan")
    net.input("in", shape=(1, 8, 8))
    for name in ("a", "b", "c", "d"):
        net.population(name, shape=(2, 8, 8), model=ir.IF())
    w = np.ones((2, 1, 3, 3))
    net.connect("in", "a", ir.Conv2d(weight=w, padding=(1, 1)))
    for name in ("b", "c", "d"):
        net.connect("a", name, ir.Conv2d(weight=np.ones((2, 2, 3, 3)), padding=(1, 1)))
    with pytest.raises(FitError) as e:
        partition(net, load_target("speck2f"))
    _message_ok(e.value, "layer 'a'", "3 destination cores", "2")


def test_speck_dense_with_pooled_weights_charged_on_pooled_shape():
    # SumPool(2x2) + Flatten + Dense composed into one Dense (as the NIR importer does):
    # weights constant over 2x2 windows; sinabs pools on the way out of the source layer,
    # so the kernel memory is that of the Dense on the pooled (8, 4, 4) input
    from nmcompiler.passes.partition import dense_pool_factor, speck_layer_memory

    rng = np.random.default_rng(0)
    small = rng.normal(size=(256, 8, 4, 4))
    big = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3).reshape(256, 512)
    assert dense_pool_factor(big, (8, 8, 8)) == 2
    assert speck_layer_memory(ir.Dense(weight=big), (8, 8, 8), (256,)) == 8 * 2 ** (4 + 8)
    # one differing entry: no pooling, charged on the full 8 x 8 map
    other = big.copy()
    other[3, 1] += 1.0
    assert dense_pool_factor(other, (8, 8, 8)) == 1
    assert speck_layer_memory(ir.Dense(weight=other), (8, 8, 8), (256,)) == 8 * 2 ** (6 + 8)
    # 4 x 4 windows on an 8 x 8 map; a pooling size the target does not allow is not used
    quad = np.repeat(np.repeat(rng.normal(size=(10, 2, 2, 2)), 4, 2), 4, 3).reshape(10, 128)
    assert dense_pool_factor(quad, (2, 8, 8)) == 4
    assert dense_pool_factor(quad, (2, 8, 8), sizes=(2,)) == 2
    # in a partition: the layer fits speck2f and the stats name the pooled projection
    net = ir.Network("pooled")
    net.input("in", shape=(2, 16, 16))
    net.population("conv", shape=(8, 8, 8), model=ir.IF())
    net.connect("in", "conv", ir.Conv2d(weight=rng.normal(size=(8, 2, 3, 3)), stride=(2, 2),
                                        padding=(1, 1)))
    net.population("fc", 256, ir.IF())
    net.connect("conv", "fc", ir.Dense(weight=big))
    part = partition(net, load_target("speck2f"))
    assert part.usage.column("kernel_memory_words").tolist()[1] == 32768
    assert part.stats["pooled_dense_projections"] == {"conv->fc": 2}


def test_nir_paper_cnn_fits_speck2f(shared):
    # the NIR paper's CNN ran on Speck: SumPool(2x2) + Flatten + Affine(128 -> 256) is
    # charged on the pooled (8, 4, 4) input: 8 * 2**(4 + 8) = 32768 kernel words
    pytest.importorskip("nir")
    from nmcompiler.api import compile as nmc_compile
    from nmcompiler.api import load_model

    net, _ = load_model(shared / "interop" / "nir_paper_cnn" / "cnn_sinabs.nir",
                        preset="sinabs")
    c = nmc_compile(net, "speck2f")
    part = c.partition
    kernel = dict(zip(part.populations, part.usage.column("kernel_memory_words").tolist(),
                      strict=True))
    assert kernel["10"] == 32768
    assert part.stats["pooled_dense_projections"] == {"6->10": 2}
    assert part.n_cores == 5


@pytest.mark.parametrize("target_name", ["loihi2:halapoint", "spinnaker"])
def test_public_scipy_route_gives_the_same_partition(monkeypatch, target_name):
    # partition calls scipy's private sparse kernels for speed; without them (another
    # scipy) the public route must give the very same partition
    import nmcompiler.passes.partition.usage as P

    net = random_net(n_pops=4, size=2000, p=0.01, seed=3)
    target = load_target(target_name)
    fast = partition(net, target, seed=1)
    monkeypatch.setattr(P, "USE_SPARSETOOLS", False)
    slow = partition(net, target, seed=1)
    for f in ("neuron_core", "edge_src", "edge_dst", "edge_messages", "core_sources"):
        np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f), err_msg=f)


@pytest.mark.parametrize("private", [True, False])
def test_core_graph_counting_paths_agree(monkeypatch, private):
    # the large-graph path (two counting sorts) equals the dense bincount path
    import nmcompiler.passes.partition.usage as P

    monkeypatch.setattr(P, "USE_SPARSETOOLS", private)
    rng = np.random.default_rng(0)
    n = 300
    rows = rng.integers(0, n, 20_000)
    cols = rng.integers(0, n, 20_000)
    dense = P.build_core_graph(rows, cols, n)
    big = P._sorted_pairs_csr(rows, cols, n)
    big.sum_duplicates()
    assert dense.has_canonical_format and big.has_canonical_format
    np.testing.assert_array_equal(dense.indptr, big.indptr)
    np.testing.assert_array_equal(dense.indices, big.indices)
    np.testing.assert_array_equal(dense.data, big.data)
    want = np.zeros((n, n), dtype=np.int64)
    np.add.at(want, (rows, cols), 1)
    np.testing.assert_array_equal(big.toarray(), want)


def test_local_sources_count_neurons_with_synapses_on_their_own_core():
    # local_sources[c]: neurons of core c with a synapse on c (SpiNNaker routes their
    # packets back through the router); they sum to local_messages
    rng = np.random.default_rng(0)
    net = ir.Network("local")
    net.population("a", 600, ir.LIF(lam=0.9))
    net.population("b", 300, ir.LIF(lam=0.9))
    pre, post = rng.integers(0, 600, 2000), rng.integers(0, 600, 2000)
    net.connect("a", "a", ir.Sparse.from_coo(pre=pre, post=post, weight=np.ones(2000),
                                             n_pre=600, n_post=600))
    net.connect("a", "b", ir.Sparse.from_coo(pre=pre, post=post % 300, weight=np.ones(2000),
                                             n_pre=600, n_post=300))
    part = partition(net, load_target("spinnaker:spinn3"), method="sequential")
    nc = part.neuron_core
    want = np.zeros(part.n_cores, dtype=np.int64)
    for c in range(part.n_cores):
        mine = np.flatnonzero(nc[:600] == c)  # a's neurons on core c
        local = np.isin(pre, mine) & (nc[post] == c)
        want[c] = np.unique(pre[local]).size
    assert np.array_equal(part.local_sources, want)
    assert int(part.local_sources.sum()) == part.local_messages
    assert part.local_sources[nc[600:]].sum() == 0  # b sends nothing
