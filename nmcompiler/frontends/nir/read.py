"""Reading NIR files: HDF5 -> ``nir.NIRGraph``, without nir's own type checks.

:func:`read_nir` turns every failure (missing file, not HDF5, HDF5 that is not NIR, a node
that cannot be built) into an :class:`~nmcompiler.ir.errors.ImportFormatError` naming the
file and the node; in lenient mode a node whose arrays fail nir's checks is built raw and
repaired later with a warning (docs/nir.md#lenient-mode-and-errors).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import ImportFormatError

from .graph import NODE_TYPES, ImportContext
from .options import require_nir

__all__ = ["read_nir"]


def _raw_node(cls: type, data: dict[str, Any]) -> Any:
    """Build a nir node without its __post_init__ checks (lenient repair of bad files)."""
    node: Any = object.__new__(cls)
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


def _dict_to_node(data: Any, name: str, ctx: ImportContext) -> Any:
    nir = require_nir()
    if not isinstance(data, dict) or "type" not in data:
        raise ctx.fail(name, "NIR node", "is not a NIR node (no 'type' entry)",
                       "the file is damaged or not written by nir.write")
    typ = data["type"]
    typ = typ.decode() if isinstance(typ, bytes) else str(typ)
    if typ not in NODE_TYPES:
        raise ctx.fail(name, "supported node", f"has unsupported node type '{typ}'",
                       "supported: " + ", ".join(NODE_TYPES))
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
    nir = require_nir()
    import h5py

    path = Path(path)
    where = f"NIR file '{path}'"
    ctx = ImportContext(lenient, where)
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
