"""Step 4 of lowering: delays beyond the target's native maximum become chains of
relay neurons."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import (
    OneToOne,
    Sparse,
)
from nmcompiler.ir.errors import FitError, UsageError
from nmcompiler.ir.models import IF, LIF, Reset
from nmcompiler.ir.network import Network, Population, Projection

from .common import delay_range, projection_synapses, unique_name, with_delays


# =========================================================================== 4. delays
def _relay_model(net: Network, src: str, graded_bits: int) -> Any:
    pop = net.populations.get(src)
    if pop is not None and pop.model.graded:
        return LIF(alpha_u=0.0, lam=0.0, theta=1.0, graded=True,
                   graded_max=int(pop.model.graded_max), fire_at_threshold=True)
    return IF(theta=0.5, reset=Reset.HARD)


def split_long_delays(
    net: Network,
    d_min: int,
    d_max: int,
    *,
    per_synapse_delays: bool = True,
    mode: str = "relay",
    target_name: str = "the target",
) -> tuple[Network, dict]:
    """Give every synapse a delay in ``[d_min, d_max]`` using relay chains.

    A synapse of total delay ``D > d_max`` goes through ``n = ceil((D - d_max) / h)``
    relays (hop ``h = d_max - d_min + 1``), shared per source population and hop: relay
    level ``k`` of source ``S`` is a population ``S~delay{k}`` of S's shape, fed one-to-one
    from level ``k - 1`` with delay ``h`` and weight 1; the synapse leaves level ``n``
    with the remaining delay ``D - n h`` in ``[d_min, d_max]``. A binary relay is
    ``IF(theta=0.5)`` (a spike of weight 1 crosses the threshold and the hard reset clears
    it); a graded source gets ``LIF(lam=0, theta=1, graded)``, which re-sends its payload.
    Inputs are relayed as binary spikes. Exact in the IR. Without per-synapse delays on
    the target, a projection with per-synapse delays becomes one projection per delay.
    """
    report: dict[str, Any] = {"max_delay": int(d_max), "relays": [], "split": []}
    h = d_max - max(d_min, 1) + 1
    if h < 1:
        raise UsageError(f"max_delay {d_max} < min_delay {d_min}", obj=target_name,
                         hint="fix the target file")
    pops = dict(net.populations)
    projs: dict[str, Projection] = {}
    taken = set(pops) | set(net.inputs)
    chains: dict[str, list[str]] = {}

    def level(src: str, k: int) -> str:
        chain = chains.setdefault(src, [])
        while len(chain) < k:
            prev = src if not chain else chain[-1]
            name = unique_name(f"{src}~delay{len(chain) + 1}", taken)
            pops[name] = Population(name=name, shape=net.shape_of(src),
                                    model=_relay_model(net, src, 0))
            pn = unique_name(f"{prev}->{name}", set(net.projections) | set(projs))
            projs[pn] = Projection(name=pn, pre=prev, post=name, conn=OneToOne(weight=1.0),
                                   delay=h)
            chain.append(name)
            report["relays"].append({"population": name, "source": src, "hop": h})
        return chain[k - 1]

    changed = False
    for name, p in net.projections.items():
        lo, hi = delay_range(p)
        extra = getattr(p.conn, "delays", None)
        varied = extra is not None and np.size(extra) and lo != hi
        if hi <= d_max and (per_synapse_delays or not varied):
            projs[name] = p
            continue
        if hi > d_max and mode != "relay":
            raise FitError(
                f"projection '{name}' has delay {hi}; {target_name} delays at most "
                f"{d_max} steps", obj=name, rule="max delay", need=hi, limit=d_max,
                hint="shorten the delay, or lower with long_delays='relay' to chain relay "
                "neurons",
            )
        changed = True
        if not varied:
            n = math.ceil((hi - d_max) / h)
            src = level(p.pre, n)
            projs[name] = Projection(name=name, pre=src, post=p.post, conn=p.conn,
                                     delay=hi - n * h)
            report["split"].append({"projection": name, "delay": hi, "relays": n})
            continue
        pre, post, w, dl = projection_synapses(net, p)
        tot = int(p.delay) + np.asarray(dl, dtype=np.int64) if dl is not None else \
            np.full(pre.shape, int(p.delay), dtype=np.int64)
        nrel = np.where(tot > d_max, -((d_max - tot) // h), 0)  # ceil((tot - d_max) / h)
        rem = tot - nrel * h
        keys = np.stack([nrel, rem if not per_synapse_delays else np.zeros_like(rem)])
        groups = np.unique(keys, axis=1)
        for gi in range(groups.shape[1]):
            n_k, r_k = int(groups[0, gi]), int(groups[1, gi])
            m = (nrel == n_k) & (per_synapse_delays | (rem == r_k))
            src = level(p.pre, n_k) if n_k else p.pre
            base = int(rem[m].min())
            sp = Sparse.from_coo(pre=pre[m], post=post[m], weight=w[m],
                                 n_pre=net.size_of(p.pre), n_post=net.size_of(p.post),
                                 delays=(rem[m] - base) if per_synapse_delays else None)
            if sp.delays is not None and not np.any(sp.delays):
                sp = with_delays(sp, None)
            pn = name if groups.shape[1] == 1 else unique_name(
                f"{name}~d{n_k * h + base}", set(net.projections) | set(projs))
            projs[pn] = Projection(name=pn, pre=src, post=p.post, conn=sp, delay=base)
        report["split"].append({"projection": name, "delay": [lo, hi],
                                "groups": int(groups.shape[1])})
    if not changed:
        return net, report
    return net.replace(populations=pops, projections=projs), report
