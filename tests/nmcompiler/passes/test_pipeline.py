"""Tests of the pass pipeline: the Pass contract, CompileState, run_pipeline."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from nmcompiler import ir
from nmcompiler.ir.errors import DelayError, UsageError
from nmcompiler.passes.base import CompileState, Pass, PassResult
from nmcompiler.passes.lower import LowerPass
from nmcompiler.passes.pipeline import DEFAULT_PASS_NAMES, default_pipeline, run_pipeline
from nmcompiler.passes.quantize import QuantizePass


def _net():
    net = ir.Network("p")
    net.input("in", 4)
    net.population("a", 4, ir.LIF(lam=0.9, theta=1.0))
    net.connect("in", "a", ir.Dense(weight=np.eye(4) * 1.5), delay=0)
    net.output("a")
    return net


def _state(target, net=None, seed=0):
    return CompileState(network=net if net is not None else _net(), target=target, seed=seed)


def test_default_pipeline_runs_and_collects_reports(loihi):
    calls = []
    res = run_pipeline((LowerPass(), QuantizePass()), _state(loihi, seed=3),
                       before=lambda p, k, n: calls.append((p.name, k, n)),
                       after=lambda p, k, n, r, s: calls.append((p.name, "done", s >= 0)))
    assert [n for n, _ in res.state.reports] == ["lower", "quantize"]
    assert res.report("lower")["output_shift"] == {"a": 1}
    assert "quantization" in res.network.metadata
    ir.verify(res.network, min_delay=1)
    assert calls == [("lower", 0, 2), ("lower", "done", True), ("quantize", 1, 2),
                     ("quantize", "done", True)]
    assert set(res.seconds) == {"lower", "quantize"}  # timings apart from the reports
    assert res.state.facts == {"lowered", "min_delay", "quantized"}


def test_the_five_passes_map_the_network(loihi):
    passes = default_pipeline()
    assert tuple(p.name for p in passes) == DEFAULT_PASS_NAMES
    st = run_pipeline(passes, _state(loihi)).state
    assert st.partition is not None and st.placement is not None and st.routes is not None
    assert st.link_load is None  # used by route, not kept
    for name in ("partition", "place", "route"):
        assert not any(k.endswith("_s") for k in st.report(name).get("stats", {}))


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Bad(Pass):
    name: ClassVar[str] = "bad"
    ensures: ClassVar[frozenset[str]] = frozenset({"min_delay"})

    def run(self, state):
        return PassResult(state=state, report={})  # a zero delay stays although it claims
        # to ensure the minimum delay


def test_verify_runs_after_each_pass(loihi):
    with pytest.raises(DelayError) as ei:
        run_pipeline([_Bad()], _state(loihi))
    assert "in->a" in str(ei.value)


def test_requires_are_checked(loihi):
    with pytest.raises(UsageError) as ei:
        run_pipeline([QuantizePass()], _state(loihi))
    assert "'quantize'" in str(ei.value) and "lowered" in str(ei.value) and ei.value.hint


def test_a_pass_must_return_a_pass_result(loihi):
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Odd(Pass):
        name: ClassVar[str] = "odd"

        def run(self, state):
            return state.network

    with pytest.raises(UsageError) as ei:
        run_pipeline([Odd()], _state(loihi))
    assert "'odd'" in str(ei.value) and ei.value.hint
    with pytest.raises(UsageError):
        run_pipeline(["lower"], _state(loihi))  # type: ignore[list-item]


def test_pass_options_and_purity(loihi):
    net = _net()
    p = LowerPass(retiming=False).with_options(retiming=True)
    assert p.options()["retiming"] is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.retiming = False  # type: ignore[misc]
    res = p.run(_state(loihi, net))
    out, rep = res.state.network, res.report
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
    res = run_pipeline((LowerPass(), QuantizePass()), _state(tgt, net))
    assert res.report("quantize")["behaviour"]["summary"]["entries_agree"] == 1.0
    assert res.report("lower")["retiming"]["inexact_populations"] == []
