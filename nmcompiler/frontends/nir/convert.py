"""NIR graph -> ``ir.Network``: :func:`from_nir` and the stages of the conversion.

The stages (docs/nir.md#graph-mapping): flatten the graph (:mod:`.graph`), infer shapes
(:mod:`.shapes`), build one population per neuron node (:mod:`.neurons`), follow every
*path* from an input or neuron through stateless nodes to the next neuron or ``Output``,
push the biases of ``Affine`` / convolution nodes to the neurons they reach, compose each
path into one projection (:mod:`nmcompiler.frontends.nir_linear`) with its delays, and
assemble and verify the network. Edges that close a cycle (back edges of a depth-first
search from the inputs) take one step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import ImportFormatError, NmcError, UsageError

from ...helpers import mark_helpers
from .. import nir_linear as lin
from .graph import FlatNode, ImportContext, back_edges, flatten
from .neurons import Pop, build_model, make_population
from .options import (
    InputScale,
    Integration,
    NirImport,
    NirImportWarning,
    NirOptions,
    Preset,
    ResetMode,
    require_nir,
    resolve_options,
)
from .read import read_nir
from .shapes import as_array, chw, infer_shapes

__all__ = ["from_nir"]


def from_nir(
    source: Any,
    *,
    preset: Preset | str | None = None,
    options: NirOptions | None = None,
    dt: float | None = None,
    integration: Integration | str | None = None,
    input_scale: InputScale | str | None = None,
    reset: ResetMode | str | None = None,
    lenient: bool = False,
    name: str | None = None,
    **more_options: Any,
) -> NirImport:
    """Import a NIR graph (a ``nir.NIRGraph`` or a path to a NIR file) as an ``ir.Network``.

    Args:
        source: the graph, or the path of a file written by ``nir.write``.
        preset: a :class:`Preset` (or its value, e.g. ``"norse"``) giving the options.
        options: explicit :class:`NirOptions` instead of a preset.
        dt: override of ``NirOptions.dt``.
        integration: override of ``NirOptions.integration`` (an ``Integration`` or its value).
        input_scale: override of ``NirOptions.input_scale``.
        reset: override of ``NirOptions.reset``.
        lenient: repair known defects (a wrong Output shape, scalar parameters where
            arrays are expected, a missing Flatten, duplicate edges, delays that are not
            whole steps) with a :class:`NirImportWarning` each; strict mode (default)
            raises :class:`nmcompiler.ir.errors.ImportFormatError` naming the node instead.
        name: the network's name (default: the file's stem, or "nir").
        **more_options: overrides of any other :class:`NirOptions` field.

    Returns:
        :class:`NirImport`: ``network``, ``warnings``, ``options``.
    """
    nir = require_nir()
    opts = resolve_options(preset, options, dt=dt, integration=integration,
                           input_scale=input_scale, reset=reset, **more_options)
    warns: list[NirImportWarning] = []
    if isinstance(source, (str, os.PathLike)):
        graph, warns = read_nir(source, lenient=lenient)
        where = f"NIR file '{source}'"
        net_name = name or Path(source).stem
    elif isinstance(source, nir.NIRNode):
        graph, where, net_name = source, "NIR graph", name or "nir"
    else:
        raise UsageError(f"from_nir takes a nir.NIRGraph or a path, not "
                         f"{type(source).__name__}", obj="source", rule="source type",
                         hint="pass nir.read(...) or the file's path")
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph(nodes={"node": graph}, edges=[], type_check=False)
    ctx = ImportContext(lenient, where)
    ctx.batch_io, ctx.scalar_params = opts.batch_io, opts.scalar_params
    ctx.warnings.extend(warns)
    ctx.warnings.extend(_assumptions(preset, options, reset, more_options))
    ctx.warnings.extend(_sinabs_norm(preset, options, input_scale, graph))
    try:
        net = convert(graph, opts, ctx, net_name)
    except NmcError as exc:
        if isinstance(exc, ImportFormatError) and exc.message.startswith(where):
            raise
        raise ImportFormatError(f"{where}: {exc.message}", obj=exc.obj, rule=exc.rule,
                                hint=exc.hint) from None
    ctx.warnings.extend(_norse_start(preset, options, graph))
    net.metadata.update({"frontend": "nir", "dt": opts.dt, "nir_options": opts.as_dict()})
    if isinstance(source, (str, os.PathLike)):
        net.metadata["source"] = str(source)
    return NirImport(net, ctx.warnings, opts)


def _assumptions(preset: Any, options: Any, reset: Any, more: dict[str, Any]
                 ) -> list[NirImportWarning]:
    """Warnings for what a preset assumes because NIR does not record it (docs/nir.md)."""
    if options is not None or preset is None or str(getattr(preset, "value", preset)
                                                     ).lower() != Preset.SNNTORCH.value:
        return []
    if reset is not None:
        return []
    return [NirImportWarning(
        node="", rule="assumed reset",
        message="NIR does not record snnTorch's reset_mechanism; assuming its default "
                "reset_mechanism='subtract' with reset_delay=True. If the network used "
                "others, import with what was set in snnTorch: reset='zero' or "
                "reset='none', and reset_delay=False")]


def _sinabs_norm(preset: Any, options: Any, input_scale: Any, graph: Any
                 ) -> list[NirImportWarning]:
    """sinabs does not export a LIF's ``norm_input`` (docs/nir.md#sinabs)."""
    if options is not None or preset is None or input_scale is not None or str(
            getattr(preset, "value", preset)).lower() != Preset.SINABS.value:
        return []
    stack, leaky = [graph], False
    while stack and not leaky:
        g = stack.pop()
        for node in getattr(g, "nodes", {}).values():
            if hasattr(node, "nodes"):
                stack.append(node)
            leaky |= type(node).__name__ in ("LIF", "CubaLIF", "LI", "CubaLI")
    if not leaky:
        return []
    return [NirImportWarning(
        node="", rule="assumed input scale",
        message="NIR does not record sinabs' norm_input; assuming its LIF default "
                "norm_input=True (v = alpha*v + (1-alpha)*x). If the layers had "
                "norm_input=False (as sinabs.from_nir builds them), import with "
                "input_scale='unit'")]


def _norse_start(preset: Any, options: Any, graph: Any) -> list[NirImportWarning]:
    """Norse starts every voltage at ``v_leak``; the IR starts at 0 (docs/nir.md#norse)."""
    if options is not None or preset is None or str(getattr(preset, "value", preset)
                                                     ).lower() != Preset.NORSE.value:
        return []
    out = []
    stack = [("", graph)]
    while stack:
        prefix, g = stack.pop()
        for name, node in getattr(g, "nodes", {}).items():
            if hasattr(node, "nodes"):
                stack.append((f"{prefix}{name}.", node))
            elif np.any(as_array(getattr(node, "v_leak", 0.0)) != 0):
                out.append(NirImportWarning(
                    node=f"{prefix}{name}", rule="initial voltage",
                    message="Norse starts this layer's voltage at v_leak != 0, the IR at 0: "
                            "spikes can differ while the difference decays (first "
                            "few time constants)"))
    return sorted(out, key=lambda w: w.node)


def convert(graph: Any, opts: NirOptions, ctx: ImportContext, net_name: str) -> ir.Network:
    """The ``ir.Network`` of a ``nir.NIRGraph`` (the stages of the module docstring)."""
    return _Conversion(graph, opts, ctx).network(net_name)


# ---------------------------------------------------------------- biases, one per node type
def _affine_bias(fn: FlatNode, b: np.ndarray, op: lin.Op, ctx: ImportContext) -> np.ndarray:
    if b.size == 1 and op.n_out > 1:
        ctx.defect(fn.name, "scalar parameter", "bias is a scalar where an array of "
                   f"{op.n_out} is expected; broadcast", "one bias per output")
        b = np.full(op.n_out, b[0])
    if b.size != op.n_out:
        raise ctx.fail(fn.name, "bias shape", f"bias has {b.size} values for "
                       f"{op.n_out} outputs (wrong array shapes)", "fix it")
    return b


def _conv_bias(fn: FlatNode, b: np.ndarray, op: lin.Op, ctx: ImportContext) -> np.ndarray:
    c_out = op.out3[0] if op.out3 is not None else op.n_out
    if b.size == 1 and c_out > 1:
        ctx.defect(fn.name, "scalar parameter", "bias is a scalar where one per output "
                   "channel is expected; broadcast", "one bias per channel")
        b = np.full(c_out, b[0])
    if b.size != c_out:
        raise ctx.fail(fn.name, "bias shape", f"bias has {b.size} values for {c_out} "
                       "output channels (wrong array shapes)", "fix it")
    return np.repeat(b, op.n_out // c_out)


#: the per-output bias vector of each NIR node type that carries a bias
BIAS: dict[str, Callable[[FlatNode, np.ndarray, lin.Op, ImportContext], np.ndarray]] = {
    "Affine": _affine_bias, "Conv1d": _conv_bias, "Conv2d": _conv_bias,
}


def delay_steps(fn: FlatNode, n: int, opts: NirOptions, ctx: ImportContext) -> np.ndarray:
    """The delays of a ``Delay`` node in whole steps of ``opts.dt`` (rounded, with a warning)."""
    d = as_array(fn.obj.delay).astype(np.float64).reshape(-1)
    if d.size == 1:
        d = np.full(n, d[0])
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ImportFormatError(f"node '{fn.name}' (Delay): delays must be finite and >= 0",
                                obj=fn.name, rule="delay >= 0", hint="fix the delay values")
    steps = d / opts.dt
    rounded = np.round(steps)
    if np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1.0, rounded)):
        ctx.defect(fn.name, "whole steps", f"delay {d[np.argmax(np.abs(steps - rounded))]:g} "
                   f"is not a whole number of steps of dt={opts.dt:g}; rounded",
                   "choose dt so every delay is a multiple of it")
    return rounded.astype(np.int64)


# ---------------------------------------------------------------- the conversion
@dataclass
class _Path:
    """Origin (input or neuron) -> stateless nodes ``via`` -> target (neuron or Output)."""

    origin: str
    via: list[str]
    target: str
    nback: int  # back edges on the way (each takes one step)
    proj: tuple | None = None  # (pre, post, connectivity, delay) once built


class _Conversion:
    def __init__(self, graph: Any, opts: NirOptions, ctx: ImportContext) -> None:
        self.opts, self.ctx = opts, ctx
        self.nodes: dict[str, FlatNode] = {}
        self.edges: list[tuple[str, str]] = []
        flatten(graph, "", self.nodes, self.edges, True, ctx)
        self._require_inputs()
        shapes = infer_shapes(self.nodes, self.edges, ctx)
        self.out, self.ops = shapes.out, shapes.ops
        self.succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            self.succ[a].append(b)
        self.inputs = [n for n, fn in self.nodes.items() if fn.kind == "input"]
        self.back = back_edges(list(self.nodes), self.edges, self.inputs)
        self.pops: dict[str, Pop] = {n: make_population(fn, self.out[n], opts)
                                     for n, fn in self.nodes.items() if fn.kind == "neuron"}
        self.paths: list[_Path] = []
        self.readouts: dict[str, str] = {}
        self.direct_out: dict[str, str] = {}

    def _require_inputs(self) -> None:
        """A graph without Input nodes is rejected at its first root."""
        if any(fn.kind == "input" for fn in self.nodes.values()):
            return
        has_pred = {b for _, b in self.edges}
        for n, fn in self.nodes.items():
            if n not in has_pred and fn.kind != "output":
                raise self.ctx.fail(n, "graph inputs", "the graph has no Input node",
                                    "add an Input node before the first layer")

    # ---------------------------------------------------------------- paths
    def _walk(self, origin: str, start: str, via: list[str], nback: int,
              from_edge: tuple) -> None:
        if from_edge in self.back:
            nback += 1
        fn = self.nodes[start]
        if fn.kind in ("neuron", "output"):
            self.paths.append(_Path(origin, list(via), start, nback))
            return
        if start in via:
            loop = " -> ".join(via[via.index(start):] + [start])
            raise ImportFormatError(
                f"{self.ctx.where}: nodes {loop} form a loop without a neuron, which no step "
                "order can evaluate", obj=start, rule="no algebraic loop",
                hint="put a neuron node (or a Delay) into the loop")
        if not self.succ[start]:
            self.ctx.defect(start, "dead end", f"{fn.typ} node's output goes nowhere; "
                            "ignored", "connect it to a neuron or an Output")
            return
        for nxt in self.succ[start]:
            self._walk(origin, nxt, via + [start], nback, (start, nxt))

    def _find_paths(self) -> None:
        for n, fn in self.nodes.items():
            if fn.kind in ("input", "neuron"):
                for nxt in self.succ[n]:
                    self._walk(n, nxt, [], 0, (n, nxt))
        # snnTorch's delayed zero reset: RLeaky / RSynaptic / Synaptic zero the whole next
        # step (a one-step refractory period), Leaky keeps that step's input (a hard reset)
        if self.opts.reset_delay and self.opts.reset is ResetMode.ZERO:
            for p in self.paths:
                pop = self.pops.get(p.origin)
                if pop is not None and p.target == p.origin and "theta" in pop.params:
                    pop.params["refractory"] = 1

    def _find_direct_outputs(self) -> None:
        """Outputs fed only by one neuron (through ports) need no readout population."""
        for p in self.paths:
            t = p.target
            if (self.nodes[t].kind == "output" and self.nodes[p.origin].kind == "neuron"
                    and all(self.nodes[v].kind == "pass" for v in p.via)):
                self.direct_out.setdefault(t, p.origin)
        for t in list(self.direct_out):
            if sum(1 for p in self.paths if p.target == t) > 1:
                del self.direct_out[t]

    def _chain_ops(self, via: list[str]) -> list[Any]:
        return [self.ops[v] for v in via if self.nodes[v].typ != "Delay"]

    def _target_pop(self, path: _Path) -> str:
        """The population a path ends in: its neuron, or the Output's readout (made once)."""
        t = path.target
        if self.nodes[t].kind == "neuron":
            return t
        if t not in self.readouts:
            size = int(np.prod(self.out[t]))
            pop = Pop(t, chw(self.out[t]), ir.LI, dict(lam=0.0, bias=None), np.ones(size),
                      False)
            pop.bias_in = np.zeros(size)
            self.pops[t] = pop
            self.readouts[t] = t
        return self.readouts[t]

    # ---------------------------------------------------------------- biases
    def _node_biases(self) -> dict[str, np.ndarray]:
        biased = {}
        for n, fn in self.nodes.items():
            if fn.typ not in BIAS:
                continue
            b = getattr(fn.obj, "bias", None)
            if b is None:
                continue
            b = as_array(b).astype(np.float64).reshape(-1)
            if b.size == 0 or not np.any(b):
                continue
            biased[n] = BIAS[fn.typ](fn, b, self.ops[n], self.ctx)
        return biased

    def _push_biases(self) -> None:
        """Every biased linear node pushes its bias through the rest of its paths."""
        biased = self._node_biases()
        done: set[tuple] = set()
        for p in self.paths:
            for i, v in enumerate(p.via):
                if v not in biased:
                    continue
                rest = tuple(p.via[i + 1:])
                key = (v, rest, p.target)
                if key in done:
                    continue
                done.add(key)
                op = lin.compose(self._chain_ops(list(rest)), self.ops[v].n_out)
                vec = lin.apply(op, biased[v])
                if p.target in self.direct_out:
                    del self.direct_out[p.target]
                self.pops[self._target_pop(p)].bias_in += vec

    # ---------------------------------------------------------------- projections
    def _path_delays(self, p: _Path, op: lin.Op) -> tuple[int, tuple | None]:
        """(uniform extra steps, (per-neuron steps, 'pre' or 'post') or None) of a path."""
        extra = 0
        per_syn = None
        for v in (v for v in p.via if self.nodes[v].typ == "Delay"):
            steps = delay_steps(self.nodes[v], int(np.prod(self.out[v])), self.opts, self.ctx)
            if np.all(steps == steps[0]):
                extra += int(steps[0])
                continue
            idx = p.via.index(v)
            after = [w for w in p.via[idx + 1:] if self.ops[w].kind != "ident"]
            before = [w for w in p.via[:idx] if self.ops[w].kind != "ident"]
            if op.kind not in ("matrix", "diag", "ident") or (after and before):
                raise self.ctx.fail(v, "per-synapse delays", "has unequal delays between "
                                    "linear maps (or before a convolution), which the IR "
                                    "cannot express", "move the Delay next to a neuron "
                                    "layer or make it uniform")
            per_syn = (steps, "post" if not after else "pre")
        return extra, per_syn

    def _project(self, p: _Path) -> None:
        """Compose a path into one projection (stored on the path)."""
        tp = self._target_pop(p)
        pop = self.pops[tp]
        origin = p.origin
        n_src = int(np.prod(self.out[origin]))
        op = lin.compose(self._chain_ops(p.via), n_src)
        if op.n_out != int(np.prod(pop.shape)):
            raise self.ctx.fail(p.target, "input shapes", f"receives {op.n_out} values from "
                                f"'{origin}' but has {int(np.prod(pop.shape))} neurons (wrong "
                                "array shapes)", "match the layer sizes")
        if op.kind in ("conv", "pool") and (len(chw(self.out[origin])) != 3 or
                                            len(pop.shape) != 3):
            op = lin.Op("matrix", op.n_in, op.n_out, lin.matrix(op))
        if not self.opts.scale_voltage:
            op = lin.scale_out(op, pop.gain)
        extra, per_syn = self._path_delays(p, op)
        base = max(self.opts.synapse_delay, p.nback) + extra + pop.lag
        conn = lin.to_connectivity(op)
        if per_syn is not None:
            conn = _with_delays(conn, *per_syn)
        p.proj = (origin, tp, conn, base)

    # ---------------------------------------------------------------- assembly
    def _add_population(self, net: ir.Network, n: str, pop: Pop, bias_src: list[str]) -> None:
        """Add a population; a bias into a current stage comes from one bias source."""
        b = pop.bias_in
        if b is not None and np.any(b) and pop.cuba:
            src = "bias_source"
            k = 2
            while src in self.nodes or src in self.pops:
                src = f"bias_source#{k}"
                k += 1
            if not bias_src:
                bias_src.append(src)
                net.population(src, 1, ir.IF(theta=1.0, bias=1.0, fire_at_threshold=True))
                net.metadata.update(mark_helpers(net.metadata, {src: "bias source"}))
            w = b if self.opts.scale_voltage else b * pop.gain
            pop.self_proj.append(("bias", bias_src[0], w, pop.lag))
        elif b is not None and np.any(b):
            add = b if self.opts.scale_voltage else b * pop.gain
            pop.params["bias"] = (pop.params.get("bias") if pop.params.get("bias") is not None
                                  else 0.0) + add
        if pop.params.get("bias") is None:
            pop.params["bias"] = 0.0
        net.population(n, shape=pop.shape, model=build_model(pop))

    def _add_self_projections(self, net: ir.Network) -> None:
        for n, pop in self.pops.items():
            for entry in pop.self_proj:
                if isinstance(entry[0], str):
                    _, src, w, d = entry
                    net.connect(src, n, ir.Dense(weight=np.asarray(w, dtype=np.float64)
                                                 [:, None]),
                                delay=int(d), name=f"{src}->{n}")
                else:
                    w, d = entry
                    net.connect(n, n, ir.OneToOne(weight=np.asarray(w, dtype=np.float64)),
                                delay=int(d), name=f"{n}->{n}.reset#{d}")

    def _add_outputs(self, net: ir.Network) -> None:
        for n, fn in self.nodes.items():
            if fn.kind != "output":
                continue
            name = _output_name(n, fn, self.nodes)
            if n in self.direct_out:
                net.output(self.direct_out[n], name=name)
            elif n in self.readouts:
                net.output(self.readouts[n], name=name)
            else:
                self.ctx.defect(n, "output edges", "Output node receives nothing; ignored",
                                "connect it or remove it")

    def network(self, net_name: str) -> ir.Network:
        self._find_paths()
        net = ir.Network(net_name)
        for n in self.inputs:
            net.input(n, shape=chw(self.out[n]))
        for pop in self.pops.values():
            pop.bias_in = np.zeros(int(np.prod(pop.shape)))
        self._find_direct_outputs()
        self._push_biases()
        for p in self.paths:
            if p.target not in self.direct_out:
                self._project(p)
        bias_src: list[str] = []
        for n, pop in self.pops.items():
            self._add_population(net, n, pop, bias_src)
        for p in self.paths:
            if p.proj is not None:
                origin, tp, conn, base = p.proj
                net.connect(origin, tp, conn, delay=int(base))
        self._add_self_projections(net)
        if (self.opts.reset_retest and self.opts.reset is ResetMode.SUBTRACT
                and not self.opts.reset_delay):
            for n, pop in self.pops.items():
                if pop.cls is not ir.LI and pop.params.get("reset") is ir.Reset.SOFT:
                    _add_retest(net, n, pop)
        self._add_outputs(net)
        try:
            ir.verify(net)
        except NmcError as exc:
            raise ImportFormatError(f"{self.ctx.where}: the imported network is invalid: "
                                    f"{exc.message}", obj=exc.obj, rule=exc.rule,
                                    hint=exc.hint) from None
        return net


def _output_name(n: str, fn: FlatNode, nodes: dict[str, FlatNode]) -> str:
    """The output's name: the one nmcompiler's exporter recorded when a NIR node already
    had it (``h2`` exported as node ``h2.output``), else the node's name."""
    meta = getattr(fn.obj, "metadata", None) or {}
    want = meta.get("nmcompiler_output_name") if isinstance(meta, dict) else None
    if isinstance(want, bytes):
        want = want.decode("utf-8", "replace")
    if isinstance(want, np.ndarray) and want.shape == ():
        want = str(want[()])
    if isinstance(want, str) and want and n.endswith(".output") and n[:-7].endswith(want):
        return n[: len(n) - 7]
    return n


def _add_retest(net: ir.Network, n: str, pop: Pop) -> None:
    """snnTorch's ``reset_delay=False`` subtraction, exactly (docs/nir.md#snntorch).

    snnTorch tests ``m = lam*v + I - theta*r > theta`` with ``r = [v_prev > theta]`` (the
    delayed reset of the voltage after the previous reset), then sets
    ``v = m - theta*(s - r) = lam*v + I - theta*s``: the voltage follows the IR's soft
    reset, the spike test subtracts theta once more after a step that left the voltage
    above threshold. A helper population ``n + ".after_reset"`` tracks ``v`` (same inputs,
    same decays, no reset, ``-theta`` per spike of ``n`` in the same step) and fires when
    ``v > theta``; its spike takes ``theta`` off ``n``'s next test (``-theta``, delay 1) and
    gives it back in the voltage (``+lam*theta``, delay 2). Kicks into a current stage of
    decay ``alpha`` get ``-alpha*w`` one step later, so they act once.
    """
    helper = f"{n}.after_reset"
    params = dict(pop.params)
    params.update(reset=ir.Reset.NONE, refractory=0)
    cls = ir.LIF if pop.cls is ir.IF else pop.cls
    model = build_model(Pop(helper, pop.shape, cls, params, pop.gain, pop.cuba))
    net.population(helper, shape=pop.shape, model=model)
    net.metadata.update(mark_helpers(net.metadata, {helper: "reset helper"}))
    for proj in [p for p in net.projections.values() if p.post == n]:
        net.connect(proj.pre, helper, proj.conn, delay=int(proj.delay),
                    name=f"{proj.name}@{helper}")
    size = int(np.prod(pop.shape))
    theta = np.broadcast_to(np.asarray(pop.params["theta"], dtype=np.float64), (size,))
    lam = np.broadcast_to(np.asarray(pop.params["lam"], dtype=np.float64), (size,))
    alpha = np.broadcast_to(np.asarray(pop.params.get("alpha_u", 0.0), dtype=np.float64),
                            (size,))

    def kicks(terms: list[tuple[np.ndarray, int]]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for w, d in terms:
            for ww, dd in ((w, d), (-alpha * w, d + 1)) if pop.cuba else ((w, d),):
                out[dd] = out.get(dd, 0.0) + ww
        return out

    for d, w in sorted(kicks([(-theta, 0)]).items()):
        net.connect(n, helper, ir.OneToOne(weight=np.array(w, dtype=np.float64)), delay=d,
                    name=f"{n}->{helper}#{d}")
    for d, w in sorted(kicks([(-theta, 1), (lam * theta, 2)]).items()):
        net.connect(helper, n, ir.OneToOne(weight=np.array(w, dtype=np.float64)), delay=d,
                    name=f"{helper}->{n}#{d}")


def _with_delays(conn: Any, steps: np.ndarray, side: str) -> Any:
    """``conn`` with per-synapse delays taken from its ``side`` ('pre' or 'post') neuron."""
    if isinstance(conn, ir.Dense):
        d = np.broadcast_to(steps[:, None] if side == "post" else steps[None, :],
                            conn.weight.shape)
        return ir.Dense(weight=conn.weight, delays=np.ascontiguousarray(d))
    if isinstance(conn, ir.OneToOne):
        return ir.OneToOne(weight=conn.weight, delays=steps.copy())
    pre = np.repeat(np.arange(conn.n_pre), np.diff(conn.indptr))
    d = steps[conn.indices] if side == "post" else steps[pre]
    return ir.Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                     n_post=conn.n_post, delays=d.astype(np.int64))
