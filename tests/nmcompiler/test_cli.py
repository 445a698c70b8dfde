"""The nmc command line as a new user meets it: exit codes, outputs, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import IF, LIF, Dense, Network

REPO = Path(__file__).resolve().parents[2]


def nmc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, env={"COLUMNS": "200", "PATH": ""})


def small_network(tmp_path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    net = Network("small")
    net.input("in", 16)
    net.population("h", n, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 4, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(n, 16))), delay=1)
    net.connect("h", "o", Dense(weight=rng.normal(size=(4, n)) * 0.2), delay=1)
    net.output("o")
    return ir.save(net, tmp_path / "small.nmir")


def test_targets_lists_every_bundled_target():
    out = nmc("targets")
    assert out.returncode == 0, out.stderr
    for name in ("loihi", "loihi2", "spinnaker", "spinnaker2", "speck2f", "emulator"):
        assert name in out.stdout


def test_compile_writes_artifact_report_and_png_deterministically(tmp_path):
    model = small_network(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    out = nmc("compile", str(model), "--target", "loihi2", "-o", str(a))
    assert out.returncode == 0, out.stderr
    assert "cores" in out.stdout and "input_axons" in out.stdout
    assert nmc("compile", str(model), "-t", "loihi2", "-o", str(b)).returncode == 0
    for name in ("compiled.nmc", "report.json", "usage.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    rep = json.loads((a / "report.json").read_text())
    assert rep["target"]["name"] == "loihi2" and rep["summary"]["cores_used"] >= 1
    again = nmc("report", str(a))
    assert again.returncode == 0 and "input_axons" in again.stdout
    as_json = nmc("report", str(a), "--json")
    assert json.loads(as_json.stdout)["summary"] == rep["summary"]


def test_compile_of_a_network_that_does_not_fit_exits_1_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(1)
    net = Network("big")
    net.input("in", 5000)
    net.population("hidden", 8, LIF(lam=0.9))
    net.connect("in", "hidden", Dense(weight=rng.normal(size=(8, 5000))), delay=1)
    model = ir.save(net, tmp_path / "big.nmir")
    out = nmc("compile", str(model), "--target", "loihi", "-o", str(tmp_path / "build"))
    assert out.returncode == 1
    assert "hidden" in out.stderr and "4096" in out.stderr
    assert not (tmp_path / "build").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.nmir"]


def test_usage_and_configuration_errors_exit_2(tmp_path):
    model = small_network(tmp_path)
    out = nmc("compile", str(model), "--target", "loihii", "-o", str(tmp_path / "x"))
    assert out.returncode == 2 and "unknown target 'loihii'" in out.stderr
    assert "loihi" in out.stderr  # did-you-mean
    out = nmc("compile", str(tmp_path / "absent.nir"), "--target", "loihi")
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = nmc("compile", str(model), "--target", "loihi", "--placer", "magic")
    assert out.returncode == 2
    out = nmc("report", str(tmp_path))
    assert out.returncode == 2 and "no report.json" in out.stderr and "nmc compile" in out.stderr


def test_compile_nir_paper_cnn_for_loihi2(tmp_path, shared):
    cnn = shared / "interop" / "nir_paper_cnn" / "cnn_sinabs.nir"
    pytest.importorskip("nir")
    out = nmc("compile", str(cnn), "--preset", "sinabs", "-t", "loihi2", "-o",
              str(tmp_path / "cnn"))
    assert out.returncode == 0, out.stderr
    rep = json.loads((tmp_path / "cnn" / "report.json").read_text())
    assert rep["network"]["neurons"] == 8970
    assert rep["partition"]["usage"]["input_axons"]["max"] <= 4096


def test_run_reports_sops_energy_latency_and_writes_plots(tmp_path):
    model = small_network(tmp_path)
    build = tmp_path / "build"
    assert nmc("compile", str(model), "-t", "loihi", "-o", str(build)).returncode == 0
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "spikes.npz", **{"in": (rng.random((40, 16)) < 0.3).astype(np.uint8)})
    out = nmc("run", str(build), "--input", str(tmp_path / "spikes.npz"), "-o",
              str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    for word in ("synaptic operations", "energy", "latency per step", "busiest cores"):
        assert word in out.stdout
    rep = json.loads((tmp_path / "run" / "run_report.json").read_text())
    assert rep["steps"] == 40 and rep["synaptic_ops"] > 0 and rep["energy_j"]["total"] > 0
    assert (tmp_path / "run" / "raster.png").stat().st_size > 1000
    assert (tmp_path / "run" / "activity.png").stat().st_size > 1000


def test_run_input_errors_are_clear(tmp_path):
    model = small_network(tmp_path)
    build = tmp_path / "build"
    assert nmc("compile", str(model), "-t", "emulator", "-o", str(build)).returncode == 0
    np.savez(tmp_path / "bad.npz", **{"in": np.zeros((10, 15))})
    out = nmc("run", str(build), "--input", str(tmp_path / "bad.npz"))
    assert out.returncode == 1
    assert "input 'in' has shape (10, 15), expected (T, 16) or (T, B, 16)" in out.stderr
    np.savez(tmp_path / "typo.npz", inp=np.zeros((10, 16)))
    out = nmc("run", str(build), "--input", str(tmp_path / "typo.npz"))
    assert out.returncode == 1 and "'inp' is not an input" in out.stderr
    (tmp_path / "junk.npz").write_text("not a zip")
    out = nmc("run", str(build), "--input", str(tmp_path / "junk.npz"))
    assert out.returncode == 1 and "is not a .npz of arrays" in out.stderr
    out = nmc("run", str(model))
    assert out.returncode == 2 and "give --target" in out.stderr


def test_run_compiles_a_nir_file_on_the_fly(tmp_path, shared):
    pytest.importorskip("nir")
    cnn = shared / "interop" / "nir_paper_cnn" / "cnn_sinabs.nir"
    out = nmc("run", str(cnn), "--target", "loihi2", "--preset", "sinabs", "--steps", "10",
              "-o", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rep = json.loads((tmp_path / "r" / "run_report.json").read_text())
    assert rep["synaptic_ops"] > 0 and rep["latency_per_step_s"]["mean"] > 0
