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

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nmcompiler.targets import Target
from nmcompiler.targets.topology import MeshNoC
from nmcompiler.targets.topology import segment_ends as _run_ends
from nmcompiler.targets.topology import segment_sums as _run_sum
from nmcompiler.targets.topology import signed_delta as _signed

__all__ = ["CostTables", "CostStream", "MeshPlan", "route_links", "evaluate"]


@dataclass(frozen=True)
class MeshPlan:
    """:meth:`CostTables.mesh_plan`: the unique x-leg and y-leg keys in the plan's order,
    and per direction (right, left, up, down) ``(leg, slice of that leg's keys, segment
    opens, segment closes, line length, lines, reversed)``."""

    x_keys: np.ndarray
    y_keys: np.ndarray
    parts: tuple[tuple[int, slice, np.ndarray, np.ndarray, int, int, bool], ...]


def route_links(target: Target, node_a: np.ndarray, node_b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Links of the route from router ``node_a[k]`` to ``node_b[k]``, as CSR
    ``(indptr, link_ids)`` indexing ``target.links()``: the compiler's routes
    (:meth:`nmcompiler.targets.topology.NoC.route_links`)."""
    return target.noc.route_links(np.asarray(node_a, dtype=np.int64),
                                  np.asarray(node_b, dtype=np.int64))


def _seq(step: float, n: int) -> np.ndarray:
    """``0, s, s + s, ...`` (``n + 1`` values): the sum of ``k`` equal hop figures formed
    one hop at a time, as a per-link sum along a route forms it (bit for bit)."""
    out = np.full(n + 1, float(step))
    out[0] = 0.0
    return np.cumsum(out)


class CostTables:
    """The cost model of a target bound to a placement (logical -> physical cores).

    Per core pair it gives the hops, the NoC latency and the hop energy of a message
    from formulas on the routers' coordinates (dimension-order routes on a mesh, the
    shortest-path trees elsewhere: the compiler's routes, :mod:`nmcompiler.targets.topology`),
    so no route is walked pair by pair; the explicit per-pair links (:attr:`pair_link`)
    are built only where a caller asks for per-step link hops of unicast routes.

    Args:
        target: the :class:`nmcompiler.targets.Target`.
        physical: ``(n_cores,)`` physical core of every logical core (``Placement.core``;
            default: logical core k on physical core k).
        n_cores: number of logical cores.
        routes: the compiled :class:`nmcompiler.mapping.Routes` (``CompiledNetwork.routes``)
            or None: its core pairs are the multicast trees' edges and its hop counts
            the pairs' hops (one routing model for the compile and the run report).
    """

    def __init__(self, target: Target, physical: np.ndarray | None, n_cores: int,
                 routes: Any = None) -> None:
        self.target = target
        self.cost = target.cost
        self.routes = routes
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
        self._along_x = along_x
        self.pair_src = np.zeros(0, dtype=np.int64)
        self.pair_dst = np.zeros(0, dtype=np.int64)
        self.pair_latency = np.zeros(0)
        self.pair_energy = np.zeros(0)
        self.pair_hops = np.zeros(0, dtype=np.int64)
        self._pair_link: sp.csr_matrix | None = None
        self._legs: tuple[np.ndarray, np.ndarray] | None = None
        #: ``(n_cores, n_links)`` links of every core's multicast tree (multicast targets)
        self.core_link: sp.csr_matrix | None = None
        self.multicast = bool(target.noc.multicast_tables)
        self._tables = self._hop_tables()

    # ------------------------------------------------------------------ per pair
    def _hop_tables(self) -> tuple | None:
        """Latency and energy of a route by its hop counts, or None where routes must be
        walked (a mesh with holes, links of unequal cost off a mesh)."""
        noc = self.target.noc
        if self.n_links == 0:
            return None
        if self._along_x is not None:  # mesh: x hops first, then y hops
            ex, ey = noc.extent
            if noc.n_nodes != ex * ey:
                return None
            ax = self._along_x
            tx = self.link_time[ax][0] if ax.any() else 0.0
            ty = self.link_time[~ax][0] if (~ax).any() else 0.0
            exx = self.link_energy[ax][0] if ax.any() else 0.0
            eyy = self.link_energy[~ax][0] if (~ax).any() else 0.0

            def table(fx: float, fy: float) -> np.ndarray:
                t = np.full((ex + 1, ey + 1), float(fy))
                t[:, 0] = _seq(fx, ex)
                return np.cumsum(t, axis=1)

            return ("mesh", table(tx, ty), table(exx, eyy))
        if np.all(self.link_time == self.link_time[0]) and \
                np.all(self.link_energy == self.link_energy[0]):
            m = int(noc.n_nodes)
            return ("uniform", _seq(self.link_time[0], m), _seq(self.link_energy[0], m))
        return None

    def prepare_pairs(self, pairs: int) -> None:
        """Before :meth:`pair_costs` is called for ``pairs`` pairs in all (in chunks,
        perhaps on several threads): make what they read once, the mesh's legs, or where
        hops are counted per router pair the NoC's hop table if it pays
        (:meth:`nmcompiler.targets.topology.NoC.hop_table_pays`; the same numbers)."""
        self.mesh_legs()
        tab = self._tables
        noc = self.target.noc
        if tab is not None and tab[0] != "mesh" and noc.hop_table_pays(int(pairs)):
            noc.hop_table()

    def pair_costs(self, a: np.ndarray, b: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(hops, latency_s, hop_energy_j)`` of a message from logical core ``a[k]`` to
        ``b[k]``: per link of the route its time and energy, summed hop by hop in route
        order (the local spike time where both sit on one router)."""
        tab = self._tables
        noc = self.target.noc
        local = self.cost.time_per_spike_local_s or 0.0
        if tab is None or tab[0] != "mesh":
            na, nb = self.node[a], self.node[b]
        if tab is None:
            indptr, li = route_links(self.target, na, nb)
            k = na.shape[0]
            hops = np.diff(indptr)
            ok = li >= 0
            rows = np.repeat(np.arange(k), hops)
            lat = np.bincount(rows[ok], weights=self.link_time[li[ok]], minlength=k)
            if not ok.all():  # hops on links not in the list (holes): nominal hop time
                for r in rows[~ok]:
                    lat[r] += float(self.cost.time_per_hop_s)
            mat = sp.csr_matrix((np.ones(int(ok.sum())), (rows[ok], li[ok])),
                                shape=(k, self.n_links))
            energy = mat @ self.link_energy
        elif tab[0] == "mesh":
            t = noc.topo
            ex, ey = noc.extent
            xc, yc = self.mesh_legs()  # type: ignore[misc]
            ax = np.abs(_signed(xc[b] - xc[a], ex, bool(t.wrap[0])))
            ay = np.abs(_signed(yc[b] - yc[a], ey, bool(t.wrap[1])))
            hops = ax + ay
            cell = ax * (ey + 1) + ay  # the tables' (ex + 1, ey + 1) cells, flat
            lat, energy = tab[1].ravel()[cell], tab[2].ravel()[cell]
            hops = hops.astype(np.int64)
        else:
            hops = noc.pair_hops(na, nb)
            lat, energy = tab[1][hops], tab[2][hops]
        return hops, np.where(hops == 0, local, lat), energy

    def attach_pairs(self, pair_src: np.ndarray, pair_dst: np.ndarray, *,
                     trees: bool = True) -> None:
        """Hops, latency and hop energy of every communicating logical core pair, and on
        multicast targets (unless ``trees`` is False: a distributed part, whose pairs
        are only some of the network's) every core's tree (the route pass's trees)."""
        self.pair_src = np.asarray(pair_src, dtype=np.int64)
        self.pair_dst = np.asarray(pair_dst, dtype=np.int64)
        self._pair_link = None
        self.pair_hops, self.pair_latency, self.pair_energy = self.pair_costs(
            self.pair_src, self.pair_dst)
        if trees and self.multicast and self.core_link is None:
            self.attach_trees(self.pair_src, self.pair_dst)

    def attach_trees(self, pair_src: np.ndarray, pair_dst: np.ndarray) -> None:
        """``core_link``: the multicast tree of every source core over the pairs' routers
        (:meth:`nmcompiler.targets.topology.NoC.multicast_trees`, as the route pass; a
        population's shared tree where the routes give ``tree_root``)."""
        n_cores = self.physical.shape[0]
        node = self.node
        src = np.asarray(pair_src, dtype=np.int64)
        root = getattr(self.routes, "tree_root", None)  # the route pass's tree per core
        s, _, child, _, link = self.target.noc.multicast_trees(
            node, src, node[np.asarray(pair_dst, dtype=np.int64)], n_cores,
            tree_root=None if root is None else np.asarray(root, dtype=np.int64))
        self.core_link = sp.csr_matrix(
            (np.ones(link.shape[0]), (s[child], link)), shape=(n_cores, self.n_links))

    @property
    def pair_link(self) -> sp.csr_matrix:
        """``(n_pairs, n_links)`` links of every pair's unicast route, built on first use
        (per-step link hops of unicast routes and :func:`evaluate` read it)."""
        if self._pair_link is None:
            na, nb = self.node[self.pair_src], self.node[self.pair_dst]
            indptr, li = route_links(self.target, na, nb)
            k = na.shape[0]
            ok = li >= 0
            rows = np.repeat(np.arange(k), np.diff(indptr))
            self._pair_link = sp.csr_matrix(
                (np.ones(int(ok.sum())), (rows[ok], li[ok])), shape=(k, self.n_links))
        return self._pair_link

    def mesh_legs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """On a mesh without holes: ``(column, row)`` of every logical core's router
        (int32, made once), for :meth:`pair_costs` and :meth:`mesh_plan`; None
        elsewhere."""
        if self._tables is None or self._tables[0] != "mesh":
            return None
        if self._legs is None:
            xy = np.asarray(self.target.noc.node_coords())
            self._legs = (xy[self.node, 0].astype(np.int32), xy[self.node, 1].astype(np.int32))
        return self._legs

    def mesh_plan(self, x_keys: np.ndarray, y_keys: np.ndarray) -> MeshPlan:
        """The fixed part of the loads of x-then-y unicast routes given by their legs
        (aggregated as :meth:`nmcompiler.targets.topology.MeshNoC.core_link_load` does):
        x legs keyed ``core * ex + column`` (messages from a core to a column, along the
        core's row), y legs keyed ``row * n_cores + core`` (messages from a row to a core,
        along its column), each key once. The plan orders the keys by direction and keeps
        where each leg's segment opens and closes; :meth:`plan_loads` then turns messages
        per key into link loads in time linear in the keys."""
        noc = self.target.noc
        assert isinstance(noc, MeshNoC)  # mesh_legs is None elsewhere
        t = noc.topo
        ex, ey = noc.extent
        xc, yc = self.mesh_legs()  # type: ignore[misc]
        c = xc.shape[0]
        it = np.int32 if 2 * max(ex, ey) * max(ex, ey) + max(ex, ey) < 2**31 else np.int64
        s, x1 = np.divmod(np.asarray(x_keys, dtype=np.int64), ex)
        dx = _signed(x1 - xc[s], ex, bool(t.wrap[0]))
        ya, k = np.divmod(np.asarray(y_keys, dtype=np.int64), c)
        dy = _signed(yc[k] - ya, ey, bool(t.wrap[1]))
        ox = np.concatenate([np.flatnonzero(dx > 0), np.flatnonzero(dx < 0),
                             np.flatnonzero(dx == 0)])
        oy = np.concatenate([np.flatnonzero(dy > 0), np.flatnonzero(dy < 0),
                             np.flatnonzero(dy == 0)])
        s, dx, ya, k, dy = s[ox], dx[ox], ya[oy], k[oy], dy[oy]
        nr, nl = int((dx > 0).sum()), int((dx < 0).sum())
        nu, nd = int((dy > 0).sum()), int((dy < 0).sum())
        x0, y0, xb = xc[s], yc[s], xc[k]
        r, le = slice(0, nr), slice(nr, nr + nl)
        u, dn = slice(0, nu), slice(nu, nu + nd)
        parts = []
        for leg, sl, line, start, length, e, n, rev in (
                (0, r, y0[r], x0[r], dx[r], ex, ey, False),
                (0, le, y0[le], ex - 1 - x0[le], -dx[le], ex, ey, True),
                (1, u, xb[u], ya[u], dy[u], ey, ex, False),
                (1, dn, xb[dn], ey - 1 - ya[dn], -dy[dn], ey, ex, True)):
            at, end = _run_ends(line, start, length, e)
            parts.append((leg, sl, at.astype(it), end.astype(it), e, n, rev))
        return MeshPlan(x_keys=np.asarray(x_keys)[ox], y_keys=np.asarray(y_keys)[oy],
                        parts=tuple(parts))

    def plan_loads(self, plan: MeshPlan, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
        """``(n_links,)`` loads of :meth:`mesh_plan`'s legs carrying ``mx`` / ``my``
        messages (per key, in the plan's order)."""
        noc = self.target.noc
        assert isinstance(noc, MeshNoC)
        grids = []
        for leg, sl, at, end, e, n, rev in plan.parts:
            g = _run_sum(at, end, (mx if leg == 0 else my)[sl], e, n)
            grids.append(g[:, ::-1] if rev else g)
        return noc.gather_loads(*grids).astype(np.float64)

    def link_loads(self, src: np.ndarray, dst: np.ndarray, m: np.ndarray) -> np.ndarray:
        """``(n_links,)`` messages on each link when logical core ``src[k]`` sends
        ``m[k]`` unicast messages to ``dst[k]`` (the compiler's aggregated loads,
        :meth:`nmcompiler.targets.topology.NoC.core_link_load`)."""
        _, load = self.target.noc.core_link_load(
            self.node, np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64),
            np.asarray(m))
        return np.asarray(load, dtype=np.float64)

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

    def finish(self, pair_totals: np.ndarray | None = None, *,
               link_totals: np.ndarray | None = None) -> dict[str, Any]:
        """:func:`evaluate`'s dict. When the link hops are not kept per step their run
        totals are ``link_totals (1, n_links)`` or, from the run's messages per core pair
        ``pair_totals (n_pairs,)``, their unicast routes' loads."""
        if link_totals is None and pair_totals is not None and self.link_hops is None:
            link_totals = self.tables.pair_link.T @ np.asarray(pair_totals)
        tables, c, z = self.tables, self.tables.cost, self.z
        t_steps = self.steps
        if self.link_hops is not None:
            link_hops = self.link_hops
            e_route = link_hops @ tables.link_energy if tables.n_links else np.zeros(t_steps)
        else:
            link_hops = np.asarray(link_totals, dtype=np.float64).reshape(1, -1)
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
