"""Every neuron feature on every bundled target: compiled and run by the emulator in the
target's arithmetic, spike for spike against the quantised reference simulation, or
refused at compile with a named error (docs/passes.md#resonate-and-fire,
docs/emulator.md). No feature may run differently without saying so.

The quantised reference is ``ir.simulate`` on the compiled network (the chip's integer
units and spike test, as quantize's behaviour check runs it). The dequantised network
(:func:`nmcompiler.passes.quantize.dequantize`, the model's own spike test) must give the
same spikes too, except for populations the quantize report lists under
``inexact_threshold_comparisons``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler import compile as nmc_compile
from nmcompiler import ir
from nmcompiler.backends.emulator import EmulatorBackend
from nmcompiler.ir.errors import FitError
from nmcompiler.passes.quantize import dequantize

Reset = ir.Reset
TARGETS = ("loihi", "loihi2", "spinnaker", "spinnaker2", "speck2f", "emulator")

#: feature -> (model, delay of the input projection; 0 makes retiming lag the population
#: on targets with a minimum delay, so its bias comes from a bias source)
FEATURES: dict[str, tuple[ir.models.NeuronModel, int]] = {
    "plain": (ir.IF(theta=1.0), 1),
    "bias": (ir.IF(theta=1.0, bias=0.25), 1),
    "bias_retimed": (ir.LIF(theta=1.0, lam=0.875, bias=0.25), 0),
    "bias_current_retimed": (ir.LIF(theta=1.0, lam=0.875, alpha_u=0.5, bias=0.25), 0),
    "leak": (ir.LIF(theta=1.0, lam=0.875), 1),
    "current_decay": (ir.LIF(theta=1.0, alpha_u=0.5), 1),
    "refractory": (ir.IF(theta=1.0, refractory=2), 1),
    "graded": (ir.IF(theta=1.0, graded=True, graded_max=3, reset=Reset.SOFT), 1),
    "reset_soft": (ir.IF(theta=1.0, reset=Reset.SOFT), 1),
    "reset_hard": (ir.IF(theta=1.0, reset=Reset.HARD), 1),
    "reset_none": (ir.IF(theta=1.0, reset=Reset.NONE), 1),
    "rf": (ir.RF(theta=0.5, lam=complex(0.8, 0.4)), 1),
    "noise": (ir.IF(theta=1.0, noise=0.2, seed=1), 1),
}

_HARD_ONLY = {"graded": "reset mode", "reset_soft": "reset mode", "reset_none": "reset mode"}
_NO_RF_NOISE = {"rf": "neuron model", "noise": "stochastic firing"}
#: (target, feature) -> the rule of the FitError compile must raise; everything else runs
REFUSED: dict[str, dict[str, str]] = {
    "loihi": {**_HARD_ONLY, **_NO_RF_NOISE},
    "loihi2": dict(_NO_RF_NOISE),
    "spinnaker": {**_HARD_ONLY, **_NO_RF_NOISE},
    "spinnaker2": {**_HARD_ONLY, **_NO_RF_NOISE},
    "speck2f": {"bias_retimed": "no leak", "bias_current_retimed": "no synaptic current stage",
                "leak": "no leak", "current_decay": "no synaptic current stage",
                "refractory": "refractory period", "reset_none": "reset mode",
                **_NO_RF_NOISE},
    "emulator": {},
}


def _network(feature: str) -> ir.Network:
    model, delay = FEATURES[feature]
    rng = np.random.default_rng(0)
    net = ir.Network(f"feature_{feature}")
    net.input("in", 4)
    net.population("p", 5, model)
    # weights on a 1/8 grid: representable on every target, so what differs is the neuron
    net.connect("in", "p", ir.Dense(weight=np.round(rng.uniform(0, 1, (5, 4)) * 8) / 8),
                delay=delay)
    net.output("p")
    return net


@pytest.mark.parametrize("feature", list(FEATURES))
@pytest.mark.parametrize("target", TARGETS)
def test_feature_runs_as_its_reference_or_is_refused(target, feature):
    net = _network(feature)
    refused = REFUSED[target].get(feature)
    if refused is not None:
        with pytest.raises(FitError) as ei:
            nmc_compile(net, target)
        assert ei.value.rule == refused and "'p'" in str(ei.value)
        return
    cn = nmc_compile(net, target)
    steps = 120
    x = (np.random.default_rng(1).random((steps, 4)) < 0.3).astype(np.float64)
    got = EmulatorBackend().run(cn, {"in": x}, steps).outputs["p"]
    ref = ir.simulate(cn.network, {"in": x}).outputs["p"]
    assert ref.sum() > 0
    np.testing.assert_array_equal(got, ref)
    deq = ir.simulate(dequantize(cn.network), {"in": x}).outputs["p"]
    inexact = cn.report["passes"]["quantize"]["summary"]["inexact_threshold_comparisons"]
    if "p" in inexact:  # reported: the chip's spike test differs from the model's
        assert np.any(deq != got)
    else:
        np.testing.assert_array_equal(got, deq)
    if FEATURES[feature][1] == 0 and target != "emulator" and target != "speck2f":
        assert cn.report["passes"]["lower"]["retiming"]["bias_sources"] == {"p": "bias_source"}


def test_every_refusal_names_a_known_feature_and_the_emulator_runs_all():
    assert set(REFUSED) == set(TARGETS)
    for target, refusals in REFUSED.items():
        assert set(refusals) <= set(FEATURES), target
    assert REFUSED["emulator"] == {}  # the reference target runs every feature
