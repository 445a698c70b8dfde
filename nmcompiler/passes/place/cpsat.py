"""Exact placement with OR-Tools CP-SAT (Perron and Didier), deterministic time limit."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .geometry import Geometry, hop_matrix


# =========================================================================== CP-SAT
def cpsat_place(geo: Geometry, g: sp.csr_matrix, hint: np.ndarray | None, seed: int,
           time_limit_s: float, stats: dict[str, Any]
           ) -> tuple[np.ndarray | None, bool, float | None]:
    """Place cores on nodes with CP-SAT, minimising weighted hops.

    Returns:
        The node of every core (None if no solution), whether it is optimal, the objective."""
    from ortools.sat.python import cp_model

    t = geo.target
    c = g.shape[0]
    n_nodes = geo.n_nodes
    cap = np.diff(geo.node_cores_ptr)
    coo = g.tocoo()
    up = coo.row < coo.col
    es, ed = coo.row[up], coo.col[up]
    ew = np.rint(coo.data[up]).astype(np.int64)
    m = cp_model.CpModel()
    x = [[m.new_bool_var(f"x{i}_{v}") for v in range(n_nodes)] for i in range(c)]
    for i in range(c):
        m.add_exactly_one(x[i])
    for v in range(n_nodes):
        m.add(sum(x[i][v] for i in range(c)) <= int(cap[v]))
    xs, ys = geo.node_xy[:, 0], geo.node_xy[:, 1]
    metric = t.noc.metric
    coords = metric is not None and not any(t.topology.wrap)
    hmax = int(geo.H.max()) if geo.H is not None else 64
    terms = []
    if coords:
        xmin, xmax, ymin, ymax = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        X = [m.new_int_var(xmin, xmax, f"X{i}") for i in range(c)]
        Y = [m.new_int_var(ymin, ymax, f"Y{i}") for i in range(c)]
        for i in range(c):
            m.add(X[i] == sum(int(xs[v]) * x[i][v] for v in range(n_nodes)))
            m.add(Y[i] == sum(int(ys[v]) * x[i][v] for v in range(n_nodes)))
        full = (len(t.topology.chips) == t.topology.chip_grid[0] * t.topology.chip_grid[1]
                and np.all(cap == cap[0]))
        if full:  # translations preserve hops: some core sits on the lowest row / column
            m.add_min_equality(xmin, X)
            m.add_min_equality(ymin, Y)
            stats["cpsat_symmetry_breaking"] = True
        for e, (i, j) in enumerate(zip(es.tolist(), ed.tolist(), strict=True)):
            h = m.new_int_var(0, hmax, f"h{e}")
            ax = m.new_int_var(0, xmax - xmin, f"ax{e}")
            ay = m.new_int_var(0, ymax - ymin, f"ay{e}")
            m.add(ax >= X[i] - X[j])
            m.add(ax >= X[j] - X[i])
            m.add(ay >= Y[i] - Y[j])
            m.add(ay >= Y[j] - Y[i])
            if metric == "manhattan":
                m.add(h >= ax + ay)
            else:  # hexagonal distance on the triangular lattice
                m.add(h >= ax)
                m.add(h >= ay)
                m.add(h >= X[i] - X[j] - Y[i] + Y[j])
                m.add(h >= X[j] - X[i] - Y[j] + Y[i])
            terms.append(int(ew[e]) * h)
    else:
        H = geo.H if geo.H is not None else hop_matrix(t)
        flat = [int(v) for v in H.astype(np.int64).ravel()]
        node = [m.new_int_var(0, n_nodes - 1, f"n{i}") for i in range(c)]
        for i in range(c):
            m.add(node[i] == sum(v * x[i][v] for v in range(n_nodes)))
        for e, (i, j) in enumerate(zip(es.tolist(), ed.tolist(), strict=True)):
            idx = m.new_int_var(0, n_nodes * n_nodes - 1, f"k{e}")
            m.add(idx == node[i] * n_nodes + node[j])
            h = m.new_int_var(0, int(H.max()), f"h{e}")
            m.add_element(idx, flat, h)
            terms.append(int(ew[e]) * h)
    m.minimize(sum(terms) if terms else 0)
    if hint is not None:
        hn = geo.core_node[hint]
        for i in range(c):
            for v in range(n_nodes):
                m.add_hint(x[i][v], int(hn[i] == v))
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = 1
    prm.random_seed = int(seed) % (2**31 - 1)
    prm.interleave_search = False
    prm.max_deterministic_time = float(time_limit_s)
    prm.max_time_in_seconds = float(time_limit_s) * 3
    status = solver.solve(m)
    stats["cpsat_status"] = solver.status_name(status)
    stats["cpsat_wall_s"] = round(solver.wall_time, 3)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, False, None
    nodes = np.array([next(v for v in range(n_nodes) if solver.value(x[i][v]))
                      for i in range(c)], dtype=np.int64)
    # cores within a router: in slot order
    pos = np.empty(c, dtype=np.int64)
    fill = np.zeros(n_nodes, dtype=np.int64)
    for i in range(c):
        v = nodes[i]
        pos[i] = geo.node_cores[geo.node_cores_ptr[v] + fill[v]]
        fill[v] += 1
    return pos, status == cp_model.OPTIMAL, float(solver.best_objective_bound)
