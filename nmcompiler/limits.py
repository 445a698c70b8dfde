"""Bounded work: size checks that run before anything large is allocated (docs/cli.md).

* :func:`check_model_memory` estimates, from the shapes a model file *declares* (HDF5
  dataset shapes of a ``.nir`` file, array headers and population shapes of a ``.nmir``),
  the memory its arrays need once loaded, and refuses a model beyond a limit (default
  :func:`default_memory_limit`, half the memory available; ``--max-memory`` changes it)
  with a :class:`~nmcompiler.ir.errors.FitError` that states the estimate.
* :func:`check_compile_bounds` refuses, before the passes run, a network whose delays
  would need more relay neurons than the whole target holds (a delay longer than the
  target's ``max_delay`` becomes a chain of relays, docs/passes.md) or a chain longer than
  :data:`MAX_RELAY_HOPS`, and a network whose
  declared arrays exceed the limit.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError

__all__ = [
    "default_memory_limit",
    "estimate_file_bytes",
    "check_model_memory",
    "check_compile_bounds",
    "NEURON_BYTES",
    "MAX_RELAY_HOPS",
]

#: longest relay chain one projection may need (a delay of at most this many times the
#: target's ``max_delay``): each relay hop is a population the passes place and route
MAX_RELAY_HOPS = 256

#: bytes the compiler keeps per neuron across the passes (state, parameters, indices,
#: partition and placement arrays; a deliberate over-estimate)
NEURON_BYTES = 256


def default_memory_limit() -> int:
    """Half the memory available now (``MemAvailable``), at least 256 MB."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 2**30
    return max(avail // 2, 256 * 2**20)


def _prod(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= max(int(s), 0)
    return n


def _hdf5_bytes(path: Path) -> int:
    """Bytes of every dataset as declared (shape x itemsize), without reading data; plus
    the neurons implied by small shape datasets (``input_type``, ``output_type``, ``shape``)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - NIR support not installed
        return 0
    total = 0

    def visit(name: str, obj: Any) -> None:
        nonlocal total
        if not isinstance(obj, h5py.Dataset):
            return
        try:
            shape: tuple[int, ...] = tuple(obj.shape or ())
            item = obj.dtype.itemsize
        except Exception:  # noqa: BLE001 - an unreadable header: the importer names it
            return
        total += _prod(shape) * max(item, 1)
        leaf = name.rsplit("/", 1)[-1]
        parent = name.rsplit("/", 2)[-2] if name.count("/") >= 1 else ""
        if (leaf in ("shape",) or parent in ("input_type", "output_type")) \
                and len(shape) == 1 and shape[0] <= 8 and obj.dtype.kind in "iu":
            try:
                dims = np.asarray(obj[()]).ravel()
            except Exception:  # noqa: BLE001
                return
            total += _prod(dims) * NEURON_BYTES // 8

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except Exception:  # noqa: BLE001 - not HDF5 or damaged: the importer names the fault
        return 0
    return total


def _archive_bytes(path: Path) -> int:
    """Declared bytes of a ``.nmir``/``compiled.nmc``: member sizes plus neurons of the
    declared population and input shapes."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
            info = zf.getinfo("manifest.json")
            if info.file_size > os.path.getsize(path):
                return total
            manifest = json.loads(zf.read(info))
    except Exception:  # noqa: BLE001 - the loader names the fault
        return 0
    net = manifest.get("network") if isinstance(manifest, dict) else None
    if not isinstance(net, dict):
        return total
    for key in ("inputs", "populations"):
        recs = net.get(key)
        if not isinstance(recs, list):
            continue  # the loader names a malformed entry
        for rec in recs:
            shape = rec.get("shape") if isinstance(rec, dict) else None
            if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
                total += _prod(shape) * NEURON_BYTES
    return total


def estimate_file_bytes(path: str | os.PathLike) -> int:
    """Memory the model at ``path`` needs once loaded, from its declared shapes."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError:
        return 0
    if head.startswith(b"\x89HDF"):
        return _hdf5_bytes(p)
    if head.startswith(b"PK"):
        return _archive_bytes(p)
    return 0


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_model_memory(path: str | os.PathLike, max_bytes: int | None = None) -> int:
    """Refuse a model file whose declared arrays need more than ``max_bytes``."""
    limit = default_memory_limit() if max_bytes is None else int(max_bytes)
    need = estimate_file_bytes(path)
    if need > limit:
        raise FitError(
            f"model '{path}' declares arrays needing about {_gb(need)}; the limit is "
            f"{_gb(limit)}", obj=str(path), rule="memory limit", need=need, limit=limit,
            hint="shrink the model, or raise the limit with --max-memory GB")
    return need


def check_compile_bounds(net: Any, target: Any, max_bytes: int | None = None) -> None:
    """Refuse, before the passes run, what would make compile run without bound."""
    limit = default_memory_limit() if max_bytes is None else int(max_bytes)
    neurons = sum(int(p.size) for p in net.populations.values()) + sum(
        int(i.size) for i in net.inputs.values())
    if neurons * NEURON_BYTES > limit:
        raise FitError(
            f"network '{net.name}' has {neurons:,} neurons, needing about "
            f"{_gb(neurons * NEURON_BYTES)} to compile; the limit is {_gb(limit)}",
            obj=net.name, rule="memory limit", need=neurons * NEURON_BYTES, limit=limit,
            hint="shrink the network, or raise the limit with --max-memory GB")
    d_max = max(int(target.core.max_delay), 1)
    capacity = int(target.total_cores) * int(np.max(np.atleast_1d(target.core.neurons)))
    relays = 0
    for proj in net.projections.values():
        d = np.asarray(proj.delay)
        if d.size == 0 or d.dtype.kind not in "iuf":
            continue
        top = float(np.max(d))
        if not np.isfinite(top):
            continue
        hops = int(min(top, 2**62) // d_max)
        pre = net.size_of(proj.pre)
        relays += hops * pre
        if hops > MAX_RELAY_HOPS:
            raise FitError(
                f"projection '{proj.name}' has delay {top:g}; {target.name} delays at most "
                f"{d_max} steps per hop, so it needs a chain of {hops:,} relay populations and "
                f"at most {MAX_RELAY_HOPS} are supported (delays up to "
                f"{MAX_RELAY_HOPS * d_max:,} steps)", obj=proj.name, rule="max_delay",
                need=int(min(top, 2**62)), limit=MAX_RELAY_HOPS * d_max,
                hint="shorten the delay (it is in time steps, not seconds?), or pick a target "
                     "with longer delays")
        if relays > capacity:
            raise FitError(
                f"projection '{proj.name}' has delay {top:g}; {target.name} delays at most "
                f"{d_max} steps per hop, so the delays need at least {relays:,} relay neurons "
                f"and the target holds {capacity:,}", obj=proj.name, rule="max_delay",
                need=int(min(top, 2**62)), limit=d_max,
                hint="shorten the delay (it is in time steps), or pick a target with "
                     "longer delays")
