"""The counting build's per-source, per-core synapse counts and own-core split
(docs/emulator.md, "Synapses"): from the engine's group matrices, the CSR matrix of each
source's synapses on each destination core, and per neuron source whether one of them is
its own core and its other cores (its messages). Blocks of sources run on the helper
threads, each writing only its own part of the outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from nmcompiler.parallel import each, ordered

from . import counting
from .delivery import default_threads, threads_pool

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["synapses_per_core", "own_core_entries"]


def synapses_per_core(eng: Engine) -> sp.csr_matrix:
    """Per source (a row) and destination core (a column): its synapses there, as a
    canonical CSR matrix (cores sorted and unique per source) made from each group's CSC
    arrays. :func:`_core_runs` where it applies (the accumulator rows' cores never
    decrease, or padding every source's column to the longest does not more than double
    the entries); else scipy's ``sum_duplicates`` sorts and sums each source's cores."""
    c, n_src = eng.n_cores, eng.n_src
    direct = not eng.segments
    core32 = eng.slot_core.astype(np.int32 if c < 2**31 else np.int64)
    tot = None
    if c == 1:  # one core: a source's synapses per core are its synapses
        per = eng.sops_per_src.astype(np.int64)
        has = np.flatnonzero(per)
        ip = np.zeros(n_src + 1, dtype=np.int64)
        ip[1:] = np.cumsum(per > 0)
        tot = sp.csr_matrix((per[has], np.zeros(has.shape[0], dtype=np.int32), ip),
                            shape=(n_src, c))
    row_core: np.ndarray = core32 if direct else core32[eng.row_slot]
    monotone = c > 1 and bool(np.all(row_core[1:] >= row_core[:-1]))
    pool = threads_pool()
    for _, _, _, m in eng.groups if c > 1 else ():
        s_ = _core_runs(m.indptr, m.indices, row_core, c, monotone, pool)
        if s_ is None:
            rows = m.indices if direct else eng.row_slot[m.indices]
            s_ = sp.csr_matrix((np.ones(m.indices.shape[0], dtype=np.int32), core32[rows],
                                m.indptr.copy()), shape=(n_src, c))  # summing rewrites it
            s_.sum_duplicates()
        tot = s_ if tot is None else tot.astype(np.int64) + s_  # (narrow counts)
    if tot is None:
        tot = sp.csr_matrix((n_src, c), dtype=np.int64)
    return tot


def _core_runs(indptr: np.ndarray, indices: np.ndarray, row_core: np.ndarray, c: int,
               monotone: bool, pool: Any) -> sp.csr_matrix | None:
    """:func:`synapses_per_core` of one group (CSC ``indptr`` / ``indices``, rows sorted
    within each column; ``row_core``: per row, its core), or None where neither way
    applies. With ``monotone`` (the rows' cores never decrease) each column's cores come
    in runs, one per destination core, in core order; else a block of columns' cores is
    sorted as one ``(cols, k)`` array (one vectorised sort; columns shorter than the
    longest, ``k``, padded past the last core), where that padding does not more than
    double the entries, and then comes in runs. A run's length is the synapses
    on its core. Blocks of columns are done on the helper threads a wave at a time (one
    block per thread), and each wave's runs are copied into the result in block order.
    The synapse counts are in the narrowest unsigned type that holds a column's length."""
    n_src = indptr.shape[0] - 1
    ip = np.asarray(indptr, dtype=np.int64)
    lens = np.diff(ip)
    k = int(lens.max(initial=0))
    if not monotone and (int(ip[0]) != 0 or k * n_src > 2 * int(ip[-1]) + counting.CHUNK):
        return None  # (padding every column to the longest would more than double them)
    ranges = list(counting._ranges(ip))
    nnz = int(ip[-1])
    n_runs = np.zeros(n_src, dtype=np.int64)
    out_core = np.empty(nnz, dtype=np.int32 if c < 2**31 else np.int64)
    out_len = np.empty(nnz, dtype=np.uint8 if k < 2**8 else np.uint16 if k < 2**16
                       else np.int64)  # (a run is at most a column long)

    def runs(r: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        s0, s1 = r
        e0, e1 = int(ip[s0]), int(ip[s1])
        core = row_core[indices[e0:e1]]
        if not monotone and e1 > e0:
            ln = lens[s0:s1]
            if bool(np.all(ln == k)):
                core.reshape(-1, k).sort(axis=1)
            else:  # columns padded to k with c (past every core), sorted, unpadded
                pad = np.full((s1 - s0, k), c, dtype=core.dtype)
                pos = np.arange(e1 - e0, dtype=np.int64)
                pos += np.repeat(np.arange(s1 - s0, dtype=np.int64) * k - (ip[s0:s1] - e0),
                                 ln)
                pad.reshape(-1)[pos] = core
                pad.sort(axis=1)
                core = pad[pad < c]
        new = np.empty(e1 - e0, dtype=bool)  # a run starts: a new core or a new column
        if e1 > e0:
            new[0] = True
            np.not_equal(core[1:], core[:-1], out=new[1:])
            new[ip[s0:s1][lens[s0:s1] > 0] - e0] = True
        at = np.flatnonzero(new)
        n_runs[s0:s1] = np.diff(np.searchsorted(at, ip[s0:s1 + 1] - e0))
        ln = np.empty(at.shape[0], dtype=out_len.dtype)
        np.subtract(at[1:], at[:-1], out=ln[:-1], casting="unsafe")  # (< 2**bits)
        if at.shape[0]:
            ln[-1] = (e1 - e0) - at[-1]
        return core[at], ln

    w = 0
    step = default_threads() if pool is not None else 1
    for i in range(0, len(ranges), step):
        wave = ranges[i:i + step]
        got = list(ordered(runs, wave, pool))
        spans = []
        for rc, ln in got:
            spans.append((w, rc, ln))
            w += rc.shape[0]

        def put(sp_: tuple[int, np.ndarray, np.ndarray]) -> None:
            o, rc, ln = sp_
            out_core[o:o + rc.shape[0]] = rc
            out_len[o:o + ln.shape[0]] = ln

        each(put, spans, pool)
        del got, spans
    out_ip = np.zeros(n_src + 1, dtype=np.int64)
    np.cumsum(n_runs, out=out_ip[1:])
    out = sp.csr_matrix((out_len[:w], out_core[:w], out_ip), shape=(n_src, c), copy=False)
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def own_core_entries(eng: Engine, core: np.ndarray, ip: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per source, 1 where one of its destination cores (``core``, CSR by ``ip``) is its
    own; and the neuron sources' other destination cores, in source order (CSR by
    ``_noc_ptr``: their messages). Two passes over chunks of sources (no temporaries the
    size of the entries), each chunk writing only its own part of the outputs, on the
    helper threads: which sources have their own core, then the other cores."""
    n = eng.N
    has_local = np.zeros(eng.n_src, dtype=np.int64)
    own_core = eng.src_core.astype(core.dtype)
    ranges = list(counting._ranges(ip[:n + 1]))
    pool = threads_pool()

    def own(s0: int, s1: int) -> np.ndarray:
        e0, e1 = int(ip[s0]), int(ip[s1])
        return np.repeat(own_core[s0:s1], np.diff(ip[s0:s1 + 1])) == core[e0:e1]

    def local(r: tuple[int, int]) -> None:
        s0, s1 = r
        hit = np.flatnonzero(own(s0, s1))
        has_local[s0 + np.searchsorted(ip[s0:s1 + 1] - ip[s0], hit, side="right") - 1] = 1

    each(local, ranges, pool)
    at = np.zeros(n + 1, dtype=np.int64)  # where each source's other cores go
    np.cumsum(np.diff(ip[:n + 1]) - has_local[:n], out=at[1:])
    out = np.empty(int(at[-1]), dtype=np.int32 if eng.n_cores < 2**31 else np.int64)

    def rest(r: tuple[int, int]) -> None:
        s0, s1 = r
        out[int(at[s0]):int(at[s1])] = core[int(ip[s0]):int(ip[s1])][~own(s0, s1)]

    each(rest, ranges, pool)
    return has_local, out
