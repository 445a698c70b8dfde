"""The *quantize* pass: put a network into the target's integer number formats.

The result is the same network in **integer state units** (weights, thresholds, biases,
reset voltages are integers stored in the IR's float arrays; decays are exact fractions
``k / 2**decay_bits``), plus ``network.metadata["quantization"]`` with what a backend or
the emulator needs to reproduce the target's integer arithmetic, and a report of the error
this caused (docs/architecture.md#fidelity). docs/passes.md gives the formulas.

Scales. Multiplying a neuron's voltage, current, threshold, bias, reset voltage and all
its incoming weights by one factor ``K`` leaves its spikes unchanged, so each population
gets its own **voltage scale** ``K`` (state units per float unit), shared by its threshold,
bias and every projection into it. Each projection additionally has a **shared weight
exponent** ``e`` (Loihi's ``weight_exp``: one per synapse group, so weights into one neuron
may use different exponents): a weight becomes ``m * 2**(s0 + e)`` state units with an
integer mantissa ``m`` of the target's width (``s0`` = ``weight_exponent_offset``, 6 on
Loihi where the activation enters u shifted by 6). ``e`` is the smallest exponent whose
grid holds the projection's largest weight (finest grid, no clipping). ``K`` is chosen
among the largest scale every format allows (thresholds, biases, weights with the largest
exponent, state range: the rule of sinabs' ``discretize_conv_spike``) and the powers of
two below it, minimising the summed squared relative errors of weights (RMS per
projection), threshold and bias; ties go to a power of two, so values that are
representable round-trip exactly (:func:`dequantize`).

Formats (``target.formats``; the rules of ``target.family``):

* **Loihi** (Lava ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``, see
  nmcompiler/targets/families/loihi.py): mantissas by sign mode (mixed: even values in
  [-256, 254]; excitatory [0, 255]; inhibitory [-255, 0]); state units are Lava's v units
  (``w = m << (6 + weight_exp)``, ``theta = vth << 6``, ``bias = bias_mant << bias_exp``),
  ``alpha_u = (4095 - du) / 4096``, ``lam = (4096 - dv) / 4096``; hard reset to 0 only.
* **fixed point** (SpiNNaker s16.15 and generic targets): signed ``weight_bits`` mantissas,
  threshold ``mantissa << threshold_shift``, bias ``mantissa << exponent``, decays on a
  ``2**-decay_bits`` grid; state units are the raw fixed-point LSB, so a value ``x`` in
  state units reads ``x / 2**state_fraction_bits`` in the chip's s16.15.
* **Speck** uses the fixed-point rules with its 8-bit weights, 16-bit state and integer
  thresholds, and no leak (``decay_bits = 0``: ``lam`` must be 1).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, Mapping

import numpy as np

from nmcompiler.ir.connectivity import (
    AvgPool2d,
    SumPool2d,
)
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import Reset, model_fields
from nmcompiler.ir.network import Network, Population, Projection

from ...quantization import METADATA_KEY, PopulationQuant, ProjectionQuant, QuantizationInfo
from ...targets import Target
from ..base import CompileState, Pass, PassResult, strip_timings
from .check import behaviour_check, overflow_report
from .formats import STAT_SAMPLE, make_format, mantissa_range
from .inverse import dequantize, loihi_weight_mantissas
from .neurons import as_array, as_ints, check_model, quantize_decays
from .threshold import (
    chip_compare,
    choose_scale,
    comparison_error,
    comparison_report,
    grid_of,
    q_bias,
    q_theta,
)
from .weights import Extremes, pool_as_conv, quant_weights, weights_of, with_weight

__all__ = ["quantize", "QuantizePass", "dequantize", "loihi_weight_mantissas"]


# =========================================================================== the pass
def quantize(
    net: Network,
    target: Target,
    *,
    seed: int = 0,
    negative_weight_exp: bool = False,
    check_capabilities: bool = True,
    check_steps: int = 200,
    check_rate: float = 0.2,
    check_max_neurons: int = 20_000,
    check_max_synapses: int = 2_000_000,
    check_input: Mapping[str, np.ndarray] | None = None,
    reference: Network | None = None,
    lower_report: Mapping[str, Any] | None = None,
) -> tuple[Network, dict]:
    """Quantise ``net`` to ``target``'s number formats; returns ``(network, report)``.

    Args:
        net: the (lowered) network; not modified.
        target: a :class:`nmcompiler.targets.Target`.
        seed: seeds the weight sample used to compare scales on huge projections and the
            random input of the behavioural check.
        negative_weight_exp: allow negative Loihi weight exponents (finer weights, but the
            chip floors the *summed* activation, which the IR cannot represent exactly).
        check_capabilities: refuse (:class:`FitError`) neuron features the target lacks.
        check_steps: steps of the behavioural check (0 disables it).
        check_rate: spike probability per input channel and step in the check.
        check_max_neurons, check_max_synapses: the check runs only below these sizes.
        check_input: the user's input for the check (``(T, n)`` or ``(T, B, n)`` per
            input name) in place of the random one; its T replaces ``check_steps``.
        reference: the float network before lowering (the check's reference, so that its
            figures include the lowering's error); default ``net``.
        lower_report: the lower pass's report (the retiming lags that align the two).

    Report: ``populations`` (scale, what bounded it, threshold / bias / decay errors),
    ``projections`` (weight exponent, unit, sign mode, relative RMS / max errors,
    clipped synapses), ``summary`` (worst errors), ``overflow`` (worst-case input per
    step against the state range) and ``behaviour`` (entries that agree, float spikes
    kept and spurious spikes per population, float reference vs quantised network;
    docs/passes.md#fidelity).
    """
    fmt = make_format(target, negative_weight_exp)
    tname = target.name
    rng = np.random.default_rng(seed)
    pops: dict[str, Population] = {}
    projs: dict[str, Projection] = dict(net.projections)
    meta_pops: dict[str, Any] = {}
    meta_projs: dict[str, Any] = {}
    rep_pops: dict[str, Any] = {}
    rep_projs: dict[str, Any] = {}
    incoming: dict[str, list[Projection]] = {n: [] for n in net.populations}
    for p in net.projections.values():
        incoming[p.post].append(p)
    pools = []
    modes: dict[str, str] = {}
    stat_rng = np.random.default_rng([seed, 1])
    for name, p in net.projections.items():
        if isinstance(p.conn, (SumPool2d, AvgPool2d)):
            projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                     conn=pool_as_conv(net, p), delay=p.delay)
            pools.append(name)
    for pname, pop in net.populations.items():
        if check_capabilities:
            check_model(pop, fmt, target)
        model = pop.model
        n = pop.size
        theta = as_array(model.theta, n).astype(np.float64) if model.spiking else None
        bias = as_array(model.bias, n).astype(np.float64)
        vreset = as_array(model.v_reset, n).astype(np.float64)
        if fmt.b_mant_max == 0 and np.any(bias != 0):
            raise FitError(
                f"population '{pname}' has a bias; {tname} has no bias", obj=pname,
                rule="bias", need="bias", limit="none", hint="remove the bias")
        inc = []
        extremes: dict[str, Extremes] = {}
        for p in incoming[pname]:
            w = weights_of(net, projs[p.name]) if p.name in pools else weights_of(net, p)
            *rng3, modes[p.name] = mantissa_range(fmt, w, p.name, tname)
            inc.append((p.name, w, tuple(rng3)))
            extremes[p.name] = Extremes(w)
        new_fields, ints, derr = quantize_decays(pop, fmt, tname, target.capabilities)
        own = model_fields(model)
        # the spike test: the chip's comparison where the model asks for the other one
        model_ge = bool(model.fire_at_threshold)
        differs = (theta is not None and fmt.compare is not None
                   and (fmt.compare == ">=") != model_ge)
        movable = model.reset is not Reset.SOFT and not model.graded
        q_alpha = np.asarray(new_fields.get("alpha_u", model.alpha_u))
        q_lam = np.asarray(new_fields.get("lam", model.lam))
        on_grid = bool(np.all(q_alpha == 0) and np.all(q_lam == 1))
        grid_at = functools.partial(grid_of, on_grid=on_grid, bias=bias, vreset=vreset,
                                    reset=model.reset, fmt=fmt)
        cmp_err = functools.partial(comparison_error, grid_at=grid_at, fmt=fmt, movable=movable)
        k, how = choose_scale(theta, bias, vreset, inc, fmt, rng,
                               cmp_err if differs else None, extremes=extremes)
        prep: dict[str, Any] = {"scale": k, **how, "decay_error": derr}
        # projections into this population, on its scale
        wqs = []
        for (name, w, rng3) in inc:
            p = projs[name]
            ext = extremes[name]
            _, e, q = quant_weights(w, k, fmt, rng3, ext.amax, mantissas=False)
            wqs.append(q)
            mode = modes[name]
            projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                     conn=with_weight(p.conn, q), delay=p.delay)
            unit = 2.0 ** (fmt.s0 + e)
            ws, wq = w, q
            if w.size > STAT_SAMPLE:  # error statistics on a seeded sample + the largest
                idx = np.append(stat_rng.choice(w.size, STAT_SAMPLE, replace=False),
                                ext.iabs)
                ws, wq = w[idx], q[idx]
            nrm = float(np.sqrt(np.sum(ws * ws)))
            diff = wq / k - ws
            amax = ext.amax
            # rounding moves a mantissa by at most step / 2: only clipping moves it by more
            lo3, hi3, step3 = rng3
            clipped = 0
            if w.size and (k * ext.wmax / unit > hi3 + step3
                           or k * ext.wmin / unit < lo3 - step3):
                clipped = int(np.count_nonzero(np.abs(k * w / unit - q / unit) > step3))
            rep_projs[name] = {
                "post": pname, "weight_exp": int(e), "unit": unit,
                "sign_mode": mode, "scale": k,
                "rel_rms_error": float(np.sqrt(np.sum(diff * diff)) / nrm) if nrm else 0.0,
                "max_rel_error": float(np.max(np.abs(diff)) / amax) if amax else 0.0,
                "error_sample": int(ws.size),
                "clipped": clipped,
                "converted_from_pool": name in pools,
            }
            meta_projs[name] = {"post": pname, "scale": k, "weight_exp": int(e),
                                "weight_shift": int(fmt.s0 + e), "sign_mode": mode,
                                "num_weight_bits": fmt.wbits}
        model_cmp = None
        if theta is not None:
            tq = q_theta(theta, k, fmt)
            tc, err = tq, np.zeros(n, dtype=np.int64)
            if differs:
                grid = grid_at(k, tq, wqs)
                tc, err = chip_compare(tq, fmt, grid, movable)
                tc = tc.astype(np.float64)
                prep["comparison"] = comparison_report(
                    model_ge, fmt.compare, tq, tc, err, k, grid, movable, model.reset,
                    1 << fmt.th_shift)
                model_cmp = {"fire_at_threshold": model_ge, "theta": as_ints(tq)}
            else:
                prep["comparison"] = {
                    "model": ">=" if model_ge else ">", "chip": fmt.compare or "model's",
                    "action": "none (the chip compares as the model does)", "exact": True,
                    "error_lsb": 0}
            new_fields["theta"] = tc if np.ndim(own["theta"]) else float(tc[0])
            if fmt.compare is not None and "fire_at_threshold" in own:
                new_fields["fire_at_threshold"] = fmt.compare == ">="
            # the threshold the chip realises, in the model's comparison: tq + err
            prep["threshold_rel_error"] = float(np.max(np.abs((tq + err) / k - theta) / theta))
            ints["theta_mant"] = as_ints(tc / 2.0**fmt.th_shift)
        bq, bm, be = q_bias(bias, k, fmt)
        if "bias" in own:
            new_fields["bias"] = bq if np.ndim(own["bias"]) else float(bq[0])
        ints["bias_mant"], ints["bias_exp"] = as_ints(bm), as_ints(be)
        prep["bias_max_error"] = float(np.max(np.abs(bq / k - bias))) if n else 0.0
        if "v_reset" in own:
            rq = np.clip(np.rint(k * vreset), -fmt.vmax, fmt.vmax)
            new_fields["v_reset"] = rq if np.ndim(own["v_reset"]) else float(rq[0])
            prep["v_reset_max_error"] = float(np.max(np.abs(rq / k - vreset)))
        if model.spiking and model.noise:  # threshold noise is in voltage units too
            new_fields["noise"] = float(model.noise * k)
        if model.spiking and model.graded and target.capabilities.graded_spikes:
            # payloads above what the chip carries are clamped (sinabs' MultiSpike says
            # 2**31 - 1 but never sends that much); the report says so
            top = 2 ** int(target.capabilities.graded_spike_bits) - 1
            if int(model.graded_max) > top:
                new_fields["graded_max"] = top
                prep["graded_max_clamped"] = {"from": int(model.graded_max), "to": top}
        pops[pname] = Population(name=pname, shape=pop.shape,
                                 model=dataclasses.replace(model, **new_fields))
        ints = fmt.rules.parameter_entries(ints)
        meta_pops[pname] = {"scale": k, **ints}
        if model_cmp is not None:
            meta_pops[pname]["model_comparison"] = model_cmp
        rep_pops[pname] = prep
    info = QuantizationInfo(
        version=1,
        target=tname,
        family=fmt.family,
        units="integer state units: x_float = x / scale of the population (weights: "
              "of the post population); weight = mantissa * 2**weight_shift",
        state_fraction_bits=fmt.frac_bits,
        threshold_shift=fmt.th_shift,
        comparison=fmt.compare or "model",
        populations={k: PopulationQuant.from_entries(v) for k, v in meta_pops.items()},
        projections={k: ProjectionQuant.from_entries(v) for k, v in meta_projs.items()},
    )
    metadata = dict(net.metadata)
    metadata[METADATA_KEY] = info.to_metadata()
    qnet = net.replace(populations=pops, projections=projs, metadata=metadata)
    report: dict[str, Any] = {
        "target": tname, "family": fmt.family, "populations": rep_pops,
        "projections": rep_projs,
        "summary": {
            "max_weight_rel_rms_error": max(
                [v["rel_rms_error"] for v in rep_projs.values()], default=0.0),
            "max_weight_rel_error": max(
                [v["max_rel_error"] for v in rep_projs.values()], default=0.0),
            "max_threshold_rel_error": max(
                [v.get("threshold_rel_error", 0.0) for v in rep_pops.values()], default=0.0),
            "max_bias_error": max(
                [v["bias_max_error"] for v in rep_pops.values()], default=0.0),
            "clipped_synapses": sum(v["clipped"] for v in rep_projs.values()),
            "inexact_threshold_comparisons": [
                name for name, v in rep_pops.items()
                if not v.get("comparison", {}).get("exact", True)],
        },
        "pools_as_depthwise_conv": pools,
        "overflow": overflow_report(qnet, fmt),
    }
    report["behaviour"] = behaviour_check(
        net, qnet, meta_pops, seed, check_steps, check_rate, check_max_neurons,
        check_max_synapses, reference=reference,
        lower_report=dict(lower_report) if lower_report is not None else None,
        inputs=dict(check_input) if check_input is not None else None)
    return qnet, report


# =========================================================================== the pass class
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuantizePass(Pass):
    """:func:`quantize` as a pipeline pass; the fields are its options."""

    name: ClassVar[str] = "quantize"
    requires: ClassVar[frozenset[str]] = frozenset({"lowered"})
    ensures: ClassVar[frozenset[str]] = frozenset({"quantized"})
    negative_weight_exp: bool = False
    check_capabilities: bool = True
    check_steps: int = 200
    check_rate: float = 0.2
    check_max_neurons: int = 20_000
    check_max_synapses: int = 2_000_000
    check_input: Mapping[str, np.ndarray] | None = None

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        lower = dict(state.reports).get("lower")
        net, rep = quantize(state.network, state.target, seed=state.seed,
                            reference=state.source, lower_report=lower, **self.options())
        report, timings = strip_timings(rep)
        return PassResult(state=state.replace(network=net), report=report, timings=timings)
