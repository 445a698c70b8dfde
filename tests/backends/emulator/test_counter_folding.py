"""Counters folded into the synapse walk equal the counter matrix walked on its own.

The engine folds the per-core counters of the neuron sources into the walk over their
synapses (docs/emulator.md, "Counters"): ``"pack"`` adds a power of two to their weights
and splits the accumulator into sums and synaptic events; ``"stack"`` appends their
counter columns below their synapse columns. Both deliver a spike's counts with its
synapses, ``d`` steps late, and count the spikes of the run's last steps at the end.
Every counter, cost, output and per-population figure must equal the plain walk's
(``Engine.COUNT_FOLDING = ()``) bit for bit, across block boundaries, batches, inputs
and graded sources (counted apart), and the folding that was meant to apply must be the
one that ran.
"""

from __future__ import annotations

import numpy as np
import pytest
from emu_nets import placement, random_network, target_file

from nmcompiler import ir
from nmcompiler.backends.emulator import engine_for
from nmcompiler.backends.emulator.counting import Counting
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target


def _one_delay_network(seed: int, delay: int, *, graded: bool, weight: int = 3
                       ) -> tuple[ir.Network, int]:
    """Recurrent populations whose neuron-to-neuron projections all have ``delay``; an
    input (counted apart) and, with ``graded``, a graded population (counted apart)."""
    rng = np.random.default_rng(seed)
    net = ir.Network(f"fold{seed}")
    net.input("in", 6)
    sizes = {"a": 24, "b": 17}
    for name, n in sizes.items():
        net.population(name, n, ir.LIF(alpha_u=0.5, lam=0.75, theta=4.0, bias=1.0))
    if graded:
        net.population("g", 9, ir.LIF(alpha_u=0.0, lam=1.0, theta=3.0, graded=True,
                                      graded_max=3))
    pops = list(net.populations)
    net.connect("in", "a", ir.Dense(weight=rng.integers(0, 4, (24, 6)).astype(float)),
                delay=1)
    for pre in pops:
        for post in pops:
            mask = rng.random((net.size_of(post), net.size_of(pre))) < 0.4
            w = np.where(mask, rng.integers(-weight, weight + 1, mask.shape), 0)
            net.connect(pre, post, ir.Sparse.from_dense(w.astype(float)),
                        delay=delay if pre != "g" else 1 + seed % 2)
    for name in pops:
        net.probe(name, "spikes")
        net.output(name)
    return ir.verify(net), 6


def _engine(net, tmp_path, base, seed):
    tgt = load_target(target_file(tmp_path, f"fold{seed}", 7, base=base))
    part = partition(net, tgt, seed=seed)
    return engine_for(net, tgt, partition=part, placement=placement(tgt, part.n_cores, seed))


def _runs(eng, x, steps, monkeypatch):
    monkeypatch.setattr(Counting, "BLOCK_BYTES", 5 * 8 * 3 * eng.count_mat.shape[0])
    out, modes = {}, {}
    for fold in ((), ("pack",), ("stack",), ("pack", "stack")):
        monkeypatch.setattr(eng, "COUNT_FOLDING", fold)
        out[fold] = eng.run(x, steps, pair_msgs=True)
        got = [v for k, v in eng._stack_cache.items() if k.endswith(":" + ",".join(fold))]
        modes[fold] = got[0].mode if got and got[0] is not None else None
    return out, modes


def _assert_equal(a, b):
    assert a.synaptic_events == b.synaptic_events and a.spikes == b.spikes
    for k, v in a.outputs.items():
        np.testing.assert_array_equal(b.outputs[k], v, err_msg=k)
    assert set(a.counters) == set(b.counters)
    for k, v in a.counters.items():
        np.testing.assert_array_equal(b.counters[k], v, err_msg=k)
    for k, v in a.costs.items():
        if isinstance(v, dict):
            assert b.costs[k] == v, k
        else:
            np.testing.assert_array_equal(b.costs[k], v, err_msg=k)
    assert a.per_population == b.per_population


@pytest.mark.parametrize("base,delay,batch,graded,seed", [
    ("emulator", 1, 1, False, 0), ("emulator", 2, 1, True, 1), ("loihi2", 1, 1, True, 2),
    ("spinnaker", 3, 1, False, 3), ("emulator", 2, 3, True, 4), ("spinnaker", 1, 2, True, 5)])
def test_packed_and_stacked_counts_equal_the_plain_walk(base, delay, batch, graded, seed,
                                                         tmp_path, monkeypatch):
    net, n_in = _one_delay_network(seed, delay, graded=graded)
    eng = _engine(net, tmp_path, base, seed)
    steps = 23  # not a multiple of the 5-step blocks; the last `delay` steps' spikes
    rng = np.random.default_rng(seed)
    shape = (steps, n_in) if batch == 1 else (steps, batch, n_in)
    x = {"in": (rng.random(shape) < 0.5) * 1.0}
    out, modes = _runs(eng, x, steps, monkeypatch)
    plain = out[()]
    assert plain.counters["sops"].sum() > 0 and plain.counters["messages"].sum() > 0
    # the spikes of the last step are counted (their delivery would come after the run)
    assert plain.counters["sops"][-1].sum() > 0
    assert modes == {(): None, ("pack",): "pack", ("stack",): "stack",
                     ("pack", "stack"): "pack"}
    for fold in (("pack",), ("stack",), ("pack", "stack")):
        _assert_equal(plain, out[fold])


@pytest.mark.parametrize("base", ["emulator", "spinnaker"])
def test_packing_follows_the_runs_input_payloads(base, tmp_path, monkeypatch):
    """Integer input payloads up to 40 raise the largest row sum: the packing offset
    follows each run's payloads (and fractional payloads on the generic target are not
    packed), with the same counts as the plain walk."""
    net, n_in = _one_delay_network(9, 1, graded=True)
    eng = _engine(net, tmp_path, base, 9)
    steps = 15
    rng = np.random.default_rng(9)
    spikes = (rng.random((steps, n_in)) < 0.5) * 1.0
    for x in (spikes, spikes * rng.integers(1, 41, spikes.shape),
              spikes * (0.25 if base == "emulator" else 1.0)):
        out, modes = _runs(eng, {"in": x}, steps, monkeypatch)
        whole = bool(np.all(x == np.round(x)))
        assert modes[("pack", "stack")] == ("pack" if whole else "stack")
        for fold in (("pack",), ("stack",), ("pack", "stack")):
            _assert_equal(out[()], out[fold])


def test_mixed_delays_stack_and_equal_the_plain_walk(tmp_path, monkeypatch):
    """Projection and per-synapse delays 0..5 and zero-delay levels: no single delay to
    pack, so the counters are stacked into one carrier group per source."""
    net, x = random_network(7)
    eng = _engine(net, tmp_path, "emulator", 7)
    steps = x["in"].shape[0]
    out, modes = _runs(eng, x, steps, monkeypatch)
    assert modes[("pack",)] is None and modes[("stack",)] == "stack"
    assert modes[("pack", "stack")] == "stack"
    for fold in (("pack",), ("stack",), ("pack", "stack")):
        _assert_equal(out[()], out[fold])


def test_packing_refused_where_the_sums_would_not_stay_exact(tmp_path, monkeypatch):
    """Odd weights near 2**15 (no common power-of-two factor): weight sums plus 2**k
    times the synaptic events would pass float32's 24 bits, so the counters are stacked."""
    net, n_in = _one_delay_network(8, 1, graded=False, weight=2**15 + 1)
    eng = _engine(net, tmp_path, "emulator", 8)
    assert eng.row_abs_max < 2**24  # the synaptic sums themselves stay float32
    steps = 12
    x = {"in": (np.random.default_rng(8).random((steps, n_in)) < 0.5) * 1.0}
    out, modes = _runs(eng, x, steps, monkeypatch)
    assert modes[("pack",)] is None and modes[("pack", "stack")] == "stack"
    _assert_equal(out[()], out[("pack", "stack")])


@pytest.mark.parametrize("base,graded", [("loihi2", False), ("spinnaker", True)])
def test_a_packed_run_does_not_make_the_counter_matrix(base, graded, tmp_path):
    """The counter matrix is made on first use: a ``"pack"`` run counts the inputs and
    graded sources from their own columns only, and what the engine says of the matrix
    before making it (entries, the kernel's dtype) is what the made matrix has."""
    net, n_in = _one_delay_network(11, 1, graded=graded)
    eng = _engine(net, tmp_path, base, 11)
    steps = 9
    x = {"in": (np.random.default_rng(11).random((steps, n_in)) < 0.5) * 1.0}
    res = eng.run(x, steps)
    st = eng.prepare_counting()
    assert st is not None and st.mode == "pack" and st.residual is not None
    assert eng._count_mat is None and res.counters["input"].sum() > 0
    # the residual is the counter matrix's columns of the sources that are not packed
    full = eng.count_mat
    assert full.nnz == eng.count_nnz
    free = st.carrier_delay < 0
    np.testing.assert_array_equal(st.residual.toarray(), full.toarray() * free[None, :])
    rowmax = np.abs(full).sum(axis=1).max()
    assert eng.count_dtype == (np.float32 if rowmax < 2**24 else np.float64)
    assert eng.count_mat_step.dtype == eng.count_dtype


@pytest.mark.parametrize("base", ["loihi2", "spinnaker"])
def test_unpack_splits_rows_at_the_extremes_of_the_weighted_sum(base, tmp_path):
    """A packed row holds ``S + q x events`` with ``|S| < q / 2``: the split must give
    ``S`` and ``events`` back exactly for every such row, sums next to ``+- q / 2``
    included (a random network's rows rarely come near them)."""
    net, _ = _one_delay_network(12, 1, graded=False)
    eng = _engine(net, tmp_path, base, 12)
    st = eng.prepare_counting()
    assert st is not None and st.mode == "pack"
    q, n = st.q, eng.n_rows
    rng = np.random.default_rng(12)
    s = rng.integers(-(q // 2) + 1, q // 2, n).astype(float)
    s[:4] = [q / 2 - 1, -(q / 2 - 1), 0.0, 1.0]
    ev = rng.integers(0, 60, n).astype(float)
    cnt = Counting(eng, 3, 1, stacked=st)
    acc = (s + q * ev).astype(np.float32)[None, :]
    assert np.array_equal(acc[0].astype(float), s + q * ev)  # exact in float32
    cnt.unpack(st.lag, acc)
    np.testing.assert_array_equal(acc[0], s)
    want = np.bincount(eng.slot_core[eng.row_slot], weights=ev, minlength=eng.n_cores)
    np.testing.assert_array_equal(cnt.buf[0, 0, eng.count_slices["sops"]], want)
