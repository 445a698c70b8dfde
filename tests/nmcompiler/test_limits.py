"""Bounded work (docs/cli.md): huge delays, bit widths and declared sizes are refused up
front with a named error, in well under a second, before anything large is allocated."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nmcompiler
from nmcompiler.ir import LIF, Dense, Network
from nmcompiler.ir.errors import ConfigError, FitError
from nmcompiler.limits import check_model_memory, estimate_file_bytes
from nmcompiler.targets import parse_target

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def delayed(delay: int) -> Network:
    net = Network("delayed")
    net.input("in", 4)
    net.population("h", 4, LIF(lam=0.9))
    net.connect("in", "h", Dense(weight=np.ones((4, 4))), delay=delay)
    net.output("h")
    return net


@pytest.mark.parametrize("delay", [10**5, 10**12])
def test_a_huge_delay_is_refused_fast(delay):
    nmcompiler.compile(delayed(1), "loihi2")  # imports are not the work being timed
    t0 = time.perf_counter()
    with pytest.raises(FitError) as e:
        nmcompiler.compile(delayed(delay), "loihi2")
    assert time.perf_counter() - t0 < 1.0
    assert "'in->h'" in str(e.value) or "delay" in str(e.value)
    assert "relay" in str(e.value) and "steps" in str(e.value)


def test_a_moderate_delay_still_compiles():
    cn = nmcompiler.compile(delayed(200), "loihi2")
    assert cn.n_cores >= 1


@pytest.mark.parametrize("key", ["weight_bits", "max_delay", "neurons", "cores_per_chip"])
def test_chip_file_numbers_beyond_any_chip_are_refused(key):
    doc = tomllib.loads((REPO / "nmcompiler" / "hw_configs" / "loihi2.toml").read_text())
    doc = copy.deepcopy(doc)
    for table in doc.values():
        if isinstance(table, dict) and key in table:
            if isinstance(table[key], dict):
                table[key]["value"] = 10**20
            else:
                table[key] = 10**20
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        parse_target(doc, label="chip.toml")
    assert time.perf_counter() - t0 < 1.0
    assert key in str(e.value) and "<=" in str(e.value)


def test_a_chip_with_too_many_cores_is_refused():
    doc = tomllib.loads((REPO / "nmcompiler" / "hw_configs" / "loihi2.toml").read_text())
    cg = doc["topology"]["chip_grid"]
    if isinstance(cg, dict):
        cg["value"] = [100000, 100000]
    else:
        doc["topology"]["chip_grid"] = [100000, 100000]
    with pytest.raises(ConfigError, match="cores or routers"):
        parse_target(doc, label="chip.toml")


def _huge_nir(path: Path, n: int) -> Path:
    """A small NIR file whose LIF layer declares ``n`` neurons (HDF5 fill values)."""
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("nir")
    from nmcompiler.exporters.nir import write_nir

    net = Network("n")
    net.input("in", 8)
    net.population("h", 6, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "h", Dense(weight=np.ones((6, 8))), delay=1)
    net.output("h")
    write_nir(net, path)
    with h5py.File(path, "r+") as f:
        g = f["node/nodes/h"]
        for k in ("tau_mem", "tau_syn", "r", "v_leak", "v_reset", "v_threshold", "w_in"):
            del g[k]
            g.create_dataset(k, shape=(n,), dtype="f8", fillvalue=1.0)
    return path


def test_a_small_file_declaring_a_billion_neurons_is_refused_with_the_estimate(tmp_path):
    path = _huge_nir(tmp_path / "huge.nir", 10**9)
    assert path.stat().st_size < 64_000
    assert estimate_file_bytes(path) >= 7 * 8 * 10**9
    t0 = time.perf_counter()
    with pytest.raises(FitError) as e:
        check_model_memory(path, 4 * 10**9)
    assert time.perf_counter() - t0 < 1.0
    assert "GB" in str(e.value) and "--max-memory" in str(e.value)
    env = {"COLUMNS": "200", "PATH": "", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-m", "nmcompiler.cli", "compile", str(path), "-t",
                        "loihi2", "-o", str(tmp_path / "b"), "--max-memory", "2"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "56" in r.stderr and "limit is 2 GB" in r.stderr
    assert not (tmp_path / "b").exists()


def test_max_memory_must_be_a_positive_number(tmp_path):
    env = {"COLUMNS": "200", "PATH": "", "MPLBACKEND": "Agg"}
    for bad in ("0", "-1", "nan", "inf"):
        r = subprocess.run([sys.executable, "-m", "nmcompiler.cli", "compile", "x.nmir", "-t",
                            "loihi2", "--max-memory", bad], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
        assert r.returncode == 2 and "--max-memory" in r.stderr, (bad, r.stderr)
