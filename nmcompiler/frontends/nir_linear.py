"""Linear maps between neuron layers of a NIR graph, and their composition.

The IR has one linear map per projection (a projection is "a linear map followed by a
neuron", docs/architecture.md#connectivity-kinds), while a NIR graph may chain several
stateless nodes between two neuron layers (``SumPool2d -> Conv2d``,
``SumPool2d -> Flatten -> Affine``, ``Affine -> Affine``, ``Scale``...). :func:`compose`
folds such a chain into one map, exactly (up to the order of floating-point sums):

* ``Flatten`` is a reshape: flat C order is the IR's layout, so it disappears.
* ``Scale`` and the per-neuron input gain of the discretisation are diagonal maps: they
  fold into the neighbouring weights (per output channel of a convolution; a scale that
  varies inside a channel turns the convolution into an explicit matrix).
* Two dense maps multiply; a dense map next to a convolution or pooling multiplies with
  the convolution's explicit (sparse) matrix.
* Pool -> conv, conv -> pool and conv -> conv compose into one convolution when the second
  has no padding: with strides ``s1, s2``, dilations ``d1, d2`` and kernels ``w1, w2`` the
  composition is a convolution of stride ``s1*s2`` whose kernel has taps at offsets
  ``s1*d2*i + d1*j`` with weight ``sum_o1 w2[o2, o1, i] w1[o1, c, j]``. With padding in
  the second map the two are multiplied as explicit matrices instead.

Everything works on plain numpy / scipy arrays; shapes are the IR's (CHW for grids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nmcompiler import ir

__all__ = ["Op", "compose", "matrix", "to_connectivity", "scale_out", "apply", "pair"]

#: Largest explicit dense matrix (entries) built while composing maps.
MAX_DENSE = 50_000_000


@dataclass
class Op:
    """One linear map.

    Attributes:
        kind: "ident", "diag", "matrix", "conv" or "pool".
        n_in, n_out: sizes of input and output.
        in3, out3: CHW shapes (conv / pool only).
        w: diag: ``(n,)`` gains; matrix: ``(n_out, n_in)`` ndarray or scipy sparse;
            conv: an :class:`~nmcompiler.ir.Conv2d`; pool: an
            :class:`~nmcompiler.ir.SumPool2d` / :class:`~nmcompiler.ir.AvgPool2d`.
    """

    kind: str
    n_in: int
    n_out: int
    w: Any = None
    in3: tuple[int, int, int] | None = None
    out3: tuple[int, int, int] | None = None

    @property
    def grid_in(self) -> tuple[int, int, int]:
        """``in3`` of a conv or pool map (set for every such map)."""
        if self.in3 is None:
            raise ValueError(f"a {self.kind} map has no input grid")
        return self.in3

    @property
    def grid_out(self) -> tuple[int, int, int]:
        """``out3`` of a conv or pool map (set for every such map)."""
        if self.out3 is None:
            raise ValueError(f"a {self.kind} map has no output grid")
        return self.out3


def pair(x: Any) -> tuple[int, int]:
    """``(x, x)`` of a scalar, the first two entries of a sequence, as ints."""
    if isinstance(x, (tuple, list, np.ndarray)):
        return (int(x[0]), int(x[1]))
    return (int(x), int(x))


def _as_conv(op: Op) -> ir.Conv2d:
    """A pooling op as the equivalent depthwise convolution."""
    if op.kind == "conv":
        return op.w
    pool = op.w
    c = op.grid_in[0]
    kh, kw = pair(pool.kernel)
    weight = np.full((c, 1, kh, kw), pool.scale())
    stride = pair(pool.stride if pool.stride is not None else pool.kernel)
    return ir.Conv2d(weight=weight, stride=stride, padding=pair(pool.padding), groups=c)


def _full_weight(conv: ir.Conv2d) -> np.ndarray:
    """OIHW weight with groups expanded to a full (groups=1) weight."""
    w = np.asarray(conv.weight, dtype=np.float64)
    g = int(conv.groups)
    if g == 1:
        return w
    o, cig, kh, kw = w.shape
    og = o // g
    full = np.zeros((o, cig * g, kh, kw))
    for k in range(g):
        full[k * og:(k + 1) * og, k * cig:(k + 1) * cig] = w[k * og:(k + 1) * og]
    return full


def _conv_matrix(conv: ir.Conv2d, in3: tuple[int, ...], out3: tuple[int, ...]) -> sp.csr_matrix:
    """The explicit ``(n_out, n_in)`` sparse matrix of a convolution (PyTorch semantics)."""
    w = np.asarray(conv.weight, dtype=np.float64)
    c_in, h, wd = in3
    c_out, ho, wo = out3
    _, cig, kh, kw = w.shape
    g = int(conv.groups)
    og = c_out // g
    sh, sw = pair(conv.stride)
    ph, pw = pair(conv.padding)
    dh, dw = pair(conv.dilation)
    o, cl, y, x = np.meshgrid(
        np.arange(c_out), np.arange(cig), np.arange(ho), np.arange(wo), indexing="ij"
    )
    c = (o // og) * cig + cl
    rows, cols, vals = [], [], []
    for i in range(kh):
        for j in range(kw):
            iy = y * sh + i * dh - ph
            ix = x * sw + j * dw - pw
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
            rows.append(((o * ho + y) * wo + x)[ok])
            cols.append(((c * h + iy) * wd + ix)[ok])
            vals.append(w[o, cl, i, j][ok])
    m = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(c_out * ho * wo, c_in * h * wd),
    )
    return m.tocsr()


def matrix(op: Op) -> Any:
    """The explicit matrix of an op (ndarray or scipy sparse), ``(n_out, n_in)``."""
    if op.kind == "ident":
        return sp.identity(op.n_in, format="csr")
    if op.kind == "diag":
        return sp.diags(np.broadcast_to(op.w, (op.n_in,)).astype(np.float64), format="csr")
    if op.kind == "matrix":
        return op.w
    return _conv_matrix(_as_conv(op), op.grid_in, op.grid_out)


def _matmul(a: Any, b: Any) -> Any:
    """``a @ b`` for any mix of ndarray and scipy sparse."""
    if sp.issparse(a) and sp.issparse(b):
        return (a @ b).tocsr()
    if sp.issparse(a):
        return np.asarray(a @ b)
    if sp.issparse(b):
        return np.asarray((b.T @ a.T).T)
    return a @ b


def apply(op: Op, v: np.ndarray) -> np.ndarray:
    """``op(v)`` for a 1-D vector."""
    return np.asarray(_matmul(matrix(op), v.reshape(-1, 1))).reshape(-1)


def _compose_convs(a: ir.Conv2d, b: ir.Conv2d, in3: tuple[int, ...], mid3: tuple[int, ...]
                   ) -> ir.Conv2d | None:
    """``b(a(x))`` as one convolution, or None where that is not exact.

    Padding of ``b`` pads ``a``'s output with zeros; that equals padding ``x`` by
    ``s1 * pad2`` more only where ``a``'s windows over the extra border read padding alone:
    per axis ``d1 (k1 - 1) + 1 <= s1 + pad1`` and ``s1 * n_mid >= n_in + pad1``.
    """
    w1, w2 = _full_weight(a), _full_weight(b)
    s1, s2 = pair(a.stride), pair(b.stride)
    d1, d2 = pair(a.dilation), pair(b.dilation)
    k1, k2 = w1.shape[2:], w2.shape[2:]
    p1, p2 = pair(a.padding), pair(b.padding)
    for ax in (0, 1):
        if p2[ax] and not (d1[ax] * (k1[ax] - 1) + 1 <= s1[ax] + p1[ax]
                           and s1[ax] * mid3[1 + ax] >= in3[1 + ax] + p1[ax]):
            return None
    size = [s1[ax] * d2[ax] * (k2[ax] - 1) + d1[ax] * (k1[ax] - 1) + 1 for ax in (0, 1)]
    out = np.zeros((w2.shape[0], w1.shape[1], size[0], size[1]))
    for i0 in range(k2[0]):
        for i1 in range(k2[1]):
            w2i = w2[:, :, i0, i1]
            for j0 in range(k1[0]):
                for j1 in range(k1[1]):
                    m0 = s1[0] * d2[0] * i0 + d1[0] * j0
                    m1 = s1[1] * d2[1] * i1 + d1[1] * j1
                    out[:, :, m0, m1] += w2i @ w1[:, :, j0, j1]
    return ir.Conv2d(
        weight=out,
        stride=(s1[0] * s2[0], s1[1] * s2[1]),
        padding=(p1[0] + s1[0] * p2[0], p1[1] + s1[1] * p2[1]),
    )


def _grid_scale_per_channel(v: np.ndarray, shape3: tuple[int, ...]) -> np.ndarray | None:
    """Per-channel values if ``v`` (flat CHW) is constant inside each channel."""
    x = np.broadcast_to(v, (int(np.prod(shape3)),)).reshape(shape3)
    per = x[:, :1, :1]
    if np.array_equal(x, np.broadcast_to(per, shape3)):
        return per.reshape(-1)
    return None


def _to_matrix_op(op: Op) -> Op:
    return Op("matrix", op.n_in, op.n_out, matrix(op))


def scale_out(op: Op, s: np.ndarray) -> Op:
    """``diag(s) @ op``."""
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), (op.n_out,))
    if np.all(s == 1.0):
        return op
    if op.kind == "ident":
        return Op("diag", op.n_in, op.n_out, s.copy())
    if op.kind == "diag":
        return Op("diag", op.n_in, op.n_out, np.broadcast_to(op.w, (op.n_in,)) * s)
    if op.kind == "matrix":
        w = op.w.multiply(s[:, None]).tocsr() if sp.issparse(op.w) else op.w * s[:, None]
        return Op("matrix", op.n_in, op.n_out, w)
    per = _grid_scale_per_channel(s, op.grid_out)
    if per is None:
        return scale_out(_to_matrix_op(op), s)
    conv = _as_conv(op)
    w = np.asarray(conv.weight, dtype=np.float64) * per[:, None, None, None]
    new = ir.Conv2d(weight=w, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups)
    return Op("conv", op.n_in, op.n_out, new, op.in3, op.out3)


def _scale_in(op: Op, s: np.ndarray) -> Op:
    """``op @ diag(s)``."""
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), (op.n_in,))
    if np.all(s == 1.0):
        return op
    if op.kind in ("ident", "diag"):
        return scale_out(op, s)
    if op.kind == "matrix":
        w = op.w.multiply(s[None, :]).tocsr() if sp.issparse(op.w) else op.w * s[None, :]
        return Op("matrix", op.n_in, op.n_out, w)
    per = _grid_scale_per_channel(s, op.grid_in)
    if per is None:
        return _scale_in(_to_matrix_op(op), s)
    conv = _as_conv(op)
    w = np.asarray(conv.weight, dtype=np.float64)
    cig = w.shape[1]
    og = w.shape[0] // int(conv.groups)
    idx = (np.arange(w.shape[0])[:, None] // og) * cig + np.arange(cig)[None, :]
    new = ir.Conv2d(weight=w * per[idx][:, :, None, None], stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    return Op("conv", op.n_in, op.n_out, new, op.in3, op.out3)


def _then(a: Op, b: Op) -> Op:
    """``b(a(x))`` as one op."""
    if a.kind == "ident":
        return b
    if b.kind == "ident":
        return a
    if a.kind == "diag":
        return _scale_in(b, a.w)
    if b.kind == "diag":
        return scale_out(a, b.w)
    if a.kind in ("conv", "pool") and b.kind in ("conv", "pool"):
        conv = _compose_convs(_as_conv(a), _as_conv(b), a.grid_in, a.grid_out)
        if conv is not None and ir.conv_output_shape(a.grid_in, conv) == tuple(b.grid_out):
            return Op("conv", a.n_in, b.n_out, conv, a.in3, b.out3)
    if a.n_in * b.n_out > MAX_DENSE and not (a.kind == "matrix" and sp.issparse(a.w)):
        ma, mb = matrix(a), matrix(b)
        return Op("matrix", a.n_in, b.n_out, (sp.csr_matrix(mb) @ sp.csr_matrix(ma)).tocsr())
    return Op("matrix", a.n_in, b.n_out, _matmul(matrix(b), matrix(a)))


def compose(ops: list[Op], n: int) -> Op:
    """One op equal to applying ``ops`` in order (identity of size n if empty)."""
    ops = [o for o in ops if o.kind != "ident"]
    if not ops:
        return Op("ident", n, n)
    cur = ops[0]
    for nxt in ops[1:]:
        cur = _then(cur, nxt)
    return cur


def to_connectivity(op: Op) -> Any:
    """The IR connectivity of an op."""
    if op.kind == "ident":
        return ir.OneToOne(weight=1.0)
    if op.kind == "diag":
        w = np.broadcast_to(np.asarray(op.w, dtype=np.float64), (op.n_in,))
        if np.all(w == w[0]):
            return ir.OneToOne(weight=float(w[0]))
        return ir.OneToOne(weight=w.copy())
    if op.kind == "conv":
        c = op.w
        return ir.Conv2d(weight=np.asarray(c.weight, dtype=np.float64), stride=pair(c.stride),
                         padding=pair(c.padding), dilation=pair(c.dilation),
                         groups=int(c.groups))
    if op.kind == "pool":
        return op.w
    w = op.w
    if sp.issparse(w):
        if w.nnz > 0.25 * w.shape[0] * w.shape[1] and w.shape[0] * w.shape[1] <= MAX_DENSE:
            return ir.Dense(weight=np.asarray(w.toarray(), dtype=np.float64))
        coo = w.tocoo()
        return ir.Sparse.from_coo(pre=coo.col, post=coo.row, weight=coo.data.astype(np.float64),
                                  n_pre=w.shape[1], n_post=w.shape[0])
    return ir.Dense(weight=np.asarray(w, dtype=np.float64))
