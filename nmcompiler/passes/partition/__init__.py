"""The *partition* pass: neurons -> logical cores within every per-core budget.

Objective: the fewest inter-core messages, one message per (source neuron, destination
core) and spike (docs/mapping.md), subject to every per-core budget of the target:
neurons, input axons (distinct presynaptic neurons or input channels with a synapse on
the core), output axons (distinct (neuron, destination core) pairs of the core's
neurons), synaptic memory in bits as the target's ``synapse_accounting`` stores a row
(nengo-loihi's ``SynapseConfig.bits_per_axon`` for Loihi, one 32-bit word per synapse
plus 3 header words per row for sPyNNaker, a fixed width per synapse otherwise) and, where
the target has it, the number of destination cores per core.

Methods (docs/mapping.md gives the details):

``"metis"`` (default) -- multilevel graph partitioning (G. Karypis and V. Kumar, "A fast
and high quality multilevel scheme for partitioning irregular graphs", SIAM J. Sci.
Comput. 20(1), 1998) through pymetis, *after* our own first coarsening level: contiguous
neuron blocks (runs of a population in its C order: rows of a grid, segments of a
feature map) become super-nodes, and the block graph's weights come from the synapses
(all of them, or a seeded uniform sample of at most ``sample_synapses``), aggregated with
sparse-matrix sums, never a Python loop. An edge A->B weighs ``min(synapses(A,B), |A|)``:
a source neuron sends at most one message to the core of B. METIS's own multilevel
scheme then coarsens further, partitions and refines (FM) the block graph into ``K``
parts balanced in neurons. Departures from a plain k-way METIS run: (1) the budgets other
than neurons are not additive (input axons are a union), so the exact usage is counted
after each run and, if a core is over, the blocks are re-weighted by their core's
overload and METIS is run again with more parts (at most ``metis_rounds`` times);
(2) cores still over a budget are then split into contiguous pieces until every core
fits (the *repair*), so the result respects every budget exactly.

``"sequential"`` -- the baseline of sPyNNaker's and Lava's open mappers: each population
in network order is cut into runs of ``neurons`` per core (a core never holds two
populations), then cut further wherever another budget is exceeded.

Speck (``speck_layers`` topology): one population (layer) per core, as sinabs' DYNAP-CNN
backend keeps layers; the per-core kernel, neuron and bias memory are counted with sinabs'
formulas and checked against the largest core (``place`` matches layers to cores).

Which populations may share a core: on targets whose backend runs one neuron program
per core (SpiNNaker) none; elsewhere populations of the same neuron-model class.

Everything is counted from sparse matrices: per projection a ``(n_pre, n_cores)`` CSR of
synapse counts (``scipy.sparse`` sums duplicates in C), so a 10^8-synapse network costs a
few seconds per evaluation. Deterministic for a seed (METIS seed, sample seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.errors import UsageError
from nmcompiler.ir.network import Network

from ...mapping import BUDGET_NAMES, CoreUsage, Partition
from ...targets import Target
from ...targets.budgets import layer_mapped, limits_of, synapse_row_bits
from ...targets.families.speck import dense_pool_factor, speck_layer_memory
from ..base import CompileState, Pass, PassResult, clean_record
from .diagnostics import too_many_cores
from .layers import speck_partition
from .metis import metis_partition, sequential
from .repair import compact, repair_partition
from .usage import Eval, build_core_graph, evaluate_partition, fill_dest
from .view import build_view

__all__ = ["partition", "PartitionPass", "synapse_row_bits", "speck_layer_memory",
           "dense_pool_factor", "evaluate_partition"]


# =========================================================================== the pass
def partition(
    net: Network,
    target: Target,
    *,
    seed: int = 0,
    method: str = "auto",
    mix_populations: bool | None = None,
    max_blocks: int = 4096,
    sample_synapses: int = 2_000_000,
    metis_rounds: int = 3,
    max_block_edges: int = 400_000,
    compare_below: int = 20_000_000,
) -> Partition:
    """Partition ``net`` into logical cores of ``target`` (see the module docstring).

    Args:
        net: a lowered network (convolutions expanded except on Speck; expanded here
            if not).
        target: a :class:`~nmcompiler.targets.Target`.
        seed: seeds METIS and the synapse sample; same seed -> identical arrays.
        method: ``"auto"`` / ``"metis"`` (multilevel, see above) or ``"sequential"``
            (the baseline). ``auto`` falls back to sequential when METIS's result needs
            more cores than the target has and sequential does not.
        mix_populations: may a core hold neurons of several populations (same model
            class)? Default: not on SpiNNaker, yes elsewhere.
        max_blocks: at most this many super-nodes go to METIS.
        sample_synapses: the block graph is built from at most this many synapses.
        metis_rounds: METIS runs at most this many times (re-weighting overloaded cores);
            once on networks above ``compare_below`` synapses.
        max_block_edges: a denser block graph keeps each block's heaviest edges.
        compare_below: ``auto`` also runs the sequential baseline and keeps the better
            partition when the network has at most this many synapses.

    Returns:
        a :class:`~nmcompiler.mapping.Partition`.

    Raises:
        FitError: a neuron or layer exceeds a per-core budget alone, or the network
            needs more cores than the target has (the message names the population,
            the resource, need and limit, and a hint).
    """
    if method not in ("auto", "metis", "sequential"):
        raise UsageError(f"unknown partition method {method!r}", obj="partition",
                         rule="method", hint="use 'auto', 'metis' or 'sequential'")
    t_start = time.perf_counter()
    view = build_view(net, target, mix_populations)
    if layer_mapped(target):
        part = speck_partition(net, view, target, seed)
        part.stats["time_s"] = round(time.perf_counter() - t_start, 3)
        return part
    lim = limits_of(target, BUDGET_NAMES, False)
    cap = int(lim[0])
    lower_bound = sum(-(-int(s) // cap) for s in np.diff(view.pop_off)) \
        if mix_populations is False else -(-view.n_neurons // cap)
    if lower_bound > target.total_cores:
        raise too_many_cores(view, target, lower_bound, None, None)
    stats: dict[str, Any] = {}

    def run_sequential() -> tuple[np.ndarray, int, Eval, str]:
        nc, k = sequential(view, cap)
        nc, k, ev = repair_partition(view, target, nc, k, lim, None, stats)
        return nc, k, ev, "sequential"

    if method == "sequential":
        nc, k, ev, used_method = run_sequential()
    else:
        n_syn = sum(pr.n_syn for pr in view.projs)
        rounds = metis_rounds if n_syn <= compare_below else 1  # large: repair directly
        nc, k, ev = metis_partition(view, target, cap, lim, seed, max_blocks,
                                     sample_synapses, rounds, max_block_edges, stats)
        nc, k, ev = repair_partition(view, target, nc, k, lim, ev, stats,
                            plan=n_syn > compare_below)  # large: aim at one repair round
        used_method = "metis"
        if method == "auto" and (k > target.total_cores or n_syn <= compare_below):
            # keep the better of METIS and the sequential baseline (dense layers, for
            # one, are best left whole); skipped on large networks to save a pass
            nc2, k2, ev2, m2 = run_sequential()
            msgs = int(ev.core_graph.sum() - ev.core_graph.diagonal().sum())
            msgs2 = int(ev2.core_graph.sum() - ev2.core_graph.diagonal().sum())
            if k2 <= target.total_cores and (k > target.total_cores or msgs2 < msgs):
                nc, k, ev, used_method = nc2, k2, ev2, m2
    if k > target.total_cores:
        raise too_many_cores(view, target, k, ev.used, ev.names)
    # number cores by their first neuron (ids follow the network order)
    nc_new, k = compact(nc)
    old_of_new = np.empty(k, dtype=np.int64)
    old_of_new[nc_new] = nc
    inv = np.empty_like(old_of_new)
    inv[old_of_new] = np.arange(k)
    if ev._graph is None and ev.pair_src_core is not None:
        # the core graph, built once, directly in the new numbering
        rc = ev.pair_src_core
        inv_s = inv.astype(np.int32) if k < 2**31 - 1 else inv
        perm = build_core_graph(inv_s[rc], inv_s[ev.pair_core[:rc.shape[0]]], k)
        del inv_s
        used = ev.used[old_of_new]
        j = ev.names.index("destination_cores")
        used[:, j] = np.diff(perm.indptr) - (perm.diagonal() > 0)
    else:
        # renumber the core graph: permute its rows, relabel and re-sort its columns
        # (per row; no global sort of the up to 1e8 edges)
        fill_dest(ev)
        used = ev.used[old_of_new]
        perm = ev.core_graph.tocsr()[old_of_new]
        perm = sp.csr_matrix((perm.data, inv[perm.indices], perm.indptr), shape=perm.shape)
        perm.has_sorted_indices = False
        perm.sort_indices()
    # the edges in row order (sorted), the diagonal (local messages) left out
    r = np.repeat(np.arange(k, dtype=np.int32), np.diff(perm.indptr))
    c = perm.indices.astype(np.int32, copy=False)
    d = perm.data.astype(np.int64, copy=False)
    remote = r != c
    local_messages = int(d[~remote].sum())
    local_sources = np.zeros(k, dtype=np.int64)
    local_sources[r[~remote]] = d[~remote]
    r, c, d = r[remote], c[remote], d[remote]
    order = slice(None)
    stats["time_s"] = round(time.perf_counter() - t_start, 3)
    return Partition(
        target=target.name, populations=view.pops, pop_offsets=view.pop_off.copy(),
        neuron_core=nc_new.astype(np.int32), n_cores=k,
        usage=CoreUsage(names=ev.names, used=used,
                        limit=np.broadcast_to(lim, used.shape).copy()),
        edge_src=r[order].astype(np.int32, copy=False),
        edge_dst=c[order].astype(np.int32, copy=False),
        edge_messages=d[order], core_sources=ev.core_sources[old_of_new],
        input_messages=ev.input_messages[old_of_new], messages=int(d.sum()),
        local_messages=local_messages, local_sources=local_sources, method=used_method,
        seed=int(seed), stats=stats)


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionPass(Pass):
    """:func:`partition` as a pipeline pass; the fields are its options."""

    name: ClassVar[str] = "partition"
    requires: ClassVar[frozenset[str]] = frozenset({"lowered", "quantized"})
    ensures: ClassVar[frozenset[str]] = frozenset({"partitioned"})
    method: str = "auto"
    mix_populations: bool | None = None
    max_blocks: int = 4096
    sample_synapses: int = 2_000_000
    metis_rounds: int = 3
    max_block_edges: int = 400_000
    compare_below: int = 20_000_000

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        opts = self.options()
        opts["method"] = getattr(self.method, "value", self.method)  # a PartitionMethod too
        part, timings = clean_record(partition(state.network, state.target, seed=state.seed,
                                               **opts))
        return PassResult(state=state.replace(partition=part), report=part.report(),
                          changed=False, timings=timings)
