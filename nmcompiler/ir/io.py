"""Save and load networks: a versioned, documented, deterministic file format.

A ``.nmir`` file is a ZIP archive (stored, not compressed) holding ``manifest.json`` and
one ``.npy`` file per array (``arrays/00000.npy``...). The manifest describes every
record; array-valued fields point at their ``.npy`` member. Entries carry fixed
timestamps and are written in a fixed order, so the same network gives the same bytes.
The format is specified in docs/ir_format.md; :data:`FORMAT_VERSION` is its version.

The same container (:func:`write_archive`, :func:`read_archive`) stores compiled
artifacts, with their own ``format`` name.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from . import connectivity as _conn
from . import models as _models
from .errors import FormatError
from .network import Input, Network, Output, Population, Probe, Projection

__all__ = [
    "save",
    "load",
    "write_archive",
    "write_npz",
    "read_archive",
    "encode_records",
    "decode_records",
    "network_manifest",
    "network_from_manifest",
    "FORMAT_VERSION",
    "FORMAT_NAME",
]

FORMAT_NAME = "nmcompiler.ir"
FORMAT_VERSION = 1
_DATE = (1980, 1, 1, 0, 0, 0)

# the closed sets of record types, by their name in the manifest
_MODELS = {t.__name__: t for t in _models.MODEL_TYPES}
_CONNS = {t.__name__: t for t in _conn.CONNECTIVITY_TYPES}
_ENUMS = {"Reset": _models.Reset}


# ---------------------------------------------------------------------------- container
def write_archive(path: str | os.PathLike, manifest: Mapping[str, Any],
                  arrays: list[np.ndarray]) -> None:
    """Write ``manifest.json`` and ``arrays/NNNNN.npy`` to a ZIP at ``path``, atomically.

    The file appears complete or not at all (written to a temporary file beside it, then
    renamed).
    """
    text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False).encode()
    _write_zip(path, ((f"arrays/{i:05d}.npy", np.ascontiguousarray(arr))
                      for i, arr in enumerate(arrays)),
               zipfile.ZIP_STORED, head=("manifest.json", text))


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *,
              compress: bool = True) -> None:
    """Write ``arrays`` as an ``.npz`` that :func:`numpy.load` reads, byte for byte the
    same for the same arrays (``numpy.savez`` stamps every member with the current time).

    Members are ``name.npy`` in the given order, deflated when ``compress``, with a fixed
    date; the file appears complete or not at all."""
    _write_zip(path, ((f"{name}.npy", np.asarray(arr)) for name, arr in arrays.items()),
               zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)


def _write_zip(path: str | os.PathLike, members: Iterable[tuple[str, np.ndarray]],
               method: int, head: tuple[str, bytes] | None = None) -> None:
    """ZIP of ``.npy`` members (after an optional raw ``head`` member) with fixed dates,
    written to a temporary file beside ``path`` and renamed: complete or absent."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent or ".")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; files follow the umask
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", method) as zf:
            if head is not None:
                _put(zf, *head)
            for name, arr in members:
                info = _info(name)
                info.compress_type = method
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(_info(name), data)


def read_archive(path: str | os.PathLike, *, format_name: str, version: int
                 ) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Read what :func:`write_archive` wrote; check name, version and every CRC."""
    path = Path(path)
    where = f"file '{path}'"
    if not path.is_file():
        raise FormatError(f"{where} does not exist", obj=str(path), rule="file exists",
                          hint="check the path")
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(
            f"{where} is truncated or not an nmcompiler file ({exc})",
            obj=str(path),
            rule="ZIP container",
            hint="save it again; a file cut short in transfer cannot be read",
        ) from None
    with zf, open(path, "rb") as raw:
        names = set(zf.namelist())
        if "manifest.json" not in names:
            raise FormatError(f"{where} has no manifest.json", obj=str(path),
                              rule="manifest", hint="this is not an nmcompiler file")
        try:
            manifest = json.loads(_member(zf, raw, "manifest.json", where))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{where}: manifest.json is corrupted ({exc})", obj=str(path),
                              rule="JSON manifest", hint="save it again") from None
        if not isinstance(manifest, dict) or manifest.get("format") != format_name:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise FormatError(
                f"{where} holds format {found!r}, expected {format_name!r}",
                obj=str(path), rule="format name", need=format_name, limit=found,
                hint="load it with the function for that kind of file",
            )
        if manifest.get("version") != version:
            raise FormatError(
                f"{where} has format version {manifest.get('version')!r}; this nmcompiler "
                f"reads version {version}",
                obj=str(path), rule="format version", need=version,
                limit=manifest.get("version"),
                hint="use the nmcompiler release that wrote it, or re-export the network",
            )
        n_arrays = manifest.get("n_arrays", 0)
        if not isinstance(n_arrays, int) or isinstance(n_arrays, bool) \
                or not 0 <= n_arrays <= len(names):
            raise FormatError(f"{where}: manifest entry 'n_arrays' is {n_arrays!r}",
                              obj=str(path), rule="manifest schema", need="0..members",
                              limit=n_arrays, hint="the file is damaged: save it again")
        arrays = []
        for i in range(n_arrays):
            name = f"arrays/{i:05d}.npy"
            if name not in names:
                raise FormatError(f"{where} is missing array '{name}'", obj=str(path),
                                  rule="complete archive", need=name,
                                  hint="the file is incomplete: save it again")
            arrays.append(_npy(_member(zf, raw, name, where), name, where))
        return manifest, arrays


def _member(zf: zipfile.ZipFile, raw: Any, name: str, where: str) -> bytearray:
    """The bytes of a stored member, read in one copy, CRC checked."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise FormatError(f"{where}: member '{name}' is compressed", obj=name,
                          rule="stored members", hint="write it with nmcompiler")
    raw.seek(info.header_offset)
    head = raw.read(30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise FormatError(f"{where}: member '{name}' is corrupted", obj=name,
                          rule="ZIP local header", hint="save it again")
    n_name, n_extra = struct.unpack("<HH", head[26:30])
    size = os.fstat(raw.fileno()).st_size
    if info.file_size > size:  # never allocate more than the file holds
        raise FormatError(f"{where}: member '{name}' declares {info.file_size} bytes in a "
                          f"file of {size}", obj=name, rule="complete member",
                          need=info.file_size, limit=size, hint="save it again")
    raw.seek(info.header_offset + 30 + n_name + n_extra)
    buf = bytearray(info.file_size)
    got = raw.readinto(buf)
    if got != info.file_size:
        raise FormatError(f"{where}: member '{name}' is truncated", obj=name,
                          rule="complete member", need=info.file_size, limit=got,
                          hint="save it again")
    if zlib.crc32(buf) != info.CRC:
        raise FormatError(f"{where}: member '{name}' is corrupted (CRC mismatch)", obj=name,
                          rule="CRC32", hint="the file was damaged: save it again")
    return buf


def _npy(buf: bytearray, name: str, where: str) -> np.ndarray:
    try:
        f = io.BytesIO(memoryview(buf)[:4096])
        ver = np.lib.format.read_magic(f)
        if ver == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed")
        offset = f.tell()
        count = 1
        for d in shape:
            count *= int(d)
        if count < 0 or count * max(dtype.itemsize, 1) > len(buf) - offset:
            raise ValueError(f"shape {shape} needs more bytes than the member holds")
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    except (ValueError, TypeError, SyntaxError, OverflowError) as exc:
        raise FormatError(f"{where}: array '{name}' is unreadable ({exc})", obj=name,
                          rule="npy array", hint="save it again") from None
    return arr.reshape(shape, order="F" if fortran else "C")


# ---------------------------------------------------------------------------- encoding
class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def value(self, v: Any) -> Any:
        if isinstance(v, np.ndarray):
            self.arrays.append(v)
            return {"array": len(self.arrays) - 1}
        if isinstance(v, enum.Enum):
            return {"enum": type(v).__name__, "value": v.value}
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            v = float(v)
            if not np.isfinite(v):
                return {"float": repr(v)}
            return v
        if isinstance(v, (complex, np.complexfloating)):
            return {"complex": [float(v.real), float(v.imag)]}
        if isinstance(v, (tuple, list)):
            return {"tuple": [self.value(x) for x in v]}
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {"dict": {k: self.value(x) for k, x in v.items()}}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {"record": self.record(v)}
        raise TypeError(f"cannot store a {type(v).__name__}")

    def record(self, obj: Any) -> dict[str, Any]:
        return {
            "type": type(obj).__name__,
            "fields": {f.name: self.value(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }


def _decode(v: Any, arrays: list[np.ndarray], where: str,
            types: Mapping[str, type] | None = None) -> Any:
    if isinstance(v, dict):
        if "array" in v:
            i = v["array"]
            if not isinstance(i, int) or not 0 <= i < len(arrays):
                raise FormatError(f"{where}: array reference {i!r} is missing", obj=where,
                                  rule="array reference", hint="the file is incomplete")
            return arrays[i]
        if "enum" in v:
            cls = _ENUMS.get(v["enum"])
            if cls is None:
                raise FormatError(f"{where}: unknown enum {v['enum']!r}", obj=where,
                                  rule="known enum", hint="written by a newer nmcompiler?")
            try:
                return cls(v["value"])
            except (ValueError, TypeError, KeyError):
                raise FormatError(f"{where}: {v['enum']} has no value {v.get('value')!r}",
                                  obj=where, rule="known enum value",
                                  hint="the file is damaged") from None
        if "complex" in v:
            return complex(*v["complex"])
        if "tuple" in v:
            return tuple(_decode(x, arrays, where, types) for x in v["tuple"])
        if "float" in v:
            return float(v["float"])
        if "dict" in v:
            return {k: _decode(x, arrays, where, types) for k, x in v["dict"].items()}
        if "record" in v:
            return _build(v["record"], types or {}, where, arrays, types)
    return v


def _build(rec: Any, table: Mapping[str, type], where: str, arrays: list[np.ndarray],
           types: Mapping[str, type] | None = None) -> Any:
    if not isinstance(rec, dict) or rec.get("type") not in table:
        found = rec.get("type") if isinstance(rec, dict) else rec
        raise FormatError(f"{where}: unknown record type {found!r}", obj=where,
                          rule="known type", hint="known: " + ", ".join(table))
    cls = table[rec["type"]]
    allowed = {f.name for f in dataclasses.fields(cls)}
    fields_ = rec.get("fields", {})
    if not isinstance(fields_, dict):
        raise FormatError(f"{where}: {rec['type']} fields are not an object", obj=where,
                          rule="manifest schema", hint="the file is damaged")
    extra = set(fields_) - allowed
    if extra:
        raise FormatError(f"{where}: {rec['type']} has unknown fields {sorted(extra)}",
                          obj=where, rule="known fields", hint="written by a newer nmcompiler?")
    return cls(**{k: _decode(v, arrays, where, types) for k, v in fields_.items()})


def network_manifest(net: Network, enc: _Encoder | list[np.ndarray]) -> dict[str, Any]:
    """The manifest entries of a network (shared with compiled artifacts)."""
    if isinstance(enc, list):
        arrays, enc = enc, _Encoder()
        enc.arrays = arrays
    return {
        "name": net.name,
        "metadata": net.metadata,
        "inputs": [{"name": i.name, "shape": list(i.shape)} for i in net.inputs.values()],
        "populations": [
            {"name": p.name, "shape": list(p.shape), "model": enc.record(p.model)}
            for p in net.populations.values()
        ],
        "projections": [
            {"name": p.name, "pre": p.pre, "post": p.post, "delay": enc.value(p.delay),
             "conn": enc.record(p.conn)}
            for p in net.projections.values()
        ],
        "outputs": [{"name": o.name, "source": o.source} for o in net.outputs.values()],
        "probes": [{"target": p.target, "var": p.var} for p in net.probes],
    }


def _name_of(where: str, rec: Any, kind: str, seen: set[str]) -> str:
    """A record's name: a non-empty string not seen before."""
    n = rec["name"] if isinstance(rec, dict) else None
    if not isinstance(n, str) or not n:
        raise FormatError(f"{where}: a {kind} has name {n!r}", obj=where,
                          rule="manifest schema", hint="the file is damaged")
    if n in seen:
        raise FormatError(f"{where}: two {kind}s are named '{n}'", obj=n,
                          rule="unique names", hint="the file is damaged")
    seen.add(n)
    return n


def _shape_of(where: str, rec: Any, n: str) -> tuple[int, ...]:
    """A record's shape: a non-empty list of non-negative integers."""
    sh = rec["shape"]
    if not isinstance(sh, list) or not sh or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in sh):
        raise FormatError(f"{where}: '{n}' has shape {sh!r}", obj=n, rule="shape",
                          hint="the file is damaged")
    return tuple(sh)


def _str_of(where: str, v: Any, what: str) -> str:
    """A string field."""
    if not isinstance(v, str):
        raise FormatError(f"{where}: {what} is {v!r}, not a name", obj=where,
                          rule="manifest schema", hint="the file is damaged")
    return v


def network_from_manifest(m: Mapping[str, Any], arrays: list[np.ndarray], where: str
                          ) -> Network:
    """Rebuild a network from :func:`network_manifest` entries.

    Every entry is untrusted: names must be strings and unique, shapes lists of
    non-negative integers; the rebuilt network is then verified (:func:`ir.verify`), so a
    damaged file is a named error here, never a crash later.
    """
    from .verify import verify

    try:
        if not isinstance(m, Mapping):
            raise TypeError("the network entry is not an object")
        meta = m.get("metadata") or {}
        if not isinstance(meta, dict):
            raise TypeError("metadata is not an object")
        net = Network(_str_of(where, m["name"], "the network name"), metadata=meta)
        names: set[str] = set()
        for i in m["inputs"]:
            n = _name_of(where, i, "input", names)
            net.inputs[n] = Input(name=n, shape=_shape_of(where, i, n))
        for p in m["populations"]:
            n = _name_of(where, p, "population", names)
            model = _build(p["model"], _MODELS, f"{where}: population '{n}'", arrays)
            net.populations[n] = Population(name=n, shape=_shape_of(where, p, n), model=model)
        proj_names: set[str] = set()
        for p in m["projections"]:
            n = _name_of(where, p, "projection", proj_names)
            conn = _build(p["conn"], _CONNS, f"{where}: projection '{n}'", arrays)
            net.projections[n] = Projection(
                name=n, pre=_str_of(where, p["pre"], f"projection '{n}' pre"),
                post=_str_of(where, p["post"], f"projection '{n}' post"), conn=conn,
                delay=_decode(p["delay"], arrays, where))
        out_names: set[str] = set()
        for o in m["outputs"]:
            n = _name_of(where, o, "output", out_names)
            net.outputs[n] = Output(name=n,
                                    source=_str_of(where, o["source"], f"output '{n}' source"))
        net.probes = tuple(Probe(target=_str_of(where, p["target"], "probe target"),
                                 var=_str_of(where, p["var"], "probe var")) for p in m["probes"])
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        raise FormatError(f"{where}: manifest entry missing or malformed ({exc!r})"[:400],
                          obj=where, rule="manifest schema",
                          hint="the file is damaged or not a network") from None
    try:
        verify(net)
    except Exception as exc:  # noqa: BLE001 - every fault of a loaded file is the file's
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{where}: the stored network is invalid ({exc})"[:600], obj=where,
                          rule="valid network", hint="the file is damaged: save it again"
                          ) from None
    return net


def encode_records(value: Any, arrays: list[np.ndarray]) -> Any:
    """Encode a value (records = frozen dataclasses, dicts, tuples, arrays) for a manifest,
    appending its arrays to ``arrays``; used by compiled artifacts."""
    enc = _Encoder()
    enc.arrays = arrays
    return enc.value(value)


def decode_records(value: Any, arrays: list[np.ndarray], types: Mapping[str, type],
                   where: str) -> Any:
    """Inverse of :func:`encode_records`; ``types`` maps record type names to classes."""
    return _decode(value, arrays, where, types)


# ---------------------------------------------------------------------------- public
def save(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` to ``path`` (conventionally ``*.nmir``) and return the path."""
    enc = _Encoder()
    body = network_manifest(net, enc)
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "n_arrays": len(enc.arrays),
                "network": body}
    write_archive(path, manifest, enc.arrays)
    return Path(path)


def load(path: str | os.PathLike) -> Network:
    """Read a network written by :func:`save`; raise :class:`FormatError` if unreadable."""
    manifest, arrays = read_archive(path, format_name=FORMAT_NAME, version=FORMAT_VERSION)
    if "network" not in manifest:
        raise FormatError(f"file '{path}' has no network entry", obj=str(path),
                          rule="manifest schema", hint="the file is damaged")
    return network_from_manifest(manifest["network"], arrays, f"file '{path}'")
