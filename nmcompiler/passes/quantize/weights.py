"""Weight quantisation: mantissas and a shared exponent per projection."""

from __future__ import annotations

import dataclasses
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


def finest_exp(a: float, top: int, fmt: Fmt) -> int:
    """Smallest exponent in the target's range whose grid ``top * 2**(s0 + e)`` holds the
    state-unit magnitude ``a`` (the largest when none does)."""
    e = fmt.emin
    if a > 0:
        need = math.ceil(math.log2(a / top)) - fmt.s0
        e = min(max(need, fmt.emin), fmt.emax)
        while e > fmt.emin and a <= top * 2.0 ** (fmt.s0 + e - 1):
            e -= 1
        while e < fmt.emax and a > top * 2.0 ** (fmt.s0 + e):
            e += 1
    return e


def _round_on(m: np.ndarray, unit: float, rng: tuple[int, int, int]) -> np.ndarray:
    """``m`` (state units, modified in place) as mantissas on ``rng``'s grid."""
    lo, hi, step = rng
    m /= unit
    if step != 1:
        m /= step
    np.rint(m, out=m)
    if step != 1:
        m *= step
    np.clip(m, lo, hi, out=m)
    return m


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
    e = finest_exp(k * amax, top, fmt) if amax > 0 else fmt.emin
    unit = 2.0 ** (fmt.s0 + e)
    m = _round_on(np.multiply(k, w), unit, rng)  # step * rint(k * w / unit / step)
    if not mantissas:
        m *= unit  # a power of two: exact
        return None, e, m
    return m, e, m * unit


#: ``split`` values at or above this also split the groups by sign (:func:`quant_groups`)
SIGN_SPLIT = 16


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    """One synapse group of a projection: its own weight exponent and sign mode.

    ``members``: flat indices of the projection's synapses in the group (None: all);
    ``q``: their weights in state units (``members``' length, or the projection's)."""

    exp: int
    members: np.ndarray | None
    q: np.ndarray
    mode: str
    role: str


def split_members(w: np.ndarray, k: float, fmt: Fmt, e_lo: int) -> np.ndarray:
    """Flat indices of the weights a group of exponent ``e_lo`` holds (the small ones:
    ``|k w| <= top * 2**(s0 + e_lo)`` with ``top`` the mixed range's)."""
    lo, hi, _ = fmt.rules.mantissa_range(fmt.wbits, fmt.wsigned, "mixed") or (0, 0, 1)
    top = min(-lo, hi) if fmt.wsigned or fmt.family == "loihi" else hi
    return np.flatnonzero(np.abs(w) * k <= top * 2.0 ** (fmt.s0 + e_lo))


def quant_groups(w: np.ndarray, k: float, fmt: Fmt, rng: tuple[int, int, int], amax: float,
                 split: int, obj: str, tname: str, mode0: str = "mixed"
                 ) -> tuple[np.ndarray, list[Group]]:
    """Weights of one projection at scale ``k`` over one or more synapse groups
    (docs/passes.md#weight-groups); returns (total quantised weights in state units,
    groups).

    * ``split = s > 0``: two groups by magnitude, the small weights on a grid ``2**s``
      finer (exponent ``e - s``) than the large ones (same synapses, more precision);
      ``split + SIGN_SPLIT``: each of those groups split again by sign, so that Loihi's
      single-sign modes keep every mantissa where the mixed mode keeps even ones only;
      each group takes the finest exponent that holds its largest weight;
    * ``fmt.chain = c > 0``: ``1 + c`` groups over the same synapses, group ``g`` holding
      the rounding residual of the groups before it on a grid :func:`chain_shift` finer
      (more synapses, more precision: ``--weight-bits`` above the chip's width);
    * else one group, the finest exponent that holds the largest weight.
    """
    from .formats import chain_shift, mantissa_range

    lo, hi, step = rng
    top = top_magnitude(lo, hi)
    if fmt.chain > 0:
        sh = chain_shift(fmt)
        e0 = min(max(finest_exp(k * amax, top, fmt), fmt.emin + fmt.chain * sh), fmt.emax)
        q = _round_on(np.multiply(k, w), 2.0 ** (fmt.s0 + e0), rng) * 2.0 ** (fmt.s0 + e0)
        groups = [Group(e0, None, q.copy(), mode0, "weights")]
        r = np.multiply(k, w) - q
        e = e0
        for _ in range(fmt.chain):
            e -= sh
            if e < fmt.emin:
                break
            idx = np.flatnonzero(r)
            if idx.size == 0:
                break
            rr = r[idx]
            *r3, mode = mantissa_range(fmt, rr, obj, tname)
            unit = 2.0 ** (fmt.s0 + e)
            mq = _round_on(rr.copy(), unit, tuple(r3)) * unit  # type: ignore[arg-type]
            keep = mq != 0
            if not np.any(keep):
                continue
            groups.append(Group(e, idx[keep], mq[keep], mode, "residual"))
            q[idx[keep]] += mq[keep]
            r[idx[keep]] -= mq[keep]
        return q, groups
    e = finest_exp(k * amax, top, fmt) if amax > 0 else fmt.emin
    s, by_sign = split % SIGN_SPLIT, split >= SIGN_SPLIT
    parts: list[tuple[np.ndarray | None, str]] = [(None, "weights")]
    if s > 0 and e - s >= fmt.emin and w.size:
        small = split_members(w, k, fmt, e - s)
        if 0 < small.size < w.size:
            is_large = np.ones(w.size, dtype=bool)
            is_large[small] = False
            parts = [(np.flatnonzero(is_large), "large weights"), (small, "small weights")]
    if by_sign:  # single-sign groups keep every mantissa (Loihi's mixed mode: even only)
        signed = []
        for idx, role in parts:
            wg = w if idx is None else w[idx]
            neg = wg < 0
            if neg.any() and not neg.all():
                at = np.arange(w.size) if idx is None else idx
                signed += [(at[~neg], f"{role}, excitatory"), (at[neg], f"{role}, inhibitory")]
            else:
                signed.append((idx, role))
        parts = signed
    if len(parts) == 1:
        _, e, q = quant_weights(w, k, fmt, rng, amax, mantissas=False)
        return q, [Group(e, None, q, mode0, "weights")]
    q = np.empty(w.shape, dtype=np.float64)
    groups = []
    for idx, role in parts:
        wg = w[idx]
        *g3, mode = mantissa_range(fmt, wg, obj, tname)
        ee = finest_exp(k * float(np.max(np.abs(wg))), top_magnitude(g3[0], g3[1]), fmt)
        unit = 2.0 ** (fmt.s0 + ee)
        qg = _round_on(np.multiply(k, wg), unit, tuple(g3)) * unit  # type: ignore[arg-type]
        q[idx] = qg
        groups.append(Group(ee, idx, qg, mode, role))
    return q, groups


def sign_split_gains(fmt: Fmt) -> bool:
    """Do single-sign groups hold finer mantissas than a mixed one (Loihi: the mixed mode
    clears the lowest bit)?"""
    mixed = fmt.rules.mantissa_range(fmt.wbits, fmt.wsigned, "mixed")
    exc = fmt.rules.mantissa_range(fmt.wbits, fmt.wsigned, "excitatory")
    return mixed is not None and exc is not None and mixed[2] > exc[2]


def group_conn(conn: Any, members: np.ndarray, q: np.ndarray, n_pre: int) -> Sparse:
    """The synapses ``members`` (flat indices into :func:`weights_of`'s order) of a Dense
    or Sparse connectivity ``conn`` as a Sparse one with weights ``q``."""
    if isinstance(conn, Dense):
        n_post = conn.weight.shape[0]
        post, pre = np.divmod(members, n_pre)
        dl = None if conn.delays is None else \
            np.broadcast_to(np.asarray(conn.delays), conn.weight.shape).reshape(-1)[members]
    else:
        n_post = conn.n_post
        pre_all = np.repeat(np.arange(len(conn.indptr) - 1), np.diff(conn.indptr))
        pre, post = pre_all[members], np.asarray(conn.indices)[members]
        dl = None if conn.delays is None else \
            np.broadcast_to(np.asarray(conn.delays), (len(conn.weight),))[members]
    return Sparse.from_coo(pre=pre, post=post, weight=q, n_pre=n_pre, n_post=n_post,
                           delays=dl)


def row_abs_max(conn: Any) -> float:
    """The largest summed ``|w|`` into one postsynaptic neuron of connectivity ``conn``
    (the worst one-step input of binary spikes; for Conv2d per output channel)."""
    if isinstance(conn, Dense):
        return float(np.max(np.abs(conn.weight).sum(axis=1))) if conn.weight.size else 0.0
    if isinstance(conn, Sparse):
        s = np.bincount(conn.indices, weights=np.abs(conn.weight), minlength=conn.n_post)
        return float(s.max()) if s.size else 0.0
    if isinstance(conn, OneToOne):
        return float(np.max(np.abs(conn.weight)))
    w = np.abs(np.asarray(conn.weight))
    return float(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0


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
