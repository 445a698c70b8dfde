"""Projection expansion: any connectivity as explicit synapses.

One home for turning a projection into synapse lists, used by the compiler's lower pass
and by every backend:

* :func:`conv_to_sparse` / :func:`pool_to_sparse`: a 2-D convolution or pooling as a
  :class:`~nmcompiler.ir.connectivity.Sparse` (PyTorch's conventions);
* :func:`projection_coo`: ``(pre, post, weight, delays)`` of one projection of any kind.

numpy only, like the rest of :mod:`nmcompiler.ir`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .connectivity import (
    AvgPool2d,
    Connectivity,
    Conv2d,
    Dense,
    OneToOne,
    Sparse,
    SumPool2d,
    as_pair,
    conv_output_shape,
)

__all__ = ["Coo", "conv_to_sparse", "pool_to_sparse", "grid_to_sparse", "projection_coo"]


class Coo(NamedTuple):
    """Synapses as parallel arrays: presynaptic and postsynaptic index (int64), weight,
    and the per-synapse extra delays (None where the projection has none)."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delays: np.ndarray | None


def conv_to_sparse(
    conv: Conv2d, in_shape: tuple[int, int, int], *, keep_zeros: bool = False,
    chunk: int = 1 << 22,
) -> Sparse:
    """The synapses of a 2-D convolution as a :class:`~nmcompiler.ir.Sparse` (CSR by
    presynaptic).

    PyTorch's conventions (OIHW weights, CHW activations flattened in C order, stride,
    zero padding, dilation, groups). Output neuron ``(o, y, x)`` receives input
    ``(c, y*sh - ph + i*dh, x*sw - pw + j*dw)`` with weight ``W[o, c mod Cg, i, j]`` for
    ``c`` in group ``o // (O / groups)``; positions in the padding have no synapse, and
    kernel entries equal to 0 are dropped unless ``keep_zeros``. Vectorised over kernel
    entries x output positions, in chunks of about ``chunk`` candidate synapses.
    """
    c_in, h, w = (int(x) for x in in_shape)
    weight = np.asarray(conv.weight)
    o_n, cg, kh, kw = weight.shape
    _, ho_n, wo_n = conv_output_shape((c_in, h, w), conv)
    sh, sw = as_pair(conv.stride)
    ph, pw = as_pair(conv.padding)
    dh, dw = as_pair(conv.dilation)
    og = o_n // int(conv.groups)
    o, cl, i, j = (a.reshape(-1) for a in np.meshgrid(
        np.arange(o_n), np.arange(cg), np.arange(kh), np.arange(kw), indexing="ij"))
    wk = weight.reshape(-1)
    if not keep_zeros:
        keep = wk != 0
        o, cl, i, j, wk = o[keep], cl[keep], i[keep], j[keep], wk[keep]
    c = (o // og) * cg + cl
    ys = np.arange(ho_n, dtype=np.int64)
    xs = np.arange(wo_n, dtype=np.int64)
    per_entry = max(1, ho_n * wo_n)
    step = max(1, chunk // per_entry)
    pres, posts, ws = [], [], []
    for s in range(0, wk.shape[0], step):  # loop over chunks of kernel entries only
        sl = slice(s, s + step)
        hy = ys[None, :] * sh - ph + i[sl, None] * dh  # (k, Ho)
        wx = xs[None, :] * sw - pw + j[sl, None] * dw  # (k, Wo)
        ok = ((hy >= 0) & (hy < h))[:, :, None] & ((wx >= 0) & (wx < w))[:, None, :]
        pre = (c[sl, None, None].astype(np.int64) * h + hy[:, :, None]) * w + wx[:, None, :]
        post = (o[sl, None, None].astype(np.int64) * ho_n + ys[None, :, None]) * wo_n \
            + xs[None, None, :]
        pres.append(pre[ok])
        posts.append(post[ok])
        ws.append(np.broadcast_to(wk[sl, None, None], ok.shape)[ok])
    if pres:
        pre_a, post_a, w_a = np.concatenate(pres), np.concatenate(posts), np.concatenate(ws)
    else:
        pre_a = post_a = np.zeros(0, dtype=np.int64)
        w_a = np.zeros(0, dtype=weight.dtype)
    return Sparse.from_coo(pre=pre_a, post=post_a, weight=w_a, n_pre=c_in * h * w,
                           n_post=o_n * ho_n * wo_n)


def pool_to_sparse(pool: SumPool2d | AvgPool2d, in_shape: tuple[int, int, int]) -> Sparse:
    """Sum or average pooling as a :class:`~nmcompiler.ir.Sparse`: a depthwise convolution
    whose kernel is filled with the pooling weight (1, or ``1 / (kH kW)`` with padding
    counted)."""
    c = int(in_shape[0])
    kh, kw = as_pair(pool.kernel)
    stride = pool.stride if pool.stride is not None else pool.kernel
    conv = Conv2d(weight=np.full((c, 1, kh, kw), pool.scale()), stride=as_pair(stride),
                  padding=as_pair(pool.padding), groups=c)
    return conv_to_sparse(conv, in_shape)


def grid_to_sparse(conn: Conv2d | SumPool2d | AvgPool2d,
                   in_shape: tuple[int, int, int]) -> Sparse:
    """:func:`conv_to_sparse` or :func:`pool_to_sparse`, by the kind of ``conn``."""
    if isinstance(conn, Conv2d):
        return conv_to_sparse(conn, in_shape)
    return pool_to_sparse(conn, in_shape)


def projection_coo(conn: Connectivity, in_shape: tuple[int, ...], *,
                   keep_zeros: bool = True) -> Coo:
    """The synapses of a projection with connectivity ``conn`` from a population of shape
    ``in_shape``, as a :class:`Coo`.

    Dense: the nonzero entries of ``weight[post, pre]``; Sparse: its synapses in CSR
    order; OneToOne: neuron i to i (weights as float64; zero weights dropped unless
    ``keep_zeros``); convolution and pooling: their expansion (no zero kernel entries).
    Delays are indexed like the synapses and keep their dtype; a OneToOne's are
    broadcast to one per neuron.
    """
    if isinstance(conn, Dense):
        w = np.asarray(conn.weight)
        post, pre = np.nonzero(w)
        dl = None if conn.delays is None else np.asarray(conn.delays)[post, pre]
        return Coo(pre.astype(np.int64), post.astype(np.int64), w[post, pre], dl)
    if isinstance(conn, Sparse):
        dl = None if conn.delays is None else np.asarray(conn.delays)
        return Coo(conn.pre_index(), conn.indices.astype(np.int64), np.asarray(conn.weight),
                   dl)
    if isinstance(conn, OneToOne):
        n = int(np.prod(in_shape))
        idx = np.arange(n, dtype=np.int64)
        w = np.broadcast_to(np.asarray(conn.weight, dtype=np.float64), (n,)).copy()
        dl = None if conn.delays is None else np.broadcast_to(np.asarray(conn.delays),
                                                               (n,)).copy()
        if not keep_zeros:
            keep = w != 0
            return Coo(idx[keep], idx[keep], w[keep], None if dl is None else dl[keep])
        return Coo(idx, idx.copy(), w, dl)
    sp = grid_to_sparse(conn, in_shape)  # type: ignore[arg-type]
    return Coo(sp.pre_index(), sp.indices.astype(np.int64), np.asarray(sp.weight), None)
