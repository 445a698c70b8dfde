"""A NIR graph as flat nodes and edges: nested graphs flattened, cycles found.

Nested ``NIRGraph`` nodes are flattened with ``"subgraph.node"`` names; an edge that names
a subgraph is resolved to its single ``Input`` / ``Output`` node. Every node gets a
*kind* (``input``, ``output``, ``neuron``, ``linear`` or ``pass`` for the ports of a
subgraph) that the later stages dispatch on (docs/nir.md#graph-mapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmcompiler.ir.errors import ImportFormatError

from .options import NirImportWarning, require_nir

__all__ = ["NODE_TYPES", "NEURON_TYPES", "ImportContext", "FlatNode", "flatten",
           "back_edges"]

#: every NIR node type the importer reads
NODE_TYPES = ("Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
              "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF",
              "Input", "Output", "NIRGraph")
#: the node types that become populations
NEURON_TYPES = ("LIF", "IF", "LI", "I", "CubaLIF", "CubaLI", "Threshold")


class ImportContext:
    """Where an import is (for messages); collects warnings (lenient) or raises (strict)."""

    def __init__(self, lenient: bool, where: str) -> None:
        self.lenient = lenient
        self.where = where
        self.warnings: list[NirImportWarning] = []
        #: Input / Output types may carry a leading batch axis of 1 (NirOptions.batch_io)
        self.batch_io = False
        #: scalar neuron parameters broadcast silently (NirOptions.scalar_params)
        self.scalar_params = False

    def defect(self, node: str, rule: str, message: str, hint: str) -> None:
        """Record a repairable defect (lenient) or raise :class:`ImportFormatError`."""
        if not self.lenient:
            raise ImportFormatError(
                f"{self.where}: node '{node}': {message}", obj=node, rule=rule,
                hint=f"{hint}; or import with lenient=True to repair it with a warning",
            )
        self.warnings.append(NirImportWarning(node=node, rule=rule, message=message))

    def fail(self, node: str, rule: str, message: str, hint: str) -> ImportFormatError:
        """The error for a defect no option can repair (the caller raises it)."""
        return ImportFormatError(f"{self.where}: node '{node}': {message}", obj=node,
                                 rule=rule, hint=hint)


@dataclass
class FlatNode:
    """One node of the flattened graph: its flat name, the nir object, kind and type."""

    name: str
    obj: Any
    kind: str  # input, output, neuron, linear, pass
    typ: str


def _kind(typ: str, top: bool) -> str:
    """The kind of a node type; Input and Output of a nested graph are ``pass`` ports."""
    if typ in ("Input", "Output"):
        return typ.lower() if top else "pass"
    return "neuron" if typ in NEURON_TYPES else "linear"


def _resolve(ref: str, as_src: bool, edge: tuple, local: dict[str, tuple],
             nodes: dict[str, FlatNode], gname: str, ctx: ImportContext) -> str:
    """The flat node an edge end names: a node, a subgraph's single port, or
    ``"subgraph.node"``."""
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


def _flat_edges(graph: Any, local: dict[str, tuple], nodes: dict[str, FlatNode],
                edges: list, gname: str, ctx: ImportContext) -> None:
    """Append the graph's edges, resolved to flat names, to ``edges`` (duplicates dropped)."""
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
        e = (_resolve(str(a), True, (a, b), local, nodes, gname, ctx),
             _resolve(str(b), False, (a, b), local, nodes, gname, ctx))
        if e in seen:
            ctx.defect(e[1], "unique edges", f"has the edge {(a, b)} twice",
                       "remove the duplicate edge")
            continue
        seen.add(e)
        edges.append(e)


def flatten(graph: Any, prefix: str, nodes: dict[str, FlatNode], edges: list, top: bool,
            ctx: ImportContext) -> tuple[list[str], list[str]]:
    """Add the nodes and edges of ``graph`` (names prefixed) to ``nodes`` and ``edges``;
    returns the flat names of its Input and Output nodes."""
    nir = require_nir()
    if not isinstance(getattr(graph, "nodes", None), dict):
        raise ctx.fail(prefix.rstrip(".") or "graph", "NIR graph", "has no node dictionary",
                       "pass a nir.NIRGraph")
    local: dict[str, tuple] = {}
    ins, outs = [], []
    for key, node in graph.nodes.items():
        flat = prefix + str(key)
        if isinstance(node, nir.NIRGraph):
            sub_in, sub_out = flatten(node, flat + ".", nodes, edges, False, ctx)
            local[key] = ("graph", flat, sub_in, sub_out)
            continue
        typ = type(node).__name__
        if typ not in NODE_TYPES:
            raise ctx.fail(flat, "supported node", f"has unsupported node type '{typ}'",
                           "supported: " + ", ".join(NODE_TYPES))
        if typ == "Input":
            ins.append(flat)
        elif typ == "Output":
            outs.append(flat)
        if flat in nodes:
            raise ctx.fail(flat, "unique names", "is defined twice after flattening nested "
                           "graphs", "rename the subgraph or the node")
        nodes[flat] = FlatNode(flat, node, _kind(typ, top), typ)
        local[key] = ("node", flat)
    _flat_edges(graph, local, nodes, edges, prefix.rstrip(".") or "graph", ctx)
    return ins, outs


def back_edges(order: list[str], edges: list[tuple[str, str]], roots: list[str]
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
