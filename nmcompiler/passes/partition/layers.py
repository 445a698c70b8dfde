"""Layer partitioning for layer-mapped chips (Speck): one layer per core, with the
family's kernel, neuron and bias memory (:mod:`nmcompiler.targets.families.speck`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.connectivity import Dense
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.network import Network

from ...mapping import CoreUsage, Partition
from ...targets import Target
from ...targets.budgets import LAYER_BUDGET_NAMES, limits_of
from ...targets.families.speck import neuron_memory, speck_kernel, speck_layer_memory
from .diagnostics import RESOURCE_WORDS
from .view import View

_SPECK_NAMES = LAYER_BUDGET_NAMES


# =========================================================================== Speck
def speck_partition(net: Network, view: View, target: Target, seed: int) -> Partition:
    """One core per layer (population), checked against the family's layer memories."""
    npop = len(view.pops)
    kernel = np.zeros(npop, dtype=np.int64)
    neuron_mem = np.zeros(npop, dtype=np.int64)
    bias = np.zeros(npop, dtype=np.int64)
    dests: list[set[int]] = [set() for _ in range(npop)]
    pidx = {p: k for k, p in enumerate(view.pops)}
    for k, p in enumerate(view.pops):
        pop = net.populations[p]
        neuron_mem[k] = neuron_memory(pop.shape)
        b = getattr(pop.model, "bias", 0.0)
        if np.any(np.asarray(b) != 0):
            bias[k] = pop.shape[0] if len(pop.shape) == 3 else pop.size
    conv = getattr(target, "convolution", None)
    pool_sizes = tuple(conv.pooling_sizes) if conv is not None else (2, 4, 8)
    pooled: dict[str, int] = {}
    pooled_conv: dict[str, list[int]] = {}
    for pr in net.projections.values():
        k = pidx[pr.post]
        in_shape = net.shape_of(pr.pre)
        rect = pr.pre in net.inputs  # the DVS layer pools rectangles too
        kernel[k] += speck_layer_memory(pr.conn, in_shape, net.shape_of(pr.post), pool_sizes,
                                        rect=rect)
        got = speck_kernel(pr.conn, in_shape, pool_sizes, rect)
        if got is not None and got[0].shape[2] != got[0].shape[3]:
            kh, kw = (int(x) for x in got[0].shape[2:])
            raise FitError(
                f"layer '{pr.post}' needs a {kh} x {kw} kernel (projection '{pr.name}'); "
                f"{target.name} kernels are square", obj=pr.name, rule="square kernel",
                need=[kh, kw], limit="square",
                hint="a dense layer's kernel is its (pooled) input map: make the map square")
        if got is not None and got[1] != (1, 1):
            if isinstance(pr.conn, Dense) and got[1][0] == got[1][1]:
                pooled[pr.name] = got[1][0]
            else:
                pooled_conv[pr.name] = list(got[1])
        if pr.pre in pidx and pidx[pr.pre] != k:
            dests[pidx[pr.pre]].add(k)
    n_dest = np.array([len(d) for d in dests], dtype=np.int64)
    names = _SPECK_NAMES
    used = np.stack([np.diff(view.pop_off), kernel, neuron_mem, bias, n_dest], axis=1)
    lim = limits_of(target, names, True)
    for k in range(npop):
        for j, name in enumerate(names):
            if name == "neurons":
                continue
            if lim[j] >= 0 and used[k, j] > lim[j]:
                hint = {
                    "kernel_memory_words": "use fewer input or output channels or a "
                                           "smaller kernel",
                    "neuron_memory_words": "use fewer channels, a larger stride or pooling "
                                           "before it (smaller feature map)",
                    "bias_memory_words": "use fewer channels or no bias",
                    "destination_cores": "send the layer to at most "
                                         f"{lim[j]} layers (merge or chain them)",
                }[name]
                raise FitError(
                    f"layer '{view.pops[k]}' needs {int(used[k, j])} "
                    f"{RESOURCE_WORDS[name]}; the largest {target.name} core allows "
                    f"{int(lim[j])}", obj=view.pops[k], rule=name, need=int(used[k, j]),
                    limit=int(lim[j]), hint=hint)
    if npop > target.total_cores:
        raise FitError(
            f"network has {npop} layers; {target.name} has {target.total_cores} cores "
            "(one layer per core)", obj="network", rule="cores", need=npop,
            limit=int(target.total_cores), hint="merge or remove layers")
    neuron_core = np.repeat(np.arange(npop, dtype=np.int32), np.diff(view.pop_off))
    src, dst = [], []
    msgs = []
    for pr in net.projections.values():
        if pr.pre in pidx and pidx[pr.pre] != pidx[pr.post]:
            src.append(pidx[pr.pre])
            dst.append(pidx[pr.post])
            msgs.append(net.size_of(pr.pre))
    e = sp.csr_matrix((np.asarray(msgs, dtype=np.int64), (np.asarray(src, dtype=np.int64),
                                                          np.asarray(dst, dtype=np.int64))),
                      shape=(npop, npop))
    e.data = np.minimum(e.data, np.diff(view.pop_off)[np.repeat(np.arange(npop),
                                                                 np.diff(e.indptr))])
    coo = e.tocoo()
    order = np.lexsort((coo.col, coo.row))
    sources = np.where(n_dest > 0, np.diff(view.pop_off), 0)
    in_msgs = np.zeros(npop, dtype=np.int64)
    for pr in net.projections.values():
        if pr.pre in net.inputs:
            in_msgs[pidx[pr.post]] += net.size_of(pr.pre)
    return Partition(
        target=target.name, populations=view.pops, pop_offsets=view.pop_off.copy(),
        neuron_core=neuron_core, n_cores=npop,
        usage=CoreUsage(names=names, used=used, limit=np.broadcast_to(lim, used.shape).copy()),
        edge_src=coo.row[order].astype(np.int32), edge_dst=coo.col[order].astype(np.int32),
        edge_messages=coo.data[order].astype(np.int64), core_sources=sources.astype(np.int64),
        input_messages=in_msgs, messages=int(coo.data.sum()), local_messages=0,
        method="layers", seed=int(seed),
        stats={**({"pooled_dense_projections": pooled} if pooled else {}),
               **({"pooled_conv_projections": pooled_conv} if pooled_conv else {})})
