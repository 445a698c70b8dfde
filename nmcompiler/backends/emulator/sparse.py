"""Array helpers of the engine's build: sorting a CSC matrix's columns without scipy's
per-column ``std::sort``, dtype casts that share the index arrays, and whole-array checks
done in cache-sized blocks (no temporaries the size of the synapse arrays).

Every result equals the straightforward one (docs/emulator.md, "Build").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["cast_data", "integer_valued", "abs_row_sums", "sort_uniform_columns"]

#: elements per block of the blockwise checks
BLOCK = 1 << 20


def cast_data(mat: sp.csc_matrix, dtype: type) -> sp.csc_matrix:
    """``mat.astype(dtype)`` sharing ``indices`` and ``indptr`` (scipy copies them)."""
    out = sp.csc_matrix((mat.data.astype(dtype), mat.indices, mat.indptr), shape=mat.shape,
                        copy=False)
    out.has_sorted_indices = mat.has_sorted_indices
    out.has_canonical_format = mat.has_canonical_format
    return out


def integer_valued(w: np.ndarray) -> bool:
    """Whether every value of ``w`` is a whole number (``mod(w, 1) == 0``), blockwise."""
    w = np.asarray(w).reshape(-1)
    for i in range(0, w.shape[0], BLOCK):
        b = w[i:i + BLOCK]
        if not np.all(b == np.trunc(b)):
            return False
    return True


def abs_row_sums(indices: np.ndarray, data: np.ndarray, n_rows: int) -> np.ndarray:
    """``bincount(indices, weights=abs(data))`` summed block by block (the same sums:
    bincount adds in entry order either way)."""
    out = np.zeros(n_rows)
    step = max(BLOCK, 8 * n_rows)  # few blocks where the rows are many
    for i in range(0, indices.shape[0], step):
        out += np.bincount(indices[i:i + step], weights=np.abs(data[i:i + step]),
                           minlength=n_rows)
    return out


def sort_uniform_columns(indices: np.ndarray, data: np.ndarray, indptr: np.ndarray,
                         n_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows sorted within every column, data alongside, where every column holds the
    same number ``k`` of entries (fixed fan-out): one vectorised sort of the
    ``(n_cols, k)`` array of ``row << bits | position`` keys (ties keep their order).
    None where the columns differ in length (then scipy sorts)."""
    counts = np.diff(indptr)
    if counts.shape[0] == 0:
        return None
    k = int(counts[0])
    if k < 2 or not np.all(counts == k) or int(indptr[0]) != 0:
        return None
    bits = int(k - 1).bit_length()
    kt = np.int32 if (n_rows << bits) < 2**31 else np.int64
    if (n_rows << bits) >= 2**62:
        return None
    keys = indices.astype(kt).reshape(-1, k)
    keys <<= bits
    keys |= np.arange(k, dtype=kt)
    keys.sort(axis=1)
    keys = keys.reshape(-1)
    pos = keys & kt((1 << bits) - 1)
    pos += np.repeat(np.arange(0, counts.shape[0] * k, k, dtype=kt), k)
    out_data = data[pos]
    del pos
    keys >>= bits
    return keys.astype(indices.dtype, copy=False), out_data
