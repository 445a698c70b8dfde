"""Weight quantisation: mantissas and a shared exponent per projection."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import (
    Conv2d,
    Dense,
    OneToOne,
    Sparse,
    as_pair,
)
from nmcompiler.ir.network import Network, Projection

from .formats import Fmt


# =========================================================================== weights
def top_magnitude(lo: int, hi: int) -> int:
    """Largest magnitude every weight of the projection can reach (254 for Loihi's
    mixed sign mode, 127 for signed 8 bits, 255 single-sign)."""
    return hi if hi > 0 else -lo


def weights_of(net: Network, proj: Projection) -> np.ndarray:
    """The weights of ``proj`` as one flat float array."""
    conn = proj.conn
    if isinstance(conn, (Dense, Sparse, Conv2d)):
        return np.asarray(conn.weight, dtype=np.float64).reshape(-1)
    if isinstance(conn, OneToOne):
        return np.atleast_1d(np.asarray(conn.weight, dtype=np.float64))
    return np.array([conn.scale()])


def pool_as_conv(net: Network, proj: Projection) -> Conv2d:
    """The pooling projection ``proj`` as a depthwise convolution of equal weights."""
    conn = proj.conn
    c = net.shape_of(proj.pre)[0]
    kh, kw = as_pair(conn.kernel)
    stride = conn.stride if conn.stride is not None else conn.kernel
    return Conv2d(weight=np.full((c, 1, kh, kw), conn.scale()), stride=as_pair(stride),
                  padding=as_pair(conn.padding), groups=c)


def with_weight(conn: Any, w: np.ndarray) -> Any:
    """A copy of connectivity ``conn`` with its weights replaced by ``w``."""
    if isinstance(conn, Dense):
        return Dense(weight=w.reshape(conn.weight.shape), delays=conn.delays)
    if isinstance(conn, Sparse):
        return Sparse(indptr=conn.indptr, indices=conn.indices, weight=w, n_post=conn.n_post,
                      delays=conn.delays)
    if isinstance(conn, OneToOne):
        ww = float(w[0]) if np.ndim(conn.weight) == 0 else w.reshape(np.shape(conn.weight))
        return OneToOne(weight=ww, delays=conn.delays)
    return Conv2d(weight=w.reshape(conn.weight.shape), stride=conn.stride,
                  padding=conn.padding, dilation=conn.dilation, groups=conn.groups)


def quant_weights(w: np.ndarray, k: float, fmt: Fmt, rng: tuple[int, int, int],
                   amax: float | None = None, mantissas: bool = True
                   ) -> tuple[np.ndarray | None, int, np.ndarray]:
    """(mantissas, exponent, quantised weights in state units) for scale ``k``
    (``amax``: ``_abs_max(w)`` when already known). ``mantissas=False`` turns the
    mantissa array into the state-unit one in place and returns None for it (one array
    of the weights' size fewer; the mantissas are ``q / 2**(s0 + e)``, exactly)."""
    lo, hi, step = rng
    top = top_magnitude(lo, hi)
    amax = _abs_max(w) if amax is None else amax
    e = fmt.emin
    if amax > 0:
        need = math.ceil(math.log2(k * amax / top)) - fmt.s0 if k * amax > 0 else fmt.emin
        e = min(max(need, fmt.emin), fmt.emax)
        while e > fmt.emin and k * amax <= top * 2.0 ** (fmt.s0 + e - 1):
            e -= 1
        while e < fmt.emax and k * amax > top * 2.0 ** (fmt.s0 + e):
            e += 1
    unit = 2.0 ** (fmt.s0 + e)
    m = np.multiply(k, w)  # the same operations as step * rint(k * w / unit / step), in place
    m /= unit
    if step != 1:
        m /= step
    np.rint(m, out=m)
    if step != 1:
        m *= step
    np.clip(m, lo, hi, out=m)
    if not mantissas:
        m *= unit  # a power of two: exact
        return None, e, m
    return m, e, m * unit


def _abs_max(w: np.ndarray) -> float:
    """``max |w|`` without an ``|w|`` temporary."""
    return float(max(np.max(w), -np.min(w))) if w.size else 0.0


class Extremes:
    """``max(w)``, ``min(w)``, ``max |w|`` (:func:`_abs_max`) and the index of the first
    largest ``|w|`` of a flat weight array, from one ``argmax`` and one ``argmin`` (a
    projection's weights are scanned once instead of once per use)."""

    __slots__ = ("wmax", "wmin", "amax", "iabs")

    def __init__(self, w: np.ndarray) -> None:
        if w.size == 0:
            self.wmax = self.wmin = self.amax = 0.0
            self.iabs = -1
            return
        a, b = int(np.argmax(w)), int(np.argmin(w))
        hi, lo = w.flat[a], w.flat[b]
        self.wmax, self.wmin = float(hi), float(lo)
        self.amax = float(max(hi, -lo))
        self.iabs = a if abs(float(hi)) >= abs(float(lo)) else b
