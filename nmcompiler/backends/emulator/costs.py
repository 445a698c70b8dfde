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

__all__ = ["CostTables", "CostStream", "route_links", "evaluate"]


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
        tree_root: on multicast targets, the chip whose shortest-path tree each logical
            core's packets follow (``Routes.tree_root``; default: its own chip's).
    """

    def __init__(self, target: Target, physical: np.ndarray | None, n_cores: int,
                 tree_root: np.ndarray | None = None) -> None:
        self.target = target
        self.tree_root = None if tree_root is None else np.asarray(tree_root, dtype=np.int64)
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
        # bincount adds in the order of the entries, as np.add.at did (same sums), faster
        lat = np.bincount(rows[ok], weights=self.link_time[li[ok]], minlength=k)
        # hops on links not in the list (holes): charge the nominal hop time
        if not ok.all():
            for r in rows[~ok]:
                lat[r] += float(self.cost.time_per_hop_s)
        local = self.cost.time_per_spike_local_s or 0.0
        self.pair_latency = np.where(hops == 0, local, lat)
        noc = self.target.noc
        if noc.multicast_tables:
            n_cores = self.physical.shape[0]
            node = self.node
            s, _, child, _, link = noc.multicast_trees(
                node, np.asarray(pair_src, dtype=np.int64), node[pair_dst], n_cores,
                tree_root=self.tree_root)
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


class CostStream:
    """:func:`evaluate`'s time and energy, computed block of steps by block of steps.

    The engine hands over each block's per-core counters (``(steps, B, n_cores)`` views),
    its per-step, per-sample NoC latency (the longest route among the firing sources'
    messages, which is the longest among the active core pairs) and its hop energy (per
    step, the firing sources' precomputed hops x link energies). Per step every figure is
    :func:`evaluate`'s formula on the same numbers; the whole-run parts (cores ever
    active, static energy) are applied in :meth:`finish`. With ``keep_links`` the per-step
    link hops are kept (``(T, n_links)``) and the routing energy is ``link_hops @
    link_energy`` exactly as in :func:`evaluate`; without, the link hops are the run's
    totals (one row) and the per-step hop energy is the sum over the firing sources'
    (equal to it up to floating-point summation order, about 1e-16 relative).
    """

    def __init__(self, tables: CostTables, steps: int, batch: int, n_cores: int, *,
                 keep_links: bool) -> None:
        self.tables = tables
        self.steps = steps
        z = {k: np.zeros(steps) for k in ("step", "compute", "noc", "e_syn", "e_neu", "msgs",
                                           "local", "hop_e")}
        self.z = z
        self.upd_core = np.zeros(n_cores)
        self.link_hops = np.zeros((steps, tables.n_links)) if keep_links else None

    def add(self, t0: int, part: Mapping[str, np.ndarray], noc: np.ndarray,
            hop_e: np.ndarray, link_hops: np.ndarray | None) -> None:
        """One block: ``part`` per-core counters ``(nb, B, n_cores)`` from step ``t0``,
        ``noc (nb, B)``, ``hop_e (nb,)``, ``link_hops (nb, n_links)`` (summed over the
        batch) or None."""
        c, z = self.tables.cost, self.z
        sops, upd, local = part["sops"], part["updates"], part["local"]
        nb = sops.shape[0]
        compute = (sops * c.time_per_synop_s + upd * c.time_per_neuron_update_s).max(
            axis=2, initial=0.0)
        if c.time_per_spike_local_s:
            noc = np.maximum(noc, np.where(local.sum(axis=2) > 0, c.time_per_spike_local_s,
                                           0.0))
        step = compute + noc + c.barrier_time_s
        if c.step_time_s:
            step = np.maximum(step, c.step_time_s)
        sl = slice(t0, t0 + nb)
        z["step"][sl] = step.sum(axis=1)
        z["compute"][sl] = compute.sum(axis=1)
        z["noc"][sl] = noc.sum(axis=1)
        z["e_syn"][sl] = sops.sum(axis=(1, 2)) * c.energy_per_synop_j
        z["e_neu"][sl] = upd.sum(axis=(1, 2)) * c.energy_per_neuron_update_j
        z["msgs"][sl] = part["messages"].sum(axis=(1, 2))
        z["local"][sl] = local.sum(axis=(1, 2))
        z["hop_e"][sl] = hop_e
        self.upd_core += upd.sum(axis=(0, 1))
        if self.link_hops is not None and link_hops is not None:
            self.link_hops[sl] = link_hops

    def finish(self, pair_totals: np.ndarray) -> dict[str, Any]:
        """:func:`evaluate`'s dict; ``pair_totals (n_pairs,)``: the run's messages per core
        pair (the link hops' totals when they are not kept per step)."""
        tables, c, z = self.tables, self.tables.cost, self.z
        t_steps = self.steps
        if self.link_hops is not None:
            link_hops = self.link_hops
            e_route = link_hops @ tables.link_energy if tables.n_links else np.zeros(t_steps)
        else:
            link_hops = np.asarray(tables.pair_link.T @ pair_totals).reshape(1, -1)
            e_route = z["hop_e"].copy()
        if c.energy_per_spike_sent_j:
            e_route = e_route + z["msgs"] * c.energy_per_spike_sent_j
        if c.energy_per_spike_local_j:
            e_route = e_route + z["local"] * c.energy_per_spike_local_j
        power = c.static_power_w * tables.chips_used + (c.power_per_active_core_w or 0.0) * int(
            (self.upd_core > 0).sum())
        e_static = power * z["step"]
        if c.synop_energy_all_in:
            e_route = np.zeros(t_steps)
            e_static = np.zeros(t_steps)
        e_syn, e_neu = z["e_syn"], z["e_neu"]
        step_energy = e_syn + e_neu + e_route + e_static
        return {
            "step_time_s": z["step"],
            "compute_time_s": z["compute"],
            "noc_latency_s": z["noc"],
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
