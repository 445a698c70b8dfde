"""A compiled Speck network as DYNAP-CNN layers: the plan both artifacts are written from.

:func:`plan_layers` turns a :class:`~nmcompiler.compiled.CompiledNetwork` compiled for a
Speck target into a :class:`SpeckPlan`: one :class:`SpeckLayer` per population (one
population per core, as the partition made it), each a convolution with integer
weights, an integrate-and-fire stage and the pooling its source applies on the way in.
This is the layer model of sinabs' ``DynapcnnLayer`` (``conv -> IAFSqueeze -> sum-pool
per destination``) and of samna's ``CNNLayerConfig``; docs/speck_backend.md lists where
every field comes from.

Structure the compiler may have folded together is taken apart again, exactly:

* a convolution that is a sum pooling followed by a convolution (the NIR importer
  composes ``SumPool2d -> Conv2d`` into one convolution of stride ``p * s`` whose kernel
  is constant over ``p x p`` blocks) becomes that pooling, done by the source on the way
  out (a destination's ``pooling`` on chip), and the smaller convolution;
* a dense projection whose weights are constant over ``p x p`` windows of a CHW input is
  a pooling plus a dense layer; a dense layer is a convolution whose kernel covers its
  whole (pooled) input, as sinabs converts ``nn.Linear``;
* pooling of the network's input is done by the DVS layer, which (unlike the cores'
  destinations) may pool rectangles.

Every step is checked against the chip's rules; anything the chip cannot hold raises
:class:`~nmcompiler.ir.errors.FitError` naming the population or projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import Conv2d, Dense, OneToOne, Sparse
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import Reset

__all__ = ["SpeckLayer", "SpeckPlan", "plan_layers", "pool_factor", "memory_summary",
           "quantization_of"]

#: sinabs ``DYNAPCNN_WEIGHT_PRECISION_BITS`` / ``DYNAPCNN_STATE_PRECISION_BITS``
WEIGHT_BITS = 8
STATE_BITS = 16
#: largest dense matrix built from a sparse or one-to-one projection
MAX_DENSE = 20_000_000


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SpeckLayer:
    """One DYNAP-CNN core's layer.

    Attributes:
        name: the population.
        core: the physical core (0..8) from the placement.
        source: the population or input feeding it.
        source_pool: ``(py, px)`` sum pooling applied between the source and this layer.
        in_shape: ``(c, h, w)`` the core's input (after the source's pooling).
        weight: ``(f, c, kh, kw)`` int64 kernel.
        stride, padding: ``(y, x)``.
        bias: ``(f,)`` int64, added every step.
        out_shape: ``(f, H, W)`` neuron shape.
        pop_shape: the population's shape in the network (``(f,)`` for dense layers).
        threshold: ``threshold_high``; a neuron fires when ``v >= threshold``.
        min_v_mem: ``threshold_low``: the state is clipped from below to it.
        return_to_zero: reset to 0 (True) or subtract the threshold (False).
        max_spikes: 0 = one spike per step (``SingleSpike``); else ``MaxSpike`` with at
            most this many spikes per step (graded populations).
        destinations: ``(layer name, pooling)`` of every layer this one sends to.
        projection: the projection the layer's kernel comes from.
    """

    name: str
    core: int
    source: str
    source_pool: tuple[int, int]
    in_shape: tuple[int, int, int]
    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    bias: np.ndarray
    out_shape: tuple[int, int, int]
    pop_shape: tuple[int, ...]
    threshold: int
    min_v_mem: int
    return_to_zero: bool
    max_spikes: int
    destinations: tuple[tuple[str, int], ...] = ()
    projection: str = ""

    def memory_summary(self) -> dict[str, int]:
        """Kernel, neuron and bias memory words (sinabs ``DynapcnnLayer.memory_summary``)."""
        return memory_summary(self.weight.shape, self.out_shape, bool(np.any(self.bias)))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SpeckPlan:
    """A network as Speck layers, in an order where every source comes first.

    Attributes:
        target: the target's name.
        input: the network input's name (the DVS layer's input).
        input_shape: ``(c, h, w)`` of the input.
        dvs_pool: ``(py, px)`` pooling of the DVS layer (1, 1 without).
        layers: the layers.
        outputs: output name -> layer name.
    """

    target: str
    input: str
    input_shape: tuple[int, int, int]
    dvs_pool: tuple[int, int]
    layers: tuple[SpeckLayer, ...]
    outputs: dict[str, str] = field(default_factory=dict)

    def layer(self, name: str) -> SpeckLayer:
        """The layer of population ``name``."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)


def _ceil_log2(x: int) -> int:
    return int(np.ceil(np.log2(max(int(x), 1))))


def memory_summary(kernel_shape: tuple[int, ...], out_shape: tuple[int, int, int],
                   has_bias: bool) -> dict[str, int]:
    """sinabs ``DynapcnnLayer.memory_summary`` for a ``(f, c, kh, kw)`` kernel:
    kernel ``c * 2**(ceil(log2(kh*kw)) + ceil(log2(f)))``, neuron
    ``f * 2**(ceil(log2(H)) + ceil(log2(W)))``, bias ``f`` (0 without a bias)."""
    f, c, kh, kw = (int(x) for x in kernel_shape)
    _, h, w = (int(x) for x in out_shape)
    return {"kernel": c * 2 ** (_ceil_log2(kh * kw) + _ceil_log2(f)),
            "neuron": f * 2 ** (_ceil_log2(h) + _ceil_log2(w)),
            "bias": f if has_bias else 0}


def quantization_of(network: Any) -> dict[str, Any]:
    """What the backend needs from the network's quantisation record: the family and the
    weight shift of every projection (weights are ``mantissa * 2**shift``; Speck: 0).

    The one place the backend reads the quantisation data (docs/speck_backend.md)."""
    q = network.metadata.get("quantization")
    if q is None:
        return {"family": None, "weight_shift": {}}
    get = q.get if isinstance(q, dict) else (lambda k, d=None: getattr(q, k, d))
    projs = get("projections", {}) or {}
    shifts = {}
    for name, rec in dict(projs).items():
        r = rec.get if isinstance(rec, dict) else (lambda k, d=None, _r=rec: getattr(_r, k, d))
        shifts[name] = int(r("weight_shift", 0) or 0)
    return {"family": get("family", None), "weight_shift": shifts}


def pool_factor(weight: np.ndarray, in_shape: tuple[int, int, int], stride: tuple[int, int],
                padding: tuple[int, int], sizes: tuple[int, ...], *, rect: bool
                ) -> tuple[int, int]:
    """The largest pooling ``(py, px)`` (from ``sizes``) that a convolution of ``weight``
    (OIHW, groups expanded) on ``in_shape`` holds: the kernel is constant over aligned
    ``py x px`` blocks, and stride, padding, kernel and input size are multiples of it.
    Then the convolution equals a ``py x px`` sum pooling of the input followed by a
    convolution of ``weight[..., ::py, ::px]``, stride ``s / p`` and padding ``pad / p``.
    ``rect=False`` asks for a square pooling (destinations of a core); ``True`` allows
    ``py != px`` (the DVS layer). Same rule as partition's ``conv_pool_factor``.
    """
    _, h, w = in_shape
    kh, kw = weight.shape[2:]
    cand = sorted({int(s) for s in sizes if int(s) >= 1} | {1}, reverse=True)

    def ok(axis: int, p: int) -> bool:
        if p == 1:
            return True
        size, k, s, pad = (h, kh, stride[0], padding[0]) if axis == 0 else \
            (w, kw, stride[1], padding[1])
        if size % p or k % p or s % p or pad % p:
            return False
        shape = list(weight.shape)
        shape[2 + axis: 3 + axis] = [k // p, p]
        r = weight.reshape(shape)
        first = r[:, :, :, :1] if axis == 0 else r[..., :1]
        return bool(np.array_equal(r, np.broadcast_to(first, r.shape)))

    if rect:
        return (next(p for p in cand if ok(0, p)), next(p for p in cand if ok(1, p)))
    for p in cand:
        if ok(0, p) and ok(1, p):
            return (p, p)
    return (1, 1)


def _full_weight(conv: Conv2d) -> np.ndarray:
    w = np.asarray(conv.weight)
    g = int(conv.groups)
    if g == 1:
        return w
    f, cg, kh, kw = w.shape
    out = np.zeros((f, cg * g, kh, kw), dtype=w.dtype)
    fg = f // g
    for k in range(g):
        out[k * fg:(k + 1) * fg, k * cg:(k + 1) * cg] = w[k * fg:(k + 1) * fg]
    return out


def _pair(x: Any) -> tuple[int, int]:
    if isinstance(x, (tuple, list, np.ndarray)):
        return (int(x[0]), int(x[1]))
    return (int(x), int(x))


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]))
    return (int(np.prod(shape)), 1, 1)


def _as_ints(w: np.ndarray, what: str, obj: str, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    r = np.rint(a)
    if a.size and not np.array_equal(r, a):
        raise FitError(f"{what} of '{obj}' are not integers; the compiled network is not "
                       "quantised for Speck", obj=obj, rule="integer values",
                       hint="compile for a Speck target (nmc compile -t speck2f)")
    if a.size and (r.min() < lo or r.max() > hi):
        raise FitError(f"{what} of '{obj}' span [{int(r.min())}, {int(r.max())}]; Speck "
                       f"holds [{lo}, {hi}]", obj=obj, rule="value range",
                       need=[int(r.min()), int(r.max())], limit=[lo, hi],
                       hint="compile for a Speck target (nmc compile -t speck2f)")
    return r.astype(np.int64)


def _kernel(net: Any, proj: Any, sizes: tuple[int, ...], rect: bool
            ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int],
                       tuple[int, int, int]]:
    """(weight OIHW, stride, padding, source pooling, pooled input shape) of ``proj``."""
    conn = proj.conn
    in3 = _chw(net.shape_of(proj.pre))
    post = net.shape_of(proj.post)
    if isinstance(conn, (Sparse, OneToOne)):
        n_pre, n_post = net.size_of(proj.pre), net.size_of(proj.post)
        if n_pre * n_post > MAX_DENSE:
            raise FitError(
                f"projection '{proj.name}' is {type(conn).__name__} between {n_pre} and "
                f"{n_post} neurons; a Speck core holds a convolution or a dense layer",
                obj=proj.name, rule="connectivity", need=n_pre * n_post, limit=MAX_DENSE,
                hint="express it as Conv2d or Dense")
        if isinstance(conn, Sparse):
            dense = conn.to_dense()
        else:
            dense = np.diag(np.broadcast_to(np.asarray(conn.weight, dtype=np.float64),
                                            (n_pre,)))
        conn = Dense(weight=dense)
    if isinstance(conn, Conv2d):
        if _pair(conn.dilation) != (1, 1):
            raise FitError(f"projection '{proj.name}' has dilation {_pair(conn.dilation)}; "
                           "Speck convolutions have none", obj=proj.name, rule="dilation",
                           need=_pair(conn.dilation), limit=(1, 1),
                           hint="use an undilated kernel")
        w = _full_weight(conn)
        stride, pad = _pair(conn.stride), _pair(conn.padding)
        py, px = pool_factor(w, in3, stride, pad, sizes, rect=rect)
        w = w[:, :, ::py, ::px]
        stride = (stride[0] // py, stride[1] // px)
        pad = (pad[0] // py, pad[1] // px)
        return w, stride, pad, (py, px), (in3[0], in3[1] // py, in3[2] // px)
    if isinstance(conn, Dense):
        wt = np.asarray(conn.weight)
        f = wt.shape[0]
        w4 = wt.reshape(f, *in3)
        py, px = pool_factor(w4, in3, (in3[1], in3[2]), (0, 0), sizes, rect=rect)
        w4 = w4[:, :, ::py, ::px]
        pooled = (in3[0], in3[1] // py, in3[2] // px)
        return w4, (1, 1), (0, 0), (py, px), pooled
    raise FitError(f"projection '{proj.name}' is a {type(conn).__name__} into "
                   f"'{proj.post}' of shape {post}; a Speck layer needs a convolution or a "
                   "dense map before its neurons", obj=proj.name, rule="connectivity",
                   hint="follow pooling by a convolution (as sinabs models do)")


def _uniform(values: Any, n: int, what: str, pop: str) -> float:
    a = np.broadcast_to(np.real(np.asarray(values, dtype=np.complex128)), (n,))
    if a.size and np.any(a != a[0]):
        raise FitError(f"population '{pop}' has per-neuron {what}s; a Speck core has one",
                       obj=pop, rule=f"one {what} per layer", hint=f"use one {what}")
    return float(a[0]) if a.size else 0.0


def _order(net: Any) -> list[str]:
    """Populations with every source first (zero-delay chains are evaluated in order)."""
    incoming: dict[str, list[str]] = {p: [] for p in net.populations}
    for pr in net.projections.values():
        incoming[pr.post].append(pr.pre)
    done: list[str] = []
    seen: set[str] = set(net.inputs)
    pending = list(net.populations)
    while pending:
        nxt = [p for p in pending if all(s in seen or s == p for s in incoming[p])]
        if not nxt:
            raise FitError(f"populations {pending} form a loop; a Speck network is "
                           "feed-forward here", obj=pending[0], rule="feed-forward",
                           hint="remove the recurrent projection")
        for p in nxt:
            seen.add(p)
            done.append(p)
        pending = [p for p in pending if p not in seen]
    return done


def _check_iaf(name: str, model: Any) -> None:
    """Raise a FitError unless population ``name`` is integrate-and-fire as a Speck core."""
    if not getattr(model, "spiking", True):
        raise FitError(f"population '{name}' is a non-spiking readout; Speck layers are "
                       "integrate-and-fire", obj=name, rule="IAF neurons",
                       hint="use IF neurons and read out spike counts")
    if np.any(np.asarray(model.lam) != 1) or np.any(np.asarray(model.alpha_u) != 0):
        raise FitError(f"population '{name}' leaks or has a current stage; Speck layers "
                       "are integrate-and-fire", obj=name, rule="IAF neurons",
                       hint="use IF neurons")
    if int(model.refractory) or float(model.noise):
        raise FitError(f"population '{name}' has a refractory period or noise; Speck has "
                       "neither", obj=name, rule="IAF neurons", hint="use IF neurons")
    if model.reset not in (Reset.HARD, Reset.SOFT):
        raise FitError(f"population '{name}' never resets; Speck resets to 0 or subtracts",
                       obj=name, rule="reset", hint="use reset 'hard' or 'soft'")


def _destinations(layers: dict[str, dict[str, Any]], target: Any
                  ) -> dict[str, list[tuple[str, int]]]:
    """Per layer, the layers it sends to and their pooling; checked against the core's
    number of destinations."""
    dests: dict[str, list[tuple[str, int]]] = {n: [] for n in layers}
    for name, lay in layers.items():
        src = lay["source"]
        if src in dests:
            py, px = lay["source_pool"]
            if py != px:  # pragma: no cover - pool_factor(rect=False) is square
                raise FitError(f"pooling {(py, px)} into '{name}' is not square",
                               obj=name, rule="square pooling", hint="pool squares")
            dests[src].append((name, py))
    for src, d in dests.items():
        if len(d) > int(target.core.max_destinations or 2):
            raise FitError(f"layer '{src}' sends to {len(d)} layers; a Speck core has "
                           f"{target.core.max_destinations} destinations", obj=src,
                           rule="destinations", need=len(d),
                           limit=int(target.core.max_destinations or 2),
                           hint="send it to fewer layers")
    return dests


def plan_layers(compiled: Any) -> SpeckPlan:
    """The :class:`SpeckPlan` of a network compiled for a Speck target (module docstring)."""
    net = compiled.network
    target = compiled.target
    q = quantization_of(net)
    if q["family"] not in (None, "speck"):
        raise FitError(f"the network was quantised for '{q['family']}', not for Speck",
                       obj=net.name, rule="Speck quantisation",
                       hint="compile for a Speck target (nmc compile -t speck2f)")
    if len(net.inputs) != 1:
        raise FitError(f"network has {len(net.inputs)} inputs; Speck has one (the DVS layer)",
                       obj=net.name, rule="one input", need=len(net.inputs), limit=1,
                       hint="merge the inputs into channels of one input")
    inp = next(iter(net.inputs.values()))
    conv = getattr(target, "convolution", None)
    sizes = tuple(conv.pooling_sizes) if conv is not None else (1, 2, 4)
    part, place = compiled.partition, compiled.placement
    core_of = {p: int(place.core[k]) for k, p in enumerate(part.populations)}
    by_post: dict[str, Any] = {}
    for pr in net.projections.values():
        if pr.post in by_post:
            raise FitError(
                f"population '{pr.post}' has two incoming projections ('{by_post[pr.post].name}'"
                f", '{pr.name}'); this backend gives every Speck core one kernel",
                obj=pr.post, rule="one kernel per core", need=2, limit=1,
                hint="concatenate the sources into one population")
        by_post[pr.post] = pr
    shifts = q["weight_shift"]
    lo_state = -(2 ** (STATE_BITS - 1))
    layers: dict[str, dict[str, Any]] = {}
    dvs_pool = (1, 1)
    for name in _order(net):
        pop = net.populations[name]
        pr = by_post.get(name)
        if pr is None:
            raise FitError(f"population '{name}' has no input; a Speck core is fed by a "
                           "convolution", obj=name, rule="layer input",
                           hint="connect it or remove it")
        model = pop.model
        _check_iaf(name, model)
        from_input = pr.pre in net.inputs
        w, stride, pad, spool, in3 = _kernel(net, pr, sizes, rect=from_input)
        if from_input:
            dvs_pool = spool
        w = _as_ints(w * 2.0 ** shifts.get(pr.name, 0), "weights", pr.name,
                     -(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1) - 1)
        f = int(w.shape[0])
        ho = (in3[1] + 2 * pad[0] - w.shape[2]) // stride[0] + 1
        wo = (in3[2] + 2 * pad[1] - w.shape[3]) // stride[1] + 1
        out3 = (f, int(ho), int(wo))
        if int(np.prod(out3)) != pop.size:
            raise FitError(f"layer '{name}' computes {out3} neurons from '{pr.pre}'; the "
                           f"population has shape {pop.shape}", obj=name, rule="layer shape",
                           hint="the compiled network is inconsistent: compile again")
        n = pop.size
        bias = np.broadcast_to(np.asarray(np.real(model.bias), dtype=np.float64), (n,))
        bias = bias.reshape(f, -1)
        if np.any(bias != bias[:, :1]):
            raise FitError(f"population '{name}' has biases that vary inside a channel; a "
                           "Speck core has one bias per output channel", obj=name,
                           rule="bias per channel", hint="use one bias per channel")
        bias = _as_ints(bias[:, 0], "biases", name, -(2 ** (WEIGHT_BITS - 1)),
                        2 ** (WEIGHT_BITS - 1) - 1)
        theta = _uniform(model.theta, n, "threshold", name)
        theta = int(_as_ints(np.array([theta]), "thresholds", name, 1,
                             2 ** (STATE_BITS - 1) - 1)[0])
        if model.reset == Reset.HARD and _uniform(model.v_reset, n, "reset value", name):
            raise FitError(f"population '{name}' resets to a nonzero value; Speck resets to 0",
                           obj=name, rule="reset to 0", hint="use v_reset = 0")
        layers[name] = dict(
            name=name, core=core_of[name], source=pr.pre, source_pool=spool, in_shape=in3,
            weight=w, stride=stride, padding=pad, bias=bias, out_shape=out3,
            pop_shape=tuple(pop.shape), threshold=theta, min_v_mem=lo_state,
            return_to_zero=model.reset == Reset.HARD,
            max_spikes=int(model.graded_max) if model.graded else 0, projection=pr.name)
    dests = _destinations(layers, target)
    out = tuple(SpeckLayer(**lay, destinations=tuple(dests[n])) for n, lay in layers.items())
    return SpeckPlan(target=target.name, input=inp.name, input_shape=_chw(inp.shape),
                     dvs_pool=dvs_pool, layers=out,
                     outputs={o.name: o.source for o in net.outputs.values()})
