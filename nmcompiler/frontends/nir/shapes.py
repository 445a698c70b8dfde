"""Shape inference of a flat NIR graph, and the linear map of each stateless node.

Inputs declare their shapes; a neuron node's shape is its parameters' shape (a scalar
parameter takes the shape of its input, with a warning); a linear node's output shape
follows from its input shape through :data:`GEOMETRY`, one function per NIR node type.
Shapes are NIR's (``(C, L)`` for 1-D grids); :func:`chw` gives the IR's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from nmcompiler import ir

from .. import nir_linear as lin
from .graph import FlatNode, ImportContext

__all__ = ["as_array", "chw", "geometry", "GEOMETRY", "Shapes", "infer_shapes"]


def as_array(x: Any) -> np.ndarray:
    """A numpy array of a parameter (torch tensors are detached first)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _shape_of(x: Any) -> tuple[int, ...] | None:
    if x is None:
        return None
    a = as_array(x).reshape(-1)
    if a.dtype == object or a.size == 0 and x is None:
        return None
    return tuple(int(v) for v in a)


_PARAMS = {
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "IF": ("r", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "Threshold": ("threshold",),
}


def _neuron_declared(fn: FlatNode, ctx: ImportContext) -> tuple[int, ...]:
    shapes = {}
    for p in _PARAMS[fn.typ]:
        val = getattr(fn.obj, p, None)
        if val is None:
            if p in ("v_reset", "w_in"):
                continue
            raise ctx.fail(fn.name, "NIR parameters", f"{fn.typ} node has no '{p}'",
                           "the file is damaged")
        a = as_array(val)
        if a.dtype.kind not in "biuf":
            raise ctx.fail(fn.name, "numeric parameters", f"parameter '{p}' has dtype "
                           f"{a.dtype}", "parameters are float arrays")
        shapes[p] = a.shape
    big = {p: s for p, s in shapes.items() if int(np.prod(s)) > 1}
    if big:
        first = next(iter(big.values()))
        for p, s in big.items():
            if s != first:
                raise ctx.fail(fn.name, "parameter shapes", f"parameter '{p}' has shape {s} "
                               f"but '{next(iter(big))}' has {first} (wrong array shapes)",
                               "every parameter of a neuron node has the layer's shape")
        for p in shapes:
            if p not in big and p != "w_in":
                ctx.defect(fn.name, "scalar parameter", f"parameter '{p}' is a scalar where "
                           f"an array of shape {first} is expected; broadcast",
                           "write one value per neuron")
        return first
    vals = [s for p, s in shapes.items() if p != "w_in"] or list(shapes.values())
    return max(vals, key=len) if vals else ()


def _flatten_shape(shape: tuple[int, ...], start: int, end: int) -> tuple[int, ...]:
    n = len(shape)
    s = start + n if start < 0 else start
    e = end + n if end < 0 else end
    if not (0 <= s <= e < n):
        return (int(np.prod(shape)),)
    return shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:]


def chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The IR shape of a NIR shape: (C, L) becomes (C, 1, L) (Conv1d as Conv2d, H = 1)."""
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)


def _pad(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int], fn: FlatNode,
         ctx: ImportContext) -> tuple[int, int]:
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            tot = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            if any(t % 2 for t in tot):
                raise ctx.fail(fn.name, "padding", "'same' padding with an even kernel is "
                               "asymmetric, which the IR cannot express",
                               "use an odd kernel or explicit padding")
            return (tot[0] // 2, tot[1] // 2)
        raise ctx.fail(fn.name, "padding", f"has unknown padding {padding!r}",
                       "use 'same', 'valid' or integers")
    return lin.pair(as_array(padding).reshape(-1).tolist() * (2 if as_array(padding).size == 1
                                                              else 1))



# ---------------------------------------------------------------- linear nodes, one per type
Geometry = tuple[lin.Op, tuple[int, ...]]


def _affine(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    n_in = int(np.prod(in_shape))
    w = as_array(fn.obj.weight).astype(np.float64)
    if w.ndim != 2:
        raise ctx.fail(fn.name, "weight shape", f"{fn.typ} weight has shape {w.shape}, "
                       "expected (n_out, n_in) (wrong array shapes)", "use a 2-D weight")
    if w.shape[1] != n_in:
        raise ctx.fail(fn.name, "weight shape", f"{fn.typ} weight {w.shape} takes "
                       f"{w.shape[1]} inputs but receives shape {in_shape} (wrong array "
                       "shapes)", "fix the weight or the edge")
    if tuple(in_shape) != (w.shape[1],):
        ctx.defect(fn.name, "flat input", f"{fn.typ} receives shape {in_shape} without a "
                   "Flatten; flattened in C order", "insert a Flatten node")
    return lin.Op("matrix", n_in, w.shape[0], w), (w.shape[0],)


def _scale(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    n_in = int(np.prod(in_shape))
    s = as_array(fn.obj.scale).astype(np.float64)
    if s.shape != tuple(in_shape):
        if s.size == 1:
            ctx.defect(fn.name, "scalar parameter", f"scale is a scalar where shape "
                       f"{in_shape} is expected; broadcast", "write one value per channel")
        else:
            raise ctx.fail(fn.name, "scale shape", f"scale has shape {s.shape} but "
                           f"receives {in_shape} (wrong array shapes)", "fix the scale")
    diag = np.broadcast_to(s.reshape(-1) if s.size > 1 else s.reshape(()), (n_in,)).copy()
    return lin.Op("diag", n_in, n_in, diag), tuple(in_shape)


def _conv1d_geometry(fn: FlatNode, w: np.ndarray, ctx: ImportContext
                     ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(weight as (O, I, 1, L), stride, padding, dilation) of a Conv1d as a Conv2d."""
    o = fn.obj
    w = w[:, :, None, :]

    def p1(v: Any) -> tuple[int, int]:
        a = as_array(v).reshape(-1)
        return (1, int(a[0])) if a.dtype.kind in "iuf" else v
    stride, dil = p1(o.stride), p1(o.dilation)
    stride = (1, stride[1])
    dil = (1, dil[1])
    pad = o.padding
    if not isinstance(pad, (str, bytes)):
        pad = (0, int(as_array(pad).reshape(-1)[0]))
    else:
        pad = _pad(pad, (1, w.shape[3]), dil, fn, ctx)
    return w, stride, pad, dil


def _conv(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    o = fn.obj
    n_in = int(np.prod(in_shape))
    w = as_array(o.weight).astype(np.float64)
    one = fn.typ == "Conv1d"
    if w.ndim != (3 if one else 4):
        raise ctx.fail(fn.name, "weight shape", f"{fn.typ} weight has shape {w.shape} "
                       "(wrong array shapes)", "use PyTorch's OI(H)W layout")
    if len(in_shape) != (2 if one else 3):
        raise ctx.fail(fn.name, "input shape", f"{fn.typ} receives shape {in_shape}, "
                       f"expected {'(C, L)' if one else '(C, H, W)'} (wrong array shapes)",
                       "feed it a channel-first grid")
    c_in, h_in, w_in = chw(tuple(in_shape))
    in3 = (c_in, h_in, w_in)
    if one:
        w, stride, pad, dil = _conv1d_geometry(fn, w, ctx)
    else:
        stride = lin.pair(as_array(o.stride).reshape(-1).tolist() * 2)
        dil = lin.pair(as_array(o.dilation).reshape(-1).tolist() * 2)
        pad = _pad(o.padding, (w.shape[2], w.shape[3]), dil, fn, ctx)
    groups = int(as_array(o.groups).reshape(-1)[0])
    if groups < 1 or w.shape[0] % groups or w.shape[1] * groups != in3[0]:
        raise ctx.fail(fn.name, "channels", f"{fn.typ} weight {w.shape[:2]} with groups="
                       f"{groups} does not take {in3[0]} input channels (wrong array "
                       "shapes)", "C_in must equal weight.shape[1] * groups")
    conv = ir.Conv2d(weight=w, stride=stride, padding=pad, dilation=dil, groups=groups)
    out3 = ir.conv_output_shape(in3, conv)
    if min(out3) < 1:
        raise ctx.fail(fn.name, "output shape", f"{fn.typ} of input {in_shape} gives an "
                       "empty output", "check kernel, stride and padding")
    out = (out3[0], out3[2]) if one else out3
    return lin.Op("conv", n_in, int(np.prod(out3)), conv, in3, out3), out


def _pool(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    o = fn.obj
    n_in = int(np.prod(in_shape))
    if len(in_shape) != 3:
        raise ctx.fail(fn.name, "input shape", f"{fn.typ} receives shape {in_shape}, "
                       "expected (C, H, W) (wrong array shapes)", "pool a CHW grid")
    in3 = (in_shape[0], in_shape[1], in_shape[2])
    k = lin.pair(as_array(o.kernel_size).reshape(-1).tolist() * 2)
    s = lin.pair(as_array(o.stride).reshape(-1).tolist() * 2)
    p = _pad(o.padding, k, (1, 1), fn, ctx)
    cls = ir.SumPool2d if fn.typ == "SumPool2d" else ir.AvgPool2d
    pool = cls(kernel=k, stride=s, padding=p)
    out3 = ir.pool_output_shape(in3, pool)
    return lin.Op("pool", n_in, int(np.prod(out3)), pool, in3, out3), out3


def _flatten_node(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    o = fn.obj
    n_in = int(np.prod(in_shape))
    start = int(as_array(getattr(o, "start_dim", 0)).reshape(-1)[0])
    end = int(as_array(getattr(o, "end_dim", -1)).reshape(-1)[0])
    return lin.Op("ident", n_in, n_in), _flatten_shape(tuple(in_shape), start, end)


def _identity(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    """Delay (its delay is read later) and the Input / Output ports of a subgraph."""
    n_in = int(np.prod(in_shape))
    return lin.Op("ident", n_in, n_in), tuple(in_shape)


#: the linear map and output shape of each stateless NIR node type
GEOMETRY: dict[str, Callable[[FlatNode, tuple[int, ...], ImportContext], Geometry]] = {
    "Affine": _affine, "Linear": _affine, "Scale": _scale, "Conv1d": _conv, "Conv2d": _conv,
    "SumPool2d": _pool, "AvgPool2d": _pool, "Flatten": _flatten_node, "Delay": _identity,
    "Input": _identity, "Output": _identity,
}


def geometry(fn: FlatNode, in_shape: tuple[int, ...], ctx: ImportContext) -> Geometry:
    """(lin.Op without scaling info, NIR output shape) of a linear node."""
    return GEOMETRY[fn.typ](fn, in_shape, ctx)


def _declared_port(fn: FlatNode) -> tuple[int, ...] | None:
    o = fn.obj
    t = o.input_type if fn.typ == "Input" else o.output_type
    if not isinstance(t, dict) or not t:
        return None
    return _shape_of(next(iter(t.values())))



# ---------------------------------------------------------------- shape inference
@dataclass
class Shapes:
    """Output shape (NIR layout) of every node, and the linear map of every linear node."""

    out: dict[str, tuple[int, ...]]
    ops: dict[str, lin.Op]


class _Inference:
    """Shapes settle in node order once every predecessor is known; a cycle is entered
    at its first neuron, whose shape its parameters declare."""

    def __init__(self, nodes: dict[str, FlatNode], edges: list, ctx: ImportContext) -> None:
        self.nodes, self.ctx = nodes, ctx
        self.preds: dict[str, list[str]] = {n: [] for n in nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in nodes}
        for a, b in edges:
            self.preds[b].append(a)
            self.succs[a].append(b)
        self.out: dict[str, tuple] = {}
        self.ops: dict[str, Any] = {}
        self.declared: dict[str, tuple[int, ...]] = {}

    def run(self) -> Shapes:
        nodes, ctx = self.nodes, self.ctx
        for n, fn in nodes.items():
            if fn.kind == "input":
                self._settle_input(n, fn)
        self.declared = {n: _neuron_declared(fn, ctx) for n, fn in nodes.items()
                         if fn.kind == "neuron"}
        settle = {"neuron": self._settle_neuron, "output": self._settle_output,
                  "linear": self._settle_linear, "pass": self._settle_linear}
        pending = [n for n in nodes if n not in self.out]
        while pending:
            progress = False
            for n in list(pending):
                if all(p in self.out for p in self.preds[n]):
                    settle[nodes[n].kind](n, self._incoming(n))
                    pending.remove(n)
                    progress = True
            if not progress:
                self._enter_cycle(pending)
        self._check_neuron_inputs()
        return Shapes(self.out, self.ops)

    def _settle_input(self, n: str, fn: FlatNode) -> None:
        shp = _declared_port(fn)
        if shp is None or any(d < 1 for d in shp):
            raise self.ctx.fail(n, "input shape", f"Input node has no valid shape ({shp})",
                                "give the Input node a shape")
        if self.preds[n]:
            raise self.ctx.fail(n, "input edges", "Input node receives edges from "
                                + ", ".join(self.preds[n]), "Input nodes are sources")
        if (getattr(self.ctx, "batch_io", False) and len(shp) >= 2 and shp[0] == 1
                and any(self._expects_ndim(s) == len(shp) - 1 for s in self.succs[n])):
            shp = shp[1:]  # the exporter wrote its sample's batch axis (Norse)
        self.out[n] = shp

    def _expects_ndim(self, n: str) -> int | None:
        """How many axes node ``n`` takes as input, where its type or parameters say."""
        fn = self.nodes[n]
        t = getattr(fn.obj, "input_type", None)
        if isinstance(t, dict) and t:
            shp = _shape_of(next(iter(t.values())))
            if shp:
                return len(shp)
        if fn.kind == "neuron":
            return len(_neuron_declared(fn, self.ctx))
        return {"Affine": 1, "Linear": 1, "Conv1d": 2, "Conv2d": 3}.get(fn.typ)

    def _incoming(self, n: str) -> tuple | None:
        preds = self.preds[n]
        shp = [self.out[p] for p in preds]
        if not shp:
            return None
        for p, s in zip(preds, shp, strict=True):
            if s == shp[0]:
                continue
            if int(np.prod(s)) == int(np.prod(shp[0])):
                self.ctx.defect(n, "input shapes", f"receives shape {s} from '{p}' and "
                                f"{shp[0]} from '{preds[0]}'; flattened", "reshape one")
                continue
            raise self.ctx.fail(n, "input shapes", f"receives shape {s} from '{p}' but "
                                f"{shp[0]} from '{preds[0]}' (wrong array shapes)",
                                "every edge into a node carries the same shape")
        return shp[0]

    def _settle_neuron(self, n: str, inc: tuple | None) -> None:
        decl = self.declared[n]
        shape = decl
        typ = self.nodes[n].typ
        if inc is not None and tuple(inc) != tuple(decl):
            if (int(np.prod(decl)) == 1 and int(np.prod(inc)) > 1 or decl == ()) and getattr(
                    self.ctx, "scalar_params", False):
                shape = tuple(inc)  # the framework writes shared parameters as scalars
            elif int(np.prod(decl)) == 1 and int(np.prod(inc)) > 1 or decl == ():
                self.ctx.defect(n, "scalar parameter", f"{typ} parameters are scalars "
                                f"where arrays of shape {inc} are expected; broadcast",
                                "write one value per neuron")
                shape = tuple(inc)
            elif int(np.prod(decl)) == int(np.prod(inc)):
                self.ctx.defect(n, "input shapes", f"receives shape {inc} but its parameters "
                                f"have shape {decl}; flattened", "match the shapes")
            else:
                raise self.ctx.fail(n, "input shapes", f"{typ} of shape {decl} receives "
                                    f"shape {inc} (wrong array shapes)",
                                    "match the layer sizes")
        self.out[n] = tuple(shape) if shape != () else (1,)

    def _settle_output(self, n: str, inc: tuple | None) -> None:
        if inc is None:
            raise self.ctx.fail(n, "output edges", "Output node receives no edge",
                                "connect it or remove it")
        decl = _declared_port(self.nodes[n])
        k = len(decl) - len(inc) if decl is not None else 0
        if (decl is not None and getattr(self.ctx, "batch_io", False) and k >= 1 and len(inc) >= 1
                and all(d == 1 for d in decl[:k]) and tuple(decl[k:]) == tuple(inc)):
            # the exporter wrote its sample's batch axis (Norse) or batch and time axes
            # (Rockpool: an output of shape (1, 1, N))
            decl = tuple(inc)
        if decl is not None and tuple(decl) != tuple(inc):
            self.ctx.defect(n, "output shape", f"Output declares shape {decl} but receives "
                            f"{inc}; the received shape is used", "fix the Output's shape")
        self.out[n] = tuple(inc)

    def _settle_linear(self, n: str, inc: tuple | None) -> None:
        fn = self.nodes[n]
        if inc is None:
            raise self.ctx.fail(n, "node inputs", f"{fn.typ} node receives no edge",
                                "connect it or remove it")
        op, shp = geometry(fn, inc, self.ctx)
        if fn.kind == "pass":
            decl = _declared_port(fn)
            if decl is not None and tuple(decl) != tuple(inc):
                self.ctx.defect(n, "port shape", f"subgraph port declares {decl} but "
                                f"receives {inc}", "fix the subgraph's Input/Output shape")
        if fn.typ == "Delay":
            d = as_array(fn.obj.delay)
            if d.shape != tuple(inc) and d.size != 1:
                raise self.ctx.fail(n, "delay shape", f"delay has shape {d.shape} but "
                                    f"receives {inc} (wrong array shapes)", "fix the delay")
        self.out[n], self.ops[n] = tuple(shp), op

    def _enter_cycle(self, pending: list[str]) -> None:
        cyc = [n for n in pending if self.nodes[n].kind == "neuron"]
        if not cyc:
            n = pending[0]
            raise self.ctx.fail(n, "shape inference", "its shape cannot be inferred: it is "
                                "fed by " + (", ".join(p for p in self.preds[n]
                                                       if p not in self.out) or "nothing")
                                + " only in a loop without neurons",
                                "a cycle must pass through a neuron node")
        self._settle_neuron(cyc[0], None)
        pending.remove(cyc[0])

    def _check_neuron_inputs(self) -> None:
        """Neurons' inputs, now that all shapes are known (cycles)."""
        for n, fn in self.nodes.items():
            if fn.kind == "neuron" and self.preds[n]:
                inc = self._incoming(n)
                if inc is not None and int(np.prod(inc)) != int(np.prod(self.out[n])):
                    raise self.ctx.fail(n, "input shapes", f"{fn.typ} of shape {self.out[n]} "
                                        f"receives shape {inc} (wrong array shapes)",
                                        "match the layer sizes")


def infer_shapes(nodes: dict[str, FlatNode], edges: list, ctx: ImportContext) -> Shapes:
    """Shapes of every node of the flat graph, checked against the edges."""
    return _Inference(nodes, edges, ctx).run()
