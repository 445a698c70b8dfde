"""Run outputs of ``nmc run`` / ``nmc deploy`` (docs/cli.md, *Run outputs*): outputs.npz,
--probe, --record-all, --batch-size, spike counts in the report, progress bar, energy
labels."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir import IF, LI, LIF, Dense, Network
from nmcompiler.ir.errors import InputError, UsageError
from nmcompiler.run_outputs import _Progress, probe_keys, progress_allowed, run_with_outputs

REPO = Path(__file__).resolve().parents[2]


def nmc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env={"COLUMNS": "200", "PATH": ""})


def _net(readout: bool = False) -> Network:
    rng = np.random.default_rng(0)
    net = Network("small")
    net.input("in", 16)
    net.population("h", 120, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.population("o", 4, IF(theta=2.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(120, 16))), delay=1)
    net.connect("h", "o", Dense(weight=rng.normal(size=(4, 120)) * 0.2), delay=1)
    net.output("o")
    if readout:
        net.population("r", 3, LI(lam=0.5))
        net.connect("h", "r", Dense(weight=rng.normal(size=(3, 120))), delay=1)
        net.output("r")
    return net


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runout")
    model = ir.save(_net(), tmp / "small.nmir")
    out = tmp / "build"
    r = nmc("compile", str(model), "-t", "emulator", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rng = np.random.default_rng(1)
    np.savez(tmp / "batch.npz", **{"in": (rng.random((30, 5, 16)) < 0.3).astype(np.uint8)})
    np.savez(tmp / "single.npz", **{"in": (rng.random((30, 16)) < 0.3).astype(np.uint8)})
    return tmp, out


def test_batched_run_writes_outputs_probes_and_counts_per_batch(build):
    tmp, b = build
    whole, split = tmp / "whole", tmp / "split"
    r1 = nmc("run", str(b), "-i", str(tmp / "batch.npz"), "--probe", "h.v", "--record-all",
             "-o", str(whole), "--json")
    assert r1.returncode == 0, r1.stderr
    rep = json.loads(r1.stdout)  # --json: nothing but the JSON on stdout (no progress bar)
    r2 = nmc("run", str(b), "-i", str(tmp / "batch.npz"), "--probe", "h.v", "--record-all",
             "--batch-size", "2", "-o", str(split))
    assert r2.returncode == 0, r2.stderr
    assert "most active neuron" in r2.stdout and "outputs.npz" in r2.stdout
    a, c = np.load(whole / "outputs.npz"), np.load(split / "outputs.npz")
    assert set(a.files) == {"o", "h.v", "h.spikes", "o.spikes"}
    assert a["o"].shape == (30, 5, 4) and a["h.v"].shape == (30, 5, 120)
    for k in a.files:  # chunks of 2 samples give the same outputs as one run
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    np.testing.assert_array_equal(a["o"], a["o.spikes"])
    o = rep["outputs"]["o"]
    per = np.count_nonzero(a["o"], axis=0)  # (B, n)
    assert o["per_neuron"] == per.tolist()
    assert o["spikes_per_batch"] == per.sum(axis=1).tolist()
    assert o["most_active_per_batch"] == [int(np.argmax(x)) for x in per]
    assert o["spikes"] == int(per.sum()) and rep["batch"] == 5
    rep2 = json.loads((split / "run_report.json").read_text())
    assert rep2["batch_chunks"] == 3 and rep2["outputs"] == rep["outputs"]
    assert rep2["synaptic_ops"] == rep["synaptic_ops"]
    assert rep2["energy_j"]["total"] == pytest.approx(rep["energy_j"]["total"], rel=1e-12)
    assert rep["energy_illustrative"] is True and "not a real chip" in rep["energy_note"]
    assert "energy (illustrative: not a real chip)" in r2.stdout


def test_unbatched_run_writes_t_by_n_and_the_class(build):
    tmp, b = build
    r = nmc("run", str(b), "-i", str(tmp / "single.npz"), "-o", str(tmp / "one"))
    assert r.returncode == 0, r.stderr
    f = np.load(tmp / "one" / "outputs.npz")
    assert f.files == ["o"] and f["o"].shape == (30, 4)
    rep = json.loads((tmp / "one" / "run_report.json").read_text())
    counts = np.count_nonzero(f["o"], axis=0)
    assert rep["outputs"]["o"]["per_neuron"] == counts.tolist()
    assert rep["outputs"]["o"]["most_active"] == int(np.argmax(counts))
    assert "most active neuron" in r.stdout


def test_bad_probe_and_batch_size_are_clear_errors(build):
    tmp, b = build
    for args, code, word in ((("--probe", "hv"), 2, "POPULATION.VARIABLE"),
                             (("--probe", "nope.v"), 1, "no population 'nope'"),
                             (("--batch-size", "0"), 2, "batch-size")):
        dest = tmp / f"bad{code}{args[1]}"
        r = nmc("run", str(b), "-i", str(tmp / "batch.npz"), "-o", str(dest), *args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert word in r.stdout + r.stderr and "Traceback" not in r.stderr
        assert not dest.exists()  # a failed run leaves nothing


def test_deploy_writes_outputs_npz(build):
    tmp, b = build
    r = nmc("deploy", str(b), "--backend", "emulator", "-i", str(tmp / "single.npz"),
            "--probe", "h.spikes", "-o", str(tmp / "dep"))
    assert r.returncode == 0, r.stderr
    f = np.load(tmp / "dep" / "outputs.npz")
    assert f["o"].shape == (30, 4) and f["h.spikes"].shape == (30, 120)


def test_non_spiking_readout_reports_its_final_values():
    from nmcompiler.api import compile as nmc_compile
    from nmcompiler.backend import get_backend

    cn = nmc_compile(_net(readout=True), "loihi2", seed=0)
    x = {"in": (np.random.default_rng(2).random((20, 16)) < 0.4).astype(np.int64)}
    ro = run_with_outputs(get_backend("emulator"), cn, x, 20, network=cn.network)
    rep = ro.annotate({"energy_j": {"total": 1.0}}, cn.target)
    r = rep["outputs"]["r"]
    assert r["kind"] == "readout (final value)"
    final = np.asarray(ro.result.outputs["r"])[-1, 0]
    assert r["final_per_neuron"] == final.tolist()
    assert r["most_active"] == int(np.argmax(final))
    assert "energy_illustrative" not in rep  # loihi2 is a real chip


def test_progress_bar_only_on_terminals_and_after_a_second():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress_allowed(False, Tty()) and not progress_allowed(True, Tty())
    assert not progress_allowed(False, io.StringIO())
    late = _Progress(100, True, "x", after_s=3600.0)
    late(0)
    assert late.bar is None  # a short run never shows it
    early = _Progress(100, True, "x", after_s=0.0)
    for t in range(100):
        early(t)
    assert early.bar is not None
    assert early.bar.tasks[0].completed == 100
    early.close()
    off = _Progress(100, False, "x", after_s=0.0)
    off(5)
    assert off.bar is None


def _random_keys(rng: np.random.Generator) -> list[str]:
    """Probe options as a user might mistype them: valid keys, near misses, junk."""
    parts = ["h", "o", "in", "H", "", "h.h", "nope", " h"]
    vars_ = ["v", "u", "spikes", "V", "", "spike", "v.", "x"]
    junk = "".join(rng.choice(list("ab.\u00e9 \t/"), int(rng.integers(0, 8))))
    out = []
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.integers(0, 3)
        out.append(junk if kind == 0 else f"{rng.choice(parts)}.{rng.choice(vars_)}"
                   if kind == 1 else str(rng.choice(parts)))
    return out


@pytest.mark.parametrize("seed", range(100))
def test_probe_option_parsing_never_crashes(seed):
    """Property (seeded fuzz): every option list gives checked keys or a clear error."""
    rng = np.random.default_rng(seed)
    keys, record_all = _random_keys(rng), bool(rng.integers(0, 2))
    net = _net()
    try:
        got = probe_keys(net, keys, record_all)
    except (UsageError, InputError) as exc:
        assert str(exc)
        return
    for k in got:
        pop, var = k.rsplit(".", 1)
        assert pop in net.populations and var in ("spikes", "v", "u")
    assert len(got) == len(set(got))
    if record_all:
        assert {f"{p}.spikes" for p in net.populations} <= set(got)
