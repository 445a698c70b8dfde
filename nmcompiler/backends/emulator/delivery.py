"""The synapse walk of a step (docs/emulator.md, "Synapses" and "Threads").

:func:`deliver` adds the firing sources' synapse columns into the accumulator with one
zero-copy call of scipy's compiled ``csc_matvec``. That kernel releases the GIL, so the
firing columns of one delivery can be walked by several threads at once
(:class:`SplitDelivery`): each thread adds its share of the columns (cut where the
synaptic events are about equal) into its own accumulator, and
:meth:`SplitDelivery.reduce` adds those into the engine's before the neurons read it.

This changes the order in which a row's addends are summed, so it is used only where the
sums are exact: integer weights, integer payloads, and a bound on every row's sum below
the accumulator dtype's exact integers (the engine checks it before it makes one). Exact
integer addition is associative, so every accumulator, and everything computed from it,
is the same bit for bit whatever the number of threads. Walks of fewer than
:attr:`SplitDelivery.MIN_EVENTS` events stay on the calling thread.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools as _st

__all__ = ["SplitDelivery", "default_threads", "deliver", "helper_pool", "threads_pool"]

#: the most threads a run uses when ``NMC_THREADS`` is not set
MAX_DEFAULT_THREADS = 8


#: the process's helper pool and its number of threads (empty until first use)
_POOL: list[tuple[ThreadPoolExecutor, int]] = []
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:  # a forked child has none of the parent's threads
    _POOL.clear()


os.register_at_fork(after_in_child=_forget_pool)


def helper_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of helper threads (made on first use, kept: its threads wait
    idle between runs), with at least ``workers`` threads. A larger pool replaces a
    smaller one for later callers; the smaller one is not shut down, so whoever holds it
    (a run under way) can still submit to it. Tasks on it never wait for other tasks on
    it, so runs in several threads of the process may share it."""
    workers = max(int(workers), 1)
    with _POOL_LOCK:
        if not _POOL or _POOL[0][1] < workers:
            _POOL[:] = [(ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix="nmc-helper"), workers)]
        return _POOL[0][0]


def default_threads() -> int:
    """Threads for a step's synapse walks: ``NMC_THREADS`` if set (a positive integer),
    else the CPUs this process may run on (at most :data:`MAX_DEFAULT_THREADS`)."""
    env = os.environ.get("NMC_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def threads_pool() -> ThreadPoolExecutor | None:
    """:func:`helper_pool` with :func:`default_threads` threads where that is more than
    one, else None (the work stays on the calling thread)."""
    threads = default_threads()
    return helper_pool(threads) if threads > 1 else None


class SplitDelivery:
    """The extra threads and accumulators of one run (see the module docstring).

    ``threads`` walks in all, the calling thread included; ``shape`` and ``dtype`` are the
    engine's accumulator's; the helper threads are :func:`helper_pool`'s.
    :meth:`close` frees the helper accumulators (a context manager does too); they are
    made on the first walk that is split."""

    #: a walk of fewer synaptic events runs on the calling thread (thread hand-off costs
    #: tens of microseconds; a walk of this size about a millisecond)
    MIN_EVENTS = 1 << 16
    #: runs whose accumulator is smaller stay on one thread: it fits a core's L2 cache,
    #: so the walk is bound by streaming the synapses and a second thread only adds its
    #: hand-offs and reduction (on the 1e5-neuron benchmark, 0.4-0.8 MB, two threads were
    #: as fast or up to 20% slower; at 1e6, 4 MB, 25-35% faster: docs/benchmarks.md)
    MIN_ACC_BYTES = 2 << 20

    def __init__(self, threads: int, shape: tuple[int, int], dtype: np.dtype) -> None:
        big = int(np.prod(shape)) * np.dtype(dtype).itemsize >= self.MIN_ACC_BYTES
        self.threads = int(threads) if big else 1
        self._shape = shape
        self._dtype = dtype
        self._bufs: list[np.ndarray] = []
        self._dirty = False

    def __enter__(self) -> SplitDelivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the helper accumulators."""
        self._bufs = []

    def matvec(self, n_rows: int, r0: int, ap: np.ndarray, indices: np.ndarray,
               data: np.ndarray, x: np.ndarray, acc: np.ndarray, n_events: int) -> None:
        """``csc_matvec(n_rows, len(ap) - 1, ap, indices, data, x, acc)`` (``acc`` the
        engine's accumulator's rows ``r0:r0 + n_rows``, sample 0), the column pairs of
        ``ap`` / ``x`` (firing column, empty gap: :func:`deliver`) cut into one
        share per thread of about ``n_events / threads`` events each."""
        k = ap.shape[0] // 2
        if self.threads < 2 or n_events < self.MIN_EVENTS or k < 2:
            _st.csc_matvec(n_rows, 2 * k - 1, ap, indices, data, x, acc)
            return
        pool = helper_pool(self.threads - 1)
        if not self._bufs:
            self._bufs = [np.zeros(self._shape, dtype=self._dtype)
                          for _ in range(self.threads - 1)]
        cum = np.cumsum(ap[1::2] - ap[0::2])
        cuts = np.searchsorted(cum, n_events * np.arange(1, self.threads) / self.threads)
        bounds = [0, *np.minimum(cuts + 1, k).tolist(), k]
        futures: list[Future] = []
        for j in range(1, self.threads):
            a, b = bounds[j], bounds[j + 1]
            if b > a:
                futures.append(pool.submit(
                    _st.csc_matvec, n_rows, 2 * (b - a) - 1, ap[2 * a:2 * b], indices,
                    data, x[2 * a:2 * b], self._bufs[j - 1][0, r0:r0 + n_rows]))
        if bounds[1] > 0:
            b = bounds[1]
            _st.csc_matvec(n_rows, 2 * b - 1, ap[:2 * b], indices, data, x[:2 * b], acc)
        for f in futures:
            f.result()
        self._dirty = True

    def reduce(self, acc: np.ndarray) -> None:
        """Add the other threads' accumulators into ``acc`` and clear them (after a
        step's deliveries, before anything reads ``acc``)."""
        if not self._dirty:
            return
        for buf in self._bufs:
            acc += buf
            buf.fill(0)
        self._dirty = False


def deliver(acc: np.ndarray, m: sp.csc_matrix, ent: tuple, binary: bool, batch: int,
            extra: np.ndarray | None = None, *, split: SplitDelivery | None = None,
            r0: int = 0, owner: Any = None) -> int:
    """Add the columns of ``m`` of the firing sources, times their payloads, to
    ``acc``; return the synaptic events (the entries added, less ``extra[source]``
    counter entries per source where ``m`` carries counters,
    :func:`~nmcompiler.backends.emulator.folding.stack_counts`).

    Zero-copy gather: scipy's compiled ``csc_matvec(n_row, n_col, Ap, Ai, Ax, x, y)``
    adds ``Ax[Ap[j]:Ap[j+1]] * x[j]`` into ``y`` for consecutive ``j``. Giving it
    ``Ap = [s_0, e_0, s_1, e_1, ...]`` (start and end of each firing column, sources in
    *descending* order) and ``x = [x_0, 0, x_1, 0, ...]`` makes the even "columns" the
    firing ones and the odd ones the gaps ``[e_k, s_{k+1})``, which are empty because
    ``s_{k+1} <= e_{k+1} <= s_k``: work is exactly the synaptic events, with no copy of
    the selected synapses and no Python-level index validation. ``split`` (with
    ``acc`` the accumulator's rows from ``r0``) walks a large one-sample delivery on
    several threads (:class:`SplitDelivery`). ``owner`` (the engine) keeps the last
    sort of a step's sources (``owner._order_cache``), read by its next groups.
    """
    b, src, pay = ent
    idx_t = m.indptr.dtype
    if batch == 1:
        # a step's sources are delivered by several groups and counted: sort once
        hit = getattr(owner, "_order_cache", None)
        if hit is not None and hit[0] is src:
            order, cols = hit[1], hit[2]
        else:
            order = np.argsort(-src, kind="stable") if src.shape[0] > 1 else None
            cols = src if order is None else src[order]
            if owner is not None:
                owner._order_cache = (src, order, cols)
        k = cols.shape[0]
        ap = np.empty(2 * k, dtype=idx_t)
        ap[0::2] = m.indptr[cols]
        ap[1::2] = m.indptr[cols + 1]
        x = np.zeros(2 * k, dtype=m.dtype)
        if binary:
            x[0::2] = 1.0
        else:
            x[0::2] = pay if order is None else pay[order]
        n = int((ap[1::2] - ap[0::2]).sum())
        if split is None:
            _st.csc_matvec(m.shape[0], 2 * k - 1, ap, m.indices, m.data, x, acc[0])
        else:
            split.matvec(m.shape[0], r0, ap, m.indices, m.data, x, acc[0], n)
        return n if extra is None else n - int(extra[cols].sum())
    ucols, inv = np.unique(src, return_inverse=True)
    cols = ucols[::-1]
    k = cols.shape[0]
    ap = np.empty(2 * k, dtype=idx_t)
    ap[0::2] = m.indptr[cols]
    ap[1::2] = m.indptr[cols + 1]
    x = np.zeros((2 * k, batch), dtype=m.dtype)
    x[2 * (k - 1 - inv), b] = 1.0 if binary else pay
    y = np.zeros((m.shape[0], batch), dtype=m.dtype)
    _st.csc_matvecs(m.shape[0], 2 * k - 1, batch, ap, m.indices, m.data, x.ravel(),
                    y.ravel())
    acc += y.T
    n = int((m.indptr[src + 1] - m.indptr[src]).sum())
    return n if extra is None else n - int(extra[src].sum())
