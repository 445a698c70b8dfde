"""Connectivity kinds of a projection (docs/architecture.md#connectivity-kinds).

Weight conventions follow PyTorch: a dense matrix is ``(n_post, n_pre)``; convolution
weights are OIHW and activations CHW, flattened in C order. A projection's delay lives on
the :class:`~nmcompiler.ir.network.Projection`; per-synapse delays live here, beside the weights
(``delays``: same shape as the weights, integers >= 0).

Sparse connectivity is stored the way chips store it, by presynaptic neuron (each axon's
synapse list): CSR of the ``(n_pre, n_post)`` matrix, i.e. ``indptr`` has ``n_pre + 1``
entries and ``indices`` are postsynaptic neuron indices. :meth:`Sparse.from_coo` and
:meth:`Sparse.from_dense` build it from the usual forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = [
    "Dense",
    "Sparse",
    "OneToOne",
    "Conv2d",
    "SumPool2d",
    "AvgPool2d",
    "Connectivity",
    "CONNECTIVITY_TYPES",
    "conv_output_shape",
    "pool_output_shape",
    "as_pair",
]


def as_pair(x: int | tuple[int, int]) -> tuple[int, int]:
    """``(a, b)`` of an int or a pair (kernel, stride, padding and dilation arguments)."""
    if isinstance(x, (tuple, list)):
        return (int(x[0]), int(x[1]))
    return (int(x), int(x))


_pair = as_pair


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Dense:
    """All-to-all weights ``weight[post, pre]``; optional per-synapse ``delays``."""

    weight: np.ndarray
    delays: np.ndarray | None = None

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Number of stored synapses (every entry, zeros included); shapes unused."""
        return int(self.weight.size)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Sparse:
    """Sparse weights, CSR by presynaptic neuron (see the module docstring).

    Attributes:
        indptr: ``(n_pre + 1,)`` int64, synapses of pre neuron i are
            ``indptr[i]:indptr[i+1]``.
        indices: ``(nnz,)`` postsynaptic indices (int32 or int64).
        weight: ``(nnz,)`` weights.
        n_post: number of postsynaptic neurons.
        delays: ``(nnz,)`` per-synapse delays, or None.
    """

    indptr: np.ndarray
    indices: np.ndarray
    weight: np.ndarray
    n_post: int
    delays: np.ndarray | None = None

    @property
    def n_pre(self) -> int:
        """Number of presynaptic neurons."""
        return int(self.indptr.shape[0]) - 1

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Number of stored synapses; shapes unused."""
        return int(self.weight.shape[0])

    @staticmethod
    def from_coo(
        *,
        pre: np.ndarray,
        post: np.ndarray,
        weight: np.ndarray,
        n_pre: int,
        n_post: int,
        delays: np.ndarray | None = None,
    ) -> Sparse:
        """Build from parallel arrays of (pre, post, weight[, delay]); sorts by pre."""
        pre = np.asarray(pre, dtype=np.int64)
        order = np.argsort(pre, kind="stable")
        counts = np.bincount(pre, minlength=n_pre)
        indptr = np.zeros(n_pre + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        idx_dtype = np.int32 if n_post < 2**31 else np.int64
        return Sparse(
            indptr=indptr,
            indices=np.asarray(post)[order].astype(idx_dtype),
            weight=np.asarray(weight)[order],
            n_post=int(n_post),
            delays=None if delays is None else np.asarray(delays)[order].astype(np.int64),
        )

    @staticmethod
    def from_dense(weight: np.ndarray, delays: np.ndarray | None = None) -> Sparse:
        """Keep the nonzero entries of a ``(n_post, n_pre)`` matrix."""
        weight = np.asarray(weight)
        post, pre = np.nonzero(weight)
        return Sparse.from_coo(
            pre=pre,
            post=post,
            weight=weight[post, pre],
            n_pre=weight.shape[1],
            n_post=weight.shape[0],
            delays=None if delays is None else np.asarray(delays)[post, pre],
        )

    def pre_index(self) -> np.ndarray:
        """The presynaptic index of every synapse, ``(nnz,)`` int64."""
        return np.repeat(np.arange(self.n_pre, dtype=np.int64), np.diff(self.indptr))

    def to_dense(self) -> np.ndarray:
        """The ``(n_post, n_pre)`` matrix (duplicates summed); for small networks."""
        out = np.zeros((self.n_post, self.n_pre), dtype=np.result_type(self.weight, 0.0))
        np.add.at(out, (self.indices, self.pre_index()), self.weight)
        return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OneToOne:
    """Neuron i to neuron i with ``weight`` (scalar or one per neuron)."""

    weight: float | np.ndarray = 1.0
    delays: np.ndarray | None = None

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Number of synapses: one per neuron of the populations (``out_shape``)."""
        return int(np.prod(out_shape or in_shape))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Conv2d:
    """2-D convolution with PyTorch's conventions.

    The presynaptic population has shape ``(C_in, H, W)`` and the postsynaptic one
    ``(C_out, H_out, W_out)``; ``weight`` is ``(C_out, C_in / groups, kH, kW)`` (OIHW).
    ``bias`` of a convolution is not a synapse: put it on the neuron model.
    """

    weight: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Synaptic connections it stands for (kernel entries x output positions)."""
        c_out, h, w = out_shape
        return int(c_out * h * w * np.prod(self.weight.shape[1:]))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SumPool2d:
    """Sum pooling per channel over ``kernel`` windows (CHW -> CHW)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def scale(self) -> float:
        """Weight of every pooled input."""
        return 1.0

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Synaptic connections it stands for (window entries x output positions)."""
        k = as_pair(self.kernel)
        return int(np.prod(out_shape)) * k[0] * k[1]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AvgPool2d:
    """Average pooling per channel (each input weighs 1 / (kH * kW); padding counts)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def scale(self) -> float:
        """Weight of every pooled input."""
        k = _pair(self.kernel)
        return 1.0 / (k[0] * k[1])

    def n_synapses(self, in_shape: tuple[int, ...] = (), out_shape: tuple[int, ...] = ()) -> int:
        """Synaptic connections it stands for (window entries x output positions)."""
        k = as_pair(self.kernel)
        return int(np.prod(out_shape)) * k[0] * k[1]


Connectivity = Union[Dense, Sparse, OneToOne, Conv2d, SumPool2d, AvgPool2d]

#: The connectivity classes (a closed set; save/load enumerates it).
CONNECTIVITY_TYPES: tuple[type, ...] = (Dense, Sparse, OneToOne, Conv2d, SumPool2d, AvgPool2d)


def conv_output_shape(
    in_shape: tuple[int, int, int], conv: Conv2d
) -> tuple[int, int, int]:
    """``(C_out, H_out, W_out)`` of a convolution, PyTorch's formula."""
    _, h, w = in_shape
    kh, kw = conv.weight.shape[2:]
    sh, sw = _pair(conv.stride)
    ph, pw = _pair(conv.padding)
    dh, dw = _pair(conv.dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (int(conv.weight.shape[0]), int(ho), int(wo))


def pool_output_shape(
    in_shape: tuple[int, int, int], pool: SumPool2d | AvgPool2d
) -> tuple[int, int, int]:
    """``(C, H_out, W_out)`` of a pooling layer (floor mode, as PyTorch)."""
    c, h, w = in_shape
    kh, kw = _pair(pool.kernel)
    sh, sw = _pair(pool.stride if pool.stride is not None else pool.kernel)
    ph, pw = _pair(pool.padding)
    return (int(c), int((h + 2 * ph - kh) // sh + 1), int((w + 2 * pw - kw) // sw + 1))
