"""nmc sweep (docs/scale.md): grid files, Dask over TCP equal to a serial run, failed
points recorded, a rerun resumes from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.ir.errors import ConfigError, UsageError
from nmcompiler.sweep import (
    SWEEP_COLUMNS,
    comparable,
    grid_points,
    load_grid,
    parse_grid,
    sweep,
    write_sweep,
)

distributed = pytest.importorskip("distributed")


def network() -> Network:
    """LIF neurons with a current stage (Speck must refuse them), recurrent, delays 1-2."""
    rng = np.random.default_rng(11)
    net = Network("sweepnet")
    net.input("in", 10)
    net.population("h", 60, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 4, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.uniform(0, 1.5, (60, 10))), delay=1)
    net.connect("h", "h", Dense(weight=rng.normal(size=(60, 60)) * 0.1), delay=2)
    net.connect("h", "o", Dense(weight=rng.uniform(-0.1, 0.5, (4, 60))), delay=1)
    net.output("o")
    return net


GRID = {
    "targets": ["emulator", "loihi2", "speck2f"],
    "seeds": [3],
    "steps": 30,
    "compile": {"partitioner": ["auto", "sequential"], "max_neurons_per_core": [0, 16],
                "weight_bits": [0, 4]},
    "inputs": {"rates": [0.2]},
}


@pytest.fixture(scope="module")
def serial_records():
    return sweep(network(), parse_grid(GRID), serial=True)


@pytest.fixture(scope="module")
def tcp_cluster():
    """A LocalCluster whose scheduler listens on TCP on 127.0.0.1 (the multi-machine path:
    the client connects by address, the workers are separate processes)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", protocol="tcp",
                                       dashboard_address=None, silence_logs=40)
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


def test_grid_is_the_cross_product(serial_records):
    grid = parse_grid(GRID)
    pts = grid_points(grid)
    assert len(pts) == 3 * 1 * 2 * 2 * 2 * 1
    assert len(serial_records) == len(pts)
    for sp, rec in zip(pts, serial_records, strict=True):
        assert rec["target"] == sp.point.target and rec["seed"] == sp.point.seed
        assert set(SWEEP_COLUMNS) <= set(rec)
    by = {(r["target"], r["status"]) for r in serial_records}
    # Speck has no current stage: its points fail with the named error, the rest run
    assert ("speck2f", "does not fit") in by and ("loihi2", "ok") in by
    assert all(r["reason"].startswith("FitError") for r in serial_records
               if r["target"] == "speck2f")
    assert all(r["compile_time_s"] > 0 for r in serial_records)
    capped = [r for r in serial_records if r["target"] == "loihi2" and r["status"] == "ok"]
    assert max(r["cores"] for r in capped if r["max_neurons_per_core"] == 16) > max(
        r["cores"] for r in capped if r["max_neurons_per_core"] is None)
    narrow = [r["quantisation_error"] for r in capped if r["weight_bits"] == 4]
    wide = [r["quantisation_error"] for r in capped if r["weight_bits"] is None]
    assert min(narrow) > max(wide)


def test_dask_over_tcp_equals_the_serial_run(serial_records, tcp_cluster):
    addr = tcp_cluster.scheduler_address
    assert addr.startswith("tcp://127.0.0.1:")
    seen = []
    recs = sweep(network(), parse_grid(GRID), scheduler=addr,
                 progress=lambda d, t, c: seen.append((d, t, c)))
    assert comparable(recs) == comparable(serial_records)
    assert seen[0] == (0, 24, 0) and seen[-1] == (24, 24, 0)
    assert [d for d, _, _ in seen] == list(range(25))


def test_rerun_resumes_from_the_cache(tmp_path, serial_records, tcp_cluster):
    grid = parse_grid({**GRID, "targets": ["loihi2", "speck2f"]})
    cache = tmp_path / "cache"
    first = sweep(network(), grid, scheduler=tcp_cluster.scheduler_address, cache_dir=cache)
    files = sorted(cache.glob("*.json"))
    assert len(files) == 16
    seen = []
    again = sweep(network(), grid, serial=True, cache_dir=cache,
                  progress=lambda d, t, c: seen.append((d, t, c)))
    assert again == first  # from the cache: wall times included
    assert seen == [(16, 16, 16)]
    files[3].unlink()
    seen.clear()
    third = sweep(network(), grid, serial=True, cache_dir=cache,
                  progress=lambda d, t, c: seen.append((d, t, c)))
    assert seen == [(15, 16, 15), (16, 16, 15)]
    assert comparable(third) == comparable(first)
    expected = [r for r in serial_records if r["target"] in ("loihi2", "speck2f")]
    assert comparable(first) == comparable(expected)
    # another network is another cache key
    other = network().replace(name="other")
    seen.clear()
    sweep(other, parse_grid({**GRID, "targets": ["emulator"], "seeds": [0],
                             "compile": {}}), serial=True, cache_dir=cache,
          progress=lambda d, t, c: seen.append((d, t, c)))
    assert seen[0] == (0, 1, 0)


def test_a_bad_input_file_is_a_failed_point_not_a_stopped_sweep(tmp_path):
    np.savez(tmp_path / "good.npz", **{"in": (np.random.default_rng(0).random((20, 10))
                                              < 0.3).astype(float)})
    np.savez(tmp_path / "bad.npz", **{"in": np.zeros((20, 3))})
    grid = parse_grid({"targets": ["emulator", "loihi2"],
                       "inputs": {"files": ["good.npz", "bad.npz"]}}, tmp_path)
    recs = sweep(network(), grid, serial=True)
    status = {(r["target"], r["input"]): r["status"] for r in recs}
    assert status == {("emulator", "file=good.npz"): "ok", ("emulator", "file=bad.npz"): "error",
                      ("loihi2", "file=good.npz"): "ok", ("loihi2", "file=bad.npz"): "error"}
    bad = [r for r in recs if r["input"] == "file=bad.npz"]
    assert all(r["reason"].startswith("InputError") and "'in'" in r["reason"] for r in bad)


@pytest.mark.parametrize("doc, key", [
    ({}, "targets"),
    ({"targets": []}, "targets"),
    ({"targets": ["loihi2"], "seeds": [-1]}, "seeds"),
    ({"targets": ["loihi2"], "seeds": [True]}, "seeds"),
    ({"targets": ["loihi2"], "compile": {"partitioner": ["kl"]}}, "compile.partitioner"),
    ({"targets": ["loihi2"], "compile": {"bits": [4]}}, "compile.bits"),
    ({"targets": ["loihi2"], "compile": {"weight_bits": [40]}}, "compile.weight_bits"),
    ({"targets": ["loihi2"], "inputs": {"rates": [1.5]}}, "inputs.rates"),
    ({"targets": ["loihi2"], "inputs": {"files": ["nope.npz"]}}, "inputs.files"),
    ({"targets": ["loihi2"], "steps": 0}, "steps"),
    ({"targets": ["loihi2"], "target": "x"}, "target"),
    ({"targets": ["a"] * 2}, "targets"),
    ({"targets": [str(i) for i in range(400)], "seeds": list(range(300))}, "grid"),
])
def test_bad_grids_name_the_key(doc, key, tmp_path):
    with pytest.raises(UsageError) as e:
        parse_grid(doc, tmp_path)
    assert e.value.obj == key and e.value.hint


def test_grid_file_errors(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('targets = ["loihi7"]\n')
    with pytest.raises(ConfigError):
        load_grid(p)
    p.write_text("targets = [\n")
    with pytest.raises(UsageError, match="TOML"):
        load_grid(p)
    with pytest.raises(UsageError, match="does not exist"):
        load_grid(tmp_path / "none.toml")


def test_unreachable_scheduler_is_a_configuration_error():
    grid = parse_grid({"targets": ["emulator"], "steps": 5})
    with pytest.raises(ConfigError, match="127.0.0.1:9"):
        sweep(network(), grid, scheduler="tcp://127.0.0.1:9", connect_timeout_s=2)


def test_write_sweep_is_deterministic(tmp_path, serial_records):
    recs = comparable(serial_records)
    a = write_sweep(recs, tmp_path / "a", {"model": "m"})
    b = write_sweep(recs, tmp_path / "b", {"model": "m"})
    for name in ("sweep.json", "sweep.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert json.loads((a / "sweep.json").read_text())["records"] == json.loads(
        json.dumps(recs))


def nmc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300,
                          env={"COLUMNS": "250", "PATH": "", "MPLBACKEND": "Agg"})


def test_cli_sweep_on_a_local_cluster_then_from_the_cache(tmp_path):
    ir.save(network(), tmp_path / "m.nmir")
    (tmp_path / "grid.toml").write_text(
        'targets = ["loihi2", "speck2f"]\nseeds = [0, 1]\nsteps = 20\n'
        '[compile]\nplacer = ["auto", "heuristic"]\n')
    out = nmc("sweep", "m.nmir", "--grid", "grid.toml", "--workers", "1", "-o", "res",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "8 points, 4 ok" in out.stdout
    doc = json.loads((tmp_path / "res" / "sweep.json").read_text())
    assert len(doc["records"]) == 8 and len(list((tmp_path / "res.cache").glob("*.json"))) == 8
    header = (tmp_path / "res" / "sweep.csv").read_text().splitlines()[0]
    assert header.split(",") == list(SWEEP_COLUMNS)
    again = nmc("sweep", "m.nmir", "--grid", "grid.toml", "--serial", "-o", "res", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "res" / "sweep.json").read_text()) == doc
    bad = nmc("sweep", "m.nmir", "--grid", "nope.toml", "-o", "x", cwd=tmp_path)
    assert bad.returncode == 2 and "nope.toml" in bad.stderr and not (tmp_path / "x").exists()
