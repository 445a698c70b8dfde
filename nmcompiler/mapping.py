"""The mapping data types: what partition, place and route produce (docs/mapping.md).

Three frozen value types, all arrays, no Python object per neuron, synapse or core:

* :class:`Partition` -- every neuron's *logical* core, the core graph (messages between
  logical cores) and per-core usage against every budget of the target
  (:class:`CoreUsage`).
* :class:`Placement` -- logical core -> physical core of the target (index into
  ``target.core_coords()``), with the traffic x hops cost it reaches.
* :class:`Routes` -- per logical-core pair the messages and hops, the load of every
  directed link of ``target.links()``, and where the target has them (SpiNNaker) the
  multicast routing tables as key / mask / route arrays per chip.

Units: *messages* count one message per (source neuron, destination core) and per spike
(docs/mapping.md: one spike into a core serves all its targets there); *hops* are
router-to-router hops of ``target.hops``; memory in bits unless a name says otherwise.
All types are built by the passes in :mod:`nmcompiler.passes.partition`, ``place`` and
``route`` and stored in a :class:`~nmcompiler.compiled.CompiledNetwork` as records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BUDGET_NAMES",
    "CoreUsage",
    "Partition",
    "Placement",
    "Routes",
    "SPINNAKER_LINK_DIRECTIONS",
]

#: Budget columns of :class:`CoreUsage` (a target uses the subset it has; Speck adds
#: ``kernel_memory_words``, ``neuron_memory_words`` and ``bias_memory_words``).
BUDGET_NAMES = (
    "neurons",
    "input_axons",
    "output_axons",
    "synaptic_memory_bits",
    "destination_cores",
)

#: SpiNNaker link numbering (spinn_machine): link d goes to chip (x, y) + this vector;
#: the opposite link is (d + 3) % 6. Route words use bits 0-5 for links and bit
#: ``6 + p`` for processor p (p = 1 + the core's slot; processor 0 is the monitor).
SPINNAKER_LINK_DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CoreUsage:
    """Per-core use of every budget.

    Attributes:
        names: budget names, the columns (e.g. :data:`BUDGET_NAMES`).
        used: ``(n_cores, len(names))`` int64, what each core uses.
        limit: ``(n_cores, len(names))`` int64, the target's limit; ``-1`` = no limit.
    """

    names: tuple[str, ...]
    used: np.ndarray
    limit: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """Usage of one budget over all cores."""
        return self.used[:, self.names.index(name)]

    def over(self) -> np.ndarray:
        """``(n_cores, len(names))`` bool: where a core exceeds a limit."""
        return (self.limit >= 0) & (self.used > self.limit)

    def fits(self) -> bool:
        """True when every core respects every limit."""
        return not bool(self.over().any())

    def report(self) -> dict[str, Any]:
        """JSON summary: max use, limit and max fill fraction per budget."""
        out: dict[str, Any] = {}
        for j, name in enumerate(self.names):
            used = self.used[:, j]
            lim = self.limit[:, j]
            has = lim >= 0
            frac = (used[has] / np.maximum(lim[has], 1)) if has.any() else np.zeros(0)
            out[name] = {
                "max": int(used.max()) if used.size else 0,
                "total": int(used.sum()),
                "limit": int(lim.max()) if has.any() else None,
                "max_fill": float(frac.max()) if frac.size else None,
            }
        return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Partition:
    """Neurons -> logical cores.

    Attributes:
        target: name of the target partitioned for.
        populations: population names, in network order (the global neuron order).
        pop_offsets: ``(n_pops + 1,)`` int64; population ``k``'s neurons are global
            neurons ``pop_offsets[k]:pop_offsets[k+1]``.
        neuron_core: ``(n_neurons,)`` int32, the logical core of every neuron.
        n_cores: number of logical cores (``0..n_cores-1``, numbered in order of their
            first neuron).
        usage: per-core usage against every budget.
        edge_src, edge_dst: ``(n_edges,)`` int32, the core graph: logical core pairs
            (``src != dst``) with at least one message, sorted by (src, dst).
        edge_messages: ``(n_edges,)`` int64, messages per spike-round on each edge:
            distinct (source neuron in ``src``, ``dst``) pairs.
        core_sources: ``(n_cores,)`` int64, neurons of a core with at least one synapse
            on another core (the multicast packets it sends per spike-round).
        input_messages: ``(n_cores,)`` int64, distinct (input channel, core) pairs into
            each core (messages from the host).
        messages: total inter-core messages, ``edge_messages.sum()``.
        local_messages: (source neuron, core) pairs that stay on the source's core.
        local_sources: ``(n_cores,)`` int64, neurons of a core with at least one synapse
            on the same core (SpiNNaker routes their packets back to the core through its
            chip's router); empty where the partition does not say (counted as none).
        method: how it was made: ``"metis"``, ``"sequential"``, ``"layers"`` (Speck).
        seed: the seed it was made with.
        stats: small JSON-able facts (blocks, repair rounds, timings).
    """

    target: str
    populations: tuple[str, ...]
    pop_offsets: np.ndarray
    neuron_core: np.ndarray
    n_cores: int
    usage: CoreUsage
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_messages: np.ndarray
    core_sources: np.ndarray
    input_messages: np.ndarray
    messages: int
    local_messages: int
    method: str
    seed: int
    stats: dict[str, Any] = field(default_factory=dict)
    local_sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def cores_of(self, population: str) -> np.ndarray:
        """Logical core of every neuron of ``population`` (a read-only view)."""
        k = self.populations.index(population)
        return self.neuron_core[self.pop_offsets[k]:self.pop_offsets[k + 1]]

    def report(self) -> dict[str, Any]:
        """JSON summary for the compile report."""
        return {
            "method": self.method,
            "seed": self.seed,
            "n_cores": self.n_cores,
            "messages": self.messages,
            "local_messages": self.local_messages,
            "input_messages": int(self.input_messages.sum()),
            "usage": self.usage.report(),
            **{k: v for k, v in self.stats.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Placement:
    """Logical cores -> physical cores.

    Attributes:
        target: target name.
        core: ``(n_cores,)`` int64, physical core index of every logical core (row of
            ``target.core_coords()``; chip = ``core // cores_per_chip``).
        coords: ``(n_cores, 5)`` int64, ``target.core_coords()[core]`` (chip_x, chip_y,
            node_x, node_y, slot).
        cost: sum over core-graph edges of messages x hops (the objective).
        messages: inter-core messages (as in the partition).
        mean_hops: ``cost / messages`` (0 when there are none).
        max_link_load: messages on the busiest directed link under the target's
            dimension-order routes (unicast estimate; :class:`Routes` has the exact one).
        method: ``"cpsat"``, ``"heuristic"``, ``"sequential"``, ``"random"`` or
            ``"matching"`` (Speck).
        optimal: CP-SAT proved ``cost`` optimal.
        lower_bound: CP-SAT's proven lower bound on the cost (None when not run).
        seed: the seed.
        stats: small JSON-able facts (solver status, local-search rounds...).
    """

    target: str
    core: np.ndarray
    coords: np.ndarray
    cost: int
    messages: int
    mean_hops: float
    max_link_load: int
    method: str
    optimal: bool
    lower_bound: float | None
    seed: int
    stats: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """JSON summary for the compile report."""
        return {
            "method": self.method,
            "seed": self.seed,
            "cost_messages_x_hops": self.cost,
            "mean_hops": self.mean_hops,
            "max_link_load": self.max_link_load,
            "optimal": self.optimal,
            "lower_bound": self.lower_bound,
            "chips_used": int(np.unique(self.coords[:, :2], axis=0).shape[0])
            if self.coords.size else 0,
            **{k: v for k, v in self.stats.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Routes:
    """Routes on the target's network.

    Attributes:
        target: target name.
        pair_src, pair_dst: ``(n_pairs,)`` int32 logical cores (the partition's edges).
        pair_messages: ``(n_pairs,)`` int64 messages per spike-round.
        pair_hops: ``(n_pairs,)`` int64 hops between the placed cores.
        links: ``(n_links, 2)`` int64 directed router links (``target.links()``).
        link_load: ``(n_links,)`` int64 messages crossing each link per spike-round:
            unicast dimension-order routes (mesh), multicast trees (SpiNNaker: one packet
            per source neuron per tree edge), direct links (Speck, full).
        total_hops: ``sum(pair_messages * pair_hops)``.
        messages: ``sum(pair_messages)``.
        mean_hops: ``total_hops / messages``.
        max_link_load: ``link_load.max()`` (0 without links).
        multicast: True when link loads come from multicast trees.
        keys: ``(n_cores,)`` uint32 routing key base of every logical core (SpiNNaker;
            empty otherwise); neuron ``i`` of the core sends key ``keys[c] | i``.
        key_mask: the mask of one core's key block (uint32 as int).
        table_offsets: ``(n_chips + 1,)`` int64; chip ``k``'s table is entries
            ``table_offsets[k]:table_offsets[k+1]`` (first match wins, in this order).
        table_key, table_mask: ``(n_entries,)`` uint32 entry arrays.
        table_route: ``(n_entries, n_words)`` uint32: each entry's route as a bit set of
            ``n_words`` little-endian 32-bit words (bit ``b`` is bit ``b % 32`` of word
            ``b // 32``): bit ``d`` for link d (:data:`SPINNAKER_LINK_DIRECTIONS`) and
            bit ``6 + p`` for processor ``p`` (0 = monitor, application core in slot k is
            processor k + 1). One word on SpiNNaker 1 (18 processors), five on
            SpiNNaker 2 (151 processors); see :func:`nmcompiler.passes.route.route_bits`.
        entries_uncompressed: ``(n_chips,)`` int64 entries per chip before any
            compression (default-routed entries already removed).
        routing_limit: entries allowed per chip (None: no tables).
        stats: small JSON-able facts.
        tree_root: ``(n_cores,)`` int64, the chip whose shortest-path tree each core's
            packets follow, re-rooted at the core's own chip (the slices of a population
            routed on one tree, docs/spinnaker_backend.md); None: every core on its own
            chip's tree.
    """

    target: str
    pair_src: np.ndarray
    pair_dst: np.ndarray
    pair_messages: np.ndarray
    pair_hops: np.ndarray
    links: np.ndarray
    link_load: np.ndarray
    total_hops: int
    messages: int
    mean_hops: float
    max_link_load: int
    multicast: bool
    keys: np.ndarray
    key_mask: int
    table_offsets: np.ndarray
    table_key: np.ndarray
    table_mask: np.ndarray
    table_route: np.ndarray
    entries_uncompressed: np.ndarray
    routing_limit: int | None
    stats: dict[str, Any] = field(default_factory=dict)
    tree_root: np.ndarray | None = None

    @property
    def entries_per_chip(self) -> np.ndarray:
        """Routing entries per chip after compression."""
        return np.diff(self.table_offsets)

    def report(self) -> dict[str, Any]:
        """JSON summary for the compile report."""
        out: dict[str, Any] = {
            "messages": self.messages,
            "total_hops": self.total_hops,
            "mean_hops": self.mean_hops,
            "max_link_load": self.max_link_load,
            "multicast": self.multicast,
        }
        if self.routing_limit is not None:
            per_chip = self.entries_per_chip
            out["routing_entries_max"] = int(per_chip.max(initial=0))
            out["routing_entries_uncompressed_max"] = int(
                self.entries_uncompressed.max(initial=0))
            out["routing_limit"] = self.routing_limit
            out["routing_entries_total"] = int(per_chip.sum())
            out["routing_entries_uncompressed_total"] = int(self.entries_uncompressed.sum())
            # chips (index into target.node_coords()) with any entry, before/after merging
            has = np.flatnonzero((per_chip > 0) | (self.entries_uncompressed > 0))
            out["routing_entries_per_chip"] = {
                "chip": has.tolist(), "entries": per_chip[has].tolist(),
                "uncompressed": self.entries_uncompressed[has].tolist()}
        out.update(self.stats)
        return out
