"""A step's synapse walks split over threads give the same run bit for bit.

Where the sums are exact (integer weights and payloads within the accumulator's exact
integers), the engine may walk one delivery's firing columns on several threads, each
into its own accumulator, and add those up (docs/emulator.md, "Threads"). Outputs,
counters, costs and synaptic events must equal the one-thread run's for every counter
folding, and runs whose sums are not exact must not be split.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from emu_nets import placement, random_network, target_file
from test_counter_folding import _assert_equal, _one_delay_network

from nmcompiler.backends.emulator import engine_for
from nmcompiler.backends.emulator.delivery import SplitDelivery, default_threads
from nmcompiler.backends.emulator.engine import Engine
from nmcompiler.passes.partition import partition
from nmcompiler.targets import load_target


def _engine(net, tmp_path, base, seed):
    tgt = load_target(target_file(tmp_path, f"thr{seed}", 7, base=base))
    part = partition(net, tgt, seed=seed)
    return engine_for(net, tgt, partition=part, placement=placement(tgt, part.n_cores, seed))


class _Spy(SplitDelivery):
    """Counts the walks that were really cut into shares."""

    splits = 0

    def matvec(self, n_rows, r0, ap, indices, data, x, acc, n_events):
        if self.threads >= 2 and n_events >= self.MIN_EVENTS and ap.shape[0] >= 4:
            type(self).splits += 1
        super().matvec(n_rows, r0, ap, indices, data, x, acc, n_events)


@pytest.fixture
def spy(monkeypatch):
    import nmcompiler.backends.emulator.engine as eng_mod

    monkeypatch.setattr(eng_mod, "SplitDelivery", _Spy)
    monkeypatch.setattr(_Spy, "MIN_EVENTS", 1)
    monkeypatch.setattr(_Spy, "MIN_ACC_BYTES", 0)
    _Spy.splits = 0
    return _Spy


@pytest.mark.parametrize("base,delay,fold,seed", [
    ("loihi2", 1, ("pack", "stack"), 0), ("spinnaker", 2, ("pack", "stack"), 1),
    ("loihi2", 1, ("stack",), 2), ("spinnaker", 1, (), 3), ("emulator", 3, ("pack",), 4)])
def test_threaded_walks_equal_one_thread(base, delay, fold, seed, tmp_path, monkeypatch,
                                         spy):
    net, n_in = _one_delay_network(seed, delay, graded=True)
    eng = _engine(net, tmp_path, base, seed)
    monkeypatch.setattr(eng, "COUNT_FOLDING", fold)
    steps = 19
    x = {"in": (np.random.default_rng(seed).random((steps, n_in)) < 0.5) * 1.0}
    out = {}
    for th in (1, 2, 3, 5):
        monkeypatch.setattr(Engine, "THREADS", th)
        before = spy.splits
        out[th] = eng.run(x, steps, probes=("a.v", "b.spikes"), pair_msgs=True)
        assert (spy.splits > before) == (th > 1), th  # the walks were really split
    for th in (2, 3, 5):
        _assert_equal(out[1], out[th])
        for k, v in out[1].probes.items():
            np.testing.assert_array_equal(out[th].probes[k], v, err_msg=k)


@pytest.mark.parametrize("base", ["loihi2", "spinnaker"])
def test_pack_split_in_halves_equals_the_plain_walk(base, tmp_path, monkeypatch):
    """The ``pack`` split of a large accumulator runs in two halves (cut at a run of
    rows of one core), one on a helper thread: the counters are the plain walk's."""
    from nmcompiler.backends.emulator.counting import Counting

    net, n_in = _one_delay_network(21, 1, graded=False)
    eng = _engine(net, tmp_path, base, 21)
    steps = 17
    x = {"in": (np.random.default_rng(21).random((steps, n_in)) < 0.5) * 1.0}
    monkeypatch.setattr(eng, "COUNT_FOLDING", ())
    plain = eng.run(x, steps)
    monkeypatch.setattr(eng, "COUNT_FOLDING", ("pack",))
    monkeypatch.setenv("NMC_THREADS", "2")
    monkeypatch.setattr(Counting, "UNPACK_SPLIT_ROWS", 1)
    halves = []
    orig = Counting._split_rows

    def spy_rows(self, rows, r0, r1):
        halves.append((r0, r1))
        return orig(self, rows, r0, r1)

    monkeypatch.setattr(Counting, "_split_rows", spy_rows)
    packed = eng.run(x, steps)
    assert eng.prepare_counting().mode == "pack"
    assert any(r0 > 0 for r0, _ in halves)  # the second half was split apart
    _assert_equal(plain, packed)


def test_sums_that_are_not_exact_are_not_split(tmp_path, monkeypatch, spy):
    """Fractional input payloads on the generic target: summed in float64 in one order."""
    net, x = random_network(7)
    eng = _engine(net, tmp_path, "emulator", 7)
    steps = x["in"].shape[0]
    monkeypatch.setattr(Engine, "THREADS", 3)
    eng.run({"in": x["in"] * 0.3}, steps)
    assert spy.splits == 0
    eng.run(x, steps)  # integer payloads: split
    assert spy.splits > 0


def _small(threads, shape):
    """A SplitDelivery that splits walks of any size."""
    class Small(SplitDelivery):
        MIN_EVENTS = 1
        MIN_ACC_BYTES = 0

    return Small(threads, shape, np.dtype(np.float32))


def test_split_matvec_cuts_columns_by_events():
    """Random integer columns of very different lengths: any thread count gives the
    serial sums, each share gets about its part of the events, and the other threads'
    accumulators are cleared by the reduction."""
    rng = np.random.default_rng(0)
    n_rows, n_cols = 500, 300
    lens = rng.integers(0, 60, n_cols)
    lens[::7] = 400
    ptr = np.r_[0, np.cumsum(lens)].astype(np.int32)
    m = sp.csc_matrix((rng.integers(-9, 10, ptr[-1]).astype(np.float32),
                       rng.integers(0, n_rows, ptr[-1]).astype(np.int32), ptr),
                      shape=(n_rows, n_cols))
    cols = np.sort(rng.choice(n_cols, 120, replace=False))[::-1].astype(np.int32)
    ap = np.empty(2 * cols.size, np.int32)
    ap[0::2], ap[1::2] = m.indptr[cols], m.indptr[cols + 1]
    x = np.zeros(2 * cols.size, np.float32)
    x[0::2] = rng.integers(1, 4, cols.size)
    want = m[:, cols] @ x[0::2]
    n_ev = int((ap[1::2] - ap[0::2]).sum())
    for th in (1, 2, 3, 8):
        with _small(th, (1, n_rows + 7)) as sd:
            acc = np.zeros((1, n_rows + 7), np.float32)
            sd.matvec(n_rows, 7, ap, m.indices, m.data, x, acc[0, 7:], n_ev)
            sd.reduce(acc)
            np.testing.assert_array_equal(acc[0, 7:], want)
            assert not acc[0, :7].any()
            assert all(not b.any() for b in sd._bufs)
    # with unit weights and payloads an accumulator's total is its share's events: each
    # share is within one column of its part
    ones = sp.csc_matrix((np.ones_like(m.data), m.indices, m.indptr), shape=m.shape)
    xo = (x != 0).astype(np.float32)
    for th in (2, 3, 8):
        with _small(th, (1, n_rows)) as sd:
            acc = np.zeros((1, n_rows), np.float32)
            sd.matvec(n_rows, 0, ap, ones.indices, ones.data, xo, acc[0], n_ev)
            shares = [int(acc.sum())] + [int(b.sum()) for b in sd._bufs]
            assert sum(shares) == n_ev
            assert max(abs(s - n_ev / th) for s in shares) <= lens.max()


@pytest.mark.parametrize("env,want", [("3", 3), ("1", 1), ("0", None), ("x", None),
                                      ("", None)])
def test_default_threads_reads_nmc_threads(env, want, monkeypatch):
    """A positive ``NMC_THREADS`` is the count; anything else falls back to the CPUs."""
    monkeypatch.setenv("NMC_THREADS", env)
    got = default_threads()
    assert got >= 1
    if want is not None:
        assert got == want


def test_small_accumulators_stay_on_one_thread():
    """An accumulator that fits a core's L2 cache is walked on the calling thread."""
    assert SplitDelivery(4, (1, 1000), np.dtype(np.float32)).threads == 1
    big = SplitDelivery.MIN_ACC_BYTES // 4
    assert SplitDelivery(4, (1, big), np.dtype(np.float32)).threads == 4
    assert SplitDelivery(4, (1, big - 1), np.dtype(np.float32)).threads == 1


def test_helper_pool_grows_to_the_threads_asked_for():
    """A pool asked for more threads than it has is replaced by one that has them: three
    tasks that wait for each other all finish."""
    import threading

    from nmcompiler.backends.emulator.delivery import helper_pool

    helper_pool(1)
    pool = helper_pool(3)
    barrier = threading.Barrier(3, timeout=20)
    got = sorted(f.result(timeout=30) for f in [pool.submit(barrier.wait) for _ in range(3)])
    assert got == [0, 1, 2]  # each of the three waited at the barrier on its own thread
    assert helper_pool(2) is pool  # large enough: kept


@pytest.mark.parametrize("base", ["emulator", "spinnaker"])
def test_multiples_of_a_power_of_two_are_summed_in_float32(base, tmp_path, monkeypatch,
                                                           spy):
    """Weights that are whole multiples of 2**20 (as fixed-point weights are of a power
    of two) with row sums above 2**24: every partial sum is a multiple of 2**20 below
    2**24 x 2**20, so float32 sums (split over threads) are exact: the same run as with
    float64 sums."""
    from nmcompiler import ir

    rng = np.random.default_rng(5)
    unit, n_in = 2.0**20, 6
    net = ir.Network("unit")
    net.input("in", n_in)
    for name, n in {"a": 40, "b": 30}.items():
        net.population(name, n, ir.IF(theta=4.5 * unit, bias=unit))
        net.output(name)
    net.connect("in", "a", ir.Dense(weight=rng.integers(0, 4, (40, n_in)) * unit), delay=1)
    for pre, post in (("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")):
        shape = (net.size_of(post), net.size_of(pre))
        w = np.where(rng.random(shape) < 0.7, rng.integers(-3, 4, shape), 0) * unit
        net.connect(pre, post, ir.Sparse.from_dense(w), delay=1)
    net = ir.verify(net)
    eng = _engine(net, tmp_path, base, 5)
    steps = 23
    x = {"in": (np.random.default_rng(5).random((steps, n_in)) < 0.6) * 1.0}
    assert eng.row_abs_max >= 2**24 and eng.weight_unit >= 2.0**20
    assert eng._matrices(1.0)[0][0][1].dtype == np.float32
    monkeypatch.setattr(Engine, "THREADS", 3)
    fast = eng.run(x, steps, probes=("a.v",), pair_msgs=True)
    assert spy.splits > 0
    wide = _engine(net, tmp_path, base, 5)
    wide._weight_unit = 1.0  # as before: float64 sums above 2**24
    assert wide._matrices(1.0)[0][0][1].dtype == np.float64
    slow = wide.run(x, steps, probes=("a.v",), pair_msgs=True)
    _assert_equal(slow, fast)
    np.testing.assert_array_equal(fast.probes["a.v"], slow.probes["a.v"])
    assert sum(int(np.asarray(v).sum()) for v in fast.outputs.values()) > 0
