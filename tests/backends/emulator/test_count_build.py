"""The counting build's per-source, per-core synapse counts and own-core split
(nmcompiler.backends.emulator.core_counts) against the straightforward scipy / numpy
computations they replace (docs/emulator.md, "Build")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from nmcompiler.backends.emulator import core_counts, counting
from nmcompiler.backends.emulator.core_counts import _core_runs, own_core_entries, synapses_per_core

#: blocks of sources on three threads
POOL = ThreadPoolExecutor(3)


def _group(rng, n_rows, n_cols, lens):
    """A canonical CSC group matrix (rows sorted and unique in each column)."""
    cols = []
    for ln in lens:
        cols.append(np.sort(rng.choice(n_rows, size=min(ln, n_rows), replace=False)))
    ip = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum([c.shape[0] for c in cols], out=ip[1:])
    ind = np.concatenate(cols).astype(np.int32) if cols else np.zeros(0, np.int32)
    return ip.astype(np.int32), ind


def _reference(ip, ind, row_core, c):
    ref = sp.csr_matrix((np.ones(ind.shape[0], dtype=np.int64), row_core[ind], ip.copy()),
                        shape=(ip.shape[0] - 1, c))
    ref.sum_duplicates()
    return ref


@settings(max_examples=60, deadline=None)
@given(n_cols=st.integers(1, 60), n_rows=st.integers(1, 200), c=st.integers(2, 40),
       shape=st.sampled_from(["uniform", "uneven", "ragged"]), monotone=st.booleans(),
       chunk=st.sampled_from([3, 17, 1 << 22]), threads=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_core_runs_equal_scipys_summed_cores(n_cols, n_rows, c, shape, monotone, chunk,
                                             threads, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 12))
    lens = {"uniform": np.full(n_cols, k),
            "uneven": k - rng.integers(0, 2, n_cols),  # a few columns one shorter
            "ragged": rng.integers(0, 3 * k, n_cols)}[shape]
    ip, ind = _group(rng, n_rows, n_cols, lens)
    row_core = rng.integers(0, c, n_rows).astype(np.int32)
    if monotone:
        row_core.sort()
    old, counting.CHUNK = counting.CHUNK, chunk  # many blocks and waves
    try:
        got = _core_runs(ip, ind, row_core, c, monotone, POOL if threads else None)
    finally:
        counting.CHUNK = old
    lens_ = np.diff(ip)
    if not monotone and int(lens_.max(initial=0)) * n_cols > 2 * int(ip[-1]) + chunk:
        assert got is None  # padding would more than double the entries: scipy sorts
        return
    assert got is not None
    want = _reference(ip, ind, row_core, c)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data.astype(np.int64), want.data)
    assert got.data.dtype.kind == "u" and got.data.dtype.itemsize <= 2


def test_core_runs_leave_very_uneven_columns_to_scipy():
    ip = np.array([0, 40, 40, 40, 41], dtype=np.int32)  # 4 columns, longest 40
    ind = np.concatenate([np.arange(40), [3]]).astype(np.int32)
    row_core = (np.arange(50) * 7 % 5).astype(np.int32)  # not monotone
    old, counting.CHUNK = counting.CHUNK, 1
    try:
        assert _core_runs(ip, ind, row_core, 5, False, None) is None
        got = _core_runs(ip, ind, np.sort(row_core), 5, True, None)  # monotone: runs
    finally:
        counting.CHUNK = old
    want = _reference(ip, ind, np.sort(row_core), 5)
    assert got is not None and (got != want).nnz == 0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 50), n_inputs=st.integers(0, 5), c=st.integers(1, 9),
       chunk=st.sampled_from([2, 9, 1 << 22]), threads=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_own_core_split_equals_the_direct_one(n, n_inputs, c, chunk, threads, seed):
    rng = np.random.default_rng(seed)
    n_src = n + n_inputs
    per = rng.integers(0, c + 1, n_src)
    core = np.concatenate([np.sort(rng.choice(c, size=p, replace=False)) for p in per]
                          ).astype(np.int32)
    ip = np.zeros(n_src + 1, dtype=np.int64)
    np.cumsum(per, out=ip[1:])
    src_core = np.full(n_src, -1, dtype=np.int64)
    src_core[:n] = rng.integers(0, c, n)
    eng = SimpleNamespace(N=n, n_src=n_src, src_core=src_core, n_cores=c)
    old, counting.CHUNK = counting.CHUNK, chunk
    pool = POOL if threads else None
    try:
        orig = core_counts.threads_pool
        core_counts.threads_pool = lambda: pool
        has_local, rest = own_core_entries(eng, core, ip)
    finally:
        counting.CHUNK = old
        core_counts.threads_pool = orig
    want_local = np.zeros(n_src, dtype=np.int64)
    want_rest = []
    for s in range(n):
        cores = core[ip[s]:ip[s + 1]]
        want_local[s] = int(bool((cores == src_core[s]).any()))
        want_rest.append(cores[cores != src_core[s]])
    np.testing.assert_array_equal(has_local, want_local)
    np.testing.assert_array_equal(
        rest, np.concatenate(want_rest) if want_rest else np.zeros(0, np.int32))


@pytest.mark.parametrize("partition", ["blocks", "scattered"])
def test_engine_counts_equal_scipys_on_a_compiled_partition(partition):
    """The engine's per-source, per-core synapses (its counter matrix's source) equal
    scipy's summed cores for a partition in runs of slots and a scattered one."""
    from nmcompiler import ir
    from nmcompiler.backends.emulator.engine import Engine

    rng = np.random.default_rng(5)
    n, k, c = 300, 12, 7
    pre = np.repeat(np.arange(n), k)
    post = rng.integers(0, n, n * k)  # duplicates likely: uneven columns once summed
    net = ir.Network("cb")
    net.population("p", n, ir.IF(theta=3.5))
    net.connect("p", "p", ir.Sparse.from_coo(pre=pre, post=post, weight=np.ones(n * k),
                                             n_pre=n, n_post=n), delay=1)
    core = (np.arange(n) * c // n if partition == "blocks"
            else rng.integers(0, c, n))
    eng = Engine(net, neuron_core=core, n_cores=c)
    tot = synapses_per_core(eng)
    m = eng.groups[0][3]
    want = _reference(m.indptr, m.indices, eng.slot_core.astype(np.int32), c)
    assert (tot != want).nnz == 0 and tot.has_canonical_format
