"""nmc compare and its Python API (docs/compare.md): one network on every target."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.compare import (
    COLUMNS,
    ComparePoint,
    compare,
    derive_target,
    evaluate_point,
    pareto_front,
    random_inputs,
    unpublished_numbers,
    write_compare,
)
from nmcompiler.ir import IF, LIF, Dense, Network
from nmcompiler.ir.errors import ConfigError, InputError, UsageError
from nmcompiler.targets import load_target

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["emulator", "loihi2", "speck2f", "spinnaker"]


def if_network(n: int = 40) -> Network:
    """IF neurons only (so every target, Speck too, can take it), recurrent, delays 1-2."""
    rng = np.random.default_rng(3)
    net = Network("cmp")
    net.input("in", 12)
    net.population("h", n, IF(theta=1.0))
    net.population("o", 5, IF(theta=1.5))
    net.connect("in", "h", Dense(weight=rng.uniform(0, 1.2, (n, 12))), delay=1)
    net.connect("h", "o", Dense(weight=rng.uniform(-0.2, 0.6, (5, n))), delay=2)
    net.output("o")
    return net


def lif_network() -> Network:
    """Synaptic-current LIF neurons: Speck has no current stage and must refuse."""
    rng = np.random.default_rng(4)
    net = Network("lif")
    net.input("in", 8)
    net.population("h", 20, LIF(alpha_u=0.5, lam=0.9, theta=1.0))
    net.connect("in", "h", Dense(weight=rng.normal(size=(20, 8))), delay=1)
    net.connect("h", "h", Dense(weight=rng.normal(size=(20, 20)) * 0.2), delay=1)
    return net  # no outputs: compare makes every population one


def test_records_have_every_column_and_real_figures():
    recs = compare(if_network(), TARGETS, steps=40, rate=0.3, jobs=1)
    assert [r["target"] for r in recs] == TARGETS
    for r in recs:
        assert set(COLUMNS) <= set(r)
        assert r["status"] == "ok", r["reason"]
        assert r["cores"] >= 1 and r["chips"] >= 1
        assert r["synaptic_ops_per_step"] > 0
        assert r["energy_per_step_j"] > 0 and r["latency_per_step_s"] > 0
        assert r["energy_per_inference_j"] == pytest.approx(40 * r["energy_per_step_j"])
        assert 0 <= r["agreement"] <= 1 and r["reference_spikes"] > 0
    emu = recs[0]
    # the generic target computes what the float reference computes
    assert emu["agreement"] == 1.0 and emu["output_spikes"] == emu["reference_spikes"]
    assert (emu["unpublished_energy"], emu["unpublished_latency"]) == (0, 0)
    # SpiNNaker's 1 ms timer tick bounds its step from below
    assert recs[3]["latency_per_step_s"] >= 1e-3


def test_figures_are_the_counters_of_an_emulator_run():
    from nmcompiler.api import compile as compile_network
    from nmcompiler.backend import get_backend

    net = if_network()
    x = random_inputs(net, 30, 0.3, seed=5)
    rec = evaluate_point(net, ComparePoint(target="loihi2", seed=2), x, 30)
    c = compile_network(net, "loihi2", seed=2)
    r = get_backend("emulator").run(c, x, 30)
    assert rec["synaptic_ops_per_step"] == r.counters.sops.sum() / 30
    assert rec["energy_per_step_j"] == r.counters.energy_j["total"] / 30
    assert rec["latency_per_step_s"] == np.asarray(r.counters.step_time_s).sum() / 30
    assert rec["cores"] == c.n_cores
    q = c.report["passes"]["quantize"]["summary"]["max_weight_rel_rms_error"]
    assert rec["quantisation_error"] == q


def test_batched_input_gives_per_sample_figures():
    net = if_network()
    rng = np.random.default_rng(0)
    xb = {"in": (rng.random((25, 3, 12)) < 0.3).astype(float)}
    (rec,) = compare(net, ["loihi2"], inputs=xb, jobs=1)
    r0 = [evaluate_point(net, ComparePoint(target="loihi2"), {"in": xb["in"][:, b]}, 25)
          for b in range(3)]
    total = sum(r["energy_per_inference_j"] for r in r0)
    assert rec["energy_per_inference_j"] == pytest.approx(total / 3)
    assert rec["energy_per_step_j"] == pytest.approx(total / 3 / 25)


def test_not_fitting_is_a_record_with_the_named_reason_and_no_outputs_means_all():
    recs = compare(lif_network(), ["emulator", "speck2f"], steps=20, rate=0.3, jobs=1)
    assert recs[0]["status"] == "ok" and recs[0]["agreement"] == 1.0
    assert recs[1]["status"] == "does not fit"
    assert recs[1]["reason"].startswith("FitError") and "speck2f" in recs[1]["reason"]
    assert recs[1]["cores"] is None and recs[1]["energy_per_step_j"] is None


def test_parallel_processes_give_the_serial_records():
    net = if_network()
    assert compare(net, TARGETS, steps=30, jobs=2) == compare(net, TARGETS, steps=30, jobs=1)


def test_bad_target_and_bad_input_fail_before_any_work():
    with pytest.raises(ConfigError):
        compare(if_network(), ["emulator", "loihi7"], steps=10)
    with pytest.raises(InputError):
        compare(if_network(), ["emulator"], inputs={"in": np.zeros((10, 7))})
    with pytest.raises(UsageError):
        compare(if_network(), ["emulator"], steps=0)
    with pytest.raises(UsageError):
        compare(if_network(), ["emulator"], steps=10, rate=1.5)


def test_unpublished_numbers_follow_the_target_files():
    t = load_target("loihi2")
    u = unpublished_numbers(t)
    unknown = set(t.unknown_fields())
    # the emulator's formulas do not use the inactive-neuron figures (docs/emulator.md)
    used = {k for k in unknown if "inactive" not in k}
    assert set(u["latency"]) == {k for k in used if k.startswith("cost.time_")} | (
        {"cost.barrier_time_s"} & used)
    assert set(u["energy"]) >= {k for k in used if k.startswith("cost.energy_")}
    assert all(k.startswith("formats.") for k in u["quantisation"])
    assert unpublished_numbers(load_target("emulator")) == {
        "fit": (), "energy": (), "latency": (), "quantisation": ()}


def test_derived_targets_narrow_weights_and_cap_cores():
    base = load_target("loihi2")
    t = derive_target(base, weight_bits=4, max_neurons_per_core=16)
    assert t.formats.weight_bits == 4 and t.core.neurons == 16
    assert "core_budget.neurons" not in t.unknown_fields()
    assert base.formats.weight_bits == 8 and base.core.neurons > 16  # not modified
    net = if_network()
    x = random_inputs(net, 20, 0.3, seed=0)
    wide = evaluate_point(net, ComparePoint(target="loihi2"), x, 20)
    narrow = evaluate_point(net, ComparePoint(target="loihi2", weight_bits=3,
                                              max_neurons_per_core=16), x, 20)
    assert narrow["cores"] > wide["cores"]
    assert narrow["quantisation_error"] > wide["quantisation_error"]
    with pytest.raises(UsageError):
        derive_target(base, weight_bits=0)


def test_pareto_front():
    recs = [{"latency_per_step_s": 1.0, "energy_per_inference_j": 5.0},
            {"latency_per_step_s": 2.0, "energy_per_inference_j": 1.0},
            {"latency_per_step_s": 3.0, "energy_per_inference_j": 6.0},
            {"latency_per_step_s": None, "energy_per_inference_j": None}]
    assert pareto_front(recs) == [0, 1]


def test_written_files_are_deterministic_and_atomic(tmp_path):
    recs = compare(if_network(), ["emulator", "loihi2"], steps=20, jobs=1)
    a = write_compare(recs, tmp_path / "a", {"model": "x"})
    b = write_compare(compare(if_network(), ["emulator", "loihi2"], steps=20, jobs=1),
                      tmp_path / "b", {"model": "x"})
    for name in ("compare.json", "compare.csv", "compare.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    doc = json.loads((a / "compare.json").read_text())
    assert doc["records"][1]["target"] == "loihi2" and doc["columns"] == list(COLUMNS)
    rows = list(csv.DictReader(io.StringIO((a / "compare.csv").read_text())))
    assert float(rows[1]["energy_per_step_j"]) == recs[1]["energy_per_step_j"]
    # rewriting our own directory is fine; a directory with someone else's file is kept
    write_compare(recs, a, {"model": "x"})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UsageError):
        write_compare(recs, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def nmc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmcompiler.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300,
                          env={"COLUMNS": "220", "PATH": "", "MPLBACKEND": "Agg"})


def test_cli_compare_writes_the_table_and_files(tmp_path):
    model = ir.save(if_network(), tmp_path / "m.nmir")
    x = random_inputs(if_network(), 25, 0.3, seed=9)
    np.savez(tmp_path / "x.npz", **x)
    out = nmc("compare", str(model), "--targets", "emulator,loihi2,speck2f", "--input",
              str(tmp_path / "x.npz"), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "loihi2" in out.stdout and "speck2f" in out.stdout
    doc = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert [r["target"] for r in doc["records"]] == ["emulator", "loihi2", "speck2f"]
    assert doc["steps"] == 25
    assert (tmp_path / "out" / "compare.png").stat().st_size > 10_000
    api = compare(if_network(), ["emulator", "loihi2", "speck2f"], inputs=x, jobs=1)
    assert json.loads(json.dumps(api)) == doc["records"]

    bad = nmc("compare", str(model), "--targets", "loihi7", "-o", str(tmp_path / "o2"),
              cwd=tmp_path)
    assert bad.returncode == 2 and "loihi7" in bad.stderr
    assert not (tmp_path / "o2").exists()
    np.savez(tmp_path / "bad.npz", **{"in": np.zeros((5, 3))})
    bad = nmc("compare", str(model), "--input", str(tmp_path / "bad.npz"), "-o",
              str(tmp_path / "o3"), cwd=tmp_path)
    assert bad.returncode == 1 and "in" in bad.stderr and not (tmp_path / "o3").exists()
