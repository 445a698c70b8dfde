"""The compiled artifact: versioned, serialisable, deterministic.

See docs/architecture.md#the-compiled-artifact.

A :class:`CompiledNetwork` holds the lowered, quantised network (in the target's integer
units), the target it was compiled for (with the TOML text it was read from, so the
artifact is self-contained even for a user's own chip file), the mapping (partition,
placement, routes), per-core usage against every budget, and the compile report.

On disk, ``save_compiled(cn, "build/")`` writes a directory, atomically::

    build/compiled.nmc     the artifact: the .nmir container, format "nmcompiler.compiled"
    build/report.json      the compile report, for machines

and nothing else unless a caller adds files before the rename (the CLI adds PNG plots).
The same network, target and seed give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from nmcompiler.ir.errors import FormatError, NmcError
from nmcompiler.ir.io import (
    decode_records,
    encode_records,
    network_from_manifest,
    network_manifest,
    read_archive,
    write_archive,
)
from nmcompiler.ir.network import Network

from .mapping import Partition, Placement, Routes
from .quantization import METADATA_KEY as QUANT_KEY
from .quantization import QuantizationInfo, check_record
from .targets import Target, parse_target

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "CompiledNetwork",
    "COMPILED_FORMAT",
    "COMPILED_VERSION",
    "ARTIFACT_NAME",
    "save_compiled",
    "load_compiled",
    "write_dir_atomically",
    "json_default",
    "report_json",
]

COMPILED_FORMAT = "nmcompiler.compiled"
COMPILED_VERSION = 1
ARTIFACT_NAME = "compiled.nmc"
REPORT_NAME = "report.json"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompiledNetwork:
    """A network compiled for one target.

    Attributes:
        network: the lowered and quantised network, in the target's integer units
            (``network.metadata["quantization"]`` says how to read them).
        target: the target description.
        target_toml: the TOML text the target was parsed from.
        partition: neuron -> logical core (:class:`nmcompiler.mapping.Partition`).
        placement: logical core -> physical core (:class:`nmcompiler.mapping.Placement`).
        routes: messages, hops, link loads, routing tables (:class:`nmcompiler.mapping.Routes`).
        report: the compile report (JSON-serialisable): pass reports, per-core usage
            against every budget, quantisation error, timings.
        seed: the seed the compile ran with.
        options: the compile options (JSON-serialisable).
        version: :data:`COMPILED_VERSION`.
        quantization: the typed quantisation record
            (:class:`nmcompiler.quantization.QuantizationInfo`), read from the network's
            metadata when not given; None for an unquantised network.
    """

    network: Network
    target: Target
    target_toml: str
    partition: Partition
    placement: Placement
    routes: Routes
    report: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    version: int = COMPILED_VERSION
    quantization: QuantizationInfo | None = None

    def __post_init__(self) -> None:
        if self.quantization is None:
            object.__setattr__(self, "quantization", QuantizationInfo.of(self.network))

    @property
    def n_cores(self) -> int:
        """Logical cores used."""
        return int(self.partition.n_cores)


def _mapping_types() -> dict[str, type]:
    from . import mapping

    return {
        name: obj
        for name, obj in vars(mapping).items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    }


def _artifact_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / ARTIFACT_NAME if p.is_dir() or p.suffix != ".nmc" else p


def write_dir_atomically(out_dir: str | os.PathLike, fill: Callable[[Path], None], *,
                         kind: str = "output") -> Path:
    """Create ``out_dir`` by filling a temporary sibling and swapping it into place
    (:func:`nmcompiler.outputs.write_dir_atomically`): if ``fill`` raises, nothing is left
    behind and an existing ``out_dir`` is kept."""
    from .outputs import write_dir_atomically as _write

    return _write(out_dir, fill, kind=kind)


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def report_json(report: dict[str, Any]) -> str:
    """The report as deterministic JSON text."""
    return json.dumps(report, indent=2, sort_keys=True, default=json_default) + "\n"


def content_digest(manifest: dict[str, Any], arrays: list[np.ndarray]) -> str:
    """SHA-256 of the manifest (without its ``digest`` entry) and every array's dtype, shape
    and bytes: a compiled artifact edited after the compile is refused on load (its
    semantics, e.g. the quantisation metadata the backends read, cannot all be
    re-validated field by field; docs/reliability.md)."""
    import hashlib

    h = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k != "digest"}
    h.update(json.dumps(body, sort_keys=True, default=json_default).encode())
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1).data)
    return h.hexdigest()


def write_compiled_files(cn: CompiledNetwork, directory: Path) -> None:
    """Write the artifact and report.json into an existing directory."""
    arrays: list[np.ndarray] = []
    manifest = {
        "format": COMPILED_FORMAT,
        "version": COMPILED_VERSION,
        "network": network_manifest(cn.network, arrays),
        "target": {"name": cn.target.base_name, "variant": cn.target.variant,
                   "toml": cn.target_toml},
        "mapping": {
            "partition": encode_records(cn.partition, arrays),
            "placement": encode_records(cn.placement, arrays),
            "routes": encode_records(cn.routes, arrays),
        },
        "report": json.loads(report_json(cn.report)),
        "seed": int(cn.seed),
        "options": json.loads(json.dumps(cn.options, sort_keys=True, default=json_default)),
    }
    manifest["n_arrays"] = len(arrays)
    manifest["digest"] = content_digest(manifest, arrays)
    write_archive(directory / ARTIFACT_NAME, manifest, arrays)
    (directory / REPORT_NAME).write_text(report_json(cn.report))


def save_compiled(cn: CompiledNetwork, out_dir: str | os.PathLike,
                  extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``cn`` to the directory ``out_dir`` atomically; ``extra`` may add files."""

    def fill(tmp: Path) -> None:
        write_compiled_files(cn, tmp)
        if extra is not None:
            extra(tmp)

    return write_dir_atomically(out_dir, fill, kind="nmc compile")


def load_compiled(path: str | os.PathLike) -> CompiledNetwork:
    """Read a compiled artifact: a build directory or its ``compiled.nmc`` file."""
    file = _artifact_path(path)
    if not file.exists():
        raise FormatError(
            f"'{path}' holds no compiled network ({ARTIFACT_NAME} is missing)",
            obj=str(path),
            rule="compiled artifact",
            hint="compile first: nmc compile MODEL --target T -o DIR",
        )
    manifest, arrays = read_archive(file, format_name=COMPILED_FORMAT, version=COMPILED_VERSION)
    where = f"file '{file}'"
    try:
        digest = content_digest(manifest, arrays)
    except (TypeError, ValueError, RecursionError):
        digest = None
    if manifest.get("digest") != digest:
        raise FormatError(f"{where} was changed after it was compiled (content digest "
                          "mismatch)", obj=str(file), rule="content digest",
                          hint="compile again; do not edit compiled.nmc")
    try:
        cn = _build_compiled(manifest, arrays, file, where)
        _check_mapping(cn, where)
        qmeta = cn.network.metadata.get(QUANT_KEY)
        if qmeta is not None:
            check_record(qmeta, cn.network, where)
        _check_report(cn.report, where)
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        raise FormatError(f"{where}: manifest entry missing or malformed ({exc!r})"[:400],
                          obj=str(file), rule="manifest schema",
                          hint="the file is damaged: compile again") from None
    except NmcError as exc:  # a target or network error inside the file is the file's fault
        raise FormatError(f"{where}: {exc}"[:600], obj=str(file), rule="manifest contents",
                          hint="the file is damaged: compile again") from None
    return cn


#: the largest step shift or retiming lag a report may name (a chip's longest delay chain)
_MAX_SHIFT = 2**16


class _ReportCheck:
    """Type and range checks of report entries (:func:`_check_report`)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, path: str, why: str) -> FormatError:
        return FormatError(f"{self.where}: report entry '{path}' {why}"[:500], obj=path,
                           rule="compile report", hint="the file is damaged: compile again")

    def table(self, v: Any, path: str) -> Mapping:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise self.bad(path, f"is {type(v).__name__}, not a table")
        return v

    def items(self, v: Any, path: str) -> list:
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.bad(path, f"is {type(v).__name__}, not a list")
        for i, e in enumerate(v):
            self.table(e, f"{path}[{i}]")
        return v

    def shifts(self, v: Any, path: str, nested: bool = False) -> None:
        for k, x in self.table(v, path).items():
            if nested:
                x = self.table(x, f"{path}.{k}").get("shift", 0)
            if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= _MAX_SHIFT:
                raise self.bad(f"{path}.{k}",
                               f"is {x!r}, not a step count in [0, {_MAX_SHIFT}]")


def _check_report(report: Any, where: str) -> None:
    """The entries of the compile report that running and deploying read (output
    shifts, retiming lags, the helper populations the lower pass added) have their types
    and ranges, so that an artifact re-signed after an edit is refused on load
    (docs/reliability.md)."""
    c = _ReportCheck(where)
    rep = c.table(report, "report")
    c.shifts(c.table(rep.get("summary"), "summary").get("output_shift_steps"),
             "summary.output_shift_steps")
    passes = c.table(rep.get("passes"), "passes")
    for name, sect in passes.items():
        c.table(sect, f"passes.{name}")
    c.table(c.table(passes.get("quantize"), "passes.quantize").get("summary"),
            "passes.quantize.summary")
    low = c.table(passes.get("lower"), "passes.lower")
    c.shifts(low.get("output_shift"), "passes.lower.output_shift")
    ret = c.table(low.get("retiming"), "passes.lower.retiming")
    c.shifts(ret.get("lags"), "passes.lower.retiming.lags")
    c.shifts(ret.get("outputs"), "passes.lower.retiming.outputs", nested=True)
    c.table(ret.get("bias_sources"), "passes.lower.retiming.bias_sources")
    fan = c.table(low.get("fan_in"), "passes.lower.fan_in")
    for i, split in enumerate(c.items(fan.get("split"), "passes.lower.fan_in.split")):
        c.items(split.get("relays"), f"passes.lower.fan_in.split[{i}].relays")
    delays = low.get("delays")
    if isinstance(delays, Mapping):
        c.items(delays.get("relays"), "passes.lower.delays.relays")


def _int_array(a: Any, n: int | None, lo: int, hi: int, what: str, where: str) -> None:
    ok = (isinstance(a, np.ndarray) and a.dtype.kind in "iu" and a.ndim == 1
          and (n is None or a.shape[0] == n)
          and (a.size == 0 or (int(a.min()) >= lo and int(a.max()) < hi)))
    if not ok:
        raise FormatError(f"{where}: {what} is inconsistent with the network and target",
                          obj=where, rule="mapping", hint="the file is damaged: compile again")


def _check_mapping(cn: CompiledNetwork, where: str) -> None:
    """The mapping's arrays agree with the network and the target (sizes and ranges)."""
    from .mapping import Partition, Placement, Routes

    part, pl, rt = cn.partition, cn.placement, cn.routes
    if not (isinstance(part, Partition) and isinstance(pl, Placement)
            and (rt is None or isinstance(rt, Routes))):
        raise FormatError(f"{where}: the mapping records have the wrong types", obj=where,
                          rule="mapping", hint="the file is damaged: compile again")
    if not isinstance(part.n_cores, int) or not 0 < part.n_cores <= cn.target.total_cores:
        raise FormatError(f"{where}: partition uses {part.n_cores!r} cores", obj=where,
                          rule="mapping", hint="the file is damaged: compile again")
    if list(part.populations) != list(cn.network.populations):
        raise FormatError(f"{where}: the partition's populations differ from the network's",
                          obj=where, rule="mapping", hint="the file is damaged: compile again")
    n = cn.network.n_neurons
    _int_array(part.neuron_core, n, 0, part.n_cores, "partition.neuron_core", where)
    _int_array(part.pop_offsets, len(part.populations) + 1, 0, n + 1,
               "partition.pop_offsets", where)
    _int_array(pl.core, part.n_cores, 0, cn.target.total_cores, "placement.core", where)
    for name in ("edge_src", "edge_dst"):
        _int_array(getattr(part, name), None, 0, part.n_cores, f"partition.{name}", where)
    u = part.usage
    if not (isinstance(u.used, np.ndarray) and u.used.ndim == 2
            and u.used.shape == (part.n_cores, len(u.names)) and u.limit.shape == u.used.shape):
        raise FormatError(f"{where}: partition.usage is inconsistent", obj=where,
                          rule="mapping", hint="the file is damaged: compile again")


def _build_compiled(manifest: dict[str, Any], arrays: list[np.ndarray], file: Path,
                    where: str) -> CompiledNetwork:
    """Build the artifact from an untrusted manifest (checked by the caller)."""
    tinfo = manifest["target"]
    target = parse_target(tomllib.loads(tinfo["toml"]), label=f"{file}:{tinfo['name']}",
                          variant=tinfo["variant"])
    types = _mapping_types()
    mapping = manifest["mapping"]
    return CompiledNetwork(
        network=network_from_manifest(manifest["network"], arrays, where),
        target=target,
        target_toml=tinfo["toml"],
        partition=decode_records(mapping["partition"], arrays, types, where),
        placement=decode_records(mapping["placement"], arrays, types, where),
        routes=decode_records(mapping["routes"], arrays, types, where),
        report=manifest["report"],
        seed=int(manifest["seed"]),
        options=manifest.get("options", {}),
    )
