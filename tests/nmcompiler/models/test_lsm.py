"""Liquid State Machine (Maass et al. 2002): structure, statistics, readout, task margin."""

import time

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.examples import lsm_example
from nmcompiler.ir.errors import InputError, UsageError
from nmcompiler.models import lsm as L


def test_structure_binary_signed_weights_and_delays():
    m = L.build_lsm(grid=(6, 5, 4), n_inputs=3, seed=1, w_exc=0.2, w_inh=0.5)
    net = ir.verify(m.network)
    pop = net.populations["reservoir"]
    assert pop.shape == (6, 5, 4) and isinstance(pop.model, ir.LIF)
    rec = net.projections["reservoir->reservoir"]
    inp = net.projections["input->reservoir"]
    assert isinstance(rec.conn, ir.Sparse) and isinstance(inp.conn, ir.Sparse)
    assert rec.delay >= 1
    pre = rec.conn.pre_index()
    post = rec.conn.indices.astype(np.int64)
    assert np.all(pre != post)  # no self-connections
    w = rec.conn.weight
    assert set(np.unique(w)) <= {0.2, -0.5}
    np.testing.assert_array_equal(w > 0, m.excitatory[pre])  # sign = presynaptic type
    assert 0.1 < 1 - m.excitatory.mean() < 0.3
    assert m.positions.shape == (120, 3)
    assert ("reservoir.spikes",) == tuple(p.key for p in net.probes)


def test_connection_probability_follows_maass():
    grid, lam = (24, 24, 24), 2.0
    rng = np.random.default_rng(0)
    exc = rng.random(np.prod(grid)) >= 0.2
    pre, post = L.connection_pairs(grid, exc, lam=lam, seed=5)
    pos = np.stack(np.unravel_index(np.arange(np.prod(grid)), grid), 1)
    d2 = ((pos[pre] - pos[post]) ** 2).sum(1)
    # candidate pairs at squared distance 1 (face neighbours), per type pair, counted
    # independently of the generator
    for dsq in (1, 2, 4):
        offs = [o for o in np.ndindex(5, 5, 5)
                if sum((np.array(o) - 2) ** 2) == dsq]
        for ta in (0, 1):
            for tb in (0, 1):
                cand = 0
                for o in offs:
                    o = np.array(o) - 2
                    q = pos + o
                    ok = np.all((q >= 0) & (q < grid), axis=1)
                    qi = np.ravel_multi_index(q[ok].T, grid)
                    src = np.flatnonzero(ok)
                    cand += np.sum(((~exc[src]).astype(int) == ta)
                                   & ((~exc[qi]).astype(int) == tb))
                hits = np.sum((d2 == dsq) & ((~exc[pre]).astype(int) == ta)
                              & ((~exc[post]).astype(int) == tb))
                p = L.MAASS_C[ta, tb] * np.exp(-dsq / lam**2)
                sigma = np.sqrt(cand * p * (1 - p))
                assert abs(hits - cand * p) < 5 * sigma, (dsq, ta, tb, hits, cand * p)
    # nothing beyond the cut-off radius
    r_max2 = lam**2 * np.log(L.MAASS_C.max() / 1e-3)
    assert d2.max() <= r_max2


def test_seeded_and_reproducible():
    a = L.build_lsm(grid=(5, 5, 5), n_inputs=2, seed=7)
    b = L.build_lsm(grid=(5, 5, 5), n_inputs=2, seed=7)
    c = L.build_lsm(grid=(5, 5, 5), n_inputs=2, seed=8)
    for name in a.network.projections:
        ca, cb = a.network.projections[name].conn, b.network.projections[name].conn
        np.testing.assert_array_equal(ca.indptr, cb.indptr)
        np.testing.assert_array_equal(ca.indices, cb.indices)
        np.testing.assert_array_equal(ca.weight, cb.weight)
    assert not np.array_equal(
        a.network.projections["reservoir->reservoir"].conn.indices,
        c.network.projections["reservoir->reservoir"].conn.indices,
    )


def test_scales_to_1e5_neurons():
    t0 = time.perf_counter()
    m = L.build_lsm(grid=(50, 50, 40), n_inputs=2, seed=0)
    elapsed = time.perf_counter() - t0
    assert m.n_neurons == 100_000
    syn = m.network.metadata["lsm"]["n_synapses"]
    assert 5 < syn / m.n_neurons < 30  # sparse: O(N), not O(N^2)
    assert elapsed < 15


def test_ridge_matches_closed_form_primal_and_dual():
    rng = np.random.default_rng(0)
    for n, d in ((200, 30), (40, 120)):  # primal (n > d) and dual (d > n)
        x = rng.normal(size=(n, d))
        y = rng.normal(size=(n, 3))
        r = L.Readout(0.5).fit(x, y)
        xc, yc = x - x.mean(0), y - y.mean(0)
        w = np.linalg.solve(xc.T @ xc + 0.5 * np.eye(d), xc.T @ yc)
        np.testing.assert_allclose(r.weight, w, atol=1e-8)
        np.testing.assert_allclose(r.predict(x), xc @ w + y.mean(0), atol=1e-8)
        # refit on new targets / alpha: same as a fresh fit, no new decomposition
        y2 = rng.normal(size=n)
        r.refit(y2, alpha=2.0)
        fresh = L.Readout(2.0).fit(x, y2)
        np.testing.assert_allclose(r.weight, fresh.weight, atol=1e-8)
        assert r.predict(x).shape == (n,)
        assert r.n_decompositions == 1


def test_readout_retrains_without_rerunning_reservoir(monkeypatch):
    ex = lsm_example(seed=0, n_segments=300)
    calls = []
    real = ir.simulate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ir, "simulate", counting)
    task = ex.task
    states = ex.lsm.run(task.inputs)
    x = states[task.sample_times][task.train]
    r = L.Readout(L.EXAMPLE_ALPHA).fit(x, L.one_hot(task.labels(0)[task.train], 4))
    for k in (1, 2, 3):
        r.refit(L.one_hot(task.labels(k)[task.train], 4))
    assert len(calls) == 1  # the reservoir ran once, for all four targets
    assert r.n_decompositions == 1


def test_delayed_recall_reservoir_beats_raw_input():
    ex = lsm_example(seed=0)
    task = ex.task
    states = ex.lsm.run(task.inputs)[task.sample_times]
    raw = task.inputs[task.sample_times]
    tr, te = task.train, task.test
    res = L.Readout(L.EXAMPLE_ALPHA).fit(states[tr], L.one_hot(task.labels(0)[tr], 4))
    base = L.Readout(1.0).fit(raw[tr], L.one_hot(task.labels(0)[tr], 4))
    acc_res, acc_raw = [], []
    for k in (0, 1, 2):
        y = task.labels(k)
        res.refit(L.one_hot(y[tr], 4))
        base.refit(L.one_hot(y[tr], 4))
        acc_res.append(np.mean(res.classify(states[te]) == y[te]))
        acc_raw.append(np.mean(base.classify(raw[te]) == y[te]))
    assert acc_raw[0] == 1.0 and acc_res[0] > 0.95  # no memory needed
    assert acc_res[1] > 0.85 and acc_raw[1] < 0.35  # chance is 0.25
    assert acc_res[2] - acc_raw[2] > 0.2


def test_states_are_filtered_spikes():
    m = L.build_lsm(grid=(4, 4, 4), n_inputs=1, seed=0, state_tau=5.0)
    u = np.zeros((60, 1))
    u[:30] = 1.0
    states, spikes = m.run(u, return_spikes=True)
    a = np.exp(-1 / 5.0)
    expect = np.zeros_like(states)
    for t in range(len(u)):
        expect[t] = (a * expect[t - 1] if t else 0) + spikes[t]
    np.testing.assert_allclose(states, expect)
    assert spikes.sum() > 0
    batched = m.run(np.stack([u, 0 * u], axis=1))
    assert batched.shape == (60, 2, 64)
    np.testing.assert_allclose(batched[:, 0], states)


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda: L.build_lsm(grid=(4, 4)), UsageError, "grid"),
        (lambda: L.build_lsm(grid=(4, 4, 4), delay=0), UsageError, "delay"),
        (lambda: L.build_lsm(grid=(4, 4, 4), frac_inhibitory=1.5), UsageError,
         "frac_inhibitory"),
        (lambda: L.build_lsm(grid=(4, 4, 4), c=np.ones(3)), UsageError, "c has shape"),
        (lambda: L.build_lsm(grid=(4, 4, 4), tau_mem=(9.0, 3.0)), UsageError, "tau_mem"),
        (lambda: L.Readout().refit(np.ones(3)), UsageError, "refit before fit"),
        (lambda: L.Readout().predict(np.ones((3, 2))), UsageError, "predict before fit"),
        (lambda: L.Readout().fit(np.ones((5, 2)), np.ones(4)), InputError, "targets"),
        (lambda: L.Readout().fit(np.ones(5), np.ones(5)), InputError, "states"),
        (lambda: L.Readout(-1.0), UsageError, "alpha"),
        (lambda: L.one_hot(np.array([0, 5]), 4), InputError, "labels"),
        (lambda: L.recall_task(10, washout=20), UsageError, "washout"),
    ],
)
def test_errors(call, err, words):
    with pytest.raises(err) as info:
        call()
    assert words in str(info.value)
    assert info.value.hint


def test_small_grid_with_long_reach_builds():
    # a connection radius longer than the grid's thin axis must not wrap around
    from nmcompiler.models.lsm import build_lsm

    lsm = build_lsm(grid=(10, 10, 3), n_inputs=2, seed=0)
    conn = lsm.network.projections
    assert lsm.n_neurons == 300 and conn


def _separable(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([3, 7, 9]), size=120)
    centres = {3: [2.0, 0.0, 0.0], 7: [0.0, 2.0, 0.0], 9: [0.0, 0.0, 2.0]}
    x = np.array([centres[int(c)] for c in labels]) + 0.1 * rng.standard_normal((120, 3))
    return x, labels


def test_readout_classifies_on_class_labels():
    """Class labels train a one-hot readout; classify returns the labels themselves."""
    x, labels = _separable()
    ro = L.Readout(alpha=1e-3).fit_classes(x[:80], labels[:80])
    np.testing.assert_array_equal(ro.classes, [3, 7, 9])
    assert np.mean(ro.classify(x[80:]) == labels[80:]) == 1.0
    ro.refit_classes(labels[:80][::-1].copy())  # new labels, same states: no decomposition
    assert ro.n_decompositions == 1


def test_classify_after_a_regression_fit_is_refused():
    """1-D integer targets are a regression: classify names the mistake instead of
    returning class 0 for every sample."""
    x, labels = _separable()
    ro = L.Readout().fit(x, labels)
    with pytest.raises(UsageError, match="fit_classes"):
        ro.classify(x)
    with pytest.raises(InputError, match="1-D integer"):
        L.Readout().fit_classes(x, labels.astype(float))
    with pytest.raises(InputError, match="two classes"):
        L.Readout().fit_classes(x, np.zeros(len(x), dtype=int))


def test_demo_lsm_scores_as_documented():
    """docs/lsm.md: the reservoir recalls the previous symbol 96.4 % of the time."""
    from nmcompiler.examples.demo import _lsm

    assert abs(_lsm(True).reference["accuracy"] - 0.964) < 0.001
