"""The *place* pass: logical cores -> physical cores of the target's network.

Objective (the same for every method): ``cost = sum over core-graph edges of messages x
hops(physical src, physical dst)`` with ``target.hops`` (mesh: Manhattan distance
between routers; SpiNNaker: the triangular-torus distance between chips; Speck: 1),
i.e. the quadratic assignment problem of Koopmans & Beckmann (1957). The heuristic also
balances links: a batch of moves is kept only if ``cost + link_weight * max link load``
(dimension-order / shortest-path unicast routes) does not grow.

Methods:

``"cpsat"`` -- an exact model for OR-Tools CP-SAT (Perron & Didier, Google OR-Tools):
Boolean ``x[i, v]`` (logical core i on router v), capacity ``sum_i x[i, v] <= cores of
v``, router coordinates ``X_i = sum_v x_v x[i, v]`` and per edge the hop count as linear
constraints: ``h >= |X_i - X_j| + |Y_i - Y_j|`` on a mesh, ``h >= max(|dx|, |dy|,
|dx - dy|)`` on SpiNNaker's triangular lattice (the hexagonal distance), and an element
table of ``target.hops`` on wrapped or other topologies. It runs with a *deterministic*
time limit (``max_deterministic_time``), one worker, a fixed ``random_seed`` and
``interleave_search`` off, so the same seed gives the same answer; a wall-clock limit of
three times that only guards against a slow machine (only when it, rather than the
deterministic limit, ends the search can two runs differ). The heuristic's placement
is its hint, so CP-SAT never returns worse.

``"heuristic"`` -- dual recursive bipartitioning (F. Pellegrini, "Static mapping by dual
recursive bipartitioning of process and architecture graphs", SHPCC 1994, as in Scotch):
the physical cores are cut in two along the longer axis of the router grid and the core
graph is bisected by METIS (Karypis & Kumar 1998) into parts of matching sizes,
recursively; then a Kernighan-Lin style pairwise-swap local search (B. W. Kernighan and
S. Lin, Bell Syst. Tech. J. 49(2), 1970), batched: each round draws candidate moves of a
logical core next to one of its heavier neighbours (seeded), computes every candidate's
exact cost change vectorised over the sparse core graph, applies the best
non-conflicting improving swaps and keeps the batch only if the total objective fell.
Departures: no tentative (negative-gain) moves as in full KL, a fixed work budget
instead of a time limit (so the result is deterministic for a seed).

``"auto"`` -- the heuristic, then CP-SAT when the instance is small
(``cpsat_max_cores`` logical cores), keeping the better.

``"sequential"`` (logical core i on physical core i, the fill order of sPyNNaker's and
Lava's mappers) and ``"random"`` (a seeded permutation) are the baselines.

Speck: layers are matched to the 9 cores by a maximum bipartite matching (as sinabs'
``get_valid_mapping``, Edmonds-Karp max-flow) over the cores whose kernel, neuron and bias
memory fit the layer; with at most 2 destinations per core (checked by partition).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nmcompiler.ir.errors import FitError, UsageError

from ...mapping import Partition, Placement
from ...targets import Target
from ..base import CompileState, Pass, PassResult, clean_record
from .cpsat import cpsat_place
from .geometry import Geometry, edge_cost, graph_edges, hop_matrix, placement_cost, symmetric_graph
from .heuristic import bisection_start, local_search, snake_start
from .layers import place_layers

__all__ = ["place", "place_with_link_load", "placement_cost", "hop_matrix", "PlacePass"]


# =========================================================================== the pass
def place(
    part: Partition,
    target: Target,
    *,
    seed: int = 0,
    method: str = "auto",
    time_limit_s: float = 10.0,
    cpsat_max_cores: int = 8,
    effort: int = 20_000_000,
    link_weight: float = 0.1,
) -> Placement:
    """Place the logical cores of ``part`` on ``target``: :func:`place_with_link_load`
    without the link load."""
    return place_with_link_load(part, target, seed=seed, method=method,
                                time_limit_s=time_limit_s, cpsat_max_cores=cpsat_max_cores,
                                effort=effort, link_weight=link_weight)[0]


def place_with_link_load(
    part: Partition,
    target: Target,
    *,
    seed: int = 0,
    method: str = "auto",
    time_limit_s: float = 10.0,
    cpsat_max_cores: int = 8,
    effort: int = 20_000_000,
    link_weight: float = 0.1,
) -> tuple[Placement, np.ndarray | None]:
    """Place the logical cores of ``part`` on ``target`` (see the module docstring).

    Returns the placement and the unicast link load of its routes (``target.links()``
    order; None for layer placements), which the route pass takes instead of routing
    the same pairs again.

    Args:
        part: the partition.
        target: the target it was made for.
        seed: seeds METIS, the local search and CP-SAT; same seed -> same placement.
        method: ``"auto"``, ``"cpsat"``, ``"heuristic"``, ``"sequential"``, ``"random"``.
        time_limit_s: CP-SAT's deterministic time limit (about seconds).
        cpsat_max_cores: ``auto`` runs CP-SAT up to this many logical cores (and at
            most 2048 core x router variables).
        effort: work budget of the local search (core-graph entries examined).
        link_weight: weight of the max link load in the heuristic's acceptance test.

    Raises:
        FitError: more logical cores than physical ones, or (Speck) no core assignment.
    """
    if method not in ("auto", "cpsat", "heuristic", "sequential", "random"):
        raise UsageError(f"unknown placement method {method!r}", obj="place", rule="method",
                         hint="use auto, cpsat, heuristic, sequential or random")
    t0 = time.perf_counter()
    if part.method == "layers" or target.noc.layered:
        out = place_layers(part, target, seed)
        out.stats["time_s"] = round(time.perf_counter() - t0, 3)
        return out, None
    c = int(part.n_cores)
    if c > target.total_cores:
        raise FitError(
            f"partition has {c} cores; {target.name} has {target.total_cores}",
            obj="network", rule="cores", need=c, limit=int(target.total_cores),
            hint="use a target with more chips")
    geo = Geometry(target)
    n_edges = int(part.edge_src.shape[0])
    # a large near-complete core graph (random networks): every placement costs about the
    # same (a full local-search round on 2,654 cores at density 0.7 gained 0.4%), so it
    # keeps the snake start and never builds the symmetric graph (up to 2e8 entries)
    dense = method in ("auto", "heuristic") and n_edges > 500_000 and n_edges > 0.1 * c * c
    g = None if dense else symmetric_graph(part)
    stats: dict[str, Any] = {}
    rng = np.random.default_rng(seed)
    optimal = False
    bound = None
    if method == "sequential":
        pos = np.arange(c, dtype=np.int64)
    elif method == "random":
        pos = rng.permutation(geo.n_phys)[:c].astype(np.int64)
    else:
        pos = None
        if geo.n_nodes == 1:  # one router (one SpiNNaker 2 chip): every placement costs 0
            pos = geo.node_cores[:c].astype(np.int64)
            stats["single_router"] = True
        elif dense:
            pos = snake_start(geo, c)
            stats["dense_core_graph"] = True
            stats["local_search_budget"] = 0
        elif method in ("auto", "heuristic") or c > 0:
            # two starts (dual recursive bipartitioning; the logical order laid along a
            # snake through a compact region), each improved by local search; keep the best
            starts = [snake_start(geo, c)]
            if g.nnz <= min(2_000_000, 0.5 * c * c):  # bisecting a near-complete graph:
                # no gain
                starts.insert(0, bisection_start(geo, g, seed))
            # effort scaled to the core graph: a few passes over its entries, and none on
            # a large near-complete graph (every placement costs about the same there;
            # measured gain of a full round on 2,654 cores at density 0.7: 0.4%)
            budget = min(effort // 2, max(1_000_000, 16 * int(g.nnz)))
            stats["local_search_budget"] = budget
            e_src, e_dst, e_w = graph_edges(g)
            best = None
            for k, start in enumerate(starts):
                st: dict[str, Any] = {}
                cand = start if budget == 0 else local_search(
                    geo, g, start, np.random.default_rng([seed, k]), budget, link_weight,
                    part, st)
                cost_k = edge_cost(geo, e_src, e_dst, e_w, cand)
                stats[f"start{k}_cost"] = [edge_cost(geo, e_src, e_dst, e_w, start), cost_k]
                if best is None or cost_k < best[0]:
                    best = (cost_k, cand, st)
            pos = best[1]
            stats.update(best[2])
        small = 1 < c <= cpsat_max_cores and c * geo.n_nodes <= 2048 and g is not None
        trivial = pos is not None and (geo.n_nodes == 1 or (  # already optimal
            g is not None and edge_cost(geo, *graph_edges(g), pos) == 0))
        if trivial and method == "auto":
            optimal, bound = True, 0.0
        if method == "cpsat" or (method == "auto" and small and not trivial):
            g = symmetric_graph(part) if g is None else g
            sol, optimal, bound = cpsat_place(geo, g, pos, seed, time_limit_s, stats)
            if sol is not None and (pos is None or edge_cost(geo, *graph_edges(g), sol)
                                    <= edge_cost(geo, *graph_edges(g), pos)):
                pos = sol
            else:
                optimal = False
    method_used = method if method != "auto" else \
        ("cpsat" if "cpsat_status" in stats else "heuristic")
    core = pos.astype(np.int64)
    node = geo.core_node[core]  # router of each logical core
    msgs_e = part.edge_messages.astype(np.int64, copy=False)
    n_e = int(part.edge_src.shape[0])
    # sum(messages x hops) in chunks (integers: exact in any order), no (edges,) int64
    # temporaries of the router of every edge end (up to 1e8 edges)
    cost = edge_cost(geo, part.edge_src, part.edge_dst, msgs_e, core, chunk=1 << 22) \
        if n_e else 0
    _, load = target.noc.core_link_load(node, part.edge_src, part.edge_dst, msgs_e)
    stats["time_s"] = round(time.perf_counter() - t0, 3)
    msgs = int(part.messages)
    placement = Placement(target=target.name, core=core,
                          coords=np.asarray(target.core_coords())[core], cost=cost,
                          messages=msgs, mean_hops=cost / msgs if msgs else 0.0,
                          max_link_load=int(load.max(initial=0)), method=method_used,
                          optimal=bool(optimal), lower_bound=bound, seed=int(seed),
                          stats=stats)
    return placement, load


# =========================================================================== the pass class
@dataclass(frozen=True, slots=True, kw_only=True)
class PlacePass(Pass):
    """:func:`place_with_link_load` as a pipeline pass; the fields are its options. The
    link load of the placement goes to the route pass through the state."""

    name: ClassVar[str] = "place"
    requires: ClassVar[frozenset[str]] = frozenset({"partitioned"})
    ensures: ClassVar[frozenset[str]] = frozenset({"placed"})
    method: str = "auto"
    time_limit_s: float = 10.0
    cpsat_max_cores: int = 8
    effort: int = 20_000_000
    link_weight: float = 0.1

    def run(self, state: CompileState) -> PassResult:  # noqa: D102
        assert state.partition is not None  # requires "partitioned"
        opts = self.options()
        opts["method"] = getattr(self.method, "value", self.method)  # a PlaceMethod too
        pl, load = place_with_link_load(state.partition, state.target, seed=state.seed,
                                        **opts)
        pl, timings = clean_record(pl)
        return PassResult(state=state.replace(placement=pl, link_load=load),
                          report=pl.report(), changed=False, timings=timings)
