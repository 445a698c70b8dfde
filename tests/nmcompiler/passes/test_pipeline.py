"""Tests of the pass pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir.errors import DelayError, UsageError
from nmcompiler.passes.pipeline import Pass, default_passes, run_passes


def _net():
    net = ir.Network("p")
    net.input("in", 4)
    net.population("a", 4, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "a", ir.Dense(weight=np.eye(4) * 1.5), delay=0)
    net.output("a")
    return net


def test_default_pipeline_runs_and_collects_reports(loihi):
    res = run_passes(_net(), loihi, default_passes(), seed=3)
    assert [n for n, _ in res.reports] == ["lower", "quantize"]
    assert res.report("lower")["output_shift"] == {"a": 1}
    assert "quantization" in res.network.metadata
    ir.verify(res.network, min_delay=1)
    assert set(res.as_dict()) == {"lower", "quantize"}


def test_verify_runs_after_each_pass(loihi):
    def bad(net, target, *, seed):
        return net, {}  # leaves a zero delay although it claims to enforce the minimum

    with pytest.raises(DelayError) as ei:
        run_passes(_net(), loihi, [Pass(name="bad", fn=bad, enforces_min_delay=True)])
    assert "in->a" in str(ei.value)


def test_a_pass_must_return_network_and_report(loihi):
    with pytest.raises(UsageError) as ei:
        run_passes(_net(), loihi, [Pass(name="odd", fn=lambda n, t, seed: n)])
    assert "'odd'" in str(ei.value) and ei.value.hint


def test_pass_options_and_purity(loihi):
    net = _net()
    p = Pass(name="lower", fn=default_passes()[0].fn).with_options(retiming=True)
    out, rep = p(net, loihi, seed=0)
    assert net.projections["in->a"].delay == 0 and out.projections["in->a"].delay == 1
    assert rep["retiming"]["lags"] == {"a": 1}


def test_fan_in_relays_survive_quantization():
    from pass_helpers import variant

    tgt = variant("loihi2", core_budget={"input_axons": 8})
    rng = np.random.default_rng(0)
    net = ir.Network("wide")
    net.input("in", 20)
    net.population("h", 3, ir.LIF(lam=0.9, theta=3.0))
    net.connect("in", "h", ir.Dense(weight=rng.integers(-3, 4, (3, 20)) * 0.5), delay=1)
    net.output("h")
    res = run_passes(net, tgt, default_passes())
    assert res.report("quantize")["behaviour"]["spike_agreement"] == 1.0
    assert res.report("lower")["retiming"]["inexact_populations"] == []
