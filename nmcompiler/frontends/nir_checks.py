"""Checks of a NIR file before and around the import (docs/nir.md, docs/reliability.md).

:func:`import_checked` is how :func:`nmcompiler.load_model` reads a ``.nir`` file:

1. :func:`check_nir_fields` opens the HDF5 file and checks every numeric field of every
   node before anything is built: numbers where numbers go (not text, not objects), no
   NaN or infinity, time constants (``tau*``) and time steps positive, shapes and sizes
   non-negative integers. A fault is an :class:`~nmcompiler.ir.errors.ImportFormatError`
   naming the node and the field.
2. :func:`nmcompiler.frontends.nir.from_nir` imports the file; any fault it meets that is
   not already a named error (a damaged file that h5py or nir cannot read, a value no
   check foresaw) becomes an ``ImportFormatError`` naming the file, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import ImportFormatError, NmcError

__all__ = ["check_nir_fields", "import_checked"]

#: fields that are not numbers (node type names, edge lists, metadata)
_TEXT_FIELDS = {"type", "edges", "metadata", "version", "input_type", "output_type"}
#: fields that must be > 0
_POSITIVE = ("tau", "tau_mem", "tau_syn", "dt")
#: fields that are sizes, shapes or geometry (non-negative integers)
_INTEGRAL = ("shape", "stride", "padding", "dilation", "kernel_size", "groups",
             "input_shape")


def _node_field(name: str) -> tuple[str, str]:
    parts = name.split("/")
    field = parts[-1]
    node = "/".join(p for p in parts[:-1] if p not in ("node", "nodes")) or "(graph)"
    return node, field


def check_nir_fields(path: str | os.PathLike) -> None:
    """Check every numeric field of ``path`` (module docstring); silent when it is fine or
    not HDF5 (the importer names that)."""
    import h5py

    where = f"NIR file '{path}'"
    faults: list[ImportFormatError] = []

    def bad(node: str, field: str, what: str, hint: str) -> None:
        faults.append(ImportFormatError(f"{where}: node '{node}' field '{field}' {what}",
                                        obj=node, rule=f"NIR field {field}", hint=hint))

    def visit(name: str, obj: Any) -> None:
        if faults or not isinstance(obj, h5py.Dataset):
            return
        node, field = _node_field(name)
        if field in _TEXT_FIELDS or any(p in _TEXT_FIELDS for p in name.split("/")[:-1]):
            return
        kind = obj.dtype.kind
        if kind not in "biuf":
            bad(node, field, f"holds {obj.dtype} data where numbers go",
                "re-export the model; NIR stores parameters as numeric arrays")
            return
        a = np.asarray(obj[()])
        if kind == "f" and a.size and not np.all(np.isfinite(a)):
            bad(node, field, "holds NaN or infinity", "re-export the model with finite values")
        elif field in _POSITIVE and a.size and np.any(a <= 0):
            bad(node, field, f"must be > 0, found {float(np.min(a)):g}",
                "time constants and steps are positive durations")
        elif field in _INTEGRAL and a.size and (
                np.any(a < 0) if kind != "f" else np.any((a < 0) | (a != np.round(a)))):
            bad(node, field, f"must hold non-negative integers, found {a.ravel()[:4]}",
                "shapes, strides and sizes are counts")

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except NmcError:
        raise
    except Exception:  # noqa: BLE001 - not HDF5 or damaged: import_checked names it
        return
    if faults:
        raise faults[0]


def import_checked(path: str | os.PathLike, **nir_options: Any) -> Any:
    """:func:`check_nir_fields`, then :func:`~nmcompiler.frontends.nir.from_nir`; every
    fault is a named error."""
    from .nir import from_nir

    p = Path(path)
    check_nir_fields(p)
    try:
        return from_nir(p, **nir_options)
    except NmcError:
        raise
    except MemoryError:
        raise ImportFormatError(f"NIR file '{p}' needs more memory than is available",
                                obj=str(p), rule="memory",
                                hint="a smaller model, or --max-memory") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file is the file's fault
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ImportFormatError(
            f"NIR file '{p}' cannot be imported: {type(exc).__name__}: {msg}", obj=str(p),
            rule="NIR format", hint="the file is damaged or not a NIR graph; re-export it",
        ) from None
