"""Every fault a named error (docs/cli.md): damaged files, bad option values, bad --input
arrays, names with markup, exit codes of missing files, the Lava runner's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.ir.errors import FormatError, ImportFormatError
from nmcompiler.ir.io import read_archive, write_archive


def nmc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def small(name: str = "small") -> Network:
    rng = np.random.default_rng(0)
    net = Network(name)
    net.input("in", 8)
    net.population("h", 6, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 3, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(6, 8))), delay=1)
    net.connect("h", "o", Dense(weight=rng.normal(size=(3, 6))), delay=1)
    net.output("o")
    return net


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("errors")
    ir.save(small(), d / "small.nmir")
    assert nmc("compile", "small.nmir", "-t", "loihi2", "-o", "build", cwd=d).returncode == 0
    return d


def _manifest(path: Path, fmt: str) -> tuple[dict, list]:
    with zipfile.ZipFile(path) as z:
        version = json.loads(z.read("manifest.json"))["version"]
    return read_archive(path, format_name=fmt, version=version)


# ---------------------------------------------------------------- NIR fields
@pytest.mark.parametrize("field,value,words", [
    ("tau_mem", np.full(6, np.nan), "NaN"),
    ("tau_mem", np.full(6, -1.0), "> 0"),
    ("tau_syn", np.zeros(6), "> 0"),
    ("v_threshold", np.full(6, np.inf), "NaN or infinity"),
    ("r", "text", "where numbers go"),
])
def test_malformed_nir_fields_name_the_node_and_field(tmp_path, field, value, words):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("nir")
    from nmcompiler import load_model
    from nmcompiler.exporters.nir import write_nir

    path = write_nir(small(), tmp_path / "n.nir")
    with h5py.File(path, "r+") as f:
        del f[f"node/nodes/h/{field}"]
        f.create_dataset(f"node/nodes/h/{field}", data=value)
    with pytest.raises(ImportFormatError) as e:
        load_model(path)
    assert "node 'h'" in str(e.value) and f"'{field}'" in str(e.value) and words in str(e.value)


def test_a_damaged_nir_file_is_a_named_error(tmp_path):
    pytest.importorskip("nir")
    from nmcompiler import load_model
    from nmcompiler.exporters.nir import write_nir

    raw = bytearray(write_nir(small(), tmp_path / "n.nir").read_bytes())
    hits = 0
    for i in range(0, len(raw), max(len(raw) // 60, 1)):
        b = bytearray(raw)
        b[i] ^= 0xFF
        (tmp_path / "f.nir").write_bytes(bytes(b))
        try:
            load_model(tmp_path / "f.nir")
        except ImportFormatError:
            hits += 1
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"byte {i}: {type(exc).__name__}: {exc}")
    assert hits > 0


# ---------------------------------------------------------------- manifests
def test_two_projections_with_one_name_are_refused(tmp_path, work):
    m, arrays = _manifest(work / "small.nmir", "nmcompiler.ir")
    m["network"]["projections"][1]["name"] = m["network"]["projections"][0]["name"]
    write_archive(tmp_path / "dup.nmir", m, arrays)
    with pytest.raises(FormatError, match="two projections are named"):
        ir.load(tmp_path / "dup.nmir")


@pytest.mark.parametrize("path,value", [
    (("n_arrays",), None), (("n_arrays",), 10**9), (("network", "populations", 0, "shape"),
                                                    [10**12]),
    (("network", "populations", 0, "name"), 5), (("network", "inputs"), {"a": 1}),
    (("network", "projections", 0, "conn", "fields"), []),
    (("network", "populations", 0, "model", "fields", "reset"), {"enum": "Reset", "value": 9}),
])
def test_crafted_nmir_manifests_are_format_errors(tmp_path, work, path, value):
    m, arrays = _manifest(work / "small.nmir", "nmcompiler.ir")
    node = m
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    write_archive(tmp_path / "x.nmir", m, arrays)
    with pytest.raises(FormatError):
        ir.load(tmp_path / "x.nmir")


@pytest.mark.parametrize("key,value", [
    ("neuron_core", {"array": 0}), ("n_cores", 10**9), ("populations", {"tuple": []}),
])
def test_crafted_compiled_manifests_are_format_errors(tmp_path, work, key, value):
    from nmcompiler.compiled import content_digest, load_compiled

    m, arrays = _manifest(work / "build" / "compiled.nmc", "nmcompiler.compiled")
    m["mapping"]["partition"]["record"]["fields"][key] = value
    m["digest"] = content_digest(m, arrays)  # a forged artifact: the mapping checks catch it
    (tmp_path / "b").mkdir()
    write_archive(tmp_path / "b" / "compiled.nmc", m, arrays)
    with pytest.raises(FormatError):
        load_compiled(tmp_path / "b")


def test_an_edited_compiled_artifact_is_refused(tmp_path, work):
    from nmcompiler.compiled import load_compiled

    m, arrays = _manifest(work / "build" / "compiled.nmc", "nmcompiler.compiled")
    m["network"]["metadata"] = {"quantization": None}
    (tmp_path / "b").mkdir()
    write_archive(tmp_path / "b" / "compiled.nmc", m, arrays)
    with pytest.raises(FormatError, match="changed after it was compiled"):
        load_compiled(tmp_path / "b")


def test_a_zip_member_declaring_more_bytes_than_the_file_is_refused(tmp_path, work):
    raw = bytearray((work / "small.nmir").read_bytes())
    # the central directory entry of the first member: its uncompressed size field
    cd = raw.rfind(b"PK\x01\x02", 0, len(raw))
    first = raw.find(b"PK\x01\x02")
    assert cd >= first >= 0
    raw[first + 24:first + 28] = (2**32 - 2).to_bytes(4, "little")
    (tmp_path / "big.nmir").write_bytes(bytes(raw))
    t0 = time.perf_counter()
    with pytest.raises(FormatError):
        ir.load(tmp_path / "big.nmir")
    assert time.perf_counter() - t0 < 1


# ---------------------------------------------------------------- nmc report
@pytest.mark.parametrize("text", ["{}", "[]", '{"target": 1}', "nul", '{"a": ' * 100000,
                                  '{"target": {"name": "x"}, "summary": {}, "network": {}}'])
def test_nmc_report_on_a_damaged_report_is_exit_1(tmp_path, text):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.json").write_text(text)
    out = nmc("report", "b", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "report.json" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("args", [
    ["compile", "small.nmir", "-t", "loihi2", "--seed", "-1", "-o", "o"],
    ["compile", "small.nmir", "-t", "loihi2", "--time-limit", "nan", "-o", "o"],
    ["compile", "small.nmir", "-t", "loihi2", "--dt", "-1", "-o", "o"],
    ["run", "build", "--steps", "-5", "-o", "o"],
    ["run", "build", "--steps", "0", "-o", "o"],
    ["run", "build", "--rate", "2", "-o", "o"],
    ["run", "build", "--seed", "99999999999999999999", "-o", "o"],
    ["deploy", "build", "--backend", "emulator", "--steps", "-5", "-o", "o"],
])
def test_bad_option_values_are_usage_errors_before_any_work(work, args):
    t0 = time.perf_counter()
    out = nmc(*args, cwd=work)
    assert out.returncode == 2, out.stderr
    assert "out of range" in out.stderr or "Invalid value" in out.stderr
    assert time.perf_counter() - t0 < 10
    assert not (work / "o").exists()


# ---------------------------------------------------------------- --input
def test_input_accepts_npy_for_a_one_input_network(work):
    np.save(work / "x.npy", np.zeros((7, 8), np.uint8))
    out = nmc("run", "build", "--input", "x.npy", "-o", "r_npy", cwd=work)
    assert out.returncode == 0, out.stderr
    assert json.loads((work / "r_npy" / "run_report.json").read_text())["steps"] == 7


@pytest.mark.parametrize("value,words", [(np.nan, "NaN"), (1e300, "magnitude"),
                                         (np.iinfo(np.uint64).max, "magnitude")])
def test_input_values_out_of_range_are_refused(work, value, words):
    x = np.zeros((5, 8), dtype=np.uint64 if isinstance(value, (int, np.integer)) else float)
    x[2, 3] = value
    np.savez(work / "bad.npz", **{"in": x})
    out = nmc("run", "build", "--input", "bad.npz", "-o", "r_bad", cwd=work)
    assert out.returncode == 1 and words in out.stderr, out.stderr
    assert not (work / "r_bad").exists()


def test_pickled_or_junk_inputs_never_suggest_pickling(work):
    np.save(work / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (work / "junk.npz").write_bytes(b"\x00" * 40)
    for f in ("obj.npy", "junk.npz"):
        out = nmc("run", "build", "--input", f, "-o", "r_j", cwd=work)
        assert out.returncode == 1, out.stderr
        assert "pickle" not in out.stderr.lower() and f in out.stderr


# ---------------------------------------------------------------- names on the terminal
def test_names_from_files_are_printed_literally(tmp_path):
    ir.save(small("[bold red]evil[/]\x1b[2J"), tmp_path / "m.nmir")
    out = nmc("compile", "m.nmir", "-t", "loihi2", "-o", "b", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rep = nmc("report", "b", cwd=tmp_path)
    assert "[bold red]evil[/]" in rep.stdout and "\x1b[2J" not in rep.stdout
    assert "\\x1b[2J" in rep.stdout


# ---------------------------------------------------------------- exit codes
@pytest.mark.parametrize("args", [
    ["compile", "absent.nmir", "-t", "loihi2"], ["run", "absent"], ["report", "absent"],
    ["deploy", "absent", "--backend", "emulator"],
    ["run", "build", "--input", "absent.npz", "-o", "o"],
])
def test_a_missing_file_is_exit_2_in_every_command(work, args):
    out = nmc(*args, cwd=work)
    assert out.returncode == 2 and "does not exist" in out.stderr, out.stderr


@pytest.mark.lava
def test_a_failed_lava_run_prints_a_summary_and_keeps_the_log(work, monkeypatch, tmp_path):
    """The runner's traceback goes to deploy.log inside the output, not to the terminal."""
    from nmcompiler.backends.loihi.harness import lava_available

    if lava_available() is not None:
        pytest.skip(lava_available())
    bad = tmp_path / "bad_python"
    bad.write_text("#!/bin/sh\ncase \"$*\" in *-c*) exec \"%s\" \"$@\";; esac\n"
                   "echo 'Traceback (most recent call last):' >&2\n"
                   "echo '  File \"x\", line 1' >&2\necho 'ValueError: boom' >&2\nexit 1\n"
                   % (Path(__file__).resolve().parents[2] / ".venv-lava" / "bin" / "python"))
    bad.chmod(0o755)
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg",
           "NMC_LAVA_PYTHON": str(bad)}
    r = subprocess.run([sys.executable, "-m", "nmcompiler.cli", "deploy", "build", "--backend",
                        "lava", "-o", str(tmp_path / "d")], cwd=work, capture_output=True,
                       text=True, env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "ValueError: boom" in r.stderr
    log = (tmp_path / "d" / "deploy.log").read_text()
    assert "Traceback (most recent call last)" in log
