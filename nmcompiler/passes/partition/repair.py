"""Repair of an over-budget partition: split overloaded cores with a predictive model of
how usage falls with the split factor, until every core fits."""

from __future__ import annotations

from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError

from ...targets import Target
from .diagnostics import single_neuron_error, too_many_cores
from .usage import Eval, evaluate
from .view import View


# =========================================================================== methods
def split_over(neuron_core: np.ndarray, n_cores: int, factor: np.ndarray
                ) -> tuple[np.ndarray, int]:
    """Split every core ``c`` with ``factor[c] > 1`` into ``factor[c]`` contiguous pieces
    (by rank of its neurons in global order); other cores are kept."""
    order = np.argsort(neuron_core, kind="stable")
    sizes = np.bincount(neuron_core, minlength=n_cores)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - np.repeat(starts, sizes)
    f = np.maximum(factor.astype(np.int64), 1)
    f = np.minimum(f, np.maximum(sizes, 1))
    piece = (rank * f[neuron_core]) // np.maximum(sizes[neuron_core], 1)
    base = np.concatenate([[0], np.cumsum(f)[:-1]])
    new = base[neuron_core] + piece
    return new.astype(np.int64), int(f.sum())


def compact(neuron_core: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber cores 0.. in order of their first neuron."""
    uniq, first = np.unique(neuron_core, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(int(uniq.max()) + 1 if uniq.size else 0, dtype=np.int64)
    remap[uniq[order]] = np.arange(uniq.shape[0])
    return remap[neuron_core], int(uniq.shape[0])


def overload(ev: Eval, lim: np.ndarray) -> np.ndarray:
    """Per core, the largest ratio of used resource to its limit."""
    has = lim > 0
    ratio = np.where(has[None, :], ev.used / np.maximum(lim, 1)[None, :], 0.0)
    return ratio.max(axis=1)


def repair_partition(view: View, target: Target, neuron_core: np.ndarray, n_cores: int,
            lim: np.ndarray, ev: Eval | None, stats: dict[str, Any], max_rounds: int = 40,
            plan: bool = False) -> tuple[np.ndarray, int, Eval]:
    """Split over-budget cores until every core fits; raise FitError for one neuron."""
    rounds = 0
    while True:
        if ev is None:
            ev = evaluate(view, neuron_core, n_cores, target)
        over = (lim[None, :] >= 0) & (ev.used > lim[None, :])
        bad = np.flatnonzero(over.any(axis=1))
        if bad.size == 0:
            break
        single = bad[ev.used[bad, 0] <= 1]
        if single.size:
            c = int(single[0])
            j = int(np.flatnonzero(over[c])[0])
            neuron = int(np.flatnonzero(neuron_core == c)[0])
            raise single_neuron_error(view, target, neuron, ev.names[j],
                                       int(ev.used[c, j]), int(lim[j]))
        if rounds >= max_rounds:  # pragma: no cover - halving converges in log2 steps
            raise FitError("partition repair did not converge", obj="network",
                           rule="partition", hint="report this network")
        ratio = overload(ev, lim)
        factor = np.ones(n_cores, dtype=np.int64)
        factor[bad] = np.maximum(2, np.ceil(ratio[bad] * 1.2)).astype(np.int64)
        if plan:
            factor = _plan_split(ev, lim, factor, stats)
        neuron_core, n_cores = split_over(neuron_core, n_cores, factor)
        if n_cores > 4 * int(target.total_cores) + 64:
            raise too_many_cores(view, target, n_cores, None, None)
        ev = None
        rounds += 1
    stats["repair_rounds"] = rounds
    return neuron_core, n_cores, ev


class _SplitModel:
    """What :func:`_predict_split` needs from the exact (source, core) pairs of one count,
    aggregated once (O(pairs)); each prediction is then O(cores + pairs of >= 2 synapses).

    Pairs of one synapse (most, on sparse networks) are counted per core; only pairs of
    several synapses are kept one by one."""

    def __init__(self, ev: Eval, dest_limited: bool) -> None:
        c_n = ev.used.shape[0]
        self.c_n = c_n
        col, cnt, src = ev.pair_core, ev.pair_count, ev.pair_src_core
        self.exact = col is not None and cnt is not None and src is not None
        if self.exact:
            multi = np.flatnonzero(cnt > 1)
            self.ones = np.bincount(col, minlength=c_n).astype(np.float64) - \
                np.bincount(col[multi], minlength=c_n)
            self.m_col = col[multi].astype(np.int64)
            self.m_cnt = cnt[multi].astype(np.float64)
            nb = src.shape[0]
            mn = multi[multi < nb]
            self.n_src = src[mn].astype(np.int64)
            self.n_col = col[mn].astype(np.int64)
            self.n_cnt = cnt[mn].astype(np.float64)
        self.dest = dest_limited
        if dest_limited:
            cg = ev.core_graph.tocoo()
            off = cg.row != cg.col
            self.g_row, self.g_col = cg.row[off], cg.col[off]
            self.g_msg = cg.data[off].astype(np.float64)


def _predict_split(ev: Eval, model: _SplitModel, f: np.ndarray) -> np.ndarray:
    """Predicted usage (C, budgets) of each piece of every core when core ``c`` is cut
    into ``f[c]`` contiguous pieces, from the exact (source, core) pairs of ``ev``.

    Output axons: a pair of ``k`` synapses onto a cut core becomes at most ``min(f, k)``
    pairs (an upper bound), shared evenly by the source core's pieces. Input axons: a
    source with ``k`` synapses on a core cut in ``f`` reaches a given piece with
    probability ``1 - (1 - 1/f)**k`` (synapses spread evenly); memory follows the input
    axons; destinations: ``min(f, messages)`` per destination core.
    """
    used = ev.used.astype(np.float64)
    out = used.copy()
    ff = f.astype(np.float64)
    c_n = model.c_n
    out[:, 0] = np.ceil(used[:, 0] / ff)
    if model.exact:
        inp = model.ones / ff
        fm = ff[model.m_col]
        inp += np.bincount(model.m_col, weights=1.0 - (1.0 - 1.0 / fm) ** model.m_cnt,
                           minlength=c_n)
        out[:, 1] = inp
        out[:, 3] = np.where(used[:, 1] > 0, used[:, 3] * inp / np.maximum(used[:, 1], 1),
                             0.0)
        extra = np.bincount(model.n_src, weights=np.minimum(ff[model.n_col], model.n_cnt)
                            - 1.0, minlength=c_n)
        out[:, 2] = (used[:, 2] + extra) / ff
    else:
        out[:, 1:4] = used[:, 1:4] / ff[:, None]
    if model.dest:
        dst = np.bincount(model.g_row, weights=np.minimum(ff[model.g_col], model.g_msg),
                          minlength=c_n)
        out[:, 4] = np.ceil(dst / ff)
    return out


def _plan_split(ev: Eval, lim: np.ndarray, factor: np.ndarray, stats: dict[str, Any],
                rounds: int = 12, margin: float = 0.95) -> np.ndarray:
    """Raise the split factors until the predicted usage of every piece is within
    ``margin`` of every budget (pieces are not all average), so that one repair round
    usually suffices; the exact count after the split decides."""
    f = factor.copy()
    neurons = np.maximum(ev.used[:, 0], 1)
    has = lim > 0
    model = _SplitModel(ev, dest_limited=bool(lim[4] >= 0))
    cut = f > 1  # only cores cut anyway are cut finer (the model is pessimistic for local
    top = np.minimum(neurons, 2 * f)  # connectivity), at most to twice the pieces
    for it in range(rounds):
        pred = _predict_split(ev, model, f)
        ratio = np.where(has[None, :], pred / np.maximum(lim, 1)[None, :], 0.0).max(axis=1)
        over = cut & (ratio > margin) & (f < top)
        stats["split_plan_iterations"] = it + 1
        if not over.any():
            break
        f[over] = np.minimum(top[over], np.maximum(
            f[over] + 1, np.ceil(f[over] * ratio[over] / margin))).astype(np.int64)
    return f
