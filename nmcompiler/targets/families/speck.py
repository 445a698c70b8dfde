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

__all__ = ["SpeckFamily", "speck_layer_memory", "dense_pool_factor", "neuron_memory",
           "ceil_log2"]


class SpeckFamily(Family):
    """Speck 2f (``backend = "speck"``)."""

    name = "speck"
    number_format = "speck"
    spike_compare = ">="


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


def speck_layer_memory(conn: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                       pool_sizes: tuple[int, ...] = (2, 4, 8)) -> int:
    """Kernel memory words of one projection into a Speck layer (sinabs ``memory_summary``).

    Conv2d ``(f, c, h, w)``: ``c * 2**(ceil(log2(h*w)) + ceil(log2(f)))``; a dense or
    sparse layer is a convolution whose kernel covers the whole input (sinabs converts
    ``nn.Linear`` that way); pooling is done on the way to the destination core and needs
    no kernel memory. A dense projection whose weights are constant over ``k x k``
    spatial windows (``k`` in ``pool_sizes``, see :func:`dense_pool_factor`) is a
    pooling plus a dense layer and is charged on the pooled ``(c, H/k, W/k)`` input.
    """
    if isinstance(conn, (SumPool2d, AvgPool2d)):
        return 0
    if isinstance(conn, Conv2d):
        f, c, kh, kw = (int(x) for x in conn.weight.shape)
        return int(c * 2 ** (int(ceil_log2(kh * kw)) + int(ceil_log2(f))))
    if isinstance(conn, OneToOne):
        c = int(in_shape[0]) if len(in_shape) == 3 else int(np.prod(in_shape))
        return int(c * 2 ** int(ceil_log2(1)))
    if isinstance(conn, Dense) and len(in_shape) == 3:
        k = dense_pool_factor(conn.weight, in_shape, pool_sizes)
        in_shape = (in_shape[0], in_shape[1] // k, in_shape[2] // k)
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
