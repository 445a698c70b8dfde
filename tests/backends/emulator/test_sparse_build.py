"""The engine build's array helpers (nmcompiler.backends.emulator.sparse) against the
straightforward scipy / numpy computations they replace (docs/emulator.md, "Build")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from nmcompiler.backends.emulator import sparse
from nmcompiler.backends.emulator.sparse import (
    abs_row_sums,
    cast_data,
    integer_valued,
    row_counts,
    row_sums,
    sort_uniform_columns,
)

#: blocks of columns sorted and moved on three threads
POOL = ThreadPoolExecutor(3)


@settings(max_examples=60, deadline=None)
@given(n_cols=st.integers(1, 40), k=st.integers(2, 130), n_rows=st.integers(1, 300),
       seed=st.integers(0, 2**31 - 1))
def test_uniform_column_sort_equals_scipys_canonical_form(n_cols, k, n_rows, seed):
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, n_rows, n_cols * k).astype(np.int32)  # duplicates likely
    data = rng.integers(-5, 6, n_cols * k).astype(np.float64)
    ip = np.arange(0, (n_cols + 1) * k, k, dtype=np.int32)
    want = sp.csc_matrix((data.copy(), ind.copy(), ip.copy()), shape=(n_rows, n_cols))
    want.sum_duplicates()
    for in_place, block, pool in ((False, sparse.BLOCK, None), (True, sparse.BLOCK, None),
                                  (True, 3 * k, None), (False, 3 * k, POOL),
                                  (True, 2 * k, POOL)):
        arg = data.copy()
        old, sparse.BLOCK = sparse.BLOCK, block  # blocks of 3 (2) columns
        try:
            srt = sort_uniform_columns(ind, arg, ip, n_rows, in_place=in_place, pool=pool)
        finally:
            sparse.BLOCK = old
        assert srt is not None
        assert srt[0].dtype == ind.dtype and (srt[1] is arg) == in_place
        got = sp.csc_matrix((srt[1], srt[0], ip.copy()), shape=(n_rows, n_cols))
        got.has_sorted_indices = True
        got.sum_duplicates()
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)


def test_uneven_columns_are_left_to_scipy():
    ip = np.array([0, 2, 5])
    assert sort_uniform_columns(np.array([1, 0, 2, 1, 0]), np.ones(5), ip, 3) is None


def test_blockwise_checks_and_cast_equal_the_direct_ones(monkeypatch):
    import nmcompiler.backends.emulator.sparse as mod

    monkeypatch.setattr(mod, "BLOCK", 7)
    rng = np.random.default_rng(3)
    w = rng.integers(-9, 9, 100).astype(float)
    assert integer_valued(w)
    w[57] += 0.5
    assert not integer_valued(w)
    ind = rng.integers(0, 5, 100)
    np.testing.assert_array_equal(abs_row_sums(ind, w, 5),
                                  np.bincount(ind, weights=np.abs(w), minlength=5))
    m = sp.random(20, 30, density=0.2, format="csc", random_state=1)
    c = cast_data(m, np.float32)
    assert np.shares_memory(c.indices, m.indices) and c.dtype == np.float32
    np.testing.assert_array_equal(c.toarray(), m.astype(np.float32).toarray())


@settings(max_examples=40, deadline=None)
@given(nnz=st.integers(0, 400), n_rows=st.integers(1, 30), block=st.integers(1, 50),
       threads=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_row_sums_equal_the_separate_blockwise_sums(nnz, n_rows, block, threads, seed):
    """One pass (on threads, a wave of blocks at a time) gives the same float sums as
    :func:`abs_row_sums` block by block, and the counts of :func:`row_counts`."""
    rng = np.random.default_rng(seed)
    ind = rng.integers(0, n_rows, nnz).astype(np.int32)
    data = rng.normal(0, 1e3, nnz)  # non-integer: the order of the sums shows
    old, sparse.BLOCK = sparse.BLOCK, block
    try:
        a, c = row_sums(ind, data, n_rows, pool=POOL if threads else None)
        want_a, want_c = abs_row_sums(ind, data, n_rows), row_counts(ind, n_rows)
    finally:
        sparse.BLOCK = old
    np.testing.assert_array_equal(a, want_a)
    np.testing.assert_array_equal(c, want_c)
    assert c.dtype == np.int64


@settings(max_examples=40, deadline=None)
@given(n_cols=st.integers(1, 40), n_rows=st.integers(1, 30), big=st.sampled_from([9, 30, 50]),
       block=st.integers(1, 50), threads=st.booleans(), f32=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_packed_row_sums_of_whole_weights_equal_the_two_bincounts(n_cols, n_rows, big,
                                                                  block, threads, f32,
                                                                  seed):
    """Whole weights: one bincount of ``|w| + 2**K`` per block gives the same sums and
    counts (weights up to 2**big: the packing is used only where it is exact)."""
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=0.5, format="csc", random_state=seed % 2**32)
    m.data = rng.integers(-2**big, 2**big, m.nnz).astype(np.float64)
    if f32:
        m.data = np.clip(m.data, -2**23, 2**23).astype(np.float32)
    old, sparse.BLOCK = sparse.BLOCK, block
    try:
        a, c = row_sums(m.indices, m.data, n_rows, pool=POOL if threads else None,
                        whole=True, n_cols=n_cols)
        want_a, want_c = row_sums(m.indices, m.data.astype(np.float64), n_rows)
    finally:
        sparse.BLOCK = old
    np.testing.assert_array_equal(a, want_a)
    np.testing.assert_array_equal(c, want_c)
    np.testing.assert_array_equal(c, np.diff(m.tocsr().indptr))
