"""Fidelity contract of the emulator (docs/architecture.md#fidelity).

1. Mapping invariance: over seeded random recurrent networks (delays, per-synapse delays,
   zero-delay chains, every reset mode, graded spikes, refractory periods) the spikes and
   the u / v states are bit-identical whatever the partition (sequential, METIS with
   several seeds, tiny per-core budgets forcing many cores) and placement, and identical
   to the same network on one unbounded core.
2. Exactness: where quantisation is exact, the emulator gives the reference simulator's
   (ir.simulate) spikes: the generic target always (same float64 operations), Loihi
   arithmetic on networks in Lava units with exact decays (du = 4095, dv = 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_nets import placement, random_network, target_file

from nmcompiler import ir
from nmcompiler.backends.emulator import emulate, engine_for
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target

SEEDS = list(range(8))


def _same(r1, r2) -> None:
    assert r1.outputs.keys() == r2.outputs.keys()
    for k in r1.outputs:
        np.testing.assert_array_equal(r1.outputs[k], r2.outputs[k], err_msg=k)
    assert r1.probes.keys() == r2.probes.keys()
    for k in r1.probes:
        np.testing.assert_array_equal(r1.probes[k], r2.probes[k], err_msg=k)


@pytest.mark.parametrize("seed", SEEDS)
def test_mapping_invariance(seed, tmp_path):
    net, x = random_network(seed)
    tiny = load_target(target_file(tmp_path, "tiny", 7))
    huge = load_target(target_file(tmp_path, "huge", 10**9))
    base = emulate(net, x, target=huge)
    assert base.info["n_cores"] == 1
    runs = 0
    for tgt in (tiny, load_target("emulator")):
        for method, pseed in (("sequential", 0), ("metis", seed), ("metis", seed + 100)):
            part = partition(net, tgt, seed=pseed, method=method)
            if tgt is tiny:
                assert part.n_cores >= 3
            for pl_seed in (0, seed + 1):
                pl = placement(tgt, part.n_cores, pl_seed)
                res = emulate(net, x, target=tgt, partition=part, placement=pl)
                _same(res, base)
                # work is the same, only where it happens differs
                assert res.counters.sops.sum() == base.counters.sops.sum()
                assert res.counters.spikes_sent.sum() == base.counters.spikes_sent.sum()
                runs += 1
    assert runs == 12


@pytest.mark.parametrize("seed", SEEDS)
def test_generic_equals_reference(seed):
    net, x = random_network(seed)
    ref = ir.simulate(net, x)
    res = emulate(net, x)
    for k in ref.outputs:
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)
    for k in ref.probes:
        np.testing.assert_array_equal(res.probes[k], ref.probes[k], err_msg=k)


def test_generic_equals_reference_batched_and_noisy():
    net, x = random_network(3)
    pops = dict(net.populations)
    p0 = pops["p0"]
    import dataclasses

    pops["p0"] = ir.Population(name="p0", shape=p0.shape,
                               model=dataclasses.replace(p0.model, noise=0.7, seed=5))
    net = net.replace(populations=pops)
    rng = np.random.default_rng(1)
    xb = {"in": (rng.random((30, 3, x["in"].shape[1])) < 0.4).astype(float)}
    ref = ir.simulate(net, xb)
    res = emulate(net, xb)
    for k in ref.outputs:
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)


def test_generic_fractional_input_payloads_equal_reference():
    # integer weights with fractional graded inputs: the sums must not be taken in
    # float32 (exact only for integers), or v drifts from the float64 reference by ~1e-5
    # (float64 sums in another order differ by ~1e-12: allowed, these sums are not exact)
    rng = np.random.default_rng(7)
    net = ir.Network("frac")
    net.input("in", 40)
    net.population("h", 50, ir.LIF(lam=0.93, theta=37.3))
    net.connect("in", "h", ir.Dense(weight=rng.integers(-900, 900, (50, 40)).astype(float)))
    net.output("h")
    net.probe("h", "v")
    x = {"in": np.where(rng.random((40, 40)) < 0.3, rng.random((40, 40)) * 0.37, 0.0)}
    ref = ir.simulate(net, x)
    res = emulate(net, x)
    np.testing.assert_allclose(res.probes["h.v"], ref.probes["h.v"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.outputs["h"], ref.outputs["h"])


def _loihi_units_network(seed: int):
    """A recurrent LIF network already in Lava's units with exact decays."""
    rng = np.random.default_rng(seed)
    net = ir.Network("lu")
    net.input("in", 6)
    net.population("h", 30, ir.LIF(alpha_u=0.0, lam=1.0, theta=64.0 * 7,
                                   bias=float(rng.integers(0, 20))))
    net.population("o", 10, ir.LIF(alpha_u=0.0, lam=1.0, theta=64.0 * 5))
    w_in = (2 * rng.integers(0, 4, (30, 6))).astype(float) * 64
    w_hh = np.where(rng.random((30, 30)) < 0.2, 2 * rng.integers(-3, 4, (30, 30)), 0) * 64.0
    w_ho = (rng.integers(0, 5, (10, 30))).astype(float) * 64
    net.connect("in", "h", ir.Dense(weight=w_in), delay=1)
    net.connect("h", "h", ir.Sparse.from_dense(w_hh), delay=1)
    net.connect("h", "o", ir.Dense(weight=w_ho), delay=1)
    net.output("h")
    net.output("o")
    net.probe("h", "v")
    x = (rng.random((50, 6)) < 0.3).astype(float)
    return net, {"in": x}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loihi_equals_reference_when_exact(seed):
    net, x = _loihi_units_network(seed)
    ref = ir.simulate(net, x)
    res = emulate(net, x, target=load_target("loihi"))
    assert res.info["family"] == "loihi"
    for k in ("h", "o"):
        assert ref.outputs[k].sum() > 0
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)
    np.testing.assert_array_equal(res.probes["h.v"], ref.probes["h.v"])


def test_loihi_mapping_invariance(tmp_path):
    net, x = _loihi_units_network(4)
    tgt = load_target("loihi")
    base = emulate(net, x, target=tgt)
    eng = engine_for(net, tgt)
    assert eng.family == "loihi"
    tiny = load_target(target_file(tmp_path, "ltiny", 6, base="loihi"))
    part = partition(net, tiny, seed=2, method="metis")
    assert part.n_cores >= 5
    res = emulate(net, x, target=tiny, partition=part, placement=placement(tiny, part.n_cores, 3))
    _same(res, base)


@pytest.mark.parametrize("batch", [1, 3])
def test_zero_copy_delivery_kernel(batch):
    """The interleaved-column csc_matvec trick equals scipy's own column product."""
    import scipy.sparse as sp

    from nmcompiler.backends.emulator.engine import Engine

    rng = np.random.default_rng(batch)
    m = sp.random(50, 80, density=0.2, random_state=1, format="csc", dtype=np.float64)
    m.data = np.rint(m.data * 10)
    m.indptr = m.indptr.astype(np.int32)
    m.indices = m.indices.astype(np.int32)
    b = np.repeat(np.arange(batch), 12)
    src = np.concatenate([np.sort(rng.choice(80, 12, replace=False)) for _ in range(batch)])
    pay = rng.integers(1, 4, src.shape[0]).astype(float)
    for binary in (False, True):
        acc = np.zeros((batch, 50))
        n = Engine._deliver(None, acc, m, (b, src, pay), binary, batch)  # type: ignore[arg-type]
        want = np.zeros((batch, 50))
        for k in range(batch):
            sel = b == k
            want[k] = m[:, src[sel]] @ (np.ones(sel.sum()) if binary else pay[sel])
        np.testing.assert_array_equal(acc, want)
        assert n == m[:, src].nnz


def test_cache_blocked_delivery_equals_reference(monkeypatch):
    """Row blocks of the synapse matrices (cache blocking) change no number."""
    from nmcompiler.backends.emulator.engine import Engine

    monkeypatch.setattr(Engine, "BLOCK_ROWS", 7)
    for seed in (1, 2):
        net, x = random_network(seed)
        ref = ir.simulate(net, x)
        res = emulate(net, x)
        for k in ref.probes:
            np.testing.assert_array_equal(res.probes[k], ref.probes[k], err_msg=k)
        xb = {"in": np.stack([x["in"], x["in"][::-1]], axis=1)}
        refb = ir.simulate(net, xb)
        resb = emulate(net, xb)
        for k in refb.outputs:
            np.testing.assert_array_equal(resb.outputs[k], refb.outputs[k], err_msg=k)


@pytest.mark.parametrize("tname", ["emulator", "loihi", "spinnaker", "speck2f"])
def test_quantize_pass_then_emulate_equals_reference(tname):
    """A network the quantize pass represents exactly (integer weights, IF neurons, the
    chip's own threshold comparison: strict on Loihi, inclusive on SpiNNaker and Speck)
    runs on the emulator in the target's arithmetic with the reference's spikes."""
    from nmcompiler.passes.quantize import quantize

    inclusive = tname in ("spinnaker", "speck2f")
    rng = np.random.default_rng(0)
    net = ir.Network("q")
    net.input("in", 6)
    net.population("h", 30, ir.LIF(alpha_u=0.0, lam=1.0, theta=7.0, bias=0.25,
                                   fire_at_threshold=inclusive))
    net.population("o", 10, ir.LIF(alpha_u=0.0, lam=1.0, theta=5.0,
                                   fire_at_threshold=inclusive))
    net.connect("in", "h", ir.Dense(weight=rng.integers(0, 4, (30, 6)).astype(float)))
    w_hh = np.where(rng.random((30, 30)) < 0.2, rng.integers(-3, 4, (30, 30)), 0)
    net.connect("h", "h", ir.Sparse.from_dense(w_hh.astype(float)))
    net.connect("h", "o", ir.Dense(weight=rng.integers(0, 5, (10, 30)).astype(float)))
    net.output("h")
    net.output("o")
    x = {"in": (rng.random((60, 6)) < 0.3).astype(float)}
    tgt = load_target(tname)
    qnet, _ = quantize(net, tgt)
    ref = ir.simulate(qnet, x)
    res = emulate(qnet, x, target=tgt)
    for k in ("h", "o"):
        assert ref.outputs[k].sum() > 0
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)
