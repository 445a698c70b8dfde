"""Output alignment (docs/cli.md#output-alignment): on loihi2 retiming shifts outputs by
two steps; a T-step input run aligned gives T rows, row t the float reference's response
to input step t, through the API and through ``nmc run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nmcompiler import compile as nmc_compile
from nmcompiler import ir
from nmcompiler.ir.errors import InputError
from nmcompiler.run_outputs import alignment_of, pad_inputs, run_aligned


def _exact() -> ir.Network:
    rng = np.random.default_rng(1)
    net = ir.Network("ff")
    net.input("in", 8)
    net.population("h", 12, ir.IF(theta=2.0))
    net.population("o", 4, ir.IF(theta=2.0))
    net.connect("in", "h", ir.Dense(weight=rng.integers(0, 3, (12, 8)).astype(float)),
                delay=0)
    net.connect("h", "o", ir.Dense(weight=rng.integers(0, 3, (4, 12)).astype(float)),
                delay=0)
    net.output("o")
    return net


@pytest.fixture(scope="module")
def compiled():
    return nmc_compile(_exact(), "loihi2")


def test_alignment_reads_the_compile_report(compiled):
    al = alignment_of(compiled)
    assert al.outputs == {"o": 2} and al.populations["h"] == 1
    assert al.pad() == 2 and al.lag_of("h.v") == 1


def test_aligned_run_row_t_is_the_response_to_input_t(compiled):
    t_len = 30
    x = (np.random.default_rng(5).random((t_len, 8)) < 0.3).astype(np.float64)
    ref = ir.simulate(_exact(), {"in": x}, t_len, probes=("h.spikes",))
    res = run_aligned(compiled, {"in": x}, probes=("h.spikes",))
    out = np.asarray(res.outputs["o"])[:, 0]
    want = np.asarray(ref.outputs["o"])[:, 0]
    assert out.shape == (t_len, 4) and want.sum() > 0
    assert np.array_equal(out, want)
    # the last input steps' responses are there (they fall after step T - 2 unaligned)
    assert np.array_equal(out[-2:], want[-2:])
    assert np.array_equal(np.asarray(res.probes["h.spikes"])[:, 0], ref.probes["h.spikes"][:, 0])
    al = res.info["alignment"]
    assert al["input_steps"] == t_len and al["steps_run"] == t_len + 2
    assert al["padded_steps"] == 2 and "row t" in al["statement"]


def test_pad_inputs_refuses_a_short_input():
    with pytest.raises(InputError, match="has 3 steps, 5 asked for"):
        pad_inputs({"in": np.zeros((3, 2))}, 5, 2)


def test_nmc_run_pads_and_says_so(tmp_path: Path):
    ir.save(_exact(), tmp_path / "ff.nmir")
    x = (np.random.default_rng(5).random((30, 8)) < 0.3).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    env = {"COLUMNS": "200", "PATH": os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "nmcompiler.cli", "run", "ff.nmir", "-t",
                          "loihi2", "-i", "x.npy", "-o", "out"], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "output alignment" in run.stdout and "padded with 2 zero step(s)" in run.stdout
    rep = json.loads((tmp_path / "out" / "run_report.json").read_text())
    assert rep["alignment"]["padded_steps"] == 2 and rep["steps"] == 32
    with np.load(tmp_path / "out" / "outputs.npz") as f:
        got = f["o"]
    want = np.asarray(ir.simulate(_exact(), {"in": x}, 30).outputs["o"])[:, 0]
    assert got.shape == (30, 4) and np.array_equal(got, want)
    assert rep["outputs"]["o"]["per_neuron"] == [int(v) for v in want.sum(axis=0)]
