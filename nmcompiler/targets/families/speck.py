"""The Speck family: sinabs' rules for DynapCNN / Speck cores.

* integer IAF neurons, spike test ``v >= theta``;
* one layer per core; kernel, neuron and bias memory per core as sinabs'
  ``memory_summary`` computes them (:func:`speck_layer_memory`, :func:`neuron_memory`),
  with dense layers whose weights are constant over ``k x k`` windows charged as a
  pooling plus a dense layer (:func:`dense_pool_factor`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import AvgPool2d, Conv2d, Dense, OneToOne, SumPool2d

from .base import Family

__all__ = ["SpeckFamily", "speck_layer_memory", "dense_pool_factor", "conv_pool_factor",
           "speck_kernel", "neuron_memory", "ceil_log2"]


class SpeckFamily(Family):
    """Speck 2f (``backend = "speck"``)."""

    name = "speck"
    number_format = "speck"
    emulator_arithmetic = "speck"
    spike_compare = ">="
    no_refractory = "DYNAP-CNN's integrate-and-fire neurons (sinabs' IAFSqueeze) have none"


def ceil_log2(x: np.ndarray | int) -> np.ndarray:
    """``ceil(log2(max(x, 1)))`` as int64 (vectorised)."""
    x = np.maximum(np.asarray(x, dtype=np.int64), 1)
    return np.ceil(np.log2(x)).astype(np.int64)


def dense_pool_factor(weight: np.ndarray, in_shape: tuple[int, ...],
                      sizes: tuple[int, ...] = (2, 4, 8)) -> int:
    """The largest ``k`` of ``sizes`` over which a dense ``(f, C*H*W)`` weight matrix on a
    ``(C, H, W)`` input is constant in every ``k x k`` spatial window (1 if none).

    Such a projection is a ``k x k`` sum pooling followed by a dense layer on the pooled
    ``(C, H/k, W/k)`` input (the NIR importer composes SumPool + Flatten + Affine that
    way); sinabs and the chip apply the pooling on the way out of the source layer.
    Vectorised: one comparison of the weights with each window's first entry per ``k``.
    """
    if len(in_shape) != 3:
        return 1
    c, h, w = (int(x) for x in in_shape)
    wt = np.asarray(weight)
    if wt.ndim != 2 or wt.shape[1] != c * h * w:
        return 1
    for k in sorted((int(x) for x in sizes if int(x) > 1), reverse=True):
        if h % k or w % k:
            continue
        r = wt.reshape(wt.shape[0], c, h // k, k, w // k, k)
        if np.array_equal(r, np.broadcast_to(r[:, :, :, :1, :, :1], r.shape)):
            return k
    return 1


def conv_pool_factor(weight: np.ndarray, in_shape: tuple[int, ...], stride: Any,
                     padding: Any, sizes: tuple[int, ...] = (2, 4, 8), *, rect: bool = False
                     ) -> tuple[int, int]:
    """The largest sum pooling ``(py, px)`` (from ``sizes``) a convolution contains.

    ``weight`` is OIHW with all input channels, on a ``(C, H, W)`` input. The convolution
    contains a ``py x px`` pooling when the kernel is constant over aligned ``py x px``
    blocks and ``H``, the kernel height, the stride and the padding are multiples of
    ``py`` (likewise x): then it equals that sum pooling followed by the convolution of
    ``weight[..., ::py, ::px]`` with stride ``s / p`` and padding ``pad / p`` (the NIR
    importer composes ``SumPool2d -> Conv2d`` the other way). sinabs and the chip pool on
    the way out of the source layer (or in the DVS layer, which may pool rectangles:
    ``rect=True``); elsewhere ``py == px``. A dense layer is a convolution whose kernel is
    its input map (stride = the map size, no padding).
    """
    if len(in_shape) != 3 or np.ndim(weight) != 4:
        return (1, 1)
    w = np.asarray(weight)
    _, h, wd = (int(x) for x in in_shape)
    kh, kw = (int(x) for x in w.shape[2:])
    st = (int(stride[0]), int(stride[1]))
    pd = (int(padding[0]), int(padding[1]))
    cand = sorted({int(x) for x in sizes if int(x) >= 1} | {1}, reverse=True)

    def ok(axis: int, p: int) -> bool:
        if p == 1:
            return True
        size, k, s_, pad = (h, kh, st[0], pd[0]) if axis == 0 else (wd, kw, st[1], pd[1])
        if size % p or k % p or s_ % p or pad % p:
            return False
        shape = list(w.shape)
        shape[2 + axis:3 + axis] = [k // p, p]
        r = w.reshape(shape)
        first = r[:, :, :, :1] if axis == 0 else r[..., :1]
        return bool(np.array_equal(r, np.broadcast_to(first, r.shape)))

    if rect:
        return (next(p for p in cand if ok(0, p)), next(p for p in cand if ok(1, p)))
    return next(((p, p) for p in cand if ok(0, p) and ok(1, p)), (1, 1))


def speck_kernel(conn: Any, in_shape: tuple[int, ...], pool_sizes: tuple[int, ...],
                 rect: bool) -> tuple[np.ndarray, tuple[int, int]] | None:
    """(full OIHW kernel after taking the pooling out, pooling) of a projection.

    For a convolution or a dense projection on a CHW input; None for other connectivity.
    A grouped convolution's kernel is expanded to every input channel, as samna stores it.
    """
    if isinstance(conn, Conv2d):
        w = np.asarray(conn.weight)
        g = int(conn.groups)
        if g > 1:  # samna's kernel holds every input channel (zeros included)
            f, cg, kh, kw = w.shape
            full = np.zeros((f, cg * g, kh, kw), dtype=w.dtype)
            fg = f // g
            for k in range(g):
                full[k * fg:(k + 1) * fg, k * cg:(k + 1) * cg] = w[k * fg:(k + 1) * fg]
            w = full
        if tuple(int(x) for x in np.broadcast_to(conn.dilation, (2,))) != (1, 1):
            return w, (1, 1)
        st = np.broadcast_to(conn.stride, (2,))
        pd = np.broadcast_to(conn.padding, (2,))
        py, px = conv_pool_factor(w, in_shape, st, pd, pool_sizes, rect=rect)
        return w[:, :, ::py, ::px], (py, px)
    if isinstance(conn, Dense) and len(in_shape) == 3:
        wt = np.asarray(conn.weight)
        w = wt.reshape(wt.shape[0], *(int(x) for x in in_shape))
        py, px = conv_pool_factor(w, in_shape, in_shape[1:], (0, 0), pool_sizes, rect=rect)
        return w[:, :, ::py, ::px], (py, px)
    return None


def speck_layer_memory(conn: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                       pool_sizes: tuple[int, ...] = (2, 4, 8), *, rect: bool = False) -> int:
    """Kernel memory words of one projection into a Speck layer (sinabs ``memory_summary``).

    A convolution ``(f, c, h, w)``: ``c * 2**(ceil(log2(h*w)) + ceil(log2(f)))`` with
    ``c`` every input channel (a grouped convolution is stored whole); a dense or sparse
    layer is a convolution whose kernel covers the whole input (sinabs converts
    ``nn.Linear`` that way); pooling is done on the way to the destination core and needs
    no kernel memory. A convolution or dense projection that contains a sum pooling (see
    :func:`conv_pool_factor`; the NIR importer composes ``SumPool2d -> Conv2d`` and
    ``SumPool2d -> Flatten -> Affine``) is charged as the smaller kernel after that
    pooling, as sinabs maps the uncomposed layers. ``rect`` allows rectangular pooling
    (projections from the input: the DVS layer pools).
    """
    if isinstance(conn, (SumPool2d, AvgPool2d)):
        return 0
    if isinstance(conn, OneToOne):
        c = int(in_shape[0]) if len(in_shape) == 3 else int(np.prod(in_shape))
        return int(c * 2 ** int(ceil_log2(1)))
    got = speck_kernel(conn, in_shape, pool_sizes, rect)
    if got is not None:
        f, c, kh, kw = (int(x) for x in got[0].shape)
        return int(c * 2 ** (int(ceil_log2(kh * kw)) + int(ceil_log2(f))))
    c, hw = (in_shape[0], in_shape[1] * in_shape[2]) if len(in_shape) == 3 else \
        (int(np.prod(in_shape)), 1)
    f = int(out_shape[0]) if len(out_shape) == 3 else int(np.prod(out_shape))
    return int(c * 2 ** (int(ceil_log2(hw)) + int(ceil_log2(f))))


def neuron_memory(shape: tuple[int, ...]) -> int:
    """Neuron memory words of a layer (sinabs: ``f * 2**(ceil(log2(H)) + ceil(log2(W)))``)."""
    if len(shape) == 3:
        f, h, w = shape
        return int(f * 2 ** (int(ceil_log2(h)) + int(ceil_log2(w))))
    return int(np.prod(shape))
