"""Checks of a NIR file before and around the import (docs/nir.md, docs/reliability.md).

:func:`import_checked` is how :func:`nmcompiler.load_model` reads a ``.nir`` file:

0. :func:`probe_readable` reads the file in a child process with a time limit (a damaged
   HDF5 file can make the HDF5 library loop or crash in C code);
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


#: seconds a child process may take to read every dataset of a NIR file
PROBE_TIMEOUT_S = 30

_PROBE = """
import sys, h5py
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and obj.size * max(obj.dtype.itemsize, 1) <= 2**26:
        obj[()]
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(visit)
print("ok")
"""


def probe_readable(path: Path, timeout: float | None = None) -> None:
    """Read every (small) dataset of ``path`` in a child process first: a damaged HDF5 file
    can make the HDF5 library loop or crash inside C code, where no Python check or time
    limit reaches; in a child it is a named error instead."""
    import subprocess
    import sys

    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ImportFormatError(
            f"NIR file '{path}' cannot be read: the HDF5 library did not finish reading it "
            f"in {timeout:g} s", obj=str(path), rule="HDF5 format",
            hint="the file is damaged; re-export it") from None
    if r.returncode != 0 or "ok" not in r.stdout:
        last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise ImportFormatError(f"NIR file '{path}' cannot be read ({last[:200]})",
                                obj=str(path), rule="HDF5 format",
                                hint="the file is damaged or not HDF5; re-export it")


def import_checked(path: str | os.PathLike, **nir_options: Any) -> Any:
    """:func:`probe_readable`, :func:`check_nir_fields`, then
    :func:`~nmcompiler.frontends.nir.from_nir`; every fault is a named error."""
    from .nir import from_nir

    p = Path(path)
    if p.is_file():
        probe_readable(p)
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
