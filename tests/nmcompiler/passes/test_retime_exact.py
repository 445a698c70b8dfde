"""Retiming is exact (docs/passes.md#retiming): the lowered float network is the original
float network, spike for spike, read ``output_shift`` steps later; what cannot be made
exact is named in the report and in the printed compile report."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from nmcompiler import compile as nmc_compile
from nmcompiler import hw_configs, ir
from nmcompiler.passes.lower import lower, retime
from nmcompiler.report import render_compile_report
from nmcompiler.targets import load_target

Reset = ir.models.Reset


def _random_net(seed: int) -> ir.Network:
    """Biases (both signs), leaks, current stages, recurrence, zero-delay feed-forward
    edges (which force lags), IF and LI populations."""
    rng = np.random.default_rng(seed)
    net = ir.Network(f"retime{seed}")
    net.input("in", 6)
    names: list[str] = []
    for i in range(int(rng.integers(3, 6))):
        n = int(rng.integers(3, 9))
        bias = rng.normal(0.05, 0.1, n)
        kind = int(rng.integers(0, 5))
        reset = [Reset.SOFT, Reset.HARD, Reset.NONE][int(rng.integers(0, 3))]
        lam = float(rng.uniform(0.7, 0.99))
        if kind == 0:
            m = ir.LIF(lam=lam, theta=1.0, bias=bias, reset=reset)
        elif kind == 1:
            m = ir.LIF(alpha_u=rng.uniform(0.3, 0.9, n), lam=lam, theta=1.0, bias=bias,
                       refractory=int(rng.integers(0, 3)))
        elif kind == 2:
            m = ir.IF(theta=1.0, bias=bias, reset=reset)
        elif kind == 3:
            m = ir.LIF(lam=lam, theta=0.5, bias=bias, graded=True, graded_max=3,
                       reset=Reset.SOFT)
        else:
            m = ir.LI(alpha_u=0.5, lam=lam, bias=bias)
        name = f"p{i}"
        net.population(name, n, m)
        spiking = [x for x in names if net.populations[x].model.spiking]
        pre = "in" if not spiking else spiking[int(rng.integers(0, len(spiking)))]
        net.connect(pre, name, ir.Dense(weight=rng.normal(0.4, 0.5, (n, net.size_of(pre)))),
                    delay=0 if i == 0 else int(rng.integers(0, 2)), name=f"{pre}->{name}")
        if spiking and rng.random() < 0.5:
            net.connect("in", name, ir.Dense(weight=rng.normal(0.3, 0.4, (n, 6))), delay=0,
                        name=f"in->{name}")
        if m.spiking and rng.random() < 0.6:
            net.connect(name, name, ir.Dense(weight=rng.normal(0, 0.3, (n, n))),
                        delay=int(rng.integers(1, 3)), name=f"{name}->{name}")
        names.append(name)
    for nm in names:
        net.output(nm, name=f"{nm}.out")
    return net


def _mismatches(net: ir.Network, low: ir.Network, shift: dict[str, int], steps: int,
                seed: int) -> tuple[int, int]:
    rng = np.random.default_rng([seed, 7])
    n_in = net.inputs["in"].size
    x = (rng.random((steps, n_in)) < 0.3).astype(np.float64)
    pad = max(shift.values())
    a = ir.simulate(net, {"in": x}).outputs
    b = ir.simulate(low, {"in": np.vstack([x, np.zeros((pad, n_in))])}).outputs
    bad, spikes = 0, 0
    for k, out in net.outputs.items():
        got = b[k][shift[k]:shift[k] + steps]
        if net.populations[out.source].model.spiking:  # spikes: exactly
            bad += int(np.sum(a[k] != got))
            spikes += int(np.count_nonzero(a[k]))
        else:  # an LI readout's voltage: up to the rounding of a reordered sum
            bad += int(np.sum(~np.isclose(got, a[k], rtol=1e-12, atol=1e-12)))
    return bad, spikes


@pytest.mark.parametrize("seed", range(24))
def test_lowered_float_network_is_the_original(seed, loihi2):
    net = _random_net(seed)
    low, rep = lower(net, loihi2)
    assert rep["retiming"]["inexact_populations"] == []
    assert max(rep["output_shift"].values()) > 0  # the zero-delay edges forced lags
    bad, spikes = _mismatches(net, low, rep["output_shift"], 300, seed)
    assert spikes > 0
    assert bad == 0


def test_lagged_bias_moves_to_a_bias_source(loihi2):
    net = ir.Network("bias")
    net.input("in", 2)
    net.population("a", 2, ir.LIF(alpha_u=0.5, lam=0.9, theta=1.0, bias=0.3))
    net.population("b", 2, ir.LIF(lam=0.9, theta=1.0, bias=np.array([0.2, 0.0])))
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=0)
    net.connect("a", "b", ir.OneToOne(weight=1.0), delay=0)
    net.output("b")
    low, rep = lower(net, loihi2)
    r = rep["retiming"]
    assert r["lags"] == {"a": 1, "b": 2}
    assert r["bias_sources"] == {"a": "bias_source", "b": "bias_source"}
    assert float(np.max(np.abs(low.populations["a"].model.bias))) == 0.0
    src = low.populations["bias_source"]
    assert src.size == 1 and src.model.fire_at_threshold
    # the bias starts at the lag; the current's memory is cancelled one step later
    assert low.projections["bias_source->a.bias"].delay == 1
    assert low.projections["bias_source->a.bias_decay"].delay == 2
    np.testing.assert_array_equal(low.projections["bias_source->a.bias_decay"].conn.weight,
                                  [[-0.15], [-0.15]])
    assert "bias_source->b.bias_decay" not in low.projections  # no current stage
    bad, spikes = _mismatches(net, low, rep["output_shift"], 100, 0)
    assert spikes > 0 and bad == 0


def test_existing_bias_source_is_reused(loihi2):
    net = ir.Network("reuse")
    net.input("in", 2)
    net.population("src", 1, ir.IF(theta=1.0, bias=1.0, fire_at_threshold=True))
    net.population("a", 2, ir.LIF(lam=0.9, theta=1.0, bias=0.2))
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=0)
    net.output("a")
    low, rep = lower(net, loihi2)
    assert rep["retiming"]["bias_sources"] == {"a": "src"}
    assert set(low.populations) == {"src", "a"}


def test_networks_without_lagged_bias_are_unchanged(loihi2):
    net = ir.Network("plain")
    net.input("in", 2)
    net.population("a", 2, ir.LIF(lam=0.9, theta=1.0))
    net.population("b", 2, ir.LIF(lam=0.9, theta=1.0, bias=0.1))
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=0)
    net.connect("in", "b", ir.OneToOne(weight=1.0), delay=1)  # lag 0: bias stays
    low, rep = lower(net, loihi2)
    assert "bias_sources" not in rep["retiming"]
    assert low.populations["b"] is net.populations["b"]
    assert set(low.populations) == {"a", "b"}


def _inexact_net(model: ir.models.NeuronModel) -> ir.Network:
    net = ir.Network("inexact")
    net.input("in", 2)
    net.population("a", 2, model)
    net.connect("in", "a", ir.OneToOne(weight=1.0), delay=0)
    net.output("a")
    return net


def test_noise_cannot_start_late_and_is_named(tmp_path):
    """A noisy population's random draws cannot start late: named in the report and in
    the printed compile report (an emulator target with a minimum delay of 1)."""
    text = hw_configs.path("emulator").read_text()
    line = next(x for x in text.splitlines() if x.startswith("min_delay"))
    path = tmp_path / "slow_emulator.toml"
    path.write_text(text.replace(
        line, 'min_delay = { value = 1, status = "synthetic", note = "test" }'))
    tgt = load_target(path)
    assert tgt.core.min_delay == 1
    net = _inexact_net(ir.LIF(lam=0.9, theta=1.0, noise=0.1, seed=3))
    _, rep = lower(net, tgt)
    r = rep["retiming"]
    assert r["inexact_populations"] == ["a"]
    assert r["inexact_reasons"]["a"].startswith("noise")
    cn = nmc_compile(net, path)
    buf = io.StringIO()
    render_compile_report(cn.report, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "retiming inexact" in text and "a: noise" in text


def test_lag_below_min_delay_is_named():
    net = _inexact_net(ir.LIF(lam=0.9, theta=1.0, bias=0.2))
    net.population("b", 2, ir.LIF(lam=0.9, theta=1.0, bias=0.2))
    net.connect("a", "b", ir.OneToOne(weight=1.0), delay=1)
    _, rep = retime(net, 2)  # lags 2 (a) and 3 (b): both biases start on time
    assert rep["lags"] == {"a": 2, "b": 3}
    assert rep["inexact_populations"] == [] and set(rep["bias_sources"]) == {"a", "b"}
    slow = ir.Network("slow")
    slow.input("in", 2)
    slow.population("a", 2, ir.LIF(lam=0.9, theta=1.0, bias=0.2))
    slow.connect("in", "a", ir.OneToOne(weight=1.0), delay=1)
    _, rep2 = retime(slow, 2)  # lag 1 < 2: a bias source cannot reach 'a' at step 1
    assert rep2["lags"] == {"a": 1}
    assert rep2["inexact_populations"] == ["a"]
    assert "below the minimum delay 2" in rep2["inexact_reasons"]["a"]
