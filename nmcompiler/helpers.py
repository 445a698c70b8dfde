"""Helper populations: neurons the importer or the lowering adds to implement a network,
which are not the user's own (docs/passes.md#helper-populations).

* **bias source**: a one-neuron population that fires every step and carries a bias as a
  weight (the NIR importer's ``bias_source`` for biases into a current stage; the
  retiming pass's bias source for lagged populations);
* **reset helper**: the NIR importer's ``POP.after_reset`` twin (snnTorch's delayed reset);
* **fan-in relay**: partial-sum relays of a split fan-in (``P~fanin{k}``);
* **delay relay**: relay chains of delays beyond the chip's largest (``P~delay{k}``).

Each is marked where it is made, in ``network.metadata["helper_populations"]`` (name ->
kind), which survives lowering, quantisation and saving. :func:`helper_populations` reads
the marks, and for networks built before the marks existed, the lowering report and the
shape of a bias source (one neuron, no incoming projection, a bias, not an output).

The behaviour check leaves helpers out of its figures, and the run report keeps their
spikes, synaptic operations and messages out of the network's totals.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["HELPERS_KEY", "helper_populations", "mark_helpers"]

#: the network metadata key of the marks (population name -> kind)
HELPERS_KEY = "helper_populations"


def mark_helpers(metadata: Mapping[str, Any], marks: Mapping[str, str]) -> dict[str, Any]:
    """``metadata`` with ``marks`` (population -> kind) added to its helper marks."""
    out = dict(metadata)
    old = out.get(HELPERS_KEY)
    merged = dict(old) if isinstance(old, dict) else {}
    merged.update({str(k): str(v) for k, v in marks.items()})
    out[HELPERS_KEY] = dict(sorted(merged.items()))
    return out


def _looks_like_bias_source(net: Any, name: str, driven: set[str], outputs: set[str]) -> bool:
    pop = net.populations[name]
    m = pop.model
    if pop.size != 1 or name in driven or name in outputs or not getattr(m, "spiking", True):
        return False
    bias = np.asarray(getattr(m, "bias", 0.0))
    return bool(np.all(bias != 0)) and bias.dtype.kind != "c"


def helper_populations(net: Any, lower_report: Mapping[str, Any] | None = None, *,
                       shape_rule: bool = True) -> dict[str, str]:
    """Helper populations of ``net`` (name -> kind), in network order.

    Args:
        net: an ``ir.Network`` (user's, lowered or compiled).
        lower_report: the lower pass's report (``compiled.report["passes"]["lower"]``),
            for networks lowered before the marks existed.
        shape_rule: also count unmarked one-neuron bias sources (networks imported
            before the marks existed).
    """
    found: dict[str, str] = {}
    marks = net.metadata.get(HELPERS_KEY) if isinstance(net.metadata, dict) else None
    if isinstance(marks, dict):
        found.update({str(k): str(v) for k, v in marks.items()})
    rep = lower_report or {}
    ret = rep.get("retiming") or {}
    for src in (ret.get("bias_sources") or {}).values():
        found.setdefault(str(src), "bias source")
    for split in (rep.get("fan_in") or {}).get("split") or []:
        for part in split.get("relays") or []:
            found.setdefault(str(part.get("relay")), "fan-in relay")
    delays = rep.get("delays") or {}
    for relay in (delays.get("relays") or []) if isinstance(delays, dict) else []:
        found.setdefault(str(relay.get("population")), "delay relay")
    driven = {p.post for p in net.projections.values()}
    outputs = {o.source for o in net.outputs.values()}
    for name in net.populations if shape_rule else ():
        if name not in found and _looks_like_bias_source(net, name, driven, outputs):
            found[name] = "bias source"
    return {k: found[k] for k in net.populations if k in found}
