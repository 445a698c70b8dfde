"""Time and energy of an emulated run, from its counters and the target's cost model.

Inputs are the engine's per-step, per-sample, per-logical-core counters (synaptic
operations, neuron updates, spikes, inter-core messages, local deliveries) and the
messages per core pair; the routes of the pairs on the placed physical cores give hops
per link. Formulas (docs/emulator.md; fields of :class:`nmcompiler.targets.CostModel`):

* per core compute time ``sops * time_per_synop_s + updates * time_per_neuron_update_s``;
* NoC latency of a step: the longest route any of its messages takes,
  ``sum over its links of time_per_hop_s`` (``time_per_hop_x_s`` / ``_y_s`` per link
  direction where given), ``time_per_spike_local_s`` for messages that stay on one core;
* step time ``max over cores(compute) + NoC latency + barrier_time_s``, at least
  ``step_time_s`` on timer-driven chips (SpiNNaker's 1 ms tick);
* energy: ``synaptic = sops * energy_per_synop_j``, ``neuron = updates *
  energy_per_neuron_update_j``, ``routing = messages * energy_per_spike_sent_j + hops
  x energy_per_hop_j`` (per-direction where given) ``+ local * energy_per_spike_local_j``,
  ``static = (static_power_w * chips used + power_per_active_core_w * cores used) * time``;
  where ``synop_energy_all_in`` is set (SpiNNaker's whole-board 43 nJ per PSP) the
  routing and static parts are already inside the synaptic figure and are reported as 0.

Routes are the compiler's (one routing model for the compile and the run report,
:mod:`nmcompiler.targets.topology`): dimension-order (x then y, the shorter way round a
wrapped axis) on ``mesh2d``; one direct link on ``full`` / ``speck_layers``. Messages
are unicast there: one per (source neuron, destination core), each crossing every link
of its route (docs/emulator.md). Where the compiler builds multicast routing tables
(SpiNNaker's ``triangular_torus``), every spike of a core is one packet that crosses
each link of that core's multicast tree once (the route pass's trees: the union of the
shortest-path-tree routes to its destination chips); a pair's latency is its route's.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nmcompiler.targets import Target

__all__ = ["CostTables", "route_links", "evaluate"]


def route_links(target: Target, node_a: np.ndarray, node_b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Links of the route from router ``node_a[k]`` to ``node_b[k]``, as CSR
    ``(indptr, link_ids)`` indexing ``target.links()``: the compiler's routes
    (:meth:`nmcompiler.targets.topology.NoC.route_links`)."""
    return target.noc.route_links(np.asarray(node_a, dtype=np.int64),
                                  np.asarray(node_b, dtype=np.int64))


class CostTables:
    """The cost model of a target bound to a placement (logical -> physical cores).

    Args:
        target: the :class:`nmcompiler.targets.Target`.
        physical: ``(n_cores,)`` physical core of every logical core (``Placement.core``;
            default: logical core k on physical core k).
    """

    def __init__(self, target: Target, physical: np.ndarray | None, n_cores: int) -> None:
        self.target = target
        self.cost = target.cost
        if physical is None:
            physical = np.arange(n_cores, dtype=np.int64) % max(int(target.total_cores), 1)
        self.physical = np.asarray(physical, dtype=np.int64)
        self.node = np.asarray(target.core_node(self.physical), dtype=np.int64)
        cpc = int(target.topology.cores_per_chip)
        self.chips_used = int(np.unique(self.physical // cpc).shape[0]) if n_cores else 0
        links = np.asarray(target.links(), dtype=np.int64)
        self.n_links = int(links.shape[0])
        c = self.cost
        e_hop = np.full(self.n_links, float(c.energy_per_hop_j))
        t_hop = np.full(self.n_links, float(c.time_per_hop_s))
        along_x = target.noc.link_along_x() if self.n_links else None
        if along_x is not None:
            if c.energy_per_hop_x_j is not None:
                e_hop[along_x] = c.energy_per_hop_x_j
            if c.energy_per_hop_y_j is not None:
                e_hop[~along_x] = c.energy_per_hop_y_j
            if c.time_per_hop_x_s is not None:
                t_hop[along_x] = c.time_per_hop_x_s
            if c.time_per_hop_y_s is not None:
                t_hop[~along_x] = c.time_per_hop_y_s
        self.link_energy = e_hop
        self.link_time = t_hop
        self.pair_link = sp.csr_matrix((0, self.n_links))
        self.pair_latency = np.zeros(0)
        self.pair_hops = np.zeros(0, dtype=np.int64)
        #: ``(n_cores, n_links)`` links of every core's multicast tree (multicast targets)
        self.core_link: sp.csr_matrix | None = None

    def attach_pairs(self, pair_src: np.ndarray, pair_dst: np.ndarray) -> None:
        """Route every communicating logical core pair (engine calls this once)."""
        na, nb = self.node[pair_src], self.node[pair_dst]
        indptr, li = route_links(self.target, na, nb)
        k = pair_src.shape[0]
        hops = np.diff(indptr)
        ok = li >= 0
        rows = np.repeat(np.arange(k), hops)
        self.pair_link = sp.csr_matrix(
            (np.ones(int(ok.sum())), (rows[ok], li[ok])), shape=(k, self.n_links))
        self.pair_hops = hops
        lat = np.zeros(k)
        np.add.at(lat, rows[ok], self.link_time[li[ok]])
        # hops on links not in the list (holes): charge the nominal hop time
        np.add.at(lat, rows[~ok], float(self.cost.time_per_hop_s))
        local = self.cost.time_per_spike_local_s or 0.0
        self.pair_latency = np.where(hops == 0, local, lat)
        noc = self.target.noc
        if noc.multicast_tables:
            n_cores = self.physical.shape[0]
            node = self.node
            s, _, child, _, link = noc.multicast_trees(
                node, np.asarray(pair_src, dtype=np.int64), node[pair_dst], n_cores)
            self.core_link = sp.csr_matrix(
                (np.ones(link.shape[0]), (s[child], link)), shape=(n_cores, self.n_links))

    def link_hops(self, counters: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(T, n_links)`` messages crossing each link per step: every pair's messages
        along its route, or on multicast targets every spike of a core along its tree."""
        pm = counters["pair_msgs"]
        t_steps = pm.shape[0]
        if self.core_link is not None:
            spikes = counters["spikes"].sum(axis=1)  # (T, n_cores)
            return np.asarray((sp.csr_matrix(spikes) @ self.core_link).todense())
        if pm.shape[2]:
            flat = pm.sum(axis=1)  # (T, n_pairs)
            return np.asarray((sp.csr_matrix(flat) @ self.pair_link).todense())
        return np.zeros((t_steps, self.n_links))


def evaluate(tables: CostTables, counters: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Per-step time and energy, and per-link hops, from the engine's counters.

    ``counters`` holds ``(T, B, n_cores)`` arrays ``sops``, ``updates``, ``spikes``,
    ``messages``, ``local`` and ``(T, B, n_pairs)`` ``pair_msgs``. Returns a dict with
    ``step_time_s (T,)`` (samples of a batch run one after another: summed over B),
    ``step_energy_j (T,)``, ``energy_j`` (by component, whole run), ``link_hops (T,
    n_links)``, ``noc_latency_s (T,)`` and ``compute_time_s (T,)``.
    """
    c = tables.cost
    sops, upd = counters["sops"], counters["updates"]
    msgs, local = counters["messages"], counters["local"]
    pm = counters["pair_msgs"]
    t_steps, batch = sops.shape[:2]
    compute = (sops * c.time_per_synop_s + upd * c.time_per_neuron_update_s).max(axis=2,
                                                                              initial=0.0)
    if pm.shape[2]:
        active = pm > 0
        noc = np.where(active, tables.pair_latency[None, None, :], 0.0).max(axis=2)
    else:
        noc = np.zeros((t_steps, batch))
    if c.time_per_spike_local_s:
        noc = np.maximum(noc, np.where(local.sum(axis=2) > 0, c.time_per_spike_local_s, 0.0))
    step = compute + noc + c.barrier_time_s
    if c.step_time_s:
        step = np.maximum(step, c.step_time_s)
    step_time = step.sum(axis=1)
    link_hops = tables.link_hops(counters)
    e_syn = sops.sum(axis=(1, 2)) * c.energy_per_synop_j
    e_neu = upd.sum(axis=(1, 2)) * c.energy_per_neuron_update_j
    e_route = link_hops @ tables.link_energy if tables.n_links else np.zeros(t_steps)
    if c.energy_per_spike_sent_j:
        e_route = e_route + msgs.sum(axis=(1, 2)) * c.energy_per_spike_sent_j
    if c.energy_per_spike_local_j:
        e_route = e_route + local.sum(axis=(1, 2)) * c.energy_per_spike_local_j
    power = c.static_power_w * tables.chips_used + (c.power_per_active_core_w or 0.0) * int(
        (upd.sum(axis=(0, 1)) > 0).sum())
    e_static = power * step_time
    if c.synop_energy_all_in:
        e_route = np.zeros(t_steps)
        e_static = np.zeros(t_steps)
    step_energy = e_syn + e_neu + e_route + e_static
    return {
        "step_time_s": step_time,
        "compute_time_s": compute.sum(axis=1),
        "noc_latency_s": noc.sum(axis=1),
        "link_hops": link_hops,
        "step_energy_j": step_energy,
        "energy_j": {
            "synaptic": float(e_syn.sum()),
            "neuron": float(e_neu.sum()),
            "routing": float(e_route.sum()),
            "static": float(e_static.sum()),
            "total": float(step_energy.sum()),
        },
    }
