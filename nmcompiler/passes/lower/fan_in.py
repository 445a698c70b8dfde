"""Step 2 of lowering: split a neuron whose fan-in exceeds a core's input axons over
relay neurons (exact for dyadic weights)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import (
    Dense,
    OneToOne,
    Sparse,
)
from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import LIF, Reset
from nmcompiler.ir.network import Network, Population, Projection

from .common import expand_grid, projection_synapses, unique_name


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
            sp = expand_grid(net, proj)
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


def weight_grid_quantum(w: np.ndarray, grid: tuple[int, int]) -> float:
    """The largest power of two not above the target's weight step for weights ``w``:
    ``step * max|w| / top`` (``grid = (top, step)`` of the mantissas, e.g. (254, 2) for
    Loihi's mixed 8-bit weights), i.e. the grid the quantize pass puts them on."""
    top, step = grid
    a = float(np.max(np.abs(w))) if np.size(w) else 0.0
    if a <= 0:
        return 1.0
    return float(2.0 ** math.floor(math.log2(step * a / top)))


def _payload_bits(peak: float, q: float) -> int:
    return max(1, int(math.ceil(peak / q))).bit_length()


def fitting_quantum(peak: float, graded_bits: int) -> float:
    """The smallest power of two ``q`` whose payloads ``ceil(peak / q)`` fit
    ``graded_bits`` bits."""
    top = 2 ** int(graded_bits) - 1
    q = 2.0 ** math.ceil(math.log2(max(peak, 1e-300) / top))
    while _payload_bits(peak, q) > graded_bits:
        q *= 2
    return q


def _largest_partial_sum(coo: list, chunk_of: list, n_chunks: int, n: int) -> float:
    """The largest partial sum of one sign of one chunk over the neurons (float)."""
    peak = 0.0
    for k in range(n_chunks):
        for sign in (1.0, -1.0):
            tot = np.zeros(n)
            for c, ck in zip(coo, chunk_of, strict=True):
                m = ck == k
                wm = np.where(sign * c[4][m] > 0, sign * c[4][m], 0.0) * c[6]
                tot += np.bincount(c[3][m], weights=wm, minlength=n)
            peak = max(peak, float(tot.max()) if tot.size else 0.0)
    return peak


def split_fan_in(
    net: Network,
    limit: int,
    *,
    target_name: str = "the target",
    graded_bits: int = 0,
    relay_quantum: float | None = None,
    input_payload_max: int = 1,
    weight_grid: tuple[int, int] = (127, 1),
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

    ``q`` (``relay_quantum``) defaults to the largest power of two dividing every weight
    (exact) when those payloads fit ``graded_bits``, else to the target's weight grid
    (:func:`weight_grid_quantum`, ``weight_grid = (top mantissa, mantissa step)``): the
    relays then round each partial sum to a multiple of ``q``, an error of the size of
    one weight's rounding, and the report says the split is inexact. When the payloads
    still do not fit, the :class:`FitError` names the ``relay_quantum`` that would.
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
            pre, post, w, dl = projection_synapses(net, p)
            keep = w != 0
            base = int(p.delay)
            d = np.full(keep.sum(), base, dtype=np.int64) if dl is None else base + dl[keep]
            src = net.populations.get(p.pre)
            pay = input_payload_max if src is None else (
                int(src.model.graded_max) if src.model.graded else 1)
            coo.append((p, pre[keep] + offset, pre[keep], post[keep], w[keep], d, pay))
            offset += net.size_of(p.pre)
        all_w = np.concatenate([c[4] for c in coo]) if coo else np.zeros(0)
        n_chunks = math.ceil(offset / limit)
        chunk_of = [c[1] // limit for c in coo]
        peak = _largest_partial_sum(coo, chunk_of, n_chunks, pop.size)
        if relay_quantum:
            q, how = float(relay_quantum), "given"
        else:
            q, how = _dyadic_quantum(all_w), "exact"
            if _payload_bits(peak, q) > graded_bits:  # the exact grid is too fine
                q, how = weight_grid_quantum(all_w, weight_grid), "weight grid"
        exact = bool(not np.any(np.abs(all_w / q - np.rint(all_w / q)) > 0))
        n_chunks = math.ceil(offset / limit)
        if 2 * n_chunks > limit:
            raise FitError(
                f"{where} needs {need} input axons; a one-level relay split into "
                f"{n_chunks} chunks of {limit} still needs {2 * n_chunks} > {limit}",
                obj=pname, rule="input axons per core", need=need, limit=limit,
                hint="lower the fan-in; two-level relay trees are not implemented",
            )
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
                    fit = fitting_quantum(peak, graded_bits)
                    raise FitError(
                        f"{where}: a partial-sum relay would send payloads up to {gmax} "
                        f"({bits} bits) at relay_quantum = {q:g}; {target_name} carries "
                        f"{graded_bits}",
                        obj=pname, rule="graded spike bits", need=bits, limit=graded_bits,
                        hint=f"relay_quantum = {fit:g} would fit (partial sums up to "
                        f"{peak:g} in {graded_bits}-bit payloads; lower option "
                        f"relay_quantum={fit:g}), or lower the fan-in",
                    )
                rname = unique_name(f"{pname}~fanin{k}{label}", taken)
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
                    pn = unique_name(f"{p.name}~fanin{k}{label}", set(projs))
                    projs[pn] = Projection(name=pn, pre=p.pre, post=rname, conn=sp, delay=dmin)
                pn = unique_name(f"{rname}->{pname}", set(projs))
                projs[pn] = Projection(name=pn, pre=rname, post=pname,
                                       conn=OneToOne(weight=sign * q), delay=0)
                parts.append({"relay": rname, "payload_max": gmax, "payload_bits": bits})
        report["split"].append({
            "population": pname, "fan_in": need, "chunks": n_chunks, "quantum": q,
            "quantum_from": how, "exact": exact, "relays": parts,
            "note": ("exact in the IR (zero-delay relays); retiming then shifts this "
                     "population and its successors by the relay's lag") if exact else
                    (f"each relay rounds its partial sum to a multiple of {q:g} (the "
                     "weights are not all multiples of it: at most half a quantum per "
                     "relay and step); retiming then shifts this population and its "
                     "successors by the relay's lag"),
        })
        changed = True
    if not changed:
        return net, report
    return net.replace(populations=pops, projections=projs), report
