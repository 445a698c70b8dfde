"""NIR import and export (DESIGN.md section 4; docs/nir.md).

NIR (Pedersen et al., "Neuromorphic intermediate representation: A unified instruction set
for interoperable brain-inspired computing", Nature Communications 15, 8122, 2024) is
continuous-time. A NIR ``LIF`` is ``tau dv/dt = (v_leak - v) + r I``, spiking at
``v > v_threshold`` and resetting to ``v_reset``; a ``CubaLIF`` adds a current stage
``tau_syn dI/dt = -I + w_in S``. NIR records neither the time step, the integration
scheme nor the reset mode, and the frameworks that export it disagree on all three, so
:func:`from_nir` takes them as explicit :class:`NirOptions`, with a :class:`Preset` for the
conventions of each framework. With ``x = dt / tau``:

=====================  ==========================  ==================================
option                 decay ``lam``               input gain (per step)
=====================  ==========================  ==================================
``Integration.EULER``  ``1 - x``                   ``InputScale.EULER``: ``x * r``
``Integration.EXACT``  ``exp(-x)``                 ``InputScale.EXACT``: ``(1-lam) r``
                                                   ``InputScale.UNIT``: ``r``
=====================  ==========================  ==================================

``IF`` and ``I`` nodes have ``lam = 1`` and gain ``dt * r`` (``r`` under ``UNIT``). The
leak voltage becomes the per-step bias ``(1 - lam) * v_leak`` in both schemes. An
``Affine`` bias ``b`` reaching a neuron adds ``gain * b`` per step. The gain is folded
into the incoming weights, so voltages stay in NIR units, or, with
``NirOptions.scale_voltage`` (snnTorch's importer), the weights stay as written and the
voltage, threshold, reset and bias are divided by the gain.

Graph mapping: every neuron node becomes an :class:`~nmcompiler.ir.Population`; the stateless
nodes on the way from one neuron (or input) to the next compose into one projection
(:mod:`nmcompiler.frontends.nir_linear`); an ``Affine`` or convolution bias becomes neuron
bias; ``Delay`` nodes become projection delays; edges that close a cycle (back edges of a
depth-first search from the inputs) take one step; nested graphs are flattened with
``"subgraph.node"`` names. :func:`to_nir` inverts the mapping for a given ``dt`` and
options, choosing ``r`` (and ``w_in``) so that the gain is 1; ``from_nir(to_nir(net))``
then equals ``net`` in the sense of :func:`networks_equivalent`.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import ImportFormatError, NmcError, ToolchainMissing, UsageError

from . import nir_linear as lin

__all__ = [
    "Integration",
    "InputScale",
    "ResetMode",
    "NirOptions",
    "Preset",
    "NirImportWarning",
    "NirImport",
    "from_nir",
    "read_nir",
    "to_nir",
    "write_nir",
    "networks_equivalent",
]


def _nir() -> Any:
    try:
        import nir
    except ImportError as exc:  # pragma: no cover - nir is an extra
        raise ToolchainMissing(
            "the NIR frontend needs the 'nir' package", obj="nir", rule="toolchain",
            hint="pip install 'nmcompiler[nir]'",
        ) from exc
    return nir


# ============================================================================ options
class Integration(enum.Enum):
    """How a time constant becomes a per-step decay."""

    EULER = "euler"  #: forward Euler, ``lam = 1 - dt/tau`` (Norse, snnTorch, Lava)
    EXACT = "exact"  #: exact exponential, ``lam = exp(-dt/tau)`` (sinabs, Rockpool)


class InputScale(enum.Enum):
    """What one step of input ``x`` adds to a state (before any weight)."""

    EULER = "euler"  #: ``dt/tau * r * x`` (the forward-Euler term)
    EXACT = "exact"  #: ``(1 - lam) * r * x`` (input held constant over the step)
    UNIT = "unit"  #: ``r * x`` (one step adds the input: sinabs units, Norse's current)


class ResetMode(enum.Enum):
    """What a spike does to the voltage."""

    ZERO = "zero"  #: set it to the node's ``v_reset`` (0 unless given): ``ir.Reset.HARD``
    SUBTRACT = "subtract"  #: subtract the threshold: ``ir.Reset.SOFT``


@dataclass(frozen=True, slots=True, kw_only=True)
class NirOptions:
    """How a NIR graph is discretised (the defaults are the plain NIR equations, forward
    Euler at ``dt = 1e-4`` s, the time step of the NIR paper's recordings).

    Attributes:
        dt: time step in the graph's time unit (seconds for most exporters; sinabs writes
            time constants in steps, so its preset has ``dt = 1``).
        integration: decay of voltage and current (:class:`Integration`).
        input_scale: gain of the voltage's input (:class:`InputScale`).
        syn_input_scale: gain of a CubaLIF / CubaLI current's input.
        reset: :class:`ResetMode` of spiking nodes.
        reset_delay: snnTorch's default ``reset_delay=True``: the reset caused by a spike
            at step t acts in step t+1's update. ``ZERO``: the same spikes as a hard reset
            for Leaky, a one-step refractory period for Synaptic (whose next voltage is 0).
            ``SUBTRACT``: no reset in the neuron, a self-projection of weight ``-theta``
            (delay 1) and, with a current stage, ``+alpha_u*theta`` (delay 2) instead.
        fire_at_threshold: spike on ``v >= v_threshold`` (sinabs) instead of ``>``.
        graded: send integer spike counts ``floor(v / v_threshold)`` (sinabs' MultiSpike).
        graded_max: largest count of a graded spike.
        scale_voltage: keep weights as written and divide the voltage, threshold, reset
            and bias by the input gain (snnTorch's importer) instead of scaling weights.
        current_lag: the voltage integrates the current of the previous step (strict
            forward Euler): projections into CubaLIF / CubaLI nodes get one more step of
            delay. (No preset uses it: Norse 1.1.0's ``LIFCell`` uses the new current.)
        synapse_delay: smallest delay of every projection (Lava's ``Dense`` delivers in the
            next step: 1; the PyTorch frameworks: 0).
    """

    dt: float = 1e-4
    integration: Integration = Integration.EULER
    input_scale: InputScale = InputScale.EULER
    syn_input_scale: InputScale = InputScale.EULER
    reset: ResetMode = ResetMode.ZERO
    reset_delay: bool = False
    fire_at_threshold: bool = False
    graded: bool = False
    graded_max: int = 2**31 - 1
    scale_voltage: bool = False
    current_lag: bool = False
    synapse_delay: int = 0

    def __post_init__(self) -> None:
        for f, typ in (("integration", Integration), ("input_scale", InputScale),
                       ("syn_input_scale", InputScale), ("reset", ResetMode)):
            val = getattr(self, f)
            if not isinstance(val, typ):
                try:
                    object.__setattr__(self, f, typ(val))
                except ValueError:
                    raise UsageError(
                        f"NIR option {f}={val!r} is not one of "
                        + ", ".join(m.value for m in typ),
                        obj=f, rule="option value", hint=f"pass a {typ.__name__}",
                    ) from None
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise UsageError(f"NIR option dt={self.dt!r} must be a positive number",
                             obj="dt", rule="dt > 0", hint="e.g. dt=1e-4 (seconds)")
        if int(self.synapse_delay) != self.synapse_delay or self.synapse_delay < 0:
            raise UsageError(f"NIR option synapse_delay={self.synapse_delay!r} must be an "
                             "integer >= 0", obj="synapse_delay", rule="delay >= 0",
                             hint="0 (PyTorch frameworks) or 1 (Lava)")
        if int(self.graded_max) != self.graded_max or self.graded_max < 1:
            raise UsageError(f"NIR option graded_max={self.graded_max!r} must be >= 1",
                             obj="graded_max", rule="graded_max >= 1", hint="e.g. 2**31-1")

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (for network metadata)."""
        out: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out


class Preset(enum.Enum):
    """Named conventions of the frameworks that read and write NIR (docs/nir.md).

    ``Preset.NORSE.options`` is the :class:`NirOptions`; the values are the names the CLI
    accepts (``--preset norse``).
    """

    SNNTORCH = "snntorch"
    NORSE = "norse"
    SINABS = "sinabs"
    ROCKPOOL = "rockpool"
    LAVA = "lava"

    @property
    def options(self) -> NirOptions:
        """The options of this preset."""
        return _PRESET_OPTIONS[self]


_E, _X, _U = InputScale.EULER, InputScale.EXACT, InputScale.UNIT
_PRESET_OPTIONS: dict[Preset, NirOptions] = {
    # snntorch/export_nir.py: tau = dt/(1-beta), r = tau/dt, w_in = tau_syn/dt, dt = 1e-4;
    # Leaky / Synaptic: mem = beta*mem + syn, reset_mechanism="subtract", reset_delay=True;
    # snntorch/import_nir.py divides the threshold by r*dt/tau ("hack_w_scale").
    Preset.SNNTORCH: NirOptions(dt=1e-4, integration=Integration.EULER, input_scale=_E,
                                syn_input_scale=_E, reset=ResetMode.SUBTRACT,
                                reset_delay=True, scale_voltage=True),
    # norse/torch/functional/lif_box.py: v += dt/tau*(v_leak - v + x), reset to 0;
    # lif.py (LIFCell, exported as CubaLIF): i += x (no dt/tau_syn), then
    # v += dt/tau_mem*(v_leak - v + i) with that same step's current, then i decays.
    Preset.NORSE: NirOptions(dt=1e-3, integration=Integration.EULER, input_scale=_E,
                             syn_input_scale=_U, reset=ResetMode.ZERO),
    # sinabs/nir.py + layers/functional/lif.py: alpha = exp(-1/tau) with tau in steps,
    # v = alpha*v + x (norm_input=False), MultiSpike (v >= theta), MembraneSubtract.
    Preset.SINABS: NirOptions(dt=1.0, integration=Integration.EXACT, input_scale=_U,
                              syn_input_scale=_U, reset=ResetMode.SUBTRACT,
                              fire_at_threshold=True, graded=True),
    # Rockpool (not installed here; from the NIR paper's description): exact decay,
    # subtractive reset.
    Preset.ROCKPOOL: NirOptions(dt=1e-3, integration=Integration.EXACT, input_scale=_X,
                                syn_input_scale=_X, reset=ResetMode.SUBTRACT),
    # NIR paper's lava importer (paper/01_lif/_lava_nir.py): dv = dt/tau, weights * dt/tau,
    # du = 1, reset to 0; Lava's Dense delivers a spike in the next step.
    Preset.LAVA: NirOptions(dt=1e-4, integration=Integration.EULER, input_scale=_E,
                            syn_input_scale=_U, reset=ResetMode.ZERO, synapse_delay=1),
}


@dataclass(frozen=True, slots=True)
class NirImportWarning:
    """A defect the lenient importer repaired: the node, the rule, what it did."""

    node: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"node '{self.node}': {self.message}"


@dataclass(frozen=True)
class NirImport:
    """What :func:`from_nir` returns; unpacks as ``net, warnings = from_nir(...)``."""

    network: ir.Network
    warnings: list[NirImportWarning] = field(default_factory=list)
    options: NirOptions = field(default_factory=NirOptions)

    def __iter__(self) -> Iterator[Any]:
        yield self.network
        yield self.warnings


def resolve_options(preset: Preset | str | None = None, options: NirOptions | None = None,
                    **overrides: Any) -> NirOptions:
    """Options from a preset (or ``options``) with keyword overrides (None = keep)."""
    if options is not None and preset is not None:
        raise UsageError("pass preset= or options=, not both", obj="preset",
                         rule="one source of options", hint="use preset=... and overrides")
    if preset is not None and not isinstance(preset, Preset):
        try:
            preset = Preset(str(preset).lower())
        except ValueError:
            raise UsageError(f"unknown NIR preset {preset!r}", obj=str(preset),
                             rule="known preset",
                             hint="one of " + ", ".join(p.value for p in Preset)) from None
    base = options if options is not None else (preset.options if preset else NirOptions())
    changes = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in fields(NirOptions)}
    bad = sorted(set(changes) - known)
    if bad:
        raise UsageError(f"unknown NIR option {bad[0]!r}", obj=bad[0], rule="known option",
                         hint="options: " + ", ".join(sorted(known)))
    return replace(base, **changes) if changes else base


# ============================================================================ reading
_NODE_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
               "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF",
               "Input", "Output", "NIRGraph")


class _Ctx:
    """Collects warnings (lenient) or raises (strict)."""

    def __init__(self, lenient: bool, where: str) -> None:
        self.lenient = lenient
        self.where = where
        self.warnings: list[NirImportWarning] = []

    def defect(self, node: str, rule: str, message: str, hint: str) -> None:
        if not self.lenient:
            raise ImportFormatError(
                f"{self.where}: node '{node}': {message}", obj=node, rule=rule,
                hint=f"{hint}; or import with lenient=True to repair it with a warning",
            )
        self.warnings.append(NirImportWarning(node=node, rule=rule, message=message))

    def fail(self, node: str, rule: str, message: str, hint: str) -> ImportFormatError:
        return ImportFormatError(f"{self.where}: node '{node}': {message}", obj=node,
                                 rule=rule, hint=hint)


def _raw_node(cls: type, data: dict[str, Any]) -> Any:
    """Build a nir node without its __post_init__ checks (lenient repair of bad files)."""
    node = object.__new__(cls)
    for k, v in data.items():
        if k != "type":
            object.__setattr__(node, k, v)
    if not hasattr(node, "metadata"):
        node.metadata = {}
    if cls.__name__ == "Input":
        shape = data.get("shape", data.get("input_type"))
        node.input_type = {"input": np.asarray(shape)}
        node.output_type = {"output": np.asarray(shape)}
    elif cls.__name__ == "Output":
        shape = data.get("shape", data.get("output_type"))
        node.input_type = {"input": np.asarray(shape)}
        node.output_type = {"output": np.asarray(shape)}
    return node


def _dict_to_node(data: Any, name: str, ctx: _Ctx) -> Any:
    nir = _nir()
    if not isinstance(data, dict) or "type" not in data:
        raise ctx.fail(name, "NIR node", "is not a NIR node (no 'type' entry)",
                       "the file is damaged or not written by nir.write")
    typ = data["type"]
    typ = typ.decode() if isinstance(typ, bytes) else str(typ)
    if typ not in _NODE_TYPES:
        raise ctx.fail(name, "supported node", f"has unsupported node type '{typ}'",
                       "supported: " + ", ".join(_NODE_TYPES))
    if typ == "NIRGraph":
        if "nodes" not in data or "edges" not in data:
            raise ctx.fail(name, "NIR graph", "is a NIRGraph without 'nodes' or 'edges'",
                           "the file is damaged")
        nodes = {}
        for key, sub in data["nodes"].items():
            key = key.decode() if isinstance(key, bytes) else str(key)
            nodes[key] = _dict_to_node(sub, f"{name}.{key}" if name else key, ctx)
        edges = []
        raw_edges = data["edges"]
        try:
            for a, b in raw_edges:
                a = a.decode() if isinstance(a, bytes) else str(a)
                b = b.decode() if isinstance(b, bytes) else str(b)
                edges.append((a, b))
        except (TypeError, ValueError):
            raise ctx.fail(name or "graph", "NIR edges", "has malformed edges (expected "
                           "pairs of node names)", "the file is damaged") from None
        graph = object.__new__(nir.NIRGraph)
        graph.nodes, graph.edges, graph.metadata = nodes, edges, {}
        return graph
    clean = {k: v for k, v in data.items() if k != "metadata" or isinstance(v, dict)}
    cls = getattr(nir, typ)
    try:
        return cls.from_dict(dict(clean))
    except Exception as exc:  # nir raises AssertionError, TypeError, ValueError...
        msg = f"{typ} node cannot be built ({type(exc).__name__}: {exc})".replace("\n", " ")
        if isinstance(exc, TypeError):
            raise ctx.fail(name, "NIR node fields", msg, "the node misses or has unknown "
                           "fields; was it written by a different NIR version?") from None
        ctx.defect(name, "NIR node checks", msg, "fix the node's array shapes")
        return _raw_node(cls, clean)


def read_nir(path: str | os.PathLike, *, lenient: bool = False) -> tuple[Any, list]:
    """Read a NIR file into a ``nir.NIRGraph`` without nir's own type checks.

    Every failure (missing file, not HDF5, HDF5 that is not NIR, a node that cannot be
    built) raises :class:`nmcompiler.ir.errors.ImportFormatError` naming the file and node.
    """
    nir = _nir()
    import h5py

    path = Path(path)
    where = f"NIR file '{path}'"
    ctx = _Ctx(lenient, where)
    if not path.is_file():
        raise ImportFormatError(f"{where} does not exist", obj=str(path), rule="file exists",
                                hint="check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ImportFormatError(
            f"{where} is not an HDF5 file ({exc})", obj=str(path), rule="HDF5 format",
            hint="NIR files are written by nir.write (HDF5); is this the right file?",
        ) from None
    try:
        with f:
            if "node" not in f:
                keys = ", ".join(sorted(f.keys())[:5]) or "nothing"
                raise ImportFormatError(
                    f"{where} is HDF5 but not NIR: it has no 'node' group (it holds {keys})",
                    obj=str(path), rule="NIR format", hint="write NIR files with nir.write",
                )
            try:
                data = nir.serialization.hdf2dict(f["node"])
            except Exception as exc:
                raise ImportFormatError(f"{where}: its node tree cannot be read ({exc})",
                                        obj=str(path), rule="NIR format",
                                        hint="the file is damaged") from None
    except OSError as exc:
        raise ImportFormatError(f"{where} cannot be read ({exc})", obj=str(path),
                                rule="HDF5 format", hint="the file is damaged") from None
    if data.get("type") not in ("NIRGraph", b"NIRGraph"):
        graph = _dict_to_node(data, "node", ctx)
        return graph, ctx.warnings
    return _dict_to_node(data, "", ctx), ctx.warnings


# ============================================================================ flattening
_NEURONS = ("LIF", "IF", "LI", "I", "CubaLIF", "CubaLI", "Threshold")
_LINEAR = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
           "Flatten", "Delay")


@dataclass
class _FNode:
    name: str
    obj: Any
    kind: str  # input, output, neuron, linear, pass
    typ: str


def _flatten(graph: Any, prefix: str, nodes: dict[str, _FNode], edges: list, top: bool,
             ctx: _Ctx) -> tuple[list[str], list[str]]:
    nir = _nir()
    if not isinstance(getattr(graph, "nodes", None), dict):
        raise ctx.fail(prefix.rstrip(".") or "graph", "NIR graph", "has no node dictionary",
                       "pass a nir.NIRGraph")
    local: dict[str, tuple] = {}
    ins, outs = [], []
    for key, node in graph.nodes.items():
        flat = prefix + str(key)
        if isinstance(node, nir.NIRGraph):
            sub_in, sub_out = _flatten(node, flat + ".", nodes, edges, False, ctx)
            local[key] = ("graph", flat, sub_in, sub_out)
            continue
        typ = type(node).__name__
        if typ not in _NODE_TYPES:
            raise ctx.fail(flat, "supported node", f"has unsupported node type '{typ}'",
                           "supported: " + ", ".join(_NODE_TYPES))
        if typ == "Input":
            kind = "input" if top else "pass"
            ins.append(flat)
        elif typ == "Output":
            kind = "output" if top else "pass"
            outs.append(flat)
        elif typ in _NEURONS:
            kind = "neuron"
        else:
            kind = "linear"
        if flat in nodes:
            raise ctx.fail(flat, "unique names", "is defined twice after flattening nested "
                           "graphs", "rename the subgraph or the node")
        nodes[flat] = _FNode(flat, node, kind, typ)
        local[key] = ("node", flat)

    gname = prefix.rstrip(".") or "graph"

    def resolve(ref: str, as_src: bool, edge: tuple) -> str:
        if ref in local:
            entry = local[ref]
            if entry[0] == "node":
                return entry[1]
            cands = entry[3] if as_src else entry[2]
            if len(cands) != 1:
                what = "Output" if as_src else "Input"
                raise ctx.fail(entry[1], "subgraph ports", f"is the subgraph at an end of edge "
                               f"{edge}, but it has {len(cands)} {what} nodes",
                               f"name the {what} node as '{ref}.<name>'")
            return cands[0]
        for i, ch in enumerate(ref):
            if ch == "." and ref[:i] in local and local[ref[:i]][0] == "graph":
                flat = local[ref[:i]][1] + "." + ref[i + 1:]
                if flat in nodes:
                    return flat
        raise ImportFormatError(
            f"{ctx.where}: edge {edge} of graph '{gname}' names node '{ref}', which does not "
            "exist (a dangling edge)", obj=ref, rule="existing node",
            hint="known nodes: " + ", ".join(list(local)[:10]),
        )

    raw = getattr(graph, "edges", None)
    if raw is None:
        raise ctx.fail(gname, "NIR graph", "has no edge list", "pass a nir.NIRGraph")
    seen = set()
    for edge in raw:
        try:
            a, b = edge
        except (TypeError, ValueError):
            raise ctx.fail(gname, "NIR edges", f"has a malformed edge {edge!r}",
                           "edges are (source, target) pairs") from None
        e = (resolve(str(a), True, (a, b)), resolve(str(b), False, (a, b)))
        if e in seen:
            ctx.defect(e[1], "unique edges", f"has the edge {(a, b)} twice",
                       "remove the duplicate edge")
            continue
        seen.add(e)
        edges.append(e)
    return ins, outs


# ============================================================================ shapes
def _arr(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _shape_of(x: Any) -> tuple[int, ...] | None:
    if x is None:
        return None
    a = _arr(x).reshape(-1)
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


def _neuron_declared(fn: _FNode, ctx: _Ctx) -> tuple[int, ...]:
    shapes = {}
    for p in _PARAMS[fn.typ]:
        val = getattr(fn.obj, p, None)
        if val is None:
            if p in ("v_reset", "w_in"):
                continue
            raise ctx.fail(fn.name, "NIR parameters", f"{fn.typ} node has no '{p}'",
                           "the file is damaged")
        a = _arr(val)
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


def _chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The IR shape of a NIR shape: (C, L) becomes (C, 1, L) (Conv1d as Conv2d, H = 1)."""
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)


def _pad(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int], fn: _FNode,
         ctx: _Ctx) -> tuple[int, int]:
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
    return lin._pair(_arr(padding).reshape(-1).tolist() * (2 if _arr(padding).size == 1
                                                              else 1))


def _geometry(fn: _FNode, in_shape: tuple[int, ...], ctx: _Ctx) -> tuple[Any, tuple]:
    """(lin.Op without scaling info, NIR output shape) of a linear node."""
    o = fn.obj
    n_in = int(np.prod(in_shape))
    if fn.typ in ("Affine", "Linear"):
        w = _arr(o.weight).astype(np.float64)
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
    if fn.typ == "Scale":
        s = _arr(o.scale).astype(np.float64)
        if s.shape != tuple(in_shape):
            if s.size == 1:
                ctx.defect(fn.name, "scalar parameter", f"scale is a scalar where shape "
                           f"{in_shape} is expected; broadcast", "write one value per channel")
            else:
                raise ctx.fail(fn.name, "scale shape", f"scale has shape {s.shape} but "
                               f"receives {in_shape} (wrong array shapes)", "fix the scale")
        return lin.Op("diag", n_in, n_in, np.broadcast_to(s.reshape(-1) if s.size > 1 else
                                                           s.reshape(()), (n_in,)).copy()), \
            tuple(in_shape)
    if fn.typ in ("Conv1d", "Conv2d"):
        w = _arr(o.weight).astype(np.float64)
        one = fn.typ == "Conv1d"
        if w.ndim != (3 if one else 4):
            raise ctx.fail(fn.name, "weight shape", f"{fn.typ} weight has shape {w.shape} "
                           "(wrong array shapes)", "use PyTorch's OI(H)W layout")
        if len(in_shape) != (2 if one else 3):
            raise ctx.fail(fn.name, "input shape", f"{fn.typ} receives shape {in_shape}, "
                           f"expected {'(C, L)' if one else '(C, H, W)'} (wrong array shapes)",
                           "feed it a channel-first grid")
        in3 = _chw(tuple(in_shape))
        if one:
            w = w[:, :, None, :]

            def p1(v: Any) -> tuple[int, int]:
                a = _arr(v).reshape(-1)
                return (1, int(a[0])) if a.dtype.kind in "iuf" else v
            stride, dil = p1(o.stride), p1(o.dilation)
            stride = (1, stride[1])
            dil = (1, dil[1])
            pad = o.padding
            if not isinstance(pad, (str, bytes)):
                pad = (0, int(_arr(pad).reshape(-1)[0]))
            else:
                pad = _pad(pad, (1, w.shape[3]), dil, fn, ctx)
        else:
            stride = lin._pair(_arr(o.stride).reshape(-1).tolist() * 2)
            dil = lin._pair(_arr(o.dilation).reshape(-1).tolist() * 2)
            pad = _pad(o.padding, (w.shape[2], w.shape[3]), dil, fn, ctx)
        groups = int(_arr(o.groups).reshape(-1)[0])
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
    if fn.typ in ("SumPool2d", "AvgPool2d"):
        if len(in_shape) != 3:
            raise ctx.fail(fn.name, "input shape", f"{fn.typ} receives shape {in_shape}, "
                           "expected (C, H, W) (wrong array shapes)", "pool a CHW grid")
        k = lin._pair(_arr(o.kernel_size).reshape(-1).tolist() * 2)
        s = lin._pair(_arr(o.stride).reshape(-1).tolist() * 2)
        p = _pad(o.padding, k, (1, 1), fn, ctx)
        cls = ir.SumPool2d if fn.typ == "SumPool2d" else ir.AvgPool2d
        pool = cls(kernel=k, stride=s, padding=p)
        out3 = ir.pool_output_shape(tuple(in_shape), pool)
        return lin.Op("pool", n_in, int(np.prod(out3)), pool, tuple(in_shape), out3), out3
    if fn.typ == "Flatten":
        start = int(_arr(getattr(o, "start_dim", 0)).reshape(-1)[0])
        end = int(_arr(getattr(o, "end_dim", -1)).reshape(-1)[0])
        return lin.Op("ident", n_in, n_in), _flatten_shape(tuple(in_shape), start, end)
    if fn.typ == "Delay":
        return lin.Op("ident", n_in, n_in), tuple(in_shape)
    # pass-through (Input / Output of a subgraph)
    return lin.Op("ident", n_in, n_in), tuple(in_shape)


def _declared_port(fn: _FNode) -> tuple[int, ...] | None:
    o = fn.obj
    t = o.input_type if fn.typ == "Input" else o.output_type
    if not isinstance(t, dict) or not t:
        return None
    return _shape_of(next(iter(t.values())))


def _infer_shapes(nodes: dict[str, _FNode], edges: list, ctx: _Ctx
                  ) -> tuple[dict[str, tuple], dict[str, tuple], dict[str, Any]]:
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    out: dict[str, tuple] = {}
    inn: dict[str, tuple] = {}
    ops: dict[str, Any] = {}
    for n, fn in nodes.items():
        if fn.kind == "input":
            shp = _declared_port(fn)
            if shp is None or any(d < 1 for d in shp):
                raise ctx.fail(n, "input shape", f"Input node has no valid shape ({shp})",
                               "give the Input node a shape")
            if preds[n]:
                raise ctx.fail(n, "input edges", "Input node receives edges from "
                               + ", ".join(preds[n]), "Input nodes are sources")
            out[n] = inn[n] = shp
    declared = {n: _neuron_declared(fn, ctx) for n, fn in nodes.items() if fn.kind == "neuron"}

    def incoming(n: str) -> tuple | None:
        shp = [out[p] for p in preds[n]]
        if not shp:
            return None
        for p, s in zip(preds[n], shp, strict=True):
            if s != shp[0]:
                if int(np.prod(s)) == int(np.prod(shp[0])):
                    ctx.defect(n, "input shapes", f"receives shape {s} from '{p}' and "
                               f"{shp[0]} from '{preds[n][0]}'; flattened", "reshape one")
                    continue
                raise ctx.fail(n, "input shapes", f"receives shape {s} from '{p}' but "
                               f"{shp[0]} from '{preds[n][0]}' (wrong array shapes)",
                               "every edge into a node carries the same shape")
        return shp[0]

    def settle_neuron(n: str, inc: tuple | None) -> None:
        decl = declared[n]
        shape = decl
        if inc is not None and tuple(inc) != tuple(decl):
            if int(np.prod(decl)) == 1 and int(np.prod(inc)) > 1 or decl == ():
                ctx.defect(n, "scalar parameter", f"{nodes[n].typ} parameters are scalars "
                           f"where arrays of shape {inc} are expected; broadcast",
                           "write one value per neuron")
                shape = tuple(inc)
            elif int(np.prod(decl)) == int(np.prod(inc)):
                ctx.defect(n, "input shapes", f"receives shape {inc} but its parameters have "
                           f"shape {decl}; flattened", "match the shapes")
            else:
                raise ctx.fail(n, "input shapes", f"{nodes[n].typ} of shape {decl} receives "
                               f"shape {inc} (wrong array shapes)", "match the layer sizes")
        if shape == ():
            shape = (1,)
        inn[n] = out[n] = tuple(shape)

    pending = [n for n in nodes if n not in out]
    while pending:
        progress = False
        for n in list(pending):
            fn = nodes[n]
            if not all(p in out for p in preds[n]):
                continue
            inc = incoming(n)
            if fn.kind == "neuron":
                settle_neuron(n, inc)
            elif fn.kind == "output":
                if inc is None:
                    raise ctx.fail(n, "output edges", "Output node receives no edge",
                                   "connect it or remove it")
                decl = _declared_port(fn)
                if decl is not None and tuple(decl) != tuple(inc):
                    ctx.defect(n, "output shape", f"Output declares shape {decl} but receives "
                               f"{inc}; the received shape is used", "fix the Output's shape")
                inn[n] = out[n] = tuple(inc)
            else:
                if inc is None:
                    raise ctx.fail(n, "node inputs", f"{fn.typ} node receives no edge",
                                   "connect it or remove it")
                op, shp = _geometry(fn, inc, ctx)
                if fn.kind == "pass":
                    decl = _declared_port(fn)
                    if decl is not None and tuple(decl) != tuple(inc):
                        ctx.defect(n, "port shape", f"subgraph port declares {decl} but "
                                   f"receives {inc}", "fix the subgraph's Input/Output shape")
                if fn.typ == "Delay":
                    d = _arr(fn.obj.delay)
                    if d.shape != tuple(inc) and d.size != 1:
                        raise ctx.fail(n, "delay shape", f"delay has shape {d.shape} but "
                                       f"receives {inc} (wrong array shapes)", "fix the delay")
                inn[n], out[n], ops[n] = tuple(inc), tuple(shp), op
            pending.remove(n)
            progress = True
        if not progress:
            cyc = [n for n in pending if nodes[n].kind == "neuron"]
            if not cyc:
                n = pending[0]
                raise ctx.fail(n, "shape inference", "its shape cannot be inferred: it is fed "
                               "by " + (", ".join(p for p in preds[n] if p not in out)
                                        or "nothing") + " only in a loop without neurons",
                               "a cycle must pass through a neuron node")
            n = cyc[0]
            settle_neuron(n, None)
            pending.remove(n)
    # check neurons' inputs now that all shapes are known (cycles)
    for n, fn in nodes.items():
        if fn.kind == "neuron" and preds[n]:
            inc = incoming(n)
            if int(np.prod(inc)) != int(np.prod(out[n])):
                raise ctx.fail(n, "input shapes", f"{fn.typ} of shape {out[n]} receives shape "
                               f"{inc} (wrong array shapes)", "match the layer sizes")
    return inn, out, ops


# ============================================================================ discretising
@dataclass
class _Pop:
    name: str
    shape: tuple[int, ...]
    cls: type
    params: dict[str, Any]
    gain: np.ndarray  # per-neuron gain of the input (NIR units -> voltage)
    cuba: bool
    lag: int = 0
    bias_in: np.ndarray | None = None  # summed bias reaching the neuron (NIR input units)
    self_proj: list = field(default_factory=list)


def _param(fn: _FNode, name: str, n: int, shape: tuple, default: float | None = None
           ) -> np.ndarray:
    val = getattr(fn.obj, name, None)
    if val is None:
        val = default
    a = _arr(val).astype(np.float64)
    if a.size == 1:
        a = np.full(n, float(a.reshape(-1)[0]))
    else:
        a = a.reshape(-1)
    if a.shape != (n,):
        raise ImportFormatError(f"node '{fn.name}': parameter '{name}' has {a.size} values "
                                f"for {n} neurons (wrong array shapes)", obj=fn.name,
                                rule="parameter shape", hint=f"give {shape} values")
    if not np.all(np.isfinite(a)):
        raise ImportFormatError(f"node '{fn.name}': parameter '{name}' has NaN or infinite "
                                "values", obj=fn.name, rule="finite parameters",
                                hint="the exporter wrote invalid values")
    return a


def _cannot(fn: _FNode, what: str, opts: NirOptions, hint: str) -> ImportFormatError:
    return ImportFormatError(
        f"node '{fn.name}' ({fn.typ}) cannot be discretised with dt={opts.dt:g}, "
        f"integration={opts.integration.value}: {what}", obj=fn.name, rule="discretisation",
        hint=hint,
    )


def _decay(fn: _FNode, tau: np.ndarray, pname: str, opts: NirOptions
           ) -> tuple[np.ndarray, np.ndarray]:
    """(lam, dt/tau) of a time constant."""
    if np.any(tau <= 0):
        raise _cannot(fn, f"{pname} has a value <= 0 ({tau[tau <= 0][0]:g})", opts,
                      "time constants must be positive")
    x = opts.dt / tau
    if opts.integration is Integration.EULER:
        lam = 1.0 - x
        if np.any(lam < 0):
            raise _cannot(fn, f"forward Euler needs dt <= {pname}, but {pname} = "
                          f"{tau.min():g}, so the decay 1 - dt/{pname} is negative", opts,
                          "use integration='exact' or a smaller dt")
    else:
        lam = np.exp(-x)
    return lam, x


def _gain(scale: InputScale, x: np.ndarray, lam: np.ndarray, r: np.ndarray) -> np.ndarray:
    if scale is InputScale.EULER:
        return x * r
    if scale is InputScale.EXACT:
        return (1.0 - lam) * r
    return r.copy()


def _make_pop(fn: _FNode, shape: tuple, opts: NirOptions) -> _Pop:
    n = int(np.prod(shape))
    t = fn.typ
    ishape = _chw(shape)
    if t == "Threshold":
        theta = _param(fn, "threshold", n, shape)
        if np.any(theta <= 0):
            raise _cannot(fn, "the IR needs a positive threshold", opts,
                          "shift the threshold with a bias before it")
        return _Pop(fn.name, ishape, ir.LIF, dict(lam=0.0, theta=theta, reset=ir.Reset.NONE),
                    np.ones(n), False)
    r = _param(fn, "r", n, shape)
    if t in ("IF", "I"):
        lam = np.ones(n)
        gain = r.copy() if opts.input_scale is InputScale.UNIT else opts.dt * r
        alpha = None
        leak = np.zeros(n)
    else:
        tau_name = "tau" if t in ("LIF", "LI") else "tau_mem"
        tau = _param(fn, tau_name, n, shape)
        lam, x = _decay(fn, tau, tau_name, opts)
        gain = _gain(opts.input_scale, x, lam, r)
        leak = (1.0 - lam) * _param(fn, "v_leak", n, shape)
        alpha = None
        if t in ("CubaLIF", "CubaLI"):
            tau_s = _param(fn, "tau_syn", n, shape)
            alpha, xs = _decay(fn, tau_s, "tau_syn", opts)
            w_in = _param(fn, "w_in", n, shape, 1.0)
            gain = gain * _gain(opts.syn_input_scale, xs, alpha, w_in)
    if np.any(gain == 0) and opts.scale_voltage:
        raise _cannot(fn, "scale_voltage needs a non-zero input gain (r = 0?)", opts,
                      "use scale_voltage=False")
    cuba = alpha is not None
    spiking = t in ("LIF", "IF", "CubaLIF")
    params: dict[str, Any] = dict(lam=lam, bias=leak)
    if cuba:
        params["alpha_u"] = alpha
    if spiking:
        theta = _param(fn, "v_threshold", n, shape)
        v_reset = _param(fn, "v_reset", n, shape, 0.0)
        if np.any(theta <= 0):
            raise _cannot(fn, f"the IR needs a positive threshold, found {theta.min():g}",
                          opts, "shift voltages so the threshold is positive")
        params.update(theta=theta, v_reset=v_reset, fire_at_threshold=opts.fire_at_threshold,
                      graded=opts.graded, graded_max=int(opts.graded_max))
        cls = ir.IF if t == "IF" else ir.LIF
    else:
        cls = ir.LI
    if opts.scale_voltage:
        for k in ("theta", "v_reset", "bias"):
            if k in params:
                params[k] = params[k] / gain
    if spiking:
        if opts.reset is ResetMode.ZERO:
            params["reset"] = ir.Reset.HARD
            if opts.reset_delay and cuba:
                params["refractory"] = 1
        elif opts.reset_delay:
            params["reset"] = ir.Reset.NONE
            if cls is ir.IF:
                cls = ir.LIF
        else:
            params["reset"] = ir.Reset.SOFT
    pop = _Pop(fn.name, ishape, cls, params, gain, cuba,
               lag=1 if (cuba and opts.current_lag) else 0)
    if spiking and opts.reset is ResetMode.SUBTRACT and opts.reset_delay:
        pop.self_proj.append((-params["theta"], 1))
        if cuba:
            pop.self_proj.append((alpha * params["theta"], 2))
    return pop


def _build_model(pop: _Pop) -> Any:
    p = dict(pop.params)
    allowed = {f.name for f in fields(pop.cls)}
    model_kw = {}
    for k, v in p.items():
        if k not in allowed:
            continue
        if isinstance(v, np.ndarray):
            v = v.astype(np.float64)
        model_kw[k] = v
    return pop.cls(**model_kw)


# ============================================================================ graph walk
def _back_edges(order: list[str], edges: list[tuple[str, str]], roots: list[str]
                ) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first search from ``roots`` (then the rest)."""
    succ: dict[str, list[str]] = {n: [] for n in order}
    for a, b in edges:
        succ[a].append(b)
    colour = dict.fromkeys(order, 0)
    back: set[tuple[str, str]] = set()
    for root in list(roots) + list(order):
        if colour[root]:
            continue
        stack = [(root, 0)]
        colour[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(succ[node]):
                stack.append((node, i + 1))
                nxt = succ[node][i]
                if colour[nxt] == 1:
                    back.add((node, nxt))
                elif colour[nxt] == 0:
                    colour[nxt] = 1
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
    return back


def _delay_steps(fn: _FNode, n: int, opts: NirOptions, ctx: _Ctx) -> np.ndarray:
    d = _arr(fn.obj.delay).astype(np.float64).reshape(-1)
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
        dt, integration, input_scale, reset, **more_options: override single options.
        lenient: repair known defects (a wrong Output shape, scalar parameters where
            arrays are expected, a missing Flatten, duplicate edges, delays that are not
            whole steps) with a :class:`NirImportWarning` each; strict mode (default)
            raises :class:`nmcompiler.ir.errors.ImportFormatError` naming the node instead.
        name: the network's name (default: the file's stem, or "nir").

    Returns:
        :class:`NirImport`: ``network``, ``warnings``, ``options``.
    """
    nir = _nir()
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
    ctx = _Ctx(lenient, where)
    ctx.warnings.extend(warns)
    try:
        net = _convert(graph, opts, ctx, net_name)
    except NmcError as exc:
        if isinstance(exc, ImportFormatError):
            raise
        raise ImportFormatError(f"{where}: {exc.message}", obj=exc.obj, rule=exc.rule,
                                hint=exc.hint) from None
    net.metadata.update({"frontend": "nir", "dt": opts.dt, "nir_options": opts.as_dict()})
    if isinstance(source, (str, os.PathLike)):
        net.metadata["source"] = str(source)
    return NirImport(net, ctx.warnings, opts)


def _convert(graph: Any, opts: NirOptions, ctx: _Ctx, net_name: str) -> ir.Network:
    nodes: dict[str, _FNode] = {}
    edges: list[tuple[str, str]] = []
    _flatten(graph, "", nodes, edges, True, ctx)
    if not any(fn.kind == "input" for fn in nodes.values()):
        # a graph without Input nodes: roots become inputs (nir's own inference does this)
        has_pred = {b for _, b in edges}
        for n, fn in list(nodes.items()):
            if n not in has_pred and fn.kind != "output":
                raise ctx.fail(n, "graph inputs", "the graph has no Input node",
                               "add an Input node before the first layer")
    inn, out, ops = _infer_shapes(nodes, edges, ctx)

    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    inputs = [n for n, fn in nodes.items() if fn.kind == "input"]
    back = _back_edges(list(nodes), edges, inputs)

    pops: dict[str, _Pop] = {}
    for n, fn in nodes.items():
        if fn.kind == "neuron":
            pops[n] = _make_pop(fn, out[n], opts)

    # ------------------------------------------------------------------ paths
    # a path: origin (input / neuron / biased linear node) -> linear nodes -> terminal
    paths: list[dict[str, Any]] = []

    def walk(origin: str, start: str, via: list[str], nback: int, from_edge: tuple) -> None:
        if from_edge in back:
            nback += 1
        fn = nodes[start]
        if fn.kind in ("neuron", "output"):
            paths.append(dict(origin=origin, via=list(via), target=start, nback=nback))
            return
        if start in via:
            loop = " -> ".join(via[via.index(start):] + [start])
            raise ImportFormatError(
                f"{ctx.where}: nodes {loop} form a loop without a neuron, which no step "
                "order can evaluate", obj=start, rule="no algebraic loop",
                hint="put a neuron node (or a Delay) into the loop")
        if not succ[start]:
            ctx.defect(start, "dead end", f"{fn.typ} node's output goes nowhere; ignored",
                       "connect it to a neuron or an Output")
            return
        for nxt in succ[start]:
            walk(origin, nxt, via + [start], nback, (start, nxt))

    for n, fn in nodes.items():
        if fn.kind in ("input", "neuron"):
            for nxt in succ[n]:
                walk(n, nxt, [], 0, (n, nxt))

    # snnTorch's delayed zero reset: RLeaky / RSynaptic / Synaptic zero the whole next
    # step (a one-step refractory period), Leaky keeps that step's input (a hard reset)
    if opts.reset_delay and opts.reset is ResetMode.ZERO:
        for p in paths:
            pop = pops.get(p["origin"])
            if pop is not None and p["target"] == p["origin"] and "theta" in pop.params:
                pop.params["refractory"] = 1

    # ------------------------------------------------------------------ network
    net = ir.Network(net_name)
    for n in inputs:
        net.input(n, shape=_chw(out[n]))
    for pop in pops.values():
        pop.bias_in = np.zeros(int(np.prod(pop.shape)))
    readouts: dict[str, str] = {}
    bias_src: list[str] = []

    def chain_ops(via: list[str]) -> list[Any]:
        return [ops[v] for v in via if nodes[v].typ != "Delay"]

    def target_pop(path: dict[str, Any]) -> str:
        t = path["target"]
        if nodes[t].kind == "neuron":
            return t
        if t not in readouts:
            pname = t
            pops[pname] = _Pop(pname, _chw(out[t]), ir.LI, dict(lam=0.0, bias=None),
                               np.ones(int(np.prod(out[t]))), False)
            pops[pname].bias_in = np.zeros(int(np.prod(out[t])))
            readouts[t] = pname
        return readouts[t]

    # outputs fed directly by a neuron need no readout population
    direct_out: dict[str, str] = {}
    for p in paths:
        t = p["target"]
        if (nodes[t].kind == "output" and nodes[p["origin"]].kind == "neuron"
                and all(nodes[v].kind == "pass" for v in p["via"])):
            direct_out.setdefault(t, p["origin"])
    for t in list(direct_out):
        if sum(1 for p in paths if p["target"] == t) > 1:
            del direct_out[t]

    # biases: every biased linear node pushes its bias through the rest of its paths
    biased = {}
    for n, fn in nodes.items():
        if fn.typ in ("Affine", "Conv1d", "Conv2d"):
            b = getattr(fn.obj, "bias", None)
            if b is None:
                continue
            b = _arr(b).astype(np.float64).reshape(-1)
            if b.size == 0 or not np.any(b):
                continue
            if fn.typ == "Affine":
                if b.size == 1 and ops[n].n_out > 1:
                    ctx.defect(n, "scalar parameter", "bias is a scalar where an array of "
                               f"{ops[n].n_out} is expected; broadcast", "one bias per output")
                    b = np.full(ops[n].n_out, b[0])
                if b.size != ops[n].n_out:
                    raise ctx.fail(n, "bias shape", f"bias has {b.size} values for "
                                   f"{ops[n].n_out} outputs (wrong array shapes)", "fix it")
                vec = b
            else:
                c_out = ops[n].out3[0]
                if b.size == 1 and c_out > 1:
                    ctx.defect(n, "scalar parameter", "bias is a scalar where one per output "
                               "channel is expected; broadcast", "one bias per channel")
                    b = np.full(c_out, b[0])
                if b.size != c_out:
                    raise ctx.fail(n, "bias shape", f"bias has {b.size} values for {c_out} "
                                   "output channels (wrong array shapes)", "fix it")
                vec = np.repeat(b, ops[n].n_out // c_out)
            biased[n] = vec
    bias_done: set[tuple] = set()
    for p in paths:
        for i, v in enumerate(p["via"]):
            if v not in biased:
                continue
            rest = tuple(p["via"][i + 1:])
            key = (v, rest, p["target"])
            if key in bias_done:
                continue
            bias_done.add(key)
            op = lin.compose(chain_ops(list(rest)), ops[v].n_out)
            vec = lin.apply(op, biased[v])
            if p["target"] in direct_out:
                del direct_out[p["target"]]
            pops[target_pop(p)].bias_in += vec

    # projections
    for p in paths:
        t = p["target"]
        if t in direct_out:
            continue
        tp = target_pop(p)
        pop = pops[tp]
        origin = p["origin"]
        n_src = int(np.prod(out[origin]))
        op = lin.compose(chain_ops(p["via"]), n_src)
        if op.n_out != int(np.prod(pop.shape)):
            raise ctx.fail(t, "input shapes", f"receives {op.n_out} values from '{origin}' "
                           f"but has {int(np.prod(pop.shape))} neurons (wrong array shapes)",
                           "match the layer sizes")
        if op.kind in ("conv", "pool") and (len(_chw(out[origin])) != 3 or
                                            len(pop.shape) != 3):
            op = lin.Op("matrix", op.n_in, op.n_out, lin.matrix(op))
        if not opts.scale_voltage:
            op = lin.scale_out(op, pop.gain)
        # delays
        delays = [v for v in p["via"] if nodes[v].typ == "Delay"]
        extra = 0
        per_syn = None
        for v in delays:
            steps = _delay_steps(nodes[v], int(np.prod(out[v])), opts, ctx)
            if np.all(steps == steps[0]):
                extra += int(steps[0])
                continue
            idx = p["via"].index(v)
            after = [w for w in p["via"][idx + 1:] if ops[w].kind != "ident"]
            before = [w for w in p["via"][:idx] if ops[w].kind != "ident"]
            if op.kind not in ("matrix", "diag", "ident") or (after and before):
                raise ctx.fail(v, "per-synapse delays", "has unequal delays between linear "
                               "maps (or before a convolution), which the IR cannot express",
                               "move the Delay next to a neuron layer or make it uniform")
            per_syn = (steps, "post" if not after else "pre")
        base = max(opts.synapse_delay, p["nback"]) + extra + pop.lag
        conn = lin.to_connectivity(op)
        if per_syn is not None:
            steps, side = per_syn
            if isinstance(conn, ir.Dense):
                d = np.broadcast_to(steps[:, None] if side == "post" else steps[None, :],
                                    conn.weight.shape)
                conn = ir.Dense(weight=conn.weight, delays=np.ascontiguousarray(d))
            elif isinstance(conn, ir.OneToOne):
                conn = ir.OneToOne(weight=conn.weight, delays=steps.copy())
            else:
                pre = np.repeat(np.arange(conn.n_pre), np.diff(conn.indptr))
                d = steps[conn.indices] if side == "post" else steps[pre]
                conn = ir.Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                                 n_post=conn.n_post, delays=d.astype(np.int64))
        p["_proj"] = (origin, tp, conn, base)
    # create populations in node order, then projections
    for n, pop in pops.items():
        b = pop.bias_in
        if b is not None and np.any(b) and pop.cuba:
            src = "bias_source"
            k = 2
            while src in nodes or src in pops:
                src = f"bias_source#{k}"
                k += 1
            if not bias_src:
                bias_src.append(src)
                net.population(src, 1, ir.IF(theta=1.0, bias=1.0, fire_at_threshold=True))
            w = b if opts.scale_voltage else b * pop.gain
            pop.self_proj.append(("bias", bias_src[0], w, pop.lag))
        elif b is not None and np.any(b):
            add = b if opts.scale_voltage else b * pop.gain
            pop.params["bias"] = (pop.params.get("bias") if pop.params.get("bias") is not None
                                  else 0.0) + add
        if pop.params.get("bias") is None:
            pop.params["bias"] = 0.0
        net.population(n, shape=pop.shape, model=_build_model(pop))
    for p in paths:
        if "_proj" in p:
            origin, tp, conn, base = p["_proj"]
            net.connect(origin, tp, conn, delay=int(base))
    for n, pop in pops.items():
        for entry in pop.self_proj:
            if isinstance(entry[0], str):
                _, src, w, d = entry
                net.connect(src, n, ir.Dense(weight=np.asarray(w, dtype=np.float64)[:, None]),
                            delay=int(d), name=f"{src}->{n}")
            else:
                w, d = entry
                net.connect(n, n, ir.OneToOne(weight=np.asarray(w, dtype=np.float64)),
                            delay=int(d), name=f"{n}->{n}.reset#{d}")
    for n, fn in nodes.items():
        if fn.kind != "output":
            continue
        if n in direct_out:
            net.output(direct_out[n], name=n)
        elif n in readouts:
            net.output(readouts[n], name=n)
        else:
            ctx.defect(n, "output edges", "Output node receives nothing; ignored",
                       "connect it or remove it")
    try:
        ir.verify(net)
    except NmcError as exc:
        raise ImportFormatError(f"{ctx.where}: the imported network is invalid: "
                                f"{exc.message}", obj=exc.obj, rule=exc.rule,
                                hint=exc.hint) from None
    return net


from .nir_export import networks_equivalent, to_nir, write_nir  # noqa: E402
