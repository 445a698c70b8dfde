"""Fuzzing every file nmcompiler reads and every option it takes (docs/reliability.md):
NIR files, .nmir and compiled.nmc manifests, chip TOML files, report.json, --input arrays
and CLI option values. Each case runs ``nmc`` in-process; fuzz_harness checks the contract
(exit 0/1/2/3, no traceback, a time bound, nothing changed outside the output, no leftovers).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from fuzz_harness import check_command
from hypothesis import given
from hypothesis import strategies as st

from nmcompiler import ir
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.ir.io import read_archive, write_archive

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
OUT = "out"


def small_net() -> Network:
    rng = np.random.default_rng(0)
    net = Network("small")
    net.input("in", 8)
    net.population("h", 6, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 3, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(6, 8))), delay=1)
    net.connect("h", "o", Dense(weight=rng.normal(size=(3, 6))), delay=1)
    net.output("o")
    return net


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A working directory with a model, a build and an input file (never modified)."""
    d = tmp_path_factory.mktemp("fuzz")
    ir.save(small_net(), d / "small.nmir")
    from fuzz_harness import nmc

    code, _, err = nmc(["compile", "small.nmir", "-t", "loihi2", "-o", "build"], d)
    assert code == 0, err
    np.savez(d / "spikes.npz", **{"in": np.zeros((5, 8), np.uint8)})
    try:
        from nmcompiler.exporters.nir import write_nir

        write_nir(small_net(), d / "net.nir")
    except ImportError:  # pragma: no cover - NIR support not installed
        pass
    return d


@pytest.fixture()
def clean(work):
    return work


def fresh(work: Path) -> Path:
    """Remove the previous example's output and scratch files (hypothesis runs many
    examples per fixture)."""
    for p in work.iterdir():
        if p.name not in ("small.nmir", "build", "spikes.npz", "net.nir"):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return work


# ---------------------------------------------------------------- values
finite = st.floats(allow_nan=False, allow_infinity=False)
weird_numbers = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**20, 1e300, -1e300, math.nan,
                     math.inf, -math.inf, 0.5, 1e-300]),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats())
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      finite, st.text(max_size=12))
json_value = st.recursive(json_leaf, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)), max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def mutate_json(doc, data, *, leaf_values=json_value):
    """Replace (or delete) one random node of a JSON document."""
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(leaf_values, label="value")
    return doc


# ---------------------------------------------------------------- properties
@given(data=st.data())
def test_fuzz_nmir_manifest(clean, data):
    work = fresh(clean)
    manifest, arrays = read_archive(work / "small.nmir", format_name="nmcompiler.ir",
                                    version=manifest_version(work / "small.nmir"))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        manifest = mutate_json(manifest, data)
    write_archive(work / "m.nmir", manifest, arrays)
    check_command(["compile", "m.nmir", "-t", "loihi2", "-o", OUT], work, OUT, "nmir")


def manifest_version(path: Path) -> int:
    import zipfile

    with zipfile.ZipFile(path) as z:
        m = json.loads(z.read("manifest.json"))
    return m["version"]


@given(data=st.data())
def test_fuzz_compiled_manifest(clean, data):
    work = fresh(clean)
    src = work / "build" / "compiled.nmc"
    manifest, arrays = read_archive(src, format_name="nmcompiler.compiled",
                                    version=manifest_version(src))
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        manifest = mutate_json(manifest, data)
    (work / "b2").mkdir()
    write_archive(work / "b2" / "compiled.nmc", manifest, arrays)
    check_command(["run", "b2", "--steps", "3", "-o", OUT], work, OUT, "compiled")


@given(data=st.data())
def test_fuzz_report_json(clean, data):
    work = fresh(clean)
    rep = json.loads((work / "build" / "report.json").read_text())
    kind = data.draw(st.sampled_from(["mutate", "truncate", "bytes"]), label="kind")
    (work / "b3").mkdir()
    if kind == "mutate":
        for _ in range(data.draw(st.integers(1, 3))):
            rep = mutate_json(rep, data)
        (work / "b3" / "report.json").write_text(json.dumps(rep))
    elif kind == "truncate":
        text = json.dumps(rep)
        (work / "b3" / "report.json").write_text(text[: data.draw(st.integers(0, len(text)))])
    else:
        (work / "b3" / "report.json").write_bytes(data.draw(st.binary(max_size=200)))
    json_flag = data.draw(st.sampled_from([[], ["--json"]]))
    check_command(["report", "b3", *json_flag], work, None, "report")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return '""'
    raise TypeError(type(v))


def write_toml(doc: dict) -> str:
    """A minimal TOML writer: top-level scalars, then one [table] per dict of plain keys."""
    lines, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict) and all(not isinstance(x, dict) or "value" in x or "status" in x
                                       or not any(isinstance(y, dict) for y in x.values())
                                       for x in v.values()):
            tables.append((k, v))
        else:
            lines.append(f"{json.dumps(k)} = {_toml_value(v)}")
    for k, v in tables:
        lines.append(f"\n[{json.dumps(k)}]")
        for kk, vv in v.items():
            lines.append(f"{json.dumps(kk)} = {_toml_value(vv)}")
    return "\n".join(lines) + "\n"


toml_leaf = st.one_of(weird_numbers, st.booleans(), st.text(max_size=12),
                      st.lists(st.integers(-5, 10**6), max_size=3),
                      st.sampled_from(["x/../../../escaped", "[bold]x[/]", "\x1b[31m"]))


@given(data=st.data())
def test_fuzz_chip_toml(clean, data):
    work = fresh(clean)
    doc = tomllib.loads((REPO / "nmcompiler" / "hw_configs" / "loihi2.toml").read_text())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        doc = mutate_json(doc, data, leaf_values=toml_leaf)
    try:
        text = write_toml(doc)
    except TypeError:
        text = "garbage = [\n"
    (work / "chip.toml").write_text(text)
    cmd = data.draw(st.sampled_from(["compile", "run"]))
    args = ["compile", "small.nmir", "-t", "chip.toml", "-o", OUT] if cmd == "compile" else \
        ["run", "small.nmir", "-t", "chip.toml", "--steps", "3", "-o", OUT]
    check_command(args, work, OUT, "chip_toml")


nir_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, -1e300]),
    st.just("text"), st.just(b"bytes"),
    st.lists(finite, min_size=0, max_size=9), st.integers(-(2**40), 2**40))


@given(data=st.data())
def test_fuzz_nir_file(clean, data):
    work = fresh(clean)
    if not (work / "net.nir").exists():
        pytest.skip("NIR support not installed")
    import h5py

    raw = (work / "net.nir").read_bytes()
    kind = data.draw(st.sampled_from(["field", "field", "truncate", "flip", "bytes"]))
    dst = work / "f.nir"
    if kind == "truncate":
        dst.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "flip":
        b = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        dst.write_bytes(bytes(b))
    elif kind == "bytes":
        dst.write_bytes(data.draw(st.binary(max_size=2000)))
    else:
        dst.write_bytes(raw)
        with h5py.File(dst, "r+") as f:
            names = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            for _ in range(data.draw(st.integers(1, 2))):
                name = data.draw(st.sampled_from(sorted(names)))
                if name not in f:
                    continue
                val = data.draw(nir_values)
                del f[name]
                if isinstance(val, (str, bytes)):
                    f.create_dataset(name, data=val)
                elif data.draw(st.booleans()) and isinstance(val, float):
                    f.create_dataset(name, data=np.full(data.draw(st.integers(0, 9)), val))
                else:
                    f.create_dataset(name, data=np.asarray(val))
    preset = data.draw(st.sampled_from([[], ["--preset", "snntorch"], ["--preset", "norse"],
                                        ["--lenient"]]))
    check_command(["compile", "f.nir", "-t", "loihi2", "-o", OUT, *preset], work, OUT, "nir")


dtypes = st.sampled_from(["bool", "uint8", "int8", "int64", "uint64", "float32", "float64",
                          "complex128", "U3", "object"])


@given(data=st.data())
def test_fuzz_input_arrays(clean, data):
    work = fresh(clean)
    kind = data.draw(st.sampled_from(["npz", "npz", "npy", "bytes", "empty_npz"]))
    shape = tuple(data.draw(st.lists(st.integers(0, 12), min_size=0, max_size=3)))
    dtype = data.draw(dtypes)
    fill = data.draw(st.one_of(weird_numbers, st.just(1)))
    if dtype == "object":
        arr = np.empty(shape, dtype=object)
    elif dtype == "U3":
        arr = np.full(shape, "ab")
    else:
        with np.errstate(all="ignore"):
            try:
                arr = np.full(shape, fill).astype(dtype)
            except (OverflowError, ValueError):
                arr = np.zeros(shape, dtype)
    path = work / ("x.npy" if kind == "npy" else "x.npz")
    if kind == "npz":
        name = data.draw(st.sampled_from(["in", "in", "nope", "h"]))
        np.savez(path, **{name: arr})
    elif kind == "empty_npz":
        np.savez(path)
    elif kind == "npy":
        np.save(path, arr, allow_pickle=True)
    else:
        path.write_bytes(data.draw(st.binary(max_size=300)))
    cmd = data.draw(st.sampled_from(["run", "deploy"]))
    args = ["run", "build", "-i", path.name, "-o", OUT] if cmd == "run" else \
        ["deploy", "build", "--backend", "emulator", "-i", path.name, "-o", OUT]
    steps = data.draw(st.sampled_from([[], ["--steps", "3"]]))
    check_command(args + steps, work, OUT, "input")


option_text = st.one_of(
    st.sampled_from(["-1", "0", "1", "nan", "inf", "-inf", "1e300", "-5", "3.5", "",
                     "18446744073709551616", "99999999999999999999999", "abc", "0x10"]),
    st.integers(-(2**70), 2**70).map(str), st.floats().map(str))


@given(data=st.data())
def test_fuzz_cli_options(clean, data):
    work = fresh(clean)
    cmd = data.draw(st.sampled_from(["compile", "run", "deploy"]))
    if cmd == "compile":
        opts = ["--seed", "--time-limit", "--dt", "--max-memory"]
        base = ["compile", "small.nmir", "-t", "emulator", "-o", OUT]
    elif cmd == "run":
        opts = ["--seed", "--steps", "--rate", "--max-memory"]
        base = ["run", "build", "-o", OUT]
    else:
        opts = ["--seed", "--steps", "--rate"]
        base = ["deploy", "build", "--backend", "emulator", "-o", OUT]
    args = list(base)
    for opt in data.draw(st.lists(st.sampled_from(opts), min_size=1, max_size=3, unique=True)):
        args += [opt, data.draw(option_text)]
    if cmd != "compile" and "--steps" not in args:
        args += ["--steps", "3"]
    check_command(args, work, OUT, "options")


def _quant_section(manifest):
    md = manifest.get("network", {}).get("metadata", {})
    return md.get("quantization") if isinstance(md, dict) else None


@given(data=st.data())
def test_fuzz_compiled_resigned(clean, data):
    """A forged ``compiled.nmc`` with a correct digest: entries of the quantisation record
    (or, less often, anywhere in the manifest) replaced, then the digest recomputed, so the
    load-time checks of the record's fields are what stands between the file and a crash."""
    from nmcompiler.compiled import content_digest

    work = fresh(clean)
    src = work / "build" / "compiled.nmc"
    manifest, arrays = read_archive(src, format_name="nmcompiler.compiled",
                                    version=manifest_version(src))
    quant = _quant_section(manifest)
    assert isinstance(quant, dict)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if data.draw(st.integers(0, 3), label="where") and _quant_section(manifest):
            mutate_json(_quant_section(manifest), data, leaf_values=st.one_of(
                json_value, weird_numbers.filter(lambda v: not isinstance(v, float)
                                                 or math.isfinite(v))))
        else:
            manifest = mutate_json(manifest, data)
    try:
        manifest["digest"] = content_digest(manifest, arrays)
    except (TypeError, ValueError):
        pass
    (work / "b2").mkdir()
    write_archive(work / "b2" / "compiled.nmc", manifest, arrays)
    check_command(["run", "b2", "--steps", "3", "-o", OUT], work, OUT, "compiled")
