"""Step 3 of lowering: retiming (C. E. Leiserson and J. B. Saxe, "Retiming synchronous
circuitry", Algorithmica 6, 1991) so that every projection has at least the target's
minimum delay, shifting outputs where needed."""

from __future__ import annotations

import dataclasses
from typing import Any

import networkx as nx
import numpy as np

from nmcompiler.ir.connectivity import Dense
from nmcompiler.ir.errors import RetimingError, UsageError
from nmcompiler.ir.models import IF
from nmcompiler.ir.network import Network, Population, Projection

from .common import SOURCE, delay_range, unique_name, with_delays


# =========================================================================== 3. retiming
def _loop_text(nodes: list[str]) -> str:
    return " -> ".join(nodes + nodes[:1])


def _constraint_graph(
    net: Network, d_min: int, d_max: int | None, lo_override: dict[str, int]
) -> nx.DiGraph:
    """Edges a -> b with weight c encode dist(b) - dist(a) <= c, where dist = -lag."""
    g = nx.DiGraph()
    g.add_nodes_from(list(net.inputs) + list(net.populations) + [SOURCE])

    def add(a: str, b: str, c: int) -> None:
        if g.has_edge(a, b):
            c = min(c, g[a][b]["weight"])
        g.add_edge(a, b, weight=c)

    for x in list(net.inputs) + list(net.populations):
        add(SOURCE, x, 0)  # lag >= 0
    for x in net.inputs:
        add(x, SOURCE, 0)  # inputs: lag exactly 0
    for p in net.projections.values():
        lo, hi = delay_range(p)
        lo += lo_override.get(p.name, 0)
        hi += lo_override.get(p.name, 0)
        add(p.pre, p.post, lo - d_min)  # d_lo + r(post) - r(pre) >= d_min
        if d_max is not None and hi <= d_max:
            add(p.post, p.pre, d_max - hi)  # d_hi + r(post) - r(pre) <= d_max
    return g


def _solve(g: nx.DiGraph) -> dict[str, int] | list[str]:
    """Lags, or the nodes of a loop with too little delay."""
    try:
        dist = nx.single_source_bellman_ford_path_length(g, SOURCE, weight="weight")
    except nx.NetworkXUnbounded:
        cyc = nx.find_negative_cycle(g, SOURCE, weight="weight")
        return [c for c in cyc[:-1]]
    return {k: -int(v) for k, v in dist.items() if k != SOURCE}


def _is_bias_source(net: Network, name: str) -> bool:
    """A one-neuron IF population that fires every step from step 0 (the NIR importer's
    and this pass's bias source)."""
    pop = net.populations[name]
    m = pop.model
    return (isinstance(m, IF) and pop.size == 1 and bool(m.fire_at_threshold)
            and float(np.asarray(m.bias)) == 1.0 and float(np.asarray(m.theta)) == 1.0
            and not m.noise and not m.refractory and not m.graded
            and not any(p.post == name for p in net.projections.values()))


def _start_biases(
    net: Network, lags: dict[str, int], d_min: int
) -> tuple[dict[str, Population], dict[str, Projection], dict[str, str], dict[str, str]]:
    """Start the bias of every lagged population at step ``r(v)``, as the original network
    starts it at step 0.

    A population of lag ``r > 0`` whose bias ``b`` (real) would act before its first input
    can arrive gets bias 0 and a projection of weight ``b`` and delay ``r`` from a bias
    source (a one-neuron IF population that fires every step from step 0, shared by all).
    The bias then enters through the current stage, so with ``alpha_u != 0`` a second
    projection of weight ``-alpha_u * b`` and delay ``r + 1`` cancels the current's
    memory: ``u_b[r] = b`` and ``u_b[t] = alpha_u * b + b - alpha_u * b = b`` after, the
    bias the original adds to ``v`` each step (exact in integer arithmetic; in floating
    point up to the rounding of a reordered sum).

    Returns ``(populations, new projections, population -> source, inexact population ->
    reason)``.
    """
    pops = net.populations
    extra: dict[str, Projection] = {}
    moved: dict[str, str] = {}
    inexact: dict[str, str] = {}
    src: str | None = next((n for n in pops if lags.get(n, 0) == 0
                            and _is_bias_source(net, n)), None)
    new_pops: dict[str, Population] = {}
    taken = set(net.populations) | set(net.inputs) | set(net.projections)
    for name, pop in net.populations.items():
        r = int(lags[name])
        m = pop.model
        if r == 0:
            continue
        bias = np.asarray(m.bias)
        # a memoryless population whose bias alone cannot fire it starts early harmlessly
        harmless = (np.all(np.asarray(m.lam) == 0) and np.all(np.asarray(m.alpha_u) == 0)
                    and np.all(bias < np.asarray(m.theta)) and not m.refractory)
        if m.noise:
            inexact[name] = (f"noise: its random draws start {r} step(s) early "
                             "(no start time on the chip)")
            continue
        if not np.any(bias != 0) or harmless:
            continue
        if bias.dtype.kind == "c":
            inexact[name] = "complex bias: a bias source carries real weights only"
            continue
        if r < d_min:
            inexact[name] = (f"lag {r} is below the minimum delay {d_min}: a bias source "
                             "cannot start its bias in time")
            continue
        if src is None:
            src = unique_name("bias_source", taken)
            new_pops[src] = Population(
                name=src, shape=(1,),
                model=IF(theta=1.0, bias=1.0, fire_at_threshold=True))
        n = pop.size
        b = np.broadcast_to(bias.astype(np.float64), (n,)).copy()
        alpha = np.broadcast_to(np.asarray(m.alpha_u, dtype=np.float64), (n,))
        pname = unique_name(f"{src}->{name}.bias", taken)
        extra[pname] = Projection(name=pname, pre=src, post=name,
                                  conn=Dense(weight=b[:, None]), delay=r)
        if np.any(alpha * b != 0):
            pname = unique_name(f"{src}->{name}.bias_decay", taken)
            extra[pname] = Projection(name=pname, pre=src, post=name,
                                      conn=Dense(weight=(-alpha * b)[:, None]), delay=r + 1)
        new_pops[name] = Population(name=name, shape=pop.shape,
                                    model=dataclasses.replace(m, bias=0.0))
        moved[name] = src
    if not new_pops:
        return pops, extra, moved, inexact
    out = {k: new_pops.get(k, v) for k, v in pops.items()}
    for k, v in new_pops.items():
        out.setdefault(k, v)
    return out, extra, moved, inexact


def retime(
    net: Network,
    d_min: int,
    *,
    d_max: int | None = None,
    force: bool = False,
    target_name: str = "the target",
) -> tuple[Network, dict]:
    """Leiserson-Saxe retiming to a minimum delay ``d_min`` (and, if possible, ``d_max``).

    Graph: nodes are inputs and populations, each projection ``e = u -> v`` an edge whose
    register count is its delay (smallest and largest synapse delay ``d_lo(e)``,
    ``d_hi(e)``). Unknowns: integer lags ``r(v) >= 0`` with ``r(input) = 0``. Constraints
    (a difference-constraint system, Leiserson & Saxe 1991, section 4):

    * ``r(v) - r(u) >= d_min - d_lo(e)`` for every projection (every delay >= ``d_min``);
    * ``r(v) - r(u) <= d_max - d_hi(e)`` for projections already within ``d_max`` (tried
      first; dropped if infeasible, the long delays then go to relay chains).

    With ``dist = -r`` each constraint is an edge of a constraint graph and Bellman-Ford from
    a source joined to every node by weight 0 gives the pointwise smallest lags. It has a
    negative cycle exactly when a loop ``C`` has ``sum_{e in C} d_lo(e) < d_min |C|``:
    then no retiming exists and :class:`RetimingError` names the loop, unless ``force``,
    which raises the short delays on each such loop to ``d_min`` and reports the loop's
    delay before and after. The retimed delay is ``d'(e) = d(e) + r(v) - r(u)``.

    Behaviour: population ``v`` of the result emits at step ``t + r(v)`` exactly what ``v``
    of ``net`` emitted at step ``t`` (its first ``r(v)`` steps are silent); outputs and
    probes shift likewise. A lagged population with a bias must not integrate it during
    its first ``r(v)`` steps: its bias moves to a bias source (:func:`_start_biases`), a
    projection that starts delivering it at step ``r(v)``. What cannot be started late
    (noise, a complex bias, a lag below ``d_min``) is listed in the report's
    ``inexact_populations`` with a reason (docs/passes.md#retiming).
    """
    if d_min < 0:
        raise UsageError(f"d_min must be >= 0, got {d_min}", obj="retime", hint="pass 0 or 1")
    report: dict[str, Any] = {"min_delay": int(d_min), "max_delay": d_max, "forced_loops": []}
    override: dict[str, int] = {}
    if d_min == 0:
        lags: dict[str, int] = {x: 0 for x in list(net.inputs) + list(net.populations)}
    else:
        while True:
            sol = _solve(_constraint_graph(net, d_min, None, override))
            if isinstance(sol, dict):
                break
            loop = sol
            edges = []
            total_before = 0
            total_after = 0
            for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
                cands = [p for p in net.projections.values() if p.pre == a and p.post == b]
                best = min(cands, key=lambda p: delay_range(p)[0] + override.get(p.name, 0))
                lo = delay_range(best)[0] + override.get(best.name, 0)
                total_before += lo
                total_after += max(lo, d_min)
                edges.append((best, lo))
            if not force:
                short = [p.name for p, lo in edges if lo < d_min]
                text = _loop_text(loop)
                raise RetimingError(
                    f"loop {text} has {total_before} step(s) of delay over {len(loop)} "
                    f"projection(s); {target_name} delivers a spike no sooner than "
                    f"{d_min} step(s) per projection, so the loop needs at least "
                    f"{d_min * len(loop)}: no retiming exists",
                    obj=text, rule="loop delay >= min_delay x projections in the loop",
                    need=d_min * len(loop), limit=total_before,
                    hint=f"add {d_min * len(loop) - total_before} step(s) of delay inside "
                    f"the loop, or compile with force=True, which raises "
                    f"{', '.join(repr(s) for s in short)} to {d_min} step(s) and changes "
                    f"the loop's delay from {total_before} to {total_after} steps",
                )
            raised = []
            for a, b in zip(loop, loop[1:] + loop[:1], strict=True):
                for p in net.projections.values():
                    if p.pre == a and p.post == b:
                        lo = delay_range(p)[0] + override.get(p.name, 0)
                        if lo < d_min:
                            override[p.name] = override.get(p.name, 0) + d_min - lo
                            raised.append(p.name)
            report["forced_loops"].append({
                "loop": loop, "projections": raised, "delay_before": total_before,
                "delay_after": total_after,
                "statement": f"loop {_loop_text(loop)}: round-trip delay changed from "
                             f"{total_before} to {total_after} steps (behaviour changed)",
            })
        lags = sol
        if d_max is not None:
            up = _solve(_constraint_graph(net, d_min, d_max, override))
            if isinstance(up, dict):
                lags = up
                report["respects_max_delay"] = True
            else:
                report["respects_max_delay"] = False
    projs = {}
    changed = {}
    for name, p in net.projections.items():
        extra = getattr(p.conn, "delays", None)
        conn = p.conn
        base = int(p.delay) + override.get(name, 0)
        if extra is not None and np.size(extra):
            m = int(np.min(extra))
            if m:
                base += m
                conn = with_delays(conn, np.asarray(extra) - m)
        new = base + lags[p.post] - lags[p.pre]
        if new != p.delay or conn is not p.conn:
            changed[name] = [int(p.delay), int(new)]
        projs[name] = Projection(name=name, pre=p.pre, post=p.post, conn=conn, delay=int(new))
    report["lags"] = {k: int(v) for k, v in lags.items() if k in net.populations}
    report["changed_projections"] = changed
    report["outputs"] = {
        o.name: {"population": o.source, "shift": int(lags[o.source]),
                 "statement": f"output '{o.name}' is shifted by {int(lags[o.source])} "
                              f"step(s): new[t + {int(lags[o.source])}] = original[t]"}
        for o in net.outputs.values()
    }
    report["probes"] = {pr.key: int(lags[pr.target]) for pr in net.probes}
    pops, extra, moved, inexact = _start_biases(net, lags, d_min)
    projs.update(extra)
    for name in extra:
        changed[name] = [None, int(extra[name].delay)]
    if moved:  # (keys only where used: reports of other networks keep their bytes)
        report["bias_sources"] = moved
    report["inexact_populations"] = sorted(inexact)
    if inexact:
        report["inexact_reasons"] = inexact
    if inexact:
        report["inexact_note"] = (
            "these populations have a lag > 0 and run their lag's worth of steps early "
            "(noise, or a bias that cannot come from a bias source); the shift is exact "
            "for every other population")
    if not changed and pops is net.populations:
        return net, report
    return net.replace(populations=pops, projections=projs), report
