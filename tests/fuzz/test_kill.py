"""SIGKILL a compile and a deploy at random moments (docs/reliability.md): afterwards the
output path holds either the previous complete directory or nothing, and the next run
removes the killed run's temporary directory."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import LIF, Dense, Network

#: kills per command: 3 in make test, 20 in make fuzz (NMC_KILLS=20)
KILLS = int(os.environ.get("NMC_KILLS", "3"))


def nmc_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "nmcompiler.cli", *args]


ENV = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}


def large_network() -> Network:
    rng = np.random.default_rng(0)
    net = Network("large")
    net.input("in", 256)
    net.population("a", 2000, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("b", 1000, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "a", Dense(weight=rng.normal(size=(2000, 256)).astype(np.float32)))
    net.connect("a", "b", Dense(weight=rng.normal(size=(1000, 2000)).astype(np.float32) * 0.1))
    net.output("b")
    return net


def digest(d: Path) -> str:
    return hashlib.sha256((d / "compiled.nmc").read_bytes()).hexdigest()


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def kill_at_random(args: list[str], cwd: Path, full_s: float, rng: random.Random) -> None:
    p = subprocess.Popen(nmc_cmd(*args), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.0, full_s * 1.1))
    p.send_signal(signal.SIGKILL)
    p.wait()


def check_state(out: Path, reference: str | None, loadable: bool = True) -> str:
    """The output is absent, or a complete directory (its artifact loads and matches)."""
    if not out.exists():
        return "absent"
    if reference is not None:
        assert digest(out) == reference
    if loadable:
        from nmcompiler.compiled import load_compiled

        load_compiled(out)
    return "complete"


@pytest.mark.slow
def test_sigkill_compile_and_deploy_at_random_moments(tmp_path):
    ir.save(large_network(), tmp_path / "large.nmir")
    rng = random.Random(1234)
    t0 = time.perf_counter()
    r = subprocess.run(nmc_cmd("compile", "large.nmir", "-t", "emulator", "-o", "build"),
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    full_compile = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    reference = digest(tmp_path / "build")
    states = []
    for _ in range(KILLS):
        kill_at_random(["compile", "large.nmir", "-t", "emulator", "-o", "build"], tmp_path,
                       full_compile, rng)
        states.append(check_state(tmp_path / "build", reference))
    # the next complete run cleans what the killed runs left
    r = subprocess.run(nmc_cmd("compile", "large.nmir", "-t", "emulator", "-o", "build"),
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert leftovers(tmp_path) == []
    assert digest(tmp_path / "build") == reference

    t0 = time.perf_counter()
    r = subprocess.run(nmc_cmd("deploy", "build", "--backend", "emulator", "--steps", "20",
                               "-o", "dep"), cwd=tmp_path, env=ENV, capture_output=True,
                       text=True)
    full_deploy = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    dep_ref = hashlib.sha256((tmp_path / "dep" / "run_emulator.npz").read_bytes()).hexdigest()
    for _ in range(KILLS):
        kill_at_random(["deploy", "build", "--backend", "emulator", "--steps", "20", "-o", "dep"],
                       tmp_path, full_deploy, rng)
        dep = tmp_path / "dep"
        if dep.exists():
            run = dep / "run_emulator.npz"
            assert hashlib.sha256(run.read_bytes()).hexdigest() == dep_ref
            states.append("complete")
        else:
            states.append("absent")
    r = subprocess.run(nmc_cmd("deploy", "build", "--backend", "emulator", "--steps", "20",
                               "-o", "dep"), cwd=tmp_path, env=ENV, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "build") == []
    assert len(states) == 2 * KILLS
