"""The behaviour check's figures are what their names say (docs/passes.md#fidelity):
entries that agree, float spikes kept and spurious spikes, counted by hand on a recurrent
network, against the network before lowering read at each population's lag, over the
user's own input when given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from nmcompiler import compile as nmc_compile
from nmcompiler import ir
from nmcompiler.passes.quantize.check import spike_figures
from nmcompiler.report import render_compile_report


def _recurrent() -> ir.Network:
    """Float weights (rounded to 8 bits on loihi2) and recurrence: the hidden layer's
    errors build up, so entries that agree and float spikes kept differ."""
    rng = np.random.default_rng(3)
    net = ir.Network("rec")
    net.input("in", 10)
    net.population("h", 40, ir.LIF(lam=0.9, theta=1.0, bias=0.02))
    net.population("o", 5, ir.LIF(lam=0.95, theta=1.0))
    net.connect("in", "h", ir.Dense(weight=rng.normal(0.5, 0.5, (40, 10))), delay=0)
    net.connect("h", "h", ir.Dense(weight=rng.normal(0.0, 0.35, (40, 40))), delay=1)
    net.connect("h", "o", ir.Dense(weight=rng.normal(0.15, 0.2, (5, 40))), delay=0)
    net.output("o", name="out")
    return net


def _hand_count(a: np.ndarray, b: np.ndarray) -> dict:
    """The three figures by explicit loops over (step, neuron)."""
    equal = floats = kept = spurious = total = 0
    for t in range(a.shape[0]):
        for n in range(a.shape[1]):
            x, y = a[t, n], b[t, n]
            total += 1
            equal += int(x == y)
            floats += int(x != 0)
            kept += int(x != 0 and y != 0)
            spurious += int(y != 0 and x == 0)
    return {"entries_agree": equal / total, "float_spikes": floats,
            "float_spikes_kept": kept / floats, "spurious_spikes": spurious}


def test_spike_figures_on_a_hand_example():
    ref = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 1]])
    got = np.array([[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 1]])
    f = spike_figures(ref, got)
    # 12 entries, 9 equal; 5 float spikes, 3 kept; 1 spurious (step 0, neuron 2)
    assert f["entries_agree"] == 9 / 12
    assert f["float_spikes"] == 5 and f["kept_spikes"] == 3
    assert f["float_spikes_kept"] == 3 / 5
    assert f["spurious_spikes"] == 1 and f["spurious_per_float_spike"] == 1 / 5
    assert f["first_difference"] == 0
    silent = spike_figures(np.zeros((4, 2)), np.zeros((4, 2)))
    assert silent["float_spikes_kept"] is None and silent["entries_agree"] == 1.0


@pytest.fixture(scope="module")
def recurrent():
    net = _recurrent()
    x = (np.random.default_rng(7).random((240, 10)) < 0.2).astype(np.float64)
    cn = nmc_compile(net, "loihi2", seed=0, check_input={"in": x})
    return net, x, cn


def test_recurrent_figures_match_a_hand_count(recurrent):
    net, x, cn = recurrent
    beh = cn.report["passes"]["quantize"]["behaviour"]
    assert beh["steps"] == 240 and beh["input"] == "the user's input"
    assert beh["reference"] == "the network before lowering"
    lags = cn.report["passes"]["lower"]["retiming"]["lags"]
    pad = max(lags.values())
    assert pad == 2  # loihi2: two zero-delay edges retimed
    ref = ir.simulate(net, {"in": x}, 240, probes=("h.spikes", "o.spikes"))
    xq = np.concatenate([x, np.zeros((pad, 10))])
    got = ir.simulate(cn.network, {"in": xq}, 240 + pad, probes=("h.spikes", "o.spikes"))
    for pop in ("h", "o"):
        a = ref.probes[f"{pop}.spikes"][:, 0]
        b = got.probes[f"{pop}.spikes"][lags[pop]:lags[pop] + 240, 0]
        hand = _hand_count(a, b)
        fig = beh["populations"][pop]
        for k, v in hand.items():
            assert fig[k] == pytest.approx(v, abs=1e-12), (pop, k)
        assert fig["lag"] == lags[pop]
    h = beh["populations"]["h"]
    # the point of naming them apart: entry agreement is not the share of spikes kept
    assert abs(h["entries_agree"] - h["float_spikes_kept"]) > 0.01
    assert h["spurious_spikes"] > 0
    # the summary is the output population's
    assert beh["summary_scope"] == "outputs"
    assert beh["summary"]["float_spikes_kept"] == beh["populations"]["o"]["float_spikes_kept"]
    assert "h" in beh["inexact_populations"]


def test_printed_report_names_each_figure_and_shows_inexact_populations(recurrent):
    _, _, cn = recurrent
    buf = io.StringIO()
    render_compile_report(cn.report, Console(file=buf, width=200))
    text = buf.getvalue()
    for words in ("float spikes kept (outputs)", "entries that agree (outputs)",
                  "spurious spikes added (outputs)", "240 steps of the user's input",
                  "the network before lowering"):
        assert words in text
    assert "spike agreement" not in text
    row = next(line for line in text.splitlines() if line.startswith("│ h "))
    assert "first difference" in row
    kept = cn.report["passes"]["quantize"]["behaviour"]["populations"]["h"]
    assert f"{100 * kept['float_spikes_kept']:.1f}%" in row


def test_default_check_is_200_random_steps_and_includes_retiming():
    """An exact (integer) network: the quantised network equals the original read at its
    lag; without the lag alignment the spikes would not line up."""
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
    beh = nmc_compile(net, "loihi2").report["passes"]["quantize"]["behaviour"]
    assert beh["steps"] == 200 and beh["input"].startswith("seeded Bernoulli")
    assert beh["populations"]["o"]["lag"] == 2
    assert beh["summary"]["float_spikes"] > 0
    assert beh["summary"]["entries_agree"] == 1.0
    assert beh["summary"]["float_spikes_kept"] == 1.0
    assert beh["summary"]["spurious_spikes"] == 0
    assert beh["inexact_populations"] == []


def test_bounded_size_skip_is_kept():
    net = _recurrent()
    cn = nmc_compile(net, "loihi2", quantize_options={"check_max_neurons": 10})
    beh = cn.report["passes"]["quantize"]["behaviour"]
    assert "too large" in beh["skipped"]
    buf = io.StringIO()
    render_compile_report(cn.report, Console(file=buf, width=200))
    assert "behaviour check" in buf.getvalue() and "skipped" in buf.getvalue()


def test_batched_check_input_and_an_old_report(recurrent):
    net, x, cn = recurrent
    xb = np.stack([x[:60], x[60:120]], axis=1)  # (T, B, n)
    beh = nmc_compile(net, "loihi2", check_input={"in": xb}).report["passes"]["quantize"][
        "behaviour"]
    assert beh["steps"] == 60 and beh["batch"] == 2
    ref = ir.simulate(net, {"in": xb}, 60).outputs["out"]
    assert beh["summary"]["float_spikes"] == int(np.count_nonzero(ref))
    old = {**cn.report, "passes": {**cn.report["passes"], "quantize": {
        **cn.report["passes"]["quantize"], "behaviour": {"steps": 32, "spike_agreement": 0.74}}}}
    buf = io.StringIO()
    render_compile_report(old, Console(file=buf, width=200))
    assert "entries that agree (old report)" in buf.getvalue()
    assert "float spikes kept (" not in buf.getvalue()
