"""The engine's slot order: the populations by zero-delay level, then in network order
(docs/emulator.md, "Engine")."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nmcompiler.ir.network import Network
from nmcompiler.ir.verify import effective_min_delay, zero_delay_order

__all__ = ["slot_layout"]


def slot_layout(net: Network) -> SimpleNamespace:
    """The engine's slot order (zero-delay level, then network order).

    Returns ``pops`` (slot order), ``slot_off``, ``level``, ``level_bounds``, ``src_off``,
    ``n`` (neurons), ``n_src`` (neurons + input channels) and ``slot_global`` (slot ->
    neuron index in network order); :class:`Engine` and the distributed parts use it.
    """
    order = zero_delay_order(net)
    level = {name: 0 for name in order}
    for name in order:
        for proj in net.projections.values():
            if proj.post == name and proj.pre in net.populations and \
                    effective_min_delay(proj) == 0:
                level[name] = max(level[name], level[proj.pre] + 1)
    n_levels = 1 + max(level.values(), default=0)
    names = list(net.populations)
    pops = sorted(names, key=lambda n: (level[n], names.index(n)))
    slot_off, off = {}, 0
    for name in pops:
        slot_off[name] = off
        off += net.populations[name].size
    n = off
    bounds = [0] * (n_levels + 1)
    for name in pops:
        bounds[level[name] + 1] = slot_off[name] + net.populations[name].size
    for k in range(1, n_levels + 1):
        bounds[k] = max(bounds[k], bounds[k - 1])
    src_off = dict(slot_off)
    for name, inp in net.inputs.items():
        src_off[name] = off
        off += inp.size
    net_off, k = {}, 0
    for name in names:
        net_off[name] = k
        k += net.populations[name].size
    slot_global = np.empty(n, dtype=np.int64)
    for name in names:
        s0, m = slot_off[name], net.populations[name].size
        slot_global[s0:s0 + m] = np.arange(net_off[name], net_off[name] + m)
    return SimpleNamespace(pops=pops, slot_off=slot_off, level=level, level_bounds=bounds,
                           src_off=src_off, n=n, n_src=off, slot_global=slot_global)
