"""The engine's block-wise counters and costs against a straightforward dense reference.

The reference recomputes every counter of every step from the spikes alone: per firing
source (neuron or input channel) and per synapse, its destination core; per (source,
destination core) one message, local delivery or input message; per core pair the
messages; then the dense :func:`~nmcompiler.backends.emulator.costs.evaluate` turns the
``(T, B, bins)`` arrays into time and energy. The engine accumulates in blocks of steps
(docs/emulator.md, "Counters"): while its per-step arrays fit it must give the same
numbers bit for bit; beyond :attr:`Engine.COUNTER_BYTES` it keeps run totals, which must
equal the reference's sums, with the same per-step time.
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_nets import placement, random_network, target_file

from nmcompiler.backends.emulator import _result, engine_for
from nmcompiler.backends.emulator.costs import evaluate
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target


def _firing(eng, res, inputs, steps, batch):
    """(T, B, n_src) 0/1: which sources fired at each step (from the recorded spikes)."""
    f = np.zeros((steps, batch, eng.n_src))
    for name in eng.pops:
        s0, m = eng.slot_off[name], eng.net.size_of(name)
        f[:, :, s0:s0 + m] = res.probes[f"{name}.spikes"] != 0
    for name, x in inputs.items():
        x = np.asarray(x).reshape(steps, batch, -1)
        s0 = eng.src_off[name]
        f[:, :, s0:s0 + x.shape[2]] = x != 0
    return f


def _dense_reference(eng, f):
    """Every counter bin of every step and sample, densely, from the firing sources."""
    c = eng.n_cores
    steps, batch, n_src = f.shape
    syn_src, syn_core = [], []
    for *_, m in eng.groups:
        col = np.repeat(np.arange(n_src), np.diff(m.indptr))
        syn_src.append(col)
        syn_core.append(eng.slot_core[eng.row_slot[m.indices]])
    syn_src, syn_core = np.concatenate(syn_src), np.concatenate(syn_core)
    src_core = np.full(n_src, -1)
    src_core[:eng.N] = eng.slot_core
    pair_index = {int(p): k for k, p in enumerate(eng.pairs)}
    out = {k: np.zeros((steps, batch, c)) for k in
           ("sops", "updates", "messages", "local", "input", "spikes")}
    out["pair_msgs"] = np.zeros((steps, batch, eng.pairs.shape[0]))
    for t in range(steps):
        for b in range(batch):
            out["updates"][t, b] = eng.core_neurons
            fired = np.flatnonzero(f[t, b])
            for s in fired:
                dest = syn_core[syn_src == s]
                np.add.at(out["sops"][t, b], dest, 1)
                home = src_core[s]
                if home >= 0:
                    out["spikes"][t, b, home] += 1
                for core in np.unique(dest):
                    if home < 0:
                        out["input"][t, b, core] += 1
                    elif home == core:
                        out["local"][t, b, core] += 1
                    else:
                        out["messages"][t, b, home] += 1
                        out["pair_msgs"][t, b, pair_index[home * c + int(core)]] += 1
    return out


def _case(seed, tmp_path, target_name, batch):
    net, x = random_network(seed)
    tgt = load_target(target_file(tmp_path, f"small{seed}", 6, base=target_name))
    part = partition(net, tgt, seed=seed)
    pl = placement(tgt, part.n_cores, seed + 1)
    eng = engine_for(net, tgt, partition=part, placement=pl)
    if batch > 1:
        rng = np.random.default_rng(seed)
        x = {"in": (rng.random((x["in"].shape[0], batch, x["in"].shape[1])) < 0.4) * 1.0}
    steps = x["in"].shape[0]
    probes = tuple(f"{p}.spikes" for p in eng.pops)
    return eng, x, steps, probes


@pytest.mark.parametrize("seed,target_name,batch", [
    (0, "emulator", 1), (1, "emulator", 2), (2, "loihi2", 1), (3, "spinnaker", 1),
    (4, "emulator", 3)])
def test_block_accumulation_equals_dense_reference(seed, target_name, batch, tmp_path,
                                                   monkeypatch):
    eng, x, steps, probes = _case(seed, tmp_path, target_name, batch)
    from nmcompiler.backends.emulator.counting import Counting as _Counting

    if seed % 2:  # per-step link hops through the core pairs instead of per source
        monkeypatch.setattr(type(eng), "_source_links", lambda self: None)

    monkeypatch.setattr(_Counting, "BLOCK_BYTES", 7 * 8 * batch * eng.count_mat.shape[0])
    res = eng.run(x, steps, probes=probes, pair_msgs=True)
    assert res.counters_per_step and res.link_hops_per_step
    ref = _dense_reference(eng, _firing(eng, res, x, steps, batch))
    assert ref["sops"].sum() > 0 and ref["messages"].sum() > 0
    for k, v in ref.items():
        np.testing.assert_array_equal(res.counters[k], v, err_msg=k)
    want = evaluate(eng.costs, ref)
    got = res.costs
    for k in ("step_time_s", "compute_time_s", "noc_latency_s", "link_hops", "step_energy_j"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert got["energy_j"] == want["energy_j"]

    # beyond the budget: run totals, same per-step time, same energy up to rounding
    monkeypatch.setattr(type(eng), "COUNTER_BYTES", 0)
    tot = eng.run(x, steps, probes=probes, pair_msgs=True)
    assert not tot.counters_per_step and not tot.link_hops_per_step
    assert "pair_msgs" not in tot.counters
    for k in ("sops", "updates", "messages", "local", "input", "spikes"):
        assert tot.counters[k].shape == (1, batch, eng.n_cores)
        np.testing.assert_array_equal(tot.counters[k][0], ref[k].sum(axis=0), err_msg=k)
    for k in ("step_time_s", "compute_time_s", "noc_latency_s"):
        np.testing.assert_array_equal(tot.costs[k], want[k], err_msg=k)
    np.testing.assert_array_equal(tot.costs["link_hops"][0], want["link_hops"].sum(axis=0))
    np.testing.assert_allclose(tot.costs["step_energy_j"], want["step_energy_j"],
                               rtol=1e-12)
    for k, v in want["energy_j"].items():
        assert tot.costs["energy_j"][k] == pytest.approx(v, rel=1e-12), k
    # the backend's Counters carry the totals as one row
    r = _result(eng, tot, "emulator", {})
    assert r.counters.sops.shape == (1, eng.n_cores)
    assert r.info["counters_per_step"] is False
    assert int(r.counters.link_hops.sum()) == int(want["link_hops"].sum())


def test_memory_of_a_long_run_does_not_grow_with_steps_x_pairs(tmp_path):
    """10,000 steps on many cores: totals kept, the block buffer stays small."""
    eng, x, _, _ = _case(5, tmp_path, "emulator", 1)
    steps = 10_000
    rng = np.random.default_rng(0)
    xin = (rng.random((steps, x["in"].shape[1])) < 0.3) * 1.0
    type(eng).COUNTER_BYTES, old = 4 * 8 * eng.n_cores * 100, type(eng).COUNTER_BYTES
    try:
        res = eng.run({"in": xin}, steps)
    finally:
        type(eng).COUNTER_BYTES = old
    assert res.counters["sops"].shape[0] == 1 and res.costs["step_time_s"].shape == (steps,)
    assert res.counters["sops"].sum() > 0
