"""The *lower* pass: make a network's structure something the target can execute.

Four steps, in this order (docs/passes.md gives the formulas and worked examples):

1. **Convolution and pooling expansion.** On a target without convolution hardware every
   :class:`~nmcompiler.ir.Conv2d`, :class:`~nmcompiler.ir.SumPool2d` and
   :class:`~nmcompiler.ir.AvgPool2d` projection becomes an :class:`~nmcompiler.ir.Sparse`
   projection with exactly the same synapses (vectorised index
   arithmetic; synapses of weight 0 and padding positions are not stored). Targets with
   convolution hardware (Speck) keep them, and their geometry is checked against the
   target's ``[convolution]`` limits.
2. **Fan-in split.** A neuron whose inputs come from more presynaptic neurons than a core
   has input axons cannot be placed. Where the target has graded spikes, its inputs are
   cut into chunks of at most ``input_axons`` axons, each summed by a *partial-sum relay*
   (a memoryless graded neuron that sends its partial sum as an integer payload through
   a zero-delay projection): exact in the IR when the weights lie on a grid ``q`` (a
   power of two, found or given) and the payloads fit the target's payload bits.
   Otherwise a :class:`~nmcompiler.ir.errors.FitError` names the population, the need and the limit.
3. **Retiming** (Leiserson & Saxe, "Retiming synchronous circuitry", Algorithmica 6, 1991):
   every projection gets at least the target's minimum delay by giving each population a
   lag ``r(v) >= 0`` (inputs: 0); a projection ``u -> v`` of delay ``d`` gets
   ``d' = d + r(v) - r(u)``. The lags are the solution of the difference constraints
   ``r(v) - r(u) >= d_min - d(e)`` (and, where possible, ``d' <= d_max``), found by
   Bellman-Ford on the constraint graph. Behaviour is preserved up to a shift: population
   ``v`` of the result emits at step ``t + r(v)`` what the original emitted at step ``t``.
   A loop with fewer delay steps than ``d_min`` times its projections has no retiming:
   :class:`~nmcompiler.ir.errors.RetimingError` names it, or ``force=True`` raises its short delays
   and reports how the loop's timing changed.
4. **Long delays.** A delay beyond the target's ``max_delay`` is split over a chain of
   relay neurons (one per presynaptic neuron and hop: an IF neuron with threshold 0.5
   that repeats every binary spike; a memoryless graded neuron for graded sources), each
   hop at most ``max_delay``; per-synapse delays are split into per-delay projections on
   targets without per-synapse delays. ``long_delays="error"`` raises instead.

All steps are pure and vectorised over synapses; the report states every change.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np

from nmcompiler.ir.connectivity import (
    AvgPool2d,
    Conv2d,
    Dense,
    OneToOne,
    Sparse,
    SumPool2d,
    _pair,
    conv_output_shape,
)
from nmcompiler.ir.errors import FitError, RetimingError, UsageError
from nmcompiler.ir.models import IF, LIF, Reset
from nmcompiler.ir.network import Network, Population, Projection

__all__ = [
    "lower",
    "expand_convolutions",
    "conv_to_sparse",
    "pool_to_sparse",
    "split_fan_in",
    "retime",
    "split_long_delays",
    "fan_in",
]

_SOURCE = "\x00source"


# =========================================================================== helpers
def _delay_range(proj: Projection) -> tuple[int, int]:
    """(smallest, largest) total delay of the synapses of ``proj``."""
    d = int(proj.delay)
    extra = getattr(proj.conn, "delays", None)
    if extra is not None and np.size(extra):
        return d + int(np.min(extra)), d + int(np.max(extra))
    return d, d


def _to_coo(net: Network, proj: Projection) -> tuple[np.ndarray, ...]:
    """(pre, post, weight, extra delays or None) of a Dense / Sparse / OneToOne projection."""
    conn = proj.conn
    if isinstance(conn, Dense):
        post, pre = np.nonzero(conn.weight)
        w = conn.weight[post, pre]
        dl = None if conn.delays is None else np.asarray(conn.delays)[post, pre]
        return pre.astype(np.int64), post.astype(np.int64), w, dl
    if isinstance(conn, Sparse):
        dl = None if conn.delays is None else np.asarray(conn.delays)
        return conn.pre_index(), conn.indices.astype(np.int64), conn.weight, dl
    if isinstance(conn, OneToOne):
        n = net.size_of(proj.pre)
        idx = np.arange(n, dtype=np.int64)
        w = np.broadcast_to(np.asarray(conn.weight, dtype=np.float64), (n,)).copy()
        dl = None if conn.delays is None else np.asarray(conn.delays)
        return idx, idx.copy(), w, dl
    sp = _grid_to_sparse(net, proj)
    return sp.pre_index(), sp.indices.astype(np.int64), sp.weight, None


def _grid_to_sparse(net: Network, proj: Projection) -> Sparse:
    conn = proj.conn
    in_shape = net.shape_of(proj.pre)
    if isinstance(conn, Conv2d):
        return conv_to_sparse(conn, in_shape)  # type: ignore[arg-type]
    return pool_to_sparse(conn, in_shape)  # type: ignore[arg-type]


def _unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    taken.add(name)
    return name


def _py(x: Any) -> Any:
    """numpy scalars -> Python numbers (reports are JSON)."""
    if isinstance(x, np.generic):
        return x.item()
    return x


# =========================================================================== 1. expansion
def conv_to_sparse(
    conv: Conv2d, in_shape: tuple[int, int, int], *, keep_zeros: bool = False,
    chunk: int = 1 << 22,
) -> Sparse:
    """The synapses of a 2-D convolution as a :class:`~nmcompiler.ir.Sparse` (CSR by presynaptic).

    PyTorch's conventions (OIHW weights, CHW activations flattened in C order, stride,
    zero padding, dilation, groups). Output neuron ``(o, y, x)`` receives input
    ``(c, y*sh - ph + i*dh, x*sw - pw + j*dw)`` with weight ``W[o, c mod Cg, i, j]`` for
    ``c`` in group ``o // (O / groups)``; positions in the padding have no synapse, and
    kernel entries equal to 0 are dropped unless ``keep_zeros``. Vectorised over kernel
    entries x output positions, in chunks of about ``chunk`` candidate synapses.
    """
    c_in, h, w = (int(x) for x in in_shape)
    weight = np.asarray(conv.weight)
    o_n, cg, kh, kw = weight.shape
    _, ho_n, wo_n = conv_output_shape((c_in, h, w), conv)
    sh, sw = _pair(conv.stride)
    ph, pw = _pair(conv.padding)
    dh, dw = _pair(conv.dilation)
    og = o_n // int(conv.groups)
    o, cl, i, j = (a.reshape(-1) for a in np.meshgrid(
        np.arange(o_n), np.arange(cg), np.arange(kh), np.arange(kw), indexing="ij"))
    wk = weight.reshape(-1)
    if not keep_zeros:
        keep = wk != 0
        o, cl, i, j, wk = o[keep], cl[keep], i[keep], j[keep], wk[keep]
    c = (o // og) * cg + cl
    ys = np.arange(ho_n, dtype=np.int64)
    xs = np.arange(wo_n, dtype=np.int64)
    per_entry = max(1, ho_n * wo_n)
    step = max(1, chunk // per_entry)
    pres, posts, ws = [], [], []
    for s in range(0, wk.shape[0], step):  # loop over chunks of kernel entries only
        sl = slice(s, s + step)
        hy = ys[None, :] * sh - ph + i[sl, None] * dh  # (k, Ho)
        wx = xs[None, :] * sw - pw + j[sl, None] * dw  # (k, Wo)
        ok = ((hy >= 0) & (hy < h))[:, :, None] & ((wx >= 0) & (wx < w))[:, None, :]
        pre = (c[sl, None, None].astype(np.int64) * h + hy[:, :, None]) * w + wx[:, None, :]
        post = (o[sl, None, None].astype(np.int64) * ho_n + ys[None, :, None]) * wo_n \
            + xs[None, None, :]
        pres.append(pre[ok])
        posts.append(post[ok])
        ws.append(np.broadcast_to(wk[sl, None, None], ok.shape)[ok])
    if pres:
        pre_a, post_a, w_a = np.concatenate(pres), np.concatenate(posts), np.concatenate(ws)
    else:
        pre_a = post_a = np.zeros(0, dtype=np.int64)
        w_a = np.zeros(0, dtype=weight.dtype)
    return Sparse.from_coo(pre=pre_a, post=post_a, weight=w_a, n_pre=c_in * h * w,
                           n_post=o_n * ho_n * wo_n)


def pool_to_sparse(pool: SumPool2d | AvgPool2d, in_shape: tuple[int, int, int]) -> Sparse:
    """Sum or average pooling as a :class:`~nmcompiler.ir.Sparse`: a depthwise convolution whose
    kernel is filled with the pooling weight (1, or ``1 / (kH kW)`` with padding counted)."""
    c = int(in_shape[0])
    kh, kw = _pair(pool.kernel)
    stride = pool.stride if pool.stride is not None else pool.kernel
    conv = Conv2d(weight=np.full((c, 1, kh, kw), pool.scale()), stride=_pair(stride),
                  padding=_pair(pool.padding), groups=c)
    return conv_to_sparse(conv, in_shape)


def _check_conv_limits(net: Network, proj: Projection, target: Any) -> None:
    lim = target.convolution
    if lim is None:
        return
    conn = proj.conn
    where = f"projection '{proj.name}'"

    def fail(rule: str, need: Any, limit: Any, hint: str) -> None:
        raise FitError(
            f"{where} needs {rule} {need}; {target.name} allows {limit}", obj=proj.name,
            rule=rule, need=need, limit=limit, hint=hint,
        )

    _, hi, wi = net.shape_of(proj.pre)
    _, ho, wo = net.shape_of(proj.post)
    if hi > lim.max_input_size[0] or wi > lim.max_input_size[1]:
        fail("input size", (hi, wi), lim.max_input_size, "downsample the input first")
    if ho > lim.max_output_size[0] or wo > lim.max_output_size[1]:
        fail("output size", (ho, wo), lim.max_output_size,
             "use a larger stride or pooling before this layer")
    from_input = proj.pre in net.inputs  # the DVS layer pools, rectangles too
    if isinstance(conn, Conv2d):
        # a convolution that contains a sum pooling (SumPool2d -> Conv2d composed by the
        # NIR importer) is checked as sinabs maps it: the pooling on the way in, then the
        # smaller kernel (partition.conv_pool_factor)
        from .partition import _speck_kernel

        w, (py, px) = _speck_kernel(conn, net.shape_of(proj.pre), tuple(lim.pooling_sizes),
                                    from_input)
        kh, kw = w.shape[2:]
        stride = (_pair(conn.stride)[0] // py, _pair(conn.stride)[1] // px)
        padding = (_pair(conn.padding)[0] // py, _pair(conn.padding)[1] // px)
        if kh != kw or kh > lim.max_kernel_size:
            fail("kernel", (kh, kw), f"square <= {lim.max_kernel_size}",
                 "use a square kernel within the limit")
        for s in stride:
            if s not in lim.strides:
                fail("stride", stride, lim.strides, "use an allowed stride")
        if max(padding) > lim.max_padding:
            fail("padding", padding, lim.max_padding, "pad less")
        if conn.weight.shape[0] > lim.max_channels:
            fail("output channels", conn.weight.shape[0], lim.max_channels,
                 "split the layer into channel groups")
    else:
        k = _pair(conn.kernel)
        if (k[0] != k[1] and not from_input) or k[0] not in lim.pooling_sizes or \
                k[1] not in lim.pooling_sizes:
            fail("pooling size", k, lim.pooling_sizes,
                 "use an allowed sum-pooling size (square except on the input: the DVS "
                 "layer pools rectangles)")


def expand_convolutions(net: Network, *, keep_zeros: bool = False) -> tuple[Network, dict]:
    """Replace every convolution / pooling projection of ``net`` by the equivalent Sparse."""
    projs = dict(net.projections)
    done = []
    for name, proj in net.projections.items():
        if isinstance(proj.conn, (Conv2d, SumPool2d, AvgPool2d)):
            if isinstance(proj.conn, Conv2d):
                sp = conv_to_sparse(proj.conn, net.shape_of(proj.pre), keep_zeros=keep_zeros)
            else:
                sp = pool_to_sparse(proj.conn, net.shape_of(proj.pre))
            projs[name] = Projection(name=name, pre=proj.pre, post=proj.post, conn=sp,
                                     delay=proj.delay)
            done.append({"projection": name, "kind": type(proj.conn).__name__,
                         "synapses": sp.n_synapses()})
    if not done:
        return net, {"expanded": []}
    return net.replace(projections=projs), {"expanded": done}


# =========================================================================== 2. fan-in
def fan_in(net: Network, pop: str) -> np.ndarray:
    """Input axons (presynaptic neurons with a nonzero synapse) of each neuron of ``pop``,
    summed over its incoming projections; int64 ``(size,)``."""
    n = net.size_of(pop)
    out = np.zeros(n, dtype=np.int64)
    for proj in net.projections.values():
        if proj.post != pop:
            continue
        conn = proj.conn
        if isinstance(conn, Dense):
            out += np.count_nonzero(conn.weight, axis=1)
        elif isinstance(conn, Sparse):
            nz = np.count_nonzero(conn.weight)
            idx = conn.indices if nz == conn.indices.shape[0] else \
                conn.indices[conn.weight != 0]
            out += np.bincount(idx, minlength=n)
        elif isinstance(conn, OneToOne):
            out += np.broadcast_to(np.asarray(conn.weight) != 0, (n,)).astype(np.int64)
        else:
            sp = _grid_to_sparse(net, proj)
            out += np.bincount(sp.indices[sp.weight != 0], minlength=n)
    return out


def _dyadic_quantum(w: np.ndarray) -> float:
    """Largest power of two ``q`` with every ``w / q`` an integer (1.0 for no weights)."""
    w = np.asarray(w, dtype=np.float64)
    w = w[w != 0]
    if w.size == 0:
        return 1.0
    m, e = np.frexp(np.abs(w))  # |w| = m 2^e, m in [0.5, 1)
    mi = (m * 2.0**53).astype(np.int64)  # exact 53-bit integer mantissa
    low = mi & -mi  # lowest set bit
    tz = np.log2(low.astype(np.float64)).astype(np.int64)
    return float(2.0 ** int(np.min(e - 53 + tz)))


def split_fan_in(
    net: Network,
    limit: int,
    *,
    target_name: str = "the target",
    graded_bits: int = 0,
    relay_quantum: float | None = None,
    input_payload_max: int = 1,
) -> tuple[Network, dict]:
    """Split the inputs of populations whose neurons exceed ``limit`` input axons.

    Each oversized population ``P`` gets, per chunk ``k`` of at most ``limit`` presynaptic
    axons (all its incoming synapses, in source order), relays ``P~fanin{k}+`` (and ``-``
    for negative weights): neurons of ``LIF(lam=0, alpha_u=0, theta=q, graded=True,
    fire_at_threshold=True)``, one per neuron of ``P``, which receive the chunk's synapses
    (weights negated for ``-``) and send ``floor(a_k / q)`` through a zero-delay OneToOne
    projection of weight ``+q`` (``-q``) into ``P``. When every weight is a multiple of
    ``q`` and payloads are integers, ``P`` receives exactly ``sum_k a_k`` in the same step:
    the split is exact in the IR; retiming then gives the relay edges the target's delay,
    which shifts the outputs by the reported lag. Needs graded spikes of
    ``graded_bits`` >= the bits of the largest partial sum over ``q``.
    """
    report: dict[str, Any] = {"limit": int(limit), "split": []}
    pops = dict(net.populations)
    projs = dict(net.projections)
    taken = set(pops) | set(net.inputs)
    changed = False
    for pname, pop in net.populations.items():
        fi = fan_in(net, pname)
        need = int(fi.max()) if fi.size else 0
        if need <= limit:
            continue
        where = f"population '{pname}'"
        if graded_bits <= 0:
            raise FitError(
                f"{where} has neurons with {need} input axons; {target_name} allows {limit} "
                "per core", obj=pname, rule="input axons per core", need=need, limit=limit,
                hint=f"{target_name} has no graded spikes, so a partial-sum relay cannot "
                "carry the sum exactly (and a multi-compartment split is not exact for LIF): "
                f"lower the fan-in below {limit} (sparser or fewer presynaptic neurons)",
            )
        incoming = [p for p in net.projections.values() if p.post == pname]
        coo = []
        offset = 0
        for p in incoming:
            pre, post, w, dl = _to_coo(net, p)
            keep = w != 0
            base = int(p.delay)
            d = np.full(keep.sum(), base, dtype=np.int64) if dl is None else base + dl[keep]
            src = net.populations.get(p.pre)
            pay = input_payload_max if src is None else (
                int(src.model.graded_max) if src.model.graded else 1)
            coo.append((p, pre[keep] + offset, pre[keep], post[keep], w[keep], d, pay))
            offset += net.size_of(p.pre)
        all_w = np.concatenate([c[4] for c in coo]) if coo else np.zeros(0)
        q = float(relay_quantum) if relay_quantum else _dyadic_quantum(all_w)
        if np.any(np.abs(all_w / q - np.rint(all_w / q)) > 0):
            raise FitError(
                f"{where}: weights are not multiples of the relay quantum {q}",
                obj=pname, rule="partial sums on a grid", need="w / q integer", limit=q,
                hint="quantise the weights first or pass another relay_quantum",
            )
        n_chunks = math.ceil(offset / limit)
        if 2 * n_chunks > limit:
            raise FitError(
                f"{where} needs {need} input axons; a one-level relay split into "
                f"{n_chunks} chunks of {limit} still needs {2 * n_chunks} > {limit}",
                obj=pname, rule="input axons per core", need=need, limit=limit,
                hint="lower the fan-in; two-level relay trees are not implemented",
            )
        chunk_of = [c[1] // limit for c in coo]
        for p in incoming:
            del projs[p.name]
        n = pop.size
        parts = []
        for k in range(n_chunks):
            for sign, label in ((1.0, "+"), (-1.0, "-")):
                sel = [(c, ck == k) for c, ck in zip(coo, chunk_of, strict=True)]
                if not any(np.any(m & (sign * c[4] > 0)) for c, m in sel):
                    continue
                # largest partial sum (in units of q) over the neurons of P
                tot = np.zeros(n)
                for c, m in sel:
                    wm = np.where(sign * c[4][m] > 0, sign * c[4][m], 0.0) * c[6]
                    tot += np.bincount(c[3][m], weights=wm, minlength=n)
                gmax = max(1, int(np.ceil(np.max(tot) / q)))
                bits = int(gmax).bit_length()
                if bits > graded_bits:
                    raise FitError(
                        f"{where}: a partial-sum relay would send payloads up to {gmax} "
                        f"({bits} bits); {target_name} carries {graded_bits}",
                        obj=pname, rule="graded spike bits", need=bits, limit=graded_bits,
                        hint="quantise weights to a coarser grid (relay_quantum) or lower "
                        "the fan-in",
                    )
                rname = _unique_name(f"{pname}~fanin{k}{label}", taken)
                pops[rname] = Population(
                    name=rname, shape=(n,),
                    model=LIF(alpha_u=0.0, lam=0.0, theta=q, bias=q / 2, graded=True,
                              graded_max=gmax, fire_at_threshold=True, reset=Reset.HARD),
                )
                for c, m in sel:
                    if not np.any(m):
                        continue
                    p = c[0]
                    dmin = int(c[5][m].min())
                    sp = Sparse.from_coo(pre=c[2][m], post=c[3][m], weight=sign * c[4][m],
                                         n_pre=net.size_of(p.pre), n_post=n,
                                         delays=c[5][m] - dmin)
                    if not np.any(sp.delays):
                        sp = Sparse(indptr=sp.indptr, indices=sp.indices, weight=sp.weight,
                                    n_post=sp.n_post)
                    pn = _unique_name(f"{p.name}~fanin{k}{label}", set(projs))
                    projs[pn] = Projection(name=pn, pre=p.pre, post=rname, conn=sp, delay=dmin)
                pn = _unique_name(f"{rname}->{pname}", set(projs))
                projs[pn] = Projection(name=pn, pre=rname, post=pname,
                                       conn=OneToOne(weight=sign * q), delay=0)
                parts.append({"relay": rname, "payload_max": gmax, "payload_bits": bits})
        report["split"].append({
            "population": pname, "fan_in": need, "chunks": n_chunks, "quantum": q,
            "relays": parts,
            "note": "exact in the IR (zero-delay relays); retiming then shifts this "
                    "population and its successors by the relay's lag",
        })
        changed = True
    if not changed:
        return net, report
    return net.replace(populations=pops, projections=projs), report


# =========================================================================== 3. retiming
def _loop_text(nodes: list[str]) -> str:
    return " -> ".join(nodes + nodes[:1])


def _constraint_graph(
    net: Network, d_min: int, d_max: int | None, lo_override: dict[str, int]
) -> nx.DiGraph:
    """Edges a -> b with weight c encode dist(b) - dist(a) <= c, where dist = -lag."""
    g = nx.DiGraph()
    g.add_nodes_from(list(net.inputs) + list(net.populations) + [_SOURCE])

    def add(a: str, b: str, c: int) -> None:
        if g.has_edge(a, b):
            c = min(c, g[a][b]["weight"])
        g.add_edge(a, b, weight=c)

    for x in list(net.inputs) + list(net.populations):
        add(_SOURCE, x, 0)  # lag >= 0
    for x in net.inputs:
        add(x, _SOURCE, 0)  # inputs: lag exactly 0
    for p in net.projections.values():
        lo, hi = _delay_range(p)
        lo += lo_override.get(p.name, 0)
        hi += lo_override.get(p.name, 0)
        add(p.pre, p.post, lo - d_min)  # d_lo + r(post) - r(pre) >= d_min
        if d_max is not None and hi <= d_max:
            add(p.post, p.pre, d_max - hi)  # d_hi + r(post) - r(pre) <= d_max
    return g


def _solve(g: nx.DiGraph) -> dict[str, int] | list[str]:
    """Lags, or the nodes of a loop with too little delay."""
    try:
        dist = nx.single_source_bellman_ford_path_length(g, _SOURCE, weight="weight")
    except nx.NetworkXUnbounded:
        cyc = nx.find_negative_cycle(g, _SOURCE, weight="weight")
        return [c for c in cyc[:-1]]
    return {k: -int(v) for k, v in dist.items() if k != _SOURCE}


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

    Behaviour: for deterministic populations without bias, population ``v`` of the result
    emits at step ``t + r(v)`` exactly what ``v`` of ``net`` emitted at step ``t`` (its
    first ``r(v)`` steps are silent); outputs and probes shift likewise. A population with
    a bias or noise and ``r(v) > 0`` starts ``r(v)`` steps early; the report lists them.
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
                best = min(cands, key=lambda p: _delay_range(p)[0] + override.get(p.name, 0))
                lo = _delay_range(best)[0] + override.get(best.name, 0)
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
                        lo = _delay_range(p)[0] + override.get(p.name, 0)
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
                conn = _with_delays(conn, np.asarray(extra) - m)
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
    inexact = []
    for name, pop in net.populations.items():
        m = pop.model
        bias = np.asarray(m.bias)
        # a memoryless population whose bias alone cannot fire it starts early harmlessly
        harmless = (np.all(np.asarray(m.lam) == 0) and np.all(np.asarray(m.alpha_u) == 0)
                    and np.all(bias < np.asarray(m.theta)) and not m.refractory)
        if lags[name] > 0 and ((np.any(bias != 0) and not harmless) or m.noise):
            inexact.append(name)
    report["inexact_populations"] = inexact
    if inexact:
        report["inexact_note"] = (
            "these populations have a bias or noise and a lag > 0: they run their lag's "
            "worth of steps early, integrating bias without input; the shift is exact for "
            "every other population")
    if not changed:
        return net, report
    return net.replace(projections=projs), report


def _with_delays(conn: Any, delays: np.ndarray | None) -> Any:
    if isinstance(conn, Dense):
        return Dense(weight=conn.weight, delays=delays)
    if isinstance(conn, Sparse):
        return Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                      n_post=conn.n_post, delays=delays)
    if isinstance(conn, OneToOne):
        return OneToOne(weight=conn.weight, delays=delays)
    return conn  # pragma: no cover - grid kinds carry no per-synapse delays


# =========================================================================== 4. delays
def _relay_model(net: Network, src: str, graded_bits: int) -> Any:
    pop = net.populations.get(src)
    if pop is not None and pop.model.graded:
        return LIF(alpha_u=0.0, lam=0.0, theta=1.0, graded=True,
                   graded_max=int(pop.model.graded_max), fire_at_threshold=True)
    return IF(theta=0.5, reset=Reset.HARD)


def split_long_delays(
    net: Network,
    d_min: int,
    d_max: int,
    *,
    per_synapse_delays: bool = True,
    mode: str = "relay",
    target_name: str = "the target",
) -> tuple[Network, dict]:
    """Give every synapse a delay in ``[d_min, d_max]`` using relay chains.

    A synapse of total delay ``D > d_max`` goes through ``n = ceil((D - d_max) / h)``
    relays (hop ``h = d_max - d_min + 1``), shared per source population and hop: relay
    level ``k`` of source ``S`` is a population ``S~delay{k}`` of S's shape, fed one-to-one
    from level ``k - 1`` with delay ``h`` and weight 1; the synapse leaves level ``n``
    with the remaining delay ``D - n h`` in ``[d_min, d_max]``. A binary relay is
    ``IF(theta=0.5)`` (a spike of weight 1 crosses the threshold and the hard reset clears
    it); a graded source gets ``LIF(lam=0, theta=1, graded)``, which re-sends its payload.
    Inputs are relayed as binary spikes. Exact in the IR. Without per-synapse delays on
    the target, a projection with per-synapse delays becomes one projection per delay.
    """
    report: dict[str, Any] = {"max_delay": int(d_max), "relays": [], "split": []}
    h = d_max - max(d_min, 1) + 1
    if h < 1:
        raise UsageError(f"max_delay {d_max} < min_delay {d_min}", obj=target_name,
                         hint="fix the target file")
    pops = dict(net.populations)
    projs: dict[str, Projection] = {}
    taken = set(pops) | set(net.inputs)
    chains: dict[str, list[str]] = {}

    def level(src: str, k: int) -> str:
        chain = chains.setdefault(src, [])
        while len(chain) < k:
            prev = src if not chain else chain[-1]
            name = _unique_name(f"{src}~delay{len(chain) + 1}", taken)
            pops[name] = Population(name=name, shape=net.shape_of(src),
                                    model=_relay_model(net, src, 0))
            pn = _unique_name(f"{prev}->{name}", set(net.projections) | set(projs))
            projs[pn] = Projection(name=pn, pre=prev, post=name, conn=OneToOne(weight=1.0),
                                   delay=h)
            chain.append(name)
            report["relays"].append({"population": name, "source": src, "hop": h})
        return chain[k - 1]

    changed = False
    for name, p in net.projections.items():
        lo, hi = _delay_range(p)
        extra = getattr(p.conn, "delays", None)
        varied = extra is not None and np.size(extra) and lo != hi
        if hi <= d_max and (per_synapse_delays or not varied):
            projs[name] = p
            continue
        if hi > d_max and mode != "relay":
            raise FitError(
                f"projection '{name}' has delay {hi}; {target_name} delays at most "
                f"{d_max} steps", obj=name, rule="max delay", need=hi, limit=d_max,
                hint="shorten the delay, or lower with long_delays='relay' to chain relay "
                "neurons",
            )
        changed = True
        if not varied:
            n = math.ceil((hi - d_max) / h)
            src = level(p.pre, n)
            projs[name] = Projection(name=name, pre=src, post=p.post, conn=p.conn,
                                     delay=hi - n * h)
            report["split"].append({"projection": name, "delay": hi, "relays": n})
            continue
        pre, post, w, dl = _to_coo(net, p)
        tot = int(p.delay) + np.asarray(dl, dtype=np.int64) if dl is not None else \
            np.full(pre.shape, int(p.delay), dtype=np.int64)
        nrel = np.where(tot > d_max, -((d_max - tot) // h), 0)  # ceil((tot - d_max) / h)
        rem = tot - nrel * h
        keys = np.stack([nrel, rem if not per_synapse_delays else np.zeros_like(rem)])
        groups = np.unique(keys, axis=1)
        for gi in range(groups.shape[1]):
            n_k, r_k = int(groups[0, gi]), int(groups[1, gi])
            m = (nrel == n_k) & (per_synapse_delays | (rem == r_k))
            src = level(p.pre, n_k) if n_k else p.pre
            base = int(rem[m].min())
            sp = Sparse.from_coo(pre=pre[m], post=post[m], weight=w[m],
                                 n_pre=net.size_of(p.pre), n_post=net.size_of(p.post),
                                 delays=(rem[m] - base) if per_synapse_delays else None)
            if sp.delays is not None and not np.any(sp.delays):
                sp = _with_delays(sp, None)
            pn = name if groups.shape[1] == 1 else _unique_name(
                f"{name}~d{n_k * h + base}", set(net.projections) | set(projs))
            projs[pn] = Projection(name=pn, pre=src, post=p.post, conn=sp, delay=base)
        report["split"].append({"projection": name, "delay": [lo, hi],
                                "groups": int(groups.shape[1])})
    if not changed:
        return net, report
    return net.replace(populations=pops, projections=projs), report


# =========================================================================== the pass
def lower(
    net: Network,
    target: Any,
    *,
    seed: int = 0,
    retiming: bool = True,
    force: bool = False,
    expand: str = "auto",
    keep_zero_weights: bool = False,
    fan_in_split: bool = True,
    relay_quantum: float | None = None,
    input_payload_max: int = 1,
    long_delays: str = "relay",
) -> tuple[Network, dict]:
    """Lower ``net`` for ``target`` (see the module docstring); returns ``(net, report)``.

    Args:
        net: a verified network (not modified).
        target: a :class:`nmcompiler.targets.Target`.
        seed: unused (the pass is deterministic); accepted for the pass signature.
        retiming: retime to the target's minimum delay (else a short delay is an error).
        force: raise the delays of loops that cannot be retimed (reported).
        expand: ``"auto"`` (expand convolutions where the target has no convolution
            hardware), ``"always"`` or ``"never"``.
        keep_zero_weights: keep kernel entries of weight 0 when expanding.
        fan_in_split: split populations whose fan-in exceeds the core's input axons
            (else raise :class:`FitError`).
        relay_quantum: weight grid of partial-sum relays (default: the largest power of
            two that divides every weight).
        input_payload_max: largest value an input carries (partial-sum relay sizing).
        long_delays: ``"relay"`` (chain relay neurons) or ``"error"``.

    Report keys: ``expanded``, ``fan_in``, ``retiming`` (lags, ``outputs`` with each
    output's shift), ``delays``, ``output_shift`` (output name -> steps).
    """
    del seed
    if expand not in ("auto", "always", "never"):
        raise UsageError(f"expand={expand!r}", obj="lower", rule="option",
                         hint="use 'auto', 'always' or 'never'")
    if long_delays not in ("relay", "error"):
        raise UsageError(f"long_delays={long_delays!r}", obj="lower", rule="option",
                         hint="use 'relay' or 'error'")
    caps = target.capabilities
    report: dict[str, Any] = {"target": target.name}
    has_conv = bool(caps.convolution_hardware)
    if expand == "always" or (expand == "auto" and not has_conv):
        net, report["expanded"] = expand_convolutions(net, keep_zeros=keep_zero_weights)
        report["expanded"] = report["expanded"]["expanded"]
    else:
        report["expanded"] = []
        for p in net.projections.values():
            if isinstance(p.conn, (Conv2d, SumPool2d, AvgPool2d)):
                _check_conv_limits(net, p, target)
    limit = target.core.input_axons
    if limit is not None:
        bits = int(caps.graded_spike_bits) if caps.graded_spikes and fan_in_split else 0
        net, report["fan_in"] = split_fan_in(
            net, int(limit), target_name=target.name, graded_bits=bits,
            relay_quantum=relay_quantum, input_payload_max=input_payload_max)
    else:
        report["fan_in"] = {"limit": None, "split": []}
    d_min = int(target.core.min_delay)
    d_max = int(target.core.max_delay)
    if retiming:
        net, report["retiming"] = retime(net, d_min, d_max=d_max, force=force,
                                         target_name=target.name)
    else:
        for p in net.projections.values():
            lo = _delay_range(p)[0]
            if lo < d_min:
                raise RetimingError(
                    f"projection '{p.name}' has delay {lo}; {target.name} needs >= {d_min}",
                    obj=p.name, rule="min delay", need=d_min, limit=lo,
                    hint="lower with retiming=True",
                )
        report["retiming"] = {"min_delay": d_min, "lags": {}, "outputs": {}}
    if caps.time_stepped:
        net, report["delays"] = split_long_delays(
            net, d_min, d_max, per_synapse_delays=bool(caps.per_synapse_delays),
            mode=long_delays, target_name=target.name)
    else:
        report["delays"] = {"note": f"{target.name} is event-driven (no time steps): "
                                    "delays are not represented on chip"}
    report["output_shift"] = {k: v["shift"] for k, v in report["retiming"]["outputs"].items()}
    return net, report
