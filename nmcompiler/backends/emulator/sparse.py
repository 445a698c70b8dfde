"""Array helpers of the engine's build: sorting a CSC matrix's columns without scipy's
per-column ``std::sort``, dtype casts that share the index arrays, and whole-array checks
done in cache-sized blocks (no temporaries the size of the synapse arrays).

Every result equals the straightforward one (docs/emulator.md, "Build").
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np
import scipy.sparse as sp

from nmcompiler.parallel import each, ordered

__all__ = ["cast_data", "blockwise", "pow2_factor", "pow2_unit", "group_weights",
           "integer_valued", "abs_row_sums",
           "row_counts", "row_sums", "sort_uniform_columns", "narrow_indices", "part_csc",
           "part_coo", "F32_EXACT"]

#: elements per block of the blockwise checks
BLOCK = 1 << 20
#: float32 holds every integer below this exactly
F32_EXACT = 2.0**24


def cast_data(mat: sp.csc_matrix, dtype: Any, pool: Executor | None = None
              ) -> sp.csc_matrix:
    """``mat.astype(dtype)`` sharing ``indices`` and ``indptr`` (scipy copies them), and
    ``data`` too where it is in ``dtype`` already; with ``pool``, large data are cast a
    block at a time on its threads (the same values)."""
    data = mat.data if mat.data.dtype == np.dtype(dtype) else \
        blockwise(lambda x: x.astype(dtype), mat.data, dtype, pool)
    out = sp.csc_matrix((data, mat.indices, mat.indptr), shape=mat.shape, copy=False)
    out.has_sorted_indices = mat.has_sorted_indices
    out.has_canonical_format = mat.has_canonical_format
    return out


#: elements per block of the element-wise passes run on threads (8 MiB of float64:
#: temporaries from the heap, not fresh memory; see :func:`_row_step`)
PASS_BLOCK = 1 << 20


def blockwise(fn: Any, x: np.ndarray, dtype: Any, pool: Executor | None = None
              ) -> np.ndarray:
    """``fn(x)`` for an element-wise ``fn`` whose result is in ``dtype``, computed
    :data:`PASS_BLOCK` elements at a time into one new array, the blocks on ``pool``'s
    threads where given and there are several (each writes its own part: the values
    of ``fn(x)``)."""
    if pool is None or x.shape[0] <= PASS_BLOCK:
        return fn(x)
    out = np.empty(x.shape[0], dtype=dtype)

    def one(i: int) -> None:
        out[i:i + PASS_BLOCK] = fn(x[i:i + PASS_BLOCK])

    each(one, range(0, x.shape[0], PASS_BLOCK), pool)
    return out


def pow2_factor(data: np.ndarray, pool: Executor | None = None) -> float:
    """The largest power of two dividing every (integer) value of ``data`` (1 if none):
    the lowest set bit of the bitwise OR of the values, block by block (on ``pool``'s
    threads where given; OR is order-free)."""
    def one(i: int) -> int:
        blk = np.abs(data[i:i + PASS_BLOCK]).astype(np.int64)
        return int(np.bitwise_or.reduce(blk)) if blk.size else 0

    acc = 0
    for v in ordered(one, range(0, data.shape[0], PASS_BLOCK), pool):
        acc |= v
    return float(acc & -acc) if acc else 1.0


def pow2_unit(arrays: Any, pool: Executor | None = None) -> float:
    """The largest power of two dividing every value of the non-empty ``arrays`` (whole
    numbers; :func:`pow2_factor`), inf where all are empty."""
    return min((pow2_factor(a, pool) for a in arrays if a.shape[0]), default=float("inf"))


def integer_valued(w: np.ndarray) -> bool:
    """Whether every value of ``w`` is a whole number (``mod(w, 1) == 0``), blockwise."""
    w = np.asarray(w).reshape(-1)
    for i in range(0, w.shape[0], BLOCK):
        b = w[i:i + BLOCK]
        if not np.all(b == np.trunc(b)):
            return False
    return True


def _row_step(n_rows: int) -> int:
    """Entries per block of the per-row sums: a few times the rows (each block's sums
    are a new array of ``n_rows``), at most 2**21 (the block's int64 / float64
    temporaries stay below glibc's largest heap allocation, 32 MiB: a larger one is
    fresh memory from the system each time, slow to touch)."""
    return max(BLOCK, min(8 * n_rows, 1 << 21))


def abs_row_sums(indices: np.ndarray, data: np.ndarray, n_rows: int) -> np.ndarray:
    """``bincount(indices, weights=abs(data))`` summed block by block (the same sums:
    bincount adds in entry order either way)."""
    out = np.zeros(n_rows)
    step = _row_step(n_rows)
    for i in range(0, indices.shape[0], step):
        out += np.bincount(indices[i:i + step], weights=np.abs(data[i:i + step]),
                           minlength=n_rows)
    return out


def row_counts(indices: np.ndarray, n_rows: int) -> np.ndarray:
    """``bincount(indices, minlength=n_rows)`` (int64) block by block: no full-size
    conversion of the indices to the platform integer."""
    out = np.zeros(n_rows, dtype=np.int64)
    step = _row_step(n_rows)
    for i in range(0, indices.shape[0], step):
        out += np.bincount(indices[i:i + step], minlength=n_rows)
    return out


def row_sums(indices: np.ndarray, data: np.ndarray, n_rows: int,
             pool: Executor | None = None, *, whole: bool = False, n_cols: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """``(abs_row_sums(indices, data, n_rows), row_counts(indices, n_rows))`` of a
    matrix with ``n_cols`` columns, in one pass over the same blocks; with ``pool``, a
    wave of blocks at a time on its threads, each wave's sums added in block order (so
    the float sums equal :func:`abs_row_sums`' whatever the threads).

    With ``whole`` (every value a whole number) and each row holding at most one entry
    per column (a canonical matrix), one ``bincount`` per block gives both: each entry
    weighs ``|w| + 2**K`` with ``2**K`` above the largest possible row sum
    ``max |w| x n_cols``, so a row's total is ``count x 2**K + sum |w|``, an exact
    integer below 2**53 where ``2**K x (n_cols + 1) <= 2**53`` (else two bincounts)."""
    absrow = np.zeros(n_rows)
    counts = np.zeros(n_rows, dtype=np.int64)
    step = _row_step(n_rows)
    starts = range(0, indices.shape[0], step)

    def waves(fn: Any) -> Any:  # two blocks' sums held at a time
        return ordered(fn, starts, pool, wave=2)

    shift = 0.0
    if whole and indices.shape[0]:
        amax = max(waves(lambda i: float(np.abs(data[i:i + step]).max(initial=0.0))))
        top = int(amax) * max(int(n_cols), 1)
        k = top.bit_length()
        if (1 << k) * (max(int(n_cols), 1) + 1) <= 2**53:
            shift = float(1 << k)

    if shift:
        def packed(i: int) -> np.ndarray:
            w = np.abs(data[i:i + step], dtype=np.float64)
            w += shift
            return np.bincount(indices[i:i + step].astype(np.intp), weights=w,
                               minlength=n_rows)

        tot = np.zeros(n_rows)
        for t in waves(packed):
            tot += t
        cnt = np.floor(tot / shift)
        counts[:] = cnt
        np.subtract(tot, cnt * shift, out=absrow)
        return absrow, counts

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = indices[i:i + step].astype(np.intp)  # (bincount would convert it twice)
        return (np.bincount(idx, weights=np.abs(data[i:i + step]), minlength=n_rows),
                np.bincount(idx, minlength=n_rows))

    for a_, c in waves(one):
        absrow += a_
        counts += c
    return absrow, counts


def sort_uniform_columns(indices: np.ndarray, data: np.ndarray, indptr: np.ndarray,
                         n_rows: int, *, in_place: bool = False,
                         pool: Executor | None = None
                         ) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows sorted within every column, data alongside, where every column holds the
    same number ``k`` of entries (fixed fan-out): one vectorised sort of the
    ``(n_cols, k)`` array of ``row << bits | position`` keys (ties keep their order).
    None where the columns differ in length (then scipy sorts).

    The rows come back in the narrowest integer type that holds the keys (int32 up to
    2**31 / 2**bits rows), the data in ``data`` itself with ``in_place`` (else a new
    array); the data are moved a block of columns at a time, so the only full-size new
    array is the rows' (fresh memory is slow to touch: docs/benchmarks.md). With
    ``pool``, the blocks of columns are sorted and moved on its threads (each block
    reads and writes only its own columns)."""
    counts = np.diff(indptr)
    if counts.shape[0] == 0:
        return None
    k = int(counts[0])
    if k < 2 or not np.all(counts == k) or int(indptr[0]) != 0:
        return None
    bits = int(k - 1).bit_length()
    kt = np.int32 if (n_rows << bits) < 2**31 and indices.shape[0] < 2**31 else np.int64
    if (n_rows << bits) >= 2**62:
        return None
    keys = np.empty((indices.shape[0] // k, k), dtype=kt)  # written block by block
    src = indices.reshape(-1, k)
    out = data if in_place else np.empty_like(data)
    low = kt((1 << bits) - 1)
    step = max(1, BLOCK // k)

    def one(c0: int) -> None:
        kb = keys[c0:c0 + step]
        kb[...] = src[c0:c0 + step]
        kb <<= bits
        kb |= np.arange(k, dtype=kt)
        kb.sort(axis=1)
        pos = kb & low  # a column's positions, then the block's
        pos += np.arange(0, kb.shape[0] * k, k, dtype=kt)[:, None]
        blk = data[c0 * k:(c0 + kb.shape[0]) * k]
        out[c0 * k:(c0 + kb.shape[0]) * k] = blk[pos.reshape(-1)]  # read before written
        kb >>= bits

    each(one, range(0, keys.shape[0], step), pool)
    return keys.reshape(-1), out


def narrow_indices(mat: sp.spmatrix) -> None:
    """int32 index arrays where they fit (half the memory traffic of the kernel)."""
    idx_t = np.int32 if mat.nnz < 2**31 and max(mat.shape) < 2**31 else np.int64
    mat.indptr = mat.indptr.astype(idx_t, copy=False)
    mat.indices = mat.indices.astype(idx_t, copy=False)


def group_weights(w: Any) -> np.ndarray:
    """A group's weights: float32 ones as they are (the engine gives float32 only where
    every weight is exact there), others in float64."""
    w = np.asarray(w)
    return w if w.dtype == np.float32 else w.astype(np.float64, copy=False)


def part_csc(part: tuple, n_rows: int, n_src: int, pool: Executor | None = None
             ) -> sp.csc_matrix:
    """The engine's group matrix (``n_rows x n_src``) of one Sparse projection ``part``
    (``("csc", conn, row offset, first source, weights)``), from its own CSR-by-source arrays:
    its ``indptr`` padded to every source, its ``indices`` shifted to its rows
    (duplicates summed and rows sorted as ``sum_duplicates`` does)."""
    _, conn, row_off, s0, w = part
    indptr = np.asarray(conn.indptr)
    m = indptr.shape[0] - 1
    nnz = int(indptr[-1])
    big = max(n_rows, n_src, nnz) >= 2**31
    idx_t = np.int64 if big else np.int32
    ip = np.empty(n_src + 1, dtype=idx_t)
    ip[:s0] = 0
    ip[s0:s0 + m + 1] = indptr
    ip[s0 + m + 1:] = nnz
    data = group_weights(w)
    srt = sort_uniform_columns(np.asarray(conn.indices), data, indptr, n_rows,
                               in_place=not np.may_share_memory(data, conn.weight),
                               pool=pool)
    if srt is not None:  # new arrays: the IR's are not touched
        ind, data = srt[0].astype(idx_t, copy=False), srt[1]
    else:
        ind = np.asarray(conn.indices).astype(idx_t)  # a copy: sorting must not touch it
        data = group_weights(w)
        if np.may_share_memory(data, conn.weight):
            data = data.copy()
    if row_off:
        ind += row_off
    mat = sp.csc_matrix((data, ind, ip), shape=(n_rows, n_src))
    if srt is not None:
        mat.has_sorted_indices = True
    mat.sum_duplicates()
    return mat

def part_coo(part: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, sources, weights) of a :func:`part_csc` part, for a mixed group."""
    _, conn, row_off, s0, w = part
    return (np.asarray(conn.indices).astype(np.int64) + row_off,
            conn.pre_index() + s0, np.asarray(w))
