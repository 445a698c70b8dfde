"""The inverse of quantisation (:func:`dequantize`) and Loihi weight mantissas."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import model_fields
from nmcompiler.ir.network import Network, Population, Projection

from ...quantization import METADATA_KEY, QuantizationInfo
from .weights import weights_of, with_weight


# =========================================================================== inverse
def dequantize(qnet: Network) -> Network:
    """The float network a quantised one stands for: divide thresholds, biases, reset
    voltages and incoming weights by each population's scale (decays stay as they are).

    ``dequantize(quantize(net, t)[0])`` equals ``net`` exactly when every value of ``net``
    is representable in the target's formats at the chosen scales.
    """
    info = QuantizationInfo.of(qnet)
    if info is None:
        raise FitError(
            f"network '{qnet.name}' carries no quantization metadata", obj=qnet.name,
            rule="quantized network", hint="run the quantize pass first")
    scales = {n: v.scale for n, v in info.populations.items()}
    pops = {}
    for name, pop in qnet.populations.items():
        k = scales[name]
        own = model_fields(pop.model)
        ch: dict[str, Any] = {f: (own[f] / k) for f in ("theta", "bias", "v_reset")
                              if f in own}
        if own.get("noise"):  # threshold noise is in voltage units
            ch["noise"] = float(own["noise"]) / k
        mc = info.populations[name].model_comparison
        if isinstance(mc, dict) and "theta" in own:  # undo the chip's comparison
            t = np.broadcast_to(np.asarray(mc["theta"], dtype=np.float64),
                                np.shape(own["theta"]))
            ch["theta"] = t / k
            ch["fire_at_threshold"] = bool(mc["fire_at_threshold"])
        for f, v in ch.items():
            if isinstance(v, np.ndarray) and v.ndim == 0:
                ch[f] = float(v)
            elif not isinstance(v, (np.ndarray, bool)):
                ch[f] = float(v)
        pops[name] = Population(name=name, shape=pop.shape,
                                model=dataclasses.replace(pop.model, **ch))
    projs = {}
    for name, p in qnet.projections.items():
        k = scales[p.post]
        w = weights_of(qnet, p) / k
        projs[name] = Projection(name=name, pre=p.pre, post=p.post,
                                 conn=with_weight(p.conn, w), delay=p.delay)
    md = {k: v for k, v in qnet.metadata.items() if k != METADATA_KEY}
    return qnet.replace(populations=pops, projections=projs, metadata=md)


def loihi_weight_mantissas(qnet: Network, projection: str) -> tuple[np.ndarray, int]:
    """Lava's integer weights and ``weight_exp`` of one projection of a network quantised
    for a Loihi target: ``mantissa = weight / 2**(6 + weight_exp)`` (exact integers)."""
    info = QuantizationInfo.of(qnet)
    pq = None if info is None else info.projection(projection)
    if pq is None or pq.weight_shift is None or pq.weight_exp is None:
        raise FitError(f"projection '{projection}' carries no quantization record",
                       obj=projection, rule="quantized network",
                       hint="run the quantize pass for a Loihi target first")
    w = weights_of(qnet, qnet.projections[projection])
    return np.rint(w / 2.0 ** pq.weight_shift).astype(np.int32), pq.weight_exp
