"""The *lower* pass: make a network's structure something the target can execute.

Four steps, in this order (docs/passes.md gives the formulas and worked examples):

1. **Convolution and pooling expansion.** On a target without convolution hardware every
   :class:`~nmcompiler.ir.Conv2d`, :class:`~nmcompiler.ir.SumPool2d` and
   :class:`~nmcompiler.ir.AvgPool2d` projection becomes an :class:`~nmcompiler.ir.Sparse`
   projection with exactly the same synapses (vectorised index
   arithmetic; synapses of weight 0 and padding positions are not stored). Targets with
   convolution hardware (Speck) keep them, and their geometry is checked against the
   target's ``[convolution]`` limits.
2. **Fan-in split.** A neuron whose inputs come from more presynaptic neurons than a core
   has input axons cannot be placed. Where the target has graded spikes, its inputs are
   cut into chunks of at most ``input_axons`` axons, each summed by a *partial-sum relay*
   (a memoryless graded neuron that sends its partial sum as an integer payload through
   a zero-delay projection): exact in the IR when the weights lie on a grid ``q`` (a
   power of two, found or given) and the payloads fit the target's payload bits.
   Otherwise a :class:`~nmcompiler.ir.errors.FitError` names the population, the need and the limit.
3. **Retiming** (Leiserson & Saxe, "Retiming synchronous circuitry", Algorithmica 6, 1991):
   every projection gets at least the target's minimum delay by giving each population a
   lag ``r(v) >= 0`` (inputs: 0); a projection ``u -> v`` of delay ``d`` gets
   ``d' = d + r(v) - r(u)``. The lags are the solution of the difference constraints
   ``r(v) - r(u) >= d_min - d(e)`` (and, where possible, ``d' <= d_max``), found by
   Bellman-Ford on the constraint graph. Behaviour is preserved up to a shift: population
   ``v`` of the result emits at step ``t + r(v)`` what the original emitted at step ``t``.
   A loop with fewer delay steps than ``d_min`` times its projections has no retiming:
   :class:`~nmcompiler.ir.errors.RetimingError` names it, or ``force=True`` raises its short delays
   and reports how the loop's timing changed.
4. **Long delays.** A delay beyond the target's ``max_delay`` is split over a chain of
   relay neurons (one per presynaptic neuron and hop: an IF neuron with threshold 0.5
   that repeats every binary spike; a memoryless graded neuron for graded sources), each
   hop at most ``max_delay``; per-synapse delays are split into per-delay projections on
   targets without per-synapse delays. ``long_delays="error"`` raises instead.

All steps are pure and vectorised over synapses; the report states every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from nmcompiler.ir.connectivity import (
    AvgPool2d,
    Conv2d,
    SumPool2d,
)
from nmcompiler.ir.errors import RetimingError, UsageError
from nmcompiler.ir.expand import conv_to_sparse, pool_to_sparse
from nmcompiler.ir.network import Network

from ...helpers import HELPERS_KEY, helper_populations, mark_helpers
from ...targets import Target
from ..base import CompileState, Pass, PassResult, strip_timings
from .common import delay_range
from .delays import split_long_delays
from .expand import check_conv_limits, expand_convolutions
from .fan_in import fan_in, split_fan_in
from .retime import retime

__all__ = ["lower", "LowerPass", "expand_convolutions", "conv_to_sparse", "pool_to_sparse",
           "split_fan_in", "retime", "split_long_delays", "fan_in"]


# =========================================================================== the pass
def lower(
    net: Network,
    target: Target,
    *,
    seed: int = 0,
    retiming: bool = True,
    force: bool = False,
    expand: str = "auto",
    keep_zero_weights: bool = False,
    fan_in_split: bool = True,
    relay_quantum: float | None = None,
    input_payload_max: int = 1,
    long_delays: str = "relay",
) -> tuple[Network, dict]:
    """Lower ``net`` for ``target`` (see the module docstring); returns ``(net, report)``.

    Args:
        net: a verified network (not modified).
        target: a :class:`nmcompiler.targets.Target`.
        seed: unused (the pass is deterministic); accepted for the pass signature.
        retiming: retime to the target's minimum delay (else a short delay is an error).
        force: raise the delays of loops that cannot be retimed (reported).
        expand: ``"auto"`` (expand convolutions where the target has no convolution
            hardware), ``"always"`` or ``"never"``.
        keep_zero_weights: keep kernel entries of weight 0 when expanding.
        fan_in_split: split populations whose fan-in exceeds the core's input axons
            (else raise :class:`FitError`).
        relay_quantum: weight grid of partial-sum relays (default: the largest power of
            two that divides every weight).
        input_payload_max: largest value an input carries (partial-sum relay sizing).
        long_delays: ``"relay"`` (chain relay neurons) or ``"error"``.

    Report keys: ``expanded``, ``fan_in``, ``retiming`` (lags, ``outputs`` with each
    output's shift), ``delays``, ``output_shift`` (output name -> steps).
    """
    del seed
    if expand not in ("auto", "always", "never"):
        raise UsageError(f"expand={expand!r}", obj="lower", rule="option",
                         hint="use 'auto', 'always' or 'never'")
    if long_delays not in ("relay", "error"):
        raise UsageError(f"long_delays={long_delays!r}", obj="lower", rule="option",
                         hint="use 'relay' or 'error'")
    caps = target.capabilities
    report: dict[str, Any] = {"target": target.name}
    has_conv = bool(caps.convolution_hardware)
    if expand == "always" or (expand == "auto" and not has_conv):
        net, report["expanded"] = expand_convolutions(net, keep_zeros=keep_zero_weights)
        report["expanded"] = report["expanded"]["expanded"]
    else:
        report["expanded"] = []
        for p in net.projections.values():
            if isinstance(p.conn, (Conv2d, SumPool2d, AvgPool2d)):
                check_conv_limits(net, p, target)
    limit = target.core.input_axons
    if limit is not None:
        bits = int(caps.graded_spike_bits) if caps.graded_spikes and fan_in_split else 0
        net, report["fan_in"] = split_fan_in(
            net, int(limit), target_name=target.name, graded_bits=bits,
            relay_quantum=relay_quantum, input_payload_max=input_payload_max)
    else:
        report["fan_in"] = {"limit": None, "split": []}
    d_min = int(target.core.min_delay)
    d_max = int(target.core.max_delay)
    if retiming:
        net, report["retiming"] = retime(net, d_min, d_max=d_max, force=force,
                                         target_name=target.name)
    else:
        for p in net.projections.values():
            lo = delay_range(p)[0]
            if lo < d_min:
                raise RetimingError(
                    f"projection '{p.name}' has delay {lo}; {target.name} needs >= {d_min}",
                    obj=p.name, rule="min delay", need=d_min, limit=lo,
                    hint="lower with retiming=True",
                )
        report["retiming"] = {"min_delay": d_min, "lags": {}, "outputs": {}}
    if caps.time_stepped:
        net, report["delays"] = split_long_delays(
            net, d_min, d_max, per_synapse_delays=bool(caps.per_synapse_delays),
            mode=long_delays, target_name=target.name)
    else:
        report["delays"] = {"note": f"{target.name} is event-driven (no time steps): "
                                    "delays are not represented on chip"}
    report["output_shift"] = {k: v["shift"] for k, v in report["retiming"]["outputs"].items()}
    marks = {k: v for k, v in helper_populations(net, report, shape_rule=False).items()
             if k not in (net.metadata.get(HELPERS_KEY) or {})}
    if marks:  # the helpers this pass added (docs/passes.md#helper-populations)
        net = net.replace(metadata=mark_helpers(net.metadata, marks))
    return net, report


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class LowerPass(Pass):
    """:func:`lower` as a pipeline pass; the fields are its options."""

    name: ClassVar[str] = "lower"
    ensures: ClassVar[frozenset[str]] = frozenset({"lowered", "min_delay"})
    retiming: bool = True
    force: bool = False
    expand: str = "auto"
    keep_zero_weights: bool = False
    fan_in_split: bool = True
    relay_quantum: float | None = None
    input_payload_max: int = 1
    long_delays: str = "relay"

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        net, rep = lower(state.network, state.target, seed=state.seed, **self.options())
        report, timings = strip_timings(rep)
        return PassResult(state=state.replace(network=net), report=report, timings=timings)
